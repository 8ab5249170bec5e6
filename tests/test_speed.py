"""compresslab.speed: the timer, interleaved comparison with bootstrap CIs, cost counting
(torch as the oracle for shapes and parameter counts), roofline, Amdahl/Gustafson, threads."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compresslab import nn, speed


# ------------------------------------------------------------------ a fake clock for exact tests
class FakeClock:
    """Replaces time.perf_counter inside compresslab.speed.timing so durations are exactly known."""

    def __init__(self):
        self.now = 0.0
        self.log = []

    def __call__(self):
        return self.now

    def work(self, name, seconds):
        def fn():
            self.log.append(name)
            self.now += seconds() if callable(seconds) else seconds
        return fn


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(speed.timing.time, "perf_counter", c)
    return c


# ------------------------------------------------------------------------------------ timeit
def test_timeit_backwards_compatible_fields(clock):
    t = speed.timeit(clock.work("a", 0.5), warmup=2, repeat=4, number=3)
    assert isinstance(t, speed.Timing)
    assert t.samples.shape == (4,)
    assert t.median == pytest.approx(0.5) and t.min == pytest.approx(0.5)
    assert t.iqr == pytest.approx(0.0)
    assert len(clock.log) == 2 + 4 * 3
    assert "cpu_count" in t.threads
    # positional construction as in the foundation still works
    t2 = speed.Timing(np.array([1.0, 2.0, 3.0]))
    assert t2.median == 2.0 and t2.min == 1.0 and t2.iqr == pytest.approx(1.0)
    assert "median" in repr(t2) and "±" in str(t2)


def test_timeit_median_iqr_match_numpy(clock):
    g = np.random.default_rng(0)
    durations = iter(g.uniform(1, 2, 100))
    t = speed.timeit(clock.work("a", lambda: next(durations)), warmup=0, repeat=50)
    assert t.median == pytest.approx(np.median(t.samples))
    q1, q3 = np.percentile(t.samples, [25, 75])
    assert t.iqr == pytest.approx(q3 - q1)
    assert t.to_dict()["n"] == 50


def test_timeit_sync_called_around_each_sample(clock):
    calls = []
    speed.timeit(clock.work("a", 1.0), warmup=1, repeat=5, sync=lambda: calls.append(clock.now))
    assert len(calls) == 10  # before and after each sample


def test_timeit_auto_number_reaches_min_sample(clock):
    t = speed.timeit(clock.work("a", 1e-5), warmup=0, repeat=3, number="auto", min_sample=1e-3)
    assert t.number * 1e-5 >= 1e-3
    assert t.median == pytest.approx(1e-5)


@pytest.mark.parametrize("kw, err", [
    (dict(repeat=0), ValueError), (dict(warmup=-1), ValueError), (dict(number=0), ValueError),
    (dict(number="many"), TypeError), (dict(sync="gpu"), ValueError)])
def test_timeit_rejects_bad_arguments(kw, err):
    with pytest.raises(err):
        speed.timeit(lambda: None, **kw)
    with pytest.raises(TypeError, match="fn"):
        speed.timeit(3)


def test_threads_context_sets_and_restores_blas_and_torch(torch):
    from threadpoolctl import threadpool_info
    before = torch.get_num_threads()
    blas_before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    seen = {}

    def fn():
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    t = speed.timeit(fn, warmup=0, repeat=1, threads=1)
    assert seen["torch"] == 1 and all(n == 1 for n in seen["blas"])
    assert t.threads["torch_threads"] == 1
    assert torch.get_num_threads() == before
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == blas_before
    with pytest.raises(ValueError, match="threads"):
        with speed.threads(0):
            pass


# ----------------------------------------------------------------------------------- compare
def test_compare_interleaves_with_rotating_order(clock):
    fns = {k: clock.work(k, 1.0) for k in "ABC"}
    speed.compare(fns, warmup=0, repeat=3)
    assert clock.log == list("ABC" "BCA" "CAB")


def test_compare_detects_a_real_speedup(clock):
    g = np.random.default_rng(1)
    fns = {"slow": clock.work("slow", lambda: 2.0 * g.lognormal(0, 0.05)),
           "fast": clock.work("fast", lambda: 1.0 * g.lognormal(0, 0.05))}
    c = speed.compare(fns, baseline="slow", repeat=21)
    assert c.speedup["fast"] == pytest.approx(2.0, rel=0.08)
    lo, hi = c.ci["fast"]
    assert lo <= c.speedup["fast"] <= hi and lo > 1
    assert c.verdict["fast"] == "faster" and c.is_speedup("fast")
    assert c.verdict["slow"] == "baseline"
    # and the other way round: a slowdown
    c2 = speed.compare(fns, baseline="fast", repeat=21)
    assert c2.verdict["slow"] == "slower" and not c2.is_speedup("slow")


def test_compare_refuses_a_speedup_when_ci_contains_one(clock):
    g = np.random.default_rng(2)
    # 3% apart, 30% noise: the point estimate may exceed 1, but the interval straddles 1
    fns = {"a": clock.work("a", lambda: 1.00 * g.lognormal(0, 0.3)),
           "b": clock.work("b", lambda: 0.97 * g.lognormal(0, 0.3))}
    c = speed.compare(fns, repeat=15)
    lo, hi = c.ci["b"]
    assert lo < 1 < hi
    assert c.verdict["b"] == "no clear difference" and not c.is_speedup("b")
    assert "no clear difference" in c.table()


def test_compare_bootstrap_is_seeded(clock):
    g = np.random.default_rng(3)
    fns = {"a": clock.work("a", lambda: g.lognormal(0, 0.2)),
           "b": clock.work("b", lambda: g.lognormal(0, 0.2))}
    c = speed.compare(fns, repeat=9)
    again = speed._bootstrap_ratio(c.timings["a"].samples, c.timings["b"].samples, 2000, 0.95,
                                   np.random.default_rng(0))
    assert again == pytest.approx(c.ci["b"])
    wider = speed._bootstrap_ratio(c.timings["a"].samples, c.timings["b"].samples, 2000, 0.99,
                                   np.random.default_rng(0))
    assert wider[0] <= again[0] and wider[1] >= again[1]


def test_compare_json_and_html(clock):
    c = speed.compare({"a": clock.work("a", 1.0), "b": clock.work("b", 0.5)}, repeat=5)
    d = json.loads(json.dumps(c.to_dict()))
    assert d["baseline"] == "a" and [r["name"] for r in d["rows"]] == ["a", "b"]
    assert "<table>" in c._repr_html_()


@pytest.mark.parametrize("fns, kw, err", [
    ({}, {}, ValueError), ({"a": 1}, {}, TypeError),
    ({"a": lambda: None}, {"baseline": "z"}, ValueError),
    ({"a": lambda: None}, {"repeat": 2}, ValueError),
    ({"a": lambda: None}, {"confidence": 1.0}, ValueError)])
def test_compare_rejects_bad_arguments(fns, kw, err):
    with pytest.raises(err):
        speed.compare(fns, **kw)


def test_compare_real_work_is_plausible():
    a = np.ones((200, 200), np.float32)
    c = speed.compare({"once": lambda: a @ a, "eight": lambda: [a @ a for _ in range(8)]},
                      repeat=7, number="auto")
    assert c.verdict["eight"] == "slower"
    assert c.speedup["eight"] < 0.5


# --------------------------------------------------------------------------- cost counting
def test_costs_of_an_mlp_by_hand():
    m = nn.mlp((4, 3, 2))
    cs = speed.layer_costs(m, batch=5)
    assert [c.macs for c in cs] == [5 * 12, 0, 5 * 6]
    assert [c.params for c in cs] == [15, 0, 8]
    assert [c.act_out_bytes for c in cs] == [5 * 3 * 4, 5 * 3 * 4, 5 * 2 * 4]
    assert cs[0].flops == 120 and cs[0].bytes == 60 + 80 + 60
    assert cs[0].intensity == pytest.approx(120 / 200)
    mc = speed.model_cost(m, batch=5)
    assert mc.macs == 90 and mc.flops == 180 and mc.param_bytes == 92
    assert mc.activation_bytes == 4 * 5 * (4 + 3 + 3 + 2)
    assert speed.model_cost(m, batch=5, bits=8).param_bytes == 18 + 5 * 4   # int8 weights, 32-bit biases
    assert speed.model_cost(m, batch=5, bits=8, bias_bits=8).param_bytes == 23
    assert speed.model_cost(m, batch=5, bits=4, bias_bits=16).param_bytes == 9 + 10
    assert "total" in mc.table()


def test_costs_match_torch_shapes_and_counts(torch):
    m = nn.cnn(seed=0)
    t = nn.to_torch(m)
    cs = speed.layer_costs(m, batch=3, input_shape=(1, 8, 8))
    x = torch.zeros(3, 1, 8, 8)
    for layer, c in zip(t, cs):
        y = layer(x)
        assert tuple(y.shape[1:]) == c.out_shape
        assert c.act_out_bytes == y.numel() * 4 and c.act_in_bytes == x.numel() * 4
        assert c.params == sum(p.numel() for p in layer.parameters())
        if isinstance(layer, torch.nn.Conv2d):
            k = layer.kernel_size[0]
            assert c.macs == y.numel() * layer.in_channels * k * k
        if isinstance(layer, torch.nn.Linear):
            assert c.macs == 3 * layer.in_features * layer.out_features
        x = y
    # a torch Sequential is accepted directly
    assert speed.model_cost(t, 3, (1, 8, 8)).macs == speed.model_cost(m, 3, (1, 8, 8)).macs


def test_nonzero_costs_count_only_kept_weights():
    from compresslab import prune
    m = nn.mlp((16, 8, 4), seed=0)
    masks = {"0.weight": prune.magnitude(m.layers[0].weight, 0.75)}
    prune.apply_masks(m, masks)
    dense = speed.model_cost(m, 2)
    sparse = speed.model_cost(m, 2, nonzero=True)
    assert dense.macs == 2 * (16 * 8 + 8 * 4)          # a dense kernel multiplies the zeros too
    assert sparse.macs == 2 * (32 + 8 * 4)


def test_costs_reject_bad_input():
    with pytest.raises(ValueError, match="input_shape"):
        speed.layer_costs(nn.cnn(seed=0))
    with pytest.raises(ValueError, match="expects"):
        speed.layer_costs(nn.mlp((4, 3)), input_shape=(5,))
    with pytest.raises(TypeError, match="model"):
        speed.layer_costs("mlp")
    with pytest.raises(ValueError, match="nbytes"):
        speed.arithmetic_intensity(10, 0)


# -------------------------------------------------------------------------------- roofline
def test_roofline_model():
    r = speed.Roofline(peak_flops=100e9, bandwidth=10e9)
    assert r.ridge == 10
    assert r.attainable(1) == 10e9 and r.attainable(100) == 100e9
    np.testing.assert_allclose(r.attainable([1, 10, 100]), [10e9, 100e9, 100e9])
    assert r.bound(1) == "memory-bound" and r.bound(50) == "compute-bound"
    p = r.place(flops=2e9, nbytes=1e9, seconds=1.0)
    assert p["intensity"] == 2 and p["attainable"] == 20e9 and p["fraction_of_roof"] == 0.1


def test_measure_roofline_formulas_and_work_with_a_ticking_clock(monkeypatch):
    """With a clock that advances 1 ms per reading, every timed sample lasts exactly 1 ms: the
    peak is 2 n^3 / 1 ms, the bandwidth 2 x bytes / 1 ms, and the clock is read twice per
    sample, so the work is bounded: ``repeat`` timed matmuls and ``repeat`` timed copies."""
    reads = []

    def tick():
        reads.append(None)
        return 1e-3 * len(reads)
    monkeypatch.setattr(speed.timing.time, "perf_counter", tick)
    r = speed.measure_roofline(n=512, mbytes=32, repeat=3)
    assert len(reads) == 2 * (3 + 3)
    assert r.peak_flops == pytest.approx(2 * 512 ** 3 / 1e-3)
    assert r.bandwidth == pytest.approx(2 * 32 * 2 ** 20 / 1e-3)
    assert r.ridge == pytest.approx(r.peak_flops / r.bandwidth)


def test_measure_roofline_is_plausible():
    r = speed.measure_roofline(n=512, mbytes=32, repeat=3)
    assert 1e8 < r.peak_flops < 1e14 and 1e8 < r.bandwidth < 1e13
    assert json.loads(json.dumps(r.to_dict()))["ridge"] == pytest.approx(r.ridge)


# ----------------------------------------------------------------------- Amdahl / Gustafson
def test_amdahl_and_gustafson_closed_forms():
    assert speed.amdahl(0, 8) == 1 and speed.amdahl(1, 8) == 8
    assert speed.amdahl(0.5, 2) == pytest.approx(4 / 3)
    assert speed.amdahl(0.95, 1e9) == pytest.approx(20, rel=1e-6)  # limit 1 / (1 - p)
    assert speed.gustafson(0.5, 2) == 1.5 and speed.gustafson(1, 8) == 8
    np.testing.assert_allclose(speed.amdahl(0.9, [1, 10]), [1, 1 / 0.19])
    for f in (speed.amdahl, speed.gustafson):
        with pytest.raises(ValueError, match="p"):
            f(1.5, 2)
        with pytest.raises(ValueError, match="n"):
            f(0.5, 0)


@settings(max_examples=50, deadline=None)
@given(p=st.floats(0, 1), ns=st.lists(st.integers(2, 64), min_size=1, max_size=4))
def test_fit_recovers_the_parallel_fraction(p, ns):
    n = [1] + ns
    s = [speed.amdahl(p, k) for k in n]
    assert speed.fit_parallel_fraction(n, s) == pytest.approx(p, abs=1e-9)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="n > 1"):
        speed.fit_parallel_fraction([1, 1], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        speed.fit_parallel_fraction([1, 2], [1])
    with pytest.raises(ValueError, match="positive"):
        speed.fit_parallel_fraction([1, 2], [1, -1])


def test_thread_scaling_sets_threads_and_fits(clock, torch):
    # fake work whose time follows Amdahl with p = 0.6 at the thread count in force
    fn = lambda: clock.work("w", 1.0 * speed.amdahl(0.6, 1) / speed.amdahl(0.6, torch.get_num_threads()))()  # noqa: E731
    ts = speed.thread_scaling(fn, threads=[1, 2, 4], repeat=3)
    assert ts.speedup[1] == 1
    assert ts.speedup[2] == pytest.approx(speed.amdahl(0.6, 2))
    assert ts.parallel_fraction == pytest.approx(0.6)
    assert ts.predict(4) == pytest.approx(speed.amdahl(0.6, 4))
    with pytest.raises(ValueError, match="include 1"):
        speed.thread_scaling(fn, threads=[2, 4])


# ---------------------------------------------------------------------------- CPU vs GPU
@pytest.mark.torch
def test_cpu_gpu_sweep_structure_on_cpu():
    m = speed.mlp_torch((32, 64, 10))
    sw = speed.cpu_gpu_sweep(m, batches=[1, 8], device="cpu", repeat=3)
    assert [r["batch"] for r in sw["rows"]] == [1, 8]
    assert sw["device"] == "cpu"
    for r in sw["rows"]:
        assert r["cpu_s"] > 0 and r["device_s"] > 0 and r["device_with_transfer_s"] > 0
        # each speedup is the ratio of the two medians reported next to it
        assert r["speedup_compute"] == pytest.approx(r["cpu_s"] / r["device_s"])
        assert r["speedup_with_transfer"] == pytest.approx(r["cpu_s"] / r["device_with_transfer_s"])
    assert json.loads(json.dumps(sw)) == sw


def test_cpu_gpu_sweep_refuses_missing_cuda(torch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        speed.cpu_gpu_sweep(speed.mlp_torch((8, 8, 2)), device="cuda")


def test_cpu_gpu_sweep_on_gpu(torch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    sw = speed.cpu_gpu_sweep(speed.mlp_torch((256, 512, 10)), batches=[1, 64], repeat=3)
    assert sw["device_name"] == torch.cuda.get_device_name()


def test_gpu_reference_loader(tmp_path):
    assert speed.load_gpu_reference(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="device_name"):
        speed.load_gpu_reference(bad)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"device_name": "X", "torch": "2", "date": "d", "rows": []}))
    assert speed.load_gpu_reference(ok)["device_name"] == "X"
    ref = speed.load_gpu_reference()  # the shipped file, if the lead has measured one
    if ref is not None:
        assert "cuda" in ref["device"] and ref["rows"]


def test_gpu_reference_path_is_the_shipped_datasets_file():
    from pathlib import Path

    import compresslab
    expected = Path(compresslab.__file__).parent / "datasets" / "gpu_reference.json"
    assert Path(speed.GPU_REFERENCE_PATH).resolve() == expected.resolve()


def test_package_reexports_every_public_name_of_its_modules():
    from compresslab.speed import cost, energy, gpu, laws, lm, timing, variants
    seen = set()
    for mod in (timing, cost, laws, variants, gpu, energy, lm):
        assert mod.__doc__ and mod.__all__
        for name in mod.__all__:
            assert getattr(speed, name) is getattr(mod, name), f"speed.{name} is not {mod.__name__}.{name}"
            assert name not in seen, f"{name} is exported by two modules"
            seen.add(name)
    assert seen == set(speed.__all__)
    # private helpers other modules use through the package
    assert speed._forward is variants._forward and speed._BITS is variants._BITS
    assert speed._is_torch_module is cost._is_torch_module
    # the benchmark program lives in compresslab.bench, not here
    for name in ("standard_benchmark", "required_ratios", "report_table", "run_bench", "_json_default"):
        assert not hasattr(speed, name)


def test_set_threads_global_and_restorable(torch):
    from threadpoolctl import threadpool_info
    before = torch.get_num_threads()
    blas_before = max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
    try:
        info = speed.set_threads(1)
        assert torch.get_num_threads() == 1 and info["torch_threads"] == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        with speed.threads(2):  # a block may still ask for more
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    finally:
        speed.set_threads(max(before, blas_before))
    with pytest.raises(ValueError):
        speed.set_threads(0)


def test_break_even():
    assert speed.break_even([0.5, 0.8, 0.9, 0.95], [0.3, 1.1, 0.9, 2.5]) == 0.95
    assert speed.break_even([0.99, 0.5, 0.9], [4.0, 0.4, 1.2]) == 0.9
    assert speed.break_even([0.5, 0.9], [0.5, 1.0]) is None
    assert speed.break_even([0.9, 0.95, 0.9], [1.2, 1.5, 0.98]) == 0.95   # repeats: every one must win
    assert speed.break_even([0.9, 0.9, 0.95], [0.98, 1.2, 1.5]) == 0.95   # in any order
    assert speed.break_even([], []) is None
    with pytest.raises(ValueError):
        speed.break_even([0.5], [1, 2])


def test_hidden_unit_masks_use_prune_structured():
    from compresslab import prune
    m = nn.mlp((8, 6, 4, 2), seed=1)
    masks = speed.hidden_unit_masks(m, 0.5)
    assert sorted(masks) == ["0.weight", "2.weight"]
    np.testing.assert_array_equal(masks["0.weight"], prune.structured(m.layers[0].weight, 0.5, dim=0))


@pytest.mark.parametrize("lo, hi, verdict", [
    (1.06, 1.2, "faster"), (0.8, 0.94, "slower"), (1.00, 1.05, "no practical difference"),
    (0.96, 1.03, "no practical difference"), (1.02, 1.08, "no clear difference"),
    (0.9, 1.1, "no clear difference"), (1.0501, 1.06, "faster"),
])
def test_verdict_uses_the_practical_band(lo, hi, verdict):
    from compresslab.speed.timing import _verdict
    assert _verdict(lo, hi, 0.05) == verdict


def test_verdict_with_band_zero_is_the_plain_interval_rule():
    from compresslab.speed.timing import _verdict
    assert _verdict(1.001, 1.02, 0.0) == "faster" and _verdict(0.98, 0.999, 0.0) == "slower"
    assert _verdict(0.99, 1.01, 0.0) == "no clear difference"


def test_inference_energy_is_the_table_formula():
    e = speed.inference_energy(macs=1000, weight_bytes=400, arithmetic="int8", activation_bytes=80)
    t = speed.HOROWITZ_45NM_PJ
    assert e.arithmetic_pj == pytest.approx(1000 * (t["int8 multiply"] + t["int32 add"]))
    assert e.dram_pj == pytest.approx(100 * 640.0) and e.sram_pj == pytest.approx(20 * 5.0)
    assert e.total_uj == pytest.approx((e.arithmetic_pj + e.dram_pj + e.sram_pj) / 1e6)
    with pytest.raises(ValueError, match="arithmetic"):
        speed.inference_energy(1, 1, arithmetic="int4")
    with pytest.raises(ValueError):
        speed.inference_energy(-1, 1)
