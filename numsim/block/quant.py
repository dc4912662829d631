"""The block quantizer: a policy (frozen data) turns real values into a BlockTensor.

Steps, all in FP32 where the hardware computes in FP32:
1. amax per block (exact).
2. the block scale, by `scale_rule`:
   "floor"  (OCP MX): 2^(floor(log2 amax) - emax_elem), as an E8M0 code (clamped to its range);
   "rceil"          : amax / elem_max in FP32, rounded up to the scale format (a power of two for E8M0);
   "nvfp4"          : tensor scale S = fp32(amax_tensor / (elem_max * max_scale)) (1.0 for an all-zero
                      tensor); block scale fp32(fp32(amax / elem_max) / S) rounded nearest-even into the
                      scale format (saturating).
3. the element divisor d = fp32(scale * elem_unit * S); elements x / d (`scale_op`="div") or
   x * fp32(1 / d) ("recip_mul"), both in FP32; a block whose divisor is 0 gives zero elements.
4. element rounding by numsim.encode from those FP32 values: nearest_even, or stochastic with
   `random_bits` bits from the counter-based generator keyed by (seed, flat C-order index);
   overflow "saturate" or "nan" (element formats with a NaN only).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..codec import encode
from ..errors import NumsimError, bad
from .tensor import BlockKind, BlockTensor, block_view, get_kind

SCALE_RULES = ("floor", "rceil", "nvfp4")
SCALE_OPS = ("div", "recip_mul")
ELEM_ROUNDINGS = ("nearest_even", "stochastic")
ELEM_OVERFLOWS = ("saturate", "nan")


@dataclass(frozen=True)
class BlockPolicy:
    scale_rule: str = "floor"
    scale_op: str = "div"
    rounding: str = "nearest_even"
    random_bits: int = 32
    overflow: str = "saturate"

    def __post_init__(self):
        for key, allowed in (("scale_rule", SCALE_RULES), ("scale_op", SCALE_OPS),
                             ("rounding", ELEM_ROUNDINGS), ("overflow", ELEM_OVERFLOWS)):
            if getattr(self, key) not in allowed:
                raise bad(key, f"one of {allowed}", repr(getattr(self, key)))
        if isinstance(self.random_bits, bool) or not isinstance(self.random_bits, (int, np.integer)) \
                or not 1 <= self.random_bits <= 32:
            raise bad("random_bits", "an integer in 1..32", repr(self.random_bits))


POLICIES = {
    "ocp": BlockPolicy("floor", overflow="saturate"),
    "rceil": BlockPolicy("rceil"),
    "nvfp4": BlockPolicy("nvfp4"),
}


def get_policy(policy) -> BlockPolicy:
    if isinstance(policy, BlockPolicy):
        return policy
    if isinstance(policy, str) and policy in POLICIES:
        return POLICIES[policy]
    raise NumsimError(f"policy: expected a BlockPolicy or one of {sorted(POLICIES)}, got {policy!r}")


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def quantize_blocks(values, kind, policy="ocp", axis=-1, seed=0) -> BlockTensor:
    """Quantize finite real values into a BlockTensor of `kind` along `axis` under `policy`."""
    k: BlockKind = get_kind(kind)
    p = get_policy(policy)
    x = np.asarray(values)
    if x.dtype.kind != "f" or x.ndim == 0:
        raise bad("values", "a float array with at least one axis", x.dtype)
    x = x.astype(np.float32)   # the quantizer works on FP32 inputs
    if not np.all(np.isfinite(x)):
        raise bad("values", "finite values", "inf or NaN")
    if p.overflow == "nan" and not k.elem_fmt.has_nan:
        raise bad("policy.overflow", f"'saturate' for {k.elem_fmt} (no NaN code)", "'nan'")
    if (p.scale_rule == "nvfp4") != k.tensor_scale:
        raise bad("policy.scale_rule", f"{'nvfp4' if k.tensor_scale else 'floor or rceil'} for kind {k.name}",
                  repr(p.scale_rule))
    if p.scale_rule == "floor" and k.scale_fmt.man_bits != 0:
        raise bad("policy.scale_rule", "'rceil' or 'nvfp4' for a scale with mantissa bits", "'floor'")
    axis, nblocks = block_view(x.shape, axis, k.block_size)
    xb = np.moveaxis(x, axis, -1)
    xb = xb.reshape(xb.shape[:-1] + (nblocks, k.block_size))
    amax = np.abs(xb).max(axis=-1)                        # exact, FP32
    elem_max = float(k.elem_max)
    S = None
    if p.scale_rule == "floor":
        # floor(log2 amax) exactly (frexp), minus emax_elem; E8M0's exponent range clamps
        mant, ex = np.frexp(np.where(amax == 0, 1.0, amax).astype(np.float64))
        e = np.where(amax == 0, -k.scale_fmt.bias, ex.astype(np.int64) - 1 - k.elem_emax)
        scodes = np.clip(e + k.scale_fmt.bias, 0, k.scale_fmt.max_code).astype(np.uint8)
    elif p.scale_rule == "rceil":
        scodes = k.scale_fmt.encode(_f32(amax / np.float32(elem_max)), "toward_pos")
    else:
        smax = float(k.scale_fmt.exact_value(k.scale_fmt.max_code))
        t_amax = np.abs(x).max()
        S = np.float32(1.0) if t_amax == 0 else np.float32(t_amax / np.float32(elem_max * smax))
        scodes = k.scale_fmt.encode(_f32(_f32(amax / np.float32(elem_max)) / S), "nearest_even")
    sval = k.scale_fmt.decode(scodes)
    # divisor in FP32: scale * elem_unit is exact (powers of two / few-bit scales in FP32's range
    # up to FP32 subnormal rounding), times the tensor scale rounds once
    d = _f32(_f32(sval) * np.float32(k.elem_unit))
    if S is not None:
        d = _f32(d * S)
    d = d[..., None]
    safe = np.where(d == 0, np.float32(1), d)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if p.scale_op == "div":
            y = _f32(xb / safe)
        else:
            y = _f32(xb * _f32(np.float32(1) / safe))
    # a zero divisor gives zero elements; a zero element stays zero (0 * fp32(1/d) is NaN when 1/d overflows)
    y = np.where((d == 0) | (xb == 0), xb * np.float32(0), y)        # keeps the sign of -0
    # FP32 overflow (recip_mul of a tiny divisor): the element saturates / goes NaN like any overflow
    y = np.where(np.isinf(y), np.sign(y) * np.float32(3.0e38), y).astype(np.float32)
    y = np.moveaxis(y.reshape(y.shape[:-2] + (nblocks * k.block_size,)), -1, axis)
    y = np.ascontiguousarray(y)
    if k.elem_fmt.kind == "int":
        overflow = "saturate"
    else:
        overflow = "to_nan" if p.overflow == "nan" else "saturate"
    codes = encode(y, k.elem_fmt, rounding=p.rounding, overflow=overflow, seed=seed, random_bits=p.random_bits)
    scodes = np.ascontiguousarray(np.moveaxis(scodes, -1, axis))
    return BlockTensor(k, axis, codes, scodes, None if S is None else float(S))
