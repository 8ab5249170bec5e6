"""Checkers for lesson 01 (pruning), in two notebooks: lesson 01a (``01a_pruning``: exercises 1.1
to 1.4 and ``check_quiz_a``, "1a.quiz") and lesson 01b (``01b_pruning_schedules``: exercises 1.5
and 1.6 and ``check_quiz_b``, "1b.quiz")."""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import nn, prune
from ._core import Case, Feedback, Mistake, Question, checker, compare_cases, quiz, same, same_number


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


def _is_mask(a, shape):
    return isinstance(a, np.ndarray) and a.shape == shape and bool(np.isin(a, (0, 1)).all())


def _same_up_to_ties(scores, rows=False):
    """An ``equal`` for masks on inputs with tied scores: the same number of entries pruned, with
    the same scores (so any order among tied entries is accepted). ``scores`` has the mask's shape;
    with ``rows=True`` every row of a mask must also be all 0 or all 1."""
    scores = np.asarray(scores, np.float64)

    def equal(got, want):
        if same(got, want):
            return True
        try:
            got, want = np.asarray(got), np.asarray(want)
        except Exception:
            return False
        if not (_is_mask(got, scores.shape) and _is_mask(want, scores.shape)):
            return False
        if rows and not all((m == m[:, :1]).all() for m in (got, want)):
            return False
        return bool(np.array_equal(np.sort(scores[got == 0]), np.sort(scores[want == 0])))

    return equal


def _mask_case(description, w, amount):
    """A magnitude-mask case; inputs with tied |w| accept any order among the tied weights."""
    tied = np.unique(np.abs(w)).size < w.size
    return Case(description, (w, amount), equal=_same_up_to_ties(np.abs(w)) if tied else None)


# ------------------------------------------------------------------------------- 1.1
def _by_abs(w, k):
    return _prune_smallest(np.abs(w), k)


def _signed(w, amount):
    return _prune_smallest(w, _count(amount, w.size))


def _floor(w, amount):
    k = int(amount * w.size) if isinstance(amount, float) else amount
    return _by_abs(w, k)


def _ceil(w, amount):
    k = math.ceil(amount * w.size) if isinstance(amount, float) else amount
    return _by_abs(w, k)


def _half_up(w, amount):
    k = int(amount * w.size + 0.5) if isinstance(amount, float) else amount
    return _by_abs(w, k)


def _kept_fraction(w, amount):
    k = round((1 - amount) * w.size) if isinstance(amount, float) else amount
    return _by_abs(w, k)


def _int_as_fraction(w, amount):
    return _by_abs(w, min(round(amount * w.size), w.size))


def _by_value(w, amount):
    k = round(amount * w.size) if amount <= 1 else amount
    return _by_abs(w, k)


def _off_by_one(w, amount):
    return _by_abs(w, min(_count(amount, w.size) + 1, w.size))


def _largest(w, amount):
    return _prune_smallest(-np.abs(w), _count(amount, w.size))


def _keeps_k(w, amount):
    return 1 - _by_abs(w, _count(amount, w.size))


def _kth_smallest(a, k):
    return np.sort(a, axis=None)[k - 1]           # for k = 0 this is a[-1]: the largest


def _threshold_le(w, amount):
    a = np.abs(w)
    return (a > _kth_smallest(a, _count(amount, w.size))).astype(np.float32)


def _threshold_le_k0(w, amount):
    a, k = np.abs(w), _count(amount, w.size)
    return np.ones_like(a, np.float32) if k == 0 else (a > _kth_smallest(a, k)).astype(np.float32)


def _threshold_ge(w, amount):
    a = np.abs(w)
    return (a >= _kth_smallest(a, _count(amount, w.size))).astype(np.float32)


def _threshold_next_ge(w, amount):
    a = np.abs(w)
    return (a >= np.sort(a, axis=None)[_count(amount, w.size)]).astype(np.float32)


def _per_row_argsort(w, amount):
    mask = np.ones(w.size, np.float32)
    mask[np.argsort(np.abs(w))[: _count(amount, w.size)]] = 0     # sorts each row of a 2-D w
    return mask.reshape(w.shape)


def _pruned_weights(w, amount):
    return w * prune.magnitude(w, amount)


def _short(a):
    return str(np.round(a.astype(np.float64), 4).tolist())


def _magnitude_cases():
    tie_vec = np.float32([0.5, -0.25, 0.25, 0.9, -0.25, 0.7, 0.25, -1.0])
    # |w| sorted: 0.05 0.1 0.15 0.2 | 0.25 0.25 0.25 0.25 | 0.4 0.6 0.8 1.1; k = 6 cuts the ties
    tie_mat = np.float32([[0.25, -1.1, 0.1, 0.6], [-0.25, 0.15, -0.8, 0.25], [0.05, -0.4, -0.25, -0.2]])
    return [
        _mask_case("a 4x5 matrix, amount=0.5 (10 of 20)", _tie_free((4, 5), 0), 0.5),
        _mask_case("a 7-vector, amount=0.3 (round(2.1) = 2)", _tie_free((7,), 1), 0.3),
        _mask_case("a 3x3 matrix, amount=0.7 (round(6.3) = 6)", _tie_free((3, 3), 2), 0.7),
        _mask_case("a 7x1 matrix, amount=0.7 (round(4.9) = 5)", _tie_free((7, 1), 7), 0.7),
        _mask_case("a 5-vector, amount=0.5 (round(2.5) = 2: half to even, like Python and torch)",
                   _tie_free((5,), 8), 0.5),
        _mask_case("a 6x10 matrix, amount=0.25 (15 of 60)", _tie_free((6, 10), 3), 0.25),
        _mask_case("a 5x4 matrix, amount=3 (an int: prune exactly 3)", _tie_free((5, 4), 4), 3),
        _mask_case("a 4x6 matrix, amount=1 (an int: prune exactly 1 weight, not all)",
                   _tie_free((4, 6), 10), 1),
        _mask_case(f"w = {_short(tie_vec)}, amount=2 (four weights tie at |w| = 0.25: prune "
                   "exactly 2 of them)", tie_vec, 2),
        _mask_case(f"w = {_short(tie_mat)}, amount=0.5 (prune exactly 6: the four below 0.25 "
                   "and two of the four tied at |w| = 0.25)", tie_mat, 0.5),
        _mask_case("an 8x8 matrix, amount=0.0 (prune nothing)", _tie_free((8, 8), 5), 0.0),
        _mask_case("a 2x5 matrix, amount=1.0 (prune everything)", _tie_free((2, 5), 6), 1.0),
    ]


