"""Lesson 01 extras: the pruning explorer (readout changes; the work of a change, counted) and
the exercise checkers (accept correct answers, name the classic mistakes)."""
from __future__ import annotations

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest

from compresslab import data, nn
from compresslab import prune as P
from compresslab.exercises import lesson01 as ex
from compresslab.widgets import prune as W

MASK_FUNCTIONS = ("magnitude", "random", "structured", "n_m")


@pytest.fixture(scope="module")
def trained():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 300, 100, 10), seed=0)
    nn.fit(m, d.X_train, d.y_train, epochs=3, progress=False)
    return m, d


def _count_work(monkeypatch):
    """Log the widget's expensive calls: evaluations (with their number of rows), mask
    computations, full figure renders (Figure.draw, which savefig also runs), training."""
    log = []
    real_evaluate = nn.evaluate

    def evaluate(model, X, y):
        log.append(("evaluate", len(X)))
        return real_evaluate(model, X, y)
    monkeypatch.setattr(nn, "evaluate", evaluate)
    for owner, name in [(P, f) for f in MASK_FUNCTIONS] + [(matplotlib.figure.Figure, "draw"), (nn, "fit")]:
        real = getattr(owner, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            log.append((_name, None))
            return _real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)
    return log


def test_a_change_costs_one_mask_one_evaluation_and_no_figure_render(trained, monkeypatch):
    """The 100 ms budget as a machine-independent cost (the widget's design): the histogram
    backgrounds are rendered once per layer when the explorer is built; a change then computes
    one mask, evaluates the model once on the test split, and blits: no figure is rendered,
    nothing is trained."""
    m, d = trained
    log = _count_work(monkeypatch)
    explorer = W.build(m, d.X_test, d.y_test)
    n_layers = len(explorer.layers)
    # the counters see the widget's own work: the dense accuracy, one background per layer
    assert sorted(log) == sorted([("evaluate", len(d.y_test))] + [("draw", None)] * n_layers)
    explorer.widget()
    changes = [(explorer.slider, v) for v in np.linspace(0.05, 0.95, 10)]
    changes += [(explorer.method_dd, meth) for meth in W.METHODS[1:]] + [(explorer.method_dd, "magnitude")]
    changes += [(explorer.layer_dd, name) for name in explorer.layers[1:]] + [(explorer.slider, 0.5)]
    for control, value in changes:
        log.clear()
        before = explorer.readout.value, explorer.image.value, explorer.mask_image.value
        control.value = value                              # as a learner does
        method = explorer.method_dd.value
        mask_fn = {"2:4": "n_m"}.get(method, method)
        assert sorted(log) == sorted([("evaluate", len(d.y_test)), (mask_fn, None)]), (control.description, value)
        assert (explorer.readout.value, explorer.image.value, explorer.mask_image.value) != before


def test_widget_readout_changes(trained):
    m, d = trained
    explorer = W.build(m, d.X_test, d.y_test)
    ui = explorer.widget()
    assert ui is not None and explorer.readout.value and explorer.image.value
    before, png_before = explorer.readout.value, explorer.image.value
    explorer.slider.value = 0.9  # as a browser would
    assert explorer.readout.value != before and explorer.image.value != png_before
    assert "90.0%" in explorer.readout.value
    for method in W.METHODS:
        explorer.method_dd.value = method
        assert method in explorer.readout.value
    explorer.method_dd.value = "magnitude"
    explorer.layer_dd.value = "2.weight"
    assert "2.weight" in explorer.readout.value
    # the model the widget shows is not the caller's: untouched
    assert not P.sparsity(m).zeros


def test_widget_accuracy_is_the_pruned_models(trained):
    m, d = trained
    explorer = W.build(m, d.X_test, d.y_test)
    explorer.update(sparsity=0.7, method="structured", layer="0.weight")
    ref = P.apply_masks(m.copy(), {"0.weight": P.structured(m[0].weight, 0.7, dim=0)})
    assert explorer.accuracy == pytest.approx(nn.evaluate(ref, d.X_test, d.y_test))
    with pytest.raises(ValueError, match="method"):
        explorer.update(method="nope")


def _ok(result):
    return result.status == "pass"


def test_checker_1_1_accepts_and_diagnoses():
    def good(w, amount):
        k = amount if isinstance(amount, int) else round(amount * w.size)
        mask = np.ones(w.size, np.float32)
        mask[np.argsort(np.abs(w), axis=None)[:k]] = 0
        return mask.reshape(w.shape)

    assert _ok(ex.check_magnitude_mask(good, quiet=True))
    assert _ok(ex.check_magnitude_mask(P.magnitude, quiet=True))
    hints = {
        ex._signed: "signed", ex._floor: "rounded down", ex._ceil: "rounded up",
        ex._largest: "largest", ex._keeps_k: "inverted", ex._off_by_one: "off-by-one",
    }
    for wrong, word in hints.items():
        r = ex.check_magnitude_mask(wrong, quiet=True)
        assert r.status == "fail" and word in r.message, (word, r.message)
    r = ex.check_magnitude_mask(lambda w, a: w, quiet=True)
    assert r.status == "fail"

    def todo(w, amount):
        raise NotImplementedError()
    assert ex.check_magnitude_mask(todo, quiet=True).status == "not attempted"


def test_checker_1_2_accepts_and_diagnoses():
    def good(W, amount):
        k = amount if isinstance(amount, int) else round(amount * W.shape[0])
        mask = np.ones(W.shape, np.float32)
        mask[np.argsort(np.linalg.norm(W, axis=1))[:k]] = 0
        return mask

    assert _ok(ex.check_neuron_mask(good, quiet=True))
    for wrong, word in {ex._wrong_axis: "columns", ex._signed_sum_rows: "signed sum",
                        ex._floor_rows: "rounded down", ex._unstructured: "unstructured"}.items():
        r = ex.check_neuron_mask(wrong, quiet=True)
        assert r.status == "fail" and word in r.message, (word, r.message)


