"""The checker framework behind every exercise.

A checker runs the learner's function on a few random and edge-case inputs, compares each
result with the reference implementation, and prints one clear line: a pass, or a *specific*
hint. Hints come from "classic mistakes": a checker computes what a typical wrong version would
return, and if the learner's answer equals it, says what that mistake is (when several match
the failing case, the one that agrees with the answer on the most cases). Nothing the learner
writes can crash the notebook: exceptions become hints, and ``NotImplementedError`` (the
untouched student edition) reads "not attempted yet".

Every result is also recorded (``results()``) so ``compresslab grade`` can collect them.
Set the environment variable ``COMPRESSLAB_STRICT=1`` to make a failing check raise
``AssertionError`` (what nbgrader's autograder expects of a test cell).
"""
from __future__ import annotations

import decimal
import fractions
import functools
import os
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

PASS, FAIL, NOT_ATTEMPTED, ERROR = "pass", "fail", "not attempted", "error"

_ICONS = {PASS: "PASS", FAIL: "TRY AGAIN", NOT_ATTEMPTED: "NOT ATTEMPTED YET", ERROR: "ERROR"}

REGISTRY: dict[str, dict] = {}
_RESULTS: list["CheckResult"] = []


@dataclass
class CheckResult:
    exercise: str
    title: str
    status: str
    message: str

    def __str__(self) -> str:
        return f"[{_ICONS[self.status]}] Exercise {self.exercise} ({self.title}): {self.message}"

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True)
class Case:
    """One input to try: a short description (shown in hints) and the positional arguments.

    ``equal``, when given, replaces :func:`compare_cases`' ``equal`` for this case only (for
    example "the same mask up to the order of tied weights", which needs the case's input)."""

    description: str
    args: tuple
    kwargs: dict | None = None
    equal: Callable[[Any, Any], bool] | None = None


@dataclass(frozen=True)
class Mistake:
    """A classic wrong version: if the learner's output equals ``fn(*args)``, show ``hint``."""

    fn: Callable[..., Any]
    hint: str


class Feedback(Exception):
    """Raised inside a checker to fail with a specific message."""


def results() -> list[CheckResult]:
    """Every check run so far in this process (newest last)."""
    return list(_RESULTS)


def results_as_dicts() -> list[dict]:
    return [asdict(r) for r in _RESULTS]


def reset() -> None:
    _RESULTS.clear()


# --------------------------------------------------------------------------------------------
# The results channel of `compresslab grade` (see compresslab/grading.py)
# --------------------------------------------------------------------------------------------
# The grader runs a hidden first cell that calls ``_seal()``: it reads (and deletes) a one-time
# key file, opens the results file, forgets both paths, and snapshots the checkers' functions.
# Each result is then written as one JSON line signed with HMAC-SHA256 under that key, with a
# sequence number and the names of any checker internals replaced since the seal. Records a
# submission appends by hand carry no valid signature and get it flagged. This raises the bar;
# it is not a proof: the key lives in this process, which runs the submission's code too.
_WATCHED_NUMPY = ("allclose", "array_equal", "isclose", "asarray", "array", "issubdtype", "sum", "abs")


