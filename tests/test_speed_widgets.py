"""Lesson 04b widgets: they respond and their readouts change; a change redraws only the moving
lines (no full figure render) and times nothing (counted, not timed: wall-clock latency is
benchmarks/widget_latency.py's job)."""
from __future__ import annotations

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import matplotlib.figure
import numpy as np
import pytest

from compresslab import nn, speed
from compresslab.widgets import speed as ws


def count_calls(monkeypatch, targets):
    """Count the calls of each ``(owner, name)`` (the functions still run); returns {name: count}."""
    calls = {}
    for owner, name in targets:
        real = getattr(owner, name)
        calls[name] = 0

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_amdahl_explorer_updates_correctly_by_blitting(monkeypatch):
    """The 100 ms budget as a machine-independent cost: the axes are rendered once, when the
    explorer is built; a change of p or cores only redraws the moving lines on that background
    (no Figure.draw, no savefig) and encodes one PNG."""
    calls = count_calls(monkeypatch, [(matplotlib.figure.Figure, "draw"), (ws, "_png"), (ws, "_rgba_png")])
    ex = ws.amdahl_explorer(measured={1: 1.0, 2: 1.7}, fitted_p=0.82, p=0.5, cores=4)
    assert calls == {"draw": 1, "_png": 0, "_rgba_png": 1}     # the counters see the widget's work
    calls.update(dict.fromkeys(calls, 0))
    r0 = ex.readout.value
    assert f"{speed.amdahl(0.5, 4):.2f}x" in r0 and "measured here" in r0
    img0 = ex.image.value
    r1 = ex.update(p=0.9)
    assert r1 != r0 and f"{speed.amdahl(0.9, 4):.2f}x" in r1
    assert f"{speed.gustafson(0.9, 4):.2f}x" in r1 and "10.0x" in r1  # limit 1/(1-p)
    assert ex.image.value != img0 and ex.image.value[:4] == b"\x89PNG"
    r2 = ex.update(cores=16)
    assert f"{speed.amdahl(0.9, 16):.2f}x" in r2
    changes = 2
    for p in np.linspace(0.1, 0.99, 11):
        img = ex.image.value
        ex.p.value = p                                  # through the sliders, as a learner does
        assert f"{speed.amdahl(p, 16):.2f}x" in ex.readout.value and ex.image.value != img
    for n in (2, 3, 5, 8, 13, 21, 34):
        ex.cores.value = n
        assert f"{speed.gustafson(0.99, n):.2f}x" in ex.readout.value
    changes += 11 + 7
    assert calls == {"draw": 0, "_png": 0, "_rgba_png": changes}


def test_amdahl_explorer_from_thread_scaling():
    scaling = speed.ThreadScaling([1, 2], {}, {1: 1.0, 2: 1.5}, 2 / 3)
    ex = ws.amdahl_explorer(scaling)
    assert "2 threads 1.50x" in ex.readout.value
    # the measured points and the curve fitted to them are drawn
    lines = {l.get_label(): l for l in ex.ax.lines}
    np.testing.assert_array_equal(lines["measured here"].get_xdata(), [1, 2])
    np.testing.assert_array_equal(lines["measured here"].get_ydata(), [1.0, 1.5])
    fit = lines["fit to measured, p = 0.67"]
    np.testing.assert_allclose(fit.get_ydata(), speed.amdahl(2 / 3, fit.get_xdata()))


TIMERS = [(speed, "compare"), (speed, "timeit"), (speed, "_forward")]


def _forwards(monkeypatch, variants, torch=None):
    """Count forward passes of every variant model (torch hooks; compresslab models' __call__)."""
    ran = []
    if torch is not None:
        for name, m in variants.items():
            if isinstance(m, torch.nn.Module):
                m.register_forward_pre_hook(lambda *_a, _n=name: ran.append(_n))
    real = nn.Sequential.__call__

    def call(self, *args, **kwargs):
        ran.append(type(self).__name__)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(nn.Sequential, "__call__", call)
    return ran


