"""Executable specification of block-scaled dot products (issue 17), on exact rationals.

`block_dot_ref` computes one output of a block-scaled fused dot-product datapath from its parameters
(the fields of numsim.units.block_dot.BlockDotUnit, passed as a plain dict), every value a Fraction:

- steps of k_step products (None: all of K); each step's rounded result is the next step's c;
- a term is a product a*b*sa*sb (term_exponent 'product', alignment exponent X(a)+X(b)+X(sa)+X(sb)) or
  a group of group_size products summed exactly and multiplied by sa*sb ('scales', exponent
  X(sa)+X(sb)); c is a term with exponent X(c). X(v) = max(floor(log2|v|), the format's minimum normal
  exponent), X(0) = zero_exponent (None: zero terms take no part in the alignment);
- every term is rounded to a multiple of 2^(xmax - frac_bits) (term_rounding) unless frac_bits is None;
- the exact sum of the terms is rounded once into acc_fmt (acc_rounding); a magnitude beyond the largest
  finite value after that rounding (exponent unbounded) is inf ('to_inf') or the largest finite
  ('saturate'); zero results are +0 unless zero_sign='signed' (an exact zero is +0 always);
- a NaN factor, inf x 0, or infinities of both signs (products and c) give the canonical NaN code
  (all ones but the sign); else an infinity gives that infinity.
Scale codes: e8m0 2^(c - 127) (0xFF NaN); ue4m3 / ue5m3 the non-negative codes of e4m3 / e5m3 with
'fn' specials (the all-ones 7-bit code NaN); with scale_sign 'ignore' bit 7 is dropped first.
MXINT8 elements (int8) are the integer times 2^-6.
"""
from __future__ import annotations

from fractions import Fraction

from ..formats import FloatFormat, get_format
from .formats import INF, NAN, NINF, _floor_log2, decode_exact, encode_exact, max_finite

__all__ = ["block_dot_ref", "scale_value", "elem_value"]

_SCALE = {"e8m0": None, "ue4m3": FloatFormat(4, 3, 7, specials="fn"), "ue5m3": FloatFormat(5, 3, 15, specials="fn")}
_SCALE_EMIN = {"e8m0": -127, "ue4m3": -6, "ue5m3": -14}


def scale_value(code: int, name: str, ignore_sign=False):
    """Exact value of a scale code (Fraction or 'nan')."""
    if name == "e8m0":
        return NAN if code == 0xFF else Fraction(2) ** (code - 127)
    if ignore_sign:
        code &= 0x7F
    if code > 0x7F:
        raise ValueError(f"{name} code {code} has the sign bit set")
    return decode_exact(code, _SCALE[name])


def elem_value(code: int, fmt):
    fmt = get_format(fmt)
    v = decode_exact(code, fmt)
    return v * Fraction(1, 64) if fmt.kind == "int" else v


def _elem_emin(fmt):
    fmt = get_format(fmt)
    return -6 if fmt.kind == "int" else 1 - fmt.bias


def _X(v, emin, ze):
    if v == 0:
        return ze
    return max(_floor_log2(abs(v)), emin)


def _mul(*vs):
    """IEEE product of exact values or 'inf'/'-inf'/'nan'."""
    if any(v == NAN for v in vs):
        return NAN
    if any(isinstance(v, str) for v in vs):
        if any(not isinstance(v, str) and v == 0 for v in vs):
            return NAN
        neg = sum(1 for v in vs if v == NINF or (not isinstance(v, str) and v < 0)) & 1
        return NINF if neg else INF
    out = Fraction(1)
    for v in vs:
        out *= v
    return out


def _round_term(v: Fraction, q: Fraction, mode):
    t = v / q
    fl = t.numerator // t.denominator
    if mode == "toward_neg":
        n = fl
    elif mode == "toward_zero":
        n = fl if t >= 0 else -((-t.numerator) // t.denominator)
    else:                                    # nearest_even
        r = t - fl
        n = fl + (1 if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2) else 0)
    return n * q


