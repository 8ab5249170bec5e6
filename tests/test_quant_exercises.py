"""Lessons 02a and 02b checkers: the lessons' solutions pass, every classic mistake gets its own
hint, and the quizzes accept their answers and explain each wrong one.

Each wrong answer below is written the way a learner would write it (not by calling the
checker's own model of the mistake), and must be rejected with a hint naming *that* mistake.
"""
import json
import pathlib
import time

import nbformat
import numpy as np
import pytest

from compresslab.exercises import REGISTRY
from compresslab.exercises import lesson02 as ex

LESSONS = pathlib.Path(__file__).resolve().parents[1] / "lessons"
NOTEBOOK_A = LESSONS / "02a_quantization.ipynb"
NOTEBOOK_B = LESSONS / "02b_quantized_models.ipynb"

# The solution cells of lessons/02a_quantization.ipynb (2.1-2.4) and
# lessons/02b_quantized_models.ipynb (2.5), verbatim (test_solutions_are_the_lessons keeps this
# copy equal to the notebooks).
SOLUTIONS = {
    "ex2_1-solution": '''\
def quantize_affine(x, scale, zero_point, qmin, qmax):
    ### BEGIN SOLUTION
    q = np.rint(np.asarray(x) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int64)
    ### END SOLUTION''',
    "ex2_2-solution": '''\
def affine_qparams(x_min, x_max, bits):
    ### BEGIN SOLUTION
    qmin, qmax = 0, 2 ** bits - 1
    scale = (x_max - x_min) / (qmax - qmin)
    zero_point = int(np.clip(np.rint(qmin - x_min / scale), qmin, qmax))
    return scale, zero_point
    ### END SOLUTION''',
    "ex2_3-solution": '''\
def symmetric_quantize(x, bits):
    ### BEGIN SOLUTION
    qmax = 2 ** (bits - 1) - 1
    scale = float(np.abs(x).max()) / qmax
    q = np.clip(np.rint(np.asarray(x) / scale), -qmax, qmax).astype(np.int64)
    return q, scale
    ### END SOLUTION''',
    "ex2_4-solution": '''\
def requantize_int(acc, M, zero_point, qmin, qmax):
    ### BEGIN SOLUTION
    mantissa, exponent = np.frexp(M)              # M = mantissa * 2**exponent, mantissa in [0.5, 1)
    M0 = int(np.rint(mantissa * 2 ** 31))         # 31 significant bits: M0 in [2**30, 2**31]
    n = 31 - int(exponent)                        # so that M = M0 * 2**-n
    if M0 == 2 ** 31:                             # the mantissa rounded up to 1.0
        M0, n = M0 // 2, n - 1
    acc = np.asarray(acc).astype(np.int64)        # acc * M0 needs up to 62 bits
    product = acc * M0
    rounding = 1 << (n - 1)                       # half of 2**n: the shift rounds to nearest
    y = (product + rounding) >> n                 # arithmetic shift: ties go up, towards +inf
    q = y + zero_point
    return np.clip(q, qmin, qmax).astype(np.int64)
    ### END SOLUTION''',
    "ex2_5-solution": '''\
def fake_quant_ste(x, scale, zero_point, qmin, qmax, grad_out):
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    q = np.rint(x / scale) + zero_point           # the integer before the clamp (exercise 2.1's rule)
    q_clamped = np.clip(q, qmin, qmax)
    x_hat = scale * (q_clamped - zero_point)      # forward: quantize, then dequantize
    inside = (q >= qmin) & (q <= qmax)            # where the clamp changed nothing
    grad_x = np.where(inside, grad_out, 0.0)      # backward: round as the identity, the clamp as it is
    return x_hat, grad_x
    ### END SOLUTION''',
}
NOTEBOOK_OF = {**{f"ex2_{i}-solution": NOTEBOOK_A for i in range(1, 5)}, "ex2_5-solution": NOTEBOOK_B}


def _solution(grade_id):
    ns = {"np": np}
    exec(SOLUTIONS[grade_id], ns)
    return ns[SOLUTIONS[grade_id].split("(")[0].removeprefix("def ")]


def _status(check, fn):
    r = check(fn, quiet=True)
    return r.status, r.message


def _rejected_with(check, fn, hint):
    status, msg = _status(check, fn)
    assert status == "fail" and hint in msg, (hint, status, msg)


def _cells(notebook):
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"]).strip()
            for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]}


def test_solutions_are_the_lessons():
    for grade_id, source in SOLUTIONS.items():
        cells = _cells(NOTEBOOK_OF[grade_id])
        assert cells[grade_id] == source, f"{grade_id} changed in {NOTEBOOK_OF[grade_id].name}: update SOLUTIONS"


