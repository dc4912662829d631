"""`numsim demo`: a GEMM through each seed preset on real-size random tensors, with a report."""
from __future__ import annotations

import time


def register(sub):
    p = sub.add_parser("demo", help="run a bit-exact GEMM through each seed MAC unit and report it")
    p.add_argument("--size", type=int, default=256, help="M = K = N (default 256)")
    p.add_argument("--threads", type=int, default=None, help="threads over output tiles (default: up to 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--units", nargs="*", default=None, help="unit presets (default: the seed presets)")
    p.set_defaults(func=run)


MAX_SIZE = 4096      # a 4096^3 GEMM per unit already takes minutes on the MAC-level kernels
DEFAULT_UNITS = ["int4_int32", "int4_int32_requant", "int4_int32_sample_shift", "int4_fp4r4_fp16",
                 "int4_fp4r4_fp16:odd", "fp8_fp16", "fp16_fp32"]


def _operands(unit_name, unit, n, rng):
    """Quantized operands for a unit from Gaussian data, and the float64 values they stand for."""
    import numpy as np

    from ..qtensor import QTensor

    x = rng.standard_normal((n, n))
    w = rng.standard_normal((n, n))

    def scale_for(fmt, v):
        # integers: max|v| onto the largest code; floats: max|v| onto 8, which keeps products and
        # their sums inside an FP16 accumulator's range (as a per-tensor scale in FP8 training does)
        top = float(fmt.max_value) if fmt.kind == "int" else 8.0
        return float(np.max(np.abs(v))) / top

    qa = QTensor.quantize(x, unit.a_fmt, scale=scale_for(unit.a_fmt, x))
    qb = QTensor.quantize(w, unit.b_fmt, scale=scale_for(unit.b_fmt, w))
    if "sample_shift" in unit_name:
        # seed 000: one per-tensor range, each sample (reduction index) shifted by s_i in [0, 4]
        shifts = rng.integers(0, 5, n)
        xs = x * np.ldexp(1.0, -shifts)[None, :]
        q = QTensor.quantize(xs * np.ldexp(1.0, shifts)[None, :], unit.a_fmt,
                             scale=scale_for(unit.a_fmt, xs * np.ldexp(1.0, shifts)[None, :]))
        qa = QTensor(q.codes, unit.a_fmt, scale=q.scale, sample_shift=shifts, sample_axis=1)
    return qa, qb


def run(args):
    import numpy as np

    from ..codec import decode
    from ..gemm import matmul
    from ..events import suspicious_counts, suspicious_text
    from ..units import get_unit
    from ._warn import warn

    from ..errors import bad

    n = args.size
    if not 1 <= n <= MAX_SIZE:
        raise bad("--size", f"an integer in [1, {MAX_SIZE}]", n)
    if args.threads is not None and not 1 <= args.threads <= 64:
        raise bad("--threads", "an integer in [1, 64]", args.threads)
    if args.seed < 0:
        raise bad("--seed", "a non-negative integer", args.seed)
    rng = np.random.default_rng(args.seed)
    names = args.units or DEFAULT_UNITS
    units = {}
    for name in names:      # every name checked before any timing run
        base, _, phase = name.partition(":")
        units[name] = get_unit(base, **({"phase": phase} if phase else {}))
    from threadpoolctl import threadpool_limits

    from ..units.base import threads

    nthreads = threads(args.threads)
    xf = rng.standard_normal((n, n)).astype(np.float32)
    # the baseline runs on as many BLAS threads as numsim's kernels get (the ratio compares like with like)
    with threadpool_limits(limits=nthreads, user_api="blas"):
        xf @ xf
        t_np = float("inf")
        for _ in range(10):
            t = time.perf_counter()
            xf @ xf
            t_np = min(t_np, time.perf_counter() - t)
    print(f"numsim demo: {n}x{n} @ {n}x{n} GEMMs (Gaussian data quantized per tensor), seed {args.seed}, "
          f"{nthreads} thread{'s' if nthreads > 1 else ''}")
    print(f"baseline numpy float32 matmul on {nthreads} BLAS thread{'s' if nthreads > 1 else ''}: "
          f"{n**3 / t_np / 1e9:.2f} GMAC/s\n")
    head = (f"{'unit':24} {'operands':22} {'accumulator':11} {'GMAC/s':>7} {'vs np f32':>9} "
            f"{'max rel err':>11} {'overflows':>9}")
    print(head)
    print("-" * len(head))
    for name in names:
        base, _, phase = name.partition(":")
        unit = units[name]
        qa, qb = _operands(base, unit, n, rng)
        r = matmul(qa, qb, unit, nthreads=nthreads)      # warm-up: one-time tables and pages
        dt = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            r = matmul(qa, qb, unit, nthreads=nthreads)
            dt = min(dt, time.perf_counter() - t)
        # float64 of the same quantized operands, with the per-tensor scales applied after the
        # (exact, dyadic) product so that the reference adds no rounding of its own
        ea = qa.decode_codes() * (qa.effective_scale() / float(qa.scale))
        exact = (ea @ qb.decode_codes()) * (float(qa.scale) * float(qb.scale))
        err = np.abs(r.values - exact)
        denom = np.max(np.abs(exact)) or 1.0
        ops = f"{unit.a_fmt} x {unit.b_fmt}"
        print(f"{name:24} {ops:22} {str(unit.acc_fmt):11} {n**3 / dt / 1e9:7.2f} {t_np / dt:9.2f} "
              f"{np.max(err) / denom:11.2e} {r.overflow_count:9d}")
        text = suspicious_text(suspicious_counts(r.acc_values, unit.acc_fmt, r.overflow_count))
        if text:
            warn(f"demo {name}", text)
        if r.out_codes is not None:
            out = decode(r.out_codes, r.out_fmt)
            print(f"{'':24} output stage {r.out_fmt}: values in [{out.min():g}, {out.max():g}]")
        if phase == "odd":
            dep = r.info.get("departures", [[]])
            print(f"{'':24} odd-phase exponent trick departs from the exact half at "
                  f"{sum(len(d) for d in dep)} outputs")
    print("\nGMAC/s: best of 3 warm runs, bit-exact; max rel err: worst |numsim - float64 of the same quantized"
          "\noperands| / max|float64 result| (the integer units are exact, the float units show their"
          "\naccumulator's rounding).")
    return 0
