"""Figures for lesson 07 (speculative decoding): what :func:`compresslab.speculative.sweep` measured,
next to what the closed forms of Leviathan, Kalman & Matias (2023) predict from it.

No algorithms here: the plots draw the numbers they are given, the rows' own
``expected_tokens_per_call`` (:func:`~compresslab.speculative.expected_tokens_per_call`) and, for
the model's speedup, values the caller computed with :func:`~compresslab.speculative.expected_speedup`.

A *row* is one dict of ``sweep``'s output: one draft, one temperature, one k, with the keys
``draft, temperature, k, alpha, tokens_per_call, expected_tokens_per_call, seconds,
plain_seconds, speedup, new_tokens, target_calls, draft_calls``. :func:`check_rows` says what is
wrong with rows that do not fit.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping, Sequence

from .common import COLORS, figure

__all__ = ["ROW_KEYS", "check_rows", "temperature_label", "plot_tokens_per_call", "plot_speedup",
           "plot_training_curves", "plot_token_law"]

ROW_KEYS = ("draft", "temperature", "k", "alpha", "tokens_per_call", "expected_tokens_per_call", "seconds",
            "plain_seconds", "speedup", "new_tokens", "target_calls", "draft_calls")
DRAFT_COLORS = [COLORS[c] for c in ("dense", "pruned", "quant", "distill", "other")]
GREY = COLORS["random"]
_NUMBERS = ROW_KEYS[3:]


def check_rows(rows, keys: Sequence[str] = ROW_KEYS) -> list[dict]:
    """The rows as a list, after checking them: a non-empty sequence of dicts, each with ``keys``,
    finite numbers, an integer ``k >= 1``, and one row per (draft, temperature, k).

    Parameters
    ----------
    rows : sequence of dict
        The output of :func:`compresslab.speculative.sweep` (or part of it).
    keys : sequence of str, default :data:`ROW_KEYS`
        The keys every row must have.

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        Naming the row and what is wrong with it.

    Examples
    --------
    >>> row = {"draft": "d", "temperature": 0.0, "k": 2, "alpha": 0.5, "tokens_per_call": 1.75}
    >>> len(check_rows([row], keys=("draft", "temperature", "k", "alpha", "tokens_per_call")))
    1
    >>> check_rows([])
    Traceback (most recent call last):
    ...
    ValueError: rows is empty: pass the list that compresslab.speculative.sweep(...) returns
    """
    if isinstance(rows, Mapping) or isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"rows must be a list of dicts (what speculative.sweep returns), got {type(rows).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: pass the list that compresslab.speculative.sweep(...) returns")
    seen = set()
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise TypeError(f"rows[{i}] must be a dict (a row of speculative.sweep), got {type(r).__name__}")
        missing = [k for k in keys if k not in r]
        if missing:
            raise ValueError(f"rows[{i}] lacks the key(s) {missing}; a row of speculative.sweep has {list(ROW_KEYS)}")
        for name in (k for k in keys if k in _NUMBERS or k == "temperature"):
            v = r[name]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"rows[{i}]['{name}'] must be a finite number, got {v!r}")
        if "k" in keys and (isinstance(r["k"], bool) or not isinstance(r["k"], numbers.Integral) or r["k"] < 1):
            raise ValueError(f"rows[{i}]['k'] must be an int >= 1, got {r['k']!r}")
        key = tuple(r.get(k) for k in ("draft", "temperature", "k"))
        if key in seen:
            raise ValueError(f"rows[{i}] repeats draft {key[0]!r}, temperature {key[1]!r}, k {key[2]!r}: "
                             "one row per setting")
        seen.add(key)
    return rows


def temperature_label(temperature: float) -> str:
    """``"greedy (temperature 0)"`` or ``"temperature 0.7"``.

    Examples
    --------
    >>> temperature_label(0.0), temperature_label(1)
    ('greedy (temperature 0)', 'temperature 1')
    """
    return "greedy (temperature 0)" if float(temperature) == 0 else f"temperature {float(temperature):g}"


def _drafts(rows) -> list:
    """The draft names in the order they first appear."""
    return list(dict.fromkeys(r["draft"] for r in rows))


def _at_temperature(rows, temperature) -> tuple[float, list[dict]]:
    """The chosen temperature and its rows; ``None`` is allowed when the rows hold only one."""
    present = sorted({float(r["temperature"]) for r in rows})
    if temperature is None:
        if len(present) > 1:
            raise ValueError(f"the rows hold several temperatures {present}: choose one with temperature=")
        temperature = present[0]
    if float(temperature) not in present:
        raise ValueError(f"temperature {temperature!r} is not in the rows; they hold {present}")
    return float(temperature), [r for r in rows if float(r["temperature"]) == float(temperature)]


def _series(rows, draft) -> list[dict]:
    """One draft's rows, by increasing k."""
    return sorted((r for r in rows if r["draft"] == draft), key=lambda r: r["k"])


