"""Honest timing: warm-up, repeats, median and spread, threads stated.

``timeit`` is the one timer every lesson and benchmark uses. A speedup is only ever a ratio
of two medians measured in the same run; ``compare`` measures several functions interleaved
(A B A B ...) so that drift (a neighbour's job, a CPU clock change) hits all of them alike, and
gives each ratio a bootstrap confidence interval. It refuses to call a difference a speedup when
that interval contains 1.

Measuring this machine is timing too, so it lives here: ``measure_roofline`` (peak matmul
FLOP/s and memory bandwidth, the two numbers of :class:`compresslab.speed.laws.Roofline`) and
``thread_scaling`` (one function at several thread counts, Amdahl's ``p`` fitted with
:func:`compresslab.speed.laws.fit_parallel_fraction`). Thread control (``threads``,
``set_threads``, ``thread_info``) and GPU synchronisation (``cuda_sync``) are here as well.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .. import _validate as V
from .laws import Roofline, amdahl, fit_parallel_fraction

__all__ = [
    "Timing", "timeit", "thread_info", "threads", "set_threads", "cuda_sync",
    "Comparison", "compare", "AA_BAND",
    "measure_peak_flops", "measure_bandwidth", "measure_roofline",
    "ThreadScaling", "thread_scaling",
]


# --------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------
def thread_info() -> dict[str, Any]:
    """Threads in use: CPU count, NumPy's BLAS pool (threadpoolctl) and torch, where available.

    Every :class:`Timing` stores this dict, so that a number is never reported without the threads
    that produced it.

    Returns
    -------
    dict
        ``cpu_count``: ``os.cpu_count()``, always. ``blas``: the first BLAS pool's library and
        thread count, e.g. ``"openblas x4"``, when threadpoolctl is installed and finds one.
        ``torch_threads``: ``torch.get_num_threads()``, when torch has been imported.

    See Also
    --------
    threads : set the counts for a block.
    set_threads : set them from now on.

    Notes
    -----
    torch is reported only when it is already in ``sys.modules``: asking never imports it.

    Examples
    --------
    >>> import os
    >>> info = thread_info()
    >>> info["cpu_count"] == os.cpu_count()
    True
    """
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

    Parameters
    ----------
    n : int >= 1 or None
        Threads for every BLAS/OpenMP pool that threadpoolctl finds and for torch
        (``torch.set_num_threads``); None to change nothing.

    Yields
    ------
    None
        A context manager: ``with threads(2): ...``.

    See Also
    --------
    set_threads : the same, from now on rather than for one block.
    thread_info : the counts in force.

    Notes
    -----
    torch's count is set only when torch is already imported (it is read from ``sys.modules``).
    Without threadpoolctl, only torch's count changes.

    Examples
    --------
    >>> with threads(1):
    ...     t = timeit(lambda: sum(range(100)), repeat=3, warmup=1)
    >>> len(t.samples)
    3
    >>> "blas" not in t.threads or t.threads["blas"].endswith(" x1")     # the count in force is stored
    True
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

    Parameters
    ----------
    n : int >= 1
        Threads for every BLAS/OpenMP pool that threadpoolctl finds and for torch.

    Returns
    -------
    dict
        :func:`thread_info` after the change.

    See Also
    --------
    threads : for one block only, the previous settings restored on exit.

    Notes
    -----
    The limit stays in force for the rest of the process. torch's count is set only when torch
    is already imported; without threadpoolctl, only torch's count changes.

    Examples
    --------
    The example runs inside :func:`threads` only so that it leaves this session as it was:

    >>> with threads(2):
    ...     info = set_threads(1)
    >>> "blas" not in info or info["blas"].endswith(" x1")
    True
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
    """``torch.cuda.synchronize()`` -- wait until the GPU has finished its queued work.

    CUDA kernels are launched asynchronously: a call returns once the work is queued. Timing GPU
    work without synchronising before and after measures the launch, not the work.
    ``timeit(fn, sync="cuda")`` does the same as ``timeit(fn, sync=cuda_sync)``.

    Returns
    -------
    None

    See Also
    --------
    timeit : its ``sync`` argument.

    Notes
    -----
    Imports torch; needs a CUDA GPU (torch raises an error without one).

    Examples
    --------
    Runs anywhere: on a machine without a GPU the work is on the CPU, which needs no sync.

    >>> import torch
    >>> device = "cuda" if torch.cuda.is_available() else "cpu"
    >>> x = torch.ones(64, 64, device=device)
    >>> t = timeit(lambda: x @ x, repeat=3, warmup=1, sync=cuda_sync if device == "cuda" else None)
    >>> len(t.samples)
    3
    """
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
    """Seconds per call: median, inter-quartile range, min, and every sample.

    ``IQR = q75 - q25`` of the samples (NumPy's percentiles) and ``rel_iqr = IQR / median``, the
    relative noise of the measurement. Printed as ``median ± IQR/2``. :func:`timeit` and
    :func:`compare` make these from real measurements.

    Parameters
    ----------
    samples : ndarray of float
        Seconds per call, one value a sample (the wall time of ``number`` calls / ``number``).
    threads : dict
        :func:`thread_info` at the time of the measurement.
    number : int
        Calls per sample.

    Attributes
    ----------
    median, iqr, min, mean : float
        Of ``samples``, in seconds per call.
    rel_iqr : float
        ``iqr / median`` (nan when the median is 0).

    See Also
    --------
    timeit, compare

    Examples
    --------
    Built by hand here, so that the numbers are exact:

    >>> t = Timing(np.array([1e-3, 2e-3, 3e-3, 4e-3]))
    >>> print(t)
    2.5 ms ± 750 us (median ± IQR/2, n=4)
    >>> round(t.median, 6), round(t.iqr, 6), round(t.rel_iqr, 2)
    (0.0025, 0.0015, 0.6)
    >>> sorted(t.to_dict())
    ['iqr_s', 'median_s', 'min_s', 'n', 'number', 'threads']
    """

    samples: np.ndarray
    threads: dict = field(default_factory=dict)
    number: int = 1

    @property
    def median(self) -> float:
        """Median of the samples (seconds per call)."""
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        """Inter-quartile range ``q75 - q25`` of the samples (seconds per call)."""
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def min(self) -> float:
        """Fastest sample (seconds per call)."""
        return float(np.min(self.samples))

    @property
    def mean(self) -> float:
        """Mean of the samples (seconds per call)."""
        return float(np.mean(self.samples))

    @property
    def rel_iqr(self) -> float:
        """IQR / median: the relative noise of this measurement."""
        return self.iqr / self.median if self.median > 0 else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready summary: median, IQR and min in seconds, sample count, calls per sample, threads."""
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
    fn : callable
        With no arguments.
    warmup : int >= 0
        Untimed calls first (caches, lazy initialisation, CPU clock ramp-up).
    repeat : int >= 1
        Number of samples; report the median and the inter-quartile range.
    number : int >= 1 or "auto"
        Calls per sample, or "auto" (enough calls that a sample lasts ``min_sample`` seconds).
    sync : None, a callable, or "cuda"
        Called before starting and after stopping each sample's clock; "cuda" is :func:`cuda_sync`.
    threads : int >= 1 or None
        Thread count for BLAS and torch during the measurement, or None to leave it.
    min_sample : float
        Seconds a sample should last at least, with ``number="auto"``.

    Returns
    -------
    Timing
        With ``.median``, ``.iqr``, ``.min`` and ``.samples`` in seconds per call, ``.number`` and
        ``.threads`` (:func:`thread_info` during the measurement).

    See Also
    --------
    compare : several functions, interleaved, with confidence intervals for their speedups.
    threads, cuda_sync

    Notes
    -----
    The clock is ``time.perf_counter``. With ``number="auto"``, after the warm-up, the count
    starts at 1 and grows (at least doubling) until one sample lasts ``min_sample`` seconds, at
    most 1,000,000 calls (the idea of the standard library's ``timeit.Timer.autorange``); those
    calls are not part of the samples.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((64, 64), np.float32)
    >>> t = timeit(lambda: a @ a, repeat=5)
    >>> t.median > 0, len(t.samples), t.number
    (True, 5, 1)
    >>> timeit(lambda: sum(range(100)), repeat=3, warmup=1, number="auto").number >= 1
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
AA_BAND = 0.05   # ratios within 1 +- 5 %: no practical difference (A/A noise: a few percent)


@dataclass
class Comparison:
    """Medians, speedups over the baseline, and their bootstrap confidence intervals.

    ``speedup[name] = median(baseline) / median(name)`` (> 1 means faster than the baseline).
    ``verdict[name]`` is "faster" or "slower" only when the whole interval lies beyond the
    practical band ``1 +- band``, "no practical difference" when it lies inside the band, else
    "no clear difference".

    Parameters
    ----------
    timings : dict of str to Timing
        One :class:`Timing` per function, in the order given to :func:`compare`.
    baseline : str
        The name every median is divided into.
    speedup : dict of str to float
        ``median(baseline) / median(name)``; exactly 1.0 for the baseline.
    ci : dict of str to (float, float)
        Bootstrap confidence interval of each speedup; ``(1.0, 1.0)`` for the baseline.
    verdict : dict of str to str
        "faster" (interval above ``1 + band``), "slower" (below ``1 / (1 + band)``), "no
        practical difference" (inside), "no clear difference" (across an edge), or "baseline".
    confidence : float
        Level of the intervals, e.g. 0.95.
    threads : dict
        :func:`thread_info` during the measurement.
    band : float
        The practical band of the verdicts (see :func:`compare`).

    See Also
    --------
    compare : which makes one.

    Notes
    -----
    ``print(c)`` shows :meth:`table`; in Jupyter it shows as an HTML table.

    Examples
    --------
    >>> c = compare({"sum": lambda: sum(range(100)), "sum again": lambda: sum(range(100))},
    ...             repeat=5, warmup=1)
    >>> c.baseline, c.speedup["sum"], c.verdict["sum"], c.is_speedup("sum")
    ('sum', 1.0, 'baseline', False)
    >>> c.verdict["sum again"] in ("faster", "slower", "no practical difference", "no clear difference")
    True
    >>> sorted(c.rows()[0])
    ['ci_high', 'ci_low', 'iqr_s', 'median_s', 'name', 'speedup', 'verdict']
    """

    timings: dict[str, Timing]
    baseline: str
    speedup: dict[str, float]
    ci: dict[str, tuple[float, float]]
    verdict: dict[str, str]
    confidence: float
    threads: dict = field(default_factory=dict)
    band: float = 0.0

    def is_speedup(self, name: str) -> bool:
        """True only if the whole confidence interval of ``name``'s ratio lies above ``1 + band``."""
        return self.verdict[name] == "faster"

    def rows(self) -> list[dict]:
        """One dict per function: name, median_s, iqr_s, speedup, ci_low, ci_high, verdict."""
        return [{"name": k, "median_s": t.median, "iqr_s": t.iqr, "speedup": self.speedup[k],
                 "ci_low": self.ci[k][0], "ci_high": self.ci[k][1], "verdict": self.verdict[k]}
                for k, t in self.timings.items()]

    def to_dict(self) -> dict:
        """JSON-ready: baseline, confidence, threads and :meth:`rows`."""
        return {"baseline": self.baseline, "confidence": self.confidence, "threads": self.threads,
                "rows": self.rows()}

    def table(self) -> str:
        """Plain-text table: median, IQR, speedup, interval and verdict per function, then the threads."""
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


def _check_compare(fns, baseline, warmup, repeat, number, confidence, n_boot, sync):
    """Validate :func:`compare`'s arguments; return (names, baseline name, sync function)."""
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
    return names, baseline, _resolve_sync(sync)


def _verdict(lo: float, hi: float, band: float) -> str:
    """Where the interval [lo, hi] of a speedup lies against 1 and the band ``1 +- band``."""
    if lo > 1 + band:
        return "faster"
    if hi < 1 / (1 + band):
        return "slower"
    if lo >= 1 / (1 + band) and hi <= 1 + band:
        return "no practical difference"
    return "no clear difference"


def _speedups(samples, timings, baseline, confidence, n_boot, seed, band):
    """speedup = median(baseline) / median(k), its bootstrap interval, and the verdict."""
    g = np.random.default_rng(seed)
    speedup, ci, verdict = {}, {}, {}
    for k in timings:
        speedup[k] = timings[baseline].median / timings[k].median
        if k == baseline:
            ci[k], verdict[k] = (1.0, 1.0), "baseline"
            continue
        ci[k] = lo, hi = _bootstrap_ratio(samples[baseline], samples[k], n_boot, confidence, g)
        verdict[k] = _verdict(lo, hi, band)
    return speedup, ci, verdict


def compare(fns: Mapping[str, Callable[[], Any]], baseline: str | None = None, *, warmup: int = 2,
            repeat: int = 15, number: int | str = 1, sync: Callable[[], None] | str | None = None,
            threads: int | None = None, confidence: float = 0.95, n_boot: int = 2000,
            seed: int = 0, min_sample: float = 2e-3, band: float = AA_BAND) -> Comparison:
    """Time several functions interleaved and report speedups over ``baseline`` with CIs.

    Each of ``repeat`` rounds takes one sample of every function, the order rotating from round
    to round (A B C, B C A, C A B, ...), so slow drift and position effects hit all alike.
    The speedup of ``name`` is ``median(baseline) / median(name)``; its confidence interval is a
    seeded percentile bootstrap over the rounds. The verdict compares the interval with the
    practical band ``[1 / (1 + band), 1 + band]``: "faster" when the whole interval lies above
    the band, "slower" when below it, "no practical difference" when inside it, and "no clear
    difference" when it straddles an edge (measure longer to decide).

    The band is tied to A/A noise: the same work timed twice, on two copies of the same weights
    (lesson 04a's ``dense (copy)`` row, lesson 05b's decoded model), differs by a few percent,
    because where the arrays sit in memory matters: 1-3 % on a quiet machine, up to 5-6 % seen
    on a busy 2-core one. A difference inside that is real perhaps, but not practical; the default
    ``AA_BAND = 0.05`` is a convention at that scale, not a law (pass ``band=`` to change it).

    Bootstrap: draw ``repeat`` rounds with replacement, ``n_boot`` times; each draw gives the
    ratio ``median(baseline samples) / median(name samples)`` over the drawn rounds. The interval
    is the ``alpha`` and ``1 - alpha`` quantiles of those ratios, ``alpha = (1 - confidence) / 2``.

    Parameters
    ----------
    fns : dict of str to callable
        ``{name: fn}`` with zero-argument callables; at least one.
    baseline : str or None
        The name to divide by (default: the first).
    warmup, number, sync, threads, min_sample
        As in :func:`timeit` (``number="auto"`` picks the calls per sample separately for each
        function).
    repeat : int >= 3
        Rounds, i.e. samples of each function.
    confidence : float
        Level of the interval, in (0, 1).
    n_boot : int >= 100
        Bootstrap resamples.
    seed : int
        For the bootstrap, so the same samples always give the same interval.
    band : float >= 0
        Ratios within ``1 +- band`` are "no practical difference" (0 restores the plain rule:
        any interval off 1 is "faster" or "slower").

    Returns
    -------
    Comparison
        Timings, speedups, intervals and verdicts, by name.

    See Also
    --------
    timeit : one function.
    Comparison.is_speedup : the verdict as a bool.

    Notes
    -----
    A round's samples are resampled together (round ``r`` gave one sample of each function), so
    drift within a round stays paired. Thread counts apply to the whole run (:func:`threads`).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((128, 128), np.float32)
    >>> c = compare({"matmul": lambda: a @ a, "twice": lambda: (a @ a, a @ a)}, repeat=5)
    >>> sorted(c.speedup)
    ['matmul', 'twice']
    >>> c.baseline, c.verdict["matmul"], c.ci["matmul"]
    ('matmul', 'baseline', (1.0, 1.0))
    """
    names, baseline, sync = _check_compare(fns, baseline, warmup, repeat, number, confidence, n_boot, sync)
    V.check_float(band, "band", 0, 1)
    samples = {k: np.empty(repeat) for k in names}
    with _threads_ctx(threads):
        numbers = {}
        for k in names:                               # warm up; pick the calls per sample
            for _ in range(warmup):
                fns[k]()
            numbers[k] = _autonumber(fns[k], min_sample, sync) if number == "auto" else number
        for r in range(repeat):                       # rounds, the order rotating: A B C, B C A, ...
            s = r % len(names)
            for k in names[s:] + names[:s]:
                samples[k][r] = _sample(fns[k], numbers[k], sync)
        info = thread_info()
    timings = {k: Timing(samples[k], info, numbers[k]) for k in names}
    speedup, ci, verdict = _speedups(samples, timings, baseline, confidence, n_boot, seed, band)
    return Comparison(timings, baseline, speedup, ci, verdict, confidence, info, band)


# --------------------------------------------------------------------------------------------
# Measuring this machine: the roofline's peak FLOP/s and memory bandwidth
# --------------------------------------------------------------------------------------------
def measure_peak_flops(n: int = 1024, repeat: int = 5, threads: int | None = None) -> float:
    """Best float32 FLOP/s of an ``n x n`` NumPy (BLAS) matmul: ``2 n^3 / min time``.

    The minimum (not the median) estimates the *peak*: the best the machine can do. An
    ``n x n`` by ``n x n`` product is ``n^3`` MACs, ``2 n^3`` FLOPs.

    Parameters
    ----------
    n : int >= 16
        Matrix size; small matrices do not reach the peak.
    repeat : int >= 1
        Timed samples (after one warm-up call).
    threads : int >= 1 or None
        BLAS threads during the measurement, or None to leave them.

    Returns
    -------
    float
        FLOP/s.

    See Also
    --------
    measure_bandwidth, measure_roofline

    Notes
    -----
    The matrices are standard normal float32, seeded (``default_rng(0)``).

    Examples
    --------
    Tiny sizes, so that the example is quick (and the number is below this machine's peak):

    >>> peak = measure_peak_flops(n=64, repeat=3)
    >>> isinstance(peak, float), peak > 0
    (True, True)
    """
    V.check_int(n, "n", 16)
    g = np.random.default_rng(0)
    a = g.standard_normal((n, n), dtype=np.float32)
    b = g.standard_normal((n, n), dtype=np.float32)
    t = timeit(lambda: a @ b, warmup=1, repeat=repeat, threads=threads)
    return 2.0 * n ** 3 / t.min


def measure_bandwidth(mbytes: int = 64, repeat: int = 5, threads: int | None = None) -> float:
    """Memory bandwidth in bytes/s from copying an array larger than the caches:
    ``2 * nbytes / min time`` (each byte is read once and written once).

    Parameters
    ----------
    mbytes : int >= 1
        Size of the copied float32 array in MiB (``2**20`` bytes). It must be larger than the
        last-level cache, or this measures the cache instead of memory.
    repeat : int >= 1
        Timed samples (after one warm-up copy).
    threads : int >= 1 or None
        Threads during the measurement, or None to leave them.

    Returns
    -------
    float
        Bytes per second.

    See Also
    --------
    measure_peak_flops, measure_roofline

    Notes
    -----
    The copy is ``np.copyto(dst, src)``, the minimum over the samples.

    Examples
    --------
    A 1 MiB copy fits in the caches: quick, but not the memory bandwidth.

    >>> bw = measure_bandwidth(mbytes=1, repeat=3)
    >>> isinstance(bw, float), bw > 0
    (True, True)
    """
    V.check_int(mbytes, "mbytes", 1)
    src = np.ones(mbytes * 2 ** 20 // 4, np.float32)
    dst = np.empty_like(src)
    t = timeit(lambda: np.copyto(dst, src), warmup=1, repeat=repeat, threads=threads)
    return 2.0 * src.nbytes / t.min


def measure_roofline(n: int = 1024, mbytes: int = 64, repeat: int = 5,
                     threads: int | None = None) -> Roofline:
    """Measure this machine's roofline in about a second: peak matmul FLOP/s and copy bandwidth.

    ``Roofline(peak_flops=measure_peak_flops(n), bandwidth=measure_bandwidth(mbytes))``, so that
    attainable FLOP/s ``= min(peak, I x bandwidth)`` at arithmetic intensity ``I``.

    Parameters
    ----------
    n : int >= 16
        Matrix size for :func:`measure_peak_flops`.
    mbytes : int >= 1
        Array size in MiB for :func:`measure_bandwidth`.
    repeat : int >= 1
        Timed samples of each.
    threads : int >= 1 or None
        Threads during both measurements, or None to leave them.

    Returns
    -------
    Roofline
        With ``threads``: :func:`thread_info` under the thread count used.

    See Also
    --------
    compresslab.speed.laws.Roofline

    Examples
    --------
    >>> roof = measure_roofline(n=64, mbytes=1, repeat=3)
    >>> roof.peak_flops > 0, roof.bandwidth > 0
    (True, True)
    >>> roof.bound(roof.ridge)                   # from the ridge point on, compute is the limit
    'compute-bound'
    """
    peak = measure_peak_flops(n, repeat, threads)
    bw = measure_bandwidth(mbytes, repeat, threads)
    with _threads_ctx(threads):
        info = thread_info()
    return Roofline(peak, bw, info)


# --------------------------------------------------------------------------------------------
# Thread scaling, fitted to Amdahl's law
# --------------------------------------------------------------------------------------------
@dataclass
class ThreadScaling:
    """Timings at several thread counts, speedups over one thread, and the fitted Amdahl ``p``.

    ``speedup[n] = median(1 thread) / median(n threads)``; ``parallel_fraction`` is the ``p`` of
    Amdahl's law ``S(n) = 1 / ((1 - p) + p / n)`` fitted to those speedups.

    Parameters
    ----------
    threads : list of int
        The thread counts, in the order measured; 1 among them.
    timings : dict of int to Timing
        One :class:`Timing` per thread count.
    speedup : dict of int to float
        Speedup over one thread, per thread count (1.0 at 1).
    parallel_fraction : float
        Fitted ``p`` in [0, 1] (:func:`compresslab.speed.laws.fit_parallel_fraction`).

    See Also
    --------
    thread_scaling : which makes one.

    Examples
    --------
    Built by hand: a speedup of 1.6 on 2 threads is ``p = 0.75``, which predicts 2.29 on 4.

    >>> ts = ThreadScaling(threads=[1, 2], timings={}, speedup={1: 1.0, 2: 1.6}, parallel_fraction=0.75)
    >>> round(ts.predict(4), 3)
    2.286
    """

    threads: list[int]
    timings: dict[int, Timing]
    speedup: dict[int, float]
    parallel_fraction: float

    def predict(self, n):
        """Amdahl's prediction at ``n`` threads from the fitted parallel fraction."""
        return amdahl(self.parallel_fraction, n)

    def to_dict(self) -> dict:
        """JSON-ready: thread counts, median seconds and speedup per count, parallel fraction."""
        return {"threads": self.threads, "median_s": {n: t.median for n, t in self.timings.items()},
                "speedup": self.speedup, "parallel_fraction": self.parallel_fraction}


def thread_scaling(fn: Callable[[], Any], threads: Iterable[int] = (1, 2), *, warmup: int = 2,
                   repeat: int = 10, number: int | str = 1,
                   sync: Callable[[], None] | str | None = None) -> ThreadScaling:
    """Time ``fn`` with each thread count (interleaved rounds) and fit Amdahl's ``p``.

    Threads are set for NumPy's BLAS (threadpoolctl) and torch (``torch.set_num_threads``);
    ``threads`` must include 1, the reference. Speedup at n = median(1 thread) / median(n).

    Parameters
    ----------
    fn : callable
        With no arguments.
    threads : iterable of int >= 1
        Distinct thread counts, 1 among them.
    warmup : int
        Untimed calls at each thread count first.
    repeat : int >= 1
        Rounds; each takes one sample at every thread count, the order rotating.
    number, sync
        As in :func:`timeit` (``number="auto"`` aims at samples of 2 ms).

    Returns
    -------
    ThreadScaling
        Timings, speedups and the fitted parallel fraction (0.0 when only 1 thread is measured).

    Raises
    ------
    ValueError
        When ``threads`` lacks 1 or repeats a count.

    See Also
    --------
    compresslab.speed.laws.amdahl, compresslab.speed.laws.fit_parallel_fraction

    Notes
    -----
    The thread count is set around every sample, outside its clock. A count above the cores of
    the machine is measured like any other.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((256, 256), np.float32)
    >>> ts = thread_scaling(lambda: a @ a, threads=[1, 2], repeat=3)
    >>> 0 <= ts.parallel_fraction <= 1
    True
    >>> ts.threads, ts.speedup[1]
    ([1, 2], 1.0)
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
# Progress bars for long measurements
# --------------------------------------------------------------------------------------------
def _tqdm(it, desc, enabled):
    if not enabled:
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc, leave=False)
