"""Lesson 06a widget and figures: the widget shows the values it is given, answers a change over
cached results in well under 100 ms, computes a missing setting once (then caches it), refuses bad
input; the figures draw what they are given."""
import time

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import matplotlib.pyplot as plt
import numpy as np
import pytest

from compresslab import data, nn
from compresslab import quant as Q
from compresslab.plots import lm as P
from compresslab.widgets import lm as W


@pytest.fixture(scope="module")
def model():
    return nn.load_tiny_gpt()


@pytest.fixture(scope="module")
def baseline():
    return nn.Perplexity(5.0, 4.5, 5.5, np.log(np.array([4.8, 5.2])), 512)


def _fake(i):
    """A result with numbers that identify it (i = its index)."""
    return dict(ppl=5.0 + i / 1000, low=4.0 + i / 1000, high=6.0 + i / 1000, ratio=1.0 + i / 10000,
                ratio_low=0.9 + i / 10000, ratio_high=1.1 + i / 10000, nbytes=700_000 + i,
                bits_per_weight=4.0 + i / 100, sample=f"def sample_{i}(x):\n    return <{i}>")


SETTINGS = [(m, b, g) for m in ("rtn", "gptq", "awq") for b in W.BITS for g in W.GROUPS.values()] + \
    [("Q8_0", None, None), ("Q4_0", None, None), ("Q4_1", None, None)]


@pytest.fixture(scope="module")
def explorer(model, baseline):
    return W.lm_explorer(model, {k: _fake(i) for i, k in enumerate(SETTINGS)}, baseline)


def _select(ex, key):
    method, bits, group = key
    ex.method.value = method
    if bits is not None:
        ex.bits.value = bits
        ex.group.value = {v: k for k, v in W.GROUPS.items()}[group]


def test_values_shown_are_the_values_passed_in(explorer):
    for i, key in enumerate(SETTINGS):
        _select(explorer, key)
        text = explorer.readout.value
        r = _fake(i)
        for shown in (f"{r['ppl']:.3f}", f"[{r['low']:.3f}, {r['high']:.3f}]", f"{r['ratio']:.4f}",
                      f"{r['nbytes']:,} bytes", f"{r['bits_per_weight']:.2f} bits", f"sample_{i}(x)",
                      "&lt;" + str(i) + "&gt;"):               # the sample, HTML-escaped
            assert shown in text, (key, shown, text)
        assert "float32 5.000" in text
    assert explorer.computed_lazily == []


def test_gguf_ignores_bits_and_group(explorer):
    explorer.method.value = "Q4_0"
    text = explorer.readout.value
    explorer.bits.value = 3 if explorer.bits.value != 3 else 8
    explorer.group.value = "32" if explorer.group.value != "32" else "128"
    assert explorer.readout.value == text
    assert explorer.bits.disabled and explorer.group.disabled      # the toggles say so too
    explorer.method.value = "rtn"
    assert not explorer.bits.disabled and not explorer.group.disabled


def test_the_paired_ratio_is_the_bold_number(explorer):
    _select(explorer, ("rtn", 4, 128))
    r = explorer.result()
    assert f"<b>{r['ratio']:.4f}</b>" in explorer.readout.value
    assert f"<b>{r['ppl']:.3f}</b>" not in explorer.readout.value


def test_a_lazy_compute_shows_computing_first(model, baseline):
    shown = []
    ex = W.lm_explorer(model, {("rtn", 4, 128): _fake(0)}, baseline, tokens=np.zeros(600, np.int64))
    ex.readout.observe(lambda change: shown.append(change["new"]), names="value")
    ex.result = lambda key=None: None                             # stands in for the slow compute
    ex.bits.value = 3
    assert any("computing..." in v for v in shown)


def test_latency_on_cached_results(explorer):
    times = []
    for key in SETTINGS * 3:
        t0 = time.perf_counter()
        _select(explorer, key)
        times.append(time.perf_counter() - t0)
    assert max(times) < 0.1, max(times)
    assert explorer.computed_lazily == []


def test_missing_setting_without_tokens_reads_not_computed(model, baseline):
    ex = W.lm_explorer(model, {("rtn", 4, 128): _fake(0)}, baseline)
    ex.bits.value = 3
    assert "not computed" in ex.readout.value and ex.computed_lazily == []


