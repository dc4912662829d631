"""Kernels of the block-scaled dot unit (numsim.units.block_dot.BlockDotUnit).

- `block_dot.mac_level`: the definition, on Python integers one output at a time (BlockDotUnit.fused_step).
- `block_dot.numpy`: the same steps on int64 numpy arrays over whole tiles (see `_numpy_gemm`)."""
from __future__ import annotations

from . import Kernel, register


def _always(unit, problem):
    return None


register(Kernel(name="block_dot.mac_level", level="python",
                proof="the definition: every fused step of the unit on Python integers (BlockDotUnit.fused_step); "
                      "tests/test_block_dot.py checks it against numsim.reference.block_dot and the MMA-Sim vectors",
                domain=_always, run=lambda unit, p: unit.mac_level_gemm(p)))


# ---- the numpy kernel ---------------------------------------------------------------------------------
"""Proof of `block_dot.numpy`: per output and step it forms the MAC level's terms (the same integer
significands, lsb and alignment exponents from the same per-code tables), rounds each one to a multiple
of 2^(xmax - frac_bits) with the same integer shifts, sums them exactly in int64 and rounds the sum into
acc_fmt with the same integer steps. int64 is exact because every term is below 2^(frac_bits + t) where
t bounds a term's value over 2^xmax (16 for a product of four significands in [1, 2); group_size x the
largest element product x 4 for a group term) and the step has at most k_step + 1 terms: `_domain`
checks that bound before running. The exact mode (frac_bits None) takes frac_bits = xmax - (lowest
lsb) per output; outputs whose span breaks the bound are computed by the MAC level's own step
(info["fallback"] counts them). tests/test_block_dot.py compares the two kernels on every preset and
variant with edge codes, specials and wide scale ranges."""

import numpy as np  # noqa: E402

from ..units.base import GemmResult  # noqa: E402

_LIMIT = 62


def _term_bits(unit):
    """Bits of a term over 2^(xmax - frac_bits) beyond frac_bits, for the kernel's int64 bound."""
    ta, tb, tsa, tsb = unit.tables
    if unit.term_exponent == "product":
        return 4
    vmax = max(int(ta.m.max()), 1) * max(int(tb.m.max()), 1) * unit.group_size
    # |group value| <= vmax * 2^(qa + qb); relative to the scales' 2^x the term is below vmax 2^(qa+qb) * 4
    return max(0, (vmax.bit_length() + ta.quantum + tb.quantum)) + 2


