"""Input validation shared by every module: clear errors that name the argument."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from . import backend


def as_float_array(x: Any, name: str, *, ndim: int | tuple[int, ...] | None = None,
                   allow_empty: bool = False, finite: bool = True) -> np.ndarray:
    """Return ``x`` as a floating NumPy array, raising a clear error for bad input."""
    x = backend.to_numpy(x)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and such
        raise TypeError(f"{name} must be an array of numbers ({exc})") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                             f"got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_labels(y: Any, name: str, n: int | None = None, num_classes: int | None = None) -> np.ndarray:
    y = np.asarray(backend.to_numpy(y))
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} entries but there are {n} samples")
    if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}], got [{y.min()}, {y.max()}]")
    return y.astype(np.int64, copy=False)


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be in {rng}, got {value}")
    return value


def check_float(value: Any, name: str, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        rng = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {rng}, got {value}")
    return value


def check_axis(axis: Any, ndim: int, name: str = "dim") -> int:
    """An axis of an array with ``ndim`` dimensions, negative values counted from the end."""
    axis = check_int(axis, name)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions "
                         f"(allowed: {-ndim} .. {ndim - 1})")
    return axis % ndim


def check_amount(amount: Any, n: int, name: str = "amount") -> int | float:
    """torch's pruning ``amount``: an int count in [0, n] (returned as int) or a float fraction
    in [0, 1] (returned as float)."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{name} must be an int (a count) or a float in [0, 1] (a fraction), "
                        f"got {amount!r}")
    if isinstance(amount, numbers.Integral):
        if not 0 <= amount <= n:
            raise ValueError(f"{name}={int(amount)} is a count and must be in [0, {n}] (there are "
                             f"{n} entries to choose from)")
        return int(amount)
    if not math.isfinite(amount) or not 0.0 <= amount <= 1.0:
        raise ValueError(f"{name}={amount} is a fraction and must be a float in [0, 1]")
    return float(amount)


def check_choice(value: Any, name: str, choices) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)!r}, got {value!r}")
    return value


def rng(seed: Any) -> np.random.Generator:
    """A NumPy Generator from an int seed, a Generator, or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        check_int(seed, "seed", 0)
    return np.random.default_rng(seed)


def check_bits(bits: Any, name: str = "bits", low: int = 2, high: int = 16) -> int:
    """A bit width: an integer (not a bool) in ``[low, high]``; returns it as an int."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [{low}, {high}], got {bits!r}")
    if not low <= int(bits) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {bits}")
    return int(bits)


def as_float32(x: Any, name: str) -> np.ndarray:
    """``x`` (array, tensor, list) as a float32 NumPy array of finite numbers, or a clear error."""
    arr = np.asarray(backend.to_numpy(x)) if not isinstance(x, (str, bytes)) else x
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.size and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN values; quantization needs finite numbers")
    arr = as_float_array(arr, name)
    if arr.dtype == np.float32:
        return arr
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} holds values beyond float32's range (|x| > 3.4e38)")
    return out


def short(a: Any) -> str:
    """A short description of an array for error messages: its values, or shape and range."""
    a = np.asarray(a)
    if a.size <= 4:
        return np.array2string(a.ravel(), precision=6, separator=", ") if a.ndim else repr(a.item())
    return f"array of shape {a.shape} (min {a.min():.4g}, max {a.max():.4g})"


