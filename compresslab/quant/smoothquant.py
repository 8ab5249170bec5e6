"""SmoothQuant: move the activation outliers into the weights, then run the layer in int8
(G. Xiao, J. Lin, M. Seznec, H. Wu, J. Demouth, S. Han, "SmoothQuant: Accurate and Efficient
Post-Training Quantization for Large Language Models", ICML 2023; arXiv:2211.10438, 2022).

In large LLMs (from a few billion parameters on) a few input channels of a layer are far larger
than the rest, in the same channels across most tokens (Dettmers et al., LLM.int8(), NeurIPS
2022); one int8 scale per token (or per tensor) must cover them, and the other channels are left
with a handful of levels. Weights have no such outliers. Dividing input channel ``j`` by ``s_j`` and
multiplying the weights' column ``j`` by ``s_j`` is exact in float::

    y = X W^T = (X / s) (W * s)^T,     s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)

and with ``alpha = 0.5`` it splits the range between the two, so both quantize well to int8
(W8A8): integer matrix products with int32 accumulation and one float rescale per output.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import backend
from .grid import F32
from .groups import _check_weight

__all__ = ["smooth_scales", "smooth", "w8a8_matmul", "outlier_ratio", "w8a8_gpt", "SMOOTHED_LAYERS"]

ACT = ("per_token", "per_tensor")
WEIGHT = ("per_channel", "per_tensor")


def _check_pair(X, w):
    """X (n_samples, in_features) and w (out_features, in_features) as float32, matching."""
    w = _check_weight(w)
    X = V.as_float32(X, "X")
    if X.ndim != 2 or X.shape[1] != w.shape[1]:
        raise ValueError(f"X must be (n_samples, in_features) with in_features = {w.shape[1]} (w is "
                         f"(out_features, in_features) = {w.shape}), got shape {X.shape}")
    return X, w


@backend.same_kind
def smooth_scales(x_absmax, w, alpha: float = 0.5):
    """SmoothQuant's migration scales (Xiao et al., ICML 2023, eq. 4):
    ``s_j = max|X_j| ** alpha / max_i |W_ij| ** (1 - alpha)``.

    ``alpha`` is the migration strength: 0 leaves the difficulty with the activations (``s``
    only equalises the weights' columns, ``s_j = 1 / max|W_j|``), 1 moves it all to the weights
    (``X / s`` has every channel's maximum at 1), 0.5 balances them: afterwards
    ``max|X_j / s_j| = max|W_j * s_j| = sqrt(max|X_j| max|W_j|)``.

    Parameters
    ----------
    x_absmax : array (in_features,)
        ``max_n |X_nj|`` of the calibration inputs, per input channel (>= 0).
    w : array (out_features, in_features)
        The layer's weights (torch layout).
    alpha : float in [0, 1], default 0.5

    Returns
    -------
    float32 array (in_features,) of scales >= 1e-5

    Notes
    -----
    As the reference (mit-han-lab/smoothquant, ``smooth_ln_fcs``): ``max|W_j|`` is clipped at
    1e-5 and so is ``s``. Computed in float64.

    Examples
    --------
    >>> w = np.array([[1.0, 0.5], [-2.0, 0.25]])
    >>> smooth_scales(np.array([8.0, 0.5]), w).tolist()     # sqrt(8 / 2), sqrt(0.5 / 0.5)
    [2.0, 1.0]
    """
    w = _check_weight(w)
    x_absmax = V.as_float_array(x_absmax, "x_absmax", ndim=1).astype(np.float64)
    if x_absmax.shape != (w.shape[1],) or (x_absmax < 0).any():
        raise ValueError(f"x_absmax must hold in_features = {w.shape[1]} values >= 0 (max |X| per input "
                         f"channel), got shape {x_absmax.shape}")
    alpha = V.check_float(alpha, "alpha", 0.0, 1.0)
    w_absmax = np.maximum(np.abs(w).max(axis=0).astype(np.float64), 1e-5)
    s = x_absmax ** alpha / w_absmax ** (1 - alpha)
    return np.maximum(s, 1e-5).astype(F32)


@backend.same_kind
def smooth(X, w, s):
    """Migrate the scale: ``(X / s, W * s)``, an exact identity of the layer's output.

    ``(X / s) (W * s)^T = X W^T``: input channel ``j`` is divided by ``s_j``, the weights' column
    ``j`` multiplied by it. In a transformer the division is folded into the LayerNorm before
    the layer, so the smoothed model costs nothing more.

    Parameters
    ----------
    X : array (n_samples, in_features)
    w : array (out_features, in_features)
    s : array (in_features,) of positive scales, e.g. from :func:`smooth_scales`

    Returns
    -------
    X_smooth : float32 array (n_samples, in_features)
    w_smooth : float32 array (out_features, in_features)

    Examples
    --------
    >>> X, w = np.array([[8.0, 1.0]]), np.array([[0.5, 2.0]])
    >>> Xs, ws = smooth(X, w, np.array([4.0, 1.0]))
    >>> Xs.tolist(), ws.tolist(), (Xs @ ws.T).tolist(), (X @ w.T).tolist()
    ([[2.0, 1.0]], [[2.0, 2.0]], [[6.0]], [[6.0]])
    """
    X, w = _check_pair(X, w)
    s = V.as_float32(s, "s")
    if s.shape != (w.shape[1],) or (s <= 0).any():
        raise ValueError(f"s must hold in_features = {w.shape[1]} positive scales, got {V.short(s)}")
    return (X / s).astype(F32), (w * s).astype(F32)


def _int8(x: np.ndarray, per_row: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8, absmax: ``scale = max(max|x|, 1e-5) / 127``, ``q = round(x / scale)``;
    one scale per row or one for all. Returns int8 codes and float32 scales (shape (rows, 1) or ())."""
    amax = np.abs(x).max(axis=1, keepdims=True) if per_row else np.abs(x).max()
    scale = (np.maximum(amax.astype(np.float64), 1e-5) / 127).astype(F32)
    q = np.clip(np.rint(x / scale.astype(np.float64)), -127, 127)
    return q.astype(np.int8), scale


@backend.same_kind
def w8a8_matmul(X, w, act: str = "per_token", weight: str = "per_channel"):
    """``Y = X W^T`` with int8 activations and int8 weights, integer accumulation (W8A8).

    Both sides are quantized symmetric, absmax, to [-127, 127]::

        s_x = max|X_n:| / 127 (per token) or max|X| / 127 (per tensor),  X_q = round(X / s_x)
        s_w = max|W_i:| / 127 (per output channel) or max|W| / 127,       W_q = round(W / s_w)
        Y   = (X_q @ W_q^T) * s_x * s_w^T           # integer products, accumulated exactly

    The activation scale is dynamic: computed from ``X`` at run time, as SmoothQuant's kernels
    do.

    Parameters
    ----------
    X : array (n_samples, in_features)
    w : array (out_features, in_features)
    act : {"per_token", "per_tensor"}, default "per_token"
        One activation scale per row of ``X``, or one for all of ``X``.
    weight : {"per_channel", "per_tensor"}, default "per_channel"
        One weight scale per output channel, or one for all of ``W``.

    Returns
    -------
    float32 array (n_samples, out_features)

    Notes
    -----
    A hardware kernel accumulates ``X_q @ W_q^T`` in int32, exact while ``127 * 127 *
    in_features < 2**31``. Here the int8 codes are multiplied as float64 (BLAS): every partial
    sum is an integer below 2**53, so the result is the exact integer, the same as
    ``X_q.astype(np.int64) @ W_q.T.astype(np.int64)``, only faster. The rescale is float64.
    Scales are clipped at 1e-5 / 127 as in the reference (``fake_quant.py``).

    Examples
    --------
    >>> X, w = np.array([[1.0, 0.3]]), np.array([[1.0, 1.0]])
    >>> round(float(w8a8_matmul(X, w)[0, 0]), 4)    # X_q = [127, 38], W_q = [127, 127]: 165 / 127
    1.2992
    """
    X, w = _check_pair(X, w)
    for name, value, choices in (("act", act, ACT), ("weight", weight, WEIGHT)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be one of {list(choices)}, got {type(value).__name__}")
        V.check_choice(value, name, choices)
    Xq, sx = _int8(X, per_row=act == "per_token")          # (n, in) int8, (n, 1) or ()
    Wq, sw = _int8(w, per_row=weight == "per_channel")     # (out, in) int8, (out, 1) or ()
    acc = Xq.astype(np.float64) @ Wq.astype(np.float64).T  # exact: Xq.astype(int32) @ Wq.T.astype(int32)
    return (acc * sx.astype(np.float64) * np.transpose(sw).astype(np.float64)).astype(F32)


def outlier_ratio(X) -> float:
    """How strong the channel outliers are: ``max_j max_n |X_nj| / median_j max_n |X_nj|``.

    About 1 to 3 for Gaussian activations. In large language models a few feature dimensions are
    far larger than the rest (Dettmers et al. 2022, LLM.int8(); Xiao et al. 2022, SmoothQuant).

    Parameters
    ----------
    X : array (n_samples, in_features)

    Returns
    -------
    float >= 1; ``inf`` when the median channel is all zeros but some channel is not, 1.0 for
    all-zero ``X``

    Examples
    --------
    >>> X = np.ones((4, 5))
    >>> X[:, 2] = 50.0
    >>> outlier_ratio(X)
    50.0
    """
    X = V.as_float_array(X, "X", ndim=2)
    amax = np.abs(X).max(axis=0).astype(np.float64)
    top, median = amax.max(), np.median(amax)
    if median == 0:
        return 1.0 if top == 0 else float("inf")
    return float(top / median)


# --------------------------------------------------------------------------------------------
# A whole GPT in W8A8
# --------------------------------------------------------------------------------------------
SMOOTHED_LAYERS = ("attn.qkv", "mlp.fc1")
"""The Linear layers of a GPT block that SmoothQuant smooths: those right after a LayerNorm,
whose ``1 / s`` folds into the LayerNorm's weight and bias for free (as the reference's
``smooth_ln_fcs``)."""


def _w8a8_linear_class():
    from ..nn.layers import Linear

    class W8A8Linear(Linear):
        """``y = w8a8_matmul(x / s, W * s, act) + b``: int8 weights per output channel, int8
        activations (dynamic), ``s`` the smoothing scales (all ones: no smoothing)."""

        def forward(self, x):
            if x.ndim != 2 or x.shape[1] != self.in_features:
                raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects input of "
                                 f"shape (batch, {self.in_features}), got {x.shape}")
            xs, ws = x / self.smooth_scale, self.weight * self.smooth_scale    # exact in float
            if self.act is None:
                y = xs @ ws.T                                                  # float, smoothed
            else:
                y = w8a8_matmul(xs, ws, act=self.act, weight="per_channel")
            return y + self.bias if self.bias is not None else y

    return W8A8Linear


def w8a8_gpt(model, calibration=None, alpha=None, act: str | None = "per_token"):
    """A copy of a GPT whose Linear layers compute in W8A8: int8 weights (one scale per output
    channel) times int8 activations (scale computed at run time), optionally smoothed first.

    Every Linear layer of every block computes::

        y = w8a8_matmul(x / s, W * s, act) + b        # s = 1 without smoothing

    With ``alpha``, SmoothQuant's scales (Xiao et al., ICML 2023) are set for the layers right
    after a LayerNorm (:data:`SMOOTHED_LAYERS`: ``attn.qkv`` and ``mlp.fc1``), from the float
    model's inputs on the calibration tokens::

        s_j = max_n |X_nj| ** alpha / max_i |W_ij| ** (1 - alpha)     (smooth_scales)

    Dividing the input by ``s`` here is the same as folding ``1 / s`` into the LayerNorm before the
    layer (its weight and bias divided by ``s``), which is what a deployed model does: it costs
    nothing at run time. In float the smoothing is an exact identity (``(x / s)(W * s)^T = x
    W^T``, up to float32 rounding); only the int8 rounding sees the difference. The attention
    (softmax, the products with K and V) and the embeddings stay in float32.

    Parameters
    ----------
    model : compresslab.nn.GPT
        Left unchanged.
    calibration : array of int, shape (n, T), optional
        Token windows (:func:`compresslab.quant.calibration_windows`); needed with ``alpha``.
    alpha : float in [0, 1] or None, default None
        SmoothQuant's migration strength; None: no smoothing.
    act : {"per_token", "per_tensor"} or None, default "per_token"
        The activation scale: one per token (row of ``x``) or one per call of the layer. None
        keeps the layers in float (with the smoothing, if any): the identity check.

    Returns
    -------
    compresslab.nn.GPT
        The copy; its Linear layers are ``W8A8Linear`` with attributes ``act`` and
        ``smooth_scale``. Its ``weight`` arrays are the float originals; its ``copy()`` is a
        plain float model.

    Raises
    ------
    TypeError
        ``model`` is not a GPT.
    ValueError
        ``act`` not a choice, ``alpha`` outside [0, 1], or ``alpha`` without ``calibration``.

    See Also
    --------
    w8a8_matmul : the per-layer product.
    smooth_scales, smooth : the per-layer smoothing.

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8), seed=0)
    >>> tokens = np.arange(8)[None]
    >>> calib = np.arange(16).reshape(2, 8) % 256
    >>> same = w8a8_gpt(m, calib, alpha=0.5, act=None)       # smoothed, still float
    >>> bool(np.allclose(same(tokens), m(tokens), atol=1e-5))
    True
    >>> q = w8a8_gpt(m, act="per_tensor")
    >>> float(np.abs(q(tokens) - m(tokens)).max()) < 0.05    # int8 rounding, small
    True
    """
    from ..nn import GPT

    if not isinstance(model, GPT):
        raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
    if act is not None:
        if not isinstance(act, str):
            raise TypeError(f"act must be one of {list(ACT)} or None, got {type(act).__name__}")
        V.check_choice(act, "act", ACT)
    if alpha is not None:
        alpha = V.check_float(alpha, "alpha", 0.0, 1.0)
        if calibration is None:
            raise ValueError("alpha needs calibration tokens (see quant.calibration_windows): the "
                             "scales come from the activations' per-channel max")
    inputs = model.linear_inputs(calibration) if alpha is not None else {}
    W8A8Linear = _w8a8_linear_class()
    out = model.copy()
    for i, block in enumerate(out.blocks):
        for part, owner, attr in (("attn.qkv", block.attn, "qkv"), ("attn.proj", block.attn, "proj"),
                                  ("mlp.fc1", block.mlp, "fc1"), ("mlp.fc2", block.mlp, "fc2")):
            old = getattr(owner, attr)
            new = W8A8Linear(old.in_features, old.out_features, bias=old.bias is not None, seed=0)
            new.weight, new.bias, new.act = old.weight, old.bias, act
            new.smooth_scale = np.ones(old.in_features, F32)
            if alpha is not None and part in SMOOTHED_LAYERS:
                x_absmax = np.abs(inputs[f"blocks.{i}.{part}"]).max(axis=0)     # max_n |X_nj|
                new.smooth_scale = smooth_scales(x_absmax, old.weight, alpha)
            setattr(owner, attr, new)
    return out
