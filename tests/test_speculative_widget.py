"""Lesson 07 widget and figures: the explorer shows the numbers of the sweep's rows for the setting
its controls choose, answers every change in well under 100 ms without redrawing a figure, refuses
bad rows; the figures draw the rows and the closed forms of compresslab.speculative."""
import time

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import matplotlib.pyplot as plt
import numpy as np
import pytest

from compresslab import speculative as S
from compresslab.nn import GPT, GPTConfig
from compresslab.plots import speculative as P
from compresslab.widgets import speculative as W

KS, TEMPERATURES, DRAFTS = (1, 2, 3), (0.0, 1.0), ("one layer", "two layers")


@pytest.fixture(scope="module")
def rows():
    cfg = dict(n_head=2, n_embd=16, block_size=32)
    target = GPT(GPTConfig(n_layer=3, **cfg), seed=0)
    drafts = {DRAFTS[0]: GPT(GPTConfig(n_layer=1, **cfg), seed=1), DRAFTS[1]: GPT(GPTConfig(n_layer=2, **cfg), seed=2)}
    return S.sweep(target, drafts, [[1, 2, 3], [40, 41, 42, 43]], ks=KS, temperatures=TEMPERATURES,
                   max_new_tokens=12, seed=0)


@pytest.fixture(scope="module")
def explorer(rows):
    return W.speculative_explorer(rows)


SETTINGS = [(d, t, k) for d in DRAFTS for t in TEMPERATURES for k in KS]


def _select(ex, setting):
    draft, temperature, k = setting
    ex.draft.value, ex.temperature.value, ex.k.value = draft, temperature, k


def _row(rows, setting):
    (row,) = [r for r in rows if (r["draft"], r["temperature"], r["k"]) == setting]
    return row


def _assert_shows(ex, row):
    text = ex.readout.value
    assert ex.row() is row
    for shown in (f"alpha (measured): <b>{row['alpha']:.3f}</b>",
                  f"measured <b>{row['tokens_per_call']:.2f}</b>",
                  f"at the measured alpha {row['expected_tokens_per_call']:.2f}",
                  f"<b>{row['speedup']:.2f}&times;</b>",
                  f"({row['plain_seconds']:.3f} s / {row['seconds']:.3f} s",
                  "one run each: noisy",
                  f"{row['target_calls']} target calls", f"{row['draft_calls']} draft calls",
                  f"k = {row['k']}</b>"):
        assert shown in text, (shown, text)


def test_the_rows_are_a_real_sweep(rows):
    """The fixture is what the lesson passes: every setting once, and numbers that differ."""
    assert len(rows) == len(SETTINGS)
    assert len({round(r["alpha"], 6) for r in rows}) > 1


def test_each_control_shows_its_row(explorer, rows):
    _select(explorer, (DRAFTS[0], 0.0, 1))
    _assert_shows(explorer, _row(rows, (DRAFTS[0], 0.0, 1)))
    explorer.k.value = 3                                     # the slider
    _assert_shows(explorer, _row(rows, (DRAFTS[0], 0.0, 3)))
    explorer.temperature.value = 1.0                         # the temperature
    _assert_shows(explorer, _row(rows, (DRAFTS[0], 1.0, 3)))
    assert "temperature 1, k = 3" in explorer.readout.value
    explorer.draft.value = DRAFTS[1]                         # the draft
    _assert_shows(explorer, _row(rows, (DRAFTS[1], 1.0, 3)))
    explorer.temperature.value = 0.0
    assert "greedy (temperature 0)" in explorer.readout.value


def test_every_setting_shows_its_row_and_the_formula(explorer, rows):
    for setting in SETTINGS:
        _select(explorer, setting)
        row = _row(rows, setting)
        _assert_shows(explorer, row)
        formula = S.expected_tokens_per_call(row["alpha"], row["k"])
        assert formula == pytest.approx(row["expected_tokens_per_call"])
        assert row["speedup"] == pytest.approx(row["plain_seconds"] / row["seconds"])


def test_controls_offer_what_the_rows_hold(explorer):
    assert list(explorer.draft.options) == list(DRAFTS)
    assert [v for _, v in explorer.temperature.options] == list(TEMPERATURES)
    assert (explorer.k.min, explorer.k.max, explorer.k.step) == (1, 3, 1)
    assert explorer.temperature.options[0][0] == "0 (greedy)"


