"""Checkers for lesson 03 (distillation).

Each checker compares the learner's loss with :func:`compresslab.distill.kd_loss` on a few
batches and, when it is wrong, recognises the classic mistakes: a missing ``T**2``, the KL
divergence taken the wrong way round, probabilities where log-probabilities belong, the
temperature applied to one side only, the temperature applied to the hard-label term, the
mean taken over every element instead of over the batch, and alpha on the wrong term.
"""
from __future__ import annotations

import numpy as np

from .. import distill as D
from ._core import Case, Feedback, Mistake, checker, compare_cases


# --------------------------------------------------------------------------------------------
# Building blocks (reference and wrong versions), NumPy only
# --------------------------------------------------------------------------------------------
def _lsm(z, T=1.0):
    return D.log_softmax(np.asarray(z, dtype=np.float64), T)


def _kl_rows(log_p, log_q):
    """sum_i p_i (log p_i - log q_i) per row."""
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=1)


def _soft(s, t, T):
    return float(T * T * _kl_rows(_lsm(t, T), _lsm(s, T)).mean())


def _ce(s, y, T=1.0):
    return float(-_lsm(s, T)[np.arange(len(y)), y].mean())


def _to_float(x):
    try:
        return float(np.asarray(x))
    except (TypeError, ValueError):
        raise Feedback(f"return one number (the loss, a float), got {type(x).__name__}.") from None


def _equal(a, b):
    return abs(_to_float(a) - float(b)) <= 1e-5 * max(1.0, abs(float(b)))


def _batches(seed=0):
    g = np.random.default_rng(seed)
    out = []
    for n, c, T, scale in ((6, 5, 3.0, 2.5), (4, 10, 2.0, 4.0), (8, 3, 5.0, 3.0), (3, 4, 1.0, 2.0)):
        s = (scale * g.normal(size=(n, c))).astype(np.float32)
        t = (scale * g.normal(size=(n, c))).astype(np.float32)
        y = g.integers(0, c, n)
        out.append((s, t, y, T))
    return out


# --------------------------------------------------------------------------------------------
# Exercise 3.1: the soft term
# --------------------------------------------------------------------------------------------
_SOFT_MISTAKES = [
    Mistake(lambda s, t, T: _soft(s, t, T) / T ** 2,
            "your value is T**2 times too small: multiply the KL divergence by T**2 (Hinton et al. "
            "do this so the soft gradients keep their size when T changes)."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(s, T), _lsm(t, T)).mean()),
            "the KL divergence is the wrong way round: distillation uses KL(teacher || student) = "
            "sum p_teacher * (log p_teacher - log p_student), the teacher's probabilities as weights."),
    Mistake(lambda s, t, T: float(T * T * (np.exp(_lsm(t, T)) * (_lsm(t, T) - np.exp(_lsm(s, T))))
                                  .sum(axis=1).mean()),
            "you used the student's probabilities where its LOG-probabilities belong (torch's "
            "F.kl_div expects log_softmax as its first argument, not softmax)."),
    Mistake(lambda s, t, T: float(T * T * (np.exp(_lsm(t, T)) * (np.exp(_lsm(t, T)) - _lsm(s, T)))
                                  .sum(axis=1).mean()),
            "you used the teacher's probabilities where its LOG-probabilities belong: "
            "KL = sum p * (log p - log q)."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, T), _lsm(s, 1.0)).mean()),
            "the temperature is applied to the teacher only: divide the student's logits by T too."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, 1.0), _lsm(s, T)).mean()),
            "the temperature is applied to the student only: divide the teacher's logits by T too."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, 1.0), _lsm(s, 1.0)).mean()),
            "you forgot the temperature: soften both distributions with softmax(logits / T)."),
    Mistake(lambda s, t, T: _soft(s, t, T) / np.shape(s)[1],
            "you averaged over every element (batch x classes, torch's reduction='mean'); "
            "sum over the classes and average over the batch only ('batchmean')."),
    Mistake(lambda s, t, T: _soft(s, t, T) * np.shape(s)[0],
            "you summed over the batch; average over it (divide by the number of samples)."),
    Mistake(lambda s, t, T: float(T * _kl_rows(_lsm(t, T), _lsm(s, T)).mean()),
            "you multiplied by T instead of T**2."),
]


