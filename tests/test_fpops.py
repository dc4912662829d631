"""numsim.fpops (standalone add/sub/mul/div/fma/convert with IEEE flags) against the exact reference
(numsim.reference.fpops, rationals), exhaustively for formats of 8 bits or fewer, with hypothesis for
fp16 / bf16 / fp32, and against numpy's IEEE float16/float32 arithmetic and MPFR (gmpy2)."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numsim import NumsimError, fpops
from numsim.formats import FloatFormat, get_format
from numsim.reference import fpops as R
from numsim.reference.formats import decode_exact

MODES = ["nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos", "odd"]
NAN_RULES = ["x86", "arm", "riscv"]


def value_table(fmt):
    """float64 value of every code (NaN for NaN, +-inf), from the reference decoder; -0 keeps its sign."""
    vals = np.empty(2**fmt.bits)
    for c in range(2**fmt.bits):
        v = decode_exact(c, fmt)
        if v == "nan":
            vals[c] = np.nan
        elif v in ("inf", "-inf"):
            vals[c] = np.inf if v == "inf" else -np.inf
        else:
            vals[c] = float(v)
            if v == 0 and c >> (fmt.bits - 1):
                vals[c] = -0.0
    return vals


def scalar_reference(op, fmt, mode, codes, tininess="after", nan_rule="x86", out_fmt=None):
    env = R.Env(mode, None, tininess, nan_rule)
    fn = getattr(R, op)
    if op == "convert":
        res = [fn(int(a), fmt, out_fmt, env) for a in codes[0]]
    else:
        res = [fn(*[int(x) for x in xs], fmt, env, out_fmt) for xs in zip(*codes)]
    return (np.array([r[0] for r in res], dtype=np.uint32), np.array([r[1] for r in res], dtype=np.uint8))


def assert_same(got, ref, codes, what):
    gc, gf = got
    rc, rf = ref
    gc = gc.astype(np.uint32).reshape(-1)
    gf = gf.reshape(-1)
    bad = np.flatnonzero((gc != rc) | (gf != rf))
    if bad.size:
        i = int(bad[0])
        ops = [hex(int(c.reshape(-1)[i])) for c in codes]
        raise AssertionError(f"{what}: {bad.size} mismatches; first {ops}: numsim {hex(int(gc[i]))} flags "
                             f"{int(gf[i]):#x}, reference {hex(int(rc[i]))} flags {int(rf[i]):#x}")


def vector_reference(op, fmt, mode, a, b, tininess="after"):
    """Exhaustive-pair oracle for radix-2 formats of <= 8 bits: every finite sum/product is a float64
    (few significand bits, small exponent range), rounded by the vectorised reference; the pairs with
    a NaN or inf operand and exact zeros go through the scalar reference."""
    vals = value_table(fmt)
    va, vb = vals[a], vals[b]
    with np.errstate(invalid="ignore"):
            exact = {"add": va + vb, "sub": va - vb, "mul": va * vb}[op]
    finite = np.isfinite(va) & np.isfinite(vb) & (exact != 0)
    codes = np.zeros(a.shape, np.uint32)
    flags = np.zeros(a.shape, np.uint8)
    codes[finite], flags[finite] = R.round_f64(exact[finite], fmt, mode, tininess)
    rest = np.flatnonzero(~finite)
    rc, rf = scalar_reference(op, fmt, mode, [a[rest], b[rest]], tininess)
    codes[rest], flags[rest] = rc, rf
    return codes, flags


EIGHT_BIT = ["fp8_e4m3fn", "fp8_e5m2", "fp8_e4m3fnuz"]


@pytest.mark.parametrize("fmt_name", EIGHT_BIT)
@pytest.mark.parametrize("op", ["add", "mul"])
def test_exhaustive_8bit_pairs_every_mode(fmt_name, op):
    fmt = get_format(fmt_name)
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    for mode in MODES:
        ref = vector_reference(op, fmt, mode, a, b)
        assert_same(getattr(fpops, op)(a, b, fmt, mode), ref, [a, b], f"{fmt_name} {op} {mode}")


def test_exhaustive_8bit_tininess_before_rounding():
    fmt = get_format("fp8_e5m2")
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    for mode in ("nearest_even", "toward_pos"):
        ref = vector_reference("mul", fmt, mode, a, b, tininess="before")
        assert_same(fpops.mul(a, b, fmt, mode, tininess="before"), ref, [a, b], f"e5m2 mul {mode} before")


SMALL = {
    "fp4_e2m1": get_format("fp4_e2m1"),
    "fp6_e3m2": get_format("fp6_e3m2"),
    "fp6_e2m3": get_format("fp6_e2m3"),
    "e3m2_ieee_nosub": FloatFormat(3, 2, 3, subnormals=False, specials="ieee"),
    "e3m1_fn": FloatFormat(3, 1, 3, specials="fn"),
    "e2m2_fnuz": FloatFormat(2, 2, 2, specials="fnuz"),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_exhaustive_small_formats_all_binary_ops(name):
    fmt = SMALL[name]
    n = 2**fmt.bits
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    for mode in MODES:
        for op in ("add", "sub", "mul"):
            assert_same(getattr(fpops, op)(a, b, fmt, mode), vector_reference(op, fmt, mode, a, b), [a, b],
                        f"{name} {op} {mode}")
    sub = slice(None) if n <= 16 else slice(None, None, 7)
    for mode in MODES:
        ref = scalar_reference("div", fmt, mode, [a[sub], b[sub]])
        assert_same(fpops.div(a[sub], b[sub], fmt, mode), ref, [a[sub], b[sub]], f"{name} div {mode}")


@pytest.mark.parametrize("name", ["fp4r4", "fp4r4_odd"])
def test_radix4_every_pair_every_op(name):
    fmt = get_format(name)
    variants = [fmt, FloatFormat(3, 0, 4, radix=4, specials="none", r4_threshold="linear"),
                FloatFormat(3, 0, 3, radix=4, specials="none", r4_zero="none")]
    a, b = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    for f in variants:
        for mode in MODES[:5]:
            for tin in ("after", "before"):
                for op in ("add", "sub", "mul", "div"):
                    ref = scalar_reference(op, f, mode, [a, b], tin)
                    assert_same(getattr(fpops, op)(a, b, f, mode, tininess=tin), ref, [a, b], f"{f} {op} {mode}")


def test_fma_small_formats_every_triple():
    fmt = get_format("fp4_e2m1")
    a, b, c = [g.reshape(-1) for g in np.meshgrid(*[np.arange(16)] * 3, indexing="ij")]
    for mode in MODES:
        assert_same(fpops.fma(a, b, c, fmt, mode), scalar_reference("fma", fmt, mode, [a, b, c]), [a, b, c],
                    f"fp4 fma {mode}")


@pytest.mark.parametrize("fmt_name", ["fp8_e4m3fn", "fp8_e5m2"])
def test_fma_8bit_sampled_triples_every_mode_and_nan_rule(fmt_name):
    fmt = get_format(fmt_name)
    rng = np.random.default_rng(7)
    a, b, c = (rng.integers(0, 256, 3000) for _ in range(3))
    for mode in MODES:
        for rule in NAN_RULES:
            ref = scalar_reference("fma", fmt, mode, [a, b, c], nan_rule=rule)
            assert_same(fpops.fma(a, b, c, fmt, mode, nan_rule=rule), ref, [a, b, c], f"{fmt_name} fma {mode}")


def test_mixed_precision_fma_fp8_products_into_fp16():
    f8, f16 = get_format("fp8_e4m3fn"), get_format("fp16")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, 4000), rng.integers(0, 256, 4000)
    c = rng.integers(0, 2**16, 4000)
    for mode in MODES:
        ref = scalar_reference("fma", f8, mode, [a, b, c], out_fmt=f16)
        assert_same(fpops.fma(a, b, c, f8, mode, out_fmt=f16), ref, [a, b, c], f"fp8*fp8+fp16 {mode}")


@pytest.mark.parametrize("pair", [("fp16", "fp8_e4m3fn"), ("fp16", "fp8_e5m2"), ("fp16", "fp4_e2m1"),
                                  ("fp16", "fp8_e4m3fnuz"), ("bf16", "fp6_e3m2")])
def test_conversions_exhaustive_from_16_bits(pair):
    src, dst = get_format(pair[0]), get_format(pair[1])
    a = np.arange(2**16)
    vals = value_table(src)
    for mode in MODES if dst.radix == 2 else MODES[:5]:
        for overflow in ([None, "to_nan"] if dst.specials in ("fn", "fnuz") else [None]):
            got = fpops.convert(a, src, dst, mode, overflow=overflow)
            finite = np.isfinite(vals) & (vals != 0)
            if dst.radix == 2:
                rc = np.zeros(a.size, np.uint32)
                rf = np.zeros(a.size, np.uint8)
                rc[finite], rf[finite] = R.round_f64(vals[finite], dst, mode, overflow=overflow)
                rest = np.flatnonzero(~finite)
            else:
                rc, rf = np.zeros(a.size, np.uint32), np.zeros(a.size, np.uint8)
                rest = np.arange(a.size)
            env = R.Env(mode, overflow, "after", "x86")
            for i in rest:
                rc[i], rf[i] = R.convert(int(a[i]), src, dst, env)
            assert_same(got, (rc, rf), [a], f"{src}->{dst} {mode} {overflow}")


def test_conversion_to_radix4_every_fp8_code():
    src, dst = get_format("fp8_e5m2"), get_format("fp4r4")
    a = np.arange(256)
    for mode in MODES[:5]:
        for tin in ("after", "before"):
            ref = scalar_reference("convert", src, mode, [a], tin, out_fmt=dst)
            assert_same(fpops.convert(a, src, dst, mode, tininess=tin), ref, [a], f"e5m2->fp4r4 {mode}")


def test_widening_conversions_are_exact_and_round_trip():
    for small in ("fp8_e4m3fn", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1", "bf16"):
        f = get_format(small)
        codes = np.arange(2**f.bits)
        wide, flags = fpops.convert(codes, f, "fp32")
        vals = value_table(f)
        ok = ~np.isnan(vals)
        assert (flags[ok] == 0).all()
        back, flags2 = fpops.convert(wide, "fp32", f)
        assert (back[ok] == codes[ok]).all() and (flags2[ok] == 0).all()


# ---- fp16 / bf16 / fp32: hypothesis against the exact reference ------------------------------------------

def _codes(bits):
    return st.integers(0, 2**bits - 1)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(a=_codes(16), b=_codes(16), c=_codes(16), mode=st.sampled_from(MODES), tin=st.sampled_from(["after", "before"]),
       rule=st.sampled_from(NAN_RULES), name=st.sampled_from(["fp16", "bf16"]))
def test_16bit_ops_match_reference(a, b, c, mode, tin, rule, name):
    fmt = get_format(name)
    env = R.Env(mode, None, tin, rule)
    kw = dict(tininess=tin, nan_rule=rule)
    for op in ("add", "sub", "mul", "div"):
        z, f = getattr(fpops, op)(a, b, fmt, mode, **kw)
        assert (int(z), int(f)) == getattr(R, op)(a, b, fmt, env), (op, hex(a), hex(b))
    z, f = fpops.fma(a, b, c, fmt, mode, **kw)
    assert (int(z), int(f)) == R.fma(a, b, c, fmt, env), ("fma", hex(a), hex(b), hex(c))


def _fp32_near_boundaries():
    """fp32 codes drawn so that subnormals, the underflow boundary, overflow and specials come up."""
    exps = st.sampled_from([0, 1, 2, 3, 24, 25, 100, 126, 127, 128, 150, 200, 253, 254, 255])
    mans = st.one_of(st.integers(0, 2**23 - 1), st.sampled_from([0, 1, 2**23 - 1, 2**22, 2**22 - 1]))
    return st.builds(lambda s, e, m: (s << 31) | (e << 23) | m, st.integers(0, 1), exps, mans)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(a=_fp32_near_boundaries(), b=_fp32_near_boundaries(), c=_fp32_near_boundaries(),
       mode=st.sampled_from(MODES), tin=st.sampled_from(["after", "before"]), rule=st.sampled_from(NAN_RULES))
def test_fp32_ops_match_reference(a, b, c, mode, tin, rule):
    fmt = get_format("fp32")
    env = R.Env(mode, None, tin, rule)
    kw = dict(tininess=tin, nan_rule=rule)
    for op in ("add", "sub", "mul", "div"):
        z, f = getattr(fpops, op)(a, b, fmt, mode, **kw)
        assert (int(z), int(f)) == getattr(R, op)(a, b, fmt, env), (op, hex(a), hex(b))
    z, f = fpops.fma(a, b, c, fmt, mode, **kw)
    assert (int(z), int(f)) == R.fma(a, b, c, fmt, env), ("fma", hex(a), hex(b), hex(c))
    z, f = fpops.convert(a, "fp32", "fp16", mode, **kw)
    assert (int(z), int(f)) == R.convert(a, fmt, get_format("fp16"), env)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(a=_codes(31), b=_codes(31), c=_codes(31), mode=st.sampled_from(MODES))
def test_widest_significand_fma(a, b, c, mode):
    """e1m30 (31-bit significands, 62-bit products): the exact-significand path at its widest."""
    fmt = FloatFormat(1, 30, 1, specials="none")
    env = R.Env(mode)
    z, f = fpops.fma(a, b, c, fmt, mode)
    assert (int(z), int(f)) == R.fma(a, b, c, fmt, env)
    z, f = fpops.div(a, b, fmt, mode)
    assert (int(z), int(f)) == R.div(a, b, fmt, env)


# ---- independent oracles: numpy IEEE arithmetic (nearest-even) and MPFR (every mode) ---------------------------

def test_fp16_against_numpy_float32_every_operand_pair_sample():
    """float32 holds every fp16 sum/product/fma exactly or rounds innocuously (24 >= 2 * 11 + 2), so
    numpy's float32 result rounded to float16 is the correctly rounded fp16 result."""
    rng = np.random.default_rng(11)
    a = rng.integers(0, 2**16, 200_000).astype(np.uint16)
    b = rng.integers(0, 2**16, 200_000).astype(np.uint16)
    fa, fb = a.view(np.float16).astype(np.float32), b.view(np.float16).astype(np.float32)
    with np.errstate(all="ignore"):
        for op, f in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide)):
            ref = f(fa, fb).astype(np.float16)
            got, _ = getattr(fpops, op)(a, b, "fp16")
            nan = np.isnan(ref)
            assert (got[~nan] == ref[~nan].view(np.uint16)).all(), op
            assert np.isnan(got[nan].view(np.float16)).all()


