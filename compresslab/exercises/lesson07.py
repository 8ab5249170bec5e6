"""Checkers for lesson 07 (speculative decoding): exercise 7.1 (the accept/reject step of
speculative sampling) and quiz 7.

The answer of 7.1 is random, so its checker works with hand-made distributions and statistics:

* three exact cases whose answer is certain: p == q (every draft token is kept, then the extra
  token of a one-hot ``p[k]``); a draft token the target gives probability 0 (rejected at once,
  and the new token comes from the rest of p); k = 0 (one token from ``p[0]``);
* two random cases of a few thousand rounds each, the draft tokens drawn from q inside the
  checker as the decoding loop draws them (seeded, so a verdict never changes): the first,
  second and third returned tokens must follow ``p[0]``, ``p[1]`` and ``p[2]``, and each draft
  token must be kept as often as ``sum_x min(p(x), q(x))`` says, by chi-square tests that fail
  only below a p-value of 1e-6;
* a reproducibility probe: 20 rounds run twice with the same seeded ``rng``, the global NumPy,
  Python (and torch) seeds set differently between the two, must give the same tokens (an
  answer must draw only from the ``rng`` it is given).

The right rule is Leviathan, Kalman & Matias (ICML 2023), Algorithm 1. Each classic wrong rule
(``_RULES``; ``_MISTAKES`` writes each as an answer) has an exact law too: what its first token,
acceptance rate, ... follow. When an answer's statistics reject the right law but fit a wrong rule's, the
hint names that mistake; an answer that raises where a wrong rule raises (``rng.choice`` refusing
an unnormalised residual) gets that rule's hint.
"""
from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._core import Case, Feedback, Question, _LearnerError, call, checker, quiz

LESSON = "07_speculative_decoding"


