"""Lesson 02b widget: the quantization explorer.

Controls: bits, scheme (affine / symmetric), granularity (per tensor / per channel) and observer
(min-max / percentile / MSE). Shows, for one layer's weights, the staircase mapping, the value
histogram with every quantization level, the error histogram, the SQNR, and the accuracy of
the whole model with all weights quantized that way (activations stay float), on the split it is
given: the lesson passes the **validation** split, so that trying settings never reads the test
split (which is kept for the lesson's final claims).

Each setting is computed once and cached; drawing is inline SVG (a few ms), so a change costs
about one quantization of the model plus one evaluation on that split.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from .. import quant as Q
from ..plots import quant as P

OBSERVER_LABELS = {"min-max": "minmax", "percentile 99.9": "percentile", "MSE search": "mse"}
PERCENTILE = 99.9  # what the "percentile 99.9" choice means


class QuantExplorer:
    """Build with :func:`quant_explorer`; call :meth:`update` (or move a control) to recompute.

    ``X, y`` score every setting; ``split`` names them in the readout ("validation accuracy").
    """

    def __init__(self, model, X, y, *, split: str = "validation", layer: int = 0, bits: int = 4,
                 scheme: str = "symmetric", per_channel: bool = False, observer: str = "minmax"):
        import ipywidgets as W

        self.model = model
        self.X, self.y, self.split = X, y, str(split)
        self.layers = [l for l in model.layers if isinstance(l, (nn.Linear, nn.Conv2d))]
        if not 0 <= layer < len(self.layers):
            raise ValueError(f"layer must be in [0, {len(self.layers) - 1}], got {layer}")
        self.layer = layer
        self.float_acc = nn.evaluate(model, X, y)
        self._work = model.copy()                   # weights are overwritten per setting
        self._work_layers = [l for l in self._work.layers if isinstance(l, (nn.Linear, nn.Conv2d))]
        w = self.layers[layer].weight
        self.w = w.ravel()
        # precomputed once: a sorted sample for the staircase and the histogram bins
        self._idx = np.argsort(self.w, kind="stable")[np.linspace(0, self.w.size - 1, 400).astype(int)]
        self._xs = self.w[self._idx]
        self._counts, self._edges = np.histogram(self.w, bins=60)
        self._cache: dict = {}
        obs_label = {v: k for k, v in OBSERVER_LABELS.items()}[observer]
        self.bits = W.IntSlider(value=bits, min=2, max=8, description="bits", continuous_update=False)
        self.scheme = W.ToggleButtons(options=["affine", "symmetric"], value=scheme, description="scheme")
        self.granularity = W.ToggleButtons(options=["per tensor", "per channel"],
                                           value="per channel" if per_channel else "per tensor",
                                           description="granularity")
        self.observer = W.Dropdown(options=list(OBSERVER_LABELS), value=obs_label, description="observer")
        self.readout = W.HTML()
        self.figure = W.HTML()
        for c in (self.bits, self.scheme, self.granularity, self.observer):
            c.observe(lambda _change: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.bits, self.observer]), self.scheme, self.granularity,
                              self.readout, self.figure])
        self.update()

    # ---------------------------------------------------------------------------------------
    def settings(self) -> tuple:
        return (int(self.bits.value), self.scheme.value, self.granularity.value == "per channel",
                OBSERVER_LABELS[self.observer.value])

    def _compute(self, key):
        bits, scheme, per_channel, observer = key
        axis = 0 if per_channel else None
        qps = [Q.qparams(l.weight, bits, scheme, axis=axis, observer=observer, percentile=PERCENTILE)
               for l in self.layers]
        for src, dst, qp in zip(self.layers, self._work_layers, qps):
            dst.weight = Q.fake_quantize(src.weight, qp)
        acc = nn.evaluate(self._work, self.X, self.y)
        qp = qps[self.layer]
        w_hat = self._work_layers[self.layer].weight.ravel()
        err = w_hat - self.w
        # staircase on the sample: quantize the sampled values with their own channel's qparams
        stair = w_hat[self._idx]   # per channel, each weight follows its own channel's staircase
        if per_channel:
            levels = None if qp.scale.size * (qp.qmax - qp.qmin + 1) > 300 else \
                np.unique(Q.dequantize(np.arange(qp.qmin, qp.qmax + 1)[None, :].repeat(qp.scale.size, 0),
                                       Q.QParams(qp.scale, qp.zero_point, qp.qmin, qp.qmax, axis=0)))
            scale_text = f"scale {float(qp.scale.min()):.3g} .. {float(qp.scale.max()):.3g} ({qp.scale.size} channels)"
            half = float(qp.scale.max()) / 2
        else:
            levels = Q.dequantize(np.arange(qp.qmin, qp.qmax + 1), qp)
            scale_text = f"scale {float(qp.scale):.4g}, zero point {qp.zero_point}"
            half = float(qp.scale) / 2
        ec, ee = np.histogram(err, bins=50)
        return dict(acc=acc, sqnr=Q.sqnr(self.w, w_hat), stair=stair, levels=levels, err_counts=ec,
                    err_edges=ee, scale_text=scale_text, half=half, qmin=qp.qmin, qmax=qp.qmax,
                    distinct=int(np.unique(w_hat).size))

    def result(self, key=None) -> dict:
        key = key or self.settings()
        if key not in self._cache:
            self._cache[key] = self._compute(key)
        return self._cache[key]

    def update(self) -> str:
        """Recompute (or fetch) the current setting and redraw; returns the readout HTML."""
        key = self.settings()
        r = self.result(key)
        bits, scheme, per_channel, observer = key
        self.readout.value = (
            f"<b>{bits}-bit {scheme}, {'per channel' if per_channel else 'per tensor'}, {observer}</b>: "
            f"SQNR <b>{r['sqnr']:.1f} dB</b> on layer {self.layer} weights &nbsp;|&nbsp; "
            f"{self.split} accuracy <b>{100 * r['acc']:.1f}%</b> (float {100 * self.float_acc:.1f}%) &nbsp;|&nbsp; "
            f"integers [{r['qmin']}, {r['qmax']}], {r['scale_text']}, {r['distinct']} distinct weights")
        self.figure.value = (
            '<div style="display:flex;gap:6px">'
            + P.svg_staircase(self._xs, r["stair"])
            + P.svg_histogram(self._counts, self._edges, levels=r["levels"],
                              title="weights and the quantization levels", xlabel="weight value")
            + P.svg_histogram(r["err_counts"], r["err_edges"], title="error x_hat - x",
                              xlabel="error", color=P.COLORS["pruned"], marks=(-r["half"], r["half"]))
            + "</div>")
        return self.readout.value

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def quant_explorer(model, X, y, **kwargs) -> QuantExplorer:
    """Build the quantization explorer; leave it as the last expression of a cell to show it.

    ``X, y`` is the split every setting is scored on: pass the validation split (and
    ``split="test"`` if you really pass the test split, so that the readout says so)."""
    return QuantExplorer(model, X, y, **kwargs)
