"""Unsigned block-scale formats: E8M0 (OCP MX), UE4M3 (NVFP4), UE5M3.

FloatFormat always has a sign bit and E8M0 has no mantissa, no zero and no sign, so the scales are
a small class of their own. A code is its unsigned integer; the all-ones code is NaN.
UE4M3 / UE5M3 are the non-negative half of e4m3fn / e5m3fn (same codes, subnormals, code 0 is zero),
so their rounding is numsim.encode's on that signed twin.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..codec import encode
from ..errors import NumsimError, bad
from ..formats import FloatFormat

SCALE_ROUNDINGS = ("nearest_even", "toward_pos", "toward_neg")


@dataclass(frozen=True)
class ScaleFormat:
    """Unsigned exp/man scale: value 2^(e - bias) * 1.m, or 0.m * 2^(1 - bias) at e = 0 when
    `subnormals` (then code 0 is zero); without subnormals (E8M0) e = 0 is 2^-bias and there is no zero."""

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    subnormals: bool

    @property
    def bits(self) -> int:
        return self.exp_bits + self.man_bits

    @property
    def nan_code(self) -> int:
        return (1 << self.bits) - 1

    @property
    def max_code(self) -> int:
        return self.nan_code - 1

    def _twin(self) -> FloatFormat | None:
        # the signed float whose non-negative codes are this format's codes (none for E8M0)
        if self.man_bits == 0:
            return None
        return FloatFormat(self.exp_bits, self.man_bits, self.bias, specials="fn")

    def exact_value(self, code: int):
        """Fraction value of a code, or 'nan' for the all-ones code."""
        if isinstance(code, bool) or not isinstance(code, (int, np.integer)):
            raise bad("code", "an integer", type(code).__name__)
        code = int(code)
        if not 0 <= code <= self.nan_code:
            raise bad("code", f"0..{self.nan_code}", code)
        if code == self.nan_code:
            return "nan"
        e, m = code >> self.man_bits, code & ((1 << self.man_bits) - 1)
        if e == 0 and self.subnormals:
            sig, exp = m, 1 - self.bias - self.man_bits
        else:
            sig, exp = (1 << self.man_bits) | m, e - self.bias - self.man_bits
        return Fraction(sig) * (Fraction(2) ** exp)

    def decode(self, codes) -> np.ndarray:
        """float64 values of codes (NaN for the NaN code); every value is exact in float64."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "ui" or (codes.size and (codes.min() < 0 or codes.max() > self.nan_code)):
            raise bad("codes", f"integers in 0..{self.nan_code}", codes.dtype)
        table = np.array([float(v) if v != "nan" else np.nan
                          for v in map(self.exact_value, range(self.nan_code + 1))])
        return table[codes.astype(np.int64)]

    def encode(self, values, rounding="nearest_even") -> np.ndarray:
        """uint8 codes of non-negative finite values, saturating at both ends (E8M0 has no zero:
        values below 2^-127, zero included, give code 0). NaN -> the NaN code."""
        if rounding not in SCALE_ROUNDINGS:
            raise bad("rounding", f"one of {SCALE_ROUNDINGS}", repr(rounding))
        v = np.asarray(values, dtype=np.float64)
        if np.any(v < 0) or np.any(np.isinf(v)):
            raise bad("values", "non-negative finite values (a scale has no sign)", "a negative or infinite value")
        nan = np.isnan(v)
        twin = self._twin()
        if twin is not None:
            codes = encode(np.where(nan, 0.0, v), twin, rounding=rounding, overflow="saturate").astype(np.int64)
        else:
            # E8M0: the exponent of v, from frexp (exact), moved to the neighbouring power by the rounding
            mant, exp = np.frexp(np.where(nan | (v == 0), 1.0, v))   # v = mant * 2^exp, mant in [0.5, 1)
            e = exp.astype(np.int64) - 1                               # floor(log2 v)
            pow2 = mant == 0.5
            if rounding == "toward_pos":
                e = e + (~pow2)
            elif rounding == "nearest_even":
                # between 2^e and 2^(e+1) the midpoint is 1.5 * 2^e (mant 0.75); ties go to the even code
                above = (mant > 0.75) | ((mant == 0.75) & (((e + self.bias) & 1) == 1))
                e = e + above
            codes = np.clip(e + self.bias, 0, self.max_code)
            codes = np.where(v == 0, 0, codes)
        return np.where(nan, self.nan_code, codes).astype(np.uint8)

    def __str__(self):
        return self.name


E8M0 = ScaleFormat("e8m0", 8, 0, 127, subnormals=False)
UE4M3 = ScaleFormat("ue4m3", 4, 3, 7, subnormals=True)
UE5M3 = ScaleFormat("ue5m3", 5, 3, 15, subnormals=True)
SCALE_FORMATS = {f.name: f for f in (E8M0, UE4M3, UE5M3)}


def get_scale_format(fmt) -> ScaleFormat:
    if isinstance(fmt, ScaleFormat):
        return fmt
    if isinstance(fmt, str) and fmt in SCALE_FORMATS:
        return SCALE_FORMATS[fmt]
    raise NumsimError(f"scale_fmt: expected a ScaleFormat or one of {sorted(SCALE_FORMATS)}, got {fmt!r}")
