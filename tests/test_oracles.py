"""Cross-checks with third-party arithmetic where the semantics overlap (each skipped, with the reason,
when the library is absent): MPFR through gmpy2 with contexts that emulate FP16 / BF16 / FP32 (add, mul,
fused multiply-add, every directed mode), ml_dtypes (decode of every code, ties of every format, casts
from float64 values that are float32 values, where every ml_dtypes version rounds once), APyTypes (sequential FP16-accumulator dot
products: equal where products are exact in FP16, and a case showing its rounded-product semantics).
ml_dtypes casts from float32 are in tests/test_formats_wide.py and not repeated here."""

import zlib

import numpy as np
import pytest

import numsim
from numsim.verify import datapath as D
from numsim.units import FloatMacUnit

MODES4 = ("nearest_even", "toward_zero", "toward_pos", "toward_neg")
# MPFR exponent ranges: x = m * 2^e with m in [1/2, 1); emin makes the smallest subnormal 2^(emin - 1)
CTX = {"fp16": (11, -23, 16), "bf16": (8, -132, 128), "fp32": (24, -148, 128)}


def _gmpy2():
    return pytest.importorskip("gmpy2", reason="gmpy2 (MPFR) is an optional test oracle")


def _ctx(gmpy2, fmt, mode):
    p, emin, emax = CTX[fmt]
    rnd = {"nearest_even": gmpy2.RoundToNearest, "toward_zero": gmpy2.RoundToZero,
           "toward_pos": gmpy2.RoundUp, "toward_neg": gmpy2.RoundDown}[mode]
    return gmpy2.context(precision=p, emin=emin, emax=emax, subnormalize=True, round=rnd)


def _to_code(gmpy2, v, fmt):
    """Code of an MPFR value that is exactly a value of fmt (no rounding happens here)."""
    if gmpy2.is_nan(v):
        return None
    if v == 0:
        return 1 << (numsim.get_format(fmt).bits - 1) if gmpy2.is_signed(v) else 0
    f = float(v)
    if fmt == "fp16":
        return int(np.float16(f).view(np.uint16))
    bits = int(np.float32(f).view(np.uint32))
    assert np.float32(f) == f
    return bits >> 16 if fmt == "bf16" else bits


