"""The lessons work with nbgrader (the optional `course` extra): generate, submit, autograde."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_nbgrader_metadata_is_valid(lesson):
    nb = nbformat.read(lesson, as_version=4)
    MetadataValidator().validate_nb(nb)  # raises on an invalid grade id, missing points, ...
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade ids must be unique"


def test_generate_assignment_and_autograde(tmp_path):
    # A short assignment: lesson 00's setup cell and its exercises (the full lesson works the
    # same way, only slower).
    full = nbformat.read(ROOT / "lessons" / "00_tour.ipynb", as_version=4)
    keep = [c for c in full.cells if "nbgrader" in c.metadata or "import compresslab as cl" in c.source]
    nb = nbformat.v4.new_notebook(cells=keep, metadata=full.metadata)
    course = tmp_path / "course"
    (course / "source" / "lesson00").mkdir(parents=True)
    nbformat.write(nb, course / "source" / "lesson00" / "00_tour.ipynb")
    # nbgrader runs other scripts (alembic): this Python's, also when its scripts folder is not on PATH
    env = dict(os.environ, COMPRESSLAB_STRICT="1",
               PATH=os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")]))

    def nbgrader(*args):
        r = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"], cwd=course,
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]

    nbgrader("generate_assignment", "lesson00", "--force")
    released = nbformat.read(course / "release" / "lesson00" / "00_tour.ipynb", as_version=4)
    solutions = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solutions and all("raise NotImplementedError()" in c.source for c in solutions)
    assert not any("### BEGIN SOLUTION" in c.source for c in released.cells)

    originals = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}
    for student, solved in (("ada", True), ("bob", False)):
        sub = nbformat.read(course / "release" / "lesson00" / "00_tour.ipynb", as_version=4)
        if solved:
            for c in sub.cells:
                if c.metadata.get("nbgrader", {}).get("solution"):
                    c.source = originals[c.metadata["nbgrader"]["grade_id"]]
        folder = course / "submitted" / student / "lesson00"
        folder.mkdir(parents=True)
        nbformat.write(sub, folder / "00_tour.ipynb")
    nbgrader("autograde", "lesson00", "--create", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        ada, bob = gb.find_submission("lesson00", "ada"), gb.find_submission("lesson00", "bob")
        assert (ada.score, ada.max_score) == (4.0, 4.0)   # three exercises and the quiz
        assert (bob.score, bob.max_score) == (0.0, 4.0)
