"""compresslab.quant: bit-exact with torch's quantize kernels and observers, plus the rest."""
import warnings

import numpy as np
import pytest

from compresslab import nn, quant as Q

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

SIGNED = {"qint8": True, "quint8": False}


def _ignore_deprecations():
    warnings.filterwarnings("ignore", message=".*deprecated.*")


def _tdtype(torch, name):
    return getattr(torch, name)


# ------------------------------------------------------------------ bit-exactness with torch
@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
def test_quantize_per_tensor_matches_torch_every_length_random_and_ties(dtype, torch):
    _ignore_deprecations()
    g = np.random.default_rng(0)
    qmin, qmax = Q.qrange(8, SIGNED[dtype])
    for n in range(1, 101):                           # every tail length of a SIMD vector
        for kind in ("random", "ties"):
            scale = np.float32(g.uniform(1e-3, 0.2))
            zp = int(g.integers(qmin, qmax + 1))
            if kind == "ties":                        # exact .5 ties of x / scale
                x = ((g.integers(-150, 150, n) + 0.5) * scale).astype(np.float32)
            else:
                x = (g.normal(0, 3, n)).astype(np.float32)
            qp = Q.QParams(scale, zp, qmin, qmax)
            want = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp,
                                             _tdtype(torch, dtype)).int_repr().numpy()
            got = Q.quantize(x, qp)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"n={n} {kind}")


def test_plain_division_disagrees_with_torch_on_ties(torch):
    """The rule is not rint(x / scale) + zp: find tie inputs where that formula is wrong."""
    _ignore_deprecations()
    g = np.random.default_rng(1)
    differs = 0
    for _ in range(50):
        scale = np.float32(g.uniform(1e-3, 0.2))
        zp = int(g.integers(0, 256))
        x = ((g.integers(-100, 100, 64) + 0.5) * scale).astype(np.float32)
        want = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp, torch.quint8).int_repr().numpy()
        naive = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8)
        differs += not np.array_equal(naive, want)
        np.testing.assert_array_equal(Q.quantize(x, Q.QParams(scale, zp, 0, 255)), want)
    assert differs > 10


def _exact_fma_round(x, scale, zp):
    """rint(float32(x * inv + zp)) with the sum rounded once, in exact rational arithmetic."""
    from fractions import Fraction
    inv = np.float32(1) / np.float32(scale)
    s = Fraction(float(x)) * Fraction(float(inv)) + zp
    # round s to float32 (nearest, ties to even) by bracketing it between neighbours
    lo = np.float32(float(s))
    cands = [np.nextafter(lo, np.float32(-np.inf)), lo, np.nextafter(lo, np.float32(np.inf))]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - s), int(np.float32(c).view(np.int32)) & 1))
    return int(np.rint(best))


_DOUBLE_ROUNDING = (np.full(37, 0.5073109865188599, np.float32), np.float32(1.0146375), 129)


def test_double_rounding_case_fma_rule_is_exact():
    """x * inv + zp lands exactly on a float32 midpoint in float64 but not in exact arithmetic:
    a float64-then-float32 emulation of the fused multiply-add gives 130, the exact fma 129."""
    x, scale, zp = _DOUBLE_ROUNDING
    inv = np.float32(1) / scale
    naive = np.rint(np.float32(np.float64(x[0]) * np.float64(inv) + zp))
    assert naive == 130 and _exact_fma_round(x[0], scale, zp) == 129
    q = Q.quantize(x, Q.QParams(scale, zp, 0, 255), rounding="fma")
    assert (q == 129).all()


def test_double_rounding_case_equals_torch_where_torch_uses_fma(torch):
    x, scale, zp = _DOUBLE_ROUNDING
    q = Q.quantize(x, Q.QParams(scale, zp, 0, 255), rounding="fma")
    _ignore_deprecations()
    rule = Q.torch_rounding()["tensor"]
    if rule != "fma":
        pytest.skip(f"this torch build rounds per tensor by the {rule!r} rule, not fma")
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp, torch.quint8).int_repr().numpy()
    np.testing.assert_array_equal(q, want)


