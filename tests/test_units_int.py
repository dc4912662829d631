"""Integer MAC units (seeds 001 and 000) and the requant_int8 output stage against numsim.reference."""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numsim.errors import NumsimError
from numsim.units import IntMacUnit, RequantInt8, SampleShiftUnit
from numsim.reference import units as R
from numsim.units import get_unit, unit_names

INT4 = list(range(16))


def sv(code, bits=4):
    return code - 2**bits if code >= 2 ** (bits - 1) else code


# ---- exhaustive: every INT4 x INT4 product, widened, at every alignment shift ------------------------

@pytest.mark.parametrize("policy", ["wrap", "saturate", "error"])
def test_all_int4_products_and_widenings_at_every_shift(policy):
    u = get_unit("int4_int32", widen_overflow=policy)
    checked = overflowed = 0
    for s in range(32):
        for a in INT4:
            for b in INT4:
                p = sv(a) * sv(b)
                assert -128 <= p <= 127                      # the 8-bit product never overflows
                exact = p * 2**s
                fits = -(2**15) <= exact < 2**15
                if fits:
                    want = exact
                elif policy == "wrap":
                    want = (exact + 2**15) % 2**16 - 2**15
                elif policy == "saturate":
                    want = 2**15 - 1 if exact > 0 else -(2**15)
                else:
                    with pytest.raises(NumsimError, match="16-bit widening"):
                        u.step(0, a, b, align_shift=s)
                    overflowed += 1
                    continue
                got = u.step(0, a, b, align_shift=s)
                assert got == want % 2**32, (a, b, s)
                code, trace, ev = R.int_mac_dot(u, [a], [b], [s])
                assert (code, trace) == (got, [got])
                assert ev == (0 if fits else 1)
                checked += 1
    assert checked + overflowed == 32 * 256
    # The seed's 16 bits suffice for alignment shifts up to 8; at 9 exactly one product (64 = -8 * -8)
    # overflows, by one: 64 << 9 = 32768 = 2^15.
    u_err = get_unit("int4_int32")
    for a in INT4:
        for b in INT4:
            for s in range(9):
                u_err.step(0, a, b, align_shift=s)
    over9 = [(a, b) for a in INT4 for b in INT4 if not -(2**15) <= sv(a) * sv(b) * 2**9 < 2**15]
    assert over9 == [(8, 8)]


def test_accumulator_overflow_by_one_each_policy():
    top = 2**31 - 1
    a, b = [7, 7], [7, 1]                                   # 49 then 7
    c = top - 55                                            # c + 49 + 7 = 2^31: one past INT32_MAX
    for policy, want, events in (("wrap", -(2**31), 1), ("saturate", top, 1)):
        u = get_unit("int4_int32", acc_overflow=policy)
        r = u.dot(a, b, c=c, trace=True)
        assert r.code == want % 2**32 and r.overflow_count == events
        assert (r.code, r.trace, r.overflow_count) == R.int_mac_dot(u, a, b, None, c)
        # one less does not overflow
        r0 = u.dot(a, b, c=c - 1)
        assert r0.code == top and r0.overflow_count == 0
    u = get_unit("int4_int32", acc_overflow="error")
    with pytest.raises(NumsimError, match=r"accumulator .*output 0, reduction step 1 \(k=1\)"):
        u.dot(a, b, c=c)
    A = np.array([[1, 1], [7, 7], [1, 1]])
    B = np.array([[7, 1], [1, 1]]).T.copy()                 # column 0: (7, 1), column 1: (1, 1)
    C = np.full((3, 2), c, dtype=np.uint32)
    for nt in (1, 2, 3):
        with pytest.raises(NumsimError, match=r"output \(1, 0\), reduction step 1 \(k=1\)"):
            u.gemm_codes(A, B, c=C, nthreads=nt)


# ---- random and adversarial dot products against the reference --------------------------------------

def _lengths():
    return st.one_of(st.integers(1, 40), st.integers(1, 4096))


