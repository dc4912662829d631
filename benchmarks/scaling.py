"""Throughput of every unit family against numpy float32 matmul as the GEMM grows (issue 15).

Usage: python benchmarks/scaling.py [--quick] [--sizes ...] [--threads 1 2] [--out docs/scaling.md]
--quick: sizes 64 and 128, one repeat (a smoke test). The full run: 128^3 .. 4096^3, 1 and 2 threads; a
size is skipped for a unit when its previous size's rate predicts more than --max-seconds (said in the table).
numpy's BLAS runs on the same thread count as numsim (threadpoolctl). Writes a markdown table and, when
matplotlib is importable, a PNG plot (docs/img/scaling.png).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory  # noqa: E402  (operands of each unit)

FAMILIES = ["fp8_fp16", "fp16_fp32", "int4_fp4r4_fp16", "int4_fp4r4_fp16:odd", "int4_int32", "int4_int32_requant",
            "int4_int32_sample_shift", "h100_imma_s8", "h100_hmma_f16"]


def best(fn, repeat):
    fn()
    t = float("inf")
    for _ in range(repeat):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def measure(sizes, threads, units, repeat, max_seconds):
    rows = []      # (threads, n, unit, GMAC/s or None, ratio or None)
    for th in threads:
        rate = {}
        for n in sizes:
            xf = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
            with threadpool_limits(limits=th):
                t32 = best(lambda: xf @ xf, repeat)
            rows.append((th, n, "numpy float32 matmul", n**3 / t32 / 1e9, 1.0))
            for name in units:
                if name in rate and n**3 / rate[name] > max_seconds:
                    rows.append((th, n, name, None, None))
                    continue
                run, _ = memory.problem(name, n, nthreads=th)
                t = best(run, repeat if n**3 / rate.get(name, 1e12) < 2 else 1)
                rate[name] = n**3 / t
                rows.append((th, n, name, n**3 / t / 1e9, t32 / t))
                print(f"threads {th} n {n} {name}: {n**3 / t / 1e9:.2f} GMAC/s ({t32 / t:.3f}x)", file=sys.stderr)
    return rows


def table(rows, sizes, threads, units):
    out = [f"machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}; "
           "ratio to numpy float32 matmul on the same thread count (GMAC/s in parentheses); - : skipped (too slow)", ""]
    for th in threads:
        out.append(f"{th} thread(s):\n")
        out.append("| unit | " + " | ".join(f"{n}^3" for n in sizes) + " |")
        out.append("|---|" + "---:|" * len(sizes))
        for name in ["numpy float32 matmul"] + list(units):
            cells = []
            for n in sizes:
                r = [x for x in rows if x[0] == th and x[1] == n and x[2] == name]
                cells.append("-" if not r or r[0][3] is None else f"{r[0][4]:.3f} ({r[0][3]:.1f})")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(rows, threads, units, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False)
    for ax, th in zip(axes[0], threads):
        for name in units:
            pts = [(x[1], x[4]) for x in rows if x[0] == th and x[2] == name and x[4] is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (n x n x n GEMM)")
        ax.set_ylabel("ratio to numpy float32 matmul")
        ax.set_title(f"{th} thread(s)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--threads", type=int, nargs="*", default=None)
    ap.add_argument("--units", nargs="*", default=FAMILIES)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    ap.add_argument("--png", default=None, help="plot file (default docs/img/scaling.png with --out)")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([64, 128] if args.quick else [128, 256, 512, 1024, 2048, 4096])
    threads = args.threads or ([1] if args.quick else [1, 2])
    repeat = args.repeat or (1 if args.quick else 3)
    rows = measure(sizes, threads, args.units, repeat, args.max_seconds)
    md = table(rows, sizes, threads, args.units)
    print(md)
    if args.out:
        pathlib.Path(args.out).write_text("# Scaling (benchmarks/scaling.py)\n\n" + md + "\n")
        png = pathlib.Path(args.png or pathlib.Path(args.out).parent / "img" / "scaling.png")
        print("plot:", png if plot(rows, threads, args.units, png) else "skipped (matplotlib not importable)")
    return rows


if __name__ == "__main__":
    main()
