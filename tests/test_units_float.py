"""Float-accumulating MAC units (seed 003's INT4 x FP4 into FP16, FP8 and FP16 units), the FP16 adder and
the odd-phase exponent trick, against numsim.reference, numpy float16 and MPFR (gmpy2)."""
import functools
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numsim
from numsim._ffi import lib
from numsim.errors import NumsimError
from numsim.formats import get_format
from numsim.units import FloatMacUnit, Int4Fp4r4Unit, odd_phase_departures, odd_phase_trick
from numsim.reference import units as R
from numsim.reference.formats import decode_exact
from numsim.units import get_unit

FP16 = get_format("fp16")
RND = {"nearest_even": 0, "nearest_away": 1, "toward_zero": 2, "toward_neg": 3, "toward_pos": 4}


def f16(x):
    return int(np.float16(x).view(np.uint16))


# ---- INT4 x FP4: every product in both phases ---------------------------------------------------

def test_all_int4_fp4_products_both_phases():
    even = get_unit("int4_fp4r4_fp16")
    odd = get_unit("int4_fp4r4_fp16", phase="odd")
    r4 = get_format("fp4r4")
    for a in range(16):
        ia = a - 16 if a >= 8 else a
        for b in range(16):
            e = b & 7
            sign = -1 if b & 8 else 1
            # the product is the integer shifted by 2e (2(e - bias) on the even grid); field 0 is zero
            p_even = Fraction(0) if e == 0 else sign * ia * Fraction(2) ** (2 * (e - r4.bias))
            de = even.dot([a], [b])
            do = odd.dot([a], [b])
            assert decode_exact(de.code, FP16) == p_even                     # exact, no rounding
            assert decode_exact(do.code, FP16) == p_even / 2                 # odd phase: exactly half
            assert de.code == R.int4_fp4r4_dot(even, [a], [b])[0]
            assert do.code == R.int4_fp4r4_dot(odd, [a], [b])[0]
            assert do.code == (lib.ns_f16_odd_phase(de.code, 0))
            assert do.info["departures"] == []
            assert even.step(even.initial_state(), a, b) == de.code


# ---- the exponent trick on every FP16 code -------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _spec_high():
    """The trick's specification on every code of exponent field >= 2 (the low fields are filled per policy)."""
    out = np.zeros(65536, dtype=np.uint16)
    for c in range(65536):
        if (c >> 10) & 31 >= 2:
            out[c] = R.odd_phase_spec(c, "flush")
    return out


@pytest.mark.parametrize("policy,n_depart", [("flush", 2 * 1024 + 2 * 1022), ("exact", 0),
                                             ("clamp", 2 * 1024 + 2 * 1023)])
def test_exponent_trick_every_fp16_code(policy, n_depart):
    codes = np.arange(65536, dtype=np.uint16)
    got = odd_phase_trick(codes, policy)
    want = _spec_high().copy()                                         # fields >= 2 and 31: policy-free
    low = ((codes >> 10) & 31) < 2
    want[low] = [R.odd_phase_spec(int(c), policy) for c in codes[low]]
    assert np.array_equal(got, want)
    # fields >= 2 are exact halvings whatever the policy; inf and NaN pass unchanged
    field = (codes >> 10) & 31
    big = (field >= 2) & (field < 31)
    v = numsim.decode(codes[big], "fp16")
    assert np.array_equal(numsim.decode(got[big], "fp16"), v / 2)
    assert np.array_equal(got[field == 31], codes[field == 31])
    dep = odd_phase_departures(codes, policy)
    # the count follows from the definitions: field 1 always departs under flush/clamp; field 0 departs
    # under flush when m >= 2 (m = 1 halves to a tie that rounds to 0), under clamp when m >= 1
    assert len(dep) == n_depart
    idx = {d["index"][0] for d in dep}
    for c in (0x0000, 0x8000, 0x0001, 0x8001, 0x7C00, 0xFC00, 0x7E00, 0x0800, 0x7BFF):
        if not (policy == "clamp" and c in (0x0001, 0x8001)):     # clamp keeps 2^-24 (its half is a tie to 0)
            assert c not in idx                                       # zeros, a tie to zero, inf, NaN, field 2
    if policy == "flush":
        for c in (0x0400, 0x8400, 0x07FF, 0x0002, 0x0003, 0x03FF):
            assert c in idx
        d = next(d for d in dep if d["index"] == (0x0400,))
        assert d["trick_code"] == 0 and d["exact_code"] == 0x0200 and d["exact_value"] == 2.0**-15
        d = next(d for d in dep if d["index"] == (0x0003,))
        assert d["exact_code"] == 0x0002                                # 1.5 * 2^-24 ties to even: 2^-23
    for d in dep:
        e = R.odd_phase_spec(d["even_code"], "exact")
        assert d["exact_code"] == e and d["trick_code"] == R.odd_phase_spec(d["even_code"], policy) != e


