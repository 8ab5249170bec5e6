"""Post-training quantization of a whole model: quantized weights, calibrated activations."""
from __future__ import annotations

import math

from .. import _validate as V
from .. import nn
from .linear import fake_quantize
from .observers import qparams

__all__ = ["QuantizedModel", "quantize_model", "model_size"]


class QuantizedModel:
    """A model whose weighted layers compute with fake-quantized weights and inputs.

    ``forward(x)``: before each Linear/Conv2d layer the activation is fake-quantized with the
    calibrated ``act_qparams`` (8-bit affine by default), and the layer uses its fake-quantized
    weight. Works with ``nn.evaluate`` / ``nn.predict``. Built by :func:`quantize_model`.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        The model to run, its weights already fake-quantized.
    weight_qparams : list of QParams
        The weight quantizer of each Linear/Conv2d layer, in order.
    act_qparams : list of QParams or None
        The quantizer of each weighted layer's input, in order; None leaves activations in float.
    bits : int
        Weight bits (used by :meth:`nbytes`).
    act_bits : int or None
        Activation bits (informational).

    Attributes
    ----------
    layers : list
        ``model.layers``.

    See Also
    --------
    quantize_model

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(16, 4))
    >>> qm = quantize_model(nn.mlp((4, 3, 2), seed=0), bits=4, calib=X)
    >>> qm, qm(X).shape, qm.nbytes()
    (QuantizedModel(bits=4, act_bits=8, layers=2), (16, 2), 69)
    """

    def __init__(self, model, weight_qparams, act_qparams, bits, act_bits):
        self.model = model
        self.weight_qparams = weight_qparams
        self.act_qparams = act_qparams
        self.bits = bits
        self.act_bits = act_bits
        self.layers = model.layers

    def forward(self, x):
        """Logits for ``x``: each weighted layer's input fake-quantized, then the layer applied."""
        k = 0
        for layer in self.model.layers:
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                if self.act_qparams is not None:
                    x = fake_quantize(x, self.act_qparams[k])
                k += 1
            x = layer.forward(x)
        return x

    __call__ = forward

    def eval(self):
        """Put the underlying model in evaluation mode; returns ``self``."""
        self.model.eval()
        return self

    def nbytes(self) -> int:
        """Bytes to store the quantized model: ``bits``-bit weights, float32 biases, and one
        float32 scale + one integer zero point per quantizer."""
        return model_size(self.model, self.bits, per_channel=any(
            qp.per_channel for qp in self.weight_qparams))

    def __repr__(self):
        return f"QuantizedModel(bits={self.bits}, act_bits={self.act_bits}, layers={len(self.weight_qparams)})"


