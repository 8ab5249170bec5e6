"""compresslab.prune: torch agreement, amount/tie rules, errors, shrink, schedules, training."""
from __future__ import annotations

import math

import numpy as np
import pytest

from compresslab import data, nn
from compresslab import prune as P

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _tie_free(shape, seed=0):
    """Random weights with all |w| distinct."""
    g = np.random.default_rng(seed)
    n = int(np.prod(shape))
    mags = g.permutation(n).astype(np.float32) + 1.0 + g.uniform(0.1, 0.9, n).astype(np.float32)
    return (mags * g.choice([-1.0, 1.0], n).astype(np.float32)).reshape(shape) / n


AMOUNTS = [0, 1, 7, 0.0, 0.1, 0.25, 0.5, 0.7, 0.95, 1.0]


# ---------------------------------------------------------------------------- amount semantics
def test_count_matches_torch_rounding(torch):
    from torch.nn.utils import prune as tp
    for n in (1, 2, 3, 5, 7, 10, 11, 100, 101):
        for a in (0.0, 0.05, 0.1, 0.15, 0.25, 0.3, 0.333, 0.5, 0.55, 0.7, 0.75, 0.9, 0.95, 1.0):
            assert P.count_to_prune(a, n) == tp._compute_nparams_toprune(a, n), (a, n)
    # half-to-even: 0.5 * 5 = 2.5 -> 2, 0.5 * 7 = 3.5 -> 4
    assert P.count_to_prune(0.5, 5) == 2 and P.count_to_prune(0.5, 7) == 4


@pytest.mark.parametrize("bad", [-1, 11, 1.5, -0.1, float("nan"), "0.5", None, True])
def test_bad_amount_errors(bad):
    w = np.ones(10, np.float32)
    with pytest.raises((ValueError, TypeError), match="amount"):
        P.magnitude(w, bad)


def test_int_and_float_amount_counts():
    w = _tie_free((13, 7))
    assert (P.magnitude(w, 10) == 0).sum() == 10
    assert (P.magnitude(w, 0.3) == 0).sum() == round(0.3 * 91)
    assert (P.magnitude(w, 1.0) == 0).sum() == 91
    assert (P.magnitude(w, 1) == 0).sum() == 1  # int 1 is a count, not 100%


# ---------------------------------------------------------------------------- torch agreement
def _torch_l1(w, amount):
    import torch
    from torch.nn.utils import prune as tp
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
    tp.l1_unstructured(lin, "weight", amount)
    return lin.weight_mask.numpy()


@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.torch
def test_magnitude_equals_torch_l1_unstructured(amount):
    w = _tie_free((30, 17), seed=3)
    np.testing.assert_array_equal(P.magnitude(w, amount), _torch_l1(w, amount))


@pytest.mark.torch
def test_magnitude_with_ties_equal_counts_and_tie_rule():
    g = np.random.default_rng(0)
    w = g.integers(-3, 4, size=(20, 10)).astype(np.float32)  # many ties
    for amount in (0.1, 0.33, 0.5, 77, 0.9):
        ours, theirs = P.magnitude(w, amount), _torch_l1(w, amount)
        assert ours.sum() == theirs.sum()
        # whatever we prune, |w| of pruned <= |w| of kept (a valid magnitude mask)
        a = np.abs(w)
        assert a[ours == 0].max(initial=0) <= a[ours == 1].min(initial=np.inf)
    # documented tie rule: lowest flat index pruned first
    np.testing.assert_array_equal(P.magnitude(np.array([1.0, -1.0, 1.0, 2.0]), 2), [0, 0, 1, 1])


def test_magnitude_uses_absolute_value():
    w = np.array([-5.0, 0.1, 3.0, -0.2], np.float32)
    np.testing.assert_array_equal(P.magnitude(w, 2), [1, 0, 1, 0])


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("n", [1, 2, np.inf])
@pytest.mark.parametrize("amount", [0, 2, 0.3, 0.5, 1.0])
def test_structured_equals_torch_ln_structured(dim, n, amount, torch):
    from torch.nn.utils import prune as tp
    w = _tie_free((12, 10), seed=5)
    lin = torch.nn.Linear(10, 12)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
    tp.ln_structured(lin, "weight", amount, n=n, dim=dim)
    np.testing.assert_array_equal(P.structured(w, amount, dim=dim, n=n), lin.weight_mask.numpy())


