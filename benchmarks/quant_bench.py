"""Benchmark: compresslab.quant.quantize vs torch.quantize_per_tensor on 16M float32 values.

Both run on one thread in the same process, on the same input, timed interleaved round by round
(``speed.compare``), and the integers are compared for bit-exactness before any timing is
reported. Prints the medians and the ratio ours / torch with its 95% bootstrap interval
(target <= 2).

The formula being timed is torch's rule, ``quantize(x, qp, rounding="torch")`` (see
``compresslab.quant._kernels``); with torch 2.13 on x86:

    q = clamp(round_half_even(float32(x * (1 / scale) + zero_point)), qmin, qmax)

``quantize`` runs it as one compiled loop over the elements when numba is installed
(``pip install -e ".[fast]"``), like torch's C++ kernel; without numba, as chunked NumPy ufuncs
(each a pass over a cache-sized chunk). Both kernels are timed and checked here; only the first
can meet the target, because NumPy needs several passes where torch makes one. The default rule,
``round_half_even(x / scale) + zero_point``, runs in the same loop (values near a tie are redone
with an exact float64 division) and is timed too; it differs from torch's integers only at near
ties, so it is not checked against them.

Run:  python benchmarks/quant_bench.py [--n 16777216] [--repeat 15]
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
    p.add_argument("--repeat", type=int, default=15, help="interleaved rounds (median reported)")
    p.add_argument("--scale", type=float, default=0.02, help="used with --zero-point")
    p.add_argument("--zero-point", type=int, default=None,
                   help="default: from the min-max observer of the data, like a calibrated model")
    p.add_argument("--chunk", type=int, default=None, help="NumPy kernel: elements per chunk")
    p.add_argument("--rounding", default="torch", help="a rule of quant.ROUNDINGS (default: torch's)")
    args = p.parse_args(argv)

    from compresslab import backend
    from compresslab import quant as Q
    from compresslab.quant import _kernels as K
    from compresslab.speed import compare

    torch = backend.optional("torch")
    if torch is None:
        print(f"torch is not installed: nothing to compare with ({backend.install_hint('torch')})")
        return 0
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    torch.set_num_threads(1)

    g = np.random.default_rng(0)
    x = g.normal(0, 1, args.n).astype(np.float32)
    if args.chunk:
        K._CHUNK = args.chunk
    if args.zero_point is None:
        qp = Q.qparams(x, 8, "affine")          # an observer's scale: 24 significant bits in 1/scale
    else:
        qp = Q.QParams(args.scale, args.zero_point, 0, 255)
    s32 = np.float32(qp.scale)
    x[::1000] = (np.rint(x[::1000] / s32) + np.float32(0.5)) * s32   # exact ties too
    tx = torch.from_numpy(x)
    scale = float(qp.scale)
    rule = K.rule_for(args.rounding, qp)
    compiled = K._compiled_loop() is not None and args.n >= K.JIT_MIN_SIZE

    fns = {"torch.quantize_per_tensor":
           lambda: torch.quantize_per_tensor(tx, scale, qp.zero_point, torch.quint8),
           "quant.quantize": lambda: Q.quantize(x, qp, rounding=rule)}
    if compiled:
        fns["NumPy kernel (no numba)"] = lambda: K.quantize_per_tensor(x, qp, rule, kernel="numpy")
    checked = list(fns)[1:]
    if rule != "divide":
        fns["quant.quantize default 'divide' (not torch's rule)"] = lambda: Q.quantize(x, qp)
    theirs = fns["torch.quantize_per_tensor"]().int_repr().numpy()
    exact = {}
    for name in checked:
        mism = int((fns[name]() != theirs).sum())
        exact[name] = mism == 0
        print(f"{name} bit-exact with torch.quantize_per_tensor: {mism == 0} ({mism} mismatches)")

    c = compare(fns, repeat=args.repeat, warmup=12)   # torch's allocator settles after ~10 calls
    print(f"\nquantize {args.n:,} float32 values -> quint8 (scale {scale:.6g}, zero point {qp.zero_point})")
    print(f"threads: torch {torch.get_num_threads()}, ours 1, cpu_count {os.cpu_count()}")
    print(f"rounding rule: {rule} (torch's here: {Q.torch_rounding()['tensor']})")
    if compiled:
        import numba
        print(f"quant.quantize kernel: one compiled loop (numba {numba.__version__})")
    else:
        print(f"quant.quantize kernel: NumPy ufuncs in chunks of {K._CHUNK} "
              "(install numba, compresslab[fast], for the compiled loop)")
    print(c.table())
    print()
    for name in list(fns)[1:]:
        lo, hi = c.ci[name]
        print(f"ratio {name} / torch (median): {1 / c.speedup[name]:.2f}x  "
              f"(95% CI [{1 / hi:.2f}, {1 / lo:.2f}])")
    ratio, worst = 1 / c.speedup["quant.quantize"], 1 / c.ci["quant.quantize"][0]
    print(f"target quant.quantize <= 2x torch (the whole interval): "
          f"{'met' if worst <= 2 else 'NOT met'} ({ratio:.2f}x, at most {worst:.2f}x)")
    return 0 if all(exact.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