def test_fp32_against_numpy_float32():
    rng = np.random.default_rng(12)
    a = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    fa, fb = a.view(np.float32), b.view(np.float32)
    with np.errstate(all="ignore"):
        for op, f in (("add", np.add), ("mul", np.multiply), ("div", np.divide)):
            ref = f(fa, fb)
            got, _ = getattr(fpops, op)(a, b, "fp32")
            nan = np.isnan(ref)
            assert (got[~nan] == ref[~nan].view(np.uint32)).all(), op


def test_fp16_fma_against_numpy_float64():
    """fp16 a*b is exact in float64 and a*b + c rounds innocuously to fp16 from float64 (53 >= 2*11+2)...
    except through double rounding of the sum, which float64 avoids only when the sum is exact:
    with 11-bit significands and exponents within [-24, 31] the exact sum needs at most 11+11+56 bits,
    so compare only where float64 holds it exactly (checked with fractions)."""
    rng = np.random.default_rng(13)
    a, b, c = (rng.integers(0, 2**16, 20_000).astype(np.uint16) for _ in range(3))
    fa, fb, fc = (x.view(np.float16).astype(np.float64) for x in (a, b, c))
    with np.errstate(all="ignore"):
        s = fa * fb + fc
    got, _ = fpops.fma(a, b, c, "fp16")
    checked = 0
    for i in range(a.size):
        if not np.isfinite(s[i]) or abs(s[i]) > 65504:
            continue
        if Fraction(float(fa[i])) * Fraction(float(fb[i])) + Fraction(float(fc[i])) != Fraction(float(s[i])):
            continue
        checked += 1
        assert got[i] == np.float16(s[i]).view(np.uint16), (hex(a[i]), hex(b[i]), hex(c[i]))
    assert checked > 10_000


