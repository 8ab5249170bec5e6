"""Weight sharing by k-means (Deep Compression, Han, Mao & Dally 2016 ICLR, sec. 3).

Each weight is replaced by the nearest of ``2**bits`` shared values (a codebook), stored as a
``bits``-bit index; the codebook is then fine-tuned with the summed gradient of its members.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validate as V
from .. import backend, nn
from .grid import F32

__all__ = ["kmeans", "kmeans_reconstruct", "kmeans_centroid_grad", "SharedWeights",
           "kmeans_quantize_model", "finetune_codebooks"]


def _mask_bool(mask, shape, name="mask") -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(backend.to_numpy(mask))
    if m.shape != tuple(shape):
        raise ValueError(f"{name} must have the weight's shape {tuple(shape)}, got {m.shape}")
    return m != 0


@backend.same_kind
def kmeans(w, bits: int, seed: Any = 0, mask=None, iters: int = 30, init: str = "linear"):
    """Weight sharing by k-means: ``2**bits`` shared values (a codebook) and an index per weight.

    Minimises ``sum_i (w_i - c[idx_i])**2`` with Lloyd's algorithm, starting from centroids
    spread *linearly* between ``min(w)`` and ``max(w)`` (Han, Mao & Dally 2016 ICLR found linear
    initialisation best: it keeps the rare large weights, which matter most). Each iteration
    assigns every weight to its nearest centroid, then moves each centroid to the mean of its
    members: ``c_k = mean(w_i for idx_i = k)``.

    Parameters
    ----------
    w : array or tensor of weights (any shape)
    bits : int in [1, 16]
        The codebook has ``2**bits`` entries, so each index takes ``bits`` bits.
    seed : int, numpy.random.Generator or None, default 0
        Used only by ``init="random"`` (centroids sampled from the weights).
    mask : array of w's shape, optional
        Only weights where ``mask != 0`` are clustered; pruned weights get index -1 (value 0).
    iters : int >= 1, default 30
        Most Lloyd iterations; stops early when the assignments stop changing.
    init : {"linear", "density", "random"}, default "linear"
        Initial centroids: evenly spaced in ``[min(w), max(w)]``, quantiles of ``w``, or
        ``2**bits`` weights drawn at random.

    Returns
    -------
    codebook : float32 array of ``2**bits`` centroids (sorted for linear/density init)
    indices : int32 array of w's shape; ``codebook[indices]`` approximates w; -1 where masked

    See Also
    --------
    kmeans_reconstruct : ``codebook[indices]``, the shared weights.
    kmeans_quantize_model : the same for every layer of a model.

    Notes
    -----
    The clustering runs in float64 on the kept weights only. The nearest centroid is found with
    a binary search over the midpoints between sorted centroids (a tie goes to the lower index).
    A centroid that loses all its members keeps its value.

    Examples
    --------
    >>> cb, idx = kmeans(np.array([0.0, 0.1, 0.9, 1.0]), bits=1)
    >>> [round(float(c), 2) for c in cb], idx.tolist()
    ([0.05, 0.95], [0, 0, 1, 1])
    """
    w, keep = _check_kmeans(w, bits, mask, iters, init)      # keep: which weights are clustered
    k = 2 ** bits
    c = _initial_centroids(w[keep], k, init, seed)           # float64, from the float32 weights
    v = w[keep].astype(np.float64)
    assign = None
    for _ in range(iters):                                   # Lloyd's algorithm
        new = _nearest(v, c)                                 # assign each weight to a centroid
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        sums = np.bincount(assign, weights=v, minlength=k)
        counts = np.bincount(assign, minlength=k)
        nonempty = counts > 0
        c[nonempty] = sums[nonempty] / counts[nonempty]    # centroid = mean of its members
    idx = np.full(w.shape, -1, dtype=np.int32)               # -1: pruned, not clustered
    idx[keep] = _nearest(v, c)
    return c.astype(F32), idx


def _check_kmeans(w, bits, mask, iters, init):
    """Validate :func:`kmeans`'s arguments; return w (float32) and the boolean mask of the
    weights to cluster (all of them without ``mask``)."""
    w = V.as_float32(w, "w")
    V.check_bits(bits, low=1)
    V.check_int(iters, "iters", 1)
    V.check_choice(init, "init", {"linear", "density", "random"})
    keep = _mask_bool(mask, w.shape)
    keep = np.ones(w.shape, bool) if keep is None else keep
    if not keep.any():
        raise ValueError("mask keeps no weights: nothing to cluster")
    return w, keep


def _initial_centroids(v, k, init, seed):
    """``k`` starting centroids: linearly spaced over [min, max], at the quantiles of ``v``
    ("density"), or ``k`` weights drawn at random."""
    if init == "linear":
        c = np.linspace(v.min(), v.max(), k)
    elif init == "density":
        c = np.quantile(v, np.linspace(0, 1, k))
    else:
        c = V.rng(seed).choice(v, size=k, replace=v.size < k)
    return c.astype(np.float64)


def _nearest(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for every value (ties to the lower index)."""
    order = np.argsort(c, kind="stable")
    cs = c[order]
    mids = (cs[:-1] + cs[1:]) / 2
    pos = np.searchsorted(mids, v, side="left")
    return order[pos].astype(np.int32)


