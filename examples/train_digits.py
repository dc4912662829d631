"""Train a small CNN on scikit-learn's digits as 4-bit training hardware would (numsim.torch).

Runs, from the same initial weights and batch order:
- float32 (torch);
- seed 003's recipe: INT4 forward (PACT / SAWB), FP4 two-phase-rounding backward (`tpr4`);
- the same recipe with one phase only (`tpr4_one_phase`: the even copy feeds both backward GEMMs);
- seed 000's recipe: 8-bit forward, integer gradients at several bit widths (PTQ and BHQ).
Prints the final test-accuracy table and saves the loss curves as a PNG when matplotlib is there.

    python examples/train_digits.py              # the full run recorded in docs/training.md
    python examples/train_digits.py --quick      # a few epochs (the CI test runs this)
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import numsim.torch as nt
from numsim.workloads import load_digits_split


def make_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),               # first layer (float in tpr4)
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),    # 8x8 -> 4x4
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10))                                              # last layer (float in tpr4)


def recipes(grad_bits, quantizers=("ptq", "bhq"), act_alpha=4.0):
    """(label, recipe) pairs; PACT's clip starts at act_alpha (the activations here are O(1))."""
    tpr = {"mode": "tpr", "act_alpha": act_alpha}
    out = [("float32", "float32"),
           ("TPR (seed 003)", {"name": "tpr4", "default": tpr, "first": "float", "last": "float"}),
           ("one phase", {"name": "tpr4_one_phase", "default": dict(tpr, phases=1), "first": "float",
                          "last": "float"})]
    for q in quantizers:
        for b in grad_bits:
            out.append((f"int8 fwd, {q.upper()} {b}b grads",
                        {"name": f"int8_{q}{b}", "default": {"mode": "int", "grad_quantizer": q, "grad_bits": b}}))
    return out


class _TextBar:
    """A minimal progress bar for when tqdm is not installed."""

    def __init__(self, total, desc):
        self.total, self.n, self.desc, self.post = total, 0, desc, ""

    def update(self, k=1):
        self.n += k
        done = int(30 * self.n / max(self.total, 1))
        print(f"\r{self.desc} [{'#' * done}{'.' * (30 - done)}] {self.n}/{self.total} {self.post}", end="",
              file=sys.stderr, flush=True)

    def set_postfix_str(self, s):
        self.post = s

    def close(self):
        print(file=sys.stderr)


def _bar(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)
    except ImportError:
        return _TextBar(total, desc)


def train(recipe, data, epochs, batch, lr, seed, progress=True, label=""):
    xtr, ytr, xte, yte = data
    model = nt.convert(make_model(seed), recipe)
    alphas = [p for n, p in model.named_parameters() if n.endswith("alpha")]
    others = [p for n, p in model.named_parameters() if not n.endswith("alpha")]
    # PACT's clip alpha learns with the same SGD; no decay on it (an L2 pull at this learning rate
    # drags alpha below the activations' range within a few hundred steps)
    opt = torch.optim.SGD([{"params": others}, {"params": alphas}], lr=lr, momentum=0.9)
    rng = np.random.default_rng(seed)
    losses = []
    for ep in range(epochs):
        perm = rng.permutation(len(ytr))
        nb = len(perm) // batch
        bar = _bar(nb, f"{label} epoch {ep + 1}/{epochs}", progress)
        model.train()
        for i in range(nb):
            idx = perm[i * batch:(i + 1) * batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if bar is not None:
                bar.set_postfix_str(f"loss {losses[-1]:.3f}")
                bar.update()
        if bar is not None:
            bar.close()
    model.eval()
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    return acc, losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few epochs on part of the data (CI size)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.1 with --quick, else 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bits", type=int, nargs="*", default=None, help="seed-000 gradient bit widths")
    ap.add_argument("--only", nargs="*", default=None, help="run only these labels (prefix match)")
    ap.add_argument("--png", default="train_digits_loss.png", help="loss-curve PNG ('' for none)")
    ap.add_argument("--json", default="", help="write the results here")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)   # numsim's results never depend on threads; float32's do in the last bits
    xtr, ytr, xte, yte = load_digits_split(seed=args.seed)
    if args.quick:
        xtr, ytr = xtr[:640], ytr[:640]
    epochs = args.epochs or (3 if args.quick else 20)
    lr = args.lr if args.lr is not None else (0.1 if args.quick else 0.05)
    bits = args.bits if args.bits is not None else ([4] if args.quick else [4, 6, 8])
    to_t = lambda a: torch.from_numpy(a.astype(np.float32).reshape(-1, 1, 8, 8))  # noqa: E731
    data = (to_t(xtr), torch.from_numpy(ytr), to_t(xte), torch.from_numpy(yte))
    results = {}
    try:   # the GEMMs here are small: a multithreaded BLAS only adds contention on a busy machine
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=1, user_api="blas")
    except ImportError:
        limit = None
    for label, recipe in recipes(bits, ("ptq",) if args.quick else ("ptq", "bhq")):
        if args.only and not any(label.startswith(o) for o in args.only):
            continue
        t0 = time.perf_counter()
        acc, losses = train(copy.deepcopy(recipe), data, epochs, args.batch, lr, args.seed,
                            progress=not args.no_progress, label=label)
        results[label] = {"accuracy": acc, "losses": losses, "seconds": time.perf_counter() - t0}
    if limit is not None:
        limit.restore_original_limits()
    print(f"\ndigits CNN, {epochs} epochs, batch {args.batch}, lr {lr}, {len(ytr)} train / {len(yte)} test images, "
          f"seed {args.seed}")
    print("| recipe | test accuracy | final loss (mean of last epoch) | time s |\n|---|---:|---:|---:|")
    nb = len(ytr) // args.batch
    for label, r in results.items():
        print(f"| {label} | {r['accuracy']:.4f} | {np.mean(r['losses'][-nb:]):.4f} | {r['seconds']:.1f} |")
    if args.png:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no loss-curve PNG", file=sys.stderr)
        else:
            fig, ax = plt.subplots(figsize=(7, 4))
            for label, r in results.items():
                lo = np.convolve(r["losses"], np.ones(nb) / nb, mode="valid")
                ax.plot(np.arange(len(lo)) / nb + 1, lo, label=f"{label} ({r['accuracy']:.3f})")
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss (moving mean over one epoch)")
            ax.set_yscale("log")
            ax.legend(fontsize=7)
            ax.set_title("digits CNN: float32 vs numsim 4-bit training recipes")
            fig.tight_layout()
            fig.savefig(args.png, dpi=120)
            print(f"loss curves: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
