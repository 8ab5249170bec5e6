"""Exercise checkers, one module per lesson (``lesson00``, ``lesson01``, ...).

>>> from compresslab.exercises import lesson00 as ex          # doctest: +SKIP
>>> ex.check_model_bytes(model_bytes)                          # doctest: +SKIP
[PASS] Exercise 0.1 (model bytes): all 9 test cases agree with the reference.
"""
from __future__ import annotations

import importlib
import pkgutil
import re

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


def _order(exercise: str) -> list[tuple[int, str]]:
    """"1.2" -> [(1, ""), (2, "")], "2a.quiz" -> [(2, "a"), (10**6, "quiz")]: by lesson number,
    then exercise number; a lesson's quiz comes after its exercises."""
    key = []
    for part in exercise.split("."):
        m = re.match(r"(\d*)(.*)", part)
        key.append((int(m.group(1)) if m.group(1) else 10**6, m.group(2)))
    return key


def __getattr__(name: str):
    # `cl.exercises.lesson01` works without an explicit import
    if name.startswith("lesson"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            pass
    raise AttributeError(f"module 'compresslab.exercises' has no attribute {name!r}")
