"""Quantization: from the number line to integer-only inference.

The one formula behind linear (uniform) quantization::

    q     = clamp(round(x / scale) + zero_point, qmin, qmax)      # float -> integer
    x_hat = (q - zero_point) * scale                              # integer -> float

``scale`` is the step between two neighbouring levels and ``zero_point`` is the integer that
represents the real number 0 exactly (Jacob et al. 2018 CVPR, eq. 1). Everything else in this
module chooses ``scale`` and ``zero_point`` (observers), applies them (``quantize``,
``dequantize``, ``fake_quantize``), trains through them (``FakeQuant`` with the straight-through
estimator), or replaces linear levels by learned ones (k-means weight sharing, binary, ternary).

Agreement with PyTorch (tested in ``tests/test_quant.py``)
---------------------------------------------------------
``quantize`` returns exactly the integers of ``torch.quantize_per_tensor`` /
``torch.quantize_per_channel`` (``.int_repr()``), ties included, for any length (SIMD tails too).
These x86 kernels do not compute ``round(x / scale)``: they multiply by the float32 reciprocal
``inv = 1 / scale`` and round half to even a float32 value whose exact formula depends on the
torch build (:func:`torch_rounding` probes it):

* torch 2.13, AVX2 (the pinned version): per tensor ``fma(x, inv, zero_point)`` -- one rounding of
  ``x * inv + zero_point`` -- and per channel ``float32(x * inv) + zero_point`` (two roundings);
* torch 2.11 on an AVX-512 Intel Xeon: ``rint(float32(x * inv)) + zero_point`` for both.

A plain ``rint(x / scale) + zero_point`` disagrees with all of them on some exact ties such as
``x = 2.5 * scale``. ``qparams(..., observer="minmax")`` reproduces ``torch.ao.quantization.MinMaxObserver`` and
``PerChannelMinMaxObserver``: float32 arithmetic, the range widened to include 0,
``scale = max((max - min) / (qmax - qmin), eps)`` with ``eps = 2**-23`` (float32 machine
epsilon) and ``zero_point = clamp(qmin - round_half_even(min / scale), qmin, qmax)``.

Symmetric convention (torch's ``per_tensor_symmetric``): ``zero_point = 0`` for signed
integers (``2**(bits-1)`` for unsigned ones) and ``scale = max(|min|, |max|) / ((qmax - qmin) / 2)``,
e.g. ``amax / 127.5`` for 8 bits, so ``+-amax`` land near +-127.5: ``+amax`` is clipped to 127
and ``-amax`` rounds to -127 or -128 depending on float32 rounding of ``1 / scale``.
With ``narrow_range=True`` (TFLite's convention) the range is ``[-(2**(bits-1) - 1),
2**(bits-1) - 1]`` and ``scale = amax / qmax``, symmetric around 0.

References
----------
* B. Jacob, S. Kligys, B. Chen, M. Zhu, M. Tang, A. Howard, H. Adam, D. Kalenichenko.
  "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference." CVPR 2018.
* R. Krishnamoorthi. "Quantizing deep convolutional networks for efficient inference:
  A whitepaper." arXiv:1806.08342, 2018.
* S. Han, H. Mao, W. J. Dally. "Deep Compression: Compressing Deep Neural Networks with
  Pruning, Trained Quantization and Huffman Coding." ICLR 2016.
* M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi. "XNOR-Net: ImageNet Classification Using
  Binary Convolutional Neural Networks." ECCV 2016.
* F. Li, B. Zhang, B. Liu. "Ternary Weight Networks." arXiv:1605.04711, 2016.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from . import backend, nn

__all__ = [
    "QParams", "qrange", "qparams", "observe_range", "quantize", "dequantize", "fake_quantize",
    "sqnr", "mse", "max_abs_error", "OBSERVERS", "ROUNDINGS", "DEFAULT_ROUNDING", "torch_rounding",
    "kmeans", "kmeans_reconstruct", "kmeans_centroid_grad", "SharedWeights",
    "kmeans_quantize_model", "finetune_codebooks",
    "binarize", "ternarize", "FakeQuant", "qat", "quantize_model", "QuantizedModel",
    "quantize_multiplier", "requantize", "IntegerLinear", "model_size",
]

F32 = np.float32
EPS32 = float(np.finfo(np.float32).eps)  # torch's observer eps: 2**-23
OBSERVERS = ("minmax", "moving_average", "percentile", "mse")
SCHEMES = ("affine", "symmetric")
_CHUNK = 1 << 16  # elements per chunk of the per-tensor kernels (~0.6 MB of buffers: L2-sized)


# --------------------------------------------------------------------------------------------
# Quantization parameters
# --------------------------------------------------------------------------------------------
def qrange(bits: int = 8, signed: bool = True, narrow_range: bool = False) -> tuple[int, int]:
    """The integer range ``[qmin, qmax]`` of a ``bits``-bit integer.

    signed: ``[-2**(bits-1), 2**(bits-1) - 1]`` (int8: [-128, 127]); unsigned: ``[0, 2**bits - 1]``
    (uint8: [0, 255]). ``narrow_range`` drops the most negative value (signed: [-127, 127]).

    Examples
    --------
    >>> qrange(8), qrange(8, signed=False), qrange(4, narrow_range=True)
    ((-128, 127), (0, 255), (-7, 7))
    """
    bits = _check_bits(bits)
    if signed:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        qmin, qmax = 0, 2 ** bits - 1
    if narrow_range:
        qmin += 1
    return qmin, qmax


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an integer in [2, 16], got {bits!r}")
    if not 2 <= int(bits) <= 16:
        raise ValueError(f"bits must be in [2, 16], got {bits}")
    return int(bits)


@dataclass
class QParams:
    """Parameters of a linear quantizer: ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``.

    Parameters
    ----------
    scale : float or float32 array
        Step between levels, > 0 and finite. One value (per tensor) or one per channel.
    zero_point : int or integer array
        The integer that represents 0.0; must lie in ``[qmin, qmax]``.
    qmin, qmax : int
        Integer range (e.g. -128, 127 for int8).
    axis : int or None
        Channel axis for per-channel parameters (``None``: per tensor).
    """

    scale: Any
    zero_point: Any
    qmin: int
    qmax: int
    axis: int | None = None

    def __post_init__(self):
        self.qmin = V.check_int(self.qmin, "qmin", -(2 ** 16), 2 ** 16)
        self.qmax = V.check_int(self.qmax, "qmax", -(2 ** 16), 2 ** 16)
        if self.qmax <= self.qmin:
            raise ValueError(f"qmax must be greater than qmin, got qmin={self.qmin}, qmax={self.qmax}")
        if self.qmax - self.qmin > 2 ** 16 - 1:
            raise ValueError(f"[qmin, qmax] = [{self.qmin}, {self.qmax}] needs more than 16 bits")
        scale = np.asarray(backend.to_numpy(self.scale), dtype=np.float64)
        if scale.size == 0 or not np.isfinite(scale).all() or (scale <= 0).any():
            raise ValueError(f"scale must be positive and finite, got {_short(scale)}")
        scale = scale.astype(F32)
        with np.errstate(over="ignore", divide="ignore"):
            inv = F32(1) / scale                 # what the kernels multiply by, as torch's do
        if (scale <= 0).any() or not np.isfinite(scale).all() or not np.isfinite(inv).all():
            raise ValueError(f"scale must be a positive float32 whose reciprocal is a finite "
                             f"float32 (about 3e-39 or more), got {_short(scale)}")
        zp = np.asarray(backend.to_numpy(self.zero_point))
        if zp.dtype.kind == "f":
            if not np.isfinite(zp).all() or (zp != np.round(zp)).any():
                raise ValueError(f"zero_point must be an integer, got {_short(zp)}")
        elif zp.dtype.kind not in "iu":
            raise TypeError(f"zero_point must be an integer, got dtype {zp.dtype}")
        zp = zp.astype(np.int64)
        if (zp < self.qmin).any() or (zp > self.qmax).any():
            raise ValueError(f"zero_point must lie in [qmin, qmax] = [{self.qmin}, {self.qmax}], "
                             f"got {_short(zp)}")
        if self.axis is None:
            if scale.size != 1 or zp.size != 1:
                raise ValueError("per-tensor QParams (axis=None) need one scale and one zero_point; "
                                 f"got {scale.size} and {zp.size} -- pass axis for per-channel")
            self.scale, self.zero_point = F32(scale.reshape(())), int(zp.reshape(()))
        else:
            self.axis = V.check_int(self.axis, "axis")
            if scale.ndim != 1 or zp.shape != scale.shape:
                raise ValueError(f"per-channel scale and zero_point must be 1-D of equal length, got "
                                 f"shapes {scale.shape} and {zp.shape}")
            self.scale, self.zero_point = scale, zp

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def bits(self) -> int:
        """Bits needed to store one integer: ``ceil(log2(qmax - qmin + 1))``."""
        return int(math.ceil(math.log2(self.qmax - self.qmin + 1)))

    @property
    def dtype(self) -> np.dtype:
        """Smallest NumPy integer type holding ``[qmin, qmax]``."""
        for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= self.qmin and self.qmax <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int32)  # pragma: no cover

    def _broadcast(self, ndim: int):
        """scale and zero_point shaped to broadcast against an array of ``ndim`` dimensions."""
        if self.axis is None:
            return self.scale, self.zero_point
        ax = self.axis % ndim if -ndim <= self.axis < ndim else None
        if ax is None:
            raise ValueError(f"axis {self.axis} is out of range for an array with {ndim} dimensions")
        shape = [1] * ndim
        shape[ax] = -1
        return self.scale.reshape(shape), self.zero_point.reshape(shape)

    def __repr__(self):
        if self.axis is None:
            return (f"QParams(scale={float(self.scale):.6g}, zero_point={self.zero_point}, "
                    f"qmin={self.qmin}, qmax={self.qmax})")
        return (f"QParams(scale={_short(self.scale)}, zero_point={_short(self.zero_point)}, "
                f"qmin={self.qmin}, qmax={self.qmax}, axis={self.axis})")


def _short(a) -> str:
    a = np.asarray(a)
    if a.size <= 4:
        return np.array2string(a.ravel(), precision=6, separator=", ") if a.ndim else repr(a.item())
    return f"array of shape {a.shape} (min {a.min():.4g}, max {a.max():.4g})"


# --------------------------------------------------------------------------------------------
# Observers: choosing the range [lo, hi] to quantize
# --------------------------------------------------------------------------------------------
def _channels_first(x: np.ndarray, axis: int | None) -> np.ndarray:
    """``x`` as a 2-D array (channels, values); one row when ``axis`` is None."""
    if axis is None:
        return x.reshape(1, -1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be in [{-x.ndim}, {x.ndim - 1}] for an array of shape {x.shape}, "
                         f"got {axis}")
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def observe_range(x, observer: str = "minmax", axis: int | None = None, *, bits: int = 8,
                  scheme: str = "affine", signed: bool | None = None, percentile: float = 99.99,
                  averaging_constant: float = 0.01, narrow_range: bool = False):
    """The range ``(lo, hi)`` an observer picks for ``x`` (float32 arrays, one entry per channel).

    Observers
    ---------
    * ``"minmax"``: ``lo = min(x), hi = max(x)`` (torch ``MinMaxObserver``).
    * ``"moving_average"``: ``x`` is a sequence of calibration batches;
      ``lo <- lo + c * (min(batch) - lo)`` (same for hi), starting from the first batch
      (torch ``MovingAverageMinMaxObserver`` with ``averaging_constant = c``).
    * ``"percentile"``: ``lo, hi`` = the ``100 - p`` and ``p`` percentiles of x -- ignores outliers.
    * ``"mse"``: the symmetric clipping range ``[-a * amax, a * amax]`` or shrunk ``[a*lo, a*hi]``
      with ``a`` from a grid of 100 values in (0, 1] that minimises the mean squared error
      ``mean((x - fake_quantize(x))**2)`` (a grid search, as in Krishnamoorthi 2018 sec. 3).

    Returns
    -------
    lo, hi : np.ndarray (float32), shape () per tensor or (channels,) per channel.
    """
    V.check_choice(observer, "observer", set(OBSERVERS))
    if observer == "moving_average" and isinstance(x, (list, tuple)):
        batches = [_as_input(b, f"x[{i}]") for i, b in enumerate(x)]
        if not batches:
            raise ValueError("x is an empty list of calibration batches")
        c = V.check_float(averaging_constant, "averaging_constant", 0.0, 1.0, low_open=True)
        lo = hi = None
        for b in batches:
            rows = _channels_first(b, axis)
            bmin, bmax = rows.min(axis=1), rows.max(axis=1)
            if lo is None:
                lo, hi = bmin, bmax
            else:
                lo = (lo + F32(c) * (bmin - lo)).astype(F32)
                hi = (hi + F32(c) * (bmax - hi)).astype(F32)
        return _shape_out(lo, axis), _shape_out(hi, axis)
    if isinstance(x, (list, tuple)) and len(x) and not np.isscalar(x[0]):
        x = np.concatenate([np.asarray(backend.to_numpy(b), dtype=F32).reshape(-1, *np.shape(b)[1:])
                            for b in x]) if axis is not None else \
            np.concatenate([np.asarray(backend.to_numpy(b), dtype=F32).ravel() for b in x])
    x = _as_input(x, "x")
    rows = _channels_first(x, axis)
    if observer in ("minmax", "moving_average"):
        lo, hi = rows.min(axis=1), rows.max(axis=1)
    elif observer == "percentile":
        p = V.check_float(percentile, "percentile", 50.0, 100.0, low_open=True)
        lo, hi = np.percentile(rows, [100.0 - p, p], axis=1).astype(F32)
    else:  # mse grid search over shrink factors a: range [a * lo, a * hi]
        lo, hi = rows.min(axis=1), rows.max(axis=1)
        grid = np.linspace(1.0, 0.01, 100, dtype=F32)
        best_err = np.full(len(rows), np.inf)
        best = np.ones(len(rows), dtype=F32)
        for a in grid:
            qp = _qparams_from_range(lo * a, hi * a, bits, scheme, signed, 0, narrow_range)
            s, z = qp.scale[:, None], qp.zero_point[:, None].astype(F32)
            # fake_quantize(rows) = (clip(round(rows / s) + z, qmin, qmax) - z) * s
            q = np.rint(rows / s)
            q += z
            np.clip(q, qp.qmin, qp.qmax, out=q)
            q -= z
            q *= s
            q -= rows
            err = np.einsum("ij,ij->i", q, q) / rows.shape[1]
            better = err < best_err
            best_err[better], best[better] = err[better], a
        lo, hi = lo * best, hi * best
    return _shape_out(lo.astype(F32), axis), _shape_out(hi.astype(F32), axis)


def _shape_out(v, axis):
    v = np.asarray(v, dtype=F32)
    return v.reshape(()) if axis is None else v


def _as_input(x, name: str) -> np.ndarray:
    x = backend.to_numpy(x)
    arr = np.asarray(x)
    if arr.dtype.kind == "f" and arr.size and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN values; quantization needs finite numbers")
    arr = V.as_float_array(arr, name)
    return arr.astype(F32, copy=False)


def _qparams_from_range(lo, hi, bits, scheme, signed, axis, narrow_range=False) -> QParams:
    """torch's ``_calculate_qparams`` in float32 (see the module docstring)."""
    if signed is None:
        signed = scheme == "symmetric"
    qmin, qmax = qrange(bits, signed, narrow_range)
    lo = np.minimum(np.asarray(lo, dtype=F32), F32(0))   # the range must contain 0 exactly
    hi = np.maximum(np.asarray(hi, dtype=F32), F32(0))
    if scheme == "symmetric":
        amax = np.maximum(-lo, hi)
        if narrow_range:
            scale = amax / F32(qmax)
        else:
            scale = amax / F32((qmax - qmin) / 2)
        scale = np.maximum(scale, F32(EPS32)).astype(F32)
        zp = np.zeros(scale.shape, np.int64) if signed else np.full(scale.shape, 2 ** (bits - 1), np.int64)
    else:
        scale = np.maximum((hi - lo) / F32(qmax - qmin), F32(EPS32)).astype(F32)
        zp = qmin - np.rint((lo / scale).astype(F32)).astype(np.int64)
        zp = np.clip(zp, qmin, qmax)
    if axis is None:
        return QParams(scale.reshape(()), zp.reshape(()), qmin, qmax)
    return QParams(scale.ravel(), zp.ravel(), qmin, qmax, axis)