def test_fma_rule_matches_exact_arithmetic_on_random_ties():
    g = np.random.default_rng(12)
    for _ in range(300):
        scale = np.float32(g.uniform(1e-3, 2))
        zp = int(g.integers(0, 256))
        x = np.float32((g.integers(-300, 300) + 0.5) * scale * np.float32(1 + g.normal() * 1e-7))
        assert Q.quantize(np.array([x]), Q.QParams(scale, zp, -(2 ** 15), 2 ** 15 - 1), rounding="fma")[0] \
            == _exact_fma_round(x, scale, zp)


def test_torch_rounding_rule_is_detected_and_documented(torch):
    _ignore_deprecations()
    rules = Q.torch_rounding(refresh=True)
    assert rules["tensor"] in Q.ROUNDINGS and rules["channel"] in Q.ROUNDINGS, rules
    cap = torch.backends.cpu.get_cpu_capability()
    if torch.__version__.startswith("2.13") and cap == "AVX2":
        assert rules == Q.DEFAULT_ROUNDING          # the pinned torch: the defaults are its rules
    x = ((np.arange(-50, 50) + 0.5) * np.float32(0.1)).astype(np.float32)
    qp = Q.QParams(0.1, 7, 0, 255)
    results = {r: Q.quantize(x, qp, rounding=r) for r in Q.ROUNDINGS}
    assert not np.array_equal(results["fma"], results["mul_round"])   # the rules really differ
    with pytest.raises(ValueError, match="rounding"):
        Q.quantize(x, qp, rounding="nearest")


@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
@pytest.mark.parametrize("shape,axis", [((7, 33), 0), ((33, 5), 1), ((4, 3, 3, 3), 0), ((2, 9, 17), 1)])
def test_quantize_per_channel_matches_torch(dtype, shape, axis, torch):
    _ignore_deprecations()
    g = np.random.default_rng(2)
    qmin, qmax = Q.qrange(8, SIGNED[dtype])
    C = shape[axis]
    for trial in range(20):
        scales = g.uniform(1e-3, 0.2, C).astype(np.float32)
        zps = g.integers(qmin, qmax + 1, C)
        bshape = [1] * len(shape)
        bshape[axis] = C
        if trial % 2:
            x = ((g.integers(-150, 150, shape) + 0.5) * scales.reshape(bshape)).astype(np.float32)
        else:
            x = g.normal(0, 3, shape).astype(np.float32)
        qp = Q.QParams(scales, zps, qmin, qmax, axis=axis)
        want = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales.astype(np.float64)),
                                          torch.from_numpy(zps), axis, _tdtype(torch, dtype)).int_repr().numpy()
        np.testing.assert_array_equal(Q.quantize(x, qp), want)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**31 - 1), signed=st.booleans())
def test_quantize_property_matches_torch(n, seed, signed, torch):
    _ignore_deprecations()
    g = np.random.default_rng(seed)
    x = (g.normal(0, 1, n) * 10 ** g.uniform(-3, 3)).astype(np.float32)
    qp = Q.qparams(x, 8, "affine", signed=signed)
    dt = torch.qint8 if signed else torch.quint8
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(qp.scale), qp.zero_point, dt).int_repr().numpy()
    np.testing.assert_array_equal(Q.quantize(x, qp), want)
    np.testing.assert_array_equal(Q.dequantize(Q.quantize(x, qp), qp),
                                  torch.quantize_per_tensor(torch.from_numpy(x), float(qp.scale),
                                                            qp.zero_point, dt).dequantize().numpy())


def test_large_input_chunks_match_torch(torch):
    _ignore_deprecations()
    x = np.random.default_rng(3).normal(0, 1, 200_003).astype(np.float32)
    x[::7] = (np.round(x[::7] / 0.02) + 0.5) * np.float32(0.02)    # many ties, across chunks
    qp = Q.QParams(0.02, 3, -128, 127)
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(np.float32(0.02)), 3, torch.qint8).int_repr().numpy()
    np.testing.assert_array_equal(Q.quantize(x, qp), want)


def test_saturation_matches_torch(torch):
    _ignore_deprecations()
    x = np.array([1e30, -1e30, 3e9, -3e9, 1e-30, -0.0] + [0.0] * 10, np.float32)
    qp = Q.QParams(0.01, 10, 0, 255)
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(np.float32(0.01)), 10, torch.quint8).int_repr().numpy()
    np.testing.assert_array_equal(Q.quantize(x, qp), want)


