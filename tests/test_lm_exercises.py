"""Lesson 06a checkers (6.1 bits per weight, 6.2 Q4_0 blocks, the quiz 6a.quiz): the lesson's
solutions pass, every classic mistake -- written the way a learner would write it, not by calling
the checker's own model of it -- gets its own hint, and the quiz accepts its answers and explains
each wrong one."""
import json
import pathlib

import nbformat
import numpy as np
import pytest

from compresslab.exercises import REGISTRY
from compresslab.exercises import lesson06 as ex
from compresslab.quant import gguf, groups

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "lessons" / "06a_llm_weights.ipynb"

# The solution cells of lessons/06a_llm_weights.ipynb, verbatim (test_solutions_are_the_lessons).
SOLUTIONS = {
    "ex6_2-solution": '''\
def q4_0_blocks(x):
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float32)
    i = np.abs(x).argmax(axis=1)                       # the value of largest magnitude ...
    mx = x[np.arange(len(x)), i]                       # ... with its sign
    d = mx / np.float32(-8)                            # it gets code 0: mx = -8 d
    inv = np.zeros_like(d)
    nz = d != 0
    inv[nz] = np.float32(1) / d[nz]                    # ggml: id = d ? 1/d : 0
    q = np.trunc(x * inv[:, None] + np.float32(8.5))   # round half up, shifted by 8
    q = np.minimum(q, 15).astype(np.uint8)             # -mx would get 16
    return d.astype(np.float16), q
    ### END SOLUTION''',
    "ex6_1-solution": '''\
def group_bits(bits, group_size):
    ### BEGIN SOLUTION
    scale_bits, zero_bits = 16, bits          # per group: a float16 scale, a b-bit zero point
    return bits + (scale_bits + zero_bits) / group_size
    ### END SOLUTION''',
}


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


def _cells():
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"]).strip()
            for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]}


def test_solutions_are_the_lessons():
    cells = _cells()
    for grade_id, source in SOLUTIONS.items():
        assert cells[grade_id] == source, f"{grade_id} changed in {NOTEBOOK.name}: update SOLUTIONS"


def test_each_checker_belongs_to_the_lesson():
    assert {k for k, v in REGISTRY.items() if v["lesson"] == "06a_llm_weights"} == {"6.1", "6.2", "6a.quiz"}
    checks = {g for g in _cells() if g and g.endswith("-check")}
    assert checks == {"ex6_1-check", "ex6_2-check", "quiz6a-check"}


@pytest.mark.parametrize("check,grade_id", [(ex.check_q4_0, "ex6_2-solution"),
                                            (ex.check_group_bits, "ex6_1-solution")])
def test_lesson_solution_passes(check, grade_id):
    status, msg = _status(check, _solution(grade_id))
    assert status == "pass", msg


def _nie(*a):
    raise NotImplementedError()


@pytest.mark.parametrize("check", [ex.check_q4_0, ex.check_group_bits, ex.check_quiz])
def test_not_attempted(check):
    assert _status(check, _nie)[0] == "not attempted"


# ------------------------------------------------------------------ 6.2: the oracle
def test_the_reference_is_llama_cpp_bit_for_bit():
    """The checker's reference is the library's q4_0; compare it with llama.cpp's own Python
    package on the checker's kind of inputs (ties, extremes, an all-zero block)."""
    gg = pytest.importorskip("gguf")
    g = np.random.default_rng(0)
    near = np.zeros((3, 32))
    near[0, :2] = [-1.4554425477981567, 0.090965136885643]
    near[1, :2] = [-0.5247914791107178, -0.29519522190093994]
    near[2, :2] = [-8.0, 0.5 - 2.0 ** -25]
    x = np.vstack([np.linspace(-1, 1, 32), np.linspace(1, -1, 32), np.zeros(32), g.normal(0, 0.02, (6, 32)),
                   np.r_[-8.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, np.zeros(24)], near]).astype(np.float32)
    d, q = ex._reference_q4_0(x)
    assert d.shape == (len(x),) and q.shape == (len(x), 32)       # the shapes the exercise asks
    raw = gg.quants.quantize(x, gg.GGMLQuantizationType.Q4_0).reshape(len(x), 18)
    ours = np.concatenate([d[:, None].view(np.uint8).reshape(len(x), 2),
                           (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)], axis=1)
    assert np.array_equal(ours, raw)


