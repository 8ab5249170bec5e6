"""A small GPT in NumPy: embeddings, LayerNorm, GELU, causal self-attention with a KV cache.

The model is GPT-2's architecture (Radford et al. 2019) at toy size: token and learned position
embeddings, ``n_layer`` pre-LayerNorm transformer blocks, a final LayerNorm, and logits from the
token embedding matrix again (tied input and output embeddings)::

    h_0 = E[tokens] + P[positions]
    h   = h + Attention(LayerNorm(h))        # in every block
    h   = h + MLP(LayerNorm(h))              # MLP(x) = W2 GELU(W1 x + b1) + b2
    logits = LayerNorm(h_L) @ E.T

Inference only: the shipped weights were trained with torch (``tools/train_tiny_gpt.py``), and
``to_torch`` builds the same network from ``torch.nn.TransformerEncoderLayer`` so the tests can
compare every logit with torch's. The linear layers are :class:`compresslab.nn.Linear`, so the
compression functions of the course (pruning masks, quantized weights) apply to them unchanged.

References
----------
* A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, L. Kaiser,
  I. Polosukhin. "Attention Is All You Need." NeurIPS 2017.
* A. Radford, J. Wu, R. Child, D. Luan, D. Amodei, I. Sutskever. "Language Models are
  Unsupervised Multitask Learners." OpenAI technical report, 2019 (GPT-2: pre-LN blocks,
  tanh-GELU, tied embeddings).
* J. L. Ba, J. R. Kiros, G. E. Hinton. "Layer Normalization." arXiv:1607.06450, 2016.
* D. Hendrycks, K. Gimpel. "Gaussian Error Linear Units (GELUs)." arXiv:1606.08415, 2016.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import _validate as V
from .layers import ARCHITECTURES, DTYPE, Linear, Module

__all__ = [
    "GPTConfig", "Embedding", "LayerNorm", "GELU", "gelu", "CausalSelfAttention", "MLP", "Block",
    "GPT", "KVCache", "generate", "Perplexity", "perplexity", "quantize_kv", "gpt_to_torch", "gpt_from_torch",
]


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a :class:`GPT`.

    Parameters
    ----------
    vocab_size : int, default 256
        Number of tokens (256: one per byte).
    block_size : int, default 256
        Longest context (number of learned positions).
    n_layer, n_head, n_embd : int
        Blocks, attention heads, width; ``n_embd`` must be a multiple of ``n_head``.
    layer_norm_eps : float, default 1e-5

    Examples
    --------
    >>> c = GPTConfig(n_layer=2, n_head=4, n_embd=64)
    >>> c.head_dim                                 # n_embd / n_head numbers per head
    16
    """

    vocab_size: int = 256
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        for name, low, high in (("vocab_size", 1, 1 << 20), ("block_size", 1, 1 << 16),
                                ("n_layer", 1, 256), ("n_head", 1, 1024), ("n_embd", 1, 1 << 16)):
            V.check_int(getattr(self, name), name, low, high)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        V.check_float(self.layer_norm_eps, "layer_norm_eps", 0.0, 1.0)
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
class Embedding(Module):
    """A lookup table: ``Embedding(tokens) = weight[tokens]``, weight of shape (num, dim).

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Rows (one per token) and numbers per row.
    seed : int or numpy.random.Generator, optional
        Initial weights: normal with std 0.02.

    Examples
    --------
    >>> e = Embedding(10, 3, seed=0)
    >>> e(np.array([[4, 4, 7]])).shape              # (batch, tokens, dim)
    (1, 3, 3)
    >>> bool((e(np.array([4]))[0] == e.weight[4]).all())
    True
    """

    param_names = ("weight",)

    def __init__(self, num_embeddings: int, embedding_dim: int, *, seed: Any = None):
        super().__init__()
        self.weight = (0.02 * V.rng(seed).standard_normal((num_embeddings, embedding_dim))).astype(DTYPE)

    def forward(self, tokens):
        return self.weight[tokens]


class LayerNorm(Module):
    """``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`` over the last axis (Ba et al. 2016).

    ``var`` is the biased variance (divided by n), as in ``torch.nn.LayerNorm``.

    Parameters
    ----------
    dim : int
        Size of the last axis; ``weight`` starts at 1, ``bias`` at 0.
    eps : float, default 1e-5

    Examples
    --------
    >>> y = LayerNorm(4)(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32))
    >>> round(float(y.mean()), 6), round(float(y.std()), 4)    # mean 0, std 1
    (0.0, 1.0)
    """

    param_names = ("weight", "bias")

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = np.ones(dim, DTYPE)
        self.bias = np.zeros(dim, DTYPE)
        self.eps = eps

    def forward(self, x):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.weight + self.bias


