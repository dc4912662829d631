"""Exact integer kernels of the integer MAC, the per-sample-shift MAC and the integer MMA.

Proofs (tests/test_kernels.py forces each against the MAC-level kernel on every preset; tests/test_intgemm.py
covers the dot-product kernel's lanes, tests/test_hardware_simd.py the IMMA bounds):
- `int_mac.exact_blas` (and `sample_shift.as_int_mac`): integer units (IntMacUnit, and the per-sample-shift unit with left shifts, which is the
  integer MAC with align_shift = 4 - s) whose every partial sum is provably exact and in range:
  |c| + K * max|a| * max|b| * 2^max_shift < 2^24 (float32 BLAS) or < 2^53 (float64 BLAS), below the
  accumulator's range, and max|a * b| << max_shift below the widening's range. Then no overflow
  event can happen in any order, integer addition is associative, and a float BLAS whose every
  partial sum is an integer below 2^24 (2^53) computes it exactly whatever its summation order.
- `int_mac.int8_lanes_{vnni,avx2,portable}` (tried first under the exact_blas bound): operands of <= 8 bits on the integer dot-product kernel
  of csrc/intgemm.c (AVX-512 VNNI vpdpbusd, AVX2 vpmaddwd, plain C). The same bound puts the exact
  result c + sum_k a b 2^s in (-2^31, 2^31); the kernel computes it modulo 2^32 (wrapping int32
  adds, exact 8-bit products, lanes a' + oa / b' + ob with the offsets' cross terms subtracted), and
  in (-2^31, 2^31) the residue determines the integer. Each side's values, the alignment shift
  applied to one of them, must span <= 255 so that an offset puts them in u8 or s8 lanes; else the
  BLAS kernel runs. Its plain C level (`*.int8_lanes_portable`, preferred after the BLAS kernel) is
  slower than BLAS and serves as the portable reference.
- `int_mma.*`: integer MMA units (numsim.units.int_mma.IntMMAUnit: exact sums per instruction into an int32 accumulator
  that wraps or saturates once per instruction) when |c| + K * max|a| * max|b| < 2^31 (maxima over
  the data): every accumulator value the unit ever holds, c plus a partial sum of products, is then
  inside the INT32 range, so no wrap or saturation happens and the result is exactly c + A B; the
  int8 lanes kernels (their precondition holds), else a float32 (bound < 2^24) or float64 (< 2^53) BLAS,
  computes that exactly, as for `int`.
"""
from __future__ import annotations

import functools

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import _decode_table, decode, encode
from ..formats import IntFormat
from ..units.base import GemmResult
from . import Kernel, level_ok, register


def _int_unit_ok(unit, a, b, c, ctx):
    from ..units.int_mac import IntMacUnit

    if type(unit) is not IntMacUnit:
        return None
    if set(ctx) - {"align_shift"}:
        return None
    shift = ctx.get("align_shift")
    max_shift = int(np.max(shift)) if shift is not None and len(shift) else 0
    if shift is not None and len(shift) and int(np.min(shift)) < 0:
        return None
    va = _decode_table(unit.a_fmt) if unit.a_fmt.bits <= 16 else None
    vb = _decode_table(unit.b_fmt) if unit.b_fmt.bits <= 16 else None
    if va is None or vb is None:
        return None
    ma = float(np.max(np.abs(va)))
    mb = float(np.max(np.abs(vb)))
    pmax = ma * mb * 2.0**max_shift
    widen_bits = getattr(unit, "widen_bits", 16)
    if pmax >= 2.0 ** (widen_bits - 1) - 1:       # a widened product could overflow its register
        return None
    K = a.shape[1]
    cmax = 0.0
    if c is not None and c.size:
        cmax = float(np.max(np.abs(decode(c, unit.acc_fmt))))
    bound = cmax + K * pmax
    acc_bits = unit.acc_fmt.bits
    if bound >= 2.0 ** (acc_bits - 1) - 1:        # the accumulator could leave its range
        return None
    if bound < 2.0**24:
        return np.float32
    if bound < 2.0**53:
        return np.float64
    return None


