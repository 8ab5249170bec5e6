"""Tiny, transparent neural networks in NumPy: layers, losses, optimizers, a training loop.

Each layer has a ``forward`` that reads like its formula and a ``backward`` that applies the
chain rule by hand, so a learner can read exactly what a framework does. Shapes and parameter
names follow PyTorch (``Linear.weight`` is ``(out_features, in_features)``, ``Conv2d.weight`` is
``(out_channels, in_channels, kh, kw)``, state-dict keys like ``"0.weight"``), which makes
``to_torch`` / ``from_torch`` exact and lets the tests use torch autograd as the oracle.

Two hooks connect the layers to the compression modules without either knowing the other:

* ``layer.masks[name]`` -- a 0/1 array; the optimizers multiply the parameter by it after every
  step, so pruned weights stay exactly zero while training (pruning).
* ``layer.weight_transform`` -- an object with ``forward(w) -> w_used`` and
  ``backward(w, grad) -> grad``; the layer computes with ``w_used`` and sends the weight gradient
  back through ``backward`` (fake quantization with a straight-through estimator, for QAT).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from .. import _validate as V

__all__ = [
    "Module", "Linear", "Conv2d", "ReLU", "Flatten", "Sequential",
    "cross_entropy", "log_softmax", "SGD", "Adam", "fit", "History", "evaluate", "predict",
    "confusion_matrix",
    "mlp", "cnn", "num_params", "nbytes", "summary", "to_torch", "from_torch", "save", "load",
    "load_with_extra", "check_model", "weighted_layers",
]

DTYPE = np.float32


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
class Module:
    """Base class of the layers: parameters are attributes named in ``param_names``.

    Subclasses implement ``forward(x)`` (and remember what ``backward`` needs) and
    ``backward(grad) -> dL/dx``, which also stores ``dL/dparameter`` in ``grads``.

    Attributes
    ----------
    param_names : tuple of str
        Names of the parameter attributes, e.g. ``("weight", "bias")``.
    grads : dict of {str: numpy.ndarray}
        Gradients from the last ``backward``.
    masks : dict of {str: numpy.ndarray}
        0/1 pruning masks the optimizers apply after every step.
    training : bool
        Training or evaluation mode.

    Examples
    --------
    >>> [name for name, layer, attr in Linear(3, 2).named_parameters()]
    ['weight', 'bias']
    """

    param_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.grads: dict[str, np.ndarray] = {}
        self.masks: dict[str, np.ndarray] = {}
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, "Module", str]]:
        """Yield ``(full_name, layer, attribute)`` for every parameter."""
        for name in self.param_names:
            yield prefix + name, self, name

    def config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class _WeightedLayer(Module):
    weight_transform: Any = None

    def _weight_used(self) -> np.ndarray:
        """The weight the layer computes with: the raw weight, or its transform (fake-quantized)."""
        if self.weight_transform is None:
            return self.weight
        return self.weight_transform.forward(self.weight)

    def _weight_grad(self, grad_used: np.ndarray) -> np.ndarray:
        if self.weight_transform is None:
            return grad_used
        return self.weight_transform.backward(self.weight, grad_used)


class Linear(_WeightedLayer):
    """Fully connected layer: ``y = x @ W.T + b``, with ``W`` of shape (out_features, in_features).

    The backward pass is ``dL/dW = grad.T @ x``, ``dL/db = sum_n grad_n``, ``dL/dx = grad @ W``.
    Initialised like ``torch.nn.Linear``: W and b uniform in ``[-1/sqrt(in), 1/sqrt(in)]``.

    Parameters
    ----------
    in_features, out_features : int >= 1
    bias : bool, default True
    seed : int, numpy.random.Generator or None
        Seed of the initial weights.

    Examples
    --------
    >>> layer = Linear(3, 2, seed=0)
    >>> layer.weight.shape, layer(np.ones((4, 3), np.float32)).shape
    ((2, 3), (4, 2))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, seed: Any = None):
        super().__init__()
        self.in_features = V.check_int(in_features, "in_features", 1)
        self.out_features = V.check_int(out_features, "out_features", 1)
        g = V.rng(seed)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = g.uniform(-bound, bound, (out_features, in_features)).astype(DTYPE)
        self.bias = g.uniform(-bound, bound, out_features).astype(DTYPE) if bias else None
        self.param_names = ("weight", "bias") if bias else ("weight",)

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects input of "
                             f"shape (batch, {self.in_features}), got {x.shape}")
        self._x = x
        self._w = self._weight_used()
        y = x @ self._w.T
        if self.bias is not None:
            y += self.bias
        return y

    def backward(self, grad):
        # dL/dW = grad.T @ x ; dL/db = sum over the batch ; dL/dx = grad @ W
        self.grads["weight"] = self._weight_grad(grad.T @ self._x)
        if self.bias is not None:
            self.grads["bias"] = grad.sum(axis=0)
        return grad @ self._w

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None}


