"""AMD CDNA matrix cores (MFMA) as a unit: MatrixCoreUnit.

Two datapaths, as Microsoft's MMA-Sim models them (arXiv 2511.10909; github.com/microsoft/MMA-Sim
c785138, mmasim/simulator/amd.py and arithmetic.py), for the fp32-accumulating MFMA instructions:

- 'fused_floor' (CDNA3 f16/bf16 in groups of 8 k, CDNA3 fp8/bf8 in groups of 16 k, CDNA3 xf32 in
  groups of 4): per group, every product p_i (exact) gets the exponent ea + eb (an input's exponent is
  its own, a subnormal input's the format's minimum normal exponent, a zero input's -126); the products
  are aligned to their largest exponent e and truncated toward zero to 24 fraction bits (fp8: the even-
  and odd-k products separately, each sum then floored to 24 bits at their common exponent and added);
  the group sum is floored (toward -inf) to 31 fraction bits below E = max(e, ec) and c (the fp32
  accumulator, exponent ec, -126 for zero or subnormal) floored to 24 bits below E (fp8: dropped when
  ec < E - 25); the two are added exactly and rounded to nearest even into fp32, which is c for the
  next group. A bf16 product >= 2^128 is +-inf by itself (both signs: NaN). Any inf/NaN input or c
  propagates as in float arithmetic (NaN is 0x7fc00000).
- 'pairwise' (CDNA1/CDNA2 f16/bf16): groups of 2 or 4 products, each product rounded to fp32, summed by
  a binary tree of fp32 round-to-nearest-even adds, then added to c (fp32 RNE). CDNA2 flushes fp32
  subnormals: inputs and c to +0 first, every intermediate result to a zero of its sign.

The gemm is an exact integer computation in numpy (int64 lanes, vectorised over outputs, chunked
over rows); the exact reference is numsim/reference/mfma.py (Fractions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codec import encode
from ..errors import bad
from ..formats import get_format
from ._c import decode_operands, initial_acc, operands, set_formats
from .base import DotResult, GemmResult, Unit, acc_code, count_nonfinite, dot_as_gemm, threads

_OPERANDS = ("fp16", "bf16", "tf32", "fp8_e4m3fnuz", "fp8_e5m2fnuz", "fp8_e4m3fn", "fp8_e5m2")
_CLS_ZERO, _CLS_FINITE, _CLS_INF, _CLS_NAN = 0, 1, 2, 3
_F32_NAN = np.uint32(0x7FC00000)


@dataclass(frozen=True)
class MatrixCoreUnit(Unit):
    """An AMD CDNA MFMA datapath into an fp32 accumulator (see module doc)."""

    name: str = "matrix_core"
    a_fmt: object = "fp16"
    b_fmt: object = "fp16"
    acc_fmt: object = "fp32"
    datapath: str = "fused_floor"          # 'fused_floor' (CDNA3) or 'pairwise' (CDNA1/2)
    k_step: int = 8                        # products per group (one chained step)
    term_frac_bits: int = 24               # fused_floor: products truncated below the group's emax
    sum_frac_bits: int = 31                # fused_floor: group sum floored below max(e, ec)
    c_frac_bits: int = 24                  # fused_floor: c floored below max(e, ec)
    even_odd_split: bool = False           # fused_floor: even and odd k fused separately (fp8)
    c_drop_binades: int | None = None      # fused_floor: c dropped when ec < E - this (fp8: 25)
    zero_exponent: int = -126              # exponent given to a zero input (and a zero c)
    flush_subnormals: bool = False         # pairwise: CDNA2's fp32 subnormal flush
    seed_source: str = "issue 19: MMA-Sim's model (arXiv 2511.10909)"
    doc: str = ""

    def __post_init__(self):
        set_formats(self, _OPERANDS, "fp32")
        if self.datapath not in ("fused_floor", "pairwise"):
            raise bad("datapath", "'fused_floor' or 'pairwise'", repr(self.datapath))
        if not (isinstance(self.k_step, int) and 1 <= self.k_step <= 64):
            raise bad("k_step", "an int in 1..64", self.k_step)
        for arg, lo, hi in (("term_frac_bits", 8, 30), ("sum_frac_bits", 8, 40), ("c_frac_bits", 8, 30)):
            v = getattr(self, arg)
            if not (isinstance(v, int) and lo <= v <= hi):
                raise bad(arg, f"an int in {lo}..{hi}", v)
        if self.even_odd_split and self.k_step % 2:
            raise bad("even_odd_split", f"False for an odd k_step={self.k_step}", self.even_odd_split)
        if self.c_drop_binades is not None and not (isinstance(self.c_drop_binades, int) and self.c_drop_binades >= 0):
            raise bad("c_drop_binades", "None or an int >= 0", self.c_drop_binades)
        if not (isinstance(self.zero_exponent, int) and -300 <= self.zero_exponent <= 0):
            raise bad("zero_exponent", "an int in -300..0", self.zero_exponent)
        if self.flush_subnormals and self.datapath != "pairwise":
            raise bad("flush_subnormals", "False unless datapath='pairwise' (CDNA2)", self.flush_subnormals)

    def describe(self) -> str:
        if self.datapath == "pairwise":
            return (f"{self.name}: {self.a_fmt} x {self.b_fmt}, groups of {self.k_step} fp32 products summed "
                    f"pairwise (fp32 RNE), added to c (fp32 RNE)"
                    + (", fp32 subnormals flushed" if self.flush_subnormals else ""))
        split = ", even/odd k fused separately" if self.even_odd_split else ""
        return (f"{self.name}: {self.a_fmt} x {self.b_fmt}, groups of {self.k_step} products aligned and "
                f"truncated to {self.term_frac_bits} fraction bits{split}; group sum floored to "
                f"{self.sum_frac_bits} and c to {self.c_frac_bits} bits at their common exponent, "
                f"added and rounded to nearest even fp32")

    kernels = ("matrix_core.c_lanes", "matrix_core.mac_level")

    # ---- the unit protocol -------------------------------------------------------------------

    def step(self, state, a, b, **ctx):
        """One group: state (fp32 code of c, None = +0) and up to k_step products -> fp32 code."""
        if ctx:
            raise bad(sorted(ctx)[0], f"no such input of {self.name}.step", ctx[sorted(ctx)[0]])
        a = np.asarray(a).ravel()
        b = np.asarray(b).ravel()
        if a.size != b.size or a.size > self.k_step:
            raise bad("a, b", f"equal lengths <= k_step={self.k_step}", (a.size, b.size))
        c = np.array([[0 if state is None else acc_code(state, self.acc_fmt, "state")]], np.uint32)
        return int(self.gemm_codes(a.reshape(1, -1), b.reshape(-1, 1), c=c, nthreads=1).codes[0, 0])

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a, b, cc, r = dot_as_gemm(self, a_codes, b_codes, c, ctx)
        tr = None
        if trace:     # c after every group
            tr, st = [], None if cc is None else int(cc[0, 0])
            for s in range(0, a.shape[1], self.k_step):
                st = self.step(st, a[0, s:s + self.k_step], b[s:s + self.k_step, 0])
                tr.append(st)
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr,
                         overflow_count=r.overflow_count, info=r.info)

    def problem(self, a_codes, b_codes, c=None, nthreads=None, ctx=None):
        from ..kernels.problem import Problem

        for k in (ctx or {}):
            raise bad(k, f"no such input: {self.name} takes no scales or shifts", ctx[k])
        a, b = operands(self, a_codes, b_codes)
        return Problem(a=a, b=b, c=initial_acc(self, c, a.shape[0], b.shape[1]), ctx={}, nthreads=threads(nthreads))

    def mac_level_gemm(self, p) -> GemmResult:
        """Every group of every output in k order (exact integers in int64 lanes, rows in chunks)."""
        M, N = p.a.shape[0], p.b.shape[1]
        A, B, c, Kp = prepared(self, p)
        G = self.k_step
        events = np.zeros((), np.int64)
        rows = max(1, (1 << 21) // max(1, N * G))
        for r0 in range(0, M, rows):
            r1 = min(M, r0 + rows)
            for s in range(0, Kp, G):
                a = tuple(x[r0:r1, None, s:s + G] for x in A[:4]) + A[4:]
                b = tuple(x[None, :, s:s + G] for x in B[:4]) + B[4:]
                step = _fused_floor_step if self.datapath == "fused_floor" else _pairwise_step
                c[r0:r1] = step(self, a, b, c[r0:r1], events)
        res = GemmResult(codes=c, values=c.view(np.float32).astype(np.float64), overflow_count=int(events))
        return count_nonfinite(res, "fp32")


def prepared(unit, p):
    """The problem's operands as the datapath reads them: A (M, Kp) and B^T (N, Kp) decoded by _terms,
    Kp = K rounded up to whole groups (zero padding: a zero product is never the group's largest
    exponent unless the whole group is zero, which then adds exactly 0), and c (M, N) fp32 codes."""
    M, K = p.a.shape
    N = p.b.shape[1]
    G = unit.k_step
    Kp = -(-K // G) * G if K else 0
    A = _terms(unit, np.pad(p.a, ((0, 0), (0, Kp - K))), unit.a_fmt)
    B = _terms(unit, np.pad(p.b.T, ((0, 0), (0, Kp - K))), unit.b_fmt)
    c = np.zeros((M, N), np.uint32) if p.c is None else np.array(p.c, np.uint32)
    return A, B, c, Kp


# ---- operands ------------------------------------------------------------------------------------

def _terms(unit, codes, fmt):
    """(mag, neg, exp, cls) of operand codes as int64, with MMA-Sim's exponent conventions: a
    subnormal at the format's minimum normal exponent (mag shifted right: exact, its low bits are
    zero), a zero at unit.zero_exponent."""
    mag, neg, exp, cls = (x.astype(np.int64) for x in decode_operands(np.ascontiguousarray(codes), fmt))
    f = get_format(fmt)
    emin = 1 - f.bias
    sub = (cls == _CLS_FINITE) & (exp < emin)
    mag[sub] >>= emin - exp[sub]
    exp[sub] = emin
    exp[cls == _CLS_ZERO] = unit.zero_exponent
    return mag, neg & 1, exp, cls, f.man_bits, f.bias


def _acc_terms(unit, c):
    """c (fp32 codes) as (signed 24-bit significand, exponent, is_nan, is_inf, sign): subnormals and
    zero at exponent -126 (zero: unit.zero_exponent)."""
    c = c.astype(np.int64)
    field = (c >> 23) & 0xFF
    man = c & 0x7FFFFF
    sign = (c >> 31) & 1
    mag = np.where(field > 0, man | 0x800000, man)
    exp = np.where(field > 0, field - 127, -126)
    exp = np.where((field == 0) & (man == 0), unit.zero_exponent, exp)
    special = field == 0xFF
    return np.where(sign == 1, -mag, mag), exp, special & (man != 0), special & (man == 0), sign


def _specials(a, b, c_nan, c_inf, c_sign):
    """(nan, pinf, ninf) per output from inf/NaN inputs and c, as float arithmetic propagates them."""
    acl, bcl = a[3], b[3]
    nan_t = (acl == _CLS_NAN) | (bcl == _CLS_NAN) | ((acl == _CLS_INF) & (bcl == _CLS_ZERO)) \
        | ((acl == _CLS_ZERO) & (bcl == _CLS_INF))
    inf_t = ((acl == _CLS_INF) | (bcl == _CLS_INF)) & ~nan_t
    neg_t = (a[1] ^ b[1]) == 1
    nan = nan_t.any(axis=2) | c_nan
    pinf = (inf_t & ~neg_t).any(axis=2) | (c_inf & (c_sign == 0))
    ninf = (inf_t & neg_t).any(axis=2) | (c_inf & (c_sign == 1))
    return nan, pinf, ninf


def _shift(x, sh):
    """x * 2^sh rounded toward -inf (an arithmetic right shift floors): exact for sh >= 0."""
    sh = np.broadcast_to(sh, x.shape)
    return np.where(sh >= 0, np.left_shift(x, np.clip(sh, 0, 62)), np.right_shift(x, np.clip(-sh, 0, 63)))


def _aligned_sum(a, b, F, sl):
    """The products of one lane set (k slice sl) aligned to their largest exponent e and truncated
    toward zero to F fraction bits: (sum in units of 2^(e - F), e). |products| < 2^(mab+2), so each
    term is < 2^(F+2) and a group of <= 64 sums below 2^(F+8) (int64 exact)."""
    am, an, ae = a[0][..., sl], a[1][..., sl], a[2][..., sl]
    bm, bn, be = b[0][..., sl], b[1][..., sl], b[2][..., sl]
    mab = a[4] + b[4]
    e = ae + be
    emax = e.max(axis=2)
    sh = F - mab - (emax[..., None] - e)
    mag = _shift(am * bm, sh)                   # magnitudes: floor == truncation toward zero
    return np.where((an ^ bn) == 1, -mag, mag).sum(axis=2), emax


def _fused_floor_step(u, a, b, c, events):
    csig, ec, c_nan, c_inf, c_sign = _acc_terms(u, c)
    F = u.term_frac_bits
    if u.even_odd_split:
        s0, e0 = _aligned_sum(a, b, F, slice(0, None, 2))
        s1, e1 = _aligned_sum(a, b, F, slice(1, None, 2))
        e = np.maximum(e0, e1)
        s = _shift(s0, e0 - e) + _shift(s1, e1 - e)     # each floored to F bits at the common e
    else:
        s, e = _aligned_sum(a, b, F, slice(None))
    E = np.maximum(e, ec)
    s = _shift(s, u.sum_frac_bits - F - (E - e))        # units 2^(E - sum_frac_bits), floored
    cs = _shift(csig, u.c_frac_bits - 23 - (E - ec))    # units 2^(E - c_frac_bits), floored
    if u.c_drop_binades is not None:
        cs = np.where(ec < E - u.c_drop_binades, 0, cs)
    total = s + _shift(cs, u.sum_frac_bits - u.c_frac_bits)
    # |total| < 2^(sum_frac_bits + 10) < 2^53 and E - sum_frac_bits >= -300: the float64 is exact, and
    # numsim's one rounding (codec.encode: nearest even into fp32, subnormals, overflow to inf) rounds it.
    exact = np.ldexp(total.astype(np.float64), (E - u.sum_frac_bits).astype(np.int32))
    out_bits = encode(exact, "fp32")
    # A product >= 2^128 (bf16) is +-inf by itself.
    pmag_log2 = np.frexp((a[0] * b[0]).astype(np.float64))[1] - 1 + a[2] + b[2] - (a[4] + b[4])
    big = (a[3] == _CLS_FINITE) & (b[3] == _CLS_FINITE) & (pmag_log2 >= 128)
    neg_t = (a[1] ^ b[1]) == 1
    p_pinf, p_ninf = (big & ~neg_t).any(axis=2), (big & neg_t).any(axis=2)
    nan, pinf, ninf = _specials(a, b, c_nan, c_inf, c_sign)
    finite_in = ~(nan | pinf | ninf)
    events += int(np.count_nonzero(finite_in & ((((out_bits >> 23) & 0xFF) == 0xFF) | p_pinf | p_ninf)))
    bits = out_bits
    bits = np.where(p_pinf, np.uint32(0x7F800000), np.where(p_ninf, np.uint32(0xFF800000), bits))
    bits = np.where(p_pinf & p_ninf, _F32_NAN, bits)
    bits = np.where(pinf, np.uint32(0x7F800000), np.where(ninf, np.uint32(0xFF800000), bits))
    return np.where(nan | (pinf & ninf), _F32_NAN, bits).astype(np.uint32)


def _f32(x):
    return x.astype(np.float32)


def _flush(x, keep_sign, emin=-126):
    """CDNA2's flush: |x| < 2^emin becomes a zero (of x's sign when keep_sign, else +0; -0 included)."""
    tiny = np.abs(x) < np.float32(2.0 ** emin)
    return np.where(tiny, np.copysign(np.float32(0), x) if keep_sign else np.float32(0), x).astype(np.float32)


def _pairwise_step(u, a, b, c, events):
    """Each product is fmaf(a, b, +0): the exact product rounded once to fp32 (a zero product is +0,
    an underflowing one keeps its sign); a binary tree of fp32 RNE adds (left half first when odd);
    then c + the group sum. numpy's float32 multiply and add are single IEEE operations (one RNE
    rounding each, no flush-to-zero), the datapath's definition; numsim/reference/mfma.py checks them."""
    av = _values(a)
    bv = _values(b)
    cv = c.view(np.float32)
    fl = u.flush_subnormals
    with np.errstate(all="ignore"):
        if fl:              # inputs flushed below their own format's minimum normal, to +0
            av, bv, cv = _flush(av, False, 1 - a[5]), _flush(bv, False, 1 - b[5]), _flush(cv, False)
        prods = _f32(av * bv)
        exact_zero = ((av == 0) | (bv == 0)) & np.isfinite(av) & np.isfinite(bv)
        prods = np.where(exact_zero, np.float32(0), prods).astype(np.float32)
        if fl:
            prods = _flush(prods, True)

        def tree(lo, hi):
            if hi - lo == 1:
                return prods[..., lo]
            m = lo + (hi - lo) // 2
            s = _f32(tree(lo, m) + tree(m, hi))
            return _flush(s, True) if fl else s

        g = tree(0, prods.shape[2])
        out = _f32(cv + g)
        if fl:
            out = _flush(out, True)
    finite_ops = np.isfinite(av).all(axis=2) & np.isfinite(bv).all(axis=2) & np.isfinite(cv)
    events += int(np.count_nonzero(finite_ops & np.isinf(out)))
    bits = out.view(np.uint32)
    return np.where(np.isnan(out), _F32_NAN, bits).astype(np.uint32)


def _values(t):
    """float32 values of decoded operands (exact: every operand format fits fp32)."""
    mag, neg, exp, cls, mb = t[:5]
    v = np.ldexp(mag.astype(np.float64), (exp - mb).astype(np.int32))
    v = np.where(cls == _CLS_ZERO, 0.0, v)
    v = np.where(cls == _CLS_INF, np.inf, v)
    v = np.where(cls == _CLS_NAN, np.nan, v)
    return np.where(neg == 1, -v, v).astype(np.float32)
