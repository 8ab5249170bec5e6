"""Lessons 04a and 04b checkers (4.1-4.2 and quiz 4a in 04a, 4.3-4.5 and quiz 4b in 04b): the
lesson's solution passes, every plausible wrong answer is rejected with
the hint that names its mistake (the first failing case must tell the mistakes apart)."""
from __future__ import annotations

import inspect
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from compresslab import speed
from compresslab.exercises import ERROR, FAIL, NOT_ATTEMPTED, PASS
from compresslab.exercises import lesson04 as ex


def _nie(*_a, **_k):
    raise NotImplementedError()


def _fails_with(check, answer, words):
    r = check(answer, quiet=True)
    assert r.status == FAIL, r
    assert words in r.message, r.message
    return r


# --------------------------------------------------------------------------------------------
# The solution cells of lessons/04a_benchmarking.ipynb (4.1, 4.2) and lessons/04b_hardware.ipynb
# (4.3-4.5), copied verbatim (between the markers): if a lesson's solution stops passing its
# checker, these tests fail.
# --------------------------------------------------------------------------------------------
def amdahl_speedup(p, n):
    ### BEGIN SOLUTION
    return 1.0 / ((1.0 - p) + p / n)
    ### END SOLUTION


def linear_intensity(batch, n_in, n_out, bytes_per_value=4):
    ### BEGIN SOLUTION
    flops = 2 * batch * n_in * n_out
    values = n_in * n_out + n_out + batch * n_in + batch * n_out
    return flops / (values * bytes_per_value)
    ### END SOLUTION


def break_even(sparsities, speedups):
    ### BEGIN SOLUTION
    not_faster = [s for s, v in zip(sparsities, speedups) if v <= 1]
    faster_from = [s for s in sparsities if all(s > t for t in not_faster)]
    return min(faster_from, default=None)
    ### END SOLUTION


def csr_matvec(data, indices, indptr, x):
    ### BEGIN SOLUTION
    data = np.asarray(data, dtype=float)
    indices = np.asarray(indices)
    indptr = np.asarray(indptr)
    x = np.asarray(x, dtype=float)
    n_rows = len(indptr) - 1
    y = np.zeros(n_rows)
    for i in range(n_rows):
        start, end = indptr[i], indptr[i + 1]
        row_values = data[start:end]
        row_columns = indices[start:end]
        y[i] = np.sum(row_values * x[row_columns])
    return y
    ### END SOLUTION


def interleaved_speedup(fns, clock, rounds, n_boot=2000, seed=0):
    ### BEGIN SOLUTION
    names = list(fns)
    for name in names:                      # warm-up: one untimed call each
        fns[name]()
    times = {name: np.empty(rounds) for name in names}
    for r in range(rounds):
        start = r % len(names)
        for name in names[start:] + names[:start]:
            t0 = clock()
            fns[name]()
            times[name][r] = clock() - t0
    g = np.random.default_rng(seed)
    base, result = times[names[0]], {}
    for name in names[1:]:
        idx = g.integers(0, rounds, size=(n_boot, rounds))   # whole rounds, the same for both
        ratios = np.median(base[idx], axis=1) / np.median(times[name][idx], axis=1)
        low, high = np.quantile(ratios, [0.025, 0.975])
        result[name] = (float(np.median(base) / np.median(times[name])), float(low), float(high))
    return result
    ### END SOLUTION


_LESSONS = Path(__file__).resolve().parents[1] / "lessons"
LESSON_A = _LESSONS / "04a_benchmarking.ipynb"
LESSON_B = _LESSONS / "04b_hardware.ipynb"


