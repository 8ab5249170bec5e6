"""Checkers for lesson 00 (tour)."""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ._core import Case, Mistake, checker, compare_cases, same_number


def _reference_bytes(model, bits=32):
    return nn.nbytes(model, bits)


def _weights_only(model, bits=32):
    return math.ceil(sum(l.weight.size for l in model.layers if hasattr(l, "weight")) * bits / 8)


def _linear_only(model, bits=32):
    return math.ceil(sum(l.weight.size + l.bias.size for l in model.layers
                         if isinstance(l, nn.Linear)) * bits / 8)


@checker("0.1", "model bytes", lesson="00_tour")
def check_model_bytes(model_bytes):
    """``model_bytes(model, bits=32)`` must return the bytes that all parameters take."""
    g = np.random.default_rng(0)
    cases = [
        Case("the default MLP 64-300-100-10 at 32 bits", (nn.mlp(seed=g),)),
        Case("a tiny MLP 3-2 at 32 bits", (nn.mlp((3, 2), seed=g),)),
        Case("the small CNN at 32 bits", (nn.cnn(seed=g),)),
        Case("the default MLP at 8 bits", (nn.mlp(seed=g), 8)),
        Case("an MLP 3-1 (4 parameters) at 4 bits", (nn.mlp((3, 1), seed=g), 4)),
        Case("an MLP 2-1 (3 parameters) at 4 bits, 12 bits in all", (nn.mlp((2, 1), seed=g), 4)),
    ]
    mistakes = [
        Mistake(lambda m, bits=32: nn.num_params(m),
                "you returned the number of parameters; each one takes bits / 8 bytes."),
        Mistake(lambda m, bits=32: nn.num_params(m) * bits,
                "you returned bits, not bytes: divide by 8."),
        Mistake(lambda m, bits=32: nn.num_params(m) * 4,
                "you always used 4 bytes per parameter; use the `bits` argument (bits / 8 bytes each)."),
        Mistake(lambda m, bits=32: nn.num_params(m) * bits // 8,
                "a 4-bit model with an odd number of parameters still needs whole bytes: round up "
                "(math.ceil), do not round down."),
        Mistake(_weights_only, "you counted the weights but forgot the biases."),
        Mistake(_linear_only, "you only counted Linear layers; Conv2d layers have weights and biases too."),
    ]
    return compare_cases(model_bytes, _reference_bytes, cases, mistakes)


def _reference_accuracy(logits, labels):
    return float((np.argmax(logits, axis=1) == labels).mean())


@checker("0.2", "accuracy from logits", lesson="00_tour")
def check_accuracy(accuracy):
    """``accuracy(logits, labels)`` must return the fraction of rows whose arg-max is the label."""
    g = np.random.default_rng(1)
    cases = []
    for n, k in ((10, 10), (7, 3), (3, 5), (1, 4)):
        logits = g.normal(size=(n, k)).astype(np.float32)
        labels = g.integers(0, k, n)
        labels[: n // 2] = logits[: n // 2].argmax(axis=1)
        cases.append(Case(f"{n} samples with {k} classes", (logits, labels)))
    mistakes = [
        Mistake(lambda z, y: 100 * _reference_accuracy(z, y),
                "you returned a percentage; return a fraction between 0 and 1."),
        Mistake(lambda z, y: float((np.argmax(z, axis=1) != y).mean()),
                "you returned the error rate (wrong predictions); count the correct ones."),
        Mistake(lambda z, y: int((np.argmax(z, axis=1) == y).sum()),
                "you returned the number of correct predictions; divide by the number of samples."),
        Mistake(lambda z, y: float((np.argmax(z, axis=0)[: len(y)] == y[: z.shape[1]]).mean()),
                "take the arg-max along axis=1 (over the classes of each sample), not axis=0."),
    ]

    return compare_cases(accuracy, _reference_accuracy, cases, mistakes, equal=same_number("a float"))
