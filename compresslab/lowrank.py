"""Low-rank factorisation: replace one big Linear layer by two thin ones (truncated SVD).

A weight ``W`` (out x in) has the singular value decomposition ``W = U diag(s) V^T``. Keeping
the ``r`` largest singular values gives ``W_r = U_r diag(s_r) V_r^T``, the best rank-``r``
approximation in the Frobenius norm, with error ``||W - W_r||_F^2 = sum_{i > r} s_i^2``
(Eckart & Young, Psychometrika 1936). Written as two layers,

    x -> A x          A = diag(sqrt(s_r)) V_r^T     (r x in, no bias)
      -> B (A x) + b  B = U_r diag(sqrt(s_r))       (out x r, the original bias)

the layer costs ``r * (in + out)`` weights instead of ``in * out`` -- smaller and faster when
``r < in * out / (in + out)``. Denton et al. (NeurIPS 2014) and Jaderberg et al. (BMVC 2014)
used this to speed up networks; Xue, Li & Gong (Interspeech 2013) on speech models; a short
fine-tuning afterwards recovers most of the accuracy.

Examples
--------
>>> import compresslab as cl
>>> m = cl.nn.mlp((64, 300, 100, 10))
>>> small, _ = factorize(m, energy=0.9, layers=["2"])
>>> len(m), len(small)                  # layer 2 became two thinner layers
(5, 6)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import _validate as V
from . import backend, nn

__all__ = ["svd", "choose_rank", "truncated_svd", "reconstruction_error", "factorize_linear",
           "factorize", "fine_tune", "FactorInfo"]


@backend.same_kind
def svd(w: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin singular value decomposition ``w = u @ diag(s) @ vt``, ``s`` in decreasing order.

    Parameters
    ----------
    w : array_like or torch.Tensor, 2-D, shape (out, in)

    Returns
    -------
    u : array of shape (out, k)
    s : array of shape (k,)
    vt : array of shape (k, in)
        With ``k = min(out, in)``; computed in float64.

    See Also
    --------
    truncated_svd

    Examples
    --------
    >>> u, s, vt = svd(np.array([[3.0, 0.0], [0.0, 1.0]]))
    >>> s.round(6).tolist(), u.shape, vt.shape
    ([3.0, 1.0], (2, 2), (2, 2))
    """
    w = V.as_float_array(w, "w", ndim=2)
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    return u, s, vt


