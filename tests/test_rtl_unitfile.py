"""TOML unit files (numsim.rtl.unitfile): `numsim vectors --unit-file`, the generic runner
(examples/rtl/run.py with --unit-file / --rtl --top) and its generic testbenches, with no Python written."""
import os
import subprocess
import sys

import numpy as np
import pytest

import numsim

from numsim.cli import main as cli
from numsim.errors import NumsimError
from numsim.rtl import read, replay
from numsim.rtl.sim import cocotb_available, icarus_available
from numsim.rtl.unitfile import read_unit_file
from numsim.units import get_unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNITS = os.path.join(ROOT, "examples", "rtl", "units")
RUN = os.path.join(ROOT, "examples", "rtl", "run.py")
INT8, FP8 = os.path.join(UNITS, "int8_mac.toml"), os.path.join(UNITS, "fp8_e5m2_fp16_rtz.toml")
needs_icarus = pytest.mark.skipif(not icarus_available(), reason="needs Icarus Verilog (iverilog, vvp)")


def test_example_files_are_the_units_they_say():
    u8, info = read_unit_file(INT8)
    assert u8 == get_unit("int4_int32", name="int8_mac", a_fmt="int8", b_fmt="int8", widen_overflow="saturate")
    assert info["rtl"]["top"] == "int8_mac" and os.path.exists(info["rtl"]["sources"][0])
    uf, _ = read_unit_file(FP8)
    assert uf == get_unit("fp8_fp16", name="fp8_e5m2_fp16_rtz", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2",
                          acc_rounding="toward_zero", order="sequential")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 0x7B, 40), rng.integers(0, 0x7B, 40)        # finite positive e5m2 codes
    assert uf.dot(a, b).code == get_unit(uf, name="x").dot(a, b).code


@pytest.mark.parametrize("text, where", [
    ('name = "u"\nkind = "int_mac"\n[formats]\nq = "int8"\n', "[formats] q"),
    ('name = "u"\nkind = "int_mac"\n[policies]\nacc_overflw = "wrap"\n', "acc_overflw"),
    ('name = "u"\nkind = "nope"\n', "kind"),
    ('name = "u"\nkind = "int_mac"\npreset = "int4_int32"\n', "either kind or preset"),
    ('name = "not an id"\nkind = "int_mac"\n', "name"),
    ('name = "u"\nkind = "int_mac"\ncolour = 1\n', "colour"),
    ('name = "u"\nkind = "int_mac"\n[formats\n', "not valid TOML"),
])
def test_bad_unit_files_name_the_key(tmp_path, text, where):
    p = tmp_path / "u.toml"
    p.write_text(text)
    with pytest.raises(NumsimError, match="--unit-file u.toml") as e:
        read_unit_file(str(p))
    assert where in str(e.value)


def test_preset_based_unit_file(tmp_path):
    p = tmp_path / "odd.toml"
    p.write_text('name = "odd4"\npreset = "int4_fp4r4_fp16"\n[policies]\nphase = "odd"\n')
    u, _ = read_unit_file(str(p))
    assert u == get_unit("int4_fp4r4_fp16", name="odd4", phase="odd")


@pytest.mark.parametrize("path", [INT8, FP8])
def test_numsim_vectors_unit_file(tmp_path, capsys, path):
    assert cli(["vectors", "--unit-file", path, "--count", "300", "--out", str(tmp_path)]) == 0
    unit = read_unit_file(path)[0]
    vs = read(str(tmp_path / f"{unit.name}.json"), unit=unit)
    assert replay(vs) == []             # the expected outputs are the model's, cycle by cycle
    names = [f["name"] for f in vs.layout.describe()]
    assert "align_shift" not in names   # neither unit has a shift port


def test_vectors_needs_exactly_one_unit(tmp_path, capsys):
    assert cli(["vectors", "--count", "3", "--out", str(tmp_path)]) == 2
    assert cli(["vectors", "int4_int32", "--unit-file", INT8, "--count", "3", "--out", str(tmp_path)]) == 2


def _run(*args):
    # the numsim under test (installed, or built in place), not the checkout's unbuilt source tree
    home = os.path.dirname(os.path.dirname(os.path.abspath(numsim.__file__)))
    env = dict(os.environ, PYTHONPATH=home + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, RUN, *args], capture_output=True, text=True, env=env, timeout=300)


@needs_icarus
def test_generic_runner_vectors_int8_from_toml():
    r = _run("vectors", "--unit-file", INT8, "--count", "1500")
    assert r.returncode == 0 and "PASS: vectors int8_mac" in r.stdout and " 0 mismatches" in r.stdout, r.stdout + r.stderr


