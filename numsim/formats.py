"""Frozen format descriptors and the registry of named formats.

A value is its code: an unsigned integer in the smallest numpy uint dtype that holds the format's
bits. `IntFormat` is two's complement (or unsigned); `FloatFormat` is sign / exponent / mantissa
with a bias, radix 2 or 4, subnormals on or off, and a policy for inf/NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from .errors import NumsimError, bad

SPECIALS = ("ieee", "fn", "fnuz", "none")
R4_THRESHOLDS = ("log", "linear")
R4_ZEROS = ("exp0", "none")


def code_dtype(bits: int) -> np.dtype:
    """The smallest numpy unsigned dtype that holds `bits`-bit codes."""
    if bits <= 8:
        return np.dtype(np.uint8)
    if bits <= 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


@dataclass(frozen=True)
class IntFormat:
    """`bits`-bit integer: two's complement when signed; symmetric drops the most negative code."""

    bits: int
    signed: bool = True
    symmetric: bool = False
    # the display name is not part of the format: IntFormat(4) == get_format("int4")
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not isinstance(self.bits, (int, np.integer)) or isinstance(self.bits, bool):
            raise bad("bits", "an integer", type(self.bits).__name__)
        if not 1 <= self.bits <= 32:
            raise bad("bits", "1..32", self.bits)
        for key in ("signed", "symmetric"):
            if not isinstance(getattr(self, key), (bool, np.bool_)):
                raise bad(key, "True or False", repr(getattr(self, key)))
        if self.symmetric and not self.signed:
            raise bad("symmetric", "False for an unsigned format", self.symmetric)
        if self.signed and self.bits < 2:
            raise bad("bits", ">= 2 for a signed integer", self.bits)

    kind = "int"
    specials = "none"

    @property
    def dtype(self) -> np.dtype:
        return code_dtype(self.bits)

    @property
    def min_value(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def max_value(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def has_inf(self) -> bool:
        return False

    @property
    def has_nan(self) -> bool:
        return False

    def valid_code(self, code: int) -> bool:
        """Whether a code is part of the format (symmetric formats exclude the most negative)."""
        if not 0 <= code < 2**self.bits:
            return False
        return not (self.symmetric and code == 2 ** (self.bits - 1))

    def exact_value(self, code: int) -> Fraction:
        """Fraction value of a code (two's complement when signed)."""
        if isinstance(code, bool) or not isinstance(code, (int, np.integer)):
            raise bad("code", "an integer", type(code).__name__)
        code = int(code)
        if not 0 <= code < 2**self.bits:
            raise bad("code", f"0..{2**self.bits - 1}", code)
        if self.signed and code >> (self.bits - 1):
            return Fraction(code - 2**self.bits)
        return Fraction(code)

    def with_phase(self, phase) -> "IntFormat":
        """Integer formats have no TPR phase: always a NumsimError (FloatFormat.with_phase has one)."""
        raise bad("phase", f"a radix-4 float format (the TPR grid); {self} is an integer format", repr(phase))

    def describe(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        sym = ", symmetric" if self.symmetric else ""
        return f"{self.bits}-bit {kind} integer{sym}, range [{self.min_value}, {self.max_value}]"

    def __str__(self):
        return self.name or f"{'int' if self.signed else 'uint'}{self.bits}{'_sym' if self.symmetric else ''}"


@dataclass(frozen=True)
class FloatFormat:
    """Sign / exponent / mantissa float.

    radix 2: value = (-1)^s * 2^(e - bias) * 1.m (normal), 2^(1 - bias) * 0.m (subnormal).
    radix 4: man_bits must be 0; value = (-1)^s * 4^(e - bias) * 2^-phase, and with r4_zero="exp0"
    the exponent field 0 is zero. r4_threshold is where nearest rounding switches inside a
    power-of-4 step: "log" at 2 * 4^k (the exponent-parity rule of seed 003's converter),
    "linear" at 2.5 * 4^k (the nearest value).
    specials: "ieee" (inf + NaN at the all-ones exponent), "fn" (NaN only at the all-ones code, no
    inf, as OCP e4m3fn), "fnuz" (one NaN at the negative-zero code, no inf, no -0),
    "none" (every code is a number, as OCP fp4/fp6).
    """

    exp_bits: int
    man_bits: int
    bias: int
    radix: int = 2
    subnormals: bool = True
    specials: str = "ieee"
    phase: int = 0
    r4_threshold: str = "log"
    r4_zero: str = "exp0"
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        for arg in ("exp_bits", "man_bits", "bias", "phase", "radix"):
            v = getattr(self, arg)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise bad(arg, "an integer", type(v).__name__)
        if not isinstance(self.subnormals, (bool, np.bool_)):
            raise bad("subnormals", "True or False", repr(self.subnormals))
        if not 1 <= self.exp_bits <= 10:
            raise bad("exp_bits", "1..10", self.exp_bits)
        if self.man_bits < 0:
            raise bad("man_bits", ">= 0", self.man_bits)
        if self.bits > 32:
            raise bad("bits", "<= 32 (1 + exp_bits + man_bits)", self.bits)
        if self.radix not in (2, 4):
            raise bad("radix", "2 or 4", self.radix)
        if self.specials not in SPECIALS:
            raise bad("specials", f"one of {SPECIALS}", repr(self.specials))
        if self.radix == 4:
            if self.man_bits != 0:
                raise bad("man_bits", "0 for a radix-4 format", self.man_bits)
            if self.specials != "none":
                raise bad("specials", "'none' for a radix-4 format", repr(self.specials))
            if self.phase not in (0, 1):
                raise bad("phase", "0 (even) or 1 (odd)", self.phase)
            if self.r4_threshold not in R4_THRESHOLDS:
                raise bad("r4_threshold", f"one of {R4_THRESHOLDS}", repr(self.r4_threshold))
            if self.r4_zero not in R4_ZEROS:
                raise bad("r4_zero", f"one of {R4_ZEROS}", repr(self.r4_zero))
        else:
            if self.phase != 0:
                raise bad("phase", "0 for a radix-2 format", self.phase)
            if self.specials in ("ieee", "fn") and self.man_bits < 1:
                raise bad("man_bits", f">= 1 for specials={self.specials!r}", self.man_bits)
        # The largest value must fit in float64 and the smallest subnormal must be a float64 too.
        if self.max_exponent > 1023 or self.min_exponent < -1074:
            raise bad("bias", "a value range inside float64", self.bias)

    kind = "float"

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def dtype(self) -> np.dtype:
        return code_dtype(self.bits)

    @property
    def has_inf(self) -> bool:
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.specials != "none"

    @property
    def field_max(self) -> int:
        """Largest exponent field that holds finite values."""
        all_ones = 2**self.exp_bits - 1
        return all_ones - 1 if self.specials == "ieee" else all_ones

    @property
    def max_exponent(self) -> int:
        if self.radix == 4:
            return 2 * (2**self.exp_bits - 1 - self.bias) - self.phase + 1
        return self.field_max - self.bias + 1

    @property
    def min_exponent(self) -> int:
        if self.radix == 4:
            return 2 * (1 - self.bias) - self.phase
        return 1 - self.bias - self.man_bits

    def with_phase(self, phase) -> "FloatFormat":
        """The same codes read on the even (0) or odd (1, values x 0.5) TPR grid."""
        p = {"even": 0, "odd": 1, 0: 0, 1: 1}.get(phase)
        if p is None or self.radix != 4:
            raise bad("phase", "'even' or 'odd' on a radix-4 format", repr(phase))
        name = None
        if self.name:
            base = self.name.removesuffix("_odd")
            name = base + ("_odd" if p else "")
        return replace(self, phase=p, name=name)

    def valid_code(self, code: int) -> bool:
        return 0 <= code < 2**self.bits

    # Exact values, used by the CLI and documentation (the kernels never call these). Integer
    # arithmetic on the fields, so that production does not lean on numsim.reference (the oracle).
    def exact_value(self, code: int):
        """Fraction value of a code, or the strings 'inf', '-inf', 'nan' (-0 is Fraction(0))."""
        if isinstance(code, bool) or not isinstance(code, (int, np.integer)):
            raise bad("code", "an integer", type(code).__name__)
        code = int(code)
        if not self.valid_code(code):
            raise bad("code", f"0..{2**self.bits - 1}", code)
        negative = bool(code >> (self.bits - 1))
        magnitude = code & ((1 << (self.bits - 1)) - 1)
        if self.specials == "fnuz" and negative and magnitude == 0:
            return "nan"
        exp_field, man_field = magnitude >> self.man_bits, magnitude & ((1 << self.man_bits) - 1)
        all_ones = (1 << self.exp_bits) - 1
        if self.specials == "ieee" and exp_field == all_ones:
            return "nan" if man_field else ("-inf" if negative else "inf")
        if self.specials == "fn" and exp_field == all_ones and man_field == (1 << self.man_bits) - 1:
            return "nan"
        if self.radix == 4:
            # the value is 4^(field - bias) / 2^phase = 2^(2 (field - bias) - phase); field 0 may be zero
            if exp_field == 0 and self.r4_zero == "exp0":
                return Fraction(0)
            significand, exponent = 1, 2 * (exp_field - self.bias) - self.phase
        elif exp_field == 0:
            # subnormal: 0.m x 2^(1 - bias), or zero when the format flushes them
            significand = man_field if self.subnormals else 0
            exponent = 1 - self.bias - self.man_bits
        else:
            significand = (1 << self.man_bits) | man_field          # the hidden 1
            exponent = exp_field - self.bias - self.man_bits
        value = Fraction(significand << exponent) if exponent >= 0 else Fraction(significand, 1 << -exponent)
        return -value if negative else value

    @property
    def max_finite_code(self) -> int:
        """The positive code with the largest finite value."""
        all_ones = (1 << self.exp_bits) - 1
        man_all_ones = (1 << self.man_bits) - 1
        if self.specials == "ieee":            # the all-ones exponent is inf / NaN
            return ((all_ones - 1) << self.man_bits) | man_all_ones
        if self.specials == "fn":              # only the all-ones code is NaN
            return (all_ones << self.man_bits) | (man_all_ones - 1)
        return (all_ones << self.man_bits) | man_all_ones

    @property
    def max_finite(self) -> float:
        return float(self.exact_value(self.max_finite_code))

    @property
    def min_normal(self) -> float:
        if self.radix == 4:
            return math.ldexp(1.0, 2 * ((1 if self.r4_zero == "exp0" else 0) - self.bias) - self.phase)
        return math.ldexp(1.0, 1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        if self.radix == 4 or not self.subnormals or self.man_bits == 0:
            return self.min_normal
        return math.ldexp(1.0, 1 - self.bias - self.man_bits)

    def describe(self) -> str:
        if self.radix == 4:
            grid = "odd" if self.phase else "even"
            return (f"radix-4 [1,{self.exp_bits},0], bias {self.bias}, {grid} phase, zero={self.r4_zero}, "
                    f"threshold={self.r4_threshold}")
        sub = "subnormals" if self.subnormals else "no subnormals"
        return f"[1,{self.exp_bits},{self.man_bits}] bias {self.bias}, {sub}, specials={self.specials}"

    def __str__(self):
        return self.name or (f"e{self.exp_bits}m{self.man_bits}b{self.bias}"
                             + ("r4" if self.radix == 4 else "") + ("_odd" if self.phase else ""))


Format = IntFormat | FloatFormat


def _named(fmt, name):
    return replace(fmt, name=name)


def _build_registry():
    reg = {}
    for b in (2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32):
        reg[f"int{b}"] = IntFormat(b, True, name=f"int{b}")
        reg[f"uint{b}"] = IntFormat(b, False, name=f"uint{b}")
    for b in (4, 8):
        reg[f"int{b}_sym"] = IntFormat(b, True, symmetric=True, name=f"int{b}_sym")
    floats = {
        "fp4_e2m1": FloatFormat(2, 1, 1, specials="none"),
        "fp6_e2m3": FloatFormat(2, 3, 1, specials="none"),
        "fp6_e3m2": FloatFormat(3, 2, 3, specials="none"),
        "fp8_e4m3fn": FloatFormat(4, 3, 7, specials="fn"),
        "fp8_e4m3fnuz": FloatFormat(4, 3, 8, specials="fnuz"),
        "fp8_e5m2": FloatFormat(5, 2, 15, specials="ieee"),
        "fp8_e5m2fnuz": FloatFormat(5, 2, 16, specials="fnuz"),
        "fp16": FloatFormat(5, 10, 15),
        "bf16": FloatFormat(8, 7, 127),
        "fp32": FloatFormat(8, 23, 127),
        # NVIDIA's TensorFloat-32: fp32's range with fp16's precision, a 19-bit code (sign, 8, 10).
        # Tensor cores read it from the top 19 bits of an fp32 word (the low 13 ignored: truncation).
        "tf32": FloatFormat(8, 10, 127),
        # Seed 003's radix-4 FP4 [1,3,0]: fields 1..7 hold 4^-3 .. 4^3, field 0 is zero.
        "fp4r4": FloatFormat(3, 0, 4, radix=4, specials="none"),
        "fp4r4_odd": FloatFormat(3, 0, 4, radix=4, specials="none", phase=1),
    }
    for name, fmt in floats.items():
        reg[name] = _named(fmt, name)
    return reg


REGISTRY: dict[str, Format] = _build_registry()
ALIASES = {"int4s": "int4_sym", "e4m3": "fp8_e4m3fn", "e5m2": "fp8_e5m2", "half": "fp16", "float16": "fp16",
           "bfloat16": "bf16", "float32": "fp32", "e2m1": "fp4_e2m1"}


def get_format(fmt) -> Format:
    """A format descriptor from a descriptor or a registered name."""
    if isinstance(fmt, (IntFormat, FloatFormat)):
        return fmt
    if isinstance(fmt, str):
        key = ALIASES.get(fmt, fmt)
        if key in REGISTRY:
            return REGISTRY[key]
        raise NumsimError(f"fmt: unknown format name {fmt!r}; known: {', '.join(sorted(REGISTRY))}")
    raise bad("fmt", "a format name or an IntFormat/FloatFormat", type(fmt).__name__)


def format_names():
    return list(REGISTRY)
