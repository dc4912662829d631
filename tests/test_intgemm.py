"""The integer dot-product GEMM (csrc/intgemm.c, the int8 lanes kernels of numsim.kernels.int_lanes) against the
MAC-level path (`unit.gemm_codes`), bit for bit: every SIMD level (AVX-512 VNNI, AVX2, plain C, forced
by argument and by NUMSIM_LEVEL), any shape, edge values, alignment shifts (on b,
on a, and ones that force the BLAS fallback), initial accumulators, narrow accumulators, threads,
and results whose internal lane sums wrap int32."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import numsim
from numsim import kernels
from numsim.kernels import int_lanes
from numsim._ffi import cptr, ffi, lib
from numsim.formats import IntFormat

LEVELS = [0, 1, 2]
FMT_PAIRS = [("int4", "int4"), ("int8", "int8"), ("uint8", "int8"), ("uint8", "uint8"), ("int4_sym", "uint4"),
             ("uint4", "int8_sym"), ("int6", "int3"), ("int2", "uint7"), ("int8", "uint5")]


def _have_level(level):
    """Whether the C integer GEMM's level (0 portable, 1 AVX2, 2 AVX-512 VNNI) runs on this CPU."""
    return level == 0 or {1: "avx2", 2: "avx512_vnni"}[level] in kernels.cpu_levels()


def _unit(a_fmt="int4", b_fmt="int4", **kw):
    kw.setdefault("widen_bits", 32)
    return numsim.get_unit("int4_int32", a_fmt=a_fmt, b_fmt=b_fmt, **kw)


def _codes(rng, fmt, shape, mode="random"):
    """Codes of fmt: random, all at the most negative / most positive value, or mixed extremes."""
    fmt = numsim.get_format(fmt)
    vals = int_lanes._lane_values(fmt)[0][:2**fmt.bits]
    codes = np.arange(2**fmt.bits)
    if fmt.symmetric:
        keep = codes != 2 ** (fmt.bits - 1)
        vals, codes = vals[keep], codes[keep]
    lo, hi = codes[np.argmin(vals)], codes[np.argmax(vals)]
    if mode == "min":
        out = np.full(shape, lo)
    elif mode == "max":
        out = np.full(shape, hi)
    elif mode == "mixed":
        out = rng.choice([lo, hi, codes[np.argmin(np.abs(vals))]], size=shape)
    else:
        out = rng.choice(codes, size=shape)
    return out.astype(fmt.dtype)


def _mac(unit, a, b, c=None, ctx=None):
    return kernels.mac_level_gemm(unit, a, b, c, ctx, nthreads=1)


def _assert_same(fast, mac):
    assert fast is not None
    assert fast.codes.dtype == mac.codes.dtype
    assert np.array_equal(fast.codes, mac.codes)
    assert np.array_equal(fast.values, mac.values)
    assert fast.overflow_count == mac.overflow_count == 0
    if mac.out_codes is not None:
        assert np.array_equal(fast.out_codes, mac.out_codes)


def _fast(unit, a, b, c, ctx, threads, level):
    """The int8 path, asserting that the proof's conditions hold (so it must have run)."""
    assert int_lanes._int_unit_ok(unit, a, b, c, ctx) is not None
    res = int_lanes._int8_gemm(unit, a, b, c, ctx, threads, level=level)
    assert res is not None
    return res