def gelu(x):
    """GELU, tanh form (Hendrycks & Gimpel 2016; GPT-2):
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, as ``torch.nn.functional.gelu(x, approximate="tanh")``.

    Parameters
    ----------
    x : numpy.ndarray

    Returns
    -------
    numpy.ndarray
        Same shape: about ``x`` for large ``x``, about 0 for very negative ``x``.

    Examples
    --------
    >>> np.round(gelu(np.array([-3.0, 0.0, 1.0, 3.0])), 4).tolist()
    [-0.0036, 0.0, 0.8412, 2.9964]
    """
    # x * x * x, not x ** 3: NumPy's float32 power is ~30x slower than two multiplications
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class GELU(Module):
    """The GELU nonlinearity as a layer (see :func:`gelu`).

    Examples
    --------
    >>> bool((GELU()(np.array([1.0])) == gelu(np.array([1.0]))).all())
    True
    """

    def forward(self, x):
        return gelu(x)


def _linear(layer: Linear, x: np.ndarray) -> np.ndarray:
    """Apply a Linear layer to the last axis of x (Linear itself takes (batch, features))."""
    return layer.forward(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], layer.out_features)


def _check_kv_bits(bits: Any, name: str) -> int | None:
    """None (float32 keys and values) or 8 (int8), else a ValueError naming the argument."""
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits != 8):
        got = V.short(bits) if isinstance(bits, np.ndarray) else repr(bits)
        raise ValueError(f"{name} must be None (float32) or 8 (int8), got {got}")
    return None if bits is None else 8


def quantize_kv(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization of each key or value vector (one scale per token and head).

    ``scale = max|x| / 127`` over the vector's ``head_dim`` numbers, ``q = round(x / scale)``
    (half to even); an all-zero vector gets scale 1.

    Parameters
    ----------
    x : numpy.ndarray, shape (..., head_dim)
        Keys or values, finite.

    Returns
    -------
    q : numpy.ndarray of int8, shape of ``x``
    scale : numpy.ndarray of float32, shape ``x.shape[:-1] + (1,)``
        ``q * scale`` is what attention then uses.

    Raises
    ------
    ValueError
        If ``x`` is empty, has no axis, or holds NaN, inf or values beyond float32's range.

    Examples
    --------
    >>> q, s = quantize_kv(np.array([[0.5, -1.27, 0.0]], np.float32))
    >>> q.tolist(), round(float(s[0, 0]), 4)
    ([[50, -127, 0]], 0.01)
    """
    x = V.as_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have a last axis (head_dim numbers per vector), got a scalar")
    with np.errstate(over="ignore"):
        scale = (np.abs(x).max(axis=-1, keepdims=True) / 127.0).astype(np.float32)
    if not np.isfinite(scale).all():
        raise ValueError("x holds values beyond float32's range (|x| > 3.4e38)")
    scale[scale == 0] = 1.0                      # an all-zero vector (or one below float32's step)
    q = np.clip(np.round(x / scale), -127, 127).astype(np.int8)
    return q, scale


class KVCache:
    """Keys and values of the tokens seen so far, per layer: decoding reads them instead of
    recomputing them.

    Arrays of shape (batch, n_head, max_len, head_dim) per layer for K and for V, filled up to
    ``length``. With ``bits=8`` they are stored as int8 with one float32 scale per token and head
    (:func:`quantize_kv`), a quarter of the float32 bytes plus the scales.

    Parameters
    ----------
    config : GPTConfig
    batch : int, default 1
    max_len : int in [1, config.block_size], optional
        Default ``config.block_size``.
    bits : {None, 8}
        None stores float32.

    Raises
    ------
    ValueError
        Bad sizes, or more than 2**26 numbers in one layer's keys (``batch * max_len * n_embd``).

    Examples
    --------
    >>> c = KVCache(GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=16))
    >>> c.nbytes                       # 2 (K, V) * 2 layers * 2 heads * 16 positions * 4 dims * 4 B
    2048
    """

    def __init__(self, config: GPTConfig, batch: int = 1, max_len: int | None = None, bits: int | None = None):
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.batch = V.check_int(batch, "batch", 1, 1 << 16)
        self.max_len = config.block_size if max_len is None else V.check_int(
            max_len, "max_len", 1, config.block_size)
        self.bits = bits = _check_kv_bits(bits, "bits")
        if self.batch * self.max_len * config.n_embd > V.MAX_LAYER_PARAMS:
            raise ValueError(f"batch * max_len * n_embd = {self.batch * self.max_len * config.n_embd:,} "
                             f"numbers per layer's keys, more than {V.MAX_LAYER_PARAMS:,}")
        shape = (self.batch, config.n_head, self.max_len, config.head_dim)
        dtype = np.int8 if bits == 8 else DTYPE
        self.k = [np.zeros(shape, dtype) for _ in range(config.n_layer)]
        self.v = [np.zeros(shape, dtype) for _ in range(config.n_layer)]
        if bits == 8:
            sshape = shape[:-1] + (1,)
            self.k_scale = [np.ones(sshape, np.float32) for _ in range(config.n_layer)]
            self.v_scale = [np.ones(sshape, np.float32) for _ in range(config.n_layer)]
        self.length = 0

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds at full length (K, V and, for int8, their scales)."""
        n = sum(a.nbytes for a in self.k + self.v)
        if self.bits == 8:
            n += sum(a.nbytes for a in self.k_scale + self.v_scale)
        return n

    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store the new tokens' k, v at positions ``length ...`` of ``layer``; return all keys and
        values up to them (dequantized when int8). ``length`` advances in :meth:`advance`."""
        start, stop = self.length, self.length + k.shape[2]
        if stop > self.max_len:
            raise ValueError(f"the KV cache holds {self.max_len} positions; {stop} were asked for")
        if self.bits == 8:
            (self.k[layer][:, :, start:stop], self.k_scale[layer][:, :, start:stop]) = quantize_kv(k)
            (self.v[layer][:, :, start:stop], self.v_scale[layer][:, :, start:stop]) = quantize_kv(v)
            return (self.k[layer][:, :, :stop] * self.k_scale[layer][:, :, :stop],
                    self.v[layer][:, :, :stop] * self.v_scale[layer][:, :, :stop])
        self.k[layer][:, :, start:stop] = k
        self.v[layer][:, :, start:stop] = v
        return self.k[layer][:, :, :stop], self.v[layer][:, :, :stop]

    def advance(self, n: int) -> None:
        self.length += n

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (speculative decoding rolls back this way)."""
        self.length = V.check_int(length, "length", 0, self.length)