@st.composite
def int_case(draw):
    K = draw(_lengths())
    extreme = draw(st.booleans())
    codes = st.sampled_from([7, 8, 9, 15, 0]) if extreme else st.integers(0, 15)
    a = draw(st.lists(codes, min_size=K, max_size=K))
    b = draw(st.lists(codes, min_size=K, max_size=K))
    shift = draw(st.lists(st.integers(0, 12), min_size=K, max_size=K))
    kw = dict(order=draw(st.sampled_from(["sequential", "chunked", "pairwise"])),
              chunk=draw(st.integers(1, 9)),
              widen_overflow=draw(st.sampled_from(["wrap", "saturate", "error"])),
              acc_overflow=draw(st.sampled_from(["wrap", "saturate", "error"])),
              acc_bits=draw(st.sampled_from([16, 20, 32])))
    c = draw(st.integers(-(2 ** (kw["acc_bits"] - 1)), 2 ** (kw["acc_bits"] - 1) - 1))
    return kw, a, b, shift, c % 2 ** kw["acc_bits"]


def _compare(u, a, b, c, **ctx):
    try:
        r = u.dot(a, b, c=c, trace=True, **ctx)
        got = (r.code, r.trace, r.overflow_count)
    except NumsimError as e:
        m = re.search(r"reduction step (\d+) \(k=(\d+)\)", str(e))
        got = ("error", int(m.group(1)), int(m.group(2)))
    try:
        exp = R.dot(u, a, b, c=c, **ctx)
    except R.RefOverflow as e:
        exp = ("error", e.step, e.k)
    assert got == exp
    return got


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(int_case())
def test_int4_int32_random_dots_match_reference(case):
    kw, a, b, shift, c = case
    _compare(get_unit("int4_int32", **kw), a, b, c, align_shift=shift)


@st.composite
def sample_case(draw):
    K = draw(_lengths())
    codes = st.sampled_from([7, 8, 9, 15, 0]) if draw(st.booleans()) else st.integers(0, 15)
    a = draw(st.lists(codes, min_size=K, max_size=K))
    b = draw(st.lists(codes, min_size=K, max_size=K))
    shift = draw(st.lists(st.integers(0, 4), min_size=K, max_size=K))
    kw = dict(grouping=draw(st.sampled_from(["per_sample", "per_shift"])),
              shift_direction=draw(st.sampled_from(["left", "right"])),
              shift_rounding=draw(st.sampled_from(["toward_neg", "toward_zero", "nearest_even", "nearest_away",
                                                   "toward_pos"])),
              shift_overflow=draw(st.sampled_from(["wrap", "saturate", "error"])),
              acc_overflow=draw(st.sampled_from(["wrap", "saturate", "error"])),
              acc_bits=draw(st.sampled_from([16, 18, 32])))
    c = draw(st.integers(0, 2 ** kw["acc_bits"] - 1))
    return kw, a, b, shift, c


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sample_case())
def test_sample_shift_random_dots_match_reference(case):
    kw, a, b, shift, c = case
    _compare(get_unit("int4_int32_sample_shift", **kw), a, b, c, sample_shift=shift)


def test_sample_shift_every_product_and_shift():
    """Every INT4 x INT4 product at every shift value, both directions, every shift rounding."""
    for direction in ("left", "right"):
        for rounding in ("toward_neg", "toward_zero", "nearest_even", "nearest_away", "toward_pos"):
            u = get_unit("int4_int32_sample_shift", shift_direction=direction, shift_rounding=rounding)
            for s in range(5):
                for a in INT4:
                    for b in INT4:
                        got = u.step(0, a, b, sample_shift=s)
                        p = sv(a) * sv(b)
                        if direction == "left":
                            want = p * 2 ** (4 - s)
                        else:
                            q, r = divmod(p, 2**s)               # floor division
                            up = {"toward_neg": False, "toward_pos": r > 0, "toward_zero": r > 0 and p < 0,
                                  "nearest_away": 2 * r > 2**s or (2 * r == 2**s and p > 0),
                                  "nearest_even": 2 * r > 2**s or (2 * r == 2**s and q % 2 == 1)}[rounding]
                            want = q + up
                        assert got == want % 2**32, (direction, rounding, s, a, b)


