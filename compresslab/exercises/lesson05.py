"""Checkers for lesson 05 (capstone: the Deep Compression pipeline)."""
from __future__ import annotations

import math

import numpy as np

from .. import encode
from ._core import Case, Feedback, Mistake, checker, compare_cases, same, same_number


# --------------------------------------------------------------------------------------------
# 5.1 relative indices with filler zeros
# --------------------------------------------------------------------------------------------
def _reference_relative(w, bits):
    values, gaps = encode.relative_index_encode(np.asarray(w, dtype=np.float64), bits)
    return values, gaps


def _absolute(w, bits):
    pos = np.flatnonzero(w)
    return w[pos], pos


def _position_difference(w, bits):
    """The paper's figure read literally: diff = position - previous position (no -1)."""
    values, gaps = _reference_relative(w, bits)
    return values, gaps + 1


def _no_fillers(w, bits):
    pos = np.flatnonzero(w)
    return w[pos], np.diff(pos, prepend=-1) - 1


def _clipped(w, bits):
    v, g = _no_fillers(w, bits)
    return v, np.minimum(g, 2 ** bits - 1)


def _wrapped(w, bits):
    v, g = _no_fillers(w, bits)
    return v, g % (2 ** bits)


def _filler_one_early(w, bits):
    """Filler when the gap reaches 2**bits - 1 instead of exceeding it (span 2**bits - 1)."""
    pos = np.flatnonzero(w)
    span = 2 ** bits - 1
    values, gaps = [], []
    prev = -1
    for p in pos:
        gap = p - prev - 1
        while gap >= span:
            values.append(0.0)
            gaps.append(span - 1)
            gap -= span
        values.append(w[p])
        gaps.append(gap)
        prev = p
    return np.array(values), np.array(gaps)


def _trailing_fillers(w, bits):
    values, gaps = _reference_relative(w, bits)
    last = np.flatnonzero(w)
    tail = w.size - 1 - (last[-1] if last.size else -1)
    extra = tail // 2 ** bits
    return (np.concatenate([values, np.zeros(extra)]),
            np.concatenate([gaps, np.full(extra, 2 ** bits - 1)]).astype(int))


def _pair_equal(a, b):
    if not isinstance(a, (tuple, list)) or len(a) != 2:
        raise Feedback(f"return a pair (values, gaps), got {type(a).__name__}.")
    return same(np.asarray(a[0], dtype=float), np.asarray(b[0], dtype=float)) and \
        same(np.asarray(a[1]).astype(np.int64), np.asarray(b[1]).astype(np.int64))


def _describe_pair(x):
    try:
        v, g = x
        return f"values={np.asarray(v).tolist()}, gaps={np.asarray(g).tolist()}"
    except Exception:
        return repr(x)


@checker("5.1", "relative indices with filler zeros", lesson="05_capstone")
def check_relative_index(relative_index):
    """``relative_index(w, bits)`` must return ``(values, gaps)`` for a 1-D array ``w``."""
    g = np.random.default_rng(5)

    def sparse(n, k):
        w = np.zeros(n)
        w[g.choice(n, k, replace=False)] = g.choice([-2.0, -1.0, 0.5, 1.5, 3.0], k)
        return w

    fig2 = np.zeros(16)
    fig2[[1, 4, 15]] = [3.4, 0.9, 1.7]
    exact = np.zeros(10)
    exact[[3, 9]] = [1.0, 2.0]                       # 5 zeros between: fits 3 bits (max 7)
    edge = np.zeros(12)
    edge[[0, 8]] = [5.0, -1.0]                       # 7 zeros, exactly the largest 3-bit gap
    cases = [
        Case("the paper's Fig. 2 example (3-bit gaps, a filler needed)", (fig2, 3)),
        Case("a non-zero at position 0 and a gap of exactly 2**bits - 1 = 7", (edge, 3)),
        Case("a short array with no overflow (3 bits)", (exact, 3)),
        Case("40 weights, 4 non-zeros, 2-bit gaps (several fillers)", (sparse(40, 4), 2)),
        Case("60 weights, 6 non-zeros, 3-bit gaps, zeros at the end",
             (np.concatenate([sparse(50, 6), np.zeros(10)]), 3)),
        Case("an all-zero array", (np.zeros(9), 2)),
    ]
    mistakes = [
        Mistake(_absolute, "you stored absolute positions; store the *gap* to the previous "
                "stored entry (zeros skipped), which needs only a few bits."),
        Mistake(_position_difference, "you stored the position difference (gap + 1); store the "
                "number of zeros skipped, so that 0 .. 2**bits - 1 are all usable and a weight at "
                "position 0 has gap 0."),
        Mistake(_no_fillers, "some gaps are larger than 2**bits - 1 and cannot be stored in `bits` "
                "bits: insert a filler zero (value 0, gap 2**bits - 1) and keep counting."),
        Mistake(_clipped, "you clipped large gaps to 2**bits - 1, which puts the weight in the "
                "wrong place; insert a filler zero instead."),
        Mistake(_wrapped, "you wrapped large gaps modulo 2**bits; the decoder cannot know a wrap "
                "happened -- insert a filler zero instead."),
        Mistake(_filler_one_early, "off by one: a gap of exactly 2**bits - 1 still fits; a filler "
                "covers 2**bits - 1 zeros *plus itself*, so the remaining gap drops by 2**bits."),
        Mistake(_trailing_fillers, "zeros after the last non-zero need no fillers: the decoder "
                "knows the array's length."),
    ]
    return compare_cases(relative_index, _reference_relative, cases, mistakes, equal=_pair_equal,
                         describe=_describe_pair)