def _solution_cell(grade_id):
    cells = [c for lesson in (LESSON_A, LESSON_B)
             for c in json.loads(lesson.read_text(encoding="utf-8"))["cells"]]
    cell = next(c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(cell["source"])


@pytest.mark.parametrize("grade_id, check, copy", [
    ("ex4_1-solution", ex.check_break_even, break_even),
    ("ex4_2-solution", ex.check_csr_matvec, csr_matvec),
    ("ex4_3-solution", ex.check_amdahl, amdahl_speedup),
    ("ex4_4-solution", ex.check_intensity, linear_intensity),
    ("ex4_5-solution", ex.check_interleaved, interleaved_speedup),
])
def test_notebook_solution_cell_passes_and_matches_copy(grade_id, check, copy):
    source = _solution_cell(grade_id)
    assert source.strip() == inspect.getsource(copy).strip(), "the copy above is out of date"
    namespace = {"np": np}  # the lesson imports numpy as np before its exercises
    exec(source, namespace)
    r = check(namespace[copy.__name__], quiet=True)
    assert r.status == PASS, r


@pytest.mark.parametrize("check, solution", [
    (ex.check_amdahl, amdahl_speedup),
    (ex.check_intensity, linear_intensity),
    (ex.check_break_even, break_even),
    (ex.check_csr_matvec, csr_matvec),
    (ex.check_interleaved, interleaved_speedup),
])
def test_lesson_solution_passes_quickly(check, solution):
    t = time.perf_counter()
    r = check(solution, quiet=True)
    assert r.status == PASS, r
    assert time.perf_counter() - t < 0.5


def test_library_references_are_refused_as_answers():
    """The library's own functions agree with the checkers' references (other tests), but an
    answer that is, or calls, the function the exercise asks for is told to write it."""
    for check, fn in ((ex.check_amdahl, speed.amdahl), (ex.check_break_even, speed.break_even)):
        r = check(fn, quiet=True)
        assert r.status == FAIL and "write it yourself" in r.message, r
        r = check(lambda *a, f=fn: f(*a), quiet=True)
        assert r.status == FAIL and "write it yourself" in r.message, r
    assert ex.check_intensity(lambda b, i, o, v=4: 2 * b * i * o / (v * (i * o + o + b * i + b * o)),
                              quiet=True).status == PASS


# The checker's cases, by what they hold (the checker builds them inside; these mirror them).
_BE_CASES = [
    ([0.5, 0.7, 0.9, 0.95, 0.99], [0.2, 0.6, 1.3, 2.1, 5.0]),
    ([0.5, 0.8, 0.9, 0.95], [0.3, 1.1, 0.9, 2.5]),
    ([0.8, 0.9, 0.95], [0.7, 1.0, 1.4]),
    ([0.9, 0.5, 0.95, 0.8, 0.99], [1.2, 0.4, 2.0, 1.1, 4.0]),
    ([0.5, 0.9, 0.99], [0.1, 0.5, 0.9]),
    ([0.6, 0.8], [1.5, 3.0]),
    ([0.5, 0.9, 0.99], [0.3, 0.8, 1.0]),
    ([0.99, 0.5, 0.9], [4.0, 0.4, 1.2]),
]


def test_break_even_reference_is_the_library():
    """The checker's reference and speed.break_even agree: on random inputs, on empty input and
    on repeated sparsities, in any order."""
    rng = np.random.default_rng(3)
    cases = list(_BE_CASES)
    for _ in range(200):
        n = int(rng.integers(1, 7))
        s = list(rng.choice([0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99], size=n, replace=False))
        cases.append((s, list(np.round(rng.uniform(0.5, 1.5, n), 1))))
    for s, v in cases:
        assert ex._ref_break_even(s, v) == speed.break_even(s, v), (s, v)
    assert ex._ref_break_even([], []) is None and speed.break_even([], []) is None
    # a repeated sparsity: both take every measurement, in any order
    s, v = [0.5, 0.9, 0.9, 0.95], [0.3, 0.8, 1.1, 2.5]
    for f in (ex._ref_break_even, speed.break_even):
        assert f(s, v) == f(s[::-1], v[::-1]) == 0.95
        assert f([0.95, 0.8, 0.95], [2.0, 0.9, 1.6]) == 0.95


@pytest.mark.parametrize("check", [ex.check_amdahl, ex.check_intensity, ex.check_break_even,
                                   ex.check_csr_matvec])
def test_not_attempted_and_errors(check):
    assert check(_nie, quiet=True).status == NOT_ATTEMPTED
    assert check(lambda *a: 1 / 0, quiet=True).status == ERROR
    assert check(lambda *a: "0.9", quiet=True).status == FAIL     # a string is not a number
    assert check(3.0, quiet=True).status == FAIL                  # not a function


# --------------------------------------------------------------------------------------------
# 4.3 Amdahl's law (lesson 04b)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mistake, words", [
    (ex._amdahl_time, "reciprocal"),
    (ex._amdahl_swapped, "swapped p and 1 - p"),
    (ex._gustafson, "Gustafson"),
    (ex._amdahl_linear, "p * n ignores the serial fraction"),
    (ex._amdahl_limit, "infinitely many workers"),
    (ex._amdahl_floor, "rounded down"),
    (ex._amdahl_inf_at_one, "not infinite"),
    (ex._amdahl_rounded, "you rounded the speedup"),
])
def test_amdahl_each_mistake_named(mistake, words):
    _fails_with(ex.check_amdahl, mistake, words)


@pytest.mark.parametrize("answer, words", [
    (lambda p, n: n / (1 + p * (n - 1)), "swapped p and 1 - p"),        # swapped, rearranged
    (lambda p, n: 1 - p + p * n, "Gustafson"),
    (lambda p, n: 1 / ((1 - p) + p // n), "floor division"),           # p // n is 0 for p < 1
    (lambda p, n: 1 // ((1 - p) + p / n), "rounded down"),
    (lambda p, n: (1 - p) + p / n, "reciprocal"),
    (lambda p, n: round(1 / ((1 - p) + p / n), 2), "you rounded"),
    (lambda p, n: math.inf if p == 1 else 1 / ((1 - p) + p / n), "not infinite"),
])
def test_amdahl_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_amdahl, answer, words)


def test_amdahl_edges_are_checked():
    # wrong only at n = 1, or only at p = 0: no classic mistake, but still rejected
    r = _fails_with(ex.check_amdahl, lambda p, n: 1 / ((1 - p) + p / n) if n > 1 else 1 + p,
                    "1 core")
    assert "expected 1" in r.message
    _fails_with(ex.check_amdahl, lambda p, n: 0.0 if p == 0 else 1 / ((1 - p) + p / n), "p = 0")
    # numpy scalars are numbers; a one-element list is not
    assert ex.check_amdahl(lambda p, n: np.float64(1 / ((1 - p) + p / n)), quiet=True).passed
    _fails_with(ex.check_amdahl, lambda p, n: [1 / ((1 - p) + p / n)], "return one number")


# --------------------------------------------------------------------------------------------
# 4.2 arithmetic intensity
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mistake, words", [
    (ex._int_macs, "MACs"),
    (ex._int_weights_only, "only the parameter bytes"),
    (ex._int_no_bias, "forgot the bias"),
    (ex._int_bias_n_in, "not n_in"),
    (ex._int_no_input, "forgot the input"),
    (ex._int_no_output, "forgot the output"),
    (ex._int_values, "number of values, not bytes"),
    (ex._int_always_4, "whatever bytes_per_value says"),
    (ex._int_bias_32bit, "the bias included"),
    (ex._int_bits, "by bits, not bytes"),
    (ex._int_one_sample_activations, "one sample's activations"),
    (ex._int_no_batch, "does not grow with the batch"),
    (ex._int_flops_no_batch, "batch out of the FLOPs"),
    (ex._int_bias_flops, "bias additions"),
    (ex._int_inverted, "bytes per FLOP"),
    (ex._int_floor, "rounded down"),
])
def test_intensity_each_mistake_named(mistake, words):
    _fails_with(ex.check_intensity, mistake, words)