# ------------------------------------------------------------------ observers vs torch
@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
@pytest.mark.parametrize("scheme", ["affine", "symmetric"])
def test_minmax_observer_matches_torch(dtype, scheme, torch):
    _ignore_deprecations()
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    g = np.random.default_rng(4)
    tsch = {"affine": (torch.per_tensor_affine, torch.per_channel_affine),
            "symmetric": (torch.per_tensor_symmetric, torch.per_channel_symmetric)}[scheme]
    cases = [g.normal(0.3, 2, 50), g.uniform(0.5, 3, 40), -g.uniform(0.5, 3, 40), np.zeros(5),
             np.full(4, 1e-9), g.normal(0, 1, 1000) * 1e3, np.array([-1.0, 0.5, 2.0])]
    for x in cases:
        x = x.astype(np.float32)
        obs = MinMaxObserver(dtype=_tdtype(torch, dtype), qscheme=tsch[0])
        obs(torch.from_numpy(x))
        s, z = obs.calculate_qparams()
        qp = Q.qparams(x, 8, scheme, signed=SIGNED[dtype])
        assert np.float32(s.item()) == qp.scale and int(z.item()) == qp.zero_point, x[:4]
        W = np.stack([x * k for k in (1.0, 0.5, -2.0)])
        obs = PerChannelMinMaxObserver(ch_axis=0, dtype=_tdtype(torch, dtype), qscheme=tsch[1])
        obs(torch.from_numpy(W))
        s, z = obs.calculate_qparams()
        qp = Q.qparams(W, 8, scheme, axis=0, signed=SIGNED[dtype])
        np.testing.assert_array_equal(s.numpy().astype(np.float32), qp.scale)
        np.testing.assert_array_equal(z.numpy(), qp.zero_point)


def test_moving_average_observer_matches_torch(torch):
    _ignore_deprecations()
    from torch.ao.quantization import MovingAverageMinMaxObserver
    g = np.random.default_rng(5)
    batches = [g.normal(0, 1 + i, 64).astype(np.float32) for i in range(6)]
    obs = MovingAverageMinMaxObserver(averaging_constant=0.1)
    for b in batches:
        obs(torch.from_numpy(b))
    s, z = obs.calculate_qparams()
    qp = Q.qparams(batches, 8, observer="moving_average", averaging_constant=0.1)
    assert np.isclose(qp.scale, s.item(), rtol=1e-6) and abs(qp.zero_point - z.item()) <= 1


def test_symmetric_convention():
    x = np.array([-2.0, 0.1, 1.0], np.float32)
    qp = Q.qparams(x, 8, "symmetric")
    assert (qp.qmin, qp.qmax, qp.zero_point) == (-128, 127, 0)
    assert qp.scale == np.float32(2.0) / np.float32(127.5)
    q = Q.quantize(np.float32([-2.0, 2.0]), qp).tolist()
    assert q[1] == 127 and q[0] in (-128, -127)    # +-amax land near +-127.5; + side is clipped
    qn = Q.qparams(x, 8, "symmetric", narrow_range=True)
    assert (qn.qmin, qn.qmax, qn.zero_point) == (-127, 127, 0)
    assert qn.scale == np.float32(2.0) / np.float32(127)
    assert Q.quantize(np.float32([-2.0, 2.0]), qn).tolist() == [-127, 127]
    qu = Q.qparams(x, 8, "symmetric", signed=False)
    assert (qu.qmin, qu.qmax, qu.zero_point) == (0, 255, 128)
    assert Q.qparams(x, 4, "symmetric").qmin == -8


def test_other_observers_and_bits():
    g = np.random.default_rng(6)
    x = g.normal(0, 1, 10_000).astype(np.float32)
    x[:3] = [40.0, -35.0, 30.0]                       # outliers
    mm = Q.qparams(x, 4, "symmetric")
    pc = Q.qparams(x, 4, "symmetric", observer="percentile", percentile=99.9)
    ms = Q.qparams(x, 4, "symmetric", observer="mse")
    assert pc.scale < mm.scale and ms.scale < mm.scale
    errs = [Q.mse(x, Q.fake_quantize(x, qp)) for qp in (mm, pc, ms)]
    assert errs[2] <= min(errs[0], errs[1]) * 1.05
    for bits in (2, 3, 12, 16):
        qp = Q.qparams(x, bits)
        q = Q.quantize(x, qp)
        assert q.min() >= qp.qmin and q.max() <= qp.qmax
        assert Q.max_abs_error(x, Q.dequantize(q, qp)) <= qp.scale / 2 + 2 * np.spacing(np.float32(40))
    # about 6 dB per bit
    s8, s9 = (Q.sqnr(x, Q.fake_quantize(x, Q.qparams(x, b))) for b in (8, 9))
    assert 5.0 < s9 - s8 < 7.0
    assert Q.sqnr(x, x) == float("inf")