def _prefix(draft, drafts) -> str:
    """The legend's draft name, "name: ", left out when there is only one draft (the title says it)."""
    return "" if len(drafts) == 1 else f"{draft}: "


def _about(drafts, temperature) -> str:
    """The end of a default title: the temperature, after the draft's name when there is one draft."""
    return (f"{drafts[0]}, " if len(drafts) == 1 else "") + temperature_label(temperature)


def _integer_ticks(ax, ks):
    ks = sorted(set(ks))
    ax.set_xticks(ks if len(ks) <= 12 else ks[::2])
    ax.set_xlim(ks[0] - 0.4, ks[-1] + 0.4)


def plot_tokens_per_call(rows, ax=None, temperature: float | None = None, title: str | None = None):
    """Tokens written per call of the target against k: measured (markers), the closed form at the
    measured acceptance rate (line), and the ceiling k + 1 (dashed).

    The line is the rows' ``expected_tokens_per_call``, ``(1 - alpha**(k+1)) / (1 - alpha)``
    (:func:`compresslab.speculative.expected_tokens_per_call`) at each row's own measured alpha:
    where the markers leave the line, the proposals are not kept independently with one
    probability, the formula's simplification (Leviathan et al. 2023, section 3.1).

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`compresslab.speculative.sweep`; one series per draft.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure otherwise.
    temperature : float, optional
        Which temperature to draw; needed when the rows hold several.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> rows = [{"draft": "d", "temperature": 0.0, "k": k, "alpha": 0.5, "tokens_per_call": t,
    ...          "expected_tokens_per_call": e} for k, t, e in ((1, 1.5, 1.5), (2, 1.7, 1.75))]
    >>> ax = plot_tokens_per_call(rows)
    >>> [line.get_label() for line in ax.lines]       # one draft: its name is left out of the legend
    ['k + 1: every proposal kept', 'measured', 'formula at the measured alpha']
    >>> ax.lines[2].get_ydata().tolist()
    [1.5, 1.75]
    """
    rows = check_rows(rows, keys=("draft", "temperature", "k", "alpha", "tokens_per_call",
                                  "expected_tokens_per_call"))
    temperature, rows = _at_temperature(rows, temperature)
    if ax is None:
        _, ax = figure(width=5.6, height=3.6)
    ks = sorted({r["k"] for r in rows})
    ax.plot(ks, [k + 1 for k in ks], ls="--", lw=1.2, color=GREY, label="k + 1: every proposal kept")
    drafts = _drafts(rows)
    for i, draft in enumerate(drafts):
        s = _series(rows, draft)
        x = [r["k"] for r in s]
        color = DRAFT_COLORS[i % len(DRAFT_COLORS)]
        name = _prefix(draft, drafts)
        ax.plot(x, [r["tokens_per_call"] for r in s], "o", ms=7, color=color, mec="black", mew=0.5,
                label=f"{name}measured", zorder=3)
        ax.plot(x, [r["expected_tokens_per_call"] for r in s], "-", lw=1.6, color=color,
                label=f"{name}formula at the measured alpha")
    _integer_ticks(ax, ks)
    ax.set_ylim(0, max(ks) + 1.6)
    ax.set_xlabel("k (draft tokens proposed per round)")
    ax.set_ylabel("tokens written per target call")
    ax.set_title(title or f"tokens per target call, {_about(drafts, temperature)}", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")     # above the points, left of the ceiling
    return ax


def plot_speedup(rows, ax=None, model=None, temperature: float | None = None, title: str | None = None):
    """Measured speedup over plain decoding against k, one series per draft, with the break-even
    line at 1 and, when given, the model's prediction.

    The model is typically :func:`compresslab.speculative.expected_speedup` ``(alpha, k, cost,
    verify) = (1 - alpha**(k+1)) / ((1 - alpha) * (k * cost + verify))`` at each row's measured
    alpha, with measured costs (Leviathan et al. 2023, Theorem 3.8, with the verify cost measured
    rather than assumed 1); the caller computes it.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`compresslab.speculative.sweep`.
    ax : matplotlib.axes.Axes, optional
    model : dict of {str: dict of {int: float}}, optional
        The predicted speedup per draft and k; every draft and k of the rows needs one.
    temperature : float, optional
        Which temperature to draw; needed when the rows hold several.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> rows = [{"draft": "d", "temperature": 1.0, "k": k, "alpha": 0.8, "speedup": s}
    ...         for k, s in ((1, 1.2), (2, 1.4))]
    >>> ax = plot_speedup(rows, model={"d": {1: 1.636, 2: 1.877}})
    >>> [line.get_label() for line in ax.lines]
    ['_as fast as plain decoding', 'measured', 'model']
    >>> ax.lines[2].get_ydata().tolist()
    [1.636, 1.877]
    """
    rows = check_rows(rows, keys=("draft", "temperature", "k", "alpha", "speedup"))
    temperature, rows = _at_temperature(rows, temperature)
    drafts, ks = _drafts(rows), sorted({r["k"] for r in rows})
    if model is not None:
        if not isinstance(model, Mapping):
            raise TypeError(f"model must be a dict {{draft: {{k: speedup}}}}, got {type(model).__name__}")
        missing = [(d, k) for d in drafts for k in ks if k not in model.get(d, {})]
        if missing:
            raise ValueError(f"model has no value for (draft, k) = {missing[:3]}")
    if ax is None:
        _, ax = figure(width=5.6, height=3.6)
    ax.axhline(1.0, color=GREY, ls=":", lw=1.2, label="_as fast as plain decoding")   # "_": the legend title says it
    for i, draft in enumerate(drafts):
        s = _series(rows, draft)
        x = [r["k"] for r in s]
        color = DRAFT_COLORS[i % len(DRAFT_COLORS)]
        name = _prefix(draft, drafts)
        ax.plot(x, [r["speedup"] for r in s], "o-", ms=7, lw=1.2, color=color, mec="black", mew=0.5,
                label=f"{name}measured", zorder=3)
        if model is not None:
            ax.plot(x, [float(model[draft][k]) for k in x], "--", lw=1.4, color=color, label=f"{name}model")
    _integer_ticks(ax, ks)
    top = max(line_y for line in ax.lines for line_y in line.get_ydata())
    ax.set_ylim(0, max(1.2, top * 1.15))
    ax.set_xlabel("k (draft tokens proposed per round)")
    ax.set_ylabel("speedup (plain time / speculative time)")
    ax.set_title(title or f"speedup over plain decoding, {_about(drafts, temperature)}", fontsize=10)
    # below the axes (the curves can be anywhere); with the model, one column per draft (up to 3)
    columns = 2 if len(drafts) == 1 else min(len(drafts), 3)
    legend_title = "dotted line at 1: as fast as plain decoding"
    ax.legend(fontsize=7.5, title_fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns,
              frameon=False, title=legend_title)
    return ax


def plot_training_curves(curves, ax=None, title: str | None = None):
    """Validation loss against training step, one line per model.

    Parameters
    ----------
    curves : dict of {str: (steps, losses)}
        E.g. the ``curve_steps`` and ``curve_validation_loss`` arrays stored with the shipped drafts
        (``compresslab.nn.load_with_extra``).
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_training_curves({"a": ([1, 2], [3.0, 2.0]), "b": ([1, 2], [3.0, 2.5])})
    >>> [line.get_label() for line in ax.lines]
    ['a', 'b']
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {name: (steps, losses)}")
    if ax is None:
        _, ax = figure(width=5.0, height=3.2)
    for i, (name, (steps, losses)) in enumerate(curves.items()):
        if len(steps) != len(losses) or not len(steps):
            raise ValueError(f"curve {name!r}: steps and losses must be non-empty and of one length")
        ax.plot(list(steps), list(losses), "o-", ms=4, color=DRAFT_COLORS[i % len(DRAFT_COLORS)], label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation loss (nats per byte)")
    ax.set_title(title or "validation loss while training", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_token_law(exact, observed: dict, top: int = 8, labels=None, ax=None, title: str | None = None):
    """Bars of the ``top`` most likely tokens: the exact distribution beside the frequencies that
    sampling runs produced (one bar group per token).

    Parameters
    ----------
    exact : array_like, shape (vocab,)
        The distribution the samples should follow (sums to 1).
    observed : dict of {str: array_like of shape (vocab,)}
        Counts per token, one entry per way of sampling; drawn as frequencies.
    top : int, default 8
    labels : sequence of str, optional
        A label per token id (e.g. the byte it stands for); default the ids.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_token_law([0.5, 0.3, 0.2], {"runs": [48, 33, 19]}, top=2)
    >>> [round(float(b.get_height()), 2) for b in ax.patches]
    [0.5, 0.3, 0.48, 0.33]
    """
    import numpy as np

    exact = np.asarray(exact, dtype=np.float64)
    if exact.ndim != 1 or not isinstance(observed, Mapping) or not observed:
        raise ValueError("exact must be 1-D and observed a non-empty dict {name: counts}")
    order = np.argsort(-exact, kind="stable")[:top]
    if ax is None:
        _, ax = figure(width=6.0, height=3.2)
    width = 0.8 / (1 + len(observed))
    x = np.arange(len(order))
    ax.bar(x, exact[order], width, color=GREY, label="exact (target)")
    for i, (name, counts) in enumerate(observed.items()):
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != exact.shape or counts.sum() <= 0:
            raise ValueError(f"observed[{name!r}] must hold counts of the same shape as exact")
        ax.bar(x + (i + 1) * width, counts[order] / counts.sum(), width, color=DRAFT_COLORS[i % len(DRAFT_COLORS)],
               label=f"{name} ({int(counts.sum())} runs)")
    ax.set_xticks(x + width * len(observed) / 2)
    ax.set_xticklabels([str(t) for t in order] if labels is None else [labels[t] for t in order])
    ax.set_ylabel("probability / frequency")
    ax.set_title(title or "the first new token: exact law and sampled frequencies", fontsize=10)
    ax.legend(fontsize=8)
    return ax