def test_latency_under_100_ms_and_no_figure_redrawn(explorer):
    drawn = explorer.figures_drawn
    assert drawn == len(DRAFTS) * len(TEMPERATURES)          # one figure per (draft, temperature), at build
    times = []
    for setting in SETTINGS * 3:                             # first visit of a k blits, revisits are cached
        for control, value in zip((explorer.draft, explorer.temperature, explorer.k), setting):
            if control.value == value:
                continue
            t0 = time.perf_counter()
            control.value = value
            times.append(time.perf_counter() - t0)
            assert explorer.last_update_seconds <= times[-1]
    assert len(times) > len(SETTINGS)
    assert max(times) < 0.1, max(times)
    assert explorer.figures_drawn == drawn                   # only the highlight moved


def test_the_highlight_moves_with_k(explorer):
    _select(explorer, (DRAFTS[0], 0.0, 1))
    one = explorer.image.value
    explorer.k.value = 2
    two = explorer.image.value
    assert one[:8] == b"\x89PNG\r\n\x1a\n" and one != two
    explorer.k.value = 1
    assert explorer.image.value == one                       # the same picture, from the cache


def test_starting_setting_and_uneven_ks(rows):
    ex = W.speculative_explorer(rows, draft=DRAFTS[1], temperature=1, k=3)
    assert ex.setting() == (DRAFTS[1], 1.0, 3)
    assert W.speculative_explorer(rows).setting() == (DRAFTS[0], 0.0, 2)        # first, lowest, middle
    one = [r for r in rows if r["draft"] == DRAFTS[0] and r["temperature"] == 1.0]
    ex = W.speculative_explorer(one + [dict(r, k=5) for r in one if r["k"] == 3])
    assert list(ex.k.options) == [1, 2, 3, 5]                # a SelectionSlider over exactly these
    ex.k.value = 5
    assert "k = 5</b>" in ex.readout.value


def test_model_speedup_shown_when_costs_are_given(rows):
    verify = {1: 1.5, 2: 1.7, 3: 1.9}
    ex = W.speculative_explorer(rows, cost={DRAFTS[0]: 0.3, DRAFTS[1]: 0.6}, verify=verify)
    _select(ex, (DRAFTS[1], 1.0, 2))
    row = ex.row()
    want = S.expected_speedup(row["alpha"], 2, 0.6, 1.7)
    assert f"model {want:.2f}&times;" in ex.readout.value


def test_bad_rows(rows):
    with pytest.raises(ValueError, match="empty"):
        W.speculative_explorer([])
    with pytest.raises(TypeError, match="list of dicts"):
        W.speculative_explorer(rows[0])
    with pytest.raises(TypeError, match=r"rows\[1\]"):
        W.speculative_explorer([rows[0], 3])
    no_alpha = [{k: v for k, v in r.items() if k != "alpha"} for r in rows]
    with pytest.raises(ValueError, match="alpha"):
        W.speculative_explorer(no_alpha)
    with pytest.raises(ValueError, match="speedup.*finite"):
        W.speculative_explorer([dict(rows[0], speedup=float("nan"))] + rows[1:])
    with pytest.raises(ValueError, match="repeats"):
        W.speculative_explorer(rows + rows[:1])
    with pytest.raises(ValueError, match="lack draft"):
        W.speculative_explorer(rows[1:])
    with pytest.raises(ValueError, match=r"\['k'\] must be an int"):
        W.speculative_explorer([dict(r, k=0) for r in rows])
    with pytest.raises(ValueError, match="k must be one of"):
        W.speculative_explorer(rows, k=8)
    with pytest.raises(ValueError, match="draft must be one of"):
        W.speculative_explorer(rows, draft="big")
    with pytest.raises(ValueError, match="both cost and verify"):
        W.speculative_explorer(rows, cost=0.3)
    with pytest.raises(ValueError, match=r"cost \(per draft\) has no value"):
        W.speculative_explorer(rows, cost={DRAFTS[0]: 0.3}, verify=1.5)


