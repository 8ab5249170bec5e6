"""Lesson 05a widget: where do the bytes of a compressed model go?

Controls: the width of the relative indices (gap bits), Huffman coding on/off, and the storage
of the biases (float32 / float16). The readout shows the size of the file
:func:`compresslab.encode.save` would write, the ratio to the float32 parameters, and a bar per
part of the encoding (values, gaps, code tables, codebooks, biases, header).

Every setting is encoded once, up front, with :func:`compresslab.encode.pack_model` (a few
dozen encodings of a small model); a change then only looks the result up and renders HTML.
"""
from __future__ import annotations

import html

from .. import encode, nn

GAP_BITS = tuple(range(2, 11))
_COLORS = {"values": "#DD8452", "gaps": "#C44E52", "tables": "#8172B3", "codebook": "#4C72B0",
           "biases": "#937860", "header": "#8C8C8C"}


def _part(name: str) -> str:
    if name.endswith("_table"):
        return "tables"
    return {"raw": "biases"}.get(name, name)


class EncodingExplorer:
    """Build with :func:`encoding_explorer`; call :meth:`update` (or move a control)."""

    def __init__(self, model: nn.Sequential, *, dense_bytes: int | None = None, gap_bits: int = 5,
                 huffman: bool = True, bias_dtype: str = "float16"):
        nn.check_model(model)
        if gap_bits not in GAP_BITS:
            raise ValueError(f"gap_bits must be in {GAP_BITS[0]}..{GAP_BITS[-1]}, got {gap_bits}")
        self.model = model
        self.dense_bytes = int(dense_bytes or nn.nbytes(model))
        self.results: dict = {}
        for g in GAP_BITS:                      # precompute every setting
            for h in (False, True):
                for b in ("float32", "float16"):
                    cm = encode.pack_model(model, gap_bits=g, huffman=h, bias_dtype=b)
                    parts: dict[str, int] = {}
                    for r in cm.breakdown():
                        parts[_part(r["part"])] = parts.get(_part(r["part"]), 0) + r["bytes"]
                    size = encode.file_size(cm)
                    parts["header"] = size - cm.nbytes
                    self.results[(g, h, b)] = {"file": size, "parts": parts}
        self.state = {"gap_bits": gap_bits, "huffman": huffman, "bias_dtype": bias_dtype}
        self.html = ""
        self._widget = None
        self.update()

    def update(self, gap_bits: int | None = None, huffman: bool | None = None,
               bias_dtype: str | None = None) -> str:
        """Show one setting; returns the readout HTML (also stored in ``self.html``)."""
        for k, v in (("gap_bits", gap_bits), ("huffman", huffman), ("bias_dtype", bias_dtype)):
            if v is not None:
                self.state[k] = v
        key = (int(self.state["gap_bits"]), bool(self.state["huffman"]), self.state["bias_dtype"])
        if key not in self.results:
            raise ValueError(f"no precomputed setting {key}")
        res = self.results[key]
        best = min(self.results.items(), key=lambda kv: kv[1]["file"])
        ratio = self.dense_bytes / res["file"]
        total = max(res["file"], 1)
        bars = "".join(
            f'<div title="{html.escape(p)}: {n} bytes" style="display:inline-block;height:18px;'
            f'width:{100 * n / total:.2f}%;background:{_COLORS.get(p, "#ccc")}"></div>'
            for p, n in res["parts"].items() if n)
        legend = " &nbsp; ".join(
            f'<span style="color:{_COLORS.get(p, "#ccc")}">&#9632;</span> {html.escape(p)} {n:,}'
            for p, n in res["parts"].items() if n)
        self.html = (
            f"<div style='font-family:sans-serif'>"
            f"<b class='readout'>file: {res['file']:,} bytes &mdash; {ratio:.1f}x smaller than "
            f"float32 ({self.dense_bytes:,} bytes)</b><br>"
            f"{key[0]}-bit gaps, {'Huffman-coded' if key[1] else 'bit-packed'}, {key[2]} biases"
            f"<div style='width:100%;max-width:640px;border:1px solid #999;margin:6px 0'>{bars}</div>"
            f"<small>{legend}</small><br><small>smallest of all settings: {best[1]['file']:,} bytes "
            f"({best[0][0]}-bit gaps, {'Huffman' if best[0][1] else 'packed'}, {best[0][2]})</small></div>")
        if self._widget is not None:
            self._readout.value = self.html
        return self.html

    @property
    def widget(self):
        if self._widget is None:
            import ipywidgets as W

            self._gap = W.IntSlider(value=self.state["gap_bits"], min=GAP_BITS[0], max=GAP_BITS[-1],
                                    description="gap bits", continuous_update=True)
            self._huff = W.ToggleButtons(options=["bit-packed", "Huffman"],
                                         value="Huffman" if self.state["huffman"] else "bit-packed",
                                         description="indices")
            self._bias = W.ToggleButtons(options=["float32", "float16"], value=self.state["bias_dtype"],
                                         description="biases")
            self._readout = W.HTML(self.html)

            def refresh(_change=None):
                self.update(self._gap.value, self._huff.value == "Huffman", self._bias.value)

            for c in (self._gap, self._huff, self._bias):
                c.observe(refresh, names="value")
            self._widget = W.VBox([self._gap, self._huff, self._bias, self._readout])
        return self._widget

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def encoding_explorer(model: nn.Sequential, **kwargs) -> EncodingExplorer:
    """An :class:`EncodingExplorer` for a pruned and weight-shared ``model``."""
    return EncodingExplorer(model, **kwargs)
