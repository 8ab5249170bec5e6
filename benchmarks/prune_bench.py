"""Mask selection for 16M weights: compresslab.prune.magnitude vs torch's l1_unstructured.

torch.nn.utils.prune.l1_unstructured finds the weights to prune with ``torch.topk`` on |w|
(largest=False) and scatters zeros into a mask; compresslab uses one O(n) ``np.partition``
plus a comparison. Both are timed in the same run, on the same float32 weights, with the same
number of threads, and the masks are checked to be equal (the weights are tie-free).

Usage::

    python benchmarks/prune_bench.py [--size 16777216] [--amount 0.9] [--repeat 5] [--threads 1]

Prints the medians and the ratio (torch time / compresslab time; > 1 means compresslab is faster).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16 * 1024 * 1024, help="number of weights")
    ap.add_argument("--amount", type=float, default=0.9, help="fraction to prune")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and BLAS")
    args = ap.parse_args(argv)

    try:
        import torch
        from torch.nn.utils import prune as tprune
    except ImportError:
        print("torch is not installed: pip install torch (the comparison needs it)")
        return 1
    from compresslab import prune
    from compresslab.speed import thread_info, timeit

    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass
    torch.set_num_threads(args.threads)

    cols = 4096
    rows = args.size // cols
    g = np.random.default_rng(0)
    w = g.standard_normal((rows, cols), dtype=np.float32)
    lin = torch.nn.Linear(cols, rows, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))

    def ours():
        return prune.magnitude(w, args.amount)

    def theirs():
        tprune.l1_unstructured(lin, "weight", args.amount)
        mask = lin.weight_mask
        tprune.remove(lin, "weight")  # restore a plain parameter for the next call
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        return mask

    def theirs_mask_only():
        # the mask computation alone, as l1_unstructured does it (topk on |w|, scatter zeros)
        t = lin.weight.detach()
        k = round(args.amount * t.numel())
        mask = torch.ones_like(t)
        idx = torch.topk(t.abs().view(-1), k=k, largest=False).indices
        mask.view(-1)[idx] = 0
        return mask

    print(f"{rows} x {cols} = {rows * cols:,} float32 weights, amount={args.amount}, "
          f"threads: {thread_info()}")
    equal = np.array_equal(ours(), theirs().numpy()) and np.array_equal(ours(), theirs_mask_only().numpy())
    print(f"masks equal to torch: {equal}")
    t_ours = timeit(ours, warmup=1, repeat=args.repeat)
    t_topk = timeit(theirs_mask_only, warmup=1, repeat=args.repeat)
    t_l1 = timeit(theirs, warmup=1, repeat=args.repeat)
    print(f"compresslab.prune.magnitude         {t_ours}")
    print(f"torch.topk mask (l1_unstructured's) {t_topk}")
    print(f"torch l1_unstructured (+ remove)    {t_l1}")
    print(f"ratio torch.topk / compresslab:        {t_topk.median / t_ours.median:.2f}x")
    print(f"ratio l1_unstructured / compresslab:   {t_l1.median / t_ours.median:.2f}x")
    return 0 if equal else 2


if __name__ == "__main__":
    sys.exit(main())
