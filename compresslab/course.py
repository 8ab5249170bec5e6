"""Lessons as files: where they live, student editions, and running them headless.

Exercise solutions are marked the nbgrader way::

    def magnitude_mask(w, amount):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

and the student edition replaces each marked region by ``raise NotImplementedError()`` at the
same indentation (in Markdown cells by "YOUR ANSWER HERE"), clears every output, and keeps the
nbgrader cell metadata, so ``nbgrader generate_assignment`` works on the same files.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_MARK = re.compile(r"^(\s*)### (BEGIN|END) SOLUTION\s*$")


# --------------------------------------------------------------------------------------------
# Where the lessons are
# --------------------------------------------------------------------------------------------
def lessons_source() -> Path:
    """The lessons shipped with this install: ``compresslab/lessons`` in a wheel, or the
    repository's ``lessons/`` folder in a source checkout (editable install)."""
    pkg = Path(__file__).resolve().parent
    for candidate in (pkg / "lessons", pkg.parent / "lessons"):
        if candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    raise FileNotFoundError("compresslab's lessons were not found next to the package; "
                            "reinstall compresslab")


def default_workdir() -> Path:
    return Path(os.environ.get("COMPRESSLAB_LESSONS_DIR", Path.home() / "compresslab-lessons"))


def lesson_paths(paths=None) -> list[Path]:
    """Notebook files named by ``paths`` (files or folders), or every shipped lesson."""
    if not paths:
        paths = [lessons_source()]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.glob("*.ipynb") if not q.name.startswith(".")))
        elif p.suffix == ".ipynb" and p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{str(p)!r} is neither a notebook nor a folder of notebooks")
    return out


def prepare_workdir(target: Path | None = None, edition: str | None = None) -> Path:
    """The folder ``compresslab lab`` opens.

    ``edition=None`` picks by install: in a source checkout the repository's own ``lessons/``
    (instructor edition, edited in place); from a wheel the **student** edition, written into
    ``target`` (default ``~/compresslab-lessons``) on first use. ``edition="student"`` or
    ``"instructor"`` chooses explicitly (always into ``target``; the instructor edition exists only
    in a source checkout: a wheel ships the student edition). A learner's existing copies are
    never overwritten; lessons added by an upgrade are written in.
    """
    src = lessons_source()
    checkout = src.parent == Path(__file__).resolve().parent.parent
    if edition is None:
        if target is None and checkout:
            return src  # source checkout: work in the repository
        edition = "instructor" if checkout else "student"
    if edition not in ("student", "instructor"):
        raise ValueError(f"edition must be 'student' or 'instructor', got {edition!r}")
    if edition == "instructor" and not checkout:
        raise ValueError("this install ships the student edition only: the instructor edition "
                         "(with the solutions) is the lessons/ folder of the compresslab repository")
    target = Path(target) if target is not None else default_workdir()
    target.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        dest = target / item.name
        if not item.is_file() or dest.exists():
            continue
        if edition == "student" and item.suffix == ".ipynb":
            import nbformat

            nbformat.write(student_notebook(nbformat.read(item, as_version=4)), dest)
        else:
            shutil.copy2(item, dest)
    return target