_EXACT = "Prune exactly k weights: mask[np.argsort(np.abs(w), axis=None)[:k]] = 0."
_ROUND = "k = round(amount * w.size) (Python's round, half to even, like torch)"
_MAGNITUDE_MISTAKES = [
    Mistake(_signed, "you pruned the smallest *signed* values, i.e. the most negative weights. "
            "A weight of -3 matters as much as +3: rank by |w| (np.abs)."),
    Mistake(_largest, "you pruned the *largest* magnitudes; magnitude pruning removes the smallest."),
    Mistake(_keeps_k, "your mask is inverted: it keeps the k smallest weights. The mask is 0 where "
            "a weight is pruned and 1 where it is kept."),
    Mistake(_pruned_weights, "you returned the pruned weights w * mask; return the mask itself "
            "(0 where pruned, 1 where kept)."),
    Mistake(_per_row_argsort, "np.argsort(np.abs(w)) on a 2-D w sorts each row separately, so the "
            "indices are column numbers; rank all weights together: np.argsort(np.abs(w), "
            "axis=None) (or np.abs(w).ravel())."),
    Mistake(_floor, f"your count is rounded down (int(amount * n)); torch rounds to nearest: {_ROUND}."),
    Mistake(_ceil, f"your count is rounded up (math.ceil); torch rounds to nearest: {_ROUND}."),
    Mistake(_half_up, "your count rounds halves up (int(x + 0.5)), so 2.5 became 3; Python's round "
            f"and torch round half to even (round(2.5) = 2): {_ROUND}."),
    Mistake(_kept_fraction, "you used amount as the fraction to *keep*; it is the fraction to "
            f"prune: {_ROUND}."),
    Mistake(_int_as_fraction, "you treated an int amount as a fraction (round(amount * n)); an int "
            "is the count itself: k = amount if isinstance(amount, int) else round(amount * n)."),
    Mistake(_by_value, "you told a count from a fraction by its value (amount <= 1 -> fraction), so "
            "amount=1 pruned everything; like torch, tell them by type: an int is a count (1 "
            "prunes one weight), a float a fraction (1.0 prunes all): "
            "k = amount if isinstance(amount, int) else round(amount * n)."),
    Mistake(_off_by_one, "you pruned one weight too many (an off-by-one, e.g. slicing [:k+1])."),
    Mistake(_threshold_le, "you pruned every |w| <= t with t = np.sort(|w|)[k - 1]: for k = 0, "
            "index k - 1 = -1 is the *largest* |w|, so everything was pruned, and all weights tied "
            f"with t go too, so more than k are pruned. {_EXACT}"),
    Mistake(_threshold_le_k0, "you pruned every |w| <= t (t the k-th smallest |w|): all weights "
            f"tied with t go too, so more than k are pruned when |w| values tie. {_EXACT}"),
    Mistake(_threshold_ge, "you kept every |w| >= t with t the k-th smallest |w|: that keeps the "
            "k-th weight itself (one pruned too few; for k = 0, t = the largest |w| and all but one "
            f"weight go). {_EXACT}"),
    Mistake(_threshold_next_ge, "you kept every |w| >= t with t the (k+1)-th smallest |w|: weights "
            f"tied with t below the cut are kept too, so fewer than k are pruned. {_EXACT}"),
]


@checker("1.1", "magnitude mask", lesson="01a_pruning")
def check_magnitude_mask(magnitude_mask):
    """``magnitude_mask(w, amount)``: 0 for the ``k`` smallest ``|w|``, 1 elsewhere; ``amount`` an
    int count or a float fraction rounded like torch (``round(amount * w.size)``). With tied
    ``|w|`` the count must be exact; any order among the tied weights is accepted."""
    return compare_cases(magnitude_mask, prune.magnitude, _magnitude_cases(), _MAGNITUDE_MISTAKES)


# ------------------------------------------------------------------------------- 1.2
def _ref_neuron_mask(W, amount):
    return prune.structured(W, amount, dim=0, n=2)


def _rows(W, score, k):
    """Zero the ``k`` rows of smallest ``score`` (one per row)."""
    keep = _prune_smallest(score, k)
    return np.repeat(keep[:, None], W.shape[1], axis=1)


def _l2(W):
    return np.linalg.norm(W.astype(np.float64), axis=1)


def _k_rows(amount, n, rounding=round):
    return rounding(amount * n) if isinstance(amount, float) else amount


def _wrong_axis(W, amount):
    return prune.structured(W, amount, dim=1, n=2)


def _signed_sum_rows(W, amount):
    return _rows(W, W.sum(axis=1), _count(amount, W.shape[0]))


def _l1_rows(W, amount):
    return _rows(W, np.abs(W).sum(axis=1), _count(amount, W.shape[0]))


def _linf_rows(W, amount):
    return _rows(W, np.abs(W).max(axis=1), _count(amount, W.shape[0]))


def _floor_rows(W, amount):
    return _rows(W, _l2(W), _k_rows(amount, W.shape[0], int))


def _ceil_rows(W, amount):
    return _rows(W, _l2(W), _k_rows(amount, W.shape[0], math.ceil))


def _half_up_rows(W, amount):
    return _rows(W, _l2(W), _k_rows(amount, W.shape[0], lambda x: int(x + 0.5)))


def _count_over_all(W, amount):
    return _rows(W, _l2(W), min(_k_rows(amount, W.size), W.shape[0]))    # 1.1's count, W.size


def _count_from_columns(W, amount):
    return _rows(W, _l2(W), min(_k_rows(amount, W.shape[1]), W.shape[0]))


def _kept_fraction_rows(W, amount):
    return _rows(W, _l2(W), _k_rows(1 - amount, W.shape[0]) if isinstance(amount, float) else amount)


def _int_as_fraction_rows(W, amount):
    return _rows(W, _l2(W), min(round(amount * W.shape[0]), W.shape[0]))


def _largest_rows(W, amount):
    return _rows(W, -_l2(W), _count(amount, W.shape[0]))


def _inverted_rows(W, amount):
    return 1 - _ref_neuron_mask(W, amount)


def _threshold_rows(W, amount):
    norms = _l2(W)
    t = np.sort(norms)[_count(amount, W.shape[0]) - 1]       # k = 0: the largest norm
    return np.repeat((norms > t)[:, None], W.shape[1], axis=1).astype(np.float32)


def _row_vector(W, amount):
    return _ref_neuron_mask(W, amount)[:, 0]


def _unstructured(W, amount):
    return prune.magnitude(W, amount if isinstance(amount, float) else amount * W.shape[1])


def _l1_l2_disagree():
    """Rows whose L1 and L2 orders differ: [3, 0, 0, 0] has L2 3 > 2 but L1 3 < 4 of [1, 1, 1, 1]."""
    return np.array([[3, 0, 0, 0], [1, 1, 1, 1], [4, 4, 0, 0], [2, 2, 2, 2]], np.float32)


def _three_norms_disagree():
    """Four rows of 16 where L1, L2 and L-infinity each pick a different smallest row:
    [2] * 16 (L1 32, L2 8, max 2), [1, -1] * 8 (L1 16, L2 4, max 1), four entries +-1.5
    (L1 6, L2 3, max 1.5) and one entry -3.5 (L1 3.5, L2 3.5, max 3.5)."""
    W = np.zeros((4, 16), np.float32)
    W[0] = 2.0
    W[1] = np.tile([1.0, -1.0], 8)
    W[2, [0, 5, 10, 15]] = [1.5, -1.5, 1.5, 1.5]
    W[3, 7] = -3.5
    return W


def _tied_rows():
    """Six rows: L2 norms 10, 5, 1, 5, 5, 13 (three tie at 5, made of different entries)."""
    return np.array([[6, 8, 0], [3, 4, 0], [0, 1, 0], [0, 0, -5], [-4, 0, 3], [5, 0, 12]],
                    np.float32)


def _neurons_case(rows, cols, seed):
    """Rows with distinct L2 norms whose signed sums rank differently."""
    g = np.random.default_rng(seed)
    W = g.normal(size=(rows, cols)).astype(np.float32)
    W *= (g.permutation(rows) + 1)[:, None].astype(np.float32) / rows
    return W