def qparams(x, bits: int = 8, scheme: str = "affine", axis: int | None = None,
            signed: bool | None = None, observer: str = "minmax", *, narrow_range: bool = False,
            percentile: float = 99.99, averaging_constant: float = 0.01) -> QParams:
    """Scale and zero point for quantizing ``x`` to ``bits`` bits.

    affine:    ``scale = (hi - lo) / (qmax - qmin)``, ``zero_point = clamp(qmin - round(lo / scale))``
    symmetric: ``scale = max(|lo|, |hi|) / ((qmax - qmin) / 2)``, ``zero_point = 0`` (signed)
    where ``[lo, hi]`` is the observer's range widened to contain 0, and scale >= 2**-23.
    Exactly torch's ``MinMaxObserver`` / ``PerChannelMinMaxObserver`` for ``observer="minmax"``.

    Parameters
    ----------
    x : array, tensor, or a list of calibration batches
    bits : int in [2, 16]
    scheme : "affine" or "symmetric"
    axis : channel axis for per-channel parameters (torch's ``ch_axis``), or None for per tensor
    signed : integer type; default unsigned for affine (quint8) and signed for symmetric (qint8)
    observer : "minmax", "moving_average", "percentile" or "mse" (see :func:`observe_range`)
    narrow_range : drop the most negative integer (TFLite's symmetric [-127, 127])

    Returns
    -------
    QParams

    Examples
    --------
    >>> qp = qparams(np.array([-1.0, 0.5, 2.0]), bits=8)
    >>> round(float(qp.scale), 6), qp.zero_point, (qp.qmin, qp.qmax)
    (0.011765, 85, (0, 255))
    """
    bits = _check_bits(bits)
    V.check_choice(scheme, "scheme", set(SCHEMES))
    if signed is not None and not isinstance(signed, (bool, np.bool_)):
        raise TypeError(f"signed must be True, False or None, got {signed!r}")
    lo, hi = observe_range(x, observer, axis, bits=bits, scheme=scheme, signed=signed,
                           percentile=percentile, averaging_constant=averaging_constant,
                           narrow_range=narrow_range)
    return _qparams_from_range(lo, hi, bits, scheme, signed, axis, narrow_range)


