"""Output stages of deployed runtimes (numsim.units.runtime_stage): every preset against exact rationals
(numsim.reference.output_stages) on random and tie-heavy accumulators, the multiplier derivations, the
zero-point correction through numsim.matmul, ONNX Runtime run live, TFLite's three kernel sets replayed
from tests/data/runtimes/tflite_fc.npz (recorded by tools/record_runtimes.py) and run live when
tensorflow is installed (opt-in: -m tflite)."""
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import numsim
from numsim import NumsimError
from numsim.reference import output_stages as R
from numsim.units.runtime_stage import FIXED_POINT_RULES, PRESETS, OutputStage, quantize_multiplier
from numsim.verify import runtimes as rt

DATA = Path(__file__).parent / "data" / "runtimes" / "tflite_fc.npz"
FORMATS = {"int8": (-128, 127), "uint8": (0, 255)}


def _mult(stage, j=0):
    j = j if len(stage.multiplier if stage.rule in FIXED_POINT_RULES else stage.scale) > 1 else 0
    if stage.rule in FIXED_POINT_RULES:
        return stage.multiplier[j], stage.shift[j]
    return Fraction(stage.scale[j])


def _tie_accumulators(real, rng, n):
    """Accumulators whose exact product with `real` = q / 2^p (q odd) is j + 1/2, and their neighbours."""
    f = Fraction(real)
    p = f.denominator.bit_length() - 1
    if 601 << max(p - 1, 0) >= 2**31:         # no such tie in int32 (e.g. 0.0037: p = 60)
        return np.zeros(0, dtype=np.int64)
    base = (2 * rng.integers(-300, 300, n) + 1) << max(p - 1, 0)
    return np.concatenate([base, base - 1, base + 1])


def _accumulators(rng, real):
    return np.concatenate([rng.integers(-(2**31), 2**31, 300), rng.integers(-3000, 3000, 300),
                           [-(2**31), 2**31 - 1, 0, 1, -1], _tie_accumulators(real, rng, 150)])


REALS = [0.5, 0.375, 3 / 64, 5 / 1024, 0.0037, 1.0 / 3, 1.7, 2.0**-20 * 3]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("out_fmt", ["int8", "uint8"])
def test_preset_equals_exact_rationals(preset, out_fmt):
    rng = np.random.default_rng(zlib.crc32(repr((preset, out_fmt)).encode()))
    lo, hi = FORMATS[out_fmt]
    for real in REALS:
        zp = int(rng.integers(lo, hi + 1))
        st = numsim.output_stage(preset, real_multiplier=real, out_fmt=out_fmt, out_zero_point=zp)
        acc = _accumulators(rng, real)
        got, ev = st.requantize(acc)
        want = [R.requantize(st.rule, int(x), _mult(st), zp, lo, hi) for x in acc]
        bad = np.flatnonzero(got != np.array(want))
        assert bad.size == 0, (preset, real, [(int(acc[i]), int(got[i]), want[i]) for i in bad[:5]])
        assert ev["outputs"] == acc.size
        # every clamp is counted: the unclamped rule's result lies beyond [lo, hi] exactly there
        wide = [R.requantize(st.rule, int(x), _mult(st), zp, -(2**40), 2**40) for x in acc]
        assert ev["clamped"] == sum(1 for w in wide if not lo <= w <= hi)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_per_channel_multipliers(preset):
    rng = np.random.default_rng(7)
    reals = [0.5, 0.375, 1.5, 3 / 64]
    st = numsim.output_stage(preset, real_multiplier=reals, out_zero_point=-3)
    acc = np.stack([np.concatenate([_tie_accumulators(r, rng, 60), rng.integers(-5000, 5000, 180)])[:240]
                    for r in reals], axis=-1)
    got, _ = st.requantize(acc)
    want = [[R.requantize(st.rule, int(acc[i, j]), _mult(st, j), -3, -128, 127) for j in range(len(reals))]
            for i in range(acc.shape[0])]
    np.testing.assert_array_equal(got, np.array(want))


