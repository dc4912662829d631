"""The x86 bf16 pair dot product (AVX512-BF16 vdpbf16ps) as a unit: PairFmaUnit.

Per fp32 lane and per k pair (k, k+1), as recorded on this project's Intel Xeon (100% of fresh
adversarial tiles, tests/test_cpu_recordings.py; docs/hardware.md): bf16 inputs below 2^-126 are read
as zeros (DAZ), then

    acc = FTZ(RNE_fp32(acc + a[k+1] * b[k+1]))      # the odd element first
    acc = FTZ(RNE_fp32(acc + a[k]   * b[k]))

each product exact inside its add (one rounding per add, like an FMA), FTZ flushing a result below
2^-126 to a zero of its sign. The even-first order and the fused pair (one rounding of both products)
each miss 2-15% of the recorded lanes; rounding the product to fp32 first misses 37%.

The gemm runs in numpy float64 with an exact correction (see _add_rne_fp32)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codec import decode, encode
from ..errors import bad
from ._c import initial_acc, operands, set_formats
from .base import DotResult, GemmResult, Unit, acc_code, count_nonfinite, dot_as_gemm, threads

_F32_NAN = np.uint32(0x7FC00000)


@dataclass(frozen=True)
class PairFmaUnit(Unit):
    """bf16 pairs into an fp32 lane: two chained single-rounding adds per pair (see module doc)."""

    name: str = "pair_fma"
    a_fmt: object = "bf16"
    b_fmt: object = "bf16"
    acc_fmt: object = "fp32"
    pair_order: str = "odd_first"          # which element of a pair is added first
    daz: bool = True                       # bf16 inputs below 2^-126 read as zero
    ftz: bool = True                       # fp32 results below 2^-126 flushed to a signed zero
    seed_source: str = "issue 19: recorded on this project's CPU"
    doc: str = ""

    def __post_init__(self):
        set_formats(self, ("bf16",), "fp32")
        if self.pair_order not in ("odd_first", "even_first"):
            raise bad("pair_order", "'odd_first' or 'even_first'", repr(self.pair_order))
        for arg in ("daz", "ftz"):
            if not isinstance(getattr(self, arg), bool):
                raise bad(arg, "a bool", getattr(self, arg))

    kernels = ("pair_fma.mac_level",)

    def describe(self) -> str:
        return (f"{self.name}: bf16 pairs into fp32, {self.pair_order.replace('_', ' ')}, one RNE rounding per "
                f"add{', DAZ' if self.daz else ''}{', FTZ' if self.ftz else ''}")

    def step(self, state, a, b, **ctx):
        """One pair (or a single product): state (fp32 code, None = +0) -> fp32 code."""
        a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
        if a.size != b.size or not 1 <= a.size <= 2:
            raise bad("a, b", "one pair (equal lengths 1 or 2)", (a.size, b.size))
        c = np.array([[0 if state is None else acc_code(state, self.acc_fmt, "state")]], np.uint32)
        return int(self.gemm_codes(a.reshape(1, -1), b.reshape(-1, 1), c=c, nthreads=1).codes[0, 0])

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a, b, cc, r = dot_as_gemm(self, a_codes, b_codes, c, ctx)
        tr = None
        if trace:
            tr, st = [], None if cc is None else int(cc[0, 0])
            for s in range(0, a.shape[1], 2):
                st = self.step(st, a[0, s:s + 2], b[s:s + 2, 0])
                tr.append(st)
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr,
                         overflow_count=r.overflow_count, info=r.info)

    def problem(self, a_codes, b_codes, c=None, nthreads=None, ctx=None):
        from ..kernels.problem import Problem

        for k in (ctx or {}):
            raise bad(k, f"no such input of {self.name}", ctx[k])
        a, b = operands(self, a_codes, b_codes)
        return Problem(a=a, b=b, c=initial_acc(self, c, a.shape[0], b.shape[1]), ctx={}, nthreads=threads(nthreads))

    def mac_level_gemm(self, p) -> GemmResult:
        M, K = p.a.shape
        N = p.b.shape[1]
        with np.errstate(invalid="ignore"):          # NaN bit patterns widen to NaN
            av = _bf16(p.a, self.daz)
            bv = _bf16(p.b, self.daz)
            acc = np.zeros((M, N)) if p.c is None else p.c.view(np.float32).astype(np.float64)
        events = 0
        first, second = (1, 0) if self.pair_order == "odd_first" else (0, 1)
        with np.errstate(all="ignore"):
            for k0 in range(0, K, 2):
                for j in (first, second):
                    k = k0 + j
                    if k >= K:                  # an odd K: the last pair's missing element is a zero product
                        continue
                    prod = av[:, k, None] * bv[None, k, :]     # exact in float64 (16 bits, |e| < 270)
                    new = _add_rne_fp32(acc, prod)
                    events += int(np.count_nonzero(np.isinf(new) & np.isfinite(acc) & np.isfinite(prod)))
                    acc = np.where(np.abs(new) < 2.0 ** -126, np.copysign(0.0, new), new) if self.ftz else new
        out = acc.astype(np.float32).view(np.uint32)
        out = np.where(np.isnan(acc), _F32_NAN, out).astype(np.uint32)
        res = GemmResult(codes=out, values=out.view(np.float32).astype(np.float64), overflow_count=events)
        return count_nonfinite(res, "fp32")


def _bf16(codes, daz):
    v = (codes.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if daz:
        v = np.where(np.abs(v) < 2.0 ** -126, np.copysign(0.0, v), v)
    return v


def _add_rne_fp32(c, p):
    """RNE_fp32(c + p) of an fp32 value c and an exact product p (float64), in float64 arithmetic:
    TwoSum gives s + e = c + p exactly (no overflow: |c| < 2^128, |p| < 2^256); when e != 0, s is
    moved one float64 ulp toward e, which lands on the same side of every fp32 rounding boundary as the
    exact sum (boundaries are 2^29 float64 ulps apart and s is within half an ulp of the sum), so the
    one rounding of it into fp32 (codec.encode: RNE, subnormals, overflow to inf) rounds as the exact
    sum would. Infinities and NaN follow float arithmetic."""
    s = c + p
    bb = s - c
    e = (c - (s - bb)) + (p - bb)
    e = np.where(np.isfinite(s), e, 0.0)
    s = np.where(e != 0, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    finite = np.isfinite(s)
    rounded = decode(encode(np.where(finite, s, 0.0), "fp32"), "fp32")     # numsim's one RNE rounding
    return np.where(finite, rounded, s)