# --------------------------------------------------------------------------------------------
# 5.2 Huffman encoded size
# --------------------------------------------------------------------------------------------
def _reference_bits(counts):
    counts = np.asarray(counts, dtype=np.int64)
    lengths = encode.huffman_lengths(counts).astype(np.int64)
    return int((counts * lengths).sum())


def _fixed_width(counts):
    counts = np.asarray(counts)
    k = int((counts > 0).sum())
    return int(counts.sum() * max(1, math.ceil(math.log2(max(k, 1)))))


def _fixed_width_alphabet(counts):
    counts = np.asarray(counts)
    return int(counts.sum() * max(1, math.ceil(math.log2(len(counts)))))


def _entropy_bits(counts):
    c = np.asarray(counts, dtype=float)
    p = c[c > 0] / c.sum()
    return float(-(c[c > 0] * np.log2(p)).sum())


def _bytes(counts):
    return math.ceil(_reference_bits(counts) / 8)


def _single_zero(counts):
    c = np.asarray(counts)
    return 0 if (c > 0).sum() == 1 else _reference_bits(counts)


def _sum_of_lengths(counts):
    return int(encode.huffman_lengths(np.asarray(counts)).astype(int).sum())


@checker("5.2", "Huffman encoded size", lesson="05_capstone")
def check_huffman_bits(huffman_bits):
    """``huffman_bits(counts)`` must return the total bits of the Huffman-coded data."""
    cases = [
        Case("counts [45, 13, 12, 16, 9, 5] (the textbook example)", ([45, 13, 12, 16, 9, 5],)),
        Case("counts [10, 10, 10, 10] (uniform)", ([10, 10, 10, 10],)),
        Case("counts [1, 1, 2, 3, 5, 8, 13] (Fibonacci: long codes)", ([1, 1, 2, 3, 5, 8, 13],)),
        Case("counts [0, 50, 0, 3, 7, 0, 0, 0] (absent symbols)", ([0, 50, 0, 3, 7, 0, 0, 0],)),
        Case("counts [0, 0, 17, 0] (one symbol: each still needs one bit)", ([0, 0, 17, 0],)),
        Case("counts [900, 40, 30, 20, 5, 3, 1, 1] (gaps after pruning)", ([900, 40, 30, 20, 5, 3, 1, 1],)),
    ]
    mistakes = [
        Mistake(_single_zero, "with a single symbol the code still needs 1 bit per symbol, not 0."),
        Mistake(_entropy_bits, "you computed the entropy bound n * H; Huffman codes use whole "
                "bits per symbol, so build the code and add up count * code length."),
        Mistake(_fixed_width, "that is the fixed-width size (ceil(log2 k) bits per symbol); "
                "Huffman gives frequent symbols shorter codes."),
        Mistake(_fixed_width_alphabet, "that is the fixed-width size over the whole alphabet; "
                "Huffman gives frequent symbols shorter codes."),
        Mistake(_bytes, "return bits, not bytes (do not divide by 8)."),
        Mistake(_sum_of_lengths, "you added the code lengths; weight each by its symbol's count."),
    ]

    return compare_cases(huffman_bits, _reference_bits, cases, mistakes, equal=same_number("total bits"))
