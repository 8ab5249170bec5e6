"""Grade a folder of submitted lesson notebooks headless.

``compresslab grade SUBMISSIONS -o grades.csv`` expects one folder per student holding their
notebooks, named like the lessons (``SUBMISSIONS/ada/01a_pruning.ipynb``; deeper folders such as
nbgrader's ``submitted/ada/lesson01a/01a_pruning.ipynb`` work too: the first folder is the student).
One CSV row is written per student and exercise, as each notebook finishes:

``pass`` / ``fail`` (a wrong answer) / ``not attempted`` (untouched, or the checker never ran) /
``error`` (the answer raised, the notebook hit the time limit, the kernel died, the file is not a
valid notebook, or the submission was flagged: its detail starts with ``FLAGGED:``).

**Isolation.** Each notebook runs in a worker process (``python -m compresslab.grading``, see
:func:`_worker`) with a copy of the student's folder in its own scratch folder: its regular files
that are not code (no ``.py``, ``.pth``, compiled modules, sub-folders, links or FIFOs), and the
kernel runs with ``PYTHONSAFEPATH=1``, so nothing there runs before the hidden first cell. Where
`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``) works, the worker runs in a
sandbox: every file read-only except the scratch folder, a private ``/tmp``, no network, its own
PID namespace (every process the submission starts dies with the run) and ``--die-with-parent``.
Everywhere, the worker gets resource limits (address space ``memory_mb``, CPU seconds, file size,
no core files; ``MALLOC_ARENA_MAX=2`` so that the address space follows the memory actually used)
and the wall-clock limit; without a sandbox the grader says so at the start, and
the worker (a child subreaper) kills every process the submission left behind, detached ones too.
Cell outputs are discarded as they arrive (only error names are kept), so the grader's memory
does not grow with what a submission prints.

**Trustworthy results.** Checkers write to a results file only their own run knows, one JSON line
per check signed with HMAC-SHA256 under a one-time key (``exercises._core._seal``). A record that
is malformed, unsigned or wrongly signed, out of sequence, of an exercise of another lesson, or
reports that checker internals (functions, class methods, compresslab's public functions) were
replaced, makes that notebook's rows ``error`` with a ``FLAGGED:`` detail; nobody else's rows are
touched. So is a submission whose code (not comments or strings) imports the grader's internals
or reaches for them as attributes. An answer that is, or calls, the library function its exercise asks for fails
(``exercises._core.FORBIDDEN``).

This raises the bar; it is not exam-proof. The checkers run in the same Python process as the
submission, so a determined student can still read the key from memory and sign forged records.
Treat the grades as feedback-grade, and see docs/teaching.md ("Grading") for what remains possible.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import ERROR, FAIL, NOT_ATTEMPTED, PASS, all_checkers

STATUSES = (PASS, FAIL, NOT_ATTEMPTED, ERROR)
MEMORY_MB = 2048            # default address-space limit of a submission's processes
MAX_NOTEBOOK_BYTES = 50 << 20
MAX_FOLDER_BYTES = 100 << 20
MAX_FILE_BYTES = 512 << 20  # RLIMIT_FSIZE: no file the submission writes grows past this
MAX_RECORDS = 10_000
MAX_TIME_LIMIT = 86_400.0   # seconds per notebook
MAX_MEMORY_MB = 1 << 20     # 1 TiB
FLAG = "FLAGGED: "
# What a submission's own code has no business with: the results channel, the checkers'
# internals, and the watch on forbidden calls. Flagged when code (not a comment or a string)
# reaches for them as an attribute (``x._seal``) or imports them; a student's own variable or
# function of the same name (``def _run(...)``) is fine.
_INTERNAL_ATTRS = frozenset({"_core", "_seal", "_integrity", "_make_channel", "_emit", "_RESULTS",
                             "_FORBIDDEN_NOW", "FORBIDDEN", "REGISTRY", "__closure__", "cell_contents",
                             "setprofile", "settrace"})
_INTERNAL_IMPORTS = _INTERNAL_ATTRS | {"_run", "_record"}
_INTERNALS_FALLBACK = re.compile(r"\.\s*(" + "|".join(sorted(_INTERNAL_ATTRS)) + r")\b|"
                                 r"\bimport\s+(" + "|".join(sorted(_INTERNAL_IMPORTS)) + r")\b")
# Files of a student's folder that could run as code when the kernel starts (a shadowing
# ipykernel_launcher.py, sitecustomize, a .pth file, a compiled module): never copied.
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".pyw", ".pth", ".so", ".dylib", ".dll")


@dataclass
class NotebookRun:
    """What running one notebook produced."""

    path: Path
    results: dict[str, dict] = field(default_factory=dict)  # exercise id -> last recorded result
    cell_errors: list[str] = field(default_factory=list)      # "cell N: ename: evalue"
    problem: str = ""                                         # time limit, dead kernel, bad file
    flagged: str = ""                                         # why the results cannot be trusted
    seconds: float = 0.0


def expected_exercises(lesson: str) -> dict[str, str]:
    """{exercise id: title} of a lesson (its notebook stem, e.g. "01a_pruning")."""
    return {k: v["title"] for k, v in all_checkers().items() if v["lesson"] == lesson}


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------
_SANDBOX: dict[str, str | None] = {}


def sandbox() -> str | None:
    """The path of a working ``bwrap``, or None (no unprivileged namespaces, not installed)."""
    if "bwrap" not in _SANDBOX:
        found = shutil.which("bwrap")
        if found:
            try:
                r = subprocess.run([found, *_BWRAP_BASE, "--", "true"], capture_output=True, timeout=30)
                found = found if r.returncode == 0 else None
            except (OSError, subprocess.TimeoutExpired):
                found = None
        _SANDBOX["bwrap"] = found
    return _SANDBOX["bwrap"]


_BWRAP_BASE = ["--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
               "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]


def _worker_command(scratch: Path, bwrap: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "compresslab.grading"]
    if bwrap is None:
        return cmd
    tmp = os.path.realpath(tempfile.gettempdir())
    under_tmp = str(scratch).startswith(tmp.rstrip("/") + "/") or tmp == "/tmp"
    args = [bwrap, *_BWRAP_BASE]
    if not under_tmp:
        args += ["--tmpfs", tmp]
    # Python itself and its packages may live under a temporary folder (a CI venv in /tmp): they
    # come back, read-only, over the private /tmp.
    keep = sorted({os.path.realpath(q) for q in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                   os.path.dirname(os.path.realpath(sys.executable)), *sys.path) if q and os.path.exists(q)})
    hidden = [q for q in keep if any(q == t or q.startswith(t.rstrip("/") + "/") for t in ("/tmp", tmp))]
    for q in hidden:
        if not any(q.startswith(o.rstrip("/") + "/") for o in hidden if o != q):
            args += ["--ro-bind", q, q]
    return args + ["--bind", str(scratch), str(scratch), "--chdir", str(scratch / "work"), "--", *cmd]


# --------------------------------------------------------------------------------------------
# Running one notebook
# --------------------------------------------------------------------------------------------
def _regular(path: Path) -> bool:
    """A regular file itself: not a link, a FIFO, a device or a folder."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read_regular(path: Path, cap: int) -> bytes:
    """The bytes of a regular file (never blocks on a FIFO, never follows a link); ValueError if
    it is not one or is larger than ``cap``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > cap:
            raise ValueError(f"larger than {cap >> 20} MB")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > cap:
                raise ValueError(f"larger than {cap >> 20} MB")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _copy_folder(src: Path, dest: Path) -> None:
    """The notebook's folder: its regular files that are not code (notebooks and data; no .py,
    .pth, .pyc, compiled modules, folders or links), at most MAX_FOLDER_BYTES in all."""
    dest.mkdir(parents=True)
    total = 0
    for item in sorted(src.iterdir()):
        name = item.name.lower()
        if (name.endswith(_CODE_SUFFIXES) or name.startswith(("sitecustomize", "usercustomize"))
                or not _regular(item)):
            continue
        try:
            data = _read_regular(item, MAX_FOLDER_BYTES - total)
        except (OSError, ValueError):
            continue
        total += len(data)
        (dest / item.name).write_bytes(data)


def _code_lines(src: str) -> str:
    """A cell's Python, without IPython's magics, shell escapes and help lines."""
    lines = src.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    keep = []
    for line in lines:
        s = line.strip()
        if s.startswith(("%", "!", "?")) or s.endswith("?") or re.match(r"^\w+\s*=\s*[!%]", s):
            keep.append("")
        else:
            keep.append(line)
    return "\n".join(keep) + "\n"


def _names_internals(src: str) -> str:
    """The first internal the code reaches for (see _INTERNAL_ATTRS), or ""; comments and strings
    do not count."""
    code = _code_lines(src)
    try:
        tokens = [t for t in tokenize.generate_tokens(iter(code.splitlines(keepends=True)).__next__)
                  if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        m = _INTERNALS_FALLBACK.search(re.sub(r"#.*", "", code))
        return (m.group(1) or m.group(2)) if m else ""
    importing = False
    for prev, tok in zip([None, *tokens], tokens):
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or (tok.type == tokenize.OP and tok.string == ";"):
            importing = False
            continue
        if tok.type != tokenize.NAME:
            continue
        if tok.string in ("import", "from") and (prev is None or prev.type == tokenize.NEWLINE
                                                  or prev.string == ";"):
            importing = True
        after_dot = prev is not None and prev.type == tokenize.OP and prev.string == "."
        if (after_dot and tok.string in _INTERNAL_ATTRS) or (importing and tok.string in _INTERNAL_IMPORTS):
            return tok.string
    return ""


def _static_flags(path: Path) -> tuple[str, str]:
    """(problem, flag) from reading the notebook here: not a notebook, or code naming internals."""
    try:
        nb = json.loads(_read_regular(path, MAX_NOTEBOOK_BYTES).decode("utf-8"))
        cells = nb["cells"]
        sources = ["".join(c["source"]) if isinstance(c["source"], list) else str(c["source"])
                   for c in cells if c.get("cell_type") == "code"]
    except ValueError as exc:
        if str(exc).startswith(("larger than", "not a regular")):
            return f"not a valid notebook ({exc})", ""
        return f"not a valid notebook ({type(exc).__name__})", ""
    except Exception as exc:  # invalid JSON, not a notebook, unreadable
        return f"not a valid notebook ({type(exc).__name__})", ""
    for i, src in enumerate(sources):
        name = _names_internals(src)
        if name:
            return "", f"code cell {i + 1} names the grader's internals ({name!r})"
    return "", ""


class _Capped(threading.Thread):
    """Read a pipe to its end, keeping only the first ``cap`` bytes."""

    def __init__(self, pipe, cap: int = 1 << 20):
        super().__init__(daemon=True)
        self.pipe, self.cap, self.data = pipe, cap, bytearray()

    def run(self):
        while chunk := self.pipe.read(65536):
            if len(self.data) < self.cap:
                self.data += chunk[: self.cap - len(self.data)]


def run_submission(path, *, time_limit: float = 300.0, kernel: str = "python3",
                   memory_mb: int = MEMORY_MB, lesson: str | None = None) -> NotebookRun:
    """Run a notebook in an isolated worker with a total time limit; collect its checker results."""
    path = Path(path)
    run = NotebookRun(path)
    t0 = time.monotonic()
    run.problem, run.flagged = _static_flags(path)
    if run.problem:
        return run
    expected = set(expected_exercises(lesson or path.stem))
    if not expected:                      # not a lesson: nothing to grade, nothing to run
        return run
    scratch = Path(tempfile.mkdtemp(prefix="compresslab-grade-")).resolve()
    try:
        _copy_folder(path.parent, scratch / "work")
        for sub in ("home", "runtime"):
            (scratch / sub).mkdir()
        key = secrets.token_bytes(32)
        key_file, results_file = scratch / f"key-{secrets.token_hex(8)}", scratch / f"results-{secrets.token_hex(8)}"
        key_file.write_bytes(key)
        results_file.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPRESSLAB_RESULTS", "JPY_", "JUPYTER_"))}
        env.update(HOME=str(scratch / "home"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
                   IPYTHONDIR=str(scratch / "home" / ".ipython"), MPLCONFIGDIR=str(scratch / "home" / "mpl"),
                   COMPRESSLAB_RESULTS_FILE=str(results_file), COMPRESSLAB_RESULTS_KEY_FILE=str(key_file),
                   PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", PYTHONSAFEPATH="1",
                   # the limit is on address space: glibc's default of up to 8 malloc arenas per core,
                   # each reserving 64 MiB, and torch's and OpenBLAS's threads made the same lesson pass
                   # at 1,700 MB and fail at 1,900 (lesson 06b with torch, MemoryError at 2,048 in CI)
                   MALLOC_ARENA_MAX="2")
        for var in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONINSPECT"):
            env.pop(var, None)
        env.pop("COMPRESSLAB_STRICT", None)
        job = {"notebook": str(scratch / "work" / path.name), "time_limit": time_limit, "kernel": kernel,
               "memory_mb": memory_mb, "cpu_s": int(time_limit * 4) + 60}
        summary = _launch(_worker_command(scratch, sandbox()), job, env, scratch, time_limit)
        run.problem = summary.get("problem", "")
        run.cell_errors = [str(e)[:200] for e in summary.get("cell_errors", [])][:50]
        results, why = read_results(results_file, key, expected)
        run.results = results
        if why and not run.flagged:
            run.flagged = why
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run.seconds = time.monotonic() - t0
    return run


def _launch(cmd: list[str], job: dict, env: dict, scratch: Path, time_limit: float) -> dict:
    """Start the worker in its own session, wait (time limit plus start-up slack), kill what is left."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, cwd=str(scratch / "work"), start_new_session=True)
    reader = _Capped(proc.stdout)
    reader.start()
    try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except OSError:
        pass
    stopped = False
    try:
        proc.wait(timeout=time_limit + 60)
    except subprocess.TimeoutExpired:
        stopped = True
        _kill_group(proc.pid, signal.SIGTERM)   # the worker kills its descendants on SIGTERM
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(timeout=10)
    try:
        line = bytes(reader.data).split(b"\n", 1)[0]
        summary = json.loads(line) if line else {}
        if not isinstance(summary, dict):
            summary = {}
    except ValueError:
        summary = {}
    if stopped:
        summary["problem"] = f"time limit of {time_limit:g} s reached"
    elif "problem" not in summary:
        summary["problem"] = ("the run was stopped (memory or CPU limit, or the worker crashed; "
                              f"exit status {proc.returncode})")
    return summary


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def read_results(path: Path, key: bytes, expected: set[str]) -> tuple[dict[str, dict], str]:
    """(exercise id -> last valid record, why the channel cannot be trusted or "")."""
    results: dict[str, dict] = {}
    last_seq = -1
    with open(path, "rb") as f:
        for n, raw in enumerate(f):
            if n >= MAX_RECORDS or len(raw) > 65536:
                return results, f"the results channel holds more than a checker writes (line {n + 1})"
            try:
                r = json.loads(raw)
                mac = r.pop("mac")
                payload = json.dumps(r, sort_keys=True, separators=(",", ":")).encode()
                good = hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).hexdigest())
                keys_ok = {"exercise", "title", "status", "message", "seq", "tampered"} <= set(r)
            except (ValueError, KeyError, TypeError, AttributeError):
                good = keys_ok = False
            if not (good and keys_ok):
                return results, (f"record {n + 1} of the results channel was not written by a checker "
                                 "(malformed or forged)")
            if r["status"] not in STATUSES or r["exercise"] not in expected or r["seq"] != last_seq + 1:
                return results, f"record {n + 1} of the results channel is not valid for this lesson"
            if r["tampered"]:
                return results, ("the checkers' internals were replaced before exercise "
                                 f"{r['exercise']} was checked ({', '.join(map(str, r['tampered'][:3]))})")
            last_seq = r["seq"]
            results[r["exercise"]] = r
    return results, ""