def _neuron_cases():
    tied = _tied_rows()
    return [
        Case("W of shape (6, 4), amount=0.5 (3 of 6 neurons)", (_neurons_case(6, 4, 0), 0.5)),
        Case("W of shape (5, 8), amount=0.3 (round(1.5) = 2 neurons)", (_neurons_case(5, 8, 1), 0.3)),
        Case("W of shape (10, 3), amount=0.75 (round(7.5) = 8 neurons)", (_neurons_case(10, 3, 2), 0.75)),
        Case("W of shape (7, 7), amount=2 (an int: 2 neurons)", (_neurons_case(7, 7, 3), 2)),
        Case("W of shape (4, 9), amount=0.0", (_neurons_case(4, 9, 4), 0.0)),
        Case("W of shape (8, 5), amount=0.6 (round(4.8) = 5 neurons)", (_neurons_case(8, 5, 5), 0.6)),
        Case("W of shape (5, 6), amount=0.5 (round(2.5) = 2 neurons: half to even)",
             (_neurons_case(5, 6, 6), 0.5)),
        Case("W of shape (7, 4), amount=0.3 (round(2.1) = 2 neurons)", (_neurons_case(7, 4, 7), 0.3)),
        Case("rows [3,0,0,0] and [1,1,1,1] (L2 norms 3 and 2, L1 norms 3 and 4), amount=1",
             (_l1_l2_disagree(), 1)),
        Case("rows of 16: [2]*16, [1,-1]*8, four entries +-1.5 and one entry -3.5 (the rest 0): "
             "L2 norms 8, 4, 3, 3.5, L1 norms 32, 16, 6, 3.5, max |w| 2, 1, 1.5, 3.5; amount=0.25 "
             "(1 of 4 neurons)",
             (_three_norms_disagree(), 0.25)),
        Case("rows with L2 norms 10, 5, 1, 5, 5, 13 (three tie at 5), amount=2 (the norm-1 row and "
             "exactly one of the tied rows)", (tied, 2),
             equal=_same_up_to_ties(np.repeat(_l2(tied)[:, None], tied.shape[1], axis=1), rows=True)),
    ]


_L2_ROWS = "np.linalg.norm(W, axis=1)"
_K_ROWS = "k = amount if isinstance(amount, int) else round(amount * W.shape[0])"
_NEURON_MISTAKES = [
    Mistake(_wrong_axis, "you pruned columns (inputs, axis 1). A neuron of a Linear layer is a *row* "
            f"of W (shape (out, in)): compute one norm per row, e.g. {_L2_ROWS}."),
    Mistake(_l1_rows, "you ranked rows by their L1 norm (sum of |w|); this exercise uses the L2 "
            f"norm, {_L2_ROWS}, like torch's ln_structured(n=2)."),
    Mistake(_linf_rows, "you ranked rows by their largest |w| (the L-infinity norm); this exercise "
            f"uses the L2 norm, {_L2_ROWS}: a row of many medium weights can matter more than one "
            "big weight."),
    Mistake(_signed_sum_rows, "you ranked rows by their signed sum; positive and negative weights "
            "cancel. Use the L2 norm of each row."),
    Mistake(_largest_rows, "you pruned the rows with the *largest* norm; prune the smallest."),
    Mistake(_inverted_rows, "your mask is inverted: 1 on the pruned rows. The mask is 0 where a "
            "neuron is pruned and 1 where it is kept."),
    Mistake(_row_vector, "you returned one value per row (shape (out,)); return a mask of W's shape "
            "(out, in), each row all 0 or all 1 (e.g. np.ones(W.shape), then mask[rows] = 0)."),
    Mistake(_floor_rows, f"your neuron count is rounded down (int); use {_K_ROWS}."),
    Mistake(_ceil_rows, f"your neuron count is rounded up (math.ceil); use {_K_ROWS}."),
    Mistake(_half_up_rows, "your neuron count rounds halves up (int(x + 0.5)), so 2.5 became 3; "
            f"round() rounds half to even (round(2.5) = 2): {_K_ROWS}."),
    Mistake(_count_over_all, "you computed the count from all weights (round(amount * W.size), as "
            f"in exercise 1.1), so too many rows went; count neurons, i.e. rows: {_K_ROWS}."),
    Mistake(_count_from_columns, "you computed the count from the number of columns (W.shape[1], the "
            f"inputs); neurons are rows: {_K_ROWS}."),
    Mistake(_kept_fraction_rows, "you used amount as the fraction of neurons to *keep*; it is the "
            f"fraction to prune: {_K_ROWS}."),
    Mistake(_int_as_fraction_rows, "you treated an int amount as a fraction; an int is the number of "
            f"rows itself: {_K_ROWS}."),
    Mistake(_threshold_rows, "you pruned every row with norm <= t (t the k-th smallest norm): rows "
            "tied with t all go, so more than k are pruned, and for k = 0 np.sort(norms)[k - 1] is "
            "the *largest* norm. Prune exactly the k rows np.argsort(norms)[:k]."),
    Mistake(_unstructured, "that is an unstructured mask (single weights); zero *whole rows*."),
]


@checker("1.2", "neuron (row) mask", lesson="01a_pruning")
def check_neuron_mask(neuron_mask):
    """``neuron_mask(W, amount)`` for a Linear weight ``W`` of shape (out, in): zero the
    ``k = round(amount * out)`` whole rows (neurons) with the smallest L2 norm. With tied norms
    the count must be exact; any order among the tied rows is accepted."""
    return compare_cases(neuron_mask, _ref_neuron_mask, _neuron_cases(), _NEURON_MISTAKES)


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


def _deleted_keep(W1, b1, W2, keep):
    return np.delete(W1, keep, axis=0), np.delete(b1, keep), np.delete(W2, keep, axis=1)


def _next_transposed(W1, b1, W2, keep):
    return W1[keep], b1[keep], W2.T[keep]


def _zeroed(W1, b1, W2, keep):
    alive = np.zeros(W1.shape[0], np.float32)
    alive[keep] = 1
    return W1 * alive[:, None], b1 * alive, W2 * alive[None, :]


def _neurons(triple):
    """One row per hidden neuron: its incoming weights, its bias, its outgoing weights."""
    W1, b1, W2 = (np.asarray(a, np.float64) for a in triple)
    if W1.ndim != 2 or b1.shape != W1.shape[:1] or W2.ndim != 2 or W2.shape[1] != W1.shape[0]:
        return None
    rows = np.concatenate([W1, b1[:, None], W2.T], axis=1)
    return rows[np.lexsort(rows.T[::-1])] if rows.size else rows


