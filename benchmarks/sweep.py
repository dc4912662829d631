"""Sweep throughput: variants per minute on 1 and 2 workers, local threads and (with --cluster) a
distributed.LocalCluster of worker processes. The ratio 2 workers / 1 worker shows the scaling.

Usage: PYTHONPATH=. python benchmarks/sweep.py [--variants 12] [--m 64 --k 1024 --n 64] [--cluster]
Each variant is an INT4 x FP4 (radix 4) unit with a float accumulator of swept mantissa width and chunk
size, run over one random (M, K) @ (K, N) GEMM; every run starts from an empty output directory.
"""
import argparse
import os
import platform
import tempfile
import time

from numsim.sweep import run_sweep


def spec(n_variants, m, k, n):
    man = list(range(4, 4 + (n_variants + 1) // 2))
    return {"sweep": {"name": "bench", "unit": "fp8_fp16", "nthreads": 1},
            "fixed": {"a_fmt": "int4", "b_fmt": "fp4r4", "k_step": 4, "order": "chunked"},
            "grid": {"acc_fmt": {"man_bits": man}, "chunk": [16, 256]},
            "workload": [{"kind": "random", "name": "g", "dist": "laplace", "m": m, "k": k, "n": n}]}


REPEAT = 3


def timed(sp, **kw):
    """(variants, best wall time of REPEAT runs): the machine is shared, the best run is the least disturbed."""
    best, cpu = float("inf"), 0.0
    for _ in range(REPEAT):
        with tempfile.TemporaryDirectory() as d:
            t, c = time.perf_counter(), time.process_time()
            res = run_sweep(sp, d, report=False, **kw)
            dt = time.perf_counter() - t
            if dt < best:
                best, cpu = dt, (time.process_time() - c) / dt
        assert res.ran == len({r["variant"] for r in res.rows}) and not res.failures
    return res.ran, best, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variants", type=int, default=12)
    ap.add_argument("--m", type=int, default=64)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--cluster", action="store_true", help="also time a LocalCluster of 1 and 2 worker processes")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    sp = spec(args.variants, args.m, args.k, args.n)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.variants} variants, GEMM {args.m}x{args.k}x{args.n} each, 1 kernel thread per variant, "
          f"best of {REPEAT}")
    with tempfile.TemporaryDirectory() as d:
        run_sweep(sp, d, scheduler="sync", report=False)   # warm-up: imports, first kernel calls: imports, kernel first calls
    rows = []
    base = None
    for label, kw in [("local threads, 1 worker", {"workers": 1}), ("local threads, 2 workers", {"workers": 2})]:
        n, dt, cpu = timed(sp, **kw)
        rate = n / dt * 60
        base = base or rate
        rows.append((label, rate, rate / base, f"{cpu:.2f}"))
    if args.cluster:
        from distributed import LocalCluster

        cbase = None
        for nw in (1, 2):
            with LocalCluster(n_workers=nw, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
                timed(sp, scheduler=cl.scheduler_address)    # warm the workers (imports)
                n, dt, _ = timed(sp, scheduler=cl.scheduler_address)
            rate = n / dt * 60
            cbase = cbase or rate
            rows.append((f"LocalCluster, {nw} worker process{'es' if nw > 1 else ''}", rate, rate / cbase, "-"))
    # cores busy = this process's CPU seconds / wall seconds: ~2 means both threads really ran at once.
    print(f"\n| {'scheduler':36} | {'variants/min':>12} | {'ratio to 1 worker':>17} | {'cores busy':>10} |")
    print(f"|{'-' * 38}|{'-' * 14}|{'-' * 19}|{'-' * 12}|")
    for label, rate, ratio, cpu in rows:
        print(f"| {label:36} | {rate:12.1f} | {ratio:17.2f} | {cpu:>10} |")


if __name__ == "__main__":
    main()