def test_fp16_against_mpfr_directed_modes():
    gmpy2 = pytest.importorskip("gmpy2", reason="gmpy2 (MPFR) is an optional test oracle")
    rmodes = {"toward_zero": gmpy2.RoundToZero, "toward_neg": gmpy2.RoundDown, "toward_pos": gmpy2.RoundUp,
              "nearest_even": gmpy2.RoundToNearest}
    rng = np.random.default_rng(14)
    a = rng.integers(0, 0x7C00, 3000) | (rng.integers(0, 2, 3000) << 15)
    b = rng.integers(0, 0x7C00, 3000) | (rng.integers(0, 2, 3000) << 15)
    fa, fb = a.astype(np.uint16).view(np.float16), b.astype(np.uint16).view(np.float16)
    for mode, rm in rmodes.items():
        got, flags = fpops.mul(a, b, "fp16", mode)
        for i in range(a.size):
            with gmpy2.context(precision=11, emin=-23, emax=16, subnormalize=True, round=rm) as lc:
                r = gmpy2.mul(gmpy2.mpfr(float(fa[i])), gmpy2.mpfr(float(fb[i])))
                inexact = lc.inexact
            ref = np.float16(float(r))
            if abs(float(r)) > 65504:                      # MPFR's overflow bound is emax, not max finite
                continue
            assert got[i] == ref.view(np.uint16), (mode, hex(a[i]), hex(b[i]))
            assert bool(flags[i] & fpops.INEXACT) == bool(inexact), (mode, hex(a[i]), hex(b[i]))


