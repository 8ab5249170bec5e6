"""Build the course website into a folder, from a clean copy of ``docs/``, offline.

    python tools/build_site.py [OUT]        # default OUT: docs/_build/site

The same build as ``sphinx-build -W --keep-going -n -b html docs docs/_build/html`` (warnings,
broken references included, are errors), except that the sources are a copy of ``docs/`` in a
temporary folder: the lesson copies and API pages that ``docs/conf.py`` writes go there, not
into the repository. ``tests/test_site.py`` and ``tests/browser/test_site_browser.py`` share one build
per test session through :func:`build_once`.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# What docs/conf.py writes at each build, and Sphinx's output: never copied.
GENERATED = ("_build", "lessons", "api/compresslab*.md")
SPHINX_ARGS = ["-W", "--keep-going", "-n", "-b", "html", "-q"]
# The tests build with a course of their own (not the defaults), so that they can check that every
# launch link comes from these settings and nowhere else.
TEST_ENV = {
    "COMPRESSLAB_REPO_URL": "https://github.com/example-org/example-course",
    "COMPRESSLAB_REPO_BRANCH": "spring-2027",
    "COMPRESSLAB_BINDERHUB_URL": "https://mybinder.org",
    "COMPRESSLAB_JUPYTERHUB_URL": "https://hub.example.edu",
}


@dataclass
class Site:
    """A finished build: ``html`` (the site), ``seconds`` it took, ``returncode`` and the ``log``."""

    html: Path
    seconds: float
    returncode: int
    log: str


def copy_sources(dest: Path) -> Path:
    """Copy ``docs/`` without build products to ``dest`` (created), README.md beside it; return ``dest``."""
    def ignore(folder, names):
        rel = Path(folder).relative_to(DOCS)
        return {n for n in names if any(fnmatch.fnmatch((rel / n).as_posix(), p) for p in GENERATED)}

    shutil.copytree(DOCS, dest, ignore=ignore)
    shutil.copy2(REPO / "README.md", dest.parent / "README.md")  # index.md includes ../README.md
    return dest


def build(src: Path, html: Path, *, env: dict[str, str] | None = None, timeout: float = 600) -> Site:
    """Run sphinx-build on ``src`` (a copy of docs/) into ``html``; the repository is this one."""
    environ = {**os.environ, "COMPRESSLAB_SITE_REPO": str(REPO), **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sphinx", *SPHINX_ARGS, str(src), str(html)],
                          capture_output=True, text=True, env=environ, timeout=timeout, cwd=src)
    return Site(html, time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr)


_BUILDS: dict[Path, Site] = {}


def build_once(folder: Path, *, env: dict[str, str] | None = None) -> Site:
    """The site built into ``folder/html`` (from a copy of docs/ in ``folder/docs``), once per process."""
    folder = Path(folder)
    if folder not in _BUILDS:
        src = folder / "docs"
        if src.exists():
            shutil.rmtree(src)
        copy_sources(src)
        _BUILDS[folder] = build(src, folder / "html", env=env)
    return _BUILDS[folder]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(DOCS / "_build" / "site"), help="folder for the HTML")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = copy_sources(Path(tmp) / "docs")
        site = build(src, Path(args.out).resolve())
    print(site.log, end="")
    state = "built" if site.returncode == 0 else f"FAILED (sphinx-build exit {site.returncode})"
    print(f"site {state} in {site.seconds:.1f} s: {Path(args.out).resolve() / 'index.html'}")
    return site.returncode


if __name__ == "__main__":
    raise SystemExit(main())
