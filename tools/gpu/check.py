#!/usr/bin/env python
"""numsim.gpu on a GPU in one call (<= 8 minutes on an H100/H200): bit equality with the CPU kernels,
the H100 recordings replayed through the GPU kernels, and a 4096^3 benchmark against torch.

    python tools/gpu/check.py                # on a CUDA machine: the full check, a table last
    python tools/gpu/check.py --tiny         # tiny sizes; without CUDA it runs under TRITON_INTERPRET=1

What it checks, for every unit a GPU kernel supports (presets, and the float variants below):
1. random + edge codes (numsim.gpu.inputs) on odd shapes, K not a multiple of any block, with and
   without an initial accumulator: every output compared with unit.gemm_codes (CPU kernels), and
   the overflow event counts;
2. shapes up to 4096 (log-uniform M, K, N, and the 4096^3 benchmark run itself): a seeded sample of
   rows compared in full (each output is independent of the other rows);
3. ../shared/data/h100/int_h100.npz (IMMA s8/s4, wrap and satfinite) replayed tile by tile through
   numsim.gpu.gemm_codes: must match the recorded hardware 100% (tiles outside the exact int32 domain
   of the saturating presets run the CPU kernels and are counted as such);
4. the 4096^3 time of each GPU kernel (decode, kernel, encode) vs torch._int_mm (int8) and
   torch.matmul (fp16 -> fp16 on tensor cores): GMAC/s and the ratio.
Exit status 1 when any bit differs.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402  (torch does not import triton; the switch below must precede triton's import)

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402

import numsim  # noqa: E402
from numsim import gpu  # noqa: E402
from numsim.gpu.inputs import accumulators, operands  # noqa: E402
from numsim.units import FloatMacUnit, Int4Fp4r4Unit, IntMacUnit, SampleShiftUnit  # noqa: E402

# the shared recordings: beside the checkout (../shared), inside it (shared/), or --data
DATA_DIRS = [os.path.join(ROOT, "..", "shared", "data", "h100"), os.path.join(ROOT, "shared", "data", "h100")]
VARIANTS = [
    FloatMacUnit(name="fp16_fp16_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", order="sequential"),
    FloatMacUnit(name="fp16_fp32_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp32", order="sequential"),
    FloatMacUnit(name="fp8_fp16_sat", acc_overflow="saturate"),
    FloatMacUnit(name="e5m2_fp16_chunk7", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", acc_fmt="fp16", chunk=7),
    FloatMacUnit(name="fp16_fp32_pairwise", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp32", order="pairwise"),
    FloatMacUnit(name="fp8_bf16_seq", acc_fmt="bf16", order="sequential"),
    FloatMacUnit(name="fp8_fp16_k4_pw_rz", k_step=4, order="pairwise", acc_rounding="toward_zero"),
    Int4Fp4r4Unit(name="int4_fp4r4_fp16_odd", phase="odd"),
    Int4Fp4r4Unit(name="int4_fp4r4_fp16_odd_exact", phase="odd", odd_underflow="exact", order="pairwise"),
    IntMacUnit(name="int8_sat_pairwise", a_fmt="int8", b_fmt="int8", widen_overflow="saturate", acc_bits=20,
               acc_overflow="saturate", order="pairwise"),
    SampleShiftUnit(name="sample_shift_per_shift_right", grouping="per_shift", shift_direction="right",
                    shift_rounding="nearest_even"),
]
BENCH = ["h100_imma_s8", "h100_imma_s4", "int4_int32", "fp16_fp32", "fp8_fp16", "fp16_fp16_seq", "int4_fp4r4_fp16",
         "int4_fp4r4_fp16_odd", "h100_hmma_f16", "h100_cublas_e4m3"]


def sync():
    if CUDA:
        torch.cuda.synchronize()


def t(x, dev):
    return torch.from_numpy(np.asarray(x).astype(np.int64)).to(dev)


def compare(unit, a, b, c, got, rows=None, **ctx):
    """Mismatching outputs of got (numpy (M, N) or (len(rows), N)) against the CPU kernels."""
    if rows is not None:
        a = a[rows]
        c = None if c is None else c[rows]
    ref = unit.gemm_codes(a, b, c=c, **ctx)
    want = np.asarray(ref.codes).astype(np.int64)
    return int((got != want).sum()), want.size, ref.overflow_count


def units():
    out = []
    for name in numsim.unit_names():
        u = numsim.get_unit(name)
        if gpu.supported(u) is None:
            out.append(u)
    return out + [u for u in VARIANTS if gpu.supported(u) is None]


def suite(dev, tiny, rng, deadline):
    rows = []
    small = [(1, 1, 1), (3, 70, 5), (17, 33, 19), (2, 131, 3)] + ([] if tiny else [(67, 1000, 129), (128, 4097, 33)])
    big = []
    while not tiny and len(big) < 3:    # log-uniform sizes in 1..4096, at most 2^30 MACs each (time)
        s = tuple(int(v) for v in np.exp(rng.uniform(0, np.log(4096), 3)))
        if s[0] * s[1] * s[2] <= 2**30:
            big.append(s)
    for u in units():
        bad = total = 0
        kernels = set()
        for shape in small + big:
            if time.time() > deadline:
                break
            M, K, N = shape
            a, b = operands(u, M, K, N, rng, edge=0.2 if K < 100 else 0.001)
            ctx = {}
            if isinstance(u, SampleShiftUnit):
                ctx["sample_shift"] = rng.integers(0, 5, K)
            for c in (None, accumulators(u, M, N, rng)):
                r = gpu.gemm_codes(u, t(a, dev), t(b, dev), c=None if c is None else t(c, dev), **ctx)
                kernels.add(r.info.get("kernel") if "fallback" not in r.info else "cpu fallback")
                got = r.codes.cpu().numpy()
                sel = None
                if M > 16:
                    sel = np.sort(rng.choice(M, 16, replace=False))
                    got = got[sel]
                n_bad, n, events = compare(u, a, b, c, got, sel, **ctx)
                if sel is None and events != r.overflow_count:    # overflow events counted alike
                    print(f"events {u.name} {shape}: GPU {r.overflow_count}, CPU {events}", flush=True)
                    n_bad += 1
                bad += n_bad
                total += n
        rows.append((u.name, ",".join(sorted(k for k in kernels if k)), bad, total))
        print(f"bits  {u.name:24s} {bad} of {total} outputs differ  ({', '.join(sorted(k for k in kernels if k))})",
              flush=True)
    return rows


def replay(dev, tiny, data):
    """Every recording file's tiles through the GPU kernels (tiny: one tile per input family)."""
    from numsim.gpu.replay import FILES, replay_gpu

    dirs = [data] if data else DATA_DIRS
    rows = []
    for f in FILES:
        paths = [os.path.join(d, f) for d in dirs if os.path.exists(os.path.join(d, f))]
        if not paths:
            print(f"replay: {f} not found in {dirs}", flush=True)
            rows.append((f, "not found", 0, 1, 0, 0))
            continue
        for fname, label, name, ok, total, on_gpu, n in replay_gpu(paths[0], dev, 1 if tiny else None):
            rows.append((f"{fname.split('.')[0]}:{label}", name, ok, total, on_gpu, n))
            print(f"replay {fname:18s} {label:9s} {name:18s} {ok}/{total} outputs match the H100; "
                  f"{on_gpu}/{n} tiles on the GPU kernel", flush=True)
    return rows


