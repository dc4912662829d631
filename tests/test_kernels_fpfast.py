"""The float-accumulator chain kernels (numsim/kernels/float_fma.py, csrc/fmachain*.c) against the MAC-level
kernel (`numsim.kernels.mac_level_gemm`), bit for bit, at every ISA level this CPU has and the portable level: hypothesis-drawn
shapes (K = 1, odd sizes, N not a multiple of 32) and edge codes (subnormals, overflow to inf and saturation,
signed zeros, cancellation, NaN, ties, max finite)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numsim
from numsim.codec import _decode_table, encode
from numsim.errors import NumsimError
from numsim.kernels import mac_level_gemm
from numsim.kernels import float_fma as X

LEVELS = [lv for lv in X.LEVELS if X.level_ok(lv)]
KERNELS = [k for k in X.KERNELS if k.level in LEVELS]
SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _unit(preset, **over):
    return numsim.get_unit(preset, **over)


# (preset, overrides) of units inside the kernels' domain; order/chunk/overflow are drawn on top.
UNITS = [
    ("fp8_fp16", {}),                                                   # e4m3 x e4m3 -> fp16
    ("fp8_fp16", {"a_fmt": "fp8_e5m2", "b_fmt": "fp8_e5m2"}),           # e5m2: products below fp16's quantum
    ("fp8_fp16", {"a_fmt": "fp16", "b_fmt": "fp16"}),                   # fp16 x fp16 -> fp16
    ("fp8_fp16", {"a_fmt": "fp4_e2m1", "b_fmt": "int4"}),               # 4-bit codes: short code tables
    ("fp8_fp16", {"a_fmt": "fp8_e5m2", "b_fmt": "fp8_e4m3fn", "acc_fmt": "bf16"}),
    ("fp8_fp16", {"a_fmt": "fp8_e4m3fn", "b_fmt": "fp8_e4m3fn", "acc_fmt": "bf16"}),
    ("fp16_fp32", {}),                                                  # fp16 x fp16 -> fp32
    ("fp16_fp32", {"a_fmt": "fp8_e5m2", "b_fmt": "fp16"}),
    ("int4_fp4r4_fp16", {}),
    ("int4_fp4r4_fp16", {"phase": "odd"}),
    ("int4_fp4r4_fp16", {"phase": "odd", "odd_underflow": "exact"}),
    ("int4_fp4r4_fp16", {"k_step": 2, "phase": "odd", "odd_underflow": "clamp"}),
]


def _table(fmt):
    """Every code's value; for fp32 (too many codes) a sample: random codes plus the edge values."""
    if fmt.bits <= 16:
        return _decode_table(fmt)
    edges = np.array([0.0, 1.0, 1.5, 2.0, 3.0, 0.5, 0.25, 2.0**-149, 2.0**-148, 2.0**-126, 3.4028235e38,
                      3.4e38, np.inf, np.nan], dtype=np.float32)
    return np.concatenate([edges, np.random.default_rng(7).integers(0, 2**32, 4096, dtype=np.uint32).view(np.float32)])


def _edge_codes(fmt):
    """Codes of the values that make arithmetic interesting: signed zeros, smallest and largest subnormals,
    smallest normal, 1, values near a tie, max finite, inf, NaN (those the format has)."""
    if fmt.bits > 16:
        e = _table(fmt)[:14]
        return sorted(set(np.concatenate([e, -e]).view(np.uint32).tolist()))
    vals = _decode_table(fmt)
    fin = np.isfinite(vals)
    out = set()
    mags = np.abs(vals)
    for want in (0.0, 1.0, 1.5, 2.0, 3.0, 0.5, 0.25):
        hit = np.nonzero(fin & (mags == want))[0]
        out.update(int(x) for x in hit)
    pos = np.nonzero(fin & (vals > 0))[0]
    if pos.size:
        order = pos[np.argsort(vals[pos])]
        out.update(int(x) for x in order[:2])            # smallest subnormals
        out.update(int(x) for x in order[-2:])           # largest finite
        out.update(int(x) ^ (1 << (fmt.bits - 1)) for x in list(order[:2]) + list(order[-2:]))   # negatives
    out.update(int(x) for x in np.nonzero(~fin)[0][:4])  # inf, NaN
    return sorted(c for c in out if c < vals.size)


