"""Lesson 04b explorers: Amdahl's law with measured points, and a live benchmark dashboard.

Both are thin: the maths and the timing live in :mod:`compresslab.speed`, the drawing in
:mod:`compresslab.plots.speed`. Each object exposes ``update()`` so tests (and a browser test)
can drive it without a browser, and a text readout (``.readout``) that changes with the inputs.
"""
from __future__ import annotations

import io
import time
from typing import Mapping, Sequence

import numpy as np

from .. import speed

__all__ = ["AmdahlExplorer", "amdahl_explorer", "BenchmarkDashboard", "benchmark_dashboard"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


def _rgba_png(canvas) -> bytes:
    """The canvas's current pixels as PNG bytes (no re-render: the blitted buffer as it is)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class AmdahlExplorer:
    """Sliders for the parallel fraction ``p`` and the number of cores; the Amdahl and
    Gustafson curves redraw, the measured thread-scaling points stay on top, and the readout
    gives both speedups at the chosen core count and Amdahl's limit ``1 / (1 - p)``."""

    def __init__(self, measured: Mapping[int, float] | None = None, fitted_p: float | None = None,
                 p: float = 0.9, cores: int = 8, max_cores: int = 64):
        import ipywidgets as W
        import matplotlib.figure
        import matplotlib.ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from ..plots.common import COLORS

        self.measured = dict(measured or {})
        self.fitted_p = fitted_p
        self.p = W.FloatSlider(value=p, min=0.0, max=1.0, step=0.01, description="parallel p",
                               continuous_update=True, readout_format=".2f")
        self.cores = W.IntSlider(value=cores, min=1, max=max_cores, description="cores")
        self.readout = W.HTML()
        self.image = W.Image(format="png")
        # Fixed log-log axes, drawn once; on each change only the moving lines are redrawn on a
        # saved background (blitting), so an update costs a few ms, not a full figure render.
        fig = matplotlib.figure.Figure(figsize=(5.4, 3.5), dpi=80)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
        self.canvas = FigureCanvasAgg(fig)
        self.fig = fig
        ax = fig.add_subplot()
        self.ax = ax
        n = np.unique(np.geomspace(1, max_cores, 80).round()).astype(float)
        self._n = n
        ax.plot(n, n, color="#BBBBBB", ls="--", lw=1, label="ideal (S = n)")
        (self._amdahl,) = ax.plot(n, n, color=COLORS["dense"], lw=2, label="Amdahl (fixed job)")
        (self._gust,) = ax.plot(n, n, color=COLORS["quant"], lw=1.5, label="Gustafson (job grows)")
        self._limit = ax.axhline(1, color=COLORS["dense"], ls=":", lw=1, label="Amdahl limit 1/(1-p)")
        self._marker = ax.axvline(cores, color="k", lw=0.8, alpha=0.5)
        if fitted_p is not None:
            ax.plot(n, speed.amdahl(fitted_p, n), color=COLORS["pruned"], ls="-.", lw=1,
                    label=f"fit to measured, p = {fitted_p:.2f}")
        if self.measured:
            ks = sorted(self.measured)
            ax.plot(ks, [self.measured[k] for k in ks], "o", color=COLORS["distill"], ms=7,
                    label="measured here", zorder=5)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlim(1, max_cores)
        ax.set_ylim(0.8, max_cores * 1.1)
        ticks = [2 ** k for k in range(int(np.log2(max_cores)) + 1)]
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
            axis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(t) for t in ticks]))
            axis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("cores")
        ax.set_ylabel("speedup")
        ax.set_title("Amdahl vs Gustafson (log-log)", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
        self._moving = (self._amdahl, self._gust, self._limit, self._marker)
        for a in self._moving:
            a.set_animated(True)
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(fig.bbox)
        self.p.observe(lambda _c: self.update(), names="value")
        self.cores.observe(lambda _c: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.p, self.cores]), self.readout, self.image])
        self.update()

    def update(self, p: float | None = None, cores: int | None = None) -> str:
        """Redraw for ``p`` and ``cores`` (default: the sliders' values); returns the readout."""
        if p is not None:
            self.p.value = p  # triggers update through the observer
            return self.readout.value
        if cores is not None:
            self.cores.value = cores
            return self.readout.value
        p, n = float(self.p.value), int(self.cores.value)
        a = speed.amdahl(p, self._n)
        g = speed.gustafson(p, self._n)
        self._amdahl.set_ydata(a)
        self._gust.set_ydata(g)
        limit = 1 / (1 - p) if p < 1 else float("inf")
        self._limit.set_ydata([min(limit, 1e6)] * 2)
        self._marker.set_xdata([n, n])
        self.canvas.restore_region(self._background)
        for artist in self._moving:
            self.ax.draw_artist(artist)
        self.image.value = _rgba_png(self.canvas)
        lim = "no limit" if p == 1 else f"{limit:.1f}x"
        meas = ""
        if self.measured:
            meas = "; measured here: " + ", ".join(f"{k} thread{'s' if k > 1 else ''} "
                                                   f"{v:.2f}x" for k, v in sorted(self.measured.items()))
        self.readout.value = (f"<b>{n} cores, p = {p:.2f}</b>: Amdahl (fixed job) "
                              f"<b>{speed.amdahl(p, n):.2f}x</b>, Gustafson (job grows with the "
                              f"cores) <b>{speed.gustafson(p, n):.2f}x</b>; Amdahl's limit "
                              f"1/(1-p) = {lim}{meas}")
        return self.readout.value

    def _ipython_display_(self):  # pragma: no cover - display only
        from IPython.display import display
        display(self.widget)


