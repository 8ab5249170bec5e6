"""Figures for lessons 02a and 02b (quantization). No algorithms here: they draw what compresslab.quant computed."""
from __future__ import annotations

import numpy as np

from .common import COLORS, figure


def staircase(ax, x, x_hat, levels=None, title="quantizer", lo=None, hi=None):
    """The float -> float mapping ``x -> fake_quantize(x)``: a staircase against the identity."""
    order = np.argsort(x)
    ax.plot(x[order], x[order], color=COLORS["random"], lw=1, ls="--", label="identity")
    (line,) = ax.step(x[order], x_hat[order], where="mid", color=COLORS["quant"], lw=1.6,
                      label="quantized")
    if lo is not None and hi is not None:
        ax.axvspan(x.min(), lo, color=COLORS["pruned"], alpha=0.12, lw=0)
        ax.axvspan(hi, x.max(), color=COLORS["pruned"], alpha=0.12, lw=0, label="clipped")
    ax.set_xlabel("real value x")
    ax.set_ylabel("dequantized value")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return line


def number_line(x, q_levels, x_hat, title="floats snap to the nearest level"):
    """A few real numbers (dots) and the grid of representable values (ticks) on one line."""
    fig, ax = figure(width=9, height=1.8)
    ax.axhline(0, color="k", lw=0.6)
    ax.vlines(q_levels, -0.3, 0.3, color=COLORS["quant"], lw=1.5, label="representable levels")
    ax.scatter(x, np.full_like(x, 0.6), color=COLORS["dense"], zorder=3, label="real numbers x")
    for a, b in zip(x, x_hat):
        ax.annotate("", xy=(b, 0.32), xytext=(a, 0.55), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.set_ylim(-0.6, 1.0)
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, ncol=2)
    return fig


def rounding_error(x, err_round, err_floor, scale, lo, hi):
    """Error of round-to-nearest vs floor over x; clipping error grows outside [lo, hi]."""
    fig, ax = figure(width=7, height=3)
    ax.plot(x, err_round, color=COLORS["quant"], lw=1.2, label="round to nearest")
    ax.plot(x, err_floor, color=COLORS["pruned"], lw=1.0, alpha=0.8, label="floor (truncation)")
    ax.axhspan(-scale / 2, scale / 2, color=COLORS["quant"], alpha=0.1, label="+- scale / 2")
    ax.axvspan(x.min(), lo, color=COLORS["random"], alpha=0.15)
    ax.axvspan(hi, x.max(), color=COLORS["random"], alpha=0.15, label="clipping region")
    ax.set_xlabel("real value x")
    ax.set_ylabel("x_hat - x")
    ax.set_title("rounding error inside the range, clipping error outside")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def bit_sweep(bits, curves: dict, float_acc: float, title="accuracy vs bit width (weights)",
              split: str = "validation", se: float | None = None):
    """Accuracy (%) against bits, one line per method, with the float accuracy dashed.

    ``split`` names the data in the y label; ``se`` (a fraction), when given, shades
    ``float_acc +- 2 se``: a point inside the band is not told apart from float."""
    fig, ax = figure(width=6, height=3.6)
    markers = "osd^v"
    if se is not None:
        ax.axhspan(100 * (float_acc - 2 * se), 100 * (float_acc + 2 * se), color="0.85", lw=0,
                   label="float32 $\\pm$ 2 SE")
    for (name, accs), m in zip(curves.items(), markers):
        ax.plot(bits, 100 * np.asarray(accs), marker=m, label=name)
    ax.axhline(100 * float_acc, color="k", ls="--", lw=1, label="float32")
    ax.set_xlabel("bits per weight")
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.set_xticks(list(bits))
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def channel_ranges(w, title="per-output-channel weight range"):
    """min and max of every row of a weight matrix: one outlier channel stands out."""
    fig, ax = figure(width=7, height=2.8)
    rows = np.asarray(w).reshape(len(w), -1)
    ax.vlines(np.arange(len(rows)), rows.min(1), rows.max(1), color=COLORS["dense"], lw=1)
    ax.set_xlabel("output channel")
    ax.set_ylabel("weight range")
    ax.set_title(title)
    return fig