def test_each_checker_belongs_to_its_lesson():
    """2.1-2.4 and 2a.quiz are lesson 02a's, 2.5 and 2b.quiz lesson 02b's: the grade ids of each
    notebook's check cells are exactly the exercises registered with its stem."""
    want = {"02a_quantization": {"2.1", "2.2", "2.3", "2.4", "2a.quiz"},
            "02b_quantized_models": {"2.5", "2b.quiz"}}
    for stem, exercises in want.items():
        assert {k for k, v in REGISTRY.items() if v["lesson"] == stem} == exercises
    gid = {"2.1": "ex2_1", "2.2": "ex2_2", "2.3": "ex2_3", "2.4": "ex2_4", "2.5": "ex2_5",
           "2a.quiz": "quiz2a", "2b.quiz": "quiz2b"}
    for notebook in (NOTEBOOK_A, NOTEBOOK_B):
        checks = {g for g in _cells(notebook) if g and g.endswith("-check")}
        assert checks == {f"{gid[e]}-check" for e in want[notebook.stem]}


@pytest.mark.parametrize("check,grade_id", [(ex.check_quantize_affine, "ex2_1-solution"),
                                            (ex.check_affine_qparams, "ex2_2-solution"),
                                            (ex.check_symmetric_quantize, "ex2_3-solution"),
                                            (ex.check_requantize_int, "ex2_4-solution"),
                                            (ex.check_fake_quant_ste, "ex2_5-solution")])
def test_lesson_solution_passes_quickly(check, grade_id):
    t0 = time.perf_counter()
    status, msg = _status(check, _solution(grade_id))
    assert status == "pass", msg
    assert time.perf_counter() - t0 < 0.5


def _nie(*a):
    raise NotImplementedError()


@pytest.mark.parametrize("check", [ex.check_quantize_affine, ex.check_affine_qparams,
                                   ex.check_symmetric_quantize, ex.check_requantize_int,
                                   ex.check_fake_quant_ste, ex.check_quiz_a, ex.check_quiz_b])
def test_not_attempted(check):
    assert _status(check, _nie)[0] == "not attempted"


@pytest.mark.parametrize("check,mistakes", [(ex.check_quantize_affine, ex._QUANTIZE_MISTAKES),
                                            (ex.check_affine_qparams, ex._QPARAMS_MISTAKES),
                                            (ex.check_symmetric_quantize, ex._SYMMETRIC_MISTAKES),
                                            (ex.check_requantize_int, ex._REQUANT_MISTAKES),
                                            (ex.check_fake_quant_ste, ex._FAKE_QUANT_MISTAKES)])
def test_every_modelled_mistake_is_named_first(check, mistakes, library_answers_allowed):
    """No mistake is hidden behind another: each one, given as the answer, gets its own hint
    (the framework names the first mistake matching the first failing case)."""
    for m in mistakes:
        if isinstance(m.fn(*_first_args(check)), ex._Marker):
            continue  # a fallback, recognised by a property of the answer (tested below)
        status, msg = _status(check, m.fn)
        assert status == "fail" and msg.startswith(m.hint), (m.hint, msg)


def _first_args(check):
    return {ex.check_quantize_affine: (np.array([0.5]), 0.25, 0, -128, 127),
            ex.check_affine_qparams: (-1.0, 1.0, 8),
            ex.check_symmetric_quantize: (np.array([0.5, -1.0]), 8),
            ex.check_requantize_int: (np.array([5], np.int32), 0.1, 0, -128, 127),
            ex.check_fake_quant_ste: (np.array([0.5]), 0.25, 0, -128, 127, np.ones(1))}[check]


# ------------------------------------------------------------------------------ 2.1
def _clip(q, lo, hi):
    return np.clip(q, lo, hi).astype(np.int64)


QUANTIZE_RIGHT = [
    lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi).astype(np.int32),
    lambda x, s, z, lo, hi: np.clip(np.round(x / s).astype(int) + z, lo, hi),
    lambda x, s, z, lo, hi: [min(max(round(float(v) / s) + z, lo), hi) for v in x],   # Python's round: half even
    lambda x, s, z, lo, hi: np.clip(np.rint(np.asarray(x, np.float64) / s) + z, lo, hi).astype(
        np.uint8 if (lo, hi) == (0, 255) else np.int8),                               # the right small type
]

