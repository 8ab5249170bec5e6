"""Bad input never gives a silent wrong result, a hang or an obscure error (issue #19).

Every public function is called with valid arguments, then once per (argument, bad value) with
that one argument replaced: NaN, inf, -1, 0, a huge number, a bool, None, a string, a complex
array, an array of the wrong shape. Each call must either raise a ValueError or TypeError whose
message names the argument, or -- where the bad value is in fact valid (``ok``) -- return.
A per-call alarm turns a hang into a failure. The reproductions of the issue follow.
"""

import gzip
import hashlib
import json
import math
import re
import signal
import struct
import threading
import zlib

import numpy as np
import pytest

from compresslab import _validate as V
from compresslab import data, distill, encode, lowrank, nn, prune, quant, speed
from compresslab.quant import awq as quant_awq
from compresslab.quant import gptq as quant_gptq

g = np.random.default_rng(0)
X = g.normal(size=(12, 6)).astype(np.float32)
Y = g.integers(0, 3, 12)
W = g.normal(size=(4, 6)).astype(np.float32)
Z = g.normal(size=(5, 3))
M = nn.mlp((6, 5, 3), seed=0)

BAD = {
    "nan": float("nan"),
    "inf": float("inf"),
    "neg": -1,
    "zero": 0,
    "huge": 10**12,
    "bool": True,
    "none": None,
    "str": "x",
    "complex": np.array([1j, 2j]),
    "shape": np.zeros((2, 2, 2, 2, 2), np.float32),
}
MODEL_ARG = {"model", "student", "teacher", "layer"}
TRAIN = {"epochs": 1, "progress": False}


def fn(f, ok=None, skip=(), **kwargs):
    """A fuzz target: f(**kwargs) is valid; ``ok[arg]`` lists bad-value names that are valid
    for ``arg`` (the call must then return); ``skip`` lists (arg, bad) pairs not tried
    (e.g. a huge epoch count is valid but slow)."""
    return f, kwargs, ok or {}, set(skip)


def _masks():
    return prune.model_masks(M, 0.5)


def _cb():
    return quant.kmeans_quantize_model(M.copy(), 2)


