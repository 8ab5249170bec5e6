"""Linear (uniform) quantization: a grid of equally spaced levels, and the two maps to and from it.

    q     = clamp(round(x / scale) + zero_point, qmin, qmax)      # float -> integer
    x_hat = (q - zero_point) * scale                              # integer -> float

``round`` rounds half to even. ``scale`` is the step between two levels and ``zero_point`` the
integer that represents the real number 0 exactly (Jacob et al. 2018 CVPR, eq. 1). How to choose
them from data is in :mod:`compresslab.quant.observers`.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import backend
from . import _kernels
from .grid import EPS32, F32, QParams, check_qparams, qrange

__all__ = ["QParams", "qrange", "scale_zero_point", "quantize", "dequantize", "fake_quantize",
           "SCHEMES", "ROUNDINGS", "DEFAULT_ROUNDING", "TORCH_ROUNDING", "torch_rounding"]

SCHEMES = ("affine", "symmetric")
ROUNDINGS = _kernels.ROUNDINGS
DEFAULT_ROUNDING = "divide"
TORCH_ROUNDING = _kernels.TORCH_ROUNDING
torch_rounding = _kernels.torch_rounding


def scale_zero_point(lo, hi, bits: int = 8, scheme: str = "affine", signed: bool | None = None,
                     axis: int | None = None, narrow_range: bool = False) -> QParams:
    """The quantizer for the range ``[lo, hi]``, first widened to contain 0:

    affine:    ``scale = (hi - lo) / (qmax - qmin)``, ``zero_point = clamp(qmin - round(lo / scale))``
    symmetric: ``scale = max(-lo, hi) / ((qmax - qmin) / 2)``, ``zero_point = 0`` (signed) or
    ``2**(bits-1)`` (unsigned); with ``narrow_range`` the divisor is ``qmax`` (TFLite).

    ``scale`` is at least ``2**-23`` and everything is float32, as in torch's observers
    (``_calculate_qparams``), so the result equals ``MinMaxObserver``'s to the last bit.

    Parameters
    ----------
    lo, hi : float or float array (one entry per channel)
    bits : int in [2, 16]
    scheme : "affine" or "symmetric"
    signed : bool or None
        Integer type; default unsigned for affine (quint8) and signed for symmetric (qint8).
    axis : int or None
        Channel axis the per-channel entries belong to (None: per tensor).
    narrow_range : bool
        Drop the most negative integer (TFLite's symmetric [-127, 127]).

    Returns
    -------
    QParams

    Examples
    --------
    >>> scale_zero_point(-1.0, 2.0, bits=8)              # affine uint8
    QParams(scale=0.0117647, zero_point=85, qmin=0, qmax=255)
    >>> scale_zero_point(-1.0, 2.0, bits=8, scheme="symmetric")
    QParams(scale=0.0156863, zero_point=0, qmin=-128, qmax=127)
    """
    scheme, signed = V.check_scheme(scheme, signed)              # signed=None: the scheme's default
    qmin, qmax = qrange(bits, signed, narrow_range)
    lo, hi = V.check_range(lo, hi)                               # float32, finite, lo <= hi
    lo, hi = np.minimum(lo, F32(0)), np.maximum(hi, F32(0))      # the range must contain 0 exactly
    if scheme == "symmetric":
        levels = qmax if narrow_range else (qmax - qmin) / 2    # 127 (TFLite) or 127.5 (torch)
        scale = np.maximum(np.maximum(-lo, hi) / F32(levels), F32(EPS32))
        zero_point = np.full(scale.shape, 0 if signed else 2 ** (bits - 1))
    else:
        scale = np.maximum((hi - lo) / F32(qmax - qmin), F32(EPS32))
        zero_point = np.clip(qmin - np.rint(lo / scale).astype(np.int64), qmin, qmax)
    return QParams(scale, zero_point, qmin, qmax, axis)


@backend.same_kind
def quantize(x, qp: QParams, rounding: str = DEFAULT_ROUNDING):
    """Float -> integers: ``q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)``.

    ``x / scale`` is computed in float64 from ``x`` as given (float32 or float64) and the float32
    ``scale`` of ``qp``: for float32 ``x`` that quotient is close enough to the exact one that no
    tie is made or lost, so an exact tie such as ``x / scale = 2.5`` goes to the even integer, 2.

    Parameters
    ----------
    x : array or tensor of finite numbers
    qp : QParams
        From :func:`compresslab.quant.qparams` or built by hand; per tensor or per channel.
    rounding : str
        ``"divide"`` (default): the formula above. ``"torch"``: bit-exact with
        ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel`` of the installed torch,
        which multiply by the float32 reciprocal of ``scale`` and add the zero point before
        rounding; it differs from ``"divide"`` only on values within a float32 rounding of a tie
        (see Notes). ``"fma"``,
        ``"mul_add"``, ``"mul_round"`` name torch's rules one by one (see Notes).

    Returns
    -------
    Integer array of ``qp.dtype`` (uint8, int8, uint16 or int16), the shape of ``x``.

    See Also
    --------
    dequantize, fake_quantize, compresslab.quant.qparams

    Notes
    -----
    torch's x86 kernels differ from the formula in two ways. They multiply by the float32
    reciprocal ``inv = float32(1 / scale)`` instead of dividing, which moves values within a
    float32 rounding of a tie to either side. And torch 2.13 adds the zero point *before*
    rounding: it rounds ``fma(x, inv, zero_point)`` per tensor (``"fma"``, one rounding) and
    ``float32(x * inv) + zero_point`` per channel (``"mul_add"``), so an exact tie ``k + 1/2``
    becomes ``k + zero_point + 1/2``, and with an odd zero point "half to even" picks the other
    neighbour. torch 2.11 (seen on an AVX-512 Xeon) rounds ``float32(x * inv)`` and adds the
    zero point after (``"mul_round"``), as torch's ``fake_quantize_*`` kernels do;
    :func:`torch_rounding` probes the installed torch. Those rules, and inputs of at least
    ``_kernels.MIN_SIZE`` values, run in ``compresslab.quant._kernels`` (cache-sized NumPy
    chunks, or one loop compiled by numba for large inputs when ``compresslab[fast]`` is
    installed); the tests prove they give this function's integers.

    Examples
    --------
    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-128, qmax=127)
    >>> quantize(np.array([0.25, 0.75, 1.0, -100.0]), qp)       # 0.5, 1.5: ties go to even
    array([   0,    2,    2, -128], dtype=int8)
    """
    rule = _kernels.rule_for(rounding, qp)                       # validates qp and rounding
    if rule != "divide" or V.num_elements(x, "x") >= _kernels.MIN_SIZE:
        return _kernels.quantize(x, qp, rule)                   # same integers, fewer passes
    x = V.as_float_array(x, "x")
    scale, zero_point = qp.shaped_like(x)
    q = np.rint(x.astype(np.float64) / scale) + zero_point
    return np.clip(q, qp.qmin, qp.qmax).astype(qp.dtype)


@backend.same_kind
def dequantize(q, qp: QParams):
    """Integers -> float32: ``x_hat = (q - zero_point) * scale`` (as ``torch.dequantize``).

    Parameters
    ----------
    q : integer array or tensor (from :func:`quantize`)
    qp : QParams

    Returns
    -------
    float32 array of q's shape

    Examples
    --------
    >>> dequantize(np.array([0, 2, -128], dtype=np.int8), QParams(0.5, 0, -128, 127))
    array([  0.,   1., -64.], dtype=float32)
    """
    qp = check_qparams(qp)
    q = np.asarray(backend.to_numpy(q))
    if q.dtype.kind not in "iu":
        raise TypeError(f"q must hold integers (from quantize), got dtype {q.dtype}")
    scale, zero_point = qp.shaped_like(q)
    return ((q.astype(F32) - np.asarray(zero_point, dtype=F32)) * scale).astype(F32)


@backend.same_kind
def fake_quantize(x, qp: QParams, rounding: str = DEFAULT_ROUNDING):
    """Quantize then dequantize: ``x_hat = (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale``.

    The result is float32 but takes only ``qmax - qmin + 1`` distinct values per channel: what a
    quantized network computes, simulated in floating point (QAT, PTQ evaluation).

    Parameters
    ----------
    x : array or tensor of finite numbers
    qp : QParams
    rounding : str
        As in :func:`quantize`.

    Returns
    -------
    float32 array of x's shape

    Notes
    -----
    torch's ``fake_quantize_per_tensor_affine`` / ``fake_quantize_per_channel_affine`` round by
    another rule than its ``quantize_per_*`` kernels: ``x * (1/s)`` rounded first, ``z`` added
    after; ``rounding="mul_round"`` gives their results bit for bit (tested).

    Examples
    --------
    >>> fake_quantize(np.array([0.1, 0.3, 0.8, 5.0]), QParams(0.25, 0, -4, 3))
    array([0.  , 0.25, 0.75, 0.75], dtype=float32)
    """
    return dequantize(quantize(x, qp, rounding), qp)
