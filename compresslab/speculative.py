"""Speculative decoding: a small draft model proposes, the big target model verifies, and the text
comes out exactly as the target alone would write it (Leviathan, Kalman & Matias 2023; Chen et
al. 2023).

One round, with the target ``p`` and the draft ``q`` (next-token distributions)::

    draft:  x_1 ~ q(. | s), x_2 ~ q(. | s, x_1), ..., x_k ~ q(. | s, x_1..x_k-1)    k cheap calls
    target: p_1, ..., p_k+1 = p(. | s), p(. | s, x_1), ..., p(. | s, x_1..x_k)        ONE call, k+1 positions
    for i = 1..k:  accept x_i with probability min(1, p_i(x_i) / q_i(x_i))
                   on the first rejection emit y ~ max(0, p_i - q_i) / sum(max(0, p_i - q_i)), stop
    all accepted:  emit y ~ p_k+1 (a bonus token)

Each emitted token is distributed exactly as ``p`` (the proof sketch is in lesson 07): the
accepted part contributes ``q(x) * min(1, p(x)/q(x)) = min(p(x), q(x))`` and the residual adds the
rest, ``p(x) - min(p(x), q(x))``. At temperature 0 the distributions are one-hot at the argmax and
the rule reduces to "accept while the draft's token is the target's argmax": greedy output is
identical token for token -- up to float rounding: the verify call computes k + 1 positions at
once, whose float32 logits can differ from one-at-a-time decoding in the last bits (about 1e-5
here), so an exact near-tie between the top two tokens could go the other way ("within hardware
numerics", as Chen et al. put it).

With the acceptance rate ``alpha = E[sum_x min(p(x), q(x))]`` (the same at every position, a
simplification) a round emits on average ``(1 - alpha**(k+1)) / (1 - alpha)`` tokens for one
target call; if a draft call costs ``c`` target calls and a target call on k+1 tokens costs ``v``
(about 1 when decoding is memory-bound, a large model streaming its weights from memory on any
hardware; more for a small, cache-resident model bound by overhead and by small matrix products),
the expected speedup over plain decoding is ``(1 - alpha**(k+1)) / ((1 - alpha) * (k * c + v))``.

References
----------
Y. Leviathan, M. Kalman, Y. Matias, "Fast Inference from Transformers via Speculative Decoding",
ICML 2023, arXiv:2211.17192.
C. Chen, S. Borgeaud, G. Irving, J.-B. Lespiau, L. Sifre, J. Jumper, "Accelerating Large Language
Model Decoding with Speculative Sampling", arXiv:2302.01318 (2023).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _validate as V
from .nn.gpt import GPT, KVCache, _chunks, _mean_and_half_width, _t975

__all__ = ["probabilities", "accept_reject", "accept_always", "speculative_generate", "SpeculativeResult",
           "expected_tokens_per_call", "expected_speedup", "break_even_cost", "acceptance_rate",
           "AcceptanceRate", "alpha_interval", "sweep", "CallCosts", "measure_call_costs"]


# --------------------------------------------------------------------------------------------
# Distributions and the accept/reject step
# --------------------------------------------------------------------------------------------
def probabilities(logits, temperature: float = 1.0) -> np.ndarray:
    """Next-token distributions ``softmax(logits / temperature)`` over the last axis, in float64.

    ``temperature == 0`` gives the greedy "distribution": probability 1 on the argmax (the first
    one on ties, like ``numpy.argmax``) and 0 elsewhere.

    Parameters
    ----------
    logits : array_like, shape (..., vocab)
    temperature : float >= 0, default 1.0

    Returns
    -------
    numpy.ndarray of float64, shape of ``logits``; each row sums to 1.

    Examples
    --------
    >>> probabilities([[2.0, 0.0, 2.0]], 0).tolist()
    [[1.0, 0.0, 0.0]]
    >>> probabilities([0.0, np.log(3.0)]).round(3).tolist()
    [0.25, 0.75]
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"logits must have a non-empty last axis (the vocabulary), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")
    temperature = V.check_float(temperature, "temperature", 0.0, 1e6)
    if temperature == 0:
        out = np.zeros_like(z)
        np.put_along_axis(out, z.argmax(axis=-1)[..., None], 1.0, axis=-1)
        return out
    z = z / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sample(p: np.ndarray, rng: np.random.Generator) -> int:
    """One draw from the distribution p (sums to 1): the first index whose cumulative sum exceeds u."""
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))


