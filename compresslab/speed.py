"""Honest timing: warm-up, repeats, median and spread, threads stated -- and the models that explain it.

``timeit`` is the one timer every lesson and benchmark uses. A speedup is only ever a ratio
of two medians measured in the same run; ``compare`` measures several functions interleaved
(A B A B ...) so that drift (a neighbour's job, a CPU clock change) hits all of them alike, and
gives each ratio a bootstrap confidence interval. It refuses to call a difference a speedup when
that interval contains 1.

The rest of the module explains *why* something is fast or not:

* cost counting -- MACs, FLOPs (= 2 x MACs), parameter and activation bytes per layer, and the
  arithmetic intensity ``I = FLOPs / bytes moved``;
* the roofline -- attainable FLOP/s ``= min(peak, I x bandwidth)`` with this machine's peak
  matmul FLOP/s and memory bandwidth measured in a second (Williams, Waterman & Patterson,
  "Roofline: an insightful visual performance model for multicore architectures", CACM 2009);
* Amdahl's law ``S(n) = 1 / ((1 - p) + p / n)`` (Amdahl, AFIPS 1967), Gustafson's scaled speedup
  ``S(n) = (1 - p) + p n`` (Gustafson, "Reevaluating Amdahl's law", CACM 1988), and
  ``thread_scaling`` which measures a function at several thread counts and fits ``p``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import _validate as V
from . import backend

__all__ = [
    "Timing", "timeit", "thread_info", "threads", "set_threads", "cuda_sync",
    "Comparison", "compare",
    "LayerCost", "ModelCost", "layer_costs", "model_cost", "arithmetic_intensity",
    "measure_peak_flops", "measure_bandwidth", "Roofline", "measure_roofline",
    "amdahl", "gustafson", "fit_parallel_fraction", "ThreadScaling", "thread_scaling",
    "mlp_torch", "cpu_gpu_sweep", "load_gpu_reference", "GPU_REFERENCE_PATH",
    "torch_int8", "hidden_unit_masks", "build_variants", "variant_cost", "standard_benchmark",
    "required_ratios", "report_table", "run_bench", "break_even",
]


# --------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------
def thread_info() -> dict[str, Any]:
    """Threads in use: CPU count, NumPy's BLAS pool (threadpoolctl) and torch, where available."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} x{blas[0].get('num_threads')}"
    except ImportError:
        pass
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


_CONTROLLER = None


def _controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextlib.contextmanager
def threads(n: int | None):
    """Run the block with ``n`` threads for NumPy's BLAS/OpenMP (threadpoolctl) and torch.

    ``n=None`` leaves everything as it is. The previous settings come back on exit.

    Examples
    --------
    >>> with threads(1):                       # doctest: +SKIP
    ...     t1 = timeit(lambda: a @ b)
    """
    if n is None:
        yield
        return
    V.check_int(n, "threads", 1)
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    try:
        limiter = _controller().limit(limits=n)
    except ImportError:  # threadpoolctl missing: torch only
        limiter = contextlib.nullcontext()
    with limiter:
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)


def set_threads(n: int) -> dict:
    """Set NumPy's BLAS/OpenMP pools (threadpoolctl) and torch to ``n`` threads from now on
    (not only inside a block, unlike :func:`threads`); returns :func:`thread_info` afterwards.

    Examples
    --------
    >>> set_threads(1)["blas"]                 # doctest: +SKIP
    'openblas x1'
    """
    V.check_int(n, "threads", 1)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=n)
    except ImportError:  # pragma: no cover
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return thread_info()


def cuda_sync() -> None:
    """``torch.cuda.synchronize()`` -- wait until the GPU has finished its queued work."""
    import torch
    torch.cuda.synchronize()


def _resolve_sync(sync):
    if sync is None or callable(sync):
        return sync
    if sync == "cuda":
        return cuda_sync
    raise ValueError(f"sync must be None, a callable or 'cuda', got {sync!r}")


# --------------------------------------------------------------------------------------------
# The timer
# --------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds per call: median, inter-quartile range, min, and every sample."""

    samples: np.ndarray
    threads: dict = field(default_factory=dict)
    number: int = 1

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def min(self) -> float:
        return float(np.min(self.samples))

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    @property
    def rel_iqr(self) -> float:
        """IQR / median: the relative noise of this measurement."""
        return self.iqr / self.median if self.median > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"median_s": self.median, "iqr_s": self.iqr, "min_s": self.min,
                "n": int(len(self.samples)), "number": self.number, "threads": self.threads}

    def __str__(self) -> str:
        return f"{_fmt(self.median)} ± {_fmt(self.iqr / 2)} (median ± IQR/2, n={len(self.samples)})"

    def __repr__(self) -> str:
        return (f"Timing(median={_fmt(self.median)}, iqr={_fmt(self.iqr)}, min={_fmt(self.min)}, "
                f"n={len(self.samples)})")


def _fmt(s: float) -> str:
    for unit, f in (("s", 1), ("ms", 1e3), ("us", 1e6)):
        if s * f >= 1:
            return f"{s * f:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _autonumber(fn: Callable[[], Any], target: float, sync) -> int:
    """Calls per sample so that one sample lasts at least ``target`` seconds (as stdlib timeit)."""
    number = 1
    while True:
        dt = _sample(fn, number, sync) * number
        if dt >= target or number >= 1_000_000:
            return number
        number = max(number * 2, int(number * target / max(dt, 1e-9) * 1.1))


def _check_number(number) -> None:
    if number != "auto":
        V.check_int(number, "number", 1)


