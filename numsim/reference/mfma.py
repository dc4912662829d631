"""Executable spec of the AMD CDNA matrix cores (numsim.units.matrix_core), in exact Fractions, one
output at a time. Written from the facts in that module's docstring (MMA-Sim's model), not from the
unit's code; tests compare the two and both with MMA-Sim's vectors."""
from __future__ import annotations

from fractions import Fraction

from .formats import decode_exact, encode_exact

F32_NAN = 0x7FC00000
_TWO = Fraction(2)


def _floor(x: Fraction) -> int:
    return x.numerator // x.denominator


def _trunc(x: Fraction) -> int:
    return _floor(x) if x >= 0 else -_floor(-x)


def _floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while _TWO ** e > x:
        e -= 1
    while _TWO ** (e + 1) <= x:
        e += 1
    return e


def _sig_exp(v: Fraction, emin: int, zero_exponent: int):
    """(significand, exponent) with v = sig * 2^exp: |sig| in [1, 2), or below 1 at exp = emin for
    a subnormal; a zero at zero_exponent."""
    if v == 0:
        return Fraction(0), zero_exponent
    e = max(_floor_log2(abs(v)), emin)
    return v / _TWO ** e, e


def _fused(terms, F):
    """Terms (sig, exp) aligned to their largest exponent E, each truncated toward zero to F fraction
    bits: (exact sum of the truncated significands, E)."""
    E = max(e for _, e in terms)
    return sum(Fraction(_trunc(s * _TWO ** (F + e - E)), 2 ** F) for s, e in terms), E


def _is_special(v):
    return isinstance(v, str)


def _special_result(avals, bvals, cval):
    """fp32 code when an inf or NaN input decides the result (as float arithmetic), else None."""
    nan = cval == "nan"
    pinf, ninf = cval == "inf", cval == "-inf"
    for x, y in zip(avals, bvals):
        if not (_is_special(x) or _is_special(y)):
            continue
        if x == "nan" or y == "nan" or x == 0 or y == 0:
            nan = True
            continue
        neg = (x == "-inf" or (not _is_special(x) and x < 0)) != (y == "-inf" or (not _is_special(y) and y < 0))
        ninf, pinf = ninf or neg, pinf or not neg
    if nan or (pinf and ninf):
        return F32_NAN
    if pinf:
        return 0x7F800000
    if ninf:
        return 0xFF800000
    return None


def fused_floor_group(avals, bvals, c_code, unit, afmt, bfmt, f32):
    """One CDNA3 group: c (fp32 code) + the products of the exact input values -> fp32 code."""
    cval = decode_exact(c_code, f32)
    sp = _special_result(avals, bvals, cval)
    if sp is not None:
        return sp
    prods = [x * y for x, y in zip(avals, bvals)]
    big_pos = any(p >= _TWO ** 128 for p in prods)
    big_neg = any(p <= -(_TWO ** 128) for p in prods)
    if big_pos or big_neg:
        return F32_NAN if big_pos and big_neg else (0x7F800000 if big_pos else 0xFF800000)
    terms = []
    for x, y in zip(avals, bvals):
        sx, ex = _sig_exp(x, 1 - afmt.bias, unit.zero_exponent)
        sy, ey = _sig_exp(y, 1 - bfmt.bias, unit.zero_exponent)
        terms.append((sx * sy, ex + ey))
    F = unit.term_frac_bits
    if unit.even_odd_split:
        s0, e0 = _fused(terms[0::2], F)
        s1, e1 = _fused(terms[1::2], F)
        e = max(e0, e1)
        s = Fraction(_floor(s0 * _TWO ** (F + e0 - e)), 2 ** F) + Fraction(_floor(s1 * _TWO ** (F + e1 - e)), 2 ** F)
    else:
        s, e = _fused(terms, F)
    sc, ec = _sig_exp(cval, -126, unit.zero_exponent)
    E = max(e, ec)
    s = Fraction(_floor(s * _TWO ** (unit.sum_frac_bits + e - E)), 2 ** unit.sum_frac_bits)
    if unit.c_drop_binades is not None and ec < E - unit.c_drop_binades:
        sc = Fraction(0)
    else:
        sc = Fraction(_floor(sc * _TWO ** (unit.c_frac_bits + ec - E)), 2 ** unit.c_frac_bits)
    total = (s + sc) * _TWO ** E
    return 0 if total == 0 else encode_exact(total, f32, "nearest_even", overflow="to_inf")


