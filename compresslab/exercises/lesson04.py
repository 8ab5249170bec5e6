"""Checkers for lesson 04 (measuring speedup)."""
from __future__ import annotations

import numpy as np

from .. import nn, speed
from ._core import Case, Feedback, Mistake, checker, compare_cases


def _close(a, b):
    try:
        return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                rtol=1e-9, atol=1e-12))
    except (TypeError, ValueError):
        return False


@checker("4.1", "Amdahl's law", lesson="04_speedup")
def check_amdahl(amdahl_speedup):
    """``amdahl_speedup(p, n)`` must return ``1 / ((1 - p) + p / n)``."""
    cases = [Case("p = 0.5 on 2 cores", (0.5, 2)), Case("p = 0.9 on 8 cores", (0.9, 8)),
             Case("p = 0 (nothing parallel) on 4 cores", (0.0, 4)),
             Case("p = 1 (all parallel) on 16 cores", (1.0, 16)),
             Case("p = 0.75 on 1 core", (0.75, 1)), Case("p = 0.99 on 1000 cores", (0.99, 1000))]
    mistakes = [
        Mistake(lambda p, n: (1 - p) + p / n, "you returned the new *time* (as a fraction of the "
                "old one); the speedup is old time / new time, its reciprocal."),
        Mistake(lambda p, n: 1 / (p + (1 - p) / n), "you divided the serial part by n; only the "
                "parallel fraction p runs n times faster: 1 / ((1 - p) + p / n)."),
        Mistake(lambda p, n: (1 - p) + p * n, "that is Gustafson's scaled speedup (the job grows "
                "with n); Amdahl's law is for a fixed job: 1 / ((1 - p) + p / n)."),
        Mistake(lambda p, n: p * n, "the serial fraction (1 - p) still takes its full time."),
    ]
    return compare_cases(amdahl_speedup, lambda p, n: float(speed.amdahl(p, n)), cases, mistakes,
                         equal=_close)


def _ref_intensity(batch, n_in, n_out, bytes_per_value=4):
    v = 8 * bytes_per_value                   # the exercise's model: every value the same width
    c = speed.layer_costs(nn.mlp((n_in, n_out)), batch, bits=v, act_bits=v, bias_bits=v)[0]
    return c.flops / c.bytes


@checker("4.2", "arithmetic intensity of a Linear layer", lesson="04_speedup")
def check_intensity(linear_intensity):
    """``linear_intensity(batch, n_in, n_out, bytes_per_value=4)``: FLOPs per byte moved, with
    FLOPs = 2 * batch * n_in * n_out and bytes = (weights + bias + input + output) * bytes_per_value."""
    cases = [Case("batch 1, 1024 -> 1024", (1, 1024, 1024)),
             Case("batch 64, 1024 -> 1024", (64, 1024, 1024)),
             Case("batch 8, 64 -> 10", (8, 64, 10)),
             Case("batch 256, 512 -> 2048 in int8 (1 byte per value)", (256, 512, 2048, 1))]

    def w(b, i, o):
        return i * o + o

    mistakes = [
        Mistake(lambda b, i, o, v=4: b * i * o / (v * (w(b, i, o) + b * i + b * o)),
                "you counted MACs; each multiply-accumulate is 2 FLOPs (a multiply and an add)."),
        Mistake(lambda b, i, o, v=4: 2 * b * i * o / (v * w(b, i, o)),
                "you counted only the weight bytes; the input and output activations move too."),
        Mistake(lambda b, i, o, v=4: 2 * b * i * o / (v * (i * o + b * i + b * o)),
                "you forgot the bias (n_out values)."),
        Mistake(lambda b, i, o, v=4: 2 * b * i * o / (w(b, i, o) + b * i + b * o),
                "you divided by the number of values, not bytes: multiply by bytes_per_value."),
        Mistake(lambda b, i, o, v=4: 2 * b * i * o / (v * (w(b, i, o) + i + o)),
                "the activations are batch x n_in and batch x n_out values."),
    ]
    return compare_cases(linear_intensity, _ref_intensity, cases, mistakes,
                         equal=lambda a, b: _close(a, b) if a is not None else False)


@checker("4.3", "break-even sparsity", lesson="04_speedup")
def check_break_even(break_even):
    """``break_even(sparsities, speedups)``: smallest tested sparsity from which on every higher
    tested sparsity has speedup > 1; None if the highest one is not faster."""
    cases = [
        Case("a clean curve", ([0.5, 0.7, 0.9, 0.95, 0.99], [0.2, 0.6, 1.3, 2.1, 5.0])),
        Case("a noisy curve that dips below 1 again at 0.9",
             ([0.5, 0.8, 0.9, 0.95], [0.3, 1.1, 0.9, 2.5])),
        Case("sparse never wins", ([0.5, 0.9, 0.99], [0.1, 0.5, 0.9])),
        Case("sparse always wins", ([0.6, 0.8], [1.5, 3.0])),
        Case("sparsities not in order", ([0.99, 0.5, 0.9], [4.0, 0.4, 1.2])),
        Case("a speedup of exactly 1 is not faster", ([0.8, 0.9, 0.95], [0.7, 1.0, 1.4])),
    ]

    def first_above(s, v):
        for a, b in zip(s, v):
            if b > 1:
                return a
        return None

    mistakes = [
        Mistake(first_above, "you returned the first sparsity with speedup > 1, but at a higher "
                "sparsity it was slower again: break-even means faster from there on."),
        Mistake(lambda s, v: next((a for a, b in sorted(zip(s, v)) if b > 1), None),
                "you returned the first sparsity with speedup > 1, but at a higher sparsity it was "
                "slower again: break-even means faster from there on."),
        Mistake(lambda s, v: max((a for a, b in zip(s, v) if b > 1), default=None),
                "you returned the highest sparsity where sparse wins; we want the lowest from which "
                "on it always wins."),
    ]

    def equal(a, b):
        if a is None or b is None:
            return a is None and b is None
        try:
            return abs(float(a) - float(b)) < 1e-12
        except (TypeError, ValueError):
            raise Feedback(f"return a sparsity (a float) or None, got {type(a).__name__}.") from None

    return compare_cases(break_even, speed.break_even, cases, mistakes, equal=equal)
