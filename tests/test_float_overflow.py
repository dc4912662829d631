"""Overflow events of float accumulators (docs/units.md, "Overflow events"): one event per rounding of
finite exact operands whose rounded result leaves the finite range (inf under to_inf, max finite
under saturate or a rounding toward zero), counted identically by the MAC-level kernel, every fast
kernel at every ISA level, unit.dot and numsim.matmul, and equal to an independent count on the exact
rationals of numsim.reference. inf / NaN operands propagating are no events; non-finite outputs are
counted separately in GemmResult.info["nonfinite"]."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numsim
from numsim.codec import decode, encode
from numsim.errors import NumsimError
from numsim.kernels import available, cpu_levels, gemm
from numsim.reference import h100 as RH
from numsim.reference import units as R
from numsim.reference.formats import RefError, encode_exact
from numsim.units import FloatMacUnit

LEVELS = ("portable", "avx2", "avx512")


# ---- units ------------------------------------------------------------------------------------------

def _float_mac_units():
    """(label, unit) for every float-MAC preset and custom variants, both overflow policies, every order."""
    out = []
    for ovf in ("to_inf", "saturate"):
        for order, chunk in (("sequential", 64), ("chunked", 4), ("pairwise", 64)):
            kw = dict(acc_overflow=ovf, order=order, chunk=chunk)
            out.append((f"fp8_fp16/{ovf}/{order}", numsim.get_unit("fp8_fp16", **kw)))
            out.append((f"fp16_fp32/{ovf}/{order}", numsim.get_unit("fp16_fp32", **kw)))
            for phase in ("even", "odd"):
                out.append((f"int4_fp4r4/{phase}/{ovf}/{order}",
                            numsim.get_unit("int4_fp4r4_fp16", phase=phase, **kw)))
            out.append((f"e5m2x4_fp16_rtz/{ovf}/{order}",
                        FloatMacUnit(name="e5m2_fp16_k4", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", acc_fmt="fp16",
                                     k_step=4, acc_rounding="toward_zero", **kw)))
            out.append((f"fp16_bf16/{ovf}/{order}",
                        FloatMacUnit(name="fp16_bf16", a_fmt="fp16", b_fmt="fp16", acc_fmt="bf16", **kw)))
            out.append((f"bf16xe4m3_bf16_k2/{ovf}/{order}",
                        FloatMacUnit(name="bf16xe4m3_bf16", a_fmt="bf16", acc_fmt="bf16", k_step=2, **kw)))
    return out


FLOAT_MAC = _float_mac_units()
FUSED = [(f"{n}/{ovf}", numsim.get_unit(n, acc_overflow=ovf))
         for n in ("h100_hmma_f16", "h100_hmma_bf16", "h100_cublas_bf16", "h100_cublas_f16", "h100_mma_e4m3",
                   "h100_cublas_e4m3") for ovf in ("to_inf", "saturate")]


def _operand_codes(fmt, rng, shape, specials):
    """Codes mixing values near the format's max (products that overflow), their negatives (sums that
    cancel back from near overflow), ordinary values, zeros and optionally inf / NaN."""
    f = numsim.formats.get_format(fmt)
    big = float(f.max_finite) if hasattr(f, "max_finite") else 7.0
    vals = np.array([big, -big, big / 2, -big / 4, 1.0, -3.0, 0.0], dtype=np.float64)
    codes = encode(rng.choice(vals, size=shape), fmt, overflow="saturate")
    if specials:
        dec = decode(np.arange(2 ** f.bits, dtype=np.uint32).astype(f.dtype), fmt)
        sp = np.nonzero(~np.isfinite(dec))[0]
        if sp.size:
            mask = rng.random(shape) < 0.03
            codes[mask] = rng.choice(sp, size=int(mask.sum())).astype(codes.dtype)
    return codes


def _problem(unit, rng, M, K, N, specials=False, with_c=True):
    a = _operand_codes(unit.a_fmt, rng, (M, K), specials)
    b = _operand_codes(unit.b_fmt, rng, (K, N), specials)
    c = None
    if with_c:
        acc = numsim.formats.get_format(unit.acc_fmt)
        mf = float(acc.max_finite)
        cv = rng.choice(np.array([mf, -mf, mf / 2, 0.0, 1.0]), size=(M, N))
        c = decode(encode(cv, acc), acc)
    return a, b, c


def _kernels(u, a, b, c=None, ctx=None):
    """Every kernel this machine (and NUMSIM_LEVEL) runs whose domain takes the problem."""
    p = u.problem(a, b, c, ctx=ctx)
    return [k for k in available(u) if k.domain(u, p) is None]


# ---- independent counts on exact rationals ----------------------------------------------------------

def _ref_count_float_mac(unit, a, b, c, monkeypatch):
    """Sum over outputs of the reference's rounding steps whose exact sum rounds past max finite."""
    count = [0]
    orig = R.round_exact_sum

    def counting(terms, fmt, rounding, overflow, step, k):
        s = sum((v for v, _ in terms), R.Fraction(0))
        if s != 0:
            try:
                encode_exact(s, fmt, rounding=rounding, overflow="error")
            except RefError:
                count[0] += 1
        return orig(terms, fmt, rounding, overflow, step, k)

    monkeypatch.setattr(R, "round_exact_sum", counting)
    codes = np.empty((a.shape[0], b.shape[1]), dtype=np.int64)
    acc = numsim.formats.get_format(unit.acc_fmt)
    for i in range(a.shape[0]):
        for n in range(b.shape[1]):
            c0 = 0 if c is None else int(encode(np.array([c[i, n]]), acc)[0])
            codes[i, n] = R.dot(unit, a[i], b[:, n], c0)[0]
    monkeypatch.setattr(R, "round_exact_sum", orig)
    return codes, count[0]


