"""``compresslab bench``: the standard comparison, every ratio measured in the same run.

:func:`standard_benchmark` times the model variants of :mod:`compresslab.speed.variants`
(dense vs masked vs shrunk vs int8 vs shrunk+int8, interleaved with
:func:`compresslab.speed.compare`) and one hidden layer at batch 1 as ``scipy.sparse`` CSR
against NumPy's dense BLAS product; :func:`required_ratios` reads the three ratios the course
promises from that report, :func:`report_table` prints it, and :func:`run_bench` is the command
(table, ``bench.json`` and ``bench.png``). ``benchmarks/speedups.py`` repeats it several times.
Needs torch (the int8 kernels are torch's) and scipy.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from typing import Sequence

import numpy as np

from . import _validate as V
from .speed.timing import _fmt, _threads_ctx, _tqdm, compare, thread_info
from .speed.variants import _BITS, _REFERENCE, _forward, build_variants, variant_cost

__all__ = ["standard_benchmark", "required_ratios", "report_table", "run_bench"]


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

    Every speedup is ``median(baseline) / median(variant)`` with a bootstrap confidence interval
    (:func:`compresslab.speed.compare`); the baseline is the first variant (dense by default).

    Parameters
    ----------
    batch : int >= 1
        Inputs per forward pass of the models.
    sizes : sequence of int
        Layer sizes of the MLP, at least 3 (input, hidden..., output).
    amount : float in [0, 1)
        Fraction of the hidden units masked / removed (:func:`compresslab.speed.build_variants`).
    sparsity : float in [0, 1)
        Fraction of the weights pruned in the CSR layer.
    repeat : int >= 3
        Rounds of the model comparison (the CSR comparison takes at least 15).
    threads : int >= 1 or None
        Threads for torch and BLAS during the model comparison, or None to leave them.
    seed : int
        Seed of the weights, the inputs and the bootstrap.
    variants : sequence of str or None
        Which of "dense", "masked", "shrunk", "int8", "shrunk+int8" to time, the first being the
        baseline; None for all five.
    progress : bool
        Show a progress bar (tqdm, when installed).

    Returns
    -------
    dict
        ``date`` (UTC); ``machine`` (CPU count, platform, Python, NumPy, torch, quantized engine,
        threads); ``models``: ``sizes``, ``batch``, ``hidden_units_removed`` and the
        :meth:`compresslab.speed.Comparison.to_dict` fields, each row also with ``macs``,
        ``param_bytes``, ``activation_bytes``, ``reference``, ``top1_agreement`` and
        ``max_abs_diff``; ``csr``: ``layer_shape``, the achieved ``sparsity``, ``dense_bytes``,
        ``csr_bytes`` and its comparison; ``required``: :func:`required_ratios`.

    See Also
    --------
    run_bench : this, printed and saved.
    report_table, required_ratios

    Notes
    -----
    Needs torch and scipy. ``top1_agreement`` and ``max_abs_diff`` compare each variant's outputs
    with those of the model it should reproduce: masked and int8 with dense, shrunk with masked,
    shrunk+int8 with shrunk (with itself when that one is not timed). The CSR comparison runs at
    one thread each (``scipy.sparse`` uses one) with ``number="auto"``.

    Examples
    --------
    A tiny model, so that the example is quick; the ratios it gives mean nothing:

    >>> import torch
    >>> report = standard_benchmark(batch=2, sizes=(16, 32, 32, 4), repeat=3, progress=False)
    >>> sorted(report)
    ['csr', 'date', 'machine', 'models', 'required']
    >>> [row["name"] for row in report["models"]["rows"]]
    ['dense', 'masked', 'shrunk', 'int8', 'shrunk+int8']
    >>> [row["macs"] for row in report["models"]["rows"]]
    [3328, 3328, 1152, 3328, 1152]
    >>> report["csr"]["layer_shape"], round(report["csr"]["sparsity"], 2)
    ([32, 32], 0.95)
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

    ``met = ci_low >= target``, for shrunk over dense, int8 over dense (float32) and CSR over
    dense BLAS.

    Parameters
    ----------
    report : dict
        From :func:`standard_benchmark`; only ``report["models"]["rows"]`` and
        ``report["csr"]["rows"]`` (``name``, ``speedup``, ``ci_low``, ``ci_high``) are read.

    Returns
    -------
    dict
        ``shrunk_vs_dense``, ``int8_vs_float32`` and ``csr_vs_dense_batch1``, each a dict with
        ``speedup``, ``ci`` (``[low, high]``), ``target`` and ``met``; a missing variant has NaN
        numbers, ``met`` False and ``missing`` True.

    See Also
    --------
    standard_benchmark

    Examples
    --------
    int8's point estimate 1.6 is above its target 1.5, but its interval reaches down to 1.3:

    >>> report = {"models": {"rows": [{"name": "shrunk", "speedup": 1.9, "ci_low": 1.7, "ci_high": 2.1},
    ...                               {"name": "int8", "speedup": 1.6, "ci_low": 1.3, "ci_high": 1.8}]},
    ...           "csr": {"rows": []}}
    >>> req = required_ratios(report)
    >>> [(key, r["met"]) for key, r in req.items()]
    [('shrunk_vs_dense', True), ('int8_vs_float32', False), ('csr_vs_dense_batch1', False)]
    >>> req["csr_vs_dense_batch1"]["missing"]
    True
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
    """The standard benchmark as a printable table.

    Parameters
    ----------
    report : dict
        From :func:`standard_benchmark`.

    Returns
    -------
    str
        The models (median, speedup, interval, verdict, MACs, parameter bytes, top-1 agreement),
        the CSR layer, and the required ratios with their targets.

    See Also
    --------
    standard_benchmark, run_bench

    Examples
    --------
    A report written by hand (times in seconds), with one model and one CSR comparison:

    >>> dense = {"name": "dense", "median_s": 2e-3, "speedup": 1.0, "ci_low": 1.0, "ci_high": 1.0,
    ...          "verdict": "baseline", "macs": 3328, "param_bytes": 6928, "top1_agreement": 1.0,
    ...          "reference": "dense"}
    >>> shrunk = {**dense, "name": "shrunk", "median_s": 1e-3, "speedup": 2.0, "ci_low": 1.8,
    ...           "ci_high": 2.2, "verdict": "faster", "macs": 1152, "param_bytes": 2448, "reference": "masked"}
    >>> csr = {"name": "CSR", "median_s": 1e-6, "speedup": 3.0, "ci_low": 2.5, "ci_high": 3.5, "verdict": "faster"}
    >>> report = {"machine": {"threads": {"cpu_count": 4}},
    ...           "models": {"sizes": [16, 32, 32, 4], "batch": 2, "rows": [dense, shrunk]},
    ...           "csr": {"layer_shape": [32, 32], "sparsity": 0.95, "dense_bytes": 4096, "csr_bytes": 540,
    ...                   "rows": [csr]}}
    >>> report["required"] = required_ratios(report)
    >>> print(report_table(report))                  # doctest: +NORMALIZE_WHITESPACE
    MLP 16-32-32-4, batch 2, threads {'cpu_count': 4}
    variant  median  speedup  95% CI        verdict   MACs   param bytes  same top-1 as
    dense    2 ms    1.00x    [1.00, 1.00]  baseline  3,328  6,928        100% of dense
    shrunk   1 ms    2.00x    [1.80, 2.20]  faster    1,152  2,448        100% of masked
    <BLANKLINE>
    one 32x32 layer at batch 1, 1 thread each, 95% sparse (4,096 B dense, 540 B CSR)
      CSR              1 us  3.00x  [2.50, 3.50]  faster
    <BLANKLINE>
    required ratios (same run):
      shrunk_vs_dense      2.00x  (target >= 1.6x)  met
      int8_vs_float32      nanx  (target >= 1.5x)  NOT met
      csr_vs_dense_batch1  3.00x  (target >= 2.0x)  met
    """
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
    write ``out/bench.json`` and ``out/bench.png``.

    Parameters
    ----------
    out : str, os.PathLike or None
        Folder for ``bench.json`` (the report) and ``bench.png``
        (:func:`compresslab.plots.speed.benchmark`), created if needed; None writes nothing.
    **kwargs
        Passed to :func:`standard_benchmark`.

    Returns
    -------
    dict
        The report of :func:`standard_benchmark`.

    See Also
    --------
    standard_benchmark, report_table

    Notes
    -----
    Needs matplotlib when ``out`` is given; it selects the non-interactive Agg backend unless
    ``matplotlib.pyplot`` is already imported.

    Examples
    --------
    The printed table holds this machine's times, so only its first words are shown here:

    >>> import torch
    >>> report = run_bench(batch=2, sizes=(16, 32, 32, 4), repeat=3, progress=False)   # doctest: +ELLIPSIS
    MLP 16-32-32-4, batch 2, threads ...
    >>> sorted(report["required"])
    ['csr_vs_dense_batch1', 'int8_vs_float32', 'shrunk_vs_dense']
    """
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
