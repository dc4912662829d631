"""Peak memory of every unit's fast path, as a multiple of its inputs + outputs (issue 15: <= 2x).

Usage: python benchmarks/memory.py [--sizes 256 1024] [--units ...] [--rss] [--threads 1]

Two measures of one numsim.matmul call on Gaussian operands (inputs: the operand codes, plus the
per-sample shifts where the unit takes them; outputs: GemmResult.codes + GemmResult.values):
- tracemalloc: the peak of numpy's (Python-visible) allocations during the call; deterministic, so
  tests/test_memory.py asserts it;
- --rss: the peak resident set (VmHWM, reset through /proc/self/clear_refs) over the resident set
  before the call, in a fresh process per unit, which also sees the C kernels' packed panels
  (Linux only; noisier: the allocator may keep freed pages).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

SEED_UNITS = ["int4_int32", "int4_int32_requant", "int4_int32_sample_shift", "int4_fp4r4_fp16",
              "int4_fp4r4_fp16:odd", "fp8_fp16", "fp16_fp32"]


def unit_names():
    import numsim

    return SEED_UNITS + [u for u in numsim.unit_names() if u.startswith("h100_")]


def problem(name, n, rng=None, nthreads=1, api="matmul"):
    """(run, io_bytes): a closure that runs the unit's GEMM of n x n x n through numsim.matmul or
    unit.gemm_codes (api), and its inputs' bytes (outputs are added by the caller from the result)."""
    import numsim

    rng = np.random.default_rng(0) if rng is None else rng
    base, _, phase = name.partition(":")
    unit = numsim.get_unit(base, **({"phase": phase} if phase else {}))
    ops = []
    for fmt in (numsim.get_format(unit.a_fmt), numsim.get_format(unit.b_fmt)):
        x = rng.standard_normal((n, n))
        top = float(fmt.max_value) if fmt.kind == "int" else 8.0
        ops.append(numsim.encode(x / np.max(np.abs(x)) * top, fmt, overflow="saturate"))
    a, b = ops
    io_in = a.nbytes + b.nbytes
    if "sample_shift" in name:
        shift = rng.integers(0, 5, n)
        io_in += shift.nbytes
        if api == "gemm_codes":
            return (lambda: unit.gemm_codes(a, b, nthreads=nthreads, sample_shift=shift)), io_in
        qa = numsim.QTensor(a, unit.a_fmt, scale=1.0, sample_shift=shift, sample_axis=1)
        return (lambda: numsim.matmul(qa, b, unit, nthreads=nthreads)), io_in
    if api == "gemm_codes":
        return (lambda: unit.gemm_codes(a, b, nthreads=nthreads)), io_in
    return (lambda: numsim.matmul(a, b, unit, nthreads=nthreads)), io_in


def tracemalloc_ratio(name, n, nthreads=1, api="matmul"):
    """Peak of numpy's allocations during one call / (inputs + outputs)."""
    run, io_in = problem(name, n, nthreads=nthreads, api=api)
    run()                                       # warm: lazily built tables are not the call's memory
    tracemalloc.start()
    try:
        r = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / (io_in + r.codes.nbytes + r.values.nbytes)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def rss_ratio_here(name, n, nthreads=1, api="matmul"):
    """Peak resident set growth during one call / (inputs + outputs), in this process (Linux)."""
    problem(name, 64, nthreads=nthreads, api=api)[0]()   # warm at a small size: tables, not pages the call reuses
    run, io_in = problem(name, n, nthreads=nthreads, api=api)
    base = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:     # "5" resets VmHWM to the current VmRSS
        f.write("5")
    r = run()
    peak = _status_kib("VmHWM")
    return (peak - base) * 1024 / (io_in + r.codes.nbytes + r.values.nbytes)


def rss_ratio(name, n, nthreads=1, api="matmul"):
    """rss_ratio_here in a fresh process (peak RSS is per process)."""
    code = (f"import sys, json; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import memory; print(json.dumps(memory.rss_ratio_here({name!r}, {n}, {nthreads}, {api!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[256, 1024])
    ap.add_argument("--units", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rss", action="store_true", help="also the peak RSS growth (fresh process per unit; Linux)")
    ap.add_argument("--api", nargs="*", default=["matmul", "gemm_codes"], choices=["matmul", "gemm_codes"])
    args = ap.parse_args(argv)
    names = args.units or unit_names()
    print(f"threads: {args.threads}; target: peak / (inputs + outputs) <= 2")
    print("| unit | n | call | tracemalloc peak / (in+out) |" + (" RSS peak / (in+out) |" if args.rss else ""))
    print("|---|---:|---|---:|" + ("---:|" if args.rss else ""))
    worst = 0.0
    for n in args.sizes:
        for name in names:
            for api in args.api:
                t = tracemalloc_ratio(name, n, args.threads, api)
                worst = max(worst, t)
                row = f"| {name} | {n} | {api} | {t:.2f} |"
                if args.rss:
                    row += f" {rss_ratio(name, n, args.threads, api):.2f} |"
                print(row)
                sys.stdout.flush()
    print(f"\nworst tracemalloc ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