def _nterms(unit, K):
    w = K if unit.k_step is None else unit.k_step
    return (w if unit.term_exponent == "product" else -(-w // unit.group_size)) + 1


def _domain(unit, p):
    ta, tb, tsa, tsb = unit.tables
    if unit.term_exponent == "scales":
        gbits = ta.m_bits + tb.m_bits + (unit.group_size - 1).bit_length()
        if gbits + tsa.man + tsb.man + 2 > _LIMIT:
            return f"a group sum of {unit.a_fmt.name} x {unit.b_fmt.name} products needs {gbits} bits (int64 holds {_LIMIT})"
    if unit.frac_bits is not None:
        need = unit.frac_bits + _term_bits(unit) + _nterms(unit, p.shape[1]).bit_length()
        if need > _LIMIT:
            return f"frac_bits={unit.frac_bits}: the aligned sum needs {need} bits (int64 holds {_LIMIT})"
    return None


def _shift_round_np(P, sh, rounding):
    """P * 2^sh rounded to integers (the MAC level's _shift_round, elementwise)."""
    up = np.clip(sh, 0, 62)
    s = np.clip(-sh, 0, 63)
    left = np.left_shift(P, up)
    if rounding == "toward_neg":
        right = np.right_shift(P, s)
    else:
        mag = np.abs(P)
        q = np.right_shift(mag, s)
        if rounding == "nearest_even":
            rem = mag - np.left_shift(q, np.minimum(s, 62)) * (s < 63)
            half = np.left_shift(np.int64(1), np.maximum(s - 1, 0))
            q = q + ((s > 0) & ((rem > half) | ((rem == half) & ((q & 1) == 1))))
        right = np.where(P < 0, -q, q)
    return np.where(sh >= 0, left, right)


def _bit_length(mag):
    _, e2 = np.frexp(mag.astype(np.float64))
    e2 = e2.astype(np.int64)
    return np.where(np.right_shift(mag, np.clip(e2 - 1, 0, 63)) == 0, e2 - 1, e2)


def _round_into_np(neg, mag, base, fmt, rounding, overflow):
    """Codes of (-1)^neg mag 2^base (mag > 0 where it matters) rounded into fmt (the MAC level's _round_into)."""
    mb = fmt.man_bits
    emin = 1 - fmt.bias
    emax = (1 << fmt.exp_bits) - 2 - fmt.bias
    bl = _bit_length(mag)
    e = base + bl - 1
    q = np.maximum(e - mb, emin - mb)
    sh = q - base
    left = np.left_shift(mag, np.clip(-sh, 0, 62))
    s = np.clip(sh, 0, 63)
    mant = np.right_shift(mag, s)
    if rounding == "nearest_even":
        rem = mag - np.left_shift(mant, np.minimum(s, 62)) * (s < 63)
        half = np.left_shift(np.int64(1), np.maximum(s - 1, 0))
        mant = mant + ((s > 0) & ((rem > half) | ((rem == half) & ((mant & 1) == 1))))
    mant = np.where(sh <= 0, left, mant)
    carry = mant == (1 << (mb + 1))
    mant = np.where(carry, mant >> 1, mant)
    q = q + carry
    sign = neg.astype(np.int64) << (fmt.bits - 1)
    lead = q + _bit_length(np.maximum(mant, 1)) - 1
    over = (mant > 0) & (lead > emax)
    normal = mant >= (1 << mb)
    code = np.where(normal, ((q + mb + fmt.bias) << mb) | (mant - (1 << mb)), mant)
    if overflow == "to_inf":
        big = ((1 << fmt.exp_bits) - 1) << mb
    else:
        big = ((emax + fmt.bias) << mb) | ((1 << mb) - 1)
    code = np.where(over, big, code)
    return sign | code


def _acc_fields_np(c, fmt):
    c = c.astype(np.int64)
    mb, eb = fmt.man_bits, fmt.exp_bits
    neg = ((c >> (fmt.bits - 1)) & 1).astype(bool)
    e = (c >> mb) & ((1 << eb) - 1)
    man = c & ((1 << mb) - 1)
    special = e == (1 << eb) - 1
    nan = special & (man != 0)
    inf = special & (man == 0)
    sig = np.where(special, 0, np.where(e == 0, man, man | (1 << mb)))
    x = np.where(e == 0, 1 - fmt.bias, e - fmt.bias)
    return nan, inf, neg, sig, x


def _step_np(unit, a, b, sa_k, sb_k, cc, F):
    """One fused step of a row chunk: a (m, s), b (s, n) codes; sa_k (m, s), sb_k (s, n) the scale code of
    every k; cc (m, n) accumulator codes -> (codes, fallback mask)."""
    ta, tb, tsa, tsb = unit.tables
    acc = unit.acc_fmt
    ze = unit.zero_exponent
    cnan, cinf, cneg, csig, cx = _acc_fields_np(cc, acc)
    # specials, only when some input has one
    anyspec = (ta.nan[a].any() or ta.inf[a].any() or tb.nan[b].any() or tb.inf[b].any() or tsa.nan[sa_k].any()
               or tsb.nan[sb_k].any() or tsa.inf[sa_k].any() or tsb.inf[sb_k].any() or cnan.any() or cinf.any())
    if anyspec:
        fa_nan = ta.nan[a] | tsa.nan[sa_k]
        fb_nan = tb.nan[b] | tsb.nan[sb_k]
        fa_inf = ta.inf[a] | tsa.inf[sa_k]
        fb_inf = tb.inf[b] | tsb.inf[sb_k]
        fa_zero = ta.zero[a] | tsa.zero[sa_k]
        fb_zero = tb.zero[b] | tsb.zero[sb_k]
        pn = (fa_nan[:, :, None] | fb_nan[None]
              | ((fa_inf[:, :, None] | fb_inf[None]) & (fa_zero[:, :, None] | fb_zero[None])))
        pi = (fa_inf[:, :, None] | fb_inf[None]) & ~pn
        pneg = ta.neg[a][:, :, None] ^ tb.neg[b][None]
        pos_inf = (pi & ~pneg).any(axis=1) | (cinf & ~cneg)
        neg_inf = (pi & pneg).any(axis=1) | (cinf & cneg)
        out_nan = pn.any(axis=1) | cnan | (pos_inf & neg_inf)
        out_inf = (pos_inf | neg_inf) & ~out_nan
    # terms
    if unit.term_exponent == "product":
        xa = np.where(ta.zero[a], 0 if ze is None else ze, ta.x[a]) + np.where(
            tsa.zero[sa_k], 0 if ze is None else ze, tsa.x[sa_k])
        xb = np.where(tb.zero[b], 0 if ze is None else ze, tb.x[b]) + np.where(
            tsb.zero[sb_k], 0 if ze is None else ze, tsb.x[sb_k])
        pa = ta.sig[a] * tsa.sig[sa_k]
        pb = tb.sig[b] * tsb.sig[sb_k]
        P = pa[:, :, None] * pb[None]
        P = np.where(ta.neg[a][:, :, None] ^ tb.neg[b][None], -P, P)
        X = xa[:, :, None] + xb[None]
        lsb = X - (ta.man + tb.man + tsa.man + tsb.man)
    else:
        gs = unit.group_size
        s = a.shape[1]
        ng = -(-s // gs)
        ma = np.where(ta.neg[a], -ta.m[a], ta.m[a])
        mbv = tb.m[b]
        prod = ma[:, :, None] * np.where(tb.neg[b], -mbv, mbv)[None]
        pad = ng * gs - s
        if pad:
            prod = np.concatenate([prod, np.zeros((prod.shape[0], pad, prod.shape[2]), np.int64)], axis=1)
        G = prod.reshape(prod.shape[0], ng, gs, prod.shape[2]).sum(axis=2)
        sag = sa_k[:, ::gs]
        sbg = sb_k[::gs]
        P = G * tsa.sig[sag][:, :, None] * tsb.sig[sbg][None]
        xsa = np.where(tsa.zero[sag], 0 if ze is None else ze, tsa.x[sag])
        xsb = np.where(tsb.zero[sbg], 0 if ze is None else ze, tsb.x[sbg])
        X = xsa[:, :, None] + xsb[None]
        lsb = (ta.quantum + tb.quantum - tsa.man - tsb.man) + (tsa.x[sag][:, :, None] + tsb.x[sbg][None])
    # C as one more term
    CP = np.where(cneg, -csig, csig)
    Cl = cx - acc.man_bits
    CX = np.where(csig == 0, 0 if ze is None else ze, cx)
    live = P != 0
    if ze is None:
        cand = np.where(live, X, np.iinfo(np.int64).min)
        xmax = np.maximum(cand.max(axis=1), np.where(csig != 0, CX, np.iinfo(np.int64).min))
        none = ~live.any(axis=1) & (csig == 0)
        xmax = np.where(none, 0, xmax)
    else:
        xmax = np.maximum(X.max(axis=1), CX)
    fallback = np.zeros(xmax.shape, bool)
    if F is None:       # exact: keep down to the lowest lsb of a non-zero term
        big = np.iinfo(np.int64).max
        low = np.minimum(np.where(live, lsb, big).min(axis=1), np.where(csig != 0, Cl, big))
        Fo = np.where(low == big, 0, xmax - low)
        fallback = Fo + _term_bits(unit) + (X.shape[1] + 1).bit_length() > _LIMIT
        Fo = np.where(fallback, 0, Fo)
    else:
        Fo = np.full(xmax.shape, F, np.int64)
    base = xmax - Fo
    terms = _shift_round_np(P, lsb - base[:, None, :], unit.term_rounding)
    total = terms.sum(axis=1) + _shift_round_np(CP, Cl - base, unit.term_rounding)
    codes = _round_into_np(total < 0, np.abs(total), base, acc, unit.acc_rounding, unit.acc_overflow)
    codes = np.where(total == 0, 0, codes)
    if unit.zero_sign == "positive":
        codes = np.where(codes == 1 << (acc.bits - 1), 0, codes)
    if anyspec:
        infc = ((1 << acc.exp_bits) - 1) << acc.man_bits
        codes = np.where(out_inf, np.where(neg_inf, (1 << (acc.bits - 1)) | infc, infc), codes)
        codes = np.where(out_nan, unit.nan_code, codes)
        fallback &= ~(out_inf | out_nan)
    return codes.astype(np.int64), fallback


def _numpy_gemm(unit, p):
    M, K, N = p.shape
    acc = unit.acc_fmt
    out = np.zeros((M, N), np.int64) if p.c is None else p.c.astype(np.int64)
    sa_all, sb_all = p.ctx["block_scale_a"], p.ctx["block_scale_b"]
    bs = unit.block_size
    nfall = 0
    steps = unit.steps(K)
    width = max((k1 - k0 for k0, k1 in steps), default=1)
    rows = max(1, (1 << 21) // max(1, width * N))
    for k0, k1 in steps:
        kidx = np.arange(k0, k1) // bs
        b = p.b[k0:k1].astype(np.int64)
        sb_k = sb_all[kidx].astype(np.int64)
        for r0 in range(0, M, rows):
            r1 = min(M, r0 + rows)
            a = p.a[r0:r1, k0:k1].astype(np.int64)
            sa_k = sa_all[r0:r1][:, kidx].astype(np.int64)
            codes, fb = _step_np(unit, a, b, sa_k, sb_k, out[r0:r1], unit.frac_bits)
            for i, j in np.argwhere(fb):
                codes[i, j] = unit.fused_step(p.a[r0 + i, k0:k1], p.b[k0:k1, j], sa_all[r0 + i], sb_all[:, j], k0,
                                              int(out[r0 + i, j]))
            nfall += int(fb.sum())
            out[r0:r1] = codes
    res = unit._result(out.astype(acc.dtype))
    if nfall:
        res.info["fallback"] = nfall
    return res


register(Kernel(name="block_dot.numpy", level="python",
                proof="the MAC level's integer steps on int64 numpy arrays, exact under the bound _domain checks; "
                      "outputs beyond it (exact mode) run the MAC level's step; tests/test_block_dot.py",
                domain=_domain, run=_numpy_gemm))