def quantize_model(model, bits: int = 8, *, per_channel: bool = True, calib=None,
                   scheme: str = "symmetric", act_bits: int | None = 8, observer: str = "minmax",
                   act_observer: str = "minmax", narrow_range: bool = False) -> QuantizedModel:
    """Post-training quantization (PTQ) of every Linear/Conv2d layer of ``model``.

    Weights: ``w_hat = fake_quantize(w, qparams(w, bits, scheme, axis=0 if per_channel))``.
    Activations (if ``act_bits``): the input of each weighted layer is observed on the
    calibration data ``calib`` (affine, per tensor) and fake-quantized at inference.
    A model trained with :func:`qat` is quantized from its float shadow weights.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        With at least one Linear or Conv2d layer; left unchanged (a copy is quantized).
    bits : int in [2, 16], default 8
        Weight bits.
    per_channel : bool, default True
        One weight scale per output channel (axis 0), or one per layer.
    calib : array_like, shape (N, ...), optional
        Calibration inputs (one array); required unless ``act_bits=None``.
    scheme : {"symmetric", "affine"}, default "symmetric"
        Weight scheme (activations are always affine).
    act_bits : int in [2, 16] or None, default 8
        Activation bits; None quantizes the weights only.
    observer : {"minmax", "moving_average", "percentile", "mse"}, default "minmax"
        Range of the weights (see :func:`compresslab.quant.observe_range`).
    act_observer : same choices, default "minmax"
        Range of the activations, from all of ``calib`` at once.
    narrow_range : bool, default False
        Drop the most negative weight integer (symmetric [-127, 127] for 8 bits).

    Returns
    -------
    QuantizedModel (use ``nn.evaluate(qm, X, y)``)

    Raises
    ------
    ValueError
        If ``act_bits`` is set and ``calib`` is None.

    See Also
    --------
    QuantizedModel, qat, compresslab.quant.qparams

    Notes
    -----
    The copy's weight transforms are removed before its weights are quantized. The activation
    ranges are observed by running ``calib`` through the copy with its weights already
    quantized and its activations still in float. The result is in evaluation mode.

    Examples
    --------
    >>> import numpy as np
    >>> m, X = nn.mlp((4, 3, 2), seed=0), np.random.default_rng(0).normal(size=(16, 4))
    >>> qm = quantize_model(m, bits=4, calib=X)                     # m itself is left unchanged
    >>> qm, nn.evaluate(qm, X, nn.predict(m, X).argmax(1))          # agrees with m on all 16
    (QuantizedModel(bits=4, act_bits=8, layers=2), 1.0)
    """
    bits = V.check_bits(bits)
    if act_bits is not None:
        act_bits = V.check_bits(act_bits, "act_bits")
        if calib is None:
            raise ValueError("calib (calibration inputs) is required to quantize activations; "
                             "pass act_bits=None for weights only")
    q = nn.check_model(model).copy()
    wqps = []
    for layer in nn.weighted_layers(q):
        layer.weight_transform = None
        qp = qparams(layer.weight, bits, scheme, axis=0 if per_channel else None, observer=observer,
                     narrow_range=narrow_range)
        layer.weight = fake_quantize(layer.weight, qp)
        wqps.append(qp)
    aqps = None
    if act_bits is not None:
        calib = V.as_float32(calib, "calib")
        inputs = []
        x = calib
        for layer in q.layers:      # collect the float input of each weighted layer
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                inputs.append(x)
            x = layer.forward(x)
        aqps = [qparams(a, act_bits, "affine", observer=act_observer) for a in inputs]
    q.eval()
    return QuantizedModel(q, wqps, aqps, bits, act_bits)


def model_size(model, bits: int = 32, *, per_channel: bool = False) -> int:
    """Bytes of a model stored with ``bits``-bit weights: packed weights (rounded up to whole
    bytes per layer), float32 biases, and for bits < 32 a float32 scale and an int32 zero point
    per quantizer (per output channel if ``per_channel``).

    Per Linear/Conv2d layer: ``ceil(n_weights * bits / 8) + 4 * n_biases + 8 * n_quantizers``
    (the last term only for ``bits < 32``). Other layers hold no parameters.

    Parameters
    ----------
    model : compresslab.nn.Sequential
        With at least one Linear or Conv2d layer.
    bits : int in [1, 32], default 32
        Bits per weight; 32 means float32 weights with no quantizer.
    per_channel : bool, default False
        One quantizer per output channel instead of one per layer.

    Returns
    -------
    int

    See Also
    --------
    compresslab.nn.nbytes, QuantizedModel.nbytes

    Examples
    --------
    >>> m = nn.mlp((4, 3, 2), seed=0)               # weights 12 + 6, biases 3 + 2
    >>> model_size(m), model_size(m, 8), model_size(m, 8, per_channel=True)
    (92, 54, 78)
    """
    V.check_bits(bits, low=1, high=32)
    total = 0
    for layer in nn.weighted_layers(model):
        total += math.ceil(layer.weight.size * bits / 8)
        if layer.bias is not None:
            total += 4 * layer.bias.size
        if bits < 32:
            total += 8 * (layer.weight.shape[0] if per_channel else 1)
    return total
