"""Checkers for lessons 02a (quantization I) and 02b (quantization II).

Lesson 02a_quantization:

2.1 ``quantize_affine(x, scale, zero_point, qmin, qmax)`` -- round half to even, add the zero
    point, clamp; integers out.
2.2 ``affine_qparams(x_min, x_max, bits)`` -- scale from the whole range, integer clamped zero point.
2.3 ``symmetric_quantize(x, bits)`` -- the narrow symmetric range ``[-(2**(b-1) - 1), 2**(b-1) - 1]``.
2.4 ``requantize_int(acc, M, zero_point, qmin, qmax)`` -- integer-only requantization: ``M`` as
    ``M0 * 2**-n`` (np.frexp), a rounding right shift in int64, the zero point, the clamp.
2a.quiz the lesson's self-check quiz.

Lesson 02b_quantized_models:

2.5 ``fake_quant_ste(x, scale, zero_point, qmin, qmax, grad_out)`` -- fake quantization with the
    straight-through estimator: ``(x_hat, grad_x)``, the forward pass quantize-dequantize and the
    backward pass of ``quant.FakeQuant`` (torch's ``fake_quantize_per_tensor_affine``): the
    gradient passes where the clamp left ``round(x / scale) + zero_point`` unchanged, else 0.
2b.quiz the lesson's self-check quiz.

One rule for every integer the lessons call "the integers" (q in 2.1 and 2.3, the zero point in
2.2): the values are compared first, so a wrong formula is named whatever the type; once the
values are right, a float type (``3.0`` instead of ``3``) gets its own hint -- integers are what
is stored.

Every tie below is exact: the scales are powers of two (or ``x`` is a multiple of the scale), so
``x / scale`` is computed without rounding in float32 and in float64 alike and no case depends on
how a near-tie rounds in float arithmetic.
"""
from __future__ import annotations

import numpy as np

from ..quant import FakeQuant, QParams, fake_quantize, quantize_multiplier, requantize
from ._core import Case, Feedback, Mistake, Question, call, checker, compare_cases, quiz


# ------------------------------------------------------------------------------ helpers
def _same(got, want, rtol=1e-6) -> bool:
    """Equal values and shapes: exact when ``want`` holds integers (so 3.0 equals 3 but 3.2 does
    not), close for floats. The type is checked separately (:func:`_integer_type_hint`)."""
    try:
        g, w = np.asarray(got), np.asarray(want)
        if g.shape != w.shape or g.dtype.kind not in "biuf" or w.dtype.kind not in "biuf":
            return False
        if w.dtype.kind in "biu":
            return bool(np.array_equal(g, w))
        return bool(np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=1e-12))
    except Exception:
        return False


def _not_integral(v) -> bool:
    """True for a float value (or array) holding some number that is not a whole number."""
    try:
        a = np.asarray(v)
        return a.dtype.kind == "f" and a.size > 0 and bool(np.any(~np.isfinite(a) | (a != np.round(a))))
    except Exception:
        return False


