"""A compression report: accuracy, bytes on disk, memory and latency of model variants, side by side.

Compression has more than one goal, and no single technique wins them all: Deep Compression
(Han, Mao & Dally, ICLR 2016) makes the *file* tiny but, decoded to dense arrays, runs no
faster; structured pruning, low-rank factors and a small distilled student make the
*computation* smaller. ``compare`` measures each variant the same way in the same run and
``Report.plot`` draws the accuracy-vs-bytes Pareto front, so the trade-offs are visible:

* **bytes** -- what the variant takes on disk: given by you (a measured file size) or, by
  default, the size of the file :func:`compresslab.encode.save` writes for the model;
* **memory** -- bytes of the parameters the model holds while running (float32 arrays);
* **latency** -- median time of one forward pass at ``latency_batch`` rows, every variant
  measured in interleaved rounds by :func:`compresslab.speed.compare` (warm-up, repeats, median,
  inter-quartile range), with the speedup's bootstrap confidence interval and a verdict
  ("faster" / "slower" only when the whole interval lies beyond the A/A band ``1 +- 5 %``,
  "no practical difference" when it lies inside it, else "no clear difference");
* **energy** -- an estimate of one inference (batch 1) by
  :func:`compresslab.speed.inference_energy` (Horowitz, ISSCC 2014, 45 nm): the multiply-adds
  the variant actually does, at its arithmetic precision, plus every weight byte it reads from
  DRAM. By default the MACs of all its weights (a dense kernel multiplies the zeros too), the
  bytes the runtime holds (``memory``) and float32; give ``macs``, ``weight_bytes`` and
  ``arithmetic`` for other hardware (e.g. the bit-packed pruned, weight-shared bytes for a chip
  that reads that format itself, as EIE does: Han et al., ISCA 2016; not the Huffman-coded
  bytes, since Huffman coding is for storage only).

A variant is on the Pareto front when no other variant is at least as accurate *and* at
least as small, with one of the two strictly better.

Examples
--------
>>> import compresslab as cl
>>> d = cl.data.load_digits()
>>> big, small = cl.nn.mlp((64, 32, 10)), cl.nn.mlp((64, 8, 10))
>>> rep = compare({"big": big, "small": small}, d.X_test, d.y_test)   # doctest: +SKIP
>>> print(rep.table())                                                # doctest: +SKIP
>>> rep.plot()                                                        # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import _validate as V
from . import nn, speed

__all__ = ["Variant", "Report", "compare", "pareto_front"]


@dataclass
class Variant:
    """One way of compressing the model.

    Parameters
    ----------
    name : label in the table and the plot.
    model : a compresslab.nn.Sequential (used for predictions, memory and default bytes).
    nbytes : bytes on disk, measured by you (e.g. ``encode.save(...)``'s return value).
        Default: ``compresslab.encode.file_size(model)`` (automatic sparse / codebook /
        Huffman choice per tensor, float32 biases).
    predict : optional ``X -> logits`` (e.g. a torch int8 model); default ``nn.predict(model, X)``.
    memory : parameter bytes held while running; default the float32 arrays of ``model``.
    group : colour group in the plot ("dense", "pruned", "quant", "distill", "other").
    note : free text shown in the table.
    macs : multiply-adds of one inference (batch 1) that the hardware actually does; default
        every weight of ``model`` (``speed.model_cost(model).macs``: a dense kernel).
    weight_bytes : bytes of weights read from DRAM per inference; default ``memory``.
    arithmetic : precision of the multiply-adds, "float32" (default), "float16" or "int8".
    """

    name: str
    model: Any = None
    nbytes: int | None = None
    predict: Callable | None = None
    memory: int | None = None
    group: str = "other"
    note: str = ""
    macs: int | None = None
    weight_bytes: int | None = None
    arithmetic: str = "float32"


@dataclass
class Report:
    """Rows of measurements (one dict per variant) with a table and a Pareto plot."""

    rows: list[dict]
    baseline: str
    latency_batch: int = 1
    threads: dict = field(default_factory=dict)

    def pareto(self) -> list[str]:
        """Names of the variants on the accuracy-vs-bytes Pareto front (smallest first)."""
        return [r["name"] for r in sorted(self.rows, key=lambda r: r["bytes"]) if r["pareto"]]

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(f"no variant named {name!r}; have {[r['name'] for r in self.rows]}")

    def table(self, latency: bool = True, energy: bool = True) -> str:
        """A plain-text table; bytes and ratios are exact, latency in microseconds, energy
        (estimated, batch 1) in microjoules."""
        head = ["variant", "acc %", "d acc", "bytes", "x smaller", "memory", "params"]
        show_energy = energy and any(r.get("energy_uj") is not None for r in self.rows)
        if show_energy:
            head += ["energy uJ"]
        show_latency = latency and any(r["latency_s"] is not None for r in self.rows)
        if show_latency:
            head += [f"latency us (b={self.latency_batch})", "x faster", "95% CI", "verdict"]
        head += ["Pareto", "note"]
        lines = []
        for r in self.rows:
            cells = [r["name"], f"{100 * r['accuracy']:.1f}", f"{100 * r['acc_delta']:+.1f}",
                     f"{r['bytes']:,}", f"{r['ratio']:.1f}", f"{r['memory']:,}" if r["memory"] else "-",
                     f"{r['params']:,}" if r["params"] is not None else "-"]
            if show_energy:
                cells.append(f"{r['energy_uj']:.2f}" if r.get("energy_uj") is not None else "-")
            if show_latency:
                if r["latency_s"] is None:
                    cells += ["-", "-", "-", "-"]
                else:
                    lo, hi = r["speedup_ci"]
                    cells += [f"{1e6 * r['latency_s']:.0f} +- {1e6 * r['latency_iqr']:.0f}",
                              f"{r['speedup']:.2f}", f"[{lo:.2f}, {hi:.2f}]", r["verdict"]]
            cells += ["*" if r["pareto"] else "", r["note"]]
            lines.append(cells)
        w = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
        fmt = lambda cells: "  ".join(  # noqa: E731
            (str(c).ljust(w[i]) if i in (0, len(cells) - 1) else str(c).rjust(w[i]))
            for i, c in enumerate(cells)).rstrip()
        rule = "-" * len(fmt(head))
        return "\n".join([fmt(head), rule, *map(fmt, lines)])

    def __str__(self) -> str:
        return self.table()

    def plot(self, ax=None, title: str | None = None):
        """Accuracy vs bytes on disk (log scale) with the Pareto front; returns the Figure."""
        from .plots import capstone
        return capstone.pareto(self.rows, ax=ax, title=title, baseline=self.baseline)


def pareto_front(nbytes: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Boolean mask: True where no other point is as small and as accurate (one strictly).

    Examples
    --------
    >>> pareto_front([10, 20, 30, 5], [0.9, 0.95, 0.93, 0.5]).tolist()
    [True, True, False, True]
    """
    b = np.asarray(nbytes, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    if b.shape != a.shape or b.ndim != 1:
        raise ValueError("nbytes and accuracy must be 1-D and equally long")
    keep = np.ones(b.size, dtype=bool)
    for i in range(b.size):
        dominated = (b <= b[i]) & (a >= a[i]) & ((b < b[i]) | (a > a[i]))
        keep[i] = not dominated.any()
    return keep


def _as_variants(variants) -> list[Variant]:
    if isinstance(variants, Mapping):
        out = []
        for name, v in variants.items():
            if isinstance(v, Variant):
                out.append(v if v.name == name else Variant(**{**v.__dict__, "name": name}))
            elif isinstance(v, tuple):
                out.append(Variant(name, *v))
            else:
                out.append(Variant(name, v))
        variants = out
    variants = list(variants)
    if not variants:
        raise ValueError("variants is empty: give at least one model")
    for v in variants:
        if not isinstance(v, Variant):
            raise TypeError(f"each variant must be a Variant (or give a dict name -> model), got {type(v).__name__}")
        if v.model is None and (v.predict is None or v.nbytes is None):
            raise ValueError(f"variant {v.name!r} needs a model, or both predict and nbytes")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    return variants


_NO_ENERGY = {"macs": None, "weight_bytes": None, "arithmetic": None, "energy": None,
              "energy_uj": None}


def _energy(v: Variant, memory: int | None) -> dict:
    """The energy columns of one variant: MACs done, weight bytes read, precision, estimate."""
    macs = v.macs if v.macs is not None else (
        speed.model_cost(v.model, batch=1).macs if v.model is not None else None)
    weight_bytes = v.weight_bytes if v.weight_bytes is not None else memory
    if macs is None or weight_bytes is None:
        return dict(_NO_ENERGY)
    e = speed.inference_energy(macs, weight_bytes, arithmetic=v.arithmetic)
    return {"macs": int(macs), "weight_bytes": int(weight_bytes), "arithmetic": v.arithmetic,
            "energy": e, "energy_uj": e.total_uj}


def compare(variants, X_test, y_test, *, baseline: str | None = None, latency: bool = True,
            latency_batch: int = 1, repeat: int = 15, number: int = 20, warmup: int = 3,
            energy: bool = True) -> Report:
    """Measure accuracy, bytes, memory, latency and estimated energy of every variant in one run.

    Parameters
    ----------
    variants : list of :class:`Variant`, or a dict ``{name: model}`` / ``{name: Variant}`` /
        ``{name: (model, nbytes)}``.
    X_test, y_test : evaluation data (accuracy = top-1 of ``predict``).
    baseline : the name ratios and deltas are relative to (default: the first variant).
    latency : time a forward pass of ``latency_batch`` rows (``repeat`` samples of ``number``
        calls, after ``warmup`` calls); False skips timing.
    energy : estimate the energy of one inference of each variant (``energy_uj``, see
        :class:`Variant`'s ``macs``, ``weight_bytes``, ``arithmetic``); False skips it. A variant
        without a model and without ``macs`` / ``weight_bytes`` gets none.

    Returns
    -------
    Report -- ``.rows``, ``.table()``, ``.plot()``, ``.pareto()``.
    """
    from . import encode

    vs = _as_variants(variants)
    X = V.as_float_array(X_test, "X_test")
    y = V.as_labels(y_test, "y_test", n=X.shape[0])
    latency_batch = V.check_int(latency_batch, "latency_batch", 1, X.shape[0])
    baseline = vs[0].name if baseline is None else baseline
    if baseline not in [v.name for v in vs]:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {[v.name for v in vs]}")
    rows, predictors = [], {}
    for v in vs:
        predict = v.predict or (lambda Z, m=v.model: nn.predict(m, Z))
        predictors[v.name] = predict
        logits = np.asarray(predict(X))
        acc = float((logits.argmax(axis=1) == y).mean())
        nbytes = int(v.nbytes) if v.nbytes is not None else encode.file_size(v.model)
        memory = v.memory if v.memory is not None else (nn.nbytes(v.model) if v.model is not None else None)
        params = nn.num_params(v.model, nonzero=True) if v.model is not None else None
        rows.append({"name": v.name, "accuracy": acc, "bytes": nbytes, "memory": memory,
                     "params": params, "latency_s": None, "latency_iqr": None, "speedup": None,
                     "speedup_ci": None, "verdict": None, "group": v.group, "note": v.note,
                     **(_energy(v, memory) if energy else _NO_ENERGY)})
    info = speed.thread_info()
    if latency:
        # interleaved rounds (A B C, B C A, ...) so drift hits every variant alike; the speedup of
        # each variant comes with a bootstrap confidence interval (speed.compare)
        xb = X[:latency_batch]
        cmp = speed.compare({name: (lambda f=f: f(xb)) for name, f in predictors.items()},
                            baseline=baseline, warmup=warmup, repeat=repeat, number=number)
        info = cmp.threads
        for r in rows:
            t = cmp.timings[r["name"]]
            r.update(latency_s=t.median, latency_iqr=t.iqr, speedup=cmp.speedup[r["name"]],
                     speedup_ci=cmp.ci[r["name"]], verdict=cmp.verdict[r["name"]])
    base = next(r for r in rows if r["name"] == baseline)
    front = pareto_front([r["bytes"] for r in rows], [r["accuracy"] for r in rows])
    for r, on in zip(rows, front):
        r["ratio"] = base["bytes"] / r["bytes"]
        r["acc_delta"] = r["accuracy"] - base["accuracy"]
        r["pareto"] = bool(on)
    return Report(rows, baseline, latency_batch, info)
