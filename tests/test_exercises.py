"""The checker framework: passes, specific hints, never a crash."""
import math
from pathlib import Path

import numpy as np
import pytest

import compresslab as cl
from compresslab import exercises as E
from compresslab.exercises import lesson00


def right_bytes(model, bits=32):
    return math.ceil(cl.nn.num_params(model) * bits / 8)


def untouched(*args, **kwargs):
    raise NotImplementedError()


# The solution cells of lessons/00_tour.ipynb, copied verbatim: a lesson solution that stops
# passing its checker fails here.
def lesson_model_bytes(model, bits=32):
    count = sum(getattr(layer, name).size for layer in model.layers for name in layer.param_names)
    return math.ceil(count * bits / 8)


def lesson_accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def lesson_linear_relu_ce_backward(x, W, b, y):
    n = x.shape[0]
    # forward pass, keeping what the backward pass needs
    z = x @ W.T + b                                    # (n, out) pre-activations
    a = np.maximum(z, 0)                               # ReLU: the logits of the softmax
    shifted = a - a.max(axis=1, keepdims=True)         # the row max off: exp cannot overflow
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    # backward pass
    da = probs.copy()
    da[np.arange(n), y] -= 1                           # softmax minus one-hot ...
    da /= n                                            # ... averaged over the batch
    dz = da * (z > 0)                                  # the ReLU passes the gradient only where z > 0
    dW = dz.T @ x                                      # (out, in), like W
    db = dz.sum(axis=0)                                # (out,), like b
    dx = dz @ W                                        # (n, in), like x
    return dW, db, dx


def n_params(m):
    return cl.nn.num_params(m)