def test_tie_accumulators_are_ties():
    rng = np.random.default_rng(1)
    for real in (0.5, 0.375, 3 / 64):
        acc = _tie_accumulators(real, rng, 10)[:10]
        assert all((Fraction(real) * int(a)).denominator == 2 for a in acc)


# ---- multiplier derivations ---------------------------------------------------------------------

def test_quantize_multiplier_matches_tflite_rule():
    rng = np.random.default_rng(3)
    reals = list(np.exp(rng.uniform(np.log(1e-12), np.log(1e3), 400))) + [0.5, 1.0, 2.0**-31, 2.0**-32, 1e-20, 2.0**31]
    # q * 2^31 exactly j + 1/2: std::round takes it away from zero (Python's round would go to even)
    reals += [0.5 + 2.0**-32, 0.75 + 3 * 2.0**-33, 1 - 2.0**-32]
    for r in reals:
        assert quantize_multiplier(r) == R.quantize_multiplier(Fraction(float(r))), r
    assert quantize_multiplier(0.5 + 2.0**-32) == (2**30 + 1, 0)
    assert quantize_multiplier(1 - 2.0**-33) == (2**30, 1)      # rounds up to 2^31: halved, shift + 1
    assert quantize_multiplier(1e-20) == (0, 0)
    assert quantize_multiplier(2.0**40) == (2**31 - 1, 30)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("per_channel", [False, True])
def test_derivation_equals_exact_rationals(preset, per_channel):
    rng = np.random.default_rng(11)
    rule, derivation = PRESETS[preset]
    for _ in range(40):
        sa, so = (float(np.float32(x)) for x in rng.uniform(0.001, 0.2, 2))
        sb = (np.exp(rng.uniform(np.log(1e-4), np.log(0.05), 5)).astype(np.float32) if per_channel
              else float(np.float32(rng.uniform(1e-4, 0.05))))
        st = numsim.output_stage(preset, sa, sb, so)
        want = R.derive(derivation, sa, np.atleast_1d(sb), so, per_channel)
        if rule in FIXED_POINT_RULES:
            assert list(zip(st.multiplier, st.shift)) == want
        else:
            assert [Fraction(x) for x in st.scale] == want


# ---- through numsim.matmul: zero points on A, B and the output ------------------------------------

@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_matmul_with_output_stage_equals_reference(preset):
    rule = PRESETS[preset][0]
    for case in rt.cases(seed=5, M=6, K=9, N=4):
        st = rt.stage_of(preset, case)
        got = rt.numsim_outputs(preset, case)
        lo, hi = FORMATS[st.out_fmt]
        mults = [_mult(st, j) for j in range(st.channels)]
        want = R.quantized_matmul(rule, case["A"].astype(int).tolist(), case["B"].astype(int).tolist(), mults,
                                  st.a_zero_point, list(st.b_zero_point), st.out_zero_point, lo, hi)
        np.testing.assert_array_equal(got, np.array(want), err_msg=f"{preset} {case['kind']} {case['dtype']}")


def test_tie_cases_are_tie_heavy_and_presets_disagree_there():
    """The tie cases put a large share of outputs on exact ties, where the presets' rules differ."""
    names = ("gemmlowp", "tflite_reference", "tflite_optimized", "xnnpack")
    differ = set()
    for case in rt.cases(seed=0):
        if case["kind"] != "ties":
            continue
        acc = (case["A"].astype(np.int64) - case["a_zero_point"]) @ (case["B"].astype(np.int64) - case["b_zero_point"])
        real = np.float64(case["a_scale"]) * np.asarray(case["b_scale"], np.float64) / case["out_scale"]
        exact = acc * real
        assert np.mean(exact - np.floor(exact) == 0.5) > 0.2
        outs = {p: rt.numsim_outputs(p, case) for p in names}
        differ |= {(p, q) for p in names for q in names if p < q and np.any(outs[p] != outs[q])}
    assert len(differ) == 6


