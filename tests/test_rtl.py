"""numsim.rtl without a simulator: the cycle model against numsim's dot and the pure-Python reference,
signal conversion, vector generation (corner properties checked independently), file round trips,
bad input and the `numsim vectors` command."""
import json
import os
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from numsim.cli import main as cli_main
from numsim.errors import NumsimError
from numsim.reference import units as ref
from numsim.rtl import Layout, Model, code_to_signed, generate, read, replay, signal_to_int, write
from numsim.rtl.vectors import describe_unit
from numsim.units import get_unit


def int_unit(**kw):
    return get_unit("int4_int32", **{"widen_overflow": "saturate", **kw})


# ---- the model -------------------------------------------------------------------------------------

def test_model_steps_equal_unit_dot_int(rng):
    u = int_unit()
    m = Model(u)
    for _ in range(40):
        K = int(rng.integers(1, 40))
        a, b = rng.integers(0, 16, K), rng.integers(0, 16, K)
        sh = rng.integers(0, 32, K)
        c = int(rng.integers(0, 2**32))
        out = m.step(a[0], b[0], 1, load=1, c=c, shift=sh[0])
        for k in range(1, K):
            m.step(int(rng.integers(0, 16)), 0, valid=0)          # a bubble holds the accumulator
            out = m.step(a[k], b[k], 1, shift=sh[k])
        assert out == u.dot(a, b, c=c, align_shift=sh).code


@pytest.mark.parametrize("phase", ["even", "odd"])
def test_model_steps_equal_unit_dot_and_reference_fp(rng, phase):
    u = get_unit("int4_fp4r4_fp16", phase=phase)
    m = Model(u)
    for _ in range(40):
        steps = int(rng.integers(1, 12))
        a, b = rng.integers(0, 16, 4 * steps), rng.integers(0, 16, 4 * steps)
        c = int(rng.integers(0, 2**16))
        out = m.step(list(a[:4]), list(b[:4]), 1, load=1, c=c)
        for t in range(1, steps):
            out = m.step(list(a[4 * t:4 * t + 4]), list(b[4 * t:4 * t + 4]), 1)
        assert out == u.dot(a, b, c=c).code == ref.dot(u, a, b, c=c)[0]


def test_model_packed_bus_equals_lane_list():
    m1, m2 = Model("int4_fp4r4_fp16"), Model("int4_fp4r4_fp16")
    a, b = [1, 15, 8, 7], [5, 13, 0, 7]
    pa = sum(x << (4 * i) for i, x in enumerate(a))
    pb = sum(x << (4 * i) for i, x in enumerate(b))
    assert m1.step(a, b, 1, load=1, c=0x3C00) == m2.step(pa, pb, 1, load=1, c=0x3C00)
    assert m1.state == m2.state


def test_model_reset_load_valid_semantics():
    m = Model(int_unit())
    assert m.step(3, 2, 1, load=1, c=100) == 106
    assert m.step(1, 1, 0) == 106                               # valid=0: hold
    assert m.step(1, 1, 0, load=1, c=7) == 7                    # load alone
    assert m.step(1, 1, 1, rst=1) == 0                          # reset wins
    assert m.step(0xF, 1, 1) == 2**32 - 1                       # -1 * 1 onto 0, two's complement code
    assert code_to_signed(m.output(), 32) == -1


def test_model_odd_phase_output_is_trick_of_register():
    m = Model("int4_fp4r4_fp16", phase="odd")
    assert m.step(0, 0, 0, load=1, c=0x3C00) == 0x3800          # 1.0 -> 0.5
    assert m.state == 0x3C00
    assert m.step(0, 0, 0, load=1, c=0x0401) == 0x0000          # field 1 flushes


def test_model_signal_conversion():
    m = Model(int_unit())
    assert m.to_code("a", -1) == 0xF and m.to_code("a", 15) == 0xF and m.to_code("a", "1000") == 8
    assert m.to_code("c", -(2**31)) == 2**31
    assert m.to_signal("a", 0xF) == 15 and m.to_signal("a", 0xF, signed=True) == -1
    assert m.to_signal("acc", 2**31, signed=True) == -(2**31)
    assert m.value("acc", 2**32 - 5) == -5
    fm = Model("int4_fp4r4_fp16")
    assert fm.to_code("a", 0x8F10) == [0, 1, 15, 8]
    assert fm.to_signal("a", [0, 1, 15, 8]) == 0x8F10
    assert fm.value("c", 0x3C00) == 1.0 and fm.value("b", [4, 12, 0, 7]) == [1.0, -1.0, 0.0, 64.0]
    for bad_value, what in ((16, "fits 4 bits"), (-9, "fits 4 bits"), ("10x1", "binary string"),
                            ("101", "binary string"), (1.5, "an int")):
        with pytest.raises(NumsimError, match="a:"):
            m.to_code("a", bad_value)
    with pytest.raises(NumsimError, match="field"):
        m.to_code("nosuch", 0)