def test_sample_shift_groupings_differ_only_by_rounding():
    """per_shift sums first and rounds once per group; per_sample rounds every sample."""
    u1 = get_unit("int4_int32_sample_shift", shift_direction="right", grouping="per_sample")
    u2 = get_unit("int4_int32_sample_shift", shift_direction="right", grouping="per_shift")
    a, b, s = [1, 1], [1, 1], [1, 1]                        # 1/2 + 1/2
    assert u1.dot(a, b, sample_shift=s).code == 0           # floor(1/2) + floor(1/2)
    assert u2.dot(a, b, sample_shift=s).code == 1           # floor((1 + 1) / 2)
    ul = get_unit("int4_int32_sample_shift", grouping="per_shift")
    assert ul.dot(a, b, sample_shift=s).code == 16                # left: (1 << 3) + (1 << 3), exact
    # step / finish reproduce dot
    st8 = u2.initial_state(5)
    rng = np.random.default_rng(3)
    A, B, S = rng.integers(0, 16, 50), rng.integers(0, 16, 50), rng.integers(0, 5, 50)
    for x, y, z in zip(A, B, S):
        st8 = u2.step(st8, x, y, sample_shift=z)
    assert u2.finish(st8) == u2.dot(A, B, c=5, sample_shift=S).code


# ---- requant_int8 against the TFLite spec ----------------------------------------------------------