def _check_step(p, q, draft_tokens):
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    x = np.asarray(draft_tokens)
    k = x.shape[0] if x.ndim == 1 else -1
    if k < 0 or p.ndim != 2 or q.ndim != 2 or p.shape != (k + 1, q.shape[1]) or q.shape[0] != k:
        raise ValueError(f"need p of shape (k+1, vocab), q of shape (k, vocab) and k draft tokens; got p "
                         f"{p.shape}, q {q.shape}, draft_tokens {x.shape}")
    if k and (x.dtype.kind not in "iu" or x.min() < 0 or x.max() >= q.shape[1]):
        raise ValueError(f"draft_tokens must be token ids in [0, {q.shape[1] - 1}]")
    for name, a in (("p", p), ("q", q)):
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or np.abs(a.sum(axis=1) - 1.0).max() > 1e-6):
            raise ValueError(f"every row of {name} must be a probability distribution (>= 0, sums to 1)")
    if k and (q[np.arange(k), x] <= 0).any():
        raise ValueError("a draft token has probability 0 under q: the draft cannot have proposed it")
    return p, q, x.astype(np.int64)


def accept_reject(p, q, draft_tokens, rng: np.random.Generator) -> list[int]:
    """The verification step of speculative sampling: which draft tokens to keep, and one more.

    For i = 0..k-1: keep ``draft_tokens[i]`` (= x) when ``u < p[i, x] / q[i, x]`` with a fresh
    uniform ``u`` (so with probability ``min(1, p/q)``); at the first rejection append one token
    drawn from the residual ``max(0, p[i] - q[i])`` normalised to sum 1, and stop. When all k are
    kept, append one token drawn from ``p[k]``. (Leviathan et al. 2023, Algorithm 1; Chen et al.
    2023, Algorithm 2.)

    Parameters
    ----------
    p : array_like, shape (k+1, vocab)
        The target's next-token distributions after the prefix and after each draft token.
    q : array_like, shape (k, vocab)
        The draft's distributions that ``draft_tokens`` were sampled from.
    draft_tokens : sequence of k ints
    rng : numpy.random.Generator

    Returns
    -------
    list of int
        The accepted draft tokens followed by one new token: between 1 and k+1 tokens.

    Examples
    --------
    >>> p = [[0.5, 0.5], [0.1, 0.9]]; q = [[0.5, 0.5]]
    >>> accept_reject(p, q, [1], np.random.default_rng(0))[0]      # p == q: always kept
    1
    >>> accept_reject([[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0]], [1], np.random.default_rng(0))
    [0]
    """
    p, q, x = _check_step(p, q, draft_tokens)
    out: list[int] = []
    for i, token in enumerate(x.tolist()):
        if rng.random() * q[i, token] < p[i, token]:      # u < p/q, written without dividing
            out.append(token)
            continue
        residual = np.maximum(p[i] - q[i], 0.0)           # what p has that q did not already give
        return out + [_sample(residual / residual.sum(), rng)]
    return out + [_sample(p[len(x)], rng)]


def accept_always(p, q, draft_tokens, rng: np.random.Generator) -> list[int]:
    """A WRONG rule, for tests and the lesson: keep every draft token, then one token from ``p[k]``.

    Fast, but the text then follows the draft's distribution, not the target's.

    Parameters
    ----------
    p, q, draft_tokens, rng
        As :func:`accept_reject`.

    Returns
    -------
    list of int
        All k draft tokens and one more.

    Examples
    --------
    >>> accept_always([[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0]], [1], np.random.default_rng(0))[0]   # p gives it 0
    1
    """
    p, q, x = _check_step(p, q, draft_tokens)
    return x.tolist() + [_sample(p[len(x)], rng)]


