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

__all__ = ["softmax", "log_softmax", "entropy", "kd_loss", "soft_targets", "train_student", "train_gpt",
           "hint_loss", "hint_pretrain", "class_bias_for_prior", "UNLABELED"]

UNLABELED = -1
"""Label value meaning "no hard label for this sample": only the soft (teacher) term applies."""


def _check_T(T) -> float:
    return V.check_float(T, "T", 0.0, low_open=True)


# --------------------------------------------------------------------------------------------
# Temperature softmax
# --------------------------------------------------------------------------------------------
def _log_softmax(z: np.ndarray, T: float) -> np.ndarray:
    # log softmax(z/T) = z/T - logsumexp(z/T): nn.log_softmax subtracts the max first (exp() <= 1).
    # float16 is computed in float32; where z/T itself overflows (tiny T, logits near the float
    # maximum) the max is subtracted before dividing, which keeps every number finite.
    with np.errstate(over="ignore", under="ignore"):
        zt = np.divide(z, T, dtype=np.promote_types(z.dtype, np.float32))
        if not np.isfinite(zt).all():
            zt = np.subtract(z, z.max(axis=-1, keepdims=True), dtype=zt.dtype) / T
        return nn._log_softmax(zt, axis=-1)


@same_kind
def log_softmax(z, T: float = 1.0):
    """Temperature log-softmax along the last axis, computed stably with log-sum-exp.

    ``log p_i = z_i / T - log(sum_j exp(z_j / T))``, evaluated as
    ``(z_i - max z) / T - log(sum_j exp((z_j - max z) / T))`` so nothing overflows.

    Parameters
    ----------
    z : array_like or torch.Tensor, shape (..., C)
        Logits (the result is the same kind).
    T : float > 0, default 1.0
        Temperature. ``T = 1`` is the ordinary softmax; larger ``T`` flattens the distribution.

    Returns
    -------
    array of shape (..., C)
        Log-probabilities, never NaN; finite unless a gap ``(max z - z_i) / T`` exceeds the float
        range (then ``-inf``, the log of a probability that is exactly 0).

    See Also
    --------
    softmax

    References
    ----------
    .. [1] G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
       NIPS 2014 Deep Learning Workshop, arXiv:1503.02531 (2015).

    Examples
    --------
    >>> log_softmax(np.array([1000.0, 0.0])).tolist()          # no overflow, no log(0)
    [0.0, -1000.0]
    """
    T = _check_T(T)
    z = V.as_float_array(z, "z")
    return _log_softmax(z, T).astype(z.dtype, copy=False)


@same_kind
def softmax(z, T: float = 1.0):
    """Temperature softmax along the last axis: ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``.

    Computed as ``exp(log_softmax(z, T))`` (log-sum-exp), so huge logits do not overflow; a
    probability too small for the float type becomes exactly 0, never NaN. As ``T`` grows the
    distribution tends to uniform; as ``T -> 0`` it tends to one-hot at the arg-max (Hinton et al.
    2015).

    Parameters
    ----------
    z : array_like or torch.Tensor, shape (..., C)
        Logits (the result is the same kind).
    T : float > 0, default 1.0
        Temperature.

    Returns
    -------
    array of shape (..., C)
        Probabilities summing to 1 along the last axis.

    See Also
    --------
    log_softmax, entropy

    References
    ----------
    .. [1] G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
       NIPS 2014 Deep Learning Workshop, arXiv:1503.02531 (2015).

    Examples
    --------
    >>> softmax(np.array([2.0, 1.0, 0.0])).round(3).tolist()
    [0.665, 0.245, 0.09]
    >>> softmax(np.array([2.0, 1.0, 0.0]), T=10.0).round(3).tolist()
    [0.367, 0.332, 0.301]
    """
    T = _check_T(T)
    z = V.as_float_array(z, "z")
    return np.exp(_log_softmax(z, T)).astype(z.dtype, copy=False)


