"""Figures for lessons 05a and 05b: the pipeline stages (05a) and the Pareto front of accuracy vs bytes (05b)."""
from __future__ import annotations

import numpy as np

from .common import COLORS, figure


def pareto(rows, ax=None, title: str | None = None, baseline: str | None = None):
    """Accuracy (%) against bytes on disk (log scale); the Pareto front is joined by a line.

    ``rows`` are :class:`compresslab.report.Report` rows (dicts with name, bytes, accuracy,
    pareto, group). Returns the Figure.
    """
    if ax is None:
        fig, ax = figure(width=7.0, height=4.6)
    else:
        fig = ax.figure
    ax.set_xscale("log")
    accs = np.array([100 * r["accuracy"] for r in rows])
    ax.set_ylim(max(0.0, accs.min() - 1.0), min(100.5, accs.max() + 0.8))
    xs = np.array([r["bytes"] for r in rows], dtype=float)
    ax.set_xlim(xs.min() / 1.6, xs.max() * 2.5)
    for r in rows:
        color = COLORS.get(r.get("group", "other"), COLORS["other"])
        marker = "*" if r["name"] == baseline else "o"
        ax.scatter(r["bytes"], 100 * r["accuracy"], s=130 if marker == "*" else 55, color=color,
                   marker=marker, edgecolor="black", linewidth=0.6, zorder=3)
        if r.get("pareto"):
            ax.scatter(r["bytes"], 100 * r["accuracy"], s=190, facecolor="none", edgecolor="black",
                       linewidth=1.2, zorder=4)
    # one label per position (variants on top of each other share it); each label goes to the
    # first of a few spots around its point that does not overlap a label placed before it
    groups: dict = {}
    for r in rows:
        key = (round(float(np.log10(r["bytes"])), 2), round(100 * r["accuracy"], 1))
        groups.setdefault(key, []).append(r)
    _place_labels(ax, [(" / ".join(x["name"] for x in rs), rs[0]["bytes"], 100 * rs[0]["accuracy"])
                       for rs in groups.values()])
    front = sorted((r for r in rows if r.get("pareto")), key=lambda r: r["bytes"])
    if len(front) > 1:
        ax.step([r["bytes"] for r in front], [100 * r["accuracy"] for r in front], where="post",
                color="black", linestyle="--", linewidth=1, alpha=0.6, zorder=2,
                label="Pareto front (circled)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("bytes on disk (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "Which road? accuracy vs size (up and to the left is better)")
    return fig


def _place_labels(ax, labels, fontsize: int = 8):
    """Annotate points, trying offsets until a label's box overlaps no earlier box or point."""
    fig = ax.figure
    fig.canvas.draw_idle()
    to_px = ax.transData.transform
    scale = fig.dpi / 72.0
    points = [to_px((x, y)) for _, x, y in labels]
    placed = []
    for text, x, y in sorted(labels, key=lambda t: t[1]):
        px, py = to_px((x, y))
        w, h = 0.55 * fontsize * len(text) * scale, 1.3 * fontsize * scale
        best = None
        for dx, dy in ((6, 6), (6, -16), (-6 - w / scale, 6), (-6 - w / scale, -16), (6, 18), (6, -28),
                       (-w / scale / 2, 14), (-w / scale / 2, -24)):
            box = (px + dx * scale, py + dy * scale, px + dx * scale + w, py + dy * scale + h)
            hits = sum(not (box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1]) for b in placed)
            hits += sum(box[0] - 4 < qx < box[2] + 4 and box[1] - 4 < qy < box[3] + 4 for qx, qy in points)
            if best is None or hits < best[0]:
                best = (hits, dx, dy, box)
            if hits == 0:
                break
        _, dx, dy, box = best
        placed.append(box)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize)


def stages(names, nbytes, accuracy, dense_bytes: int, ax=None, title: str | None = None):
    """Bar chart of bytes after each pipeline stage (log scale), with ratio and accuracy labels."""
    if ax is None:
        fig, ax = figure(width=7.0, height=3.6)
    else:
        fig = ax.figure
    nbytes = np.asarray(nbytes, dtype=float)
    palette = [COLORS["dense"], COLORS["pruned"], COLORS["quant"], COLORS["distill"], COLORS["other"]]
    colors = [palette[min(i, len(palette) - 1)] for i in range(len(names))]
    bars = ax.bar(range(len(names)), nbytes, color=colors, edgecolor="black", linewidth=0.5)
    for b, n, a in zip(bars, nbytes, accuracy):
        ax.text(b.get_x() + b.get_width() / 2, n * 1.15,
                f"{n / 1000:.1f} KB\n{dense_bytes / n:.0f}x, {100 * a:.1f}%",
                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(nbytes.min() / 2, nbytes.max() * 6)
    ax.set_ylabel("bytes (log scale)")
    ax.set_title(title or "Deep Compression, stage by stage (bytes produced, ratio, accuracy)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return fig


def breakdown(rows, ax=None, title: str | None = None):
    """Stacked bars: bytes of each part (values, gaps, tables, codebooks, biases) per parameter.

    ``rows`` are :meth:`compresslab.encode.CompressedModel.breakdown` rows.
    """
    if ax is None:
        fig, ax = figure(width=7.0, height=3.4)
    else:
        fig = ax.figure
    params = list(dict.fromkeys(r["param"] for r in rows))
    parts = list(dict.fromkeys(r["part"] for r in rows))
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]
    bottom = np.zeros(len(params))
    for k, part in enumerate(parts):
        vals = np.array([sum(r["bytes"] for r in rows if r["param"] == p and r["part"] == part)
                         for p in params], dtype=float)
        label = {"raw": "raw (biases)", "values": "values (indices)", "values_table": "code lengths (values)",
                 "gaps_table": "code lengths (gaps)"}.get(part, part)
        ax.bar(range(len(params)), vals, bottom=bottom, label=label, color=palette[k % len(palette)])
        bottom += vals
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{int(total)}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(params)))
    ax.set_xticklabels(params, fontsize=8)
    ax.set_ylim(0, bottom.max() * 1.25)
    ax.set_ylabel("bytes")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title or "Where the bytes go")
    return fig


def weight_histograms(weights, titles, bins: int = 80, title: str | None = None):
    """Histograms of one layer's non-zero weights at each stage (dense, pruned, shared).

    Deep Compression's Fig. 4-5 picture: pruning removes the weights near zero (a gap opens in
    the middle), k-means weight sharing leaves a few spikes (one per centroid).
    """
    fig, axes = figure(ncols=len(weights), width=3.2, height=2.6)
    axes = np.atleast_1d(axes)
    lim = max(float(np.abs(np.asarray(w)).max()) for w in weights)
    for ax, w, t, c in zip(axes, weights, titles, [COLORS["dense"], COLORS["pruned"], COLORS["quant"]] * 3):
        w = np.asarray(w).ravel()
        nz = w[w != 0]
        ax.hist(nz, bins=np.linspace(-lim, lim, bins), color=c)
        ax.set_title(f"{t}\n{nz.size:,} non-zero, {np.unique(nz).size:,} distinct", fontsize=9)
        ax.set_xlabel("weight value")
        ax.set_yscale("log")
    axes[0].set_ylabel("count (log)")
    if title:
        fig.suptitle(title)
    return fig
