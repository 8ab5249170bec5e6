"""Lesson 05 widget: precomputed, each change well under 100 ms, readout follows the controls."""
from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab.widgets import capstone as W


def _compressed_model():
    g = np.random.default_rng(0)
    m = cl.nn.mlp((64, 300, 100, 10), seed=0)
    for layer in m.layers:
        if isinstance(layer, cl.nn.Linear):
            book = np.sort(g.normal(size=8)).astype(np.float32)
            layer.weight[...] = book[g.integers(0, 8, layer.weight.shape)]
            layer.weight[g.random(layer.weight.shape) < 0.95] = 0
    return m


@pytest.fixture(scope="module")
def explorer():
    return W.encoding_explorer(_compressed_model(), dense_bytes=202_440)


def test_readout_matches_encoder(explorer):
    m = explorer.model
    text = explorer.update(gap_bits=6, huffman=True, bias_dtype="float16")
    size = cl.encode.file_size(m, gap_bits=6, huffman=True, bias_dtype="float16")
    assert f"file: {size:,} bytes" in text
    parts = explorer.results[(6, True, "float16")]["parts"]
    assert sum(parts.values()) == size
    other = explorer.update(gap_bits=3, huffman=False, bias_dtype="float32")
    assert other != text and "3-bit gaps, bit-packed, float32 biases" in other


def test_updates_are_fast(explorer):
    times = explorer.time_updates(repeat=2)
    assert np.median(times) <= 0.1


def test_ipywidget_controls_drive_the_readout(explorer):
    pytest.importorskip("ipywidgets")
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
