"""Checkers for lesson 06a (a tiny GPT's weights in 4 bits): exercises 6.1 (bits per weight of group-wise
quantization), 6.2 (llama.cpp's Q4_0 block quantization, bit-exact) and the quiz 6a.quiz."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import gguf
from ._core import (
    Case,
    Feedback,
    Mistake,
    Question,
    as_number,
    checker,
    compare_cases,
    numeric_array,
    quiz,
    same_number,
)

LESSON = "06a_llm_weights"
F32 = np.float32


# --------------------------------------------------------------------------------------------
# 6.1 bits per weight of group-wise quantization
# --------------------------------------------------------------------------------------------
def _reference_bits(bits, group_size):
    """b-bit codes, and per group of g: a float16 scale and a b-bit zero point."""
    return bits + (16 + bits) / group_size


_ROUNDED = "do not round: return the exact value (the lesson's table shows it with two decimals)."


@checker("6.1", "bits per weight of group-wise quantization", lesson=LESSON)
def check_group_bits(group_bits):
    """``group_bits(bits, group_size)`` -> bits per weight, scale and zero point included."""
    cases = [Case(f"bits={b}, group_size={g}", (b, g)) for b, g in
             ((4, 128), (3, 32), (4, 32), (8, 128), (2, 64), (3, 128), (4, 16))]
    mistakes = [
        Mistake(lambda b, g: b + 16 / g, "you forgot the zero point: every group stores a b-bit zero "
                "point next to its float16 scale."),
        Mistake(lambda b, g: b + (32 + b) / g, "you counted the scale as 32 bits: it is stored as float16."),
        Mistake(lambda b, g: b + 32 / g, "you counted 32 bits of overhead per group: either a float32 scale "
                "and no zero point, or a 16-bit zero point next to the float16 scale. The scale is a "
                "float16 and the zero point an integer code with the same b bits as the weights."),
        Mistake(lambda b, g: b + 24 / g, "you counted the zero point as a byte: it is packed in b bits."),
        Mistake(lambda b, g: b + (16 + b) / 128, "the overhead is shared by one "
                "group of `group_size` weights, not by a whole row of 128."),
        Mistake(lambda b, g: (b + 16 + b) / g, "you divided the codes' bits by the group size too: every "
                "weight pays its own b-bit code; only the per-group values are shared by the group."),
        Mistake(lambda b, g: b + (16 + b) // g, "integer division (//) drops the fraction: the overhead "
                "per weight is a fraction of a bit, so divide with /."),
        Mistake(lambda b, g: b, "that is only the code: the scale and zero point of each group cost bits too."),
        Mistake(lambda b, g: b + (16 + b) * g / 1024, "you multiplied by the group size: the scale and zero "
                "point are shared, so divide their bits by g."),
        Mistake(lambda b, g: round(b + (16 + b) / g, 2), _ROUNDED),
        Mistake(lambda b, g: round(b + (16 + b) / g, 1), _ROUNDED),
        Mistake(lambda b, g: round(b + (16 + b) / g, 3), _ROUNDED),
    ]
    return compare_cases(group_bits, _reference_bits, cases, mistakes,
                         equal=same_number("bits per weight", 1e-9))


# --------------------------------------------------------------------------------------------
# 6.2 Q4_0 blocks
# --------------------------------------------------------------------------------------------
def _reference_q4_0(x):
    """gguf.q4_0's (n, 1) scales and (n, 1, 32) codes, as the exercise asks: (n,) and (n, 32)."""
    x = np.asarray(x, dtype=np.float32)
    d, q = gguf.q4_0(x)
    return d.reshape(len(x)), q.reshape(len(x), 32)


def _signed_max(b, tie="first"):
    a = np.abs(b)
    if tie == "last":
        i = a.shape[1] - 1 - a[:, ::-1].argmax(axis=1)
    elif tie == "positive":
        i = np.where(a == a.max(axis=1, keepdims=True), b, -np.inf).argmax(axis=1)
    else:
        i = a.argmax(axis=1)
    return b[np.arange(len(b)), i]