NUMBERS = ["neg", "zero", "huge", "bool", "shape"]  # a number or an array of numbers: valid data
GPT_CONFIG = nn.GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=8)
G = nn.GPT(GPT_CONFIG, seed=0)
TOKENS = np.arange(40) % 256
CALIB = quant.calibration_windows(np.arange(200) % 256, n=8, context=8, seed=0)  # 64 rows: H of rank 32
WL, XL = g.normal(size=(4, 8)).astype(np.float32), g.normal(size=(12, 8)).astype(np.float32)
HUGE_SLOW = [("epochs", "huge"), ("batch_size", "huge"), ("iters", "huge")]
TARGETS = {
    # nn
    "nn.mlp": fn(nn.mlp, sizes=(6, 5, 3)),
    "nn.cnn": fn(
        nn.cnn,
        hidden=4,
        channels=(2, 2),
        skip=[("hidden", "huge"), ("num_classes", "huge"), ("image_size", "huge")],
    ),
    "nn.Linear": fn(
        nn.Linear, in_features=3, out_features=2, skip=[("in_features", "huge"), ("out_features", "huge")]
    ),
    "nn.predict": fn(nn.predict, model=M, X=X, ok={"batch_size": ["huge"]}),
    "nn.evaluate": fn(nn.evaluate, model=M, X=X, y=Y),
    "nn.confusion_matrix": fn(
        nn.confusion_matrix,
        model=M,
        X=X,
        y=Y,
        num_classes=3,
        ok={"num_classes": ["none"]},
        skip=[("num_classes", "huge")],
    ),
    "nn.fit": fn(
        nn.fit,
        model=M.copy(),
        X=X,
        y=Y,
        epochs=1,
        progress=False,
        ok={"epochs": ["zero"], "batch_size": ["huge"], "progress": ["bool"]},
        skip=HUGE_SLOW,
    ),
    "nn.log_softmax": fn(nn.log_softmax, z=Z, axis=-1, ok={"axis": ["neg", "zero"], "z": ["shape"]}),
    "nn.cross_entropy": fn(nn.cross_entropy, logits=Z, labels=Y[:5]),
    "nn.nbytes": fn(nn.nbytes, model=M, bits=8),
    "nn.num_params": fn(nn.num_params, model=M, ok={"nonzero": ["bool"]}),
    "nn.summary": fn(nn.summary, model=M),
    "nn.weighted_layers": fn(nn.weighted_layers, model=M),
    "nn.Sequential.__call__": fn(lambda x: M(x), x=X),
    # nn: the GPT
    "nn.GPTConfig": fn(
        nn.GPTConfig, vocab_size=256, block_size=8, n_layer=1, n_head=2, n_embd=8, layer_norm_eps=1e-5
    ),
    "nn.GPT": fn(
        nn.GPT, config=GPT_CONFIG, seed=0, ok={"config": ["none"], "seed": ["zero", "huge", "none"]}
    ),
    "nn.GPT.__call__": fn(lambda tokens: G(tokens), tokens=TOKENS[None, :8]),
    "nn.KVCache": fn(
        nn.KVCache, config=GPT_CONFIG, batch=2, max_len=8, bits=8, ok={"max_len": ["none"], "bits": ["none"]}
    ),
    "nn.quantize_kv": fn(nn.quantize_kv, x=np.ones((1, 2, 3, 4), np.float32), ok={"x": ["shape"]}),
    "nn.generate": fn(
        nn.generate,
        model=G,
        prompt=[1, 2],
        max_new_tokens=3,
        temperature=1.0,
        top_k=3,
        seed=0,
        use_cache=True,
        kv_bits=8,
        ok={
            "prompt": ["zero", "str"],
            "max_new_tokens": ["zero"],
            "temperature": ["zero"],
            "top_k": ["huge", "none"],
            "seed": ["zero", "huge", "none"],
            "use_cache": ["bool"],
            "kv_bits": ["none"],
        },
    ),
    "nn.perplexity": fn(
        nn.perplexity,
        model=G,
        tokens=TOKENS,
        context=4,
        max_chunks=2,
        batch_size=2,
        ok={"context": ["none"], "max_chunks": ["huge", "none"], "batch_size": ["huge"]},
    ),
    # distill
    "distill.softmax": fn(distill.softmax, z=Z, T=2.0, ok={"z": NUMBERS, "T": ["huge"]}),
    "distill.log_softmax": fn(distill.log_softmax, z=Z, T=2.0, ok={"z": NUMBERS, "T": ["huge"]}),
    "distill.entropy": fn(
        distill.entropy, p=distill.softmax(Z), axis=-1, ok={"axis": ["neg", "zero"], "p": ["shape"]}
    ),
    "distill.kd_loss": fn(
        distill.kd_loss,
        student_logits=Z,
        teacher_logits=Z[::-1],
        labels=Y[:5],
        T=2.0,
        alpha=0.5,
        ok={"labels": ["none"], "T": ["huge"], "alpha": ["zero"]},
    ),
    "distill.soft_targets": fn(
        distill.soft_targets, teacher=M, X=X, T=2.0, ok={"batch_size": ["huge"], "T": ["huge"]}
    ),
    "distill.train_student": fn(
        distill.train_student,
        student=M.copy(),
        teacher=M,
        X=X,
        y=Y,
        **TRAIN,
        ok={
            "epochs": ["zero"],
            "batch_size": ["huge"],
            "progress": ["bool"],
            "T": ["huge"],
            "alpha": ["zero"],
        },
        skip=HUGE_SLOW,
    ),
    "distill.hint_loss": fn(distill.hint_loss, student_features=Z, teacher_features=Z[::-1]),
    "distill.class_bias_for_prior": fn(
        distill.class_bias_for_prior,
        logits=Z,
        cls=1,
        prior=0.2,
        low=-50.0,
        high=50.0,
        tol=1e-6,
        ok={"cls": ["zero"], "high": ["neg", "zero", "huge"], "tol": ["huge"]},
    ),
    # prune
    "prune.magnitude": fn(prune.magnitude, w=W, amount=0.5, ok={"amount": ["zero"], "w": NUMBERS}),
    "prune.global_magnitude": fn(
        prune.global_magnitude, weights=[W, W[:2]], amount=0.5, ok={"amount": ["zero"]}
    ),
    "prune.random": fn(
        prune.random,
        w=W,
        amount=0.5,
        seed=0,
        ok={"amount": ["zero"], "seed": ["zero", "huge", "none"], "w": NUMBERS},
    ),
    "prune.structured": fn(
        prune.structured,
        w=W,
        amount=0.5,
        dim=0,
        n=2,
        ok={"amount": ["zero"], "dim": ["neg", "zero"], "n": ["inf", "huge"], "w": ["shape"]},
    ),
    "prune.n_m": fn(
        prune.n_m, w=W, n=1, m=2, dim=1, ok={"n": ["zero"], "dim": ["neg", "zero"], "w": ["shape"]}
    ),
    "prune.constant": fn(
        prune.constant,
        step=3,
        target_sparsity=0.5,
        begin_step=0,
        end_step=-1,
        frequency=1,
        ok={
            "step": ["zero", "huge"],
            "target_sparsity": ["zero"],
            "begin_step": ["zero", "huge"],
            "end_step": ["neg", "zero", "huge"],
            "frequency": ["huge"],
        },
    ),
    "prune.polynomial_decay": fn(
        prune.polynomial_decay,
        step=3,
        initial_sparsity=0.0,
        final_sparsity=0.5,
        begin_step=0,
        end_step=10,
        power=3,
        frequency=1,
        ok={
            "step": ["zero", "huge"],
            "initial_sparsity": ["zero"],
            "final_sparsity": ["zero"],
            "begin_step": ["zero"],
            "end_step": ["zero", "huge"],
            "power": ["huge"],
            "frequency": ["huge"],
        },
    ),
    "prune.magnitude_per_row": fn(prune.magnitude_per_row, w=WL, amount=0.5, ok={"amount": ["zero"]}),
    "prune.wanda_scores": fn(prune.wanda_scores, w=WL, X=XL),
    "prune.wanda": fn(
        prune.wanda, w=WL, X=XL, amount=0.5, n_m=None, ok={"amount": ["zero"], "n_m": ["none"]}
    ),
    "prune.model_masks": fn(prune.model_masks, model=M, amount=0.5, ok={"amount": ["zero"]}),
    "prune.apply_masks": fn(
        lambda model, masks: prune.apply_masks(model, masks), model=M.copy(), masks=_masks()
    ),
    "prune.sparsity": fn(prune.sparsity, model_or_masks=M),
    "prune.shrink": fn(prune.shrink, model=M, ok={"masks": ["none"]}),
    "prune.fit_pruned": fn(
        prune.fit_pruned,
        model=M.copy(),
        X=X,
        y=Y,
        schedule=lambda t: prune.constant(t, 0.5, frequency=1),
        **TRAIN,
        ok={"epochs": ["zero"], "batch_size": ["huge"], "progress": ["bool"]},
        skip=HUGE_SLOW,
    ),
    "prune.sensitivity_scan": fn(
        prune.sensitivity_scan,
        model=M,
        layers=None,
        sparsities=[0.0, 0.5],
        X_val=X,
        y_val=Y,
        progress=False,
        ok={"layers": ["none"], "progress": ["bool"]},
    ),
    # encode
    "encode.pack_bits": fn(
        encode.pack_bits, values=[1, 2, 3], bits=2, ok={"values": ["zero", "bool", "shape"]}
    ),
    "encode.unpack_bits": fn(
        encode.unpack_bits, data=[108], bits=2, count=3, ok={"count": ["zero"], "data": ["zero", "shape"]}
    ),
    "encode.relative_index_encode": fn(encode.relative_index_encode, w=W, bits=3, ok={"w": NUMBERS}),
    "encode.relative_index_decode": fn(
        encode.relative_index_decode, values=[5.0, 7.0], gaps=[2, 3], shape=11, skip=[("shape", "huge")]
    ),
    "encode.csr_encode": fn(encode.csr_encode, w=W),
    "encode.csr_decode": fn(encode.csr_decode, c=encode.csr_encode(W)),
    "encode.huffman_lengths": fn(
        encode.huffman_lengths, freqs=[3, 1, 1], ok={"freqs": ["zero", "huge", "bool", "shape"]}
    ),
    "encode.huffman_code": fn(
        encode.huffman_code, symbols=[0, 0, 1, 2], ok={"symbols": ["zero", "bool", "shape"]}
    ),
    "encode.huffman_encode": fn(
        encode.huffman_encode,
        symbols=[0, 0, 1, 2],
        ok={"code": ["none"], "symbols": ["zero", "bool", "shape"]},
    ),
    "encode.huffman_decode": fn(
        encode.huffman_decode,
        data=encode.huffman_encode([0, 0, 1, 2])[0],
        code=encode.huffman_encode([0, 0, 1, 2])[1],
        count=4,
        ok={"count": ["zero"], "data": ["zero", "shape"]},
    ),
    "encode.pack_model": fn(encode.pack_model, model=M),
    "encode.file_size": fn(encode.file_size, model=M),
    # quant
    "quant.qrange": fn(quant.qrange, bits=8, ok={"signed": ["bool"], "narrow_range": ["bool"]}),
    "quant.QParams": fn(
        quant.QParams,
        scale=0.1,
        zero_point=3,
        qmin=0,
        qmax=255,
        ok={"zero_point": ["zero"], "qmin": ["neg", "zero"], "scale": ["huge", "bool"]},
    ),
    "quant.quantize": fn(quant.quantize, x=W, qp=quant.QParams(0.1, 3, 0, 255), ok={"x": NUMBERS}),
    "quant.dequantize": fn(
        quant.dequantize,
        q=np.array([1, 2]),
        qp=quant.QParams(0.1, 3, 0, 255),
        ok={"q": ["neg", "zero", "huge"]},
    ),
    "quant.fake_quantize": fn(quant.fake_quantize, x=W, qp=quant.QParams(0.1, 3, 0, 255), ok={"x": NUMBERS}),
    "quant.scale_zero_point": fn(
        quant.scale_zero_point,
        lo=-1.0,
        hi=1.0,
        bits=8,
        ok={
            "lo": ["neg", "zero", "bool"],
            "hi": ["neg", "zero", "huge", "bool"],
            "signed": ["bool"],
            "narrow_range": ["bool"],
        },
    ),
    "quant.qparams": fn(quant.qparams, x=W, bits=8, ok={"axis": ["neg", "zero"], "x": NUMBERS}),
    "quant.minmax_range": fn(quant.minmax_range, x=W, ok={"axis": ["neg", "zero"], "x": NUMBERS}),
    "quant.percentile_range": fn(
        quant.percentile_range, x=W, percentile=99.0, ok={"axis": ["neg", "zero"], "x": NUMBERS}
    ),
    "quant.mse_range": fn(
        quant.mse_range,
        x=W,
        bits=4,
        ok={"axis": ["neg", "zero"], "signed": ["bool"], "x": NUMBERS, "narrow_range": ["bool"]},
    ),
    "quant.sqnr": fn(quant.sqnr, x=W, xq=W + 0.01),
    "quant.mse": fn(quant.mse, x=W, xq=W + 0.01),
    "quant.max_abs_error": fn(quant.max_abs_error, x=W, xq=W + 0.01),
    "quant.binarize": fn(quant.binarize, w=W, ok={"axis": ["neg", "zero", "none"], "w": ["shape"]}),
    "quant.ternarize": fn(
        quant.ternarize, w=W, threshold=0.7, ok={"threshold": ["zero", "huge"], "w": NUMBERS}
    ),
    "quant.kmeans": fn(
        quant.kmeans,
        w=W,
        bits=2,
        ok={"seed": ["zero", "huge", "none"], "mask": ["none"], "w": NUMBERS},
        skip=HUGE_SLOW,
    ),
    "quant.quantize_multiplier": fn(quant.quantize_multiplier, M=0.3),
    "quant.requantize": fn(
        quant.requantize,
        acc=np.array([10, -10]),
        M0=2**30,
        n=32,
        zero_point=128,
        qmin=0,
        qmax=255,
        ok={
            "zero_point": ["neg", "zero", "huge"],
            "qmin": ["neg", "zero"],
            "qmax": ["zero", "huge"],
            "M0": ["zero", "shape"],
            "acc": ["neg", "zero", "huge", "shape"],
        },
    ),
    "quant.quantize_model": fn(quant.quantize_model, model=M, bits=8, calib=X, ok={"act_bits": ["none"]}),
    "quant.model_size": fn(quant.model_size, model=M, bits=8),
    "quant.kmeans_quantize_model": fn(
        quant.kmeans_quantize_model,
        model=M,
        bits=2,
        skip=HUGE_SLOW,
        ok={"seed": ["zero", "huge", "none"], "use_masks": ["bool"]},
    ),
    "quant.qat": fn(
        quant.qat,
        model=M.copy(),
        X=X,
        y=Y,
        bits=4,
        **TRAIN,
        ok={"epochs": ["zero"], "batch_size": ["huge"], "progress": ["bool"]},
        skip=HUGE_SLOW,
    ),
    # quant: language models (the table of tests/test_quant_llm.py)
    "quant.quantize_groups": fn(
        quant.quantize_groups,
        w=WL,
        bits=4,
        group_size=4,
        symmetric=False,
        ok={"group_size": ["none"], "symmetric": ["bool"]},
    ),
    "quant.rtn": fn(quant.rtn, w=WL, bits=4, group_size=4, ok={"group_size": ["none"]}),
    "quant.pack_bits": fn(quant.pack_bits, q=np.arange(4), bits=3, ok={"q": ["zero", "shape"]}),
    "quant.unpack_bits": fn(quant.unpack_bits, packed=np.arange(3), bits=3, n=8),
    "quant.hessian": fn(quant.hessian, X=XL),
    "quant.gptq.gptq": fn(
        quant_gptq.gptq,
        w=WL,
        H=quant.hessian(XL),
        bits=4,
        group_size=4,
        damp=0.01,
        block_size=2,
        symmetric=False,
        act_order=False,
        ok={
            "group_size": ["none"],
            "damp": ["zero", "huge"],
            "block_size": ["huge"],
            "symmetric": ["bool"],
            "act_order": ["bool"],
        },
    ),
    "quant.awq_search": fn(
        quant.awq_search, w=WL, X=XL, bits=4, group_size=4, n_grid=4, ok={"group_size": ["none"]}
    ),
    "quant.awq.awq": fn(
        quant_awq.awq, w=WL, X=XL, bits=4, group_size=4, n_grid=4, ok={"group_size": ["none"]}
    ),
    "quant.smooth_scales": fn(
        quant.smooth_scales, x_absmax=np.ones(8), w=WL, alpha=0.5, ok={"alpha": ["zero"]}
    ),
    "quant.smooth": fn(quant.smooth, X=XL, w=WL, s=np.ones(8)),
    "quant.w8a8_matmul": fn(quant.w8a8_matmul, X=XL, w=WL, act="per_token", weight="per_channel"),
    "quant.outlier_ratio": fn(quant.outlier_ratio, X=XL),
    "quant.calibration_windows": fn(
        quant.calibration_windows,
        tokens=TOKENS,
        n=2,
        context=4,
        seed=0,
        ok={"seed": ["zero", "huge", "none"]},
    ),
    "quant.layer_output_error": fn(quant.layer_output_error, X=XL, w=WL, w_hat=WL + 0.01),
    "quant.quantize_gpt": fn(
        quant.quantize_gpt,
        model=G,
        method="gptq",
        bits=4,
        group_size=4,
        calibration=CALIB,
        symmetric=False,
        damp=0.01,
        n_grid=4,
        ok={"group_size": ["none"], "symmetric": ["bool"], "damp": ["zero", "huge"]},
    ),
    # lowrank
    "lowrank.svd": fn(lowrank.svd, w=W),
    "lowrank.choose_rank": fn(lowrank.choose_rank, s=np.array([3.0, 2.0, 1.0]), energy=0.9),
    "lowrank.truncated_svd": fn(lowrank.truncated_svd, w=W, rank=2),
    "lowrank.reconstruction_error": fn(lowrank.reconstruction_error, w=W, rank=2),
    "lowrank.factorize_linear": fn(lowrank.factorize_linear, layer=M[0], rank=2),
    "lowrank.factorize": fn(lowrank.factorize, model=M, rank=2, ok={"layers": ["none"], "rank": ["huge"]}),
    "lowrank.fine_tune": fn(
        lowrank.fine_tune,
        model=M.copy(),
        X=X,
        y=Y,
        epochs=1,
        progress=False,
        ok={"epochs": ["zero"], "batch_size": ["huge"], "progress": ["bool"]},
        skip=HUGE_SLOW,
    ),
    # data
    "data.stratified_split": fn(
        data.stratified_split, y=np.repeat(np.arange(3), 10), seed=0, ok={"seed": ["zero", "huge", "none"]}
    ),
    "data.read_idx": fn(data.read_idx, path=None),  # every value is a bad path here
    "data.load_idx": fn(data.load_idx, folder="/nonexistent-folder", kind="train"),
    "data.encode": fn(data.encode, text="abc", ok={"text": ["str"]}),
    "data.decode": fn(data.decode, tokens=[100, 101]),
    # speed: language-model decoding
    "speed.kv_cache_bytes": fn(
        speed.kv_cache_bytes,
        n_layer=2,
        n_head=2,
        head_dim=4,
        tokens=8,
        batch=1,
        bits=32,
        scale_bytes_per_vector=None,
        ok={
            "n_layer": ["huge"],
            "n_head": ["huge"],
            "head_dim": ["huge"],
            "tokens": ["zero", "huge"],
            "batch": ["huge"],
            "scale_bytes_per_vector": ["zero", "huge", "none"],
        },
    ),
    "speed.decode_bytes_per_token": fn(
        speed.decode_bytes_per_token,
        weight_bytes=100,
        kv_bytes_so_far=10,
        ok={"weight_bytes": ["zero", "huge"], "kv_bytes_so_far": ["zero", "huge"]},
    ),
    "speed.decode_time_bound": fn(
        speed.decode_time_bound,
        bytes_per_token=100.0,
        bandwidth_bytes_per_s=1e9,
        ok={"bytes_per_token": ["zero", "huge"], "bandwidth_bytes_per_s": ["huge"]},
    ),
}


