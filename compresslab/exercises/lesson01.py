"""Checkers for lesson 01 (pruning)."""
from __future__ import annotations

import math

import numpy as np

from .. import prune
from ._core import Case, Feedback, Mistake, call, checker, compare_cases, same


def _tie_free(shape, seed):
    g = np.random.default_rng(seed)
    n = int(np.prod(shape))
    mags = (g.permutation(n) + 1 + g.uniform(0.1, 0.9, n)) / n
    return (mags * g.choice([-1.0, 1.0], n)).reshape(shape).astype(np.float32)


def _prune_smallest(score, k):
    mask = np.ones(score.size, np.float32)
    mask[np.argsort(score.ravel(), kind="stable")[:k]] = 0
    return mask.reshape(score.shape)


def _count(amount, n):
    return prune.count_to_prune(amount, n)


# ------------------------------------------------------------------------------- 1.1
def _signed(w, amount):
    return _prune_smallest(w, _count(amount, w.size))


def _floor(w, amount):
    k = int(amount * w.size) if isinstance(amount, float) else amount
    return _prune_smallest(np.abs(w), k)


def _ceil(w, amount):
    k = math.ceil(amount * w.size) if isinstance(amount, float) else amount
    return _prune_smallest(np.abs(w), k)


def _off_by_one(w, amount):
    return _prune_smallest(np.abs(w), _count(amount, w.size) + 1)


def _largest(w, amount):
    return 1 - _prune_smallest(-np.abs(w), _count(amount, w.size))


def _keeps_k(w, amount):
    return 1 - _prune_smallest(np.abs(w), _count(amount, w.size))


@checker("1.1", "magnitude mask", lesson="01_pruning")
def check_magnitude_mask(magnitude_mask):
    """``magnitude_mask(w, amount)``: 0 for the ``k`` smallest ``|w|``, 1 elsewhere; ``amount`` an
    int count or a float fraction rounded like torch (``round(amount * w.size)``)."""
    cases = [
        Case("a 4x5 matrix, amount=0.5 (10 of 20)", (_tie_free((4, 5), 0), 0.5)),
        Case("a 7-vector, amount=0.3 (round(2.1) = 2)", (_tie_free((7,), 1), 0.3)),
        Case("a 3x3 matrix, amount=0.7 (round(6.3) = 6)", (_tie_free((3, 3), 2), 0.7)),
        Case("a 7x1 matrix, amount=0.7 (round(4.9) = 5)", (_tie_free((7, 1), 7), 0.7)),
        Case("a 5-vector, amount=0.5 (round(2.5) = 2: half to even, like Python and torch)",
             (_tie_free((5,), 8), 0.5)),
        Case("a 6x10 matrix, amount=0.25 (15 of 60)", (_tie_free((6, 10), 3), 0.25)),
        Case("a 5x4 matrix, amount=3 (an int: prune exactly 3)", (_tie_free((5, 4), 4), 3)),
        Case("an 8x8 matrix, amount=0.0 (prune nothing)", (_tie_free((8, 8), 5), 0.0)),
        Case("a 2x5 matrix, amount=1.0 (prune everything)", (_tie_free((2, 5), 6), 1.0)),
    ]
    mistakes = [
        Mistake(_signed, "you pruned the smallest *signed* values, i.e. the most negative weights. "
                "A weight of -3 matters as much as +3: rank by |w| (np.abs)."),
        Mistake(_largest, "you pruned the *largest* magnitudes; magnitude pruning removes the smallest."),
        Mistake(_keeps_k, "your mask is inverted: it keeps the k smallest weights. The mask is 0 where "
                "a weight is pruned and 1 where it is kept."),
        Mistake(_floor, "your count is rounded down (int(amount * n)); torch rounds to nearest: "
                "k = round(amount * w.size)."),
        Mistake(_ceil, "your count is rounded up (math.ceil); torch rounds to nearest: "
                "k = round(amount * w.size)."),
        Mistake(_off_by_one, "you pruned one weight too many (an off-by-one, e.g. a threshold compared "
                "with <= against the k-th value, or slicing [:k+1])."),
    ]
    return compare_cases(magnitude_mask, prune.magnitude, cases, mistakes)


