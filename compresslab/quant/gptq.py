"""GPTQ: quantize a layer's weights one input column at a time, and let the columns not yet
quantized absorb the error (E. Frantar, S. Ashkboos, T. Hoefler, D. Alistarh, "GPTQ: Accurate
Post-Training Quantization for Generative Pre-trained Transformers", ICLR 2023;
arXiv:2210.17323, 2022).

The goal is the layer's output on calibration inputs ``X``, not the weights themselves::

    minimise ||X W^T - X W_hat^T||_F^2 / n = sum_rows (w - w_hat) (H / 2) (w - w_hat)^T,   H = 2 X^T X / n

Rounding column ``i`` to the grid leaves an error ``w_i - q_i``; the Optimal Brain Surgeon update
(Hassibi & Stork 1993) moves the remaining columns to compensate it as well as ``H`` allows::

    err = (w_i - q_i) / U[i, i],   w[:, i+1:] -= err * U[i, i+1:]

where ``U`` is the upper Cholesky factor of ``H^-1`` (``H^-1 = U^T U``): row ``i`` of ``U`` holds
the inverse Hessian of the columns ``i..n`` left after ``0..i-1`` were fixed, divided by the square
root of its diagonal entry. The result is
stored exactly like round-to-nearest (:class:`~compresslab.quant.groups.GroupQuant`): GPTQ
chooses better codes, not another format.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import backend
from .groups import GroupQuant, _check_group_size, _check_weight, _codes, _dequant, _params

__all__ = ["hessian", "gptq"]


@backend.same_kind
def hessian(X):
    """The Hessian of the layer's squared output error: ``H = 2 X^T X / n`` (float64).

    ``||X W^T - X W_hat^T||_F^2 / n = sum_rows (w - w_hat) (H / 2) (w - w_hat)^T``, so ``H`` is
    all GPTQ needs to know about the calibration data.

    Parameters
    ----------
    X : array (n_samples, in_features)
        Calibration inputs of the layer (for a transformer: tokens x hidden size), finite.

    Returns
    -------
    float64 array (in_features, in_features), symmetric positive semi-definite

    Examples
    --------
    >>> hessian(np.array([[1.0, 0.0], [1.0, 2.0]])).tolist()     # 2 / 2 * [[2, 2], [2, 4]]
    [[2.0, 2.0], [2.0, 4.0]]
    """
    X = V.as_float_array(X, "X", ndim=2)
    X = X.astype(np.float64)
    return 2.0 * (X.T @ X) / X.shape[0]


def _check(w, H, bits, group_size, damp, block_size, symmetric, act_order):
    """Validate :func:`gptq`'s arguments; return w (float32), H (float64) and the rest as plain values."""
    w = _check_weight(w)
    n = w.shape[1]
    H = V.as_float_array(H, "H", ndim=2).astype(np.float64)
    if H.shape != (n, n):
        raise ValueError(f"H must be (in_features, in_features) = ({n}, {n}) for w of shape {w.shape}, "
                         f"got {H.shape}; build it with hessian(X)")
    if not np.allclose(H, H.T, rtol=1e-5, atol=1e-8 * np.abs(H).max()) or (np.diag(H) < 0).any():
        raise ValueError("H must be symmetric with a non-negative diagonal, as 2 X^T X / n is")
    return (w, H, V.check_bits(bits, high=8), _check_group_size(group_size, n),
            V.check_float(damp, "damp", 0.0), V.check_int(block_size, "block_size", 1),
            V.check_bool(symmetric, "symmetric"), V.check_bool(act_order, "act_order"))