# --------------------------------------------------------------------------------------------
# 7.1 the accept/reject step: right and wrong rules, and the exact law of what each returns
# --------------------------------------------------------------------------------------------
def _ratio(p_i, q_i):
    """The right rule: keep a drafted token x with probability min(1, p(x) / q(x))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q_i > 0, np.minimum(1.0, p_i / np.where(q_i > 0, q_i, 1.0)), 0.0)


def _residual(p_i, q_i):
    """The right residual: max(0, p - q), normalised."""
    r = np.maximum(p_i - q_i, 0.0)
    return r / r.sum()


def _bonus(p, q):
    return p[len(q)]


@dataclass(frozen=True)
class _Rule:
    """One way of running a round. ``accept(p_i, q_i)``: the probability of keeping each token if
    drafted; ``residual(p_i, q_i)``: the law of the new token after a rejection; ``bonus(p, q)``:
    the law of the extra token after k kept ones (None: no extra token); ``one_u``: one uniform
    for all positions (keep x_i when that same u < accept(...)[x_i])."""

    accept: Callable = _ratio
    residual: Callable = _residual
    bonus: Callable | None = _bonus
    one_u: bool = False


def _round(p, q, draft_tokens, rng, rule: _Rule, draw=None):
    """Run one round with ``rule``, drawing new tokens with ``draw(dist, rng)`` (default
    ``rng.choice``). The wrong rules below are this function with one part changed. (An answer
    may not call it: it is forbidden in exercise 7.1.)"""
    draw = draw or (lambda dist, g: int(g.choice(len(dist), p=dist)))
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    out: list[int] = []
    u = rng.random()
    with np.errstate(divide="ignore", invalid="ignore"):     # a wrong residual may be 0 / 0
        for i, x in enumerate(np.asarray(draft_tokens, dtype=np.int64).tolist()):
            if i and not rule.one_u:
                u = rng.random()
            if u < rule.accept(p[i], q[i])[x]:
                out.append(x)
                continue
            return out + [draw(rule.residual(p[i], q[i]), rng)]
        return out + ([] if rule.bonus is None else [draw(rule.bonus(p, q), rng)])


def _unnormalised(p_i, q_i):
    return np.maximum(p_i - q_i, 0.0)


def _clipped(p_i, q_i):
    """The law of an unnormalised cumsum search clipped to the last token: the missing mass lands there."""
    r = np.maximum(p_i - q_i, 0.0)
    r[-1] += 1.0 - r.sum()
    return r


def _argmax(p_i, q_i):
    return (np.arange(len(p_i)) == np.argmax(p_i)).astype(float)


def _inverse_ratio(p_i, q_i):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(1.0, np.where(p_i > 0, q_i / np.where(p_i > 0, p_i, 1.0), np.inf))


def _reversed(p_i, q_i):
    r = np.maximum(q_i - p_i, 0.0)
    return r / r.sum()


def _absolute(p_i, q_i):
    r = np.abs(p_i - q_i)
    return r / r.sum()


def _search(dist, rng):
    """Inverse-CDF sampling without normalising: past the end of a cumsum below 1 it returns len(dist)."""
    return int(np.searchsorted(np.cumsum(dist), rng.random(), side="right"))


_RIGHT = _Rule()
_RULES = {
    "always": _Rule(accept=lambda p_i, q_i: np.ones_like(p_i)),
    "argmax": _Rule(accept=_argmax),
    "no_residual": _Rule(residual=lambda p_i, q_i: p_i),
    "reversed": _Rule(residual=_reversed),
    "from_q": _Rule(residual=lambda p_i, q_i: q_i),
    "abs": _Rule(residual=_absolute),
    "clipped": _Rule(residual=_clipped),
    "inverse_ratio": _Rule(accept=_inverse_ratio),
    "target_prob": _Rule(accept=lambda p_i, q_i: p_i),
    "inverted": _Rule(accept=lambda p_i, q_i: 1.0 - _ratio(p_i, q_i)),
    "no_bonus": _Rule(bonus=None),
    "one_u": _Rule(one_u=True),
    "bonus_previous": _Rule(bonus=lambda p, q: p[len(q) - 1]),
    "bonus_q": _Rule(bonus=lambda p, q: q[len(q) - 1]),
}


# the wrong answers, as a learner writes them (tests check that each gets its hint)
def _accept_always(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["always"])


def _accept_argmax(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["argmax"])


def _resample_p(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["no_residual"])


def _residual_reversed(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["reversed"])


def _resample_q(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["from_q"])


def _residual_abs(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["abs"])


def _residual_unnormalised(p, q, draft_tokens, rng):
    """rng.choice raises: probabilities do not sum to 1."""
    return _round(p, q, draft_tokens, rng, _Rule(residual=_unnormalised))


def _residual_without_max(p, q, draft_tokens, rng):
    """rng.choice raises: probabilities are not non-negative."""
    return _round(p, q, draft_tokens, rng, _Rule(residual=lambda p_i, q_i: p_i - q_i))


def _search_off_the_end(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _Rule(residual=_unnormalised), draw=_search)


def _search_clipped(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _Rule(residual=_unnormalised),
                  draw=lambda dist, g: min(_search(dist, g), len(dist) - 1))


def _accept_q_over_p(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["inverse_ratio"])


def _accept_with_p(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["target_prob"])


def _accept_inverted(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["inverted"])


def _no_bonus(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["no_bonus"])


def _one_uniform(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["one_u"])


def _bonus_from_previous_row(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["bonus_previous"])


def _bonus_from_q(p, q, draft_tokens, rng):
    return _round(p, q, draft_tokens, rng, _RULES["bonus_q"])


_KEEP_RULE = ("keep draft token x with probability min(1, p(x)/q(x)): draw u = rng.random() and keep "
              "x when u < p[i, x] / q[i, x].")
_NORMALISE = "divide the residual max(0, p - q) by its sum before sampling"
_HINTS = {
    "always": "you kept every draft token: the text then follows the draft q, not the target p. "
              + _KEEP_RULE[0].upper() + _KEEP_RULE[1:],
    "argmax": "you kept a draft token only when it is the target's argmax: that is greedy "
              "verification, right only at temperature 0. To sample from p, " + _KEEP_RULE,
    "no_residual": "after a rejection you sampled from p: the kept draws already gave min(p, q) of "
                   "each token, so the rejection must add only what is missing, max(0, p - q), "
                   "normalised; sampling all of p again over-produces the tokens the draft likes.",
    "reversed": "your residual is max(0, q - p): that adds back what the draft over-proposes, so the "
                "text follows q. A rejection must add what p has that q lacks: max(0, p - q), normalised.",
    "from_q": "after a rejection you drew the new token from q, the draft's distribution: the kept draws "
              "already gave min(p, q) of each token, and drawing from q again adds more of what the draft "
              "over-proposes. A rejection must add what p has that q lacks: max(0, p - q), normalised.",
    "abs": "your residual is |p - q|, normalised: it also puts mass on the tokens the draft over-proposes "
           "(where q > p), which the kept draws already over-produce. Take only what p has that q lacks: "
           "max(0, p - q) (np.maximum(p[i] - q[i], 0)), normalised.",
    "clipped": "after a rejection the last token id comes out too often: your cumulative sum of "
               "max(0, p - q) ends below 1 and the draws past its end land on the last token; "
               + _NORMALISE + ".",
    "inverse_ratio": "you kept draft token x with probability q(x)/p(x): the ratio is upside down. "
                     "Keep it with probability min(1, p(x)/q(x)), so the tokens the target likes more "
                     "than the draft are always kept.",
    "target_prob": "you kept draft token x with probability p(x): divide by the draft's q(x) (keep x "
                   "with probability min(1, p(x)/q(x))), so that the kept draws give min(p, q).",
    "inverted": "you kept draft token x when u >= p/q, i.e. with probability 1 - min(1, p/q): keep it "
                "when u < p[i, x] / q[i, x].",
    "no_bonus": "you returned only the accepted tokens: when all k draft tokens are kept, add one more "
                "token drawn from p[k] (the target computed that row in the same call, for free).",
    "one_u": "you drew one uniform u for all positions: every position needs its own fresh u = "
             "rng.random(), else a draft token kept with a small u makes the next ones more likely "
             "to be kept too.",
    "bonus_previous": "when all k draft tokens are kept, the extra token comes from p[k], the target's "
                      "distribution after the last draft token (the last row of p), not from p[k-1] or q.",
    "sum_to_1": "rng.choice refused your residual ('probabilities do not sum to 1'): max(0, p - q) "
                "sums to 1 - sum(min(p, q)), not to 1; divide it by its sum before sampling.",
    "negative": "rng.choice refused your residual ('probabilities are not non-negative'): p - q is "
                "negative where the draft over-proposes; the residual is max(0, p - q) "
                "(np.maximum(p[i] - q[i], 0)), normalised.",
    "nan": "your residual was 0 everywhere (NaN after dividing by its sum): either you rejected a draft "
           "token where p == q (min(1, p/q) = 1 there: it must be kept), or you normalised p - q "
           "without max(0, .) first (p - q sums to 0).",
    "stop": "the round stops at the first rejected draft token, and the token drawn from the residual "
            "is its last token.",
    "size": "rng.choice refused your call ('a and p must have same size'): rng.choice(n, p=dist) draws "
            "from range(n), so n must be len(dist), the vocabulary size p.shape[1] (len(p) is k + 1, the "
            "number of rows).",
    "rng": "two runs with the same seeded rng gave different tokens: use only the rng you are given "
           "(rng.random(), rng.choice(...)), not np.random, random or a new generator: "
           "speculative_generate passes its seeded rng so that runs are reproducible.",
    "greedy": "you returned the target's argmax instead of sampling (your first token is always the "
              "argmax of p[0]): that is greedy verification, right only at temperature 0. To sample "
              "from p, " + _KEEP_RULE + " After a rejection draw the new token from max(0, p - q), "
              "normalised, and after k kept ones from p[k], with rng.choice.",
    "rows": "Row i of p and row i of q are the same position (after the text and the first i draft "
            "tokens): compare p[i] with q[i]; p has one more row, p[k], for the extra token.",
}
_ARRAY_NOTE = (" Note: draft_tokens is a NumPy array, so draft_tokens[:i] + [y] adds y to every element "
               "instead of appending it; build a list (list(draft_tokens[:i]) + [y]).")
_HINTS["bonus_q"] = _HINTS["bonus_previous"]

# the wrong answers in the order the tests try them, with their hint's key
_MISTAKES = {
    "always": _accept_always, "argmax": _accept_argmax, "no_residual": _resample_p,
    "reversed": _residual_reversed, "from_q": _resample_q, "abs": _residual_abs,
    "sum_to_1": _residual_unnormalised, "negative": _residual_without_max,
    "off_the_end": _search_off_the_end, "clipped": _search_clipped, "inverse_ratio": _accept_q_over_p,
    "target_prob": _accept_with_p, "inverted": _accept_inverted, "no_bonus": _no_bonus, "one_u": _one_uniform,
    "bonus_previous": _bonus_from_previous_row, "bonus_q": _bonus_from_q,
}


def _law(rule: _Rule, p, q) -> dict[str, np.ndarray]:
    """The exact law of the statistics :func:`_observe` measures, for a round run with ``rule``.

    ``tok{i}``: the law of the i-th returned token given the answer has one (all draft tokens
    before it kept); ``keep{i}``: [kept, rejected] for draft token i, given it was reached. For
    independent uniforms each position is fresh; with one uniform (k <= 2), draft token 1 is kept
    when u < min(a_0(x_0), a_1(x_1)), so given x_0 kept, u is uniform below a_0(x_0)."""
    k = len(q)
    law: dict[str, np.ndarray] = {}
    for i in range(k + 1):
        if i == k:
            if rule.bonus is not None:
                law[f"tok{i}"] = np.asarray(rule.bonus(p, q), dtype=np.float64)
            break
        a = rule.accept(p[i], q[i])
        kept = q[i] * a                                   # P(draft x_i = x and kept)
        if rule.one_u and i == 1:
            a0 = rule.accept(p[0], q[0])
            reach = float(np.sum(q[0] * a0))
            kept = q[1] * np.array([np.sum(q[0] * np.minimum(a0, a1)) for a1 in a]) / reach
        keep = float(kept.sum())
        law[f"tok{i}"] = kept + (1.0 - keep) * rule.residual(p[i], q[i])
        law[f"keep{i}"] = np.array([keep, 1.0 - keep])
        if rule.bonus is None and i == k - 1:
            law[f"keep{i}"] = np.array([0.0, 1.0])        # never a token after the last kept one
    return law


def _observe(outputs: list[list[int]], k: int, vocab: int) -> dict[str, np.ndarray]:
    """Counts of the statistics whose law :func:`_law` gives."""
    lengths = np.array([len(o) for o in outputs])
    stats = {}
    for i in range(k + 1):
        reached = [o[i] for o in outputs if len(o) > i]
        stats[f"tok{i}"] = np.bincount(np.array(reached, dtype=np.int64), minlength=vocab)[:vocab]
        if i < k:
            stats[f"keep{i}"] = np.array([np.sum(lengths > i + 1), np.sum(lengths == i + 1)])
    return stats


def _chi2_sf(x: float, df: int) -> float:
    """P(chi-square with df degrees of freedom > x), exact for integer df (closed forms, math only)."""
    if x <= 0:
        return 1.0
    h = x / 2.0
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for j in range(1, df // 2):
            term *= h / j
            total += term
        return min(1.0, math.exp(-h) * total)
    total = math.erfc(math.sqrt(h))
    term = math.sqrt(h) / math.gamma(1.5)
    for j in range(df // 2):
        if j:
            term *= h / (j + 0.5)
        total += math.exp(-h) * term
    return min(1.0, total)


def _fit(counts: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square goodness-of-fit p-value of ``counts`` against ``probs``. Bins expected below 5
    are merged; a count where the law gives 0 (below 1e-12) is impossible: p-value 0."""
    counts, probs = np.asarray(counts, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    n = counts.sum()
    if n == 0:
        return 1.0
    if counts[probs <= 1e-12].sum() > 0:
        return 0.0
    expected, counts = n * probs[probs > 1e-12], counts[probs > 1e-12]
    order = np.argsort(expected)
    small = np.cumsum(expected[order]) < 5.0                 # the smallest bins, pooled until >= 5
    if small.any():
        cut = int(small.sum()) + 1                           # and the bin that lifts the pool to 5
        pooled = order[:cut]
        expected = np.r_[expected[order[cut:]], expected[pooled].sum()]
        counts = np.r_[counts[order[cut:]], counts[pooled].sum()]
    if len(expected) < 2:
        return 1.0
    return _chi2_sf(float(np.sum((counts - expected) ** 2 / expected)), len(expected) - 1)


_THRESHOLD = 1e-6


def _distribution(p_i) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in p_i) + "]"


