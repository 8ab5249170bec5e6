"""AWQ: scale up the weights of the input channels that carry large activations before
quantizing them (J. Lin, J. Tang, H. Tang, S. Yang, W.-M. Chen, W.-C. Wang, G. Xiao, X. Dang,
C. Gan, S. Han, "AWQ: Activation-aware Weight Quantization for LLM Compression and
Acceleration", MLSys 2024; arXiv:2306.00978, 2023).

A few input channels of an LLM layer carry much larger activations than the rest; their
weights matter most for the output. Multiplying column ``j`` of ``W`` by ``s_j > 1`` (and
dividing input ``j`` by ``s_j``, which changes nothing in float) makes its rounding error
relatively smaller::

    y = X W^T = (X / s) (W * s)^T  ~  (X / s) Q(W * s)^T

The scale is ``s_j = mean_n |X_nj| ** alpha``, and ``alpha`` is chosen on a grid to minimise the
output error on calibration data. The division by ``s`` is folded into the operation before
the layer (a LayerNorm's weight, the previous Linear's rows), so inference costs nothing extra
and the stored weights are plain group-quantized ``Q(W * s)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from .. import backend
from .grid import F32
from .groups import GroupQuant, _check_group_size, _check_weight, quantize_groups

__all__ = ["AWQResult", "awq_search", "awq"]


@dataclass
class AWQResult:
    """The outcome of :func:`awq_search`: the chosen scales, their exponent and every error tried.

    Parameters
    ----------
    scales : float32 array (in_features,)
        ``s``, one per input channel (all 1 when ``alpha = 0``).
    alpha : float
        The chosen exponent, one of ``alphas``.
    errors : float64 array (n_grid,)
        Mean squared output error ``mean((X W^T - X W_hat^T)**2)`` for each ``alphas[k]``.

    Examples
    --------
    >>> r = AWQResult(np.ones(3, np.float32), 0.0, np.array([0.5, 0.7]))
    >>> r.alphas.tolist(), float(r.errors.min())
    ([0.0, 0.5], 0.5)
    """

    scales: np.ndarray
    alpha: float
    errors: np.ndarray

    @property
    def alphas(self) -> np.ndarray:
        """The grid searched: ``k / n_grid`` for ``k = 0 .. n_grid - 1``."""
        return np.arange(len(self.errors)) / len(self.errors)


def _check(w, X, bits, group_size, n_grid, symmetric):
    """Validate the arguments of :func:`awq_search`; return w (float32), X (float32) and the rest."""
    w = _check_weight(w)
    X = V.as_float32(X, "X")
    if X.ndim != 2 or X.shape[1] != w.shape[1]:
        raise ValueError(f"X must be (n_samples, in_features) with in_features = {w.shape[1]} (w is "
                         f"(out_features, in_features) = {w.shape}), got shape {X.shape}")
    return (w, X, V.check_bits(bits, high=8), _check_group_size(group_size, w.shape[1]),
            V.check_int(n_grid, "n_grid", 1, 1000), V.check_bool(symmetric, "symmetric"))


def _scales(x_mean: np.ndarray, alpha: float) -> np.ndarray:
    """``s = mean|X_j| ** alpha``, clipped at 1e-4 and divided by ``sqrt(max(s) * min(s))``
    (the reference's normalisation: the scales straddle 1), as float32."""
    s = np.maximum(x_mean ** alpha, 1e-4)
    return (s / np.sqrt(s.max() * s.min())).astype(F32)


def _effective(w, s, bits, group_size, symmetric) -> tuple[np.ndarray, GroupQuant]:
    """``Q(W * s) / s``, the weight the layer computes with, and the stored ``Q(W * s)``."""
    gq = quantize_groups(w * s, bits, group_size, symmetric)
    return gq.dequantize() / s, gq


def awq_search(w, X, bits: int = 4, group_size: int | None = 128, n_grid: int = 20,
               symmetric: bool = False) -> AWQResult:
    """AWQ's scale search (Lin et al., MLSys 2024): the per-channel scale ``s`` that minimises the
    layer's output error once ``W * s`` is quantized.

    For ``alpha = k / n_grid``, ``k = 0 .. n_grid - 1``::

        s_j   = mean_n |X_nj| ** alpha                  (then s / sqrt(max(s) * min(s)))
        error = mean((X W^T - (X / s) Q(W * s)^T) ** 2)

    and the ``alpha`` with the smallest error wins (the first one on a tie). ``alpha = 0`` gives
    ``s = 1``, plain round to nearest, so on the calibration data AWQ is never worse than RTN.

    Parameters
    ----------
    w : array (out_features, in_features)
        Weights in torch layout, finite.
    X : array (n_samples, in_features)
        Calibration inputs of the layer.
    bits : int in [2, 8], default 4
    group_size : int or None, default 128
        Must divide ``in_features``; None: one group per row.
    n_grid : int in [1, 1000], default 20
        Grid points for ``alpha`` in [0, 1).
    symmetric : bool, default False
        The quantizer of :func:`~compresslab.quant.groups.quantize_groups`.

    Returns
    -------
    AWQResult
        ``scales`` (float32, in_features), ``alpha`` and ``errors`` (one per grid point).

    Raises
    ------
    ValueError
        Shapes that do not match, bits outside [2, 8], a group size that does not divide the
        rows, NaN or inf values.

    See Also
    --------
    awq : the search, then the quantized weights.

    Notes
    -----
    The errors are computed in float64 through the Gram matrix ``G = X^T X``:
    ``||X D^T||_F^2 = sum(D * (D @ G))`` with ``D = W - Q(W * s) / s``, the same number as the
    obvious ``((X @ W.T - X @ W_hat.T) ** 2).sum()`` at a fraction of the cost (``G`` is built
    once). As in the reference (mit-han-lab/llm-awq, ``auto_scale.py``): ``mean|X|`` per channel,
    the 1e-4 clip, the normalisation, the grid and the strict ``<`` on ties. Differences: one
    Linear layer rather than a whole block (the reference may measure the error after attention
    or an MLP); the quantizer widens each group's range to contain 0 and gives a group of zeros
    scale 0 (the reference's ``pseudo_quantize_tensor`` uses ``[min, max]``, a 1e-5 floor on the
    scale and clamps the zero point); and no clipping search (the reference's ``auto_clip``,
    which also shrinks each group's range, is not implemented).

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X = g.normal(size=(256, 64)).astype(np.float32)
    >>> X[:, 3] *= 30                                          # one salient input channel
    >>> w = g.normal(size=(16, 64)).astype(np.float32)
    >>> r = awq_search(w, X, bits=3, group_size=32)
    >>> r.alpha > 0, bool(r.errors.min() < r.errors[0])        # errors[0]: alpha = 0, plain RTN
    (True, True)
    """
    w, X, bits, group_size, n_grid, symmetric = _check(w, X, bits, group_size, n_grid, symmetric)
    x_mean = np.abs(X).mean(axis=0, dtype=np.float64)         # mean |X_j| over the calibration rows
    X64 = X.astype(np.float64)
    G = X64.T @ X64
    errors = np.empty(n_grid)
    for k in range(n_grid):
        D = w - _effective(w, _scales(x_mean, k / n_grid), bits, group_size, symmetric)[0]
        D = D.astype(np.float64)
        errors[k] = np.sum(D * (D @ G)) / (X.shape[0] * w.shape[0])  # = mean((X @ D.T) ** 2)
    best = int(np.argmin(errors))                              # the first minimum
    return AWQResult(_scales(x_mean, best / n_grid), best / n_grid, errors)


@backend.same_kind
def awq(w, X, bits: int = 4, group_size: int | None = 128, n_grid: int = 20, symmetric: bool = False):
    """AWQ (Lin et al., MLSys 2024): search the scales, then quantize ``W * s`` in groups.

    ``w_hat = Q(W * s) / s``: the weight the layer effectively computes with. What is stored is
    ``Q(W * s)`` (``gq``, the bytes of round to nearest); the ``1 / s`` is folded into the
    operation that produces the layer's input (divide a LayerNorm's weight and bias, or the
    previous Linear's output rows, by ``s``), so that ``(X / s) Q(W * s)^T = X w_hat^T`` at no
    cost at inference.

    Parameters
    ----------
    w : array or tensor (out_features, in_features)
    X : array or tensor (n_samples, in_features)
        Calibration inputs.
    bits : int in [2, 8], default 4
    group_size : int or None, default 128
    n_grid : int in [1, 1000], default 20
    symmetric : bool, default False

    Returns
    -------
    w_hat : float32 array (out_features, in_features)
        ``Q(W * s) / s``.
    scales : float32 array (in_features,)
        ``s`` (fold ``1 / s`` into the previous operation).
    gq : GroupQuant
        ``Q(W * s)``: codes, scales, zero points.

    See Also
    --------
    awq_search : the search alone, with the error of every ``alpha``.

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X = g.normal(size=(256, 64)).astype(np.float32)
    >>> X[:, 3] *= 30
    >>> w = g.normal(size=(16, 64)).astype(np.float32)
    >>> w_hat, s, gq = awq(w, X, bits=3, group_size=32)
    >>> np.allclose(w_hat, gq.dequantize() / s), bool(s[3] == s.max())
    (True, True)
    """
    w, X, bits, group_size, n_grid, symmetric = _check(w, X, bits, group_size, n_grid, symmetric)
    s = awq_search(w, X, bits, group_size, n_grid, symmetric).scales
    w_hat, gq = _effective(w, s, bits, group_size, symmetric)
    return w_hat, s, gq
