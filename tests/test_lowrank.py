"""compresslab.lowrank: truncated SVD against numpy/torch and the Eckart-Young error."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import compresslab as cl
from compresslab import lowrank as L


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
                  elements=st.floats(-10, 10)), st.data())
def test_eckart_young_error(w, data):
    rank = data.draw(st.integers(1, min(w.shape)))
    s = np.linalg.svd(w, compute_uv=False)
    err = L.reconstruction_error(w, rank)
    assert err == pytest.approx(float((s[rank:] ** 2).sum()), rel=1e-7, abs=1e-8)
    b, a = L.truncated_svd(w, rank)
    assert b.shape == (w.shape[0], rank) and a.shape == (rank, w.shape[1])


def test_truncated_svd_matches_torch(torch):
    g = np.random.default_rng(0)
    w = g.normal(size=(30, 20)).astype(np.float64)
    b, a = L.truncated_svd(w, 5)
    u, s, vh = torch.linalg.svd(torch.from_numpy(w), full_matrices=False)
    ref = (u[:, :5] * s[:5]) @ vh[:5]
    np.testing.assert_allclose(b @ a, ref.numpy(), rtol=1e-10, atol=1e-10)
    # tensors in, tensors out
    bt, at = L.truncated_svd(torch.from_numpy(w), 5)
    assert isinstance(bt, torch.Tensor)
    np.testing.assert_allclose((bt @ at).numpy(), ref.numpy(), atol=1e-10)


def test_full_rank_is_exact():
    w = np.random.default_rng(1).normal(size=(6, 4))
    b, a = L.truncated_svd(w, 4)
    np.testing.assert_allclose(b @ a, w, atol=1e-12)


def test_choose_rank_rules():
    s = np.array([4.0, 2.0, 1.0, 1.0])             # energies 16, 4, 1, 1 of 22
    assert L.choose_rank(s, energy=16 / 22) == 1
    assert L.choose_rank(s, energy=0.9) == 2        # 20/22 = 0.909
    assert L.choose_rank(s, energy=1.0) == 4
    assert L.choose_rank(s, max_params=100, shape=(10, 20)) == 3
    assert L.choose_rank(s, max_params=30, shape=(10, 20)) == 1
    with pytest.raises(ValueError, match="rank 1 needs"):
        L.choose_rank(s, max_params=5, shape=(10, 20))   # even rank 1 would exceed the budget
    with pytest.raises(ValueError, match="energy"):
        L.choose_rank(s, energy=1.5)
    with pytest.raises(TypeError, match="exactly one"):
        L.choose_rank(s)
    with pytest.raises(TypeError, match="shape"):
        L.choose_rank(s, max_params=10)


def test_factorize_linear_computes_the_same_function():
    m = cl.nn.mlp((64, 300, 100, 10), seed=0)
    X = np.random.default_rng(2).random((9, 64), dtype=np.float32)
    full, info = L.factorize(m, rank=100, layers=["2"], only_if_smaller=False)
    assert len(full) == len(m) + 1 and info[0].rank == 100
    np.testing.assert_allclose(cl.nn.predict(full, X), cl.nn.predict(m, X), atol=1e-4)
    small, info = L.factorize(m, rank=16, layers=["2"])
    assert info[0].params_after == 16 * (300 + 100) and cl.nn.num_params(small) < cl.nn.num_params(m)
    # the error of the factorised layer is the Eckart-Young one
    a, b = small.layers[2].weight, small.layers[3].weight
    w = m.layers[2].weight.astype(np.float64)
    s = np.linalg.svd(w, compute_uv=False)
    assert ((w - b.astype(np.float64) @ a) ** 2).sum() == pytest.approx((s[16:] ** 2).sum(), rel=1e-4)


def test_factorize_budget_energy_and_skip():
    m = cl.nn.mlp((64, 300, 100, 10), seed=0)
    small, info = L.factorize(m, max_params={"0": 3640, "2": 4000}, layers=["0", "2"])
    assert info[0].params_after <= 3640 and info[1].params_after <= 4000
    _, info = L.factorize(m, energy=0.5)
    for i in info:
        assert 0.5 <= i.energy <= 1.0
    _, info = L.factorize(m, rank=10, layers=["4"])     # 10x100: no saving
    assert info[0].params_after == info[0].params_before
    with pytest.raises(ValueError, match="not the index of a Linear"):
        L.factorize(m, rank=3, layers=["1"])
    with pytest.raises(TypeError, match="exactly one"):
        L.factorize(m, rank=3, energy=0.9)


def test_fine_tune_recovers_accuracy():
    d = cl.data.load_digits(seed=0)
    m = cl.nn.mlp((64, 64, 10), seed=0)
    cl.nn.fit(m, d.X_train, d.y_train, epochs=15, progress=False)
    base = cl.nn.evaluate(m, d.X_val, d.y_val)
    small, _ = L.factorize(m, rank=3, layers=["0"])
    before = cl.nn.evaluate(small, d.X_val, d.y_val)
    L.fine_tune(small, d.X_train, d.y_train, epochs=10, lr=3e-3, progress=False)
    after = cl.nn.evaluate(small, d.X_val, d.y_val)
    assert before < base - 0.2 and after > before + 0.1   # rank 3 hurts; fine-tuning recovers a lot
