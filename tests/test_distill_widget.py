"""Lesson 03 widget: updates change the readout and follow the library; a change evaluates one
softmax and draws no figure (counted, not timed: wall-clock latency is benchmarks/widget_latency.py's job)."""
from __future__ import annotations

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import matplotlib.figure
import numpy as np
import pytest

import compresslab.plots.distill
from compresslab import distill as D
from compresslab.widgets import distill as wd
from compresslab.widgets.distill import temperature_explorer


@pytest.fixture(scope="module")
def explorer():
    g = np.random.default_rng(0)
    logits = 4 * g.normal(size=(40, 10))
    images = g.random((40, 8, 8))
    labels = logits.argmax(1)
    grid = g.random((4, 5))
    return temperature_explorer(logits, images, labels, grid=grid, grid_Ts=[1, 2, 4, 8, 16],
                                grid_alphas=[0.0, 0.5, 0.9, 1.0])


def test_update_changes_readout_and_matches_library(explorer):
    before = (explorer.readout.value, explorer.image.value)
    s = explorer.update(T=10.0)
    assert explorer.readout.value != before[0] and explorer.image.value != before[1]
    p = D.softmax(explorer.logits[explorer.index], 10.0)
    np.testing.assert_allclose(s["probs"], p)
    assert s["entropy"] == pytest.approx(float(D.entropy(p)))
    assert f"{s['entropy']:.3f}" in explorer.readout.value
    s = explorer.update(index=explorer.examples[3], alpha=0.5)
    assert s["index"] == explorer.examples[3]
    assert s["grid_T"] == 8.0 and s["grid_alpha"] == 0.5
    assert s["val_acc"] == pytest.approx(explorer.grid[1, 3])
    assert f"{100 * s['val_acc']:.1f}%" in explorer.grid_readout.value


def test_entropy_grows_with_temperature(explorer):
    hs = [explorer.update(T=T)["entropy"] for T in (0.5, 1, 2, 4, 8, 16, 30)]
    assert all(b >= a - 1e-12 for a, b in zip(hs, hs[1:]))


def test_slider_callbacks_are_wired(explorer):
    explorer.T_slider.value = 2.0
    assert explorer.T == pytest.approx(2.0, rel=1e-6)
    explorer.picker.value = explorer.examples[1]
    assert explorer.index == explorer.examples[1]
    explorer.alpha_slider.value = 0.9
    assert explorer.alpha == 0.9


def test_a_change_computes_one_softmax_and_renders_no_figure(monkeypatch):
    """The 100 ms budget as a machine-independent cost: the grid heatmap is rendered once, when
    the explorer is built; a change of T, example or alpha then evaluates one softmax of one
    example (C numbers) and never renders a matplotlib figure."""
    calls = {"grid_heatmap": 0, "_png": 0, "Figure.draw": 0}
    softmax_inputs = []

    def count(owner, name, key):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)
    count(compresslab.plots.distill, "grid_heatmap", "grid_heatmap")
    count(wd, "_png", "_png")
    count(matplotlib.figure.Figure, "draw", "Figure.draw")
    real_softmax = D.softmax

    def softmax(z, *args, **kwargs):
        softmax_inputs.append(np.shape(z))
        return real_softmax(z, *args, **kwargs)
    monkeypatch.setattr(D, "softmax", softmax)

    g = np.random.default_rng(1)
    ex = temperature_explorer(4 * g.normal(size=(40, 10)), g.random((40, 8, 8)), g.integers(0, 10, 40),
                              grid=g.random((3, 5)), grid_Ts=[1, 2, 4, 8, 20], grid_alphas=[0.0, 0.5, 1.0])
    # the counters see the widget's own work: one heatmap, rendered, and softmaxes of many examples
    assert calls["grid_heatmap"] == 1 and calls["_png"] == 1 and calls["Figure.draw"] >= 1
    assert (40, 10) in softmax_inputs
    calls.update(dict.fromkeys(calls, 0))
    softmax_inputs.clear()
    changes = 0
    for k, T in enumerate(np.geomspace(0.4, 25, 40)):
        before = ex.readout.value, ex.image.value
        ex.T_slider.value = T                              # through the controls, as a learner does
        changes += 1
        if k % 4 == 0:
            ex.picker.value = ex.examples[(ex.examples.index(ex.index) + 1) % len(ex.examples)]
            changes += 1
        if k % 5 == 0:
            ex.alpha_slider.value = ex.grid_alphas[(ex.grid_alphas.index(ex.alpha) + 1) % 3]
            changes += 1
        assert (ex.readout.value, ex.image.value) != before
    assert calls == {"grid_heatmap": 0, "_png": 0, "Figure.draw": 0}
    assert softmax_inputs == [(10,)] * changes


def test_bad_inputs():
    with pytest.raises(ValueError, match="same length"):
        temperature_explorer(np.zeros((3, 10)), np.zeros((2, 8, 8)), np.zeros(3, int))
    with pytest.raises(ValueError, match="grid has shape"):
        temperature_explorer(np.zeros((3, 10)), np.zeros((3, 8, 8)), np.zeros(3, int),
                             grid=np.zeros((2, 2)), grid_Ts=[1, 2, 3], grid_alphas=[0, 1])


def test_drawing_is_well_formed_svg_with_one_bar_per_class(explorer):
    import xml.etree.ElementTree as ET
    explorer.update(T=3.0, index=explorer.examples[2])
    root = ET.fromstring(explorer.image.value)
    assert root.tag.endswith("svg")
    bars = [r for r in root.iter()
            if r.tag.endswith("rect") and r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(bars) == 10
    p = explorer.state()["probs"]
    heights = np.array([float(b.get("height")) for b in bars])
    np.testing.assert_allclose(heights / heights.max(), p / p.max(), atol=0.02)
