"""Checkers of lesson 07: 7.1 (the accept/reject step of speculative sampling) and quiz 7.

The lesson's solution (copied verbatim) passes, and so does a right answer that draws its random
numbers in another order; every classic wrong rule fails with the hint that names it, both as the
checker module writes it and as a learner would; the verdict never changes between two runs."""
import numpy as np
import pytest

from compresslab.exercises import ERROR, FAIL, NOT_ATTEMPTED, PASS, REGISTRY
from compresslab.exercises import lesson07 as ex


# ---- the lesson's solutions, verbatim (lessons/07_speculative_decoding.ipynb, between the markers) ----
def accept_reject(p, q, draft_tokens, rng):
    ### BEGIN SOLUTION
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    out = []
    for i, x in enumerate(draft_tokens):
        x = int(x)
        if rng.random() < p[i, x] / q[i, x]:          # keep x with probability min(1, p(x) / q(x))
            out.append(x)
            continue
        residual = np.maximum(p[i] - q[i], 0.0)       # what p has that the kept proposals did not give
        residual /= residual.sum()                    # ... normalised: a distribution again
        out.append(int(rng.choice(len(residual), p=residual)))
        return out                                    # the round ends at the first rejection
    out.append(int(rng.choice(p.shape[1], p=p[len(draft_tokens)])))   # all kept: one more from p[k]
    return out
    ### END SOLUTION


def quiz_answers():
    return {1: "c", 2: 1.875, 3: "b", 4: "a"}


def _run(check, fn):
    return check(fn, quiet=True)


def _fails_with(fn, words):
    r = _run(ex.check_accept_reject, fn)
    assert r.status == FAIL, r
    assert words in r.message, r.message
    return r


def test_solutions_pass():
    for check, fn in ((ex.check_accept_reject, accept_reject), (ex.check_quiz, quiz_answers)):
        r = _run(check, fn)
        assert r.status == PASS, r.message


def test_registered_for_the_lesson():
    assert {k for k, v in REGISTRY.items() if v["lesson"] == "07_speculative_decoding"} == {"7.1", "7.quiz"}
    assert len(ex.check_quiz.questions) == 4


# ---- right answers written differently ----------------------------------------------------------
def uniforms_up_front(p, q, draft_tokens, rng):
    """All k uniforms first, then one more for the new token, sampled by inverse CDF (cumsum)."""
    k = len(draft_tokens)
    u = rng.random(k)
    v = rng.random()
    ratio = p[np.arange(k), draft_tokens] / q[np.arange(k), draft_tokens]
    rejected = np.flatnonzero(u >= ratio)
    n = int(rejected[0]) if len(rejected) else k
    dist = p[k] if n == k else np.maximum(p[n] - q[n], 0.0)
    cdf = np.cumsum(dist) / dist.sum()
    return [int(t) for t in draft_tokens[:n]] + [min(int(np.searchsorted(cdf, v, side="right")), len(dist) - 1)]


def new_token_drawn_first(p, q, draft_tokens, rng):
    """Draws the all-kept token before testing anything, returns a NumPy array of numpy ints."""
    bonus = rng.choice(p.shape[1], p=p[-1])
    for i, x in enumerate(draft_tokens):
        if rng.uniform() * q[i, x] >= p[i, x]:
            residual = np.clip(p[i] - q[i], 0, None)
            return np.append(draft_tokens[:i], rng.choice(len(residual), p=residual / residual.sum()))
    return np.append(draft_tokens, bonus)


def test_the_lessons_solution_cell_passes():
    """Whatever the lesson's exercise cell holds now (instructor edition), it passes."""
    from pathlib import Path
    nbformat = pytest.importorskip("nbformat")
    path = Path(__file__).resolve().parents[1] / "lessons" / "07_speculative_decoding.ipynb"
    if not path.exists():
        pytest.skip("the lesson is not there")
    cells = [c.source for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "code" and "def accept_reject(" in c.source]
    assert len(cells) == 1
    namespace = {"np": np}
    exec(cells[0], namespace)
    r = _run(ex.check_accept_reject, namespace["accept_reject"])
    assert r.status == PASS, r.message


