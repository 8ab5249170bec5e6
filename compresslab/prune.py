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
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from . import _validate as V
from . import nn
from .backend import is_torch, like, same_kind, to_numpy

__all__ = [
    "count_to_prune", "magnitude", "global_magnitude", "random", "structured", "n_m",
    "prunable", "apply_masks", "remove_masks", "masks_of", "model_masks", "sparsity",
    "SparsityReport", "shrink", "ScheduleStep", "constant", "polynomial_decay", "fit_pruned",
    "agp", "sensitivity_scan", "SensitivityResult",
]


# --------------------------------------------------------------------------------------------
# How many to prune
# --------------------------------------------------------------------------------------------
def count_to_prune(amount: Any, n: int, name: str = "amount") -> int:
    """Number of entries to prune out of ``n``, with torch's ``amount`` semantics.

    ``int`` -> that count (must be ``0 <= amount <= n``); ``float`` in [0, 1] ->
    ``round(amount * n)`` with Python's round-half-to-even, like
    ``torch.nn.utils.prune._compute_nparams_toprune``.

    Examples
    --------
    >>> count_to_prune(0.5, 5), count_to_prune(0.7, 5), count_to_prune(3, 5)
    (2, 4, 3)
    """
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{name} must be an int (a count) or a float in [0, 1] (a fraction), "
                        f"got {amount!r}")
    if isinstance(amount, numbers.Integral):
        k = int(amount)
        if k < 0 or k > n:
            raise ValueError(f"{name}={k} is a count and must be in [0, {n}] (there are {n} "
                             "entries to choose from)")
        return k
    a = float(amount)
    if not math.isfinite(a) or a < 0.0 or a > 1.0:
        raise ValueError(f"{name}={amount} is a fraction and must be a float in [0, 1]")
    return round(a * n)