@pytest.mark.parametrize("dim", [0, 1])
def test_structured_conv_equals_torch(dim, torch):
    from torch.nn.utils import prune as tp
    w = _tie_free((8, 6, 3, 3), seed=1)
    conv = torch.nn.Conv2d(6, 8, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
    tp.ln_structured(conv, "weight", 0.5, n=1, dim=dim)
    np.testing.assert_array_equal(P.structured(w, 0.5, dim=dim, n=1), conv.weight_mask.numpy())


def test_structured_ties_equal_counts(torch):
    from torch.nn.utils import prune as tp
    w = np.ones((9, 4), np.float32)
    w[::3] = 2.0
    lin = torch.nn.Linear(4, 9)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
    tp.ln_structured(lin, "weight", 4, n=2, dim=0)
    ours = P.structured(w, 4, dim=0)
    assert ours.sum() == lin.weight_mask.numpy().sum()
    np.testing.assert_array_equal(ours[:, 0], [1, 0, 0, 1, 0, 0, 1, 1, 1])  # lowest index first


@pytest.mark.parametrize("amount", [0, 5, 100, 0.2, 0.5, 0.8, 0.9, 1.0])
def test_global_magnitude_equals_torch_global_unstructured(amount, torch):
    from torch.nn.utils import prune as tp
    ws = [_tie_free((20, 8), 1) * 3, _tie_free((6, 20), 2), _tie_free((4, 6), 3) * 0.5]
    mods = []
    for w in ws:
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        mods.append(lin)
    tp.global_unstructured([(m, "weight") for m in mods], pruning_method=tp.L1Unstructured,
                           amount=amount)
    ours = P.global_magnitude(ws, amount)
    assert isinstance(ours, list)
    for a, m in zip(ours, mods):
        np.testing.assert_array_equal(a, m.weight_mask.numpy())
    as_dict = P.global_magnitude({"a": ws[0], "b": ws[1], "c": ws[2]}, amount)
    assert list(as_dict) == ["a", "b", "c"]
    assert isinstance(P.global_magnitude(tuple(ws), amount), tuple)
    for a, m in zip(as_dict.values(), mods):
        np.testing.assert_array_equal(a, m.weight_mask.numpy())


def test_torch_tensors_in_torch_tensors_out(torch):
    w = torch.from_numpy(_tie_free((8, 8)))
    for out in (P.magnitude(w, 0.5), P.structured(w, 0.5, dim=0), P.n_m(w), P.random(w, 3)):
        assert isinstance(out, torch.Tensor) and out.shape == w.shape
    assert all(isinstance(m, torch.Tensor) for m in P.global_magnitude([w, w], 0.5))


# ---------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.floats(0, 1), st.integers(0, 2**31 - 1))
def test_magnitude_property_exact_count_and_threshold(n, amount, seed):
    g = np.random.default_rng(seed)
    w = g.normal(size=n).astype(np.float32)
    w[g.random(n) < 0.3] = 0.5  # ties
    mask = P.magnitude(w, amount)
    k = round(amount * n)
    assert (mask == 0).sum() == k
    a = np.abs(w)
    assert a[mask == 0].max(initial=-1) <= a[mask == 1].min(initial=np.inf)
    # the tie rule equals a stable sort
    ref = np.ones(n, np.float32)
    ref[np.argsort(a, kind="stable")[:k]] = 0
    np.testing.assert_array_equal(mask, ref)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.sampled_from([(1, 4), (2, 4), (4, 4), (0, 2), (3, 8)]),
       st.integers(0, 10_000))
def test_n_m_property(rows, nm, seed):
    n, m = nm
    w = np.random.default_rng(seed).normal(size=(rows, 2 * m)).astype(np.float32)
    mask = P.n_m(w, n, m)
    groups = mask.reshape(rows, 2, m)
    assert (groups.sum(-1) == n).all()
    a = np.abs(w).reshape(rows, 2, m)
    g = groups.astype(bool)
    for r in range(rows):
        for j in range(2):
            assert a[r, j][~g[r, j]].max(initial=-1) <= a[r, j][g[r, j]].min(initial=np.inf)


