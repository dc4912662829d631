"""The integer MAC (seed 001): INT x INT product, widened and shifted left by a per-k alignment
shift, summed into a two's-complement accumulator (csrc/units.c)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._ffi import ffi, lib
from ..errors import bad
from ..formats import IntFormat, get_format
from ..rounding import OVERFLOW_POLICIES
from ._c import INT_OVERFLOW, ORDERS, CUnit, _scalar_code, choice, int_param, set_field
from .output_stage import RequantInt8

# ---- integer units -----------------------------------------------------------------------------

def _int_fmt(arg, fmt):
    f = get_format(fmt)
    if not isinstance(f, IntFormat):
        raise bad(arg, "an integer format", str(f))
    if f.bits > 16:
        raise bad(arg, "an integer format of at most 16 bits", str(f))
    return f


def _acc_int(bits):
    bits = int_param("acc_bits", bits, 2, 32)
    name = f"int{bits}"
    from ..formats import REGISTRY
    return REGISTRY.get(name) or IntFormat(bits)




def _check_int_datapath(u):
    """The checks every integer MAC shares: operand formats, register widths, overflow policies."""
    set_field(u, "a_fmt", _int_fmt("a_fmt", u.a_fmt))
    set_field(u, "b_fmt", _int_fmt("b_fmt", u.b_fmt))
    int_param("acc_bits", u.acc_bits, 2, 32)
    int_param("widen_bits", u.widen_bits, 2, u.acc_bits)
    choice("widen_overflow", u.widen_overflow, INT_OVERFLOW)
    choice("acc_overflow", u.acc_overflow, INT_OVERFLOW)


def _check_output_stage(u):
    if u.output_stage is not None and not isinstance(u.output_stage, RequantInt8):
        raise bad("output_stage", "None or a RequantInt8", type(u.output_stage).__name__)
    if u.output_stage is not None and u.acc_bits != 32:
        raise bad("output_stage", "an INT32 accumulator (acc_bits=32)", f"acc_bits={u.acc_bits}")


@dataclass(frozen=True)
class IntMacUnit(CUnit):
    """Integer MAC (seed 001): a_bits x b_bits product, widened to widen_bits and shifted left by the
    per-channel alignment shift (align_shift, per k), summed into an acc_bits accumulator."""

    name: str = "int4_int32"
    a_fmt: Any = "int4"
    b_fmt: Any = "int4"
    widen_bits: int = 16
    widen_overflow: str = "error"
    acc_bits: int = 32
    acc_overflow: str = "wrap"
    order: str = "sequential"
    chunk: int = 4
    output_stage: RequantInt8 | None = None
    seed_source: str = "001"

    _ctx_key = "align_shift"
    kernels = ("int_mac.imatmul.amx", "int_mac.imatmul.avx512_vnni", "int_mac.int8_lanes_vnni",
               "int_mac.int8_lanes_avx2", "int_mac.exact_blas", "int_mac.int8_lanes_portable",
               "int_mac.imatmul.portable", "int_mac.mac_level")
    _ctx_range = (0, 31)

    def __post_init__(self):
        _check_int_datapath(self)
        choice("order", self.order, ORDERS)
        int_param("chunk", self.chunk, 1, 2**31 - 1)
        _check_output_stage(self)

    @property
    def acc_fmt(self):
        return _acc_int(self.acc_bits)

    @property
    def product_bits(self):
        return self.a_fmt.bits + self.b_fmt.bits

    def _fill(self, u):
        u.kind = lib.NS_UNIT_INT
        u.widen_bits = self.widen_bits
        u.widen_overflow = OVERFLOW_POLICIES[self.widen_overflow]
        u.acc_overflow = OVERFLOW_POLICIES[self.acc_overflow]
        u.order = ORDERS[self.order]
        u.chunk = self.chunk

    def step(self, state, a, b, align_shift=0, **ctx):
        """One MAC: state + widen(a * b) << align_shift (accumulator codes in and out)."""
        return self.step_flags(state, a, b, align_shift, **ctx)[0]

    def step_flags(self, state, a, b, align_shift=0, **ctx):
        """One MAC and its flags: (state, flags); a widening or accumulator overflow event (wrap or
        saturation) is the overflow flag (numsim.fpops.OVERFLOW), the one flag an integer MAC raises."""
        if ctx:
            raise bad(next(iter(ctx)), "no such context (step takes align_shift)", "a value")
        acc = self._acc_code(state, "state")
        a = _scalar_code(a, self.a_fmt, "a")
        b = _scalar_code(b, self.b_fmt, "b")
        s = int_param("align_shift", int(align_shift) if isinstance(align_shift, np.integer) else align_shift, 0, 31)
        out, ev = ffi.new("uint32_t *"), ffi.new("int64_t *")
        st = lib.ns_int_mac_step(self._c, acc, a, b, s, out, ev)
        if st:
            self._raise(st, "step", 0, 0)
        return int(out[0]), (lib.NS_FP_FLAG_OVERFLOW if ev[0] else 0)

    def describe(self):
        stage = ""
        if self.output_stage is not None:
            r = self.output_stage
            stage = (f"\n  output stage: requant_int8 (multiplier {r.multiplier} Q31, shift {r.shift}, "
                     f"zero point {r.zero_point}, clamp [{r.out_min}, {r.out_max}])")
        return (f"{self.name} (seed {self.seed_source}): {self.a_fmt} x {self.b_fmt} -> {self.product_bits}-bit product"
                f" -> widened to {self.widen_bits} bits, << align_shift[k] (overflow: {self.widen_overflow})"
                f" -> int{self.acc_bits} accumulator (overflow: {self.acc_overflow}); order {self.order}"
                + (f" (chunk {self.chunk})" if self.order == "chunked" else "") + stage)
