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


LESSON = Path(__file__).resolve().parents[1] / "lessons" / "04_speedup.ipynb"


def _solution_cell(grade_id):
    nb = json.loads(LESSON.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(cell["source"])


@pytest.mark.parametrize("grade_id, check, copy", [
    ("ex4_1-solution", ex.check_amdahl, amdahl_speedup),
    ("ex4_2-solution", ex.check_intensity, linear_intensity),
    ("ex4_3-solution", ex.check_break_even, break_even),
])
def test_notebook_solution_cell_passes_and_matches_copy(grade_id, check, copy):
    source = _solution_cell(grade_id)
    assert source.strip() == inspect.getsource(copy).strip(), "the copy above is out of date"
    namespace = {}
    exec(source, namespace)
    r = check(namespace[copy.__name__], quiet=True)
    assert r.status == PASS, r


@pytest.mark.parametrize("check, solution", [
    (ex.check_amdahl, amdahl_speedup),
    (ex.check_intensity, linear_intensity),
    (ex.check_break_even, break_even),
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


@pytest.mark.parametrize("check", [ex.check_amdahl, ex.check_intensity, ex.check_break_even])
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