@pytest.mark.parametrize("fn", [uniforms_up_front, new_token_drawn_first])
def test_right_answers_with_other_random_orders_pass(fn):
    r = _run(ex.check_accept_reject, fn)
    assert r.status == PASS, r.message


def test_library_answer_passes(library_answers_allowed):
    import compresslab as cl
    r = _run(ex.check_accept_reject, lambda p, q, d, rng: cl.speculative.accept_reject(p, q, d, rng))
    assert r.status == PASS, r.message


def test_library_answer_is_refused():
    import compresslab as cl
    for fn in (cl.speculative.accept_reject, lambda p, q, d, rng: cl.speculative.accept_reject(p, q, d, rng),
               lambda p, q, d, rng: cl.speculative.accept_always(p, q, d, rng)):
        r = _run(ex.check_accept_reject, fn)
        assert r.status == FAIL and "write it yourself" in r.message, r.message


def test_the_verdict_is_the_same_twice():
    for fn in (accept_reject, ex._one_uniform, ex._search_clipped):
        a, b = _run(ex.check_accept_reject, fn), _run(ex.check_accept_reject, fn)
        assert (a.status, a.message) == (b.status, b.message)


# ---- the checker's own wrong rules: each gets its hint ------------------------------------------
MODULE_HINTS = {
    "always": "you kept every draft token",
    "argmax": "target's argmax",
    "no_residual": "after a rejection you sampled from p",
    "reversed": "max(0, q - p)",
    "sum_to_1": "do not sum to 1",
    "negative": "not non-negative",
    "off_the_end": "falls off its end",
    "clipped": "last token id comes out too often",
    "inverse_ratio": "upside down",
    "target_prob": "with probability p(x)",
    "inverted": "u >= p/q",
    "no_bonus": "you returned only the accepted tokens",
    "one_u": "one uniform u for all positions",
    "bonus_previous": "not from p[k-1] or q",
    "bonus_q": "not from p[k-1] or q",
}


def test_every_module_mistake_has_a_test():
    assert set(MODULE_HINTS) == set(ex._MISTAKES)


@pytest.mark.parametrize("name", list(MODULE_HINTS))
def test_module_mistakes_get_their_hint(name):
    _fails_with(ex._MISTAKES[name], MODULE_HINTS[name])


# ---- the same mistakes as a learner writes them ---------------------------------------------------
def _sample(dist, rng):
    return int(rng.choice(len(dist), p=dist))


def _residual(p_i, q_i):
    r = np.maximum(p_i - q_i, 0.0)
    with np.errstate(invalid="ignore"):            # 0 / 0 after a wrong rejection: rng.choice then refuses NaN
        return r / r.sum()


def keeps_everything(p, q, draft_tokens, rng):
    return list(draft_tokens) + [_sample(p[len(draft_tokens)], rng)]


def keeps_the_argmax(p, q, draft_tokens, rng):
    out = []
    for i, x in enumerate(draft_tokens):
        if x == np.argmax(p[i]):
            out.append(int(x))
        else:
            return out + [_sample(_residual(p[i], q[i]), rng)]
    return out + [_sample(p[-1], rng)]


def _with(accept=None, residual=None, bonus=None, stop=True, one_u=False):
    """A learner's loop with one part written wrong."""
    accept = accept or (lambda p_i, q_i, x, u: u < p_i[x] / q_i[x])
    residual = residual or (lambda p_i, q_i, rng: _sample(_residual(p_i, q_i), rng))
    bonus = bonus or (lambda p, q, rng: [_sample(p[len(q)], rng)])

    def fn(p, q, draft_tokens, rng):
        out, u = [], rng.random()
        for i, x in enumerate(draft_tokens):
            if not one_u:
                u = rng.random()
            if accept(p[i], q[i], x, u):
                out.append(int(x))
                continue
            out.append(residual(p[i], q[i], rng))
            if stop:
                return out
        return out + bonus(p, q, rng)

    return fn


