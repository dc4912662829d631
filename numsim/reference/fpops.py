"""Executable specification of the standalone FP operations (numsim.fpops): IEEE 754 add, sub, mul,
div, fma and conversion on exact rationals, with the five flags, tininess before/after rounding and
SoftFloat's NaN rules. Test-only: production never imports this.

Rounding reuses the reference encoder (neighbours on the format's grid, then the mode); the flags are
derived here from their IEEE definitions:
- inexact: the delivered result differs from the exact one;
- overflow: the exact result rounded with an unbounded exponent range exceeds the largest finite value;
- tiny: before rounding 0 < |x| < the smallest normal magnitude; after rounding the same test on
  |x| rounded to the format's precision with an unbounded exponent range;
- underflow: tiny and inexact (IEEE's default, non-trapping rule);
- infinite: an exact infinite result from finite operands (x / 0);
- invalid: a signaling NaN operand, inf - inf, 0 * inf, 0 / 0, inf / inf, and a NaN or inf into a
  format that cannot hold it.

`round_f64` is a vectorised form of the same rounding for values that float64 holds exactly (every sum
and product of formats of 8 bits or fewer), for the exhaustive tests.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .formats import (_choose, _floor_log2, _mag_mode, _pack_float, decode_exact, max_finite, min_normal,
                      neighbours)

INEXACT, UNDERFLOW, OVERFLOW, INFINITE, INVALID = 1, 2, 4, 8, 16


def default_overflow(fmt):
    return "to_inf" if fmt.specials == "ieee" else "saturate"


# ---- operand classes --------------------------------------------------------------------------------

class Operand:
    """kind: 'num' (value Fraction, zero with its sign), 'inf', 'nan' (sign, mantissa, M, signaling)."""

    def __init__(self, kind, sign=0, value=Fraction(0), man=0, man_bits=0, signaling=False):
        self.kind, self.sign, self.value = kind, sign, value
        self.man, self.man_bits, self.signaling = man, man_bits, signaling


def operand(code, fmt) -> Operand:
    sign = code >> (fmt.bits - 1)
    v = decode_exact(code, fmt)
    if v == "nan":
        if fmt.specials == "ieee":
            M = fmt.man_bits
            man = code & (2**M - 1)
            return Operand("nan", sign, man=man, man_bits=M, signaling=M >= 2 and not man >> (M - 1))
        if fmt.specials == "fnuz":
            sign = 0                                   # the one NaN has no sign
        return Operand("nan", sign)
    if v in ("inf", "-inf"):
        return Operand("inf", sign)
    return Operand("num", sign, value=v)


def _nan_code(fmt, sign, man=0, man_bits=0):
    """A quiet NaN of fmt carrying the sign and the mantissa's top bits (or None: fmt has no NaN)."""
    if fmt.specials == "ieee":
        M = fmt.man_bits
        top = man << (M - man_bits) if M >= man_bits else man >> (man_bits - M)
        return (sign << (fmt.bits - 1)) | ((2**fmt.exp_bits - 1) << M) | (1 << (M - 1)) | top
    if fmt.specials == "fn":
        return (sign << (fmt.bits - 1)) | (2 ** (fmt.bits - 1) - 1)
    if fmt.specials == "fnuz":
        return 1 << (fmt.bits - 1)
    return None


class Env:
    def __init__(self, rounding="nearest_even", overflow=None, tininess="after", nan_rule="x86"):
        self.rounding, self.overflow, self.tininess, self.nan_rule = rounding, overflow, tininess, nan_rule


def _deliver_nan(fmt, nan: Operand, flags):
    code = _nan_code(fmt, nan.sign, nan.man, nan.man_bits)
    if code is None:                                   # no NaN in fmt: +0 and invalid
        return 0, flags | INVALID
    return code, flags


def _default_nan(fmt, env, flags):
    return _deliver_nan(fmt, Operand("nan", 1 if env.nan_rule == "x86" else 0), flags)


def _select_nan(env, a: Operand, b: Operand, flags):
    """SoftFloat's propagateNaN(a, b) for the chosen specialization; b or a may be a non-NaN."""
    an, bn = a.kind == "nan", b.kind == "nan"
    a_s, b_s = an and a.signaling, bn and b.signaling
    if a_s or b_s:
        flags |= INVALID
    if env.nan_rule == "riscv":
        return Operand("nan", 0), flags
    if env.nan_rule == "x86":
        pick = a if an else b
    else:  # arm
        pick = (a if a_s else b) if (a_s or b_s) else (a if an else b)
    return Operand("nan", pick.sign, man=pick.man, man_bits=pick.man_bits), flags


def _zero_code(fmt, sign):
    if fmt.specials == "fnuz":
        return 0
    return sign << (fmt.bits - 1)


