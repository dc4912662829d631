"""numsim.gpu's Triton kernels vs the CPU units, bit for bit, through Triton's interpreter.

TRITON_INTERPRET=1 is set before triton is imported (this module imports it first), so the @triton.jit
kernels run on CPU tensors with numpy arithmetic: their logic (order of adds, TwoSum + round to odd,
overflow, signed zeros, NaN codes, int8 lanes) is checked here; what only a GPU can check (tl.dot's
int8 path on tensor cores, the fp32 add's rounding and denormal handling on the device) is in
tools/gpu/check.py and docs/gpu.md. Sizes are small: the interpreter runs a program at a time."""
import os
import sys

import numpy as np
import pytest

if "triton" not in sys.modules:
    os.environ.setdefault("TRITON_INTERPRET", "1")
torch = pytest.importorskip("torch", reason="numsim.gpu needs torch")
pytest.importorskip("triton", reason="numsim.gpu needs triton (the gpu extra)")
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set", allow_module_level=True)

import numsim  # noqa: E402
from numsim import gpu  # noqa: E402
from numsim.codec import decode  # noqa: E402
from numsim.gpu.inputs import accumulators, operands  # noqa: E402
from numsim.units import FloatMacUnit, FusedDotUnit, Int4Fp4r4Unit, IntMacUnit, SampleShiftUnit  # noqa: E402

SEED = 1616
# numpy's warnings inside the interpreter for the IEEE overflows and inf - inf the kernels mean to do
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.runtime.interpreter")


def _operands(unit, M, K, N, rng, edge=0.2):
    return operands(unit, M, K, N, rng, edge)


def _t(x):
    return torch.from_numpy(np.asarray(x).astype(np.int64))


def _same(unit, a, b, c=None, expect_kernel=True, **ctx):
    ref = unit.gemm_codes(a, b, c=c, **ctx)
    r = gpu.gemm_codes(unit, _t(a), _t(b), c=None if c is None else _t(c), **ctx)
    got = r.codes.numpy()
    want = np.asarray(ref.codes).astype(np.int64)
    bad = np.argwhere(got != want)
    assert bad.size == 0, (unit.name, len(bad), [(tuple(i), hex(got[tuple(i)]), hex(want[tuple(i)])) for i in bad[:4]])
    assert r.overflow_count == ref.overflow_count
    if "nonfinite" in ref.info:
        assert r.info["nonfinite"] == ref.info["nonfinite"]
    if expect_kernel:
        assert r.info["kernel"].startswith("gpu."), r.info
    else:
        assert "fallback" in r.info, r.info
    return r


SHAPES = [(1, 1, 1), (3, 70, 5), (17, 33, 19), (2, 131, 3)]