class Conv2d(_WeightedLayer):
    """2-D convolution (cross-correlation, as in torch), computed as one matrix product (im2col).

    ``y[n, o, i, j] = b[o] + sum_(c, u, v) W[o, c, u, v] * x_pad[n, c, i*s + u, j*s + v]``.
    im2col gathers every receptive field into a row, so the sum becomes
    ``cols @ W.reshape(O, -1).T``. Initialised like ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int >= 1
    kernel_size : int >= 1
        Square kernels only.
    stride : int >= 1, default 1
    padding : int >= 0, default 0
        Zeros added on every side.
    bias : bool, default True
    seed : int, numpy.random.Generator or None
        Seed of the initial weights.

    Examples
    --------
    >>> conv = Conv2d(1, 4, 3, stride=2, padding=1, seed=0)
    >>> conv.weight.shape, conv(np.zeros((2, 1, 8, 8), np.float32)).shape
    ((4, 1, 3, 3), (2, 4, 4, 4))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, *, seed: Any = None):
        super().__init__()
        self.in_channels = V.check_int(in_channels, "in_channels", 1)
        self.out_channels = V.check_int(out_channels, "out_channels", 1)
        self.kernel_size = V.check_int(kernel_size, "kernel_size", 1)
        self.stride = V.check_int(stride, "stride", 1)
        self.padding = V.check_int(padding, "padding", 0)
        g = V.rng(seed)
        fan_in = in_channels * kernel_size * kernel_size
        bound = 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = g.uniform(-bound, bound, shape).astype(DTYPE)
        self.bias = g.uniform(-bound, bound, out_channels).astype(DTYPE) if bias else None
        self.param_names = ("weight", "bias") if bias else ("weight",)

    def _im2col(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        n, c, oh, ow = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * k * k)
        return cols, (n, oh, ow, xp.shape)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d expects input of shape (batch, {self.in_channels}, H, W), "
                             f"got {x.shape}")
        cols, self._geom = self._im2col(x)
        self._cols = cols
        self._w = self._weight_used()
        n, oh, ow, _ = self._geom
        y = cols @ self._w.reshape(self.out_channels, -1).T
        if self.bias is not None:
            y += self.bias
        return y.reshape(n, oh, ow, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, grad):
        n, oh, ow, padded_shape = self._geom
        k, s, p = self.kernel_size, self.stride, self.padding
        g = grad.transpose(0, 2, 3, 1).reshape(n * oh * ow, self.out_channels)
        self.grads["weight"] = self._weight_grad((g.T @ self._cols).reshape(self.weight.shape))
        if self.bias is not None:
            self.grads["bias"] = g.sum(axis=0)
        dcols = (g @ self._w.reshape(self.out_channels, -1)).reshape(n, oh, ow, self.in_channels, k, k)
        dxp = np.zeros(padded_shape, dtype=grad.dtype)
        for u in range(k):  # col2im: scatter each kernel offset back to where it was read
            for v in range(k):
                dxp[:, :, u:u + s * oh:s, v:v + s * ow:s] += dcols[:, :, :, :, u, v].transpose(0, 3, 1, 2)
        return dxp[:, :, p:padded_shape[2] - p, p:padded_shape[3] - p] if p else dxp

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "bias": self.bias is not None}


class ReLU(Module):
    """Rectified linear unit: ``y = max(x, 0)``; the gradient passes where ``x > 0``.

    Examples
    --------
    >>> ReLU()(np.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """

    def forward(self, x):
        self._pos = x > 0
        return np.where(self._pos, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad):
        return grad * self._pos


class Flatten(Module):
    """Flatten every dimension but the batch: (N, C, H, W) -> (N, C*H*W).

    Examples
    --------
    >>> Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._shape)


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Parameter names follow torch's state dicts: ``"{index}.{attribute}"``.

    Parameters
    ----------
    *layers : Module
        The layers (or one list of them).

    Examples
    --------
    >>> m = Sequential(Linear(4, 3, seed=0), ReLU(), Linear(3, 2, seed=1))
    >>> m(np.ones((5, 4), np.float32)).shape, list(m.state_dict())
    ((5, 2), ['0.weight', '0.bias', '2.weight', '2.bias'])
    """

    def __init__(self, *layers: Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} must be a compresslab.nn.Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def __call__(self, x):
        return self.forward(V.as_float_array(x, "x"))   # as predict: no NaN, inf or strings

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def named_parameters(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{i}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(layer, attr) for name, layer, attr in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = {name: (layer, attr) for name, layer, attr in self.named_parameters()}
        if set(state) != set(own):
            raise ValueError(f"state keys {sorted(state)} do not match the model's {sorted(own)}")
        for name, value in state.items():
            layer, attr = own[name]
            value = np.asarray(value, dtype=DTYPE)
            if value.shape != getattr(layer, attr).shape:
                raise ValueError(f"{name}: shape {value.shape} != {getattr(layer, attr).shape}")
            setattr(layer, attr, value.copy())

    def train(self, mode: bool = True) -> "Sequential":
        for layer in [self, *self.layers]:
            layer.training = mode
        return self

    def eval(self) -> "Sequential":
        return self.train(False)

    def copy(self) -> "Sequential":
        """A deep copy (weights, masks and transforms copied; caches dropped)."""
        clone = _build(self.architecture())
        clone.load_state_dict(self.state_dict())
        for src, dst in zip(self.layers, clone.layers):
            dst.masks = {k: v.copy() for k, v in src.masks.items()}
            if getattr(src, "weight_transform", None) is not None:
                dst.weight_transform = copy.deepcopy(src.weight_transform)  # may hold state
        return clone

    def architecture(self) -> list[dict]:
        return [{"type": type(l).__name__, **l.config()} for l in self.layers]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {l!r}" for i, l in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


_LAYERS = {cls.__name__: cls for cls in (Linear, Conv2d, ReLU, Flatten)}


def _build(arch: list[dict], where: str | None = None) -> Sequential:
    """The model an architecture describes; ``where`` (a file) also caps each layer's size."""
    if where is not None and not isinstance(arch, list):
        raise V.FileDamage(f"{where}: the architecture is not a list of layers")
    layers = []
    for spec in arch:
        spec = dict(spec if where is None else V.check_layer_spec(spec, where))
        kind = spec.pop("type", None)
        if kind not in _LAYERS:
            raise ValueError(f"unknown layer type {kind!r} in architecture")
        layers.append(_LAYERS[kind](**spec))
    return Sequential(*layers)