class CausalSelfAttention(Module):
    """Multi-head causal self-attention (Vaswani et al. 2017)::

        q, k, v = split(x @ Wqkv.T + bqkv)                  # each (batch, heads, T, head_dim)
        A = softmax(q @ k.T / sqrt(head_dim) + mask)        # mask: -inf where key position > query's
        y = concat_heads(A @ v) @ Wo.T + bo

    ``qkv`` is one Linear(d, 3d) (rows: the q, then k, then v weights, as torch's ``in_proj_weight``).

    Parameters
    ----------
    n_embd, n_head : int
        Width and number of heads (``n_embd`` a multiple of ``n_head``).
    seed : int or numpy.random.Generator, optional
    kv_bits : {None, 8}
        8: attend to int8-quantized keys and values (:func:`quantize_kv`).

    Examples
    --------
    Causal: changing the last token leaves the outputs of the earlier ones unchanged.

    >>> att = CausalSelfAttention(8, 2, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((1, 3, 8)).astype(np.float32)
    >>> y = att(x)
    >>> x[0, 2] += 1.0
    >>> y.shape, bool(np.allclose(att(x)[:, :2], y[:, :2])), bool(np.allclose(att(x)[:, 2], y[:, 2]))
    ((1, 3, 8), True, False)
    """

    def __init__(self, n_embd: int, n_head: int, *, seed: Any = None, kv_bits: int | None = None):
        super().__init__()
        g = V.rng(seed)
        self.n_embd, self.n_head = n_embd, n_head
        self.qkv = Linear(n_embd, 3 * n_embd, seed=g)
        self.proj = Linear(n_embd, n_embd, seed=g)
        self.kv_bits = kv_bits

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        B, T, d = x.shape
        hd = d // self.n_head
        qkv = _linear(self.qkv, x).reshape(B, T, 3, self.n_head, hd).transpose(2, 0, 3, 1, 4)
        q, k, v = (np.ascontiguousarray(a) for a in qkv)        # (B, heads, T, hd) each
        past = 0
        if self.kv_bits == 8 and (cache is None or cache.bits is None):
            k, v = (np.multiply(*quantize_kv(k)), np.multiply(*quantize_kv(v)))   # what an int8 cache holds
        if cache is not None:
            past = cache.length
            k, v = cache.append(layer, k, v)                    # (B, heads, past + T, hd)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)   # (B, heads, T, past + T)
        query_pos = past + np.arange(T)[:, None]
        key_pos = np.arange(k.shape[2])[None, :]
        scores = np.where(key_pos > query_pos, -np.inf, scores)
        scores = scores - scores.max(axis=-1, keepdims=True)
        # att = exp(scores), with exp(s) for s < -80 (below 2e-35, masked positions included) set
        # to exactly 0: float32 subnormals would make the exp and the matmul below 10x slower
        att = np.exp(scores, where=scores > -80.0, out=np.zeros_like(scores))
        att /= att.sum(axis=-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, d)   # heads side by side again
        return _linear(self.proj, y)


