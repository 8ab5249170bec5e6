"""Checkers for lesson 02 (quantization).

2.1 ``quantize_affine(x, scale, zero_point, qmin, qmax)`` -- round half to even, add the zero
    point, clamp.
2.2 ``affine_qparams(x_min, x_max, bits)`` -- scale from the whole range, integer clamped zero point.
2.3 ``symmetric_quantize(x, bits)`` -- the narrow symmetric range ``[-(2**(b-1) - 1), 2**(b-1) - 1]``.
"""
from __future__ import annotations

import numpy as np

from ._core import Case, Feedback, Mistake, checker, compare_cases


# ------------------------------------------------------------------------------ 2.1
def _ref_quantize(x, scale, zero_point, qmin, qmax):
    return np.clip(np.rint(np.asarray(x, np.float64) / scale) + zero_point, qmin, qmax).astype(np.int64)


def _with_rounding(rounder, clamp=True):
    def f(x, scale, zero_point, qmin, qmax):
        q = rounder(np.asarray(x, np.float64) / scale) + zero_point
        return (np.clip(q, qmin, qmax) if clamp else q).astype(np.int64)
    return f


def _as_ints(a):
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            return None
    elif arr.dtype.kind not in "iu":
        return None
    return arr.astype(np.int64)


def _equal_ints(got, want):
    g = _as_ints(got)
    return g is not None and g.shape == np.shape(want) and bool(np.array_equal(g, want))


@checker("2.1", "quantize with round-half-even and clamping", lesson="02_quantization")
def check_quantize_affine(quantize_affine):
    """``quantize_affine(x, scale, zero_point, qmin, qmax)`` returns the integers
    ``clamp(round_half_even(x / scale) + zero_point, qmin, qmax)``."""
    g = np.random.default_rng(21)
    # power-of-two scales make x / scale exact, so every tie below is a true .5 tie
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5], np.float32) * 0.25
    cases = [
        Case("exact ties x/scale = +-0.5, +-1.5, +-2.5, +-3.5 (scale 0.25, zero point 0)",
             (ties, 0.25, 0, -128, 127)),
        Case("negative values with scale 0.5 (truncation and floor differ here)",
             (np.array([-0.2, -0.7, -1.3, -2.4, 0.3, 1.1], np.float32), 0.5, 0, -128, 127)),
        Case("values beyond the range (int8, scale 0.1): they must be clamped",
             (np.array([-50.0, -12.8, 0.0, 12.7, 50.0], np.float32), 0.1, 0, -128, 127)),
        Case("uint8 with zero point 128 and out-of-range values",
             (np.array([-20.0, -1.0, 0.0, 0.26, 1.0, 20.0], np.float32), 0.125, 128, 0, 255)),
        Case("100 random values, uint8, scale 0.03125, zero point 37",
             (g.normal(0, 2, 100).astype(np.float32), 0.03125, 37, 0, 255)),
        Case("a 4-bit signed grid [-8, 7] with ties",
             (np.array([-1.25, -0.75, 0.25, 0.75, 2.0], np.float32), 0.5, 0, -8, 7)),
    ]
    mistakes = [
        Mistake(_with_rounding(np.floor),
                "you used floor (np.floor or //): values are rounded down, not to the nearest "
                "integer. Use np.rint (round half to even)."),
        Mistake(_with_rounding(np.trunc),
                "you truncated towards zero (astype(int) or np.trunc) instead of rounding: use "
                "np.rint before converting to integers."),
        Mistake(_with_rounding(lambda v: np.floor(v + 0.5)),
                "you rounded halves up (floor(v + 0.5)); torch and NumPy round half to even "
                "(2.5 -> 2, 3.5 -> 4, -2.5 -> -2). Use np.rint."),
        Mistake(_with_rounding(lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),
                "you rounded halves away from zero (like C's round); use np.rint, which rounds "
                "half to even."),
        Mistake(_with_rounding(np.rint, clamp=False),
                "you forgot to clamp: values outside the range must saturate at qmin / qmax "
                "(np.clip(q, qmin, qmax))."),
        Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(np.asarray(x, np.float64) / s), lo, hi).astype(np.int64),
                "you forgot to add the zero point."),
        Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(np.asarray(x, np.float64) * s) + z, lo, hi).astype(np.int64),
                "divide by the scale (x / scale), do not multiply."),
        Mistake(lambda x, s, z, lo, hi: (np.clip(np.rint(np.asarray(x, np.float64) / s) + z, lo, hi) - z) * s,
                "you returned the dequantized floats; return the integers q."),
    ]

    def equal(got, want):
        if got is None:
            raise Feedback("your function returned None; return the array of integers.")
        return _equal_ints(got, want)

    return compare_cases(quantize_affine, _ref_quantize, cases, mistakes, equal=equal)


