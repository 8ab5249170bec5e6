"""environment.yml and pyproject.toml name the same dependencies; the README has two commands."""
import re
import tomllib
from pathlib import Path

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
    have = dict(_split(d.replace("=", "==", 1) if re.match(r"^[\w-]+=[^=<>]", d) else d) for d in conda)
    have.pop("pip"), have.pop("python")
    assert have == wanted, "environment.yml and pyproject.toml disagree"
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
