"""Oracles for the FP16 adder and the float MAC steps, each computed a different way from the C kernels
(numpy's float64 arithmetic and its float64 -> float16 cast, MPFR, exact value tables), and the rounding
modes they cover.

- nearest_even: the exact float64 sum (two FP16 values span at most 2^16 .. 2^-24, 41 bits, so the
  float64 add is exact), rounded once by numpy's float64 -> float16 cast.
- the other deterministic modes: numpy's nearest-even result r, then the sign of the exact residual
  s - r (exact in float64: both are multiples of 2^-24 below 2^17) says whether r lies on the
  wrong side for the mode; then r steps one FP16 ulp with np.nextafter. nearest_away steps away
  from zero only at an exact tie (|s - r| equal to the distance to the other neighbour).
  Zero sums take IEEE 754's sign: -0 under toward_neg unless both operands are +0.
- MPFR (gmpy2) in a binary16 context (precision 11, emin -23, emax 16, subnormalize), for the four
  modes MPFR has (it has no nearest-away).

Production code: the value tables come from numsim.formats' exact decode, never from numsim.reference
(the tests' independent oracle).
"""
from __future__ import annotations

import numpy as np

from ..errors import bad
from ..formats import get_format

MODES = ("nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos")
MPFR_MODES = ("nearest_even", "toward_zero", "toward_neg", "toward_pos")
ALL_CODES = np.arange(65536, dtype=np.uint32).astype(np.uint16)


def check_modes(modes, arg="modes") -> tuple:
    """The deterministic rounding modes the oracles cover, as a tuple; NumsimError naming `arg` otherwise."""
    if isinstance(modes, str):      # a string is a sequence too, of characters: say what was meant
        raise bad(arg, f"a sequence of {', '.join(MODES)} (e.g. ({modes!r},))", repr(modes))
    try:
        modes = tuple(modes)
    except TypeError:
        raise bad(arg, f"a sequence of {', '.join(MODES)}", repr(modes)) from None
    for m in modes:
        if m not in MODES:
            raise bad(arg, f"a sequence of {', '.join(MODES)}", repr(m))
    if not modes:
        raise bad(arg, f"at least one of {', '.join(MODES)}", "none")
    return modes


def zero_sum_negative(terms, mode):
    """IEEE 754's sign of an exactly zero sum of float64 terms: the common sign when every term is a zero
    of one sign; otherwise -0 under toward_neg and +0 in the other modes."""
    neg = [np.signbit(t) & (t == 0) for t in terms]
    pos = [~np.signbit(t) & (t == 0) for t in terms]
    all_neg = np.logical_and.reduce(neg)
    all_pos = np.logical_and.reduce(pos)
    return all_neg | (~all_pos & (mode == "toward_neg"))



def numpy_round_f16(s, err, mode, zero_negative) -> np.ndarray:
    """FP16 codes of the exact real s + err rounded once in `mode`.

    s: float64 array (the exact sum, or its nearest double), err: float64 array, the exact residual of s
    (0 where s is exact; |err| <= half an ulp of s), or None when every s is exact. zero_negative: the
    sign of an exactly zero sum. numpy's float64 -> float16 cast rounds to nearest even once; when
    err != 0, s is first moved to the odd neighbour on err's side (round to odd: 53 >= 11 + 2 bits, so the
    cast is then correctly rounded). Directed modes and nearest-away then step one FP16 ulp by the sign of
    the exact residual. The work past the cast is done only on the elements that need it.
    """
    if mode not in MODES:
        raise bad("mode", f"one of {', '.join(MODES)}", repr(mode))
    s = np.asarray(s, dtype=np.float64)
    with np.errstate(all="ignore"):
        if err is not None:
            err = np.broadcast_to(np.asarray(err, dtype=np.float64), s.shape)
            fix = (err != 0) & ~(s.view(np.uint64) & 1).astype(bool)
            if fix.any():
                s_odd = s.copy()
                s_odd[fix] = np.nextafter(s[fix], np.where(err[fix] > 0, np.inf, -np.inf))
            else:
                s_odd = s
        else:
            s_odd = s
        out = s_odd.astype(np.float16).view(np.uint16)                   # nearest even, once
        zero = s == 0
        if err is not None:
            zero &= err == 0
        if zero.any():
            out = out.copy() if not out.flags.writeable else out
            out[zero] = np.where(np.broadcast_to(zero_negative, s.shape)[zero], np.uint16(0x8000), np.uint16(0))
        if mode == "nearest_even":
            return out
        r = out.view(np.float16)
        rd = r.astype(np.float64)
        inexact = np.isfinite(s) & (s != rd)
        if err is not None:
            inexact |= np.isfinite(s) & (err != 0)
        idx = np.nonzero(inexact.reshape(-1))[0]
        if idx.size == 0:
            return out
        sf, rf = s.reshape(-1)[idx], rd.reshape(-1)[idx]
        # sign of (exact - r): s - r is exact (r is within an FP16 ulp of s); when s == r it is err's sign
        d = sf - rf
        if err is not None:
            ef = err.reshape(-1)[idx]
            d = np.where(d != 0, d, ef)
        if mode == "toward_pos":
            step, up = d > 0, np.ones(idx.size, bool)
        elif mode == "toward_neg":
            step, up = d < 0, np.zeros(idx.size, bool)
        elif mode == "toward_zero":
            step = ((sf > 0) & (d < 0)) | ((sf < 0) & (d > 0))
            up = sf < 0
        elif mode == "nearest_away":
            up = d > 0
            other = np.nextafter(r.reshape(-1)[idx], np.where(up, np.float16(np.inf), np.float16(-np.inf))
                                 .astype(np.float16)).astype(np.float64)
            tie = np.abs(other - sf) == np.abs(d)
            if err is not None:
                tie &= ef == 0
            step = tie & (np.abs(other) > np.abs(rf))
        else:
            raise bad("mode", f"one of {', '.join(MODES)}", repr(mode))
        sel = idx[step]
        target = np.where(up[step], np.float16(np.inf), np.float16(-np.inf)).astype(np.float16)
        flat = out.reshape(-1).copy()
        flat[sel] = np.nextafter(flat[sel].view(np.float16), target).view(np.uint16)
    return flat.reshape(out.shape)