# --------------------------------------------------------------------------------------------
# The decoding loop
# --------------------------------------------------------------------------------------------
@dataclass
class SpeculativeResult:
    """What :func:`speculative_generate` produced and how.

    Parameters
    ----------
    tokens, new_tokens, target_calls, draft_calls, proposed, accepted, ...
        The attributes below, in their order (:func:`speculative_generate` fills them in).

    Attributes
    ----------
    tokens : numpy.ndarray of int64
        The prompt followed by the new tokens.
    new_tokens : int
    target_calls : int
        Verification calls of the target (each on up to k+1 tokens); prefills not counted.
    draft_calls : int
        Calls of the draft, prefills not counted.
    proposed, accepted : int
        Draft tokens proposed and kept, over all rounds.
    rejected : int
        Rounds that ended with a rejection (the others kept all their proposals). Proposals after
        a round's first rejection are never tested: ``accepted + rejected`` tokens were.
    accepted_per_round : list of int
        How many draft tokens each round kept (0..k).
    prefills : int
        Prompt reads of the target (1, plus one per move of the context window).
    proposed_per_round : list of int
        How many tokens the draft proposed in each round (k, or fewer near the end).
    seconds, target_seconds, draft_seconds, prefill_seconds : float
        Wall-clock time of the whole call; the part spent in the target's verify calls, in the
        draft's calls, and in both models' prefills (reading the prompt, and again after a move
        of the context window); the rest is the loop's own work (sampling, the accept/reject step,
        cache bookkeeping).

    Examples
    --------
    >>> r = SpeculativeResult(np.arange(8), new_tokens=5, target_calls=2, draft_calls=6, proposed=6, accepted=3,
    ...                       rejected=1)
    >>> r.alpha, r.tokens_per_call                   # 3 kept of 4 tested; 5 tokens for 2 target calls
    (0.75, 2.5)
    """

    tokens: np.ndarray
    new_tokens: int
    target_calls: int
    draft_calls: int
    proposed: int
    accepted: int
    accepted_per_round: list[int] = field(default_factory=list)
    prefills: int = 1
    rejected: int = 0
    proposed_per_round: list[int] = field(default_factory=list)
    seconds: float = 0.0
    target_seconds: float = 0.0
    draft_seconds: float = 0.0
    prefill_seconds: float = 0.0

    @property
    def alpha(self) -> float:
        """Measured acceptance rate: kept / tested proposals, ``accepted / (accepted + rejected)``
        (nan if none was tested). Each test keeps a proposal with probability about alpha, so
        this estimates the alpha of :func:`expected_tokens_per_call`; ``accepted / proposed``
        would not: it counts the untested proposals after a rejection as failures, and falls as k
        grows."""
        tested = self.accepted + self.rejected
        return self.accepted / tested if tested else float("nan")

    @property
    def tokens_per_call(self) -> float:
        """New tokens per target call: 1 for plain decoding, up to k+1."""
        return self.new_tokens / self.target_calls if self.target_calls else float("nan")

    def __repr__(self) -> str:
        return (f"SpeculativeResult({self.new_tokens} new tokens, {self.target_calls} target calls, "
                f"{self.draft_calls} draft calls, alpha={self.alpha:.3f}, "
                f"tokens/call={self.tokens_per_call:.2f})")


def _tokens(prompt, vocab: int) -> list[int]:
    if isinstance(prompt, str):
        prompt = np.frombuffer(prompt.encode("utf-8"), np.uint8)
    t = V.as_int_array(prompt, "prompt", 0, vocab - 1)
    if t.ndim > 1:
        raise ValueError(f"prompt must be a 1-D sequence of token ids, got shape {t.shape}")
    t = t.reshape(-1).tolist()
    if not t:
        raise ValueError("prompt must hold at least one token")
    return t


