"""The float-accumulating MAC: k_step products summed exactly and added to a float accumulator
with one rounding (csrc/units.c), and its seed-003 variant, INT4 x radix-4 FP4 into FP16 with the
odd-phase exponent trick."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import _decode_table, check_codes, decode
from ..errors import bad
from ..formats import FloatFormat, IntFormat, get_format
from ..rounding import OVERFLOW_POLICIES, ROUNDING_MODES, rounding_mode
from ._c import (DETERMINISTIC_ROUNDING, FLOAT_OVERFLOW, INT_OVERFLOW, ODD_UNDERFLOW, ORDERS, CUnit, choice,
                 int_param, set_field)
from .base import DotResult, GemmResult, count_nonfinite
from .flags import UNIT_NAN_RULES, unit_nan_rule, unit_tininess

_LIMB_BITS = 320          # the exact adder's safe span (6 x 64-bit limbs, headroom for shifts and sign)

# ---- float-accumulating units -------------------------------------------------------------------

def _sig_bits(f):
    if isinstance(f, IntFormat):
        return f.bits
    return 1 if f.radix == 4 else f.man_bits + 1


def _lsb(f):
    """2-exponent of the format's finest quantum (radix-4 on its even grid)."""
    if isinstance(f, IntFormat):
        return 0
    if f.radix == 4:
        return 2 * ((1 if f.r4_zero == "exp0" else 0) - f.bias)
    return 1 - f.bias - f.man_bits


def _max_mag(f):
    if isinstance(f, IntFormat):
        return max(abs(f.min_value), f.max_value)
    if f.radix == 4:
        return 4.0 ** (2**f.exp_bits - 1 - f.bias)
    return f.max_finite


