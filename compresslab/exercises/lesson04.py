"""Checkers for lessons 04a (benchmarking: 4.1, 4.2, quiz 4a) and 04b (hardware: 4.3-4.5, quiz 4b).

Every checker lists the classic wrong versions a learner writes (``Mistake``, each with a hint
naming that mistake) and orders its cases so that the first case a wrong version gets wrong
already tells it apart from the reference and from the other versions: the hint comes from the
mistakes that match the answer on its first failing case. Where two mistakes agree there, the
comment above the cases says so.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import encode, nn, speed
from ._core import Case, Feedback, Mistake, Question, as_number, checker, compare_cases, quiz, same


def _same_number(what):
    """An ``equal`` for one number: close to 1e-9 relative; a string, None or a sequence is
    not a number (``float("4.7")`` would otherwise pass)."""

    def equal(a, b):
        value = as_number(a) if np.ndim(a) == 0 else None
        if value is None:
            raise Feedback(f"return one number ({what}), got {type(a).__name__}.")
        return bool(np.isclose(value, float(b), rtol=1e-9, atol=1e-12))

    return equal


# --------------------------------------------------------------------------------------------
# 4.3 Amdahl's law (lesson 04b)
# --------------------------------------------------------------------------------------------
def _amdahl(p, n):
    return float(speed.amdahl(p, n))


def _amdahl_time(p, n):
    """The new time as a fraction of the old one (the reciprocal of the speedup)."""
    return (1 - p) + p / n


def _amdahl_swapped(p, n):
    """p and 1 - p swapped: the serial part is divided by n."""
    return 1 / (p + (1 - p) / n)


def _gustafson(p, n):
    return (1 - p) + p * n


def _amdahl_linear(p, n):
    return p * n


def _amdahl_limit(p, n):
    """1 / (1 - p): the bound for n -> infinity; also what ``p // n`` (always 0 for p < 1) gives."""
    return 1 / (1 - p)


def _amdahl_floor(p, n):
    return 1 // ((1 - p) + p / n)


def _amdahl_formula(p, n):
    """The right formula written out (a mistake built on it must not call the library's
    ``speed.amdahl``: an answer that does is refused as calling the function it should write)."""
    return 1.0 / ((1.0 - p) + p / n)


def _amdahl_inf_at_one(p, n):
    """A guard ``if p == 1: return inf`` in front of the right formula."""
    return math.inf if p == 1 else _amdahl_formula(p, n)


def _amdahl_rounded(p, n):
    return round(_amdahl_formula(p, n), 2)


@checker("4.3", "Amdahl's law", lesson="04b_hardware")
def check_amdahl(amdahl_speedup):
    """``amdahl_speedup(p, n)`` must return ``1 / ((1 - p) + p / n)``."""
    # The first case separates every mistake below from the reference and from each other;
    # p = 0.5 on 2 cores does not (p and 1 - p swapped is right there, p * n equals the floor).
    cases = [Case("p = 0.9 on 8 cores", (0.9, 8)),
             Case("p = 0.5 on 2 cores", (0.5, 2)),
             Case("p = 0 (nothing parallel) on 4 cores", (0.0, 4)),
             Case("p = 1 (all parallel) on 16 cores", (1.0, 16)),
             Case("p = 0.75 on 1 core (one worker: no speedup)", (0.75, 1)),
             Case("p = 1 on 1 core", (1.0, 1)),
             Case("p = 0.99 on 1000 cores", (0.99, 1000))]
    mistakes = [
        Mistake(_amdahl_time, "you returned the new *time* (as a fraction of the old one); the "
                "speedup is old time / new time, its reciprocal."),
        Mistake(_amdahl_swapped, "you swapped p and 1 - p: the serial part (1 - p) keeps its "
                "time, only the parallel fraction p runs n times faster: 1 / ((1 - p) + p / n)."),
        Mistake(_gustafson, "that is Gustafson's scaled speedup (the job grows with n); Amdahl's "
                "law is for a fixed job: 1 / ((1 - p) + p / n)."),
        Mistake(_amdahl_linear, "p * n ignores the serial fraction (1 - p), which still takes its "
                "full time: 1 / ((1 - p) + p / n)."),
        Mistake(_amdahl_limit, "your p / n term vanished: 1 / (1 - p) is the limit for infinitely "
                "many workers. Did you write p // n (floor division, 0 whenever p < 1)? Use /."),
        Mistake(_amdahl_floor, "your speedup is rounded down to a whole number: use / (true "
                "division), not // (floor division)."),
        Mistake(_amdahl_inf_at_one, "with p = 1 the whole job runs n times faster: the speedup "
                "is n, not infinite (1 / (1 - p) is only the limit for infinitely many workers)."),
        Mistake(_amdahl_rounded, "you rounded the speedup; return it unrounded (round only when "
                "printing)."),
    ]
    return compare_cases(amdahl_speedup, _amdahl, cases, mistakes,
                         equal=_same_number("the speedup"))


# --------------------------------------------------------------------------------------------
# 4.4 arithmetic intensity of a Linear layer (lesson 04b)
# --------------------------------------------------------------------------------------------
def _ref_intensity(batch, n_in, n_out, bytes_per_value=4):
    v = 8 * bytes_per_value                   # the exercise's model: every value the same width
    c = speed.layer_costs(nn.mlp((n_in, n_out)), batch, bits=v, act_bits=v, bias_bits=v)[0]
    return c.flops / c.bytes


def _values(b, i, o):
    """Values moved: weights, bias, input and output activations."""
    return i * o + o + b * i + b * o


def _int_macs(b, i, o, v=4):
    return b * i * o / (v * _values(b, i, o))


def _int_weights_only(b, i, o, v=4):
    return 2 * b * i * o / (v * (i * o + o))


def _int_no_bias(b, i, o, v=4):
    return 2 * b * i * o / (v * (i * o + b * i + b * o))


def _int_bias_n_in(b, i, o, v=4):
    return 2 * b * i * o / (v * (i * o + i + b * i + b * o))


def _int_no_input(b, i, o, v=4):
    return 2 * b * i * o / (v * (i * o + o + b * o))


def _int_no_output(b, i, o, v=4):
    return 2 * b * i * o / (v * (i * o + o + b * i))


def _int_bias_32bit(b, i, o, v=4):
    """The bias kept at 4 bytes (int32 / float32, as real int8 kernels do) whatever v is."""
    return 2 * b * i * o / (v * (i * o + b * i + b * o) + 4 * o)


def _int_values(b, i, o, v=4):
    return 2 * b * i * o / _values(b, i, o)


def _int_always_4(b, i, o, v=4):
    return 2 * b * i * o / (4 * _values(b, i, o))


def _int_bits(b, i, o, v=4):
    return 2 * b * i * o / (8 * v * _values(b, i, o))


