"""Output stages: what turns the accumulator into the layer's output codes."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._ffi import cptr, lib
from ..codec import check_codes
from ..errors import bad
from ..formats import get_format
from ._c import int_param

@dataclass(frozen=True)
class RequantInt8:
    """INT32 -> INT8 as TFLite/gemmlowp do it: SaturatingRoundingDoublingHighMul(acc << left, multiplier),
    RoundingDivideByPOT(., right), + zero_point, clamp to [out_min, out_max]. `shift` follows TFLite:
    > 0 shifts left before the multiply (wrapping in int32), < 0 is the rounding right shift."""

    multiplier: int = 1 << 30       # Q31: 0.5
    shift: int = 0
    zero_point: int = 0
    out_min: int = -128
    out_max: int = 127

    def __post_init__(self):
        int_param("multiplier", self.multiplier, -(2**31), 2**31 - 1)
        int_param("shift", self.shift, -31, 30)
        int_param("zero_point", self.zero_point, -128, 127)
        int_param("out_min", self.out_min, -128, 127)
        int_param("out_max", self.out_max, -128, 127)
        if self.out_min > self.out_max:
            raise bad("out_min", f"<= out_max ({self.out_max})", self.out_min)

    @property
    def out_fmt(self):
        return get_format("int8")

    @staticmethod
    def from_scale(real_multiplier: float, zero_point=0, out_min=-128, out_max=127) -> "RequantInt8":
        """TFLite's QuantizeMultiplier (runtime_stage.quantize_multiplier): real = multiplier * 2^(shift - 31),
        multiplier in [2^30, 2^31), std::round's ties away from zero."""
        from .runtime_stage import quantize_multiplier

        if not (isinstance(real_multiplier, (int, float)) and math.isfinite(real_multiplier) and real_multiplier > 0):
            raise bad("real_multiplier", "a finite positive number", repr(real_multiplier))
        q_fixed, shift = quantize_multiplier(real_multiplier)
        return RequantInt8(q_fixed, shift, zero_point, out_min, out_max)

    def apply(self, acc_codes) -> np.ndarray:
        """int8 codes (uint8) of INT32 accumulator codes (uint32 array or scalar)."""
        acc = np.ascontiguousarray(check_codes(acc_codes, "int32", "acc_codes").astype(np.uint32))
        out = np.empty(acc.shape, dtype=np.uint8)
        lib.ns_requant_int8_vec(cptr("uint32_t *", acc), acc.size, self.multiplier, self.shift, self.zero_point,
                                self.out_min, self.out_max, cptr("uint8_t *", out))
        return out

