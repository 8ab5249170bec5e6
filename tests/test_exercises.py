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


@pytest.mark.parametrize("answer,status,hint", [
    (right_bytes, E.PASS, "agree"),
    (untouched, E.NOT_ATTEMPTED, "NotImplementedError"),
    (lambda m, bits=32: cl.nn.num_params(m), E.FAIL, "number of parameters"),
    (lambda m, bits=32: cl.nn.num_params(m) * bits, E.FAIL, "bits, not bytes"),
    (lambda m, bits=32: cl.nn.num_params(m) * 4, E.FAIL, "use the `bits` argument"),
    (lambda m, bits=32: cl.nn.num_params(m) * bits // 8, E.FAIL, "round up"),
    (lambda m, bits=32: math.ceil(sum(l.weight.size for l in m.layers if hasattr(l, "weight")) * bits / 8),
     E.FAIL, "forgot the biases"),
    (lambda m, bits=32: 1 / 0, E.ERROR, "ZeroDivisionError"),
    (lambda m: right_bytes(m), E.ERROR, "TypeError"),
    (42, E.FAIL, "expected a function"),
    (lambda m, bits=32: 7, E.FAIL, "wrong result"),
])
def test_model_bytes_checker(answer, status, hint):
    r = lesson00.check_model_bytes(answer, quiet=True)
    assert r.status == status, r.message
    assert hint in r.message


@pytest.mark.parametrize("answer,status,hint", [
    (lambda z, y: float(np.mean(z.argmax(1) == y)), E.PASS, "agree"),
    (untouched, E.NOT_ATTEMPTED, "NotImplementedError"),
    (lambda z, y: 100 * float(np.mean(z.argmax(1) == y)), E.FAIL, "percentage"),
    (lambda z, y: float(np.mean(z.argmax(1) != y)), E.FAIL, "error rate"),
    (lambda z, y: int(np.sum(z.argmax(1) == y)), E.FAIL, "number of correct"),
    (lambda z, y: "high", E.FAIL, "one number"),
])
def test_accuracy_checker(answer, status, hint):
    r = lesson00.check_accuracy(answer, quiet=True)
    assert r.status == status, r.message
    assert hint in r.message


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