def test_n_m_dim_and_conv():
    w = _tie_free((4, 8, 3, 3))
    mask = P.n_m(w, 2, 4, dim=1)
    assert mask.shape == w.shape
    assert (mask.reshape(4, 2, 4, 3, 3).sum(axis=2) == 2).all()
    np.testing.assert_array_equal(P.n_m(w.T.copy(), 2, 4, dim=-3 + 1), mask.T)


def test_random_mask():
    w = np.ones((50, 20), np.float32)
    a, b = P.random(w, 0.3, seed=1), P.random(w, 0.3, seed=1)
    np.testing.assert_array_equal(a, b)
    assert (a == 0).sum() == 300
    assert not np.array_equal(a, P.random(w, 0.3, seed=2))


# ---------------------------------------------------------------------------- errors
def test_clear_errors():
    w = np.ones((4, 8), np.float32)
    with pytest.raises(ValueError, match="dim"):
        P.structured(w, 0.5, dim=2)
    with pytest.raises(TypeError, match="dim"):
        P.structured(w, 0.5, dim=0.5)
    with pytest.raises(ValueError, match="n must"):
        P.structured(w, 0.5, dim=0, n=0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        P.structured(np.ones(4), 0.5, dim=0)
    with pytest.raises(ValueError, match="amount"):
        P.structured(w, 5, dim=0)  # only 4 rows
    with pytest.raises(ValueError, match="n must be in"):
        P.n_m(w, 5, 4)
    with pytest.raises(ValueError, match="m must be in"):
        P.n_m(w, 0, 0)
    with pytest.raises(ValueError, match="divisible by m=3"):
        P.n_m(w, 1, 3)
    with pytest.raises(ValueError, match="NaN"):
        P.magnitude(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="empty"):
        P.magnitude(np.array([]), 0)
    with pytest.raises(TypeError, match="weights"):
        P.global_magnitude(np.ones(3), 1)
    with pytest.raises(ValueError, match="final_sparsity"):
        P.polynomial_decay(0, 0.0, 1.5, 0, 10)
    with pytest.raises(ValueError, match="end_step"):
        P.polynomial_decay(0, 0.0, 0.5, 10, 5)
    m = nn.mlp((4, 3, 2))
    with pytest.raises(KeyError, match="9.weight"):
        P.apply_masks(m, {"9.weight": np.ones((3, 4))})
    with pytest.raises(ValueError, match="shape"):
        P.apply_masks(m, {"0.weight": np.ones((4, 3))})


# ---------------------------------------------------------------------------- models
def test_apply_masks_keeps_zeros_while_training():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 32, 10), seed=0)
    masks = P.model_masks(m, 0.8)
    P.apply_masks(m, masks)
    nn.fit(m, d.X_train[:200], d.y_train[:200], epochs=2, progress=False)
    for name, mask in masks.items():
        layer = m[int(name.split(".")[0])]
        assert (layer.weight[mask == 0] == 0).all()
    assert math.isclose(P.sparsity(m).total, 0.8, abs_tol=1e-3)
    rep = P.sparsity(masks)
    assert rep["0.weight"] == pytest.approx(0.8, abs=1e-3) and "total" in str(rep)


def test_sparsity_report_counts():
    m = nn.mlp((4, 3, 2), seed=0)
    P.apply_masks(m, {"0.weight": P.magnitude(m[0].weight, 6), "2.weight": P.magnitude(m[2].weight, 1)})
    rep = P.sparsity(m)
    assert rep.zeros == 7 and rep.size == 18 and rep.nonzero == 11
    assert rep.layers["0.weight"].zeros == 6 and rep["2.weight"] == pytest.approx(1 / 6)


def _out(model, X):
    return nn.predict(model, X)


def test_shrink_structured_mlp_equals_masked():
    g = np.random.default_rng(0)
    X = g.normal(size=(50, 20)).astype(np.float32)
    m = nn.mlp((20, 40, 30, 5), seed=1)
    masks = {"0.weight": P.structured(m[0].weight, 0.5, dim=0),
             "2.weight": P.structured(m[2].weight, 0.4, dim=0)}
    masked = m.copy()
    P.apply_masks(masked, masks)
    small = P.shrink(m, masks)
    assert small[0].weight.shape == (20, 20) and small[2].weight.shape == (18, 20)
    assert small[4].weight.shape == (5, 18)
    # biases of removed ReLU units were nonzero: folded into the next layer's bias
    np.testing.assert_allclose(_out(small, X), _out(masked, X), rtol=1e-5, atol=1e-5)
    assert nn.num_params(small) < nn.num_params(m)
    # masks None: use the layers' own masks; input model untouched
    np.testing.assert_allclose(_out(P.shrink(masked), X), _out(masked, X), rtol=1e-5, atol=1e-5)
    assert m[0].weight.shape == (40, 20)


