"""Cost counting: what a forward pass costs before anything is timed.

MACs per layer (Linear: ``batch * in * out``; Conv2d: ``batch * out_ch * H_out * W_out * in_ch
* k * k``), FLOPs (= 2 x MACs), parameter and activation bytes at any bit width, and the
arithmetic intensity ``I = FLOPs / bytes moved`` that places a layer on the roofline
(:mod:`compresslab.speed.laws`). FLOPs are not latency: a dense kernel multiplies the zeros of
a pruned layer all the same (``nonzero=True`` counts what a sparse kernel *could* skip).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import _validate as V

__all__ = ["LayerCost", "ModelCost", "layer_costs", "model_cost", "arithmetic_intensity"]


@dataclass
class LayerCost:
    """What one layer costs for one forward pass of a batch.

    ``flops = 2 * macs`` (one multiply and one add per MAC; bias adds and ReLUs are not counted,
    the usual convention). ``bytes`` = parameters + input + output activations, i.e. the least
    memory traffic if each is moved once; ``intensity = flops / bytes``.

    Parameters
    ----------
    name : str
        ``"index: Kind"``, e.g. ``"0: Linear"``.
    kind : str
        The layer's class name: Linear, Conv2d, ReLU, Flatten.
    in_shape, out_shape : tuple of int
        Shape of one input / output, without the batch.
    macs : int
        Multiply-accumulates for the whole batch.
    params : int
        Parameters (weights and biases).
    param_bytes : int
        Bytes of the stored parameters at the bit widths given to :func:`layer_costs`.
    act_in_bytes, act_out_bytes : int
        Bytes of the input and output activations of the whole batch.

    Attributes
    ----------
    flops : int
        ``2 * macs``.
    bytes : int
        ``param_bytes + act_in_bytes + act_out_bytes``.
    intensity : float
        ``flops / bytes``, FLOP per byte.

    See Also
    --------
    layer_costs : which makes them.
    ModelCost : the totals of a model.

    Examples
    --------
    The first layer of a 4-3-2 MLP at batch 2: ``2 * 4 * 3`` MACs, 15 float32 parameters:

    >>> from compresslab import nn
    >>> c = layer_costs(nn.mlp((4, 3, 2)), batch=2)[0]
    >>> c.name, c.in_shape, c.out_shape, c.macs, c.flops
    ('0: Linear', (4,), (3,), 24, 48)
    >>> c.param_bytes, c.act_in_bytes, c.act_out_bytes, c.bytes, round(c.intensity, 3)
    (60, 32, 24, 116, 0.414)
    """

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    macs: int
    params: int
    param_bytes: int
    act_in_bytes: int
    act_out_bytes: int

    @property
    def flops(self) -> int:
        """``2 * macs``."""
        return 2 * self.macs

    @property
    def bytes(self) -> int:
        """Parameters + input + output activations, in bytes."""
        return self.param_bytes + self.act_in_bytes + self.act_out_bytes

    @property
    def intensity(self) -> float:
        """``flops / bytes`` (FLOP per byte)."""
        return arithmetic_intensity(self.flops, self.bytes)


@dataclass
class ModelCost:
    """Per-layer costs and model totals (activations counted once: the input plus every output).

    ``macs = sum of the layers' MACs``, ``flops = 2 * macs``,
    ``activation_bytes = first layer's input + every layer's output``,
    ``bytes = param_bytes + activation_bytes``, ``intensity = flops / bytes``.

    Parameters
    ----------
    layers : list of LayerCost
        From :func:`layer_costs`, in order.
    batch : int
        Inputs per forward pass.

    Attributes
    ----------
    macs, flops, params, param_bytes, activation_bytes, bytes : int
        Model totals, as above.
    intensity : float
        FLOP per byte of the whole forward pass.

    See Also
    --------
    model_cost : which makes one.
    arithmetic_intensity

    Notes
    -----
    ``print(cost)`` shows :meth:`table`.

    Examples
    --------
    >>> from compresslab import nn
    >>> cost = model_cost(nn.mlp((4, 3, 2)), batch=2)
    >>> cost.macs, cost.flops, cost.activation_bytes, cost.bytes
    (36, 72, 96, 188)
    >>> print(cost)
    layer      out shape  MACs  param B  act out B  FLOP/B
    0: Linear  (3,)         24       60         24     0.4
    1: ReLU    (3,)          0        0         24     0.0
    2: Linear  (2,)         12       32         16     0.3
    total                   36       92         96     0.4
    """

    layers: list[LayerCost]
    batch: int

    @property
    def macs(self) -> int:
        """Total multiply-accumulates."""
        return sum(l.macs for l in self.layers)

    @property
    def flops(self) -> int:
        """``2 * macs``."""
        return 2 * self.macs

    @property
    def params(self) -> int:
        """Total parameters."""
        return sum(l.params for l in self.layers)

    @property
    def param_bytes(self) -> int:
        """Total bytes of stored parameters."""
        return sum(l.param_bytes for l in self.layers)

    @property
    def activation_bytes(self) -> int:
        """The input's bytes plus every layer's output bytes (0 without layers)."""
        if not self.layers:
            return 0
        return self.layers[0].act_in_bytes + sum(l.act_out_bytes for l in self.layers)

    @property
    def bytes(self) -> int:
        """``param_bytes + activation_bytes``."""
        return self.param_bytes + self.activation_bytes

    @property
    def intensity(self) -> float:
        """``flops / bytes`` (FLOP per byte)."""
        return arithmetic_intensity(self.flops, self.bytes)

    def table(self) -> str:
        """Plain-text table, a row per layer and the totals (whose "act out B" is ``activation_bytes``)."""
        head = ("layer", "out shape", "MACs", "param B", "act out B", "FLOP/B")
        rows = [head] + [(l.name, str(l.out_shape), f"{l.macs:,}", f"{l.param_bytes:,}",
                          f"{l.act_out_bytes:,}", f"{l.intensity:.1f}") for l in self.layers]
        rows.append(("total", "", f"{self.macs:,}", f"{self.param_bytes:,}",
                     f"{self.activation_bytes:,}", f"{self.intensity:.1f}"))
        w = [max(len(r[c]) for r in rows) for c in range(len(head))]
        return "\n".join("  ".join(f"{r[c]:<{w[c]}}" if c < 2 else f"{r[c]:>{w[c]}}"
                                   for c in range(len(head))) for r in rows)

    def __str__(self) -> str:
        return self.table()


def arithmetic_intensity(flops: float, nbytes: float) -> float:
    """``I = FLOPs / bytes moved`` (FLOP per byte): above the roofline's ridge point an operation
    is compute-bound, below it memory-bound.

    Parameters
    ----------
    flops : float >= 0
        Floating-point operations, e.g. ``2 * MACs``.
    nbytes : float > 0
        Bytes moved to and from memory.

    Returns
    -------
    float
        FLOP per byte.

    See Also
    --------
    compresslab.speed.laws.Roofline : where an intensity meets this machine's limits.
    LayerCost.intensity, ModelCost.intensity

    Examples
    --------
    A 1024 x 1024 float32 layer at batch 1 does 2 FLOPs per weight it reads (4 bytes each):

    >>> n = 1024
    >>> round(arithmetic_intensity(2 * n * n, 4 * (n * n + 2 * n)), 3)
    0.499
    """
    V.check_float(flops, "flops", 0)
    V.check_float(nbytes, "nbytes", 0, low_open=True)
    return float(flops) / float(nbytes)


def _as_compresslab(model):
    from .. import nn
    if isinstance(model, nn.Sequential):
        return model
    if _is_torch_module(model):
        return nn.from_torch(model)
    raise TypeError(f"model must be a compresslab.nn.Sequential or a torch nn.Sequential, got "
                    f"{type(model).__name__}")


def _is_torch_module(m) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(m, torch.nn.Module)


def layer_costs(model, batch: int = 1, input_shape: Sequence[int] | None = None, *,
                bits: int = 32, act_bits: int = 32, bias_bits: int | None = None,
                nonzero: bool = False) -> list[LayerCost]:
    """MACs, parameters and bytes of every layer of ``model`` for a batch of ``batch`` inputs.

    Linear: ``MACs = batch * in * out``. Conv2d: ``MACs = batch * out_ch * H_out * W_out * in_ch
    * k * k``. With ``nonzero=True`` only non-zero weights count: what a sparse kernel *could*
    skip -- a dense kernel multiplies the zeros anyway, which is why FLOPs are not latency.

    Bytes: ``param_bytes = ceil(((params - biases) * bits + biases * bias_bits) / 8)``,
    ``act_in_bytes = ceil(batch * prod(in_shape) * act_bits / 8)``, the same for the output.
    Conv2d output size: ``H_out = (H + 2 * padding - k) // stride + 1``, likewise ``W_out``.

    Parameters
    ----------
    model : compresslab.nn.Sequential or torch.nn.Sequential
        Of Linear, Conv2d, ReLU and Flatten layers (a torch model goes through
        :func:`compresslab.nn.from_torch`).
    batch : int >= 1
        Inputs per forward pass.
    input_shape : sequence of int or None
        Shape of one input (default: ``(in_features,)`` of the first Linear; required otherwise).
    bits, act_bits : int in [1, 64]
        Bits per stored weight / activation (8 for an int8 model).
    bias_bits : int in [1, 64] or None
        Bits per stored bias value. Default: 32 when ``bits < 32``, since quantized layers
        keep 32-bit biases (int32 in Jacob et al. 2018 and TFLite, float32 in torch's dynamic
        quantization); else ``bits``.
    nonzero : bool
        Count MACs of non-zero weights only.

    Returns
    -------
    list of LayerCost
        One per layer, in order (0 MACs for ReLU and Flatten).

    Raises
    ------
    ValueError
        When a layer's expected input shape does not match the shape reaching it.

    See Also
    --------
    model_cost : the totals.

    Examples
    --------
    >>> from compresslab import nn
    >>> [c.macs for c in layer_costs(nn.mlp((4, 3, 2)))]
    [12, 0, 6]
    >>> [c.out_shape for c in layer_costs(nn.mlp((4, 3, 2)))]
    [(3,), (3,), (2,)]
    """
    from .. import nn
    model = _as_compresslab(model)
    V.check_int(batch, "batch", 1)
    V.check_bits(bits, "bits", 1, 64)
    V.check_bits(act_bits, "act_bits", 1, 64)
    if bias_bits is None:
        bias_bits = 32 if bits < 32 else bits
    V.check_bits(bias_bits, "bias_bits", 1, 64)
    if input_shape is None:
        first = model.layers[0] if model.layers else None
        if not isinstance(first, nn.Linear):
            raise ValueError("input_shape is required unless the model starts with a Linear layer")
        input_shape = (first.in_features,)
    shape = tuple(int(s) for s in input_shape)
    out: list[LayerCost] = []
    for i, layer in enumerate(model.layers):
        params = sum(getattr(layer, a).size for a in layer.param_names)
        n_bias = layer.bias.size if "bias" in layer.param_names else 0
        param_bytes = math.ceil(((params - n_bias) * bits + n_bias * bias_bits) / 8)
        if isinstance(layer, nn.Linear):
            if shape != (layer.in_features,):
                raise ValueError(f"layer {i} expects ({layer.in_features},), gets {shape}")
            new = (layer.out_features,)
            w = np.count_nonzero(layer.weight) if nonzero else layer.weight.size
            macs = batch * int(w)
        elif isinstance(layer, nn.Conv2d):
            if len(shape) != 3 or shape[0] != layer.in_channels:
                raise ValueError(f"layer {i} expects ({layer.in_channels}, H, W), gets {shape}")
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            ho, wo = (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1
            new = (layer.out_channels, ho, wo)
            w = np.count_nonzero(layer.weight) if nonzero else layer.weight.size
            macs = batch * ho * wo * int(w)
        elif isinstance(layer, nn.Flatten):
            new, macs = (int(np.prod(shape)),), 0
        else:
            new, macs = shape, 0
        nin, nout = int(np.prod(shape)), int(np.prod(new))
        out.append(LayerCost(f"{i}: {type(layer).__name__}", type(layer).__name__, shape, new,
                             macs, int(params), param_bytes,
                             math.ceil(batch * nin * act_bits / 8),
                             math.ceil(batch * nout * act_bits / 8)))
        shape = new
    return out


def model_cost(model, batch: int = 1, input_shape: Sequence[int] | None = None, *,
               bits: int = 32, act_bits: int = 32, bias_bits: int | None = None,
               nonzero: bool = False) -> ModelCost:
    """Totals of :func:`layer_costs` (same arguments): MACs, FLOPs, bytes, intensity.

    ``FLOPs = 2 x MACs``; ``intensity = FLOPs / (parameter bytes + activation bytes)``.

    Parameters
    ----------
    model, batch, input_shape, bits, act_bits, bias_bits, nonzero
        As in :func:`layer_costs`.

    Returns
    -------
    ModelCost
        The per-layer costs and their totals.

    See Also
    --------
    layer_costs, arithmetic_intensity

    Examples
    --------
    A 4-3-2 MLP at batch 2: ``2 * (4 * 3 + 3 * 2)`` MACs, 23 float32 parameters:

    >>> from compresslab import nn
    >>> c = model_cost(nn.mlp((4, 3, 2)), batch=2)
    >>> c.macs, c.params, c.param_bytes
    (36, 23, 92)
    >>> model_cost(nn.mlp((4, 3, 2)), batch=2, bits=8).param_bytes      # int8 weights, float32 biases
    38
    """
    return ModelCost(layer_costs(model, batch, input_shape, bits=bits, act_bits=act_bits,
                                 bias_bits=bias_bits, nonzero=nonzero), batch)
