"""Train a small character-level transformer LM with every GEMM through numsim (numsim.torch ops).

The corpus is the source text of a few Python standard-library modules (shipped with the
interpreter: nothing is downloaded); the last 10% is held out. Runs, from the same initial weights
and batch order: float32 (torch), and op-level recipes in which every GEMM of the model (the Q/K/V
and output projections, QK^T and PV inside the attention, the feed-forward and the head, forward and
both backward GEMMs) runs through a numsim unit. Prints the held-out loss (bits per character) and
each run's report of what ran where; saves the loss curves as a PNG when matplotlib is there.

    python examples/train_transformer.py            # the run recorded in docs/training.md
    python examples/train_transformer.py --quick    # a few steps (the CI test runs this)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import numsim.torch as nt
from numsim.torch.lm import batches, char_lm, encode_text, stdlib_corpus

RECIPES = [("float32", None),
           ("all GEMMs INT8 (ops_int8)", "ops_int8"),
           ("all GEMMs FP8 / FP16 acc (ops_fp8)", "ops_fp8"),
           ("attention FP8, weights INT4, grads INT8", "ops_fp8_attention_int4_weights")]


def _bar(total, desc, on):
    if not on:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
    except ImportError:
        return None


def evaluate(model, ids, context, n_windows=64):
    """Mean next-character cross entropy (bits) over fixed held-out windows."""
    x, y = next(batches(ids, context, n_windows, 1, seed=12345))
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
    return float(loss) / math.log(2)


def train(recipe, train_ids, val_ids, vocab, args, label):
    model = char_lm(len(vocab), args.d_model, args.heads, args.layers, 2 * args.d_model, args.context, args.seed)
    if recipe is not None:
        model = nt.convert(model, recipe)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    losses = []
    bar = _bar(args.steps, label, not args.no_progress)
    for x, y in batches(train_ids, args.context, args.batch, args.steps, seed=args.seed):
        opt.zero_grad()
        logits = model(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), torch.from_numpy(y).reshape(-1))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()) / math.log(2))
        if bar is not None:
            bar.set_postfix_str(f"{losses[-1]:.2f} bits/char")
            bar.update()
    if bar is not None:
        bar.close()
    report = getattr(model, "numsim_report", None)
    return evaluate(model, val_ids, args.context), losses, report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few steps of a tiny model (CI size)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=None, help="run only these labels (prefix match)")
    ap.add_argument("--png", default="train_transformer_loss.png", help="loss-curve PNG ('' for none)")
    ap.add_argument("--json", default="")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--report", action="store_true", help="print each run's numsim report")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = args.steps or 20
        args.d_model, args.layers, args.context = 16, 1, 16
    args.steps = args.steps or 400
    torch.set_num_threads(1)
    text = stdlib_corpus()
    ids, vocab = encode_text(text)
    cut = int(0.9 * len(ids))
    results = {}
    for label, recipe in RECIPES:
        if args.only and not any(label.startswith(o) for o in args.only):
            continue
        t0 = time.perf_counter()
        val, losses, report = train(recipe, ids[:cut], ids[cut:], vocab, args, label)
        results[label] = {"val_bits": val, "losses": losses, "seconds": time.perf_counter() - t0}
        if report is not None:
            results[label]["unsimulated"] = len(report.unsimulated())
            results[label]["gemm_rows"] = len(report.rows)
            if args.report:
                print(f"\n{label}\n{report}")
    print(f"\nchar LM on {len(ids)} characters of stdlib source ({len(vocab)} symbols), d_model {args.d_model}, "
          f"{args.layers} layers, context {args.context}, batch {args.batch}, {args.steps} Adam steps, lr {args.lr}")
    print("| recipe | held-out bits/char | train bits/char (last 10%) | GEMM rows simulated | time s |\n"
          "|---|---:|---:|---:|---:|")
    for label, r in results.items():
        tail = r["losses"][-max(1, len(r["losses"]) // 10):]
        sim = f"{r['gemm_rows'] - r['unsimulated']}/{r['gemm_rows']}" if "gemm_rows" in r else "-"
        print(f"| {label} | {r['val_bits']:.3f} | {np.mean(tail):.3f} | {sim} | {r['seconds']:.1f} |")
    if args.png:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no loss-curve PNG", file=sys.stderr)
        else:
            fig, ax = plt.subplots(figsize=(7, 4))
            w = max(1, args.steps // 20)
            for label, r in results.items():
                lo = np.convolve(r["losses"], np.ones(w) / w, mode="valid")
                ax.plot(np.arange(len(lo)) + w, lo, label=f"{label} ({r['val_bits']:.2f})")
            ax.set_xlabel("step")
            ax.set_ylabel("training loss, bits/char (moving mean)")
            ax.legend(fontsize=7)
            ax.set_title("char transformer LM: float32 vs every GEMM through numsim")
            fig.tight_layout()
            fig.savefig(args.png, dpi=120)
            print(f"loss curves: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
