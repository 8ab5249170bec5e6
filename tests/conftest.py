import functools
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


# ---------------------------------------------------------------------------------------------
# Optional packages: the one place where tests that need one are found and skipped.
#
# A test needs torch when it takes the ``torch`` fixture, carries ``@pytest.mark.torch``, or is
# about a lesson with torch sections (cell or notebook metadata {"compresslab": {"requires":
# ["torch"]}}). Every such test gets the ``torch`` marker, so ``pytest -m torch`` runs exactly
# them. When torch is missing they are skipped with the reason and the install line, except the
# tests of a lesson whose torch sections skip themselves: that lesson still runs, and only the
# cells that need torch (nbval) are skipped.
# ---------------------------------------------------------------------------------------------
OPTIONAL = ("torch",)


def _missing(name):
    import importlib.util

    return importlib.util.find_spec(name) is None


def _skip_reason(name, what):
    from compresslab.backend import INSTALL

    return f"{what} needs {name}, which is not installed: {INSTALL.get(name, 'pip install ' + name)}"


@functools.lru_cache(maxsize=None)
def _notebook_requires(path):
    """(packages the whole notebook needs, packages some of its cells need)"""
    import json
    from pathlib import Path

    path = Path(path)
    if path.suffix != ".ipynb" or not path.exists():
        return set(), set()
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return set(), set()
    whole = set(nb.get("metadata", {}).get("compresslab", {}).get("requires", []))
    cells = {m for c in nb.get("cells", [])
             for m in c.get("metadata", {}).get("compresslab", {}).get("requires", [])}
    return whole, cells


def _cell_requires(item):
    cell = getattr(item, "cell", None)  # nbval's IPyNbCell holds its notebook cell
    if cell is None:
        return set()
    return set(cell.get("metadata", {}).get("compresslab", {}).get("requires", []))


@pytest.fixture(scope="session")
def torch():
    """The torch module (tests taking this fixture are skipped when torch is not installed)."""
    import torch as torch_module

    return torch_module


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs PyTorch; skipped with the install line when it "
                                       "is missing (pytest -m torch runs only these)")


def pytest_collection_modifyitems(config, items):
    from pathlib import Path

    for item in items:
        paths = [Path(str(item.fspath))]
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            paths += [v for v in callspec.params.values() if isinstance(v, Path)]
        needs, about = set(), set()  # packages the test cannot run without / that its lesson uses
        for name in OPTIONAL:
            if item.get_closest_marker(name) or name in getattr(item, "fixturenames", ()):
                needs.add(name)
        needs |= _cell_requires(item)
        for path in paths:
            whole, cells = _notebook_requires(str(path))
            needs |= whole
            about |= whole | cells
        for name in sorted(needs | about):
            if name in OPTIONAL:
                item.add_marker(getattr(pytest.mark, name))
        missing = sorted(m for m in needs if _missing(m))
        if missing:
            what = (f"this cell of {Path(str(item.fspath)).name}" if _cell_requires(item)
                    else "this test")
            item.add_marker(pytest.mark.skip(reason=_skip_reason(", ".join(missing), what)))


_SKIPPED_FOR = {}


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        for name in OPTIONAL:
            if f"needs {name}, which is not installed" in report.longrepr[2]:
                _SKIPPED_FOR[name] = _SKIPPED_FOR.get(name, 0) + 1


def pytest_terminal_summary(terminalreporter):
    from compresslab.backend import INSTALL

    for name, n in sorted(_SKIPPED_FOR.items()):
        terminalreporter.write_line(
            f"{n} tests skipped because {name} is not installed (the comparisons with PyTorch and "
            f"the lesson cells that use it). To run them: {INSTALL[name]}, then pytest again.",
            yellow=True)
