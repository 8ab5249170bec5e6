"""compresslab.quant.quantize: the readable formula, its fast and torch-exact kernels
(compresslab.quant._kernels), and bit-exactness with torch's quantize_per_tensor/_per_channel."""
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compresslab import quant as Q
from compresslab.quant import _kernels as K

SIGNED = {"qint8": True, "quint8": False}
# torch warns that its quantization API is deprecated (torchao replaces it); the kernels are the same.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated.*")


# ------------------------------------------------------------------ bit-exactness with torch
@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
def test_quantize_per_tensor_matches_torch_every_length_random_and_ties(dtype, torch):
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
                                             getattr(torch, dtype)).int_repr().numpy()
            got = Q.quantize(x, qp, rounding="torch")
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"n={n} {kind}")


def test_plain_division_disagrees_with_torch_on_ties(torch):
    """torch's rule is not rint(x / scale) + zp (our default): find near-tie inputs where they differ."""
    g = np.random.default_rng(1)
    differs = 0
    for _ in range(50):
        scale = np.float32(g.uniform(1e-3, 0.2))
        zp = int(g.integers(0, 256))
        x = ((g.integers(-100, 100, 64) + 0.5) * scale).astype(np.float32)
        want = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp, torch.quint8).int_repr().numpy()
        naive = np.clip(np.rint(x.astype(np.float64) / scale) + zp, 0, 255).astype(np.uint8)   # the default
        differs += not np.array_equal(naive, want)
        np.testing.assert_array_equal(Q.quantize(x, Q.QParams(scale, zp, 0, 255), rounding="torch"), want)
        np.testing.assert_array_equal(Q.quantize(x, Q.QParams(scale, zp, 0, 255)),
                                      np.clip(np.rint(x.astype(np.float64) / scale) + zp, 0, 255))
    assert differs > 10


def _exact_fma_round(x, scale, zp):
    """rint(float32(x * inv + zp)) with the sum rounded once, in exact rational arithmetic."""
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
    rules = Q.torch_rounding(refresh=True)
    assert rules["tensor"] in Q.ROUNDINGS[1:] and rules["channel"] in Q.ROUNDINGS[1:], rules
    cap = torch.backends.cpu.get_cpu_capability()
    if torch.__version__.startswith("2.13") and cap in ("AVX2", "AVX512"):
        assert rules == Q.TORCH_ROUNDING            # the pinned torch: the documented rules
    x = ((np.arange(-50, 50) + 0.5) * np.float32(0.1)).astype(np.float32)
    qp = Q.QParams(0.1, 7, 0, 255)
    results = {r: Q.quantize(x, qp, rounding=r) for r in Q.ROUNDINGS}
    assert not np.array_equal(results["fma"], results["mul_round"])   # the rules really differ
    assert not np.array_equal(results["fma"], results["divide"])
    with pytest.raises(ValueError, match="rounding"):
        Q.quantize(x, qp, rounding="nearest")


@pytest.mark.parametrize("dtype", ["qint8", "quint8"])
@pytest.mark.parametrize("shape,axis", [((7, 33), 0), ((33, 5), 1), ((4, 3, 3, 3), 0), ((2, 9, 17), 1)])
def test_quantize_per_channel_matches_torch(dtype, shape, axis, torch):
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
                                          torch.from_numpy(zps), axis, getattr(torch, dtype)).int_repr().numpy()
        np.testing.assert_array_equal(Q.quantize(x, qp, rounding="torch"), want)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**31 - 1), signed=st.booleans())
def test_quantize_property_matches_torch(n, seed, signed, torch):
    g = np.random.default_rng(seed)
    x = (g.normal(0, 1, n) * 10 ** g.uniform(-3, 3)).astype(np.float32)
    qp = Q.qparams(x, 8, "affine", signed=signed)
    dt = torch.qint8 if signed else torch.quint8
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(qp.scale), qp.zero_point, dt).int_repr().numpy()
    np.testing.assert_array_equal(Q.quantize(x, qp, rounding="torch"), want)
    np.testing.assert_array_equal(Q.dequantize(Q.quantize(x, qp, rounding="torch"), qp),
                                  torch.quantize_per_tensor(torch.from_numpy(x), float(qp.scale),
                                                            qp.zero_point, dt).dequantize().numpy())


