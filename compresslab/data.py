"""Data for the lessons: the 8x8 digits shipped in the package, and MNIST-family IDX files.

``load_digits`` needs no network and no scikit-learn: the 1,797 images live in
``compresslab/datasets/digits.npz`` (provenance and licence in ``DIGITS_PROVENANCE.txt`` beside it).
``load_idx`` reads MNIST, Fashion-MNIST or KMNIST from a folder you downloaded yourself.
``load_text`` gives the language-model corpus (the source of CPython 3.11.7's standard library,
``datasets/pystdlib.npz``, provenance and licence in ``PYSTDLIB_PROVENANCE.txt``) as byte tokens;
``encode`` / ``decode`` are its tokenizer (UTF-8 bytes: 256 tokens, nothing to train).
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import _validate as V

__all__ = ["Split", "load_digits", "load_idx", "read_idx", "stratified_split", "TextCorpus", "load_text",
           "encode", "decode"]


@dataclass(frozen=True)
class Split:
    """A train / validation / test split. Features are float32 in [0, 1]; labels int64.

    Parameters
    ----------
    X_train, y_train, X_val, y_val, X_test, y_test : numpy.ndarray
        Features (N, features) and labels (N,) of each part.
    image_shape : tuple of int
        Shape of one image, e.g. (8, 8); :meth:`images` uses it.
    num_classes : int, default 10

    Examples
    --------
    >>> d = load_digits()
    >>> d
    Split(train=1078, val=360, test=359, image_shape=(8, 8), num_classes=10)
    >>> d.images("test").shape
    (359, 1, 8, 8)
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, ...]
    num_classes: int = 10

    def images(self, part: str = "train") -> np.ndarray:
        """The features of ``part`` reshaped to (N, 1, H, W) for convolutional networks."""
        V.check_choice(part, "part", {"train", "val", "test"})
        X = getattr(self, f"X_{part}")
        return X.reshape(len(X), 1, *self.image_shape)

    def __repr__(self) -> str:
        return (f"Split(train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, "
                f"image_shape={self.image_shape}, num_classes={self.num_classes})")