def test_odd_phase_gemm_reports_departures():
    u = get_unit("int4_fp4r4_fp16", phase="odd")
    # a[0] * b[:,0] = 1 * 4^-3 = 2^-6 -> exact; c supplies an accumulator at the FP16 min normal
    A = np.array([[1, 0], [0, 0]])
    B = np.array([[1, 0], [0, 0]])
    C = np.array([[0, 0x0400], [0x0003, 0]], dtype=np.uint16)
    g = u.gemm_codes(A, B, c=C)
    assert [d["index"] for d in g.info["departures"]] == [(0, 1), (1, 0)]
    assert g.codes[0, 1] == 0 and g.codes[1, 0] == 0
    assert decode_exact(int(g.codes[0, 0]), FP16) == Fraction(1, 2**7)
    d = u.dot([0, 0], [0, 0], c=0x0400)
    assert d.code == 0 and d.info["even_code"] == 0x0400 and len(d.info["departures"]) == 1


# ---- the standalone FP16 adder --------------------------------------------------------------------

EDGE16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x8400, 0x3C00, 0xBC00, 0x3C01, 0x7BFF, 0xFBFF,
          0x7BFE, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7D00, 0x1400, 0x0200, 0x5BFF, 0xDBFF]


def _pairs(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 65536, n).astype(np.uint16)
    b = rng.integers(0, 65536, n).astype(np.uint16)
    # half the pairs close in exponent, for cancellation and carries
    close = rng.random(n) < 0.5
    b[close] = (a[close] ^ rng.choice([0, 0x8000], close.sum())) + rng.integers(-40, 40, close.sum()).astype(np.uint16)
    e = np.array(EDGE16, dtype=np.uint16)
    ea, eb = np.meshgrid(e, e)
    return np.concatenate([a, ea.ravel()]), np.concatenate([b, eb.ravel()])


def _f16_add_vec(a, b, rounding=0):
    from numsim._ffi import cptr

    a = np.ascontiguousarray(a, dtype=np.uint16)
    b = np.ascontiguousarray(b, dtype=np.uint16)
    out = np.empty_like(a)
    lib.ns_f16_add_vec(cptr("uint16_t *", a), cptr("uint16_t *", b), a.size, rounding, cptr("uint16_t *", out))
    return out


def _numpy_f16_add(a, b):
    with np.errstate(all="ignore"):
        # the exact sum of two FP16 values is a double; numpy rounds double -> half once (RNE)
        return (a.view(np.float16).astype(np.float64) + b.view(np.float16).astype(np.float64)).astype(np.float16)


def _assert_same_as_numpy(a, b):
    got = _f16_add_vec(a, b)
    want = _numpy_f16_add(a, b)
    w = want.view(np.uint16)
    nan = np.isnan(want)
    assert np.array_equal(got[~nan], w[~nan])
    assert np.all(np.isnan(got[nan].view(np.float16)))
    return got


def test_f16_add_matches_numpy_float16():
    a, b = _pairs(1_000_000, 1)
    got = _assert_same_as_numpy(a, b)
    scalar = np.array([lib.ns_f16_add(int(x), int(y), 0) for x, y in zip(a[:20000], b[:20000])], dtype=np.uint16)
    assert np.array_equal(scalar, got[:20000])
    ref = np.array([R.f16_add(int(x), int(y)) for x, y in zip(a[:3000], b[:3000])], dtype=np.uint16)
    assert np.array_equal(got[:3000], ref)
    # every FP16 code against every edge code, both operand orders
    allc = np.arange(65536, dtype=np.uint16)
    for e in EDGE16:
        _assert_same_as_numpy(allc, np.full(65536, e, dtype=np.uint16))
        _assert_same_as_numpy(np.full(65536, e, dtype=np.uint16), allc)


