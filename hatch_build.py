"""Wheel build hook: the wheel ships the *student* edition of the lessons.

The repository's ``lessons/`` hold the instructor edition (with solutions); a learner who installs
the wheel gets each notebook with its solutions stripped (``compresslab.course.strip_solutions``,
loaded from its file: the build environment has hatchling, not compresslab's dependencies),
outputs cleared, as ``compresslab/lessons/``. Other files of ``lessons/`` are shipped as they are.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _course(root: Path):
    spec = importlib.util.spec_from_file_location("_compresslab_course", root / "compresslab" / "course.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod            # its dataclasses look their module up while defined
    spec.loader.exec_module(mod)
    return mod


def student_edition(nb: dict, strip) -> dict:
    """The student edition of a notebook as plain JSON (what ``course.student_notebook`` does)."""
    for i, cell in enumerate(nb.get("cells", [])):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if "### BEGIN SOLUTION" in src or "### END SOLUTION" in src:
            src = strip(src, markdown=cell.get("cell_type") == "markdown", where=f"cell {i}")
        cell["source"] = src
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


class StudentLessonsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        strip = _course(root).strip_solutions
        self._tmp = tempfile.TemporaryDirectory(prefix="compresslab-student-lessons-")
        out = Path(self._tmp.name)
        for item in sorted((root / "lessons").iterdir()):
            if not item.is_file():
                continue
            dest = f"compresslab/lessons/{item.name}"
            if item.suffix == ".ipynb":
                nb = student_edition(json.loads(item.read_text(encoding="utf-8")), strip)
                (out / item.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
                build_data["force_include"][str(out / item.name)] = dest
            else:
                build_data["force_include"][str(item)] = dest

    def finalize(self, version, build_data, artifact_path):
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
