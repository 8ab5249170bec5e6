"""Exercise checkers, one module per lesson (``lesson00``, ``lesson01``, ...).

>>> from compresslab.exercises import lesson00 as ex          # doctest: +SKIP
>>> ex.check_model_bytes(model_bytes)                          # doctest: +SKIP
[PASS] Exercise 0.1 (model bytes): all 9 test cases agree with the reference.
"""
from __future__ import annotations

import importlib
import pkgutil

from ._core import (
    ERROR,
    FAIL,
    NOT_ATTEMPTED,
    PASS,
    REGISTRY,
    Case,
    CheckResult,
    Feedback,
    Mistake,
    Question,
    checker,
    compare_cases,
    quiz,
    reset,
    results,
    results_as_dicts,
    same,
)

__all__ = ["PASS", "FAIL", "NOT_ATTEMPTED", "ERROR", "Case", "CheckResult", "Feedback", "Mistake", "Question",
           "checker", "quiz", "compare_cases", "results", "results_as_dicts", "reset", "same", "all_checkers"]


def all_checkers() -> dict[str, dict]:
    """Import every lesson's checker module and return the registry {exercise id: info}."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("lesson"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return dict(sorted(REGISTRY.items(), key=lambda kv: _order(kv[0])))


def _order(exercise: str) -> list[int]:
    """"1.2" -> [1, 2]; a lesson's quiz ("1.quiz") comes after its exercises."""
    return [int(p) if p.isdigit() else 10**6 for p in exercise.split(".")]


def __getattr__(name: str):
    # `cl.exercises.lesson01` works without an explicit import
    if name.startswith("lesson"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            pass
    raise AttributeError(f"module 'compresslab.exercises' has no attribute {name!r}")