@pytest.mark.slow
def test_f16_add_matches_numpy_float16_all_pairs():
    """All 2^32 operand pairs (minutes; opt in with -m slow)."""
    allc = np.arange(65536, dtype=np.uint16)
    for x in range(65536):
        _assert_same_as_numpy(np.full(65536, x, dtype=np.uint16), allc)


def test_f16_add_nan_and_zero_rules():
    for rnd in RND.values():
        assert lib.ns_f16_add(0x7C00, 0xFC00, rnd) == 0xFE00               # inf - inf: default NaN
        assert lib.ns_f16_add(0x7D00, 0x3C00, rnd) == 0x7F00               # NaN propagates quieted
        assert lib.ns_f16_add(0x3C00, 0xFD01, rnd) == 0xFF01
        assert lib.ns_f16_add(0x8000, 0x8000, rnd) == 0x8000               # -0 + -0 = -0
        assert lib.ns_f16_add(0x0000, 0x0000, rnd) == 0x0000
    assert lib.ns_f16_add(0x3C00, 0xBC00, RND["nearest_even"]) == 0x0000   # x - x = +0
    assert lib.ns_f16_add(0x3C00, 0xBC00, RND["toward_neg"]) == 0x8000     # ... but -0 rounding down
    assert lib.ns_f16_add(0x0000, 0x8000, RND["toward_neg"]) == 0x8000
    assert lib.ns_f16_add(0x7BFF, 0x7BFF, RND["toward_zero"]) == 0x7BFF    # overflow: directed stops at max
    assert lib.ns_f16_add(0x7BFF, 0x7BFF, RND["nearest_even"]) == 0x7C00
    assert lib.ns_f16_add(0x7BFF, 0x5000, RND["toward_pos"]) == 0x7C00
    assert lib.ns_f16_add(0xFBFF, 0xD000, RND["toward_pos"]) == 0xFBFF


def test_f16_add_matches_mpfr_every_mode():
    gmpy2 = pytest.importorskip("gmpy2", reason="gmpy2 (MPFR) is an optional test oracle")
    modes = {"nearest_even": gmpy2.RoundToNearest, "toward_zero": gmpy2.RoundToZero,
             "toward_pos": gmpy2.RoundUp, "toward_neg": gmpy2.RoundDown}
    a, b = _pairs(8000, 2)
    fa = a.view(np.float16).astype(np.float64)
    fb = b.view(np.float16).astype(np.float64)
    for name, mode in modes.items():
        ctx = gmpy2.context(precision=11, emin=-23, emax=16, subnormalize=True, round=mode)
        with gmpy2.context(ctx):
            for x, y, ca, cb in zip(fa, fb, a, b):
                if np.isnan(x) or np.isnan(y):
                    continue
                s = gmpy2.add(gmpy2.mpfr(float(x)), gmpy2.mpfr(float(y)))
                if gmpy2.is_nan(s):
                    want = 0xFE00
                elif s == 0:                              # MPFR's zero signs follow IEEE 754 too
                    want = 0x8000 if gmpy2.is_signed(s) else 0
                else:
                    want = f16(float(s))                  # s is an FP16 value: the conversion is exact
                assert lib.ns_f16_add(int(ca), int(cb), RND[name]) == want, (name, hex(ca), hex(cb))


# ---- FP16 accumulation step by step: numpy float16 and MPFR -----------------------------------------

def _np_fp16_accumulate(products, order, chunk, c=0.0):
    """Each add computed exactly (float64 holds it) and rounded once by numpy's double -> half."""
    trace = []

    def add(x, y):
        with np.errstate(over="ignore"):                       # overflow to inf is the expected result
            r = np.float16(np.float64(x) + np.float64(y))
        trace.append(int(r.view(np.uint16)))
        return r

    acc = np.float16(c)
    if order == "sequential":
        for p in products:
            acc = add(acc, p)
    else:
        for t0 in range(0, len(products), chunk):
            part = np.float16(products[t0])
            trace.append(int(part.view(np.uint16)))
            for p in products[t0 + 1:t0 + chunk]:
                part = add(part, p)
            acc = add(acc, part)
    return int(acc.view(np.uint16)), trace


