"""Lesson 03 widget: the temperature explorer.

A temperature slider and an example picker show the teacher's softened distribution
``softmax(z / T)`` for one digit, with its entropy; beside it, a precomputed heatmap of the
student's validation accuracy over an alpha x T grid, with a readout of the selected cell.
Everything slow (teacher logits, the grid of trained students) is computed before; a change
only re-evaluates one softmax and redraws a small hand-written SVG (no image rendering).
"""
from __future__ import annotations

import io
import math

import numpy as np

from .. import distill as D


class TemperatureExplorer:
    """The explorer's state and widgets. ``update(T=..., index=..., alpha=...)`` is what every
    control calls; tests call it directly (no browser needed).

    Parameters
    ----------
    teacher_logits : array (N, C)
        Teacher logits of the examples one may pick.
    images : array (N, H, W)
        The examples' images.
    labels : array (N,)
        Their true labels.
    examples : sequence of int, optional
        Indices offered in the picker (default: the 12 with the highest teacher entropy).
    grid : array (len(alphas), len(Ts)), optional
        Validation accuracy in [0, 1] of a student distilled at each (alpha, T).
    grid_Ts, grid_alphas : sequences of float
        The grid's axes.
    """

    def __init__(self, teacher_logits, images, labels, *, examples=None, grid=None,
                 grid_Ts=None, grid_alphas=None, T: float = 4.0):
        import ipywidgets as W

        self.logits = np.asarray(teacher_logits, dtype=np.float64)
        self.images = np.asarray(images)
        self.labels = np.asarray(labels)
        n, self.C = self.logits.shape
        if len(self.images) != n or len(self.labels) != n:
            raise ValueError("teacher_logits, images and labels must have the same length")
        if examples is None:
            h = D.entropy(D.softmax(self.logits))
            examples = np.argsort(-h)[:12]
        self.examples = [int(i) for i in examples]
        p1 = D.softmax(self.logits[self.examples])
        options = []
        for i, p in zip(self.examples, p1):
            second = int(np.argsort(-p)[1])
            options.append((f"#{i}: a {self.labels[i]} (teacher: {p.argmax()}, then {second})", i))

        self.T_slider = W.FloatLogSlider(value=T, base=10, min=-0.5, max=1.5, step=0.02,
                                         description="T", readout_format=".2f",
                                         continuous_update=True)
        self.picker = W.Dropdown(options=options, value=self.examples[0], description="example")
        self.readout = W.HTML()
        self.image = W.HTML()  # hand-drawn SVG: redrawing costs microseconds, not a PNG render

        children = [W.HBox([self.T_slider, self.picker]), self.readout, self.image]
        self.grid = None
        if grid is not None:
            from ..plots.distill import grid_heatmap
            self.grid = np.asarray(grid, dtype=float)
            self.grid_Ts = [float(t) for t in grid_Ts]
            self.grid_alphas = [float(a) for a in grid_alphas]
            if self.grid.shape != (len(self.grid_alphas), len(self.grid_Ts)):
                raise ValueError(f"grid has shape {self.grid.shape}, expected "
                                 f"({len(self.grid_alphas)}, {len(self.grid_Ts)})")
            self.alpha_slider = W.SelectionSlider(options=self.grid_alphas,
                                                  value=self.grid_alphas[-1], description="alpha")
            self.grid_readout = W.HTML()
            hm = grid_heatmap(self.grid, self.grid_Ts, self.grid_alphas,
                              title="student validation accuracy (%)")
            self.heatmap = W.Image(value=_png(hm, dpi=72), format="png")
            import matplotlib.pyplot as plt
            plt.close(hm)
            children += [self.alpha_slider, self.grid_readout, self.heatmap]
            self.alpha_slider.observe(lambda ch: self.update(alpha=ch["new"]), names="value")
        self.widget = W.VBox(children)
        self.T_slider.observe(lambda ch: self.update(T=ch["new"]), names="value")
        self.picker.observe(lambda ch: self.update(index=ch["new"]), names="value")
        self.T, self.index = float(T), self.examples[0]
        self.alpha = self.grid_alphas[-1] if self.grid is not None else None
        self.update()

    # ------------------------------------------------------------------------------------
    def state(self) -> dict:
        """The numbers on display: teacher probabilities, entropy and the selected grid cell."""
        p = D.softmax(self.logits[self.index], self.T)
        out = {"T": self.T, "index": self.index, "label": int(self.labels[self.index]),
               "probs": p, "entropy": float(D.entropy(p))}
        if self.grid is not None:
            j = int(np.argmin([abs(math.log(self.T / t)) for t in self.grid_Ts]))
            i = self.grid_alphas.index(self.alpha)
            out.update(grid_T=self.grid_Ts[j], grid_alpha=self.alpha, val_acc=float(self.grid[i, j]))
        return out

    def update(self, T: float | None = None, index: int | None = None, alpha: float | None = None):
        """Apply a change (any subset of T, example index, alpha) and redraw."""
        if T is not None:
            self.T = float(T)
        if index is not None:
            self.index = int(index)
        if alpha is not None:
            self.alpha = float(alpha)
        s = self.state()
        p = s["probs"]
        self.image.value = _svg(self.images[self.index], p,
                                f"softmax(z / {self.T:.2f}) for a {s['label']}")
        order = np.argsort(-p)[:3]
        tops = ", ".join(f"{c}: {p[c]:.3f}" for c in order)
        self.readout.value = (f"<b>T = {self.T:.2f}</b> &nbsp; top classes {tops} &nbsp; "
                              f"entropy = <b>{s['entropy']:.3f}</b> nats "
                              f"(max log {self.C} = {math.log(self.C):.3f})")
        if self.grid is not None:
            self.grid_readout.value = (f"grid cell alpha = {s['grid_alpha']:g}, T = {s['grid_T']:g} "
                                       f"(nearest to the slider): validation accuracy "
                                       f"<b>{100 * s['val_acc']:.1f}%</b>")
        return s

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def _svg(image, p, title: str, width: int = 480, height: int = 190) -> str:
    """The digit (grey squares) and a bar chart of ``p`` (arg-max in red) as one inline SVG."""
    img = np.asarray(image, dtype=float)
    lo, hi = float(img.min()), float(img.max())
    g = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    h, w = img.shape
    cell = min(120 / w, 120 / h)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="9" y="34" width="{w * cell + 2:.0f}" height="{h * cell + 2:.0f}" '
             f'fill="none" stroke="#888"/>']
    for r in range(h):
        for c in range(w):
            v = int(round(255 * (1 - g[r, c])))
            parts.append(f'<rect x="{10 + c * cell:.1f}" y="{35 + r * cell:.1f}" width="{cell:.1f}" '
                         f'height="{cell:.1f}" fill="rgb({v},{v},{v})"/>')
    x0, y0, bw, bh = 170, 30, (width - 180) / len(p), height - 60
    parts.append(f'<text x="{x0}" y="18" font-size="13">{title}</text>')
    for frac in (0, 0.5, 1):
        y = y0 + bh * (1 - frac)
        parts.append(f'<line x1="{x0 - 4}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end">{frac:g}</text>')
    top = int(np.argmax(p))
    for k, pk in enumerate(p):
        x = x0 + k * bw
        color = "#C44E52" if k == top else "#4C72B0"
        parts.append(f'<rect x="{x + 3:.1f}" y="{y0 + bh * (1 - pk):.1f}" width="{bw - 6:.1f}" '
                     f'height="{bh * pk:.1f}" fill="{color}"><title>{k}: {pk:.4f}</title></rect>'
                     f'<text x="{x + bw / 2:.1f}" y="{y0 + bh + 14:.1f}" text-anchor="middle">{k}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _png(fig, dpi=None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def temperature_explorer(teacher_logits, images, labels, **kwargs) -> TemperatureExplorer:
    """Build the temperature explorer (see :class:`TemperatureExplorer`); display it in a cell."""
    return TemperatureExplorer(teacher_logits, images, labels, **kwargs)
