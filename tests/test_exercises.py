"""The checker framework: passes, specific hints, never a crash."""
import math

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
    assert {"0.1", "0.2"} <= set(reg)
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
