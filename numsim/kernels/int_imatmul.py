"""Exact fast kernels of the integer units on 8-bit lanes (csrc/imatmul*.c): AMX-INT8 tiles, AVX-512
VNNI, and a portable C twin with the same bits; the INT8 output stage vectorised.

Each kernel is a `numsim.kernels.Kernel(name, level, proof, domain, run)`: `domain(unit, problem)` is None where
`run(unit, problem)` gives the MAC-level path's GemmResult (`unit.gemm_codes(a, b, c, **ctx)`) bit for
bit, else a short reason; `problem` has attributes a, b, c, ctx, nthreads. tests/test_kernels_intfast.py
compares every kernel with the MAC-level path at every level the machine has.

The C kernel computes (c + sum_k a'b') mod 2^32 with a' = a 2^sa_k, b' = b 2^sb_k in int8/uint8 lanes
(the proof that every level gives exactly this residue is in csrc/imatmul.c). What makes the residue
the MAC-level unit's result is each family's bound, stated in its proof below.

Kernels (KERNELS, BY_NAME), each at the levels amx, avx512_vnni and portable:
- `int_mac.imatmul.<level>`: IntMacUnit (int4_int32, int4_int32_requant: the output stage by
  `requant_int8`, AVX-512 at the SIMD levels, the scalar rule at the portable one);
- `sample_shift.imatmul.<level>`: SampleShiftUnit, left shifts (the int MAC with align_shift = 4 - s),
  right shifts per shift value (exact group GEMMs, the unit's own final summation, vectorised), right
  shifts per sample (one-hot lanes against the unit's term table);
- `imma.imatmul.<level>`: IntMMAUnit (h100_imma_s8 / s4, wrap and saturate).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import _decode_table, check_codes
from ..errors import NumsimError
from ..formats import IntFormat
from ..units import GemmResult
from . import Kernel, register

LEVELS = {"portable": 0, "avx512_vnni": 1, "amx": 2}




# ---- operands ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _table(fmt):
    """(256 int32 values of the uint8 codes (0 past the format), min value, max value) of an integer
    format of <= 8 bits."""
    vals = _decode_table(fmt).astype(np.int64)
    t = np.zeros(256, dtype=np.int32)
    t[:vals.size] = vals
    t.flags.writeable = False
    return t, int(vals.min()), int(vals.max())


def _lane_shift_max(fmt):
    """The largest s with every value * 2^s in int8 lanes (a format with negatives) or uint8 lanes."""
    _, lo, hi = _table(fmt)
    for s in range(7, -1, -1):
        if (lo < 0 and -128 <= lo << s and hi << s <= 127) or (lo >= 0 and hi << s <= 255):
            return s
    return -1


def _codes8(x, fmt, arg):
    """Codes as contiguous uint8, or a reason (bad codes are the MAC-level path's to report)."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        return f"{arg}: not a 2-D code array"
    if x.dtype == np.uint8 and x.flags.c_contiguous and not getattr(fmt, "symmetric", False):
        # the common case, checked with one pass (check_codes' rule: every code below 2^bits)
        if fmt.bits == 8 or x.size == 0 or int(x.max()) < 2**fmt.bits:
            return x
        return f"{arg}: codes out of range (the MAC-level path reports them)"
    try:
        c = check_codes(x, fmt, arg)
    except NumsimError:
        return f"{arg}: codes out of range (the MAC-level path reports them)"
    return np.ascontiguousarray(c, dtype=np.uint8)


def _absmax_codes(codes, fmt):
    """max |value| over the codes present."""
    t, _, _ = _table(fmt)
    present = np.bincount(codes.ravel(), minlength=256)[:256] > 0
    return int(np.max(np.abs(t[present]))) if present.any() else 0


def _absmax_i32(x):
    if x is None or x.size == 0:
        return 0
    lo, hi = ffi.new("int32_t *"), ffi.new("int32_t *")
    lib.ns_imatmul_minmax_i32(cptr("int32_t *", x), x.size, lo, hi)
    return max(-int(lo[0]), int(hi[0]))


def _acc_values(c, acc_fmt, M, N):
    """Initial accumulator codes as contiguous int32 values, or a reason."""
    if c is None:
        return None
    try:
        cc = check_codes(np.asarray(c), acc_fmt, "c")
    except NumsimError:
        return "c: codes out of range (the MAC-level path reports them)"
    if cc.shape != (M, N):
        return "c: wrong shape (the MAC-level path reports it)"
    bits = acc_fmt.bits
    v = np.ascontiguousarray(cc, dtype=np.uint32).view(np.int32)
    if bits < 32:     # sign-extend the narrower accumulator's two's-complement codes
        v = ((v.astype(np.int64) ^ (1 << (bits - 1))) - (1 << (bits - 1))).astype(np.int32)
    return v


def _level_reason(level):
    if not lib.ns_imatmul_has_level(LEVELS[level]):
        return f"this CPU (or its OS) lacks the {level} level"
    return None


# ---- the C call -------------------------------------------------------------------------------------

def _imatmul(a, a_fmt, a_shift, b, b_fmt, b_shift, c32, level, nthreads):
    """(out int32 (M, N), values float64 (M, N)) of ns_imatmul; a_fmt / b_fmt: an integer format, or
    (bits, 256-entry int32 table) for lanes that are not a format's codes."""
    M, K = a.shape
    N = b.shape[1]
    # one allocation for both results: glibc then keeps the memory for later calls instead of
    # handing it back and paying first-touch page faults each call
    raw = np.empty(M * N * 12 + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64               # 64-byte aligned doubles: the kernel can stream them out
    buf = raw[start:start + M * N * 12]
    vals = buf[:M * N * 8].view(np.float64).reshape(M, N)
    out = buf[M * N * 8:].view(np.int32).reshape(M, N)
    (a_bits, at), (b_bits, bt) = (f if isinstance(f, tuple) else (f.bits, _table(f)[0]) for f in (a_fmt, b_fmt))
    st = lib.ns_imatmul(cptr("uint8_t *", a), a_bits, cptr("int32_t *", at),
                        ffi.NULL if a_shift is None else cptr("int32_t *", a_shift),
                        cptr("uint8_t *", b), b_bits, cptr("int32_t *", bt),
                        ffi.NULL if b_shift is None else cptr("int32_t *", b_shift),
                        M, K, N, ffi.NULL if c32 is None else cptr("int32_t *", c32),
                        cptr("int32_t *", out), cptr("double *", vals), int(nthreads), LEVELS[level])
    if st:
        raise NumsimError(f"ns_imatmul rejected its arguments (status {st}) at level {level}")
    return out, vals


def _threads(problem):
    from ..units.base import threads

    return threads(getattr(problem, "nthreads", None))


def _split_shifts(shift, a_fmt, b_fmt):
    """Per-k shifts (sa, sb) with sa + sb = shift, each side's lanes fitting, b taking as much as it
    can (its packing vectorises); None arrays for all-zero sides; or a reason."""
    if shift is None or not np.any(shift):
        return None, None
    mb, ma = _lane_shift_max(b_fmt), _lane_shift_max(a_fmt)
    s = shift.astype(np.int32)
    sb = np.minimum(s, max(mb, 0)).astype(np.int32)
    sa = (s - sb).astype(np.int32)
    if mb < 0 or ma < 0 or int(sa.max()) > ma:
        return "shifted operands do not fit 8-bit lanes"
    return (np.ascontiguousarray(sa) if sa.any() else None), np.ascontiguousarray(sb)


# ---- output stage --------------------------------------------------------------------------------

def requant_int8(stage, acc32, level):
    """RequantInt8.apply of int32 accumulators (any shape) through ns_requant_int8_fast: level 1
    AVX-512F, 0 the scalar rule of csrc/units.c (the same bits; tests compare them)."""
    acc = np.asarray(acc32)
    if acc.dtype != np.int32:               # int32 codes or values: a view, no copy
        acc = acc.astype(np.uint32, copy=False).view(np.int32)
    acc = np.ascontiguousarray(acc)
    out = np.empty(acc.shape, dtype=np.uint8)
    st = lib.ns_requant_int8_fast(cptr("int32_t *", acc), acc.size, stage.multiplier, stage.shift, stage.zero_point,
                                  stage.out_min, stage.out_max, cptr("uint8_t *", out), int(level))
    if st:
        raise NumsimError(f"ns_requant_int8_fast rejected its arguments (status {st})")
    return out


def _stage_level(level):
    return 0 if level == "portable" else 1      # the AMX level's CPUs have the VNNI level's AVX-512


# ---- IntMacUnit (int4_int32, int4_int32_requant) and the left-shift sample-shift unit ----------------

def _shift_ctx(problem, key, K, lo, hi):
    """The per-k shift array of ctx[key] (int64), None when absent, or a reason."""
    ctx = problem.ctx or {}
    extra = set(k for k, v in ctx.items() if v is not None) - {key}
    if extra:
        return f"context {sorted(extra)} is not this unit's"
    v = ctx.get(key)
    if v is None:
        return None
    arr = np.asarray(v)
    if arr.ndim == 0 and K == 1:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] != K or arr.dtype.kind not in "iu":
        return f"{key}: not a length-K integer array (the MAC-level path reports it)"
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        return f"{key}: values outside [{lo}, {hi}] (the MAC-level path reports them)"
    return arr.astype(np.int64)


def _operands8(problem, a_fmt, b_fmt):
    """(a, b, M, K, N) as 8-bit code arrays of a non-empty reduction, or the reason the kernel declines."""
    a = _codes8(problem.a, a_fmt, "a_codes")
    if isinstance(a, str):
        return a
    b = _codes8(problem.b, b_fmt, "b_codes")
    if isinstance(b, str):
        return b
    M, K = a.shape
    if b.shape[0] != K:
        return "a_codes and b_codes disagree on K (the MAC-level path reports it)"
    if K == 0:
        return "K = 0 (nothing to multiply)"
    return a, b, M, K, b.shape[1]


def _linear_plan(unit, problem, shift, product_shifted_in_widen):
    """The single-GEMM plan: every term a_k b_k 2^shift_k and every partial sum provably exact and in
    range. Returns a dict or a reason."""
    a_fmt, b_fmt, acc_fmt = unit.a_fmt, unit.b_fmt, unit.acc_fmt
    if a_fmt.bits > 8 or b_fmt.bits > 8:
        return "operand formats wider than 8 bits"
    ops = _operands8(problem, a_fmt, b_fmt)
    if isinstance(ops, str):
        return ops
    a, b, M, K, N = ops
    if isinstance(shift, str):
        return shift
    split = _split_shifts(shift, a_fmt, b_fmt)
    if isinstance(split, str):
        return split
    c32 = _acc_values(problem.c, acc_fmt, M, N)
    if isinstance(c32, str):
        return c32
    # sum_k 2^s_k, an exact integer (the split above bounds every s_k by 14)
    weight = int(np.sum(np.left_shift(np.int64(1), shift))) if shift is not None else K
    smax = int(shift.max()) if shift is not None else 0
    widen_lim = 2 ** (unit.widen_bits - 1) - 1
    acc_lim = 2 ** (acc_fmt.bits - 1) - 1
    cmax = _absmax_i32(c32)
    ma, mb = max(-_table(a_fmt)[1], _table(a_fmt)[2]), max(-_table(b_fmt)[1], _table(b_fmt)[2])
    wshift = smax if product_shifted_in_widen else 0

    def fits(ma, mb):
        return ma * mb * 2**wshift <= widen_lim and cmax + ma * mb * weight <= acc_lim

    if not fits(ma, mb):                           # the formats' maxima fail: try the data's
        ma, mb = _absmax_codes(a, a_fmt), _absmax_codes(b, b_fmt)
        if not fits(ma, mb):
            return ("the bound |c| + max|a| max|b| sum_k 2^s_k <= 2^(acc_bits-1) - 1 (and the widening's) fails: "
                    "the accumulator could wrap or saturate")
    return dict(a=a, b=b, a_shift=split[0], b_shift=split[1], c32=c32)


def _finish_int(unit, out, vals, level):
    acc = unit.acc_fmt
    codes = out.view(np.uint32)
    if acc.bits < 32:
        codes = (codes & np.uint32((1 << acc.bits) - 1)).astype(acc.dtype)
    res = GemmResult(codes=codes, values=vals, overflow_count=0)
    stage = getattr(unit, "output_stage", None)
    if stage is not None:
        res.out_codes = requant_int8(stage, out, _stage_level(level))
    return res


def _int_mac_domain(level):
    def domain(unit, problem):
        from ..units.int_mac import IntMacUnit

        if type(unit) is not IntMacUnit:
            return "not an IntMacUnit"
        r = _level_reason(level)
        if r:
            return r
        K = problem.a.shape[1] if getattr(problem.a, "ndim", 0) == 2 else 0
        plan = _linear_plan(unit, problem, _shift_ctx(problem, "align_shift", K, 0, 31), True)
        return plan if isinstance(plan, str) else None
    return domain


def _int_mac_run(level):
    def run(unit, problem):
        K = problem.a.shape[1]
        plan = _linear_plan(unit, problem, _shift_ctx(problem, "align_shift", K, 0, 31), True)
        if isinstance(plan, str):
            raise NumsimError(f"{unit.name}: outside this kernel's domain: {plan}")
        out, vals = _imatmul(plan["a"], unit.a_fmt, plan["a_shift"], plan["b"], unit.b_fmt, plan["b_shift"],
                             plan["c32"], level, _threads(problem))
        return _finish_int(unit, out, vals, level)
    return run


_INT_MAC_PROOF = (
    "IntMacUnit (int4_int32, int4_int32_requant): the datapath forms w_k = a_k b_k 2^s_k in a widen_bits register "
    "and adds it to an acc_bits accumulator, in the unit's order (sequential, chunked or pairwise). Domain: "
    "operands of <= 8 bits, the shift split s_k = sa_k + sb_k with a 2^sa and b 2^sb in int8/uint8 lanes, max|a| "
    "max|b| 2^max_s <= 2^(widen_bits-1) - 1 and |c| + max|a| max|b| sum_k 2^s_k <= 2^(acc_bits-1) - 1 (maxima of "
    "the formats, else of the codes present; |c| of the data). Then every widened product and every partial sum of "
    "any grouping (a subset of the terms, plus c) is an exact integer inside its register: no wrap, saturation or "
    "error occurs, so the MAC-level overflow_count is 0 (proved, not measured) and its result is the integer c + "
    "sum_k a b 2^s. ns_imatmul returns that integer mod 2^32 (csrc/imatmul.c: exact 8-bit-lane products, "
    "modulo-2^32 sums at every level), and in [-2^31, 2^31) the residue is the integer; codes are its low acc_bits "
    "bits. The output stage is RequantInt8 applied by ns_requant_int8_fast (AVX-512: the scalar rule's exact 64-bit"
    " product, nudge, truncating division, rounding right shift and clamp, lane by lane). Test: "
    "tests/test_kernels_intfast.py::test_int_mac_matches_mac_level.")


# ---- SampleShiftUnit ---------------------------------------------------------------------------------

def _sample_shift_plan(unit, problem, build=True):
    from ..units.sample_shift import SampleShiftUnit

    if type(unit) is not SampleShiftUnit:
        return "not a SampleShiftUnit"
    K = problem.a.shape[1] if getattr(problem.a, "ndim", 0) == 2 else 0
    s = _shift_ctx(problem, "sample_shift", K, 0, unit.max_shift)
    if s is None:
        return "sample_shift missing (the MAC-level path reports it)"
    if isinstance(s, str):
        return s
    if unit.shift_direction == "left":
        # per sample: w = a b (widened, unshifted), then w << (4 - s) into the accumulator; per shift:
        # groups of unshifted products, each shifted when summed. Both are the sum of a b 2^(4 - s).
        plan = _linear_plan(unit, problem, unit.max_shift - s, False)
        if isinstance(plan, str) and unit.grouping == "per_shift":
            return _groups_plan(unit, problem, s)
        return plan
    if unit.grouping == "per_shift":
        return _groups_plan(unit, problem, s)
    return _one_hot_plan(unit, problem, s, build)


_S8 = np.arange(256).astype(np.uint8).view(np.int8).astype(np.int32)    # a byte read as int8
_S8.flags.writeable = False


@functools.lru_cache(maxsize=16)
def _term_tables(unit):
    """T[s][x][y]: the per-sample unit's term for codes x, y at shift s (its own step from a zero
    accumulator: the widened product shifted right by s and rounded), for 4-bit operand codes."""
    na, nb = 2**unit.a_fmt.bits, 2**unit.b_fmt.bits
    t = np.zeros((unit.max_shift + 1, na, nb), dtype=np.int64)
    for v in range(unit.max_shift + 1):
        for x in range(na):
            for y in range(nb):
                try:
                    code = unit.step(0, x, y, sample_shift=v)
                except NumsimError:       # a code a symmetric format excludes: it never reaches a kernel
                    continue
                t[v, x, y] = code - (1 << unit.acc_bits) if code >> (unit.acc_bits - 1) else code
    t.flags.writeable = False
    return t


def _one_hot_plan(unit, problem, s, build):
    """Right shifts per sample: out = c + sum_k T[s_k][a_mk][b_kn], a sum of table terms. Samples with
    s = 0 are plain products; the others become 2^bits one-hot lanes [a_mk == u] against T[s_k][u][b_kn]."""
    if unit.a_fmt.bits > 4 or unit.b_fmt.bits > 4:
        return "right shifts per sample: operands wider than 4 bits (one-hot lanes would be too many)"
    a = _codes8(problem.a, unit.a_fmt, "a_codes")
    if isinstance(a, str):
        return a
    b = _codes8(problem.b, unit.b_fmt, "b_codes")
    if isinstance(b, str):
        return b
    M, K = a.shape
    if b.shape[0] != K or K == 0:
        return "K mismatch or K = 0 (the MAC-level path handles it)"
    N = b.shape[1]
    c32 = _acc_values(problem.c, unit.acc_fmt, M, N)
    if isinstance(c32, str):
        return c32
    _, alo, ahi = _table(unit.a_fmt)
    _, blo, bhi = _table(unit.b_fmt)
    if max(-alo, ahi) * max(-blo, bhi) > 2 ** (unit.widen_bits - 1) - 1:
        return "a widened product could overflow its register"
    T = _term_tables(unit)
    tmax = np.abs(T).reshape(T.shape[0], -1).max(axis=1)
    if int(tmax.max()) > 127:
        return "a term leaves the int8 lanes"
    if _absmax_i32(c32) + int(tmax[s].sum()) > 2 ** (unit.acc_bits - 1) - 1:
        return ("the bound |c| + sum_k max|term(s_k)| <= 2^(acc_bits-1) - 1 fails: the accumulator could wrap "
                "or saturate")
    if not build:
        return {}
    # every sample's lanes, in any k order (the bound makes the order irrelevant): first the one-hot
    # lanes of the samples with s > 0, grouped by shift value, then the plain products of those with s = 0
    na = 2**unit.a_fmt.bits
    at, bt = _table(unit.a_fmt)[0], _table(unit.b_fmt)[0]
    groups = [np.nonzero(s == v)[0] for v in range(1, unit.max_shift + 1)]
    k0 = np.nonzero(s == 0)[0]
    k1 = sum(g.size for g in groups)
    a8 = np.empty((M, na * k1 + k0.size), dtype=np.int8)
    b8 = np.empty((na * k1 + k0.size, N), dtype=np.int8)
    pos = 0
    units = np.arange(na, dtype=np.uint8)
    for v, idx in enumerate(groups, start=1):
        if idx.size == 0:
            continue
        w = na * idx.size
        a8[:, pos:pos + w] = (a[:, idx][:, :, None] == units).reshape(M, w)
        tv = T[v].astype(np.int8)                                  # (u, b code) -> term
        b8[pos:pos + w] = tv[:, b[idx]].transpose(1, 0, 2).reshape(w, N)
        pos += w
    a8[:, pos:] = at[a[:, k0]]
    b8[pos:] = bt[b[k0]]
    a8, b8 = a8.view(np.uint8), b8.view(np.uint8)
    return dict(a=a8, b=b8, a_shift=None, b_shift=None, c32=c32, a_fmt=(8, _S8), b_fmt=(8, _S8))


def _groups_plan(unit, problem, s):
    """per_shift grouping: one exact GEMM per shift value over its samples, then the unit's own finish."""
    if unit.acc_overflow == "error" or (unit.shift_direction == "left" and unit.shift_overflow == "error"):
        return "an 'error' policy past the single-GEMM bound (the MAC-level path names the failing output)"
    plans = {}
    for v in range(unit.max_shift + 1):
        idx = np.nonzero(s == v)[0]
        if idx.size == 0:
            continue
        sub = _Problem(np.asarray(problem.a)[:, idx], np.asarray(problem.b)[idx, :], None)
        p = _linear_plan(unit, sub, None, False)
        if isinstance(p, str):
            return f"shift group {v}: {p}"
        plans[v] = p
    M = problem.a.shape[0]
    N = problem.b.shape[1]
    if problem.c is not None:
        c32 = _acc_values(problem.c, unit.acc_fmt, M, N)
        if isinstance(c32, str):
            return c32
    return dict(groups=plans, M=M, N=N)


@dataclass
class _Problem:
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray | None
    ctx: dict | None = None
    nthreads: int | None = None


def _sample_shift_domain(level):
    def domain(unit, problem):
        r = _level_reason(level)
        if r:
            return r
        plan = _sample_shift_plan(unit, problem, build=False)
        return plan if isinstance(plan, str) else None
    return domain


def _sample_shift_run(level):
    def run(unit, problem):
        plan = _sample_shift_plan(unit, problem)
        if isinstance(plan, str):
            raise NumsimError(f"{unit.name}: outside this kernel's domain: {plan}")
        nt = _threads(problem)
        if "groups" not in plan:
            out, vals = _imatmul(plan["a"], plan.get("a_fmt", unit.a_fmt), plan["a_shift"], plan["b"],
                                 plan.get("b_fmt", unit.b_fmt), plan["b_shift"], plan["c32"], level, nt)
            return _finish_int(unit, out, vals, level)
        M, N = plan["M"], plan["N"]
        g = np.zeros((unit.max_shift + 1, M, N), dtype=np.int32)
        for v, p in plan["groups"].items():
            g[v] = _imatmul(p["a"], unit.a_fmt, None, p["b"], unit.b_fmt, None, None, level, nt)[0]
        cc = None
        if problem.c is not None:
            cc = np.ascontiguousarray(check_codes(np.asarray(problem.c), unit.acc_fmt, "c"), dtype=np.uint32)
        out = np.empty((M, N), dtype=np.uint32)
        ev = ffi.new("int64_t *")
        st = lib.ns_imatmul_shift_finish(unit._c, cptr("int32_t *", g), M * N,
                                         ffi.NULL if cc is None else cptr("uint32_t *", cc),
                                         cptr("uint32_t *", out), ev, nt, _stage_level(level))
        if st:
            raise NumsimError(f"{unit.name}: the final summation overflowed under an 'error' policy (status {st}); "
                              "the MAC-level path names the output")
        from ..codec import decode

        codes = out.astype(unit.acc_fmt.dtype)
        res = GemmResult(codes=codes, values=decode(codes, unit.acc_fmt), overflow_count=int(ev[0]))
        if unit.output_stage is not None:
            res.out_codes = requant_int8(unit.output_stage, out, _stage_level(level))
        return res
    return run


_SAMPLE_SHIFT_PROOF = (
    "SampleShiftUnit. Left shifts (either grouping): the unit sums a_k b_k 2^(4 - s_k) (per sample: the widened "
    "product shifted into the accumulator; per shift: each group's sum shifted when added); under the bound |c| + "
    "max|a| max|b| sum_k 2^(4 - s_k) <= 2^(acc_bits-1) - 1 and max|a| max|b| <= 2^(widen_bits-1) - 1 no register of"
    " either grouping ever leaves its range (0 events by proof) and the result is that exact integer: the int MAC's"
    " GEMM with align_shift = 4 - s (see the IntMacUnit proof). per_shift grouping (left, outside that bound, and "
    "right shifts): each group accumulator g_v = sum over the samples with shift v of a b is exact when max|a| "
    "max|b| |K_v| <= 2^(acc_bits-1) - 1 (a GEMM over those samples), and the final summation runs the unit's own "
    "rule (ns_sample_shift_finish: the shift, its rounding and overflow policy, the accumulator add) on those exact"
    " groups in the unit's order, counting its events exactly as the MAC-level path does. Right shifts per sample "
    "round every term: the result is c + sum_k T[s_k][a_mk][b_kn] with T the unit's own term (its step from a zero "
    "accumulator) for every code pair; samples with s = 0 are plain products, the others 2^bits one-hot lanes [a_mk"
    " == u] against T[s_k][u][b_kn] (4-bit operands, |T| <= 127), all int8 lanes; under |c| + sum_k max|T[s_k]| <= "
    "2^(acc_bits-1) - 1 no partial sum leaves the accumulator (0 events by proof) and the residue is the value. "
    "Test: tests/test_kernels_intfast.py::test_sample_shift_matches_mac_level.")


# ---- IntMMAUnit (h100_imma_s8 / s4, wrap and saturate) -----------------------------------------------------

def _imma_plan(unit, problem):
    from ..units.int_mma import IntMMAUnit

    if not isinstance(unit, IntMMAUnit):
        return "not an IntMMAUnit"
    if problem.ctx and any(v is not None for v in problem.ctx.values()):
        return "context given (the MAC-level path reports it)"
    a_fmt, b_fmt = unit.a_fmt, unit.b_fmt
    if not (isinstance(a_fmt, IntFormat) and isinstance(b_fmt, IntFormat)) or a_fmt.bits > 8 or b_fmt.bits > 8:
        return "operand formats wider than 8 bits"
    ops = _operands8(problem, a_fmt, b_fmt)
    if isinstance(ops, str):
        return ops
    a, b, M, K, N = ops
    c32 = _acc_values(problem.c, unit.acc_fmt, M, N)
    if isinstance(c32, str):
        return c32
    if unit.acc_overflow == "saturate":
        cmax = _absmax_i32(c32)
        ma, mb = max(-_table(a_fmt)[1], _table(a_fmt)[2]), max(-_table(b_fmt)[1], _table(b_fmt)[2])
        if cmax + K * ma * mb > 2**31 - 1:
            ma, mb = _absmax_codes(a, a_fmt), _absmax_codes(b, b_fmt)
            if cmax + K * ma * mb > 2**31 - 1:
                return ("saturate: the bound |c| + K max|a| max|b| <= 2^31 - 1 fails (some instruction could "
                        "saturate)")
    return dict(a=a, b=b, c32=c32)


def _imma_domain(level):
    def domain(unit, problem):
        r = _level_reason(level)
        if r:
            return r
        plan = _imma_plan(unit, problem)
        return plan if isinstance(plan, str) else None
    return domain


def _imma_run(level):
    def run(unit, problem):
        plan = _imma_plan(unit, problem)
        if isinstance(plan, str):
            raise NumsimError(f"{unit.name}: outside this kernel's domain: {plan}")
        out, vals = _imatmul(plan["a"], unit.a_fmt, None, plan["b"], unit.b_fmt, None, plan["c32"], level,
                             _threads(problem))
        return GemmResult(codes=out.view(np.uint32), values=vals)
    return run


_IMMA_PROOF = (
    "IntMMAUnit (h100_imma_s8 / s4 and their _sat variants): each k_step instruction adds an exact sum of products "
    "to the int32 accumulator, then wraps it modulo 2^32 ('wrap') or saturates it ('saturate'). wrap: reduction "
    "modulo 2^32 commutes with addition, so the result is (c + sum_k a b) mod 2^32 for every input and every "
    "k_step: exactly what ns_imatmul returns (no bound needed). saturate: under |c| + K max|a| max|b| <= 2^31 - 1 "
    "(maxima of the formats, else of the codes present) every accumulator value after any instruction, c plus a "
    "partial sum, is inside the INT32 range, so no instruction saturates and the result is the exact c + sum_k a b,"
    " the residue read as int32. The MAC-level IntMMAUnit path reports overflow_count 0 (it counts no events); so "
    "does this kernel. Test: tests/test_kernels_intfast.py::test_imma_matches_mac_level.")


# ---- the kernels -----------------------------------------------------------------------------------------

def _make():
    out = []
    for family, proof, dom, run in (("int_mac", _INT_MAC_PROOF, _int_mac_domain, _int_mac_run),
                                    ("sample_shift", _SAMPLE_SHIFT_PROOF, _sample_shift_domain, _sample_shift_run),
                                    ("int_mma", _IMMA_PROOF, _imma_domain, _imma_run)):
        for level in ("amx", "avx512_vnni", "portable"):
            out.append(Kernel(name=f"{family}.imatmul.{level}", level=level, proof=proof, domain=dom(level),
                                 run=run(level)))
    return tuple(out)


KERNELS = tuple(register(k) for k in _make())
BY_NAME = {k.name: k for k in KERNELS}

__all__ = ["KERNELS", "BY_NAME", "LEVELS", "requant_int8"]