# ---- flags, rules and errors by example ----------------------------------------------------------------------

def test_flags_by_example():
    z, f = fpops.add(0x3C00, 0x0001, "fp16")                       # 1 + tiny: inexact
    assert int(z) == 0x3C00 and int(f) == fpops.INEXACT
    z, f = fpops.mul(0x7BFF, 0x4000, "fp16")                       # 65504 * 2: overflow to inf
    assert int(z) == 0x7C00 and int(f) == fpops.OVERFLOW | fpops.INEXACT
    z, f = fpops.mul(0x7BFF, 0x4000, "fp16", "toward_zero")        # ... or max finite
    assert int(z) == 0x7BFF and int(f) == fpops.OVERFLOW | fpops.INEXACT
    z, f = fpops.div(0x3C00, 0x0000, "fp16")                       # 1 / 0
    assert int(z) == 0x7C00 and int(f) == fpops.INFINITE
    z, f = fpops.sub(0x7C00, 0x7C00, "fp16")                       # inf - inf: invalid, x86 default NaN
    assert int(z) == 0xFE00 and int(f) == fpops.INVALID
    z, f = fpops.sub(0x7C00, 0x7C00, "fp16", nan_rule="riscv")
    assert int(z) == 0x7E00
    z, f = fpops.mul(0x0400, 0x3800, "fp16")                       # 2^-14 * 0.5: exact subnormal, no underflow
    assert int(z) == 0x0200 and int(f) == 0
    z, f = fpops.mul(0x0401, 0x3800, "fp16")                       # inexact subnormal: underflow
    assert int(f) == fpops.UNDERFLOW | fpops.INEXACT
    # (1 - 2^-10) * (1 + 2^-10) * 2^-14 = (1 - 2^-20) * 2^-14 rounds up to 2^-14 even at 11 bits with an
    # unbounded exponent: tiny before rounding, not after
    z, f = fpops.mul(0x3BFE, 0x0401, "fp16", "toward_pos")
    assert int(z) == 0x0400
    assert int(f) == fpops.INEXACT
    z, f = fpops.mul(0x3BFE, 0x0401, "fp16", "toward_pos", tininess="before")
    assert int(f) == fpops.INEXACT | fpops.UNDERFLOW
    assert fpops.flag_names(0x15) == ["inexact", "overflow", "invalid"]