# ------------------------------------------------------------------------------- 1.2
def _ref_neuron_mask(W, amount):
    return prune.structured(W, amount, dim=0, n=2)


def _wrong_axis(W, amount):
    return prune.structured(W, amount, dim=1, n=2)


def _signed_sum_rows(W, amount):
    k = _count(amount, W.shape[0])
    keep = _prune_smallest(W.sum(axis=1), k)
    return np.repeat(keep[:, None], W.shape[1], axis=1)


def _floor_rows(W, amount):
    k = int(amount * W.shape[0]) if isinstance(amount, float) else amount
    keep = _prune_smallest(np.linalg.norm(W, axis=1), k)
    return np.repeat(keep[:, None], W.shape[1], axis=1)


def _count_over_all(W, amount):
    k = round(amount * W.size) // W.shape[1] if isinstance(amount, float) else amount
    keep = _prune_smallest(np.linalg.norm(W, axis=1), k)
    return np.repeat(keep[:, None], W.shape[1], axis=1)


def _l1_rows(W, amount):
    k = round(amount * W.shape[0]) if isinstance(amount, float) else amount
    keep = _prune_smallest(np.abs(W).sum(axis=1), k)
    return np.repeat(keep[:, None], W.shape[1], axis=1)


def _l1_l2_disagree():
    """Rows whose L1 and L2 orders differ: [3, 0, 0, 0] has L2 3 > 2 but L1 3 < 4 of [1, 1, 1, 1]."""
    return np.array([[3, 0, 0, 0], [1, 1, 1, 1], [4, 4, 0, 0], [2, 2, 2, 2]], np.float32)


def _unstructured(W, amount):
    return prune.magnitude(W, amount if isinstance(amount, float) else amount * W.shape[1])


def _neurons_case(rows, cols, seed):
    """Rows with distinct L2 norms whose signed sums rank differently."""
    g = np.random.default_rng(seed)
    W = g.normal(size=(rows, cols)).astype(np.float32)
    W *= (g.permutation(rows) + 1)[:, None].astype(np.float32) / rows
    return W


@checker("1.2", "neuron (row) mask", lesson="01_pruning")
def check_neuron_mask(neuron_mask):
    """``neuron_mask(W, amount)`` for a Linear weight ``W`` of shape (out, in): zero the
    ``k = round(amount * out)`` whole rows (neurons) with the smallest L2 norm."""
    cases = [
        Case("W of shape (6, 4), amount=0.5 (3 of 6 neurons)", (_neurons_case(6, 4, 0), 0.5)),
        Case("W of shape (5, 8), amount=0.3 (round(1.5) = 2 neurons)", (_neurons_case(5, 8, 1), 0.3)),
        Case("W of shape (10, 3), amount=0.75 (round(7.5) = 8 neurons)", (_neurons_case(10, 3, 2), 0.75)),
        Case("W of shape (7, 7), amount=2 (an int: 2 neurons)", (_neurons_case(7, 7, 3), 2)),
        Case("W of shape (4, 9), amount=0.0", (_neurons_case(4, 9, 4), 0.0)),
        Case("W of shape (8, 5), amount=0.6 (round(4.8) = 5 neurons)", (_neurons_case(8, 5, 5), 0.6)),
        Case("rows [3,0,0,0] and [1,1,1,1] (L2 norms 3 and 2, L1 norms 3 and 4), amount=1",
             (_l1_l2_disagree(), 1)),
    ]
    mistakes = [
        Mistake(_wrong_axis, "you pruned columns (inputs, axis 1). A neuron of a Linear layer is a *row* "
                "of W (shape (out, in)): compute one norm per row, e.g. np.linalg.norm(W, axis=1)."),
        Mistake(_l1_rows, "you ranked rows by their L1 norm (sum of |w|); this exercise uses the L2 "
                "norm, np.linalg.norm(W, axis=1), like torch's ln_structured(n=2)."),
        Mistake(_signed_sum_rows, "you ranked rows by their signed sum; positive and negative weights "
                "cancel. Use the L2 norm of each row."),
        Mistake(_floor_rows, "your neuron count is rounded down; use k = round(amount * W.shape[0])."),
        Mistake(_count_over_all, "you computed the count from all weights (W.size); for neurons it is "
                "k = round(amount * number_of_rows)."),
        Mistake(_unstructured, "that is an unstructured mask (single weights); zero *whole rows*."),
    ]
    return compare_cases(neuron_mask, _ref_neuron_mask, cases, mistakes)


