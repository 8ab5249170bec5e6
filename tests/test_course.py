"""Course tooling: student editions run clean, grading survives broken submissions."""
import csv
import json
from pathlib import Path

import nbformat
import pytest

from compresslab import cli, course, grading
from compresslab.exercises import ERROR, FAIL, NOT_ATTEMPTED, PASS

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_student_edition_runs_with_every_exercise_not_attempted(lesson, tmp_path):
    (out,) = course.write_student_editions(lesson, tmp_path)
    run = grading.run_submission(out, time_limit=240)
    assert not run.problem, run.problem
    assert not run.cell_errors, run.cell_errors
    expected = grading.expected_exercises(lesson.stem)
    assert expected, f"{lesson.name} has no registered exercise"
    statuses = {k: run.results.get(k, {}).get("status") for k in expected}
    assert statuses == {k: NOT_ATTEMPTED for k in expected}, statuses


def _lesson00_cells(solutions: bool):
    """The setup cell and the exercise cells of lesson 00 (instructor or student edition)."""
    nb = nbformat.read(ROOT / "lessons" / "00_tour.ipynb", as_version=4)
    if not solutions:
        nb = course.student_notebook(nb)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    setup = next(c for c in cells if "import compresslab as cl" in c.source)
    exercises = [c for c in cells if "nbgrader" in c.metadata]
    return [setup] + exercises


def _write(folder: Path, student: str, cells, name="00_tour.ipynb"):
    nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(dict(c)) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (folder / student).mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / student / name)


def _replace(cells, old, new):
    out = []
    for c in cells:
        c = nbformat.from_dict(json.loads(json.dumps(c)))
        c.source = c.source.replace(old, new)
        out.append(c)
    return out


def test_grade_a_mixed_folder(tmp_path):
    subs = tmp_path / "submitted"
    good = _lesson00_cells(solutions=True)
    code = nbformat.v4.new_code_cell
    _write(subs, "ada", good)
    _write(subs, "bob", _replace(good, "return math.ceil(count * bits / 8)", "return count"))
    _write(subs, "cy", _lesson00_cells(solutions=False))
    _write(subs, "dee", [code("raise RuntimeError('a broken cell does not stop grading')")] + good)
    _write(subs, "eve", good[:3] + [code("import os; os._exit(1)")] + good[3:])
    _write(subs, "fay", [good[0], code("while True:\n    pass")] + good[1:])
    _write(subs, "gus", good)
    (subs / "gus" / "00_tour.ipynb").write_text('{"cells": [ this is not json')
    _write(subs, "hal", good, name="my_notes.ipynb")

    out = tmp_path / "grades.csv"
    assert cli.main(["grade", str(subs), "-o", str(out), "--timeout", "25"]) == 0
    rows = list(csv.DictReader(out.open()))
    got = {(r["student"], r["exercise"]): r["status"] for r in rows}
    assert got == {
        ("ada", "0.1"): PASS, ("ada", "0.2"): PASS, ("ada", "0.3"): PASS,
        ("bob", "0.1"): FAIL, ("bob", "0.2"): PASS, ("bob", "0.3"): PASS,
        ("cy", "0.1"): NOT_ATTEMPTED, ("cy", "0.2"): NOT_ATTEMPTED, ("cy", "0.3"): NOT_ATTEMPTED,
        ("dee", "0.1"): PASS, ("dee", "0.2"): PASS, ("dee", "0.3"): PASS,
        ("eve", "0.1"): PASS, ("eve", "0.2"): ERROR, ("eve", "0.3"): ERROR,   # 0.1 was checked before the kernel died
        ("fay", "0.1"): ERROR, ("fay", "0.2"): ERROR, ("fay", "0.3"): ERROR,
        ("gus", "0.1"): ERROR, ("gus", "0.2"): ERROR, ("gus", "0.3"): ERROR,
        ("hal", "-"): ERROR,
        ("ada", "0.quiz"): PASS, ("bob", "0.quiz"): PASS, ("cy", "0.quiz"): NOT_ATTEMPTED,
        ("dee", "0.quiz"): PASS, ("eve", "0.quiz"): ERROR, ("fay", "0.quiz"): ERROR, ("gus", "0.quiz"): ERROR,
    }
    detail = {(r["student"], r["exercise"]): r["detail"] for r in rows}
    assert "number of parameters" in detail[("bob", "0.1")]
    assert "kernel died" in detail[("eve", "0.2")]
    assert "time limit" in detail[("fay", "0.1")]
    assert "not a valid notebook" in detail[("gus", "0.1")]
    assert "not a compresslab lesson" in detail[("hal", "-")]