def numpy_f16_add(a, b, mode="nearest_even") -> np.ndarray:
    """The oracle: FP16 codes of a + b rounded once in `mode` (a, b broadcastable uint16 code arrays).
    NaN results keep numpy's (x86's) propagation: the first NaN operand quieted, else the default NaN."""
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    fa = a.view(np.float16).astype(np.float64)
    fb = b.view(np.float16).astype(np.float64)
    with np.errstate(all="ignore"):
        s = fa + fb                                    # exact: 41 bits at most
    fa, fb, s = np.broadcast_arrays(fa, fb, s)
    zero_neg = zero_sum_negative([fa, fb], mode) if np.any(s == 0) else False
    return numpy_round_f16(s, None, mode, zero_neg)



def mpfr_f16_add(a_codes, b_codes, mode="nearest_even") -> np.ndarray:
    """a + b in an MPFR binary16 context (needs gmpy2); NaN results are the default NaN 0xFE00 unless an
    operand is NaN, in which case the result is the first NaN operand quieted (IEEE 754 leaves the payload
    open; this is the rule numsim documents)."""
    import gmpy2

    if mode not in MPFR_MODES:
        raise bad("mode", f"one of {', '.join(MPFR_MODES)} (MPFR has no nearest-away)", repr(mode))
    rnd = {"nearest_even": gmpy2.RoundToNearest, "toward_zero": gmpy2.RoundToZero,
           "toward_pos": gmpy2.RoundUp, "toward_neg": gmpy2.RoundDown}[mode]
    ctx = gmpy2.context(precision=11, emin=-23, emax=16, subnormalize=True, round=rnd)
    a = np.asarray(a_codes, dtype=np.uint16).ravel()
    b = np.asarray(b_codes, dtype=np.uint16).ravel()
    fa = a.view(np.float16).astype(np.float64)
    fb = b.view(np.float16).astype(np.float64)
    out = np.empty(a.size, dtype=np.uint16)
    with gmpy2.context(ctx):
        for i in range(a.size):
            x, y = fa[i], fb[i]
            if np.isnan(x) or np.isnan(y):
                out[i] = (a[i] if np.isnan(x) else b[i]) | 0x0200
                continue
            s = gmpy2.add(gmpy2.mpfr(float(x)), gmpy2.mpfr(float(y)))
            if gmpy2.is_nan(s):
                out[i] = 0xFE00
            elif s == 0:
                out[i] = 0x8000 if gmpy2.is_signed(s) else 0
            else:
                out[i] = np.float16(float(s)).view(np.uint16)   # s is an FP16 value: exact
    return out



def value_table(fmt):
    """float64 value of every code of fmt (NaN for codes an integer format excludes), from the format's
    exact Fraction decode (pure Python on the descriptor's fields, not the C decoder)."""
    fmt = get_format(fmt)
    codes = np.arange(2**fmt.bits)
    if fmt.kind == "int":
        vals = np.where(fmt.signed & (codes >= 2 ** (fmt.bits - 1)), codes - 2**fmt.bits, codes).astype(np.float64)
        vals[[not fmt.valid_code(int(c)) for c in codes]] = np.nan
        return vals
    vals = []
    for c in range(2**fmt.bits):
        v = fmt.exact_value(c)
        vals.append({"inf": np.inf, "-inf": -np.inf, "nan": np.nan}[v] if isinstance(v, str) else float(v))
    t = np.array(vals, dtype=np.float64)
    # the exact decode gives -0 as Fraction(0): restore the sign bit of float zeros
    neg0 = (codes >> (fmt.bits - 1)).astype(bool) & (t == 0)
    t[neg0] = -0.0
    return t



def two_sum(x, y):
    """s = fl(x + y) and the exact error e (x + y = s + e), Knuth's branch-free TwoSum."""
    with np.errstate(all="ignore"):
        s = x + y
        bb = s - x
        e = (x - (s - bb)) + (y - bb)
        e = np.where(np.isfinite(s), e, 0.0)
    return s, e



def numpy_f16_mac_step(acc, prods, mode):
    """FP16 codes of acc + sum(prods) rounded once (acc: uint16 codes (n,), prods: float64 (n, g), exact
    products). NaN rules of the units: a NaN accumulator propagates quieted; a NaN product (NaN operand,
    0 x inf) or inf - inf gives the default NaN 0xFE00."""
    acc = np.asarray(acc, dtype=np.uint16)
    av = acc.view(np.float16).astype(np.float64)
    s, e = av, np.zeros_like(av)
    terms = [av]
    for j in range(prods.shape[1]):
        p = prods[:, j]
        terms.append(p)
        s, e1 = two_sum(s, p)
        e = e + e1            # exact for the sums checked here: the unit sums fit a double, or have one product
    out = numpy_round_f16(s, e, mode, zero_sum_negative(terms, mode))
    nan_prod = np.isnan(prods).any(axis=1)
    with np.errstate(all="ignore"):
        inf_clash = np.isinf(prods).any(axis=1) & np.isnan(np.sum(np.concatenate([av[:, None], prods], 1), 1))
    out = np.where(nan_prod | inf_clash, np.uint16(0xFE00), out)
    return np.where(np.isnan(av), acc | np.uint16(0x0200), out).astype(np.uint16)
