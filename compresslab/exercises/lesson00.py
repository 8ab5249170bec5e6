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


def _bits(model, bits):
    return nn.num_params(model) * bits


@checker("0.1", "model bytes", lesson="00_tour")
def check_model_bytes(model_bytes):
    """``model_bytes(model, bits=32)`` must return the bytes that all parameters take:
    ``ceil(num_params * bits / 8)`` (a partly filled last byte costs a whole byte)."""
    g = np.random.default_rng(0)
    cases = [
        Case("the default MLP 64-300-100-10 at 32 bits", (nn.mlp(seed=g),)),
        Case("a tiny MLP 3-2 at 32 bits", (nn.mlp((3, 2), seed=g),)),
        Case("the small CNN at 32 bits", (nn.cnn(seed=g),)),
        Case("the default MLP at 8 bits", (nn.mlp(seed=g), 8)),
        Case("an MLP 3-1 (4 parameters) at 4 bits, 16 bits = exactly 2 bytes", (nn.mlp((3, 1), seed=g), 4)),
        Case("an MLP 2-1 (3 parameters) at 4 bits, 12 bits = 1.5 bytes", (nn.mlp((2, 1), seed=g), 4)),
        Case("an MLP 4-1 (5 parameters) at 4 bits, 20 bits = 2.5 bytes", (nn.mlp((4, 1), seed=g), 4)),
        Case("an MLP 4-1 (5 parameters) at 2 bits, 10 bits = 1.25 bytes", (nn.mlp((4, 1), seed=g), 2)),
        Case("the small CNN (38,282 parameters) at 5 bits, 23,926.25 bytes", (nn.cnn(seed=g), 5)),
    ]
    ceil_it = "a partly filled last byte still costs a whole byte: math.ceil(num_params * bits / 8)"
    mistakes = [
        Mistake(lambda m, bits=32: nn.num_params(m),
                "you returned the number of parameters; each one takes bits / 8 bytes."),
        Mistake(lambda m, bits=32: _bits(m, bits),
                "you returned bits, not bytes: divide by 8."),
        Mistake(lambda m, bits=32: nn.num_params(m) * 4,
                "you always used 4 bytes per parameter; use the `bits` argument (bits / 8 bytes each)."),
        Mistake(lambda m, bits=32: _bits(m, bits) // 8,
                f"you rounded the byte count down (// 8 or int()); {ceil_it}."),
        Mistake(lambda m, bits=32: round(_bits(m, bits) / 8),
                "you rounded to the nearest byte with round(): it gives round(2.5) = 2 (half to "
                f"even) and round(1.25) = 1, but 20 or 10 bits need 3 or 2 bytes; {ceil_it}."),
        Mistake(lambda m, bits=32: int(_bits(m, bits) / 8 + 0.5),
                "you rounded half up (int(x + 0.5)): 10 bits = 1.25 bytes became 1 byte, but the "
                f"last 2 bits need a byte of their own; {ceil_it}."),
        Mistake(lambda m, bits=32: _bits(m, bits) / 8,
                f"you returned a fractional number of bytes (num_params * bits / 8); {ceil_it}."),
        Mistake(lambda m, bits=32: _bits(m, bits) // 8 + 1,
                "you always added one byte (// 8 + 1): when the bits fill whole bytes there is no "
                f"partly filled byte to pay for; {ceil_it}."),
        Mistake(lambda m, bits=32: nn.num_params(m) * math.ceil(bits / 8),
                "you gave every parameter whole bytes (ceil(bits / 8) each), so a 4-bit value took a "
                "full byte; the bits are packed together, so round up only the total: "
                "math.ceil(num_params * bits / 8)."),
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
    for n, k in ((10, 10), (7, 3), (3, 5), (1, 4), (8, 4)):
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
        Mistake(lambda z, y: float((np.argmax(z, axis=1) == y).sum() / z.shape[1]),
                "you divided by the number of classes (logits.shape[1], the columns); divide by the "
                "number of samples, the rows: len(labels) or logits.shape[0]."),
        Mistake(lambda z, y: float((np.argmax(z, axis=0)[: len(y)] == y[: z.shape[1]]).mean()),
                "take the arg-max along axis=1 (over the classes of each sample), not axis=0."),
        Mistake(lambda z, y: float((np.argmax(z) == y).mean()),
                "np.argmax(logits) without an axis returns one index into the flattened array; "
                "take one arg-max per row: np.argmax(logits, axis=1)."),
    ]

    return compare_cases(accuracy, _reference_accuracy, cases, mistakes, equal=same_number("a float"))