# --------------------------------------------------------------------------------------------
# quantize / dequantize
# --------------------------------------------------------------------------------------------
def _check_qparams(qp) -> QParams:
    if not isinstance(qp, QParams):
        raise TypeError(f"qp must be a QParams (from quant.qparams), got {type(qp).__name__}")
    return qp


ROUNDINGS = ("fma", "mul_add", "mul_round")
# What torch 2.13 does on x86 CPUs (AVX2), the version this project pins: per tensor one rounding
# of a fused multiply-add, per channel a float32 multiply then a float32 add.
DEFAULT_ROUNDING = {"tensor": "fma", "channel": "mul_add"}
_TORCH_ROUNDING: dict | None = None


def _round_rule(x32, inv, zp, rule):
    """The float32 value each rule rounds, then rounded half to even (small arrays, no chunks)."""
    if rule == "fma":          # rint(float32(x * inv + zp)), one rounding of the exact value
        return np.rint((x32.astype(np.float64) * inv + zp).astype(F32))
    y = x32 * inv.astype(F32)  # float32 multiply (rounded)
    if rule == "mul_add":      # rint(float32(float32(x * inv) + zp))
        return np.rint(y + np.asarray(zp).astype(F32))
    return np.rint(y) + np.asarray(zp).astype(F32)      # mul_round: rint(float32(x * inv)) + zp


def torch_rounding(refresh: bool = False) -> dict | None:
    """Which float32 formula the installed torch's x86 CPU kernels round, found by probing them
    on exact ties, e.g. ``{"tensor": "fma", "channel": "mul_add"}``; None when torch is not
    imported. Rules (``inv = float32(1 / scale)``, rint = round half to even):

    * ``"fma"``:       ``rint(fma(x, inv, zero_point))`` -- torch 2.13 per tensor (AVX2);
    * ``"mul_add"``:   ``rint(float32(x * inv) + zero_point)`` -- torch 2.13 per channel;
    * ``"mul_round"``: ``rint(float32(x * inv)) + zero_point`` -- seen with torch 2.11 (AVX-512).

    They differ only on inputs within a float32 rounding of a tie k + 0.5.
    """
    global _TORCH_ROUNDING
    import sys
    import warnings

    if "torch" not in sys.modules:
        return None
    if _TORCH_ROUNDING is not None and not refresh:
        return _TORCH_ROUNDING
    torch = sys.modules["torch"]
    g = np.random.default_rng(12345)
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in ("tensor", "channel"):
            ok = set(ROUNDINGS)
            for trial in range(12):
                n = 1 + 7 * trial
                scales = g.uniform(1e-3, 0.2, 3).astype(F32)
                zps = g.integers(0, 256, 3)
                x = ((g.integers(-120, 120, (3, n)) + 0.5) * scales[:, None]).astype(F32)
                if kind == "tensor":
                    t = torch.quantize_per_tensor(torch.from_numpy(x), float(scales[0]), int(zps[0]),
                                                  torch.quint8).int_repr().numpy()
                    inv, zp = np.float64(F32(1) / scales[0]), np.float64(zps[0])
                else:
                    t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales.astype(np.float64)),
                                                   torch.from_numpy(zps), 0, torch.quint8).int_repr().numpy()
                    inv = (F32(1) / scales).astype(np.float64)[:, None]
                    zp = zps.astype(np.float64)[:, None]
                for rule in list(ok):
                    if not np.array_equal(np.clip(_round_rule(x, inv, zp, rule), 0, 255), t):
                        ok.discard(rule)
            found[kind] = next((r for r in ROUNDINGS if r in ok), None)
    for kind, rule in found.items():    # warned outside the block that silences torch's warnings
        if rule is None:
            warnings.warn(f"torch {torch.__version__}'s quantize_per_{kind} rounds by none of "
                          f"{ROUNDINGS}; quant.quantize uses {DEFAULT_ROUNDING[kind]!r}, which may "
                          "differ from torch on exact ties", RuntimeWarning, stacklevel=3)
    _TORCH_ROUNDING = found
    return found


def _resolve_rounding(rounding, kind: str) -> str:
    if rounding is None:
        detected = torch_rounding()
        rule = (detected or {}).get(kind) or DEFAULT_ROUNDING[kind]
        return rule
    return V.check_choice(rounding, "rounding", set(ROUNDINGS))