def qat_curves(hist_by_name: dict, start: dict | None = None,
               title="QAT: validation accuracy while training"):
    """One line per QAT run; ``start[name]`` (optional) is the PTQ accuracy drawn at epoch 0."""
    fig, ax = figure(width=5.5, height=3.2)
    for name, h in hist_by_name.items():
        ep = np.arange(1, len(h.val_acc) + 1)
        acc = 100 * np.asarray(h.val_acc)
        if start and name in start:
            ep, acc = np.r_[0, ep], np.r_[100 * start[name], acc]
        ax.plot(ep, acc, marker="o", label=name)
    ax.set_xticks(range(0, max(len(h.val_acc) for h in hist_by_name.values()) + 1))
    ax.set_xlabel("epoch (0 = post-training quantization)" if start else "epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------
# Light-weight SVG panels for the widget: a few ms per redraw, where a matplotlib PNG costs
# ~100 ms on a busy 2-core laptop. Pure drawing: the numbers come from compresslab.quant.
# --------------------------------------------------------------------------------------------
def _svg_axes(w, h, x0, x1, y0, y1, pad=28):
    """Functions mapping data (x, y) to pixels inside a w x h panel with a left/bottom margin."""
    sx = lambda x: pad + (np.asarray(x, float) - x0) / max(x1 - x0, 1e-30) * (w - pad - 6)  # noqa: E731
    sy = lambda y: h - pad + (np.asarray(y, float) - y0) / max(y1 - y0, 1e-30) * -(h - pad - 16)  # noqa: E731
    return sx, sy


def _poly(xs, ys, color, width=1.5, dash=None):
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"{d}/>'


def _frame(w, h, title, xlabel, x0, x1, pad=28):
    return (f'<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>'
            f'<text x="{w / 2:.0f}" y="12" font-size="12" text-anchor="middle" font-family="sans-serif">{title}</text>'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - 6}" y2="{h - pad}" stroke="#444"/>'
            f'<line x1="{pad}" y1="16" x2="{pad}" y2="{h - pad}" stroke="#444"/>'
            f'<text x="{pad}" y="{h - pad + 12}" font-size="10" font-family="sans-serif">{x0:.3g}</text>'
            f'<text x="{w - 6}" y="{h - pad + 12}" font-size="10" text-anchor="end" '
            f'font-family="sans-serif">{x1:.3g}</text>'
            f'<text x="{(w + pad) / 2:.0f}" y="{h - 4}" font-size="10" text-anchor="middle" '
            f'font-family="sans-serif">{xlabel}</text>')


def svg_staircase(xs, x_hat, w=300, h=220):
    """The mapping x -> x_hat (green staircase) against the identity (grey dashes), as SVG."""
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = min(x0, float(x_hat.min())), max(x1, float(x_hat.max()))
    sx, sy = _svg_axes(w, h, x0, x1, y0, y1)
    body = _frame(w, h, "staircase: x -> dequantize(quantize(x))", "weight value x", x0, x1)
    body += _poly(sx(xs), sy(xs), COLORS["random"], 1, "4,3")
    body += _poly(sx(xs), sy(x_hat), COLORS["quant"], 1.6)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">{body}</svg>'


def svg_histogram(counts, edges, levels=None, w=300, h=220, title="histogram", xlabel="value",
                  color=None, marks=None):
    """Histogram bars, optional level ticks (green) and marks (dotted), as SVG."""
    counts = np.asarray(counts, float)
    x0, x1 = float(edges[0]), float(edges[-1])
    sx, sy = _svg_axes(w, h, x0, x1, 0, max(counts.max(), 1))
    body = _frame(w, h, title, xlabel, x0, x1)
    left, right, top = sx(edges[:-1]), sx(edges[1:]), sy(counts)
    base = sy(0)
    color = color or COLORS["dense"]
    body += "".join(f'<rect x="{a:.1f}" y="{t:.1f}" width="{max(b - a - 0.3, 0.5):.1f}" height="{base - t:.1f}" '
                    f'fill="{color}"/>' for a, b, t in zip(left, right, top))
    if levels is not None:
        lv = np.asarray(levels, float)
        lv = lv[(lv >= x0) & (lv <= x1)]
        if lv.size <= 300:
            body += "".join(f'<line x1="{p:.1f}" y1="18" x2="{p:.1f}" y2="{base:.1f}" stroke="{COLORS["quant"]}" '
                            f'stroke-width="1.2" opacity="0.9"/>' for p in sx(lv))
    for m in (marks or ()):
        if x0 <= m <= x1:
            p = float(sx(m))
            body += f'<line x1="{p:.1f}" y1="18" x2="{p:.1f}" y2="{base:.1f}" stroke="black" stroke-dasharray="2,2"/>'
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">{body}</svg>'