@st.composite
def problems(draw, with_specials=True):
    preset, over = draw(st.sampled_from(UNITS))
    over = dict(over)
    order = draw(st.sampled_from(["sequential", "chunked", "pairwise"]))
    over["order"] = order
    if order == "chunked":
        over["chunk"] = draw(st.integers(1, 6))
    over["acc_overflow"] = draw(st.sampled_from(["to_inf", "to_inf", "saturate", "error"]))
    unit = _unit(preset, **over)
    M = draw(st.integers(1, 11))
    K = draw(st.integers(1, 40))
    N = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    edge_share = draw(st.sampled_from([0.0, 0.1, 0.5]))
    rng = np.random.default_rng(seed)

    def codes(fmt, shape, specials):
        edges = np.array(_edge_codes(fmt), dtype=np.uint64)
        if fmt.bits > 16:       # fp32 accumulator codes
            c = rng.integers(0, 2**32, shape, dtype=np.uint64)
            vals = np.asarray(c, dtype=np.uint32).view(np.float32)
            if not specials:
                c[~np.isfinite(vals)] = 0
                edges = edges[np.isfinite(edges.astype(np.uint32).view(np.float32))]
        else:
            vals = _decode_table(fmt)
            c = rng.integers(0, vals.size, shape).astype(np.uint64)
            if not specials:
                ok = np.nonzero(np.isfinite(vals))[0]
                c = ok[rng.integers(0, ok.size, shape)].astype(np.uint64)
                edges = edges[np.isfinite(vals[edges.astype(np.int64)])]
        pick = rng.random(shape) < edge_share
        c[pick] = edges[rng.integers(0, edges.size, int(pick.sum()))]
        return c.astype(fmt.dtype)

    specials = with_specials and draw(st.booleans())
    a = codes(unit.a_fmt, (M, K), specials)
    b = codes(unit.b_fmt, (K, N), specials)
    c = None
    if draw(st.booleans()):
        c = codes(unit.acc_fmt, (M, N), specials)
    return unit, unit.problem(a, b, c=c, nthreads=draw(st.sampled_from([1, 2, 3])))


def _check(unit, p):
    try:
        ref = mac_level_gemm(unit, p.a, p.b, p.c, nthreads=2)
    except NumsimError as e:
        for k in KERNELS:
            if k.domain(unit, p) is None:
                with pytest.raises(NumsimError, match="overflow"):
                    k.run(unit, p)
        assert "overflow" in str(e)
        return
    ran = 0
    for k in KERNELS:
        why = k.domain(unit, p)
        if why is not None:
            continue
        res = k.run(unit, p)
        ran += 1
        assert res.codes.dtype == ref.codes.dtype, k.name
        bad = np.argwhere(res.codes != ref.codes)
        assert bad.size == 0, (f"{k.name} on {unit.describe()}: {len(bad)} outputs differ, first {tuple(bad[0])}: "
                               f"{int(res.codes[tuple(bad[0])]):#x} vs {int(ref.codes[tuple(bad[0])]):#x}")
        assert res.overflow_count == ref.overflow_count, k.name
        np.testing.assert_array_equal(res.values, ref.values)
        if "even_codes" in ref.info:
            np.testing.assert_array_equal(res.info["even_codes"], ref.info["even_codes"])
            assert res.info["departures"] == ref.info["departures"]
    assert ran >= 1, f"no kernel took {unit.describe()}"


@SETTINGS
@given(problems())
def test_kernels_equal_mac_level(case):
    _check(*case)


@SETTINGS
@given(problems(with_specials=False))
def test_kernels_equal_mac_level_finite(case):
    _check(*case)


def test_every_level_runs_its_own_code():
    """Each kernel reports the level that ran (AVX512-FP16 hands fused groups and other accumulators to level 1)."""
    rng = np.random.default_rng(1)
    for preset, over, fp16_chain in [("fp8_fp16", {}, True), ("fp16_fp32", {}, False), ("int4_fp4r4_fp16", {}, False)]:
        u = _unit(preset, **over)
        p = u.problem(rng.integers(0, 16, (5, 9)).astype(u.a_fmt.dtype),
                      rng.integers(0, 16, (9, 37)).astype(u.b_fmt.dtype), nthreads=2)
        for k in KERNELS:
            if k.domain(u, p) is None:
                assert k.run(u, p).info["fmachain_level"] == k.level
                assert k.level != "avx512_fp16" or fp16_chain


def _f16(vals):
    return np.asarray(vals, dtype=np.float16).view(np.uint16)


@pytest.mark.parametrize("order", ["sequential", "chunked", "pairwise"])
def test_ties_signed_zeros_cancellation(order):
    """Hand-made sums: a tie to even (2048 + 1), -0 + -0 = -0, x - x = +0, overflow past 65504, a
    subnormal result, at every level."""
    u = _unit("fp8_fp16", a_fmt="fp16", b_fmt="fp16", order=order, chunk=2)
    cases = [
        ([2048.0, 1.0], [1.0, 1.0], 0.0),        # 2049: tie, to even 2048
        ([2048.0, 3.0], [1.0, 1.0], 0.0),        # 2051: tie, to even 2052
        ([-0.0, -0.0], [1.0, 1.0], -0.0),        # signed zeros
        ([3.0, -3.0], [1.0, 1.0], 0.0),          # cancellation: +0
        ([3.0, -3.0], [1.0, 1.0], -0.0),
        ([60000.0, 60000.0], [1.0, 1.0], 0.0),   # overflow to inf
        ([2.0**-14, -2.0**-14], [0.5, 0.75], 0.0),   # subnormal result
        ([65504.0, 16.0], [1.0, 1.0], 0.0),      # 65520: the overflow tie
        ([2.0**-24, 2.0**-24], [0.5, 0.5], 0.0),    # products below fp16's quantum: ties at zero
        ([-(1 + 2.0**-10), 0.0], [1 - 2.0**-10, 1.0], 2050.0),   # 2049 + 2^-20: just past a tie, bits past 24
    ]
    for av, bv, c0 in cases:
        a = _f16([av])
        b = _f16(np.array([bv]).T)
        c = _f16([[c0]])
        p = u.problem(a, b, c=c, nthreads=1)
        ref = mac_level_gemm(u, a, b, c)
        for k in KERNELS:
            assert k.domain(u, p) is None
            assert k.run(u, p).codes[0, 0] == ref.codes[0, 0], (k.name, av, bv, c0)