# --------------------------------------------------------------------------------------------
# The worker (runs inside the sandbox)
# --------------------------------------------------------------------------------------------
def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_descendants() -> None:
    """SIGKILL every descendant (orphans come back to us: we are a child subreaper)."""
    if not os.path.isdir("/proc"):
        return
    for _ in range(50):
        pids = _descendants(os.getpid())
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.01)
            except ChildProcessError:
                break


def _limit(memory_mb: int, cpu_s: int) -> None:
    import resource

    for what, value in ((resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, cpu_s),
                        (resource.RLIMIT_FSIZE, MAX_FILE_BYTES), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass


def _subreaper() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


_PREAMBLE = """\
import os as _o, sys as _s
import compresslab.exercises as _g
assert _o.path.realpath(_g.__file__) == %r, "not the installed compresslab"
_w = _o.path.realpath(_o.getcwd()) + _o.sep
assert not [m for m in list(_s.modules.values())
            if _o.path.realpath(str(getattr(m, "__file__", None) or "/")).startswith(_w)], \\
    "code loaded from the submission's folder"
_g.all_checkers()
_g._core._seal()
del _g, _o, _s, _w"""


def _preamble() -> str:
    """The hidden first cell: the checkers from the installed package (not from the student's
    folder), no module loaded from that folder, then the seal."""
    import compresslab.exercises as installed

    return _PREAMBLE % os.path.realpath(installed.__file__)


def _worker() -> int:
    """Run one notebook: the job (JSON) on stdin, one summary line (JSON) on stdout."""
    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")               # not inherited: the kernel cannot write our summary
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):                          # the kernel's own prints go nowhere
        os.dup2(devnull, fd)
    _subreaper()
    signal.signal(signal.SIGTERM, lambda *_: (_kill_descendants(), os._exit(1)))
    summary = {"cell_errors": [], "problem": ""}
    try:
        _limit(int(job["memory_mb"]), int(job["cpu_s"]))
        _execute(Path(job["notebook"]), float(job["time_limit"]), job["kernel"], summary)
    except Exception as exc:
        summary["problem"] = f"could not run ({type(exc).__name__}: {str(exc)[:120]})"
    finally:
        _kill_descendants()
    out.write(json.dumps(summary) + "\n")
    out.flush()
    return 0


