"""Lesson 02 widget: every control changes the readout, and an update takes <= 100 ms (median)."""
import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from compresslab import data, nn  # noqa: E402
from compresslab.widgets.quant import quant_explorer  # noqa: E402


@pytest.fixture(scope="module")
def explorer():
    d = data.load_digits(seed=0)
    m = nn.mlp((64, 300, 100, 10), seed=0)
    nn.fit(m, d.X_train, d.y_train, epochs=5, progress=False)
    return quant_explorer(m, d.X_test, d.y_test, bits=4)


def test_controls_change_the_readout_and_figure(explorer):
    before = (explorer.readout.value, explorer.figure.value)
    explorer.bits.value = 2
    assert explorer.readout.value != before[0] and explorer.figure.value != before[1]
    assert "2-bit" in explorer.readout.value and "SQNR" in explorer.readout.value
    for control, value in ((explorer.scheme, "affine"), (explorer.granularity, "per channel"),
                           (explorer.observer, "MSE search")):
        text = explorer.readout.value
        control.value = value
        assert explorer.readout.value != text
    assert explorer.figure.value.count("<svg") == 3


def test_more_bits_more_sqnr(explorer):
    explorer.scheme.value, explorer.granularity.value, explorer.observer.value = "symmetric", "per tensor", "min-max"
    s = [explorer.result((b, "symmetric", False, "minmax"))["sqnr"] for b in (2, 4, 8)]
    assert s[0] < s[1] < s[2] and 5 * 6 < s[2] - s[0] < 7 * 6


def test_update_median_under_100ms(explorer):
    times = []
    for bits in range(2, 9):
        for scheme in ("affine", "symmetric"):
            for gran in ("per tensor", "per channel"):
                for obs in ("min-max", "percentile 99.9", "MSE search"):
                    explorer.bits.value, explorer.scheme.value = bits, scheme
                    explorer.granularity.value, explorer.observer.value = gran, obs
                    explorer._cache.clear()             # measure the real work, not the cache
                    t = time.perf_counter()
                    explorer.update()
                    times.append(time.perf_counter() - t)
    median = float(np.median(times))
    print(f"quant explorer update: median {1e3 * median:.1f} ms, 90th percentile "
          f"{1e3 * np.percentile(times, 90):.1f} ms over {len(times)} settings")
    assert median <= 0.100
