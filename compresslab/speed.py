"""Honest timing: warm-up, repeats, median and spread, threads stated.

``timeit`` is the one timer every lesson and benchmark uses. A speedup is only ever a ratio
of two medians measured in the same run.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _validate as V

__all__ = ["Timing", "timeit", "thread_info"]


def thread_info() -> dict[str, Any]:
    """Threads in use: CPU count, NumPy's BLAS pool (threadpoolctl) and torch, where available."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} x{blas[0].get('num_threads')}"
    except ImportError:
        pass
    import sys
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


@dataclass
class Timing:
    """Seconds per call: median, inter-quartile range, min, and every sample."""

    samples: np.ndarray
    threads: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def min(self) -> float:
        return float(np.min(self.samples))

    def __repr__(self) -> str:
        return (f"Timing(median={_fmt(self.median)}, iqr={_fmt(self.iqr)}, min={_fmt(self.min)}, "
                f"n={len(self.samples)})")


def _fmt(s: float) -> str:
    for unit, f in (("s", 1), ("ms", 1e3), ("us", 1e6)):
        if s * f >= 1:
            return f"{s * f:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def timeit(fn: Callable[[], Any], *, warmup: int = 3, repeat: int = 20, number: int = 1,
           sync: Callable[[], None] | None = None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeat`` samples of ``number`` calls each.

    Each sample is the wall time of ``number`` calls divided by ``number`` (use number > 1 for
    calls shorter than ~100 us). ``sync`` is called before starting and stopping each sample's
    clock (pass ``torch.cuda.synchronize`` for GPU work, which is asynchronous).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    V.check_int(warmup, "warmup", 0)
    V.check_int(repeat, "repeat", 1)
    V.check_int(number, "number", 1)
    for _ in range(warmup):
        fn()
    samples = np.empty(repeat)
    for r in range(repeat):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if sync is not None:
            sync()
        samples[r] = (time.perf_counter() - t0) / number
    return Timing(samples, thread_info())
