import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def digits():
    import compresslab as cl

    return cl.data.load_digits(seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