# ------------------------------------------------------------------------------ 2.2
def _ref_affine_qparams(x_min, x_max, bits):
    qmin, qmax = 0, 2 ** bits - 1
    scale = (x_max - x_min) / (qmax - qmin)
    zp = int(np.clip(np.rint(qmin - x_min / scale), qmin, qmax))
    return scale, zp


def _qp_mistake(scale_fn, zp_fn):
    def f(x_min, x_max, bits):
        qmin, qmax = 0, 2 ** bits - 1
        scale = scale_fn(x_min, x_max, qmin, qmax)
        return scale, zp_fn(x_min, scale, qmin, qmax)
    return f


_good_scale = lambda lo, hi, qmin, qmax: (hi - lo) / (qmax - qmin)  # noqa: E731
_good_zp = lambda lo, s, qmin, qmax: int(np.clip(np.rint(qmin - lo / s), qmin, qmax))  # noqa: E731


@checker("2.2", "scale and zero point of an affine quantizer", lesson="02_quantization")
def check_affine_qparams(affine_qparams):
    """``affine_qparams(x_min, x_max, bits)`` returns ``(scale, zero_point)`` for the unsigned
    range ``[0, 2**bits - 1]``: ``scale = (x_max - x_min) / (qmax - qmin)``,
    ``zero_point = clamp(round(qmin - x_min / scale), qmin, qmax)`` as a Python/NumPy int."""
    cases = [
        Case("x_min=-5, x_max=1, 3 bits", (-5.0, 1.0, 3)),
        Case("x_min=-1, x_max=2, 8 bits", (-1.0, 2.0, 8)),
        Case("x_min=-0.3, x_max=0.9, 4 bits", (-0.3, 0.9, 4)),
        Case("a range that does not contain 0: x_min=1, x_max=3, 8 bits (the zero point must be clamped)",
             (1.0, 3.0, 8)),
        Case("an all-negative range x_min=-4, x_max=-1, 8 bits (clamp at qmax)", (-4.0, -1.0, 8)),
        Case("x_min=-0.7, x_max=0.2, 8 bits (qmin - x_min/scale is not an integer)", (-0.7, 0.2, 8)),
    ]
    widened = lambda lo, hi, bits: _ref_affine_qparams(min(lo, 0.0), max(hi, 0.0), bits)  # noqa: E731
    mistakes = [
        Mistake(widened, "you widened the range to contain 0 (as torch's observers do before "
                "computing qparams); this exercise asks for the formula on x_min and x_max as given."),
        Mistake(_qp_mistake(lambda lo, hi, a, b: hi / (b - a), _good_zp),
                "your scale uses only x_max; the step must cover the whole range: "
                "scale = (x_max - x_min) / (qmax - qmin)."),
        Mistake(_qp_mistake(lambda lo, hi, a, b: max(abs(lo), abs(hi)) / (b - a), _good_zp),
                "your scale uses max(|x_min|, |x_max|) -- that is the symmetric scheme. For affine "
                "use scale = (x_max - x_min) / (qmax - qmin)."),
        Mistake(_qp_mistake(lambda lo, hi, a, b: (hi - lo) / (b - a + 1), _good_zp),
                "off by one: there are 2**bits levels but only 2**bits - 1 steps between them; "
                "divide by (qmax - qmin)."),
        Mistake(_qp_mistake(_good_scale, lambda lo, s, a, b: int(np.clip(a - lo / s, a, b))),
                "your zero point is not rounded (int() truncates): use np.rint, then int()."),
        Mistake(_qp_mistake(_good_scale, lambda lo, s, a, b: int(np.rint(a - lo / s))),
                "your zero point is not clamped: it must lie in [qmin, qmax] "
                "(np.clip(zp, qmin, qmax)), even when the range does not contain 0."),
        Mistake(_qp_mistake(_good_scale, lambda lo, s, a, b: int(np.clip(np.rint(a + lo / s), a, b))),
                "the zero point's sign is wrong: zero_point = qmin - x_min / scale."),
    ]

    def equal(got, want):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Feedback(f"return a tuple (scale, zero_point), got {type(got).__name__}.")
        s, z = got
        try:
            s_ok = abs(float(s) - want[0]) <= 1e-6 * abs(want[0])
        except (TypeError, ValueError):
            return False
        zi = _as_ints(np.asarray(z))
        if zi is None and np.asarray(z).dtype.kind == "f":
            raise Feedback(f"your zero point {float(np.asarray(z).ravel()[0]):.6g} is not an integer: "
                           "round it (np.rint) so that the real number 0.0 is represented exactly "
                           "by an integer.")
        if s_ok and zi is not None and zi.shape == () and int(zi) == want[1] \
                and np.asarray(z).dtype.kind not in "iu":
            raise Feedback(f"the value of your zero point is right ({float(z)}) but it is a float; "
                           "return it as an integer (int(...)), since it is stored as one.")
        return bool(s_ok and zi is not None and zi.shape == () and int(zi) == want[1])

    return compare_cases(affine_qparams, _ref_affine_qparams, cases, mistakes, equal=equal,
                         describe=lambda v: f"(scale={v[0]:.6g}, zero_point={v[1]!r})"
                         if isinstance(v, tuple) and len(v) == 2 else repr(v))