# ------------------------------------------------------------------ figures
def _lines(ax):
    return {line.get_label(): line for line in ax.lines}


def test_tokens_per_call_draws_rows_formula_and_ceiling(rows):
    ax = P.plot_tokens_per_call(rows, temperature=0.0)
    lines = _lines(ax)
    assert len(ax.lines) == 1 + 2 * len(DRAFTS)
    ceiling = lines["k + 1: every proposal kept"]
    assert ceiling.get_linestyle() == "--"
    assert list(ceiling.get_xdata()) == list(KS) and list(ceiling.get_ydata()) == [k + 1 for k in KS]
    for d in DRAFTS:
        mine = sorted((r for r in rows if r["draft"] == d and r["temperature"] == 0.0), key=lambda r: r["k"])
        measured, formula = lines[f"{d}: measured"], lines[f"{d}: formula at the measured alpha"]
        assert measured.get_linestyle() == "None" and measured.get_marker() == "o"
        np.testing.assert_allclose(measured.get_ydata(), [r["tokens_per_call"] for r in mine])
        np.testing.assert_array_equal(formula.get_xdata(), KS)
        np.testing.assert_allclose(formula.get_ydata(), [S.expected_tokens_per_call(r["alpha"], r["k"]) for r in mine])
        np.testing.assert_allclose(formula.get_ydata(), [r["expected_tokens_per_call"] for r in mine])
    assert len(ax.get_legend().get_texts()) == 5
    assert "greedy" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close(ax.figure)


def test_speedup_draws_rows_break_even_and_model(rows):
    ax = P.plot_speedup(rows, temperature=1.0)
    assert len(ax.lines) == 1 + len(DRAFTS)                  # break-even and one measured series per draft
    assert list(ax.lines[0].get_ydata()) == [1.0, 1.0]
    assert ax.lines[0].get_linestyle() == ":"
    assert ax.get_legend().get_title().get_text() == "dotted line at 1: as fast as plain decoding"
    plt.close(ax.figure)

    model = {d: {k: 0.5 + 0.1 * k + i for k in (1, 2, 3)} for i, d in enumerate(DRAFTS)}
    fig, ax = plt.subplots()
    assert P.plot_speedup(rows, ax=ax, temperature=1.0, model=model) is ax
    lines = _lines(ax)
    assert len(ax.lines) == 1 + 2 * len(DRAFTS)
    for d in DRAFTS:
        mine = sorted((r for r in rows if r["draft"] == d and r["temperature"] == 1.0), key=lambda r: r["k"])
        np.testing.assert_allclose(lines[f"{d}: measured"].get_ydata(), [r["speedup"] for r in mine])
        np.testing.assert_allclose(lines[f"{d}: model"].get_ydata(), [model[d][r["k"]] for r in mine])
    assert len(ax.get_legend().get_texts()) == 2 * len(DRAFTS)
    plt.close(fig)


def test_one_draft_names_it_in_the_title(rows):
    mine = [r for r in rows if r["draft"] == DRAFTS[0] and r["temperature"] == 0.0]
    ax = P.plot_tokens_per_call(mine)                         # one temperature: no need to choose
    assert DRAFTS[0] in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["k + 1: every proposal kept", "measured", "formula at the measured alpha"]
    plt.close(ax.figure)
    ax = P.plot_speedup(mine)
    assert DRAFTS[0] in ax.get_title() and len(ax.lines) == 2
    plt.close(ax.figure)


def test_plots_refuse_bad_input(rows):
    with pytest.raises(ValueError, match="several temperatures"):
        P.plot_tokens_per_call(rows)
    with pytest.raises(ValueError, match="not in the rows"):
        P.plot_speedup(rows, temperature=0.5)
    with pytest.raises(ValueError, match="empty"):
        P.plot_speedup([])
    with pytest.raises(ValueError, match="model has no value"):
        P.plot_speedup(rows, temperature=0.0, model={d: {1: 1.0, 2: 1.0} for d in DRAFTS})
    with pytest.raises(ValueError, match="tokens_per_call"):
        P.plot_tokens_per_call([{k: v for k, v in r.items() if k != "tokens_per_call"} for r in rows])
    plt.close("all")