@backend.same_kind
def quantize(x, qp: QParams, rounding: str | None = None):
    """Float -> integers: ``q = clamp(round_half_even(x / scale + zero_point), qmin, qmax)``.

    Bit-exact with ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel`` on x86 CPUs.
    Those kernels compute ``x / scale`` as ``x * inv`` with the float32 reciprocal
    ``inv = 1 / scale``, and which float32 value gets rounded half to even depends on the torch
    build (see :func:`torch_rounding`): with torch 2.13 on AVX2 it is ``fma(x, inv, zero_point)``
    per tensor (one rounding, emulated exactly in float64) and ``float32(x * inv) + zero_point``
    per channel. ``rounding=None`` uses the rule of the torch already imported in this process
    (probed once), else these defaults; pass ``"fma"``, ``"mul_add"`` or ``"mul_round"`` to choose.

    Per tensor, the work runs as NumPy ufuncs over cache-sized chunks; inputs of at least
    ``JIT_MIN_SIZE`` elements run instead as one loop compiled by numba, when it is installed
    (``compresslab[fast]``; the first such call in a process takes a second or two: numba
    compiles the loop once, then loads it from its cache). Both give the same integers.

    Parameters
    ----------
    x : array or tensor of finite numbers
    qp : QParams
    rounding : None or one of ``ROUNDINGS``

    Returns
    -------
    Integer array of ``qp.dtype`` (uint8, int8, uint16 or int16), same shape as x.

    Examples
    --------
    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-128, qmax=127)
    >>> quantize(np.array([0.25, 0.75, 1.0, -100.0], dtype=np.float32), qp)
    array([   0,    2,    2, -128], dtype=int8)
    """
    qp = _check_qparams(qp)
    rule = _resolve_rounding(rounding, "tensor" if qp.axis is None else "channel")
    if qp.axis is None:    # finiteness is checked inside the chunked kernel (saves two passes)
        arr = np.asarray(backend.to_numpy(x))
        if arr.dtype.kind not in "fiub" or arr.size == 0:
            arr = V.as_float_array(arr, "x")
        return _quantize_per_tensor(arr.astype(F32, copy=False), qp, rule)
    x = _as_input(x, "x")
    scale, zp = qp._broadcast(x.ndim)
    if x.shape[qp.axis] != qp.scale.size:
        raise ValueError(f"x has {x.shape[qp.axis]} channels along axis {qp.axis} but qp has "
                         f"{qp.scale.size} scales")
    inv = (F32(1.0) / scale).astype(np.float64)
    y = _round_rule(x, inv, zp.astype(np.float64), rule)   # e.g. rint(float32(x * inv) + zp)
    np.clip(y, qp.qmin, qp.qmax, out=y)
    return y.astype(qp.dtype)


def _sig_bits(v: float) -> int:
    """Number of significant bits in the mantissa of a float (1 for powers of two)."""
    m, _ = math.frexp(abs(float(v)))
    n = 0
    while m != int(m):
        m *= 2
        n += 1
    return max(n, 1)


def _quantize_per_tensor(x: np.ndarray, qp: QParams, rule: str = "fma", kernel: str | None = None):
    # kernel: "loop" (the loop below compiled by numba), "numpy" (chunked ufuncs), None: the loop
    # for inputs of at least JIT_MIN_SIZE elements when numba is installed, else NumPy.
    if kernel is None:
        big = JIT_MIN_SIZE is not None and x.size >= JIT_MIN_SIZE
        kernel = "loop" if big and _compiled_loop() is not None else "numpy"
    if kernel == "loop":
        return _quantize_per_tensor_loop(x, qp, rule)
    with np.errstate(over="ignore", invalid="ignore"):   # huge |x| saturates, as in torch
        if rule == "fma":
            return _quantize_per_tensor_fma_fast(x, qp)
        return _quantize_per_tensor_f32(x, qp, rule)


# Per-tensor inputs at least this large go through the compiled loop when numba is installed
# (``pip install compresslab[fast]``); smaller ones, or all without numba, use the NumPy kernels.
# None: never compile.
JIT_MIN_SIZE: int | None = 1 << 18
_LOOP = None          # the compiled loop, or False once numba was found missing


def _compiled_loop():
    """``_quantize_loop`` compiled by numba (cached on disk), or None without numba."""
    global _LOOP
    if JIT_MIN_SIZE is None:
        return None
    if _LOOP is None:
        try:
            import numba
        except Exception:                       # missing, or built for another NumPy
            _LOOP = False
        else:
            try:                                # fastmath stays off: no fused x * inv + zp
                _LOOP = numba.njit(cache=True, nogil=True)(_quantize_loop)
            except RuntimeError:                # no writable cache folder: compile each process
                _LOOP = numba.njit(cache=False, nogil=True)(_quantize_loop)
    return _LOOP or None