QUANTIZE_WRONG = {
    "you used floor": lambda x, s, z, lo, hi: _clip(np.floor(x / s) + z, lo, hi),
    "floor (np.floor or //)": lambda x, s, z, lo, hi: np.clip(x // s + z, lo, hi),
    "you used ceil": lambda x, s, z, lo, hi: _clip(np.ceil(x / s) + z, lo, hi),
    "you truncated towards zero": lambda x, s, z, lo, hi: np.clip((x / s).astype(int) + z, lo, hi),
    "truncated towards zero (astype(int), int() or np.trunc)":
        lambda x, s, z, lo, hi: np.clip((x / s + z).astype(int), lo, hi),
    "you rounded halves up": lambda x, s, z, lo, hi: _clip(np.floor(x / s + 0.5) + z, lo, hi),
    "you rounded halves down": lambda x, s, z, lo, hi: _clip(np.ceil(x / s - 0.5) + z, lo, hi),
    "halves away from zero":
        lambda x, s, z, lo, hi: _clip(np.sign(x) * np.floor(np.abs(x / s) + 0.5) + z, lo, hi),
    "halves towards zero": lambda x, s, z, lo, hi: _clip(np.sign(x) * np.ceil(np.abs(x / s) - 0.5) + z, lo, hi),
    "you did not round": lambda x, s, z, lo, hi: np.clip(x / s + z, lo, hi),
    # the known hole: torch's kernel rule, differs at ties when z is odd
    "add the zero point after rounding: rint(x/s + z) differs from rint(x/s) + z at ties when z is odd":
        lambda x, s, z, lo, hi: _clip(np.rint(x / s + z), lo, hi),
    "add the zero point after rounding": lambda x, s, z, lo, hi: _clip(np.round(np.asarray(x) / s + z), lo, hi),
    "forgot to add the zero point": lambda x, s, z, lo, hi: _clip(np.rint(x / s), lo, hi),
    "you subtracted the zero point": lambda x, s, z, lo, hi: _clip(np.rint(x / s) - z, lo, hi),
    "you clamped before adding the zero point": lambda x, s, z, lo, hi: _clip(np.rint(x / s), lo, hi) + z,
    "forgot to clamp": lambda x, s, z, lo, hi: (np.rint(x / s) + z).astype(np.int64),
    "wrapped around": lambda x, s, z, lo, hi: (np.rint(x / s) + z).astype(np.int64).astype(
        np.uint8 if lo == 0 else np.int8),
    "wrapped around ": lambda x, s, z, lo, hi: (np.rint(x / s) + z).astype(np.uint8 if lo == 0 else np.int8),
    # x86 wraps a negative float to 256 - k, ARM gives 0: either way the hint says why
    "cannot hold negative numbers":
        lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi).astype(np.uint8),
    "np.int8, which cannot hold values above 127":
        lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi).astype(np.int8),
    "not to a fixed int8 range": lambda x, s, z, lo, hi: _clip(np.rint(x / s) + z, -128, 127),
    "divide by the scale": lambda x, s, z, lo, hi: _clip(np.rint(x * s) + z, lo, hi),
    "returned the dequantized floats": lambda x, s, z, lo, hi: (_clip(np.rint(x / s) + z, lo, hi) - z) * s,
    "not whole numbers": lambda x, s, z, lo, hi: np.clip(x / s + 0.25 + z, lo, hi),
    "the values of q are right, but you returned an array of dtype float":
        lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi),
    "returned None": lambda x, s, z, lo, hi: None,
}


@pytest.mark.parametrize("i", range(len(QUANTIZE_RIGHT)))
def test_quantize_affine_right_variants_pass(i):
    status, msg = _status(ex.check_quantize_affine, QUANTIZE_RIGHT[i])
    assert status == "pass", msg


@pytest.mark.parametrize("hint", list(QUANTIZE_WRONG))
def test_quantize_affine_mistakes_get_their_hint(hint):
    _rejected_with(ex.check_quantize_affine, QUANTIZE_WRONG[hint], hint.strip())


def test_quantize_affine_has_exact_ties_under_every_zero_point_parity():
    """The reference and torch's rule rint(x/s + z) agree on every tie for an even z and differ
    for an odd one; the brief's example is among the cases."""
    x = np.array([0.125, 0.375, -0.125, 0.625], np.float32)
    assert ex._ref_quantize(x, 0.25, 3, -128, 127).tolist() == [3, 5, 3, 5]
    assert np.clip(np.rint(x / 0.25 + 3), -128, 127).tolist() == [4, 4, 2, 6]
    zps = {args[2] for args in _quantize_cases() if np.any(np.asarray(args[0], np.float64) / args[1] % 1 == 0.5)}
    assert {z % 2 for z in zps} == {0, 1} and any(z < 0 for z in zps)


def _quantize_cases():
    """The argument tuples check_quantize_affine tries (recorded by a spy answer)."""
    seen = []

    def spy(*args):
        seen.append(args)
        return ex._ref_quantize(*args)

    assert ex.check_quantize_affine(spy, quiet=True).passed
    return seen


# ------------------------------------------------------------------------------ 2.2
def _qp(scale=None, zp=None, qrange=None):
    """A learner's affine_qparams with one part written differently."""
    def f(lo, hi, bits):
        qmin, qmax = qrange(bits) if qrange else (0, 2 ** bits - 1)
        s = scale(lo, hi, qmin, qmax) if scale else (hi - lo) / (qmax - qmin)
        return s, (zp(lo, s, qmin, qmax) if zp else int(np.clip(np.rint(qmin - lo / s), qmin, qmax)))
    return f


QPARAMS_RIGHT = [
    _qp(zp=lambda lo, s, a, b: int(np.clip(a - np.round(lo / s), a, b))),         # the lesson's formula
    _qp(zp=lambda lo, s, a, b: int(min(max(a - round(lo / s), a), b))),           # Python's round
    _qp(zp=lambda lo, s, a, b: np.int64(np.clip(np.rint(a - lo / s), a, b))),     # a NumPy integer
]

