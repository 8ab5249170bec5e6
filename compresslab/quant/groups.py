"""Weight-only quantization in groups, the storage format of today's 4-bit LLM checkpoints.

Each row of a weight matrix ``W`` (torch layout: ``(out_features, in_features)``) is cut into
groups of ``group_size`` consecutive input channels, and every group gets its own scale (and,
asymmetric, zero point)::

    asymmetric: lo = min(min(w_group), 0), hi = max(max(w_group), 0)
                scale = (hi - lo) / (2**bits - 1),   zero = round(-lo / scale)
                q = clamp(round(w / scale) + zero, 0, 2**bits - 1)
    symmetric:  scale = max|w_group| / (2**(bits-1) - 1),   zero = 0
                q = clamp(round(w / scale), -2**(bits-1), 2**(bits-1) - 1)
    both:       w_hat = (q - zero) * scale

``round`` rounds half to even (``np.rint``), as everywhere in :mod:`compresslab.quant`. The range
``[lo, hi]`` is widened to contain 0, as GPTQ's quantizer does: 0.0 is then exact and the zero
point lies in ``[0, 2**bits - 1]``, so it fits in ``bits`` bits. A group of zeros gets
``scale = 0`` and decodes to exact zeros. This plain "round to nearest" (RTN) is the baseline
that GPTQ (:mod:`~compresslab.quant.gptq`) and AWQ (:mod:`~compresslab.quant.awq`) improve on,
with the same bytes.

The bytes are real: :func:`pack_bits` packs the ``bits``-bit codes into a stream of bytes, and
:meth:`GroupQuant.packed` returns exactly the arrays a file would hold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from .. import backend
from .grid import F32

__all__ = ["GroupQuant", "quantize_groups", "rtn", "pack_bits", "unpack_bits"]


# ------------------------------------------------------------------ the quantizer of one group
def _qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """Integer range of the codes: ``[0, 2**bits - 1]``, or signed ``[-2**(bits-1), 2**(bits-1) - 1]``."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


