"""compresslab.quant.gguf against llama.cpp's Python package ``gguf`` (the oracle).

Block formats: the raw bytes of Q8_0 / Q4_0 / Q4_1 equal ``gguf.quants.quantize``'s, bit for bit,
on random and adversarial blocks; dequantization equals ``gguf.quants.dequantize`` to the bit.
Files: ``gguf.GGUFReader`` reads what ``write_gguf`` writes (and ``gguf.GGUFWriter`` writes the
same bytes), ``read_gguf`` reads what ``gguf.GGUFWriter`` writes, and damaged files give
ValueError."""
import math
import platform
import struct
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compresslab.quant import gguf as G

gguf = pytest.importorskip("gguf")
T = gguf.GGMLQuantizationType
BLOCKS = ("Q8_0", "Q4_0", "Q4_1")
ALL = (*BLOCKS, "F16", "F32")
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def ref_quantize(x, qtype):
    """gguf's bytes; its RuntimeWarnings (overflow, invalid casts) silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return gguf.quants.quantize(np.asarray(x, np.float32), T[qtype])


def ref_dequantize(raw, qtype):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return gguf.quants.dequantize(raw, T[qtype])


def assert_same_bytes(x, qtype):
    ours, ref = G.gguf_quantize(x, qtype), ref_quantize(x, qtype)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert ours.tobytes() == ref.tobytes(), f"{qtype}: {np.asarray(x).ravel()[:6]}"
    back = G.gguf_dequantize(ours, qtype)
    assert back.dtype == np.float32
    assert back.tobytes() == ref_dequantize(ref, qtype).tobytes()        # signs of zeros too
    return ours


def assert_same_bytes_or_overflow(x, qtype):
    """Our bytes equal gguf's, or we raise exactly where gguf stores an infinite float16."""
    try:
        assert_same_bytes(x, qtype)
    except ValueError as exc:
        assert "beyond float16's range" in str(exc)
        ref = ref_quantize(x, qtype)
        head = {"Q4_1": 4}.get(qtype, 2)
        scales = ref.reshape(-1, G.GGUF_TYPES[qtype][2])[:, :head].copy().view(np.float16)
        assert np.isinf(scales).any()


def decode(x, qtype):
    """The readable form: d * q, d * (q - 8), d * q + m from the block functions."""
    if qtype == "Q8_0":
        d, q = G.q8_0(x)
        return (d.astype(np.float32)[..., None] * q.astype(np.float32)).reshape(np.shape(x))
    if qtype == "Q4_0":
        d, q = G.q4_0(x)
        return (d.astype(np.float32)[..., None] * (q.astype(np.float32) - 8)).reshape(np.shape(x))
    d, m, q = G.q4_1(x)
    return (d.astype(np.float32)[..., None] * q + m.astype(np.float32)[..., None]).reshape(np.shape(x))


# ------------------------------------------------------------------ tables
def test_type_table_matches_ggml():
    for name, (tid, block, nbytes) in G.GGUF_TYPES.items():
        assert T[name] == tid
        assert gguf.GGML_QUANT_SIZES[T[name]] == (block, nbytes)
        assert G.FILE_TYPES[name] == gguf.LlamaFileType[{"F32": "ALL_F32", "F16": "MOSTLY_F16"}.get(
            name, f"MOSTLY_{name}")]
    assert [G.bits_per_weight(t) for t in ALL] == [8.5, 4.5, 5.0, 16.0, 32.0]


# ------------------------------------------------------------------ block formats: random data
@pytest.mark.parametrize("qtype", ALL)
def test_bytes_equal_gguf_on_seeded_data(qtype):
    g = np.random.default_rng(0)
    cases = [g.normal(0, 1, (7, 256)), g.normal(0, 0.02, (3, 4, 64)), g.uniform(-3, 1, (5, 96)),
             g.uniform(0.5, 2, (2, 32)), -g.uniform(0.5, 2, (2, 32)),
             g.standard_t(1.5, (9, 128)).clip(-6e4, 6e4),            # heavy tails: outliers
             g.normal(0, 1, (4, 64)) * 10.0 ** g.integers(-30, 4, (4, 1)),   # scales over decades
             g.normal(0, 1, 32)]                                      # a single 1-D row
    for x in cases:
        x = x.astype(np.float32)
        ours = assert_same_bytes(x, qtype)
        if qtype in BLOCKS:
            assert ours.shape == (*x.shape[:-1], x.shape[-1] // 32 * G.GGUF_TYPES[qtype][2])
            np.testing.assert_array_equal(decode(x, qtype), G.gguf_dequantize(ours, qtype))


finite32 = st.floats(-6e4, 6e4, width=32, allow_subnormal=True)
# dyadic values: exact ties x / d = k + 1/2 are common among them
dyadic = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 0.25, -0.25, 0.125, 0.0625, 0.1875, -0.1875,
                          0.3125, 0.75, -0.75, 2.0, -2.0, 0.9375, 0.46875, 0.53125])


