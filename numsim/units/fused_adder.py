"""The n-term fused aligned adder (FusedDotUnit): k_step products and the accumulator aligned to the
largest exponent, every term truncated to `kept_bits` below it, the sum rounded once into an
accumulator narrower than its fp32 storage; k permutation, periodic promotion into fp32, per-tensor
scales once in the epilogue (csrc/hw.c). The H100 HMMA/QGMMA datapaths are presets of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import check_codes
from ..errors import NumsimError, bad
from ..formats import FloatFormat, get_format
from ._c import FUSED_ROUNDING, _arrange_k, decode_operands, initial_acc, operands, set_formats
from .base import DotResult, GemmResult, Unit, acc_code, count_nonfinite, dot_as_gemm, threads

# Operand formats of the NVIDIA tensor-core kinds (f16, tf32, f8f6f4): all exact in the C adder.
_FLOAT_OPERANDS = ("fp16", "bf16", "tf32", "fp8_e4m3fn", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1")


def mod_split_permutation(block, modulus, groups):
    """A k permutation of one block: every k with k % modulus in groups[0] (in k order), then
    groups[1], ... The e4m3 mma.sync on sm_90 is mod_split_permutation(32, 4, ((0, 1), (2, 3)))."""
    perm = [k for g in groups for k in range(block) if k % modulus in g]
    if sorted(perm) != list(range(block)):
        raise bad("groups", f"residues that cover 0..{modulus - 1} once each", groups)
    return tuple(perm)




@dataclass(frozen=True)
class FusedDotUnit(Unit):
    """A fused n-term dot-product datapath with an fp32-stored accumulator (see module doc)."""

    name: str = "fused_dot"
    a_fmt: object = "fp16"                 # operand formats (names in, descriptors stored)
    b_fmt: object = "fp16"
    acc_fmt: object = "fp32"               # storage of the accumulator, of c and of the outputs
    k_step: int = 16                       # products per fused sum (one hardware step)
    kept_bits: int = 25                    # terms truncated to a multiple of 2^(emax - kept_bits)
    product_exponent: str = "input_sum"    # 'input_sum': ea + eb; 'normalized': floor(log2|a*b|)
    subnormal_exponent: str = "normalized" # exponent of a subnormal input: its own ('normalized') or
                                           # the format's minimum normal exponent ('format_min', MMA-Sim)
    term_truncation: str = "toward_zero"   # how terms lose the bits below 2^(emax - kept_bits)
    acc_man_bits: int = 23                 # fraction bits the accumulator keeps (13: the 1-8-13 FP8 one)
    acc_rounding: str = "toward_zero"      # rounding of the fused sum into the accumulator
    zero_sign: str = "positive"            # a zero sum is +0 (signed zeros are not kept)
    acc_overflow: str = "to_inf"           # past the accumulator's range: 'to_inf' or 'saturate'
    k_permutation: tuple | None = None     # processing order inside each block of len(k_permutation)
    promotion_interval: int | None = None  # every this many k: inner accumulator RNE-added into fp32
    c_add: str = "accumulator"             # c starts the outermost accumulator, or 'epilogue' RNE add
    scale_a: float = 1.0                   # per-tensor scales: the output is multiplied once by
    scale_b: float = 1.0                   # fp32(scale_a * scale_b), rounded to nearest even
    seed_source: str = "issue 11: recorded H100 outputs"
    doc: str = ""

    def __post_init__(self):
        set_formats(self, _FLOAT_OPERANDS, "fp32")
        if not (isinstance(self.k_step, int) and 1 <= self.k_step <= 256):
            raise bad("k_step", "an int in 1..256", self.k_step)
        if not (isinstance(self.kept_bits, int) and 8 <= self.kept_bits <= 32):
            raise bad("kept_bits", "an int in 8..32", self.kept_bits)
        if self.product_exponent not in ("input_sum", "normalized"):
            raise bad("product_exponent", "'input_sum' or 'normalized'", repr(self.product_exponent))
        if self.subnormal_exponent not in ("normalized", "format_min"):
            raise bad("subnormal_exponent", "'normalized' or 'format_min'", repr(self.subnormal_exponent))
        if self.term_truncation != "toward_zero":
            raise bad("term_truncation", "'toward_zero'", repr(self.term_truncation))
        if not (isinstance(self.acc_man_bits, int) and 1 <= self.acc_man_bits <= 23):
            raise bad("acc_man_bits", "an int in 1..23", self.acc_man_bits)
        if self.acc_rounding not in ("toward_zero", "nearest_even"):
            raise bad("acc_rounding", "'toward_zero' or 'nearest_even'", repr(self.acc_rounding))
        if self.zero_sign != "positive":
            raise bad("zero_sign", "'positive'", repr(self.zero_sign))
        if self.acc_overflow not in ("to_inf", "saturate"):
            raise bad("acc_overflow", "'to_inf' or 'saturate'", repr(self.acc_overflow))
        if self.k_permutation is not None:
            p = tuple(int(x) for x in self.k_permutation)
            if sorted(p) != list(range(len(p))) or len(p) % self.k_step:
                raise bad("k_permutation", f"a permutation of 0..n-1 with n a multiple of k_step={self.k_step}",
                          self.k_permutation)
            object.__setattr__(self, "k_permutation", p)
        if self.promotion_interval is not None:
            blk = len(self.k_permutation) if self.k_permutation else self.k_step
            if not (isinstance(self.promotion_interval, int) and self.promotion_interval > 0
                    and self.promotion_interval % blk == 0):
                raise bad("promotion_interval", f"None or a positive multiple of {blk}", self.promotion_interval)
        if self.c_add not in ("accumulator", "epilogue"):
            raise bad("c_add", "'accumulator' or 'epilogue'", repr(self.c_add))
        for arg in ("scale_a", "scale_b"):
            v = getattr(self, arg)
            if not (isinstance(v, (int, float)) and np.isfinite(v)):
                raise bad(arg, "a finite number", v)

    # ---- description -------------------------------------------------------------------------

    def inner_format(self) -> FloatFormat:
        """The accumulator format the fused adder rounds into (1-8-23 = fp32, or 1-8-13)."""
        if self.acc_man_bits == 23:
            return get_format("fp32")
        return FloatFormat(8, self.acc_man_bits, 127)

    @property
    def block(self):
        return len(self.k_permutation) if self.k_permutation else self.k_step

    def describe(self) -> str:
        perm = "k order" if not self.k_permutation else f"k permuted in blocks of {self.block}"
        prom = ("no promotion" if self.promotion_interval is None
                else f"promoted to fp32 (RNE add) every {self.promotion_interval} k")
        return (f"{self.name}: {self.a_fmt} x {self.b_fmt}, {self.k_step + 1}-term fused sum "
                f"(exponent {self.product_exponent}, terms truncated to 2^(emax-{self.kept_bits})), "
                f"sum {self.acc_rounding} into 1-8-{self.acc_man_bits}, {perm}, {prom}, c: {self.c_add}")

    # ---- the unit protocol -------------------------------------------------------------------

    kernels = ("fused_adder.avx512", "fused_adder.mac_level")

    def step(self, state, a, b, **ctx):
        """One fused step: state (fp32 code of the inner accumulator, None = +0) + the sum of up to
        k_step products (codes a, b; zero-padded) -> the new fp32 code (C kernel ns_fused_step)."""
        if ctx:
            raise bad(sorted(ctx)[0], f"no such input of {self.name}.step", ctx[sorted(ctx)[0]])
        return fused_step(self, state, a, b)

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a, b, cc, r = dot_as_gemm(self, a_codes, b_codes, c, ctx)
        tr = None
        if trace:     # the inner accumulator after every fused step (promotion restarts it from +0)
            tr = fused_trace(self, a.ravel(), b.ravel(), None if cc is None else int(cc[0, 0]))
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr,
                         overflow_count=r.overflow_count, info=r.info)

    def problem(self, a_codes, b_codes, c=None, nthreads=None, ctx=None):
        from ..kernels.problem import Problem

        ctx = {k: v for k, v in (ctx or {}).items()}
        unknown = set(ctx) - {"scale_a", "scale_b"}
        if unknown:
            raise bad(sorted(unknown)[0], f"no such input: {self.name} takes per-tensor scale_a / scale_b only "
                      "(no per-k alignment or sample shifts)", ctx[sorted(unknown)[0]])
        a, b = operands(self, a_codes, b_codes)
        cc = initial_acc(self, c, a.shape[0], b.shape[1])
        scales = {k: v for k, v in ctx.items() if v is not None}
        c_unit(self, scales.get("scale_a"), scales.get("scale_b"))      # checks the scales
        return Problem(a=a, b=b, c=cc, ctx=scales, nthreads=threads(nthreads))

    def mac_level_gemm(self, p) -> GemmResult:
        """The scalar kernel of csrc/hw.c: every fused step as the unit defines it."""
        return fused_gemm(self, p, 0)



def c_unit(unit, scale_a=None, scale_b=None):
    """The ns_fused_unit struct of a FusedDotUnit (per-call scales override the unit's)."""
    u = ffi.new("ns_fused_unit *")
    u.k_step = unit.k_step
    u.kept_bits = unit.kept_bits
    u.product_exponent = 0 if unit.product_exponent == "input_sum" else 1
    u.term_truncation = 1
    u.a_man_bits = get_format(unit.a_fmt).man_bits
    u.b_man_bits = get_format(unit.b_fmt).man_bits
    u.acc_man_bits = unit.acc_man_bits
    u.sum_rounding = FUSED_ROUNDING[unit.acc_rounding]
    u.overflow_to_inf = 1 if unit.acc_overflow == "to_inf" else 0
    u.promotion_interval = unit.promotion_interval or 0
    u.c_epilogue = 1 if unit.c_add == "epilogue" else 0
    sa = unit.scale_a if scale_a is None else scale_a
    sb = unit.scale_b if scale_b is None else scale_b
    for arg, v in (("scale_a", sa), ("scale_b", sb)):
        if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
            raise bad(arg, "a finite number", v)
    # fp32 scales, their product rounded to fp32 once (exact in float64, then one RNE rounding).
    s = np.float32(float(np.float32(sa)) * float(np.float32(sb)))
    u.apply_scale = 0 if s == 1.0 else 1
    u.scale = float(s)
    return u


def decode_terms(unit, codes, fmt):
    """(mag, neg, exp, cls) of operand codes as the unit's adder sees them. decode_operands gives
    every finite value normalized (mag in [2^m, 2^(m+1))); under subnormal_exponent='format_min' a
    subnormal keeps the format's minimum normal exponent and a mag below 2^m instead (the same value:
    the bits shifted out are zeros, since a subnormal has at most m significant bits). Only the
    product's exponent ea + eb, hence the alignment, changes."""
    mag, neg, exp, cls = decode_operands(codes, fmt)
    if unit.subnormal_exponent == "format_min":
        emin = 1 - get_format(fmt).bias            # the minimum normal exponent (radix 2)
        sub = (cls == 1) & (exp < emin)
        if sub.any():
            mag[sub] >>= (emin - exp[sub])
            exp[sub] = emin
    return mag, neg, exp, cls


def simd_path(unit, a_codes, b_codes, c=None):
    """Which kernel fused_gemm's SIMD choice runs on these operands: 0 scalar, 1 AVX-512 on double
    products, 2 AVX-512 on fp32 products (ns_fused_simd_path)."""
    exps = []
    for codes, fmt in ((a_codes, unit.a_fmt), (b_codes, unit.b_fmt)):
        _, _, e, cls = decode_terms(unit, codes, fmt)
        exps.append(e[cls == 1])
    e = np.concatenate(exps)
    lo, hi = (int(e.min()), int(e.max())) if e.size else (1, 0)
    return int(lib.ns_fused_simd_path(c_unit(unit), 0 if c is None else 1, lo, hi))


def _fused_panels(M, N, Kp, in_bytes):
    """(rows, columns) of the output blocks fused_gemm decodes operands for, so that the call's peak stays
    within 2x its inputs + outputs: the panels (13 bytes an element decoded, <= 2 bytes of arranged codes)
    share what the output codes (4 bytes an output) and a margin leave. The kernel prepares B per call
    (build_panels in csrc/hw.c), so B gets whole columns first and A is split into row panels."""
    io = in_bytes + 12 * M * N
    per = 15 * max(Kp, 1)
    budget = max(2 * io - 4 * M * N - io // 4, 32 * per)
    if per * (M + N) <= budget:
        return max(M, 1), max(N, 1)
    cols = N if per * N <= budget * 3 // 4 else max(16, budget * 3 // 4 // per // 16 * 16)
    rows = max(16, (budget - per * min(cols, N)) // per // 16 * 16)
    return max(1, min(M, rows)), max(1, min(N, cols))


def _arranged(unit, rows, Kp):
    """Codes of a panel of rows (operand rows along k), zero-padded to Kp and k-permuted as the unit runs them."""
    R, K = rows.shape
    if Kp != K:
        rows = np.concatenate([rows, np.zeros((R, Kp - K), rows.dtype)], axis=1)
    if unit.k_permutation:
        perm = np.asarray(unit.k_permutation)
        rows = rows.reshape(R, Kp // len(perm), len(perm))[:, :, perm].reshape(R, Kp)
    return np.ascontiguousarray(rows)


def fused_gemm(unit, p, level) -> GemmResult:
    """The fused-adder GEMM of a checked problem: level 0 the scalar kernel, 2 AVX-512F (csrc/hw.c);
    both give the same bits."""
    a, b, cc = p.a, p.b, p.c
    M, K = a.shape
    N = b.shape[1]
    Kp = -(-K // unit.block) * unit.block if K else 0     # zero products are neutral: they never set the alignment
    u = c_unit(unit, p.ctx.get("scale_a"), p.ctx.get("scale_b"))
    d = np.empty((M, N), np.uint32)
    events = 0
    # The kernel reads decoded operands (13 bytes an element). Decoding them whole would take up to 13x the
    # codes, so A and B are arranged and decoded per panel of rows / columns and the kernel runs on each output
    # block; the blocks' bits are the whole GEMM's (every output is its own dot product, in the same k order).
    mp, np_ = _fused_panels(M, N, Kp, a.nbytes + b.nbytes)
    for n0 in range(0, N, np_):
        n1 = min(N, n0 + np_)
        B = decode_terms(unit, _arranged(unit, b[:, n0:n1].T, Kp), unit.b_fmt)
        for m0 in range(0, M, mp):
            m1 = min(M, m0 + mp)
            A = decode_terms(unit, _arranged(unit, a[m0:m1], Kp), unit.a_fmt)
            whole = m1 - m0 == M and n1 - n0 == N
            dblk = d if whole else np.empty((m1 - m0, n1 - n0), np.uint32)
            cblk = cc if cc is None or whole else np.ascontiguousarray(cc[m0:m1, n0:n1])
            ev = ffi.new("int64_t *")
            ptrs = [cptr("int32_t *", A[0]), cptr("int32_t *", A[1]), cptr("int32_t *", A[2]), cptr("uint8_t *", A[3]),
                    cptr("int32_t *", B[0]), cptr("int32_t *", B[1]), cptr("int32_t *", B[2]), cptr("uint8_t *", B[3])]
            st = lib.ns_fused_gemm_simd(u, *ptrs, ffi.NULL if cblk is None else cptr("uint32_t *", cblk),
                                        cptr("uint32_t *", dblk), m1 - m0, n1 - n0, Kp, p.nthreads, level, ev)
            if st:
                raise NumsimError(f"unit: the C kernel rejected {unit.name} (status {st})")
            events += int(ev[0])
            if not whole:
                d[m0:m1, n0:n1] = dblk
            del A
        del B
    res = GemmResult(codes=d, values=d.view(np.float32).astype(np.float64), overflow_count=events)
    return count_nonfinite(res, "fp32")


def fused_step(unit, state, a_codes, b_codes):
    """One fused step through the C kernel: state (fp32 code of the inner accumulator) + the
    products of a_codes and b_codes (at most k_step; zero-padded) -> the new fp32 code."""
    st = 0 if state is None else acc_code(state, unit.acc_fmt, "state")      # checked before any C call
    a = np.zeros(unit.k_step, get_format(unit.a_fmt).dtype)
    b = np.zeros(unit.k_step, get_format(unit.b_fmt).dtype)
    av = check_codes(np.asarray(a_codes).ravel(), unit.a_fmt, "a")
    bv = check_codes(np.asarray(b_codes).ravel(), unit.b_fmt, "b")
    if av.size != bv.size or av.size > unit.k_step:
        raise bad("a, b", f"equal lengths <= k_step={unit.k_step}", (av.size, bv.size))
    a[:av.size] = av
    b[:bv.size] = bv
    A = decode_terms(unit, a, unit.a_fmt)
    B = decode_terms(unit, b, unit.b_fmt)
    st = np.uint32(st)
    u = c_unit(unit)
    return int(lib.ns_fused_step(u, cptr("int32_t *", A[0]), cptr("int32_t *", A[1]), cptr("int32_t *", A[2]),
                                 cptr("uint8_t *", A[3]), cptr("int32_t *", B[0]), cptr("int32_t *", B[1]),
                                 cptr("int32_t *", B[2]), cptr("uint8_t *", B[3]), unit.k_step, int(st)))


def fused_trace(unit, a_codes, b_codes, c_code):
    """The inner accumulator (fp32 code) after every fused step of one output, in processing order
    (k permuted and zero-padded as the unit does), with promotions applied where they happen."""
    a = np.asarray(a_codes).reshape(1, -1)
    bt = np.asarray(b_codes).reshape(1, -1)
    a, bt, Kp = _arrange_k(a, bt, unit.block)
    if unit.k_permutation:
        p = np.asarray(unit.k_permutation)
        a = a.reshape(1, -1, len(p))[:, :, p].reshape(1, Kp)
        bt = bt.reshape(1, -1, len(p))[:, :, p].reshape(1, Kp)
    promo = unit.promotion_interval
    acc = 0
    if c_code is not None and not promo and unit.c_add == "accumulator":
        acc = int(c_code)       # the hardware presets keep a 23-bit accumulator here
    trace = []
    for s in range(0, Kp, unit.k_step):
        acc = fused_step(unit, acc, a[0, s:s + unit.k_step], bt[0, s:s + unit.k_step])
        trace.append(acc)
        if promo and ((s + unit.k_step) % promo == 0 or s + unit.k_step >= Kp):
            acc = 0
    return trace

