"""Knowledge distillation: a small "student" learns from a big "teacher"'s softened outputs.

The teacher's probabilities for the *wrong* classes ("an 8 that looks a bit like a 3") carry
information that a one-hot label throws away -- Hinton's "dark knowledge". Dividing the logits
by a temperature ``T > 1`` before the softmax makes those small probabilities visible, and the
student is trained to match them:

    p_T(z)  = softmax(z / T)
    L       = (1 - alpha) * CE(y, softmax(s))  +  alpha * T**2 * KL( p_T(t) || p_T(s) )
    dL/ds   = (1 - alpha) * (softmax(s) - onehot(y)) / N  +  alpha * T * (p_T(s) - p_T(t)) / N

with student logits ``s``, teacher logits ``t``, labels ``y`` and batch size ``N`` (both terms
are batch means, as ``torch.nn.functional.kl_div(..., reduction="batchmean")``). The hard-label
term uses temperature 1; the ``T**2`` keeps the soft term's gradient the same size whatever ``T``
(it shrinks as 1/T**2 otherwise).

Reference: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
NIPS 2014 Deep Learning Workshop, arXiv:1503.02531 (2015). Feature ("hint") distillation:
A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio, "FitNets: Hints for Thin
Deep Nets", ICLR 2015.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as V
from . import nn
from .backend import same_kind

__all__ = ["softmax", "log_softmax", "entropy", "kd_loss", "soft_targets", "train_student",
           "hint_loss", "hint_pretrain", "class_bias_for_prior", "UNLABELED"]

UNLABELED = -1
"""Label value meaning "no hard label for this sample": only the soft (teacher) term applies."""


def _check_T(T) -> float:
    return V.check_float(T, "T", 0.0, low_open=True)


# --------------------------------------------------------------------------------------------
# Temperature softmax
# --------------------------------------------------------------------------------------------
def _log_softmax(z: np.ndarray, T: float) -> np.ndarray:
    # log softmax(z/T) = z/T - logsumexp(z/T): nn.log_softmax subtracts the max first (exp() <= 1)
    return nn.log_softmax(z / T, axis=-1)


@same_kind
def log_softmax(z, T: float = 1.0):
    """``log softmax(z / T)`` along the last axis, computed stably with log-sum-exp.

    ``log p_i = z_i / T - log(sum_j exp(z_j / T))``, evaluated as
    ``(z_i - max z) / T - log(sum_j exp((z_j - max z) / T))`` so nothing overflows.

    Parameters
    ----------
    z : array (..., C)
        Logits; NumPy array or torch tensor (the result is the same kind).
    T : float > 0
        Temperature. ``T = 1`` is the ordinary softmax; larger ``T`` flattens the distribution.

    Returns
    -------
    array (..., C)
        Log-probabilities (finite even where the probability underflows to 0).

    Examples
    --------
    >>> import numpy as np
    >>> np.round(np.exp(log_softmax(np.array([2.0, 1.0, 0.0]), T=2.0)), 3)
    array([0.506, 0.307, 0.186])
    """
    T = _check_T(T)
    z = V.as_float_array(z, "z")
    return _log_softmax(z, T).astype(z.dtype, copy=False)


@same_kind
def softmax(z, T: float = 1.0):
    """``softmax(z / T)`` along the last axis: ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``.

    Computed as ``exp(log_softmax(z, T))`` (log-sum-exp), so huge logits do not overflow; a
    probability that is too small for the float type becomes exactly 0, never NaN.

    Parameters
    ----------
    z : array (..., C)
        Logits; NumPy array or torch tensor (the result is the same kind).
    T : float > 0
        Temperature (Hinton et al. 2015). As ``T`` grows the distribution tends to uniform;
        as ``T -> 0`` it tends to one-hot at the arg-max.

    Returns
    -------
    array (..., C)
        Probabilities summing to 1 along the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(softmax(np.array([2.0, 1.0, 0.0])), 3)
    array([0.665, 0.245, 0.09 ])
    >>> np.round(softmax(np.array([2.0, 1.0, 0.0]), T=10.0), 3)
    array([0.367, 0.332, 0.301])
    """
    T = _check_T(T)
    z = V.as_float_array(z, "z")
    return np.exp(_log_softmax(z, T)).astype(z.dtype, copy=False)


@same_kind
def entropy(p, axis: int = -1):
    """Shannon entropy in nats, ``H(p) = -sum_i p_i log p_i`` (with ``0 log 0 = 0``).

    Parameters
    ----------
    p : array (..., C)
        Probabilities (non-negative, summing to 1 along ``axis``).
    axis : int
        The class axis.

    Returns
    -------
    array (...)
        Entropy per distribution, between 0 (one-hot) and ``log C`` (uniform).

    Examples
    --------
    >>> import numpy as np
    >>> round(float(entropy(np.full(4, 0.25))), 4), float(entropy(np.array([1.0, 0.0])))
    (1.3863, 0.0)
    """
    p = V.as_float_array(p, "p")
    if (p < 0).any():
        raise ValueError("p must be non-negative probabilities")
    logp = np.log(np.where(p > 0, p, 1.0))
    return 0.0 - (p * logp).sum(axis=axis)  # 0.0 - x avoids printing -0.0


# --------------------------------------------------------------------------------------------
# The distillation loss
# --------------------------------------------------------------------------------------------
def _check_kd_inputs(student_logits, teacher_logits, labels, T, alpha):
    T = _check_T(T)
    alpha = V.check_float(alpha, "alpha", 0.0, 1.0)
    s = V.as_float_array(student_logits, "student_logits", ndim=2)
    t = V.as_float_array(teacher_logits, "teacher_logits", ndim=2)
    if s.shape != t.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape "
                         f"(batch, classes), got {s.shape} and {t.shape}")
    n, c = s.shape
    if labels is None:
        y = np.full(n, UNLABELED, dtype=np.int64)
    else:
        y = V.as_labels(labels, "labels", n=n)
        if y.size and (y.min() < UNLABELED or y.max() >= c):
            raise ValueError(f"labels must be class indices in [0, {c - 1}] or {UNLABELED} "
                             f"(unlabelled), got values in [{y.min()}, {y.max()}]")
    return s, t, y, T, alpha


@same_kind
def kd_loss(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9):
    """Knowledge-distillation loss and its gradient w.r.t. the student logits.

    ``L = (1 - alpha) * CE(y, softmax(s)) + alpha * T**2 * KL(softmax(t/T) || softmax(s/T))``

    averaged over the batch (Hinton, Vinyals & Dean 2015), with

    * ``CE(y, softmax(s)) = -log softmax(s)[y]`` at temperature 1 (the hard labels),
    * ``KL(p || q) = sum_i p_i (log p_i - log q_i)`` with ``p = softmax(t/T)`` (teacher) and
      ``q = softmax(s/T)`` (student): the *teacher* distribution comes first,
    * ``dL/ds = [(1 - alpha) * (softmax(s) - onehot(y)) + alpha * T * (q - p)] / N``.

    This equals torch's
    ``(1 - alpha) * F.cross_entropy(s, y) + alpha * T**2 * F.kl_div(F.log_softmax(s / T, 1),
    F.softmax(t / T, 1), reduction="batchmean")``. A sample whose label is ``-1``
    (:data:`UNLABELED`) contributes only its soft term; the hard term is still divided by the
    whole batch size ``N`` (torch: ``F.cross_entropy(s, y, ignore_index=-1, reduction="sum") / N``),
    so a sample's weight does not depend on how many others in its batch are labelled.

    Everything is computed from log-probabilities (log-sum-exp), with ``0 * log 0 = 0``: a
    teacher probability that underflows to 0 (logits 1000 apart) gives no NaN or inf.

    Parameters
    ----------
    student_logits, teacher_logits : arrays (N, C)
        Raw scores (before softmax) of the student and of the frozen teacher.
    labels : int array (N,) or None
        Class indices, or -1 for "no hard label". ``None`` means no sample is labelled.
    T : float > 0
        Temperature of the soft term (Hinton et al. used up to 20; 2-8 suits small students).
    alpha : float in [0, 1]
        Weight of the soft term: 0 = ordinary training on labels, 1 = teacher only.

    Returns
    -------
    loss : float
    grad : array (N, C)
        ``dL/d student_logits``, same dtype (and kind) as ``student_logits``.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[2.0, 0.0, -1.0]]); t = np.array([[5.0, 3.0, -2.0]])
    >>> loss, grad = kd_loss(s, t, np.array([0]), T=2.0, alpha=0.5)
    >>> round(loss, 4), grad.shape
    (0.2571, (1, 3))
    """
    s, t, y, T, alpha = _check_kd_inputs(student_logits, teacher_logits, labels, T, alpha)
    loss, grad = _kd_core(s.astype(np.float64), _log_softmax(t.astype(np.float64), T), y, T, alpha)
    return loss, grad.astype(s.dtype, copy=False)


def _kd_core(s, log_p, y, T, alpha):
    """kd_loss on validated float64 inputs, with the teacher's log-probabilities ``log_p``
    (at temperature T) given -- the training loop computes them once for the frozen teacher."""
    n = s.shape[0]
    rows = np.arange(n)
    labelled = y >= 0
    loss = 0.0
    grad = np.zeros_like(s)
    log_q = _log_softmax(s, T)
    if alpha < 1.0:
        # hard term: cross-entropy with the labels at T = 1 (unlabelled rows contribute 0)
        log_q1 = log_q if T == 1.0 else _log_softmax(s, 1.0)
        hard = -log_q1[rows[labelled], y[labelled]].sum() / n
        g_hard = np.exp(log_q1)
        g_hard[rows[labelled], y[labelled]] -= 1.0
        g_hard[~labelled] = 0.0
        loss += (1.0 - alpha) * hard
        grad += (1.0 - alpha) * g_hard
    if alpha > 0.0:
        # soft term: T**2 * KL(teacher_T || student_T); p * log p is 0 where p underflows to 0
        p = np.exp(log_p)
        soft = T * T * (p * (log_p - log_q)).sum() / n
        loss += alpha * soft
        grad += alpha * T * (np.exp(log_q) - p)
    return float(loss), grad / n


@same_kind
def soft_targets(teacher, X, T: float = 1.0, batch_size: int = 1024):
    """The teacher's softened predictions ``softmax(teacher(X) / T)``, teacher in eval mode."""
    T = _check_T(T)
    teacher.eval()
    return np.exp(_log_softmax(nn.predict(teacher, X, batch_size).astype(np.float64), T))


