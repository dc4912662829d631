"""Standalone floating-point operations on codes: add, sub, mul, div, fma and conversions.

Every numsim float format (any exponent/mantissa widths up to 32 bits, radix 2 or 4, specials
ieee/fn/fnuz/none, subnormals on or off), every deterministic rounding mode plus round to odd, and
the five IEEE 754 exception flags, computed by the C kernels (csrc/fpops.c) on exact integer
significands with one rounding per operation. The interface is Berkeley SoftFloat's: each call returns
(codes, flags) where flags is a uint8 bitmask per element in SoftFloat's (and TestFloat's) bit order,
tininess is detected before or after rounding, and the NaN a result carries follows one of
SoftFloat's specializations:

- ``"x86"`` (SoftFloat ``8086-SSE``): the first signaling NaN operand, else the first NaN, quieted;
  the default NaN is negative (binary16 0xFE00). SoftFloat's default build, and TestFloat's.
- ``"arm"`` (``ARM-VFPv2``): the first signaling NaN quieted, else the first quiet NaN unchanged;
  the default NaN is positive (0x7E00).
- ``"riscv"`` (``RISCV``): always the canonical NaN 0x7E00.

Operands are codes (any unsigned or non-negative integer array) and broadcast against each other.
Formats without inf return the overflow policy's value for an infinite result ("saturate": the largest
finite value, the default; "to_nan": NaN); a NaN result in a format without NaN is +0 with the invalid
flag. Radix-4 formats round exactly as `numsim.encode` does (their threshold and tie rule).
"""
from __future__ import annotations

import numpy as np

from ._ffi import cptr, ffi, lib
from .codec import c_format
from .errors import NumsimError, bad
from .formats import FloatFormat, IntFormat, get_format
from .rounding import OVERFLOW_POLICIES, ROUNDING_MODES, overflow_policy, rounding_mode

INEXACT = 1
UNDERFLOW = 2
OVERFLOW = 4
INFINITE = 8            # IEEE "divide by zero"
DIVIDE_BY_ZERO = INFINITE
INVALID = 16
FLAG_NAMES = {INEXACT: "inexact", UNDERFLOW: "underflow", OVERFLOW: "overflow", INFINITE: "infinite",
              INVALID: "invalid"}

TININESS = {"before": 0, "after": 1}
NAN_RULES = {"x86": 0, "arm": 1, "riscv": 2}
_NAN_ALIASES = {"8086-sse": "x86", "8086_sse": "x86", "x86-sse": "x86", "x86_sse": "x86", "arm-vfpv2": "arm",
                "arm_vfpv2": "arm", "risc-v": "riscv", "canonical": "riscv"}
ROUND_ODD = "odd"
FPOPS_ROUNDING = ("nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos", ROUND_ODD)

_OPS = {"add": 0, "sub": 1, "mul": 2, "div": 3}


def flag_names(mask) -> list[str]:
    """The names of the flags set in one bitmask, in bit order."""
    m = int(mask)
    if not 0 <= m < 32:
        raise bad("mask", "a 5-bit flag mask (0..31)", mask)
    return [name for bit, name in FLAG_NAMES.items() if m & bit]


def fp_rounding(mode, arg="rounding") -> str:
    """A rounding mode of the standalone operations: numsim's deterministic modes or 'odd'."""
    if isinstance(mode, str) and mode.strip().lower() in ("odd", "round_odd", "rodd"):
        return ROUND_ODD
    m = rounding_mode(mode, arg)
    if m == "stochastic":
        raise NumsimError(f"{arg}: stochastic rounding is not an IEEE operation's mode; expected one of "
                          f"{list(FPOPS_ROUNDING)}")
    return m


def nan_rule(rule, arg="nan_rule") -> str:
    r = rule.strip().lower() if isinstance(rule, str) else rule
    r = _NAN_ALIASES.get(r, r)
    if r not in NAN_RULES:
        raise NumsimError(f"{arg}: expected one of {sorted(NAN_RULES)} (SoftFloat 8086-SSE, ARM-VFPv2, RISCV), "
                          f"got {rule!r}")
    return r


