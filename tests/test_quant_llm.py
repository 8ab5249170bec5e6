"""LLM-style quantization of one Linear layer (issue #16): round to nearest in groups with real
bit packing, GPTQ, AWQ and SmoothQuant W8A8, each checked against an oracle (a plain loop, a
closed form, compresslab's torch-verified ``quantize``, or the obvious formula)."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compresslab import quant
from compresslab.quant.awq import AWQResult, awq, awq_search
from compresslab.quant.gptq import _gptq_reference, gptq, hessian
from compresslab.quant.groups import GroupQuant, pack_bits, quantize_groups, rtn, unpack_bits
from compresslab.quant.smoothquant import outlier_ratio, smooth, smooth_scales, w8a8_matmul


def output_error(X, w, w_hat):
    """||X W^T - X W_hat^T||_F, in float64."""
    X = np.asarray(X, np.float64)
    return float(np.linalg.norm(X @ np.asarray(w, np.float64).T - X @ np.asarray(w_hat, np.float64).T))


def correlated(n_in, rows=2048, seed=0, outliers=(0, 1, 2)):
    """Calibration inputs X = Z A (a random mixing: correlated channels) with a few channels 10x larger."""
    g = np.random.default_rng(seed)
    X = g.normal(size=(rows, n_in)) @ (g.normal(size=(n_in, n_in)) / np.sqrt(n_in))
    X[:, list(outliers)] *= 10
    return X.astype(np.float32)


def weights(out, n_in, seed=1):
    return np.random.default_rng(seed).normal(size=(out, n_in)).astype(np.float32)


# ================================================================== groups: round to nearest
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bits,group_size", [(4, 16), (3, 32), (2, 8), (8, None), (4, 64)])
def test_codes_are_compresslab_quantize_of_each_group(bits, group_size, symmetric):
    """Oracle: compresslab.quant.quantize (tested bit-equal to torch) with one QParams per group."""
    w = weights(6, 64) * 0.3
    gq = quantize_groups(w, bits, group_size, symmetric)
    gs = group_size or 64
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)
    qp = quant.QParams(gq.scale.ravel(), gq.zero.ravel().astype(np.int64), qmin, qmax, axis=0)
    expect = quant.quantize(w.reshape(-1, gs), qp).reshape(w.shape)
    np.testing.assert_array_equal(gq.q.astype(np.int64), expect.astype(np.int64))
    expect_hat = quant.dequantize(expect.reshape(-1, gs), qp).reshape(w.shape)
    np.testing.assert_array_equal(gq.dequantize(), expect_hat)
    assert gq.dequantize().dtype == np.float32 and gq.group_size == gs


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_asymmetric_scale_and_zero_follow_the_formula(bits):
    """scale = (max - min) / (2**bits - 1), zero = round(-min / scale), min/max widened to 0;
    compared with compresslab's scale_zero_point (torch's MinMaxObserver formula)."""
    w = weights(5, 32) + 0.5
    w[0, :8] += 3.0                                   # an all-positive group: min widened to 0
    gq = quantize_groups(w, bits, 8)
    g = w.reshape(5, 4, 8)
    qp = quant.scale_zero_point(g.min(-1).ravel(), g.max(-1).ravel(), bits=bits, axis=0)
    np.testing.assert_allclose(gq.scale.ravel(), qp.scale, rtol=1e-6)
    np.testing.assert_array_equal(gq.zero.ravel(), qp.zero_point)
    assert gq.zero[0, 0] == 0


def test_rtn_error_is_at_most_half_a_step():
    w = weights(8, 128)
    for symmetric in (False, True):
        gq = quantize_groups(w, 4, 32, symmetric)
        err = np.abs(w - gq.dequantize()).reshape(8, 4, 32)
        assert (err <= gq.scale[..., None] / 2 * (1 + 1e-6)).all()


def test_all_zero_groups_decode_to_exact_zeros_without_nan():
    w = weights(3, 16)
    w[1, 4:8] = 0.0
    w[2] = 0.0
    with np.errstate(all="raise"):
        for symmetric in (False, True):
            gq = quantize_groups(w, 4, 4, symmetric)
            assert gq.scale[1, 1] == 0 and (gq.scale[2] == 0).all()
            w_hat = gq.dequantize()
            assert np.isfinite(w_hat).all() and (w_hat[1, 4:8] == 0).all() and (w_hat[2] == 0).all()


def test_per_channel_is_one_group_per_row():
    w = weights(4, 24)
    a, b = quantize_groups(w, 4, None), quantize_groups(w, 4, 24)
    assert a.scale.shape == (4, 1) and a.group_size == 24
    np.testing.assert_array_equal(a.q, b.q)
    np.testing.assert_array_equal(rtn(w, 4, None), a.dequantize())
    assert rtn(w.astype(np.float64), 4, 8).dtype == np.float32


def test_smaller_groups_and_more_bits_give_smaller_errors():
    w = weights(64, 256) * np.random.default_rng(3).lognormal(0, 1, size=(1, 256)).astype(np.float32)
    err = {(b, gs): float(np.linalg.norm(w - rtn(w, b, gs))) for b in (3, 4) for gs in (32, 256)}
    assert err[4, 32] < err[4, 256] < err[3, 256] and err[4, 32] < err[3, 32] < err[3, 256]


# ------------------------------------------------------------------ packing and the real bytes
def _pack_oracle(codes, bits):
    """One big Python integer: code k at bit k * bits, little-endian bytes."""
    stream = sum(int(c) << (k * bits) for k, c in enumerate(codes))
    return np.frombuffer(stream.to_bytes(math.ceil(len(codes) * bits / 8), "little"), np.uint8)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 8).flatmap(lambda b: st.tuples(st.just(b), st.lists(st.integers(0, 2 ** b - 1),
                                                                          max_size=70))))
def test_pack_bits_round_trip_and_layout(bits_codes):
    bits, codes = bits_codes
    packed = pack_bits(np.array(codes, np.int64), bits)
    assert packed.dtype == np.uint8 and packed.size == math.ceil(len(codes) * bits / 8)
    np.testing.assert_array_equal(packed, _pack_oracle(codes, bits))
    np.testing.assert_array_equal(unpack_bits(packed, bits, len(codes)), codes)


def test_three_bit_codes_cross_byte_boundaries():
    codes = [5, 3, 7, 1, 6, 2, 4, 0]                 # 24 bits in 3 bytes; codes 2 and 5 straddle two
    packed = pack_bits(codes, 3)
    # byte 0 = 5 | 3 << 3 | (7 & 0b11) << 6; byte 1 = 7 >> 2 | 1 << 1 | 6 << 4 | (2 & 1) << 7; ...
    assert packed.tolist() == [0b11011101, 0b01100011, 0b00010001]
    assert unpack_bits(packed, 3, 8).tolist() == codes


def test_pack_and_unpack_refuse_bad_input():
    with pytest.raises(ValueError, match="q"):
        pack_bits([0, 16], 4)
    with pytest.raises(ValueError, match="q"):
        pack_bits([-1], 4)
    with pytest.raises(TypeError, match="q"):
        pack_bits([0.5], 4)
    with pytest.raises(ValueError, match="bits"):
        pack_bits([0], 9)
    with pytest.raises(ValueError, match="packed"):
        unpack_bits(np.zeros(3, np.uint8), 4, 8)     # 8 codes of 4 bits are 4 bytes
    with pytest.raises(ValueError, match="packed"):
        unpack_bits([256], 8, 1)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bits,group_size", [(4, 128), (3, 32), (2, 64), (8, None), (3, 7)])
def test_packed_bytes_are_nbytes_and_read_back(bits, group_size, symmetric):
    w = weights(10, 896 if group_size == 7 else 256) * 0.1
    gq = quantize_groups(w, bits, group_size, symmetric)
    data = gq.packed()
    assert data["codes"].dtype == np.uint8 and data["scales"].dtype == np.float16
    assert sum(a.nbytes for a in data.values()) == gq.nbytes()
    out, n = w.shape
    groups = out * n // gq.group_size
    zeros = 0 if symmetric else math.ceil(groups * bits / 8)
    assert gq.nbytes() == math.ceil(out * n * bits / 8) + 2 * groups + zeros
    back = GroupQuant.from_packed(data, w.shape, bits, gq.group_size, symmetric)
    np.testing.assert_array_equal(back.q, gq.q)
    np.testing.assert_array_equal(back.zero, gq.zero)
    np.testing.assert_allclose(back.scale, gq.scale, rtol=2 ** -11)       # float16 scales
    np.testing.assert_allclose(back.dequantize(), gq.dequantize(), rtol=2 ** -11, atol=1e-30)


def test_bits_per_weight():
    w = weights(16, 256)
    assert quantize_groups(w, 4, 128).bits_per_weight == 4 + 16 / 128 + 4 / 128
    assert quantize_groups(w, 4, 128, symmetric=True).bits_per_weight == 4 + 16 / 128
    assert quantize_groups(w, 3, None).nbytes(scale_bytes=4) == 16 * 256 * 3 // 8 + 16 * 4 + 6
    with pytest.raises(ValueError, match="float16"):
        quantize_groups(w * 1e6, 4, 128).packed()


def test_group_quant_validates_its_fields():
    gq = quantize_groups(weights(2, 8), 4, 4)
    with pytest.raises(ValueError, match="q"):
        GroupQuant(gq.q.astype(np.int64) + 16, gq.scale, gq.zero, 4, 4, (2, 8))
    with pytest.raises(ValueError, match="scale"):
        GroupQuant(gq.q, gq.scale[:, :1], gq.zero, 4, 4, (2, 8))
    with pytest.raises(ValueError, match="group_size"):
        GroupQuant(gq.q, gq.scale, gq.zero, 4, 3, (2, 8))
    with pytest.raises(TypeError, match="data"):
        GroupQuant.from_packed({"codes": gq.packed()["codes"]}, (2, 8), 4, 4)
    with pytest.raises(ValueError, match="packed"):
        GroupQuant.from_packed({**gq.packed(), "codes": np.zeros(3, np.uint8)}, (2, 8), 4, 4)


@pytest.mark.parametrize("kwargs,match", [
    ({"bits": 1}, "bits"), ({"bits": 9}, "bits"), ({"bits": True}, "bits"), ({"bits": 4.0}, "bits"),
    ({"group_size": 5}, "group_size"), ({"group_size": 0}, "group_size"), ({"group_size": "x"}, "group_size"),
    ({"symmetric": "yes"}, "symmetric"), ({"w": np.full((2, 8), np.nan)}, "w"), ({"w": np.ones(8)}, "w"),
    ({"w": np.zeros((0, 8))}, "w"),
])
def test_quantize_groups_refuses_bad_input(kwargs, match):
    args = {"w": weights(2, 8), "bits": 4, "group_size": 4, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        quantize_groups(**args)


# ================================================================== GPTQ
@pytest.mark.parametrize("out,n_in,group_size,block_size,bits,symmetric,act_order", [
    (16, 64, 16, 24, 4, False, False),     # groups cross block boundaries
    (16, 64, 32, 16, 3, False, False),     # groups span several blocks
    (8, 96, None, 40, 4, True, False),     # per channel, symmetric
    (12, 64, 64, 128, 2, False, False),    # one block
    (16, 64, 16, 24, 4, False, True),      # act-order, static groups
    (8, 48, None, 5, 3, True, True),
])
def test_gptq_equals_the_plain_column_loop(out, n_in, group_size, block_size, bits, symmetric, act_order):
    X, w = correlated(n_in, rows=512), weights(out, n_in)
    H = hessian(X)
    w_hat, gq = gptq(w, H, bits, group_size, block_size=block_size, symmetric=symmetric, act_order=act_order)
    ref_hat, ref = _gptq_reference(w, H, bits, group_size, symmetric=symmetric, act_order=act_order)
    np.testing.assert_array_equal(gq.q, ref.q)
    np.testing.assert_allclose(w_hat, ref_hat, atol=1e-6)
    np.testing.assert_allclose(gq.scale, ref.scale, rtol=1e-6)
    np.testing.assert_array_equal(w_hat, gq.dequantize())
    assert w_hat.dtype == np.float32 and gq.shape == w.shape


def test_block_size_does_not_change_the_result():
    X, w = correlated(48, rows=256), weights(6, 48)
    H = hessian(X)
    results = [gptq(w, H, 3, 16, block_size=b)[1].q for b in (1, 7, 16, 48, 10 ** 6)]
    for q in results[1:]:
        np.testing.assert_array_equal(q, results[0])


@pytest.mark.parametrize("bits", [4, 3])
@pytest.mark.parametrize("group_size", [32, 64, 128, None])
def test_gptq_beats_rtn_on_the_layer_output(bits, group_size):
    X, w = correlated(256, seed=bits), weights(64, 256, seed=group_size or 7)
    H = hessian(X)
    e_rtn = output_error(X, w, rtn(w, bits, group_size))
    for act_order in (False, True):
        w_hat, gq = gptq(w, H, bits, group_size, act_order=act_order)
        assert output_error(X, w, w_hat) < 0.8 * e_rtn
        assert gq.nbytes() == quantize_groups(w, bits, group_size).nbytes()       # the same bytes


def test_gptq_with_an_identity_hessian_is_rtn():
    """H = c I: U is diagonal, no column is ever updated, GPTQ rounds to nearest."""
    w = weights(16, 64)
    for symmetric in (False, True):
        w_hat, gq = gptq(w, 3.0 * np.eye(64), 4, 16, symmetric=symmetric)
        ref = quantize_groups(w, 4, 16, symmetric)
        np.testing.assert_array_equal(gq.q, ref.q)
        np.testing.assert_array_equal(w_hat, ref.dequantize())


def test_gptq_on_white_inputs_is_close_to_rtn():
    X = np.random.default_rng(5).normal(size=(8192, 64)).astype(np.float32)
    w = weights(32, 64)
    ratio = output_error(X, w, gptq(w, hessian(X), 4, 32)[0]) / output_error(X, w, rtn(w, 4, 32))
    assert 0.9 < ratio < 1.02


def test_gptq_closed_form_two_columns():
    """One column quantized, the next updated by OBS: e2 = -H12 / H22 * e1, so the second weight
    becomes w2 + H12 / H22 * (w1 - q1) before rounding (damp = 0, fixed per-row grid)."""
    g = np.random.default_rng(11)
    w = g.normal(size=(200, 2)).astype(np.float32)
    A = g.normal(size=(2, 2))
    H = A @ A.T + 0.1 * np.eye(2)
    w_hat, gq = gptq(w, H, 3, None, damp=0.0)
    grid = quantize_groups(w, 3, None)                      # the grid is set from the rows as given
    s, z = grid.scale[:, 0].astype(np.float64), grid.zero[:, 0].astype(np.float64)

    def q(v):
        return (np.clip(np.rint(v / s) + z, 0, 7) - z) * s

    q1 = q(w[:, 0].astype(np.float64))
    q2 = q(w[:, 1] + H[0, 1] / H[1, 1] * (w[:, 0] - q1))
    np.testing.assert_allclose(w_hat, np.stack([q1, q2], 1), rtol=1e-6)
    assert (w_hat != grid.dequantize()).any()               # and it is not plain rounding


def test_gptq_worked_example_and_its_objective():
    w, H = np.array([[1.4, 2.4, 3.0]]), np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    w_hat, _ = gptq(w, H, 2, None, damp=0.0)
    assert w_hat.tolist() == [[1.0, 3.0, 3.0]]
    e_gptq, e_rtn = w - w_hat, w - rtn(w, 2, None)                       # rtn: [1, 2, 3]
    assert (e_gptq @ H @ e_gptq.T).item() == pytest.approx(0.56)
    assert (e_rtn @ H @ e_rtn.T).item() == pytest.approx(0.96)


def test_gptq_dead_inputs_get_zero_weights():
    X, w = correlated(32, rows=256), weights(4, 32)
    X[:, 5] = 0.0
    w_hat, _ = gptq(w, hessian(X), 4, 8)
    assert np.isfinite(w_hat).all() and (w_hat[:, 5] == 0).all()
    assert (gptq(w, np.zeros((32, 32)), 4, 8)[0] == 0).all()             # every input dead


def test_gptq_act_order_is_a_permuted_run_with_static_groups():
    X, w = correlated(40, rows=512, outliers=(30, 7)), weights(6, 40)
    H = hessian(X)
    perm = np.argsort(-np.diag(H), kind="stable")
    w_hat, _ = gptq(w, H, 4, None, act_order=True)
    permuted, _ = gptq(w[:, perm], H[np.ix_(perm, perm)], 4, None)
    np.testing.assert_array_equal(w_hat[:, perm], permuted)
    _, gq = gptq(w, H, 4, 8, act_order=True)                   # groups: from the weights as given
    np.testing.assert_array_equal(gq.scale, quantize_groups(w, 4, 8).scale)


def test_hessian():
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 0.5]], np.float32)
    H = hessian(X)
    assert H.dtype == np.float64
    np.testing.assert_allclose(H, 2 * X.astype(np.float64).T @ X / 3)
    np.testing.assert_allclose(H, 2 / 3 * np.array([[10.0, -1.0], [-1.0, 5.25]]))


@pytest.mark.parametrize("kwargs,match", [
    ({"H": np.eye(7)}, "H"), ({"H": np.triu(np.ones((8, 8)))}, "H"), ({"H": -np.eye(8)}, "H"),
    ({"H": np.full((8, 8), np.nan)}, "H"), ({"bits": 1}, "bits"), ({"group_size": 3}, "group_size"),
    ({"damp": -0.1}, "damp"), ({"damp": float("nan")}, "damp"), ({"block_size": 0}, "block_size"),
    ({"act_order": 1}, "act_order"), ({"w": np.ones((4, 8, 1))}, "w"),
    ({"H": np.ones((8, 8)), "damp": 0.0}, "damp"),          # singular: needs dampening
])
def test_gptq_refuses_bad_input(kwargs, match):
    args = {"w": weights(4, 8), "H": np.eye(8), "bits": 4, "group_size": 4, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        gptq(**args)


# ================================================================== AWQ
def salient(n_in=256, rows=1024, channels=(5, 77, 140, 201), factor=20.0, seed=2):
    X = np.random.default_rng(seed).normal(size=(rows, n_in)).astype(np.float32)
    X[:, list(channels)] *= factor
    return X


def mean_sq(X, w, w_hat):
    return output_error(X, w, w_hat) ** 2 / (X.shape[0] * w.shape[0])


@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("group_size", [32, 128, None])
def test_awq_beats_rtn_with_salient_channels(bits, group_size):
    X, w = salient(), weights(64, 256)
    w_hat, s, gq = awq(w, X, bits, group_size)
    assert mean_sq(X, w, w_hat) < 0.6 * mean_sq(X, w, rtn(w, bits, group_size))
    assert s[[5, 77, 140, 201]].min() > np.delete(s, [5, 77, 140, 201]).max()   # salient: scaled up
    np.testing.assert_array_equal(w_hat, gq.dequantize() / s)
    assert w_hat.dtype == s.dtype == np.float32
    assert gq.nbytes() == quantize_groups(w, bits, group_size).nbytes()


@pytest.mark.parametrize("seed", range(6))
def test_awq_is_never_worse_than_rtn_on_its_calibration_data(seed):
    g = np.random.default_rng(seed)
    X = g.normal(size=(256, 64)).astype(np.float32) * g.lognormal(0, seed / 3, size=64).astype(np.float32)
    w = g.normal(size=(8, 64)).astype(np.float32)
    bits, gs = (2, 3, 4, 2, 3, 4)[seed], (16, 32, None, 64, 16, 8)[seed]
    w_hat, _, _ = awq(w, X, bits, gs)
    assert mean_sq(X, w, w_hat) <= mean_sq(X, w, rtn(w, bits, gs)) * (1 + 1e-12)


def test_awq_errors_are_the_obvious_formula():
    X, w = salient(n_in=128, rows=300, channels=(5, 77, 100)), weights(16, 128)
    r = awq_search(w, X, 4, 32, n_grid=10)
    assert isinstance(r, AWQResult) and r.errors.shape == (10,)
    assert r.alphas.tolist() == [k / 10 for k in range(10)]
    assert r.errors[0] == pytest.approx(mean_sq(X, w, rtn(w, 4, 32)), rel=1e-9)
    x_mean = np.abs(X).mean(0, dtype=np.float64)
    for k in (3, 7):
        s = np.maximum(x_mean ** (k / 10), 1e-4)
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
        w_eff = rtn(w * s, 4, 32) / s                                       # Q(W * s) / s
        assert r.errors[k] == pytest.approx(mean_sq(X, w, w_eff), rel=1e-9)
        y_obvious = (X / s).astype(np.float64) @ rtn(w * s, 4, 32).T.astype(np.float64)   # (X / s) Q(W s)^T
        y = X.astype(np.float64) @ w.T.astype(np.float64)
        assert r.errors[k] == pytest.approx(np.mean((y - y_obvious) ** 2), rel=1e-5)
    assert r.alpha == r.alphas[np.argmin(r.errors)] and r.errors.min() < r.errors[0]
    s = r.scales.astype(np.float64)
    assert s.max() * s.min() == pytest.approx(1.0, rel=1e-6)               # normalised


def test_awq_alpha_zero_is_rtn_with_unit_scales():
    X, w = salient(n_in=64, rows=128, channels=(3,)), weights(8, 64)
    r = awq_search(w, X, 4, 16, n_grid=1)                                  # the grid is {0}
    assert r.alpha == 0.0 and (r.scales == 1).all()
    w_hat, s, gq = awq(w, X, 4, 16, n_grid=1)
    np.testing.assert_array_equal(w_hat, rtn(w, 4, 16))
    np.testing.assert_array_equal(gq.q, quantize_groups(w, 4, 16).q)


@pytest.mark.parametrize("kwargs,match", [
    ({"X": np.ones((10, 7))}, "X"), ({"X": np.ones(8)}, "X"), ({"X": np.full((4, 8), np.nan)}, "X"),
    ({"n_grid": 0}, "n_grid"), ({"n_grid": 10 ** 6}, "n_grid"), ({"bits": 9}, "bits"),
    ({"group_size": 3}, "group_size"), ({"w": np.ones((2, 2, 8))}, "w"),
])
def test_awq_refuses_bad_input(kwargs, match):
    args = {"w": weights(4, 8), "X": np.ones((4, 8), np.float32), "bits": 4, "group_size": 4, **kwargs}
    for f in (awq, awq_search):
        with pytest.raises((ValueError, TypeError), match=match):
            f(**args)


# ================================================================== SmoothQuant
def outlier_acts(rows=512, n_in=256, channels=(3, 50, 200), factor=50.0, seed=0):
    X = np.random.default_rng(seed).normal(size=(rows, n_in)).astype(np.float32)
    X[:, list(channels)] *= factor
    return X


def rel_error(X, w, Y):
    ref = X.astype(np.float64) @ w.T.astype(np.float64)
    return float(np.linalg.norm(Y - ref) / np.linalg.norm(ref))


def test_smoothing_is_an_identity_in_float():
    X, w = outlier_acts(), weights(64, 256) * 0.05
    for alpha in (0.0, 0.5, 0.85, 1.0):
        Xs, ws = smooth(X, w, smooth_scales(np.abs(X).max(0), w, alpha))
        assert Xs.dtype == ws.dtype == np.float32
        assert rel_error(X, w, Xs.astype(np.float64) @ ws.T.astype(np.float64)) < 1e-6


def test_smooth_scales_closed_forms():
    g = np.random.default_rng(4)
    w, xmax = g.normal(size=(16, 32)), g.uniform(0.5, 60, size=32)
    wmax = np.abs(w).max(0)
    np.testing.assert_allclose(smooth_scales(xmax, w, 0.5), np.sqrt(xmax / wmax), rtol=1e-6)
    np.testing.assert_allclose(smooth_scales(xmax, w, 0.0), 1 / wmax, rtol=1e-6)   # weights equalised
    np.testing.assert_allclose(smooth_scales(xmax, w, 1.0), xmax, rtol=1e-6)       # activations flattened
    s = smooth_scales(xmax, w, 0.5).astype(np.float64)
    np.testing.assert_allclose(xmax / s, wmax * s, rtol=1e-6)           # the range is split evenly
    w[:, 0], xmax[1] = 0.0, 0.0                                         # clips of the reference
    s = smooth_scales(xmax, w, 0.5)
    assert s[0] == pytest.approx(np.sqrt(xmax[0] / 1e-5), rel=1e-6) and s[1] == pytest.approx(1e-5)


def _int8_oracle(x, per_row):
    amax = np.abs(x.astype(np.float64)).max(axis=1, keepdims=True) if per_row else np.abs(x).max()
    s = (np.maximum(amax, 1e-5) / 127).astype(np.float32)
    return np.rint(x / s.astype(np.float64)).astype(np.int64), s.astype(np.float64)


@pytest.mark.parametrize("act", ["per_token", "per_tensor"])
@pytest.mark.parametrize("weight", ["per_channel", "per_tensor"])
def test_w8a8_integer_path_equals_int64_and_fake_quant(act, weight):
    X, w = outlier_acts(rows=64, n_in=96, channels=(4,)), weights(24, 96) * 0.1
    Y = w8a8_matmul(X, w, act, weight)
    assert Y.dtype == np.float32 and Y.shape == (64, 24)
    qx, sx = _int8_oracle(X, act == "per_token")
    qw, sw = _int8_oracle(w, weight == "per_channel")
    assert np.abs(qx).max() == 127 and np.abs(qw).max() == 127
    acc = qx @ qw.T                                                     # exact integers, int64
    np.testing.assert_array_equal(Y, (acc * sx * np.transpose(sw)).astype(np.float32))
    fake = (qx * sx) @ (qw * sw).T                                      # dequantize, then float matmul
    np.testing.assert_allclose(Y, fake, rtol=1e-6, atol=1e-6 * np.abs(fake).max())


def test_w8a8_is_exact_on_the_int8_grid():
    g = np.random.default_rng(8)
    qx, qw = g.integers(-127, 128, size=(5, 16)), g.integers(-127, 128, size=(3, 16))
    qx[:, 0], qw[:, 0] = 127, -127                                      # every row reaches 127
    X, w = (qx * 0.5).astype(np.float32), (qw * 0.25).astype(np.float32)   # scales 0.5/127*127 ...
    np.testing.assert_allclose(w8a8_matmul(X, w), X.astype(np.float64) @ w.T, rtol=1e-6)
    assert (w8a8_matmul(np.zeros((2, 16), np.float32), w) == 0).all()  # an all-zero token


def test_w8a8_matches_the_smoothquant_reference_fake_quant(torch):
    X, w = outlier_acts(rows=32, n_in=64, channels=(2,)), weights(16, 64) * 0.1
    t, tw = torch.from_numpy(X.copy()), torch.from_numpy(w.copy())
    sx = t.abs().max(dim=-1, keepdim=True)[0].clamp(min=1e-5) / 127      # fake_quant.py, per token
    sw = tw.abs().max(dim=-1, keepdim=True)[0].clamp(min=1e-5) / 127     # per channel
    ref = torch.nn.functional.linear((t / sx).round() * sx, (tw / sw).round() * sw).numpy()
    np.testing.assert_allclose(w8a8_matmul(X, w), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_smoothquant_tames_activation_outliers():
    X, w = outlier_acts(), weights(128, 256) * 0.05
    assert outlier_ratio(X) > 30
    plain = rel_error(X, w, w8a8_matmul(X, w, "per_tensor"))
    assert plain > 0.05                                                 # the outliers cost a lot
    Xs, ws = smooth(X, w, smooth_scales(np.abs(X).max(0), w, 0.5))
    smoothed = rel_error(X, w, w8a8_matmul(Xs, ws, "per_tensor"))
    assert smoothed < plain / 3 and outlier_ratio(Xs) < outlier_ratio(X) / 3
    assert rel_error(X, w, w8a8_matmul(Xs, ws, "per_token")) < rel_error(X, w, w8a8_matmul(X, w, "per_token"))
    X0, w0 = smooth(X, w, smooth_scales(np.abs(X).max(0), w, 0.0))    # alpha = 0: outliers stay
    assert outlier_ratio(X0) > outlier_ratio(X) / 2
    assert rel_error(X, w, w8a8_matmul(X0, w0, "per_tensor")) > plain / 2


def test_outlier_ratio():
    X = np.ones((3, 5))
    X[1, 4] = -40.0
    assert outlier_ratio(X) == 40.0
    assert outlier_ratio(np.zeros((2, 3))) == 1.0
    assert outlier_ratio(np.array([[0.0, 0.0, 2.0]])) == math.inf


@pytest.mark.parametrize("call,match", [
    (lambda: w8a8_matmul(np.ones((2, 8)), np.ones((3, 7))), "X"),
    (lambda: w8a8_matmul(np.ones((2, 8)), np.ones((3, 8)), act="per_channel"), "act"),
    (lambda: w8a8_matmul(np.ones((2, 8)), np.ones((3, 8)), weight="per_token"), "weight"),
    (lambda: smooth(np.ones((2, 8)), np.ones((3, 8)), np.zeros(8)), "s"),
    (lambda: smooth(np.ones((2, 8)), np.ones((3, 8)), np.ones(7)), "s"),
    (lambda: smooth_scales(np.ones(7), np.ones((3, 8))), "x_absmax"),
    (lambda: smooth_scales(-np.ones(8), np.ones((3, 8))), "x_absmax"),
    (lambda: smooth_scales(np.ones(8), np.ones((3, 8)), alpha=1.5), "alpha"),
    (lambda: outlier_ratio(np.ones(8)), "X"),
    (lambda: outlier_ratio(np.full((2, 2), np.inf)), "X"),
])
def test_smoothquant_refuses_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ================================================================== every bad value: a clear error
BAD = {"nan": float("nan"), "inf": float("inf"), "neg": -1, "zero": 0, "huge": 10 ** 12, "bool": True,
       "none": None, "str": "x", "complex": np.array([1j, 2j]),
       "shape": np.zeros((2, 2, 2, 2, 2), np.float32)}   # as tests/test_fuzz.py
_W, _X = weights(4, 8), np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
TARGETS = {   # f, valid kwargs, {arg: bad values that are valid}
    "quantize_groups": (quantize_groups, {"w": _W, "bits": 4, "group_size": 4, "symmetric": False},
                        {"group_size": ["none"], "symmetric": ["bool"]}),
    "rtn": (rtn, {"w": _W, "bits": 4, "group_size": 4}, {"group_size": ["none"]}),
    "pack_bits": (pack_bits, {"q": np.arange(4), "bits": 3}, {"q": ["zero", "shape"]}),
    "unpack_bits": (unpack_bits, {"packed": np.arange(3), "bits": 3, "n": 8}, {}),
    "hessian": (hessian, {"X": _X}, {}),
    "gptq": (gptq, {"w": _W, "H": hessian(_X), "bits": 4, "group_size": 4, "damp": 0.01, "block_size": 2,
                    "symmetric": False, "act_order": False},
             {"group_size": ["none"], "damp": ["zero", "huge"], "block_size": ["huge"], "symmetric": ["bool"],
              "act_order": ["bool"]}),
    "awq_search": (awq_search, {"w": _W, "X": _X, "bits": 4, "group_size": 4, "n_grid": 4},
                   {"group_size": ["none"]}),
    "awq": (awq, {"w": _W, "X": _X, "bits": 4, "group_size": 4, "n_grid": 4}, {"group_size": ["none"]}),
    "smooth_scales": (smooth_scales, {"x_absmax": np.ones(8), "w": _W, "alpha": 0.5}, {"alpha": ["zero"]}),
    "smooth": (smooth, {"X": _X, "w": _W, "s": np.ones(8)}, {}),
    "w8a8_matmul": (w8a8_matmul, {"X": _X, "w": _W, "act": "per_token", "weight": "per_channel"}, {}),
    "outlier_ratio": (outlier_ratio, {"X": _X}, {}),
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_bad_value_gives_a_clear_error(name):
    f, kwargs, ok = TARGETS[name]
    f(**kwargs)
    problems = []
    for arg in kwargs:
        for bad, value in BAD.items():
            try:
                f(**{**kwargs, arg: value})
            except (ValueError, TypeError) as exc:
                if bad in ok.get(arg, ()):
                    problems.append(f"{arg}={bad}: valid value refused: {exc}")
                elif not re.search(rf"(?<![\w.]){re.escape(arg)}\b", str(exc)):
                    problems.append(f"{arg}={bad}: message does not name {arg!r}: {exc}")
            except Exception as exc:  # noqa: BLE001 -- anything else is an obscure error
                problems.append(f"{arg}={bad}: obscure {type(exc).__name__}: {exc}")
            else:
                if bad not in ok.get(arg, ()):
                    problems.append(f"{arg}={bad}: silently returned a result")
    assert not problems, "\n".join(problems)


def test_torch_tensors_in_give_tensors_out(torch):
    X, w = correlated(16, rows=64), weights(4, 16)
    tX, tw = torch.from_numpy(X), torch.from_numpy(w)
    assert isinstance(rtn(tw, 4, 8), torch.Tensor)
    w_hat, gq = gptq(tw, hessian(tX), 4, 8)
    assert isinstance(w_hat, torch.Tensor) and isinstance(gq, GroupQuant)
    np.testing.assert_array_equal(w_hat.numpy(), gptq(w, hessian(X), 4, 8)[0])
    assert isinstance(awq(tw, tX, 4, 8)[0], torch.Tensor)
    assert isinstance(w8a8_matmul(tX, tw), torch.Tensor)
