"""GGUF: llama.cpp's block quantization formats (Q8_0, Q4_0, Q4_1) and its model file.

This is how large language models are shrunk to run on a laptop today. llama.cpp cuts every row
of a weight matrix into *blocks* of 32 consecutive values. Each block stores one float16 scale
``d`` (Q4_1 also a float16 minimum ``m``) and one small integer code per value::

    format  one block (32 weights) in memory           a weight is    bits per weight
    Q8_0    fp16 d | 32 x int8 q                         d * q          (2 + 32) * 8 / 32 = 8.5
    Q4_0    fp16 d | 16 bytes, two 4-bit q per byte      d * (q - 8)    (2 + 16) * 8 / 32 = 4.5
    Q4_1    fp16 d | fp16 m | 16 bytes of 4-bit q        d * q + m      (2 + 2 + 16) * 8 / 32 = 5.0

In Q4_0 and Q4_1, byte ``j`` (0 <= j < 16) of a block holds code ``j`` in its low nibble and code
``j + 16`` in its high nibble. All numbers are little-endian.

Why a scale per 32 values: one scale per row (per channel) lets a single outlier stretch the grid
of the whole row, so its thousands of small weights all land on a few levels. A scale per block
confines the damage to 31 neighbours, and costs only 16 bits per 32 weights (0.5 bit per weight;
Q4_1's minimum another 0.5). ``bits_per_weight`` gives these numbers.

The block functions :func:`q8_0`, :func:`q4_0` and :func:`q4_1` follow ggml's C reference
quantizers (``quantize_row_q*_ref`` in ``ggml-quants.c``) and give, byte for byte, what llama.cpp's
Python package ``gguf`` writes (``gguf.quants.quantize``; tested, ties and corner cases included).
What they share with ggml, and what a first implementation usually gets wrong: the scale ``d``
and its reciprocal ``id = 1 / d`` are float32, the codes are computed from them (``x * id``, not
``x / d``), and only then is ``d`` rounded to the float16 that is stored; an all-zero block has
``id = 0``. Two cases where ``gguf`` does not give a usable block are refused or pinned down
here: values whose scale (or Q4_1 minimum) overflows float16 raise a ``ValueError`` (``gguf``
stores an infinite scale that decodes to inf and NaN), and a block so small (``|d| < 2**-128``)
that ``1 / d`` overflows float32 gets codes 0 (C leaves that cast undefined; ``gguf`` gives 0 on
x86 too). Its float16 scale is 0 either way.

A GGUF file (version 3, all little-endian) is::

    "GGUF" | uint32 version = 3 | uint64 tensor count | uint64 metadata count
    metadata:    string key | uint32 value type | value            (repeated)
    tensor info: string name | uint32 n_dims | uint64 dims[n_dims] | uint32 ggml type
                 | uint64 offset                                   (repeated)
    padding to ``general.alignment`` (default 32), then the tensors' data, each one starting at
    a multiple of the alignment

where a string is a uint64 byte length and UTF-8 bytes, and ``dims`` are in ggml's order, the
reverse of NumPy's: a torch ``Linear`` weight of shape ``(out, in)`` has ``dims = [in, out]``, so
its blocks run along ``in``, the rows that a matrix-vector product reads. :func:`write_gguf` and
:func:`read_gguf` read and write such files; :func:`export_gpt` writes compresslab's GPT under
llama.cpp's ``gpt2`` names, and :func:`import_gpt` reads it back.

References
----------
* G. Gerganov et al. ggml: tensor library for machine learning (software). GitHub, 2023.
  https://github.com/ggml-org/ggml -- the block formats in ``src/ggml-quants.c``; the file format
  specification in ``docs/gguf.md``.
* G. Gerganov et al. llama.cpp: LLM inference in C/C++ (software). GitHub, 2023.
  https://github.com/ggml-org/llama.cpp -- the Python package ``gguf`` (``gguf-py/``), the
  ``gpt2`` tensor names and metadata keys, and ``llama-quantize`` (which tensors stay float).
"""
from __future__ import annotations

import math
import mmap
import numbers
import os
import struct
from typing import Any

import numpy as np

from .. import _validate as V
from .grid import F32

__all__ = ["GGUF_TYPES", "bits_per_weight", "q8_0", "q4_0", "q4_1", "gguf_quantize",
           "gguf_dequantize", "write_gguf", "read_gguf", "gpt2_tensor_names", "gpt_shapes",
           "export_gpt", "import_gpt"]

GGUF_TYPES: dict[str, tuple[int, int, int]] = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "Q4_0": (2, 32, 2 + 16),
    "Q4_1": (3, 32, 2 + 2 + 16),
    "Q8_0": (8, 32, 2 + 32),
}
"""Tensor type name -> (ggml type id, values per block, bytes per block), as in ggml's ``ggml.h``."""

BLOCK = 32                       # values per block of Q8_0, Q4_0, Q4_1 (ggml's QK8_0, QK4_0, QK4_1)
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32           # ggml's GGUF_DEFAULT_ALIGNMENT
MAX_DIMS = 4                     # ggml's GGML_MAX_DIMS
MAX_NAME_BYTES = 63              # ggml's GGML_MAX_NAME (64) less the C string's terminating zero
MAX_NESTING = 8                  # arrays of arrays read from a file, at most this deep
FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7}   # llama.cpp's llama_ftype
GGML_QUANT_VERSION = 2           # general.quantization_version, as llama.cpp's converter writes it

# GGUF metadata value types: name -> (type id, struct format); 8 is a string, 9 an array.
_SCALARS = {"uint8": (0, "<B"), "int8": (1, "<b"), "uint16": (2, "<H"), "int16": (3, "<h"),
            "uint32": (4, "<I"), "int32": (5, "<i"), "float32": (6, "<f"), "bool": (7, "<B"),
            "uint64": (10, "<Q"), "int64": (11, "<q"), "float64": (12, "<d")}
STRING, ARRAY = 8, 9
VALUE_TYPES = (*_SCALARS, "string")
"""The metadata value types :func:`write_gguf` accepts in a ``(value, type)`` pair."""
_TYPE_NAMES = {tid: name for name, (tid, _) in _SCALARS.items()} | {STRING: "string"}
_INT_RULE = (("uint32", 0, 2 ** 32), ("int32", -2 ** 31, 2 ** 31), ("uint64", 0, 2 ** 64),
             ("int64", -2 ** 63, 2 ** 63))       # an int gets the first type that holds it


