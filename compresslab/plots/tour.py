"""Figures for lesson 00: samples, training curves, confusion matrix."""
from __future__ import annotations

import numpy as np

from .common import figure, show_images


def samples(split, n: int = 20, seed: int = 0):
    """A grid of ``n`` training digits with their labels."""
    g = np.random.default_rng(seed)
    idx = g.choice(len(split.y_train), n, replace=False)
    imgs = split.X_train[idx].reshape(n, *split.image_shape)
    return show_images(imgs, split.y_train[idx], ncols=10, title="8x8 digits (label above)")


def training_curves(histories: dict):
    """Loss and validation accuracy per epoch for each named History."""
    fig, (a, b) = figure(2)
    for name, h in histories.items():
        a.plot(np.arange(1, len(h.loss) + 1), h.loss, label=name)
        if h.val_acc:
            b.plot(np.arange(1, len(h.val_acc) + 1), 100 * np.asarray(h.val_acc), label=name)
    a.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    b.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy")
    a.legend(), b.legend()
    return fig


def confusion_matrix(cm: np.ndarray, title: str = "confusion matrix (test split)"):
    """Counts of (true, predicted) pairs, with the counts written in the cells."""
    fig, ax = figure(width=4.6, height=4.2)
    ax.imshow(cm, cmap="Blues")
    k = cm.shape[0]
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    return fig


def probabilities(ax, probs: np.ndarray, true_label: int | None = None):
    """Bar chart of class probabilities on ``ax`` (the predicted class highlighted)."""
    k = len(probs)
    colors = ["#4C72B0"] * k
    colors[int(np.argmax(probs))] = "#DD8452"
    ax.bar(range(k), probs, color=colors)
    ax.set(xticks=range(k), ylim=(0, 1), xlabel="class", ylabel="probability")
    if true_label is not None:
        ax.set_title(f"true label {true_label}")


def four_roads(W, mask, W_quant, soft: dict, batch_sizes, per_image_seconds):
    """Lesson 00's preview: a pruning mask, a quantization grid, softened probabilities, and
    per-image latency against batch size -- each computed by the technique modules."""
    fig, axes = figure(4, width=3.3, height=3.0)
    a, b, c, d = axes
    a.imshow(np.asarray(mask)[:60, :64], cmap="gray_r", interpolation="nearest", aspect="auto")
    a.set(title=f"prune: {100 * (1 - np.asarray(mask).mean()):.0f}% of layer 1 zeroed",
          xlabel="input (black = weight kept)", ylabel="neuron (first 60)")
    w = np.asarray(W).ravel()
    b.hist(w, bins=80, color="#4C72B0", alpha=0.7, label="float32 weights")
    levels = np.unique(np.asarray(W_quant))
    b.vlines(levels, 0, b.get_ylim()[1] * 0.25, color="#55A868", lw=1.5,
             label=f"{len(levels)} 4-bit levels used")
    b.set(title="quantize: weights on a grid", xlabel="weight value")
    b.legend(fontsize=7)
    k = len(next(iter(soft.values())))
    width = 0.8 / len(soft)
    for i, (T, p) in enumerate(sorted(soft.items())):
        c.bar(np.arange(k) + i * width, p, width=width, label=f"T = {T}")
    c.set(title="distill: softened targets", xlabel="class", ylabel="probability",
          xticks=range(k), yscale="log", ylim=(1e-6, 1.5))
    c.legend(fontsize=7)
    d.plot(batch_sizes, 1e6 * np.asarray(per_image_seconds), "o-", color="#C44E52")
    d.set(title="speed: time per image", xlabel="batch size", ylabel="µs per image",
          xscale="log", yscale="log")
    return fig
