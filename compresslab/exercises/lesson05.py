"""Checkers for lessons 05a (Deep Compression, in real bytes: exercises 5.1, 5.2) and 05b (the
capstone: exercise 5.3)."""
from __future__ import annotations

import heapq
import math
import os

import numpy as np

from .. import encode, nn
from ._core import Case, Feedback, Mistake, Question, as_number, call, checker, compare_cases, quiz, same, same_number


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


def _split_gaps(w, bits, *, fill_from, stored, consumed):
    """(values, gaps) when a filler with gap ``stored`` goes in while the remaining gap is
    ``>= fill_from``, each filler using up ``consumed`` positions; zeros at the end not stored.
    The reference is ``fill_from = 2**bits, stored = 2**bits - 1, consumed = 2**bits``."""
    pos = np.flatnonzero(w)
    values, gaps = [], []
    prev = -1
    for p in pos:
        gap = p - prev - 1
        while gap >= fill_from:
            values.append(0.0)
            gaps.append(stored)
            gap -= consumed
        values.append(w[p])
        gaps.append(gap)
        prev = p
    return np.array(values), np.array(gaps, dtype=np.int64)


def _filler_one_early(w, bits):
    """Filler when the gap reaches 2**bits - 1 instead of exceeding it, with a gap that places
    it correctly (2**bits - 2): the learner took 2**bits - 2 for the largest gap."""
    m = 2 ** bits - 1
    return _split_gaps(w, bits, fill_from=m, stored=m - 1, consumed=m)


def _filler_on_last_zero(w, bits):
    """A loop that counts a zero first and then emits a filler when ``run == 2**bits - 1``:
    the filler sits on the (2**bits - 1)-th zero but records gap 2**bits - 1 (one too many)."""
    m = 2 ** bits - 1
    return _split_gaps(w, bits, fill_from=m, stored=m, consumed=m)


def _filler_takes_no_position(w, bits):
    """A filler that covers 2**bits - 1 zeros but is not counted as a position itself."""
    m = 2 ** bits - 1
    return _split_gaps(w, bits, fill_from=m + 1, stored=m, consumed=m)


def _max_gap_2_pow_bits(w, bits):
    """The largest gap taken as 2**bits (which needs bits + 1 bits)."""
    s = 2 ** bits
    return _split_gaps(w, bits, fill_from=s + 1, stored=s, consumed=s + 1)


def _first_gap_from_zero(w, bits):
    """The previous position starts at 0 instead of -1: the first gap is one too small."""
    pos = np.flatnonzero(w)
    values, gaps = [], []
    prev = 0
    for p in pos:
        gap = p - prev - 1
        while gap > 2 ** bits - 1:
            values.append(0.0)
            gaps.append(2 ** bits - 1)
            gap -= 2 ** bits
        values.append(w[p])
        gaps.append(gap)
        prev = p
    return np.array(values), np.array(gaps, dtype=np.int64)


def _trailing_fillers(w, bits):
    """The loop of the solution run over the whole array (not only up to the last non-zero)."""
    values, gaps = _reference_relative(w, bits)
    last = np.flatnonzero(w)
    tail = w.size - 1 - (last[-1] if last.size else -1)
    extra = tail // 2 ** bits
    return (np.concatenate([values, np.zeros(extra)]),
            np.concatenate([gaps, np.full(extra, 2 ** bits - 1)]).astype(int))


def _trailing_entry(w, bits):
    """Like :func:`_trailing_fillers`, then the zeros left over stored as one last (0, run)."""
    values, gaps = _trailing_fillers(w, bits)
    last = np.flatnonzero(w)
    tail = w.size - 1 - (last[-1] if last.size else -1)
    run = tail % 2 ** bits
    if run == 0:
        return values, gaps
    return np.append(values, 0.0), np.append(gaps, run).astype(int)


def _pair_equal(a, b):
    if not isinstance(a, (tuple, list)) or len(a) != 2:
        raise Feedback(f"return a pair (values, gaps), got {type(a).__name__}.")
    try:
        values, gaps = np.asarray(a[0], dtype=float), np.asarray(a[1]).astype(np.int64)
    except (TypeError, ValueError):
        raise Feedback("return (values, gaps) as two 1-D arrays (or lists) of numbers.") from None
    return same(values, np.asarray(b[0], dtype=float)) and \
        same(gaps, np.asarray(b[1]).astype(np.int64))


