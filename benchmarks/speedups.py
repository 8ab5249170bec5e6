"""The three speedups compresslab promises, each a ratio of medians measured in one run.

    python benchmarks/speedups.py [--runs 3] [--batch 64] [--threads N] [--json out.json]

(a) MLP 1024-4096-4096-10 with 50% of the hidden units removed (compresslab.prune.structured +
    shrink) vs dense, torch float32, batch 64 -- target >= 1.6x;
(b) the same dense model through torch's int8 kernels (quantize_dynamic, x86/fbgemm engine) vs
    float32, batch 64, same thread count -- target >= 1.5x;
(c) one 4096x4096 layer at 95% sparsity, scipy.sparse CSR vs NumPy's BLAS matrix-vector product,
    batch 1, one thread each -- target >= 2x (Han, Mao & Dally 2016 report ~3x on CPU).

Measurements are interleaved (A B A B ...) with a bootstrap 95% CI per ratio; see
compresslab.bench.standard_benchmark. With --runs N the whole benchmark is repeated N times,
so a reader can see how much the ratios move on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import sys

from compresslab import bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", help="write every run's report to this file")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    reports, all_met = [], True
    for run in range(args.runs):
        rep = bench.standard_benchmark(batch=args.batch, repeat=args.repeat, threads=args.threads,
                                       variants=["dense", "masked", "shrunk", "int8"], seed=run)
        reports.append(rep)
        print(f"\n=== run {run + 1} of {args.runs}, {rep['date']} ===")
        print(bench.report_table(rep))
        all_met &= all(r["met"] for r in rep["required"].values())
    if args.runs > 1:
        print("\nsummary (speedup per run):")
        for key in reports[0]["required"]:
            vals = [r["required"][key]["speedup"] for r in reports]
            print(f"  {key:<20} " + "  ".join(f"{v:.2f}x" for v in vals)
                  + f"   min {min(vals):.2f}x, target {reports[0]['required'][key]['target']}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(reports, f, indent=2, default=bench._json_default)
    print("\nALL TARGETS MET" if all_met else "\nSOME TARGETS NOT MET")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
