"""Executable specification of the H100 tensor-core datapaths (issue 11), on exact rationals.

Every value is a `fractions.Fraction` (or 'inf' / '-inf' / 'nan' from decode_exact); every rounding
goes through `encode_exact`. Slow and obviously right: the C kernels (csrc/hw.c) are tested against
this, and this is tested against the recorded hardware outputs.

The fused adder (`fused_sum`): the alignment exponent emax is the largest of, for each nonzero
product, its exponent (rule 'input_sum': ea + eb, floor(log2) of each input; rule 'normalized':
floor(log2|a*b|)) and the accumulator's floor(log2|c|); every term is truncated toward zero to a
multiple of 2^(emax - kept_bits); the truncated terms are summed exactly and the sum is rounded into
the accumulator format.
"""
from __future__ import annotations

from fractions import Fraction

from .formats import INF, NAN, NINF, _floor_log2, decode_exact, encode_exact

__all__ = ["fused_sum", "fused_dot_ref", "imma_dot_ref", "mod_split_permutation"]


def mod_split_permutation(block, modulus, groups):
    """Positions of a k-block in processing order: first every k with k % modulus in groups[0], in k
    order, then groups[1], ... (the e4m3 mma on sm_90: block 32, modulus 4, groups ((0, 1), (2, 3)))."""
    perm = [k for g in groups for k in range(block) if k % modulus in g]
    if sorted(perm) != list(range(block)):
        raise ValueError("groups must cover every residue exactly once")
    return tuple(perm)


def _special_mul(a, b):
    """IEEE product when a or b is not finite: 'nan', 'inf', '-inf', or None when both are finite."""
    if a == NAN or b == NAN:
        return NAN
    if isinstance(a, str) or isinstance(b, str):
        other = b if isinstance(a, str) else a
        if not isinstance(other, str) and other == 0:
            return NAN          # inf * 0
        neg = (a == NINF or (not isinstance(a, str) and a < 0)) != (b == NINF or (not isinstance(b, str) and b < 0))
        return NINF if neg else INF
    return None


def _max_binade(fmt) -> Fraction:
    """2^e of the largest finite binade of a float format."""
    return Fraction(2) ** (2**fmt.exp_bits - 2 - fmt.bias)


def _truncate_toward_zero(t: Fraction, q: Fraction) -> Fraction:
    n = abs(t) / q
    m = n.numerator // n.denominator
    return (m if t >= 0 else -m) * q


def fused_sum(a_vals, b_vals, c, acc_fmt, *, kept_bits, product_exponent="input_sum",
              term_truncation="toward_zero", sum_rounding="toward_zero", zero_sign="positive",
              overflow="to_inf"):
    """One fused n-term step: c + sum(a_i * b_i) -> an acc_fmt code.

    a_vals, b_vals: exact input values (Fraction or 'inf' / '-inf' / 'nan'); c: the accumulator's
    exact value (Fraction, or a special string). Returns the acc_fmt code."""
    specials = []
    finite = []
    for a, b in zip(a_vals, b_vals):
        s = _special_mul(a, b)
        if s is not None:
            specials.append(s)
        elif a != 0 and b != 0:
            finite.append((a * b, _floor_log2(abs(a)) + _floor_log2(abs(b))))
    if isinstance(c, str):
        specials.append(c)
    if specials:
        if NAN in specials or (INF in specials and NINF in specials):
            return encode_exact(float("nan"), acc_fmt)
        return encode_exact(float(specials[0]), acc_fmt, overflow="to_inf")
    terms = []
    for p, e_in in finite:
        e = e_in if product_exponent == "input_sum" else _floor_log2(abs(p))
        terms.append((p, e))
    if c != 0:
        terms.append((c, _floor_log2(abs(c))))
    if not terms:
        return encode_exact(0, acc_fmt)                 # +0: signed zeros are not kept
    emax = max(e for _, e in terms)
    q = Fraction(2) ** (emax - kept_bits)
    if term_truncation != "toward_zero" or zero_sign != "positive":
        raise ValueError("the H100 model truncates terms toward zero and keeps no signed zeros")
    total = sum(_truncate_toward_zero(t, q) for t, _ in terms)
    if total == 0:
        return encode_exact(0, acc_fmt)                 # exact cancellation: +0
    # Past the format's range (|sum| >= 2^(emax_fmt + 1)) is +-inf under 'to_inf' whatever the
    # rounding direction (the H100 gives inf, not max-finite, from a truncating adder).
    if overflow == "to_inf" and abs(total) >= 2 * _max_binade(acc_fmt):
        return encode_exact(float(INF if total > 0 else NINF), acc_fmt, overflow="to_inf")
    code = encode_exact(total, acc_fmt, rounding=sum_rounding, overflow="saturate")
    if zero_sign == "positive" and decode_exact(code, acc_fmt) == 0:
        code = 0                                        # an underflow to zero is +0
    return code


def _widen(code, inner_fmt, storage_fmt):
    """An inner-accumulator code (e.g. 1-8-13) as the storage format's code (fp32): exact."""
    v = decode_exact(code, inner_fmt)
    if isinstance(v, str):
        return encode_exact(float(v), storage_fmt, overflow="to_inf")
    neg = code >> (inner_fmt.bits - 1)
    out = encode_exact(v, storage_fmt)
    if v == 0 and neg:
        out |= 1 << (storage_fmt.bits - 1)
    return out


