"""``compresslab grade`` against hostile submissions: one student cannot change another's grades,
forge a pass, stop the CSV from being written, exhaust the grader, or leave a process behind."""
import csv
import os
import resource
import secrets
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from test_course import _lesson00_cells, _write  # tests/ is on sys.path (rootdir conftest)

from compresslab import cli, grading
from compresslab.exercises import ERROR, FAIL, PASS

SANDBOX = grading.sandbox() is not None
code = nbformat.v4.new_code_cell
EXERCISES = ("0.1", "0.2", "0.3", "0.quiz")

# Reads the results channel's path the way a cheat would: past the grader's name filter.
_CHANNEL = """
import json, os
env = dict(l.split("=", 1) for l in open("/proc/self/environ").read().split("\\0") if "=" in l)
channel = env["COMPRESSLAB_" + "RESULTS_FILE"]
"""


def _daemon(token: str) -> str:
    """A detached process appending fail records to every results file it can find, for 90 s."""
    body = textwrap.dedent(f"""
        import glob, json, time
        end = time.time() + 90  # {token}
        while time.time() < end:
            for p in glob.glob("/tmp/compresslab-*") + glob.glob("/tmp/compresslab-*/results-*"):
                try:
                    with open(p, "a") as f:
                        rec = {{"exercise": "0.1", "status": "fail", "title": "x", "message": "x"}}
                        f.write(json.dumps(rec) + "\\n")
                except OSError:
                    pass
            time.sleep(0.05)
    """)
    return ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {body!r}], start_new_session=True,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")


