"""IEEE flags of the MAC units (numsim.units.flags): per-update flags of step / dot traces / GEMM counts,
the tininess and NaN-rule parameters, checked against the standalone operations (numsim.fpops, one
step = one fused multiply-add) and against exact rationals (numsim.reference), equal on every kernel
and ISA level and in the RTL model and vectors."""
from dataclasses import replace
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

import numsim
import numsim.fpops as fp
from numsim.kernels import LEVELS, cpu_levels
from numsim.reference.formats import decode_exact
from numsim.reference.fpops import round_value
from numsim.rtl import Model, generate, read, replay, write
from numsim.units import get_unit
from numsim.units.flags import FLAG_KEYS, count_masks

RULES = ("x86", "arm", "riscv")
FLOAT_PRESETS = ("fp8_fp16", "fp16_fp32", "int4_fp4r4_fp16")


def _edge_codes(fmt, rng, n):
    """Codes weighted to the edges: zeros, subnormals, largest, inf/NaN codes, plus random ones."""
    bits = fmt.bits
    top = 1 << (bits - 1)
    edges = [0, 1, 2, top, top + 1, top - 1, 2 * top - 1, top - 2, 2 * top - 2]
    if getattr(fmt, "exp_bits", 0) and fmt.radix == 2:
        inf = ((1 << fmt.exp_bits) - 1) << fmt.man_bits
        edges += [inf, inf | 1, inf | (1 << (fmt.man_bits - 1)), inf - 1, 1 << fmt.man_bits, (1 << fmt.man_bits) - 1]
    edges = [e & (2 * top - 1) for e in edges]
    return np.concatenate([np.array(edges * 3, dtype=np.int64), rng.integers(0, 2 * top, n)])[:max(n, len(edges))]


# ---- one step is one IEEE fma (k_step 1, same operand formats) ----------------------------------------

@pytest.mark.parametrize("a_fmt,acc_fmt", [("fp8_e5m2", "fp16"), ("fp16", "fp32"), ("fp16", "fp16"),
                                           ("fp8_e4m3fn", "fp16"), ("fp8_e5m2", "bf16")])
@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero", "toward_pos"])
def test_step_is_fpops_fma_with_flags(a_fmt, acc_fmt, rounding):
    rng = np.random.default_rng(18)
    base = get_unit("fp8_fp16", a_fmt=a_fmt, b_fmt=a_fmt, acc_fmt=acc_fmt, acc_rounding=rounding, order="sequential")
    fa, fz = base.a_fmt, base.acc_fmt
    n = 300
    a, b, c = _edge_codes(fa, rng, n), _edge_codes(fa, rng, n), _edge_codes(fz, rng, n)
    a, b, c = rng.permutation(a)[:n], rng.permutation(b)[:n], rng.permutation(c)[:n]
    for tin in ("after", "before"):
        default = replace(base, tininess=tin)
        dcodes = []
        for rule in RULES:
            u = replace(base, tininess=tin, nan_rule=rule)
            zc, zf = fp.fma(a, b, c, fa, rounding, out_fmt=fz, tininess=tin, nan_rule=rule)
            for i in range(n):
                code, fl = u.step_flags(int(c[i]), [int(a[i])], [int(b[i])])
                assert (code, fl) == (int(zc[i]), int(zf[i])), (rule, tin, hex(a[i]), hex(b[i]), hex(c[i]))
                if rule == "x86":
                    dcode, dfl = default.step_flags(int(c[i]), [int(a[i])], [int(b[i])])
                    # the default rule differs from SoftFloat's only in which NaN; never in the flags
                    assert dfl == fl
                    assert dcode == code or (np.isnan(_val(dcode, fz)) and np.isnan(_val(code, fz)))
                    assert dcode == base.step(int(c[i]), [int(a[i])], [int(b[i])])   # today's bits
                    dcodes.append(dcode)


def _val(code, fmt):
    return float(numsim.decode(np.array([code], dtype=fmt.dtype), fmt)[0])


