"""compresslab.quant: observers equal to torch's, k-means, binary, QAT, PTQ, integer-only.

quantize itself, its kernels and their agreement with torch: tests/test_quant_kernels.py."""

import numpy as np
import pytest

from compresslab import nn
from compresslab import quant as Q

SIGNED = {"qint8": True, "quint8": False}
# torch warns that its quantization API is deprecated (torchao replaces it); the kernels are the same.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated.*")


# ------------------------------------------------------------------ observers vs torch
@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
@pytest.mark.parametrize("scheme", ["affine", "symmetric"])
def test_minmax_observer_matches_torch(dtype, scheme, torch):
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    g = np.random.default_rng(4)
    tsch = {"affine": (torch.per_tensor_affine, torch.per_channel_affine),
            "symmetric": (torch.per_tensor_symmetric, torch.per_channel_symmetric)}[scheme]
    cases = [g.normal(0.3, 2, 50), g.uniform(0.5, 3, 40), -g.uniform(0.5, 3, 40), np.zeros(5),
             np.full(4, 1e-9), g.normal(0, 1, 1000) * 1e3, np.array([-1.0, 0.5, 2.0])]
    for x in cases:
        x = x.astype(np.float32)
        obs = MinMaxObserver(dtype=getattr(torch, dtype), qscheme=tsch[0])
        obs(torch.from_numpy(x))
        s, z = obs.calculate_qparams()
        qp = Q.qparams(x, 8, scheme, signed=SIGNED[dtype])
        assert np.float32(s.item()) == qp.scale and int(z.item()) == qp.zero_point, x[:4]
        W = np.stack([x * k for k in (1.0, 0.5, -2.0)])
        obs = PerChannelMinMaxObserver(ch_axis=0, dtype=getattr(torch, dtype), qscheme=tsch[1])
        obs(torch.from_numpy(W))
        s, z = obs.calculate_qparams()
        qp = Q.qparams(W, 8, scheme, axis=0, signed=SIGNED[dtype])
        np.testing.assert_array_equal(s.numpy().astype(np.float32), qp.scale)
        np.testing.assert_array_equal(z.numpy(), qp.zero_point)


def test_moving_average_observer_matches_torch(torch):
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
    trained = m.copy()
    Q.qat(trained, d.X_train, d.y_train, bits=2, per_channel=False, epochs=3, progress=False)
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
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.randn(1000, device="cuda")
    qp = Q.qparams(x, 8)
    q = Q.quantize(x, qp)
    assert q.device.type == "cuda" and q.dtype == torch.uint8
    want = torch.quantize_per_tensor(x.cpu(), float(qp.scale), qp.zero_point, torch.quint8).int_repr()
    assert torch.equal(q.cpu(), want)
    assert Q.fake_quantize(x, qp).device.type == "cuda"


def test_finetune_codebooks_trains_in_place_and_keeps_the_indices():
    m, d = _trained()
    km, books = Q.kmeans_quantize_model(m, 2, seed=0)
    before = [l.weight.copy() for l in km.layers if hasattr(l, "weight")]
    new = Q.finetune_codebooks(km, books, d.X_train, d.y_train, epochs=1, lr=1e-3, progress=False)
    weighted = [l for l in km.layers if hasattr(l, "weight")]
    assert len(new) == len(books) == len(weighted)
    for layer, (cb, idx), (cb0, idx0), w0 in zip(weighted, new, books, before):
        np.testing.assert_array_equal(idx, idx0)                       # the indices stay
        assert not np.array_equal(cb, cb0)                             # the centroids moved
        np.testing.assert_array_equal(layer.weight, Q.kmeans_reconstruct(cb, idx))   # in place
        assert not np.array_equal(layer.weight, w0) and layer.weight_transform is None
        assert len(np.unique(layer.weight)) <= 4


def test_kmeans_quantize_model_drops_a_qat_transform():
    m, d = _trained()
    Q.qat(m, d.X_train[:64], d.y_train[:64], bits=4, epochs=1, progress=False)
    km, _ = Q.kmeans_quantize_model(m, 2, seed=0)
    assert all(getattr(l, "weight_transform", None) is None for l in km.layers)
    assert all(isinstance(l.weight_transform, Q.FakeQuant) for l in m.layers if hasattr(l, "weight"))
