"""Lesson 04 widgets: they respond, their readouts change, and each change takes <= 100 ms."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
from compresslab import speed  # noqa: E402
from compresslab.widgets import speed as ws  # noqa: E402


def _median_ms(fn, values):
    times = []
    for v in values:
        t0 = time.perf_counter()
        fn(v)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def test_amdahl_explorer_updates_fast_and_correctly():
    ex = ws.amdahl_explorer(measured={1: 1.0, 2: 1.7}, fitted_p=0.82, p=0.5, cores=4)
    r0 = ex.readout.value
    assert f"{speed.amdahl(0.5, 4):.2f}x" in r0 and "measured here" in r0
    img0 = ex.image.value
    r1 = ex.update(p=0.9)
    assert r1 != r0 and f"{speed.amdahl(0.9, 4):.2f}x" in r1
    assert f"{speed.gustafson(0.9, 4):.2f}x" in r1 and "10.0x" in r1  # limit 1/(1-p)
    assert ex.image.value != img0 and ex.image.value[:4] == b"\x89PNG"
    r2 = ex.update(cores=16)
    assert f"{speed.amdahl(0.9, 16):.2f}x" in r2
    ms = _median_ms(lambda v: ex.update(p=v), np.linspace(0.1, 0.99, 11))
    ms2 = _median_ms(lambda v: ex.update(cores=int(v)), [2, 3, 5, 8, 13, 21, 34])
    print(f"amdahl explorer: {ms:.1f} ms per p change, {ms2:.1f} ms per cores change")
    assert ms <= 100 and ms2 <= 100


def test_amdahl_explorer_from_thread_scaling():
    scaling = speed.ThreadScaling([1, 2], {}, {1: 1.0, 2: 1.5}, 2 / 3)
    ex = ws.amdahl_explorer(scaling)
    assert ex.measured == {1: 1.0, 2: 1.5} and ex.fitted_p == pytest.approx(2 / 3)
    assert "2 threads 1.50x" in ex.readout.value


@pytest.mark.torch
def test_benchmark_dashboard():
    v = speed.build_variants(sizes=(32, 64, 64, 10), seed=0)
    d = ws.benchmark_dashboard(v, batches=(1, 16), batch=16, repeat=3)
    r0 = d.readout.value
    assert "batch 16" in r0 and "dense" in r0
    d.batch.value = 1
    assert d.readout.value != r0 and "batch 1" in d.readout.value
    ms = _median_ms(lambda b: setattr(d.batch, "value", b), [16, 1, 16, 1, 16])
    ms2 = _median_ms(lambda sel: setattr(d.select, "value", sel),
                     [("dense", "int8"), ("dense", "shrunk"), ("dense",), ("dense", "masked")])
    print(f"dashboard: {ms:.2f} ms per batch change, {ms2:.2f} ms per selection change")
    assert ms <= 100 and ms2 <= 100
    d.select.value = ("dense", "shrunk")
    cmp = d.run()
    assert set(cmp.speedup) == {"dense", "shrunk"} and "<table>" in d.table.value
    assert "shrunk" in d.table.value
    d.select.value = ()
    assert d.run() is None and "choose" in d.table.value


def test_benchmark_dashboard_times_numpy_models_without_torch():
    v = speed.build_variants(sizes=(32, 64, 64, 10), seed=0, engine="numpy")
    assert set(v) == {"dense", "masked", "shrunk", "numpy"}  # int8 needs torch's kernels
    assert all(type(v[k]).__module__ == "compresslab.nn" for k in ("dense", "masked", "shrunk"))
    d = ws.benchmark_dashboard(v, batches=(1, 16), batch=16, repeat=3, chosen=("dense", "shrunk"))
    assert d.n_in == 32 and "shrunk" in d.readout.value
    cmp = d.run()
    assert set(cmp.speedup) == {"dense", "shrunk"} and "<table>" in d.table.value
    x = np.random.default_rng(1).standard_normal((5, 32), dtype=np.float32)
    np.testing.assert_allclose(v["shrunk"](x), v["masked"](x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="engine"):
        speed.build_variants(sizes=(32, 64, 64, 10), engine="jax")
