"""Weight-only quantization of a whole language model: one per-layer method on every Linear of a GPT.

The per-layer methods live in their own modules (:mod:`~compresslab.quant.groups` for round to
nearest, :mod:`~compresslab.quant.gptq`, :mod:`~compresslab.quant.awq`,
:mod:`~compresslab.quant.gguf`); this module runs one of them over the model the way their
reference implementations do:

* the Linear layers of the transformer blocks are quantized (``qkv``, ``proj``, ``fc1``, ``fc2``);
  the embeddings (tied with the output layer), LayerNorms and biases stay float32 (GPTQ's and
  AWQ's reference code leave the embeddings and the output layer in float16 too; llama.cpp's
  files keep the output layer at a higher-precision type);
* calibration-based methods (GPTQ, AWQ) go block by block: the inputs of block ``i``'s layers are
  recorded with blocks ``0 .. i-1`` already quantized, so each block corrects the error the
  earlier ones made (GPTQ's reference code does this; AWQ's computes each block's inputs with the
  float blocks before it, a difference that matters little here);
* the result is a model that computes with the dequantized weights (what a weight-only kernel
  computes, up to float rounding) and the real number of bytes the packed weights take.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as V
from ..nn import GPT

__all__ = ["METHODS", "CompressedGPT", "calibration_windows", "quantize_gpt", "layer_output_error"]

METHODS = ("rtn", "gptq", "awq", "Q8_0", "Q4_0", "Q4_1")


@dataclass
class CompressedGPT:
    """A GPT whose Linear weights were quantized, and what storing them takes (:func:`quantize_gpt` makes it).

    Parameters
    ----------
    model : GPT
        Computes with the dequantized weights.
    method : str
    bits : int or None
        Bits per weight code (None for the GGUF formats, whose bits per weight include the scales).
    group_size : int or None
    layer_bytes : dict of {str: int}
        Real bytes of every quantized Linear weight (packed codes, scales, zero points; for AWQ also
        its per-input-channel scales as float16, counted for every layer although three of the four
        Linears of a block could fold them into the operation before them: only fc2, after GELU,
        needs them stored).
    other_bytes : int
        Everything else at float32: embeddings, positions, LayerNorms, biases.
    layer_error : dict of {str: float}
        Relative error of every layer's output on the calibration inputs it saw,
        ``||X W^T - X W_hat^T|| / ||X W^T||``.

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> q = quantize_gpt(GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16), seed=0),
    ...                  "rtn", bits=8, group_size=32)
    >>> q.layer_bytes["blocks.0.mlp.fc1"]       # 128 x 32 codes of 1 byte + 128 groups x (2 + 1) bytes
    4480
    >>> q
    CompressedGPT(rtn, bits=8, group_size=32: 50,176 bytes, 8.75 bits per Linear weight)
    """

    model: GPT
    method: str
    bits: int | None
    group_size: int | None
    layer_bytes: dict = field(default_factory=dict)
    other_bytes: int = 0
    layer_error: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes of the whole model: quantized Linear weights plus the float32 rest."""
        return int(sum(self.layer_bytes.values()) + self.other_bytes)

    @property
    def bits_per_weight(self) -> float:
        """Average storage bits of one Linear weight, scales and zero points included."""
        n = sum(layer.weight.size for layer in self.model.linear_layers().values())
        return 8 * sum(self.layer_bytes.values()) / n

    def __repr__(self) -> str:
        b = "" if self.bits is None else f", bits={self.bits}"
        g = "" if self.group_size is None else f", group_size={self.group_size}"
        return (f"CompressedGPT({self.method}{b}{g}: {self.nbytes:,} bytes, "
                f"{self.bits_per_weight:.2f} bits per Linear weight)")


def calibration_windows(tokens, n: int = 32, context: int = 256, seed: Any = 0) -> np.ndarray:
    """``n`` random windows of ``context`` tokens from a token stream: calibration data.

    Each window starts at a uniformly drawn position (seeded), so windows may overlap.

    Parameters
    ----------
    tokens : 1-D array of int >= 0
        The stream, e.g. ``compresslab.data.load_text().train``.
    n : int in [1, 65536], default 32
    context : int in [1, 65536], default 256
        Tokens per window (at most the model's ``block_size``).
    seed : int or numpy.random.Generator, default 0

    Returns
    -------
    numpy.ndarray of int64, shape (n, context)

    Examples
    --------
    >>> calibration_windows(np.arange(1000), n=2, context=4, seed=0).tolist()
    [[848, 849, 850, 851], [635, 636, 637, 638]]
    """
    tokens = V.as_int_array(tokens, "tokens", 0)
    if tokens.ndim != 1:
        raise ValueError(f"tokens must be a 1-D array of token ids, got shape {tokens.shape}")
    n = V.check_int(n, "n", 1, 1 << 16)
    context = V.check_int(context, "context", 1, 1 << 16)
    if len(tokens) < context:
        raise ValueError(f"need at least context={context} tokens, got {len(tokens)}")
    starts = V.rng(seed).integers(0, len(tokens) - context + 1, n)
    return np.stack([tokens[s:s + context] for s in starts]).astype(np.int64)