def _ref_count_fused(unit, a, b, c, monkeypatch):
    """The H100 reference with every rounding of finite values wrapped: an event when the result is
    past the range (inf under to_inf: the sum's truncation and fp32 RNE adds / multiplies)."""
    count = [0]
    inner = unit.inner_format()
    orig_sum, orig_add, orig_mul = RH.fused_sum, RH._add_rne, RH._mul_rne

    def finite(v):
        return not isinstance(v, str)

    def fused_sum(a_vals, b_vals, cv, acc_fmt, **fs):
        out = orig_sum(a_vals, b_vals, cv, acc_fmt, **fs)
        if all(map(finite, a_vals)) and all(map(finite, b_vals)) and finite(cv):
            probe = orig_sum(a_vals, b_vals, cv, acc_fmt, **{**fs, "overflow": "to_inf"})
            count[0] += isinstance(RH.decode_exact(probe, acc_fmt), str)
        return out

    def add(x, y, fmt):
        out = orig_add(x, y, fmt)
        if finite(RH.decode_exact(x, fmt)) and finite(RH.decode_exact(y, fmt)):
            count[0] += isinstance(RH.decode_exact(out, fmt), str)
        return out

    def mul(x, s, fmt):
        out = orig_mul(x, s, fmt)
        if finite(RH.decode_exact(x, fmt)):
            count[0] += isinstance(RH.decode_exact(out, fmt), str)
        return out

    monkeypatch.setattr(RH, "fused_sum", fused_sum)
    monkeypatch.setattr(RH, "_add_rne", add)
    monkeypatch.setattr(RH, "_mul_rne", mul)
    codes = np.empty((a.shape[0], b.shape[1]), dtype=np.int64)
    for i in range(a.shape[0]):
        for n in range(b.shape[1]):
            c0 = None if c is None else int(np.float32(c[i, n]).view(np.uint32))
            codes[i, n] = RH.fused_dot_ref(a[i], b[:, n], c0, unit)
    monkeypatch.undo()
    assert inner is not None
    return codes, count[0]


# ---- the seed's example --------------------------------------------------------------------------