# --------------------------------------------------------------------------------------------
# Student training
# --------------------------------------------------------------------------------------------
def train_student(student: nn.Sequential, teacher: nn.Sequential | None, X, y=None, *,
                  T: float = 4.0, alpha: float = 0.9, teacher_logits=None,
                  **fit_kwargs) -> nn.History:
    """Train ``student`` on ``X`` with the distillation loss :func:`kd_loss`.

    The teacher is frozen: it is put in evaluation mode and its logits on ``X`` are computed
    once, before training (``teacher_logits = teacher(X)``); the training loop then only runs
    the student. ``alpha = 0`` is ordinary training on the labels (the "scratch" baseline).

    Parameters
    ----------
    student : compresslab.nn.Sequential
        The model to train (changed in place).
    teacher : compresslab.nn.Sequential or None
        The trained teacher; may be None when ``teacher_logits`` are given.
    X : array (N, ...)
        Training inputs (the "transfer set"; it may contain unlabelled samples).
    y : int array (N,) or None
        Labels, with -1 (:data:`UNLABELED`) where a sample has none; None = no labels at all
        (then ``alpha`` must be 1).
    T, alpha : float
        Temperature (> 0) and soft-term weight (in [0, 1]), as in :func:`kd_loss`.
    teacher_logits : array (N, C), optional
        Precomputed teacher logits on ``X`` (to share them between several students).
    **fit_kwargs
        Passed to :func:`compresslab.nn.fit` (``epochs``, ``lr``, ``batch_size``, ``seed``,
        ``val``, ``progress``, ...).

    Returns
    -------
    compresslab.nn.History

    Examples
    --------
    >>> from compresslab import data, nn                                   # doctest: +SKIP
    >>> d = data.load_digits()                                             # doctest: +SKIP
    >>> teacher = nn.mlp((64, 300, 100, 10)); nn.fit(teacher, d.X_train, d.y_train)  # doctest: +SKIP
    >>> student = nn.mlp((64, 16, 10), seed=1)                             # doctest: +SKIP
    >>> train_student(student, teacher, d.X_train, d.y_train, T=4, alpha=0.9)  # doctest: +SKIP
    """
    T = _check_T(T)
    alpha = V.check_float(alpha, "alpha", 0.0, 1.0)
    if not isinstance(student, nn.Sequential):
        raise TypeError(f"student must be a compresslab.nn.Sequential, got {type(student).__name__}")
    if student is teacher:
        raise ValueError("student and teacher must be different models")
    X = V.as_float_array(X, "X")
    n = X.shape[0]
    if teacher_logits is None:
        if teacher is None:
            raise ValueError("give a teacher or its precomputed teacher_logits")
        teacher.eval()  # frozen: evaluation mode, logits computed once
        teacher_logits = nn.predict(teacher, X)
    else:
        teacher_logits = V.as_float_array(teacher_logits, "teacher_logits", ndim=2)
    teacher_logits = np.ascontiguousarray(teacher_logits, dtype=np.float32)
    if teacher_logits.shape[0] != n:
        raise ValueError(f"teacher_logits has {teacher_logits.shape[0]} rows but X has {n}")
    if y is None:
        y = np.full(n, UNLABELED, dtype=np.int64)
    y = V.as_labels(y, "y", n=n)
    c = teacher_logits.shape[1]
    if y.size and (y.min() < UNLABELED or y.max() >= c):
        raise ValueError(f"y must hold class indices in [0, {c - 1}] or {UNLABELED}, "
                         f"got values in [{y.min()}, {y.max()}]")
    if alpha < 1.0 and not (y >= 0).any():
        raise ValueError("no sample has a label: use alpha=1 (teacher only) or give labels")

    # the frozen teacher's soft targets, computed once: log softmax(teacher_logits / T)
    log_p = _log_softmax(teacher_logits.astype(np.float64), T)

    def loss(logits, yb, idx):  # = kd_loss(logits, teacher_logits[idx], yb, T, alpha)
        value, grad = _kd_core(logits.astype(np.float64), log_p[idx], yb, T, alpha)
        return value, grad.astype(logits.dtype, copy=False)

    fit_kwargs.setdefault("desc", f"distilling (T={T:g}, alpha={alpha:g})")
    return nn.fit(student, X, y, loss=loss, **fit_kwargs)


