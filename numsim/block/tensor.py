"""Block-scaled tensors: element codes, one scale code per block along an axis, an optional FP32
tensor scale. value = element * elem_unit * scale * tensor_scale."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..codec import decode
from ..errors import NumsimError, bad
from ..formats import FloatFormat, IntFormat, get_format
from .scale import ScaleFormat, get_scale_format


@dataclass(frozen=True)
class BlockKind:
    """Element format, scale format, block size, and the element's implied unit (2^-6 for MXINT8)."""

    name: str
    elem_fmt: IntFormat | FloatFormat
    scale_fmt: ScaleFormat
    block_size: int
    elem_unit: Fraction = Fraction(1)
    tensor_scale: bool = False          # NVFP4's second-level FP32 scale

    def __post_init__(self):
        object.__setattr__(self, "elem_fmt", get_format(self.elem_fmt))
        object.__setattr__(self, "scale_fmt", get_scale_format(self.scale_fmt))
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, (int, np.integer)) \
                or self.block_size < 1:
            raise bad("block_size", "a positive integer", repr(self.block_size))
        u = Fraction(self.elem_unit)
        if u <= 0 or u.numerator & (u.numerator - 1) or u.denominator & (u.denominator - 1):
            raise bad("elem_unit", "a power of two", repr(self.elem_unit))
        object.__setattr__(self, "elem_unit", u)

    @property
    def elem_max(self) -> Fraction:
        """Largest element magnitude (elem_unit included)."""
        f = self.elem_fmt
        m = Fraction(f.max_value) if f.kind == "int" else f.exact_value(f.max_finite_code)
        return m * self.elem_unit

    @property
    def elem_emax(self) -> int:
        """floor(log2(elem_max)): the OCP scale rule's emax_elem."""
        return _floor_log2(self.elem_max)



def _floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e if Fraction(2) ** e <= x else e - 1



KINDS = {
    "mxfp8_e4m3": BlockKind("mxfp8_e4m3", "fp8_e4m3fn", "e8m0", 32),
    "mxfp8_e5m2": BlockKind("mxfp8_e5m2", "fp8_e5m2", "e8m0", 32),
    "mxfp6_e2m3": BlockKind("mxfp6_e2m3", "fp6_e2m3", "e8m0", 32),
    "mxfp6_e3m2": BlockKind("mxfp6_e3m2", "fp6_e3m2", "e8m0", 32),
    "mxfp4": BlockKind("mxfp4", "fp4_e2m1", "e8m0", 32),
    "mxint8": BlockKind("mxint8", "int8", "e8m0", 32, elem_unit=Fraction(1, 64)),
    "nvfp4": BlockKind("nvfp4", "fp4_e2m1", "ue4m3", 16, tensor_scale=True),
}


def get_kind(kind) -> BlockKind:
    if isinstance(kind, BlockKind):
        return kind
    if isinstance(kind, str) and kind in KINDS:
        return KINDS[kind]
    raise NumsimError(f"kind: expected a BlockKind or one of {sorted(KINDS)}, got {kind!r}")


def block_view(shape, axis, block_size):
    """(axis, blocks): the normalized axis and the number of blocks along it (length must divide)."""
    ndim = len(shape)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise bad("axis", f"an axis of a {ndim}-d array", repr(axis))
    axis = int(axis) % ndim
    if shape[axis] % block_size:
        raise bad("values", f"a length along axis {axis} that is a multiple of the block size {block_size}",
                  shape[axis])
    return axis, shape[axis] // block_size


@dataclass(frozen=True)
class BlockTensor:
    kind: BlockKind
    axis: int
    elem_codes: np.ndarray       # codes of kind.elem_fmt, the data's shape
    scale_codes: np.ndarray      # uint8 codes of kind.scale_fmt, the data's shape with axis length / block
    tensor_scale: float | None = None   # an FP32 value (NVFP4), else None

    def _expand(self, a):
        return np.repeat(a, self.kind.block_size, axis=self.axis)

    def decode(self) -> np.ndarray:
        """float64 values; exact (an element, a scale and an FP32 tensor scale multiply in < 53 bits)
        unless the product leaves float64's range."""
        k = self.kind
        el = decode(self.elem_codes, k.elem_fmt).astype(np.float64) * float(k.elem_unit)
        v = el * self._expand(k.scale_fmt.decode(self.scale_codes))
        return v * float(self.tensor_scale) if self.tensor_scale is not None else v

    def exact_values(self) -> np.ndarray:
        """Object array of Fractions (or 'nan') per element."""
        k = self.kind
        t = Fraction(float(self.tensor_scale)) if self.tensor_scale is not None else Fraction(1)
        sc = self._expand(self.scale_codes)
        out = np.empty(self.elem_codes.shape, dtype=object)
        for idx in np.ndindex(out.shape):
            e = k.elem_fmt.exact_value(int(self.elem_codes[idx]))
            s = k.scale_fmt.exact_value(int(sc[idx]))
            out[idx] = "nan" if isinstance(e, str) or isinstance(s, str) else e * k.elem_unit * s * t
        return out