def _make_channel():
    state: dict[str, Any] = {"fd": None, "key": None, "seq": 0, "snap": None}

    def ident(obj) -> tuple:
        """What replacing a function (or its code, defaults, or what its closure holds) changes."""
        cells = tuple(id(c.cell_contents) for c in (getattr(obj, "__closure__", None) or ())
                      if _cell_filled(c))
        return (id(obj), id(getattr(obj, "__code__", None)), id(getattr(obj, "__defaults__", None)),
                id(getattr(obj, "__kwdefaults__", None)), cells)

    def snapshot() -> dict:
        import sys
        import types

        snap = {}
        for mod_name, mod in list(sys.modules.items()):
            if not isinstance(mod, types.ModuleType):
                continue
            checkers = mod_name.startswith("compresslab.exercises")
            library = mod_name == "compresslab" or (mod_name.startswith("compresslab.") and not checkers)
            if not (checkers or library):
                continue
            for name, obj in list(vars(mod).items()):
                if isinstance(obj, types.ModuleType) or not callable(obj):
                    continue
                if not isinstance(obj, type):
                    snap[f"{mod_name}.{name}"] = ident(obj)
                elif checkers and getattr(obj, "__module__", None) == mod_name:
                    # the checkers' classes (CheckResult, Feedback, ...): their methods too
                    attrs = {k: v for k, v in list(vars(obj).items())
                             if callable(v) or isinstance(v, (property, staticmethod, classmethod))}
                    snap[f"{mod_name}.{name}"] = (id(obj), frozenset(attrs))
                    for k, v in attrs.items():
                        snap[f"{mod_name}.{name}.{k}"] = ident(getattr(v, "fget", None) or v)
        for name in _WATCHED_NUMPY:
            snap[f"numpy.{name}"] = (id(getattr(np, name, None)), None, ())
        return snap

    def seal() -> None:
        """Arm the channel (called once by the grader's hidden first cell)."""
        key_file = os.environ.pop("COMPRESSLAB_RESULTS_KEY_FILE", None)
        path = os.environ.pop("COMPRESSLAB_RESULTS_FILE", None)
        if key_file and path and state["key"] is None:
            with open(key_file, "rb") as f:
                state["key"] = f.read()
            os.unlink(key_file)
            state["fd"] = os.open(path, os.O_WRONLY | os.O_APPEND)
        state["snap"] = snapshot()

    def integrity() -> list[str]:
        """Names of checker internals (and watched numpy functions) replaced since the seal."""
        if state["snap"] is None:
            return []
        now = snapshot()
        return sorted(k for k, v in state["snap"].items() if now.get(k) != v)

    def emit(exercise: str, title: str, status: str, message: str, tampered: list[str]) -> None:
        """Write one record, built from the values the checker holds (not from a result object
        whose class the submission could have patched)."""
        import hashlib
        import hmac
        import json

        record = {"exercise": str.__str__(exercise), "title": str.__str__(title),
                  "status": str.__str__(status), "message": str.__str__(message)[:2000],
                  "seq": state["seq"], "tampered": [str(t) for t in tampered]}
        state["seq"] += 1
        if state["fd"] is not None:
            payload = json.dumps(record, sort_keys=True, separators=(",", ":"))
            record["mac"] = hmac.new(state["key"], payload.encode(), hashlib.sha256).hexdigest()
            os.write(state["fd"], (json.dumps(record) + "\n").encode())
            return
        path = os.environ.get("COMPRESSLAB_RESULTS_FILE")   # unsealed: plain records (not graded)
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    return seal, integrity, emit


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
        return True
    except ValueError:
        return False


_seal, _integrity, _emit = _make_channel()


def _record(result: CheckResult) -> None:
    """Append the result to the grader's results channel (``compresslab grade``), at once, so a
    later crash of the kernel cannot lose it."""
    _emit(result.exercise, result.title, result.status, str(result.message), [])


# --------------------------------------------------------------------------------------------
# Answers that call the library function they are asked to write
# --------------------------------------------------------------------------------------------
# exercise -> the library functions whose job the exercise asks the learner to do (dotted names,
# looked up when a check runs; a name that no longer exists is ignored). A checker's reference,
# when it is a public library function, is forbidden too. ``checker(..., forbidden=...)`` and
# ``compare_cases(..., forbidden=...)`` add more.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "0.1": ("compresslab.nn.nbytes",),     # the answer may count with num_params: it is given
    "0.2": ("compresslab.nn.evaluate",),
    "1.1": ("compresslab.prune.magnitude",),
    "1.2": ("compresslab.prune.structured",),
    "1.6": ("compresslab.prune.polynomial_decay",),
    "2.1": ("compresslab.quant.linear.quantize",),
    "2.2": ("compresslab.quant.linear.scale_zero_point", "compresslab.quant.observers.qparams"),
    "2.3": ("compresslab.quant.linear.quantize", "compresslab.quant.linear.scale_zero_point",
            "compresslab.quant.observers.qparams"),
    "2.4": ("compresslab.quant.integer.requantize",),
    "2.5": ("compresslab.quant.linear.fake_quantize",),
    "3.1": ("compresslab.distill.kd_loss",),
    "3.2": ("compresslab.distill.kd_loss",),
    "3.3": ("compresslab.distill.kd_loss",),
    "4.1": ("compresslab.speed.laws.break_even",),
    "4.2": ("compresslab.encode.csr_decode",),
    "4.3": ("compresslab.speed.laws.amdahl",),
    "4.4": ("compresslab.speed.cost.layer_costs",),
    "5.1": ("compresslab.encode.relative_index_encode",),
    "5.2": ("compresslab.encode.huffman_lengths", "compresslab.encode.huffman_code",
            "compresslab.encode.huffman_encode"),
}
_FORBIDDEN_NOW: list[Any] = []          # names or functions forbidden while the current check runs


