"""Lesson 06a widget: the tiny GPT's weights in few bits, method by method.

Controls: method (RTN, GPTQ, AWQ, or a llama.cpp GGUF type), bits (8, 4, 3) and group size (per
output channel, 128, 32; the GGUF types have their own, blocks of 32, and disable both toggles).
Shows the paired ratio of the perplexity to the float32 model's (in bold), the perplexity on the
test chunks with its 95 % interval, the real bytes of the model and a greedy sample from a fixed
prompt.

Results the lesson computed are passed in (``results``: setting -> :func:`lm_result`), so showing
them costs only formatting (well under 100 ms). A setting that was not passed in is computed
*lazily, once*, when it is first selected ("computing..." shows meanwhile; a quantization with
:func:`compresslab.quant.quantize_gpt`,
a perplexity on the same chunks and a sample: about 1 to 8 s on 2 cores, GPTQ and AWQ need the
``calibration`` windows) and cached; without ``tokens`` it is reported as not computed. The
lesson passes everything it ran, so moving the controls over those settings is instant.
"""
from __future__ import annotations

import html

from .. import _validate as V
from .. import data, nn
from .. import quant as Q

METHODS = ("rtn", "gptq", "awq", "Q8_0", "Q4_0", "Q4_1")
GROUPS = {"per channel": None, "128": 128, "32": 32}
BITS = (8, 4, 3)


def setting(method: str, bits: int | None = None, group_size: int | None = None) -> tuple:
    """The cache key of a setting: ``(method, bits, group_size)``; a GGUF type ignores bits and group."""
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {METHODS}, got {method!r}")
    method = V.check_choice(method, "method", METHODS)
    if method.startswith("Q"):
        return (method, None, None)
    bits = V.check_int(bits, "bits", 2, 8)
    if group_size is not None:
        group_size = V.check_int(group_size, "group_size", 1)
    return (method, bits, group_size)


def lm_result(compressed, baseline, tokens, *, max_chunks: int, prompt: str = "def ", n_new: int = 80) -> dict:
    """What the widget shows for one quantized model: perplexity on the chunks ``baseline`` was
    measured on, the paired ratio to it, bytes, bits per weight, and a greedy sample.

    Parameters
    ----------
    compressed : compresslab.quant.CompressedGPT
    baseline : compresslab.nn.Perplexity
        The float model's, from ``perplexity(model, tokens, max_chunks=max_chunks)``.
    tokens : 1-D array of int
    max_chunks : int
    prompt : str
    n_new : int

    Returns
    -------
    dict with ppl, low, high, ratio, ratio_low, ratio_high, nbytes, bits_per_weight, sample
    """
    p = nn.perplexity(compressed.model, tokens, max_chunks=max_chunks)
    r, lo, hi = p.ratio_to(baseline)
    sample = data.decode(nn.generate(compressed.model, prompt, n_new, temperature=0))
    return dict(ppl=p.value, low=p.low, high=p.high, ratio=r, ratio_low=lo, ratio_high=hi,
                nbytes=int(compressed.nbytes), bits_per_weight=float(compressed.bits_per_weight),
                sample=sample, perplexity=p)