class _Marker:
    """What a "fallback" Mistake returns: ``equal`` recognises it by a property of the learner's
    answer (e.g. "not whole numbers") rather than by a value. Listed last, it names a mistake
    that no exact model above matched."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<{self.name}>"


class _Part(_Marker):
    """What a "partial" Mistake returns: one element of the answer's pair (``index``) as a
    classic mistake computes it, whatever the other element is. A learner with a wrong scale
    *and* a wrong zero point is then still told about the scale (and, once it is fixed, about
    the zero point), instead of getting no hint."""

    def __init__(self, index, value):
        super().__init__(f"element {index} = {value!r}")
        self.index, self.value = index, value


def _scale_parts(mistakes, index):
    """The same mistakes, matched on the scale (element ``index`` of the pair) alone."""
    def part(fn):
        return lambda *args: _Part(index, fn(*args)[index])
    return [Mistake(part(m.fn), m.hint) for m in mistakes]


def _integer_type_hint(answer, cases, pick, what):
    """After the values agree: every integer the task asks for must be stored as one."""
    for case in cases:
        v = pick(call(answer, case))
        a = np.asarray(v)
        if a.dtype.kind in "iu":
            continue
        if a.ndim == 0:
            head = (f"the value of {what} is right, but you returned {v!r} (a {type(v).__name__}): "
                    "return an integer (int(...))")
        else:
            head = (f"the values of {what} are right, but you returned an array of dtype {a.dtype}: "
                    "return integers (.astype(np.int64))")
        raise Feedback(f"{head} -- quantized values are stored as integers, not floats "
                       f"(seen on {case.description}).")


# ------------------------------------------------------------------------------ 2.1
def _v(x, scale):
    return np.asarray(x, np.float64) / scale


def _ref_quantize(x, scale, zero_point, qmin, qmax):
    return np.clip(np.rint(_v(x, scale)) + zero_point, qmin, qmax).astype(np.int64)


def _rounded_by(rounder):
    return lambda x, s, z, lo, hi: np.clip(rounder(_v(x, s)) + z, lo, hi).astype(np.int64)


def _wrap(q, lo, hi):
    """Keep the low bits: what astype(np.int8/np.uint8) does to an integer outside [lo, hi]."""
    return ((np.asarray(q, np.int64) - lo) % (hi - lo + 1) + lo).astype(np.int64)


def _arm_cast(q, lo, hi):
    """float -> uint8 on ARM: negative numbers saturate at 0, large ones keep their low bits."""
    q = np.asarray(q, np.int64)
    return np.where(q < 0, 0, q % 256) if lo == 0 and hi == 255 else _wrap(q, lo, hi)


_NOT_WHOLE = _Marker("values that are not whole numbers")

_USE_RINT = "Use np.rint, which rounds half to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2)."
_WRAPPED = ("values outside [qmin, qmax] wrapped around instead of saturating: converting an "
            "out-of-range number to a small integer type (astype(np.uint8) or astype(np.int8)) keeps "
            "only its low bits (for a negative float, what it gives depends on the machine). Clamp "
            "first with np.clip(q, qmin, qmax).")
_UINT8 = ("the clamped values are right, but you converted them to np.uint8, which cannot hold "
          "negative numbers (-1 becomes 255): return a signed type, "
          ".astype(np.int64).")
_NEGATIVES_LOST = ("your negative values became 0: clamp to the qmin and qmax you are given (not to a "
                   "fixed uint8 range [0, 255]) and return a signed integer type (np.uint8 cannot "
                   "hold negative numbers): .astype(np.int64).")
_TRUNCATED = "you truncated towards zero (astype(int), int() or np.trunc) instead of rounding. " + _USE_RINT

_QUANTIZE_MISTAKES = [
    # -- rounding (told apart by case 1)
    Mistake(_rounded_by(np.floor),
            "you used floor (np.floor or //): values are rounded down, not to the nearest "
            "integer. " + _USE_RINT),
    Mistake(_rounded_by(np.ceil),
            "you used ceil (np.ceil): values are rounded up, not to the nearest integer. " + _USE_RINT),
    Mistake(_rounded_by(np.trunc), _TRUNCATED),
    Mistake(lambda x, s, z, lo, hi: np.clip(np.trunc(_v(x, s) + z), lo, hi).astype(np.int64), _TRUNCATED),
    Mistake(_rounded_by(lambda v: np.floor(v + 0.5)),
            "you rounded halves up (floor(v + 0.5)): 0.5 -> 1, -0.5 -> 0. " + _USE_RINT),
    Mistake(_rounded_by(lambda v: np.ceil(v - 0.5)),
            "you rounded halves down (ceil(v - 0.5)): 0.5 -> 0, -0.5 -> -1. " + _USE_RINT),
    Mistake(_rounded_by(lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),
            "you rounded halves away from zero (like C's round or Python 2's round): 0.5 -> 1, "
            "-0.5 -> -1. " + _USE_RINT),
    Mistake(_rounded_by(lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5)),
            "you rounded halves towards zero: 1.5 -> 1, -1.5 -> -1. " + _USE_RINT),
    Mistake(lambda x, s, z, lo, hi: np.clip(_v(x, s) + z, lo, hi),
            "you did not round: x / scale is not a whole number. Round it with np.rint."),
    # -- the zero point (told apart by cases 2-4 and 6)
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(_v(x, s) + z), lo, hi).astype(np.int64),
            "add the zero point after rounding: rint(x/s + z) differs from rint(x/s) + z at ties "
            "when z is odd (that is torch's kernel rule, not the formula)."),
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(_v(x, s)), lo, hi).astype(np.int64),
            "you forgot to add the zero point: q = round(x / scale) + zero_point."),
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(_v(x, s)) - z, lo, hi).astype(np.int64),
            "you subtracted the zero point: quantizing adds it, q = round(x / scale) + zero_point "
            "(dequantizing subtracts it: x_hat = scale * (q - zero_point))."),
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(_v(x, s)), lo, hi).astype(np.int64) + z,
            "you clamped before adding the zero point: clamp the final integer, "
            "np.clip(np.rint(x / scale) + zero_point, qmin, qmax)."),
    # -- clamping and the integer type (told apart by cases 1, 4, 5, 6)
    Mistake(lambda x, s, z, lo, hi: (np.rint(_v(x, s)) + z).astype(np.int64),
            "you forgot to clamp: values outside the range must saturate at qmin / qmax "
            "(np.clip(q, qmin, qmax))."),
    # (x86 and ARM convert an out-of-range float differently: both are modelled)
    Mistake(lambda x, s, z, lo, hi: _wrap(np.rint(_v(x, s)) + z, lo, hi), _WRAPPED),
    Mistake(lambda x, s, z, lo, hi: _arm_cast(np.rint(_v(x, s)) + z, lo, hi), _WRAPPED),
    Mistake(lambda x, s, z, lo, hi: _ref_quantize(x, s, z, lo, hi) % 256, _UINT8),
    Mistake(lambda x, s, z, lo, hi: np.maximum(_ref_quantize(x, s, z, lo, hi), 0), _NEGATIVES_LOST),
    Mistake(lambda x, s, z, lo, hi: _wrap(_ref_quantize(x, s, z, lo, hi), -128, 127),
            "the clamped values are right, but you converted them to np.int8, which cannot hold "
            "values above 127 (200 becomes -56): return .astype(np.int64)."),
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(_v(x, s)) + z, -128, 127).astype(np.int64),
            "clamp to the qmin and qmax you are given, not to a fixed int8 range [-128, 127]."),
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(_v(x, s)) + z, 0, 255).astype(np.int64), _NEGATIVES_LOST),
    # -- scale and what is returned
    Mistake(lambda x, s, z, lo, hi: np.clip(np.rint(np.asarray(x, np.float64) * s) + z, lo, hi).astype(np.int64),
            "divide by the scale (x / scale), do not multiply."),
    Mistake(lambda x, s, z, lo, hi: (_ref_quantize(x, s, z, lo, hi) - z) * s,
            "you returned the dequantized floats scale * (q - zero_point); return the integers q."),
    Mistake(lambda *a: _NOT_WHOLE,
            "some of your values are not whole numbers: round x / scale with np.rint before "
            "adding the zero point, and return integers."),
]


@checker("2.1", "quantize with round-half-even and clamping", lesson="02a_quantization")
def check_quantize_affine(quantize_affine):
    """``quantize_affine(x, scale, zero_point, qmin, qmax)`` returns the integers
    ``clamp(round_half_even(x / scale) + zero_point, qmin, qmax)``."""
    g = np.random.default_rng(21)
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    # Case 1: x / 0.25 = +-0.5, +-1.5, +-2.5, +-3.5 (ties) and +-0.75, +-1.25, +-9 (not ties).
    # Every rounding rule gives a different row here (floor and "half down" agree on ties, so do
    # ceil and "half up"; the non-ties separate them), so the rounding is named before anything
    # else; +-9 keeps x * scale (the "multiplied" mistake) from rounding to all zeros.
    ties = f32(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 0.75, -0.75, 1.25, -1.25, 9, -9) * 0.25
    cases = [
        Case("exact ties x/scale = +-0.5, +-1.5, +-2.5, +-3.5 and the non-ties +-0.75, +-1.25, +-9 "
             "(scale 0.25, zero point 0, int8)", (ties, 0.25, 0, -128, 127)),
        # round(x/s + z) = round(x/s) + z at a tie only when z is even: three parities of z
        Case("exact ties x/scale = 0.5, 1.5, -0.5, 2.5, -1.5, 3.5 with the odd zero point 3 (int8)",
             (f32(0.125, 0.375, -0.125, 0.625, -0.375, 0.875), 0.25, 3, -128, 127)),
        Case("exact ties x/scale = +-0.5, +-1.5, +-2.5 with the negative odd zero point -5 (int8)",
             (f32(0.5, 1.5, 2.5, -0.5, -1.5, -2.5) * 0.5, 0.5, -5, -128, 127)),
        Case("exact ties x/scale = +-0.5, +-1.5, +-2.5, 3.5 with the even zero point 128 (uint8)",
             (f32(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5) * 0.125, 0.125, 128, 0, 255)),
        Case("values beyond the range (int8, scale 0.1, zero point 0): they must be clamped",
             (f32(-50.0, -12.8, 0.0, 12.7, 50.0), 0.1, 0, -128, 127)),
        Case("uint8 with zero point 128 and out-of-range values",
             (f32(-20.0, -1.0, 0.0, 0.26, 1.0, 20.0), 0.125, 128, 0, 255)),
        Case("a 4-bit signed grid [-8, 7] with the odd zero point 1: ties and clamping",
             (f32(-5.0, -1.25, -0.75, 0.25, 0.75, 2.0, 5.0), 0.5, 1, -8, 7)),
        Case("100 random values, uint8, scale 0.03125, zero point 37",
             (g.normal(0, 2, 100).astype(np.float32), 0.03125, 37, 0, 255)),
    ]

    def equal(got, want):
        if got is None:
            raise Feedback("your function returned None; return the array of integers.")
        if want is _NOT_WHOLE:
            return _not_integral(got)
        return _same(got, want)

    message = compare_cases(quantize_affine, _ref_quantize, cases, _QUANTIZE_MISTAKES, equal=equal)
    _integer_type_hint(quantize_affine, cases, lambda q: q, "q")
    return message


def _pair_equal(what, not_whole_marker, not_whole):
    """The comparison for answers that are a pair, e.g. ``(scale, zero_point)``: both entries equal,
    or just one of them (a ``_Part`` mistake), or the "not whole numbers" fallback mistake."""
    def equal(got, want):
        if isinstance(got, _Marker):
            return False
        if not isinstance(got, (tuple, list)):
            raise Feedback(f"return a tuple {what}, got {type(got).__name__}.")
        if len(got) != 2:
            raise Feedback(f"return a tuple of exactly two items, {what}; got a "
                           f"{type(got).__name__} of {len(got)}.")
        if want is not_whole_marker:
            return not_whole(got)
        if isinstance(want, _Marker) and not isinstance(want, _Part):
            return False
        if isinstance(want, _Part):
            return _same(got[want.index], want.value)
        return _same(got[0], want[0]) and _same(got[1], want[1])
    return equal


def _pair_describe(show):
    """How a pair answer is shown in a hint (``repr`` when ``show`` cannot format it)."""
    def describe(v):
        if isinstance(v, (tuple, list)) and len(v) == 2:
            try:
                return show(v)
            except (TypeError, ValueError):
                pass
        return repr(v)
    return describe


# ------------------------------------------------------------------------------ 2.2
def _ref_affine_qparams(x_min, x_max, bits):
    qmin, qmax = 0, 2 ** bits - 1
    scale = (x_max - x_min) / (qmax - qmin)
    zp = int(np.clip(np.rint(qmin - x_min / scale), qmin, qmax))
    return scale, zp


def _qp_mistake(scale_fn=None, zp_fn=None, qrange=lambda bits: (0, 2 ** bits - 1)):
    """The reference with one part replaced: ``scale_fn(lo, hi, qmin, qmax)``,
    ``zp_fn(lo, scale, qmin, qmax)``, ``qrange(bits)``."""
    def f(x_min, x_max, bits):
        qmin, qmax = qrange(bits)
        scale = (scale_fn or _good_scale)(x_min, x_max, qmin, qmax)
        return scale, (zp_fn or _good_zp)(x_min, scale, qmin, qmax)
    return f


def _good_scale(lo, hi, qmin, qmax):
    return (hi - lo) / (qmax - qmin)


def _good_zp(lo, s, qmin, qmax):
    return int(np.clip(np.rint(qmin - lo / s), qmin, qmax))


_NOT_WHOLE_ZP = _Marker("a zero point that is not a whole number")


def _widened(lo, hi, bits):
    return _ref_affine_qparams(min(lo, 0.0), max(hi, 0.0), bits)


_OFF_BY_ONE = ("off by one: there are 2**bits levels but only 2**bits - 1 steps between them; "
               "qmax = 2**bits - 1 and scale = (x_max - x_min) / (qmax - qmin).")
_QPARAMS_SCALE_MISTAKES = [
    Mistake(_qp_mistake(scale_fn=lambda lo, hi, a, b: hi / (b - a)),
            "your scale uses only x_max; the step must cover the whole range: "
            "scale = (x_max - x_min) / (qmax - qmin)."),
    Mistake(_qp_mistake(scale_fn=lambda lo, hi, a, b: max(abs(lo), abs(hi)) / (b - a)),
            "your scale uses max(|x_min|, |x_max|) -- that is the symmetric scheme. For affine "
            "use scale = (x_max - x_min) / (qmax - qmin)."),
    Mistake(_qp_mistake(scale_fn=lambda lo, hi, a, b: (hi - lo) / (b - a + 1)), _OFF_BY_ONE),
]
_QPARAMS_MISTAKES = [
    Mistake(lambda lo, hi, bits: _ref_affine_qparams(lo, hi, bits)[::-1],
            "you returned (zero_point, scale); return (scale, zero_point), in that order."),
    Mistake(_widened, "you widened the range to contain 0 (as torch's observers do before "
            "computing qparams); this exercise asks for the formula on x_min and x_max as given."),
    # -- the scale
    *_QPARAMS_SCALE_MISTAKES,
    # -- the zero point
    Mistake(_qp_mistake(zp_fn=lambda lo, s, a, b: int(np.clip(a - lo / s, a, b))),
            "your zero point is rounded down (int() truncates, np.floor floors): round to the "
            "nearest integer with np.rint, then int()."),
    # "half up" before ceil: both give 3 on the tie 2.5, and ceil is told apart earlier (198.33)
    Mistake(_qp_mistake(zp_fn=lambda lo, s, a, b: int(np.clip(np.floor(a - lo / s + 0.5), a, b))),
            "your zero point rounds the tie 2.5 up (floor(v + 0.5) or int(v + 0.5)); round half "
            "to even with np.rint, as in exercise 2.1 (2.5 -> 2)."),
    Mistake(_qp_mistake(zp_fn=lambda lo, s, a, b: int(np.clip(np.ceil(a - lo / s), a, b))),
            "your zero point is rounded up (np.ceil): round to the nearest integer with np.rint."),
    Mistake(_qp_mistake(zp_fn=lambda lo, s, a, b: int(np.rint(a - lo / s))),
            "your zero point is not clamped: it must lie in [qmin, qmax] "
            "(np.clip(zp, qmin, qmax)), even when the range does not contain 0."),
    Mistake(_qp_mistake(zp_fn=lambda lo, s, a, b: int(np.clip(np.rint(a + lo / s), a, b))),
            "the zero point's sign is wrong: zero_point = qmin - x_min / scale, so that x_min "
            "maps to qmin (for x_min < 0 the zero point is above qmin)."),
    # -- the integer range (after "not clamped": on x_min=1, x_max=3 the signed range gives the
    #    same unclamped zero point)
    Mistake(_qp_mistake(qrange=lambda bits: (0, 2 ** bits)), _OFF_BY_ONE),
    Mistake(_qp_mistake(qrange=lambda bits: (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)),
            "you used the signed range [-2**(bits-1), 2**(bits-1) - 1]; this exercise asks for "
            "the unsigned one, qmin = 0 and qmax = 2**bits - 1."),
    # -- the scale alone, whatever the zero point (a learner with two mistakes)
    *_scale_parts(_QPARAMS_SCALE_MISTAKES, 0),
    Mistake(lambda *a: _NOT_WHOLE_ZP,
            "your zero point is not a whole number: round it (np.rint) so that the real number "
            "0.0 is represented exactly by an integer, then int()."),
]


@checker("2.2", "scale and zero point of an affine quantizer", lesson="02a_quantization")
def check_affine_qparams(affine_qparams):
    """``affine_qparams(x_min, x_max, bits)`` returns ``(scale, zero_point)`` for the unsigned
    range ``[0, 2**bits - 1]``: ``scale = (x_max - x_min) / (qmax - qmin)``,
    ``zero_point = clamp(round(qmin - x_min / scale), qmin, qmax)`` as a Python/NumPy int."""
    cases = [
        # qmin - x_min / scale = 5.83: floor/int() give 5, rint 6
        Case("x_min=-5, x_max=1, 3 bits", (-5.0, 1.0, 3)),
        # 198.33: ceil gives 199, rint 198
        Case("x_min=-0.7, x_max=0.2, 8 bits (qmin - x_min/scale = 198.33 is not an integer)",
             (-0.7, 0.2, 8)),
        # scale 0.5 exactly, qmin - x_min / scale = 2.5 exactly: half to even gives 2
        Case("x_min=-1.25, x_max=0.25, 2 bits (qmin - x_min/scale = 2.5, an exact tie)", (-1.25, 0.25, 2)),
        Case("x_min=-1, x_max=2, 8 bits", (-1.0, 2.0, 8)),
        Case("x_min=-0.3, x_max=0.9, 4 bits", (-0.3, 0.9, 4)),
        Case("a range that does not contain 0: x_min=1, x_max=3, 8 bits (the zero point must be clamped)",
             (1.0, 3.0, 8)),
        Case("an all-negative range x_min=-4, x_max=-1, 8 bits (clamp at qmax)", (-4.0, -1.0, 8)),
    ]

    equal = _pair_equal("(scale, zero_point)", _NOT_WHOLE_ZP, lambda got: _not_integral(got[1]))
    describe = _pair_describe(lambda v: f"(scale={float(v[0]):.6g}, zero_point={v[1]!r})")
    message = compare_cases(affine_qparams, _ref_affine_qparams, cases, _QPARAMS_MISTAKES, equal=equal,
                            describe=describe)
    _integer_type_hint(affine_qparams, cases, lambda v: v[1], "the zero point")
    return message


# ------------------------------------------------------------------------------ 2.3
def _ref_symmetric(x, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = float(np.abs(x).max()) / qmax
    q = np.clip(np.rint(np.asarray(x, np.float64) / scale), -qmax, qmax).astype(np.int64)
    return q, scale


def _sym_mistake(qmax_fn=lambda b: 2 ** (b - 1) - 1, qmin_fn=None, scale_fn=None, rounder=np.rint):
    """The reference with one part replaced: the top level ``qmax_fn(bits)``, the bottom level
    ``qmin_fn(bits)`` (default ``-qmax``), ``scale_fn(x, bits)`` (default max|x| / qmax) and the
    rounding."""
    def f(x, bits):
        qmax = qmax_fn(bits)
        qmin = qmin_fn(bits) if qmin_fn else -qmax
        scale = scale_fn(x, bits) if scale_fn else float(np.abs(x).max()) / qmax
        return np.clip(rounder(np.asarray(x, np.float64) / scale), qmin, qmax).astype(np.int64), scale
    return f


def _sym_as_affine(x, bits):
    """What the affine scheme of exercise 2.2 gives on the range [min x, max x]."""
    x = np.asarray(x, np.float64)
    qmax = 2 ** bits - 1
    scale = float(x.max() - x.min()) / qmax
    zp = np.clip(np.rint(-x.min() / scale), 0, qmax)
    return np.clip(np.rint(x / scale) + zp, 0, qmax).astype(np.int64), scale


def _sym_offset(x, bits):
    """The right symmetric integers shifted into the unsigned range (zero point 2**(bits-1))."""
    q, scale = _ref_symmetric(x, bits)
    return q + 2 ** (bits - 1), scale


_SYM_NOT_WHOLE = _Marker("q that is not whole numbers")


_NARROW = "qmax = 2**(bits-1) - 1"
# one mistake per wrong scale (each also matched on the scale alone, see _scale_parts)
_SYM_SCALE_MISTAKES = [
    Mistake(_sym_mistake(lambda b: 2 ** (b - 1)),
            "off by one: a signed b-bit integer holds at most 2**(b-1) - 1 (127 for 8 bits); "
            f"{_NARROW} and scale = max|x| / qmax."),
    Mistake(_sym_mistake(qmin_fn=lambda b: -(2 ** (b - 1)),
                         scale_fn=lambda x, b: float(np.abs(x).max()) / ((2 ** b - 1) / 2)),
            "that is torch's per_tensor_symmetric convention (scale = max|x| / 127.5, integers "
            "in [-128, 127]); this exercise asks for TFLite's narrow range: scale = max|x| / qmax "
            f"with {_NARROW} and q in [-qmax, qmax]."),
    Mistake(_sym_mistake(lambda b: 2 ** b - 1),
            "qmax = 2**bits - 1 is the unsigned maximum; symmetric quantization uses signed "
            f"integers: {_NARROW}."),
    Mistake(_sym_mistake(scale_fn=lambda x, b: float(x.max() - x.min()) / (2 ** (b - 1) - 1)),
            "the symmetric scale comes from max|x|, not from (max - min)."),
    Mistake(_sym_mistake(scale_fn=lambda x, b: float(x.max()) / (2 ** (b - 1) - 1)),
            "use max(|x|) (np.abs(x).max()), not max(x): the most negative value may be larger "
            "in magnitude."),
    Mistake(_sym_as_affine,
            "that is the affine scheme of exercise 2.2 (scale from max - min, a zero point, "
            f"unsigned integers); symmetric has zero point 0, scale = max|x| / qmax, {_NARROW}, "
            "and signed integers."),
]
_SYMMETRIC_MISTAKES = [
    Mistake(lambda x, b: _ref_symmetric(x, b)[::-1],
            "you returned (scale, q); return (q, scale), in that order."),
    Mistake(lambda x, b: (_ref_symmetric(x, b)[0] * _ref_symmetric(x, b)[1], _ref_symmetric(x, b)[1]),
            "you returned the dequantized floats q * scale; return the integers q."),
    # -- the integer range and the scale
    *_SYM_SCALE_MISTAKES,
    Mistake(_sym_mistake(lambda b: 2 ** (b - 1), qmin_fn=lambda b: -(2 ** (b - 1))),
            "off by one: a signed b-bit integer holds at most 2**(b-1) - 1 (127 for 8 bits); "
            f"{_NARROW} and scale = max|x| / qmax."),
    Mistake(_sym_mistake(scale_fn=lambda x, b: float(np.abs(x).max()) / 2 ** (b - 1)),
            f"off by one in the scale: divide max|x| by {_NARROW}, not by 2**(bits-1); "
            "otherwise max|x| never reaches the top level."),
    Mistake(_sym_offset,
            "symmetric quantization has zero point 0: do not shift q by 2**(bits-1); q is signed, "
            "in [-qmax, qmax]."),
    # -- the rounding (case 1: exact ties and non-ties)
    Mistake(_sym_mistake(rounder=np.floor),
            "you used floor (np.floor or //): values are rounded down, not to the nearest "
            "integer. " + _USE_RINT),
    Mistake(_sym_mistake(rounder=np.ceil),
            "you used ceil (np.ceil): values are rounded up, not to the nearest integer. " + _USE_RINT),
    Mistake(_sym_mistake(rounder=np.trunc), _TRUNCATED),
    Mistake(_sym_mistake(rounder=lambda v: np.floor(v + 0.5)),
            "you rounded halves up (floor(v + 0.5)): 0.5 -> 1, -0.5 -> 0. " + _USE_RINT),
    Mistake(_sym_mistake(rounder=lambda v: np.ceil(v - 0.5)),
            "you rounded halves down (ceil(v - 0.5)): 0.5 -> 0, -0.5 -> -1. " + _USE_RINT),
    Mistake(_sym_mistake(rounder=lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),
            "you rounded halves away from zero (like C's round): 0.5 -> 1, -0.5 -> -1. " + _USE_RINT),
    Mistake(lambda x, b: (np.asarray(x, np.float64) / _ref_symmetric(x, b)[1], _ref_symmetric(x, b)[1]),
            "you did not round: x / scale is not a whole number. Round it with np.rint."),
    # -- the scale alone, whatever q is (a learner with two mistakes)
    *_scale_parts(_SYM_SCALE_MISTAKES, 1),
    Mistake(lambda *a: _SYM_NOT_WHOLE,
            "some of your q are not whole numbers: round x / scale with np.rint and return "
            "integers."),
]


@checker("2.3", "symmetric quantization (narrow range)", lesson="02a_quantization")
def check_symmetric_quantize(symmetric_quantize):
    """``symmetric_quantize(x, bits)`` returns ``(q, scale)`` with ``qmax = 2**(bits-1) - 1``,
    ``scale = max|x| / qmax`` and ``q = clamp(round(x / scale), -qmax, qmax)``."""
    g = np.random.default_rng(23)
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    cases = [
        # max|x| = 1.75 at 4 bits: scale = 1.75 / 7 = 0.25 exactly, so x / scale hits exact ties
        # (+-0.5, +-1.5, 2.5) and the non-ties +-0.75, 1.25 that tell floor/ceil from "half down/up"
        Case("x = [1.75, +-0.125, +-0.375, 0.625, +-0.1875, 0.3125] at 4 bits (scale 1.75 / 7 = "
             "0.25 exactly: x / scale = 7, the exact ties +-0.5, +-1.5, 2.5 and +-0.75, 1.25)",
             (f32(1.75, 0.125, -0.125, 0.375, -0.375, 0.625, 0.1875, -0.1875, 0.3125), 4)),
        Case("x = [-2, 0.3, 0.9] at 4 bits (the most negative value decides the scale)",
             (f32(-2.0, 0.3, 0.9), 4)),
        Case("x = [-1, -0.37, 0, 0.29, 1] at 8 bits", (f32(-1, -0.37, 0, 0.29, 1), 8)),
        Case("x = [3, -1, 0.2] at 3 bits", (f32(3.0, -1.0, 0.2), 3)),
        Case("50 random weights at 8 bits", (g.normal(0, 0.1, 50).astype(np.float32), 8)),
        Case("50 random weights at 2 bits (levels -1, 0, +1)", (g.normal(0, 0.1, 50).astype(np.float32), 2)),
    ]

    equal = _pair_equal("(q, scale)", _SYM_NOT_WHOLE,
                        lambda got: _not_integral(got[0]) and np.ndim(got[0]) == 1)
    describe = _pair_describe(lambda v: f"(q={np.asarray(v[0]).ravel().tolist()[:8]}, scale={float(v[1]):.6g})")
    message = compare_cases(symmetric_quantize, _ref_symmetric, cases, _SYMMETRIC_MISTAKES, equal=equal,
                            describe=describe)
    _integer_type_hint(symmetric_quantize, cases, lambda v: v[0], "q")
    return message


# ------------------------------------------------------------------------------ 2.4
def _ref_requantize_int(acc, M, zero_point, qmin, qmax):
    M0, n = quantize_multiplier(M)
    return requantize(acc, M0, n, zero_point, qmin, qmax)


def _multiplier(M):
    """(M0, n) as Python ints, with the mantissa normalised (the right way)."""
    mant, exp = np.frexp(M)
    M0, n = int(np.rint(mant * 2.0 ** 31)), 31 - int(exp)
    return (M0 // 2, n - 1) if M0 == 2 ** 31 else (M0, n)


def _requant_mistake(multiplier=_multiplier, shift=lambda p, n: (p + (1 << (n - 1))) >> n,
                     zp=lambda y, z: y + z, clamp=True):
    """The reference with one part replaced: ``multiplier(M) -> (M0, n)``, the shift
    ``shift(acc * M0, n)``, how the zero point is applied, and whether the result is clamped."""
    def f(acc, M, zero_point, qmin, qmax):
        M0, n = multiplier(M)
        y = zp(shift(np.asarray(acc, np.int64) * M0, n), zero_point)
        return np.clip(y, qmin, qmax) if clamp else y
    return f


def _float_requant(fn):
    """A float64 version: ``fn(acc, M) -> y`` real, then the zero point and the clamp."""
    def f(acc, M, zero_point, qmin, qmax):
        return np.clip(fn(np.asarray(acc, np.float64), M) + zero_point, qmin, qmax).astype(np.int64)
    return f


def _M0_float(acc, M):
    M0, n = _multiplier(M)
    return acc * M0 / 2.0 ** n


def _wrapped_int32(acc, M, zero_point, qmin, qmax):
    """acc * M0 computed in int32 (it wraps around), the rest right."""
    M0, n = _multiplier(M)
    p = ((np.asarray(acc, np.int64) * M0 + 2 ** 31) % 2 ** 32) - 2 ** 31
    return np.clip(((p + (1 << (n - 1))) >> n) + zero_point, qmin, qmax)


_SHIFT = "(acc * M0 + 2**(n-1)) >> n"
_FLOAT = ("you used float arithmetic: the whole point is integer-only arithmetic. In float64, "
          "acc * M is not acc * M0 * 2**-n (M0 is M rounded to 31 bits) and acc * M0 above 2**53 "
          "is itself rounded, so near a tie the result moves by 1. Convert acc to int64 and "
          f"shift: {_SHIFT}.")
_HALF_EVEN = (" np.rint and np.round also round ties to even, whereas the rounding shift rounds "
              "them up, towards +inf (2.5 -> 3, -2.5 -> -2).")
_UNNORMALISED = ("your M0 is M * 2**31 without normalising the mantissa: for a small M it keeps "
                 "only a few significant bits (M = 3e-9 gives M0 = 6, a 7% error). Use "
                 "mantissa, exponent = np.frexp(M) (mantissa in [0.5, 1)), "
                 "M0 = round(mantissa * 2**31) and n = 31 - exponent, so that M0 is in "
                 "[2**30, 2**31) and keeps 31 significant bits.")
_REQUANT_MISTAKES = [
    # -- the shift (case 1: exact ties and non-ties, M = 0.25)
    Mistake(_requant_mistake(shift=lambda p, n: p >> n),
            "your shift truncates: (acc * M0) >> n rounds down (towards -inf), not to the nearest "
            f"integer. Add the rounding term 2**(n-1), half of 2**n, before shifting: {_SHIFT}."),
    Mistake(_requant_mistake(shift=lambda p, n: (p + (1 << n)) >> n),
            "your rounding term is 2**n, which rounds up (ceil-like); it is half of that, "
            f"2**(n-1): {_SHIFT}."),
    # -- float arithmetic (cases 1, 2: M = 0.1 is slightly above M0 * 2**-34; case 7: acc * M0 > 2**53)
    Mistake(_float_requant(lambda a, M: np.rint(a * M)), _FLOAT + _HALF_EVEN),
    Mistake(_float_requant(lambda a, M: np.floor(a * M + 0.5)), _FLOAT),
    Mistake(_float_requant(lambda a, M: np.rint(_M0_float(a, M))), _FLOAT + _HALF_EVEN),
    Mistake(_float_requant(lambda a, M: np.floor(_M0_float(a, M) + 0.5)), _FLOAT),
    # -- the multiplier (cases 4 and 5: small M)
    Mistake(_requant_mistake(multiplier=lambda M: (int(np.rint(M * 2.0 ** 31)), 31)), _UNNORMALISED),
    Mistake(_requant_mistake(multiplier=lambda M: (int(M * 2.0 ** 31), 31)), _UNNORMALISED),
    # -- the zero point and the clamp (cases 3, 5, 6)
    Mistake(_requant_mistake(zp=lambda y, z: y),
            "you forgot the zero point: the output is zero_point + round(acc * M), then clamped."),
    Mistake(_requant_mistake(zp=lambda y, z: y - z),
            "you subtracted the zero point: requantizing adds it, "
            "clamp(zero_point + round(acc * M), qmin, qmax)."),
    Mistake(_requant_mistake(clamp=False),
            "you forgot the clamp: values outside [qmin, qmax] must saturate "
            "(np.clip(q, qmin, qmax))."),
    Mistake(lambda acc, M, z, lo, hi: _requant_mistake(zp=lambda y, z: y)(acc, M, z, lo, hi) + z,
            "you clamped before adding the zero point: clamp the final integer, "
            "np.clip(y + zero_point, qmin, qmax)."),
    Mistake(_wrapped_int32,
            "acc * M0 overflowed: in int32 the product wraps around. It needs up to 62 bits: "
            "convert acc to int64 first (np.asarray(acc).astype(np.int64))."),
]


@checker("2.4", "integer-only requantization", lesson="02a_quantization")
def check_requantize_int(requantize_int):
    """``requantize_int(acc, M, zero_point, qmin, qmax)`` returns the int64 array
    ``clamp(zero_point + ((acc * M0 + 2**(n-1)) >> n), qmin, qmax)`` with ``M = M0 * 2**-n``,
    ``M0`` in ``[2**30, 2**31)`` -- what ``quant.quantize_multiplier`` and ``quant.requantize``
    give."""
    g = np.random.default_rng(24)
    i32 = lambda *v: np.array(v, np.int32)  # noqa: E731
    int32_min, int32_max = -2 ** 31, 2 ** 31 - 1
    cases = [
        # M = 0.25 = 2**30 * 2**-32: acc * M is exact, ties at acc = +-2, +-6, +-10
        Case("M = 0.25 (M0 = 2**30, n = 32): exact ties acc * M = +-0.5, +-1.5, +-2.5 and the "
             "non-ties +-0.75, +-1.25, 7 (zero point 0, int8)",
             (i32(2, -2, 6, -6, 10, -10, 3, -3, 5, -5, 28, 0), 0.25, 0, -128, 127)),
        # M0 * 2**-34 = 0.0999999999767 < 0.1: acc * M0 is just below each tie, float says tie
        Case("M = 0.1 (M0 * 2**-34 is slightly below 0.1, so acc = 5, 15, 25 give just below "
             "0.5, 1.5, 2.5; zero point 0, int8)",
             (i32(5, 15, 25, -5, -15, 35, 7, 12, -13, 100), 0.1, 0, -128, 127)),
        Case("uint8 with zero point 128, M = 0.0625, exact ties and values beyond the range",
             (i32(8, -8, 24, -24, 40, 0, 100, -100, 3000, -3000), 0.0625, 128, 0, 255)),
        # frexp(3e-9) = (0.805, -28): M0 = 1728724022, n = 59; M * 2**31 = 6.44 keeps one digit
        Case("a small M = 3e-9 (n = 59) with accumulators across the int32 range, zero point -3 (int8)",
             (g.integers(int32_min, int32_max, 20, endpoint=True).astype(np.int32), 3e-9, -3, -128, 127)),
        Case("M = 1.5e-5, 200 random int32 accumulators, zero point 7, int16 output range",
             (g.integers(int32_min, int32_max, 200, endpoint=True).astype(np.int32), 1.5e-5, 7,
              -32768, 32767)),
        Case("a 2-D accumulator (3, 4), M = 0.0123, zero point -5 (int8, some values clamped)",
             (g.integers(-20000, 20000, (3, 4)).astype(np.int32), 0.0123, -5, -128, 127)),
        # acc * M0 mod 2**32 = 2**31 - 2, -4, -6 (just below a tie) for the large acc, and
        # |acc * M0| > 2**53, so float64 rounds the product onto the tie
        Case("M = 0.3 (n = 32), an int32 output range and accumulators near 2**31 whose "
             "acc * M0 lies just below a tie (float64 cannot hold acc * M0 exactly)",
             (i32(2147483638, 2147483628, 2147483618, -5, -25, 5), 0.3, 0, int32_min, int32_max)),
        Case("an empty accumulator (shape (0,)): return an empty integer array",
             (np.zeros(0, np.int32), 0.3, 0, -128, 127)),
    ]

    def equal(got, want):
        if got is None:
            raise Feedback("your function returned None; return the array of integers.")
        return _same(got, want)

    message = compare_cases(requantize_int, _ref_requantize_int, cases, _REQUANT_MISTAKES, equal=equal)
    _integer_type_hint(requantize_int, cases, lambda q: q, "q")
    return message


# ------------------------------------------------------------------------------ 2a.quiz
check_quiz_a = quiz("2a.quiz", "02a_quantization", [
    Question(
        "A 4-bit **unsigned affine** quantizer (integers 0 to 15) covers the range "
        "$[-1.0, 2.0]$. What is its zero point?",
        answer=5, tol=0,
        why={"number": "compute the scale first, s = (x_max - x_min) / (qmax - qmin), then the "
                       "integer that stands for 0.0: z = qmin - round(x_min / s)."}),
    Question(
        "In section 3 the rescaled model (one layer-1 channel 16 times wider, same function) "
        "collapsed to about chance with 4-bit **per-tensor** weights but kept its accuracy per "
        "channel. What is the cause?",
        answer="b",
        options={"a": "per-channel quantization stores more bits per weight",
                 "b": "one scale must cover the outlier channel, so the step is too coarse for "
                      "every other channel and most of their weights round to a few levels",
                 "c": "the rescaling changed what the network computes",
                 "d": "per-tensor min-max clips the outlier channel's largest weights"},
        why={"a": "both use 4 bits per weight; per channel only adds one scale per output "
                  "channel, a few hundred bytes.",
             "c": "ReLU is positively homogeneous: the float accuracy was the same before and "
                  "after the rescaling (the cell printed it).",
             "d": "min-max takes the range from the largest entry, so nothing is clipped."}),
    Question(
        "With a power-of-two scale $s$ and an exact tie, $x / s = 2.5$, when do `Q.quantize` "
        "(round, then add $z$) and torch 2.13's `quantize_per_tensor` give different integers?",
        answer="a",
        options={"a": "when the zero point is odd",
                 "b": "on every tie, whatever the zero point",
                 "c": "only when the scale is not a power of two",
                 "d": "never: they differ only next to a tie, not on one"},
        why={"b": "with an even zero point (z = 8 in section 1's table) no value changed: adding "
                  "an even integer before rounding keeps the even neighbour even.",
             "c": "with s = 0.125, a power of two, 27 of the 40 ties moved in one row of "
                  "section 1's table.",
             "d": "section 1's table shows exact ties (s = 0.125, x / s exactly k + 1/2) that "
                  "moved to another integer."}),
    Question(
        "In section 4's table, on the same activations, both clipping observers (percentile, "
        "MSE) beat min-max at 4 bits; at 8 bits percentile loses about 8 dB to min-max and MSE "
        "only ties it (48.5 vs 48.2 dB). Why does giving up range pay off at 4 bits only?",
        answer="c",
        options={"a": "at 8 bits the activations have no outliers",
                 "b": "clipping error disappears at 4 bits",
                 "c": "at 4 bits the step is 16 times coarser, so rounding error dominates and "
                      "giving up a little range for a finer step pays off",
                 "d": "percentile and MSE observers are meant for low bit widths only"},
        why={"a": "the activations, and their outliers, are the same at both bit widths: only "
                  "the grid changed.",
             "b": "clipping error depends on the range, not on the bit width: a clipped value is "
                  "clamped at any bit width.",
             "d": "an observer only picks a range, at any bit width: the MSE search ran at 8 "
                  "bits too (section 4's table)."}),
    Question(
        "An int8 Linear layer accumulates in int32 and must then multiply by the real number "
        "$M = s_x s_w / s_y$ (about 0.001 in section 5). How does an integer-only kernel "
        "(Jacob et al. 2018) apply $M$?",
        answer="b",
        options={"a": "it converts the accumulator to float, multiplies by M and rounds",
                 "b": "it multiplies by an integer M0 and does a rounding right shift by n, "
                      "with M = M0 * 2**-n",
                 "c": "it divides the accumulator by the integer round(1 / M)",
                 "d": "it skips M: the next layer's scale absorbs it"},
        why={"a": "that is float arithmetic, which integer-only hardware does not have (or does "
                  "slowly); the point is to stay in integers.",
             "c": "1 / M is not an integer; rounding it (about 1000) changes the result by up to "
                  "a part in 2000 and integer division truncates instead of rounding.",
             "d": "M is about 0.001, far from 1, and it differs per output channel: the output "
                  "integers would be wrong by that factor."}),
])


# ------------------------------------------------------------------------------ 2.5
def _ref_fake_quant_ste(x, scale, zero_point, qmin, qmax, grad_out):
    """The library's FakeQuant with the given quantizer: forward ``fake_quantize``, backward the
    clipped straight-through estimator (torch's ``fake_quantize_per_tensor_affine`` gradient)."""
    qp = QParams(scale, zero_point, qmin, qmax)
    fq = FakeQuant(bits=8)
    fq.qp = qp
    x = np.asarray(x)
    return fake_quantize(x, qp), fq.backward(x, np.asarray(grad_out))


def _q_before_clamp(x, s, z, rounder=np.rint):
    return rounder(np.asarray(x, np.float64) / s) + z


def _x_hat(x, s, z, lo, hi, rounder=np.rint):
    return s * (np.clip(_q_before_clamp(x, s, z, rounder), lo, hi) - z)


def _inside(x, s, z, lo, hi):
    q = _q_before_clamp(x, s, z)
    return (q >= lo) & (q <= hi)


def _grad_mistake(fn):
    """The right forward pass with the gradient ``fn(x, s, z, lo, hi, g)``."""
    def f(x, s, z, lo, hi, g):
        return _x_hat(x, s, z, lo, hi), fn(x, s, z, lo, hi, np.asarray(g, np.float64))
    return f


def _passes_where(inside):
    """A gradient that passes where ``inside(x, s, z, lo, hi)``, 0 elsewhere."""
    return _grad_mistake(lambda x, s, z, lo, hi, g: np.where(inside(np.asarray(x, np.float64), s, z, lo, hi), g, 0.0))


def _forward_mistake(fn):
    """The wrong forward ``fn(x, s, z, lo, hi)`` with the right gradient."""
    def f(x, s, z, lo, hi, g):
        return fn(np.asarray(x, np.float64), s, z, lo, hi), np.where(_inside(x, s, z, lo, hi), g, 0.0)
    return f


def _rounded_ste(rounder):
    """Forward and gradient both from ``rounder(x / s) + z`` instead of ``np.rint``."""
    def f(x, s, z, lo, hi, g):
        q = _q_before_clamp(x, s, z, rounder)
        return s * (np.clip(q, lo, hi) - z), np.where((q >= lo) & (q <= hi), g, 0.0)
    return f


def _zp_before_rounding(x, s, z, lo, hi, g):
    q = np.rint(np.asarray(x, np.float64) / s + z)
    return s * (np.clip(q, lo, hi) - z), np.where((q >= lo) & (q <= hi), g, 0.0)


def _parts(mistakes, index):
    """The same mistakes, matched on element ``index`` of the pair alone (a learner with a
    wrong forward pass *and* a wrong gradient is still told about each) -- but only on a case
    where that element differs from the reference's: where the mistake gives the right value
    (e.g. a range test that ignores the zero point, on a case where nothing lies near the edges)
    it says nothing about the half the answer got wrong, so it must not match there."""
    def part(fn):
        def f(*args):
            value = fn(*args)[index]
            if _same(value, _ref_fake_quant_ste(*args)[index]):
                return _NO_MATCH
            return _Part(index, value)
        return f
    return [Mistake(part(m.fn), m.hint) for m in mistakes]


_NO_MATCH = _Marker("no match: the mistake gives the reference's value here")


_STE_RULE = ("the gradient passes (grad_x = grad_out) where the clamp left the integer "
             "round(x / scale) + zero_point unchanged, i.e. qmin <= round(x / scale) + zero_point "
             "<= qmax, and is 0 where it clamped")
_EDGES = ("off by one at the edges: a value that rounds exactly to qmin or qmax is a level of the "
          "grid, not clipped, so it keeps its gradient: use <= on both sides, "
          "qmin <= round(x / scale) + zero_point <= qmax.")
_NO_ZP_RANGE = ("your range ignores the zero point: the integers qmin..qmax stand for the reals "
                "(qmin - zero_point) * scale .. (qmax - zero_point) * scale, not qmin * scale .. "
                "qmax * scale. Test round(x / scale) + zero_point against [qmin, qmax].")
_TF_RANGE = ("your gradient stops exactly at the last levels: you tested x against "
             "[(qmin - zero_point) * scale, (qmax - zero_point) * scale] (TensorFlow's "
             "fake_quant convention). This exercise follows torch's fake_quantize_per_tensor_affine "
             "and compresslab's FakeQuant: what counts is whether the clamp changed the integer, "
             "qmin <= round(x / scale) + zero_point <= qmax -- an x less than half a step beyond "
             "the last level rounds onto it and keeps its gradient.")
_GRAD_MISTAKES = [
    Mistake(_grad_mistake(lambda x, s, z, lo, hi, g: g),
            "your gradient passes everywhere (d x_hat / dx = 1 for every x): a clipped value gets "
            "gradient 0, because moving it a little does not change x_hat. (If you tested the "
            "clamped integer, it is always inside [qmin, qmax]: test the integer before the "
            f"clamp.) The rule: {_STE_RULE}."),
    Mistake(_grad_mistake(lambda x, s, z, lo, hi, g: np.ones_like(g)),
            "your gradient is 1 everywhere: return the gradient with respect to x, which is "
            f"grad_out times d x_hat / dx (chain rule). The rule: {_STE_RULE}."),
    Mistake(_grad_mistake(lambda x, s, z, lo, hi, g: _inside(x, s, z, lo, hi).astype(np.float64)),
            "you returned the 0/1 mask d x_hat / dx itself: multiply it by the upstream gradient "
            "grad_out (chain rule), grad_x = grad_out where the value was not clamped, 0 elsewhere."),
    Mistake(_grad_mistake(lambda x, s, z, lo, hi, g: np.zeros_like(g)),
            "your gradient is 0 everywhere: that is the true derivative of round (0 almost "
            "everywhere), which is why a network cannot learn through it. The straight-through "
            "estimator treats round as the identity in the backward pass: "
            f"{_STE_RULE}."),
    Mistake(_grad_mistake(lambda x, s, z, lo, hi, g: np.where(_inside(x, s, z, lo, hi), g, 0.0) / s),
            "your gradient is divided by the scale: in x_hat = scale * (round(x / scale) + z - z) "
            "the 1/scale and the scale cancel, so d x_hat / dx is exactly 1 where the value is "
            "not clamped."),
    Mistake(_grad_mistake(lambda x, s, z, lo, hi, g: np.where(_inside(x, s, z, lo, hi), g, 0.0) * s),
            "your gradient is multiplied by the scale: in x_hat = scale * (round(x / scale) + z - z) "
            "the 1/scale and the scale cancel, so d x_hat / dx is exactly 1 where the value is "
            "not clamped."),
    # -- the edges of the range (cases 1 and 2)
    Mistake(_passes_where(lambda x, s, z, lo, hi: (x >= (lo - z) * s) & (x <= (hi - z) * s)), _TF_RANGE),
    Mistake(_passes_where(lambda x, s, z, lo, hi: (x > (lo - z) * s) & (x < (hi - z) * s)), _TF_RANGE),
    Mistake(_passes_where(lambda x, s, z, lo, hi: (np.rint(x / s) >= lo) & (np.rint(x / s) <= hi)), _NO_ZP_RANGE),
    Mistake(_passes_where(lambda x, s, z, lo, hi: (x >= lo * s) & (x <= hi * s)), _NO_ZP_RANGE),
    Mistake(_passes_where(lambda x, s, z, lo, hi: (_q_before_clamp(x, s, z) > lo) & (_q_before_clamp(x, s, z) < hi)),
            _EDGES),
    Mistake(_passes_where(lambda x, s, z, lo, hi: (_q_before_clamp(x, s, z) >= lo) & (_q_before_clamp(x, s, z) < hi)),
            _EDGES),
    Mistake(_passes_where(lambda x, s, z, lo, hi: (_q_before_clamp(x, s, z) > lo) & (_q_before_clamp(x, s, z) <= hi)),
            _EDGES),
]
_FORWARD_MISTAKES = [
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi)),
            "your forward pass returns the integers q: fake quantization dequantizes them right "
            "away, x_hat = scale * (q - zero_point) -- floats that lie on the grid."),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: s * np.clip(np.rint(x / s) + z, lo, hi)),
            "your forward pass forgot to subtract the zero point when dequantizing: "
            "x_hat = scale * (q - zero_point)."),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi) - z),
            "your forward pass forgot the scale when dequantizing: x_hat = scale * (q - zero_point)."),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: s * np.rint(x / s)),
            "your forward pass does not clamp: values beyond the grid must saturate at the first "
            "or last level (clamp q to [qmin, qmax] before dequantizing)."),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: s * (np.clip(x / s + z, lo, hi) - z)),
            "your forward pass does not round: x_hat must be one of the grid's levels. Round x / "
            "scale with np.rint (half to even) before adding the zero point."),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: x),
            "your forward pass returns x unchanged: the straight-through estimator pretends round "
            "is the identity only in the backward pass; the forward pass quantizes and "
            "dequantizes."),
    # -- the rounding in the forward pass alone (the gradient's test is right)
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: s * (np.clip(np.floor(x / s + 0.5) + z, lo, hi) - z)),
            "your forward pass rounds halves up (floor(x / scale + 0.5)): 0.5 -> 1, -0.5 -> 0. "
            + _USE_RINT),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: s * (np.clip(np.sign(x / s) * np.floor(np.abs(x / s) + 0.5) + z,
                                                                  lo, hi) - z)),
            "your forward pass rounds halves away from zero (like C's round): 0.5 -> 1, -0.5 -> -1. "
            + _USE_RINT),
    Mistake(_forward_mistake(lambda x, s, z, lo, hi: s * (np.clip(np.rint(x / s + z), lo, hi) - z)),
            "your forward pass adds the zero point before rounding: round(x / scale + zero_point) "
            "differs from round(x / scale) + zero_point at ties when the zero point is odd. Round "
            "x / scale first, then add the zero point."),
]
_FAKE_QUANT_MISTAKES = [
    Mistake(lambda *a: _ref_fake_quant_ste(*a)[::-1],
            "you returned (grad_x, x_hat); return (x_hat, grad_x), in that order."),
    *_GRAD_MISTAKES,
    *_FORWARD_MISTAKES,
    # -- the rounding (case 2: exact ties with an odd zero point, on the edges too)
    Mistake(_zp_before_rounding,
            "add the zero point after rounding: round(x/s + z) differs from round(x/s) + z at "
            "ties when z is odd -- in the forward pass, and at the edges in the gradient too."),
    Mistake(_rounded_ste(np.floor), "you used floor (np.floor or //): values are rounded down, "
            "not to the nearest integer. " + _USE_RINT),
    Mistake(_rounded_ste(np.trunc), _TRUNCATED),
    Mistake(_rounded_ste(lambda v: np.floor(v + 0.5)),
            "you rounded halves up (floor(v + 0.5)): 0.5 -> 1, -0.5 -> 0. " + _USE_RINT),
    Mistake(_rounded_ste(lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),
            "you rounded halves away from zero (like C's round): 0.5 -> 1, -0.5 -> -1. " + _USE_RINT),
    # -- one half wrong, whatever the other half is
    *_parts(_GRAD_MISTAKES, 1),
    *_parts(_FORWARD_MISTAKES, 0),
]


