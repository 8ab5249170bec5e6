"""The command line: student editions, run-lessons, and `compresslab lab` serving JupyterLab."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from compresslab import cli, course

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


def _nb(path, *cells):
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_strip_solutions_keeps_indentation_and_handles_markdown():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nprint(1)\n"
    assert course.strip_solutions(src) == "def f(x):\n    raise NotImplementedError()\n\nprint(1)\n"
    md = "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n"
    assert course.strip_solutions(md, markdown=True) == "Why?\nYOUR ANSWER HERE\n"
    for bad in ("### BEGIN SOLUTION\nx", "x\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n"):
        with pytest.raises(ValueError, match="SOLUTION"):
            course.strip_solutions(bad)


def test_student_command_writes_editions_and_refuses_to_overwrite(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _nb(src / "a.ipynb", new_markdown_cell("# A"),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION", outputs=[]),
        new_code_cell("print(2)", execution_count=3,
                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")]))
    assert cli.main(["student", str(src), "-o", str(tmp_path / "out")]) == 0
    out = nbformat.read(tmp_path / "out" / "a.ipynb", as_version=4)
    assert "return 42" not in out.cells[1].source and "raise NotImplementedError()" in out.cells[1].source
    assert out.cells[2].outputs == [] and out.cells[2].execution_count is None
    assert cli.main(["student", str(src), "-o", str(src)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert cli.main(["student", str(src / "a.ipynb"), "-o", str(src / "a.ipynb")]) == 2


def test_student_command_never_overwrites_another_notebook_without_force(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _nb(src / "a.ipynb", new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION"))
    _nb(src / "b.ipynb", new_code_cell("x = 'the other instructor notebook'"))
    before = (src / "b.ipynb").read_text()
    assert cli.main(["student", str(src / "a.ipynb"), "-o", str(src / "b.ipynb")]) == 2
    assert "refusing to overwrite the existing notebook" in capsys.readouterr().err
    assert (src / "b.ipynb").read_text() == before
    (tmp_path / "link.ipynb").symlink_to(src / "a.ipynb")          # the source under another name
    assert cli.main(["student", str(src / "a.ipynb"), "-o", str(tmp_path / "link.ipynb")]) == 2
    assert "return 42" in (src / "a.ipynb").read_text()
    assert cli.main(["student", str(src / "a.ipynb"), "-o", str(src / "b.ipynb"), "--force"]) == 0
    assert "raise NotImplementedError()" in (src / "b.ipynb").read_text()


def _split_lines(nb):
    """(lines inside solution regions, lines outside them), by a parser independent of course.py."""
    inside_lines, outside_lines = set(), set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if "BEGIN SOLUTION" in s:
                inside = True
            elif "END SOLUTION" in s:
                inside = False
            elif s:
                (inside_lines if inside else outside_lines).add(s)
    return inside_lines, outside_lines


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_student_edition_contains_no_solution_line(lesson):
    nb = nbformat.read(lesson, as_version=4)
    solutions, given = _split_lines(nb)
    assert solutions, f"{lesson.name} has no exercise"
    student = course.student_notebook(nb)
    text = {l.strip() for c in student.cells for l in c.source.splitlines()}
    assert not any("SOLUTION" in l for l in text), "a solution marker survived"
    # a line that also appears outside every solution region in the instructor edition is not a leak
    leaked = (solutions & text) - given
    assert not leaked, f"solution lines leak into the student edition: {sorted(leaked)}"


def test_leak_check_catches_a_stripper_that_strips_nothing(monkeypatch):
    nb = nbformat.read(LESSONS[0], as_version=4)
    solutions, given = _split_lines(nb)
    monkeypatch.setattr(course, "strip_solutions", lambda source, **kw: source)
    text = {l.strip() for c in course.student_notebook(nb).cells for l in c.source.splitlines()}
    assert (solutions & text) - given, "the leak check must notice solutions left in place"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_checker_cells_are_checked_by_nbval_and_pass(lesson):
    nb = nbformat.read(lesson, as_version=4)
    checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert checks, f"{lesson.name} has no checker cell"
    for c in checks:
        assert "nbval-check-output" in c.metadata.get("tags", []), c.source
        text = "".join(o.get("text", "") for o in c.outputs)
        assert "[PASS]" in text and "Exercise" in text, (lesson.name, c.source, text)


def test_run_lessons_reports_and_fails_on_error(tmp_path, capsys):
    good = _nb(tmp_path / "good.ipynb", new_code_cell("x = 1 + 1\nprint(x)"))
    bad = _nb(tmp_path / "bad.ipynb", new_code_cell("raise RuntimeError('boom')"))
    assert cli.main(["run-lessons", str(good)]) == 0
    out = capsys.readouterr().out
    assert "good.ipynb" in out and "ok" in out and "1 of 1 lessons ran without error" in out
    assert cli.main(["run-lessons", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "RuntimeError" in out and "1 of 2" in out
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    assert cli.main(["run-lessons", str(broken), str(good)]) == 1
    out = capsys.readouterr().out
    assert "cannot read the notebook" in out and "1 of 2" in out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid):
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:  # pragma: no cover
        return []
    return [int(p) for p in out.split()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as gone
    try:
        return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_lab_serves_the_lessons_and_stops_cleanly(tmp_path, sig):
    import jupyterlab  # noqa: F401  (the test extra installs it: a broken install fails here, loudly)
    port, token = _free_port(), "compresslab-test-token"
    workdir = tmp_path / "lessons"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "user-settings"))  # a first-time user's settings
    proc = subprocess.Popen([sys.executable, "-m", "compresslab.cli", "lab", "--no-browser",
                             "--port", str(port), "--dir", str(workdir),
                             f"--IdentityProvider.token={token}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer on /lab"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=10) as r:
            names = {c["name"] for c in json.load(r)["content"]}
        assert {p.name for p in LESSONS} <= names
        # Course defaults (compresslab/jupyter/overrides.json, installed with the package): no pop-up
        # asking about Jupyter news, no update check, no news fetched from the internet.
        url = f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}"
        with urllib.request.urlopen(url, timeout=10) as r:
            props = json.load(r)["schema"]["properties"]  # overrides replace the schema's defaults
        assert props["fetchNews"]["default"] == "false" and props["checkForUpdates"]["default"] is False
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/news?token={token}", timeout=10) as r:
            assert json.load(r)["news"] == []
        kids = _children(proc.pid)
        assert kids, "compresslab lab should run jupyter lab as a child process"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        assert not [k for k in kids if _alive(k)], "a JupyterLab process survived"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lab_workdir_editions(tmp_path):
    import nbformat as nbf

    assert course.prepare_workdir() == ROOT / "lessons"          # source checkout: in place
    stu = course.prepare_workdir(tmp_path / "s", edition="student")
    ins = course.prepare_workdir(tmp_path / "i", edition="instructor")
    for lesson in LESSONS:
        assert "### BEGIN SOLUTION" not in (stu / lesson.name).read_text()
        assert (ins / lesson.name).read_bytes() == lesson.read_bytes()
    # a learner's edited copy is never overwritten
    nb = nbf.read(stu / LESSONS[0].name, as_version=4)
    nb.cells[0].source = "my notes"
    nbf.write(nb, stu / LESSONS[0].name)
    course.prepare_workdir(tmp_path / "s", edition="student")
    assert nbf.read(stu / LESSONS[0].name, as_version=4).cells[0].source == "my notes"
