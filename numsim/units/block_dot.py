"""Block-scaled dot-product units (BlockDotUnit): MX / NVFP4 operands, one scale per block of K.

A GEMM of block-scaled operands: a (M, K) and b (K, N) element codes, block scales
`block_scale_a` (M, ceil(K / block_size)) and `block_scale_b` (ceil(K / block_size), N) (scale codes; omitted =
every scale 1.0), and an initial accumulator c. Every `k_step` products are one fused step (one
instruction); its result, rounded into `acc_fmt`, is the next step's c. In a step:

1. terms. `term_exponent="product"` (group_size 1): each product a*b*sa*sb is a term; its alignment
   exponent is the sum of its four factors' exponents. `term_exponent="scales"`: each group of
   `group_size` products is summed exactly, then multiplied by the two scales; its alignment exponent
   is the two scales' exponents alone (the group sum is not normalised). c is one more term. An
   exponent is floor(log2|v|), a subnormal counted at its format's minimum normal exponent; a zero
   gets `zero_exponent` (MMA-Sim: -126, whatever its format) or, with zero_exponent=None, a zero term
   takes no part in the alignment.
2. alignment. Every term is rounded (`term_rounding`, MMA-Sim: toward zero) to a multiple of
   2^(xmax - frac_bits), xmax the largest alignment exponent; frac_bits=None keeps every bit (exact).
3. the terms are summed exactly and the sum is rounded once into acc_fmt (`acc_rounding`; past the
   format's range `acc_overflow`). An exact zero is +0; a non-zero sum that rounds to zero is +0 too
   (`zero_sign="positive"`: MMA-Sim's RZ is math.trunc, an integer, so -0 cannot arise) or keeps its sign.
4. specials, as the products' IEEE arithmetic would give them: a NaN factor, an inf times a zero, or
   infinities of both signs give the canonical NaN code (0x7FFFFFFF in fp32, as NVIDIA's MMA outputs);
   otherwise an infinite product or c gives that infinity.

MXINT8 elements (int8) are fixed point with unit 2^-6 (OCP MX v1.0, 5.3). UE4M3 scales with the sign bit
set are an error unless `scale_sign="ignore"` (Blackwell's mxf4nvf4 reads |scale|: MMA-Sim, nv_ptx.py).
K need not be a multiple of block_size or k_step: a partial last block or step holds only the products
that exist (no padding terms: MMA-Sim's zeros would take part in the alignment; docs/blockscaled.md).

Kernels: `block_dot.mac_level` (Python integers, one output at a time: the definition) and
`block_dot.numpy` (numpy int64 over whole tiles; numsim/kernels/block_dot.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np

from ..codec import check_codes
from ..errors import NumsimError, bad
from ..formats import get_format
from .base import DotResult, GemmResult, Unit, acc_codes, count_nonfinite, threads

ELEM_FORMATS = ("fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1", "int8")
ACC_FORMATS = ("fp32", "fp16", "bf16")
TERM_ROUNDINGS = ("toward_zero", "nearest_even", "toward_neg")
ACC_ROUNDINGS = ("toward_zero", "nearest_even")
TERM_EXPONENTS = ("product", "scales")
MXINT8_UNIT_EXP = -6          # MXINT8 elements: int8 * 2^-6


@dataclass(frozen=True)
class ElemTable:
    """Per-code facts of one element or scale format, as numpy arrays indexed by code.
    value = (-1)^neg * sig * 2^(x - man) = (-1)^neg * m * 2^quantum; zero: sig = m = 0."""

    nan: np.ndarray
    inf: np.ndarray
    neg: np.ndarray
    zero: np.ndarray
    sig: np.ndarray          # int64: |value| / 2^(x - man)
    x: np.ndarray            # int64: alignment exponent (floor(log2|v|), at least the minimum normal one); 0 for zero
    m: np.ndarray            # int64: |value| / 2^quantum (elements only; 0 where it does not fit)
    man: int                 # fraction bits of sig
    quantum: int             # exponent of m's unit
    m_bits: int              # bits of the largest m

    def __hash__(self):
        return id(self)


def _floor_log2(v: Fraction) -> int:
    e = v.numerator.bit_length() - v.denominator.bit_length()
    return e if Fraction(2) ** e <= v else e - 1


def _table(values, man, emin_normal, quantum):
    n = len(values)
    nan = np.zeros(n, bool)
    inf = np.zeros(n, bool)
    neg = np.zeros(n, bool)
    zero = np.zeros(n, bool)
    sig = np.zeros(n, np.int64)
    x = np.zeros(n, np.int64)
    m = np.zeros(n, np.int64)
    for i, v in enumerate(values):
        if v == "nan":
            nan[i] = True
            continue
        if v in ("inf", "-inf"):
            inf[i] = True
            neg[i] = v == "-inf"
            continue
        v = Fraction(v)
        neg[i] = v < 0
        v = abs(v)
        if v == 0:
            zero[i] = True
            continue
        e = max(_floor_log2(v), emin_normal)
        s = v / Fraction(2) ** (e - man)
        assert s.denominator == 1
        sig[i], x[i] = int(s), e
        mm = v / Fraction(2) ** quantum
        assert mm.denominator == 1
        m[i] = int(mm) if mm < 2**62 else -1          # scales: m is never used
    m_bits = 999 if m.min() < 0 else int(max(m.max(), 1)).bit_length()
    return ElemTable(nan, inf, neg, zero, sig, x, m, man, quantum, m_bits)


def elem_table(fmt) -> ElemTable:
    fmt = get_format(fmt)
    if fmt.kind == "int":      # MXINT8: 1.6 fixed point
        vals = [Fraction(fmt.exact_value(c)) * Fraction(2) ** MXINT8_UNIT_EXP for c in range(2 ** fmt.bits)]
        return _table(vals, 6, MXINT8_UNIT_EXP, MXINT8_UNIT_EXP)
    vals = [fmt.exact_value(c) for c in range(2 ** fmt.bits)]
    return _table(vals, fmt.man_bits, 1 - fmt.bias, fmt.min_exponent)


def scale_table(sfmt, ignore_sign) -> ElemTable:
    """256 entries (codes as stored in a byte); a 7-bit format's codes with bit 7 set read as |scale|
    when ignore_sign, else they are marked NaN here and rejected earlier by the unit's checks."""
    vals = []
    for c in range(256):
        cc = c & sfmt.nan_code if ignore_sign else c
        vals.append(sfmt.exact_value(cc) if cc <= sfmt.nan_code else "nan")
    emin = (1 - sfmt.bias) if sfmt.subnormals else -sfmt.bias
    return _table(vals, sfmt.man_bits, emin, emin - sfmt.man_bits)