@checker("3.1", "the soft distillation term", lesson="03_distillation")
def check_soft_loss(soft_loss):
    """``soft_loss(student_logits, teacher_logits, T)`` must return
    ``T**2 * mean_n KL(softmax(t_n / T) || softmax(s_n / T))``."""
    cases = [Case(f"a batch of {s.shape[0]} samples, {s.shape[1]} classes, T = {T:g}", (s, t, T))
             for s, t, _, T in _batches(0)]
    s = np.array([[0.0, 0.0, 5.0]], dtype=np.float32)
    t = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    cases.append(Case("teacher logits 1000 apart (probabilities underflow to 0), T = 2", (s, t, 2.0)))

    def equal(a, b):
        a = _to_float(a)
        if not np.isfinite(a):
            raise Feedback("your loss is NaN or infinite when a teacher probability underflows to 0: "
                           "work with log_softmax (log-sum-exp), not log(softmax(...)).")
        return _equal(a, b)

    return compare_cases(soft_loss, _soft, cases, _SOFT_MISTAKES, equal=equal)


# --------------------------------------------------------------------------------------------
# Exercise 3.2: the whole distillation loss
# --------------------------------------------------------------------------------------------
_FULL_MISTAKES = [
    Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y, T) + a * _soft(s, t, T),
            "the temperature belongs to the soft term only: the hard-label cross-entropy uses the "
            "ordinary softmax (T = 1)."),
    Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * _soft(s, t, T) / T ** 2,
            "the soft term is missing its T**2 factor."),
    Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * T * T * _kl_rows(_lsm(s, T), _lsm(t, T)).mean(),
            "the KL divergence is the wrong way round: use KL(teacher || student)."),
    Mistake(lambda s, t, y, T, a: a * _ce(s, y) + (1 - a) * _soft(s, t, T),
            "alpha weighs the wrong term: alpha multiplies the soft (teacher) term, 1 - alpha the "
            "hard-label term."),
    Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * T * T * _kl_rows(_lsm(t, T), _lsm(s, 1.0)).mean(),
            "the temperature is applied to the teacher only: divide the student's logits by T in "
            "the soft term too."),
    Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * T * T * _kl_rows(_lsm(t, 1.0), _lsm(s, T)).mean(),
            "the temperature is applied to the student only: divide the teacher's logits by T too."),
    Mistake(lambda s, t, y, T, a: _ce(s, y) + a * _soft(s, t, T),
            "the hard-label term needs the weight (1 - alpha)."),
    Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * _soft(s, t, T) / np.shape(s)[1],
            "the soft term is averaged over every element; average over the batch only."),
]


@checker("3.2", "the full distillation loss", lesson="03_distillation")
def check_kd_loss(kd_loss):
    """``kd_loss(student_logits, teacher_logits, labels, T, alpha)`` must return the loss value
    ``(1 - alpha) * CE(labels, softmax(s)) + alpha * T**2 * KL(softmax(t/T) || softmax(s/T))``."""
    cases = []
    for (s, t, y, T), alpha in zip(_batches(1), (0.7, 0.5, 0.9, 0.3)):
        cases.append(Case(f"a batch of {s.shape[0]} samples, {s.shape[1]} classes, T = {T:g}, "
                          f"alpha = {alpha:g}", (s, t, y, T, alpha)))
    s, t, y, T = _batches(2)[0]
    cases += [Case("alpha = 0 (labels only), T = 3", (s, t, y, 3.0, 0.0)),
              Case("alpha = 1 (teacher only), T = 3", (s, t, y, 3.0, 1.0))]

    def reference(s, t, y, T, a):
        return D.kd_loss(s, t, y, T, a)[0]

    def equal(a, b):
        if isinstance(a, tuple):
            raise Feedback("return only the loss value (a float), not a tuple.")
        return _equal(a, b)

    return compare_cases(kd_loss, reference, cases, _FULL_MISTAKES, equal=equal)