def choose_rank(s: Any, *, energy: float | None = None, max_params: int | None = None,
                shape: tuple[int, int] | None = None) -> int:
    """Rank to keep, by energy or by a parameter budget.

    * ``energy``: the smallest ``r`` with ``sum(s[:r]**2) / sum(s**2) >= energy``.
    * ``max_params`` (needs ``shape = (out, in)``): the largest ``r`` with
      ``r * (in + out) <= max_params`` (the weights of the two factors; at least 1).

    Parameters
    ----------
    s : array_like, 1-D
        Singular values, in decreasing order.
    energy : float in (0, 1], optional
    max_params : int >= 1, optional
        Give exactly one of ``energy`` and ``max_params``.
    shape : tuple of int, optional
        ``(out_features, in_features)``, needed with ``max_params``.

    Returns
    -------
    int
        The rank ``r``, between 1 and ``len(s)``.

    Examples
    --------
    >>> choose_rank([3.0, 2.0, 1.0, 0.5], energy=0.9)   # 9 + 4 = 13 of 14.25 = 0.91
    2
    >>> choose_rank([3.0, 2.0, 1.0, 0.5], max_params=25, shape=(4, 8))
    2
    """
    s = V.as_float_array(s, "s", ndim=1)
    if (s < 0).any():
        raise ValueError("singular values s must be non-negative")
    if (energy is None) == (max_params is None):
        raise TypeError("pass exactly one of energy or max_params")
    if energy is not None:
        energy = V.check_float(energy, "energy", 0.0, 1.0, low_open=True)
        e = s.astype(np.float64) ** 2
        total = e.sum()
        if total == 0:
            return 1
        frac = np.cumsum(e) / total
        return int(min(np.searchsorted(frac, energy - 1e-12) + 1, s.size))
    max_params = V.check_int(max_params, "max_params", 1)
    if shape is None or len(shape) != 2:
        raise TypeError("max_params needs shape=(out_features, in_features)")
    out_f, in_f = (V.check_int(x, "shape", 1) for x in shape)
    if max_params < in_f + out_f:
        raise ValueError(f"max_params={max_params} is below the {in_f + out_f} parameters that even "
                         f"rank 1 needs for a ({out_f}, {in_f}) layer")
    return int(min(s.size, max_params // (in_f + out_f)))


@backend.same_kind
def truncated_svd(w: Any, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Factors ``(B, A)`` of the best rank-``rank`` approximation ``w ~= B @ A``.

    ``A = diag(sqrt(s_r)) V_r^T`` (rank x in) and ``B = U_r diag(sqrt(s_r))`` (out x rank);
    splitting ``sqrt(s)`` between them keeps both factors on the same scale. ``B @ A`` is the best
    rank-``r`` approximation in the Frobenius norm (Eckart & Young 1936).

    Parameters
    ----------
    w : array_like or torch.Tensor, 2-D
    rank : int in [1, min(w.shape)]

    Returns
    -------
    B : array of shape (out, rank)
    A : array of shape (rank, in)
        In the dtype of ``w``.

    See Also
    --------
    reconstruction_error, factorize_linear

    References
    ----------
    .. [1] C. Eckart, G. Young, "The approximation of one matrix by another of lower rank",
       Psychometrika 1 (1936).

    Examples
    --------
    >>> B, A = truncated_svd(np.array([[3.0, 0.0], [0.0, 1.0]]), rank=1)
    >>> (B @ A).round(6).tolist()
    [[3.0, 0.0], [0.0, 0.0]]
    """
    w = V.as_float_array(w, "w", ndim=2)
    rank = V.check_int(rank, "rank", 1, min(w.shape))
    u, s, vt = svd(w)
    root = np.sqrt(s[:rank])
    b = (u[:, :rank] * root).astype(w.dtype)
    a = (root[:, None] * vt[:rank]).astype(w.dtype)
    return b, a


def reconstruction_error(w: Any, rank: int) -> float:
    """Squared Frobenius error of the rank-``r`` approximation: ``||W - W_r||_F^2``.

    Computed directly; Eckart & Young (1936) say it equals ``sum_(i > r) s_i^2``.

    Parameters
    ----------
    w : array_like, 2-D
    rank : int in [1, min(w.shape)]

    Returns
    -------
    float

    References
    ----------
    .. [1] C. Eckart, G. Young, "The approximation of one matrix by another of lower rank",
       Psychometrika 1 (1936).

    Examples
    --------
    >>> round(reconstruction_error(np.array([[3.0, 0.0], [0.0, 1.0]]), 1), 6)    # = 1.0**2
    1.0
    """
    w = V.as_float_array(w, "w", ndim=2).astype(np.float64)
    b, a = truncated_svd(w, rank)
    return float(((w - b @ a) ** 2).sum())


@dataclass
class FactorInfo:
    """What :func:`factorize` did to one layer.

    Parameters
    ----------
    layer : str
        Index of the layer in the original model.
    shape : tuple of int
        ``(out_features, in_features)``.
    rank : int
    energy : float
        Kept share ``sum(s[:rank]**2) / sum(s**2)``.
    params_before, params_after : int
        Weights of the layer, and of its two factors.

    Examples
    --------
    >>> print(FactorInfo("2", (100, 300), 16, 0.5, 30000, 6400))
    layer 2 100x300 -> rank 16 (50.0% energy): 30000 -> 6400 params
    """

    layer: str
    shape: tuple[int, int]
    rank: int
    energy: float
    params_before: int
    params_after: int

    def __str__(self):
        return (f"layer {self.layer} {self.shape[0]}x{self.shape[1]} -> rank {self.rank} "
                f"({100 * self.energy:.1f}% energy): {self.params_before} -> {self.params_after} params")


def factorize_linear(layer: nn.Linear, *, rank: int | None = None, energy: float | None = None,
                     max_params: int | None = None) -> tuple[nn.Linear, nn.Linear, FactorInfo]:
    """Two Linear layers whose product is the truncated SVD of ``layer`` (give one rule).

    ``W x + b ~= B (A x) + b`` with ``A, B = truncated_svd(W, rank)``: ``first`` maps in -> rank
    (weight ``A``, no bias), ``second`` maps rank -> out (weight ``B``, the original bias).

    Parameters
    ----------
    layer : compresslab.nn.Linear
    rank : int, optional
    energy : float in (0, 1], optional
    max_params : int, optional
        Exactly one rule: a rank, or one for :func:`choose_rank` (``max_params`` counts both
        factors' weights).

    Returns
    -------
    first, second : compresslab.nn.Linear
    info : FactorInfo
        Its ``layer`` field is empty; :func:`factorize` fills it.

    References
    ----------
    .. [1] C. Eckart, G. Young, "The approximation of one matrix by another of lower rank",
       Psychometrika 1 (1936).

    Examples
    --------
    >>> first, second, info = factorize_linear(nn.Linear(8, 6, seed=0), rank=2)
    >>> first.weight.shape, second.weight.shape, info.params_after
    ((2, 8), (6, 2), 28)
    """
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"layer must be a compresslab.nn.Linear, got {type(layer).__name__}")
    if sum(x is not None for x in (rank, energy, max_params)) != 1:
        raise TypeError("pass exactly one of rank, energy or max_params")
    w = layer.weight
    _, s, _ = svd(w)
    if rank is None:
        rank = choose_rank(s, energy=energy, max_params=max_params, shape=w.shape)
    rank = V.check_int(rank, "rank", 1, min(w.shape))
    b, a = truncated_svd(w, rank)
    first = nn.Linear(layer.in_features, rank, bias=False, seed=0)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None, seed=0)
    first.weight, second.weight = a.astype(np.float32), b.astype(np.float32)
    if layer.bias is not None:
        second.bias = layer.bias.copy()
    e = s ** 2
    info = FactorInfo("", tuple(w.shape), rank, float(e[:rank].sum() / max(e.sum(), 1e-300)),
                      int(w.size), int(a.size + b.size))
    return first, second, info


def factorize(model: nn.Sequential, *, layers: Sequence[str] | None = None,
              rank: int | dict | None = None, energy: float | None = None,
              max_params: int | dict | None = None, only_if_smaller: bool = True):
    """A copy of ``model`` with chosen Linear layers replaced by their rank-``r`` factors, and
    what was done to each.

    Parameters
    ----------
    model : compresslab.nn.Sequential
    layers : indices (as strings, like ``"0"`` in ``"0.weight"``) of the Linear layers to
        factorise; default all Linear layers.
    rank, energy, max_params : exactly one rule; ``rank`` and ``max_params`` may be dicts keyed
        by layer index.
    only_if_smaller : keep a layer as it is when the factors would not have fewer weights.

    Returns
    -------
    model : nn.Sequential
        The factorised copy. Layer indices after a factorised layer shift by one.
    info : list of FactorInfo
        One per chosen layer: its rank, kept energy and parameters before and after.

    Examples
    --------
    >>> import compresslab as cl
    >>> m = cl.nn.mlp((64, 300, 100, 10))
    >>> small, info = factorize(m, rank=16, layers=["2"])
    >>> print(info[0])  # doctest: +ELLIPSIS
    layer 2 100x300 -> rank 16 (...% energy): 30000 -> 6400 params
    """
    nn.check_model(model)
    if sum(x is not None for x in (rank, energy, max_params)) != 1:
        raise TypeError("pass exactly one of rank, energy or max_params")
    linear = [str(i) for i, l in enumerate(model.layers) if isinstance(l, nn.Linear)]
    chosen = linear if layers is None else [str(x) for x in layers]
    for name in chosen:
        if name not in linear:
            raise ValueError(f"layers: {name!r} is not the index of a Linear layer; choose from {linear}")
    src = model.copy()
    new_layers: list[nn.Module] = []
    infos: list[FactorInfo] = []
    for i, layer in enumerate(src.layers):
        key = str(i)
        if key not in chosen:
            new_layers.append(layer)
            continue
        r, mp = (rule.get(key) if isinstance(rule, dict) else rule for rule in (rank, max_params))
        if r is None and mp is None and energy is None:
            new_layers.append(layer)
            continue
        if r is not None:
            r = min(V.check_int(r, "rank", 1), min(layer.weight.shape))
        first, second, info = factorize_linear(layer, rank=r, energy=energy, max_params=mp)
        info.layer = key
        if only_if_smaller and info.params_after >= info.params_before:
            info.rank, info.params_after, info.energy = min(layer.weight.shape), info.params_before, 1.0
            new_layers.append(layer)
        else:
            new_layers += [first, second]
        infos.append(info)
    out = nn.Sequential(*new_layers)
    out.eval()
    return out, infos


def fine_tune(model: nn.Sequential, X, y, *, epochs: int = 5, lr: float = 1e-3, **fit_kwargs) -> nn.History:
    """Fine-tune a factorised model with :func:`compresslab.nn.fit` (a few epochs, small lr).

    Parameters
    ----------
    model : compresslab.nn.Sequential
        Trained in place.
    X, y : array_like
        Training inputs and labels.
    epochs : int, default 5
    lr : float, default 1e-3
    **fit_kwargs
        Passed to :func:`compresslab.nn.fit`.

    Returns
    -------
    compresslab.nn.History

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y = g.normal(size=(32, 8)), g.integers(0, 2, 32)
    >>> small, _ = factorize(nn.mlp((8, 6, 2), seed=0), rank=1)
    >>> len(fine_tune(small, X, y, epochs=2, progress=False).loss)
    2
    """
    return nn.fit(model, X, y, epochs=epochs, lr=lr, **fit_kwargs)
