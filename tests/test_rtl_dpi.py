"""The DPI-C entry (csrc/ns_dpi.h): compiled as C and as C++ (what Verilator does with DPI sources) into
a driver that calls the functions exactly as the SystemVerilog imports declare them; every answer is
compared with numsim. Verilator itself (optional, slow) runs examples/rtl/dpi/tb_dpi.sv."""
import glob
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from numsim.units import odd_phase_trick
from numsim.rtl import Model, code_to_signed
from numsim.units import get_unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
DPI = os.path.join(ROOT, "examples", "rtl", "dpi")
CC, CXX = shutil.which("gcc") or shutil.which("cc"), shutil.which("g++") or shutil.which("c++")

pytestmark = pytest.mark.skipif(CC is None or not os.path.isdir(CSRC),
                                reason="needs a C compiler and the csrc/ sources (a source checkout)")

POL = {"saturate": 0, "wrap": 1, "error": 4}


def _build(tmp, cxx_dpi=False):
    """dpi_check linked with mac_dpi (compiled as C, or as C++ like Verilator does) and numsim's C."""
    objs = []
    flags = ["-O1", "-I", CSRC]
    for c in sorted(glob.glob(os.path.join(CSRC, "*.c"))) + [os.path.join(DPI, "dpi_check.c")]:
        o = os.path.join(tmp, os.path.basename(c) + ".o")
        subprocess.run([CC, "-std=c11", *flags, "-c", c, "-o", o], check=True, capture_output=True)
        objs.append(o)
    o = os.path.join(tmp, "mac_dpi.o")
    if cxx_dpi:
        subprocess.run([CXX, "-x", "c++", *flags, "-c", os.path.join(DPI, "mac_dpi.c"), "-o", o], check=True,
                       capture_output=True)
    else:
        subprocess.run([CC, "-std=c11", "-Wall", "-Werror", *flags, "-c", os.path.join(DPI, "mac_dpi.c"), "-o", o],
                       check=True, capture_output=True)
    exe = os.path.join(tmp, "dpi_check")
    subprocess.run([CXX if cxx_dpi else CC, *objs, o, "-o", exe, "-lm", "-lpthread"], check=True, capture_output=True)
    return exe


@pytest.fixture(scope="module")
def dpi(tmp_path_factory):
    exe = _build(str(tmp_path_factory.mktemp("dpi")))

    def call(lines):
        out = subprocess.run([exe], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True).stdout
        return [tuple(int(x) for x in ln.split()) for ln in out.splitlines()]
    return call


def _fields(f):
    return [f.kind, f.bits, f.is_signed, f.symmetric, f.exp_bits, f.man_bits, f.bias, f.radix_log2, f.subnormals,
            f.specials, f.phase, f.r4_threshold, f.r4_zero]


def test_descriptors_equal_numsim_presets(dpi):
    got = dpi(["u"])
    for line, unit in zip(got, (get_unit("int4_int32", widen_overflow="saturate"),
                                get_unit("int4_fp4r4_fp16", phase="odd"))):
        u = unit._c
        want = [u.kind] + _fields(u.a_fmt) + _fields(u.b_fmt) + _fields(u.acc_fmt) + [
            u.widen_bits, u.widen_overflow, u.acc_overflow, u.acc_rounding, u.fused_n, u.order, u.chunk,
            u.sample_group, u.shift_dir, u.shift_rounding, u.shift_overflow, u.max_shift, u.sum_in_double,
            u.exact_lsb, u.odd_phase, u.odd_underflow, 0]
        assert list(line) == want


@pytest.mark.parametrize("widen,acc", [("saturate", "wrap"), ("saturate", "saturate"), ("wrap", "wrap"),
                                       ("error", "wrap"), ("saturate", "error")])
def test_int_step_equals_model(dpi, rng, widen, acc):
    m = Model(get_unit("int4_int32", widen_overflow=widen, acc_overflow=acc))
    reqs, want = [], []
    for i in range(1500):
        c = int(rng.integers(-(2**31), 2**31)) if i % 3 else int(rng.choice([2**31 - 1, -(2**31), 2**31 - 100]))
        a, b = int(rng.integers(-8, 8)), int(rng.integers(-8, 8))
        s = int(rng.integers(0, 32)) if i % 2 else int(rng.integers(0, 10))
        reqs.append(f"i {c} {a} {b} {s} {POL[widen]} {POL[acc]}")
        try:
            want.append((code_to_signed(m.next_state(a, b, 1, 1, c & 0xFFFFFFFF, s), 32), 0))
        except Exception as e:                                    # numsim raises where the policy is 'error'
            assert "overflow" in str(e)
            want.append((0, 6 if "widening" in str(e) else 1))
    assert dpi(reqs) == want
    if "error" in (widen, acc):
        assert any(st for _, st in want)


def test_fp_step_and_dot_equal_numsim(dpi, rng):
    m = Model(get_unit("int4_fp4r4_fp16"))
    reqs, want = [], []
    for _ in range(3000):
        c = int(rng.integers(0, 2**16))
        a, b = [int(x) for x in rng.integers(0, 16, 4)], [int(x) for x in rng.integers(0, 16, 4)]
        pa, pb = m.to_signal("a", a), m.to_signal("b", b)
        reqs.append(f"f {c} {pa} {pb}")
        want.append((m.next_state(a, b, 1, 1, c), 0))
    for phase in ("even", "odd"):
        for und in ("flush", "exact", "clamp"):
            u = get_unit("int4_fp4r4_fp16", phase=phase, odd_underflow=und)
            for K in (0, 1, 3, 4, 5, 17, 64):
                a, b = rng.integers(0, 16, K), rng.integers(0, 16, K)
                c = int(rng.integers(0, 2**16))
                reqs.append(f"F {K} {c} {int(phase == 'odd')} {['flush', 'exact', 'clamp'].index(und)} "
                            + " ".join(map(str, a)) + " " + " ".join(map(str, b)))
                want.append((u.dot(a, b, c=c).code, 0))
    assert dpi(reqs) == want


