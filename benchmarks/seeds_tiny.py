"""The seeds' training claims re-measured at the tiny scale a 2-core CPU session affords (docs/seeds.md).

- seed 003: INT4 forward / FP4 two-phase-rounding backward vs one phase vs float32, on the digits CNN
  of examples/train_digits.py (--quick size: 3 epochs, 640 images), over several seeds;
- seed 000: 8-bit forward with PTQ / PSQ / BHQ gradients at 5 and 8 bits on the character transformer
  LM of examples/train_transformer.py: the Linear layers (feed-forward, head) in the module-level 'int'
  mode with that gradient quantizer, every other GEMM (attention projections, QK^T, PV) INT8 at the op
  level; held-out bits per character against float32.

    PYTHONPATH=. python benchmarks/seeds_tiny.py [--seeds 0 1 2] [--lm-steps 200]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def seed003(seeds):
    digits = _example("train_digits")
    rows = {}
    for s in seeds:
        res = digits.main(["--quick", "--seed", str(s), "--png", "", "--no-progress", "--only", "float32", "TPR", "one"])
        for label, r in res.items():
            rows.setdefault(label, []).append(r["accuracy"])
    print("\nseed 003 on the digits CNN (--quick: 3 epochs, 640 training images), test accuracy\n")
    print("| recipe | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |\n|---|" + "---:|" * (len(seeds) + 1))
    for label, accs in rows.items():
        print(f"| {label} | " + " | ".join(f"{a:.4f}" for a in accs) + f" | {np.mean(accs):.4f} |")


def seed000(steps, seed):
    tt = _example("train_transformer")
    import numsim.torch as nt
    from numsim.torch.lm import char_lm, encode_text, stdlib_corpus

    ids, vocab = encode_text(stdlib_corpus())
    cut = int(0.9 * len(ids))
    args = tt.main.__globals__["argparse"].Namespace(d_model=32, heads=4, layers=2, context=32, batch=16, lr=3e-3,
                                                     seed=seed, steps=steps, no_progress=True)
    out = []
    for q in (None, "ptq", "psq", "bhq"):
        for bits in ((None,) if q is None else (8, 5)):
            recipe = None if q is None else {"name": f"int8_{q}{bits}",
                                             "default": {"mode": "int", "grad_quantizer": q, "grad_bits": bits},
                                             "ops": {"default": "int8"}}
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                val, losses, rep = tt.train(recipe, ids[:cut], ids[cut:], vocab, args, str(recipe))
            label = "float32" if q is None else f"int8 fwd, {q.upper()} {bits}b grads"
            out.append((label, val, float(np.mean(losses[-max(1, steps // 10):])), time.perf_counter() - t0,
                        None if rep is None else len(rep.unsimulated())))
    print(f"\nseed 000 on the char transformer LM (d_model 32, 2 layers, context 32, batch 16, {steps} Adam steps, "
          f"seed {seed})\n")
    print("| recipe | held-out bits/char | gap to float32 | train bits/char (last 10%) | float GEMM rows | time s |\n"
          "|---|---:|---:|---:|---:|---:|")
    base = out[0][1]
    for label, val, tr, t, unsim in out:
        print(f"| {label} | {val:.3f} | {val - base:+.3f} | {tr:.3f} | {'-' if unsim is None else unsim} | {t:.0f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--lm-steps", type=int, default=200)
    ap.add_argument("--skip", nargs="*", default=[], choices=["003", "000"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if "003" not in args.skip:
        seed003(args.seeds)
    if "000" not in args.skip:
        seed000(args.lm_steps, args.seeds[0])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
