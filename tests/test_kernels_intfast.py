"""The integer fast kernels (numsim/kernels/int_imatmul.py, csrc/imatmul*.c) against the MAC-level path,
bit for bit (codes, values, out_codes, overflow_count), at every ISA level this machine has and the
portable level; the domain's edges (inside: same bits; just outside: rejected)."""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import numsim
from numsim.kernels import mac_level_gemm
from numsim._ffi import cptr, ffi, lib
from numsim.units import RequantInt8
from numsim.kernels import int_imatmul as X

LEVELS = [lvl for lvl, n in X.LEVELS.items() if lib.ns_imatmul_has_level(n)]
SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT32_MAX = 2**31 - 1


def _problem(a, b, c=None, **ctx):
    return SimpleNamespace(a=a, b=b, c=c, ctx=ctx, nthreads=2)


def _check_all_levels(unit, family, a, b, c=None, expect_domain=True, **ctx):
    """Every available level's kernel equals the MAC-level kernel; returns the reasons when rejected."""
    ref = mac_level_gemm(unit, a, b, c, ctx=ctx, nthreads=2)
    reasons = []
    for lvl in LEVELS:
        k = X.BY_NAME[f"{family}.imatmul.{lvl}"]
        p = _problem(a, b, c, **ctx)
        why = k.domain(unit, p)
        if why is not None:
            reasons.append(why)
            continue
        res = k.run(unit, p)
        assert res.codes.dtype == ref.codes.dtype and np.array_equal(res.codes, ref.codes), (k.name, unit)
        assert res.values.dtype == ref.values.dtype and np.array_equal(res.values, ref.values), k.name
        assert res.overflow_count == ref.overflow_count, (k.name, res.overflow_count, ref.overflow_count)
        if ref.out_codes is None:
            assert res.out_codes is None
        else:
            assert np.array_equal(res.out_codes, ref.out_codes), k.name
    if expect_domain:
        assert not reasons, reasons
    return reasons


