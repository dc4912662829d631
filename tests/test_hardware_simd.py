"""The SIMD fused-adder kernel (csrc/hw.c, AVX-512) equals the scalar kernel bit for bit, at every SIMD
level this CPU has and several thread counts, on random, edge and recorded inputs; both SIMD paths
(fp32 products, double products) and the scalar fallbacks (specials, fp32 subnormal or overflowing
sums, wide exponent ranges) are exercised, and the IMMA fast path (numsim.kernels.int_lanes) equals the IMMA
kernel (int8 dot-product kernel and BLAS forms). The scalar kernel itself is compared with the exact reference in tests/test_hardware.py."""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from numsim import kernels
from numsim.kernels import int_lanes
from numsim.units.fused_adder import simd_path
from numsim.errors import NumsimError
from numsim.units import get_unit

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "data", "h100")
FLOAT_PRESETS = ["h100_hmma_f16", "h100_hmma_bf16", "h100_mma_e4m3", "h100_cublas_e4m3", "h100_cublas_f16",
                 "h100_cublas_bf16"]
LEVELS = [0] + ([2] if kernels.level_ok("avx512") else [])
_FUSED_KERNEL = {0: "fused_adder.mac_level", 2: "fused_adder.avx512"}


def fused_gemm(unit, a, b, c, nthreads, simd):
    """The fused adder's scalar (simd=0) or AVX-512 (simd=2) kernel, forced through numsim.kernels."""
    if simd not in _FUSED_KERNEL:
        raise NumsimError(f"simd: expected 0 or 2, got {simd}")
    return kernels.gemm(unit, a, b, c=c, nthreads=nthreads, kernel=_FUSED_KERNEL[simd]).codes
SIMD = [lv for lv in LEVELS if lv > 0]
THREADS = [1, 2, 3]
NB = {"fp16": 16, "bf16": 16, "fp8_e4m3fn": 8}
EXP = {"fp16": (5, 10), "bf16": (8, 7), "fp8_e4m3fn": (4, 3)}


def _same(x, y):
    x = np.asarray(x, np.uint32)
    y = np.asarray(y, np.uint32)
    nan = lambda v: ((v & 0x7F800000) == 0x7F800000) & ((v & 0x7FFFFF) != 0)  # noqa: E731
    return (x == y) | (nan(x) & nan(y))


def _codes(rng, fmt, shape, kind):
    """'bits' any pattern (specials too), 'finite' random finite bits, 'near' exponents near the bias
    (within +-lo_spread), 'tiny' the subnormal range, 'sparse' near values with many zeros."""
    nb = NB[fmt]
    eb, mb = EXP[fmt]
    c = rng.integers(0, 2**nb, shape, dtype=np.int64)
    if kind == "bits":
        return c.astype(np.uint8 if nb == 8 else np.uint16)
    sign = c & (1 << (nb - 1))
    field = (c >> mb) & ((1 << eb) - 1)
    bias = (1 << (eb - 1)) - 1
    if kind == "finite":
        field = np.minimum(field, (1 << eb) - 2)
    elif kind in ("near", "sparse"):
        field = np.clip(bias + rng.integers(-6, 7, shape), 1, (1 << eb) - 2)
    elif kind == "tiny":
        field = rng.integers(0, 3, shape)
    c = sign | (field << mb) | (c & ((1 << mb) - 1))
    if fmt == "fp8_e4m3fn":
        c = np.where((c & 0x7F) == 0x7F, c & 0xFE, c)               # 0x7f / 0xff are NaN
    if kind == "sparse":
        c = np.where(rng.random(shape) < 0.5, 0, c)
    return c.astype(np.uint8 if nb == 8 else np.uint16)


def _acc(rng, shape, kind):
    if kind == "none":
        return None
    c = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
    if kind == "special":
        pool = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 1, 0x80000001, 0x7F7FFFFF,
                         0xFF7FFFFF, 0x00800000, 0x3F800000, 0x007FFFFF], np.uint32)
        return pool[rng.integers(0, len(pool), shape)]
    field = (c >> 23) & 0xFF
    field = 120 + (field % 14) if kind == "near" else np.minimum(field, 254)
    return (c & 0x807FFFFF) | (field << 23)