@settings(max_examples=150, deadline=None)
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.sampled_from([32, 64])), elements=finite32),
       scale=st.sampled_from([1.0, 2.0 ** -20, 2.0 ** -126, 1e-3, 300.0]))
def test_bytes_equal_gguf_hypothesis(x, scale):
    x = (x * np.float32(scale)).astype(np.float32)
    if not X86 and (np.abs(x).reshape(-1, 32).max(axis=1) < 1e-37).any():
        return                   # blocks below 2**-128 scale: gguf's codes are the CPU's cast of inf
    for qtype in BLOCKS:
        assert_same_bytes_or_overflow(x, qtype)


@settings(max_examples=150, deadline=None)
@given(x=hnp.arrays(np.float32, (2, 32), elements=dyadic), scale=st.sampled_from([1.0, 3.0, 2.0 ** -10]))
def test_bytes_equal_gguf_on_ties_hypothesis(x, scale):
    for qtype in BLOCKS:
        assert_same_bytes((x * np.float32(scale)).astype(np.float32), qtype)


# ------------------------------------------------------------------ block formats: corner cases
def block(*pairs, fill=0.0):
    """A 32-value block, ``fill`` everywhere but at the given (index, value) pairs."""
    x = np.full(32, fill, np.float32)
    for i, v in pairs:
        x[i] = v
    return x


@pytest.mark.parametrize("qtype", BLOCKS)
def test_corner_blocks_equal_gguf(qtype):
    ramp = np.linspace(-1, 1, 32, dtype=np.float32)
    cases = {
        "all zero": block(), "all -0.0": block(fill=-0.0), "-0.0 first": block((0, -0.0)),
        "single +": block((5, 0.7)), "single -": block((31, -3.0)), "single first": block((0, 1e-3)),
        "constant +": block(fill=0.3), "constant -": block(fill=-2.5), "constant tiny": block(fill=1e-8),
        "+max first": block((0, 1.0), (1, -1.0), (2, 0.5)),
        "-max first": block((0, -1.0), (1, 1.0), (2, 0.5)),
        "ramp": ramp, "reversed ramp": ramp[::-1].copy(),
        # exact ties: d = -1/8 (Q4_0), 1/15 or 1/127 multiples; x / d lands on k + 1/2
        "Q4_0 ties": block((0, -1.0), *[(i, (i - 16) / 16) for i in range(1, 32)]),
        "Q8_0 ties": block((0, 127.0), *[(i, i + 0.5) for i in range(1, 32)]),
        "Q4_1 ties": block((0, 0.0), (1, 15.0), *[(i, (i % 15) + 0.5) for i in range(2, 32)]),
        "f16 subnormal scale": ramp * np.float32(3e-6),
        "f32 subnormal scale": ramp * np.float32(1e-36),
        "huge within f16": ramp * np.float32(6.0e4),
        "mixed magnitudes": block((3, 5e4), (4, -1e-30), (9, 1e-7)),
    }
    for x in cases.values():
        assert_same_bytes(x.reshape(1, 32), qtype)


@pytest.mark.parametrize("qtype", BLOCKS)
def test_max_keeps_its_sign_and_ties_round_up(qtype):
    if qtype == "Q4_0":
        d, q = G.q4_0(block((0, 2.0), (1, -2.0), (2, -0.125)))      # max = +2 (first): d = -0.25
        assert d[0] == np.float16(-0.25) and q[0, 0] == 0 and q[0, 1] == 15   # -max -> 16, clipped
        assert q[0, 2] == 9                                        # x / d = 0.5 -> 1 (half up) + 8
        d, q = G.q4_0(block((0, -2.0), (1, 2.0)))                  # max = -2 (first): d = +0.25
        assert d[0] == np.float16(0.25) and q[0, 0] == 0 and q[0, 1] == 15
    elif qtype == "Q4_1":
        d, m, q = G.q4_1(block((0, -1.0), (1, 14.0), (2, 0.5), (3, 1.5)))   # d = 1, m = -1
        assert (d[0], m[0]) == (1.0, -1.0) and q[0, :4].tolist() == [0, 15, 2, 3]   # 1.5 -> 2, 2.5 -> 3
    else:
        d, q = G.q8_0(block((0, 127.0), (1, 2.5), (2, -2.5), (3, -127.0)))   # d = 1
        assert d[0] == 1.0 and q[0, :4].tolist() == [127, 3, -3, -127]       # half away from zero


