"""Checkers for lesson 00 (tour)."""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ._core import Case, Feedback, Mistake, Question, call, checker, compare_cases, quiz, same, same_number


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


# ------------------------------------------------------------------ 0.3 backward pass
def _library_backward(x, W, b, y):
    """``(dW, db, dx)`` from compresslab.nn's own layers: Linear -> ReLU -> cross_entropy."""
    linear, relu = nn.Linear(W.shape[1], W.shape[0]), nn.ReLU()
    linear.weight, linear.bias = W, b
    _, grad = nn.cross_entropy(relu(linear(x)), y)
    dx = linear.backward(relu.backward(grad))
    return linear.grads["weight"], linear.grads["bias"], dx


def _loss(x, W, b, y):
    """Mean softmax cross-entropy of relu(x @ W.T + b), for the finite differences."""
    return nn.cross_entropy(np.maximum(x @ W.T + b, 0), y)[0]


def _finite_differences(x, W, b, y, eps=1e-6):
    """Central differences ``(L(p + eps) - L(p - eps)) / (2 eps)`` for every entry of W, b, x."""
    args = [x, W, b]
    grads = []
    for k in (1, 2, 0):                                  # the order of the answer: dW, db, dx
        g = np.zeros_like(args[k])
        for i in np.ndindex(args[k].shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[k][i] += eps
            minus[k][i] -= eps
            g[i] = (_loss(*plus, y) - _loss(*minus, y)) / (2 * eps)
        grads.append(g)
    return tuple(grads)


def _wrong_backward(x, W, b, y, *, relu_forward=True, mask=lambda z: z > 0, onehot=True, mean=True,
                    use_bias=True, stable=True, dw="dz.T @ x", dx="dz @ W", db="sum", forward_W=False):
    """The backward pass with one classic mistake switched on (the defaults give the right one)."""
    with np.errstate(all="ignore"):
        n = x.shape[0]
        z = (x @ W if forward_W else x @ W.T) + (b if use_bias else 0)
        a = np.maximum(z, 0) if relu_forward else z
        e = np.exp(a - a.max(axis=1, keepdims=True) if stable else a)
        p = e / e.sum(axis=1, keepdims=True)
        if onehot:
            p[np.arange(n), y] -= 1
        dz = p / n if mean else p
        if mask is not None:
            dz = dz * mask(z)
        dW = dz.T @ x if dw == "dz.T @ x" else x.T @ dz
        grad_x = dz @ W if dx == "dz @ W" else dz @ W.T
        if forward_W:                                    # consistently W where W.T belongs
            dW, grad_x = x.T @ dz, dz @ W.T
        grad_b = {"sum": dz.sum(axis=0), "zeros": np.zeros_like(b), "none": None}[db]
        return dW, grad_b, grad_x


def _same_grads(got, want):
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise Feedback(f"return the three gradients as a tuple (dW, db, dx); got {type(got).__name__}"
                       + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "") + ".")
    return all(same(g, w, rtol=1e-4, atol=1e-6) for g, w in zip(got, want))


def _describe_grads(grads):
    if isinstance(grads, (tuple, list)):
        return "(" + ", ".join(f"shape {np.shape(g)}" for g in grads) + ")"
    return repr(grads)


def _explain_grads(got, want, case):
    names = [name for name, g, w in zip(("dW", "db", "dx"), got, want) if not same(g, w, rtol=1e-4, atol=1e-6)]
    shapes = [f"{name} has shape {np.shape(g)}, expected {np.shape(w)}"
              for name, g, w in zip(("dW", "db", "dx"), got, want) if np.shape(g) != np.shape(w)]
    return (f"wrong result on {case.description}: {', '.join(names)} differ"
            + (f" ({'; '.join(shapes)})" if shapes else "") + ".")


