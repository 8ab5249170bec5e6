"""Lesson 03 checkers: the lesson's solutions pass, each classic mistake gets its own hint.

The wrong answers are written the way a learner would write them (D.log_softmax, NumPy), not by
calling the checker's own models of the mistakes.
"""
from __future__ import annotations

import json
import pathlib
import time

import numpy as np
import pytest

from compresslab import distill as D
from compresslab.exercises import lesson03 as ex

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "lessons" / "03_distillation.ipynb"

# The solution cells of lessons/03_distillation.ipynb, verbatim (test_solutions_are_the_lessons
# keeps this copy equal to the notebook).
SOLUTIONS = {
    "ex3_1-solution": '''\
def soft_loss(student_logits, teacher_logits, T):
    ### BEGIN SOLUTION
    log_p = D.log_softmax(teacher_logits, T)        # teacher
    log_q = D.log_softmax(student_logits, T)        # student
    kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=1)
    return float(T ** 2 * kl.mean())
    ### END SOLUTION''',
    "ex3_2-solution": '''\
def kd_loss_value(student_logits, teacher_logits, labels, T, alpha):
    ### BEGIN SOLUTION
    n = len(labels)
    hard = -D.log_softmax(student_logits, 1.0)[np.arange(n), labels].mean()
    log_p = D.log_softmax(teacher_logits, T)
    soft = T ** 2 * (np.exp(log_p) * (log_p - D.log_softmax(student_logits, T))).sum(axis=1).mean()
    return float((1 - alpha) * hard + alpha * soft)
    ### END SOLUTION''',
    "ex3_3-solution": '''\
def kd_grad(student_logits, teacher_logits, labels, T, alpha):
    ### BEGIN SOLUTION
    s = np.asarray(student_logits, dtype=np.float64)
    t = np.asarray(teacher_logits, dtype=np.float64)
    labels = np.asarray(labels)
    n, n_classes = s.shape
    q_T = D.softmax(s, T)                  # student at temperature T
    p_T = D.softmax(t, T)                  # teacher at temperature T
    q_1 = D.softmax(s, 1.0)                # student at T = 1, for the labels
    labelled = labels >= 0                 # -1 = no label
    onehot = np.zeros((n, n_classes))
    onehot[labelled, labels[labelled]] = 1.0
    hard = q_1 - onehot
    hard[~labelled] = 0.0                  # an unlabelled sample has no hard term
    soft = T * (q_T - p_T)                 # T**2 from the loss, 1/T from d(s/T)/ds
    return ((1 - alpha) * hard + alpha * soft) / n
    ### END SOLUTION''',
}


def _solution(grade_id):
    ns = {"np": np, "D": D}
    exec(SOLUTIONS[grade_id], ns)
    return ns[SOLUTIONS[grade_id].split("(")[0].removeprefix("def ")]


def test_solutions_are_the_lessons():
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"]).strip()
             for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]}
    for grade_id, source in SOLUTIONS.items():
        assert cells[grade_id] == source, f"{grade_id} changed in the notebook: update SOLUTIONS"


@pytest.mark.parametrize("check,grade_id", [(ex.check_soft_loss, "ex3_1-solution"),
                                            (ex.check_kd_loss, "ex3_2-solution"),
                                            (ex.check_kd_grad, "ex3_3-solution")])
def test_lesson_solution_passes_quickly(check, grade_id):
    t0 = time.perf_counter()
    r = check(_solution(grade_id), quiet=True)
    assert r.passed, r.message
    assert time.perf_counter() - t0 < 0.5


# --------------------------------------------------------------------------------------------
# helpers a learner might write
# --------------------------------------------------------------------------------------------
L = D.log_softmax


def _kl(lp, lq):
    return (np.exp(lp) * (lp - lq)).sum(axis=1)


def _softmax0(z, T=1.0):       # a hand-written softmax that forgot axis=1
    e = np.exp(np.asarray(z, np.float64) / T)
    return e / e.sum(axis=0, keepdims=True)


def soft_right(s, t, T):
    return T * T * _kl(L(t, T), L(s, T)).mean()