@dataclass(frozen=True)
class _Random:
    """A random case: p, q, and how many rounds to run."""

    description: str
    p: np.ndarray
    q: np.ndarray
    rounds: int
    seed: int


def _random_cases() -> list[_Random]:
    # Power: on at least one statistic, every wrong rule of _RULES expects a chi-square of 400 or
    # more against the right law over these rounds (its noncentrality, from _law: the closest are
    # sampling p again after a rejection, ~410 on case A's first token, and one shared uniform,
    # 400 on keeping case B's draft token 1), where failing at a p-value of 1e-6 takes 24 to 34
    # (1 to 4 degrees of freedom).
    # Case A: general rows, k = 2. Tokens the draft over-proposes (p < q) and under-proposes
    # (p > q) at each position, the target's argmax rarely drafted, and the extra-token row p[2]
    # far from p[1] and q[1].
    p_a = np.array([[0.05, 0.15, 0.20, 0.25, 0.35],
                    [0.40, 0.05, 0.05, 0.20, 0.30],
                    [0.05, 0.05, 0.60, 0.25, 0.05]])
    q_a = np.array([[0.35, 0.25, 0.20, 0.15, 0.05],
                    [0.10, 0.45, 0.30, 0.10, 0.05]])
    # Case B: q one-hot (the draft is sure) at token 0, which the target gives 0.4 then 0.6: draft
    # token 0 must be kept 40% of the time, and token 1, once token 0 was, 60% (one shared uniform
    # keeps it 100%: u < 0.4 implies u < 0.6).
    p_b = np.array([[0.40, 0.50, 0.10, 0.00],
                    [0.05, 0.60, 0.15, 0.20],
                    [0.10, 0.10, 0.10, 0.70]])
    q_b = np.array([[1.0, 0.0, 0.0, 0.0],
                    [0.0, 1.0, 0.0, 0.0]])
    return [_Random("k = 2 draft tokens, vocabulary of 5, p and q differing at each position",
                    p_a, q_a, 3000, 71),
            _Random("q one-hot at the draft token, which p gives 0.4 (then 0.6)", p_b, q_b, 1500, 72)]


