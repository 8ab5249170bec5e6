"""Storage: how a compressed network becomes bytes, counted from the bytes actually produced.

Deep Compression (Han, Mao & Dally, "Deep Compression: Compressing Deep Neural Networks with
Pruning, Trained Quantization and Huffman Coding", ICLR 2016) stores a network in three layers
of encoding, and this module implements each one with a decoder beside it:

* **Sparse structure with relative indices** (Sec. 2, Fig. 2). The non-zeros of a weight matrix
  (read row by row) are stored as (value, gap) pairs, where the gap is the number of zeros
  skipped since the previous stored entry, in a fixed number of bits. When a run of zeros is
  longer than the largest gap the bits can hold (``2**bits - 1``), a *filler zero* is stored
  after ``2**bits - 1`` zeros and counting starts again. The paper's figure writes the
  position difference (gap + 1, so 1..8 for 3 bits); we store the gap (0..7), which uses every
  code and lets an entry sit at position 0. Plain CSR (``csr_encode``) is here for comparison.
* **Bit packing** (Sec. 3). After k-means weight sharing every weight is an index into a
  codebook of ``2**b`` shared values; the indices take ``b`` bits each, packed into bytes.
* **Huffman coding** (Sec. 4). Indices and gaps are far from uniform, so a canonical Huffman
  code (Huffman, Proc. IRE 1952) makes them shorter still. Only each symbol's code length is
  stored; the codes are rebuilt from the lengths the canonical way (as in DEFLATE, RFC 1951).

``pack_model`` applies these to every parameter of a :mod:`compresslab.nn` model and
``save`` / ``load`` write and read one ``.npz`` file (no pickle) whose size on disk is the
number to report. A truncated or altered file fails with a clear ``ValueError`` (SHA-256).

Examples
--------
>>> import numpy as np
>>> values, gaps = relative_index_encode(np.array([0, 3.4, 0, 0, 0.9] + [0] * 10 + [1.7]), bits=3)
>>> values.tolist(), gaps.tolist()
([3.4, 0.9, 0.0, 1.7], [1, 2, 7, 2])
>>> data, code = huffman_encode([0, 0, 0, 1, 2], alphabet_size=3)
>>> huffman_decode(data, code, 5).tolist()
[0, 0, 0, 1, 2]
"""
from __future__ import annotations

import hashlib
import heapq
import io
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validate as V
from . import backend, nn

__all__ = [
    "pack_bits", "unpack_bits", "relative_index_encode", "relative_index_decode",
    "CSR", "csr_encode", "csr_decode", "HuffmanCode", "huffman_lengths", "huffman_code",
    "huffman_encode", "huffman_decode", "CompressedModel", "pack_model", "save", "load",
    "load_packed", "file_size",
]


# --------------------------------------------------------------------------------------------
# Bit packing
# --------------------------------------------------------------------------------------------
def _as_symbols(x: Any, name: str) -> np.ndarray:
    a = np.asarray(backend.to_numpy(x))
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool
                                 or (a.size == 0)):
        if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold non-negative integers, got dtype {a.dtype}")
    a = a.astype(np.int64).ravel()
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must hold non-negative integers, got minimum {a.min()}")
    return a


def pack_bits(values: Any, bits: int) -> np.ndarray:
    """Pack non-negative integers of ``bits`` bits each into bytes, most significant bit first.

    Bit ``j`` (from the left) of value ``i`` lands at bit position ``i * bits + j`` of the stream,
    so ``n`` values take ``ceil(n * bits / 8)`` bytes; the last byte is padded with zero bits. After
    k-means weight sharing, each weight is a ``bits``-bit index stored this way (Han, Mao & Dally
    2016, Sec. 3).

    Parameters
    ----------
    values : array_like of int in ``[0, 2**bits - 1]``
    bits : int in [1, 32]

    Returns
    -------
    numpy.ndarray of uint8
        The packed stream.

    See Also
    --------
    unpack_bits

    References
    ----------
    .. [1] S. Han, H. Mao, W. J. Dally, "Deep Compression: Compressing Deep Neural Networks with
       Pruning, Trained Quantization and Huffman Coding", ICLR 2016.

    Examples
    --------
    >>> pack_bits([1, 2, 3], bits=2).tolist()   # 01 10 11 00 -> 0b01101100
    [108]
    """
    bits = V.check_bits(bits, "bits", 1, 32)
    v = _as_symbols(values, "values")
    if v.size and v.max() >= 2 ** bits:
        raise ValueError(f"values must be < 2**bits = {2 ** bits}, got {v.max()}")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    bit_matrix = ((v[:, None] >> shifts) & 1).astype(np.uint8)   # (n, bits), MSB first
    return np.packbits(bit_matrix.ravel())


