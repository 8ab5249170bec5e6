"""Measure CPU vs GPU for lesson 04b on a real CUDA GPU and write the labelled reference file.

    python benchmarks/gpu_reference.py            # writes compresslab/datasets/gpu_reference.json
    python benchmarks/gpu_reference.py --out x.json

Runs only where torch sees a CUDA device: it never writes numbers that were not measured on a
GPU. Takes well under two minutes. What it measures, for the MLP 1024-4096-4096-10 that
lesson 04b and `compresslab bench` use (float32, eval mode, torch.inference_mode):

* a batch-size sweep: CPU time (all CPU threads), GPU compute time with the input already on
  the GPU (torch.cuda.synchronize around every sample), and GPU time including the
  host -> device copy of the input and the device -> host copy of the output;
* where the GPU supports it (compute capability >= 8.0, torch >= 2.1), one 4096x4096 fp16 layer
  with 2:4 semi-structured sparsity (torch.sparse.to_sparse_semi_structured) vs the same dense
  fp16 layer (Mishra et al. 2021, arXiv:2104.08378). Failures are recorded, not hidden.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def two_four(repeat: int = 20) -> dict:
    """Dense fp16 vs 2:4 semi-structured sparse fp16, one 4096x4096 layer, several batches."""
    import torch

    from compresslab import speed
    out = {"layer": [4096, 4096], "dtype": "float16", "rows": []}
    try:
        from torch.sparse import to_sparse_semi_structured
        g = torch.Generator(device="cuda").manual_seed(0)
        w = torch.randn(4096, 4096, device="cuda", dtype=torch.float16, generator=g)
        # keep the 2 largest |w| of every 4 consecutive weights in a row
        groups = w.abs().reshape(4096, -1, 4)
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, groups.topk(2, dim=2).indices, True)
        w24 = (w.reshape(4096, -1, 4) * keep).reshape(4096, 4096)
        ws = to_sparse_semi_structured(w24)
        for b in (64, 1024, 4096):
            x = torch.randn(b, 4096, device="cuda", dtype=torch.float16, generator=g)
            err = (torch.nn.functional.linear(x, ws) - torch.nn.functional.linear(x, w24)).abs().max()
            t_d = speed.timeit(lambda: torch.nn.functional.linear(x, w24), warmup=5, repeat=repeat, sync="cuda")
            t_s = speed.timeit(lambda: torch.nn.functional.linear(x, ws), warmup=5, repeat=repeat, sync="cuda")
            out["rows"].append({"batch": b, "dense_s": t_d.median, "sparse24_s": t_s.median,
                                "speedup": t_d.median / t_s.median, "max_abs_diff": float(err)})
    except Exception as exc:  # unsupported GPU / build: record why
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    return out


def main(argv=None) -> int:
    from compresslab import speed
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=speed.GPU_REFERENCE_PATH)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print("gpu_reference: torch sees no CUDA GPU; nothing measured, nothing written.",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 really means float32
    model = speed.mlp_torch((1024, 4096, 4096, 10), seed=0)
    sweep = speed.cpu_gpu_sweep(model, batches=(1, 16, 64, 256, 1024, 4096), device="cuda",
                                repeat=args.repeat, cpu_threads=os.cpu_count(), progress=True)
    sweep["model"] = "MLP 1024-4096-4096-10, float32 (TF32 off)"
    cap = torch.cuda.get_device_capability()
    sweep["compute_capability"] = f"{cap[0]}.{cap[1]}"
    sweep["sparse_2_4"] = two_four() if cap >= (8, 0) else {"error": f"compute capability {cap} < 8.0"}
    sweep["note"] = ("Measured by benchmarks/gpu_reference.py on the GPU named here; "
                     "medians of synchronised timings. Not measured on the learner's machine.")
    sweep["seconds_to_measure"] = round(time.perf_counter() - t0, 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(sweep, f, indent=2)
    for r in sweep["rows"]:
        print(f"batch {r['batch']:>5}: CPU {r['cpu_s'] * 1e3:8.2f} ms, GPU {r['device_s'] * 1e3:7.3f} ms "
              f"({r['speedup_compute']:.1f}x), GPU+copies {r['device_with_transfer_s'] * 1e3:7.3f} ms "
              f"({r['speedup_with_transfer']:.1f}x)")
    print("2:4 sparse:", json.dumps(sweep["sparse_2_4"]))
    print(f"wrote {args.out} in {sweep['seconds_to_measure']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
