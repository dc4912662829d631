"""Speed of the H100 presets' GEMM (C kernels, threaded over output rows) at N^3 (default 512), as MAC/s
and as a ratio to numpy float32 matmul measured in the same run with the same thread count (goal >=
0.1x). Two clocks: wall time (best of a few runs; noisy on a shared machine) and process CPU time
(best of a few runs, all threads; on a loaded machine this is the steadier per-core figure). With
--simd 0 the fused-adder presets run the scalar kernel (as NUMSIM_KERNEL=mac_level does), --simd 2 the AVX-512 one.
    python benchmarks/hardware_gemm.py [--n 512] [--threads 1] [--simd 0|2]
"""
from __future__ import annotations

import argparse
import os
import sys

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--n", type=int, default=512)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--simd", type=int, default=None)
ap.add_argument("--repeat", type=int, default=5)
ARGS = ap.parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # numpy: the same threads
    os.environ[var] = str(ARGS.threads)

import time  # noqa: E402

import numpy as np  # noqa: E402

from numsim import kernels  # noqa: E402
from numsim.units import get_unit  # noqa: E402

PRESETS = ["h100_hmma_f16", "h100_hmma_bf16", "h100_mma_e4m3", "h100_cublas_e4m3", "h100_imma_s8", "h100_imma_s4"]


def best(fn, repeat):
    wall = cpu = float("inf")
    fn()
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def main(n, threads, simd, repeat):
    import ml_dtypes

    from numsim.gemm import matmul

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    w_np, c_np = best(lambda: a @ b, 10 * repeat)
    macs = n**3
    print(f"{n}^3, {os.cpu_count()} CPUs, {threads} thread(s), simd={simd}; numpy float32 matmul: wall "
          f"{w_np * 1e3:.2f} ms ({macs / w_np / 1e9:.1f} GMAC/s), CPU {c_np * 1e3:.2f} ms "
          f"({macs / c_np / 1e9:.1f} GMAC/s per CPU-second)")
    print("| preset | wall ms | GMAC/s | ratio (wall) | CPU ms | GMAC/CPU-s | ratio (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in PRESETS:
        u = get_unit(name)
        if name.startswith("h100_imma"):
            nb = 8 if u.a_fmt.name == "int8" else 4
            ac = rng.integers(0, 2**nb, (n, n)).astype(np.uint8)
            bc = rng.integers(0, 2**nb, (n, n)).astype(np.uint8)
            run = lambda: matmul(ac, bc, u, nthreads=threads)  # noqa: E731  (IMMA fast path where proven)
        else:
            dt = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp8_e4m3fn": ml_dtypes.float8_e4m3fn}[u.a_fmt.name]
            bits = np.uint8 if u.a_fmt.name == "fp8_e4m3fn" else np.uint16
            ac, bc = a.astype(dt).view(bits), b.astype(dt).view(bits)
            kernel = {None: None, 0: "fused_adder.mac_level", 2: "fused_adder.avx512"}[simd]
            run = lambda: kernels.gemm(u, ac, bc, nthreads=threads, kernel=kernel)  # noqa: E731
        w, c = best(run, repeat)
        print(f"| {name} | {w * 1e3:.1f} | {macs / w / 1e9:.2f} | {w_np / w:.3f}x | {c * 1e3:.1f} | "
              f"{macs / c / 1e9:.2f} | {c_np / c:.3f}x |")
        sys.stdout.flush()


if __name__ == "__main__":
    main(ARGS.n, ARGS.threads, ARGS.simd, ARGS.repeat)
