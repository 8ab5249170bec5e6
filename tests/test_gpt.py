"""The small GPT of compresslab.nn: equal to torch's TransformerEncoderLayer network, KV cache equal
to the full forward, generation, perplexity, the corpus and the shipped weights."""
from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compresslab.nn as nn
from compresslab import data

SMALL = nn.GPTConfig(n_layer=2, n_head=4, n_embd=32, block_size=24)


def noisy(config=SMALL, seed=1):
    """A random model whose LayerNorms and biases are not the trivial 1 / 0 either."""
    m = nn.GPT(config, seed=seed)
    g = np.random.default_rng(seed)
    m.load_state_dict({k: v + 0.1 * g.standard_normal(v.shape).astype(np.float32)
                       for k, v in m.state_dict().items()})
    return m


def as_float64(m):
    for obj, attr in m._slots().values():
        setattr(obj, attr, getattr(obj, attr).astype(np.float64))
    return m


@pytest.fixture(scope="module")
def shipped():
    return nn.load(os.path.join(os.path.dirname(nn.__file__), "..", "datasets", "tiny_gpt.npz"))


# -- torch as the oracle -------------------------------------------------------------------
def test_forward_equals_torch_on_the_shipped_weights(torch, shipped):
    t = nn.to_torch(shipped).double()
    tokens = data.load_text().test[:3 * 256].reshape(3, 256)
    ref = t(torch.from_numpy(tokens)).detach().numpy()
    np.testing.assert_allclose(as_float64(shipped.copy())(tokens), ref, rtol=1e-5, atol=0)
    # float32 against float32 torch: the same within float32 rounding
    ref32 = nn.to_torch(shipped)(torch.from_numpy(tokens)).detach().numpy()
    np.testing.assert_allclose(shipped(tokens), ref32, rtol=1e-4, atol=1e-4)


def test_forward_equals_torch_random_weights(torch):
    m = noisy()
    tokens = np.random.default_rng(0).integers(0, 256, (3, 20))
    ref = nn.to_torch(m).double()(torch.from_numpy(tokens)).detach().numpy()
    np.testing.assert_allclose(as_float64(m.copy())(tokens), ref, rtol=1e-5)
    # the conversion is exact both ways
    back = nn.from_torch(nn.to_torch(m))
    assert all(np.array_equal(back.state_dict()[k], v) for k, v in m.state_dict().items())


def test_a_wrong_layer_would_be_caught(torch):
    """The oracle test can fail: a LayerNorm with another epsilon changes the logits beyond rtol 1e-5."""
    m = noisy()
    tokens = np.random.default_rng(0).integers(0, 256, (1, 10))
    ref = nn.to_torch(m)(torch.from_numpy(tokens)).detach().numpy()
    m.blocks[0].ln1.eps = 1e-1
    assert not np.allclose(m(tokens), ref, rtol=1e-5, atol=1e-6)


def test_perplexity_equals_torch_cross_entropy(torch):
    m = noisy()
    tokens = np.random.default_rng(2).integers(0, 256, 200)
    p = nn.perplexity(m, tokens, context=16, batch_size=3)
    chunks = torch.from_numpy(tokens[:11 * 17].reshape(11, 17))
    logits = nn.to_torch(m).double()(chunks[:, :-1])
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), chunks[:, 1:].reshape(-1))
    assert p.tokens == 11 * 16 and len(p.chunk_nll) == 11
    assert p.value == pytest.approx(math.exp(ce.item()), rel=1e-6)
    assert p.low < p.value < p.high


# -- the KV cache ----------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(split=st.integers(1, 23), seed=st.integers(0, 10))
def test_cache_decoding_equals_the_full_forward(split, seed):
    m = noisy()
    tokens = np.random.default_rng(seed).integers(0, 256, (2, 24))
    cache = nn.KVCache(SMALL, batch=2)
    parts = [m(tokens[:, :split], cache)]
    for j in range(split, 24):
        parts.append(m(tokens[:, j:j + 1], cache))
    assert cache.length == 24
    np.testing.assert_allclose(np.concatenate(parts, axis=1), m(tokens), rtol=1e-5, atol=1e-5)


