"""Pruning: masks, schedules, sensitivity, and shrinking a pruned network for real.

A *mask* is a float32 array of 0s and 1s with the shape of the parameter it prunes; the pruned
parameter is ``w * mask``. Masks for a whole model are a dict keyed by the state-dict name of
the parameter (``{"0.weight": mask, "2.weight": mask}``), and :func:`apply_masks` installs them
in ``layer.masks`` so that :mod:`compresslab.nn`'s optimizers keep pruned weights exactly zero
while training.

``amount`` works exactly like ``torch.nn.utils.prune``: an ``int`` is the number of weights (or
slices) to prune, a ``float`` in [0, 1] the fraction, turned into a count by Python's
``round(amount * n)`` (round half to even, as torch's ``_compute_nparams_toprune`` does).

Tie rule (documented and tested): when several weights have the same importance at the
threshold, the ones with the *lowest flat index* are pruned first. Selection is O(n): one
``np.partition`` finds the k-th smallest importance, no full sort.

References
----------
* Han, Pool, Tran & Dally, "Learning both Weights and Connections for Efficient Neural
  Networks", NeurIPS 2015 (magnitude pruning + retraining, LeNet-300-100 92% sparse).
* Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017
  (structured pruning of whole filters by their L1 norm).
* Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
  compression", ICLR Workshop 2018 (arXiv 2017) -- automated gradual pruning (AGP), the
  polynomial sparsity schedule.
* Mishra et al., "Accelerating Sparse Deep Neural Networks", arXiv 2021 (2:4 sparsity on
  NVIDIA Ampere).
* Sun, Liu, Bair & Kolter, "A Simple and Effective Pruning Approach for Large Language
  Models", ICLR 2024 (Wanda: weights times input norms, compared per output row).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from . import _validate as V
from . import nn
from .backend import same_kind, to_numpy

__all__ = [
    "count_to_prune", "magnitude", "global_magnitude", "random", "structured", "n_m",
    "magnitude_per_row", "wanda_scores", "wanda", "prune_gpt",
    "prunable", "apply_masks", "remove_masks", "masks_of", "model_masks", "sparsity",
    "SparsityReport", "shrink", "ScheduleStep", "constant", "polynomial_decay", "fit_pruned",
    "agp", "sensitivity_scan", "SensitivityResult",
]


# --------------------------------------------------------------------------------------------
# How many to prune
# --------------------------------------------------------------------------------------------
def count_to_prune(amount: Any, n: int, name: str = "amount") -> int:
    """Number of entries to prune out of ``n``, with torch's ``amount`` semantics.

    ``k = amount`` for an ``int`` (a count, ``0 <= amount <= n``) and ``k = round(amount * n)``
    for a ``float`` in [0, 1] (a fraction), with Python's round half to even, like
    ``torch.nn.utils.prune._compute_nparams_toprune``.

    Parameters
    ----------
    amount : int or float
        A count in ``[0, n]`` or a fraction in [0, 1]. ``1`` is one entry, ``1.0`` all of them.
    n : int
        How many entries there are to choose from.
    name : str, default "amount"
        The argument name used in error messages.

    Returns
    -------
    int
        The count ``k``.

    Examples
    --------
    >>> count_to_prune(0.5, 5), count_to_prune(0.7, 5), count_to_prune(3, 5)
    (2, 4, 3)
    """
    amount = V.check_amount(amount, n, name)
    return amount if isinstance(amount, int) else round(amount * n)


def _smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean array marking the ``k`` smallest scores (ties: lowest index first), in O(n).

    Obvious form, O(n log n): ``chosen[np.argsort(scores, kind="stable")[:k]] = True``. Here one
    ``np.partition`` finds the k-th smallest value ``t``; everything below ``t`` is chosen, then
    the first entries equal to ``t`` fill the count exactly.
    """
    chosen = np.zeros(scores.size, dtype=bool)
    if k > 0:
        t = np.partition(scores, k - 1)[k - 1]
        np.less(scores, t, out=chosen)
        chosen[np.flatnonzero(scores == t)[: k - np.count_nonzero(chosen)]] = True
    return chosen


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------
@same_kind
def magnitude(w, amount):
    """Magnitude pruning mask: 0 for the ``k`` weights with the smallest ``|w|``, 1 elsewhere.

    ``mask[i] = 0 if |w[i]| is among the k smallest of |w|, else 1``, with
    ``k = count_to_prune(amount, w.size)``; the pruned weights are ``w * mask`` (Han et al.,
    NeurIPS 2015). Tie rule: among equal ``|w|`` at the threshold, the lowest flat index is
    pruned first.

    Parameters
    ----------
    w : array_like or torch.Tensor
        The weights, any shape, finite.
    amount : int or float
        Weights to prune: an int is a count, a float in [0, 1] a fraction (see
        :func:`count_to_prune`), as in ``torch.nn.utils.prune``.

    Returns
    -------
    mask : float32 array of 0 and 1, shape of ``w``
        The same kind as ``w`` (a tensor on ``w``'s device for a tensor).

    See Also
    --------
    global_magnitude : one threshold across several layers.
    structured : prune whole rows, filters or channels.
    n_m : N:M semi-structured sparsity.

    Notes
    -----
    Equal to ``torch.nn.utils.prune.l1_unstructured`` on inputs without ties (torch's ``topk``
    leaves the order of ties unspecified; the counts always agree). The ``k`` smallest are found
    in O(n) with one ``np.partition`` rather than a full sort.

    References
    ----------
    .. [1] S. Han, J. Pool, J. Tran, W. J. Dally, "Learning both Weights and Connections for
       Efficient Neural Networks", NeurIPS 2015.

    Examples
    --------
    >>> magnitude(np.array([0.5, -3.0, 0.1, 2.0]), 0.5).tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    w = V.as_float_array(w, "w")
    k = count_to_prune(amount, w.size)
    mask = np.ones(w.size, dtype=np.float32)
    # obvious form, O(n log n): mask[np.argsort(np.abs(w), axis=None, kind="stable")[:k]] = 0.0
    mask[_smallest(np.abs(w).ravel(), k)] = 0.0    # the same k weights, found in O(n)
    return mask.reshape(w.shape)


def _check_weight_collection(weights: Any) -> list[np.ndarray]:
    if isinstance(weights, dict):
        named = [(f"weights[{k!r}]", v) for k, v in weights.items()]
    elif isinstance(weights, (list, tuple)):
        named = [(f"weights[{i}]", v) for i, v in enumerate(weights)]
    else:
        raise TypeError(f"weights must be a list, tuple or dict of arrays, got {type(weights).__name__}")
    if not named:
        raise ValueError("weights is empty: give at least one array")
    return [V.as_float_array(v, name) for name, v in named]


@same_kind
def global_magnitude(weights, amount):
    """Magnitude pruning with one threshold across several arrays.

    All ``|w|`` are concatenated (in the given order) and the ``k`` smallest are pruned, with
    ``k = count_to_prune(amount, total size)``, so layers with many small weights lose more
    (Han et al., NeurIPS 2015). Ties: lowest index in the concatenation first. Like
    ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``.

    Parameters
    ----------
    weights : list, tuple or dict of array_like or torch.Tensor
        The arrays, e.g. a state dict ``{name: weight}``.
    amount : int or float
        Count or fraction of *all* weights together.

    Returns
    -------
    masks : list, tuple or dict of float32 0/1 arrays
        The container type of ``weights`` (a dict keeps its keys), one mask per array.

    See Also
    --------
    magnitude : one threshold per array.

    Examples
    --------
    >>> m = global_magnitude({"a": np.array([1.0, 2.0]), "b": np.array([0.1, 5.0])}, 2)
    >>> m["a"].tolist(), m["b"].tolist()
    ([0.0, 1.0], [0.0, 1.0])
    """
    arrays = _check_weight_collection(weights)
    scores = np.concatenate([np.abs(a).ravel() for a in arrays])
    pruned = _smallest(scores, count_to_prune(amount, scores.size))
    ends = np.cumsum([a.size for a in arrays])[:-1]
    masks = [(~p).astype(np.float32).reshape(a.shape)
             for p, a in zip(np.split(pruned, ends), arrays)]
    if isinstance(weights, dict):
        return dict(zip(weights, masks))
    return tuple(masks) if isinstance(weights, tuple) else masks


@same_kind
def random(w, amount, seed=0):
    """Random pruning mask: ``k`` weights chosen uniformly without replacement (the baseline).

    ``k = count_to_prune(amount, w.size)``. Any importance criterion worth its name must beat
    this at the same sparsity.

    Parameters
    ----------
    w : array_like or torch.Tensor
        The weights (only their shape matters).
    amount : int or float
        Count or fraction of weights to prune.
    seed : int, numpy.random.Generator or None, default 0
        Seed of the choice.

    Returns
    -------
    mask : float32 array of 0 and 1, shape of ``w``

    See Also
    --------
    magnitude : prune the smallest weights instead.

    Examples
    --------
    >>> int(random(np.ones(10), 0.3, seed=0).sum())
    7
    """
    w = V.as_float_array(w, "w")
    k = count_to_prune(amount, w.size)
    mask = np.ones(w.size, dtype=np.float32)
    mask[V.rng(seed).choice(w.size, size=k, replace=False)] = 0.0
    return mask.reshape(w.shape)


def _check_structured(w: Any, dim: Any, n: Any) -> tuple[np.ndarray, int, float]:
    w = V.as_float_array(w, "w")
    if w.ndim < 2:
        raise ValueError(f"w must have at least 2 dimensions for structured pruning (rows, "
                         f"filters, channels), got shape {w.shape}; use magnitude() for vectors")
    dim = V.check_axis(dim, w.ndim, "dim")
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or np.isnan(n) or n <= 0:
        raise ValueError(f"n must be a positive norm order (1, 2, ..., or np.inf), got {n!r}")
    return w, dim, float(n)


@same_kind
def structured(w, amount, dim, n=2):
    """Structured pruning mask: zero the ``k`` whole slices along ``dim`` of smallest L``n`` norm.

    ``norm[j] = (sum |w.take(j, axis=dim)|**n) ** (1/n)`` (``max |...|`` for ``n = inf``); the
    ``k = count_to_prune(amount, w.shape[dim])`` slices with the smallest norm are zeroed (ties:
    lowest index first). For a Linear weight (out, in), ``dim=0`` removes neurons (rows) and
    ``dim=1`` inputs; for a Conv2d weight, ``dim=0`` removes filters (Li et al., ICLR 2017).

    Parameters
    ----------
    w : array_like or torch.Tensor with at least 2 dimensions
        The weights.
    amount : int or float
        Count or fraction of slices to prune.
    dim : int
        The axis whose slices are pruned (negative counts from the end).
    n : float, default 2
        Norm order: a positive number or ``np.inf``.

    Returns
    -------
    mask : float32 array of 0 and 1, shape of ``w``, constant on every slice

    See Also
    --------
    magnitude : single weights instead of slices.
    shrink : remove the zeroed units from the model for real.

    Notes
    -----
    Equal to ``torch.nn.utils.prune.ln_structured`` on inputs without ties. Norms are computed
    in float64.

    References
    ----------
    .. [1] H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf, "Pruning Filters for Efficient
       ConvNets", ICLR 2017.

    Examples
    --------
    >>> structured(np.array([[1.0, 1.0], [0.1, 0.2], [3.0, 0.0]]), 1, dim=0).tolist()
    [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]
    """
    w, dim, n = _check_structured(w, dim, n)
    k = count_to_prune(amount, w.shape[dim])
    others = tuple(ax for ax in range(w.ndim) if ax != dim)    # a slice spans these axes
    a = np.abs(w.astype(np.float64))
    norms = a.max(axis=others) if n == np.inf else (a ** n).sum(axis=others) ** (1.0 / n)
    keep = ~_smallest(norms, k)                                # one entry per slice
    return np.broadcast_to(np.expand_dims(keep, others), w.shape).astype(np.float32)


@same_kind
def n_m(w, n=2, m=4, dim=1):
    """N:M semi-structured mask: in every group of ``m`` consecutive weights keep the ``n`` largest.

    Along ``dim``, the weights form groups of ``m``; in each group the ``m - n`` smallest ``|w|``
    are pruned (ties: lowest index first). The default ``dim=1`` groups the input features of a
    Linear weight (out, in), or the input channels of a Conv2d weight.

    Parameters
    ----------
    w : array_like or torch.Tensor with ``w.shape[dim]`` divisible by ``m``
        The weights.
    n : int, default 2
        Weights kept per group, ``0 <= n <= m``.
    m : int, default 4
        Group size, ``m >= 1``.
    dim : int, default 1
        Axis along which groups are formed.

    Returns
    -------
    mask : float32 array of 0 and 1, shape of ``w``, with exactly ``n`` ones per group

    See Also
    --------
    magnitude : unstructured, no group constraint.

    Notes
    -----
    2:4 is the pattern that NVIDIA Ampere sparse tensor cores accelerate (Mishra et al. 2021).

    References
    ----------
    .. [1] A. Mishra et al., "Accelerating Sparse Deep Neural Networks", arXiv:2104.08378, 2021.

    Examples
    --------
    >>> n_m(np.array([[0.1, -0.9, 0.5, 0.2, 4.0, 3.0, -2.0, 1.0]]), 2, 4).tolist()
    [[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    w = V.as_float_array(w, "w")
    m = V.check_int(m, "m", 1)
    n = V.check_int(n, "n", 0, m)
    if w.ndim == 0:
        raise ValueError("w must have at least 1 dimension")
    dim = V.check_axis(dim, w.ndim, "dim")
    if w.shape[dim] % m:
        raise ValueError(f"w.shape[{dim}] = {w.shape[dim]} must be divisible by m={m} to form "
                         f"groups of {m} (w has shape {w.shape})")
    a = np.moveaxis(np.abs(w), dim, -1)
    groups = a.reshape(*a.shape[:-1], a.shape[-1] // m, m)
    # in each group, prune the (m - n) smallest |w| (stable sort: lowest index first)
    order = np.argsort(groups, axis=-1, kind="stable")
    mask = np.ones_like(groups, dtype=np.float32)
    np.put_along_axis(mask, order[..., : m - n], 0.0, axis=-1)
    return np.moveaxis(mask.reshape(a.shape), -1, dim).copy()


_n_m = n_m   # wanda() has an argument named n_m


# --------------------------------------------------------------------------------------------
# Pruning with calibration inputs: Wanda (large language models)
# --------------------------------------------------------------------------------------------
def _linear_weight(w: Any) -> np.ndarray:
    w = V.as_float_array(w, "w")
    if w.ndim != 2:
        raise ValueError(f"w must be a Linear weight of shape (out_features, in_features), 2 dimensions, "
                         f"got shape {w.shape}")
    return w


def _prune_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """0/1 mask with the ``k`` smallest scores of every row pruned (ties: lowest column first).

    Wanda's reference code does exactly this: a stable sort of each row, the first ``k`` pruned.
    """
    order = np.argsort(scores, axis=1, kind="stable")
    mask = np.ones(scores.shape, dtype=np.float32)
    np.put_along_axis(mask, order[:, :k], 0.0, axis=1)
    return mask


@same_kind
def magnitude_per_row(w, amount):
    """Magnitude pruning per output row: each row of a Linear weight loses its ``k`` smallest ``|w|``.

    ``mask[i, j] = 0 if |w[i, j]| is among the k smallest of row i, else 1``, with
    ``k = count_to_prune(amount, in_features)`` for *every* row, so each output neuron keeps the
    same number of inputs. Tie rule: among equal ``|w|`` at the threshold of a row, the lowest
    column is pruned first.

    This is magnitude pruning with Wanda's comparison group (per output), the fair baseline for
    isolating what Wanda's input norms add. :func:`magnitude` is the *layer-wise* magnitude pruning
    that the Wanda paper's "Magnitude" baseline uses (one threshold per layer, so rows may lose
    different numbers of weights); the paper's ablation of the comparison group tries both
    groupings for both scores (Sun et al., ICLR 2024).

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (out_features, in_features)
        The weights, finite.
    amount : int or float
        Weights to prune *in each row*: an int is a count in ``[0, in_features]``, a float in
        [0, 1] a fraction, turned into a count by :func:`count_to_prune`.

    Returns
    -------
    mask : float32 array of 0 and 1, shape of ``w``, with the same number of zeros in every row

    See Also
    --------
    magnitude : one threshold for the whole array (layer-wise).
    wanda : weights times input norms, per row.

    References
    ----------
    .. [1] M. Sun, Z. Liu, A. Bair, J. Z. Kolter, "A Simple and Effective Pruning Approach for
       Large Language Models", ICLR 2024 (arXiv:2306.11695, 2023).

    Examples
    --------
    >>> w = np.array([[0.1, 0.2, 0.3, 0.4], [5.0, 6.0, 7.0, 8.0]])
    >>> magnitude_per_row(w, 0.5).tolist()     # layer-wise magnitude would empty the first row
    [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]
    """
    w = _linear_weight(w)
    return _prune_rows(np.abs(w), count_to_prune(amount, w.shape[1]))


@same_kind
def wanda_scores(w, X):
    """Wanda importance of each weight: ``S[i, j] = |W[i, j]| * ||X[:, j]||_2``.

    ``||X[:, j]||_2 = sqrt(sum_t X[t, j] ** 2)`` is the L2 norm of input feature ``j`` over all
    calibration tokens ``t``: a weight matters as much as its size times the size of the inputs it
    multiplies. Large language models have a few input features with huge activations (outlier
    features, Dettmers et al. 2022); the small weights reading them still move the outputs a lot,
    and magnitude pruning alone would remove them (Sun et al., ICLR 2024).

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (out_features, in_features)
        The weights of a Linear layer ``y = x @ w.T``, finite.
    X : array_like or torch.Tensor, shape (n, in_features) or (..., in_features)
        Calibration inputs of that layer, one token a row (leading axes, e.g. (batch, sequence),
        are flattened into tokens).

    Returns
    -------
    scores : float64 array, shape of ``w``
        Non-negative.

    Raises
    ------
    ValueError
        If the shapes disagree, an input is not finite, or the norms overflow float64.

    See Also
    --------
    wanda : the mask from these scores.

    Notes
    -----
    Computed in float64. Wanda's reference code (locuslab/wanda, ``lib/prune.py``,
    ``prune_wanda``) keeps ``||X_j||^2 / n`` and multiplies ``|W|`` by its square root, i.e. by
    ``||X_j|| / sqrt(n)``: one constant factor for the whole layer, so the same ranking.

    References
    ----------
    .. [1] M. Sun, Z. Liu, A. Bair, J. Z. Kolter, "A Simple and Effective Pruning Approach for
       Large Language Models", ICLR 2024 (arXiv:2306.11695, 2023).
    .. [2] T. Dettmers, M. Lewis, Y. Belkada, L. Zettlemoyer, "LLM.int8(): 8-bit Matrix
       Multiplication for Transformers at Scale", NeurIPS 2022.

    Examples
    --------
    >>> w = np.array([[1.0, -2.0, 3.0, -4.0]])
    >>> X = np.array([[8.0, 3.0, 1.0, 1.0]])      # one token; feature 0 is large
    >>> wanda_scores(w, X).tolist()
    [[8.0, 6.0, 3.0, 4.0]]
    """
    w = _linear_weight(w)
    X = V.as_batch(X, "X")
    if X.shape[-1] != w.shape[1]:
        raise ValueError(f"X has {X.shape[-1]} input features (last axis) but w has in_features = "
                         f"{w.shape[1]} (w has shape {w.shape}, X {X.shape})")
    X = X.reshape(-1, X.shape[-1]).astype(np.float64)
    with np.errstate(over="ignore"):
        norms = np.sqrt((X * X).sum(axis=0))           # ||X_j||_2, one per input feature j
        scores = np.abs(w.astype(np.float64)) * norms  # S_ij = |W_ij| * ||X_j||_2
    if not np.isfinite(scores).all():
        raise ValueError("X is too large: the squared norms of its features overflow float64")
    return scores


def _check_n_m_pattern(n_m: Any, in_features: int, amount: Any) -> tuple[int, int]:
    n, m = V.check_pair(n_m, "n_m", 0)
    if m < 1 or n > m:
        raise ValueError(f"n_m = (n, m) keeps n of every m weights and needs 0 <= n <= m, m >= 1, "
                         f"got {tuple(n_m)}")
    if in_features % m:
        raise ValueError(f"n_m = {(n, m)} needs in_features = {in_features} divisible by m = {m}")
    if amount is not None and count_to_prune(amount, in_features) != in_features // m * (m - n):
        raise ValueError(f"amount={amount!r} disagrees with n_m={(n, m)}, which prunes {m - n} of "
                         f"every {m} weights; pass amount=None (or {(m - n) / m})")
    return n, m


@same_kind
def wanda(w, X, amount=0.5, n_m=None):
    """Wanda pruning mask: in every output row, prune the weights of smallest ``|W_ij| * ||X_j||_2``.

    ``S = wanda_scores(w, X)``; each row ``i`` loses its ``k = count_to_prune(amount, in_features)``
    smallest scores (``mask = 0``). Scores are compared *per output row*, so every output neuron
    keeps the same number of inputs, unlike :func:`magnitude` (one threshold per layer) and
    :func:`global_magnitude`. With ``n_m=(n, m)`` the mask is N:M instead: in every group of ``m``
    consecutive inputs of a row, the ``n`` largest scores are kept (2:4 for NVIDIA's sparse tensor
    cores), as :func:`n_m` does with ``|w|``. No retraining and no weight update: one forward pass
    of calibration data gives ``X`` (Sun et al., ICLR 2024). Tie rule: at the threshold, the lowest
    column (in a group, the lowest index) is pruned first.

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (out_features, in_features)
        The weights of a Linear layer ``y = x @ w.T``, finite.
    X : array_like or torch.Tensor, shape (n, in_features) or (..., in_features)
        Calibration inputs of that layer, one token a row.
    amount : int, float or None, default 0.5
        Weights to prune *in each row*: an int is a count in ``[0, in_features]``, a float in
        [0, 1] a fraction (see :func:`count_to_prune`). With ``n_m``, None or the amount the
        pattern prunes (``(m - n) / m``).
    n_m : tuple (n, m) or None, default None
        Keep ``n`` of every ``m`` consecutive inputs in each row (``in_features`` divisible by ``m``).

    Returns
    -------
    mask : float32 array of 0 and 1, shape of ``w``
        The same number of zeros in every row; with ``n_m``, exactly ``n`` ones per group.

    Raises
    ------
    ValueError
        Bad shapes, non-finite inputs, ``amount`` out of range or disagreeing with ``n_m``.

    See Also
    --------
    wanda_scores : the scores.
    magnitude_per_row : the same per-row comparison with ``|w|`` alone.
    magnitude, n_m : without calibration inputs.

    Notes
    -----
    Equal to the reference code (locuslab/wanda, ``lib/prune.py``, ``prune_wanda``: a stable sort
    of each row of the scores, the first ``k`` pruned) on the same scores, with two differences of
    convention: the reference prunes ``int(in_features * sparsity)`` per row (truncation), here a
    float ``amount`` is rounded half to even like ``torch.nn.utils.prune``, the same whenever
    ``in_features * amount`` is a whole number; and its ``N:M`` string prunes ``N`` of every
    ``M`` (``topk`` of the smallest), here ``n`` are kept, as in :func:`n_m` -- the same for the
    2:4 and 4:8 patterns it is used with. The reference's variant (a per-row threshold on the
    cumulative sum of scores, ``--use_variant``) is not implemented.

    References
    ----------
    .. [1] M. Sun, Z. Liu, A. Bair, J. Z. Kolter, "A Simple and Effective Pruning Approach for
       Large Language Models", ICLR 2024 (arXiv:2306.11695, 2023).

    Examples
    --------
    Input feature 0 is large, so its small weight is kept; magnitude pruning removes it:

    >>> w = np.array([[1.0, -2.0, 3.0, -4.0]])
    >>> X = np.array([[8.0, 3.0, 1.0, 1.0]])      # scores |w| * ||X_j|| = 8, 6, 3, 4
    >>> wanda(w, X, 0.5).tolist(), magnitude(w, 0.5).tolist()
    ([[1.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0, 1.0]])
    >>> wanda(np.tile(w, (1, 2)), np.tile(X, (1, 2)), n_m=(2, 4)).tolist()
    [[1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    scores = wanda_scores(w, X)
    if n_m is None:
        return _prune_rows(scores, count_to_prune(amount, scores.shape[1]))
    n, m = _check_n_m_pattern(n_m, scores.shape[1], amount)
    return _n_m(scores, n, m, dim=1)       # scores >= 0, so |scores| = scores


# --------------------------------------------------------------------------------------------
# Masks on models
# --------------------------------------------------------------------------------------------
def _params(model: nn.Sequential) -> dict[str, tuple[nn.Module, str]]:
    nn.check_model(model)
    return {name: (layer, attr) for name, layer, attr in model.named_parameters()}


def prunable(model: nn.Sequential) -> list[str]:
    """Names of the weights usually pruned: every Linear and Conv2d ``weight``.

    Parameters
    ----------
    model : compresslab.nn.Sequential

    Returns
    -------
    list of str
        State-dict names such as ``"0.weight"`` (biases are not pruned).

    Examples
    --------
    >>> prunable(nn.mlp((64, 300, 100, 10)))
    ['0.weight', '2.weight', '4.weight']
    """
    return [name for name, (layer, attr) in _params(model).items()
            if attr == "weight" and isinstance(layer, (nn.Linear, nn.Conv2d))]


def apply_masks(model: nn.Sequential, masks: dict[str, Any]) -> nn.Sequential:
    """Install masks in a model: zero the pruned weights and keep them zero while training.

    ``w <- w * mask`` for every entry of ``masks``, and the mask is stored in
    ``layer.masks[attr]``; the optimizers of :mod:`compresslab.nn` multiply every parameter by its
    mask after each step, so pruned weights stay exactly zero during fine-tuning.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        Changed in place.
    masks : dict of {str: array_like}
        ``{parameter name: 0/1 mask of the parameter's shape}``, e.g. from :func:`model_masks`.

    Returns
    -------
    compresslab.nn.Sequential
        ``model`` itself.

    See Also
    --------
    remove_masks, masks_of, model_masks

    Examples
    --------
    >>> m = apply_masks(nn.mlp((4, 3, 2)), {"0.weight": np.zeros((3, 4))})
    >>> int(np.count_nonzero(m[0].weight)), list(m[0].masks)
    (0, ['weight'])
    """
    params = _params(model)
    if not isinstance(masks, dict):
        raise TypeError(f"masks must be a dict {{parameter name: mask}}, got {type(masks).__name__}")
    for name, mask in masks.items():
        if name not in params:
            raise KeyError(f"masks has key {name!r}, which is not a parameter of the model "
                           f"(parameters: {sorted(params)})")
        layer, attr = params[name]
        p = getattr(layer, attr)
        mask = np.asarray(to_numpy(mask), dtype=np.float32)
        if mask.shape != p.shape:
            raise ValueError(f"mask for {name!r} has shape {mask.shape}, the parameter {p.shape}")
        if not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError(f"mask for {name!r} must contain only 0 and 1")
        layer.masks[attr] = mask.copy()
        p *= mask
    return model


def remove_masks(model: nn.Sequential) -> nn.Sequential:
    """Forget a model's masks: pruned weights stay zero now but may grow back when trained.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        Changed in place.

    Returns
    -------
    compresslab.nn.Sequential
        ``model`` itself.

    Examples
    --------
    >>> m = apply_masks(nn.mlp((4, 3, 2)), {"0.weight": np.zeros((3, 4))})
    >>> masks_of(remove_masks(m))
    {}
    """
    for layer in model.layers:
        layer.masks = {}
    return model


def masks_of(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The masks installed in a model, keyed by parameter name.

    Parameters
    ----------
    model : compresslab.nn.Sequential

    Returns
    -------
    dict of {str: numpy.ndarray}
        The masks themselves (not copies).

    Examples
    --------
    >>> m = apply_masks(nn.mlp((4, 3, 2)), {"2.weight": np.ones((2, 3))})
    >>> list(masks_of(m))
    ['2.weight']
    """
    return {name: layer.masks[attr] for name, (layer, attr) in _params(model).items()
            if attr in layer.masks}


def model_masks(model: nn.Sequential, amount: Any, *, method: str = "magnitude",
                layers: Sequence[str] | dict[str, Any] | None = None, seed: Any = 0,
                dim: int = 0) -> dict[str, np.ndarray]:
    """Masks for several layers of a model, by one pruning method (not applied).

    Parameters
    ----------
    model : compresslab.nn.Sequential
    amount : int or float, or None when ``layers`` is a dict
        Count or fraction to prune in each layer (in all of them together for "global").
    method : {"magnitude", "global", "random", "structured", "2:4"}, default "magnitude"
        :func:`magnitude` per layer, :func:`global_magnitude` over all ``layers``,
        :func:`random`, :func:`structured` (slices along ``dim``, L2) or :func:`n_m` with 2:4.
    layers : list of str or dict of {str: amount}, optional
        Parameter names (default :func:`prunable`), or a dict of per-layer amounts.
    seed : int, numpy.random.Generator or None, default 0
        Seed for ``method="random"``.
    dim : int, default 0
        Axis for ``method="structured"``.

    Returns
    -------
    dict of {str: numpy.ndarray}
        ``{parameter name: float32 0/1 mask}``; install them with :func:`apply_masks`.

    Examples
    --------
    >>> masks = model_masks(nn.mlp((4, 3, 2), seed=0), 0.5)
    >>> {name: int((mask == 0).sum()) for name, mask in masks.items()}
    {'0.weight': 6, '2.weight': 3}
    """
    V.check_choice(method, "method", {"magnitude", "global", "random", "structured", "2:4"})
    params = _params(model)
    if isinstance(layers, dict):
        amounts = dict(layers)
    else:
        names = list(layers) if layers is not None else prunable(model)
        amounts = {name: amount for name in names}
    for name in amounts:
        if name not in params:
            raise KeyError(f"layers names {name!r}, not a parameter of the model ({sorted(params)})")
    weights = {name: getattr(*params[name]) for name in amounts}
    if method == "global":
        if isinstance(layers, dict):
            raise ValueError("method='global' uses one amount for all layers; pass a list of names")
        return global_magnitude(weights, amount)
    out = {}
    for i, (name, w) in enumerate(weights.items()):
        a = amounts[name]
        if method == "magnitude":
            out[name] = magnitude(w, a)
        elif method == "random":
            out[name] = random(w, a, seed=None if seed is None else V.rng(seed).integers(2**31) + i)
        elif method == "structured":
            out[name] = structured(w, a, dim=dim)
        else:
            out[name] = n_m(w, 2, 4, dim=1)
    return out


@dataclass
class LayerSparsity:
    """Zeros and size of one parameter (a row of :class:`SparsityReport`).

    Parameters
    ----------
    zeros : int
    size : int

    Examples
    --------
    >>> LayerSparsity(3, 4).sparsity
    0.75
    """
    zeros: int
    size: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


@dataclass
class SparsityReport:
    """Zeros per parameter and in total; ``report.total`` is the overall fraction of zeros.

    Parameters
    ----------
    layers : dict of {str: LayerSparsity}

    Attributes
    ----------
    zeros, size, nonzero : int
        Totals over all parameters.
    total : float
        ``zeros / size``.

    Examples
    --------
    >>> rep = sparsity({"a": np.array([0.0, 1.0, 0.0, 1.0]), "b": np.zeros(4)})
    >>> rep["a"], rep.zeros, rep.total
    (0.5, 6, 0.75)
    """

    layers: dict[str, LayerSparsity] = field(default_factory=dict)

    @property
    def zeros(self) -> int:
        return sum(l.zeros for l in self.layers.values())

    @property
    def size(self) -> int:
        return sum(l.size for l in self.layers.values())

    @property
    def nonzero(self) -> int:
        return self.size - self.zeros

    @property
    def total(self) -> float:
        return self.zeros / self.size if self.size else 0.0

    def __getitem__(self, name: str) -> float:
        return self.layers[name].sparsity

    def __str__(self) -> str:
        w = max([len("total"), *map(len, self.layers)])
        rows = [f"{'parameter':<{w}}  {'zeros':>9}  {'size':>9}  sparsity"]
        for name, l in self.layers.items():
            rows.append(f"{name:<{w}}  {l.zeros:>9}  {l.size:>9}  {100 * l.sparsity:7.2f}%")
        rows.append(f"{'total':<{w}}  {self.zeros:>9}  {self.size:>9}  {100 * self.total:7.2f}%")
        return "\n".join(rows)

    __repr__ = __str__


def sparsity(model_or_masks: Any, layers: Sequence[str] | None = None) -> SparsityReport:
    """Fraction of zeros per layer and in total.

    ``sparsity = zeros / size``. For a model: the zeros in each prunable weight (:func:`prunable`,
    or ``layers``); biases are not counted, as in torch's pruning tutorial. For a dict of arrays
    (masks or weights): the zeros of each.

    Parameters
    ----------
    model_or_masks : compresslab.nn.Sequential or dict of {str: array_like}
    layers : list of str, optional
        Parameter names to count (models only; default :func:`prunable`).

    Returns
    -------
    SparsityReport
        Printable table; ``report.total`` and ``report[name]`` are fractions.

    Examples
    --------
    >>> m = apply_masks(nn.mlp((4, 3, 2)), {"0.weight": np.zeros((3, 4))})
    >>> sparsity(m).total == 12 / 18, sparsity(m)["0.weight"]
    (True, 1.0)
    """
    if isinstance(model_or_masks, nn.Sequential):
        params = _params(model_or_masks)
        names = list(layers) if layers is not None else prunable(model_or_masks)
        arrays = {name: getattr(*params[name]) for name in names}
    elif isinstance(model_or_masks, dict):
        arrays = {k: np.asarray(to_numpy(v)) for k, v in model_or_masks.items()}
    else:
        raise TypeError("model_or_masks must be a compresslab.nn.Sequential or a dict of masks, "
                        f"got {type(model_or_masks).__name__}")
    return SparsityReport({k: LayerSparsity(int(a.size - np.count_nonzero(a)), int(a.size))
                           for k, a in arrays.items()})


# --------------------------------------------------------------------------------------------
# Shrinking: physically remove dead neurons / filters
# --------------------------------------------------------------------------------------------
def _unit_inputs(nxt: nn.Module, n_units: int, flatten: bool) -> Callable[[int], Any]:
    """Index (into the next layer's input axis) of the inputs fed by unit ``u``."""
    if isinstance(nxt, nn.Linear) and flatten:
        per = nxt.in_features // n_units
        return lambda u: slice(u * per, (u + 1) * per)
    return lambda u: slice(u, u + 1)


def shrink(model: nn.Sequential, masks: dict[str, Any] | None = None) -> nn.Sequential:
    """A smaller dense model without the dead hidden units; outputs equal the masked model's.

    A hidden unit ``u`` of a Linear / Conv2d layer (a row / filter ``W[u]``) is removed when

    * its incoming weights are all zero: its output is the constant ``b[u]``, so after the
      activation it contributes ``relu(b[u]) * sum(W_next[:, inputs(u)])`` to the next layer,
      which is folded into the next layer's bias ``b_next`` (exact for a next Linear layer or an
      unpadded conv); or
    * its outgoing weights (the next layer's input columns / channels) are all zero.

    Removing a unit deletes row ``u`` of ``W`` and ``b`` *and* the matching input column(s) /
    channel of the next layer (forgetting the latter is the classic bug). The output layer keeps
    all its units. Masks (given or the layers' own ``.masks``) are applied first and carried,
    sliced, into the result.

    Parameters
    ----------
    model : nn.Sequential of Linear / Conv2d / ReLU / Flatten
    masks : dict {parameter name: mask}, optional (default: the masks stored in the layers)

    Returns
    -------
    nn.Sequential, a new model (the input is not modified).

    Examples
    --------
    >>> m = nn.mlp((4, 6, 3), seed=0)
    >>> small = shrink(m, {"0.weight": structured(m[0].weight, 3, dim=0)})
    >>> small[0].weight.shape, small[2].weight.shape
    ((3, 4), (3, 3))
    """
    m = nn.check_model(model).copy()
    if masks is not None:
        apply_masks(m, masks)
    else:
        for layer in m.layers:
            for attr, mask in layer.masks.items():
                getattr(layer, attr)[...] *= mask
    weighted = [i for i, l in enumerate(m.layers) if isinstance(l, (nn.Linear, nn.Conv2d))]
    for a, b in zip(weighted[:-1], weighted[1:]):
        cur, nxt = m.layers[a], m.layers[b]
        between = m.layers[a + 1:b]
        if any(not isinstance(l, (nn.ReLU, nn.Flatten)) for l in between):
            continue  # only element-wise ReLU / Flatten may sit between the two layers
        flatten = any(isinstance(l, nn.Flatten) for l in between)
        if isinstance(cur, nn.Linear) != (isinstance(nxt, nn.Linear) and not flatten):
            continue  # Linear -> Linear, Conv2d -> Conv2d, or Conv2d -> Flatten -> Linear only
        units = cur.weight.shape[0]
        if isinstance(nxt, nn.Linear) and flatten and nxt.in_features % units:
            continue
        cols = _unit_inputs(nxt, units, flatten)
        W_cur = cur.weight.reshape(units, -1)
        no_in = ~W_cur.any(axis=1)
        no_out = np.array([not nxt.weight[:, cols(u)].any() for u in range(units)])
        relu = any(isinstance(l, nn.ReLU) for l in between)
        const = cur.bias if cur.bias is not None else np.zeros(units, np.float32)
        const = np.maximum(const, 0) if relu else const
        foldable = isinstance(nxt, nn.Linear) or nxt.padding == 0
        dead = no_out | (no_in & (foldable | (const == 0)))
        if dead.all():
            dead[0] = False  # a layer needs at least one unit; keep unit 0 as it is
        if not dead.any():
            continue
        fold = dead & ~no_out & no_in & (const != 0)
        if fold.any():
            if nxt.bias is None:
                nxt.bias = np.zeros(nxt.weight.shape[0], np.float32)
                nxt.param_names = ("weight", "bias")
            for u in np.flatnonzero(fold):
                s = nxt.weight[:, cols(u)].reshape(nxt.weight.shape[0], -1).sum(axis=1)
                nxt.bias = (nxt.bias + const[u] * s).astype(np.float32)
        keep = np.flatnonzero(~dead)
        in_keep = np.concatenate([np.arange(cols(u).start, cols(u).stop) for u in keep])
        _take(cur, keep, axis=0)
        _take(nxt, in_keep, axis=1)
        if isinstance(cur, nn.Linear):
            cur.out_features = len(keep)
        else:
            cur.out_channels = len(keep)
        if isinstance(nxt, nn.Linear):
            nxt.in_features = len(in_keep)
        else:
            nxt.in_channels = len(in_keep)
    out = nn.Sequential(*m.layers)
    out.eval()
    return out


def _take(layer: nn.Module, index: np.ndarray, axis: int) -> None:
    """Keep ``index`` along ``axis`` of the weight (and, for axis 0, of the bias), masks too."""
    layer.weight = np.ascontiguousarray(np.take(layer.weight, index, axis=axis))
    if "weight" in layer.masks:
        layer.masks["weight"] = np.ascontiguousarray(np.take(layer.masks["weight"], index, axis=axis))
    if axis == 0 and layer.bias is not None:
        layer.bias = np.ascontiguousarray(layer.bias[index])
        if "bias" in layer.masks:
            layer.masks["bias"] = np.ascontiguousarray(layer.masks["bias"][index])


# --------------------------------------------------------------------------------------------
# Schedules (TF-MOT semantics: schedule(step) -> (should_prune, sparsity))
# --------------------------------------------------------------------------------------------
class ScheduleStep(NamedTuple):
    """What a pruning schedule says at one step: prune now?, and the target sparsity.

    A named tuple, so it unpacks like TF-MOT's ``(should_prune, sparsity)``; ``float(step)`` is
    the sparsity.

    Parameters
    ----------
    should_prune : bool
    sparsity : float

    Examples
    --------
    >>> should_prune, s = ScheduleStep(True, 0.5)
    >>> should_prune, s, float(ScheduleStep(False, 0.25))
    (True, 0.5, 0.25)
    """

    should_prune: bool
    sparsity: float

    def __float__(self) -> float:
        return float(self.sparsity)


def _schedule_args(begin_step, end_step, frequency, allow_open_end: bool):
    begin_step = V.check_int(begin_step, "begin_step", 0)
    frequency = V.check_int(frequency, "frequency", 1)
    end_step = V.check_int(end_step, "end_step", -1 if allow_open_end else 0)
    if end_step != -1 and end_step < begin_step:
        raise ValueError(f"end_step={end_step} must be >= begin_step={begin_step}"
                         + (" (or -1 for no end)" if allow_open_end else ""))
    return begin_step, end_step, frequency


def _should_prune(step, begin_step, end_step, frequency) -> bool:
    in_range = step >= begin_step and (end_step == -1 or step <= end_step)
    return bool(in_range and (step - begin_step) % frequency == 0)


def constant(step: int, target_sparsity: float, begin_step: int = 0, end_step: int = -1,
             frequency: int = 100) -> ScheduleStep:
    """Constant sparsity schedule, as TF-MOT ``ConstantSparsity``.

    ``sparsity = target_sparsity``; ``should_prune`` is true every ``frequency`` steps (counted
    from ``begin_step``) for ``begin_step <= step <= end_step`` (``end_step = -1``: no end).

    Parameters
    ----------
    step : int >= 0
    target_sparsity : float in [0, 1]
    begin_step : int >= 0, default 0
    end_step : int, default -1
        Last step that may prune, or -1 for no end.
    frequency : int >= 1, default 100

    Returns
    -------
    ScheduleStep
        ``(should_prune, sparsity)``.

    See Also
    --------
    polynomial_decay : the gradual (AGP) schedule.

    Examples
    --------
    >>> constant(200, 0.9), constant(250, 0.9)
    (ScheduleStep(should_prune=True, sparsity=0.9), ScheduleStep(should_prune=False, sparsity=0.9))
    """
    V.check_int(step, "step", 0)
    s = V.check_float(target_sparsity, "target_sparsity", 0.0, 1.0)
    begin_step, end_step, frequency = _schedule_args(begin_step, end_step, frequency, True)
    return ScheduleStep(_should_prune(step, begin_step, end_step, frequency), s)


def polynomial_decay(step: int, initial_sparsity: float, final_sparsity: float, begin_step: int,
                     end_step: int, power: float = 3, frequency: int = 100) -> ScheduleStep:
    """Automated gradual pruning schedule (Zhu & Gupta 2017), as TF-MOT ``PolynomialDecay``.

    ::

        p = clip((step - begin_step) / (end_step - begin_step), 0, 1)
        sparsity = final + (initial - final) * (1 - p) ** power

    ``should_prune`` is true for ``begin_step <= step <= end_step`` every ``frequency`` steps
    (counted from ``begin_step``). Sparsity rises fast at first, when the network has many
    redundant weights, and slowly at the end.

    Parameters
    ----------
    step : int >= 0
    initial_sparsity, final_sparsity : float in [0, 1]
    begin_step, end_step : int >= 0
        The ramp runs from ``begin_step`` to ``end_step >= begin_step`` (no open end: -1 is
        an error here, unlike in :func:`constant`).
    power : float > 0, default 3
    frequency : int >= 1, default 100

    Returns
    -------
    ScheduleStep
        ``(should_prune, sparsity)``, a named tuple (unpack like TF-MOT's result).

    See Also
    --------
    constant, agp

    References
    ----------
    .. [1] M. Zhu, S. Gupta, "To prune, or not to prune: exploring the efficacy of pruning for
       model compression", ICLR Workshop 2018, arXiv:1710.01878.

    Examples
    --------
    >>> should_prune, s = polynomial_decay(50, 0.0, 0.8, 0, 100, frequency=10)
    >>> should_prune, round(s, 6)        # 0.8 - 0.8 * 0.5**3
    (True, 0.7)
    """
    V.check_int(step, "step", 0)
    s0 = V.check_float(initial_sparsity, "initial_sparsity", 0.0, 1.0)
    s1 = V.check_float(final_sparsity, "final_sparsity", 0.0, 1.0)
    power = V.check_float(power, "power", 0.0, low_open=True)
    begin_step, end_step, frequency = _schedule_args(begin_step, end_step, frequency, False)
    if end_step == begin_step:
        p = 1.0 if step >= begin_step else 0.0
    else:
        p = min(1.0, max(0.0, (step - begin_step) / (end_step - begin_step)))
    sparsity = s1 + (s0 - s1) * (1.0 - p) ** power
    return ScheduleStep(_should_prune(step, begin_step, end_step, frequency), float(sparsity))


# --------------------------------------------------------------------------------------------
# Training with pruning
# --------------------------------------------------------------------------------------------
def fit_pruned(model: nn.Sequential, X, y, *, schedule: Callable[[int], Any],
               layers: Sequence[str] | None = None, method: str = "magnitude",
               epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, val=None, seed: Any = 0,
               progress: bool = True, desc: str = "pruning", **fit_kwargs) -> nn.History:
    """Train while pruning by a schedule; pruned weights stay exactly zero.

    After every optimizer step ``t`` (0, 1, 2, ... over all epochs) the callback asks
    ``schedule(t) -> (should_prune, sparsity)``; when told to prune, it recomputes the masks of
    ``layers`` at that sparsity by magnitude (``method="magnitude"`` per layer, or ``"global"``)
    and installs them with :func:`apply_masks`. Already-pruned weights are zero, hence smallest,
    so masks only grow. Between updates the optimizer of :func:`compresslab.nn.fit` keeps pruned
    weights at zero.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        Trained in place.
    X, y : array_like
        Training inputs and labels.
    schedule : callable
        ``step -> (should_prune, sparsity)``, e.g.
        ``lambda t: polynomial_decay(t, 0.0, 0.9, 0, 600, frequency=20)``.
    layers : list of str, optional
        Parameter names to prune (default :func:`prunable`).
    method : {"magnitude", "global"}, default "magnitude"
    epochs, batch_size, lr, val, seed, progress, desc, **fit_kwargs
        Passed to :func:`compresslab.nn.fit`.

    Returns
    -------
    compresslab.nn.History

    See Also
    --------
    agp : this with a polynomial-decay schedule.

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y = g.normal(size=(64, 4)), g.integers(0, 2, 64)
    >>> m = nn.mlp((4, 8, 2), seed=0)
    >>> _ = fit_pruned(m, X, y, schedule=lambda t: constant(t, 0.5, frequency=1), epochs=2,
    ...                progress=False)
    >>> sparsity(m).total
    0.5
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a callable step -> (should_prune, sparsity), got "
                        f"{type(schedule).__name__}")
    V.check_choice(method, "method", {"magnitude", "global"})
    names = list(layers) if layers is not None else prunable(model)
    steps = math.ceil(len(V.as_labels(y, "y")) / V.check_int(batch_size, "batch_size", 1))

    def prune_step(mdl, epoch, step):
        should, s = schedule(epoch * steps + step)
        if should:
            apply_masks(mdl, model_masks(mdl, float(s), method=method, layers=names))

    return nn.fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, val=val, seed=seed,
                  progress=progress, callbacks=(prune_step,) + tuple(fit_kwargs.pop("callbacks", ())),
                  desc=desc, **fit_kwargs)


def agp(model: nn.Sequential, X, y, final_sparsity: float, *, epochs: int = 10,
        prune_fraction: float = 0.7, initial_sparsity: float = 0.0, frequency: int = 10,
        batch_size: int = 32, **kwargs) -> nn.History:
    """Automated gradual pruning (AGP): train while the sparsity rises to ``final_sparsity``.

    :func:`fit_pruned` with a :func:`polynomial_decay` schedule (power 3) that reaches
    ``final_sparsity`` after ``prune_fraction`` of the training steps, then fine-tunes at that
    sparsity for the rest (Zhu & Gupta 2017). The end step is a multiple of ``frequency``, so the
    final sparsity is really applied.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        Trained in place.
    X, y : array_like
        Training inputs and labels.
    final_sparsity : float in [0, 1]
    epochs : int >= 1, default 10
    prune_fraction : float in (0, 1], default 0.7
        Share of the training steps spent raising the sparsity.
    initial_sparsity : float in [0, 1], default 0.0
    frequency : int >= 1, default 10
        Steps between mask updates.
    batch_size : int, default 32
    **kwargs
        Passed to :func:`fit_pruned` (``layers``, ``method``, ``lr``, ``seed``, ``progress``, ...).

    Returns
    -------
    compresslab.nn.History

    References
    ----------
    .. [1] M. Zhu, S. Gupta, "To prune, or not to prune: exploring the efficacy of pruning for
       model compression", ICLR Workshop 2018, arXiv:1710.01878.

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y = g.normal(size=(64, 4)), g.integers(0, 2, 64)
    >>> m = nn.mlp((4, 8, 2), seed=0)
    >>> _ = agp(m, X, y, 0.75, epochs=2, frequency=1, progress=False)
    >>> sparsity(m).total
    0.75
    """
    V.check_float(prune_fraction, "prune_fraction", 0.0, 1.0, low_open=True)
    frequency = V.check_int(frequency, "frequency", 1)
    V.check_int(epochs, "epochs", 1)
    total = epochs * math.ceil(len(y) / V.check_int(batch_size, "batch_size", 1))
    end = max(frequency, int(prune_fraction * (total - 1)) // frequency * frequency)
    end = min(end, (total - 1) // frequency * frequency)
    V.check_float(final_sparsity, "final_sparsity", 0.0, 1.0)

    def schedule(t):
        return polynomial_decay(t, initial_sparsity, final_sparsity, 0, end, frequency=frequency)

    return fit_pruned(model, X, y, schedule=schedule, epochs=epochs, batch_size=batch_size,
                      desc=kwargs.pop("desc", "AGP"), **kwargs)


# --------------------------------------------------------------------------------------------
# Sensitivity
# --------------------------------------------------------------------------------------------
@dataclass
class SensitivityResult:
    """Accuracy after pruning one layer at a time (the result of :func:`sensitivity_scan`).

    Parameters
    ----------
    layers : list of str
        Parameter names.
    sparsities : numpy.ndarray
        The scanned fractions.
    accuracy : numpy.ndarray, shape (len(layers), len(sparsities))
        ``accuracy[i, j]``: ``layers[i]`` pruned to ``sparsities[j]``, the other layers untouched.
    baseline : float
        Accuracy of the unpruned model.
    method : str, default "magnitude"

    Examples
    --------
    >>> r = SensitivityResult(["0.weight"], np.array([0.0, 0.5, 0.9]), np.array([[0.9, 0.9, 0.5]]), 0.9)
    >>> r.max_sparsity(max_drop=0.01)
    {'0.weight': 0.5}
    """

    layers: list[str]
    sparsities: np.ndarray
    accuracy: np.ndarray
    baseline: float
    method: str = "magnitude"

    def max_sparsity(self, max_drop: float = 0.01) -> dict[str, float]:
        """Per layer, the largest scanned sparsity up to which *every* scanned sparsity keeps the
        accuracy drop <= ``max_drop`` (a noisy curve that dips and recovers stops at the dip)."""
        V.check_float(max_drop, "max_drop", 0.0)
        out = {}
        order = np.argsort(self.sparsities)
        for name, acc in zip(self.layers, self.accuracy):
            best = 0.0
            for i in order:
                if acc[i] < self.baseline - max_drop - 1e-12:
                    break
                best = float(self.sparsities[i])
            out[name] = best
        return out


def sensitivity_scan(model: nn.Sequential, layers: Sequence[str] | None, sparsities, X_val, y_val,
                     *, method: str = "magnitude", progress: bool = True) -> SensitivityResult:
    """Prune one layer at a time at each sparsity and measure the validation accuracy.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        Left unchanged (each layer is restored after its scan).
    layers : list of str or None
        Parameter names (None: :func:`prunable`).
    sparsities : array_like of float in [0, 1]
    X_val, y_val : array_like
        Validation data.
    method : {"magnitude", "random", "structured"}, default "magnitude"
        "structured" prunes whole rows / filters by L2 norm.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    SensitivityResult
        ``.accuracy`` has shape (len(layers), len(sparsities)).

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y = g.normal(size=(20, 4)), g.integers(0, 2, 20)
    >>> r = sensitivity_scan(nn.mlp((4, 8, 2), seed=0), None, [0.0, 0.5], X, y, progress=False)
    >>> r.layers, r.accuracy.shape
    (['0.weight', '2.weight'], (2, 2))
    """
    V.check_choice(method, "method", {"magnitude", "random", "structured"})
    V.check_bool(progress, "progress")
    params = _params(model)
    names = V.check_names(layers, "layers") if layers is not None else prunable(model)
    for name in names:
        if name not in params:
            raise KeyError(f"layers names {name!r}, not a parameter of the model ({sorted(params)})")
    sp = V.as_float_array(sparsities, "sparsities", ndim=1)
    if (sp < 0).any() or (sp > 1).any():
        raise ValueError(f"sparsities must lie in [0, 1], got {sp.min()} .. {sp.max()}")
    X_val = V.as_batch(X_val, "X_val")
    y_val = V.check_labels_for(y_val, "y_val", len(X_val), nn.predict(model, X_val[:1]).shape[1])
    baseline = nn.evaluate(model, X_val, y_val)
    acc = np.empty((len(names), len(sp)))
    bar = nn._progress(len(names) * len(sp), "sensitivity scan", progress)
    for i, name in enumerate(names):
        layer, attr = params[name]
        original = getattr(layer, attr).copy()
        try:
            for j, s in enumerate(sp):
                mask = model_masks(model, float(s), method=method, layers=[name])[name]
                setattr(layer, attr, original * mask)
                acc[i, j] = nn.evaluate(model, X_val, y_val)
                if bar is not None:
                    bar.update(1)
        finally:
            setattr(layer, attr, original)
    if bar is not None:
        bar.close()
    return SensitivityResult(names, sp.astype(float), acc, baseline, method)


# --------------------------------------------------------------------------------------------
# A whole language model
# --------------------------------------------------------------------------------------------
GPT_METHODS = ("magnitude", "magnitude_per_row", "wanda")


def prune_gpt(model, method: str = "wanda", amount: Any = 0.5, n_m: tuple | None = None, calibration=None):
    """Prune every Linear weight of a GPT in one shot (no retraining); return the model and its masks.

    ``method="magnitude"``: one threshold per layer on ``|W|`` (:func:`magnitude`, or :func:`n_m`
    for N:M), the baseline of Wanda's paper. ``method="magnitude_per_row"``: ``|W|`` compared
    within each output row (:func:`magnitude_per_row`; :func:`n_m` for N:M), Wanda's comparison
    group without its activation term. ``method="wanda"``: :func:`wanda`, scores
    ``|W_ij| * ||X_j||`` compared within each output row, with ``X`` the layer's inputs on the
    calibration tokens. As Wanda's reference code does, it goes block by block: the inputs of block
    ``i`` are recorded with blocks ``0 .. i-1`` already pruned. Embeddings, LayerNorms and biases
    are not pruned.

    Parameters
    ----------
    model : compresslab.nn.GPT
        Left unchanged.
    method : {"magnitude", "magnitude_per_row", "wanda"}
    amount : int or float, default 0.5
        Per layer (magnitude) or per row (magnitude_per_row, wanda); ignored with ``n_m``.
    n_m : tuple (n, m), optional
        Keep ``n`` of every ``m`` consecutive inputs, e.g. ``(2, 4)``.
    calibration : array of int, shape (n, T)
        Token windows (``quant.calibration_windows``); needed for Wanda.

    Returns
    -------
    pruned : compresslab.nn.GPT
    masks : dict of {str: numpy.ndarray}
        Layer name -> 0/1 mask.

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), seed=0)
    >>> pruned, masks = prune_gpt(m, "magnitude", n_m=(2, 4))
    >>> float(masks["blocks.0.mlp.fc1"].mean())
    0.5
    """
    from .nn import GPT

    if not isinstance(model, GPT):
        raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
    method = V.check_choice(method, "method", GPT_METHODS)
    if n_m is not None:
        n_m = V.check_pair(n_m, "n_m", 1)
    if method == "wanda" and calibration is None:
        raise ValueError("method='wanda' needs calibration tokens (see quant.calibration_windows)")
    if calibration is not None:
        calibration = V.check_token_windows(calibration, "calibration", model.config.vocab_size,
                                            model.config.block_size)
    pruned = model.copy()
    masks: dict[str, np.ndarray] = {}
    layers = pruned.linear_layers()
    names = list(layers)
    for i in range(pruned.config.n_layer):
        inputs = pruned.linear_inputs(calibration) if method == "wanda" else {}
        for name in (n for n in names if n.startswith(f"blocks.{i}.")):
            layer = layers[name]
            if method == "wanda":
                mask = wanda(layer.weight, inputs[name], None if n_m else amount, n_m=n_m)
            elif n_m is not None:
                mask = _n_m_mask(layer.weight, *n_m)
            elif method == "magnitude_per_row":
                mask = magnitude_per_row(layer.weight, amount)
            else:
                mask = magnitude(layer.weight, amount)
            masks[name] = mask
            layer.weight = layer.weight * mask
    return pruned, masks


_n_m_mask = n_m  # prune_gpt's parameter n_m shadows the function's name there
