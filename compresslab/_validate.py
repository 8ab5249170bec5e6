"""Input validation shared by every module: clear errors that name the argument."""
from __future__ import annotations

import math
import numbers
import zipfile
import zlib
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
    if not isinstance(value, (str, numbers.Number, type(None))) or value not in choices:
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
    s = as_float_array(scale, "scale", allow_empty=True, finite=False).astype(np.float64)
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


# ------------------------------------------------------------------ labels, searches, torch
def check_tol(tol: Any, name: str = "tol") -> float:
    """A search tolerance: a finite float > 0 (0, negative, NaN or inf would never stop)."""
    return check_float(tol, name, 0.0, low_open=True)


def check_labels_for(y: Any, name: str, n: int, num_classes: int, *, unlabeled: int | None = None
                     ) -> np.ndarray:
    """Class indices for ``n`` samples of a model with ``num_classes`` outputs: each in
    ``[0, num_classes - 1]``, or equal to ``unlabeled`` where that value is allowed."""
    y = as_labels(y, name, n=n)
    ok = (y >= 0) & (y < num_classes)
    if unlabeled is not None:
        ok |= y == unlabeled
    if not ok.all():
        bad = y[~ok][0]
        extra = f" or {unlabeled} (unlabelled)" if unlabeled is not None else ""
        raise ValueError(f"{name} must hold class indices in [0, {num_classes - 1}]{extra} (the "
                         f"model has {num_classes} outputs), got {bad}")
    return y


def check_torch_layer(t: Any) -> None:
    """Refuse torch layer settings that compresslab's layers cannot reproduce exactly."""
    kind = type(t).__name__
    bad = []
    if hasattr(t, "dilation") and tuple(t.dilation) != (1, 1):
        bad.append(f"dilation={tuple(t.dilation)}")
    if getattr(t, "groups", 1) != 1:
        bad.append(f"groups={t.groups}")
    if getattr(t, "padding_mode", "zeros") != "zeros":
        bad.append(f"padding_mode={t.padding_mode!r}")
    if kind == "Conv2d" and (isinstance(t.padding, str) or len(set(t.padding)) != 1
                             or len(set(t.kernel_size)) != 1 or len(set(t.stride)) != 1):
        bad.append(f"kernel_size={t.kernel_size}, stride={t.stride}, padding={t.padding!r} "
                   "(only square kernels, strides and integer paddings)")
    if kind == "Flatten" and (t.start_dim, t.end_dim) != (1, -1):
        bad.append(f"start_dim={t.start_dim}, end_dim={t.end_dim} (only 1, -1)")
    if bad:
        raise ValueError(f"from_torch cannot represent {kind} with {', '.join(bad)}")


# ------------------------------------------------------------------ bounded file reading
MAX_FILE_BYTES = 2 ** 31
"""The most bytes a loader decompresses from one file (2 GiB): a small file cannot make it
allocate more than this, whatever its header declares."""

MAX_LAYER_PARAMS = 2 ** 26
"""The most parameters one layer read from a file may have (67 million, 256 MiB of float32),
checked before anything is allocated."""

MAX_HEADER_BYTES = 2 ** 24
"""The most bytes a compressed-model header may inflate to (16 MiB)."""


class FileDamage(ValueError):
    """A file that is not what its reader expects: damaged, truncated, crafted or foreign."""


