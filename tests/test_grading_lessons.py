"""``compresslab grade`` on generated submissions of every lesson: solved, one wrong answer per
exercise and quiz, untouched (the student edition) and corrupt give the expected status for every
exercise of the lesson, the quizzes included.

A submission is the lesson cut down to what its exercises need: the first code cell (imports,
data), every cell defining a name an exercise cell reads (found with ``ast``, transitively), and
the exercise cells themselves, in lesson order."""
import ast
import copy
import csv
import re
from pathlib import Path

import nbformat

from compresslab import cli, course, grading
from compresslab.exercises import ERROR, FAIL, NOT_ATTEMPTED, PASS

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
_SOLUTION = re.compile(r"^(\s*)### BEGIN SOLUTION\s*\n.*?^\s*### END SOLUTION\s*$", re.M | re.S)


def _scope(nodes) -> tuple[set, set]:
    """(names stored, names read) in ``nodes``; a function's locals and parameters are not
    read from outside, so a function contributes only its free names."""
    stored, read = set(), set()
    for top in nodes:
        for node in ast.walk(top) if not isinstance(top, (ast.FunctionDef, ast.ClassDef)) else [top]:
            if isinstance(node, ast.Name):
                (stored if isinstance(node.ctx, ast.Store) else read).add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                stored.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                stored.add(node.name)
                inner_stored, inner_read = _scope(node.body)
                params = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)} \
                    if isinstance(node, ast.FunctionDef) else set()
                read |= inner_read - inner_stored - params
    return stored, read


def _names(source: str) -> tuple[set, set]:
    """(names a cell defines, names it reads); IPython lines (%, !, ??) are left out."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!")) and "??" not in ln]
    try:
        return _scope(ast.parse("\n".join(lines)).body)
    except SyntaxError:
        return set(), set()


def exercise_notebook(nb):
    """The cells of ``nb`` that its exercise cells need (see the module docstring)."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    keep = {0} | {i for i, c in enumerate(cells) if "nbgrader" in c.metadata}
    info = [_names(c.source) for c in cells]
    todo = sorted(keep)
    while todo:
        i = todo.pop()
        for name in info[i][1]:
            for j in range(i - 1, -1, -1):              # the latest definition before cell i
                if name in info[j][0]:
                    if j not in keep:
                        keep.add(j)
                        todo.append(j)
                    break
    out = copy.deepcopy(nb)
    out.cells = [cells[i] for i in sorted(keep)]
    return out


def wrong_answers(nb):
    """Every solution region replaced by ``return None``: a wrong answer to every exercise."""
    out = copy.deepcopy(nb)
    for c in out.cells:
        if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source:
            c.source = _SOLUTION.sub(lambda m: f"{m.group(1)}return None", c.source)
    return out


def test_every_lesson_solved_wrong_untouched_and_corrupt_grade_as_expected(tmp_path):
    subs = tmp_path / "submitted"
    expected = {}
    for path in LESSONS:
        nb = exercise_notebook(nbformat.read(path, as_version=4))
        editions = {"solved": nb, "wrong": wrong_answers(nb), "untouched": course.student_notebook(nb)}
        for student, edition in editions.items():
            (subs / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(edition, subs / student / path.name)
        (subs / "corrupt").mkdir(exist_ok=True)
        (subs / "corrupt" / path.name).write_text(path.read_text()[: len(path.read_text()) // 2])
        status = {"solved": PASS, "wrong": FAIL, "untouched": NOT_ATTEMPTED, "corrupt": ERROR}
        for student, want in status.items():
            expected.update({(student, path.stem, ex): want for ex in grading.expected_exercises(path.stem)})
    out = tmp_path / "grades.csv"
    assert cli.main(["grade", str(subs), "-o", str(out), "--timeout", "120"]) == 0
    rows = list(csv.DictReader(out.open()))
    got = {(r["student"], r["lesson"], r["exercise"]): r["status"] for r in rows}
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, wrong
    assert set(got) == set(expected)
    quizzes = {k for k in expected if k[2].endswith(".quiz")}
    assert len({k[1] for k in quizzes}) == len(LESSONS), "every lesson has a quiz"
