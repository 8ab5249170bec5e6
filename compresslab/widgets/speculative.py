"""Lesson 07 widget: speculative decoding, setting by setting, from the rows of a sweep.

Controls: k (draft tokens proposed per round), the temperature and the draft, each over the values
present in the rows of :func:`compresslab.speculative.sweep`. Shows, for the chosen setting, the
measured acceptance rate alpha, the tokens written per target call measured and as the closed
form predicts at that alpha, the measured speedup over plain decoding (one run each: the lesson's
table gives intervals), the target and draft calls, and a small figure: speedup and tokens per
call against k for the chosen draft and temperature, the chosen k highlighted.

Everything is computed when the explorer is built: the text of every setting and one figure per
(draft, temperature), drawn once (:mod:`compresslab.plots.speculative`). A change only picks the
text and redraws the highlight over the saved figure (blitting), then caches that image: well
under 100 ms. ``last_update_seconds`` holds how long the last change took.
"""
from __future__ import annotations

import html
import io
import time
from typing import Mapping

import numpy as np

from .. import speculative as S
from ..plots import speculative as P

__all__ = ["SpeculativeExplorer", "speculative_explorer"]


def _png(canvas) -> bytes:
    """The canvas's current pixels as PNG bytes (no re-render: the blitted buffer as it is)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _temperature_option(t: float) -> str:
    return "0 (greedy)" if t == 0 else f"{t:g}"


def _per_key(value, keys, name: str) -> dict:
    """A float for every key (draft or k), or a dict {key: float} naming all of them."""
    if isinstance(value, Mapping):
        missing = [key for key in keys if key not in value]
        if missing:
            raise ValueError(f"{name} has no value for {missing}")
        return {key: float(value[key]) for key in keys}
    return {key: float(value) for key in keys}


class SpeculativeExplorer:
    """Build with :func:`speculative_explorer`; move a control or call :meth:`update`.

    Parameters
    ----------
    rows : list of dict
        The output of :func:`compresslab.speculative.sweep`: one row for every (draft,
        temperature, k) of the sweep.
    cost, verify : optional
        Passed to :func:`compresslab.plots.speculative.plot_speedup` to draw (and show) the
        model's speedup: the draft's time per call over the target's (a float, or a dict per
        draft), and the target's time on k + 1 tokens over one (a float, or a dict per k).
    draft, temperature, k : optional
        The setting shown first (default: the first draft, the lowest temperature, the middle k).

    Attributes
    ----------
    draft, temperature, k : ipywidgets controls
    readout : ipywidgets.HTML
    image : ipywidgets.Image
    last_update_seconds : float
        Wall-clock seconds of the last :meth:`update`.
    figures_drawn : int
        Full renders of a figure so far: one per (draft, temperature), at build time only.
    """

    def __init__(self, rows, *, cost=None, verify=None, draft=None, temperature=None, k=None):
        import ipywidgets as W

        rows = P.check_rows(rows)
        self.drafts = list(dict.fromkeys(r["draft"] for r in rows))
        self.temperatures = sorted({float(r["temperature"]) for r in rows})
        self.ks = sorted({int(r["k"]) for r in rows})
        self._rows = {(r["draft"], float(r["temperature"]), int(r["k"])): r for r in rows}
        for key in ((d, t, k_) for d in self.drafts for t in self.temperatures for k_ in self.ks):
            if key not in self._rows:
                raise ValueError(f"rows lack draft {key[0]!r}, temperature {key[1]:g}, k {key[2]}: the explorer "
                                 "needs every (draft, temperature, k) of one sweep")
        if (cost is None) != (verify is None):
            raise ValueError("pass both cost and verify for the model's speedup, or neither")
        self.cost = None if cost is None else _per_key(cost, self.drafts, "cost (per draft)")
        self.verify = None if verify is None else _per_key(verify, self.ks, "verify (per k)")
        draft = self.drafts[0] if draft is None else draft
        temperature = self.temperatures[0] if temperature is None else float(temperature)
        k = self.ks[len(self.ks) // 2] if k is None else k
        for name, value, present in (("draft", draft, self.drafts), ("temperature", temperature, self.temperatures),
                                     ("k", k, self.ks)):
            if value not in present:
                raise ValueError(f"{name} must be one of {present} (those in the rows), got {value!r}")

        toggles = dict(description_width="90px", button_width="auto")     # long draft names fit
        self.draft = W.ToggleButtons(options=self.drafts, value=draft, description="draft", style=toggles)
        self.temperature = W.ToggleButtons(options=[(_temperature_option(t), t) for t in self.temperatures],
                                           value=temperature, description="temperature", style=toggles)
        step = self.ks[1] - self.ks[0] if len(self.ks) > 1 else 1
        slider = dict(value=k, description="k", style={"description_width": "90px"})
        if list(range(self.ks[0], self.ks[-1] + 1, step)) == self.ks:
            self.k = W.IntSlider(min=self.ks[0], max=self.ks[-1], step=step, **slider)
        else:                                              # ks not evenly spaced: offer exactly those
            self.k = W.SelectionSlider(options=self.ks, **slider)
        self.readout = W.HTML()
        self.image = W.Image(format="png")
        self.figures_drawn = 0
        self.last_update_seconds = float("nan")
        self._text = {key: self._describe(key) for key in self._rows}
        self._figures = {(d, t): self._draw(d, t) for d in self.drafts for t in self.temperatures}
        self._images: dict = {}
        for c in (self.draft, self.temperature, self.k):
            c.observe(lambda _change: self.update(), names="value")
        self.widget = W.VBox([self.draft, self.temperature, self.k, self.readout, self.image])
        self.update()

    # ------------------------------------------------------------------ built once
    def _describe(self, key) -> str:
        """The readout of one setting (HTML)."""
        draft, temperature, k = key
        r = self._rows[key]
        formula = r["expected_tokens_per_call"]
        verdict = "faster than" if r["speedup"] > 1 else "slower than" if r["speedup"] < 1 else "as fast as"
        model = ""
        if self.cost is not None:
            m = S.expected_speedup(r["alpha"], k, self.cost[draft], self.verify[k])
            model = (f" &nbsp;|&nbsp; model {m:.2f}&times; (draft cost {self.cost[draft]:.2g}, "
                     f"verify cost {self.verify[k]:.2g} of a one-token target call)")
        return (
            f"<b>{html.escape(str(draft))}, {P.temperature_label(temperature)}, k = {k}</b><br>"
            f"acceptance rate alpha (measured): <b>{r['alpha']:.3f}</b> of the draft tokens the target tested "
            f"were kept<br>"
            f"tokens per target call: measured <b>{r['tokens_per_call']:.2f}</b>, formula "
            f"(1 - alpha<sup>k+1</sup>) / (1 - alpha) at the measured alpha {formula:.2f}, at most k + 1 = {k + 1}<br>"
            f"speedup (plain seconds / speculative seconds): <b>{r['speedup']:.2f}&times;</b> "
            f"({r['plain_seconds']:.3f} s / {r['seconds']:.3f} s, {verdict} plain decoding; one run each: noisy, "
            f"an interleaved comparison with intervals is cl.speed.compare's job){model}<br>"
            f"{r['new_tokens']} new tokens: {r['target_calls']} target calls (plain decoding: one per new token) "
            f"and {r['draft_calls']} draft calls")

    def _draw(self, draft, temperature) -> dict:
        """The figure of one (draft, temperature), drawn once; its highlight is drawn per k later."""
        import matplotlib.figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = matplotlib.figure.Figure(figsize=(9.6, 3.6), dpi=80, layout="constrained")
        canvas = FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2)
        rows = [r for (d, t, _), r in self._rows.items() if d == draft and t == temperature]
        model = None if self.cost is None else {draft: {
            r["k"]: S.expected_speedup(r["alpha"], r["k"], self.cost[draft], self.verify[r["k"]]) for r in rows}}
        P.plot_speedup(rows, ax=left, model=model, title="speedup over plain decoding")
        P.plot_tokens_per_call(rows, ax=right, title="tokens per target call")
        fig.suptitle(f"{draft}, {P.temperature_label(temperature)}", fontsize=10)
        marks = []
        for ax in (left, right):
            marks.append(ax.axvline(self.ks[0], color="black", lw=6, alpha=0.12, animated=True))
            marks.append(ax.plot([], [], "o", ms=15, mfc="none", mec="black", mew=2, animated=True)[0])
        canvas.draw()
        self.figures_drawn += 1
        return {"canvas": canvas, "background": canvas.copy_from_bbox(fig.bbox), "marks": marks,
                "axes": (left, right)}

    def _image(self, key) -> bytes:
        """The figure of ``key[:2]`` with ``k`` highlighted: blitted on first use, then cached."""
        if key not in self._images:
            draft, temperature, k = key
            f = self._figures[draft, temperature]
            r = self._rows[key]
            band_l, ring_l, band_r, ring_r = f["marks"]
            for band in (band_l, band_r):
                band.set_xdata([k, k])
            ring_l.set_data([k], [r["speedup"]])
            ring_r.set_data([k], [r["tokens_per_call"]])
            f["canvas"].restore_region(f["background"])
            for ax, artists in zip(f["axes"], ((band_l, ring_l), (band_r, ring_r))):
                for a in artists:
                    ax.draw_artist(a)
            self._images[key] = _png(f["canvas"])
        return self._images[key]

    # ------------------------------------------------------------------ per change
    def setting(self) -> tuple:
        """The chosen ``(draft, temperature, k)``."""
        return self.draft.value, float(self.temperature.value), int(self.k.value)

    def row(self) -> dict:
        """The sweep's row of the chosen setting."""
        return self._rows[self.setting()]

    def update(self) -> str:
        """Show the chosen setting; returns the readout HTML (``last_update_seconds`` says how long it took)."""
        t0 = time.perf_counter()
        key = self.setting()
        self.readout.value = self._text[key]
        self.image.value = self._image(key)
        self.last_update_seconds = time.perf_counter() - t0
        return self.readout.value

    def _ipython_display_(self):  # pragma: no cover - display only
        from IPython.display import display

        display(self.widget)