class MLP(Module):
    """``fc2(GELU(fc1(x)))`` with fc1: d -> 4d and fc2: 4d -> d.

    Parameters
    ----------
    n_embd : int
    seed : int or numpy.random.Generator, optional

    Examples
    --------
    >>> mlp = MLP(8, seed=0)
    >>> mlp.fc1.weight.shape, mlp(np.ones((1, 3, 8), np.float32)).shape
    ((32, 8), (1, 3, 8))
    """

    def __init__(self, n_embd: int, *, seed: Any = None):
        super().__init__()
        g = V.rng(seed)
        self.fc1 = Linear(n_embd, 4 * n_embd, seed=g)
        self.fc2 = Linear(4 * n_embd, n_embd, seed=g)

    def forward(self, x):
        return _linear(self.fc2, gelu(_linear(self.fc1, x)))


class Block(Module):
    """Pre-LN transformer block: ``x + Attention(LN1(x))``, then ``x + MLP(LN2(x))``.

    Parameters
    ----------
    config : GPTConfig
    seed : int or numpy.random.Generator, optional

    Examples
    --------
    >>> b = Block(GPTConfig(n_head=2, n_embd=8), seed=0)
    >>> b(np.ones((1, 3, 8), np.float32)).shape     # (batch, tokens, n_embd), as it came in
    (1, 3, 8)
    """

    def __init__(self, config: GPTConfig, *, seed: Any = None):
        super().__init__()
        g = V.rng(seed)
        self.ln1 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, seed=g)
        self.ln2 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.mlp = MLP(config.n_embd, seed=g)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        x = x + self.attn.forward(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class GPT(Module):
    """A decoder-only transformer with tied embeddings (GPT-2's architecture).

    Parameters
    ----------
    config : GPTConfig, optional
    seed : int or numpy.random.Generator, default 0
        Initial weights: embeddings and linear weights normal with std 0.02 (GPT-2's
        initialisation), the output projections of each block scaled by 1/sqrt(2 n_layer), biases 0.

    Attributes
    ----------
    kv_bits : {None, 8}
        8 makes attention use int8-quantized keys and values (:func:`quantize_kv`): the numbers
        an int8 :class:`KVCache` holds, also without a cache (so perplexity can be measured with
        them) or with a float32 one; :func:`generate` then stores its cache in int8.

    Examples
    --------
    >>> m = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32), seed=0)
    >>> m(np.array([[1, 2, 3]])).shape            # (batch, tokens, vocab)
    (1, 3, 256)
    >>> sorted(m.linear_layers())[:2]
    ['blocks.0.attn.proj', 'blocks.0.attn.qkv']
    """

    def __init__(self, config: GPTConfig | None = None, *, seed: Any = 0):
        super().__init__()
        self.config = config = GPTConfig() if config is None else config
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        g = V.rng(seed)
        self.tok_emb = Embedding(config.vocab_size, config.n_embd, seed=g)
        self.pos_emb = (0.02 * g.standard_normal((config.block_size, config.n_embd))).astype(DTYPE)
        self.blocks = [Block(config, seed=g) for _ in range(config.n_layer)]
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps)
        std = 0.02
        for name, layer in self.linear_layers().items():
            scale = std / math.sqrt(2 * config.n_layer) if name.endswith(("proj", "fc2")) else std
            layer.weight = (scale * g.standard_normal(layer.weight.shape)).astype(DTYPE)
            layer.bias = np.zeros(layer.out_features, DTYPE)
        self.training = False

    # -- structure ------------------------------------------------------------------------
    @property
    def kv_bits(self) -> int | None:
        return self.blocks[0].attn.kv_bits

    @kv_bits.setter
    def kv_bits(self, bits: int | None) -> None:
        bits = _check_kv_bits(bits, "kv_bits")
        for b in self.blocks:
            b.attn.kv_bits = bits

    def linear_layers(self) -> dict[str, Linear]:
        """The model's Linear layers by name, in order: ``blocks.{i}.attn.qkv``, ``.attn.proj``,
        ``.mlp.fc1``, ``.mlp.fc2`` -- what weight-only quantization and pruning act on."""
        out = {}
        for i, b in enumerate(self.blocks):
            out[f"blocks.{i}.attn.qkv"] = b.attn.qkv
            out[f"blocks.{i}.attn.proj"] = b.attn.proj
            out[f"blocks.{i}.mlp.fc1"] = b.mlp.fc1
            out[f"blocks.{i}.mlp.fc2"] = b.mlp.fc2
        return out

    def _slots(self) -> dict[str, tuple[Any, str]]:
        slots: dict[str, tuple[Any, str]] = {"tok_emb": (self.tok_emb, "weight"), "pos_emb": (self, "pos_emb")}
        for i, b in enumerate(self.blocks):
            for part, mod in (("ln1", b.ln1), ("attn.qkv", b.attn.qkv), ("attn.proj", b.attn.proj),
                              ("ln2", b.ln2), ("mlp.fc1", b.mlp.fc1), ("mlp.fc2", b.mlp.fc2)):
                for attr in ("weight", "bias"):
                    slots[f"blocks.{i}.{part}.{attr}"] = (mod, attr)
        slots["ln_f.weight"] = (self.ln_f, "weight")
        slots["ln_f.bias"] = (self.ln_f, "bias")
        return slots

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter by name (``tok_emb``, ``pos_emb``, ``blocks.0.ln1.weight``, ...)."""
        return {name: getattr(obj, attr) for name, (obj, attr) in self._slots().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        slots = self._slots()
        if set(state) != set(slots):
            missing, extra = sorted(set(slots) - set(state)), sorted(set(state) - set(slots))
            raise ValueError(f"state keys do not match the model's: missing {missing[:5]}, unexpected {extra[:5]}")
        for name, value in state.items():
            obj, attr = slots[name]
            value = V.as_float_array(value, name).astype(DTYPE)
            if value.shape != getattr(obj, attr).shape:
                raise ValueError(f"{name}: shape {value.shape} != {getattr(obj, attr).shape}")
            setattr(obj, attr, value.copy())

    def copy(self) -> "GPT":
        """An independent copy with the same weights and ``kv_bits``."""
        clone = GPT(self.config, seed=0)
        clone.load_state_dict(self.state_dict())
        clone.kv_bits = self.kv_bits
        return clone

    def architecture(self) -> dict:
        return {"type": "GPT", **asdict(self.config)}

    def to_torch(self, dropout: float = 0.0):
        """The same network in torch (see :func:`gpt_to_torch`); ``compresslab.nn.to_torch`` calls this."""
        return gpt_to_torch(self, dropout)

    def num_params(self) -> int:
        return sum(int(a.size) for a in self.state_dict().values())

    def __repr__(self) -> str:
        c = self.config
        return (f"GPT(n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, block_size={c.block_size}, "
                f"vocab_size={c.vocab_size}, params={self.num_params():,})")

    # -- computation ----------------------------------------------------------------------
    def forward(self, tokens, cache: KVCache | None = None):
        """Logits (batch, T, vocab) for tokens (batch, T) (or (T,): batch of one).

        With a ``cache`` the tokens continue the ones already in it (positions
        ``cache.length ...``), and the cache grows by T.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
            raise ValueError(f"tokens must be integers of shape (batch, T), got {tokens.dtype} {tokens.shape}")
        c = self.config
        past = 0 if cache is None else cache.length
        T = tokens.shape[1]
        if T == 0 or past + T > c.block_size:
            raise ValueError(f"{past} cached + {T} new tokens: must be between 1 and block_size={c.block_size}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= c.vocab_size):
            raise ValueError(f"tokens must be in [0, {c.vocab_size - 1}]")
        x = self.tok_emb(tokens) + self.pos_emb[past:past + T]
        for i, block in enumerate(self.blocks):
            x = block.forward(x, cache, i)
        if cache is not None:
            cache.advance(T)
        return self.ln_f(x) @ self.tok_emb.weight.T

    def __call__(self, tokens, cache: KVCache | None = None):
        return self.forward(tokens, cache)

    def linear_inputs(self, tokens) -> dict[str, np.ndarray]:
        """The input every Linear layer sees on ``tokens`` (batch, T): name -> (batch*T, in_features).

        Calibration data of GPTQ, AWQ, SmoothQuant and Wanda: the activations that flow into each
        layer when the model reads real text.
        """
        seen: dict[str, list[np.ndarray]] = {}
        layers = self.linear_layers()
        originals = {name: layer.forward for name, layer in layers.items()}

        def recorder(name, fwd):
            def forward(x):
                seen.setdefault(name, []).append(x.copy())
                return fwd(x)
            return forward

        try:
            for name, layer in layers.items():
                layer.forward = recorder(name, originals[name])
            self.forward(tokens)
        finally:
            for layer in layers.values():
                del layer.forward                                # back to the class's method
        return {name: np.concatenate(seen[name]) for name in layers}


# --------------------------------------------------------------------------------------------
# Generation and perplexity
# --------------------------------------------------------------------------------------------
def _sample(logits: np.ndarray, temperature: float, top_k: int | None, g: np.random.Generator) -> int:
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < z.size:
        kth = np.sort(z)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, g.random() * cdf[-1], side="right"), z.size - 1))