class _Reader:
    """One model, its KV cache and the window of the text it reads: [start, start + block_size).
    The cache holds the window's tokens up to, not including, the last committed one."""

    def __init__(self, model: GPT, tokens: list[int]):
        self.model, self.block = model, model.config.block_size
        self.start = max(0, len(tokens) - self.block)
        self.cache: KVCache | None = None
        self.seconds = 0.0                   # time spent in this model's forward passes, prefills apart
        self.prefill_seconds = 0.0

    def room(self, n: int) -> int:
        """How many more tokens this window can predict after a text of n tokens (as ``generate``
        counts: predicting token n needs ``n - start <= block_size - 1``)."""
        return self.block - (n - self.start)

    def move(self, n: int) -> None:
        """Restart the window from the last block_size // 2 tokens (``generate``'s rule), if that
        moves it on."""
        start = max(0, n - self.block // 2)
        if start > self.start:
            self.start, self.cache = start, None

    def prefill(self, tokens: list[int]) -> None:
        """A fresh cache holding the window's tokens except the last."""
        self.cache = KVCache(self.model.config, bits=self.model.kv_bits)
        if len(tokens) - 1 > self.start:
            t0 = time.perf_counter()
            self.model.forward(np.array([tokens[self.start:-1]]), self.cache)
            self.prefill_seconds += time.perf_counter() - t0

    def read(self, tokens: list[int]) -> np.ndarray:
        """Feed the tokens the cache lacks (all of ``tokens`` after it) and return their logits (T, vocab)."""
        have = self.start + self.cache.length
        t0 = time.perf_counter()
        logits = self.model.forward(np.array([tokens[have:]]), self.cache)[0]
        self.seconds += time.perf_counter() - t0
        return logits

    def keep(self, n: int) -> None:
        """Forget cached positions from text index n on (``KVCache.truncate``)."""
        if self.start + self.cache.length > n:
            self.cache.truncate(n - self.start)


def speculative_generate(target: GPT, draft: GPT, prompt, k: int = 4, max_new_tokens: int = 64, *,
                         temperature: float = 0.0, seed: Any = 0,
                         accept: Callable = accept_reject) -> SpeculativeResult:
    """Continue ``prompt`` with the target's distribution, drafting k tokens at a time.

    Each round the draft proposes up to ``k`` tokens one by one (its own :class:`~compresslab.nn.KVCache`),
    the target reads the last committed token and the k proposals in ONE forward pass (its
    cache), ``accept`` keeps a prefix of the proposals and adds one token, and both caches are
    rolled back to the committed text (``KVCache.truncate``). Greedy (``temperature == 0``)
    output is the same, token for token, as ``compresslab.nn.generate(target, prompt,
    max_new_tokens, temperature=0)``; sampled output has the same distribution as
    ``generate(target, ..., temperature=temperature)`` (not the same tokens: the random draws
    differ). The context window moves on like ``generate``'s, and a round never crosses a move.

    Parameters
    ----------
    target, draft : compresslab.nn.GPT
        Same vocabulary (the draft may be any size; its quality only changes the speed).
    prompt : sequence of int or str
        Token ids, or text (UTF-8 bytes).
    k : int >= 0, default 4
        Draft tokens per round (0: plain decoding with the target).
    max_new_tokens : int >= 0, default 64
    temperature : float >= 0, default 0
        Applied to both models' logits; 0 is greedy.
    seed : int or numpy.random.Generator, default 0
    accept : callable, default :func:`accept_reject`
        ``accept(p, q, draft_tokens, rng) -> list of int``; a different rule (the lesson's
        exercise, or the wrong :func:`accept_always`) can be plugged in.

    Returns
    -------
    SpeculativeResult

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig, generate
    >>> t = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32), seed=0)
    >>> d = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32), seed=1)
    >>> r = speculative_generate(t, d, [1, 2, 3], k=3, max_new_tokens=20)
    >>> bool((r.tokens == generate(t, [1, 2, 3], 20, temperature=0)).all())
    True
    """
    for name, m in (("target", target), ("draft", draft)):
        if not isinstance(m, GPT):
            raise TypeError(f"{name} must be a compresslab.nn.GPT, got {type(m).__name__}")
    vocab = target.config.vocab_size
    if draft.config.vocab_size != vocab:
        raise ValueError(f"target and draft must share the vocabulary: {vocab} vs {draft.config.vocab_size}")
    tokens = _tokens(prompt, vocab)
    k = V.check_int(k, "k", 0, 64)
    max_new_tokens = V.check_int(max_new_tokens, "max_new_tokens", 0, 1 << 20)
    temperature = V.check_float(temperature, "temperature", 0.0, 1e6)
    if not callable(accept):
        raise TypeError("accept must be a function accept(p, q, draft_tokens, rng)")
    rng = V.rng(seed)
    goal = len(tokens) + max_new_tokens
    T, D = _Reader(target, tokens), _Reader(draft, tokens)
    result = SpeculativeResult(np.empty(0, np.int64), 0, 0, 0, 0, 0, [], 0)
    start = time.perf_counter()
    while len(tokens) < goal:
        n = len(tokens)
        if T.room(n) <= 0:                   # the target's window is full: move it as generate does
            T.move(n)
        if k and D.room(n) <= min(k, goal - n - 1):     # the draft moves early, to keep room for k proposals
            D.move(n)
        if T.cache is None:
            T.prefill(tokens)
            result.prefills += 1
        if k and D.cache is None:                       # k = 0 is plain decoding: the draft is not used
            D.prefill(tokens)
        # k_now proposals this round: no more than k, than the tokens still wanted, than the room left
        k_now = max(0, min(k, goal - n - 1, T.room(n) - 1, D.room(n) - 1))
        proposals, q_rows = [], []
        for _ in range(k_now):
            q_i = probabilities(D.read(tokens + proposals)[-1], temperature)
            proposals.append(_sample(q_i, rng))
            q_rows.append(q_i)
        result.draft_calls += k_now
        p = probabilities(T.read(tokens + proposals), temperature)        # (k_now + 1, vocab), ONE call
        result.target_calls += 1
        q = np.array(q_rows).reshape(k_now, p.shape[1])
        emitted = [int(t) for t in accept(p, q, np.array(proposals, dtype=np.int64), rng)]
        kept = len(emitted) - 1
        if not 0 <= kept <= k_now or emitted[:kept] != proposals[:kept]:
            raise ValueError(f"accept returned {emitted} for the proposals {proposals}: it must return the "
                             "accepted prefix of the proposals followed by one token")
        result.proposed += k_now
        result.accepted += kept
        result.rejected += kept < k_now
        result.accepted_per_round.append(kept)
        result.proposed_per_round.append(k_now)
        tokens += emitted
        for reader in (T, D) if k else (T,):  # roll the caches back to the committed text, less its last token
            reader.keep(len(tokens) - 1)
    del tokens[goal:]
    result.tokens = np.array(tokens, dtype=np.int64)
    result.new_tokens = max_new_tokens
    result.seconds = time.perf_counter() - start
    result.target_seconds, result.draft_seconds = T.seconds, D.seconds
    result.prefill_seconds = T.prefill_seconds + D.prefill_seconds
    return result


# --------------------------------------------------------------------------------------------
# What to expect: the closed forms of Leviathan et al. (2023), section 3
# --------------------------------------------------------------------------------------------
def expected_tokens_per_call(alpha, k):
    """Expected tokens a round emits for one target call: ``(1 - alpha**(k+1)) / (1 - alpha)``.

    Each of the k proposals is kept with probability alpha, independently (the simplification of
    Leviathan et al. 2023, eq. 1), and the round always adds one token of its own: 1 + alpha +
    ... + alpha**k. alpha = 1 gives k + 1.

    Parameters
    ----------
    alpha : float or array_like in [0, 1]
    k : int >= 0

    Returns
    -------
    float, or numpy.ndarray for an array of alphas

    Examples
    --------
    >>> expected_tokens_per_call(0.5, 2), expected_tokens_per_call(1.0, 3), expected_tokens_per_call(0.0, 5)
    (1.75, 4.0, 1.0)
    """
    a = np.asarray(V.as_float_array(alpha, "alpha"), dtype=np.float64)
    if ((a < 0) | (a > 1)).any():
        raise ValueError("alpha must be in [0, 1]")
    k = V.check_int(k, "k", 0, 1 << 16)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(a < 1, (1 - a ** (k + 1)) / np.where(a < 1, 1 - a, 1.0), k + 1.0)
    return float(out) if out.ndim == 0 else out


def expected_speedup(alpha, k, cost, verify: float = 1.0):
    """Expected speedup over plain decoding: ``(1 - alpha**(k+1)) / ((1 - alpha) * (k * cost + verify))``.

    A round costs k draft calls (each ``cost`` target calls) and one target call on k+1 tokens
    (``verify`` target calls on 1 token: 1 when the target is memory-bound, as on an accelerator
    with a large model; more on a CPU with a tiny one), and emits
    :func:`expected_tokens_per_call` tokens; plain decoding emits one token per target call
    (Leviathan et al. 2023, Theorem 3.8, with ``verify`` added).

    Parameters
    ----------
    alpha : float or array_like in [0, 1]
    k : int >= 0
    cost : float >= 0
        Time of a draft call over a target call on one token.
    verify : float > 0, default 1.0
        Time of a target call on k + 1 tokens over one on a single token.

    Returns
    -------
    float, or numpy.ndarray for an array of alphas

    Examples
    --------
    >>> round(expected_speedup(0.8, 4, 0.05), 2)
    2.8
    """
    cost = V.check_float(cost, "cost", 0.0)
    verify = V.check_float(verify, "verify", 0.0, low_open=True)
    k = V.check_int(k, "k", 0, 1 << 16)
    return expected_tokens_per_call(alpha, k) / (k * cost + verify)


def break_even_cost(alpha, k, verify: float = 1.0):
    """The draft's relative cost c at which speculative decoding is exactly as fast as plain decoding.

    Setting :func:`expected_speedup` to 1: ``c = (E - verify) / k`` with ``E =
    expected_tokens_per_call(alpha, k)``. A draft cheaper than this makes decoding faster; a
    negative value means no draft, however cheap, can pay for this k (the target's verify call
    alone costs more than the tokens it gains).

    Parameters
    ----------
    alpha : float or array_like in [0, 1]
    k : int >= 1
    verify : float > 0, default 1.0

    Returns
    -------
    float, or numpy.ndarray for an array of alphas

    Examples
    --------
    >>> round(break_even_cost(0.8, 4), 3)               # E = 3.362: a draft below 0.59 of the target wins
    0.59
    """
    verify = V.check_float(verify, "verify", 0.0, low_open=True)
    k = V.check_int(k, "k", 1, 1 << 16)
    return (expected_tokens_per_call(alpha, k) - verify) / k


@dataclass(frozen=True)
class AcceptanceRate:
    """Mean acceptance probability ``beta = sum_x min(p(x), q(x))`` over text positions, with a 95 %
    Student-t interval over chunks (:func:`acceptance_rate` makes it).

    Parameters
    ----------
    value, low, high, chunk_means, positions
        The attributes below.

    Attributes
    ----------
    value, low, high : float
    chunk_means : numpy.ndarray
        Mean beta of every chunk.
    positions : int

    Examples
    --------
    >>> a = AcceptanceRate(0.8, 0.7, 0.9, np.array([0.75, 0.85]), 256)
    >>> b = AcceptanceRate(0.7, 0.6, 0.8, np.array([0.70, 0.70]), 256)
    >>> [round(x, 3) for x in a.difference_to(b)]           # paired by chunk
    [0.1, -0.535, 0.735]
    """

    value: float
    low: float
    high: float
    chunk_means: np.ndarray
    positions: int

    def difference_to(self, baseline: "AcceptanceRate") -> tuple[float, float, float]:
        """``self - baseline`` measured on the same chunks, with a paired 95 % Student-t interval.

        Returns
        -------
        (difference, low, high) : tuple of float
        """
        if not isinstance(baseline, AcceptanceRate) or baseline.chunk_means.shape != self.chunk_means.shape:
            raise ValueError("compare acceptance rates measured on the same chunks")
        m, half = _mean_and_half_width(self.chunk_means - baseline.chunk_means)
        return m, m - half, m + half

    def __repr__(self) -> str:
        return (f"AcceptanceRate({self.value:.3f}, 95% interval [{self.low:.3f}, {self.high:.3f}], "
                f"{len(self.chunk_means)} chunks, {self.positions} positions)")


def acceptance_rate(target: GPT, draft: GPT, tokens, *, temperature: float = 1.0, context: int = 128,
                    max_chunks: int | None = 32) -> AcceptanceRate:
    """How often the draft's proposal would be kept, on real text: the mean of
    ``beta_t = sum_x min(p_t(x), q_t(x))`` over positions t (Leviathan et al. 2023, Definition 3.1).

    ``beta_t`` is the probability that a token drawn from the draft's ``q_t`` is accepted by the
    rule of :func:`accept_reject` (``sum_x q(x) min(1, p(x)/q(x))``); it equals ``1 - TV(p_t,
    q_t)``. At temperature 0 it is 1 where both argmaxes agree and 0 elsewhere. Both models read
    the same chunks of ``context + 1`` tokens (teacher forcing: the text, not their own samples),
    chunks spread evenly over the stream as in :func:`compresslab.nn.perplexity`.

    Parameters
    ----------
    target, draft : compresslab.nn.GPT
    tokens : 1-D array of int
        A text, e.g. ``compresslab.data.load_text().test``.
    temperature : float >= 0, default 1.0
    context : int, default 128
    max_chunks : int, optional, default 32

    Returns
    -------
    AcceptanceRate

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16), seed=0)
    >>> acceptance_rate(m, m, np.arange(200) % 256, context=15).value      # a draft identical to the target
    1.0
    """
    for name, m in (("target", target), ("draft", draft)):
        if not isinstance(m, GPT):
            raise TypeError(f"{name} must be a compresslab.nn.GPT, got {type(m).__name__}")
    if draft.config.vocab_size != target.config.vocab_size:
        raise ValueError("target and draft must share the vocabulary")
    temperature = V.check_float(temperature, "temperature", 0.0, 1e6)
    tokens = V.as_int_array(tokens, "tokens", 0, target.config.vocab_size - 1)
    if tokens.ndim != 1:
        raise ValueError(f"tokens must be a 1-D array of token ids, got shape {tokens.shape}")
    context = V.check_int(context, "context", 1, min(target.config.block_size, draft.config.block_size))
    chunks = _chunks(tokens, context, max_chunks)
    means = np.empty(len(chunks))
    for s in range(0, len(chunks), 16):
        batch = chunks[s:s + 16, :-1]
        p = probabilities(target.forward(batch), temperature)
        q = probabilities(draft.forward(batch), temperature)
        means[s:s + len(batch)] = np.minimum(p, q).sum(axis=-1).mean(axis=1)
    m, half = _mean_and_half_width(means)
    return AcceptanceRate(m, max(0.0, m - half), min(1.0, m + half), means, len(chunks) * context)


def alpha_interval(results) -> tuple[float, float, float]:
    """Pooled acceptance rate of several runs, ``sum accepted / sum tested``, with a 95 % interval
    that treats each run (each prompt) as one independent sample.

    Acceptances within a run are not independent (the draft is right many times in a row on easy
    stretches, wrong on hard ones), so a binomial interval over proposals would be too narrow;
    the interval here is the ratio estimator's, ``alpha +- t * SE`` with
    ``SE = sqrt(n / (n - 1) * sum_i (A_i - alpha N_i)**2) / sum_i N_i`` over the n runs (A_i kept,
    N_i tested) and t Student's with n - 1 degrees of freedom.

    Parameters
    ----------
    results : sequence of SpeculativeResult
        At least two runs, each with a tested proposal.

    Returns
    -------
    (alpha, low, high) : tuple of float

    Examples
    --------
    >>> r = [SpeculativeResult(np.zeros(1), 9, 4, 8, 8, a, [], 1, n - a) for a, n in ((6, 8), (5, 8), (7, 8))]
    >>> [round(x, 3) for x in alpha_interval(r)]
    [0.75, 0.439, 1.0]
    """
    results = list(results)
    if len(results) < 2 or not all(isinstance(r, SpeculativeResult) for r in results):
        raise ValueError("need at least two SpeculativeResult runs")
    kept = np.array([r.accepted for r in results], dtype=np.float64)
    tested = np.array([r.accepted + r.rejected for r in results], dtype=np.float64)
    if tested.sum() == 0:
        raise ValueError("no proposal was tested in these runs (k = 0?)")
    alpha = kept.sum() / tested.sum()
    n = len(results)
    se = math.sqrt(n / (n - 1) * float(((kept - alpha * tested) ** 2).sum())) / tested.sum()
    half = _t975(n - 1) * se
    return float(alpha), float(max(0.0, alpha - half)), float(min(1.0, alpha + half))


def sweep(target: GPT, drafts: dict, prompts, ks=range(1, 9), temperatures=(0.0, 1.0), max_new_tokens: int = 48,
          seed: int = 0) -> list[dict]:
    """Run speculative decoding for every draft, temperature and k on the same prompts, timing each
    run against plain decoding (:func:`compresslab.nn.generate`) once.

    Per (draft, temperature, k), summed over the prompts: the measured acceptance rate
    (:attr:`SpeculativeResult.alpha`, kept / tested proposals), tokens per
    target call, the closed form :func:`expected_tokens_per_call` at that acceptance rate, and the
    wall-clock time of speculative and of plain decoding of the same prompts (one run each,
    interleaved prompt by prompt: a quick, noisy picture; :func:`compresslab.speed.compare`
    measures one setting properly). Lesson 07's widget shows these rows.

    Parameters
    ----------
    target : GPT
    drafts : dict of {str: GPT}
    prompts : sequence of (sequence of int or str)
    ks : iterable of int, default 1..8
    temperatures : iterable of float, default (0.0, 1.0)
    max_new_tokens : int, default 48
    seed : int, default 0
        Run j of a sampled setting uses seed ``seed + j``.

    Returns
    -------
    list of dict
        Keys: draft, temperature, k, alpha, tokens_per_call, expected_tokens_per_call, seconds,
        plain_seconds, speedup (plain / speculative), new_tokens, target_calls, draft_calls.

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> t = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32), seed=0)
    >>> rows = sweep(t, {"itself": t}, [[1, 2, 3]], ks=[2], temperatures=[0.0], max_new_tokens=9)
    >>> rows[0]["alpha"], rows[0]["tokens_per_call"]             # the target as its own draft
    (1.0, 3.0)
    """
    from .nn.gpt import generate

    if not isinstance(drafts, dict) or not drafts:
        raise ValueError("drafts must be a non-empty dict {name: GPT}")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts must hold at least one prompt")
    ks = [V.check_int(k, "k", 1, 64) for k in ks]
    temperatures = [V.check_float(t, "temperature", 0.0, 1e6) for t in temperatures]
    rows = []
    for temp in temperatures:
        acc = {(name, k): [0, 0, 0, 0, 0, 0.0, 0.0] for name in drafts for k in ks}   # see `a` below
        for j, prompt in enumerate(prompts):
            t0 = time.perf_counter()
            generate(target, prompt, max_new_tokens, temperature=temp, seed=seed + j)
            plain = time.perf_counter() - t0
            for name, draft in drafts.items():
                for k in ks:
                    t0 = time.perf_counter()
                    r = speculative_generate(target, draft, prompt, k, max_new_tokens, temperature=temp,
                                             seed=seed + j)
                    a = acc[name, k]      # tested, accepted, new, target calls, draft calls, s, plain s
                    a[0] += r.accepted + r.rejected
                    a[1] += r.accepted
                    a[2] += r.new_tokens
                    a[3] += r.target_calls
                    a[4] += r.draft_calls
                    a[5] += time.perf_counter() - t0
                    a[6] += plain
        for (name, k), (tested, accepted, new, calls, dcalls, secs, plain) in acc.items():
            alpha = accepted / tested if tested else float("nan")
            rows.append({"draft": name, "temperature": temp, "k": k, "alpha": alpha,
                         "tokens_per_call": new / calls if calls else float("nan"),
                         "expected_tokens_per_call": expected_tokens_per_call(alpha, k) if tested else float("nan"),
                         "seconds": secs, "plain_seconds": plain, "speedup": plain / secs if secs else float("nan"),
                         "new_tokens": new, "target_calls": calls, "draft_calls": dcalls})
    return rows


@dataclass(frozen=True)
class CallCosts:
    """Measured cost of one forward call, in seconds (medians), and the two ratios that decide the speedup.

    Parameters
    ----------
    target, draft, verify, comparison
        The attributes below (:func:`measure_call_costs` measures them).

    Attributes
    ----------
    target : float
        The target on 1 new token (one step of plain decoding).
    draft : float
        The draft on 1 new token.
    verify : dict of {int: float}
        The target on k+1 new tokens, for each k.
    comparison : compresslab.speed.Comparison
        The interleaved measurement behind them.

    Examples
    --------
    >>> c = CallCosts(target=3e-4, draft=9e-5, verify={4: 5.7e-4}, comparison=None)
    >>> round(c.cost, 2), round(c.verify_ratio(4), 2)
    (0.3, 1.9)
    """

    target: float
    draft: float
    verify: dict
    comparison: Any

    @property
    def cost(self) -> float:
        """c = draft / target: the draft's relative cost per call."""
        return self.draft / self.target

    def verify_ratio(self, k: int) -> float:
        """v(k) = (target on k+1 tokens) / (target on 1): 1 if reading k more tokens were free."""
        return self.verify[k] / self.target


def measure_call_costs(target: GPT, draft: GPT, context: int = 128, ks=(1, 2, 4, 8), *, repeat: int = 9,
                       tokens=None) -> CallCosts:
    """Time one forward call of the target on 1 and on k+1 new tokens, and of the draft on 1, each
    continuing a KV cache already holding ``context`` tokens (what a decoding step does), all
    interleaved in one :func:`compresslab.speed.compare` run.

    Parameters
    ----------
    target, draft : GPT
    context : int, default 128
        Tokens already in the caches.
    ks : iterable of int, default (1, 2, 4, 8)
    repeat : int >= 3, default 9
        Interleaved rounds.
    tokens : 1-D array of int, optional
        The text the caches hold (default: bytes 0, 1, 2, ...; the cost does not depend on them).

    Returns
    -------
    CallCosts

    Examples
    --------
    >>> from compresslab.nn import GPT, GPTConfig
    >>> t = GPT(GPTConfig(n_layer=4, n_head=2, n_embd=32, block_size=32), seed=0)
    >>> d = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32), seed=1)
    >>> costs = measure_call_costs(t, d, context=16, ks=(2,), repeat=3)
    >>> sorted(costs.verify), costs.cost < 1                    # a 1-layer draft is cheaper than 4 layers
    ([2], True)
    """
    from .speed import compare

    ks = sorted({V.check_int(k, "k", 1, 64) for k in ks})
    context = V.check_int(context, "context", 1)
    if context + max(ks) + 1 > min(target.config.block_size, draft.config.block_size):
        raise ValueError(f"context + k + 1 = {context + max(ks) + 1} does not fit the models' context windows")
    text = np.arange(context + max(ks) + 1) % target.config.vocab_size if tokens is None else \
        V.as_int_array(tokens, "tokens", 0, target.config.vocab_size - 1)[:context + max(ks) + 1]

    def step(model: GPT, n: int):
        cache = KVCache(model.config)
        model.forward(text[None, :context], cache)
        new = text[None, context:context + n]

        def call():
            model.forward(new, cache)
            cache.truncate(context)
        return call

    fns = {"target, 1 token": step(target, 1), "draft, 1 token": step(draft, 1)}
    fns.update({f"target, {k + 1} tokens": step(target, k + 1) for k in ks})
    c = compare(fns, repeat=repeat, warmup=2, number="auto")
    med = {name: t.median for name, t in c.timings.items()}
    return CallCosts(med["target, 1 token"], med["draft, 1 token"],
                     {k: med[f"target, {k + 1} tokens"] for k in ks}, c)