def _describe_pair(x):
    try:
        v, g = x
        return f"values={np.asarray(v).tolist()}, gaps={np.asarray(g).tolist()}"
    except Exception:
        return repr(x)


@checker("5.1", "relative indices with filler zeros", lesson="05a_deep_compression")
def check_relative_index(relative_index):
    """``relative_index(w, bits)`` must return ``(values, gaps)`` for a 1-D array ``w``."""
    g = np.random.default_rng(5)

    def sparse(n, k):
        w = np.zeros(n)
        w[g.choice(n, k, replace=False)] = g.choice([-2.0, -1.0, 0.5, 1.5, 3.0], k)
        return w

    fig2 = np.zeros(16)
    fig2[[1, 4, 15]] = [3.4, 0.9, 1.7]                # gaps 1, 2, 10: one filler
    exact = np.zeros(10)
    exact[[3, 9]] = [1.0, 2.0]                        # gaps 3, 5: fit 3 bits (max 7)
    edge = np.zeros(9)
    edge[[0, 8]] = [5.0, -1.0]                        # gaps 0, 7: exactly the largest 3-bit gap
    over = np.zeros(12)
    over[[2, 11]] = [-2.0, 1.5]                       # gaps 2, 8 = 2**3: a filler, then gap 0
    # Order matters: the hint comes from the first case an answer gets wrong. The equality
    # boundary (a gap of exactly 2**bits - 1) comes first: both off-by-one fillers fail there
    # while "filler takes no position" is still right. On Fig. 2 (gap 10) "filler on the last
    # zero" and "filler takes no position" give the same gaps, so the former must fail before.
    # On the gap of exactly 2**bits, "largest gap 2**bits" and "no fillers" agree; both have
    # failed on Fig. 2 already.
    cases = [
        Case("a non-zero at position 0 and a gap of exactly 2**bits - 1 = 7 (3 bits: no filler)",
             (edge, 3)),
        Case("the paper's Fig. 2 example (3-bit gaps, a filler needed)", (fig2, 3)),
        Case("a gap of exactly 2**bits = 8 (3 bits: a filler, then gap 0)", (over, 3)),
        Case("a short array with no overflow (3 bits)", (exact, 3)),
        Case("40 weights, 4 non-zeros, 2-bit gaps (several fillers)", (sparse(40, 4), 2)),
        Case("61 weights, 7 non-zeros, 3-bit gaps, then 10 zeros at the end",
             (np.concatenate([sparse(50, 6), [1.0], np.zeros(10)]), 3)),
        Case("an all-zero array", (np.zeros(9), 2)),
    ]
    mistakes = [
        Mistake(_absolute, "you stored absolute positions; store the *gap* to the previous "
                "stored entry (zeros skipped), which needs only a few bits."),
        Mistake(_position_difference, "you stored the position difference (gap + 1); store the "
                "number of zeros skipped, so that 0 .. 2**bits - 1 are all usable and a weight at "
                "position 0 has gap 0."),
        Mistake(_first_gap_from_zero, "the first gap counts the zeros before the first stored "
                "entry from the start of the array: take the previous position as -1, not 0 "
                "(a non-zero at position 0 has gap 0)."),
        Mistake(_no_fillers, "some gaps are larger than 2**bits - 1 and cannot be stored in `bits` "
                "bits: insert a filler zero (value 0, gap 2**bits - 1) and keep counting."),
        Mistake(_clipped, "you clipped large gaps to 2**bits - 1, which puts the weight in the "
                "wrong place; insert a filler zero instead."),
        Mistake(_wrapped, "you wrapped large gaps modulo 2**bits; the decoder cannot know a wrap "
                "happened -- insert a filler zero instead."),
        Mistake(_filler_takes_no_position, "a filler is itself a stored entry on one of the "
                "zeros: after a filler with gap 2**bits - 1 the remaining gap drops by 2**bits "
                "(the skipped zeros plus the filler's own position), not by 2**bits - 1."),
        Mistake(_filler_on_last_zero, "off by one: a gap of exactly 2**bits - 1 still fits. Insert "
                "a filler only when *more* zeros follow; it then sits on the 2**bits-th zero, "
                "after 2**bits - 1 skipped ones (your filler recorded one zero too many)."),
        Mistake(_filler_one_early, "off by one: the largest gap is 2**bits - 1, which fits in "
                "`bits` bits; you used 2**bits - 2 (a filler as soon as the gap reaches "
                "2**bits - 1)."),
        Mistake(_max_gap_2_pow_bits, "the largest gap that fits in `bits` bits is 2**bits - 1, "
                "not 2**bits (that needs bits + 1 bits)."),
        Mistake(_trailing_fillers, "zeros after the last non-zero need no fillers: the decoder "
                "knows the array's length."),
        Mistake(_trailing_entry, "zeros after the last non-zero are not stored at all (no "
                "fillers, no final entry): the decoder knows the array's length."),
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


def _entropy_ceil(counts):
    return math.ceil(_entropy_bits(counts))


def _shannon_lengths(counts):
    """Shannon's code: ceil(log2(n / c)) bits for a symbol seen c times out of n."""
    c = np.asarray(counts, dtype=float)
    c = c[c > 0]
    return int((c * np.ceil(np.log2(c.sum() / c))).sum())


def _average_length(counts):
    return _reference_bits(counts) / int(np.sum(counts))


def _bytes(counts):
    return math.ceil(_reference_bits(counts) / 8)


def _bytes_floor(counts):
    return _reference_bits(counts) // 8


def _bytes_float(counts):
    return _reference_bits(counts) / 8


def _single_zero(counts):
    c = np.asarray(counts)
    return 0 if (c > 0).sum() == 1 else _reference_bits(counts)


def _sum_of_lengths(counts):
    return int(encode.huffman_lengths(np.asarray(counts)).astype(int).sum())


def _zeros_kept(counts):
    """The merge-sum solution with the absent symbols (count 0) left in the heap."""
    heap = [int(c) for c in counts]
    if sum(1 for c in heap if c > 0) == 1:
        return sum(heap)
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total


def _no_symbols_equal(got, want):
    """All counts zero: nothing to encode, 0 bits (a specific hint for anything else). Against a
    classic mistake's output (not 0) it is a plain comparison."""
    value = as_number(got)
    if value is not None and value == float(want):
        return True
    if want != 0:
        return False
    raise Feedback(f"with all counts zero no symbol occurs and there is nothing to encode: "
                   f"return 0 bits (got {got!r}).")


@checker("5.2", "Huffman encoded size", lesson="05a_deep_compression")
def check_huffman_bits(huffman_bits):
    """``huffman_bits(counts)`` must return the total bits of the Huffman-coded data (0 when
    every count is zero)."""
    # The textbook counts come first: every mistake below gives a different number there
    # except the three byte counts (224 bits = 28 bytes exactly: same hint) and the two
    # fixed widths (6 symbols present, 6 in the alphabet: both "fixed-width").
    cases = [
        Case("counts [45, 13, 12, 16, 9, 5] (the textbook example)", ([45, 13, 12, 16, 9, 5],)),
        Case("counts [10, 10, 10, 10] (uniform)", ([10, 10, 10, 10],)),
        Case("counts [1, 1, 2, 3, 5, 8, 13] (Fibonacci: long codes)", ([1, 1, 2, 3, 5, 8, 13],)),
        Case("counts [0, 50, 0, 3, 7, 0, 0, 0] (absent symbols)", ([0, 50, 0, 3, 7, 0, 0, 0],)),
        Case("counts [0, 0, 17, 0] (one symbol: each still needs one bit)", ([0, 0, 17, 0],)),
        Case("counts [900, 40, 30, 20, 5, 3, 1, 1] (gaps after pruning)", ([900, 40, 30, 20, 5, 3, 1, 1],)),
        Case("counts [7, 5, 3, 1, 1] (not a whole number of bytes)", ([7, 5, 3, 1, 1],)),
        # Last: an answer right on every real code can still stumble on an empty one.
        Case("all-zero counts [0, 0, 0, 0] (no symbol occurs: return 0)", ([0, 0, 0, 0],),
             equal=_no_symbols_equal),
    ]
    mistakes = [
        Mistake(_single_zero, "with a single symbol the code still needs 1 bit per symbol, not 0."),
        Mistake(_entropy_bits, "you computed the entropy bound n * H; Huffman codes use whole "
                "bits per symbol, so build the code and add up count * code length."),
        Mistake(_entropy_ceil, "you rounded the entropy bound n * H up; Huffman's total is "
                "count * code length summed over the symbols of the code it builds."),
        Mistake(_shannon_lengths, "you gave each symbol ceil(log2(n / count)) bits (Shannon's "
                "code); Huffman's code, built by merging the two rarest, is shorter."),
        Mistake(_fixed_width, "that is the fixed-width size (the same ceil(log2 k) bits for "
                "every symbol, k symbols); Huffman gives frequent symbols shorter codes."),
        Mistake(_fixed_width_alphabet, "that is the fixed-width size over the whole alphabet; "
                "Huffman gives frequent symbols shorter codes."),
        Mistake(_bytes, "return bits, not bytes (do not divide by 8)."),
        Mistake(_bytes_floor, "return bits, not bytes (do not divide by 8)."),
        Mistake(_bytes_float, "return bits, not bytes (do not divide by 8)."),
        Mistake(_average_length, "you returned the average code length (bits per symbol); "
                "return the total: count * code length summed over the symbols."),
        Mistake(_sum_of_lengths, "you added the code lengths; weight each by its symbol's count."),
        Mistake(_zeros_kept, "symbols with count 0 do not occur: leave them out of the code "
                "(merging them in makes real symbols' codes longer)."),
    ]

    return compare_cases(huffman_bits, _reference_bits, cases, mistakes, equal=same_number("total bits"))


# --------------------------------------------------------------------------------------------
# 5.3 your own Deep Compression (open capstone): a file >= 60x smaller, <= 1 point lost
# --------------------------------------------------------------------------------------------
CAPSTONE_RATIO = 60          # float32 parameter bytes / bytes of the saved file, at least
CAPSTONE_MAX_LOSS = 0.01     # test accuracy lost against the dense model, at most (1 point)


def _part_advice(part: dict, entry: dict | None) -> str:
    """What to change when ``part`` (a row of the breakdown, or the header) is the largest."""
    kind = part["part"]
    if kind == "header":
        return ("the header and the .npz container are a fixed cost; every other part is "
                "already smaller, so shrink the payload further (more sparsity, fewer bits).")
    if kind == "raw":
        tip = ("remove the hidden units that pruning left without weights (cl.prune.shrink): "
               "their biases go with them")
        if part["coding"] == "float32":
            return f"store the biases as float16 (bias_dtype=\"float16\"), and {tip}."
        return f"{tip}."
    sparse = bool(entry and entry.get("sparse"))
    if kind == "values" and part["coding"] == "float32":
        if not sparse:
            return ("this weight is stored dense as float32 (4 bytes per weight): prune it, so "
                    "that only its non-zeros are stored, and share its values with k-means "
                    "(cl.quant.kmeans) so that each is a few-bit codebook index.")
        return ("its non-zero values are stored as float32 (4 bytes each): share them with "
                "k-means (cl.quant.kmeans, then cl.quant.finetune_codebooks) so that each becomes "
                "a few-bit codebook index.")
    if kind == "values":
        if not sparse:
            return ("this weight is stored dense, one index per weight: prune it, so that only "
                    "its non-zeros are stored.")
        tip = "fewer bits for this layer (a smaller codebook) or more sparsity"
        if "packed" in part["coding"]:
            return f"Huffman-code the indices (huffman=True or \"auto\"), or use {tip}."
        return f"use {tip}."
    if kind == "gaps":
        tip = ("prune more (fewer non-zeros, fewer gaps), or try another gap width: wider gaps "
               "need fewer filler zeros, narrower ones fewer bits each")
        if "packed" in part["coding"]:
            return f"Huffman-code the gaps (huffman=True or \"auto\"), or {tip}."
        return f"{tip}."
    if kind.endswith("_table"):
        return ("a Huffman table stores one code length per possible symbol: fewer bits per "
                "index or a narrower gap width makes it shorter.")
    return "fewer bits for this layer (a smaller codebook)."


def _largest_part(packed: "encode.CompressedModel", size: int) -> str:
    """The largest part of the file (a row of the breakdown, or header + container), said with
    its bytes and what to change."""
    parts = packed.breakdown() + [{"param": "file", "part": "header", "coding": "",
                                   "bytes": size - packed.nbytes}]
    big = max(parts, key=lambda r: r["bytes"])
    entry = next((p for p in packed.header["params"] if p["name"] == big["param"]), None)
    what = ("the header and container" if big["part"] == "header"
            else f"{big['param']} {big['part']} ({big['coding']})")
    return (f"{what}, {big['bytes']:,} bytes ({big['bytes'] / size:.0%} of the file): "
            f"{_part_advice(big, entry)}")


def _is_pruned(model) -> bool:
    """Whether a weight matrix of ``model`` is mostly zeros (pruned, not merely small)."""
    return any(float(np.mean(layer.weight == 0)) >= 0.2 for layer in model.layers
               if isinstance(layer, nn.Linear))


def _accuracy_hint(model, reference, digits, acc: float, acc_dense: float) -> str:
    loss = acc_dense - acc
    msg = (f"the test accuracy is {100 * acc:.1f}%, {100 * loss:.1f} points below the dense "
           f"model's {100 * acc_dense:.1f}% (at most {100 * CAPSTONE_MAX_LOSS:.0f} point allowed). ")
    pruned = _is_pruned(model)
    fit, fit_dense = (nn.evaluate(m, digits.X_train, digits.y_train) for m in (model, reference))
    if fit < fit_dense - 0.02:
        if pruned:
            return msg + (f"Even on the training split it reaches only {100 * fit:.1f}% (dense: "
                          f"{100 * fit_dense:.1f}%): retrain after pruning, with the masks in "
                          "place (cl.prune.agp, or cl.nn.fit after cl.prune.apply_masks), and "
                          "fine-tune the codebooks after k-means (cl.quant.finetune_codebooks); if "
                          "you did, the network has too little left: prune less or give it more "
                          "bits.")
        return msg + (f"Even on the training split it reaches only {100 * fit:.1f}% (dense: "
                      f"{100 * fit_dense:.1f}%): train it longer (cl.nn.fit, or "
                      "cl.distill.train_student for a student) and fine-tune the codebooks after "
                      "k-means (cl.quant.finetune_codebooks); if you did, the model is too small "
                      "or too coarse: give it more hidden units or more bits.")
    tip = ("prune the sensitive layers less or give them more bits" if pruned else
           "nothing is pruned, so give it more hidden units or more bits (and then prune, to "
           "win back the bytes)")
    return msg + (f"It still fits the training split, so it lost what generalises: {tip}; "
                  "compare settings on the validation split (digits.X_val, digits.y_val), never "
                  "on the test split.")


class TrainValSplit:
    """The digits without their test split: what the function of exercise 5.3 receives.

    ``X_train``, ``y_train``, ``X_val``, ``y_val`` (copies), ``image_shape``, ``num_classes`` and
    :meth:`images` work as in :class:`compresslab.data.Split`; ``X_test`` and ``y_test`` raise
    an ``AttributeError`` that says the test split is held back for the check."""

    _HELD_BACK = ("the test split is held back: exercise 5.3's checker alone reads it. Choose "
                  "your settings on the validation split (digits.X_val, digits.y_val).")

    def __init__(self, split):
        for name in ("X_train", "y_train", "X_val", "y_val"):
            setattr(self, name, np.array(getattr(split, name), copy=True))
        self.image_shape = tuple(split.image_shape)
        self.num_classes = int(split.num_classes)

    @property
    def X_test(self):
        raise AttributeError(self._HELD_BACK)

    @property
    def y_test(self):
        raise AttributeError(self._HELD_BACK)

    def images(self, part: str = "train") -> np.ndarray:
        """The features of ``part`` ("train" or "val") reshaped to (N, 1, H, W)."""
        if part == "test":
            raise AttributeError(self._HELD_BACK)
        if part not in ("train", "val"):
            raise ValueError(f"part must be 'train' or 'val', got {part!r}")
        X = getattr(self, f"X_{part}")
        return X.reshape(len(X), 1, *self.image_shape)

    def __repr__(self) -> str:
        return (f"TrainValSplit(train={len(self.y_train)}, val={len(self.y_val)}, test held back, "
                f"image_shape={self.image_shape}, num_classes={self.num_classes})")


def without_test(split) -> TrainValSplit:
    """``split`` without its test split (see :class:`TrainValSplit`)."""
    return TrainValSplit(split)


@checker("5.3", "your own Deep Compression", lesson="05b_capstone")
def check_capstone(compress, dense, digits, path):
    """Run ``compress(dense, train_val, path)`` on a copy of ``dense`` and the digits WITHOUT
    their test split (:func:`without_test`: touching ``X_test`` raises), then grade the FILE at
    ``path``: loaded with :func:`compresslab.encode.load_packed` (a corrupt or altered file is
    refused), its size on disk against the float32 parameter bytes of ``dense`` (at least
    ``CAPSTONE_RATIO`` times smaller) and its test accuracy against the dense model's on the same
    split (at most ``CAPSTONE_MAX_LOSS`` lower). A file already at ``path`` is removed first, so
    only what the function writes counts."""
    path = os.fspath(path)
    reference = dense.copy()                     # the learner's function may change its copy
    float32_bytes = 4 * nn.num_params(reference)
    X_test, y_test = np.array(digits.X_test, copy=True), np.array(digits.y_test, copy=True)
    if os.path.exists(path):
        os.remove(path)
    returned = call(compress, Case("the lesson's dense model and the train/validation digits",
                                   (dense.copy(), without_test(digits), path)))
    name = os.path.basename(path)
    if not os.path.exists(path):
        got = ("your function returned a model but wrote no file" if isinstance(
            returned, (nn.Sequential, encode.CompressedModel)) else "no file was written")
        raise Feedback(f"{got}: save the compressed model to the `path` your function receives "
                       f"({name}), e.g. with cl.encode.save(model_or_packed, path).")
    size = os.path.getsize(path)
    try:
        packed = encode.load_packed(path)
        model = packed.to_model()
    except Exception as exc:  # noqa: BLE001 -- any damage must read as one hint
        why = str(exc).replace(path, name) or type(exc).__name__
        raise Feedback(f"the file is corrupt or not a compresslab model file: {why}. Write it with "
                       "cl.encode.save and do not change it afterwards (a SHA-256 checksum "
                       "guards it).") from None
    try:
        acc = nn.evaluate(model, X_test, y_test)
    except Exception:  # noqa: BLE001
        raise Feedback(f"the model in {name} cannot classify the digits (64 inputs, 10 classes): "
                       "compress the dense model you are given.") from None
    acc_dense = nn.evaluate(reference, X_test, y_test)
    ratio = float32_bytes / size
    accurate = acc_dense - acc <= CAPSTONE_MAX_LOSS + 1e-9
    if ratio < CAPSTONE_RATIO:
        msg = (f"the file is {size:,} bytes on disk, {ratio:.1f}x smaller than the "
               f"{float32_bytes:,} float32 bytes; the target is {CAPSTONE_RATIO}x (at most "
               f"{float32_bytes // CAPSTONE_RATIO:,} bytes). Its largest part is "
               f"{_largest_part(packed, size)}")
        if not accurate:
            msg += (f" The test accuracy loss is too large as well ({100 * (acc_dense - acc):.1f} "
                    "points).")
        raise Feedback(msg)
    if not accurate:
        raise Feedback(_accuracy_hint(model, reference, digits, acc, acc_dense))
    return (f"the saved file is at least {CAPSTONE_RATIO}x smaller than the float32 parameters "
            f"and loses at most {100 * CAPSTONE_MAX_LOSS:.0f} point of test accuracy.")


# --------------------------------------------------------------------------------------------
# Self-check quiz
# --------------------------------------------------------------------------------------------
check_quiz_a = quiz("5a.quiz", "05a_deep_compression", [
    Question(
        "With 3-bit gaps (largest gap 7), a non-zero weight comes 20 zeros after the previous "
        "stored entry. How many filler zeros does the relative-index encoder store before it?",
        answer=2, tol=0,
        why={"number": "a filler records gap 2**bits - 1 = 7 and takes one position itself, so "
                       "each filler uses up 8 of the zeros; the weight's own gap must end at 7 "
                       "or less."}),
    Question(
        "In section 6's sweep the Huffman-coded file shrank from 4,937 bytes with 3-bit gaps to "
        "4,228 bytes with 7-bit gaps, although every fixed-width gap got wider. Why?",
        answer="c",
        options={"a": "wider gaps let k-means use fewer centroids",
                 "b": "a wider gap stores each weight's position more precisely, so fewer weights "
                      "are rounded away",
                 "c": "fewer gaps overflow, so fewer filler zeros are stored, and the Huffman code "
                      "gives the common short gaps short codes whatever the width",
                 "d": "the header shrinks when the gaps get wider"},
        why={"a": "the codebooks were fixed in section 5 (4, 3 and 4 bits per layer); the gap "
                  "width does not touch them.",
             "b": "relative indices are exact at every width: a gap is never rounded, a long run "
                  "of zeros only overflows into filler entries.",
             "d": "the header describes the streams and holds a fixed-size checksum; look at the "
                  "Huffman-coded bytes column, which falls as well."}),
    Question(
        "After Huffman coding, the encoded parameters are 57.1x smaller than the float32 ones, yet "
        "the file on disk is 47.9x smaller. Where do the other bytes go?",
        answer="d",
        options={"a": "the file stores the biases in float32, the stage's count in float16",
                 "b": "the Huffman code tables are saved in the file but left out of the stage's "
                      "count",
                 "c": "the file also keeps the dense weights, so that it loads fast",
                 "d": "a JSON layout of the streams, a SHA-256 checksum and the .npz container"},
        why={"a": "both are packed with bias_dtype=\"float16\": the same biases in the count and "
                  "in the file.",
             "b": ".nbytes already counts the code-length tables, with the values, gaps and "
                  "codebooks.",
             "c": "the dense weights alone are 202,440 bytes, about fifty times the whole file."}),
])

check_quiz_b = quiz("5b.quiz", "05b_capstone", [
    Question(
        "Loaded from its 48x smaller file, the Deep-Compression model runs no faster than the "
        "dense one in NumPy. Why?",
        answer="b",
        options={"a": "every forward pass decodes the Huffman codes again",
                 "b": "loading decodes it to dense float32 arrays: the same matrix products as "
                      "the dense model",
                 "c": "weights that share a k-means centroid are slower to multiply",
                 "d": "the SHA-256 checksum is verified on every call"},
        why={"a": "decoding happens once, in cl.encode.load, not in the forward pass.",
             "c": "after decoding, a shared value is an ordinary float32 number like any other.",
             "d": "the checksum is checked once, when the file is read."}),
    Question(
        "A variant's speedup over the baseline is 1.02 with 95 % confidence interval [1.01, "
        "1.04]. What does the comparison table's verdict say?",
        answer="c",
        options={"a": "faster", "b": "no clear difference", "c": "no practical difference",
                 "d": "slower"},
        why={"a": "an interval above 1 is not enough: two runs of the very same code can differ "
                  "by a few percent, so the verdict asks the whole interval to clear 1.05.",
             "b": "that verdict is for an interval that crosses an edge of the band 1 +- 5 %; "
                  "look where both ends of this one lie.",
             "d": "a speedup above 1 means less time than the baseline, not more."}),
    Question(
        "Under the table's energy assumptions (Horowitz's 45 nm numbers, batch 1), how does the "
        "Deep-Compression model, decoded to dense float32 as this lesson runs it, compare with "
        "the dense model in energy per inference?",
        answer="b",
        options={"a": "about 48x less, like its file",
                 "b": "about the same",
                 "c": "more, because Huffman decoding costs energy on every inference",
                 "d": "about 20x less, because 96 % of its weights are zero"},
        why={"a": "the file's size is not what is read per inference: look at what the runtime "
                  "holds after cl.encode.load (the memory column).",
             "c": "decoding happens once, at load time, not per inference.",
             "d": "a dense kernel multiplies the zeros too, and reads them from memory like any "
                  "other weight."}),
    Question(
        "For exercise 5.3 you try 12 settings, keep the one with the best TEST accuracy and "
        "report that accuracy. What is wrong with it?",
        answer="a",
        options={"a": "the reported accuracy is biased upward: the test split's luck took part in "
                      "the choice",
                 "b": "nothing: the test split exists to measure accuracy",
                 "c": "the file gets larger",
                 "d": "it is only a problem when the test split is smaller than the training "
                      "split"},
        why={"b": "the test split measures honestly only a model chosen without looking at it.",
             "c": "which split you choose on does not change how the bytes are counted.",
             "d": "the split's size is not the issue; using it to choose is."}),
])
