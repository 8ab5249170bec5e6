"""compresslab.report: one table and one Pareto plot for any set of variants."""
from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import encode, report


@pytest.fixture(scope="module")
def digits():
    return cl.data.load_digits(seed=0)


def test_pareto_front_brute_force():
    g = np.random.default_rng(0)
    for _ in range(50):
        b = g.integers(1, 10, 8).astype(float)
        a = g.integers(0, 5, 8) / 4
        mask = report.pareto_front(b, a)
        for i in range(8):
            dominated = any(b[j] <= b[i] and a[j] >= a[i] and (b[j] < b[i] or a[j] > a[i])
                            for j in range(8))
            assert mask[i] == (not dominated)


def test_compare_measures_every_column(digits, tmp_path):
    d = digits
    big = cl.nn.mlp((64, 32, 10), seed=0)
    cl.nn.fit(big, d.X_train, d.y_train, epochs=5, progress=False)
    tiny = cl.nn.mlp((64, 4, 10), seed=0)
    size = encode.save(big, tmp_path / "big.npz")
    rep = report.compare([report.Variant("big", big, nbytes=size, group="dense"),
                          report.Variant("tiny", tiny, group="distill")],
                         d.X_test, d.y_test, repeat=3, number=2)
    b, t = rep.row("big"), rep.row("tiny")
    assert b["accuracy"] == cl.nn.evaluate(big, d.X_test, d.y_test)
    assert b["bytes"] == size and b["ratio"] == 1.0
    assert t["bytes"] == encode.file_size(tiny)                  # default: the encoded file
    assert t["ratio"] == pytest.approx(size / t["bytes"])
    assert t["memory"] == cl.nn.nbytes(tiny) and t["params"] == cl.nn.num_params(tiny)
    assert b["latency_s"] > 0 and t["speedup"] == pytest.approx(b["latency_s"] / t["latency_s"])
    assert t["acc_delta"] == pytest.approx(t["accuracy"] - b["accuracy"])
    text = rep.table()
    assert "big" in text and "tiny" in text and "x smaller" in text
    # neither dominates the other: tiny is smaller, big (trained) is more accurate
    assert t["bytes"] < b["bytes"] and t["accuracy"] < b["accuracy"]
    assert set(rep.pareto()) == {"big", "tiny"}
    fig = rep.plot()
    assert fig.axes[0].get_xscale() == "log"
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_compare_dict_forms_predict_and_no_latency(digits):
    d = digits
    m = cl.nn.mlp((64, 8, 10), seed=1)
    calls = []

    def predict(X):
        calls.append(len(X))
        return cl.nn.predict(m, X)

    rep = report.compare({"a": m, "b": (m, 1234), "c": report.Variant("x", predict=predict, nbytes=99)},
                         d.X_test, d.y_test, latency=False, baseline="b")
    assert [r["name"] for r in rep.rows] == ["a", "b", "c"]
    assert rep.row("b")["bytes"] == 1234 and rep.row("c")["bytes"] == 99
    assert rep.row("c")["memory"] is None and calls == [len(d.X_test)]
    acc = cl.nn.evaluate(m, d.X_test, d.y_test)
    assert rep.row("a")["accuracy"] == rep.row("b")["accuracy"] == rep.row("c")["accuracy"] == acc
    assert "latency" not in rep.table()


def test_compare_errors(digits):
    d = digits
    m = cl.nn.mlp((64, 8, 10))
    with pytest.raises(ValueError, match="empty"):
        report.compare([], d.X_test, d.y_test)
    with pytest.raises(ValueError, match="unique"):
        report.compare([report.Variant("a", m), report.Variant("a", m)], d.X_test, d.y_test, latency=False)
    with pytest.raises(ValueError, match="baseline"):
        report.compare({"a": m}, d.X_test, d.y_test, baseline="zzz", latency=False)
    with pytest.raises(ValueError, match="needs a model"):
        report.compare([report.Variant("a")], d.X_test, d.y_test)
    with pytest.raises(ValueError, match="entries"):
        report.compare({"a": m}, d.X_test, d.y_test[:5])


def test_energy_column_from_macs_bytes_and_precision(digits):
    d = digits
    big, small = cl.nn.mlp((64, 32, 10), seed=0), cl.nn.mlp((64, 8, 10), seed=0)
    rep = report.compare([report.Variant("big", big),
                          report.Variant("small", small),
                          report.Variant("big int8", big, weight_bytes=64 * 32 + 32 * 10,
                                         arithmetic="int8"),
                          report.Variant("on chip", big, macs=100, weight_bytes=400),
                          report.Variant("no model", predict=lambda X: cl.nn.predict(big, X), nbytes=9)],
                         d.X_test, d.y_test, latency=False)
    b, s, q, c, n = (rep.row(k) for k in ("big", "small", "big int8", "on chip", "no model"))
    # defaults: every weight's MAC (a dense kernel), the bytes the runtime holds, float32
    assert b["macs"] == cl.speed.model_cost(big).macs == 64 * 32 + 32 * 10
    assert b["weight_bytes"] == b["memory"] == cl.nn.nbytes(big) and b["arithmetic"] == "float32"
    want = cl.speed.inference_energy(b["macs"], b["weight_bytes"]).total_uj
    assert b["energy_uj"] == pytest.approx(want)
    assert s["energy_uj"] < b["energy_uj"]                      # fewer bytes read, fewer MACs
    assert q["energy_uj"] == pytest.approx(cl.speed.inference_energy(
        b["macs"], 64 * 32 + 32 * 10, arithmetic="int8").total_uj)
    assert c["macs"] == 100 and c["energy_uj"] == pytest.approx(
        cl.speed.inference_energy(100, 400).total_uj)
    assert n["energy_uj"] is None and n["energy"] is None       # nothing to count
    # DRAM dominates the estimate of the float32 model (Horowitz: 640 pJ per 32-bit read)
    assert b["energy"].dram_pj / b["energy"].total_pj > 0.9
    text = rep.table()
    assert "energy uJ" in text and f"{b['energy_uj']:.2f}" in text
    assert "energy uJ" not in rep.table(energy=False)
    off = report.compare({"big": big}, d.X_test, d.y_test, latency=False, energy=False)
    assert off.row("big")["energy_uj"] is None and "energy uJ" not in off.table()
    with pytest.raises(ValueError, match="arithmetic"):
        report.compare([report.Variant("x", big, arithmetic="int4")], d.X_test, d.y_test, latency=False)


def test_table_shows_the_practical_band_verdict(digits):
    d = digits
    m = cl.nn.mlp((64, 8, 10), seed=0)
    rep = report.compare({"a": m, "a again": m}, d.X_test, d.y_test, repeat=5, number=5)
    verdict = rep.row("a again")["verdict"]
    lo, hi = rep.row("a again")["speedup_ci"]
    assert verdict in ("faster", "slower", "no practical difference", "no clear difference")
    if 1 / (1 + cl.speed.AA_BAND) <= lo and hi <= 1 + cl.speed.AA_BAND:
        assert verdict == "no practical difference"
    assert verdict in rep.table()
