"""Shared look for every figure: one style, readable sizes, and small helpers."""
from __future__ import annotations

import matplotlib.pyplot as plt

COLORS = {"dense": "#4C72B0", "pruned": "#DD8452", "quant": "#55A868", "distill": "#C44E52",
          "random": "#8C8C8C", "other": "#8172B3"}


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2, **kw):
    """A figure with ``nrows x ncols`` axes sized for a notebook cell."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             constrained_layout=True, **kw)
    return fig, axes


def show_images(images, labels=None, ncols: int = 10, cmap: str = "gray_r", title: str | None = None):
    """A grid of small grey images with optional labels above each."""
    import numpy as np

    images = np.asarray(images)
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9, nrows * 1.05), squeeze=False,
                             constrained_layout=True)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        ax.imshow(images[i], cmap=cmap, interpolation="nearest")
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