_WHAT = {"tok0": "the first token you return", "tok1": "the second token you return (when draft "
         "token 0 was kept)", "tok2": "the third token you return (when both draft tokens were kept)"}


class _Trials:
    """Runs the learner's function, checks the shape of every answer, and gathers statistics."""

    def __init__(self, fn):
        self.fn = fn
        self._stats: list[tuple[_Random, dict]] | None = None

    def run(self, p, q, draft, rng, description: str) -> list[int]:
        """One call, its answer checked for structure (a Feedback names what is wrong)."""
        case = Case(description, (p, q, np.asarray(draft, dtype=np.int64), rng))
        try:
            got = call(self.fn, case)
        except _LearnerError as err:
            for words, key in (("sum to 1", "sum_to_1"), ("non-negative", "negative"), ("NaN", "nan"),
                               ("same size", "size")):
                if words in str(err):
                    raise _Refused(key, description) from None
            raise
        return _tokens(got, p, q, list(draft), description)

    def statistics(self) -> list[tuple[_Random, dict]]:
        """The random cases, run (once: later calls return the same numbers)."""
        if self._stats is None:
            self._stats = []
            for case in _random_cases():
                draft_rng = np.random.default_rng(case.seed)          # the checker's draws
                rng = np.random.default_rng(case.seed + 1000)         # the answer's draws
                outputs = []
                for _ in range(case.rounds):
                    draft = [int(draft_rng.choice(len(q_i), p=q_i)) for q_i in case.q]
                    outputs.append(self.run(case.p, case.q, draft, rng, f"a round with {case.description}"))
                self._stats.append((case, _observe(outputs, len(case.q), case.p.shape[1])))
        return self._stats

    def greedy(self) -> bool:
        """Is the first token the answer returns always the argmax of p[0] (greedy verification)?"""
        try:
            stats = self.statistics()
        except (Feedback, _LearnerError, _Refused):
            return False
        return all(observed["tok0"][int(np.argmax(case.p[0]))] == observed["tok0"].sum()
                   for case, observed in stats)

    def reproducible(self, rounds: int = 20) -> bool:
        """Do two runs of ``rounds`` rounds with ``default_rng(5)`` give the same tokens, the global
        NumPy, Python (and torch, when imported) generators seeded differently for each run? The
        global states are put back afterwards."""
        case = _random_cases()[0]
        draw = np.random.default_rng(case.seed)
        drafts = [[int(draw.choice(len(q_i), p=q_i)) for q_i in case.q] for _ in range(rounds)]
        torch = sys.modules.get("torch")
        torch_rng = getattr(torch, "default_generator", None)
        saved = (np.random.get_state(), random.getstate(), torch_rng.get_state() if torch_rng else None)
        runs = []
        try:
            for seed in (1, 2):
                np.random.seed(seed)
                random.seed(seed)
                if torch_rng is not None:
                    torch_rng.manual_seed(seed)
                rng = np.random.default_rng(5)
                runs.append([self.run(case.p, case.q, d, rng, f"a round with {case.description}")
                             for d in drafts])
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])
            if torch_rng is not None:
                torch_rng.set_state(saved[2])
        return runs[0] == runs[1]

    def verdict(self, right=(_ratio, _residual, _bonus), threshold=_THRESHOLD) -> tuple[bool, str | None, str]:
        """(the right law fits, the hint of the wrong rule that fits best or None, what is off).
        The right rule's parts and the threshold are bound here, once: a later change of the
        module's names (or of ``_RIGHT``'s fields) cannot move them."""
        stats = self.statistics()
        right = _Rule(*right)

        def fits(rule) -> float:
            """The smallest p-value of the answer's statistics under the law of ``rule``."""
            worst = 1.0
            for case, observed in stats:
                law = _law(rule, case.p, case.q)
                for key, counts in observed.items():
                    probs = law.get(key, np.zeros(len(counts)))
                    worst = min(worst, _fit(counts, probs) if counts.sum() else 1.0)
            return worst

        if fits(right) >= threshold:
            return True, None, ""
        scores = {name: fits(rule) for name, rule in _RULES.items()}
        best = max(scores, key=scores.get)
        return False, (_HINTS[best] if scores[best] >= threshold else None), self._deviation(stats, right, threshold)

    @staticmethod
    def _deviation(stats, right: _Rule, threshold: float) -> str:
        """The first statistic that misses the right law, in words: expected vs observed (an
        acceptance rate first: when it is off, the tokens are off too, and it says more)."""
        for kind in ("keep", "tok"):
            for case, observed in stats:
                law = _law(right, case.p, case.q)
                for key, counts in observed.items():
                    if not key.startswith(kind) or _fit(counts, law[key]) >= threshold:
                        continue
                    n = int(counts.sum())
                    seen = counts / n
                    if kind == "keep":
                        i = key[-1]
                        return (f"over {n} rounds reaching draft token {i} ({case.description}), you kept "
                                f"it {seen[0]:.0%} of the time; it must be kept with probability "
                                f"min(1, p/q), on average sum_x min(p[{i}](x), q[{i}](x)) = {law[key][0]:.0%}.")
                    worst = int(np.argmax(np.abs(seen - law[key])))
                    return (f"{_WHAT[key]} should follow p[{key[-1]}] = {_distribution(law[key])} "
                            f"({case.description}); over {n} rounds it came out {_distribution(seen)} "
                            f"(token {worst}: expected {law[key][worst]:.0%}, seen {seen[worst]:.0%}).")
        return "the statistics of your tokens do not follow p."