def timed(fn, reps=1):
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t0) / reps


def bench(dev, tiny, rng, deadline):
    n = 32 if tiny else 4096
    macs = float(n) ** 3
    rows = []
    ref = {}
    if CUDA:
        a8 = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=dev)
        ref["int"] = macs / timed(lambda: torch._int_mm(a8, a8), 10) / 1e9
        h = torch.randn((n, n), dtype=torch.float16, device=dev)
        ref["fp"] = macs / timed(lambda: torch.matmul(h, h), 10) / 1e9
    lookup = {u.name: u for u in VARIANTS}
    for name in BENCH:
        u = lookup.get(name) or numsim.get_unit(name)
        if time.time() > deadline:
            rows.append((name, "-", None, None, "skipped: out of time"))
            continue
        a, b = operands(u, n, n, n, rng, edge=0.0)
        if u.acc_fmt.kind == "float" and getattr(u.a_fmt, "kind", "") == "float":   # finite operands of moderate size: a realistic accumulation
            va = numsim.decode(a, u.a_fmt)
            a[~np.isfinite(va) | (np.abs(va) > 4)] = 0
            vb = numsim.decode(b, getattr(u, "_c_b_fmt", u.b_fmt))
            b[~np.isfinite(vb) | (np.abs(vb) > 4)] = 0
        A, B = t(a, dev), t(b, dev)
        gpu.gemm_codes(u, A[:256, :256], B[:256, :256])          # compile (same specialisation)
        sync()
        t0 = time.perf_counter()
        r = gpu.gemm_codes(u, A, B)
        sync()
        dt = time.perf_counter() - t0
        sel = np.sort(rng.choice(n, min(8, n), replace=False))
        n_bad, _, _ = compare(u, a, b, None, r.codes.cpu().numpy()[sel], sel)
        gmacs = macs / dt / 1e9
        base = ref.get("int" if u.acc_fmt.kind == "int" else "fp")
        rows.append((name, r.info.get("kernel", "cpu fallback"), gmacs, None if base is None else gmacs / base,
                     "ok" if n_bad == 0 else f"{n_bad} bits differ"))
        print(f"bench {name:18s} {gmacs:10.1f} GMAC/s  {n}^3  rows {sel.tolist()} vs CPU: {rows[-1][4]}", flush=True)
    return rows, ref


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (the default without CUDA)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--data", help="the folder of the H100 recordings (default ../shared/data/h100)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting new work after this")
    args = ap.parse_args()
    tiny = args.tiny or not CUDA
    dev = torch.device("cuda" if CUDA else "cpu")
    rng = np.random.default_rng(args.seed)
    start = time.time()
    deadline = start + args.budget_s
    print(f"device {torch.cuda.get_device_name() if CUDA else 'cpu (TRITON_INTERPRET=1)'}; torch {torch.__version__}; "
          f"numsim.gpu kernels for: {', '.join(u.name for u in units())}", flush=True)
    bits = suite(dev, tiny, rng, deadline - (180 if not tiny else 0))
    reps = replay(dev, tiny, args.data)
    brows, ref = bench(dev, tiny, rng, deadline)
    # a row that compared nothing (0/0) proves nothing: it fails the check rather than passing it
    failed = any(r[2] or not r[3] for r in bits) or any(r[2] != r[3] or not r[3] for r in reps) or any(r[4] not in ("ok",) and
                                                                                 not r[4].startswith("skipped") for r in brows)
    print()
    print(f"== numsim.gpu check ({'tiny, interpreter: timings mean nothing' if not CUDA else 'tiny' if tiny else 'full'}; "
          f"{time.time() - start:.0f} s) ==")
    print(f"{'unit':24s} {'kernel':34s} {'bits':>14s}")
    for name, k, bad, total in bits:
        verdict = ('%d DIFFER' % bad if bad else 'NOTHING COMPARED' if not total else '%d/%d ok' % (total - bad, total))
        print(f"{name:24s} {k:34s} {verdict:>16s}")
    for label, name, ok, total, on_gpu, n in reps:
        print(f"{'H100 ' + label:34s} {name:18s} {ok:>7d}/{total:<7d} ({on_gpu}/{n} tiles on GPU)")
    if ref:
        print(f"torch._int_mm int8 {ref['int']:.0f} GMAC/s, torch.matmul fp16 {ref['fp']:.0f} GMAC/s ({n_str(tiny)})")
    print(f"{'bench ' + n_str(tiny):24s} {'kernel':34s} {'GMAC/s':>10s} {'x torch':>8s}  bits")
    for name, k, g, ratio, ok in brows:
        print(f"{name:24s} {k:34s} {'-' if g is None else '%.1f' % g:>10s} {'-' if ratio is None else '%.3f' % ratio:>8s}  {ok}")
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


def n_str(tiny):
    return "32^3" if tiny else "4096^3"


if __name__ == "__main__":
    sys.exit(main())