def mlp(sizes=(64, 300, 100, 10), *, seed: Any = 0) -> Sequential:
    """A multi-layer perceptron: Linear layers with ReLU between them.

    The default is the LeNet-300-100 shape on the 8x8 digits.

    Parameters
    ----------
    sizes : sequence of int, default (64, 300, 100, 10)
        Input size, hidden sizes, output size.
    seed : int, numpy.random.Generator or None, default 0
        Seed of the initial weights.

    Returns
    -------
    Sequential

    Examples
    --------
    >>> [type(layer).__name__ for layer in mlp((4, 3, 2))]
    ['Linear', 'ReLU', 'Linear']
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a sequence of layer sizes, got {sizes!r}")
    sizes = tuple(V.check_int(s, "sizes", 1) for s in sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    g = V.rng(seed)
    layers: list[Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(a, b, seed=g))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def cnn(*, channels=(16, 32), hidden: int = 64, num_classes: int = 10, image_size: int = 8,
        seed: Any = 0) -> Sequential:
    """A small CNN for 8x8 digits.

    conv3x3 -> ReLU -> conv3x3 stride 2 -> ReLU -> Flatten -> Linear(hidden) -> ReLU -> Linear.

    Parameters
    ----------
    channels : tuple of two int, default (16, 32)
        Output channels of the two convolutions.
    hidden : int, default 64
    num_classes : int, default 10
    image_size : int, default 8
    seed : int, numpy.random.Generator or None, default 0

    Returns
    -------
    Sequential

    Examples
    --------
    >>> cnn()(np.zeros((2, 1, 8, 8), np.float32)).shape
    (2, 10)
    """
    g = V.rng(seed)
    c1, c2 = V.check_pair(channels, "channels")
    V.check_int(hidden, "hidden", 1)
    V.check_int(num_classes, "num_classes", 1)
    V.check_int(image_size, "image_size", 1)
    side = (image_size + 1) // 2
    return Sequential(
        Conv2d(1, c1, 3, padding=1, seed=g), ReLU(),
        Conv2d(c1, c2, 3, stride=2, padding=1, seed=g), ReLU(),
        Flatten(), Linear(c2 * side * side, hidden, seed=g), ReLU(),
        Linear(hidden, num_classes, seed=g),
    )


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------
def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Log-softmax, ``log_softmax(z) = z - log(sum_j exp(z_j))``, computed stably.

    Evaluated as ``(z - max z) - log(sum_j exp(z_j - max z))``, so nothing overflows.

    Parameters
    ----------
    z : numpy.ndarray
    axis : int, default -1

    Returns
    -------
    numpy.ndarray, shape of ``z``

    Examples
    --------
    >>> np.exp(log_softmax(np.array([[0.0, 0.0], [1000.0, 0.0]]))).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    z = V.as_float_array(z, "z", ndim=tuple(range(1, 33)))
    return _log_softmax(z, V.check_axis(axis, z.ndim, "axis"))


def _log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits.

    ``L = -mean_n log softmax(z_n)[y_n]`` and ``dL/dz = (softmax(z) - onehot(y)) / N``.

    Parameters
    ----------
    logits : numpy.ndarray, shape (N, C)
    labels : numpy.ndarray of int, shape (N,)

    Returns
    -------
    loss : float
    grad : numpy.ndarray of shape (N, C), dtype of ``logits``

    Examples
    --------
    >>> loss, grad = cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(loss, 4), grad.tolist()                # log 2; (0.5, 0.5) - (0, 1)
    (0.6931, [[0.5, -0.5]])
    """
    logits = V.as_float_array(logits, "logits", ndim=2)
    n = logits.shape[0]
    labels = V.check_labels_for(labels, "labels", n, logits.shape[1])
    logp = _log_softmax(logits)
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return float(loss), (grad / n).astype(logits.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------
class _Optimizer:
    def __init__(self, model: Module, lr: float):
        self.model = model
        self.lr = V.check_float(lr, "lr", 0.0, low_open=True)
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def step(self) -> None:
        for name, layer, attr in self.model.named_parameters():
            g = layer.grads.get(attr)
            if g is None:
                continue
            p = getattr(layer, attr)
            self._update(name, p, g)
            mask = layer.masks.get(attr)
            if mask is not None:
                p *= mask  # pruned weights stay exactly zero


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    ``g = g + weight_decay * p ; v = momentum * v + g ; p -= lr * v``. After each step, every
    parameter with a mask is multiplied by it (pruned weights stay zero).

    Parameters
    ----------
    model : Module
    lr : float > 0, default 0.01
    momentum : float in [0, 1), default 0.9
    weight_decay : float >= 0, default 0.0

    Examples
    --------
    >>> m = mlp((2, 1), seed=0)
    >>> _ = m.forward(np.ones((1, 2), np.float32)); _ = m.backward(np.ones((1, 1), np.float32))
    >>> before = m[0].weight.copy(); SGD(m, lr=0.1, momentum=0.0).step()
    >>> np.allclose(before - m[0].weight, 0.1)      # lr * dL/dW = 0.1 * [[1, 1]]
    True
    """

    def __init__(self, model, lr=0.01, momentum=0.9, weight_decay=0.0):
        super().__init__(model, lr)
        self.momentum = V.check_float(momentum, "momentum", 0.0, 1.0, high_open=True)
        self.weight_decay = V.check_float(weight_decay, "weight_decay", 0.0)

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = self.state.setdefault(name, {}).setdefault("v", np.zeros_like(p))
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adam(_Optimizer):
    """Adam, as ``torch.optim.Adam`` (Kingma & Ba, ICLR 2015).

    ``m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2 ; p -= lr * m_hat / (sqrt(v_hat) + eps)``
    with ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)``. After each step, every
    parameter with a mask is multiplied by it (pruned weights stay zero).

    Parameters
    ----------
    model : Module
    lr : float > 0, default 1e-3
    betas : tuple of float in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0.0

    References
    ----------
    .. [1] D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    Examples
    --------
    >>> m = mlp((2, 1), seed=0)
    >>> _ = m.forward(np.ones((1, 2), np.float32)); _ = m.backward(np.ones((1, 1), np.float32))
    >>> before = m[0].weight.copy(); Adam(m, lr=1e-3).step()
    >>> np.allclose(before - m[0].weight, 1e-3)     # the first step moves each weight by ~lr
    True
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(model, lr)
        self.b1, self.b2 = (V.check_float(b, "betas", 0.0, 1.0, high_open=True) for b in betas)
        self.eps = V.check_float(eps, "eps", 0.0, low_open=True)
        self.weight_decay = V.check_float(weight_decay, "weight_decay", 0.0)

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self.state.setdefault(name, {})
        if not s:
            s.update(m=np.zeros_like(p), v=np.zeros_like(p), t=0)
        s["t"] += 1
        s["m"] *= self.b1
        s["m"] += (1 - self.b1) * g
        s["v"] *= self.b2
        s["v"] += (1 - self.b2) * g * g
        m_hat = s["m"] / (1 - self.b1 ** s["t"])
        v_hat = s["v"] / (1 - self.b2 ** s["t"])
        p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------------