def tininess_rule(rule, arg="tininess") -> str:
    r = rule.strip().lower().removesuffix("_rounding") if isinstance(rule, str) else rule
    if r not in TININESS:
        raise NumsimError(f"{arg}: expected 'after' or 'before' (rounding), got {rule!r}")
    return r


def _float_format(fmt, arg):
    try:
        f = get_format(fmt)
    except NumsimError as e:
        raise NumsimError(f"{arg}: {e}") from None
    if not isinstance(f, FloatFormat):
        raise bad(arg, "a float format", f)
    return f


def _env(out_fmt, rounding, overflow, tininess, nan, exact=False):
    r = fp_rounding(rounding)
    env = ffi.new("ns_fp_env *")
    env.rounding = lib.NS_FP_ROUND_ODD if r == ROUND_ODD else ROUNDING_MODES[r]
    env.tininess = TININESS[tininess_rule(tininess)]
    env.nan_rule = NAN_RULES[nan_rule(nan)]
    if not isinstance(exact, (bool, np.bool_)):
        raise bad("exact", "True or False", repr(exact))
    env.exact = int(exact)
    if isinstance(out_fmt, IntFormat):
        # an out-of-range result is IEEE's invalid operation, with the NaN rule's integer
        if overflow is not None:
            raise NumsimError("overflow: an integer result has no overflow policy (out of range is invalid); "
                              f"got {overflow!r}")
        return env
    if r == ROUND_ODD and out_fmt.radix == 4:
        raise NumsimError(f"rounding: 'odd' needs a radix-2 result format; {out_fmt} is radix 4")
    o = overflow_policy(overflow, out_fmt)
    if o not in ("to_inf", "saturate", "to_nan"):
        raise NumsimError(f"overflow: expected 'to_inf', 'saturate' or 'to_nan' for an IEEE operation, got {overflow!r}")
    env.overflow = OVERFLOW_POLICIES[o]
    return env


def _codes(x, fmt, arg):
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise bad(arg, "an array of codes", repr(e)) from None
    if a.dtype.kind not in "iu" or a.dtype == np.bool_:
        raise bad(arg, f"integer codes of {fmt}", f"dtype {a.dtype}")
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        flat = a.reshape(-1)
        excluded = 2 ** (fmt.bits - 1) if getattr(fmt, "symmetric", False) else None
        if lo < 0 or hi >= 2**fmt.bits or (excluded is not None and (flat == excluded).any()):
            bad_i = int(np.flatnonzero((flat < 0) | (flat >= 2**fmt.bits) | (flat == (excluded or -1)))[0])
            raise bad(arg, f"codes of the {fmt.bits}-bit format {fmt} in [0, {2**fmt.bits})"
                      + (f" except {excluded}" if excluded is not None else ""),
                      f"{int(flat[bad_i])} at flat index {bad_i}")
    return a


def _run(kind, operands, in_fmt, out_fmt, rounding, overflow, tininess, nan, exact=False):
    env = _env(out_fmt, rounding, overflow, tininess, nan, exact)
    arrays = np.broadcast_arrays(*[a for a, _ in operands])
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a.reshape(-1), dtype=np.uint32) for a in arrays]
    n = flat[0].size
    z = np.empty(n, dtype=np.uint32)
    flags = np.empty(n, dtype=np.uint8)
    fa, fz = c_format(in_fmt), c_format(out_fmt)
    err = ffi.new("int64_t *")
    ptrs = [cptr("uint32_t *", a) for a in flat]
    zp, fp = cptr("uint32_t *", z), cptr("uint8_t *", flags)
    if kind == "fma":
        st = lib.ns_fp_fma_vec(fa, fz, env, ptrs[0], ptrs[1], ptrs[2], n, zp, fp, err)
    elif kind == "convert":
        st = lib.ns_fp_convert_vec(fa, fz, env, ptrs[0], n, zp, fp, err)
    else:
        st = lib.ns_fp_binary_vec(_OPS[kind], fa, fz, env, ptrs[0], ptrs[1], n, zp, fp, err)
    if st:  # every argument was checked above; a status here is a numsim bug
        raise NumsimError(f"{kind}: the C kernel refused its arguments (status {st}, element {err[0]})")
    return z.astype(out_fmt.dtype).reshape(shape), flags.reshape(shape)


