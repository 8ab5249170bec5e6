"""Checkers for lesson 06b (language models II: activations, sparsity, the KV cache and decode
speed): exercise 6.3 (the Wanda mask of one layer) and quiz 6b.

Every checker lists the classic wrong versions a learner writes (``Mistake``, each with a hint
naming that mistake) and orders its cases so that the first case a wrong version gets wrong
tells it apart; where two mistakes agree there, the one that agrees with the answer on the most
cases is named.
"""
from __future__ import annotations

import math

import numpy as np

from .. import prune
from ._core import Case, Feedback, Mistake, Question, checker, compare_cases, numeric_array, quiz

LESSON = "06b_llm_inference"


# --------------------------------------------------------------------------------------------
# 6.3 the Wanda score and mask of one layer
# --------------------------------------------------------------------------------------------
def _reference_wanda(w, X, amount):
    return prune.wanda(w, X, amount)


def _k(w, amount):
    return int(round(amount * w.shape[1]))


def _row_mask(scores, k, *, largest=False, ties_last=False):
    """Prune the k smallest (or largest) scores of each row; ties: lowest (or highest) column first."""
    scores = np.asarray(scores, dtype=np.float64)
    mask = np.ones(scores.shape)
    k = int(np.clip(k, 0, scores.shape[1]))
    for i, row in enumerate(scores):
        key = -row if largest else row
        if ties_last:
            order = (len(row) - 1 - np.argsort(key[::-1], kind="stable"))
        else:
            order = np.argsort(key, kind="stable")
        mask[i, order[:k]] = 0.0
    return mask


def _l2(X):
    return np.sqrt((np.asarray(X, dtype=np.float64) ** 2).sum(axis=0))


def _scores(w, X):
    return np.abs(w) * _l2(X)


def _per_layer(w, X, amount):
    s = _scores(w, X).ravel()
    k = _k(w, amount) * w.shape[0]
    mask = np.ones(s.size)
    mask[np.argsort(s, kind="stable")[:k]] = 0.0
    return mask.reshape(w.shape)


def _token_axis(w, X, amount):
    norms = np.sqrt((np.asarray(X, dtype=np.float64) ** 2).sum(axis=1))     # one per token
    return _row_mask(np.abs(w) * norms, _k(w, amount))


def _squared(w, X, amount):
    return _row_mask(np.abs(w) * _l2(X) ** 2, _k(w, amount))


def _mean_abs(w, X, amount):
    return _row_mask(np.abs(w) * np.abs(X).mean(axis=0), _k(w, amount))


def _largest(w, X, amount):
    return _row_mask(_scores(w, X), _k(w, amount), largest=True)


def _magnitude_only(w, X, amount):
    return _row_mask(np.abs(w), _k(w, amount))


def _signed(w, X, amount):
    return _row_mask(w * _l2(X), _k(w, amount))


def _ties_last(w, X, amount):
    return _row_mask(_scores(w, X), _k(w, amount), ties_last=True)


def _ties_all(w, X, amount):
    """``mask = scores > kth smallest``: every weight tied with the k-th smallest is pruned."""
    s = _scores(w, X)
    k = _k(w, amount)
    if k == 0:
        return np.ones(w.shape)
    kth = np.sort(s, axis=1)[:, k - 1:k]
    return (s > kth).astype(float)


def _inverted(w, X, amount):
    return 1.0 - _row_mask(_scores(w, X), _k(w, amount))


def _max_abs(w, X, amount):
    return _row_mask(np.abs(w) * np.abs(np.asarray(X, dtype=np.float64)).max(axis=0), _k(w, amount))


def _kept_fraction(w, X, amount):
    return _row_mask(_scores(w, X), w.shape[1] - _k(w, amount))


def _masked_weights(w, X, amount):
    return np.asarray(w, dtype=np.float64) * _row_mask(_scores(w, X), _k(w, amount))


def _returned_scores(w, X, amount):
    return _scores(w, X)


def _k_from_rows(w, X, amount):
    return _row_mask(_scores(w, X), int(round(amount * w.shape[0])))


def _per_column(w, X, amount):
    return _row_mask(_scores(w, X).T, int(round(amount * w.shape[0]))).T


def _floor(w, X, amount):
    return _row_mask(_scores(w, X), int(amount * w.shape[1]))


def _ceil(w, X, amount):
    return _row_mask(_scores(w, X), math.ceil(amount * w.shape[1] - 1e-9))


def _one_more(w, X, amount):
    return _row_mask(_scores(w, X), _k(w, amount) + 1)


def _one_fewer(w, X, amount):
    return _row_mask(_scores(w, X), _k(w, amount) - 1)


def _mask_equal(got, want):
    arr = numeric_array(got)
    if arr is None:
        raise Feedback(f"return the mask as an array of 0 and 1 (numbers), got {type(got).__name__}.")
    arr = arr.astype(np.float64)
    return arr.shape == np.shape(want) and bool(np.array_equal(arr, np.asarray(want, dtype=np.float64)))