def _execute(path: Path, time_limit: float, kernel: str, summary: dict) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    class Client(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            kind = msg["msg_type"]
            if kind == "error":       # keep the error's name, drop every other output at once
                c = msg["content"]
                cell.outputs.append(nbformat.v4.new_output(
                    "error", ename=str(c.get("ename"))[:100], evalue=str(c.get("evalue"))[:300], traceback=[]))
                return None
            if kind in ("status", "execute_input"):
                return super().process_message(msg, cell, cell_index)
            return None

    t0 = time.monotonic()
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        summary["problem"] = f"not a valid notebook ({type(exc).__name__})"
        return
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nb.cells.insert(0, nbformat.v4.new_code_cell(_preamble()))
    client = Client(nb, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True,
                    error_on_timeout={"ename": "TimeLimit", "evalue": f"stopped after {time_limit:.0f} s",
                                      "traceback": []},
                    resources={"metadata": {"path": str(path.parent)}})
    deadline = t0 + time_limit
    errors = summary["cell_errors"]
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    summary["problem"] = f"time limit of {time_limit:g} s reached"
                    break
                client.timeout = max(1, int(remaining))
                started = time.monotonic()
                client.execute_cell(cell, i)
                for o in cell.get("outputs", []):
                    if o.get("output_type") == "error":
                        if i == 0:    # the hidden first cell: the checkers could not be set up
                            summary["problem"] = f"the grader's setup failed ({o.get('ename')})"
                        elif len(errors) < 50:
                            errors.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}"[:200])
                cell.outputs = []
                if summary["problem"]:
                    break
                # A cell that used its whole allowance was interrupted (the kernel's own error
                # output may arrive too late to be attached to it, so time is the reliable sign).
                if time.monotonic() - started >= client.timeout - 0.05:
                    summary["problem"] = f"time limit of {time_limit:g} s reached"
                    break
    except DeadKernelError:
        summary["problem"] = "the kernel died"
    except Exception as exc:  # kernel failed to start, etc.
        summary["problem"] = f"could not run ({type(exc).__name__}: {str(exc)[:120]})"