def test_signal_conversion_of_cocotb_values():
    types = pytest.importorskip("cocotb.types", reason="cocotb not installed")
    m = Model(int_unit())
    assert m.to_code("a", types.LogicArray("1110")) == 0xE         # raw pattern; signedness from the layout
    assert code_to_signed(m.to_code("a", types.LogicArray("1110")), 4) == -2
    with pytest.raises(NumsimError, match="X/Z"):
        m.to_code("a", types.LogicArray("1X10"))
    with pytest.raises(NumsimError, match="4-bit signal"):
        m.to_code("a", types.LogicArray("01110"))


class _Port:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


class _Dut:
    pass


def _dut(widths):
    d = _Dut()
    for k, w in widths.items():
        setattr(d, k, _Port(w))
    return d


def test_bind_checks_port_widths():
    m = Model(int_unit())
    good = {x.name: x.bits for x in m.layout.fields}
    assert set(m.bind(_dut(good))) == set(good)
    with pytest.raises(NumsimError, match="a: expected a 4-bit port"):
        m.bind(_dut({**good, "a": 8}))
    with pytest.raises(NumsimError, match="acc: expected a 32-bit port"):
        m.check_ports({**good, "acc": 16})
    missing = dict(good)
    del missing["align_shift"]
    with pytest.raises(NumsimError, match="align_shift"):
        m.bind(_dut(missing))
    fm = Model("int4_fp4r4_fp16")
    with pytest.raises(NumsimError, match="b: expected a 16-bit port"):
        fm.check_ports({**{x.name: x.bits for x in fm.layout.fields}, "b": 4})


def test_bad_units():
    with pytest.raises(NumsimError, match="unknown unit preset"):
        Model("nosuch_unit")
    with pytest.raises(NumsimError, match="per_sample"):
        Model("int4_int32_sample_shift", grouping="per_shift")
    with pytest.raises(NumsimError, match="unit"):
        Model(42)


def test_error_policy_step_raises():
    m = Model("int4_int32")                                       # preset: widen_overflow='error'
    with pytest.raises(NumsimError, match="overflow"):
        m.step(8, 8, 1, shift=9)                                  # (-8)(-8) << 9 = 2^15: one past int16


# ---- vectors ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def int_vectors():
    return generate(get_unit("int4_int32", widen_overflow="saturate"), count=3000, seed=7)


@pytest.fixture(scope="module")
def fp_vectors():
    return generate(get_unit("int4_fp4r4_fp16"), count=3000, seed=7)


def _reference_replay(vs):
    """Expected outputs recomputed by the pure-Python reference (exact ints / Fractions), one step a
    row through ref.dot of length 1 (int) or 4 (the 4-way unit's lanes)."""
    u = vs.unit
    odd = getattr(u, "phase", "even") == "odd"
    even = replace(u, phase="even") if odd else u
    state, outs = 0, []
    for r in vs.rows:
        if r["rst"]:
            state = 0
        else:
            base = r["c"] if r["load"] else state
            if r["valid"]:
                if isinstance(r["a"], list):
                    state = ref.dot(even, r["a"], r["b"], c=base)[0]
                else:
                    state = ref.dot(even, [r["a"]], [r["b"]], c=base, align_shift=[r["align_shift"]])[0]
            else:
                state = base
        outs.append(ref.odd_phase_spec(state, u.odd_underflow) if odd else state)
    return outs


@pytest.mark.parametrize("which", ["int", "fp", "fp_odd"])
def test_vectors_expected_equal_reference(which, int_vectors, fp_vectors):
    vs = {"int": int_vectors, "fp": fp_vectors,
          "fp_odd": generate(get_unit("int4_fp4r4_fp16", phase="odd"), count=1000, seed=3,
                             kinds=("corner", "random"))}[which]
    assert [r["acc"] for r in vs.rows] == _reference_replay(vs)


