"""Lazy submodule access: ``package.name`` imports ``package/name.py`` on first use."""
from __future__ import annotations

import importlib
from typing import Callable, Iterable


def submodule_getattr(package: str, names: Iterable[str], namespace: dict) -> Callable:
    """A module-level ``__getattr__`` for ``package`` importing the submodules ``names`` on demand."""
    names = frozenset(names)

    def __getattr__(name: str):
        if name in names:
            module = importlib.import_module(f"{package}.{name}")
            namespace[name] = module
            return module
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