def _add_rne(x_code, y_code, fmt):
    """IEEE addition x + y rounded to nearest even in fmt (codes in and out)."""
    x, y = decode_exact(x_code, fmt), decode_exact(y_code, fmt)
    if isinstance(x, str) or isinstance(y, str):
        vals = [v for v in (x, y) if isinstance(v, str)]
        if NAN in vals or (INF in vals and NINF in vals):
            return encode_exact(float("nan"), fmt)
        return encode_exact(float(vals[0]), fmt, overflow="to_inf")
    s = x + y
    if s == 0:
        xn, yn = x_code >> (fmt.bits - 1), y_code >> (fmt.bits - 1)
        if x == 0 and y == 0 and xn and yn:
            return 1 << (fmt.bits - 1)                 # -0 + -0 = -0
        return 0
    return encode_exact(s, fmt, rounding="nearest_even", overflow="to_inf")


def _mul_rne(x_code, s: Fraction, fmt):
    x = decode_exact(x_code, fmt)
    if isinstance(x, str):
        if x == NAN:
            return encode_exact(float("nan"), fmt)
        neg = (x == NINF) != (s < 0)
        return encode_exact(float("nan"), fmt) if s == 0 else encode_exact(float(NINF if neg else INF), fmt,
                                                                           overflow="to_inf")
    p = x * s
    if p == 0:
        neg = bool(x_code >> (fmt.bits - 1)) != (s < 0)
        return (1 << (fmt.bits - 1)) if neg else 0
    return encode_exact(p, fmt, rounding="nearest_even", overflow="to_inf")


def fused_dot_ref(a_codes, b_codes, c_code, unit, trace=None):
    """One output of a FusedDotUnit: the reduction over k, step by step, as the unit describes.

    a_codes, b_codes: sequences of operand codes (length K); c_code: the initial accumulator code
    (storage format) or None. Returns the output code in the storage format (fp32)."""
    from ..formats import get_format

    af, bf = get_format(unit.a_fmt), get_format(unit.b_fmt)
    storage = get_format(unit.acc_fmt)
    inner = unit.inner_format()
    K = len(a_codes)
    block = len(unit.k_permutation) if unit.k_permutation else unit.k_step
    nblocks = -(-K // block) if K else 0
    a = [decode_exact(int(x), af) for x in a_codes] + [Fraction(0)] * (nblocks * block - K)
    b = [decode_exact(int(x), bf) for x in b_codes] + [Fraction(0)] * (nblocks * block - K)
    if unit.k_permutation:
        a = [a[i * block + p] for i in range(nblocks) for p in unit.k_permutation]
        b = [b[i * block + p] for i in range(nblocks) for p in unit.k_permutation]
    zero = 0
    c_in = zero if c_code is None else int(c_code)
    promote = unit.promotion_interval
    # Where c enters: the outermost accumulator's start, or an epilogue add.
    outer = c_in if (unit.c_add == "accumulator" and promote) else zero
    inner_code = 0
    if unit.c_add == "accumulator" and not promote and c_in:
        v = decode_exact(c_in, storage)
        inner_code = encode_exact(v if not isinstance(v, str) else float(v), inner,
                                  rounding=unit.acc_rounding, overflow="to_inf")
    fs = dict(kept_bits=unit.kept_bits, product_exponent=unit.product_exponent,
              term_truncation=unit.term_truncation, sum_rounding=unit.acc_rounding,
              zero_sign=unit.zero_sign, overflow=unit.acc_overflow)
    done = 0
    for s in range(0, len(a), unit.k_step):
        inner_code = fused_sum(a[s:s + unit.k_step], b[s:s + unit.k_step], decode_exact(inner_code, inner),
                               inner, **fs)
        done += unit.k_step
        if promote and (done % promote == 0 or done == len(a)):
            outer = _add_rne(outer, _widen(inner_code, inner, storage), storage)
            inner_code = 0
        if trace is not None:
            trace.append(outer if promote else _widen(inner_code, inner, storage))
    out = outer if promote else _widen(inner_code, inner, storage)
    scale = decode_exact(encode_exact(Fraction(unit.scale_a) * Fraction(unit.scale_b), storage), storage)
    if scale != 1:
        out = _mul_rne(out, scale, storage)
    if unit.c_add == "epilogue" and c_code is not None:
        out = _add_rne(out, c_in, storage)
    return out


def imma_dot_ref(a_codes, b_codes, c_code, unit, trace=None):
    """One output of an IntMMAUnit: exact products and sums per k_step instruction; the int32
    accumulator wraps modulo 2^32 or is saturated to the INT32 range once per instruction."""
    from ..formats import get_format

    af, bf = get_format(unit.a_fmt), get_format(unit.b_fmt)
    acc = 0 if c_code is None else int(c_code)
    acc = acc - 2**32 if acc >= 2**31 else acc
    K = len(a_codes)
    for s in range(0, K, unit.k_step):
        part = sum(int(decode_exact(int(x), af)) * int(decode_exact(int(y), bf))
                   for x, y in zip(a_codes[s:s + unit.k_step], b_codes[s:s + unit.k_step]))
        acc += part
        if unit.acc_overflow == "wrap":
            acc = (acc + 2**31) % 2**32 - 2**31
        else:
            acc = max(-2**31, min(2**31 - 1, acc))
        if trace is not None:
            trace.append(acc % 2**32)
    return acc % 2**32