def _hard_coded_4(batch, n_in, n_out, bytes_per_value=4):
    return 2 * batch * n_in * n_out / ((n_in * n_out + n_out + batch * n_in + batch * n_out) * 4)


@pytest.mark.parametrize("answer, words", [
    (lambda b, i, o, v=4: b * i * o / ((i * o + o + b * i + b * o) * v), "MACs"),
    (lambda b, i, o, v=4: 2 * b * i * o / ((i * o + b * i + b * o) * v), "forgot the bias"),
    (lambda b, i, o, v=4: 2 * b * i * o / ((i * o + o + b * o) * v), "forgot the input"),
    (lambda b, i, o, v=4: 2 * b * i * o / ((i * o + o + b * i) * v), "forgot the output"),
    (lambda b, i, o, v=4: 2 * b * i * o / (i * o + o + b * i + b * o), "not bytes"),
    (_hard_coded_4, "whatever bytes_per_value says"),
    # the weights once per sample: the same number as ignoring the batch altogether
    (lambda b, i, o, v=4: 2 * b * i * o / ((b * (i * o + o) + b * i + b * o) * v), "once per sample"),
    (lambda b, i, o, v=4: 2 * i * o / ((i * o + o + i + o) * v), "ignored the batch"),
    (lambda b, i, o, v=4: 2 * b * i * o // ((i * o + o + b * i + b * o) * v), "floor division"),
    (lambda b, i, o, v=4: (2 * b * i * o + b * o) / ((i * o + o + b * i + b * o) * v), "bias additions"),
    (lambda b, i, o, v=4: 2 * b * i * o / ((i * o + b * i + b * o) * v + 4 * o), "bias at 4 bytes"),
])
def test_intensity_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_intensity, answer, words)


def test_intensity_default_bytes_per_value_is_used():
    def default_one(b, i, o, bytes_per_value=1):
        return linear_intensity(b, i, o, bytes_per_value)
    _fails_with(ex.check_intensity, default_one, "bytes_per_value (default 4)")


# --------------------------------------------------------------------------------------------
# 4.3 break-even sparsity
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mistake, words", [
    (ex._be_first_above, "from there on"),
    (ex._be_first_above_sorted, "from there on"),
    (ex._be_highest, "lowest"),
    (ex._be_at_least_one, "exactly 1 is not faster"),
    (ex._be_last_slower, "one tested point too low"),
    (ex._be_interpolated, "interpolated"),
    (ex._be_unsorted, "any order"),
    (ex._be_repeat_best, "every measurement at it is"),
    (ex._be_repeat_max, "best (max)"),
    (ex._be_repeat_mean, "averaged the repeated measurements"),
    (ex._be_repeat_last, "a dict"),
    (ex._be_none_on_repeats, "a valid input"),
])
def test_break_even_each_mistake_named(mistake, words):
    _fails_with(ex.check_break_even, mistake, words)


def _first_above_loop(sparsities, speedups):
    for s, v in zip(sparsities, speedups):
        if v > 1:
            return s
    return None


def _greater_equal(sparsities, speedups):
    pairs = sorted(zip(sparsities, speedups))
    result = None
    for s, v in reversed(pairs):
        if v >= 1:
            result = s
        else:
            break
    return result


def _not_sorted(sparsities, speedups):
    result = None
    for s, v in reversed(list(zip(sparsities, speedups))):
        if v > 1:
            result = s
        else:
            break
    return result


@pytest.mark.parametrize("answer, words", [
    (_first_above_loop, "from there on"),
    (_greater_equal, "exactly 1 is not faster"),
    (_not_sorted, "sort the (sparsity, speedup) pairs"),
    (lambda s, v: float(np.interp(1.0, v, s)), "interpolated"),
    (lambda s, v: max((a for a, b in zip(s, v) if b > 1), default=None), "lowest"),
    # no break-even: None, not a number
    (lambda s, v: break_even(s, v) if break_even(s, v) is not None else float("nan"), "return None"),
    (lambda s, v: break_even(s, v) if break_even(s, v) is not None else 1.0, "return None"),
    (lambda s, v: break_even(s, v) if break_even(s, v) is not None else max(s), "return None"),
])
def test_break_even_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_break_even, answer, words)


def _sorted_pairs_loop(sparsities, speedups):
    """The lesson's solution before repeated sparsities were allowed: sorting the pairs puts a
    repeated sparsity's slower measurement first, and the loop from the top takes the
    sparsity on its faster one before it stops."""
    pairs = sorted(zip(sparsities, speedups))
    result = None
    for s, v in reversed(pairs):
        if v > 1:
            result = s
        else:
            break
    return result