def test_vectors_sections_and_counts(int_vectors, fp_vectors):
    for vs in (int_vectors, fp_vectors):
        kinds = [s["kind"] for s in vs.sections]
        assert kinds == ["corner", "exhaustive", "random"]
        assert sum(s["count"] for s in vs.sections) == vs.count == len(vs.tags)
        assert vs.sections[-1]["count"] == 3000 + 1                 # the random vectors + the leading reset
        for s in vs.sections:
            assert vs.rows[s["first"]]["rst"] == 1
    ex = int_vectors.sections[1]
    rows = int_vectors.rows[ex["first"] + 1: ex["first"] + ex["count"]]
    assert {(r["a"], r["b"], r["align_shift"]) for r in rows} == {(a, b, s) for a in range(16) for b in range(16)
                                                                    for s in range(32)}
    ex = fp_vectors.sections[1]
    rows = fp_vectors.rows[ex["first"] + 1: ex["first"] + ex["count"]]
    lane_pairs = {(i, r["a"][i], r["b"][i]) for r in rows if r["valid"] and r["c"] == 0 for i in range(4)}
    assert lane_pairs >= {(i, a, b) for i in range(4) for a in range(16) for b in range(16)}
    loaded = {r["c"] for r in rows if not r["valid"]}
    assert all(((c >> 10) & 31) in (0, 1, 2, 30, 31) for c in loaded) and len(loaded) == 5 * 2048


def _rows(vs, tag):
    return [r for r, t in zip(vs.rows, vs.tags) if t == tag]


def test_int_corners_overflow_by_one(int_vectors):
    vs = int_vectors
    rows = _rows(vs, "accumulator overflow by one")
    assert len(rows) >= 8
    hits = {"max": 0, "max+1": 0, "min": 0, "min-1": 0}
    for r in rows:
        w = code_to_signed(r["a"], 4) * code_to_signed(r["b"], 4) << r["align_shift"]
        w = max(-(2**15), min(2**15 - 1, w))
        s = code_to_signed(r["c"], 32) + w
        key = {2**31 - 1: "max", 2**31: "max+1", -(2**31): "min", -(2**31) - 1: "min-1"}.get(s)
        assert key is not None, r
        hits[key] += 1
        assert code_to_signed(r["acc"], 32) == (s + 2**31) % 2**32 - 2**31   # the preset wraps
    assert all(hits.values())
    wid = _rows(vs, "widening overflow")
    assert any(code_to_signed(r["a"], 4) * code_to_signed(r["b"], 4) << r["align_shift"] == 2**15 for r in wid)
    assert any(r["acc"] == 2**15 - 1 and r["a"] == 8 and r["b"] == 8 and r["align_shift"] == 9 for r in wid)


def _f16(code):
    return Fraction(float(np.array([code], dtype=np.uint16).view(np.float16)[0]))


def _fp4r4(code):
    e = code & 7
    return Fraction(0) if e == 0 else (-1) ** (code >> 3) * Fraction(4) ** (e - 4)


def _exact_sum(r):
    return _f16(r["c"]) + sum(code_to_signed(a, 4) * _fp4r4(b) for a, b in zip(r["a"], r["b"]))


def test_fp_corner_ties_are_exact_midpoints(fp_vectors):
    """Independently of numsim: the exact sum lies halfway between two adjacent FP16 values (numpy's
    float16 nextafter), and the expected code is the even one."""
    rows = _rows(fp_vectors, "ties")
    binades = {}
    for r in rows:
        x = _exact_sum(r)
        near = np.float16(float(x))                                # x is a double: exact; near is rounded
        below = near if Fraction(float(near)) <= x else np.nextafter(near, np.float16(-np.inf))
        above = np.nextafter(below, np.float16(np.inf))
        if np.isinf(above):                                        # the overflow threshold
            above_v = Fraction(65536) * (1 if x > 0 else -1)
        else:
            above_v = Fraction(float(above))
        assert x - Fraction(float(below)) == above_v - x, r
        even = below if int(below.view(np.uint16)) % 2 == 0 else above
        assert r["acc"] == int(np.float16(even).view(np.uint16)), r
        binades.setdefault((int(below.view(np.uint16)) >> 10) & 31, set()).add(
            (x > 0, int(below.view(np.uint16)) % 2))
    # every binade where a tie is reachable (half an ulp >= 2^-6, the product quantum): both signs,
    # rounding down to an even and up to an even neighbour
    for field in range(20, 31):
        assert binades.get(field) == {(True, 0), (True, 1), (False, 0), (False, 1)}, field
    assert fp_vectors.notes["ties"]["unreachable_binades"] == list(range(20))