def _hard(s, y, T=1.0):
    return -L(s, T)[np.arange(len(y)), y].mean()


def full_right(s, t, y, T, a):
    return (1 - a) * _hard(s, y) + a * soft_right(s, t, T)


# --------------------------------------------------------------------------------------------
# 3.1
# --------------------------------------------------------------------------------------------
SOFT_RIGHT = [
    soft_right,
    lambda s, t, T: np.float32(soft_right(s, t, T)),                       # a NumPy scalar
    lambda s, t, T: np.array(soft_right(s, t, T)),                         # a 0-d array
    lambda s, t, T: T ** 2 * np.mean(np.sum(np.exp(L(t, T)) * (L(t, T) - L(s, T)), axis=-1)),
]

SOFT_WRONG = {
    "T**2 times too small": lambda s, t, T: _kl(L(t, T), L(s, T)).mean(),
    "instead of T**2": lambda s, t, T: T * _kl(L(t, T), L(s, T)).mean(),
    "wrong way round": lambda s, t, T: T * T * _kl(L(s, T), L(t, T)).mean(),
    "student's probabilities where its LOG-probabilities belong (torch":
        lambda s, t, T: T * T * (np.exp(L(t, T)) * (L(t, T) - np.exp(L(s, T)))).sum(1).mean(),
    "teacher's probabilities where its LOG-probabilities belong":
        lambda s, t, T: T * T * (np.exp(L(t, T)) * (np.exp(L(t, T)) - L(s, T))).sum(1).mean(),
    "on both sides": lambda s, t, T: T * T * (D.softmax(t, T) * (D.softmax(t, T) - D.softmax(s, T))).sum(1).mean(),
    "not its log-probabilities": lambda s, t, T: T * T * (L(t, T) * (L(t, T) - L(s, T))).sum(1).mean(),
    "soft cross-entropy": lambda s, t, T: T * T * (-(D.softmax(t, T) * L(s, T)).sum(1)).mean(),
    "teacher only": lambda s, t, T: T * T * _kl(L(t, T), L(s)).mean(),
    "student only": lambda s, t, T: T * T * _kl(L(t), L(s, T)).mean(),
    "forgot the temperature": lambda s, t, T: T * T * _kl(L(t), L(s)).mean(),
    "multiplied the logits by T": lambda s, t, T: T * T * _kl(L(t * T), L(s * T)).mean(),
    "wrong axis": lambda s, t, T: T * T * (_softmax0(t, T) * np.log(_softmax0(t, T) / _softmax0(s, T))).sum(1).mean(),
    "every element": lambda s, t, T: T * T * (np.exp(L(t, T)) * (L(t, T) - L(s, T))).mean(),
    "you summed over the batch; average": lambda s, t, T: T * T * _kl(L(t, T), L(s, T)).sum(),
    "summed over the batch and averaged over the classes":
        lambda s, t, T: T * T * (np.exp(L(t, T)) * (L(t, T) - L(s, T))).sum(axis=0).mean(),
    "got an array of shape (6,): average": lambda s, t, T: T * T * _kl(L(t, T), L(s, T)),   # forgot the mean
    "NaN or infinite on ordinary logits":
        lambda s, t, T: T * T * (L(s, T) * np.log(L(t, T))).sum(1).mean(),  # log of log-probabilities
}


def test_soft_right_answers_pass():
    for fn in SOFT_RIGHT:
        r = ex.check_soft_loss(fn, quiet=True)
        assert r.passed, r.message


@pytest.mark.parametrize("hint", list(SOFT_WRONG))
def test_soft_mistakes_get_their_hint(hint):
    with np.errstate(all="ignore"):
        r = ex.check_soft_loss(SOFT_WRONG[hint], quiet=True)
    assert not r.passed and hint in r.message, r.message


def _naive_soft(s, t, T):
    p, q = D.softmax(np.asarray(t, np.float64), T), D.softmax(np.asarray(s, np.float64), T)
    with np.errstate(all="ignore"):
        return T * T * (p * (np.log(p) - np.log(q))).sum(1).mean()


