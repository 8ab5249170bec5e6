"""compresslab.encode: every encoder round-trips, sizes are the bytes produced, files self-check."""
from __future__ import annotations

import heapq
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import compresslab as cl
from compresslab import encode as E

FAST = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------------------------
# bit packing
# --------------------------------------------------------------------------------------------
@FAST
@given(st.integers(1, 20).flatmap(lambda b: st.tuples(
    st.just(b), st.lists(st.integers(0, 2 ** b - 1), max_size=200))))
def test_pack_bits_round_trip_and_size(case):
    bits, values = case
    data = E.pack_bits(values, bits)
    assert data.dtype == np.uint8
    assert data.size == math.ceil(len(values) * bits / 8)
    assert E.unpack_bits(data, bits, len(values)).tolist() == values


def test_pack_bits_layout_is_msb_first():
    assert E.pack_bits([1, 2, 3], 2).tolist() == [0b01101100]
    assert E.pack_bits([5], 3).tolist() == [0b10100000]
    # numpy's own packbits on the explicit bit string agrees
    vals = np.array([3, 0, 7, 1, 6])
    bitstr = "".join(format(v, "03b") for v in vals)
    ref = np.packbits(np.array([int(c) for c in bitstr], dtype=np.uint8))
    assert E.pack_bits(vals, 3).tolist() == ref.tolist()


def test_pack_bits_errors():
    with pytest.raises(ValueError, match="values must be < 2\\*\\*bits"):
        E.pack_bits([4], 2)
    with pytest.raises(ValueError, match="bits"):
        E.pack_bits([1], 0)
    with pytest.raises(ValueError, match="non-negative"):
        E.pack_bits([-1], 3)
    with pytest.raises(ValueError, match="bytes"):
        E.unpack_bits(np.zeros(1, np.uint8), 5, 2)


# --------------------------------------------------------------------------------------------
# relative indices with filler zeros
# --------------------------------------------------------------------------------------------
def test_relative_index_matches_paper_figure():
    # Han, Mao & Dally 2016, Fig. 2 (3-bit index): non-zeros at 1, 4, 15 -> a filler at 12.
    w = np.zeros(16)
    w[[1, 4, 15]] = [3.4, 0.9, 1.7]
    values, gaps = E.relative_index_encode(w, 3)
    assert values.tolist() == [3.4, 0.9, 0.0, 1.7]
    assert gaps.tolist() == [1, 2, 7, 2]
    positions = np.cumsum(gaps + 1) - 1
    assert positions.tolist() == [1, 4, 12, 15]


def _reference_relative(flat, bits):
    """The obvious loop: walk the array, count zeros, emit a filler when the count is full."""
    max_gap = 2 ** bits - 1
    values, gaps, run = [], [], 0
    for x in flat:
        if x != 0:
            values.append(x)
            gaps.append(run)
            run = 0
        elif run == max_gap:
            values.append(0.0)
            gaps.append(max_gap)
            run = 0
        else:
            run += 1
    return values, gaps


@FAST
@given(st.integers(1, 6), hnp.arrays(np.float32, st.integers(0, 300),
                                     elements=st.sampled_from([0.0, 0.0, 0.0, 0.0, 1.5, -2.25])))
def test_relative_index_round_trip_and_loop_reference(bits, w):
    values, gaps = E.relative_index_encode(w, bits)
    assert gaps.min(initial=0) >= 0 and gaps.max(initial=0) <= 2 ** bits - 1
    ref_v, ref_g = _reference_relative(w, bits)
    # the loop also emits fillers for trailing zero runs; the encoder stops at the last non-zero
    last = len(ref_v)
    while last and ref_v[last - 1] == 0:
        last -= 1
    assert values.tolist() == ref_v[:last] and gaps.tolist() == ref_g[:last]
    np.testing.assert_array_equal(E.relative_index_decode(values, gaps, w.shape), w)


