"""Integer-only inference (Jacob et al. 2018 CVPR, sec. 2.2): int8 weights, uint8 activations,
int32 accumulators, and the real rescaling factor applied as an integer multiply and a shift."""
from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import nn
from .grid import F32, QParams
from .linear import dequantize, quantize
from .observers import qparams

__all__ = ["quantize_multiplier", "requantize", "IntegerLinear"]


def quantize_multiplier(M) -> tuple[np.ndarray, np.ndarray]:
    """Write a real multiplier ``0 < M < 1`` as ``M = M0 * 2**-n`` with an int32 ``M0`` in
    ``[2**30, 2**31)`` (a fixed-point number in [0.5, 1) with 31 fractional bits).

    Jacob et al. 2018, sec. 2.2: ``M = 2**-s * M0'`` with ``M0'`` in [0.5, 1); here
    ``M0 = round(M0' * 2**31)`` and ``n = s + 31``. Works element-wise on arrays.

    Parameters
    ----------
    M : float or float array
        Real multipliers, each in (0, 1) (e.g. ``s_x * s_w / s_y``).

    Returns
    -------
    M0 : int32 array of M's shape
        Mantissas in ``[2**30, 2**31)``.
    n : int64 array of M's shape
        Right shifts, so that ``M ~ M0 * 2**-n`` (relative error at most ``2**-31``).

    Raises
    ------
    ValueError
        If some ``M`` is not in (0, 1), or so small that ``n > 62``.

    See Also
    --------
    requantize : applies ``M0`` and ``n`` to an int32 accumulator.

    Notes
    -----
    ``M0' * 2**31`` is rounded half to even (``np.rint``); when it rounds up to ``2**31``, the
    result becomes ``M0 = 2**30`` with one shift less.

    Examples
    --------
    >>> M0, n = quantize_multiplier(0.3)
    >>> int(M0), int(n), float(M0) * 2.0 ** -int(n)
    (1288490189, 32, 0.30000000004656613)
    """
    M = V.as_float_array(M, "M").astype(np.float64)
    if not np.isfinite(M).all() or (M <= 0).any() or (M >= 1).any():
        raise ValueError(f"M must lie in (0, 1), got {V.short(M)}")
    mant, exp = np.frexp(M)            # M = mant * 2**exp, mant in [0.5, 1)
    M0 = np.rint(mant * 2.0 ** 31).astype(np.int64)
    carry = M0 == 2 ** 31              # mant rounded up to 1.0
    M0 = np.where(carry, 2 ** 30, M0)
    exp = np.where(carry, exp + 1, exp)
    n = (31 - exp).astype(np.int64)
    if (n > 62).any():
        raise ValueError("M is too small to represent with a 64-bit shift")
    return M0.astype(np.int32), n


