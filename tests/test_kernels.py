"""numsim.kernels: every kernel a preset declares, forced, gives its MAC-level kernel's bits on seeded
random inputs with edge codes; the selection honours NUMSIM_KERNEL / NUMSIM_LEVEL; unit.gemm_codes,
numsim.matmul and numsim.conv2d dispatch through it; renamed unit parameters say their new names."""
import numpy as np
import pytest

import numsim
from numsim import NumsimError, kernels

PRESETS = numsim.unit_names()
# the variants whose kernels the presets alone do not reach
VARIANTS = [("int4_fp4r4_fp16", {"phase": "odd"}), ("fp16_fp32", {"order": "pairwise"}),
            ("fp8_fp16", {"order": "sequential", "k_step": 1}),
            ("int4_int32_sample_shift", {"grouping": "per_shift"}), ("int4_int32", {"acc_bits": 24})]


def _edge_codes(rng, fmt, shape):
    """Random codes of fmt with its extremes, zeros (both signs) and, for floats, a few specials mixed in."""
    fmt = numsim.get_format(fmt)
    table = numsim.decode(np.arange(2**fmt.bits, dtype=np.int64), fmt)
    finite = np.nonzero(np.isfinite(table))[0]
    if fmt.kind == "int" and fmt.symmetric:
        finite = finite[finite != 2 ** (fmt.bits - 1)]
    mags = np.abs(table[finite])
    edge = np.concatenate([finite[mags >= np.sort(mags)[-3]], finite[mags == 0],
                           finite[mags == np.min(mags[mags > 0])]])
    codes = rng.choice(finite, size=shape)
    pick = rng.random(shape) < 0.25
    codes[pick] = rng.choice(edge, size=int(pick.sum()))
    return codes.astype(fmt.dtype)


def _problems(unit, rng):
    """Seeded problems: (a, b, c, ctx) with and without an initial accumulator, small and large values."""
    out = []
    for (m, k, n) in [(1, 1, 1), (3, 17, 5), (9, 70, 11), (4, 129, 6)]:
        a = _edge_codes(rng, unit.a_fmt, (m, k))
        b = _edge_codes(rng, unit.b_fmt, (k, n))
        ctx = {}
        if isinstance(unit, numsim.IntMacUnit):
            ctx = {"align_shift": rng.integers(0, 4, k)}
        if isinstance(unit, numsim.SampleShiftUnit):
            ctx = {"sample_shift": rng.integers(0, 5, k)}
        for with_c in (False, True):
            c = None
            if with_c:
                acc = numsim.get_format(unit.acc_fmt)
                if acc.kind == "int":
                    c = numsim.encode(rng.integers(-1000, 1000, (m, n)).astype(np.float64), acc)
                else:
                    c = numsim.encode(rng.standard_normal((m, n)) * 8, acc)
            out.append((a, b, c, ctx))
    return out


def _units():
    return [(name, numsim.get_unit(name)) for name in PRESETS] + [
        (f"{name}:{kw}", numsim.get_unit(name, **kw)) for name, kw in VARIANTS]


# kernel name -> problems it accepted (and matched) so far in this process
_ACCEPTED: dict = {}


def _check_forced_kernels(label, unit, only=None):
    """Force every kernel of `unit` (or those named in `only`) on its seeded problems; each one in its
    domain must give the MAC-level kernel's codes, out_codes, overflow count and odd-phase departures."""
    rng = np.random.default_rng(20260101)
    assert kernels.available(unit)[-1].name.endswith(".mac_level")
    for a, b, c, ctx in _problems(unit, rng):
        mac = kernels.mac_level_gemm(unit, a, b, c=c, ctx=ctx, nthreads=1)
        assert mac.info["kernel"].endswith(".mac_level")
        p = unit.problem(a, b, c=c, nthreads=2, ctx=ctx)
        for k in kernels.available(unit):
            if only is not None and k.name not in only:
                continue
            if k.domain(unit, p) is not None:
                with pytest.raises(NumsimError, match=k.name):
                    kernels.gemm(unit, a, b, c=c, nthreads=2, ctx=ctx, kernel=k.name)
                continue
            _ACCEPTED[k.name] = _ACCEPTED.get(k.name, 0) + 1
            got = kernels.gemm(unit, a, b, c=c, nthreads=2, ctx=ctx, kernel=k.name)
            assert got.codes.dtype == mac.codes.dtype, (label, k.name)
            assert np.array_equal(got.codes, mac.codes), (label, k.name, a.shape, b.shape)
            assert got.overflow_count == mac.overflow_count, (label, k.name)
            if mac.out_codes is not None:
                assert np.array_equal(got.out_codes, mac.out_codes), (label, k.name)
            if "departures" in mac.info:
                assert got.info["departures"] == mac.info["departures"], (label, k.name)