def _resolve(names) -> list[tuple[str, Callable]]:
    import importlib

    out = []
    for item in names:
        if callable(item):
            mod = getattr(item, "__module__", "") or ""
            out.append((f"{mod}.{getattr(item, '__qualname__', item)}", item))
            continue
        mod_name, _, attr = item.rpartition(".")
        try:
            fn = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError):
            continue
        out.append((item, fn))
    # Compare the function's own code, not a decorator's wrapper: every function wrapped by the
    # same decorator shares the wrapper's code object.
    import inspect

    out = [(n, inspect.unwrap(f)) for n, f in out]
    return [(n, f) for n, f in out if getattr(f, "__code__", None) is not None]


def _library_function(fn) -> bool:
    mod = getattr(fn, "__module__", "") or ""
    return (mod.startswith("compresslab.") and not mod.startswith("compresslab.exercises")
            and not getattr(fn, "__name__", "_").startswith("_") and hasattr(fn, "__code__"))


def _shown(name: str) -> str:
    for inner in ("compresslab.nn.layers.", "compresslab.nn.gpt."):    # cl.nn re-exports both
        if name.startswith(inner):
            name = "compresslab.nn." + name[len(inner):]
    return "cl." + name[len("compresslab."):] if name.startswith("compresslab.") else name