def _equal_triple(got, want):
    """The same arrays, or the same neurons in another order (the same order in all three)."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise Feedback(f"return a tuple of three arrays (W1_small, b1_small, W2_small), got "
                       f"{type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    if all(same(a, b) for a, b in zip(got, want)):
        return True
    try:
        if any(np.shape(a) != np.shape(b) for a, b in zip(got, want)):
            return False
        mine, theirs = _neurons(got), _neurons(want)
    except (TypeError, ValueError):
        return False
    return mine is not None and theirs is not None and same(mine, theirs)


def _shrink_case(n_in, hidden, n_out, seed, keep=None):
    g = np.random.default_rng(seed)
    W1 = g.normal(size=(hidden, n_in)).astype(np.float32)
    b1 = g.normal(size=hidden).astype(np.float32)
    W2 = g.normal(size=(n_out, hidden)).astype(np.float32)
    if keep is None:
        keep = np.sort(g.choice(hidden, size=hidden // 2, replace=False))
    return W1, b1, W2, np.asarray(keep)


def _remove_cases():
    cases = [Case(f"{n_in} inputs, {hidden} hidden, {n_out} outputs", _shrink_case(n_in, hidden, n_out, s))
             for s, (n_in, hidden, n_out) in enumerate([(8, 6, 6), (10, 8, 9), (12, 10, 10)])]
    cases += [
        Case("9 inputs, 7 hidden, 5 outputs, keep = [5, 0, 3] (not sorted; any order of the kept "
             "neurons is fine if it is the same in all three arrays)", _shrink_case(9, 7, 5, 3, [5, 0, 3])),
        Case("6 inputs, 6 hidden, 4 outputs, keep = [4] (a single neuron)", _shrink_case(6, 6, 4, 4, [4])),
    ]
    return cases


_REMOVE_MISTAKES = [
    Mistake(_forgot_next, "you removed the neurons from W1 and b1 but forgot the next layer: its "
            "*input columns* for the removed neurons must go too (W2[:, keep]), or the shapes no "
            "longer match."),
    Mistake(_next_rows, "in the next layer the removed neurons are *inputs*, i.e. columns: use "
            "W2[:, keep], not W2[keep] (rows are W2's own output neurons)."),
    Mistake(_next_transposed, "W2.T[keep] has shape (len(keep), outputs): the kept columns, but "
            "transposed. Keep W2's layout (outputs, hidden): W2[:, keep]."),
    Mistake(_cols_first, "in W1 (shape (hidden, in)) a hidden neuron is a row: use W1[keep], not "
            "W1[:, keep]."),
    Mistake(_forgot_bias, "you kept all the biases; each removed neuron's bias must go too (b1[keep])."),
    Mistake(_deleted_keep, "you deleted the neurons listed in `keep`; `keep` lists the neurons to "
            "*keep*: W1[keep], b1[keep], W2[:, keep]."),
    Mistake(_zeroed, "you zeroed the removed neurons but kept their rows and columns: that is a mask, "
            "the matrices (and the work) stay as big. Remove them: W1[keep], b1[keep], W2[:, keep]."),
]


def _sorted_rows(a):
    return a[np.lexsort(a.T[::-1])] if a.size else a


def _explain_remove(got, want, case):
    """No classic mistake matched: say which of the three arrays is off, and how."""
    names = ("W1_small", "b1_small", "W2_small")
    where = f"(seen on {case.description})"
    wrong_shape = [f"{n} has shape {np.shape(a)}, expected {np.shape(b)}"
                   for n, a, b in zip(names, got, want) if np.shape(a) != np.shape(b)]
    if wrong_shape:
        return "; ".join(wrong_shape) + f" {where}."
    try:
        # one row per neuron: W1's rows, b1's entries, W2's columns
        per_neuron = [lambda a: np.asarray(a, np.float64), lambda a: np.asarray(a, np.float64)[:, None],
                      lambda a: np.asarray(a, np.float64).T]
        right = [same(_sorted_rows(f(a)), _sorted_rows(f(b))) for f, a, b in zip(per_neuron, got, want)]
    except (TypeError, ValueError):
        return None
    if all(right):
        return ("each array holds the kept neurons, but not in the same order: W1_small[i], "
                "b1_small[i] and W2_small[:, i] must belong to the same neuron (use the same index "
                f"array, keep, for all three) {where}.")
    return (", ".join(n for n, ok in zip(names, right) if not ok) + " holds wrong values: keep "
            f"exactly the neurons in keep (W1's rows, b1's entries, W2's columns) {where}.")


def _describe_triple(t):
    if isinstance(t, (tuple, list)):
        return "arrays with shapes " + ", ".join(str(np.shape(a)) for a in t)
    return repr(t)


@checker("1.3", "remove neurons", lesson="01a_pruning")
def check_remove_neurons(remove_neurons):
    """``remove_neurons(W1, b1, W2, keep)`` -> ``(W1_small, b1_small, W2_small)``: keep only the
    hidden neurons ``keep`` of ``x -> relu(x @ W1.T + b1) -> @ W2.T`` (in any order, the same in
    all three arrays)."""
    return compare_cases(remove_neurons, _ref_remove, _remove_cases(), _REMOVE_MISTAKES,
                         equal=_equal_triple, describe=_describe_triple, explain=_explain_remove)


# ------------------------------------------------------------------------------- 1.4
def _ref_masked_sgd(W, b, mask, grads, lr):
    """The library's way: install the mask (``prune.apply_masks``: ``W <- W * mask``), then plain
    SGD steps of :class:`nn.SGD`, which multiplies every masked parameter by its mask after each
    update."""
    layer = nn.Linear(W.shape[1], W.shape[0])
    layer.weight, layer.bias = W.astype(np.float32), b.astype(np.float32)
    model = prune.apply_masks(nn.Sequential(layer), {"0.weight": mask})
    opt = nn.SGD(model, lr=lr, momentum=0.0)
    for gW, gb in grads:
        layer.grads = {"weight": np.asarray(gW, np.float32), "bias": np.asarray(gb, np.float32)}
        opt.step()
    return layer.weight, layer.bias


def _sgd_variant(mask_start=True, mask_after=True, mask_before=False, mask_grad=False, sign=-1.0,
                 invert=False, bias="sgd", reprune=False):
    """A learner's masked SGD with one classic mistake (the defaults give the reference)."""

    def answer(W, b, mask, grads, lr):
        m = 1 - mask if invert else mask
        W, b = W.astype(np.float32), b.astype(np.float32)
        if mask_start:
            W = W * m
        k = int(np.sum(mask == 0))
        for gW, gb in grads:
            if mask_before:
                W = W * m                              # masked before the update
            W = W + sign * lr * (gW * m if mask_grad else gW)
            if reprune:
                m = prune.magnitude(W, k)              # a new mask chosen from the new weights
            if mask_after:
                W = W * m
            if bias == "sgd":
                b = b + sign * lr * gb
            elif bias == "masked":
                b = (b + sign * lr * gb) * m.any(axis=1)
        return W, b

    return answer


def _sgd_case(description, shape, seed, mask, steps, lr=0.1):
    g = np.random.default_rng(seed)
    W = g.normal(size=shape).astype(np.float32)           # nonzero under the mask too
    b = g.normal(size=shape[0]).astype(np.float32)
    grads = [(g.normal(size=shape).astype(np.float32), g.normal(size=shape[0]).astype(np.float32))
             for _ in range(steps)]
    return Case(description, (W, b, np.asarray(mask, np.float32), grads, lr))


def _sgd_cases():
    g = np.random.default_rng(41)
    rows = np.ones((4, 6), np.float32)
    rows[[1, 3]] = 0                                      # two whole neurons pruned
    return [
        _sgd_case("W of shape (3, 4), a fresh 50% magnitude mask, 1 step",
                  (3, 4), 0, prune.magnitude(_tie_free((3, 4), 20), 0.5), 1),
        _sgd_case("W of shape (5, 3), a random 40% mask, 3 steps",
                  (5, 3), 1, (g.uniform(size=(5, 3)) > 0.4).astype(np.float32), 3),
        _sgd_case("W of shape (4, 6) with rows 1 and 3 pruned (whole neurons), 2 steps, lr=0.05",
                  (4, 6), 2, rows, 2, lr=0.05),
        _sgd_case("W of shape (2, 5), a mask of all ones (nothing pruned), 2 steps",
                  (2, 5), 3, np.ones((2, 5)), 2),
        _sgd_case("W of shape (3, 3), a mask of all zeros (everything pruned), 1 step",
                  (3, 3), 4, np.zeros((3, 3)), 1),
        _sgd_case("W of shape (6, 4), a 75% mask, 4 steps, lr=0.2",
                  (6, 4), 5, (g.uniform(size=(6, 4)) > 0.75).astype(np.float32), 4, lr=0.2),
        _sgd_case("W of shape (3, 5), a 50% mask, no steps at all (the mask alone)",
                  (3, 5), 6, prune.magnitude(_tie_free((3, 5), 21), 0.5), 0),
    ]


def _equal_pair(got, want):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Feedback("return a pair (W_new, b_new): the weights and the bias after the steps, "
                       f"got {type(got).__name__}" + (f" of length {len(got)}." if
                                                      isinstance(got, (tuple, list)) else "."))
    return same(got[0], want[0]) and same(got[1], want[1])


def _describe_pair(x):
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return f"(W of shape {np.shape(x[0])}, b of shape {np.shape(x[1])})"
    return repr(x)