@st.composite
def _case(draw):
    k = draw(st.sampled_from([1, 2, 3, 4, 5, 63, 64, 65, 127, 300]) | st.integers(1, 300))
    n = draw(st.sampled_from([1, 15, 16, 17, 31, 32, 33, 300]) | st.integers(1, 300))
    m_max = max(1, min(300, 400_000 // (k * n)))
    m = draw(st.integers(1, m_max))
    return m, k, n


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=_case(), fmts=st.sampled_from(FMT_PAIRS), mode=st.sampled_from(["random", "min", "max", "mixed"]),
       shift=st.sampled_from(["none", "zero", "b", "a"]), with_c=st.booleans(), threads=st.integers(1, 4),
       level=st.sampled_from(LEVELS), seed=st.integers(0, 2**32 - 1))
def test_int8_path_equals_the_mac_path(shape, fmts, mode, shift, with_c, threads, level, seed):
    if not _have_level(level):
        pytest.skip(f"this CPU lacks SIMD level {level}")
    rng = np.random.default_rng(seed)
    m, k, n = shape
    unit = _unit(*fmts)
    a = _codes(rng, unit.a_fmt, (m, k), mode)
    b = _codes(rng, unit.b_fmt, (k, n), mode if mode != "mixed" else "random")
    ctx = {}
    if shift == "zero":
        ctx["align_shift"] = np.zeros(k, dtype=np.int64)
    elif shift in ("a", "b"):
        # the largest shift that keeps the shifted side in 8-bit lanes (0 where none does)
        side = unit.b_fmt if shift == "b" else unit.a_fmt
        width = int(np.ptp(int_lanes._lane_values(side)[0][:2**side.bits]))
        top = max(0, int(np.floor(np.log2(255 / width)))) if width else 0
        ctx["align_shift"] = rng.integers(0, top + 1, k)
    c = None
    if with_c:
        c = numsim.encode(rng.integers(-(2**20), 2**20, (m, n)).astype(np.float64), unit.acc_fmt)
    if int_lanes._lane_plan(unit.a_fmt, unit.b_fmt, int(np.max(ctx.get("align_shift", [0])))) is None:
        assert int_lanes._int8_gemm(unit, a, b, c, ctx, threads, level=level) is None
        return
    _assert_same(_fast(unit, a, b, c, ctx, threads, level), _mac(unit, a, b, c, ctx))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", ["int4_int32", "int4_int32_requant"])
def test_presets_edge_values_every_level(name, level, rng):
    if not _have_level(level):
        pytest.skip(f"this CPU lacks SIMD level {level}")
    unit = numsim.get_unit(name)
    for (m, k, n) in [(1, 1, 1), (4, 4, 16), (5, 7, 33), (9, 257, 31), (70, 600, 45)]:
        for mode in ("min", "max", "mixed", "random"):
            a = _codes(rng, "int4", (m, k), mode)
            b = _codes(rng, "int4", (k, n), mode)
            _assert_same(_fast(unit, a, b, None, {}, 2, level), _mac(unit, a, b))


@pytest.mark.parametrize("level", LEVELS)
def test_alignment_shifts_on_b_on_a_and_the_fallback(level, rng):
    if not _have_level(level):
        pytest.skip(f"this CPU lacks SIMD level {level}")
    m, k, n = 6, 45, 37
    # int4 x int4 with shifts up to 4: b << 4 spans [-128, 112], fits s8 lanes
    unit = numsim.get_unit("int4_int32")
    shift = rng.integers(0, 5, k)
    shift[3] = 4
    assert int_lanes._lane_plan(unit.a_fmt, unit.b_fmt, 4)[0] is True
    for mode in ("min", "max", "mixed"):
        a, b = _codes(rng, "int4", (m, k), mode), _codes(rng, "int4", (k, n), mode)
        _assert_same(_fast(unit, a, b, None, {"align_shift": shift}, 3, level),
                     _mac(unit, a, b, None, {"align_shift": shift}))
    # int4 x int8 with shifts up to 4: only a << 4 fits its lanes, so the shift goes to a
    unit = _unit("int4", "int8")
    assert int_lanes._lane_plan(unit.a_fmt, unit.b_fmt, 4)[0] is False
    for mode in ("min", "max", "mixed"):
        a, b = _codes(rng, "int4", (m, k), mode), _codes(rng, "int8", (k, n), mode)
        _assert_same(_fast(unit, a, b, None, {"align_shift": shift}, 2, level),
                     _mac(unit, a, b, None, {"align_shift": shift}))
    # int4 x int4 with a shift of 5: neither side fits 8-bit lanes; the BLAS path runs, same bits
    unit = numsim.get_unit("int4_int32")
    shift5 = shift.copy()
    shift5[0] = 5
    a, b = _codes(rng, "int4", (m, k), "mixed"), _codes(rng, "int4", (k, n), "mixed")
    assert int_lanes._lane_plan(unit.a_fmt, unit.b_fmt, 5) is None
    assert int_lanes._int8_gemm(unit, a, b, None, {"align_shift": shift5}, 2, level=level) is None
    res = kernels.fast_gemm(unit, a, b, None, {"align_shift": shift5}, 2)
    _assert_same(res, _mac(unit, a, b, None, {"align_shift": shift5}))


@pytest.mark.parametrize("acc_bits", [16, 24, 32])
@pytest.mark.parametrize("level", LEVELS)
def test_initial_accumulator_and_narrow_accumulators(acc_bits, level, rng):
    if not _have_level(level):
        pytest.skip(f"this CPU lacks SIMD level {level}")
    unit = numsim.get_unit("int4_int32", acc_bits=acc_bits)
    m, k, n = 11, 70, 35
    a, b = _codes(rng, "int4", (m, k)), _codes(rng, "int4", (k, n))
    lim = 2 ** (acc_bits - 1) - 64 * k - 2
    c_vals = rng.integers(-lim, lim, (m, n)).astype(np.float64)
    c_vals[0, :3] = [-lim, lim, 0]
    c = numsim.encode(c_vals, unit.acc_fmt)
    _assert_same(_fast(unit, a, b, c, {}, 4, level), _mac(unit, a, b, c))


@pytest.mark.parametrize("level", LEVELS)
def test_results_near_the_int32_limit_whose_lane_sums_wrap(level):
    """int8 x int8 with K = 131000: |result| reaches 2^31 - 2^21 while the offset lanes' raw sums
    (255 * -128 * K) wrap int32 several times; the residue still gives the exact result."""
    if not _have_level(level):
        pytest.skip(f"this CPU lacks SIMD level {level}")
    unit = _unit("int8", "int8", widen_bits=16)
    k = 131000
    a = np.full((2, k), 127, dtype=np.uint8)              # +127
    a[1, ::2] = 0x80                                      # -128 in every other column
    b = np.full((k, 3), 0x80, dtype=np.uint8)             # -128
    b[::3, 1] = 127
    assert int_lanes._lane_plan(unit.a_fmt, unit.b_fmt, 0) == (True, True, 128, 0)
    fast = _fast(unit, a, b, None, {}, 2, level)
    mac = _mac(unit, a, b)
    _assert_same(fast, mac)
    assert fast.values[0, 0] == 127 * -128 * k


def test_simd_levels_follow_the_environment(monkeypatch, rng):
    real_blas = int_lanes._int_gemm
    auto = lib.ns_int8_gemm_level()
    assert auto == max(lv for lv in LEVELS if _have_level(lv))
    unit = numsim.get_unit("int4_int32_requant")
    a, b = _codes(rng, "int4", (37, 129)), _codes(rng, "int4", (129, 50))
    mac = _mac(unit, a, b)
    _assert_same(kernels.fast_gemm(unit, a, b, None, {}, 2), mac)
    monkeypatch.setenv("NUMSIM_LEVEL", "avx512")       # below VNNI
    assert lib.ns_int8_gemm_level() == min(auto, 1)
    _assert_same(kernels.fast_gemm(unit, a, b, None, {}, 2), mac)
    monkeypatch.setenv("NUMSIM_LEVEL", "portable")
    assert lib.ns_int8_gemm_level() == 0
    calls = []
    monkeypatch.setattr(int_lanes, "_int_gemm", lambda *x: calls.append(1) or real_blas(*x))
    _assert_same(kernels.fast_gemm(unit, a, b, None, {}, 2), mac)       # BLAS: faster than the C level
    assert calls == [1]
    _assert_same(int_lanes._int8_gemm(unit, a, b, None, {}, 2), mac)  # the C level itself
    for cap, want in (("avx2", "int_mac.int8_lanes_avx2"), ("portable", "int_mac.exact_blas")):
        monkeypatch.setenv("NUMSIM_LEVEL", cap)
        if kernels.level_ok(cap):
            res = kernels.fast_gemm(unit, a, b, None, {}, 2)
            _assert_same(res, mac)
            assert res.info["kernel"] == want
    monkeypatch.delenv("NUMSIM_LEVEL")
    monkeypatch.setenv("NUMSIM_KERNEL", "mac_level")
    assert kernels.fast_gemm(unit, a, b, None, {}, 2) is None


def test_matmul_takes_the_int8_path_and_keeps_the_bits(rng, monkeypatch):
    unit = numsim.get_unit("int4_int32")
    # the int8-lane kernel (the AMX/VNNI imatmul kernels come first in the unit's list: tests/test_kernels.py)
    monkeypatch.setenv("NUMSIM_KERNEL", "int_mac.int8_lanes_vnni" if kernels.level_ok("avx512_vnni")
                       else "int_mac.int8_lanes_avx2" if kernels.level_ok("avx2") else "int_mac.int8_lanes_portable")
    a, b = _codes(rng, "int4", (3, 21, 40)), _codes(rng, "int4", (40, 17))
    calls = []
    real = int_lanes._int8_gemm
    monkeypatch.setattr(int_lanes, "_int8_gemm", lambda *x, **kw: calls.append(1) or real(*x, **kw))
    for batch in (a, a[0]):
        r = numsim.matmul(batch, b, unit, nthreads=2)
        want = np.stack([_mac(unit, x, b).codes for x in batch.reshape(-1, 21, 40)]).reshape(r.codes.shape)
        assert np.array_equal(r.codes, want)
        assert np.array_equal(r.acc_values, numsim.decode(want, "int32"))
    assert len(calls) == 4


def test_the_kernel_checks_its_lanes_and_arguments():
    """Lanes outside the instruction's u8 / s8 inputs, bad shifts and bad sizes are refused (the
    caller then takes the BLAS path), never computed wrongly."""
    a = np.full((2, 3), 8, dtype=np.uint8)                 # int4 -8
    b = np.full((3, 2), 7, dtype=np.uint8)
    av, _, _ = int_lanes._lane_values(numsim.get_format("int4"))
    out = np.empty((2, 2), dtype=np.int32)

    def call(a_off=8, b_off=0, a_is_u8=1, shift=None, shift_on_b=1, K=3, bits=4):
        sh = ffi.NULL if shift is None else cptr("int32_t *", shift)
        return lib.ns_int8_gemm(cptr("uint8_t *", a), bits, cptr("int32_t *", av), cptr("uint8_t *", b), bits,
                                cptr("int32_t *", av), 2, K, 2, sh, shift_on_b, a_off, b_off, a_is_u8, ffi.NULL,
                                32, cptr("int32_t *", out), ffi.NULL, 1, 0)

    assert call() == 0 and np.array_equal(out, np.full((2, 2), -8 * 7 * 3))
    assert call(a_off=0) == lib.NS_ERR_ARG                 # -8 is no u8 lane
    assert call(a_off=8, b_off=128) == lib.NS_ERR_ARG       # 7 + 128 is no s8 lane
    assert call(shift=np.array([0, 5, 0], dtype=np.int32)) == lib.NS_ERR_ARG   # -8 << 5 leaves s8
    assert call(shift=np.array([0, 31, 0], dtype=np.int32)) == lib.NS_ERR_ARG
    assert call(shift=np.array([0, -1, 0], dtype=np.int32)) == lib.NS_ERR_ARG
    assert call(K=0) == lib.NS_ERR_ARG
    assert call(bits=9) == lib.NS_ERR_ARG


def test_wide_integer_decode_equals_the_c_decoder(rng):
    """codec.decode's numpy path for integer formats of 17..32 bits against ns_decode."""
    from numsim.codec import c_format

    for bits in (17, 24, 31, 32):
        for fmt in (IntFormat(bits), IntFormat(bits, signed=False), IntFormat(bits, symmetric=True)):
            codes = rng.integers(0, 2**bits, 3000, dtype=np.uint64).astype(fmt.dtype)
            codes[:3] = [0, 2**bits - 1, 2 ** (bits - 1) - 1]
            codes[3] = 2 ** (bits - 1) if not fmt.symmetric else 1
            if fmt.symmetric:
                codes[codes == 2 ** (bits - 1)] = 0
            want = np.empty(codes.size)
            err = ffi.new("int64_t *")
            assert lib.ns_decode(cptr("void *", codes), codes.dtype.itemsize, codes.size, c_format(fmt),
                                 cptr("double *", want), err) == 0
            assert np.array_equal(numsim.decode(codes, fmt), want), fmt
