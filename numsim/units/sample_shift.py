"""The per-sample-shift integer MAC (seed 000): the reduction runs over samples, each sample's
product shifted by its shift value before the final summation (csrc/units.c)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._ffi import ffi, lib
from ..errors import bad
from ..rounding import OVERFLOW_POLICIES, ROUNDING_MODES, rounding_mode
from ._c import DETERMINISTIC_ROUNDING, INT_OVERFLOW, CUnit, _scalar_code, choice, int_param, set_field
from .int_mac import _acc_int, _check_int_datapath, _check_output_stage
from .output_stage import RequantInt8

@dataclass(frozen=True)
class SampleShiftUnit(CUnit):
    """Per-sample-shift integer MAC (seed 000): the reduction runs over samples k; sample k's widened
    product is shifted by its shift value sample_shift[k] in [0, 4] before the final summation, one
    accumulator per sample ('per_sample') or one per shift value ('per_shift', shifted when summed)."""

    name: str = "int4_int32_sample_shift"
    a_fmt: Any = "int4"
    b_fmt: Any = "int4"
    widen_bits: int = 16
    widen_overflow: str = "error"
    acc_bits: int = 32
    acc_overflow: str = "wrap"
    grouping: str = "per_sample"
    shift_direction: str = "left"
    shift_rounding: str = "toward_neg"
    shift_overflow: str = "wrap"
    output_stage: RequantInt8 | None = None
    seed_source: str = "000"

    _ctx_key = "sample_shift"
    kernels = ("sample_shift.imatmul.amx", "sample_shift.imatmul.avx512_vnni", "sample_shift.as_int_mac",
               "sample_shift.imatmul.portable", "sample_shift.mac_level")
    _ctx_range = (0, 4)
    max_shift = 4

    def __post_init__(self):
        _check_int_datapath(self)
        choice("shift_overflow", self.shift_overflow, INT_OVERFLOW)
        choice("grouping", self.grouping, ("per_sample", "per_shift"))
        choice("shift_direction", self.shift_direction, ("left", "right"))
        set_field(self, "shift_rounding", rounding_mode(self.shift_rounding, "shift_rounding"))
        choice("shift_rounding", self.shift_rounding, DETERMINISTIC_ROUNDING)
        _check_output_stage(self)

    @property
    def acc_fmt(self):
        return _acc_int(self.acc_bits)

    @property
    def value_scale(self) -> float:
        """Weight of one accumulator LSB relative to the per-tensor step: left shifts by (4 - s)
        keep every bit, so the result is 2^4 times the sum of a * b * 2^-s; right shifts give it at 1x."""
        return 2.0**-self.max_shift if self.shift_direction == "left" else 1.0

    def _fill(self, u):
        u.kind = lib.NS_UNIT_SAMPLE_SHIFT
        u.widen_bits = self.widen_bits
        u.widen_overflow = OVERFLOW_POLICIES[self.widen_overflow]
        u.acc_overflow = OVERFLOW_POLICIES[self.acc_overflow]
        u.sample_group = 0 if self.grouping == "per_sample" else 1
        u.shift_dir = 0 if self.shift_direction == "left" else 1
        u.shift_rounding = ROUNDING_MODES[self.shift_rounding]
        u.shift_overflow = OVERFLOW_POLICIES[self.shift_overflow]
        u.max_shift = self.max_shift

    def initial_state(self, c=None):
        c0 = self._acc_code(c)
        return c0 if self.grouping == "per_sample" else (c0, 0, 0, 0, 0, 0)

    def step(self, state, a, b, sample_shift=None, **ctx):
        """One sample. per_sample: state is the total's code. per_shift: state is
        (total, g0, .., g4) and the product goes into g[sample_shift]; `finish` sums the groups."""
        if ctx:
            raise bad(next(iter(ctx)), "no such context (step takes sample_shift)", "a value")
        if sample_shift is None:
            raise bad("sample_shift", "a shift value in [0, 4]", "None")
        s = int_param("sample_shift", int(sample_shift) if isinstance(sample_shift, np.integer) else sample_shift, 0, 4)
        a = _scalar_code(a, self.a_fmt, "a")
        b = _scalar_code(b, self.b_fmt, "b")
        out, ev = ffi.new("uint32_t *"), ffi.new("int64_t *")
        if self.grouping == "per_sample":
            st = lib.ns_sample_shift_step(self._c, self._acc_code(state, "state"), a, b, s, out, ev)
            if st:
                self._raise(st, "step", 0, 0)
            return int(out[0])
        if not (isinstance(state, tuple) and len(state) == 6):
            raise bad("state", "(total, g0, g1, g2, g3, g4) accumulator codes", repr(state))
        g = list(state)
        st = lib.ns_sample_shift_step(self._c, self._acc_code(g[1 + s], "state"), a, b, s, out, ev)
        if st:
            self._raise(st, "step", 0, 0)
        g[1 + s] = int(out[0])
        return tuple(g)

    def finish(self, state):
        if self.grouping == "per_sample":
            return state
        total = state[0]
        out, ev = ffi.new("uint32_t *"), ffi.new("int64_t *")
        for s in range(5):
            st = lib.ns_sample_shift_finish(self._c, total, state[1 + s], s, out, ev)
            if st:
                self._raise(st, "finish", s, 0)
            total = int(out[0])
        return total

    def describe(self):
        sh = (f"<< (4 - s) (overflow: {self.shift_overflow}; result = 16 x the value)" if self.shift_direction == "left"
              else f">> s rounded {self.shift_rounding}")
        return (f"{self.name} (seed {self.seed_source}): {self.a_fmt} x {self.b_fmt} -> product widened to "
                f"{self.widen_bits} bits (overflow: {self.widen_overflow}); {self.grouping} accumulators, "
                f"shifted {sh}; summed in int{self.acc_bits} (overflow: {self.acc_overflow})")