def test_matmul_output_stage_events_and_checks():
    u = numsim.get_unit("int4_int32", a_fmt="int8", b_fmt="int8")
    A = np.full((2, 3), 100, np.int8).view(np.uint8)
    st = numsim.output_stage("onnxruntime", real_multiplier=0.5)
    res = numsim.matmul(A, A.T.copy(), u, output_stage=st)
    assert res.out_fmt == numsim.get_format("int8")
    assert res.info["output_stage"] == {"outputs": 4, "clamped": 4, "wraps": 0}
    assert np.all(res.out_codes.view(np.int8) == 127)
    with pytest.warns(numsim.NumsimWarning, match="clamped by the output stage"):
        numsim.matmul(A, A.T.copy(), u, output_stage=st, warn=True)
    with pytest.raises(NumsimError, match="output_stage"):
        numsim.matmul(A, A.T.copy(), u, output_stage="onnxruntime")
    with pytest.raises(NumsimError, match="output_stage"):
        numsim.matmul(A, A.T.copy(), "int4_int32_requant", output_stage=st)
    with pytest.raises(NumsimError, match="output_stage"):
        numsim.matmul(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), "fp8_fp16", output_stage=st)


def test_bad_stage_arguments():
    with pytest.raises(NumsimError, match="preset"):
        numsim.output_stage("tflite", real_multiplier=0.5)
    with pytest.raises(NumsimError, match="out_fmt"):
        numsim.output_stage("gemmlowp", real_multiplier=0.5, out_fmt="int16")
    with pytest.raises(NumsimError, match="out_zero_point"):
        numsim.output_stage("gemmlowp", real_multiplier=0.5, out_fmt="uint8", out_zero_point=-1)
    with pytest.raises(NumsimError, match="b_scale"):
        numsim.output_stage("xnnpack", 0.1, -0.2, 0.3)
    with pytest.raises(NumsimError, match="real_multiplier"):
        numsim.output_stage("xnnpack", 0.1, 0.2, 0.3, real_multiplier=0.5)
    with pytest.raises(NumsimError, match="scale"):
        numsim.output_stage("xnnpack", real_multiplier=300.0)
    with pytest.raises(NumsimError, match="rule"):
        OutputStage(rule="nearest")
    with pytest.raises(NumsimError, match="out_min"):
        OutputStage(rule="gemmlowp", out_min=5, out_max=4)
    st = numsim.output_stage("gemmlowp", real_multiplier=[0.5, 0.25])
    with pytest.raises(NumsimError, match="multiplier"):
        st.requantize(np.zeros((2, 3), np.int64))
    with pytest.raises(NumsimError, match="acc"):
        st.requantize(np.array([[2**31, 0]]))


def test_apply_takes_accumulator_codes():
    st = numsim.output_stage("tflite_reference", real_multiplier=0.5, out_fmt="uint8", out_zero_point=128)
    codes = np.array([3, 0xFFFFFFFD], dtype=np.uint32)          # +3 and -3
    assert st.apply(codes).tolist() == [130, 126]               # 1.5 -> 2, -1.5 -> -2 (ties away)


def test_requant_int8_from_scale_ties_away():
    """RequantInt8.from_scale derives as TFLite does (std::round, ties away), through the one rule."""
    r = numsim.RequantInt8.from_scale(0.5 + 2.0**-32)
    assert (r.multiplier, r.shift) == (2**30 + 1, 0)


# ---- the runtimes ---------------------------------------------------------------------------------

RUNTIME_PRESET = {"onnxruntime": "onnxruntime", "onnxruntime_b_input": "onnxruntime",
                  "tflite_reference": "tflite_reference", "tflite_optimized": "tflite_optimized",
                  "tflite_xnnpack": "xnnpack"}


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnxruntime_b_input"])
def test_onnxruntime_qlinear_matmul_equals_preset(runtime):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    for case in rt.cases(seed=1) + rt.cases(seed=2, M=5, K=300, N=17):
        got = rt.runtime_outputs(runtime, case)
        np.testing.assert_array_equal(rt.numsim_outputs("onnxruntime", case), got,
                                      err_msg=f"{case['kind']} {case['dtype']} per_channel={case['per_channel']}")