def _smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean array marking the ``k`` smallest scores (ties: lowest index first), in O(n).

    Obvious form: ``np.argsort(scores, kind="stable")[:k]``. Here one ``np.partition`` finds the
    k-th smallest value ``t``; everything below ``t`` is selected, then the first few entries
    equal to ``t`` fill the count exactly.
    """
    n = scores.size
    chosen = np.zeros(n, dtype=bool)
    if k <= 0:
        return chosen
    if k >= n:
        chosen[:] = True
        return chosen
    t = np.partition(scores, k - 1)[k - 1]
    np.less(scores, t, out=chosen)
    missing = k - int(np.count_nonzero(chosen))
    if missing:
        chosen[np.flatnonzero(scores == t)[:missing]] = True
    return chosen


def _weights(w: Any, name: str) -> np.ndarray:
    return V.as_float_array(w, name)


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------
@same_kind
def magnitude(w, amount):
    """Unstructured magnitude (L1) pruning mask: prune the ``k`` weights with the smallest ``|w|``.

    ``mask = 0 where |w| is among the k smallest, else 1``, with ``k = count_to_prune(amount,
    w.size)``; ties at the threshold: lowest flat index pruned first. Equal to
    ``torch.nn.utils.prune.l1_unstructured`` on tie-free inputs (torch's ``topk`` leaves the order
    of ties unspecified; the counts always agree) (Han et al., NeurIPS 2015).

    Parameters
    ----------
    w : array or tensor
        The weights.
    amount : int or float
        Number (int) or fraction (float in [0, 1]) of weights to prune.

    Returns
    -------
    mask : float32 array (or tensor) of 0/1, shape of ``w``.

    Examples
    --------
    >>> magnitude(np.array([0.5, -3.0, 0.1, 2.0]), 0.5)
    array([0., 1., 0., 1.], dtype=float32)
    """
    w = _weights(w, "w")
    k = count_to_prune(amount, w.size)
    pruned = _smallest(np.abs(w).ravel(), k)
    return (~pruned).astype(np.float32).reshape(w.shape)


@same_kind
def global_magnitude(weights, amount):
    """One magnitude threshold across several tensors (``torch...prune.global_unstructured``).

    All ``|w|`` are concatenated (in the given order) and the ``k`` smallest pruned, so layers
    with many small weights lose more. Ties: lowest index in the concatenation first.

    Parameters
    ----------
    weights : list, tuple or dict of arrays
    amount : int or float
        Count or fraction of *all* weights together.

    Returns
    -------
    masks : the same container type (list, tuple or dict with the same keys).

    Examples
    --------
    >>> m = global_magnitude({"a": np.array([1.0, 2.0]), "b": np.array([0.1, 5.0])}, 2)
    >>> m["a"], m["b"]
    (array([0., 1.], dtype=float32), array([0., 1.], dtype=float32))
    """
    if isinstance(weights, dict):
        ref = next((v for v in weights.values() if is_torch(v)), None)
        if ref is not None:  # same_kind only looks inside lists/tuples: convert a dict here
            return {k: like(v, ref) for k, v in
                    global_magnitude({k: to_numpy(v) for k, v in weights.items()}, amount).items()}
        keys, arrays = list(weights), [to_numpy(v) for v in weights.values()]
    elif isinstance(weights, (list, tuple)):
        keys, arrays = None, [to_numpy(v) for v in weights]
    else:
        raise TypeError(f"weights must be a list, tuple or dict of arrays, got {type(weights).__name__}")
    if not arrays:
        raise ValueError("weights is empty: give at least one array")
    arrays = [_weights(a, f"weights[{keys[i]!r}]" if keys else f"weights[{i}]")
              for i, a in enumerate(arrays)]
    scores = np.concatenate([np.abs(a).ravel() for a in arrays])
    pruned = _smallest(scores, count_to_prune(amount, scores.size))
    ends = np.cumsum([a.size for a in arrays])[:-1]
    masks = [(~p).astype(np.float32).reshape(a.shape) for p, a in zip(np.split(pruned, ends), arrays)]
    if keys is not None:
        return dict(zip(keys, masks))
    return tuple(masks) if isinstance(weights, tuple) else masks


@same_kind
def random(w, amount, seed=0):
    """Random pruning mask: ``k`` weights chosen uniformly without replacement (the baseline).

    Any importance criterion worth its name must beat this at the same sparsity.

    Examples
    --------
    >>> int(random(np.ones(10), 0.3, seed=0).sum())
    7
    """
    w = _weights(w, "w")
    k = count_to_prune(amount, w.size)
    g = V.rng(seed)
    mask = np.ones(w.size, dtype=np.float32)
    mask[g.choice(w.size, size=k, replace=False)] = 0.0
    return mask.reshape(w.shape)


def _check_dim(dim: Any, ndim: int, name: str = "dim") -> int:
    dim = V.check_int(dim, name)
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for an array with {ndim} dimensions "
                         f"(allowed: {-ndim} .. {ndim - 1})")
    return dim % ndim


def _ln_norm(w: np.ndarray, n: float, axes: tuple[int, ...]) -> np.ndarray:
    """``||w_slice||_n = (sum |w|^n)^(1/n)`` over ``axes`` (n = inf: max |w|)."""
    a = np.abs(w.astype(np.float64))
    if n == np.inf:
        return a.max(axis=axes)
    if n == 1:
        return a.sum(axis=axes)
    if n == 2:
        return np.sqrt((a * a).sum(axis=axes))
    return (a ** n).sum(axis=axes) ** (1.0 / n)


@same_kind
def structured(w, amount, dim, n=2):
    """Structured pruning: zero whole slices along ``dim`` with the smallest L``n`` norm.

    ``norm[j] = || w.take(j, axis=dim) ||_n`` ; the ``k = count_to_prune(amount, w.shape[dim])``
    slices with the smallest norm are zeroed (ties: lowest index first). Like
    ``torch.nn.utils.prune.ln_structured``. For a Linear weight (out, in), ``dim=0`` removes
    neurons (rows), ``dim=1`` inputs; for a Conv2d weight, ``dim=0`` removes filters
    (Li et al., ICLR 2017).

    Parameters
    ----------
    w : array with at least 2 dimensions
    amount : int or float
        Number or fraction of slices to prune.
    dim : int
        The axis whose slices are pruned.
    n : float, default 2
        Norm order: a positive number or ``np.inf``.

    Returns
    -------
    mask : float32 0/1 array of the shape of ``w``, constant on every slice.

    Examples
    --------
    >>> structured(np.array([[1.0, 1.0], [0.1, 0.2], [3.0, 0.0]]), 1, dim=0)
    array([[1., 1.],
           [0., 0.],
           [1., 1.]], dtype=float32)
    """
    w = _weights(w, "w")
    if w.ndim < 2:
        raise ValueError(f"w must have at least 2 dimensions for structured pruning (rows, "
                         f"filters, channels), got shape {w.shape}; use magnitude() for vectors")
    dim = _check_dim(dim, w.ndim)
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or np.isnan(n) or n <= 0:
        raise ValueError(f"n must be a positive norm order (1, 2, ..., or np.inf), got {n!r}")
    k = count_to_prune(amount, w.shape[dim])
    norms = _ln_norm(w, float(n), tuple(a for a in range(w.ndim) if a != dim))
    keep = (~_smallest(norms, k)).astype(np.float32)
    shape = [1] * w.ndim
    shape[dim] = w.shape[dim]
    return np.broadcast_to(keep.reshape(shape), w.shape).copy()


@same_kind
def n_m(w, n=2, m=4, dim=1):
    """N:M semi-structured mask: in every group of ``m`` consecutive weights along ``dim``, keep
    the ``n`` largest ``|w|`` (2:4 is what NVIDIA Ampere sparse tensor cores accelerate,
    Mishra et al. 2021).

    Groups run along ``dim`` (default 1: the input features of a Linear weight (out, in), the
    input channels of a Conv2d weight). Ties inside a group: lowest index pruned first.

    Parameters
    ----------
    w : array with ``w.shape[dim]`` divisible by ``m``
    n : int
        Weights kept per group, ``0 <= n <= m``.
    m : int
        Group size, ``m >= 1``.
    dim : int
        Axis along which groups are formed.

    Returns
    -------
    mask : float32 0/1 array of the shape of ``w`` with exactly ``n`` ones per group.

    Examples
    --------
    >>> n_m(np.array([[0.1, -0.9, 0.5, 0.2, 4.0, 3.0, -2.0, 1.0]]), 2, 4)
    array([[0., 1., 1., 0., 1., 1., 0., 0.]], dtype=float32)
    """
    w = _weights(w, "w")
    m = V.check_int(m, "m", 1)
    n = V.check_int(n, "n", 0, m)
    if w.ndim == 0:
        raise ValueError("w must have at least 1 dimension")
    dim = _check_dim(dim, w.ndim)
    if w.shape[dim] % m:
        raise ValueError(f"w.shape[{dim}] = {w.shape[dim]} must be divisible by m={m} to form "
                         f"groups of {m} (w has shape {w.shape})")
    a = np.moveaxis(np.abs(w), dim, -1)
    groups = a.reshape(*a.shape[:-1], a.shape[-1] // m, m)
    # obvious form: in each group, prune the (m - n) smallest |w| (stable sort -> lowest index first)
    order = np.argsort(groups, axis=-1, kind="stable")
    mask = np.ones_like(groups, dtype=np.float32)
    np.put_along_axis(mask, order[..., : m - n], 0.0, axis=-1)
    return np.moveaxis(mask.reshape(a.shape), -1, dim).copy()


# --------------------------------------------------------------------------------------------
# Masks on models
# --------------------------------------------------------------------------------------------
def _params(model: nn.Sequential) -> dict[str, tuple[nn.Module, str]]:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a compresslab.nn.Sequential, got {type(model).__name__}")
    return {name: (layer, attr) for name, layer, attr in model.named_parameters()}


def prunable(model: nn.Sequential) -> list[str]:
    """State-dict names of the weights usually pruned: every Linear/Conv2d ``weight``.

    >>> prunable(nn.mlp((64, 300, 100, 10)))
    ['0.weight', '2.weight', '4.weight']
    """
    return [name for name, (layer, attr) in _params(model).items()
            if attr == "weight" and isinstance(layer, (nn.Linear, nn.Conv2d))]


def apply_masks(model: nn.Sequential, masks: dict[str, Any]) -> nn.Sequential:
    """Zero the pruned weights and store each mask in ``layer.masks[attr]`` (in place).

    The optimizers of :mod:`compresslab.nn` multiply every parameter by its mask after each step,
    so pruned weights stay exactly zero during fine-tuning. Returns ``model``.
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
    """Forget the masks (pruned weights stay zero now but may grow back when trained)."""
    for layer in model.layers:
        layer.masks = {}
    return model