def _int_one_sample_activations(b, i, o, v=4):
    return 2 * b * i * o / (v * (i * o + o + i + o))


def _int_no_batch(b, i, o, v=4):
    """Batch ignored; algebraically the same as weights counted once per sample:
    2 b i o / (v (b (i o + o) + b i + b o))."""
    return 2 * i * o / (v * (i * o + o + i + o))


def _int_flops_no_batch(b, i, o, v=4):
    return 2 * i * o / (v * _values(b, i, o))


def _int_bias_flops(b, i, o, v=4):
    return (2 * b * i * o + b * o) / (v * _values(b, i, o))


def _int_inverted(b, i, o, v=4):
    return v * _values(b, i, o) / (2 * b * i * o)


def _int_floor(b, i, o, v=4):
    return 2 * b * i * o // (v * _values(b, i, o))


@checker("4.4", "arithmetic intensity of a Linear layer", lesson="04b_hardware")
def check_intensity(linear_intensity):
    """``linear_intensity(batch, n_in, n_out, bytes_per_value=4)``: FLOPs per byte moved, with
    FLOPs = 2 * batch * n_in * n_out and bytes = (weights + bias + input + output) * bytes_per_value."""
    # The first case separates every mistake but the hard-coded 4 bytes (all values or only the
    # bias: the int8 case catches those) from the reference and from each other: n_in != n_out
    # (input vs output, bias of n_out vs n_in), batch > 1 (the batch mistakes) and batch != 8
    # (bits vs bytes would equal FLOPs without the batch).
    cases = [Case("batch 16, 64 -> 10", (16, 64, 10)),
             Case("batch 1, 1024 -> 1024", (1, 1024, 1024)),
             Case("batch 64, 1024 -> 1024", (64, 1024, 1024)),
             Case("batch 256, 512 -> 2048 in int8 (bytes_per_value = 1)", (256, 512, 2048, 1)),
             Case("batch 32, 300 -> 100 in float16 (bytes_per_value = 2)", (32, 300, 100, 2))]
    mistakes = [
        Mistake(_int_macs, "you counted MACs; each multiply-accumulate is 2 FLOPs (a multiply and "
                "an add): FLOPs = 2 * batch * n_in * n_out."),
        Mistake(_int_weights_only, "you counted only the parameter bytes; the input and output "
                "activations move too."),
        Mistake(_int_no_bias, "you forgot the bias: n_out values."),
        Mistake(_int_bias_n_in, "the bias has n_out values (one per output), not n_in."),
        Mistake(_int_no_input, "you forgot the input activations: batch * n_in values."),
        Mistake(_int_no_output, "you forgot the output activations: batch * n_out values."),
        Mistake(_int_values, "you divided by the number of values, not bytes: multiply the values "
                "by bytes_per_value (default 4)."),
        Mistake(_int_always_4, "you used 4 bytes per value whatever bytes_per_value says "
                "(1 for int8, 2 for float16)."),
        Mistake(_int_bias_32bit, "you kept the bias at 4 bytes per value; real int8 kernels do "
                "(int32 biases), but this exercise's model gives every value, the bias included, "
                "bytes_per_value bytes."),
        Mistake(_int_bits, "you divided by bits, not bytes: bytes = values * bytes_per_value."),
        Mistake(_int_one_sample_activations, "you counted one sample's activations; the input is "
                "batch x n_in and the output batch x n_out values."),
        Mistake(_int_no_batch, "your answer does not grow with the batch: either you ignored "
                "the batch, or you moved the weights once per sample. The weights are read once "
                "and used batch times; only FLOPs and activations scale with the batch."),
        Mistake(_int_flops_no_batch, "you left the batch out of the FLOPs: every sample needs "
                "2 * n_in * n_out of them."),
        Mistake(_int_bias_flops, "you counted the bias additions as FLOPs; the task counts "
                "FLOPs = 2 x MACs only."),
        Mistake(_int_inverted, "you returned bytes per FLOP; intensity is FLOPs / bytes."),
        Mistake(_int_floor, "your result is rounded down to a whole number: use / (true "
                "division), not // (floor division)."),
    ]
    return compare_cases(linear_intensity, _ref_intensity, cases, mistakes,
                         equal=_same_number("FLOPs per byte"))


# --------------------------------------------------------------------------------------------
# 4.1 break-even sparsity (lesson 04a)
# --------------------------------------------------------------------------------------------
class _Sentinel:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_ANY_NUMBER = _Sentinel("<any number>")  # a mistake's output that matches every number
_NO_MATCH = _Sentinel("<no match>")      # a mistake's output that matches nothing


def _ref_break_even(sparsities, speedups):
    """The smallest tested sparsity ``s`` such that every measurement at ``s`` and at every higher
    tested sparsity is faster (speedup > 1); None when there is none, or no measurement at all.

    A sparsity measured more than once counts as faster only when every measurement at it is.
    This is :func:`compresslab.speed.break_even` (``tests/test_speed_exercises.py`` checks it)."""
    pairs = list(zip(sparsities, speedups))
    not_faster = [s for s, v in pairs if not v > 1]
    faster_from = [s for s, _ in pairs if all(s > t for t in not_faster)]
    return min(faster_from, default=None)


def _be_first_above(s, v):
    """The first sparsity (in the given order) with a speedup > 1."""
    return next((a for a, b in zip(s, v) if b > 1), None)


def _be_first_above_sorted(s, v):
    return next((a for a, b in sorted(zip(s, v)) if b > 1), None)


def _be_highest(s, v):
    return max((a for a, b in zip(s, v) if b > 1), default=None)


def _trailing_run(pairs, faster):
    result = None
    for a, b in reversed(pairs):
        if faster(b):
            result = a
        else:
            break
    return result


def _be_at_least_one(s, v):
    """The reference with speedup >= 1 counted as faster."""
    return _trailing_run(sorted(zip(s, v)), lambda b: b >= 1)


def _be_unsorted(s, v):
    """The reference without sorting the pairs by sparsity first."""
    return _trailing_run(list(zip(s, v)), lambda b: b > 1)


def _be_last_slower(s, v):
    """One grid point too low: the highest tested sparsity where sparse was not faster."""
    pairs = sorted(zip(s, v))
    slow = [k for k, (_, b) in enumerate(pairs) if b <= 1]
    if not slow or slow[-1] == len(pairs) - 1:
        return _NO_MATCH
    return pairs[slow[-1]][0]


def _be_interpolated(s, v):
    """Linear interpolation of where the curve crosses 1, between the last slower tested point
    and the break-even (what ``np.interp(1, speedups, sparsities)`` gives on a rising curve)."""
    pairs = sorted(zip(s, v))
    ref = _ref_break_even(s, v)
    k = next((k for k, (a, _) in enumerate(pairs) if a == ref), 0) if ref is not None else 0
    if ref is None or k == 0:
        return _NO_MATCH
    (s0, v0), (s1, v1) = pairs[k - 1], pairs[k]
    return s0 + (1 - v0) * (s1 - s0) / (v1 - v0)