@pytest.mark.parametrize("order", ["sequential", "chunked"])
def test_fp8_fp16_accumulation_matches_numpy_step_by_step(order):
    u = get_unit("fp8_fp16", order=order, chunk=16)
    rng = np.random.default_rng(5)
    for K in (1, 17, 200, 1500):
        vals = rng.standard_normal((2, K)) * rng.choice([1, 8, 64], (2, K))
        a = numsim.encode(vals[0], "fp8_e4m3fn", overflow="saturate")
        b = numsim.encode(vals[1], "fp8_e4m3fn", overflow="saturate")
        products = numsim.decode(a, "fp8_e4m3fn") * numsim.decode(b, "fp8_e4m3fn")   # exact in float64
        r = u.dot(a, b, trace=True)
        code, trace = _np_fp16_accumulate(products, order, 16)
        assert r.code == code and r.trace == trace


def test_fp16_accumulation_matches_mpfr():
    gmpy2 = pytest.importorskip("gmpy2", reason="gmpy2 (MPFR) is an optional test oracle")
    u = FloatMacUnit(name="fp16_fp16", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", order="sequential")
    rng = np.random.default_rng(9)
    one = f16(1.0)
    ctx = gmpy2.context(precision=11, emin=-23, emax=16, subnormalize=True)
    for K in (5, 300, 2000):
        x = numsim.encode(rng.standard_normal(K) * 2.0 ** rng.integers(-20, 12, K), "fp16")
        r = u.dot(x, np.full(K, one), trace=True)
        with gmpy2.context(ctx):
            acc = gmpy2.mpfr(0)
            trace = []
            for v in numsim.decode(x, "fp16"):
                acc = gmpy2.add(acc, gmpy2.mpfr(float(v)))       # one correctly rounded binary16 add
                trace.append(f16(float(acc)) if not (acc == 0 and gmpy2.is_signed(acc)) else 0x8000)
        assert r.trace == trace


# ---- exact sums where a double would round: the integer path -------------------------------------

def test_fp16_fp32_directed_rounding_needs_the_exact_path():
    u = get_unit("fp16_fp32", order="sequential", acc_rounding="toward_zero")
    assert not u.sum_in_double
    c = int(np.float32(256.0).view(np.uint32))
    r = u.dot([0x0001], [0x8001], c=c)                        # 256 - 2^-48: needs 56 bits
    assert np.uint32(r.code).view(np.float32) == np.float32(256 - 2.0**-16)   # true truncation
    assert float(np.float32(256.0 + (-(2.0**-48)))) == 256.0                  # what a double path gives
    assert r.code == R.dot(u, [0x0001], [0x8001], c=c)[0]
    for rnd, want in (("nearest_even", 256.0), ("toward_pos", 256.0), ("toward_neg", 256 - 2.0**-16)):
        v = get_unit("fp16_fp32", acc_rounding=rnd, order="sequential").dot([0x0001], [0x8001], c=c)
        assert np.uint32(v.code).view(np.float32) == np.float32(want)


def test_e5m2_fused_products_into_fp16_exact_cancellation():
    # 57344^2 - 57344^2 + 2^-32, plus an accumulator of 2^-24, rounded up once: 2^-23
    u = FloatMacUnit(name="e5m2_fp16_4way", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", acc_fmt="fp16", k_step=4,
                     order="sequential", acc_rounding="toward_pos")
    assert not u.sum_in_double
    big, tiny = 0x7B, 0x01                                     # 57344 and 2^-16
    a = [big, tiny, big, 0]
    b = [big, tiny, big | 0x80, 0]
    r = u.dot(a, b, c=0x0001)
    assert r.code == 0x0002 == R.dot(u, a, b, c=0x0001)[0]
    naive = np.float64(2.0**-24) + 57344.0**2 + 2.0**-32 - 57344.0**2
    assert naive == 0.0                                         # a double sum in this order loses it all
    # the forced integer path equals the double path where the double path is proved exact
    for name in ("fp8_fp16", "int4_fp4r4_fp16"):
        v, w = get_unit(name), get_unit(name, sum_path="integer")
        assert v.sum_in_double and not w.sum_in_double
        rng = np.random.default_rng(2)
        A, B = rng.integers(0, 2**v.a_fmt.bits, (6, 333)), rng.integers(0, 2**v.b_fmt.bits, (333, 5))
        if v.a_fmt.kind == "float":
            A[(A & 0x7F) == 0x7F] = 0                          # keep NaNs out so values compare
            B[(B & 0x7F) == 0x7F] = 0
        assert np.array_equal(v.gemm_codes(A, B).codes, w.gemm_codes(A, B).codes)


# ---- random and adversarial dot products against the reference ----------------------------------

FLOAT_PRESETS = [
    ("int4_fp4r4_fp16", {}), ("int4_fp4r4_fp16", {"phase": "odd"}),
    ("int4_fp4r4_fp16", {"phase": "odd", "odd_underflow": "exact", "order": "pairwise"}),
    ("int4_fp4r4_fp16", {"order": "chunked", "chunk": 3, "acc_rounding": "toward_neg"}),
    ("fp8_fp16", {}), ("fp8_fp16", {"order": "pairwise", "acc_overflow": "saturate"}),
    ("fp8_fp16", {"a_fmt": "fp8_e5m2", "b_fmt": "fp8_e5m2", "k_step": 4, "acc_rounding": "toward_zero"}),
    ("fp16_fp32", {}), ("fp16_fp32", {"order": "sequential", "acc_rounding": "toward_pos"}),
    ("fp16_fp32", {"order": "pairwise", "k_step": 3, "acc_rounding": "nearest_away"}),
    ("fp8_fp16", {"acc_overflow": "error", "order": "sequential"}),
    ("int4_fp4r4_fp16", {"inner_bits": 18, "inner_overflow": "wrap"}),
    ("int4_fp4r4_fp16", {"inner_bits": 16, "inner_overflow": "error", "phase": "odd"}),
    ("fp8_fp16", {"k_step": 4, "inner_bits": 30, "inner_overflow": "saturate", "order": "sequential"}),
]


def _extreme_codes(fmt):
    top = 2 ** (fmt.bits - 1)
    if fmt.kind == "int":
        return [0, 1, top - 1, top, 2**fmt.bits - 1]
    mx = int(np.atleast_1d(numsim.encode([fmt.max_finite], fmt))[0])
    return [0, 1, mx, mx | top, top, top | 1, mx - 1]


@st.composite
def float_case(draw):
    name, kw = draw(st.sampled_from(FLOAT_PRESETS))
    u = get_unit(name, **kw)
    K = draw(st.one_of(st.integers(1, 24), st.integers(1, 4096)))
    style = draw(st.sampled_from(["random", "extreme", "cancel"]))
    af, bf = u.a_fmt, u.b_fmt

    def codes(fmt):
        if style == "extreme":
            return st.sampled_from(_extreme_codes(fmt))
        return st.integers(0, 2**fmt.bits - 1)
    a = draw(st.lists(codes(af), min_size=K, max_size=K))
    b = draw(st.lists(codes(bf), min_size=K, max_size=K))
    if style == "cancel" and K >= 2:                           # every product followed by its negation
        sign = 2 ** (bf.bits - 1)
        for k in range(1, K, 2):
            a[k], b[k] = a[k - 1], b[k - 1] ^ sign
    c = draw(st.one_of(st.just(0), st.integers(0, 2**u.acc_fmt.bits - 1)))
    return u, a, b, c


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(float_case())
def test_float_units_random_dots_match_reference(case):
    u, a, b, c = case
    try:
        r = u.dot(a, b, c=c, trace=True)
        got = (r.code, r.trace)
    except NumsimError as e:
        m = re.search(r"reduction step (\d+) \(k=(\d+)\)", str(e))
        got = ("error", int(m.group(1)), int(m.group(2)))
    try:
        code, trace, _ = R.dot(u, a, b, c=c)
        exp = (code, trace)
    except R.RefOverflow as e:
        exp = ("error", e.step, e.k)
    assert got == exp


@pytest.mark.parametrize("name,kw", FLOAT_PRESETS[:2] + FLOAT_PRESETS[4:6] + FLOAT_PRESETS[7:8] + FLOAT_PRESETS[9:10])
def test_float_gemm_equals_dot_per_output(name, kw):
    u = get_unit(name, **kw)
    rng = np.random.default_rng(4)
    M, K, N = 5, 77, 4
    A, B = rng.integers(0, 2**u.a_fmt.bits, (M, K)), rng.integers(0, 2**u.b_fmt.bits, (K, N))
    C = rng.integers(0, 2**u.acc_fmt.bits, (M, N))
    first = None
    for nt in (1, 2, 4, 5):
        g = u.gemm_codes(A, B, c=C, nthreads=nt)
        if first is None:
            first = g
            for i in range(M):
                for j in range(N):
                    assert g.codes[i, j] == u.dot(A[i], B[:, j], c=C[i, j]).code
        assert np.array_equal(g.codes, first.codes)


def test_float_step_reproduces_dot_and_bad_input():
    u = get_unit("int4_fp4r4_fp16", phase="odd")
    rng = np.random.default_rng(8)
    a, b = rng.integers(0, 16, 41), rng.integers(0, 16, 41)
    s = u.initial_state()
    for k in range(0, 41, 4):
        s = u.step(s, a[k:k + 4], b[k:k + 4])
    assert u.finish(s) == u.dot(a, b).code
    cases = [
        (lambda: u.step(0, [1] * 5, [1] * 5), "a"),
        (lambda: u.dot([1], [16]), "b_codes"),
        (lambda: u.dot([1], [1], align_shift=[0]), "align_shift"),
        (lambda: get_unit("int4_fp4r4_fp16", phase="third"), "phase"),
        (lambda: get_unit("int4_fp4r4_fp16", odd_underflow="wrap"), "odd_underflow"),
        (lambda: get_unit("int4_fp4r4_fp16", acc_fmt="fp32"), "acc_fmt"),
        (lambda: get_unit("fp8_fp16", acc_rounding="stochastic"), "acc_rounding"),
        (lambda: get_unit("fp8_fp16", acc_fmt="fp8_e4m3fn"), "acc_fmt"),
        (lambda: get_unit("fp16_fp32", a_fmt="fp32", b_fmt="fp32"), "acc_fmt"),    # sums span 554 bits
        (lambda: get_unit("fp16_fp32", a_fmt="int32", b_fmt="fp32"), "a_fmt"),     # 32 + 24 > 53 bits
        (lambda: get_unit("fp8_fp16", k_step=0), "k_step"),
        (lambda: odd_phase_trick([1], "nope"), "odd_underflow"),
    ]
    for fn, arg in cases:
        with pytest.raises(NumsimError) as e:
            fn()
        assert f"{arg}:" in str(e.value), (arg, str(e.value))
    assert isinstance(u, Int4Fp4r4Unit) and isinstance(get_unit("fp16_fp32"), FloatMacUnit)
    assert u.b_fmt.phase == 1 and get_unit("int4_fp4r4_fp16").b_fmt.phase == 0


def test_float_overflow_error_names_output_and_step():
    u = get_unit("fp8_fp16", acc_overflow="error", order="sequential")
    big = int(numsim.encode([448.0], "fp8_e4m3fn")[0])
    A = np.array([[0, 0, 0], [big, big, 0]])
    B = np.array([[big], [0], [0]])
    with pytest.raises(NumsimError, match=r"output \(1, 0\), reduction step 0 \(k=0\)"):
        u.gemm_codes(A, B)
    assert get_unit("fp8_fp16", order="sequential").gemm_codes(A, B).codes[1, 0] == 0x7C00   # to_inf default


@pytest.mark.parametrize("name,kw", [("int4_fp4r4_fp16", {"phase": "odd"}), ("fp8_fp16", {}),
                                     ("fp16_fp32", {"order": "pairwise"})])
def test_float_units_length_4096_extremes_match_reference(name, kw):
    u = get_unit(name, **kw)
    rng = np.random.default_rng(12)
    ea, eb = _extreme_codes(u.a_fmt), _extreme_codes(u.b_fmt)
    a = np.where(rng.random(4096) < 0.3, rng.choice(ea, 4096), rng.integers(0, 2**u.a_fmt.bits, 4096))
    b = np.where(rng.random(4096) < 0.3, rng.choice(eb, 4096), rng.integers(0, 2**u.b_fmt.bits, 4096))
    r = u.dot(a, b, trace=True)
    code, trace, _ = R.dot(u, a, b)
    assert (r.code, r.trace) == (code, trace)


@pytest.mark.parametrize("rounding", ["nearest_even", "nearest_away", "toward_zero", "toward_neg", "toward_pos"])
def test_two_sum_path_equals_integer_path(rounding):
    """fp16_fp32 adds two addends at a time through TwoSum + round-to-odd; the 384-bit adder agrees."""
    rng = np.random.default_rng(21)
    for order in ("sequential", "pairwise"):
        fast = get_unit("fp16_fp32", order=order, acc_rounding=rounding)
        wide = get_unit("fp16_fp32", order=order, acc_rounding=rounding, sum_path="integer")
        M, K, N = 6, 200, 5
        # magnitudes spread over the whole FP16 range so sums need far more than 53 bits
        A = numsim.encode(rng.standard_normal((M, K)) * 2.0 ** rng.integers(-24, 15, (M, K)), "fp16")
        B = numsim.encode(rng.standard_normal((K, N)) * 2.0 ** rng.integers(-24, 15, (K, N)), "fp16")
        C = rng.integers(0, 2**32, (M, N)).astype(np.uint32)
        C[(C >> 23 & 0xFF) == 0xFF] = 0                        # finite initial accumulators
        g1, g2 = fast.gemm_codes(A, B, c=C), wide.gemm_codes(A, B, c=C)
        assert np.array_equal(g1.codes, g2.codes)
        for i, j in ((0, 0), (5, 4)):
            assert g1.codes[i, j] == R.dot(fast, A[i], B[:, j], c=int(C[i, j]))[0]
    # the power-of-two corner: s = 2^k, error of the other sign
    for c, a, b in ((256.0, 0x0001, 0x8001), (1.0, 0x0001, 0x8001), (2.0**-20, 0x7BFF, 0x0001)):
        cc = int(np.float32(c).view(np.uint32))
        u = get_unit("fp16_fp32", acc_rounding=rounding, order="sequential")
        assert u.dot([a], [b], c=cc).code == R.dot(u, [a], [b], c=cc)[0]


def test_inner_adder_overflow_by_one():
    u = get_unit("int4_fp4r4_fp16")
    assert u.inner_bits_exact == 19
    a, b = [8] * 4, [0xF] * 4                                  # four (-8) x (-64) = 4 x 512 = 2^17 / 2^-6
    assert u.dot(a, b).value == 2048.0
    assert get_unit("int4_fp4r4_fp16", inner_bits=19).dot(a, b).value == 2048.0
    with pytest.raises(NumsimError, match=r"18-bit inner adder .* reduction step 0 \(k=3\)"):
        get_unit("int4_fp4r4_fp16", inner_bits=18).dot(a, b)
    w = get_unit("int4_fp4r4_fp16", inner_bits=18, inner_overflow="wrap").dot(a, b)
    s_ = get_unit("int4_fp4r4_fp16", inner_bits=18, inner_overflow="saturate").dot(a, b)
    assert (w.value, w.overflow_count) == (-2048.0, 1)
    assert (s_.value, s_.overflow_count) == (float(np.float16(2048 - 2.0**-6)), 1)   # 2^17 - 1 LSBs, rounded
    for unit in (get_unit("int4_fp4r4_fp16", inner_bits=18, inner_overflow="wrap"),
                 get_unit("int4_fp4r4_fp16", inner_bits=18, inner_overflow="saturate")):
        code, trace, ev = R.dot(unit, a, b)
        r = unit.dot(a, b, trace=True)
        assert (r.code, r.trace, r.overflow_count) == (code, trace, ev)
    with pytest.raises(NumsimError, match="inner_bits"):
        get_unit("fp8_fp16", inner_bits=60)


def test_units_pickle_and_replace_keep_results():
    import pickle

    for name in ("int4_int32", "int4_int32_sample_shift", "int4_fp4r4_fp16", "fp16_fp32", "int4_int32_requant"):
        u = get_unit(name)
        ctx = {"sample_shift": [1, 2, 3]} if "sample" in name else {}
        a, b = [1, 2, 3], [3, 2, 1]
        first = u.dot(a, b, **ctx).code
        v = pickle.loads(pickle.dumps(u))
        assert v == u and v.dot(a, b, **ctx).code == first
