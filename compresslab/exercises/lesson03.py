"""Checkers for lesson 03 (distillation).

Each checker compares the learner's loss with :func:`compresslab.distill.kd_loss` in two stages:

1. ordinary random batches, where the classic mistakes are recognised: a missing ``T**2`` (or
   ``T`` instead), the KL divergence taken the wrong way round, probabilities where
   log-probabilities belong (or the reverse), the soft cross-entropy instead of the KL divergence,
   the temperature on one side only, multiplied instead of divided or applied to the hard-label
   term, the softmax over the wrong axis, the mean over every element or the sum over the batch,
   ``alpha`` on the wrong term, the hard term without its log or with the teacher's logits;
2. logits 1000 apart, where a probability underflows to 0: only an answer that works with
   log-probabilities (log-sum-exp) stays finite and exact there.

The first stage's first batch (6 samples, 5 classes, T = 3; alpha = 0.7 in 3.2) tells every
mistake below from every other, so the hint names the mistake actually made.

Exercise 3.3 asks for the gradient with respect to the student's logits instead; its checker
compares with the gradient of :func:`compresslab.distill.kd_loss` on six batches (the factor
``T`` missing or squared, the ``1/N`` missing, teacher and student swapped, the hard term's
one-hot forgotten, a label ``-1`` read as the last class, ...), then with finite differences.

``check_quiz`` is the lesson's self-check quiz (five questions on what the lesson showed).
"""
from __future__ import annotations

import numpy as np

from .. import distill as D
from ._core import Case, Feedback, Mistake, Question, as_number, call, checker, compare_cases, quiz


# --------------------------------------------------------------------------------------------
# Building blocks (reference and wrong versions), NumPy only
# --------------------------------------------------------------------------------------------
def _lsm(z, T=1.0):
    return D.log_softmax(np.asarray(z, dtype=np.float64), T)


def _lsm0(z, T=1.0):
    """log-softmax over the wrong axis (the batch, axis 0)."""
    z = np.asarray(z, dtype=np.float64) / T
    z = z - z.max(axis=0, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=0, keepdims=True))


def _kl_rows(log_p, log_q):
    """sum_i p_i (log p_i - log q_i) per row."""
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=1)


def _soft(s, t, T):
    return float(T * T * _kl_rows(_lsm(t, T), _lsm(s, T)).mean())


def _soft_rows(s, t, T):
    """The per-sample soft term T**2 KL(p_n || q_n), before the batch mean."""
    return T * T * _kl_rows(_lsm(t, T), _lsm(s, T))


def _ce(s, y, T=1.0):
    return float(-_lsm(s, T)[np.arange(len(y)), y].mean())


def _to_float(x):
    if isinstance(x, tuple):
        raise Feedback("return only the loss value (a float), not a tuple.")
    if isinstance(x, np.ndarray) and x.size > 1:
        raise Feedback(f"return one number (the loss), got an array of shape {x.shape}: average the "
                       "per-sample values over the batch (.mean()).")
    value = as_number(x)
    if value is None:
        raise Feedback(f"return one number (the loss, a float), got {type(x).__name__}.")
    return value


def _close(a, b):
    return abs(a - float(b)) <= 1e-5 * max(1.0, abs(float(b)))


def _equal_ordinary(a, b):
    a = _to_float(a)
    if not np.isfinite(a):
        raise Feedback("your loss is NaN or infinite on ordinary logits, where no probability "
                       "underflows: is a log taken of a negative number (a log-probability) or of "
                       "0? KL = sum p * (log p - log q): the weights are probabilities, "
                       "p = exp(log_p); the logs are log-probabilities (D.log_softmax).")
    return _close(a, b)


def _batches(seed=0):
    g = np.random.default_rng(seed)
    out = []
    for n, c, T, scale in ((6, 5, 3.0, 2.5), (4, 10, 2.0, 4.0), (8, 3, 5.0, 3.0), (3, 4, 1.0, 2.0)):
        s = (scale * g.normal(size=(n, c))).astype(np.float32)
        t = (scale * g.normal(size=(n, c))).astype(np.float32)
        y = g.integers(0, c, n)
        out.append((s, t, y, T))
    return out


