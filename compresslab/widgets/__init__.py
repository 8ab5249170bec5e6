"""Interactive explorers for the lessons (ipywidgets), one module per lesson.

Widgets are thin: they call the technique modules and the plot modules, precompute what is
slow, and answer each change within ~100 ms on a 2-core CPU.
"""
from .._lazy import submodule_getattr

_TOPICS = ("tour", "prune", "quant", "distill", "speed", "capstone", "lm", "speculative")


__getattr__ = submodule_getattr(__name__, _TOPICS, globals())
