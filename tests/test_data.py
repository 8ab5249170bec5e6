"""compresslab.data: embedded digits and the IDX reader."""
import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compresslab import data


def test_digits_shapes_dtypes_and_range():
    d = data.load_digits(seed=0)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 1797
    for X, y in ((d.X_train, d.y_train), (d.X_val, d.y_val), (d.X_test, d.y_test)):
        assert X.dtype == np.float32 and X.shape[1] == 64 and len(X) == len(y)
        assert X.min() >= 0 and X.max() <= 1 and y.dtype == np.int64
    assert d.images("test").shape == (len(d.y_test), 1, 8, 8)


def test_split_indices_partition_the_data():
    y = np.repeat(np.arange(10), 17)
    parts = data.stratified_split(y, (0.6, 0.2, 0.2), seed=3)
    allidx = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(len(y)))  # each sample exactly once


def test_digits_split_is_stratified_and_deterministic():
    a, b, c = data.load_digits(seed=0), data.load_digits(seed=0), data.load_digits(seed=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_train, c.y_train)
    counts = np.bincount(np.concatenate([a.y_train, a.y_val, a.y_test]))
    for y, share in ((a.y_train, 0.6), (a.y_val, 0.2), (a.y_test, 0.2)):
        np.testing.assert_allclose(np.bincount(y, minlength=10), share * counts, atol=1)


def test_digits_need_no_sklearn_and_no_network():
    code = (
        "import sys, socket\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('sklearn', 'torch', 'matplotlib', 'ipywidgets', 'scipy'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "def no_net(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = no_net\n"
        "import compresslab\n"
        "d = compresslab.data.load_digits()\n"
        "print(len(d.y_train) + len(d.y_val) + len(d.y_test))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1797"


def _write_idx(path, array, type_byte=0x08, gz=False):
    header = bytes([0, 0, type_byte, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload = header + array.astype(">u1" if type_byte == 0x08 else ">i4").tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_reads_mnist_layout(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", imgs, gz=gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, gz=gz)
    X, y = data.load_idx(tmp_path, "train")
    assert X.dtype == np.float32 and X.shape == (5, 28, 28)
    np.testing.assert_allclose(X, imgs / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    X8, _ = data.load_idx(tmp_path, "train", normalize=False)
    np.testing.assert_array_equal(X8, imgs)


def test_idx_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_idx(tmp_path, "train")
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(ValueError, match="bad-idx.*magic"):
        data.read_idx(bad)
    short = tmp_path / "short-idx"
    short.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">II", 4, 4) + b"\x00" * 10)
    with pytest.raises(ValueError, match="short-idx.*truncated"):
        data.read_idx(short)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="tiny.*truncated"):
        data.read_idx(tiny)
    brokengz = tmp_path / "t10k-images-idx3-ubyte.gz"
    brokengz.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(ValueError, match="t10k-images"):
        data.read_idx(brokengz)
    with pytest.raises(ValueError, match="kind"):
        data.load_idx(tmp_path, "validation")


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), type_byte=st.sampled_from([0x08, 0x0C]))
def test_idx_round_trip_property(tmp_path_factory, shape, type_byte):
    arr = np.arange(np.prod(shape)).reshape(shape) % 200
    p = tmp_path_factory.mktemp("idx") / "f-idx"
    _write_idx(p, arr, type_byte)
    np.testing.assert_array_equal(data.read_idx(p), arr)


def test_bad_split_arguments():
    with pytest.raises(ValueError, match="fractions"):
        data.load_digits(fractions=(0.5, 0.6))
    with pytest.raises(ValueError, match="seed"):
        data.load_digits(seed=-1)
    with pytest.raises(ValueError, match="part"):
        data.load_digits().images("dev")
