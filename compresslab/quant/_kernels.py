"""The fast and the torch-exact forms of ``quant.quantize`` (private: read ``quant.linear`` first).

``quant.quantize`` is one line of maths, ``clamp(round_half_even(x / scale) + zero_point)``.
This module computes the same integers

* for large inputs, in cache-sized NumPy chunks with preallocated buffers (``MIN_SIZE``), and
* for torch's rounding rules, bit-exact with ``torch.quantize_per_tensor`` /
  ``torch.quantize_per_channel`` on x86 CPUs. Those kernels do not divide: they multiply by the
  float32 reciprocal ``inv = float32(1 / scale)`` and round half to even one of these float32
  values (``rint`` rounds half to even):

  * ``"fma"``:       ``rint(fma(x, inv, zero_point))`` -- torch 2.13 per tensor (x86): one
    rounding of ``x * inv + zero_point``, emulated exactly in float64;
  * ``"mul_add"``:   ``rint(float32(x * inv) + zero_point)`` -- torch 2.13 per channel;
  * ``"mul_round"``: ``rint(float32(x * inv)) + zero_point`` -- seen with torch 2.11 (AVX-512),
    and torch's ``fake_quantize_*`` kernels.

  They differ from ``"divide"`` (the taught formula) only on inputs within a float32 rounding of
  a tie ``k + 0.5``.

Per tensor, inputs of at least ``JIT_MIN_SIZE`` elements run as one loop compiled by numba when
it is installed (``compresslab[fast]``): NumPy needs a pass over memory per ufunc where torch's
C++ kernel makes one. ``tests/test_quant_kernels.py`` proves every path equal to the readable
form and to torch.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _validate as V
from .. import backend
from .grid import check_qparams

F32 = np.float32
ROUNDINGS = ("divide", "fma", "mul_add", "mul_round")
# What torch 2.13 does on x86 CPUs (AVX2 and AVX-512), the version CI installs: per tensor one rounding
# of a fused multiply-add, per channel a float32 multiply then a float32 add.
TORCH_ROUNDING = {"tensor": "fma", "channel": "mul_add"}
MIN_SIZE = 1 << 16   # quantize's "divide" rule runs here, in chunks, from this many elements
_CHUNK = 1 << 16     # elements per chunk of the per-tensor kernels (~0.6 MB of buffers: L2-sized)
_TORCH_FOUND: dict | None = None


def rule_for(rounding, qp) -> str:
    """The rule ``quantize(x, qp, rounding)`` uses: ``rounding`` itself, or for ``"torch"`` the
    installed torch's rule for per-tensor / per-channel ``qp`` (pinned torch 2.13's without torch)."""
    check_qparams(qp)
    V.check_choice(rounding, "rounding", set(ROUNDINGS) | {"torch"})
    if rounding != "torch":
        return rounding
    kind = "tensor" if qp.axis is None else "channel"
    return (torch_rounding() or {}).get(kind) or TORCH_ROUNDING[kind]


def round_rule(x32, scale, zp, rule):
    """The float value each rule rounds, rounded half to even (whole arrays, no chunks);
    ``scale`` and ``zp`` broadcast against ``x32``."""
    if rule == "divide":        # rint(x / scale), the quotient in float64
        return np.rint(x32.astype(np.float64) / scale) + zp
    inv = (F32(1) / np.asarray(scale, F32)).astype(np.float64)
    zp = np.asarray(zp).astype(np.float64)
    if rule == "fma":           # rint(float32(x * inv + zp)), one rounding of the exact value
        return np.rint((x32.astype(np.float64) * inv + zp).astype(F32))
    y = x32 * inv.astype(F32)   # float32 multiply (rounded)
    if rule == "mul_add":       # rint(float32(float32(x * inv) + zp))
        return np.rint(y + zp.astype(F32))
    return np.rint(y) + zp.astype(F32)      # mul_round: rint(float32(x * inv)) + zp


def quantize(x, qp, rule: str):
    """``quant.quantize(x, qp, rounding=rule)`` for any size and rule (qp already checked)."""
    if qp.axis is None:    # finiteness is checked inside the chunked kernels (saves two passes)
        arr = x if isinstance(x, np.ndarray) else V.as_float_array(x, "x", allow_empty=True, finite=False)
        if arr.dtype.kind not in "fiub" or arr.size == 0:
            arr = V.as_float_array(arr, "x")
        keep64 = rule == "divide" and arr.dtype == np.float64     # torch's rules see float32, as torch does
        with np.errstate(over="ignore"):                            # beyond float32: inf, rejected below
            arr = arr.astype(np.float64 if keep64 else F32, copy=False)
        return quantize_per_tensor(arr, qp, rule)
    x = V.as_float_array(x, "x") if rule == "divide" else V.as_float32(x, "x")
    scale, zp = qp.shaped_like(x)
    y = round_rule(x, scale, zp, rule)   # e.g. rint(float32(x * inv) + zp)
    np.clip(y, qp.qmin, qp.qmax, out=y)
    return y.astype(qp.dtype)


def torch_rounding(refresh: bool = False) -> dict | None:
    """Which rule the installed torch's x86 CPU kernels round by, found by probing them on exact
    ties (once per process), e.g. ``{"tensor": "fma", "channel": "mul_add"}``.

    Imports torch if it is installed; returns None if it is not. ``quant.quantize(x, qp,
    rounding="torch")`` uses this rule; nothing else does, so no result of compresslab depends on
    whether torch was imported.

    Parameters
    ----------
    refresh : bool
        Probe again instead of returning the cached answer.

    Returns
    -------
    dict or None
        ``{"tensor": rule, "channel": rule}`` with rules from ``ROUNDINGS``.

    Examples
    --------
    >>> import torch
    >>> torch_rounding()["tensor"] in ("fma", "mul_add", "mul_round")
    True
    """
    global _TORCH_FOUND
    if _TORCH_FOUND is not None and not refresh:
        return _TORCH_FOUND
    torch = backend.optional("torch")
    if torch is None:
        return None
    g = np.random.default_rng(12345)
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in ("tensor", "channel"):
            ok = set(ROUNDINGS) - {"divide"}
            for trial in range(12):
                n = 1 + 7 * trial
                scales = g.uniform(1e-3, 0.2, 3).astype(F32)
                zps = g.integers(0, 256, 3)
                x = ((g.integers(-120, 120, (3, n)) + 0.5) * scales[:, None]).astype(F32)
                if kind == "tensor":
                    t = torch.quantize_per_tensor(torch.from_numpy(x), float(scales[0]), int(zps[0]),
                                                  torch.quint8).int_repr().numpy()
                    scale, zp = scales[0], zps[0]
                else:
                    t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales.astype(np.float64)),
                                                   torch.from_numpy(zps), 0, torch.quint8).int_repr().numpy()
                    scale, zp = scales[:, None], zps[:, None]
                for rule in list(ok):
                    if not np.array_equal(np.clip(round_rule(x, scale, zp, rule), 0, 255), t):
                        ok.discard(rule)
            found[kind] = next((r for r in ROUNDINGS if r in ok), None)
    for kind, rule in found.items():    # warned outside the block that silences torch's warnings
        if rule is None:
            warnings.warn(f"torch {torch.__version__}'s quantize_per_{kind} rounds by none of "
                          f"{ROUNDINGS[1:]}; quant.quantize(rounding='torch') uses "
                          f"{TORCH_ROUNDING[kind]!r}, which may differ from torch on exact ties",
                          RuntimeWarning, stacklevel=3)
    _TORCH_FOUND = found
    return found



def _sig_bits(v: float) -> int:
    """Number of significant bits in the mantissa of a float (1 for powers of two)."""
    m, _ = math.frexp(abs(float(v)))
    n = 0
    while m != int(m):
        m *= 2
        n += 1
    return max(n, 1)


def quantize_per_tensor(x: np.ndarray, qp, rule: str = "divide", kernel: str | None = None):
    """Per-tensor quantize of a float32 array (float64 too for "divide"). kernel: "loop" (the loop
    below compiled by numba; float32 only), "numpy" (chunked ufuncs), None: the loop for float32
    inputs of at least JIT_MIN_SIZE elements when numba is installed, else NumPy."""
    if kernel is None:
        big = JIT_MIN_SIZE is not None and x.size >= JIT_MIN_SIZE and x.dtype == F32
        kernel = "loop" if big and _compiled_loop() is not None else "numpy"
    if kernel == "loop":
        return _quantize_per_tensor_loop(x, qp, rule)
    with np.errstate(over="ignore", invalid="ignore"):   # huge |x| saturates, as in torch
        if rule == "divide":
            return _quantize_per_tensor_divide(x, qp)
        if rule == "fma":
            return _quantize_per_tensor_fma_fast(x, qp)
        return _quantize_per_tensor_f32(x, qp, rule)


def _quantize_per_tensor_divide(x: np.ndarray, qp) -> np.ndarray:
    # Readable form (quant.quantize): q = clip(rint(float64(x) / scale) + zp, qmin, qmax),
    # here in cache-sized chunks with preallocated buffers and in-place ufuncs.
    scale, zp = np.float64(qp.scale), np.float64(qp.zero_point)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, dtype=qp.dtype)
    y = np.empty(min(_CHUNK, flat.size), np.float64)
    for start in range(0, flat.size, _CHUNK):
        xs = flat[start:start + _CHUNK]
        yy = y[:xs.size]
        np.copyto(yy, xs)                          # float32 -> float64 (exact)
        if not math.isfinite(np.add.reduce(yy)):
            _check_finite_input(xs)
        yy /= scale
        np.rint(yy, out=yy)
        yy += zp
        np.clip(yy, qp.qmin, qp.qmax, out=yy)
        np.copyto(out[start:start + xs.size], yy, casting="unsafe")
    return out.reshape(x.shape)


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


def _quantize_loop(x, inv64, inv32, scale64, zp, lo, hi, band, rule, out):
    """The per-tensor kernel as one loop over x, which is how torch's C++ kernel works; NumPy
    cannot fuse the steps (each ufunc is a pass over memory), so numba compiles this when it is
    installed. It is plain Python as well, and the tests also run it uncompiled.

    rule 0 ("fma"):       r = rint(float32(x * inv + zp)), the sum rounded once
    rule 1 ("mul_add"):   r = rint(float32(x * inv) + zp)  (float32 multiply, float32 add;
                          compiled without fastmath, so never fused into one fma)
    rule 2 ("mul_round"): r = rint(float32(x * inv)) + zp
    rule 3 ("divide"):    r = rint(x / scale) + zp, the quotient exact (float64)
    then out = min(max(r, lo), hi), with rint rounding half to even.

    x.size must be a multiple of _LOOP_BLOCK. For each block, a loop without branches (which
    the compiler vectorises) computes ``y = float32(x * inv) + zp`` and flags the elements within
    ``band`` of a tie k + 0.5 (where, for rules 0 and 3, rint(y) may differ from the exact rule's
    result) or not finite. The flagged elements, few, are then redone exactly.
    Returns the number of NaN or infinite x.
    """
    zp32 = np.float32(zp)
    near = np.float32(0.5) - band if rule == 0 or rule == 3 else np.float32(1)   # |y - r| >= near: redo
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
            if rule == 1 or rule == 2:            # rules 1 and 2 flag only huge x (y = +-inf),
                continue                          # which is already clamped
            if rule == 3:                         # divide: exactly, in float64
                r = np.float32(np.rint(np.float64(xi) / scale64) + zp)
                r = r if r > lo else lo
                r = r if r < hi else hi
                out[s + j] = r
                continue
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


_LOOP_RULES = ("fma", "mul_add", "mul_round", "divide")   # rule numbers 0-3 of the loop
_LOOP_BLOCK = 512     # elements per block of the compiled loop; few blocks hold a near tie


def _quantize_per_tensor_loop(x: np.ndarray, qp, rule: str, compiled: bool = True):
    flat = np.ascontiguousarray(x, dtype=F32).reshape(-1)
    out = np.empty(flat.size, dtype=qp.dtype)
    inv32 = F32(F32(1.0) / qp.scale)
    # Where the result is not clamped |x * inv| <= A; there y = float32(x * inv) + zp and the
    # float32 of the exact sum are within 1.5 float32 ulps of A of each other.
    A = abs(qp.zero_point) + max(abs(qp.qmin), abs(qp.qmax)) + 1
    # For "divide", y = float32(float32(x * inv32) + zp) is within 2.5 ulps of A of x / scale + zp.
    band = F32(2 if rule != "divide" else 4) * np.spacing(F32(A))
    loop = _compiled_loop() if compiled else _quantize_loop
    args = (np.float64(inv32), inv32, np.float64(qp.scale), np.float64(qp.zero_point),
            F32(qp.qmin), F32(qp.qmax), band,
            _LOOP_RULES.index(rule))
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


def _quantize_per_tensor_fma_fast(x: np.ndarray, qp) -> np.ndarray:
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


def _quantize_per_tensor_fma_exact(x: np.ndarray, qp) -> np.ndarray:
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
            _check_finite_input(xs)                # raises
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


def _quantize_per_tensor_f32(x: np.ndarray, qp, rule: str) -> np.ndarray:
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
