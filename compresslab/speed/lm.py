"""Decoding a language model: the bytes each new token must read, and int8 weights on the CPU.

A language model generates one token at a time. At batch 1 every Linear layer multiplies its
weight matrix by a single vector: 2 FLOPs per weight read, an arithmetic intensity of 0.5 FLOP
per byte for float32 weights, far left of any CPU's or GPU's ridge point
(:class:`~compresslab.speed.laws.Roofline`). Decoding is memory bound: each step reads every
weight once and the key/value cache of the tokens so far, so

    time per token >= (weight bytes + KV-cache bytes) / memory bandwidth

(:func:`decode_bytes_per_token`, :func:`decode_time_bound`, :func:`kv_cache_bytes`). Fewer bytes
per weight is what makes decoding faster: int8 weights read 4 times fewer bytes than float32 ones
(:func:`int8_weight_only_linear`, torch's ``aten._weight_int8pack_mm`` CPU kernel), activations
staying in floating point ("weight-only" quantization).

Time these with :func:`compresslab.speed.compare`; measure the bandwidth with
:func:`compresslab.speed.measure_bandwidth`.
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any

from .. import _validate as V

__all__ = ["kv_cache_bytes", "decode_bytes_per_token", "decode_time_bound", "int8_weight_only_linear",
           "INT8_KERNELS"]

INT8_KERNELS = ("aten._weight_int8pack_mm", "dequantize+matmul")
"""The two ways :func:`int8_weight_only_linear` computes ``x @ (q * scale)^T``."""


# --------------------------------------------------------------------------------------------
# Bytes per token
# --------------------------------------------------------------------------------------------
def kv_cache_bytes(n_layer: int, n_head: int, head_dim: int, tokens: int, batch: int = 1, bits: int = 32,
                   scale_bytes_per_vector: int | None = None) -> int:
    """Bytes of the key/value cache of ``tokens`` tokens:

    ``2 * n_layer * batch * n_head * tokens * (ceil(head_dim * bits / 8) + scale_bytes_per_vector)``

    The layout: keys and values (the 2) are each an array of shape ``(n_layer, batch, n_head,
    tokens, head_dim)`` holding ``bits``-bit numbers, the ``head_dim`` numbers of one *vector*
    (one token's key, or value, in one head of one layer) packed into ``ceil(head_dim * bits / 8)``
    bytes. A quantized cache also keeps a scale per vector: two more arrays of shape
    ``(n_layer, batch, n_head, tokens)``, ``scale_bytes_per_vector`` bytes each entry (4: one
    float32 scale per token, per head, per K and V). For ``bits`` 16 and 32 (float16, bfloat16,
    float32) there is no scale. Without scales this is ``2 * n_layer * n_head * head_dim * tokens
    * batch * bits / 8``.

    Parameters
    ----------
    n_layer, n_head, head_dim : int >= 1
        Transformer blocks, key/value heads (with grouped-query attention, the number of key/value
        heads, not of query heads), and numbers per head (``n_embd / n_head``).
    tokens : int >= 0
        Tokens in the cache (prompt and generated so far).
    batch : int >= 1, default 1
        Sequences decoded together.
    bits : int in [1, 32], default 32
        Bits per stored number: 32 float32, 16 float16/bfloat16, 8 int8, 4 two numbers a byte.
    scale_bytes_per_vector : int >= 0 or None, default None
        Bytes of the scale(s) stored with each vector; None: 4 (one float32) when ``bits < 16``,
        else 0.

    Returns
    -------
    int
        Bytes.

    See Also
    --------
    decode_bytes_per_token : the cache is read once per generated token.

    Notes
    -----
    Per-vector scales are one choice among several (per token and head here; per channel or
    per group of a vector elsewhere): pass the bytes your layout stores per vector.

    Examples
    --------
    GPT-2 small (12 layers, 12 heads of 64) with a full 1024-token context:

    >>> kv_cache_bytes(12, 12, 64, 1024)                     # float32: 72 MiB
    75497472
    >>> kv_cache_bytes(12, 12, 64, 1024, bits=16)            # float16: half
    37748736
    >>> kv_cache_bytes(12, 12, 64, 1024, bits=8)             # int8 + one float32 scale per vector
    20054016
    """
    n_layer = V.check_int(n_layer, "n_layer", 1)
    n_head = V.check_int(n_head, "n_head", 1)
    head_dim = V.check_int(head_dim, "head_dim", 1)
    tokens = V.check_int(tokens, "tokens", 0)
    batch = V.check_int(batch, "batch", 1)
    bits = V.check_bits(bits, "bits", 1, 32)
    if scale_bytes_per_vector is None:
        scale_bytes_per_vector = 4 if bits < 16 else 0
    scale_bytes_per_vector = V.check_int(scale_bytes_per_vector, "scale_bytes_per_vector", 0)
    vectors = 2 * n_layer * batch * n_head * tokens             # K and V, per layer, sequence, head, token
    return vectors * (math.ceil(head_dim * bits / 8) + scale_bytes_per_vector)


def _check_bytes(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number of bytes (an int >= 0), got {value!r}")
    return V.check_int(value, name, 0)


def decode_bytes_per_token(weight_bytes: int, kv_bytes_so_far: int) -> int:
    """Bytes one decoding step at batch 1 must read: ``weight_bytes + kv_bytes_so_far``.

    Each generated token runs the whole network on one vector: every weight is read once (a
    matrix-vector product per Linear layer, nothing to reuse), and attention reads the keys and
    values of every token so far (:func:`kv_cache_bytes`). Activations (a few vectors of
    ``n_embd`` numbers) are negligible beside these.

    Parameters
    ----------
    weight_bytes : int >= 0
        Bytes of all weights read per token, at their stored precision. Count the output
        projection (the language-model head, often the token embedding itself); of the input
        embedding only one row is read.
    kv_bytes_so_far : int >= 0
        Bytes of the key/value cache at this step.

    Returns
    -------
    int
        Bytes per token.

    See Also
    --------
    decode_time_bound : divided by the bandwidth.
    kv_cache_bytes

    Examples
    --------
    124 million float32 weights (GPT-2 small) with 512 tokens in a float32 cache:

    >>> decode_bytes_per_token(124_000_000 * 4, kv_cache_bytes(12, 12, 64, 512))
    533748736
    """
    return _check_bytes(weight_bytes, "weight_bytes") + _check_bytes(kv_bytes_so_far, "kv_bytes_so_far")


def decode_time_bound(bytes_per_token: float, bandwidth_bytes_per_s: float) -> float:
    """Lower bound on the seconds per generated token: ``bytes_per_token / bandwidth_bytes_per_s``.

    Decoding at batch 1 is memory bound (intensity ~0.5 FLOP/byte in float32): the step cannot
    finish before its bytes have been read. The measured time is larger (compute, kernel launches,
    Python); the ratio tells how close to the bound an implementation runs.

    Parameters
    ----------
    bytes_per_token : float >= 0
        From :func:`decode_bytes_per_token`.
    bandwidth_bytes_per_s : float > 0
        Memory bandwidth, e.g. :func:`compresslab.speed.measure_bandwidth` (B/s).

    Returns
    -------
    float
        Seconds per token; ``1 / result`` bounds the tokens per second from above.

    See Also
    --------
    compresslab.speed.Roofline : the same argument for any intensity.

    Notes
    -----
    A small model whose weights fit in the CPU's caches is read at the cache's bandwidth, not the
    DRAM's: measure the bandwidth with a working set of the model's size.

    Examples
    --------
    >>> decode_time_bound(533_748_736, 50e9)              # ~0.5 GB at 50 GB/s: >= 10.7 ms a token
    0.01067497472
    """
    b = V.check_float(bytes_per_token, "bytes_per_token", 0.0)
    bw = V.check_float(bandwidth_bytes_per_s, "bandwidth_bytes_per_s", 0.0, low_open=True)
    return b / bw


# --------------------------------------------------------------------------------------------
# int8 weight-only Linear (torch, CPU)
# --------------------------------------------------------------------------------------------
_DTYPES = ("float32", "bfloat16")


@functools.lru_cache(maxsize=None)
def _int8pack_mm_works(dtype: str) -> bool:
    """Does the installed torch have ``aten._weight_int8pack_mm``, and does it give
    ``x @ (q * scale)^T`` for ``dtype`` activations on the CPU? (One tiny call, checked once.)"""
    import torch
    op = getattr(torch.ops.aten, "_weight_int8pack_mm", None)
    if op is None:
        return False
    t = getattr(torch, dtype)
    x = torch.zeros(1, 16, dtype=t)
    x[0, :2] = torch.tensor([1.0, 2.0])
    q = torch.zeros(2, 16, dtype=torch.int8)
    q[:, :2] = torch.tensor([[3, -4], [5, 6]], dtype=torch.int8)
    try:
        y = op(x, q, torch.tensor([0.5, 2.0], dtype=t))
    except (RuntimeError, NotImplementedError):
        return False
    return y.float().tolist() == [[-2.5, 34.0]]        # (3 - 8) * 0.5, (5 + 12) * 2


@functools.lru_cache(maxsize=None)
def _int8_linear_class():
    import torch

    class Int8WeightOnlyLinear(torch.nn.Module):
        """``y = x @ (q * scale[:, None]).T + bias``: int8 weights, activations in ``dtype``."""

        def __init__(self, q, scale, bias, kernel, dtype):
            super().__init__()
            self.register_buffer("weight_int8", q)
            self.register_buffer("scale", scale)
            self.register_buffer("bias", bias)
            self.out_features, self.in_features = q.shape
            self.kernel, self.dtype = kernel, dtype

        def dequantize(self):
            """The weights the layer computes with, in float32: ``q * scale[:, None]``."""
            return self.weight_int8.to(torch.float32) * self.scale.to(torch.float32)[:, None]

        def forward(self, x):
            if not isinstance(x, torch.Tensor) or x.dtype != self.dtype:
                got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
                raise TypeError(f"x must be a {self.dtype} torch.Tensor (the layer's dtype), got {got}")
            if x.ndim == 0 or x.shape[-1] != self.in_features:
                raise ValueError(f"x must have in_features = {self.in_features} numbers on its last axis, "
                                 f"got shape {tuple(x.shape)}")
            x2 = x.reshape(-1, self.in_features).contiguous()
            if self.kernel == INT8_KERNELS[0]:
                if x2.data_ptr() % 64:                  # the vector kernel uses aligned loads
                    x2 = x2.clone()
                y = torch.ops.aten._weight_int8pack_mm(x2, self.weight_int8, self.scale)
            else:                                       # the obvious form: dequantize, then matmul
                y = (x2.to(torch.float32) @ self.dequantize().T).to(self.dtype)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self):
            return (f"in_features={self.in_features}, out_features={self.out_features}, "
                    f"bias={self.bias is not None}, dtype={self.dtype}, kernel={self.kernel!r}")

    return Int8WeightOnlyLinear


def _choose_kernel(kernel: str, dtype: str, in_features: int) -> str:
    """The kernel to use: the aten one where it exists, works, and (bfloat16) has a safe shape."""
    import torch
    problem = None
    if not _int8pack_mm_works(dtype):
        problem = f"is not available for {dtype} in torch {torch.__version__}"
    elif dtype == "bfloat16" and in_features % 16:
        problem = (f"gives wrong numbers (NaN, inf) or crashes for bfloat16 when in_features "
                   f"({in_features}) is not a multiple of 16")
    if kernel == "auto":
        return INT8_KERNELS[1] if problem else INT8_KERNELS[0]
    if kernel == INT8_KERNELS[0] and problem:
        raise ValueError(f"kernel={kernel!r} {problem}; use kernel='auto' or {INT8_KERNELS[1]!r}")
    return kernel


def _scales(w, dtype: str):
    """Per-row symmetric int8 quantization of ``w`` with scales representable in ``dtype``."""
    import numpy as np
    import torch

    from .. import quant
    scale = quant.qparams(w, bits=8, scheme="symmetric", axis=0).scale   # max|W_i| / 127.5
    if dtype == "bfloat16":     # round up to a bfloat16 (the top 16 bits of a float32): W / scale stays
        scale = ((scale.view(np.uint32) + 0xFFFF) & 0xFFFF0000).view(np.float32)   # within +-127.5
    qp = quant.QParams(scale, np.zeros(w.shape[0], np.int64), -128, 127, axis=0)
    q = torch.from_numpy(quant.quantize(w, qp)).clone()
    return q, torch.from_numpy(scale).to(getattr(torch, dtype))            # exact for bfloat16


def int8_weight_only_linear(weight, bias=None, kernel: str = "auto", dtype: Any = "float32"):
    """A torch Linear layer with int8 weights: ``y = x @ (q * scale[:, None])^T + bias``.

    Per output channel (row) ``i``, symmetric int8 (torch's ``qint8`` per-channel convention,
    :func:`compresslab.quant.qparams` with ``scheme="symmetric", axis=0``):

    ::

        scale[i] = max_j |W[i, j]| / 127.5          (at least 2**-23; for bfloat16 rounded up)
        q[i, j]  = clamp(round(W[i, j] / scale[i]), -128, 127)

    (a bfloat16 scale is rounded *up* to the next bfloat16 number, so that ``|W / scale|`` stays
    within 127.5 and no weight is clamped by more than half a step). The layer stores ``q``
    (int8, 1 byte a weight) and ``scale`` (one per row); activations stay
    in floating point ("weight-only"). At batch 1 the layer reads 4x fewer weight bytes than a
    float32 one (:func:`decode_bytes_per_token`): the reason weight-only int8 speeds up decoding.

    Parameters
    ----------
    weight : torch.Tensor or array_like, shape (out_features, in_features)
        Float weights of ``torch.nn.Linear`` (finite); copied to the CPU.
    bias : torch.Tensor, array_like or None, shape (out_features,)
        Kept in ``dtype``.
    kernel : {"auto", "aten._weight_int8pack_mm", "dequantize+matmul"}, default "auto"
        ``"aten._weight_int8pack_mm"``: torch's CPU kernel, which multiplies ``x`` by the int8
        ``q`` and scales each output column, never materialising float weights.
        ``"dequantize+matmul"``: the fallback, ``x @ (q * scale[:, None]).T`` in float32 with the
        float weights rebuilt at every call (4x the bytes, so no speedup; what torchao's
        ``Int8WeightOnlyConfig`` runs on the CPU). ``"auto"``: the aten kernel when the installed
        torch has it, a tiny probe gets the right numbers, and (bfloat16) ``in_features`` is a
        multiple of 16; else the fallback.
    dtype : "float32" or "bfloat16" (or ``torch.float32``, ``torch.bfloat16``), default "float32"
        Dtype of the activations ``x``, the scales, the bias and the output.

    Returns
    -------
    torch.nn.Module
        In eval mode, with buffers ``weight_int8`` (int8), ``scale`` and ``bias`` (``dtype``, or
        None), attributes ``in_features``, ``out_features``, ``dtype`` and ``kernel`` (the kernel
        used, one of :data:`INT8_KERNELS`), and ``dequantize()`` (float32 weights). It takes
        tensors ``(..., in_features)`` of ``dtype``.

    Raises
    ------
    ValueError
        Bad shapes or non-finite weights; a kernel or dtype that is unknown or unavailable.
    TypeError
        Inputs that are not numbers; in ``forward``, an ``x`` that is not a tensor of ``dtype``.

    See Also
    --------
    compresslab.speed.torch_int8 : int8 weights *and* activations (``quantize_dynamic``).
    compresslab.quant.quantize : the integer arithmetic, step by step.

    Notes
    -----
    ``torch.ops.aten._weight_int8pack_mm(x, q, scales)`` (torch 2.13, CPU) takes ``x`` 2-D and
    contiguous on its last axis (float32, float16 or bfloat16), ``q`` int8 of shape
    ``(out_features, in_features)``, contiguous, and ``scales`` 1-D of ``out_features`` entries
    of ``x``'s dtype; it returns ``x @ (q * scales[:, None]).T`` in ``x``'s dtype, accumulating in
    float32. On x86 (measured on an AMD EPYC with AVX-512, and so in torch's source
    ``aten/src/ATen/native/cpu/int8mm_kernel.cpp``) only bfloat16 has a vectorized kernel, which
    steps through ``in_features`` 16 (AVX-512) or 8 (AVX2) numbers at a time: for other widths it
    returns NaN or inf, or crashes, hence the multiple-of-16 rule. float32 and float16 run a
    plain scalar loop, correct but several times slower than float32 BLAS. So on x86 the int8
    weights pay off with ``dtype="bfloat16"`` (measured at batch 1, one thread: a 4096 x 4096
    layer 0.56 ms against 2.7-3.8 ms in float32; the tiny 128 x 512 layers about as fast as float32,
    ~6 us, where the weights fit in cache anyway).

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
    >>> layer = int8_weight_only_linear(w)
    >>> layer.weight_int8.tolist(), layer.weight_int8.dtype
    ([[64, -127], [127, 16]], torch.int8)
    >>> x = torch.tensor([[1.0, 1.0]])
    >>> torch.allclose(layer(x), x @ layer.dequantize().T), torch.allclose(layer(x), x @ w.T, atol=0.02)
    (True, True)
    """
    import torch
    V.check_choice(kernel, "kernel", {"auto", *INT8_KERNELS})
    dtype = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype
    if not isinstance(dtype, str):
        raise TypeError(f"dtype must be 'float32' or 'bfloat16' (or the torch dtype), got {dtype!r}")
    V.check_choice(dtype, "dtype", set(_DTYPES))
    w = V.as_float32(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must have shape (out_features, in_features), got shape {w.shape}")
    b = None
    if bias is not None:
        b = V.as_float32(bias, "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},) (out_features), got {b.shape}")
        b = torch.from_numpy(b).to(getattr(torch, dtype)).clone()
    q, scale = _scales(w, dtype)
    kernel = _choose_kernel(kernel, dtype, w.shape[1])
    return _int8_linear_class()(q, scale, b, kernel, getattr(torch, dtype)).eval()