@pytest.mark.parametrize("answer,status,hint", [
    (right_bytes, E.PASS, "agree"),
    (lesson_model_bytes, E.PASS, "all 9 test cases agree"),
    (lambda m, bits=32: -(-n_params(m) * bits // 8), E.PASS, "agree"),          # ceil by floor division
    (lambda m, bits=32: (n_params(m) * bits + 7) // 8, E.PASS, "agree"),
    (untouched, E.NOT_ATTEMPTED, "NotImplementedError"),
    (lambda m, bits=32: n_params(m), E.FAIL, "number of parameters"),
    (lambda m, bits=32: n_params(m) * bits, E.FAIL, "bits, not bytes"),
    (lambda m, bits=32: n_params(m) * 4, E.FAIL, "use the `bits` argument"),
    # rounding: 3 parameters at 4 bits = 1.5 bytes, 5 at 4 = 2.5, 5 at 2 = 1.25; the answer is 2, 3, 2
    (lambda m, bits=32: n_params(m) * bits // 8, E.FAIL, "rounded the byte count down"),
    (lambda m, bits=32: int(n_params(m) * bits / 8), E.FAIL, "rounded the byte count down"),
    (lambda m, bits=32: round(n_params(m) * bits / 8), E.FAIL, "round(2.5) = 2 (half to even)"),
    (lambda m, bits=32: math.floor(n_params(m) * bits / 8 + 0.5), E.FAIL, "rounded half up"),
    (lambda m, bits=32: n_params(m) * bits / 8, E.FAIL, "fractional number of bytes"),
    (lambda m, bits=32: n_params(m) * bits // 8 + 1, E.FAIL, "always added one byte"),
    (lambda m, bits=32: n_params(m) * math.ceil(bits / 8), E.FAIL, "whole bytes (ceil(bits / 8) each)"),
    (lambda m, bits=32: n_params(m) * max(1, bits // 8), E.FAIL, "whole bytes (ceil(bits / 8) each)"),
    (lambda m, bits=32: math.ceil(sum(l.weight.size for l in m.layers if hasattr(l, "weight")) * bits / 8),
     E.FAIL, "forgot the biases"),
    (lambda m, bits=32: math.ceil(sum(l.weight.size + l.bias.size for l in m.layers
                                      if isinstance(l, cl.nn.Linear)) * bits / 8),
     E.FAIL, "only counted Linear layers"),
    (lambda m, bits=32: 1 / 0, E.ERROR, "ZeroDivisionError"),
    (lambda m: right_bytes(m), E.ERROR, "TypeError"),
    (42, E.FAIL, "expected a function"),
    (lambda m, bits=32: 7, E.FAIL, "wrong result"),
])
def test_model_bytes_checker(answer, status, hint):
    r = lesson00.check_model_bytes(answer, quiet=True)
    assert r.status == status, r.message
    assert hint in r.message, r.message


def test_model_bytes_cases_separate_the_roundings():
    """The issue's hole: round(5 * 4 / 8) = 2 passed; 5 parameters at 4 bits need 3 bytes."""
    five = cl.nn.mlp((4, 1), seed=0)
    assert cl.nn.num_params(five) == 5 and cl.nn.nbytes(five, 4) == 3 and round(5 * 4 / 8) == 2
    r = lesson00.check_model_bytes(lambda m, bits=32: round(n_params(m) * bits / 8), quiet=True)
    assert r.status == E.FAIL and "MLP 4-1 (5 parameters) at 4 bits" in r.message, r.message


@pytest.mark.parametrize("answer,status,hint", [
    (lambda z, y: float(np.mean(z.argmax(1) == y)), E.PASS, "agree"),
    (lesson_accuracy, E.PASS, "all 5 test cases agree"),
    (lambda z, y: sum(int(np.argmax(row) == t) for row, t in zip(z, y)) / len(y), E.PASS, "agree"),
    (untouched, E.NOT_ATTEMPTED, "NotImplementedError"),
    (lambda z, y: 100 * float(np.mean(z.argmax(1) == y)), E.FAIL, "percentage"),
    (lambda z, y: float(np.mean(z.argmax(1) != y)), E.FAIL, "error rate"),
    (lambda z, y: 1 - float(np.mean(z.argmax(1) == y)), E.FAIL, "error rate"),
    (lambda z, y: int(np.sum(z.argmax(1) == y)), E.FAIL, "number of correct"),
    (lambda z, y: float(np.sum(z.argmax(1) == y) / z.shape[1]), E.FAIL, "number of classes"),
    (lambda z, y: float(np.mean(np.argmax(z) == y)), E.FAIL, "without an axis"),
    (lambda z, y: float(np.mean(np.argmax(z, axis=0) == y)), E.FAIL, "not axis=0"),
    (lambda z, y: "high", E.FAIL, "one number"),
])
def test_accuracy_checker(answer, status, hint):
    r = lesson00.check_accuracy(answer, quiet=True)
    assert r.status == status, r.message
    assert hint in r.message, r.message


def student_backward(x, W, b, y, *, mask=True, tie_passes=False, mean=True, onehot=True, stable=True,
                     relu=True, bias=True, forward_W=False, dW="dz.T @ x", dx="dz @ W", db="sum"):
    """A learner's backward pass of Linear -> ReLU -> cross-entropy, written independently of the
    checker (float64 inside, one-hot matrix, np.where), with one mistake switched on by a flag."""
    x64, W64, b64 = (np.asarray(v, np.float64) for v in (x, W, b))
    z = (x64 @ W64 if forward_W else x64 @ W64.T) + (b64 if bias else 0.0)
    logits = np.where(z > 0, z, 0.0) if relu else z
    with np.errstate(all="ignore"):
        e = np.exp(logits - logits.max(axis=1, keepdims=True)) if stable else np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
    g = p - np.eye(W.shape[0])[y] if onehot else p
    g = g / len(y) if mean else g
    if mask:
        g = np.where(z >= 0 if tie_passes else z > 0, g, 0.0)
    grads = {"dz.T @ x": lambda: g.T @ x64, "x.T @ dz": lambda: x64.T @ g}[dW](), \
        {"sum": g.sum(axis=0), "mean": g.mean(axis=0), "zeros": np.zeros_like(b64), "none": None}[db], \
        {"dz @ W": lambda: g @ W64, "dz @ W.T": lambda: g @ W64.T}[dx]()
    return tuple(v if v is None else v.astype(x.dtype) for v in grads)


def backward_with(**mistake):
    return lambda x, W, b, y: student_backward(x, W, b, y, **mistake)


def _mutating_backward(x, W, b, y):
    dW, db, dx = lesson_linear_relu_ce_backward(x, W, b, y)
    x *= 0                                     # spoils the input: the checker copies every case
    W[...] = 1
    return dW, db, dx


@pytest.mark.parametrize("answer,status,hint", [
    (lesson_linear_relu_ce_backward, E.PASS, "all 5 test cases agree"),
    (backward_with(), E.PASS, "finite differences"),
    (_mutating_backward, E.PASS, "agree"),
    (untouched, E.NOT_ATTEMPTED, "NotImplementedError"),
    (backward_with(mask=False), E.FAIL, "forgot the ReLU mask"),
    (backward_with(mask=False, relu=False), E.FAIL, "left out the ReLU"),
    (backward_with(tie_passes=True), E.FAIL, "where z = 0 exactly (z >= 0)"),
    (backward_with(mean=False), E.FAIL, "summed over the batch instead of averaging"),
    (backward_with(onehot=False), E.FAIL, "softmax minus the one-hot"),
    (backward_with(stable=False), E.FAIL, "softmax overflowed"),
    (backward_with(dW="x.T @ dz"), E.FAIL, "dW is transposed"),
    (backward_with(dx="dz @ W.T"), E.FAIL, "your dx multiplies by W.T"),
    (backward_with(dW="x.T @ dz", dx="dz @ W.T"), E.FAIL, "dW and dx are both transposed"),
    (backward_with(forward_W=True, dW="x.T @ dz", dx="dz @ W.T"), E.FAIL, "you used W where the layer uses W.T"),
    (backward_with(db="none"), E.FAIL, "db is missing"),
    (backward_with(db="zeros"), E.FAIL, "db is all zeros"),
    (backward_with(bias=False), E.FAIL, "left the bias b out of the forward pass"),
    (backward_with(db="mean"), E.FAIL, "db differ"),
    (lambda x, W, b, y: lesson_linear_relu_ce_backward(x, W, b, y)[::2], E.FAIL, "tuple (dW, db, dx)"),
    (lambda x, W, b, y: np.zeros(3), E.FAIL, "tuple (dW, db, dx)"),
    (lambda x, W, b, y: (x @ W.T)[1000], E.ERROR, "IndexError"),
])
def test_linear_relu_backward_checker(answer, status, hint):
    r = lesson00.check_linear_relu_backward(answer, quiet=True)
    assert r.status == status, r.message
    assert hint in r.message, r.message


def test_linear_relu_backward_checker_is_fast():
    import time

    start = time.perf_counter()
    lesson00.check_linear_relu_backward(backward_with(onehot=False), quiet=True)   # runs every mistake
    lesson00.check_linear_relu_backward(lesson_linear_relu_ce_backward, quiet=True)
    assert time.perf_counter() - start < 0.5


def test_linear_relu_backward_reference_agrees_with_finite_differences_and_torch(torch):
    for case in lesson00._grad_cases(np.random.default_rng(3)):
        x, W, b, y = case.args
        want = lesson00._library_backward(x, W, b, y)
        tx, tW, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, W, b))
        loss = torch.nn.functional.cross_entropy(torch.relu(tx @ tW.T + tb), torch.tensor(y))
        loss.backward()
        for got, t in zip(want, (tW, tb, tx)):
            np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-4, atol=1e-6)
        if not np.any(np.abs(x @ W.T + b) < 1e-3) and np.abs(x).max() < 10:   # smooth there: FD
            for got, fd in zip(want, lesson00._finite_differences(*(v.astype(np.float64) for v in (x, W, b)), y)):
                np.testing.assert_allclose(got, fd, rtol=1e-3, atol=1e-5)


# --------------------------------------------------------------------- choosing the hint
HALF_UP = E.Mistake(lambda x: math.floor(x + 0.5), "HALF-UP: you rounded halves up")
CEIL = E.Mistake(math.ceil, "CEIL: you rounded up")
ROUNDING_CASES = [E.Case("x = 2.5", (2.5,)), E.Case("x = 2.1", (2.1,)), E.Case("x = 3.0", (3.0,))]


def _feedback(answer, mistakes, cases=ROUNDING_CASES, **kwargs):
    """The message compare_cases fails with (reference: Python's round, half to even)."""
    with pytest.raises(E.Feedback) as info:
        E.compare_cases(answer, round, cases, mistakes, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("order", [[CEIL, HALF_UP], [HALF_UP, CEIL]])
def test_hint_names_the_mistake_that_agrees_on_the_most_cases(order):
    """ceil and "round half up" both give 3 on the first failing case (2.5); only one of them
    also explains 2.1, so the hint names that one, whatever order the mistakes are listed in."""
    half_up = _feedback(lambda x: int(x + 0.5), order)
    assert half_up.startswith("HALF-UP") and "(seen on x = 2.5)" in half_up
    ceil = _feedback(lambda x: -int(-x // 1), order)
    assert ceil.startswith("CEIL") and "(seen on x = 2.5)" in ceil


def test_equally_good_mistakes_go_to_the_first_listed():
    twin = E.Mistake(lambda x: math.floor(x + 0.5), "TWIN")
    assert _feedback(lambda x: int(x + 0.5), [HALF_UP, twin]).startswith("HALF-UP")
    assert _feedback(lambda x: int(x + 0.5), [twin, HALF_UP]).startswith("TWIN")


def test_a_mistake_must_match_the_failing_case_to_be_named():
    """A mistake that agrees with the answer on the other cases but not on the failing one is
    not the mistake made: the message falls back to "wrong result"."""
    msg = _feedback(lambda x: 7 if x == 2.5 else math.floor(x + 0.5), [HALF_UP, CEIL])
    assert msg.startswith("wrong result on x = 2.5: expected 2, got 7"), msg


def test_an_answer_that_raises_after_the_failing_case_still_gets_the_hint():
    def answer(x):
        if x == 2.5:
            return 3
        raise ValueError("boom")          # on 2.1 and 3.0: those cases count for no mistake
    msg = _feedback(answer, [HALF_UP, CEIL])
    assert msg.startswith("HALF-UP"), msg  # a tie (1 case each): the first listed


def test_an_answer_that_raises_before_any_failure_is_an_error_and_untouched_is_not_attempted():
    @E.checker("99.4", "rounding", lesson="test")
    def check_rounding(fn):
        return E.compare_cases(fn, round, ROUNDING_CASES, [HALF_UP, CEIL])

    try:
        r = check_rounding(lambda x: 1 / 0, quiet=True)
        assert r.status == E.ERROR and "ZeroDivisionError" in r.message and "x = 2.5" in r.message
        assert check_rounding(untouched, quiet=True).status == E.NOT_ATTEMPTED
        assert check_rounding(round, quiet=True).status == E.PASS
    finally:
        E.REGISTRY.pop("99.4")


def test_a_mistake_that_raises_is_skipped():
    def broken(x):
        raise RuntimeError("a classic mistake that cannot run on this case")
    msg = _feedback(lambda x: int(x + 0.5), [E.Mistake(broken, "BROKEN"), HALF_UP])
    assert msg.startswith("HALF-UP"), msg


def test_a_case_can_bring_its_own_comparison_and_explain_replaces_the_fallback():
    up_to_sign = E.Case("x = -2", (-2.0,), equal=lambda got, want: abs(got) == abs(want))
    E.compare_cases(lambda x: -x, lambda x: x, [up_to_sign])          # passes: equal up to sign
    msg = _feedback(lambda x: 5, [], [up_to_sign],
                    explain=lambda got, want, case: f"EXPLAINED {got} vs {want} on {case.description}")
    assert msg == "EXPLAINED 5 vs -2 on x = -2"


def test_checker_prints_one_line_and_records(capsys):
    E.reset()
    assert lesson00.check_model_bytes(untouched) is None
    out = capsys.readouterr().out
    assert out.startswith("[NOT ATTEMPTED YET] Exercise 0.1") and out.count("\n") == 1
    assert [r["status"] for r in E.results_as_dicts()] == [E.NOT_ATTEMPTED]


def test_learner_cannot_corrupt_the_reference_inputs():
    def mutating(model, bits=32):
        for layer in model.layers:
            for name in layer.param_names:
                getattr(layer, name)[...] = 0
        return right_bytes(model, bits)

    assert lesson00.check_model_bytes(mutating, quiet=True).status == E.PASS


def test_strict_mode_raises_for_nbgrader(monkeypatch):
    monkeypatch.setenv("COMPRESSLAB_STRICT", "1")
    with pytest.raises(AssertionError, match="Exercise 0.1"):
        lesson00.check_model_bytes(untouched)
    lesson00.check_model_bytes(right_bytes)  # a pass does not raise


def test_registry_lists_every_checker():
    reg = E.all_checkers()
    assert {"0.1", "0.2", "0.3"} <= set(reg)
    for info in reg.values():
        assert callable(info["checker"]) and info["title"] and info["lesson"]


def test_checker_bug_is_reported_not_raised():
    @E.checker("99.1", "broken checker", lesson="test")
    def check_broken(fn):
        raise KeyError("oops")

    r = check_broken(lambda: 1, quiet=True)
    assert r.status == E.ERROR and "checker could not run" in r.message
    E.REGISTRY.pop("99.1")


def test_tuple_answers_of_ragged_shapes_get_a_hint_not_a_checker_error():
    @E.checker("99.2", "ragged", lesson="test")
    def check_ragged(fn):
        cases = [E.Case("two arrays", (np.arange(4.0),))]
        return E.compare_cases(fn, lambda a: (a[:2], a), cases)

    r = check_ragged(lambda a: (a[:3] * 2, a[:1]), quiet=True)
    E.REGISTRY.pop("99.2")
    assert r.status == E.FAIL and "wrong result" in r.message


def test_same_shape_wrong_array_says_how_many_entries_differ():
    @E.checker("99.3", "entries", lesson="test")
    def check_entries(fn):
        return E.compare_cases(fn, lambda a: a * 2, [E.Case("a vector", (np.arange(10.0),))])

    r = check_entries(lambda a: a * 2 + (a > 7), quiet=True)
    E.REGISTRY.pop("99.3")
    assert r.status == E.FAIL and "2 of 10 entries differ" in r.message


def test_quiz_checker_names_each_wrong_answer_and_never_the_right_one():
    from compresslab.exercises import Question, quiz

    qs = [Question("2 + 2?", "b", {"a": "3", "b": "4", "c": "5"},
                   why={"a": "one short", "c": "one too many"}),
          Question("bytes of 10 int8 weights?", 10, why={"number": "one byte per int8 weight"}, tol=0.5)]
    check = quiz("99.quiz", "99_test", qs)
    try:
        def untouched():
            raise NotImplementedError()
        assert check(untouched, quiet=True).status == E.NOT_ATTEMPTED
        assert check(lambda: {1: "b", 2: 10}, quiet=True).status == E.PASS
        assert check(lambda: {"1": "(B)", "2": "10.2"}, quiet=True).status == E.PASS   # forgiving format
        r = check(lambda: {1: "c", 2: 80}, quiet=True)
        assert r.status == E.FAIL and "0 of 2 right" in r.message
        assert "one too many" in r.message and "one byte per int8 weight" in r.message
        assert "(b)" not in r.message and " 10 " not in r.message + " "
        assert "not answered" in check(lambda: {1: "b"}, quiet=True).message
        assert "one of a, b, c" in check(lambda: {1: "d", 2: 10}, quiet=True).message
        assert "no question 3" in check(lambda: {1: "b", 2: 10, 3: "a"}, quiet=True).message
        assert "return a dict" in check(lambda: ["b", 10], quiet=True).message
        assert "Q2.** bytes of 10 int8 weights?" in check.markdown()
    finally:
        from compresslab.exercises._core import REGISTRY
        REGISTRY.pop("99.quiz")


def test_every_lesson_has_a_quiz_of_three_to_five_questions_shown_in_the_lesson():
    import nbformat

    from compresslab.exercises import all_checkers
    lessons = sorted((Path(__file__).resolve().parents[1] / "lessons").glob("*.ipynb"))
    quizzes = {v["lesson"]: v for k, v in all_checkers().items() if k.endswith(".quiz")}
    for path in lessons:
        assert path.stem in quizzes, f"{path.name} has no quiz"
        info = quizzes[path.stem]
        assert 3 <= len(info["questions"]) <= 5
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
        assert info["checker"].markdown() in text, f"{path.name} does not show its quiz as the checker asks it"


# ------------------------------------------------------------------ lesson 00's self-check quiz
# The answers of the quiz cell of lessons/00_tour.ipynb, copied verbatim.
LESSON00_QUIZ = {1: "b", 2: 18979, 3: "c", 4: "b"}


def test_lesson00_quiz_accepts_the_lesson_answers_and_is_registered():
    assert lesson00.check_quiz(lambda: LESSON00_QUIZ, quiet=True).status == E.PASS
    info = E.all_checkers()["0.quiz"]
    assert info["lesson"] == "00_tour" and len(info["questions"]) == 4
    assert lesson00.check_quiz(untouched, quiet=True).status == E.NOT_ATTEMPTED


def test_lesson00_quiz_answers_agree_with_the_lesson_numbers():
    mlp = cl.nn.mlp((64, 300, 100, 10), seed=0)
    assert LESSON00_QUIZ[2] == math.ceil(cl.nn.num_params(mlp) * 3 / 8) == right_bytes(mlp, 3)
    macs = cl.speed.model_cost(mlp, batch=1).macs
    e32 = cl.speed.inference_energy(macs, cl.nn.nbytes(mlp, 32))
    e8 = cl.speed.inference_energy(macs, cl.speed.model_cost(mlp, batch=1, bits=8).param_bytes,
                                   arithmetic="int8")
    assert 3.5 < e32.total_pj / e8.total_pj < 4.5                      # Q4: about 4x
    cnn = cl.nn.cnn(seed=0)                                            # Q1: fewer parameters, more MACs
    assert cl.nn.num_params(cnn) < cl.nn.num_params(mlp)
    assert cl.speed.model_cost(cnn, batch=1, input_shape=(1, 8, 8)).macs > macs


@pytest.mark.parametrize("question,wrong", [
    (q, letter) for q, question in enumerate(lesson00.check_quiz.questions, 1)
    for letter in (question.options or {}) if letter != question.answer
] + [(2, 18978), (2, 18978.75), (2, 151830), (2, 50610), (2, 6326)])
def test_lesson00_quiz_names_each_wrong_answer_with_its_hint(question, wrong):
    q = lesson00.check_quiz.questions[question - 1]
    r = lesson00.check_quiz(lambda: {**LESSON00_QUIZ, question: wrong}, quiet=True)
    assert r.status == E.FAIL and "3 of 4 right" in r.message
    hint = q.why[wrong] if q.options else q.why["number"]
    assert f"Q{question}: " in r.message and hint in r.message
    if q.options:
        assert f"({q.answer})" not in r.message                        # never the right letter
    else:
        assert str(q.answer) not in r.message                          # never the right number


def test_learner_cannot_corrupt_arrays_inside_list_arguments():
    from compresslab.exercises._core import Case, compare_cases

    def reference(pairs):
        return sum(float(a.sum()) for a, _ in pairs)

    def sneaky(pairs):                      # right total, but zeroes the caller's arrays
        total = reference(pairs)
        for a, _ in pairs:
            a *= 0
        return total

    case = Case("two pairs", ([(np.ones(3), np.ones(2)), (np.full(2, 2.0), np.ones(1))],))
    assert "agree" in compare_cases(sneaky, reference, [case, case])
    assert case.args[0][0][0].sum() == 3.0   # the case itself is untouched


# --------------------------------------------------------------------------------------------
# Crafted return values and a switched-off watch (the adversarial review of `compresslab grade`)
# --------------------------------------------------------------------------------------------
class _AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = None


class _ReadsTheChecker:
    """A "number" whose float() is whatever the checker's frame expects."""

    def __float__(self):
        import sys

        frame = sys._getframe(1)
        while frame is not None:
            for name in ("want", "b"):
                if name in frame.f_locals:
                    return float(frame.f_locals[name])
            frame = frame.f_back
        return 0.0

    def __array__(self, dtype=None, copy=None):
        return np.asarray(float(self))


def test_an_object_that_equals_everything_is_a_wrong_result():
    r = lesson00.check_model_bytes(lambda m, bits=32: _AlwaysEqual(), quiet=True)
    assert r.status == E.FAIL and "return numbers" in r.message, r.message
    assert not E.same(_AlwaysEqual(), 3) and not E.same([_AlwaysEqual()], [3])
    assert not E.same(np.array([_AlwaysEqual()], dtype=object), np.array([3]))


def test_a_number_that_reads_the_checker_is_refused():
    r = lesson00.check_accuracy(lambda logits, labels: _ReadsTheChecker(), quiet=True)
    assert r.status == E.FAIL and "return one number" in r.message, r.message
    assert not E.same(_ReadsTheChecker(), 0.5)
    from compresslab.exercises._core import as_number, numeric_array

    assert numeric_array(_ReadsTheChecker()) is None and as_number(_ReadsTheChecker()) is None


def _question_on_the_stack():
    """The number the quiz question being checked expects, read from the checker's frames."""
    import sys

    frame = sys._getframe(2)
    while frame is not None:
        if isinstance(frame.f_locals.get("self"), E.Question):
            return frame.f_locals["self"].answer
        frame = frame.f_back
    return 0


class _PeekFloat(float):
    """A float whose float() is the answer of the question being checked."""

    def __float__(self):
        return float(_question_on_the_stack())


class _PeekInt(int):
    def __int__(self):
        return int(_question_on_the_stack())

    __index__ = __int__


def test_a_subclass_of_float_or_int_is_not_read_through_its_own_methods():
    from compresslab.exercises._core import as_number, numeric_array

    for fake in (_PeekFloat(123.0), _PeekInt(123)):
        r = lesson00.check_quiz(lambda f=fake: {**LESSON00_QUIZ, 2: f}, quiet=True)
        assert r.status == E.FAIL and "Q2: answer with a number, not _Peek" in r.message, r.message
        assert as_number(fake) is None and numeric_array(fake) is None and numeric_array([1.0, fake]) is None
        assert not E.same(fake, 123) and not E.same([fake], [123])
    # plain Python and NumPy numbers, and exact Fraction and Decimal quiz answers, still count
    import decimal
    import fractions

    assert as_number(True) == 1.0 and as_number(3) == 3.0 and as_number(np.float32(0.5)) == 0.5
    for value in (18979, 18979.0, np.int64(18979), fractions.Fraction(18979), decimal.Decimal("18979")):
        assert lesson00.check_quiz(lambda v=value: {**LESSON00_QUIZ, 2: v}, quiet=True).status == E.PASS, value


@pytest.mark.parametrize("got, want", [
    ([1, 2, 3], np.array([1, 2, 3])), ((1.0, 2.5), np.array([1.0, 2.5])), (np.float32(0.5), 0.5),
    (3, np.int64(3)), (True, True), (np.array(2.0), 2.0), ([np.array([1.0]), np.array([2.0, 3.0])],
                                                          [np.array([1.0]), np.array([2.0, 3.0])]),
    ({"a": "01", "b": "1"}, {"a": "01", "b": "1"}), ([], []),
])
def test_plain_numbers_and_containers_still_compare(got, want):
    assert E.same(got, want)


@pytest.mark.parametrize("value", [0.75, np.float64(0.75), np.float32(0.75), np.array(0.75), 3 / 4])
def test_same_number_takes_python_and_numpy_numbers(value):
    from compresslab.exercises._core import same_number

    assert same_number("x")(value, 0.75)


def test_an_answer_that_turns_off_the_watch_fails():
    import sys

    def sneaky(model, bits=32):
        getattr(sys, "set" + "profile")(None)
        return cl.nn.nbytes(model, bits)

    before = sys.getprofile()
    r = lesson00.check_model_bytes(sneaky, quiet=True)
    assert r.status == E.FAIL and "turned off the grader's watch" in r.message, r.message
    assert sys.getprofile() is before


def test_a_forbidden_call_in_a_thread_the_answer_starts_is_seen():
    import threading

    def threaded(model, bits=32):
        out = []
        t = threading.Thread(target=lambda: out.append(cl.nn.nbytes(model, bits)))
        t.start()
        t.join()
        return out[0]

    r = lesson00.check_model_bytes(threaded, quiet=True)
    assert r.status == E.FAIL and "cl.nn.nbytes" in r.message, r.message
