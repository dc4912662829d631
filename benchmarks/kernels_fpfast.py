"""GMAC/s of the float-accumulator chain kernels (numsim/kernels/float_fma.py) vs numpy float32 matmul.

    python benchmarks/kernels_fpfast.py [--size 512] [--threads 2] [--repeat 3] [--mac-level]

numpy runs with the same thread count: the BLAS thread variables are set before numpy is imported.
Every kernel's codes are checked against the MAC-level kernel once (on a 64^3 problem, or on the
benchmark problem itself with --mac-level).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--size", type=int, nargs="+", default=[512])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--mac-level", action="store_true", help="also time the MAC-level path (slow)")
ap.add_argument("--levels", nargs="+", default=["avx512_fp16", "avx512", "portable"])
args = ap.parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402  (after the thread variables)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numsim  # noqa: E402
from numsim.kernels import float_fma  # noqa: E402

UNITS = [
    ("fp8_fp16 (chunk 64)", "fp8_fp16", {}),
    ("fp8_fp16 sequential", "fp8_fp16", {"order": "sequential"}),
    ("fp8_fp16 pairwise", "fp8_fp16", {"order": "pairwise"}),
    ("fp16 x fp16 -> fp16 seq", "fp8_fp16", {"a_fmt": "fp16", "b_fmt": "fp16", "order": "sequential"}),
    ("e5m2 -> bf16 (chunk 64)", "fp8_fp16", {"a_fmt": "fp8_e5m2", "b_fmt": "fp8_e5m2", "acc_fmt": "bf16"}),
    ("fp16_fp32 (chunk 64)", "fp16_fp32", {}),
    ("fp16_fp32 sequential", "fp16_fp32", {"order": "sequential"}),
    ("int4_fp4r4_fp16 even", "int4_fp4r4_fp16", {}),
    ("int4_fp4r4_fp16 odd", "int4_fp4r4_fp16", {"phase": "odd"}),
]


def finite_codes(fmt, shape, rng):
    """Codes of values in [-2, 2] (ordinary data: no overflow at K = 4096, no NaN handling)."""
    from numsim.codec import _decode_table

    vals = _decode_table(fmt)
    ok = np.nonzero(np.isfinite(vals) & (np.abs(vals) <= 2))[0]
    return ok[rng.integers(0, ok.size, shape)].astype(fmt.dtype)


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    from numsim.kernels import mac_level_gemm

    rng = np.random.default_rng(0)
    print(f"threads {args.threads}; levels on this CPU: "
          f"{[lv for lv in float_fma.LEVELS if float_fma.level_ok(lv)]}")
    for n in args.size:
        x = rng.standard_normal((n, n)).astype(np.float32)
        y = rng.standard_normal((n, n)).astype(np.float32)
        t_np = [float("inf")]

        def numpy_again():    # best of many, between the units (shared machines: load comes and goes)
            t_np[0] = min(t_np[0], best_time(lambda: x @ y, max(args.repeat, 5)))

        rows = []
        numpy_again()
        for label, preset, over in UNITS:
            u = numsim.get_unit(preset, **over)
            a = finite_codes(u.a_fmt, (n, n), rng)
            b = finite_codes(u.b_fmt, (n, n), rng)
            p = u.problem(a, b, nthreads=args.threads)
            small = u.problem(a[:64, :64], b[:64, :64], nthreads=args.threads)
            ref_small = mac_level_gemm(u, small.a, small.b, nthreads=args.threads).codes
            for k in float_fma.KERNELS:
                if k.level not in args.levels or not float_fma.level_ok(k.level) or k.domain(u, p) is not None:
                    continue
                if k.level == "portable" and n > 256:
                    continue
                assert np.array_equal(k.run(u, small).codes, ref_small), (label, k.name)
                rows.append((label, k.name, n**3 / best_time(lambda: k.run(u, p), args.repeat) / 1e9))
            chosen = u.gemm_codes(small.a, small.b, nthreads=args.threads).info.get("kernel", "?")
            if n <= 512 or not chosen.endswith("mac_level"):      # the MAC level takes minutes past 512^3
                rows.append((label, f"(registry today: {chosen})",
                             n**3 / best_time(lambda: u.gemm_codes(a, b, nthreads=args.threads), 1) / 1e9))
            if args.mac_level:
                rows.append((label, "MAC-level", n**3 / best_time(lambda: mac_level_gemm(u, a, b, nthreads=args.threads), 1) / 1e9))
            numpy_again()
        g_np = n**3 / t_np[0] / 1e9
        print(f"\n{n}^3: numpy float32 matmul {g_np:.1f} GMAC/s (best of the run)")
        print(f"{'unit':26s} {'kernel':44s} {'GMAC/s':>8s} {'vs np':>7s}")
        for label, name, g in rows:
            print(f"{label:26s} {name:44s} {g:8.2f} {g / g_np:7.3f}")


if __name__ == "__main__":
    main()
