"""Pruning explorer: sparsity slider, method, layer -> histogram with threshold, mask picture,
parameter count and accuracy on the data it is given (the validation split in lesson 01a:
a widget is a sweep, and sweeps score on validation; the test split is read once per final
claim).

All the algorithmic work is :mod:`compresslab.prune`; each change recomputes one mask (a few
thousand weights, sub-millisecond), evaluates the model on that data (one small forward
pass with one BLAS thread), blits the kept-weights histogram and threshold onto a matplotlib
background rendered once per layer, and turns the mask itself into a picture with Pillow (no
matplotlib). Both PNGs go to ``ipywidgets.Image`` widgets, the numbers to an HTML readout.
Test with :func:`build` and ``explorer.update(...)``; no browser needed.
"""
from __future__ import annotations

import io

import numpy as np

from .. import nn, prune

__all__ = ["PruningExplorer", "build", "METHODS"]

METHODS = ("magnitude", "random", "structured", "2:4")


def _one_thread():
    """Limit BLAS to one thread (small matrix products are slower with more), if possible."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1)
    except ImportError:  # pragma: no cover
        import contextlib
        return contextlib.nullcontext()


class PruningExplorer:
    """The state and update logic of the pruning widget.

    Parameters
    ----------
    model : a trained nn.Sequential (not modified)
    X, y : data for the live accuracy (the validation split: moving a slider is a sweep)
    layers : parameter names to offer (default: every prunable weight)
    split : the name of that data in the readout ("validation accuracy ...")
    """

    def __init__(self, model: nn.Sequential, X, y, layers=None, seed: int = 0,
                 split: str = "validation"):
        self.model = model.copy()
        self.X, self.y = np.asarray(X, np.float32), np.asarray(y)
        self.split = str(split)
        self.layers = list(layers) if layers is not None else prune.prunable(model)
        self.seed = seed
        params = {name: (layer, attr) for name, layer, attr in self.model.named_parameters()}
        self._params = params
        self._original = {name: getattr(*params[name]).copy() for name in self.layers}
        self.dense_acc = nn.evaluate(self.model, self.X, self.y)
        self.total_weights = sum(w.size for w in self._original.values())
        self._nonzero = {k: int(np.count_nonzero(w)) for k, w in self._original.items()}
        # precompute, per layer: fixed histogram bins and a figure whose static parts (axes,
        # ticks, dense histogram) are rendered once; an update only blits the moving artists.
        self._views = {name: self._make_view(name, w) for name, w in self._original.items()}
        self.state = {"sparsity": 0.0, "method": "magnitude", "layer": self.layers[0]}
        self.last_text = ""
        self.last_png = b""
        self.last_mask_png = b""

    # ------------------------------------------------------------------ drawing
    def _make_view(self, name: str, w: np.ndarray) -> dict:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        counts, edges = np.histogram(w.ravel(), bins=60)
        fig = Figure(figsize=(5.2, 3.0), dpi=72)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.16, top=0.9)
        ax = fig.subplots()
        canvas = FigureCanvasAgg(fig)
        ax.stairs(counts, edges, fill=True, color="#4C72B0", alpha=0.3, label="pruned")
        kept = ax.stairs(counts, edges, fill=True, color="#4C72B0", label="kept", animated=True)
        thr = [ax.axvline(0, color="#DD8452", lw=1.5, animated=True) for _ in range(2)]
        ax.set_ylim(0, counts.max() * 1.08)
        ax.set_title(f"{name}: weights (orange: |w| threshold)", fontsize=10)
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
        ax.legend(fontsize=8, loc="upper right")
        canvas.draw()
        rows, cols = w.shape[0], int(np.prod(w.shape[1:]))
        sy, sx = max(1, 300 // rows), max(1, 240 // cols)
        return {"fig": fig, "canvas": canvas, "bg": canvas.copy_from_bbox(fig.bbox),
                "edges": edges, "kept": kept, "thr": thr, "ax": ax, "scale": (sy, sx)}

    @staticmethod
    def _png(pixels: np.ndarray) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def _render(self, view: dict) -> bytes:
        """Blit the moving artists on the pre-rendered background; return the PNG bytes."""
        canvas = view["canvas"]
        canvas.restore_region(view["bg"])
        view["ax"].draw_artist(view["kept"])
        for line in view["thr"]:
            if line.get_visible():
                view["ax"].draw_artist(line)
        return self._png(np.asarray(canvas.buffer_rgba())[..., :3])

    def _mask_png(self, view: dict, mask: np.ndarray) -> bytes:
        """The mask as a picture (black = kept), one block of pixels per weight."""
        sy, sx = view["scale"]
        img = np.where(mask.reshape(mask.shape[0], -1) > 0, 0, 255).astype(np.uint8)
        return self._png(np.repeat(np.repeat(img, sy, axis=0), sx, axis=1))

    def mask_for(self, name: str, method: str, sparsity: float) -> np.ndarray:
        w = self._original[name]
        if method == "magnitude":
            return prune.magnitude(w, float(sparsity))
        if method == "random":
            return prune.random(w, float(sparsity), seed=self.seed)
        if method == "structured":
            return prune.structured(w, float(sparsity), dim=0)
        if w.shape[1] % 4:
            raise ValueError(f"2:4 needs the input size of {name} to be a multiple of 4")
        return prune.n_m(w, 2, 4, dim=1)

    def update(self, sparsity: float | None = None, method: str | None = None,
               layer: str | None = None) -> str:
        """Apply a change, redraw, and return the readout text (also in ``self.last_text``)."""
        if sparsity is not None:
            self.state["sparsity"] = float(sparsity)
        if method is not None:
            if method not in METHODS:
                raise ValueError(f"method must be one of {METHODS}, got {method!r}")
            self.state["method"] = method
        if layer is not None:
            if layer not in self._original:
                raise ValueError(f"layer must be one of {self.layers}, got {layer!r}")
            self.state["layer"] = layer
        name, method, s = self.state["layer"], self.state["method"], self.state["sparsity"]
        mask = self.mask_for(name, method, s)
        layer_obj, attr = self._params[name]
        w = self._original[name]
        setattr(layer_obj, attr, w * mask)
        try:
            with _one_thread():
                acc = nn.evaluate(self.model, self.X, self.y)
        finally:
            setattr(layer_obj, attr, w)
        view = self._views[name]
        kept, _ = np.histogram(w[mask == 1], bins=view["edges"])
        view["kept"].set_data(kept)
        pruned_abs = np.abs(w[mask == 0])
        show_thr = method == "magnitude" and pruned_abs.size > 0
        t = float(pruned_abs.max()) if show_thr else 0.0
        for line, x in zip(view["thr"], (-t, t)):
            line.set_xdata([x, x])
            line.set_visible(show_thr)
        self.last_png = self._render(view)
        self.last_mask_png = self._mask_png(view, mask)
        kept_n = int(mask.sum())
        self.last_text = (f"<b>{name}</b> ({method}): {w.size - kept_n:,} of {w.size:,} weights pruned "
                          f"({100 * (w.size - kept_n) / w.size:.1f}%) &middot; layer keeps {kept_n:,} "
                          f"&middot; model non-zero weights {self._model_nonzero(name, w, mask):,} of "
                          f"{self.total_weights:,} &middot; {self.split} accuracy <b>{100 * acc:.1f}%</b> "
                          f"(dense {100 * self.dense_acc:.1f}%)"
                          + (f" &middot; threshold |w| &le; {t:.4f}" if show_thr else ""))
        self.accuracy = acc
        return self.last_text

    def _model_nonzero(self, name, w, mask) -> int:
        """Non-zero weights of the whole model when only layer ``name`` is pruned with ``mask``."""
        others = sum(n for k, n in self._nonzero.items() if k != name)
        return others + int(np.count_nonzero(np.asarray(w) * np.asarray(mask)))

    # ------------------------------------------------------------------ ipywidgets
    def widget(self):
        """The ipywidgets UI (sliders and dropdowns wired to :meth:`update`)."""
        import ipywidgets as W

        self.slider = W.FloatSlider(value=self.state["sparsity"], min=0.0, max=0.99, step=0.01,
                                    description="sparsity", readout_format=".2f",
                                    continuous_update=True, layout=W.Layout(width="420px"))
        self.method_dd = W.Dropdown(options=list(METHODS), value=self.state["method"],
                                    description="method")
        self.layer_dd = W.Dropdown(options=self.layers, value=self.state["layer"],
                                   description="layer")
        self.readout = W.HTML()
        self.image = W.Image(format="png")
        self.mask_image = W.Image(format="png")
        mask_box = W.VBox([W.HTML("<b>mask</b> (black = kept; rows = neurons, columns = inputs)"),
                           self.mask_image])

        def refresh(change=None):
            self.slider.disabled = self.method_dd.value == "2:4"
            try:
                self.readout.value = self.update(self.slider.value, self.method_dd.value,
                                                 self.layer_dd.value)
            except ValueError as exc:
                self.readout.value = f"<span style='color:#C44E52'>{exc}</span>"
                return
            self.image.value = self.last_png
            self.mask_image.value = self.last_mask_png

        for w in (self.slider, self.method_dd, self.layer_dd):
            w.observe(refresh, names="value")
        refresh()
        return W.VBox([W.HBox([self.slider, self.method_dd, self.layer_dd]), self.readout,
                       W.HBox([self.image, mask_box])])


def build(model: nn.Sequential, X, y, layers=None, seed: int = 0, *,
          split: str = "validation") -> PruningExplorer:
    """Build the explorer (call ``.widget()`` to display it, ``.update(...)`` to drive it).

    ``X, y``: the data the readout's accuracy is measured on, the validation split in the
    lessons (``split`` names it in the readout)."""
    return PruningExplorer(model, X, y, layers=layers, seed=seed, split=split)