@checker("2.5", "fake quantization with the straight-through estimator", lesson="02b_quantized_models")
def check_fake_quant_ste(fake_quant_ste):
    """``fake_quant_ste(x, scale, zero_point, qmin, qmax, grad_out)`` returns ``(x_hat, grad_x)``:
    ``x_hat = scale * (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point)`` and
    ``grad_x = grad_out`` where ``qmin <= round(x / scale) + zero_point <= qmax``, else 0 --
    what ``quant.fake_quantize`` and ``quant.FakeQuant.backward`` give (and torch's
    ``fake_quantize_per_tensor_affine`` and its gradient)."""
    g = np.random.default_rng(25)
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731

    def grads(n):
        return g.normal(0, 1, n).astype(np.float32)

    # x/scale for case 2: 0.5, 1.5, -0.5, 2.5, -1.5, 6.5, -8.5, 7.5, -9.5, 4, -6 (exact ties,
    # two of them half a step beyond the edges, where the parity decides)
    x_ties = f32(0.25, 0.75, -0.25, 1.25, -0.75, 3.25, -4.25, 3.75, -4.75, 2.0, -3.0)
    x_sym = np.concatenate([f32(127, -127, 127.4, -127.4, 127.5, -127.5, 128, -129) / 128,
                            g.normal(0, 0.5, 60).astype(np.float32)])
    x_375 = g.uniform(-3, 5, 50).astype(np.float32)
    cases = [
        # grid [-0.75, 1.0]: -0.8 and 1.1 lie less than half a step beyond the edges (they round
        # onto them), -0.75 and 1.0 are the edges, -1.5, -0.9, 1.2, 2.0 are clipped
        Case("3-bit unsigned [0, 7], scale 0.25, zero point 3 (grid [-0.75, 1.0]): x = -1.5, -0.9, "
             "-0.8, -0.75, -0.3, 0, 0.4, 0.6, 1.0, 1.1, 1.2, 2.0",
             (f32(-1.5, -0.9, -0.8, -0.75, -0.3, 0.0, 0.4, 0.6, 1.0, 1.1, 1.2, 2.0), 0.25, 3, 0, 7,
              f32(0.5, -1.0, 2.0, 1.5, -0.5, 3.0, -2.0, 0.25, 1.0, -1.5, 2.5, -3.0))),
        Case("exact ties with the odd zero point 1 (int4 [-8, 7], scale 0.5, grid [-4.5, 3.0]): "
             "x / scale = 0.5, 1.5, -0.5, 2.5, -1.5 and, half a step beyond the edges, 6.5, -8.5, "
             "7.5, -9.5", (x_ties, 0.5, 1, -8, 7, grads(x_ties.size))),
        Case("uint8 [0, 255], scale 2**-6, zero point 128, 200 random values, some beyond both edges",
             (g.normal(0, 1.3, 200).astype(np.float32), 2.0 ** -6, 128, 0, 255, grads(200))),
        Case("narrow-range symmetric int8 [-127, 127], scale 2**-7, zero point 0: x / scale = "
             "+-127, +-127.4, +-127.5 (ties), 128, -129 and 60 random values",
             (x_sym, 2.0 ** -7, 0, -127, 127, grads(x_sym.size))),
        Case("a 2-D weight (4, 5), int4 [-8, 7], scale 0.125, zero point -2 (grid [-0.75, 1.125])",
             (g.normal(0, 0.6, (4, 5)).astype(np.float32), 0.125, -2, -8, 7,
              g.normal(0, 1, (4, 5)).astype(np.float32))),
        Case("scale 0.375 (not a power of two), zero point 5, uint4 [0, 15] (grid [-1.875, 3.75]), "
             "50 values in [-3, 5]", (x_375, 0.375, 5, 0, 15, grads(50))),
    ]
    equal = _pair_equal("(x_hat, grad_x)", _Marker("unused"), lambda got: False)
    describe = _pair_describe(lambda v: f"(x_hat={np.round(np.asarray(v[0], float).ravel(), 4).tolist()[:8]}, "
                                        f"grad_x={np.round(np.asarray(v[1], float).ravel(), 4).tolist()[:8]})")
    return compare_cases(fake_quant_ste, _ref_fake_quant_ste, cases, _FAKE_QUANT_MISTAKES, equal=equal,
                         describe=describe)


