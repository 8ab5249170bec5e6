"""Lessons 05a and 05b checkers: the lesson's solution passes, every plausible wrong answer is rejected with
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

import compresslab as cl
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
# The solution cells of lessons/05a_deep_compression.ipynb and 05b_capstone.ipynb, copied verbatim
# (between the markers): if a lesson's solution stops passing its checker, these tests fail.
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


LESSONS = Path(__file__).resolve().parents[1] / "lessons"
LESSON_A = LESSONS / "05a_deep_compression.ipynb"       # exercises 5.1, 5.2 and quiz 5a
LESSON_B = LESSONS / "05b_capstone.ipynb"               # exercise 5.3 and quiz 5b


def _solution_cell(grade_id, lesson=LESSON_A):
    nb = json.loads(lesson.read_text(encoding="utf-8"))
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
def test_relative_index_library_is_the_reference(library_answers_allowed):
    r = _status(ex.check_relative_index, lambda w, bits: encode.relative_index_encode(w, bits))
    assert r.passed, r.message


def test_relative_index_answer_calling_the_library_is_refused():
    r = _status(ex.check_relative_index, lambda w, bits: encode.relative_index_encode(w, bits))
    assert not r.passed and "calls cl.encode.relative_index_encode" in r.message


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
def test_relative_index_each_mistake_named(mistake, words, library_answers_allowed):
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
def test_huffman_library_is_the_reference(library_answers_allowed):
    r = _status(ex.check_huffman_bits, lambda c: encode.huffman_code(freqs=c).encoded_bits(
        np.repeat(np.arange(len(c)), c)))
    assert r.passed, r.message


def test_huffman_answer_calling_the_library_is_refused():
    r = _status(ex.check_huffman_bits, lambda c: encode.huffman_code(freqs=c).encoded_bits(
        np.repeat(np.arange(len(c)), c)))
    assert not r.passed and "calls cl.encode.huffman_code" in r.message


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
def test_huffman_each_mistake_named(mistake, words, library_answers_allowed):
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


# --------------------------------------------------------------------------------------------
# 5.3 your own Deep Compression: graded from the saved file
# --------------------------------------------------------------------------------------------
def my_deep_compression(dense, digits, path):
    ### BEGIN SOLUTION
    X, y = digits.X_train, digits.y_train
    acc_val = cl.nn.evaluate(dense, digits.X_val, digits.y_val)
    # distil into a small student, prune it, share its weights; the smallest candidate first
    for hidden, sparsity in ((64, 0.5), (96, 0.7), (128, 0.8)):
        model = cl.nn.mlp((64, hidden, 10), seed=1)
        cl.distill.train_student(model, dense, X, y, T=4.0, alpha=0.9, epochs=60, lr=3e-3, seed=0,
                                 progress=False)
        cl.prune.agp(model, X, y, sparsity, method="global", epochs=30, lr=1e-3, seed=0, progress=False)
        linear = [layer for layer in model.layers if isinstance(layer, cl.nn.Linear)]
        books = []
        for layer in linear:
            codebook, index = cl.quant.kmeans(layer.weight, 4, mask=layer.masks["weight"], seed=0)
            layer.weight = cl.quant.kmeans_reconstruct(codebook, index)
            books.append((codebook, index))
        cl.quant.finetune_codebooks(model, books, X, y, epochs=5, lr=1e-4, seed=0, progress=False)
        for layer in linear:
            layer.bias = layer.bias.astype(np.float16).astype(np.float32)   # as they are stored
        if acc_val - cl.nn.evaluate(model, digits.X_val, digits.y_val) <= 0.005:
            break                          # the smallest candidate within 0.5 point on validation
    packs = [cl.encode.pack_model(model, gap_bits=g, codebook=True, huffman=True, bias_dtype="float16")
             for g in range(3, 9)]
    cl.encode.save(min(packs, key=cl.encode.file_size), path)
    ### END SOLUTION


@pytest.fixture(scope="module")
def capstone():
    """The lesson's digits and dense 64-300-100-10 baseline (trained as in section 3)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        digits = cl.data.load_digits(seed=0)
        dense = cl.nn.mlp((64, 300, 100, 10), seed=0)
        cl.nn.fit(dense, digits.X_train, digits.y_train, seed=0, progress=False)
    return dense, digits


