"""The laws that explain a timing: the roofline, Amdahl and Gustafson, the break-even sparsity.

* the roofline -- attainable FLOP/s ``= min(peak, I x bandwidth)`` for arithmetic intensity ``I``
  (Williams, Waterman & Patterson, "Roofline: an insightful visual performance model for
  multicore architectures", CACM 2009); :func:`compresslab.speed.timing.measure_roofline`
  measures this machine's peak and bandwidth;
* Amdahl's law ``S(n) = 1 / ((1 - p) + p / n)`` (Amdahl, AFIPS 1967), Gustafson's scaled speedup
  ``S(n) = (1 - p) + p n`` (Gustafson, "Reevaluating Amdahl's law", CACM 1988), and the
  least-squares fit of ``p`` to measured speedups (what
  :func:`compresslab.speed.timing.thread_scaling` reports);
* the break-even sparsity of a sparse kernel, read from a measured sweep.

Everything here is a formula: nothing is timed, and NumPy is all it needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .cost import arithmetic_intensity

__all__ = ["Roofline", "amdahl", "gustafson", "fit_parallel_fraction", "break_even"]


# --------------------------------------------------------------------------------------------
# Roofline
# --------------------------------------------------------------------------------------------
@dataclass
class Roofline:
    """The roofline model: attainable FLOP/s = ``min(peak_flops, intensity * bandwidth)``.

    Williams, Waterman & Patterson, CACM 52(4), 2009. ``ridge`` = peak / bandwidth is the
    intensity (FLOP per byte) above which an operation can be compute-bound.

    Parameters
    ----------
    peak_flops : float
        The machine's best FLOP/s (see :func:`compresslab.speed.timing.measure_roofline`).
    bandwidth : float
        Its memory bandwidth in bytes/s.
    threads : dict
        The thread counts in force when both were measured.

    Attributes
    ----------
    ridge : float
        ``peak_flops / bandwidth``, FLOP per byte.

    See Also
    --------
    compresslab.speed.timing.measure_roofline : measures both numbers on this machine.
    compresslab.speed.cost.arithmetic_intensity : the ``I`` of an operation.

    Examples
    --------
    >>> roof = Roofline(peak_flops=100e9, bandwidth=10e9)
    >>> roof.ridge
    10.0
    >>> roof.attainable(2.0) / 1e9, roof.bound(2.0)
    (20.0, 'memory-bound')
    >>> roof.attainable(50.0) / 1e9, roof.bound(50.0)
    (100.0, 'compute-bound')
    """

    peak_flops: float
    bandwidth: float
    threads: dict = field(default_factory=dict)

    @property
    def ridge(self) -> float:
        """``peak_flops / bandwidth``: the intensity where the two roofs meet."""
        return self.peak_flops / self.bandwidth

    def attainable(self, intensity):
        """Upper bound on FLOP/s at arithmetic intensity ``intensity`` (scalar or array)."""
        i = np.asarray(intensity, dtype=float)
        out = np.minimum(self.peak_flops, i * self.bandwidth)
        return float(out) if out.ndim == 0 else out

    def bound(self, intensity: float) -> str:
        """The verdict at ``intensity``: "compute-bound" when ``intensity >= ridge``, else "memory-bound"."""
        return "compute-bound" if intensity >= self.ridge else "memory-bound"

    def place(self, flops: float, nbytes: float, seconds: float | None = None) -> dict:
        """Where work of ``flops`` over ``nbytes`` sits; with ``seconds``, also what it achieved.

        Keys: ``intensity``, ``attainable``, ``bound``; with ``seconds`` also
        ``achieved = flops / seconds`` and ``fraction_of_roof = achieved / attainable``.
        """
        i = arithmetic_intensity(flops, nbytes)
        d = {"intensity": i, "attainable": self.attainable(i), "bound": self.bound(i)}
        if seconds is not None:
            d["achieved"] = flops / seconds
            d["fraction_of_roof"] = d["achieved"] / d["attainable"]
        return d

    def to_dict(self) -> dict:
        """JSON-ready: peak_flops, bandwidth, ridge and threads."""
        return {"peak_flops": self.peak_flops, "bandwidth": self.bandwidth, "ridge": self.ridge,
                "threads": self.threads}


# --------------------------------------------------------------------------------------------
# Amdahl, Gustafson
# --------------------------------------------------------------------------------------------
def _check_fraction(p):
    arr = np.asarray(p, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"p (parallel fraction) must lie in [0, 1], got {p!r}")
    return arr


def _check_workers(n):
    arr = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(f"n (workers) must be >= 1, got {n!r}")
    return arr


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def amdahl(p, n):
    """Amdahl's law: speedup of a *fixed* job on ``n`` workers, ``S = 1 / ((1 - p) + p / n)``.

    ``p`` is the fraction of the one-worker time that parallelises perfectly. However many
    workers, ``S < 1 / (1 - p)``. (Amdahl, AFIPS Spring Joint Computer Conference, 1967.)

    Parameters
    ----------
    p : float or array_like in [0, 1]
        Parallel fraction of the one-worker time.
    n : float or array_like >= 1
        Workers (threads, cores); broadcast against ``p``.

    Returns
    -------
    float or ndarray
        The speedup ``S``; a float when ``p`` and ``n`` are both scalars.

    See Also
    --------
    gustafson : when the job grows with the workers.
    fit_parallel_fraction : ``p`` from measured speedups.

    Examples
    --------
    >>> amdahl(0.5, 2)
    1.3333333333333333
    >>> amdahl(0.9, [1, 10])
    array([1.        , 5.26315789])
    >>> round(amdahl(0.9, 1e9), 3)                     # the limit 1 / (1 - p)
    10.0
    """
    p, n = _check_fraction(p), _check_workers(n)
    return _scalar(1.0 / ((1.0 - p) + p / n))


def gustafson(p, n):
    """Gustafson's scaled speedup: the job *grows* with the workers, ``S = (1 - p) + p * n``.

    ``p`` is the parallel fraction of the time on ``n`` workers. (Gustafson, "Reevaluating
    Amdahl's law", Communications of the ACM 31(5), 1988.)

    Parameters
    ----------
    p : float or array_like in [0, 1]
        Parallel fraction of the time on ``n`` workers (not of the one-worker time, as in
        :func:`amdahl`).
    n : float or array_like >= 1
        Workers; broadcast against ``p``.

    Returns
    -------
    float or ndarray
        The scaled speedup ``S``; a float when ``p`` and ``n`` are both scalars.

    See Also
    --------
    amdahl : the speedup of a fixed job.

    Examples
    --------
    >>> gustafson(0.5, 2)
    1.5
    >>> gustafson(0.5, [1, 2, 4])                      # grows linearly in n
    array([1. , 1.5, 2.5])
    """
    p, n = _check_fraction(p), _check_workers(n)
    return _scalar((1.0 - p) + p * n)


def fit_parallel_fraction(n: Sequence[float], speedup: Sequence[float]) -> float:
    """Least-squares ``p`` of Amdahl's law from measured speedups at ``n`` workers.

    Amdahl gives ``1/S = 1 - p (1 - 1/n)``, linear in ``p``; with ``a = 1 - 1/n`` and
    ``y = 1 - 1/S``, ``p = sum(a y) / sum(a^2)``, clipped to [0, 1].

    Parameters
    ----------
    n : sequence of float >= 1
        Workers of each measurement; at least one above 1 (at ``n = 1``, ``a = 0``: no weight).
    speedup : sequence of float > 0
        Measured speedup over one worker at each ``n``.

    Returns
    -------
    float
        The parallel fraction ``p`` in [0, 1].

    See Also
    --------
    amdahl
    compresslab.speed.timing.thread_scaling : measures the speedups and fits ``p`` with this.

    Notes
    -----
    The least squares are taken on ``1 - 1/S``, where the law is linear, not on ``S`` itself.

    Examples
    --------
    >>> round(fit_parallel_fraction([1, 2, 4], [1.0, amdahl(0.8, 2), amdahl(0.8, 4)]), 6)
    0.8
    """
    n = _check_workers(n).ravel()
    s = np.asarray(speedup, dtype=float).ravel()
    if n.shape != s.shape:
        raise ValueError(f"n and speedup must have the same length, got {n.size} and {s.size}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("speedup must hold positive finite numbers")
    a = 1.0 - 1.0 / n
    if not np.any(a > 0):
        raise ValueError("need at least one measurement with n > 1 to fit a parallel fraction")
    y = 1.0 - 1.0 / s
    return float(np.clip(np.sum(a * y) / np.sum(a * a), 0.0, 1.0))


# --------------------------------------------------------------------------------------------
# Sparse kernels: the measured break-even sparsity
# --------------------------------------------------------------------------------------------
def break_even(sparsities: Sequence[float], speedups: Sequence[float]) -> float | None:
    """The measured break-even sparsity: the smallest tested sparsity from which on the sparse
    kernel is faster (speedup > 1) at *every* tested sparsity at or above it; None if there is
    none (or nothing was measured).

    Parameters
    ----------
    sparsities : sequence of float
        Tested sparsities (fractions of zero weights), in any order; a sparsity may be measured
        more than once, and then counts as faster only when every measurement at it is.
    speedups : sequence of float
        Speedup of the sparse kernel over the dense one at each sparsity (> 1: sparse is faster).

    Returns
    -------
    float or None
        The break-even sparsity, or None.

    Notes
    -----
    ``min {s : every measurement at a sparsity >= s is > 1}``. A win followed by a loss at a
    higher tested sparsity does not count, which is why the first example gives 0.95, not 0.8.

    Examples
    --------
    >>> break_even([0.5, 0.8, 0.9, 0.95], [0.3, 1.1, 0.9, 2.5])
    0.95
    >>> break_even([0.5, 0.9], [0.5, 0.8]) is None
    True
    >>> break_even([0.9, 0.95, 0.9], [1.2, 1.5, 0.98])       # 0.9 lost once: it does not count
    0.95
    """
    s = np.asarray(sparsities, dtype=float)
    v = np.asarray(speedups, dtype=float)
    if s.shape != v.shape or s.ndim != 1:
        raise ValueError("sparsities and speedups must be 1-D sequences of the same length")
    not_faster = s[~(v > 1)]
    faster_from = [x for x in s if np.all(x > not_faster)]
    return float(min(faster_from)) if faster_from else None
