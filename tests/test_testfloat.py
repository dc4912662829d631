"""The TestFloat front end: numsim passes Berkeley TestFloat's vectors (committed samples always;
testfloat_gen's full level-1 runs when it is on PATH), and numsim-written vectors read back."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from numsim import NumsimError, fpops
from numsim.cli import main
from numsim.formats import get_format
from numsim.reference import fpops as R
from numsim.verify import testfloat as tf

DATA = os.path.join(os.path.dirname(__file__), "data", "testfloat")
SAMPLES = sorted(f for f in os.listdir(DATA) if f.endswith(".txt"))


def _spec(name):
    m = re.fullmatch(r"(\w+)-r(\w+)-tininess(after|before)(-exact)?\.txt", name)
    return m.group(1), m.group(2), m.group(3), bool(m.group(4))


def test_samples_cover_every_operation_and_mode():
    ops = {_spec(f)[0] for f in SAMPLES}
    modes = {_spec(f)[1] for f in SAMPLES}
    assert {"f16_add", "f16_mul", "f16_mulAdd", "f32_add", "f32_mul", "f32_mulAdd", "f16_to_f32",
            "f32_to_f16"} <= ops
    assert modes == set(tf.TESTFLOAT_ROUNDING_OPTION.values())
    assert sum(len(open(os.path.join(DATA, f)).read().split("\n")) - 1 for f in SAMPLES) >= 400
    assert {"f32_to_i32", "f16_to_ui32", "i32_to_f16"} <= ops


@pytest.mark.parametrize("name", SAMPLES)
def test_committed_testfloat_gen_sample(name):
    op, mode, tin, exact = _spec(name)
    r = tf.check(os.path.join(DATA, name), op, mode, tininess=tin, exact=exact)
    assert r.total > 0
    assert r.ok, "\n".join(tf.format_failure(op, f) for f in r.failures)


@pytest.mark.skipif(tf.testfloat_gen_path() is None,
                    reason="testfloat_gen is not on PATH (build it with tools/testfloat.sh)")
def test_testfloat_gen_level1_every_shared_operation_and_mode():
    """Full level 1 for every shared operation, mode and tininess rule (mulAdd: its first 300,000 cases);
    conversions to integers with -exact too."""
    failures = []
    for op in tf.TESTFLOAT_SHARED_OPS:
        for exact in ((False, True) if re.search(r"_to_u?i32$", op) else (False,)):
            for tin in ("after", "before"):
                for mode in tf.TESTFLOAT_ROUNDING_OPTION:
                    lines = tf.run_testfloat_gen(op, 1, mode, tin, max_lines=300_000 if "mulAdd" in op else None,
                                                 exact=exact)
                    r = tf.check(lines, op, mode, tininess=tin, exact=exact)
                    assert r.total > 0
                    if not r.ok:
                        failures.append(r.summary() + " " + tf.format_failure(op, r.failures[0]))
    assert not failures, "\n".join(failures)


def test_parse_both_layouts_and_any_nan():
    fixed = tf.parse_lines("3C00 3C00 4000 00\n7C01 3C00 7E01 10\n", "f16_add")
    loose = tf.parse_lines(["3c00  3c00 4000 0", "7C01 3C00 7E01 10"], "f16_add")
    assert (fixed.expected == loose.expected).all() and (fixed.flags == loose.flags).all()
    assert tf.check(fixed).ok
    other_nan = tf.parse_lines("7C01 3C00 7E02 10\n", "f16_add")
    assert not tf.check(other_nan).ok
    assert tf.check(other_nan, exact_nans=False).ok


@pytest.mark.parametrize("text, arg", [
    ("3C00 3C00 4000\n", "lines"),
    ("3C00 3C00 40G0 00\n", "lines"),
    ("3C00 3C00 14000 00\n", "lines"),
    ("3C00 3C00 4000 40\n", "lines"),
])
def test_bad_lines_name_the_argument(text, arg):
    with pytest.raises(NumsimError, match=rf"^{arg}\b"):
        tf.parse_lines(text, "f16_add")


@pytest.mark.parametrize("op", ["f64_add", "f16_sqrt", "int8_add", "i32_to_int8", "f16_to_i64", 3])
def test_bad_function_names(op):
    with pytest.raises(NumsimError, match=r"^op\b"):
        tf.parse_function(op)


def test_function_names():
    assert tf.parse_function("f16_mulAdd").kind == "fma"
    fn = tf.parse_function("fp8_e5m2_to_f16")
    assert fn.kind == "convert" and fn.in_fmt == get_format("fp8_e5m2") and fn.out_fmt == get_format("fp16")
    assert tf.testfloat_name("fp16") == "f16" and tf.testfloat_name("fp8_e4m3fn") == "fp8_e4m3fn"


def test_operand_patterns_hold_testfloat_corners():
    f16 = tf.operand_codes("fp16", 1)
    for code in (0x0000, 0x0001, 0x03FF, 0x03FE, 0x0400, 0x3C00, 0x7BFF, 0x7C00, 0x7C01, 0x7FFF, 0xFC00):
        assert code in f16
    assert len(tf.operand_codes("fp16", 2)) > len(f16)
    assert (tf.operand_codes("fp8_e4m3fn", 2) == np.arange(256)).all()
    assert set(tf.operand_codes("fp4r4", 1)) == set(range(16))


@pytest.mark.parametrize("fmt, op, level", [("fp8_e4m3fn", "add", 1), ("fp8_e5m2", "mulAdd", 1),
                                            ("fp6_e3m2", "div", 2), ("fp4_e2m1", "mul", 2), ("bf16", "mulAdd", 1),
                                            ("fp4r4", "add", 2)])
def test_generated_vectors_read_back_and_match_the_reference(fmt, op, level):
    name = f"{tf.testfloat_name(fmt)}_{op}"
    mode = "toward_neg"
    v = tf.generate(name, level, mode, max_cases=200_000)
    text = tf.format_lines(v)
    back = tf.parse_lines(text, name)
    assert len(back) == len(v) and (back.expected == v.expected).all() and (back.flags == v.flags).all()
    assert tf.check(back, rounding=mode).ok
    f = get_format(fmt)
    env = R.Env(mode)
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(v), 150):
        ops = [int(o[i]) for o in v.operands]
        ref = R.fma(*ops, f, env) if op == "mulAdd" else getattr(R, op)(*ops, f, env)
        assert (int(v.expected[i]), int(v.flags[i])) == ref, (name, [hex(o) for o in ops])


def test_generated_conversion_vectors():
    v = tf.generate("f16_to_fp8_e4m3fn", 2, "nearest_even")
    assert len(v) == len(tf.operand_codes("fp16", 2))
    z, f = fpops.convert(v.operands[0], "fp16", "fp8_e4m3fn")
    assert (z == v.expected).all() and (f == v.flags).all()


def test_cli_check_gen_and_errors(tmp_path, capsys):
    sample = os.path.join(DATA, "f16_mulAdd-rmax-tininessafter.txt")
    assert main(["testfloat", "check", sample, "--op", "f16_mulAdd", "--rounding", "max"]) == 0
    assert "70/70 passed" in capsys.readouterr().out
    # the wrong mode fails and shows the lines
    assert main(["testfloat", "check", sample, "--op", "f16_mulAdd", "--rounding", "rne", "--show", "2"]) == 1
    assert "expected" in capsys.readouterr().out
    out = tmp_path / "e4m3.txt"
    assert main(["testfloat", "gen", "--format", "fp8_e4m3fn", "--op", "add", "--level", "1", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == len(tf.operand_codes("fp8_e4m3fn", 1)) ** 2 and re.fullmatch(r"[0-9A-F]{2}( [0-9A-F]{2}){3}",
                                                                                      lines[0])
    assert main(["testfloat", "check", str(out), "--op", "fp8_e4m3fn_add", "--rounding", "rne"]) == 0
    capsys.readouterr()
    assert main(["testfloat", "gen", "--format", "bf16", "--op", "to_fp8_e5m2", "--rounding", "rtz"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(tf.operand_codes("bf16", 1))
    assert main(["testfloat", "check", str(tmp_path / "missing.txt"), "--op", "f16_add"]) == 2
    assert "file:" in capsys.readouterr().err
    assert main(["testfloat", "check", sample, "--op", "f16_mulAdd", "--rounding", "sideways"]) == 2


def test_cli_as_a_process(tmp_path):
    import numsim as tested

    sample = os.path.join(DATA, "f32_to_f16-rminMag-tininessafter.txt")
    # the numsim under test (installed, or a built checkout), never a clone's unbuilt source tree
    root = os.path.dirname(os.path.dirname(os.path.abspath(tested.__file__)))
    p = subprocess.run([sys.executable, "-m", "numsim", "testfloat", "check", sample, "--op", "f32_to_f16",
                        "--rounding", "rtz"], capture_output=True, text=True, cwd=str(tmp_path),
                       env=dict(os.environ, PYTHONPATH=root))
    assert p.returncode == 0, p.stderr
    assert "40/40 passed" in p.stdout
