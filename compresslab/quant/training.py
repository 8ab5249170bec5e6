"""Quantization-aware training: fake-quantized weights in the forward pass, and the
straight-through estimator in the backward pass (Jacob et al. 2018; Krishnamoorthi 2018 sec. 3.2)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validate as V
from .. import nn
from .grid import QParams
from .linear import SCHEMES, fake_quantize
from .observers import OBSERVERS, qparams

__all__ = ["FakeQuant", "qat"]


class FakeQuant:
    """A ``layer.weight_transform`` that fake-quantizes the weight (QAT).

    forward:  ``w_hat = fake_quantize(w, qparams(w, ...))`` (observer recomputed each step)
    backward: clipped straight-through estimator, as torch's ``FakeQuantize``: the gradient
    passes unchanged where ``qmin <= round(w / scale) + zero_point <= qmax`` and is 0 where the
    weight was clipped.

    Parameters
    ----------
    bits : int in [2, 16], default 8
    scheme : {"symmetric", "affine"}, default "symmetric"
    per_channel : bool, default True
        One scale per output channel (axis 0 of the weight), or one for the tensor.
    observer : {"minmax", "percentile", "mse"}, default "minmax"
        How the range is chosen from ``w`` (see :func:`compresslab.quant.observe_range`);
        ``"moving_average"`` is not accepted.
    narrow_range : bool, default False
        Drop the most negative integer (symmetric [-127, 127] for 8 bits).

    Attributes
    ----------
    qp : QParams or None
        The parameters of the last ``forward`` (None before the first).

    See Also
    --------
    qat : installs one per layer and trains.
    compresslab.quant.fake_quantize, compresslab.quant.qparams

    Notes
    -----
    The integer type follows the scheme's default: signed for symmetric, unsigned for affine.
    With the min-max observer the range is recomputed from ``w`` at every step, so it clips only
    a weight that rounds just past the last level (the symmetric scheme puts a channel's largest
    positive weight on the tie ``qmax + 1/2``); the percentile and MSE observers clip outliers.
    Either way a clipped weight's gradient is 0.

    Examples
    --------
    >>> fq = FakeQuant(bits=3, per_channel=False, observer="mse")     # the MSE range clips the 2.2
    >>> w = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.2])
    >>> [round(v, 2) for v in fq.forward(w).tolist()], fq.backward(w, np.ones(6)).tolist()
    ([-1.22, -0.61, 0.0, 0.61, 1.22, 1.83], [1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    """

    def __init__(self, bits: int = 8, scheme: str = "symmetric", per_channel: bool = True,
                 observer: str = "minmax", narrow_range: bool = False):
        self.bits = V.check_bits(bits)
        self.scheme = V.check_choice(scheme, "scheme", set(SCHEMES))
        self.axis = 0 if per_channel else None
        self.observer = V.check_choice(observer, "observer", set(OBSERVERS) - {"moving_average"})
        self.narrow_range = bool(narrow_range)
        self.qp: QParams | None = None

    def qparams_for(self, w) -> QParams:
        """The quantizer this transform's observer picks for the weight ``w``."""
        return qparams(w, self.bits, self.scheme, axis=self.axis, observer=self.observer,
                       narrow_range=self.narrow_range)

    def forward(self, w):
        """The fake-quantized weight ``fake_quantize(w, qparams_for(w))``; keeps its QParams in ``qp``."""
        self.qp = self.qparams_for(w)
        return fake_quantize(w, self.qp)

    def backward(self, w, grad):
        """Clipped straight-through estimator: ``grad`` where ``w`` fell inside the grid, 0 where clipped."""
        qp = self.qp or self.qparams_for(w)
        scale, zp = qp.shaped_like(w)
        q = np.rint(w.astype(np.float64) / scale) + zp         # quantize's rule, before clamping
        inside = (q >= qp.qmin) & (q <= qp.qmax)
        return (grad * inside).astype(grad.dtype, copy=False)

    def __repr__(self):
        return (f"FakeQuant(bits={self.bits}, scheme={self.scheme!r}, "
                f"per_channel={self.axis is not None}, observer={self.observer!r})")


def qat(model, X, y, bits: int = 4, *, scheme: str = "symmetric", per_channel: bool = True,
        epochs: int = 5, lr: float = 1e-3, batch_size: int = 32, seed: Any = 0, val=None,
        progress: bool = True, observer: str = "minmax"):
    """Quantization-aware training: fine-tune ``model`` (in place) with fake-quantized weights.

    Every Linear/Conv2d layer gets a :class:`FakeQuant` weight transform, so the forward pass
    sees the ``bits``-bit weights and the straight-through estimator lets the float "shadow"
    weights keep learning (Jacob et al. 2018; Krishnamoorthi 2018 sec. 3.2). Like ``nn.fit``,
    it trains the model you pass (``model.copy()`` first to keep the original) and returns the
    History. The model keeps its transforms: evaluate it directly, or pass it to
    :func:`quantize_model`, which quantizes the trained shadow weights.

    Forward: ``w_hat = fake_quantize(w, qparams(w))``; backward: ``dL/dw = dL/dw_hat`` where
    ``w`` lies inside the grid, 0 where it was clipped.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        With at least one Linear or Conv2d layer; trained in place.
    X, y : array_like
        Training inputs and class labels.
    bits : int in [2, 16], default 4
        Weight bits.
    scheme : {"symmetric", "affine"}, default "symmetric"
    per_channel : bool, default True
        One scale per output channel, or one per layer.
    epochs : int >= 0, default 5
    lr : float > 0, default 1e-3
        Learning rate of ``nn.fit``'s default optimizer (Adam).
    batch_size : int >= 1, default 32
    seed : int, numpy.random.Generator or None, default 0
        Order of the mini-batches.
    val : tuple (X_val, y_val), optional
        Validation accuracy is recorded after each epoch.
    progress : bool, default True
        Show a progress bar.
    observer : {"minmax", "percentile", "mse"}, default "minmax"
        How each step picks the weight range (see :class:`FakeQuant`).

    Returns
    -------
    compresslab.nn.History
        Loss (and validation accuracy) per epoch.

    See Also
    --------
    FakeQuant, compresslab.quant.quantize_model, compresslab.nn.fit

    Notes
    -----
    Any ``weight_transform`` the layers had before is replaced. Activations are not
    fake-quantized during training; :func:`quantize_model` calibrates them afterwards.

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> X, y, m = g.normal(size=(64, 4)), g.integers(0, 2, 64), nn.mlp((4, 3, 2), seed=0)
    >>> hist = qat(m, X, y, bits=4, epochs=2, progress=False)                # trains m itself
    >>> len(hist.loss), m[0].weight_transform
    (2, FakeQuant(bits=4, scheme='symmetric', per_channel=True, observer='minmax'))
    """
    layers = nn.weighted_layers(model)
    before = [layer.weight_transform for layer in layers]
    for layer in layers:
        layer.weight_transform = FakeQuant(bits, scheme, per_channel, observer)
    try:
        return nn.fit(model, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, val=val,
                      progress=progress, desc=f"QAT {bits}-bit")
    except Exception:           # bad X or y: leave the model as it was given
        for layer, transform in zip(layers, before):
            layer.weight_transform = transform
        raise