def test_shrink_removes_units_with_no_outgoing_weights():
    g = np.random.default_rng(1)
    X = g.normal(size=(30, 6)).astype(np.float32)
    m = nn.mlp((6, 8, 3), seed=2)
    masks = {"2.weight": P.structured(m[2].weight, 5, dim=1)}  # prune 5 inputs of the last layer
    small = P.shrink(m, masks)
    assert small[0].weight.shape == (3, 6) and small[2].weight.shape == (3, 3)
    masked = P.apply_masks(m.copy(), masks)
    np.testing.assert_allclose(_out(small, X), _out(masked, X), rtol=1e-5, atol=1e-6)


def test_shrink_unstructured_and_all_dead():
    g = np.random.default_rng(2)
    X = g.normal(size=(30, 10)).astype(np.float32)
    m = nn.mlp((10, 12, 4), seed=3)
    masks = {"0.weight": P.magnitude(m[0].weight, 0.9)}
    small = P.shrink(m, masks)
    masked = P.apply_masks(m.copy(), masks)
    np.testing.assert_allclose(_out(small, X), _out(masked, X), rtol=1e-5, atol=1e-6)
    dead = P.shrink(m, {"0.weight": np.zeros((12, 10), np.float32)})
    assert dead[0].weight.shape[0] == 1
    np.testing.assert_allclose(_out(dead, X), _out(P.apply_masks(m.copy(), {"0.weight": np.zeros((12, 10))}), X),
                               rtol=1e-5, atol=1e-6)


def test_shrink_cnn_equals_masked():
    g = np.random.default_rng(3)
    X = g.normal(size=(5, 1, 8, 8)).astype(np.float32)
    m = nn.cnn(seed=0)
    masks = {"0.weight": P.structured(m[0].weight, 0.5, dim=0),
             "2.weight": P.structured(m[2].weight, 0.25, dim=0)}
    small = P.shrink(m, masks)
    masked = P.apply_masks(m.copy(), masks)
    assert small[2].weight.shape[0] == 24 and small[5].weight.shape[1] == 24 * 16
    np.testing.assert_allclose(_out(small, X), _out(masked, X), rtol=1e-4, atol=1e-5)
    # conv1 has padding=1: dead filters with relu(bias) != 0 cannot be folded and are kept
    assert small[0].weight.shape[0] >= 8