def _underflow_args():
    """(description, student, teacher, labels, T): logits 1000 apart, so that a probability
    underflows to exactly 0 -- on the teacher's side, then on the student's (where the label
    also points at the vanishing class)."""
    near = np.array([[0.0, 1.0, 2.0]], dtype=np.float32)
    far = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    return [("teacher logits 1000 apart (a teacher probability underflows to 0), T = 2",
             np.array([[0.0, 0.0, 5.0]], dtype=np.float32), far, np.array([2]), 2.0),
            ("student logits 1000 apart (a student probability underflows to 0), T = 2",
             far, near, np.array([2]), 2.0)]


def _compare_then_underflow(answer, reference, cases, mistakes, extremes):
    """Stage 1 (the classic mistakes on ordinary batches), then stage 2 (underflow)."""
    compare_cases(answer, reference, cases, mistakes, equal=_equal_ordinary)
    for case in extremes:
        got = _to_float(call(answer, case))
        want = reference(*case.args)
        if not np.isfinite(got):
            raise Feedback(f"your loss is {got} on {case.description}: there log(0) = -inf "
                           "(and 0 * log 0 = nan). Work with log-probabilities from "
                           "D.log_softmax (log-sum-exp), not np.log(softmax(...)).")
        if not _close(got, want):
            raise Feedback(f"right on ordinary logits, but wrong on {case.description}: expected "
                           f"{want:.6g}, got {got:.6g}. Clipping a probability (np.log(p + eps), "
                           "np.clip) changes the loss where it underflows; take every log from "
                           "D.log_softmax (log-sum-exp).")
    return f"all {len(cases) + len(extremes)} test cases agree with the reference."


# --------------------------------------------------------------------------------------------
# Exercise 3.1: the soft term
# --------------------------------------------------------------------------------------------
def _soft_with(log_p, log_q, weights=None):
    """The batch mean of sum_i w_i (log_p_i - log_q_i), with w = exp(log_p) unless given: the KL
    divergence with something else in one of its three places."""
    w = np.exp(log_p) if weights is None else weights
    return float((w * (log_p - log_q)).sum(axis=1).mean())


def _times(factor, fn):
    """``fn`` with its value multiplied by ``factor(s, t, T)``."""
    return lambda s, t, T: float(factor(s, t, T) * fn(s, t, T))


# (factor on the soft term, hint)
_T_FACTORS = [
    (lambda s, t, T: 1 / T ** 2,
     "your value is T**2 times too small: multiply the KL divergence by T**2 (Hinton et al. do "
     "this so the soft gradients keep their size when T changes)."),
    (lambda s, t, T: 1 / T, "you multiplied by T instead of T**2."),
]
_REDUCTIONS = [
    (lambda s, t, T: 1 / np.shape(s)[1],
     "you averaged over every element (batch x classes, torch's reduction='mean'); sum over the "
     "classes and average over the batch only ('batchmean')."),
    (lambda s, t, T: np.shape(s)[0],
     "you summed over the batch; average over it (divide by the number of samples)."),
    (lambda s, t, T: np.shape(s)[0] / np.shape(s)[1],
     "you summed over the batch and averaged over the classes (e.g. .sum(axis=0).mean()); sum "
     "over the classes (axis=1) and average over the batch."),
]