def timeit(fn: Callable[[], Any], *, warmup: int = 3, repeat: int = 20, number: int | str = 1,
           sync: Callable[[], None] | str | None = None, threads: int | None = None,
           min_sample: float = 2e-3) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeat`` samples of ``number`` calls each.

    Each sample is the wall time of ``number`` calls divided by ``number`` (use number > 1, or
    ``number="auto"``, for calls shorter than ~100 us: the clock and the loop cost a little).
    ``sync`` is called before starting and stopping each sample's clock (pass
    ``torch.cuda.synchronize`` or ``"cuda"`` for GPU work, which is asynchronous: without it you
    time the *launch*, not the work). ``threads`` sets NumPy's BLAS pool and torch's thread count
    for the measurement (see :func:`threads`); the counts in force are stored in the result.

    Parameters
    ----------
    fn : callable with no arguments.
    warmup : untimed calls first (caches, lazy initialisation, CPU clock ramp-up).
    repeat : number of samples; report the median and the inter-quartile range.
    number : calls per sample, or "auto" (enough calls that a sample lasts ``min_sample`` s).
    sync : None, a callable, or "cuda".
    threads : thread count for BLAS and torch, or None to leave it.

    Returns
    -------
    Timing with ``.median``, ``.iqr``, ``.min`` and ``.samples`` in seconds per call.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((64, 64), np.float32)
    >>> t = timeit(lambda: a @ a, repeat=5)
    >>> t.median > 0
    True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    V.check_int(warmup, "warmup", 0)
    V.check_int(repeat, "repeat", 1)
    _check_number(number)
    sync = _resolve_sync(sync)
    with _threads_ctx(threads):
        for _ in range(warmup):
            fn()
        if number == "auto":
            number = _autonumber(fn, min_sample, sync)
        samples = np.empty(repeat)
        for r in range(repeat):
            samples[r] = _sample(fn, number, sync)
        info = thread_info()
    return Timing(samples, info, number)


def _threads_ctx(n):
    return threads(n) if n is not None else contextlib.nullcontext()


def _sample(fn, number, sync) -> float:
    if sync is not None:
        sync()
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    if sync is not None:
        sync()
    return (time.perf_counter() - t0) / number