def _eps_soft(s, t, T):
    p, q = D.softmax(np.asarray(t, np.float64), T), D.softmax(np.asarray(s, np.float64), T)
    return T * T * (p * (np.log(p + 1e-12) - np.log(q + 1e-12))).sum(1).mean()


def test_soft_two_mistakes_are_both_named():
    """torch's F.kl_div with its default reduction='mean' and no T**2: two mistakes, both named."""
    def torch_default(s, t, T):
        return (np.exp(L(t, T)) * (L(t, T) - L(s, T))).mean()
    r = ex.check_soft_loss(torch_default, quiet=True)
    assert r.message.startswith("two mistakes") and "T**2 times too small" in r.message \
        and "every element" in r.message, r.message
    r = ex.check_soft_loss(lambda s, t, T: _kl(L(s, T), L(t, T)).mean(), quiet=True)   # reversed, no T**2
    assert "wrong way round" in r.message and "T**2 times too small" in r.message, r.message


def test_every_modelled_pair_of_soft_mistakes_is_named():
    for m in ex._SOFT_PAIRS:
        r = ex.check_soft_loss(m.fn, quiet=True)
        assert not r.passed and r.message.startswith(m.hint), r.message


def test_soft_naive_log_of_softmax_is_caught_on_underflow():
    r = ex.check_soft_loss(_naive_soft, quiet=True)
    assert not r.passed and "log_softmax" in r.message and "underflows" in r.message, r.message


def test_soft_epsilon_clipping_is_caught_on_student_underflow():
    r = ex.check_soft_loss(_eps_soft, quiet=True)
    assert not r.passed and "right on ordinary logits" in r.message and "student" in r.message, r.message


@pytest.mark.parametrize("m", ex._SOFT_MISTAKES, ids=lambda m: m.hint[:40])
def test_every_modelled_soft_mistake_is_named_first(m):
    r = ex.check_soft_loss(m.fn, quiet=True)
    assert not r.passed and r.message.startswith(m.hint), r.message


# --------------------------------------------------------------------------------------------
# 3.2
# --------------------------------------------------------------------------------------------
FULL_RIGHT = [
    full_right,
    lambda s, t, y, T, a: D.kd_loss(s, t, y, T, a)[0],
    lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * T ** 2 * _kl(L(t, T), L(s, T)).sum() / len(y),
]

FULL_WRONG = {
    "alpha weighs the wrong term": lambda s, t, y, T, a: a * _hard(s, y) + (1 - a) * soft_right(s, t, T),
    "hard-label term needs the weight (1 - alpha)": lambda s, t, y, T, a: _hard(s, y) + a * soft_right(s, t, T),
    "soft term needs the weight alpha": lambda s, t, y, T, a: (1 - a) * _hard(s, y) + soft_right(s, t, T),
    "weigh the two terms": lambda s, t, y, T, a: _hard(s, y) + soft_right(s, t, T),
    "T**2 multiplies the soft term only": lambda s, t, y, T, a: T ** 2 * ((1 - a) * _hard(s, y)
                                                                          + a * _kl(L(t, T), L(s, T)).mean()),
    "hard-label cross-entropy uses the ordinary softmax":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y, T) + a * soft_right(s, t, T),
    "missing its log": lambda s, t, y, T, a: (1 - a) * -D.softmax(s)[np.arange(len(y)), y].mean()
        + a * soft_right(s, t, T),
    "hard-label term is averaged over every element":
        lambda s, t, y, T, a: (1 - a) * -(np.eye(s.shape[1])[y] * L(s)).mean() + a * soft_right(s, t, T),
    "hard-label term is summed over the batch":
        lambda s, t, y, T, a: (1 - a) * -L(s)[np.arange(len(y)), y].sum() + a * soft_right(s, t, T),
    "uses the teacher's logits": lambda s, t, y, T, a: (1 - a) * _hard(t, y) + a * soft_right(s, t, T),
    # the soft term's mistakes, inside the whole loss
    "in the soft term: your value is T**2 times too small":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * _kl(L(t, T), L(s, T)).mean(),
    "in the soft term: the KL divergence is the wrong way round":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * T * T * _kl(L(s, T), L(t, T)).mean(),
    "in the soft term: the temperature is applied to the teacher only":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * T * T * _kl(L(t, T), L(s)).mean(),
    "in the soft term: the temperature is applied to the student only":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * T * T * _kl(L(t), L(s, T)).mean(),
    "in the soft term: you averaged over every element":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * T * T * (np.exp(L(t, T)) * (L(t, T) - L(s, T))).mean(),
    "in the soft term: you computed the soft cross-entropy":
        lambda s, t, y, T, a: (1 - a) * _hard(s, y) + a * T * T * (-(D.softmax(t, T) * L(s, T)).sum(1)).mean(),
    "not a tuple": lambda s, t, y, T, a: D.kd_loss(s, t, y, T, a),
}


