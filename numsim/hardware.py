"""Real tensor-core datapaths as units: a general fused n-term dot-product unit, an integer MMA unit,
and the NVIDIA H100 presets established from recorded hardware outputs (issue 11, docs/hardware.md).

`FusedDotUnit` describes, as parameters: the fused adder (k_step products + the accumulator, aligned to
the largest exponent under a product-exponent rule, every term truncated to `kept_bits` below it), the
rounding of the fused sum into an accumulator format narrower than its fp32 storage, zero-sign and
overflow rules, a k permutation inside each block (k grouping), periodic promotion of that
accumulator into an fp32 accumulator by a round-to-nearest-even add, per-tensor scales applied once in
the epilogue, and where the initial accumulator c enters. `IntMMAUnit` is an exact integer MMA with
an int32 accumulator that wraps or saturates once per instruction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import bad
from .formats import FloatFormat, get_format
from .units import DotResult, GemmResult, Unit, register_unit

__all__ = ["FusedDotUnit", "IntMMAUnit", "mod_split_permutation", "H100_PRESETS"]

_FLOAT_OPERANDS = ("fp16", "bf16", "fp8_e4m3fn", "fp8_e5m2")
_INT_OPERANDS = ("int8", "int4", "uint8", "uint4")


def _set_formats(unit, operands, accumulator):
    """Names or descriptors in; format descriptors stored (like the seed units), checked by name."""
    for arg in ("a_fmt", "b_fmt"):
        v = getattr(unit, arg)
        try:
            f = get_format(v)
        except Exception:
            raise bad(arg, f"one of {operands}", repr(v)) from None
        if f.name not in operands:
            raise bad(arg, f"one of {operands}", repr(getattr(f, "name", v)))
        object.__setattr__(unit, arg, f)
    try:
        acc = get_format(unit.acc_fmt)
    except Exception:
        raise bad("acc_fmt", repr(accumulator), repr(unit.acc_fmt)) from None
    if acc.name != accumulator:
        raise bad("acc_fmt", f"{accumulator!r} (the accumulator storage)", repr(acc.name))
    object.__setattr__(unit, "acc_fmt", acc)


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
    term_truncation: str = "toward_zero"   # how terms lose the bits below 2^(emax - kept_bits)
    acc_man_bits: int = 23                 # fraction bits the accumulator keeps (13: the 1-8-13 FP8 one)
    sum_rounding: str = "toward_zero"      # rounding of the fused sum into the accumulator
    zero_sign: str = "positive"            # a zero sum is +0 (signed zeros are not kept)
    overflow: str = "to_inf"               # past the accumulator's range: 'to_inf' or 'saturate'
    k_permutation: tuple | None = None     # processing order inside each block of len(k_permutation)
    promotion_interval: int | None = None  # every this many k: inner accumulator RNE-added into fp32
    c_add: str = "accumulator"             # c starts the outermost accumulator, or 'epilogue' RNE add
    scale_a: float = 1.0                   # per-tensor scales: the output is multiplied once by
    scale_b: float = 1.0                   # fp32(scale_a * scale_b), rounded to nearest even
    seed_source: str = "issue 11: recorded H100 outputs"
    doc: str = ""

    def __post_init__(self):
        _set_formats(self, _FLOAT_OPERANDS, "fp32")
        if not (isinstance(self.k_step, int) and 1 <= self.k_step <= 256):
            raise bad("k_step", "an int in 1..256", self.k_step)
        if not (isinstance(self.kept_bits, int) and 8 <= self.kept_bits <= 32):
            raise bad("kept_bits", "an int in 8..32", self.kept_bits)
        if self.product_exponent not in ("input_sum", "normalized"):
            raise bad("product_exponent", "'input_sum' or 'normalized'", repr(self.product_exponent))
        if self.term_truncation != "toward_zero":
            raise bad("term_truncation", "'toward_zero'", repr(self.term_truncation))
        if not (isinstance(self.acc_man_bits, int) and 1 <= self.acc_man_bits <= 23):
            raise bad("acc_man_bits", "an int in 1..23", self.acc_man_bits)
        if self.sum_rounding not in ("toward_zero", "nearest_even"):
            raise bad("sum_rounding", "'toward_zero' or 'nearest_even'", repr(self.sum_rounding))
        if self.zero_sign != "positive":
            raise bad("zero_sign", "'positive'", repr(self.zero_sign))
        if self.overflow not in ("to_inf", "saturate"):
            raise bad("overflow", "'to_inf' or 'saturate'", repr(self.overflow))
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
                f"sum {self.sum_rounding} into 1-8-{self.acc_man_bits}, {perm}, {prom}, c: {self.c_add}")

    # ---- the unit protocol -------------------------------------------------------------------

    def step(self, state, a, b, **ctx):
        """One fused step: state (fp32 code of the inner accumulator, None = +0) + the sum of up to
        k_step products (codes a, b; zero-padded) -> the new fp32 code (C kernel ns_fused_step)."""
        from ._hw import fused_step

        if ctx:
            raise bad(sorted(ctx)[0], f"no such input of {self.name}.step", ctx[sorted(ctx)[0]])
        return fused_step(self, state, a, b)

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a = np.asarray(a_codes).reshape(1, -1)
        b = np.asarray(b_codes).reshape(-1, 1)
        cc = None if c is None else np.asarray(c).reshape(1, 1)
        r = self.gemm_codes(a, b, c=cc, nthreads=1, **ctx)
        tr = None
        if trace:     # the inner accumulator after every fused step (promotion restarts it from +0)
            from ._hw import fused_trace
            tr = fused_trace(self, a.ravel(), b.ravel(), None if cc is None else int(self._c_codes(cc)[0, 0]))
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr)

    def _c_codes(self, c):
        c = np.asarray(c)
        if c.dtype == np.uint32:
            return c
        if c.dtype.kind in "iu":
            # integer codes of the fp32 accumulator (as every unit's dot accepts), not values
            if c.size and (c.min() < 0 or c.max() >= 2**32):
                raise bad("c", "fp32 accumulator codes in [0, 2^32) or float values", "integers out of range")
            return c.astype(np.uint32)
        if c.dtype.kind == "f":
            c32 = c.astype(np.float32)
            with np.errstate(invalid="ignore"):
                same = (c32.astype(np.float64) == c.astype(np.float64)) | (np.isnan(c32) & np.isnan(c))
            if not np.all(same):
                i = tuple(int(v) for v in np.argwhere(~same)[0])
                raise bad("c", "values exactly representable in the fp32 accumulator", f"{c[i]!r} at index {i}")
            return c32.view(np.uint32)
        raise bad("c", "fp32 accumulator codes (uint32) or float values", c.dtype)

    def gemm_codes(self, a_codes, b_codes, c=None, nthreads=None, **ctx) -> GemmResult:
        from ._hw import fused_gemm

        unknown = set(ctx) - {"scale_a", "scale_b"}
        if unknown:
            raise bad(sorted(unknown)[0], f"no such input: {self.name} takes per-tensor scale_a / scale_b only "
                      "(no per-k alignment or sample shifts)", ctx[sorted(unknown)[0]])
        codes = fused_gemm(self, a_codes, b_codes, c if c is None else self._c_codes(c), nthreads,
                           scale_a=ctx.get("scale_a"), scale_b=ctx.get("scale_b"))
        return GemmResult(codes=codes, values=codes.view(np.float32).astype(np.float64))


@dataclass(frozen=True)
class IntMMAUnit(Unit):
    """Integer MMA: exact products and sums per k_step instruction into an int32 accumulator that
    wraps modulo 2^32 ('wrap') or is saturated to the INT32 range once per instruction ('saturate',
    PTX .satfinite)."""

    name: str = "imma"
    a_fmt: object = "int8"
    b_fmt: object = "int8"
    acc_fmt: object = "int32"
    k_step: int = 32
    overflow: str = "wrap"
    seed_source: str = "issue 11: recorded H100 outputs"
    doc: str = ""

    def __post_init__(self):
        _set_formats(self, _INT_OPERANDS, "int32")
        if self.overflow not in ("wrap", "saturate"):
            raise bad("overflow", "'wrap' or 'saturate' (integer units have no inf or NaN)", repr(self.overflow))
        if not (isinstance(self.k_step, int) and 1 <= self.k_step <= 4096):
            raise bad("k_step", "an int in 1..4096", self.k_step)

    def describe(self) -> str:
        return (f"{self.name}: {self.a_fmt} x {self.b_fmt}, exact sums of {self.k_step} products, "
                f"int32 accumulator ({self.overflow} once per instruction)")

    def step(self, state, a, b, **ctx):
        """One instruction: state (int32 accumulator code, None = 0) + up to k_step exact products."""
        a = np.asarray(a).ravel()
        b = np.asarray(b).ravel()
        if len(a) != len(b) or len(a) > self.k_step:
            raise bad("a, b", f"equal lengths <= k_step={self.k_step}", (len(a), len(b)))
        if state is not None and (not isinstance(state, (int, np.integer)) or not 0 <= int(state) < 2**32):
            raise bad("state", "an int32 accumulator code in [0, 2^32) or None", repr(state))
        c = np.array([[0 if state is None else int(state)]], np.uint32)
        return int(self.gemm_codes(a.reshape(1, -1), b.reshape(-1, 1), c=c, nthreads=1, **ctx).codes[0, 0])

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a = np.asarray(a_codes).reshape(1, -1)
        b = np.asarray(b_codes).reshape(-1, 1)
        cc = None if c is None else self._c_codes(np.asarray(c).reshape(1, 1))
        r = self.gemm_codes(a, b, c=cc, nthreads=1)
        tr = None
        if trace:     # the int32 accumulator after every instruction
            tr = []
            st = None if cc is None else int(cc[0, 0])
            for s in range(0, a.shape[1], self.k_step):
                st = self.step(st, a[0, s:s + self.k_step], b[s:s + self.k_step, 0])
                tr.append(st)
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr)

    def _c_codes(self, c):
        c = np.asarray(c)
        if c.dtype == np.uint32:
            return c
        if c.dtype.kind in "iu":
            if c.size and (c.min() < -2**31 or c.max() > 2**31 - 1):
                raise bad("c", "int32 accumulator values", "values outside the INT32 range")
            return c.astype(np.int64).astype(np.int32).view(np.uint32)
        raise bad("c", "int32 accumulator codes (uint32) or integer values (floats, inf and NaN have no "
                  "meaning in an integer accumulator)", c.dtype)

    def gemm_codes(self, a_codes, b_codes, c=None, nthreads=None, **ctx) -> GemmResult:
        from ._hw import imma_gemm

        for k in ctx:
            raise bad(k, f"no such input: {self.name} takes no scales, shifts, inf or NaN handling", ctx[k])
        codes = imma_gemm(self, a_codes, b_codes, None if c is None else self._c_codes(c), nthreads)
        return GemmResult(codes=codes, values=codes.view(np.int32).astype(np.float64))


# ---- the H100 presets ------------------------------------------------------------------------

_E4M3_MMA_PERM = mod_split_permutation(32, 4, ((0, 1), (2, 3)))

H100_PRESETS = {
    "h100_hmma_f16": (FusedDotUnit, dict(
        a_fmt="fp16", b_fmt="fp16", k_step=16, kept_bits=25,
        doc="H100 HMMA.16816.F32 (WMMA m16n16k16 f16): 17-term fused sum, terms truncated to "
            "2^(emax-25), sum rounded toward zero into fp32; one step per 16 k")),
    "h100_hmma_bf16": (FusedDotUnit, dict(
        a_fmt="bf16", b_fmt="bf16", k_step=16, kept_bits=25,
        doc="H100 HMMA.16816.F32.BF16: as h100_hmma_f16 with bf16 inputs")),
    "h100_cublas_f16": (FusedDotUnit, dict(
        a_fmt="fp16", b_fmt="fp16", k_step=16, kept_bits=25,
        doc="cuBLAS torch.mm(f16, out_dtype=fp32) on H100 (nvjet_sm90_hss): chained HMMA steps in k order "
            "(the same datapath as h100_hmma_f16)")),
    "h100_cublas_bf16": (FusedDotUnit, dict(
        a_fmt="bf16", b_fmt="bf16", k_step=16, kept_bits=25,
        doc="cuBLAS torch.mm(bf16, out_dtype=fp32) on H100: chained HMMA steps in k order "
            "(the same datapath as h100_hmma_bf16)")),
    "h100_mma_e4m3": (FusedDotUnit, dict(
        a_fmt="fp8_e4m3fn", b_fmt="fp8_e4m3fn", k_step=16, kept_bits=25, k_permutation=_E4M3_MMA_PERM,
        promotion_interval=32,
        doc="mma.sync m16n8k32 e4m3 on sm_90: inputs to f16 (exact), two HMMA steps from zero (k%4 in "
            "{0,1}, then {2,3}), then c + that by an fp32 RNE add")),
    "h100_cublas_e4m3": (FusedDotUnit, dict(
        a_fmt="fp8_e4m3fn", b_fmt="fp8_e4m3fn", k_step=32, kept_bits=13, acc_man_bits=13,
        promotion_interval=128, c_add="epilogue",
        doc="cuBLAS torch._scaled_mm(e4m3) on H100 (nvjet_sm90_qqsss): wgmma k=32 steps into a 1-8-13 "
            "accumulator (33-term sum, terms truncated to 2^(emax-13), sum truncated), promoted into fp32 "
            "by an RNE add every promotion_interval k (None: use_fast_accum), scales fp32(sa*sb) once")),
    "h100_imma_s8": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=32, overflow="wrap",
                                      doc="mma.sync m16n8k32 s8 -> s32: exact, wraps modulo 2^32")),
    "h100_imma_s8_sat": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=32, overflow="saturate",
                                          doc="mma.sync m16n8k32 s8 .satfinite: exact sum saturated once")),
    "h100_imma_s4": (IntMMAUnit, dict(a_fmt="int4", b_fmt="int4", k_step=64, overflow="wrap",
                                      doc="mma.sync m16n8k64 s4 -> s32: exact, wraps modulo 2^32")),
    "h100_imma_s4_sat": (IntMMAUnit, dict(a_fmt="int4", b_fmt="int4", k_step=64, overflow="saturate",
                                          doc="mma.sync m16n8k64 s4 .satfinite: exact sum saturated once")),
}


def _factory(name, cls, params):
    def make(**overrides):
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise bad("overrides", f"parameters of {cls.__name__}", sorted(unknown))
        return cls(name=name, **{**params, **overrides})
    return make


for _name, (_cls, _params) in H100_PRESETS.items():
    register_unit(_name, _factory(_name, _cls, _params), _params["doc"])