def _alive(token: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if token.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    out.append(int(d))
            except OSError:
                pass
    return out


@pytest.mark.slow
def test_hostile_submissions_cannot_touch_the_honest_one(tmp_path):
    subs, token = tmp_path / "submitted", f"compresslab-hostile-{secrets.token_hex(6)}"
    precious = tmp_path / "outside" / "precious.txt"
    precious.parent.mkdir()
    precious.write_text("keep me")
    solved, unsolved = _lesson00_cells(solutions=True), _lesson00_cells(solutions=False)
    setup, *answers = solved

    _write(subs, "a_daemon", [code(_daemon(token))] + solved)
    _write(subs, "b_forger", unsolved + [code(_CHANNEL + textwrap.dedent("""
        with open(channel, "a") as f:
            for ex in ("0.1", "0.2", "0.3", "0.quiz"):
                f.write(json.dumps({"exercise": ex, "title": "t", "status": "pass", "message": "forged"}) + "\\n")
        """))])
    _write(subs, "c_malformed", solved + [code(_CHANNEL + 'open(channel, "a").write(\'{"exercise": "0.1"}\\n\')')])
    _write(subs, "d_flood", [setup, code("import sys\nfor _ in range(200):\n    sys.stdout.write('x' * (1 << 20))"),
                             *answers])
    _write(subs, "e_loop", [setup, code("while True:\n    pass")] + answers)
    _write(subs, "f_deleter", [code(f"import os\nos.remove({str(precious)!r})")] + solved)
    _write(subs, "g_hog", [code("hog = bytearray(2 << 30)")] + solved)
    _write(subs, "h_run", [code("import compresslab.exercises._core as c\n"
                                "c._run = lambda e, t, *a: c.CheckResult(e, t, 'pass', 'forged')")] + unsolved)
    _write(subs, "i_sneaky", [code("import importlib\n"
                                   "c = importlib.import_module('compresslab.exercises.' + '_co' + 're')\n"
                                   "setattr(c, '_r' + 'un', lambda e, t, *a: c.CheckResult(e, t, 'pass', 'forged'))\n"
                                   "import compresslab.exercises.lesson00 as l\n"
                                   "setattr(l, 'compare_cases', lambda *a, **k: 'forged')")] + unsolved)
    library = [c if "def model_bytes" not in c.source else
               code("import compresslab as cl\ndef model_bytes(model, bits=32):\n    return cl.nn.nbytes(model, bits)\n"
                    + c.source.split("### END SOLUTION", 1)[1]) for c in solved]
    _write(subs, "j_library", library)
    _write(subs, "zz_honest", solved)

    out = tmp_path / "grades.csv"
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    assert cli.main(["grade", str(subs), "-o", str(out), "--timeout", "12", "--memory", "1536"]) == 0
    seconds = time.monotonic() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    rows = list(csv.DictReader(out.open()))
    got = {(r["student"], r["exercise"]): r["status"] for r in rows}
    detail = {(r["student"], r["exercise"]): r["detail"] for r in rows}
    students = sorted(p.name for p in subs.iterdir())

    # every row written, the honest student passes everything
    assert set(got) == {(s, e) for s in students for e in EXERCISES}, sorted(got)
    assert {e: got[("zz_honest", e)] for e in EXERCISES} == {e: PASS for e in EXERCISES}, detail
    # no forged pass
    for s in ("b_forger", "c_malformed", "h_run", "i_sneaky"):
        assert all(got[(s, e)] == ERROR for e in EXERCISES), (s, {e: detail[(s, e)] for e in EXERCISES})
        assert detail[(s, "0.1")].startswith(grading.FLAG), detail[(s, "0.1")]
    assert "not written by a checker" in detail[("b_forger", "0.1")]
    # the daemon wrote into its own channel only: its own run is flagged, nobody else's
    assert got[("a_daemon", "0.1")] == ERROR and detail[("a_daemon", "0.1")].startswith(grading.FLAG)
    assert "names the grader's internals" in detail[("h_run", "0.1")]
    assert "internals were replaced" in detail[("i_sneaky", "0.1")]
    assert got[("j_library", "0.1")] == FAIL and "cl.nn.nbytes" in detail[("j_library", "0.1")]
    assert got[("j_library", "0.2")] == PASS
    assert all(got[("e_loop", e)] == ERROR and "time limit" in detail[("e_loop", e)] for e in EXERCISES)
    assert got[("d_flood", "0.1")] == PASS
    # the grader's memory does not follow the 200 MB the flood printed
    print(f"graded in {seconds:.1f} s; the grader's peak memory grew by {grown_mb:.0f} MB")
    assert grown_mb < 100, f"the grader grew by {grown_mb:.0f} MB"
    # the hog's 2 GiB were refused (MemoryError), and its answers still graded
    assert got[("g_hog", "0.1")] == PASS
    # nothing left running
    time.sleep(0.5)
    assert not _alive(token), "the detached daemon outlived its grading run"
    assert seconds < 120, seconds
    if not SANDBOX:
        pytest.skip("bubblewrap (bwrap) is missing or cannot create namespaces here: the read-only "
                    "file system and private /tmp of the sandbox are not tested")
    assert precious.read_text() == "keep me"


def test_without_a_sandbox_a_detached_process_still_dies_with_its_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(grading._SANDBOX, "bwrap", None)
    subs, token = tmp_path / "submitted", f"compresslab-hostile-{secrets.token_hex(6)}"
    solved = _lesson00_cells(solutions=True)
    _write(subs, "a_daemon", [code(_daemon(token))] + solved)
    _write(subs, "zz_honest", solved)
    rows = grading.grade(subs, tmp_path / "g.csv", time_limit=30)
    assert "WARNING: no sandbox" in capsys.readouterr().out
    got = {(r["student"], r["exercise"]): r["status"] for r in rows}
    assert {e: got[("zz_honest", e)] for e in EXERCISES} == {e: PASS for e in EXERCISES}
    assert got[("a_daemon", "0.1")] == ERROR
    time.sleep(0.5)
    assert not _alive(token), "the detached daemon outlived its grading run"


def test_time_limit_must_be_finite_and_positive(tmp_path, capsys):
    (tmp_path / "s" / "ada").mkdir(parents=True)
    for bad in ("nan", "inf", "-5", "0"):
        with pytest.raises(SystemExit):
            cli.main(["grade", str(tmp_path / "s"), "-o", str(tmp_path / "g.csv"), "--timeout", bad])
    assert "finite" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "  =1", " -2", " @x"])
