"""Lesson 02 checkers: the reference passes, every classic mistake gets its specific hint."""
import numpy as np
import pytest

from compresslab.exercises import lesson02 as ex


def _status(check, fn):
    r = check(fn, quiet=True)
    return r.status, r.message


def test_quantize_affine_checker():
    ok = lambda x, s, z, lo, hi: np.clip(np.rint(x / s) + z, lo, hi).astype(np.int32)  # noqa: E731
    assert _status(ex.check_quantize_affine, ok)[0] == "pass"
    wrong = {
        "floor": lambda x, s, z, lo, hi: np.clip(np.floor(x / s) + z, lo, hi),
        "truncated": lambda x, s, z, lo, hi: np.clip((x / s).astype(int) + z, lo, hi),
        "halves up": lambda x, s, z, lo, hi: np.clip(np.floor(x / s + 0.5) + z, lo, hi),
        "away from zero": lambda x, s, z, lo, hi: np.clip(np.sign(x) * np.floor(np.abs(x / s) + 0.5) + z, lo, hi),
        "forgot to clamp": lambda x, s, z, lo, hi: np.rint(x / s) + z,
        "zero point": lambda x, s, z, lo, hi: np.clip(np.rint(x / s), lo, hi),
    }
    for hint, fn in wrong.items():
        status, msg = _status(ex.check_quantize_affine, fn)
        assert status == "fail" and hint in msg, (hint, msg)


def _nie(*a):
    raise NotImplementedError()


@pytest.mark.parametrize("check", [ex.check_quantize_affine, ex.check_affine_qparams,
                                   ex.check_symmetric_quantize])
def test_not_attempted(check):
    assert _status(check, _nie)[0] == "not attempted"


def test_affine_qparams_checker():
    def ok(lo, hi, bits):
        qmin, qmax = 0, 2 ** bits - 1
        s = (hi - lo) / (qmax - qmin)
        return s, int(np.clip(np.rint(qmin - lo / s), qmin, qmax))
    assert _status(ex.check_affine_qparams, ok)[0] == "pass"

    def variant(scale=None, zp=None):
        def f(lo, hi, bits):
            qmax = 2 ** bits - 1               # qmin = 0
            s = scale(lo, hi, qmax) if scale else (hi - lo) / qmax
            return s, (zp(lo, s, qmax) if zp else int(np.clip(np.rint(-lo / s), 0, qmax)))
        return f
    wrong = {
        "only x_max": variant(scale=lambda lo, hi, q: hi / q),
        "symmetric scheme": variant(scale=lambda lo, hi, q: max(abs(lo), abs(hi)) / q),
        "off by one": variant(scale=lambda lo, hi, q: (hi - lo) / (q + 1)),
        "not an integer": variant(zp=lambda lo, s, q: -lo / s),
        "not rounded": variant(zp=lambda lo, s, q: int(np.clip(-lo / s, 0, q))),
        "not clamped": variant(zp=lambda lo, s, q: int(np.rint(-lo / s))),
        "it is a float": variant(zp=lambda lo, s, q: float(np.clip(np.rint(-lo / s), 0, q))),
    }
    for hint, fn in wrong.items():
        status, msg = _status(ex.check_affine_qparams, fn)
        assert status == "fail" and hint in msg, (hint, msg)


def test_symmetric_checker():
    def ok(x, bits):
        qmax = 2 ** (bits - 1) - 1
        s = np.abs(x).max() / qmax
        return np.clip(np.rint(x / s), -qmax, qmax).astype(np.int8), s
    assert _status(ex.check_symmetric_quantize, ok)[0] == "pass"

    def variant(qmax_fn, scale_fn=None):
        def f(x, bits):
            qmax = qmax_fn(bits)
            s = scale_fn(x, bits) if scale_fn else np.abs(x).max() / qmax
            return np.clip(np.rint(x / s), -qmax, qmax), s
        return f
    wrong = {
        "off by one: a signed": variant(lambda b: 2 ** (b - 1)),
        "off by one in the scale": variant(lambda b: 2 ** (b - 1) - 1, lambda x, b: np.abs(x).max() / 2 ** (b - 1)),
        "unsigned maximum": variant(lambda b: 2 ** b - 1),
        "not from (max - min)": variant(lambda b: 2 ** (b - 1) - 1,
                                        lambda x, b: (x.max() - x.min()) / (2 ** (b - 1) - 1)),
        "not max(x)": variant(lambda b: 2 ** (b - 1) - 1, lambda x, b: x.max() / (2 ** (b - 1) - 1)),
    }
    for hint, fn in wrong.items():
        status, msg = _status(ex.check_symmetric_quantize, fn)
        assert status == "fail" and hint in msg, (hint, msg)


def test_affine_qparams_checker_names_a_widened_range():
    import numpy as np

    from compresslab.exercises import lesson02 as ex

    def widened(lo, hi, bits):
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        s = (hi - lo) / (2 ** bits - 1)
        return s, int(np.clip(np.rint(-lo / s), 0, 2 ** bits - 1))

    r = ex.check_affine_qparams(widened, quiet=True)
    assert r.status == "fail" and "widened the range" in r.message
