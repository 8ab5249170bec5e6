"""Figures for lessons 04a and 04b (measuring speedup): speedup bars with confidence intervals, the
roofline, Amdahl/Gustafson curves with measured points, sparsity sweeps, CPU vs GPU.

Plots draw what :mod:`compresslab.speed` and :mod:`compresslab.bench` measured and computed;
they compute nothing themselves and import neither (the caller passes the numbers in).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .common import COLORS, figure

__all__ = ["speedups", "roofline", "amdahl", "sparsity_sweep", "cpu_gpu", "benchmark"]

_PALETTE = [COLORS["dense"], COLORS["pruned"], COLORS["quant"], COLORS["distill"],
            COLORS["other"], COLORS["random"]]


def speedups(rows: Sequence[Mapping], ax=None, title: str | None = None, band: float | None = None):
    """Bars of ``speedup`` with the ``[ci_low, ci_high]`` interval; a line at 1 (no change).

    ``rows`` are :meth:`compresslab.speed.Comparison.rows` (or the ``rows`` of a report).
    ``band`` (e.g. ``Comparison.band``) shades the practical band ``[1 / (1 + band), 1 + band]``
    inside which :func:`compresslab.speed.compare` calls no difference a speedup.
    """
    if ax is None:
        fig, ax = figure(width=5.0, height=3.2)
    else:
        fig = ax.figure
    names = [r["name"] for r in rows]
    s = np.array([r["speedup"] for r in rows])
    lo = np.array([r["ci_low"] for r in rows])
    hi = np.array([r["ci_high"] for r in rows])
    colors = [_PALETTE[i % len(_PALETTE)] for i in range(len(rows))]
    ax.bar(names, s, color=colors, yerr=[s - lo, hi - s], capsize=4)
    ax.axhline(1.0, color="k", lw=1, ls="--")
    if band:
        ax.axhspan(1 / (1 + band), 1 + band, color="0.45", alpha=0.35, lw=0, zorder=3,
                   label=f"no practical difference (1 ± {band:.0%})")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    for i, (v, h) in enumerate(zip(s, hi)):
        ax.text(i + 0.1, max(v, h), f"{v:.2f}x", ha="left", va="bottom", fontsize=8)
    ax.set_ylim(0, max(hi.max(), s.max()) * 1.15)
    ax.set_ylabel("speedup over baseline (x)")
    ax.set_title(title or "speedup, median ratio with 95% CI")
    ax.tick_params(axis="x", labelrotation=20)
    return fig


def roofline(roof, points: Sequence[Mapping] = (), ax=None, title: str | None = None):
    """Log-log roofline ``min(peak, I x bandwidth)`` with ``points`` placed on it.

    Each point is ``{"name", "intensity"}`` and optionally ``"achieved"`` (FLOP/s measured): the
    marker sits at the achieved FLOP/s, a dotted line rises to the roof above it.
    """
    if ax is None:
        fig, ax = figure(width=5.6, height=3.8)
    else:
        fig = ax.figure
    xs = [p["intensity"] for p in points] + [roof.ridge]
    lo, hi = min(xs) / 4, max(xs) * 4
    i = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(i, roof.attainable(i) / 1e9, color="k", lw=2, label="roof: min(peak, I x bandwidth)")
    ax.axvline(roof.ridge, color="k", ls=":", lw=1)
    ax.text(roof.ridge * 1.1, roof.peak_flops / 1e9 * 0.55, f"ridge\n{roof.ridge:.1f} FLOP/B",
            ha="left", va="top", fontsize=8)
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    for k, p in enumerate(points):
        c = cmap(k % 10)
        y = p.get("achieved", roof.attainable(p["intensity"])) / 1e9
        ax.loglog([p["intensity"]], [y], "o", color=c, label=p["name"])
        if "achieved" in p:
            ax.plot([p["intensity"]] * 2, [y, roof.attainable(p["intensity"]) / 1e9], ":", color=c)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title or f"roofline: peak {roof.peak_flops / 1e9:.0f} GFLOP/s, "
                          f"{roof.bandwidth / 1e9:.1f} GB/s")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def amdahl(n: Sequence[float], speedup: Sequence[float], *, p: float | None = None,
           gustafson: Sequence[float] | None = None, limit: float | None = None,
           fitted: Sequence[float] | None = None, fitted_p: float | None = None,
           measured: Mapping[int, float] | None = None, ax=None):
    """Amdahl's (and Gustafson's) speedup against the number of workers ``n``, with the
    ``measured`` {threads: speedup} points on top.

    The curves come computed (plots compute nothing): ``speedup`` is Amdahl's law at ``n``,
    ``gustafson`` Gustafson's, ``limit`` Amdahl's limit ``1 / (1 - p)`` (a dotted line), ``fitted``
    Amdahl's law for the parallel fraction ``fitted_p`` fitted to measurements; ``p`` labels the
    curves. For example, with ``n = np.arange(1, 17)`` and ``p = 0.9``::

        amdahl(n, speed.amdahl(p, n), p=p, gustafson=speed.gustafson(p, n), limit=1 / (1 - p),
               fitted=scaling.predict(n), fitted_p=scaling.parallel_fraction,
               measured=scaling.speedup)

    where ``scaling`` is a :func:`compresslab.speed.thread_scaling` result.
    """
    if ax is None:
        fig, ax = figure(width=5.0, height=3.4)
    else:
        fig = ax.figure
    n = np.asarray(n, dtype=float)
    label = "" if p is None else f", p = {p:.2f}"
    ax.plot(n, n, color="#BBBBBB", lw=1, ls="--", label="ideal (S = n)")
    ax.plot(n, speedup, color=COLORS["dense"], lw=2, label=f"Amdahl{label}")
    if limit is not None:
        ax.axhline(limit, color=COLORS["dense"], lw=0.8, ls=":")
    if gustafson is not None:
        ax.plot(n, gustafson, color=COLORS["quant"], lw=1.5, label=f"Gustafson{label}")
    if fitted is not None:
        fit_label = "fit to measured" + ("" if fitted_p is None else f", p = {fitted_p:.2f}")
        ax.plot(n, fitted, color=COLORS["pruned"], lw=1, ls="-.", label=fit_label)
    if measured:
        ks = sorted(measured)
        ax.plot(ks, [measured[k] for k in ks], "o", color=COLORS["distill"], ms=7,
                label="measured here")
    top = max(2.0, float(np.max(speedup)), float(np.max(gustafson)) if gustafson is not None else 0.0)
    ax.set_xlim(1, n[-1])
    ax.set_ylim(0, min(n[-1], top) * 1.05)
    ax.set_xlabel("workers (threads / cores)")
    ax.set_ylabel("speedup")
    ax.set_title("Amdahl: fixed job; Gustafson: job grows with n")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def sparsity_sweep(sparsities: Sequence[float], speedup_by_batch: Mapping[int, Sequence[float]],
                   ax=None):
    """CSR speedup over the dense BLAS product against sparsity, one line per batch size; the
    break-even line at 1."""
    if ax is None:
        fig, ax = figure(width=5.0, height=3.2)
    else:
        fig = ax.figure
    s = 100 * np.asarray(sparsities)
    for k, (b, sp) in enumerate(speedup_by_batch.items()):
        ax.plot(s, sp, "o-", color=_PALETTE[k % len(_PALETTE)], label=f"batch {b}")
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (% of weights zero)")
    ax.set_ylabel("CSR speedup over dense (x, log)")
    ax.set_title("sparse pays only at high sparsity")
    ax.legend(fontsize=8)
    return fig


def cpu_gpu(sweep: Mapping, ax=None, title: str | None = None):
    """Latency per batch against batch size: CPU, GPU compute only, GPU with transfers."""
    if ax is None:
        fig, ax = figure(width=5.4, height=3.4)
    else:
        fig = ax.figure
    rows = sweep["rows"]
    b = [r["batch"] for r in rows]
    ax.loglog(b, [1e3 * r["cpu_s"] for r in rows], "o-", color=COLORS["dense"],
              label=f"CPU ({sweep.get('cpu_threads', '?')} threads)")
    ax.loglog(b, [1e3 * r["device_s"] for r in rows], "s-", color=COLORS["quant"],
              label="GPU, compute (synchronised)")
    ax.loglog(b, [1e3 * r["device_with_transfer_s"] for r in rows], "^--", color=COLORS["pruned"],
              label="GPU incl. host<->device copies")
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms per batch")
    ax.set_title(title or f"{sweep.get('device_name', '')}, {sweep.get('date', '')}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def benchmark(report: Mapping):
    """The ``compresslab bench`` figure: model variants (speedup with CI) and CSR at batch 1.

    ``report`` is a :func:`compresslab.bench.standard_benchmark` report.
    """
    fig, (a1, a2) = figure(ncols=2, width=4.6, height=3.4)
    m = report["models"]
    speedups(m["rows"], ax=a1, title=f"MLP {'-'.join(map(str, m['sizes']))}, batch {m['batch']}")
    c = report["csr"]
    speedups(c["rows"], ax=a2, title=f"{c['layer_shape'][0]}x{c['layer_shape'][1]} layer, "
                                     f"{c['sparsity']:.0%} sparse, batch 1, 1 thread")
    fig.suptitle(f"compresslab bench, {report.get('date', '')}", fontsize=9)
    return fig