@dataclass(frozen=True)
class BlockDotUnit(Unit):
    """A block-scaled fused dot-product datapath (see module doc)."""

    name: str = "block_dot"
    a_fmt: object = "fp8_e4m3fn"          # element formats
    b_fmt: object = "fp8_e4m3fn"
    a_scale_fmt: object = "e8m0"          # block-scale formats (numsim.block.ScaleFormat names)
    b_scale_fmt: object = "e8m0"
    block_size: int = 32                  # elements per scale along K
    k_step: int | None = 32               # products per fused step (one instruction); None: all of K at once
    group_size: int = 1                   # products summed exactly before the alignment
    term_exponent: str = "product"        # 'product': ea+eb+esa+esb per product; 'scales': esa+esb per group
    frac_bits: int | None = 25            # terms kept to multiples of 2^(xmax - frac_bits); None: exact
    term_rounding: str = "toward_zero"    # how a term loses the bits below 2^(xmax - frac_bits)
    zero_exponent: int | None = -126      # a zero factor's exponent; None: zero terms take no part
    acc_fmt: object = "fp32"              # the accumulator / output format (c and the result)
    acc_rounding: str = "toward_zero"     # the sum into acc_fmt
    acc_overflow: str = "to_inf"          # past acc_fmt's range: 'to_inf' or 'saturate'
    scale_sign: str = "error"             # a UE4M3/UE5M3 scale code with bit 7 set: 'error' or 'ignore'
    zero_sign: str = "positive"           # a non-zero sum that rounds to zero: +0 ('positive') or signed
    seed_source: str = "issue 17: OCP MX v1.0, MMA-Sim (arXiv 2511.10909)"
    doc: str = ""

    def __post_init__(self):
        from ..block.scale import get_scale_format

        for arg in ("a_fmt", "b_fmt"):
            v = getattr(self, arg)
            try:
                f = get_format(v)
            except Exception:
                raise bad(arg, f"one of {ELEM_FORMATS}", repr(v)) from None
            if f.name not in ELEM_FORMATS:
                raise bad(arg, f"one of {ELEM_FORMATS}", repr(f.name))
            object.__setattr__(self, arg, f)
        for arg in ("a_scale_fmt", "b_scale_fmt"):
            try:
                object.__setattr__(self, arg, get_scale_format(getattr(self, arg)))
            except NumsimError as e:
                raise bad(arg, "one of ['e8m0', 'ue4m3', 'ue5m3']", repr(getattr(self, arg))) from e
        try:
            acc = get_format(self.acc_fmt)
        except Exception:
            raise bad("acc_fmt", f"one of {ACC_FORMATS}", repr(self.acc_fmt)) from None
        if acc.name not in ACC_FORMATS:
            raise bad("acc_fmt", f"one of {ACC_FORMATS}", repr(acc.name))
        object.__setattr__(self, "acc_fmt", acc)
        for arg, lo, hi in (("block_size", 1, 4096), ("group_size", 1, 4096)):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise bad(arg, f"an int in {lo}..{hi}", repr(v))
        if self.k_step is not None and (isinstance(self.k_step, bool) or not isinstance(self.k_step, (int, np.integer))
                                        or not 1 <= self.k_step <= 4096):
            raise bad("k_step", "an int in 1..4096 or None", repr(self.k_step))
        if self.block_size % self.group_size:
            raise bad("group_size", f"a divisor of block_size={self.block_size} (a group has one scale pair)",
                      self.group_size)
        if self.k_step is not None and self.k_step % self.group_size:
            raise bad("k_step", f"a multiple of group_size={self.group_size}", self.k_step)
        if self.term_exponent not in TERM_EXPONENTS:
            raise bad("term_exponent", f"one of {TERM_EXPONENTS}", repr(self.term_exponent))
        if self.term_exponent == "product" and self.group_size != 1:
            raise bad("term_exponent", "'scales' when group_size > 1 (a group sum has no element exponent)",
                      repr(self.term_exponent))
        if self.frac_bits is not None and (isinstance(self.frac_bits, bool) or not isinstance(
                self.frac_bits, (int, np.integer)) or not 1 <= self.frac_bits <= 200):
            raise bad("frac_bits", "an int in 1..200 or None (exact)", repr(self.frac_bits))
        if self.term_rounding not in TERM_ROUNDINGS:
            raise bad("term_rounding", f"one of {TERM_ROUNDINGS}", repr(self.term_rounding))
        if self.zero_exponent is not None and (isinstance(self.zero_exponent, bool) or not isinstance(
                self.zero_exponent, (int, np.integer)) or not -1000 <= self.zero_exponent <= 1000):
            raise bad("zero_exponent", "an int in -1000..1000 or None", repr(self.zero_exponent))
        if self.acc_rounding not in ACC_ROUNDINGS:
            raise bad("acc_rounding", f"one of {ACC_ROUNDINGS}", repr(self.acc_rounding))
        if self.acc_overflow not in ("to_inf", "saturate"):
            raise bad("acc_overflow", "'to_inf' or 'saturate'", repr(self.acc_overflow))
        if self.zero_sign not in ("positive", "signed"):
            raise bad("zero_sign", "'positive' or 'signed'", repr(self.zero_sign))
        if self.scale_sign not in ("error", "ignore"):
            raise bad("scale_sign", "'error' or 'ignore'", repr(self.scale_sign))

    # ---- tables -----------------------------------------------------------------------------------
    @cached_property
    def tables(self):
        """(a, b, scale a, scale b) ElemTables."""
        ig = self.scale_sign == "ignore"
        return (elem_table(self.a_fmt), elem_table(self.b_fmt), scale_table(self.a_scale_fmt, ig),
                scale_table(self.b_scale_fmt, ig))

    @property
    def nan_code(self) -> int:
        """The canonical NaN output: all ones but the sign (0x7FFFFFFF in fp32)."""
        return (1 << (self.acc_fmt.bits - 1)) - 1

    def describe(self) -> str:
        fb = "exact" if self.frac_bits is None else f"{self.frac_bits} fraction bits ({self.term_rounding})"
        step = "all K" if self.k_step is None else f"{self.k_step} products"
        grp = "each product a term" if self.group_size == 1 else f"groups of {self.group_size} summed exactly"
        return (f"{self.name}: {self.a_fmt.name} x {self.b_fmt.name}, scales {self.a_scale_fmt} x "
                f"{self.b_scale_fmt} per {self.block_size}; steps of {step}, {grp}, term exponent "
                f"{self.term_exponent}, aligned with {fb}, zero exponent {self.zero_exponent}; sum "
                f"{self.acc_rounding} into {self.acc_fmt.name}")

    # ---- the problem ------------------------------------------------------------------------------
    kernels = ("block_dot.numpy", "block_dot.mac_level")

    def _one_scale(self, sfmt) -> int:
        return int(sfmt.encode(np.array([1.0]))[0])

    def scale_codes(self, s, arg, shape, sfmt):
        if s is None:
            return np.full(shape, self._one_scale(sfmt), np.uint8)
        raw = np.asarray(s)
        if raw.dtype.kind not in "ui":
            raise bad(arg, f"{sfmt} scale codes (unsigned integers)", f"dtype {raw.dtype}")
        if raw.shape != tuple(shape):
            raise bad(arg, f"shape {tuple(shape)} (one {sfmt} code per block of {self.block_size} along K)",
                      f"shape {raw.shape}")
        limit = 255 if (sfmt.bits == 8 or self.scale_sign == "ignore") else sfmt.nan_code
        if raw.size and (raw.min() < 0 or raw.max() > limit):
            why = "" if limit == 255 else " (a code with the sign bit set needs scale_sign='ignore')"
            raise bad(arg, f"{sfmt} codes in 0..{limit}{why}", f"a code {int(raw.max() if raw.max() > limit else raw.min())}")
        return np.ascontiguousarray(raw.astype(np.uint8))

    def problem(self, a_codes, b_codes, c=None, nthreads=None, ctx=None):
        from ..kernels.problem import Problem

        ctx = dict(ctx or {})
        for k in ctx:
            if k not in ("block_scale_a", "block_scale_b"):
                raise bad(k, f"no such input: {self.name} takes block_scale_a and block_scale_b", type(ctx[k]).__name__)
        a = check_codes(np.asarray(a_codes), self.a_fmt, "a_codes")
        b = check_codes(np.asarray(b_codes), self.b_fmt, "b_codes")
        if a.ndim != 2:
            raise bad("a_codes", "a 2-D (M, K) array of codes", f"shape {a.shape}")
        if b.ndim != 2:
            raise bad("b_codes", "a 2-D (K, N) array of codes", f"shape {b.shape}")
        M, K = a.shape
        if b.shape[0] != K:
            raise bad("b_codes", f"{K} rows (a_codes has K={K} columns)", f"shape {b.shape}")
        N = b.shape[1]
        nb = -(-K // self.block_size)
        sa = self.scale_codes(ctx.get("block_scale_a"), "block_scale_a", (M, nb), self.a_scale_fmt)
        sb = self.scale_codes(ctx.get("block_scale_b"), "block_scale_b", (nb, N), self.b_scale_fmt)
        cc = None
        if c is not None:
            cc = acc_codes(c, self.acc_fmt, "c")
            if cc.shape != (M, N):
                raise bad("c", f"shape {(M, N)}", f"shape {cc.shape}")
            cc = np.ascontiguousarray(cc)
        return Problem(a=np.ascontiguousarray(a), b=np.ascontiguousarray(b), c=cc,
                       ctx={"block_scale_a": sa, "block_scale_b": sb}, nthreads=threads(nthreads))

    def steps(self, K):
        """[k0, k1) of every fused step."""
        if K == 0:
            return []
        w = K if self.k_step is None else self.k_step
        return [(k0, min(k0 + w, K)) for k0 in range(0, K, w)]

    # ---- the MAC level: Python integers, one output at a time -----------------------------------------
    def mac_level_gemm(self, p) -> GemmResult:
        M, K, N = p.shape
        out = np.zeros((M, N), self.acc_fmt.dtype)
        c = p.c
        sa, sb = p.ctx["block_scale_a"], p.ctx["block_scale_b"]
        for i in range(M):
            for j in range(N):
                code = 0 if c is None else int(c[i, j])
                for k0, k1 in self.steps(K):
                    code = self.fused_step(p.a[i, k0:k1], p.b[k0:k1, j], sa[i], sb[:, j], k0, code)
                out[i, j] = code
        return self._result(out)

    def _result(self, codes):
        from ..codec import decode

        res = GemmResult(codes=codes, values=decode(codes, self.acc_fmt).astype(np.float64))
        return count_nonfinite(res, self.acc_fmt)

    def fused_step(self, a, b, sa_row, sb_col, k0, c_code) -> int:
        """One fused step on Python integers: products k0 .. k0+len(a)-1 (their scales at index
        k // block_size of sa_row / sb_col) and the accumulator code c_code -> the new code."""
        ta, tb, tsa, tsb = self.tables
        acc = self.acc_fmt
        cv = _acc_fields(int(c_code), acc)
        # specials: the IEEE product of the four factors, then the sum
        nan = cv[0] == "nan"
        infs = set()
        if cv[0] == "inf":
            infs.add(cv[1])
        ks = range(len(a))
        for t in ks:
            k = k0 + t
            facs = ((ta, int(a[t])), (tb, int(b[t])), (tsa, int(sa_row[k // self.block_size])),
                    (tsb, int(sb_col[k // self.block_size])))
            if any(tab.nan[c] for tab, c in facs):
                nan = True
                continue
            if any(tab.inf[c] for tab, c in facs):
                if any(tab.zero[c] for tab, c in facs):
                    nan = True
                else:
                    infs.add(sum(int(tab.neg[c]) for tab, c in facs) & 1)
        if nan or len(infs) == 2:
            return self.nan_code
        if infs:
            return _inf_code(infs.pop(), acc)
        # terms (P signed int, lsb exponent, alignment exponent or None = no part in the alignment)
        ze = self.zero_exponent
        terms = []
        _, cneg, csig, cx = cv
        if csig == 0:
            terms.append((0, 0, ze))
        else:
            terms.append((-csig if cneg else csig, cx - acc.man_bits, cx))

        def xe(tab, c):
            return ze if tab.zero[c] else int(tab.x[c])

        if self.term_exponent == "product":
            for t in ks:
                k = k0 + t
                ca, cb = int(a[t]), int(b[t])
                csa, csb = int(sa_row[k // self.block_size]), int(sb_col[k // self.block_size])
                P = int(ta.sig[ca]) * int(tb.sig[cb]) * int(tsa.sig[csa]) * int(tsb.sig[csb])
                if ta.neg[ca] ^ tb.neg[cb]:
                    P = -P
                xs = [xe(ta, ca), xe(tb, cb), xe(tsa, csa), xe(tsb, csb)]
                if P == 0:
                    terms.append((0, 0, None if ze is None else sum(xs)))
                    continue
                lsb = sum(xs) - ta.man - tb.man - tsa.man - tsb.man
                terms.append((P, lsb, sum(xs)))
        else:
            for g0 in range(0, len(a), self.group_size):
                G = 0
                for t in range(g0, min(g0 + self.group_size, len(a))):
                    ca, cb = int(a[t]), int(b[t])
                    v = int(ta.m[ca]) * int(tb.m[cb])
                    G += -v if ta.neg[ca] ^ tb.neg[cb] else v
                k = k0 + g0
                csa, csb = int(sa_row[k // self.block_size]), int(sb_col[k // self.block_size])
                P = G * int(tsa.sig[csa]) * int(tsb.sig[csb])
                if P == 0:
                    terms.append((0, 0, None if ze is None else xe(tsa, csa) + xe(tsb, csb)))
                    continue
                lsb = ta.quantum + tb.quantum + int(tsa.x[csa]) - tsa.man + int(tsb.x[csb]) - tsb.man
                terms.append((P, lsb, int(tsa.x[csa]) + int(tsb.x[csb])))
        live = [x for _, _, x in terms if x is not None]
        if not live or all(P == 0 for P, _, _ in terms):
            return 0                                   # an exact zero sum is +0
        if self.frac_bits is None:
            base = min(lsb for P, lsb, _ in terms if P)
            total = sum(P << (lsb - base) for P, lsb, _ in terms if P)
        else:
            xmax = max(live)
            base = xmax - self.frac_bits
            total = 0
            for P, lsb, _ in terms:
                if P:
                    total += _shift_round(P, lsb - base, self.term_rounding)
        if total == 0:
            return 0
        code = _round_into(total < 0, abs(total), base, acc, self.acc_rounding, self.acc_overflow)
        return 0 if self.zero_sign == "positive" and code == 1 << (acc.bits - 1) else code

    # ---- the unit protocol ------------------------------------------------------------------------
    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a = np.asarray(a_codes).reshape(1, -1)
        b = np.asarray(b_codes).reshape(-1, 1)
        K = a.shape[1]
        nb = -(-K // self.block_size)
        ctx = dict(ctx)
        if "block_scale_a" in ctx:
            ctx["block_scale_a"] = np.asarray(ctx["block_scale_a"]).reshape(1, nb) \
                if np.asarray(ctx["block_scale_a"]).size == nb else ctx["block_scale_a"]
        if "block_scale_b" in ctx:
            ctx["block_scale_b"] = np.asarray(ctx["block_scale_b"]).reshape(nb, 1) \
                if np.asarray(ctx["block_scale_b"]).size == nb else ctx["block_scale_b"]
        cc = None if c is None else np.asarray(c).reshape(1, 1)
        p = self.problem(a, b, c=cc, nthreads=1, ctx=ctx)
        r = self.gemm_codes(p.a, p.b, c=p.c, nthreads=1, **p.ctx)
        tr = None
        if trace:
            tr = []
            code = 0 if p.c is None else int(p.c[0, 0])
            for k0, k1 in self.steps(K):
                code = self.fused_step(p.a[0, k0:k1], p.b[k0:k1, 0], p.ctx["block_scale_a"][0],
                                       p.ctx["block_scale_b"][:, 0], k0, code)
                tr.append(code)
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr,
                         info={"kernel": r.info.get("kernel")})

    def step(self, state, a, b, **ctx):
        """One fused step: state (accumulator code, None = +0) and up to k_step products (their
        scales: block_scale_a / block_scale_b, one per block of these products) -> the new code."""
        a = np.asarray(a).ravel()
        b = np.asarray(b).ravel()
        if len(a) != len(b) or (self.k_step is not None and len(a) > self.k_step):
            raise bad("a, b", f"equal lengths <= k_step={self.k_step}", (len(a), len(b)))
        if state is not None and (isinstance(state, (bool, np.bool_)) or not isinstance(state, (int, np.integer))
                                  or not 0 <= int(state) < 2 ** self.acc_fmt.bits):
            raise bad("state", f"a {self.acc_fmt.name} accumulator code in [0, 2^{self.acc_fmt.bits}) or None",
                      repr(state))
        c = None if state is None else np.array([[int(state)]], dtype=self.acc_fmt.dtype)
        return self.dot(a, b, c=c, **ctx).code


# ---- integer helpers shared by the MAC level --------------------------------------------------------
def _acc_fields(code, fmt):
    """('nan'|'inf'|'fin', neg, sig, x) of an accumulator code: value = (-1)^neg sig 2^(x - man)."""
    mb, eb = fmt.man_bits, fmt.exp_bits
    neg = (code >> (fmt.bits - 1)) & 1
    e = (code >> mb) & ((1 << eb) - 1)
    man = code & ((1 << mb) - 1)
    if e == (1 << eb) - 1:
        return ("nan", neg, 0, 0) if man else ("inf", neg, 0, 0)
    if e == 0:
        return ("fin", neg, man, 1 - fmt.bias)
    return ("fin", neg, man | (1 << mb), e - fmt.bias)


def _inf_code(neg, fmt):
    return (int(neg) << (fmt.bits - 1)) | (((1 << fmt.exp_bits) - 1) << fmt.man_bits)


def _shift_round(P, sh, rounding):
    """P * 2^sh rounded to an integer."""
    if sh >= 0:
        return P << sh
    s = -sh
    if rounding == "toward_neg":
        return P >> s
    mag = abs(P)
    q = mag >> s
    if rounding == "nearest_even":
        rem = mag - (q << s)
        half = 1 << (s - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
    return -q if P < 0 else q


def _round_into(neg, mag, base, fmt, rounding, overflow):
    """The code of (-1)^neg * mag * 2^base (mag > 0) rounded into fmt."""
    mb = fmt.man_bits
    emin = 1 - fmt.bias
    emax = (1 << fmt.exp_bits) - 2 - fmt.bias
    e = base + mag.bit_length() - 1
    q = max(e - mb, emin - mb)
    sh = q - base
    if sh <= 0:
        mant = mag << -sh
    else:
        mant = mag >> sh
        if rounding == "nearest_even":
            rem = mag - (mant << sh)
            half = 1 << (sh - 1)
            if rem > half or (rem == half and mant & 1):
                mant += 1
    if mant == 1 << (mb + 1):
        mant >>= 1
        q += 1
    sign = int(neg) << (fmt.bits - 1)
    if mant == 0:
        return sign
    if q + mant.bit_length() - 1 > emax:
        if overflow == "to_inf":
            return _inf_code(neg, fmt)
        return sign | ((emax + fmt.bias) << mb) | ((1 << mb) - 1)
    if mant < (1 << mb):
        return sign | mant
    return sign | ((q + mb + fmt.bias) << mb) | (mant - (1 << mb))