def _be_number_for_none(s, v):
    return _ANY_NUMBER if _ref_break_even(s, v) is None else _NO_MATCH


def _be_number_for_empty(s, v):
    return _ANY_NUMBER if len(s) == 0 else _NO_MATCH


def _be_repeat_best(s, v):
    """The loop over the sorted (sparsity, speedup) pairs, from the top: at a repeated sparsity
    it meets the best measurement first and takes the sparsity before it sees the slower one."""
    return _trailing_run(sorted(zip(s, v)), lambda b: b > 1)


def _by_sparsity(s, v):
    out = {}
    for a, b in zip(s, v):
        out.setdefault(a, []).append(b)
    return out


def _be_repeat_max(s, v):
    """The best of a repeated sparsity's measurements kept ("faster if any measurement is"),
    then the walk down from the top sparsity."""
    best = {a: max(b) for a, b in _by_sparsity(s, v).items()}
    return _ref_break_even(list(best), list(best.values()))


def _be_repeat_mean(s, v):
    """The repeated measurements of a sparsity averaged first."""
    means = {a: float(np.mean(b)) for a, b in _by_sparsity(s, v).items()}
    return _ref_break_even(list(means), list(means.values()))


def _be_none_on_repeats(s, v):
    """None whenever a sparsity is repeated (a repeat taken for an invalid input)."""
    return None if len(set(s)) < len(s) else _ref_break_even(s, v)


def _be_repeat_first(s, v):
    """``d.setdefault(sparsity, speedup)``: a repeated sparsity keeps only its first measurement."""
    first = {}
    for a, b in zip(s, v):
        first.setdefault(a, b)
    return _ref_break_even(list(first), list(first.values()))


def _be_repeat_walk_stable(s, v):
    """The loop from the top over ``sorted(zip(s, v), key=lambda p: p[0])``: the sort is stable,
    so at a repeated sparsity the loop meets its last-listed measurement first, takes the
    sparsity if that one is faster, and stops only at the next (slower) one."""
    return _trailing_run(sorted(zip(s, v), key=lambda p: p[0]), lambda b: b > 1)


def _be_repeat_last(s, v):
    """``dict(zip(sparsities, speedups))``: a repeated sparsity keeps only its last measurement."""
    last = dict(zip(s, v))
    return _ref_break_even(list(last), list(last.values()))


def _break_even_equal(a, b):
    if isinstance(a, (str, bytes)):
        raise Feedback(f"return a sparsity (a float) or None, got {type(a).__name__}.")
    if b is _NO_MATCH:
        return False
    if b is _ANY_NUMBER:
        return isinstance(a, (numbers.Real, np.number)) and not isinstance(a, bool)
    if a is None or b is None:
        return a is None and b is None
    value = as_number(a) if np.ndim(a) == 0 else None
    if value is None:
        raise Feedback(f"return a sparsity (a float) or None, got {type(a).__name__}.")
    return abs(value - float(b)) < 1e-12


@checker("4.1", "break-even sparsity", lesson="04a_benchmarking")
def check_break_even(break_even):
    """``break_even(sparsities, speedups)``: the smallest tested sparsity from which on every
    measurement (at it and at every higher tested sparsity) has speedup > 1; None if there is
    none, or no measurement at all. A repeated sparsity is faster only if all its measurements are."""
    # Each case is the first that some mistake gets wrong, and on it that mistake's answer
    # differs from every other mistake's: the clean curve catches the highest-winner, the
    # one-point-low and the interpolation; the noisy one the first-above-1; then the tie at 1,
    # the unsorted input, and None. On the tie, >= 1 and one-point-low both give 0.9: the
    # >= mistake is listed first (one-point-low has already failed on the clean curve).
    # The repeated-sparsity cases come after every case without repeats: the best of the
    # repeats, the last of them (a dict) and the stable-sorted loop fail on the first; the
    # first of them (setdefault) on the second, where the mean is right; the dict and the
    # stable-sorted loop differ on the third; the mean fails on the fourth only. The max of the
    # repeats agrees with the best-first loop and with first-above-1 on the first repeat case
    # and differs from both on the third (it walks on down to 0.8): an answer is
    # named by the mistake that agrees with it on the most cases. Empty input
    # comes last: a number there is named by the empty-input mistake (listed before the
    # None mistake, which agrees with it there and on no other case such an answer fails).
    cases = [
        Case("a clean curve", ([0.5, 0.7, 0.9, 0.95, 0.99], [0.2, 0.6, 1.3, 2.1, 5.0])),
        Case("a noisy curve that dips below 1 again at 0.9",
             ([0.5, 0.8, 0.9, 0.95], [0.3, 1.1, 0.9, 2.5])),
        Case("a speedup of exactly 1 is not faster", ([0.8, 0.9, 0.95], [0.7, 1.0, 1.4])),
        Case("sparsities not in order",
             ([0.9, 0.5, 0.95, 0.8, 0.99], [1.2, 0.4, 2.0, 1.1, 4.0])),
        Case("sparse never wins", ([0.5, 0.9, 0.99], [0.1, 0.5, 0.9])),
        Case("sparse always wins", ([0.6, 0.8], [1.5, 3.0])),
        Case("the highest sparsity only ties (speedup exactly 1)", ([0.5, 0.9, 0.99], [0.3, 0.8, 1.0])),
        Case("a noisy curve, not in order", ([0.99, 0.5, 0.9], [4.0, 0.4, 1.2])),
        Case("0.9 measured twice: 0.8x, then 1.1x",
             ([0.5, 0.9, 0.9, 0.95], [0.3, 0.8, 1.1, 2.5])),
        Case("0.9 measured twice: 1.2x, then 0.6x (mean 0.9x)",
             ([0.5, 0.9, 0.95, 0.9], [0.4, 1.2, 2.0, 0.6])),
        Case("0.9 measured twice (0.8x, then 1.1x), 0.8 faster",
             ([0.8, 0.9, 0.9, 0.95], [1.3, 0.8, 1.1, 2.5])),
        Case("0.9 measured twice: 1.5x, then 0.7x (mean 1.1x)",
             ([0.9, 0.5, 0.95, 0.9], [1.5, 0.4, 3.0, 0.7])),
        Case("0.95 measured twice, faster both times", ([0.95, 0.8, 0.95], [2.0, 0.9, 1.6])),
        Case("no measurements at all (two empty lists)", ([], [])),
    ]
    mistakes = [
        Mistake(_be_first_above, "you returned the first sparsity with speedup > 1, but at a "
                "higher sparsity it was slower again: break-even means faster from there on."),
        Mistake(_be_first_above_sorted, "you returned the first sparsity with speedup > 1, but "
                "at a higher sparsity it was slower again: break-even means faster from there on."),
        Mistake(_be_highest, "you returned the highest sparsity where sparse wins; we want the "
                "lowest from which on it always wins."),
        Mistake(_be_at_least_one, "a speedup of exactly 1 is not faster: count only speedup > 1 "
                "(use >, not >=)."),
        Mistake(_be_last_slower, "one tested point too low: you returned the last sparsity where "
                "sparse is *not* faster; break-even is the next tested sparsity up."),
        Mistake(_be_interpolated, "you interpolated between two tested points; return a tested "
                "sparsity (the smallest one from which on sparse is faster)."),
        Mistake(_be_unsorted, "the sparsities may come in any order: sort the (sparsity, "
                "speedup) pairs by sparsity first."),
        Mistake(_be_repeat_max, "you kept the best (max) of a repeated sparsity's measurements "
                "(faster if any measurement is); it counts as faster only when every one of its "
                "measurements is (> 1): a repeated measurement that is slower means noise, not a win."),
        Mistake(_be_repeat_best, "a sparsity measured more than once counts as faster only when "
                "every measurement at it is; yours took it because one of them was faster."),
        Mistake(_be_repeat_mean, "you averaged the repeated measurements of a sparsity; it counts "
                "as faster only when every one of them is faster (> 1), not their mean."),
        Mistake(_be_repeat_first, "you kept only the first measurement of a repeated sparsity "
                "(d.setdefault(sparsity, speedup)?); every measurement counts: the sparsity is "
                "faster only when all of them are (> 1)."),
        Mistake(_be_repeat_walk_stable, "walking the pairs sorted by sparsity alone from the "
                "top, you took a repeated sparsity on the measurement you met first (its "
                "last-listed one) and stopped only at the next, slower one; the sparsity is "
                "faster only when every one of its measurements is (> 1)."),
        Mistake(_be_repeat_last, "you kept one measurement of a repeated sparsity (a dict "
                "{sparsity: speedup} keeps only the last one); every measurement counts: the "
                "sparsity is faster only when all of them are."),
        Mistake(_be_none_on_repeats, "a sparsity measured more than once is a valid input, "
                "not a reason to give up: it counts as faster when every one of its measurements "
                "is (> 1)."),
        Mistake(_be_number_for_empty, "with no measurements there is no break-even: return None."),
        Mistake(_be_number_for_none, "the sparse kernel is not faster at the highest tested "
                "sparsity, so there is no break-even: return None."),
    ]
    return compare_cases(break_even, _ref_break_even, cases, mistakes, equal=_break_even_equal)


