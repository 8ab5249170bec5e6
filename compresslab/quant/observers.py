"""Observers: choosing the range ``[lo, hi]`` to quantize, and from it the scale and zero point.

An observer looks at data (weights, or activations on calibration batches) and returns the range
the grid should cover. A wide range clips nothing but makes the step coarse; a narrow one rounds
finely and clips the outliers. :func:`qparams` = an observer, then
:func:`compresslab.quant.scale_zero_point`.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import backend
from .grid import F32, QParams
from .linear import scale_zero_point

__all__ = ["OBSERVERS", "qparams", "observe_range", "minmax_range", "moving_average_range",
           "percentile_range", "mse_range"]

OBSERVERS = ("minmax", "moving_average", "percentile", "mse")


def _channels_first(x: np.ndarray, axis: int | None) -> np.ndarray:
    """``x`` as a 2-D array (channels, values); one row when ``axis`` is None."""
    if axis is None:
        return x.reshape(1, -1)
    axis = V.check_axis(axis, x.ndim, "axis")
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _per_channel(v, axis):
    """float32 result: shape () per tensor, (channels,) per channel."""
    return np.asarray(v, dtype=F32).reshape(() if axis is None else -1)


def minmax_range(x, axis: int | None = None):
    """``lo = min(x), hi = max(x)`` per tensor or per channel (torch's ``MinMaxObserver``).

    Parameters
    ----------
    x : array or tensor of finite numbers
    axis : int or None
        Channel axis (one range per channel), or None for one range.

    Returns
    -------
    lo, hi : float32 arrays, shape () per tensor or (channels,) per channel

    Examples
    --------
    >>> lo, hi = minmax_range(np.array([[-1.0, 2.0], [0.5, 3.0]]), axis=0)
    >>> lo.tolist(), hi.tolist()
    ([-1.0, 0.5], [2.0, 3.0])
    """
    rows = _channels_first(V.as_float32(x, "x"), axis)
    return _per_channel(rows.min(axis=1), axis), _per_channel(rows.max(axis=1), axis)


def moving_average_range(batches, axis: int | None = None, averaging_constant: float = 0.01):
    """Exponential moving average of each batch's min and max, starting from the first batch:
    ``lo <- lo + c * (min(batch) - lo)``, same for ``hi`` (torch's
    ``MovingAverageMinMaxObserver`` with ``averaging_constant = c``).

    Parameters
    ----------
    batches : list of arrays
        Calibration batches, in the order they arrive.
    axis : int or None
        Channel axis (one range per channel), or None for one range.
    averaging_constant : float in (0, 1]
        ``c``: the weight of the newest batch.

    Returns
    -------
    lo, hi : float32 arrays, shape () per tensor or (channels,) per channel

    Examples
    --------
    >>> lo, hi = moving_average_range([np.array([-1.0, 1.0]), np.array([-3.0, 5.0])], None, 0.5)
    >>> float(lo), float(hi)
    (-2.0, 3.0)
    """
    c = F32(V.check_float(averaging_constant, "averaging_constant", 0.0, 1.0, low_open=True))
    if not isinstance(batches, (list, tuple)) or not batches:
        raise ValueError("batches must be a non-empty list of calibration batches (arrays), got "
                         f"{type(batches).__name__}")
    lo, hi = minmax_range(V.as_float32(batches[0], "x[0]"), axis)
    for i, batch in enumerate(batches[1:], start=1):
        b_lo, b_hi = minmax_range(V.as_float32(batch, f"x[{i}]"), axis)
        lo, hi = lo + c * (b_lo - lo), hi + c * (b_hi - hi)
    return _per_channel(lo, axis), _per_channel(hi, axis)


def percentile_range(x, axis: int | None = None, percentile: float = 99.99):
    """``lo, hi`` = the ``100 - p`` and ``p`` percentiles of ``x``: ignores the rarest outliers.

    Parameters
    ----------
    x : array or tensor of finite numbers
    axis : int or None
        Channel axis (one range per channel), or None for one range.
    percentile : float in (50, 100]
        ``p``.

    Returns
    -------
    lo, hi : float32 arrays, shape () per tensor or (channels,) per channel

    Examples
    --------
    >>> x = np.append(np.linspace(-1, 1, 999), 50.0)          # one outlier
    >>> [round(float(v), 2) for v in percentile_range(x, percentile=99.0)]
    [-0.98, 0.98]
    """
    p = V.check_float(percentile, "percentile", 50.0, 100.0, low_open=True)
    rows = _channels_first(V.as_float32(x, "x"), axis)
    lo, hi = np.percentile(rows, [100.0 - p, p], axis=1)
    return _per_channel(lo, axis), _per_channel(hi, axis)


def mse_range(x, axis: int | None = None, bits: int = 8, scheme: str = "affine",
              signed: bool | None = None, narrow_range: bool = False):
    """The range ``[a * min(x), a * max(x)]`` whose quantizer has the least mean squared error
    ``mean((x - fake_quantize(x))**2)``, ``a`` searched on a grid of 100 values from 1 down to
    0.01 (per channel: one ``a`` per channel). A grid search, as in Krishnamoorthi 2018 sec. 3.

    Parameters
    ----------
    x : array or tensor of finite numbers
    axis : int or None
        Channel axis (one range per channel), or None for one range.
    bits, scheme, signed, narrow_range
        The quantizer whose error is minimised (see :func:`compresslab.quant.scale_zero_point`).

    Returns
    -------
    lo, hi : float32 arrays, shape () per tensor or (channels,) per channel

    Examples
    --------
    >>> x = np.append(np.linspace(-1, 1, 999), 50.0)          # one outlier
    >>> lo, hi = mse_range(x, bits=4)
    >>> bool(hi < 50.0)                                       # clips the outlier
    True
    """
    rows = _channels_first(V.as_float32(x, "x"), axis)
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    best_a, best_err = np.ones(len(rows), F32), np.full(len(rows), np.inf)
    for a in np.linspace(1.0, 0.01, 100, dtype=F32):
        qp = scale_zero_point(lo * a, hi * a, bits, scheme, signed, 0, narrow_range)
        # err = mean((fake_quantize(rows, qp) - rows)**2) per row, computed in place in float32
        # (10x faster over 100 grid points; it estimates an error, ties need no exactness)
        s, z = qp.scale[:, None], qp.zero_point[:, None].astype(F32)
        q = np.rint(rows / s)
        q += z
        np.clip(q, qp.qmin, qp.qmax, out=q)
        q -= z
        q *= s
        q -= rows
        err = np.einsum("ij,ij->i", q, q) / rows.shape[1]
        better = err < best_err
        best_err[better], best_a[better] = err[better], a
    return _per_channel(lo * best_a, axis), _per_channel(hi * best_a, axis)


def _concatenate(x, axis):
    """A list of calibration batches as one array (batches stacked along the first axis)."""
    if not len(x) or np.isscalar(x[0]):
        return x
    batches = [np.asarray(backend.to_numpy(b), dtype=F32) for b in x]
    if axis is None:
        return np.concatenate([b.ravel() for b in batches])
    return np.concatenate([b.reshape(-1, *b.shape[1:]) for b in batches])


def observe_range(x, observer: str = "minmax", axis: int | None = None, *, bits: int = 8,
                  scheme: str = "affine", signed: bool | None = None, percentile: float = 99.99,
                  averaging_constant: float = 0.01, narrow_range: bool = False):
    """The range ``(lo, hi)`` the named observer picks for ``x``.

    Parameters
    ----------
    x : array, tensor, or a list of calibration batches
    observer : "minmax", "moving_average", "percentile" or "mse"
        See :func:`minmax_range`, :func:`moving_average_range`, :func:`percentile_range`,
        :func:`mse_range`. Other observers concatenate a list of batches.
    axis : int or None
        Channel axis (one range per channel), or None for one range.
    bits, scheme, signed, narrow_range
        The quantizer the ``"mse"`` observer optimises for.
    percentile : float in (50, 100]
    averaging_constant : float in (0, 1]

    Returns
    -------
    lo, hi : float32 arrays, shape () per tensor or (channels,) per channel

    Examples
    --------
    >>> lo, hi = observe_range(np.array([-1.0, 0.5, 2.0]))
    >>> float(lo), float(hi)
    (-1.0, 2.0)
    """
    V.check_choice(observer, "observer", set(OBSERVERS))
    if observer == "moving_average" and isinstance(x, (list, tuple)):
        return moving_average_range(x, axis, averaging_constant)
    if isinstance(x, (list, tuple)):
        x = _concatenate(x, axis)
    if observer == "percentile":
        return percentile_range(x, axis, percentile)
    if observer == "mse":
        return mse_range(x, axis, bits, scheme, signed, narrow_range)
    return minmax_range(x, axis)    # "minmax", and "moving_average" of a single batch


def qparams(x, bits: int = 8, scheme: str = "affine", axis: int | None = None,
            signed: bool | None = None, observer: str = "minmax", *, narrow_range: bool = False,
            percentile: float = 99.99, averaging_constant: float = 0.01) -> QParams:
    """Scale and zero point for quantizing ``x`` to ``bits`` bits: the observer's range
    ``[lo, hi]``, widened to contain 0, then

    affine:    ``scale = (hi - lo) / (qmax - qmin)``, ``zero_point = clamp(qmin - round(lo / scale))``
    symmetric: ``scale = max(-lo, hi) / ((qmax - qmin) / 2)``, ``zero_point = 0`` (signed)

    with ``scale >= 2**-23``. For ``observer="minmax"`` this is exactly torch's
    ``MinMaxObserver`` / ``PerChannelMinMaxObserver`` (float32 arithmetic; tested).

    Parameters
    ----------
    x : array, tensor, or a list of calibration batches
    bits : int in [2, 16]
    scheme : "affine" or "symmetric"
    axis : int or None
        Channel axis for per-channel parameters (torch's ``ch_axis``), or None for per tensor.
    signed : bool or None
        Integer type; default unsigned for affine (quint8) and signed for symmetric (qint8).
    observer : "minmax", "moving_average", "percentile" or "mse"
        How to pick the range (see :func:`observe_range`).
    narrow_range : bool
        Drop the most negative integer (TFLite's symmetric [-127, 127]).
    percentile, averaging_constant : float
        Settings of the "percentile" and "moving_average" observers.

    Returns
    -------
    QParams

    See Also
    --------
    compresslab.quant.scale_zero_point : the formula, from a range.
    compresslab.quant.quantize : applies the result.

    Examples
    --------
    >>> qp = qparams(np.array([-1.0, 0.5, 2.0]), bits=8)
    >>> round(float(qp.scale), 6), qp.zero_point, (qp.qmin, qp.qmax)
    (0.011765, 85, (0, 255))
    """
    lo, hi = observe_range(x, observer, axis, bits=bits, scheme=scheme, signed=signed, narrow_range=narrow_range,
                           percentile=percentile, averaging_constant=averaging_constant)
    return scale_zero_point(lo, hi, bits, scheme, signed, axis, narrow_range)