def test_codes_and_scales_have_the_documented_shapes_and_ranges():
    x = np.random.default_rng(1).normal(size=(3, 5, 64)).astype(np.float32)
    d, q = G.q8_0(x)
    assert d.dtype == np.float16 and d.shape == (3, 5, 2) and q.dtype == np.int8 and q.shape == (3, 5, 2, 32)
    assert np.abs(q).max() == 127
    d, q = G.q4_0(x)
    assert d.shape == (3, 5, 2) and q.dtype == np.uint8 and q.max() <= 15 and (q == 0).any()
    d, m, q = G.q4_1(x)
    assert m.dtype == np.float16 and q.max() == 15 and q.min() == 0


def test_scale_below_float32_reciprocal_gives_codes_zero():
    """|d| < 2**-128: 1/d overflows; gguf on x86 stores codes 0 (the cast of inf), so do we."""
    x = (np.linspace(-1, 1, 32) * 1e-39).astype(np.float32).reshape(1, 32)
    for qtype, head in (("Q8_0", 2), ("Q4_0", 2), ("Q4_1", 4)):
        ours = G.gguf_quantize(x, qtype)
        assert not ours[0, head:].any()
        ref = ref_quantize(x, qtype)
        assert ours[0, :head].tobytes() == ref[0, :head].tobytes()       # the float16 scale (zero)
        assert (G.gguf_dequantize(ours, qtype) == ref_dequantize(ref, qtype)).all()    # all zero
        if X86:
            assert ours.tobytes() == ref.tobytes()


@pytest.mark.parametrize("qtype, ok, too_big", [
    ("Q4_0", 8 * 65519.0, 8 * 65520.0),           # d = max / -8 rounds to float16 inf at 65520
    ("Q8_0", 127 * 65519.0, 127 * 65520.0),
    ("Q4_1", 65519.0, 65520.0),                   # m = min = -65520 overflows float16
    ("F16", 65519.0, 65520.0),
])
def test_float16_overflow_is_an_error_where_gguf_stores_inf(qtype, ok, too_big):
    x = -np.linspace(0, 1, 32, dtype=np.float32).reshape(1, 32)
    assert_same_bytes(x * np.float32(ok), qtype)                      # the largest that fits
    bad = x * np.float32(too_big)
    assert not np.isfinite(ref_dequantize(ref_quantize(bad, qtype), qtype)).all()   # gguf: inf scale
    with pytest.raises(ValueError, match="beyond float16's range"):
        G.gguf_quantize(bad, qtype)


def test_q4_1_range_overflow_is_an_error():
    x = block((0, -6e4), (1, 6e4)).reshape(1, 32) * np.float32(20)       # (max - min) / 15 = 160000
    with pytest.raises(ValueError, match="float16"):
        G.q4_1(x)


# ------------------------------------------------------------------ dequantize
@pytest.mark.parametrize("qtype", ALL)
def test_dequantize_equals_gguf_on_arbitrary_bytes(qtype):
    g = np.random.default_rng(2)
    _, block_size, nbytes = G.GGUF_TYPES[qtype]
    raw = g.integers(0, 256, (6, 4 * nbytes), dtype=np.uint8)
    scales = g.normal(0, 10, (6, 4, 2)).astype(np.float16)             # finite scales (and mins)
    b = raw.reshape(6, 4, nbytes)
    if qtype in BLOCKS:
        b[..., :2] = scales[..., :1].view(np.uint8)
        if qtype == "Q4_1":
            b[..., 2:4] = scales[..., 1:].view(np.uint8)
    else:
        raw = G.gguf_quantize(g.normal(size=(6, 8)), qtype)
    ours = G.gguf_dequantize(raw, qtype)
    assert ours.tobytes() == ref_dequantize(raw, qtype).tobytes()
    if qtype in ("F16", "F32"):                                        # bytes accepted too
        assert G.gguf_dequantize(raw.view(np.uint8), qtype).tobytes() == ours.tobytes()


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("fn", [G.q8_0, G.q4_0, G.q4_1, lambda x: G.gguf_quantize(x, "Q4_0")])
def test_bad_input_is_a_clear_error(fn):
    ok = np.zeros((2, 32), np.float32)
    for bad, match in ((np.where(np.arange(32) == 3, np.nan, ok), "NaN"),
                       (np.where(np.arange(32) == 3, np.inf, ok), "NaN or infinite"),
                       (np.zeros((2, 33)), "multiple of 32"), (np.float32(1.0), "multiple of 32"),
                       (np.zeros((2, 0)), "empty"), (np.array([[1e300] * 32]), "float32")):
        with pytest.raises(ValueError, match=match):
            fn(bad)
    with pytest.raises(TypeError):
        fn("abc")


