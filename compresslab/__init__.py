"""compresslab: learn neural-network compression and acceleration by doing it.

Submodules are imported on first use, so ``import compresslab`` needs only NumPy and is fast:

>>> import compresslab as cl
>>> digits = cl.data.load_digits(seed=0)      # doctest: +SKIP
>>> model = cl.nn.mlp((64, 300, 100, 10))     # doctest: +SKIP
"""
from __future__ import annotations

from ._lazy import submodule_getattr

__version__ = "0.1.0"

_SUBMODULES = (
    "backend", "data", "nn", "speed", "exercises", "prune", "quant", "distill", "encode",
    "lowrank", "speculative", "plots", "widgets", "cli", "report", "course", "grading", "bench",
)

__all__ = list(_SUBMODULES) + ["__version__"]


__getattr__ = submodule_getattr(__name__, _SUBMODULES, globals())


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