def _variant(x, *, d_of=None, codes=None, fp16_d=True, clamp=True, from_fp16=False, dtype=F32,
             divide=False):
    """Q4_0 with one step changed: ``d_of(block) -> d`` and ``codes(v) -> q`` where ``v = x / d``
    (``x * (1/d)`` as ggml computes it, or ``x / d`` when ``divide``)."""
    b = np.asarray(x, dtype=dtype)
    d = (d_of or (lambda b: _signed_max(b) / dtype(-8)))(b).astype(dtype)
    d16 = d.astype(np.float16)
    use = d16.astype(dtype) if from_fp16 else d
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if divide:
            v = np.where(use[:, None] == 0, dtype(0), b / np.where(use == 0, dtype(1), use)[:, None])
        else:
            inv = np.where(use == 0, dtype(0), dtype(1) / use)
            v = b * inv[:, None]
        q = (codes or (lambda v: np.trunc(v + dtype(8.5))))(v)
        if clamp:
            q = np.minimum(q, 15)
        q = np.nan_to_num(q, nan=0.0)
    return (d16 if fp16_d else d.astype(np.float32)), q.astype(np.int64)


def _absmax_unsigned(x):
    return _variant(x, d_of=lambda b: np.abs(b).max(axis=1) / F32(-8))


def _absmax_positive(x):
    return _variant(x, d_of=lambda b: np.abs(b).max(axis=1) / F32(8))


def _max_over_8(x):
    return _variant(x, d_of=lambda b: _signed_max(b) / F32(8))


def _largest_value(x):
    return _variant(x, d_of=lambda b: b.max(axis=1) / F32(-8))


def _tie_positive(x):
    return _variant(x, d_of=lambda b: _signed_max(b, "positive") / F32(-8))


def _tie_last(x):
    return _variant(x, d_of=lambda b: _signed_max(b, "last") / F32(-8))


def _per_tensor_max(x):
    def d_of(b):
        flat = b.ravel()
        return np.full(len(b), flat[np.abs(flat).argmax()] / F32(-8), dtype=F32)
    return _variant(x, d_of=d_of)


def _rint(x):
    return _variant(x, codes=lambda v: np.clip(np.rint(v) + 8, 0, 15))


def _roundf(x):
    return _variant(x, codes=lambda v: np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + 8, 0, 15))


def _floor_plus_8(x):
    return _variant(x, codes=lambda v: np.clip(np.floor(v) + 8, 0, 15))


def _trunc_plus_8(x):
    return _variant(x, codes=lambda v: np.clip(np.trunc(v) + 8, 0, 15))


def _floor_half_plus_8(x):
    return _variant(x, codes=lambda v: np.floor(v + np.float32(0.5)) + 8)


def _wrap_uint8(x):
    """trunc(x/d + 8.5) cast to uint8 and masked with & 15 instead of clamped: 16 wraps to 0."""
    return _variant(x, clamp=False, codes=lambda v: (np.trunc(v + F32(8.5)).astype(np.uint8) & 15))


def _divide(x):
    return _variant(x, divide=True)


def _float64(x):
    return _variant(x, dtype=np.float64)


def _float64_divide(x):
    return _variant(x, dtype=np.float64, divide=True)


def _no_clamp(x):
    return _variant(x, clamp=False)


def _d_not_fp16(x):
    return _variant(x, fp16_d=False)


def _codes_from_fp16_d(x):
    return _variant(x, from_fp16=True)


def _signed_codes(x):
    d, q = _variant(x)
    return d, q - 8


def _zero_block_nan(x):
    """No guard for d = 0: 0 * inf = NaN, whose cast to an integer gives 0 on x86."""
    b = np.asarray(x, dtype=F32)
    d = _signed_max(b) / F32(-8)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = b * (F32(1) / d)[:, None]
    q = np.minimum(np.trunc(v + F32(8.5)), 15)
    return d.astype(np.float16), np.where(np.isnan(q), 0, q).astype(np.int64)


def _pair(x, n):
    """The answer's (d, q) as plain arrays of the asked shapes (no code of the answer runs here)."""
    if type(x) not in (tuple, list) or len(x) != 2:
        raise Feedback(f"return a pair (d, q): the block scales and the codes, got {type(x).__name__}.")
    d, q = numeric_array(x[0]), numeric_array(x[1])
    if d is None or q is None:
        raise Feedback("return (d, q) as two NumPy arrays of numbers.")
    if d.shape != (n,):
        raise Feedback(f"d must have shape (n_blocks,) = ({n},), one float16 scale per block; got shape "
                       f"{d.shape}.")
    if q.shape != (n, 32):
        raise Feedback(f"q must have shape (n_blocks, 32) = ({n}, 32), one code per value; got shape "
                       f"{q.shape}. Return the unpacked codes (packing them two per byte is not asked).")
    return d.astype(np.float64), q.astype(np.float64)


def _same_q4_0(got, want):
    wd, wq = np.asarray(want[0], dtype=np.float64), np.asarray(want[1], dtype=np.float64)
    d, q = _pair(got, len(wd))
    return bool(np.array_equal(d, wd) and np.array_equal(q, wq))