_SOFT_MISTAKES = [
    # -- the T**2 factor and the reduction (a factor on the whole term)
    *[Mistake(_times(f, _soft), hint) for f, hint in _T_FACTORS + _REDUCTIONS],
    # -- which distribution goes where
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(s, T), _lsm(t, T)).mean()),
            "the KL divergence is the wrong way round: distillation uses KL(teacher || student) = "
            "sum p_teacher * (log p_teacher - log p_student), the teacher's probabilities as weights."),
    Mistake(lambda s, t, T: T * T * _soft_with(_lsm(t, T), np.exp(_lsm(s, T))),
            "you used the student's probabilities where its LOG-probabilities belong (torch's "
            "F.kl_div expects log_softmax as its first argument, not softmax)."),
    Mistake(lambda s, t, T: T * T * _soft_with(np.exp(_lsm(t, T)), _lsm(s, T), weights=np.exp(_lsm(t, T))),
            "you used the teacher's probabilities where its LOG-probabilities belong: "
            "KL = sum p * (log p - log q)."),
    Mistake(lambda s, t, T: T * T * _soft_with(np.exp(_lsm(t, T)), np.exp(_lsm(s, T)), weights=np.exp(_lsm(t, T))),
            "you used probabilities where LOG-probabilities belong, on both sides: "
            "KL = sum p * (log p - log q), with log p and log q from D.log_softmax."),
    Mistake(lambda s, t, T: T * T * _soft_with(_lsm(t, T), _lsm(s, T), weights=_lsm(t, T)),
            "the weights of the KL sum are the teacher's probabilities p = exp(log_p), not its "
            "log-probabilities: KL = sum p * (log p - log q)."),
    Mistake(lambda s, t, T: float(T * T * (-(np.exp(_lsm(t, T)) * _lsm(s, T)).sum(axis=1)).mean()),
            "you computed the soft cross-entropy -sum p * log q; the KL divergence also adds the "
            "teacher's sum p * log p: KL = sum p * (log p - log q) (same gradient, but a different "
            "value: the teacher's entropy)."),
    # -- the temperature
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, T), _lsm(s, 1.0)).mean()),
            "the temperature is applied to the teacher only: divide the student's logits by T too."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, 1.0), _lsm(s, T)).mean()),
            "the temperature is applied to the student only: divide the teacher's logits by T too."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, 1.0), _lsm(s, 1.0)).mean()),
            "you forgot the temperature: soften both distributions with softmax(logits / T)."),
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm(t, 1 / T), _lsm(s, 1 / T)).mean()),
            "you multiplied the logits by T; the temperature divides them: softmax(logits / T)."),
    # -- the axis
    Mistake(lambda s, t, T: float(T * T * _kl_rows(_lsm0(t, T), _lsm0(s, T)).mean()),
            "your softmax normalises over the wrong axis (the batch, axis 0): each row (one "
            "sample's classes, axis=1 or -1) must sum to 1."),
]


def _two(h1: str, h2: str) -> str:
    return f"two mistakes: (1) {h1} (2) {h2}"


# Two mistakes at once, listed after every single one: a wrong factor (T**2, reduction) on top
# of a wrong formula, and the two factors together (torch's F.kl_div with its default
# reduction='mean' and no T**2 is one of them).
_SOFT_PAIRS = [
    *[Mistake(_times(f, m.fn), _two(m.hint, hint))
      for m in _SOFT_MISTAKES[len(_T_FACTORS) + len(_REDUCTIONS):] for f, hint in _T_FACTORS + _REDUCTIONS],
    *[Mistake(_times(lambda s, t, T, f1=f1, f2=f2: f1(s, t, T) * f2(s, t, T), _soft), _two(h1, h2))
      for f1, h1 in _T_FACTORS for f2, h2 in _REDUCTIONS],
]


@checker("3.1", "the soft distillation term", lesson="03_distillation")
def check_soft_loss(soft_loss):
    """``soft_loss(student_logits, teacher_logits, T)`` must return
    ``T**2 * mean_n KL(softmax(t_n / T) || softmax(s_n / T))``."""
    cases = [Case(f"a batch of {s.shape[0]} samples, {s.shape[1]} classes, T = {T:g}", (s, t, T))
             for s, t, _, T in _batches(0)]
    extremes = [Case(d, (s, t, T)) for d, s, t, _, T in _underflow_args()]
    return _compare_then_underflow(soft_loss, _soft, cases, _SOFT_MISTAKES + _SOFT_PAIRS, extremes)