def _forbidden_call(fn: Callable, *args, **kwargs):
    """Call the learner's ``fn``; raise :class:`Feedback` if it is, or calls, a forbidden function."""
    funcs = _resolve(_FORBIDDEN_NOW)
    if not funcs:
        return fn(*args, **kwargs)
    inner, seen = fn, 0
    while inner is not None and seen < 10:
        for name, f in funcs:
            if inner is f or getattr(inner, "__code__", None) is f.__code__:
                raise Feedback(f"your answer is {_shown(name)}, the function this exercise asks you "
                               "to write: write it yourself.")
        inner = getattr(inner, "__wrapped__", None) or getattr(inner, "func", None)
        seen += 1
    import sys
    import threading

    codes = {f.__code__: name for name, f in funcs}
    hits: list[str] = []
    switched: list[bool] = []
    setters = (sys.setprofile, threading.setprofile)

    running = [True]

    def watch(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            hits.append(codes[frame.f_code])
        elif event == "c_call" and running[0] and any(arg is s for s in setters):
            switched.append(True)

    previous, previous_threads = sys.getprofile(), threading.getprofile()
    threading.setprofile(watch)               # threads the answer starts are watched too
    sys.setprofile(watch)
    try:
        out = fn(*args, **kwargs)
    finally:
        running[0] = False
        switched.append(sys.getprofile() is not watch)
        sys.setprofile(previous)
        threading.setprofile(previous_threads)
    if any(switched):
        raise Feedback("your answer turned off the grader's watch (it changed the profiler with "
                       "setprofile): leave sys.setprofile alone and write the function yourself.")
    if hits:
        raise Feedback(f"your answer calls {_shown(hits[0])}, the function this exercise asks you "
                       "to write: write it yourself.")
    return out


def checker(exercise: str, title: str, lesson: str, forbidden: Iterable[str | Callable] = ()):
    """Register a checker. The wrapped function receives the learner's object and returns a
    message on success or raises :class:`Feedback` with a hint; the wrapper turns that (and any
    other exception) into a recorded, printed :class:`CheckResult`.

    ``forbidden``: library functions (dotted names or the functions) the answer may not be or
    call, added to :data:`FORBIDDEN` of the exercise: the exercise asks the learner to write them,
    so an answer that calls them fails with a hint saying so."""
    banned = tuple(forbidden) + FORBIDDEN.get(exercise, ())
    run, integrity, emit = _run, _integrity, _emit   # bound now: replacing them later has no effect

    def decorate(check: Callable[..., str]):
        @functools.wraps(check)
        def wrapper(answer, *args, quiet: bool = False, **kwargs):
            _FORBIDDEN_NOW[:] = banned
            try:
                status, message = run(exercise, title, check, answer, args, kwargs)
            finally:
                _FORBIDDEN_NOW.clear()
            result = CheckResult(exercise, title, status, message)
            _RESULTS.append(result)
            emit(exercise, title, status, message, integrity())
            if not quiet:
                print(result)
            if os.environ.get("COMPRESSLAB_STRICT") == "1" and not result.passed:
                raise AssertionError(str(result))
            return result if quiet else None

        REGISTRY[exercise] = {"title": title, "lesson": lesson, "checker": wrapper, "forbidden": banned}
        wrapper.exercise = exercise
        return wrapper

    return decorate


def _run(exercise, title, check, answer, args, kwargs) -> tuple[str, str]:
    """(status, message) of one check."""
    try:
        message = check(answer, *args, **kwargs)
        return PASS, str(message or "correct.")
    except NotImplementedError:
        return NOT_ATTEMPTED, "replace `raise NotImplementedError()` with your code, then run this cell again."
    except Feedback as fb:
        return FAIL, str(fb)
    except _LearnerError as le:
        return ERROR, str(le)
    except Exception as exc:  # a bug in the checker itself must not crash the lesson either
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return ERROR, f"the checker could not run ({tb})."


class _LearnerError(Exception):
    pass


def call(fn: Callable, case: Case) -> Any:
    """Call the learner's function on a case; their exceptions become readable hints."""
    if not callable(fn):
        raise Feedback(f"expected a function, got {type(fn).__name__}. Pass the function itself, "
                       "without calling it (no parentheses).")
    try:
        return _forbidden_call(fn, *_copy_args(case.args), **(case.kwargs or {}))
    except (NotImplementedError, Feedback):
        raise
    except Exception as exc:
        msg = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise _LearnerError(f"your function raised {msg} on {case.description}.") from None


def _copy_args(args: tuple) -> tuple:
    # Learners may modify inputs in place; every call gets fresh copies, also of the arrays
    # inside lists, tuples and dicts (e.g. a list of (grad_W, grad_b) pairs).
    return tuple(_fresh(a) for a in args)


def _fresh(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, (list, tuple)):
        return type(a)(_fresh(x) for x in a)
    if isinstance(a, dict):
        return {k: _fresh(v) for k, v in a.items()}
    return a


_PYTHON_SCALARS = (bool, int, float)
_NUMPY_SCALARS = (np.bool_, np.integer, np.floating)


def _plain_scalar(x: Any) -> bool:
    """A Python number of exactly ``bool``, ``int`` or ``float`` (a subclass could override
    ``__float__`` or ``__index__``, which NumPy calls to read it), or a NumPy number (NumPy reads
    its value directly, without calling any method of the object)."""
    return type(x) in _PYTHON_SCALARS or isinstance(x, _NUMPY_SCALARS)


def _torch_tensor(x: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and type(x) is torch.Tensor   # exactly a tensor: no subclass's code runs


def numeric_array(x: Any) -> np.ndarray | None:
    """``x`` as an array of real numbers or booleans, or None when it is anything else.

    Only plain values qualify: Python numbers (exactly ``bool``, ``int`` or ``float``, no
    subclass), NumPy numbers, NumPy arrays of numbers, (exactly) torch tensors, and lists or tuples
    of those. Nothing of the answer's own code runs on the way (no ``__eq__``, ``__float__``,
    ``__index__`` or ``__array__`` of a crafted object), so an answer cannot make a comparison
    agree by reading the expected value."""
    if isinstance(x, np.ndarray):
        arr = np.asarray(x)
    elif _plain_scalar(x):
        arr = np.asarray(x)
    elif _torch_tensor(x):
        try:
            arr = x.detach().cpu().numpy()
        except (TypeError, RuntimeError):      # bfloat16 and the like
            arr = x.detach().cpu().double().numpy()
    elif type(x) in (list, tuple):
        if not all(isinstance(v, np.ndarray) or _plain_scalar(v) or _torch_tensor(v) or type(v) in (list, tuple)
                   for v in x):
            return None
        parts = [numeric_array(v) for v in x]
        if any(p is None for p in parts):
            return None
        try:
            arr = np.asarray(parts) if parts else np.asarray(x, dtype=float)
        except ValueError:                     # ragged
            return None
    else:
        return None
    return arr if arr.dtype.kind in "biuf" else None


def as_number(x: Any) -> float | None:
    """One real number (a Python or NumPy number, or a one-element array or tensor) as a float,
    or None for anything else (a crafted object's ``__float__`` is never called)."""
    arr = numeric_array(x) if type(x) not in (list, tuple) else None
    if arr is None or arr.size != 1:
        return None
    return float(arr.astype(np.float64).reshape(()))


def _plain_equal(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """``same`` for a reference that is not numbers: containers element by element, other values
    only when the answer's type is exactly the reference's (so the reference's ``==`` decides)."""
    if type(b) in (list, tuple):
        return (type(a) in (list, tuple) and len(a) == len(b)
                and all(same(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b)))
    if type(b) is dict:
        if type(a) is not dict or len(a) != len(b):
            return False
        if not all(type(k) in (str, int, bool, float, type(None)) for k in a):
            return False
        return set(a) == set(b) and all(same(a[k], b[k], rtol=rtol, atol=atol) for k in b)
    return type(a) is type(b) and bool(a == b)


def same(a: Any, b: Any, *, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Equal values and shapes (exact for integers and booleans, close for floats).

    When the reference ``b`` is numbers, ``a`` must be plain numbers too (see
    :func:`numeric_array`): any other object is a wrong result, whatever its ``==`` says."""
    b_arr = numeric_array(b)
    if b_arr is None:
        return _plain_equal(a, b, rtol, atol)
    a_arr = numeric_array(a)
    if a_arr is None or a_arr.shape != b_arr.shape:
        return False
    if np.issubdtype(a_arr.dtype, np.floating) or np.issubdtype(b_arr.dtype, np.floating):
        return bool(np.allclose(a_arr.astype(float), b_arr.astype(float), rtol=rtol, atol=atol,
                                equal_nan=True))
    return bool(np.array_equal(a_arr, b_arr))


def compare_cases(answer: Callable, reference: Callable, cases: Sequence[Case],
                  mistakes: Iterable[Mistake] = (), *, equal: Callable[[Any, Any], bool] = same,
                  describe: Callable[[Any], str] | None = None,
                  explain: Callable[[Any, Any, Case], str | None] | None = None,
                  forbidden: Iterable[str | Callable] = ()) -> str:
    """Check ``answer`` against ``reference`` on every case, in order.

    On the first case the answer gets wrong, raise :class:`Feedback` with the hint of the classic
    mistake that explains the answer best: among the mistakes whose output equals the answer's on
    that case, the one that agrees with the answer on the most cases (the answer and the mistake
    are run on every case; ties go to the mistake listed first). Two mistakes often agree on one
    case (``ceil`` and "round half up" on ``2.5``) and differ on another (``2.1``): the hint names
    the one actually made. If no mistake matches the failing case, the message is ``explain(got,
    want, case)`` when that returns a string, else "wrong result on ...". Exceptions the answer
    raises on a case it reaches before any failure become hints (``NotImplementedError``: not
    attempted); after a failure, they only stop that case from counting for any mistake.

    The answer may not be, or call, ``reference`` when that is a public library function, nor
    any of ``forbidden`` (see :func:`checker`): such an answer fails with a hint saying so."""
    cases, mistakes = list(cases), list(mistakes)
    added = list(forbidden) + ([reference] if _library_function(reference) else [])
    _FORBIDDEN_NOW.extend(added)
    try:
        return _compare(answer, reference, cases, mistakes, equal, describe, explain)
    finally:
        del _FORBIDDEN_NOW[len(_FORBIDDEN_NOW) - len(added):]


def _compare(answer, reference, cases, mistakes, equal, describe, explain) -> str:
    show = describe or _describe
    outputs: list[Any] = []
    for i, case in enumerate(cases):
        got = call(answer, case)
        outputs.append(got)
        want = _reference_output(reference, case)
        if (case.equal or equal)(got, want):
            continue
        best = _best_mistake(answer, cases, i, outputs, mistakes, equal)
        if best is not None:
            raise Feedback(f"{best.hint} (seen on {case.description})")
        message = explain(got, want, case) if explain is not None else None
        raise Feedback(message or _wrong_result(case, got, want, show))
    return f"all {len(cases)} test cases agree with the reference."


def _reference_output(reference: Callable, case: Case) -> Any:
    return reference(*_copy_args(case.args), **(case.kwargs or {}))


_MISSING = object()


def _agrees(got: Any, mistake: Mistake, case: Case, equal: Callable[[Any, Any], bool]) -> bool:
    """Does ``mistake`` give the answer's output ``got`` on ``case``? (A mistake that raises, or
    an ``equal`` that raises on the pair, counts as "no".)"""
    if got is _MISSING:
        return False
    try:
        wrong = mistake.fn(*_copy_args(case.args), **(case.kwargs or {}))
        return bool((case.equal or equal)(got, wrong))
    except Exception:
        return False


def _best_mistake(answer: Callable, cases: list[Case], failed: int, outputs: list[Any],
                  mistakes: list[Mistake], equal: Callable[[Any, Any], bool]) -> Mistake | None:
    """The mistake that matches the answer on case ``failed`` and on the most cases overall."""
    candidates = [m for m in mistakes if _agrees(outputs[failed], m, cases[failed], equal)]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    for case in cases[failed + 1:]:                      # the answer on the cases not run yet
        try:
            outputs.append(call(answer, case))
        except Exception:                                # it already failed: this case just
            outputs.append(_MISSING)                     # cannot count for any mistake
    scores = [sum(_agrees(got, m, case, equal) for got, case in zip(outputs, cases))
              for m in candidates]
    return candidates[scores.index(max(scores))]


def _wrong_result(case: Case, got: Any, want: Any, show: Callable[[Any], str]) -> str:
    if numeric_array(want) is not None and numeric_array(got) is None:
        return (f"wrong result on {case.description}: return numbers (a number or an array of numbers), "
                f"got {type(got).__name__}.")
    arrays = isinstance(got, np.ndarray) and isinstance(want, np.ndarray)
    if arrays and got.shape != want.shape:
        return (f"wrong result on {case.description}: your result has shape {got.shape}, "
                f"the expected one {want.shape}.")
    if arrays and got.size and show(got) == show(want):     # both only named by their shape
        try:
            differ = int(np.sum(~np.isclose(got.astype(float), want.astype(float))))
            return (f"wrong result on {case.description}: right shape {got.shape}, but {differ} of "
                    f"{got.size} entries differ.")
        except (TypeError, ValueError):
            pass
    return f"wrong result on {case.description}: expected {show(want)}, got {show(got)}."


def same_number(what: str, tol: float = 1e-9) -> Callable[[Any, Any], bool]:
    """An ``equal`` for :func:`compare_cases` when the answer is one number (``what`` names it in
    the hint a learner gets for returning something else)."""

    def equal(got: Any, want: Any) -> bool:
        value = as_number(got)
        if value is None:
            raise Feedback(f"return one number ({what}), got {type(got).__name__}.")
        return abs(value - float(want)) < tol

    return equal


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        if x.size <= 8:
            return np.array2string(x, precision=4, separator=", ")
        return f"an array of shape {x.shape}"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


# --------------------------------------------------------------------------------------------
# Self-check quizzes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    """One quiz question: multiple choice (``options``, ``answer`` a letter) or a number
    (no ``options``, ``answer`` a number matched within ``tol``).

    ``why[letter]`` explains why that wrong option is wrong (the hint a learner gets for it);
    ``why["number"]`` is the hint for a wrong number. Hints never give the right answer away."""

    prompt: str
    answer: str | float
    options: dict[str, str] | None = None
    why: dict[str, str] | None = None
    tol: float = 0.0

    def markdown(self, number: int) -> str:
        """The question as the lesson shows it."""
        lines = [f"**Q{number}.** {self.prompt}"]
        for letter, text in (self.options or {}).items():
            lines.append(f"- ({letter}) {text}")
        return "\n".join(lines)

    def wrong(self, given: Any) -> str | None:
        """None when ``given`` is right, else the hint for it."""
        if given is None or (isinstance(given, str) and not given.strip()):
            return "not answered yet."
        if self.options:
            if not isinstance(given, str):
                return f"answer with one of {', '.join(self.options)} (a letter), not {type(given).__name__}."
            letter = str.__str__(given).strip().strip("()").lower()
            if letter not in self.options:
                return f"answer with one of {', '.join(self.options)}, not {given!r}."
            if letter == self.answer:
                return None
            return f"({letter}) is not it: {(self.why or {}).get(letter, 'think again.')}"
        value = as_number(given)
        if value is None and isinstance(given, str):
            try:
                value = float(str.__str__(given))
            except ValueError:
                pass
        if value is None and type(given) in (fractions.Fraction, decimal.Decimal):
            try:                                 # exactly these types: the standard library's float()
                value = float(given)
            except (ValueError, OverflowError):  # a signalling NaN, a huge fraction
                pass
        if value is None:
            return f"answer with a number, not {given!r}." if type(given) in (str, int, float) \
                else f"answer with a number, not {type(given).__name__}."
        if abs(value - float(self.answer)) <= self.tol:
            return None
        return f"{value:g} is not it: {(self.why or {}).get('number', 'recompute it.')}"


def quiz(exercise: str, lesson: str, questions: Sequence[Question], title: str = "self-check quiz"):
    """Register a quiz as a checker. The learner writes ``def quiz_answers(): return {1: "b",
    2: 42, ...}``; the checker calls it (``NotImplementedError``: not attempted) and passes when
    every answer is right, else names each wrong or missing answer with its hint."""
    questions = list(questions)
    for q in questions:
        assert (q.options is None) == (not isinstance(q.answer, str)), q.prompt
        assert q.options is None or q.answer in q.options, q.prompt

    def check(answers_fn):
        given = call(answers_fn, Case("your answers", ()))
        if not isinstance(given, dict):
            raise Feedback(f"return a dict {{question number: answer}}, got {type(given).__name__}.")
        given = {int(k) if isinstance(k, str) and k.strip().isdigit() else k: v for k, v in given.items()}
        extra = sorted(set(given) - set(range(1, len(questions) + 1)), key=str)
        if extra:
            raise Feedback(f"there is no question {extra[0]!r}: the questions are numbered 1 to "
                           f"{len(questions)}.")
        problems = [f"Q{i}: {hint}" for i, q in enumerate(questions, 1)
                    if (hint := q.wrong(given.get(i))) is not None]
        if problems:
            right = len(questions) - len(problems)
            raise Feedback(f"{right} of {len(questions)} right. " + " ".join(problems))
        return f"all {len(questions)} answers are right."

    check.__doc__ = f"The {len(questions)}-question self-check quiz of lesson {lesson}."
    wrapped = checker(exercise, title, lesson)(check)
    REGISTRY[exercise]["questions"] = questions
    wrapped.questions = questions
    wrapped.markdown = lambda: "\n\n".join(q.markdown(i) for i, q in enumerate(questions, 1))
    return wrapped
