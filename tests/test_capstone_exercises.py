"""Lesson 05 checkers: the lesson's solution passes, every plausible wrong answer is rejected with
the hint that names its mistake (the first failing case must tell the mistakes apart)."""
from __future__ import annotations

import heapq
import inspect
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from compresslab import encode
from compresslab.exercises import lesson05 as ex


def _status(check, fn):
    return check(fn, quiet=True)


def _fails_with(check, answer, words):
    r = check(answer, quiet=True)
    assert r.status == "fail", r
    assert words in r.message, r.message
    return r


# --------------------------------------------------------------------------------------------
# The solution cells of lessons/05_capstone.ipynb, copied verbatim (between the markers): if the
# lesson's solution stops passing its checker, these tests fail.
# --------------------------------------------------------------------------------------------
def relative_index(w, bits):
    ### BEGIN SOLUTION
    max_gap = 2 ** bits - 1
    values, gaps, run = [], [], 0
    nonzero = np.flatnonzero(w)
    end = nonzero[-1] + 1 if nonzero.size else 0
    for x in w[:end]:
        if x != 0:
            values.append(x)
            gaps.append(run)
            run = 0
        elif run == max_gap:          # the gap is full: a filler zero takes this position
            values.append(0.0)
            gaps.append(max_gap)
            run = 0
        else:
            run += 1
    return np.array(values), np.array(gaps, dtype=int)
    ### END SOLUTION