@dataclass(frozen=True)
class FloatMacUnit(CUnit):
    """Float-accumulating MAC: products of k_step consecutive k summed exactly and added to the
    accumulator (acc_fmt) with one rounding; order sequential / chunked / pairwise."""

    name: str = "fp8_fp16"
    a_fmt: Any = "fp8_e4m3fn"
    b_fmt: Any = "fp8_e4m3fn"
    acc_fmt: Any = "fp16"
    k_step: int = 1
    order: str = "chunked"
    chunk: int = 64
    acc_rounding: str = "nearest_even"
    acc_overflow: str = "to_inf"
    sum_path: str = "auto"
    inner_bits: int | None = None
    inner_overflow: str = "error"
    tininess: str = "after"            # IEEE underflow flag: tininess "after" or "before" rounding
    nan_rule: str = "default"          # "default" (today's bits), "x86", "arm", "riscv" (SoftFloat's rules)
    count_flags: bool = False          # GEMMs count IEEE flags per register update (info["flags"])
    seed_source: str = "003 (8-bit training hardware)"

    _ctx_key = None
    _ctx_range = (0, 0)
    kernels = ("float_mac.fma_chain_fp16", "float_mac.fma_chain", "float_mac.exact_double",
               "float_mac.fma_chain_portable", "float_mac.mac_level")

    def __post_init__(self):
        set_field(self, "a_fmt", get_format(self.a_fmt))
        set_field(self, "b_fmt", get_format(self.b_fmt))
        acc = get_format(self.acc_fmt)
        if not (isinstance(acc, FloatFormat) and acc.radix == 2 and acc.specials == "ieee" and acc.subnormals
                and acc.man_bits <= 50):
            raise bad("acc_fmt", "an IEEE radix-2 float format with subnormals and <= 50 mantissa bits", str(acc))
        set_field(self, "acc_fmt", acc)
        int_param("k_step", self.k_step, 1, 64)
        choice("order", self.order, ORDERS)
        int_param("chunk", self.chunk, 1, 2**31 - 1)
        set_field(self, "acc_rounding", rounding_mode(self.acc_rounding, "acc_rounding"))
        choice("acc_rounding", self.acc_rounding, DETERMINISTIC_ROUNDING)
        choice("acc_overflow", self.acc_overflow, FLOAT_OVERFLOW)
        choice("sum_path", self.sum_path, ("auto", "integer"))
        set_field(self, "tininess", unit_tininess(self.tininess))
        set_field(self, "nan_rule", unit_nan_rule(self.nan_rule))
        if not isinstance(self.count_flags, (bool, np.bool_)):
            raise bad("count_flags", "True or False", repr(self.count_flags))
        set_field(self, "count_flags", bool(self.count_flags))
        a, b = self._c_a_fmt, self._c_b_fmt
        if _sig_bits(a) + _sig_bits(b) > 53:
            raise bad("a_fmt", "operand formats whose product significand fits 53 bits", f"{a} x {b}")
        choice("inner_overflow", self.inner_overflow, INT_OVERFLOW)
        if self.inner_bits is not None:
            int_param("inner_bits", self.inner_bits, 2, 53)
            if self.k_step * _max_mag(a) * _max_mag(b) * 2.0 ** -self.product_lsb >= 2.0**62:
                raise bad("inner_bits", "None for these formats (their products span more than 62 bits)", self.inner_bits)
        if self.span_bits + 2 > _LIMB_BITS:
            raise bad("acc_fmt", f"formats whose exact sums span <= {_LIMB_BITS - 2} bits", f"{self.span_bits} bits")

    @property
    def product_lsb(self):
        """2-exponent of the finest product quantum: the inner adder's LSB."""
        return _lsb(self._c_a_fmt) + _lsb(self._c_b_fmt)

    @property
    def inner_bits_exact(self):
        """Inner-adder width that holds every sum of k_step products exactly (two's complement)."""
        top = self.k_step * _max_mag(self._c_a_fmt) * _max_mag(self._c_b_fmt) * 2.0 ** -self.product_lsb
        return math.floor(math.log2(top)) + 2

    @property
    def exact_lsb(self):
        return min(_lsb(self.acc_fmt), _lsb(self._c_a_fmt) + _lsb(self._c_b_fmt))

    @property
    def span_bits(self):
        """Bits from the finest quantum to the top of the largest partial sum of one rounded add."""
        pmax = _max_mag(self._c_a_fmt) * _max_mag(self._c_b_fmt)
        acc = self.acc_fmt.max_finite
        bound = max(2 * acc, acc + self.k_step * pmax)
        return math.floor(math.log2(bound)) + 1 - self.exact_lsb

    @property
    def sum_in_double(self):
        """Whether every partial sum is provably a double (multiple of 2^lsb below 2^(lsb + 53))."""
        return self.sum_path == "auto" and self.span_bits <= 53

    def _fill(self, u):
        u.kind = lib.NS_UNIT_FLOAT
        u.fused_n = self.k_step
        u.order = ORDERS[self.order]
        u.chunk = self.chunk
        u.acc_rounding = ROUNDING_MODES[self.acc_rounding]
        u.acc_overflow = OVERFLOW_POLICIES[self.acc_overflow]
        u.sum_in_double = 2 if self.sum_path == "integer" else int(self.sum_in_double)
        u.exact_lsb = self.exact_lsb
        u.inner_bits = self.inner_bits or 0
        u.inner_overflow = OVERFLOW_POLICIES[self.inner_overflow]
        u.product_lsb = self.product_lsb
        u.tininess_before = int(self.tininess == "before")
        u.nan_rule = UNIT_NAN_RULES[self.nan_rule]

    def step(self, state, a, b, **ctx):
        """One fused step: state + sum(a[i] * b[i]) rounded once; a, b codes or sequences of <= k_step codes."""
        return self.step_flags(state, a, b, **ctx)[0]

    def step_flags(self, state, a, b, **ctx):
        """One fused step and its IEEE flags: (state, flags), flags a SoftFloat bit mask (numsim.fpops)."""
        if ctx:
            raise bad(next(iter(ctx)), "no such context (this unit takes none)", "a value")
        acc = self._acc_code(state, "state")
        av = np.atleast_1d(check_codes(np.asarray(a), self.a_fmt, "a")).astype(np.uint32)
        bv = np.atleast_1d(check_codes(np.asarray(b), self.b_fmt, "b")).astype(np.uint32)
        if av.ndim != 1 or av.shape != bv.shape:
            raise bad("b", f"as many codes as a ({av.shape[0]})", bv.shape)
        if av.shape[0] > self.k_step:
            raise bad("a", f"at most k_step={self.k_step} codes", av.shape[0])
        av, bv = np.ascontiguousarray(av), np.ascontiguousarray(bv)
        out, fl = ffi.new("uint32_t *"), ffi.new("uint8_t *")
        st = lib.ns_float_mac_step_flags(self._c, acc, cptr("uint32_t *", av), cptr("uint32_t *", bv), av.shape[0],
                                         out, fl)
        if st:
            self._raise(st, "step", 0, 0)
        return int(out[0]), int(fl[0])

    def describe(self):
        path = ("exact double sum (proved)" if self.sum_in_double else
                "exact sums (TwoSum for two addends, else a 384-bit integer), rounded to odd, then once")
        return (f"{self.name}: {self.a_fmt} x {self.b_fmt}, {self.k_step}-way products summed exactly, added to a "
                f"{self.acc_fmt} accumulator with one rounding ({self.acc_rounding}, overflow {self.acc_overflow}); "
                f"order {self.order}" + (f" (chunk {self.chunk})" if self.order == "chunked" else "")
                + f"; {path}")