def _wanda_cases():
    g = np.random.default_rng(63)
    # Order: the first case has as many tokens as features (a norm over the tokens still
    # broadcasts) and no ties; the tie case comes second, where the tie rules differ.
    # ties: every score equal within a pair of columns; the lowest column goes first
    tie_w = np.array([[1.0, -1.0, 1.0, 2.0, -2.0, 3.0, 3.0, 0.5],
                      [2.0, 2.0, -2.0, 2.0, 1.0, 1.0, 4.0, 4.0]])
    tie_X = np.ones((8, 8))
    # rows of very different sizes (a per-layer threshold empties the small row), one big input
    # feature, and as many tokens as features (the token-axis norm then still broadcasts)
    w1 = g.normal(0, 1, (4, 8)) * np.array([[0.05], [1.0], [2.0], [0.5]])
    X1 = g.normal(0, 1, (8, 8))
    X1[:, 2] *= 20.0
    w2 = g.normal(0, 1, (6, 16))
    X2 = np.abs(g.standard_t(2, (20, 16))) * g.choice([-1.0, 1.0], (20, 16))
    X2[:, [3, 11]] *= 15.0
    w3 = g.normal(0, 1, (3, 12))
    X3 = g.normal(0, 1, (5, 12)) * np.linspace(0.2, 3.0, 12)
    # 40 columns with 20 tied scores per row: wider than 16, so an unstable sort (np.argsort's
    # default, np.argpartition) no longer falls back to insertion sort and breaks the tie rule
    wide_w = np.tile(np.r_[np.full(20, 2.0), np.full(20, 1.0)], (2, 1))
    wide_w[1] = wide_w[1][::-1]
    w5 = g.normal(0, 1, (5, 12))
    X5 = g.normal(0, 1, (9, 12))
    return [
        Case("4 x 8 weights, rows of very different sizes, 8 tokens, feature 2 twenty times "
             "larger, amount 0.5", (w1, X1, 0.5)),
        Case("2 rows with tied scores (|W| * ||X_j|| equal), amount 0.25", (tie_w, tie_X, 0.25)),
        Case("6 x 16 weights, 20 heavy-tailed tokens, features 3 and 11 large, amount 0.5",
             (w2, X2, 0.5)),
        Case("3 x 12 weights, 5 tokens, feature sizes rising from 0.2 to 3, amount 0.25",
             (w3, X3, 0.25)),
        Case("the same 6 x 16 layer, amount 0.75", (w2, X2, 0.75)),
        Case("5 x 12 weights, 9 tokens, amount 0.3 (0.3 * 12 = 3.6 weights a row)", (w5, X5, 0.3)),
        Case("the same layer, amount 0.2 (0.2 * 12 = 2.4 weights a row)", (w5, X5, 0.2)),
        Case("2 rows of 40 with 20 tied scores each, amount 0.25", (wide_w, np.ones((4, 40)), 0.25)),
        Case("amount 0: nothing pruned", (w3, X3, 0.0)),
    ]


def _explain_counts(got, want, case):
    """Say how many weights each row of the answer prunes, against the k the case asks for."""
    arr = numeric_array(got)
    if arr is None or arr.shape != np.shape(want):
        return None
    pruned = (arr == 0).sum(axis=1)
    k = int((np.asarray(want) == 0).sum(axis=1)[0])
    if np.all(pruned == k):
        return (f"every row prunes k = {k} weights, as it should, but not the same ones: the choice "
                "differs only among tied scores -> use a stable sort (np.argsort(..., kind='stable')) "
                "and prune the lowest column first." if case.args[2] == 0.25 and np.shape(want)[1] == 40
                else f"every row prunes k = {k} weights, as it should, but not the smallest scores.")
    return f"your rows prune {sorted(set(pruned.tolist()))} weights; each row should prune k = {k}."


@checker("6.3", "the Wanda score and mask of one layer", lesson=LESSON,
         forbidden=("compresslab.prune.wanda", "compresslab.prune.wanda_scores",
                    "compresslab.prune.magnitude_per_row", "compresslab.prune._prune_rows"))