def _via_dict(sparsities, speedups):
    return _sorted_pairs_loop(*zip(*dict(zip(sparsities, speedups)).items())) if sparsities else None


def _mean_of_repeats(sparsities, speedups):
    groups = {}
    for s, v in zip(sparsities, speedups):
        groups.setdefault(s, []).append(v)
    means = {s: sum(v) / len(v) for s, v in groups.items()}
    return break_even(list(means), list(means.values()))


def _refuses_repeats(sparsities, speedups):
    if len(set(sparsities)) < len(sparsities):
        return None
    return break_even(sparsities, speedups)


def _first_of_repeats(sparsities, speedups):
    first = {}
    for s, v in zip(sparsities, speedups):
        first.setdefault(s, v)
    return break_even(list(first), list(first.values()))


def _stable_sorted_loop(sparsities, speedups):
    result = None
    for s, v in reversed(sorted(zip(sparsities, speedups), key=lambda p: p[0])):
        if v > 1:
            result = s
        else:
            break
    return result


@pytest.mark.parametrize("answer, words", [
    (_sorted_pairs_loop, "every measurement at it is"),
    (_first_of_repeats, "first measurement of a repeated sparsity"),
    (_stable_sorted_loop, "sorted by sparsity alone"),
    (_via_dict, "keeps only the last one"),
    (_mean_of_repeats, "not their mean"),
    (_refuses_repeats, "a valid input"),
    (lambda s, v: break_even(s, v) if len(s) else float("nan"), "with no measurements"),
    (lambda s, v: break_even(s, v) if len(s) else 0.0, "with no measurements"),
])
def test_break_even_repeats_and_empty_input(answer, words):
    _fails_with(ex.check_break_even, answer, words)


def test_break_even_empty_input_that_raises_says_where():
    def uses_max(sparsities, speedups):
        top = max(sparsities)              # ValueError on no measurements
        return break_even(sparsities, speedups) if top else None
    r = ex.check_break_even(uses_max, quiet=True)
    assert r.status == ERROR and "no measurements at all" in r.message, r
    assert ex.check_break_even(lambda s, v: _sorted_pairs_loop(s, v) if len(set(s)) == len(s)
                               else break_even(s, v), quiet=True).passed


def test_break_even_rejects_strings():
    # float("0.9") == 0.9: a string must not pass on the cases whose answer is 0.9
    r = _fails_with(ex.check_break_even, lambda s, v: "0.9", "got str")
    assert "(a float) or None" in r.message


# --------------------------------------------------------------------------------------------
# 4.4 a sparse matrix-vector product from CSR arrays
# --------------------------------------------------------------------------------------------
def test_csr_cases_cover_the_edges_and_agree_with_scipy_and_dense():
    sps = pytest.importorskip("scipy.sparse")
    seen = set()
    for case, dense in ex._CSR_CASES:
        data, indices, indptr, x = case.args
        n_rows = len(indptr) - 1
        want = dense @ x
        assert np.allclose(sps.csr_matrix((data, indices, indptr), shape=(n_rows, len(x))) @ x, want)
        assert np.allclose(ex._ref_csr_matvec(*case.args), want)
        assert ex._ref_csr_matvec(*case.args).shape == (n_rows,)
        counts = np.diff(indptr)
        if n_rows and (counts == 0).any():
            seen.add("empty row")
        if n_rows and not counts.any():
            seen.add("no non-zero")
        if len(x) == 1:
            seen.add("single column")
        if n_rows == 0:
            seen.add("no rows")
        if any((np.diff(indices[indptr[i]:indptr[i + 1]]) < 0).any() for i in range(n_rows)):
            seen.add("unsorted")
        if n_rows and n_rows != len(x):
            seen.add("not square")
    assert seen == {"empty row", "no non-zero", "single column", "no rows", "unsorted", "not square"}


@pytest.mark.parametrize("mistake, words", [
    (ex._mv_first_only, "only one non-zero per row"),
    (ex._mv_drop_last, "last non-zero of each row is missing"),
    (ex._mv_one_extra, "next row's first non-zero"),
    (ex._mv_shifted, "shifted by one"),
    (ex._mv_transposed, "A.T @ x"),
    (ex._mv_skip_empty, "left out the empty rows"),
    (ex._mv_len_indptr, "one entry too many"),
    (ex._mv_len_x, "one entry per column"),
    (ex._mv_x_by_row, "x[i], x at the row"),
    (ex._mv_reduceat, "reduceat"),
    (ex._mv_bincount_short, "minlength=len(indptr) - 1"),
])
def test_csr_matvec_each_mistake_named(mistake, words):
    _fails_with(ex.check_csr_matvec, mistake, words)


def _first_only(data, indices, indptr, x):
    y = np.zeros(len(indptr) - 1)
    for i in range(len(indptr) - 1):
        start = indptr[i]
        row_values = data[indptr[i]:indptr[i] + 1]
        row_columns = indices[start:start + 1]
        if indptr[i + 1] > start:
            y[i] = np.sum(row_values * x[row_columns])
    return y


def _rows_shifted(data, indices, indptr, x):
    y = np.zeros(len(indptr) - 1)
    for i in range(len(indptr) - 1):
        y[i] = np.dot(data[indptr[i - 1]:indptr[i]], x[indices[indptr[i - 1]:indptr[i]]])
    return y


