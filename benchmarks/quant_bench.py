"""Benchmark: compresslab.quant.quantize vs torch.quantize_per_tensor on 16M float32 values.

Both run on one thread in the same process (NumPy's element-wise work is single-threaded, so torch
is limited to one thread too), on the same input, and the integers are compared for bit-exactness
before any timing is reported. Prints the medians and the ratio ours / torch (target <= 2).

The formula being timed (see ``compresslab.quant.quantize``):

    q = clamp(round_half_even(float32(x * (1 / scale) + zero_point)), qmin, qmax)

computed in cache-sized chunks with preallocated buffers and in-place ufuncs.

Run:  python benchmarks/quant_bench.py [--n 16777216] [--repeat 7]
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16 * 2 ** 20, help="number of float32 values (default 16M)")
    p.add_argument("--repeat", type=int, default=7, help="timed repeats (median reported)")
    p.add_argument("--scale", type=float, default=0.02, help="used with --zero-point")
    p.add_argument("--zero-point", type=int, default=None,
                   help="default: from the min-max observer of the data, like a calibrated model")
    p.add_argument("--chunk", type=int, default=None, help="elements per chunk (default: the module's)")
    p.add_argument("--rounding", default=None, help="force a rule of quant.ROUNDINGS (default: torch's)")
    args = p.parse_args(argv)

    from compresslab import quant as Q
    from compresslab.speed import timeit

    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare with (pip install 'compresslab[torch]')")
        return 0
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    torch.set_num_threads(1)

    g = np.random.default_rng(0)
    x = g.normal(0, 1, args.n).astype(np.float32)
    if args.chunk:
        Q._CHUNK = args.chunk
    if args.zero_point is None:
        qp = Q.qparams(x, 8, "affine")          # an observer's scale: 24 significant bits in 1/scale
    else:
        qp = Q.QParams(args.scale, args.zero_point, 0, 255)
    s32 = np.float32(qp.scale)
    x[::1000] = (np.rint(x[::1000] / s32) + np.float32(0.5)) * s32   # exact ties too
    tx = torch.from_numpy(x)
    scale = float(qp.scale)

    rule = args.rounding or Q.torch_rounding()["tensor"]
    ours = Q.quantize(x, qp, rounding=rule)
    theirs = torch.quantize_per_tensor(tx, scale, qp.zero_point, torch.quint8).int_repr().numpy()
    exact = bool(np.array_equal(ours, theirs))
    mism = int((ours != theirs).sum())

    t_ours = timeit(lambda: Q.quantize(x, qp, rounding=rule), warmup=2, repeat=args.repeat)
    t_torch = timeit(lambda: torch.quantize_per_tensor(tx, scale, qp.zero_point, torch.quint8),
                     warmup=2, repeat=args.repeat)
    ratio = t_ours.median / t_torch.median
    print(f"quantize {args.n:,} float32 values -> quint8 (scale {scale:.6g}, zero point {qp.zero_point}, "
          f"chunk {Q._CHUNK})")
    print(f"threads: torch {torch.get_num_threads()}, NumPy element-wise 1, cpu_count {os.cpu_count()}")
    print(f"rounding rule: {rule} (torch's here: {Q.torch_rounding()['tensor']})")
    print(f"bit-exact with torch.quantize_per_tensor: {exact} ({mism} mismatches)")
    print(f"compresslab.quant.quantize : {t_ours}")
    print(f"torch.quantize_per_tensor  : {t_torch}")
    print(f"ratio ours / torch (median): {ratio:.2f}x  (target <= 2: {ratio <= 2})")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