def test_fp_corner_overflow_and_trick_edges(fp_vectors):
    rows = _rows(fp_vectors, "accumulator overflow by one")
    results = {(r["c"], r["acc"]) for r in rows}
    assert (0x7BFF, 0x7C00) in results and (0x7BFF, 0x7BFF) in results     # to inf at the threshold, not below
    assert (0xFBFF, 0xFC00) in results and (0xFBFF, 0xFBFF) in results
    for r in rows:
        x = _exact_sum(r)
        assert abs(x) in (65520, 65520 - Fraction(1, 64), 65520 + Fraction(1, 64)) or abs(x) < 65520
    edges = _rows(fp_vectors, "binade edges")                       # even phase: no exponent trick
    fields = {(r["c"] >> 10) & 31 for r in edges if not r["valid"]}
    assert fields == {0, 1, 2, 30}
    reached = {(r["acc"] >> 10) & 31 for r in edges if r["valid"]}
    assert {0, 1, 2} <= reached                                   # reached by cancellation, not only loaded
    neg = _rows(fp_vectors, "signed zeros")
    assert neg and neg[0]["acc"] == 0x8000


def test_vectors_deterministic_by_seed():
    a = generate(int_unit(), count=300, seed=5, kinds=("random",))
    b = generate(int_unit(), count=300, seed=5, kinds=("random",))
    c = generate(int_unit(), count=300, seed=6, kinds=("random",))
    assert a.words() == b.words() and a.words() != c.words()


@pytest.mark.parametrize("unit", ["int4_int32", "int4_int32_requant", "int4_int32_sample_shift", "fp8_fp16",
                                  "fp16_fp32"])
def test_other_units_round_trip(unit, tmp_path):
    vs = generate(unit, count=200, seed=1, kinds=("corner", "random"))
    write(vs, tmp_path)
    back = read(tmp_path)
    assert back.rows == vs.rows and back.tags == vs.tags and replay(back) == []
    if unit == "int4_int32_requant":
        assert all("out" in r for r in back.rows)


def test_round_trip_files(int_vectors, fp_vectors, tmp_path):
    for vs, sub in ((int_vectors, "i"), (fp_vectors, "f")):
        paths = write(vs, tmp_path / sub)
        back = read(paths["json"])
        assert back.rows == vs.rows and back.tags == vs.tags and back.sections == vs.sections
        assert back.unit == vs.unit
        assert replay(back) == []
        man = json.load(open(paths["json"]))
        assert man["count"] == vs.count and man["seed"] == 7
        assert man["unit"]["description"] == describe_unit(vs.unit, vs.layout)
        assert sum(man["counts"].values()) == vs.count
        lines = open(paths["hex"]).read().split()
        assert len(lines) == vs.count and {len(x) for x in lines} == {man["hex_digits"]}
        vh = open(paths["vh"]).read()
        for f in man["fields"]:                                    # the .vh and the manifest agree
            assert f"`define NS_{f['name'].upper()}_LSB {f['lsb']}\n" in vh
            assert f"`define NS_{f['name'].upper()}_BITS {f['bits']}\n" in vh
        # offsets tile the word exactly
        spans = sorted((f["lsb"], f["bits"]) for f in man["fields"])
        assert spans[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:]))
        assert spans[-1][0] + spans[-1][1] == man["word_bits"]


def test_replay_catches_a_corrupted_file(int_vectors, tmp_path):
    paths = write(int_vectors, tmp_path)
    lines = open(paths["hex"]).read().split()
    i = len(lines) // 2
    lines[i] = f"{int(lines[i], 16) ^ 1:0{len(lines[i])}x}"           # flip the expected acc's lsb
    open(paths["hex"], "w").write("\n".join(lines) + "\n")
    bad = replay(read(tmp_path))
    assert bad and bad[0][0] == i and bad[0][1] == "acc"