def test_step_flags_equal_numsim(dpi, rng):
    """The DPI steps' IEEE flags equal the units' step_flags (every tininess and NaN rule)."""
    reqs, want = [], []
    rules = ("default", "x86", "arm", "riscv")
    specials = [0x7C00, 0xFC00, 0x7C01, 0x7E01, 0xFE00, 0x7BFF, 0x0001, 0x8400, 0x0400]
    for i in range(2000):
        tin, rule = int(rng.integers(0, 2)), int(rng.integers(0, 4))
        u = get_unit("int4_fp4r4_fp16", tininess=("after", "before")[tin], nan_rule=rules[rule])
        m = Model(u)
        c = specials[i % len(specials)] if i % 3 == 0 else int(rng.integers(0, 2**16))
        a, b = [int(x) for x in rng.integers(0, 16, 4)], [int(x) for x in rng.integers(0, 16, 4)]
        reqs.append(f"g {c} {m.to_signal('a', a)} {m.to_signal('b', b)} {tin} {rule}")
        code, fl = u.step_flags(c, a, b)
        want.append((code, 0, fl))
    iu = get_unit("int4_int32", widen_overflow="saturate", acc_overflow="wrap")
    for _ in range(500):
        c = int(rng.integers(-2**31, 2**31))
        a, b, s = int(rng.integers(0, 16)), int(rng.integers(0, 16)), int(rng.integers(0, 32))
        reqs.append(f"j {c} {a} {b} {s} 0 1")
        code, fl = iu.step_flags(c & 0xFFFFFFFF, a, b, align_shift=s)
        want.append((code_to_signed(code, 32), 0, fl))
    got = dpi(reqs)
    assert got == want
    assert any(w[2] for w in want) and any(w[2] & 16 for w in want[:2000])


def test_int_dot_equals_numsim(dpi, rng):
    u = get_unit("int4_int32", widen_overflow="saturate")
    reqs, want = [], []
    for K in (0, 1, 2, 7, 100):
        a, b, s = rng.integers(-8, 8, K), rng.integers(-8, 8, K), rng.integers(0, 32, K)
        c = int(rng.integers(-(2**31), 2**31))
        reqs.append(f"I {K} {c} 0 1 " + " ".join(map(str, list(a) + list(b) + list(s))))
        want.append((code_to_signed(u.dot(a & 15, b & 15, c=c & 0xFFFFFFFF, align_shift=s).code, 32), 0))
    assert dpi(reqs) == want


def test_odd_phase_on_every_fp16_code(dpi):
    codes = np.arange(2**16, dtype=np.uint16)
    for i, und in enumerate(("flush", "exact", "clamp")):
        got = dpi([f"o {c} {i}" for c in codes])
        assert [g[0] for g in got] == [int(x) for x in odd_phase_trick(codes, und)]


def test_bad_arguments_give_status(dpi):
    got = dpi(["i 0 1 1 32 0 1", "i 0 1 1 -1 0 1", "i 0 1 1 0 3 1", "f 70000 0 0", "F 1 -5 0 0 1 1", "F 1 0 0 7 1 1"])
    assert got == [(0, 8)] * 6


@pytest.mark.skipif(CXX is None, reason="needs a C++ compiler")
def test_dpi_unit_compiles_as_cxx(tmp_path):
    """Verilator compiles DPI .c files as C++: the extern "C" header must still link against numsim's C."""
    exe = _build(str(tmp_path), cxx_dpi=True)
    out = subprocess.run([exe], input="i 2147483647 1 1 0 0 1\nf 15360 1 4\n", capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(-(2**31)), "0", str(0x4000), "0"]             # wraps; 1.0 + 1 * 1.0 = 2.0


VERILATOR = shutil.which("verilator")


def _verilator_run(tmp, widen_file):
    srcs = [os.path.join(ROOT, "examples", "rtl", n) for n in ("dpi/tb_dpi.sv", "int4_int32_mac.v", widen_file)]
    csrcs = [os.path.join(DPI, "mac_dpi.c")] + sorted(glob.glob(os.path.join(CSRC, "*.c")))
    cmd = [VERILATOR, "--binary", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--Mdir", str(tmp), "-CFLAGS",
           f"-I{CSRC}", "-LDFLAGS", "-lm -lpthread", "--top-module", "tb_dpi", *srcs, *csrcs]
    subprocess.run(cmd, check=True, capture_output=True)
    out = subprocess.run([os.path.join(str(tmp), "Vtb_dpi")], capture_output=True, text=True, timeout=300).stdout
    m = re.search(r"NUMSIM_DPI checked=(\d+) errors=(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


@pytest.mark.slow
@pytest.mark.skipif(VERILATOR is None, reason="Verilator not installed (optional: apt-get install verilator)")
def test_verilator_dpi_testbench(tmp_path):
    assert _verilator_run(tmp_path / "ok", "int4_int32_widen.v") == (20000, 0)
    checked, errors = _verilator_run(tmp_path / "wrong", "wrong/int4_int32_widen_nosat.v")
    assert checked == 20000 and errors > 0
