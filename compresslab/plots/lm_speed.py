"""Figures for lesson 06b (language models II): the per-channel range of a layer's activations and
weights; decode and prefill on the roofline, and the measured time per token beside the
memory-bandwidth bound.

Plots draw what :mod:`compresslab.speed` measured and computed; they compute nothing themselves
(the caller passes the numbers in).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from .common import COLORS, figure
from .speed import roofline

__all__ = ["channel_ranges", "decode_speed"]


def channel_ranges(x_absmax, w_absmax, title: str | None = None):
    """Per input channel ``j``: ``max_n |X_nj|`` of the activations and ``max_i |W_ij|`` of the
    weights, as bars on two panels sharing the channel axis (log scale), each with its median.

    The picture of why activations are harder to quantize than weights: one int8 scale must
    cover the tallest bar.
    """
    import numpy as np

    x_absmax, w_absmax = np.asarray(x_absmax, float), np.asarray(w_absmax, float)
    fig, (top, bottom) = figure(nrows=2, width=8.0, height=1.9, sharex=True)
    j = np.arange(len(x_absmax))
    for ax, v, color, what in ((top, x_absmax, COLORS["distill"], "activations  max_n |X_nj|"),
                               (bottom, w_absmax, COLORS["quant"], "weights  max_i |W_ij|")):
        ax.bar(j, v, width=1.0, color=color)
        ax.axhline(np.median(v), color="k", ls=":", lw=1,
                   label=f"median; max / median = {v.max() / np.median(v):.1f}")
        ax.set_yscale("log")
        ax.set_ylabel(what, fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    bottom.set_xlabel("input channel j")
    top.set_title(title or "per-channel range of a layer's inputs and of its weights")
    return fig


def decode_speed(roof, points: Sequence[Mapping], per_token: Sequence[Mapping], title: str | None = None):
    """Two panels: ``points`` on the roofline ``roof`` (left, see :func:`plots.speed.roofline`),
    and bars of the measured time per token against its DRAM time, bytes read / DRAM bandwidth
    (right, log scale): a lower bound only when the weights do not fit in the caches.

    ``per_token`` rows: ``{"name", "measured_s", "bound_s"}`` -- seconds per token measured, and
    bytes read per token / bandwidth (``compresslab.speed.lm.decode_time_bound``).
    """
    fig, (left, right) = figure(ncols=2, width=5.2, height=4.0)
    roofline(roof, points, ax=left, title="decode (batch 1) and prefill on this CPU's roofline")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)   # off the points
    names = [r["name"] for r in per_token]
    y = range(len(names))
    measured = [r["measured_s"] * 1e3 for r in per_token]
    bound = [r["bound_s"] * 1e3 for r in per_token]
    right.barh([i + 0.2 for i in y], measured, height=0.4, color=COLORS["dense"], label="measured")
    right.barh([i - 0.2 for i in y], bound, height=0.4, color=COLORS["random"],
               label="DRAM time: bytes read / DRAM bandwidth\n(not a bound when the weights are cached)")
    for i, (m, b) in enumerate(zip(measured, bound)):
        right.text(m, i + 0.2, f" {m:.2g} ms ({m / b:.2g}x the DRAM time)", va="center", fontsize=7)
    right.set_yticks(list(y), names, fontsize=8)
    right.set_xscale("log")
    right.set_xlabel("milliseconds per token (log)")
    right.set_title(title or "time per token vs the DRAM time")
    right.legend(fontsize=7, loc="lower right")
    right.set_xlim(min(bound + measured) / 3, max(bound + measured) * 30)
    return fig