def unpack_bits(data: Any, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: read ``count`` values of ``bits`` bits from a byte stream.

    ``value_i = sum_j bit[i * bits + j] * 2**(bits - 1 - j)``.

    Parameters
    ----------
    data : array_like of int in [0, 255]
        Bytes (values outside a byte are an error, never wrapped).
    bits : int in [1, 32]
    count : int >= 0

    Returns
    -------
    numpy.ndarray of int64, shape (count,)

    Raises
    ------
    ValueError
        When ``data`` is too short for ``count`` values.

    Examples
    --------
    >>> unpack_bits([108], bits=2, count=3).tolist()
    [1, 2, 3]
    """
    bits = V.check_bits(bits, "bits", 1, 32)
    count = V.check_int(count, "count", 0)
    data = V.as_bytes_array(data)
    need = math.ceil(count * bits / 8)
    if data.size < need:
        raise ValueError(f"count={count} values of {bits} bits need {need} bytes but data holds {data.size}")
    stream = np.unpackbits(data)[: count * bits].reshape(count, bits).astype(np.int64)
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    return stream @ weights if count else np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Sparse structure: relative indices with filler zeros, and plain CSR
# --------------------------------------------------------------------------------------------
@backend.same_kind
def relative_index_encode(w: Any, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-zeros of ``w`` (row-major) as ``(values, gaps)`` with ``bits``-bit gaps and fillers.

    ``gap = position - previous_position - 1`` (zeros skipped; the first entry counts from the
    start). A gap above ``max_gap = 2**bits - 1`` is split: a filler zero is stored at
    ``previous_position + 2**bits`` with gap ``max_gap``, as often as needed. Zeros after the
    last non-zero are not stored (the decoder knows the size).
    (Han, Mao & Dally, ICLR 2016, Sec. 2 and Fig. 2.)

    Parameters
    ----------
    w : array (any shape); flattened in row-major (C) order.
    bits : int in [1, 16], the width of a stored gap.

    Returns
    -------
    values : float array (same dtype as ``w``), filler zeros included.
    gaps : int64 array in ``[0, 2**bits - 1]``, one per value.

    Examples
    --------
    >>> v, g = relative_index_encode(np.array([0., 0., 5., 0., 0., 0., 0., 0., 0., 0., 7.]), bits=2)
    >>> v.tolist(), g.tolist()      # 7 zeros between 5 and 7 > 3: a filler after 3 of them
    ([5.0, 0.0, 7.0], [2, 3, 3])
    """
    bits = V.check_bits(bits, "bits", 1, 16)
    w = V.as_float_array(w, "w", allow_empty=True)
    flat = w.ravel()
    pos = np.flatnonzero(flat)
    span = 2 ** bits                     # a filler covers max_gap zeros plus itself
    raw_gaps = np.diff(pos, prepend=-1) - 1
    fillers = raw_gaps // span           # how many fillers go before each non-zero
    total = pos.size + int(fillers.sum())
    values = np.zeros(total, dtype=flat.dtype)
    gaps = np.full(total, span - 1, dtype=np.int64)   # fillers carry the largest gap
    where = np.arange(pos.size) + np.cumsum(fillers)  # slot of each real non-zero
    values[where] = flat[pos]
    gaps[where] = raw_gaps % span
    return values, gaps


@backend.same_kind
def relative_index_decode(values: Any, gaps: Any, shape) -> np.ndarray:
    """Inverse of :func:`relative_index_encode`: the dense array of ``shape``.

    ``position_i = sum_(j <= i) (gap_j + 1) - 1``; each value is written at its position, the rest
    is zero (Han, Mao & Dally 2016, Sec. 2).

    Parameters
    ----------
    values : array_like or torch.Tensor, 1-D
        Stored values, filler zeros included.
    gaps : array_like of int, same length
    shape : int or tuple of int
        Shape of the dense array.

    Returns
    -------
    array of ``shape``, dtype of ``values``

    References
    ----------
    .. [1] S. Han, H. Mao, W. J. Dally, "Deep Compression: Compressing Deep Neural Networks with
       Pruning, Trained Quantization and Huffman Coding", ICLR 2016.

    Examples
    --------
    >>> relative_index_decode([5.0, 0.0, 7.0], [2, 3, 3], 11).tolist()
    [0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0]
    """
    values = V.as_float_array(values, "values", ndim=1, allow_empty=True)
    gaps = _as_symbols(gaps, "gaps")
    if values.shape[0] != gaps.shape[0]:
        raise ValueError(f"values ({values.shape[0]}) and gaps ({gaps.shape[0]}) differ in length")
    shape = V.check_shape(shape)
    size = math.prod(shape)
    positions = np.cumsum(gaps + 1) - 1
    if positions.size and positions[-1] >= size:
        raise ValueError(f"the gaps run past the end: position {positions[-1]} in an array of "
                         f"shape {shape} ({size} entries)")
    out = np.zeros(size, dtype=values.dtype)
    out[positions] = values
    return out.reshape(shape)


@dataclass
class CSR:
    """Compressed sparse row storage of a 2-D array.

    ``data`` holds the non-zeros row by row, ``indices`` their columns and ``indptr`` where each
    row starts: row ``i``'s entries are ``data[indptr[i]:indptr[i+1]]``. That is ``2a + n + 1``
    numbers for ``a`` non-zeros and ``n`` rows (Han, Mao & Dally 2016, Sec. 2).

    Parameters
    ----------
    data : numpy.ndarray
    indices : numpy.ndarray
    indptr : numpy.ndarray
    shape : tuple of int
        (rows, columns).

    Attributes
    ----------
    nbytes : int
        Bytes of the three arrays as stored.

    References
    ----------
    .. [1] S. Han, H. Mao, W. J. Dally, "Deep Compression: Compressing Deep Neural Networks with
       Pruning, Trained Quantization and Huffman Coding", ICLR 2016.

    Examples
    --------
    >>> c = CSR(np.array([2.0]), np.array([1]), np.array([0, 1, 1]), (2, 2))
    >>> csr_decode(c).tolist()
    [[0.0, 2.0], [0.0, 0.0]]
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        """Bytes of the three arrays as stored (their dtypes decide)."""
        return int(self.data.nbytes + self.indices.nbytes + self.indptr.nbytes)


def csr_encode(w: Any, index_dtype=np.int32) -> CSR:
    """CSR form of a 2-D array, with absolute column indices.

    Parameters
    ----------
    w : array_like, 2-D
    index_dtype : numpy integer dtype, default numpy.int32
        Type of ``indices`` and ``indptr``; it must hold the largest column and the number of
        non-zeros (a ValueError otherwise, never wrapped indices).

    Returns
    -------
    CSR

    See Also
    --------
    csr_decode, relative_index_encode

    Examples
    --------
    >>> c = csr_encode(np.array([[0, 2.], [3., 0]], dtype=np.float32))
    >>> c.data.tolist(), c.indices.tolist(), c.indptr.tolist(), c.nbytes
    ([2.0, 3.0], [1, 0], [0, 1, 2], 28)
    """
    w = V.as_float_array(w, "w", ndim=2, allow_empty=True)
    rows, cols = np.nonzero(w)
    index_dtype = V.check_index_dtype(index_dtype, max(w.shape[1] - 1, rows.size))
    indptr = np.zeros(w.shape[0] + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
    return CSR(w[rows, cols], cols.astype(index_dtype), indptr, w.shape)


def csr_decode(c: CSR) -> np.ndarray:
    """Dense array from a :class:`CSR`: ``out[i, indices[k]] = data[k]`` for ``indptr[i] <= k < indptr[i+1]``.

    Parameters
    ----------
    c : CSR
        Checked first: ``indptr`` from 0 to ``len(data)``, non-decreasing; every index a column
        of ``c.shape``.

    Returns
    -------
    numpy.ndarray of ``c.shape``

    Examples
    --------
    >>> csr_decode(csr_encode(np.array([[0, 2.], [3., 0]]))).tolist()
    [[0.0, 2.0], [3.0, 0.0]]
    """
    data, indices, indptr, shape = V.check_csr(c)
    out = np.zeros(shape, dtype=data.dtype)
    out[np.repeat(np.arange(shape[0]), np.diff(indptr)), indices] = data
    return out


# --------------------------------------------------------------------------------------------
# Canonical Huffman coding
# --------------------------------------------------------------------------------------------
def huffman_lengths(freqs: Any) -> np.ndarray:
    """Code length of every symbol of a Huffman code for the counts ``freqs`` (0 if absent).

    Huffman's rule: repeatedly merge the two least frequent trees; every symbol in a merged tree
    gets one bit longer. Ties are broken by creation order (leaves by symbol), so the result is
    deterministic. A lone symbol gets a 1-bit code (a code needs at least one bit).

    Parameters
    ----------
    freqs : array_like of int >= 0
        How often each symbol 0, 1, ... occurs.

    Returns
    -------
    numpy.ndarray of uint8, as long as ``freqs``

    See Also
    --------
    huffman_code

    References
    ----------
    .. [1] D. A. Huffman, "A Method for the Construction of Minimum-Redundancy Codes",
       Proc. IRE, 1952.
    .. [2] P. Deutsch, "DEFLATE Compressed Data Format Specification version 1.3", RFC 1951, 1996
       (canonical codes from code lengths).

    Examples
    --------
    >>> huffman_lengths([5, 1, 1, 2]).tolist()
    [1, 3, 3, 2]
    """
    f = _as_symbols(freqs, "freqs")
    lengths = np.zeros(f.size, dtype=np.int64)
    present = [int(s) for s in np.flatnonzero(f)]
    if len(present) == 1:
        lengths[present[0]] = 1
    heap = [(int(f[s]), i, [s]) for i, s in enumerate(present)]
    heapq.heapify(heap)
    counter = len(heap)
    while len(heap) > 1:
        fa, _, a = heapq.heappop(heap)
        fb, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (fa + fb, counter, a + b))
        counter += 1
    if lengths.max(initial=0) > 255:
        raise ValueError("a Huffman code length exceeds 255 bits")
    return lengths.astype(np.uint8)


@dataclass
class HuffmanCode:
    """A canonical prefix code given by each symbol's code length (0 = symbol absent).

    Codes are assigned in order of (length, symbol): the first code is all zeros, each next code
    is the previous plus one, shifted left when the length grows (as in DEFLATE). Storing the
    lengths alone is enough to rebuild the code -- that is the compact table saved in the file.

    Parameters
    ----------
    lengths : array_like of int in [0, 255]
        Must satisfy the Kraft inequality ``sum 2**-length <= 1``.

    Attributes
    ----------
    codes : numpy.ndarray of object (Python ints)
        The code of each symbol.
    alphabet_size : int

    References
    ----------
    .. [1] D. A. Huffman, "A Method for the Construction of Minimum-Redundancy Codes",
       Proc. IRE, 1952.
    .. [2] P. Deutsch, "DEFLATE Compressed Data Format Specification version 1.3", RFC 1951, 1996
       (canonical codes from code lengths).

    Examples
    --------
    >>> HuffmanCode([1, 2, 2]).table()
    {0: '0', 1: '10', 2: '11'}
    """

    lengths: np.ndarray
    codes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        lengths = _as_symbols(self.lengths, "lengths")
        if lengths.size and lengths.max() > 255:
            raise ValueError("code lengths must be at most 255")
        used = lengths[lengths > 0]
        top = int(used.max(initial=0))       # Kraft in exact integers: sum 2**(top - l) <= 2**top
        if used.size and sum(1 << (top - int(l)) for l in used) > 1 << top:
            raise ValueError("these code lengths break the Kraft inequality: no prefix code has them")
        self.lengths = lengths.astype(np.uint8)
        codes = np.zeros(lengths.size, dtype=object)
        code, prev = 0, 0
        for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
            code <<= int(lengths[s]) - prev
            codes[s] = code
            prev = int(lengths[s])
            code += 1
        self.codes = codes

    @property
    def alphabet_size(self) -> int:
        return int(self.lengths.size)

    def table(self) -> dict[int, str]:
        """``{symbol: bit string}`` for the symbols that have a code."""
        return {int(s): format(int(self.codes[s]), f"0{int(self.lengths[s])}b")
                for s in np.flatnonzero(self.lengths)}

    def encoded_bits(self, symbols: Any) -> int:
        """Total bits to encode ``symbols`` (before padding to whole bytes)."""
        s = _as_symbols(symbols, "symbols")
        return int(self.lengths.astype(np.int64)[s].sum()) if s.size else 0


def huffman_code(symbols: Any = None, *, freqs: Any = None, alphabet_size: int | None = None) -> HuffmanCode:
    """The canonical Huffman code for the symbol counts of ``symbols`` (or for given ``freqs``).

    Parameters
    ----------
    symbols : array_like of int >= 0, optional
    freqs : array_like of int >= 0, optional
        Give exactly one of ``symbols`` and ``freqs``.
    alphabet_size : int, optional
        Number of possible symbols (default: ``max(symbols) + 1``).

    Returns
    -------
    HuffmanCode

    See Also
    --------
    huffman_lengths, huffman_encode

    Examples
    --------
    >>> huffman_code([0, 0, 0, 1, 2]).table()
    {0: '0', 1: '10', 2: '11'}
    """
    if (symbols is None) == (freqs is None):
        raise TypeError("pass exactly one of symbols or freqs")
    if freqs is None:
        s = _as_symbols(symbols, "symbols")
        size = alphabet_size if alphabet_size is not None else (int(s.max()) + 1 if s.size else 0)
        size = V.check_int(size, "alphabet_size" if alphabet_size is not None else "symbols", 0, 2 ** 24)
        if s.size and s.max() >= size:
            raise ValueError(f"symbols must be < alphabet_size = {size}, got {s.max()}")
        freqs = np.bincount(s, minlength=size)
    return HuffmanCode(huffman_lengths(freqs))


def huffman_encode(symbols: Any, code: HuffmanCode | None = None, *,
                   alphabet_size: int | None = None) -> tuple[np.ndarray, HuffmanCode]:
    """Encode integer symbols with a canonical Huffman code into bytes.

    Each symbol ``s`` is replaced by its code word (``code.lengths[s]`` bits), written most
    significant bit first; the last byte is padded with zeros. The code is built from the symbols'
    own counts unless ``code`` is given (Han, Mao & Dally 2016, Sec. 4).

    Parameters
    ----------
    symbols : array_like of int >= 0
    code : HuffmanCode, optional
    alphabet_size : int, optional
        Passed to :func:`huffman_code` when ``code`` is not given.

    Returns
    -------
    data : numpy.ndarray of uint8
        ``ceil(code.encoded_bits(symbols) / 8)`` bytes.
    code : HuffmanCode
        Its ``lengths`` are what a decoder needs.

    See Also
    --------
    huffman_decode

    References
    ----------
    .. [1] S. Han, H. Mao, W. J. Dally, "Deep Compression: Compressing Deep Neural Networks with
       Pruning, Trained Quantization and Huffman Coding", ICLR 2016.

    Examples
    --------
    >>> data, code = huffman_encode([0, 0, 0, 1, 2])      # 0 0 0 10 11 -> 7 bits
    >>> data.tolist(), code.encoded_bits([0, 0, 0, 1, 2])
    ([22], 7)
    """
    s = _as_symbols(symbols, "symbols")
    if code is None:
        code = huffman_code(s, alphabet_size=alphabet_size)
    if s.size == 0:
        return np.zeros(0, dtype=np.uint8), code
    if s.max() >= code.alphabet_size or (code.lengths[s] == 0).any():
        raise ValueError("symbols contains a symbol that has no code")
    lens = code.lengths.astype(np.int64)[s]
    codes = np.array([int(c) for c in code.codes], dtype=object)[s]
    if lens.max() <= 62:
        codes = codes.astype(np.int64)
        total = int(lens.sum())
        starts = np.cumsum(lens) - lens
        j = np.arange(total) - np.repeat(starts, lens)                 # bit j of its own code
        bits = (np.repeat(codes, lens) >> (np.repeat(lens, lens) - 1 - j)) & 1
    else:  # very long codes (pathological counts): plain Python
        bits = np.array([int(b) for c, l in zip(codes, lens) for b in format(int(c), f"0{l}b")])
    return np.packbits(bits.astype(np.uint8)), code


def huffman_decode(data: Any, code: HuffmanCode, count: int) -> np.ndarray:
    """Decode ``count`` symbols from ``data`` with the canonical ``code``.

    Canonical decoding reads one bit at a time: with ``first[l]`` the first code of length ``l``
    and ``n[l]`` the number of such codes, the prefix ``c`` of length ``l`` is a code word when
    ``0 <= c - first[l] < n[l]``, and it is the ``(c - first[l])``-th symbol of that length.

    Parameters
    ----------
    data : array_like of uint8
    code : HuffmanCode or array_like of code lengths
    count : int >= 0

    Returns
    -------
    numpy.ndarray of int64, shape (count,)

    Raises
    ------
    ValueError
        When the data end early or hold a bit pattern that is no code word.

    References
    ----------
    .. [1] D. A. Huffman, "A Method for the Construction of Minimum-Redundancy Codes",
       Proc. IRE, 1952.
    .. [2] P. Deutsch, "DEFLATE Compressed Data Format Specification version 1.3", RFC 1951, 1996
       (canonical codes from code lengths).

    Examples
    --------
    >>> data, code = huffman_encode([0, 0, 0, 1, 2])
    >>> huffman_decode(data, code, 5).tolist()
    [0, 0, 0, 1, 2]
    """
    code = code if isinstance(code, HuffmanCode) else V.named(HuffmanCode, "code")(code)
    count = V.check_int(count, "count", 0)
    data = V.as_bytes_array(data)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if count > 8 * data.size:                # every code word takes at least one bit
        raise ValueError(f"count={count} symbols need at least {count} bits but data holds "
                         f"{8 * data.size} (truncated stream?)")
    lengths = code.lengths.astype(np.int64)
    order = sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s))
    if not order:
        raise ValueError("the code has no symbols, so it cannot decode any")
    max_len = int(lengths.max())
    n_of = np.bincount(lengths[lengths > 0], minlength=max_len + 1)
    first, offset = [0] * (max_len + 1), [0] * (max_len + 1)
    c, k = 0, 0
    for l in range(1, max_len + 1):          # DEFLATE's rule: first[l] = (first[l-1] + n[l-1]) << 1
        if l > 1:
            c = (c + int(n_of[l - 1])) << 1
        first[l], offset[l] = c, k
        k += int(n_of[l])
    bits = np.unpackbits(data).tolist()
    out = np.empty(count, dtype=np.int64)
    pos, nbits = 0, len(bits)
    for i in range(count):
        c, l = 0, 0
        while True:
            if pos >= nbits:
                raise ValueError(f"data ended after {i} of {count} symbols (truncated stream?)")
            c = (c << 1) | bits[pos]
            pos += 1
            l += 1
            if l > max_len:
                raise ValueError(f"invalid code word at symbol {i}: no code matches these bits")
            idx = c - first[l]
            if 0 <= idx < n_of[l]:
                out[i] = order[offset[l] + idx]
                break
    return out


# --------------------------------------------------------------------------------------------
# A whole model: encode every parameter, write one .npz
# --------------------------------------------------------------------------------------------
_MAGIC = b"CLZ1"
_AUTO = "auto"


def _encode_stream(symbols: np.ndarray, bits: int, alphabet: int, huffman) -> dict:
    """Symbols as packed fixed-width bits or Huffman bytes (+ the code-length table)."""
    packed = pack_bits(symbols, bits)
    option = {"coding": "packed", "bits": bits, "data": packed, "table": np.zeros(0, np.uint8)}
    if huffman is False:
        return option
    data, code = huffman_encode(symbols, alphabet_size=alphabet)
    # the table: every symbol's code length, 4 bits each when all are < 16 (else a byte each)
    table_bits = 4 if code.lengths.max(initial=0) < 16 else 8
    table = pack_bits(code.lengths, table_bits)
    huff = {"coding": "huffman", "bits": bits, "data": data, "table": table,
            "table_bits": table_bits, "alphabet": alphabet}
    if huffman is True or data.size + table.size < packed.size:
        return huff
    return option


def _decode_stream(s: dict, data: np.ndarray, table: np.ndarray, count: int) -> np.ndarray:
    if s["coding"] == "packed":
        return unpack_bits(data, s["bits"], count)
    lengths = unpack_bits(table, s["table_bits"], s["alphabet"])
    return huffman_decode(data, HuffmanCode(lengths), count)


def _encode_weight(w: np.ndarray, *, sparse, gap_bits: int, codebook, max_codebook_bits: int,
                   huffman) -> dict:
    """All byte streams for one weight tensor, plus the header entry that describes them."""
    flat = w.ravel().astype(np.float32)
    if sparse is True or (sparse == _AUTO and np.count_nonzero(flat) < flat.size):
        values, gaps = relative_index_encode(flat, gap_bits)
        is_sparse = True
    else:
        values, gaps, is_sparse = flat, None, False
    uniq = np.unique(values[values != 0])
    has_zero = bool((values == 0).any())
    alphabet = uniq.size + has_zero
    can_share = alphabet <= 2 ** max_codebook_bits
    if codebook is True and not can_share:
        raise ValueError(f"a weight has {uniq.size} distinct non-zero values, more than a "
                         f"{max_codebook_bits}-bit codebook holds; quantize it first "
                         "(compresslab.quant k-means) or pass codebook=False")
    streams: dict[str, np.ndarray] = {}
    entry: dict[str, Any] = {"sparse": is_sparse, "n": int(values.size)}
    if codebook is not False and can_share:
        bits = max(1, math.ceil(math.log2(max(alphabet, 1))))
        symbols = np.searchsorted(uniq, values)            # zero -> len(uniq) below
        symbols[values == 0] = uniq.size
        st = _encode_stream(symbols, bits, alphabet, huffman)
        entry["values"] = {"kind": "codebook", "k": int(uniq.size), "zero": has_zero,
                           **{k: v for k, v in st.items() if k not in ("data", "table")}}
        streams["codebook"] = uniq.astype(np.float32)
        streams["values"], streams["values_table"] = st["data"], st["table"]
    else:
        entry["values"] = {"kind": "float32"}
        streams["values"] = values.astype(np.float32)
    if is_sparse:
        st = _encode_stream(gaps, gap_bits, 2 ** gap_bits, huffman)
        entry["gaps"] = {k: v for k, v in st.items() if k not in ("data", "table")}
        streams["gaps"], streams["gaps_table"] = st["data"], st["table"]
    return {"entry": entry, "streams": streams}


def _decode_weight(entry: dict, get, shape: tuple) -> np.ndarray:
    n, vals = V.check_int(entry["n"], "n", 0, math.prod(shape)), entry["values"]
    if vals["kind"] == "codebook":
        book = get("codebook").view(np.float32)
        if book.size != vals["k"]:
            raise ValueError("codebook size does not match the header")
        symbols = _decode_stream(vals, get("values"), get("values_table"), n)
        full = np.concatenate([book, np.zeros(1, np.float32)])
        if symbols.size and symbols.max() >= full.size:
            raise ValueError("a value index points outside the codebook")
        values = full[symbols]
    else:
        values = get("values").view(np.float32)
        if values.size != n:
            raise ValueError("value stream length does not match the header")
    if not entry["sparse"]:
        if values.size != int(np.prod(shape)):
            raise ValueError("a dense weight's value count does not match its shape")
        return values.reshape(shape)
    g = entry["gaps"]
    gaps = _decode_stream(g, get("gaps"), get("gaps_table"), n)
    return relative_index_decode(values, gaps, shape)


@dataclass
class CompressedModel:
    """A model encoded to bytes: a JSON header and one payload of byte streams.

    The header holds the architecture and how each parameter is coded; the payload the streams,
    one after another. :func:`save` adds a SHA-256 digest and the ``.npz`` container.

    Parameters
    ----------
    header : dict
    payload : numpy.ndarray of uint8

    Attributes
    ----------
    nbytes : int
        Bytes of the payload (streams, code tables, codebooks, biases), no header;
        :func:`file_size` is what the disk holds.

    Examples
    --------
    >>> cm = pack_model(nn.mlp((4, 3, 2), seed=0), sparse=False, codebook=False, huffman=False)
    >>> cm.nbytes, len(cm.breakdown()), cm.to_model()[0].weight.shape
    (92, 4, (3, 4))
    """

    header: dict
    payload: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes of the payload (streams, code tables, codebooks, biases), no header."""
        return int(self.payload.size)

    def breakdown(self) -> list[dict]:
        """Bytes per parameter and part: ``[{"param", "part", "coding", "bytes"}, ...]``."""
        rows = []
        for p in self.header["params"]:
            for part, length in p["streams"].items():
                if part == "raw":
                    coding = p["raw"]
                elif part == "codebook":
                    coding = "float32"
                elif part.endswith("_table"):
                    coding = "code lengths"
                elif part == "values" and p["values"]["kind"] == "float32":
                    coding = "float32"
                else:
                    coding = f"{p[part]['coding']} ({p[part]['bits']}-bit symbols)"
                rows.append({"param": p["name"], "part": part, "coding": coding, "bytes": int(length)})
        return rows

    def to_model(self) -> nn.Sequential:
        """Decode every parameter and rebuild the :class:`compresslab.nn.Sequential`."""
        return _unpack(self.header, self.payload)

    def to_bytes(self) -> bytes:
        """The self-checking byte string saved in the file: magic, header, payload, SHA-256."""
        head = zlib.compress(json.dumps(self.header, separators=(",", ":")).encode(), 9)
        body = _MAGIC + struct.pack("<I", len(head)) + head + self.payload.tobytes()
        return body + hashlib.sha256(body).digest()

    def __repr__(self):
        return f"CompressedModel(params={len(self.header['params'])}, payload={self.nbytes} bytes)"


def pack_model(model: nn.Sequential, *, sparse="auto", gap_bits: int = 5, codebook="auto",
               max_codebook_bits: int = 8, huffman="auto", bias_dtype: str = "float32") -> CompressedModel:
    """Encode every parameter of ``model`` to bytes, Deep-Compression style.

    Weights (``*.weight``): optionally sparse (relative indices of ``gap_bits`` bits with
    filler zeros), values either raw float32 or indices into a codebook of the tensor's distinct
    non-zero values (plus one symbol for zero when zeros are stored), indices and gaps either
    bit-packed at fixed width or Huffman-coded with a stored code-length table. Other parameters
    (biases) are stored raw as ``bias_dtype`` (``"float32"`` or ``"float16"``).

    Parameters
    ----------
    model : compresslab.nn.Sequential
    sparse, codebook, huffman : True, False or "auto". "auto" uses sparse storage when the
        weight has zeros, a codebook when it has at most ``2**max_codebook_bits`` distinct
        values, and Huffman coding when it is smaller than the packed bits (table included).
        ``codebook=True`` raises ``ValueError`` on an unquantized weight.
    gap_bits : int in [1, 16], width of a relative index (the paper: 5 for fc, 8 for conv).
    max_codebook_bits : int in [1, 16].
    bias_dtype : "float32" (exact) or "float16" (half the bytes; rounds the biases).

    Returns
    -------
    CompressedModel -- ``.nbytes``, ``.breakdown()``, ``.to_model()``; write it with :func:`save`.

    Examples
    --------
    >>> import compresslab as cl
    >>> m = cl.nn.mlp((4, 3, 2))
    >>> cm = pack_model(m, sparse=False, codebook=False, huffman=False)
    >>> cm.nbytes == cl.nn.nbytes(m)          # raw float32: 4 bytes per parameter
    True
    """
    nn.check_model(model)
    for name, value in (("sparse", sparse), ("codebook", codebook), ("huffman", huffman)):
        if value not in (True, False, _AUTO):
            raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")
    gap_bits = V.check_bits(gap_bits, "gap_bits", 1, 16)
    max_codebook_bits = V.check_bits(max_codebook_bits, "max_codebook_bits", 1, 16)
    V.check_choice(bias_dtype, "bias_dtype", {"float32", "float16"})
    params, chunks = [], []

    def add(arr: np.ndarray) -> int:
        """Append a stream to the payload; the header records its length (streams follow
        each other in header order, so offsets need not be stored)."""
        b = np.frombuffer(np.ascontiguousarray(arr).tobytes(), dtype=np.uint8)
        chunks.append(b)
        return int(b.size)

    for name, layer, attr in model.named_parameters():
        w = np.asarray(getattr(layer, attr))
        if not np.isfinite(w).all():
            raise ValueError(f"parameter {name} contains NaN or infinite values")
        if attr == "weight":
            enc = _encode_weight(w, sparse=sparse, gap_bits=gap_bits, codebook=codebook,
                                 max_codebook_bits=max_codebook_bits, huffman=huffman)
            entry = {"name": name, **enc["entry"]}
            entry["streams"] = {k: add(v) for k, v in enc["streams"].items()}
        else:
            entry = {"name": name, "raw": bias_dtype, "streams": {"raw": add(w.astype(bias_dtype))}}
        params.append(entry)
    header = {"format": "compresslab.encode/1", "arch": model.architecture(), "params": params}
    payload = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
    return CompressedModel(header, payload)


def _unpack(header: dict, payload: np.ndarray) -> nn.Sequential:
    """Decode a header and payload; anything that does not add up is a ValueError."""
    try:
        return _unpack_checked(header, payload)
    except V.FileDamage:
        raise
    except (TypeError, KeyError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise ValueError(f"the compressed model is damaged ({type(exc).__name__}: {exc})") from None


def _unpack_checked(header: dict, payload: np.ndarray) -> nn.Sequential:
    model = nn._build(header["arch"], "the compressed model's header")
    own = {name: (layer, attr) for name, layer, attr in model.named_parameters()}
    seen = set()
    offset = 0
    for p in header["params"]:
        name = p["name"]
        if name not in own:
            raise ValueError(f"parameter {name!r} in the file is not in the architecture")
        spans = {}
        for part, length in p["streams"].items():
            spans[part] = (offset, V.check_int(length, f"{name}'s {part} stream length", 0))
            offset += length
        if offset > payload.size:
            raise ValueError(f"the streams of {name} run past the end of the payload")

        def get(part, spans=spans):
            off, length = spans[part]
            return payload[off:off + length]

        layer, attr = own[name]
        shape = getattr(layer, attr).shape
        if "raw" in p:
            if p["raw"] not in ("float32", "float16"):
                raise ValueError(f"{name}: unknown raw dtype {p['raw']!r}")
            value = get("raw").view(np.dtype(p["raw"])).astype(np.float32)
            if value.size != int(np.prod(shape)):
                raise ValueError(f"{name}: {value.size} stored values for shape {shape}")
            value = value.reshape(shape)
        else:
            value = _decode_weight(p, get, shape).astype(np.float32)
        V.check_loaded_param(name, value, shape, "the compressed model")
        setattr(layer, attr, np.ascontiguousarray(value))
        if p.get("sparse"):
            layer.masks[attr] = (value != 0).astype(np.float32)
        seen.add(name)
    if offset != payload.size:
        raise ValueError(f"the payload has {payload.size - offset} bytes that no stream claims")
    if seen != set(own):
        raise ValueError(f"parameters missing from the file: {sorted(set(own) - seen)}")
    model.eval()
    return model


def save(model, path, **pack_kwargs) -> int:
    """Write a model (or a :class:`CompressedModel`) to one ``.npz`` file; return its size.

    The file holds a single uint8 array ``compresslab`` (no pickle): ``b"CLZ1"``, the header
    length (4 bytes), the zlib-compressed JSON header, the payload, and a 32-byte SHA-256 of
    everything before it.

    Parameters
    ----------
    model : compresslab.nn.Sequential or CompressedModel
    path : str or os.PathLike
    **pack_kwargs
        Passed to :func:`pack_model` (not allowed with a :class:`CompressedModel`).

    Returns
    -------
    int
        ``os.path.getsize(path)``: the bytes on disk, container overhead included.

    See Also
    --------
    load, file_size

    Examples
    --------
    >>> import os, tempfile
    >>> m = nn.mlp((4, 3, 2), seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     size = save(m, os.path.join(tmp, "m.npz"))
    ...     back = load(os.path.join(tmp, "m.npz"))
    >>> size == file_size(m), np.array_equal(back[0].weight, m[0].weight)
    (True, True)
    """
    cm = model if isinstance(model, CompressedModel) else pack_model(model, **pack_kwargs)
    if isinstance(model, CompressedModel) and pack_kwargs:
        raise TypeError("pack options cannot be given with an already packed CompressedModel")
    blob = np.frombuffer(cm.to_bytes(), dtype=np.uint8)
    path = os.fspath(path)
    with open(path, "wb") as f:
        np.savez(f, compresslab=blob)
    return os.path.getsize(path)


def file_size(model, **pack_kwargs) -> int:
    """Bytes :func:`save` would write for ``model``, measured by writing to memory.

    Parameters
    ----------
    model : compresslab.nn.Sequential or CompressedModel
    **pack_kwargs
        Passed to :func:`pack_model`.

    Returns
    -------
    int

    Examples
    --------
    >>> m = nn.mlp((64, 32, 10), seed=0)
    >>> m[0].weight[:, 8:] = 0.0                # most of the first layer pruned
    >>> file_size(m) < file_size(m, sparse=False)
    True
    """
    cm = model if isinstance(model, CompressedModel) else pack_model(model, **pack_kwargs)
    buf = io.BytesIO()
    np.savez(buf, compresslab=np.frombuffer(cm.to_bytes(), dtype=np.uint8))
    return buf.getbuffer().nbytes


def _parse(blob: bytes, where: str) -> CompressedModel:
    if len(blob) < len(_MAGIC) + 4 + 32 or blob[:4] != _MAGIC:
        raise ValueError(f"{where} is not a compresslab compressed model (bad magic or too short)")
    body, digest = blob[:-32], blob[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{where} is corrupt or was modified: its SHA-256 checksum does not match")
    (hlen,) = struct.unpack("<I", body[4:8])
    if 8 + hlen > len(body):
        raise ValueError(f"{where} declares a {hlen}-byte header but holds {len(body) - 8} bytes")
    try:    # the header inflates to at most MAX_HEADER_BYTES: a zlib bomb stops there
        header = json.loads(V.inflate(body[8:8 + hlen], V.MAX_HEADER_BYTES, where).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where} has an unreadable header ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("params"), list):
        raise ValueError(f"{where} has a header without a list of parameters")
    if header.get("format") != "compresslab.encode/1":
        raise ValueError(f"{where} has unknown format {header.get('format')!r}")
    return CompressedModel(header, np.frombuffer(body[8 + hlen:], dtype=np.uint8))


def load(path):
    """Read a file written by :func:`save` and decode it: the model, ready to run.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    compresslab.nn.Sequential

    Raises
    ------
    ValueError
        When the file is truncated, altered, or not a compresslab compressed model.
    FileNotFoundError
        When it does not exist.

    See Also
    --------
    load_packed : the file's :class:`CompressedModel`, still encoded.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "m.npz")
    ...     _ = save(nn.mlp((4, 3, 2), seed=0), path)
    ...     model = load(path)
    >>> len(model), type(model).__name__
    (3, 'Sequential')
    """
    packed = load_packed(path)
    try:
        return packed.to_model()
    except ValueError as exc:
        raise ValueError(f"compressed model file {os.fspath(path)!r}: {exc}") from None


def load_packed(path):
    """Read a file written by :func:`save` without decoding it: its :class:`CompressedModel`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    CompressedModel

    Raises
    ------
    ValueError
        When the file is truncated, altered, or not a compresslab compressed model.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "m.npz")
    ...     _ = save(nn.mlp((4, 3, 2), seed=0), path)
    ...     packed = load_packed(path)
    >>> type(packed).__name__, packed.to_model()[0].weight.shape
    ('CompressedModel', (3, 4))
    """
    arrays = nn.read_npz(path)   # allow_pickle=False; zip damage -> ValueError
    where = f"compressed model file {os.fspath(path)!r}"
    if set(arrays) != {"compresslab"} or arrays["compresslab"].dtype != np.uint8:
        raise ValueError(f"{where} does not hold a single uint8 array named 'compresslab'")
    return _parse(arrays["compresslab"].tobytes(), where)