def test_bad_qtype_and_raw_are_clear_errors():
    x = np.zeros((1, 32), np.float32)
    for bad in ("Q5_0", "q4_0", "", None, 2, T.Q4_0):
        with pytest.raises((ValueError, TypeError), match="qtype"):
            G.gguf_quantize(x, bad)
        with pytest.raises((ValueError, TypeError), match="qtype"):
            G.gguf_dequantize(np.zeros(18, np.uint8), bad)
        with pytest.raises((ValueError, TypeError), match="qtype"):
            G.bits_per_weight(bad)
    with pytest.raises(ValueError, match="multiple of 18"):
        G.gguf_dequantize(np.zeros(19, np.uint8), "Q4_0")
    with pytest.raises(TypeError, match="uint8"):
        G.gguf_dequantize(np.zeros(18, np.float32), "Q4_0")
    with pytest.raises(TypeError, match="float32"):
        G.gguf_dequantize(np.zeros(3, np.float64), "F32")
    raw = G.gguf_quantize(np.ones((1, 32)), "Q8_0")
    raw[0, :2] = np.array([np.inf], np.float16).view(np.uint8)          # a damaged scale
    with pytest.raises(ValueError, match="NaN or infinite"):
        G.gguf_dequantize(raw, "Q8_0")


def test_torch_tensors_are_accepted(torch):
    x = np.random.default_rng(3).normal(size=(4, 64)).astype(np.float32)
    assert G.gguf_quantize(torch.from_numpy(x), "Q4_1").tobytes() == ref_quantize(x, "Q4_1").tobytes()


# ------------------------------------------------------------------ GGUF files
def sample_tensors(g):
    return {"w8": (g.normal(size=(4, 64)), "Q8_0"), "w4": (g.normal(size=(3, 2, 32)), "Q4_0"),
            "w41": (g.uniform(0, 1, (5, 96)), "Q4_1"), "h": (g.normal(size=(3, 7)), "F16"),
            "b": (g.normal(size=5), "F32"), "t4": (g.normal(size=(2, 1, 3, 32)), "Q8_0")}


SAMPLE_META = {"general.architecture": "gpt2", "general.name": "tiny", "u32": 7, "i32": -3,
               "u64": 2 ** 40, "i64": -2 ** 40, "f32": 0.1, "f64": (0.1, "float64"), "yes": True,
               "no": False, "u8": (200, "uint8"), "i8": (-100, "int8"), "u16": (60000, "uint16"),
               "i16": (-30000, "int16"), "ints": [1, 2, 3], "negs": [1, -2], "floats": [0.5, 1.5],
               "strs": ["a", "βγ", ""], "bools": [True, False], "u64s": ([1, 2], "uint64"),
               "empty": ([], "uint32"), "text": "héllo"}
GGUF_VALUE_TYPES = {"general.architecture": "STRING", "u32": "UINT32", "i32": "INT32", "u64": "UINT64",
                    "i64": "INT64", "f32": "FLOAT32", "f64": "FLOAT64", "yes": "BOOL", "u8": "UINT8",
                    "i8": "INT8", "u16": "UINT16", "i16": "INT16", "ints": "ARRAY", "text": "STRING"}


def test_gguf_reader_reads_what_we_write(tmp_path):
    g = np.random.default_rng(4)
    tensors, path = sample_tensors(g), tmp_path / "m.gguf"
    n = G.write_gguf(path, tensors, SAMPLE_META)
    assert n == path.stat().st_size
    r = gguf.GGUFReader(path)
    for key, tname in GGUF_VALUE_TYPES.items():
        assert r.fields[key].types[0] == gguf.GGUFValueType[tname], key
    assert r.fields["ints"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32]
    assert r.fields["negs"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32]
    meta, _ = G.read_gguf(path)
    for key in SAMPLE_META:
        assert r.fields[key].contents() == meta[key], key
    assert meta["f32"] == float(np.float32(0.1)) and meta["f64"] == 0.1 and meta["empty"] == []
    assert [t.name for t in r.tensors] == list(tensors)
    for t in r.tensors:
        values, qtype = tensors[t.name]
        assert t.tensor_type == T[qtype]
        assert t.shape.tolist() == list(np.shape(values)[::-1])              # ggml order
        assert t.data.tobytes() == ref_quantize(values, qtype).tobytes()
        assert t.data_offset % 32 == 0