@pytest.mark.parametrize("w", [np.zeros(0), np.zeros(37), np.zeros((3, 4))])
def test_relative_index_empty_and_all_zeros(w):
    values, gaps = E.relative_index_encode(w, 2)
    assert values.size == 0 and gaps.size == 0
    np.testing.assert_array_equal(E.relative_index_decode(values, gaps, w.shape), w)


def test_relative_index_single_and_overflow():
    w = np.array([2.0])
    v, g = E.relative_index_encode(w, 1)
    assert v.tolist() == [2.0] and g.tolist() == [0]
    w = np.zeros(100)
    w[-1] = 1.0                              # 99 zeros, 2-bit gaps: 24 fillers (each covers 4)
    v, g = E.relative_index_encode(w, 2)
    assert v.size == 99 // 4 + 1 and (v[:-1] == 0).all() and g[-1] == 99 % 4
    np.testing.assert_array_equal(E.relative_index_decode(v, g, 100), w)


def test_relative_index_torch_kind(torch):
    w = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 2.0])
    v, g = E.relative_index_encode(w, 1)
    assert isinstance(v, torch.Tensor) and isinstance(g, torch.Tensor)
    assert torch.equal(E.relative_index_decode(v, g, (6,)), w)


def test_relative_index_decode_errors():
    with pytest.raises(ValueError, match="past the end"):
        E.relative_index_decode(np.ones(2), np.array([3, 3]), 5)
    with pytest.raises(ValueError, match="differ in length"):
        E.relative_index_decode(np.ones(2), np.array([1]), 5)


@FAST
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=20),
                  elements=st.sampled_from([0.0, 0.0, 1.0, -3.5])))
def test_csr_round_trip_and_against_scipy(w):
    c = E.csr_encode(w)
    np.testing.assert_array_equal(E.csr_decode(c), w)
    assert c.nbytes == 4 * (2 * np.count_nonzero(w) + w.shape[0] + 1)
    sp = pytest.importorskip("scipy.sparse")
    ref = sp.csr_matrix(w)
    ref.sort_indices()
    assert c.indptr.tolist() == ref.indptr.tolist() and c.indices.tolist() == ref.indices.tolist()


# --------------------------------------------------------------------------------------------
# Huffman
# --------------------------------------------------------------------------------------------
def _optimal_cost(freqs):
    """Cost (total bits) of an optimal prefix code: the sum of all merged weights."""
    h = [f for f in freqs if f > 0]
    if len(h) == 1:
        return h[0]
    heapq.heapify(h)
    cost = 0
    while len(h) > 1:
        a, b = heapq.heappop(h), heapq.heappop(h)
        cost += a + b
        heapq.heappush(h, a + b)
    return cost


symbol_lists = st.integers(1, 40).flatmap(
    lambda k: st.tuples(st.just(k), st.lists(st.integers(0, k - 1), max_size=400)))


@FAST
@given(symbol_lists)
def test_huffman_round_trip_optimal_and_prefix_free(case):
    k, symbols = case
    data, code = E.huffman_encode(symbols, alphabet_size=k)
    assert code.alphabet_size == k
    assert E.huffman_decode(data, code, len(symbols)).tolist() == symbols
    bits = code.encoded_bits(symbols)
    assert data.size == math.ceil(bits / 8)                 # size is the bytes produced
    freqs = np.bincount(symbols, minlength=k) if symbols else np.zeros(k, int)
    if symbols:
        assert bits == _optimal_cost(freqs.tolist())         # Huffman is optimal
    table = code.table()
    words = list(table.values())
    assert all(not b.startswith(a) for a in words for b in words if a != b)   # prefix-free
    assert set(table) == set(np.flatnonzero(freqs).tolist())
    # decoding from the stored lengths alone (the table in the file) gives the same symbols
    assert E.huffman_decode(data, E.HuffmanCode(code.lengths.copy()), len(symbols)).tolist() == symbols