class _Refused(Exception):
    """The answer raised where a wrong rule raises (rng.choice refusing the residual)."""

    def __init__(self, key: str, description: str):
        super().__init__(description)
        self.key, self.description = key, description


def _tokens(got, p, q, draft: list[int], description: str) -> list[int]:
    """The answer as a list of Python ints, or a Feedback saying what is wrong with its form."""
    k, vocab = len(draft), p.shape[1]
    where = f" (seen on {description})"
    array = isinstance(got, np.ndarray)
    note = _ARRAY_NOTE if array else ""          # for the shapes ``draft_tokens[:i] + [y]`` gives
    if got is None:
        raise Feedback("your function returned None: return the list of tokens (the kept draft tokens, "
                       "then one more)." + where)
    if array:
        if got.ndim != 1:
            raise Feedback(f"return a flat list of token ids, got an array of shape {got.shape}." + where)
        items = [got[j] for j in range(len(got))]
    elif type(got) in (list, tuple):
        items = list(got)
    else:
        raise Feedback(f"return a list of token ids (ints), got {type(got).__name__}." + where)
    for t in items:
        if type(t) is not int and not isinstance(t, np.integer):      # no bool, no look-alike objects
            raise Feedback(f"return token ids as ints, got a {type(t).__name__} in your list." + where)
    tokens = [int(t) for t in items]
    if not tokens:
        if k == 0:
            raise Feedback("with k = 0 there is nothing to check: return one token drawn from p[0]." + where)
        raise Feedback("you returned no token: even when the first draft token is rejected, the round "
                       "adds one token, drawn from the residual." + where + note)
    if len(tokens) > k + 1:
        raise Feedback(f"you returned {len(tokens)} tokens for k = {k} draft tokens: a round returns at "
                       "most k + 1 (all k kept, then one more)." + where)
    for j, t in enumerate(tokens):
        if not 0 <= t < vocab:
            if t == vocab and j == len(tokens) - 1 and j < k:
                raise Feedback(f"token id {vocab} is out of range (ids are 0..{vocab - 1}): a search in a "
                               "cumulative sum that ends below 1 falls off its end; "
                               + _NORMALISE + "." + where + note)
            raise Feedback(f"token id {t} is out of range: ids are 0..{vocab - 1}." + where + note)
    for j in range(len(tokens) - 1):
        if tokens[j] != draft[j]:
            after = len(tokens) - 1 - j
            if np.maximum(p[j] - q[j], 0.0)[tokens[j]] > 0:   # a token the residual at j can give
                raise Feedback(f"you returned tokens after a rejection: draft token {j} was not kept (token "
                               f"{j} of your answer, {tokens[j]}, is one the residual max(0, p[{j}] - q[{j}]) "
                               f"gives), yet {after} more token{'s follow' if after > 1 else ' follows'}: "
                               + _HINTS["stop"] + where + note)
            raise Feedback(f"token {j} of your answer is not draft token {j}: return the kept PREFIX of "
                           "draft_tokens, then one new token." + where + note)
    return tokens


