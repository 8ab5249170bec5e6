"""matplotlib figures used by the lessons and widgets, one module per topic.

Plots never contain algorithmic code: they draw what the technique modules computed.
matplotlib is imported only when a plot module is used.
"""
from __future__ import annotations

import importlib

_TOPICS = ("common", "tour", "prune", "quant", "distill", "speed", "capstone")


def __getattr__(name):
    if name in _TOPICS:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'compresslab.plots' has no attribute {name!r}")