def _inf_result(fmt, env, sign, flags, why):
    if fmt.specials == "ieee":
        return ((sign << (fmt.bits - 1)) | ((2**fmt.exp_bits - 1) << fmt.man_bits)), flags
    flags |= why
    if (env.overflow or default_overflow(fmt)) == "to_nan" and fmt.specials != "none":
        return _nan_code(fmt, sign), flags
    return _pack_float(bool(sign), max_finite(fmt), fmt), flags


# ---- rounding with flags ----------------------------------------------------------------------------

def _unbounded_round(a: Fraction, fmt, mode):
    """|x| rounded to the format's precision with an unbounded exponent range (for tininess after)."""
    if fmt.radix == 4:
        b = a * 2**fmt.phase
        k = _floor_log2(b) // 2
        lo = Fraction(4) ** k
        if lo == b or mode == "down":
            g = lo
        elif mode == "up":
            g = 4 * lo
        else:
            t = 2 * lo if fmt.r4_threshold == "log" else Fraction(5, 2) * lo
            if b != t:
                g = 4 * lo if b > t else lo
            elif mode == "away":
                g = 4 * lo
            else:
                g = lo if (k + fmt.bias) % 2 == 0 else 4 * lo
        return g / 2**fmt.phase
    q = Fraction(2) ** (_floor_log2(a) - fmt.man_bits)
    n = a / q
    lo = math.floor(n)
    if lo == n:
        return a
    frac = n - lo
    if mode == "down":
        up = False
    elif mode == "up":
        up = True
    elif mode == "odd":
        up = lo % 2 == 0
    elif mode == "away":
        up = frac >= Fraction(1, 2)
    else:
        up = frac > Fraction(1, 2) or (frac == Fraction(1, 2) and lo % 2 == 1)
    return (lo + up) * q


def round_value(x: Fraction, fmt, env, flags=0):
    """(code, flags) of the nonzero exact x rounded into fmt."""
    neg = x < 0
    a = abs(x)
    mode = "odd" if env.rounding == "odd" else _mag_mode(env.rounding, neg)
    lo, hi, q = neighbours(a, fmt)
    if mode == "odd":
        if lo is not None and lo == hi:
            g = lo
        elif fmt.radix == 2 and lo is not None:
            g = lo if (lo / q) % 2 == 1 else hi
        else:
            raise ValueError("round to odd is for radix-2 formats")
    else:
        g = _choose(a, lo, hi, q, fmt, mode, 0, 0, 32)
    mn = min_normal(fmt)
    if a < mn:
        tiny = env.tininess == "before" or _unbounded_round(a, fmt, mode) < mn
    else:
        tiny = False
    if g != a:
        flags |= INEXACT
        if tiny:
            flags |= UNDERFLOW
    if g > max_finite(fmt):
        flags |= OVERFLOW | INEXACT
        policy = env.overflow or default_overflow(fmt)
        if policy == "to_inf" and fmt.specials == "ieee" and mode not in ("down", "odd"):
            return ((int(neg) << (fmt.bits - 1)) | ((2**fmt.exp_bits - 1) << fmt.man_bits)), flags
        if policy == "to_nan" and fmt.specials != "none":
            return _nan_code(fmt, int(neg)), flags
        return _pack_float(neg, max_finite(fmt), fmt), flags
    return _pack_float(neg, g, fmt), flags


def _exact_zero_sign(env, sa, sb):
    return sa if sa == sb else int(env.rounding == "toward_neg")


def _deliver(x: Fraction, zero_sign, fmt, env, flags):
    if x == 0:
        return _zero_code(fmt, zero_sign), flags
    return round_value(x, fmt, env, flags)


# ---- operations -------------------------------------------------------------------------------------

def add(a, b, fmt, env: Env, out_fmt=None, subtract=False):
    z = out_fmt or fmt
    A, B = operand(a, fmt), operand(b, fmt)
    if A.kind == "nan" or B.kind == "nan":
        n, fl = _select_nan(env, A, B, 0)
        return _deliver_nan(z, n, fl)
    sb = B.sign ^ int(subtract)
    vb = -B.value if subtract else B.value
    if A.kind == "inf" and B.kind == "inf" and A.sign != sb:
        return _default_nan(z, env, INVALID)
    if A.kind == "inf":
        return _inf_result(z, env, A.sign, 0, INVALID)
    if B.kind == "inf":
        return _inf_result(z, env, sb, 0, INVALID)
    s = A.value + vb
    return _deliver(s, _exact_zero_sign(env, A.sign, sb), z, env, 0)


def sub(a, b, fmt, env, out_fmt=None):
    return add(a, b, fmt, env, out_fmt, subtract=True)


