"""TOML unit files (numsim.rtl.unitfile): `numsim vectors --unit-file`, the generic runner
(examples/rtl/run.py with --unit-file / --rtl --top) and its generic testbenches, with no Python written."""
import os
import subprocess
import sys

import numpy as np
import pytest

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
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
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