def _sample_shift_as_int_mac(unit, ctx):
    """The per-sample-shift unit with left shifts is the integer MAC with align_shift = max_shift - s:
    sample k's widened product shifted left by (max_shift - s_k), summed. When the integer path's bound
    holds (checked there, with the widening's range as the limit of every shifted product), nothing
    overflows in either grouping (per sample, or one accumulator per shift value summed after
    shifting), so every grouping and order gives the same exact sum. Returns (IntMacUnit, ctx) or None."""
    from ..units.int_mac import IntMacUnit
    from ..units.sample_shift import SampleShiftUnit

    if type(unit) is not SampleShiftUnit or unit.shift_direction != "left" or set(ctx) != {"sample_shift"}:
        return None
    s = np.asarray(ctx["sample_shift"], dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() > unit.max_shift):
        return None                                   # the MAC-level path reports it
    int_unit = IntMacUnit(name=unit.name + ":as_int", a_fmt=unit.a_fmt, b_fmt=unit.b_fmt, widen_bits=unit.widen_bits,
                          widen_overflow="error", acc_bits=unit.acc_bits, acc_overflow="error")
    return int_unit, {"align_shift": unit.max_shift - s}


def _int_gemm(unit, dtype, a, b, c, ctx):
    A = _decode_table(unit.a_fmt).astype(dtype)[a]
    shift = ctx.get("align_shift")
    if shift is not None:
        A = A * np.ldexp(1.0, np.asarray(shift, dtype=np.int64)).astype(dtype)
    B = _decode_table(unit.b_fmt).astype(dtype)[b]
    acc = A @ B
    if c is not None:
        acc = acc + decode(c, unit.acc_fmt).astype(dtype)
    vals = acc.astype(np.float64)
    codes = encode(vals, unit.acc_fmt)
    res = GemmResult(codes=codes, values=vals, overflow_count=0)
    stage = getattr(unit, "output_stage", None)
    if stage is not None:
        res.out_codes = stage.apply(codes.astype(np.uint32))
    return res


@functools.lru_cache(maxsize=64)
def _lane_values(fmt):
    """(256 int32 values of the uint8 codes, min, max) of an integer format of <= 8 bits; codes past
    the format read as 0 (they never occur: codes are checked before they get here)."""
    vals = _decode_table(fmt).astype(np.int64)
    table = np.zeros(256, dtype=np.int32)
    table[:vals.size] = vals
    table.flags.writeable = False
    return table, int(vals.min()), int(vals.max())


def _lane_offset(lo, hi, unsigned):
    """An offset putting [lo, hi] in u8 ([0, 255]) or s8 ([-128, 127]) lanes (0 where none is needed), or None."""
    if hi - lo > 255:
        return None
    if unsigned:
        return -lo
    return 0 if lo >= -128 and hi <= 127 else -128 - lo


@functools.lru_cache(maxsize=256)
def _lane_plan(a_fmt, b_fmt, max_shift):
    """(shift_on_b, a_is_u8, a_off, b_off) for the dot-product kernel, or None.

    The per-k shift multiplies one side by 2^s; every format's range contains 0, so the shifted values
    of that side lie in [min * 2^max_shift, max * 2^max_shift]. The u8 x s8 instruction takes each side
    as lane = value + offset; the offsets' cross terms are subtracted exactly (csrc/intgemm.c). Of the
    plans that fit, the one with the fewest non-zero offsets is taken."""
    if not (isinstance(a_fmt, IntFormat) and isinstance(b_fmt, IntFormat)) or a_fmt.bits > 8 or b_fmt.bits > 8:
        return None
    _, amin, amax = _lane_values(a_fmt)
    _, bmin, bmax = _lane_values(b_fmt)
    best = None
    for shift_on_b in ((True, False) if max_shift else (True,)):
        sa = 0 if shift_on_b else max_shift
        sb = max_shift if shift_on_b else 0
        ra = (amin << sa, amax << sa)
        rb = (bmin << sb, bmax << sb)
        for a_is_u8 in (True, False):
            oa = _lane_offset(*ra, unsigned=a_is_u8)
            ob = _lane_offset(*rb, unsigned=not a_is_u8)
            if oa is None or ob is None:
                continue
            cand = ((oa != 0) + (ob != 0), shift_on_b, a_is_u8, oa, ob)
            if best is None or cand[0] < best[0]:
                best = cand
    return None if best is None else best[1:]