def _q4(x, *, d_rule="signed", rounding="trunc", clamp=True, fp16=True, codes_from_fp16=False,
        guard_zero=True, shift=0, dtype=np.float32, divide=False, tie="first"):
    """Q4_0 as a learner writes it, with one thing changed."""
    x = np.asarray(x, dtype=dtype)
    if d_rule == "signed":
        a = np.abs(x)
        if tie == "positive":                     # among the largest magnitudes, the positive one
            i = np.array([max(np.flatnonzero(a[k] == a[k].max()), key=lambda j: x[k, j]) for k in range(len(x))])
        elif tie == "last":
            i = np.array([np.flatnonzero(a[k] == a[k].max())[-1] for k in range(len(x))])
        else:
            i = a.argmax(axis=1)
        d = x[np.arange(len(x)), i] / dtype(-8)
    elif d_rule == "absmax_neg":
        d = np.abs(x).max(axis=1) / dtype(-8)
    elif d_rule == "absmax_pos":
        d = np.abs(x).max(axis=1) / dtype(8)
    elif d_rule == "largest":
        d = x.max(axis=1) / dtype(-8)
    elif d_rule == "max_over_8":
        d = x[np.arange(len(x)), np.abs(x).argmax(axis=1)] / dtype(8)
    elif d_rule == "tensor":
        flat = x.ravel()
        d = np.full(len(x), flat[np.abs(flat).argmax()] / dtype(-8), dtype=dtype)
    d = d.astype(dtype)
    use = d.astype(np.float16).astype(dtype) if codes_from_fp16 else d
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(use == 0, 0, 1 / use).astype(dtype) if guard_zero else (dtype(1) / use)
        v = x * inv[:, None]
        if divide:
            v = np.where(use[:, None] == 0, 0, x / use[:, None]).astype(dtype)
        if rounding == "trunc":
            q = np.trunc(v + dtype(8.5))
        elif rounding == "round":
            q = np.round(v) + 8
        elif rounding == "roundf":
            q = np.sign(v) * np.floor(np.abs(v) + 0.5) + 8
        elif rounding == "floor":
            q = np.floor(v) + 8
        elif rounding == "floor_half":
            q = np.floor(v + dtype(0.5)) + 8
        elif rounding == "trunc_only":
            q = np.trunc(v) + 8
        q = np.clip(q, 0, 15) if clamp else q
        if clamp == "wrap":
            q = np.trunc(v + dtype(8.5)).astype(np.uint8) & 15
        q = np.nan_to_num(q, nan=0.0) + shift
    return (d.astype(np.float16) if fp16 else d), q.astype(np.int64)


def test_the_learners_writing_passes():
    assert _status(ex.check_q4_0, lambda x: _q4(x))[0] == "pass"


def test_answers_that_are_not_bit_exact_fail():
    """x / d instead of x * (1/d), float64 throughout, floor(x/d + 0.5) + 8: each right in exact
    arithmetic, each a code off from ggml on the checker's near-half cases, each with its own hint."""
    def div(x):
        x = np.asarray(x, dtype=np.float32)
        d = x[np.arange(len(x)), np.abs(x).argmax(axis=1)] / np.float32(-8)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(d[:, None] == 0, 8, np.minimum(np.trunc(x / d[:, None] + np.float32(8.5)), 15))
        return d.astype(np.float16), q
    _rejected_with(ex.check_q4_0, div, "x / d and x * (1/d) differ")
    _rejected_with(ex.check_q4_0, lambda x: _q4(x, dtype=np.float64), "you computed in float64")
    _rejected_with(ex.check_q4_0, lambda x: _q4(x, rounding="floor_half"), "floor(x/d + 0.5) + 8 is the same")
    # the checker's near-half case is where gguf (llama.cpp's Python package) and these disagree
    gg = pytest.importorskip("gguf")
    x = np.zeros((2, 32), np.float32)
    x[0, :2] = [-1.4554425477981567, 0.090965136885643]
    x[1, :2] = [-0.5247914791107178, -0.29519522190093994]
    raw = gg.quants.quantize(x, gg.GGMLQuantizationType.Q4_0).reshape(2, 18)[:, 2:]
    codes = np.concatenate([raw & 15, raw >> 4], axis=1)
    assert not np.array_equal(div(x)[1], codes) and np.array_equal(_q4(x)[1], codes)


