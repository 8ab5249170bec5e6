"""Cut the language-model corpus shipped as compresslab/datasets/pystdlib.npz.

The corpus is the source code of the Python standard library of one pinned CPython release
(3.11.7, the top-level modules of ``Lib/``), PSF licence. It is real human-written text (code and
its comments and docstrings), small enough to ship, and the same on every machine.

Run with a CPython 3.11.7 (any build that installs the unmodified ``Lib/``, e.g. pyenv's or the
python.org installer), or point ``--lib`` at ``Lib/`` of the 3.11.7 source tarball::

    python tools/make_corpus.py                      # uses the running interpreter's Lib/
    python tools/make_corpus.py --lib ~/src/Python-3.11.7/Lib

Rules (documented again in compresslab/datasets/PYSTDLIB_PROVENANCE.txt):

* every top-level ``Lib/*.py`` file of at most 64,000 bytes, in name order;
* a file goes to test if crc32(name) % 20 == 0, to validation if it is 1, else to train
  (whole files, so no function is split across two parts);
* each part is the files' bytes joined, each file preceded by a header line ``# <name>\\n``;
* the script checks the SHA-256 of every part against the values recorded below, so a
  different release (or a patched Lib/) is refused instead of silently changing the data.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zlib
from pathlib import Path

import numpy as np

RELEASE = "3.11.7"
MAX_FILE_BYTES = 64_000
EXPECTED_SHA256 = {
    "train": "f6afd6396f5d2f72e4465c0c3f32182766772e2a8aca574d3f15f0e36da150e6",
    "validation": "8037ee310996f63005c51582d19eccd0dab08d926ef7b2b04b2933ed996bac83",
    "test": "4aede8bf18b28a040e1472d6ad2e69791c1017a9ed6ad628b863390c18f71d0f",
}


def part_of(name: str) -> str:
    r = zlib.crc32(name.encode()) % 20
    return "test" if r == 0 else "validation" if r == 1 else "train"


def cut(lib: Path) -> dict[str, tuple[bytes, list[str]]]:
    names = sorted(p.name for p in lib.glob("*.py") if p.is_file())
    parts: dict[str, tuple[list[bytes], list[str]]] = {k: ([], []) for k in ("train", "validation", "test")}
    for name in names:
        data = (lib / name).read_bytes()
        if len(data) > MAX_FILE_BYTES:
            continue
        chunks, files = parts[part_of(name)]
        chunks.append(f"# {name}\n".encode() + data)
        files.append(name)
    return {k: (b"".join(c), f) for k, (c, f) in parts.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, default=Path(os.__file__).parent,
                    help="Lib/ folder of CPython %s (default: this interpreter's)" % RELEASE)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[1] / "compresslab" / "datasets" / "pystdlib.npz")
    args = ap.parse_args(argv)
    if args.lib == Path(os.__file__).parent and sys.version.split()[0] != RELEASE:
        ap.error(f"this interpreter is {sys.version.split()[0]}, the corpus is cut from {RELEASE}: pass --lib")
    parts = cut(args.lib)
    arrays = {}
    for k, (data, files) in parts.items():
        digest = hashlib.sha256(data).hexdigest()
        if EXPECTED_SHA256[k] is not None and digest != EXPECTED_SHA256[k]:
            raise SystemExit(f"{k}: SHA-256 {digest} differs from the recorded {EXPECTED_SHA256[k]}: "
                             f"is {args.lib} really CPython {RELEASE}'s unmodified Lib/?")
        arrays[k] = np.frombuffer(data, dtype=np.uint8)
        arrays[f"{k}_files"] = np.array(files)
        print(f"{k:>10}: {len(files):3d} files, {len(data):9,d} bytes, sha256 {digest}")
    arrays["release"] = np.array(RELEASE)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size:,d} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