def test_file_is_byte_identical_to_gguf_writer(tmp_path):
    g = np.random.default_rng(5)
    tensors = sample_tensors(g)
    w = gguf.GGUFWriter(tmp_path / "ref.gguf", "gpt2")     # adds general.architecture first
    w.add_custom_alignment(64)
    w.add_name("tiny")
    w.add_uint32("gpt2.block_count", 2)
    w.add_float32("gpt2.attention.layer_norm_epsilon", 1e-5)
    w.add_uint64("u64", 2 ** 40)
    w.add_int32("i32", -7)
    w.add_bool("yes", True)
    w.add_array("strs", ["x", "yz"])
    w.add_key_value("u32s", [3, 4], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT32)
    for name, (values, qtype) in tensors.items():
        raw = ref_quantize(values, qtype)
        w.add_tensor(name, raw, raw_dtype=T[qtype] if qtype in BLOCKS else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = {"general.architecture": "gpt2", "general.alignment": 64, "general.name": "tiny",
            "gpt2.block_count": 2, "gpt2.attention.layer_norm_epsilon": 1e-5, "u64": 2 ** 40,
            "i32": (-7, "int32"), "yes": True, "strs": ["x", "yz"], "u32s": [3, 4]}
    G.write_gguf(tmp_path / "ours.gguf", tensors, meta)
    assert (tmp_path / "ours.gguf").read_bytes() == (tmp_path / "ref.gguf").read_bytes()


def test_we_read_what_gguf_writer_writes(tmp_path):
    g = np.random.default_rng(6)
    tensors = sample_tensors(g)
    path = tmp_path / "ref.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(128)
    meta = {"u8": (7, "UINT8"), "i16": (-9, "INT16"), "f64": (2.5, "FLOAT64"), "i64": (-2 ** 50, "INT64"),
            "nested": ([[1, 2], [3]], "ARRAY"), "strs": (["a", "b"], "ARRAY"),
            "bools": ([True, False], "ARRAY"), "floats": ([0.25, -1.0], "ARRAY"), "s": ("text", "STRING"),
            "b": (False, "BOOL")}
    for key, (v, vtype) in meta.items():
        w.add_key_value(key, v, gguf.GGUFValueType[vtype])
    for name, (values, qtype) in tensors.items():
        w.add_tensor(name, ref_quantize(values, qtype), raw_dtype=T[qtype] if qtype in BLOCKS else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    got_meta, got = G.read_gguf(path)
    assert got_meta == {"general.architecture": "llama", "general.alignment": 128} | {
        k: v for k, (v, _) in meta.items()}
    assert list(got) == list(tensors)
    for name, (values, qtype) in tensors.items():
        raw, qt, shape = got[name]
        assert qt == qtype and shape == np.shape(values)
        assert raw.tobytes() == ref_quantize(values, qtype).tobytes()
        assert G.gguf_dequantize(raw, qtype).reshape(shape).tobytes() == \
            ref_dequantize(ref_quantize(values, qtype), qtype).astype(np.float32).reshape(shape).tobytes()


def test_metadata_type_rule_and_bad_metadata(tmp_path):
    path = tmp_path / "m.gguf"
    cases = {"neg": (-1, "INT32"), "big": (2 ** 32, "UINT64"), "bigneg": (-2 ** 31 - 1, "INT64"),
             "np": (np.int64(5), "UINT32"), "npf": (np.float32(0.5), "FLOAT32")}
    G.write_gguf(path, {}, {k: v for k, (v, _) in cases.items()})
    r = gguf.GGUFReader(path)
    for key, (v, tname) in cases.items():
        assert r.fields[key].types[0] == gguf.GGUFValueType[tname] and r.fields[key].contents() == v
    for meta, err in (({"a": 2 ** 64}, ValueError), ({"a": [1, "x"]}, TypeError), ({"a": []}, ValueError),
                      ({"a": [[1]]}, TypeError), ({"a": None}, TypeError),
                      ({"a": (300, "uint8")}, ValueError),
                      ({"a": (1.5, "int32")}, TypeError), ({"a": (1, "complex")}, ValueError),
                      ({"a": 1e39}, ValueError), ({"a": ("x", "uint32")}, TypeError),
                      ({"a": (True, "uint32")}, TypeError), ({"": 1}, TypeError), ({3: 1}, TypeError),
                      ({"general.alignment": 48}, ValueError),
                      ({"general.alignment": (32, "uint64")}, ValueError), ({"a": b"bytes"}, TypeError)):
        with pytest.raises(err):
            G.write_gguf(path, {}, meta)


def test_bad_tensors_are_clear_errors(tmp_path):
    path = tmp_path / "m.gguf"
    for tensors, err, match in (
            ({"w": (np.zeros((2, 33)), "Q4_0")}, ValueError, "'w'.*multiple of 32"),
            ({"w": (np.full(32, np.nan), "Q8_0")}, ValueError, "NaN"),
            ({"w": (np.zeros((1,) * 5), "F32")}, ValueError, "1 to 4 dimensions"),
            ({"w": (np.float32(1), "F32")}, ValueError, "1 to 4 dimensions"),
            ({"x" * 64: (np.zeros(2), "F32")}, ValueError, "63"),
            ({"": (np.zeros(2), "F32")}, ValueError, "63"), ({1: (np.zeros(2), "F32")}, TypeError, "string"),
            ({"w": np.zeros(2)}, TypeError, "pair"), ({"w": (np.zeros(32), "Q5_K")}, ValueError, "qtype")):
        with pytest.raises(err, match=match):
            G.write_gguf(path, tensors)
    for bad in (None, 1.5, ["a"]):
        with pytest.raises(TypeError):
            G.write_gguf(bad, {})
        with pytest.raises(TypeError):
            G.read_gguf(bad)


# ------------------------------------------------------------------ damaged files
def small_file(tmp_path):
    g = np.random.default_rng(7)
    path = tmp_path / "small.gguf"
    G.write_gguf(path, {"w": (g.normal(size=(2, 32)), "Q4_0"), "b": (g.normal(size=3), "F32")},
                 {"general.name": "s", "n": 3, "arr": ["a", "b"], "nums": [1.0, 2.0]})
    return path, path.read_bytes()


def test_every_truncation_is_a_value_error(tmp_path):
    path, data = small_file(tmp_path)
    meta, tensors = G.read_gguf(path)
    end = len(data) - (32 - 12)              # the last tensor, 3 float32, is padded to 32 bytes
    cut = tmp_path / "cut.gguf"
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        if n < end:
            refused(cut, n)
        else:                                # only the trailing padding is lost: still readable
            assert G.read_gguf(cut)[1]["b"][0].tobytes() == tensors["b"][0].tobytes()
    with pytest.raises(FileNotFoundError):
        G.read_gguf(tmp_path / "missing.gguf")


def refused(path, case):
    """read_gguf raises a ValueError that names the file."""
    try:
        G.read_gguf(path)
    except ValueError as exc:
        assert path.name in str(exc), (case, exc)
    else:
        pytest.fail(f"{case}: read without an error")


def patched(data: bytes, at: int, fmt: str, value) -> bytes:
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt):]