def _cumsum_search(dist, rng):
    return int(np.searchsorted(np.cumsum(dist), rng.random()))


LEARNER_MISTAKES = {
    "keeps everything": (keeps_everything, "you kept every draft token"),
    "argmax": (keeps_the_argmax, "target's argmax"),
    "resamples p": (_with(residual=lambda p_i, q_i, rng: _sample(p_i, rng)), "after a rejection you sampled from p"),
    "q - p": (_with(residual=lambda p_i, q_i, rng: _sample(_residual(q_i, p_i), rng)), "max(0, q - p)"),
    "unnormalised": (_with(residual=lambda p_i, q_i, rng: _sample(np.maximum(p_i - q_i, 0), rng)),
                     "do not sum to 1"),
    "no max": (_with(residual=lambda p_i, q_i, rng: _sample(p_i - q_i, rng)), "not non-negative"),
    "cumsum falls off": (_with(residual=lambda p_i, q_i, rng: _cumsum_search(np.maximum(p_i - q_i, 0), rng)),
                         "falls off its end"),
    "cumsum clipped": (_with(residual=lambda p_i, q_i, rng: min(_cumsum_search(np.maximum(p_i - q_i, 0), rng),
                                                                len(p_i) - 1)), "comes out too often"),
    "q / p": (_with(accept=lambda p_i, q_i, x, u: u < min(1, q_i[x] / max(p_i[x], 1e-300))), "upside down"),
    "p": (_with(accept=lambda p_i, q_i, x, u: u < p_i[x]), "with probability p(x)"),
    "u >= p/q": (_with(accept=lambda p_i, q_i, x, u: u >= p_i[x] / q_i[x]), "u >= p/q"),
    "no bonus": (_with(bonus=lambda p, q, rng: []), "you returned only the accepted tokens"),
    "one u": (_with(one_u=True), "one uniform u for all positions"),
    "bonus p[k-1]": (_with(bonus=lambda p, q, rng: [_sample(p[len(q) - 1], rng)]), "not from p[k-1] or q"),
    "bonus q": (_with(bonus=lambda p, q, rng: [_sample(q[-1], rng)] if len(q) else [_sample(p[0], rng)]),
                "not from p[k-1] or q"),
    "does not stop": (_with(stop=False), "tokens after a rejection"),
    "array + [y]": (lambda p, q, d, rng: d + [accept_reject(p, q, d, rng)[-1]], "draft_tokens is a NumPy array"),
}


@pytest.mark.parametrize("name", list(LEARNER_MISTAKES))
def test_learner_mistakes_get_their_hint(name):
    fn, words = LEARNER_MISTAKES[name]
    _fails_with(fn, words)


def test_a_wrong_law_no_rule_explains_says_what_was_expected_and_seen():
    flat = _with(residual=lambda p_i, q_i, rng: _sample((p_i > q_i) / np.sum(p_i > q_i), rng))
    r = _fails_with(flat, "the first token you return should follow p[0]")
    assert "expected" in r.message and "seen" in r.message
    squared = _with(accept=lambda p_i, q_i, x, u: u < min(1.0, p_i[x] / q_i[x]) ** 2)
    r = _fails_with(squared, "you kept it 50% of the time")
    assert "min(1, p/q)" in r.message and "60%" in r.message
    coin = _with(accept=lambda p_i, q_i, x, u: u < 0.5 if q_i[x] == 1 and p_i[x] > 0 else u < p_i[x] / q_i[x])
    r = _fails_with(coin, "you kept it 5")          # 50% in the q one-hot case, where 40% is right
    assert "40%" in r.message


