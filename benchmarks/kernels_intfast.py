"""GMAC/s of the integer fast kernels (numsim/kernels/int_imatmul.py) at each ISA level, against numpy
float32 matmul in the same run with the same thread count (BLAS threads set before numpy is imported),
and the previous integer kernels (numsim.kernels.int_lanes, forced) for reference.

Usage: python benchmarks/kernels_intfast.py [--sizes 512 1024] [--threads 2] [--repeat 5] [--levels ...]
A kernel's time is domain(unit, problem) + run(unit, problem): what a caller pays.
"""
import argparse
import os

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--sizes", type=int, nargs="*", default=[512, 1024])
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--levels", nargs="*", default=["amx", "avx512_vnni", "portable"])
ap.add_argument("--units", nargs="*", default=None)
ARGS = ap.parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

import numsim  # noqa: E402
from numsim import kernels  # noqa: E402
from numsim._ffi import lib  # noqa: E402
from numsim.kernels import int_imatmul as X  # noqa: E402

UNITS = {   # name -> (unit, kernel family, ctx maker)
    "int4_int32": (numsim.get_unit("int4_int32"), "int_mac", lambda K, r: {}),
    "int4_int32 align_shift": (numsim.get_unit("int4_int32"), "int_mac",
                               lambda K, r: {"align_shift": r.integers(0, 5, K)}),
    "int4_int32_requant": (numsim.get_unit("int4_int32_requant"), "int_mac", lambda K, r: {}),
    "int4_int32_sample_shift": (numsim.get_unit("int4_int32_sample_shift"), "sample_shift",
                                lambda K, r: {"sample_shift": r.integers(0, 5, K)}),
    "sample_shift right per_shift": (numsim.get_unit("int4_int32_sample_shift", shift_direction="right",
                                                     grouping="per_shift"), "sample_shift",
                                     lambda K, r: {"sample_shift": r.integers(0, 5, K)}),
    "sample_shift right per_sample": (numsim.get_unit("int4_int32_sample_shift", shift_direction="right"),
                                      "sample_shift", lambda K, r: {"sample_shift": r.integers(0, 5, K)}),
    "h100_imma_s8": (numsim.get_unit("h100_imma_s8"), "int_mma", lambda K, r: {}),
    "h100_imma_s8_sat": (numsim.get_unit("h100_imma_s8_sat"), "int_mma", lambda K, r: {}),
    "h100_imma_s4": (numsim.get_unit("h100_imma_s4"), "int_mma", lambda K, r: {}),
}


def best(fn, repeat):
    fn()
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    levels = [lvl for lvl in ARGS.levels if lib.ns_imatmul_has_level(X.LEVELS[lvl])]
    print(f"threads {ARGS.threads}; levels here: {levels}; numpy {np.__version__}")
    rng = np.random.default_rng(0)
    for n in ARGS.sizes:
        macs = n**3
        af = rng.standard_normal((n, n)).astype(np.float32)
        bf = rng.standard_normal((n, n)).astype(np.float32)
        # numpy's BLAS threads spin for a while after a call and would take the cores from the kernels
        # timed next: numpy is timed before and after all of them (the better figure is the baseline)
        t_np = best(lambda: af @ bf, ARGS.repeat)
        g_np = macs / t_np / 1e9
        time.sleep(0.5)
        rows = []
        for name, (unit, family, ctx_of) in UNITS.items():
            if ARGS.units and name not in ARGS.units:
                continue
            bits = unit.a_fmt.bits
            a = rng.integers(0, 2**bits, (n, n)).astype(np.uint8)
            b = rng.integers(0, 2**bits, (n, n)).astype(np.uint8)
            ctx = ctx_of(n, rng)
            p = SimpleNamespace(a=a, b=b, c=None, ctx=ctx, nthreads=ARGS.threads)
            for lvl in levels:
                k = X.BY_NAME[f"{family}.imatmul.{lvl}"]
                why = k.domain(unit, p)
                if why:
                    rows.append((name, lvl, None, why))
                    continue
                t = best(lambda: (k.domain(unit, p), k.run(unit, p)), ARGS.repeat if lvl != "portable" else 1)
                rows.append((name, lvl, macs / t / 1e9, None))
            for old in ("int8_lanes_vnni", "as_int_mac"):
                kname = f"{unit.kernels[0].split('.')[0]}.{old}"
                if kname in unit.kernels:
                    try:
                        t = best(lambda: kernels.gemm(unit, a, b, None, ARGS.threads, ctx, kernel=kname), ARGS.repeat)
                    except numsim.NumsimError:
                        continue
                    rows.append((name, f"({old})", macs / t / 1e9, None))
        g_np2 = macs / best(lambda: af @ bf, ARGS.repeat) / 1e9
        g_np = max(g_np, g_np2)
        print(f"\n{n}^3: numpy float32 matmul {g_np:.0f} GMAC/s (timed before and after: {g_np2:.0f} after)")
        print(f"{'unit':32s} {'kernel level':14s} {'GMAC/s':>8s} {'vs np f32':>9s}")
        for name, lvl, g, why in rows:
            if g is None:
                print(f"{name:32s} {lvl:14s} {'-':>8s}   ({why})")
            else:
                print(f"{name:32s} {lvl:14s} {g:8.1f} {g / g_np:8.2f}x")


if __name__ == "__main__":
    main()