def _srdhm_gemmlowp(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul, transcribed (C++ '/' truncates toward zero)."""
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = ab + nudge
    r = abs(q) // 2**31
    return r if q >= 0 else -r


def _rdbpot_gemmlowp(x, e):
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def _requant_tflite(acc, m, shift, zp, lo=-128, hi=127):
    left, right = max(shift, 0), max(-shift, 0)
    x = (acc << left) % 2**32
    x = x - 2**32 if x >= 2**31 else x
    v = _rdbpot_gemmlowp(_srdhm_gemmlowp(x, m), right) + zp
    return min(hi, max(lo, v))


I32 = [-(2**31), -(2**31) + 1, -(2**30), -(2**30) - 1, -3, -2, -1, 0, 1, 2, 3, 2**30, 2**31 - 2, 2**31 - 1]


def test_requant_corners_match_tflite():
    from numsim._ffi import lib

    rng = np.random.default_rng(7)
    accs = I32 + [int(x) for x in rng.integers(-(2**31), 2**31, 300)]
    mults = I32 + [int(x) for x in rng.integers(2**30, 2**31, 20)]
    n = 0
    for acc in accs:
        for m in mults:
            assert lib.ns_sat_rounding_doubling_high_mul(acc, m) == _srdhm_gemmlowp(acc, m)
        for e in range(32):
            assert lib.ns_rounding_divide_by_pot(acc, e) == _rdbpot_gemmlowp(acc, e)
    for acc in accs[:80]:
        for m in mults[:20]:
            for shift in (-31, -17, -8, -1, 0, 1, 3):
                for zp in (-128, 0, 5):
                    want = _requant_tflite(acc, m, shift, zp)
                    assert lib.ns_requant_int8(acc, m, shift, zp, -128, 127) == want
                    assert R.requant_int8(acc, m, shift, zp) == want
                    n += 1
    assert n > 10000
    # Negative rounding corners: SRDHM rounds ties toward +inf, RoundingDivideByPOT away from zero.
    assert _srdhm_gemmlowp(-(2**30), 1) == 0 and _srdhm_gemmlowp(2**30, 1) == 1     # -0.5 -> 0, 0.5 -> 1
    assert lib.ns_sat_rounding_doubling_high_mul(-3 * 2**29, 2) == -1               # -1.5 -> -1
    assert lib.ns_rounding_divide_by_pot(-3, 1) == -2 and lib.ns_rounding_divide_by_pot(3, 1) == 2
    assert lib.ns_rounding_divide_by_pot(-5, 2) == -1                               # -1.25 -> -1
    assert lib.ns_sat_rounding_doubling_high_mul(-(2**31), -(2**31)) == 2**31 - 1  # the saturating case
    # Saturation at both ends of int8 and the zero point.
    assert lib.ns_requant_int8(10**6, 2**30, 0, 0, -128, 127) == 127
    assert lib.ns_requant_int8(-(10**6), 2**30, 0, 0, -128, 127) == -128
    assert lib.ns_requant_int8(-256, 2**30, 0, 0, -128, 127) == -128                # exactly -128
    assert lib.ns_requant_int8(-258, 2**30, 0, 0, -128, 127) == -128


def test_requant_output_stage_in_units():
    rq = RequantInt8(multiplier=1518500250, shift=-7, zero_point=-3)
    u = get_unit("int4_int32_requant", output_stage=rq)
    rng = np.random.default_rng(0)
    A, B = rng.integers(0, 16, (5, 300)), rng.integers(0, 16, (300, 4))
    g = u.gemm_codes(A, B)
    for i in range(5):
        for j in range(4):
            d = u.dot(A[i], B[:, j])
            acc = int(np.int32(np.uint32(d.code)))
            assert d.out_code == R.requant_int8(acc, rq.multiplier, rq.shift, rq.zero_point) % 256
            assert g.out_codes[i, j] == d.out_code
    assert u.out_fmt.bits == 8
    q = RequantInt8.from_scale(0.0123)
    assert 2**30 <= q.multiplier < 2**31 and abs(q.multiplier * 2.0 ** (q.shift - 31) - 0.0123) < 1e-9


# ---- gemm == dot per output, at several thread counts ------------------------------------------------

@pytest.mark.parametrize("name,kw", [
    ("int4_int32", dict(acc_overflow="saturate", acc_bits=20, widen_overflow="wrap")),
    ("int4_int32", dict(order="pairwise", widen_overflow="saturate")),
    ("int4_int32", dict(order="chunked", chunk=5, widen_overflow="wrap", acc_bits=24, acc_overflow="saturate")),
    ("int4_int32_sample_shift", dict(grouping="per_shift", shift_direction="right")),
])
def test_gemm_equals_dot_per_output(name, kw):
    u = get_unit(name, **kw)
    rng = np.random.default_rng(11)
    M, K, N = 7, 123, 5
    A, B = rng.integers(0, 16, (M, K)), rng.integers(0, 16, (K, N))
    C = rng.integers(0, 2**u.acc_fmt.bits, (M, N))
    key = "align_shift" if name == "int4_int32" else "sample_shift"
    sh = rng.integers(0, 12 if key == "align_shift" else 5, K)
    ref = None
    for nt in (1, 2, 3, 4, 7):
        g = u.gemm_codes(A, B, c=C, nthreads=nt, **{key: sh})
        if ref is None:
            ref = g
            ev = 0
            for i in range(M):
                for j in range(N):
                    d = u.dot(A[i], B[:, j], c=C[i, j], **{key: sh})
                    assert g.codes[i, j] == d.code and g.values[i, j] == d.value
                    ev += d.overflow_count
            assert g.overflow_count == ev
        assert np.array_equal(g.codes, ref.codes) and g.overflow_count == ref.overflow_count
    assert g.codes.dtype == u.acc_fmt.dtype


# ---- bad input ---------------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    u = get_unit("int4_int32")
    cases = [
        (lambda: u.dot([16], [1]), "a_codes"),
        (lambda: u.dot([1], [-1]), "b_codes"),
        (lambda: u.dot([1, 2], [1]), "b_codes"),
        (lambda: u.dot([1], [1], align_shift=[-1]), "align_shift"),
        (lambda: u.dot([1, 2], [1, 2], align_shift=[1]), "align_shift"),
        (lambda: u.dot([1], [1], sample_shift=[1]), "sample_shift"),
        (lambda: u.dot([1], [1], c=2**32), "c"),
        (lambda: u.gemm_codes(np.zeros((2, 3), int), np.zeros((4, 2), int)), "b_codes"),
        (lambda: u.gemm_codes(np.zeros((2, 3), int), np.zeros((3, 2), int), c=np.zeros((2, 3), int)), "c"),
        (lambda: u.gemm_codes(np.zeros((2, 3), int), np.zeros((3, 2), int), nthreads=0), "nthreads"),
        (lambda: u.step(0, 1, 1, align_shift=40), "align_shift"),
        (lambda: get_unit("int4_int32_sample_shift").dot([1], [1], sample_shift=[5]), "sample_shift"),
        (lambda: get_unit("int4_int32_sample_shift").dot([1, 2], [1, 2], sample_shift=[0, -1]), "sample_shift"),
        (lambda: get_unit("int4_int32_sample_shift").dot([1], [1]), "sample_shift"),
        (lambda: get_unit("int4_int32_sample_shift").step(0, 1, 1, sample_shift=7), "sample_shift"),
        (lambda: get_unit("no_such_unit"), "unit"),
        (lambda: get_unit("int4_int32", acc_overflow="to_inf"), "acc_overflow"),
        (lambda: get_unit("int4_int32", order="random"), "order"),
        (lambda: get_unit("int4_int32", a_fmt="fp16"), "a_fmt"),
        (lambda: get_unit("int4_int32", widen_bits=40), "widen_bits"),
        (lambda: get_unit("int4_int32_sample_shift", shift_rounding="stochastic"), "shift_rounding"),
        (lambda: RequantInt8(multiplier=2**31), "multiplier"),
        (lambda: RequantInt8(shift=-40), "shift"),
    ]
    for fn, arg in cases:
        with pytest.raises(NumsimError) as e:
            fn()
        assert str(e.value).startswith(arg + ":") or f"{arg}:" in str(e.value), (arg, str(e.value))
    assert {"int4_int32", "int4_int32_sample_shift", "int4_fp4r4_fp16", "fp8_fp16", "fp16_fp32",
            "int4_int32_requant"} <= set(unit_names())


def test_units_are_frozen_and_overridable():
    u = get_unit("int4_int32")
    assert isinstance(u, IntMacUnit) and isinstance(get_unit("int4_int32_sample_shift"), SampleShiftUnit)
    with pytest.raises(Exception):
        u.acc_bits = 16
    v = get_unit(u, acc_overflow="saturate")
    assert v.acc_overflow == "saturate" and u.acc_overflow == "wrap"
    assert v.a_fmt.bits == 4 and v.acc_fmt.bits == 32


@pytest.mark.parametrize("order", ["sequential", "chunked", "pairwise"])
def test_int4_int32_length_4096_extremes_match_reference(order):
    u = get_unit("int4_int32", order=order, chunk=7, acc_bits=24, acc_overflow="saturate")
    rng = np.random.default_rng(13)
    a = rng.choice([7, 8], 4096)                               # extremes: every product is +-56 or 64
    b = rng.choice([7, 8], 4096)
    sh = rng.integers(0, 9, 4096)
    _compare(u, a, b, 2**23 - 5, align_shift=sh)


def test_cli_unit_prints_description_and_trace(capsys):
    from numsim.cli import main

    assert main(["unit", "int4_int32", "--length", "5", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "int4_int32 (seed 001)" in out and "align_shift" in out
    u = get_unit("int4_int32")
    rng = np.random.default_rng(3)
    a, b, sh = rng.integers(0, 16, 5), rng.integers(0, 16, 5), rng.integers(0, 4, 5)
    r = u.dot(a, b, trace=True, align_shift=sh)
    for i, code in enumerate(r.trace):                         # the printed trace is the unit's trace
        assert f"step {i:>3}: 0x{code:08X}" in out
    assert main(["unit", "int4_fp4r4_fp16", "--set", "phase=odd"]) == 0
    assert "even-phase accumulator" in capsys.readouterr().out
    assert main(["unit", "no_such_unit"]) == 2
    assert main(["unit"]) == 0 and "int4_int32_sample_shift" in capsys.readouterr().out
