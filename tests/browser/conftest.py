"""Fixtures for the browser tests: one JupyterLab server and one Chromium for the whole session.

Environment variables:

``COMPRESSLAB_BROWSER_LESSONS``
    folder whose ``*.ipynb`` are tested (default: the repository's ``lessons/``).
``COMPRESSLAB_SCREENSHOTS``
    folder for one screenshot per lesson (default: ``screenshots/`` under pytest's temp dir).
``COMPRESSLAB_CHROMIUM``
    the Chromium binary (default: ``/usr/bin/chromium``, Debian's package; Playwright's own
    browser download cannot work here).
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
from pathlib import Path

import jlab
import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def _chromium() -> str | None:
    wanted = os.environ.get("COMPRESSLAB_CHROMIUM", "/usr/bin/chromium")
    if os.path.isfile(wanted) and os.access(wanted, os.X_OK):
        return wanted
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    # pip packages of the test extra: imported, not skipped, so a broken install is an error.
    # Chromium is a system package (Playwright's own download cannot work here): skipped.
    import jupyterlab  # noqa: F401
    import playwright.sync_api  # noqa: F401
    path = _chromium()
    if path is None:
        pytest.skip(f"no Chromium at {os.environ.get('COMPRESSLAB_CHROMIUM', '/usr/bin/chromium')} "
                    "(install Debian's package: apt-get install -y chromium, as .ci/run does)")
    return path


_SCREENSHOTS: list[Path] = []


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    folder = os.environ.get("COMPRESSLAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    _SCREENSHOTS.append(path)
    return path


def pytest_terminal_summary(terminalreporter):
    for path in _SCREENSHOTS:
        shots = sorted(p.name for p in path.glob("*.png"))
        if shots:
            terminalreporter.write_line(f"browser tests: {len(shots)} screenshots in {path}")


def _fresh_copy(src: Path, dst: Path) -> None:
    """Copy a lesson without its stored outputs, execution counts and widget state.

    Every output and execution count the tests then see comes from this run, not from the
    committed notebook.
    """
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dst)


@pytest.fixture(scope="session")
def jupyter(chromium_path, tmp_path_factory):
    """A JupyterLab server over copies of the lessons; stopped, with all its kernels, at the end."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, home = base / "root", base / "home"
    root.mkdir()
    home.mkdir()
    for nb in jlab.lesson_paths():
        _fresh_copy(nb, root / nb.name)
    server = jlab.JupyterLab(root, home)

    def last_resort():  # if pytest itself is killed before the finalizer runs
        if server.proc is not None and server.proc.poll() is None:
            try:
                os.killpg(server.proc.pid, signal.SIGKILL)
            except OSError:
                pass

    atexit.register(last_resort)
    try:
        server.start()
        yield server
    finally:
        survivors = server.stop()
        atexit.unregister(last_resort)
        leftovers = jlab.processes_mentioning(str(base))
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert not survivors, "processes survived the JupyterLab shutdown (killed now):\n" + "\n".join(survivors)
    assert not leftovers, f"processes still used the test folder {base} (killed now): {leftovers}"


@pytest.fixture(scope="session")
def browser(chromium_path, tmp_path_factory):
    """Headless Chromium (Playwright) with a fresh profile; closed, with all its processes, at the end."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    pw = sync_playwright().start()
    context = None
    try:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        context.set_default_timeout(30_000)
        yield context
    finally:
        try:
            if context is not None:
                context.close()
        finally:
            pw.stop()
    left = jlab.processes_mentioning(str(profile))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"Chromium processes survived the browser's close (killed now): {left}"
    shutil.rmtree(profile, ignore_errors=True)