# --------------------------------------------------------------------------------------------
# FitNets hints (feature distillation)
# --------------------------------------------------------------------------------------------
@same_kind
def hint_loss(student_features, teacher_features):
    """FitNets hint loss and its gradient: ``L = 1/2 * mean_n ||r_n - h_n||^2``.

    ``r`` is the (regressed) student feature and ``h`` the teacher's hint feature, the
    squared distance summed over features and averaged over the batch (Romero et al. 2015).
    ``dL/dr = (r - h) / N``. Equals ``0.5 * F.mse_loss(r, h, reduction="sum") / N``.

    Returns
    -------
    loss : float
    grad : array, same shape as ``student_features``
    """
    r = V.as_float_array(student_features, "student_features", ndim=2)
    h = V.as_float_array(teacher_features, "teacher_features", ndim=2)
    if r.shape != h.shape:
        raise ValueError(f"student_features and teacher_features must have the same shape, "
                         f"got {r.shape} and {h.shape}")
    n = r.shape[0]
    diff = r.astype(np.float64) - h
    return float(0.5 * (diff * diff).sum() / n), (diff / n).astype(r.dtype, copy=False)


def hint_pretrain(student: nn.Sequential, teacher: nn.Sequential, X, *, student_layer: int,
                  teacher_layer: int, seed: Any = 0, **fit_kwargs) -> tuple[nn.History, nn.Linear]:
    """FitNets stage 1: train the student's first layers to predict a teacher feature.

    ``student[:student_layer]`` followed by a new linear *regressor* is trained with
    :func:`hint_loss` to output the teacher's activations after ``teacher[:teacher_layer]``
    (computed once, teacher frozen). The student's layers are updated in place; afterwards
    train the whole student with :func:`train_student` (stage 2). The regressor is returned
    but is not part of the student.

    Parameters
    ----------
    student_layer, teacher_layer : int
        Number of leading layers whose output is the guided / hint feature (e.g. 2 for
        ``Linear, ReLU``).
    """
    if not isinstance(student, nn.Sequential) or not isinstance(teacher, nn.Sequential):
        raise TypeError("student and teacher must be compresslab.nn.Sequential models")
    V.check_int(student_layer, "student_layer", 1, len(student) - 1)
    V.check_int(teacher_layer, "teacher_layer", 1, len(teacher) - 1)
    X = V.as_float_array(X, "X")
    teacher.eval()
    hints = nn.Sequential(*teacher.layers[:teacher_layer])
    H = nn.predict(hints, X)
    H = H.reshape(len(H), -1)
    guided_out = nn.predict(nn.Sequential(*student.layers[:student_layer]), X[:1])
    flatten = [nn.Flatten()] if guided_out.ndim != 2 else []
    regressor = nn.Linear(guided_out.reshape(1, -1).shape[1], H.shape[1], seed=seed)
    body = nn.Sequential(*student.layers[:student_layer], *flatten, regressor)

    def loss(out, _yb, idx):
        return hint_loss(out, H[idx])

    fit_kwargs.setdefault("desc", "hint pre-training")
    hist = nn.fit(body, X, np.zeros(len(X)), loss=loss, seed=seed, **fit_kwargs)
    student.eval()
    return hist, regressor