def _binary(kind, a, b, fmt, rounding, out_fmt, overflow, tininess, nan):
    f = _float_format(fmt, "fmt")
    z = f if out_fmt is None else _float_format(out_fmt, "out_fmt")
    return _run(kind, [(_codes(a, f, "a"), f), (_codes(b, f, "b"), f)], f, z, rounding, overflow, tininess, nan)


def add(a, b, fmt, rounding="nearest_even", *, out_fmt=None, overflow=None, tininess="after", nan_rule="x86"):
    """a + b rounded once: (codes of out_fmt (default fmt), uint8 flags)."""
    return _binary("add", a, b, fmt, rounding, out_fmt, overflow, tininess, nan_rule)


def sub(a, b, fmt, rounding="nearest_even", *, out_fmt=None, overflow=None, tininess="after", nan_rule="x86"):
    """a - b rounded once."""
    return _binary("sub", a, b, fmt, rounding, out_fmt, overflow, tininess, nan_rule)


def mul(a, b, fmt, rounding="nearest_even", *, out_fmt=None, overflow=None, tininess="after", nan_rule="x86"):
    """a * b rounded once."""
    return _binary("mul", a, b, fmt, rounding, out_fmt, overflow, tininess, nan_rule)


def div(a, b, fmt, rounding="nearest_even", *, out_fmt=None, overflow=None, tininess="after", nan_rule="x86"):
    """a / b rounded once (x / 0 raises the infinite, i.e. divide-by-zero, flag)."""
    return _binary("div", a, b, fmt, rounding, out_fmt, overflow, tininess, nan_rule)


def fma(a, b, c, fmt, rounding="nearest_even", *, out_fmt=None, overflow=None, tininess="after", nan_rule="x86"):
    """a * b + c with one rounding. a, b are codes of fmt; c and the result are codes of out_fmt
    (default fmt), so a mixed-precision FMA (fp8 products into fp16) is one call."""
    f = _float_format(fmt, "fmt")
    z = f if out_fmt is None else _float_format(out_fmt, "out_fmt")
    ops = [(_codes(a, f, "a"), f), (_codes(b, f, "b"), f), (_codes(c, z, "c"), z)]
    return _run("fma", ops, f, z, rounding, overflow, tininess, nan_rule)


def _any_format(fmt, arg):
    try:
        return get_format(fmt)
    except NumsimError as e:
        raise NumsimError(f"{arg}: {e}") from None


def convert(a, from_fmt, to_fmt, rounding="nearest_even", *, overflow=None, tininess="after", nan_rule="x86",
            exact=False):
    """Codes of from_fmt converted to to_fmt (rounded once; exact when widening). One side may be an
    integer format (SoftFloat's f16_to_i32 / i32_to_f16): a float -> integer conversion out of range or
    of a NaN raises invalid and returns the NaN rule's integer (x86: the most negative code, or all
    ones when unsigned); it raises inexact for a rounded value only with exact=True (SoftFloat's
    `exact`, TestFloat's -exact)."""
    f = _any_format(from_fmt, "from_fmt")
    z = _any_format(to_fmt, "to_fmt")
    if isinstance(f, IntFormat) and isinstance(z, IntFormat):
        raise bad("to_fmt", "a float format when from_fmt is an integer format", z)
    if exact and not isinstance(z, IntFormat):
        raise bad("exact", "False unless to_fmt is an integer format", exact)
    return _run("convert", [(_codes(a, f, "a"), f)], f, z, rounding, overflow, tininess, nan_rule, exact)