def _codes(fmt, n, rng):
    """Random codes over every exponent, with extra weight on specials-free edge exponents."""
    f = numsim.get_format(fmt)
    c = rng.integers(0, 2**f.bits, n, dtype=np.uint64)
    # half of them: exponents near the subnormal boundary, 1.0, and overflow
    exps = rng.choice([0, 1, 2, f.bias, (1 << f.exp_bits) - 2], n // 2)
    man = rng.integers(0, 1 << f.man_bits, n // 2, dtype=np.uint64)
    sign = rng.integers(0, 2, n // 2, dtype=np.uint64)
    c[: n // 2] = (sign << (f.bits - 1)) | (exps.astype(np.uint64) << f.man_bits) | man
    v = numsim.decode(c, fmt)
    return c[np.isfinite(v)].astype(f.dtype)


def _mpfr_binary(gmpy2, op, fmt, mode, x, y, z=None):
    out = []
    with gmpy2.context(_ctx(gmpy2, fmt, mode)):
        for i in range(x.size):
            a, b = gmpy2.mpfr(float(x[i])), gmpy2.mpfr(float(y[i]))
            if z is None:
                r = gmpy2.add(a, b) if op == "add" else gmpy2.mul(a, b)
            else:
                r = gmpy2.fma(a, b, gmpy2.mpfr(float(z[i])))
            out.append(_to_code(gmpy2, r, fmt))
    return out


def _signed_zero_floats(codes, fmt):
    v = numsim.decode(codes, fmt)
    neg = (codes.astype(np.uint64) >> (numsim.get_format(fmt).bits - 1)).astype(bool)
    v[(v == 0) & neg] = -0.0
    return v


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("mode", MODES4)
def test_add_through_a_unit_equals_mpfr(fmt, mode):
    """x + y as one fused step acc + x * 1 of a FloatMacUnit (exact 384-bit path for bf16 and fp32)."""
    gmpy2 = _gmpy2()
    rng = np.random.default_rng(zlib.crc32(f"{fmt} {mode}".encode()))
    x = _codes(fmt, 1500, rng)
    y = _codes(fmt, 1500, rng)[: x.size]
    x = x[: y.size]
    u = FloatMacUnit(name="adder", a_fmt=fmt, b_fmt="int2", acc_fmt=fmt, order="sequential", acc_rounding=mode)
    got = D.c_float_mac_steps(u, x, y[:, None], np.ones((y.size, 1), np.uint32))
    want = _mpfr_binary(gmpy2, "add", fmt, mode, _signed_zero_floats(x, fmt), _signed_zero_floats(y, fmt))
    for i, w in enumerate(want):
        assert w is not None and int(got[i]) == w, (fmt, mode, hex(int(x[i])), hex(int(y[i])), hex(int(got[i])), w)


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("mode", MODES4)
def test_mul_equals_mpfr(fmt, mode):
    """x * y: the product is exact in float64 (<= 48 significand bits), so numsim.encode rounds it once;
    for fp16 also through the fp16 x fp16 -> fp16 unit with a -0 accumulator (x * y + -0 = x * y)."""
    gmpy2 = _gmpy2()
    rng = np.random.default_rng(zlib.crc32(f"{fmt} {mode} 1".encode()))
    x = _codes(fmt, 1500, rng)
    y = _codes(fmt, 1500, rng)[: x.size]
    x = x[: y.size]
    fx, fy = _signed_zero_floats(x, fmt), _signed_zero_floats(y, fmt)
    got = numsim.encode(fx * fy, fmt, rounding=mode)
    want = _mpfr_binary(gmpy2, "mul", fmt, mode, fx, fy)
    assert [int(g) for g in got] == want
    if fmt == "fp16":
        u = FloatMacUnit(name="mul16", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", acc_rounding=mode)
        steps = D.c_float_mac_steps(u, np.full(x.size, 0x8000), x[:, None], y[:, None])
        nonzero = fx * fy != 0        # exact zero products: -0 + (+0) follows the sum rule, not the product's
        assert np.array_equal(steps[nonzero], got[nonzero])


@pytest.mark.parametrize("acc", ["fp16", "fp32"])
@pytest.mark.parametrize("mode", MODES4)
def test_fused_multiply_add_equals_mpfr_fma(acc, mode):
    """acc + a * b of FP16 operands rounded once into an FP16 or FP32 accumulator = MPFR's fma."""
    gmpy2 = _gmpy2()
    rng = np.random.default_rng(zlib.crc32(f"{acc} {mode} 2".encode()))
    a = _codes("fp16", 1200, rng)
    b = _codes("fp16", 1200, rng)[: a.size]
    a = a[: b.size]
    c = _codes(acc, 1200, rng)[: a.size]
    a, b = a[: c.size], b[: c.size]
    if acc == "fp32":
        # accumulators near the products' scale, where the fused rounding matters
        c[::2] = numsim.encode(_signed_zero_floats(a[::2], "fp16") * _signed_zero_floats(b[::2], "fp16")
                               * -(1 + 2.0**-12), "fp32")
    u = FloatMacUnit(name="fma", a_fmt="fp16", b_fmt="fp16", acc_fmt=acc, order="sequential", acc_rounding=mode)
    got = D.c_float_mac_steps(u, c, a[:, None], b[:, None])
    want = _mpfr_binary(gmpy2, "fma", acc, mode, _signed_zero_floats(a, "fp16"), _signed_zero_floats(b, "fp16"),
                        _signed_zero_floats(c, acc))
    for i, w in enumerate(want):
        assert int(got[i]) == w, (acc, mode, hex(int(a[i])), hex(int(b[i])), hex(int(c[i])), hex(int(got[i])), w)


def test_directed_overflow_follows_ieee_like_mpfr():
    gmpy2 = _gmpy2()
    x = np.array([65504.0, -65504.0])
    for mode in MODES4:
        got = [int(g) for g in numsim.encode(x * 1.5, "fp16", rounding=mode)]
        assert got == _mpfr_binary(gmpy2, "mul", "fp16", mode, x, np.array([1.5, 1.5])), mode


# ---- ml_dtypes ----------------------------------------------------------------------------------

ML = {"fp8_e4m3fn": "float8_e4m3fn", "fp8_e4m3fnuz": "float8_e4m3fnuz", "fp8_e5m2": "float8_e5m2",
      "fp6_e2m3": "float6_e2m3fn", "fp6_e3m2": "float6_e3m2fn", "fp4_e2m1": "float4_e2m1fn", "bf16": "bfloat16"}


def _ml(name):
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (test extra) is not installed")
    if not hasattr(ml_dtypes, ML[name]):
        pytest.skip(f"this ml_dtypes has no {ML[name]}")
    return np.dtype(getattr(ml_dtypes, ML[name]))


@pytest.mark.parametrize("name", list(ML))
def test_every_code_decodes_like_ml_dtypes(name):
    dt = _ml(name)
    fmt = numsim.get_format(name)
    codes = np.arange(2**fmt.bits, dtype=np.uint32).astype(np.uint8 if dt.itemsize == 1 else np.uint16)
    with np.errstate(invalid="ignore"):
        theirs = codes.view(dt).astype(np.float64)
    ours = numsim.decode(codes, fmt)
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.array_equal(ours[~nan], theirs[~nan])
    assert np.array_equal(np.signbit(ours[~nan]), np.signbit(theirs[~nan]))        # -0 included


@pytest.mark.parametrize("name", list(ML))
def test_every_tie_and_its_neighbours_round_like_ml_dtypes(name):
    """The float32 midpoint of every pair of adjacent finite values, and the float32 values just above and
    below it: ml_dtypes and numsim round all of them the same way (nearest-even)."""
    dt = _ml(name)
    fmt = numsim.get_format(name)
    v = np.unique(numsim.decode(np.arange(2**fmt.bits), fmt))
    v = v[np.isfinite(v)]
    mid = ((v[:-1] + v[1:]) / 2).astype(np.float32)
    assert np.array_equal(mid.astype(np.float64), (v[:-1] + v[1:]) / 2)        # exact in float32
    x = np.concatenate([mid, np.nextafter(mid, np.float32(np.inf)), np.nextafter(mid, np.float32(-np.inf)),
                        v.astype(np.float32)])
    overflow = "to_nan" if name == "fp8_e4m3fn" else None
    ours = numsim.decode(numsim.encode(x, fmt, overflow=overflow), fmt)
    theirs = x.astype(dt).astype(np.float64)
    assert np.array_equal(ours, theirs, equal_nan=True)


def test_ml_dtypes_cast_equals_numsim_where_the_input_is_a_float32():
    """Where the semantics overlap: a float64 that is exactly a float32 is rounded once by both
    (ml_dtypes casts float64 through float32 in some versions, once in others; on float32 values the
    two are the same cast). numsim rounds any float64 once, correctly: 1 + 2^-4 + 2^-30, just above
    the midpoint of 1 and 1.125 in e4m3, goes up."""
    dt = _ml("fp8_e4m3fn")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(100_000) * 2.0 ** rng.integers(-12, 9, 100_000)
    x32 = x.astype(np.float32)
    assert np.array_equal(numsim.encode(x32, "fp8_e4m3fn", overflow="to_nan"), x32.astype(dt).view(np.uint8))
    x64 = x32.astype(np.float64)
    assert np.array_equal(numsim.encode(x64, "fp8_e4m3fn", overflow="to_nan"), x64.astype(dt).view(np.uint8))
    tie_plus = np.array([1 + 2.0**-4 + 2.0**-30])
    assert numsim.decode(numsim.encode(tie_plus, "fp8_e4m3fn"), "fp8_e4m3fn")[0] == 1.125


# ---- APyTypes ----------------------------------------------------------------------------------------

def _apy():
    return pytest.importorskip("apytypes", reason="apytypes (test extra) is not installed")


def _apy_dot_fp16(apy, x, y):
    A = apy.APyFloatArray.from_float(list(x), exp_bits=5, man_bits=10)
    B = apy.APyFloatArray.from_float(list(y), exp_bits=5, man_bits=10)
    with apy.APyFloatAccumulatorContext(exp_bits=5, man_bits=10, bias=15, quantization=apy.QuantizationMode.RND_CONV):
        return float(A @ B)


FP16_SEQ = FloatMacUnit(name="fp16_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", order="sequential")


def test_apytypes_fp16_dot_equals_numsim_where_products_are_exact():
    """Operands with <= 5 significant bits and moderate exponents: every product is exact in FP16, so
    APyTypes' rounded products are the unrounded ones and both give the same sequential FP16 sums."""
    apy = _apy()
    rng = np.random.default_rng(8)
    for _ in range(60):
        K = int(rng.integers(1, 200))
        x = rng.integers(-31, 32, K) * 2.0 ** rng.integers(-8, 4, K)
        y = rng.integers(-31, 32, K) * 2.0 ** rng.integers(-8, 4, K)
        xc, yc = numsim.encode(x, "fp16"), numsim.encode(y, "fp16")
        assert np.array_equal(numsim.decode(xc, "fp16") * numsim.decode(yc, "fp16"),
                              (x * y).astype(np.float16).astype(np.float64))      # products exact in FP16
        assert FP16_SEQ.dot(xc, yc).value == _apy_dot_fp16(apy, x, y)


def test_apytypes_rounds_each_product_to_the_accumulator_first():
    """APyTypes' documented accumulator semantics: each product is quantized to the accumulator format
    before it is added. On random FP16 data it equals a numpy sequential sum of FP16-rounded products,
    and numsim's unrounded-product unit departs from it."""
    apy = _apy()
    rng = np.random.default_rng(9)
    differ = 0
    for _ in range(80):
        x = numsim.decode(numsim.encode(rng.standard_normal(48), "fp16"), "fp16")
        y = numsim.decode(numsim.encode(rng.standard_normal(48), "fp16"), "fp16")
        acc = np.float16(0)
        for p in (x * y).astype(np.float16):
            acc = np.float16(np.float64(acc) + np.float64(p))
        theirs = _apy_dot_fp16(apy, x, y)
        assert theirs == float(acc)
        differ += FP16_SEQ.dot(numsim.encode(x, "fp16"), numsim.encode(y, "fp16")).value != theirs
    assert differ > 10
    # A minimal case: acc = 1 + 2^-10, then + (2^-11 - 2^-31). The exact sum lies just below the midpoint
    # 1 + 3 * 2^-11, so one rounding gives 1 + 2^-10; APyTypes first rounds the product to 2^-11, lands on
    # the midpoint and rounds to even, 1 + 2^-9.
    x = [1 + 2.0**-10, 1 + 2.0**-10]
    y = [1.0, 2.0**-11 * (1 - 2.0**-10)]
    assert FP16_SEQ.dot(numsim.encode(x, "fp16"), numsim.encode(y, "fp16")).value == 1 + 2.0**-10
    assert _apy_dot_fp16(apy, x, y) == 1 + 2.0**-9