FLOAT_UNITS = [
    numsim.get_unit("fp16_fp32"),
    numsim.get_unit("fp8_fp16"),
    FloatMacUnit(name="fp16_fp32_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp32", order="sequential"),
    FloatMacUnit(name="fp16_fp16_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", order="sequential"),
    FloatMacUnit(name="fp16_fp16_chunk5_sat", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", chunk=5,
                 acc_overflow="saturate"),
    FloatMacUnit(name="e5m2_fp16_chunk7", a_fmt="fp8_e5m2", b_fmt="fp8_e4m3fn", acc_fmt="fp16", chunk=7),
    FloatMacUnit(name="fp8_fp16_seq_sat", acc_overflow="saturate", order="sequential"),
    FloatMacUnit(name="fp16_fp32_sat", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp32", acc_overflow="saturate"),
]


@pytest.mark.parametrize("unit", FLOAT_UNITS, ids=lambda u: u.name)
def test_float_units_bit_exact(unit):
    rng = np.random.default_rng(SEED)
    for M, K, N in SHAPES:
        a, b = _operands(unit, M, K, N, rng)
        _same(unit, a, b)
    # initial accumulators: random codes, NaNs with payloads (signalling ones too), +-inf, -0, subnormals
    M, K, N = 5, 40, 7
    a, b = _operands(unit, M, K, N, rng, edge=0.05)
    _same(unit, a, b, c=accumulators(unit, M, N, rng))


def test_float_overflow_cancellation_and_signed_zeros():
    rng = np.random.default_rng(SEED + 1)
    for unit in FLOAT_UNITS:
        t = decode(np.arange(2**unit.a_fmt.bits, dtype=np.uint32), unit.a_fmt).astype(np.float64)
        fin = np.flatnonzero(np.isfinite(t))
        big = fin[np.argsort(np.abs(t[fin]))[-8:]]                     # the largest magnitudes: overflow
        a = rng.choice(big, (4, 50)).astype(np.uint32)
        b = rng.choice(big, (50, 3)).astype(np.uint32) if unit.b_fmt == unit.a_fmt else \
            _operands(unit, 4, 50, 3, rng)[1]
        _same(unit, a, b)
        # x, -x pairs: exact cancellations; negative zeros only: a -0 result
        x = rng.choice(fin, (3, 10)).astype(np.uint32)
        neg = x ^ np.uint32(1 << (unit.a_fmt.bits - 1))
        a = np.concatenate([x, neg], axis=1)
        one = np.flatnonzero(decode(np.arange(2**unit.b_fmt.bits, dtype=np.uint32), unit.b_fmt) == 1.0)[0]
        b = np.full((20, 2), one, np.uint32)
        _same(unit, a, b)
        nz = np.uint32(1 << (unit.a_fmt.bits - 1))
        _same(unit, np.full((2, 9), nz, np.uint32), np.full((9, 2), one, np.uint32))


INT_UNITS = ["h100_imma_s8", "h100_imma_s8_sat", "h100_imma_s4", "h100_imma_s4_sat", "int4_int32"]


@pytest.mark.parametrize("name", INT_UNITS)
def test_int_units_bit_exact(name):
    unit = numsim.get_unit(name)
    rng = np.random.default_rng(SEED + 2)
    for M, K, N in SHAPES:
        a, b = _operands(unit, M, K, N, rng)
        _same(unit, a, b)
    M, K, N = 9, 45, 6
    a, b = _operands(unit, M, K, N, rng)
    c = accumulators(unit, M, N, rng)                  # row 0 next to the top: the exact domain ends
    # a wrapping int32 accumulator wraps mod 2^32 in any order: the GPU kernel keeps it; saturation
    # (or an integer MAC's overflow) is outside the domain and falls back to the CPU kernels
    # (the integer MAC then runs its int64-lane kernel, every overflow policy as the unit fits it)
    exact = name in ("h100_imma_s8", "h100_imma_s4", "int4_int32")
    _same(unit, a, b, c=c, expect_kernel=exact)
    _same(unit, a, b, c=c % 2**20, expect_kernel=True)


def test_int_mac_align_shift_and_refusals():
    unit = numsim.get_unit("int4_int32")
    rng = np.random.default_rng(SEED + 3)
    a, b = _operands(unit, 7, 37, 5, rng)
    shift = rng.integers(0, 5, 37)
    _same(unit, a, b, align_shift=shift)
    # not on the GPU: an inner adder, an overflow error policy; same bits through the CPU kernels
    for u in (FloatMacUnit(name="inner", k_step=4, inner_bits=20, inner_overflow="wrap"),
              FloatMacUnit(name="fp8_err", acc_overflow="error", order="sequential")):
        a, b = _operands(u, 4, 11, 3, rng, edge=0.0)
        r = _same(u, a, b, expect_kernel=False)
        assert gpu.supported(u) == r.info["fallback"]
    with pytest.raises(numsim.NumsimError, match="no GPU kernel"):
        gpu.gemm_codes(FloatMacUnit(name="inner", k_step=4, inner_bits=20), _t(a), _t(b), fallback=False)


def test_bad_input_names_the_argument():
    unit = numsim.get_unit("fp8_fp16")
    with pytest.raises(numsim.NumsimError, match="^a"):
        gpu.gemm_codes(unit, torch.full((2, 3), 300), torch.zeros((3, 2), dtype=torch.int64))
    with pytest.raises(numsim.NumsimError, match="a, b"):
        gpu.gemm_codes(unit, torch.zeros((2, 3), dtype=torch.int64), torch.zeros((4, 2), dtype=torch.int64))
    with pytest.raises(numsim.NumsimError, match="^b"):
        gpu.gemm_codes(unit, torch.zeros((2, 3), dtype=torch.int64), torch.zeros((3, 2)))
    with pytest.raises(numsim.NumsimError, match="^c"):
        gpu.gemm_codes(unit, torch.zeros((2, 3), dtype=torch.int64), torch.zeros((3, 2), dtype=torch.int64),
                       c=torch.zeros((3, 3), dtype=torch.int64))


@pytest.mark.parametrize("name", ["fp8_fp16", "fp16_fp32", "h100_imma_s8", "int4_int32"])
def test_gpu_matmul_matches_numsim_matmul(name):
    """numsim.gpu.matmul (what numsim.matmul runs for device tensors) on CPU tensors through the
    interpreter: the same codes and values as numsim.matmul's CPU path, batch dims and c included."""
    unit = numsim.get_unit(name)
    rng = np.random.default_rng(SEED + 4)
    a = rng.integers(0, 2**unit.a_fmt.bits, (2, 6, 21)).astype(np.int64)
    b = rng.integers(0, 2**unit.b_fmt.bits, (21, 5)).astype(np.int64)
    c = (rng.integers(-100, 100, (6, 5)) if unit.acc_fmt.kind == "int" else rng.integers(-8, 8, (6, 5)) / 4.0)
    ref = numsim.matmul(torch.from_numpy(a), torch.from_numpy(b), unit, c=torch.from_numpy(c))
    got = gpu.matmul(torch.from_numpy(a), torch.from_numpy(b), unit, c=torch.from_numpy(c))
    assert torch.equal(got.codes, ref.codes)
    same = (got.acc_values == ref.acc_values) | (torch.isnan(got.acc_values) & torch.isnan(ref.acc_values))
    assert bool(same.all())
    assert got.overflow_count == ref.overflow_count
    assert all(k.startswith("gpu.") for k in got.info["kernel"])


def test_device_tensors_route_to_gpu(monkeypatch):
    """numsim.matmul hands a non-CPU DLPack tensor to numsim.gpu.matmul (no host round trip)."""
    import numsim.gemm as g

    seen = {}
    monkeypatch.setattr(g, "_on_device", lambda x: True)
    monkeypatch.setattr(gpu, "matmul", lambda a, b, unit, c=None: seen.setdefault("unit", unit.name))
    assert numsim.matmul(torch.zeros((2, 2), dtype=torch.int64), torch.zeros((2, 2), dtype=torch.int64),
                         "fp8_fp16") == "fp8_fp16"


def _double_rounding_cases(rng, n):
    """(acc, x, y) fp16 triples where rounding acc + x*y to fp32 first, then to fp16, is wrong: the
    cases the TwoSum + round-to-odd step exists for."""
    out = []
    while len(out) < n:
        acc = rng.uniform(-4, 4, 4096).astype(np.float16)
        x = rng.uniform(-2, 2, 4096).astype(np.float16)
        y = (rng.uniform(0.5, 1, 4096) * 2.0 ** rng.integers(-14, -8, 4096)).astype(np.float16)
        exact = acc.astype(np.float64) + x.astype(np.float64) * y.astype(np.float64)   # exact: < 53 bits
        naive = exact.astype(np.float32).astype(np.float16)
        hit = np.flatnonzero(naive != exact.astype(np.float16))
        out += [(acc[i], x[i], y[i]) for i in hit]
    return out[:n]


def test_fp16_accumulator_double_rounding_cases():
    unit = FloatMacUnit(name="fp16_fp16_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", order="sequential")
    cases = _double_rounding_cases(np.random.default_rng(SEED + 5), 24)
    acc, x, y = (np.array(v, np.float16).view(np.uint16).astype(np.uint32) for v in zip(*cases))
    n = len(cases)
    c = np.tile(acc[:, None], (1, n))
    _same(unit, x.reshape(n, 1), y.reshape(1, n), c=c)      # row i, column i is case i


def test_negative_zero_chunks_and_start():
    """A chunk of -0 products starts at -0 (no add), and -0 + -0 stays -0 (c = -0)."""
    for unit in FLOAT_UNITS:
        nz = np.uint32(1 << (unit.a_fmt.bits - 1))
        one = np.flatnonzero(decode(np.arange(2**unit.b_fmt.bits, dtype=np.uint32), unit.b_fmt) == 1.0)[0]
        c = np.full((2, 2), 1 << (unit.acc_fmt.bits - 1), np.uint32)
        _same(unit, np.full((2, 9), nz, np.uint32), np.full((9, 2), one, np.uint32), c=c)


def test_import_numsim_needs_no_triton(tmp_path):
    """`import numsim` (and numsim.gpu's package) import neither triton nor torch: the GPU path is lazy."""
    import subprocess

    import numsim as tested

    code = ("import sys, numsim, numsim.gpu; bad = [m for m in ('triton', 'torch') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    # the numsim under test (installed, or a built checkout), never a clone's unbuilt source tree
    root = os.path.dirname(os.path.dirname(os.path.abspath(tested.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr or r.stdout


def test_codes_of_the_formats_own_width_are_bits():
    """int16 tensors of fp16 codes (torch has no usable uint16) and float16 initial accumulators."""
    unit = FloatMacUnit(name="fp16_fp16_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", order="sequential")
    rng = np.random.default_rng(SEED + 6)
    a, b = operands(unit, 4, 9, 3, rng)
    c = rng.uniform(-4, 4, (4, 3)).astype(np.float16)
    ref = unit.gemm_codes(a, b, c=c.view(np.uint16).astype(np.uint32))
    ta = torch.from_numpy(a.astype(np.uint16).view(np.int16))
    tb = torch.from_numpy(b.astype(np.uint16).view(np.int16))
    r = gpu.gemm_codes(unit, ta, tb, c=torch.from_numpy(c))
    assert np.array_equal(r.codes.numpy(), ref.codes.astype(np.int64))


def test_count_flags_unit_runs_the_cpu_mac_level_with_its_flags():
    """The GPU kernels count no IEEE flags: a unit with count_flags=True runs the CPU's MAC-level kernel."""
    u = numsim.get_unit("fp8_fp16", count_flags=True)
    rng = np.random.default_rng(18)
    a, b = _operands(u, 4, 16, 3, rng)
    r = gpu.gemm_codes(u, _t(a), _t(b))
    ref = u.gemm_codes(a, b)
    assert "count_flags" in r.info["fallback"] and r.info["flags"] == ref.info["flags"]
    assert np.array_equal(r.codes.cpu().numpy(), ref.codes.astype(np.int64))


# ---- every order, fused groups, bf16, directed rounding (numsim/gpu/triton_exact.py) ---------------

MORE_FLOAT = [
    FloatMacUnit(name="fp8_fp16_pairwise", order="pairwise"),
    FloatMacUnit(name="fp16_fp32_pairwise", a_fmt="fp16", b_fmt="fp16", acc_fmt="fp32", order="pairwise"),
    FloatMacUnit(name="fp8_bf16_seq", acc_fmt="bf16", order="sequential"),
    FloatMacUnit(name="fp16_bf16_pw_sat", a_fmt="fp16", b_fmt="fp16", acc_fmt="bf16", order="pairwise",
                 acc_overflow="saturate"),
    FloatMacUnit(name="fp8_fp16_k4", k_step=4),
    FloatMacUnit(name="fp8_fp16_k4_pw_rz", k_step=4, order="pairwise", acc_rounding="toward_zero"),
    FloatMacUnit(name="fp8_fp16_k3_seq_neg_sat", k_step=3, order="sequential", acc_rounding="toward_neg",
                 acc_overflow="saturate"),
    FloatMacUnit(name="fp8_fp16_k2_ch3_pos", k_step=2, chunk=3, acc_rounding="toward_pos"),
    FloatMacUnit(name="fp8_fp16_k5_away", k_step=5, order="sequential", acc_rounding="nearest_away"),
    numsim.get_unit("int4_fp4r4_fp16"),
    Int4Fp4r4Unit(name="tpr_odd_flush", phase="odd"),
    Int4Fp4r4Unit(name="tpr_odd_exact_ch3", phase="odd", odd_underflow="exact", order="chunked", chunk=3),
    Int4Fp4r4Unit(name="tpr_odd_clamp_pw", phase="odd", odd_underflow="clamp", order="pairwise"),
]


@pytest.mark.parametrize("unit", MORE_FLOAT, ids=lambda u: u.name)
def test_more_float_units_bit_exact(unit):
    rng = np.random.default_rng(SEED + 7)
    for M, K, N in [(1, 1, 1), (3, 13, 5), (9, 37, 6)]:
        a, b = _operands(unit, M, K, N, rng, edge=0.05)
        _same(unit, a, b)
    a, b = _operands(unit, 5, 23, 7, rng, edge=0.02)
    _same(unit, a, b, c=accumulators(unit, 5, 7, rng))
    # small values: fp16 exponent fields 0 and 1 (where the odd phase's trick departs from a true half),
    # exact cancellations and zero sums (the sign rule under every rounding mode)
    ta = decode(np.arange(2**unit._c_a_fmt.bits, dtype=np.uint32), unit._c_a_fmt)
    tb = decode(np.arange(2**unit._c_b_fmt.bits, dtype=np.uint32), unit._c_b_fmt)
    sa = np.flatnonzero(np.isfinite(ta) & (np.abs(ta) <= np.sort(np.abs(ta[np.isfinite(ta)]))[6]))
    sb = np.flatnonzero(np.isfinite(tb) & (np.abs(tb) <= np.sort(np.abs(tb[np.isfinite(tb)]))[6]))
    a = rng.choice(sa, (6, 12)).astype(np.uint32)
    b = rng.choice(sb, (12, 5)).astype(np.uint32)
    c = rng.integers(0, 0x800, (6, 5)).astype(np.uint32) | (rng.integers(0, 2, (6, 5)).astype(np.uint32) << 15)
    if unit.acc_fmt.bits == 16:
        _same(unit, a, b, c=c)
    _same(unit, a, b)
    x = rng.choice(np.flatnonzero(np.isfinite(ta)), (3, 6)).astype(np.uint32)
    neg = np.concatenate([x, x], axis=1)
    one = np.flatnonzero(tb == 1.0)[0]
    minus = np.flatnonzero(tb == -1.0)
    if minus.size:
        b = np.concatenate([np.full((6, 2), one), np.full((6, 2), minus[0])]).astype(np.uint32)
        _same(unit, neg, b)


def _bf16_double_rounding_cases(rng, n):
    """(acc, x, y): acc + x*y rounded to fp32 first, then to bf16, is wrong."""
    out = []
    while len(out) < n:
        acc = (rng.uniform(-4, 4, 4096).astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
        x = rng.uniform(-2, 2, 4096).astype(np.float16)
        y = (rng.uniform(0.5, 1, 4096) * 2.0 ** rng.integers(-14, -6, 4096)).astype(np.float16)
        exact = acc.astype(np.float64) + x.astype(np.float64) * y.astype(np.float64)
        def bf16(v):
            b = v.astype(np.float32).view(np.uint32).astype(np.uint64)
            return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint32)
        f32 = exact.astype(np.float32)
        import fractions  # noqa: F401  (exact check below in float64: the sums are exact there)
        naive = bf16(f32)
        # the correct bf16 of the exact value: RNE at 8 bits from the float64 bits
        e = exact.view(np.uint64)
        right = ((e + (1 << 44) - 1 + ((e >> 45) & 1)) >> 45)
        right_f = (right << 45).view(np.float64).astype(np.float32).view(np.uint32) >> 16
        hit = np.flatnonzero(naive != right_f)
        out += [(acc[i], x[i], y[i]) for i in hit]
    return out[:n]


def test_bf16_accumulator_double_rounding_cases():
    unit = FloatMacUnit(name="fp16_bf16_seq", a_fmt="fp16", b_fmt="fp16", acc_fmt="bf16", order="sequential")
    cases = _bf16_double_rounding_cases(np.random.default_rng(SEED + 8), 16)
    acc = np.array([v[0] for v in cases], np.float32).view(np.uint32) >> 16
    x = np.array([v[1] for v in cases], np.float16).view(np.uint16).astype(np.uint32)
    y = np.array([v[2] for v in cases], np.float16).view(np.uint16).astype(np.uint32)
    n = len(cases)
    _same(unit, x.reshape(n, 1), y.reshape(1, n), c=np.tile(acc[:, None], (1, n)).astype(np.uint32))


INT_MORE = [
    "int4_int32_requant",
    IntMacUnit(name="i8_sat_pw", a_fmt="int8", b_fmt="int8", widen_overflow="saturate", acc_bits=20,
               acc_overflow="saturate", order="pairwise"),
    IntMacUnit(name="i8_wrap_ch5", a_fmt="int8", b_fmt="int8", widen_overflow="wrap", acc_bits=18,
               order="chunked", chunk=5),
    "int4_int32_sample_shift",
    SampleShiftUnit(name="ss_right_rne", shift_direction="right", shift_rounding="nearest_even", acc_bits=16),
    SampleShiftUnit(name="ss_per_shift_sat", grouping="per_shift", acc_bits=12, acc_overflow="saturate",
                    shift_overflow="saturate", widen_bits=12),
]


@pytest.mark.parametrize("unit", INT_MORE, ids=lambda u: u if isinstance(u, str) else u.name)
def test_int_lanes_units_bit_exact(unit):
    unit = numsim.get_unit(unit) if isinstance(unit, str) else unit
    rng = np.random.default_rng(SEED + 9)
    key = "sample_shift" if isinstance(unit, SampleShiftUnit) else "align_shift"
    for M, K, N in [(1, 1, 1), (3, 13, 5), (6, 29, 4)]:
        a, b = _operands(unit, M, K, N, rng)
        ctx = {key: rng.integers(0, 5, K)}
        r = _same(unit, a, b, **ctx)
        r = _same(unit, a, b, c=accumulators(unit, M, N, rng), **ctx)
        if unit.output_stage is not None:
            ref = unit.gemm_codes(a, b, c=None, **ctx)
            r = gpu.gemm_codes(unit, _t(a), _t(b), **ctx)
            assert np.array_equal(r.out_codes.numpy(), ref.out_codes.astype(np.int64))


def test_requant_stage_edges():
    """The output stage alone on the INT32 limits, shifts both ways and the one saturating product."""
    from numsim.gpu.drivers import requant_int8
    from numsim.units.output_stage import RequantInt8

    acc = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 12345, 2**31 + 7, 2**30, 3 << 29], np.uint32)
    acc = np.concatenate([acc, np.random.default_rng(SEED).integers(0, 2**32, 200).astype(np.uint32)])
    for st in (RequantInt8(), RequantInt8(-(2**31), 0, 0), RequantInt8(1 << 30, 3, 5, -100, 100),
               RequantInt8(1518500250, -7, -3), RequantInt8(2**31 - 1, -31, 0)):
        got = requant_int8(st, torch.from_numpy(acc.astype(np.int64))).numpy()
        assert np.array_equal(got, st.apply(acc).astype(np.int64)), st


FUSED = ["h100_hmma_f16", "h100_hmma_bf16", "h100_mma_e4m3", "h100_cublas_e4m3",
         FusedDotUnit(name="fd_e5m2_rne_sat_norm", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", k_step=8, kept_bits=20,
                      acc_man_bits=10, acc_rounding="nearest_even", acc_overflow="saturate",
                      product_exponent="normalized")]


@pytest.mark.parametrize("unit", FUSED, ids=lambda u: u if isinstance(u, str) else u.name)
def test_fused_adder_bit_exact(unit):
    unit = numsim.get_unit(unit) if isinstance(unit, str) else unit
    rng = np.random.default_rng(SEED + 10)
    for M, K, N, edge in [(1, 1, 1, 0.2), (3, 21, 5, 0.01), (5, 40, 4, 0.0)]:
        a, b = _operands(unit, M, K, N, rng, edge=edge)
        if edge == 0.0:      # finite operands only: the truncation and rounding paths, not the specials
            for x, f in ((a, unit.a_fmt), (b, unit.b_fmt)):
                x[~np.isfinite(decode(x, f))] = 0
        _same(unit, a, b)
        c = accumulators(unit, M, N, rng)
        c[:, -1] = rng.integers(0, 2**32, M).astype(np.uint32) & 0x807FFFFF     # fp32 subnormal c
        _same(unit, a, b, c=c)
    if unit.name == "h100_cublas_e4m3":
        a, b = _operands(unit, 3, 40, 2, rng, edge=0.0)
        _same(unit, a, b, scale_a=3.0, scale_b=1e30)         # the scale's overflow events


def test_h100_recordings_replay_through_gpu_kernels():
    """A subset of every recording (tiles of each input family) through the GPU kernels: 100%."""
    from numsim.gpu.replay import FILES, replay_gpu

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = next((d for d in (os.path.join(here, "..", "shared", "data", "h100"),
                             os.path.join(here, "..", "..", "shared", "data", "h100")) if os.path.isdir(d)), None)
    if data is None:
        pytest.skip("the H100 recordings are not here (../shared/data/h100 of the numsim workspace)")
    for f in FILES:
        if f == "cublas_h100.npz":
            continue   # its K=128 fp8 groups are slow in the interpreter; tools/gpu/check.py replays it
        for fname, label, name, ok, total, on_gpu, n in replay_gpu(os.path.join(data, f), torch.device("cpu"), 1):
            assert ok == total, (fname, label, name, ok, total)
            assert on_gpu >= 1, (fname, label)


@pytest.mark.parametrize("name", ["fp8_fp16", "int4_int32"])
def test_conv2d_device_route(monkeypatch, name):
    """numsim.conv2d with device tensors runs im2col and the GEMMs through numsim.gpu. The test seam:
    numsim.gemm._on_device is forced true, so CPU tensors take the device route (the Triton kernels
    under the interpreter) and are compared with the CPU route's codes."""
    import numsim.gemm as g

    unit = numsim.get_unit(name)
    rng = np.random.default_rng(SEED + 11)
    x = rng.integers(0, 2**unit.a_fmt.bits, (2, 4, 5, 6)).astype(np.int64)
    w = rng.integers(0, 2**unit.b_fmt.bits, (6, 2, 3, 2)).astype(np.int64)
    if unit.a_fmt.kind == "float":          # finite codes
        x[~np.isfinite(decode(x, unit.a_fmt))] = 0
        w[~np.isfinite(decode(w, unit.b_fmt))] = 0
    ref = numsim.conv2d(x.astype(np.uint32), w.astype(np.uint32), unit, stride=(1, 2), padding=1, groups=2)
    monkeypatch.setattr(g, "_on_device", lambda t: True)
    got = numsim.conv2d(torch.from_numpy(x), torch.from_numpy(w), unit, stride=(1, 2), padding=1, groups=2)
    assert all(k.startswith("gpu.") for k in got.info["kernel"])
    want = np.asarray(ref.codes).astype(np.int64) & ((1 << unit.acc_fmt.bits) - 1)
    assert np.array_equal(got.codes.numpy().astype(np.int64) & ((1 << unit.acc_fmt.bits) - 1), want)
    assert got.overflow_count == ref.overflow_count