def _grad_cases(g):
    f32 = np.float32
    cases = []
    x, W, b = g.normal(size=(5, 4)), g.normal(size=(4, 4)), g.normal(size=4)
    cases.append(Case("a batch of 5 with a square W (4 inputs, 4 classes)",
                      (x.astype(f32), W.astype(f32), b.astype(f32), g.integers(0, 4, 5))))
    x, W, b = g.normal(size=(6, 5)), g.normal(size=(4, 5)), g.normal(size=4)
    cases.append(Case("a batch of 6, 5 inputs, 4 classes", (x.astype(f32), W.astype(f32), b.astype(f32),
                                                             g.integers(0, 4, 6))))
    x, W, b = g.normal(size=(1, 3)), g.normal(size=(5, 3)), g.normal(size=5)
    cases.append(Case("a batch of 1, 3 inputs, 5 classes", (x.astype(f32), W.astype(f32), b.astype(f32),
                                                            np.array([2]))))
    # small integers: several pre-activations are exactly 0, where the ReLU's gradient is 0
    x = np.array([[1, 0, 2], [0, 1, 1], [2, 1, 0], [1, 1, 1]], f32)
    W = np.array([[1, -1, 0], [0, 1, -1], [-1, 0, 1]], f32)
    b = np.array([-1, 0, 1], f32)
    cases.append(Case("integer inputs where some pre-activations are exactly 0 (a ReLU tie)",
                      (x, W, b, np.array([0, 1, 2, 0]))))
    # every row's largest logit is over 800: exp overflows in float32 (> 88) and in float64 (> 709)
    big = np.random.default_rng(6)
    x, W, b = 100 * big.normal(size=(4, 3)), 10 * big.normal(size=(3, 3)), big.normal(size=3)
    cases.append(Case("large pre-activations (thousands: exp overflows)",
                      (x.astype(f32), W.astype(f32), b.astype(f32), np.array([0, 1, 2, 1]))))
    return cases


@checker("0.3", "backward pass of Linear + ReLU + cross-entropy", lesson="00_tour")
def check_linear_relu_backward(backward):
    """``backward(x, W, b, y)`` must return ``(dW, db, dx)``, the gradients of the mean softmax
    cross-entropy of ``relu(x @ W.T + b)`` with labels ``y``."""
    g = np.random.default_rng(3)
    cases = _grad_cases(g)
    mistakes = [
        Mistake(lambda *a: _wrong_backward(*a, mask=None),
                "you forgot the ReLU mask: the gradient passes the ReLU only where its input "
                "z = x @ W.T + b is > 0, so multiply the gradient by (z > 0) before dW, db and dx."),
        Mistake(lambda *a: _wrong_backward(*a, mask=None, relu_forward=False),
                "you left out the ReLU (forward and backward): take the softmax of relu(z) and "
                "multiply the gradient by the ReLU mask (z > 0)."),
        Mistake(lambda *a: _wrong_backward(*a, mask=lambda z: z >= 0),
                "your ReLU mask lets the gradient through where z = 0 exactly (z >= 0); the "
                "ReLU's gradient at 0 is 0, as in torch: use (z > 0)."),
        Mistake(lambda *a: _wrong_backward(*a, mean=False),
                "you summed over the batch instead of averaging: the loss is the mean over the "
                "batch, so divide the softmax-minus-one-hot gradient by the batch size N."),
        Mistake(lambda *a: _wrong_backward(*a, onehot=False),
                "you used the softmax alone as the gradient of the logits: the gradient of "
                "cross-entropy is softmax minus the one-hot of the label, (p - onehot(y)) / N."),
        Mistake(lambda *a: _wrong_backward(*a, stable=False),
                "your softmax overflowed (exp of a large logit is inf, inf / inf is nan): subtract "
                "each row's max before np.exp, which leaves the softmax unchanged."),
        Mistake(lambda *a: _wrong_backward(*a, dw="x.T @ dz"),
                "your dW is transposed (x.T @ dz, shape (in, out)): W has shape (out, in), so "
                "dW = dz.T @ x, the same shape as W."),
        Mistake(lambda *a: _wrong_backward(*a, dx="dz @ W.T"),
                "your dx multiplies by W.T: the forward pass used W.T, so the backward pass uses "
                "W itself, dx = dz @ W (shape (batch, in), like x)."),
        Mistake(lambda *a: _wrong_backward(*a, dw="x.T @ dz", dx="dz @ W.T"),
                "your dW and dx are both transposed: W has shape (out, in), so dW = dz.T @ x "
                "(the shape of W) and dx = dz @ W (not W.T)."),
        Mistake(lambda *a: _wrong_backward(*a, forward_W=True),
                "you used W where the layer uses W.T: the forward pass is z = x @ W.T + b with W of "
                "shape (out, in), so dW = dz.T @ x and dx = dz @ W."),
        Mistake(lambda *a: _wrong_backward(*a, db="none"),
                "db is missing: the bias gets the gradient dz summed over the batch, "
                "db = dz.sum(axis=0), shape (out,)."),
        Mistake(lambda *a: _wrong_backward(*a, db="zeros"),
                "your db is all zeros: the bias gets the gradient dz summed over the batch, "
                "db = dz.sum(axis=0), shape (out,)."),
        Mistake(lambda *a: _wrong_backward(*a, use_bias=False),
                "you left the bias b out of the forward pass: z = x @ W.T + b (the ReLU mask and "
                "the softmax both depend on b)."),
    ]
    message = compare_cases(backward, _library_backward, cases, mistakes, equal=_same_grads,
                            describe=_describe_grads, explain=_explain_grads)
    # one float64 case against central finite differences of the loss (no pre-activation near 0)
    x, W, b = g.normal(size=(5, 4)), g.normal(size=(3, 4)), g.normal(size=3)
    y = np.array([0, 2, 1, 1, 0])
    fd_case = Case("a float64 batch of 5, 4 inputs, 3 classes", (x, W, b, y))
    got, want = call(backward, fd_case), _finite_differences(x, W, b, y)
    if not _same_grads(got, want):
        raise Feedback(_explain_grads(got, want, fd_case) + " (compared with finite differences of the loss)")
    return message[:-1] + " (compresslab.nn's Linear, ReLU and cross_entropy backward), and with " \
        "finite differences of the loss on a float64 case."