# --------------------------------------------------------------------------------------------
# Interleaved comparison with bootstrap confidence intervals
# --------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Medians, speedups over the baseline, and their bootstrap confidence intervals.

    ``speedup[name] = median(baseline) / median(name)`` (> 1 means faster than the baseline).
    ``verdict[name]`` is "faster" or "slower" only when the whole interval lies on one side of 1,
    else "no clear difference".
    """

    timings: dict[str, Timing]
    baseline: str
    speedup: dict[str, float]
    ci: dict[str, tuple[float, float]]
    verdict: dict[str, str]
    confidence: float
    threads: dict = field(default_factory=dict)

    def is_speedup(self, name: str) -> bool:
        """True only if the whole confidence interval of ``name``'s ratio lies above 1."""
        return self.verdict[name] == "faster"

    def rows(self) -> list[dict]:
        return [{"name": k, "median_s": t.median, "iqr_s": t.iqr, "speedup": self.speedup[k],
                 "ci_low": self.ci[k][0], "ci_high": self.ci[k][1], "verdict": self.verdict[k]}
                for k, t in self.timings.items()]

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "confidence": self.confidence, "threads": self.threads,
                "rows": self.rows()}

    def table(self) -> str:
        pct = f"{self.confidence:.0%} CI"
        head = ("variant", "median", "IQR", "speedup", pct, "verdict")
        rows = [head]
        for r in self.rows():
            rows.append((r["name"], _fmt(r["median_s"]), _fmt(r["iqr_s"]), f"{r['speedup']:.2f}x",
                         f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]", r["verdict"]))
        w = [max(len(row[c]) for row in rows) for c in range(len(head))]
        lines = ["  ".join(f"{row[c]:<{w[c]}}" if c in (0, 5) else f"{row[c]:>{w[c]}}"
                           for c in range(len(head))) for row in rows]
        return "\n".join(lines) + f"\nthreads: {self.threads}"

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        pct = f"{self.confidence:.0%} CI"
        cells = "".join(
            f"<tr><td>{r['name']}</td><td>{_fmt(r['median_s'])}</td><td>{_fmt(r['iqr_s'])}</td>"
            f"<td>{r['speedup']:.2f}x</td><td>[{r['ci_low']:.2f}, {r['ci_high']:.2f}]</td>"
            f"<td>{r['verdict']}</td></tr>" for r in self.rows())
        return (f"<table><tr><th>variant</th><th>median</th><th>IQR</th><th>speedup</th>"
                f"<th>{pct}</th><th>verdict</th></tr>{cells}</table>"
                f"<small>threads: {self.threads}</small>")


def _bootstrap_ratio(base: np.ndarray, other: np.ndarray, n_boot: int, confidence: float,
                     g: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap of median(base) / median(other), resampling the interleaved rounds
    in pairs (round r gave one sample of each, so drift within a round stays paired)."""
    n = len(base)
    idx = g.integers(0, n, size=(n_boot, n))
    ratios = np.median(base[idx], axis=1) / np.median(other[idx], axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return float(lo), float(hi)


def compare(fns: Mapping[str, Callable[[], Any]], baseline: str | None = None, *, warmup: int = 2,
            repeat: int = 15, number: int | str = 1, sync: Callable[[], None] | str | None = None,
            threads: int | None = None, confidence: float = 0.95, n_boot: int = 2000,
            seed: int = 0, min_sample: float = 2e-3) -> Comparison:
    """Time several functions interleaved and report speedups over ``baseline`` with CIs.

    Each of ``repeat`` rounds takes one sample of every function, the order rotating from round
    to round (A B C, B C A, C A B, ...), so slow drift and position effects hit all alike.
    The speedup of ``name`` is ``median(baseline) / median(name)``; its confidence interval is a
    seeded percentile bootstrap over the rounds. A difference is called a speedup ("faster") only
    when the whole interval lies above 1, a slowdown only when it lies below 1.

    Parameters
    ----------
    fns : {name: fn} with zero-argument callables.
    baseline : the name to divide by (default: the first).
    warmup, repeat, number, sync, threads, min_sample : as in :func:`timeit` (``number="auto"``
        picks the calls per sample separately for each function).
    confidence : width of the interval, in (0, 1).
    n_boot : bootstrap resamples.
    seed : for the bootstrap, so the same samples always give the same interval.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((128, 128), np.float32)
    >>> c = compare({"matmul": lambda: a @ a, "twice": lambda: (a @ a, a @ a)}, repeat=5)
    >>> sorted(c.speedup)
    ['matmul', 'twice']
    """
    if not isinstance(fns, Mapping) or not fns:
        raise ValueError("fns must be a non-empty dict {name: function}")
    for k, f in fns.items():
        if not callable(f):
            raise TypeError(f"fns[{k!r}] must be callable, got {type(f).__name__}")
    names = list(fns)
    baseline = names[0] if baseline is None else baseline
    if baseline not in fns:
        raise ValueError(f"baseline must be one of {names}, got {baseline!r}")
    V.check_int(warmup, "warmup", 0)
    V.check_int(repeat, "repeat", 3)
    _check_number(number)
    V.check_float(confidence, "confidence", 0, 1, low_open=True, high_open=True)
    V.check_int(n_boot, "n_boot", 100)
    sync = _resolve_sync(sync)
    samples = {k: np.empty(repeat) for k in names}
    with _threads_ctx(threads):
        numbers = {}
        for k in names:
            for _ in range(warmup):
                fns[k]()
            numbers[k] = _autonumber(fns[k], min_sample, sync) if number == "auto" else number
        for r in range(repeat):
            s = r % len(names)
            for k in names[s:] + names[:s]:
                samples[k][r] = _sample(fns[k], numbers[k], sync)
        info = thread_info()
    g = np.random.default_rng(seed)
    timings = {k: Timing(samples[k], info, numbers[k]) for k in names}
    base_med = timings[baseline].median
    speedup, ci, verdict = {}, {}, {}
    for k in names:
        speedup[k] = base_med / timings[k].median
        if k == baseline:
            ci[k], verdict[k] = (1.0, 1.0), "baseline"
            continue
        lo, hi = _bootstrap_ratio(samples[baseline], samples[k], n_boot, confidence, g)
        ci[k] = (lo, hi)
        verdict[k] = "faster" if lo > 1 else "slower" if hi < 1 else "no clear difference"
    return Comparison(timings, baseline, speedup, ci, verdict, confidence, info)


# --------------------------------------------------------------------------------------------
# Cost counting: MACs, FLOPs, bytes, arithmetic intensity
# --------------------------------------------------------------------------------------------
@dataclass
class LayerCost:
    """What one layer costs for one forward pass of a batch.

    ``flops = 2 * macs`` (one multiply and one add per MAC; bias adds and ReLUs are not counted,
    the usual convention). ``bytes`` = parameters + input + output activations, i.e. the least
    memory traffic if each is moved once; ``intensity = flops / bytes``.
    """

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    macs: int
    params: int
    param_bytes: int
    act_in_bytes: int
    act_out_bytes: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def bytes(self) -> int:
        return self.param_bytes + self.act_in_bytes + self.act_out_bytes

    @property
    def intensity(self) -> float:
        return arithmetic_intensity(self.flops, self.bytes)


@dataclass
class ModelCost:
    """Per-layer costs and model totals (activations counted once: the input plus every output)."""

    layers: list[LayerCost]
    batch: int

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def params(self) -> int:
        return sum(l.params for l in self.layers)

    @property
    def param_bytes(self) -> int:
        return sum(l.param_bytes for l in self.layers)

    @property
    def activation_bytes(self) -> int:
        if not self.layers:
            return 0
        return self.layers[0].act_in_bytes + sum(l.act_out_bytes for l in self.layers)

    @property
    def bytes(self) -> int:
        return self.param_bytes + self.activation_bytes

    @property
    def intensity(self) -> float:
        return arithmetic_intensity(self.flops, self.bytes)

    def table(self) -> str:
        head = ("layer", "out shape", "MACs", "param B", "act out B", "FLOP/B")
        rows = [head] + [(l.name, str(l.out_shape), f"{l.macs:,}", f"{l.param_bytes:,}",
                          f"{l.act_out_bytes:,}", f"{l.intensity:.1f}") for l in self.layers]
        rows.append(("total", "", f"{self.macs:,}", f"{self.param_bytes:,}",
                     f"{self.activation_bytes:,}", f"{self.intensity:.1f}"))
        w = [max(len(r[c]) for r in rows) for c in range(len(head))]
        return "\n".join("  ".join(f"{r[c]:<{w[c]}}" if c < 2 else f"{r[c]:>{w[c]}}"
                                   for c in range(len(head))) for r in rows)

    def __str__(self) -> str:
        return self.table()


def arithmetic_intensity(flops: float, nbytes: float) -> float:
    """``I = FLOPs / bytes moved`` (FLOP per byte): above the roofline's ridge point an operation
    is compute-bound, below it memory-bound."""
    V.check_float(flops, "flops", 0)
    V.check_float(nbytes, "nbytes", 0, low_open=True)
    return float(flops) / float(nbytes)


def _as_compresslab(model):
    from . import nn
    if isinstance(model, nn.Sequential):
        return model
    if _is_torch_module(model):
        return nn.from_torch(model)
    raise TypeError(f"model must be a compresslab.nn.Sequential or a torch nn.Sequential, got "
                    f"{type(model).__name__}")


def _is_torch_module(m) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(m, torch.nn.Module)


def layer_costs(model, batch: int = 1, input_shape: Sequence[int] | None = None, *,
                bits: int = 32, act_bits: int = 32, bias_bits: int | None = None,
                nonzero: bool = False) -> list[LayerCost]:
    """MACs, parameters and bytes of every layer of ``model`` for a batch of ``batch`` inputs.

    Linear: ``MACs = batch * in * out``. Conv2d: ``MACs = batch * out_ch * H_out * W_out * in_ch
    * k * k``. With ``nonzero=True`` only non-zero weights count: what a sparse kernel *could*
    skip -- a dense kernel multiplies the zeros anyway, which is why FLOPs are not latency.

    Parameters
    ----------
    model : compresslab.nn.Sequential or a torch ``nn.Sequential`` of Linear/Conv2d/ReLU/Flatten.
    batch : inputs per forward pass.
    input_shape : shape of one input (default: ``(in_features,)`` of the first Linear).
    bits, act_bits : bits per stored weight / activation (8 for an int8 model).
    bias_bits : bits per stored bias value. Default: 32 when ``bits < 32``, since quantized layers
        keep 32-bit biases (int32 in Jacob et al. 2018 and TFLite, float32 in torch's dynamic
        quantization); else ``bits``.
    nonzero : count MACs of non-zero weights only.

    Returns
    -------
    list of LayerCost

    Examples
    --------
    >>> from compresslab import nn
    >>> [c.macs for c in layer_costs(nn.mlp((4, 3, 2)))]
    [12, 0, 6]
    """
    from . import nn
    model = _as_compresslab(model)
    V.check_int(batch, "batch", 1)
    V.check_int(bits, "bits", 1, 64)
    V.check_int(act_bits, "act_bits", 1, 64)
    if bias_bits is None:
        bias_bits = 32 if bits < 32 else bits
    V.check_int(bias_bits, "bias_bits", 1, 64)
    if input_shape is None:
        first = model.layers[0] if model.layers else None
        if not isinstance(first, nn.Linear):
            raise ValueError("input_shape is required unless the model starts with a Linear layer")
        input_shape = (first.in_features,)
    shape = tuple(int(s) for s in input_shape)
    out: list[LayerCost] = []
    for i, layer in enumerate(model.layers):
        params = sum(getattr(layer, a).size for a in layer.param_names)
        n_bias = layer.bias.size if "bias" in layer.param_names else 0
        param_bytes = math.ceil(((params - n_bias) * bits + n_bias * bias_bits) / 8)
        if isinstance(layer, nn.Linear):
            if shape != (layer.in_features,):
                raise ValueError(f"layer {i} expects ({layer.in_features},), gets {shape}")
            new = (layer.out_features,)
            w = np.count_nonzero(layer.weight) if nonzero else layer.weight.size
            macs = batch * int(w)
        elif isinstance(layer, nn.Conv2d):
            if len(shape) != 3 or shape[0] != layer.in_channels:
                raise ValueError(f"layer {i} expects ({layer.in_channels}, H, W), gets {shape}")
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            ho, wo = (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1
            new = (layer.out_channels, ho, wo)
            w = np.count_nonzero(layer.weight) if nonzero else layer.weight.size
            macs = batch * ho * wo * int(w)
        elif isinstance(layer, nn.Flatten):
            new, macs = (int(np.prod(shape)),), 0
        else:
            new, macs = shape, 0
        nin, nout = int(np.prod(shape)), int(np.prod(new))
        out.append(LayerCost(f"{i}: {type(layer).__name__}", type(layer).__name__, shape, new,
                             macs, int(params), param_bytes,
                             math.ceil(batch * nin * act_bits / 8),
                             math.ceil(batch * nout * act_bits / 8)))
        shape = new
    return out


def model_cost(model, batch: int = 1, input_shape: Sequence[int] | None = None, *,
               bits: int = 32, act_bits: int = 32, bias_bits: int | None = None,
               nonzero: bool = False) -> ModelCost:
    """Totals of :func:`layer_costs` (same arguments): MACs, FLOPs, bytes, intensity.

    Examples
    --------
    >>> from compresslab import nn
    >>> c = model_cost(nn.mlp((4, 3, 2)), batch=2)
    >>> c.macs, c.params, c.param_bytes
    (36, 23, 92)
    """
    return ModelCost(layer_costs(model, batch, input_shape, bits=bits, act_bits=act_bits,
                                 bias_bits=bias_bits, nonzero=nonzero), batch)


# --------------------------------------------------------------------------------------------
# Roofline
# --------------------------------------------------------------------------------------------
def measure_peak_flops(n: int = 1024, repeat: int = 5, threads: int | None = None) -> float:
    """Best float32 FLOP/s of an ``n x n`` NumPy (BLAS) matmul: ``2 n^3 / min time``.

    The minimum (not the median) estimates the *peak*: the best the machine can do.
    """
    V.check_int(n, "n", 16)
    g = np.random.default_rng(0)
    a = g.standard_normal((n, n), dtype=np.float32)
    b = g.standard_normal((n, n), dtype=np.float32)
    t = timeit(lambda: a @ b, warmup=1, repeat=repeat, threads=threads)
    return 2.0 * n ** 3 / t.min


def measure_bandwidth(mbytes: int = 64, repeat: int = 5, threads: int | None = None) -> float:
    """Memory bandwidth in bytes/s from copying an array larger than the caches:
    ``2 * nbytes / min time`` (each byte is read once and written once)."""
    V.check_int(mbytes, "mbytes", 1)
    src = np.ones(mbytes * 2 ** 20 // 4, np.float32)
    dst = np.empty_like(src)
    t = timeit(lambda: np.copyto(dst, src), warmup=1, repeat=repeat, threads=threads)
    return 2.0 * src.nbytes / t.min


@dataclass
class Roofline:
    """The roofline model: attainable FLOP/s = ``min(peak_flops, intensity * bandwidth)``.

    Williams, Waterman & Patterson, CACM 52(4), 2009. ``ridge`` = peak / bandwidth is the
    intensity (FLOP per byte) above which an operation can be compute-bound.
    """

    peak_flops: float
    bandwidth: float
    threads: dict = field(default_factory=dict)

    @property
    def ridge(self) -> float:
        return self.peak_flops / self.bandwidth

    def attainable(self, intensity):
        """Upper bound on FLOP/s at arithmetic intensity ``intensity`` (scalar or array)."""
        i = np.asarray(intensity, dtype=float)
        out = np.minimum(self.peak_flops, i * self.bandwidth)
        return float(out) if out.ndim == 0 else out

    def bound(self, intensity: float) -> str:
        return "compute-bound" if intensity >= self.ridge else "memory-bound"

    def place(self, flops: float, nbytes: float, seconds: float | None = None) -> dict:
        """Where work of ``flops`` over ``nbytes`` sits; with ``seconds``, also what it achieved."""
        i = arithmetic_intensity(flops, nbytes)
        d = {"intensity": i, "attainable": self.attainable(i), "bound": self.bound(i)}
        if seconds is not None:
            d["achieved"] = flops / seconds
            d["fraction_of_roof"] = d["achieved"] / d["attainable"]
        return d

    def to_dict(self) -> dict:
        return {"peak_flops": self.peak_flops, "bandwidth": self.bandwidth, "ridge": self.ridge,
                "threads": self.threads}


def measure_roofline(n: int = 1024, mbytes: int = 64, repeat: int = 5,
                     threads: int | None = None) -> Roofline:
    """Measure this machine's roofline in about a second: peak matmul FLOP/s and copy bandwidth."""
    peak = measure_peak_flops(n, repeat, threads)
    bw = measure_bandwidth(mbytes, repeat, threads)
    with _threads_ctx(threads):
        info = thread_info()
    return Roofline(peak, bw, info)


# --------------------------------------------------------------------------------------------
# Amdahl, Gustafson, thread scaling
# --------------------------------------------------------------------------------------------
def _check_fraction(p):
    arr = np.asarray(p, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"p (parallel fraction) must lie in [0, 1], got {p!r}")
    return arr


def _check_workers(n):
    arr = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(f"n (workers) must be >= 1, got {n!r}")
    return arr


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def amdahl(p, n):
    """Amdahl's law: speedup of a *fixed* job on ``n`` workers, ``S = 1 / ((1 - p) + p / n)``.

    ``p`` is the fraction of the one-worker time that parallelises perfectly. However many
    workers, ``S < 1 / (1 - p)``. (Amdahl, AFIPS Spring Joint Computer Conference, 1967.)

    Examples
    --------
    >>> amdahl(0.5, 2)
    1.3333333333333333
    >>> amdahl(0.9, [1, 10])
    array([1.        , 5.26315789])
    """
    p, n = _check_fraction(p), _check_workers(n)
    return _scalar(1.0 / ((1.0 - p) + p / n))


def gustafson(p, n):
    """Gustafson's scaled speedup: the job *grows* with the workers, ``S = (1 - p) + p * n``.

    ``p`` is the parallel fraction of the time on ``n`` workers. (Gustafson, "Reevaluating
    Amdahl's law", Communications of the ACM 31(5), 1988.)

    Examples
    --------
    >>> gustafson(0.5, 2)
    1.5
    """
    p, n = _check_fraction(p), _check_workers(n)
    return _scalar((1.0 - p) + p * n)


def fit_parallel_fraction(n: Sequence[float], speedup: Sequence[float]) -> float:
    """Least-squares ``p`` of Amdahl's law from measured speedups at ``n`` workers.

    Amdahl gives ``1/S = 1 - p (1 - 1/n)``, linear in ``p``; with ``a = 1 - 1/n`` and
    ``y = 1 - 1/S``, ``p = sum(a y) / sum(a^2)``, clipped to [0, 1].

    Examples
    --------
    >>> round(fit_parallel_fraction([1, 2, 4], [1.0, amdahl(0.8, 2), amdahl(0.8, 4)]), 6)
    0.8
    """
    n = _check_workers(n).ravel()
    s = np.asarray(speedup, dtype=float).ravel()
    if n.shape != s.shape:
        raise ValueError(f"n and speedup must have the same length, got {n.size} and {s.size}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("speedup must hold positive finite numbers")
    a = 1.0 - 1.0 / n
    if not np.any(a > 0):
        raise ValueError("need at least one measurement with n > 1 to fit a parallel fraction")
    y = 1.0 - 1.0 / s
    return float(np.clip(np.sum(a * y) / np.sum(a * a), 0.0, 1.0))


@dataclass
class ThreadScaling:
    """Timings at several thread counts, speedups over one thread, and the fitted Amdahl ``p``."""

    threads: list[int]
    timings: dict[int, Timing]
    speedup: dict[int, float]
    parallel_fraction: float

    def predict(self, n):
        """Amdahl's prediction at ``n`` threads from the fitted parallel fraction."""
        return amdahl(self.parallel_fraction, n)

    def to_dict(self) -> dict:
        return {"threads": self.threads, "median_s": {n: t.median for n, t in self.timings.items()},
                "speedup": self.speedup, "parallel_fraction": self.parallel_fraction}


def thread_scaling(fn: Callable[[], Any], threads: Iterable[int] = (1, 2), *, warmup: int = 2,
                   repeat: int = 10, number: int | str = 1,
                   sync: Callable[[], None] | str | None = None) -> ThreadScaling:
    """Time ``fn`` with each thread count (interleaved rounds) and fit Amdahl's ``p``.

    Threads are set for NumPy's BLAS (threadpoolctl) and torch (``torch.set_num_threads``);
    ``threads`` must include 1, the reference. Speedup at n = median(1 thread) / median(n).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((256, 256), np.float32)
    >>> ts = thread_scaling(lambda: a @ a, threads=[1, 2], repeat=3)
    >>> 0 <= ts.parallel_fraction <= 1
    True
    """
    counts = [V.check_int(t, "threads", 1) for t in threads]
    if 1 not in counts:
        raise ValueError(f"threads must include 1 (the reference), got {counts}")
    if len(set(counts)) != len(counts):
        raise ValueError(f"threads must not repeat, got {counts}")
    V.check_int(repeat, "repeat", 1)
    _check_number(number)
    sync = _resolve_sync(sync)
    samples = {n: np.empty(repeat) for n in counts}
    numbers, infos = {}, {}
    for n in counts:
        with threads_ctx(n):
            for _ in range(warmup):
                fn()
            numbers[n] = _autonumber(fn, 2e-3, sync) if number == "auto" else number
            infos[n] = thread_info()
    for r in range(repeat):
        s = r % len(counts)
        for n in counts[s:] + counts[:s]:
            with threads_ctx(n):
                samples[n][r] = _sample(fn, numbers[n], sync)
    timings = {n: Timing(samples[n], infos[n], numbers[n]) for n in counts}
    base = timings[1].median
    speedup = {n: base / timings[n].median for n in counts}
    p = fit_parallel_fraction(counts, [speedup[n] for n in counts]) if len(counts) > 1 else 0.0
    return ThreadScaling(counts, timings, speedup, p)


threads_ctx = threads  # alias used where a parameter is itself called ``threads``


# --------------------------------------------------------------------------------------------
# CPU vs GPU
# --------------------------------------------------------------------------------------------
GPU_REFERENCE_PATH = os.path.join(os.path.dirname(__file__), "datasets", "gpu_reference.json")


def mlp_torch(sizes: Sequence[int] = (1024, 4096, 4096, 10), seed: int = 0):
    """A torch ReLU MLP in eval mode with the weights of ``compresslab.nn.mlp(sizes, seed=seed)``."""
    from . import nn
    return nn.to_torch(nn.mlp(tuple(sizes), seed=seed)).eval()


def cpu_gpu_sweep(model, batches: Sequence[int] = (1, 16, 64, 256, 1024), *, device: str = "cuda",
                  repeat: int = 10, cpu_threads: int | None = None, seed: int = 0,
                  progress: bool = False) -> dict:
    """Time a torch model on the CPU and on ``device`` for each batch size.

    For each batch: ``cpu_s`` (model on the CPU), ``device_s`` (input already on the device,
    synchronised with ``torch.cuda.synchronize`` so the *work* is timed, not its launch) and
    ``device_with_transfer_s`` (copy the input to the device, run, copy the output back). The
    model is copied to the device once, outside the timings.

    Returns
    -------
    dict with ``device_name``, ``torch``, ``cpu_threads``, ``date`` and a list ``rows``.
    """
    import copy

    import torch

    batches = [V.check_int(b, "batches", 1) for b in batches]
    on_cuda = str(device).startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but torch sees no CUDA GPU")
    sync = cuda_sync if on_cuda else None
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    dev_model = copy.deepcopy(model).to(device).eval()
    n_in = next(m for m in cpu_model.modules() if isinstance(m, torch.nn.Linear)).in_features
    g = torch.Generator().manual_seed(seed)
    rows = []
    bar = _tqdm(batches, "CPU vs device", progress)
    with torch.inference_mode(), _threads_ctx(cpu_threads):
        for b in bar:
            x = torch.randn(b, n_in, generator=g)
            xd = x.to(device)
            t_cpu = timeit(lambda: cpu_model(x), warmup=2, repeat=repeat)
            t_dev = timeit(lambda: dev_model(xd), warmup=3, repeat=repeat, sync=sync)
            t_xfer = timeit(lambda: dev_model(x.to(device)).to("cpu"), warmup=2, repeat=repeat,
                            sync=sync)
            rows.append({"batch": b, "cpu_s": t_cpu.median, "device_s": t_dev.median,
                         "device_with_transfer_s": t_xfer.median,
                         "speedup_compute": t_cpu.median / t_dev.median,
                         "speedup_with_transfer": t_cpu.median / t_xfer.median})
        threads_used = torch.get_num_threads()
    name = torch.cuda.get_device_name() if on_cuda else platform.processor() or "cpu"
    return {"device": str(device), "device_name": name, "torch": torch.__version__,
            "cuda": getattr(torch.version, "cuda", None), "cpu_threads": threads_used,
            "cpu_count": os.cpu_count(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "rows": rows}


def load_gpu_reference(path: str | os.PathLike | None = None) -> dict | None:
    """The GPU reference numbers measured on a real GPU by ``benchmarks/gpu_reference.py``,
    or None when that file does not exist (nothing is ever made up)."""
    import json
    path = GPU_REFERENCE_PATH if path is None else os.fspath(path)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        ref = json.load(f)
    for key in ("device_name", "torch", "date", "rows"):
        if key not in ref:
            raise ValueError(f"{path} is not a GPU reference file: missing {key!r}")
    return ref


def _tqdm(it, desc, enabled):
    if not enabled:
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc, leave=False)


# --------------------------------------------------------------------------------------------
# The standard comparison: dense vs masked vs shrunk vs int8, and CSR at batch 1
# --------------------------------------------------------------------------------------------
def _quantized_engine():
    import torch
    engines = torch.backends.quantized.supported_engines
    for e in ("x86", "fbgemm"):
        if e in engines:
            torch.backends.quantized.engine = e
            return e
    return torch.backends.quantized.engine


def torch_int8(model):
    """``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` to int8 (weights int8,
    activations quantized on the fly), on the x86/fbgemm engine: torch's real int8 kernels."""
    import warnings

    import torch
    _quantized_engine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def hidden_unit_masks(model, amount: float = 0.5) -> dict:
    """Structured masks removing ``amount`` of the units (rows, smallest L2 norm) of every
    hidden Linear layer of a compresslab MLP, via :func:`compresslab.prune.structured`."""
    from . import nn, prune
    linears = [i for i, l in enumerate(model.layers) if isinstance(l, nn.Linear)]
    return {f"{i}.weight": prune.structured(model.layers[i].weight, amount, dim=0)
            for i in linears[:-1]}


def build_variants(model=None, *, sizes: Sequence[int] = (1024, 4096, 4096, 10),
                   amount: float = 0.5, seed: int = 0, engine: str = "auto") -> dict:
    """The model variants of the standard comparison, as torch modules in eval mode (or as
    compresslab models with ``engine="numpy"``).

    * ``dense`` -- float32, every unit;
    * ``masked`` -- ``amount`` of the hidden units zeroed (:func:`compresslab.prune.structured` +
      ``apply_masks``): the same shapes, so the same dense kernels and the same work;
    * ``shrunk`` -- those units removed (:func:`compresslab.prune.shrink`): smaller matrices;
    * ``int8`` -- the dense model through torch's int8 kernels (:func:`torch_int8`);
    * ``shrunk+int8`` -- both.

    ``model`` is a compresslab MLP (default: ``nn.mlp(sizes, seed=seed)``). The compresslab
    models are returned too, under ``"numpy"``. ``engine="numpy"`` (the default when torch is
    not installed) returns the compresslab models themselves as ``dense``, ``masked`` and
    ``shrunk``, without the int8 variants, which need torch's kernels.
    """
    import copy

    from . import nn, prune
    V.check_float(amount, "amount", 0, 1, high_open=True)
    V.check_choice(engine, "engine", {"auto", "torch", "numpy"})
    dense = nn.mlp(tuple(sizes), seed=seed) if model is None else model
    masked = prune.apply_masks(copy.deepcopy(dense), hidden_unit_masks(dense, amount))
    shrunk = prune.shrink(masked)
    if engine == "numpy" or (engine == "auto" and not backend.torch_available()):
        return {"dense": dense, "masked": masked, "shrunk": shrunk,
                "numpy": {"dense": dense, "masked": masked, "shrunk": shrunk}}
    t = {"dense": nn.to_torch(dense).eval(), "masked": nn.to_torch(masked).eval(),
         "shrunk": nn.to_torch(shrunk).eval()}
    t["int8"] = torch_int8(t["dense"])
    t["shrunk+int8"] = torch_int8(t["shrunk"])
    t["numpy"] = {"dense": dense, "masked": masked, "shrunk": shrunk}
    return t


_BITS = {"dense": 32, "masked": 32, "shrunk": 32, "int8": 8, "shrunk+int8": 8}
# whose outputs each variant should reproduce: shrinking is exact w.r.t. the masked model,
# int8 approximates its float32 model
_REFERENCE = {"dense": "dense", "masked": "dense", "shrunk": "masked", "int8": "dense",
              "shrunk+int8": "shrunk"}


def variant_cost(variants: dict, name: str, batch: int) -> ModelCost:
    """MACs and bytes of one variant of :func:`build_variants` (int8 stores 8-bit weights and
    float32 biases, as torch's dynamic quantization; masked is counted as the dense kernel runs
    it: every zero multiplied)."""
    V.check_choice(name, "name", set(_BITS))
    base = variants["numpy"]["shrunk" if "shrunk" in name else
                             "masked" if name == "masked" else "dense"]
    return model_cost(base, batch, bits=_BITS[name], act_bits=32)


def _forward(m, x):
    """A zero-argument function running model ``m`` on ``x``: a compresslab model as it is, a
    torch module without autograd."""
    if not _is_torch_module(m):
        return lambda: m(x)
    import torch

    def run():
        with torch.inference_mode():
            return m(x)
    return run


def standard_benchmark(*, batch: int = 64, sizes: Sequence[int] = (1024, 4096, 4096, 10),
                       amount: float = 0.5, sparsity: float = 0.95, repeat: int = 15,
                       threads: int | None = None, seed: int = 0, variants: Sequence[str] | None = None,
                       progress: bool = True) -> dict:
    """Measure the standard comparison on this machine, every ratio from the same run.

    1. ``models``: dense vs masked vs shrunk vs int8 (vs shrunk+int8) torch MLPs at ``batch``,
       interleaved (:func:`compare`), with MACs and bytes of each.
    2. ``csr``: one hidden ``(n, n)`` layer at batch 1 pruned to ``sparsity`` with
       :func:`compresslab.prune.magnitude`: NumPy's BLAS matrix-vector product on the dense
       layer vs ``scipy.sparse`` CSR on the pruned one.

    Returns a JSON-ready dict (``report["models"]["rows"]``, ``report["csr"]["rows"]``).
    """
    import torch

    from . import nn, prune
    V.check_int(batch, "batch", 1)
    V.check_float(sparsity, "sparsity", 0, 1, high_open=True)
    sizes = tuple(sizes)
    if len(sizes) < 3 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
        raise ValueError(f"sizes must be >= 3 positive layer sizes (input, hidden..., output), "
                         f"got {sizes}")
    steps = _tqdm(range(3), "benchmark", progress)
    it = iter(steps)
    next(it, None)
    v = build_variants(sizes=sizes, amount=amount, seed=seed, engine="torch")
    names = list(variants) if variants is not None else list(_BITS)
    for n in names:
        V.check_choice(n, "variants", set(_BITS))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, sizes[0], generator=g)
    with _threads_ctx(threads):
        cmp = compare({n: _forward(v[n], x) for n in names}, baseline=names[0],
                      repeat=repeat, seed=seed)
        next(it, None)
        with torch.inference_mode():
            ref = v["dense"](x)
            outs = {n: v[n](x) for n in names}
        np_models = v["numpy"]
        rows = []
        for r in cmp.rows():
            n = r["name"]
            cost = variant_cost(v, n, batch)
            ref_name = _REFERENCE[n] if _REFERENCE[n] in outs else n
            top1 = float((outs[n].argmax(1) == outs[ref_name].argmax(1)).float().mean())
            diff = float((outs[n] - outs[ref_name]).abs().max())
            rows.append({**r, "macs": cost.macs, "param_bytes": cost.param_bytes,
                         "activation_bytes": cost.activation_bytes, "reference": ref_name,
                         "top1_agreement": top1, "max_abs_diff": diff})
        # CSR vs dense at batch 1 on the largest hidden layer
        import scipy.sparse as sps
        layer = max((l for l in np_models["dense"].layers if isinstance(l, nn.Linear)),
                    key=lambda l: l.weight.size)
        w = np.ascontiguousarray(layer.weight)
        mask = np.asarray(prune.magnitude(w, float(sparsity)), dtype=bool)
        w_sparse = sps.csr_matrix(w * mask)
        xv = np.random.default_rng(seed).standard_normal(w.shape[1]).astype(np.float32)
        # scipy.sparse runs on one thread: compare at one thread each (equal resources)
        csr_cmp = compare({"dense BLAS": lambda: w @ xv, "CSR": lambda: w_sparse @ xv},
                          repeat=max(repeat, 15), number="auto", seed=seed, threads=1)
        next(it, None)
        csr_bytes = w_sparse.data.nbytes + w_sparse.indices.nbytes + w_sparse.indptr.nbytes
        info = thread_info()
    report = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor(), "python": platform.python_version(),
                    "numpy": np.__version__, "torch": torch.__version__,
                    "quantized_engine": torch.backends.quantized.engine, "threads": info},
        "models": {"sizes": list(sizes), "batch": batch, "hidden_units_removed": amount,
                   **cmp.to_dict(), "rows": rows},
        "csr": {"layer_shape": list(w.shape), "sparsity": float(1 - w_sparse.nnz / w.size),
                "threads": 1,
                "batch": 1, "dense_bytes": int(w.nbytes), "csr_bytes": int(csr_bytes),
                **csr_cmp.to_dict()},
    }
    report["required"] = required_ratios(report)
    return report