def test_nan_rules_follow_softfloat_specializations():
    snan, qnan = 0x7C01, 0xFE55
    z, f = fpops.add(qnan, snan, "fp16", nan_rule="x86")      # x86: the first NaN, quieted
    assert int(z) == 0xFE55 and int(f) == fpops.INVALID
    z, f = fpops.add(qnan, snan, "fp16", nan_rule="arm")      # ARM: the signaling NaN wins
    assert int(z) == 0x7E01 and int(f) == fpops.INVALID
    z, f = fpops.add(qnan, snan, "fp16", nan_rule="riscv")    # RISC-V: canonical
    assert int(z) == 0x7E00 and int(f) == fpops.INVALID
    z, f = fpops.convert(0xFE55, "fp16", "fp32")               # payload kept, left-aligned
    assert int(z) == 0xFFCAA000 and int(f) == 0
    z, f = fpops.convert(0x7F, "fp8_e4m3fn", "fp16")
    assert int(z) == 0x7E00


def test_formats_without_inf_or_nan():
    z, f = fpops.mul(0x7E, 0x7E, "fp8_e4m3fn")                  # 448 * 448: saturates (the default)
    assert int(z) == 0x7E and int(f) == fpops.OVERFLOW | fpops.INEXACT
    z, f = fpops.mul(0x7E, 0x7E, "fp8_e4m3fn", overflow="to_nan")
    assert int(z) == 0x7F
    z, f = fpops.convert(0x7C00, "fp16", "fp4_e2m1")            # inf into a format without inf
    assert int(z) == 0x7 and int(f) == fpops.INVALID
    z, f = fpops.convert(0x7E00, "fp16", "fp4_e2m1")            # NaN into a format without NaN
    assert int(z) == 0 and int(f) == fpops.INVALID
    z, f = fpops.div(0x3C, 0x00, "fp8_e4m3fnuz")                 # 1 / 0 in fnuz: largest finite
    assert int(f) == fpops.INFINITE