def generate(model: GPT, prompt, max_new_tokens: int, *, temperature: float = 1.0, top_k: int | None = None,
             seed: Any = 0, use_cache: bool = True, kv_bits: int | None = None) -> np.ndarray:
    """Continue ``prompt`` by ``max_new_tokens`` tokens, one at a time.

    Each step turns the logits of the last position into a token: the argmax when
    ``temperature == 0`` (greedy), else a sample from ``softmax(logits / temperature)``
    restricted to the ``top_k`` largest logits (seeded, one uniform draw per token).

    With ``use_cache`` the prompt is read once (prefill) and each new token costs one forward
    pass over one token, reading the keys and values of the earlier ones from a :class:`KVCache`;
    without it every step recomputes the whole context. Both give the same tokens. When the
    context reaches ``block_size`` the window moves on by half a block (the cache is refilled
    from the last ``block_size // 2`` tokens), in both modes alike.

    Parameters
    ----------
    model : GPT
    prompt : sequence of int or str
        Token ids in ``[0, vocab_size)``, or text (encoded as UTF-8 bytes: the shipped model's
        tokenizer).
    max_new_tokens : int >= 0
    temperature : float >= 0, default 1.0
    top_k : int >= 1, optional
    seed : int or numpy.random.Generator, default 0
    use_cache : bool, default True
    kv_bits : {None, 8}
        Store the cache in int8 (only with ``use_cache``); default: the model's ``kv_bits``.

    Returns
    -------
    numpy.ndarray of int64
        The prompt followed by the new tokens.

    Examples
    --------
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), seed=0)
    >>> a = generate(m, [1, 2, 3], 10, temperature=0, use_cache=True)
    >>> b = generate(m, [1, 2, 3], 10, temperature=0, use_cache=False)
    >>> len(a), bool((a == b).all())
    (13, True)
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
    if isinstance(prompt, str):
        prompt = np.frombuffer(prompt.encode("utf-8"), np.uint8)
    c = model.config
    tokens = V.as_int_array(prompt, "prompt", 0, c.vocab_size - 1)
    if tokens.ndim > 1:
        raise ValueError(f"prompt must be a 1-D sequence of token ids, got shape {tokens.shape}")
    tokens = tokens.reshape(-1).tolist()
    if not tokens:
        raise ValueError("prompt must hold at least one token")
    max_new_tokens = V.check_int(max_new_tokens, "max_new_tokens", 0, 1 << 20)
    temperature = V.check_float(temperature, "temperature", 0.0, 1e6)
    if top_k is not None:
        top_k = V.check_int(top_k, "top_k", 1)
    g = V.rng(seed)
    V.check_bool(use_cache, "use_cache")
    kv_bits = _check_kv_bits(kv_bits, "kv_bits")
    if kv_bits is None and use_cache:
        kv_bits = model.kv_bits
    if kv_bits is not None and not use_cache:
        raise ValueError("kv_bits needs use_cache=True")
    start = max(0, len(tokens) - c.block_size)       # first token of the window the model reads
    cache = None
    logits = None
    for _ in range(max_new_tokens):
        if len(tokens) - start >= c.block_size:          # window full: move it on by half a block
            start = len(tokens) - c.block_size // 2
            cache = None
        if use_cache:
            if cache is None:                            # prefill the window
                cache = KVCache(c, bits=kv_bits)
                logits = model.forward(np.array([tokens[start:]]), cache)[0, -1]
            else:                                        # one new token
                logits = model.forward(np.array([tokens[-1:]]), cache)[0, -1]
        else:
            logits = model.forward(np.array([tokens[start:]]))[0, -1]
        tokens.append(_sample(logits, temperature, top_k, g))
    return np.array(tokens, dtype=np.int64)


def _chunks(tokens: np.ndarray, context: int, max_chunks: int | None) -> np.ndarray:
    """Non-overlapping chunks of ``context + 1`` tokens (int64, one per row); with ``max_chunks``,
    that many spread evenly over the stream (rows ``round(linspace(0, n - 1, max_chunks))``)."""
    available = len(tokens) // (context + 1)
    if available < 1:
        raise ValueError(f"need at least context + 1 = {context + 1} tokens, got {len(tokens)}")
    chunks = tokens[:available * (context + 1)].reshape(available, context + 1).astype(np.int64)
    if max_chunks is not None and V.check_int(max_chunks, "max_chunks", 1) < available:
        chunks = chunks[np.round(np.linspace(0, available - 1, max_chunks)).astype(int)]
    return chunks


def _mean_and_half_width(x: np.ndarray) -> tuple[float, float]:
    """Mean of the samples x and the half-width of its 95 % Student-t interval (inf for one sample)."""
    m = float(np.mean(x))
    if len(x) < 2:
        return m, math.inf
    return m, _t975(len(x) - 1) * float(np.std(x, ddof=1) / math.sqrt(len(x)))


def _t975(df: int) -> float:
    """97.5 % quantile of Student's t with ``df`` degrees of freedom (the 95 % two-sided factor).

    Exact for 1 and 2 degrees of freedom; from 3 on, the Cornish-Fisher expansion around the
    normal quantile z = 1.959964 (Abramowitz & Stegun 26.7.5), within 0.004 of the exact value
    at 3 and 1e-5 from 10 on."""
    if df < 1:
        return float("inf")
    if df == 1:
        return 12.706205
    if df == 2:
        return 4.302653
    z = 1.959963985
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4


@dataclass(frozen=True)
class Perplexity:
    """Perplexity on a token stream, with the per-chunk numbers behind it (:func:`perplexity` makes it).

    Parameters
    ----------
    value : float
        ``exp(mean negative log-likelihood per predicted token)``.
    low, high : float
        95 % interval: ``exp(mean chunk NLL +- t standard errors over chunks)``, ``t`` the 97.5 %
        quantile of Student's t with (chunks - 1) degrees of freedom (2.07 for 24 chunks; 1.96 for
        many). It treats the chunks as independent samples of the text.
    chunk_nll : numpy.ndarray
        Mean NLL (nats per token) of every chunk; two models scored on the same chunks can be
        compared pair by pair.
    tokens : int
        Number of predicted tokens.

    Examples
    --------
    >>> p = Perplexity(4.0, 3.5, 4.6, np.log([3.8, 4.2]), 20)
    >>> p.bits_per_token                            # log2(4)
    2.0
    """

    value: float
    low: float
    high: float
    chunk_nll: np.ndarray
    tokens: int

    def ratio_to(self, baseline: "Perplexity") -> tuple[float, float, float]:
        """Perplexity ratio to ``baseline`` scored on the same chunks, with a paired 95 % interval.

        ``exp(mean_c (nll_c - nll_baseline_c))`` and ``exp(mean +- t SE)`` of the per-chunk
        differences: much tighter than comparing two separate intervals, because the chunks that
        are hard for one model are hard for the other too.

        Returns
        -------
        (ratio, low, high) : tuple of float
        """
        if not isinstance(baseline, Perplexity) or baseline.chunk_nll.shape != self.chunk_nll.shape:
            raise ValueError("compare perplexities measured on the same chunks")
        m, half = _mean_and_half_width(self.chunk_nll - baseline.chunk_nll)
        return math.exp(m), math.exp(m - half), math.exp(min(m + half, 700.0))

    @property
    def bits_per_token(self) -> float:
        """Cross-entropy in bits per token (bits per byte for a byte-level model)."""
        return math.log2(self.value)

    def __repr__(self) -> str:
        return (f"Perplexity({self.value:.3f}, 95% interval [{self.low:.3f}, {self.high:.3f}], "
                f"{len(self.chunk_nll)} chunks, {self.tokens} tokens)")


def perplexity(model: GPT, tokens, *, context: int | None = None, max_chunks: int | None = None,
               batch_size: int = 16) -> Perplexity:
    """Perplexity ``exp(-1/N sum_t log p(x_t | x_<t))`` of ``model`` on a token stream.

    The stream is cut into non-overlapping chunks of ``context + 1`` tokens; in each, the model
    predicts tokens 2 .. context+1 from the ones before them (so early positions see a short
    context, the standard non-overlapping evaluation).

    Parameters
    ----------
    model : GPT
    tokens : 1-D array of int in [0, vocab_size)
    context : int, optional
        Default ``model.config.block_size``.
    max_chunks : int, optional
        Score only this many chunks, spread evenly over the stream (chunk indices
        ``round(linspace(0, n - 1, max_chunks))``): faster, a wider interval, and still a sample of
        every part of the text rather than of its beginning (one source file, in a corpus of files).
    batch_size : int, default 16
        Chunks per forward pass.

    Returns
    -------
    Perplexity

    Examples
    --------
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), seed=0)
    >>> p = perplexity(m, np.arange(90) % 256)
    >>> len(p.chunk_nll), p.tokens, 200 < p.value < 320          # untrained: about 256
    (10, 80, True)
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
    tokens = V.as_int_array(tokens, "tokens", 0, model.config.vocab_size - 1)
    if tokens.ndim != 1:
        raise ValueError(f"tokens must be a 1-D array of token ids, got shape {tokens.shape}")
    context = model.config.block_size if context is None else V.check_int(
        context, "context", 1, model.config.block_size)
    chunks = _chunks(tokens, context, max_chunks)
    n_chunks = len(chunks)
    batch_size = V.check_int(batch_size, "batch_size", 1)
    nll = np.empty(n_chunks)
    for s in range(0, n_chunks, batch_size):
        batch = chunks[s:s + batch_size]
        logits = model.forward(batch[:, :-1]).astype(np.float64)
        z = logits - logits.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        target = np.take_along_axis(logp, batch[:, 1:, None], axis=-1)[..., 0]
        nll[s:s + len(batch)] = -target.mean(axis=1)
    mean, half = _mean_and_half_width(nll)
    return Perplexity(math.exp(mean), math.exp(mean - half), math.exp(min(mean + half, 700.0)),
                      nll, n_chunks * context)