# ------------------------------------------------------------------------------- 1.3
def _ref_remove(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2[:, keep]


def _forgot_next(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2


def _next_rows(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2[keep]


def _cols_first(W1, b1, W2, keep):
    return W1[:, keep], b1[keep], W2[:, keep]


def _forgot_bias(W1, b1, W2, keep):
    return W1[keep], b1, W2[:, keep]


def _equal_triple(got, want):
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise Feedback(f"return a tuple of three arrays (W1_small, b1_small, W2_small), got "
                       f"{type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return all(same(a, b) for a, b in zip(got, want))


def _shrink_case(n_in, hidden, n_out, seed):
    g = np.random.default_rng(seed)
    W1 = g.normal(size=(hidden, n_in)).astype(np.float32)
    b1 = g.normal(size=hidden).astype(np.float32)
    W2 = g.normal(size=(n_out, hidden)).astype(np.float32)
    keep = np.sort(g.choice(hidden, size=hidden // 2, replace=False))
    return W1, b1, W2, keep


@checker("1.3", "remove neurons", lesson="01_pruning")
def check_remove_neurons(remove_neurons):
    """``remove_neurons(W1, b1, W2, keep)`` -> ``(W1_small, b1_small, W2_small)``: keep only the
    hidden neurons ``keep`` of ``x -> relu(x @ W1.T + b1) -> @ W2.T``."""
    cases = [Case(f"{n_in} inputs, {hidden} hidden, {n_out} outputs", _shrink_case(n_in, hidden, n_out, s))
             for s, (n_in, hidden, n_out) in enumerate([(8, 6, 6), (10, 8, 9), (12, 10, 10)])]
    mistakes = [
        Mistake(_forgot_next, "you removed the neurons from W1 and b1 but forgot the next layer: its "
                "*input columns* for the removed neurons must go too (W2[:, keep]), or the shapes no "
                "longer match."),
        Mistake(_next_rows, "in the next layer the removed neurons are *inputs*, i.e. columns: use "
                "W2[:, keep], not W2[keep] (rows are W2's own output neurons)."),
        Mistake(_cols_first, "in W1 (shape (hidden, in)) a hidden neuron is a row: use W1[keep], not "
                "W1[:, keep]."),
        Mistake(_forgot_bias, "you kept all the biases; each removed neuron's bias must go too (b1[keep])."),
    ]
    return compare_cases(remove_neurons, _ref_remove, cases, mistakes, equal=_equal_triple,
                         describe=lambda t: "a tuple of arrays with shapes "
                         + ", ".join(str(np.shape(a)) for a in t) if isinstance(t, tuple) else repr(t))


# ------------------------------------------------------------------------------- 1.4
def _kept(sizes, choice):
    return sum(n - prune.count_to_prune(float(choice[name]), n) for name, n in sizes.items())


def _drop(scan, choice):
    total = 0.0
    for i, name in enumerate(scan.layers):
        j = int(np.argmin(np.abs(scan.sparsities - choice[name])))
        total += scan.baseline - scan.accuracy[i, j]
    return total


def _best_choice(scan, sizes, budget):
    """Exhaustive search over the scanned grid: least total accuracy drop within the budget."""
    import itertools

    best, best_drop = None, np.inf
    for combo in itertools.product(scan.sparsities, repeat=len(scan.layers)):
        choice = dict(zip(scan.layers, map(float, combo)))
        if _kept(sizes, choice) <= budget:
            d = _drop(scan, choice)
            if d < best_drop - 1e-12:
                best, best_drop = choice, d
    return best, best_drop


def _budget_case(seed, budget_fraction):
    g = np.random.default_rng(seed)
    layers = ["0.weight", "2.weight", "4.weight"]
    sizes = dict(zip(layers, (int(g.integers(2000, 20000)), int(g.integers(10000, 30000)),
                              int(g.integers(500, 2000)))))
    sp = np.array([0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
    base = 0.97
    # drops grow with sparsity, at a different pace per layer
    pace = g.uniform(0.5, 4.0, len(layers))
    acc = np.array([base - 0.3 * sp ** (1 + 6 / p) for p in pace * 2])
    scan = prune.SensitivityResult(layers, sp, np.round(acc, 4), base)
    budget = int(budget_fraction * sum(sizes.values()))
    return scan, sizes, budget


@checker("1.4", "per-layer sparsities for a size budget", lesson="01_pruning")
def check_choose_sparsities(choose_sparsities):
    """``choose_sparsities(scan, sizes, budget)`` -> ``{layer: sparsity}`` with sparsities taken
    from ``scan.sparsities``, at most ``budget`` weights kept in total
    (``sum(size - round(s * size))``), and the smallest total accuracy drop
    ``sum(scan.baseline - accuracy of that layer at its sparsity)``."""
    for seed, frac in ((0, 0.2), (1, 0.1), (2, 0.35), (3, 0.15)):
        scan, sizes, budget = _budget_case(seed, frac)
        where = f"the case with {sizes} weights and a budget of {budget} kept weights"
        got = call(choose_sparsities, Case(where, (scan, dict(sizes), budget)))
        if not isinstance(got, dict) or set(got) != set(scan.layers):
            raise Feedback(f"return a dict with one sparsity per layer, keys {scan.layers}; got "
                           f"{got!r:.120}")
        try:
            choice = {k: float(v) for k, v in got.items()}
        except (TypeError, ValueError):
            raise Feedback("each value must be a number (a sparsity in [0, 1])") from None

        def on_grid(v, grid=scan.sparsities):
            return np.min(np.abs(grid - v)) <= 1e-6

        if not all(map(on_grid, choice.values())) and all(on_grid(1 - v) for v in choice.values()):
            raise Feedback("your values look like the fraction of weights *kept* (1 - sparsity); "
                           f"return the sparsity, the fraction pruned (seen on {where}).")
        if not all(map(on_grid, choice.values())):
            raise Feedback(f"choose each sparsity from scan.sparsities {scan.sparsities.tolist()} "
                           f"(the scan only measured those); got {choice} on {where}")
        best, best_drop = _best_choice(scan, sizes, budget)
        choice = {k: float(scan.sparsities[np.argmin(np.abs(scan.sparsities - v))])
                  for k, v in choice.items()}
        kept = _kept(sizes, choice)
        if kept > budget:
            flipped = {k: 1 - v for k, v in choice.items()}
            if _kept(sizes, flipped) <= budget:
                raise Feedback(f"your choice keeps {kept} weights, over the budget of {budget}. It "
                               "would fit if the values meant 'fraction kept': return the fraction "
                               f"*pruned* (sparsity) instead (seen on {where}).")
            mean_kept = sum(1 - v for v in choice.values()) / len(choice)
            if mean_kept * sum(sizes.values()) <= budget:
                raise Feedback(f"your choice keeps {kept} weights, over the budget of {budget}: the "
                               "*average* sparsity is high enough, but layers have different sizes. "
                               "Weight each layer by its number of weights: kept = sum(size - "
                               f"round(s * size)) (seen on {where}).")
            raise Feedback(f"your choice keeps {kept} weights, over the budget of {budget} (seen on "
                           f"{where}).")
        drop = _drop(scan, choice)
        if drop > best_drop + 1e-9:
            uniform = len(set(choice.values())) == 1
            hint = (" You used the same sparsity for every layer; layers differ in sensitivity and "
                    "size, so prune the robust, large layers harder." if uniform else
                    " Search all combinations of the scanned sparsities (itertools.product) and keep "
                    "the best one within the budget; a greedy choice can miss it.")
            raise Feedback(f"within budget, but the total accuracy drop is {100 * drop:.2f} points "
                           f"while {100 * best_drop:.2f} is possible, e.g. {best} (seen on {where})."
                           + hint)
    return "within budget and the least total accuracy drop on all 4 cases."