def read_npz(path: str, where: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, each one's declared size checked against what the archive
    declares before it is read, no pickle; any damage becomes a :class:`FileDamage`."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            zip_start = f.read(2) == b"PK"
        raise FileDamage(f"{where} is truncated or corrupt (no zip directory)" if zip_start else
                         f"{where} is not an .npz file (it is not a zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > MAX_FILE_BYTES:
                raise FileDamage(f"{where} declares more than {MAX_FILE_BYTES} bytes of arrays")
            return {i.filename[:-4]: _read_npy(zf, i, where) for i in infos}
    except FileDamage:
        raise
    except Exception as exc:   # zip, zlib, npy-header and EOF errors alike
        raise FileDamage(f"{where} is truncated or corrupt ({type(exc).__name__}: {exc})") from None


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> np.ndarray:
    fmt = np.lib.format
    if not info.filename.endswith(".npy"):
        raise FileDamage(f"{where} holds {info.filename!r}, which is not an array")
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            raise FileDamage(f"{where} holds pickled Python objects ({info.filename}); compresslab "
                             "never loads pickle (it can run arbitrary code)")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise FileDamage(f"{where}: {info.filename} declares shape {shape}, more than it holds")
    with zf.open(info) as f:
        return fmt.read_array(f, allow_pickle=False)


def inflate(data: bytes, limit: int, where: str) -> bytes:
    """zlib-decompress ``data`` to at most ``limit`` bytes (a bomb stops there, with an error)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as exc:
        raise FileDamage(f"{where} has an unreadable header ({exc})") from None
    if d.unconsumed_tail or not d.eof:
        raise FileDamage(f"{where} has a header that inflates past {limit} bytes or is truncated")
    return out


def read_exactly(f: Any, n: int, where: str) -> bytes:
    """``n`` bytes from a stream, read in chunks (never more than the stream holds, plus one
    to detect trailing data); an error names ``where`` when the stream is shorter or longer."""
    chunks, got = [], 0
    while got <= n:
        chunk = f.read(min(n + 1 - got, 2 ** 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got != n:
        what = "truncated" if got < n else "longer than its header says"
        raise FileDamage(f"{where} is {what}: its header needs {n} bytes of data"
                         + (f", found {got}" if got < n else ""))
    return b"".join(chunks)


def check_layer_spec(spec: Any, where: str) -> dict:
    """One layer of an architecture read from a file: a dict whose parameter count is at most
    :data:`MAX_LAYER_PARAMS`, checked before the layer allocates anything."""
    if not isinstance(spec, dict):
        raise FileDamage(f"{where}: a layer of the architecture is {type(spec).__name__}, not a dict")
    dims = [spec.get(k, 1) for k in ("in_features", "out_features", "in_channels", "out_channels",
                                     "kernel_size", "kernel_size")]
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise FileDamage(f"{where}: layer {spec} has a size that is not a positive integer")
    if math.prod(dims) > MAX_LAYER_PARAMS:
        raise FileDamage(f"{where}: layer {spec} would have {math.prod(dims)} parameters, more "
                         f"than the {MAX_LAYER_PARAMS} a loaded layer may have")
    return spec


def check_loaded_param(name: str, value: np.ndarray, shape: tuple, where: str) -> np.ndarray:
    """A parameter read from a file: numeric, of ``shape``, finite."""
    if value.dtype.kind not in "fiu" or value.shape != tuple(shape):
        raise FileDamage(f"{where}: {name} has dtype {value.dtype} and shape {value.shape}, "
                         f"expected float of shape {tuple(shape)}")
    if not np.isfinite(value).all():
        raise FileDamage(f"{where}: {name} contains NaN or infinite values")
    return value


def check_loaded_mask(key: str, mask: np.ndarray, params: dict, where: str) -> tuple[int, str]:
    """A pruning mask ``mask/{layer}.{attr}`` read from a file: an existing parameter's shape, 0/1."""
    name = key[len("mask/"):]
    if name not in params:
        raise FileDamage(f"{where}: mask {key!r} names no parameter of the model")
    i, attr = name.split(".", 1)
    if mask.shape != params[name].shape or mask.dtype.kind not in "fiub" \
            or not np.isin(mask, (0, 1)).all():
        raise FileDamage(f"{where}: mask {key!r} must be 0/1 of shape {params[name].shape}, got "
                         f"dtype {mask.dtype} and shape {mask.shape}")
    return int(i), attr


def check_pair(value: Any, name: str, low: int = 1) -> tuple[int, int]:
    """Two integers ``>= low`` (a tuple or list), e.g. the channels of a two-layer CNN."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair of integers, got {value!r}")
    return check_int(value[0], f"{name}[0]", low), check_int(value[1], f"{name}[1]", low)


def check_bracket(low: Any, high: Any) -> tuple[float, float]:
    """A search bracket: finite floats ``low < high``, named ``low`` and ``high``."""
    low, high = check_float(low, "low"), check_float(high, "high")
    if not low < high:
        raise ValueError(f"low must be less than high, got low={low}, high={high}")
    return low, high


def as_int_array(x: Any, name: str, low: int | None = None, high: int | None = None) -> np.ndarray:
    """``x`` as an int64 array of integers (integral floats accepted) in ``[low, high]``."""
    a = np.asarray(backend.to_numpy(x)) if not isinstance(x, (str, bytes)) else np.asarray(None)
    if a.dtype.kind == "f" and a.size and np.isfinite(a).all() and (a == np.round(a)).all() \
            and np.abs(a).max() < 2.0 ** 63:
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and a.size == 0):
        raise TypeError(f"{name} must hold integers, got {type(x).__name__} of dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and a.max() >= 2 ** 63:
        raise ValueError(f"{name} holds integers beyond int64's range")
    a = a.astype(np.int64)
    if a.size and ((low is not None and a.min() < low) or (high is not None and a.max() > high)):
        raise ValueError(f"{name} must lie in [{low if low is not None else '-inf'}, "
                         f"{high if high is not None else 'inf'}], got {short(a)}")
    return a


def check_token_windows(x: Any, name: str, vocab_size: int, block_size: int) -> np.ndarray:
    """Token windows for a GPT: int64 of shape (n, T), 1 <= T <= block_size, ids in [0, vocab_size)."""
    a = as_int_array(x, name, 0, vocab_size - 1)
    if a.ndim != 2 or a.size == 0 or a.shape[1] > block_size:
        raise ValueError(f"{name} must be token windows of shape (n, T), T <= block_size = {block_size}, "
                         f"got shape {a.shape}")
    return a


def check_requantize(acc: Any, M0: Any, n: Any, zero_point: Any, qmin: Any, qmax: Any):
    """Arguments of ``quant.requantize``: integer arrays ``acc``, ``M0`` in [0, 2**31),
    ``n`` in [1, 62] broadcastable to ``acc``; integers ``zero_point`` and ``qmin <= qmax``.
    Returns ``(acc, M0, n)``, as Python-int object arrays when ``acc * M0`` could overflow int64."""
    acc = as_int_array(acc, "acc")
    M0, n = as_int_array(M0, "M0", 0, 2 ** 31 - 1), as_int_array(n, "n", 1, 62)
    check_int(zero_point, "zero_point")
    if check_int(qmin, "qmin") > check_int(qmax, "qmax"):
        raise ValueError(f"qmin must not exceed qmax, got qmin={qmin}, qmax={qmax}")
    try:
        np.broadcast_shapes(acc.shape, M0.shape, n.shape)
    except ValueError:
        raise ValueError(f"M0 {M0.shape} and n {n.shape} do not broadcast against acc {acc.shape}") from None
    if acc.size and np.abs(acc).max() >= 2 ** 32:     # |acc * M0| could pass 2**63: exact ints
        return acc.astype(object), M0.astype(object), n.astype(object)
    return acc, M0, n


def check_index_dtype(index_dtype: Any, largest: int, name: str = "index_dtype") -> np.dtype:
    """An integer dtype able to hold every index up to ``largest`` (never one that wraps)."""
    try:
        dt = np.dtype(index_dtype)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy integer dtype, got {index_dtype!r}") from None
    if dt.kind not in "iu":
        raise TypeError(f"{name} must be a NumPy integer dtype, got {dt}")
    if largest > np.iinfo(dt).max:
        raise ValueError(f"{name}={dt} holds at most {np.iinfo(dt).max}, but the indices reach "
                         f"{largest}; use a wider type such as numpy.int32")
    return dt


def check_csr(c: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """The arrays of a CSR-like object: ``indptr`` of rows + 1 entries from 0 to len(data),
    non-decreasing; ``indices`` as many as ``data``, each a column in ``[0, columns)``."""
    for attr in ("data", "indices", "indptr", "shape"):
        if not hasattr(c, attr):
            raise TypeError(f"c must be a CSR (data, indices, indptr, shape), got {type(c).__name__}")
    shape = c.shape
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"c.shape must be (rows, columns), got {shape!r}")
    rows, cols = check_int(shape[0], "c.shape[0]", 0), check_int(shape[1], "c.shape[1]", 0)
    data = as_float_array(c.data, "c.data", ndim=1, allow_empty=True, finite=False)
    indices = as_int_array(c.indices, "c.indices", 0, max(cols - 1, 0))
    indptr = as_int_array(c.indptr, "c.indptr", 0, data.size)
    if indices.ndim != 1 or indices.size != data.size or (data.size and cols == 0):
        raise ValueError(f"c.indices must be 1-D with one column in [0, {cols}) per value of c.data")
    if indptr.shape != (rows + 1,) or indptr[0] != 0 or indptr[-1] != data.size \
            or (np.diff(indptr) < 0).any():
        raise ValueError(f"c.indptr must hold {rows + 1} non-decreasing offsets from 0 to "
                         f"len(c.data) = {data.size}")
    return data, indices, indptr, (rows, cols)


def as_bytes_array(data: Any, name: str = "data") -> np.ndarray:
    """``data`` as a flat uint8 array: integers in [0, 255] only (never wrapped)."""
    return as_int_array(data, name, 0, 255).astype(np.uint8).ravel()


def check_has(obj: Any, attr: str, name: str, what: str = "a model") -> Any:
    """``obj`` if it has a callable ``attr`` (duck typing, e.g. a model's ``forward``), else a
    TypeError naming the argument."""
    if not callable(getattr(obj, attr, None)):
        raise TypeError(f"{name} must be {what} (with a {attr} method), got {type(obj).__name__}")
    return obj


def as_batch(X: Any, name: str = "X") -> np.ndarray:
    """Inputs of a model: a float array of finite numbers with a batch axis (2 or more dims)."""
    X = as_float_array(X, name)
    if X.ndim < 2:
        raise ValueError(f"{name} must be a batch of inputs (2 or more dimensions), got shape {X.shape}")
    return X


def check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """An array shape: a non-negative int, or a tuple of them."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {shape!r}")
    return tuple(check_int(s, name, 0) for s in shape)


def check_names(names: Any, name: str) -> list[str]:
    """A list of parameter names (strings), e.g. the layers to prune."""
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)) \
            or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{name} must be a list of parameter names such as ['0.weight'], got {names!r}")
    return list(names)


def named(f: Any, name: str) -> Any:
    """``f`` whose ValueError or TypeError messages start with ``name``: the caller's argument."""
    def call(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name}: {exc}") from None
    return call
