"""matplotlib figures used by the lessons and widgets, one module per topic.

Plots never contain algorithmic code: they draw what the technique modules computed.
matplotlib is imported only when a plot module is used.
"""
from __future__ import annotations

from .._lazy import submodule_getattr

_TOPICS = ("common", "tour", "prune", "quant", "distill", "speed", "capstone", "lm", "lm_speed", "speculative")


__getattr__ = submodule_getattr(__name__, _TOPICS, globals())