def required_ratios(report: dict) -> dict:
    """The three ratios the course promises, read from one :func:`standard_benchmark` report,
    with their targets: shrunk >= 1.6x dense, int8 >= 1.5x float32, CSR >= 2x dense at batch 1.

    A target counts as met only when the lower end of the ratio's confidence interval reaches
    it (a point estimate above the target inside a wide interval is not enough); a variant
    missing from the report counts as not met.
    """
    m = {r["name"]: r for r in report["models"]["rows"]}
    c = {r["name"]: r for r in report["csr"]["rows"]}
    out = {}
    for key, row, target in (("shrunk_vs_dense", m.get("shrunk"), 1.6),
                             ("int8_vs_float32", m.get("int8"), 1.5),
                             ("csr_vs_dense_batch1", c.get("CSR"), 2.0)):
        if row is None:
            out[key] = {"speedup": float("nan"), "ci": [float("nan")] * 2, "target": target,
                        "met": False, "missing": True}
            continue
        out[key] = {"speedup": row["speedup"], "ci": [row["ci_low"], row["ci_high"]],
                    "target": target, "met": bool(row["ci_low"] >= target)}
    return out


def report_table(report: dict) -> str:
    """The standard benchmark as a printable table."""
    lines = [f"MLP {'-'.join(map(str, report['models']['sizes']))}, batch "
             f"{report['models']['batch']}, threads {report['machine']['threads']}"]
    head = ("variant", "median", "speedup", "95% CI", "verdict", "MACs", "param bytes",
            "same top-1 as")
    rows = [head]
    for r in report["models"]["rows"]:
        rows.append((r["name"], _fmt(r["median_s"]), f"{r['speedup']:.2f}x",
                     f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]", r["verdict"], f"{r['macs']:,}",
                     f"{r['param_bytes']:,}", f"{r['top1_agreement']:.0%} of {r['reference']}"))
    w = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines += ["  ".join(f"{r[c]:<{w[c]}}" for c in range(len(head))) for r in rows]
    c = report["csr"]
    lines.append(f"\none {c['layer_shape'][0]}x{c['layer_shape'][1]} layer at batch 1, 1 thread each, "
                 f"{c['sparsity']:.0%} sparse ({c['dense_bytes']:,} B dense, {c['csr_bytes']:,} B CSR)")
    for r in c["rows"]:
        lines.append(f"  {r['name']:<11} {_fmt(r['median_s']):>9}  {r['speedup']:.2f}x  "
                     f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]  {r['verdict']}")
    lines.append("\nrequired ratios (same run):")
    for k, r in report["required"].items():
        lines.append(f"  {k:<20} {r['speedup']:.2f}x  (target >= {r['target']}x)  "
                     f"{'met' if r['met'] else 'NOT met'}")
    return "\n".join(lines)