def test_torch_tensors_in_and_out(torch):
    _ignore_deprecations()
    x = torch.randn(4, 10)
    qp = Q.qparams(x, 8, axis=0)
    q = Q.quantize(x, qp)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.uint8
    assert isinstance(Q.fake_quantize(x, qp), torch.Tensor)


# ------------------------------------------------------------------ errors
def test_invalid_inputs_raise_clear_errors():
    x = np.ones(4, np.float32)
    for bits in (0, 1, 17, 2.5):
        with pytest.raises((ValueError, TypeError), match="bits"):
            Q.qparams(x, bits)
    for scale in (0.0, -1.0, np.nan, np.inf, 1e-50, 2e-39):      # 2e-39: 1/scale overflows float32
        with pytest.raises(ValueError, match="scale"):
            Q.QParams(scale, 0, -128, 127)
    with pytest.raises(ValueError, match="zero_point"):
        Q.QParams(0.1, 300, 0, 255)
    with pytest.raises(ValueError, match="zero_point"):
        Q.QParams(0.1, 1.5, 0, 255)
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize(np.array([1.0, np.nan], np.float32), Q.QParams(0.1, 0, 0, 255))
    with pytest.raises(ValueError, match="NaN"):
        Q.qparams(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="scheme"):
        Q.qparams(x, scheme="log")
    with pytest.raises(ValueError, match="observer"):
        Q.qparams(x, observer="max")
    with pytest.raises(ValueError, match="channels"):
        Q.quantize(np.ones((3, 4)), Q.QParams(np.ones(4), np.zeros(4, int), 0, 255, axis=0))
    with pytest.raises(TypeError, match="qp"):
        Q.quantize(x, (0.1, 0))


# ------------------------------------------------------------------ k-means, binary, ternary
def test_kmeans_linear_init_and_lloyd():
    g = np.random.default_rng(7)
    w = g.normal(0, 1, (50, 40)).astype(np.float32)
    cb, idx = Q.kmeans(w, 3, seed=0)
    assert cb.shape == (8,) and idx.shape == w.shape and idx.min() >= 0 and idx.max() < 8
    w_hat = Q.kmeans_reconstruct(cb, idx)
    # every weight is assigned to its nearest centroid, every centroid is its members' mean
    np.testing.assert_array_equal(np.abs(w[..., None] - cb).argmin(-1), idx)
    for k in range(8):
        if (idx == k).any():
            assert np.isclose(cb[k], w[idx == k].mean(), atol=1e-5)
    # k-means beats a uniform 3-bit grid in MSE
    lin = Q.fake_quantize(w, Q.qparams(w, 3, "affine"))
    assert Q.mse(w, w_hat) < Q.mse(w, lin)
    assert np.array_equal(Q.kmeans(w, 3, seed=0)[1], idx)     # deterministic


def test_kmeans_with_mask_only_clusters_kept_weights():
    g = np.random.default_rng(8)
    w = g.normal(0, 1, (30, 20)).astype(np.float32)
    mask = (np.abs(w) > 1.0).astype(np.float32)
    w = w * mask
    cb, idx = Q.kmeans(w, 2, mask=mask)
    assert (idx[mask == 0] == -1).all() and (idx[mask == 1] >= 0).all()
    w_hat = Q.kmeans_reconstruct(cb, idx)
    assert (w_hat[mask == 0] == 0).all()
    assert np.abs(cb).min() > 0.9                              # no centroid wasted on zeros
    with pytest.raises(ValueError, match="mask"):
        Q.kmeans(w, 2, mask=np.ones(3))


