"""Lesson 05 checkers: the reference passes, each classic mistake gets its own hint."""
from __future__ import annotations

import numpy as np
import pytest

from compresslab import encode
from compresslab.exercises import lesson05 as ex


def _status(check, fn):
    return check(fn, quiet=True)


def test_relative_index_reference_passes():
    r = _status(ex.check_relative_index, lambda w, bits: encode.relative_index_encode(w, bits))
    assert r.passed, r.message


def _loop_solution(w, bits):
    values, gaps, run = [], [], 0
    last = np.flatnonzero(w)
    end = last[-1] + 1 if last.size else 0
    for x in w[:end]:
        if x != 0:
            values.append(x)
            gaps.append(run)
            run = 0
        elif run == 2 ** bits - 1:
            values.append(0.0)
            gaps.append(run)
            run = 0
        else:
            run += 1
    return np.array(values), np.array(gaps)


def test_relative_index_loop_solution_passes():
    assert _status(ex.check_relative_index, _loop_solution).passed


@pytest.mark.parametrize("mistake, words", [
    (ex._absolute, "absolute positions"),
    (ex._position_difference, "gap + 1"),
    (ex._no_fillers, "insert a filler zero"),
    (ex._clipped, "clipped"),
    (ex._wrapped, "modulo"),
    (ex._filler_one_early, "off by one"),
    (ex._trailing_fillers, "after the last non-zero"),
])
def test_relative_index_mistakes_get_hints(mistake, words):
    r = _status(ex.check_relative_index, mistake)
    assert not r.passed and words in r.message, r.message


def test_not_attempted_and_errors():
    def todo(w, bits):
        raise NotImplementedError()
    assert _status(ex.check_relative_index, todo).status == "not attempted"
    assert _status(ex.check_huffman_bits, lambda c: 1 / 0).status == "error"
    assert _status(ex.check_relative_index, lambda w, b: 3).status == "fail"


def test_huffman_reference_passes():
    r = _status(ex.check_huffman_bits, lambda c: encode.huffman_code(freqs=c).encoded_bits(
        np.repeat(np.arange(len(c)), c)))
    assert r.passed, r.message


def _heap_solution(counts):
    import heapq
    h = [c for c in counts if c > 0]
    if len(h) == 1:
        return h[0]
    heapq.heapify(h)
    total = 0
    while len(h) > 1:
        a, b = heapq.heappop(h), heapq.heappop(h)
        total += a + b
        heapq.heappush(h, a + b)
    return total


def test_huffman_heap_solution_passes():
    assert _status(ex.check_huffman_bits, _heap_solution).passed


@pytest.mark.parametrize("mistake, words", [
    (ex._entropy_bits, "entropy"),
    (ex._fixed_width, "fixed-width"),
    (ex._bytes, "not bytes"),
    (ex._sum_of_lengths, "weight each"),
    (ex._single_zero, "1 bit per symbol"),
])
def test_huffman_mistakes_get_hints(mistake, words):
    r = _status(ex.check_huffman_bits, mistake)
    assert not r.passed and words in r.message, r.message
