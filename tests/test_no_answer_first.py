"""No answer before its exercise: a lesson may show the source of a library function (``f??``,
``inspect.getsource(f)``) that solves an exercise only after that exercise's checker cell, in
the instructor edition and in the student edition made from it."""
import re
from pathlib import Path

import nbformat
import pytest

from compresslab import course

LESSONS = Path(__file__).resolve().parents[1] / "lessons"

# exercise -> the library functions whose source is its answer
ANSWERS = {
    "0.1": {"nbytes", "num_params"}, "0.2": {"evaluate", "predict"},
    "0.3": {"Linear", "ReLU", "cross_entropy", "backward", "log_softmax"},
    "1.1": {"magnitude", "count_to_prune"}, "1.2": {"structured"}, "1.3": {"shrink"},
    "1.4": {"apply_masks", "step"}, "1.5": {"sensitivity_scan", "max_sparsity"}, "1.6": {"polynomial_decay", "agp"},
    "2.1": {"quantize"}, "2.2": {"qparams", "scale_zero_point"}, "2.3": {"quantize", "scale_zero_point"},
    "2.4": {"quantize_multiplier", "requantize"}, "2.5": {"FakeQuant", "fake_quantize", "forward", "backward"},
    "3.1": {"kd_loss"}, "3.2": {"kd_loss"}, "3.3": {"kd_loss"},
    "4.1": {"break_even"}, "4.2": {"csr_decode"}, "4.3": {"amdahl"}, "4.4": {"arithmetic_intensity", "layer_costs"},
    "4.5": {"compare", "_bootstrap_ratio"},
    "5.1": {"relative_index_encode"}, "5.2": {"huffman_lengths", "huffman_code", "huffman_encode"},
    "6.1": {"bits_per_weight"}, "6.2": {"q4_0", "gguf_quantize"},
    "6.3": {"wanda", "wanda_scores", "magnitude_per_row"},
    "7.1": {"accept_reject"},
}
_SHOWN = re.compile(r"([A-Za-z_][\w.]*)\?\?|\?\?([A-Za-z_][\w.]*)|getsource\(\s*([A-Za-z_][\w.]*)")


def shown_sources(nb):
    """(cell index, last name component) for every function whose source a cell shows."""
    for i, cell in enumerate(nb.cells):
        for m in _SHOWN.finditer(cell.source):
            name = next(g for g in m.groups() if g)
            yield i, name.rsplit(".", 1)[-1]


def check_cells(nb):
    """exercise number -> index of its checker cell (nbgrader grade_id ``exN_M-check``)."""
    out = {}
    for i, cell in enumerate(nb.cells):
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        m = re.fullmatch(r"ex(\d+)_(\d+)-check", gid)
        if m:
            out[f"{int(m.group(1))}.{m.group(2)}"] = i
    return out


def early_answers(nb):
    checks = check_cells(nb)
    return [(ex, i, name) for i, name in shown_sources(nb) for ex, at in checks.items()
            if name in ANSWERS.get(ex, ()) and i < at]


@pytest.mark.parametrize("path", sorted(LESSONS.glob("[0-9][0-9]*_*.ipynb")), ids=lambda p: p.stem)
def test_no_source_of_an_answer_before_its_exercise(path):
    nb = nbformat.read(path, as_version=4)
    assert check_cells(nb), "every lesson has exercises"
    assert not early_answers(nb), f"{path.name} shows an answer's source before its exercise"
    assert not early_answers(course.student_notebook(nb))


def test_the_finder_sees_a_source_shown_too_early():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("prune.magnitude??"),
        nbformat.v4.new_code_cell("check(mask)", metadata={"nbgrader": {"grade_id": "ex1_1-check"}}),
        nbformat.v4.new_code_cell("import inspect; print(inspect.getsource(cl.prune.structured))"),
        nbformat.v4.new_code_cell("check(rows)", metadata={"nbgrader": {"grade_id": "ex1_2-check"}}),
    ])
    assert early_answers(nb) == [("1.1", 0, "magnitude"), ("1.2", 2, "structured")]