@same_kind
def entropy(p, axis: int = -1):
    """Shannon entropy in nats: ``H(p) = -sum_i p_i log p_i``, with ``0 log 0 = 0``.

    Parameters
    ----------
    p : array_like or torch.Tensor, shape (..., C)
        Probabilities (non-negative, summing to 1 along ``axis``).
    axis : int, default -1
        The class axis.

    Returns
    -------
    array of shape (...)
        Entropy per distribution, between 0 (one-hot) and ``log C`` (uniform).

    Examples
    --------
    >>> round(float(entropy(np.full(4, 0.25))), 4), float(entropy(np.array([1.0, 0.0])))
    (1.3863, 0.0)
    """
    p = V.as_float_array(p, "p", ndim=tuple(range(1, 33)))
    axis = V.check_axis(axis, p.ndim, "axis")
    if (p < 0).any():
        raise ValueError("p must be non-negative probabilities")
    logp = np.log(np.where(p > 0, p, 1.0))
    return 0.0 - (p * logp).sum(axis=axis)  # 0.0 - x avoids printing -0.0


# --------------------------------------------------------------------------------------------
# The distillation loss
# --------------------------------------------------------------------------------------------
def _check_kd_inputs(student_logits, teacher_logits, labels, T, alpha):
    T, alpha = _check_T(T), V.check_float(alpha, "alpha", 0.0, 1.0)
    s = V.as_float_array(student_logits, "student_logits", ndim=2)
    t = V.as_float_array(teacher_logits, "teacher_logits", ndim=2)
    if s.shape != t.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape "
                         f"(batch, classes), got {s.shape} and {t.shape}")
    y = np.full(len(s), UNLABELED, np.int64) if labels is None else V.as_labels(labels, "labels", n=len(s))
    if y.size and (y.min() < UNLABELED or y.max() >= s.shape[1]):
        raise ValueError(f"labels must be class indices in [0, {s.shape[1] - 1}] or {UNLABELED} "
                         f"(unlabelled), got values in [{y.min()}, {y.max()}]")
    return s, t, y, T, alpha


@same_kind
def kd_loss(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9):
    """Knowledge-distillation loss and its gradient with respect to the student logits.

    ``L = (1 - alpha) * CE(y, softmax(s)) + alpha * T**2 * KL(p || q)``, averaged over the batch,
    with ``p = softmax(t / T)`` (teacher), ``q = softmax(s / T)`` (student),
    ``CE(y, softmax(s)) = -log softmax(s)[y]`` at temperature 1 and
    ``KL(p || q) = sum_i p_i (log p_i - log q_i)`` (the *teacher* comes first). The gradient is
    ``dL/ds = [(1 - alpha) * (softmax(s) - onehot(y)) + alpha * T * (q - p)] / N``
    (Hinton, Vinyals & Dean 2015).

    A sample labelled ``-1`` (:data:`UNLABELED`) contributes only its soft term; the hard term is
    still divided by the whole batch size ``N``, so a sample's weight does not depend on how
    many others in its batch are labelled.

    Parameters
    ----------
    student_logits, teacher_logits : array_like or torch.Tensor, shape (N, C)
        Raw scores (before softmax) of the student and of the frozen teacher.
    labels : int array_like of shape (N,), or None
        Class indices, or -1 for "no hard label". ``None`` means no sample is labelled.
    T : float > 0, default 4.0
        Temperature of the soft term (Hinton et al. used up to 20; 2-8 suits small students).
    alpha : float in [0, 1], default 0.9
        Weight of the soft term: 0 = ordinary training on labels, 1 = teacher only.

    Returns
    -------
    loss : float
    grad : array of shape (N, C)
        ``dL/d student_logits``, same dtype (and kind) as ``student_logits``.

    See Also
    --------
    softmax : the temperature softmax ``p_T``.
    train_student : trains a student with this loss.

    Notes
    -----
    Equal to torch's ``(1 - alpha) * F.cross_entropy(s, y, ignore_index=-1, reduction="sum") / N
    + alpha * T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1),
    reduction="batchmean")`` and to its autograd gradient (tested). The ``T**2`` keeps the soft
    term's gradient the same size whatever ``T``. Everything is computed in float64 from
    log-probabilities (log-sum-exp), with ``0 * log 0 = 0``: a teacher probability that
    underflows to 0 (logits 1000 apart) gives no NaN or inf.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
       NIPS 2014 Deep Learning Workshop, arXiv:1503.02531 (2015).

    Examples
    --------
    >>> s = np.array([[2.0, 0.0, -1.0]]); t = np.array([[5.0, 3.0, -2.0]])
    >>> loss, grad = kd_loss(s, t, np.array([0]), T=2.0, alpha=0.5)
    >>> round(loss, 4), grad.shape
    (0.2571, (1, 3))
    """
    s, t, y, T, alpha = _check_kd_inputs(student_logits, teacher_logits, labels, T, alpha)
    n, z = len(s), s.astype(np.float64)
    log_p = _log_softmax(t.astype(np.float64), T)   # teacher at temperature T
    log_q = _log_softmax(z, T)                      # student at temperature T
    log_q1 = _log_softmax(z, 1.0)                   # student at T = 1, for the labels
    rows = np.flatnonzero(y >= 0)                   # the labelled samples
    onehot = np.zeros_like(z)
    onehot[rows, y[rows]] = 1.0
    hard = -log_q1[rows, y[rows]].sum() / n                        # CE(y, softmax(s))
    with np.errstate(invalid="ignore"):             # 0 * log 0 = 0 where p underflows to 0
        soft = T * T * np.where(log_p > -np.inf, np.exp(log_p) * (log_p - log_q), 0).sum() / n
    g_hard = np.exp(log_q1) - onehot
    g_hard[y < 0] = 0.0                             # unlabelled samples: no hard term
    loss = (1 - alpha) * hard + alpha * soft
    grad = ((1 - alpha) * g_hard + alpha * T * (np.exp(log_q) - np.exp(log_p))) / n
    return float(loss), grad.astype(s.dtype, copy=False)


