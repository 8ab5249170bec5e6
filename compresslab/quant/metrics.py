"""How far a quantized tensor is from the original: SQNR, mean squared and largest error."""
from __future__ import annotations

import math

import numpy as np

from .. import _validate as V

__all__ = ["sqnr", "mse", "max_abs_error"]


def _pair(x, xq):
    a = V.as_float_array(x, "x").astype(np.float64)
    b = V.as_float_array(xq, "xq").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"x and xq must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def sqnr(x, xq) -> float:
    """Signal-to-quantization-noise ratio in dB: ``10 log10(sum(x**2) / sum((x - xq)**2))``.

    About 6 dB per bit for a uniform quantizer of a well-scaled signal; ``inf`` when exact.

    Parameters
    ----------
    x : array or tensor
        The original values.
    xq : array or tensor of x's shape
        Their quantized approximation (e.g. from :func:`compresslab.quant.fake_quantize`).

    Returns
    -------
    float
        In decibels; ``inf`` when ``xq == x`` everywhere, ``-inf`` when ``x`` is all zeros and
        ``xq`` is not.

    See Also
    --------
    mse, max_abs_error

    Notes
    -----
    Both sums are computed in float64. Higher is better: each extra bit halves the step, which
    divides the noise power by 4 (``10 log10(4) = 6.02`` dB).

    Examples
    --------
    >>> from compresslab.quant import fake_quantize, qparams
    >>> x = np.random.default_rng(0).uniform(-1, 1, 10_000)
    >>> [round(sqnr(x, fake_quantize(x, qparams(x, bits=b))), 1) for b in (4, 6, 8)]   # +12 dB per 2 bits
    [23.5, 36.0, 48.1]
    >>> sqnr(x, x)
    inf
    """
    a, b = _pair(x, xq)
    noise = float(((a - b) ** 2).sum())
    signal = float((a ** 2).sum())
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def mse(x, xq) -> float:
    """Mean squared error between a tensor and its quantized approximation: ``mean((x - xq)**2)``.

    Parameters
    ----------
    x : array or tensor
        The original values.
    xq : array or tensor of x's shape
        Their quantized approximation.

    Returns
    -------
    float
        Computed in float64.

    See Also
    --------
    sqnr, max_abs_error, compresslab.quant.mse_range : the range that minimises this error.

    Examples
    --------
    >>> round(mse([1.0, 2.0, 3.0], [1.0, 2.5, 2.0]), 4)         # (0 + 0.25 + 1) / 3
    0.4167
    """
    a, b = _pair(x, xq)
    return float(((a - b) ** 2).mean())


def max_abs_error(x, xq) -> float:
    """Largest absolute error: ``max |x - xq|``.

    At most ``scale / 2`` inside the quantizer's range for round-to-nearest; values clipped
    outside the range can be off by more.

    Parameters
    ----------
    x : array or tensor
        The original values.
    xq : array or tensor of x's shape
        Their quantized approximation.

    Returns
    -------
    float

    See Also
    --------
    sqnr, mse

    Examples
    --------
    >>> from compresslab.quant import fake_quantize, qparams
    >>> x = np.linspace(-1, 1, 101); qp = qparams(x, bits=4)
    >>> round(max_abs_error(x, fake_quantize(x, qp)), 4), round(float(qp.scale) / 2, 4)   # half a step
    (0.0667, 0.0667)
    """
    a, b = _pair(x, xq)
    return float(np.abs(a - b).max())
