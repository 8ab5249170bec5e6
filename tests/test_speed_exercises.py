"""Lesson 04 checkers: the lesson's solution passes, every plausible wrong answer is rejected with
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
# The solution cells of lessons/04_speedup.ipynb, copied verbatim (between the markers): if the
# lesson's solution stops passing its checker, these tests fail.
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
    pairs = sorted(zip(sparsities, speedups))
    result = None
    for s, v in reversed(pairs):
        if v > 1:
            result = s
        else:
            break
    return result
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


LESSON = Path(__file__).resolve().parents[1] / "lessons" / "04_speedup.ipynb"


def _solution_cell(grade_id):
    nb = json.loads(LESSON.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(cell["source"])


@pytest.mark.parametrize("grade_id, check, copy", [
    ("ex4_1-solution", ex.check_amdahl, amdahl_speedup),
    ("ex4_2-solution", ex.check_intensity, linear_intensity),
    ("ex4_3-solution", ex.check_break_even, break_even),
    ("ex4_4-solution", ex.check_csr_matvec, csr_matvec),
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
])
def test_lesson_solution_passes_quickly(check, solution):
    t = time.perf_counter()
    r = check(solution, quiet=True)
    assert r.status == PASS, r
    assert time.perf_counter() - t < 0.5


def test_library_references_pass():
    assert ex.check_amdahl(speed.amdahl, quiet=True).status == PASS
    assert ex.check_break_even(speed.break_even, quiet=True).status == PASS
    assert ex.check_intensity(lambda b, i, o, v=4: 2 * b * i * o / (v * (i * o + o + b * i + b * o)),
                              quiet=True).status == PASS


@pytest.mark.parametrize("check", [ex.check_amdahl, ex.check_intensity, ex.check_break_even,
                                   ex.check_csr_matvec])
def test_not_attempted_and_errors(check):
    assert check(_nie, quiet=True).status == NOT_ATTEMPTED
    assert check(lambda *a: 1 / 0, quiet=True).status == ERROR
    assert check(lambda *a: "0.9", quiet=True).status == FAIL     # a string is not a number
    assert check(3.0, quiet=True).status == FAIL                  # not a function


# --------------------------------------------------------------------------------------------
# 4.1 Amdahl's law
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
    # inputs changed in place do not leak into the next case
    def modifies(data, indices, indptr, x):
        y = csr_matvec(data, indices, indptr, x)
        data[:] = 0
        x[:] = 0
        return y
    assert ex.check_csr_matvec(modifies, quiet=True).passed