def test_broadcasting_and_dtypes():
    z, f = fpops.add(np.arange(4, dtype=np.uint8).reshape(2, 2), np.uint8(0x38), "fp8_e4m3fn")
    assert z.shape == (2, 2) and z.dtype == np.uint8 and f.dtype == np.uint8
    z, _ = fpops.convert(np.zeros(3, np.uint16), "fp16", "fp32")
    assert z.dtype == np.uint32


@pytest.mark.parametrize("call, arg", [
    (lambda: fpops.add([0x100], [0], "fp8_e4m3fn"), "a"),
    (lambda: fpops.add([0], [-1], "fp8_e4m3fn"), "b"),
    (lambda: fpops.fma(0, 0, 0x10000, "fp16"), "c"),
    (lambda: fpops.add([0.5], [0], "fp16"), "a"),
    (lambda: fpops.add(0, 0, "int8"), "fmt"),
    (lambda: fpops.add(0, 0, "fp16", out_fmt="nope"), "out_fmt"),
    (lambda: fpops.add(0, 0, "fp16", "stochastic"), "rounding"),
    (lambda: fpops.add(0, 0, "fp16", "sideways"), "rounding"),
    (lambda: fpops.add(0, 0, "fp4r4", "odd"), "rounding"),
    (lambda: fpops.add(0, 0, "fp16", overflow="wrap"), "overflow"),
    (lambda: fpops.add(0, 0, "fp8_e4m3fn", overflow="to_inf"), "overflow"),
    (lambda: fpops.add(0, 0, "fp16", tininess="never"), "tininess"),
    (lambda: fpops.add(0, 0, "fp16", nan_rule="mips"), "nan_rule"),
    (lambda: fpops.convert(0, "fp16", "nope"), "to_fmt"),
    (lambda: fpops.convert(0, "nope", "fp16"), "from_fmt"),
    (lambda: fpops.flag_names(64), "mask"),
])
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(NumsimError, match=rf"^{arg}\b"):
        call()