@pytest.mark.parametrize("label,unit", _units(), ids=[u[0] for u in _units()])
def test_every_kernel_forced_equals_the_mac_level(label, unit):
    _check_forced_kernels(label, unit)
    # each unit runs at least its MAC-level kernel and one faster kernel on these problems
    names = [k.name for k in kernels.available(unit)]
    assert _ACCEPTED.get(names[-1], 0) > 0


def test_every_available_kernel_was_exercised():
    """Every kernel this machine runs accepted (and matched) some preset's or variant's problem: a kernel
    that no unit's problems reach would be untested. Kernels the parametrized test above did not reach in
    this process (e.g. when run alone) are checked here."""
    units = _units()
    every = {k.name for _, u in units for k in kernels.available(u)}
    for label, unit in units:
        missing = {k.name for k in kernels.available(unit)} - {n for n, v in _ACCEPTED.items() if v}
        if missing:
            _check_forced_kernels(label, unit, only=missing)
    assert not [n for n in every if not _ACCEPTED.get(n)], sorted(n for n in every if not _ACCEPTED.get(n))


def test_selection_prefers_fast_kernels_and_gemm_codes_uses_them():
    rng = np.random.default_rng(7)
    u = numsim.get_unit("int4_int32")
    a = _edge_codes(rng, "int4", (5, 40))
    b = _edge_codes(rng, "int4", (40, 6))
    r = u.gemm_codes(a, b)
    assert r.info["kernel"] != "int_mac.mac_level"
    assert r.info["kernel"] == kernels.available(u)[0].name
    assert np.array_equal(r.codes, kernels.mac_level_gemm(u, a, b).codes)
    f = numsim.get_unit("fp16_fp32")
    fa = numsim.encode(rng.standard_normal((4, 33)), "fp16")
    fb = numsim.encode(rng.standard_normal((33, 3)), "fp16")
    # the first kernel in the unit's list whose level runs here and whose domain accepts (fp16 products
    # are exact in the fp32 FMA chain: its domain takes them on any AVX-512 machine)
    fast = next(k.name for k in kernels.available(f) if k.domain(f, f.problem(fa, fb)) is None)
    assert fast != "float_mac.mac_level"
    assert f.gemm_codes(fa, fb).info["kernel"] == fast
    assert numsim.matmul(fa, fb, f).info["kernel"] == [fast]
    x = numsim.encode(rng.standard_normal((1, 2, 5, 5)), "fp16")
    w = numsim.encode(rng.standard_normal((3, 2, 3, 3)), "fp16")
    assert set(numsim.conv2d(x, w, f).info["kernel"]) == {fast}
    assert ("float_mac.fma_chain" if kernels.level_ok("avx512") else "float_mac.exact_double") == fast
    h = numsim.get_unit("h100_hmma_f16")
    want = "fused_adder.avx512" if kernels.level_ok("avx512") else "fused_adder.mac_level"
    assert h.gemm_codes(fa[:, :32], numsim.encode(rng.standard_normal((32, 3)), "fp16")).info["kernel"] == want
    lines = kernels.describe(u).splitlines()
    assert [line.split(" ")[0] for line in lines] == list(u.kernels)
    assert all(kernels.get_kernel(n).proof in line for n, line in zip(u.kernels, lines))


def test_environment_forces_a_kernel_or_caps_the_level(monkeypatch):
    rng = np.random.default_rng(8)
    u = numsim.get_unit("int4_int32")
    a = _edge_codes(rng, "int4", (3, 20))
    b = _edge_codes(rng, "int4", (20, 4))
    want = kernels.mac_level_gemm(u, a, b).codes
    monkeypatch.setenv("NUMSIM_KERNEL", "int_mac.exact_blas")
    r = u.gemm_codes(a, b)
    assert r.info["kernel"] == "int_mac.exact_blas" and np.array_equal(r.codes, want)
    # out of its domain: an initial accumulator near the INT32 limit could wrap
    c = numsim.encode(np.full((3, 4), 2.0**31 - 10), "int32")
    with pytest.raises(NumsimError, match="int_mac.exact_blas cannot give the MAC-level bits"):
        u.gemm_codes(a, b, c=c)
    with pytest.raises(NumsimError, match="int_mac.exact_blas cannot give the MAC-level bits"):
        numsim.matmul(a, b, u, c=c)
    # a kernel the unit does not have
    with pytest.raises(NumsimError, match="has no kernel 'int_mac.exact_blas'"):
        numsim.get_unit("fp8_fp16").gemm_codes(a.astype(np.uint8), b.astype(np.uint8))
    # a short name: every unit's MAC-level kernel
    monkeypatch.setenv("NUMSIM_KERNEL", "mac_level")
    assert u.gemm_codes(a, b).info["kernel"] == "int_mac.mac_level"
    monkeypatch.delenv("NUMSIM_KERNEL")
    monkeypatch.setenv("NUMSIM_LEVEL", "python")
    assert u.gemm_codes(a, b).info["kernel"] == "int_mac.exact_blas"
    monkeypatch.setenv("NUMSIM_LEVEL", "portable")
    assert u.gemm_codes(a, b, c=c).info["kernel"] == "int_mac.mac_level"
    monkeypatch.setenv("NUMSIM_KERNEL", "int_mac.int8_lanes_avx2")
    with pytest.raises(NumsimError, match="needs ISA level avx2"):
        u.gemm_codes(a, b)
    monkeypatch.delenv("NUMSIM_KERNEL")
    monkeypatch.setenv("NUMSIM_LEVEL", "sse9")
    with pytest.raises(NumsimError, match="NUMSIM_LEVEL"):
        u.gemm_codes(a, b)