# --------------------------------------------------------------------------------------------
# 4.2 a sparse matrix-vector product from CSR arrays
# --------------------------------------------------------------------------------------------
def _csr_arrays(dense, shuffle_seed=None):
    """``(data, indices, indptr)`` of a dense matrix, row by row; with ``shuffle_seed`` the
    entries of each row come in a random column order (CSR allows that; scipy does too)."""
    dense = np.asarray(dense, dtype=float)
    rows, cols = np.nonzero(dense)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[0]))])
    order = np.arange(rows.size)
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        for i in range(dense.shape[0]):
            order[indptr[i]:indptr[i + 1]] = rng.permutation(order[indptr[i]:indptr[i + 1]])
    rows, cols = rows[order], cols[order]
    return dense[rows, cols], cols.astype(np.int64), indptr.astype(np.int64)


def _random_sparse(rng, shape, density, decimals=2):
    """Values with ``decimals`` decimals (short hints), or full float64 ones (``None``)."""
    values = rng.uniform(-3, 3, size=shape)
    values = values if decimals is None else np.round(values, decimals)
    return np.where(rng.random(shape) < density, values, 0.0)


def _csr_cases():
    """``(Case, dense matrix)`` pairs: the matrix is what the case's CSR arrays stand for."""
    rng = np.random.default_rng(44)
    # Case 1 (5 x 5, not symmetric, rows of 3, 1, 0, 2 and 2 non-zeros, an empty row in the
    # middle) already separates every mistake below from the reference and from each other.
    first = np.array([[2., 0, 1, 0, 3],
                      [0, 4, 0, 0, 0],
                      [0, 0, 0, 0, 0],
                      [5, 0, 0, 1, 0],
                      [0, 2, 0, 0, 6]])
    unsorted = _random_sparse(rng, (6, 8), 0.6)
    unsorted[2] = 0.0
    edges = _random_sparse(rng, (6, 5), 0.5)
    edges[[0, 5]] = 0.0
    edges[2, 1] = edges[3, 4] = 1.5                      # the rows between are not empty
    specs = [
        ("a 5x5 matrix with an empty row in the middle", first, None, [1., 2, 3, 4, 5]),
        ("a 4x7 matrix (more columns than rows)", _random_sparse(rng, (4, 7), 0.4), None, None),
        ("a 7x3 matrix (more rows than columns)", _random_sparse(rng, (7, 3), 0.5), None, None),
        ("a 6x5 matrix whose first and last rows are empty", edges, None, None),
        ("a 3x4 matrix without any non-zero (indptr = [0, 0, 0, 0])", np.zeros((3, 4)), None, None),
        ("a single column (a 5x1 matrix)", np.array([[1.5], [0], [-2], [0.5], [0]]), None, None),
        ("a 6x8 matrix whose column indices are not sorted within a row", unsorted, 7, None),
        ("a 40x30 matrix, 85% zeros, full-precision values",
         _random_sparse(rng, (40, 30), 0.15, decimals=None), None, "full"),
        ("a matrix with no rows (indptr = [0])", np.zeros((0, 3)), None, None),
    ]
    out = []
    # Every matrix and x but the 40x30 ones have two decimals, so that a product rounded to 4
    # or more decimals is exact on them; the 40x30 case catches a y rounded anyway.
    for description, dense, seed, x in specs:
        if x is None or x == "full":
            x_values = rng.uniform(-2, 2, dense.shape[1])
            x = np.round(x_values, 2) if x is None else x_values
        x = np.asarray(x, dtype=float)
        out.append((Case(description, (*_csr_arrays(dense, seed), x)), dense))
    return out


_CSR_CASES = _csr_cases()


def _ref_csr_matvec(data, indices, indptr, x):
    """``A @ x`` with A rebuilt by the library's CSR decoder (scipy's ``csr_matrix((data,
    indices, indptr), shape) @ x`` gives the same: ``tests/test_speed_exercises.py``)."""
    shape = (len(indptr) - 1, len(x))
    return encode.csr_decode(encode.CSR(data, indices, indptr, shape)) @ x


def _rows(indptr):
    return range(len(indptr) - 1)