def _exact_cases():
    """(description, p, q, draft, the only right answer, explain(got, trials) -> the hint)."""
    # p == q: every draft token is kept (none is the argmax of its row); p[3] is one-hot at
    # token 4, which no earlier row can give; row 2 gives 0 to token 1 too, so an extra token 1
    # cannot come from p[2] or q[2].
    rows = np.array([[0.10, 0.50, 0.20, 0.20, 0.0],
                     [0.30, 0.10, 0.45, 0.15, 0.0],
                     [0.35, 0.00, 0.15, 0.50, 0.0]])
    p1 = np.vstack([rows, [0.0, 0.0, 0.0, 0.0, 1.0]])

    def same(got, trials):
        if got == [0, 0, 2]:
            return _HINTS["no_bonus"]
        if len(got) == 4:                         # all three kept (the prefix is checked), a wrong extra token
            if rows[2][got[3]] > 0:
                return _named(trials, _HINTS["bonus_previous"])
            return _named(trials, "with p == q every draft token is kept; then the extra token comes from "
                                  f"p[3] (one-hot at token 4); you returned {got}.")
        j = len(got) - 1                          # a rejection, where p == q
        if got == [4]:
            return ("you returned only the extra token, [4]: return the kept draft tokens first (a prefix of "
                    "draft_tokens), then one more token; with p == q all 3 draft tokens are kept (p/q = 1), "
                    "then the extra token comes from p[3].")
        if got[-1] == 4:                          # only p[3] has token 4: a row of p after row j
            return (f"you rejected draft token {j} and returned token 4, which only p[3] gives: you used "
                    f"a row of p other than row {j}. " + _HINTS["rows"])
        named = _named(trials, None)
        if named:
            return named
        if trials.greedy():
            return _HINTS["greedy"]
        return (f"with p == q every draft token has p/q = 1 and must be kept, but you rejected draft token "
                f"{j} and returned {got}. Did you compare different rows? " + _HINTS["rows"])

    # q is sure of token 1, which p gives 0: rejected at once; the rest of p is all on token 3.
    p2 = np.array([[0.0, 0.0, 0.0, 1.0], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]])
    q2 = np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])

    def impossible(got, trials):
        if got == [1]:
            fallback = ("after rejecting draft token 1, which p gives probability 0, you returned token 1 "
                        "again: the new token must come from max(0, p - q), normalised (here all on token "
                        "3), not from q, q - p, |p - q| or another row.")
        else:
            fallback = ("the draft proposed token 1, which p gives 0: it must be rejected (min(1, p/q) = 0), "
                        "and the new token comes from max(0, p[0] - q[0]), all on token 3; you returned "
                        f"{got}.")
        return _named(trials, fallback)

    def nothing_to_check(got, trials):
        return _named(trials, "with k = 0 there is nothing to check: return one token drawn from p[0] "
                              f"(one-hot at token 2); you returned {got}.")

    p3 = np.array([[0.0, 0.0, 1.0, 0.0]])
    return [
        ("p == q at every position (k = 3, p[3] one-hot at token 4)", p1, rows.copy(), [0, 0, 2],
         [0, 0, 2, 4], same),
        ("a draft token the target gives probability 0 (q one-hot at token 1, p[0] one-hot at token 3)",
         p2, q2, [1, 2], [3], impossible),
        ("k = 0 draft tokens (p[0] one-hot at token 2)", p3, np.zeros((0, 4)), [], [2], nothing_to_check),
    ]