def run_bench(out: str | os.PathLike | None = None, **kwargs) -> dict:
    """``compresslab bench``: run :func:`standard_benchmark`, print the table and, with ``out``,
    write ``out/bench.json`` and ``out/bench.png``."""
    import json
    report = standard_benchmark(**kwargs)
    print(report_table(report))
    if out is not None:
        os.makedirs(out, exist_ok=True)
        jpath = os.path.join(os.fspath(out), "bench.json")
        with open(jpath, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, default=_json_default)
        import matplotlib
        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        from .plots import speed as splots
        fig = splots.benchmark(report)
        ppath = os.path.join(os.fspath(out), "bench.png")
        fig.savefig(ppath, dpi=110)
        print(f"\nwrote {jpath}\nwrote {ppath}")
    return report


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def break_even(sparsities: Sequence[float], speedups: Sequence[float]) -> float | None:
    """The measured break-even sparsity: the smallest tested sparsity from which on the sparse
    kernel is faster (speedup > 1) at *every* higher tested sparsity; None if it never is at the
    highest one.

    Examples
    --------
    >>> break_even([0.5, 0.8, 0.9, 0.95], [0.3, 1.1, 0.9, 2.5])
    0.95
    >>> break_even([0.5, 0.9], [0.5, 0.8]) is None
    True
    """
    s = np.asarray(sparsities, dtype=float)
    v = np.asarray(speedups, dtype=float)
    if s.shape != v.shape or s.ndim != 1 or s.size == 0:
        raise ValueError("sparsities and speedups must be 1-D sequences of the same, non-zero length")
    order = np.argsort(s)
    s, v = s[order], v[order]
    result = None
    for k in range(len(s) - 1, -1, -1):
        if v[k] > 1:
            result = float(s[k])
        else:
            break
    return result