def _loop_csr_matvec(data, indices, indptr, x):
    """The right product written out (a mistake built on it must not call the library's CSR
    decoder: an answer that does is refused as calling the function it should write)."""
    y = np.zeros(len(indptr) - 1)
    for i in _rows(indptr):
        s, e = indptr[i], indptr[i + 1]
        y[i] = np.sum(np.asarray(data[s:e], dtype=float) * np.asarray(x, dtype=float)[indices[s:e]])
    return y


def _mv_first_only(data, indices, indptr, x):
    """``data[indptr[i]:indptr[i] + 1]``: only the first non-zero of each row."""
    y = np.zeros(len(indptr) - 1)
    for i in _rows(indptr):
        s, e = indptr[i], min(indptr[i] + 1, indptr[i + 1])
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _mv_drop_last(data, indices, indptr, x):
    """``data[indptr[i]:indptr[i + 1] - 1]``: the last non-zero of each row left out."""
    y = np.zeros(len(indptr) - 1)
    for i in _rows(indptr):
        s, e = indptr[i], max(indptr[i], indptr[i + 1] - 1)
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _mv_one_extra(data, indices, indptr, x):
    """``data[indptr[i]:indptr[i + 1] + 1]``: the next row's first non-zero counted too."""
    y = np.zeros(len(indptr) - 1)
    for i in _rows(indptr):
        s, e = indptr[i], indptr[i + 1] + 1
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _mv_shifted(data, indices, indptr, x):
    """``data[indptr[i - 1]:indptr[i]]``: every row gets the previous row's entries
    (row 0 the slice ``indptr[-1]:indptr[0]``, which is empty)."""
    y = np.zeros(len(indptr) - 1)
    for i in _rows(indptr):
        s, e = indptr[i - 1], indptr[i]
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _mv_transposed(data, indices, indptr, x):
    """indptr read as column pointers: ``A.T @ x`` (on a square matrix)."""
    y = np.zeros(len(x))
    for j in _rows(indptr):
        s, e = indptr[j], indptr[j + 1]
        y[indices[s:e]] += data[s:e] * x[j]
    return y


def _mv_skip_empty(data, indices, indptr, x):
    """Only the rows with a non-zero get an entry."""
    y = []
    for i in _rows(indptr):
        s, e = indptr[i], indptr[i + 1]
        if e > s:
            y.append(np.sum(data[s:e] * x[indices[s:e]]))
    return np.array(y)


def _mv_len_indptr(data, indices, indptr, x):
    """``np.zeros(len(indptr))``: one entry too many (a trailing 0)."""
    y = np.zeros(len(indptr))
    y[:-1] = _loop_csr_matvec(data, indices, indptr, x)
    return y


def _mv_len_x(data, indices, indptr, x):
    """``np.zeros(len(x))``, one entry per column: rows past ``len(x)`` lost, or zeros added."""
    n = min(len(x), len(indptr) - 1)
    y = np.zeros(len(x))
    y[:n] = _loop_csr_matvec(data, indices, indptr, x)[:n]
    return y


def _mv_x_by_row(data, indices, indptr, x):
    """``data[s:e] * x[i]``: x indexed by the row, not the column."""
    y = np.zeros(len(indptr) - 1)
    for i in _rows(indptr):
        s, e = indptr[i], indptr[i + 1]
        y[i] = np.sum(data[s:e] * x[i]) if e > s else 0.0
    return y


def _mv_reduceat(data, indices, indptr, x):
    """``np.add.reduceat(data * x[indices], indptr[:-1])``: an empty row gets the next entry
    instead of 0 (and an empty last row raises)."""
    return np.add.reduceat(data * x[indices], indptr[:-1])