def test_layout_pack_unpack():
    lay = Layout(get_unit("int4_fp4r4_fp16"))
    row = {"rst": 0, "load": 1, "valid": 1, "c": 0xABCD, "a": [1, 2, 3, 4], "b": [15, 0, 8, 7], "flags": 0b10101,
           "acc": 0x1234}
    w = lay.pack(row)
    assert lay.unpack(w) == row and w >> lay.word_bits == 0 and lay.word_bits == 3 + 16 * 4 + 5
    assert lay.offsets["acc"] == 0 and lay.offsets["flags"] == 16        # flags sit above the outputs
    assert (w >> lay.offsets["a"]) & 0xFFFF == 0x4321
    with pytest.raises(NumsimError, match="a: expected 4 lane"):
        lay.pack({**row, "a": [1, 2]})
    with pytest.raises(NumsimError, match="word"):
        lay.unpack(1 << lay.word_bits)


def test_bad_input_to_the_kit(tmp_path):
    with pytest.raises(NumsimError, match="unknown unit preset"):
        generate("nosuch", count=10)
    for bad_count in (0, -3, True, 2.5, None):
        with pytest.raises(NumsimError, match="count"):
            generate("int4_int32", count=bad_count)
    with pytest.raises(NumsimError, match="kinds"):
        generate("int4_int32", count=10, kinds=("corner", "bogus"))
    with pytest.raises(NumsimError, match="kinds"):
        generate("int4_int32", count=10, kinds=())
    with pytest.raises(NumsimError, match="seed"):
        generate("int4_int32", count=10, seed=-1)
    vs = generate(int_unit(), count=10, kinds=("random",))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(NumsimError, match="out:"):
        write(vs, blocker / "sub")
    with pytest.raises(NumsimError, match="out:"):
        write(vs, "/proc/numsim_cannot_write_here")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if not os.access(ro, os.W_OK):                            # root can write anywhere
            with pytest.raises(NumsimError, match="out:"):
                write(vs, ro)
    finally:
        os.chmod(ro, 0o700)
    with pytest.raises(NumsimError, match="path"):
        read(tmp_path / "missing.json")
    paths = write(vs, tmp_path / "v")
    with pytest.raises(NumsimError, match="unit"):                 # a unit with another layout
        read(paths["json"], unit=get_unit("int4_fp4r4_fp16"))
    open(paths["hex"], "a").write("zz\n")
    with pytest.raises(NumsimError, match="hex word"):
        read(paths["json"])


def test_cli_vectors(tmp_path, capsys):
    out = tmp_path / "v"
    rc = cli_main(["vectors", "int4_fp4r4_fp16", "--count", "50", "--out", str(out), "--seed", "3",
                   "--set", "phase=odd", "--kinds", "corner,random"])
    assert rc == 0
    back = read(out)
    assert back.unit == get_unit("int4_fp4r4_fp16", phase="odd") and back.seed == 3 and replay(back) == []
    assert "int4_fp4r4_fp16.hex" in capsys.readouterr().out
    for argv, msg in ((["vectors", "nosuch", "--count", "5", "--out", str(out)], "unknown unit preset"),
                      (["vectors", "int4_int32", "--count", "0", "--out", str(out)], "--count"),
                      (["vectors", "int4_int32", "--count", "5", "--out", "/proc/x/y"], "out:"),
                      (["vectors", "int4_int32", "--count", "5", "--out", str(out), "--set", "nope=1"], "--set"),
                      (["vectors", "int4_int32_sample_shift", "--count", "5", "--out", str(out),
                        "--set", "grouping=per_shift"], "per_sample")):
        assert cli_main(argv) == 2
        assert msg in capsys.readouterr().err


def test_signal_to_int_plain():
    assert signal_to_int(-1, 8) == 255 and signal_to_int(True, 1) == 1 and signal_to_int("1_0", 2) == 2
    with pytest.raises(NumsimError, match="fits 8 bits"):
        signal_to_int(256, 8)