def test_huffman_edge_cases():
    data, code = E.huffman_encode([], alphabet_size=4)
    assert data.size == 0 and E.huffman_decode(data, code, 0).size == 0
    data, code = E.huffman_encode([3] * 17, alphabet_size=5)        # one symbol: 1 bit each
    assert code.lengths.tolist() == [0, 0, 0, 1, 0] and data.size == 3
    assert E.huffman_decode(data, code, 17).tolist() == [3] * 17
    data, code = E.huffman_encode([0] * 1000)                         # all zeros
    assert data.size == 125 and E.huffman_decode(data, code, 1000).sum() == 0


def test_huffman_canonical_codes():
    # lengths (2, 1, 3, 3) -> canonical: B=0, A=10, C=110, D=111 (RFC 1951, 3.2.2)
    code = E.HuffmanCode(np.array([2, 1, 3, 3]))
    assert code.table() == {0: "10", 1: "0", 2: "110", 3: "111"}
    # classic textbook counts: a 45, b 13, c 12, d 16, e 9, f 5 (CLRS 16.3) cost 224 bits
    freqs = [45, 13, 12, 16, 9, 5]
    code = E.huffman_code(freqs=freqs)
    assert code.lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert int(np.dot(freqs, code.lengths)) == 224


def test_huffman_long_codes_fibonacci():
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    symbols = np.repeat(np.arange(30), fib[:30])[:: 997]              # skewed, long codes
    code = E.huffman_code(freqs=fib)
    assert code.lengths.max() == 29
    data, _ = E.huffman_encode(symbols, code)
    assert E.huffman_decode(data, code, symbols.size).tolist() == symbols.tolist()