def speculative_explorer(rows, **kwargs) -> SpeculativeExplorer:
    """The explorer of lesson 07 over the rows of :func:`compresslab.speculative.sweep`; leave it
    last in a cell to show it.

    Parameters
    ----------
    rows : list of dict
        ``sweep(target, drafts, prompts, ks, temperatures, ...)``.
    **kwargs
        ``cost``, ``verify``, ``draft``, ``temperature``, ``k``: see :class:`SpeculativeExplorer`.

    Returns
    -------
    SpeculativeExplorer

    Raises
    ------
    ValueError
        Rows that are empty, lack a key, hold a non-finite number, repeat or miss a setting.

    Examples
    --------
    >>> from compresslab import speculative
    >>> from compresslab.nn import GPT, GPTConfig
    >>> t = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32), seed=0)
    >>> rows = speculative.sweep(t, {"itself": t}, [[1, 2, 3]], ks=[1, 2], temperatures=[0.0], max_new_tokens=9)
    >>> ex = speculative_explorer(rows, k=2)
    >>> ex.row()["tokens_per_call"], ex.k.value
    (3.0, 2)
    >>> ex.k.value = 1                                  # what moving the slider does
    >>> ex.row()["tokens_per_call"], "measured <b>1.80</b>" in ex.readout.value      # 9 tokens, 5 target calls
    (1.8, True)
    >>> ex                                              # doctest: +SKIP
    """
    return SpeculativeExplorer(rows, **kwargs)
