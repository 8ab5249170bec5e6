"""`ruff check .` has nothing to say: pyflakes, import order, bugbear, pycodestyle (pyproject.toml)."""
import subprocess
import sys
from pathlib import Path

import ruff  # noqa: F401  (in the test extra: this test must not skip)

REPO = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