def _explain_q4_0(got, want, case):
    wd, wq = np.asarray(want[0], dtype=np.float64), np.asarray(want[1], dtype=np.float64)
    d, q = _pair(got, len(wd))
    x = np.asarray(case.args[0], dtype=F32)
    zero = ~np.any(x != 0, axis=1)
    if np.any(zero & (d != wd)):
        return ("an all-zero block has d = 0: store 0 as its scale, and guard only the reciprocal "
                f"(1/d is taken as 0 when d = 0) (seen on {case.description}).")
    if np.any(zero[:, None] & (q != wq)):
        return ("an all-zero block has d = 0: ggml takes id = 1/d only when d != 0 (else id = 0), "
                f"so every value gets code trunc(0 + 8.5) = 8 (seen on {case.description}).")
    if not np.array_equal(d, wd):
        return (f"your scales d differ from llama.cpp's on {case.description}: d = max / -8 with max "
                "the value of largest magnitude with its sign (the first one on a tie), rounded to "
                "float16 at the end.")
    if not np.all(np.isfinite(q)) or np.any(q != np.round(q)):
        wdq = wd[:, None] * (wq - 8)
        if np.allclose(q, wdq, rtol=1e-2, atol=1e-6):
            return ("you returned the dequantized weights d * (q - 8): return the integer codes q in "
                    f"[0, 15] (seen on {case.description}).")
        return f"your codes are not all integers: q holds integer codes in [0, 15] (seen on {case.description})."
    if q.min() < 0 or q.max() > 15:
        return (f"your codes go from {q.min():g} to {q.max():g}: Q4_0's codes are in [0, 15] "
                f"(seen on {case.description}).")
    bad = np.argwhere(q != wq)
    i, j = (int(v) for v in bad[0])
    v = x[i, j] * (F32(1) / F32(x[i, np.abs(x[i]).argmax()] / F32(-8)))
    return (f"{len(bad)} of {q.size} codes differ on {case.description}; the first: block {i}, value "
            f"x = {float(x[i, j]):.9g}, x * (1/d) = {float(v):.9g} in float32, expected code {int(wq[i, j])}, "
            f"got {int(q[i, j])}. "
            "ggml computes trunc(x * (1/d) + 8.5) in float32, from the float32 d.")


@checker("6.2", "Q4_0 block quantization", lesson=LESSON,
         forbidden=("compresslab.quant.gguf.q4_0", "compresslab.quant.gguf.gguf_quantize"))
