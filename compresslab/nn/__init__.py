"""Tiny, transparent neural networks in NumPy: from the digits MLP to a small GPT.

* :mod:`~compresslab.nn.layers` -- Linear, Conv2d, ReLU, Flatten, Sequential; losses,
  optimizers, ``fit`` / ``evaluate``; model files (``save`` / ``load``, .npz without pickle);
  ``to_torch`` / ``from_torch``.
* :mod:`~compresslab.nn.gpt` -- the small GPT of lessons 06-07: Embedding, LayerNorm, GELU,
  causal self-attention with a KV cache, pre-LN blocks, ``generate`` and ``perplexity``.

Shapes and parameter names follow PyTorch, so every network converts to torch exactly and the
tests use torch as the oracle.
"""
from __future__ import annotations

from .gpt import (
    GELU,
    GPT,
    MLP,
    Block,
    CausalSelfAttention,
    Embedding,
    GPTConfig,
    KVCache,
    LayerNorm,
    Perplexity,
    gelu,
    generate,
    gpt_from_torch,
    gpt_to_torch,
    perplexity,
    quantize_kv,
)
from .layers import ARCHITECTURES as ARCHITECTURES
from .layers import DTYPE as DTYPE
from .layers import (
    SGD,
    Adam,
    Conv2d,
    Flatten,
    History,
    Linear,
    Module,
    ReLU,
    Sequential,
    check_model,
    cnn,
    confusion_matrix,
    cross_entropy,
    evaluate,
    fit,
    from_torch,
    load,
    load_with_extra,
    log_softmax,
    mlp,
    nbytes,
    num_params,
    predict,
    save,
    summary,
    to_torch,
    weighted_layers,
)
from .layers import _build as _build
from .layers import _digest as _digest
from .layers import _log_softmax as _log_softmax
from .layers import _progress as _progress
from .layers import read_npz as read_npz


def load_tiny_gpt() -> GPT:
    """The GPT shipped with compresslab, trained on the CPython standard library (``data.load_text``).

    4 layers, 4 heads, width 128, context 256, byte tokens: 858,880 parameters, 3.4 MB in float32.
    How it was trained (``tools/train_tiny_gpt.py``) and its validation perplexity are in
    ``compresslab/datasets/PYSTDLIB_PROVENANCE.txt``.

    Returns
    -------
    GPT

    Examples
    --------
    >>> m = load_tiny_gpt()
    >>> m.config.n_layer, m.num_params()
    (4, 858880)
    """
    from importlib import resources

    with resources.as_file(resources.files("compresslab").joinpath("datasets/tiny_gpt.npz")) as path:
        return load(path)


DRAFTS = ("distilled", "scratch")
"""The draft models shipped for speculative decoding (lesson 07): :func:`load_draft` loads them."""


def load_draft(kind: str = "distilled", with_extra: bool = False):
    """A 1-layer draft of the shipped GPT for speculative decoding (lesson 07).

    Both drafts have 1 layer, 4 heads, width 128 and context 256 (264,064 parameters, 31 % of the
    target's 858,880) and were trained by ``tools/train_tiny_gpt.py`` from the same initial
    weights on the same 1,800 batches as the target (:func:`load_tiny_gpt`): ``"scratch"`` on the
    next byte of the text (cross-entropy), ``"distilled"`` on the target's next-byte distribution
    (token-level knowledge distillation, ``compresslab.distill.kd_loss`` with T = 1 and alpha = 1).
    How, how long and how well: ``compresslab/datasets/PYSTDLIB_PROVENANCE.txt``.

    Parameters
    ----------
    kind : {"distilled", "scratch"}
    with_extra : bool, default False
        Also return what the training script stored with the weights: ``train_minutes``,
        ``validation_perplexity``, the validation-loss curve (``curve_steps``,
        ``curve_validation_loss``), the distillation settings (``kd_*``), ...

    Returns
    -------
    GPT, or (GPT, dict of {str: numpy.ndarray}) with ``with_extra``

    Examples
    --------
    >>> d = load_draft("scratch")
    >>> d.config.n_layer, d.num_params()
    (1, 264064)
    """
    from importlib import resources

    if kind not in DRAFTS:
        raise ValueError(f"kind must be one of {DRAFTS}, got {kind!r}")
    if not isinstance(with_extra, bool):
        raise TypeError(f"with_extra must be True or False, got {with_extra!r}")
    with resources.as_file(resources.files("compresslab").joinpath(f"datasets/draft_{kind}.npz")) as path:
        return load_with_extra(path) if with_extra else load(path)


__all__ = [
    "load_tiny_gpt", "load_draft", "DRAFTS",
    "Module", "Linear", "Conv2d", "ReLU", "Flatten", "Sequential", "cross_entropy", "log_softmax", "SGD",
    "Adam", "fit", "History", "evaluate", "predict", "confusion_matrix", "mlp", "cnn", "num_params",
    "nbytes", "summary", "to_torch", "from_torch", "save", "load", "load_with_extra", "check_model",
    "weighted_layers", "GPTConfig", "GPT", "Embedding", "LayerNorm", "GELU", "gelu",
    "CausalSelfAttention", "MLP", "Block", "KVCache", "generate", "Perplexity", "perplexity",
    "quantize_kv", "gpt_to_torch", "gpt_from_torch",
]