def test_huge_or_wrong_declarations_are_value_errors(tmp_path):
    path, data = small_file(tmp_path)
    key_at = 24                                          # the first metadata pair: "general.name"
    value_at = key_at + 8 + len("general.name") + 4      # its string value's length
    cases = {
        "huge tensor count": patched(data, 8, "<Q", 2 ** 63),
        "huge metadata count": patched(data, 16, "<Q", 2 ** 62),
        "tensor count one too many": patched(data, 8, "<Q", 3),
        "huge key length": patched(data, key_at, "<Q", 2 ** 64 - 1),
        "huge string length": patched(data, value_at, "<Q", 2 ** 40),
        "unknown value type": patched(data, value_at - 4, "<I", 99),
        "bad magic": b"GGUG" + data[4:], "version 1": patched(data, 4, "<I", 1),
        "big-endian": patched(data, 4, "<I", 3 << 24), "empty": b"",
    }
    for name, bad in cases.items():
        p = tmp_path / "bad.gguf"
        p.write_bytes(bad)
        refused(p, name)
        if name.startswith("huge"):          # refused before reading on: the count cannot fit
            with pytest.raises(ValueError, match="bytes left can hold"):
                G.read_gguf(p)


def test_crafted_tensor_infos_are_value_errors(tmp_path):
    def info(name, dims, tid, offset):
        return struct.pack("<Q", len(name)) + name + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, tid,
                                                                 offset)

    def file(infos, n_data=256, meta=b"", n_kv=0):
        head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), n_kv) + meta + b"".join(infos)
        return head + bytes(-len(head) % 32) + bytes(n_data)

    p = tmp_path / "t.gguf"
    p.write_bytes(file([info(b"a", [4], 0, 0), info(b"b", [32, 2], 2, 32)]))
    meta, tensors = G.read_gguf(p)                              # a valid baseline
    assert tensors["b"][0].shape == (2, 18) and tensors["b"][2] == (2, 32)
    bad = {
        "huge dims": [info(b"a", [2 ** 62, 2 ** 62], 0, 0)],
        "dims past the end": [info(b"a", [1000], 0, 0)],
        "zero dim": [info(b"a", [0], 0, 0)],
        "five dims": [info(b"a", [1] * 5, 0, 0)], "no dims": [info(b"a", [], 0, 0)],
        "misaligned": [info(b"a", [4], 0, 8)], "offset past the end": [info(b"a", [4], 0, 2 ** 60)],
        "overlap": [info(b"a", [16], 0, 0), info(b"b", [4], 0, 32)],     # 64 bytes at 0, next at 32
        "duplicate name": [info(b"a", [4], 0, 0), info(b"a", [4], 0, 32)],
        "row not whole blocks": [info(b"a", [33], 2, 0)],
        "unsupported type": [info(b"a", [32], 6, 0)],     # Q5_0
        "unknown type": [info(b"a", [32], 999, 0)],
        "not utf-8": [info(b"\xff\xfe", [4], 0, 0)],
    }
    for name, infos in bad.items():
        p.write_bytes(file(infos))
        refused(p, name)
    kv = {"bool 2": struct.pack("<Q", 1) + b"k" + struct.pack("<IB", 7, 2),
          "alignment as string": struct.pack("<Q", 17) + b"general.alignment" + struct.pack("<IQ", 8, 1)
          + b"x",
          "alignment 48": struct.pack("<Q", 17) + b"general.alignment" + struct.pack("<II", 4, 48),
          "deep nesting": struct.pack("<Q", 1) + b"k" + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 20,
          "array of unknown": struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 77, 1),
          "huge array": struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 4, 2 ** 61)}
    for name, meta in kv.items():
        p.write_bytes(file([], meta=meta, n_kv=1))
        refused(p, name)
    twice = struct.pack("<Q", 1) + b"k" + struct.pack("<II", 4, 1)
    p.write_bytes(file([], meta=twice * 2, n_kv=2))
    with pytest.raises(ValueError, match="twice"):
        G.read_gguf(p)