def _transposed(data, indices, indptr, x):
    y = np.zeros(len(x))
    for row in range(len(indptr) - 1):
        for k in range(indptr[row], indptr[row + 1]):
            y[indices[k]] += data[k] * x[row]
    return y


def _skips_empty_rows(data, indices, indptr, x):
    out = []
    for i in range(len(indptr) - 1):
        if indptr[i] == indptr[i + 1]:
            continue
        cols = indices[indptr[i]:indptr[i + 1]]
        out.append(float(data[indptr[i]:indptr[i + 1]] @ x[cols]))
    return np.array(out)


def _x_by_row(data, indices, indptr, x):
    y = np.zeros(len(indptr) - 1)
    for i in range(len(indptr) - 1):
        for k in range(indptr[i], indptr[i + 1]):
            y[i] += data[k] * x[i]
    return y


def _inclusive_end(data, indices, indptr, x):
    y = np.zeros(len(indptr) - 1)
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1] + 1
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _len_indptr(data, indices, indptr, x):
    y = np.zeros(len(indptr))
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1]
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


@pytest.mark.parametrize("answer, words", [
    (_first_only, "indptr[i]:indptr[i] + 1"),
    (_rows_shifted, "off-by-one in the row slice"),
    (_transposed, "rows and columns swapped"),
    (_skips_empty_rows, "left out the empty rows"),
    (_x_by_row, "x at the row"),
    (_inclusive_end, "the end is excluded already"),
    (_len_indptr, "n_rows + 1 entries"),
    (lambda d, i, p, x: np.add.reduceat(d * x[i], p[:-1]), "reduceat"),
])
def test_csr_matvec_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_csr_matvec, answer, words)


def test_csr_matvec_other_answers():
    # a correct dense rebuild passes (the checker cannot see the loop), a list is accepted
    def via_dense(data, indices, indptr, x):
        a = np.zeros((len(indptr) - 1, len(x)))
        for i in range(len(indptr) - 1):
            a[i, indices[indptr[i]:indptr[i + 1]]] = data[indptr[i]:indptr[i + 1]]
        return a @ x
    assert ex.check_csr_matvec(via_dense, quiet=True).passed
    assert ex.check_csr_matvec(lambda *a: csr_matvec(*a).tolist(), quiet=True).passed
    # a number, or a wrong length with no classic mistake behind it, gets a clear message
    _fails_with(ex.check_csr_matvec, lambda *a: float(csr_matvec(*a).sum()), "return a NumPy array")
    _fails_with(ex.check_csr_matvec, lambda *a: csr_matvec(*a)[1:], "len(indptr) - 1")
    # wrong only on unsorted column indices: rejected on that case
    def assumes_sorted(data, indices, indptr, x):
        y = csr_matvec(data, indices, indptr, x)
        for i in range(len(indptr) - 1):
            if (np.diff(indices[indptr[i]:indptr[i + 1]]) < 0).any():
                y[i] = 0.0
        return y
    _fails_with(ex.check_csr_matvec, assumes_sorted, "not sorted")
    # inputs changed in place do not leak into the next case (y stays right), but the checker
    # sees the change and names it
    def modifies(data, indices, indptr, x):
        y = csr_matvec(data, indices, indptr, x)
        data[:] = 0
        x[:] = 0
        return y
    _fails_with(ex.check_csr_matvec, modifies, "changed its input data in place")


def test_csr_reference_is_float64_on_every_case():
    for case, _ in ex._CSR_CASES:
        assert all(np.asarray(a).dtype in (np.float64, np.int64) for a in case.args)
        assert ex._ref_csr_matvec(*case.args).dtype == np.float64, case.description


def _rows_of(indptr):
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def _bincount(data, indices, indptr, x):
    """Vectorised and right on the values: np.bincount with weights and minlength."""
    return np.bincount(_rows_of(indptr), weights=data * x[indices], minlength=len(indptr) - 1)


def _list_of_ints(data, indices, indptr, x):
    y = [0] * (len(indptr) - 1)
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1]
        if e > s:
            y[i] = float(np.dot(data[s:e], x[indices[s:e]]))
    return y


def _int_accumulator(data, indices, indptr, x):
    y = np.zeros_like(indptr[:-1])
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1]
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _float32_accumulator(data, indices, indptr, x):
    y = np.zeros(len(indptr) - 1, dtype=np.float32)
    for i in range(len(indptr) - 1):
        s, e = indptr[i], indptr[i + 1]
        y[i] = np.sum(data[s:e] * x[indices[s:e]])
    return y


def _float32_inside(data, indices, indptr, x):
    return csr_matvec(data.astype(np.float32), indices, indptr, x.astype(np.float32))


@pytest.mark.parametrize("answer, words", [
    (_float32_accumulator, "y is float32"),
    (lambda *a: csr_matvec(*a).astype(np.float16), "y is float16"),
    (_int_accumulator, "truncates every sum"),
    (_bincount, "np.bincount returns integer zeros"),
    (_list_of_ints, "a list of Python ints"),
    (_float32_inside, "5 significant digits but not to 9"),
    (lambda *a: np.round(csr_matvec(*a), 6), "or rounded"),
    (lambda *a: csr_matvec(*a).astype(complex), "return a float64 NumPy array"),
])
def test_csr_matvec_dtype_rule_is_enforced_with_a_specific_hint(answer, words):
    r = _fails_with(ex.check_csr_matvec, answer, words)
    assert "float64" in r.message