@pytest.mark.parametrize("ovf, code, per_output", [("to_inf", 0x7C00, 1), ("saturate", 0x7BFF, 64)])
def test_fp8_fp16_all_max_codes_count_overflow(ovf, code, per_output):
    u = numsim.get_unit("fp8_fp16", acc_overflow=ovf)
    a = np.full((2, 64), 0x7E, np.uint8)
    b = np.full((64, 3), 0x7E, np.uint8)
    for k in _kernels(u, a, b):
        r = gemm(u, a, b, kernel=k.name)
        assert np.all(r.codes == code) and r.overflow_count == 6 * per_output, k.name
        assert r.info["nonfinite"] == (6 if ovf == "to_inf" else 0)
    d = u.dot(a[0], b[:, 0], trace=True)
    assert d.overflow_count == per_output
    m = numsim.matmul(a, b, unit=u)
    assert m.overflow_count == 6 * per_output


def test_error_policy_names_index_and_step():
    u = numsim.get_unit("fp8_fp16", acc_overflow="error")
    with pytest.raises(NumsimError, match=r"\(0, 0\)"):
        u.gemm_codes(np.full((1, 4), 0x7E, np.uint8), np.full((4, 1), 0x7E, np.uint8))


def test_inf_nan_operands_are_not_overflow():
    u = numsim.get_unit("fp16_fp32")
    inf16, nan16 = 0x7C00, 0x7E00
    a = np.array([[inf16, 0x3C00], [nan16, 0x3C00], [inf16, 0xFC00]], np.uint16)
    b = np.array([[0x3C00], [0x3C00]], np.uint16)
    for k in _kernels(u, a, b):
        r = gemm(u, a, b, kernel=k.name)
        assert r.overflow_count == 0 and r.info["nonfinite"] == 3, k.name


# ---- every float-MAC unit: kernels, levels, dot and the reference agree -------------------------------

@settings(derandomize=True, max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), specials=st.booleans())
def test_float_mac_overflow_counts_match_everywhere(seed, specials):
    mp = pytest.MonkeyPatch()
    try:
        rng = np.random.default_rng(seed)
        for label, u in FLOAT_MAC:
            a, b, c = _problem(u, rng, 2, 9, 3, specials=specials, with_c=bool(rng.integers(2)))
            mac = gemm(u, a, b, c=c, kernel="mac_level")
            ref_codes, ref_count = _ref_count_float_mac(u, a, b, c, mp)
            assert np.array_equal(mac.codes.astype(np.int64), ref_codes), label
            assert mac.overflow_count == ref_count, label
            assert mac.info["nonfinite"] == int(np.count_nonzero(~np.isfinite(mac.values))), label
            for level in LEVELS:
                mp.setenv("NUMSIM_LEVEL", level)
                for k in _kernels(u, a, b, c):
                    r = gemm(u, a, b, c=c, kernel=k.name)
                    assert np.array_equal(r.codes, mac.codes), (label, level, k.name)
                    assert r.overflow_count == mac.overflow_count, (label, level, k.name)
                    assert r.info["nonfinite"] == mac.info["nonfinite"], (label, level, k.name)
            mp.delenv("NUMSIM_LEVEL")
            per_output = sum(u.dot(a[i], b[:, n], c=None if c is None else c[i, n], trace=True).overflow_count
                             for i in range(a.shape[0]) for n in range(b.shape[1]))
            assert per_output == mac.overflow_count, label
    finally:
        mp.undo()


def test_float_exact_kernel_counts_through_mac_level_fallback():
    """exact_double takes to_inf units; an overflow leaves an inf, so the whole GEMM falls back."""
    u = numsim.get_unit("fp8_fp16")
    a = np.full((1, 8), 0x7E, np.uint8)
    b = np.full((8, 1), 0x7E, np.uint8)
    b[1::2] = 0xFE
    r = gemm(u, a, b, kernel="float_mac.exact_double")
    assert r.overflow_count == 1 and r.info.get("fallback")
    ok = gemm(u, np.full((1, 8), 0x38, np.uint8), np.full((8, 1), 0x38, np.uint8), kernel="float_mac.exact_double")
    assert ok.overflow_count == 0 and ok.info["nonfinite"] == 0 and "fallback" not in ok.info