@dataclass
class History:
    """What :func:`fit` records: the mean training loss and validation accuracy per epoch.

    Parameters
    ----------
    loss : list of float
    val_acc : list of float
        Empty when no validation data were given.
    seconds : float
        Wall-clock training time.

    Examples
    --------
    >>> History(loss=[0.5, 0.25])
    History(epochs=2, loss=0.2500, seconds=0.00)
    """

    loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self):
        if not self.loss:
            return "History(empty)"
        last = f", val_acc={self.val_acc[-1]:.4f}" if self.val_acc else ""
        return f"History(epochs={len(self.loss)}, loss={self.loss[-1]:.4f}{last}, seconds={self.seconds:.2f})"


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


LossFn = Callable[[np.ndarray, Any, np.ndarray], tuple[float, np.ndarray]]


def fit(model: Sequential, X, y, *, epochs: int = 30, batch_size: int = 32, lr: float = 3e-3,
        optimizer: str | _Optimizer = "adam", loss: LossFn | None = None, val=None,
        seed: Any = 0, progress: bool = True, callbacks: tuple = (), desc: str = "training",
        threads: int | None = 1) -> History:
    """Train a model with mini-batches; returns a :class:`History`.

    Each epoch visits the samples in a fresh random order (from ``seed``); for each batch it runs
    ``forward``, the loss, ``backward`` and one optimizer step.

    Parameters
    ----------
    model : Sequential
        Trained in place; left in evaluation mode.
    X, y : array_like
        Training inputs and targets (class indices for the default cross-entropy loss).
    epochs : int >= 0, default 30
    batch_size : int >= 1, default 32
    lr : float > 0, default 3e-3
    optimizer : {"adam", "sgd"} or an optimizer object, default "adam"
    loss : callable, optional
        ``loss(logits, y_batch, batch_index) -> (loss, dL/dlogits)``; ``batch_index`` are the
        rows of X in the batch, so a loss can look up per-sample data (teacher logits).
        Default :func:`cross_entropy`.
    val : tuple (X_val, y_val), optional
        Validation accuracy is recorded after each epoch.
    seed : int, numpy.random.Generator or None, default 0
    progress : bool, default True
        Show a ``tqdm`` bar.
    callbacks : tuple of callables
        ``cb(model, epoch, step)``, run after every optimizer step.
    desc : str, default "training"
        Label of the progress bar.
    threads : int or None, default 1
        BLAS threads while training (needs threadpoolctl). 1 is the fastest for the small models
        of the lessons: their matrices are too small to be worth splitting, and a busy machine
        makes spinning BLAS threads 10x slower. ``None`` leaves it alone.

    Returns
    -------
    History

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y = g.normal(size=(64, 4)), g.integers(0, 2, 64)
    >>> hist = fit(mlp((4, 8, 2), seed=0), X, y, epochs=3, progress=False)
    >>> len(hist.loss), hist.loss[-1] < hist.loss[0]
    (3, True)
    """
    with _blas_threads(threads):
        return _fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                    loss=loss, val=val, seed=seed, progress=progress, callbacks=callbacks, desc=desc)