# --------------------------------------------------------------------------------------------
# The CSV
# --------------------------------------------------------------------------------------------
def _rows(student: str, lesson: str, run: NotebookRun) -> list[dict]:
    expected = expected_exercises(lesson)
    if not expected:
        return [{"student": student, "lesson": lesson, "exercise": "-", "title": "-",
                 "status": ERROR, "detail": f"{run.path.name} is not a compresslab lesson"}]
    rows = []
    for ex_id, title in expected.items():
        r = run.results.get(ex_id)
        if run.flagged:
            status, detail = ERROR, FLAG + run.flagged
        elif r is not None:
            status, detail = r["status"], str(r["message"])
        elif run.problem:
            status, detail = ERROR, run.problem
        else:
            status, detail = NOT_ATTEMPTED, "the checker was never called"
            if run.cell_errors:
                detail += f" (first error: {run.cell_errors[0]})"
        rows.append({"student": student, "lesson": lesson, "exercise": ex_id, "title": title,
                     "status": status, "detail": detail})
    return rows


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _csv_safe(value):
    """Text from student code must not become a spreadsheet formula (CSV injection): a value that
    starts, or starts after spaces, with = + - @ TAB CR or LF gets a leading apostrophe."""
    if isinstance(value, str) and value != "-" and value.lstrip(" ").startswith(_FORMULA_START):
        return "'" + value
    return value