def _compare(unit, a, b, c, label):
    """Every SIMD level and thread count against the scalar kernel on one thread."""
    want = fused_gemm(unit, a, b, c, 1, simd=0)
    for level in LEVELS:
        for t in THREADS:
            got = fused_gemm(unit, a, b, c, t, simd=level)
            bad = ~_same(got, want)
            assert not bad.any(), (unit.name, label, level, t, np.argwhere(bad)[:3], got[bad][:3], want[bad][:3])
    return want


CASES = [("near", "none"), ("near", "near"), ("finite", "finite"), ("tiny", "near"), ("sparse", "special"),
         ("bits", "near"), ("near", "special")]


@pytest.mark.parametrize("name", FLOAT_PRESETS)
def test_simd_equals_scalar_random(name):
    unit = get_unit(name)
    fmt = unit.a_fmt.name
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    # M, N not multiples of the 4-row x 16-column tile; K over several steps, promotions and a partial block
    for (M, N, K), (kind, ckind) in zip([(5, 19, 64), (7, 33, 160), (4, 16, 32), (9, 8, 96), (6, 17, 48),
                                         (3, 21, 128), (1, 1, 16)], CASES):
        a = _codes(rng, fmt, (M, K), kind)
        b = _codes(rng, fmt, (K, N), "near" if kind == "tiny" else kind)
        _compare(unit, a, b, _acc(rng, (M, N), ckind), f"{kind}/{ckind}")


@pytest.mark.parametrize("overrides", [dict(acc_overflow="saturate"), dict(acc_man_bits=10, kept_bits=20),
                                       dict(promotion_interval=None), dict(scale_a=0.375, scale_b=3.0),
                                       dict(c_add="epilogue"), dict(kept_bits=29), dict(kept_bits=8, acc_man_bits=5)])
def test_simd_equals_scalar_parameters(overrides):
    rng = np.random.default_rng(17)
    for base in ("h100_hmma_bf16", "h100_hmma_f16", "h100_cublas_e4m3", "h100_mma_e4m3"):
        ov = dict(overrides)
        if base == "h100_mma_e4m3" and "promotion_interval" in ov:
            ov["promotion_interval"] = None
        unit = get_unit(base, **ov)
        fmt = unit.a_fmt.name
        for (M, N, K), (kind, ckind) in zip([(5, 18, 64), (3, 17, 96), (6, 20, 128)],
                                            [("near", "near"), ("finite", "finite"), ("sparse", "special")]):
            a = _codes(rng, fmt, (M, K), kind)
            b = _codes(rng, fmt, (K, N), kind)
            _compare(unit, a, b, _acc(rng, (M, N), ckind), f"{overrides} {kind}/{ckind}")


@pytest.mark.skipif(not SIMD, reason="this CPU has no AVX-512F: only the scalar kernel runs")
def test_both_simd_paths_are_taken():
    """The inputs above reach every kernel: fp32 products, double products, and scalar."""
    rng = np.random.default_rng(5)
    u16, ub = get_unit("h100_hmma_f16"), get_unit("h100_hmma_bf16")
    near16 = _codes(rng, "fp16", (4, 32), "near")
    assert simd_path(u16, near16, near16.T) == 2
    assert simd_path(u16, _codes(rng, "fp16", (4, 32), "finite"), near16.T) == 2   # fp16 range is [-24, 15]
    wide = np.array([[0x7000] * 32], np.uint16)                                   # bf16 2^97: fp32 range left
    assert simd_path(ub, wide, _codes(rng, "bf16", (32, 4), "near")) == 1
    huge = np.array([[0x7F00] * 32], np.uint16)          # bf16 2^127 * 2^127: still the double path's range
    assert simd_path(ub, huge, huge.T) == 1
    assert simd_path(get_unit("h100_hmma_f16", product_exponent="normalized"), near16, near16.T) == 0
    assert simd_path(get_unit("h100_cublas_e4m3"), _codes(rng, "fp8_e4m3fn", (2, 64), "finite"),
                     _codes(rng, "fp8_e4m3fn", (64, 2), "finite")) == 2
    # c into a narrower accumulator without promotion is rounded by ns_round_pack: scalar
    fa = get_unit("h100_cublas_e4m3", promotion_interval=None, c_add="accumulator")
    e8 = _codes(rng, "fp8_e4m3fn", (2, 64), "near")
    assert simd_path(fa, e8, e8.T, c=np.zeros((2, 2), np.uint32)) == 0
    assert simd_path(fa, e8, e8.T) == 2


