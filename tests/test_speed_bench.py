"""The standard comparison (dense / masked / shrunk / int8 / CSR), `compresslab bench`, plots."""
from __future__ import annotations

import json

import numpy as np
import pytest

from compresslab import bench, speed

pytestmark = pytest.mark.torch  # every test here times torch models


@pytest.fixture(scope="module")
def variants():
    return speed.build_variants(sizes=(32, 64, 48, 10), amount=0.5, seed=0)


def test_variants_shapes_and_outputs(variants, torch):
    x = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = {k: variants[k](x) for k in ("dense", "masked", "shrunk", "int8", "shrunk+int8")}
    # masked keeps every shape; shrunk halves the hidden layers
    assert variants["masked"][0].weight.shape == (64, 32)
    assert variants["shrunk"][0].weight.shape == (32, 32)
    assert variants["shrunk"][2].weight.shape == (24, 32)
    # removing dead units changes nothing (up to float rounding)
    torch.testing.assert_close(out["shrunk"], out["masked"], rtol=1e-5, atol=1e-5)
    # int8 approximates its float32 model
    rel = (out["int8"] - out["dense"]).norm() / out["dense"].norm()
    assert rel < 0.05
    assert "Quantized" in type(variants["int8"][0]).__module__ + type(variants["int8"][0]).__name__ \
        or "quantized" in type(variants["int8"][0]).__module__
    # the masks come from compresslab.prune.structured: whole rows, half of them
    w = variants["numpy"]["masked"].layers[0].weight
    assert (np.abs(w).sum(axis=1) == 0).sum() == 32


@pytest.fixture(scope="module")
def report():
    return bench.standard_benchmark(batch=8, sizes=(64, 128, 128, 10), repeat=5, progress=False)


def test_standard_benchmark_report(report):
    d = json.loads(json.dumps(report, default=bench._json_default))
    names = [r["name"] for r in d["models"]["rows"]]
    assert names == ["dense", "masked", "shrunk", "int8", "shrunk+int8"]
    rows = {r["name"]: r for r in d["models"]["rows"]}
    assert rows["masked"]["macs"] == rows["dense"]["macs"]           # same work
    assert rows["shrunk"]["macs"] == 8 * (64 * 64 + 64 * 64 + 64 * 10)
    weights, biases = 64 * 128 + 128 * 128 + 128 * 10, 128 + 128 + 10
    assert rows["dense"]["param_bytes"] == 4 * (weights + biases)
    assert rows["int8"]["param_bytes"] == weights + 4 * biases     # int8 weights, float32 biases
    assert rows["shrunk"]["top1_agreement"] == 1.0 and rows["shrunk"]["reference"] == "masked"
    assert rows["shrunk"]["max_abs_diff"] < 1e-4
    c = d["csr"]
    assert c["layer_shape"] == [128, 128] and c["sparsity"] == pytest.approx(0.95, abs=1e-3)
    assert c["csr_bytes"] < c["dense_bytes"]
    assert set(d["required"]) == {"shrunk_vs_dense", "int8_vs_float32", "csr_vs_dense_batch1"}
    for r in d["required"].values():
        assert r["met"] == (r["ci"][0] >= r["target"])   # the whole interval must reach the target
    text = bench.report_table(report)
    assert "required ratios" in text and "shrunk+int8" in text


def test_missing_variant_is_not_met():
    report = {"models": {"rows": [{"name": "dense", "speedup": 1.0, "ci_low": 1.0, "ci_high": 1.0}]},
              "csr": {"rows": []}}
    req = bench.required_ratios(report)
    assert set(req) == {"shrunk_vs_dense", "int8_vs_float32", "csr_vs_dense_batch1"}
    assert not any(r["met"] for r in req.values())


def test_standard_benchmark_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sizes"):
        bench.standard_benchmark(sizes=(4, 2), progress=False)
    with pytest.raises(ValueError, match="sparsity"):
        bench.standard_benchmark(sparsity=1.0, progress=False)
    with pytest.raises(ValueError, match="variants"):
        bench.standard_benchmark(sizes=(8, 8, 2), variants=["dense", "fp16"], progress=False)


def test_cli_bench_writes_json_and_png(tmp_path, capsys):
    from compresslab import cli
    code = cli.main(["bench", "--out", str(tmp_path), "--sizes", "64,96,96,10", "--batch", "4",
                     "--repeat", "3", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "required ratios" in out and "bench.json" in out
    d = json.loads((tmp_path / "bench.json").read_text())
    assert d["models"]["sizes"] == [64, 96, 96, 10] and d["models"]["batch"] == 4
    png = (tmp_path / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_bench_bad_sizes(capsys):
    from compresslab import cli
    assert cli.main(["bench", "--sizes", "4,2", "--no-progress"]) == 2
    assert "sizes" in capsys.readouterr().err


def test_plots(report):
    import matplotlib
    matplotlib.use("Agg")
    from compresslab.plots import speed as sp
    fig = sp.benchmark(report)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 5
    roof = speed.Roofline(50e9, 10e9)
    fig = sp.roofline(roof, [{"name": "a", "intensity": 1.0, "achieved": 5e9},
                             {"name": "b", "intensity": 30.0}])
    assert fig.axes[0].get_xscale() == "log"
    n = np.arange(1, 9)
    fig = sp.amdahl(n, speed.amdahl(0.8, n), p=0.8, gustafson=speed.gustafson(0.8, n),
                    limit=1 / (1 - 0.8), fitted=speed.amdahl(0.75, n), fitted_p=0.75,
                    measured={1: 1.0, 2: 1.6})
    ys = [l.get_ydata() for l in fig.axes[0].lines]
    assert any(np.allclose(y, speed.amdahl(0.8, n)) for y in ys if len(y) == 8)
    assert any(np.allclose(y, speed.gustafson(0.8, n)) for y in ys if len(y) == 8)
    assert any(np.allclose(y, 5.0) for y in ys if len(y) == 2)  # Amdahl's limit 1 / (1 - p)
    labels = [l.get_label() for l in fig.axes[0].lines]
    assert "Amdahl, p = 0.80" in labels and "fit to measured, p = 0.75" in labels
    fig = sp.sparsity_sweep([0.5, 0.9], {1: [0.5, 2.0], 64: [0.2, 0.8]})
    assert len(fig.axes[0].lines) == 3
    sw = {"rows": [{"batch": 1, "cpu_s": 1e-3, "device_s": 1e-4, "device_with_transfer_s": 2e-4},
                   {"batch": 8, "cpu_s": 2e-3, "device_s": 1e-4, "device_with_transfer_s": 3e-4}],
          "device_name": "test", "date": "today", "cpu_threads": 2}
    fig = sp.cpu_gpu(sw)
    assert len(fig.axes[0].lines) == 3
    import matplotlib.pyplot as plt
    plt.close("all")