def _quantize_loop(x, inv64, inv32, zp, lo, hi, band, rule, out):
    """The per-tensor kernel as one loop over x, which is how torch's C++ kernel works; NumPy
    cannot fuse the steps (each ufunc is a pass over memory), so numba compiles this when it is
    installed. It is plain Python as well, and the tests also run it uncompiled.

    rule 0 ("fma"):       r = rint(float32(x * inv + zp)), the sum rounded once
    rule 1 ("mul_add"):   r = rint(float32(x * inv) + zp)  (float32 multiply, float32 add;
                          compiled without fastmath, so never fused into one fma)
    rule 2 ("mul_round"): r = rint(float32(x * inv)) + zp
    then out = min(max(r, lo), hi), with rint rounding half to even.

    x.size must be a multiple of _LOOP_BLOCK. For each block, a loop without branches (which
    the compiler vectorises) computes ``y = float32(x * inv) + zp`` and flags the elements within
    ``band`` of a tie k + 0.5 (where, for rule 0, rint(y) may differ from the fused multiply-add's
    result) or not finite. The flagged elements, few, are then redone exactly.
    Returns the number of NaN or infinite x.
    """
    zp32 = np.float32(zp)
    near = np.float32(0.5) - band if rule == 0 else np.float32(1)   # |y - rint(y)| >= near: redo
    nonfinite = 0
    redo = np.zeros(_LOOP_BLOCK, np.uint8)
    redo8 = redo.view(np.uint64)                  # the same flags, 8 at a time
    todo = np.zeros(_LOOP_BLOCK, np.int64)
    for blk in range(x.size // _LOOP_BLOCK):
        s = blk * _LOOP_BLOCK
        for j in range(_LOOP_BLOCK):              # the vectorised loop
            a = x[s + j] * inv32
            y = np.rint(a) + zp32 if rule == 2 else a + zp32
            r = np.rint(y)
            redo[j] = not abs(y - r) < near
            r = r if r > lo else lo
            r = r if r < hi else hi
            out[s + j] = r
        flagged = np.uint64(0)
        for w in range(_LOOP_BLOCK // 8):
            flagged |= redo8[w]
        if flagged == 0:
            continue
        m = 0                                     # rare: list the flagged elements,
        for w in range(_LOOP_BLOCK // 8):         # skipping 8 unflagged at a time,
            if redo8[w] != 0:
                for j in range(8 * w, 8 * w + 8):
                    if redo[j]:
                        todo[m] = j
                        m += 1
        for k in range(m):                        # and redo them one by one
            j = todo[k]
            xi = x[s + j]
            if not xi - xi == 0:                  # NaN or +-inf
                nonfinite += 1
                continue
            if rule != 0:                         # rules 1 and 2 flag only huge x (y = +-inf),
                continue                          # which is already clamped
            # float64 holds the product exactly, so v has a single rounding. float32(v) is then
            # the float32 of the exact sum unless v lies exactly between two float32s while the
            # exact sum does not (double rounding): then nudge v towards the exact sum.
            p = np.float64(xi) * inv64
            v = p + zp
            t = v - p                             # TwoSum: p + zp == v + err exactly
            err = (p - (v - t)) + (zp - t)
            f = np.float32(v)
            g = np.float64(f)
            if err != 0 and g != v:
                if v > g:
                    other = np.float64(np.nextafter(f, np.float32(np.inf)))
                else:
                    other = np.float64(np.nextafter(f, np.float32(-np.inf)))
                if v - g == other - v:
                    v = np.nextafter(v, np.inf) if err > 0 else np.nextafter(v, -np.inf)
            r = np.rint(np.float32(v))
            r = r if r > lo else lo
            r = r if r < hi else hi
            out[s + j] = r
    return nonfinite


_LOOP_BLOCK = 512     # elements per block of the compiled loop; few blocks hold a near tie


def _quantize_per_tensor_loop(x: np.ndarray, qp: QParams, rule: str, compiled: bool = True):
    flat = np.ascontiguousarray(x, dtype=F32).reshape(-1)
    out = np.empty(flat.size, dtype=qp.dtype)
    inv32 = F32(F32(1.0) / qp.scale)
    # Where the result is not clamped |x * inv| <= A; there y = float32(x * inv) + zp and the
    # float32 of the exact sum are within 1.5 float32 ulps of A of each other.
    A = abs(qp.zero_point) + max(abs(qp.qmin), abs(qp.qmax)) + 1
    band = F32(2) * np.spacing(F32(A))
    loop = _compiled_loop() if compiled else _quantize_loop
    args = (np.float64(inv32), inv32, np.float64(qp.zero_point), F32(qp.qmin), F32(qp.qmax), band,
            ROUNDINGS.index(rule))
    full = flat.size - flat.size % _LOOP_BLOCK
    with np.errstate(over="ignore", invalid="ignore"):   # (uncompiled) huge |x| saturates
        bad = loop(flat[:full], *args, out[:full]) if full else 0
        if full < flat.size:                              # the tail, padded to one block
            tail, tail_out = np.zeros(_LOOP_BLOCK, F32), np.empty(_LOOP_BLOCK, qp.dtype)
            tail[:flat.size - full] = flat[full:]
            bad += loop(tail, *args, tail_out)
            out[full:] = tail_out[:flat.size - full]
    if bad:
        _check_finite_input(flat)                         # raises
    return out.reshape(x.shape)


def _quantize_per_tensor_fma_fast(x: np.ndarray, qp: QParams) -> np.ndarray:
    # The fma rule, fast: float32 y = float32(x * inv) + zp (two roundings) is within about one
    # float32 ulp of the exact x * inv + zp, so rint(y) equals the fma rule's integer except
    # where y is within a few ulps of a tie k + 0.5. Those few elements are marked and recomputed
    # exactly at the end (``_quantize_fma_exact``).
    inv = F32(F32(1.0) / qp.scale)
    zp = F32(qp.zero_point)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, dtype=qp.dtype)
    near = np.empty(flat.size, dtype=bool)
    n = min(_CHUNK, flat.size)
    f = np.empty(n, F32)
    r = np.empty(n, F32)
    lo, hi = F32(qp.qmin), F32(qp.qmax)
    big = F32(4 * (max(abs(qp.qmin), abs(qp.qmax)) + 1))
    thr = F32(0.5) - F32(8) * np.spacing(big)      # generous: |y - exact| <= 2 ulps near the range
    for start in range(0, flat.size, _CHUNK):
        xs = flat[start:start + _CHUNK]
        m = xs.size
        ff, rr = f[:m], r[:m]
        nn_ = near[start:start + m]
        np.multiply(xs, inv, out=ff)
        ff += zp
        np.rint(ff, out=rr)
        ff -= rr
        np.abs(ff, out=ff)
        np.less(ff, thr, out=nn_)                  # safely away from a tie (False for NaN, inf)
        np.logical_not(nn_, out=nn_)               # -> near a tie, or not finite
        np.clip(rr, lo, hi, out=rr)
        np.copyto(out[start:start + m], rr, casting="unsafe")
    idx = np.flatnonzero(near)
    if idx.size:                                   # exact recomputation; NaN and inf raise there
        _check_finite_input(flat[idx])
        out[idx] = _quantize_per_tensor_fma_exact(flat[idx], qp)
    return out.reshape(x.shape)


def _check_finite_input(xs):
    if not np.isfinite(xs).all():
        raise ValueError("x contains NaN or infinite values; quantization needs finite numbers")


def _quantize_per_tensor_fma_exact(x: np.ndarray, qp: QParams) -> np.ndarray:
    # Readable form:  q = clip(rint(float32(x * inv + zp)), qmin, qmax) with x * inv + zp rounded
    # once (a fused multiply-add). The product of two float32 numbers is exact in float64, so
    # float64 y = x * inv + zp has one rounding; rounding y on to float32 is then correct except
    # when y lands exactly halfway between two float32 numbers while the exact sum does not
    # (double rounding, ``_fix_double_rounding``). That needs x * inv + zp to be inexact in float64
    # near a tie, impossible when inv has few significant bits (the check is then skipped).
    # The work runs in cache-sized chunks with preallocated buffers and in-place ufuncs.
    inv = np.float64(F32(1.0) / qp.scale)
    zp = np.float64(qp.zero_point)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, dtype=qp.dtype)
    n = min(_CHUNK, flat.size)
    y = np.empty(n, np.float64)
    f = np.empty(n, F32)
    bits = np.empty(n, np.uint64)
    mid = np.empty(n, bool)
    lo, hi = F32(qp.qmin), F32(qp.qmax)
    # Near a tie |x * inv| >= 1/4 and |x * inv + zp| <= M + 1, so the exact sum spans at most
    # log2(M + 1) + 2 + 24 + bits(inv) bits: when that fits float64's 53, y is exact there.
    span = math.ceil(math.log2(max(abs(qp.qmin), abs(qp.qmax)) + 2)) + 2 + 24 + _sig_bits(inv)
    check = span > 53
    for start in range(0, flat.size, _CHUNK):
        xs = flat[start:start + _CHUNK]
        m = xs.size
        yy, ff = y[:m], f[:m]
        np.copyto(yy, xs)                          # float32 -> float64 (exact)
        yy *= inv                                  # exact product
        yy += zp                                   # one rounding (float64)
        if not math.isfinite(np.add.reduce(yy)):
            raise ValueError("x contains NaN or infinite values; quantization needs finite numbers")
        if check:
            np.bitwise_and(yy.view(np.uint64), np.uint64(0x1FFFFFFF), out=bits[:m])
            np.equal(bits[:m], np.uint64(0x10000000), out=mid[:m])   # exactly between 2 float32s?
            if mid[:m].any():
                _fix_double_rounding(xs, inv, zp, yy, mid[:m])
        np.copyto(ff, yy, casting="same_kind")     # round to float32
        np.rint(ff, out=ff)                        # round half to even
        np.clip(ff, lo, hi, out=ff)
        np.copyto(out[start:start + m], ff, casting="unsafe")
    return out.reshape(x.shape)


def _quantize_per_tensor_f32(x: np.ndarray, qp: QParams, rule: str) -> np.ndarray:
    # mul_add:   q = clip(rint(float32(float32(x * inv) + zp)), qmin, qmax)
    # mul_round: q = clip(rint(float32(x * inv)) + zp, qmin, qmax)
    inv = F32(F32(1.0) / qp.scale)
    zp = F32(qp.zero_point)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, dtype=qp.dtype)
    f = np.empty(min(_CHUNK, flat.size), F32)
    lo, hi = F32(qp.qmin), F32(qp.qmax)
    for start in range(0, flat.size, _CHUNK):
        xs = flat[start:start + _CHUNK]
        ff = f[:xs.size]
        np.multiply(xs, inv, out=ff)
        if not math.isfinite(np.add.reduce(ff)):
            _check_finite_input(xs)
        if rule == "mul_add":
            ff += zp
            np.rint(ff, out=ff)
        else:
            np.rint(ff, out=ff)
            ff += zp
        np.clip(ff, lo, hi, out=ff)
        np.copyto(out[start:start + xs.size], ff, casting="unsafe")
    return out.reshape(x.shape)


def _fix_double_rounding(xs, inv, zp, y, mid):
    """Where y is a float32 midpoint, nudge it one float64 ulp towards the exact x * inv + zp."""
    idx = np.flatnonzero(mid)
    s = y[idx]
    p = xs[idx].astype(np.float64) * inv           # exact
    bv = s - zp                                     # TwoSum(zp, p): err = (zp + p) - s exactly
    err = (zp - (s - bv)) + (p - bv)
    y[idx] = np.where(err > 0, np.nextafter(s, np.inf), np.where(err < 0, np.nextafter(s, -np.inf), s))


