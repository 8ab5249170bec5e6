"""Lesson 03 checkers: the right answer passes, each classic mistake gets its specific hint."""
from __future__ import annotations

import numpy as np
import pytest

from compresslab import distill as D
from compresslab.exercises import lesson03 as ex


def _lsm(z, T=1.0):
    z = np.asarray(z, dtype=np.float64) / T
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _kl(lp, lq):
    return (np.exp(lp) * (lp - lq)).sum(axis=1)


def soft_right(s, t, T):
    return T * T * _kl(_lsm(t, T), _lsm(s, T)).mean()


SOFT_WRONG = {
    "T**2 times too small": lambda s, t, T: _kl(_lsm(t, T), _lsm(s, T)).mean(),
    "wrong way round": lambda s, t, T: T * T * _kl(_lsm(s, T), _lsm(t, T)).mean(),
    "LOG-probabilities belong (torch":
        lambda s, t, T: T * T * (np.exp(_lsm(t, T)) * (_lsm(t, T) - np.exp(_lsm(s, T)))).sum(1).mean(),
    "teacher only": lambda s, t, T: T * T * _kl(_lsm(t, T), _lsm(s)).mean(),
    "student only": lambda s, t, T: T * T * _kl(_lsm(t), _lsm(s, T)).mean(),
    "forgot the temperature": lambda s, t, T: T * T * _kl(_lsm(t), _lsm(s)).mean(),
    "every element": lambda s, t, T: T * T * _kl(_lsm(t, T), _lsm(s, T)).mean() / s.shape[1],
    "instead of T**2": lambda s, t, T: T * _kl(_lsm(t, T), _lsm(s, T)).mean(),
}


def full_right(s, t, y, T, a):
    ce = -_lsm(s)[np.arange(len(y)), y].mean()
    return (1 - a) * ce + a * soft_right(s, t, T)


def _ce(s, y, T=1.0):
    return -_lsm(s, T)[np.arange(len(y)), y].mean()


FULL_WRONG = {
    "hard-label cross-entropy uses the ordinary softmax":
        lambda s, t, y, T, a: (1 - a) * _ce(s, y, T) + a * soft_right(s, t, T),
    "missing its T**2": lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * soft_right(s, t, T) / T ** 2,
    "wrong way round": lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * T * T * _kl(_lsm(s, T), _lsm(t, T)).mean(),
    "alpha weighs the wrong term": lambda s, t, y, T, a: a * _ce(s, y) + (1 - a) * soft_right(s, t, T),
    "teacher only": lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * T * T * _kl(_lsm(t, T), _lsm(s)).mean(),
    "student only": lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * T * T * _kl(_lsm(t), _lsm(s, T)).mean(),
}


def test_soft_right_answer_passes():
    r = ex.check_soft_loss(soft_right, quiet=True)
    assert r.passed, r.message


def test_soft_answer_with_torch_tensors_style_float_passes():
    r = ex.check_soft_loss(lambda s, t, T: np.float32(soft_right(s, t, T)), quiet=True)
    assert r.passed, r.message


@pytest.mark.parametrize("hint", list(SOFT_WRONG))
def test_soft_mistakes_get_their_hint(hint):
    r = ex.check_soft_loss(SOFT_WRONG[hint], quiet=True)
    assert not r.passed and hint in r.message, r.message


def test_soft_naive_log_of_softmax_is_caught_on_underflow():
    def naive(s, t, T):
        p = np.exp(_lsm(t, T))
        q = np.exp(_lsm(s, T))
        with np.errstate(all="ignore"):
            return T * T * (p * (np.log(p) - np.log(q))).sum(1).mean()
    r = ex.check_soft_loss(naive, quiet=True)
    assert not r.passed and "log_softmax" in r.message, r.message


def test_full_right_answer_and_library_pass():
    assert ex.check_kd_loss(full_right, quiet=True).passed
    assert ex.check_kd_loss(lambda s, t, y, T, a: D.kd_loss(s, t, y, T, a)[0], quiet=True).passed


@pytest.mark.parametrize("hint", list(FULL_WRONG))
def test_full_mistakes_get_their_hint(hint):
    r = ex.check_kd_loss(FULL_WRONG[hint], quiet=True)
    assert not r.passed and hint in r.message, r.message


def test_returning_the_tuple_is_explained():
    r = ex.check_kd_loss(lambda s, t, y, T, a: D.kd_loss(s, t, y, T, a), quiet=True)
    assert not r.passed and "not a tuple" in r.message


def test_not_attempted_and_crashing_answers(capsys):
    def untouched(*args):
        raise NotImplementedError()
    assert ex.check_soft_loss(untouched, quiet=True).status == "not attempted"
    ex.check_kd_loss(untouched)
    assert "NOT ATTEMPTED YET" in capsys.readouterr().out
    r = ex.check_kd_loss(lambda *a: 1 / 0, quiet=True)
    assert r.status == "error" and "ZeroDivisionError" in r.message