def huffman_bits(counts):
    ### BEGIN SOLUTION
    heap = [int(c) for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total
    ### END SOLUTION


LESSON = Path(__file__).resolve().parents[1] / "lessons" / "05_capstone.ipynb"


def _solution_cell(grade_id):
    nb = json.loads(LESSON.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(cell["source"])


@pytest.mark.parametrize("grade_id, check, copy", [
    ("ex5_1-solution", ex.check_relative_index, relative_index),
    ("ex5_2-solution", ex.check_huffman_bits, huffman_bits),
])
def test_notebook_solution_cell_passes_and_matches_copy(grade_id, check, copy):
    source = _solution_cell(grade_id)
    function = source[source.index("def "):]          # 5.2's cell starts with `import heapq`
    assert function.strip() == inspect.getsource(copy).strip(), "the copy above is out of date"
    namespace = {"np": np}                            # the lesson imports numpy as np at the top
    exec(source, namespace)
    r = check(namespace[copy.__name__], quiet=True)
    assert r.passed, r


@pytest.mark.parametrize("check, solution", [
    (ex.check_relative_index, relative_index),
    (ex.check_huffman_bits, huffman_bits),
])
def test_lesson_solution_passes_quickly(check, solution):
    t = time.perf_counter()
    r = check(solution, quiet=True)
    assert r.passed, r
    assert time.perf_counter() - t < 0.5


def test_not_attempted_and_errors():
    def todo(w, bits):
        raise NotImplementedError()
    assert _status(ex.check_relative_index, todo).status == "not attempted"
    assert _status(ex.check_huffman_bits, lambda c: 1 / 0).status == "error"
    assert _status(ex.check_relative_index, lambda w, b: 3).status == "fail"
    _fails_with(ex.check_relative_index, lambda w, b: ([1.0], [[0], [1, 2]]), "two 1-D arrays")
    _fails_with(ex.check_huffman_bits, lambda c: None, "total bits")


# --------------------------------------------------------------------------------------------
# 5.1 relative indices with filler zeros
# --------------------------------------------------------------------------------------------
def test_relative_index_library_passes():
    r = _status(ex.check_relative_index, lambda w, bits: encode.relative_index_encode(w, bits))
    assert r.passed, r.message


def test_relative_index_lists_are_fine():
    def as_lists(w, bits):
        v, g = relative_index(w, bits)
        return v.tolist(), g.tolist()
    assert _status(ex.check_relative_index, as_lists).passed


@pytest.mark.parametrize("mistake, words", [
    (ex._absolute, "absolute positions"),
    (ex._position_difference, "gap + 1"),
    (ex._first_gap_from_zero, "previous position as -1"),
    (ex._no_fillers, "insert a filler zero"),
    (ex._clipped, "clipped"),
    (ex._wrapped, "modulo"),
    (ex._filler_takes_no_position, "drops by 2**bits"),
    (ex._filler_on_last_zero, "sits on the 2**bits-th zero"),
    (ex._filler_one_early, "you used 2**bits - 2"),
    (ex._max_gap_2_pow_bits, "not 2**bits"),
    (ex._trailing_fillers, "after the last non-zero"),
    (ex._trailing_entry, "no final entry"),
])
def test_relative_index_each_mistake_named(mistake, words):
    _fails_with(ex.check_relative_index, mistake, words)


def _loop(w, bits, *, max_gap=None, truncate=True, flush=False, count_first=False, prev_start=-1):
    """The solution's loop with one thing changed (a learner's variant)."""
    max_gap = 2 ** bits - 1 if max_gap is None else max_gap
    values, gaps, run = [], [], 0
    nonzero = np.flatnonzero(w)
    end = nonzero[-1] + 1 if nonzero.size else 0
    if prev_start == 0 and nonzero.size:           # "previous position" starts at 0
        run = -1
    for x in (w[:end] if truncate else w):
        if x != 0:
            values.append(x)
            gaps.append(run)
            run = 0
        elif count_first:                          # count the zero, then test the run
            run += 1
            if run == max_gap:
                values.append(0.0)
                gaps.append(max_gap)
                run = 0
        elif run == max_gap:
            values.append(0.0)
            gaps.append(max_gap)
            run = 0
        else:
            run += 1
    if flush and run:
        values.append(0.0)
        gaps.append(run)
    return np.array(values), np.array(gaps, dtype=int)


def _subtract_max_gap(w, bits):
    """Fillers placed by arithmetic, each taking 2**bits - 1 off the gap (not 2**bits)."""
    m = 2 ** bits - 1
    pos = np.flatnonzero(w)
    values, gaps, prev = [], [], -1
    for p in pos:
        gap = p - prev - 1
        while gap > m:
            values.append(0.0)
            gaps.append(m)
            gap -= m
        values.append(w[p])
        gaps.append(gap)
        prev = p
    return np.array(values), np.array(gaps)


@pytest.mark.parametrize("answer, words", [
    (lambda w, b: _loop(w, b, count_first=True), "a gap of exactly 2**bits - 1 still fits"),
    (lambda w, b: _loop(w, b, max_gap=2 ** b), "not 2**bits"),
    (lambda w, b: _loop(w, b, max_gap=2 ** b - 2), "you used 2**bits - 2"),
    (lambda w, b: _loop(w, b, truncate=False), "need no fillers"),
    (lambda w, b: _loop(w, b, truncate=False, flush=True), "not stored at all"),
    (lambda w, b: _loop(w, b, prev_start=0), "previous position as -1"),
    (_subtract_max_gap, "drops by 2**bits"),
    (lambda w, b: (w[w != 0], np.diff(np.flatnonzero(w), prepend=-1) - 1), "insert a filler zero"),
    (lambda w, b: (w[w != 0], np.diff(np.flatnonzero(w), prepend=-1)), "gap + 1"),
    (lambda w, b: (w[w != 0], np.flatnonzero(w)), "absolute positions"),
])
def test_relative_index_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_relative_index, answer, words)


def test_relative_index_all_zero_array_is_checked():
    def no_guard(w, bits):
        nonzero = np.flatnonzero(w)
        end = nonzero[-1] + 1                       # IndexError on an all-zero array
        return relative_index(w[:end], bits)
    r = _status(ex.check_relative_index, no_guard)
    assert r.status == "error" and "all-zero array" in r.message, r.message


# --------------------------------------------------------------------------------------------
# 5.2 Huffman encoded size
# --------------------------------------------------------------------------------------------
def test_huffman_library_passes():
    r = _status(ex.check_huffman_bits, lambda c: encode.huffman_code(freqs=c).encoded_bits(
        np.repeat(np.arange(len(c)), c)))
    assert r.passed, r.message


@pytest.mark.parametrize("mistake, words", [
    (ex._single_zero, "1 bit per symbol"),
    (ex._entropy_bits, "entropy bound"),
    (ex._entropy_ceil, "rounded the entropy bound"),
    (ex._shannon_lengths, "Shannon"),
    (ex._fixed_width, "fixed-width"),
    (ex._fixed_width_alphabet, "fixed-width"),
    (ex._bytes, "not bytes"),
    (ex._bytes_floor, "not bytes"),
    (ex._bytes_float, "not bytes"),
    (ex._average_length, "average code length"),
    (ex._sum_of_lengths, "weight each"),
    (ex._zeros_kept, "count 0"),
])
def test_huffman_each_mistake_named(mistake, words):
    _fails_with(ex.check_huffman_bits, mistake, words)


def _merge_sum(heap):
    """Sum of the merged counts of Huffman's algorithm (each merge adds one bit to its members)."""
    heap = list(heap)
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total


def _no_lone_symbol_rule(counts):
    return _merge_sum(int(c) for c in counts if c > 0)


def _zeros_in_heap(counts):
    heap = [int(c) for c in counts]
    return sum(heap) if sum(c > 0 for c in heap) == 1 else _merge_sum(heap)


def _entropy(counts):
    c = np.array([x for x in counts if x > 0], dtype=float)
    return float(-(c * np.log2(c / c.sum())).sum())


@pytest.mark.parametrize("answer, words", [
    (_no_lone_symbol_rule, "1 bit per symbol"),
    (_zeros_in_heap, "count 0"),
    (_entropy, "entropy bound"),
    (lambda c: sum(c) * math.ceil(math.log2(len(c))), "fixed-width"),
    (lambda c: huffman_bits(c) // 8, "not bytes"),
    (lambda c: math.ceil(huffman_bits(c) / 8), "not bytes"),
    (lambda c: huffman_bits(c) / sum(c), "average code length"),
    (lambda c: sum(int(x) * math.ceil(math.log2(sum(c) / x)) for x in c if x > 0), "Shannon"),
])
def test_huffman_plausible_wrong_answers(answer, words):
    _fails_with(ex.check_huffman_bits, answer, words)