def _check_capstone(fn, capstone, tmp_path):
    dense, digits = capstone
    return ex.check_capstone(fn, dense, digits, tmp_path / "mine.npz", quiet=True)


def _capstone_fails(fn, capstone, tmp_path, *words):
    r = _check_capstone(fn, capstone, tmp_path)
    assert r.status == "fail", r
    for w in words:
        assert w in r.message, r.message
    return r


def test_capstone_notebook_solution_matches_copy():
    source = _solution_cell("ex5_3-solution", LESSON_B)
    assert source.strip() == inspect.getsource(my_deep_compression).strip(), "the copy above is out of date"


def test_capstone_lesson_solution_passes(capstone, tmp_path):
    from threadpoolctl import threadpool_limits
    dense, digits = capstone
    before = [layer.weight.copy() for layer in dense.layers if isinstance(layer, cl.nn.Linear)]
    t = time.perf_counter()
    with threadpool_limits(1):
        r = _check_capstone(my_deep_compression, capstone, tmp_path)
    assert r.passed, r
    assert time.perf_counter() - t < 20
    path = tmp_path / "mine.npz"
    assert 4 * cl.nn.num_params(dense) / path.stat().st_size >= ex.CAPSTONE_RATIO
    # the function got a copy: the lesson's dense model is unchanged
    assert all(np.array_equal(a, layer.weight) for a, layer in
               zip(before, [la for la in dense.layers if isinstance(la, cl.nn.Linear)]))


def _save_dense(dense, digits, path):
    cl.encode.save(dense, path)                                  # no compression at all


def _lesson_pipeline(dense, digits, path, bias_dtype="float16"):
    """Sections 4-6 of the lesson: 96 % AGP, 4/3/4-bit k-means, 7-bit gaps: about 48x."""
    X, y = digits.X_train, digits.y_train
    m = dense.copy()
    cl.prune.agp(m, X, y, 0.96, layers=["0.weight", "2.weight"], epochs=20, lr=3e-3, seed=0, progress=False)
    cl.prune.apply_masks(m, cl.prune.model_masks(m, 0.8, layers=["4.weight"]))
    cl.nn.fit(m, X, y, epochs=3, lr=3e-3, seed=0, progress=False)
    for i, bits in ((0, 4), (2, 3), (4, 4)):
        codebook, index = cl.quant.kmeans(m[i].weight, bits, mask=m[i].masks["weight"], seed=0)
        m[i].weight = cl.quant.kmeans_reconstruct(codebook, index)
    cl.encode.save(m, path, codebook=True, huffman=True, gap_bits=7, bias_dtype=bias_dtype)


def _over_pruned(dense, digits, path):
    """99 % of every weight removed in one shot, shared, saved: tiny, but never retrained."""
    m = dense.copy()
    cl.prune.apply_masks(m, cl.prune.model_masks(m, 0.99, method="global"))
    for layer in m.layers:
        if isinstance(layer, cl.nn.Linear):
            codebook, index = cl.quant.kmeans(layer.weight, 3, mask=layer.masks["weight"], seed=0)
            layer.weight = cl.quant.kmeans_reconstruct(codebook, index)
    cl.encode.save(m, path, bias_dtype="float16")


def _saves_nothing(dense, digits, path):
    dense.copy()


def _returns_model(dense, digits, path):
    return dense.copy()