def _explain_sgd(got, want, case):
    W, _, mask = case.args[:3]
    gW, gb = (np.asarray(a) for a in got)
    if gW.shape != W.shape or gb.shape != (W.shape[0],):
        return (f"your W has shape {gW.shape} and b {gb.shape}; both keep the layer's shapes, "
                f"W {W.shape} and b {(W.shape[0],)} (seen on {case.description}).")
    pruned = mask == 0
    if pruned.any() and not np.all(gW[pruned] == 0):
        return ("some pruned weights are not zero in your W: after the last step every weight "
                f"where the mask is 0 must be exactly 0 (seen on {case.description}).")
    if not same(gW, want[0]):
        return f"your kept weights differ from plain SGD's W - lr * gW (seen on {case.description})."
    return f"your bias differs from plain SGD's b - lr * gb (seen on {case.description})."


_SGD_RULE = ("take the SGD step W - lr * gW, then multiply by the mask again, after every step "
             "(what the optimizers of compresslab.nn do with layer.masks)")
_SGD_MISTAKES = [
    Mistake(_sgd_variant(mask_start=False),
            "the pruned weights must be zero also when W arrives nonzero and grads is empty (no "
            "steps at all): you apply the mask only after each step, so with no steps W comes back "
            "unmasked. Mask once before the loop (W = W * mask), then after every step."),
    Mistake(_sgd_variant(mask_start=False, mask_after=False),
            "you never applied the mask: the pruned weights are back (and were never zeroed). "
            f"Zero them, and keep them zero: {_SGD_RULE}."),
    Mistake(_sgd_variant(mask_start=False, mask_after=False, mask_grad=True),
            "you masked the gradient only: the pruned weights stop moving, but they started "
            "nonzero (the mask was just chosen on a trained W), so they stay nonzero. Zero the "
            f"weights themselves: {_SGD_RULE}."),
    Mistake(_sgd_variant(mask_after=False, mask_before=True),
            "you applied the mask before each update only: the update itself (- lr * gW) makes the "
            f"pruned weights nonzero again. Apply it after the update: {_SGD_RULE}."),
    Mistake(_sgd_variant(invert=True),
            "your mask is inverted: you zeroed the kept weights and trained the pruned ones. The "
            "mask is 1 where a weight is kept and 0 where it is pruned: multiply by mask, not "
            "1 - mask."),
    Mistake(_sgd_variant(sign=1.0),
            "your weights move *up* the gradient (W + lr * gW): gradient descent subtracts, "
            "W - lr * gW, and the same for the bias."),
    Mistake(_sgd_variant(bias="masked"),
            "you zeroed the bias of the neurons whose weights are all pruned: the mask is for W "
            "only. Biases are not pruned: they take the plain step b - lr * gb."),
    Mistake(_sgd_variant(bias="frozen"),
            "your bias did not move: only W is masked, the bias is trained as usual, "
            "b - lr * gb."),
    Mistake(_sgd_variant(reprune=True),
            "you chose a new mask from the updated weights (re-pruning by magnitude at each step): "
            "the mask is given and stays fixed during fine-tuning; only the AGP schedule of "
            "lesson 01b re-prunes, on its own steps. Multiply by the mask you were given."),
]


@checker("1.4", "masked SGD: pruned weights stay zero", lesson="01a_pruning")
def check_masked_sgd(masked_sgd):
    """``masked_sgd(W, b, mask, grads, lr)`` -> ``(W_new, b_new)``: plain SGD steps
    ``W - lr * gW``, ``b - lr * gb`` for each ``(gW, gb)`` in ``grads``, with every weight where
    ``mask`` is 0 exactly zero in the result (also when ``W`` arrives nonzero there) and the
    kept weights and the bias moving as plain SGD moves them; compared with ``prune.apply_masks``
    and :class:`nn.SGD` (momentum 0). The inputs must be left unchanged."""
    cases = _sgd_cases()
    compare_cases(masked_sgd, _ref_masked_sgd, cases, _SGD_MISTAKES, equal=_equal_pair,
                  describe=_describe_pair, explain=_explain_sgd)
    W, b, mask, grads, lr = _sgd_cases()[1].args           # fresh: untouched by the runs above
    args = (W.copy(), b.copy(), mask.copy(), [(gW.copy(), gb.copy()) for gW, gb in grads], lr)
    masked_sgd(*args)
    if not (np.array_equal(args[0], W) and np.array_equal(args[1], b)
            and np.array_equal(args[2], mask)):
        raise Feedback("your function changed its inputs in place (W -= ..., W *= mask, "
                       "mask[...] = ...): the caller keeps using W and the mask (the same mask "
                       "for the next epoch), so work on copies and return new arrays.")
    if any(not (np.array_equal(a, ga) and np.array_equal(c, gc))
           for (a, c), (ga, gc) in zip(args[3], grads)):
        raise Feedback("your function changed the gradients in grads in place; leave its inputs "
                       "unchanged and return new arrays.")
    return f"pruned weights stay exactly zero, kept ones move as SGD: all {len(cases)} cases agree."


# ------------------------------------------------------------------------------- 1.5
def _kept(sizes, choice):
    return sum(n - prune.count_to_prune(float(choice[name]), n) for name, n in sizes.items())


def _drop(scan, choice):
    total = 0.0
    for i, name in enumerate(scan.layers):
        j = int(np.argmin(np.abs(scan.sparsities - choice[name])))
        total += scan.baseline - scan.accuracy[i, j]
    return total


def _combos(scan):
    return np.array(list(itertools.product(range(len(scan.sparsities)), repeat=len(scan.layers))))


def _kept_table(scan, sizes, pruned=round):
    """``table[i, j]``: weights layer ``i`` keeps at ``scan.sparsities[j]`` (its size looked up by
    name); ``pruned(s * n)`` is the pruned count."""
    return np.array([[sizes[name] - pruned(float(s) * sizes[name]) for s in scan.sparsities]
                     for name in scan.layers], np.float64)


def _search(scan, sizes, budget, table=None, fits=np.less_equal):
    """Exhaustive search over the scanned grid: the least total drop among the combinations whose
    kept count (from ``table``) ``fits`` the budget; the first such combination in
    ``itertools.product`` order. ``None`` when nothing fits."""
    idx = _combos(scan)
    rows = np.arange(len(scan.layers))
    table = _kept_table(scan, sizes) if table is None else table
    kept = table[rows, idx].sum(axis=1)
    drop = (scan.baseline - np.asarray(scan.accuracy, np.float64))[rows, idx].sum(axis=1)
    ok = np.flatnonzero(fits(kept, budget))
    if not ok.size:
        return None
    best = ok[np.argmax(drop[ok] <= drop[ok].min() + 1e-12)]
    return {name: float(scan.sparsities[j]) for name, j in zip(scan.layers, idx[best])}


def _best_choice(scan, sizes, budget):
    """The reference: least total accuracy drop within the budget."""
    best = _search(scan, sizes, budget)
    return best, _drop(scan, best)


def _ref_choose(scan, sizes, budget):
    return _best_choice(scan, sizes, budget)[0]


def _strict_budget(scan, sizes, budget):
    return _search(scan, sizes, budget, fits=np.less)


def _unrounded_kept(scan, sizes, budget):
    return _search(scan, sizes, budget, _kept_table(scan, sizes, pruned=lambda x: x))


def _floor_pruned(scan, sizes, budget):
    return _search(scan, sizes, budget, _kept_table(scan, sizes, pruned=int))


def _ceil_pruned(scan, sizes, budget):
    return _search(scan, sizes, budget, _kept_table(scan, sizes, pruned=math.ceil))


def _positional_sizes(scan, sizes, budget):
    return _search(scan, dict(zip(scan.layers, sizes.values())), budget)