# --------------------------------------------------------------------------------------------
# torch (imported lazily): the same network from torch.nn.TransformerEncoderLayer
# --------------------------------------------------------------------------------------------
def _gelu_tanh(x):
    import torch.nn.functional as F
    return F.gelu(x, approximate="tanh")


def _torch_gpt_class():
    import torch
    from torch import nn as tnn

    class TorchGPT(tnn.Module):
        """GPT-2-style decoder built from ``torch.nn.TransformerEncoderLayer`` (norm_first, causal mask)."""

        def __init__(self, config: GPTConfig, dropout: float = 0.0):
            super().__init__()
            self.config = config
            d = config.n_embd
            self.tok_emb = tnn.Embedding(config.vocab_size, d)
            self.pos_emb = tnn.Parameter(torch.zeros(config.block_size, d))
            self.drop = tnn.Dropout(dropout)
            self.blocks = tnn.ModuleList(
                tnn.TransformerEncoderLayer(d, config.n_head, 4 * d, dropout=dropout, activation=_gelu_tanh,
                                            layer_norm_eps=config.layer_norm_eps, batch_first=True,
                                            norm_first=True)
                for _ in range(config.n_layer))
            self.ln_f = tnn.LayerNorm(d, eps=config.layer_norm_eps)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.drop(self.tok_emb(idx) + self.pos_emb[:T])
            mask = tnn.Transformer.generate_square_subsequent_mask(T, device=idx.device, dtype=x.dtype)
            for block in self.blocks:
                x = block(x, src_mask=mask, is_causal=True)
            return self.ln_f(x) @ self.tok_emb.weight.T

        def to_compresslab(self):
            """The NumPy twin (``compresslab.nn.from_torch`` calls this)."""
            return gpt_from_torch(self)

    return TorchGPT