def _blas_threads(threads: int | None):
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    V.check_int(threads, "threads", 1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def _fit(model, X, y, *, epochs, batch_size, lr, optimizer, loss, val, seed, progress, callbacks,
         desc) -> History:
    check_model(model)
    X = V.as_batch(X)
    V.check_bool(progress, "progress")
    if loss is None:
        classes = [layer for layer in model.layers if isinstance(layer, (Linear, Conv2d))][-1].weight.shape[0]
        y = V.as_labels(y, "y", n=X.shape[0], num_classes=classes)
        loss = lambda logits, yb, idx: cross_entropy(logits, yb)  # noqa: E731
    else:
        y = np.asarray(y)
        if len(y) != X.shape[0]:
            raise ValueError(f"y has {len(y)} rows but X has {X.shape[0]}")
    V.check_int(epochs, "epochs", 0)
    V.check_int(batch_size, "batch_size", 1)
    if isinstance(optimizer, str):
        V.check_choice(optimizer, "optimizer", {"adam", "sgd"})
        optimizer = Adam(model, lr=lr) if optimizer == "adam" else SGD(model, lr=lr)
    g = V.rng(seed)
    hist = History()
    n = X.shape[0]
    steps = math.ceil(n / batch_size)
    bar = _progress(epochs, desc, progress)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = g.permutation(n)
        total = 0.0
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            logits = model.forward(X[idx])
            value, grad = loss(logits, y[idx], idx)
            model.backward(grad)
            optimizer.step()
            for cb in callbacks:
                cb(model, epoch, step)
            total += value * len(idx)
        hist.loss.append(total / n)
        if val is not None:
            hist.val_acc.append(evaluate(model, *val))
            model.train()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{hist.loss[-1]:.3f}",
                            **({"val_acc": f"{hist.val_acc[-1]:.3f}"} if hist.val_acc else {}))
    if bar is not None:
        bar.close()
    model.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