# ------------------------------------------------------------------ self-check quiz
check_quiz = quiz("0.quiz", "00_tour", [
    Question(
        "The lesson's CNN has fewer parameters than its MLP. What did the lesson find for one "
        "image (batch 1)?",
        "b",
        options={
            "a": "The CNN does fewer multiply-adds and runs faster: fewer parameters mean less compute.",
            "b": "The CNN does more multiply-adds and runs slower: its filters are applied at "
                 "every position of the image.",
            "c": "Both do the same number of multiply-adds, since every parameter takes part in "
                 "exactly one multiply-add.",
            "d": "The CNN does more multiply-adds but runs faster, since it has fewer weights to read.",
        },
        why={
            "a": "parameters measure storage, not compute: a convolution applies each filter "
                 "weight at every position of the image, so one weight takes part in many "
                 "multiply-adds.",
            "c": "one multiply-add per parameter holds for a Linear layer at batch 1, not for a "
                 "convolution, whose filters are reused at every position.",
            "d": "look again at the batch-1 timings the lesson printed for the two models; fewer "
                 "weights did not make up for the extra work (and im2col's copies).",
        }),
    Question(
        "How many bytes do the MLP's 50,610 parameters take if each one is stored with 3 bits "
        "(packed together)?",
        18979,
        why={"number": "bytes = parameters x bits / 8, and a partly filled last byte still costs "
                       "a whole byte: round the total up (not down, not to the nearest), and "
                       "do not give each parameter a byte of its own."}),
    Question(
        "Why does the lesson choose its settings on the validation split and read each model's "
        "test accuracy only once, to report it?",
        "c",
        options={
            "a": "The test split is much smaller than the validation split, so its accuracy is "
                 "too noisy to choose settings with.",
            "b": "Evaluating a model on the test split changes its weights.",
            "c": "Settings picked for their test accuracy are fitted to those particular test "
                 "images, so the reported number would be optimistic for new data.",
            "d": "The lesson does not have the test labels, so it can only score the test split once.",
        },
        why={
            "a": "the two splits are the same size up to one image (360 and 359, both stratified "
                 "by class): size is not the reason.",
            "b": "evaluation runs the forward pass only and changes nothing in the model; the harm "
                 "comes from the decisions you make with the number.",
            "d": "the lesson has the test labels: it computes the test accuracy from them. The "
                 "rule is a discipline, not a technical limit.",
        }),
    Question(
        "In the lesson's energy estimate (batch 1, Horowitz's 45 nm numbers, weights read once "
        "from DRAM), storing the MLP's weights as int8 instead of float32 cuts the energy per "
        "inference by about what factor?",
        "b",
        options={
            "a": "About 15x: an int8 multiply-add costs about 15 times less than a float32 one.",
            "b": "About 4x: an int8 weight takes a quarter of the bytes of a float32 one.",
            "c": "Not at all: the model does the same number of multiply-adds.",
            "d": "About 170x: a DRAM read costs about 170 times a float32 multiply.",
        },
        why={
            "a": "that factor would apply if the multiply-adds dominated the estimate; look at "
                 "which term the lesson's estimate is made of, and how that term changes.",
            "c": "the estimate is not only multiply-adds: it also counts every byte of weights "
                 "read from DRAM, and int8 weights take fewer bytes.",
            "d": "that ratio compares two different operations of one model; going to int8 "
                 "changes how many bytes are read and what each multiply-add costs, it does not "
                 "replace DRAM reads by multiplies.",
        }),
])