def test_checker_1_3_accepts_and_diagnoses():
    assert _ok(ex.check_remove_neurons(lambda W1, b1, W2, k: (W1[k], b1[k], W2[:, k]), quiet=True))
    for wrong, word in {ex._forgot_next: "forgot the next layer", ex._next_rows: "columns",
                        ex._cols_first: "row", ex._forgot_bias: "biases"}.items():
        r = ex.check_remove_neurons(wrong, quiet=True)
        assert r.status == "fail" and word in r.message, (word, r.message)
    assert ex.check_remove_neurons(lambda *a: a[0], quiet=True).status == "fail"


def test_checkers_registered():
    from compresslab.exercises import all_checkers
    reg = all_checkers()
    assert {"1.1", "1.2", "1.3", "1.4"} <= set(reg)
    assert all(reg[k]["lesson"] == "01_pruning" for k in ("1.1", "1.2", "1.3", "1.4"))


def test_plots_draw_what_they_are_given():
    from compresslab.plots import prune as pp
    g = np.random.default_rng(0)
    w = g.normal(size=(30, 20))
    # histogram: kept + pruned bars count every weight; the pruned ones are |w| <= threshold
    fig = pp.weight_histogram(w, 0.5)
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches) == w.size
    assert sorted(float(l.get_xdata()[0]) for l in ax.lines) == [-0.5, 0.5]
    assert f"({int((np.abs(w) <= 0.5).sum())})" in ax.get_legend().get_texts()[1].get_text()
    # mask gallery: the picture is the mask itself
    mask = P.magnitude(w, 0.5)
    fig = pp.mask_gallery({"a": mask})
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), mask)
    assert "50% pruned" in fig.axes[0].get_title()
    # accuracy curves in percent; the zoom panel shows the top 5 points
    fig = pp.accuracy_vs_sparsity({"x": ([0.5, 0.9], [0.9, 0.8]), "random": ([0.5], [0.5])},
                                  baseline=0.95, zoom=5)
    x = next(l for l in fig.axes[0].lines if l.get_label() == "x")
    np.testing.assert_allclose(x.get_xydata(), [[50, 90], [90, 80]])      # (sparsity %, accuracy %)
    assert fig.axes[1].get_ylim() == pytest.approx((90, 97))
    # schedule: the target sparsity in percent, a dot at each mask update
    fig = pp.schedule(np.arange(10), np.linspace(0, 0.9, 10), np.arange(10) % 2 == 0)
    curve, dots = fig.axes[0].lines
    np.testing.assert_allclose(curve.get_ydata(), np.linspace(0, 90, 10))
    np.testing.assert_array_equal(dots.get_xdata(), [0, 2, 4, 6, 8])
    # latency bars in milliseconds
    fig = pp.latency_bars(["a", "b"], [1e-3, 5e-4], [1e-4, (4e-4, 6e-4)])
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([1.0, 0.5])
    plt.close("all")


def test_checker_1_4_accepts_and_diagnoses():
    import itertools

    def good(scan, sizes, budget):
        best, best_drop = None, np.inf
        for idx in itertools.product(range(len(scan.sparsities)), repeat=len(scan.layers)):
            choice = {n: float(scan.sparsities[j]) for n, j in zip(scan.layers, idx)}
            kept = sum(n - round(choice[k] * n) for k, n in sizes.items())
            drop = sum(scan.baseline - scan.accuracy[i, j] for i, j in enumerate(idx))
            if kept <= budget and drop < best_drop:
                best, best_drop = choice, drop
        return best

    assert _ok(ex.check_choose_sparsities(good, quiet=True))

    def kept_fraction(*a):
        return {k: 1 - v for k, v in good(*a).items()}

    def uniform(scan, sizes, budget):
        for s in scan.sparsities:
            if sum(n - round(s * n) for n in sizes.values()) <= budget:
                return {k: float(s) for k in scan.layers}

    def unweighted(scan, sizes, budget):
        total, best, best_drop = sum(sizes.values()), None, np.inf
        for idx in itertools.product(range(len(scan.sparsities)), repeat=len(scan.layers)):
            sp = [scan.sparsities[j] for j in idx]
            if np.mean([1 - s for s in sp]) * total <= budget:
                drop = sum(scan.baseline - scan.accuracy[i, j] for i, j in enumerate(idx))
                if drop < best_drop:
                    best, best_drop = dict(zip(scan.layers, map(float, sp))), drop
        return best

    for wrong, word in {kept_fraction: "kept", uniform: "same sparsity for every layer",
                        unweighted: "different sizes"}.items():
        r = ex.check_choose_sparsities(wrong, quiet=True)
        assert r.status == "fail" and word in r.message, (word, r.message)
    assert ex.check_choose_sparsities(lambda *a: {"0.weight": 0.5}, quiet=True).status == "fail"


def test_neuron_mask_checker_rejects_l1_norm():
    import numpy as np

    from compresslab.exercises import lesson01 as ex

    def l1_rows(W, amount):
        k = round(amount * W.shape[0]) if isinstance(amount, float) else amount
        drop = np.argsort(np.abs(W).sum(axis=1), kind="stable")[:k]
        mask = np.ones_like(W)
        mask[drop] = 0
        return mask

    r = ex.check_neuron_mask(l1_rows, quiet=True)
    assert r.status == "fail" and "ranked rows by their L1 norm" in r.message