def _int8_gemm(unit, a, b, c, ctx, nthreads, level=-1):
    """The `int8` path: a GemmResult, or None where it does not apply (the BLAS path runs then).
    Call only under `_int_unit_ok`'s bound."""
    if a.dtype != np.uint8 or b.dtype != np.uint8 or a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        return None
    M, K = a.shape
    N = b.shape[1]
    shift = ctx.get("align_shift")
    shift32 = None
    if shift is not None:
        shift = np.asarray(shift)
        if shift.shape != (K,):
            return None
        if np.any(shift):
            shift32 = np.ascontiguousarray(shift, dtype=np.int32)
    plan = _lane_plan(unit.a_fmt, unit.b_fmt, int(shift32.max()) if shift32 is not None else 0)
    if plan is None:
        return None
    shift_on_b, a_is_u8, a_off, b_off = plan
    acc = unit.acc_fmt
    cc = None
    if c is not None:
        if c.shape != (M, N):
            return None
        cc = np.ascontiguousarray(c, dtype=np.uint32)
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    a_val = _lane_values(unit.a_fmt)[0]
    b_val = _lane_values(unit.b_fmt)[0]
    # the doubles and the int32 results share one allocation: glibc then raises its mmap and trim
    # thresholds to the whole result and reuses the memory in later calls, where separate arrays
    # were handed back to the OS and paid ~300 first-touch page faults a call at 256 x 256
    buf = np.empty(M * N * 12, dtype=np.uint8)
    vals = buf[:M * N * 8].view(np.float64).reshape(M, N)
    out = buf[M * N * 8:].view(np.int32).reshape(M, N)
    st = lib.ns_int8_gemm(cptr("uint8_t *", a), unit.a_fmt.bits, cptr("int32_t *", a_val), cptr("uint8_t *", b),
                          unit.b_fmt.bits, cptr("int32_t *", b_val), M, K, N,
                          cptr("int32_t *", shift32) if shift32 is not None else ffi.NULL, int(shift_on_b),
                          a_off, b_off, int(a_is_u8), cptr("uint32_t *", cc) if cc is not None else ffi.NULL,
                          acc.bits, cptr("int32_t *", out), cptr("double *", vals), int(nthreads), int(level))
    if st:
        return None
    codes = out.view(np.uint32)
    if acc.bits < 32:   # two's-complement codes of the narrower accumulator
        codes = (codes & np.uint32((1 << acc.bits) - 1)).astype(acc.dtype)
    res = GemmResult(codes=codes, values=vals, overflow_count=0)
    stage = getattr(unit, "output_stage", None)
    if stage is not None:
        res.out_codes = stage.apply(codes)
    return res


def _imma_ok(unit, a, b, c, ctx):
    from ..units.int_mma import IntMMAUnit

    if not isinstance(unit, IntMMAUnit) or ctx or a.size == 0 or b.size == 0:
        return None
    va = _decode_table(unit.a_fmt)
    vb = _decode_table(unit.b_fmt)
    ma = float(np.max(np.abs(va[np.bincount(a.ravel(), minlength=len(va))[:len(va)] > 0])))   # codes present
    mb = float(np.max(np.abs(vb[np.bincount(b.ravel(), minlength=len(vb))[:len(vb)] > 0])))
    cmax = 0.0 if c is None or not c.size else float(np.max(np.abs(np.asarray(c).view(np.int32).astype(np.int64))))
    bound = cmax + a.shape[1] * ma * mb
    if bound >= 2.0**31 - 1:                      # some accumulator value could wrap or saturate
        return None
    return np.float32 if bound < 2.0**24 else np.float64


def _imma_gemm(unit, dtype, a, b, c):
    acc = _decode_table(unit.a_fmt).astype(dtype)[a] @ _decode_table(unit.b_fmt).astype(dtype)[b]
    vals = acc.astype(np.float64)
    if c is not None:
        vals += np.asarray(c).view(np.int32)
    codes = vals.astype(np.int64).astype(np.int32).view(np.uint32)
    return GemmResult(codes=codes, values=vals)


# ---- the kernels ---------------------------------------------------------------------------------

_LANE_LEVELS = {"vnni": ("avx512_vnni", 2), "avx2": ("avx2", 1), "portable": ("portable", 0)}


def _int_threads(p):
    # A thread pays for its start only with >= 2^26 MACs (0.3 ms at ~200 GMAC/s a core).
    M, K, N = p.shape
    return max(1, min(p.nthreads, (M * K * N) >> 26))


def _lanes_reason(unit, p, ctx):
    if p.a.dtype != np.uint8 or p.b.dtype != np.uint8:
        return "operands wider than 8 bits"
    if p.a.shape[1] == 0:
        return "K = 0"
    shift = ctx.get("align_shift")
    max_shift = int(np.max(shift)) if shift is not None and len(shift) else 0
    if _lane_plan(unit.a_fmt, unit.b_fmt, max_shift) is None:
        return "the operands' (shifted) values span more than 255: no u8 / s8 lane offset"
    return None


def _int_mac_domain(unit, p):
    if _int_unit_ok(unit, p.a, p.b, p.c, p.ctx) is None:
        return "the exact result could overflow (|c| + K max|a b| 2^max_shift past the widening or accumulator)"
    return None