@backend.same_kind
def kmeans_reconstruct(codebook, indices):
    """Shared weights ``w_hat = codebook[indices]`` (0 where the index is -1, i.e. pruned).

    Parameters
    ----------
    codebook : 1-D array or tensor
        The shared values (from :func:`kmeans`).
    indices : integer array or tensor
        Entries in ``[-1, codebook.size - 1]``; -1 marks a pruned weight.

    Returns
    -------
    float32 array of indices' shape

    See Also
    --------
    kmeans

    Examples
    --------
    >>> kmeans_reconstruct(np.array([-0.5, 0.5]), np.array([[0, 1], [-1, 1]])).tolist()
    [[-0.5, 0.5], [0.0, 0.5]]
    """
    cb = V.as_float_array(codebook, "codebook", ndim=1)
    idx = np.asarray(backend.to_numpy(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.max() >= cb.size or idx.min() < -1):
        raise ValueError(f"indices must lie in [-1, {cb.size - 1}], got [{idx.min()}, {idx.max()}]")
    return np.where(idx >= 0, cb.astype(F32)[np.maximum(idx, 0)], F32(0)).astype(F32)


@backend.same_kind
def kmeans_centroid_grad(grad, indices, n_clusters: int):
    """Gradient of the loss w.r.t. each centroid: the sum of the gradients of the weights that
    share it, ``dL/dc_k = sum_{i: idx_i = k} dL/dw_i`` (Han, Mao & Dally 2016, eq. 3).

    Parameters
    ----------
    grad : array or tensor
        ``dL/dw``, the gradient of the loss w.r.t. the (shared) weights.
    indices : integer array of grad's shape
        Cluster of each weight (from :func:`kmeans`); weights with index -1 (pruned) are skipped.
    n_clusters : int >= 1
        Length of the result (the codebook size).

    Returns
    -------
    float32 array of shape (n_clusters,)
        0 for a cluster with no members.

    Notes
    -----
    The sums are accumulated in float64 (``np.bincount`` with weights).

    Examples
    --------
    >>> g = kmeans_centroid_grad(np.array([0.1, 0.2, -0.3, 0.4]), np.array([0, 1, 1, -1]), 2)
    >>> [round(float(v), 4) for v in g]                       # [0.1, 0.2 - 0.3]; the -1 is skipped
    [0.1, -0.1]
    """
    g = V.as_float_array(grad, "grad")
    idx = np.asarray(backend.to_numpy(indices))
    if idx.shape != g.shape:
        raise ValueError(f"indices shape {idx.shape} must equal grad shape {g.shape}")
    V.check_int(n_clusters, "n_clusters", 1)
    keep = idx >= 0
    return np.bincount(idx[keep].ravel(), weights=g[keep].ravel().astype(np.float64),
                       minlength=n_clusters).astype(F32)


class SharedWeights:
    """A ``layer.weight_transform`` for codebook fine-tuning (Deep Compression, sec. 3.1).

    forward: the layer computes with ``codebook[indices]``. backward: the centroids take an SGD
    step ``c_k -= lr * sum_{i in cluster k} dL/dw_i`` and the raw weight receives a zero gradient
    (it is no longer used).

    Parameters
    ----------
    codebook : 1-D array
        Initial centroids; copied (as float32), so the caller's array is not changed.
    indices : integer array of the weight's shape
        Cluster of each weight (-1: pruned, value 0); fixed during fine-tuning.
    lr : float >= 0, default 1e-3
        Step size of the centroid update.

    See Also
    --------
    finetune_codebooks : installs one per layer and trains.
    kmeans_centroid_grad : the summed gradient.

    Notes
    -----
    The centroid step happens inside ``backward``, once per mini-batch, not in the optimizer.
    ``forward`` ignores the raw weight ``w``.

    Examples
    --------
    >>> t = SharedWeights(np.array([-1.0, 1.0]), np.array([0, 1, 1]), lr=0.5)
    >>> t.forward(np.zeros(3)).tolist()
    [-1.0, 1.0, 1.0]
    >>> t.backward(np.zeros(3), np.array([1.0, 0.5, 0.5])).tolist(), t.codebook.tolist()   # c -= 0.5 * [1, 1]
    ([0.0, 0.0, 0.0], [-1.5, 0.5])
    """

    def __init__(self, codebook, indices, lr: float = 1e-3):
        self.codebook = np.asarray(codebook, dtype=F32).copy()
        self.indices = np.asarray(indices, dtype=np.int32)
        self.lr = V.check_float(lr, "lr", 0.0)

    def forward(self, w):
        """The weight the layer uses: ``codebook[indices]`` (``w`` is ignored)."""
        return kmeans_reconstruct(self.codebook, self.indices)

    def backward(self, w, grad):
        """One SGD step on the centroids with the summed gradient; returns a zero gradient for ``w``."""
        self.codebook -= F32(self.lr) * kmeans_centroid_grad(grad, self.indices, self.codebook.size)
        return np.zeros_like(grad)


def kmeans_quantize_model(model, bits: int, *, seed: Any = 0, use_masks: bool = True,
                          iters: int = 30):
    """A copy of ``model`` whose weights are each replaced by a ``2**bits``-entry codebook.

    Every Linear/Conv2d weight becomes ``w_hat = codebook[indices]`` with
    ``codebook, indices = kmeans(w, bits)``. If a layer has ``masks["weight"]`` (pruning), only
    the kept weights are clustered and the pruned ones stay 0. Biases stay float32.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        With at least one Linear or Conv2d layer; left unchanged.
    bits : int in [1, 16]
        Bits per index: ``2**bits`` shared values per layer.
    seed : int, numpy.random.Generator or None, default 0
        Passed to :func:`kmeans` (used only by its random init).
    use_masks : bool, default True
        Honour the layers' pruning masks (``layer.masks["weight"]``).
    iters : int >= 1, default 30
        Lloyd iterations per layer.

    Returns
    -------
    model_copy : compresslab.nn.Sequential
        A new model with the shared weights.
    codebooks : list of (codebook, indices)
        One pair per weighted layer, in order (for :func:`finetune_codebooks` and encoding).

    See Also
    --------
    kmeans, finetune_codebooks

    Notes
    -----
    The copy keeps the masks (pruned weights stay 0) and drops any ``weight_transform`` (e.g. a
    :class:`~compresslab.quant.FakeQuant` left by :func:`~compresslab.quant.qat`), as
    :func:`~compresslab.quant.quantize_model` does: the clustering uses the float ``layer.weight``.

    Examples
    --------
    >>> m = nn.mlp((4, 3, 2), seed=0)
    >>> km, books = kmeans_quantize_model(m, bits=2)
    >>> [len(np.unique(layer.weight)) for layer in (km[0], km[2])], len(np.unique(m[0].weight))   # m unchanged
    ([4, 4], 12)
    >>> books[0][1].tolist()                                  # 2-bit index of each weight of layer 0
    [[2, 1, 0, 0], [3, 3, 2, 2], [2, 3, 3, 0]]
    """
    out = nn.check_model(model).copy()
    books = []
    for layer in nn.weighted_layers(out):
        layer.weight_transform = None
        mask = layer.masks.get("weight") if use_masks else None
        cb, idx = kmeans(layer.weight, bits, seed=seed, mask=mask, iters=iters)
        layer.weight = kmeans_reconstruct(cb, idx)
        books.append((cb, idx))
    return out, books


def finetune_codebooks(model, codebooks, X, y, *, epochs: int = 3, lr: float = 1e-4,
                       batch_size: int = 32, seed: Any = 0, progress: bool = True):
    """Fine-tune the centroids of a k-means-quantized model (in place) with the summed-gradient rule.

    ``c_k <- c_k - lr * sum_{i: idx_i = k} dL/dw_i`` for every mini-batch (Han, Mao & Dally 2016,
    eq. 3). Like ``nn.fit``, it trains the model you pass (``model.copy()`` first to keep the
    original): each centroid moves by plain SGD on the sum of its members' gradients (through
    :class:`SharedWeights`) and the indices stay fixed. Returns the new codebooks, a list of
    ``(codebook, indices)`` per weighted layer, for encoding.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        A k-means-quantized model (from :func:`kmeans_quantize_model`); trained in place.
    codebooks : list of (codebook, indices)
        One pair per Linear/Conv2d layer, in order; not modified.
    X, y : array_like
        Training inputs and class labels.
    epochs : int >= 0, default 3
    lr : float >= 0, default 1e-4
        Step size of the centroids, and of the biases (see Notes).
    batch_size : int >= 1, default 32
    seed : int, numpy.random.Generator or None, default 0
        Order of the mini-batches.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    list of (codebook, indices)
        The fine-tuned float32 codebooks with the unchanged indices, one pair per weighted layer.

    See Also
    --------
    kmeans_quantize_model, SharedWeights, compresslab.nn.fit

    Notes
    -----
    Training is ``nn.fit`` with ``nn.SGD(model, lr, momentum=0)``: the weights get a zero
    gradient, so that optimizer moves only the biases (which are trained too, with the same
    ``lr``). Afterwards each layer's weight is ``codebook[indices]`` and its ``weight_transform``
    is removed.

    Examples
    --------
    >>> km, books = kmeans_quantize_model(nn.mlp((4, 3, 2), seed=0), bits=2)
    >>> X, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 2
    >>> new = finetune_codebooks(km, books, X, y, epochs=1, lr=0.1, progress=False)    # trains km itself
    >>> [bool(np.array_equal(a, b)) for a, b in zip(new[0], books[0])]     # centroids moved, indices kept
    [False, True]
    """
    layers = nn.weighted_layers(model)
    if len(codebooks) != len(layers):
        raise ValueError(f"codebooks has {len(codebooks)} entries for {len(layers)} weighted layers")
    before = [layer.weight_transform for layer in layers]
    for layer, (cb, idx) in zip(layers, codebooks):
        layer.weight_transform = SharedWeights(cb, idx, lr=lr)
    try:    # the optimizer steps the biases; the weights receive a zero gradient
        nn.fit(model, X, y, epochs=epochs, batch_size=batch_size, optimizer=nn.SGD(model, lr=lr, momentum=0.0),
               seed=seed, progress=progress, desc="codebook fine-tuning")
    except Exception:           # bad X or y: leave the model as it was given
        for layer, transform in zip(layers, before):
            layer.weight_transform = transform
        raise
    books = []
    for layer in layers:
        t = layer.weight_transform
        layer.weight = t.forward(layer.weight)
        layer.weight_transform = None
        books.append((t.codebook.copy(), t.indices))
    return books