def test_onnxruntime_matmul_integer_chain_equals_float32_rule():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    rng = np.random.default_rng(4)
    for dtype, za, zb, zo in ((np.int8, 3, 0, -7), (np.uint8, 128, 131, 125)):
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max + 1
        A = rng.integers(lo, hi, (8, 40)).astype(dtype)
        B = rng.integers(lo, hi, (40, 6)).astype(dtype)
        for scale in (np.float32(0.0031), np.float32(0.5), rng.uniform(0.001, 0.01, 6).astype(np.float32)):
            got = rt.onnx_matmul_integer_requant(A, B, za, zb, scale, zo, dtype).astype(np.int64)
            st = OutputStage(rule="float32", scale=scale, a_zero_point=za, b_zero_point=zb, out_zero_point=zo,
                             out_fmt=np.dtype(dtype).name)
            acc = (A.astype(np.int64) - za) @ (B.astype(np.int64) - zb)
            np.testing.assert_array_equal(st.requantize(acc)[0], got)


def _recorded_cases():
    if not DATA.exists():
        return []
    d = np.load(DATA)
    out = []
    for i in range(int(d["n_cases"])):
        p = f"c{i}_"
        case = dict(A=d[p + "A"], B=d[p + "B"], dtype=d[p + "A"].dtype.type, per_channel=bool(d[p + "per_channel"]),
                    kind=str(d[p + "kind"]), a_scale=float(d[p + "a_scale"]), a_zero_point=int(d[p + "a_zero_point"]),
                    b_scale=(d[p + "b_scale"] if bool(d[p + "per_channel"]) else float(d[p + "b_scale"])),
                    b_zero_point=int(d[p + "b_zero_point"]), out_scale=float(d[p + "out_scale"]),
                    out_zero_point=int(d[p + "out_zero_point"]))
        outs = {k[len(p):]: d[k] for k in d.files if k.startswith(p + "tflite_")}
        out.append((case, outs))
    return out


def test_tflite_recordings_equal_presets():
    """TFLite 2.21's reference, optimized (ruy, x86) and XNNPACK kernels, recorded: each equals its preset."""
    recorded = _recorded_cases()
    assert recorded, f"{DATA} is missing (tools/record_runtimes.py writes it)"
    seen = set()
    for case, outs in recorded:
        for runtime, y in outs.items():
            seen.add(runtime)
            np.testing.assert_array_equal(rt.numsim_outputs(RUNTIME_PRESET[runtime], case), y.astype(np.int64),
                                          err_msg=f"{runtime} {case['kind']} {case['dtype']}")
    assert seen == {"tflite_reference", "tflite_optimized", "tflite_xnnpack"}


@pytest.mark.tflite
@pytest.mark.parametrize("runtime", ["tflite_reference", "tflite_optimized", "tflite_xnnpack"])
def test_tflite_live_equals_preset(runtime):
    pytest.importorskip("tensorflow")
    for case in rt.cases(seed=3) + rt.cases(seed=4, M=3, K=200, N=9):
        if not rt.tflite_supports(case):
            continue
        got = rt.runtime_outputs(runtime, case)
        np.testing.assert_array_equal(rt.numsim_outputs(RUNTIME_PRESET[runtime], case), got,
                                      err_msg=f"{case['kind']} {case['dtype']} per_channel={case['per_channel']}")


def test_gemmlowp_preset_equals_requant_int8():
    """The gemmlowp preset and RequantInt8 (csrc/units.c, the unit-level output stage) give the same codes."""
    rng = np.random.default_rng(9)
    acc = np.concatenate([rng.integers(-(2**31), 2**31, 2000), rng.integers(-4000, 4000, 2000),
                          _tie_accumulators(0.25, rng, 300)]).astype(np.int64)
    for real in (0.25, 0.0037, 0.75, 1.7, 3 / 64):
        r = numsim.RequantInt8.from_scale(real, zero_point=-7)
        st = numsim.output_stage("gemmlowp", real_multiplier=real, out_zero_point=-7)
        assert (st.multiplier[0], st.shift[0]) == (r.multiplier, r.shift)
        codes = acc.astype(np.uint32)
        np.testing.assert_array_equal(st.apply(codes), r.apply(codes))