def test_kmeans_centroid_gradient_is_sum_of_member_gradients(torch):
    _ignore_deprecations()
    g = np.random.default_rng(9)
    w = g.normal(0, 1, (6, 5)).astype(np.float32)
    cb, idx = Q.kmeans(w, 2)
    grad = g.normal(0, 1, w.shape).astype(np.float32)
    c = torch.tensor(cb, requires_grad=True)
    (c[torch.from_numpy(idx.astype(np.int64))] * torch.from_numpy(grad)).sum().backward()
    np.testing.assert_allclose(Q.kmeans_centroid_grad(grad, idx, 4), c.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_binary_and_ternary():
    w = np.array([[0.5, -1.5, 0.0, 1.0], [2.0, -2.0, 2.0, -2.0]], np.float32)
    alpha, signs, w_hat = Q.binarize(w, axis=0)
    np.testing.assert_allclose(alpha, [0.75, 2.0])
    assert signs.tolist() == [[1, -1, 1, 1], [1, -1, 1, -1]]
    np.testing.assert_allclose(w_hat, alpha[:, None] * signs)
    # alpha = mean|W| minimises ||W - alpha B||^2 over alpha
    for a in (0.7, 0.8):
        assert np.sum((w[0] - a * signs[0]) ** 2) >= np.sum((w[0] - 0.75 * signs[0]) ** 2)
    a, t, _ = Q.ternarize(w[0], threshold=0.7)
    assert t.tolist() == [0, -1, 0, 1] and np.isclose(a, 1.25)


# ------------------------------------------------------------------ QAT, PTQ, integer-only
def _trained(seed=0, epochs=8):
    from compresslab import data
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 64, 10), seed=seed)
    nn.fit(m, d.X_train, d.y_train, epochs=epochs, progress=False)
    return m, d


def test_fakequant_ste_gradient_matches_torch_fakequantize(torch):
    _ignore_deprecations()
    g = np.random.default_rng(10)
    w = g.normal(0, 1, (4, 6)).astype(np.float32)
    fq = Q.FakeQuant(4, "affine", per_channel=False)
    fq.qp = Q.QParams(0.1, 8, 0, 15)                 # fixed range: some weights are clipped
    grad = g.normal(0, 1, w.shape).astype(np.float32)
    wt = torch.tensor(w, requires_grad=True)
    out = torch.fake_quantize_per_tensor_affine(wt, 0.1, 8, 0, 15)
    (out * torch.from_numpy(grad)).sum().backward()
    np.testing.assert_array_equal(fq.backward(w, grad), wt.grad.numpy())
    np.testing.assert_allclose(Q.fake_quantize(w, fq.qp), out.detach().numpy(), atol=1e-6)


def test_quantize_model_8bit_close_and_2bit_worse():
    m, d = _trained()
    acc = nn.evaluate(m, d.X_test, d.y_test)
    q8 = Q.quantize_model(m, 8, calib=d.X_train[:256])
    assert abs(nn.evaluate(q8, d.X_test, d.y_test) - acc) <= 0.01
    q2 = Q.quantize_model(m, 2, per_channel=False, calib=d.X_train[:256])
    assert nn.evaluate(q2, d.X_test, d.y_test) < acc - 0.05
    # weights take at most 2**bits distinct values per channel
    w = q8.model.layers[0].weight
    assert all(len(np.unique(row)) <= 256 for row in w)
    assert len(np.unique(q2.model.layers[0].weight)) <= 4
    with pytest.raises(ValueError, match="calib"):
        Q.quantize_model(m, 8)


def test_qat_improves_low_bit_accuracy():
    m, d = _trained()
    ptq = nn.evaluate(Q.quantize_model(m, 2, per_channel=False, act_bits=None), d.X_test, d.y_test)
    trained, _ = Q.qat(m, d.X_train, d.y_train, bits=2, per_channel=False, epochs=3, progress=False)
    qat = nn.evaluate(Q.quantize_model(trained, 2, per_channel=False, act_bits=None), d.X_test, d.y_test)
    assert qat > ptq + 0.02


def test_quantize_multiplier():
    for M in (0.3, 1e-4, 0.999999, 0.5, 2.0 ** -20):
        M0, n = Q.quantize_multiplier(M)
        assert 2 ** 30 <= int(M0) < 2 ** 31
        assert abs(int(M0) * 2.0 ** -int(n) - M) <= M * 2 ** -30
    with pytest.raises(ValueError, match="M"):
        Q.quantize_multiplier(1.5)