def stratified_split(y: np.ndarray, fractions=(0.6, 0.2, 0.2), seed=0) -> tuple[np.ndarray, ...]:
    """Indices of a split that keeps each class's share in every part (deterministic per seed).

    Every class is shuffled with the seed and cut at the cumulative fractions, so each part
    holds ``round(fraction * class_count)`` examples of each class.

    Parameters
    ----------
    y : array_like of int, shape (N,)
        Labels.
    fractions : sequence of float, default (0.6, 0.2, 0.2)
        Positive, summing to 1; one per part.
    seed : int, numpy.random.Generator or None, default 0

    Returns
    -------
    tuple of numpy.ndarray
        One index array per part, each shuffled.

    Examples
    --------
    >>> y = np.array([0] * 5 + [1] * 5)
    >>> train, val, test = stratified_split(y, (0.6, 0.2, 0.2), seed=0)
    >>> np.bincount(y[train]).tolist(), np.bincount(y[val]).tolist(), np.bincount(y[test]).tolist()
    ([3, 3], [1, 1], [1, 1])
    """
    y = V.as_labels(y, "y")
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) < 2 or (fr <= 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    g = V.rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    for c in np.unique(y):
        idx = g.permutation(np.flatnonzero(y == c))
        cuts = np.round(np.cumsum(fr)[:-1] * len(idx)).astype(int)
        for k, chunk in enumerate(np.split(idx, cuts)):
            parts[k].append(chunk)
    return tuple(g.permutation(np.concatenate(p)) for p in parts)


def load_digits(seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> Split:
    """The 8x8 handwritten digits (1,797 images, 10 classes), split train / val / test.

    Pixels are scaled from 0..16 to float32 in [0, 1] and flattened to 64 features. The split is
    stratified by class and the same for the same ``seed`` on every machine. The data ship with
    the package (no download).

    Parameters
    ----------
    seed : int >= 0, default 0
        Seed of the split.
    fractions : sequence of float, default (0.6, 0.2, 0.2)
        Shares of train, validation and test.

    Returns
    -------
    Split

    Examples
    --------
    >>> d = load_digits()
    >>> d.X_train.shape, d.X_val.shape, d.X_test.shape
    ((1078, 64), (360, 64), (359, 64))
    """
    V.check_int(seed, "seed", 0)
    with resources.files("compresslab").joinpath("datasets/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            images, target = z["images"], z["target"]
    X = (images.reshape(len(images), -1).astype(np.float32) / 16.0)
    y = target.astype(np.int64)
    tr, va, te = stratified_split(y, fractions, seed)
    return Split(X[tr], y[tr], X[va], y[va], X[te], y[te], image_shape=(8, 8))


# --------------------------------------------------------------------------------------------
# Text: the language-model corpus and its byte-level tokenizer
# --------------------------------------------------------------------------------------------
PYSTDLIB_SHA256 = {
    "train": "f6afd6396f5d2f72e4465c0c3f32182766772e2a8aca574d3f15f0e36da150e6",
    "validation": "8037ee310996f63005c51582d19eccd0dab08d926ef7b2b04b2933ed996bac83",
    "test": "4aede8bf18b28a040e1472d6ad2e69791c1017a9ed6ad628b863390c18f71d0f",
}


@dataclass(frozen=True)
class TextCorpus:
    """Token streams (int64 byte values 0..255) of a train / validation / test split, whole files each.

    :func:`load_text` makes the shipped one.

    Parameters
    ----------
    train, validation, test : numpy.ndarray
    files : dict of {str: tuple of str}
        Which source files went into each part.
    release : str
        The CPython release the text comes from.

    Examples
    --------
    >>> c = load_text()
    >>> c.release, len(c.files["train"]), len(c.files["validation"]), c.files["test"][:2]
    ('3.11.7', 126, 11, ('copy.py', 'glob.py'))
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    files: dict
    release: str

    def __repr__(self) -> str:
        return (f"TextCorpus(CPython {self.release} Lib/*.py: train={len(self.train):,} tokens, "
                f"validation={len(self.validation):,}, test={len(self.test):,})")


def load_text() -> TextCorpus:
    """The language-model corpus: the standard library source of CPython 3.11.7, as byte tokens.

    148 top-level modules of ``Lib/`` (2.7 MB of real, human-written code, comments and
    docstrings; PSF licence), split by file into train (126 files), validation (11) and test (11).
    Each part's SHA-256 is checked on load. See ``datasets/PYSTDLIB_PROVENANCE.txt`` and
    ``tools/make_corpus.py``, which cut it.

    Returns
    -------
    TextCorpus

    Examples
    --------
    >>> c = load_text()
    >>> len(c.train), len(c.validation), len(c.test)
    (2242344, 221043, 212483)
    >>> decode(c.test[:9])
    '# copy.py'
    """
    import hashlib

    with resources.files("compresslab").joinpath("datasets/pystdlib.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    parts = {}
    for part, digest in PYSTDLIB_SHA256.items():
        data = arrays[part]
        if hashlib.sha256(data.tobytes()).hexdigest() != digest:
            raise ValueError(f"datasets/pystdlib.npz: the {part} part was modified (checksum mismatch)")
        parts[part] = data.astype(np.int64)
    files = {part: tuple(str(n) for n in arrays[f"{part}_files"]) for part in PYSTDLIB_SHA256}
    return TextCorpus(parts["train"], parts["validation"], parts["test"], files, str(arrays["release"]))


def encode(text: str) -> np.ndarray:
    """Text -> tokens: its UTF-8 bytes as int64 (the byte-level tokenizer; vocabulary 256).

    Parameters
    ----------
    text : str

    Returns
    -------
    numpy.ndarray of int64, shape (number of bytes,)
        One token per byte: ASCII characters take one, ``é`` two.

    Examples
    --------
    >>> encode("déf").tolist()
    [100, 195, 169, 102]
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int64)


def decode(tokens) -> str:
    """Tokens -> text: the bytes decoded as UTF-8 (an invalid sequence becomes U+FFFD).

    Parameters
    ----------
    tokens : 1-D sequence of int in [0, 255]

    Returns
    -------
    str

    Examples
    --------
    >>> decode([100, 195, 169, 102])
    'déf'
    >>> decode([100, 195])                   # half a character
    'd\ufffd'
    """
    t = np.asarray(tokens)
    if t.ndim != 1 or (t.size and (t.dtype.kind not in "iu" or t.min() < 0 or t.max() > 255)):
        raise ValueError("tokens must be a 1-D sequence of integers in [0, 255]")
    return t.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# IDX (MNIST family)
# --------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (plain or gzip) into an array, validating its header and length.

    Format (LeCun et al., MNIST): two zero bytes, a type byte (0x08 = uint8, ...), a byte with the
    number of dimensions, one big-endian uint32 per dimension, then the data in row-major order.

    Parameters
    ----------
    path : str or os.PathLike
        A name ending in ``.gz`` is read with gzip.

    Returns
    -------
    numpy.ndarray
        Of the shape and type the header gives, in native byte order.

    Raises
    ------
    ValueError
        When the file is truncated, longer than its header says, has a wrong magic number, or
        declares more than 2 GiB of data. The header is read first and then only the bytes it
        declares, so a small compressed file cannot make it allocate more.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "labels-idx1-ubyte")
    ...     with open(path, "wb") as f:                 # uint8, 1 dimension of size 3
    ...         _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
    ...     labels = read_idx(path)
    >>> labels.tolist(), labels.dtype.name
    ([7, 2, 1], 'uint8')
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    where = f"IDX file {str(path)!r}"
    try:    # header first; then exactly the bytes it declares (plus one), read in chunks
        with opener(path, "rb") as f:
            dtype, shape = _idx_header(f, where)
            raw = V.read_exactly(f, math.prod(shape) * dtype.itemsize, where)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{where} cannot be read: {exc}") from None
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_header(f, where: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The data type and shape an IDX header declares, at most MAX_FILE_BYTES of data."""
    magic = f.read(4)
    if len(magic) < 4:
        raise ValueError(f"{where} is truncated: {len(magic)} bytes, no header")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise ValueError(f"{where} has a wrong magic number 0x{int.from_bytes(magic, 'big'):08x}")
    dims = f.read(4 * magic[3])
    if magic[3] == 0 or len(dims) < 4 * magic[3]:
        raise ValueError(f"{where} is truncated in its header")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(magic[3]))
    dtype = np.dtype(_IDX_DTYPES[magic[2]])
    if math.prod(shape) * dtype.itemsize > V.MAX_FILE_BYTES:
        raise ValueError(f"{where} declares shape {shape}, more than the {V.MAX_FILE_BYTES} bytes "
                         "compresslab reads from one file")
    return dtype, shape


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"no file {stem!r} (or {stem}.gz) in {str(folder)!r}")


def load_idx(folder, kind: str = "train", normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of an MNIST-family set (MNIST, Fashion-MNIST, KMNIST) from a folder.

    Looks for ``{kind}-images-idx3-ubyte[.gz]`` and ``{kind}-labels-idx1-ubyte[.gz]`` (or with
    ``.idx`` instead of ``-idx``) in ``folder``. Nothing is downloaded.

    Parameters
    ----------
    folder : str or os.PathLike
        Where you put the files.
    kind : {"train", "t10k"}, default "train"
    normalize : bool, default True
        Images as float32 in [0, 1] (``pixel / 255``); False keeps uint8.

    Returns
    -------
    images : numpy.ndarray, shape (N, H, W)
        float32, or uint8 with ``normalize=False``.
    labels : numpy.ndarray of int64, shape (N,)

    See Also
    --------
    read_idx

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with open(os.path.join(tmp, "t10k-images-idx3-ubyte"), "wb") as f:   # 2 images, 1x2
    ...         _ = f.write(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 255, 255, 0]))
    ...     with open(os.path.join(tmp, "t10k-labels-idx1-ubyte"), "wb") as f:
    ...         _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 5]))
    ...     images, labels = load_idx(tmp, "t10k")
    >>> images.tolist(), labels.tolist()
    ([[[0.0, 1.0]], [[1.0, 0.0]]], [3, 5])
    """
    V.check_choice(kind, "kind", {"train", "t10k"})
    folder = Path(os.fspath(folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist")
    img_path = _find(folder, f"{kind}-images-idx3-ubyte")
    lbl_path = _find(folder, f"{kind}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise ValueError(f"{str(img_path)!r} should hold 3-D images, has shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{str(lbl_path)!r} holds {labels.shape} labels for {len(images)} images")
    images = images.astype(np.float32) / 255.0 if normalize else images
    return images, labels.astype(np.int64)