def amdahl_explorer(scaling: "speed.ThreadScaling | None" = None, **kw) -> AmdahlExplorer:
    """The Amdahl explorer, with the points (and the fitted ``p``) of a :func:`speed.thread_scaling`
    result overlaid when one is given."""
    if scaling is not None:
        kw.setdefault("measured", scaling.speedup)
        kw.setdefault("fitted_p", scaling.parallel_fraction)
    return AmdahlExplorer(**kw)


class BenchmarkDashboard:
    """Pick variants and a batch size; *Run* times them live (interleaved, :func:`speed.compare`)
    and the table updates. Changing the choice updates the cost readout (MACs and parameter bytes of
    each chosen variant) at once; timing happens only on *Run*."""

    def __init__(self, variants: dict, batches: Sequence[int] = (1, 16, 64, 256),
                 batch: int = 64, repeat: int = 7, chosen: Sequence[str] | None = None):
        import ipywidgets as W

        names = [k for k in variants if k != "numpy"]
        if not names:
            raise ValueError("variants must hold at least one model (see speed.build_variants)")
        self.variants = variants
        self.repeat = repeat
        model = variants[names[0]]  # a torch module or a compresslab model (without torch)
        layers = model.modules() if speed._is_torch_module(model) else model.layers
        self.n_in = int(next(m for m in layers if hasattr(m, "in_features")).in_features)
        self.select = W.SelectMultiple(options=names, value=tuple(chosen or names[:3]),
                                       description="variants", rows=min(len(names), 6))
        self.batch = W.Dropdown(options=list(batches), value=batch if batch in batches else batches[0],
                                description="batch")
        self.run_button = W.Button(description="Run timing", button_style="primary")
        self.readout = W.HTML()
        self.table = W.HTML("<i>press Run timing to measure</i>")
        self.last = None
        self.select.observe(lambda _c: self.update(), names="value")
        self.batch.observe(lambda _c: self.update(), names="value")
        self.run_button.on_click(lambda _b: self.run())
        self.widget = W.VBox([W.HBox([self.select, W.VBox([self.batch, self.run_button])]),
                              self.readout, self.table])
        self.update()

    def update(self) -> str:
        """Refresh the cost readout for the chosen variants and batch (no timing)."""
        b = int(self.batch.value)
        parts = []
        for name in self.select.value:
            if "numpy" in self.variants and name in speed._BITS:
                c = speed.variant_cost(self.variants, name, b)
                parts.append(f"{name}: {c.macs / 1e6:.1f} M MACs, {c.param_bytes / 1e6:.2f} MB parameters")
            else:
                parts.append(name)
        self.readout.value = (f"<b>batch {b}</b> — " + "; ".join(parts) if parts
                              else "<b>choose at least one variant</b>")
        return self.readout.value

    def run(self, repeat: int | None = None) -> "speed.Comparison | None":
        """Time the chosen variants at the chosen batch and update the table."""
        chosen = list(self.select.value)
        if not chosen:
            self.table.value = "<b>choose at least one variant</b>"
            return None
        b = int(self.batch.value)
        x = np.random.default_rng(0).standard_normal((b, self.n_in), dtype=np.float32)
        if any(speed._is_torch_module(self.variants[k]) for k in chosen):
            import torch
            x = torch.from_numpy(x)
        self.table.value = f"<i>timing {', '.join(chosen)} at batch {b} ...</i>"
        fns = {k: speed._forward(self.variants[k], x) for k in chosen}
        t0 = time.perf_counter()
        cmp = speed.compare(fns, repeat=repeat or self.repeat, number="auto", min_sample=1e-3)
        self.last = cmp
        self.table.value = (f"<b>batch {b}</b>, baseline {chosen[0]}, measured in "
                            f"{time.perf_counter() - t0:.1f} s:" + cmp._repr_html_())
        return cmp

    def _ipython_display_(self):  # pragma: no cover - display only
        from IPython.display import display
        display(self.widget)


def benchmark_dashboard(variants: dict | None = None, **kw) -> BenchmarkDashboard:
    """The benchmark dashboard over ``variants`` (default: :func:`speed.build_variants` of an
    MLP 512-2048-2048-10, quick to build)."""
    if variants is None:
        variants = speed.build_variants(sizes=(512, 2048, 2048, 10))
    return BenchmarkDashboard(variants, **kw)