def test_full_right_answers_pass(library_answers_allowed):
    for fn in FULL_RIGHT:
        r = ex.check_kd_loss(fn, quiet=True)
        assert r.passed, r.message


@pytest.mark.parametrize("hint", list(FULL_WRONG))
def test_full_mistakes_get_their_hint(hint, library_answers_allowed):
    r = ex.check_kd_loss(FULL_WRONG[hint], quiet=True)
    assert not r.passed and hint in r.message, r.message


@pytest.mark.parametrize("m", ex._FULL_MISTAKES, ids=lambda m: m.hint[:40])
def test_every_modelled_full_mistake_is_named_first(m):
    r = ex.check_kd_loss(m.fn, quiet=True)
    assert not r.passed and r.message.startswith(m.hint), r.message


def test_full_two_mistakes_are_both_named():
    r = ex.check_kd_loss(lambda s, t, y, T, a: a * _hard(s, y) + (1 - a) * _kl(L(t, T), L(s, T)).mean(), quiet=True)
    assert r.message.startswith("two mistakes") and "alpha weighs the wrong term" in r.message \
        and "T**2 times too small" in r.message, r.message
    r = ex.check_kd_loss(lambda s, t, y, T, a: (1 - a) * _hard(s, y, T) + a * T * T * _kl(L(s, T), L(t, T)).mean(),
                         quiet=True)
    assert "ordinary softmax (T = 1)" in r.message and "wrong way round" in r.message, r.message


def test_every_modelled_pair_of_full_mistakes_is_named():
    for m in ex._FULL_PAIRS:
        r = ex.check_kd_loss(m.fn, quiet=True)
        assert not r.passed and r.message.startswith(m.hint), r.message


def test_full_naive_log_of_softmax_is_caught_on_underflow():
    def naive(s, t, y, T, a):
        with np.errstate(all="ignore"):
            hard = -np.log(D.softmax(np.asarray(s, np.float64)))[np.arange(len(y)), y].mean()
        return (1 - a) * hard + a * _naive_soft(s, t, T)
    r = ex.check_kd_loss(naive, quiet=True)
    assert not r.passed and "log_softmax" in r.message, r.message


def test_not_attempted_and_crashing_answers(capsys):
    def untouched(*args):
        raise NotImplementedError()
    assert ex.check_soft_loss(untouched, quiet=True).status == "not attempted"
    ex.check_kd_loss(untouched)
    assert "NOT ATTEMPTED YET" in capsys.readouterr().out
    r = ex.check_kd_loss(lambda *a: 1 / 0, quiet=True)
    assert r.status == "error" and "ZeroDivisionError" in r.message


# --------------------------------------------------------------------------------------------
# 3.3: the gradient
# --------------------------------------------------------------------------------------------
def _grad(s, t, y, T, a, *, factor=None, div=None, swap=False, onehot=True, hard_T=1.0,
          label_rows="skip"):
    """The gradient as a learner writes it, with one thing changed (the keyword arguments)."""
    s, t, y = np.asarray(s, np.float64), np.asarray(t, np.float64), np.asarray(y)
    n, c = s.shape
    q, p = D.softmax(s, T), D.softmax(t, T)
    if label_rows == "eye":                 # np.eye(C)[y]: -1 becomes the last class
        oh = np.eye(c)[y]
    else:
        oh = np.zeros((n, c))
        oh[y >= 0, y[y >= 0]] = 1.0
    hard = D.softmax(s, hard_T) - (oh if onehot else 0.0)
    if label_rows == "skip":
        hard[y < 0] = 0.0
    soft = (T if factor is None else factor) * ((p - q) if swap else (q - p))
    return ((1 - a) * hard + a * soft) / (n if div is None else div)


