"""FP16/BF16/FP32 against numpy and the reference; every encode kernel against the generic path."""
import math

import numpy as np
import pytest

import numsim
from numsim.reference.formats import encode_exact

MODES = ["nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos", "stochastic"]


pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")


def _hard_inputs(rng, n):
    """float32 values spread over every binade, fp16 subnormals, overflow, and exact fp16 ties."""
    bits = rng.integers(0, 2**32, size=n // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    wide = (rng.standard_normal(n // 4) * np.exp2(rng.integers(-30, 20, n // 4))).astype(np.float32)
    h = rng.integers(0, 0x7C00, size=n // 4, dtype=np.uint16)
    lo = h.view(np.float16).astype(np.float32)
    hi = (h + 1).view(np.float16).astype(np.float32)
    ties = ((lo + hi) / 2).astype(np.float32) * np.where(rng.random(n // 4) < 0.5, -1, 1).astype(np.float32)
    special = np.array([0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.996, 65520, -65520, 2.0**-25,
                        2.0**-24 * 1.5, 3e-8, 1e-45], dtype=np.float32)
    return np.concatenate([bits, wide, ties, special])


def test_fp16_all_codes_against_numpy():
    codes = np.arange(65536, dtype=np.uint16)
    got = numsim.decode(codes, "fp16")
    want = codes.view(np.float16).astype(np.float64)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    finite = np.isfinite(want)
    assert np.array_equal(numsim.encode(want[finite], "fp16"), codes[finite])


def test_bf16_all_codes_against_the_bit_layout():
    codes = np.arange(65536, dtype=np.uint16)
    got = numsim.decode(codes, "bf16")
    want = (codes.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    assert np.array_equal(got, want, equal_nan=True)
    finite = np.isfinite(want)
    assert np.array_equal(numsim.encode(want[finite], "bf16"), codes[finite])


def test_fp16_million_float32_and_float64_inputs_against_numpy(rng):
    x32 = _hard_inputs(rng, 1_000_000)
    with np.errstate(all="ignore"):
        want = x32.astype(np.float16).view(np.uint16)
    got = numsim.encode(x32, "fp16")
    nan = np.isnan(x32)
    assert np.array_equal(got[~nan], want[~nan])
    assert np.isnan(numsim.decode(got[nan], "fp16")).all()
    x64 = np.concatenate([x32.astype(np.float64) * (1 + 2.0**-40), rng.standard_normal(100_000) * 1e4])
    with np.errstate(all="ignore"):
        want64 = x64.astype(np.float16).view(np.uint16)  # numpy rounds float64 -> float16 once
    got64 = numsim.encode(x64, "fp16")
    nan = np.isnan(x64)
    assert np.array_equal(got64[~nan], want64[~nan])


def test_fp32_against_numpy_float64_to_float32(rng):
    x = rng.standard_normal(200_000) * np.exp2(rng.integers(-160, 130, 200_000))
    with np.errstate(all="ignore"):
        want = x.astype(np.float32).view(np.uint32)
    assert np.array_equal(numsim.encode(x, "fp32"), want)


@pytest.mark.parametrize("name", ["fp16", "bf16", "fp32", "int16", "int32", "uint16"])
def test_wide_formats_against_the_reference_sample(name, rng):
    fmt = numsim.get_format(name)
    x = _hard_inputs(rng, 4000).astype(np.float64)
    if fmt.kind == "int":
        x = x[np.isfinite(x)] * 2.0**rng.integers(0, 30, x[np.isfinite(x)].size)
        x = x[np.abs(x) < 2.0**60]
    x = x[~np.isnan(x)]
    for mode in MODES:
        got = numsim.encode(x, fmt, rounding=mode, seed=11)
        for i, v in enumerate(x):
            assert int(got[i]) == encode_exact(float(v), fmt, mode, seed=11, index=i), (name, mode, v)


ALL = list(numsim.FORMATS)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("simd", [True, False])
def test_float32_kernels_equal_the_generic_path(name, simd, rng, monkeypatch):
    """float32 input takes the SIMD / scalar kernels, the same values as float64 the generic path."""
    if not simd:
        monkeypatch.setenv("NUMSIM_LEVEL", "portable")
    fmt = numsim.get_format(name)
    x = _hard_inputs(rng, 40_000)
    if fmt.kind == "int":
        x = x[np.isfinite(x)]
    for mode in MODES:
        for ov in [None, "saturate"] + (["to_nan"] if fmt.has_nan else []) + (
                ["wrap"] if fmt.kind == "int" and not fmt.symmetric else []):
            kw = dict(rounding=mode, overflow=ov, seed=5, nan="error" if fmt.has_nan else "zero")
            a = numsim.encode(x, fmt, **kw)
            b = numsim.encode(x.astype(np.float64), fmt, **kw)
            assert np.array_equal(a, b), (name, mode, ov, x[a != b][:4])


def test_error_policy_reports_first_index_from_the_fast_path():
    x = np.zeros(1000, dtype=np.float32)
    x[700] = 1e6
    x[900] = 1e7
    with pytest.raises(numsim.NumsimError, match=r"overflow at index \(700,\)"):
        numsim.encode(x, "fp16", overflow="error")


# ---- ml_dtypes as an independent oracle ------------------------------------------------------

ML = {"fp8_e4m3fn": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2", "fp6_e2m3": "float6_e2m3fn",
      "fp6_e3m2": "float6_e3m2fn", "fp4_e2m1": "float4_e2m1fn", "bf16": "bfloat16"}


@pytest.mark.parametrize("name", list(ML))
def test_ml_dtypes_casts_from_float32(name, rng):
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (test extra) is not installed")
    dt = np.dtype(getattr(ml_dtypes, ML[name]))
    fmt = numsim.get_format(name)
    x = _hard_inputs(rng, 200_000)
    x = x[~np.isnan(x)] if not fmt.has_nan else x
    # Where the policies are the same: fp8_e4m3fn overflows to NaN in ml_dtypes (numsim: to_nan),
    # fp8_e5m2 and bf16 overflow to inf (numsim's default to_inf), fp4/fp6 saturate (numsim's default).
    overflow = "to_nan" if name == "fp8_e4m3fn" else None
    if not fmt.has_nan and not fmt.has_inf:
        x = x[np.isfinite(x)]
    got = numsim.encode(x, fmt, overflow=overflow)
    with np.errstate(all="ignore"):
        ml = x.astype(dt)
    ml_bits = ml.view(np.uint8 if dt.itemsize == 1 else np.uint16)
    if fmt.bits < 8:
        ml_bits = ml_bits & ((1 << fmt.bits) - 1)
    nan = np.isnan(ml.astype(np.float32))
    assert np.array_equal(np.isnan(numsim.decode(got, fmt)), nan)
    assert np.array_equal(got[~nan], ml_bits[~nan])


def test_e4m3fn_default_saturates_where_ml_dtypes_gives_nan():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (test extra) is not installed")
    x = np.array([480.0, 1e6, -1e6], dtype=np.float32)
    ours = numsim.decode(numsim.encode(x, "fp8_e4m3fn"), "fp8_e4m3fn")
    theirs = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    assert ours.tolist() == [448.0, 448.0, -448.0]
    assert np.isnan(theirs).all()


# ---- stochastic rounding -----------------------------------------------------------------------

def test_stochastic_rounding_is_unbiased_and_proportional():
    # 1.3 lies between the fp4_e2m1 grid points 1.0 and 1.5: P(up) = 0.6
    n = 200_000
    x = np.full(n, 1.3)
    v = numsim.decode(numsim.encode(x, "fp4_e2m1", rounding="stochastic", seed=2024), "fp4_e2m1")
    assert set(np.unique(v).tolist()) == {1.0, 1.5}
    p = np.mean(v == 1.5)
    sigma = math.sqrt(0.6 * 0.4 / n)
    assert abs(p - 0.6) < 5 * sigma
    assert abs(v.mean() - 1.3) < 5 * 0.5 * sigma  # the mean error is 0.5 * (p - 0.6)
    # radix 4: 2.5 between 1 and 4 goes up with probability (2.5 - 1) / 3 = 0.5
    v4 = numsim.decode(numsim.encode(np.full(n, 2.5), "fp4r4", rounding="stochastic", seed=9), "fp4r4")
    assert abs(v4.mean() - 2.5) < 5 * 1.5 / math.sqrt(n)  # values 1 and 4, each with probability 0.5


def test_stochastic_rounding_same_bits_whole_or_chunked(rng):
    x = rng.standard_normal(10_001).astype(np.float32)
    whole = numsim.encode(x, "fp8_e5m2", rounding="stochastic", seed=77)
    parts = [numsim.encode(x[i:i + 997], "fp8_e5m2", rounding="stochastic", seed=77, index_offset=i)
             for i in range(0, x.size, 997)]
    assert np.array_equal(whole, np.concatenate(parts))
    again = numsim.encode(x.astype(np.float64), "fp8_e5m2", rounding="stochastic", seed=77)
    assert np.array_equal(whole, again)
    other = numsim.encode(x, "fp8_e5m2", rounding="stochastic", seed=78)
    assert not np.array_equal(whole, other)


def test_random_bits_match_the_reference():
    from numsim.reference.rng import random_bits

    for seed in (0, 1, 2**63 + 5):
        for idx in (0, 1, 12345, 2**40):
            for nb in (1, 8, 32):
                assert numsim.rounding.random_bits(seed, idx, nb) == random_bits(seed, idx, nb)


# ---- bad input -----------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    E = numsim.NumsimError
    with pytest.raises(E, match="fmt: unknown format name 'fp5'"):
        numsim.encode([1.0], "fp5")
    with pytest.raises(E, match="values: .*dtype complex128"):
        numsim.encode(np.array([1 + 2j]), "fp16")
    with pytest.raises(E, match="values: .*bool"):
        numsim.encode(np.array([True]), "fp16")
    with pytest.raises(E, match="values: .*dtype <U"):
        numsim.encode(np.array(["a"]), "fp16")
    with pytest.raises(E, match="codes: code 16 at index \\(1,\\) is out of range"):
        numsim.decode(np.array([1, 16]), "int4")
    with pytest.raises(E, match="codes: code -1"):
        numsim.decode(np.array([-1]), "fp8_e5m2")
    with pytest.raises(E, match="codes: .*float"):
        numsim.decode(np.array([1.0]), "fp16")
    with pytest.raises(E, match="codes: code 8 .* symmetric"):
        numsim.decode(np.array([8]), "int4_sym")
    with pytest.raises(E, match="values: NaN at index \\(1,\\)"):
        numsim.encode(np.array([0.0, np.nan]), "int8")
    with pytest.raises(E, match="values: infinity"):
        numsim.encode(np.array([np.inf]), "int8")
    with pytest.raises(E, match="bits: expected 1..32, got 33"):
        numsim.IntFormat(33)
    with pytest.raises(E, match="bits: expected <= 32"):
        numsim.FloatFormat(8, 24, 127)
    with pytest.raises(E, match="rounding: expected one of"):
        numsim.encode([1.0], "fp16", rounding="banker")
    with pytest.raises(E, match="overflow: 'to_inf' needs a format with inf"):
        numsim.encode([1.0], "fp8_e4m3fn", overflow="to_inf")
    with pytest.raises(E, match="overflow: 'wrap' is for integer formats"):
        numsim.encode([1.0], "fp16", overflow="wrap")
    with pytest.raises(E, match="random_bits: expected an integer in 1..32"):
        numsim.encode([1.0], "fp16", rounding="stochastic", random_bits=0)
    with pytest.raises(E, match="man_bits: expected 0 for a radix-4 format"):
        numsim.FloatFormat(3, 1, 4, radix=4, specials="none")
    with pytest.raises(E, match="values: expected integers of magnitude <= 2\\^53"):
        numsim.encode(np.array([2**60], dtype=np.int64), "int32")


def test_integer_and_float16_inputs_are_exact():
    assert numsim.encode(np.array([3, -4], dtype=np.int32), "int4").tolist() == [3, 12]
    h = np.array([0.1, 65504], dtype=np.float16)
    assert np.array_equal(numsim.encode(h, "fp16"), h.view(np.uint16))


def test_fp32_decode_view_equals_the_c_decoder(rng):
    from numsim._ffi import cptr, ffi, lib
    from numsim.codec import c_format

    codes = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32)
    codes[:6] = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001, 0x7F7FFFFF]
    fast = numsim.decode(codes, "fp32")
    slow = np.empty(codes.shape)
    lib.ns_decode(cptr("void *", codes), 4, codes.size, c_format(numsim.get_format("fp32")), cptr("double *", slow),
                  ffi.new("int64_t *"))
    assert np.array_equal(fast, slow, equal_nan=True)
    assert np.array_equal(np.signbit(fast), np.signbit(slow))