def _check_qtype(qtype: Any) -> str:
    if not isinstance(qtype, str):
        raise TypeError(f"qtype must be one of {sorted(GGUF_TYPES)} (a string), got {qtype!r}")
    return V.check_choice(qtype, "qtype", GGUF_TYPES)


def bits_per_weight(qtype: str) -> float:
    """Storage cost of one weight in a GGUF type: ``bytes per block * 8 / values per block``.

    Parameters
    ----------
    qtype : {"Q8_0", "Q4_0", "Q4_1", "F16", "F32"}

    Returns
    -------
    float

    Examples
    --------
    >>> [bits_per_weight(t) for t in ("Q8_0", "Q4_0", "Q4_1", "F16")]
    [8.5, 4.5, 5.0, 16.0]
    """
    _, block, nbytes = GGUF_TYPES[_check_qtype(qtype)]
    return nbytes * 8 / block


# ------------------------------------------------------------------ the block formulas
def _blocks(x: Any, qtype: str) -> np.ndarray:
    """``x`` as finite float32 of shape ``(..., n_blocks, 32)``: rows cut into blocks."""
    x = V.as_float32(x, "x")
    if x.ndim == 0 or x.shape[-1] % BLOCK:
        raise ValueError(f"x's last axis must be a multiple of {BLOCK} ({qtype} quantizes blocks "
                         f"of {BLOCK} values along each row), got shape {x.shape}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // BLOCK, BLOCK)


def _fp16(v: np.ndarray, what: str, qtype: str) -> np.ndarray:
    """``v`` rounded to float16 (to nearest, ties to even, as ggml's GGML_FP32_TO_FP16), or an
    error where it overflows: a block whose scale is infinite would decode to inf and NaN."""
    with np.errstate(over="ignore"):
        h = v.astype(np.float16)
    if np.isinf(h).any():
        raise ValueError(f"x is too large for {qtype}: a {what} of {np.abs(v).max():.6g} is beyond "
                         f"float16's range (65504)")
    return h


def _reciprocal(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's ``id = d ? 1/d : 0`` in float32, and where ``1/d`` overflows (``|d| < 2**-128``).

    There the C code converts inf or NaN to an integer (undefined; x86 gives code 0, and so does
    ``gguf`` on x86). Such a block's float16 scale is 0 anyway: it decodes to zeros whatever its
    codes. We store codes 0, as llama.cpp does on x86."""
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.where(d == 0, F32(0), F32(1) / d)
    lost = ~np.isfinite(inv)
    return np.where(lost, F32(0), inv), lost


def q8_0(x):
    """Q8_0 blocks: ``d = max|x| / 127``, ``q = round(x / d)``; a weight is ``d * q``.

    Per block of 32 values along the last axis: ``d = amax / 127`` and
    ``q = roundf(x * (1 / d))``, rounding half away from zero (C's ``roundf``); an all-zero block
    gets ``d = 0``, ``q = 0``. ``d`` and ``1 / d`` are float32 and the codes are computed from
    them; only then is ``d`` rounded to the float16 that is stored (ggml, ``quantize_row_q8_0_ref``).

    Parameters
    ----------
    x : array or tensor of finite numbers, shape ``(..., n)`` with ``n`` a multiple of 32
        Converted to float32 first. Rows are quantized independently.

    Returns
    -------
    d : float16 array of shape ``(..., n // 32)``, one scale per block
    q : int8 array of shape ``(..., n // 32, 32)``, codes in [-127, 127]

    Raises
    ------
    ValueError
        NaN or infinite values, a last axis that is not a multiple of 32, or a block whose scale
        does not fit float16 (``max|x| >= 127 * 65520``; ``gguf`` would store an infinite scale).

    Examples
    --------
    >>> d, q = q8_0(np.linspace(-1, 1, 32))
    >>> d, q[0, :4]
    (array([0.00787], dtype=float16), array([-127, -119, -111, -102], dtype=int8))
    """
    b = _blocks(x, "Q8_0")                                       # (..., n_blocks, 32) float32
    d = np.abs(b).max(axis=-1, keepdims=True) / F32(127)         # amax -> code 127
    d16 = _fp16(d, "scale", "Q8_0")
    inv, lost = _reciprocal(d)
    v = (b * inv).astype(np.float64)                             # x / d, the float32 product
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)                   # half away from 0 (exact in f64)
    q = np.where(lost, 0, q)
    return d16[..., 0], q.astype(np.int8)


def q4_0(x):
    """Q4_0 blocks: ``d = max / -8``, ``q = min(15, trunc(x / d + 8.5))``; a weight is ``d * (q - 8)``.

    ``max`` is the value of largest magnitude *with its sign* (the first one if several tie):
    it gets code 0, exactly ``-8 * d``, and the opposite extreme ``-max`` would get 16, clipped to
    15. ``trunc(x / d + 8.5)`` rounds ``x / d`` half up (towards +inf). ``d`` and ``1 / d`` are
    float32 (``x / d`` is ``x * (1 / d)``), the codes are computed from them, and only then is
    ``d`` rounded to float16; an all-zero block gets ``d = -0.0`` and codes 8 (ggml,
    ``quantize_row_q4_0_ref``; the sign of a zero ``max`` follows ``gguf``, which takes it from
    the block's first value).

    Parameters
    ----------
    x : array or tensor of finite numbers, shape ``(..., n)`` with ``n`` a multiple of 32

    Returns
    -------
    d : float16 array of shape ``(..., n // 32)``
    q : uint8 array of shape ``(..., n // 32, 32)``, codes in [0, 15]

    Raises
    ------
    ValueError
        NaN or infinite values, a last axis that is not a multiple of 32, or a block whose scale
        does not fit float16 (``max|x| >= 8 * 65520``).

    Examples
    --------
    >>> d, q = q4_0(np.linspace(-1, 1, 32))
    >>> d, q[0, :8]
    (array([0.125], dtype=float16), array([0, 1, 1, 2, 2, 3, 3, 4], dtype=uint8))
    """
    b = _blocks(x, "Q4_0")
    i = np.abs(b).argmax(axis=-1)[..., None]                     # first value of largest |x|
    mx = np.take_along_axis(b, i, axis=-1)                       # ... with its sign
    d = mx / F32(-8)                                             # mx -> code 0
    d16 = _fp16(d, "scale", "Q4_0")
    inv, lost = _reciprocal(d)
    q = np.minimum(15, np.trunc(b * inv + F32(8.5)))             # float32, as ggml
    q = np.where(lost, 0, q)
    return d16[..., 0], q.astype(np.uint8)


def q4_1(x):
    """Q4_1 blocks: ``d = (max - min) / 15``, ``m = min``, ``q = min(15, trunc((x - m) / d + 0.5))``.

    A weight is ``d * q + m``: an asymmetric (affine) grid from the block's minimum to its
    maximum, which Q4_0's symmetric grid wastes half of on a block of one sign. ``(x - m) / d`` is
    rounded half up; ``d`` and ``1 / d`` are float32 and the codes are computed from them and the
    float32 ``min``; only then are ``d`` and ``m`` rounded to float16 (ggml,
    ``quantize_row_q4_1_ref``). A constant block gets ``d = 0``, ``m = min`` and codes 0.

    Parameters
    ----------
    x : array or tensor of finite numbers, shape ``(..., n)`` with ``n`` a multiple of 32

    Returns
    -------
    d : float16 array of shape ``(..., n // 32)``
    m : float16 array of shape ``(..., n // 32)``
    q : uint8 array of shape ``(..., n // 32, 32)``, codes in [0, 15]

    Raises
    ------
    ValueError
        NaN or infinite values, a last axis that is not a multiple of 32, or a block whose scale
        or minimum does not fit float16 (``|min| >= 65520`` or ``max - min >= 15 * 65520``).

    Examples
    --------
    >>> d, m, q = q4_1(np.linspace(0, 1, 32))
    >>> d, m
    (array([0.06665], dtype=float16), array([0.], dtype=float16))
    >>> q[0, :8]
    array([0, 0, 1, 1, 2, 2, 3, 3], dtype=uint8)
    """
    b = _blocks(x, "Q4_1")
    mn = b.min(axis=-1, keepdims=True)
    with np.errstate(over="ignore"):
        d = (b.max(axis=-1, keepdims=True) - mn) / F32(15)       # max -> code 15
    d16, m16 = _fp16(d, "scale", "Q4_1"), _fp16(mn, "minimum", "Q4_1")
    inv, lost = _reciprocal(d)
    q = np.minimum(15, np.trunc((b - mn) * inv + F32(0.5)))     # float32, as ggml
    q = np.where(lost, 0, q)
    return d16[..., 0], m16[..., 0], q.astype(np.uint8)


# ------------------------------------------------------------------ raw bytes in ggml's layout
def _le_bytes(a: np.ndarray) -> np.ndarray:
    """The little-endian bytes of each element of ``a``: shape ``(*a.shape, itemsize)``."""
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return a.view(np.uint8).reshape(*a.shape, a.dtype.itemsize)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """32 codes -> 16 bytes: byte j = code j (low nibble) | code j + 16 (high nibble)."""
    return q[..., :16] | (q[..., 16:] << 4)


def _unpack_nibbles(b: np.ndarray) -> np.ndarray:
    return np.concatenate([b & 0x0F, b >> 4], axis=-1)


def gguf_quantize(x, qtype: str) -> np.ndarray:
    """Quantize the rows of ``x`` into ggml's bytes, as ``gguf.quants.quantize(x, qtype)``.

    Each block of 32 values along the last axis becomes ``GGUF_TYPES[qtype][2]`` bytes::

        Q8_0: fp16 d | 32 int8 q             (34 bytes)
        Q4_0: fp16 d | 16 bytes of nibbles   (18 bytes; byte j = q[j] | q[j + 16] << 4)
        Q4_1: fp16 d | fp16 m | 16 bytes     (20 bytes)

    with ``d``, ``m``, ``q`` from :func:`q8_0`, :func:`q4_0`, :func:`q4_1`. ``"F32"`` and ``"F16"``
    return the values as float32 or float16 (the types of a GGUF tensor that is not quantized).

    Parameters
    ----------
    x : array or tensor of finite numbers, shape ``(..., n)``
        ``n`` a multiple of 32 for the block types.
    qtype : {"Q8_0", "Q4_0", "Q4_1", "F16", "F32"}

    Returns
    -------
    uint8 array of shape ``(..., n // 32 * bytes per block)`` for the block types; float32 or
    float16 array of x's shape for "F32" and "F16".

    Raises
    ------
    ValueError
        An unknown qtype, NaN or infinite values, a last axis that is not a multiple of 32, or
        values beyond float16's range (a scale, a minimum or an F16 value; ``gguf`` would store
        inf).

    See Also
    --------
    gguf_dequantize : the inverse, bytes -> float32.

    Examples
    --------
    >>> raw = gguf_quantize(np.linspace(-1, 1, 64).reshape(2, 32), "Q4_0")
    >>> raw.shape, raw.dtype, bits_per_weight("Q4_0") * 64 / 8
    ((2, 18), dtype('uint8'), 36.0)
    """
    qtype = _check_qtype(qtype)
    if qtype == "F32":
        return V.as_float32(x, "x")
    if qtype == "F16":
        return _fp16(V.as_float32(x, "x"), "value", "F16")
    if qtype == "Q8_0":
        d, q = q8_0(x)
        parts = [_le_bytes(d), q.view(np.uint8)]
    elif qtype == "Q4_0":
        d, q = q4_0(x)
        parts = [_le_bytes(d), _pack_nibbles(q)]
    else:
        d, m, q = q4_1(x)
        parts = [_le_bytes(d), _le_bytes(m), _pack_nibbles(q)]
    blocks = np.concatenate(parts, axis=-1)                      # (..., n_blocks, bytes per block)
    return blocks.reshape(*blocks.shape[:-2], -1)


def _float_raw(raw: np.ndarray, qtype: str) -> np.ndarray:
    """An F32 / F16 tensor given as its floats or as its little-endian bytes."""
    dtype = np.dtype("<f4" if qtype == "F32" else "<f2")
    if raw.dtype == np.uint8 and raw.ndim and raw.shape[-1] % dtype.itemsize == 0:
        return np.ascontiguousarray(raw).view(dtype)
    if raw.dtype != dtype.newbyteorder("="):
        raise TypeError(f"raw for {qtype} must be a {dtype.newbyteorder('=')} array or its bytes "
                        f"(uint8, last axis a multiple of {dtype.itemsize}), got dtype {raw.dtype}")
    return raw


def gguf_dequantize(raw, qtype: str) -> np.ndarray:
    """ggml's bytes -> float32 values, as ``gguf.quants.dequantize(raw, qtype)``.

    Per block: Q8_0 ``x = d * q``; Q4_0 ``x = d * (q - 8)``; Q4_1 ``x = d * q + m`` (``d`` and ``m``
    float16 widened to float32, the arithmetic in float32).

    Parameters
    ----------
    raw : uint8 array of shape ``(..., k * bytes per block)``
        As returned by :func:`gguf_quantize` or :func:`read_gguf`. For "F32" and "F16" a float32 /
        float16 array, or its bytes.
    qtype : {"Q8_0", "Q4_0", "Q4_1", "F16", "F32"}

    Returns
    -------
    float32 array of shape ``(..., k * 32)`` (the values' shape for "F32" and "F16")

    Raises
    ------
    TypeError
        raw is not uint8 (or the float type of "F32" / "F16").
    ValueError
        An unknown qtype, a last axis that is not whole blocks, or values that decode to NaN or
        infinity (a damaged scale).

    Examples
    --------
    >>> x = np.linspace(-1, 1, 32)
    >>> gguf_dequantize(gguf_quantize(x, "Q4_0"), "Q4_0")[:4]
    array([-1.   , -0.875, -0.875, -0.75 ], dtype=float32)
    """
    qtype = _check_qtype(qtype)
    raw = np.asarray(raw)
    if qtype in ("F32", "F16"):
        out = _float_raw(raw, qtype).astype(F32)
    else:
        nbytes = GGUF_TYPES[qtype][2]
        if raw.dtype != np.uint8:
            raise TypeError(f"raw must be uint8 bytes (from gguf_quantize or read_gguf), got dtype "
                            f"{raw.dtype}")
        if raw.ndim == 0 or raw.shape[-1] % nbytes:
            raise ValueError(f"raw's last axis must be a multiple of {nbytes} (the bytes of one "
                             f"{qtype} block), got shape {raw.shape}")
        b = raw.reshape(*raw.shape[:-1], -1, nbytes)             # (..., n_blocks, bytes per block)
        d = np.ascontiguousarray(b[..., 0:2]).view("<f2").astype(F32)
        if qtype == "Q8_0":
            out = d * b[..., 2:].view(np.int8).astype(F32)
        elif qtype == "Q4_0":
            out = d * (_unpack_nibbles(b[..., 2:]).astype(F32) - F32(8))
        else:
            m = np.ascontiguousarray(b[..., 2:4]).view("<f2").astype(F32)
            out = d * _unpack_nibbles(b[..., 4:]).astype(F32) + m
        out = out.reshape(*raw.shape[:-1], -1)
    if out.size and not np.isfinite(out).all():
        raise ValueError(f"raw decodes to NaN or infinite values: a damaged {qtype} scale or value")
    return out


# ------------------------------------------------------------------ GGUF files: writing
def _path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    return os.fspath(path)


def _pad(n: int, alignment: int) -> int:
    """``n`` rounded up to a multiple of ``alignment`` (ggml's GGML_PAD)."""
    return (n + alignment - 1) // alignment * alignment


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _kind(key: str, v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, numbers.Integral):
        return "int"
    if isinstance(v, numbers.Real):
        return "float"
    if isinstance(v, str):
        return "string"
    raise TypeError(f"metadata {key!r}: {v!r} is not an int, float, bool, str or a list of them "
                    "(lists of lists are not supported)")


def _value_type(key: str, value: Any) -> tuple[str, Any]:
    """The GGUF type of a metadata value: given as ``(value, type)``, or by the rule: bool ->
    bool, float -> float32, str -> string, int -> the first of uint32, int32, uint64, int64 that
    holds it (every element of a list)."""
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[1], str) or value[1] not in VALUE_TYPES:
            raise ValueError(f"metadata {key!r}: a tuple must be (value, type) with type one of "
                             f"{list(VALUE_TYPES)}, got {value!r}")
        return value[1], value[0]
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"metadata {key!r}: an empty list needs its element type: ([], 'uint32')")
    kinds = {_kind(key, v) for v in items}
    if len(kinds) > 1:
        raise TypeError(f"metadata {key!r}: a list's elements must share one type, got {sorted(kinds)}")
    kind = kinds.pop()
    if kind != "int":
        return {"bool": "bool", "float": "float32", "string": "string"}[kind], value
    for name, low, high in _INT_RULE:
        if all(low <= v < high for v in items):
            return name, value
    raise ValueError(f"metadata {key!r}: {value!r} does not fit a 64-bit integer")


def _scalar_bytes(key: str, vtype: str, v: Any) -> bytes:
    kind = _kind(key, v)
    allowed = {"string": ("string",), "bool": ("bool",), "float32": ("int", "float"),
               "float64": ("int", "float")}.get(vtype, ("int",))
    if kind not in allowed:
        raise TypeError(f"metadata {key!r}: {v!r} cannot be stored as {vtype}")
    if vtype == "string":
        return _string(v)
    try:
        return struct.pack(_SCALARS[vtype][1], float(v) if vtype.startswith("float") else int(v))
    except (struct.error, OverflowError):
        raise ValueError(f"metadata {key!r}: {v!r} does not fit {vtype}") from None


def _encode_kv(key: Any, value: Any) -> bytes:
    """One metadata pair: key, value type and value (an array: element type, count, elements)."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"metadata keys must be non-empty strings, got {key!r}")
    vtype, value = _value_type(key, value)
    tid = _SCALARS[vtype][0] if vtype != "string" else STRING
    if isinstance(value, (list, np.ndarray)):
        items = list(np.asarray(value).tolist() if isinstance(value, np.ndarray) else value)
        body = b"".join(_scalar_bytes(key, vtype, v) for v in items)
        return _string(key) + struct.pack("<IIQ", ARRAY, tid, len(items)) + body
    return _string(key) + struct.pack("<I", tid) + _scalar_bytes(key, vtype, value)


def _alignment(metadata: dict) -> int:
    if "general.alignment" not in metadata:
        return DEFAULT_ALIGNMENT
    vtype, a = _value_type("general.alignment", metadata["general.alignment"])
    if vtype != "uint32" or not isinstance(a, numbers.Integral) or a <= 0 or a & (a - 1):
        raise ValueError(f"metadata 'general.alignment' must be a power of two stored as uint32, "
                         f"got {metadata['general.alignment']!r}")
    return int(a)


def _tensor_info(name: Any, spec: Any) -> tuple[bytes, np.ndarray, str]:
    """A tensor's name and (values, qtype) -> (its info without the offset, its bytes, qtype)."""
    if not isinstance(name, str):
        raise TypeError(f"tensor names must be strings, got {name!r}")
    if not 0 < len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        raise ValueError(f"tensor names must be strings of 1 to {MAX_NAME_BYTES} UTF-8 bytes "
                         f"(llama.cpp's limit), got {name!r}")
    if not isinstance(spec, (tuple, list)) or len(spec) != 2:
        raise TypeError(f"tensors[{name!r}] must be a pair (array, qtype), got {type(spec).__name__}")
    values, qtype = spec
    values = V.as_float32(values, f"tensors[{name!r}]")
    if not 1 <= values.ndim <= MAX_DIMS:
        raise ValueError(f"tensors[{name!r}] must have 1 to {MAX_DIMS} dimensions, got shape {values.shape}")
    try:
        raw = gguf_quantize(values, qtype)
    except ValueError as exc:
        raise ValueError(f"tensors[{name!r}]: {exc}") from None
    dims = values.shape[::-1]                                    # ggml order: the row length first
    info = _string(name) + struct.pack(f"<I{len(dims)}QI", len(dims), *dims, GGUF_TYPES[qtype][0])
    return info, raw, qtype


def write_gguf(path, tensors: dict, metadata: dict | None = None) -> int:
    """Write a GGUF (version 3) file: metadata, then each tensor quantized to its type.

    Layout: header (``"GGUF"``, version 3, tensor count, metadata count), the metadata pairs,
    each tensor's info (name, dims in ggml order, type, offset), zero padding to the alignment,
    then each tensor's bytes padded to the alignment. Given the same pairs, types and tensors in
    the same order, the file is byte-identical to what ``gguf.GGUFWriter`` writes (tested).

    Metadata types: a value may be given as ``(value, type)`` with type one of
    :data:`VALUE_TYPES` (a list value: an array of that type). Otherwise ``bool`` -> bool,
    ``float`` -> float32, ``str`` -> string, ``int`` -> the first of uint32, int32, uint64, int64
    that holds it (uint32 for the counts and lengths llama.cpp reads), and a list -> an array of
    the type its elements share (for ints, the first type that holds them all).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    tensors : dict
        ``name -> (values, qtype)``: float values of 1 to 4 dimensions, in NumPy's order (a
        torch weight ``(out, in)`` as it is), and a type of :data:`GGUF_TYPES`. Names are 1 to 63
        UTF-8 bytes.
    metadata : dict, optional
        ``key -> value``, written in this order. ``"general.alignment"`` (a power of two, uint32)
        sets the alignment, default 32.

    Returns
    -------
    int : the bytes written (the file's size)

    Raises
    ------
    TypeError, ValueError
        A value, type or tensor that GGUF cannot hold, named with its key or tensor name.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "m.gguf")
    ...     n = write_gguf(path, {"w": (np.ones((2, 32)), "Q8_0")}, {"general.name": "ones"})
    ...     meta, tensors = read_gguf(path)
    >>> n, meta, tensors["w"][1:]
    (224, {'general.name': 'ones'}, ('Q8_0', (2, 32)))
    """
    path = _path(path)
    if not isinstance(tensors, dict) or not isinstance(metadata, (dict, type(None))):
        raise TypeError("tensors and metadata must be dicts")
    metadata = metadata or {}
    alignment = _alignment(metadata)
    header = bytearray(b"GGUF" + struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(metadata)))
    for key, value in metadata.items():
        header += _encode_kv(key, value)
    data, offset = [], 0
    for name, spec in tensors.items():
        info, raw, _ = _tensor_info(name, spec)
        header += info + struct.pack("<Q", offset)               # offset within the data section
        data.append(raw)
        offset += _pad(raw.nbytes, alignment)
    with open(path, "wb") as f:
        f.write(header + bytes(_pad(len(header), alignment) - len(header)))
        for raw in data:
            f.write(_le_bytes(raw).tobytes() + bytes(_pad(raw.nbytes, alignment) - raw.nbytes))
        return f.tell()


# ------------------------------------------------------------------ GGUF files: reading
class _Cursor:
    """Reads a file's bytes front to back, never past the end: every count and length is checked
    against the bytes that are left before anything is read or allocated."""

    def __init__(self, buf, where: str):
        self.buf, self.pos, self.where = buf, 0, where

    def left(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.left():
            raise V.FileDamage(f"{self.where} is truncated: {what} needs {n} bytes at offset "
                               f"{self.pos}, only {self.left()} are left")
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def count(self, what: str, min_bytes: int) -> int:
        """A uint64 count of items of at least ``min_bytes`` each, which must fit what is left."""
        n = self.unpack("<Q", what)
        if n * min_bytes > self.left():
            raise V.FileDamage(f"{self.where}: {what} is {n}, more than the {self.left()} bytes "
                               "left can hold (damaged or crafted)")
        return n

    def string(self, what: str) -> str:
        raw = self.take(self.count(f"the length of {what}", 1), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise V.FileDamage(f"{self.where}: {what} is not UTF-8 text") from None


def _min_bytes(tid: int) -> int:
    """The fewest bytes a value of GGUF type ``tid`` takes (0 for an unknown type)."""
    if tid in _TYPE_NAMES and tid != STRING:
        return struct.calcsize(_SCALARS[_TYPE_NAMES[tid]][1])
    return {STRING: 8, ARRAY: 12}.get(tid, 0)


def _read_value(r: _Cursor, tid: int, what: str, depth: int = 0):
    """One metadata value of type ``tid`` and its type name (``"array[uint32]"`` for arrays)."""
    if tid == STRING:
        return r.string(what), "string"
    if tid in _TYPE_NAMES:                                       # a number or a bool
        values, name = _read_numbers(r, tid, 1, what)
        return values[0], name
    if tid != ARRAY:
        raise V.FileDamage(f"{r.where}: {what} has unknown value type {tid}")
    item = r.unpack("<I", f"the element type of {what}")
    if depth >= MAX_NESTING or not _min_bytes(item):
        raise V.FileDamage(f"{r.where}: {what} is an array of unknown type {item} or nested "
                           f"more than {MAX_NESTING} deep")
    n = r.count(f"the length of {what}", _min_bytes(item))
    if item in _TYPE_NAMES and item != STRING:                   # numbers: read all at once
        values, name = _read_numbers(r, item, n, what)
        return values, f"array[{name}]"
    values = [_read_value(r, item, f"{what}[{i}]", depth + 1) for i in range(n)]
    sub = values[0][1] if values else _TYPE_NAMES.get(item, "array")
    return [v for v, _ in values], f"array[{sub}]"


def _read_numbers(r: _Cursor, tid: int, n: int, what: str) -> tuple[list, str]:
    """``n`` numbers of GGUF type ``tid`` as Python ints, floats or bools (a bool must be 0 or 1)."""
    name = _TYPE_NAMES[tid]
    values = np.frombuffer(r.take(n * _min_bytes(tid), what), _SCALARS[name][1]).tolist()
    if name == "bool":
        if any(v not in (0, 1) for v in values):
            raise V.FileDamage(f"{r.where}: {what} holds a bool that is neither 0 nor 1")
        values = [bool(v) for v in values]
    return values, name


def _read_metadata(r: _Cursor) -> tuple[int, dict, dict]:
    """The tensor count, then the metadata: ``key -> value`` and ``key -> type name``."""
    n_tensors = r.count("the tensor count", 24)        # a tensor info takes 24 bytes or more
    n_kv = r.count("the metadata count", 13)           # a pair takes 13 bytes or more
    meta, types = {}, {}
    for _ in range(n_kv):
        key = r.string("a metadata key")
        if key in meta:
            raise V.FileDamage(f"{r.where}: metadata key {key!r} appears twice")
        meta[key], types[key] = _read_value(r, r.unpack("<I", f"the type of {key!r}"), repr(key))
    return n_tensors, meta, types


def _read_tensor_info(r: _Cursor) -> tuple[str, tuple[int, ...], str, int]:
    name = r.string("a tensor name")
    n_dims = r.unpack("<I", f"the dimension count of {name!r}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise V.FileDamage(f"{r.where}: tensor {name!r} has {n_dims} dimensions (1 to {MAX_DIMS})")
    dims = struct.unpack(f"<{n_dims}Q", r.take(8 * n_dims, f"the dimensions of {name!r}"))
    tid = r.unpack("<I", f"the type of {name!r}")
    offset = r.unpack("<Q", f"the offset of {name!r}")
    qtype = next((t for t, (i, _, _) in GGUF_TYPES.items() if i == tid), None)
    if qtype is None:
        raise ValueError(f"{r.where}: tensor {name!r} has ggml type {tid}, which read_gguf does not "
                         f"read (it reads {sorted(GGUF_TYPES)})")
    if min(dims) < 1 or dims[0] % GGUF_TYPES[qtype][1]:
        raise V.FileDamage(f"{r.where}: tensor {name!r} has dims {list(dims)}; they must be >= 1, "
                           f"the first a multiple of {GGUF_TYPES[qtype][1]} for {qtype}")
    return name, tuple(dims[::-1]), qtype, offset


def _tensor_bytes(shape: tuple[int, ...], qtype: str) -> int:
    _, block, nbytes = GGUF_TYPES[qtype]
    return math.prod(shape) // block * nbytes


def _read_tensors(r: _Cursor, infos: list, alignment: int) -> dict:
    """Each tensor's data, after checking that it lies within the file, aligned, no overlap."""
    start, tensors, end = _pad(r.pos, alignment), {}, 0
    for name, shape, qtype, offset in sorted(infos, key=lambda t: t[3]):
        nbytes = _tensor_bytes(shape, qtype)
        if offset % alignment or offset < end or start + offset + nbytes > len(r.buf):
            raise V.FileDamage(f"{r.where}: tensor {name!r} ({nbytes} bytes at data offset {offset}) "
                               f"is misaligned, overlaps another or runs past the end of the file "
                               f"(truncated?)")
        end = offset + nbytes
        _, block, bpb = GGUF_TYPES[qtype]
        dtype = {"F32": "<f4", "F16": "<f2"}.get(qtype, np.uint8)
        raw = np.frombuffer(r.buf, dtype, nbytes // np.dtype(dtype).itemsize, start + offset).copy()
        if qtype in ("F32", "F16"):
            tensors[name] = (raw.astype(raw.dtype.newbyteorder("=")).reshape(shape), qtype, shape)
        else:
            tensors[name] = (raw.reshape(*shape[:-1], shape[-1] // block * bpb), qtype, shape)
    return {name: tensors[name] for name, *_ in infos}          # the file's order


def read_gguf(path) -> tuple[dict, dict]:
    """Read a GGUF file (version 3, or 2: the same layout) into metadata and raw tensors.

    Every count, length, dimension and offset is checked against the file's size before it is
    used, so a truncated, damaged or crafted file gives a clear ``ValueError``, never a huge
    allocation or a read past its end.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    metadata : dict
        ``key -> value``: int, float, bool, str, or a list of them (arrays).
    tensors : dict
        ``name -> (raw, qtype, shape)`` in the file's order: ``shape`` is NumPy's (ggml's dims
        reversed); ``raw`` is a float32 / float16 array of that shape for "F32" / "F16", and for a
        block type the uint8 bytes of shape ``(*shape[:-1], shape[-1] // 32 * bytes per block)``,
        which :func:`gguf_dequantize` turns into float32 values.

    Raises
    ------
    ValueError
        Not a GGUF file, an unsupported version or tensor type, or a truncated or damaged file
        (:class:`compresslab._validate.FileDamage`, a ValueError).
    FileNotFoundError
        When it does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "m.gguf")
    ...     _ = write_gguf(path, {"b": (np.arange(3.0), "F32")}, {"answer": 42})
    ...     read_gguf(path)
    ({'answer': 42}, {'b': (array([0., 1., 2.], dtype=float32), 'F32', (3,))})
    """
    path = _path(path)
    where = f"GGUF file {path!r}"
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 24:
            raise V.FileDamage(f"{where} is too short to be a GGUF file (truncated or empty)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            r = _Cursor(buf, where)
            magic, version = r.take(4, "the magic"), r.unpack("<I", "the version")
            if magic != b"GGUF":
                raise V.FileDamage(f"{where} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")
            if version not in (2, 3):
                swapped = " (a big-endian file?)" if version >> 16 else ""
                raise ValueError(f"{where} has GGUF version {version}{swapped}; read_gguf reads "
                                 "little-endian versions 2 and 3")
            n_tensors, meta, types = _read_metadata(r)
            infos = [_read_tensor_info(r) for _ in range(n_tensors)]
            if len({name for name, *_ in infos}) != len(infos):
                raise V.FileDamage(f"{where} names a tensor twice")
            alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
            if "general.alignment" in meta and (types["general.alignment"] != "uint32"
                                                or alignment <= 0 or alignment & (alignment - 1)):
                raise V.FileDamage(f"{where}: general.alignment must be a power of two stored as uint32")
            return meta, _read_tensors(r, infos, alignment)


# ------------------------------------------------------------------ compresslab's GPT as gpt2
_GPT2_LAYER = (("ln1", "attn_norm"), ("attn.qkv", "attn_qkv"), ("attn.proj", "attn_output"),
               ("ln2", "ffn_norm"), ("mlp.fc1", "ffn_up"), ("mlp.fc2", "ffn_down"))


def gpt2_tensor_names(n_layer: int) -> dict[str, str]:
    """compresslab's GPT parameter names -> llama.cpp's ``gpt2`` tensor names, in file order.

    ``tok_emb`` -> ``token_embd.weight``, ``pos_emb`` -> ``position_embd.weight``; in block ``i``,
    ``ln1`` -> ``attn_norm``, ``attn.qkv`` -> ``attn_qkv``, ``attn.proj`` -> ``attn_output``,
    ``ln2`` -> ``ffn_norm``, ``mlp.fc1`` -> ``ffn_up``, ``mlp.fc2`` -> ``ffn_down`` (``.weight`` and
    ``.bias``, under ``blk.{i}.``); ``ln_f`` -> ``output_norm``. No ``output.weight``: the output
    layer shares ``token_embd`` (llama.cpp's gpt2 falls back to it).

    Parameters
    ----------
    n_layer : int >= 1

    Returns
    -------
    dict

    Examples
    --------
    >>> names = gpt2_tensor_names(1)
    >>> names["blocks.0.attn.qkv.weight"], len(names)
    ('blk.0.attn_qkv.weight', 16)
    """
    n_layer = V.check_int(n_layer, "n_layer", 1, 256)
    names = {"tok_emb": "token_embd.weight", "pos_emb": "position_embd.weight"}
    for i in range(n_layer):
        for ours, theirs in _GPT2_LAYER:
            for p in ("weight", "bias"):
                names[f"blocks.{i}.{ours}.{p}"] = f"blk.{i}.{theirs}.{p}"
    names.update({"ln_f.weight": "output_norm.weight", "ln_f.bias": "output_norm.bias"})
    return names


def _check_gpt_config(config: Any) -> dict:
    """A GPT config (a dict, or an object with these attributes such as ``nn.GPTConfig``), checked."""
    need = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "layer_norm_eps")
    if not isinstance(config, dict):
        if not all(hasattr(config, k) for k in need):
            raise TypeError(f"config must be a dict or a GPTConfig with {list(need)}, got {config!r}")
        config = {k: getattr(config, k) for k in need}
    missing = [k for k in need if k not in config]
    if missing:
        raise ValueError(f"config lacks {missing}")
    cfg = {k: V.check_int(config[k], f"config['{k}']", 1) for k in need[:-1]}
    cfg["layer_norm_eps"] = V.check_float(config["layer_norm_eps"], "config['layer_norm_eps']", 0.0,
                                          low_open=True)
    if cfg["n_embd"] % cfg["n_head"]:
        raise ValueError(f"config: n_embd ({cfg['n_embd']}) must be a multiple of n_head ({cfg['n_head']})")
    return cfg


def gpt_shapes(config: dict, ffn: int | None = None) -> dict[str, tuple[int, ...]]:
    """The parameters :func:`export_gpt` expects: compresslab's names -> shapes (torch layout).

    Parameters
    ----------
    config : dict or compresslab.nn.GPTConfig
        ``vocab_size``, ``block_size``, ``n_layer``, ``n_head``, ``n_embd``, ``layer_norm_eps``.
    ffn : int, optional
        The MLP's hidden width (rows of ``mlp.fc1.weight``); default ``4 * n_embd``.

    Returns
    -------
    dict

    Examples
    --------
    >>> cfg = dict(vocab_size=40, block_size=8, n_layer=1, n_head=2, n_embd=32, layer_norm_eps=1e-5)
    >>> shapes = gpt_shapes(cfg)
    >>> shapes["tok_emb"], shapes["blocks.0.attn.qkv.weight"], shapes["blocks.0.mlp.fc2.weight"]
    ((40, 32), (96, 32), (32, 128))
    """
    cfg = _check_gpt_config(config)
    d = cfg["n_embd"]
    ff = 4 * d if ffn is None else V.check_int(ffn, "ffn", 1)
    shapes = {"tok_emb": (cfg["vocab_size"], d), "pos_emb": (cfg["block_size"], d)}
    for i in range(cfg["n_layer"]):
        for ours, (out, inp) in (("ln1", (d, 0)), ("attn.qkv", (3 * d, d)), ("attn.proj", (d, d)),
                                 ("ln2", (d, 0)), ("mlp.fc1", (ff, d)), ("mlp.fc2", (d, ff))):
            shapes[f"blocks.{i}.{ours}.weight"] = (out, inp) if inp else (out,)    # norms: (d,)
            shapes[f"blocks.{i}.{ours}.bias"] = (out,)
    return shapes | {"ln_f.weight": (d,), "ln_f.bias": (d,)}


def _check_gpt_state(state: Any, cfg: dict) -> dict[str, np.ndarray]:
    """``state`` as float32 arrays, every parameter present with its shape, no stranger."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
    fc1 = state.get("blocks.0.mlp.fc1.weight")
    ffn = int(np.shape(fc1)[0]) if fc1 is not None and np.ndim(fc1) == 2 and np.shape(fc1)[0] else None
    shapes = gpt_shapes(cfg, ffn)
    missing, extra = sorted(set(shapes) - set(state)), sorted(set(state) - set(shapes))
    if missing or extra:
        raise ValueError(f"state does not match config: missing {missing[:6]}, unexpected {extra[:6]}")
    out = {k: V.as_float32(state[k], f"state[{k!r}]") for k in shapes}
    for k, shape in shapes.items():
        if out[k].shape != shape:
            raise ValueError(f"state[{k!r}] has shape {out[k].shape}, expected {shape} from config")
    return out


def export_gpt(state: dict, config: dict, path, qtype: str = "Q4_0", name: str = "compresslab-gpt",
               metadata: dict | None = None) -> int:
    """Write compresslab's GPT as a llama.cpp ``gpt2`` GGUF file, its matrices quantized.

    Tensors are named by :func:`gpt2_tensor_names`. Every 2-D matrix gets ``qtype`` (when its rows
    are a multiple of the block size), the tied token embedding included, except the positional
    embedding, which stays F32 like every 1-D tensor (norms and biases). That is a simplification:
    llama.cpp's ``llama-quantize`` gives the output layer (or, when there is none, the tied token
    embedding) a higher-precision type (Q6_K, or Q8_0 when the rows are not a multiple of Q6_K's
    256, as rows of 128 are). No ``tokenizer.ggml.*`` keys are written (pass them in ``metadata``):
    the ``gguf`` package reads the file as is, llama.cpp's loader needs a tokenizer. Metadata:
    ``general.architecture = "gpt2"``, ``general.name``, ``gpt2.context_length``,
    ``gpt2.embedding_length``, ``gpt2.feed_forward_length``, ``gpt2.block_count``,
    ``gpt2.attention.head_count`` (uint32), ``gpt2.attention.layer_norm_epsilon`` (float32),
    ``general.file_type`` (llama.cpp's ``llama_ftype``: Q4_0 2, Q4_1 3, Q8_0 7, F16 1, F32 0) and
    ``general.quantization_version = 2``.

    Parameters
    ----------
    state : dict
        compresslab's parameter names -> arrays: ``tok_emb`` (vocab, d), ``pos_emb`` (block_size,
        d), ``blocks.{i}.ln1.weight``/``.bias`` (d,), ``blocks.{i}.attn.qkv.weight`` (3d, d) /
        ``.bias``, ``blocks.{i}.attn.proj.weight`` (d, d) / ``.bias``, ``blocks.{i}.ln2.*``,
        ``blocks.{i}.mlp.fc1.weight`` (ff, d) / ``.bias``, ``blocks.{i}.mlp.fc2.weight`` (d, ff) /
        ``.bias``, ``ln_f.weight``/``.bias``; weights in torch's (out, in) layout.
    config : dict or compresslab.nn.GPTConfig
        ``vocab_size``, ``block_size``, ``n_layer``, ``n_head``, ``n_embd``, ``layer_norm_eps``.
    path : str or os.PathLike
    qtype : {"Q4_0", "Q4_1", "Q8_0", "F16", "F32"}
    name : str
        ``general.name``.
    metadata : dict, optional
        More pairs for the file (e.g. llama.cpp's ``tokenizer.ggml.*`` keys), as in :func:`write_gguf`.

    Returns
    -------
    int : the file's size in bytes

    Raises
    ------
    ValueError, TypeError
        A config or state that do not match (names, shapes), non-finite weights, an unknown qtype.

    Examples
    --------
    >>> import os, tempfile
    >>> g = np.random.default_rng(0)
    >>> cfg = dict(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=32, layer_norm_eps=1e-5)
    >>> state = {k: g.normal(0, 0.02, s).astype(np.float32) for k, s in gpt_shapes(cfg).items()}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     n = export_gpt(state, cfg, os.path.join(tmp, "gpt.gguf"), "Q8_0")
    ...     n < sum(v.nbytes for v in state.values())
    True
    """
    cfg = _check_gpt_config(config)
    state = _check_gpt_state(state, cfg)
    qtype = _check_qtype(qtype)
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}")
    block = GGUF_TYPES[qtype][1]
    tensors = {}
    for ours, theirs in gpt2_tensor_names(cfg["n_layer"]).items():
        w = state[ours]
        quantize = w.ndim == 2 and theirs != "position_embd.weight" and w.shape[1] % block == 0
        tensors[theirs] = (w, qtype if quantize else "F32")
    meta = {"general.architecture": "gpt2", "general.name": name,
            "gpt2.block_count": cfg["n_layer"], "gpt2.context_length": cfg["block_size"],
            "gpt2.embedding_length": cfg["n_embd"],
            "gpt2.feed_forward_length": state["blocks.0.mlp.fc1.weight"].shape[0],
            "gpt2.attention.head_count": cfg["n_head"],
            "gpt2.attention.layer_norm_epsilon": (cfg["layer_norm_eps"], "float32"),
            "general.file_type": (FILE_TYPES[qtype], "uint32"),
            "general.quantization_version": (GGML_QUANT_VERSION, "uint32")}
    return write_gguf(path, tensors, meta | dict(metadata or {}))


def import_gpt(path) -> tuple[dict, dict]:
    """Read a ``gpt2`` GGUF file (from :func:`export_gpt`) back into compresslab's GPT.

    The quantized matrices come back dequantized (float32, ``gguf_dequantize``): the weights that
    llama.cpp computes with. ``vocab_size`` is the row count of ``token_embd.weight``; the other
    config values come from the ``gpt2.*`` metadata (``layer_norm_eps`` as stored, in float32).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    state : dict of float32 arrays, compresslab's names (see :func:`export_gpt`)
    config : dict with vocab_size, block_size, n_layer, n_head, n_embd, layer_norm_eps

    Raises
    ------
    ValueError
        Not a gpt2 file, a missing key or tensor, inconsistent shapes, or a damaged file.

    Examples
    --------
    >>> import os, tempfile
    >>> g = np.random.default_rng(0)
    >>> cfg = dict(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=32, layer_norm_eps=1e-5)
    >>> state = {k: g.normal(0, 0.02, s) for k, s in gpt_shapes(cfg).items()}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = export_gpt(state, cfg, os.path.join(tmp, "gpt.gguf"), "Q8_0")
    ...     back, cfg2 = import_gpt(os.path.join(tmp, "gpt.gguf"))
    >>> cfg2["n_embd"], float(np.abs(back["tok_emb"] - state["tok_emb"]).max()) < 1e-3
    (32, True)
    """
    meta, tensors = read_gguf(path)
    where = f"GGUF file {os.fspath(path)!r}"
    if meta.get("general.architecture") != "gpt2":
        raise ValueError(f"{where} is not a gpt2 model (general.architecture = "
                         f"{meta.get('general.architecture')!r})")
    keys = {"block_size": "gpt2.context_length", "n_layer": "gpt2.block_count", "n_embd":
            "gpt2.embedding_length", "n_head": "gpt2.attention.head_count",
            "layer_norm_eps": "gpt2.attention.layer_norm_epsilon"}
    missing = [k for k in keys.values() if k not in meta] + \
        (["token_embd.weight"] if "token_embd.weight" not in tensors else [])
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    config = {"vocab_size": tensors["token_embd.weight"][2][0]} | {k: meta[v] for k, v in keys.items()}
    cfg = _check_gpt_config(config)
    names = gpt2_tensor_names(cfg["n_layer"])
    lost = [t for t in names.values() if t not in tensors]
    if lost:
        raise ValueError(f"{where} lacks the tensors {lost[:6]}")
    state = {ours: gguf_dequantize(tensors[t][0], tensors[t][1]) for ours, t in names.items()}
    return _check_gpt_state(state, cfg), cfg