def test_csv_escapes_every_formula_prefix(value):
    assert grading._csv_safe(value) == "'" + value
    assert grading._csv_safe("-") == "-" and grading._csv_safe("all 9 cases") == "all 9 cases"


def test_bad_records_flag_only_their_run(tmp_path):
    key, path = b"k" * 32, tmp_path / "r.jsonl"
    path.write_text('{"exercise": "0.1"}\n')
    results, why = grading.read_results(path, key, {"0.1"})
    assert results == {} and "not written by a checker" in why


# --------------------------------------------------------------------------------------------
# The adversarial review: code that runs before the seal, FIFOs, patched classes and library,
# crafted values, a switched-off watch, false flags, absurd limits
# --------------------------------------------------------------------------------------------
_FORCE_PASS = textwrap.dedent("""
    import compresslab.exercises._core as c
    _o = c._run
    def _run(*a):
        s, m = _o(*a)
        return 'pass', m
    c._run = _run
    import sys
    sys.path[:] = [p for p in sys.path if p not in ('', __file__.rsplit('/', 1)[0])]
    sys.modules.pop('ipykernel_launcher', None)
    from ipykernel import kernelapp as app
    app.launch_new_instance()
""")


@pytest.mark.slow
def test_the_adversarial_review_holes_are_closed(tmp_path):
    subs = tmp_path / "submitted"
    solved, unsolved = _lesson00_cells(solutions=True), _lesson00_cells(solutions=False)
    setup = unsolved[0]
    # 1. a shadowing ipykernel_launcher.py / compresslab.py / sitecustomize.py / .pth next to the notebook
    _write(subs, "a_launcher", unsolved)
    for name in ("ipykernel_launcher.py", "sitecustomize.py", "compresslab.py"):
        (subs / "a_launcher" / name).write_text(_FORCE_PASS)
    (subs / "a_launcher" / "evil.pth").write_text("import os\n")
    (subs / "a_launcher" / "data.csv").write_text("1,2\n")
    # 2. a FIFO named like a lesson: skipped, never opened (the grader would hang on it)
    (subs / "b_fifo").mkdir(parents=True)
    os.mkfifo(subs / "b_fifo" / "00_tour.ipynb")
    # 3. a patched class of the checkers
    _write(subs, "c_class", [code("import compresslab.exercises as E\n_orig = E.CheckResult.__init__\n"
                                  "def _init(self, exercise, title, status, message):\n"
                                  "    _orig(self, exercise, title, 'pass', 'ok')\n"
                                  "E.CheckResult.__init__ = _init")] + unsolved)
    # 4. crafted return values
    _write(subs, "d_values", [setup, code(textwrap.dedent("""
        import sys
        class Eq:
            def __eq__(self, o): return True
        def model_bytes(model, bits=32): return Eq()
        class F:
            def __float__(self): return float(sys._getframe(1).f_locals['want'])
        def accuracy(logits, labels): return F()
        cl.exercises.lesson00.check_model_bytes(model_bytes)
        cl.exercises.lesson00.check_accuracy(accuracy)"""))])
    # 5. a patched library function
    _write(subs, "e_library", [setup, code("cl.nn.nbytes = lambda m, bits=32: 7\n"
                                           "def model_bytes(model, bits=32): return 7\n"
                                           "cl.exercises.lesson00.check_model_bytes(model_bytes)")])
    # 6. the forbidden-call watch switched off from inside the answer
    _write(subs, "f_profile", [setup, code("import sys\ndef model_bytes(model, bits=32):\n"
                                           "    getattr(sys, 'set' + 'profile')(None)\n"
                                           "    return cl.nn.nbytes(model, bits)\n"
                                           "cl.exercises.lesson00.check_model_bytes(model_bytes)")])
    # 7. no false flags: internals' names in a comment or a string, a helper of the student's own
    _write(subs, "g_innocent", [setup, code("# REGISTRY of my experiments: nothing FORBIDDEN here\n"
                                            "note = 'not _core, not setprofile'\n"
                                            "def _run(f, *a):\n    return f(*a)\nprint(_run(abs, -1))")]
           + solved[1:])

    out = tmp_path / "grades.csv"
    t0 = time.monotonic()
    assert cli.main(["grade", str(subs), "-o", str(out), "--timeout", "60"]) == 0
    assert time.monotonic() - t0 < 150
    rows = list(csv.DictReader(out.open()))
    got = {(r["student"], r["exercise"]): r["status"] for r in rows}
    detail = {(r["student"], r["exercise"]): r["detail"] for r in rows}

    assert not any(s == "b_fifo" for s, _ in got)
    assert all(got[("a_launcher", e)] != PASS for e in EXERCISES), detail
    for s, why in (("c_class", "CheckResult.__init__"), ("e_library", "compresslab.nn.nbytes")):
        assert all(got[(s, e)] == ERROR for e in EXERCISES), detail
        assert detail[(s, "0.1")].startswith(grading.FLAG) and why in detail[(s, "0.1")], detail[(s, "0.1")]
    assert got[("d_values", "0.1")] == FAIL and "return numbers" in detail[("d_values", "0.1")]
    assert got[("d_values", "0.2")] == FAIL and "return one number" in detail[("d_values", "0.2")]
    assert got[("f_profile", "0.1")] == FAIL and "watch" in detail[("f_profile", "0.1")]
    assert {e: got[("g_innocent", e)] for e in EXERCISES} == {e: PASS for e in EXERCISES}, detail