def check_q4_0(q4_0_blocks):
    """``q4_0_blocks(x)``: x float32 of shape (n_blocks, 32) -> (d float16 (n_blocks,), q (n_blocks, 32))."""
    g = np.random.default_rng(61)
    ties = np.zeros(32, dtype=F32)
    ties[:8] = [-8.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5]          # d = 1: x / d are exact halves
    outlier = (g.normal(0, 0.02, 32)).astype(F32)
    outlier[5] = -0.5
    symmetric = np.linspace(-1, 1, 32, dtype=F32)                      # -1 first: 1 would get code 16
    rounding = np.zeros((2, 32), dtype=F32)                            # x * (1/d) vs x / d, float32 vs 64
    rounding[0, :2] = [-1.4554425477981567, 0.090965136885643]
    rounding[1, :2] = [-0.5247914791107178, -0.29519522190093994]
    near_half = np.zeros(32, dtype=F32)                                # float32: 8.5 + x/d rounds to 9
    near_half[:2] = [-8.0, 0.5 - 2.0 ** -25]
    cases = [
        Case("one block, linspace(-1, 1, 32): the extremes -1 and +1, the negative first", (symmetric[None, :],)),
        Case("one block, linspace(1, -1, 32): the extremes +1 and -1, the positive first",
             (symmetric[::-1].copy()[None, :],)),
        Case("a block whose largest magnitude is negative (-8), values at exact halves of d",
             (ties[None, :],)),
        Case("one block of N(0, 0.02) weights with an outlier -0.5", (outlier[None, :],)),
        Case("4 blocks of N(0, 0.02) weights, one row of 128",
             (g.normal(0, 0.02, (4, 32)).astype(F32),)),
        Case("3 blocks of very different magnitudes", (
            (g.normal(0, 1, (3, 32)) * np.array([[0.01], [1.0], [30.0]])).astype(F32),)),
        Case("2 blocks, the second all-zero", (np.vstack([g.normal(0, 0.1, 32), np.zeros(32)]).astype(F32),)),
        Case("8 blocks of N(0, 1)", (g.normal(0, 1, (8, 32)).astype(F32),)),
        Case("2 blocks whose x/d fall within float32 rounding of a half", (rounding,)),
        Case("one block with d = 1 and x/d = 0.5 - 2**-25 (a float32 just below a half)", (near_half[None, :],)),
    ]
    mistakes = [
        Mistake(_absmax_unsigned, "d = max|x| / -8 loses the sign of the extreme value: take max as the "
                "value of largest magnitude *with its sign* (x[argmax |x|]), so that it lands exactly "
                "on code 0."),
        Mistake(_absmax_positive, "d = max|x| / 8 puts the largest |x| on code 16 (clamped to 15) when it "
                "is positive: take the signed value of largest magnitude and divide by -8."),
        Mistake(_max_over_8, "d = max / 8 (with the sign) sends the extreme to code 16, which the clamp "
                "cuts to 15: Q4_0 divides by -8, so the extreme lands exactly on code 0."),
        Mistake(_largest_value, "x.max() is the largest value, not the value of largest magnitude: a block "
                "whose extreme is negative needs that negative value (x[argmax |x|], with its sign)."),
        Mistake(_tie_positive, "your sign is right, but on a tie (+m and -m both present) you took the "
                "positive one: ggml keeps the first one met, x[i, argmax |x[i]|]."),
        Mistake(_tie_last, "your sign is right, but on a tie (two values of the same largest magnitude) "
                "you took the last one: ggml keeps the first one met, x[i, argmax |x[i]|]."),
        Mistake(_per_tensor_max, "you took one max over all the blocks: Q4_0 has one scale per block of 32 "
                "(per row of the input)."),
        Mistake(_rint, "you rounded x/d to nearest-even (np.rint / np.round) and added 8: ggml computes "
                "trunc(x/d + 8.5), which rounds halves *up* (0.5 -> 1, -1.5 -> -1)."),
        Mistake(_roundf, "you rounded halves away from zero (C's roundf) and added 8: ggml computes "
                "trunc(x/d + 8.5), which rounds halves *up* (-1.5 -> -1, not -2)."),
        Mistake(_floor_plus_8, "floor(x/d) + 8 rounds down: ggml adds 8.5 before truncating, so x/d is "
                "rounded to nearest (halves up)."),
        Mistake(_trunc_plus_8, "trunc(x/d) + 8 rounds toward zero: ggml adds 8.5 before truncating, so x/d "
                "is rounded to nearest (halves up)."),
        Mistake(_divide, "x / d and x * (1/d) differ in the last bit of float32, which moves a code when "
                "x/d is near a half: ggml multiplies by the float32 reciprocal id = 1/d."),
        Mistake(_float64, "you computed in float64: ggml computes d, 1/d and x * (1/d) + 8.5 in float32, "
                "and the last bit moves a code when x/d is near a half. Cast x to float32 and keep it there."),
        Mistake(_float64_divide, "you computed x / d in float64: ggml multiplies by the float32 reciprocal, "
                "x * (1/d) in float32, and the last bit moves a code when x/d is near a half."),
        Mistake(_floor_half_plus_8, "floor(x/d + 0.5) + 8 is the same as trunc(x/d + 8.5) in exact "
                "arithmetic, not in float32 (adding 0.5 and adding 8.5 round differently): compute "
                "trunc(x * (1/d) + 8.5) as ggml does."),
        Mistake(_no_clamp, "a code of 16 appeared: the value opposite to the extreme (-max) maps to "
                "trunc(8 + 8.5) = 16, which 4 bits cannot hold: clamp the codes at 15."),
        Mistake(_wrap_uint8, "a code of 16 wrapped around to 0 (a cast to uint8 and & 15 keep the low "
                "4 bits): the value opposite to the extreme must be clamped to 15, not wrapped."),
        Mistake(_d_not_fp16, "your codes are right but d is not rounded to float16: the file stores d "
                "as float16, so return d.astype(np.float16)."),
        Mistake(_codes_from_fp16_d, "you computed the codes from the float16-rounded d: ggml computes them "
                "from the float32 d and its float32 reciprocal, and rounds d to float16 only to store it."),
        Mistake(_signed_codes, "your codes are shifted by -8 (in [-8, 7]): Q4_0 stores q in [0, 15] and "
                "decodes d * (q - 8)."),
        Mistake(_zero_block_nan, "an all-zero block has d = 0 and 1/d = inf, so 0 * inf = NaN: ggml uses "
                "id = 1/d only when d != 0 (else 0), which gives code 8 for every value."),
    ]
    return compare_cases(q4_0_blocks, _reference_q4_0, cases, mistakes, equal=_same_q4_0,
                         explain=_explain_q4_0)


