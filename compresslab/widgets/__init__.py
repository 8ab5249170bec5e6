"""Interactive explorers for the lessons (ipywidgets), one module per lesson.

Widgets are thin: they call the technique modules and the plot modules, precompute what is
slow, and answer each change within ~100 ms on a 2-core CPU.
"""
import importlib

_TOPICS = ("tour", "prune", "quant", "distill", "speed", "capstone")


def __getattr__(name):
    if name in _TOPICS:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'compresslab.widgets' has no attribute {name!r}")