def _bf16(x):
    import ml_dtypes

    return np.asarray(x, ml_dtypes.bfloat16).view(np.uint16)


def _f16(x):
    return np.asarray(x, np.float16).view(np.uint16)


def test_simd_edge_cases():
    """Lanes the SIMD kernel must hand to the scalar kernel or get exactly right at the edges."""
    rng = np.random.default_rng(11)
    u = get_unit("h100_hmma_f16")
    K, N = 32, 20
    a = _codes(rng, "fp16", (6, K), "near")
    b = _codes(rng, "fp16", (K, N), "near")
    c = _acc(rng, (6, N), "near")
    c[0, :] = [0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00001, 0xFFC00000, 0x80000000, 0,
               1, 0x80000001, 0x007FFFFF, 0x00800000, 0x80800000, 0x7F000000, 0x3F800000, 0xBF800000,
               0x00000010, 0x80400000, 0x7F7FFFFE, 0x0]
    a[1, 3] = 0x7C00                                                   # +inf in one row
    b[5, 7] = 0x7E00                                                   # NaN in one column
    a[2, :] = 0                                                        # a zero row: +0 (or c alone)
    c[2, :6] = [1, 0x80000001, 0x007FFFFF, 0x00400000, 0x80000010, 0]   # fp32 subnormal c alone
    a[3, :16] = _f16([65504.0] * 16)                                   # large: c near max overflows
    c[3, :] = 0x7F7FFFFF
    a[4, :] = _f16([2.0**-14] * K)                                     # tiny products: subnormal sums
    c[4, :] = 0x00000003
    for name in FLOAT_PRESETS:
        unit = get_unit(name)
        if unit.a_fmt.name == "fp16":
            _compare(unit, a, b, c, "edge")
            _compare(unit, a, b, None, "edge, no c")
    # exact cancellation to +0, with a -0 accumulator
    a = _f16([[1.0, -1.0] + [0] * 14] * 3)
    b = _f16(np.ones((16, 17)))
    got = _compare(u, a, b, np.full((3, 17), 0x80000000, np.uint32), "cancel")
    assert (got == 0).all()
    # bf16 products past 2^128 without specials: +inf (flagged lanes)
    ub = get_unit("h100_hmma_bf16")
    big = np.full((2, 16), 2.0**63, np.float64)
    got = _compare(ub, _bf16(big), _bf16(np.full((16, 18), 2.0**63)), None, "bf16 overflow")
    assert (got == 0x7F800000).all()
    got = _compare(ub, _bf16(np.full((2, 16), 2.0**127)), _bf16(np.full((16, 18), -(2.0**127))), None, "bf16 max")
    assert (got == 0xFF800000).all()
    got = _compare(get_unit("h100_hmma_bf16", acc_overflow="saturate"), _bf16(big), _bf16(np.full((16, 18), 2.0**63)),
                   None, "bf16 saturate")
    assert (got == 0x7F7FFFFF).all()
    # sums in [2^128, 2^129): max-finite c + 2^127 (inf or saturated, never a rounded conversion)
    a1 = _bf16(np.array([[2.0**64] + [0] * 15] * 3))
    b1 = _bf16(np.full((16, 17), 2.0**63))
    cmax = np.full((3, 17), 0x7F7FFFFF, np.uint32)
    assert (_compare(ub, a1, b1, cmax, "just past 2^128") == 0x7F800000).all()
    assert (_compare(get_unit("h100_hmma_bf16", acc_overflow="saturate"), a1, b1, cmax, "just past, sat") == 0x7F7FFFFF).all()
    # bf16 products below fp32's normal range (16 x 2^-120 * 2^-12 = 2^-128): subnormal sum, double path
    got = _compare(ub, _bf16(np.full((2, 16), 2.0**-120)), _bf16(np.full((16, 18), 2.0**-12)), None, "bf16 tiny")
    assert (got.view(np.float32) == np.float32(2.0**-128)).all()
    # random bf16 products near 2^-140: sums in fp32's subnormal range (truncated there, not rounded)
    # and below it (+0), with bits below 2^-149 that a rounding conversion would keep
    for lo in (-75, -80):
        a = _bf16(rng.choice([-1, 1], (4, 32)) * (1 + rng.random((4, 32))) * 2.0**lo)
        b = _bf16(rng.choice([-1, 1], (32, 19)) * (1 + rng.random((32, 19))) * 2.0**-65)
        got = _compare(ub, a, b, None, f"bf16 subnormal sums 2^{lo}")
        assert (got & 0x7F800000 == 0).mean() > 0.5                # mostly subnormal or zero
    # alignment: a product 2^40 above the others drops them (fp32 path on f16: 2^15*2^15 vs 2^-10)
    a = _f16([[2.0**15] + [2.0**-10] * 15])
    b = _f16([[2.0**15]] + [[2.0**-5]] * 15)
    got = _compare(u, np.repeat(a, 3, 0), np.repeat(b, 17, 1), None, "align")
    assert (got.view(np.float32) == np.float32(2.0**30)).all()
    # scales and the fp32 epilogue (cuBLAS FP8), promotions over several blocks
    us = get_unit("h100_cublas_e4m3", scale_a=0.375, scale_b=3.0)
    e8 = _codes(rng, "fp8_e4m3fn", (5, 384), "near")
    _compare(us, e8, _codes(rng, "fp8_e4m3fn", (384, 23), "finite"), _acc(rng, (5, 23), "special"), "scaled")