def masks_of(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The masks installed in ``model`` as a dict keyed by parameter name."""
    return {name: layer.masks[attr] for name, (layer, attr) in _params(model).items()
            if attr in layer.masks}


def model_masks(model: nn.Sequential, amount: Any, *, method: str = "magnitude",
                layers: Sequence[str] | dict[str, Any] | None = None, seed: Any = 0,
                dim: int = 0) -> dict[str, np.ndarray]:
    """Masks for several layers of ``model`` (not applied; see :func:`apply_masks`).

    Parameters
    ----------
    amount : int or float, or None when ``layers`` is a dict {name: amount}
    method : "magnitude" (per layer), "global" (one threshold over all ``layers``), "random",
        "structured" (slices along ``dim``, L2) or "2:4".
    layers : names of parameters (default :func:`prunable`), or a dict of per-layer amounts.
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
    zeros: int
    size: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


@dataclass
class SparsityReport:
    """Zeros per parameter and in total. ``report.total`` is the overall fraction of zeros."""

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

    For a model: the zeros in each prunable weight (:func:`prunable`, or ``layers``); biases are
    not counted, as in torch's pruning tutorial. For a dict of masks: the zeros of each mask.

    >>> m = nn.mlp((4, 3, 2)); _ = apply_masks(m, {"0.weight": magnitude(m[0].weight, 6)})
    >>> sparsity(m).total == 6 / 18
    True
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
    m = model.copy()
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
    """What a schedule says at one step: prune now?, and the target sparsity."""

    should_prune: bool
    sparsity: float

    def __float__(self) -> float:
        return float(self.sparsity)


def _schedule_args(begin_step, end_step, frequency, allow_open_end: bool):
    begin_step = V.check_int(begin_step, "begin_step", 0)
    frequency = V.check_int(frequency, "frequency", 1)
    end_step = V.check_int(end_step, "end_step", -1 if allow_open_end else None)
    if end_step != -1 and end_step < begin_step:
        raise ValueError(f"end_step={end_step} must be >= begin_step={begin_step}"
                         + (" (or -1 for no end)" if allow_open_end else ""))
    return begin_step, end_step, frequency


def _should_prune(step, begin_step, end_step, frequency) -> bool:
    in_range = step >= begin_step and (end_step == -1 or step <= end_step)
    return bool(in_range and (step - begin_step) % frequency == 0)


def constant(step: int, target_sparsity: float, begin_step: int = 0, end_step: int = -1,
             frequency: int = 100) -> ScheduleStep:
    """Constant sparsity, as TF-MOT ``ConstantSparsity``: prune to ``target_sparsity`` every
    ``frequency`` steps from ``begin_step`` to ``end_step`` (-1: no end).

    >>> constant(200, 0.9)
    ScheduleStep(should_prune=True, sparsity=0.9)
    """
    V.check_int(step, "step", 0)
    s = V.check_float(target_sparsity, "target_sparsity", 0.0, 1.0)
    begin_step, end_step, frequency = _schedule_args(begin_step, end_step, frequency, True)
    return ScheduleStep(_should_prune(step, begin_step, end_step, frequency), s)


def polynomial_decay(step: int, initial_sparsity: float, final_sparsity: float, begin_step: int,
                     end_step: int, power: float = 3, frequency: int = 100) -> ScheduleStep:
    """Automated gradual pruning schedule (Zhu & Gupta 2017), as TF-MOT ``PolynomialDecay``::

        p = clip((step - begin_step) / (end_step - begin_step), 0, 1)
        sparsity = final + (initial - final) * (1 - p) ** power

    ``should_prune`` is true for ``begin_step <= step <= end_step`` every ``frequency`` steps
    (counted from ``begin_step``). Sparsity rises fast at first, when the network has many
    redundant weights, and slowly at the end.

    Returns
    -------
    ScheduleStep(should_prune, sparsity), a named tuple (unpack like TF-MOT's result).

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
    """Train while pruning by ``schedule``; pruned weights stay exactly zero.

    After every optimizer step ``t`` (0, 1, 2, ... over all epochs) the callback asks
    ``schedule(t) -> (should_prune, sparsity)``; when told to prune, it recomputes the masks of
    ``layers`` at that sparsity by magnitude (``method="magnitude"`` per layer, or ``"global"``)
    and installs them with :func:`apply_masks`. Already-pruned weights are zero, hence smallest,
    so masks only grow. Between updates :func:`compresslab.nn.fit`'s optimizer keeps pruned
    weights at zero.

    Parameters
    ----------
    schedule : callable step -> (should_prune, sparsity), e.g.
        ``lambda t: polynomial_decay(t, 0.0, 0.9, 0, 600, frequency=20)``
    layers : parameter names to prune (default :func:`prunable`)
    method : "magnitude" or "global"
    Other arguments are passed to :func:`compresslab.nn.fit`.

    Returns
    -------
    nn.History
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a callable step -> (should_prune, sparsity), got "
                        f"{type(schedule).__name__}")
    V.check_choice(method, "method", {"magnitude", "global"})
    names = list(layers) if layers is not None else prunable(model)
    steps = math.ceil(len(y) / V.check_int(batch_size, "batch_size", 1))

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
    """Automated gradual pruning: :func:`fit_pruned` with a :func:`polynomial_decay` schedule
    that reaches ``final_sparsity`` after ``prune_fraction`` of the training steps, then
    fine-tunes at that sparsity for the rest (Zhu & Gupta 2017).

    The end step is a multiple of ``frequency`` so the final sparsity is really applied.
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
    """Accuracy after pruning one layer at a time: ``accuracy[i, j]`` for ``layers[i]`` at
    ``sparsities[j]`` (the other layers untouched); ``baseline`` is the unpruned accuracy."""

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
    """Prune one layer at a time at each sparsity and measure validation accuracy.

    Parameters
    ----------
    layers : parameter names (default :func:`prunable`)
    sparsities : fractions in [0, 1]
    method : "magnitude", "random" or "structured" (whole rows / filters, L2)

    Returns
    -------
    SensitivityResult (``.accuracy`` has shape (len(layers), len(sparsities))).
    """
    V.check_choice(method, "method", {"magnitude", "random", "structured"})
    params = _params(model)
    names = list(layers) if layers is not None else prunable(model)
    for name in names:
        if name not in params:
            raise KeyError(f"layers names {name!r}, not a parameter of the model ({sorted(params)})")
    sp = V.as_float_array(sparsities, "sparsities", ndim=1)
    if (sp < 0).any() or (sp > 1).any():
        raise ValueError(f"sparsities must lie in [0, 1], got {sp.min()} .. {sp.max()}")
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