GRAD_RIGHT = [
    _grad,
    lambda s, t, y, T, a: D.kd_loss(s, t, y, T, a)[1],
    lambda s, t, y, T, a: _grad(s, t, y, T, a).astype(np.float32),             # float32 is fine
    lambda s, t, y, T, a: _grad(s, t, y, T, a).tolist(),                       # so is a list
]

GRAD_WRONG = {
    "missing its factor T": lambda s, t, y, T, a: _grad(s, t, y, T, a, factor=1.0),
    "by T**2 instead of T": lambda s, t, y, T, a: _grad(s, t, y, T, a, factor=T ** 2),
    "you divided the soft term's gradient by T": lambda s, t, y, T, a: _grad(s, t, y, T, a, factor=1 / T),
    "forgot the 1/N of the batch mean": lambda s, t, y, T, a: _grad(s, t, y, T, a, div=1),
    "divided by N * C": lambda s, t, y, T, a: _grad(s, t, y, T, a, div=np.size(s)),
    "teacher and student are swapped": lambda s, t, y, T, a: _grad(s, t, y, T, a, swap=True),
    "wrong sign": lambda s, t, y, T, a: -_grad(s, t, y, T, a),
    "forgot to subtract the one-hot": lambda s, t, y, T, a: _grad(s, t, y, T, a, onehot=False),
    "ordinary softmax at T = 1": lambda s, t, y, T, a: _grad(s, t, y, T, a, hard_T=T),
    "alpha weighs the wrong term": lambda s, t, y, T, a: (a * _grad(s, t, y, T, 0.0)
                                                          + (1 - a) * _grad(s, t, y, T, 1.0)),
    "reads index -1 as the LAST class": lambda s, t, y, T, a: _grad(s, t, y, T, a, label_rows="eye"),
    "has no hard term at all": lambda s, t, y, T, a: _grad(s, t, y, T, a, label_rows="keep"),
    "divided by the number of labelled samples": lambda s, t, y, T, a: (
        (1 - a) * _grad(s, t, y, T, 0.0) * len(s) / max(1, int((np.asarray(y) >= 0).sum()))
        + a * _grad(s, t, y, T, 1.0)),
    "not a tuple": lambda s, t, y, T, a: D.kd_loss(s, t, y, T, a),
    "of the logits' shape (6, 5)": lambda s, t, y, T, a: _grad(s, t, y, T, a).T,
    "did you forget the `return`": lambda s, t, y, T, a: None,
}


def test_grad_right_answers_pass(library_answers_allowed):
    for fn in GRAD_RIGHT:
        r = ex.check_kd_grad(fn, quiet=True)
        assert r.passed, r.message


@pytest.mark.parametrize("hint", list(GRAD_WRONG))
def test_grad_mistakes_get_their_hint(hint, library_answers_allowed):
    r = ex.check_kd_grad(GRAD_WRONG[hint], quiet=True)
    assert not r.passed and hint in r.message, r.message


@pytest.mark.parametrize("m", ex._GRAD_MISTAKES, ids=lambda m: m.hint[:40])
def test_every_modelled_grad_mistake_is_named_first(m):
    r = ex.check_kd_grad(m.fn, quiet=True)
    assert not r.passed and r.message.startswith(m.hint), r.message


def test_grad_not_attempted_and_crashing_answers(capsys):
    def untouched(*args):
        raise NotImplementedError()
    assert ex.check_kd_grad(untouched, quiet=True).status == "not attempted"
    ex.check_kd_grad(untouched)
    assert "NOT ATTEMPTED YET" in capsys.readouterr().out
    r = ex.check_kd_grad(lambda *a: 1 / 0, quiet=True)
    assert r.status == "error" and "ZeroDivisionError" in r.message