# --------------------------------------------------------------------------------------------
# Self-check quiz
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Number(Question):
    """A numeric question with a hint for each classic wrong number (``hints``: value -> hint);
    booleans are refused (True would count as 1)."""

    hints: tuple = ()

    def wrong(self, given):
        if isinstance(given, (bool, np.bool_)):
            return f"answer with a number, not {given!r}."
        hint = super().wrong(given)
        value = as_number(given)
        if hint is None or value is None:
            return hint
        for v, h in self.hints:
            if abs(value - v) <= max(self.tol, 1e-9 * abs(v)):
                return f"{value:g} is not it: {h}"
        return hint


Q4_0_BYTES = 4096 * 4096 // 32 * 18

check_quiz = quiz("6a.quiz", LESSON, [
    _Number(
        "A 4096 × 4096 weight matrix (one layer of a 7B model) is stored in Q4_0, in blocks of 32 "
        "along each row. How many bytes does it take?",
        float(Q4_0_BYTES),
        why={"number": "count the blocks, then the bytes of one block: its codes (how many per byte?) "
                       "and its one scale."},
        hints=(
            (4096 * 4096 // 2, "that counts only the 4-bit codes: every block also stores its scale d."),
            (Q4_0_BYTES * 8, "that is bits: the question asks for bytes."),
            (4.5, "that is bits per weight: the question asks for the bytes of the whole matrix."),
            (4096 * 4096 // 32 * 20, "that is 20 bytes per block: a float32 d, or Q4_1's extra m; a Q4_0 "
                                     "block has one scale, stored as float16."),
            (4096 * 4096 // 32 * 34, "that is Q8_0 (one byte per code); Q4_0 packs two codes per byte."),
            (4096 * 4096 * 4, "that is the float32 matrix."),
        ),
    ),
    Question(
        "GPTQ has just rounded column j of a layer's weight matrix. What does it do with the "
        "rounding error of that column?",
        "c",
        options={
            "a": "nothing: each column is rounded on its own, as in round to nearest, and errors cancel",
            "b": "it adds the error, times the column's mean input, to the bias so the mean output holds",
            "c": "it spreads it over the columns not yet quantized, weighted by the inverse Hessian",
            "d": "it re-rounds the columns already quantized so the row's errors sum to zero",
        },
        why={
            "a": "that is RTN; independent errors do not cancel on the inputs that matter.",
            "b": "a bias can cancel only the error's average; the error depends on each input.",
            "d": "GPTQ never revisits a rounded column, and a zero sum ignores which inputs are large "
                 "or move together.",
        },
    ),
    Question(
        "AWQ multiplies the weights of salient input channels by s > 1 before rounding, and divides "
        "the inputs by s. Why does that help?",
        "b",
        options={
            "a": "the scaled weights fall exactly on grid points, so those channels have no rounding error",
            "b": "a weight's rounding error stays about the same while its effect on the output shrinks by s",
            "c": "the salient channels are kept in float16 next to the 4-bit weights, as mixed precision",
            "d": "the 1/s is an extra multiply per token, paid to make the groups' scales smaller",
        },
        why={
            "a": "scaled weights still round to the grid: the error is divided, not removed.",
            "c": "that is mixed precision (as in LLM.int8()); AWQ keeps every weight in the low-bit grid.",
            "d": "the 1/s costs nothing at run time: AWQ folds it into the layer before (a LayerNorm or "
                 "a Linear); and the groups' scales are not what it changes.",
        },
    ),
    Question(
        "Two quantized models are scored on the same 32 test chunks. The paired ratio of their "
        "perplexities (first model / second model) is 0.998 with 95 % interval [0.995, 1.001]. "
        "What can you say?",
        "d",
        options={
            "a": "the first model is better: its perplexity is lower",
            "b": "the second model is better",
            "c": "nothing, unless their separate intervals do not overlap",
            "d": "no clear difference on these chunks",
        },
        why={
            "a": "the point estimate is below 1, but look at where the interval lies: the chunks' noise "
                 "can explain it.",
            "b": "a ratio first / second below 1 would lean towards the first, if anything; and it is not "
                 "clear either way.",
            "c": "separate intervals ignore that both models find the same chunks hard; the paired "
                 "interval is the sharper tool, and here it is the one to read.",
        },
    ),
])