# --------------------------------------------------------------------------------------------
# Bias fix for a class the student never saw (Hinton et al. 2015, section 3)
# --------------------------------------------------------------------------------------------
def class_bias_for_prior(logits, cls: int, prior: float = 0.1, *, low: float = -50.0,
                         high: float = 50.0, tol: float = 1e-6) -> float:
    """The shift ``b`` to add to class ``cls``'s logit so its mean predicted probability is ``prior``.

    Solves ``mean_n softmax(z_n + b * e_cls)[cls] = prior`` by bisection (the left side grows
    with ``b``). Needs no labels -- only unlabelled inputs' logits and the class's expected
    share -- so it is an honest way to re-balance a class that was missing from training.
    Hinton et al. instead raised the bias of the 3 by 3.5, the value that optimised test
    performance.

    Returns
    -------
    float
        The shift ``b``; add it to the bias of the last layer's output ``cls``.
    """
    z = V.as_float_array(logits, "logits", ndim=2).astype(np.float64)
    cls = V.check_int(cls, "cls", 0, z.shape[1] - 1)
    prior = V.check_float(prior, "prior", 0.0, 1.0, low_open=True, high_open=True)

    def share(b):
        zz = z.copy()
        zz[:, cls] += b
        return np.exp(_log_softmax(zz, 1.0))[:, cls].mean()

    if share(low) > prior or share(high) < prior:
        raise ValueError(f"no shift in [{low}, {high}] gives class {cls} a mean probability of {prior}")
    while high - low > tol:
        mid = 0.5 * (low + high)
        if share(mid) < prior:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