def _prepare(w: np.ndarray, H: np.ndarray, damp: float, act_order: bool):
    """Everything before the column loop: dead inputs, the act-order permutation, dampening
    ``H += damp * mean(diag H) * I`` and ``U``, the upper Cholesky factor of ``H^-1``.
    Returns W (float64 copy, columns permuted), U and the permutation."""
    W, H = w.astype(np.float64), H.copy()
    dead = np.flatnonzero(np.diag(H) == 0)      # an input that is always 0: its weights do nothing
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(H.shape[0])
    W, H = W[:, perm], H[np.ix_(perm, perm)]
    H[np.diag_indices_from(H)] += damp * np.mean(np.diag(H))
    try:
        Linv = np.linalg.inv(np.linalg.cholesky(H))        # H = L L^T, so H^-1 = L^-T L^-1
        U = np.linalg.cholesky(Linv.T @ Linv).T            # upper: H^-1 = U^T U
    except np.linalg.LinAlgError:
        raise ValueError("H is not positive definite even after dampening; increase damp "
                         f"(now {damp}) or use more calibration samples") from None
    return W, U, perm


def _static_groups(W: np.ndarray, perm: np.ndarray, bits: int, group_size: int, symmetric: bool):
    """Scale and zero point of every group from the weights before any update (with act-order,
    as AutoGPTQ's ``static_groups``: the groups stay contiguous in the original order)."""
    natural = np.empty_like(W)
    natural[:, perm] = W
    out, n = W.shape
    return _params(natural.reshape(out, n // group_size, group_size), bits, symmetric)


def _finish(codes, scale, zero, perm, bits, group_size, symmetric):
    """Undo the permutation and pack everything into a :class:`GroupQuant`; return (w_hat, gq)."""
    q = np.empty_like(codes)
    q[:, perm] = codes
    gq = GroupQuant(q, scale, zero, bits, group_size, q.shape, symmetric)
    return gq.dequantize(), gq


@backend.same_kind
def gptq(w, H, bits: int = 4, group_size: int | None = 128, damp: float = 0.01, block_size: int = 128,
         symmetric: bool = False, act_order: bool = False):
    """GPTQ (Frantar et al., ICLR 2023): quantize the columns of ``w`` in order, each time moving
    the columns not yet quantized to absorb the error, weighted by the Hessian ``H``.

    For each input column ``i`` (``U`` = upper Cholesky factor of ``H^-1``)::

        q_i = quant(w_i)                      # the group's grid, round to nearest
        err = (w_i - q_i) / U[i, i]
        w[:, i+1:] -= err * U[i, i+1:]        # OBS update of the columns still to do

    Before the loop, ``H += damp * mean(diag H) * I``, and an input whose ``H_ii = 0`` (never
    active) gets ``H_ii = 1`` and zero weights. A group's scale and zero point are set when the
    loop reaches its first column, from the weights as updated so far. Columns are processed in
    blocks of ``block_size`` (the paper's "lazy batch" update): inside a block the update is
    applied column by column, to the rest of the matrix once per block, ``W[:, i2:] -= Err @
    U[i1:i2, i2:]``; the result equals the plain column loop.

    Parameters
    ----------
    w : array (out_features, in_features)
        Weights in torch layout, finite.
    H : array (in_features, in_features)
        ``hessian(X)`` of the layer's calibration inputs.
    bits : int in [2, 8], default 4
    group_size : int or None, default 128
        Must divide ``in_features``; None: one group per row.
    damp : float >= 0, default 0.01
        Dampening, a fraction of the mean diagonal of ``H`` (the reference's ``percdamp``).
    block_size : int >= 1, default 128
        Columns per lazy-batch block; changes speed, not the result.
    symmetric : bool, default False
    act_order : bool, default False
        Quantize the columns by decreasing ``H_ii`` (most active inputs first). The group grids
        are then computed up front from the weights before any update ("static groups"), so the
        groups stay contiguous and the storage is RTN's.

    Returns
    -------
    w_hat : float32 array (out_features, in_features)
        The quantized weights, ``gq.dequantize()``.
    gq : GroupQuant
        Codes, scales and zero points in :func:`~compresslab.quant.groups.quantize_groups`'s
        layout (same bytes per weight as RTN).

    Raises
    ------
    ValueError
        Wrong shapes, bits outside [2, 8], a group size that does not divide the rows, a
        non-symmetric ``H`` or one that stays singular after dampening.

    See Also
    --------
    hessian, compresslab.quant.groups.rtn

    Notes
    -----
    Runs in float64 (weights, ``H``, updates). Where this differs from the reference
    implementation (IST-DASLab/gptq, ``fasterquant``): there a new group's grid is computed from
    ``W[:, i:i+group_size]``, which within a block misses the block's pending column updates
    when ``group_size < block_size``; here it is computed from the current weights, as the
    column-by-column algorithm sees them, so the block size never changes the result. A group
    of zeros gets ``scale = 0`` (the reference uses the range [-1, 1]). With ``act_order`` the
    groups are static (AutoGPTQ's ``static_groups=True``), not re-formed in the permuted order.

    Examples
    --------
    >>> w = np.array([[1.4, 2.4, 3.0]])
    >>> H = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    >>> w_hat, gq = gptq(w, H, bits=2, group_size=None, damp=0.0)   # grid 0, 1, 2, 3
    >>> w_hat.tolist()        # 1.4 -> 1; error 0.4 moves column 2 by H12/H22 * 0.4 to 2.6 -> 3
    [[1.0, 3.0, 3.0]]
    """
    w, H, bits, gs, damp, block_size, symmetric, act_order = _check(
        w, H, bits, group_size, damp, block_size, symmetric, act_order)
    W, U, perm = _prepare(w, H, damp, act_order)
    out, n = W.shape
    scale, zero = _static_groups(W, perm, bits, gs, symmetric)   # recomputed below unless act_order
    codes = np.zeros((out, n), np.int64)
    for i1 in range(0, n, block_size):
        i2 = min(i1 + block_size, n)
        Err = np.zeros((out, i2 - i1))
        for i in range(i1, i2):
            g = perm[i] // gs                                     # the group of this column
            if not act_order and i % gs == 0:                     # a new group: its grid, from now
                scale[:, g], zero[:, g] = _params(_current(W, Err, U, i1, i, i2, i + gs), bits, symmetric)
            codes[:, i] = _codes(W[:, i], scale[:, g], zero[:, g], bits, symmetric)
            Err[:, i - i1] = (W[:, i] - _dequant(codes[:, i], scale[:, g], zero[:, g])) / U[i, i]
            W[:, i + 1:i2] -= np.outer(Err[:, i - i1], U[i, i + 1:i2])   # inside the block: now
        W[:, i2:] -= Err @ U[i1:i2, i2:]                                  # the rest: once per block
    return _finish(codes, scale, zero, perm, bits, gs, symmetric)


def _current(W, Err, U, i1, i, i2, stop):
    """Columns ``i..stop`` of W as the plain column loop would see them at column ``i``: those
    past the block (``i2`` and on) still wait for the update of the block's columns ``i1..i``."""
    cur = W[:, i:stop].copy()
    if stop > i2:
        cur[:, i2 - i:] -= Err[:, :i - i1] @ U[i1:i, i2:stop]
    return cur


def _gptq_reference(w, H, bits=4, group_size=128, damp=0.01, symmetric=False, act_order=False):
    """GPTQ as one plain loop over the columns, no blocks: the readable form :func:`gptq` must equal."""
    w, H, bits, gs, damp, _, symmetric, act_order = _check(
        w, H, bits, group_size, damp, 1, symmetric, act_order)
    W, U, perm = _prepare(w, H, damp, act_order)
    scale, zero = _static_groups(W, perm, bits, gs, symmetric)
    codes = np.zeros(W.shape, np.int64)
    for i in range(W.shape[1]):
        g = perm[i] // gs
        if not act_order and i % gs == 0:
            scale[:, g], zero[:, g] = _params(W[:, i:i + gs], bits, symmetric)
        codes[:, i] = _codes(W[:, i], scale[:, g], zero[:, g], bits, symmetric)
        err = (W[:, i] - _dequant(codes[:, i], scale[:, g], zero[:, g])) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return _finish(codes, scale, zero, perm, bits, gs, symmetric)