@needs_icarus
def test_generic_runner_any_registered_unit_and_wrong_variant():
    rtl = os.path.join(ROOT, "examples", "rtl")
    ok = _run("vectors", "int4_int32", "--set", "widen_overflow=saturate", "--count", "800", "--top", "int4_int32_mac",
              "--rtl", os.path.join(rtl, "int4_int32_mac.v"), os.path.join(rtl, "int4_int32_widen.v"))
    assert ok.returncode == 0 and "PASS" in ok.stdout, ok.stdout + ok.stderr
    bad = _run("vectors", "int4_int32", "--set", "widen_overflow=saturate", "--count", "800", "--top", "int4_int32_mac",
               "--rtl", os.path.join(rtl, "int4_int32_mac.v"), os.path.join(rtl, "wrong", "int4_int32_widen_nosat.v"))
    assert bad.returncode == 1 and "FAIL" in bad.stdout and "MISMATCH" in bad.stdout


def test_generic_runner_without_rtl_says_so():
    r = _run("vectors", "--unit-file", FP8)
    assert r.returncode != 0 and "no RTL for unit fp8_e5m2_fp16_rtz" in r.stderr


@needs_icarus
@pytest.mark.skipif(not cocotb_available(), reason="needs cocotb >= 2.0")
def test_generic_runner_cocotb_int8_from_toml():
    r = _run("cocotb", "--unit-file", INT8, "--cycles", "800")
    assert r.returncode == 0 and "PASS: cocotb int8_mac: 1 cocotb tests, 0 failed" in r.stdout, r.stdout + r.stderr


# ---- the generated DPI-C step (numsim vectors --dpi) ------------------------------------------------

import glob  # noqa: E402
import shutil  # noqa: E402

CC = shutil.which("gcc") or shutil.which("cc")
CXX = shutil.which("g++") or shutil.which("c++")


@pytest.mark.skipif(CC is None or CXX is None, reason="needs a C and a C++ compiler")
def test_generated_dpi_step_equals_the_model(tmp_path, capsys):
    """Both example units: `numsim vectors --unit-file ... --dpi` writes NAME_dpi.c; compiled as C++ (as
    Verilator compiles DPI sources) with numsim's csrc, its step equals Model.next_state on every
    valid cycle of the unit's own vectors."""
    from numsim.rtl import Model

    csrc = os.path.join(ROOT, "csrc")
    objs = []
    for c in sorted(glob.glob(os.path.join(csrc, "*.c"))):
        o = str(tmp_path / (os.path.basename(c) + ".o"))
        subprocess.run([CC, "-std=c11", "-O1", "-I", csrc, "-c", c, "-o", o], check=True, capture_output=True)
        objs.append(o)
    for path in (INT8, FP8):
        unit = read_unit_file(path)[0]
        out = tmp_path / unit.name
        assert cli(["vectors", "--unit-file", path, "--count", "400", "--out", str(out), "--dpi"]) == 0
        dpi = str(out / f"{unit.name}_dpi.c")
        driver = str(tmp_path / f"drv_{unit.name}.c")
        with open(driver, "w") as f:
            f.write("#include <stdio.h>\n#include <stdint.h>\n"
                    f"int32_t ns_dpi_{unit.name}_step(int32_t, int32_t, int32_t, int32_t, int32_t *);\n"
                    "int main(void) { long acc, a, b, s; int32_t st;\n"
                    "  while (scanf(\"%ld %ld %ld %ld\", &acc, &a, &b, &s) == 4) {\n"
                    f"    int32_t r = ns_dpi_{unit.name}_step((int32_t)acc, (int32_t)a, (int32_t)b, (int32_t)s, &st);\n"
                    "    printf(\"%ld %d\\n\", (long)(uint32_t)r, st); } return 0; }\n")
        exe = str(tmp_path / f"drv_{unit.name}")
        subprocess.run([CXX, "-x", "c++", "-std=c++17", "-Wall", "-Werror", "-I", csrc, "-c", dpi, "-o", exe + ".o"],
                       check=True, capture_output=True)
        subprocess.run([CC, "-std=c11", "-c", driver, "-o", exe + "_main.o"], check=True, capture_output=True)
        subprocess.run([CXX, *objs, exe + ".o", exe + "_main.o", "-o", exe, "-lm", "-lpthread"], check=True,
                       capture_output=True)
        vs = read(str(out / f"{unit.name}.json"), unit=unit)
        model = Model(unit)
        lines, want = [], []
        for r in vs.rows:
            if not r["valid"] or r["rst"]:
                continue
            acc = r["c"] if r["load"] else 0
            lines.append(f"{acc} {r['a']} {r['b']} 0")
            want.append(model.next_state(r["a"], r["b"], 1, 0, 0, state=acc))
        got = subprocess.run([exe], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True).stdout
        pairs = [tuple(int(x) for x in ln.split()) for ln in got.splitlines()]
        assert len(pairs) == len(want) > 100
        assert [p[1] for p in pairs] == [0] * len(pairs)
        assert [p[0] for p in pairs] == [w & 0xFFFFFFFF for w in want], unit.name