@dataclass(frozen=True)
class Int4Fp4r4Unit(FloatMacUnit):
    """4-way INT4 x radix-4 FP4 MAC into FP16 (seed 003). Each product is the integer shifted by 2e;
    four products are summed exactly and added to the FP16 accumulator with one rounding. phase='odd'
    runs the same even-phase datapath and decrements the result's FP16 exponent field (odd_underflow
    at fields 0 and 1: 'flush' to a signed zero, 'exact' true half rounded to nearest even, 'clamp'
    saturating decrement)."""

    name: str = "int4_fp4r4_fp16"
    a_fmt: Any = "int4"
    b_fmt: Any = "fp4r4"
    acc_fmt: Any = "fp16"
    k_step: int = 4
    order: str = "sequential"
    chunk: int = 64
    phase: str = "even"
    odd_underflow: str = "flush"
    seed_source: str = "003"

    def __post_init__(self):
        choice("phase", self.phase, ("even", "odd"))
        choice("odd_underflow", self.odd_underflow, ODD_UNDERFLOW)
        b = get_format(self.b_fmt)
        if not (isinstance(b, FloatFormat) and b.radix == 4):
            raise bad("b_fmt", "a radix-4 FP4 format", str(b))
        set_field(self, "b_fmt", b.with_phase(self.phase))
        super().__post_init__()
        if self.acc_fmt.exp_bits != 5 or self.acc_fmt.man_bits != 10 or self.acc_fmt.bias != 15:
            raise bad("acc_fmt", "fp16 (the exponent trick acts on FP16 fields)", str(self.acc_fmt))

    @property
    def _c_b_fmt(self):
        return self.b_fmt.with_phase("even")  # the datapath reads the codes on the even grid

    def _fill(self, u):
        super()._fill(u)
        u.odd_phase = int(self.phase == "odd")
        u.odd_underflow = ODD_UNDERFLOW[self.odd_underflow]

    def finish(self, state):
        if self.phase == "odd":
            return int(lib.ns_f16_odd_phase(int(state), ODD_UNDERFLOW[self.odd_underflow]))
        return state

    def _finish_dot(self, res):
        if self.phase == "odd":
            # The C kernel applied the trick; the even-datapath result is the last accumulator value.
            even = res.trace[-1] if res.trace else res.info.get("c_code", 0)
            res.info["even_code"] = int(even)
            res.info["departures"] = odd_phase_departures(np.array([even], dtype=np.uint16), self.odd_underflow)
            res.info["trace_note"] = "trace: even-phase accumulator; code: after the odd-phase exponent trick"

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        if self.phase != "odd":
            return super().dot(a_codes, b_codes, c=c, trace=trace, **ctx)
        res = super().dot(a_codes, b_codes, c=c, trace=True, **ctx)
        if not res.trace:
            res.info["c_code"] = self._acc_code(c)
            self._finish_dot(res)
        if not trace:
            res.trace = None
        return res

    def mac_level_gemm(self, p) -> GemmResult:
        if self.phase != "odd":
            return super().mac_level_gemm(p)
        from dataclasses import replace

        return odd_phase_result(self, replace(self, phase="even").mac_level_gemm(p))

    def describe(self):
        return (f"{self.name} (seed 003): int4 x fp4r4 ({self.phase} phase), {self.k_step}-way: each product is the "
                f"integer shifted by 2e, the {self.k_step} products summed exactly and added to an FP16 accumulator "
                f"with one rounding ({self.acc_rounding}); order {self.order}"
                + (f"; odd phase: FP16 exponent field - 1, odd_underflow={self.odd_underflow}" if self.phase == "odd"
                   else ""))