def layer_output_error(X: np.ndarray, w: np.ndarray, w_hat: np.ndarray) -> float:
    """``||X W^T - X W_hat^T||_F / ||X W^T||_F``: how much a layer's output moved (in float64).

    Parameters
    ----------
    X : array, shape (n, in_features)
        The layer's inputs, one token a row.
    w, w_hat : array, shape (out_features, in_features)
        The weights before and after compression.

    Returns
    -------
    float
        0 when the outputs are unchanged; 1 when ``w_hat`` is all zeros.

    Examples
    --------
    >>> X, w = np.eye(2), np.array([[3.0, 4.0]])
    >>> layer_output_error(X, w, np.array([[3.0, 3.0]]))      # ||(0, 1)|| / ||(3, 4)||
    0.2
    """
    X = V.as_float_array(X, "X", ndim=2).astype(np.float64)
    w = V.as_float_array(w, "w", ndim=2).astype(np.float64)
    w_hat = V.as_float_array(w_hat, "w_hat", ndim=2).astype(np.float64)
    if w_hat.shape != w.shape or X.shape[1] != w.shape[1]:
        raise ValueError(f"X (n, in_features), w and w_hat (out_features, in_features) disagree: "
                         f"shapes {X.shape}, {w.shape}, {w_hat.shape}")
    ref = X @ w.T
    return float(np.linalg.norm(X @ w_hat.T - ref) / max(np.linalg.norm(ref), 1e-30))


def _quantize_layer(w, X, method, bits, group_size, symmetric, damp, n_grid):
    """(dequantized weight the layer computes with, bytes it takes) for one Linear."""
    from . import awq as _awq
    from . import gguf as _gguf
    from . import gptq as _gptq
    from . import groups as _groups

    if method in ("Q8_0", "Q4_0", "Q4_1"):
        raw = _gguf.gguf_quantize(w, method)
        return _gguf.gguf_dequantize(raw, method).reshape(w.shape), int(raw.nbytes)
    if method == "rtn":
        gq = _groups.quantize_groups(w, bits=bits, group_size=group_size, symmetric=symmetric)
        return gq.dequantize(), gq.nbytes()
    if method == "gptq":
        w_hat, gq = _gptq.gptq(w, _gptq.hessian(X), bits=bits, group_size=group_size, damp=damp,
                               symmetric=symmetric)
        return w_hat, gq.nbytes()
    # awq: the layer computes with Q(W diag(s)) diag(1/s); s is folded into the operation before
    # it in a deployed model, but we count its float16 numbers too (fc2's input comes from GELU)
    w_hat, scales, gq = _awq.awq(w, X, bits=bits, group_size=group_size, n_grid=n_grid, symmetric=symmetric)
    return w_hat, gq.nbytes() + 2 * int(np.size(scales))


def quantize_gpt(model: GPT, method: str = "rtn", bits: int = 4, group_size: int | None = 128,
                 calibration=None, *, symmetric: bool = False, damp: float = 0.01,
                 n_grid: int = 20) -> CompressedGPT:
    """Quantize every Linear weight of ``model`` with one method; return the quantized model and its bytes.

    Parameters
    ----------
    model : GPT
        Left unchanged.
    method : {"rtn", "gptq", "awq", "Q8_0", "Q4_0", "Q4_1"}
        Round to nearest in groups; GPTQ (Frantar et al. 2022); AWQ (Lin et al. 2023); or a GGUF
        block format of llama.cpp (blocks of 32, its own bits and scales: ``bits`` and
        ``group_size`` are not used).
    bits : int in 2..8, default 4
    group_size : int or None, default 128
        Consecutive input channels sharing one scale and zero point; None: one per output channel.
    calibration : array of int, shape (n, T), T <= block_size
        Token windows whose activations GPTQ and AWQ use (:func:`calibration_windows`); also
        used to report ``layer_error`` (optional for RTN and GGUF).
    symmetric : bool, default False
    damp : float, default 0.01
        GPTQ's dampening, as a fraction of the Hessian's mean diagonal.
    n_grid : int in [1, 1000], default 20
        AWQ's number of exponents tried.

    Returns
    -------
    CompressedGPT

    Raises
    ------
    ValueError, TypeError
        A bad argument, named, whether or not ``method`` uses it; calibration tokens outside
        ``[0, vocab_size)`` or windows longer than ``block_size``.

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16), seed=0)
    >>> q = quantize_gpt(m, "rtn", bits=4, group_size=32)
    >>> round(q.bits_per_weight, 2)           # 4-bit codes + a float16 scale and a 4-bit zero per 32
    4.62
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {METHODS}, got {type(method).__name__}")
    method = V.check_choice(method, "method", METHODS)
    gguf = method.startswith("Q")
    bits = V.check_int(bits, "bits", 2, 8)
    if group_size is not None:
        group_size = V.check_int(group_size, "group_size", 1)
    symmetric, damp = V.check_bool(symmetric, "symmetric"), V.check_float(damp, "damp", 0.0)
    n_grid = V.check_int(n_grid, "n_grid", 1, 1000)
    if method in ("gptq", "awq") and calibration is None:
        raise ValueError(f"method={method!r} needs calibration tokens (see calibration_windows)")
    if calibration is not None:
        c = model.config
        calibration = V.check_token_windows(calibration, "calibration", c.vocab_size, c.block_size)
    q = model.copy()
    out = CompressedGPT(q, method, None if gguf else bits, None if gguf else group_size)
    layers = q.linear_layers()
    names = list(layers)
    inputs: dict[str, np.ndarray] = {}
    for i in range(q.config.n_layer):
        block = [n for n in names if n.startswith(f"blocks.{i}.")]
        if calibration is not None:                 # inputs with blocks 0 .. i-1 already quantized
            inputs = q.linear_inputs(calibration)
        for name in block:
            layer = layers[name]
            w = layer.weight
            X = inputs.get(name)
            w_hat, nbytes = _quantize_layer(w, X, method, bits, group_size, symmetric, damp, n_grid)
            if X is not None:
                out.layer_error[name] = layer_output_error(X, w, w_hat)
            layer.weight = np.asarray(w_hat, dtype=np.float32)
            out.layer_bytes[name] = nbytes
    quantized = {f"{n}.weight" for n in names}
    out.other_bytes = sum(v.nbytes for k, v in q.state_dict().items() if k not in quantized)
    return out