def test_integer_linear_matches_fake_quant_within_one_lsb():
    g = np.random.default_rng(11)
    layer = nn.Linear(64, 30, seed=1)
    x = g.uniform(0, 1, (200, 64)).astype(np.float32)
    in_qp = Q.qparams(x, 8)
    y = x @ layer.weight.T + layer.bias
    for relu in (False, True):
        out_qp = Q.qparams(np.maximum(y, 0) if relu else y, 8)
        for per_channel in (True, False):
            il = Q.IntegerLinear(layer, in_qp, out_qp, per_channel=per_channel, relu=relu)
            q_x = Q.quantize(x, in_qp)
            acc = il.accumulate(q_x)
            assert acc.dtype == np.int32 and il.M0.dtype == np.int32 and il.q_w.dtype == np.int8
            got = il.forward(q_x).astype(int)
            want = il.reference(q_x).astype(int)
            assert np.abs(got - want).max() <= 1
            assert (got == want).mean() > 0.99


def test_model_size():
    m = nn.mlp((64, 300, 100, 10))
    assert Q.model_size(m, 32) == nn.nbytes(m, 32)
    w = 64 * 300 + 300 * 100 + 100 * 10
    assert Q.model_size(m, 8) == w + 4 * 410 + 3 * 8
    assert Q.model_size(m, 8, per_channel=True) == w + 4 * 410 + 8 * 410


def test_cuda_tensors_round_trip_on_device(torch):
    _ignore_deprecations()
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.randn(1000, device="cuda")
    qp = Q.qparams(x, 8)
    q = Q.quantize(x, qp)
    assert q.device.type == "cuda" and q.dtype == torch.uint8
    want = torch.quantize_per_tensor(x.cpu(), float(qp.scale), qp.zero_point, torch.quint8).int_repr()
    assert torch.equal(q.cpu(), want)
    assert Q.fake_quantize(x, qp).device.type == "cuda"