class Hang(Exception):
    pass


def call_with_timeout(f, kwargs, seconds=5):
    """f(**kwargs), or Hang after ``seconds`` (signal.alarm in the main thread)."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        return f(**kwargs)

    def on_alarm(*_):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        return f(**kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


ALIASES = {  # messages that name the problem another clear way
    "X": {"input", "samples"},
    "X_val": {"input"},
    "calib": {"input"},
    "x": {"input"},
    "w": {"dimensions"},
}


def _names(arg):
    return (
        {arg}
        | ALIASES.get(arg, set())
        | ({"model", "module"} if arg in MODEL_ARG else set())
        | ({"p"} if arg == "model_or_masks" else set())
    )


CASES = [
    (name, arg, bad)
    for name, (_, kwargs, ok, skip) in TARGETS.items()
    for arg in (kwargs if name not in ("data.read_idx", "data.load_idx") else ["kind"])
    for bad in BAD
    if (arg, bad) not in skip
]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_valid_baseline_runs(name):
    f, kwargs, _, _ = TARGETS[name]
    if name in ("data.read_idx", "data.load_idx"):
        with pytest.raises((FileNotFoundError, TypeError)):
            call_with_timeout(f, kwargs)
        return
    call_with_timeout(f, kwargs)


def test_every_bad_value_gives_a_clear_error_or_a_correct_result():
    problems = []
    for name, arg, bad in CASES:
        f, kwargs, ok, _ = TARGETS[name]
        if name in ("data.read_idx", "data.load_idx"):
            continue
        args = {**kwargs, arg: BAD[bad]}
        try:
            call_with_timeout(f, args)
        except (ValueError, TypeError) as exc:
            if bad in ok.get(arg, ()):
                problems.append(f"{name}({arg}={bad}): valid value refused: {exc}")
            elif not any(re.search(rf"(?<![\w.]){re.escape(n)}\b", str(exc)) for n in _names(arg)):
                problems.append(
                    f"{name}({arg}={bad}): message does not name {arg!r}: {type(exc).__name__}: {exc}"
                )
        except Hang:
            problems.append(f"{name}({arg}={bad}): hangs")
        except Exception as exc:  # noqa: BLE001 -- anything else is an obscure error
            problems.append(f"{name}({arg}={bad}): obscure {type(exc).__name__}: {exc}")
        else:
            if bad not in ok.get(arg, ()):
                problems.append(f"{name}({arg}={bad}): silently returned a result")
    assert not problems, f"{len(problems)} of {len(CASES)} calls:\n" + "\n".join(problems)


def test_file_readers_refuse_bad_paths():
    for f in (data.read_idx, nn.load, encode.load, encode.load_packed):
        for bad in (None, 1.5, ["a"]):
            with pytest.raises(TypeError):
                call_with_timeout(f, {"path": bad})


# ------------------------------------------------------------------ the issue's reproductions
def test_labels_are_checked_against_the_model_outputs():
    m = nn.mlp((6, 5, 3), seed=0)
    with pytest.raises(ValueError, match=r"y must .*\[0, 2\]"):
        nn.fit(m, X, -np.ones(12, int), epochs=1, progress=False)
    with pytest.raises(ValueError, match="y must hold class indices in"):
        nn.evaluate(m, X, np.full(12, 42))
    with pytest.raises(ValueError, match="y must hold class indices in"):
        nn.confusion_matrix(m, X, -np.ones(12, int))
    with pytest.raises(ValueError, match="num_classes"):
        nn.confusion_matrix(m, X, Y, num_classes=1)
    for train in (
        lambda y: prune.fit_pruned(m.copy(), X, y, schedule=lambda t: (False, 0.0), **TRAIN),
        lambda y: quant.qat(m.copy(), X, y, **TRAIN),
        lambda y: lowrank.fine_tune(m.copy(), X, y, **TRAIN),
        lambda y: quant.finetune_codebooks(*quant.kmeans_quantize_model(m, 2), X, y, **TRAIN),
    ):
        with pytest.raises(ValueError, match=r"y must"):
            train(-np.ones(12, int))
    # -1 is "unlabelled" in distillation only
    distill.train_student(m.copy(), m, X, np.r_[-np.ones(6, int), Y[6:]], **TRAIN)


@pytest.mark.parametrize("layer", ["dilation", "reflect", "groups", "flatten0", "same"])
def test_from_torch_refuses_what_it_cannot_represent(layer, torch):
    t = {
        "dilation": lambda: torch.nn.Conv2d(1, 2, 3, dilation=2),
        "reflect": lambda: torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
        "groups": lambda: torch.nn.Conv2d(2, 2, 3, groups=2),
        "flatten0": lambda: torch.nn.Flatten(start_dim=0),
        "same": lambda: torch.nn.Conv2d(1, 2, 3, padding="same"),
    }[layer]()
    with pytest.raises(ValueError, match="from_torch cannot represent"):
        nn.from_torch(torch.nn.Sequential(t))


@pytest.mark.parametrize(
    "kwargs",
    [{"tol": 0.0}, {"tol": -1.0}, {"tol": float("nan")}, {"high": float("inf")}, {"low": 5.0, "high": 5.0}],
)
def test_class_bias_for_prior_validates_and_always_ends(kwargs):
    with pytest.raises(ValueError, match="tol|high|low"):
        call_with_timeout(distill.class_bias_for_prior, {"logits": Z, "cls": 1, "prior": 0.2, **kwargs})
    b = call_with_timeout(distill.class_bias_for_prior, {"logits": Z, "cls": 1, "prior": 0.2, "tol": 1e-300})
    assert abs(distill.softmax(Z + b * np.eye(3)[1])[:, 1].mean() - 0.2) < 1e-9


def test_softmax_is_stable_for_every_temperature_and_dtype():
    for z, T in [
        (np.array([1.0, 2.0], np.float16), 1e-3),
        (np.array([1e308, 0.0]), 0.5),
        (np.array([60000.0, -60000.0], np.float16), 1e-3),
        (np.array([3.0, 3.0], np.float32), 1e-30),
    ]:
        p = distill.softmax(z, T=T)
        assert p.dtype == z.dtype and not np.isnan(p).any() and np.isclose(float(p.astype(float).sum()), 1.0)
        assert not np.isnan(distill.log_softmax(z, T=T)).any()
    assert distill.softmax(np.array([1e308, 0.0]), T=0.5).tolist() == [1.0, 0.0]


def test_schedules_requantize_csr_and_bits_never_wrap():
    with pytest.raises(ValueError, match="end_step"):
        prune.polynomial_decay(0, 0.0, 0.9, 0, -1)
    M0, n = quant.quantize_multiplier(0.5)
    assert quant.requantize(np.array([2**40, -(2**40), 10]), M0, n, 0, -128, 127).tolist() == [127, -128, 5]
    with pytest.raises(ValueError, match="index_dtype"):
        encode.csr_encode(np.eye(300, dtype=np.float32), index_dtype=np.int8)
    with pytest.raises(TypeError, match="index_dtype"):
        encode.csr_encode(W, index_dtype=np.float32)
    c = encode.csr_encode(W)
    with pytest.raises(ValueError, match="c.indices"):
        encode.csr_decode(encode.CSR(c.data, -c.indices - 1, c.indptr, c.shape))
    with pytest.raises(ValueError, match="data"):
        encode.unpack_bits([300], 8, 1)
    with pytest.raises(ValueError, match="count"):
        encode.huffman_decode([0], [1, 1], 100)
    with pytest.raises(ValueError, match="Kraft"):
        encode.HuffmanCode([1, 1, 60])


def test_messages_name_the_callers_argument():
    with pytest.raises(ValueError, match="act_bits"):
        quant.quantize_model(M, act_bits=1, calib=X)
    with pytest.raises(ValueError, match="hidden"):
        nn.cnn(hidden=0)
    with pytest.raises(ValueError, match="x contains NaN"):
        M(np.full((1, 6), np.nan, np.float32))


def test_quantize_gpt_checks_what_it_is_given():
    for X_, w_hat in ((XL, WL[:, :7]), (XL[:, :7], WL)):
        with pytest.raises(ValueError, match="disagree"):
            quant.layer_output_error(X_, WL, w_hat)
    with pytest.raises(ValueError, match=r"calibration must lie in \[0, 255\]"):
        quant.quantize_gpt(G, "rtn", group_size=4, calibration=[[1, 300]])
    with pytest.raises(ValueError, match="block_size = 8"):
        quant.quantize_gpt(G, "rtn", group_size=4, calibration=np.zeros((1, 9), int))
    with pytest.raises(ValueError, match="damp"):  # checked even where the method does not use it
        quant.quantize_gpt(G, "rtn", group_size=4, damp=-1.0)


def _gz_idx(path, header_n, data_len):
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", header_n) + bytes(data_len))


def test_idx_reader_reads_no_more_than_the_header_declares(tmp_path):
    import tracemalloc

    p = tmp_path / "bomb-idx1-ubyte.gz"
    _gz_idx(p, 10, 50_000_000)  # 50 MB of zeros, about 50 KB compressed
    tracemalloc.start()
    with pytest.raises(ValueError, match="longer than its header says"):
        data.read_idx(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8_000_000
    _gz_idx(p, 2**32 - 1, 0)
    with pytest.raises(ValueError, match="declares shape"):
        data.read_idx(p)
    p2 = tmp_path / "plain.txt"
    p2.write_text("hello\n")
    for load in (nn.load, encode.load):
        with pytest.raises(ValueError, match="not an .npz file"):
            load(p2)


def _save_arrays(path, arrays):
    arrays = dict(arrays)
    arrays.pop("__sha256__", None)
    arrays["__sha256__"] = np.array(nn._digest(arrays))
    np.savez_compressed(path, **arrays)


def test_model_files_are_checked_before_allocation(tmp_path):
    p = tmp_path / "m.npz"
    nn.save(M, p)
    good = nn.read_npz(p)
    cases = {
        "huge layer": {
            **good,
            "__arch__": np.array(
                json.dumps([{"type": "Linear", "in_features": 30000, "out_features": 30000, "bias": True}])
            ),
        },
        "mask shape": {**good, "mask/0.weight": np.ones((2, 2), np.float32)},
        "mask values": {**good, "mask/0.weight": np.full((5, 6), 2.0, np.float32)},
        "mask layer": {**good, "mask/-1.weight": np.ones((5, 6), np.float32)},
        "nan param": {**good, "param/0.bias": np.full(5, np.nan, np.float32)},
        "bad arch": {**good, "__arch__": np.array(json.dumps([{"type": "Linear", "in_features": "x"}]))},
    }
    for arrays in cases.values():
        _save_arrays(p, arrays)
        with pytest.raises(ValueError):
            nn.load(p)


def test_compressed_files_cap_their_header(tmp_path):
    header = {
        "format": "compresslab.encode/1",
        "arch": [],
        "params": [],
        "pad": " " * (V.MAX_HEADER_BYTES + 1),
    }
    head = zlib.compress(json.dumps(header).encode(), 9)
    body = encode._MAGIC + struct.pack("<I", len(head)) + head
    blob = body + hashlib.sha256(body).digest()
    p = tmp_path / "c.npz"
    np.savez(p, compresslab=np.frombuffer(blob, np.uint8))
    with pytest.raises(ValueError, match="inflates past"):
        encode.load(p)
    cm = encode.pack_model(M)
    bad = encode.CompressedModel(
        {**cm.header, "params": [{**cm.header["params"][0], "n": 10**12}] + cm.header["params"][1:]},
        cm.payload,
    )
    with pytest.raises(ValueError, match="damaged"):
        bad.to_model()
    assert math.isfinite(float(encode.load_packed(_roundtrip(tmp_path)).nbytes))


def _roundtrip(tmp_path):
    p = tmp_path / "ok.npz"
    encode.save(M, p)
    return p