# --------------------------------------------------------------------------------------------
# Exercise 3.2: the whole distillation loss
# --------------------------------------------------------------------------------------------
def _in_soft_term(m: Mistake) -> Mistake:
    """A mistake of exercise 3.1, made inside the whole loss."""
    return Mistake(lambda s, t, y, T, a: (1 - a) * _ce(s, y) + a * m.fn(s, t, T),
                   "in the soft term: " + m.hint)


def _hard_no_log(s, y):
    return float(-np.exp(_lsm(s))[np.arange(len(y)), y].mean())


# Mistakes outside the soft term, as (loss from s, t, y, T, alpha and the soft term's value, hint):
# each is tried with the right soft term and with every wrong one of exercise 3.1.
_OUTSIDE = [
    # -- the weights
    (lambda s, t, y, T, a, soft: a * _ce(s, y) + (1 - a) * soft,
     "alpha weighs the wrong term: alpha multiplies the soft (teacher) term, 1 - alpha the "
     "hard-label term."),
    (lambda s, t, y, T, a, soft: _ce(s, y) + a * soft,
     "the hard-label term needs the weight (1 - alpha)."),
    (lambda s, t, y, T, a, soft: (1 - a) * _ce(s, y) + soft,
     "the soft term needs the weight alpha."),
    (lambda s, t, y, T, a, soft: _ce(s, y) + soft,
     "weigh the two terms: (1 - alpha) * hard + alpha * soft."),
    (lambda s, t, y, T, a, soft: T * T * (1 - a) * _ce(s, y) + a * soft,
     "T**2 multiplies the soft term only, not the whole loss: the hard-label term is not "
     "softened, so it needs no correction."),
    # -- the hard term
    (lambda s, t, y, T, a, soft: (1 - a) * _ce(s, y, T) + a * soft,
     "the temperature belongs to the soft term only: the hard-label cross-entropy uses the "
     "ordinary softmax (T = 1)."),
    (lambda s, t, y, T, a, soft: (1 - a) * _hard_no_log(s, y) + a * soft,
     "the hard-label term is missing its log: CE = -log softmax(s)[y], not -softmax(s)[y]."),
    (lambda s, t, y, T, a, soft: (1 - a) * _ce(s, y) / np.shape(s)[1] + a * soft,
     "the hard-label term is averaged over every element (batch x classes); average "
     "-log softmax(s)[y] over the batch only."),
    (lambda s, t, y, T, a, soft: (1 - a) * _ce(s, y) * len(y) + a * soft,
     "the hard-label term is summed over the batch; average it (divide by the number of samples)."),
    (lambda s, t, y, T, a, soft: (1 - a) * _ce(t, y) + a * soft,
     "the hard-label term uses the teacher's logits; it is the *student's* cross-entropy with the "
     "labels, -log softmax(student_logits)[y]."),
]


def _outside(g, soft_fn):
    return lambda s, t, y, T, a: float(g(s, t, y, T, a, soft_fn(s, t, T)))


_FULL_MISTAKES = [
    *[Mistake(_outside(g, _soft), hint) for g, hint in _OUTSIDE],
    # -- the soft term: every mistake of exercise 3.1
    *[_in_soft_term(m) for m in _SOFT_MISTAKES],
]
# Two mistakes at once, after every single one: two in the soft term, or one outside it and one in it.
_FULL_PAIRS = [
    *[_in_soft_term(m) for m in _SOFT_PAIRS],
    *[Mistake(_outside(g, m.fn), _two(hint, "in the soft term: " + m.hint))
      for g, hint in _OUTSIDE for m in _SOFT_MISTAKES],
]