@same_kind
def soft_targets(teacher, X, T: float = 1.0, batch_size: int = 1024):
    """The teacher's softened predictions ``p = softmax(teacher(X) / T)``, teacher in eval mode.

    Parameters
    ----------
    teacher : compresslab.nn.Sequential
        The trained teacher (put in evaluation mode).
    X : array_like or torch.Tensor, shape (N, ...)
        Inputs.
    T : float > 0, default 1.0
        Temperature (Hinton, Vinyals & Dean 2015).
    batch_size : int, default 1024
        Rows per forward pass.

    Returns
    -------
    array of shape (N, C), float64
        Probabilities summing to 1 along the last axis.

    See Also
    --------
    softmax : the same on logits.

    Examples
    --------
    >>> p = soft_targets(nn.mlp((4, 3), seed=0), np.ones((2, 4)), T=2.0)
    >>> p.shape, np.allclose(p.sum(axis=1), 1.0)
    ((2, 3), True)
    """
    T = _check_T(T)
    nn.check_model(teacher, "teacher").eval()
    return np.exp(_log_softmax(nn.predict(teacher, X, batch_size).astype(np.float64), T))


# --------------------------------------------------------------------------------------------
# Student training
# --------------------------------------------------------------------------------------------
def train_student(student: nn.Sequential, teacher: nn.Sequential | None, X, y=None, *,
                  T: float = 4.0, alpha: float = 0.9, teacher_logits=None,
                  **fit_kwargs) -> nn.History:
    """Train a student with the distillation loss :func:`kd_loss` against a frozen teacher.

    Minimises ``L = (1 - alpha) * CE(y, softmax(s)) + alpha * T**2 * KL(softmax(t/T) || softmax(s/T))``
    over mini-batches (Hinton, Vinyals & Dean 2015). The teacher is put in evaluation mode and its
    logits on ``X`` are computed once, before training; the loop then runs only the student.
    ``alpha = 0`` is ordinary training on the labels (the "scratch" baseline).

    Parameters
    ----------
    student : compresslab.nn.Sequential
        The model to train (changed in place).
    teacher : compresslab.nn.Sequential or None
        The trained teacher; may be None when ``teacher_logits`` are given.
    X : array_like, shape (N, ...)
        Training inputs (the "transfer set"; it may contain unlabelled samples).
    y : int array_like of shape (N,), or None
        Labels, with -1 (:data:`UNLABELED`) where a sample has none; None = no labels at all
        (then ``alpha`` must be 1).
    T : float > 0, default 4.0
        Temperature.
    alpha : float in [0, 1], default 0.9
        Weight of the soft term.
    teacher_logits : array_like of shape (N, C), optional
        Precomputed teacher logits on ``X`` (to share them between several students).
    **fit_kwargs
        Passed to :func:`compresslab.nn.fit` (``epochs``, ``lr``, ``batch_size``, ``seed``,
        ``val``, ``progress``, ...).

    Returns
    -------
    compresslab.nn.History

    See Also
    --------
    kd_loss, hint_pretrain

    References
    ----------
    .. [1] G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
       NIPS 2014 Deep Learning Workshop, arXiv:1503.02531 (2015).

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y = g.normal(size=(64, 4)), g.integers(0, 3, 64)
    >>> teacher, student = nn.mlp((4, 16, 3), seed=0), nn.mlp((4, 4, 3), seed=1)
    >>> _ = nn.fit(teacher, X, y, epochs=5, progress=False)
    >>> len(train_student(student, teacher, X, y, T=4.0, alpha=0.9, epochs=3, progress=False).loss)
    3
    """
    T = _check_T(T)
    alpha = V.check_float(alpha, "alpha", 0.0, 1.0)
    nn.check_model(student, "student")
    if student is teacher:
        raise ValueError("student and teacher must be different models")
    X = V.as_batch(X)
    n = X.shape[0]
    if teacher_logits is None:
        if teacher is None:
            raise ValueError("give a teacher or its precomputed teacher_logits")
        nn.check_model(teacher, "teacher").eval()  # frozen: evaluation mode, logits computed once
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
        raise ValueError("no sample has a label (y is None or all -1): use alpha=1 (teacher only) "
                         "or give labels")

    def loss(logits, yb, idx):
        return kd_loss(logits, teacher_logits[idx], yb, T, alpha)

    fit_kwargs.setdefault("desc", f"distilling (T={T:g}, alpha={alpha:g})")
    return nn.fit(student, X, y, loss=loss, **fit_kwargs)