def _codes(draw, shape, bits, seed):
    """Codes with the extremes over-represented: the format's min and max codes, zero, random."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**bits, shape)
    edge = np.array([0, 2 ** (bits - 1), 2 ** (bits - 1) - 1, 2**bits - 1])     # 0, min, max, -1
    pick = rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    x[pick] = rng.choice(edge, size=int(pick.sum()))
    return x.astype(np.uint8)


shapes = st.tuples(st.sampled_from([1, 2, 15, 16, 17, 33, 40]), st.sampled_from([1, 3, 4, 63, 64, 65, 130]),
                   st.sampled_from([1, 5, 16, 31, 33, 47]))


def test_levels_present():
    assert "portable" in LEVELS and lib.ns_imatmul_best_level() in [X.LEVELS[lvl] for lvl in LEVELS]


# ---- the C kernel on its own: every lane-type combination, shifts on both sides -----------------

@pytest.mark.parametrize("a_kind", ["s8", "u8", "s4", "u4"])
@pytest.mark.parametrize("b_kind", ["s8", "u8", "s4", "u4"])
def test_imatmul_residue_every_lane_type(a_kind, b_kind):
    tables = {"s8": np.arange(256).astype(np.uint8).view(np.int8).astype(np.int32),
              "u8": np.arange(256, dtype=np.int32),
              "s4": np.r_[0:8, -8:0, np.zeros(240)].astype(np.int32),
              "u4": np.r_[0:16, np.zeros(240)].astype(np.int32)}
    rng = np.random.default_rng(7)
    M, K, N = 35, 131, 37
    ncode = {"s8": 256, "u8": 256, "s4": 16, "u4": 16}
    a = rng.integers(0, ncode[a_kind], (M, K)).astype(np.uint8)
    b = rng.integers(0, ncode[b_kind], (K, N)).astype(np.uint8)
    c = rng.integers(-2**31, 2**31, (M, N)).astype(np.int32)
    sa = rng.integers(0, 4, K).astype(np.int32) if ncode[a_kind] == 16 else None
    sb = rng.integers(0, 4, K).astype(np.int32) if ncode[b_kind] == 16 else None
    av, bv = tables[a_kind][a].astype(np.int64), tables[b_kind][b].astype(np.int64)
    if sa is not None:
        av = av << sa
    if sb is not None:
        bv = bv << sb[:, None]
    want = ((av @ bv + c) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    for lvl in LEVELS:
        out = np.empty((M, N), np.int32)
        vals = np.empty((M, N))
        bits = lambda kind: 4 if kind in ("s4", "u4") else 8     # noqa: E731
        st_ = lib.ns_imatmul(cptr("uint8_t *", a), bits(a_kind), cptr("int32_t *", tables[a_kind]),
                             ffi.NULL if sa is None else cptr("int32_t *", sa), cptr("uint8_t *", b), bits(b_kind),
                             cptr("int32_t *", tables[b_kind]), ffi.NULL if sb is None else cptr("int32_t *", sb),
                             M, K, N, cptr("int32_t *", c), cptr("int32_t *", out), cptr("double *", vals), 3,
                             X.LEVELS[lvl])
        assert st_ == 0
        assert np.array_equal(out, want), lvl
        assert np.array_equal(vals, want.astype(np.float64)), lvl


def test_imatmul_rejects_lanes_that_do_not_fit():
    s8 = np.arange(256).astype(np.uint8).view(np.int8).astype(np.int32)
    a = np.zeros((2, 3), np.uint8)
    sh = np.array([0, 1, 0], np.int32)     # int8 values << 1 leave the int8 lanes
    out = np.empty((2, 2), np.int32)
    st_ = lib.ns_imatmul(cptr("uint8_t *", a), 8, cptr("int32_t *", s8), cptr("int32_t *", sh),
                         cptr("uint8_t *", np.zeros((3, 2), np.uint8)), 8, cptr("int32_t *", s8), ffi.NULL,
                         2, 3, 2, ffi.NULL, cptr("int32_t *", out), ffi.NULL, 1, 0)
    assert st_ == lib.NS_ERR_ARG


# ---- IntMacUnit: int4_int32, int4_int32_requant --------------------------------------------------

stages = st.builds(RequantInt8, multiplier=st.sampled_from([1 << 30, 2**31 - 1, -(2**31), 1234567891, -987654321, 1]),
                   shift=st.sampled_from([-31, -17, -3, 0, 2, 30]), zero_point=st.sampled_from([-128, 0, 5, 127]),
                   out_min=st.sampled_from([-128, -5]), out_max=st.sampled_from([127, 10]))


@settings(max_examples=100, **SETTINGS)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), data=st.data(),
       preset=st.sampled_from(["int4_int32", "int4_int32_requant"]), with_c=st.booleans(),
       max_shift=st.sampled_from([None, 0, 4, 8]), order=st.sampled_from(["sequential", "chunked", "pairwise"]),
       acc_overflow=st.sampled_from(["wrap", "saturate", "error"]))
def test_int_mac_matches_mac_level(shape, seed, data, preset, with_c, max_shift, order, acc_overflow):
    M, K, N = shape
    kw = dict(order=order, acc_overflow=acc_overflow)
    if preset.endswith("requant"):
        kw["output_stage"] = data.draw(stages)
    unit = numsim.get_unit(preset, **kw)
    a = _codes(data.draw, (M, K), 4, seed)
    b = _codes(data.draw, (K, N), 4, seed + 1)
    rng = np.random.default_rng(seed)
    ctx = {}
    weight = K
    if max_shift is not None:
        ctx["align_shift"] = rng.integers(0, max_shift + 1, K)
        weight = int(np.sum(2 ** ctx["align_shift"].astype(np.int64)))
    c = None
    if with_c:   # |c| up to the edge of the bound (format maxima: |a b| <= 64)
        room = INT32_MAX - 64 * weight
        c = rng.integers(-room, room + 1, (M, N))
        c.flat[0] = data.draw(st.sampled_from([room, -room, 0]))
        c = c.astype(np.int32).view(np.uint32)
    _check_all_levels(unit, "int_mac", a, b, c, **ctx)


def test_int_mac_domain_edge():
    unit = numsim.get_unit("int4_int32")
    K = 5
    a = np.full((3, K), 8, np.uint8)            # -8: the data's maxima are the format's
    b = np.full((K, 2), 8, np.uint8)
    room = INT32_MAX - 64 * K
    c = np.full((3, 2), room, np.int64).astype(np.int32).view(np.uint32)
    _check_all_levels(unit, "int_mac", a, b, c)                                   # exactly on the bound
    c_out = np.full((3, 2), room + 1, np.int64).astype(np.int32).view(np.uint32)
    reasons = _check_all_levels(unit, "int_mac", a, b, c_out, expect_domain=False)
    assert len(reasons) == len(LEVELS) and all("bound" in r for r in reasons)
    # smaller data than the format allows: the data's maxima admit it
    a1 = np.ones((3, K), np.uint8)
    _check_all_levels(unit, "int_mac", a1, b, c_out)
    # shifts past what the lanes hold (int4 << 9 on one side, or 8 split 4 + 4 is the most)
    reasons = _check_all_levels(unit, "int_mac", a1, b, None, expect_domain=False, align_shift=np.full(K, 9))
    assert reasons


def test_int_mac_narrow_accumulator():
    unit = numsim.get_unit("int4_int32", acc_bits=16)
    rng = np.random.default_rng(3)
    a = rng.integers(0, 16, (9, 20)).astype(np.uint8)
    b = rng.integers(0, 16, (20, 7)).astype(np.uint8)
    room = 2**15 - 1 - 64 * 20               # the bound for a 16-bit accumulator
    c = rng.integers(-room, room + 1, (9, 7)).astype(np.int16).view(np.uint16)
    _check_all_levels(unit, "int_mac", a, b, c)


# ---- SampleShiftUnit ---------------------------------------------------------------------------------

@settings(max_examples=100, **SETTINGS)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), data=st.data(), with_c=st.booleans(),
       direction=st.sampled_from(["left", "right"]), grouping=st.sampled_from(["per_sample", "per_shift"]),
       rounding=st.sampled_from(["toward_neg", "nearest_even", "nearest_away", "toward_zero", "toward_pos"]),
       acc_overflow=st.sampled_from(["wrap", "saturate"]), near_edge=st.booleans())
def test_sample_shift_matches_mac_level(shape, seed, data, with_c, direction, grouping, rounding, acc_overflow,
                                        near_edge):
    M, K, N = shape
    unit = numsim.get_unit("int4_int32_sample_shift", shift_direction=direction, grouping=grouping,
                           shift_rounding=rounding, acc_overflow=acc_overflow, shift_overflow=acc_overflow)
    a = _codes(data.draw, (M, K), 4, seed)
    b = _codes(data.draw, (K, N), 4, seed + 1)
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 5, K)
    c = None
    if with_c:
        # near_edge: c at the INT32 limits, past the single-GEMM bound; per_shift then runs its exact
        # groups and the unit's own final summation, which may wrap or saturate (events counted)
        lim = INT32_MAX if near_edge else INT32_MAX - 64 * 16 * K
        c = rng.integers(-lim, lim + 1, (M, N)).astype(np.int32).view(np.uint32)
    expect = not (with_c and near_edge and grouping == "per_sample")
    reasons = _check_all_levels(unit, "sample_shift", a, b, c, expect_domain=expect, sample_shift=s)
    assert all("bound" in r for r in reasons)


def test_sample_shift_counts_final_sum_events():
    unit = numsim.get_unit("int4_int32_sample_shift", grouping="per_shift", acc_overflow="saturate")
    a = np.full((4, 8), 7, np.uint8)
    b = np.full((8, 3), 7, np.uint8)
    c = np.full((4, 3), INT32_MAX - 10, np.int64).astype(np.int32).view(np.uint32)
    s = np.arange(8) % 5
    ref = mac_level_gemm(unit, a, b, c, ctx={"sample_shift": s})
    assert ref.overflow_count > 0
    _check_all_levels(unit, "sample_shift", a, b, c, sample_shift=s)


# ---- IntMMAUnit: the H100 IMMA presets -------------------------------------------------------------

@settings(max_examples=100, **SETTINGS)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), data=st.data(),
       preset=st.sampled_from(["h100_imma_s8", "h100_imma_s8_sat", "h100_imma_s4", "h100_imma_s4_sat"]),
       c_kind=st.sampled_from(["none", "small", "edge", "full"]), k_step=st.sampled_from([None, 1, 7, 64]))
def test_imma_matches_mac_level(shape, seed, data, preset, c_kind, k_step):
    M, K, N = shape
    unit = numsim.get_unit(preset) if k_step is None else numsim.get_unit(preset, k_step=k_step)
    bits = unit.a_fmt.bits
    a = _codes(data.draw, (M, K), bits, seed)
    b = _codes(data.draw, (K, N), bits, seed + 1)
    rng = np.random.default_rng(seed)
    pmax = 2 ** (2 * bits - 2)      # max |a b| of the format
    c = None
    if c_kind != "none":
        lim = {"small": 1000, "edge": INT32_MAX - K * pmax, "full": INT32_MAX}[c_kind]
        c = rng.integers(-lim, lim + 1, (M, N))
        if c_kind == "full":    # wrap: any c; the values INT32_MIN and INT32_MAX too
            c.flat[0] = -(2**31)
            c.flat[-1] = INT32_MAX
        c = c.astype(np.int64).astype(np.int32).view(np.uint32)
    sat_outside = unit.acc_overflow == "saturate" and c_kind == "full"
    reasons = _check_all_levels(unit, "int_mma", a, b, c, expect_domain=not sat_outside)
    if reasons:
        assert all("saturate" in r for r in reasons)


def test_imma_wrap_large_sums():
    """K * 128 * 128 far past 2^31: wrap is exact for every input (the residue is the result)."""
    unit = numsim.get_unit("h100_imma_s8")
    K = 200000
    a = np.full((2, K), 0x80, np.uint8)     # -128
    b = np.full((K, 3), 0x80, np.uint8)
    _check_all_levels(unit, "int_mma", a, b)
    sat = numsim.get_unit("h100_imma_s8_sat")
    assert all("saturate" in r for r in _check_all_levels(sat, "int_mma", a, b, expect_domain=False))


# ---- the INT8 output stage --------------------------------------------------------------------------

@settings(max_examples=60, **SETTINGS)
@given(stage=stages, seed=st.integers(0, 2**32 - 1))
def test_requant_levels_match_the_scalar_rule(stage, seed):
    rng = np.random.default_rng(seed)
    acc = np.concatenate([np.array([-(2**31), 2**31 - 1, 0, 1, -1, 2**30, -(2**30), 12345, -12345]),
                          rng.integers(-2**31, 2**31, 200), rng.integers(-3000, 3000, 50)]).astype(np.int64)
    codes = acc.astype(np.int32).view(np.uint32)
    want = stage.apply(codes)
    for lvl in (0, 1) if lib.ns_imatmul_has_level(1) else (0,):
        for n in (len(codes), 1, 15, 17):     # vector tails
            assert np.array_equal(X.requant_int8(stage, codes[:n], lvl), want[:n]), (lvl, n)


@pytest.mark.parametrize("preset,family", [("int4_int32", "int_mac"), ("h100_imma_s8", "int_mma"),
                                           ("int4_int32_sample_shift", "sample_shift")])
@pytest.mark.parametrize("shape", [(0, 5, 3), (3, 5, 0), (2, 0, 3)])
def test_empty_shapes(preset, family, shape):
    M, K, N = shape
    unit = numsim.get_unit(preset)
    ctx = {"sample_shift": np.zeros(K, np.int64)} if family == "sample_shift" else {}
    reasons = _check_all_levels(unit, family, np.zeros((M, K), np.uint8), np.zeros((K, N), np.uint8),
                                expect_domain=K > 0, **ctx)
    assert all("K = 0" in r for r in reasons)


def test_domain_rejects_bad_input_for_the_mac_level_path_to_report():
    unit = numsim.get_unit("int4_int32")
    k = X.BY_NAME["int_mac.imatmul.portable"]
    a = np.zeros((2, 3), np.uint8)
    b = np.zeros((3, 2), np.uint8)
    assert "out of range" in k.domain(unit, _problem(a + 16, b))              # not int4 codes
    assert "align_shift" in k.domain(unit, _problem(a, b, align_shift=np.zeros(2, int)))
    assert "sample_shift" in k.domain(unit, _problem(a, b, sample_shift=np.zeros(3, int)))
    assert k.domain(numsim.get_unit("h100_imma_s8"), _problem(a, b)) == "not an IntMacUnit"


def test_per_shift_final_sum_threads():
    """Enough outputs for the final summation to run on several threads: the same bits and events."""
    unit = numsim.get_unit("int4_int32_sample_shift", shift_direction="right", grouping="per_shift",
                           shift_rounding="nearest_even", acc_overflow="saturate")
    rng = np.random.default_rng(11)
    a = rng.integers(0, 16, (180, 9)).astype(np.uint8)
    b = rng.integers(0, 16, (9, 190)).astype(np.uint8)
    c = rng.integers(-2**31, 2**31, (180, 190)).astype(np.int64).astype(np.int32).view(np.uint32)
    c[:5] = np.uint32(INT32_MAX)      # some outputs saturate in the final sum
    s = rng.integers(0, 5, 9)
    assert mac_level_gemm(unit, a, b, c, ctx={"sample_shift": s}).overflow_count > 0
    _check_all_levels(unit, "sample_shift", a, b, c, sample_shift=s)


def test_large_outputs():
    """Outputs past 2^18 elements (the kernel streams the doubles out) and several threads."""
    unit = numsim.get_unit("int4_int32_requant")
    rng = np.random.default_rng(12)
    a = rng.integers(0, 16, (530, 3)).astype(np.uint8)
    b = rng.integers(0, 16, (3, 515)).astype(np.uint8)
    c = rng.integers(-2**30, 2**30, (530, 515)).astype(np.int32).view(np.uint32)
    _check_all_levels(unit, "int_mac", a, b, c)


@pytest.mark.parametrize("direction,grouping", [("left", "per_sample"), ("right", "per_sample"), ("right", "per_shift")])
def test_sample_shift_symmetric_and_unsigned_operands(direction, grouping):
    rng = np.random.default_rng(13)
    for a_fmt, b_fmt in (("int4_sym", "int4"), ("uint4", "int4")):
        try:
            unit = numsim.get_unit("int4_int32_sample_shift", a_fmt=a_fmt, b_fmt=b_fmt, shift_direction=direction,
                                   grouping=grouping)
        except numsim.NumsimError:
            continue                           # no such format registered
        a = rng.integers(0, 16, (7, 23)).astype(np.uint8)
        if a_fmt == "int4_sym":
            a[a == 8] = 7                      # the code the symmetric format excludes
        b = rng.integers(0, 16, (23, 6)).astype(np.uint8)
        _check_all_levels(unit, "sample_shift", a, b, sample_shift=rng.integers(0, 5, 23))


@settings(max_examples=60, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), direction=st.sampled_from(["left", "right"]),
       rounding=st.sampled_from(["toward_neg", "nearest_even", "nearest_away", "toward_zero", "toward_pos"]),
       acc_overflow=st.sampled_from(["wrap", "saturate"]), shift_overflow=st.sampled_from(["wrap", "saturate"]),
       acc_bits=st.sampled_from([32, 20]), n=st.sampled_from([1, 7, 8, 9, 100]))
def test_shift_finish_vector_level_matches_the_units_rule(seed, direction, rounding, acc_overflow, shift_overflow,
                                                          acc_bits, n):
    """ns_imatmul_shift_finish level 1 (AVX-512) against level 0 (ns_sample_shift_finish, the unit's own
    rule) on group values over the accumulator's whole range: ties at every shift, wraps, saturation."""
    if not lib.ns_imatmul_has_level(1):
        pytest.skip("no AVX-512 VNNI level on this CPU")
    unit = numsim.get_unit("int4_int32_sample_shift", grouping="per_shift", shift_direction=direction,
                           shift_rounding=rounding, acc_overflow=acc_overflow, shift_overflow=shift_overflow,
                           acc_bits=acc_bits)
    rng = np.random.default_rng(seed)
    lim = 2 ** (acc_bits - 1)
    g = rng.integers(-lim, lim, (5, n))
    g[:, ::3] = rng.integers(-40, 40, (5, (n + 2) // 3))                          # small values: ties, signs
    g[:, 1::5] = rng.choice([-lim, lim - 1, -1, 0, 1], size=(5, len(range(1, n, 5))))
    g = np.ascontiguousarray(g.astype(np.int32))
    c = (rng.integers(-lim, lim, n) & (2**acc_bits - 1)).astype(np.uint32)
    results = []
    for level in (0, 1):
        out = np.empty(n, np.uint32)
        ev = ffi.new("int64_t *")
        assert lib.ns_imatmul_shift_finish(unit._c, cptr("int32_t *", g), n, cptr("uint32_t *", c),
                                           cptr("uint32_t *", out), ev, 2, level) == 0
        results.append((out, int(ev[0])))
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