def _params(w: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale (float32) and zero point (int64) of the groups along the last axis of ``w``."""
    lo = np.minimum(w.min(axis=-1), 0).astype(np.float64)    # the range always contains 0
    hi = np.maximum(w.max(axis=-1), 0).astype(np.float64)
    if symmetric:
        scale = (np.maximum(-lo, hi) / (2 ** (bits - 1) - 1)).astype(F32)
        return scale, np.zeros(scale.shape, np.int64)
    scale = ((hi - lo) / (2 ** bits - 1)).astype(F32)
    safe = np.where(scale > 0, scale, 1).astype(np.float64)
    zero = np.where(scale > 0, np.rint(-lo / safe), 0)       # scale 0: a group of zeros
    return scale, np.clip(zero, 0, 2 ** bits - 1).astype(np.int64)


def _codes(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int, symmetric: bool) -> np.ndarray:
    """``q = clamp(round(w / scale) + zero, qmin, qmax)`` (int64); ``q = zero`` where ``scale = 0``."""
    qmin, qmax = _qrange(bits, symmetric)
    safe = np.where(scale > 0, scale, 1).astype(np.float64)
    q = np.clip(np.rint(w / safe) + zero, qmin, qmax)
    return np.where(scale > 0, q, zero).astype(np.int64)


def _dequant(q: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """``w_hat = (q - zero) * scale`` in float64: exact (a 9-bit integer times a float32), so it
    rounds to the float32 :meth:`GroupQuant.dequantize` returns."""
    return (q - zero) * scale.astype(np.float64)


def _check_group_size(group_size, in_features: int) -> int:
    """``group_size`` as an int: None means one group per row (per output channel)."""
    if group_size is None:
        return in_features
    group_size = V.check_int(group_size, "group_size", 1)
    if in_features % group_size:
        raise ValueError(f"group_size={group_size} must divide in_features={in_features} (each row is "
                         "cut into equal groups); use group_size=None for one group per row")
    return group_size


def _check_weight(w) -> np.ndarray:
    """A 2-D float32 weight matrix ``(out_features, in_features)`` of finite numbers."""
    w = V.as_float32(w, "w")
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-D weight matrix (out_features, in_features), got shape {w.shape}")
    return w


# ------------------------------------------------------------------ bit packing
def pack_bits(q, bits: int) -> np.ndarray:
    """Pack unsigned ``bits``-bit codes into bytes, little-endian.

    The codes form one stream of bits: code ``k`` holds bits ``k * bits`` to ``k * bits + bits - 1``
    of the stream, lowest bit first, and bit ``b`` of the stream is bit ``b % 8`` (counted from the
    least significant) of byte ``b // 8``. With 3 bits a code can straddle two bytes; the last
    byte is padded with zero bits. ``n`` codes take ``ceil(n * bits / 8)`` bytes.

    Parameters
    ----------
    q : integer array (any shape, flattened in C order)
        Codes in ``[0, 2**bits - 1]``.
    bits : int in [1, 8]

    Returns
    -------
    uint8 array of ``ceil(q.size * bits / 8)`` bytes

    See Also
    --------
    unpack_bits : the inverse.

    Examples
    --------
    >>> pack_bits([1, 2, 3, 0xF], bits=4)           # 0x21, 0xF3: two codes per byte, low nibble first
    array([ 33, 243], dtype=uint8)
    >>> pack_bits([7, 0, 5], bits=3)                 # 111 000 101 -> bits 0..8: 0b01000111, 0b1
    array([71,  1], dtype=uint8)
    """
    bits = V.check_bits(bits, low=1, high=8)
    q = V.as_int_array(q, "q", 0, 2 ** bits - 1).ravel()
    stream = (q[:, None] >> np.arange(bits)) & 1              # bit j of every code, lowest first
    return np.packbits(stream.astype(np.uint8).ravel(), bitorder="little")


def unpack_bits(packed, bits: int, n: int) -> np.ndarray:
    """The ``n`` codes of ``bits`` bits packed by :func:`pack_bits`.

    Parameters
    ----------
    packed : uint8 array (or integers in [0, 255])
        Exactly ``ceil(n * bits / 8)`` bytes.
    bits : int in [1, 8]
    n : int >= 0
        How many codes the bytes hold.

    Returns
    -------
    uint8 array of n codes in ``[0, 2**bits - 1]``

    Raises
    ------
    ValueError
        When ``packed`` does not hold exactly ``ceil(n * bits / 8)`` bytes.

    Examples
    --------
    >>> unpack_bits([71, 1], bits=3, n=3)
    array([7, 0, 5], dtype=uint8)
    """
    bits = V.check_bits(bits, low=1, high=8)
    n = V.check_int(n, "n", 0)
    packed = V.as_bytes_array(packed, "packed")
    if packed.size != math.ceil(n * bits / 8):
        raise ValueError(f"packed must hold ceil(n * bits / 8) = {math.ceil(n * bits / 8)} bytes for "
                         f"n={n} codes of {bits} bits, got {packed.size}")
    stream = np.unpackbits(packed, bitorder="little")[:n * bits].reshape(n, bits)
    return (stream.astype(np.int64) @ (1 << np.arange(bits))).astype(np.uint8)


# ------------------------------------------------------------------ the quantized matrix
@dataclass
class GroupQuant:
    """A weight matrix quantized in groups: codes, and one scale and zero point per group.

    ``w_hat[i, j] = (q[i, j] - zero[i, g]) * scale[i, g]`` with ``g = j // group_size``.

    Parameters
    ----------
    q : integer array (out_features, in_features)
        The codes: uint8 in ``[0, 2**bits - 1]`` (asymmetric) or int8 in
        ``[-2**(bits-1), 2**(bits-1) - 1]`` (symmetric).
    scale : float32 array (out_features, in_features // group_size)
        One step size per group, >= 0 (0: a group of zeros).
    zero : integer array of scale's shape
        Zero points in ``[0, 2**bits - 1]``; all 0 when symmetric.
    bits : int in [2, 8]
    group_size : int
        Input channels per group; ``in_features`` means one group per row.
    shape : tuple (out_features, in_features)
    symmetric : bool

    Examples
    --------
    >>> gq = quantize_groups(np.array([[0.0, 1.0, 2.0, 3.0]]), bits=2, group_size=None)
    >>> gq.q.tolist(), gq.scale.tolist(), gq.zero.tolist(), gq.nbytes()   # 1 + 2 + 1 bytes
    ([[0, 1, 2, 3]], [[1.0]], [[0]], 4)
    """

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    bits: int
    group_size: int
    shape: tuple
    symmetric: bool = False

    def __post_init__(self):
        _check_fields(self)

    @property
    def n_groups(self) -> int:
        """Groups per row: ``in_features // group_size``."""
        return self.shape[1] // self.group_size

    def dequantize(self) -> np.ndarray:
        """``w_hat = (q - zero) * scale``, float32 of shape ``(out_features, in_features)``."""
        out, n = self.shape
        q = self.q.reshape(out, self.n_groups, self.group_size).astype(F32)
        w = (q - self.zero[..., None].astype(F32)) * self.scale[..., None]
        return w.reshape(out, n).astype(F32)

    def nbytes(self, scale_bytes: int = 2) -> int:
        """Bytes of real storage: ``ceil(out * in * bits / 8)`` for the packed codes, plus
        ``scale_bytes`` per group scale (2: float16, as GPTQ and AWQ store them), plus the zero
        points packed at ``bits`` bits each, ``ceil(groups * bits / 8)`` (none when symmetric).
        With ``scale_bytes=2`` it is the size of :meth:`packed`."""
        V.check_int(scale_bytes, "scale_bytes", 1, 8)
        groups = self.scale.size
        zeros = 0 if self.symmetric else math.ceil(groups * self.bits / 8)
        return math.ceil(self.q.size * self.bits / 8) + groups * scale_bytes + zeros

    @property
    def bits_per_weight(self) -> float:
        """``8 * nbytes() / (out * in)``: 4-bit codes in groups of 128 with float16 scales and
        4-bit zero points take ``4 + 16/128 + 4/128 = 4.156`` bits per weight."""
        return 8 * self.nbytes() / self.q.size

    def packed(self) -> dict:
        """The bytes a file would hold: ``{"codes": uint8, "scales": float16, "zeros": uint8}``.

        ``codes`` is :func:`pack_bits` of the codes in C order (symmetric codes shifted by
        ``2**(bits-1)`` to be unsigned), ``scales`` the scales rounded to float16 (a relative
        change of at most 2**-11), ``zeros`` the zero points packed at ``bits`` bits (empty when
        symmetric). Their total size is :meth:`nbytes`; :meth:`from_packed` reads them back.
        """
        if self.scale.size and self.scale.max() > np.finfo(np.float16).max:
            raise ValueError(f"a scale ({self.scale.max():.3g}) exceeds float16's range (65504): "
                             "these weights cannot be stored with float16 scales")
        offset = 2 ** (self.bits - 1) if self.symmetric else 0
        zeros = np.zeros(0, np.uint8) if self.symmetric else pack_bits(self.zero, self.bits)
        return {"codes": pack_bits(self.q.astype(np.int64) + offset, self.bits),
                "scales": self.scale.astype(np.float16), "zeros": zeros}

    @classmethod
    def from_packed(cls, data: dict, shape, bits: int, group_size: int, symmetric: bool = False):
        """Read back :meth:`packed`'s bytes (the scales become the float16-rounded ones)."""
        if not isinstance(data, dict) or not {"codes", "scales", "zeros"} <= data.keys():
            raise TypeError("data must be the dict GroupQuant.packed() returns, with 'codes', 'scales' "
                            f"and 'zeros', got {type(data).__name__}")
        out, n = V.check_shape(shape)
        bits, groups = V.check_bits(bits, high=8), out * (n // V.check_int(group_size, "group_size", 1))
        offset = 2 ** (bits - 1) if symmetric else 0
        q = unpack_bits(data["codes"], bits, out * n).astype(np.int64) - offset
        zero = np.zeros(groups, np.int64) if symmetric else unpack_bits(data["zeros"], bits, groups)
        scale = np.asarray(data["scales"], np.float16).astype(F32)
        return cls(q.reshape(out, n).astype(np.int8 if symmetric else np.uint8), scale.reshape(out, -1),
                   zero.reshape(out, -1), bits, group_size, (out, n), symmetric)


def _check_fields(gq: GroupQuant) -> None:
    """Validate and normalise a new :class:`GroupQuant` (shapes, ranges, dtypes)."""
    gq.bits = V.check_bits(gq.bits, high=8)
    gq.symmetric = V.check_bool(gq.symmetric, "symmetric")
    shape = V.check_shape(gq.shape)
    if len(shape) != 2 or 0 in shape:
        raise ValueError(f"shape must be (out_features, in_features), both >= 1, got {gq.shape!r}")
    gq.shape, gq.group_size = shape, _check_group_size(gq.group_size, shape[1])
    qmin, qmax = _qrange(gq.bits, gq.symmetric)
    q = V.as_int_array(gq.q, "q", qmin, qmax)
    if q.shape != shape:
        raise ValueError(f"q must have shape {shape}, got {q.shape}")
    scale = V.as_float_array(gq.scale, "scale").astype(F32)
    zero = V.as_int_array(gq.zero, "zero", 0, 0 if gq.symmetric else 2 ** gq.bits - 1)
    want = (shape[0], shape[1] // gq.group_size)
    if scale.shape != want or zero.shape != want:
        raise ValueError(f"scale and zero must have shape {want} (one per group), got {scale.shape} "
                         f"and {zero.shape}")
    if (scale < 0).any():
        raise ValueError("scale must be >= 0")
    gq.q, gq.scale = q.astype(np.int8 if gq.symmetric else np.uint8), scale
    gq.zero = zero.astype(np.uint8)


# ------------------------------------------------------------------ round to nearest
def quantize_groups(w, bits: int = 4, group_size: int | None = 128, symmetric: bool = False) -> GroupQuant:
    """Round-to-nearest (RTN) quantization of a weight matrix in groups of input channels.

    Each row is cut into groups of ``group_size`` consecutive input channels, and each group is
    quantized with its own range::

        asymmetric: scale = (max - min) / (2**bits - 1), zero = round(-min / scale),
                    q = clamp(round(w / scale) + zero, 0, 2**bits - 1)
        symmetric:  scale = max|w| / (2**(bits-1) - 1),
                    q = clamp(round(w / scale), -2**(bits-1), 2**(bits-1) - 1)

    with ``min``/``max`` widened to contain 0 and ``round`` half to even. A group of zeros gets
    ``scale = 0`` and decodes to zeros. Groups of 128 with 4 bits are the usual LLM setting
    (GPTQ, AWQ; Frantar et al. 2023 ICLR; Lin et al. 2024 MLSys).

    Parameters
    ----------
    w : array (out_features, in_features)
        A weight matrix in torch layout, finite.
    bits : int in [2, 8], default 4
    group_size : int or None, default 128
        Input channels per group; must divide ``in_features``. None (or ``in_features``): one
        group per row, i.e. per output channel.
    symmetric : bool, default False
        Signed codes and no zero point.

    Returns
    -------
    GroupQuant
        ``.dequantize()`` gives the float32 weights, ``.nbytes()`` the storage.

    Raises
    ------
    ValueError
        For bits outside [2, 8], a group size that does not divide the rows, NaN or inf weights.

    See Also
    --------
    rtn : quantize and dequantize in one call.

    Notes
    -----
    Ranges and ``w / scale`` are computed in float64 from the float32 weights; scales are
    float32.

    Examples
    --------
    >>> w = np.array([[-1.0, 0.5, 2.0, 6.0], [0.0, 0.0, 0.5, 1.5]])
    >>> gq = quantize_groups(w, bits=2, group_size=2)    # 2 rows x 2 groups of 2 channels
    >>> gq.scale.tolist(), gq.zero.tolist()              # a group of zeros: scale 0
    ([[0.5, 2.0], [0.0, 0.5]], [[2, 0], [0, 0]])
    >>> gq.q.tolist()
    [[0, 3, 1, 3], [0, 0, 1, 3]]
    >>> gq.dequantize().tolist()
    [[-1.0, 0.5, 2.0, 6.0], [0.0, 0.0, 0.5, 1.5]]
    """
    w = _check_weight(w)
    bits = V.check_bits(bits, high=8)
    symmetric = V.check_bool(symmetric, "symmetric")
    out, n = w.shape
    group_size = _check_group_size(group_size, n)
    groups = w.reshape(out, n // group_size, group_size)           # (rows, groups, channels)
    scale, zero = _params(groups, bits, symmetric)
    q = _codes(groups, scale[..., None], zero[..., None], bits, symmetric)
    return GroupQuant(q.reshape(out, n), scale, zero, bits, group_size, (out, n), symmetric)


@backend.same_kind
def rtn(w, bits: int = 4, group_size: int | None = 128, symmetric: bool = False):
    """Round to nearest in groups, dequantized: ``quantize_groups(w, ...).dequantize()``.

    ``w_hat = (clamp(round(w / scale) + zero, 0, 2**bits - 1) - zero) * scale`` per group.

    Parameters
    ----------
    w : array or tensor (out_features, in_features)
    bits : int in [2, 8], default 4
    group_size : int or None, default 128
        Must divide ``in_features``; None: one group per row.
    symmetric : bool, default False

    Returns
    -------
    float32 array of w's shape

    Examples
    --------
    >>> rtn(np.array([[0.0, 0.9, 2.2, 3.0]]), bits=2, group_size=None).tolist()   # grid 0, 1, 2, 3
    [[0.0, 1.0, 2.0, 3.0]]
    """
    return quantize_groups(w, bits, group_size, symmetric).dequantize()