@pytest.mark.parametrize("name", ["h100_imma_s8_sat", "h100_imma_s4", "h100_hmma_f16", "h100_cublas_bf16"])
def test_hardware_units_steps_equal_dot(name, rng):
    """Units outside numsim.mac (the H100 presets): one instruction of k_step lanes a cycle; chained
    steps equal the unit's own dot (units whose k order and accumulator are the steps')."""
    u = get_unit(name)
    m = Model(u)
    assert m.lanes == u.k_step and m.kind == "generic"
    lay = m.layout
    assert lay.field("a").bits == u.k_step * u.a_fmt.bits and lay.field("acc").bits == 32
    for _ in range(5):
        steps = int(rng.integers(1, 5))
        K = steps * u.k_step
        if u.a_fmt.bits <= 8:
            a, b = rng.integers(0, 2**u.a_fmt.bits, K), rng.integers(0, 2**u.b_fmt.bits, K)
        else:
            a = np.asarray(np.float16(rng.standard_normal(K)).view(np.uint16) if "f16" in name else
                           (rng.standard_normal(K).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16))
            b = np.asarray(np.float16(rng.standard_normal(K)).view(np.uint16) if "f16" in name else
                           (rng.standard_normal(K).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16))
        out = m.step(list(a[:u.k_step]), list(b[:u.k_step]), 1, load=1, c=0)
        for t in range(1, steps):
            out = m.step(list(a[t * u.k_step:(t + 1) * u.k_step]), list(b[t * u.k_step:(t + 1) * u.k_step]), 1)
        assert out == u.dot(a, b).code
    vs = generate(u, count=100, seed=2)
    assert replay(vs) == [] and {s["kind"] for s in vs.sections} == {"corner", "exhaustive", "random"}
    assert "none for" in vs.notes["exhaustive"]


# ---- accumulation orders (issue 18) ----------------------------------------------------------------

@pytest.mark.parametrize("order", ["sequential", "chunked", "pairwise"])
@pytest.mark.parametrize("spec", [
    ("fp8_fp16", {}), ("fp8_fp16", {"k_step": 4}), ("int4_fp4r4_fp16", {}),
    ("int4_fp4r4_fp16", {"phase": "odd"}), ("int4_int32", {"widen_overflow": "saturate", "acc_bits": 12, "widen_bits": 10,
                                                          "acc_overflow": "saturate"}),
])
@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_model_honours_order_and_k_step(order, spec, chunk, rng):
    """Every cycle's acc output equals unit.dot over the terms since the load, bit for bit, in the
    unit's order (chunked chunks, pairwise tree) and k_step."""
    name, kw = spec
    u = get_unit(name, order=order, chunk=chunk, **kw)
    m = Model(u)
    n = m.lanes
    c = m.to_code("c", 0)
    if u.acc_fmt.name == "fp16":
        c = 0x63D1                                     # 1000.5: large enough that orders round apart
    m.step(0 if n == 1 else [0] * n, 0 if n == 1 else [0] * n, valid=0, load=1, c=c)
    ahi, bhi = 1 << u.a_fmt.bits, 1 << u.b_fmt.bits
    A, B, S = [], [], []
    for t in range(20):
        a = [int(x) for x in rng.integers(0, ahi, n)]
        b = [int(x) for x in rng.integers(0, bhi, n)]
        if u.a_fmt.name.startswith("fp8"):
            a = [x & 0x3F for x in a]                  # finite, moderate products
            b = [x & 0x3F for x in b]
        s = int(rng.integers(0, 4)) if m.layout.shift_name else 0
        A += a; B += b; S.append(s)
        got = m.step(a if n > 1 else a[0], b if n > 1 else b[0], shift=s)
        ctx = {"align_shift": np.array(S)} if m.layout.shift_name == "align_shift" else {}
        want = u.dot(np.array(A), np.array(B), c=c, **ctx)
        assert got == want.code, (t, hex(got), hex(want.code))
        if "out" in m.layout.by_name:
            assert m.out_code() == want.out_code


def test_model_chunked_fp8_fp16_from_1000_3():
    """The issue's case: 20 terms from 1000.3 in fp8_fp16 (chunked, 64)."""
    from numsim.codec import encode
    u = get_unit("fp8_fp16")
    assert u.order == "chunked"
    c = int(encode(np.array([1000.3]), u.acc_fmt)[0])
    a = np.full(20, 0x30)                               # e4m3 0.5
    b = np.full(20, 0x30)
    m = Model(u)
    m.step(0, 0, valid=0, load=1, c=c)
    for i in range(20):
        out = m.step(int(a[i]), int(b[i]))
    assert out == u.dot(a, b, c=c).code


# ---- ports from the unit's parameters (issue 18) ---------------------------------------------------