def _rne_f32(x: Fraction, negative_zero: bool, f32):
    """x rounded to nearest even fp32; a result that rounds to zero keeps x's sign (IEEE)."""
    if x == 0:
        return 0x80000000 if negative_zero else 0
    code = encode_exact(x, f32, "nearest_even", overflow="to_inf")
    if code & 0x7FFFFFFF == 0:
        return 0x80000000 if x < 0 else 0
    return code


def _add(x_code, y_code, f32):
    """fp32 RNE addition of two codes (specials as IEEE; NaN is F32_NAN)."""
    x, y = decode_exact(x_code, f32), decode_exact(y_code, f32)
    if _is_special(x) or _is_special(y):
        vals = {v for v in (x, y) if _is_special(v)}
        if "nan" in vals or vals == {"inf", "-inf"}:
            return F32_NAN
        return 0x7F800000 if "inf" in vals else 0xFF800000
    s = x + y
    if s == 0 and x == 0 and y == 0:      # -0 + -0 = -0, every other exact zero sum is +0 (RNE)
        return 0x80000000 if (x_code == 0x80000000 and y_code == 0x80000000) else 0
    return _rne_f32(s, False, f32)


def pairwise_group(a_codes, b_codes, c_code, unit, afmt, bfmt, f32):
    """One CDNA1/2 group: products fmaf(a, b, +0) in fp32, summed by a binary tree of fp32 RNE adds
    (left half the smaller when odd), then c + that; CDNA2 flushes as the unit's docstring says."""
    fl = unit.flush_subnormals
    a_codes = [int(x) for x in a_codes]
    b_codes = [int(x) for x in b_codes]
    if fl:
        a_codes = [_flush_input(x, afmt) for x in a_codes]
        b_codes = [_flush_input(x, bfmt) for x in b_codes]
        c_code = _flush_input(c_code, f32)
    leaves = []
    for x, y in zip(a_codes, b_codes):
        vx, vy = decode_exact(x, afmt), decode_exact(y, bfmt)
        if _is_special(vx) or _is_special(vy):
            leaves.append(_special_result([vx], [vy], Fraction(0)))
            continue
        p = vx * vy
        code = 0 if p == 0 else _rne_f32(p, False, f32)    # fmaf(a, b, +0): exact zero is +0
        leaves.append(_flush_result(code, f32) if fl else code)

    def tree(lo, hi):
        if hi - lo == 1:
            return leaves[lo]
        m = lo + (hi - lo) // 2
        s = _add(tree(lo, m), tree(m, hi), f32)
        return _flush_result(s, f32) if fl else s

    out = _add(c_code, tree(0, len(leaves)), f32)
    return _flush_result(out, f32) if fl else out


def _flush_input(code, fmt):
    """A code whose value is below fmt's minimum normal magnitude (zeros included) -> +0 fp32/fmt code 0."""
    v = decode_exact(code, fmt)
    if not _is_special(v) and abs(v) < _TWO ** (1 - fmt.bias):
        return 0
    return code


def _flush_result(code, f32):
    """An fp32 result below 2^-126 in magnitude -> a zero of its sign."""
    v = decode_exact(code, f32)
    if not _is_special(v) and abs(v) < _TWO ** -126:
        return code & 0x80000000
    return code


def mfma_dot(a_codes, b_codes, c_code, unit, afmt, bfmt, f32):
    """One output of a MatrixCoreUnit: groups of unit.k_step in k order (the last one zero-padded),
    each chained into c."""
    a_codes = [int(x) for x in a_codes]
    b_codes = [int(x) for x in b_codes]
    G = unit.k_step
    while len(a_codes) % G:
        a_codes.append(0)
        b_codes.append(0)
    c = int(c_code)
    for s in range(0, len(a_codes), G):
        if unit.datapath == "pairwise":
            c = pairwise_group(a_codes[s:s + G], b_codes[s:s + G], c, unit, afmt, bfmt, f32)
        else:
            av = [decode_exact(x, afmt) for x in a_codes[s:s + G]]
            bv = [decode_exact(x, bfmt) for x in b_codes[s:s + G]]
            c = fused_floor_group(av, bv, c, unit, afmt, bfmt, f32)
    return c
