"""Interactive explorers for the lessons (ipywidgets), one module per lesson.

Widgets are thin: they call the technique modules and the plot modules, precompute what is
slow, and answer each change within ~100 ms on a 2-core CPU.
"""