def test_nan_rules_on_a_signaling_payload():
    """e5m2 0x7D is a signaling NaN with payload 01: x86/ARM propagate it quieted (0x7F00 in fp16),
    RISC-V gives the canonical 0x7E00, the default rule the default NaN 0xFE00; all raise invalid."""
    for rule, want in (("default", 0xFE00), ("x86", 0x7F00), ("arm", 0x7F00), ("riscv", 0x7E00)):
        u = get_unit("fp8_fp16", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", nan_rule=rule)
        assert u.step_flags(0x3C00, [0x7D], [0x3C]) == (want, fp.INVALID)
    # an accumulator's NaN: quieted by every payload rule but RISC-V's; a quiet NaN raises nothing
    for rule, want in (("default", 0x7E01), ("x86", 0x7E01), ("arm", 0x7E01), ("riscv", 0x7E00)):
        u = get_unit("fp8_fp16", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", nan_rule=rule)
        assert u.step_flags(0x7C01, [0x3C], [0x3C]) == (want, fp.INVALID)
        assert u.step_flags(0x7E01, [0x3C], [0x3C])[1] == 0
    # x86 vs ARM: a quiet operand NaN before a signaling accumulator NaN
    x86 = get_unit("fp8_fp16", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", nan_rule="x86")
    arm = replace(x86, nan_rule="arm")
    assert x86.step_flags(0x7C01, [0x7F], [0x3C]) == (0x7F00, fp.INVALID)
    assert arm.step_flags(0x7C01, [0x7F], [0x3C]) == (0x7E01, fp.INVALID)
    with pytest.raises(numsim.NumsimError, match="nan_rule"):
        get_unit("fp8_fp16", nan_rule="mips")
    with pytest.raises(numsim.NumsimError, match="tininess"):
        get_unit("fp8_fp16", tininess="during")


def test_overflow_underflow_inexact_invalid_in_fp8_fp16():
    u = get_unit("fp8_fp16", order="sequential")
    assert u.step_flags(0x7BFF, [0x7E], [0x7E]) == (0x7C00, fp.OVERFLOW | fp.INEXACT)       # 448^2 + max
    assert u.step_flags(0, [0x01], [0x01]) == (0x0040, 0)          # 2^-18: exact in fp16 (never underflows)
    e5 = get_unit("fp8_fp16", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2")
    assert e5.step_flags(0, [0x01], [0x01]) == (0x0000, fp.UNDERFLOW | fp.INEXACT)          # 2^-32 -> +0
    assert u.step_flags(0, [0x38], [0x38]) == (0x3C00, 0)                                     # 1 * 1 exact
    assert u.step_flags(0x7C00, [0x38], [0x38]) == (0x7C00, 0)                                # inf propagates
    assert u.step_flags(0x7C00, [0x38], [0xB8])[1] == 0
    assert u.step_flags(0xFC00, [0x38], [0x38]) == (0xFC00, 0)
    sat = replace(u, acc_overflow="saturate")
    assert sat.step_flags(0x7BFF, [0x7E], [0x7E]) == (0x7BFF, fp.OVERFLOW | fp.INEXACT)
    # +inf + -inf: invalid, the default NaN
    f16 = get_unit("fp16_fp32", order="sequential")
    assert f16.step_flags(0xFF800000, [0x7C00], [0x3C00]) == (0xFFC00000, fp.INVALID)
    assert f16.step_flags(0, [0x7C00], [0x0000]) == (0xFFC00000, fp.INVALID)                 # inf x 0


def test_tininess_before_and_after_differ_where_ieee_says():
    """fp16 accumulator: 2^-14 - 2^-26 = 2^-14 + (-2^-14) * 2^-12 is below the smallest normal before
    rounding but rounds (nearest, unbounded exponent, 11 bits) to 2^-14: tiny before rounding only."""
    u = get_unit("fp16_fp32", acc_fmt="fp16", order="sequential")   # fp16 x fp16 -> fp16
    c, a, b = 0x0400, 0x8400, 0x0C00
    x = decode_exact(c, u.acc_fmt) + decode_exact(a, u.a_fmt) * decode_exact(b, u.b_fmt)
    assert x < Fraction(1, 2**14)
    after = u.step_flags(c, [a], [b])
    before = replace(u, tininess="before").step_flags(c, [a], [b])
    env = SimpleNamespace(rounding="nearest_even", tininess="after", overflow="to_inf")
    assert after == round_value(x, u.acc_fmt, env)
    env.tininess = "before"
    assert before == round_value(x, u.acc_fmt, env)
    assert after[1] == fp.INEXACT and before[1] == fp.INEXACT | fp.UNDERFLOW


# ---- fused steps of several products against exact rationals -------------------------------------------

@pytest.mark.parametrize("name,over", [("fp8_fp16", {"k_step": 4}), ("int4_fp4r4_fp16", {}),
                                       ("fp8_fp16", {"k_step": 2, "a_fmt": "fp8_e5m2", "b_fmt": "fp8_e5m2"}),
                                       ("int4_fp4r4_fp16", {"acc_rounding": "toward_zero"})])
@pytest.mark.parametrize("tininess", ["after", "before"])
def test_fused_steps_against_exact_rationals(name, over, tininess):
    u = get_unit(name, order="sequential", tininess=tininess, **over)
    rng = np.random.default_rng(3)
    env = SimpleNamespace(rounding=u.acc_rounding, tininess=tininess, overflow="to_inf")
    fz = u.acc_fmt
    fin = [c for c in range(2**fz.bits) if np.isfinite(_val(c, fz))] if fz.bits <= 16 else None
    small = [c for c in fin if abs(_val(c, fz)) < 2.0**-12] + [0x7BFF, 0xFBFF, 0x0001, 0x8001]
    checked = 0
    for i in range(600):
        a = rng.integers(0, 2**u.a_fmt.bits, u.k_step)
        b = rng.integers(0, 2**u.b_fmt.bits, u.k_step)
        acc = int(rng.choice(small if i % 2 else fin))
        try:
            va = [decode_exact(int(x), u.a_fmt) for x in a]
            vb = [decode_exact(int(x), u._c_b_fmt) for x in b]
        except Exception:
            continue
        if any(not isinstance(v, Fraction) for v in va + vb):
            continue                                       # special operands: the fpops test covers them
        x = decode_exact(acc, fz) + sum(p * q for p, q in zip(va, vb))
        code, fl = u.step_flags(acc, a, b)
        if x == 0:
            assert fl == 0
            continue
        want = round_value(x, fz, env)
        assert (code, fl) == want, (acc, a, b)
        checked += 1
    assert checked > 300


# ---- traces, GEMM counts, every kernel and ISA level -----------------------------------------------------

def _edge_operands(u, rng, M, K, N):
    a = rng.integers(0, 2**u.a_fmt.bits, (M, K))
    b = rng.integers(0, 2**u.b_fmt.bits, (K, N))
    a[0, :] = a.max()                                      # large rows to overflow
    b[:, 0] = b.max()
    return a.astype(u.a_fmt.dtype), b.astype(u.b_fmt.dtype)


@pytest.mark.parametrize("name", FLOAT_PRESETS)
@pytest.mark.parametrize("order", ["sequential", "chunked", "pairwise"])
def test_gemm_flag_counts_equal_the_dots_traces(name, order):
    u = get_unit(name, order=order, chunk=5, count_flags=True)
    rng = np.random.default_rng(7)
    a, b = _edge_operands(u, rng, 4, 23, 3)
    g = u.gemm_codes(a, b)
    total = dict.fromkeys(FLAG_KEYS, 0)
    for i in range(4):
        for j in range(3):
            d = u.dot(a[i], b[:, j], trace=True)
            assert d.code == int(g.codes[i, j])
            assert count_masks(d.trace_flags) == d.info["flags"]
            for k in FLAG_KEYS:
                total[k] += d.info["flags"][k]
    assert g.info["flags"] == total
    assert g.info["flags"]["overflow"] >= 1 or name != "fp8_fp16"
    assert g.info["flags"]["inexact"] > 0


@pytest.mark.parametrize("name", FLOAT_PRESETS + ("int4_int32",))
def test_flags_equal_on_every_kernel_and_level(name, monkeypatch):
    """count_flags selects a kernel that counts them (the MAC-level kernel) at every ISA level; its codes
    are every fast kernel's codes, and the counts do not depend on the level or thread count."""
    base = get_unit(name)
    u = replace(base, count_flags=True) if hasattr(base, "count_flags") else base
    rng = np.random.default_rng(11)
    a, b = _edge_operands(base, rng, 9, 70, 6)
    ref = numsim.kernels.mac_level_gemm(u, a, b, nthreads=1)
    have = cpu_levels()
    for level in LEVELS[1:]:
        if level not in have:
            continue
        monkeypatch.setenv("NUMSIM_LEVEL", level)
        fast = base.gemm_codes(a, b, nthreads=2)
        counted = u.gemm_codes(a, b, nthreads=2)
        assert np.array_equal(fast.codes, ref.codes) and np.array_equal(counted.codes, ref.codes)
        assert counted.info.get("flags") == ref.info.get("flags")
        if hasattr(base, "count_flags"):
            assert counted.info["kernel"].endswith(".mac_level")
    if hasattr(base, "count_flags"):
        with pytest.raises(numsim.NumsimError, match="count_flags"):
            numsim.kernels.gemm(u, a, b, kernel=base.kernels[-2])


def test_odd_phase_gemm_keeps_the_even_updates_flags():
    u = get_unit("int4_fp4r4_fp16", phase="odd", count_flags=True)
    rng = np.random.default_rng(5)
    a, b = _edge_operands(u, rng, 3, 16, 2)
    g = u.gemm_codes(a, b)
    even = replace(u, phase="even").gemm_codes(a, b)
    assert g.info["flags"] == even.info["flags"]


def test_integer_updates_raise_overflow_only():
    u = get_unit("int4_int32", widen_overflow="saturate", acc_overflow="wrap")
    assert u.step_flags(0, 8, 8, align_shift=9)[1] == fp.OVERFLOW            # (-8)(-8) << 9: widening saturates
    assert u.step_flags(2**31 - 1, 1, 1)[1] == fp.OVERFLOW                  # accumulator wraps
    assert u.step_flags(5, 1, 1) == (6, 0)
    d = u.dot(np.array([7, 7], np.int8) & 0xF, np.array([7, 7], np.int8) & 0xF, c=2**31 - 60, trace=True)
    assert d.trace_flags == [0, fp.OVERFLOW]


# ---- RTL: the model's flags per cycle, the vectors' flags field --------------------------------------------

@pytest.mark.parametrize("name,over", [("fp8_fp16", {}), ("fp8_fp16", {"order": "sequential"}),
                                       ("int4_fp4r4_fp16", {"tininess": "before"}), ("int4_int32", {})])
def test_model_flags_per_cycle_and_vectors(name, over, tmp_path):
    u = get_unit(name, **over)
    m = Model(u)
    assert m.layout.field("flags").bits == 5 and m.layout.field("flags").optional
    vs = generate(u, count=400, seed=2)
    paths = write(vs, tmp_path)
    import json
    man = json.load(open(paths["json"]))
    assert any(f["name"] == "flags" for f in man["fields"]) and man["flags"]["bits"]["invalid"] == 16
    assert "`define NS_FLAGS_LSB" in open(paths["vh"]).read()
    assert replay(read(tmp_path)) == []
    rows = vs.rows
    assert any(r["flags"] for r in rows)
    # sequential units: the cycle's flags are the step's
    if m.order == "sequential":
        m.reset()
        for r in rows[:200]:
            if r["rst"]:
                m.reset()
                continue
            prev = m.state if not r["load"] else r["c"]
            m.advance(r["a"], r["b"], r["valid"], r["load"], r["c"], r.get(m.layout.shift_name, 0) or 0)
            if r["valid"]:
                kw = {"align_shift": r["align_shift"]} if "align_shift" in r else {}
                assert m.flags == u.step_flags(prev, r["a"], r["b"], **kw)[1]
            assert m.flags == r["flags"]
    # a corrupted flags bit is caught
    lines = open(paths["hex"]).read().split()
    i = next(j for j, r in enumerate(rows) if r["flags"])
    off = m.layout.offsets["flags"]
    lines[i] = f"{int(lines[i], 16) ^ (1 << off):0{len(lines[i])}x}"
    open(paths["hex"], "w").write("\n".join(lines) + "\n")
    bad = replay(read(tmp_path))
    assert bad and bad[0][0] == i and bad[0][1] == "flags"