@pytest.mark.parametrize("kwargs,hint", [
    ({"d_rule": "absmax_neg"}, "loses the sign of the extreme"),
    ({"d_rule": "absmax_pos"}, "d = max|x| / 8 puts the largest"),
    ({"d_rule": "max_over_8"}, "d = max / 8 (with the sign)"),
    ({"d_rule": "tensor"}, "one max over all the blocks"),
    ({"d_rule": "largest"}, "the largest value, not the value of largest magnitude"),
    ({"tie": "positive"}, "you took the positive one"),
    ({"tie": "last"}, "you took the last one"),
    ({"rounding": "trunc_only"}, "trunc(x/d) + 8 rounds toward zero"),
    ({"clamp": "wrap"}, "wrapped around to 0"),
    ({"divide": True, "dtype": np.float64}, "float64"),
    ({"rounding": "round"}, "nearest-even"),
    ({"rounding": "roundf"}, "away from zero"),
    ({"rounding": "floor"}, "floor(x/d) + 8 rounds down"),
    ({"clamp": False}, "clamp the codes at 15"),
    ({"fp16": False}, "d is not rounded to float16"),
    ({"codes_from_fp16": True}, "from the float16-rounded d"),
    ({"guard_zero": False}, "an all-zero block has d = 0"),
    ({"shift": -8}, "shifted by -8"),
])
def test_each_q4_0_mistake_gets_its_hint(kwargs, hint):
    _rejected_with(ex.check_q4_0, lambda x: _q4(x, **kwargs), hint)


def test_q4_0_malformed_answers_get_clear_hints():
    _rejected_with(ex.check_q4_0, lambda x: _q4(x)[1], "return a pair (d, q)")
    _rejected_with(ex.check_q4_0, lambda x: (_q4(x)[0][:1], _q4(x)[1]), "one float16 scale per block")
    _rejected_with(ex.check_q4_0, lambda x: (_q4(x)[0][:, None], _q4(x)[1]), "d must have shape (n_blocks,)")
    _rejected_with(ex.check_q4_0, lambda x: (_q4(x)[0], _q4(x)[1].ravel()), "packing them two per byte is not")
    _rejected_with(ex.check_q4_0, lambda x: (_q4(x)[0], _q4(x)[1].reshape(32, -1)), "q must have shape")

    def dequantized(x):
        d, q = _q4(x)
        return d, d.astype(np.float32)[:, None] * (q - 8)
    _rejected_with(ex.check_q4_0, dequantized, "you returned the dequantized weights")

    def one_off(x):
        d, q = _q4(x)
        q[0, 3] += 1
        return d, q
    _rejected_with(ex.check_q4_0, one_off, "1 of 32 codes differ")
    _rejected_with(ex.check_q4_0, one_off, "expected code 2, got 3")

    class Sneaky:                          # its __array__ would read the reference
        def __array__(self, dtype=None, copy=None):
            return gguf.q4_0(np.zeros((1, 32), np.float32))[0]
    _rejected_with(ex.check_q4_0, lambda x: (Sneaky(), Sneaky()), "two NumPy arrays of numbers")

    for bad in (1.0, np.nan):              # the scale of an all-zero block is 0: guarded, not replaced
        def guarded(x, bad=bad):
            d, q = _q4(x)
            d = d.copy()
            d[d == 0] = bad
            return d, q
        _rejected_with(ex.check_q4_0, guarded, "store 0 as its scale, and guard only the reciprocal")
    # a learner who zeroes d of an all-zero block but leaves the NaN codes, explained without a mistake
    def nan_codes(x):
        d, q = _q4(x)
        q[(np.asarray(x) == 0).all(axis=1)] = 3
        return d, q
    _rejected_with(ex.check_q4_0, nan_codes, "every value gets code trunc(0 + 8.5) = 8")


def test_q4_0_library_answer_is_refused():
    status, msg = _status(ex.check_q4_0, lambda x: gguf.q4_0(x))
    assert status == "fail" and "write it yourself" in msg


def test_q4_0_with_the_library_allowed_passes(library_answers_allowed):
    def library(x):                        # gguf.q4_0 returns (n, 1) and (n, 1, 32): the asked shapes
        d, q = gguf.q4_0(x)
        return d.reshape(len(x)), q.reshape(len(x), 32)
    assert _status(ex.check_q4_0, library)[0] == "pass"