def mul(a, b, fmt, env, out_fmt=None):
    z = out_fmt or fmt
    A, B = operand(a, fmt), operand(b, fmt)
    sign = A.sign ^ B.sign
    if A.kind == "nan" or B.kind == "nan":
        n, fl = _select_nan(env, A, B, 0)
        return _deliver_nan(z, n, fl)
    if A.kind == "inf" or B.kind == "inf":
        if (A.kind == "num" and A.value == 0) or (B.kind == "num" and B.value == 0):
            return _default_nan(z, env, INVALID)
        return _inf_result(z, env, sign, 0, INVALID)
    return _deliver(A.value * B.value, sign, z, env, 0)


def div(a, b, fmt, env, out_fmt=None):
    z = out_fmt or fmt
    A, B = operand(a, fmt), operand(b, fmt)
    sign = A.sign ^ B.sign
    if A.kind == "nan" or B.kind == "nan":
        n, fl = _select_nan(env, A, B, 0)
        return _deliver_nan(z, n, fl)
    if A.kind == "inf":
        if B.kind == "inf":
            return _default_nan(z, env, INVALID)
        return _inf_result(z, env, sign, 0, INVALID)
    if B.kind == "inf":
        return _zero_code(z, sign), 0
    if B.value == 0:
        if A.value == 0:
            return _default_nan(z, env, INVALID)
        return _inf_result(z, env, sign, INFINITE, 0)
    return _deliver(A.value / B.value, sign, z, env, 0)


def fma(a, b, c, fmt, env, out_fmt=None):
    """a * b + c, one rounding; NaNs chosen as softfloat_mulAddF16 does: (a, b) first, then with c."""
    z = out_fmt or fmt
    A, B, C = operand(a, fmt), operand(b, fmt), operand(c, z)
    sp = A.sign ^ B.sign
    if A.kind == "nan" or B.kind == "nan":
        n, fl = _select_nan(env, A, B, 0)
        n, fl = _select_nan(env, n, C, fl)
        return _deliver_nan(z, n, fl)
    a_zero = A.kind == "num" and A.value == 0
    b_zero = B.kind == "num" and B.value == 0
    if A.kind == "inf" or B.kind == "inf":
        invalid = a_zero or b_zero or (C.kind == "inf" and C.sign != sp)
        if not invalid:
            if C.kind == "nan":
                n, fl = _select_nan(env, Operand("inf", sp), C, 0)
                return _deliver_nan(z, n, fl)
            return _inf_result(z, env, sp, 0, INVALID)
        n, fl = _select_nan(env, Operand("nan", 1 if env.nan_rule == "x86" else 0), C, INVALID)
        return _deliver_nan(z, n, fl)
    if C.kind == "nan":
        n, fl = _select_nan(env, Operand("num"), C, 0)
        return _deliver_nan(z, n, fl)
    if C.kind == "inf":
        return _inf_result(z, env, C.sign, 0, INVALID)
    s = A.value * B.value + C.value
    product_zero = a_zero or b_zero or A.value * B.value == 0
    if s == 0 and product_zero and C.value == 0:
        return _zero_code(z, _exact_zero_sign(env, sp, C.sign)), 0
    return _deliver(s, int(env.rounding == "toward_neg"), z, env, 0)


def convert(a, fmt, out_fmt, env):
    A = operand(a, fmt)
    if A.kind == "nan":
        n, fl = _select_nan(env, A, A, 0)
        return _deliver_nan(out_fmt, n, fl)
    if A.kind == "inf":
        return _inf_result(out_fmt, env, A.sign, 0, INVALID)
    return _deliver(A.value, A.sign, out_fmt, env, 0)


# ---- vectorised rounding of float64-exact values (finite, nonzero), radix 2 -------------------------------