def _truncated(dense, digits, path):
    _over_pruned(dense, digits, path)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def _tampered(dense, digits, path):
    _over_pruned(dense, digits, path)
    blob = bytearray(encode.load_packed(path).to_bytes())
    blob[len(blob) // 2] ^= 0x01                                 # a flipped bit, valid container
    np.savez(path, compresslab=np.frombuffer(bytes(blob), np.uint8))


def _own_format(dense, digits, path):
    np.savez(path, **{f"w{i}": layer.weight for i, layer in enumerate(dense.layers)
                      if isinstance(layer, cl.nn.Linear)})


def _wrong_model(dense, digits, path):
    cl.encode.save(cl.nn.mlp((32, 10), seed=0), path)


@pytest.mark.parametrize("fn, words", [
    (_save_dense, ("target is 60x", "2.weight values (float32)", "stored dense as float32")),
    (_lesson_pipeline, ("x smaller", "2.weight gaps", "prune more")),
    (lambda d, g, p: _lesson_pipeline(d, g, p, bias_dtype="float32"), ("0.bias raw (float32)", "float16")),
    (_over_pruned, ("points below the dense", "training split", "retrain after pruning")),
    (_saves_nothing, ("no file was written",)),
    (_returns_model, ("returned a model but wrote no file",)),
    (_truncated, ("corrupt", "truncated")),
    (_tampered, ("corrupt", "checksum")),
    (_own_format, ("not a compresslab model", "does not hold a single uint8 array", "cl.encode.save")),
    (_wrong_model, ("cannot classify the digits",)),
], ids=["dense", "lesson-48x", "float32-biases", "over-pruned", "nothing", "returned", "truncated",
        "tampered", "own-format", "wrong-model"])
def test_capstone_wrong_answers_get_their_hint(fn, words, capstone, tmp_path):
    _capstone_fails(fn, capstone, tmp_path, *words)


def test_capstone_stale_file_does_not_count(capstone, tmp_path):
    (tmp_path / "mine.npz").write_bytes(b"left over from an earlier run")
    _capstone_fails(_saves_nothing, capstone, tmp_path, "no file was written")


def test_capstone_not_attempted_and_errors(capstone, tmp_path):
    def todo(dense, digits, path):
        raise NotImplementedError()
    assert _check_capstone(todo, capstone, tmp_path).status == "not attempted"
    r = _check_capstone(lambda d, g, p: 1 / 0, capstone, tmp_path)
    assert r.status == "error" and "ZeroDivisionError" in r.message


def test_capstone_accuracy_hint_tells_underfit_from_overfit(capstone):
    dense, digits = capstone
    pruned = dense.copy()
    cl.prune.apply_masks(pruned, cl.prune.model_masks(pruned, 0.5, method="global"))
    fits = ex._accuracy_hint(pruned, dense, digits, 0.95, 0.978)    # fits the training split
    assert "2.8 points below" in fits and "validation split" in fits and "retrain" not in fits
    assert "prune the sensitive layers less" in fits
    blank = cl.nn.mlp((64, 300, 100, 10), seed=5)                  # untrained: fits nothing
    cl.prune.apply_masks(blank, cl.prune.model_masks(blank, 0.5, method="global"))
    under = ex._accuracy_hint(blank, dense, digits, 0.1, 0.978)
    assert "training split it reaches only" in under and "retrain after pruning" in under


def test_capstone_accuracy_hint_does_not_speak_of_pruning_an_unpruned_model(capstone):
    dense, digits = capstone
    fits = ex._accuracy_hint(dense, dense, digits, 0.95, 0.978)     # nothing pruned
    assert "nothing is pruned" in fits and "more hidden units" in fits
    assert "prune the sensitive layers less" not in fits and "validation split" in fits
    blank = cl.nn.mlp((64, 32, 10), seed=5)                         # a small student, untrained
    under = ex._accuracy_hint(blank, dense, digits, 0.1, 0.978)
    assert "train it longer" in under and "retrain after pruning" not in under


def _trains_on_test(dense, digits, path):
    """Fits the dense model on the training AND test splits: must not be possible."""
    X = np.concatenate([digits.X_train, digits.X_test])
    y = np.concatenate([digits.y_train, digits.y_test])
    cl.nn.fit(dense, X, y, epochs=1, seed=0, progress=False)
    cl.encode.save(dense, path)


def _images_of_test(dense, digits, path):
    digits.images("test")


@pytest.mark.parametrize("fn", [_trains_on_test, _images_of_test], ids=["X_test", "images"])
def test_capstone_function_never_sees_the_test_split(fn, capstone, tmp_path):
    r = _check_capstone(fn, capstone, tmp_path)
    assert r.status == "error" and "AttributeError" in r.message, r
    assert "test split is held back" in r.message and "digits.X_val" in r.message


def test_capstone_function_gets_train_and_val_copies(capstone, tmp_path):
    dense, digits = capstone
    seen = {}

    def spy(dense_copy, data, path):
        seen["data"] = data
        data.X_train[:] = 0                                      # must not reach the lesson's data
        cl.encode.save(dense_copy, path)

    _check_capstone(spy, capstone, tmp_path)
    data = seen["data"]
    assert np.array_equal(data.y_val, digits.y_val) and data.images("val").shape == (360, 1, 8, 8)
    assert not hasattr(data, "X_test") and "test held back" in repr(data)
    assert digits.X_train.any()


@pytest.mark.parametrize("part, coding, words", [
    ("raw", "float16", "cl.prune.shrink"),
    ("values", "packed (4-bit symbols)", "Huffman-code the indices"),
    ("gaps", "packed (5-bit symbols)", "Huffman-code the gaps"),
    ("values_table", "code lengths", "one code length per possible symbol"),
    ("codebook", "float32", "smaller codebook"),
    ("header", "", "fixed cost"),
])
def test_capstone_every_part_has_advice(part, coding, words):
    row = {"param": "0.weight", "part": part, "coding": coding, "bytes": 1}
    assert words in ex._part_advice(row, {"sparse": True})


# --------------------------------------------------------------------------------------------
# 5.2: all-zero counts
# --------------------------------------------------------------------------------------------
def test_huffman_no_symbols_must_return_zero():
    def none_for_empty(counts):
        return huffman_bits(counts) if any(counts) else None
    _fails_with(ex.check_huffman_bits, none_for_empty, "return 0 bits")
    r = _status(ex.check_huffman_bits, lambda c: huffman_bits(c) if any(c) else [][0])
    assert r.status == "error" and "all-zero counts" in r.message and "return 0" in r.message
    _fails_with(ex.check_huffman_bits, lambda c: huffman_bits(c) if any(c) else 1, "return 0 bits")


# --------------------------------------------------------------------------------------------
# Quizzes
# --------------------------------------------------------------------------------------------
QUIZZES = {
    "a": (ex.check_quiz_a, {1: 2, 2: "c", 3: "d"}, LESSON_A, "quiz5a-solution", [(1, 3), (1, 1)]),
    "b": (ex.check_quiz_b, {1: "b", 2: "c", 3: "b", 4: "a"}, LESSON_B, "quiz5b-solution", []),
}


def test_every_checker_names_its_half_of_lesson_05():
    from compresslab.exercises._core import REGISTRY
    lessons = {e: REGISTRY[e]["lesson"] for e in ("5.1", "5.2", "5.3", "5a.quiz", "5b.quiz")}
    assert lessons == {"5.1": "05a_deep_compression", "5.2": "05a_deep_compression",
                       "5.3": "05b_capstone", "5a.quiz": "05a_deep_compression",
                       "5b.quiz": "05b_capstone"}
    assert "5.quiz" not in REGISTRY


@pytest.mark.parametrize("half", QUIZZES)
def test_quiz_right_answers_pass_and_match_the_lesson(half):
    check, answers, lesson, grade_id, _ = QUIZZES[half]
    assert 3 <= len(check.questions) <= 5
    assert check(lambda: dict(answers), quiet=True).passed
    source = _solution_cell(grade_id, lesson)
    namespace = {}
    exec(source, namespace)
    assert namespace["quiz_answers"]() == answers
    nb = json.loads(lesson.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert check.markdown() in text


@pytest.mark.parametrize("half, number, wrong", [
    (half, q, letter) for half, (check, _, _, _, numeric) in QUIZZES.items()
    for q, question in enumerate(check.questions, 1) if question.options
    for letter in question.options if letter != question.answer] + [
    ("a", q, wrong) for q, wrong in QUIZZES["a"][4]])
def test_quiz_each_wrong_answer_gets_its_hint(half, number, wrong):
    check, answers, *_ = QUIZZES[half]
    question = check.questions[number - 1]
    r = check(lambda: {**answers, number: wrong}, quiet=True)
    assert r.status == "fail"
    hint = question.why["number"] if question.options is None else question.why[wrong]
    assert f"Q{number}: " in r.message and hint in r.message
    n = len(check.questions)
    assert f"{n - 1} of {n} right" in r.message


@pytest.mark.parametrize("half", QUIZZES)
def test_quiz_hints_do_not_give_the_answer_away(half):
    for q in QUIZZES[half][0].questions:
        if q.options:
            right = q.options[q.answer]
            assert all(right not in why for why in q.why.values())
            assert set(q.why) == set(q.options) - {q.answer}