def test_large_input_chunks_match_torch(torch):
    x = np.random.default_rng(3).normal(0, 1, 200_003).astype(np.float32)
    x[::7] = (np.round(x[::7] / 0.02) + 0.5) * np.float32(0.02)    # many ties, across chunks
    qp = Q.QParams(0.02, 3, -128, 127)
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(np.float32(0.02)), 3, torch.qint8).int_repr().numpy()
    np.testing.assert_array_equal(Q.quantize(x, qp, rounding="torch"), want)


def test_saturation_matches_torch(torch):
    x = np.array([1e30, -1e30, 3e9, -3e9, 1e-30, -0.0] + [0.0] * 10, np.float32)
    qp = Q.QParams(0.01, 10, 0, 255)
    want = torch.quantize_per_tensor(torch.from_numpy(x), float(np.float32(0.01)), 10, torch.quint8).int_repr().numpy()
    np.testing.assert_array_equal(Q.quantize(x, qp, rounding="torch"), want)


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
        np.testing.assert_array_equal(K._quantize_per_tensor_fma_fast(x, qp),
                                      K._quantize_per_tensor_fma_exact(x, qp))


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
    import numba  # noqa: F401  (the `fast` extra, part of `test`: a broken install fails here, loudly)
    assert K._compiled_loop() is not None


@pytest.mark.parametrize("rule", K._LOOP_RULES)
@pytest.mark.parametrize("n", [1, K._LOOP_BLOCK - 1, K._LOOP_BLOCK, K._LOOP_BLOCK + 1, 70_001])
def test_compiled_loop_equals_numpy_kernels(rule, n):
    """The one-pass loop (numba) gives the NumPy kernels' integers, near ties included."""
    _numba()
    for qp in _loop_cases():
        x = _adversarial(n, qp.scale)
        want = K.quantize_per_tensor(x, qp, rule, kernel="numpy")
        np.testing.assert_array_equal(K.quantize_per_tensor(x, qp, rule, kernel="loop"), want,
                                      err_msg=f"{qp} {rule}")
        if rule == "fma":
            np.testing.assert_array_equal(want, K._quantize_per_tensor_fma_exact(x, qp))


@pytest.mark.parametrize("rule", K._LOOP_RULES)
def test_uncompiled_loop_is_the_same_function(rule):
    """The loop as plain Python (no numba needed) gives the same integers: what numba compiles is
    what a reader reads."""
    x = _adversarial(600, 0.0418503)
    for qp in list(_loop_cases())[:10]:
        np.testing.assert_array_equal(K._quantize_per_tensor_loop(x, qp, rule, compiled=False),
                                      K.quantize_per_tensor(x, qp, rule, kernel="numpy"))


def test_compiled_loop_saturates_and_rejects_nan():
    _numba()
    qp = Q.QParams(0.01, 10, 0, 255)
    x = np.zeros(1000, np.float32)
    x[[3, 300, 999]] = [3e38, -3e38, 1e9]
    for rule in K._LOOP_RULES:
        q = K.quantize_per_tensor(x, qp, rule, kernel="loop")
        assert q[3] == 255 and q[300] == 0 and q[999] == 255 and (np.delete(q, [3, 300, 999]) == 10).all()
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[517] = bad
            with pytest.raises(ValueError, match="NaN or infinite"):
                K.quantize_per_tensor(y, qp, rule, kernel="loop")


def test_quantize_uses_the_compiled_loop_for_large_inputs(monkeypatch):
    _numba()
    calls = []
    real = K._quantize_per_tensor_loop
    monkeypatch.setattr(K, "_quantize_per_tensor_loop", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = _adversarial(K.JIT_MIN_SIZE, 0.02)
    qp = Q.QParams(0.02, 3, -128, 127)
    Q.quantize(x[:1000], qp)
    assert not calls                                   # small: the NumPy kernels
    q = Q.quantize(x, qp, rounding="fma")
    assert calls                                       # large: the loop
    np.testing.assert_array_equal(q, K._quantize_per_tensor_fma_exact(x, qp))
    monkeypatch.setattr(K, "JIT_MIN_SIZE", None)       # switched off: NumPy again
    calls.clear()
    Q.quantize(x, qp, rounding="fma")
    assert not calls


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2000), seed=st.integers(0, 2**31 - 1), bits=st.integers(2, 16),
       signed=st.booleans(), rule=st.sampled_from(K._LOOP_RULES))
