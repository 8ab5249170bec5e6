"""Capstone figures draw what they are given (no algorithms inside), and stay readable."""
from __future__ import annotations

import matplotlib.pyplot as plt  # the Agg backend: set by the root conftest.py
import numpy as np

import compresslab as cl


def _rows():
    return [dict(name=n, bytes=b, accuracy=a, group=g, pareto=p) for n, b, a, g, p in [
        ("dense", 200_000, 0.978, "dense", False), ("dc", 4_000, 0.975, "pruned", True),
        ("q4a", 27_000, 0.978, "quant", True), ("q4b", 27_010, 0.978, "quant", False)]]


def test_pareto_plot_labels_and_scale():
    fig = cl.plots.capstone.pareto(_rows(), baseline="dense")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    texts = [t.get_text() for t in ax.texts]
    assert "q4a / q4b" in texts and "dc" in texts and len(texts) == 3   # coincident points share
    lo, hi = ax.get_ylim()
    assert lo < 97.5 < 97.8 < hi
    plt.close(fig)


def test_stage_and_breakdown_plots():
    fig = cl.plots.capstone.stages(["dense", "pruned", "file"], [200_000, 16_000, 4_000],
                                   [0.98, 0.975, 0.975], 200_000)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any("50x" in s for s in labels) and any("1x" in s for s in labels)
    plt.close(fig)
    m = cl.nn.mlp((8, 6, 3))
    m[0].weight[np.abs(m[0].weight) < 0.2] = 0
    cm = cl.encode.pack_model(m, codebook=False)
    fig = cl.plots.capstone.breakdown(cm.breakdown())
    heights = sum(p.get_height() for p in fig.axes[0].patches)
    assert heights == cm.nbytes
    plt.close(fig)
    fig = cl.plots.capstone.weight_histograms([m[0].weight, m[2].weight], ["a", "b"])
    assert len(fig.axes) == 2
    for ax, w in zip(fig.axes, [m[0].weight, m[2].weight]):   # only the non-zero weights are drawn
        assert sum(p.get_height() for p in ax.patches) == np.count_nonzero(w)
        assert f"{np.count_nonzero(w):,} non-zero" in ax.get_title()
    assert np.count_nonzero(m[0].weight) < m[0].weight.size
    plt.close(fig)