# --------------------------------------------------------------------------------------------
# Student editions
# --------------------------------------------------------------------------------------------
def strip_solutions(source: str, *, markdown: bool = False, where: str = "cell") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of one cell."""
    out: list[str] = []
    inside = False
    for line in source.splitlines(keepends=True):
        m = _MARK.match(line.rstrip("\n"))
        if m and m.group(2) == "BEGIN":
            if inside:
                raise ValueError(f"{where}: nested {BEGIN}")
            inside = True
            indent = m.group(1)
            out.append("YOUR ANSWER HERE\n" if markdown else f"{indent}raise NotImplementedError()\n")
        elif m and m.group(2) == "END":
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    result = "".join(out)
    if "BEGIN SOLUTION" in result or "END SOLUTION" in result:
        # e.g. "#### BEGIN SOLUTION" or a marker after code on the same line: refuse, never leak
        raise ValueError(f"{where}: a solution marker is not on a line of its own as "
                         f"'{BEGIN}' / '{END}'")
    return result


# --------------------------------------------------------------------------------------------
# How long a lesson takes a student
# --------------------------------------------------------------------------------------------
PROSE_WORDS_PER_MINUTE = 100   # technical prose with formulas, read to understand (not skimmed)
CODE_LINES_PER_MINUTE = 10     # a given code cell: read it, run it, look at what it prints
EXERCISE_MINUTES = {"formula": 6, "build": 20}   # a solution of >= 8 lines is a "build it"
QUIZ_MINUTES = 5
_TIME_LINE = re.compile(r"\*\*Estimated time:\*\* about (\d+) minutes")


@dataclass
class TimeEstimate:
    """Minutes a student needs for a lesson, by part (see :func:`estimate_minutes`)."""

    reading: float
    code: float
    exercises: float
    quiz: float

    @property
    def total(self) -> int:
        return int(round(self.reading + self.code + self.exercises + self.quiz, -1)) or 10


def estimate_minutes(nb) -> TimeEstimate:
    """Estimated student time of a lesson (an nbformat notebook), from what it asks of them:
    prose words at ``PROSE_WORDS_PER_MINUTE``, given code lines at ``CODE_LINES_PER_MINUTE``
    (solutions excluded), ``EXERCISE_MINUTES`` per exercise (a "build it" when its solution has
    8 lines or more), and ``QUIZ_MINUTES`` for a quiz. The total is rounded to 10 minutes.
    These are planning rates, not measurements of students: an instructor who times a class
    should trust the class."""
    words = code_lines = exercise_min = quiz_min = 0.0
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "markdown":
            words += len(re.findall(r"[A-Za-z0-9]+", src))
            continue
        if cell.cell_type != "code":
            continue
        lines = [ln for ln in src.splitlines() if ln.strip()]
        if BEGIN in src:
            inside = solution = given = 0
            for ln in lines:
                if BEGIN in ln:
                    inside = 1
                elif END in ln:
                    inside = 0
                elif inside:
                    solution += 1
                else:
                    given += 1
            code_lines += given
            if "def quiz_answers" in src:
                quiz_min += QUIZ_MINUTES
            else:
                exercise_min += EXERCISE_MINUTES["build" if solution >= 8 else "formula"]
        else:
            code_lines += len(lines)
    return TimeEstimate(words / PROSE_WORDS_PER_MINUTE, code_lines / CODE_LINES_PER_MINUTE,
                        exercise_min, quiz_min)


def stated_minutes(nb) -> int | None:
    """The "**Estimated time:** about N minutes" a lesson states in its first cell, or None."""
    m = _TIME_LINE.search(nb.cells[0].source) if nb.cells else None
    return int(m.group(1)) if m else None


def student_notebook(nb):
    """A student edition of a notebook object (nbformat): solutions stripped, outputs cleared."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        src = cell.source
        if BEGIN in src or END in src:
            cell.source = strip_solutions(src, markdown=cell.cell_type == "markdown", where=f"cell {i}")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def write_student_editions(src, dest, *, force: bool = False) -> list[Path]:
    """Write the student edition of a notebook or a folder of notebooks into ``dest``.

    Without ``force``, refuses (``FileExistsError``, before writing anything) to write onto an
    existing notebook, and (``ValueError``) onto its own source."""
    import nbformat

    src, dest = Path(src).resolve(), Path(dest).resolve()
    notebooks = lesson_paths([src])
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {str(src)!r}")
    if dest.suffix == ".ipynb":
        if len(notebooks) != 1:
            raise ValueError("a single output file needs a single input notebook")
        targets = [dest]
    else:
        targets = [dest / nb.name for nb in notebooks]
    for nb_path, out in zip(notebooks, targets):
        if force:
            continue
        same = out.resolve() == nb_path.resolve() or (out.exists() and os.path.samefile(out, nb_path))
        if same:
            raise ValueError(f"refusing to overwrite the source notebook {str(nb_path)!r}: "
                             "choose another output folder (or --force)")
        if out.exists():
            raise FileExistsError(f"refusing to overwrite the existing notebook {str(out)!r}: "
                                  "choose another output, or pass --force")
    written = []
    for nb_path, out in zip(notebooks, targets):
        nb = nbformat.read(nb_path, as_version=4)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student_notebook(nb), out)
        written.append(out)
    return written


# --------------------------------------------------------------------------------------------
# Running lessons headless
# --------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    path: Path
    seconds: float
    status: str  # "ok" or "failed"
    error: str = ""


def run_notebook(path, *, timeout: int = 300, write: bool = False, kernel: str = "python3",
                 env: dict | None = None) -> RunResult:
    """Execute a notebook top to bottom in a fresh kernel (its own folder as working directory)."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook: report it in the table, do not crash
        return RunResult(path, 0.0, "failed", f"cannot read the notebook ({type(exc).__name__})")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    t0 = time.perf_counter()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        client.execute()
        status, error = "ok", ""
    except Exception as exc:  # a failing cell, a time-out, a dead kernel, a kernel that won't start
        status, error = "failed", str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0
    if write and status == "ok":
        nbformat.write(nb, path)
    return RunResult(path, seconds, status, error)