QPARAMS_WRONG = {
    "return (scale, zero_point), in that order": lambda lo, hi, bits: _qp()(lo, hi, bits)[::-1],
    "widened the range": _qp(scale=lambda lo, hi, a, b: (max(hi, 0.0) - min(lo, 0.0)) / (b - a),
                             zp=lambda lo, s, a, b: int(np.clip(np.rint(a - min(lo, 0.0) / s), a, b))),
    "only x_max": _qp(scale=lambda lo, hi, a, b: hi / (b - a)),
    "symmetric scheme": _qp(scale=lambda lo, hi, a, b: max(abs(lo), abs(hi)) / (b - a)),
    "2**bits levels but only 2**bits - 1 steps": _qp(scale=lambda lo, hi, a, b: (hi - lo) / (b - a + 1)),
    "off by one": _qp(qrange=lambda bits: (0, 2 ** bits)),
    "the signed range": _qp(qrange=lambda bits: (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)),
    "rounded down (int() truncates": _qp(zp=lambda lo, s, a, b: int(np.clip(a - lo / s, a, b))),
    "rounded down": _qp(zp=lambda lo, s, a, b: int(np.clip(np.floor(a - lo / s), a, b))),
    "rounded up (np.ceil)": _qp(zp=lambda lo, s, a, b: int(np.clip(np.ceil(a - lo / s), a, b))),
    "rounds the tie 2.5 up": _qp(zp=lambda lo, s, a, b: int(np.clip(int(a - lo / s + 0.5), a, b))),
    "not a whole number": _qp(zp=lambda lo, s, a, b: float(np.clip(a - lo / s, a, b))),
    "not a whole number ": _qp(zp=lambda lo, s, a, b: a - lo / s),
    "not clamped": _qp(zp=lambda lo, s, a, b: int(np.rint(a - lo / s))),
    "sign is wrong": _qp(zp=lambda lo, s, a, b: int(np.clip(np.rint(a + lo / s), a, b))),
    "the value of the zero point is right, but you returned 6.0 (a float)":
        _qp(zp=lambda lo, s, a, b: float(np.clip(np.rint(a - lo / s), a, b))),
    "(6.0) (a float64)": _qp(zp=lambda lo, s, a, b: np.clip(np.rint(a - lo / s), a, b)),   # np.float64
    "return a tuple (scale, zero_point)": lambda lo, hi, bits: (hi - lo) / (2 ** bits - 1),
}


@pytest.mark.parametrize("i", range(len(QPARAMS_RIGHT)))
def test_affine_qparams_right_variants_pass(i):
    status, msg = _status(ex.check_affine_qparams, QPARAMS_RIGHT[i])
    assert status == "pass", msg


@pytest.mark.parametrize("hint", list(QPARAMS_WRONG))
def test_affine_qparams_mistakes_get_their_hint(hint):
    _rejected_with(ex.check_affine_qparams, QPARAMS_WRONG[hint], hint.strip())


def test_affine_qparams_two_mistakes_name_the_scale_first():
    """A wrong scale and a wrong zero point: the scale is named (then, once fixed, the zero point)."""
    both = _qp(scale=lambda lo, hi, a, b: hi / (b - a), zp=lambda lo, s, a, b: int(np.rint(a - lo / s)))
    _rejected_with(ex.check_affine_qparams, both, "only x_max")
    _rejected_with(ex.check_affine_qparams, _qp(zp=lambda lo, s, a, b: int(np.rint(a - lo / s))), "not clamped")


# ------------------------------------------------------------------------------ 2.3
def _sym(qmax=lambda b: 2 ** (b - 1) - 1, qmin=None, scale=None, rnd=np.rint, cast=np.int64):
    """A learner's symmetric_quantize with one part written differently."""
    def f(x, bits):
        hi = qmax(bits)
        lo = qmin(bits) if qmin else -hi
        s = scale(x, bits) if scale else np.abs(x).max() / hi
        q = np.clip(rnd(x / s), lo, hi)
        return (q.astype(cast) if cast else q), s
    return f


def _sym_affine(x, bits):
    qmax = 2 ** bits - 1
    s = (x.max() - x.min()) / qmax
    z = int(np.clip(np.rint(-x.min() / s), 0, qmax))
    return np.clip(np.rint(x / s) + z, 0, qmax).astype(np.int64), s


SYMMETRIC_RIGHT = [
    _sym(cast=np.int8),
    _sym(scale=lambda x, b: float(max(abs(x.max()), abs(x.min()))) / (2 ** (b - 1) - 1), cast=np.int32),
]