def _step(u, a, b, sa, sb, c_code):
    acc = get_format(u["acc_fmt"])
    ze = u["zero_exponent"]
    nan_code = (1 << (acc.bits - 1)) - 1
    vc = decode_exact(c_code, acc)
    prods = [_mul(x, y, s, t) for x, y, s, t in zip(a, b, sa, sb)]
    specials = [p for p in prods + [vc] if isinstance(p, str)]
    if NAN in specials or (INF in specials and NINF in specials):
        return nan_code
    if specials:
        return encode_exact(float(specials[0]), acc, overflow="to_inf")
    terms = [(vc, _X(vc, 1 - acc.bias, ze))]
    ea, eb = _elem_emin(u["a_fmt"]), _elem_emin(u["b_fmt"])
    esa, esb = _SCALE_EMIN[u["a_scale_fmt"]], _SCALE_EMIN[u["b_scale_fmt"]]
    if u["term_exponent"] == "product":
        for x, y, s, t, p in zip(a, b, sa, sb, prods):
            xs = [_X(x, ea, ze), _X(y, eb, ze), _X(s, esa, ze), _X(t, esb, ze)]
            terms.append((p, None if None in xs else sum(xs)))
    else:
        g = u["group_size"]
        for g0 in range(0, len(a), g):
            gsum = sum((x * y for x, y in zip(a[g0:g0 + g], b[g0:g0 + g])), Fraction(0))
            s, t = sa[g0], sb[g0]
            xs = [_X(s, esa, ze), _X(t, esb, ze)]
            terms.append((gsum * s * t, None if None in xs else sum(xs)))
    live = [x for v, x in terms if x is not None and (ze is not None or v != 0)]
    if not live:
        return 0
    if u["frac_bits"] is None:
        total = sum(v for v, _ in terms)
    else:
        q = Fraction(2) ** (max(live) - u["frac_bits"])
        total = sum(_round_term(v, q, u["term_rounding"]) for v, _ in terms)
    if total == 0:
        return 0
    # overflow: the rounded magnitude with an unbounded exponent beyond the largest finite value
    big = max_finite(acc)
    ulp_top = Fraction(2) ** (_floor_log2(big) - acc.man_bits)
    limit = big + ulp_top if u["acc_rounding"] == "toward_zero" else big + ulp_top / 2
    if abs(total) >= limit:
        return encode_exact(float("-inf") if total < 0 else float("inf"), acc,
                            overflow="to_inf" if u["acc_overflow"] == "to_inf" else "saturate")
    code = encode_exact(total, acc, rounding=u["acc_rounding"], overflow="saturate")
    if code == 1 << (acc.bits - 1) and u["zero_sign"] == "positive":
        return 0
    return code


def block_dot_ref(u: dict, a_codes, b_codes, sa_codes, sb_codes, c_code=0) -> int:
    """One output code. u: the unit's parameters (a_fmt, b_fmt, a_scale_fmt, b_scale_fmt as names,
    block_size, k_step, group_size, term_exponent, frac_bits, term_rounding, zero_exponent, acc_fmt,
    acc_rounding, acc_overflow, scale_sign, zero_sign); a_codes, b_codes: K element codes;
    sa_codes, sb_codes: one scale code per block of block_size; c_code: the initial accumulator code."""
    K = len(a_codes)
    ig = u["scale_sign"] == "ignore"
    a = [elem_value(int(c), u["a_fmt"]) for c in a_codes]
    b = [elem_value(int(c), u["b_fmt"]) for c in b_codes]
    sa = [scale_value(int(sa_codes[k // u["block_size"]]), u["a_scale_fmt"], ig) for k in range(K)]
    sb = [scale_value(int(sb_codes[k // u["block_size"]]), u["b_scale_fmt"], ig) for k in range(K)]
    w = K if u["k_step"] is None else u["k_step"]
    code = int(c_code)
    for k0 in range(0, K, max(w, 1)):
        sl = slice(k0, k0 + w)
        code = _step(u, a[sl], b[sl], sa[sl], sb[sl], code)
    return code