@backend.same_kind
def dequantize(q, qp: QParams):
    """Integers -> float32: ``x_hat = (q - zero_point) * scale`` (as ``torch.dequantize``).

    Examples
    --------
    >>> dequantize(np.array([0, 2, -128], dtype=np.int8), QParams(0.5, 0, -128, 127))
    array([  0.,   1., -64.], dtype=float32)
    """
    qp = _check_qparams(qp)
    q = np.asarray(backend.to_numpy(q))
    if q.dtype.kind not in "iu":
        raise TypeError(f"q must hold integers (from quantize), got dtype {q.dtype}")
    scale, zp = qp._broadcast(q.ndim)
    return ((q.astype(F32) - np.asarray(zp, dtype=F32)) * scale).astype(F32)


@backend.same_kind
def fake_quantize(x, qp: QParams):
    """Quantize then dequantize: ``x_hat = (clamp(round(x/scale) + zp, qmin, qmax) - zp) * scale``.

    The result is float32 but takes only ``qmax - qmin + 1`` distinct values per channel: what a
    quantized network computes, simulated in floating point (QAT, PTQ evaluation).
    """
    return dequantize(quantize(x, qp), qp)


# --------------------------------------------------------------------------------------------
# Error metrics
# --------------------------------------------------------------------------------------------
def _pair(x, xq):
    a = V.as_float_array(x, "x").astype(np.float64)
    b = V.as_float_array(xq, "xq").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"x and xq must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def sqnr(x, xq) -> float:
    """Signal-to-quantization-noise ratio in dB: ``10 log10(sum(x**2) / sum((x - xq)**2))``.

    About 6 dB per bit for a uniform quantizer of a well-scaled signal; ``inf`` when exact.
    """
    a, b = _pair(x, xq)
    noise = float(((a - b) ** 2).sum())
    signal = float((a ** 2).sum())
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def mse(x, xq) -> float:
    """Mean squared error ``mean((x - xq)**2)``."""
    a, b = _pair(x, xq)
    return float(((a - b) ** 2).mean())


def max_abs_error(x, xq) -> float:
    """``max |x - xq|`` (at most scale / 2 inside the range for round-to-nearest)."""
    a, b = _pair(x, xq)
    return float(np.abs(a - b).max())


# --------------------------------------------------------------------------------------------
# k-means weight sharing (Deep Compression)
# --------------------------------------------------------------------------------------------
def _mask_bool(mask, shape, name="mask") -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(backend.to_numpy(mask))
    if m.shape != tuple(shape):
        raise ValueError(f"{name} must have the weight's shape {tuple(shape)}, got {m.shape}")
    return m != 0


@backend.same_kind
def kmeans(w, bits: int, seed: Any = 0, mask=None, iters: int = 30, init: str = "linear"):
    """Weight sharing by k-means: ``2**bits`` shared values (a codebook) and an index per weight.

    Minimises ``sum_i (w_i - c[idx_i])**2`` with Lloyd's algorithm, starting from centroids
    spread *linearly* between ``min(w)`` and ``max(w)`` (Han, Mao & Dally 2016 ICLR found linear
    initialisation best: it keeps the rare large weights, which matter most).

    Parameters
    ----------
    w : array of weights (any shape)
    bits : int in [1, 16]; the codebook has ``2**bits`` entries
    seed : used only by ``init="random"`` (centroids sampled from the weights)
    mask : optional array of w's shape; only weights where ``mask != 0`` are clustered
        (pruned weights stay 0 and get index -1)
    iters : Lloyd iterations (stops early when assignments stop changing)
    init : "linear" (default), "density" (quantiles of w) or "random"

    Returns
    -------
    codebook : float32 array of ``2**bits`` centroids (sorted for linear/density init)
    indices : int32 array of w's shape; ``codebook[indices]`` approximates w; -1 where masked

    Examples
    --------
    >>> cb, idx = kmeans(np.array([0.0, 0.1, 0.9, 1.0]), bits=1)
    >>> [round(float(c), 2) for c in cb], idx.tolist()
    ([0.05, 0.95], [0, 0, 1, 1])
    """
    w = _as_input(w, "w")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer in [1, 16], got {bits!r}")
    V.check_int(iters, "iters", 1)
    V.check_choice(init, "init", {"linear", "density", "random"})
    m = _mask_bool(mask, w.shape)
    vals = w[m] if m is not None else w.ravel()
    if vals.size == 0:
        raise ValueError("mask keeps no weights: nothing to cluster")
    k = 2 ** int(bits)
    if init == "linear":
        c = np.linspace(vals.min(), vals.max(), k).astype(np.float64)
    elif init == "density":
        c = np.quantile(vals, np.linspace(0, 1, k)).astype(np.float64)
    else:
        g = V.rng(seed)
        c = g.choice(vals, size=k, replace=vals.size < k).astype(np.float64)
    v64 = vals.astype(np.float64)
    assign = None
    for _ in range(iters):
        new = _nearest(v64, c)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        sums = np.bincount(assign, weights=v64, minlength=k)
        counts = np.bincount(assign, minlength=k)
        nonempty = counts > 0
        c[nonempty] = sums[nonempty] / counts[nonempty]   # centroid = mean of its members
    assign = _nearest(v64, c)
    idx = np.full(w.shape, -1, dtype=np.int32)
    if m is not None:
        idx[m] = assign
    else:
        idx = assign.reshape(w.shape).astype(np.int32)
    return c.astype(F32), idx