def test_random_corruption_gives_a_result_or_a_value_error(tmp_path):
    path, data = small_file(tmp_path)
    g = np.random.default_rng(8)
    p = tmp_path / "x.gguf"
    header_end = 200
    for _ in range(300):
        b = bytearray(data)
        for i in g.integers(0, header_end, g.integers(1, 4)):
            b[i] = g.integers(0, 256)
        p.write_bytes(bytes(b))
        try:
            G.read_gguf(p)
        except ValueError:
            pass


# ------------------------------------------------------------------ compresslab's GPT as gpt2
def gpt_state(g, cfg, ff=None):
    return {k: g.normal(0, 0.05, s).astype(np.float32) for k, s in G.gpt_shapes(cfg, ff).items()}


CFG = dict(vocab_size=96, block_size=32, n_layer=2, n_head=4, n_embd=64, layer_norm_eps=1e-5)


@pytest.mark.parametrize("qtype", ALL)
def test_export_gpt_reads_back_as_dequantized_weights(tmp_path, qtype):
    g = np.random.default_rng(9)
    state, path = gpt_state(g, CFG), tmp_path / "gpt.gguf"
    n = G.export_gpt(state, CFG, path, qtype=qtype, name="tiny")
    assert n == path.stat().st_size
    names = G.gpt2_tensor_names(2)
    r = gguf.GGUFReader(path)
    field = {k: r.fields[k].contents() for k in r.fields if not k.startswith("GGUF.")}
    assert field == {"general.architecture": "gpt2", "general.name": "tiny", "gpt2.block_count": 2,
                     "gpt2.context_length": 32, "gpt2.embedding_length": 64, "gpt2.feed_forward_length": 256,
                     "gpt2.attention.head_count": 4,
                     "gpt2.attention.layer_norm_epsilon": float(np.float32(1e-5)),
                     "general.file_type": G.FILE_TYPES[qtype], "general.quantization_version": 2}
    arch_tensors = {gguf.TENSOR_NAMES[t].format(bid=i) for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.GPT2]
                    for i in range(2)}
    assert {t.name.rsplit(".", 1)[0] for t in r.tensors} <= arch_tensors    # llama.cpp's gpt2 names
    assert [t.name for t in r.tensors] == list(names.values())
    ours = {v: k for k, v in names.items()}
    for t in r.tensors:
        w = state[ours[t.name]]
        want = qtype if w.ndim == 2 and t.name != "position_embd.weight" else "F32"
        assert t.tensor_type == T[want], t.name
        assert t.shape.tolist() == list(w.shape[::-1])
        assert t.data.tobytes() == ref_quantize(w, want).tobytes()
    back, cfg = G.import_gpt(path)
    assert cfg == CFG | {"layer_norm_eps": float(np.float32(1e-5))}
    for k, w in state.items():
        want = [t for t in r.tensors if t.name == names[k]][0]
        ref = ref_dequantize(want.data, want.tensor_type.name).reshape(w.shape)
        np.testing.assert_array_equal(back[k], ref)