def test_the_scratch_copy_holds_no_code_and_no_special_files(tmp_path):
    src = tmp_path / "ada"
    src.mkdir()
    for name in ("00_tour.ipynb", "data.csv", "weights.npz"):
        (src / name).write_text("x")
    for name in ("ipykernel_launcher.py", "compresslab.pyc", "x.pth", "sitecustomize", "m.so"):
        (src / name).write_text("x")
    (src / "pkg").mkdir()
    (src / "pkg" / "__init__.py").write_text("x")
    os.mkfifo(src / "pipe.csv")
    (src / "link.csv").symlink_to(src / "data.csv")
    grading._copy_folder(src, tmp_path / "work")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["00_tour.ipynb", "data.csv", "weights.npz"]
    problem, flag = grading._static_flags(src / "pipe.csv")      # returns at once, never blocks
    assert "not a regular file" in problem and not flag


@pytest.mark.parametrize("src, name", [
    ("import compresslab.exercises._core as c", "_core"),
    ("from compresslab.exercises import _core", "_core"),
    ("from compresslab.exercises._core import _run", "_core"),
    ("import sys; sys.setprofile(None)", "setprofile"),
    ("from sys import settrace", "settrace"),
    ("f.__closure__[0].cell_contents", "__closure__"),
    ("x = E.REGISTRY", "REGISTRY"),
    ("%%time\nimport compresslab.exercises._core", "_core"),
    ("# REGISTRY of my experiments: nothing FORBIDDEN here\nx = 1", ""),
    ("def _run(f, *a):\n    return f(*a)\n_record = []\nprint(_run(abs, -1))", ""),
    ("s = '_core setprofile REGISTRY'\n%timeit s\ny = !ls\ns?", ""),
    ("def broken(:\n    pass", ""),
])
def test_the_name_check_reads_code_not_comments(src, name):
    assert grading._names_internals(src) == name


@pytest.mark.parametrize("args, word", [(["--timeout", "1e308"], "at most"), (["--timeout", "86401"], "at most"),
                                        (["--memory", "9" * 40], "at most"), (["--memory", "1e9"], "MB")])
def test_absurd_limits_are_a_usage_error(tmp_path, capsys, args, word):
    (tmp_path / "s" / "ada").mkdir(parents=True)
    with pytest.raises(SystemExit):
        cli.main(["grade", str(tmp_path / "s"), "-o", str(tmp_path / "g.csv"), *args])
    assert word in capsys.readouterr().err
    with pytest.raises(ValueError):
        grading.grade(tmp_path / "s", tmp_path / "g.csv", time_limit=1e308)
