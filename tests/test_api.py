"""One rule for in-place vs copy across the package (docs/maintainers.md, "API conventions"):
functions that *train* change the model they are given and return what training produced (like
``nn.fit`` and torch); functions that *convert* a model return a new one and leave theirs alone."""
import numpy as np
import pytest

from compresslab import distill, lowrank, nn, prune, quant

g = np.random.default_rng(0)
X, Y = g.normal(size=(48, 8)).astype(np.float32), g.integers(0, 3, 48)


def _model():
    return nn.mlp((8, 12, 3), seed=0)


def _weights(model):
    return [p.copy() for p in model.state_dict().values()]


def _changed(before, model):
    return any(not np.array_equal(a, b) for a, b in zip(before, _weights(model)))


def _prune_schedule(step):
    return prune.constant(step, 0.5, frequency=1)


TRAINERS = {
    "nn.fit": lambda m: nn.fit(m, X, Y, epochs=1, progress=False),
    "prune.fit_pruned": lambda m: prune.fit_pruned(m, X, Y, schedule=_prune_schedule, epochs=1, progress=False),
    "prune.agp": lambda m: prune.agp(m, X, Y, 0.5, epochs=1, frequency=1, progress=False),
    "distill.train_student": lambda m: distill.train_student(m, _model(), X, Y, epochs=1, progress=False),
    "quant.qat": lambda m: quant.qat(m, X, Y, bits=4, epochs=1, progress=False),
    "lowrank.fine_tune": lambda m: lowrank.fine_tune(m, X, Y, epochs=1, progress=False),
}


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_training_functions_train_the_model_they_are_given_and_return_its_history(name):
    m = _model()
    before = _weights(m)
    hist = TRAINERS[name](m)
    assert isinstance(hist, nn.History) and len(hist.loss) == 1
    assert _changed(before, m), f"{name} did not change the model it was given"


def test_finetune_codebooks_trains_in_place_and_returns_the_codebooks():
    km, books = quant.kmeans_quantize_model(_model(), 2)
    before = _weights(km)
    new = quant.finetune_codebooks(km, books, X, Y, epochs=1, lr=1e-2, progress=False)
    assert _changed(before, km) and len(new) == len(books)
    assert any(not np.array_equal(cb, cb0) for (cb, _), (cb0, _) in zip(new, books))   # the centroids moved


CONVERTERS = {
    "quant.quantize_model": lambda m: quant.quantize_model(m, 4, act_bits=None),
    "quant.kmeans_quantize_model": lambda m: quant.kmeans_quantize_model(m, 2)[0],
    "prune.shrink": lambda m: prune.shrink(m, {"0.weight": np.repeat([[1.0], [0.0]], 6, axis=0) * np.ones((12, 8))}),
    "lowrank.factorize": lambda m: lowrank.factorize(m, rank=2)[0],
}


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_converting_functions_return_a_new_model_and_leave_theirs_alone(name):
    m = _model()
    before = _weights(m)
    out = CONVERTERS[name](m)
    assert out is not m and not _changed(before, m), f"{name} changed the model it was given"


def test_a_failed_training_call_leaves_the_model_as_it_was():
    m = _model()
    before = _weights(m)
    with pytest.raises(ValueError, match="y must lie in"):
        quant.qat(m, X, np.full(len(X), 7), bits=4, epochs=1, progress=False)   # 3 classes, label 7
    assert all(getattr(l, "weight_transform", None) is None for l in m.layers) and not _changed(before, m)
    km, books = quant.kmeans_quantize_model(_model(), 2)
    with pytest.raises(ValueError, match="y must lie in"):
        quant.finetune_codebooks(km, books, X, np.full(len(X), 7), epochs=1, progress=False)
    assert all(getattr(l, "weight_transform", None) is None for l in km.layers)
