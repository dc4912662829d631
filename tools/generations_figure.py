"""Accumulation error of each tensor-core / matrix-core generation on the same GEMMs (issue 19).

For K = 16 .. 4096, 16 x 16 outputs of A (16, K) x B (K, 16) with c = 0, inputs drawn normal or
heavy-tailed (Student t, 2 degrees of freedom) and rounded to the preset's input format (nearest
even, saturating); the error of each output is |D - exact| / sum_k |a_k b_k| (normwise, so that
cancellation does not blow it up), exact = math.fsum of the float64 products (exact for every input
format here), averaged over outputs and over 4 seeds.

    python tools/generations_figure.py             # writes docs/img/generations_error.png, prints a table
    python tools/generations_figure.py --quick     # K up to 256, one seed (a smoke run)

matplotlib is optional (the `plot` extra): without it only the table is printed.
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

import numsim
from numsim.formats import get_format

F16_PRESETS = ["volta_mma_f16", "turing_mma_f16", "ampere_mma_f16", "h100_hmma_f16", "blackwell_tcgen05_f16",
               "rtx_blackwell_mma_f16", "cdna1_mfma_f16", "cdna2_mfma_f16", "cdna3_mfma_f16"]
FP8_PRESETS = ["ada_mma_e4m3", "h100_mma_e4m3", "h100_cublas_e4m3", "blackwell_tcgen05_e4m3",
               "rtx_blackwell_mma_e4m3", "cdna3_mfma_fp8"]


def draw(rng, kind, shape):
    if kind == "normal":
        return rng.standard_normal(shape)
    return rng.standard_t(2.0, shape)


def error(preset, K, kind, seeds):
    u = numsim.get_unit(preset)
    fa, fb = get_format(u.a_fmt), get_format(u.b_fmt)
    errs = []
    for s in range(seeds):
        rng = np.random.default_rng([19, K, s, 0 if kind == "normal" else 1])
        x, y = draw(rng, kind, (16, K)), draw(rng, kind, (K, 16))
        if fa.max_finite < 1e3:       # fp8: keep the data inside the format's range
            x, y = x * (fa.max_finite / 8 / np.abs(x).max()), y * (fb.max_finite / 8 / np.abs(y).max())
        a = numsim.encode(x, fa, overflow="saturate")
        b = numsim.encode(y, fb, overflow="saturate")
        av = numsim.decode(a, fa).astype(np.float64)
        bv = numsim.decode(b, fb).astype(np.float64)
        d = u.gemm_codes(a, b, nthreads=1).values
        for i in range(16):
            for j in range(16):
                p = av[i] * bv[:, j]
                mass = math.fsum(np.abs(p))
                if mass > 0:
                    errs.append(abs(d[i, j] - math.fsum(p)) / mass)
    return float(np.mean(errs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img",
                                                  "generations_error.png"))
    args = ap.parse_args(argv)
    Ks = [16, 64, 256] if args.quick else [16, 64, 256, 1024, 4096]
    seeds = 1 if args.quick else 4
    results = {}
    for kind in ("normal", "heavy"):
        for preset in F16_PRESETS + FP8_PRESETS:
            results[kind, preset] = [error(preset, K, kind, seeds) for K in Ks]
    print("| preset | data | " + " | ".join(f"K={K}" for K in Ks) + " |")
    print("|---|---|" + "---:|" * len(Ks))
    for (kind, preset), v in results.items():
        print(f"| `{preset}` | {kind} | " + " | ".join(f"2^{math.log2(e):.1f}" if e > 0 else "0" for e in v) + " |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure (pip install numsim[plot])")
        return
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), sharex=True)
    for col, kind in enumerate(("normal", "heavy")):
        for row, group in enumerate((F16_PRESETS, FP8_PRESETS)):
            ax = axes[row, col]
            for preset in group:
                v = np.maximum(results[kind, preset], 2.0 ** -60)
                ax.loglog(Ks, v, marker="o", ms=3, label=preset, base=2)
            ax.set_title(f"{'fp16' if row == 0 else 'fp8'} inputs, {kind} data")
            ax.set_ylabel("mean |D - exact| / sum |a b|")
            ax.grid(True, which="both", lw=0.3)
            ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("K")
    fig.suptitle("Accumulation error of each generation's datapath (numsim presets, c = 0, 16x16 outputs)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