@checker("3.2", "the full distillation loss", lesson="03_distillation")
def check_kd_loss(kd_loss):
    """``kd_loss(student_logits, teacher_logits, labels, T, alpha)`` must return the loss value
    ``(1 - alpha) * CE(labels, softmax(s)) + alpha * T**2 * KL(softmax(t/T) || softmax(s/T))``,
    both terms averaged over the batch (every label a class index)."""
    cases = []
    for (s, t, y, T), alpha in zip(_batches(1), (0.7, 0.5, 0.9, 0.3)):
        cases.append(Case(f"a batch of {s.shape[0]} samples, {s.shape[1]} classes, T = {T:g}, "
                          f"alpha = {alpha:g}", (s, t, y, T, alpha)))
    s, t, y, T = _batches(2)[0]
    cases += [Case("alpha = 0 (labels only), T = 3", (s, t, y, 3.0, 0.0)),
              Case("alpha = 1 (teacher only), T = 3", (s, t, y, 3.0, 1.0))]
    extremes = [Case(d + ", alpha = 0.5", (s, t, y, T, 0.5)) for d, s, t, y, T in _underflow_args()]

    def reference(s, t, y, T, a):
        return D.kd_loss(s, t, y, T, a)[0]

    return _compare_then_underflow(kd_loss, reference, cases, _FULL_MISTAKES + _FULL_PAIRS, extremes)


# --------------------------------------------------------------------------------------------
# Exercise 3.3: the gradient of the distillation loss
# --------------------------------------------------------------------------------------------
def _grad_parts(s, t, y, T):
    """(q1 - onehot with unlabelled rows zeroed, q_T - p_T, q1, onehot), all float64, undivided."""
    s, t, y = np.asarray(s, np.float64), np.asarray(t, np.float64), np.asarray(y)
    q1, qT, pT = D.softmax(s, 1.0), D.softmax(s, T), D.softmax(t, T)
    onehot = np.zeros_like(s)
    rows = np.flatnonzero(y >= 0)
    onehot[rows, y[rows]] = 1.0
    hard = q1 - onehot
    hard[y < 0] = 0.0
    return hard, qT - pT, q1, onehot


def _grad_with(hard=None, soft=None, wh=None, ws=None, div=None):
    """The gradient ``(wh * hard + ws * soft) / div`` with any of its parts replaced: each
    argument is a function of (s, t, y, T, a) (and the parts of :func:`_grad_parts`)."""
    def fn(s, t, y, T, a):
        h, d, q1, oh = _grad_parts(s, t, y, T)
        parts = dict(s=s, t=t, y=y, T=T, a=a, h=h, d=d, q1=q1, oh=oh, n=len(s))
        gh = hard(**parts) if hard else h
        gs = soft(**parts) if soft else T * d
        w_h = wh(**parts) if wh else 1 - a
        w_s = ws(**parts) if ws else a
        n = div(**parts) if div else len(s)
        return (w_h * gh + w_s * gs) / n
    return fn


def _no_label_rows(y, g):
    g = np.array(g)
    g[np.asarray(y) < 0] = 0.0
    return g


