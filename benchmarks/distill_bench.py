"""Distillation benchmark: kd_loss (NumPy) vs the same loss + backward in torch, and teacher vs
student latency. Every ratio is two medians measured side by side in this run.

    python benchmarks/distill_bench.py
"""
from __future__ import annotations

import numpy as np

from compresslab import data, nn, speed
from compresslab import distill as D


def main() -> None:
    g = np.random.default_rng(0)
    print("threads:", speed.thread_info())
    for n in (64, 1024):
        s = g.normal(size=(n, 10)).astype(np.float32)
        t = g.normal(size=(n, 10)).astype(np.float32)
        y = g.integers(0, 10, n)
        ours = speed.timeit(lambda: D.kd_loss(s, t, y, 4.0, 0.9), repeat=50)
        line = f"kd_loss + gradient, batch {n:>4}: compresslab {ours.median * 1e6:8.1f} us"
        try:
            import torch
            import torch.nn.functional as F
        except ImportError:
            print(line + "   (torch not installed: no comparison)")
            continue
        st, tt, yt = torch.tensor(s, requires_grad=True), torch.tensor(t), torch.tensor(y)

        def torch_kd():
            st.grad = None
            loss = 0.1 * F.cross_entropy(st, yt) + 0.9 * 16 * F.kl_div(
                F.log_softmax(st / 4, 1), F.softmax(tt / 4, 1), reduction="batchmean")
            loss.backward()

        ref = speed.timeit(torch_kd, repeat=50)
        print(line + f", torch autograd {ref.median * 1e6:8.1f} us  -> ratio {ours.median / ref.median:.2f}")

    d = data.load_digits(seed=0)
    teacher, student = nn.mlp((64, 300, 100, 10), seed=0), nn.mlp((64, 16, 10), seed=0)
    for batch in (1, 256):
        x = d.X_test[:batch]
        tt_, ts_ = (speed.timeit(lambda m=m: m(x), repeat=50) for m in (teacher, student))
        print(f"forward, batch {batch:>3}: teacher {tt_.median * 1e6:8.1f} us, student "
              f"{ts_.median * 1e6:7.1f} us -> student {tt_.median / ts_.median:.1f}x faster "
              f"({nn.num_params(teacher) / nn.num_params(student):.0f}x fewer parameters)")


if __name__ == "__main__":
    main()