def test_cache_on_the_shipped_model(shipped):
    tokens = data.load_text().validation[:200]
    cache = nn.KVCache(shipped.config)
    parts = [shipped(tokens[None, :50], cache)] + [shipped(tokens[None, j:j + 1], cache) for j in range(50, 200)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), shipped(tokens[None]), rtol=1e-4, atol=1e-4)


def test_int8_cache_equals_int8_kv_forward_and_is_smaller():
    m = noisy()
    tokens = np.random.default_rng(3).integers(0, 256, (1, 24))
    full32 = m(tokens)
    m.kv_bits = 8
    full8 = m(tokens)
    cache = nn.KVCache(SMALL, bits=8)
    m.kv_bits = None
    parts = [m(tokens[:, :5], cache)] + [m(tokens[:, j:j + 1], cache) for j in range(5, 24)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full8, rtol=1e-5, atol=1e-5)
    assert not np.allclose(full8, full32, atol=1e-6)          # int8 changes something...
    assert np.abs(full8 - full32).max() < 0.05                 # ...but little
    f32 = nn.KVCache(SMALL).nbytes
    assert nn.KVCache(SMALL, bits=8).nbytes == f32 // 4 + f32 // SMALL.head_dim  # int8 + one fp32 scale per vector


def test_quantize_kv_round_trip_error_is_half_a_step():
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 8)).astype(np.float32)
    q, s = nn.quantize_kv(x)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    assert np.all(np.abs(q * s - x) <= s / 2 + 1e-7)
    with pytest.raises(ValueError, match="x contains NaN"):
        nn.quantize_kv(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="beyond float32"):       # a float32 scale would be inf
        nn.quantize_kv(np.array([1e300, 1.0]))


def test_cache_truncate_rolls_back():
    m = noisy()
    tokens = np.random.default_rng(4).integers(0, 256, (1, 12))
    cache = nn.KVCache(SMALL)
    m(tokens[:, :8], cache)
    cache.truncate(5)
    out = m(tokens[:, 5:12], cache)
    np.testing.assert_allclose(out, m(tokens)[:, 5:], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        cache.truncate(99)


# -- generation ------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (1.0, None), (0.8, 5)])
def test_generate_with_and_without_cache_agree_also_past_the_window(temperature, top_k):
    m = noisy()
    kw = dict(temperature=temperature, top_k=top_k, seed=7)
    a = nn.generate(m, [1, 2, 3], 60, use_cache=True, **kw)     # 63 tokens > block_size 24
    b = nn.generate(m, [1, 2, 3], 60, use_cache=False, **kw)
    assert len(a) == 63 and np.array_equal(a, b)
    assert np.array_equal(a, nn.generate(m, [1, 2, 3], 60, use_cache=True, **kw))   # seeded


def test_greedy_is_the_argmax_and_top_k_one_is_greedy():
    m = noisy()
    out = nn.generate(m, [5, 6], 1, temperature=0)
    assert out[-1] == np.argmax(m(np.array([[5, 6]]))[0, -1])
    greedy = nn.generate(m, [5, 6], 10, temperature=0)
    assert np.array_equal(nn.generate(m, [5, 6], 10, temperature=1.0, top_k=1), greedy)


def test_sampling_follows_the_softmax():
    """Many one-token samples: their frequencies match softmax(logits / T) (chi-square)."""
    from scipy import stats
    m = nn.GPT(nn.GPTConfig(n_layer=1, n_head=1, n_embd=8, block_size=4, vocab_size=5), seed=0)
    m.tok_emb.weight *= 40                       # a peaked, non-uniform distribution
    logits = m(np.array([[1]]))[0, -1].astype(np.float64)
    p = np.exp(logits / 0.7 - (logits / 0.7).max())
    p /= p.sum()
    g = np.random.default_rng(0)
    counts = np.bincount([nn.generate(m, [1], 1, temperature=0.7, seed=g)[-1] for _ in range(3000)], minlength=5)
    keep = p * 3000 >= 5
    assert stats.chisquare(counts[keep], p[keep] / p[keep].sum() * counts[keep].sum()).pvalue > 1e-3


def test_bad_arguments():
    m = noisy()
    with pytest.raises(ValueError, match="tokens"):
        m(np.array([[1, 300]]))
    with pytest.raises(ValueError, match="block_size"):
        m(np.zeros((1, 25), int))
    with pytest.raises(ValueError, match="temperature"):
        nn.generate(m, [1], 3, temperature=-1)
    with pytest.raises(ValueError, match="prompt"):
        nn.generate(m, [], 3)
    with pytest.raises(ValueError, match=r"prompt must lie in \[0, 255\]"):
        nn.generate(m, [1, 999], 3)
    with pytest.raises(ValueError, match="kv_bits"):
        nn.generate(m, [1], 3, kv_bits=4)
    with pytest.raises(ValueError, match="max_len"):
        nn.KVCache(SMALL, max_len=SMALL.block_size + 1)
    with pytest.raises(ValueError):
        nn.GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="tokens"):
        nn.perplexity(m, np.arange(10))
    with pytest.raises(ValueError, match="bits"):
        nn.KVCache(SMALL, bits=4)