def test_grade_needs_student_folders(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "missing"), "-o", str(tmp_path / "g.csv")]) == 2
    (tmp_path / "flat").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "flat" / "00_tour.ipynb")
    assert cli.main(["grade", str(tmp_path / "flat"), "-o", str(tmp_path / "g.csv")]) == 2
    assert "SUBMISSIONS/<student>/<lesson>.ipynb" in capsys.readouterr().err


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_states_its_estimated_time_and_fits_one_sitting(lesson):
    nb = nbformat.read(lesson, as_version=4)
    estimate = course.estimate_minutes(nb)
    assert course.stated_minutes(nb) == estimate.total, (
        f"{lesson.name} states {course.stated_minutes(nb)} minutes, the estimate is {estimate}")
    assert estimate.total <= 90, f"{lesson.name} takes about {estimate.total} minutes: split it"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_asks_to_predict_and_to_reflect(lesson):
    markdown = [c.source for c in nbformat.read(lesson, as_version=4).cells if c.cell_type == "markdown"]
    assert sum(s.lstrip().startswith("**Predict, then run.**") for s in markdown) >= 2
    assert sum(s.lstrip().startswith("**Reflect.**") for s in markdown) >= 1


def test_time_estimate_counts_prose_code_exercises_and_quiz():
    code, md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    build = "def f(x):\n    ### BEGIN SOLUTION\n" + "    x = x + 1\n" * 8 + "    return x\n    ### END SOLUTION"
    nb = nbformat.v4.new_notebook(cells=[
        md("word " * 1000), code("a = 1\n\nb = 2\n" * 5),
        code("def g(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"), code(build),
        code("def quiz_answers():\n    ### BEGIN SOLUTION\n    return {1: 'a'}\n    ### END SOLUTION")])
    e = course.estimate_minutes(nb)
    assert e.reading == pytest.approx(1000 / course.PROSE_WORDS_PER_MINUTE)
    assert e.code == pytest.approx((10 + 3) / course.CODE_LINES_PER_MINUTE)   # blank lines and solutions not counted
    assert e.exercises == course.EXERCISE_MINUTES["formula"] + course.EXERCISE_MINUTES["build"]
    assert e.quiz == course.QUIZ_MINUTES
    assert e.total == int(round(e.reading + e.code + e.exercises + e.quiz, -1))


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_has_a_build_it_exercise(lesson):
    """At least one exercise whose reference solution is 8 lines or more (not the quiz)."""
    sizes = []
    for c in nbformat.read(lesson, as_version=4).cells:
        if c.cell_type == "code" and course.BEGIN in c.source and "def quiz_answers" not in c.source:
            inside = c.source.split(course.BEGIN, 1)[1].split(course.END, 1)[0]
            sizes.append(sum(1 for line in inside.splitlines() if line.strip()))
    assert sizes and max(sizes) >= 8, f"{lesson.name}: solution sizes {sizes}"


def test_a_submission_runs_with_few_malloc_arenas(tmp_path):
    # the memory limit is on address space; glibc's many 64 MiB malloc arenas (one per thread, up
    # to 8 per core) made lesson 06b's torch cell pass or fail at 2,048 MB by chance
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nassert os.environ.get('MALLOC_ARENA_MAX') == '2', os.environ.get('MALLOC_ARENA_MAX')")])
    path = tmp_path / "arenas.ipynb"
    nbformat.write(nb, path)
    run = grading.run_submission(path, time_limit=60)
    assert not run.problem and not run.cell_errors, (run.problem, run.cell_errors)