def _named(trials: _Trials, fallback: str | None) -> str | None:
    """The hint of the wrong rule the answer's statistics fit, else ``fallback``."""
    try:
        right, hint, _ = trials.verdict()
    except (Feedback, _LearnerError, _Refused):
        return fallback
    return hint if (hint and not right) else fallback


_PROBE_ROUNDS = 20


@checker("7.1", "the accept/reject step of speculative sampling", lesson=LESSON,
         forbidden=("compresslab.speculative.accept_reject", "compresslab.speculative.accept_always",
                    "compresslab.speculative.speculative_generate", "compresslab.exercises.lesson07._round"))
def check_accept_reject(accept_reject):
    """``accept_reject(p, q, draft_tokens, rng)``: p (k+1, vocab), q (k, vocab), k draft tokens,
    a numpy Generator -> the kept prefix of draft_tokens and one more token."""
    trials = _Trials(accept_reject)
    try:
        for description, p, q, draft, want, explain in _exact_cases():
            for seed in range(3):                   # the answer is certain: any draws give it
                rng = np.random.default_rng(seed)
                try:
                    got = trials.run(p, q, draft, rng, description)
                except _Refused as refused:
                    raise Feedback(_named(trials, _HINTS[refused.key]) + f" (seen on {description})") from None
                if got != want:
                    raise Feedback(f"{explain(got, trials)} (seen on {description})")
        right, hint, off = trials.verdict()
        rounds = sum(case.rounds for case in _random_cases())
        if not right:
            raise Feedback(f"{hint} (seen over {rounds} random rounds)" if hint else off)
        if not trials.reproducible(_PROBE_ROUNDS):
            raise Feedback(f"{_HINTS['rng']} (seen on {_PROBE_ROUNDS} rounds run twice from default_rng(5), "
                           "with np.random and random seeded differently each time)")
    except _Refused as refused:
        raise Feedback(f"{_HINTS[refused.key]} (seen on {refused.description})") from None
    return (f"3 exact cases right; over {rounds} random rounds your tokens follow p and your draft tokens "
            "are kept as often as sum_x min(p(x), q(x)); and the same rng gives the same tokens.")


