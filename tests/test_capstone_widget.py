"""Lesson 05a widget: every setting is encoded once, up front; a change only looks it up (counted,
not timed: wall-clock latency is benchmarks/widget_latency.py's job); the readout follows the controls."""
from __future__ import annotations

import itertools

import ipywidgets  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
import numpy as np
import pytest

import compresslab as cl
from compresslab import encode
from compresslab.widgets import capstone as W

SETTINGS = list(itertools.product(W.GAP_BITS, (False, True), ("float32", "float16")))


def _compressed_model():
    g = np.random.default_rng(0)
    m = cl.nn.mlp((64, 300, 100, 10), seed=0)
    for layer in m.layers:
        if isinstance(layer, cl.nn.Linear):
            book = np.sort(g.normal(size=8)).astype(np.float32)
            layer.weight[...] = book[g.integers(0, 8, layer.weight.shape)]
            layer.weight[g.random(layer.weight.shape) < 0.95] = 0
    return m


def count_calls(monkeypatch, owner, names):
    """Count the calls of ``owner.<name>`` for each name (the functions still run)."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(owner, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)
    return calls


ENCODERS = ("pack_model", "file_size", "save")


@pytest.fixture(scope="module")
def built():
    """The explorer, and how many encodings building it took."""
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp, encode, ENCODERS)
        ex = W.encoding_explorer(_compressed_model(), dense_bytes=202_440)
    return ex, dict(calls)


@pytest.fixture(scope="module")
def explorer(built):
    return built[0]


def test_readout_matches_encoder(explorer):
    m = explorer.model
    text = explorer.update(gap_bits=6, huffman=True, bias_dtype="float16")
    size = cl.encode.file_size(m, gap_bits=6, huffman=True, bias_dtype="float16")
    assert f"file: {size:,} bytes" in text
    parts = explorer.results[(6, True, "float16")]["parts"]
    assert sum(parts.values()) == size
    other = explorer.update(gap_bits=3, huffman=False, bias_dtype="float32")
    assert other != text and "3-bit gaps, bit-packed, float32 biases" in other


def test_building_encodes_every_setting_once(built):
    explorer, calls = built
    # the counters see the widget's own calls (so zero calls below means something)
    assert calls == {"pack_model": len(SETTINGS), "file_size": len(SETTINGS), "save": 0}
    assert sorted(explorer.results) == sorted(SETTINGS)


def test_a_change_encodes_nothing(explorer, monkeypatch):
    """The 100 ms budget as a machine-independent cost: moving any control, over every setting,
    neither encodes the model nor measures a file; the readout still follows each setting."""
    want = {(g, h, b): encode.file_size(explorer.model, gap_bits=g, huffman=h, bias_dtype=b)
            for g, h, b in SETTINGS}                # the oracle, before counting starts
    calls = count_calls(monkeypatch, encode, ENCODERS)
    box = explorer.widget
    assert box.children[-1] is explorer._readout
    texts = {}
    for g, h, b in SETTINGS:                        # through the ipywidgets, as a learner does
        explorer._gap.value, explorer._bias.value = g, b
        explorer._huff.value = "Huffman" if h else "bit-packed"
        texts[g, h, b] = explorer._readout.value
        assert f"file: {want[g, h, b]:,} bytes" in texts[g, h, b]
    for key in SETTINGS[::-1]:                      # and through update()
        assert explorer.update(*key) == texts[key]
    assert calls == dict.fromkeys(ENCODERS, 0)
    assert len(set(texts.values())) == len(SETTINGS)


def test_ipywidget_controls_drive_the_readout(explorer):
    box = explorer.widget
    before = explorer._readout.value
    explorer._gap.value = 9 if explorer._gap.value != 9 else 4
    assert explorer._readout.value != before
    assert box.children[-1] is explorer._readout


def test_bad_arguments():
    with pytest.raises(ValueError, match="gap_bits"):
        W.encoding_explorer(_compressed_model(), gap_bits=20)
    with pytest.raises(TypeError, match="Sequential"):
        W.encoding_explorer("model")