class LMExplorer:
    """Build with :func:`lm_explorer`; move a control or call :meth:`update`.

    Parameters
    ----------
    model : compresslab.nn.GPT
        The float model.
    results : dict of {tuple: dict}
        :func:`setting` -> :func:`lm_result`, what the lesson computed.
    baseline : compresslab.nn.Perplexity
        The float model's perplexity on the chunks every result was measured on.
    tokens, calibration : optional
        The token stream and the calibration windows, to compute a setting that is not in
        ``results`` (once, then cached). Without ``tokens`` such a setting reads "not computed".
    max_chunks : int
        Chunks of ``tokens`` to score (must match ``baseline``).
    """

    def __init__(self, model, results: dict, baseline, *, tokens=None, calibration=None,
                 max_chunks: int = 32, prompt: str = "def ", n_new: int = 80,
                 method: str = "rtn", bits: int = 4, group_size: int | None = 128):
        import ipywidgets as W

        if not isinstance(model, nn.GPT):
            raise TypeError(f"model must be a compresslab.nn.GPT, got {type(model).__name__}")
        if not isinstance(results, dict):
            raise TypeError(f"results must be a dict {{setting: lm_result(...)}}, got {type(results).__name__}")
        if not isinstance(baseline, nn.Perplexity):
            raise TypeError(f"baseline must be a compresslab.nn.Perplexity, got {type(baseline).__name__}")
        self._cache = {setting(*k): dict(v) for k, v in results.items()}
        self.model, self.baseline = model, baseline
        self.tokens, self.calibration = tokens, calibration
        self.max_chunks = V.check_int(max_chunks, "max_chunks", 1)
        self.prompt, self.n_new = str(prompt), V.check_int(n_new, "n_new", 0, 1000)
        start = setting(method, bits, group_size)
        if start[1] is not None and start[1] not in BITS:
            raise ValueError(f"bits must be one of {BITS}, got {bits}")
        if start[2] not in GROUPS.values():
            raise ValueError(f"group_size must be one of {list(GROUPS.values())}, got {group_size}")
        self.computed_lazily: list[tuple] = []
        self.method = W.Dropdown(options=list(METHODS), value=method, description="method")
        self.bits = W.ToggleButtons(options=list(BITS), value=bits, description="bits")
        self.group = W.ToggleButtons(options=list(GROUPS), value={v: k for k, v in GROUPS.items()}[group_size],
                                     description="group")
        self.readout = W.HTML()
        for c in (self.method, self.bits, self.group):
            c.observe(lambda _change: self.update(), names="value")
        self.widget = W.VBox([self.method, self.bits, self.group, self.readout])
        self.update()

    def settings(self) -> tuple:
        return setting(self.method.value, int(self.bits.value), GROUPS[self.group.value])

    def result(self, key: tuple | None = None) -> dict | None:
        """The result of a setting: cached, computed now (once) if possible, else None."""
        key = self.settings() if key is None else setting(*key)
        if key in self._cache:
            return self._cache[key]
        method, bits, group = key
        if self.tokens is None or (method in ("gptq", "awq") and self.calibration is None):
            return None
        q = Q.quantize_gpt(self.model, method, bits or 4, group, self.calibration, n_grid=10)
        self._cache[key] = lm_result(q, self.baseline, self.tokens, max_chunks=self.max_chunks,
                                     prompt=self.prompt, n_new=self.n_new)
        self.computed_lazily.append(key)
        return self._cache[key]

    def update(self) -> str:
        """Show the current setting; returns the readout HTML."""
        key = self.settings()
        method, bits, group = key
        name = method if bits is None else \
            f"{method.upper()} {bits}-bit, {'per channel' if group is None else f'group {group}'}"
        gguf_type = bits is None
        self.bits.disabled = self.group.disabled = gguf_type     # a GGUF type fixes both: blocks of 32
        if key not in self._cache and self.tokens is not None:
            self.readout.value = f"<b>{html.escape(name)}</b>: computing... (a few seconds, once)"
        r = self.result(key)
        b = self.baseline
        if r is None:
            self.readout.value = (f"<b>{html.escape(name)}</b>: not computed in the lesson (pass tokens= "
                                  "and calibration= to compute it here)")
            return self.readout.value
        self.readout.value = (
            f"<b>{html.escape(name)}</b>: perplexity / float32 (paired) <b>{r['ratio']:.4f}</b> "
            f"[{r['ratio_low']:.4f}, {r['ratio_high']:.4f}] &nbsp;|&nbsp; perplexity {r['ppl']:.3f} "
            f"[{r['low']:.3f}, {r['high']:.3f}] (float32 {b.value:.3f}) &nbsp;|&nbsp; {r['nbytes']:,} bytes, "
            f"{r['bits_per_weight']:.2f} bits per Linear weight"
            f"<pre style='font-size:11px'>{html.escape(r['sample'])}</pre>")
        return self.readout.value

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def lm_explorer(model, results: dict, baseline, **kwargs) -> LMExplorer:
    """Build the explorer over precomputed ``results``; leave it last in a cell to show it."""
    return LMExplorer(model, results, baseline, **kwargs)


__all__ = ["METHODS", "GROUPS", "BITS", "setting", "lm_result", "LMExplorer", "lm_explorer"]