@pytest.mark.parametrize("scale", [0.02, 0.0418503, 1 / 255, 0.5, 3.0e-4])
def test_fast_fma_kernel_equals_exact_kernel(scale):
    g = np.random.default_rng(13)
    x = g.normal(0, 1, 70_001).astype(np.float32)
    s32 = np.float32(scale)
    x[::3] = (np.rint(x[::3] / s32) + np.float32(0.5)) * s32            # exact ties
    x[1::3] = np.nextafter(x[::3][: len(x[1::3])], np.float32(np.inf))   # one ulp off a tie
    for signed in (False, True):
        qmin, qmax = Q.qrange(8, signed)
        qp = Q.QParams(scale, (qmin + qmax + 1) // 2 - 3, qmin, qmax)
        np.testing.assert_array_equal(Q._quantize_per_tensor_fma_fast(x, qp),
                                      Q._quantize_per_tensor_fma_exact(x, qp))


def _adversarial(n, scale, seed=13):
    """Normal values, exact ties of x / scale, values one ulp off a tie, and the double-rounding
    case of test_double_rounding_case_fma_rule_is_exact."""
    g = np.random.default_rng(seed)
    x = g.normal(0, 1, n).astype(np.float32)
    s32 = np.float32(scale)
    x[::3] = (np.rint(x[::3] / s32) + np.float32(0.5)) * s32
    x[1::3] = np.nextafter(x[::3][: len(x[1::3])], np.float32(np.inf))
    x[2::97] = np.float32(0.5073109865188599)
    return x


def _loop_cases():
    for scale in (0.02, 0.0418503, 1 / 255, 0.5, 3.0e-4, 1.0146375):
        for bits, signed in ((8, False), (8, True), (4, True), (16, False), (16, True)):
            qmin, qmax = Q.qrange(bits, signed)
            zp = 129 if scale == 1.0146375 and not signed else (qmin + qmax + 1) // 2 - 3
            yield Q.QParams(scale, min(max(zp, qmin), qmax), qmin, qmax)


def _numba():
    pytest.importorskip("numba")
    assert Q._compiled_loop() is not None


@pytest.mark.parametrize("rule", Q.ROUNDINGS)
@pytest.mark.parametrize("n", [1, Q._LOOP_BLOCK - 1, Q._LOOP_BLOCK, Q._LOOP_BLOCK + 1, 70_001])
def test_compiled_loop_equals_numpy_kernels(rule, n):
    """The one-pass loop (numba) gives the NumPy kernels' integers, near ties included."""
    _numba()
    for qp in _loop_cases():
        x = _adversarial(n, qp.scale)
        want = Q._quantize_per_tensor(x, qp, rule, kernel="numpy")
        np.testing.assert_array_equal(Q._quantize_per_tensor(x, qp, rule, kernel="loop"), want,
                                      err_msg=f"{qp} {rule}")
        if rule == "fma":
            np.testing.assert_array_equal(want, Q._quantize_per_tensor_fma_exact(x, qp))


@pytest.mark.parametrize("rule", Q.ROUNDINGS)
def test_uncompiled_loop_is_the_same_function(rule):
    """The loop as plain Python (no numba needed) gives the same integers: what numba compiles is
    what a reader reads."""
    x = _adversarial(600, 0.0418503)
    for qp in list(_loop_cases())[:10]:
        np.testing.assert_array_equal(Q._quantize_per_tensor_loop(x, qp, rule, compiled=False),
                                      Q._quantize_per_tensor(x, qp, rule, kernel="numpy"))


def test_compiled_loop_saturates_and_rejects_nan():
    _numba()
    qp = Q.QParams(0.01, 10, 0, 255)
    x = np.zeros(1000, np.float32)
    x[[3, 300, 999]] = [3e38, -3e38, 1e9]
    for rule in Q.ROUNDINGS:
        q = Q._quantize_per_tensor(x, qp, rule, kernel="loop")
        assert q[3] == 255 and q[300] == 0 and q[999] == 255 and (np.delete(q, [3, 300, 999]) == 10).all()
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[517] = bad
            with pytest.raises(ValueError, match="NaN or infinite"):
                Q._quantize_per_tensor(y, qp, rule, kernel="loop")


def test_quantize_uses_the_compiled_loop_for_large_inputs(monkeypatch):
    _numba()
    calls = []
    real = Q._quantize_per_tensor_loop
    monkeypatch.setattr(Q, "_quantize_per_tensor_loop", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = _adversarial(Q.JIT_MIN_SIZE, 0.02)
    qp = Q.QParams(0.02, 3, -128, 127)
    Q.quantize(x[:1000], qp)
    assert not calls                                   # small: the NumPy kernels
    q = Q.quantize(x, qp, rounding="fma")
    assert calls                                       # large: the loop
    np.testing.assert_array_equal(q, Q._quantize_per_tensor_fma_exact(x, qp))
    monkeypatch.setattr(Q, "JIT_MIN_SIZE", None)       # switched off: NumPy again
    calls.clear()
    Q.quantize(x, qp)
    assert not calls


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2000), seed=st.integers(0, 2**31 - 1), bits=st.integers(2, 16),
       signed=st.booleans(), rule=st.sampled_from(Q.ROUNDINGS))
def test_compiled_loop_property(n, seed, bits, signed, rule):
    _numba()
    g = np.random.default_rng(seed)
    x = (g.normal(0, 1, n) * 10 ** g.uniform(-3, 3)).astype(np.float32)
    qp = Q.qparams(x, bits, "affine", signed=signed)
    k = g.integers(qp.qmin, qp.qmax + 1, n // 2) - qp.zero_point + 0.5
    x[: n // 2] = (k * np.float32(qp.scale)).astype(np.float32)    # ties (up to float32 rounding)
    np.testing.assert_array_equal(Q._quantize_per_tensor(x, qp, rule, kernel="loop"),
                                  Q._quantize_per_tensor(x, qp, rule, kernel="numpy"))


def test_compiled_loop_without_a_writable_cache(monkeypatch):
    """Where numba finds no folder to cache in (read-only install and home), it compiles anyway."""
    _numba()
    import numba

    real = numba.njit

    asked = []

    def njit(*a, cache=False, **k):
        asked.append(cache)
        if cache:
            raise RuntimeError("cannot cache function '_quantize_loop': no locator available")
        return real(*a, cache=cache, **k)

    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(Q, "_LOOP", None)
    assert Q._compiled_loop() is not None and asked == [True, False]
    x = _adversarial(1000, 0.02)
    qp = Q.QParams(0.02, 3, -128, 127)
    np.testing.assert_array_equal(Q._quantize_per_tensor(x, qp, "fma", kernel="loop"),
                                  Q._quantize_per_tensor_fma_exact(x, qp))
