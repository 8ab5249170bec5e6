"""Figures for lesson 03 (distillation). Drawing only: the numbers come from compresslab.distill."""
from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from .common import COLORS, figure


def dark_knowledge(images, probs_by_T: dict, labels=None):
    """One row per example: the digit, then the teacher's distribution at each temperature
    (one group of bars per class, one bar per temperature).

    Parameters
    ----------
    images : array (k, H, W)
    probs_by_T : {T: array (k, C)} teacher probabilities ``softmax(z / T)``
    labels : true labels (shown above each image), optional
    """
    temps = list(probs_by_T)
    k = len(images)
    fig, axes = figure(ncols=2, nrows=k, width=1.0, height=1.7, squeeze=False,
                       gridspec_kw={"width_ratios": [1, 6]})
    fig.set_size_inches(8.0, 1.75 * k)
    palette = [COLORS["dense"], COLORS["pruned"], COLORS["distill"], COLORS["quant"], COLORS["other"]]
    w = 0.8 / len(temps)
    for i in range(k):
        axes[i, 0].imshow(images[i], cmap="gray_r", interpolation="nearest")
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        if labels is not None:
            axes[i, 0].set_title(f"label {labels[i]}", fontsize=9)
        ax = axes[i, 1]
        for j, T in enumerate(temps):
            p = np.asarray(probs_by_T[T])[i]
            ax.bar(np.arange(len(p)) + (j - (len(temps) - 1) / 2) * w, p, w,
                   color=palette[j % len(palette)], label=f"T = {T:g}")
        ax.set_ylim(0, 1)
        ax.set_xticks(np.arange(len(p)))
        ax.tick_params(labelsize=8)
        ax.set_ylabel("probability", fontsize=8)
        if i == 0:
            ax.legend(fontsize=8, ncol=len(temps), loc="upper right")
    axes[-1, 1].set_xlabel("class")
    fig.suptitle("Teacher probabilities: a higher temperature reveals the runner-up classes", fontsize=10)
    return fig


def regime_results(table: dict, title: str = "Student accuracy on the test split (mean ± std over seeds)"):
    """Grouped bars: ``table[regime][method] = array of per-seed accuracies``."""
    regimes = list(table)
    methods = list(dict.fromkeys(m for r in regimes for m in table[r]))
    palette = [COLORS["random"], COLORS["distill"], COLORS["other"], COLORS["dense"]]
    fig, ax = figure(width=6.5, height=3.6)
    w = 0.8 / len(methods)
    lo = max(0.0, 5 * np.floor((min(100 * np.mean(v) for r in regimes for v in table[r].values()) - 8) / 5))
    for j, m in enumerate(methods):
        xs, means, stds = [], [], []
        for i, r in enumerate(regimes):
            present = [mm for mm in methods if mm in table[r]]
            if m in present:  # centre each regime's group on the methods it has
                k = present.index(m)
                a = 100 * np.asarray(table[r][m], dtype=float)
                xs.append(i + (k - (len(present) - 1) / 2) * w)
                means.append(a.mean())
                stds.append(a.std(ddof=1) if len(a) > 1 else 0.0)
        ax.bar(xs, means, w * 0.95, yerr=stds, capsize=3, label=m, color=palette[j % len(palette)])
        for x, mu in zip(xs, means):
            ax.text(x, lo + 1.5, f"{mu:.1f}", ha="center", fontsize=8, color="white")
    ax.set_xticks(range(len(regimes)))
    ax.set_xticklabels(regimes)
    ax.set_ylim(lo, 100.5)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(methods))
    return fig


def grid_heatmap(acc, Ts, alphas, *, ax=None, highlight=None, title="validation accuracy (%)"):
    """Heatmap of ``acc[i, j]`` = accuracy at ``alphas[i]``, ``Ts[j]``; optional (i, j) box."""
    acc = 100 * np.asarray(acc, dtype=float)
    if ax is None:
        fig, ax = figure(width=4.2, height=3.0)
    else:
        fig = ax.figure
    im = ax.imshow(acc, cmap="viridis", aspect="auto", origin="lower")
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if acc[i, j] < acc.min() + 0.6 * np.ptp(acc) else "black")
    ax.set_xticks(range(len(Ts)))
    ax.set_xticklabels([f"{t:g}" for t in Ts])
    ax.set_yticks(range(len(alphas)))
    ax.set_yticklabels([f"{a:g}" for a in alphas])
    ax.set_xlabel("temperature T")
    ax.set_ylabel("alpha (weight of soft term)")
    ax.set_title(title, fontsize=10)
    if highlight is not None:
        i, j = highlight
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def missing_class(per_class: dict, cls: int, title: str | None = None):
    """Per-class test accuracy bars, ``per_class[name] = array (C,)`` in [0, 1]; ``cls`` marked."""
    names = list(per_class)
    C = len(next(iter(per_class.values())))
    palette = [COLORS["random"], COLORS["pruned"], COLORS["distill"], COLORS["quant"]]
    fig, ax = figure(width=7.0, height=3.0)
    w = 0.8 / len(names)
    for j, n in enumerate(names):
        ax.bar(np.arange(C) + (j - (len(names) - 1) / 2) * w, 100 * np.asarray(per_class[n]), w,
               label=n, color=palette[j % len(palette)])
    ax.axvspan(cls - 0.5, cls + 0.5, color="gold", alpha=0.25, zorder=0)
    ax.set_xticks(range(C))
    ax.set_xlabel("digit (shaded: never seen by the student)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(names))
    ax.set_title(title or f"Students trained without any {cls}", fontsize=10)
    return fig
