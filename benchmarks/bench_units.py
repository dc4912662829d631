"""MAC-level GEMM throughput of every unit preset (csrc/units.c), against two baselines measured in the
same run: the same kernel on one thread, and the pure-Python reference (numsim.reference.units).

    python benchmarks/bench_units.py [--size 128]
"""
import argparse
import time

import numpy as np

from numsim.reference import units as R
from numsim import kernels
from numsim.units import get_unit

PRESETS = [("int4_int32", {}), ("int4_int32_sample_shift", {}), ("int4_fp4r4_fp16", {}),
           ("int4_fp4r4_fp16", {"phase": "odd"}), ("fp8_fp16", {}), ("fp16_fp32", {}),
           ("int4_int32", {"order": "pairwise"})]


def best(fn, reps=3):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    print(f"GEMM {n}x{n}x{n} through the MAC-level C kernel (numsim.kernels.mac_level_gemm); MMAC/s = 1e6 MACs per second")
    print(f"{'unit':34} {'1 thread':>10} {f'{args.threads} threads':>10} {'x1 thread':>10} {'reference':>10} {'x ref':>8}")
    for name, kw in PRESETS:
        u = get_unit(name, **kw)
        A = rng.integers(0, 2**u.a_fmt.bits, (n, n))
        B = rng.integers(0, 2**u.b_fmt.bits, (n, n))
        if u.a_fmt.kind == "float":                     # finite operands
            A = A & ~(0x7F << (u.a_fmt.bits - 8)) if u.a_fmt.bits == 8 else A & 0x3FFF
            B = B & ~(0x7F << (u.b_fmt.bits - 8)) if u.b_fmt.bits == 8 else B & 0x3FFF
        ctx = {}
        if name == "int4_int32":
            ctx["align_shift"] = rng.integers(0, 4, n)
        if "sample" in name:
            ctx["sample_shift"] = rng.integers(0, 5, n)
        t1 = best(lambda: kernels.mac_level_gemm(u, A, B, ctx=ctx, nthreads=1))
        tn = best(lambda: kernels.mac_level_gemm(u, A, B, ctx=ctx, nthreads=args.threads))
        kref = 256
        sub = {k: v[:kref] for k, v in ctx.items()}
        tr = best(lambda: R.dot(u, A[0, :kref], B[:kref, 0], **sub), reps=1) / kref
        macs = n**3
        label = name + ("(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")" if kw else "")
        print(f"{label:34} {macs / t1 / 1e6:>10.1f} {macs / tn / 1e6:>10.1f} {t1 / tn:>10.2f} "
              f"{1 / tr / 1e6:>10.4f} {tr * macs / tn:>8.0f}")


if __name__ == "__main__":
    main()