def test_csr_matvec_correct_vectorised_answers_pass():
    # results are judged, not code: a bincount that keeps the rules passes
    assert ex.check_csr_matvec(lambda *a: _bincount(*a).astype(np.float64), quiet=True).passed
    def via_searchsorted(data, indices, indptr, x):
        rows = np.searchsorted(indptr, np.arange(len(data)), side="right") - 1
        y = np.zeros(len(indptr) - 1)
        np.add.at(y, rows, data * x[indices])
        return y
    assert ex.check_csr_matvec(via_searchsorted, quiet=True).passed
    # the float32 accumulator's values are close enough to pass a loose check: the dtype decides
    case = ex._CSR_CASES[0][0]
    assert np.allclose(_float32_accumulator(*case.args), ex._ref_csr_matvec(*case.args), rtol=1e-5)


# --------------------------------------------------------------------------------------------
# The self-check quizzes (4a, 4b)
# --------------------------------------------------------------------------------------------
QUIZ_A = {1: "b", 2: "b", 3: 0.5}
QUIZ_B = {1: 12.5, 2: 5, 3: "b", 4: "b"}
QUIZZES = {"a": (ex.check_quiz_a, QUIZ_A, "quiz4a-solution", LESSON_A),
           "b": (ex.check_quiz_b, QUIZ_B, "quiz4b-solution", LESSON_B)}


