"""QTensor: codes + format + scale, the only carrier between stages.

value = decode(codes) * scale [* 2^-sample_shift]
- per-tensor: `scale` is a float, `axis` is None;
- per-axis (per-channel): `scale` is a 1-D float64 array of length shape[axis];
- per-sample shift (seed 000): a per-tensor `scale` plus integer shifts s_i in [0, 4] along
  `sample_axis` (sample i's scale is scale * 2^-s_i).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codec import check_codes, decode, encode
from .errors import NumsimError, bad
from .formats import get_format


def _check_scale(scale, shape, axis, arg="scale"):
    if isinstance(scale, (str, bytes, bool, np.bool_)):
        raise bad(arg, "positive real scales", repr(scale))
    try:
        s = np.asarray(scale, dtype=np.float64) if not isinstance(scale, np.ndarray) else scale.astype(np.float64)
    except (TypeError, ValueError):
        raise bad(arg, "positive real scales", repr(scale)) from None
    if axis is None:
        if s.ndim != 0:
            raise bad(arg, "a scalar for a per-tensor scale (axis=None)", f"shape {s.shape}")
    else:
        if s.ndim != 1 or s.shape[0] != shape[axis]:
            raise bad(arg, f"a 1-D array of length {shape[axis]} (shape[{axis}])", f"shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise bad(arg, "finite positive scales", "a non-finite or non-positive scale")
    return s


def _norm_axis(axis, ndim, arg):
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise bad(arg, f"an axis in [{-ndim}, {ndim})", axis)
    return int(axis) % ndim


@dataclass(frozen=True, eq=False)
class QTensor:
    codes: np.ndarray
    fmt: object
    scale: object = 1.0
    axis: int | None = None
    sample_shift: np.ndarray | None = None
    sample_axis: int = 0

    def __post_init__(self):
        fmt = get_format(self.fmt)
        object.__setattr__(self, "fmt", fmt)
        codes = check_codes(self.codes, fmt)
        object.__setattr__(self, "codes", codes)
        axis = _norm_axis(self.axis, codes.ndim, "axis")
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "scale", _check_scale(self.scale, codes.shape, axis))
        if self.sample_shift is not None:
            if axis is not None:
                raise bad("sample_shift", "None when a per-axis scale is given", "both")
            sa = _norm_axis(self.sample_axis, codes.ndim, "sample_axis")
            object.__setattr__(self, "sample_axis", sa)
            sh = np.asarray(self.sample_shift)
            if sh.dtype.kind not in "iu":
                raise bad("sample_shift", "integer shifts", f"dtype {sh.dtype}")
            if sh.ndim != 1 or sh.shape[0] != codes.shape[sa]:
                raise bad("sample_shift", f"a 1-D array of length {codes.shape[sa]}", f"shape {sh.shape}")
            if sh.size and (sh.min() < 0 or sh.max() > 4):
                raise bad("sample_shift", "shifts in [0, 4]", f"values in [{sh.min()}, {sh.max()}]")
            object.__setattr__(self, "sample_shift", sh.astype(np.int8))

    @property
    def shape(self):
        return self.codes.shape

    @property
    def ndim(self):
        return self.codes.ndim

    def _bcast(self, v, axis):
        shape = [1] * self.ndim
        shape[axis] = -1
        return v.reshape(shape)

    def effective_scale(self) -> np.ndarray:
        """The scale of every element's axis position, broadcastable against codes (float64)."""
        if self.axis is not None:
            return self._bcast(self.scale, self.axis)
        s = np.asarray(self.scale, dtype=np.float64)
        if self.sample_shift is not None:
            s = s * self._bcast(np.ldexp(1.0, -self.sample_shift.astype(np.int64)), self.sample_axis)
        return s

    def decode(self) -> np.ndarray:
        """Real values (float64): decoded codes times the scale."""
        return decode(self.codes, self.fmt) * self.effective_scale()

    def decode_codes(self) -> np.ndarray:
        """Decoded codes without the scale (float64)."""
        return decode(self.codes, self.fmt)

    @classmethod
    def from_codes(cls, codes, fmt, scale=1.0, axis=None, sample_shift=None, sample_axis=0):
        return cls(codes, fmt, scale, axis, sample_shift, sample_axis)

    @classmethod
    def quantize(cls, x, fmt, scale=None, axis=None, rounding="nearest_even", seed=0, overflow=None, **kw):
        """Encode x / scale into fmt. scale=None picks max|x| (per axis if axis is given) onto the
        largest finite value of the format (a power-of-two-free max scaling)."""
        from .codec import as_real_array

        import inspect

        # **kw goes on to encode: its keywords, less those quantize takes itself
        passed_on = set(inspect.signature(encode).parameters) - {"values", "fmt", "rounding", "overflow", "seed"}
        unknown = sorted(set(kw) - passed_on)
        if unknown:
            raise bad(unknown[0], f"a keyword of numsim.encode ({', '.join(sorted(passed_on))})",
                      "an unknown keyword argument")
        fmt = get_format(fmt)
        x = as_real_array(x, "x").astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise bad("x", "finite values", "NaN or inf")
        axis = _norm_axis(axis, x.ndim, "axis")
        top = float(fmt.max_value) if fmt.kind == "int" else fmt.max_finite
        if scale is None:
            if axis is None:
                m = float(np.max(np.abs(x))) if x.size else 0.0
                scale = m / top if m > 0 else 1.0
            else:
                red = tuple(i for i in range(x.ndim) if i != axis)
                m = np.max(np.abs(x), axis=red) if x.size else np.zeros(x.shape[axis])
                scale = np.where(m > 0, m / top, 1.0)
        s = _check_scale(scale, x.shape, axis)
        sx = x / (s if axis is None else s.reshape([-1 if i == axis else 1 for i in range(x.ndim)]))
        codes = encode(sx, fmt, rounding=rounding, seed=seed, overflow=overflow, **kw)
        return cls(codes, fmt, s if axis is not None else float(s), axis)

    def __repr__(self):
        sc = f"scale={float(self.scale):g}" if self.axis is None else f"per-axis scale on axis {self.axis}"
        sh = ", per-sample shifts" if self.sample_shift is not None else ""
        return f"QTensor(shape={self.shape}, fmt={self.fmt}, {sc}{sh})"


def as_qtensor(x, fmt=None, arg="a") -> QTensor:
    """A QTensor from a QTensor, or from an integer array of codes in `fmt` (scale 1)."""
    if isinstance(x, QTensor):
        if fmt is not None and get_format(fmt) != x.fmt:
            raise NumsimError(f"{arg}: format {x.fmt} does not match the unit's operand format {get_format(fmt)}")
        return x
    if fmt is None:
        raise bad(arg, "a QTensor (or codes with a format)", type(x).__name__)
    return QTensor(x, fmt)