def requantize(acc, M0, n, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """int32 accumulator -> output integers: ``clamp(zero_point + round(acc * M0 * 2**-n))``.

    The product ``acc * M0`` is exact in int64 and the rounding shift adds ``2**(n-1)`` before
    ``>> n`` (round half up), so the whole step uses integer arithmetic only.

    Parameters
    ----------
    acc : integer array
        int32 accumulators (e.g. from :meth:`IntegerLinear.accumulate`). Wider ones are
        computed exactly and clamped, never wrapped.
    M0, n : integer arrays or ints
        The multiplier ``M ~ M0 * 2**-n`` from :func:`quantize_multiplier`; broadcast against
        ``acc`` (one per output channel, or one for all).
    zero_point : int
        Output zero point.
    qmin, qmax : int
        Output integer range.

    Returns
    -------
    int64 array of acc's shape
        Values in ``[qmin, qmax]``; cast to the output type yourself.

    See Also
    --------
    quantize_multiplier, IntegerLinear

    Notes
    -----
    "Round half up" means towards +inf: ``-2.5`` becomes -2, whereas
    :func:`compresslab.quant.quantize` rounds ties to even. ``n`` must be at least 1.

    Examples
    --------
    >>> M0, n = quantize_multiplier(0.25)                   # M0 = 2**30, n = 32
    >>> requantize(np.array([10, -10, 1000]), M0, n, zero_point=128, qmin=0, qmax=255).tolist()
    [131, 126, 255]
    """
    acc, M0, n = V.check_requantize(acc, M0, n, zero_point, qmin, qmax)
    y = (acc * M0 + (1 << (n - 1))) >> n
    return np.clip(y + zero_point, qmin, qmax).astype(np.int64)


class IntegerLinear:
    """A Linear layer computed with integers only (Jacob et al. 2018 CVPR, eq. 7):

    ``q_y = z_y + M * (sum_j (q_w[i, j] - 0) * (q_x[j] - z_x) + q_b)``, accumulated in int32,
    with ``M = s_x * s_w / s_y`` applied as ``M0 * 2**-n`` and ``q_b = round(b / (s_x s_w))``.

    Weights are int8 symmetric (per output channel by default, zero point 0); inputs and outputs
    are uint8 affine with the given QParams. ``relu=True`` fuses a ReLU by clamping at ``z_y``.

    Parameters
    ----------
    layer : compresslab.nn.Linear
        The float layer; its weight and bias are quantized once, here.
    in_qp, out_qp : QParams
        Per-tensor quantizers of the input and the output (e.g. ``qparams(x)``).
    per_channel : bool, default True
        One weight scale per output feature, or one for the whole weight.
    relu : bool, default False
        Fuse a ReLU: outputs below the output zero point (real 0) are clamped to it.
    weight_bits : int in [2, 16], default 8
        Bits of the symmetric weight quantizer.

    Attributes
    ----------
    w_qp : QParams
        The weight quantizer.
    q_w : integer array (out_features, in_features)
        Quantized weights.
    q_b : int32 array (out_features,)
        Quantized bias, scale ``s_x * s_w``.
    bias_scale : float64 array (out_features,)
        ``s_x * s_w``.
    M : float64 array (out_features,)
        ``s_x * s_w / s_y``.
    M0, n : arrays (out_features,)
        ``M`` as an int32 mantissa and a shift (:func:`quantize_multiplier`).

    See Also
    --------
    quantize_multiplier, requantize

    Notes
    -----
    ``M`` must lie in (0, 1) for every output channel, else the constructor raises ValueError.

    Examples
    --------
    >>> layer, x = nn.Linear(3, 2, seed=0), np.random.default_rng(0).uniform(-1, 1, (4, 3))
    >>> il = IntegerLinear(layer, qparams(x), qparams(layer(x)))
    >>> q_x = quantize(x, il.in_qp)                              # uint8 inputs
    >>> il.forward(q_x).tolist() == il.reference(q_x).tolist(), il.forward(q_x).dtype
    (True, dtype('uint8'))
    """

    def __init__(self, layer, in_qp: QParams, out_qp: QParams, *, per_channel: bool = True,
                 relu: bool = False, weight_bits: int = 8):
        if not isinstance(layer, nn.Linear):
            raise TypeError(f"layer must be a compresslab.nn.Linear, got {type(layer).__name__}")
        for name, qp in (("in_qp", in_qp), ("out_qp", out_qp)):
            if not isinstance(qp, QParams) or qp.per_channel:
                raise TypeError(f"{name} must be a per-tensor QParams")
        self.in_qp, self.out_qp, self.relu = in_qp, out_qp, bool(relu)
        self.w_qp = qparams(layer.weight, weight_bits, "symmetric", axis=0 if per_channel else None)
        self.q_w = quantize(layer.weight, self.w_qp)                    # int8
        s_w = np.broadcast_to(np.asarray(self.w_qp.scale, np.float64), (layer.out_features,))
        self.bias_scale = np.float64(in_qp.scale) * s_w          # s_x * s_w
        b = layer.bias if layer.bias is not None else np.zeros(layer.out_features, F32)
        self.q_b = np.rint(b / self.bias_scale).astype(np.int32)  # int32 bias, zero point 0
        self.M = self.bias_scale / np.float64(out_qp.scale)
        self.M0, self.n = quantize_multiplier(self.M)

    def accumulate(self, q_x) -> np.ndarray:
        """int32 accumulator ``(q_x - z_x) @ q_w.T + q_b``."""
        q_x = np.asarray(q_x)
        if q_x.dtype.kind not in "iu":
            raise TypeError(f"q_x must be integers (quantized inputs), got dtype {q_x.dtype}")
        return (q_x.astype(np.int32) - np.int32(self.in_qp.zero_point)) @ self.q_w.T.astype(np.int32) + self.q_b

    def forward(self, q_x) -> np.ndarray:
        """Quantized inputs -> quantized outputs, integer arithmetic only."""
        lo = self.out_qp.zero_point if self.relu else self.out_qp.qmin
        q = requantize(self.accumulate(q_x), self.M0, self.n, self.out_qp.zero_point, lo,
                       self.out_qp.qmax)
        return q.astype(self.out_qp.dtype)

    def reference(self, q_x) -> np.ndarray:
        """The same layer in float: fake-quantized operands, float math, quantized output."""
        x_hat = dequantize(np.asarray(q_x), self.in_qp).astype(np.float64)
        w_hat = dequantize(self.q_w, self.w_qp).astype(np.float64)
        y = x_hat @ w_hat.T + self.q_b * self.bias_scale
        if self.relu:
            y = np.maximum(y, 0)
        return quantize(y.astype(F32), self.out_qp)