def test_linear_inputs_are_what_each_layer_reads():
    m = noisy()
    tokens = np.random.default_rng(5).integers(0, 256, (2, 10))
    X = m.linear_inputs(tokens)
    assert list(X) == list(m.linear_layers())
    h0 = m.tok_emb(tokens) + m.pos_emb[:10]
    np.testing.assert_allclose(X["blocks.0.attn.qkv"], m.blocks[0].ln1(h0).reshape(20, -1), rtol=1e-6)
    assert X["blocks.1.mlp.fc2"].shape == (20, 4 * 32)
    assert "forward" not in vars(m.blocks[0].attn.qkv)          # the recorders are gone
    np.testing.assert_array_equal(m(tokens), noisy()(tokens))


def test_save_load_round_trip_and_tamper(tmp_path):
    m = noisy()
    path = tmp_path / "g.npz"
    nn.save(m, path, extra={"note": np.arange(2)})
    back, extra = nn.load_with_extra(path)
    assert isinstance(back, nn.GPT) and back.config == m.config and extra["note"].tolist() == [0, 1]
    assert all(np.array_equal(back.state_dict()[k], v) for k, v in m.state_dict().items())
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        nn.load(path)


def test_a_file_declaring_a_huge_gpt_is_refused_before_allocation(tmp_path):
    path = tmp_path / "g.npz"
    nn.save(noisy(), path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__sha256__"}
    arch = json.loads(str(arrays["__arch__"]))           # 65536 wide: 200 GB of weights
    arrays["__arch__"] = np.array(json.dumps({**arch, "n_embd": 65536, "n_head": 1}))
    arrays["__sha256__"] = np.array(nn._digest(arrays))
    np.savez_compressed(path, **arrays)
    with pytest.raises(ValueError, match="2 GiB of float32"):
        nn.load(path)


# -- the corpus and the shipped model ----------------------------------------------------------
def test_corpus_parts_are_whole_disjoint_files():
    c = data.load_text()
    assert c.release == "3.11.7"
    files = [set(f) for f in c.files.values()]
    assert sum(map(len, files)) == len(set.union(*files)) == 148
    text = data.decode(c.test)
    assert all(f"# {name}\n" in text for name in c.files["test"])
    assert len(c.train) + len(c.validation) + len(c.test) <= 3_000_000


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_byte_tokenizer_round_trips(text):
    assert data.decode(data.encode(text)) == text


def test_shipped_model_is_small_trained_and_documented(shipped):
    path = os.path.join(os.path.dirname(data.__file__), "datasets", "tiny_gpt.npz")
    assert os.path.getsize(path) <= 8 * 2 ** 20
    _, extra = nn.load_with_extra(path)
    here = os.path.join(os.path.dirname(data.__file__), "datasets", "PYSTDLIB_PROVENANCE.txt")
    text = open(here, encoding="utf-8").read()
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert digest in text, "record the shipped model's SHA-256 in PYSTDLIB_PROVENANCE.txt"
    stated = float(extra["validation_perplexity"])       # measured by the training script on all 860 chunks
    assert f"{stated:.2f}" in text                        # ... and stated in the provenance file
    ppl = nn.perplexity(shipped, data.load_text().validation, max_chunks=48)   # a quick re-measurement
    assert ppl.low < stated * 1.15 and ppl.high > stated / 1.15
    assert ppl.value < 6                                  # a trained model, not 256 (uniform)


@pytest.mark.parametrize("kind", nn.DRAFTS)
def test_shipped_drafts_are_small_trained_and_documented(kind):
    path = os.path.join(os.path.dirname(data.__file__), "datasets", f"draft_{kind}.npz")
    assert os.path.getsize(path) <= 2 * 2 ** 20
    draft, extra = nn.load_with_extra(path)
    text = open(os.path.join(os.path.dirname(path), "PYSTDLIB_PROVENANCE.txt"), encoding="utf-8").read()
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() in text
    assert f"{float(extra['validation_perplexity']):.2f}" in text
    assert ("kd_teacher" in extra) == (kind == "distilled")
    assert draft.config.n_layer == 1 and draft.num_params() == 264064
    curve = extra["curve_validation_loss"]
    assert len(curve) == 9 and curve[-1] < curve[0] - 0.5          # the loss went down
    assert nn.perplexity(draft, data.load_text().validation, max_chunks=16).value < 7


def test_max_chunks_are_spread_over_the_whole_stream():
    m = noisy()
    tokens = np.random.default_rng(6).integers(0, 256, 25 * 10)
    full = nn.perplexity(m, tokens, context=24)
    part = nn.perplexity(m, tokens, context=24, max_chunks=4)
    assert len(full.chunk_nll) == 10 and len(part.chunk_nll) == 4
    np.testing.assert_array_equal(part.chunk_nll, full.chunk_nll[[0, 3, 6, 9]])   # first, ..., last
    assert nn.perplexity(m, tokens, context=24, max_chunks=99).tokens == full.tokens


def test_intervals_use_students_t():
    from scipy import stats

    from compresslab.nn.gpt import _t975
    for df in (1, 2, 3, 5, 10, 23, 100, 10_000):
        assert _t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=4e-3 if df == 3 else 1e-3)
    m = noisy()
    p = nn.perplexity(m, np.random.default_rng(7).integers(0, 256, 25 * 6), context=24)
    se = p.chunk_nll.std(ddof=1) / math.sqrt(6)
    assert p.high == pytest.approx(math.exp(p.chunk_nll.mean() + stats.t.ppf(0.975, 5) * se), rel=1e-4)


def test_model_kv_bits_is_honoured_with_a_float_cache_and_by_generate():
    m = noisy()
    tokens = np.random.default_rng(8).integers(0, 256, (1, 20))
    m.kv_bits = 8
    full8 = m(tokens)
    cache = nn.KVCache(SMALL)                                   # a float32 cache
    parts = [m(tokens[:, :7], cache)] + [m(tokens[:, j:j + 1], cache) for j in range(7, 20)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full8, rtol=1e-5, atol=1e-5)
    a = nn.generate(m, [1, 2], 15, temperature=0)
    m.kv_bits = None
    assert np.array_equal(a, nn.generate(m, [1, 2], 15, temperature=0, kv_bits=8))