def test_int8_mac_has_no_shift_port_and_binds(rng, tmp_path):
    """A plain INT8 MAC (int8 x int8 widened to 16 bits: no room above the product) has no
    align_shift port; its ports are as wide as its formats, it binds without one, and its vectors and
    manifest carry no shift and describe the actual unit."""
    u = get_unit("int4_int32", a_fmt="int8", b_fmt="int8")
    m = Model(u)
    widths = {x.name: x.bits for x in m.layout.fields}
    assert widths == {"rst": 1, "load": 1, "valid": 1, "c": 32, "a": 8, "b": 8, "flags": 5, "acc": 32}
    assert m.layout.shift_name is None
    assert set(m.bind(_dut(widths))) == set(widths)
    with pytest.raises(NumsimError, match="shift"):
        m.step(1, 1, shift=3)
    a = rng.integers(0, 256, 30)
    b = rng.integers(0, 256, 30)
    m.reset()
    for x, y in zip(a, b):
        out = m.step(int(x), int(y))
    assert out == u.dot(a, b).code
    vs = generate(u, count=200, seed=1)
    assert all("align_shift" not in r for r in vs.rows)
    assert not replay(vs)
    paths = write(vs, tmp_path)
    man = json.load(open(paths["json"]))
    desc = man["unit"]["description"]
    assert "seed 001" not in desc and "int8 x int8" in desc and "a_fmt=int8" in desc
    assert "align_shift" not in [f["name"] for f in man["fields"]]
    assert not replay(read(paths["json"]))


def test_shift_port_kept_when_the_widened_register_has_room():
    assert Model(int_unit()).layout.field("align_shift").bits == 5          # int4 x int4 -> 16 bits
    u = get_unit("int4_int32", a_fmt="int8", b_fmt="int8", widen_bits=24)
    assert Model(u).layout.field("align_shift").bits == 5
    assert "seed 001" in json.dumps(generate("int4_int32", count=5, seed=0, kinds=("random",)).unit.describe())


def test_cli_vectors_int8_mac(tmp_path, capsys):
    assert cli_main(["vectors", "int4_int32", "--count", "50", "--out", str(tmp_path),
                     "--set", "a_fmt=int8", "--set", "b_fmt=int8"]) == 0
    out = capsys.readouterr().out
    assert "seed 001" not in out and "int8 x int8" in out


# ---- manifest labels from what the vectors contain; random FP8 mostly finite (issue 18) -------------

def test_labels_follow_the_unit():
    odd = generate(get_unit("int4_fp4r4_fp16", phase="odd"), count=10, seed=0, kinds=("corner",))
    even = generate(get_unit("int4_fp4r4_fp16"), count=10, seed=0, kinds=("corner",))
    assert odd.notes["corner_tags"].get("exponent-trick edges") and "binade edges" not in odd.notes["corner_tags"]
    assert even.notes["corner_tags"].get("binade edges") and "exponent-trick edges" not in even.notes["corner_tags"]
    assert even.notes["corner_tags"].get("ties")
    rtz = generate(get_unit("int4_fp4r4_fp16", acc_rounding="toward_zero"), count=10, seed=0, kinds=("corner",))
    tags = rtz.notes["corner_tags"]
    assert "ties" not in tags and "ties" not in rtz.notes and tags.get("midpoints")
    for r in _rows(rtz, "midpoints"):                         # exact midpoints, rounded toward zero
        x = _exact_sum(r)
        lo = _f16(r["acc"])
        assert abs(lo) < abs(x) and lo * x >= 0


@pytest.mark.parametrize("fmt", ["fp8_e5m2", "fp8_e4m3fn"])
def test_random_fp8_vectors_mostly_finite(fmt):
    from numsim.codec import decode
    u = get_unit("fp8_fp16", a_fmt=fmt, b_fmt=fmt)
    for share in (0.05, 0.0):
        vs = generate(u, count=2000, seed=5, kinds=("random",), nonfinite_share=share)
        v = decode(np.array([r["acc"] for r in vs.rows], dtype=np.uint16), u.acc_fmt)
        assert np.mean(~np.isfinite(v)) <= share
        assert vs.notes["random_nonfinite"]["max_share"] == share
        assert not replay(vs)
    free = generate(u, count=2000, seed=5, kinds=("random",), nonfinite_share=1.0)
    assert np.mean(~np.isfinite(decode(np.array([r["acc"] for r in free.rows], dtype=np.uint16), u.acc_fmt))) > 0.05
    with pytest.raises(NumsimError, match="nonfinite_share"):
        generate(u, count=5, nonfinite_share=2)