def test_huffman_errors():
    data, code = E.huffman_encode([0, 1, 1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="truncated|ended"):
        E.huffman_decode(data[:0], code, 7)
    with pytest.raises(ValueError, match="no code"):
        E.huffman_encode([3], code)
    with pytest.raises(ValueError, match="Kraft"):
        E.HuffmanCode(np.array([1, 1, 1]))
    # an incomplete code: "11" matches nothing
    with pytest.raises(ValueError, match="invalid code word"):
        E.huffman_decode(np.array([0b11000000], np.uint8), E.HuffmanCode(np.array([1, 2])), 1)


# --------------------------------------------------------------------------------------------
# whole models and files
# --------------------------------------------------------------------------------------------
def _pruned_shared(seed=0, sparsity=0.9, k=8):
    """An MLP whose weights are sparse and take k shared values per layer (built directly)."""
    g = np.random.default_rng(seed)
    m = cl.nn.mlp((16, 40, 20, 5), seed=seed)
    for layer in m.layers:
        if isinstance(layer, cl.nn.Linear):
            w = layer.weight
            book = np.sort(g.normal(size=k)).astype(np.float32)
            p = 0.6 ** np.arange(k)                      # skewed use of the codebook, as after
            w[...] = book[g.choice(k, size=w.shape, p=p / p.sum())]   # k-means on real weights
            w[g.random(w.shape) < sparsity] = 0
    return m


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("opts", [
    dict(sparse=False, codebook=False, huffman=False),
    dict(sparse=True, codebook=False, huffman=False),
    dict(sparse=True, codebook=True, huffman=False),
    dict(sparse=True, codebook=True, huffman=True, gap_bits=2),
    dict(sparse=False, codebook=True, huffman=True),
    dict(),  # auto
])
def test_pack_model_round_trip_exact(opts, tmp_path):
    m = _pruned_shared()
    cm = E.pack_model(m, **opts)
    assert _same_weights(cm.to_model(), m)
    size = E.save(cm, tmp_path / "m.npz")
    assert size == os.path.getsize(tmp_path / "m.npz") == E.file_size(cm)
    back = E.load(tmp_path / "m.npz")
    assert _same_weights(back, m)
    X = np.random.default_rng(1).random((7, 16), dtype=np.float32)
    np.testing.assert_array_equal(cl.nn.predict(back, X), cl.nn.predict(m, X))
    assert sum(r["bytes"] for r in cm.breakdown()) == cm.nbytes


def test_sizes_are_bytes_produced():
    m = _pruned_shared(sparsity=0.8, k=8)
    dense = E.pack_model(m, sparse=False, codebook=False, huffman=False)
    assert dense.nbytes == cl.nn.nbytes(m)                       # 4 bytes per parameter
    packed = E.pack_model(m, sparse=True, codebook=True, huffman=False, gap_bits=4)
    expect = 0
    for _name, layer, attr in m.named_parameters():
        w = getattr(layer, attr)
        if attr == "bias":
            expect += w.size * 4
            continue
        values, gaps = E.relative_index_encode(w, 4)
        alphabet = np.unique(w[w != 0]).size + int((values == 0).any())
        bits = max(1, math.ceil(math.log2(alphabet)))
        expect += 4 * np.unique(w[w != 0]).size + math.ceil(values.size * bits / 8) \
            + math.ceil(values.size * 4 / 8)
    assert packed.nbytes == expect
    huff = E.pack_model(m, sparse=True, codebook=True, huffman=True, gap_bits=4)
    assert huff.nbytes < packed.nbytes < dense.nbytes
    auto = E.pack_model(m, sparse=True, codebook=True, huffman="auto", gap_bits=4)
    assert auto.nbytes <= min(huff.nbytes, packed.nbytes)


def test_codebook_true_requires_quantized_weights():
    m = cl.nn.mlp((20, 30, 4))
    with pytest.raises(ValueError, match="quantize it first"):
        E.pack_model(m, codebook=True, max_codebook_bits=4)
    assert _same_weights(E.pack_model(m).to_model(), m)      # auto falls back to float32


def test_float16_biases(tmp_path):
    m = _pruned_shared()
    E.save(m, tmp_path / "h.npz", bias_dtype="float16")
    back = E.load(tmp_path / "h.npz")
    for (_, l, a), (_, l2, a2) in zip(m.named_parameters(), back.named_parameters()):
        want = getattr(l, a).astype(np.float16).astype(np.float32) if a == "bias" else getattr(l, a)
        np.testing.assert_array_equal(getattr(l2, a2), want)


def test_conv_model_round_trip(tmp_path):
    m = cl.nn.cnn(seed=0)
    for layer in m.layers:
        if hasattr(layer, "weight"):
            layer.weight[np.abs(layer.weight) < 0.1] = 0
    E.save(m, tmp_path / "c.npz")
    assert _same_weights(E.load(tmp_path / "c.npz"), m)


def test_corrupt_truncated_and_foreign_files(tmp_path):
    p = tmp_path / "m.npz"
    E.save(_pruned_shared(), p)
    raw = bytearray(p.read_bytes())
    # truncated
    (tmp_path / "t.npz").write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(ValueError, match="truncated|corrupt"):
        E.load(tmp_path / "t.npz")
    # one payload byte flipped, zip CRC patched so only our checksum can notice
    blob = E.load_packed(p).to_bytes()
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF
    q = tmp_path / "flip.npz"
    np.savez(q, compresslab=np.frombuffer(bytes(bad), np.uint8))
    with pytest.raises(ValueError, match="checksum"):
        E.load(q)
    # a byte flipped in the raw file (zip CRC or our checksum catches it)
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "f2.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        E.load(tmp_path / "f2.npz")
    # an ordinary model file is not a compressed model
    cl.nn.save(cl.nn.mlp((3, 2)), tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="single uint8 array"):
        E.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        E.load(tmp_path / "missing.npz")


def test_pack_model_argument_errors():
    m = cl.nn.mlp((3, 2))
    with pytest.raises(ValueError, match="sparse"):
        E.pack_model(m, sparse="yes")
    with pytest.raises(ValueError, match="gap_bits"):
        E.pack_model(m, gap_bits=0)
    with pytest.raises(ValueError, match="bias_dtype"):
        E.pack_model(m, bias_dtype="int8")
    with pytest.raises(TypeError, match="Sequential"):
        E.pack_model(np.zeros(3))
    m.layers[0].weight[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        E.pack_model(m)