def test_compiled_loop_property(n, seed, bits, signed, rule):
    _numba()
    g = np.random.default_rng(seed)
    x = (g.normal(0, 1, n) * 10 ** g.uniform(-3, 3)).astype(np.float32)
    qp = Q.qparams(x, bits, "affine", signed=signed)
    k = g.integers(qp.qmin, qp.qmax + 1, n // 2) - qp.zero_point + 0.5
    x[: n // 2] = (k * np.float32(qp.scale)).astype(np.float32)    # ties (up to float32 rounding)
    np.testing.assert_array_equal(K.quantize_per_tensor(x, qp, rule, kernel="loop"),
                                  K.quantize_per_tensor(x, qp, rule, kernel="numpy"))


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
    monkeypatch.setattr(K, "_LOOP", None)
    assert K._compiled_loop() is not None and asked == [True, False]
    x = _adversarial(1000, 0.02)
    qp = Q.QParams(0.02, 3, -128, 127)
    np.testing.assert_array_equal(K.quantize_per_tensor(x, qp, "fma", kernel="loop"),
                                  K._quantize_per_tensor_fma_exact(x, qp))


# ------------------------------------------------------------------ the default rule: the taught formula
def _exact_divide_round(x, scale, zp):
    """round_half_even(x / scale) + zp in exact rational arithmetic."""
    v = Fraction(float(x)) / Fraction(float(np.float32(scale)))
    k = int(v // 1)
    frac = v - k
    return (k + 1 if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and k % 2) else k) + zp


def test_default_rule_is_exact_round_half_even_of_the_quotient():
    g = np.random.default_rng(21)
    for _ in range(400):
        scale = np.float32(g.uniform(1e-3, 2))
        zp = int(g.integers(-100, 100))
        tie = (g.integers(-300, 300) + 0.5) * scale
        x = np.float32(tie * np.float32(1 + g.choice([0.0, 1e-7, -1e-7])))
        got = Q.quantize(np.array([x]), Q.QParams(scale, zp, -(2 ** 15), 2 ** 15 - 1))[0]
        assert got == _exact_divide_round(x, scale, zp), (x, scale, zp)
    # exact ties (power-of-two scale): half to even, whatever the parity of the zero point
    for zp in (0, 1, 3, 128):
        q = Q.quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]) * 0.25, Q.QParams(0.25, zp, -1000, 1000))
        assert q.tolist() == [zp + 0, zp + 2, zp + 2, zp + 0, zp - 2, zp - 2]


def test_default_rule_is_the_exercise_reference():
    """Lesson 02a's exercise 2.1 checks the same formula the library uses by default."""
    from compresslab.exercises.lesson02 import _ref_quantize

    g = np.random.default_rng(5)
    for zp, qmin, qmax in ((0, -128, 127), (7, 0, 255), (128, 0, 255), (-3, -8, 7)):
        scale = np.float32(g.uniform(0.01, 0.5))
        x = np.concatenate([g.normal(0, 3, 500), (np.arange(-40, 40) + 0.5) * scale]).astype(np.float32)
        np.testing.assert_array_equal(Q.quantize(x, Q.QParams(scale, zp, qmin, qmax)),
                                      _ref_quantize(x, float(scale), zp, qmin, qmax))