@pytest.mark.parametrize("half", ["a", "b"])
def test_quiz_right_answers_pass_and_match_the_lesson(half):
    check, answers, grade_id, lesson = QUIZZES[half]
    assert check(lambda: dict(answers), quiet=True).passed
    namespace = {}
    exec(_solution_cell(grade_id), namespace)
    assert namespace["quiz_answers"]() == answers
    assert check(namespace["quiz_answers"], quiet=True).passed
    assert check(_nie, quiet=True).status == NOT_ATTEMPTED
    nb = json.loads(lesson.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert check.markdown() in text
    assert 3 <= len(check.questions) <= 5


def test_every_checker_names_its_new_lesson():
    from compresslab.exercises import REGISTRY
    lessons = {k: v["lesson"] for k, v in REGISTRY.items() if k.startswith("4")}
    assert lessons == {"4.1": "04a_benchmarking", "4.2": "04a_benchmarking", "4a.quiz": "04a_benchmarking",
                       "4.3": "04b_hardware", "4.4": "04b_hardware", "4.5": "04b_hardware",
                       "4b.quiz": "04b_hardware"}
    for lesson, ids in (("04a_benchmarking", {"4.1", "4.2"}), ("04b_hardware", {"4.3", "4.4", "4.5"})):
        nb = json.loads((_LESSONS / f"{lesson}.ipynb").read_text(encoding="utf-8"))
        checks = {c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade", False)}
        assert checks == {f"ex{i.replace('.', '_')}-check" for i in ids} | {f"quiz4{lesson[2]}-check"}


def test_quiz_numbers_computed_from_their_prompts():
    s = np.linspace(0, 1, 100001)                               # 4a Q3: CSR bytes vs dense bytes
    csr_bytes, dense_bytes = (1 - s) * (4 + 4), 4.0
    assert s[np.argmax(csr_bytes < dense_bytes)] == pytest.approx(QUIZ_A[3], abs=1e-4)
    peak, bandwidth, intensity = 100e9, 25e9, 0.5             # 4b Q1: the roofline
    assert min(peak, intensity * bandwidth) / 1e9 == QUIZ_B[1]
    assert speed.amdahl(0.8, 1e12) == pytest.approx(QUIZ_B[2])  # 4b Q2: Amdahl's limit


def test_quiz_gpu_numbers_agree_with_the_shipped_reference():
    ref = speed.load_gpu_reference()
    if ref is None:
        pytest.skip("no GPU reference file ships with this version")
    rows = {r["batch"]: r["speedup_with_transfer"] for r in ref["rows"]}
    assert round(rows[1]) == 5                                      # "about 5x at batch 1"
    assert all(25 <= v <= 35 for b, v in rows.items() if b >= 1024)   # "about 30x from 1024 on"


WRONG_QUIZ = [("a", 1, "a"), ("a", 1, "c"), ("a", 1, "d"), ("a", 2, "a"), ("a", 2, "c"),
              ("a", 2, "d"), ("a", 3, 50), ("a", 3, 0.0), ("a", 3, 0.8),
              ("b", 1, 100), ("b", 1, 4), ("b", 1, 50), ("b", 2, 1.25), ("b", 2, 0.2),
              ("b", 2, 4.0), ("b", 3, "a"), ("b", 3, "c"), ("b", 3, "d"), ("b", 4, "a"),
              ("b", 4, "c"), ("b", 4, "d")]


@pytest.mark.parametrize("half, question, wrong", WRONG_QUIZ)
def test_quiz_each_wrong_answer_gets_its_hint(half, question, wrong):
    check, right, _, _ = QUIZZES[half]
    q = check.questions[question - 1]
    answers = {**right, question: wrong}
    r = _fails_with(check, lambda: answers, f"Q{question}: ")
    hint = q.why[wrong] if q.options else q.why["number"]
    assert hint in r.message
    assert f"{len(right) - 1} of {len(right)} right" in r.message


@pytest.mark.parametrize("half", ["a", "b"])
def test_quiz_hints_cover_every_wrong_option_and_never_give_the_answer(half):
    for q in QUIZZES[half][0].questions:
        if q.options:
            assert set(q.why) == set(q.options) - {q.answer}
            right = q.options[q.answer].split(":")[0].strip('"')
            assert all(right not in hint for hint in q.why.values()), q.prompt
        else:
            assert set(q.why) == {"number"} and f"{q.answer:g}" not in q.why["number"]


# --------------------------------------------------------------------------------------------
# 4.5 an interleaved benchmark with a bootstrap interval (lesson 04b)
# --------------------------------------------------------------------------------------------
_SPECS = [(ex._SPEC_FOUR, 24, 400, 2), (ex._SPEC_DRIFT, 7, 300, 0), (ex._SPEC_FLAT, 8, 200, 1)]


@pytest.mark.parametrize("spec, rounds, n_boot, seed", _SPECS)
def test_interleaved_reference_is_compares_interval(spec, rounds, n_boot, seed):
    """The reference's interval is speed.compare's own (_bootstrap_ratio on the same rounds, one
    generator for all variants), and its speedup is the ratio of medians."""
    clock, fns = ex._fake_bench(spec)
    names, samples = ex._interleaved(fns, clock, rounds)
    g = np.random.default_rng(seed)
    want = {}
    for k in names[1:]:
        lo, hi = speed._bootstrap_ratio(samples[names[0]], samples[k], n_boot, 0.95, g)
        want[k] = (np.median(samples[names[0]]) / np.median(samples[k]), lo, hi)
    got = ex._ref_interleaved(spec, rounds, n_boot, seed)
    assert list(got) == list(want)
    assert all(np.allclose(got[k], want[k], rtol=1e-12) for k in want)


def test_interleaved_fake_clock_is_deterministic_and_drifts():
    clock, fns = ex._fake_bench(ex._SPEC_DRIFT)
    fn = fns["dense"]
    steps = []
    for _ in range(6):
        t0 = clock()
        fn()
        steps.append(clock() - t0)
    assert steps[0] > steps[1] + 4e-3                     # the cold first call
    assert steps[3] > 1.4 * steps[2]                      # the every-fourth-call spike
    assert steps[5] > steps[1]                            # the drift: later calls are slower
    assert ex._ref_interleaved(ex._SPEC_DRIFT, 7, 300, 0) == ex._ref_interleaved(ex._SPEC_DRIFT, 7, 300, 0)


def _gap(a, b):
    """The largest relative difference between two results (1 when their keys differ)."""
    if list(a) != list(b):
        return 1.0
    return max(float(np.max(np.abs(np.subtract(a[k], b[k])) / np.abs(b[k]))) for k in b)


def test_interleaved_first_case_separates_every_mistake():
    spec = _SPECS[0]
    want = ex._ref_interleaved(*spec)
    outs = [ex._variant(**how)(*spec) for how in _INTERLEAVED_VARIANTS]
    outs.append(ex._with_fake_clock(_transposed_draw)(*spec))
    for i, out in enumerate(outs):
        assert not ex._same_speedups(out, want), i
        assert not any(ex._same_speedups(o, out) for j, o in enumerate(outs) if j != i)
        # clearly apart, not by rounding: at least 4% somewhere
        assert _gap(out, want) > 0.04, i
        assert all(_gap(o, out) > 0.04 for j, o in enumerate(outs) if j != i), i


_INTERLEAVED_VARIANTS = [dict(rotate=0), dict(rotate=-1), dict(warm=False), dict(stat=np.mean),
                         dict(stat=np.min), dict(inverted=True), dict(paired=False),
                         dict(one_rng=False), dict(tails=0.05)]


def _as_answer(how):
    """A variant of the checker, written as a learner's function of (fns, clock, rounds, ...)."""
    timing = {k: v for k, v in how.items() if k in ("warm", "rotate")}
    boot = {k: v for k, v in how.items() if k not in timing}

    def answer(fns, clock, rounds, n_boot=2000, seed=0):
        names, samples = ex._interleaved(fns, clock, rounds, **timing)
        return ex._boot(names, samples, rounds, n_boot, seed, **boot)
    return answer


@pytest.mark.parametrize("how, words", list(zip(_INTERLEAVED_VARIANTS, [
    "same order", "other way", "untimed, before the first round", "the mean", "the minimum",
    "upside down", "on their own", "one generator", "90%"])))
def test_interleaved_each_mistake_named(how, words):
    _fails_with(ex.check_interleaved, _as_answer(how), words)


def _fixed_order(fns, clock, rounds, n_boot=2000, seed=0):
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            start = clock()
            f()
            times[k].append(clock() - start)
    times = {k: np.array(v) for k, v in times.items()}
    names = list(fns)
    g = np.random.default_rng(seed)
    out = {}
    for k in names[1:]:
        idx = g.integers(0, rounds, size=(n_boot, rounds))
        r = np.median(times[names[0]][idx], axis=1) / np.median(times[k][idx], axis=1)
        out[k] = (np.median(times[names[0]]) / np.median(times[k]), *np.quantile(r, [0.025, 0.975]))
    return out


def _independent_resampling(fns, clock, rounds, n_boot=2000, seed=0):
    names = list(fns)
    for k in names:
        fns[k]()
    times = {k: np.zeros(rounds) for k in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            t = clock()
            fns[k]()
            times[k][r] = clock() - t
    g = np.random.default_rng(seed)
    out = {}
    for k in names[1:]:
        a = np.median(times[names[0]][g.integers(0, rounds, size=(n_boot, rounds))], axis=1)
        b = np.median(times[k][g.integers(0, rounds, size=(n_boot, rounds))], axis=1)
        lo, hi = np.quantile(a / b, [0.025, 0.975])
        out[k] = (float(np.median(times[names[0]]) / np.median(times[k])), float(lo), float(hi))
    return out


def _transposed_draw(fns, clock, rounds, n_boot=2000, seed=0):
    """The solution with the resample indices drawn as (rounds, n_boot) and transposed: the
    right speedups, other intervals (another draw). No listed mistake is this answer."""
    names = list(fns)
    for name in names:
        fns[name]()
    times = {name: np.empty(rounds) for name in names}
    for r in range(rounds):
        start = r % len(names)
        for name in names[start:] + names[:start]:
            t0 = clock()
            fns[name]()
            times[name][r] = clock() - t0
    g = np.random.default_rng(seed)
    base, result = times[names[0]], {}
    for name in names[1:]:
        idx = g.integers(0, rounds, size=(rounds, n_boot)).T
        ratios = np.median(base[idx], axis=1) / np.median(times[name][idx], axis=1)
        low, high = np.quantile(ratios, [0.025, 0.975])
        result[name] = (float(np.median(base) / np.median(times[name])), float(low), float(high))
    return result


def _with_baseline(fns, clock, rounds, n_boot=2000, seed=0):
    out = interleaved_speedup(fns, clock, rounds, n_boot, seed)
    return {list(fns)[0]: (1.0, 1.0, 1.0), **out}


@pytest.mark.parametrize("answer, words", [
    (_fixed_order, "same order"),
    (_independent_resampling, "on their own"),
    (lambda fns, clock, rounds, n_boot=2000, seed=0: {
        k: (1 / v[0], 1 / v[2], 1 / v[1])
        for k, v in interleaved_speedup(fns, clock, rounds, n_boot, seed).items()}, "upside down"),
    (lambda fns, clock, rounds, n_boot=2000, seed=0: {
        k: (v[0], v[1] * 0.99, v[2])
        for k, v in interleaved_speedup(fns, clock, rounds, n_boot, seed).items()}, "not your intervals"),
    (_transposed_draw, "not your intervals"),
    (_with_baseline, "every function but the baseline"),
    (lambda *a, **k: [1.0, 1.0, 1.0], "return a dict"),
    (lambda *a, **k: {n: 1.0 for n in list(a[0])[1:]}, "a tuple (speedup, low, high)"),
])
def test_interleaved_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_interleaved, answer, words)


def test_interleaved_not_attempted_errors_and_real_clock():
    assert ex.check_interleaved(_nie, quiet=True).status == NOT_ATTEMPTED
    assert ex.check_interleaved(lambda *a, **k: 1 / 0, quiet=True).status == ERROR
    assert ex.check_interleaved(3.0, quiet=True).status == FAIL
    # the solution also runs with a real clock: an A/A pair gives a ratio near 1
    a = np.ones((64, 64))
    out = interleaved_speedup({"A": lambda: a @ a, "A again": lambda: a @ a}, time.perf_counter,
                              rounds=9, n_boot=200)
    s, lo, hi = out["A again"]
    assert lo <= s <= hi and 0.3 < s < 3


def test_break_even_repeat_hints_are_not_confused():
    """The first-kept answer is not told it averaged, the stable-sorted loop not that it used
    a dict."""
    r = _fails_with(ex.check_break_even, _first_of_repeats, "setdefault")
    assert "averaged" not in r.message
    r = _fails_with(ex.check_break_even, _stable_sorted_loop, "last-listed")
    assert "dict" not in r.message


def _max_of_repeats(sparsities, speedups):
    """Faster if any measurement is: the best of each sparsity, then the walk down."""
    best = {}
    for s, v in zip(sparsities, speedups):
        best[s] = max(best.get(s, v), v)
    result = None
    for s in sorted(best, reverse=True):
        if best[s] > 1:
            result = s
        else:
            break
    return result


def test_break_even_max_of_repeats_is_named():
    """Keeping the max per sparsity is told so, not that it returned the first sparsity above 1."""
    for answer in (_max_of_repeats, ex._be_repeat_max):
        r = _fails_with(ex.check_break_even, answer, "best (max)")
        assert "from there on" not in r.message and "every one of its measurements" in r.message


def test_csr_matvec_inputs_modified_in_place():
    def in_place(data, indices, indptr, x):
        data *= x[indices]
        return np.array([data[indptr[i]:indptr[i + 1]].sum() for i in range(len(indptr) - 1)],
                        dtype=np.float64)

    def zeroes_x(data, indices, indptr, x):
        y = csr_matvec(data, indices, indptr, x)
        x[:] = 0.0
        return y

    _fails_with(ex.check_csr_matvec, in_place, "changed its input data in place")
    _fails_with(ex.check_csr_matvec, zeroes_x, "changed its input x in place")


def test_csr_matvec_longdouble_hint():
    r = _fails_with(ex.check_csr_matvec, lambda *a: csr_matvec(*a).astype(np.longdouble),
                    "float64")
    if np.dtype(np.longdouble).itemsize > 8:
        assert "longdouble" in r.message and "7 significant" not in r.message