# ---- answers of the wrong form, and no answer -----------------------------------------------------
@pytest.mark.parametrize("fn, words", [
    (lambda p, q, d, rng: None, "returned None"),
    (lambda p, q, d, rng: [], "you returned no token"),
    (lambda p, q, d, rng: list(d) + [0, 0], "at most k + 1"),
    (lambda p, q, d, rng: [p.shape[1] + 3], "out of range"),
    (lambda p, q, d, rng: [float(t) for t in accept_reject(p, q, d, rng)], "as ints"),
    (lambda p, q, d, rng: [bool(t) for t in accept_reject(p, q, d, rng)], "as ints"),
    (lambda p, q, d, rng: "3", "list of token ids"),
    (lambda p, q, d, rng: np.array([accept_reject(p, q, d, rng)]), "flat list"),
    (lambda p, q, d, rng: [int(d[0]) + 1, 0] if len(d) == 3 else accept_reject(p, q, d, rng), "not draft token 0"),
])
def test_answers_of_the_wrong_form_are_named(fn, words):
    _fails_with(fn, words)


def test_not_attempted_and_errors():
    def untouched(p, q, draft_tokens, rng):
        raise NotImplementedError()
    assert _run(ex.check_accept_reject, untouched).status == NOT_ATTEMPTED

    def crashes(p, q, draft_tokens, rng):
        return [int(q[0].argmax())]            # q has no row when k = 0
    r = _run(ex.check_accept_reject, lambda p, q, d, rng: crashes(p, q, d, rng) if len(d) == 0
             else accept_reject(p, q, d, rng))
    assert r.status == ERROR and "IndexError" in r.message and "k = 0" in r.message
    assert "expected a function" in _run(ex.check_accept_reject, 3).message


def test_chi_square_p_values_are_exact():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 5, 7):
        for x in (0.01, 0.5, 3.0, 11.0, 40.0):
            assert ex._chi2_sf(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9, abs=1e-300)


def test_goodness_of_fit_pools_small_bins_and_rejects_impossible_tokens():
    assert ex._fit([0, 10, 0], [0.0, 1.0, 0.0]) == 1.0
    assert ex._fit([1, 99], [0.0, 1.0]) == 0.0
    assert ex._fit([50, 50, 1], [0.5, 0.49, 0.01]) > 0.5
    assert ex._fit([30, 70], [0.5, 0.5]) < 1e-4


def test_the_exact_laws_of_the_right_rule_are_p():
    for case in ex._random_cases():
        law = ex._law(ex._RIGHT, case.p, case.q)
        for i in range(len(case.p)):
            np.testing.assert_allclose(law[f"tok{i}"], case.p[i], atol=1e-12)


# ---- the quiz ------------------------------------------------------------------------------------
def test_quiz_hints():
    r = _run(ex.check_quiz, lambda: {1: "a", 2: 2.5, 3: "a", 4: "b"})
    assert r.status == FAIL and "0 of 4 right" in r.message
    assert "however poor" in r.message and "3.8 target calls" in r.message and "corrects any draft" in r.message
    assert "draft token i counts only if" in r.message
    for answers, words in (({1: "b"}, "temperature-0"), ({1: "d"}, "exact for every k"),
                           ({3: "c"}, "5 target calls"), ({3: "d"}, "paid whether or not"),
                           ({4: "c"}, "target is untouched"), ({4: "d"}, "with any draft")):
        r = _run(ex.check_quiz, lambda a=answers: {**quiz_answers(), **a})
        assert r.status == FAIL and "3 of 4 right" in r.message and words in r.message, r.message
    assert _run(ex.check_quiz, lambda: {**quiz_answers(), 2: 1.88}).status == PASS      # within 0.01


def test_quiz_numbers_agree_with_the_library():
    from compresslab import speculative as S
    assert S.expected_tokens_per_call(0.5, 3) == pytest.approx(1.875)
    e = S.expected_tokens_per_call(0.8, 4)
    assert round(e, 2) == 3.36 and S.break_even_cost(0.8, 4) == pytest.approx(0.5904)
    assert 4 * 0.3 + 1 < e < 4 * 0.7 + 1                          # c = 0.3 wins, c = 0.7 loses