_GRAD_MISTAKES = [
    # -- the soft term's factor
    Mistake(_grad_with(soft=lambda d, **_: d),
            "the soft term's gradient is missing its factor T: the loss has T**2 and the chain rule "
            "through s / T divides by T once, which leaves alpha * T * (softmax(s/T) - softmax(t/T)) / N."),
    Mistake(_grad_with(soft=lambda d, T, **_: T * T * d),
            "you multiplied the soft term's gradient by T**2 instead of T: differentiating "
            "softmax(s / T) with respect to s brings a 1/T (chain rule), so T**2 / T = T."),
    Mistake(_grad_with(soft=lambda d, T, **_: d / T),
            "you divided the soft term's gradient by T: the loss's T**2 times the chain rule's 1/T "
            "gives a factor T, not 1/T."),
    # -- the batch mean
    Mistake(_grad_with(div=lambda **_: 1),
            "you forgot the 1/N of the batch mean: the loss is averaged over the N samples, so "
            "every row of the gradient is divided by N (the batch size)."),
    Mistake(_grad_with(div=lambda s, **_: np.shape(s)[0] * np.shape(s)[1]),
            "you divided by N * C (every element); the loss is averaged over the batch only: "
            "divide by N, the number of samples."),
    # -- which way round
    Mistake(_grad_with(soft=lambda d, T, **_: -T * d),
            "teacher and student are swapped in the soft term: its gradient is "
            "softmax(s/T) - softmax(t/T), the student's probabilities minus the teacher's."),
    Mistake(_grad_with(hard=lambda h, **_: -h, soft=lambda d, T, **_: -T * d),
            "the whole gradient has the wrong sign: dL/ds = (prediction - target), "
            "softmax(s) - onehot(y) and softmax(s/T) - softmax(t/T); gradient descent then "
            "subtracts it."),
    # -- the hard term
    Mistake(_grad_with(hard=lambda y, q1, **_: _no_label_rows(y, q1)),
            "the hard term's gradient is softmax(s) - onehot(y): you forgot to subtract the "
            "one-hot of the label (a 1 at the label's class, 0 elsewhere)."),
    Mistake(_grad_with(hard=lambda s, y, T, oh, **_: _no_label_rows(y, D.softmax(np.asarray(s, np.float64), T) - oh)),
            "the hard term uses the ordinary softmax at T = 1: its gradient is softmax(s) - "
            "onehot(y), with no temperature."),
    # -- the weights
    Mistake(_grad_with(wh=lambda a, **_: a, ws=lambda a, **_: 1 - a),
            "alpha weighs the wrong term: alpha multiplies the soft (teacher) term's gradient, "
            "1 - alpha the hard-label term's."),
    Mistake(_grad_with(wh=lambda **_: 1, ws=lambda **_: 1),
            "weigh the two gradients: (1 - alpha) * hard + alpha * soft."),
    # -- unlabelled samples (label -1)
    Mistake(_grad_with(hard=lambda s, y, q1, **_: q1 - np.eye(np.shape(s)[1])[np.asarray(y)]),
            "a label -1 means 'no label', but NumPy reads index -1 as the LAST class: an "
            "unlabelled sample has no hard term (its hard-gradient row is 0)."),
    Mistake(_grad_with(hard=lambda q1, oh, **_: q1 - oh),
            "an unlabelled sample (label -1) has no hard term at all: its hard-gradient row is 0, "
            "not softmax(s)."),
    Mistake(_grad_with(wh=lambda a, y, n, **_: (1 - a) * n / max(1, int((np.asarray(y) >= 0).sum()))),
            "the hard term is divided by the number of labelled samples; like the soft term it is "
            "divided by the whole batch size N (a sample's weight must not depend on how many "
            "others in its batch are labelled)."),
]


def _grad_cases(seed=3):
    g = np.random.default_rng(seed)
    specs = [  # (n, c, T, alpha, how many unlabelled)
        (6, 5, 3.0, 0.7, 0), (4, 10, 2.0, 0.9, 0), (8, 3, 5.0, 0.3, 0),
        (5, 4, 3.0, 0.0, 0), (5, 4, 4.0, 1.0, 0), (7, 6, 2.0, 0.6, 3),
    ]
    cases = []
    for n, c, T, alpha, unlabelled in specs:
        s, t = 2.5 * g.normal(size=(n, c)), 2.5 * g.normal(size=(n, c))
        y = g.integers(0, c, n)
        y[g.permutation(n)[:unlabelled]] = -1
        for r in np.flatnonzero(y < 0):     # the teacher's guess is not the last class: reading
            top = int(t[r].argmax())        # -1 as class c-1 must not look like pseudo-labelling
            if top == c - 1:
                t[r, [0, c - 1]] = t[r, [c - 1, 0]]
        what = {0.0: " (labels only)", 1.0: " (teacher only)"}.get(alpha, "")
        extra = f", labels {y.tolist()} (-1 = no label)" if unlabelled else ""
        cases.append(Case(f"a batch of {n} samples, {c} classes, T = {T:g}, alpha = {alpha:g}"
                          f"{what}{extra}", (s, t, y, T, alpha)))
    return cases


