"""Train the tiny GPT shipped as compresslab/datasets/tiny_gpt.npz (torch, CPU).

    python tools/train_tiny_gpt.py                 # the shipped model (measured time in PYSTDLIB_PROVENANCE.txt)
    python tools/train_tiny_gpt.py --steps 50      # a quick look

The network is compresslab's own GPT (``compresslab.nn.GPT``: GPT-2's architecture, 4 layers,
4 heads, width 128, context 256, byte tokens) built in torch by ``compresslab.nn.to_torch`` from
``torch.nn.TransformerEncoderLayer``, initialised by ``GPT(config, seed)`` in NumPy, trained on the
train part of ``compresslab.data.load_text()`` (the CPython 3.11.7 standard library) with AdamW,
and converted back with ``compresslab.nn.from_torch``. Everything random is seeded (initial
weights, batch positions); torch runs with ``--threads`` threads (2 for the shipped model: the
CPU count of the CI machines). Results are the same on the same machine and torch version; a
different CPU or torch build may differ in the last bits of float32 arithmetic.

The log prints training loss and validation loss (nats per byte) every ``--eval-every`` steps;
the end writes the model with the run's settings, its validation-loss curve and final validation
perplexity stored as extra arrays (``compresslab.nn.load_with_extra``).

Drafts for speculative decoding (lesson 07; the shipped ones, measured times in the provenance file):

    python tools/train_tiny_gpt.py --n-layer 1 --threads 1 --out compresslab/datasets/draft_scratch.npz
    python tools/train_tiny_gpt.py --n-layer 1 --threads 1 --teacher compresslab/datasets/tiny_gpt.npz \
        --out compresslab/datasets/draft_distilled.npz

With ``--teacher`` the loss is token-level knowledge distillation, ``compresslab.distill.kd_loss``
(Hinton et al. 2015) on every position's 256 logits: ``(1 - alpha) * CE(next byte) + alpha * T**2 *
KL(teacher_T || student_T)``, with ``--kd-temperature`` T and ``--kd-alpha`` alpha; its value and
its gradient with respect to the draft's logits come from that NumPy function and are fed back
into torch's autograd (``logits.backward(grad)``). The teacher runs in torch without gradients on
the same batches. Same seed, initial weights, batches and steps as the scratch draft: only the
loss differs.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import compresslab.nn as cnn
from compresslab.data import load_text
from compresslab.distill import kd_loss

ROOT = Path(__file__).resolve().parents[1]


def batches(tokens: np.ndarray, block: int, batch: int, g: np.random.Generator):
    while True:
        starts = g.integers(0, len(tokens) - block - 1, batch)
        x = np.stack([tokens[s:s + block + 1] for s in starts])
        yield torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])


@torch.no_grad()
def mean_loss(model, tokens: np.ndarray, block: int, max_chunks: int = 64) -> float:
    model.eval()
    n = min(max_chunks, len(tokens) // (block + 1))
    chunks = torch.from_numpy(tokens[:n * (block + 1)].reshape(n, block + 1))
    losses = []
    for s in range(0, n, 16):
        c = chunks[s:s + 16]
        logits = model(c[:, :-1])
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), c[:, 1:].reshape(-1),
                                      reduction="sum").item())
    model.train()
    return sum(losses) / (n * block)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--teacher", type=Path, default=None, help="a GPT .npz to distil from (token-level KD)")
    ap.add_argument("--kd-temperature", type=float, default=1.0)
    ap.add_argument("--kd-alpha", type=float, default=1.0, help="weight of the teacher term (1: teacher only)")
    ap.add_argument("--out", type=Path, default=ROOT / "compresslab" / "datasets" / "tiny_gpt.npz")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = load_text()
    config = cnn.GPTConfig(vocab_size=256, block_size=args.block_size, n_layer=args.n_layer,
                           n_head=args.n_head, n_embd=args.n_embd)
    model = cnn.gpt_to_torch(cnn.GPT(config, seed=args.seed), dropout=args.dropout).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:            # linear warm-up, then cosine decay to min_lr
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * t))

    teacher = None
    if args.teacher is not None:
        teacher = cnn.gpt_to_torch(cnn.load(args.teacher)).eval()
    data = batches(corpus.train, args.block_size, args.batch, np.random.default_rng(args.seed))
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters; {args.steps} steps of "
          f"{args.batch} x {args.block_size} tokens; {args.threads} threads"
          + (f"; distilled from {args.teacher.name} (T={args.kd_temperature}, alpha={args.kd_alpha})"
             if teacher is not None else ""))
    curve_steps, curve_val = [], []
    t0 = time.perf_counter()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x, y = next(data)
        logits = model(x)
        opt.zero_grad(set_to_none=True)
        if teacher is None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
        else:
            with torch.no_grad():
                t_logits = teacher(x)
            flat = logits.detach().reshape(-1, logits.shape[-1]).numpy()
            value, grad = kd_loss(flat, t_logits.reshape(flat.shape).numpy(), y.reshape(-1).numpy(),
                                  T=args.kd_temperature, alpha=args.kd_alpha)
            logits.backward(torch.from_numpy(grad).reshape(logits.shape))
            loss = torch.tensor(value)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            val = mean_loss(model, corpus.validation, args.block_size)
            curve_steps.append(step + 1)
            curve_val.append(val)
            print(f"step {step + 1:5d}  train {loss.item():.3f}  val {val:.3f} nats/byte "
                  f"(ppl {math.exp(val):.2f})  {time.perf_counter() - t0:7.1f} s", flush=True)
    minutes = (time.perf_counter() - t0) / 60
    gpt = cnn.from_torch(model.eval())
    val_ppl = cnn.perplexity(gpt, corpus.validation)
    print(f"trained in {minutes:.1f} min; validation perplexity {val_ppl}")
    extra = {"train_steps": np.array(args.steps), "train_batch": np.array(args.batch),
             "train_lr": np.array(args.lr), "train_seed": np.array(args.seed),
             "train_threads": np.array(args.threads), "train_minutes": np.array(round(minutes, 2)),
             "validation_perplexity": np.array(val_ppl.value), "torch_version": np.array(torch.__version__),
             "curve_steps": np.array(curve_steps), "curve_validation_loss": np.array(curve_val)}
    if teacher is not None:
        extra.update(kd_teacher=np.array(args.teacher.name), kd_temperature=np.array(args.kd_temperature),
                     kd_alpha=np.array(args.kd_alpha))
    size = cnn.save(gpt, args.out, extra=extra)
    print(f"wrote {args.out} ({size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