def predict(model: Sequential, X, batch_size: int = 1024) -> np.ndarray:
    """Logits of a model for ``X``, computed in batches.

    Parameters
    ----------
    model : Sequential
    X : array_like, shape (N, ...)
    batch_size : int, default 1024

    Returns
    -------
    numpy.ndarray, shape (N, classes)

    Examples
    --------
    >>> m = mlp((2, 2), seed=0); m[0].weight[:] = 0.0; m[0].bias[:] = [1.0, 0.0]
    >>> predict(m, np.zeros((3, 2))).tolist()
    [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
    """
    X = V.as_batch(X)
    V.check_has(model, "forward", "model")
    batch_size = V.check_int(batch_size, "batch_size", 1)
    return np.concatenate([model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


def evaluate(model: Sequential, X, y) -> float:
    """Top-1 accuracy in [0, 1]: ``mean_n [argmax_c logits[n, c] == y_n]``.

    Parameters
    ----------
    model : Sequential
    X : array_like, shape (N, ...)
    y : array_like of int, shape (N,)

    Returns
    -------
    float

    Examples
    --------
    >>> m = mlp((2, 2), seed=0); m[0].weight[:] = 0.0; m[0].bias[:] = [1.0, 0.0]   # always class 0
    >>> evaluate(m, np.zeros((4, 2)), [0, 0, 1, 0])
    0.75
    """
    logits = predict(model, X)
    y = V.check_labels_for(y, "y", logits.shape[0], logits.shape[1])
    return float((logits.argmax(axis=1) == y).mean())


def confusion_matrix(model: Sequential, X, y, num_classes: int | None = None) -> np.ndarray:
    """Confusion matrix: ``cm[i, j]`` = number of samples of true class ``i`` predicted as ``j``.

    Parameters
    ----------
    model : Sequential
    X : array_like, shape (N, ...)
    y : array_like of int, shape (N,)
    num_classes : int, optional
        Default: the largest class seen plus one. Labels must be outputs of the model.

    Returns
    -------
    numpy.ndarray of int64, shape (num_classes, num_classes)

    Examples
    --------
    >>> m = mlp((2, 2), seed=0); m[0].weight[:] = 0.0; m[0].bias[:] = [1.0, 0.0]   # always class 0
    >>> confusion_matrix(m, np.zeros((4, 2)), [0, 0, 1, 0]).tolist()
    [[3, 0], [1, 0]]
    """
    logits = predict(model, X)
    y = V.check_labels_for(y, "y", logits.shape[0], logits.shape[1])
    pred = logits.argmax(axis=1)
    k = int(max(y.max(initial=0), pred.max(initial=0)) + 1)
    if num_classes is not None:
        k = V.check_int(num_classes, "num_classes", k)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def check_model(model, name: str = "model") -> Sequential:
    """``model`` itself if it is a compresslab :class:`Sequential`, else a TypeError naming the
    argument: the one check every technique makes of the model it is given.

    Parameters
    ----------
    model : object
    name : str
        The argument's name, for the message.

    Returns
    -------
    Sequential

    Examples
    --------
    >>> check_model(mlp((4, 3, 2), seed=0)) is not None
    True
    >>> check_model([1, 2], "student")
    Traceback (most recent call last):
    ...
    TypeError: student must be a compresslab.nn.Sequential, got list
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"{name} must be a compresslab.nn.Sequential, got {type(model).__name__}")
    return model


def weighted_layers(model, name: str = "model") -> list:
    """The Linear and Conv2d layers of a compresslab model, in order (a TypeError if none).

    Parameters
    ----------
    model : Sequential
    name : str
        The argument's name, for the message.

    Returns
    -------
    list of Linear and Conv2d

    Examples
    --------
    >>> [type(l).__name__ for l in weighted_layers(mlp((4, 3, 2), seed=0))]
    ['Linear', 'Linear']
    """
    layers = [layer for layer in check_model(model, name).layers if isinstance(layer, (Linear, Conv2d))]
    if not layers:
        raise TypeError(f"{name} has no Linear or Conv2d layer")
    return layers


def num_params(model: Module, nonzero: bool = False) -> int:
    """Number of parameters of a model (or of the non-zero ones).

    Parameters
    ----------
    model : Module
    nonzero : bool, default False
        Count only non-zero parameters (what pruning removed is not counted).

    Returns
    -------
    int

    Examples
    --------
    >>> num_params(mlp((4, 3, 2)))             # 4*3 + 3 + 3*2 + 2
    23
    """
    V.check_has(model, "named_parameters", "model")
    arrays = [getattr(l, a) for _, l, a in model.named_parameters()]
    return int(sum(np.count_nonzero(p) if nonzero else p.size for p in arrays))


def nbytes(model: Module, bits: int = 32) -> int:
    """Dense storage of all parameters at ``bits`` bits each: ``ceil(num_params * bits / 8)`` bytes.

    Parameters
    ----------
    model : Module
    bits : int in [1, 64], default 32

    Returns
    -------
    int

    Examples
    --------
    >>> nbytes(mlp((4, 3, 2))), nbytes(mlp((4, 3, 2)), bits=4)
    (92, 12)
    """
    V.check_bits(bits, "bits", 1, 64)
    return math.ceil(num_params(model) * bits / 8)


def summary(model: Sequential) -> str:
    """A per-layer table: type, parameter shapes, parameter count and float32 bytes.

    Parameters
    ----------
    model : Sequential

    Returns
    -------
    str

    Examples
    --------
    >>> print(summary(mlp((4, 3, 2))))
    layer      params       count  bytes
    0: Linear  (3, 4) (3,)     15     60
    1: ReLU    -                0      0
    2: Linear  (2, 3) (2,)      8     32
    total                      23     92
    """
    rows = [("layer", "params", "count", "bytes")]
    check_model(model)
    for i, layer in enumerate(model.layers):
        shapes = " ".join(str(getattr(layer, a).shape) for a in layer.param_names)
        count = sum(getattr(layer, a).size for a in layer.param_names)
        rows.append((f"{i}: {type(layer).__name__}", shapes or "-", str(count), str(count * 4)))
    total = num_params(model)
    rows.append(("total", "", str(total), str(total * 4)))
    w = [max(len(r[c]) for r in rows) for c in range(4)]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}" for r in rows)


# --------------------------------------------------------------------------------------------
# torch interop (torch imported lazily)
# --------------------------------------------------------------------------------------------
def to_torch(model: Sequential):
    """An equivalent ``torch.nn.Sequential`` with exactly the same float32 weights.

    Parameters
    ----------
    model : Sequential
        Of Linear, Conv2d, ReLU and Flatten layers.

    Returns
    -------
    torch.nn.Sequential

    See Also
    --------
    from_torch

    Examples
    --------
    Needs torch (skipped without it):

    >>> import torch
    >>> t = to_torch(mlp((4, 3, 2)))
    >>> t[0].weight.shape
    torch.Size([3, 4])
    """
    if hasattr(model, "to_torch"):                 # a model with its own conversion (nn.GPT)
        return model.to_torch()
    import torch
    from torch import nn as tnn

    layers = []
    for layer in model.layers:
        if isinstance(layer, Linear):
            t = tnn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        elif isinstance(layer, Conv2d):
            t = tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                           stride=layer.stride, padding=layer.padding, bias=layer.bias is not None)
        elif isinstance(layer, ReLU):
            t = tnn.ReLU()
        elif isinstance(layer, Flatten):
            t = tnn.Flatten()
        else:
            raise TypeError(f"no torch equivalent for {type(layer).__name__}")
        with torch.no_grad():
            for a in layer.param_names:
                getattr(t, a).copy_(torch.from_numpy(np.ascontiguousarray(getattr(layer, a))))
        layers.append(t)
    return tnn.Sequential(*layers)


def from_torch(module) -> Sequential:
    """The compresslab equivalent of a ``torch.nn.Sequential`` of Linear, Conv2d, ReLU and Flatten.

    Parameters
    ----------
    module : torch.nn.Sequential
        Square kernels, strides and integer paddings only; no dilation, groups or padding
        modes other than zeros; Flatten from dimension 1. Anything else is a ValueError,
        never a different model.

    Returns
    -------
    Sequential

    See Also
    --------
    to_torch

    Examples
    --------
    Needs torch (skipped without it):

    >>> import torch
    >>> m = mlp((4, 3, 2))
    >>> np.array_equal(from_torch(to_torch(m))[0].weight, m[0].weight)
    True
    """
    from torch import nn as tnn

    if callable(getattr(module, "to_compresslab", None)):     # a module that knows its twin (nn.GPT's)
        return module.to_compresslab()
    layers: list[Module] = []
    for t in module:
        if isinstance(t, tnn.Linear):
            l: Module = Linear(t.in_features, t.out_features, bias=t.bias is not None)
        elif isinstance(t, tnn.Conv2d):
            V.check_torch_layer(t)
            l = Conv2d(t.in_channels, t.out_channels, t.kernel_size[0], stride=t.stride[0],
                       padding=t.padding[0], bias=t.bias is not None)
        elif isinstance(t, tnn.ReLU):
            l = ReLU()
        elif isinstance(t, tnn.Flatten):
            V.check_torch_layer(t)
            l = Flatten()
        else:
            raise TypeError(f"unsupported torch layer {type(t).__name__}")
        for a in l.param_names:
            value = getattr(t, a).detach().cpu().float().numpy().astype(DTYPE)
            setattr(l, a, V.as_float_array(value, f"the {type(t).__name__}'s {a}").copy())
        layers.append(l)
    return Sequential(*layers)


# --------------------------------------------------------------------------------------------
# Model files: .npz, no pickle, with a checksum
# --------------------------------------------------------------------------------------------
# Architectures other modules add to what `load` understands: {"GPT": build(arch_json, where) -> model}.
ARCHITECTURES: dict[str, Callable[[str, str], Any]] = {}


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(model: Sequential, path, extra: dict[str, np.ndarray] | None = None) -> int:
    """Save architecture, weights, masks and optional extra arrays to one ``.npz`` file (no pickle).

    A SHA-256 digest of the contents is stored so :func:`load` detects a damaged or edited file
    (an unkeyed checksum: it catches accidents and naive edits, not a forger who recomputes it).

    Parameters
    ----------
    model : Sequential
    path : str or os.PathLike
    extra : dict of {str: array_like}, optional
        More arrays to store (no object arrays).

    Returns
    -------
    int
        The file size in bytes.

    See Also
    --------
    load, load_with_extra

    Examples
    --------
    >>> import os, tempfile
    >>> m = mlp((4, 3, 2), seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save(m, os.path.join(tmp, "m.npz"), extra={"note": np.arange(3)})
    ...     back, extra = load_with_extra(os.path.join(tmp, "m.npz"))
    >>> np.array_equal(back[0].weight, m[0].weight), extra["note"].tolist()
    (True, [0, 1, 2])
    """
    arrays: dict[str, np.ndarray] = {"__arch__": np.array(json.dumps(model.architecture()))}
    for name, value in model.state_dict().items():
        arrays[f"param/{name}"] = value
    for i, layer in enumerate(getattr(model, "layers", [])):
        for attr, mask in layer.masks.items():
            arrays[f"mask/{i}.{attr}"] = np.asarray(mask)
    for key, value in (extra or {}).items():
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError(f"extra[{key!r}] has dtype object, which cannot be saved without pickle")
        arrays[f"extra/{key}"] = value
    arrays["__sha256__"] = np.array(_digest(arrays))
    path = os.fspath(path)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return os.path.getsize(path)


def read_npz(path) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, read with ``allow_pickle=False``; clear errors when corrupt.

    Each array's declared size is checked against the archive before it is read, and at most
    :data:`compresslab._validate.MAX_FILE_BYTES` (2 GiB) are inflated, so a small crafted file
    cannot make it allocate much more than it holds."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    return V.read_npz(path, f"model file {path!r}")


def load(path):
    """Load a model saved by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Sequential
        In evaluation mode, with its masks.

    See Also
    --------
    load_with_extra : the model and the extra arrays saved with it.

    Raises
    ------
    ValueError
        When the file is truncated, holds pickled objects, or was modified after saving.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save(mlp((4, 3, 2), seed=0), os.path.join(tmp, "m.npz"))
    ...     m = load(os.path.join(tmp, "m.npz"))
    >>> len(m), m.training
    (3, False)
    """
    return _read_model(path)[0]


def load_with_extra(path):
    """Load a model saved by :func:`save` and the extra arrays saved with it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model : Sequential
        As :func:`load` returns it.
    extra : dict of {str: numpy.ndarray}
        The ``extra`` arrays given to :func:`save`.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save(mlp((4, 3, 2), seed=0), os.path.join(tmp, "m.npz"), extra={"note": np.arange(3)})
    ...     m, extra = load_with_extra(os.path.join(tmp, "m.npz"))
    >>> len(m), extra["note"].tolist()
    (3, [0, 1, 2])
    """
    model, arrays = _read_model(path)
    return model, {k[6:]: v for k, v in arrays.items() if k.startswith("extra/")}


def _read_model(path):
    """(model, the file's arrays) after checking the file's digest."""
    arrays = read_npz(path)
    if "__arch__" not in arrays or "__sha256__" not in arrays:
        raise ValueError(f"{os.fspath(path)!r} is not a compresslab model file (no architecture or digest)")
    digest = str(arrays.pop("__sha256__"))
    if _digest(arrays) != digest:
        raise ValueError(f"model file {os.fspath(path)!r} was modified after saving (checksum mismatch)")
    where = f"model file {os.fspath(path)!r}"
    try:
        return _model_from_arrays(arrays, where), arrays
    except V.FileDamage:
        raise
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"{where} is damaged ({type(exc).__name__}: {exc})") from None


def _model_from_arrays(arrays: dict, where: str) -> Sequential:
    """The model the arrays of a checked file describe: sizes capped, parameters finite, masks 0/1."""
    arch = str(arrays["__arch__"])
    for kind, build in ARCHITECTURES.items():      # models defined elsewhere (nn.GPT) register here
        if arch.startswith(f'{{"type": "{kind}"'):
            model = build(arch, where)
            own = model.state_dict()
            params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
            for name, value in params.items():
                if name in own:
                    V.check_loaded_param(name, value, own[name].shape, where)
            model.load_state_dict(params)
            return model
    model = _build(json.loads(str(arrays["__arch__"])), where)
    own = model.state_dict()
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    for name, value in params.items():
        if name in own:
            V.check_loaded_param(name, value, own[name].shape, where)
    model.load_state_dict(params)
    for key, mask in arrays.items():
        if key.startswith("mask/"):
            i, attr = V.check_loaded_mask(key, mask, own, where)
            model.layers[i].masks[attr] = mask
    model.eval()
    return model


