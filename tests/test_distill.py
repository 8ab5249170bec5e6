"""compresslab.distill: torch as the oracle for the loss and its gradient, finite differences,
properties, numerical safety and input validation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compresslab.distill as D
from compresslab import data, nn

TS = (0.5, 1.0, 2.0, 4.0, 20.0)
ALPHAS = (0.0, 0.3, 0.9, 1.0)


def _batch(seed, n=7, c=5, scale=3.0, unlabeled=0):
    g = np.random.default_rng(seed)
    s = (scale * g.normal(size=(n, c))).astype(np.float64)
    t = (scale * g.normal(size=(n, c))).astype(np.float64)
    y = g.integers(0, c, n)
    y[:unlabeled] = -1
    return s, t, y


def _torch_kd(s, t, y, T, alpha):
    """The industrial formula, written with torch.nn.functional, differentiated by autograd."""
    import torch  # its callers take the torch fixture

    F = torch.nn.functional
    st_ = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float64)
    yt = torch.tensor(y)
    n = s.shape[0]
    hard = F.cross_entropy(st_, yt, ignore_index=-1, reduction="sum") / n
    soft = F.kl_div(F.log_softmax(st_ / T, dim=1), F.softmax(tt / T, dim=1),
                    reduction="batchmean") * T ** 2
    loss = (1 - alpha) * hard + alpha * soft
    loss.backward()
    return float(loss.detach()), st_.grad.numpy()


# --------------------------------------------------------------------------------------------
# Agreement with torch
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", TS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_kd_loss_and_grad_equal_torch(T, alpha, torch):
    s, t, y = _batch(int(T * 10 + alpha * 100))
    loss, grad = D.kd_loss(s, t, y, T=T, alpha=alpha)
    ref_loss, ref_grad = _torch_kd(s, t, y, T, alpha)
    assert loss == pytest.approx(ref_loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_full_labels_equal_plain_torch_mean_cross_entropy(torch):
    F = torch.nn.functional
    s, t, y = _batch(3, n=16, c=10)
    T, alpha = 3.0, 0.7
    st_ = torch.tensor(s, requires_grad=True)
    loss_t = ((1 - alpha) * F.cross_entropy(st_, torch.tensor(y))
              + alpha * T * T * F.kl_div(F.log_softmax(st_ / T, 1), F.softmax(torch.tensor(t) / T, 1),
                                         reduction="batchmean"))
    loss_t.backward()
    loss, grad = D.kd_loss(s, t, y, T, alpha)
    assert loss == pytest.approx(float(loss_t.detach()), rel=1e-10)
    np.testing.assert_allclose(grad, st_.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("unlabeled", [1, 4, 7])
def test_unlabelled_samples_equal_torch_ignore_index(unlabeled, torch):
    s, t, y = _batch(11, n=7, unlabeled=unlabeled)
    for T, alpha in ((1.0, 0.5), (4.0, 0.9), (2.0, 0.0)):
        loss, grad = D.kd_loss(s, t, y, T=T, alpha=alpha)
        ref_loss, ref_grad = _torch_kd(s, t, y, T, alpha)
        assert loss == pytest.approx(ref_loss, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    # unlabelled rows get no hard-label gradient at all
    _, g = D.kd_loss(s, t, y, T=2.0, alpha=0.0)
    assert np.all(g[:unlabeled] == 0)


def test_float32_inputs_agree_with_torch_float32(torch):
    s, t, y = _batch(5, n=32, c=10)
    s32, t32 = s.astype(np.float32), t.astype(np.float32)
    loss, grad = D.kd_loss(s32, t32, y, T=4.0, alpha=0.9)
    assert grad.dtype == np.float32
    ref_loss, ref_grad = _torch_kd(s32.astype(np.float64), t32.astype(np.float64), y, 4.0, 0.9)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("T", TS)
def test_softmax_and_log_softmax_equal_torch(T, torch):
    z = np.random.default_rng(0).normal(scale=10, size=(6, 9))
    np.testing.assert_allclose(D.softmax(z, T), torch.softmax(torch.tensor(z) / T, -1).numpy(),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(D.log_softmax(z, T),
                               torch.log_softmax(torch.tensor(z) / T, -1).numpy(), rtol=1e-12)


def test_torch_tensors_in_torch_tensors_out(torch):
    s, t, y = _batch(2)
    st_, tt = torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)
    loss, grad = D.kd_loss(st_, tt, torch.tensor(y), T=2.0, alpha=0.5)
    assert isinstance(grad, torch.Tensor) and grad.dtype == torch.float32
    assert isinstance(loss, float)
    ref_loss, ref_grad = _torch_kd(s.astype(np.float32).astype(np.float64),
                                   t.astype(np.float32).astype(np.float64), y, 2.0, 0.5)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(grad.numpy(), ref_grad, rtol=1e-5, atol=1e-7)
    p = D.softmax(st_, T=3.0)
    assert isinstance(p, torch.Tensor)
    torch.testing.assert_close(p, torch.softmax(st_ / 3.0, -1))


# --------------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (2.0, 0.0), (4.0, 0.9), (8.0, 1.0), (0.7, 0.3)])
def test_gradient_equals_finite_differences(T, alpha):
    s, t, y = _batch(7, n=4, c=6, unlabeled=1)
    _, grad = D.kd_loss(s, t, y, T, alpha)
    eps = 1e-6
    num = np.zeros_like(s)
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            sp, sm = s.copy(), s.copy()
            sp[i, j] += eps
            sm[i, j] -= eps
            num[i, j] = (D.kd_loss(sp, t, y, T, alpha)[0] - D.kd_loss(sm, t, y, T, alpha)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)


def test_hint_loss_equals_torch_and_finite_differences(torch):
    g = np.random.default_rng(0)
    r, h = g.normal(size=(5, 4)), g.normal(size=(5, 4))
    loss, grad = D.hint_loss(r, h)
    rt = torch.tensor(r, requires_grad=True)
    ref = 0.5 * torch.nn.functional.mse_loss(rt, torch.tensor(h), reduction="sum") / 5
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    np.testing.assert_allclose(grad, rt.grad.numpy(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------------------------
logit_arrays = st.integers(1, 6).flatmap(lambda n: st.integers(2, 8).flatmap(
    lambda c: st.tuples(
        st.lists(st.floats(-50, 50), min_size=n * c, max_size=n * c).map(lambda v: np.reshape(v, (n, c))),
        st.lists(st.floats(-50, 50), min_size=n * c, max_size=n * c).map(lambda v: np.reshape(v, (n, c))),
        st.lists(st.integers(-1, c - 1), min_size=n, max_size=n).map(np.array))))


@settings(max_examples=60, deadline=None)
@given(logit_arrays, st.floats(0.1, 30), st.floats(0, 1))
def test_properties(batch, T, alpha):
    s, t, y = batch
    loss, grad = D.kd_loss(s, t, y, T, alpha)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss >= -1e-9  # CE >= 0 and KL >= 0
    # the gradient of each row sums to zero (softmax is shift-invariant)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-9)
    # logits shifted by a constant per row give the same loss
    shift = np.arange(len(s))[:, None] * 7.0
    assert D.kd_loss(s + shift, t - shift, y, T, alpha)[0] == pytest.approx(loss, rel=1e-7, abs=1e-7)
    # a student equal to the teacher has zero soft loss
    assert D.kd_loss(t, t, None, T, 1.0)[0] == pytest.approx(0.0, abs=1e-9)
    p = D.softmax(s, T)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    # higher temperature never lowers the entropy of the softened distribution
    assert (D.entropy(D.softmax(s, 2 * T)) >= D.entropy(p) - 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(logit_arrays, st.floats(0.5, 10))
def test_alpha_interpolates_linearly(batch, T):
    s, t, y = batch
    l0, g0 = D.kd_loss(s, t, y, T, 0.0)
    l1, g1 = D.kd_loss(s, t, y, T, 1.0)
    lm, gm = D.kd_loss(s, t, y, T, 0.25)
    assert lm == pytest.approx(0.75 * l0 + 0.25 * l1, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(gm, 0.75 * g0 + 0.25 * g1, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Numerical safety
# --------------------------------------------------------------------------------------------
def test_no_nan_when_teacher_probabilities_underflow(torch):
    t = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]], dtype=np.float32)
    s = np.array([[-1000.0, 1000.0, 0.0], [3.0, 1.0, 2.0]], dtype=np.float32)
    for T in (0.1, 1.0, 4.0):
        for alpha in (0.0, 0.5, 1.0):
            loss, grad = D.kd_loss(s, t, np.array([0, -1]), T, alpha)
            assert np.isfinite(loss) and np.isfinite(grad).all()
            ref_loss, ref_grad = _torch_kd(s.astype(np.float64), t.astype(np.float64),
                                           np.array([0, -1]), T, alpha)
            assert loss == pytest.approx(ref_loss, rel=1e-6)
            np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)
    p = D.softmax(t, 1.0)
    assert p[0, 2] == 0.0 and np.isfinite(D.log_softmax(t)).all()
    assert np.isfinite(D.entropy(p)).all()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(T):
    s, t, y = _batch(0)
    with pytest.raises(ValueError, match="T must be"):
        D.kd_loss(s, t, y, T=T, alpha=0.5)
    with pytest.raises(ValueError, match="T must be"):
        D.softmax(s, T)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_bad_alpha(alpha):
    s, t, y = _batch(0)
    with pytest.raises(ValueError, match="alpha must be"):
        D.kd_loss(s, t, y, T=2.0, alpha=alpha)


def test_mismatched_shapes_and_labels():
    s, t, y = _batch(0, n=7, c=5)
    with pytest.raises(ValueError, match="same shape"):
        D.kd_loss(s, t[:, :4], y, 2.0, 0.5)
    with pytest.raises(ValueError, match="same shape"):
        D.kd_loss(s, t[:6], y, 2.0, 0.5)
    with pytest.raises(ValueError, match="labels has 6 entries"):
        D.kd_loss(s, t, y[:6], 2.0, 0.5)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 4\]"):
        D.kd_loss(s, t, np.array([0, 1, 2, 3, 4, 5, 0]), 2.0, 0.5)
    with pytest.raises(ValueError, match="student_logits must have 2 dimensions"):
        D.kd_loss(s[0], t[0], y[:1], 2.0, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        D.kd_loss(np.full_like(s, np.nan), t, y, 2.0, 0.5)


# --------------------------------------------------------------------------------------------
# Training a student
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_teacher():
    d = data.load_digits(seed=0)
    teacher = nn.mlp((64, 64, 10), seed=0)
    nn.fit(teacher, d.X_train, d.y_train, epochs=15, progress=False)
    return d, teacher


def test_train_student_leaves_teacher_frozen_and_learns(digits_teacher):
    d, teacher = digits_teacher
    before = {k: v.copy() for k, v in teacher.state_dict().items()}
    student = nn.mlp((64, 16, 10), seed=1)
    hist = D.train_student(student, teacher, d.X_train, d.y_train, T=4.0, alpha=0.9,
                           epochs=10, progress=False)
    for k, v in teacher.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert not teacher.training
    assert len(hist.loss) == 10 and hist.loss[-1] < hist.loss[0]
    assert nn.evaluate(student, d.X_val, d.y_val) > 0.85


def test_train_student_alpha0_equals_plain_fit(digits_teacher):
    d, teacher = digits_teacher
    a, b = nn.mlp((64, 16, 10), seed=3), nn.mlp((64, 16, 10), seed=3)
    nn.fit(a, d.X_train, d.y_train, epochs=3, progress=False, seed=5)
    D.train_student(b, teacher, d.X_train, d.y_train, T=4.0, alpha=0.0, epochs=3,
                    progress=False, seed=5)
    for k, v in a.state_dict().items():
        np.testing.assert_allclose(b.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_train_student_without_labels_uses_teacher_only(digits_teacher):
    d, teacher = digits_teacher
    student = nn.mlp((64, 16, 10), seed=1)
    D.train_student(student, teacher, d.X_train, None, T=2.0, alpha=1.0, epochs=10, progress=False)
    agree = (nn.predict(student, d.X_val).argmax(1) == nn.predict(teacher, d.X_val).argmax(1)).mean()
    assert agree > 0.85
    with pytest.raises(ValueError, match="no sample has a label"):
        D.train_student(student, teacher, d.X_train, None, T=2.0, alpha=0.5, progress=False)
    with pytest.raises(ValueError, match="different models"):
        D.train_student(teacher, teacher, d.X_train, d.y_train, progress=False)
    with pytest.raises(ValueError, match="T must be"):
        D.train_student(student, teacher, d.X_train, d.y_train, T=0, progress=False)
    with pytest.raises(ValueError, match="teacher_logits has"):
        D.train_student(student, None, d.X_train, d.y_train,
                        teacher_logits=np.zeros((3, 10)), progress=False)


def test_hint_pretrain_moves_student_features_towards_teacher(digits_teacher):
    d, teacher = digits_teacher
    student = nn.mlp((64, 16, 10), seed=2)
    hist, reg = D.hint_pretrain(student, teacher, d.X_train, student_layer=2, teacher_layer=2,
                                epochs=8, progress=False)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert reg.in_features == 16 and reg.out_features == 64
    D.train_student(student, teacher, d.X_train, d.y_train, T=4, alpha=0.9, epochs=5, progress=False)
    assert nn.evaluate(student, d.X_val, d.y_val) > 0.8


def test_class_bias_for_prior():
    z = np.random.default_rng(0).normal(size=(200, 10))
    z[:, 3] -= 8  # class 3 almost never predicted
    b = D.class_bias_for_prior(z, 3, 0.1)
    zz = z.copy()
    zz[:, 3] += b
    assert D.softmax(zz)[:, 3].mean() == pytest.approx(0.1, abs=1e-5)
    assert b > 5
    with pytest.raises(ValueError, match="prior"):
        D.class_bias_for_prior(z, 3, 1.5)




def test_train_student_uses_exactly_kd_loss(digits_teacher):
    """The loop's precomputed soft targets give the same training as calling kd_loss per batch."""
    d, teacher = digits_teacher
    y = d.y_train.copy()
    y[::3] = -1
    tl = nn.predict(teacher, d.X_train)
    a, b = nn.mlp((64, 16, 10), seed=4), nn.mlp((64, 16, 10), seed=4)
    D.train_student(a, teacher, d.X_train, y, T=3.0, alpha=0.6, epochs=2, progress=False, seed=1)
    nn.fit(b, d.X_train, y, loss=lambda z, yb, idx: D.kd_loss(z, tl[idx], yb, 3.0, 0.6),
           epochs=2, progress=False, seed=1)
    for k, v in a.state_dict().items():
        np.testing.assert_allclose(b.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_cuda_tensors_stay_on_the_gpu(torch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    s, t, y = _batch(9)
    st_, tt = torch.tensor(s, device="cuda"), torch.tensor(t, device="cuda")
    loss, grad = D.kd_loss(st_, tt, torch.tensor(y, device="cuda"), T=2.0, alpha=0.5)
    assert grad.device.type == "cuda"
    ref_loss, ref_grad = _torch_kd(s, t, y, 2.0, 0.5)
    assert loss == pytest.approx(ref_loss, rel=1e-9)
    np.testing.assert_allclose(grad.cpu().numpy(), ref_grad, rtol=1e-9, atol=1e-12)
    assert D.softmax(st_, T=3.0).device.type == "cuda"