@pytest.mark.parametrize("ovf", ["saturate", "to_inf"])
def test_saturate_cancels_back_from_overflow(ovf):
    """+max, +max (overflow: clamped or inf), then -max: saturate comes back to a finite value with
    one event; to_inf stays inf (one event, the inf propagates)."""
    u = numsim.get_unit("fp16_fp32", acc_fmt="fp16", acc_overflow=ovf, order="sequential")
    a = np.array([[0x7BFF, 0x7BFF, 0x7BFF]], np.uint16)
    b = np.array([[0x3C00], [0x3C00], [0xBC00]], np.uint16)
    for k in _kernels(u, a, b):
        r = gemm(u, a, b, kernel=k.name)
        assert r.overflow_count == 1, k.name
        assert (r.values[0, 0] == 0.0) if ovf == "saturate" else np.isinf(r.values[0, 0])


# ---- fused adders (H100 presets) ------------------------------------------------------------------------

@settings(derandomize=True, max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), specials=st.booleans())
def test_fused_overflow_counts_match_everywhere(seed, specials):
    mp = pytest.MonkeyPatch()
    try:
        rng = np.random.default_rng(seed)
        for label, u in FUSED:
            K = 2 * (len(u.k_permutation) if u.k_permutation else u.k_step)
            a, b, c = _problem(u, rng, 2, K, 3, specials=specials, with_c=bool(rng.integers(2)))
            c32 = None if c is None else c.astype(np.float32)
            mac = gemm(u, a, b, c=c32, kernel="mac_level")
            ref_codes, ref_count = _ref_count_fused(u, a, b, c32, mp)
            ref = ref_codes.astype(np.uint32)
            nan = np.isnan(mac.values) & np.isnan(ref.view(np.float32))   # the reference's NaN is IEEE's
            assert np.array_equal(np.where(nan, 0, mac.codes), np.where(nan, 0, ref)), label
            assert mac.overflow_count == ref_count, label
            assert mac.info["nonfinite"] == int(np.count_nonzero(~np.isfinite(mac.values))), label
            for level in LEVELS:
                mp.setenv("NUMSIM_LEVEL", level)
                for k in _kernels(u, a, b, c32):
                    r = gemm(u, a, b, c=c32, kernel=k.name)
                    assert np.array_equal(r.codes, mac.codes), (label, level, k.name)
                    assert r.overflow_count == mac.overflow_count, (label, level, k.name)
            mp.delenv("NUMSIM_LEVEL")
            per_output = sum(u.dot(a[i], b[:, n], c=None if c32 is None else c32[i, n], trace=True).overflow_count
                             for i in range(a.shape[0]) for n in range(b.shape[1]))
            assert per_output == mac.overflow_count, label
    finally:
        mp.undo()


@pytest.mark.parametrize("name", ["h100_mma_e4m3", "h100_cublas_e4m3"])
def test_fused_promotion_and_scale_overflow_counted(name):
    """fp32 promotion adds and the scale multiply round to nearest even: finite operands past the fp32
    range give inf, one event; the AVX-512 kernel hands those lanes to the scalar steps."""
    u = numsim.get_unit(name, a_fmt="bf16", b_fmt="bf16")
    P = u.promotion_interval
    a = np.zeros((3, 2 * P), np.float64)
    a[:, 0] = a[:, P] = 2.0**64                  # one product 2^127 a block: each block's sum is finite
    a = encode(a, "bf16")
    b = encode(np.full((2 * P, 17), 2.0**63), "bf16")
    for k in _kernels(u, a, b):
        r = gemm(u, a, b, kernel=k.name)          # the second promotion add: 2^127 + 2^127 -> inf
        assert r.overflow_count == 3 * 17 and r.info["nonfinite"] == 3 * 17, k.name
    u = numsim.get_unit(name)
    a = np.full((3, 2 * P), 0x7E, np.uint8)
    b = np.full((2 * P, 17), 0x7E, np.uint8)
    for k in _kernels(u, a, b, ctx={"scale_a": 2.0**60, "scale_b": 2.0**60}):
        s = gemm(u, a, b, kernel=k.name, ctx={"scale_a": 2.0**60, "scale_b": 2.0**60})
        assert s.overflow_count == 3 * 17 and np.all(np.isinf(s.values)), k.name
