"""compresslab.nn: gradients against finite differences and torch autograd, training, files."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compresslab import nn


def _as64(model):
    for _, layer, attr in model.named_parameters():
        setattr(layer, attr, getattr(layer, attr).astype(np.float64))
    return model


def _loss_and_grads(model, x, y):
    logits = model.forward(x)
    loss, g = nn.cross_entropy(logits, y)
    dx = model.backward(g)
    return loss, {name: layer.grads[attr].copy() for name, layer, attr in model.named_parameters()}, dx


def _finite_difference(f, a, eps=1e-6, samples=12, rng=None):
    rng = rng or np.random.default_rng(0)
    flat = a.reshape(-1)
    out = {}
    for i in rng.choice(flat.size, min(samples, flat.size), replace=False):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        out[int(i)] = (up - down) / (2 * eps)
    return out


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_gradients_match_finite_differences(kind, rng):
    if kind == "mlp":
        model = _as64(nn.mlp((6, 5, 4, 3), seed=1))
        x = rng.normal(size=(7, 6))
    else:
        model = _as64(nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1, seed=1), nn.ReLU(),
                                    nn.Flatten(), nn.Linear(3 * 3 * 3, 4, seed=2)))
        x = rng.normal(size=(5, 2, 5, 5))
    y = rng.integers(0, 3 if kind == "mlp" else 4, len(x))
    _, grads, dx = _loss_and_grads(model, x, y)
    f = lambda: nn.cross_entropy(model.forward(x), y)[0]  # noqa: E731
    for name, layer, attr in model.named_parameters():
        for i, num in _finite_difference(f, getattr(layer, attr)).items():
            assert grads[name].reshape(-1)[i] == pytest.approx(num, rel=1e-5, abs=1e-8), name
    for i, num in _finite_difference(f, x).items():
        assert dx.reshape(-1)[i] == pytest.approx(num, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_forward_and_gradients_match_torch_autograd(stride, padding, rng, torch):
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=stride, padding=padding, seed=3), nn.ReLU(),
                          nn.Flatten())
    side = (7 + 2 * padding - 3) // stride + 1
    model.layers.append(nn.Linear(4 * side * side, 5, seed=4))
    x = rng.normal(size=(6, 2, 7, 7)).astype(np.float32)
    y = rng.integers(0, 5, 6)
    loss, grads, dx = _loss_and_grads(model, x, y)
    tm = nn.to_torch(model)
    tx = torch.from_numpy(x).requires_grad_(True)
    tloss = torch.nn.functional.cross_entropy(tm(tx), torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for (name, tp) in tm.named_parameters():
        np.testing.assert_allclose(grads[name], tp.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_to_torch_from_torch_round_trip_is_exact(torch):
    for model in (nn.mlp(seed=0), nn.cnn(seed=0)):
        back = nn.from_torch(nn.to_torch(model))
        for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
            assert k == k2 and a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b)
        assert back.architecture() == model.architecture()
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    x = torch.randn(5, 4)
    np.testing.assert_allclose(nn.from_torch(tm)(x.numpy()), tm(x).detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_optimizers_match_torch(name, rng, torch):
    model = nn.mlp((5, 4, 3), seed=2)
    tm = nn.to_torch(model)
    opt = nn.SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-3) if name == "sgd" else \
        nn.Adam(model, lr=0.01, weight_decay=1e-3)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3) if name == "sgd" \
        else torch.optim.Adam(tm.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(5):
        x = rng.normal(size=(8, 5)).astype(np.float32)
        y = rng.integers(0, 3, 8)
        _loss_and_grads(model, x, y)
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
    for (k, a), tp in zip(model.state_dict().items(), tm.parameters()):
        np.testing.assert_allclose(a, tp.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    loss, g = nn.cross_entropy(z, np.array([2]))
    assert np.isfinite(loss) and np.isfinite(g).all()
    assert loss == pytest.approx(2000.0)


def test_mlp_reaches_97_percent_and_cnn_too(digits):
    mlp = nn.mlp(seed=0)
    hist = nn.fit(mlp, digits.X_train, digits.y_train, seed=0, progress=False)
    assert nn.evaluate(mlp, digits.X_test, digits.y_test) >= 0.97
    assert len(hist.loss) == 30 and hist.loss[-1] < hist.loss[0]
    cnn = nn.cnn(seed=0)
    nn.fit(cnn, digits.images("train"), digits.y_train, epochs=20, lr=2e-3, seed=0, progress=False)
    assert nn.evaluate(cnn, digits.images("test"), digits.y_test) >= 0.97


def test_training_is_deterministic(digits):
    a, b = nn.mlp(seed=3), nn.mlp(seed=3)
    for m in (a, b):
        nn.fit(m, digits.X_train[:200], digits.y_train[:200], epochs=2, seed=7, progress=False)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        np.testing.assert_array_equal(x, y)


def test_masks_keep_pruned_weights_exactly_zero(digits):
    model = nn.mlp((64, 32, 10), seed=0)
    mask = (np.random.default_rng(0).random(model[0].weight.shape) > 0.7).astype(np.float32)
    model[0].weight *= mask
    model[0].masks["weight"] = mask
    for opt in ("adam", "sgd"):
        nn.fit(model, digits.X_train, digits.y_train, epochs=2, optimizer=opt, lr=0.01, progress=False)
        assert np.all(model[0].weight[mask == 0] == 0)
        assert np.count_nonzero(model[0].weight) == np.count_nonzero(mask)


def test_weight_transform_hook_is_used_forward_and_backward(rng):
    class Halve:
        def forward(self, w):
            return 0.5 * w

        def backward(self, w, grad):
            return 0.5 * grad

    layer = nn.Linear(3, 2, seed=0)
    layer.weight_transform = Halve()
    x = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(x), x @ (0.5 * layer.weight).T + layer.bias, rtol=1e-6)
    g = np.ones((4, 2), np.float32)
    layer.backward(g)
    np.testing.assert_allclose(layer.grads["weight"], 0.5 * (g.T @ x), rtol=1e-6)


def test_confusion_matrix_counts(digits):
    model = nn.mlp((64, 10), seed=0)
    cm = nn.confusion_matrix(model, digits.X_test, digits.y_test, num_classes=10)
    assert cm.sum() == len(digits.y_test)
    assert np.trace(cm) / cm.sum() == pytest.approx(nn.evaluate(model, digits.X_test, digits.y_test))
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(digits.y_test, minlength=10))


def test_counts_and_bytes():
    m = nn.mlp((64, 300, 100, 10))
    assert nn.num_params(m) == 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10 == 50610
    assert nn.nbytes(m) == 4 * 50610
    assert nn.nbytes(nn.mlp((2, 1)), bits=4) == 2  # 3 params * 4 bits = 12 bits -> 2 bytes
    assert "total" in nn.summary(m) and "202440" in nn.summary(m)


@pytest.mark.parametrize("bad,exc,word", [
    (lambda: nn.Linear(0, 3), ValueError, "in_features"),
    (lambda: nn.Linear(3, 2)(np.zeros((4, 5), np.float32)), ValueError, "expects input"),
    (lambda: nn.Conv2d(1, 2, 3)(np.zeros((4, 8, 8), np.float32)), ValueError, "expects input"),
    (lambda: nn.fit(nn.mlp((2, 2)), np.full((3, 2), np.nan), np.zeros(3, int)), ValueError, "NaN"),
    (lambda: nn.fit(nn.mlp((2, 2)), np.zeros((0, 2)), np.zeros(0, int)), ValueError, "empty"),
    (lambda: nn.fit(nn.mlp((2, 2)), np.zeros((3, 2)), np.zeros(4, int)), ValueError, "y has 4"),
    (lambda: nn.fit(nn.mlp((2, 2)), "abc", np.zeros(3, int)), TypeError, "X"),
    (lambda: nn.fit(nn.mlp((2, 2)), np.zeros((3, 2)), np.zeros(3, int), epochs=-1), ValueError, "epochs"),
    (lambda: nn.fit(nn.mlp((2, 2)), np.zeros((3, 2)), np.zeros(3, int), optimizer="rmsprop"), ValueError, "optimizer"),
    (lambda: nn.Adam(nn.mlp((2, 2)), lr=0), ValueError, "lr"),
    (lambda: nn.evaluate(nn.mlp((2, 2)), np.zeros((3, 2)), np.array([0.5, 1, 2])), TypeError, "y"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, "layer 1"),
    (lambda: nn.mlp((5,)), ValueError, "sizes"),
])
def test_bad_input_raises_clear_errors(bad, exc, word):
    with pytest.raises(exc, match=word):
        bad()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), fan_in=st.integers(1, 6), fan_out=st.integers(1, 6), seed=st.integers(0, 99))
def test_linear_matches_formula(n, fan_in, fan_out, seed):
    g = np.random.default_rng(seed)
    layer = nn.Linear(fan_in, fan_out, seed=seed)
    x = g.normal(size=(n, fan_in)).astype(np.float32)
    np.testing.assert_allclose(layer(x), x @ layer.weight.T + layer.bias, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------------------------
def test_save_load_round_trip_with_masks_and_extra(tmp_path, rng):
    model = nn.cnn(seed=1)
    model[0].masks["weight"] = (rng.random(model[0].weight.shape) > 0.5).astype(np.float32)
    size = nn.save(model, tmp_path / "m.npz", extra={"codebook": np.arange(4, dtype=np.float32)})
    assert size == (tmp_path / "m.npz").stat().st_size > 0
    back, extra = nn.load_with_extra(tmp_path / "m.npz")
    x = rng.normal(size=(3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(back(x), model(x))
    np.testing.assert_array_equal(back[0].masks["weight"], model[0].masks["weight"])
    np.testing.assert_array_equal(extra["codebook"], np.arange(4))


def test_truncated_file_gives_clear_error(tmp_path):
    p = tmp_path / "m.npz"
    nn.save(nn.mlp(seed=0), p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        nn.load(p)


def test_tampered_file_gives_clear_error(tmp_path):
    p = tmp_path / "m.npz"
    model = nn.mlp((4, 3), seed=0)
    nn.save(model, p)
    arrays = dict(np.load(p, allow_pickle=False))
    arrays["param/0.weight"] = arrays["param/0.weight"] + 1
    np.savez(p, **arrays)
    with pytest.raises(ValueError, match="checksum"):
        nn.load(p)


def test_files_that_are_not_models_or_need_pickle_are_refused(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a compresslab model"):
        nn.load(p)
    np.savez(p, __arch__=np.array("[]"), __sha256__=np.array("0"), obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="never loads pickle"):
        nn.load(p)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nn.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="pickle"):
        nn.save(nn.mlp((2, 2)), p, extra={"o": np.array([None], dtype=object)})


def test_copy_does_not_share_weight_transform_state():
    class Counter:
        def __init__(self):
            self.calls = 0

        def forward(self, w):
            self.calls += 1
            return w

        def backward(self, w, grad):
            return grad

    m = nn.mlp((3, 2), seed=0)
    m[0].weight_transform = Counter()
    c = m.copy()
    c(np.zeros((1, 3), np.float32))
    assert c[0].weight_transform.calls == 1 and m[0].weight_transform.calls == 0


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="real numbers"):
        nn.evaluate(nn.mlp((2, 2)), np.ones((3, 2), np.complex64), np.zeros(3, int))
