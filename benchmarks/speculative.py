"""Benchmark: speculative decoding of the tiny GPT with its two 1-layer drafts, against plain decoding.

Everything is measured side by side in one process with ``speed.compare`` (interleaved rounds,
medians, 95 % bootstrap intervals of the ratios), the measurements lesson 07 shows:

1. the cost of one call (``speculative.measure_call_costs``): the target on 1 and on k+1 new
   tokens, the draft on 1, after ``--prompt`` cached tokens; c = draft / target and
   v(k) = target(k+1 tokens) / target(1 token);
2. for each draft (``distilled``, ``scratch``) and k = 1..``--kmax``: greedy speculative decoding
   of ``--new`` tokens after a ``--prompt``-byte prompt of the validation text vs
   ``cl.nn.generate`` on the same prompt, interleaved: tokens/s of both, the speedup with its
   interval, the measured acceptance rate alpha and tokens per target call next to
   ``(1 - alpha**(k+1)) / (1 - alpha)``, and the speedup the cost model predicts,
   ``expected_speedup(alpha, k, c, v(k))``;
3. the break-even draft cost ``(E - v) / k`` for the measured alpha and v.

Checks before timing: every speculative run gives the same tokens as ``generate``. Exit status 1
if one does not.

Run:  python benchmarks/speculative.py [--repeat 9] [--prompt 64] [--new 96] [--kmax 8] [--prompts 3]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=9, help="interleaved rounds (median reported)")
    p.add_argument("--prompt", type=int, default=64, help="prompt bytes (default 64)")
    p.add_argument("--new", type=int, default=96, help="new tokens per run (default 96)")
    p.add_argument("--kmax", type=int, default=8, help="largest k (default 8)")
    p.add_argument("--prompts", type=int, default=3, help="prompts per timed call (default 3)")
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    import compresslab as cl
    from compresslab import speculative as S
    from compresslab.speed import compare

    threadpool_limits(1)
    target, text = cl.nn.load_tiny_gpt(), cl.data.load_text().validation
    drafts = {kind: cl.nn.load_draft(kind) for kind in cl.nn.DRAFTS}
    starts = np.linspace(0, len(text) - args.prompt - 1, args.prompts).astype(int)
    prompts = [text[s:s + args.prompt] for s in starts]
    ks = list(range(1, args.kmax + 1))

    costs = {name: S.measure_call_costs(target, d, context=args.prompt, ks=ks, repeat=args.repeat)
             for name, d in drafts.items()}
    first = next(iter(costs.values()))
    print(f"one call after {args.prompt} cached tokens: target {1e3 * first.target:.3f} ms, "
          + ", ".join(f"draft '{n}' {1e3 * c.draft:.3f} ms (c = {c.cost:.2f})" for n, c in costs.items()))
    print("target on k+1 tokens / on 1 token, v(k): "
          + ", ".join(f"k={k}: {first.verify_ratio(k):.2f}" for k in ks))

    ok = True
    plain = [cl.nn.generate(target, pr, args.new, temperature=0) for pr in prompts]
    for name, draft in drafts.items():
        c = costs[name]
        print(f"\ndraft '{name}': greedy, {args.new} new tokens after each of {len(prompts)} prompts")
        print(f"{'k':>3} {'alpha':>6} {'tok/call':>9} {'formula':>8} {'plain tok/s':>12} {'spec tok/s':>11} "
              f"{'speedup':>8} {'95% CI':>15} {'model':>6} {'break-even c':>13}")
        for k in ks:
            runs = [S.speculative_generate(target, draft, pr, k, args.new) for pr in prompts]
            same = all(np.array_equal(r.tokens, want) for r, want in zip(runs, plain))
            ok &= same
            alpha = S.alpha_interval(runs)[0]                # kept / tested proposals, pooled
            per_call = sum(r.new_tokens for r in runs) / sum(r.target_calls for r in runs)
            cmp = compare({"plain": lambda: [cl.nn.generate(target, pr, args.new, temperature=0) for pr in prompts],
                           "speculative": lambda: [S.speculative_generate(target, draft, pr, k, args.new)
                                                   for pr in prompts]},
                          repeat=args.repeat, warmup=1)
            n = args.new * len(prompts)
            lo, hi = cmp.ci["speculative"]
            model = S.expected_speedup(alpha, k, c.cost, c.verify_ratio(k))
            print(f"{k:>3} {alpha:>6.3f} {per_call:>9.2f} {S.expected_tokens_per_call(alpha, k):>8.2f} "
                  f"{n / cmp.timings['plain'].median:>12.0f} {n / cmp.timings['speculative'].median:>11.0f} "
                  f"{cmp.speedup['speculative']:>7.2f}x [{lo:.2f}, {hi:.2f}]{'':>1} {model:>5.2f}x "
                  f"{S.break_even_cost(alpha, k, c.verify_ratio(k)):>13.2f}" + ("" if same else "  OUTPUT DIFFERS"))
    print("\nmodel: expected_speedup(alpha, k, c, v(k)) = (1 - alpha**(k+1)) / ((1 - alpha) (k c + v(k)));"
          " break-even c = (E - v(k)) / k: a draft cheaper than that would win")
    print(f"greedy speculative output identical to generate's on every run: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
