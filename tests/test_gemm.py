"""numsim.matmul / numsim.conv2d: fast paths and thread counts against the MAC-level path, conv2d
against the explicit im2col, DLPack in and out, scales, and bad input."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import numsim
from numsim import kernels

FAST_UNITS = ["int4_int32", "int4_int32_requant", "int4_fp4r4_fp16", "fp8_fp16", "fp16_fp32"]


def _codes(rng, fmt, shape, edge=False, limit=None):
    """Random codes of every finite value of fmt (|value| <= limit if given); edge=True favours the
    extremes."""
    fmt = numsim.get_format(fmt)
    table = numsim.decode(np.arange(2**fmt.bits, dtype=np.int64), fmt) if fmt.bits <= 16 else None
    ok = np.nonzero(np.isfinite(table) & (np.abs(table) <= (limit or np.inf)))[0]
    if fmt.kind == "int" and fmt.symmetric:
        ok = ok[ok != 2 ** (fmt.bits - 1)]
    if edge:
        mags = np.abs(table[ok])
        top = ok[mags >= np.sort(mags)[-4]]
        pool = np.concatenate([top, ok[mags == 0], ok])
        return rng.choice(pool, size=shape).astype(fmt.dtype)
    return rng.choice(ok, size=shape).astype(fmt.dtype)


def _mac(unit, a, b, c=None, ctx=None, nthreads=1):
    return kernels.mac_level_gemm(unit, np.ascontiguousarray(a), np.ascontiguousarray(b), c, ctx, nthreads)


@pytest.mark.parametrize("name", FAST_UNITS + ["int4_fp4r4_fp16:odd"])
def test_fast_path_applies_and_equals_the_mac_path(name, rng):
    base, _, phase = name.partition(":")
    unit = numsim.get_unit(base, **({"phase": phase} if phase else {}))
    for (m, k, n) in [(1, 1, 1), (3, 17, 5), (16, 64, 16), (33, 130, 19), (8, 300, 40)]:
        for edge in (False, True):
            a = _codes(rng, unit.a_fmt, (m, k), edge)
            b = _codes(rng, unit.b_fmt, (k, n), edge)
            fast = kernels.fast_gemm(unit, a, b, None, {}, 2)
            mac = _mac(unit, a, b)
            if fast is None:  # only allowed when the data overflowed (non-finite) in a float unit
                assert not np.all(np.isfinite(mac.values)), (name, m, k, n)
                continue
            assert np.array_equal(fast.codes, mac.codes), (name, m, k, n, edge)
            assert fast.overflow_count == mac.overflow_count     # float overflow events, counted alike
            if mac.out_codes is not None:
                assert np.array_equal(fast.out_codes, mac.out_codes)
            if "departures" in mac.info:
                assert fast.info["departures"] == mac.info["departures"]


@pytest.mark.parametrize("name", ["int4_fp4r4_fp16", "fp8_fp16", "fp16_fp32"])
@pytest.mark.parametrize("order", ["sequential", "chunked", "pairwise"])
def test_float_fast_path_every_order_and_initial_accumulator(name, order, rng):
    unit = numsim.get_unit(name, order=order, chunk=5)
    m, k, n = 7, 41, 18
    a = _codes(rng, unit.a_fmt, (m, k), limit=16)
    b = _codes(rng, unit.b_fmt, (k, n), limit=16)
    c = numsim.encode(rng.standard_normal((m, n)) * 4, unit.acc_fmt)
    fast = kernels.fast_gemm(unit, a, b, c, {}, 3)
    assert fast is not None
    assert np.array_equal(fast.codes, _mac(unit, a, b, c).codes)


@pytest.mark.parametrize("level", ["portable", "avx2", None])
@pytest.mark.parametrize("order", ["sequential", "chunked", "pairwise"])
def test_float_fast_path_at_every_simd_level_equals_the_mac_path(level, order, rng, monkeypatch):
    if level:
        monkeypatch.setenv("NUMSIM_LEVEL", level)
    for name in ["int4_fp4r4_fp16", "fp8_fp16", "fp16_fp32"]:
        unit = numsim.get_unit(name, order=order, chunk=7)
        a = _codes(rng, unit.a_fmt, (9, 70), limit=16)
        b = _codes(rng, unit.b_fmt, (70, 75), limit=16)   # two full 32-column panels and a tail
        c = numsim.encode(rng.standard_normal((9, 75)), unit.acc_fmt)
        assert np.array_equal(kernels.fast_gemm(unit, a, b, c, {}, 2).codes, _mac(unit, a, b, c).codes)


def test_cancellation_and_signed_zero_through_the_fast_path():
    unit = numsim.get_unit("fp8_fp16", chunk=3)
    vals = np.array([[1.0, -1.0, 448.0, -448.0, 0.0, -0.0, 2.0**-9, -(2.0**-9)]])
    a = numsim.encode(vals, "fp8_e4m3fn")
    b = numsim.encode(np.array([[1.0], [1.0], [-0.0], [-0.0], [-0.0], [1.0], [2.0**-9], [2.0**-9]]), "fp8_e4m3fn")
    fast = kernels.fast_gemm(unit, a, b, None, {}, 1)
    assert np.array_equal(fast.codes, _mac(unit, a, b).codes)
    neg0 = numsim.encode(np.array([[-0.0]]), "fp8_e4m3fn")
    f2 = kernels.fast_gemm(unit, neg0, neg0, numsim.encode(np.array([[-0.0]]), "fp16"), {}, 1)
    assert np.array_equal(f2.codes, _mac(unit, neg0, neg0, numsim.encode(np.array([[-0.0]]), "fp16")).codes)


def test_overflowing_float_gemm_falls_back_to_the_mac_path(rng):
    """Overflowing outputs get the MAC-level kernel's bits and events, whichever kernel runs (a fast
    kernel recomputes its non-finite outputs at the MAC level, or declines)."""
    unit = numsim.get_unit("fp8_fp16")
    a = numsim.encode(np.full((2, 8), 448.0), "fp8_e4m3fn")
    b = numsim.encode(np.full((8, 2), 448.0), "fp8_e4m3fn")
    fast = kernels.fast_gemm(unit, a, b, None, {}, 1)
    if fast is not None:
        mac0 = _mac(unit, a, b)
        assert np.array_equal(fast.codes, mac0.codes) and fast.overflow_count == mac0.overflow_count > 0
    r = numsim.matmul(a, b, unit)
    mac = _mac(unit, a, b)
    assert np.array_equal(r.codes, mac.codes) and r.overflow_count == mac.overflow_count
    assert np.isinf(r.values).all()


def test_int_fast_path_bounds():
    unit = numsim.get_unit("int4_int32")
    a = np.full((2, 4), 8, dtype=np.uint8)   # -8
    b = np.full((4, 2), 8, dtype=np.uint8)
    assert kernels.fast_gemm(unit, a, b, None, {"align_shift": np.array([0, 1, 8, 3])}, 1) is not None
    # 64 << 9 does not fit the 16-bit widening: no fast path, and the MAC path reports it
    assert kernels.fast_gemm(unit, a, b, None, {"align_shift": np.array([0, 1, 9, 3])}, 1) is None
    # an initial accumulator near the INT32 limit: partial sums could wrap, so no fast path
    c = numsim.encode(np.full((2, 2), 2.0**31 - 10), "int32")
    assert kernels.fast_gemm(unit, a, b, c, {}, 1) is None
    r = numsim.matmul(a, b, unit, c=c)
    assert np.array_equal(r.codes, _mac(unit, a, b, c).codes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.integers(1, 12), k=st.integers(1, 70), n=st.integers(1, 12), name=st.sampled_from(FAST_UNITS),
       threads=st.integers(1, 4), transposed=st.booleans(), edge=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_matmul_any_shape_layout_and_threads_equals_the_mac_path(m, k, n, name, threads, transposed, edge, seed):
    rng = np.random.default_rng(seed)
    unit = numsim.get_unit(name)
    a = _codes(rng, unit.a_fmt, (m, k), edge)
    b = _codes(rng, unit.b_fmt, (k, n), edge)
    if transposed:   # Fortran-ordered, transposed and strided views of the same codes
        a_in = np.asfortranarray(a)
        wide = np.zeros((n, 2 * k), dtype=b.dtype)
        wide[:, ::2] = b.T
        b_in = wide[:, ::2].T
    else:
        a_in, b_in = a, b
    r = numsim.matmul(a_in, b_in, unit, nthreads=threads)
    mac = _mac(unit, a, b, nthreads=1)
    assert np.array_equal(r.codes, mac.codes)
    assert np.array_equal(r.acc_values, mac.values, equal_nan=True)
    if mac.out_codes is not None:
        assert np.array_equal(r.out_codes, mac.out_codes)


def test_matmul_mac_path_threads_and_no_fastpath_env(rng, monkeypatch):
    monkeypatch.setenv("NUMSIM_KERNEL", "mac_level")
    unit = numsim.get_unit("int4_fp4r4_fp16")
    a = _codes(rng, "int4", (13, 37))
    b = _codes(rng, "fp4r4", (37, 11))
    outs = [numsim.matmul(a, b, unit, nthreads=t).codes for t in (1, 2, 3, 4)]
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])


def test_batched_matmul_broadcasts(rng):
    unit = numsim.get_unit("int4_int32")
    a = _codes(rng, "int4", (2, 1, 5, 7))
    b = _codes(rng, "int4", (3, 7, 4))
    r = numsim.matmul(a, b, unit)
    assert r.codes.shape == (2, 3, 5, 4)
    for i in range(2):
        for j in range(3):
            assert np.array_equal(r.codes[i, j], _mac(unit, a[i, 0], b[j]).codes)


def test_qtensor_scales_and_alignment_shifts(rng):
    unit = numsim.get_unit("int4_int32")
    m, k, n = 4, 6, 3
    a_codes = _codes(rng, "int4", (m, k))
    b_codes = _codes(rng, "int4", (k, n))
    # per-input-channel (K axis) scales in power-of-two ratios become alignment shifts
    sk = 0.01 * np.ldexp(1.0, np.array([0, 1, 3, 0, 2, 1]))
    qa = numsim.QTensor(a_codes, "int4", scale=sk, axis=1)
    sn = np.array([0.5, 0.25, 2.0])
    qb = numsim.QTensor(b_codes, "int4", scale=sn, axis=1)
    r = numsim.matmul(qa, qb, unit)
    want = (numsim.decode(a_codes, "int4") * sk) @ (numsim.decode(b_codes, "int4") * sn)
    assert np.allclose(r.values, want, rtol=1e-12, atol=0)
    mac = _mac(unit, a_codes, b_codes, ctx={"align_shift": np.array([0, 1, 3, 0, 2, 1])})
    assert np.array_equal(r.codes, mac.codes)
    with pytest.raises(numsim.NumsimError, match="power-of-two multiples"):
        numsim.matmul(numsim.QTensor(a_codes, "int4", scale=np.linspace(1, 2, k), axis=1), b_codes, unit)


def test_initial_accumulator_values_and_codes(rng):
    unit = numsim.get_unit("int4_int32")
    a = _codes(rng, "int4", (3, 5))
    b = _codes(rng, "int4", (5, 2))
    c_vals = np.array([[1, -2], [3, -4], [5, 100000]], dtype=np.int64)
    r1 = numsim.matmul(a, b, unit, c=c_vals)
    r2 = numsim.matmul(a, b, unit, c=numsim.encode(c_vals, "int32"))
    base = numsim.matmul(a, b, unit)
    assert np.array_equal(r1.codes, r2.codes)
    assert np.array_equal(r1.acc_values, base.acc_values + c_vals)
    with pytest.raises(numsim.NumsimError, match="c: value 0.5 .* not exactly representable"):
        numsim.matmul(a, b, unit, c=np.full((3, 2), 0.5))


# ---- conv2d ------------------------------------------------------------------------------------

def _conv_ref(xv, wv, stride, padding, dilation, groups):
    """Direct float64 convolution (exact for small integers)."""
    n, c, h, w = xv.shape
    o, cg, kh, kw = wv.shape
    xp = np.pad(xv, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dilation[0]:i * dilation[0] + stride[0] * oh:stride[0],
                           j * dilation[1]:j * dilation[1] + stride[1] * ow:stride[1]]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, wv[oc, :, i, j])
    return out


@pytest.mark.parametrize("cfg", [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2),
    dict(stride=1, padding=1, dilation=1, groups=4),   # depthwise
])
@pytest.mark.parametrize("name", ["int4_int32", "int4_fp4r4_fp16"])
def test_conv2d_equals_im2col_matmul_and_reference(cfg, name, rng):
    unit = numsim.get_unit(name)
    x = _codes(rng, unit.a_fmt, (2, 4, 7, 6))
    w = _codes(rng, unit.b_fmt, (8, 4 // cfg["groups"], 3, 2))
    r = numsim.conv2d(x, w, unit, **cfg)
    # explicit im2col per group, through the MAC-level path
    from numsim.gemm import _pair, im2col

    s, p, d = _pair(cfg["stride"], "s"), _pair(cfg["padding"], "p"), _pair(cfg["dilation"], "d")
    g = cfg["groups"]
    cg, og = 4 // g, 8 // g
    for gi in range(g):
        cols, oh, ow = im2col(x[:, gi * cg:(gi + 1) * cg], 3, 2, s, p, d, 0)
        a2 = cols.reshape(-1, cg * 6)
        b2 = w[gi * og:(gi + 1) * og].reshape(og, -1).T
        want = _mac(unit, a2, b2).codes.reshape(2, oh, ow, og).transpose(0, 3, 1, 2)
        assert np.array_equal(r.codes[:, gi * og:(gi + 1) * og], want)
    if name == "int4_int32":   # exact accumulation: equals the float64 convolution
        ref = _conv_ref(numsim.decode(x, "int4"), numsim.decode(w, "int4"), s, p, d, g)
        assert np.array_equal(r.acc_values, ref)


def test_conv2d_small_patch_budget_gives_the_same_bits(rng):
    unit = numsim.get_unit("int4_int32")
    x = _codes(rng, "int4", (5, 3, 6, 6))
    w = _codes(rng, "int4", (4, 3, 3, 3))
    a = numsim.conv2d(x, w, unit, padding=1)
    b = numsim.conv2d(x, w, unit, padding=1, max_patch_bytes=1)
    assert np.array_equal(a.codes, b.codes)


def test_conv2d_with_exact_float_accumulation_matches_numpy(rng):
    # fp16_fp32 on small-integer fp16 operands: every partial sum is exact in fp32
    unit = numsim.get_unit("fp16_fp32")
    xv = rng.integers(-4, 5, (1, 2, 5, 5)).astype(np.float64)
    wv = rng.integers(-3, 4, (3, 2, 3, 3)).astype(np.float64)
    r = numsim.conv2d(numsim.encode(xv, "fp16"), numsim.encode(wv, "fp16"), unit, padding=1)
    assert np.array_equal(r.acc_values, _conv_ref(xv, wv, (1, 1), (1, 1), (1, 1), 1))


def test_conv2d_per_output_channel_scale(rng):
    unit = numsim.get_unit("int4_int32")
    x = numsim.QTensor(_codes(rng, "int4", (1, 2, 4, 4)), "int4", scale=0.5)
    ws = np.array([1.0, 0.25, 3.0])
    w = numsim.QTensor(_codes(rng, "int4", (3, 2, 3, 3)), "int4", scale=ws, axis=0)
    r = numsim.conv2d(x, w, unit)
    assert np.allclose(r.values, r.acc_values * 0.5 * ws.reshape(1, -1, 1, 1))


# ---- DLPack ------------------------------------------------------------------------------------

def test_dlpack_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch", reason="torch is not installed (optional; pip install torch==2.13.0)")
    unit = numsim.get_unit("int4_int32")
    a = _codes(rng, "int4", (4, 8))
    b = _codes(rng, "int4", (8, 3))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    r = numsim.matmul(ta, tb, unit)
    assert isinstance(r.values, torch.Tensor) and isinstance(r.codes, torch.Tensor)
    assert np.array_equal(r.values.numpy(), numsim.matmul(a, b, unit).values)
    # zero copy on the way in: numpy sees the tensor's own memory
    assert np.from_dlpack(ta).__array_interface__["data"][0] == ta.data_ptr()
    # zero copy on the way out: the returned tensor shares numpy's buffer
    out = numsim.gemm._back(np.arange(6.0), torch)
    assert isinstance(out, torch.Tensor)


class _FakeDeviceTensor:
    def __dlpack__(self, stream=None):
        raise AssertionError("must not be called")

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA


def test_bad_input_names_the_argument(rng):
    E = numsim.NumsimError
    unit = numsim.get_unit("int4_int32")
    a = _codes(rng, "int4", (3, 4))
    with pytest.raises(E, match="reduction lengths differ"):
        numsim.matmul(a, _codes(rng, "int4", (5, 2)), unit)
    with pytest.raises(E, match="a: expected a QTensor or an integer array"):
        numsim.matmul(a.astype(np.float32), _codes(rng, "int4", (4, 2)), unit)
    with pytest.raises(E, match="a: format fp16 does not match the unit's operand format int4"):
        numsim.matmul(numsim.QTensor(np.zeros((3, 4), np.uint16), "fp16"), _codes(rng, "int4", (4, 2)), unit)
    with pytest.raises(E, match="b: code 16 .* out of range"):
        numsim.matmul(a, np.full((4, 2), 16), unit)
    with pytest.raises(E, match="unit: unknown unit preset 'int3_int9'"):
        numsim.matmul(a, a.T, "int3_int9")
    with pytest.raises(E, match="a: DLPack device \\(2, 0\\) is not the CPU"):
        numsim.matmul(_FakeDeviceTensor(), a.T, unit)
    with pytest.raises(E, match="a, b: expected arrays of at least 2 dimensions"):
        numsim.matmul(a[0], a.T, unit)
    with pytest.raises(E, match="batch dimensions"):
        numsim.matmul(np.zeros((2, 3, 4), np.uint8), np.zeros((3, 4, 2), np.uint8), unit)
    with pytest.raises(E, match="scale: expected a 1-D array of length 3"):
        numsim.QTensor(a, "int4", scale=np.ones(4), axis=0)
    q = numsim.QTensor(a, "int4", scale=np.ones(3), axis=0)
    with pytest.raises(E, match="per-sample shifts must lie along the reduction axis"):
        numsim.matmul(numsim.QTensor(a, "int4", scale=1.0, sample_shift=np.zeros(3, int), sample_axis=0),
                      a.T, "int4_int32_sample_shift")
    assert numsim.matmul(q, a.T, unit).codes.shape == (3, 3)
    with pytest.raises(E, match="w: shape .* does not fit x"):
        numsim.conv2d(np.zeros((1, 4, 5, 5), np.uint8), np.zeros((2, 3, 3, 3), np.uint8), unit, groups=2)
    with pytest.raises(E, match="x: input 2x2 is too small"):
        numsim.conv2d(np.zeros((1, 1, 2, 2), np.uint8), np.zeros((1, 1, 3, 3), np.uint8), unit)
    with pytest.raises(E, match="stride"):
        numsim.conv2d(np.zeros((1, 1, 5, 5), np.uint8), np.zeros((1, 1, 3, 3), np.uint8), unit, stride=0)


@pytest.mark.parametrize("grouping", ["per_sample", "per_shift"])
def test_sample_shift_unit_fast_path_equals_the_mac_path(grouping, rng):
    unit = numsim.get_unit("int4_int32_sample_shift", grouping=grouping)
    for m, k, n in [(1, 1, 1), (5, 37, 9), (16, 300, 20)]:
        a = _codes(rng, "int4", (m, k), edge=True)
        b = _codes(rng, "int4", (k, n), edge=True)
        s = rng.integers(0, 5, k)
        c = numsim.encode(rng.integers(-1000, 1000, (m, n)).astype(np.float64), "int32")
        fast = kernels.fast_gemm(unit, a, b, c, {"sample_shift": s}, 2)
        assert fast is not None
        mac = _mac(unit, a, b, c, ctx={"sample_shift": s})
        assert np.array_equal(fast.codes, mac.codes) and fast.overflow_count == mac.overflow_count == 0
    # right shifts round and near-limit accumulators: a kernel that takes them gives the MAC-level bits
    right = numsim.get_unit("int4_int32_sample_shift", shift_direction="right")
    big = numsim.encode(np.full((m, n), 2.0**31 - 5), "int32")
    for u, cc in ((right, None), (unit, big)):
        fast = kernels.fast_gemm(u, a, b, cc, {"sample_shift": s}, 1)
        mac = _mac(u, a, b, cc, ctx={"sample_shift": s})
        if fast is not None:
            assert np.array_equal(fast.codes, mac.codes) and fast.overflow_count == mac.overflow_count


def test_initial_accumulator_inf_for_an_ieee_accumulator(rng):
    unit = numsim.get_unit("fp8_fp16")
    a = _codes(rng, "fp8_e4m3fn", (2, 3), limit=4)
    b = _codes(rng, "fp8_e4m3fn", (3, 2), limit=4)
    c = np.array([[np.inf, 1.0], [-np.inf, 0.5]])
    r = numsim.matmul(a, b, unit, c=c)
    assert r.acc_values[0, 0] == np.inf and r.acc_values[1, 0] == -np.inf
    assert np.array_equal(r.codes, _mac(unit, a, b, numsim.encode(c, "fp16")).codes)
    with pytest.raises(numsim.NumsimError, match="c: value 1e\\+30 .* not exactly representable"):
        numsim.matmul(a, b, unit, c=np.full((2, 2), 1e30))