SYMMETRIC_WRONG = {
    "off by one: a signed": _sym(qmax=lambda b: 2 ** (b - 1)),
    "off by one in the scale": _sym(scale=lambda x, b: np.abs(x).max() / 2 ** (b - 1)),
    "torch's per_tensor_symmetric convention":
        _sym(qmax=lambda b: 2 ** (b - 1) - 1, qmin=lambda b: -(2 ** (b - 1)),
             scale=lambda x, b: np.abs(x).max() / ((2 ** b - 1) / 2)),
    "unsigned maximum": _sym(qmax=lambda b: 2 ** b - 1),
    "not from (max - min)": _sym(scale=lambda x, b: (x.max() - x.min()) / (2 ** (b - 1) - 1)),
    "not max(x)": _sym(scale=lambda x, b: x.max() / (2 ** (b - 1) - 1)),
    "the affine scheme of exercise 2.2": _sym_affine,
    "do not shift q by 2**(bits-1)": lambda x, b: (_sym()(x, b)[0] + 2 ** (b - 1), _sym()(x, b)[1]),
    "you used floor": _sym(rnd=np.floor),
    "you used ceil": _sym(rnd=np.ceil),
    "you truncated towards zero": lambda x, b: ((x / (np.abs(x).max() / (2 ** (b - 1) - 1))).astype(int),
                                                np.abs(x).max() / (2 ** (b - 1) - 1)),
    "rounded halves up": _sym(rnd=lambda v: np.floor(v + 0.5)),
    "rounded halves down": _sym(rnd=lambda v: np.ceil(v - 0.5)),
    "halves away from zero": _sym(rnd=lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),
    "you did not round": _sym(rnd=lambda v: v, cast=None),
    "return (q, scale), in that order": lambda x, b: _sym()(x, b)[::-1],
    "returned the dequantized floats": lambda x, b: (_sym()(x, b)[0] * _sym()(x, b)[1], _sym()(x, b)[1]),
    "the values of q are right, but you returned an array of dtype float": _sym(cast=None),
    "return a tuple (q, scale)": lambda x, b: _sym()(x, b)[0],
}


@pytest.mark.parametrize("i", range(len(SYMMETRIC_RIGHT)))
def test_symmetric_right_variants_pass(i):
    status, msg = _status(ex.check_symmetric_quantize, SYMMETRIC_RIGHT[i])
    assert status == "pass", msg


@pytest.mark.parametrize("hint", list(SYMMETRIC_WRONG))
def test_symmetric_mistakes_get_their_hint(hint):
    _rejected_with(ex.check_symmetric_quantize, SYMMETRIC_WRONG[hint], hint)


def test_symmetric_two_mistakes_name_the_scale_first():
    _rejected_with(ex.check_symmetric_quantize,
                   _sym(scale=lambda x, b: (x.max() - x.min()) / (2 ** (b - 1) - 1), rnd=np.floor), "(max - min)")
    _rejected_with(ex.check_symmetric_quantize, _sym(qmax=lambda b: 2 ** b - 1, rnd=np.trunc), "unsigned maximum")


# ------------------------------------------------------------------------------ 2.4
def _requant(normalise=True, rounding=True, zero_point=True, clamp=True, int64=True, cast=np.int64):
    """A learner's requantize_int with one part written differently."""
    def f(acc, M, zp, qmin, qmax):
        if normalise:
            mant, exp = np.frexp(M)
            M0, n = int(np.rint(mant * 2 ** 31)), 31 - int(exp)
        else:
            M0, n = int(round(M * 2 ** 31)), 31
        acc = np.asarray(acc).astype(np.int64 if int64 else np.int32)
        prod = acc * M0
        y = (prod + (np.int64(1) << (n - 1))) >> n if rounding else prod >> n
        q = y + zp if zero_point else y
        q = np.clip(q, qmin, qmax) if clamp else q
        return q.astype(cast) if cast else q
    return f


REQUANT_RIGHT = [
    _requant(cast=np.int32),
    # a Python loop over the values, with int(...) and Python's arbitrary-precision ints
    lambda acc, M, zp, lo, hi: np.array(
        [min(max(zp + ((int(a) * int(np.rint(np.frexp(M)[0] * 2 ** 31)) + 2 ** (30 - int(np.frexp(M)[1])))
                       >> (31 - int(np.frexp(M)[1]))), lo), hi) for a in np.ravel(acc)],
        dtype=np.int64).reshape(np.shape(acc)),
    # the library's two steps
    lambda acc, M, zp, lo, hi: ex.requantize(acc, *ex.quantize_multiplier(M), zp, lo, hi),
]

