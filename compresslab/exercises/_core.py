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


def _record(result: CheckResult) -> None:
    """Append the result to $COMPRESSLAB_RESULTS_FILE (set by ``compresslab grade``), one JSON
    line per check, written at once so a later crash of the kernel cannot lose it."""
    path = os.environ.get("COMPRESSLAB_RESULTS_FILE")
    if path:
        import json

        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(result)) + "\n")


def checker(exercise: str, title: str, lesson: str):
    """Register a checker. The wrapped function receives the learner's object and returns a
    message on success or raises :class:`Feedback` with a hint; the wrapper turns that (and any
    other exception) into a recorded, printed :class:`CheckResult`."""

    def decorate(check: Callable[..., str]):
        @functools.wraps(check)
        def wrapper(answer, *args, quiet: bool = False, **kwargs):
            result = _run(exercise, title, check, answer, args, kwargs)
            _RESULTS.append(result)
            _record(result)
            if not quiet:
                print(result)
            if os.environ.get("COMPRESSLAB_STRICT") == "1" and not result.passed:
                raise AssertionError(str(result))
            return result if quiet else None

        REGISTRY[exercise] = {"title": title, "lesson": lesson, "checker": wrapper}
        wrapper.exercise = exercise
        return wrapper

    return decorate


def _run(exercise, title, check, answer, args, kwargs) -> CheckResult:
    try:
        message = check(answer, *args, **kwargs)
        return CheckResult(exercise, title, PASS, message or "correct.")
    except NotImplementedError:
        return CheckResult(exercise, title, NOT_ATTEMPTED,
                           "replace `raise NotImplementedError()` with your code, then run this cell again.")
    except Feedback as fb:
        return CheckResult(exercise, title, FAIL, str(fb))
    except _LearnerError as le:
        return CheckResult(exercise, title, ERROR, str(le))
    except Exception as exc:  # a bug in the checker itself must not crash the lesson either
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return CheckResult(exercise, title, ERROR, f"the checker could not run ({tb}).")


class _LearnerError(Exception):
    pass


def call(fn: Callable, case: Case) -> Any:
    """Call the learner's function on a case; their exceptions become readable hints."""
    if not callable(fn):
        raise Feedback(f"expected a function, got {type(fn).__name__}. Pass the function itself, "
                       "without calling it (no parentheses).")
    try:
        return fn(*_copy_args(case.args), **(case.kwargs or {}))
    except NotImplementedError:
        raise
    except Exception as exc:
        msg = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise _LearnerError(f"your function raised {msg} on {case.description}.") from None


def _copy_args(args: tuple) -> tuple:
    # Learners may modify inputs in place; every call gets fresh copies.
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def same(a: Any, b: Any, *, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Equal values and shapes (exact for integers and booleans, close for floats)."""
    try:
        a_arr, b_arr = np.asarray(a), np.asarray(b)
    except Exception:
        return False
    if a_arr.shape != b_arr.shape:
        return False
    if a_arr.dtype == object or b_arr.dtype == object:
        return bool(a == b)
    if np.issubdtype(a_arr.dtype, np.floating) or np.issubdtype(b_arr.dtype, np.floating):
        return bool(np.allclose(a_arr.astype(float), b_arr.astype(float), rtol=rtol, atol=atol,
                                equal_nan=True))
    return bool(np.array_equal(a_arr, b_arr))


def compare_cases(answer: Callable, reference: Callable, cases: Sequence[Case],
                  mistakes: Iterable[Mistake] = (), *, equal: Callable[[Any, Any], bool] = same,
                  describe: Callable[[Any], str] | None = None,
                  explain: Callable[[Any, Any, Case], str | None] | None = None) -> str:
    """Check ``answer`` against ``reference`` on every case, in order.

    On the first case the answer gets wrong, raise :class:`Feedback` with the hint of the classic
    mistake that explains the answer best: among the mistakes whose output equals the answer's on
    that case, the one that agrees with the answer on the most cases (the answer and the mistake
    are run on every case; ties go to the mistake listed first). Two mistakes often agree on one
    case (``ceil`` and "round half up" on ``2.5``) and differ on another (``2.1``): the hint names
    the one actually made. If no mistake matches the failing case, the message is ``explain(got,
    want, case)`` when that returns a string, else "wrong result on ...". Exceptions the answer
    raises on a case it reaches before any failure become hints (``NotImplementedError``: not
    attempted); after a failure, they only stop that case from counting for any mistake."""
    cases, mistakes = list(cases), list(mistakes)
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
    detail = ""
    if isinstance(got, np.ndarray) and isinstance(want, np.ndarray) and got.shape != want.shape:
        detail = f" Your result has shape {got.shape}, the expected one {want.shape}."
    elif isinstance(got, np.ndarray) and isinstance(want, np.ndarray) and got.size:
        try:
            differ = int(np.sum(~np.isclose(got.astype(float), want.astype(float))))
            detail = f" {differ} of {got.size} entries differ."
        except (TypeError, ValueError):
            pass
    return f"wrong result on {case.description}: expected {show(want)}, got {show(got)}." + detail


def same_number(what: str, tol: float = 1e-9) -> Callable[[Any, Any], bool]:
    """An ``equal`` for :func:`compare_cases` when the answer is one number (``what`` names it in
    the hint a learner gets for returning something else)."""

    def equal(got: Any, want: Any) -> bool:
        try:
            return abs(float(got) - float(want)) < tol
        except (TypeError, ValueError):
            raise Feedback(f"return one number ({what}), got {type(got).__name__}.") from None

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
            letter = str(given).strip().strip("()").lower()
            if letter not in self.options:
                return f"answer with one of {', '.join(self.options)}, not {given!r}."
            if letter == self.answer:
                return None
            return f"({letter}) is not it: {(self.why or {}).get(letter, 'think again.')}"
        try:
            value = float(given)
        except (TypeError, ValueError):
            return f"answer with a number, not {given!r}."
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