def test_shrink_equals_torch_pruned_model(torch):
    from torch.nn.utils import prune as tp
    m = nn.mlp((16, 24, 12, 4), seed=4)
    tm = nn.to_torch(m)
    tp.ln_structured(tm[0], "weight", 0.5, n=2, dim=0)
    tp.ln_structured(tm[2], "weight", 0.5, n=2, dim=0)
    masks = {"0.weight": P.structured(m[0].weight, 0.5, dim=0, n=2),
             "2.weight": P.structured(m[2].weight, 0.5, dim=0, n=2)}
    X = np.random.default_rng(0).normal(size=(20, 16)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(_out(P.shrink(m, masks), X), want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- schedules
def test_polynomial_decay_matches_formula_and_tfmot():
    # TF-MOT PolynomialDecay(initial, final, begin, end, power=3, frequency)
    vals = [P.polynomial_decay(t, 0.1, 0.9, 10, 110, frequency=20) for t in range(0, 140)]
    assert vals[0] == (False, pytest.approx(0.1))
    assert vals[10].should_prune and vals[10].sparsity == pytest.approx(0.1)
    assert vals[30].should_prune and vals[30].sparsity == pytest.approx(0.9 - 0.8 * 0.8 ** 3)
    assert not vals[31].should_prune
    assert vals[110].should_prune and vals[110].sparsity == pytest.approx(0.9)
    assert not vals[130].should_prune and vals[130].sparsity == pytest.approx(0.9)
    s = [v.sparsity for v in vals]
    assert all(b >= a for a, b in zip(s, s[1:]))
    should, sp = P.constant(300, 0.5, begin_step=100, frequency=100)
    assert should and sp == 0.5
    assert not P.constant(50, 0.5, begin_step=100).should_prune


def test_agp_and_fit_pruned_reach_sparsity_with_exact_zeros():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 64, 10), seed=0)
    nn.fit(m, d.X_train, d.y_train, epochs=5, progress=False)
    seen = []

    def check_zero(model, epoch, step):
        for layer in (model[0], model[2]):
            if "weight" in layer.masks:
                assert (layer.weight[layer.masks["weight"] == 0] == 0).all()
        seen.append(P.sparsity(model).total)

    P.agp(m, d.X_train, d.y_train, 0.8, epochs=3, frequency=5, progress=False,
          callbacks=(check_zero,))
    assert P.sparsity(m).total == pytest.approx(0.8, abs=2e-3)
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:]))  # sparsity only grows
    assert nn.evaluate(m, d.X_test, d.y_test) > 0.85
    m2 = nn.mlp((64, 64, 10), seed=0)
    P.fit_pruned(m2, d.X_train, d.y_train, epochs=1, method="global", progress=False,
                 schedule=lambda t: P.constant(t, 0.5, frequency=10))
    assert P.sparsity(m2).total == pytest.approx(0.5, abs=1e-3)


def test_sensitivity_scan():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 32, 10), seed=0)
    nn.fit(m, d.X_train, d.y_train, epochs=5, progress=False)
    before = m.state_dict()
    before = {k: v.copy() for k, v in before.items()}
    res = P.sensitivity_scan(m, None, [0.0, 0.5, 0.99], d.X_val, d.y_val, progress=False)
    assert res.accuracy.shape == (2, 3) and res.layers == ["0.weight", "2.weight"]
    np.testing.assert_allclose(res.accuracy[:, 0], res.baseline)
    assert (res.accuracy[:, 2] < res.baseline).all()
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # model restored
    assert set(res.max_sparsity(0.01)) == {"0.weight", "2.weight"}


def test_global_magnitude_dict_of_tensors_and_schedule_float(torch):
    ws = {"a": torch.from_numpy(_tie_free((5, 4), 1)), "b": torch.from_numpy(_tie_free((3, 4), 2))}
    out = P.global_magnitude(ws, 0.5)
    assert list(out) == ["a", "b"] and all(isinstance(v, torch.Tensor) for v in out.values())
    assert sum(int((v == 0).sum()) for v in out.values()) == 16
    assert float(P.polynomial_decay(100, 0.0, 0.5, 0, 100)) == pytest.approx(0.5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=4), st.floats(0, 1), st.integers(0, 10_000))
def test_global_magnitude_property(sizes, amount, seed):
    g = np.random.default_rng(seed)
    ws = [g.normal(size=n).astype(np.float32) for n in sizes]
    masks = P.global_magnitude(ws, amount)
    total = sum(sizes)
    assert sum(int((m == 0).sum()) for m in masks) == round(amount * total)
    pruned = np.concatenate([np.abs(w)[m == 0] for w, m in zip(ws, masks)])
    kept = np.concatenate([np.abs(w)[m == 1] for w, m in zip(ws, masks)])
    assert pruned.max(initial=-1) <= kept.min(initial=np.inf)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(1, 6), st.floats(0, 1), st.integers(0, 10_000))
def test_shrink_property_outputs_equal(hidden, n_in, amount, seed):
    g = np.random.default_rng(seed)
    m = nn.mlp((n_in, hidden, hidden, 3), seed=seed)
    masks = {"0.weight": P.structured(m[0].weight, amount, dim=0) if n_in > 1 else P.magnitude(m[0].weight, amount),
             "2.weight": P.magnitude(m[2].weight, amount)}
    X = g.normal(size=(7, n_in)).astype(np.float32)
    small = P.shrink(m, masks)
    np.testing.assert_allclose(_out(small, X), _out(P.apply_masks(m.copy(), masks), X), rtol=1e-4, atol=1e-5)
    assert nn.num_params(small) <= nn.num_params(m)
