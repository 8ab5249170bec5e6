"""The one place that knows NumPy from torch.

Every technique in compresslab is written once, in NumPy, so that it reads like its formula.
A learner who is ready for torch can pass a ``torch.Tensor`` (CPU or CUDA) instead; this module
moves it to NumPy for the computation and gives the result back as a tensor of the same kind on
the same device. No other module branches on the array type.

torch is imported lazily: NumPy-only installs never pay for it.
"""
from __future__ import annotations

import functools
import importlib
import sys
from typing import Any, Callable

import numpy as np

__all__ = ["is_torch", "to_numpy", "like", "same_kind", "torch_available", "cuda_available",
           "optional", "needs", "install_hint", "INSTALL"]

# How to install each optional package that a lesson section or a test may need. torch's line
# keeps the download small: PyPI's default torch for Linux is a CUDA build of several GB.
INSTALL = {
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu "
             "(CPU-only, a 190 MB download; on macOS and Windows plain 'pip install torch' is CPU-only)",
    "numba": "pip install 'compresslab[fast]'",
    "nbgrader": "pip install 'compresslab[course]'",
}


def _torch():
    """Return the torch module if it is already imported or importable, else None."""
    mod = sys.modules.get("torch")
    if mod is not None:
        return mod
    try:
        import torch  # noqa: PLC0415  (lazy on purpose)
    except ImportError:
        return None
    return torch


def install_hint(name: str) -> str:
    """How to install the optional package ``name`` (torch: its CPU-only build)."""
    return INSTALL.get(name, f"pip install {name}")


def optional(name: str):
    """The module ``name`` if it can be imported, else None -- without a word.

    For lesson code that runs with or without an optional package: ``torch = optional("torch")``.
    """
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_TOLD: set[str] = set()  # packages whose install line was printed already (once per kernel)


def needs(name: str, shows: str) -> bool:
    """True if the optional package ``name`` can be imported; else print one line and return False.

    The line says what the section would have shown and, the first time for each package, what
    to install, so a lesson section reads ``if needs("torch", "torch's int8 kernels against
    float32"): ...`` and the rest of the lesson runs without the package.
    """
    if optional(name) is not None:
        return True
    line = f"[skipped: needs {name}, not installed] This section would show {shows}."
    if name not in _TOLD:
        _TOLD.add(name)
        line += f" To run it: {install_hint(name)}"
    else:
        line += " (How to install it: see the first such line above.)"
    print(line)
    return False


def torch_available() -> bool:
    return _torch() is not None


def cuda_available() -> bool:
    torch = _torch()
    return bool(torch is not None and torch.cuda.is_available())


def is_torch(x: Any) -> bool:
    """True for a ``torch.Tensor`` without importing torch when it was never imported."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any) -> Any:
    """A NumPy view or copy of ``x`` (tensors are detached and moved to the CPU); other values pass."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return x


def like(value: Any, ref: Any) -> Any:
    """Return ``value`` (NumPy) as the same kind as ``ref``: a tensor on ref's device, or NumPy."""
    if not is_torch(ref):
        return value
    torch = sys.modules["torch"]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value)).to(ref.device)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(like(v, ref) for v in value)
    if isinstance(value, list):
        return [like(v, ref) for v in value]
    if isinstance(value, dict):
        return {k: like(v, ref) for k, v in value.items()}
    return value


def _inside(a: Any):
    """``a`` itself, or what a list, tuple or dict ``a`` holds (one level deep)."""
    if isinstance(a, dict):
        return a.values()
    if isinstance(a, (list, tuple)):
        return a
    return (a,)


def _first_tensor(args: tuple, kwargs: dict) -> Any:
    for a in (*args, *kwargs.values()):
        for b in _inside(a):
            if is_torch(b):
                return b
    return None


def _convert(a: Any) -> Any:
    if is_torch(a):
        return to_numpy(a)
    if isinstance(a, list):
        return [to_numpy(b) for b in a]
    if isinstance(a, tuple) and not hasattr(a, "_fields"):
        return tuple(to_numpy(b) for b in a)
    if isinstance(a, dict):
        return {k: to_numpy(b) for k, b in a.items()}
    return a


def same_kind(fn: Callable) -> Callable:
    """Decorator: run ``fn`` on NumPy and return results of the kind (and device) of its inputs.

    The first torch tensor among the arguments (or inside a list, tuple or dict argument, such
    as a state dict ``{name: tensor}``) decides the output kind; those containers reach ``fn``
    holding NumPy arrays. Arrays inside returned tuples, lists and dicts are converted back too;
    other objects (dataclasses, floats) are returned unchanged.

    Examples
    --------
    >>> @same_kind
    ... def double(x):
    ...     return 2 * x
    >>> double(np.arange(3)).tolist()        # NumPy in, NumPy out; a tensor in gives a tensor
    [0, 2, 4]
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ref = _first_tensor(args, kwargs)
        if ref is None:
            return fn(*args, **kwargs)
        out = fn(*(_convert(a) for a in args), **{k: _convert(v) for k, v in kwargs.items()})
        return like(out, ref)

    return wrapper
