"""Figures for lesson 06a (a tiny GPT's weights in 4 bits). No algorithms here: they draw what
compresslab.quant and compresslab.nn computed."""
from __future__ import annotations

import numpy as np

from .common import COLORS, figure

METHOD_COLORS = {"rtn": COLORS["dense"], "gptq": COLORS["quant"], "awq": COLORS["distill"],
                 "gguf": COLORS["pruned"]}
METHOD_MARKERS = {"rtn": "o", "gptq": "s", "awq": "^", "gguf": "D"}


def _family(method: str) -> str:
    return "gguf" if method.startswith("Q") else method


# label offsets (points) tried in order: right, left, above, below, then further out
_OFFSETS = [(7, 2), (7, -9), (-7, 2), (-7, -9), (7, 11), (-7, 11), (7, -18), (-7, -18), (7, 20), (-7, 20),
            (7, -27), (-7, -27)]


def _place_labels(ax, points, fontsize: float = 7):
    """Annotate each (x, y, label) at the first offset whose text box overlaps no marker and no
    label placed before (approximate boxes in points: a character is about 0.6 em wide)."""
    fig = ax.figure
    ax.get_xlim(), ax.get_ylim()                            # settle the autoscaled limits
    to_pt = 72.0 / fig.dpi
    centres = [tuple(ax.transData.transform((x, y)) * to_pt) for x, y, _ in points]
    boxes = [(cx - 5, cy - 5, cx + 5, cy + 5) for cx, cy in centres]          # the markers
    for (x, y, label), (cx, cy) in zip(points, centres):
        w, h = 0.6 * fontsize * len(label), fontsize + 1
        for dx, dy in _OFFSETS:
            x0 = cx + dx if dx >= 0 else cx + dx - w
            box = (x0, cy + dy, x0 + w, cy + dy + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
                break
        boxes.append(box)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                    ha="left" if dx >= 0 else "right", va="bottom",
                    arrowprops=dict(arrowstyle="-", lw=0.5, color="0.5", shrinkA=0, shrinkB=4)
                    if abs(dy) > 10 else None)                    # a leader line to a far label


def perplexity_vs_bits(rows, baseline,
                       title: str = "perplexity relative to float32 (test split, evenly spread chunks, paired)"):
    """Perplexity relative to the float model (paired 95 % interval) against bits per Linear weight.

    The paired ratio (:meth:`compresslab.nn.Perplexity.ratio_to`) is drawn rather than the
    perplexities themselves: their own intervals are dominated by how hard the test chunks are,
    which is the same for every variant, and would hide differences of a few percent.

    Parameters
    ----------
    rows : sequence of dict
        Each with ``label``, ``method`` ("rtn", "gptq", "awq" or a GGUF type "Q4_0" ...),
        ``bits_per_weight``, ``ratio``, ``ratio_low``, ``ratio_high``.
    baseline : compresslab.nn.Perplexity or float
        The float32 model's perplexity (its value is shown in the legend).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not rows:
        raise ValueError("rows must hold at least one variant")
    value = float(baseline.value if hasattr(baseline, "value") else baseline)
    fig, ax = figure(width=7.4, height=4.2)
    ax.axhline(1.0, color=COLORS["random"], lw=1.2, ls="--", label=f"float32 (perplexity {value:.3f})")
    seen = set()
    order = sorted(range(len(rows)), key=lambda i: (float(rows[i]["bits_per_weight"]), float(rows[i]["ratio"])))
    for i in order:
        r = rows[i]
        fam = _family(r["method"])
        x, y = float(r["bits_per_weight"]), float(r["ratio"])
        ax.errorbar(x, y, yerr=[[y - r["ratio_low"]], [r["ratio_high"] - y]], fmt=METHOD_MARKERS[fam],
                    color=METHOD_COLORS[fam], ms=7, capsize=3, mec="black", mew=0.5,
                    label=None if fam in seen else {"gguf": "GGUF (llama.cpp)"}.get(fam, fam.upper()))
        seen.add(fam)
    xs = [float(r["bits_per_weight"]) for r in rows]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.9)         # room for the labels at both ends
    _place_labels(ax, [(float(rows[i]["bits_per_weight"]), float(rows[i]["ratio"]), rows[i]["label"])
                       for i in order])
    ax.set_xlabel("bits per Linear weight (scales and zero points included)")
    ax.set_ylabel("perplexity / float32 perplexity")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def layer_errors(errors, title: str = "relative output error of every Linear layer (calibration inputs)"):
    """Grouped bars: the relative output error of each layer, one bar colour per variant.

    Parameters
    ----------
    errors : dict of {str: dict of {str: float}}
        Variant label -> (layer name -> error), e.g. ``CompressedGPT.layer_error``; every variant
        must name the same layers. A label starting with a method name ("RTN 4-bit") gets that
        method's colour, its second setting hatched.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not errors:
        raise ValueError("errors must hold at least one variant")
    labels = list(errors)
    layers = list(errors[labels[0]])
    if any(list(e) != layers for e in errors.values()):
        raise ValueError("every variant must report the same layers, in the same order")
    fig, ax = figure(width=9.0, height=3.6)
    width = 0.8 / len(labels)
    x = np.arange(len(layers))
    palette = [COLORS[k] for k in ("dense", "quant", "pruned", "distill", "other", "random")]
    times: dict = {}
    for i, lab in enumerate(labels):
        fam = lab.split()[0].lower() if lab.split() else ""
        color = METHOD_COLORS.get(fam, palette[i % len(palette)])   # a method's colour, as in the other figure
        times[fam] = times.get(fam, 0) + 1                           # its second setting hatched
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, [errors[lab][n] for n in layers], width,
               label=lab, color=color, hatch="////" if times[fam] % 2 == 0 else None, edgecolor="white", lw=0)
    ax.set_xticks(x)
    ax.set_xticklabels([n.replace("blocks.", "").replace("attn.", "").replace("mlp.", "") for n in layers],
                       rotation=60, fontsize=7)
    ax.set_ylabel("‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖")
    ax.set_title(title, fontsize=10)
    top = max(max(e.values()) for e in errors.values())
    ax.set_ylim(0, top * 1.25)                        # headroom: the legend sits above the bars
    ax.legend(fontsize=8, ncol=len(labels), loc="upper left")
    return fig
