"""Lesson 04 checkers: the reference passes, classic mistakes get their specific hint."""
from __future__ import annotations

from compresslab import speed
from compresslab.exercises import FAIL, NOT_ATTEMPTED, PASS
from compresslab.exercises import lesson04 as ex


def _nie(*_a, **_k):
    raise NotImplementedError()


def test_amdahl_checker():
    assert ex.check_amdahl(lambda p, n: 1 / ((1 - p) + p / n), quiet=True).status == PASS
    assert ex.check_amdahl(_nie, quiet=True).status == NOT_ATTEMPTED
    r = ex.check_amdahl(lambda p, n: (1 - p) + p * n, quiet=True)
    assert r.status == FAIL and "Gustafson" in r.message
    r = ex.check_amdahl(lambda p, n: (1 - p) + p / n, quiet=True)
    assert r.status == FAIL and "reciprocal" in r.message


def test_intensity_checker():
    good = lambda b, i, o, v=4: 2 * b * i * o / (v * (i * o + o + b * i + b * o))  # noqa: E731
    assert ex.check_intensity(good, quiet=True).status == PASS
    r = ex.check_intensity(lambda b, i, o, v=4: b * i * o / (v * (i * o + o + b * i + b * o)), quiet=True)
    assert r.status == FAIL and "MACs" in r.message
    r = ex.check_intensity(lambda b, i, o, v=4: 2 * b * i * o / (v * (i * o + o)), quiet=True)
    assert r.status == FAIL and "activations" in r.message
    r = ex.check_intensity(lambda b, i, o, v=4: 2 * b * i * o / (i * o + o + b * i + b * o), quiet=True)
    assert r.status == FAIL and "bytes_per_value" in r.message


def test_break_even_checker():
    assert ex.check_break_even(speed.break_even, quiet=True).status == PASS
    first = lambda s, v: next((a for a, b in zip(s, v) if b > 1), None)  # noqa: E731
    r = ex.check_break_even(first, quiet=True)
    assert r.status == FAIL and "from there on" in r.message
    r = ex.check_break_even(lambda s, v: max((a for a, b in zip(s, v) if b > 1), default=None), quiet=True)
    assert r.status == FAIL and "lowest" in r.message
    assert ex.check_break_even(lambda s, v: "0.9", quiet=True).status == FAIL