REQUANT_WRONG = {
    "your shift truncates": _requant(rounding=False),
    "truncates: (acc * M0) >> n": lambda acc, M, zp, lo, hi: np.clip(
        (np.asarray(acc, np.int64) * int(np.rint(np.frexp(M)[0] * 2 ** 31)) // 2 ** (31 - int(np.frexp(M)[1])))
        + zp, lo, hi),
    "without normalising the mantissa": _requant(normalise=False),
    "you forgot the zero point": _requant(zero_point=False),
    "you forgot the clamp": _requant(clamp=False),
    "you used float arithmetic": lambda acc, M, zp, lo, hi: np.clip(np.rint(acc * M) + zp, lo, hi).astype(np.int64),
    "you used float arithmetic: the whole point": lambda acc, M, zp, lo, hi: np.clip(
        np.floor(acc * M + 0.5) + zp, lo, hi).astype(int),
    "In float64": lambda acc, M, zp, lo, hi: np.clip(
        np.floor(acc * float(np.rint(np.frexp(M)[0] * 2 ** 31)) / 2.0 ** (31 - int(np.frexp(M)[1])) + 0.5)
        + zp, lo, hi).astype(np.int64),
    # acc stays int32, so acc * M0 wraps around before the int64 rounding term is added
    "acc * M0 overflowed": lambda acc, M, zp, lo, hi: np.clip(
        (((acc * np.int32(np.rint(np.frexp(M)[0] * 2 ** 31))).astype(np.int64) + 2 ** (30 - int(np.frexp(M)[1])))
         >> (31 - int(np.frexp(M)[1]))) + zp, lo, hi),
    "the values of q are right, but you returned an array of dtype float": _requant(cast=np.float64),
    "returned None": lambda acc, M, zp, lo, hi: None,
}


@pytest.mark.parametrize("i", range(len(REQUANT_RIGHT)))
def test_requantize_int_right_variants_pass(i, library_answers_allowed):
    status, msg = _status(ex.check_requantize_int, REQUANT_RIGHT[i])
    assert status == "pass", msg


@pytest.mark.parametrize("hint", list(REQUANT_WRONG))
def test_requantize_int_mistakes_get_their_hint(hint):
    _rejected_with(ex.check_requantize_int, REQUANT_WRONG[hint], hint)


def test_requantize_int_cases_are_what_they_say():
    """The near-tie cases really separate integer from float arithmetic, and the small M really
    separates a normalised mantissa from M * 2**31."""
    M0, n = ex.quantize_multiplier(0.1)
    assert (int(M0), int(n)) == (1717986918, 34) and int(M0) * 2.0 ** -34 < 0.1
    assert ex.requantize(np.array([5, 15]), M0, n, 0, -128, 127).tolist() == [0, 1]   # float: 0.5, 1.5
    big = 2147483638 * int(ex.quantize_multiplier(0.3)[0])
    assert big > 2 ** 53 and big % 2 ** 32 == 2 ** 31 - 2                               # just below a tie
    assert int(round(3e-9 * 2 ** 31)) == 6


# ------------------------------------------------------------------------------ 2.5
def _fq(rnd=np.rint, inside=None, forward=None, grad=None):
    """A learner's fake_quant_ste with one part written differently: the rounding, the test for
    "inside" (on x and the integer q before the clamp), the forward result, the gradient."""
    def f(x, s, z, lo, hi, g):
        q = rnd(x / s) + z
        qc = np.clip(q, lo, hi)
        x_hat = forward(x, s, z, q, qc) if forward else s * (qc - z)
        ins = inside(x, s, z, lo, hi, q) if inside else (q >= lo) & (q <= hi)
        return x_hat, (grad(g, ins, s) if grad else g * ins)
    return f


FAKE_QUANT_RIGHT = [
    # float32 throughout, the mask as a product
    lambda x, s, z, lo, hi, g: (
        (np.clip(np.rint(x / np.float32(s)) + z, lo, hi) - z).astype(np.float32) * np.float32(s),
        g * ((np.rint(x / s) + z >= lo) & (np.rint(x / s) + z <= hi)).astype(np.float32)),
    # the library's quantize / dequantize, and np.where
    lambda x, s, z, lo, hi, g: (ex.fake_quantize(x, ex.QParams(s, z, lo, hi)),
                                np.where(np.abs(np.rint(x / s) + z - (lo + hi) / 2) <= (hi - lo) / 2, g, 0)),
    # x_hat first, then "inside" as "the clamp changed nothing"
    _fq(inside=lambda x, s, z, lo, hi, q: np.clip(q, lo, hi) == q),
]

FAKE_QUANT_WRONG = {
    # the gradient
    "your gradient passes everywhere": _fq(grad=lambda g, ins, s: g),
    "your gradient passes everywhere ": _fq(                          # tested the clamped integer
        inside=lambda x, s, z, lo, hi, q: (np.clip(q, lo, hi) >= lo) & (np.clip(q, lo, hi) <= hi)),
    "your gradient is 1 everywhere": _fq(grad=lambda g, ins, s: np.ones_like(g)),
    "you returned the 0/1 mask": _fq(grad=lambda g, ins, s: ins.astype(float)),
    "your gradient is 0 everywhere": _fq(grad=lambda g, ins, s: np.zeros_like(g)),
    "your gradient is divided by the scale": _fq(grad=lambda g, ins, s: g * ins / s),
    "your gradient is multiplied by the scale": _fq(grad=lambda g, ins, s: g * ins * s),
    # the edges
    "your range ignores the zero point": _fq(inside=lambda x, s, z, lo, hi, q: (x >= lo * s) & (x <= hi * s)),
    "your range ignores the zero point ": _fq(
        inside=lambda x, s, z, lo, hi, q: (np.rint(x / s) >= lo) & (np.rint(x / s) <= hi)),
    "TensorFlow's\nfake_quant convention": _fq(
        inside=lambda x, s, z, lo, hi, q: (x >= (lo - z) * s) & (x <= (hi - z) * s)),
    "TensorFlow's fake_quant convention": _fq(
        inside=lambda x, s, z, lo, hi, q: (x > (lo - z) * s) & (x < (hi - z) * s)),
    "off by one at the edges": _fq(inside=lambda x, s, z, lo, hi, q: (q > lo) & (q < hi)),
    "off by one at the edges ": _fq(inside=lambda x, s, z, lo, hi, q: (q >= lo) & (q < hi)),
    # the forward pass
    "your forward pass returns the integers q": _fq(forward=lambda x, s, z, q, qc: qc.astype(np.int64)),
    "forgot to subtract the zero point": _fq(forward=lambda x, s, z, q, qc: s * qc),
    "forgot the scale": _fq(forward=lambda x, s, z, q, qc: qc - z),
    "does not clamp": _fq(forward=lambda x, s, z, q, qc: s * (q - z)),
    "does not round": _fq(forward=lambda x, s, z, q, qc: s * (np.clip(x / s + z, qmin_of(q, qc), qmax_of(q, qc)) - z)),
    "returns x unchanged": _fq(forward=lambda x, s, z, q, qc: x.copy()),
    # the rounding, and what is returned
    "add the zero point after rounding": lambda x, s, z, lo, hi, g: (
        s * (np.clip(np.rint(x / s + z), lo, hi) - z),
        np.where((np.rint(x / s + z) >= lo) & (np.rint(x / s + z) <= hi), g, 0)),
    "you used floor": _fq(rnd=np.floor),
    "you rounded halves up": _fq(rnd=lambda v: np.floor(v + 0.5)),
    "return (x_hat, grad_x), in that order": lambda *a: _fq()(*a)[::-1],
    "return a tuple (x_hat, grad_x)": lambda *a: _fq()(*a)[0],
    "return a tuple of exactly two items, (x_hat, grad_x); got a tuple of 3": lambda *a: (*_fq()(*a), None),
    # only the forward pass's rounding wrong, the gradient right
    "your forward pass rounds halves up": lambda x, s, z, lo, hi, g: (
        s * (np.clip(np.floor(x / s + 0.5) + z, lo, hi) - z), _fq()(x, s, z, lo, hi, g)[1]),
    "your forward pass adds the zero point before rounding": lambda x, s, z, lo, hi, g: (
        s * (np.clip(np.rint(x / s + z), lo, hi) - z), _fq()(x, s, z, lo, hi, g)[1]),
    "your forward pass rounds halves away from zero": lambda x, s, z, lo, hi, g: (
        s * (np.clip(np.trunc(x / s + np.sign(x) * 0.5) + z, lo, hi) - z), _fq()(x, s, z, lo, hi, g)[1]),
}


def qmin_of(q, qc):
    """The clamp's bounds, as a learner's forward pass that forgot to round would still know them."""
    return qc.min() if (q < qc).any() else -np.inf


def qmax_of(q, qc):
    return qc.max() if (q > qc).any() else np.inf


@pytest.mark.parametrize("i", range(len(FAKE_QUANT_RIGHT)))
def test_fake_quant_ste_right_variants_pass(i, library_answers_allowed):
    status, msg = _status(ex.check_fake_quant_ste, FAKE_QUANT_RIGHT[i])
    assert status == "pass", msg


@pytest.mark.parametrize("hint", list(FAKE_QUANT_WRONG))
def test_fake_quant_ste_mistakes_get_their_hint(hint):
    _rejected_with(ex.check_fake_quant_ste, FAKE_QUANT_WRONG[hint], hint.strip().replace("\n", " "))


def test_fake_quant_ste_two_mistakes_name_each_half():
    """A wrong forward pass and a wrong gradient: the checker still names one of them."""
    both = _fq(forward=lambda x, s, z, q, qc: qc.astype(np.int64), grad=lambda g, ins, s: g)
    status, msg = _status(ex.check_fake_quant_ste, both)
    assert status == "fail" and ("returns the integers q" in msg or "passes everywhere" in msg), msg


@pytest.mark.parametrize("forward", [
    lambda x, s, z, lo, hi: s * (np.clip(np.floor(x / s + 0.5) + z, lo, hi) - z),
    lambda x, s, z, lo, hi: s * (np.clip(np.sign(x / s) * np.floor(np.abs(x / s) + 0.5) + z, lo, hi) - z),
])
def test_fake_quant_ste_wrong_forward_is_not_blamed_on_the_gradient(forward):
    """A forward pass that rounds wrongly, with the right gradient, gets a hint about the forward
    pass's rounding, never one about the gradient (a gradient mistake that equals the reference
    on a case must not match)."""
    answer = lambda x, s, z, lo, hi, g: (forward(x, s, z, lo, hi), _fq()(x, s, z, lo, hi, g)[1])  # noqa: E731
    status, msg = _status(ex.check_fake_quant_ste, answer)
    assert status == "fail" and msg.startswith("your forward pass rounds"), msg
    assert "range ignores the zero point" not in msg and "gradient" not in msg, msg


def _fake_quant_cases():
    seen = []

    def spy(*args):
        seen.append(args)
        return ex._ref_fake_quant_ste(*args)

    assert ex.check_fake_quant_ste(spy, quiet=True).passed
    return seen


def test_fake_quant_reference_is_the_library():
    """The reference is FakeQuant's two passes with the given quantizer, and FakeQuant (with the
    quantizer its observer picks) follows the same rule as the lesson's solution."""
    sol = _solution("ex2_5-solution")
    g = np.random.default_rng(0)
    w = g.normal(0, 0.3, (16, 8)).astype(np.float32)
    w[0, :3] = 2.5, -3.0, 2.8                                       # outliers the observers clip
    grad = g.normal(0, 1, w.shape).astype(np.float32)
    for kwargs in ({"bits": 4, "per_channel": False, "observer": "mse"},
                   {"bits": 3, "per_channel": False, "scheme": "affine", "observer": "mse"}):
        fq = ex.FakeQuant(**kwargs)
        w_hat = fq.forward(w)
        qp = fq.qp
        x_hat, grad_x = sol(w, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax, grad)
        np.testing.assert_allclose(x_hat, w_hat, rtol=1e-6)
        np.testing.assert_array_equal(grad_x, fq.backward(w, grad))
        assert (grad_x == 0).any() and (grad_x != 0).any()          # some clipped, some not


def test_fake_quant_reference_is_torchs_gradient(torch, library_answers_allowed):
    """On every case the checker tries, the reference equals torch.fake_quantize_per_tensor_affine
    and its gradient, ties at the edges included."""
    for x, s, z, lo, hi, g in _fake_quant_cases():
        xt = torch.tensor(np.asarray(x, np.float32), requires_grad=True)
        y = torch.fake_quantize_per_tensor_affine(xt, float(s), int(z), int(lo), int(hi))
        y.backward(torch.from_numpy(np.asarray(g, np.float32)))
        x_hat, grad_x = ex._ref_fake_quant_ste(x, s, z, lo, hi, g)
        np.testing.assert_array_equal(y.detach().numpy(), x_hat)
        np.testing.assert_array_equal(xt.grad.numpy(), grad_x)


def test_fake_quant_cases_reach_the_edges(library_answers_allowed):
    """Case 1 has values on, and less than half a step beyond, both edges, where torch's rule and
    TensorFlow's x-range rule differ; case 2 has exact ties beyond the edges (odd zero point)."""
    (x, s, z, lo, hi, g), (x2, s2, z2, lo2, hi2, g2) = _fake_quant_cases()[:2]
    q = np.rint(np.asarray(x, np.float64) / s) + z
    assert {lo, hi} <= set(q.tolist())
    in_x = (x >= (lo - z) * s) & (x <= (hi - z) * s)
    in_q = (q >= lo) & (q <= hi)
    assert (in_q & ~in_x).sum() == 2 and (in_x & ~in_q).sum() == 0
    v = np.asarray(x2, np.float64) / s2
    assert np.any((v % 1 == 0.5) & (np.rint(v) + z2 == hi2)) and np.any((v % 1 == 0.5) & (np.rint(v) + z2 < lo2))


# ------------------------------------------------------------------------------ the quizzes
QUIZ_ANSWERS = {ex.check_quiz_a: {1: 5, 2: "b", 3: "a", 4: "c", 5: "b"},
                ex.check_quiz_b: {1: "b", 2: "c", 3: 4816, 4: "b", 5: "a"}}


@pytest.mark.parametrize("check,notebook", [(ex.check_quiz_a, NOTEBOOK_A), (ex.check_quiz_b, NOTEBOOK_B)])
def test_quiz_is_in_its_lesson_and_its_answers_pass(check, notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert any(check.markdown() in c.source for c in nb.cells if c.cell_type == "markdown")
    quiz_id = "quiz2a" if check is ex.check_quiz_a else "quiz2b"
    solution = next(c.source for c in nb.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == f"{quiz_id}-solution")
    ns = {}
    exec(solution, ns)
    assert ns["quiz_answers"]() == QUIZ_ANSWERS[check]
    status, msg = _status(check, ns["quiz_answers"])
    assert status == "pass", msg


@pytest.mark.parametrize("check", list(QUIZ_ANSWERS))
def test_every_wrong_quiz_answer_gets_its_hint(check):
    right = QUIZ_ANSWERS[check]
    for number, question in enumerate(check.questions, 1):
        assert question.why, question.prompt
        if question.options:
            wrong = [k for k in question.options if k != question.answer]
            assert set(wrong) == set(question.why), f"Q{number}: a `why` for every wrong option"
        else:
            wrong = [question.answer + 1]
        for answer in wrong:
            hint = question.why[answer if question.options else "number"]
            status, msg = _status(check, lambda number=number, answer=answer: {**right, number: answer})
            assert status == "fail" and f"Q{number}:" in msg and hint in msg, (number, answer, msg)
            assert "4 of 5 right" in msg


def test_quiz_hints_do_not_give_the_answer_away():
    for check in QUIZ_ANSWERS:
        for q in check.questions:
            if q.options:
                right = q.options[q.answer]
                assert all(right not in hint for hint in q.why.values()), q.prompt


def test_quiz_numbers_are_the_lessons():
    """Q1 of 02a (the zero point) and Q3 of 02b (the k-means bytes) computed as the lessons do."""
    scale = (2.0 - -1.0) / 15
    assert ex._ref_affine_qparams(-1.0, 2.0, 4) == (scale, ex.check_quiz_a.questions[0].answer)
    assert int(np.ceil(300 * 64 * 2 / 8)) + 4 * 4 == ex.check_quiz_b.questions[2].answer