def _mv_bincount_short(data, indices, indptr, x):
    """``np.bincount(rows, weights=...)`` without ``minlength``: the result stops at the last
    row with a non-zero (trailing empty rows lost)."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return np.bincount(rows, weights=data * x[indices]).astype(np.float64)


# y must be float64, the dtype of ``data * x`` for the float64 arrays the checker passes (and
# what ``np.zeros(n_rows)`` gives). A float32 y rounds every sum to about 7 significant digits,
# an integer one truncates it: neither is "y = A @ x". The values are compared to a relative
# 1e-9, which float64 sums in any order meet and float32 ones do not.
CSR_RTOL, CSR_ATOL = 1e-9, 1e-12


def _as_array(got):
    try:
        return np.asarray(got)
    except Exception:   # a ragged list, say
        return np.asarray(None)


def _csr_equal(got, want):
    if got is None or isinstance(got, (str, bytes, numbers.Number)):
        raise Feedback(f"return a NumPy array y of shape (len(indptr) - 1,), got "
                       f"{type(got).__name__}.")
    if _as_array(got).dtype != np.float64:
        return False                                  # _csr_explain names the dtype
    return same(got, want, rtol=CSR_RTOL, atol=CSR_ATOL)


def _csr_explain(got, want, case):
    arr = _as_array(got)
    where = f"on {case.description}"
    if arr.dtype.kind in "iub":
        empty = len(case.args[0]) == 0
        cause = ("np.bincount returns integer zeros when it has nothing to add (no non-zeros), "
                 "even with weights=, and so does a list of Python ints (y = [0] * n)"
                 if empty else
                 "an integer array (np.zeros_like(indptr), dtype=int) truncates every sum")
        return (f"y is an integer array ({arr.dtype}) {where}: {cause}. y must be float64: "
                "start from np.zeros(n_rows), or convert with .astype(np.float64).")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        return (f"y is {arr.dtype} (np.longdouble) {where}; it must be float64, the dtype of "
                "data * x here: extended precision is not wrong in value, but y = A @ x on "
                "float64 arrays is float64. Start from np.zeros(n_rows), or convert with "
                ".astype(np.float64).")
    if arr.dtype.kind == "f" and arr.dtype != np.float64:
        return (f"y is {arr.dtype} {where}; it must be float64, the dtype of data * x here: "
                f"a {arr.dtype} y rounds every sum (float32 keeps about 7 significant digits, "
                "float16 about 3). Start from np.zeros(n_rows) (float64), not dtype=np.float32.")
    if arr.dtype != np.float64:
        return (f"y has dtype {arr.dtype} {where}: return a float64 NumPy array of shape "
                "(len(indptr) - 1,).")
    shape = np.shape(got)
    if shape != np.shape(want):
        return (f"y has shape {shape} {where}, expected {np.shape(want)}: one "
                "entry per row of A, len(indptr) - 1 of them (an empty row gives 0).")
    if same(got, want, rtol=1e-5, atol=1e-6):
        return (f"y is float64 and agrees with A @ x to 5 significant digits but not to 9 "
                f"{where}: was something computed in float32 (x or data converted?) or rounded? "
                "Compute in float64 and do not round.")
    return None


@checker("4.2", "a sparse matrix-vector product from CSR", lesson="04a_benchmarking")
def check_csr_matvec(csr_matvec):
    """``csr_matvec(data, indices, indptr, x)`` must return ``A @ x`` as a float64 array:
    ``y[i]`` is the sum of ``data[k] * x[indices[k]]`` over ``indptr[i] <= k < indptr[i + 1]``,
    to a relative ``CSR_RTOL``. Results are judged, not code: a correct vectorised answer
    (``np.bincount`` with ``minlength``, as float64) passes too."""
    # The first case (square, so the transposed product has the right length; an empty row in
    # the middle for reduceat and the skipped rows) separates every mistake from the reference
    # and from each other, except one entry per column (len(x)), which is right on a square
    # matrix: the 4x7 case is the first it gets wrong, and there no other mistake agrees; and
    # bincount without minlength, right until the 6x5 case (the first with an empty last row),
    # where its length differs from the skipped rows' and every other mistake's.
    cases = [case for case, _ in _CSR_CASES]
    mistakes = [
        Mistake(_mv_first_only, "you used only one non-zero per row (indptr[i]:indptr[i] + 1?): "
                "row i's non-zeros are all of data[indptr[i]:indptr[i + 1]]."),
        Mistake(_mv_drop_last, "the last non-zero of each row is missing: the slice "
                "indptr[i]:indptr[i + 1] already stops before indptr[i + 1]; do not subtract 1."),
        Mistake(_mv_one_extra, "each row also took the next row's first non-zero: slice "
                "indptr[i]:indptr[i + 1], not indptr[i + 1] + 1 (the end is excluded already)."),
        Mistake(_mv_shifted, "your rows are shifted by one (off-by-one in the row slice): "
                "y[i] comes from data[indptr[i]:indptr[i + 1]], not indptr[i - 1]:indptr[i]."),
        Mistake(_mv_transposed, "you computed A.T @ x (rows and columns swapped): indptr marks "
                "where each *row* starts; y[i] = sum of data[k] * x[indices[k]] over row i."),
        Mistake(_mv_skip_empty, "you left out the empty rows: a row without non-zeros "
                "(indptr[i] == indptr[i + 1]) still gets an entry, y[i] = 0; y has "
                "len(indptr) - 1 entries."),
        Mistake(_mv_len_indptr, "y has one entry too many: indptr has n_rows + 1 entries, so "
                "y has len(indptr) - 1."),
        Mistake(_mv_len_x, "y has one entry per column (len(x)); it needs one per row of A: "
                "len(indptr) - 1."),
        Mistake(_mv_x_by_row, "you multiplied by x[i], x at the row; each non-zero meets x at "
                "its column: x[indices[k]]."),
        Mistake(_mv_reduceat, "np.add.reduceat does not give 0 for an empty row (it returns "
                "the next product there): loop over the rows, an empty one gives y[i] = 0."),
        Mistake(_mv_bincount_short, "np.bincount stops at the last row that has a non-zero: "
                "trailing empty rows need minlength=len(indptr) - 1 to get their 0."),
    ]
    result = compare_cases(csr_matvec, _ref_csr_matvec, cases, mistakes, equal=_csr_equal,
                           explain=_csr_explain)
    _check_inputs_unchanged(csr_matvec, cases)
    return result


def _check_inputs_unchanged(csr_matvec, cases):
    """The statement says "do not modify the inputs": call the answer on copies of each case's
    arrays and compare them with the originals afterwards (``data *= x[indices]`` gives the
    right y, but changes data)."""
    names = ("data", "indices", "indptr", "x")
    for case in cases:
        given = tuple(np.array(a, copy=True) for a in case.args)
        try:
            csr_matvec(*given)
        except Exception:       # compare_cases has already run it on this case without error
            continue
        for name, before, after in zip(names, case.args, given):
            if np.shape(before) != np.shape(after) or not np.array_equal(before, after):
                raise Feedback(f"y is right, but your function changed its input {name} in "
                               f"place on {case.description}: do not modify the inputs. Write "
                               "the products to a new array (data * x[indices], not data *= "
                               "..., and no out= on an input).")


# --------------------------------------------------------------------------------------------
# Self-check quiz
# --------------------------------------------------------------------------------------------
check_quiz_a = quiz("4a.quiz", "04a_benchmarking", [
    Question(
        "`speed.compare` reports a variant's speedup over the baseline as 1.03x, 95% CI "
        "[1.01, 1.04], with the default band. What is its verdict, and why?",
        "b",
        options={
            "a": "\"faster\": the whole interval lies above 1, so the difference is not noise.",
            "b": "\"no practical difference\": the whole interval lies inside the band "
                 "[1/1.05, 1.05], set wider than the same work on other memory (`dense (copy)`) "
                 "moves by.",
            "c": "\"no clear difference\": an interval this narrow cannot be trusted; measure longer.",
            "d": "\"slower\": every ratio below 1.05 counts against the variant.",
        },
        why={
            "a": "an interval that excludes 1 is not enough: the verdict reads the interval "
                 "against the practical band around 1 (section 2), which is there because a "
                 "few percent is what the A/A reference moves by.",
            "c": "\"no clear difference\" is for an interval that straddles an edge of the band; "
                 "look where both ends of this one lie.",
            "d": "\"slower\" needs the whole interval below 1/1.05, about 0.95; a ratio above 1 "
                 "means the variant took less time than the baseline.",
        }),
    Question(
        "Section 4's masked model has half of its hidden units zeroed: 49% fewer non-zero "
        "multiply-adds than the dense model. Why was it no faster, while the shrunk model was?",
        "b",
        options={
            "a": "At batch 64 the model is memory-bound, so fewer multiply-adds cannot help.",
            "b": "The dense kernel multiplies the zeros like any other number: the masked model "
                 "does the dense model's work on matrices of the same size, and only shrinking "
                 "makes the matrices smaller.",
            "c": "Multiplying by zero is slower than multiplying by other numbers on a CPU.",
            "d": "The torch copy of the masked model lost its masks and computes something else.",
        },
        why={
            "a": "the counters of section 4 put the batch-64 model at about 22 FLOP/byte, on the "
                 "compute side of the roofline (lesson 04b places it); and the shrunk "
                 "model, with fewer multiply-adds, did get faster.",
            "c": "a zero costs the multiplier what any other float32 costs (it is not a "
                 "denormal); ask how much work the kernel is given, not which values it gets.",
            "d": "the lesson checks that the masked and the shrunk model give the same outputs: "
                 "the masks are there, as zeros in the weights.",
        }),
    Question(
        "A weight matrix is stored in CSR with float32 values and int32 column indices. Ignoring "
        "the row pointers, above which sparsity does the CSR form take fewer bytes than the "
        "dense float32 matrix? Give a fraction between 0 and 1.",
        0.5, tol=1e-6,
        why={"number": "the dense matrix costs 4 bytes per weight, zero or not; CSR costs, per "
                       "non-zero, its value and its column index. Write both for a fraction s "
                       "of zeros, solve for equality, and give s as a fraction, not a percentage."}),
])

check_quiz_b = quiz("4b.quiz", "04b_hardware", [
    Question(
        "A machine has a peak of 100 GFLOP/s and a memory bandwidth of 25 GB/s. By the roofline "
        "model, at most how many GFLOP/s can a matrix-vector product of arithmetic intensity "
        "0.5 FLOP/byte attain on it?",
        12.5, tol=0.01,
        why={"number": "the roofline caps an operation at the smaller of two roofs; work out "
                       "on which side of the ridge point (peak / bandwidth) 0.5 FLOP/byte lies, "
                       "and which roof applies there."}),
    Question(
        "Section 3's thread-scaling fit gives a job a parallel fraction p = 0.8. By Amdahl's law, "
        "what is the largest speedup any number of cores can give this job?",
        5.0, tol=0.01,
        why={"number": "let the number of cores grow without bound in Amdahl's law: the parallel "
                       "part's time vanishes, and what is left is the serial part, which keeps "
                       "its full time."}),
    Question(
        "In the shipped GPU reference of section 1, the GPU's speedup over all 16 CPU threads is "
        "about 5x at batch 1 and about 30x from batch 1024 on, copies included. Why does it grow "
        "with the batch?",
        "b",
        options={
            "a": "The GPU raises its clock speed when it is given more work.",
            "b": "Each call has fixed costs (a kernel launch, the copies) that at batch 1 cost "
                 "about as much as the arithmetic, and a small batch leaves most of its "
                 "arithmetic units idle; a large batch spreads those costs and keeps the units busy.",
            "c": "The CPU slows down at large batches because the activations no longer fit in "
                 "its main memory.",
            "d": "At large batches torch switches the GPU to a lower precision than the CPU's.",
        },
        why={
            "a": "the clock is not what changes with the batch; ask what a call costs that does "
                 "not depend on the batch, and how much of the GPU a single input can use.",
            "c": "the largest batch's activations take a few tens of MB, far below main memory; "
                 "the CPU's time grows with the batch as its arithmetic does.",
            "d": "the reference measures float32 on both sides at every batch (benchmarks/"
                 "gpu_reference.py); the precision does not change.",
        }),
    Question(
        "The machine slows down steadily during a benchmark (it heats up and throttles). You "
        "time A, then B, in every round, always in that order, and report B's speedup over A "
        "as median(A) / median(B). What does the drift do to that number?",
        "b",
        options={
            "a": "Nothing: medians are robust, so a steady drift cancels out.",
            "b": "It makes B look slower than it is: in every round B runs later than A, on a "
                 "slower machine.",
            "c": "It makes B look faster than it is, because A runs first, on a cold cache.",
            "d": "Only the bootstrap interval widens; the speedup itself stays unbiased.",
        },
        why={
            "a": "a median resists a few outliers, not a shift that hits every sample of one "
                 "function the same way; ask which function always runs at the later time.",
            "c": "this question is about the drift, not the cache; which of the two always "
                 "runs later, on the slower machine?",
            "d": "a bias that hits every round the same way moves the medians themselves; "
                 "resampling the same biased rounds cannot remove it.",
        }),
])


# --------------------------------------------------------------------------------------------
# 4.5 (lesson 04b) an interleaved benchmark with a bootstrap interval, checked with a fake clock
# --------------------------------------------------------------------------------------------
class _FakeClock:
    """A stopwatch that only the fake functions move: ``clock()`` reads the time, in seconds."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _fake_bench(spec):
    """A fresh fake clock and ``{name: function}`` from a scenario (a plain tuple, so the checker
    can rebuild it for every call). Call ``n`` (from 0) of function number ``j`` with base
    duration ``d``, made at clock time ``t``, advances the clock by ``d * (1 + drift * t)``,
    times ``1 + spike`` on every fourth call (``n % 4 == 3``), times ``1 + jitter * u`` with a
    fixed uneven ``u`` in [0, 1) (the optional fifth entry; 0 without it), plus ``cold`` on the
    first call (its warm-up). The jitter spreads the resampled ratios over many values, so that
    a 90% interval and a 95% one (or two different draws) cannot land on the same numbers."""
    durations, drift, spike, cold, *rest = spec
    jitter = rest[0] if rest else 0.0
    clock = _FakeClock()

    def make(d, j):
        calls = [0]

        def fn():
            n = calls[0]
            calls[0] += 1
            wobble = 1 + jitter * (((n + 1) * 0.6180339887 + 0.37 * j) % 1.0)
            step = d * (1 + drift * clock.t) * (1 + (spike if n % 4 == 3 else 0.0)) * wobble
            clock.t += step + (cold if n == 0 else 0.0)
        return fn

    return clock, {name: make(d, j) for j, (name, d) in enumerate(durations)}