def _uniform(scan, sizes, budget):
    for s in sorted(scan.sparsities):
        choice = {name: float(s) for name in scan.layers}
        if _kept(sizes, choice) <= budget:
            return choice
    return None


def _unweighted(scan, sizes, budget):
    """Budget checked on the mean kept fraction times the total size, not per layer."""
    total = sum(sizes.values())
    idx, rows = _combos(scan), np.arange(len(scan.layers))
    mean_kept = (1 - np.asarray(scan.sparsities, np.float64))[idx].mean(axis=1)
    drop = (scan.baseline - np.asarray(scan.accuracy, np.float64))[rows, idx].sum(axis=1)
    ok = np.flatnonzero(mean_kept * total <= budget)
    best = ok[np.argmax(drop[ok] <= drop[ok].min() + 1e-12)]
    return {name: float(scan.sparsities[j]) for name, j in zip(scan.layers, idx[best])}


def _budget_scan(seed):
    g = np.random.default_rng(seed)
    layers = ["0.weight", "2.weight", "4.weight"]
    sizes = dict(zip(layers, (int(g.integers(2000, 20000)), int(g.integers(10000, 30000)),
                              int(g.integers(500, 2000)))))
    sp = np.array([0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
    base = 0.97
    # drops grow with sparsity, at a different pace per layer
    pace = g.uniform(0.5, 4.0, len(layers))
    acc = np.array([base - 0.3 * sp ** (1 + 6 / p) for p in pace * 2])
    return prune.SensitivityResult(layers, sp, np.round(acc, 4), base), sizes


def _choice_equal(scan, sizes, budget):
    """``equal`` for one case of 1.4: ``got`` must be a dict of scanned sparsities; it agrees with a
    choice that is the same dict, or has the same total drop and is also within budget (several
    choices can be equally good), or the same drop and the same kept count."""

    def as_choice(d):
        return {k: float(v) for k, v in d.items()}

    def equal(got, want):
        choice = _validated(got, scan, budget, sizes)
        other = as_choice(want)
        if set(other) == set(choice) and all(abs(choice[k] - other[k]) < 1e-9 for k in choice):
            return True
        if not all(np.min(np.abs(scan.sparsities - v)) <= 1e-6 for v in other.values()):
            return False
        same_drop = abs(_drop(scan, choice) - _drop(scan, other)) < 1e-9
        kept, other_kept = _kept(sizes, choice), _kept(sizes, other)
        return same_drop and (kept == other_kept or (kept <= budget and other_kept <= budget))

    return equal


def _where(sizes, budget):
    return f"the case with sizes {sizes} and a budget of {budget} kept weights"


def _validated(got, scan, budget, sizes):
    where = _where(sizes, budget)
    if not isinstance(got, dict) or set(got) != set(scan.layers):
        raise Feedback(f"return a dict with one sparsity per layer, keys {scan.layers}; got "
                       f"{got!r:.120} (seen on {where})")
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
    return {k: float(scan.sparsities[np.argmin(np.abs(scan.sparsities - v))]) for k, v in choice.items()}


def _explain_choice(got, want, case):
    """The message when no classic mistake matches: over budget, or within it but not the best."""
    scan, sizes, budget = case.args
    choice = _validated(got, scan, budget, sizes)
    kept, where = _kept(sizes, choice), case.description
    if kept > budget:
        flipped = {k: 1 - v for k, v in choice.items()}
        if _kept(sizes, flipped) <= budget:
            return (f"your choice keeps {kept} weights, over the budget of {budget}. It would fit "
                    "if the values meant 'fraction kept': return the fraction *pruned* (sparsity) "
                    f"instead (seen on {where}).")
        mean_kept = sum(1 - v for v in choice.values()) / len(choice)
        if mean_kept * sum(sizes.values()) <= budget:
            return (f"your choice keeps {kept} weights, over the budget of {budget}: the *average* "
                    "sparsity is high enough, but layers have different sizes. Weight each layer by "
                    f"its number of weights: kept = sum(size - round(s * size)) (seen on {where}).")
        return f"your choice keeps {kept} weights, over the budget of {budget} (seen on {where})."
    best, best_drop = _best_choice(scan, sizes, budget)
    drop = _drop(scan, choice)
    uniform = len(set(choice.values())) == 1
    hint = (" You used the same sparsity for every layer; layers differ in sensitivity and size, so "
            "prune the robust, large layers harder." if uniform else
            " Search all combinations of the scanned sparsities (itertools.product) and keep the "
            "best one within the budget; a greedy choice can miss it.")
    return (f"within budget, but the total accuracy drop is {100 * drop:.2f} points while "
            f"{100 * best_drop:.2f} is possible, e.g. {best} (seen on {where})." + hint)


# (seed, budget, what the case tests): budgets near the edge of what the best choice keeps, where
# kept < budget, (1 - s) * n, int(s * n) and ceil(s * n) each choose differently from the
# reference (tests/test_prune_widget_exercises.py checks which variant each case catches)
_EDGE_BUDGETS = [
    (33, 7623, "the best choice keeps exactly the budget: kept = budget is allowed"),
    (31, 8207, "s * n is not a whole number: a layer keeps n - round(s * n)"),
    (37, 5858, "kept counts are whole numbers: n - round(s * n), not (1 - s) * n"),
    (25, 5533, "a choice counted with ceil(s * n) pruned goes over the budget"),
]


def _budget_cases():
    cases = []
    for seed, frac in ((0, 0.2), (1, 0.1), (2, 0.35), (3, 0.15)):
        scan, sizes = _budget_scan(seed)
        cases.append((scan, sizes, int(frac * sum(sizes.values())), ""))
    for seed, budget, note in _EDGE_BUDGETS:
        scan, sizes = _budget_scan(seed)
        cases.append((scan, sizes, budget, f" ({note})"))
    scan, sizes = _budget_scan(5)
    cases.append((scan, dict(reversed(list(sizes.items()))), int(0.2 * sum(sizes.values())),
                  " (sizes listed in another order than scan.layers)"))
    return [Case(_where(sizes, budget) + note, (scan, sizes, budget), equal=_choice_equal(scan, sizes, budget))
            for scan, sizes, budget, note in cases]


_ROUND_KEPT = "kept = sum(n - round(s * n))"
_BUDGET_MISTAKES = [
    Mistake(_strict_budget, "you required kept < budget; the budget is the most weights that may be "
            "kept, so a choice that keeps exactly `budget` weights is allowed: kept <= budget."),
    Mistake(_unrounded_kept, "you counted the kept weights as (1 - s) * n without rounding; a layer "
            f"keeps a whole number of weights, n - round(s * n) (torch's count): {_ROUND_KEPT}."),
    Mistake(_floor_pruned, "you rounded the pruned count down (int(s * n)), so layers seemed to keep "
            f"more than they do; torch rounds to nearest: {_ROUND_KEPT}."),
    Mistake(_ceil_pruned, "you rounded the pruned count up (math.ceil(s * n)), so your choice keeps "
            f"more weights than you counted; torch rounds to nearest: {_ROUND_KEPT}."),
    Mistake(_positional_sizes, "you matched sizes to layers by position (zip(scan.layers, "
            "sizes.values())); sizes is a dict whose order need not follow scan.layers: look each "
            "layer up by name, sizes[name]."),
    Mistake(_unweighted, "your choice is over the budget: the *average* sparsity is high enough, "
            "but layers have different sizes. Weight each layer by its number of weights: "
            f"{_ROUND_KEPT}."),
    Mistake(_uniform, "your choice gives every layer the same sparsity; layers differ in sensitivity "
            "and size, so prune the robust, large layers harder: search all combinations of "
            "scan.sparsities (itertools.product) and keep the best one within the budget."),
]


@checker("1.5", "per-layer sparsities for a size budget", lesson="01b_pruning_schedules")
def check_choose_sparsities(choose_sparsities):
    """``choose_sparsities(scan, sizes, budget)`` -> ``{layer: sparsity}`` with sparsities taken
    from ``scan.sparsities``, at most ``budget`` weights kept in total
    (``sum(size - round(s * size))``), and the smallest total accuracy drop
    ``sum(scan.baseline - accuracy of that layer at its sparsity)``."""
    cases = _budget_cases()
    compare_cases(choose_sparsities, _ref_choose, cases, _BUDGET_MISTAKES, explain=_explain_choice)
    return f"within budget and the least total accuracy drop on all {len(cases)} cases."


# ------------------------------------------------------------------------------- 1.6
def _last_update(step, begin_step, frequency):
    """The last mask update at or before ``step``, counted from ``begin_step``."""
    return begin_step + (step - begin_step) // frequency * frequency


def _ref_agp(step, initial_sparsity, final_sparsity, begin_step, end_step, frequency):
    """The sparsity the mask has at ``step``: :func:`prune.polynomial_decay` at the last update."""
    if begin_step <= step < end_step:
        step = _last_update(step, begin_step, frequency)
    return prune.polynomial_decay(step, initial_sparsity, final_sparsity, begin_step, end_step,
                                  frequency=frequency).sparsity


def _agp_variant(power=3, t_over_n=False, swapped=False, rounding="begin", clamp_begin=True,
                 clamp_end=True, drop_initial=False, after_end="final",
                 before_begin="initial", begin_inclusive=False):
    """A learner's AGP with one classic mistake (the defaults give the reference). Rules 1 and 2
    of the statement return ``initial`` / ``final`` directly, as a learner writes them; a
    mistake in the formula therefore shows only on the ramp, where the formula runs."""

    def answer(step, initial, final, begin_step, end_step, frequency):
        if swapped:
            initial, final = final, initial
        if clamp_begin and (step <= begin_step if begin_inclusive else step < begin_step):
            return initial if before_begin == "initial" else final
        if clamp_end and step >= end_step:
            return final if after_end == "final" or step == end_step else initial
        t = {"begin": _last_update(step, begin_step, frequency),
             "zero": step // frequency * frequency, "none": step}[rounding]
        p = (t - begin_step) / (end_step - begin_step)
        start = 0.0 if drop_initial else initial
        return final + (start - final) * (p if t_over_n else 1.0 - p) ** power

    return answer


def _agp_cases():
    rows = [
        (30, 0.0, 0.8, 0, 100, 10, "30% of the way"),
        (47, 0.0, 0.8, 0, 100, 10, "between two updates: the mask still has step 40's sparsity"),
        (60, 0.5, 0.9, 0, 80, 20, "a nonzero initial_sparsity"),
        (58, 0.1, 0.9, 15, 115, 20, "updates at 15, 35, 55, ...: counted from begin_step, not from 0"),
        (150, 0.1, 0.8, 0, 100, 10, "after end_step: final_sparsity"),
        (5, 0.2, 0.9, 20, 120, 10, "before begin_step: initial_sparsity"),
        (20, 0.3, 0.9, 20, 120, 10, "step = begin_step: initial_sparsity"),
        (100, 0.0, 0.75, 0, 100, 10, "step = end_step: final_sparsity"),
        (40, 0.0, 0.9, 40, 40, 5, "begin_step = end_step: final_sparsity at once"),
        (123, 0.0, 0.6, 0, 200, 1, "frequency = 1: every step is an update"),
    ]
    return [Case(f"agp_sparsity{args[:6]} ({args[6]})", args[:6]) for args in rows]


_AGP_FORMULA = "s_f + (s_i - s_f) * (1 - (t - begin_step) / (end_step - begin_step)) ** 3"
_AGP_MISTAKES = [
    Mistake(_agp_variant(power=1), "your sparsity rises linearly (exponent 1); AGP uses the cube, "
            f"so it rises fast at first and slowly at the end: {_AGP_FORMULA}."),
    Mistake(_agp_variant(power=2), "you used the exponent 2; AGP (Zhu & Gupta) uses the cube, "
            f"power 3: {_AGP_FORMULA}."),
    Mistake(_agp_variant(t_over_n=True), "you cubed the progress (t - t0) / (n dt) itself; AGP cubes "
            f"what is *left* of the ramp, 1 - (t - t0) / (n dt): {_AGP_FORMULA}."),
    Mistake(_agp_variant(swapped=True), "initial_sparsity and final_sparsity are swapped: the "
            "schedule starts at initial_sparsity (at begin_step) and ends at final_sparsity: "
            f"{_AGP_FORMULA}."),
    Mistake(_agp_variant(rounding="none"), "you did not round the step down to the last mask "
            "update: between two updates the mask keeps its sparsity, so use t = begin_step + "
            "(step - begin_step) // frequency * frequency."),
    Mistake(_agp_variant(rounding="zero"), "you rounded the step down to a multiple of frequency "
            "counted from 0 (step // frequency * frequency); updates are counted from begin_step: "
            "t = begin_step + (step - begin_step) // frequency * frequency."),
    Mistake(_agp_variant(clamp_end=False), "no clamping after end_step: past the end the fraction "
            "(t - t0) / (n dt) exceeds 1 and the sparsity overshoots. For step >= end_step return "
            "final_sparsity."),
    Mistake(_agp_variant(clamp_begin=False), "no clamping before begin_step: there the fraction "
            "(t - t0) / (n dt) is negative and the sparsity falls below initial_sparsity. For step "
            "< begin_step return initial_sparsity."),
    Mistake(_agp_variant(after_end="initial"), "after end_step you returned initial_sparsity, as "
            "if pruning stopped there; the ramp is over but the mask stays at final_sparsity for "
            "every step >= end_step (rule 2)."),
    Mistake(_agp_variant(before_begin="final"), "before begin_step you returned final_sparsity; "
            "pruning has not started yet, so the mask still has initial_sparsity (rule 1)."),
    Mistake(_agp_variant(begin_inclusive=True), "with begin_step == end_step there is no ramp: "
            "rule 2 (step >= end_step) applies at once and gives final_sparsity; you returned "
            "initial_sparsity, because your rule 1 tests step <= begin_step. Rule 1 is step < "
            "begin_step (or check rule 2 first)."),
    Mistake(_agp_variant(drop_initial=True), "your ramp starts from 0, not from initial_sparsity: "
            "you left s_i out of the formula (or set it to 0). At begin_step the mask has s_i, and "
            f"the ramp goes from there to s_f: {_AGP_FORMULA}."),
]


def _explain_agp(got, want, case):
    """A wrong number that no classic mistake explains, on a case where the rules (not the
    formula) decide: say which rule gives the answer there."""
    step, s_i, s_f, begin_step, end_step, _ = case.args
    you = f"you returned {float(got):.6g}"
    if begin_step == end_step and step >= end_step:
        return (f"with begin_step = end_step there is no ramp: rule 2 (step >= end_step) applies "
                f"at once and gives final_sparsity = {s_f}; {you}. Check rule 2 before the formula, "
                f"whose n dt = end_step - begin_step is 0 there (seen on {case.description}).")
    if step > end_step:
        return (f"after end_step the ramp is over: the mask keeps final_sparsity = {s_f} for every "
                f"step >= end_step (rule 2), not only at end_step; {you} (seen on {case.description}).")
    if step == end_step:
        return (f"at step = end_step the ramp is over: rule 2 (step >= end_step, with >=) gives "
                f"final_sparsity = {s_f}; {you} (seen on {case.description}).")
    if step < begin_step:
        return (f"before begin_step pruning has not started: rule 1 gives initial_sparsity = {s_i}; "
                f"{you} (seen on {case.description}).")
    return None


@checker("1.6", "the AGP sparsity schedule", lesson="01b_pruning_schedules")
def check_agp_sparsity(agp_sparsity):
    """``agp_sparsity(step, initial_sparsity, final_sparsity, begin_step, end_step, frequency)``:
    ``initial_sparsity`` before ``begin_step``, ``final_sparsity`` from ``end_step`` on, and in
    between Zhu & Gupta's cubic ramp evaluated at the last mask update
    ``begin_step + (step - begin_step) // frequency * frequency``; compared with
    :func:`prune.polynomial_decay` at that step, to 1e-7."""
    return compare_cases(agp_sparsity, _ref_agp, _agp_cases(), _AGP_MISTAKES,
                         equal=same_number("the sparsity at that step, a float", tol=1e-7),
                         explain=_explain_agp)


# ------------------------------------------------------------------ self-check quiz
check_quiz_a = quiz("1a.quiz", "01a_pruning", [
    Question(
        "Section 1 pruned half of layer 0 by the *signed* value (the 50% most negative weights) "
        "and lost far more accuracy than pruning the 50% smallest |w|. Why?",
        "a",
        options={
            "a": "It removes the strongly negative weights, which contribute as much to a neuron "
                 "as equally large positive ones.",
            "b": "Negative weights matter more than positive ones, so they should always be kept.",
            "c": "It prunes more weights than magnitude pruning does at the same amount.",
            "d": "It breaks ties at the threshold in a different order.",
        },
        why={
            "b": "the sign does not make a weight important: -0.3 contributes exactly as much to "
                 "w * x as +0.3. Neither sign is special.",
            "c": "both masks prune exactly half of the weights of the layer; only which ones "
                 "differs.",
            "d": "trained float weights almost never tie, and a tie would move one weight at "
                 "most; the gap the lesson measured is tens of points.",
        }),
    Question(
        "How many weights does `prune.magnitude(w, 0.25)` prune when `w` has 10 entries?",
        2,
        why={"number": "k = round(amount * n), with Python's round as torch uses it: look up how "
                       "it rounds a value that ends in exactly .5 (neither always up nor always "
                       "down)."}),
    Question(
        "Section 4 zeroed half of the hidden neurons of the 64-1024-1024-10 MLP with a mask, "
        "keeping the matrix shapes. How many multiply-adds does that masked model do per batch "
        "of 64, compared with the dense model's 71,958,528?",
        "b",
        options={
            "a": "About half as many: half of the neurons are gone.",
            "b": "Exactly as many: a dense matrix product multiplies the zeros too.",
            "c": "About a quarter as many: both hidden layers are halved, so the middle matrix "
                 "is a quarter of its size.",
            "d": "Slightly more: applying the mask costs extra multiplications.",
        },
        why={
            "a": "the neurons are zeroed, not gone: the matrices keep their shapes, and a dense "
                 "matrix product does not look at the values it multiplies.",
            "c": "that is what removing the neurons saves (the shrunk model); a mask keeps every "
                 "row and column in place.",
            "d": "the mask was applied once, to the stored weights (apply_masks); inference then "
                 "runs the same dense products as before.",
        }),
    Question(
        "`cl.speed.compare` measures a speedup of 1.03x with the 95% interval [1.01, 1.04]. "
        "Which verdict does it print?",
        "c",
        options={
            "a": "faster",
            "b": "no clear difference",
            "c": "no practical difference",
            "d": "slower",
        },
        why={
            "a": "the whole interval is above 1, but 'faster' needs it above 1.05: the practical "
                 "band AA_BAND = 5 % is there because two copies of the same weights already "
                 "time a few percent apart (up to 5-6 % seen on a busy 2-core machine).",
            "b": "'no clear difference' is for an interval that crosses an edge of the band "
                 "[1/1.05, 1.05]; check where both ends of this one lie.",
            "d": "a speedup above 1 means the variant took less time than the baseline, not "
                 "more.",
        }),
])


check_quiz_b = quiz("1b.quiz", "01b_pruning_schedules", [
    Question(
        "The sensitivity scan of section 1 found each layer prunable *alone* within 1 point: "
        "0.weight to 70%, 2.weight to 90%, 4.weight to 50%. You prune all three to those "
        "sparsities at once, with no retraining. What can you say before measuring?",
        "c",
        options={
            "a": "The model stays within 1 point: each layer does.",
            "b": "The model loses exactly 3 points: the three 1-point limits add up.",
            "c": "Nothing certain: each limit was measured with the other layers dense, and "
                 "the errors of several pruned layers can compound, so the combination must be "
                 "measured itself.",
            "d": "It does better than any layer alone, since the layers share the damage.",
        },
        why={
            "a": "each limit was measured with the other two layers intact; pruned together, "
                 "the next layer receives already-damaged inputs, so the losses need not stay "
                 "within any one layer's budget.",
            "b": "the scan gives a bound per layer, not a drop of exactly 1 point each, and "
                 "drops of different layers neither add exactly nor have to add at all.",
            "d": "pruning more weights does not spread the damage thinner: every pruned layer "
                 "adds its own error to what the next layer receives.",
        }),
    Question(
        "An AGP ramp goes from initial sparsity 0 to final sparsity 0.8. What sparsity does it "
        "give exactly halfway through the ramp, (t - t0) / (n dt) = 0.5? (A number in [0, 1], "
        "to 0.01.)",
        0.7, tol=0.005,
        why={"number": "AGP is not linear in time: evaluate s_f + (s_i - s_f)(1 - p)^3 of "
                       "section 2 with p = 0.5, and check which of the two quantities, p or "
                       "1 - p, the cube is taken of."}),
    Question(
        "At 95% sparsity, after the same 10 epochs of fine-tuning, random masks reach 86.1% and "
        "magnitude masks 95.8% on the 360 validation images (one seed each). What does this "
        "show?",
        "b",
        options={
            "a": "Nothing: one seed on 360 images cannot separate two recipes.",
            "b": "A real difference: the gap of almost 10 points is several times two binomial "
                 "standard errors, so which weights are kept matters when few remain.",
            "c": "Random masks are as good as magnitude masks, only slower to fine-tune.",
            "d": "Fine-tuning does not help random masks at all.",
        },
        why={
            "a": "one seed on 360 images does blur small gaps, but compare this one with two "
                 "standard errors, sqrt(p (1 - p) / n), a few points at most here.",
            "c": "both recipes got exactly the same 10 epochs; the lesson measured where they "
                 "ended, not a trend that would close the gap with more epochs.",
            "d": "random one-shot at 95% is at 16.9%; fine-tuning lifted it by tens of points, "
                 "just not as far as magnitude masks.",
        }),
    Question(
        "Two pruning recipes, one seed each, score 96.9% and 96.4% on the 360 validation images. "
        "What does this comparison show?",
        "c",
        options={
            "a": "The first recipe is better: its accuracy is higher.",
            "b": "The validation split cannot separate them, so score both on the test split and "
                 "keep the better one.",
            "c": "Not distinguishable: the 0.5-point gap is well below two binomial standard "
                 "errors of such an accuracy (about 1.8 points), the bar for a real difference.",
            "d": "The second recipe is better: a lower validation accuracy means less "
                 "overfitting.",
        },
        why={
            "a": "one seed on 360 images: each accuracy is uncertain by sqrt(p (1 - p) / n). "
                 "Compare the gap with that before calling it real.",
            "b": "the test split is read once, for the final claim: choosing between recipes on "
                 "it fits the choice to the test images. And it is no larger (359 images), so it "
                 "would not separate them either.",
            "d": "both models were scored on the same held-out images; a lower held-out accuracy "
                 "says nothing about overfitting, and the gap is within the noise anyway.",
        }),
])
