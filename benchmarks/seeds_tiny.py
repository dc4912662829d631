"""The seeds' training claims re-measured at the tiny scale a 2-core CPU session affords (docs/seeds.md).

- seed 003: INT4 forward / FP4 two-phase-rounding backward vs one phase vs float32, on the digits CNN
  of examples/train_digits.py (--quick size: 3 epochs, 640 images), over several seeds;
- seed 000: 8-bit forward with PTQ / PSQ / BHQ gradients at 5 and 8 bits on the character transformer
  LM of examples/train_transformer.py: the Linear layers (feed-forward, head) in the module-level 'int'
  mode with that gradient quantizer, every other GEMM (attention projections, QK^T, PV) INT8 at the op
  level; held-out bits per character against float32;
- seed 004: per-layer INT4 / INT8 / float chosen by the first-order loss change, without fine-tuning,
  on the float32-trained digits CNN; test accuracy with the chosen layers' GEMMs through numsim.

    PYTHONPATH=. python benchmarks/seeds_tiny.py [--seeds 0 1 2] [--lm-steps 200]
"""
from __future__ import annotations

import argparse
import importlib.util
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
        res = digits.main(["--quick", "--seed", str(s), "--png", "", "--no-progress",
                           "--only", "float32", "TPR", "one"])
        for label, r in res.items():
            rows.setdefault(label, []).append(r["accuracy"])
    print("\nseed 003 on the digits CNN (--quick: 3 epochs, 640 training images), test accuracy\n")
    print("| recipe | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |\n|---|" + "---:|" * (len(seeds) + 1))
    for label, accs in rows.items():
        print(f"| {label} | " + " | ".join(f"{a:.4f}" for a in accs) + f" | {np.mean(accs):.4f} |")


def seed000(steps, seed):
    tt = _example("train_transformer")
    from numsim.torch.lm import encode_text, stdlib_corpus

    ids, vocab = encode_text(stdlib_corpus())
    cut = int(0.9 * len(ids))
    args = argparse.Namespace(d_model=32, heads=4, layers=2, context=32, batch=16, lr=3e-3,
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


def seed004(seed, mus):
    """Train the digits CNN in float32, then pick INT4 / INT8 / float per layer by the first-order loss
    change (numsim.quant.layerchoice, no fine-tuning) and run the test set with each chosen layer's
    forward GEMM through numsim (op level: int4 / int8 specs, per-tensor symmetric operands)."""
    import numsim.torch as nt
    from numsim.quant.layerchoice import choose_layer_precision
    from numsim.workloads import load_digits_split

    digits = _example("train_digits")
    xtr, ytr, xte, yte = load_digits_split(seed=seed)
    to_t = lambda a: torch.from_numpy(a.astype(np.float32).reshape(-1, 1, 8, 8))  # noqa: E731
    xtr, xte, ytr, yte = to_t(xtr), to_t(xte), torch.from_numpy(ytr), torch.from_numpy(yte)
    model = digits.make_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        perm = rng.permutation(len(ytr))
        for i in range(len(perm) // 32):
            idx = perm[i * 32:(i + 1) * 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]

    def accuracy(choice):
        recipe = {"ops": {"default": "float", "modules": {n: c for n, c in choice.items() if c != "float"}}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad(), nt.simulate(model, recipe):
                out = model(xte)
        return float((out.argmax(1) == yte).float().mean()), float(torch.nn.functional.cross_entropy(out, yte))

    rows = [("all float32", {n: "float" for n in names}), ("all INT8", {n: "int8" for n in names}),
            ("all INT4", {n: "int4" for n in names})]
    cal = slice(0, 512)
    for mu in mus:
        plan = choose_layer_precision(model, xtr[cal], ytr[cal], mu=mu)
        rows.append((f"seed 004 choice, mu={mu:g}", {lay.name: lay.choice for lay in plan.layers}))
    print(f"\nseed 004 on the digits CNN (float32-trained 10 epochs, seed {seed}; calibration: 512 training images;"
          f" no fine-tuning), test accuracy with the chosen layers' forward GEMMs through numsim\n")
    print("| plan | " + " | ".join(names) + " | test accuracy | test loss |")
    print("|---|" + "---|" * len(names) + "---:|---:|")
    for label, choice in rows:
        acc, loss = accuracy(choice)
        print(f"| {label} | " + " | ".join(choice[n] for n in names) + f" | {acc:.4f} | {loss:.4f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--lm-steps", type=int, default=200)
    ap.add_argument("--skip", nargs="*", default=[], choices=["003", "000", "004"])
    ap.add_argument("--mus", type=float, nargs="*", default=[0.0, 1e-3, 1e-2])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if "003" not in args.skip:
        seed003(args.seeds)
    if "004" not in args.skip:
        seed004(args.seeds[0], args.mus)
    if "000" not in args.skip:
        seed000(args.lm_steps, args.seeds[0])


if __name__ == "__main__":
    main()