def odd_phase_result(unit, even: GemmResult) -> GemmResult:
    """The odd phase's GemmResult from the even-phase datapath's (the exponent trick on every output).
    `even` is consumed: its float64 values buffer is reused for the odd values (peak memory, issue 15)."""
    codes = odd_phase_trick(even.codes, unit.odd_underflow)
    ev = even.values
    if (isinstance(ev, np.ndarray) and ev.dtype == np.float64 and ev.shape == codes.shape
            and ev.flags.c_contiguous and ev.flags.writeable and codes.size >= 256):
        values = np.take(_decode_table(get_format(unit.acc_fmt)), codes, out=ev, mode="clip")  # unbuffered: codes are in range
        even.values = None
    else:
        values = decode(codes, unit.acc_fmt)
    res = GemmResult(codes=codes, values=values, overflow_count=even.overflow_count,
                     info={"even_codes": even.codes, "departures": odd_phase_departures(even.codes, unit.odd_underflow)})
    if "flags" in even.info:      # the accumulator updates' flags (the exponent trick is no update)
        res.info["flags"] = even.info["flags"]
    return count_nonfinite(res, unit.acc_fmt)


# ---- the exponent trick and its departure report --------------------------------------------------

def odd_phase_trick(fp16_codes, odd_underflow="flush") -> np.ndarray:
    """The odd-phase exponent trick on FP16 codes (C kernel ns_f16_odd_phase)."""
    choice("odd_underflow", odd_underflow, ODD_UNDERFLOW)
    c = np.ascontiguousarray(check_codes(fp16_codes, "fp16", "fp16_codes").astype(np.uint16, copy=False))
    out = np.empty(c.shape, dtype=np.uint16)
    lib.ns_f16_odd_phase_vec(cptr("uint16_t *", c), c.size, ODD_UNDERFLOW[odd_underflow], cptr("uint16_t *", out))
    return out


def odd_phase_departures(even_codes, odd_underflow="flush"):
    """Every output where the exponent trick departs from the correctly rounded (nearest-even) exact half.

    even_codes: FP16 results of the even-phase datapath. Returns a list of dicts {index, even_code,
    trick_code, exact_code, trick_value, exact_value}, in C order. Only exponent fields 0 and 1 can
    depart (fields >= 2 halve exactly; inf and NaN pass unchanged, as their halves do).
    """
    c = check_codes(even_codes, "fp16", "even_codes")
    flat = c.reshape(-1).astype(np.uint16, copy=False)
    where = np.flatnonzero((flat & 0x7800) == 0)        # exponent fields 0 and 1: the only candidates
    cand = flat[where]
    trick = odd_phase_trick(cand, odd_underflow)
    exact = odd_phase_trick(cand, "exact")
    out = []
    for j in np.nonzero(trick != exact)[0]:
        i = int(where[j])
        out.append({"index": tuple(int(x) for x in np.unravel_index(int(i), c.shape)),
                    "even_code": int(flat[i]), "trick_code": int(trick[j]), "exact_code": int(exact[j]),
                    "trick_value": float(decode(trick[j:j + 1], "fp16")[0]),
                    "exact_value": float(decode(exact[j:j + 1], "fp16")[0])})
    return out