def check_wanda_mask(wanda_mask):
    """``wanda_mask(w, X, amount)``: w (out, in), X (tokens, in), amount a fraction of each row
    -> 0/1 mask of w's shape."""
    mistakes = [
        Mistake(_per_layer, "you compared the scores of the whole layer with one threshold: Wanda "
                "compares within each output row, so every row loses the same number of weights."),
        Mistake(_token_axis, "you took the norm over the wrong axis: one norm per token. Wanda needs "
                "one norm per input feature j, over all tokens (X[:, j])."),
        Mistake(_squared, "you used the squared norm sum_t X[t, j]**2; the score is |W_ij| times "
                "the L2 norm, its square root (squaring changes the ranking)."),
        Mistake(_mean_abs, "you used the mean or the sum of |X[:, j]| (an L1 norm); the score uses "
                "the L2 norm sqrt(sum_t X[t, j]**2), which weighs large activations more."),
        Mistake(_max_abs, "you used max_t |X[t, j]| (SmoothQuant's per-channel range); Wanda uses the "
                "L2 norm over all tokens, sqrt(sum_t X[t, j]**2)."),
        Mistake(_inverted, "your mask is 1 where a weight is pruned: the mask is 1 = keep, 0 = pruned."),
        Mistake(_kept_fraction, "you pruned (1 - amount) of each row: amount is the fraction PRUNED, "
                "not kept."),
        Mistake(_masked_weights, "you returned the pruned weights w * mask: return the 0/1 mask."),
        Mistake(_returned_scores, "you returned the scores |W_ij| * ||X_j||: return the 0/1 mask "
                "they decide."),
        Mistake(_k_from_rows, "you took k from the number of rows (out_features): each row prunes "
                "round(amount * in_features) of its own weights."),
        Mistake(_per_column, "you compared the scores within each column (input feature); Wanda "
                "compares within each output row (w[i, :])."),
        Mistake(_largest, "you pruned the largest scores; prune the smallest and keep the important "
                "weights."),
        Mistake(_magnitude_only, "your mask ignores X: that is magnitude pruning per row. Multiply "
                "|W_ij| by the norm of input feature j."),
        Mistake(_signed, "you ranked W_ij * ||X_j|| with its sign, so large negative weights went "
                "first; rank |W_ij| * ||X_j||."),
        Mistake(_ties_last, "among tied scores you pruned the highest column first; the rule (as a "
                "stable sort) prunes the lowest column first."),
        Mistake(_ties_all, "you pruned every score <= the k-th smallest: with ties that is more "
                "than k weights. Prune exactly k per row (a stable argsort, the first k)."),
        Mistake(_floor, "you rounded k down (int() truncates, as Wanda's reference code does); this "
                "lesson rounds to the nearest: k = round(amount * in_features)."),
        Mistake(_ceil, "you rounded k up; this lesson rounds to the nearest: k = round(amount * "
                "in_features)."),
        Mistake(_one_more, "off by one: you pruned one weight too many per row; k = round(amount * "
                "in_features)."),
        Mistake(_one_fewer, "off by one: you pruned one weight too few per row; k = round(amount * "
                "in_features), or you kept the k-th smallest (< instead of <= at the threshold)."),
    ]
    return compare_cases(wanda_mask, _reference_wanda, _wanda_cases(), mistakes, equal=_mask_equal,
                         explain=_explain_counts)


# --------------------------------------------------------------------------------------------
# Self-check quiz
# --------------------------------------------------------------------------------------------
check_quiz = quiz("6b.quiz", LESSON, [
    Question(
        "Why is generating one token at batch 1 memory-bound on almost any chip?",
        answer="c",
        options={"a": "the softmax over the vocabulary of every step costs more arithmetic than the "
                      "matrix products",
                 "b": "the KV cache is always larger than the weights",
                 "c": "every weight fetched for this token feeds a single multiply-add, so the chip "
                      "waits for bytes, not for arithmetic",
                 "d": "integer arithmetic is slower than floating point"},
        why={"a": "count the operations: the softmax touches vocabulary-many numbers, the matrix "
                  "products touch every weight.",
             "b": "for short contexts the weights dominate the bytes; compare bytes read with "
                  "FLOPs done, whatever their source.",
             "d": "the bound is about bytes moved per FLOP, not the kind of arithmetic."}),
    Question(
        "A model has 8 layers and 8 heads of 64 numbers each. How many bytes does one token add "
        "to its float16 KV cache?",
        answer=16384, tol=0,
        why={"number": "count a key and a value vector of head_dim numbers, per head and per layer, "
                       "at 2 bytes a number."}),
    Question(
        "What does Wanda's score |W_ij| * ||X_j|| use that magnitude pruning does not?",
        answer="b",
        options={"a": "the gradient of the loss",
                 "b": "the size of each input feature measured on calibration text",
                 "c": "a weight update that compensates for the pruned weights, as in SparseGPT",
                 "d": "a retraining pass after pruning"},
        why={"a": "Wanda needs no backward pass, only one forward pass of calibration text.",
             "c": "that is SparseGPT (or GPTQ for quantization); Wanda only zeroes weights.",
             "d": "Wanda is one shot: no retraining."}),
    Question(
        "SmoothQuant divides a layer's input channels by s and multiplies the weights' columns by "
        "s. For the layers that follow a LayerNorm (attn.qkv, mlp.fc1 here), why does the division "
        "cost nothing at run time?",
        answer="a",
        options={"a": "the LayerNorm's per-channel weight and bias absorb it, once, before deployment",
                 "b": "int8 hardware performs the division as part of the integer multiply",
                 "c": "s is 1 for most channels",
                 "d": "the division is done once on the calibration data only"},
        why={"b": "integer multiply units do not divide; ask where else a per-channel factor could "
                  "be applied.",
             "c": "s differs from 1 on every channel in general.",
             "d": "every new token's activations would need dividing too, so something must "
                  "do it for new tokens."}),
])