def check_qparams_fields(qp: Any) -> None:
    """Validate the fields of a new ``quant.QParams`` and normalise them in place: float32
    scale(s), int64 (per channel) or int zero point(s). Scales must be positive, finite, with a
    finite float32 reciprocal; zero points integers in ``[qmin, qmax]``; ``qmin < qmax`` within
    16 bits; per tensor one value each."""
    scale, zero_point, qmin, qmax, axis = qp.scale, qp.zero_point, qp.qmin, qp.qmax, qp.axis
    qmin = check_int(qmin, "qmin", -(2 ** 16), 2 ** 16)
    qmax = check_int(qmax, "qmax", -(2 ** 16), 2 ** 16)
    if qmax <= qmin:
        raise ValueError(f"qmax must be greater than qmin, got qmin={qmin}, qmax={qmax}")
    if qmax - qmin > 2 ** 16 - 1:
        raise ValueError(f"[qmin, qmax] = [{qmin}, {qmax}] needs more than 16 bits")
    s = np.asarray(backend.to_numpy(scale), dtype=np.float64)
    if s.size == 0 or not np.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"scale must be positive and finite, got {short(s)}")
    s = s.astype(np.float32)
    with np.errstate(over="ignore", divide="ignore"):
        inv = np.float32(1) / s                  # what torch's kernels multiply by
    if (s <= 0).any() or not np.isfinite(s).all() or not np.isfinite(inv).all():
        raise ValueError(f"scale must be a positive float32 whose reciprocal is a finite "
                         f"float32 (about 3e-39 or more), got {short(s)}")
    zp = np.asarray(backend.to_numpy(zero_point))
    if zp.dtype.kind == "f":
        if not np.isfinite(zp).all() or (zp != np.round(zp)).any():
            raise ValueError(f"zero_point must be an integer, got {short(zp)}")
    elif zp.dtype.kind not in "iu":
        raise TypeError(f"zero_point must be an integer, got dtype {zp.dtype}")
    zp = zp.astype(np.int64)
    if (zp < qmin).any() or (zp > qmax).any():
        raise ValueError(f"zero_point must lie in [qmin, qmax] = [{qmin}, {qmax}], got {short(zp)}")
    if axis is None:
        if s.size != 1 or zp.size != 1:
            raise ValueError("per-tensor QParams (axis=None) need one scale and one zero_point; "
                             f"got {s.size} and {zp.size} -- pass axis for per-channel")
        qp.scale, qp.zero_point, qp.qmin, qp.qmax = np.float32(s.reshape(())), int(zp.reshape(())), qmin, qmax
        return
    axis = check_int(axis, "axis")
    if s.ndim != 1 or zp.shape != s.shape:
        raise ValueError(f"per-channel scale and zero_point must be 1-D of equal length, got "
                         f"shapes {s.shape} and {zp.shape}")
    qp.scale, qp.zero_point, qp.qmin, qp.qmax, qp.axis = s, zp, qmin, qmax, axis


def check_optional_bool(value: Any, name: str) -> bool | None:
    """True, False or None (NumPy bools accepted), else a TypeError naming the argument."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True, False or None, got {value!r}")
    return None if value is None else bool(value)


def check_scheme(scheme: Any, signed: Any) -> tuple[str, bool]:
    """A quantization scheme ("affine" or "symmetric") and its integer type: ``signed`` True,
    False, or None for the scheme's default (affine: unsigned, symmetric: signed)."""
    check_choice(scheme, "scheme", {"affine", "symmetric"})
    signed = check_optional_bool(signed, "signed")
    return scheme, scheme == "symmetric" if signed is None else signed


def check_bool(value: Any, name: str) -> bool:
    """True or False (NumPy bools accepted), else a TypeError naming the argument."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_range(lo: Any, hi: Any) -> tuple[np.ndarray, np.ndarray]:
    """A quantization range: ``lo`` and ``hi`` as float32 arrays of one shape, finite, ``lo <= hi``."""
    lo = as_float_array(lo, "lo", allow_empty=True).astype(np.float32)
    hi = as_float_array(hi, "hi", allow_empty=True).astype(np.float32)
    if lo.shape != hi.shape:
        raise ValueError(f"lo and hi must have the same shape, got {lo.shape} and {hi.shape}")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"lo and hi must be finite float32 numbers, got lo={short(lo)}, hi={short(hi)}")
    if (lo > hi).any():
        raise ValueError(f"lo must not exceed hi, got lo={short(lo)}, hi={short(hi)}")
    return lo, hi


def num_elements(x: Any, name: str) -> int:
    """How many numbers ``x`` holds (an array, or a nested list checked like :func:`as_float_array`)."""
    if isinstance(x, np.ndarray):
        return x.size
    return as_float_array(x, name, allow_empty=True, finite=False).size
