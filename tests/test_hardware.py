"""H100 tensor-core presets (issue 11): the C kernels equal the exact reference (numsim/reference/h100.py)
on random and edge inputs, the shipped sample of the hardware recordings is reproduced bit for bit,
GEMM chaining equals chained steps, and bad input raises NumsimError."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import numsim
from numsim.errors import NumsimError
from numsim.units import FusedDotUnit, IntMMAUnit, mod_split_permutation
from numsim.verify import family_name, replay_recording
from numsim.reference.h100 import fused_dot_ref, imma_dot_ref
from numsim.units import get_unit, unit_names

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "data", "h100")
SAMPLES = ["tc_h100_f16_sample.npz", "tc_h100_bf16_sample.npz", "tc_h100_e4m3_sample.npz",
           "int_h100_sample.npz", "cublas_h100_sample.npz"]
FLOAT_PRESETS = ["h100_hmma_f16", "h100_hmma_bf16", "h100_mma_e4m3", "h100_cublas_e4m3", "h100_cublas_f16",
                 "h100_cublas_bf16"]
INT_PRESETS = ["h100_imma_s8", "h100_imma_s4", "h100_imma_s8_sat", "h100_imma_s4_sat"]


def _same(x, y):
    """Bit equality of fp32 codes, NaN compared as NaN."""
    x = np.asarray(x, np.uint32)
    y = np.asarray(y, np.uint32)
    nan = lambda v: ((v & 0x7F800000) == 0x7F800000) & ((v & 0x7FFFFF) != 0)  # noqa: E731
    return (x == y) | (nan(x) & nan(y))


# ---- operand generators ------------------------------------------------------------------------

_NBITS = {"fp16": 16, "bf16": 16, "fp8_e4m3fn": 8}


def _codes(rng, fmt, shape, kind):
    """Operand codes of one input family: 'bits' (any pattern, specials included), 'finite'
    (random bits, non-finite ones replaced), 'small' (values near 1), 'tiny' (subnormal range)."""
    fmt = getattr(fmt, "name", fmt)
    nb = _NBITS[fmt]
    dt = np.uint8 if nb == 8 else np.uint16
    c = rng.integers(0, 2**nb, shape, dtype=np.int64)
    sign = c & (1 << (nb - 1))
    eb = {"fp16": 5, "bf16": 8, "fp8_e4m3fn": 4}[fmt]
    mb = nb - 1 - eb
    if kind in ("finite", "small", "tiny"):
        field = (c >> mb) & ((1 << eb) - 1)
        if kind == "small":
            bias = (1 << (eb - 1)) - 1
            field = bias + rng.integers(-3, 4, shape)
        elif kind == "tiny":
            field = rng.integers(0, 3, shape)
        else:
            field = np.minimum(field, (1 << eb) - 2)
        c = sign | (field << mb) | (c & ((1 << mb) - 1))
    if kind == "bits" and fmt == "fp8_e4m3fn":
        pass                                        # 0x7f / 0xff are the e4m3fn NaNs
    return c.astype(dt)


def _acc_codes(rng, shape, kind):
    if kind == "none":
        return None
    c = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
    if kind == "special":
        pool = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 1, 0x80000001, 0x7F7FFFFF,
                         0xFF7FFFFF, 0x00800000, 0x3F800000], np.uint32)
        return pool[rng.integers(0, len(pool), shape)]
    field = (c >> 23) & 0xFF
    if kind == "small":
        field = 120 + (field % 14)
    else:
        field = np.minimum(field, 254)
    return (c & 0x807FFFFF) | (field << 23)


def _check_against_reference(unit, a, b, c):
    got = unit.gemm_codes(a, b, c=c, nthreads=2).codes
    for m in range(a.shape[0]):
        for n in range(b.shape[1]):
            want = fused_dot_ref(a[m], b[:, n], None if c is None else int(c[m, n]), unit)
            assert _same(got[m, n], want), (unit.name, m, n, hex(int(got[m, n])), hex(want), a[m], b[:, n],
                                             None if c is None else hex(int(c[m, n])))
    return got


@pytest.mark.parametrize("name", FLOAT_PRESETS)
def test_c_kernel_equals_reference_random(name):
    unit = get_unit(name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    fmt = unit.a_fmt
    cases = [("small", "small", 16), ("finite", "finite", 32), ("tiny", "small", 48), ("bits", "none", 16),
             ("small", "special", 40), ("finite", "small", 128), ("small", "none", 160)]
    for akind, ckind, K in cases:
        a = _codes(rng, fmt, (3, K), akind)
        b = _codes(rng, fmt, (K, 3), akind if akind != "tiny" else "small")
        c = _acc_codes(rng, (3, 3), ckind)
        _check_against_reference(unit, a, b, c)


@pytest.mark.parametrize("overrides", [
    dict(product_exponent="normalized"),
    dict(acc_rounding="nearest_even"),
    dict(acc_overflow="saturate"),
    dict(acc_man_bits=10, kept_bits=20),
    dict(promotion_interval=None),                          # use_fast_accum for the cuBLAS preset
    dict(scale_a=0.375, scale_b=3.0),
    dict(c_add="epilogue"),
])
def test_c_kernel_equals_reference_parameters(overrides):
    rng = np.random.default_rng(7)
    for base in ("h100_hmma_bf16", "h100_cublas_e4m3", "h100_mma_e4m3"):
        ov = dict(overrides)
        if base == "h100_mma_e4m3" and "promotion_interval" in ov:
            ov["promotion_interval"] = None
        unit = get_unit(base, **ov)
        fmt = unit.a_fmt
        for akind, ckind, K in [("small", "small", 64), ("finite", "finite", 96), ("small", "special", 32)]:
            a = _codes(rng, fmt, (2, K), akind)
            b = _codes(rng, fmt, (K, 3), akind)
            _check_against_reference(unit, a, b, _acc_codes(rng, (2, 3), ckind))


def _f16(x):
    return np.asarray(x, np.float16).view(np.uint16)


def test_hmma_edge_cases():
    u = get_unit("h100_hmma_f16")
    # Exact cancellation and a -0 accumulator: +0 (signed zeros are not kept).
    a = _f16([[1.0, -1.0] + [0] * 14])
    b = _f16(np.ones((16, 1)))
    r = u.gemm_codes(a, b, c=np.array([[0x80000000]], np.uint32)).codes
    assert int(r[0, 0]) == 0
    # Alignment to the largest input-exponent sum: 2^15*2^15 dwarfs 2^-10*2^-15 (dropped, not rounded).
    a = _f16([[2.0**15, 2.0**-10] + [0] * 14])
    b = _f16([[2.0**15], [2.0**-15]] + [[0]] * 14)
    r = u.gemm_codes(a, b).codes.view(np.float32)
    assert r[0, 0] == np.float32(2.0**30)
    # Truncation toward zero of the fp32 sum: 1 + 2^-24 (below fp32 ulp/2) stays 1, -1 - 2^-24 stays -1.
    a = _f16([[1.0, 2.0**-12] + [0] * 14])
    b = _f16([[1.0], [2.0**-12]] + [[0]] * 14)
    assert u.gemm_codes(a, b).codes.view(np.float32)[0, 0] == np.float32(1.0)
    # Past the fp32 range: +-inf, not max-finite (the accumulator near 2^128 plus a large product).
    c = np.array([[0x7F7FFFFF]], np.uint32)
    a = _f16([[65504.0] + [0] * 15])
    b = _f16([[65504.0]] + [[0]] * 15)
    assert int(u.gemm_codes(a, b, c=c).codes[0, 0]) == 0x7F7FFFFF     # 2^128 - 2^104 + 2^32 truncated
    c = np.array([[0x7F7FFFFF]], np.uint32)
    b2 = _f16([[65504.0]] * 16)
    a2 = _f16([[65504.0] * 16])
    big = u.gemm_codes(a2, b2, c=c).codes
    assert int(big[0, 0]) == 0x7F7FFFFF                              # still below 2^128: truncated
    # inf * 0 is NaN; inf + -inf is NaN; inf propagates.
    inf = _f16([[np.inf] + [0] * 15])
    assert np.isnan(u.gemm_codes(inf, _f16([[0.0]] * 16)).codes.view(np.float32)[0, 0])
    assert u.gemm_codes(inf, _f16([[2.0]] * 16)).codes.view(np.float32)[0, 0] == np.inf
    c = np.array([[0xFF800000]], np.uint32)
    assert np.isnan(u.gemm_codes(inf, _f16([[2.0]] * 16), c=c).codes.view(np.float32)[0, 0])


def test_bf16_overflow_is_inf():
    import ml_dtypes

    u = get_unit("h100_hmma_bf16")
    big = np.full((1, 16), 2.0**127, ml_dtypes.bfloat16).view(np.uint16)
    r = u.gemm_codes(big, np.full((16, 1), 4.0, ml_dtypes.bfloat16).view(np.uint16)).codes
    assert int(r[0, 0]) == 0x7F800000
    want = fused_dot_ref(big[0], np.full(16, 4.0, ml_dtypes.bfloat16).view(np.uint16), None, u)
    assert want == 0x7F800000
    # saturating variant: max finite
    us = get_unit("h100_hmma_bf16", acc_overflow="saturate")
    assert int(us.gemm_codes(big, np.full((16, 1), 4.0, ml_dtypes.bfloat16).view(np.uint16)).codes[0, 0]) == 0x7F7FFFFF


@pytest.mark.parametrize("name", INT_PRESETS)
def test_imma_c_equals_reference(name):
    u = get_unit(name)
    rng = np.random.default_rng(3)
    nb = 8 if u.a_fmt.name == "int8" else 4
    for K, cmode in [(u.k_step, "near"), (3 * u.k_step + 5, "near"), (2 * u.k_step, "mid")]:
        a = rng.integers(0, 2**nb, (3, K)).astype(np.uint8)
        b = rng.integers(0, 2**nb, (K, 4)).astype(np.uint8)
        if cmode == "near":
            c = rng.choice([2**31 - 1000, -(2**31) + 1000], (3, 4)) + rng.integers(-500, 500, (3, 4))
        else:
            c = rng.integers(-(2**20), 2**20, (3, 4))
        c = c.astype(np.int32)
        got = u.gemm_codes(a, b, c=c, nthreads=2).codes
        for m in range(3):
            for n in range(4):
                assert int(got[m, n]) == imma_dot_ref(a[m], b[:, n], int(c[m, n]) % 2**32, u), (name, K, m, n)


def test_imma_saturates_once_per_instruction():
    u = get_unit("h100_imma_s8_sat")
    a = np.full((1, 32), 0x80, np.uint8)                   # -128
    b = np.full((32, 1), 0x80, np.uint8)                   # -128: products +16384, sum 524288
    c = np.array([[2**31 - 100]], np.int32)
    assert int(u.gemm_codes(a, b, c=c).codes.view(np.int32)[0, 0]) == 2**31 - 1
    # Saturation is of the exact sum c + sum(products): a large negative partial cancelling
    # inside one instruction is not clipped.
    a2 = np.array([[0x7F] * 16 + [0x80] * 16], np.uint8)   # 127 x16, -128 x16
    b2 = np.full((32, 1), 0x7F, np.uint8)
    want = 2**31 - 100 + 16 * 127 * 127 - 16 * 128 * 127
    assert int(u.gemm_codes(a2, b2, c=c).codes.view(np.int32)[0, 0]) == want
    w = get_unit("h100_imma_s8")
    assert int(w.gemm_codes(a, b, c=c).codes.view(np.int32)[0, 0]) == (2**31 - 100 + 32 * 16384) - 2**32


def test_e4m3_mma_k_grouping():
    # k % 4 in {0,1} first, then {2,3}: a product in the first group is truncated against its own
    # group's alignment only, so a tiny product in k=2 survives when the big one is in k=0.
    assert mod_split_permutation(32, 4, ((0, 1), (2, 3)))[:4] == (0, 1, 4, 5)
    import ml_dtypes

    u = get_unit("h100_mma_e4m3")

    def run(tiny_k):
        a = np.zeros((1, 32), ml_dtypes.float8_e4m3fn)
        b = np.zeros((32, 1), ml_dtypes.float8_e4m3fn)
        a[0, 0], b[0, 0] = 448.0, 448.0                    # +2^17.6 at k=0 and -2^17.6 at k=1 cancel
        a[0, 1], b[1, 0] = -448.0, 448.0
        a[0, tiny_k], b[tiny_k, 0] = 2.0**-9, 2.0**-9      # 2^-18, 35 binades below
        return float(u.gemm_codes(a.view(np.uint8), b.view(np.uint8)).codes.view(np.float32)[0, 0])

    assert run(2) == 2.0**-18      # k=2 is in the second HMMA: added to the cancelled (zero) first result
    assert run(4) == 0.0           # k=4 shares the first HMMA with the big pair: truncated away
    plain = get_unit("h100_mma_e4m3", k_permutation=None)   # without the grouping, k=2 is truncated too
    a = np.zeros((1, 32), ml_dtypes.float8_e4m3fn)
    b = np.zeros((32, 1), ml_dtypes.float8_e4m3fn)
    a[0, :3] = [448.0, -448.0, 2.0**-9]
    b[:3, 0] = [448.0, 448.0, 2.0**-9]
    assert float(plain.gemm_codes(a.view(np.uint8), b.view(np.uint8)).codes.view(np.float32)[0, 0]) == 0.0


def test_cublas_e4m3_scales_and_fast_accum():
    import ml_dtypes

    rng = np.random.default_rng(11)
    a = rng.standard_normal((4, 256)).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    b = rng.standard_normal((256, 5)).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    u = get_unit("h100_cublas_e4m3")
    plain = u.gemm_codes(a, b).codes.view(np.float32)
    s = np.float32(float(np.float32(0.1)) * float(np.float32(3.0)))
    scaled = u.gemm_codes(a, b, scale_a=0.1, scale_b=3.0).codes.view(np.float32)
    assert np.array_equal(scaled, plain * s)               # one fp32 RNE multiply by fp32(sa*sb)
    fast = get_unit("h100_cublas_e4m3", promotion_interval=None)
    f = fast.gemm_codes(a, b).codes
    assert not np.array_equal(f, u.gemm_codes(a, b).codes)   # 1-8-13 all the way loses bits
    assert np.all((f & 0x3FF) == 0)                          # the fast-accum result keeps 13 fraction bits
    for m in range(2):
        for n in range(2):
            assert _same(f[m, n], fused_dot_ref(a[m], b[:, n], None, fast))


def test_gemm_k128_equals_eight_chained_hmma_steps():
    rng = np.random.default_rng(5)
    u = get_unit("h100_hmma_f16")
    a = rng.standard_normal((8, 128)).astype(np.float16).view(np.uint16)
    b = rng.standard_normal((128, 6)).astype(np.float16).view(np.uint16)
    c = rng.standard_normal((8, 6)).astype(np.float32).view(np.uint32)
    full = u.gemm_codes(a, b, c=c).codes
    acc = c.copy()
    for s in range(0, 128, 16):                            # 8 HMMA instructions, accumulator carried
        acc = u.gemm_codes(a[:, s:s + 16], b[s:s + 16], c=acc).codes
    assert np.array_equal(full, acc)
    for m, n in [(0, 0), (7, 5)]:                           # and the MAC-level step() of the reference
        st = int(c[m, n])
        for s in range(0, 128, 16):
            st = u.step(st, a[m, s:s + 16], b[s:s + 16, n])
        assert st == int(full[m, n])
        tr = u.dot(a[m], b[:, n], c=c[m:m + 1, n:n + 1], trace=True).trace
        assert len(tr) == 8 and tr[-1] == int(full[m, n])
    import numsim

    matmul = getattr(numsim, "matmul", None)
    if matmul is None:
        from numsim.gemm import matmul
    r = matmul(a, b, unit="h100_hmma_f16", c=c)               # the tensor layer: codes in, codes out
    assert np.array_equal(np.asarray(r.codes).view(np.uint32), acc)
    r2 = matmul(a, b, unit="h100_hmma_f16", c=c.view(np.float32))   # c as exact fp32 values
    assert np.array_equal(np.asarray(r2.codes).view(np.uint32), acc)
    # batched: two problems in one call, each equal to its own chain
    rb = matmul(np.stack([a, a[::-1]]), b, unit="h100_hmma_f16")
    assert np.array_equal(np.asarray(rb.codes)[0], u.gemm_codes(a, b).codes)
    assert np.array_equal(np.asarray(rb.codes)[1], u.gemm_codes(a[::-1].copy(), b).codes)


def test_matmul_and_conv2d_through_presets():
    from numsim.gemm import conv2d, matmul

    rng = np.random.default_rng(21)
    for name in ("h100_cublas_e4m3", "h100_imma_s4_sat", "h100_mma_e4m3"):
        u = get_unit(name)
        if u.a_fmt.name == "int4":
            a = rng.integers(0, 16, (5, 200)).astype(np.uint8)
            b = rng.integers(0, 16, (200, 3)).astype(np.uint8)
        else:
            a = _codes(rng, u.a_fmt, (5, 200), "small")
            b = _codes(rng, u.a_fmt, (200, 3), "small")
        r = matmul(a, b, unit=name)
        for m in range(0, 5, 2):
            for n in range(3):
                want = (fused_dot_ref if isinstance(u, FusedDotUnit) else imma_dot_ref)(a[m], b[:, n], None, u)
                assert int(np.asarray(r.codes)[m, n]) == want
    # conv2d runs through the same gemm_codes (im2col); a 1x1 convolution is a plain matmul
    x = rng.standard_normal((1, 16, 3, 3)).astype(np.float16).view(np.uint16)
    w = rng.standard_normal((4, 16, 1, 1)).astype(np.float16).view(np.uint16)
    y = conv2d(x, w, unit="h100_hmma_f16")
    want = get_unit("h100_hmma_f16").gemm_codes(x[0].reshape(16, 9).T.copy(), w.reshape(4, 16).T.copy()).codes
    assert np.array_equal(np.asarray(y.codes).reshape(4, 9), want.T)


def test_threads_do_not_change_bits():
    rng = np.random.default_rng(9)
    u = get_unit("h100_cublas_e4m3")
    a = _codes(rng, "fp8_e4m3fn", (37, 300), "finite")
    b = _codes(rng, "fp8_e4m3fn", (300, 11), "finite")
    assert np.array_equal(u.gemm_codes(a, b, nthreads=1).codes, u.gemm_codes(a, b, nthreads=2).codes)
    assert np.array_equal(u.gemm_codes(a, b, nthreads=1).codes, u.gemm_codes(a, b, nthreads=7).codes)


def test_presets_registered():
    names = unit_names()
    for n in FLOAT_PRESETS + INT_PRESETS:
        assert n in names
        u = get_unit(n)
        assert isinstance(u, (FusedDotUnit, IntMMAUnit)) and u.name == n and u.describe()


# ---- the shipped sample of the H100 recordings ---------------------------------------------------

@pytest.mark.parametrize("fname", SAMPLES)
def test_sample_recordings_bit_exact(fname):
    rows = replay_recording(os.path.join(SAMPLE, fname))
    total = 0
    for r in rows:
        print(f"{fname} {r['label']} {r['unit']} family {r['family']} ({family_name(r)}): "
              f"{r['matched']}/{r['total']}")
        assert r["matched"] == r["total"], (fname, r["label"], r["family"], r["first_miss"])
        total += r["total"]
    assert total >= 1000


@pytest.mark.parametrize("fname", ["tc_h100_f16_sample.npz", "tc_h100_bf16_sample.npz", "tc_h100_e4m3_sample.npz",
                                   "cublas_h100_sample.npz"])
def test_reference_model_reproduces_sample(fname):
    """The exact Python model alone (no C) reproduces recorded outputs: one tile per family, 4 rows."""
    z = np.load(os.path.join(SAMPLE, fname))
    if "A" in z.files:
        groups = [("", "h100_hmma_bf16" if "bf16" in fname else "h100_mma_e4m3" if "e4m3" in fname
                   else "h100_hmma_f16")]
    else:
        groups = [("fp8_K128_", "h100_cublas_e4m3"), ("f16_K64_", "h100_cublas_f16"), ("bf16_K64_", "h100_cublas_bf16")]
    n = 0
    for pre, name in groups:
        u = get_unit(name)
        A, B, D, fam = z[pre + "A"], z[pre + "B"], z[pre + "D"], z[pre + "family"]
        C = z[pre + "C"].view(np.uint32) if pre + "C" in z.files else None
        for f in np.unique(fam):
            t = int(np.nonzero(fam == f)[0][0])
            for m in range(0, A.shape[1], 4):
                for col in range(0, B.shape[2], 3):
                    want = int(D[t, m, col])
                    got = fused_dot_ref(A[t, m], B[t, :, col], None if C is None else int(C[t, m, col]), u)
                    assert _same(got, want), (fname, name, t, m, col, hex(got), hex(want))
                    n += 1
    assert n > 50


# ---- bad input -----------------------------------------------------------------------------------

def test_bad_input(tmp_path):
    with pytest.raises(NumsimError, match="unit"):
        get_unit("h100_hmma_f32")
    p = tmp_path / "wrong.npz"
    np.savez(p, X=np.zeros(3))
    with pytest.raises(NumsimError, match="recording"):
        replay_recording(str(p))
    p2 = tmp_path / "shape.npz"
    np.savez(p2, A=np.zeros((2, 16, 16), np.uint16), B=np.zeros((2, 8, 16), np.uint16),
             C=np.zeros((2, 16, 16), np.float32), D=np.zeros((2, 16, 16), np.uint32), family=np.zeros(2, np.int64))
    with pytest.raises(NumsimError, match="recording"):
        replay_recording(str(p2))
    p3 = tmp_path / "notnpz.npz"
    p3.write_text("hello")
    with pytest.raises(NumsimError, match="recording"):
        replay_recording(str(p3))
    with pytest.raises(NumsimError, match="unit"):
        replay_recording(os.path.join(SAMPLE, "int_h100_sample.npz"), unit="h100_hmma_f16")
    # integer units have no inf / NaN / scales
    with pytest.raises(NumsimError, match="overflow"):
        get_unit("h100_imma_s8", acc_overflow="to_inf")
    with pytest.raises(NumsimError, match="overrides"):
        get_unit("h100_imma_s8", nan="propagate")
    u = get_unit("h100_imma_s8")
    a = np.zeros((2, 32), np.uint8)
    b = np.zeros((32, 2), np.uint8)
    with pytest.raises(NumsimError, match="c"):
        u.gemm_codes(a, b, c=np.full((2, 2), np.nan))
    with pytest.raises(NumsimError, match="scale_a"):
        u.gemm_codes(a, b, scale_a=2.0)
    with pytest.raises(NumsimError, match="align_shift"):
        get_unit("h100_hmma_f16").gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((16, 2), np.uint16),
                                             align_shift=np.zeros(16, np.int64))
    # float units: shapes, codes, parameters
    f = get_unit("h100_hmma_f16")
    with pytest.raises(NumsimError, match="b_codes"):
        f.gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((8, 2), np.uint16))
    with pytest.raises(NumsimError, match="a_codes"):
        f.gemm_codes(np.zeros((2, 16), np.float32), np.zeros((16, 2), np.uint16))
    with pytest.raises(NumsimError, match="c"):
        f.gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((16, 2), np.uint16), c=np.zeros((3, 2), np.uint32))
    with pytest.raises(NumsimError, match="scale_a"):
        f.gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((16, 2), np.uint16), scale_a=float("inf"))
    with pytest.raises(NumsimError, match="c: expected values exactly representable"):
        f.gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((16, 2), np.uint16), c=np.full((2, 2), 0.1))
    ok = f.gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((16, 2), np.uint16), c=np.full((2, 2), 0.5))
    assert np.all(ok.values == 0.5)
    with pytest.raises(NumsimError, match="promotion_interval"):
        get_unit("h100_cublas_e4m3", promotion_interval=100)
    with pytest.raises(NumsimError, match="product_exponent"):
        get_unit("h100_hmma_f16", product_exponent="max")
    with pytest.raises(NumsimError, match="nthreads"):
        f.gemm_codes(np.zeros((2, 16), np.uint16), np.zeros((16, 2), np.uint16), nthreads=0)


def test_cli_verify_hardware(tmp_path):
    # the subprocess must import the same numsim as this test (the installed package in CI, a built
    # checkout in development), not whatever the working directory holds
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(numsim.__file__)))
    env = dict(os.environ, PYTHONPATH=pkg_root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "numsim", "verify-hardware",
                        os.path.join(SAMPLE, "tc_h100_e4m3_sample.npz")], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "7 random bit patterns" in r.stdout and "100.0000%" in r.stdout
    # a wrong preset for the file: a clean mismatch report, non-zero exit
    r = subprocess.run([sys.executable, "-m", "numsim", "verify-hardware", "--unit", "h100_hmma_bf16",
                        os.path.join(SAMPLE, "tc_h100_f16_sample.npz")], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 1 and "total:" in r.stdout
    p = tmp_path / "bad.npz"
    np.savez(p, X=np.zeros(2))
    r = subprocess.run([sys.executable, "-m", "numsim", "verify-hardware", str(p)], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 2 and "recording" in r.stderr


@pytest.mark.parametrize("name", FLOAT_PRESETS + INT_PRESETS)
def test_step_and_trace_agree_with_gemm(name):
    """unit.step (C ns_fused_step / one IMMA instruction) against the reference, and the trace of
    unit.dot against the GEMM result (promotions re-added in fp32, nearest even)."""
    from numsim.reference.formats import decode_exact
    from numsim.reference.h100 import _widen, fused_sum

    u = get_unit(name)
    rng = np.random.default_rng(len(name))
    K = 3 * (getattr(u, "promotion_interval", None) or u.k_step) + 7
    if isinstance(u, IntMMAUnit):
        nb = 8 if u.a_fmt.name == "int8" else 4
        a = rng.integers(0, 2**nb, K).astype(np.uint8)
        b = rng.integers(0, 2**nb, K).astype(np.uint8)
        r = u.dot(a, b, c=np.int32(2**31 - 5000), trace=True)
        assert r.trace[-1] == r.code == imma_dot_ref(a, b, 2**31 - 5000, u)
        return
    a = _codes(rng, u.a_fmt, (K,), "finite")
    b = _codes(rng, u.a_fmt, (K,), "small")
    c = np.uint32(0x3F800000)
    r = u.dot(a, b, c=c, trace=True)
    assert _same(r.code, fused_dot_ref(a, b, int(c), u))
    if not u.promotion_interval:
        assert r.trace[-1] == r.code
    else:
        outer = np.float32(0.0) if u.c_add == "epilogue" else c.view(np.float32)
        steps_per_block = u.promotion_interval // u.k_step
        n = len(r.trace)
        for i, t in enumerate(r.trace):
            if (i + 1) % steps_per_block == 0 or i == n - 1:
                outer = np.float32(outer + np.uint32(t).view(np.float32))
        if u.c_add == "epilogue":
            outer = np.float32(outer + c.view(np.float32))
        assert _same(outer.view(np.uint32), r.code)
    # one step against the exact fused sum
    inner = u.inner_format()
    from numsim.formats import get_format
    af = get_format(u.a_fmt)
    for _ in range(20):
        x = _codes(rng, u.a_fmt, (u.k_step,), "finite")
        y = _codes(rng, u.a_fmt, (u.k_step,), "finite")
        st = int(_acc_codes(rng, (1,), "small")[0]) & ~((1 << (23 - u.acc_man_bits)) - 1)
        want = _widen(fused_sum([decode_exact(int(v), af) for v in x], [decode_exact(int(v), af) for v in y],
                                decode_exact(st, get_format("fp32")), inner, kept_bits=u.kept_bits),
                      inner, get_format("fp32"))
        assert _same(u.step(st, x, y), want)