def check_time_limit(value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0 or value > MAX_TIME_LIMIT:
        raise ValueError(f"the time limit must be a finite number of seconds above 0 and at most "
                         f"{MAX_TIME_LIMIT:g}, got {value!r}")
    return value


def check_memory(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MEMORY_MB:
        raise ValueError(f"the memory limit must be a whole number of MB above 0 and at most "
                         f"{MAX_MEMORY_MB}, got {value!r}")
    return value


def grade(submissions, output, *, time_limit: float = 300.0, memory_mb: int = MEMORY_MB,
          progress=print) -> list[dict]:
    """Grade every notebook under ``submissions``; write the CSV to ``output`` (row by row, as each
    notebook finishes); return its rows."""
    time_limit = check_time_limit(time_limit)
    memory_mb = check_memory(memory_mb)
    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder {str(root)!r} does not exist")
    notebooks = sorted(p for p in root.rglob("*.ipynb")          # regular files only: no links,
                       if ".ipynb_checkpoints" not in p.parts   # FIFOs or devices
                       and p.parent != root and _regular(p))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in student folders under {str(root)!r} "
                                "(expected SUBMISSIONS/<student>/<lesson>.ipynb)")
    if sandbox():
        progress(f"grading in a bubblewrap sandbox per notebook (time limit {time_limit:g} s, "
                 f"memory {memory_mb} MB)")
    else:
        progress("WARNING: no sandbox (bubblewrap's bwrap is missing or cannot create namespaces here): "
                 "submissions run with your rights and can read and change your files. Every process "
                 "a submission starts is still killed after it, and resource limits still apply. "
                 "Install bubblewrap (apt-get install bubblewrap) to isolate them.")
    rows: list[dict] = []
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["student", "lesson", "exercise", "title", "status", "detail"])
        w.writeheader()
        f.flush()
        for nb in notebooks:
            student = nb.relative_to(root).parts[0]
            run = run_submission(nb, time_limit=time_limit, memory_mb=memory_mb)
            status = ("FLAGGED" if run.flagged else "") or run.problem or "ran"
            progress(f"{student:<20} {nb.name:<24} {run.seconds:6.1f} s  {status}")
            new = _rows(student, nb.stem, run)
            w.writerows({k: _csv_safe(v) for k, v in r.items()} for r in new)
            f.flush()
            rows.extend(new)
    return rows


if __name__ == "__main__":  # the worker: python -m compresslab.grading
    sys.exit(_worker())