# ------------------------------------------------------------------------------ 2.3
def _ref_symmetric(x, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = float(np.abs(x).max()) / qmax
    q = np.clip(np.rint(np.asarray(x, np.float64) / scale), -qmax, qmax).astype(np.int64)
    return q, scale


def _sym_mistake(qmax_fn, qmin_fn=None, scale_fn=None):
    def f(x, bits):
        qmax = qmax_fn(bits)
        qmin = qmin_fn(bits) if qmin_fn else -qmax
        amax = float(np.abs(x).max())
        scale = scale_fn(x, bits) if scale_fn else amax / qmax
        return np.clip(np.rint(np.asarray(x, np.float64) / scale), qmin, qmax).astype(np.int64), scale
    return f


@checker("2.3", "symmetric quantization (narrow range)", lesson="02_quantization")
def check_symmetric_quantize(symmetric_quantize):
    """``symmetric_quantize(x, bits)`` returns ``(q, scale)`` with ``qmax = 2**(bits-1) - 1``,
    ``scale = max|x| / qmax`` and ``q = clamp(round(x / scale), -qmax, qmax)``."""
    g = np.random.default_rng(23)
    cases = [
        Case("x = [-1, -0.37, 0, 0.29, 1] at 8 bits", (np.array([-1, -0.37, 0, 0.29, 1], np.float32), 8)),
        Case("x = [-2, 0.3, 0.9] at 4 bits (the most negative value decides the scale)",
             (np.array([-2.0, 0.3, 0.9], np.float32), 4)),
        Case("x = [3, -1, 0.2] at 3 bits", (np.array([3.0, -1.0, 0.2], np.float32), 3)),
        Case("50 random weights at 8 bits", (g.normal(0, 0.1, 50).astype(np.float32), 8)),
        Case("50 random weights at 2 bits (levels -1, 0, +1)", (g.normal(0, 0.1, 50).astype(np.float32), 2)),
    ]
    mistakes = [
        Mistake(_sym_mistake(lambda b: 2 ** (b - 1)),
                "off by one: a signed b-bit integer holds at most 2**(b-1) - 1 (127 for 8 bits); "
                "qmax = 2**(bits-1) - 1 and scale = max|x| / qmax."),
        Mistake(_sym_mistake(lambda b: 2 ** (b - 1) - 1, scale_fn=lambda x, b: float(np.abs(x).max()) / 2 ** (b - 1)),
                "off by one in the scale: divide max|x| by qmax = 2**(bits-1) - 1, not by 2**(bits-1); "
                "otherwise max|x| never reaches the top level."),
        Mistake(_sym_mistake(lambda b: 2 ** b - 1),
                "qmax = 2**bits - 1 is the unsigned maximum; symmetric quantization uses signed "
                "integers: qmax = 2**(bits-1) - 1."),
        Mistake(_sym_mistake(lambda b: 2 ** (b - 1) - 1,
                             scale_fn=lambda x, b: float(x.max() - x.min()) / (2 ** (b - 1) - 1)),
                "the symmetric scale comes from max|x|, not from (max - min)."),
        Mistake(_sym_mistake(lambda b: 2 ** (b - 1) - 1, scale_fn=lambda x, b: float(x.max()) / (2 ** (b - 1) - 1)),
                "use max(|x|) (np.abs(x).max()), not max(x): the most negative value may be larger "
                "in magnitude."),
    ]

    def equal(got, want):
        got, want = got.value, want.value
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Feedback(f"return a tuple (q, scale), got {type(got).__name__}.")
        q, s = got
        try:
            s_ok = abs(float(s) - want[1]) <= 1e-6 * abs(want[1])
        except (TypeError, ValueError):
            return False
        return s_ok and _equal_ints(q, want[0])

    def describe(v):
        v = v.value
        if isinstance(v, (tuple, list)) and len(v) == 2:
            try:
                return f"(q={np.asarray(v[0]).ravel().tolist()[:8]}, scale={float(v[1]):.6g})"
            except (TypeError, ValueError):
                pass
        return repr(v)

    if not callable(symmetric_quantize):
        raise Feedback("expected a function; pass the function itself, without parentheses.")
    boxed = lambda fn: (lambda *a: _Boxed(fn(*a)))  # noqa: E731  (a pair of array and float)
    return compare_cases(boxed(symmetric_quantize), boxed(_ref_symmetric), cases,
                         [Mistake(boxed(m.fn), m.hint) for m in mistakes], equal=equal,
                         describe=describe)


class _Boxed:
    """Holds a (q, scale) pair so the framework treats it as one value, not a ragged array."""

    def __init__(self, value):
        self.value = value