# ------------------------------------------------------------------------------ 2b.quiz
check_quiz_b = quiz("2b.quiz", "02b_quantized_models", [
    Question(
        "During QAT a weight lies so far beyond the grid that its integer is clamped: "
        "$\\mathrm{round}(w/s) + z > q_{\\max}$. What gradient does the straight-through "
        "estimator (torch's `FakeQuantize`, `Q.FakeQuant`) pass to it?",
        answer="b",
        options={"a": "the upstream gradient, unchanged",
                 "b": "0",
                 "c": "the upstream gradient divided by the scale",
                 "d": "the upstream gradient with its sign flipped, to pull the weight back"},
        why={"a": "that is the gradient inside the grid; beyond it x_hat stays at the last level "
                  "whatever w does.",
             "c": "the scale cancels: x_hat = s * (round(w/s) + z - z), so inside the grid the "
                  "estimator's d x_hat / dw is 1 -- and here the weight is outside it.",
             "d": "the estimator does not invent a restoring force: it follows how x_hat "
                  "changes when w changes."}),
    Question(
        "Why does QAT need the straight-through estimator instead of the true derivative of the "
        "fake quantizer?",
        answer="c",
        options={"a": "round is not defined on ties",
                 "b": "autograd cannot differentiate through integer types",
                 "c": "the derivative of round is 0 almost everywhere, so no weight would ever "
                      "change",
                 "d": "the true derivative is too expensive to compute"},
        why={"a": "ties are a measure-zero set, and np.rint defines them (half to even).",
             "b": "fake quantization computes in float (x_hat is a float on the grid), so the "
                  "types are not the obstacle.",
             "d": "the true derivative is cheap: it costs no more than the estimator."}),
    Question(
        "Layer 1's weight is a 300 x 64 matrix. With 2-bit k-means weight sharing, how many bytes "
        "does it take: the indices packed at 2 bits each plus a float32 codebook of 4 shared "
        "values (bias not counted)?",
        answer=4816, tol=0,
        why={"number": "count 2 bits per weight index (19,200 indices, 8 bits per byte) and 4 "
                       "bytes per shared value, as the model-size table does."}),
    Question(
        "Two settings of the bit-width sweep score 97.2 % and 97.5 % on the 360 validation "
        "images (one binomial standard error is about 0.8 points). What do you conclude?",
        answer="b",
        options={"a": "the second setting is better",
                 "b": "the sweep cannot tell them apart: the difference is well inside two "
                      "standard errors",
                 "c": "the first setting is better, because lower accuracy means less overfitting",
                 "d": "evaluate both on the test split and keep the better one"},
        why={"a": "0.3 points is about one image in 360: compare it with the standard error "
                  "before calling a difference real.",
             "c": "accuracy on held-out validation images already measures generalisation; a "
                  "lower score is not a sign of less overfitting.",
             "d": "choosing with the test split makes it a second validation split (its final "
                  "number is then biased), and its 359 images have the same ~0.8-point error."}),
    Question(
        "When k-means weight sharing is fine-tuned, what is the gradient of one shared value "
        "(centroid) $c_k$?",
        answer="a",
        options={"a": "the sum of the gradients of all the weights that share it",
                 "b": "the gradient of the single weight closest to it",
                 "c": "zero: the codebook is fixed once k-means has run",
                 "d": "the gradient of the loss with respect to the layer's mean weight"},
        why={"b": "every weight with index k is the number c_k, not only the closest one.",
             "c": "the codebook is exactly what codebook fine-tuning trains (section 3 showed "
                  "the centroids move).",
             "d": "the layer's mean weight is not a parameter; each centroid gets the gradients "
                  "of its own members."}),
])