def _controls_change_cost_readout_only(d, monkeypatch, selections, torch=None):
    """Move the batch and the selection: the cost readout follows (MACs from speed.variant_cost)
    while no timer runs and no model runs a forward pass. Returns the counters, still counting."""
    calls = count_calls(monkeypatch, TIMERS)
    ran = _forwards(monkeypatch, d.variants, torch)
    for b, sel in zip([1, 16, 1, 16], selections):
        d.batch.value = b
        d.select.value = sel
        text = d.readout.value
        assert f"batch {b}" in text
        for name in sel:
            assert f"{name}: {speed.variant_cost(d.variants, name, b).macs / 1e6:.1f} M MACs" in text
    assert calls == {"compare": 0, "timeit": 0, "_forward": 0} and ran == []
    return calls, ran


@pytest.mark.torch
def test_benchmark_dashboard(torch, monkeypatch):
    v = speed.build_variants(sizes=(32, 64, 64, 10), seed=0)
    d = ws.benchmark_dashboard(v, batches=(1, 16), batch=16, repeat=3)
    r0 = d.readout.value
    assert "batch 16" in r0 and "dense" in r0
    d.batch.value = 1
    assert d.readout.value != r0 and "batch 1" in d.readout.value
    calls, ran = _controls_change_cost_readout_only(
        d, monkeypatch, [("dense", "int8"), ("dense", "shrunk"), ("dense",), ("dense", "masked")], torch)
    d.select.value = ("dense", "shrunk")
    cmp = d.run()
    # Run does time, and the counters see it: the zeros above mean something
    assert calls["compare"] == 1 and calls["_forward"] == 2 and set(ran) == {"dense", "shrunk"}
    assert set(cmp.speedup) == {"dense", "shrunk"} and "<table>" in d.table.value
    assert "shrunk" in d.table.value
    d.select.value = ()
    assert d.run() is None and "choose" in d.table.value


def test_benchmark_dashboard_times_numpy_models_without_torch(monkeypatch):
    from compresslab import nn as cl_nn

    v = speed.build_variants(sizes=(32, 64, 64, 10), seed=0, engine="numpy")
    assert set(v) == {"dense", "masked", "shrunk", "numpy"}  # int8 needs torch's kernels
    assert all(isinstance(v[k], cl_nn.Sequential) for k in ("dense", "masked", "shrunk"))
    d = ws.benchmark_dashboard(v, batches=(1, 16), batch=16, repeat=3, chosen=("dense", "shrunk"))
    assert d.n_in == 32 and "shrunk" in d.readout.value
    calls, ran = _controls_change_cost_readout_only(
        d, monkeypatch, [("dense", "masked"), ("shrunk",), ("dense", "shrunk"), ("masked",)])
    d.select.value = ("dense", "shrunk")
    cmp = d.run()
    assert calls["compare"] == 1 and calls["_forward"] == 2 and ran and set(ran) == {"Sequential"}
    assert set(cmp.speedup) == {"dense", "shrunk"} and "<table>" in d.table.value
    x = np.random.default_rng(1).standard_normal((5, 32), dtype=np.float32)
    np.testing.assert_allclose(v["shrunk"](x), v["masked"](x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="engine"):
        speed.build_variants(sizes=(32, 64, 64, 10), engine="jax")


def test_speedups_plot_shades_the_practical_band():
    """Lesson 04a draws compare's practical band behind the speedup bars: the grey span covers
    [1 / (1 + band), 1 + band]; without ``band`` there is none."""
    import matplotlib.pyplot as plt

    from compresslab.plots import speed as sp

    rows = [{"name": "dense", "speedup": 1.0, "ci_low": 1.0, "ci_high": 1.0},
            {"name": "copy", "speedup": 0.99, "ci_low": 0.98, "ci_high": 1.0},
            {"name": "shrunk", "speedup": 3.1, "ci_low": 3.0, "ci_high": 3.2}]

    def band_patches(fig):
        return [p for p in fig.axes[0].patches if "no practical difference" in str(p.get_label())]

    fig = sp.speedups(rows, band=speed.AA_BAND)
    (band,) = band_patches(fig)
    display = band.get_path().transformed(band.get_transform()).vertices
    ys = fig.axes[0].transData.inverted().transform(display)[:, 1]      # data coordinates
    assert min(ys) == pytest.approx(1 / 1.05) and max(ys) == pytest.approx(1.05)
    plt.close(fig)
    fig = sp.speedups(rows)
    assert not band_patches(fig)
    plt.close(fig)
