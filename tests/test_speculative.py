"""Speculative decoding (compresslab.speculative): greedy output identical to the target's, sampled
output distributed as the target's (chi-square against exact marginals), the wrong rule caught,
and the closed forms against simulation."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import compresslab.nn as cnn
from compresslab import speculative as S
from compresslab.data import load_text
from compresslab.nn import GPT, GPTConfig


@pytest.fixture(scope="module")
def target():
    return cnn.load_tiny_gpt()


@pytest.fixture(scope="module", params=cnn.DRAFTS)
def draft(request):
    return cnn.load_draft(request.param)


@pytest.fixture(scope="module")
def text():
    return load_text().test


def _greedy_margin(model, tokens, n_prompt):
    """Smallest gap between the top two logits along a greedy path (so float rounding cannot flip it)."""
    gaps = []
    for t in range(n_prompt, len(tokens)):
        start = max(0, t - model.config.block_size)
        logits = model.forward(np.asarray(tokens[start:t])[None])[0, -1]
        top2 = np.sort(logits)[-2:]
        gaps.append(top2[1] - top2[0])
    return min(gaps)


# ---- greedy: token for token --------------------------------------------------------------------
def test_greedy_is_identical_to_the_target_on_many_prompts(target, draft, text):
    g = np.random.default_rng(0)
    checked = 0
    for i in range(24):
        start = int(g.integers(0, len(text) - 300))
        length = int(g.integers(1, 200))
        k = (1, 2, 3, 4, 6, 8)[i % 6]
        prompt = text[start:start + length]
        r = S.speculative_generate(target, draft, prompt, k, 40)
        plain = cnn.generate(target, prompt, 40, temperature=0)
        assert np.array_equal(r.tokens, plain), (i, start, length, k)
        assert r.new_tokens == 40 and len(r.tokens) == length + 40
        assert r.accepted == sum(r.accepted_per_round) <= r.proposed <= k * r.target_calls
        # a round with a rejection tested kept + 1 proposals; the others tested all they proposed
        assert r.accepted + r.rejected <= r.proposed and r.rejected <= r.target_calls
        assert r.rejected >= sum(m < k for m in r.accepted_per_round[:-1])
        assert r.new_tokens == r.accepted + r.target_calls          # each round adds one token of its own
        checked += 1
    assert checked == 24


def test_greedy_paths_are_far_from_ties(target, text):
    # the equality above is not luck of rounding: along these paths the top two logits are well apart
    prompt = text[1000:1100]
    tokens = cnn.generate(target, prompt, 30, temperature=0)
    assert _greedy_margin(target, tokens, len(prompt)) > 1e-3


def test_greedy_is_identical_past_the_context_window(target, draft, text):
    # 230 + 120 tokens: the window moves (by half a block) inside the run, as generate's does
    prompt = text[5000:5230]
    for k in (3, 8):
        r = S.speculative_generate(target, draft, prompt, k, 120)
        assert np.array_equal(r.tokens, cnn.generate(target, prompt, 120, temperature=0))
        assert r.prefills == 2


def test_a_useless_draft_still_gives_the_targets_text():
    t = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=24), seed=0)
    bad = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=16), seed=5)     # other sizes, random
    for prompt, k in (([3], 5), (list(range(20)), 2), (list(range(30)), 7)):
        r = S.speculative_generate(t, bad, prompt, k, 50)
        assert np.array_equal(r.tokens, cnn.generate(t, prompt, 50, temperature=0))


def test_the_target_as_its_own_draft_accepts_everything():
    t = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=64), seed=0)
    r = S.speculative_generate(t, t, [1, 2, 3], 4, 40)
    assert r.alpha == 1.0 and r.rejected == 0
    assert r.target_calls == 8 and r.tokens_per_call == 5.0
    r = S.speculative_generate(t, t, [1, 2, 3], 4, 40, temperature=1.0, seed=3)
    assert r.alpha == 1.0                                    # p == q: u * q < p always


def test_k_zero_is_plain_decoding(target, text):
    r = S.speculative_generate(target, cnn.load_draft("scratch"), text[:20], 0, 15)
    assert r.target_calls == 15 and r.draft_calls == 0 and math.isnan(r.alpha) and r.draft_seconds == 0
    assert np.array_equal(r.tokens, cnn.generate(target, text[:20], 15, temperature=0))


# ---- sampling: the target's distribution, exactly ---------------------------------------------------
def _exact_marginals(target, prompt, temperature):
    """Laws of the first and second new token under the target: p(x1) and sum_x1 p(x1) p(x2 | x1)."""
    p1 = S.probabilities(target.forward(np.asarray(prompt)[None])[0, -1], temperature)
    batch = np.concatenate([np.tile(prompt, (256, 1)), np.arange(256)[:, None]], axis=1)
    p2_given = S.probabilities(target.forward(batch)[:, -1], temperature)
    return p1, p1 @ p2_given


def _chi2_pvalue(counts, probs, min_expected=5.0):
    """Chi-square goodness of fit, bins with a small expectation merged into one."""
    n = counts.sum()
    expected = probs * n
    big = expected >= min_expected
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


def _histograms(target, draft, prompt, k, runs, temperature, accept=S.accept_reject):
    first, second = np.zeros(256), np.zeros(256)
    for seed in range(runs):
        r = S.speculative_generate(target, draft, prompt, k, 2, temperature=temperature, seed=seed, accept=accept)
        first[r.tokens[-2]] += 1
        second[r.tokens[-1]] += 1
    return first, second


@pytest.mark.parametrize("temperature", [1.0, 1.5])
def test_sampled_tokens_follow_the_targets_distribution(target, text, temperature):
    draft = cnn.load_draft("scratch")
    prompt = text[2000:2040]
    p1, p2 = _exact_marginals(target, prompt, temperature)
    first, second = _histograms(target, draft, prompt, 3, 1500, temperature)
    assert _chi2_pvalue(first, p1) > 1e-4
    assert _chi2_pvalue(second, p2) > 1e-4


def test_accepting_every_draft_token_fails_the_same_test(target, text):
    draft = cnn.load_draft("scratch")
    prompt = text[2000:2040]
    p1, p2 = _exact_marginals(target, prompt, 1.5)
    first, second = _histograms(target, draft, prompt, 3, 1500, 1.5, accept=S.accept_always)
    assert min(_chi2_pvalue(first, p1), _chi2_pvalue(second, p2)) < 1e-6


def test_accept_reject_on_hand_made_distributions():
    # the law of the first emitted token is p[0] when draft tokens are drawn from q
    p = np.array([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]])
    q = np.array([[0.1, 0.1, 0.4, 0.4]])
    g = np.random.default_rng(0)
    counts, kept = np.zeros(4), 0
    n = 20000
    for _ in range(n):
        x = int(g.choice(4, p=q[0]))
        out = S.accept_reject(p, q, [x], g)
        counts[out[0]] += 1
        kept += len(out) == 2
    assert stats.chisquare(counts[:3], p[0, :3] * n).pvalue > 1e-4 and counts[3] == 0
    beta = np.minimum(p[0], q[0]).sum()                      # acceptance probability 0.4
    assert abs(kept / n - beta) < 4 * math.sqrt(beta * (1 - beta) / n)


def test_accept_reject_edge_cases():
    g = np.random.default_rng(1)
    onehot = np.eye(3)
    # p == q: every draft token kept, then one from p[k]
    assert S.accept_reject(onehot[[0, 1, 2]], onehot[[0, 1]], [0, 1], g) == [0, 1, 2]
    # the draft proposed a token the target never writes: rejected, residual = p
    assert S.accept_reject(onehot[[2, 0]], onehot[[1]], [1], g) == [2]
    # k = 0: just a sample of p[0]
    assert S.accept_reject(onehot[[1]], np.zeros((0, 3)), [], g) == [1]
    with pytest.raises(ValueError, match="probability 0 under q"):
        S.accept_reject(onehot[[0, 0]], onehot[[1]], [0], g)
    with pytest.raises(ValueError, match="shape"):
        S.accept_reject(onehot, onehot, [0], g)
    with pytest.raises(ValueError, match="probability distribution"):
        S.accept_reject([[0.5, 0.6, 0.0], [1, 0, 0]], [[0.5, 0.5, 0.0]], [0], g)


def test_a_bad_accept_rule_is_refused(target):
    def returns_wrong_prefix(p, q, x, rng):
        return [int((x[0] + 1) % 256)] + [0] if len(x) else [0]
    with pytest.raises(ValueError, match="accepted prefix"):
        S.speculative_generate(target, target, [1, 2, 3], 2, 5, accept=returns_wrong_prefix)


def test_inputs_are_checked(target):
    other = GPT(GPTConfig(vocab_size=100, n_layer=1, n_head=2, n_embd=16, block_size=32), seed=0)
    with pytest.raises(ValueError, match="vocabulary"):
        S.speculative_generate(target, other, [1, 2], 2, 3)
    with pytest.raises(TypeError, match="draft"):
        S.speculative_generate(target, "gpt", [1, 2], 2, 3)
    with pytest.raises(ValueError, match="k"):
        S.speculative_generate(target, target, [1, 2], -1, 3)
    with pytest.raises(ValueError, match="at least one token"):
        S.speculative_generate(target, target, [], 2, 3)
    assert S.speculative_generate(target, target, "def ", 2, 0).tokens.tolist() == list(b"def ")


# ---- closed forms -----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(alpha=st.floats(0.0, 1.0), k=st.integers(0, 12))
def test_expected_tokens_per_call_is_the_geometric_sum(alpha, k):
    assert S.expected_tokens_per_call(alpha, k) == pytest.approx(sum(alpha ** i for i in range(k + 1)))


def test_expected_tokens_per_call_matches_a_simulation():
    g = np.random.default_rng(0)
    for alpha, k in ((0.3, 2), (0.7, 4), (0.9, 8)):
        # a round keeps proposals while independent coins with P(heads) = alpha come up heads
        coins = g.random((200_000, k)) < alpha
        kept = np.where(coins.all(axis=1), k, np.argmin(coins, axis=1))
        assert (kept + 1).mean() == pytest.approx(S.expected_tokens_per_call(alpha, k), rel=0.01)


@settings(max_examples=40, deadline=None)
@given(alpha=st.floats(0.0, 0.99), k=st.integers(1, 10), verify=st.floats(0.5, 3.0))
def test_break_even_cost_makes_the_speedup_one(alpha, k, verify):
    c = S.break_even_cost(alpha, k, verify)
    if c >= 0:
        assert S.expected_speedup(alpha, k, c, verify) == pytest.approx(1.0)
        assert S.expected_speedup(alpha, k, c * 0.9, verify) >= 1.0


def test_acceptance_rate_is_one_minus_total_variation(target, text):
    draft = cnn.load_draft("scratch")
    a = S.acceptance_rate(target, draft, text, temperature=1.0, context=64, max_chunks=4)
    chunks = text[:(len(text) // 65) * 65].reshape(-1, 65)[np.round(np.linspace(0, len(text) // 65 - 1, 4)).astype(int)]
    p = S.probabilities(target.forward(chunks[:, :-1]), 1.0)
    q = S.probabilities(draft.forward(chunks[:, :-1]), 1.0)
    assert a.value == pytest.approx(1 - 0.5 * np.abs(p - q).sum(-1).mean())
    greedy = S.acceptance_rate(target, draft, text, temperature=0, context=64, max_chunks=4)
    assert greedy.value == pytest.approx((p.argmax(-1) == q.argmax(-1)).mean())
    assert a.low <= a.value <= a.high and a.positions == 4 * 64


def test_distillation_raises_the_acceptance_rate(target, text):
    # the shipped drafts: the distilled one agrees with the target more often, greedy and sampled
    for temperature in (0.0, 1.0):
        kd = S.acceptance_rate(target, cnn.load_draft("distilled"), text, temperature=temperature)
        scratch = S.acceptance_rate(target, cnn.load_draft("scratch"), text, temperature=temperature)
        diff = kd.chunk_means - scratch.chunk_means                 # paired, same chunks
        assert diff.mean() - 2.1 * diff.std(ddof=1) / math.sqrt(len(diff)) > 0, temperature


def test_sweep_rows_agree_with_single_runs():
    t = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32), seed=0)
    d = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32), seed=1)
    rows = S.sweep(t, {"d": d}, [[1, 2, 3], [4, 5]], ks=[1, 3], temperatures=[0.0, 1.0], max_new_tokens=10)
    assert len(rows) == 4
    row = next(r for r in rows if r["k"] == 3 and r["temperature"] == 1.0)
    prompts = [[1, 2, 3], [4, 5]]
    runs = [S.speculative_generate(t, d, pr, 3, 10, temperature=1.0, seed=j) for j, pr in enumerate(prompts)]
    assert row["alpha"] == sum(r.accepted for r in runs) / sum(r.accepted + r.rejected for r in runs)
    assert row["target_calls"] == sum(r.target_calls for r in runs) and row["new_tokens"] == 20
    assert row["speedup"] == pytest.approx(row["plain_seconds"] / row["seconds"])


# ---- the script that trained the drafts ---------------------------------------------------------------
def test_the_training_script_distils_and_trains_from_scratch(torch, tmp_path, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "train_tiny_gpt.py"
    spec = importlib.util.spec_from_file_location("train_tiny_gpt", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    teacher = pathlib.Path(cnn.__file__).parents[1] / "datasets" / "tiny_gpt.npz"
    small = ["--steps", "4", "--batch", "2", "--n-layer", "1", "--n-embd", "32", "--n-head", "2",
             "--eval-every", "2", "--threads", "1", "--warmup", "1"]
    outs = {}
    for name, extra in (("scratch", []), ("kd", ["--teacher", str(teacher), "--kd-temperature", "2"])):
        assert script.main(small + extra + ["--out", str(tmp_path / f"{name}.npz")]) == 0
        outs[name] = cnn.load_with_extra(tmp_path / f"{name}.npz")
    log = capsys.readouterr().out
    assert "distilled from tiny_gpt.npz (T=2.0, alpha=1.0)" in log
    (kd, kd_extra), (scratch, _) = outs["kd"], outs["scratch"]
    assert float(kd_extra["kd_temperature"]) == 2.0 and kd_extra["curve_steps"].tolist() == [2, 4]
    # same seed, same batches, same initial weights: only the loss differs, so the weights do
    assert kd.config == scratch.config
    assert not np.allclose(kd.blocks[0].mlp.fc1.weight, scratch.blocks[0].mlp.fc1.weight)


def test_alpha_interval_is_the_cluster_ratio_interval():
    def result(kept, tested):
        return S.SpeculativeResult(np.zeros(1), 1, 1, 1, tested, kept, [], 1, tested - kept)
    runs = [result(6, 8), result(5, 8), result(7, 8)]
    a, lo, hi = S.alpha_interval(runs)
    se = math.sqrt(1.5 * (0 + 1 + 1)) / 24                       # residuals 6-6, 5-6, 7-6
    assert a == 0.75 and lo == pytest.approx(0.75 - 4.302653 * se)
    # runs that all agree give a narrow interval; the pooled value weighs long runs more
    a, lo, hi = S.alpha_interval([result(30, 40), result(3, 4), result(15, 20)])
    assert a == pytest.approx(48 / 64) and hi - lo < 1e-9
    with pytest.raises(ValueError, match="at least two"):
        S.alpha_interval(runs[:1])


def test_a_run_records_its_rounds_and_where_its_time_went(target, text):
    r = S.speculative_generate(target, cnn.load_draft("distilled"), text[:50], 4, 30)
    assert len(r.proposed_per_round) == len(r.accepted_per_round) == r.target_calls
    assert sum(r.proposed_per_round) == r.proposed == r.draft_calls
    assert all(0 <= a <= p <= 4 for a, p in zip(r.accepted_per_round, r.proposed_per_round))
    assert r.rejected == sum(a < p for a, p in zip(r.accepted_per_round, r.proposed_per_round))
    assert 0 < r.draft_seconds and 0 < r.target_seconds and 0 < r.prefill_seconds
    assert r.target_seconds + r.draft_seconds + r.prefill_seconds < r.seconds


def test_train_gpt_needs_torch_and_says_how_to_get_it(monkeypatch):
    from compresslab import backend, distill
    monkeypatch.setattr(backend, "_torch", lambda: None)
    with pytest.raises(ModuleNotFoundError, match="torch"):
        distill.train_gpt(GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)), np.arange(100) % 7, steps=1)


def test_train_gpt_distils_towards_the_teacher(torch):
    from compresslab import distill
    config = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)
    teacher = GPT(config, seed=3)                                 # random, but a fixed distribution to copy
    text = np.random.default_rng(0).integers(0, 256, 4000)
    start = GPT(config, seed=0)
    kd, h = distill.train_gpt(start, text, steps=40, teacher=teacher, warmup=5, lr=1e-2, log=None)
    scratch, _ = distill.train_gpt(start, text, steps=40, warmup=5, lr=1e-2, log=None)
    assert np.array_equal(start.tok_emb.weight, GPT(config, seed=0).tok_emb.weight)     # input untouched
    # the distilled student agrees with its teacher far more than the one trained on the text
    a_kd = S.acceptance_rate(teacher, kd, text, context=15, max_chunks=32).value
    a_scratch = S.acceptance_rate(teacher, scratch, text, context=15, max_chunks=32).value
    assert a_kd > a_scratch + 0.1 and h["steps"] == [] and h["minutes"] > 0


@settings(max_examples=60, deadline=None)
@given(t_block=st.integers(4, 40), d_block=st.integers(2, 40), k=st.integers(0, 9),
       n_prompt=st.integers(1, 90), n_new=st.integers(0, 60))
def test_greedy_is_identical_for_any_windows_k_and_lengths(t_block, d_block, k, n_prompt, n_new):
    # a draft with a smaller context window than k + 1 tokens, prompts longer than either window:
    # the draft's window moves early and never below 0; the target's moves exactly as generate's
    t = GPT(GPTConfig(vocab_size=32, n_layer=1, n_head=2, n_embd=8, block_size=t_block), seed=0)
    d = GPT(GPTConfig(vocab_size=32, n_layer=1, n_head=2, n_embd=8, block_size=d_block), seed=1)
    prompt = (np.arange(n_prompt) * 7) % 32
    r = S.speculative_generate(t, d, prompt, k, n_new)
    assert np.array_equal(r.tokens, cnn.generate(t, prompt, n_new, temperature=0))


def _toy_joint_law(target, prompt, n, temperature):
    """The exact law of the next n tokens under target (enumerated: a vocabulary of a few tokens)."""
    law = {(): 1.0}
    for _ in range(n):
        seqs = list(law)
        p = S.probabilities(target.forward(np.array([prompt + list(s) for s in seqs]))[:, -1], temperature)
        law = {s + (x,): law[s] * row[x] for s, row in zip(seqs, p) for x in range(p.shape[1])}
    return law


def _one_uniform_per_round(p, q, x, rng):            # a rule that is right when k = 1 only
    p, q = np.asarray(p), np.asarray(q)
    u, out = rng.random(), []
    for i, tok in enumerate(np.asarray(x).tolist()):
        if u * q[i, tok] < p[i, tok]:
            out.append(tok)
            continue
        r = np.maximum(p[i] - q[i], 0)
        return out + [int(rng.choice(len(r), p=r / r.sum()))]
    return out + [int(rng.choice(p.shape[1], p=p[len(out)]))]


def _extra_from_previous_row(p, q, x, rng):         # all kept: the extra token drawn from p[k-1]
    out = S.accept_reject(p, q, x, rng)
    if len(x) and len(out) == len(x) + 1:
        out[-1] = int(rng.choice(np.asarray(p).shape[1], p=np.asarray(p)[len(x) - 1]))
    return out


def test_sampled_text_has_the_targets_joint_law_with_several_proposals_a_round():
    # 4 new tokens with k = 3: rounds of 3 proposals, every accept/reject path, exact law by enumeration
    t = GPT(GPTConfig(vocab_size=5, n_layer=2, n_head=2, n_embd=16, block_size=32), seed=0)
    d = GPT(GPTConfig(vocab_size=5, n_layer=1, n_head=2, n_embd=16, block_size=32), seed=11)
    for m in (t, d):
        m.ln_f.weight[...] *= 6.0                          # sharper distributions: the rules differ more
    prompt, temperature, runs = [1, 2, 3], 1.0, 3000
    law = _toy_joint_law(t, prompt, 4, temperature)
    keys = list(law)
    probs = np.array([law[s] for s in keys])
    index = {s: i for i, s in enumerate(keys)}

    def pvalue(accept):
        counts = np.zeros(len(keys))
        for seed in range(runs):
            r = S.speculative_generate(t, d, prompt, 3, 4, temperature=temperature, seed=seed, accept=accept)
            assert r.proposed_per_round[0] == 3
            counts[index[tuple(r.tokens[len(prompt):].tolist())]] += 1
        return _chi2_pvalue(counts, probs)

    assert pvalue(S.accept_reject) > 1e-4
    assert pvalue(_one_uniform_per_round) < 1e-6
    assert pvalue(_extra_from_previous_row) < 1e-6
