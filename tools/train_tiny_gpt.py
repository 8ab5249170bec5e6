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

The training loop is ``compresslab.distill.train_gpt``. With ``--teacher`` its loss is token-level
knowledge distillation, ``compresslab.distill.kd_loss`` (Hinton et al. 2015) on every position's
256 logits: ``(1 - alpha) * CE(next byte) + alpha * T**2 * KL(teacher_T || student_T)``, with
``--kd-temperature`` T and ``--kd-alpha`` alpha; its value and its gradient with respect to the
draft's logits come from that NumPy function and are fed back into torch's autograd. The teacher
runs in torch without gradients on the same batches. Same seed, initial weights, batches and
steps as the scratch draft: only the loss differs.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

import compresslab.nn as cnn
from compresslab.data import load_text
from compresslab.distill import train_gpt

ROOT = Path(__file__).resolve().parents[1]


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

    corpus = load_text()
    config = cnn.GPTConfig(vocab_size=256, block_size=args.block_size, n_layer=args.n_layer,
                           n_head=args.n_head, n_embd=args.n_embd)
    model = cnn.GPT(config, seed=args.seed)
    teacher = None if args.teacher is None else cnn.load(args.teacher)
    print(f"{model.num_params():,} parameters; {args.steps} steps of {args.batch} x {args.block_size} tokens; "
          f"{args.threads} threads"
          + (f"; distilled from {args.teacher.name} (T={args.kd_temperature}, alpha={args.kd_alpha})"
             if teacher is not None else ""))
    gpt, history = train_gpt(model, corpus.train, steps=args.steps, teacher=teacher, T=args.kd_temperature,
                             alpha=args.kd_alpha, batch=args.batch, lr=args.lr, min_lr=args.min_lr,
                             warmup=args.warmup, weight_decay=args.weight_decay, dropout=args.dropout,
                             seed=args.seed, threads=args.threads, eval_tokens=corpus.validation,
                             eval_every=args.eval_every, log=lambda line: print(line, flush=True))
    minutes = history["minutes"]
    val_ppl = cnn.perplexity(gpt, corpus.validation)
    print(f"trained in {minutes:.1f} min; validation perplexity {val_ppl}")
    extra = {"train_steps": np.array(args.steps), "train_batch": np.array(args.batch),
             "train_lr": np.array(args.lr), "train_seed": np.array(args.seed),
             "train_threads": np.array(args.threads), "train_minutes": np.array(round(minutes, 2)),
             "validation_perplexity": np.array(val_ppl.value), "torch_version": np.array(torch.__version__),
             "curve_steps": np.array(history["steps"]), "curve_validation_loss": np.array(history["validation_loss"])}
    if teacher is not None:
        extra.update(kd_teacher=np.array(args.teacher.name), kd_temperature=np.array(args.kd_temperature),
                     kd_alpha=np.array(args.kd_alpha))
    size = cnn.save(gpt, args.out, extra=extra)
    curve = ", ".join(f"{v:.3f}" for v in history["validation_loss"])
    print(f"wrote {args.out} ({size:,} bytes); validation loss every {args.eval_every} steps: {curve} "
          f"(perplexity {math.exp(history['validation_loss'][-1]):.2f} on its first 64 windows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