@pytest.mark.parametrize("name,old,new,value", [("fp8_fp16", "fused_n", "k_step", 2),
                                                ("h100_hmma_f16", "sum_rounding", "acc_rounding", "nearest_even"),
                                                ("h100_hmma_f16", "overflow", "acc_overflow", "saturate"),
                                                ("h100_imma_s8", "overflow", "acc_overflow", "saturate")])
def test_renamed_parameters_name_their_new_field(name, old, new, value):
    with pytest.raises(NumsimError, match=f"no parameter '{old}': it is now '{new}'"):
        numsim.get_unit(name, **{old: value})
    with pytest.raises(NumsimError, match=f"it is now '{new}'"):
        numsim.get_unit(numsim.get_unit(name), **{old: value})
    assert getattr(numsim.get_unit(name, **{new: value}), new) == value
    with pytest.raises(NumsimError, match="no parameter 'nan'"):
        numsim.get_unit(name, nan="propagate")


def test_initial_accumulator_convention():
    """Unit level: codes; a signed array of the integer accumulator's width is the same bits."""
    rng = np.random.default_rng(9)
    u = numsim.get_unit("h100_imma_s8")
    a = _edge_codes(rng, "int8", (2, 64))
    b = _edge_codes(rng, "int8", (64, 3))
    c = rng.integers(-(2**31), 2**31, (2, 3)).astype(np.int32)
    assert np.array_equal(u.gemm_codes(a, b, c=c).codes, u.gemm_codes(a, b, c=c.view(np.uint32)).codes)
    i = numsim.get_unit("int4_int32")
    ai, bi = _edge_codes(rng, "int4", (2, 5)), _edge_codes(rng, "int4", (5, 3))
    assert np.array_equal(i.gemm_codes(ai, bi, c=c).codes, i.gemm_codes(ai, bi, c=c.view(np.uint32)).codes)
    with pytest.raises(NumsimError, match="c: code -1"):
        i.gemm_codes(ai, bi, c=np.full((2, 3), -1, np.int64))        # int64 is not the accumulator's width
    with pytest.raises(NumsimError, match="floats, inf and NaN have no meaning"):
        u.gemm_codes(a, b, c=np.zeros((2, 3)))
    f = numsim.get_unit("fp16_fp32")
    fa, fb = numsim.encode(np.ones((2, 4)), "fp16"), numsim.encode(np.ones((4, 3)), "fp16")
    half = f.gemm_codes(fa, fb, c=np.full((2, 3), 0.5))                # float values of a float accumulator
    assert np.all(half.values == 4.5)
    assert np.array_equal(half.codes, f.gemm_codes(fa, fb, c=np.full((2, 3), 0x3F000000, np.uint32)).codes)


def test_a_unit_without_kernels_runs_its_own_gemm_codes():
    """A user's Unit subclass that implements gemm_codes itself goes through matmul unchanged."""
    from numsim.units import GemmResult, Unit

    class Doubler(Unit):
        name = "doubler"
        a_fmt = b_fmt = acc_fmt = numsim.get_format("int8")

        def gemm_codes(self, a_codes, b_codes, c=None, nthreads=None, **ctx):
            v = numsim.decode(a_codes, "int8") @ numsim.decode(b_codes, "int8") * 2
            return GemmResult(codes=numsim.encode(v, "int8", overflow="saturate"), values=v)

    a = numsim.encode(np.ones((2, 3)), "int8")
    r = numsim.matmul(a, a.T.copy(), Doubler())
    assert np.all(r.acc_values == 6) and r.info["kernel"] == ["Doubler.gemm_codes"]
    with pytest.raises(NumsimError, match="declares no kernels and no gemm_codes"):
        Unit().gemm_codes(a, a.T)