def _interleaved(fns, clock, rounds, *, warm=True, rotate=1):
    """The timed rounds of the reference, or of a variant (no warm-up, another rotation)."""
    names = list(fns)
    if warm:
        for k in names:
            fns[k]()
    samples = {k: np.empty(rounds) for k in names}
    for r in range(rounds):
        s = (rotate * r) % len(names)
        for k in names[s:] + names[:s]:
            t0 = clock()
            fns[k]()
            samples[k][r] = clock() - t0
    return names, samples


def _boot(names, samples, rounds, n_boot, seed, *, stat=np.median, paired=True, inverted=False,
          one_rng=True, tails=0.025):
    """The speedups and intervals of the reference, or of a variant (the statistic, unpaired
    resampling, the ratio's direction, a generator per name, the tails)."""
    g = np.random.default_rng(seed)
    base, out = samples[names[0]], {}
    for k in names[1:]:
        if not one_rng:
            g = np.random.default_rng(seed)
        lo, hi = _bootstrap(base, samples[k], n_boot, g, stat, tails, inverted, paired)
        ratio = stat(samples[k]) / stat(base) if inverted else stat(base) / stat(samples[k])
        out[k] = (float(ratio), lo, hi)
    return out


def _bootstrap(base, other, n_boot, g, stat, tails, inverted, paired):
    n = len(base)
    if paired and stat is np.median and not inverted and tails == 0.025:
        return speed._bootstrap_ratio(base, other, n_boot, 0.95, g)
    i = g.integers(0, n, size=(n_boot, n))
    j = i if paired else g.integers(0, n, size=(n_boot, n))
    a, b = stat(base[i], axis=1), stat(other[j], axis=1)
    ratios = b / a if inverted else a / b
    lo, hi = np.quantile(ratios, [tails, 1 - tails])
    return float(lo), float(hi)


