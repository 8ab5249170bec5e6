"""The grid of a linear quantizer: its integer range and its parameters (scale, zero point)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as V

__all__ = ["QParams", "qrange"]

F32 = np.float32
EPS32 = float(np.finfo(np.float32).eps)  # torch's observer eps: 2**-23


def qrange(bits: int = 8, signed: bool = True, narrow_range: bool = False) -> tuple[int, int]:
    """The integer range ``[qmin, qmax]`` of a ``bits``-bit integer.

    Signed: ``[-2**(bits-1), 2**(bits-1) - 1]``; unsigned: ``[0, 2**bits - 1]``.

    Parameters
    ----------
    bits : int in [2, 16]
    signed : bool
        Signed (int8-like) or unsigned (uint8-like) integers.
    narrow_range : bool
        Drop the lowest value (TFLite's symmetric int8 range [-127, 127]).

    Returns
    -------
    (qmin, qmax) : tuple of int

    Examples
    --------
    >>> qrange(8), qrange(8, signed=False), qrange(4, narrow_range=True)
    ((-128, 127), (0, 255), (-7, 7))
    """
    bits = V.check_bits(bits)
    signed, narrow_range = V.check_bool(signed, "signed"), V.check_bool(narrow_range, "narrow_range")
    if signed:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        qmin, qmax = 0, 2 ** bits - 1
    return (qmin + 1 if narrow_range else qmin), qmax


@dataclass
class QParams:
    """Parameters of a linear quantizer: ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``.

    Parameters
    ----------
    scale : float or 1-D float array
        Step between levels, > 0 and finite. One value (per tensor) or one per channel.
    zero_point : int or 1-D integer array
        The integer that represents 0.0; must lie in ``[qmin, qmax]``.
    qmin, qmax : int
        Integer range (e.g. -128, 127 for int8).
    axis : int or None
        Channel axis for per-channel parameters (``None``: per tensor).

    Examples
    --------
    >>> qp = QParams(scale=0.5, zero_point=3, qmin=0, qmax=7)
    >>> qp.bits, qp.dtype, qp.per_channel
    (3, dtype('uint8'), False)
    """

    scale: Any
    zero_point: Any
    qmin: int
    qmax: int
    axis: int | None = None

    def __post_init__(self):
        V.check_qparams_fields(self)           # and normalise: float32 scales, integer zero points

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def bits(self) -> int:
        """Bits needed to store one integer: ``ceil(log2(qmax - qmin + 1))``."""
        return int(math.ceil(math.log2(self.qmax - self.qmin + 1)))

    @property
    def dtype(self) -> np.dtype:
        """Smallest NumPy integer type holding ``[qmin, qmax]`` (uint8, int8, uint16 or int16)."""
        for dt in (np.uint8, np.int8, np.uint16, np.int16):
            if np.iinfo(dt).min <= self.qmin and self.qmax <= np.iinfo(dt).max:
                return np.dtype(dt)
        return np.dtype(np.int32)

    def shaped_like(self, x: np.ndarray):
        """``(scale, zero_point)`` shaped to broadcast against ``x`` (per channel: along ``axis``)."""
        if self.axis is None:
            return self.scale, self.zero_point
        axis = V.check_axis(self.axis, x.ndim, "qp.axis")
        if x.shape[axis] != self.scale.size:
            raise ValueError(f"x has {x.shape[axis]} channels along axis {self.axis} but qp has "
                             f"{self.scale.size} scales")
        shape = [1] * x.ndim
        shape[axis] = -1
        return self.scale.reshape(shape), self.zero_point.reshape(shape)

    def __repr__(self):
        if self.axis is None:
            return (f"QParams(scale={float(self.scale):.6g}, zero_point={self.zero_point}, "
                    f"qmin={self.qmin}, qmax={self.qmax})")
        return (f"QParams(scale={V.short(self.scale)}, zero_point={V.short(self.zero_point)}, "
                f"qmin={self.qmin}, qmax={self.qmax}, axis={self.axis})")


def check_qparams(qp) -> QParams:
    """``qp`` if it is a QParams, else a TypeError that says where to get one."""
    if not isinstance(qp, QParams):
        raise TypeError(f"qp must be a QParams (from quant.qparams), got {type(qp).__name__}")
    return qp
