"""A learner without a clone: build the wheel, install it in a fresh venv, `compresslab lab`."""
import json
import os
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("compresslab-*.whl")
    return whl


def test_wheel_ships_package_data_and_lessons(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for lesson in LESSONS:
        assert f"compresslab/lessons/{lesson}" in names
        # the student edition: the solutions (instructor edition) stay in the repository
        shipped = json.loads(zipfile.ZipFile(wheel).read(f"compresslab/lessons/{lesson}"))
        text = "".join("".join(c["source"]) for c in shipped["cells"])
        assert "### BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text, lesson
        assert all(c.get("outputs", []) == [] for c in shipped["cells"]), lesson
    assert "compresslab/datasets/digits.npz" in names
    assert "compresslab/datasets/DIGITS_PROVENANCE.txt" in names
    for data in ("tiny_gpt.npz", "draft_distilled.npz", "draft_scratch.npz", "PYSTDLIB_PROVENANCE.txt"):
        assert f"compresslab/datasets/{data}" in names, data
    assert not any(n.startswith("tests/") for n in names)
    # JupyterLab defaults for a class, installed into <prefix>/share/jupyter/lab/settings/overrides.d
    (overrides,) = [n for n in names if n.endswith("share/jupyter/lab/settings/overrides.d/compresslab.json")]
    settings = json.loads(zipfile.ZipFile(wheel).read(overrides))
    assert settings["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false",
                                                                       "checkForUpdates": False}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wheel_in_fresh_venv_serves_every_lesson(wheel, tmp_path):
    import jupyterlab  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # The venv gets compresslab only from the wheel; its dependencies (numpy, jupyterlab, ...) are
    # borrowed from the test environment through a .pth file, so no download is needed. Paths
    # added by a .pth are not site dirs, so the test environment's editable compresslab stays out.
    venv_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    parents = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (venv_site / "zz_borrowed_deps.pth").write_text("\n".join(dict.fromkeys(parents)) + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

    home = tmp_path / "home"
    home.mkdir()
    share = Path(sys.prefix) / "share" / "jupyter"
    env = dict(os.environ, HOME=str(home), JUPYTERLAB_DIR=str(share / "lab"),
               JUPYTER_PATH=str(share), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    where = subprocess.run([str(py), "-c", "import compresslab; print(compresslab.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert str(venv) in where, f"compresslab imported from {where!r}, not from the wheel"
    # the wheel has no instructor edition: asking for it is a clear error, not the student one
    r = subprocess.run([str(venv / "bin" / "compresslab"), "lab", "--edition", "instructor", "--no-browser"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "instructor edition" in r.stderr and "repository" in r.stderr, r.stderr

    port, token = _free_port(), "wheel-test-token"
    proc = subprocess.Popen([str(venv / "bin" / "compresslab"), "lab", "--no-browser", "--port", str(port),
                             f"--IdentityProvider.token={token}"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        names, deadline = None, time.time() + 120
        while time.time() < deadline and names is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as resp:
                    names = sorted(c["name"] for c in json.load(resp)["content"] if c["name"].endswith(".ipynb"))
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert names == LESSONS, (names, proc.stdout.read1(4000) if proc.poll() is not None else "")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as resp:
            assert resp.status == 200
        assert sorted(p.name for p in (home / "compresslab-lessons").glob("*.ipynb")) == LESSONS
        copied = (home / "compresslab-lessons" / LESSONS[0]).read_text()
        assert "### BEGIN SOLUTION" not in copied and "raise NotImplementedError()" in copied  # student edition
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