_TORCH_NAMES = {"ln1.weight": "norm1.weight", "ln1.bias": "norm1.bias",
                "attn.qkv.weight": "self_attn.in_proj_weight", "attn.qkv.bias": "self_attn.in_proj_bias",
                "attn.proj.weight": "self_attn.out_proj.weight", "attn.proj.bias": "self_attn.out_proj.bias",
                "ln2.weight": "norm2.weight", "ln2.bias": "norm2.bias",
                "mlp.fc1.weight": "linear1.weight", "mlp.fc1.bias": "linear1.bias",
                "mlp.fc2.weight": "linear2.weight", "mlp.fc2.bias": "linear2.bias"}


def _torch_name(name: str) -> str:
    if name == "tok_emb":
        return "tok_emb.weight"
    if name.startswith("blocks."):
        _, i, rest = name.split(".", 2)
        return f"blocks.{i}.{_TORCH_NAMES[rest]}"
    return name


def gpt_to_torch(model: GPT, dropout: float = 0.0):
    """The same network in torch, built from ``torch.nn.TransformerEncoderLayer``, same weights.

    Parameters
    ----------
    model : GPT
    dropout : float, default 0.0
        Dropout of the torch network when it is trained (none in eval mode).

    Returns
    -------
    torch.nn.Module
        In eval mode; maps tokens (batch, T) to logits (batch, T, vocab).

    Examples
    --------
    >>> import torch
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), seed=0)
    >>> t = gpt_to_torch(m)
    >>> tokens = np.array([[1, 2, 3]])
    >>> bool(np.allclose(t(torch.from_numpy(tokens)).detach().numpy(), m(tokens), atol=1e-5))
    True
    """
    import torch

    t = _torch_gpt_class()(model.config, dropout)
    own = t.state_dict()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            own[_torch_name(name)].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return t.eval()