def _readable(x, qp):
    """The body of quant.quantize's readable path, applied to pieces smaller than MIN_SIZE."""
    pieces = np.array_split(x.reshape(-1), -(-x.size // (K.MIN_SIZE - 1)))
    assert all(p.size < K.MIN_SIZE for p in pieces)
    return np.concatenate([Q.quantize(p, qp) for p in pieces]).reshape(x.shape)


@pytest.mark.parametrize("n", [K.MIN_SIZE - 1, K.MIN_SIZE, K.MIN_SIZE + 1, 3 * K._CHUNK + 17])
def test_chunked_divide_kernel_equals_the_readable_form(n):
    for qp in _loop_cases():
        x = _adversarial(n, qp.scale)
        got = Q.quantize(x, qp)                        # n >= MIN_SIZE: the chunked kernel
        np.testing.assert_array_equal(got, _readable(x, qp), err_msg=str(qp))
        assert got.dtype == qp.dtype


def test_large_per_channel_input_equals_the_readable_form():
    g = np.random.default_rng(8)
    x = g.normal(0, 1, (4, K.MIN_SIZE)).astype(np.float32)
    scales = np.float32([0.01, 0.02, 0.05, 0.1])
    x[:, ::5] = (np.rint(x[:, ::5] / scales[:, None]) + 0.5) * scales[:, None]
    qp = Q.QParams(scales, [0, 3, -5, 7], -128, 127, axis=0)
    pieces = np.array_split(x, 8, axis=1)                      # each below MIN_SIZE: the readable form
    assert all(p.size < K.MIN_SIZE for p in pieces)
    np.testing.assert_array_equal(Q.quantize(x, qp), np.concatenate([Q.quantize(p, qp) for p in pieces], 1))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(0, 2**31 - 1), bits=st.integers(2, 16),
       signed=st.booleans(), rule=st.sampled_from(Q.ROUNDINGS))
def test_numpy_kernels_equal_their_one_line_rule(n, seed, bits, signed, rule):
    """Every chunked kernel gives clip(round_rule(x)), the rule written as one expression."""
    g = np.random.default_rng(seed)
    x = (g.normal(0, 1, n) * 10 ** g.uniform(-3, 3)).astype(np.float32)
    qp = Q.qparams(x, bits, "affine", signed=signed)
    k = g.integers(qp.qmin, qp.qmax + 1, n // 2) - qp.zero_point + 0.5
    x[: n // 2] = (k * np.float32(qp.scale)).astype(np.float32)    # near ties
    want = np.clip(K.round_rule(x, qp.scale, qp.zero_point, rule), qp.qmin, qp.qmax)
    np.testing.assert_array_equal(K.quantize_per_tensor(x, qp, rule, kernel="numpy"), want)


# ------------------------------------------------------------------ the default never depends on torch
_SAME_CALL = """
import sys
if sys.argv[1] == "torch":
    import torch
import numpy as np
from compresslab import quant as Q
scale = np.float32(0.1)
x = ((np.arange(-50, 50) + 0.5) * scale).astype(np.float32)          # near ties
print(Q.quantize(x, Q.QParams(scale, 7, 0, 255)).tolist())
print(Q.quantize(x.reshape(1, -1), Q.QParams([scale], [7], 0, 255, axis=0)).tolist())
"""


def test_default_gives_the_same_integers_with_and_without_torch_imported(torch):
    out = {}
    for first in ("numpy", "torch"):
        out[first] = subprocess.run([sys.executable, "-c", _SAME_CALL, first], capture_output=True,
                                    text=True, check=True).stdout
    assert out["numpy"] == out["torch"]
    # and these inputs do separate the rules: torch's own rule gives other integers
    scale = np.float32(0.1)
    x = ((np.arange(-50, 50) + 0.5) * scale).astype(np.float32)
    qp = Q.QParams(scale, 7, 0, 255)
    assert not np.array_equal(Q.quantize(x, qp), Q.quantize(x, qp, rounding="torch"))


def test_torch_rounding_without_torch_uses_the_documented_rules(monkeypatch):
    monkeypatch.setattr(K, "_TORCH_FOUND", None)
    monkeypatch.setattr(K.backend, "optional", lambda name: None)
    assert Q.torch_rounding() is None
    assert K.rule_for("torch", Q.QParams(0.1, 0, -128, 127)) == Q.TORCH_ROUNDING["tensor"] == "fma"
    assert K.rule_for("torch", Q.QParams([0.1], [0], -128, 127, axis=0)) == Q.TORCH_ROUNDING["channel"]
    with pytest.raises(ValueError, match="rounding"):
        Q.quantize(np.zeros(3), Q.QParams(0.1, 0, -128, 127), rounding="nearest")


@pytest.mark.parametrize("n", [7, K.MIN_SIZE + 5])
def test_float64_input_is_divided_as_given(n):
    """float64 values within 1e-11 of a tie round to the side they are on (no float32 cast first),
    small (readable form) and large (chunked kernel), per tensor and per channel."""
    from compresslab.exercises.lesson02 import _ref_quantize

    g = np.random.default_rng(4)
    k = g.integers(-100, 100, n) + 0.5
    x = (k + g.choice([-1e-11, 1e-11], n)) * 0.25                   # just below / above a tie
    qp = Q.QParams(0.25, 3, -128, 127)
    want = _ref_quantize(x, 0.25, 3, -128, 127)
    np.testing.assert_array_equal(Q.quantize(x, qp), want)
    np.testing.assert_array_equal(Q.quantize(x.reshape(1, -1), Q.QParams([0.25], [3], -128, 127, axis=0))[0], want)
    assert not np.array_equal(want, _ref_quantize(x.astype(np.float32), 0.25, 3, -128, 127))   # float32 would differ


def test_fake_quantize_with_mul_round_equals_torchs_fake_quantize(torch):
    """torch's fake_quantize_* kernels round x * (1/s) first and add z after ("mul_round"),
    unlike its quantize_per_* kernels: a documented detail, checked on exact ties."""
    g = np.random.default_rng(6)
    for _ in range(30):
        s, zp = np.float32(g.uniform(1e-3, 0.2)), int(g.integers(0, 256))
        x = ((g.integers(-150, 150, 64) + 0.5) * s).astype(np.float32)
        want = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(s), zp, 0, 255).numpy()
        np.testing.assert_array_equal(Q.fake_quantize(x, Q.QParams(s, zp, 0, 255), "mul_round"), want)
        sc, zps = g.uniform(1e-3, 0.2, 4).astype(np.float32), g.integers(0, 256, 4)
        xc = ((g.integers(-150, 150, (4, 16)) + 0.5) * sc[:, None]).astype(np.float32)
        want = torch.fake_quantize_per_channel_affine(torch.from_numpy(xc), torch.from_numpy(sc),
                                                      torch.from_numpy(zps.astype(np.int32)), 0, 0, 255).numpy()
        np.testing.assert_array_equal(Q.fake_quantize(xc, Q.QParams(sc, zps, 0, 255, axis=0), "mul_round"), want)


def test_default_rule_through_the_compiled_loop_equals_the_readable_form(monkeypatch):
    import numba  # noqa: F401  (the fast extra is part of the test extra)

    calls = []
    real = K._quantize_per_tensor_loop
    monkeypatch.setattr(K, "_quantize_per_tensor_loop", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    for qp in list(_loop_cases())[::3]:
        x = _adversarial(K.JIT_MIN_SIZE + 3, qp.scale)
        np.testing.assert_array_equal(Q.quantize(x, qp), _readable(x, qp), err_msg=str(qp))
    assert calls and set(calls) == {"divide"}


@settings(max_examples=80, deadline=None)
@given(log2_scale=st.floats(-60, 60), mantissa=st.sampled_from([1.0, 1.5, 1.2345678, 1.9999999]),
       bits=st.integers(2, 16), signed=st.booleans(), zp_frac=st.floats(0, 1), seed=st.integers(0, 2**31 - 1),
       large=st.booleans())
def test_default_rule_equals_the_formula_for_any_scale(log2_scale, mantissa, bits, signed, zp_frac, seed, large):
    """Scales from 1e-18 to 1e18 (powers of two and many-bit mantissas), every zero point, values
    around every tie: public quantize (readable form, chunked kernel or compiled loop) equals
    clip(rint(float64(x) / float64(scale)) + zero_point)."""
    scale = np.float32(mantissa * 2.0 ** log2_scale)
    qmin, qmax = Q.qrange(bits, signed)
    zp = int(qmin + round(zp_frac * (qmax - qmin)))
    qp = Q.QParams(scale, zp, qmin, qmax)
    g = np.random.default_rng(seed)
    n = K.JIT_MIN_SIZE + 1 if large else 500
    k = g.integers(qmin - zp - 2, qmax - zp + 2, n) + 0.5
    x = (k * np.float64(scale)).astype(np.float32)
    x = np.where(g.random(n) < 0.5, x, np.nextafter(x, np.float32(np.inf) * np.sign(g.random(n) - 0.5)))
    want = np.clip(np.rint(x.astype(np.float64) / np.float64(scale)) + zp, qmin, qmax)
    np.testing.assert_array_equal(Q.quantize(x, qp), want)