# --------------------------------------------------------------------------------------------
# Language models: token-level distillation of a GPT (torch)
# --------------------------------------------------------------------------------------------
def train_gpt(model, tokens, *, steps: int, teacher=None, T: float = 1.0, alpha: float = 1.0, batch: int = 16,
              lr: float = 2e-3, min_lr: float = 2e-4, warmup: int = 100, weight_decay: float = 0.1,
              dropout: float = 0.0, seed: int = 0, threads: int | None = None, eval_tokens=None,
              eval_every: int = 200, log=print):
    """Train a :class:`compresslab.nn.GPT` on a token stream in torch: next-token cross-entropy, or
    token-level knowledge distillation from a ``teacher`` GPT.

    Every step draws ``batch`` windows of ``block_size + 1`` tokens at random positions
    (``numpy.random.default_rng(seed)``). Without a teacher the loss is the cross-entropy of the
    next token; with one it is :func:`kd_loss` at every position of every window, on the 256 (vocab)
    logits: ``(1 - alpha) * CE(next token) + alpha * T**2 * KL(softmax(t / T) || softmax(s / T))``
    (Hinton et al. 2015; applied per token to language models as in DistilBERT, Sanh et al. 2019).
    The loss value and its gradient with respect to the student's logits come from the NumPy
    :func:`kd_loss` and are fed back into torch's autograd (``logits.backward(grad)``); the teacher
    runs in torch without gradients on the same windows. AdamW (betas 0.9, 0.95; weight decay on
    matrices only), linear warm-up then cosine decay from ``lr`` to ``min_lr``, gradient clipping at
    1. The shipped model and drafts were trained this way (``tools/train_tiny_gpt.py``).

    Parameters
    ----------
    model : compresslab.nn.GPT
        The initial weights (not changed: the trained model is returned).
    tokens : 1-D array of int
        The training stream (e.g. ``compresslab.data.load_text().train``).
    steps : int >= 1
    teacher : compresslab.nn.GPT, optional
        Same vocabulary and a context at least the student's.
    T : float > 0, default 1.0
        Distillation temperature.
    alpha : float in [0, 1], default 1.0
        Weight of the teacher's term (1: the teacher only, no labels).
    batch, lr, min_lr, warmup, weight_decay, dropout, seed
        Training settings (defaults: the shipped model's).
    threads : int, optional
        torch's thread count (``torch.set_num_threads``).
    eval_tokens : 1-D array of int, optional
        A validation stream: its mean loss (nats per token, up to 64 windows from its start) is
        measured every ``eval_every`` steps and at the end.
    eval_every : int, default 200
    log : callable or None, default print
        Called with one line per evaluation.

    Returns
    -------
    model : compresslab.nn.GPT
        The trained model (NumPy).
    history : dict
        ``steps`` and ``validation_loss`` (lists, one entry per evaluation), ``train_loss`` (the
        last step's loss: cross-entropy, or the distillation loss), ``minutes`` (wall clock).

    Raises
    ------
    ModuleNotFoundError
        Without torch.

    Examples
    --------
    >>> import torch
    >>> from compresslab.nn import GPT, GPTConfig
    >>> small = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), seed=0)
    >>> text = np.arange(2000) % 7                        # a stream that repeats every 7 tokens
    >>> trained, h = train_gpt(small, text, steps=60, lr=1e-2, warmup=5, threads=1, eval_tokens=text,
    ...                        eval_every=30, log=None)
    >>> h["steps"], h["validation_loss"][-1] < 1.0             # an untrained model's: about log(256) = 5.5
    ([30, 60], True)
    """
    import math
    import time

    from .backend import _torch, install_hint
    from .nn.gpt import GPT

    torch = _torch()
    if torch is None:
        raise ModuleNotFoundError(f"train_gpt trains in torch: {install_hint('torch')}")
    F = torch.nn.functional
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
    if teacher is not None and (not isinstance(teacher, GPT) or teacher.config.vocab_size != model.config.vocab_size
                                or teacher.config.block_size < model.config.block_size):
        raise ValueError("teacher must be a GPT with the student's vocabulary and a context at least the student's")
    tokens = V.as_int_array(tokens, "tokens", 0, model.config.vocab_size - 1)
    block = model.config.block_size
    if tokens.ndim != 1 or len(tokens) < block + 2:
        raise ValueError(f"tokens must be a 1-D stream of more than block_size + 1 = {block + 1} tokens")
    steps = V.check_int(steps, "steps", 1)
    T = _check_T(T)
    alpha = V.check_float(alpha, "alpha", 0.0, 1.0)
    if threads is not None:
        torch.set_num_threads(V.check_int(threads, "threads", 1))
    torch.manual_seed(seed)
    net = model.to_torch(dropout=dropout).train()
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in net.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    teacher_net = None if teacher is None else teacher.to_torch().eval()

    def lr_at(step: int) -> float:            # linear warm-up, then cosine decay to min_lr
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))

    @torch.no_grad()
    def mean_loss(stream) -> float:           # nats per token on up to 64 windows from the start
        net.eval()
        n = min(64, len(stream) // (block + 1))
        chunks = torch.from_numpy(stream[:n * (block + 1)].reshape(n, block + 1))
        total = 0.0
        for s in range(0, n, 16):
            c = chunks[s:s + 16]
            out = net(c[:, :-1])
            total += F.cross_entropy(out.reshape(-1, out.shape[-1]), c[:, 1:].reshape(-1), reduction="sum").item()
        net.train()
        return total / (n * block)

    g = np.random.default_rng(seed)
    history = {"steps": [], "validation_loss": [], "train_loss": float("nan"), "minutes": 0.0}
    eval_stream = None if eval_tokens is None else V.as_int_array(eval_tokens, "eval_tokens", 0,
                                                                   model.config.vocab_size - 1).astype(np.int64)
    t0 = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        starts = g.integers(0, len(tokens) - block - 1, batch)
        xy = np.stack([tokens[s:s + block + 1] for s in starts]).astype(np.int64)
        x, y = torch.from_numpy(xy[:, :-1]), torch.from_numpy(xy[:, 1:])
        logits = net(x)
        opt.zero_grad(set_to_none=True)
        if teacher_net is None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
        else:
            with torch.no_grad():
                t_logits = teacher_net(x)
            flat = logits.detach().reshape(-1, logits.shape[-1]).numpy()
            value, grad = kd_loss(flat, t_logits.reshape(flat.shape).numpy(), y.reshape(-1).numpy(), T=T, alpha=alpha)
            logits.backward(torch.from_numpy(grad).reshape(logits.shape))
            loss = torch.tensor(value)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if eval_stream is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
            val = mean_loss(eval_stream)
            history["steps"].append(step + 1)
            history["validation_loss"].append(val)
            if log is not None:
                log(f"step {step + 1:5d}  train {loss.item():.3f}  val {val:.3f} nats/token "
                    f"(ppl {math.exp(val):.2f})  {time.perf_counter() - t0:7.1f} s")
    history["train_loss"] = float(loss.item())
    history["minutes"] = (time.perf_counter() - t0) / 60
    return nn.from_torch(net.eval()), history


# --------------------------------------------------------------------------------------------
# FitNets hints (feature distillation)
# --------------------------------------------------------------------------------------------
@same_kind
def hint_loss(student_features, teacher_features):
    """FitNets hint loss and its gradient: ``L = 1/2 * mean_n ||r_n - h_n||^2``.

    ``r`` is the (regressed) student feature and ``h`` the teacher's hint feature; the squared
    distance is summed over features and averaged over the batch (Romero et al. 2015), and
    ``dL/dr = (r - h) / N``. Equals ``0.5 * F.mse_loss(r, h, reduction="sum") / N`` in torch.

    Parameters
    ----------
    student_features, teacher_features : array_like or torch.Tensor, shape (N, D)

    Returns
    -------
    loss : float
    grad : array of shape (N, D)
        ``dL/dr``, same dtype (and kind) as ``student_features``.

    See Also
    --------
    hint_pretrain

    References
    ----------
    .. [1] A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio, "FitNets: Hints
       for Thin Deep Nets", ICLR 2015.

    Examples
    --------
    >>> loss, grad = hint_loss(np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> loss, grad.tolist()                  # (4 + 1) / 2 / 2
    (1.25, [[0.0, 1.0], [0.0, -0.5]])
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

    ``student[:student_layer]`` followed by a new linear *regressor* ``W_r`` is trained with
    :func:`hint_loss` so that ``W_r(student[:student_layer](x))`` matches the teacher's
    activations ``teacher[:teacher_layer](x)`` (computed once, teacher frozen; Romero et al. 2015).
    The student's layers are updated in place; afterwards train the whole student with
    :func:`train_student` (stage 2). The regressor is not part of the student.

    Parameters
    ----------
    student, teacher : compresslab.nn.Sequential
    student_layer, teacher_layer : int
        Number of leading layers whose output is the guided / hint feature (e.g. 2 for
        ``Linear, ReLU``).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the regressor's initial weights and of the batch order.
    **fit_kwargs
        Passed to :func:`compresslab.nn.fit`.

    Returns
    -------
    history : compresslab.nn.History
    regressor : compresslab.nn.Linear
        Maps the student's guided features to the teacher's hint features.

    References
    ----------
    .. [1] A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio, "FitNets: Hints
       for Thin Deep Nets", ICLR 2015.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(32, 4))
    >>> teacher, student = nn.mlp((4, 8, 3), seed=0), nn.mlp((4, 5, 3), seed=1)
    >>> _, reg = hint_pretrain(student, teacher, X, student_layer=2, teacher_layer=2, epochs=2,
    ...                        progress=False)
    >>> reg.weight.shape                     # student's 5 features -> teacher's 8
    (8, 5)
    """
    nn.check_model(student, "student"), nn.check_model(teacher, "teacher")
    V.check_int(student_layer, "student_layer", 1, len(student) - 1)
    V.check_int(teacher_layer, "teacher_layer", 1, len(teacher) - 1)
    X = V.as_float_array(X, "X")
    nn.check_model(teacher, "teacher").eval()
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
    with ``b``). Needs no labels -- only unlabelled inputs' logits and the class's expected share
    -- so it is an honest way to re-balance a class that was missing from training. Hinton et al.
    (2015, section 3) instead raised the bias of the 3 by 3.5, the value that optimised test
    performance.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        The model's logits on unlabelled inputs.
    cls : int
        The class to re-balance.
    prior : float in (0, 1), default 0.1
        Its expected share.
    low, high : float, default -50.0, 50.0
        The bracket searched for ``b``: finite, ``low < high``.
    tol : float > 0, default 1e-6
        Width of the final bracket. The search also stops after 200 halvings, or when the
        bracket cannot shrink in float64, so it always ends.

    Returns
    -------
    float
        The shift ``b``; add it to the bias of the last layer's output ``cls``.

    Examples
    --------
    >>> b = class_bias_for_prior(np.zeros((4, 3)), cls=2, prior=0.5)   # e^b / (2 + e^b) = 1/2
    >>> round(b, 4) == round(float(np.log(2)), 4)
    True
    """
    z = V.as_float_array(logits, "logits", ndim=2).astype(np.float64)
    cls = V.check_int(cls, "cls", 0, z.shape[1] - 1)
    prior = V.check_float(prior, "prior", 0.0, 1.0, low_open=True, high_open=True)
    (low, high), tol = V.check_bracket(low, high), V.check_tol(tol)

    def share(b):
        zz = z.copy()
        zz[:, cls] += b
        return np.exp(_log_softmax(zz, 1.0))[:, cls].mean()

    if share(low) > prior or share(high) < prior:
        raise ValueError(f"no shift in [low, high] = [{low}, {high}] gives class {cls} a mean probability of {prior}")
    for _ in range(200):
        mid = 0.5 * (low + high)
        if high - low <= tol or not low < mid < high:
            break
        if share(mid) < prior:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
