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


@pytest.fixture
def library_answers_allowed(monkeypatch):
    """For tests that write an answer (right or wrong) with the library's own functions, to test
    the hints and the reference: the check that refuses an answer calling the function its
    exercise asks for is switched off (tests/test_grading_hostile.py and test_exercises.py test
    that check itself)."""
    from compresslab.exercises import _core

    monkeypatch.setattr(_core, "_resolve", lambda names: [])