def test_missing_setting_is_computed_once_and_cached(model):
    """With tokens, a setting not passed in is computed (the real numbers) once, then cached."""
    tokens = data.load_text().test
    base = nn.perplexity(model, tokens, max_chunks=2)
    ex = W.lm_explorer(model, {}, base, tokens=tokens, max_chunks=2, n_new=8, method="Q8_0")
    assert ex.computed_lazily == [("Q8_0", None, None)]
    r = ex.result()
    want = nn.perplexity(Q.quantize_gpt(model, "Q8_0").model, tokens, max_chunks=2)
    assert r["ppl"] == pytest.approx(want.value) and f"{want.value:.3f}" in ex.readout.value
    ex.method.value = "gptq"                                     # GPTQ without calibration: not computed
    assert "not computed" in ex.readout.value
    ex.method.value = "Q8_0"
    assert ex.computed_lazily == [("Q8_0", None, None)]


def test_bad_inputs(model, baseline):
    with pytest.raises(ValueError, match="method"):
        W.setting("int4", 4, 128)
    with pytest.raises(ValueError, match="bits"):
        W.setting("rtn", 1, 128)
    with pytest.raises(ValueError, match="group_size"):
        W.setting("rtn", 4, 0)
    with pytest.raises(TypeError, match="method"):
        W.setting(4, 4, 128)
    with pytest.raises(TypeError, match="model"):
        W.lm_explorer("gpt", {}, baseline)
    with pytest.raises(TypeError, match="results"):
        W.lm_explorer(model, [], baseline)
    with pytest.raises(TypeError, match="baseline"):
        W.lm_explorer(model, {}, 5.0)
    with pytest.raises(ValueError, match="bits must be one of"):
        W.lm_explorer(model, {}, baseline, bits=5)
    with pytest.raises(ValueError, match="group_size must be one of"):
        W.lm_explorer(model, {}, baseline, group_size=64)
    with pytest.raises(ValueError, match="method"):
        W.lm_explorer(model, {("rtn4", 4, 128): _fake(0)}, baseline)


# ------------------------------------------------------------------ figures
def test_perplexity_vs_bits_draws_every_point(baseline):
    rows = [dict(label=f"v{i}", method=m, bits_per_weight=b, ratio=1 + i / 10, ratio_low=0.95 + i / 10,
                 ratio_high=1.05 + i / 10)
            for i, (m, b) in enumerate([("rtn", 4.16), ("gptq", 3.15), ("awq", 4.23), ("Q4_0", 4.5)])]
    fig = P.perplexity_vs_bits(rows, baseline)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["v0", "v1", "v2", "v3"]
    assert len(ax.get_legend().get_texts()) == 5                 # float32 and four families
    with pytest.raises(ValueError):
        P.perplexity_vs_bits([], baseline)


def test_layer_errors_bars():
    errs = {"RTN": {"a": 0.1, "b": 0.2}, "GPTQ": {"a": 0.05, "b": 0.1}}
    fig = P.layer_errors(errs)
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches)
    assert heights == [0.05, 0.1, 0.1, 0.2]
    with pytest.raises(ValueError):
        P.layer_errors({"RTN": {"a": 0.1}, "GPTQ": {"b": 0.1}})
    with pytest.raises(ValueError):
        P.layer_errors({})


def test_perplexity_vs_bits_labels_do_not_overlap(baseline):
    """The lesson's crowded cluster (4.16 to 5 bits, close ratios) and the two points near 8 bits."""
    pts = [("RTN4 g128", "rtn", 4.16, 1.032), ("GPTQ4 g128", "gptq", 4.16, 1.011), ("AWQ4 g128", "awq", 4.23, 1.027),
           ("Q4_0", "Q4_0", 4.5, 1.033), ("RTN4 g32", "rtn", 4.62, 1.023), ("Q4_1", "Q4_1", 5.0, 1.017),
           ("RTN8 chan", "rtn", 8.14, 1.0), ("Q8_0", "Q8_0", 8.5, 1.0)]
    rows = [dict(label=lab, method=m, bits_per_weight=b, ratio=r, ratio_low=r - 0.008, ratio_high=r + 0.008)
            for lab, m, b, r in pts]
    fig = P.perplexity_vs_bits(rows, baseline)
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = [t.get_window_extent() for t in ax.texts]
    axbox = ax.get_window_extent()
    for i, a in enumerate(boxes):
        assert axbox.x0 <= a.x0 and a.x1 <= axbox.x1, ax.texts[i].get_text()      # not cut at the edges
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (ax.texts[i].get_text(), a, b)
    plt.close(fig)