# --------------------------------------------------------------------------------------------
# Self-check quiz
# --------------------------------------------------------------------------------------------
check_quiz = quiz("7.quiz", LESSON, [
    Question(
        "Why does speculative sampling give text with exactly the target's distribution p, whatever "
        "the draft q?",
        answer="c",
        options={"a": "because the draft was distilled from the target, so q is close to p",
                 "b": "because greedy decoding is deterministic",
                 "c": "a kept draft token contributes min(p(x), q(x)) to each token x, and a rejection "
                      "adds the rest, p(x) - min(p(x), q(x))",
                 "d": "it is only approximately p; the error shrinks as k grows"},
        why={"a": "the rule works for any draft, however poor: q changes only how often draft tokens "
                  "are kept (the speed), not what comes out.",
             "b": "the claim holds for sampling at any temperature; greedy decoding is only the "
                  "temperature-0 special case.",
             "d": "it is exact for every k: add up, for one token x, what a kept draft token and a "
                  "rejection each contribute."}),
    Question(
        "Each draft token is kept with probability alpha = 0.5, and a round drafts k = 3 tokens. How "
        "many tokens does a round emit per target call, on average?",
        answer=1.875, tol=0.01,
        why={"number": "a round always adds one token of its own, and draft token i counts only if "
                       "all the draft tokens before it were kept too: add up the chance of each."}),
    Question(
        "With alpha = 0.8 and k = 4, a round emits about 3.36 tokens for one target call. Take the "
        "idealised model: the target's call on the k + 1 tokens costs 1, as much as one step of plain "
        "decoding (v = 1), a draft call costs c, and the loop's own work is ignored. For which c is "
        "speculative decoding still faster than plain decoding?",
        answer="b",
        options={"a": "c = 0.7",
                 "b": "c = 0.3",
                 "c": "c = 1.0: the draft is as expensive as the target",
                 "d": "any c: every kept draft token saves a target call"},
        why={"a": "a round then costs 4 x 0.7 + 1 = 3.8 target calls for about 3.36 tokens: slower "
                  "than plain decoding.",
             "c": "a round then costs 5 target calls for about 3.36 tokens.",
             "d": "the k draft calls are paid whether or not their tokens are kept: compare a round's "
                  "cost, k * c + 1, with the tokens it emits."}),
    Question(
        "The lesson distils the draft from the target. What does that change?",
        answer="a",
        options={"a": "the acceptance rate alpha: q comes closer to p, more draft tokens are kept, so "
                      "decoding gets faster; the text follows p with any draft",
                 "b": "the output: it moves closer to the draft's distribution",
                 "c": "the target's cost per call goes down",
                 "d": "it is needed for greedy speculative decoding to give the target's greedy text"},
        why={"b": "the output follows p exactly, whatever q: the accept/reject rule corrects any draft.",
             "c": "the target is untouched: distillation trains the draft.",
             "d": "greedy output equals the target's with any draft: a draft token is kept only when "
                  "it is the target's argmax."}),
])