@pytest.mark.parametrize("preset, over, top, K", [
    ("fp8_fp16", {"a_fmt": "fp16", "b_fmt": "fp16", "order": "sequential"}, 4.0, 2),
    ("fp8_fp16", {"a_fmt": "fp16", "b_fmt": "fp16", "order": "chunked", "chunk": 2}, 256.0, 3),
    ("fp8_fp16", {"a_fmt": "fp16", "b_fmt": "fp16", "acc_fmt": "bf16", "order": "pairwise"}, 1.0, 2),
    ("int4_fp4r4_fp16", {}, 256.0, 8),
    ("fp16_fp32", {"order": "sequential"}, 256.0, 2),
])
def test_sums_with_bits_past_24(preset, over, top, K):
    """Adds whose exact sums have bits far below the accumulator's last place (wide products, accumulators of
    many magnitudes): there rounding to odd, not truncation, decides the ties just past a midpoint (a few in
    10^5 adds; ~10^5 adds here)."""
    u = _unit(preset, **over)
    rng = np.random.default_rng(3)

    def finite(fmt, shape, hi):
        vals = _table(fmt)
        ok = np.nonzero(np.isfinite(vals) & (np.abs(vals) < hi))[0]
        if fmt.bits > 16:
            return vals[ok][rng.integers(0, ok.size, shape)].view(np.uint32)
        return ok[rng.integers(0, ok.size, shape)].astype(fmt.dtype)

    p = u.problem(finite(u.a_fmt, (48, K), top), finite(u.b_fmt, (K, 1536), top),
                  c=finite(u.acc_fmt, (48, 1536), 2.0**12), nthreads=2)
    ref = mac_level_gemm(u, p.a, p.b, p.c)
    for k in KERNELS:
        if k.domain(u, p) is None:
            assert np.array_equal(k.run(u, p).codes, ref.codes), k.name


def test_saturate_and_error_policies():
    u_sat = _unit("fp8_fp16", order="sequential", acc_overflow="saturate")
    u_err = _unit("fp8_fp16", order="sequential", acc_overflow="error")
    e4 = numsim.formats.get_format("fp8_e4m3fn")
    a = encode(np.array([[448.0, 448.0, -448.0, 1.0], [1.0, 2.0, 3.0, 4.0]]), e4)
    b = encode(np.array([[448.0], [448.0], [448.0], [1.0]]), e4)
    p = u_sat.problem(a, b, nthreads=1)
    ref = mac_level_gemm(u_sat, a, b)
    for k in KERNELS:
        assert np.array_equal(k.run(u_sat, p).codes, ref.codes)
        with pytest.raises(NumsimError, match="overflow"):
            k.run(u_err, p)


def test_domain_reasons():
    p = _unit("fp8_fp16").problem(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8))
    assert X.domain_fmachain(_unit("fp8_fp16", acc_rounding="toward_zero"), p)
    assert X.domain_fmachain(_unit("int4_int32"), p)
    assert X.domain_fmachain(_unit("fp8_fp16", acc_fmt=numsim.formats.FloatFormat(6, 9, 31)), p)
    assert X.domain_fmachain(_unit("fp8_fp16", k_step=4), p)            # e4m3 group sums overflow float32
    assert X.domain_fmachain(_unit("int4_fp4r4_fp16", inner_bits=24), p)   # its +0 and its events
    assert X.domain_fp16_fma(_unit("fp16_fp32"), p)
    assert X.domain_fp16_fma(_unit("int4_fp4r4_fp16"), p)
    assert X.domain_fmachain(_unit("fp8_fp16"), p) is None
    assert X.domain_fmachain(_unit("int4_fp4r4_fp16", phase="odd"), p) is None
    q = numsim.kernels.Problem(a=p.a, b=p.b, ctx={"align_shift": np.zeros(1, np.int32)})
    assert X.domain_fmachain(_unit("fp8_fp16"), q)


def test_levels_reported():
    assert "portable" in LEVELS
    for k in X.KERNELS:
        assert k.level in X.LEVELS and k.proof and callable(k.domain) and callable(k.run)
        if k.level in numsim.kernels.LEVELS:
            assert numsim.kernels.get_kernel(k.name) is k      # registered under its name
