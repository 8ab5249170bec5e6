"""Lessons 01a and 01b extras: the pruning explorer (readout changes; the work of a change, counted) and
the exercise checkers (accept correct answers, name the classic mistakes)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest

from compresslab import data, nn
from compresslab import prune as P
from compresslab.exercises import lesson01 as ex
from compresslab.widgets import prune as W

MASK_FUNCTIONS = ("magnitude", "random", "structured", "n_m")


@pytest.fixture(scope="module")
def trained():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 300, 100, 10), seed=0)
    nn.fit(m, d.X_train, d.y_train, epochs=3, progress=False)
    return m, d


def _count_work(monkeypatch):
    """Log the widget's expensive calls: evaluations (with their number of rows), mask
    computations, full figure renders (Figure.draw, which savefig also runs), training."""
    log = []
    real_evaluate = nn.evaluate

    def evaluate(model, X, y):
        log.append(("evaluate", len(X)))
        return real_evaluate(model, X, y)
    monkeypatch.setattr(nn, "evaluate", evaluate)
    for owner, name in [(P, f) for f in MASK_FUNCTIONS] + [(matplotlib.figure.Figure, "draw"), (nn, "fit")]:
        real = getattr(owner, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            log.append((_name, None))
            return _real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)
    return log


def test_a_change_costs_one_mask_one_evaluation_and_no_figure_render(trained, monkeypatch):
    """The 100 ms budget as a machine-independent cost (the widget's design): the histogram
    backgrounds are rendered once per layer when the explorer is built; a change then computes
    one mask, evaluates the model once on the validation split, and blits: no figure is rendered,
    nothing is trained."""
    m, d = trained
    log = _count_work(monkeypatch)
    explorer = W.build(m, d.X_val, d.y_val)
    n_layers = len(explorer.layers)
    # the counters see the widget's own work: the dense accuracy, one background per layer
    assert sorted(log) == sorted([("evaluate", len(d.y_val))] + [("draw", None)] * n_layers)
    explorer.widget()
    changes = [(explorer.slider, v) for v in np.linspace(0.05, 0.95, 10)]
    changes += [(explorer.method_dd, meth) for meth in W.METHODS[1:]] + [(explorer.method_dd, "magnitude")]
    changes += [(explorer.layer_dd, name) for name in explorer.layers[1:]] + [(explorer.slider, 0.5)]
    for control, value in changes:
        log.clear()
        before = explorer.readout.value, explorer.image.value, explorer.mask_image.value
        control.value = value                              # as a learner does
        method = explorer.method_dd.value
        mask_fn = {"2:4": "n_m"}.get(method, method)
        assert sorted(log) == sorted([("evaluate", len(d.y_val)), (mask_fn, None)]), (control.description, value)
        assert (explorer.readout.value, explorer.image.value, explorer.mask_image.value) != before


def test_widget_readout_changes(trained):
    m, d = trained
    explorer = W.build(m, d.X_val, d.y_val)
    ui = explorer.widget()
    assert ui is not None and explorer.readout.value and explorer.image.value
    before, png_before = explorer.readout.value, explorer.image.value
    explorer.slider.value = 0.9  # as a browser would
    assert explorer.readout.value != before and explorer.image.value != png_before
    assert "90.0%" in explorer.readout.value
    for method in W.METHODS:
        explorer.method_dd.value = method
        assert method in explorer.readout.value
    explorer.method_dd.value = "magnitude"
    explorer.layer_dd.value = "2.weight"
    assert "2.weight" in explorer.readout.value
    # the model the widget shows is not the caller's: untouched
    assert not P.sparsity(m).zeros



def test_widget_readout_names_the_split_it_scores(trained):
    """A slider is a sweep: the lesson's explorer reads the validation split and says so; a caller
    who passes other data names it with ``split``."""
    m, d = trained
    text = W.build(m, d.X_val, d.y_val).update(sparsity=0.5)
    assert "validation accuracy" in text and "test accuracy" not in text
    text = W.build(m, d.X_test, d.y_test, split="test").update(sparsity=0.5)
    assert "test accuracy" in text and "validation" not in text


def test_widget_accuracy_is_the_pruned_models(trained):
    m, d = trained
    explorer = W.build(m, d.X_val, d.y_val)
    explorer.update(sparsity=0.7, method="structured", layer="0.weight")
    ref = P.apply_masks(m.copy(), {"0.weight": P.structured(m[0].weight, 0.7, dim=0)})
    assert explorer.accuracy == pytest.approx(nn.evaluate(ref, d.X_val, d.y_val))
    with pytest.raises(ValueError, match="method"):
        explorer.update(method="nope")


def _ok(result):
    return result.status == "pass"


def _k(amount, n):
    return amount if isinstance(amount, int) else round(amount * n)


def _assert_hints(check, wrong_answers):
    """Each wrong answer fails with a message containing its expected words."""
    for wrong, words in wrong_answers:
        r = check(wrong, quiet=True)
        assert r.status == "fail" and words in r.message, (wrong.__name__, words, r.message)


# ------------------------------------------------------------------------ exercise 1.1
# The solution cell of lessons/01a_pruning.ipynb, copied verbatim.
def lesson_magnitude_mask(w, amount):
    k = amount if isinstance(amount, int) else round(amount * w.size)
    mask = np.ones(w.size, dtype=np.float32)
    mask[np.argsort(np.abs(w), axis=None)[:k]] = 0
    return mask.reshape(w.shape)


def _mask_from(w, order, k):
    mask = np.ones(w.size, np.float32)
    mask[order[:k]] = 0
    return mask.reshape(w.shape)


def test_checker_1_1_accepts_correct_answers_with_any_tie_order(library_answers_allowed):
    def stable(w, amount):          # ties: lowest index first (the documented rule)
        return _mask_from(w, np.argsort(np.abs(w), axis=None, kind="stable"), _k(amount, w.size))

    def highest_index_first(w, amount):     # another order among tied weights: also exact
        a = np.abs(w).ravel()
        return _mask_from(w, np.lexsort((-np.arange(a.size), a)), _k(amount, w.size))

    def partition(w, amount):
        k, a = _k(amount, w.size), np.abs(w).ravel()
        mask = np.ones(w.size, np.float32)
        if k:
            mask[np.argpartition(a, k - 1)[:k]] = 0
        return mask.reshape(w.shape)

    for good in (lesson_magnitude_mask, P.magnitude, stable, highest_index_first, partition):
        r = ex.check_magnitude_mask(good, quiet=True)
        assert _ok(r) and "all 12 test cases" in r.message, (good.__name__, r.message)


def test_checker_1_1_names_each_mistake():
    def signed(w, amount):
        return _mask_from(w, np.argsort(w, axis=None), _k(amount, w.size))

    def largest(w, amount):
        return _mask_from(w, np.argsort(-np.abs(w), axis=None), _k(amount, w.size))

    def inverted(w, amount):
        mask = np.zeros(w.size, np.float32)
        mask[np.argsort(np.abs(w), axis=None)[: _k(amount, w.size)]] = 1
        return mask.reshape(w.shape)

    def pruned_weights(w, amount):
        return w * lesson_magnitude_mask(w, amount)

    def no_axis(w, amount):                 # argsort of a 2-D array sorts each row
        mask = np.ones(w.size, np.float32)
        mask[np.argsort(np.abs(w))[: _k(amount, w.size)]] = 0
        return mask.reshape(w.shape)

    def rounding(fn):
        def answer(w, amount):
            k = amount if isinstance(amount, int) else fn(amount * w.size)
            return _mask_from(w, np.argsort(np.abs(w), axis=None), k)
        answer.__name__ = getattr(fn, "__name__", "rounding")
        return answer

    def kept_fraction(w, amount):
        k = amount if isinstance(amount, int) else round((1 - amount) * w.size)
        return _mask_from(w, np.argsort(np.abs(w), axis=None), k)

    def int_as_fraction(w, amount):
        return _mask_from(w, np.argsort(np.abs(w), axis=None), round(amount * w.size))

    def by_value(w, amount):
        k = round(amount * w.size) if amount <= 1 else amount
        return _mask_from(w, np.argsort(np.abs(w), axis=None), k)

    def one_too_many(w, amount):
        return _mask_from(w, np.argsort(np.abs(w), axis=None), _k(amount, w.size) + 1)

    def threshold_le(w, amount):            # ties at t all pruned; k = 0 reads a[-1]
        a = np.abs(w)
        t = np.partition(a.ravel(), _k(amount, w.size) - 1)[_k(amount, w.size) - 1]
        return (a > t).astype(np.float32)

    def threshold_le_k0_ok(w, amount):
        a, k = np.abs(w), _k(amount, w.size)
        if k == 0:
            return np.ones(w.shape, np.float32)
        return np.where(a <= np.sort(a, axis=None)[k - 1], 0, 1).astype(np.float32)

    def threshold_ge(w, amount):            # keeps the k-th smallest itself
        a = np.abs(w)
        return (a >= np.sort(a, axis=None)[_k(amount, w.size) - 1]).astype(np.float32)

    def threshold_next(w, amount):          # exact without ties, keeps ties below the cut
        a, k = np.abs(w), _k(amount, w.size)
        if k == w.size:
            return np.zeros(w.shape, np.float32)
        return (a >= np.sort(a, axis=None)[k]).astype(np.float32)

    _assert_hints(ex.check_magnitude_mask, [
        (signed, "*signed* values"), (largest, "*largest* magnitudes"), (inverted, "inverted"),
        (pruned_weights, "returned the pruned weights w * mask"),
        (no_axis, "sorts each row separately"),
        (rounding(int), "rounded down"), (rounding(math.floor), "rounded down"),
        (rounding(math.ceil), "rounded up (math.ceil)"),
        (rounding(lambda x: int(x + 0.5)), "rounds halves up"),
        (rounding(lambda x: math.floor(x + 0.5)), "rounds halves up"),
        (kept_fraction, "fraction to *keep*"), (int_as_fraction, "treated an int amount as a fraction"),
        (by_value, "by its value"), (one_too_many, "one weight too many"),
        (threshold_le, "index k - 1 = -1 is the *largest* |w|"),
        (threshold_le_k0_ok, "more than k are pruned when |w| values tie"),
        (threshold_ge, "keeps the k-th weight itself"),
        (threshold_next, "(k+1)-th smallest |w|"),
    ])


def test_checker_1_1_other_failures():
    assert ex.check_magnitude_mask(lambda w, a: w, quiet=True).status == "fail"

    def todo(w, amount):
        raise NotImplementedError()
    assert ex.check_magnitude_mask(todo, quiet=True).status == "not attempted"
    r = ex.check_magnitude_mask(lambda w, amount: np.ones(w.shape)[: amount], quiet=True)
    assert r.status == "error" and "TypeError" in r.message


def test_checker_1_1_tie_cases_straddle_the_threshold():
    """With ties the documented count is exact: the tied |w| at the k-th position also occur on
    both sides of the cut, so a threshold (<= or >=) prunes the wrong number."""
    tied = [c for c in ex._magnitude_cases() if c.equal is not None]
    assert len(tied) == 2
    for case in tied:
        w, amount = case.args
        a, k = np.sort(np.abs(w), axis=None), P.count_to_prune(amount, w.size)
        assert a[k - 1] == a[k], case.description
        ref = P.magnitude(w, amount)
        assert (ref == 0).sum() == k
        other = lesson_magnitude_mask(w[::-1].copy(), amount)[::-1]   # another tie order
        assert case.equal(other, ref) and not case.equal(ex._threshold_le_k0(w, amount), ref)


# ------------------------------------------------------------------------ exercise 1.2
def lesson_neuron_mask(W, amount):
    k = amount if isinstance(amount, int) else round(amount * W.shape[0])
    norms = np.linalg.norm(W, axis=1)
    mask = np.ones(W.shape, dtype=np.float32)
    mask[np.argsort(norms)[:k], :] = 0
    return mask


def _rows_mask(W, scores, k):
    mask = np.ones(W.shape, np.float32)
    mask[np.argsort(scores, kind="stable")[:k]] = 0
    return mask


def test_checker_1_2_accepts_correct_answers_with_any_tie_order(library_answers_allowed):
    def good(W, amount):
        k = amount if isinstance(amount, int) else round(amount * W.shape[0])
        mask = np.ones(W.shape, np.float32)
        mask[np.argsort(np.linalg.norm(W, axis=1))[:k]] = 0
        return mask

    def squared_norms_last_tie_first(W, amount):    # same order as L2; ties: highest index first
        sq = (W.astype(np.float64) ** 2).sum(axis=1)
        order = np.lexsort((-np.arange(len(sq)), sq))
        mask = np.ones(W.shape, np.float32)
        mask[order[: _k(amount, W.shape[0])]] = 0
        return mask

    for answer in (lesson_neuron_mask, good, squared_norms_last_tie_first,
                   lambda W, a: P.structured(W, a, dim=0)):
        r = ex.check_neuron_mask(answer, quiet=True)
        assert _ok(r) and "all 11 test cases" in r.message, r.message


def test_checker_1_2_names_each_mistake(library_answers_allowed):
    def l2(W):
        return np.linalg.norm(W, axis=1)

    def by(score):
        def answer(W, amount):
            return _rows_mask(W, score(W), _k(amount, W.shape[0]))
        return answer

    def columns(W, amount):
        k = _k(amount, W.shape[1])
        mask = np.ones(W.shape, np.float32)
        mask[:, np.argsort(np.linalg.norm(W, axis=0))[:k]] = 0
        return mask

    def largest(W, amount):
        return _rows_mask(W, -l2(W), _k(amount, W.shape[0]))

    def inverted(W, amount):
        return 1 - lesson_neuron_mask(W, amount)

    def row_vector(W, amount):
        keep = np.ones(W.shape[0], np.float32)
        keep[np.argsort(l2(W))[: _k(amount, W.shape[0])]] = 0
        return keep

    def count(fn):
        def answer(W, amount):
            k = amount if isinstance(amount, int) else fn(amount * W.shape[0])
            return _rows_mask(W, l2(W), k)
        return answer

    def from_size(W, amount):       # 1.1's count
        return _rows_mask(W, l2(W), amount if isinstance(amount, int) else round(amount * W.size))

    def from_columns(W, amount):
        return _rows_mask(W, l2(W), amount if isinstance(amount, int) else round(amount * W.shape[1]))

    def kept_fraction(W, amount):
        return _rows_mask(W, l2(W), _k(amount, W.shape[0]) if isinstance(amount, int)
                          else round((1 - amount) * W.shape[0]))

    def int_as_fraction(W, amount):
        return _rows_mask(W, l2(W), round(amount * W.shape[0]))

    def threshold(W, amount):
        norms = l2(W)
        t = np.sort(norms)[_k(amount, W.shape[0]) - 1]
        return np.where(norms[:, None] <= t, 0.0, 1.0) * np.ones(W.shape, np.float32)

    def unstructured(W, amount):
        return P.magnitude(W, amount if isinstance(amount, float) else amount * W.shape[1])

    _assert_hints(ex.check_neuron_mask, [
        (columns, "you pruned columns"), (ex._wrong_axis, "columns"),
        (by(lambda W: np.abs(W).sum(axis=1)), "L1 norm"),
        (by(lambda W: np.abs(W).mean(axis=1)), "L1 norm"),
        (by(lambda W: np.abs(W).max(axis=1)), "largest |w| (the L-infinity norm)"),
        (by(lambda W: W.sum(axis=1)), "signed sum"),
        (largest, "*largest* norm"), (inverted, "inverted"), (row_vector, "one value per row"),
        (count(int), "rounded down"), (count(math.ceil), "rounded up (math.ceil)"),
        (count(lambda x: int(x + 0.5)), "rounds halves up"),
        (from_size, "count from all weights"), (from_columns, "number of columns"),
        (kept_fraction, "to *keep*"), (int_as_fraction, "treated an int amount as a fraction"),
        (threshold, "norm <= t"), (unstructured, "unstructured"),
    ])


def test_checker_1_2_the_norm_case_separates_l1_l2_and_max():
    case = next(c for c in ex._neuron_cases() if "max |w|" in c.description)
    W, amount = case.args
    pruned = {name: int(np.flatnonzero(mask[:, 0] == 0)[0]) for name, mask in
              {"L2": ex._ref_neuron_mask(W, amount), "L1": ex._l1_rows(W, amount),
               "max": ex._linf_rows(W, amount)}.items()}
    assert pruned == {"L2": 2, "L1": 3, "max": 1}
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), [8, 4, 3, 3.5])


# ------------------------------------------------------------------------ exercise 1.3
def lesson_remove_neurons(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2[:, keep]


def test_checker_1_3_accepts_any_consistent_order():
    def boolean_mask(W1, b1, W2, keep):      # kept neurons in sorted order: also right
        alive = np.zeros(W1.shape[0], bool)
        alive[keep] = True
        return W1[alive], b1[alive], W2[:, alive]

    def delete_the_others(W1, b1, W2, keep):
        gone = [i for i in range(W1.shape[0]) if i not in set(keep.tolist())]
        return np.delete(W1, gone, axis=0), np.delete(b1, gone), np.delete(W2, gone, axis=1)

    for good in (lesson_remove_neurons, boolean_mask, delete_the_others):
        r = ex.check_remove_neurons(good, quiet=True)
        assert _ok(r) and "all 5 test cases" in r.message, r.message


def test_checker_1_3_names_each_mistake():
    def zeroed(W1, b1, W2, keep):
        W1, b1, W2 = W1.copy(), b1.copy(), W2.copy()
        gone = np.setdiff1d(np.arange(W1.shape[0]), keep)
        W1[gone], b1[gone], W2[:, gone] = 0, 0, 0
        return W1, b1, W2

    def mixed_order(W1, b1, W2, keep):
        return W1[np.sort(keep)], b1[keep], W2[:, keep]

    _assert_hints(ex.check_remove_neurons, [
        (lambda W1, b1, W2, k: (W1[k], b1[k], W2), "forgot the next layer"),
        (lambda W1, b1, W2, k: (W1[k], b1[k], W2[k]), "not W2[keep]"),
        (lambda W1, b1, W2, k: (W1[k], b1[k], W2.T[k]), "W2.T[keep]"),
        (lambda W1, b1, W2, k: (W1[:, k], b1[k], W2[:, k]), "not W1[:, keep]"),
        (lambda W1, b1, W2, k: (W1[k], b1, W2[:, k]), "kept all the biases"),
        (lambda W1, b1, W2, k: (np.delete(W1, k, 0), np.delete(b1, k), np.delete(W2, k, 1)),
         "deleted the neurons listed in `keep`"),
        (zeroed, "zeroed the removed neurons"),
        (mixed_order, "not in the same order"),
        (lambda W1, b1, W2, k: (W1[k], b1[k], 2 * W2[:, k]), "W2_small holds wrong values"),
        (lambda W1, b1, W2, k: [W1[k], b1[k]], "return a tuple of three arrays"),
    ])
    assert ex.check_remove_neurons(lambda *a: a[0], quiet=True).status == "fail"


def test_checkers_registered():
    from compresslab.exercises import all_checkers
    reg = all_checkers()
    assert {"1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1a.quiz", "1b.quiz"} <= set(reg)
    assert all(reg[k]["lesson"] == "01a_pruning" for k in ("1.1", "1.2", "1.3", "1.4", "1a.quiz"))
    assert all(reg[k]["lesson"] == "01b_pruning_schedules" for k in ("1.5", "1.6", "1b.quiz"))


def test_plots_draw_what_they_are_given():
    from compresslab.plots import prune as pp
    g = np.random.default_rng(0)
    w = g.normal(size=(30, 20))
    # histogram: kept + pruned bars count every weight; the pruned ones are |w| <= threshold
    fig = pp.weight_histogram(w, 0.5)
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches) == w.size
    assert sorted(float(l.get_xdata()[0]) for l in ax.lines) == [-0.5, 0.5]
    assert f"({int((np.abs(w) <= 0.5).sum())})" in ax.get_legend().get_texts()[1].get_text()
    # mask gallery: the picture is the mask itself
    mask = P.magnitude(w, 0.5)
    fig = pp.mask_gallery({"a": mask})
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), mask)
    assert "50% pruned" in fig.axes[0].get_title()
    # accuracy curves in percent; the zoom panel shows the top 5 points
    fig = pp.accuracy_vs_sparsity({"x": ([0.5, 0.9], [0.9, 0.8]), "random": ([0.5], [0.5])},
                                  baseline=0.95, zoom=5)
    x = next(l for l in fig.axes[0].lines if l.get_label() == "x")
    np.testing.assert_allclose(x.get_xydata(), [[50, 90], [90, 80]])      # (sparsity %, accuracy %)
    assert fig.axes[1].get_ylim() == pytest.approx((90, 97))
    assert fig.axes[0].get_ylabel() == "validation accuracy (%)"       # a sweep scores on validation
    fig = pp.accuracy_vs_sparsity({"x": ([0.5], [0.9])}, split="test")
    assert fig.axes[0].get_ylabel() == "test accuracy (%)"
    # schedule: the target sparsity in percent, a dot at each mask update
    fig = pp.schedule(np.arange(10), np.linspace(0, 0.9, 10), np.arange(10) % 2 == 0)
    curve, dots = fig.axes[0].lines
    np.testing.assert_allclose(curve.get_ydata(), np.linspace(0, 90, 10))
    np.testing.assert_array_equal(dots.get_xdata(), [0, 2, 4, 6, 8])
    # latency bars in milliseconds
    fig = pp.latency_bars(["a", "b"], [1e-3, 5e-4], [1e-4, (4e-4, 6e-4)])
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([1.0, 0.5])
    plt.close("all")


# ------------------------------------------------------------------------ exercise 1.5
import itertools  # noqa: E402  (the lesson's solution cell imports it the same way)


def choose_sparsities(scan, sizes, budget):
    # the solution cell of lessons/01b_pruning_schedules.ipynb, copied verbatim
    best, best_drop = None, float("inf")
    for idx in itertools.product(range(len(scan.sparsities)), repeat=len(scan.layers)):
        choice = {name: float(scan.sparsities[j]) for name, j in zip(scan.layers, idx)}
        kept = sum(n - round(choice[name] * n) for name, n in sizes.items())
        drop = sum(scan.baseline - scan.accuracy[i, j] for i, j in enumerate(idx))
        if kept <= budget and drop < best_drop:
            best, best_drop = choice, drop
    return best


def _search_by(kept_of, fits=lambda kept, budget: kept <= budget, sizes_of=lambda scan, sizes: sizes):
    """A learner's exhaustive search with its own kept count and budget test."""
    def answer(scan, sizes, budget):
        sizes = sizes_of(scan, sizes)
        best, best_drop = None, float("inf")
        for idx in itertools.product(range(len(scan.sparsities)), repeat=len(scan.layers)):
            choice = {name: float(scan.sparsities[j]) for name, j in zip(scan.layers, idx)}
            kept = sum(kept_of(choice[name], n) for name, n in sizes.items())
            drop = sum(scan.baseline - scan.accuracy[i, j] for i, j in enumerate(idx))
            if fits(kept, budget) and drop < best_drop:
                best, best_drop = choice, drop
        return best
    return answer


def test_checker_1_4_accepts_the_lesson_solution():
    r = ex.check_choose_sparsities(choose_sparsities, quiet=True)
    assert _ok(r) and "all 9 cases" in r.message, r.message
    assert _ok(ex.check_choose_sparsities(ex._ref_choose, quiet=True))


def test_checker_1_4_names_each_mistake():
    def kept_fraction(*a):
        return {k: 1 - v for k, v in choose_sparsities(*a).items()}

    def uniform(scan, sizes, budget):
        for s in scan.sparsities:
            if sum(n - round(s * n) for n in sizes.values()) <= budget:
                return {k: float(s) for k in scan.layers}

    def unweighted(scan, sizes, budget):
        total, best, best_drop = sum(sizes.values()), None, np.inf
        for idx in itertools.product(range(len(scan.sparsities)), repeat=len(scan.layers)):
            sp = [scan.sparsities[j] for j in idx]
            if np.mean([1 - s for s in sp]) * total <= budget:
                drop = sum(scan.baseline - scan.accuracy[i, j] for i, j in enumerate(idx))
                if drop < best_drop:
                    best, best_drop = dict(zip(scan.layers, map(float, sp))), drop
        return best

    def greedy(scan, sizes, budget):       # raise the layer losing least accuracy per weight removed
        j = dict.fromkeys(scan.layers, 0)
        while sum(n - round(scan.sparsities[j[k]] * n) for k, n in sizes.items()) > budget:
            steps = []
            for i, k in enumerate(scan.layers):
                if j[k] + 1 < len(scan.sparsities):
                    n = sizes[k]
                    removed = round(scan.sparsities[j[k] + 1] * n) - round(scan.sparsities[j[k]] * n)
                    steps.append(((scan.accuracy[i, j[k]] - scan.accuracy[i, j[k] + 1]) / removed, k))
            j[min(steps)[1]] += 1
        return {k: float(scan.sparsities[v]) for k, v in j.items()}

    _assert_hints(ex.check_choose_sparsities, [
        (kept_fraction, "fraction of weights *kept*"),
        (uniform, "every layer the same sparsity"),
        (unweighted, "different sizes"),
        (_search_by(lambda s, n: n - round(s * n), fits=lambda kept, budget: kept < budget),
         "a choice that keeps exactly `budget` weights is allowed"),
        (_search_by(lambda s, n: (1 - s) * n), "(1 - s) * n without rounding"),
        (_search_by(lambda s, n: n - int(s * n)), "rounded the pruned count down"),
        (_search_by(lambda s, n: n - math.ceil(s * n)), "rounded the pruned count up"),
        (_search_by(lambda s, n: n - round(s * n),
                    sizes_of=lambda scan, sizes: dict(zip(scan.layers, sizes.values()))), "by position"),
        (greedy, "a greedy choice can miss it"),
    ])
    assert ex.check_choose_sparsities(lambda *a: {"0.weight": 0.5}, quiet=True).status == "fail"


def test_checker_1_4_edge_cases_catch_what_they_say():
    """Each edge case separates the reference from one rounding or budget variant; the exact
    budget is met with equality by the best choice."""
    cases = ex._budget_cases()
    variants = {"strict": ex._strict_budget, "unrounded": ex._unrounded_kept, "floor": ex._floor_pruned,
                "ceil": ex._ceil_pruned, "positional": ex._positional_sizes}
    caught = {}
    for case in cases:
        want = ex._ref_choose(*case.args)
        caught[case.description] = {name for name, f in variants.items()
                                    if not case.equal(f(*case.args), want)}
    edge = {note: next(d for d in caught if note in d) for note in (
        "keeps exactly the budget", "not a whole number", "not (1 - s) * n", "ceil(s * n)", "another order")}
    assert caught[edge["keeps exactly the budget"]] == {"strict"}
    assert caught[edge["not a whole number"]] == {"floor"}
    assert caught[edge["not (1 - s) * n"]] == {"unrounded", "floor"}
    assert caught[edge["ceil(s * n)"]] == {"ceil"}
    assert caught[edge["another order"]] == {"positional"}
    exact = next(c for c in cases if c.description == edge["keeps exactly the budget"])
    scan, sizes, budget = exact.args
    assert ex._kept(sizes, ex._ref_choose(scan, sizes, budget)) == budget


def test_neuron_mask_checker_rejects_l1_norm():
    import numpy as np

    from compresslab.exercises import lesson01 as ex

    def l1_rows(W, amount):
        k = round(amount * W.shape[0]) if isinstance(amount, float) else amount
        drop = np.argsort(np.abs(W).sum(axis=1), kind="stable")[:k]
        mask = np.ones_like(W)
        mask[drop] = 0
        return mask

    r = ex.check_neuron_mask(l1_rows, quiet=True)
    assert r.status == "fail" and "ranked rows by their L1 norm" in r.message


# ------------------------------------------------------------------------ exercise 1.6
def agp_sparsity(step, initial_sparsity, final_sparsity, begin_step, end_step, frequency):
    # the solution cell of lessons/01b_pruning_schedules.ipynb, copied verbatim
    if step < begin_step:                       # pruning has not started yet
        return float(initial_sparsity)
    if step >= end_step:                        # the ramp is over
        return float(final_sparsity)
    n_updates = (step - begin_step) // frequency            # mask updates since begin_step
    last_update = begin_step + n_updates * frequency        # the mask's sparsity is from then
    progress = (last_update - begin_step) / (end_step - begin_step)   # in [0, 1)
    remaining = np.power(1.0 - progress, 3)                 # cubic: fast first, slow at the end
    sparsity = final_sparsity + (initial_sparsity - final_sparsity) * remaining
    return float(sparsity)


def _agp_by(power=3, t=lambda step, b, f: b + (step - b) // f * f, shape=lambda p: 1 - p,
            before=True, after=True, swap=False):
    """A learner's AGP written the straightforward way, with one thing changed."""
    def answer(step, s_i, s_f, b, e, f):
        if swap:
            s_i, s_f = s_f, s_i
        if before and step < b:
            return s_i
        if after and step >= e:
            return s_f
        return s_f + (s_i - s_f) * shape((t(step, b, f) - b) / (e - b)) ** power
    return answer


def test_checker_1_5_accepts_the_lesson_solution(library_answers_allowed):
    r = ex.check_agp_sparsity(agp_sparsity, quiet=True)
    assert _ok(r) and "all 10 test cases" in r.message, r.message
    assert _ok(ex.check_agp_sparsity(ex._ref_agp, quiet=True))
    assert _ok(ex.check_agp_sparsity(_agp_by(), quiet=True))
    # the docstring's example and the statement's
    assert agp_sparsity(50, 0.0, 0.8, 0, 100, 10) == pytest.approx(0.7)
    assert agp_sparsity(47, 0.0, 0.8, 0, 100, 10) == pytest.approx(0.6272)


def test_checker_1_5_names_each_mistake():
    def raw_step_clipped(step, s_i, s_f, b, e, f):      # np.clip, no rounding at all
        p = np.clip((step - b) / max(e - b, 1e-12), 0, 1)
        return float(s_f + (s_i - s_f) * (1 - p) ** 3)

    def rounded_then_clipped(step, s_i, s_f, b, e, f):  # wrong only where begin_step == end_step
        t = b + max(step - b, 0) // f * f
        return float(s_f + (s_i - s_f) * (1 - min((t - b) / max(e - b, 1), 1.0)) ** 3)

    _assert_hints(ex.check_agp_sparsity, [
        (_agp_by(power=1), "rises linearly (exponent 1)"),
        (_agp_by(power=2), "exponent 2"),
        (_agp_by(shape=lambda p: p), "cubed the progress"),
        (_agp_by(swap=True), "swapped"),
        (_agp_by(t=lambda step, b, f: step), "did not round the step down"),
        (raw_step_clipped, "did not round the step down"),
        (_agp_by(t=lambda step, b, f: step // f * f), "counted from 0"),
        (_agp_by(after=False), "no clamping after end_step"),
        (_agp_by(before=False), "no clamping before begin_step"),
        (rounded_then_clipped, "begin_step = end_step"),
    ])
    r = ex.check_agp_sparsity(lambda *a: [0.5], quiet=True)
    assert r.status == "fail", r.message
    r = ex.check_agp_sparsity(lambda *a: "0.5 sparse", quiet=True)
    assert r.status == "fail" and "return one number" in r.message, r.message


def test_checker_1_5_not_attempted_and_errors():
    def untouched(step, initial_sparsity, final_sparsity, begin_step, end_step, frequency):
        raise NotImplementedError()

    r = ex.check_agp_sparsity(untouched, quiet=True)
    assert r.status == "not attempted", r.message
    r = ex.check_agp_sparsity(lambda step, s_i, s_f, b, e, f: 1 / 0, quiet=True)
    assert r.status == "error" and "ZeroDivisionError" in r.message, r.message


def test_checker_1_5_is_fast():
    import time
    start = time.perf_counter()
    ex.check_agp_sparsity(agp_sparsity, quiet=True)
    ex.check_agp_sparsity(_agp_by(power=2), quiet=True)
    assert time.perf_counter() - start < 0.5


def test_checker_1_5_names_what_goes_wrong_outside_the_ramp():
    """An answer wrong only outside the ramp (before begin_step, after end_step) or only in how it
    uses initial_sparsity gets a hint about that rule, never one about rounding the step."""
    def only_outside(before=None, after=None):
        def answer(step, s_i, s_f, b, e, f):
            if before is not None and step < b:
                return before(s_i, s_f)
            if after is not None and step > e:
                return after(step, s_i, s_f, b, e, f)
            return agp_sparsity(step, s_i, s_f, b, e, f)
        return answer

    def last_ramp_value(step, s_i, s_f, b, e, f):      # the mask "stays at its last update"
        return agp_sparsity(e - 1, s_i, s_f, b, e, f)

    def window(step, s_i, s_f, b, e, f):                # outside [begin, end): not pruning
        return s_i if step < b or (step >= e and b != e) else agp_sparsity(step, s_i, s_f, b, e, f)

    def ignores_initial(step, s_i, s_f, b, e, f):       # the ramp written as s_f * (1 - (1 - p)^3)
        return agp_sparsity(step, s_i if step < b else 0.0, s_f, b, e, f)

    def initial_as_zero(step, s_i, s_f, b, e, f):       # s_i never read at all
        return agp_sparsity(step, 0.0, s_f, b, e, f)

    cases = [
        (only_outside(after=lambda step, s_i, s_f, b, e, f: s_i), "after end_step you returned initial_sparsity"),
        (window, "after end_step you returned initial_sparsity"),
        (only_outside(after=lambda *a: 0.0), "after end_step the ramp is over"),
        (only_outside(after=last_ramp_value), "after end_step the ramp is over"),
        (only_outside(before=lambda s_i, s_f: s_f), "before begin_step you returned final_sparsity"),
        (only_outside(before=lambda s_i, s_f: 0.0), "rule 1 gives initial_sparsity = 0.2"),
        (ignores_initial, "your ramp starts from 0, not from initial_sparsity"),
        (initial_as_zero, "your ramp starts from 0, not from initial_sparsity"),
    ]
    _assert_hints(ex.check_agp_sparsity, cases)
    for wrong, _ in cases:
        message = ex.check_agp_sparsity(wrong, quiet=True).message
        assert "round" not in message and "swapped" not in message and "cubed" not in message, message
    # s_i missing is seen on the case labelled for it, not on the one about counting updates
    message = ex.check_agp_sparsity(ignores_initial, quiet=True).message
    assert "(a nonzero initial_sparsity)" in message and "counted from begin_step" not in message


def test_checker_1_5_rule_1_with_less_or_equal():
    """Rule 1 written as step <= begin_step is right everywhere except where begin_step ==
    end_step: the hint says so, not that initial and final are swapped."""
    def begin_inclusive(step, s_i, s_f, b, e, f):
        if step <= b:
            return s_i
        return agp_sparsity(step, s_i, s_f, b, e, f)

    r = ex.check_agp_sparsity(begin_inclusive, quiet=True)
    assert not r.passed
    assert "with begin_step == end_step there is no ramp" in r.message, r.message
    assert "applies at once" in r.message and "swapped" not in r.message, r.message


def test_checker_1_5_hints_for_the_rules_agree_with_the_reference():
    """The rule hints quote the number the reference gives on that case."""
    for case in ex._agp_cases():
        step, s_i, s_f, b, e, f = case.args
        hint = ex._explain_agp(-1.0, ex._ref_agp(*case.args), case)
        if step < b:
            assert f"initial_sparsity = {s_i}" in hint and ex._ref_agp(*case.args) == pytest.approx(s_i)
        elif step >= e:
            assert f"final_sparsity = {s_f}" in hint and ex._ref_agp(*case.args) == pytest.approx(s_f)
        else:
            assert hint is None


# ------------------------------------------------------------------------ exercise 1.4
# The solution cell of lessons/01a_pruning.ipynb, copied verbatim.
def masked_sgd(W, b, mask, grads, lr):
    mask = np.asarray(mask, dtype=W.dtype)
    W = W * mask                    # a fresh mask may arrive with nonzero weights under it
    b = b.copy()
    for gW, gb in grads:
        W = W - lr * gW             # the plain SGD step ...
        W = W * mask                # ... then the mask again: pruned weights stay exactly 0
        b = b - lr * gb             # the bias is not pruned
    return W, b


def test_masked_sgd_accepts_the_lesson_solution_and_the_reference():
    r = ex.check_masked_sgd(masked_sgd, quiet=True)
    assert _ok(r) and "all 7 cases" in r.message, r.message
    assert _ok(ex.check_masked_sgd(ex._ref_masked_sgd, quiet=True))
    # masking the gradient too, after zeroing W once, is the same update: accepted
    def grad_masked(W, b, mask, grads, lr):
        W = W * mask
        for gW, gb in grads:
            W, b = W - lr * (gW * mask), b - lr * gb
        return W, b
    assert _ok(ex.check_masked_sgd(grad_masked, quiet=True))


def test_masked_sgd_reference_is_the_library_training_loop():
    """The reference is what nn.fit does with layer.masks: pruned weights exactly 0, kept ones
    moved by plain SGD."""
    g = np.random.default_rng(0)
    W, b = g.normal(size=(4, 5)).astype(np.float32), g.normal(size=4).astype(np.float32)
    mask = (g.uniform(size=(4, 5)) > 0.5).astype(np.float32)
    grads = [(g.normal(size=(4, 5)).astype(np.float32), g.normal(size=4).astype(np.float32))]
    W1, b1 = ex._ref_masked_sgd(W, b, mask, grads, 0.1)
    assert np.all(W1[mask == 0] == 0)
    np.testing.assert_allclose(W1[mask == 1], (W - 0.1 * grads[0][0])[mask == 1], rtol=1e-6)
    np.testing.assert_allclose(b1, b - 0.1 * grads[0][1], rtol=1e-6)


def test_masked_sgd_names_the_classic_mistakes():
    def grad_only(W, b, mask, grads, lr):
        for gW, gb in grads:
            W, b = W - lr * gW * mask, b - lr * gb
        return W, b

    def before_only(W, b, mask, grads, lr):
        for gW, gb in grads:
            W = W * mask - lr * gW
            b = b - lr * gb
        return W, b

    def inverted(W, b, mask, grads, lr):
        return masked_sgd(W, b, 1 - mask, grads, lr)

    def ascent(W, b, mask, grads, lr):
        return masked_sgd(W, b, mask, grads, -lr)

    def bias_masked(W, b, mask, grads, lr):
        W, b = masked_sgd(W, b, mask, grads, lr)
        return W, b * mask.any(axis=1)

    def bias_frozen(W, b, mask, grads, lr):
        return masked_sgd(W, b, mask, grads, lr)[0], b

    def reprune(W, b, mask, grads, lr):
        k = int((mask == 0).sum())
        W = W * mask
        for gW, gb in grads:
            W = W - lr * gW
            W = W * P.magnitude(W, k)
            b = b - lr * gb
        return W, b

    def unmasked(W, b, mask, grads, lr):
        return masked_sgd(W, b, np.ones_like(mask), grads, lr)

    def mask_in_loop_only(W, b, mask, grads, lr):      # right whenever there is a step
        for gW, gb in grads:
            W = (W - lr * gW) * mask
            b = b - lr * gb
        return W, b

    _assert_hints(ex.check_masked_sgd, [
        (grad_only, "you masked the gradient only"),
        (before_only, "before each update only"),
        (inverted, "your mask is inverted"),
        (ascent, "move *up* the gradient"),
        (bias_masked, "Biases are not pruned"),
        (bias_frozen, "your bias did not move"),
        (reprune, "you chose a new mask"),
        (unmasked, "you never applied the mask"),
        (mask_in_loop_only, "grads is empty"),
        (lambda W, b, mask, grads, lr: masked_sgd(W, b, mask, grads, lr)[0], "return a pair"),
    ])


def test_masked_sgd_rejects_changing_the_inputs_in_place():
    def in_place(W, b, mask, grads, lr):
        W *= mask
        for gW, gb in grads:
            W -= lr * gW
            W *= mask
            b -= lr * gb
        return W, b

    def changes_mask(W, b, mask, grads, lr):
        out = masked_sgd(W, b, mask, grads, lr)
        mask[:] = 1
        return out

    for wrong in (in_place, changes_mask):
        r = ex.check_masked_sgd(wrong, quiet=True)
        assert r.status == "fail" and "changed its inputs in place" in r.message, r.message


def test_masked_sgd_rejects_changing_the_gradients_in_place():
    def masks_grads(W, b, mask, grads, lr):             # right maths, but grads is changed
        W = W * mask
        for gW, gb in grads:
            gW *= mask
            W = (W - lr * gW) * mask
            b = b - lr * gb
        return W, b

    def scales_grads(W, b, mask, grads, lr):            # right maths, but grads is changed
        W = W * mask
        for gW, gb in grads:
            gW *= lr
            gb *= lr
            W = (W - gW) * mask
            b = b - gb
        return W, b

    for wrong in (masks_grads, scales_grads):
        r = ex.check_masked_sgd(wrong, quiet=True)
        assert r.status == "fail" and "changed the gradients in grads in place" in r.message, \
            r.message


def test_masked_sgd_every_mistake_is_told_apart_from_the_reference():
    for m in ex._SGD_MISTAKES:
        r = ex.check_masked_sgd(m.fn, quiet=True)
        assert r.status == "fail" and r.message.startswith(m.hint), (m.hint, r.message)


# ------------------------------------------------------------------------ the self-check quizzes
LESSONS = Path(__file__).resolve().parents[1] / "lessons"
QUIZZES = {  # lesson -> (quiz, its grade-id stem, the lesson's quiz solution)
    "01a_pruning": (ex.check_quiz_a, "quiz1a", {1: "a", 2: 2, 3: "b", 4: "c"}),
    "01b_pruning_schedules": (ex.check_quiz_b, "quiz1b", {1: "c", 2: 0.7, 3: "b", 4: "c"}),
}
NOTEBOOK_A, NOTEBOOK_B = (LESSONS / f"{stem}.ipynb" for stem in QUIZZES)


def _cells(path=NOTEBOOK_B):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("stem", QUIZZES)
def test_quiz_solution_is_the_lessons_and_passes(stem):
    check, gid, right = QUIZZES[stem]
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in _cells(LESSONS / f"{stem}.ipynb")}
    ns = {}
    exec(cells[f"{gid}-solution"], ns)
    assert ns["quiz_answers"]() == right
    r = check(ns["quiz_answers"], quiet=True)
    assert _ok(r) and f"all {len(right)} answers" in r.message, r.message
    name = "check_quiz_a" if stem.startswith("01a") else "check_quiz_b"
    assert f"cl.exercises.lesson01.{name}(quiz_answers)" in cells[f"{gid}-check"]
    assert 3 <= len(check.questions) <= 5


@pytest.mark.parametrize("stem", QUIZZES)
def test_quiz_is_shown_verbatim_in_the_lesson(stem):
    text = "\n".join("".join(c["source"]) for c in _cells(LESSONS / f"{stem}.ipynb")
                     if c["cell_type"] == "markdown")
    assert QUIZZES[stem][0].markdown() in text


_WRONG_OPTIONS = [(stem, n, letter) for stem, (check, _, _) in QUIZZES.items()
                  for n, q in enumerate(check.questions, 1) if q.options
                  for letter in q.options if letter != q.answer]


@pytest.mark.parametrize("stem,number,letter", _WRONG_OPTIONS, ids=lambda x: str(x))
def test_quiz_each_wrong_option_fails_with_its_own_hint(stem, number, letter):
    check, _, right = QUIZZES[stem]
    q = check.questions[number - 1]
    r = check(lambda: {**right, number: letter}, quiet=True)
    n = len(right)
    assert r.status == "fail" and r.message.startswith(f"{n - 1} of {n} right.")
    assert f"Q{number}: ({letter}) is not it: {q.why[letter]}" in r.message
    assert f"({q.answer})" not in r.message


def test_quiz_number_is_python_round_not_the_classic_slips():
    # 0.25 * 10 = 2.5 exactly; Python's round (half to even, as torch) gives 2
    check, _, right = QUIZZES["01a_pruning"]
    assert round(0.25 * 10) == 2 == P.count_to_prune(0.25, 10)
    slips = {"round half up / ceil": 3, "unrounded": 2.5, "the kept count": 8, "the kept count, unrounded": 7.5}
    for slip, value in slips.items():
        r = check(lambda value=value: {**right, 2: value}, quiet=True)
        assert r.status == "fail" and "Q2:" in r.message and "ends in exactly .5" in r.message, slip


def test_quiz_agp_halfway_is_the_library_schedule_not_the_classic_slips():
    check, _, right = QUIZZES["01b_pruning_schedules"]
    assert P.polynomial_decay(50, 0.0, 0.8, 0, 100).sparsity == pytest.approx(0.7)
    slips = {"linear": 0.4, "the cube of the progress, s_f * p^3": 0.1, "square": 0.6}
    for slip, value in slips.items():
        r = check(lambda value=value: {**right, 2: value}, quiet=True)
        assert r.status == "fail" and "Q2:" in r.message and "cube" in r.message, slip


def test_quiz_every_wrong_option_has_a_hint_and_none_gives_the_answer():
    for check, _, _ in QUIZZES.values():
        for q in check.questions:
            if q.options:
                assert set(q.why) == set(q.options) - {q.answer}, q.prompt
                for hint in q.why.values():
                    assert q.options[q.answer] not in hint
            else:
                assert str(q.answer) not in q.why["number"]


# ------------------------------------------------------------------------ the lessons' statistics
def test_lesson_reads_the_test_split_once_for_its_final_claim():
    """Sweeps, scans and the explorer score on validation (issue #15); only lesson 01b's
    final-claim cell reads the test split, and lesson 01a makes no test-split claim."""
    code = ["".join(c["source"]) for c in _cells(NOTEBOOK_B) if c["cell_type"] == "code"]
    readers = [src for src in code if "X_test" in src or "y_test" in src]
    assert len(readers) == 1 and "within 1 point of dense" in readers[0], readers
    code_a = ["".join(c["source"]) for c in _cells(NOTEBOOK_A) if c["cell_type"] == "code"]
    assert not [src for src in code_a if "X_test" in src or "y_test" in src]
    assert any("prune_widget.build(model, digits.X_val, digits.y_val)" in src for src in code_a)


@pytest.mark.parametrize("stem", QUIZZES)
def test_lesson_has_its_active_learning_parts(stem):
    import nbformat

    from compresslab import course
    nb = nbformat.read(LESSONS / f"{stem}.ipynb", as_version=4)
    est = course.estimate_minutes(nb)
    assert course.stated_minutes(nb) == est.total <= 90
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert 2 <= sum(s.startswith("**Predict, then run.**") for s in md) <= 3
    assert sum(s.startswith("**Reflect.**") for s in md) == 1
    builds = [c for c in nb.cells if "### BEGIN SOLUTION" in c.source and "def quiz_answers" not in c.source
              and len([ln for ln in c.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                       .splitlines() if ln.strip()]) >= 8]
    assert builds, "each half has a build-it exercise"