# ---- integer conversions (SoftFloat's f16_to_i32 / i32_to_f16 for any numsim integer format) ---------------

@pytest.mark.parametrize("fmt_name", ["fp8_e5m2", "fp8_e4m3fn", "fp6_e3m2"])
@pytest.mark.parametrize("int_name", ["int8", "uint8", "int4_sym", "int32", "uint4"])
def test_float_to_int_every_code_mode_rule_and_exactness(fmt_name, int_name):
    f, i = get_format(fmt_name), get_format(int_name)
    a = np.arange(2**f.bits)
    for mode in MODES:
        for rule in NAN_RULES:
            for exact in (False, True):
                env = R.Env(mode, None, "after", rule)
                ref = [R.float_to_int(int(x), f, i, env, exact) for x in a]
                ref = (np.array([r[0] for r in ref], np.uint32), np.array([r[1] for r in ref], np.uint8))
                got = fpops.convert(a, f, i, mode, nan_rule=rule, exact=exact)
                assert_same(got, ref, [a], f"{fmt_name}->{int_name} {mode} {rule} exact={exact}")


@pytest.mark.parametrize("int_name, fmt_name", [("int8", "fp8_e4m3fn"), ("uint8", "fp8_e5m2"), ("int8", "fp4_e2m1"),
                                                ("int4_sym", "fp4r4"), ("int8", "fp16")])
def test_int_to_float_every_code(int_name, fmt_name):
    i, f = get_format(int_name), get_format(fmt_name)
    a = np.array([c for c in range(2**i.bits) if i.valid_code(c)])
    for mode in MODES if f.radix == 2 else MODES[:5]:
        env = R.Env(mode)
        ref = [R.int_to_float(int(x), i, f, env) for x in a]
        ref = (np.array([r[0] for r in ref], np.uint32), np.array([r[1] for r in ref], np.uint8))
        assert_same(fpops.convert(a, i, f, mode), ref, [a], f"{int_name}->{fmt_name} {mode}")


@settings(derandomize=True, max_examples=300, deadline=None)
@given(a=_fp32_near_boundaries(), b=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES),
       rule=st.sampled_from(NAN_RULES), exact=st.booleans(), signed=st.booleans())
def test_fp32_int32_conversions_match_reference(a, b, mode, rule, exact, signed):
    f32, i32 = get_format("fp32"), get_format("int32" if signed else "uint32")
    env = R.Env(mode, None, "after", rule)
    z, fl = fpops.convert(a, f32, i32, mode, nan_rule=rule, exact=exact)
    assert (int(z), int(fl)) == R.float_to_int(a, f32, i32, env, exact)
    z, fl = fpops.convert(b, i32, f32, mode)
    assert (int(z), int(fl)) == R.int_to_float(b, i32, f32, env)


def test_integer_conversion_errors():
    with pytest.raises(NumsimError, match=r"^a\b"):
        fpops.convert([0x80], "int8_sym", "fp16")            # the excluded code of a symmetric format
    with pytest.raises(NumsimError, match=r"^to_fmt\b"):
        fpops.convert(0, "int8", "int16")
    with pytest.raises(NumsimError, match=r"^exact\b"):
        fpops.convert(0, "fp16", "fp32", exact=True)
    with pytest.raises(NumsimError, match=r"^overflow\b"):
        fpops.convert(0, "fp16", "int8", overflow="saturate")