def test_export_gpt_sizes_and_errors(tmp_path):
    g = np.random.default_rng(10)
    state, path = gpt_state(g, CFG), tmp_path / "gpt.gguf"
    sizes = {q: G.export_gpt(state, CFG, path, q) for q in ("F32", "Q8_0", "Q4_1", "Q4_0")}
    assert sizes["F32"] > sizes["Q8_0"] > sizes["Q4_1"] > sizes["Q4_0"]
    odd = gpt_state(g, CFG, ff=100)                 # fc2's rows (100) are not whole blocks: F32
    G.export_gpt(odd, CFG, path, "Q4_0")
    _, tensors = G.read_gguf(path)
    assert tensors["blk.0.ffn_down.weight"][1] == "F32" and tensors["blk.0.ffn_up.weight"][1] == "Q4_0"
    G.export_gpt(state, CFG, path, metadata={"tokenizer.ggml.model": "none"})
    assert G.read_gguf(path)[0]["tokenizer.ggml.model"] == "none"
    bad_states = [{k: v for k, v in state.items() if k != "ln_f.bias"},
                  state | {"head.weight": state["tok_emb"]},
                  state | {"blocks.1.attn.qkv.weight": np.zeros((64, 64), np.float32)},
                  state | {"tok_emb": np.full((96, 64), np.nan, np.float32)}]
    for bad in bad_states:
        with pytest.raises(ValueError):
            G.export_gpt(bad, CFG, path)
    for cfg in (CFG | {"n_head": 3}, {k: v for k, v in CFG.items() if k != "n_layer"},
                CFG | {"layer_norm_eps": 0.0}, CFG | {"n_layer": 3}):
        with pytest.raises(ValueError):
            G.export_gpt(state, cfg, path)
    with pytest.raises(TypeError):
        G.export_gpt(list(state.items()), CFG, path)
    with pytest.raises(ValueError, match="qtype"):
        G.export_gpt(state, CFG, path, "Q2_K")
    G.write_gguf(path, {"w": (np.zeros(4), "F32")}, {"general.architecture": "llama"})
    with pytest.raises(ValueError, match="not a gpt2"):
        G.import_gpt(path)


def test_quantization_error_follows_bits_per_weight():
    """More bits, less error: RMS error of Q8_0 < Q4_1 < Q4_0 on Gaussian rows (and roughly
    halving per extra bit of the grid)."""
    x = np.random.default_rng(11).normal(size=(64, 256)).astype(np.float32)
    rms = {q: math.sqrt(float(np.mean((G.gguf_dequantize(G.gguf_quantize(x, q), q).reshape(x.shape)
                                         - x) ** 2))) for q in BLOCKS}
    assert rms["Q8_0"] < rms["Q4_1"] < rms["Q4_0"] < 0.2
    assert rms["Q4_0"] / rms["Q8_0"] > 10


def test_compresslab_gpt_round_trips_through_a_gguf_file(tmp_path):
    nn = pytest.importorskip("compresslab.nn")
    if not hasattr(nn, "GPT"):
        pytest.skip("compresslab.nn has no GPT")
    model = nn.GPT(nn.GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32), seed=0)
    tokens = np.array([[1, 2, 3, 4, 5, 6]])
    logits = model(tokens)
    for qtype, tol in (("F32", 0.0), ("Q8_0", 0.02), ("Q4_0", 0.3)):
        G.export_gpt(model.state_dict(), model.config, tmp_path / "gpt.gguf", qtype)
        state, cfg = G.import_gpt(tmp_path / "gpt.gguf")
        back = nn.GPT(nn.GPTConfig(**cfg), seed=1)
        back.load_state_dict(state)
        err = float(np.abs(back(tokens) - logits).max())
        assert err <= tol, (qtype, err)
        if qtype == "F32":
            assert err == 0.0
