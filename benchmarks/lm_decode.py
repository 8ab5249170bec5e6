"""Benchmark: decoding the tiny GPT one token at a time, and int8 weight-only matrix-vector products.

Every comparison is measured side by side in one process (``speed.compare``: interleaved rounds,
medians, 95% bootstrap intervals of the ratios), the same comparisons lesson 06b shows:

1. ``cl.nn.generate`` with and without the KV cache (``--new`` tokens after a ``--prompt``-token
   prompt, greedy);
2. one decode step (a token at position ``--prompt`` of a filled cache): float32, an int8 KV cache,
   int4 g128 weights dequantized in NumPy every token (``GroupQuant.dequantize``), and the
   dequantization alone; next to the bound ``bytes read per token / DRAM bandwidth``
   (``speed.lm.decode_time_bound``, bandwidth from ``speed.measure_bandwidth``);
3. torch (if installed): bare fp32 ``F.linear`` vs the bare int8 kernel ``aten._weight_int8pack_mm``
   with the codes of ``speed.lm.int8_weight_only_linear`` (bfloat16 activations) at batch 1, on
   the model's 16 Linear layers and on one ``--size`` x ``--size`` matrix (memory-bound: int8 reads
   4x fewer bytes), where bf16 and fp16 ``F.linear``, NumPy fp32 and int8 with float32 activations
   are timed too, each with the rate at which it reads its weights.

Checks before timing: the cached and uncached generations give the same tokens, and the int8
layer's output is within its quantization error of the float one. Exit status 1 if a check fails.

Run:  python benchmarks/lm_decode.py [--repeat 9] [--prompt 128] [--new 32] [--size 4096]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def ratio_lines(c, unit="speedup over"):
    for name in list(c.timings)[1:]:
        lo, hi = c.ci[name]
        print(f"  {name} {unit} {c.baseline}: {c.speedup[name]:.2f}x (95% CI [{lo:.2f}, {hi:.2f}], "
              f"{c.verdict[name]})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=9, help="interleaved rounds (median reported)")
    p.add_argument("--prompt", type=int, default=128, help="prompt tokens (default 128)")
    p.add_argument("--new", type=int, default=32, help="new tokens generated (default 32)")
    p.add_argument("--size", type=int, default=4096, help="side of the large square matrix")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    import compresslab as cl
    from compresslab import backend
    from compresslab.speed import compare

    threadpool_limits(1)
    model, text = cl.nn.load_tiny_gpt(), cl.data.load_text()
    c = model.config
    prompt = text.validation[:args.prompt]
    ok = True

    # 1. generate, with and without the cache
    cached = cl.nn.generate(model, prompt, args.new, temperature=0, use_cache=True)
    plain = cl.nn.generate(model, prompt, args.new, temperature=0, use_cache=False)
    same = bool(np.array_equal(cached, plain))
    ok &= same
    print(f"cached and uncached generation give the same {args.new} tokens: {same}")
    gen = compare({"generate, KV cache": lambda: cl.nn.generate(model, prompt, args.new, temperature=0),
                   "generate, no cache": lambda: cl.nn.generate(model, prompt, args.new, temperature=0,
                                                                use_cache=False)},
                  repeat=max(3, args.repeat // 3), warmup=1)
    print(gen.table())
    for name, t in gen.timings.items():
        print(f"  {name}: {args.new / t.median:.0f} new tokens/s (prompt of {args.prompt} included)")

    # 2. one decode step, its variants, and the bandwidth bound
    def decode_step(m, cache):
        m(prompt[None], cache)

        def step():
            m(prompt[None, :1], cache)
            cache.truncate(len(prompt))
        return step

    m4 = model.copy()
    int4 = {n: cl.quant.groups.quantize_groups(l.weight, 4, 128) for n, l in m4.linear_layers().items()}

    def dequantize_all():
        for name, layer in m4.linear_layers().items():
            layer.weight = int4[name].dequantize()

    int4_step = decode_step(m4, cl.nn.KVCache(c))
    steps = compare({"float32 step": decode_step(model, cl.nn.KVCache(c)),
                     "int8 KV-cache step": decode_step(model, cl.nn.KVCache(c, bits=8)),
                     "dequantize int4 + step": lambda: (dequantize_all(), int4_step()),
                     "dequantize int4 only": dequantize_all},
                    repeat=args.repeat, warmup=1, number="auto")
    print()
    print(steps.table())
    ratio_lines(steps)
    bw = cl.speed.measure_bandwidth(mbytes=64, repeat=3)
    weight_bytes = 4 * (sum(l.weight.size for l in model.linear_layers().values()) + model.tok_emb.weight.size)
    kv = cl.speed.lm.kv_cache_bytes(c.n_layer, c.n_head, c.head_dim, tokens=len(prompt))
    bound = cl.speed.lm.decode_time_bound(cl.speed.lm.decode_bytes_per_token(weight_bytes, kv), bw)
    t = steps.timings["float32 step"].median
    print(f"  DRAM bandwidth {bw / 1e9:.1f} GB/s (1 thread): bound {1e3 * bound:.3f} ms a token; "
          f"measured {1e3 * t:.3f} ms = {t / bound:.1f}x the bound")

    # 3. torch int8 weight-only vs fp32
    torch = backend.optional("torch")
    if torch is None:
        print(f"\ntorch is not installed: int8 weight-only timings skipped ({backend.install_hint('torch')})")
        return 0 if ok else 1
    torch.set_num_threads(1)
    F = torch.nn.functional
    lm = cl.speed.lm

    int8_mm = torch.ops.aten._weight_int8pack_mm           # torch's CPU int8 weight-only kernel

    def codes(w, dtype):
        layer = lm.int8_weight_only_linear(w, dtype=dtype)
        return layer.weight_int8, layer.scale

    def int8_vs_float(weights, name):
        """Bare op against bare op (no Python wrapper on either side), one batch-1 vector per layer."""
        w32 = [torch.from_numpy(w) for w in weights]
        q8 = [codes(w, "bfloat16") for w in weights]
        x32 = [torch.ones(1, w.shape[1]) for w in weights]
        x16 = [x.to(torch.bfloat16) for x in x32]
        fns = {f"{name}: fp32 F.linear": (lambda: [F.linear(x, w) for x, w in zip(x32, w32)], 4),
               f"{name}: int8, bf16 act": (lambda: [int8_mm(x, q, s) for x, (q, s) in zip(x16, q8)], 1)}
        if len(weights) == 1:
            w_np, x_np = weights[0], np.ones((1, weights[0].shape[1]), np.float32)
            wb, wh = w32[0].to(torch.bfloat16), w32[0].to(torch.float16)
            xh = x32[0].to(torch.float16)
            qf, sf = codes(weights[0], "float32")
            fns.update({f"{name}: fp32 NumPy x @ W.T": (lambda: x_np @ w_np.T, 4),
                        f"{name}: bf16 F.linear": (lambda: F.linear(x16[0], wb), 2),
                        f"{name}: fp16 F.linear": (lambda: F.linear(xh, wh), 2),
                        f"{name}: int8, fp32 act": (lambda: int8_mm(x32[0], qf, sf), 1)})
        y32, y8 = F.linear(x32[0], w32[0]), int8_mm(x16[0], *q8[0]).float()
        tol = 0.02 * float(y32.abs().max()) + 1e-3
        good = float((y32 - y8).abs().max()) <= tol
        print(f"\n{name}: int8 output within 2 % of the fp32 one's range: {good}")
        result = compare({k: f for k, (f, _) in fns.items()}, repeat=args.repeat, warmup=1, number="auto")
        n = sum(w.size for w in weights)
        rates = {k: n * b / result.timings[k].median for k, (_, b) in fns.items()}
        return result, rates, good

    with torch.inference_mode():
        small, _, ok1 = int8_vs_float([l.weight for l in model.linear_layers().values()], "16 model layers")
        print(small.table())
        ratio_lines(small)
        big_w = np.random.default_rng(0).standard_normal((args.size, args.size), dtype=np.float32)
        big, rates, ok2 = int8_vs_float([big_w], f"{args.size} x {args.size}")
        print(big.table())
        ratio_lines(big)
        for k, r in rates.items():
            print(f"  {k}: weights read at {r / 1e9:.1f} GB/s ({100 * r / bw:.0f} % of the DRAM bandwidth)")
    ok &= ok1 and ok2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