def gpt_from_torch(module) -> GPT:
    """The compresslab GPT with the weights of a module made by :func:`gpt_to_torch`.

    Parameters
    ----------
    module : torch.nn.Module
        Made by :func:`gpt_to_torch` (and perhaps trained since).

    Returns
    -------
    GPT

    Examples
    --------
    Needs torch (skipped without it):

    >>> import torch
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), seed=0)
    >>> back = gpt_from_torch(gpt_to_torch(m))
    >>> all(np.array_equal(v, m.state_dict()[k]) for k, v in back.state_dict().items())
    True
    """
    model = GPT(module.config, seed=0)
    theirs = module.state_dict()
    model.load_state_dict({name: theirs[_torch_name(name)].detach().cpu().float().numpy()
                           for name in model.state_dict()})
    return model


def config_from_json(text: str, where: str) -> GPTConfig:
    """The GPTConfig a saved file's architecture string describes, checked before anything is
    allocated: at most 2 GiB of float32 parameters, more than a model file can hold."""
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict) or spec.pop("type", None) != "GPT":
            raise ValueError("not a GPT architecture")
        c = GPTConfig(**spec)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: damaged GPT architecture ({exc})") from None
    n = (c.vocab_size + c.block_size) * c.n_embd + c.n_layer * 12 * c.n_embd ** 2   # weights, roughly
    if n > V.MAX_FILE_BYTES // 4:
        raise V.FileDamage(f"{where}: a GPT of about {n:,} parameters, more than the "
                           f"{V.MAX_FILE_BYTES // 4:,} (2 GiB of float32) a model file may hold")
    return c


ARCHITECTURES["GPT"] = lambda arch, where: GPT(config_from_json(arch, where), seed=0)