def test_simd_recorded_samples():
    """The shipped samples of the H100 recordings: SIMD levels x threads equal scalar, and the codes."""
    for fname, name in [("tc_h100_f16_sample.npz", "h100_hmma_f16"), ("tc_h100_bf16_sample.npz", "h100_hmma_bf16"),
                        ("tc_h100_e4m3_sample.npz", "h100_mma_e4m3")]:
        z = np.load(os.path.join(SAMPLE, fname))
        unit = get_unit(name)
        A, B, C, D = z["A"], z["B"], z["C"], z["D"]
        # tiles side by side: one GEMM of all rows of the first tiles against their own columns
        for t in range(0, A.shape[0], max(1, A.shape[0] // 24)):
            got = _compare(unit, A[t], B[t], C[t].view(np.uint32), f"{fname} tile {t}")
            assert _same(got, D[t].view(np.uint32)).all(), (fname, t)
    z = np.load(os.path.join(SAMPLE, "cublas_h100_sample.npz"))
    for key in sorted(k for k in z.files if k.endswith("_A")):
        p = key[:-2]
        unit = get_unit({"fp8": "h100_cublas_e4m3", "f16": "h100_cublas_f16", "bf16": "h100_cublas_bf16"}[p.split("_K")[0]])
        for t in range(z[key].shape[0]):
            got = _compare(unit, z[key][t], z[p + "_B"][t], None, f"{p} {t}")
            assert _same(got, np.asarray(z[p + "_D"][t]).view(np.uint32)).all(), (p, t)


def test_no_simd_switch(monkeypatch):
    rng = np.random.default_rng(2)
    u = get_unit("h100_hmma_f16")
    a = _codes(rng, "fp16", (4, 32), "near")
    b = _codes(rng, "fp16", (32, 20), "near")
    want = fused_gemm(u, a, b, None, 2, simd=0)
    monkeypatch.setenv("NUMSIM_LEVEL", "portable")
    r = u.gemm_codes(a, b, nthreads=2)
    assert (r.codes == want).all() and r.info["kernel"] == "fused_adder.mac_level"
    monkeypatch.delenv("NUMSIM_LEVEL")
    assert (u.gemm_codes(a, b, nthreads=2).codes == want).all()
    monkeypatch.setenv("NUMSIM_LEVEL", "avx9")
    with pytest.raises(NumsimError, match="NUMSIM_LEVEL"):
        u.gemm_codes(a, b, nthreads=1)


# ---- IMMA fast path (numsim.kernels.int_lanes) ------------------------------------------------------------

@pytest.mark.parametrize("name", ["h100_imma_s8", "h100_imma_s8_sat", "h100_imma_s4", "h100_imma_s4_sat"])
def test_imma_fastpath_equals_kernel(name):
    unit = get_unit(name)
    nb = 8 if unit.a_fmt.name == "int8" else 4
    rng = np.random.default_rng(9)
    for M, K, N, cmode, taken in [(5, 96, 7, "none", True), (4, 70, 9, "mid", True), (3, 64, 5, "near", False),
                                  (2, 140000, 3, "none", nb == 4), (3, 256, 4, "edge", True)]:
        a = rng.integers(0, 2**nb, (M, K)).astype(np.uint8)
        b = rng.integers(0, 2**nb, (K, N)).astype(np.uint8)
        if cmode == "mid":
            c = rng.integers(-(2**20), 2**20, (M, N))
        elif cmode == "near":      # c within K * 2^14 of the INT32 limits: could wrap, so no fast path
            c = rng.choice([2**31 - 1000, -(2**31) + 1000], (M, N))
        elif cmode == "edge":      # bound just below 2^31: the fast path, and the exact sum at the limit
            lim = 2**31 - 1 - K * (128 * 128 if nb == 8 else 64) - 1
            c = np.full((M, N), lim)
            if nb == 8:
                a[:] = 0x80
                b[:] = 0x80
            else:
                a[:] = 0x8
                b[:] = 0x8
        else:
            c = None
        if nb == 8 and cmode == "none" and K == 140000:
            a[:] = 0x80     # 140000 * 2^14 > 2^31: the kernel wraps; no fast path
            b[:] = 0x80
        cc = None if c is None else c.astype(np.int32).view(np.uint32)
        fast = kernels.fast_gemm(unit, a, b, cc, {}, 2)
        ref = kernels.mac_level_gemm(unit, a, b, c=cc, nthreads=1)
        # the int8-lane kernels take exactly the bounded problems; the imatmul kernels (exact modulo
        # 2^32 for a wrapping unit) may take the others
        assert fast is not None or not taken, (name, M, K, N, cmode)
        assert taken or fast is None or fast.info["kernel"].startswith("int_mma.imatmul"), (name, cmode)
        assert (int_lanes._imma_ok(unit, a, b, cc, {}) is not None) == taken
        if fast is not None:
            assert np.array_equal(fast.codes, ref.codes), (name, cmode)
            assert np.array_equal(fast.values, ref.values), (name, cmode)
            # the BLAS form too, inside its own domain (the int8 dot-product kernel, where the CPU has one,
            # runs first)
            for dtype in (((np.float64,) if taken else ()) +
                          ((np.float32,) if int_lanes._imma_ok(unit, a, b, cc, {}) is np.float32 else ())):
                blas = int_lanes._imma_gemm(unit, dtype, a, b, cc)
                assert np.array_equal(blas.codes, ref.codes), (name, cmode, dtype)
                assert np.array_equal(blas.values, ref.values), (name, cmode, dtype)
