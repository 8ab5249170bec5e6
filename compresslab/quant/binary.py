"""Binary and ternary weights: one or two bits per weight and one float scale.

References: Rastegari et al., "XNOR-Net", ECCV 2016; Li, Zhang & Liu, "Ternary Weight
Networks", arXiv:1605.04711, 2016.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import backend
from .grid import F32
from .observers import _channels_first

__all__ = ["binarize", "ternarize"]


@backend.same_kind
def binarize(w, axis: int | None = 0):
    """XNOR-Net binary weights (Rastegari et al. 2016 ECCV): ``W ~ alpha * sign(W)``,
    ``alpha = mean(|W|)`` per output channel (``axis=0``) or per tensor (``axis=None``).

    ``sign(0)`` is taken as +1. Returns ``(alpha, signs, w_hat)`` with signs in {-1, +1} (int8)
    and ``w_hat = alpha * signs`` (float32). ``alpha = mean|W|`` minimises ``||W - alpha B||^2``.

    Parameters
    ----------
    w : array or tensor of weights
    axis : int or None, default 0
        Channel axis with one ``alpha`` per entry (0: output channels of a Linear/Conv2d
        weight), or None for one ``alpha`` for the whole tensor.

    Returns
    -------
    alpha : float32
        Shape () per tensor, (channels,) per channel.
    signs : int8 array of w's shape
        Entries in {-1, +1}: 1 bit per weight.
    w_hat : float32 array of w's shape
        ``alpha * signs``, alpha broadcast along ``axis``.

    See Also
    --------
    ternarize : adds a zero level (2 bits per weight).

    Notes
    -----
    The means are taken in float64, then rounded to float32.

    Examples
    --------
    >>> alpha, signs, w_hat = binarize(np.array([[0.5, -1.5], [0.0, -3.0]]))     # one alpha per row
    >>> alpha.tolist(), signs.tolist(), w_hat.tolist()
    ([1.0, 1.5], [[1, -1], [1, -1]], [[1.0, -1.0], [1.5, -1.5]])
    >>> float(binarize(np.array([[0.5, -1.5], [0.0, -3.0]]), axis=None)[0])      # mean of all |w|
    1.25
    """
    w = V.as_float32(w, "w")
    signs = np.where(w >= 0, 1, -1).astype(np.int8)
    if axis is None:
        alpha = np.abs(w).mean(dtype=np.float64).astype(F32)
        return alpha, signs, (alpha * signs).astype(F32)
    rows = _channels_first(np.abs(w), axis)
    alpha = rows.mean(axis=1, dtype=np.float64).astype(F32)
    shape = [1] * w.ndim
    shape[axis] = -1
    return alpha, signs, (alpha.reshape(shape) * signs).astype(F32)


@backend.same_kind
def ternarize(w, threshold: float = 0.7):
    """Ternary weights (Li, Zhang & Liu 2016, TWN): ``W ~ alpha * t`` with t in {-1, 0, +1},
    ``delta = threshold * mean(|W|)``, ``t = sign(W) * (|W| > delta)``,
    ``alpha = mean(|W| over |W| > delta)``. Returns ``(alpha, t, w_hat)``.

    Parameters
    ----------
    w : array or tensor of weights
        One ``alpha`` and one ``delta`` for the whole tensor.
    threshold : float >= 0, default 0.7
        ``delta`` as a multiple of ``mean(|W|)`` (0.7 is TWN's choice).

    Returns
    -------
    alpha : float32 scalar
        0 when no weight exceeds ``delta``.
    t : int8 array of w's shape
        Entries in {-1, 0, +1}.
    w_hat : float32 array of w's shape
        ``alpha * t``.

    See Also
    --------
    binarize : two levels, no zero.

    Notes
    -----
    ``mean(|W|)`` and ``alpha`` are computed in float64; ``alpha`` is then rounded to float32.

    Examples
    --------
    >>> alpha, t, w_hat = ternarize(np.array([0.25, -1.5, 2.5, 0.5]))   # delta = 0.7 * 1.1875 = 0.83
    >>> float(alpha), t.tolist(), w_hat.tolist()                         # alpha = (1.5 + 2.5) / 2
    (2.0, [0, -1, 1, 0], [0.0, -2.0, 2.0, 0.0])
    """
    w = V.as_float32(w, "w")
    threshold = V.check_float(threshold, "threshold", 0.0)
    a = np.abs(w)
    delta = threshold * a.mean(dtype=np.float64)
    keep = a > delta
    t = (np.sign(w) * keep).astype(np.int8)
    alpha = F32(a[keep].mean(dtype=np.float64)) if keep.any() else F32(0)
    return alpha, t, (alpha * t).astype(F32)