def _explain_grad(got, want, case):
    if got is None:
        return "your function returned None: did you forget the `return`?"
    if isinstance(got, tuple):
        return "return only the gradient (an array of shape (N, C)), not a tuple."
    try:
        shape = np.asarray(got, dtype=np.float64).shape
    except (TypeError, ValueError):
        return f"return a NumPy float array of shape {np.shape(want)}, got {type(got).__name__}."
    if shape != np.shape(want):
        return (f"return an array of the logits' shape {np.shape(want)} (one derivative per logit), "
                f"got shape {shape} on {case.description}.")
    return None


def _finite_difference(s, t, y, T, a, eps=1e-6):
    num = np.zeros_like(s)
    for idx in np.ndindex(s.shape):
        e = np.zeros_like(s)
        e[idx] = eps
        num[idx] = (D.kd_loss(s + e, t, y, T, a)[0] - D.kd_loss(s - e, t, y, T, a)[0]) / (2 * eps)
    return num


@checker("3.3", "the gradient of the distillation loss", lesson="03_distillation")
def check_kd_grad(kd_grad):
    """``kd_grad(student_logits, teacher_logits, labels, T, alpha)`` must return
    ``dL/ds = [(1 - alpha) * (softmax(s) - onehot(y)) + alpha * T * (softmax(s/T) - softmax(t/T))] / N``
    (a label -1: no hard term for that row), compared with :func:`compresslab.distill.kd_loss`'s
    gradient on six batches, then with central finite differences of its loss."""
    cases = _grad_cases()

    def reference(s, t, y, T, a):
        return D.kd_loss(s, t, y, T, a)[1]

    compare_cases(kd_grad, reference, cases, _GRAD_MISTAKES, explain=_explain_grad)
    g = np.random.default_rng(4)
    s, t = 2.0 * g.normal(size=(3, 4)), 2.0 * g.normal(size=(3, 4))
    fd = Case("a batch of 3 samples, 4 classes, T = 2.5, alpha = 0.4, labels [2, -1, 0]",
              (s, t, np.array([2, -1, 0]), 2.5, 0.4))
    got = call(kd_grad, fd)
    numeric = _finite_difference(*fd.args)
    try:
        agrees = np.allclose(np.asarray(got, np.float64), numeric, rtol=1e-4, atol=1e-7)
    except (TypeError, ValueError):
        agrees = False
    if not agrees or np.shape(got) != numeric.shape:
        raise Feedback(f"your gradient differs from the finite differences (L(s + eps) - L(s - eps)) "
                       f"/ (2 eps) of the loss on {fd.description}.")
    return (f"all {len(cases)} test cases agree with D.kd_loss's gradient, and with finite "
            "differences of the loss.")