def _nearest(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for every value (ties to the lower index)."""
    order = np.argsort(c, kind="stable")
    cs = c[order]
    mids = (cs[:-1] + cs[1:]) / 2
    pos = np.searchsorted(mids, v, side="left")
    return order[pos].astype(np.int32)


@backend.same_kind
def kmeans_reconstruct(codebook, indices):
    """Shared weights ``w_hat = codebook[indices]`` (0 where the index is -1, i.e. pruned)."""
    cb = V.as_float_array(codebook, "codebook", ndim=1)
    idx = np.asarray(backend.to_numpy(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.max() >= cb.size or idx.min() < -1):
        raise ValueError(f"indices must lie in [-1, {cb.size - 1}], got [{idx.min()}, {idx.max()}]")
    return np.where(idx >= 0, cb.astype(F32)[np.maximum(idx, 0)], F32(0)).astype(F32)


@backend.same_kind
def kmeans_centroid_grad(grad, indices, n_clusters: int):
    """Gradient of the loss w.r.t. each centroid: the sum of the gradients of the weights that
    share it, ``dL/dc_k = sum_{i: idx_i = k} dL/dw_i`` (Han, Mao & Dally 2016, eq. 3)."""
    g = V.as_float_array(grad, "grad")
    idx = np.asarray(backend.to_numpy(indices))
    if idx.shape != g.shape:
        raise ValueError(f"indices shape {idx.shape} must equal grad shape {g.shape}")
    V.check_int(n_clusters, "n_clusters", 1)
    keep = idx >= 0
    return np.bincount(idx[keep].ravel(), weights=g[keep].ravel().astype(np.float64),
                       minlength=n_clusters).astype(F32)


class SharedWeights:
    """A ``layer.weight_transform`` for codebook fine-tuning (Deep Compression, sec. 3.1).

    forward: the layer computes with ``codebook[indices]``. backward: the centroids take an SGD
    step ``c_k -= lr * sum_{i in cluster k} dL/dw_i`` and the raw weight receives a zero gradient
    (it is no longer used).
    """

    def __init__(self, codebook, indices, lr: float = 1e-3):
        self.codebook = np.asarray(codebook, dtype=F32).copy()
        self.indices = np.asarray(indices, dtype=np.int32)
        self.lr = V.check_float(lr, "lr", 0.0)

    def forward(self, w):
        return kmeans_reconstruct(self.codebook, self.indices)

    def backward(self, w, grad):
        self.codebook -= F32(self.lr) * kmeans_centroid_grad(grad, self.indices, self.codebook.size)
        return np.zeros_like(grad)


def _weighted_layers(model) -> list:
    layers = [l for l in getattr(model, "layers", []) if isinstance(l, (nn.Linear, nn.Conv2d))]
    if not layers:
        raise TypeError("model must be a compresslab.nn.Sequential with Linear or Conv2d layers")
    return layers


def kmeans_quantize_model(model, bits: int, *, seed: Any = 0, use_masks: bool = True,
                          iters: int = 30):
    """A copy of ``model`` whose weights are each replaced by a ``2**bits``-entry codebook.

    If a layer has ``masks["weight"]`` (pruning), only the kept weights are clustered and the
    pruned ones stay 0. Returns ``(model_copy, codebooks)``, codebooks a list of
    ``(codebook, indices)`` per weighted layer. Biases stay float32.
    """
    out = model.copy()
    books = []
    for layer in _weighted_layers(out):
        mask = layer.masks.get("weight") if use_masks else None
        cb, idx = kmeans(layer.weight, bits, seed=seed, mask=mask, iters=iters)
        layer.weight = kmeans_reconstruct(cb, idx)
        books.append((cb, idx))
    return out, books


def finetune_codebooks(model, codebooks, X, y, *, epochs: int = 3, lr: float = 1e-4,
                       batch_size: int = 32, seed: Any = 0, progress: bool = True):
    """Fine-tune the centroids of a k-means-quantized model with the summed-gradient rule.

    Returns ``(model_copy, new_codebooks)``; only the codebooks change (indices are fixed).
    Uses plain SGD on the centroids through :class:`SharedWeights`.
    """
    out = model.copy()
    layers = _weighted_layers(out)
    if len(codebooks) != len(layers):
        raise ValueError(f"codebooks has {len(codebooks)} entries for {len(layers)} weighted layers")
    for layer, (cb, idx) in zip(layers, codebooks):
        layer.weight_transform = SharedWeights(cb, idx, lr=lr)
    # the optimizer only touches the biases (weights receive a zero gradient)
    nn.fit(out, X, y, epochs=epochs, batch_size=batch_size, optimizer=nn.SGD(out, lr=lr, momentum=0.0),
           seed=seed, progress=progress, desc="codebook fine-tuning")
    books = []
    for layer in layers:
        t = layer.weight_transform
        layer.weight = t.forward(layer.weight)
        layer.weight_transform = None
        books.append((t.codebook.copy(), t.indices))
    return out, books


# --------------------------------------------------------------------------------------------
# Binary and ternary weights
# --------------------------------------------------------------------------------------------
@backend.same_kind
def binarize(w, axis: int | None = 0):
    """XNOR-Net binary weights (Rastegari et al. 2016 ECCV): ``W ~ alpha * sign(W)``,
    ``alpha = mean(|W|)`` per output channel (``axis=0``) or per tensor (``axis=None``).

    ``sign(0)`` is taken as +1. Returns ``(alpha, signs, w_hat)`` with signs in {-1, +1} (int8)
    and ``w_hat = alpha * signs`` (float32). ``alpha = mean|W|`` minimises ``||W - alpha B||^2``.
    """
    w = _as_input(w, "w")
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
    ``alpha = mean(|W| over |W| > delta)``. Returns ``(alpha, t, w_hat)``."""
    w = _as_input(w, "w")
    threshold = V.check_float(threshold, "threshold", 0.0)
    a = np.abs(w)
    delta = threshold * a.mean(dtype=np.float64)
    keep = a > delta
    t = (np.sign(w) * keep).astype(np.int8)
    alpha = F32(a[keep].mean(dtype=np.float64)) if keep.any() else F32(0)
    return alpha, t, (alpha * t).astype(F32)


# --------------------------------------------------------------------------------------------
# Quantization-aware training: fake quantization with a straight-through estimator
# --------------------------------------------------------------------------------------------
class FakeQuant:
    """A ``layer.weight_transform`` that fake-quantizes the weight (QAT).

    forward:  ``w_hat = fake_quantize(w, qparams(w, ...))`` (observer recomputed each step)
    backward: clipped straight-through estimator, as torch's ``FakeQuantize``: the gradient
    passes unchanged where ``qmin <= round(w / scale) + zero_point <= qmax`` and is 0 where the
    weight was clipped.
    """

    def __init__(self, bits: int = 8, scheme: str = "symmetric", per_channel: bool = True,
                 observer: str = "minmax", narrow_range: bool = False):
        self.bits = _check_bits(bits)
        self.scheme = V.check_choice(scheme, "scheme", set(SCHEMES))
        self.axis = 0 if per_channel else None
        self.observer = V.check_choice(observer, "observer", set(OBSERVERS) - {"moving_average"})
        self.narrow_range = bool(narrow_range)
        self.qp: QParams | None = None

    def qparams_for(self, w) -> QParams:
        return qparams(w, self.bits, self.scheme, axis=self.axis, observer=self.observer,
                       narrow_range=self.narrow_range)

    def forward(self, w):
        self.qp = self.qparams_for(w)
        return fake_quantize(w, self.qp)

    def backward(self, w, grad):
        qp = self.qp or self.qparams_for(w)
        scale, zp = qp._broadcast(w.ndim)
        q = np.rint(w * (F32(1) / scale)) + zp
        inside = (q >= qp.qmin) & (q <= qp.qmax)
        return (grad * inside).astype(grad.dtype, copy=False)

    def __repr__(self):
        return (f"FakeQuant(bits={self.bits}, scheme={self.scheme!r}, "
                f"per_channel={self.axis is not None}, observer={self.observer!r})")


def qat(model, X, y, bits: int = 4, *, scheme: str = "symmetric", per_channel: bool = True,
        epochs: int = 5, lr: float = 1e-3, batch_size: int = 32, seed: Any = 0, val=None,
        progress: bool = True, observer: str = "minmax"):
    """Quantization-aware training: fine-tune a copy of ``model`` with fake-quantized weights.

    Every Linear/Conv2d layer gets a :class:`FakeQuant` weight transform, so the forward pass
    sees the ``bits``-bit weights and the straight-through estimator lets the float "shadow"
    weights keep learning (Jacob et al. 2018; Krishnamoorthi 2018 sec. 3.2). Returns
    ``(model_copy, history)``; the copy keeps its transforms (evaluate it directly, or pass it
    to :func:`quantize_model`, which quantizes the trained shadow weights).
    """
    out = model.copy()
    for layer in _weighted_layers(out):
        layer.weight_transform = FakeQuant(bits, scheme, per_channel, observer)
    hist = nn.fit(out, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, val=val,
                  progress=progress, desc=f"QAT {bits}-bit")
    return out, hist


# --------------------------------------------------------------------------------------------
# Post-training quantization of a whole model
# --------------------------------------------------------------------------------------------
class QuantizedModel:
    """A model whose weighted layers compute with fake-quantized weights and inputs.

    ``forward(x)``: before each Linear/Conv2d layer the activation is fake-quantized with the
    calibrated ``act_qparams`` (8-bit affine by default), and the layer uses its fake-quantized
    weight. Works with ``nn.evaluate`` / ``nn.predict``.
    """

    def __init__(self, model, weight_qparams, act_qparams, bits, act_bits):
        self.model = model
        self.weight_qparams = weight_qparams
        self.act_qparams = act_qparams
        self.bits = bits
        self.act_bits = act_bits
        self.layers = model.layers

    def forward(self, x):
        k = 0
        for layer in self.model.layers:
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                if self.act_qparams is not None:
                    x = fake_quantize(x, self.act_qparams[k])
                k += 1
            x = layer.forward(x)
        return x

    __call__ = forward

    def eval(self):
        self.model.eval()
        return self

    def nbytes(self) -> int:
        """Bytes to store the quantized model: ``bits``-bit weights, float32 biases, and one
        float32 scale + one integer zero point per quantizer."""
        return model_size(self.model, self.bits, per_channel=any(
            qp.per_channel for qp in self.weight_qparams))

    def __repr__(self):
        return f"QuantizedModel(bits={self.bits}, act_bits={self.act_bits}, layers={len(self.weight_qparams)})"


def quantize_model(model, bits: int = 8, *, per_channel: bool = True, calib=None,
                   scheme: str = "symmetric", act_bits: int | None = 8, observer: str = "minmax",
                   act_observer: str = "minmax", narrow_range: bool = False) -> QuantizedModel:
    """Post-training quantization (PTQ) of every Linear/Conv2d layer of ``model``.

    Weights: ``w_hat = fake_quantize(w, qparams(w, bits, scheme, axis=0 if per_channel))``.
    Activations (if ``act_bits``): the input of each weighted layer is observed on the
    calibration data ``calib`` (affine, per tensor) and fake-quantized at inference.
    A model trained with :func:`qat` is quantized from its float shadow weights.

    Returns
    -------
    QuantizedModel (use ``nn.evaluate(qm, X, y)``)
    """
    bits = _check_bits(bits)
    if act_bits is not None:
        act_bits = _check_bits(act_bits)
        if calib is None:
            raise ValueError("calib (calibration inputs) is required to quantize activations; "
                             "pass act_bits=None for weights only")
    q = model.copy()
    wqps = []
    for layer in _weighted_layers(q):
        layer.weight_transform = None
        qp = qparams(layer.weight, bits, scheme, axis=0 if per_channel else None, observer=observer,
                     narrow_range=narrow_range)
        layer.weight = fake_quantize(layer.weight, qp)
        wqps.append(qp)
    aqps = None
    if act_bits is not None:
        calib = _as_input(calib, "calib")
        inputs = []
        x = calib
        for layer in q.layers:      # collect the float input of each weighted layer
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                inputs.append(x)
            x = layer.forward(x)
        aqps = [qparams(a, act_bits, "affine", observer=act_observer) for a in inputs]
    q.eval()
    return QuantizedModel(q, wqps, aqps, bits, act_bits)


def model_size(model, bits: int = 32, *, per_channel: bool = False) -> int:
    """Bytes of a model stored with ``bits``-bit weights: packed weights (rounded up to whole
    bytes per layer), float32 biases, and for bits < 32 a float32 scale and an int32 zero point
    per quantizer (per output channel if ``per_channel``)."""
    V.check_int(bits, "bits", 1, 32)
    total = 0
    for layer in _weighted_layers(model):
        total += math.ceil(layer.weight.size * bits / 8)
        if layer.bias is not None:
            total += 4 * layer.bias.size
        if bits < 32:
            total += 8 * (layer.weight.shape[0] if per_channel else 1)
    return total


# --------------------------------------------------------------------------------------------
# Integer-only inference (Jacob et al. 2018)
# --------------------------------------------------------------------------------------------
def quantize_multiplier(M) -> tuple[np.ndarray, np.ndarray]:
    """Write a real multiplier ``0 < M < 1`` as ``M = M0 * 2**-n`` with an int32 ``M0`` in
    ``[2**30, 2**31)`` (a fixed-point number in [0.5, 1) with 31 fractional bits).

    Jacob et al. 2018, sec. 2.2: ``M = 2**-s * M0'`` with ``M0'`` in [0.5, 1); here
    ``M0 = round(M0' * 2**31)`` and ``n = s + 31``. Works element-wise on arrays.

    Examples
    --------
    >>> M0, n = quantize_multiplier(0.3)
    >>> int(M0), int(n), float(M0) * 2.0 ** -int(n)
    (1288490189, 32, 0.30000000004656613)
    """
    M = np.asarray(M, dtype=np.float64)
    if not np.isfinite(M).all() or (M <= 0).any() or (M >= 1).any():
        raise ValueError(f"M must lie in (0, 1), got {_short(M)}")
    mant, exp = np.frexp(M)            # M = mant * 2**exp, mant in [0.5, 1)
    M0 = np.rint(mant * 2.0 ** 31).astype(np.int64)
    carry = M0 == 2 ** 31              # mant rounded up to 1.0
    M0 = np.where(carry, 2 ** 30, M0)
    exp = np.where(carry, exp + 1, exp)
    n = (31 - exp).astype(np.int64)
    if (n > 62).any():
        raise ValueError("M is too small to represent with a 64-bit shift")
    return M0.astype(np.int32), n


def requantize(acc, M0, n, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """int32 accumulator -> output integers: ``clamp(zero_point + round(acc * M0 * 2**-n))``.

    The product ``acc * M0`` is exact in int64 and the rounding shift adds ``2**(n-1)`` before
    ``>> n`` (round half up), so the whole step uses integer arithmetic only.
    """
    acc = np.asarray(acc, dtype=np.int64)
    M0 = np.asarray(M0, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    y = (acc * M0 + (np.int64(1) << (n - 1))) >> n
    return np.clip(y + zero_point, qmin, qmax)


class IntegerLinear:
    """A Linear layer computed with integers only (Jacob et al. 2018 CVPR, eq. 7):

    ``q_y = z_y + M * sum_j (q_w[i, j] - 0) * (q_x[j] - z_x) + q_b``, accumulated in int32,
    with ``M = s_x * s_w / s_y`` applied as ``M0 * 2**-n`` and ``q_b = round(b / (s_x s_w))``.

    Weights are int8 symmetric (per output channel by default, zero point 0); inputs and outputs
    are uint8 affine with the given QParams. ``relu=True`` fuses a ReLU by clamping at ``z_y``.
    """

    def __init__(self, layer, in_qp: QParams, out_qp: QParams, *, per_channel: bool = True,
                 relu: bool = False, weight_bits: int = 8):
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"layer must be a compresslab.nn.Linear, got {type(layer).__name__}")
        for name, qp in (("in_qp", in_qp), ("out_qp", out_qp)):
            if not isinstance(qp, QParams) or qp.per_channel:
                raise TypeError(f"{name} must be a per-tensor QParams")
        self.in_qp, self.out_qp, self.relu = in_qp, out_qp, bool(relu)
        self.w_qp = qparams(layer.weight, weight_bits, "symmetric", axis=0 if per_channel else None)
        self.q_w = quantize(layer.weight, self.w_qp)                    # int8
        s_w = np.broadcast_to(np.asarray(self.w_qp.scale, np.float64), (layer.out_features,))
        self.bias_scale = np.float64(in_qp.scale) * s_w          # s_x * s_w
        b = layer.bias if layer.bias is not None else np.zeros(layer.out_features, F32)
        self.q_b = np.rint(b / self.bias_scale).astype(np.int32)  # int32 bias, zero point 0
        self.M = self.bias_scale / np.float64(out_qp.scale)
        self.M0, self.n = quantize_multiplier(self.M)

    def accumulate(self, q_x) -> np.ndarray:
        """int32 accumulator ``(q_x - z_x) @ q_w.T + q_b``."""
        q_x = np.asarray(q_x)
        if q_x.dtype.kind not in "iu":
            raise TypeError(f"q_x must be integers (quantized inputs), got dtype {q_x.dtype}")
        return (q_x.astype(np.int32) - np.int32(self.in_qp.zero_point)) @ self.q_w.T.astype(np.int32) + self.q_b

    def forward(self, q_x) -> np.ndarray:
        """Quantized inputs -> quantized outputs, integer arithmetic only."""
        lo = self.out_qp.zero_point if self.relu else self.out_qp.qmin
        q = requantize(self.accumulate(q_x), self.M0, self.n, self.out_qp.zero_point, lo,
                       self.out_qp.qmax)
        return q.astype(self.out_qp.dtype)

    def reference(self, q_x) -> np.ndarray:
        """The same layer in float: fake-quantized operands, float math, quantized output."""
        x_hat = dequantize(np.asarray(q_x), self.in_qp).astype(np.float64)
        w_hat = dequantize(self.q_w, self.w_qp).astype(np.float64)
        y = x_hat @ w_hat.T + self.q_b * self.bias_scale
        if self.relu:
            y = np.maximum(y, 0)
        return quantize(y.astype(F32), self.out_qp)
