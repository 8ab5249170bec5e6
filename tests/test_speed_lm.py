"""compresslab.speed.lm: KV-cache bytes against closed forms and real arrays, the decode bound,
and the int8 weight-only Linear against the float computation it replaces (torch tests skip
without torch)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from compresslab.speed import lm

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------------------- KV cache
def cache_arrays(n_layer, n_head, head_dim, tokens, batch, bits, scale_dtype=np.float32):
    """The cache laid out as kv_cache_bytes documents: K and V of shape (n_layer, batch, n_head,
    tokens, head_dim) -- 4-bit packs two numbers a byte -- and, below 16 bits, one scale per
    vector for each of K and V."""
    dtype, last = {32: (np.float32, head_dim), 16: (np.float16, head_dim), 8: (np.int8, head_dim),
                   4: (np.uint8, math.ceil(head_dim / 2))}[bits]
    shape = (n_layer, batch, n_head, tokens)
    arrays = [np.zeros(shape + (last,), dtype) for _ in "KV"]
    if bits < 16 and scale_dtype is not None:
        arrays += [np.zeros(shape, scale_dtype) for _ in "KV"]
    return arrays


def test_kv_cache_closed_forms():
    # GPT-2 small, full context: 2 * 12 * 12 * 64 * 1024 numbers
    assert lm.kv_cache_bytes(12, 12, 64, 1024) == 2 * 12 * 12 * 64 * 1024 * 4 == 75_497_472
    assert lm.kv_cache_bytes(12, 12, 64, 1024, bits=16) == 37_748_736
    assert lm.kv_cache_bytes(12, 12, 64, 1024, bits=8) == 2 * 12 * 12 * 1024 * (64 + 4)
    assert lm.kv_cache_bytes(12, 12, 64, 1024, bits=8, scale_bytes_per_vector=0) == 75_497_472 // 4
    assert lm.kv_cache_bytes(12, 12, 64, 1024, bits=4) == 2 * 12 * 12 * 1024 * (32 + 4)
    # compresslab's tiny GPT (4 layers, 4 heads of 32, 256 positions), batch 8: 8 MiB in float32
    assert lm.kv_cache_bytes(4, 4, 32, 256, batch=8) == 8 * 2 ** 20
    assert lm.kv_cache_bytes(4, 4, 32, 0) == 0


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 9), st.integers(0, 6), st.integers(1, 3),
       st.sampled_from([32, 16, 8, 4]))
def test_kv_cache_equals_the_bytes_of_arrays_laid_out_that_way(n_layer, n_head, head_dim, tokens, batch,
                                                                bits):
    sizes = (n_layer, n_head, head_dim, tokens, batch, bits)
    arrays = cache_arrays(*sizes)
    assert lm.kv_cache_bytes(*sizes) == sum(a.nbytes for a in arrays)
    if bits >= 16:   # the formula of the issue: 2 * L * H * D * T * B * bits / 8
        assert sum(a.nbytes for a in arrays) == 2 * n_layer * n_head * head_dim * tokens * batch * bits // 8
    # other scale layouts: float16 scales, or none
    half, none = cache_arrays(*sizes, np.float16), cache_arrays(*sizes, None)
    if bits < 16:
        assert lm.kv_cache_bytes(*sizes, 2) == sum(a.nbytes for a in half)
    assert lm.kv_cache_bytes(*sizes, 0) == sum(a.nbytes for a in none)


def test_kv_cache_bytes_equal_the_gpt_cache_nbytes():
    """compresslab.nn's KVCache stores this layout (per layer, K and V of (batch, n_head, max_len,
    head_dim), int8 with one float32 scale per token and head): its nbytes must agree."""
    from compresslab import nn
    if not hasattr(nn, "KVCache"):
        pytest.skip("compresslab.nn has no KVCache")
    for bits in (None, 8):
        for batch in (1, 3):
            config = nn.GPTConfig(n_layer=3, n_head=2, n_embd=16, block_size=10)
            cache = nn.KVCache(config, batch=batch, bits=bits)
            assert cache.nbytes == lm.kv_cache_bytes(3, 2, 8, 10, batch=batch, bits=bits or 32)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"n_layer": 0}, ValueError, "n_layer must be in [1, inf]"),
    ({"n_head": -1}, ValueError, "n_head must be in [1, inf]"),
    ({"head_dim": 2.0}, TypeError, "head_dim must be an integer"),
    ({"tokens": -1}, ValueError, "tokens must be in [0, inf]"),
    ({"batch": 0}, ValueError, "batch must be in [1, inf]"),
    ({"bits": 0}, ValueError, "bits must be in [1, 32]"),
    ({"bits": 64}, ValueError, "bits must be in [1, 32]"),
    ({"bits": True}, TypeError, "bits must be an integer"),
    ({"scale_bytes_per_vector": -4}, ValueError, "scale_bytes_per_vector must be in [0, inf]"),
    ({"scale_bytes_per_vector": 4.0}, TypeError, "scale_bytes_per_vector must be an integer"),
])
def test_kv_cache_bad_input(kwargs, exc, words):
    args = {"n_layer": 2, "n_head": 2, "head_dim": 8, "tokens": 4, **kwargs}
    with pytest.raises(exc, match=re.escape(words)):
        lm.kv_cache_bytes(**args)


# ---------------------------------------------------------------------------- the decode bound
def test_decode_bytes_and_time_bound():
    kv = lm.kv_cache_bytes(12, 12, 64, 512)
    assert lm.decode_bytes_per_token(124_000_000 * 4, kv) == 496_000_000 + kv
    assert lm.decode_bytes_per_token(0, 0) == 0
    assert lm.decode_time_bound(1e9, 1e10) == 0.1
    assert lm.decode_time_bound(0, 1.0) == 0.0
    # int8 weights: the bound falls with the bytes (4x fewer weight bytes, same cache)
    f32 = lm.decode_time_bound(lm.decode_bytes_per_token(4 * 10**8, kv), 5e10)
    i8 = lm.decode_time_bound(lm.decode_bytes_per_token(10**8, kv), 5e10)
    assert f32 / i8 == pytest.approx((4e8 + kv) / (1e8 + kv))


@pytest.mark.parametrize("args, exc, words", [
    ((-1, 0), ValueError, "weight_bytes must be in [0, inf]"),
    ((1.5, 0), TypeError, "weight_bytes must be a whole number of bytes"),
    ((0, True), TypeError, "kv_bytes_so_far must be a whole number"),
    ((0, None), TypeError, "kv_bytes_so_far must be a whole number"),
])
def test_decode_bytes_bad_input(args, exc, words):
    with pytest.raises(exc, match=re.escape(words)):
        lm.decode_bytes_per_token(*args)


@pytest.mark.parametrize("args, name", [
    ((1.0, 0.0), "bandwidth_bytes_per_s"), ((1.0, -5.0), "bandwidth_bytes_per_s"),
    ((1.0, float("inf")), "bandwidth_bytes_per_s"), ((float("nan"), 1.0), "bytes_per_token"),
    ((-1.0, 1.0), "bytes_per_token"), (("1", 1.0), "bytes_per_token"),
])
def test_decode_time_bound_bad_input(args, name):
    with pytest.raises((ValueError, TypeError), match=name):
        lm.decode_time_bound(*args)


# ---------------------------------------------------------------------------- int8 weight-only
def _weights(out, d, seed=0):
    g = np.random.default_rng(seed)
    return (g.normal(size=(out, d)) * g.uniform(0.01, 3.0, size=(out, 1))).astype(np.float32)


def _check_output(torch, layer, x):
    """y equals x @ dequant(W)^T to float32 accuracy: |y - exact| <= K * 2**-22 * (|x| @ |W_hat|^T)."""
    y = layer(x)
    w_hat = layer.dequantize().double()
    exact = x.double() @ w_hat.T
    bound = layer.in_features * 2.0 ** -22 * (x.double().abs() @ w_hat.abs().T) + 1e-30
    assert y.dtype == torch.float32 and y.shape == exact.shape
    assert ((y.double() - exact).abs() <= bound).all()
    return y


@pytest.mark.parametrize("kernel", ["auto", *lm.INT8_KERNELS])
@pytest.mark.parametrize("out, d", [(512, 128), (128, 512), (5, 7), (33, 17), (1, 1)])
def test_int8_linear_computes_x_times_dequantized_weights(torch, kernel, out, d):
    layer = lm.int8_weight_only_linear(torch.from_numpy(_weights(out, d)), kernel=kernel)
    g = torch.Generator().manual_seed(0)
    for shape in [(1, d), (4, d), (2, 3, d), (d,)]:
        y = _check_output(torch, layer, torch.randn(*shape, generator=g))
        assert tuple(y.shape) == shape[:-1] + (out,)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 70), st.integers(1, 4), st.integers(0, 2 ** 16))
def test_int8_linear_every_shape_both_kernels(torch, out, d, batch, seed):
    w = torch.from_numpy(_weights(out, d, seed))
    x = torch.randn(batch, d, generator=torch.Generator().manual_seed(seed))
    ys = [_check_output(torch, lm.int8_weight_only_linear(w, kernel=k), x) for k in lm.INT8_KERNELS]
    atol = 1e-5 * float(x.abs().sum()) * float(w.abs().max())
    torch.testing.assert_close(ys[0], ys[1], rtol=1e-5, atol=atol)


def test_int8_linear_is_close_to_the_float_layer_within_the_rounding_bound(torch):
    """Rounding moves each weight of row i by at most scale_i / 2 (and the float32 rounding of
    scale_i = max|W_i| / 127.5), so |y_i - (x @ W^T)_i| <= sum_j |x_j| * scale_i / 2."""
    w = torch.from_numpy(_weights(64, 96, seed=1))
    b = torch.linspace(-1, 1, 64)
    layer = lm.int8_weight_only_linear(w, bias=b)
    x = torch.randn(8, 96, generator=torch.Generator().manual_seed(1))
    err = (layer(x).double() - torch.nn.functional.linear(x.double(), w.double(), b.double())).abs()
    bound = x.double().abs().sum(dim=1, keepdim=True) * layer.scale.double() / 2 * (1 + 1e-4) + 1e-6
    assert (err <= bound).all()
    assert ((layer.dequantize() - w).abs() <= layer.scale[:, None] / 2 * (1 + 1e-4)).all()


def test_int8_weights_are_stored_as_int8(torch):
    w = torch.from_numpy(_weights(512, 128))
    layer = lm.int8_weight_only_linear(w)
    q = layer.weight_int8
    assert q.dtype == torch.int8 and tuple(q.shape) == (512, 128)
    assert q.element_size() * q.numel() == q.untyped_storage().nbytes() == 512 * 128
    assert layer.scale.dtype == torch.float32 and tuple(layer.scale.shape) == (512,)
    stored = sum(t.untyped_storage().nbytes() for t in layer.buffers())
    assert stored == 512 * 128 + 4 * 512                    # int8 weights + float32 scales
    assert w.untyped_storage().nbytes() / stored > 3.8      # ~4x fewer bytes than float32
    assert not list(layer.parameters())                    # nothing to train, nothing in float


def test_int8_quantization_is_torch_per_channel_symmetric(torch):
    """scale bit-equal to torch's PerChannelMinMaxObserver (qint8, per-channel symmetric);
    q = clamp(round(W / scale), -128, 127)."""
    w = torch.from_numpy(_weights(48, 40, seed=2))
    layer = lm.int8_weight_only_linear(w)
    obs = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                         qscheme=torch.per_channel_symmetric)
    obs(w)
    scale, zero_point = obs.calculate_qparams()
    assert torch.equal(layer.scale, scale.float()) and not zero_point.any()
    expected = torch.clamp(torch.round(w.double() / layer.scale.double()[:, None]), -128, 127)
    assert torch.equal(layer.weight_int8.double(), expected)


def test_auto_uses_the_aten_kernel_when_it_works_else_reports_the_fallback(torch, monkeypatch):
    has_op = hasattr(torch.ops.aten, "_weight_int8pack_mm")
    layer = lm.int8_weight_only_linear(torch.ones(4, 8))
    assert layer.kernel == ("aten._weight_int8pack_mm" if has_op else "dequantize+matmul")
    assert "kernel=" in repr(layer)
    monkeypatch.setattr(lm, "_int8pack_mm_works", lambda dtype: False)  # a torch without the op
    assert lm.int8_weight_only_linear(torch.ones(4, 8)).kernel == "dequantize+matmul"
    with pytest.raises(ValueError, match="kernel='aten._weight_int8pack_mm' is not available"):
        lm.int8_weight_only_linear(torch.ones(4, 8), kernel="aten._weight_int8pack_mm")


def _check_bf16_output(torch, layer, x):
    """bfloat16: the kernels accumulate in float32 and round once to bfloat16 (8 bits), so
    |y - exact| <= 2**-8 |exact| + K * 2**-22 * (|x| @ |W_hat|^T)."""
    y = layer(x)
    w_hat = layer.dequantize().double()
    exact = x.double() @ w_hat.T
    abs_sum = x.double().abs() @ w_hat.abs().T
    bound = 2.0 ** -8 * exact.abs() + layer.in_features * 2.0 ** -22 * abs_sum + 1e-30
    assert y.dtype == torch.bfloat16 and ((y.double() - exact).abs() <= bound).all()


@pytest.mark.parametrize("out, d", [(512, 128), (128, 512), (5, 16), (33, 48), (3, 17), (4, 8)])
def test_bfloat16_layer(torch, out, d):
    """bfloat16 activations use torch's vectorized kernel where in_features is a multiple of 16,
    and the fallback elsewhere (where the kernel would return NaN or crash)."""
    w = torch.from_numpy(_weights(out, d, seed=3))
    layer = lm.int8_weight_only_linear(w, dtype=torch.bfloat16)
    assert layer.dtype == torch.bfloat16 and layer.scale.dtype == torch.bfloat16
    assert layer.kernel == ("aten._weight_int8pack_mm" if d % 16 == 0 else "dequantize+matmul")
    fallback = lm.int8_weight_only_linear(w, dtype="bfloat16", kernel="dequantize+matmul")
    g = torch.Generator().manual_seed(d)
    for shape in [(1, d), (5, d), (2, 3, d)]:
        x = torch.randn(*shape, generator=g).bfloat16()
        _check_bf16_output(torch, layer, x)
        _check_bf16_output(torch, fallback, x)
    # the bfloat16 scale is rounded up, so every weight is within half a step, none clamped further
    assert (layer.scale.float() >= lm.int8_weight_only_linear(w).scale).all()
    assert ((layer.dequantize() - w).abs() <= layer.scale.float()[:, None] / 2 * (1 + 1e-4)).all()
    if d % 16:
        with pytest.raises(ValueError, match="not a multiple of 16"):
            lm.int8_weight_only_linear(w, dtype=torch.bfloat16, kernel="aten._weight_int8pack_mm")


def test_bfloat16_input_that_is_not_aligned(torch):
    """A view that starts 2 bytes into its storage: the layer copies it for the aligned loads of
    the vector kernel, and the result is the same."""
    layer = lm.int8_weight_only_linear(torch.from_numpy(_weights(8, 32)), dtype=torch.bfloat16)
    buf = torch.randn(33, generator=torch.Generator().manual_seed(0)).bfloat16()
    x = buf[1:].reshape(1, 32)
    assert x.data_ptr() % 64 and layer.kernel == "aten._weight_int8pack_mm"
    assert torch.equal(layer(x), layer(x.clone()))
    _check_bf16_output(torch, layer, x)


def test_int8_linear_accepts_numpy_and_keeps_zero_rows(torch):
    w = np.zeros((3, 4), np.float32)
    w[1] = [1.0, -2.0, 0.5, 0.0]
    layer = lm.int8_weight_only_linear(w, bias=[1.0, 2.0, 3.0])
    y = layer(torch.ones(2, 4))
    # within the rounding bound sum_j |x_j| * scale_1 / 2 = 4 * (2 / 127.5) / 2 = 0.031
    torch.testing.assert_close(y, torch.tensor([[1.0, 2.0 - 0.5, 3.0]] * 2), rtol=0, atol=0.032)
    assert layer.weight_int8[0].eq(0).all() and layer.weight_int8[2].eq(0).all()


@pytest.mark.parametrize("args, kwargs, exc, words", [
    ((np.ones(4),), {}, ValueError, "weight must have shape (out_features, in_features)"),
    ((np.full((2, 2), np.nan),), {}, ValueError, "weight contains NaN"),
    (("w",), {}, TypeError, "weight must be an array"),
    ((np.ones((2, 2)),), {"bias": np.ones(3)}, ValueError, "bias must have shape (2,)"),
    ((np.ones((2, 2)),), {"bias": [np.inf, 0.0]}, ValueError, "bias contains NaN or infinite"),
    ((np.ones((2, 2)),), {"kernel": "fast"}, ValueError, "kernel must be one of"),
    ((np.ones((2, 2)),), {"dtype": "float16"}, ValueError, "dtype must be one of ['bfloat16', 'float32']"),
    ((np.ones((2, 2)),), {"dtype": None}, TypeError, "dtype must be 'float32' or 'bfloat16'"),
])
def test_int8_linear_bad_input(torch, args, kwargs, exc, words):
    with pytest.raises(exc, match=re.escape(words)):
        lm.int8_weight_only_linear(*args, **kwargs)


def test_int8_linear_forward_bad_input(torch):
    layer = lm.int8_weight_only_linear(np.ones((2, 8), np.float32))
    with pytest.raises(TypeError, match="x must be a torch.float32 torch.Tensor .* got torch.float64"):
        layer(torch.ones(1, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="got torch.bfloat16"):
        layer(torch.ones(1, 8, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="x must be a torch.float32 torch.Tensor .* got ndarray"):
        layer(np.ones((1, 8), np.float32))
    with pytest.raises(ValueError, match=re.escape("8 numbers on its last axis, got shape (1, 7)")):
        layer(torch.ones(1, 7))
    with pytest.raises(ValueError, match="in_features = 8"):
        layer(torch.tensor(1.0))