# --------------------------------------------------------------------------------------------
# The self-check quiz
# --------------------------------------------------------------------------------------------
check_quiz = quiz("3.quiz", "03_distillation", [
    Question(
        "You divide a confident teacher's logits by a temperature T = 20 before the softmax. "
        "What happens to its answer for one image?",
        "b",
        options={
            "a": "The class it predicts (the arg-max) can change, since every probability moves.",
            "b": "The distribution gets flatter and the ranking of the wrong classes becomes "
                 "visible; the predicted class stays the same.",
            "c": "It gets more confident: the top probability grows.",
            "d": "It gains knowledge about the classes that it did not have at T = 1.",
        },
        why={
            "a": "dividing every logit by the same T > 0 keeps their order, so the arg-max is the "
                 "same at every temperature (look at the top three classes in section 2's table).",
            "c": "T > 1 divides the gaps between the logits, so the probabilities move towards "
                 "uniform, not away from it (only T < 1 sharpens).",
            "d": "the temperature only rescales the same logits: it makes visible what they "
                 "already encode and adds nothing.",
        }),
    Question(
        "Why does the soft term of the distillation loss carry the factor T**2?",
        "c",
        options={
            "a": "Without it the KL divergence would be taken the wrong way round.",
            "b": "Because the student also runs at temperature T at test time.",
            "c": "The soft term's gradient shrinks like 1/T**2 as T grows; T**2 keeps its weight "
                 "against the hard term the same whatever T you try.",
            "d": "It converts the KL divergence from nats to bits.",
        },
        why={
            "a": "the direction of the KL divergence is set by whose probabilities weigh the "
                 "log-ratio, not by a constant factor in front of it.",
            "b": "at test time the student runs at T = 1 (that is also why the hard term stays "
                 "at T = 1).",
            "d": "a change of log base multiplies by the constant 1 / ln 2, which does not depend "
                 "on T.",
        }),
    Question(
        "Two ways to train a student, 5 seeds each: method A's test accuracies have a sample "
        "standard deviation of 1.5 points, method B's of 2.0 points, and B's mean is 2.0 points "
        "higher. Compute 2 SE of the difference of the two means, in points (two decimals), as "
        "section 4.2 does to decide whether B is clearly better.",
        2 * (1.5 ** 2 / 5 + 2.0 ** 2 / 5) ** 0.5,
        tol=0.01,
        why={"number": "SE = sqrt(s_A**2 / n + s_B**2 / n) with n = 5 seeds per method: divide "
                       "each variance by n, add, take the square root, then double it."}),
    Question(
        "With 5 labels per class, the distilled student beat the student from scratch by about "
        "12 points. What does the third student, trained on the teacher's hard labels (its "
        "arg-max on every unlabelled image), say about where that gain comes from?",
        "a",
        options={
            "a": "Mostly from the teacher labelling the 1,028 unlabelled images: its hard labels "
                 "alone do at least as well.",
            "b": "Mostly from the soft probabilities (dark knowledge): the hard-label student "
                 "falls far behind the distilled one.",
            "c": "From the temperature: any student trained at T = 4 gains that much, with a "
                 "teacher or without.",
            "d": "Nothing: the teacher's hard labels are wrong on many images, so that student is "
                 "no fair comparison.",
        },
        why={
            "b": "look at the five-seed table again: the student on the teacher's hard labels "
                 "did at least as well as the distilled one.",
            "c": "without a teacher (alpha = 0) the temperature plays no role at all: T only "
                 "softens the distributions of the soft term.",
            "d": "the teacher's hard labels agree with the true labels on every training image "
                 "(section 4.2 printed the share).",
        }),
    Question(
        "In section 5 the students never saw a 3. After a shift of its class-3 bias, the "
        "distilled student recognised most test 3s; the student from scratch, given the same "
        "kind of shift, did not. Which explanation fits the lesson?",
        "d",
        options={
            "a": "The bias shift was tuned on labelled test 3s, so it would work for any student.",
            "b": "The teacher's hard labels marked some of the training images as 3s.",
            "c": "The student from scratch lacks capacity: a bigger one would learn the 3s from "
                 "the labels.",
            "d": "The teacher's soft probabilities on other digits (a little 3 in an 8 or a 5) "
                 "taught the student's class-3 weights; only its class-3 bias came out too low, "
                 "because 3 was never the right answer.",
        },
        why={
            "a": "the shift was chosen without any labelled 3 (a mean class-3 probability of 1/10 "
                 "on unlabelled validation images), and the same rule left the scratch student "
                 "far behind.",
            "b": "on the training images left (no 3 among them) the teacher's arg-max is never 3: "
                 "its hard labels say nothing about 3s.",
            "c": "no label ever says 3, so a bigger student trained on labels alone has no signal "
                 "for class 3 either: capacity is not what is missing.",
        }),
])
