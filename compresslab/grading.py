"""Grade a folder of submitted lesson notebooks headless.

``compresslab grade SUBMISSIONS -o grades.csv`` expects one folder per student holding their
notebooks, named like the lessons (``SUBMISSIONS/ada/01_pruning.ipynb``; deeper folders such as
nbgrader's ``submitted/ada/lesson01/01_pruning.ipynb`` work too: the first folder is the student).
Each notebook runs in a fresh kernel with a time limit; cells that raise do not stop the run; a
cell still running at the limit is interrupted and the run ends there. Every checker writes its
result to a file the moment it runs, so what a student earned before a time-out or a crashed
kernel counts. One CSV row is written per student and exercise:

``pass`` / ``fail`` (a wrong answer) / ``not attempted`` (untouched, or the checker never ran) /
``error`` (the answer raised, the notebook hit the time limit, the kernel died, or the file is not
a valid notebook).

Submissions are code: they run with the grader's rights, and a determined student could forge a
result from inside the kernel. Grade in a container or as an unprivileged user, and treat the
grades as feedback-grade, not exam-proof.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import ERROR, NOT_ATTEMPTED, all_checkers


@dataclass
class NotebookRun:
    """What running one notebook produced."""

    path: Path
    results: dict[str, dict] = field(default_factory=dict)  # exercise id -> last recorded result
    cell_errors: list[str] = field(default_factory=list)      # "cell N: ename: evalue"
    problem: str = ""                                         # time limit, dead kernel, bad file
    seconds: float = 0.0


def expected_exercises(lesson: str) -> dict[str, str]:
    """{exercise id: title} of a lesson (its notebook stem, e.g. "01_pruning")."""
    return {k: v["title"] for k, v in all_checkers().items() if v["lesson"] == lesson}


def run_submission(path, *, time_limit: float = 300.0, kernel: str = "python3") -> NotebookRun:
    """Execute a notebook with a total time limit and collect every checker result."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path = Path(path)
    run = NotebookRun(path)
    t0 = time.monotonic()
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # invalid JSON, not a notebook, unreadable
        run.problem = f"not a valid notebook ({type(exc).__name__})"
        return run
    client = NotebookClient(
        nb, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "TimeLimit", "evalue": f"stopped after {time_limit:.0f} s",
                          "traceback": []},
        resources={"metadata": {"path": str(path.parent.resolve())}})
    deadline = t0 + time_limit
    # Every checker appends its result to this file the moment it runs (exercises._core._record),
    # so results earned before a time-out or a crashed kernel are kept.
    fd, results_file = tempfile.mkstemp(prefix="compresslab-results-", suffix=".jsonl")
    os.close(fd)
    old_env = os.environ.get("COMPRESSLAB_RESULTS_FILE")
    os.environ["COMPRESSLAB_RESULTS_FILE"] = results_file  # inherited by the kernel
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    run.problem = f"time limit of {time_limit:.0f} s reached"
                    break
                client.timeout = max(1, int(remaining))
                started = time.monotonic()
                client.execute_cell(cell, i)
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error":
                        run.cell_errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}"[:200])
                # A cell that used its whole allowance was interrupted (the kernel's own error
                # output may arrive too late to be attached to it, so time is the reliable sign).
                if time.monotonic() - started >= client.timeout - 0.05:
                    run.problem = f"time limit of {time_limit:.0f} s reached"
                    break
    except DeadKernelError:
        run.problem = "the kernel died"
    except Exception as exc:  # kernel failed to start, etc.
        run.problem = f"could not run ({type(exc).__name__}: {str(exc)[:120]})"
    finally:
        if old_env is None:
            os.environ.pop("COMPRESSLAB_RESULTS_FILE", None)
        else:
            os.environ["COMPRESSLAB_RESULTS_FILE"] = old_env
        with open(results_file, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                    run.results[r["exercise"]] = r
                except (ValueError, KeyError, TypeError):
                    continue
        os.unlink(results_file)
    run.seconds = time.monotonic() - t0
    return run


def _rows(student: str, lesson: str, run: NotebookRun) -> list[dict]:
    expected = expected_exercises(lesson)
    if not expected:
        return [{"student": student, "lesson": lesson, "exercise": "-", "title": "-",
                 "status": ERROR, "detail": f"{run.path.name} is not a compresslab lesson"}]
    rows = []
    for ex_id, title in expected.items():
        r = run.results.get(ex_id)
        if r is not None:
            status, detail = r["status"], r["message"]
        elif run.problem:
            status, detail = ERROR, run.problem
        else:
            status, detail = NOT_ATTEMPTED, "the checker was never called"
            if run.cell_errors:
                detail += f" (first error: {run.cell_errors[0]})"
        rows.append({"student": student, "lesson": lesson, "exercise": ex_id, "title": title,
                     "status": status, "detail": detail})
    return rows


def _csv_safe(value):
    """Text from student code must not become a spreadsheet formula (CSV injection)."""
    if isinstance(value, str) and len(value) > 1 and value[0] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def grade(submissions, output, *, time_limit: float = 300.0, progress=print) -> list[dict]:
    """Grade every notebook under ``submissions``; write the CSV to ``output``; return its rows."""
    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder {str(root)!r} does not exist")
    notebooks = sorted(p for p in root.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts and p.parent != root)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in student folders under {str(root)!r} "
                                "(expected SUBMISSIONS/<student>/<lesson>.ipynb)")
    rows: list[dict] = []
    for nb in notebooks:
        student = nb.relative_to(root).parts[0]
        run = run_submission(nb, time_limit=time_limit)
        progress(f"{student:<20} {nb.name:<24} {run.seconds:6.1f} s  {run.problem or 'ran'}")
        rows.extend(_rows(student, nb.stem, run))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["student", "lesson", "exercise", "title", "status", "detail"])
        w.writeheader()
        w.writerows({k: _csv_safe(v) for k, v in r.items()} for r in rows)
    return rows
