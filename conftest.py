"""pytest configuration for the whole repository (tests/ and the lesson notebooks under nbval).

It lives at the root so that it applies however pytest is started: ``pytest``,
``pytest tests/test_quant.py`` or ``pytest lessons/04a_benchmarking.ipynb``.
"""
import functools

import pytest

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
    """Packages one notebook cell (nbval) or one docstring example (doctest) needs: the cell's
    ``requires`` metadata, or an example's ``import torch``."""
    dtest = getattr(item, "dtest", None)  # pytest's DoctestItem holds its doctest
    if dtest is not None:
        return {name for name in OPTIONAL
                if any(ex.source.startswith((f"import {name}", f"from {name} ")) for ex in dtest.examples)}
    cell = getattr(item, "cell", None)  # nbval's IPyNbCell holds its notebook cell
    if cell is None:
        return set()
    return set(cell.get("metadata", {}).get("compresslab", {}).get("requires", []))


@pytest.fixture(scope="session")
def torch():
    """The torch module (tests taking this fixture are skipped when torch is not installed)."""
    import torch as torch_module

    return torch_module


def pytest_collect_file(file_path, parent):
    """The docstring Examples of every module of the package run as doctests (as
    ``--doctest-modules`` would, without collecting the tests' own conftest files twice)."""
    from pathlib import Path

    package = Path(__file__).parent / "compresslab"
    if parent.config.getoption("doctestmodules"):     # pytest collects them itself then
        return None
    if file_path.suffix == ".py" and package in file_path.parents:
        from _pytest.doctest import DoctestModule

        return DoctestModule.from_parent(parent, path=file_path)
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs PyTorch; skipped with the install line when it "
                                       "is missing (pytest -m torch runs only these)")


_SKIPPED_FOR = {}  # missing package(s) -> node ids of the tests skipped for them


def pytest_collection_modifyitems(config, items):
    from pathlib import Path

    from compresslab.backend import install_hint

    for item in items:
        paths = [Path(str(item.fspath))]
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            paths += [v for v in callspec.params.values() if isinstance(v, Path)]
        needs, about = set(), set()  # packages the test cannot run without / that its lesson uses
        for name in OPTIONAL:
            if item.get_closest_marker(name) or name in getattr(item, "fixturenames", ()):
                needs.add(name)
        cell_needs = _cell_requires(item)
        needs |= cell_needs
        for path in paths:
            whole, cells = _notebook_requires(str(path))
            needs |= whole
            about |= whole | cells
        for name in sorted(needs | about):
            if name in OPTIONAL:
                item.add_marker(getattr(pytest.mark, name))
        missing = ", ".join(sorted(m for m in needs if _missing(m)))
        if missing:
            _SKIPPED_FOR.setdefault(missing, set()).add(item.nodeid)
            what = "this test"
            if cell_needs:
                what = "this example" if hasattr(item, "dtest") else f"this cell of {Path(str(item.fspath)).name}"
            item.add_marker(pytest.mark.skip(
                reason=f"{what} needs {missing}, which is not installed: {install_hint(missing)}"))


def pytest_terminal_summary(terminalreporter):
    from compresslab.backend import install_hint

    skipped = {r.nodeid for r in terminalreporter.stats.get("skipped", [])
               if "which is not installed" in str(r.longrepr)}  # not those skipped for another reason
    for name, nodeids in sorted(_SKIPPED_FOR.items()):
        n = len(nodeids & skipped)
        if n:
            tests = "1 test" if n == 1 else f"{n} tests"
            terminalreporter.write_line(
                f"{tests} skipped because {name} is not installed (the comparisons with PyTorch and the "
                f"lesson cells that use it). To run them: {install_hint(name)}, "
                "then pytest again.", yellow=True)