def test_grad_must_match_the_finite_differences_too():
    """An answer right on the six batches but not on the finite-difference batch is rejected."""
    def special(s, t, y, T, a):
        g = _grad(s, t, y, T, a)
        return g * 1.01 if s.shape == (3, 4) else g
    r = ex.check_kd_grad(special, quiet=True)
    assert not r.passed and "finite differences" in r.message, r.message


# --------------------------------------------------------------------------------------------
# the self-check quiz
# --------------------------------------------------------------------------------------------
QUIZ_RIGHT = {1: "b", 2: "c", 3: 2.24, 4: "a", 5: "d"}     # the lesson's quiz3-solution


def test_quiz_solution_is_the_lessons_and_passes():
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]}
    ns = {}
    exec(cells["quiz3-solution"], ns)
    assert ns["quiz_answers"]() == QUIZ_RIGHT
    r = ex.check_quiz(ns["quiz_answers"], quiet=True)
    assert r.passed, r.message


def test_quiz_is_shown_verbatim_in_the_lesson():
    text = "\n".join("".join(c["source"]) for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "markdown")
    assert ex.check_quiz.markdown() in text


def test_quiz_number_tolerates_rounding_not_the_classic_slips():
    # 2 SE = 2 * sqrt(1.5**2 / 5 + 2**2 / 5) = 2.236
    for ok in (2.24, 2.23, "2.236"):
        assert ex.check_quiz(lambda ok=ok: {**QUIZ_RIGHT, 3: ok}, quiet=True).passed
    slips = {"SE, not 2 SE": 1.12, "no division by n": 5.0, "sqrt(n) outside, not inside": 1.0,
             "sum of the two SEs": 2 * (1.5 + 2.0) / 5 ** 0.5}
    for slip, value in slips.items():
        r = ex.check_quiz(lambda value=value: {**QUIZ_RIGHT, 3: value}, quiet=True)
        assert not r.passed and "Q3:" in r.message and "divide each variance by n" in r.message, slip


_WRONG_OPTIONS = [(n, letter) for n, q in enumerate(ex.check_quiz.questions, 1) if q.options
                  for letter in q.options if letter != q.answer]


@pytest.mark.parametrize("number,letter", _WRONG_OPTIONS, ids=lambda x: str(x))
def test_quiz_each_wrong_option_fails_with_its_own_hint(number, letter):
    q = ex.check_quiz.questions[number - 1]
    r = ex.check_quiz(lambda: {**QUIZ_RIGHT, number: letter}, quiet=True)
    assert not r.passed and r.message.startswith("4 of 5 right.")
    assert f"Q{number}: ({letter}) is not it: {q.why[letter]}" in r.message
    assert f"({q.answer})" not in r.message                       # never gives the answer away


def test_quiz_every_wrong_option_has_a_hint_and_none_names_the_answer():
    for q in ex.check_quiz.questions:
        if q.options:
            assert set(q.why) == set(q.options) - {q.answer}, q.prompt
            for hint in q.why.values():
                assert q.options[q.answer] not in hint
        else:
            assert f"{q.answer:.2f}" not in q.why["number"]


def test_quiz_not_attempted_and_incomplete():
    def untouched():
        raise NotImplementedError()
    assert ex.check_quiz(untouched, quiet=True).status == "not attempted"
    r = ex.check_quiz(lambda: {1: "b"}, quiet=True)
    assert not r.passed and "1 of 5 right" in r.message and "not answered" in r.message


def test_an_answer_calling_kd_loss_is_refused():
    from compresslab import distill as D
    r = ex.check_soft_loss(lambda s, t, T: D.kd_loss(s, t, None, T=T, alpha=1.0), quiet=True)
    assert not r.passed and "calls cl.distill.kd_loss" in r.message
    # the lesson's helpers are allowed: a decorator's shared wrapper is not mistaken for kd_loss
    r = ex.check_soft_loss(lambda s, t, T: float(-(D.softmax(t, T) * (D.log_softmax(s, T)
                                                  - D.log_softmax(t, T))).sum(1).mean() * -T ** 2),
                           quiet=True)
    assert "calls cl.distill" not in r.message
