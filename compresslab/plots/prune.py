"""Figures for lessons 01a and 01b (pruning): histograms with thresholds, mask pictures, sensitivity,
accuracy-vs-sparsity curves, schedules. No algorithms here: they draw what
:mod:`compresslab.prune` computed."""
from __future__ import annotations

import numpy as np

from .common import COLORS, figure

__all__ = ["weight_histogram", "mask_gallery", "sensitivity", "accuracy_vs_sparsity",
           "schedule", "latency_bars", "quartiles"]


def weight_histogram(w, threshold: float | None = None, ax=None, bins: int = 80,
                     title: str | None = None):
    """Histogram of the weights; with a ``threshold``, the weights with ``|w| <= threshold``
    (what magnitude pruning removes) are drawn in orange, stacked on the kept ones."""
    w = np.asarray(w).ravel()
    if ax is None:
        fig, ax = figure(width=5.0, height=3.0)
    else:
        fig = ax.figure
    edges = np.histogram_bin_edges(w, bins=bins)
    if threshold is None:
        ax.hist(w, bins=edges, color=COLORS["dense"])
    else:
        pruned = np.abs(w) <= threshold
        ax.hist([w[~pruned], w[pruned]], bins=edges, stacked=True,
                color=[COLORS["dense"], COLORS["pruned"]],
                label=[f"kept ({(~pruned).sum()})", f"pruned: |w| <= {threshold:.3g} ({pruned.sum()})"])
        for t in (-threshold, threshold):
            ax.axvline(t, color="k", lw=0.8, ls=":")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    if title:
        ax.set_title(title)
    return fig


def mask_gallery(masks: dict, title: str | None = None, max_rows: int = 64, max_cols: int = 64):
    """Masks side by side (kept = dark, pruned = white), each cropped to its top-left corner."""
    n = len(masks)
    fig, axes = figure(ncols=n, width=2.6, height=2.8)
    axes = np.atleast_1d(axes)
    for ax, (name, mask) in zip(axes, masks.items()):
        m = np.asarray(mask)
        m2 = m.reshape(m.shape[0], -1)[:max_rows, :max_cols]
        ax.imshow(m2, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{name}\n{100 * (1 - m.mean()):.0f}% pruned", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


def sensitivity(result, ax=None):
    """Accuracy vs sparsity when pruning one layer at a time (a SensitivityResult)."""
    if ax is None:
        fig, ax = figure(width=5.0, height=3.4)
    else:
        fig = ax.figure
    for name, acc in zip(result.layers, result.accuracy):
        ax.plot(100 * result.sparsities, 100 * acc, marker="o", ms=3, label=name)
    ax.axhline(100 * result.baseline, color="k", ls="--", lw=1, label="unpruned")
    ax.set_xlabel("sparsity of this layer (%)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Sensitivity scan: one layer at a time")
    ax.legend(fontsize=8)
    return fig


def accuracy_vs_sparsity(curves: dict, baseline: float | None = None, ax=None,
                         title: str = "Accuracy vs sparsity", zoom: float | None = None,
                         split: str = "validation"):
    """One line per method: ``curves = {label: (sparsities, accuracies)}`` (fractions).

    Labels containing "random" are drawn grey (dashed for one-shot). With ``zoom`` (a number
    of points below the dense accuracy), a second panel shows the top of the range. ``split``
    names the data the accuracies were measured on, in the y label (a sweep scores on the
    validation split).
    """
    if ax is None:
        fig, axes = figure(ncols=2 if zoom else 1, width=4.6 if zoom else 5.6, height=3.6)
        axes = np.atleast_1d(axes)
    else:
        fig, axes = ax.figure, np.atleast_1d(ax)
    for a in axes:
        for label, (sp, acc) in curves.items():
            kw = {}
            if "random" in label.lower():
                kw = {"color": COLORS["random"], "ls": "--" if "one-shot" in label else "-",
                      "marker": "x"}
            a.plot(100 * np.asarray(sp), 100 * np.asarray(acc), marker=kw.pop("marker", "o"),
                   ms=4, label=label, **kw)
        if baseline is not None:
            a.axhline(100 * baseline, color="k", ls="--", lw=1, label="dense")
            a.axhspan(100 * baseline - 1, 100 * baseline, color="green", alpha=0.12,
                      label="within 1 point")
        a.set_xlabel("sparsity (%)")
        a.set_ylabel(f"{split} accuracy (%)")
    axes[0].set_title(title)
    axes[0].legend(fontsize=7, loc="lower left")
    if zoom and len(axes) > 1 and baseline is not None:
        axes[1].set_ylim(100 * baseline - zoom, min(100.5, 100 * baseline + 2))
        axes[1].set_title(f"zoom: top {zoom:g} points")
    return fig


def schedule(steps, sparsities, prune_steps=None, ax=None, title="AGP schedule (polynomial decay)"):
    """Target sparsity over training steps, with dots where masks are updated."""
    if ax is None:
        fig, ax = figure(width=5.0, height=3.0)
    else:
        fig = ax.figure
    ax.plot(steps, 100 * np.asarray(sparsities), color=COLORS["pruned"])
    if prune_steps is not None:
        ps = np.asarray(prune_steps)
        ax.plot(np.asarray(steps)[ps], 100 * np.asarray(sparsities)[ps], "o", ms=3,
                color=COLORS["dense"], label="mask update")
        ax.legend(fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("target sparsity (%)")
    ax.set_title(title)
    return fig


def latency_bars(labels, medians_s, spread=None, ax=None, title="Latency (median)"):
    """Bars of median latency in milliseconds.

    ``spread``: per bar either the ``(q1, q3)`` quartiles in seconds (drawn as an asymmetric
    error bar; :func:`quartiles` gets them from a ``Timing``) or one number, the IQR (drawn as
    +- IQR / 2, clipped at zero).
    """
    if ax is None:
        fig, ax = figure(width=4.6, height=3.0)
    else:
        fig = ax.figure
    med = 1e3 * np.asarray(medians_s, dtype=float)
    err = None
    if spread is not None:
        lo, hi = [], []
        for m, s in zip(med, spread):
            if np.ndim(s) == 1:
                lo.append(m - 1e3 * s[0])
                hi.append(1e3 * s[1] - m)
            else:
                lo.append(min(m, 1e3 * s / 2))
                hi.append(1e3 * s / 2)
        err = np.clip(np.array([lo, hi]), 0, None)
    ax.bar(labels, med, yerr=err, capsize=4,
           color=[COLORS["dense"], COLORS["pruned"], COLORS["quant"], COLORS["other"]][:len(med)])
    ax.set_ylabel("ms per call (median, bars: quartiles)")
    ax.set_title(title)
    return fig


def quartiles(timing) -> tuple[float, float]:
    """(q1, q3) of a :class:`compresslab.speed.Timing`'s samples, in seconds."""
    q1, q3 = np.percentile(timing.samples, [25, 75])
    return float(q1), float(q3)
