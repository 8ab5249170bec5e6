"""environment.yml and pyproject.toml name the same dependencies; the README has two commands."""
import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge package name -> PyPI name


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    name = m.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in meta["dependencies"])
    for extra in ("lab", "torch"):
        wanted.update(_split(r) for r in meta["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    builds = {}
    for i, d in enumerate(conda):  # name>=version=build: the build string is conda's alone
        m = re.match(r"^([\w-]+[<>]=?[^=]+)=([^=]+)$", d)
        if m:
            conda[i], builds[_split(m.group(1))[0]] = m.group(1), m.group(2)
    have = dict(_split(d.replace("=", "==", 1) if re.match(r"^[\w-]+=[^=<>]", d) else d) for d in conda)
    have.pop("pip"), have.pop("python")
    assert have == wanted, "environment.yml and pyproject.toml disagree"
    assert builds == {"torch": "cpu*"}, "environment.yml should ask for conda-forge's CPU build of torch"
    assert "-e ." in pip
    assert "conda-forge" in env["channels"]
    assert re.match(r"python=3\.\d+$", next(d for d in conda if d.startswith("python")))


def test_readme_quick_start_has_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", section, flags=re.S)
    commands = [line for b in blocks for line in b.strip().splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    assert "compresslab lab" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci, ".ci/run must run the README's test command"


def test_tests_need_torch_only_through_the_conftest():
    """One place decides what needs torch (the root conftest.py): the `torch` fixture or marker."""
    needle = "importorskip(" + '"torch")'
    for f in sorted((ROOT / "tests").rglob("*.py")):
        text = f.read_text()
        assert needle not in text, f"{f.name}: use the torch fixture or @pytest.mark.torch"
        assert not re.search(r"^(import torch|from torch)", text, re.M), f"{f.name}: torch imported at module level"


def test_torch_tests_are_skipped_with_the_install_line_when_torch_is_missing(tmp_path):
    import os
    import subprocess
    import sys

    # sys.modules["torch"] = None is exactly what a missing package looks like to find_spec/import
    (tmp_path / "hide_torch.py").write_text("import sys\nsys.modules['torch'] = None\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "hide_torch", "-o", "addopts=", "-q", "-rs",
                          "-p", "no:cacheprovider", "tests/test_backend.py", "tests/test_speed_bench.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    skipped = re.findall(r"^SKIPPED \[(\d+)\] .*needs torch, which is not installed: pip install torch "
                         r"--index-url https://download\.pytorch\.org/whl/cpu", out.stdout, re.M)
    assert sum(map(int, skipped)) >= 8, out.stdout[-3000:]
    assert re.search(r"^\d+ tests? skipped because torch is not installed", out.stdout, re.M)
    assert re.search(r"\d+ passed", out.stdout)  # the NumPy-only tests in those files still ran


def test_the_version_is_stated_once():
    """pyproject.toml reads the version from compresslab/__init__.py; the changelog names it."""
    import importlib.metadata

    import compresslab

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("compresslab") == compresslab.__version__
    assert f"## {compresslab.__version__}" in (ROOT / "CHANGELOG.md").read_text()