def _bench(spec, rounds, n_boot, seed, **how):
    """Run a scenario through the reference (no keywords) or one variant (keywords)."""
    clock, fns = _fake_bench(spec)
    boot = {k: how.pop(k) for k in ("stat", "paired", "inverted", "one_rng", "tails") if k in how}
    names, samples = _interleaved(fns, clock, rounds, **how)
    return _boot(names, samples, rounds, n_boot, seed, **boot)


def _ref_interleaved(spec, rounds, n_boot, seed):
    return _bench(spec, rounds, n_boot, seed)


def _variant(**how):
    return lambda spec, rounds, n_boot, seed: _bench(spec, rounds, n_boot, seed, **dict(how))


def _with_fake_clock(fn):
    """The learner's ``fn(fns, clock, rounds, n_boot, seed)`` on a fresh fake run of ``spec``."""
    def run(spec, rounds, n_boot, seed):
        clock, fns = _fake_bench(spec)
        return fn(fns, clock, rounds, n_boot=n_boot, seed=seed)
    return run


def _same_speedups(got, want):
    if not isinstance(got, dict):
        raise Feedback(f"return a dict {{name: (speedup, low, high)}}, got {type(got).__name__}.")
    if list(got) != list(want):
        raise Feedback(f"return one entry for every function but the baseline (the first), in "
                       f"the given order: expected keys {list(want)}, got {list(got)}.")
    for k, w in want.items():
        g = got[k]
        if isinstance(g, (str, bytes)) or np.ndim(g) != 1 or len(g) != 3:
            raise Feedback(f"each value must be a tuple (speedup, low, high); for {k!r} you "
                           f"returned {g!r}.")
        try:
            if not np.allclose(np.asarray(g, dtype=float), w, rtol=1e-9, atol=1e-12):
                return False
        except (TypeError, ValueError):
            raise Feedback(f"(speedup, low, high) must be numbers; for {k!r} you returned "
                           f"{g!r}.") from None
    return True


# (name, base seconds) pairs, drift per second of clock time, the every-fourth-call spike, the
# cold first call[, the jitter]
_SPEC_DRIFT = ((("dense", 2e-3), ("shrunk", 1e-3), ("int8", 1.5e-3)), 30.0, 0.5, 5e-3)
_SPEC_FLAT = ((("A", 1e-3), ("A again", 1e-3)), 0.0, 0.5, 2e-3)
_SPEC_FOUR = ((("w", 1e-3), ("x", 4e-3), ("y", 2e-3), ("z", 3e-3)), 10.0, 1.0, 1e-2, 0.6)


@checker("4.5", "an interleaved benchmark with a bootstrap interval", lesson="04b_hardware")
def check_interleaved(interleaved_speedup):
    """``interleaved_speedup(fns, clock, rounds, n_boot=2000, seed=0)``: one warm-up call each,
    ``rounds`` rounds in rotating order, timed with ``clock``; ``{name: (median ratio, 2.5%,
    97.5%)}`` with the rounds resampled in pairs, as :func:`compresslab.speed.compare` does."""
    # The first case (four functions, drift, spikes, uneven call times, a cold first call, 24
    # rounds) separates every mistake below from the reference and from each other by at least
    # 4% somewhere, and also the answers no mistake describes (another draw of the resampled
    # rounds, e.g. a transposed index array): with fewer rounds and no jitter the resampled
    # ratios take so few values that a 90% and a 95% interval can coincide. On the A/A case
    # only the unpaired bootstrap differs (pairing makes every resampled ratio exactly 1).
    cases = [Case("four functions, uneven calls, the machine slowing down during the run, "
                  "24 rounds", (_SPEC_FOUR, 24, 400, 2)),
             Case("three functions, drift, 7 rounds", (_SPEC_DRIFT, 7, 300, 0)),
             Case("a function against itself (A/A), no drift, 8 rounds", (_SPEC_FLAT, 8, 200, 1))]
    mistakes = [
        Mistake(_variant(rotate=0), "every round runs the functions in the same order, so the "
                "drift within a round always hits the same one: rotate the order, round r "
                "starting at function r mod k."),
        Mistake(_variant(rotate=-1), "your rotation runs the other way: round r starts at "
                "function number r mod k of the given order, and goes on in that order."),
        Mistake(_variant(warm=False), "the first call of each function is part of your "
                "samples: call every function once, untimed, before the first round."),
        Mistake(_variant(stat=np.mean), "you used the mean; a few slow samples (an interrupt, "
                "a page fault) drag a mean, the median resists them: use medians, in the "
                "speedup and in every resample."),
        Mistake(_variant(stat=np.min), "you used the minimum: the speedup here is a ratio of "
                "medians, in the speedup and in every resample."),
        Mistake(_variant(inverted=True), "your ratio is upside down: speedup = median(baseline "
                "time) / median(variant time), so a faster variant gets a number above 1."),
        Mistake(_variant(paired=False), "you resampled each function's samples on their own; "
                "resample whole rounds (the same round indices for both), so that what drift "
                "did to a round stays paired."),
        Mistake(_variant(one_rng=False), "your intervals after the first variant repeat its "
                "draws: make one generator, default_rng(seed), before the loop over the "
                "variants, and draw from it for each variant in turn."),
        Mistake(_variant(tails=0.05), "your interval is a 90% one: the 95% percentile interval "
                "cuts 2.5% from each end of the resampled ratios."),
    ]
    if not callable(interleaved_speedup):
        raise Feedback(f"expected a function, got {type(interleaved_speedup).__name__}. Pass the "
                       "function itself, without calling it (no parentheses).")
    return compare_cases(_with_fake_clock(interleaved_speedup), _ref_interleaved, cases,
                         mistakes, equal=_same_speedups, explain=_explain_interleaved)


def _explain_interleaved(got, want, case):
    """Hints that no listed variant gives exactly: speedups upside down however the interval was
    made, and right speedups with a wrong interval."""
    try:
        speedups = [float(got[k][0]) for k in want]
    except (TypeError, ValueError, KeyError, IndexError):
        return None
    if np.allclose(speedups, [1 / w[0] for w in want.values()], rtol=1e-9):
        return ("your speedups are upside down: speedup = median(baseline time) / median(variant "
                f"time), so a faster variant gets a number above 1 (seen on {case.description}).")
    if np.allclose(speedups, [w[0] for w in want.values()], rtol=1e-9):
        return ("your speedups are right, but not your intervals: one generator "
                "default_rng(seed) for all variants, g.integers(0, rounds, size=(n_boot, rounds)) "
                "for each in turn, the same rounds for both functions, medians, and the 2.5% and "
                f"97.5% quantiles (seen on {case.description}).")
    return None
