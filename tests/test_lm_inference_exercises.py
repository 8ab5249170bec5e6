"""Checkers of lesson 06b: 6.3 (the Wanda mask of one layer) and quiz 6b. The lesson's solutions
(copied verbatim) pass; each classic mistake gets its own hint."""
import numpy as np
import pytest

from compresslab.exercises import lesson06b as ex


# ---- the lesson's solutions, verbatim ---------------------------------------------------------
def wanda_mask(w, X, amount):
    w = np.asarray(w, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    norms = np.sqrt((X ** 2).sum(axis=0))          # ||X_j||_2: one per input feature, over the tokens
    scores = np.abs(w) * norms                     # S_ij = |W_ij| * ||X_j||_2
    k = int(round(amount * w.shape[1]))            # weights to prune in every row
    mask = np.ones_like(scores)
    for i in range(scores.shape[0]):               # compare within each output row
        order = np.argsort(scores[i], kind="stable")   # ties: the lowest column first
        mask[i, order[:k]] = 0.0
    return mask


def quiz_answers():
    return {1: "c", 2: 16384, 3: "b", 4: "a"}


def _run(check, fn):
    return check(fn, quiet=True)


def test_solutions_pass():
    for check, fn in ((ex.check_wanda_mask, wanda_mask), (ex.check_quiz, quiz_answers)):
        r = _run(check, fn)
        assert r.passed, r.message


def test_library_answers_pass(library_answers_allowed):
    import compresslab as cl
    assert _run(ex.check_wanda_mask, lambda w, X, a: cl.prune.wanda(w, X, a)).passed


def test_library_answer_is_refused():
    import compresslab as cl
    r = _run(ex.check_wanda_mask, lambda w, X, a: cl.prune.wanda(w, X, a))
    assert not r.passed and "write it yourself" in r.message


def _rows(scores, k, largest=False):
    mask = np.ones(scores.shape)
    for i, row in enumerate(scores):
        mask[i, np.argsort(-row if largest else row, kind="stable")[:k]] = 0
    return mask


def _k(w, a):
    return int(round(a * np.shape(w)[1]))


def _norm(X):
    return np.sqrt((np.asarray(X) ** 2).sum(axis=0))


WANDA_WRONG = {
    "per_layer": (lambda w, X, a: (lambda s, k: (s > np.sort(s.ravel())[k - 1]).astype(float) if k else
                                   np.ones_like(s))(np.abs(w) * _norm(X), _k(w, a) * w.shape[0]),
                  "within each output row"),
    "token_axis": (lambda w, X, a: _rows(np.abs(w) * np.sqrt((np.asarray(X) ** 2).sum(axis=1)), _k(w, a)),
                   "wrong axis"),
    "squared": (lambda w, X, a: _rows(np.abs(w) * (np.asarray(X) ** 2).sum(axis=0), _k(w, a)),
                "squared norm"),
    "mean_abs": (lambda w, X, a: _rows(np.abs(w) * np.abs(X).mean(axis=0), _k(w, a)), "mean or the sum of |X"),
    "largest": (lambda w, X, a: _rows(np.abs(w) * _norm(X), _k(w, a), largest=True), "pruned the largest"),
    "magnitude": (lambda w, X, a: _rows(np.abs(w), _k(w, a)), "ignores X"),
    "signed": (lambda w, X, a: _rows(np.asarray(w) * _norm(X), _k(w, a)), "with its sign"),
    "ties_le": (lambda w, X, a: (lambda s, k: (s > np.sort(s, axis=1)[:, k - 1:k]).astype(float))(
        np.abs(w) * _norm(X), _k(w, a)) if _k(w, a) else np.ones(np.shape(w)), "more than k"),
    "ties_high": (lambda w, X, a: _rows(np.abs(w)[:, ::-1] * _norm(X)[::-1], _k(w, a))[:, ::-1],
                  "highest column first"),
    "one_more": (lambda w, X, a: _rows(np.abs(w) * _norm(X), _k(w, a) + 1), "one weight too many"),
    "truncated_k_minus_1": (lambda w, X, a: _rows(np.abs(w) * _norm(X), max(_k(w, a) - 1, 0)),
                            "one weight too few"),
    "inverted": (lambda w, X, a: 1 - _rows(np.abs(w) * _norm(X), _k(w, a)), "1 = keep, 0 = pruned"),
    "max_abs": (lambda w, X, a: _rows(np.abs(w) * np.abs(X).max(axis=0), _k(w, a)), "SmoothQuant"),
    "l1_sum": (lambda w, X, a: _rows(np.abs(w) * np.abs(X).sum(axis=0), _k(w, a)), "L1 norm"),
    "fraction_kept": (lambda w, X, a: _rows(np.abs(w) * _norm(X), np.shape(w)[1] - _k(w, a)),
                      "fraction PRUNED"),
    "returns_w_times_mask": (lambda w, X, a: np.asarray(w) * _rows(np.abs(w) * _norm(X), _k(w, a)),
                             "w * mask"),
    "floor": (lambda w, X, a: _rows(np.abs(w) * _norm(X), int(a * np.shape(w)[1])), "rounded k down"),
    "ceil": (lambda w, X, a: _rows(np.abs(w) * _norm(X), int(np.ceil(a * np.shape(w)[1] - 1e-9))),
             "rounded k up"),
    "k_from_out_features": (lambda w, X, a: _rows(np.abs(w) * _norm(X), round(a * np.shape(w)[0])),
                            "out_features"),
    "unstable_sort": (lambda w, X, a: np.put_along_axis(m := np.ones(np.shape(w)), np.argpartition(
        np.abs(w) * _norm(X), max(_k(w, a) - 1, 0), axis=1)[:, :_k(w, a)], 0, 1) or m, "stable sort"),
}


@pytest.mark.parametrize("name", list(WANDA_WRONG))
def test_wanda_mistakes_get_their_hint(name):
    fn, hint = WANDA_WRONG[name]
    r = _run(ex.check_wanda_mask, fn)
    assert not r.passed and hint in r.message, r.message


def test_wanda_bad_return_and_not_attempted():
    r = _run(ex.check_wanda_mask, lambda w, X, a: "mask")
    assert not r.passed
    def todo(w, X, a):
        raise NotImplementedError()
    assert _run(ex.check_wanda_mask, todo).status == "not attempted"


def test_wanda_mask_refuses_crafted_objects():
    """An object whose __array__ would compute the answer is not read: only plain numbers count."""
    class Sneaky:
        def __array__(self, dtype=None, copy=None):
            raise AssertionError("the checker read the answer through __array__")
    r = _run(ex.check_wanda_mask, lambda w, X, a: Sneaky())
    assert not r.passed and "array of 0 and 1" in r.message
    r = _run(ex.check_wanda_mask, lambda w, X, a: [["1"] * np.shape(w)[1]] * np.shape(w)[0])
    assert not r.passed and "array of 0 and 1" in r.message


def test_quiz_hints():
    r = _run(ex.check_quiz, lambda: {1: "a", 2: 8192, 3: "c", 4: "a"})
    assert not r.passed and "2 of 4" not in r.message and "1 of 4 right" in r.message
    assert "SparseGPT" in r.message and "softmax" in r.message
    assert len(ex.check_quiz.questions) == 4


def test_lesson_plots_draw():
    """The lesson's two figures (compresslab.plots.lm_speed) draw from given numbers."""
    import matplotlib.pyplot as plt

    import compresslab as cl
    g = np.random.default_rng(0)
    fig = cl.plots.lm_speed.channel_ranges(g.uniform(0.1, 5, 64), g.uniform(0.01, 0.2, 64))
    assert len(fig.axes) == 2
    roof = cl.speed.Roofline(100e9, 20e9)
    fig2 = cl.plots.lm_speed.decode_speed(
        roof, [{"name": "decode", **roof.place(2e6, 4e6, 1e-3)}],
        [{"name": "step", "measured_s": 5e-4, "bound_s": 1e-4}])
    assert len(fig2.axes) == 2
    plt.close("all")