# ------------------------------------------------------------------ 6.1
def test_group_bits_matches_the_packed_bytes():
    """The formula the checker wants is what quantize_groups really stores."""
    w = np.random.default_rng(0).normal(size=(8, 256)).astype(np.float32)
    for bits, g in ((4, 128), (3, 32), (2, 64), (8, 128)):
        gq = groups.quantize_groups(w, bits=bits, group_size=g)
        assert gq.nbytes() * 8 / w.size == pytest.approx(ex._reference_bits(bits, g))


@pytest.mark.parametrize("fn,hint", [
    (lambda b, g: b + 16 / g, "forgot the zero point"),
    (lambda b, g: b + (32 + b) / g, "scale as 32 bits"),
    (lambda b, g: b + (16 + 16) / g, "a 16-bit zero point next to the float16 scale"),
    (lambda b, g: b + 32 / g, "a float32 scale and no zero point"),
    (lambda b, g: b + (16 + 8) / g, "zero point as a byte"),
    (lambda b, g: b + (16 + b) / 128, "not by a whole row of 128"),
    (lambda b, g: (2 * b + 16) / g, "every weight pays its own b-bit code"),
    (lambda b, g: float(b), "only the code"),
    (lambda b, g: b + (16 + b) // g, "integer division"),
    (lambda b, g: round(b + (16 + b) / g, 2), "do not round"),
    (lambda b, g: round(b + (16 + b) / g, 1), "do not round"),
])
def test_each_group_bits_mistake_gets_its_hint(fn, hint):
    _rejected_with(ex.check_group_bits, fn, hint)


def test_group_bits_hints_do_not_state_the_formula():
    status, msg = _status(ex.check_group_bits, lambda b, g: (2 * b + 16) / g)
    assert "(16 + b)" not in msg and "16 + b" not in msg


def test_group_bits_non_number():
    _rejected_with(ex.check_group_bits, lambda b, g: "4.16", "return one number")


# ------------------------------------------------------------------ quiz
QUIZ_RIGHT = {1: 9437184, 2: "c", 3: "b", 4: "d"}


def test_quiz_is_in_the_lesson_and_its_answers_pass():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any(ex.check_quiz.markdown() in c.source for c in nb.cells if c.cell_type == "markdown")
    solution = _cells()["quiz6a-solution"]
    ns = {}
    exec(solution, ns)
    assert ns["quiz_answers"]() == QUIZ_RIGHT
    assert _status(ex.check_quiz, ns["quiz_answers"])[0] == "pass"


def test_every_wrong_quiz_answer_gets_its_hint():
    for number, question in enumerate(ex.check_quiz.questions, 1):
        if question.options:
            wrong = [k for k in question.options if k != question.answer]
            assert set(wrong) == set(question.why), f"Q{number}: a `why` for every wrong option"
        else:
            wrong = [12345]                   # a number with no specific hint gets the general one
        for answer in wrong:
            hint = question.why[answer if question.options else "number"]
            status, msg = _status(ex.check_quiz, lambda number=number, answer=answer: {**QUIZ_RIGHT, number: answer})
            assert status == "fail" and f"Q{number}:" in msg and hint in msg and "3 of 4 right" in msg


def test_quiz_q1_is_the_real_size():
    """4096 x 4096 weights in Q4_0: the bytes gguf really writes, scaled from one row."""
    row = gguf.gguf_quantize(np.ones((1, 4096), np.float32), "Q4_0")
    assert row.nbytes * 4096 == ex.check_quiz.questions[0].answer


@pytest.mark.parametrize("answer,hint", [
    (4096 * 4096 // 2, "only the 4-bit codes"),
    (9437184 * 8, "that is bits"),
    (4.5, "bits per weight"),
    (4096 * 4096 // 32 * 20, "a float32 d"),
    (4096 * 4096 // 32 * 34, "Q8_0"),
    (True, "answer with a number"),
])
def test_quiz_q1_wrong_numbers_get_their_own_hint(answer, hint):
    status, msg = _status(ex.check_quiz, lambda: {**QUIZ_RIGHT, 1: answer})
    assert status == "fail" and "Q1:" in msg and hint in msg, msg


def test_quiz_hints_do_not_give_the_answer_away():
    for q in ex.check_quiz.questions:
        if q.options:
            assert all(q.options[q.answer] not in hint for hint in q.why.values())