def _int_lanes_kernel(family, tag, ok, ctx_of):
    level, c_level = _LANE_LEVELS[tag]

    def domain(unit, p):
        return ok(unit, p) or _lanes_reason(unit, p, ctx_of(p))

    def run(unit, p):
        res = _int8_gemm(unit, p.a, p.b, p.c, ctx_of(p), _int_threads(p), c_level)
        if res is None:
            raise RuntimeError(f"{family}.int8_lanes_{tag}: the C kernel rejected a problem its domain accepted")
        return res

    register(Kernel(name=f"{family}.int8_lanes_{tag}", level=level,
                    proof="under the exact bound the result c + sum_k a b 2^s lies in (-2^31, 2^31); the lanes "
                          "kernel (csrc/intgemm.c) computes it modulo 2^32 with exact 8-bit products and the lane "
                          "offsets' cross terms subtracted, and the residue determines it; tests/test_kernels.py, "
                          "tests/test_intgemm.py",
                    domain=domain, run=run))


def _int_blas_run(unit, p):
    return _int_gemm(unit, _int_unit_ok(unit, p.a, p.b, p.c, p.ctx), p.a, p.b, p.c, p.ctx)


def _imma_domain(unit, p):
    if _imma_ok(unit, p.a, p.b, p.c, {}) is None:
        return "|c| + K max|a| max|b| reaches 2^31 - 1: the accumulator could wrap or saturate"
    return None


def _imma_blas_run(unit, p):
    return _imma_gemm(unit, _imma_ok(unit, p.a, p.b, p.c, {}), p.a, p.b, p.c)


for _tag in ("vnni", "avx2", "portable"):
    _int_lanes_kernel("int_mac", _tag, _int_mac_domain, lambda p: p.ctx)
    _int_lanes_kernel("int_mma", _tag, _imma_domain, lambda p: {})

register(Kernel(name="int_mac.exact_blas", level="python",
                proof="no overflow event can happen in any order under |c| + K max|a b| 2^max_shift below the "
                      "widening's and accumulator's ranges; integer addition is associative and a float BLAS whose "
                      "every partial sum is an integer below 2^24 (float32) / 2^53 (float64) is exact in any order; "
                      "tests/test_kernels.py",
                domain=_int_mac_domain, run=_int_blas_run))
register(Kernel(name="int_mma.exact_blas", level="python",
                proof="|c| + K max|a| max|b| < 2^31 over the data: no accumulator value wraps or saturates, so the "
                      "result is c + A B exactly, which a float32 (< 2^24) / float64 (< 2^53) BLAS computes exactly; "
                      "tests/test_kernels.py, tests/test_hardware_simd.py",
                domain=_imma_domain, run=_imma_blas_run))


def _as_int_mac(unit, p):
    proxy = _sample_shift_as_int_mac(unit, p.ctx)
    if proxy is None:
        return None
    int_unit, int_ctx = proxy
    int_ctx = {"align_shift": np.ascontiguousarray(int_ctx["align_shift"], dtype=np.int32)}
    from .problem import Problem

    q = Problem(a=p.a, b=p.b, c=p.c, ctx=int_ctx, nthreads=p.nthreads)
    if _int_unit_ok(int_unit, q.a, q.b, q.c, q.ctx) is None:
        return None
    return int_unit, q


def _sample_shift_domain(unit, p):
    if _as_int_mac(unit, p) is None:
        return ("not the left-shift unit with every shifted product and partial sum provably in range "
                "(then it is the integer MAC with align_shift = 4 - s)")
    return None


def _sample_shift_run(unit, p):
    int_unit, q = _as_int_mac(unit, p)
    from . import _KERNELS

    for name in ("int_mac.int8_lanes_vnni", "int_mac.int8_lanes_avx2", "int_mac.exact_blas"):
        k = _KERNELS[name]
        if level_ok(k.level) and k.domain(int_unit, q) is None:
            res = k.run(int_unit, q)
            res.info["inner_kernel"] = name
            break
    if getattr(unit, "output_stage", None) is not None:
        res.out_codes = unit.output_stage.apply(res.codes.astype(np.uint32))
    return res


register(Kernel(name="sample_shift.as_int_mac", level="python",
                proof="with left shifts the unit is the integer MAC with align_shift = 4 - s; under the integer "
                      "bound nothing overflows in either grouping, so every grouping and order gives the same exact "
                      "sum, run by the integer MAC's exact kernels; tests/test_kernels.py",
                domain=_sample_shift_domain, run=_sample_shift_run))