def round_f64(x, fmt, rounding, tininess="after", overflow=None):
    """(codes, flags) of exact float64 values x (finite, nonzero) rounded into a radix-2 fmt; the same
    definitions as round_value, on numpy arrays."""
    assert fmt.radix == 2
    x = np.asarray(x, dtype=np.float64)
    neg = np.signbit(x)
    a = np.abs(x)
    M, emin = fmt.man_bits, 1 - fmt.bias
    _, e = np.frexp(a)
    e = e.astype(np.int64) - 1                              # floor(log2 a)
    if fmt.subnormals:
        qe = np.maximum(e, emin) - M
    else:
        qe = np.where(e >= emin, e - M, emin)
    n = np.ldexp(a, (-qe).astype(np.int32))                # exact: a / 2^qe
    lo = np.floor(n)
    frac = n - lo
    up_dir = {"toward_zero": np.zeros_like(neg), "toward_neg": neg, "toward_pos": ~neg}

    def choose(lo_, frac_):
        inexact_ = frac_ != 0
        if rounding == "nearest_even":
            up = (frac_ > 0.5) | ((frac_ == 0.5) & (np.mod(lo_, 2) == 1))
        elif rounding == "nearest_away":
            up = frac_ >= 0.5
        elif rounding == "odd":
            up = inexact_ & (np.mod(lo_, 2) == 0)
        else:
            up = inexact_ & up_dir[rounding]
        return lo_ + up, inexact_

    g_n, inexact = choose(lo, frac)
    g = np.ldexp(g_n, qe.astype(np.int32))
    # tininess after rounding: round to M + 1 bits at the unbounded exponent
    nu = np.ldexp(a, (M - e).astype(np.int32))
    lu = np.floor(nu)
    gu_n, _ = choose(lu, nu - lu)
    gu = np.ldexp(gu_n, (e - M).astype(np.int32))
    mn = 2.0**emin
    tiny = (a < mn) & ((tininess == "before") | (gu < mn))
    flags = np.where(inexact, INEXACT, 0) | np.where(inexact & tiny, UNDERFLOW, 0)
    mf = float(max_finite(fmt))
    ovf = g > mf
    flags = flags | np.where(ovf, OVERFLOW | INEXACT, 0)
    # pack
    codes = np.zeros(x.shape, dtype=np.int64)
    gg = np.where(ovf, mf, g)
    _, ge = np.frexp(gg)
    ge = ge.astype(np.int64) - 1
    normal = ge >= emin
    field = np.where(normal, ge + fmt.bias, 0)
    man = np.where(normal, np.ldexp(gg, (M - ge).astype(np.int32)) - 2**M,
                   np.ldexp(gg, M - emin)).astype(np.int64)
    codes = (field << M) | man
    codes = np.where(gg == 0, 0, codes)
    policy = overflow or default_overflow(fmt)
    mode_down = {"toward_zero": np.ones_like(neg), "toward_neg": ~neg, "toward_pos": neg}.get(
        rounding, np.full(neg.shape, rounding == "odd"))
    if policy == "to_inf":
        inf_mag = (2**fmt.exp_bits - 1) << M
        codes = np.where(ovf & ~mode_down, inf_mag, codes)
    sign_bit = 1 << (fmt.bits - 1)
    zero_fnuz = (codes == 0) & (fmt.specials == "fnuz")
    codes = codes | np.where(neg & ~zero_fnuz, sign_bit, 0)
    if policy == "to_nan":
        codes = np.where(ovf, np.where(neg, _nan_code(fmt, 1), _nan_code(fmt, 0)), codes)
    return codes.astype(np.uint32), flags.astype(np.uint8)


# ---- integer conversions -------------------------------------------------------------------------------

def _int_invalid(ifmt, nan_rule, why):
    """SoftFloat's i32_fromPosOverflow / _fromNegOverflow / _fromNaN for any integer format."""
    lo = ifmt.min_value % 2**ifmt.bits
    hi = ifmt.max_value
    if nan_rule == "x86":
        return lo if ifmt.signed else 2**ifmt.bits - 1
    if why == "nan":
        return 0 if nan_rule == "arm" else hi
    return hi if why == "pos" else lo


def float_to_int(a, fmt, ifmt, env, exact=False):
    """(code, flags): IEEE convertToInteger with SoftFloat's out-of-range results."""
    A = operand(a, fmt)
    if A.kind == "nan":
        return _int_invalid(ifmt, env.nan_rule, "nan"), INVALID
    if A.kind == "inf":
        return _int_invalid(ifmt, env.nan_rule, "neg" if A.sign else "pos"), INVALID
    v = A.value
    fl = math.floor(v)
    if fl == v:
        r = fl
    else:
        frac = v - fl
        m = env.rounding
        if m == "nearest_even":
            r = fl + (frac > Fraction(1, 2) or (frac == Fraction(1, 2) and fl % 2 == 1))
        elif m == "nearest_away":
            r = fl + (frac > Fraction(1, 2) or (frac == Fraction(1, 2) and v > 0))
        elif m == "toward_zero":
            r = fl if v > 0 else fl + 1
        elif m == "toward_neg":
            r = fl
        elif m == "toward_pos":
            r = fl + 1
        else:  # odd
            r = fl if fl % 2 == 1 else fl + 1
    if not ifmt.min_value <= r <= ifmt.max_value:
        return _int_invalid(ifmt, env.nan_rule, "neg" if A.sign else "pos"), INVALID
    return int(r) % 2**ifmt.bits, (INEXACT if exact and r != v else 0)


def int_to_float(a, ifmt, fmt, env):
    v = decode_exact(a, ifmt)
    if v == 0:
        return _zero_code(fmt, 0), 0
    return round_value(Fraction(v), fmt, env)
