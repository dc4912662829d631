"""Bad inputs, every command and public entry point (issue 21): the Python API raises a NumsimError
naming the argument; the CLI prints one line `numsim: error: ...` on stderr and exits with status 2,
never a traceback. Suspicious results (inf/NaN, saturation, overflow events) are never silent, and
files are never left half-written. docs/errors.md states the rules this file checks.

Most CLI cases run in-process through numsim.cli.main (the same handler as `python -m numsim`); a few
run as subprocesses (cwd=tmp_path, so the numsim under test is the one this interpreter imports) for
what only a process shows: the exit status, a traceback on stderr, a closed pipe.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import numsim
from numsim import NumsimError, get_unit
from numsim.cli import main

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "h100")
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(numsim.__file__)))
FEW = settings(derandomize=True, max_examples=15, deadline=None)


def _env():
    return dict(os.environ, PYTHONPATH=PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _numsim(args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "numsim", *args], capture_output=True, text=True, env=_env(),
                          cwd=cwd, timeout=300, **kw)


def _one_error_line(err):
    return err.count("\n") == 1 and err.startswith("numsim: error: ") and "Traceback" not in err


def _cli_error(capsys, argv, needle):
    """Run the CLI in-process: status 2 and one stderr line that contains `needle`."""
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    assert _one_error_line(err), (argv, err)
    assert needle in err, (argv, err)
    return err


# ---- files the CLI cases read ----------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    p = {}
    p["toml_bad"] = tmp_path / "bad.toml"
    p["toml_bad"].write_text("not = [toml")
    p["npz_bad"] = tmp_path / "bad.npz"
    p["npz_bad"].write_bytes(b"PK\x03\x04 truncated zip")
    p["npz_keys"] = tmp_path / "keys.npz"
    np.savez(p["npz_keys"], X=np.zeros(2))
    p["sweep_npz_bad"] = tmp_path / "sweep_npz_bad.toml"
    p["sweep_npz_bad"].write_text('[sweep]\nunit = "fp8_fp16"\n[grid]\nchunk = [4]\n'
                                  '[[workload]]\nkind = "npz"\npath = "bad.npz"\na = "x"\nb = "w"\n')
    p["sweep_metric"] = tmp_path / "sweep_metric.toml"
    p["sweep_metric"].write_text('[sweep]\nunit = "fp8_fp16"\n[grid]\nchunk = [4]\n'
                                 '[[workload]]\nkind = "random"\nm = 4\nk = 4\nn = 4\n[report]\nmetric = ["nope"]\n')
    return p


# ---- the CLI, in-process: every command, each kind of bad input -------------------------------

CLI_CASES = [
    # (argv, what the one line must name); FILES:key is replaced by that fixture file
    (["demo", "--size", "0"], "--size"),
    (["demo", "--size", "100000"], "--size"),
    (["demo", "--threads", "0"], "--threads"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--units", "nope"], "unknown unit preset"),
    (["demo", "--units", "int4_fp4r4_fp16:weird"], "phase"),
    (["demo", "--size", "x"], "--size"),
    (["formats", "nope"], "unknown format name"),
    (["formats", "fp16", "--limit", "-1"], "--limit"),
    (["formats", "int4", "--phase", "odd"], "phase"),
    (["formats", "fp16", "--phase", "odd"], "phase"),
    (["formats", "fp16", "--phase", "sideways"], "--phase"),
    (["unit", "nope"], "unknown unit preset"),
    (["units", "nope"], "unknown unit preset"),
    (["unit", "int4_int32", "--length", "0"], "--length"),
    (["unit", "int4_int32", "--seed", "-1"], "--seed"),
    (["unit", "int4_int32", "--set", "novalue"], "--set"),
    (["unit", "fp8_fp16", "--set", "chunk=-1"], "chunk"),
    (["unit", "fp8_fp16", "--set", "nope=1"], "--set"),
    (["vectors", "int4_int32", "--count", "0", "--out", "OUT"], "--count"),
    (["vectors", "int4_int32", "--count", "99999999999", "--out", "OUT"], "count"),
    (["vectors", "int4_int32", "--count", "5", "--out", "OUT", "--kinds", "nope"], "kinds"),
    (["vectors", "int4_int32", "--count", "5", "--out", "OUT", "--name", "a/b"], "name"),
    (["vectors", "int4_int32", "--count", "5", "--out", "OUT", "--seed", "-1"], "seed"),
    (["vectors", "int4_int32", "--count", "5", "--out", "/proc/no/such/dir"], "out"),
    (["vectors", "int4_int32"], "--count"),
    (["sweep", "nope.toml", "--out", "OUT"], "FILE"),
    (["sweep", "FILES:toml_bad", "--out", "OUT"], "not valid TOML"),
    (["sweep", "FILES:sweep_npz_bad", "--out", "OUT"], "bad.npz"),
    (["sweep", "FILES:sweep_metric", "--out", "OUT"], "report.metric"),
    (["sweep", "FILES:sweep_metric", "--out", "OUT", "--workers", "0"], "--workers"),
    (["sweep", "FILES:sweep_metric", "--out", "OUT", "--limit", "-1"], "--limit"),
    (["verify"], "WHAT"),
    (["verify", "fp16", "--modes", "nope"], "--modes"),
    (["verify", "fp16", "--chunk-a", "3", "--state", ""], "chunk_a"),
    (["verify", "fp16", "--workers", "0", "--state", "", "--max-chunks", "1"], "workers"),
    (["verify", "fp16", "--sample", "--modes", "toward_zero", "--mpfr", "-1"], "--mpfr"),
    (["verify", "units", "--fp8-acc", "-1"], "fp8_acc"),
    (["verify-hardware", "nope.npz"], "recording"),
    (["verify-hardware", "FILES:npz_bad"], "recording"),
    (["verify-hardware", "FILES:npz_keys"], "recording"),
    (["verify-hardware", "FILES:toml_bad"], "recording"),
    (["verify-hardware", os.path.join(SAMPLE, "tc_h100_f16_sample.npz"), "--max-tiles", "0"], "--max-tiles"),
    (["verify-hardware", os.path.join(SAMPLE, "tc_h100_f16_sample.npz"), "--unit", "nope"], "unknown unit preset"),
    # issue 21: a unit of another operand format than the recording's is refused before any replay
    (["verify-hardware", os.path.join(SAMPLE, "tc_h100_f16_sample.npz"), "--unit", "h100_hmma_bf16"], "fp16"),
    (["verify-hardware", os.path.join(SAMPLE, "tc_h100_f16_sample.npz"), "--unit", "int4_int32"], "fp16"),
    (["verify-hardware", os.path.join(SAMPLE, "tc_h100_bf16_sample.npz"), "--unit", "h100_hmma_f16"], "bf16"),
    (["nope"], "COMMAND"),
    ([], "COMMAND"),
]


@pytest.mark.parametrize("argv, needle", CLI_CASES, ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_cli_bad_input_is_one_line_and_status_2(argv, needle, files, tmp_path, capsys):
    argv = [str(files[a[6:]]) if a.startswith("FILES:") else str(tmp_path / "out") if a == "OUT" else a
            for a in argv]
    _cli_error(capsys, argv, needle)
    assert not (tmp_path / "out").exists() or "sweep" in argv    # nothing written for a refused command


@FEW
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_:-", min_size=1, max_size=12))
def test_cli_any_unknown_name_is_one_line(name):
    """Random names as a format, a unit preset and a demo unit: a known name works, any other is one line."""
    import contextlib
    import io

    from numsim.formats import REGISTRY
    from numsim.units import unit_names

    for argv, known in ((["formats", name, "--limit", "1"], name in REGISTRY),
                        (["unit", name, "--length", "1"], name in unit_names())):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
        if known:
            assert rc == 0, err.getvalue()
        else:
            assert rc == 2 and _one_error_line(err.getvalue()), (argv, err.getvalue())


@FEW
@given(st.integers(min_value=-2**40, max_value=0) | st.integers(min_value=4097, max_value=2**40))
def test_cli_out_of_range_sizes(n):
    import contextlib
    import io

    for argv in (["demo", "--size", str(n)], ["unit", "int4_int32", "--length", str(n)]):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(argv)
        assert rc == 2 and _one_error_line(err.getvalue()), (argv, err.getvalue())


# ---- the CLI as a process: exit status, no traceback, closed pipes ----------------------------

def test_cli_process_bad_input_and_closed_pipe(tmp_path):
    # issue 21: `numsim demo --size 0` printed a ValueError traceback
    r = _numsim(["demo", "--size", "0"], tmp_path)
    assert r.returncode == 2 and _one_error_line(r.stderr) and "--size" in r.stderr, r.stderr
    # an argparse error: one line too (not the usage block)
    r = _numsim(["formats", "--limit", "x"], tmp_path)
    assert r.returncode == 2 and _one_error_line(r.stderr) and "--limit" in r.stderr, r.stderr
    # issue 21: `numsim formats fp16 | head` printed a BrokenPipeError traceback
    p = subprocess.Popen([sys.executable, "-m", "numsim", "formats", "fp16", "--limit", "65536"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path)
    first = p.stdout.readline()
    p.stdout.close()                        # the reader goes away, as `head` does
    err = p.stderr.read().decode()
    rc = p.wait(timeout=300)
    p.stderr.close()
    assert first.startswith(b"fp16") and err == "" and rc == 141, (rc, err)


def test_cli_bug_keeps_traceback_and_says_so(tmp_path, capsys, monkeypatch):
    """An unexpected exception is a bug: the traceback stays, one line says so, status 3."""
    import numsim.commands.formats as cmd

    def boom(args):
        raise KeyError("deliberate")

    monkeypatch.setattr(cmd, "run", boom)
    rc = main(["formats"])
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" in err and "bug in numsim" in err.splitlines()[-1]


def test_units_command_lists_presets(capsys):
    """docs/sweeps.md says `numsim units`: it lists every preset with a one-line description."""
    assert main(["units"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(numsim.unit_names()) and all(len(line.split(None, 1)) == 2 for line in out)


# ---- the Python API: NumsimError naming the argument --------------------------------------------

U = get_unit("int4_int32")
FU = get_unit("fp8_fp16")
A4 = np.zeros((2, 3), np.uint8)
B4 = np.zeros((3, 2), np.uint8)
X4 = np.zeros((1, 1, 4, 4), np.uint8)
W4 = np.zeros((1, 1, 3, 3), np.uint8)


def _api_cases():
    from numsim import FloatFormat, IntFormat, QTensor, conv2d, decode, encode, get_format, matmul
    import numsim.quant as Q
    import numsim.rtl as R
    import numsim.sweep as S
    import numsim.verify as V

    W = [{"kind": "random", "m": 4, "k": 4, "n": 4}]

    def sweep(**over):
        spec = {"sweep": {"unit": "fp8_fp16"}, "grid": {"chunk": [4]}, "workload": W}
        spec.update(over)
        return lambda: S.plan_sweep(spec)

    return [
        # formats
        ("get_format(None)", lambda: get_format(None), "fmt"),
        ("get_format('fp17')", lambda: get_format("fp17"), "fmt"),
        ("IntFormat(0)", lambda: IntFormat(0), "bits"),
        ("IntFormat('4')", lambda: IntFormat("4"), "bits"),
        ("IntFormat(64)", lambda: IntFormat(64), "bits"),
        ("IntFormat(4, signed='no')", lambda: IntFormat(4, signed="no"), "signed"),
        ("IntFormat(4).with_phase('odd')", lambda: IntFormat(4).with_phase("odd"), "phase"),   # issue 21
        ("FloatFormat(exp_bits=0)", lambda: FloatFormat(exp_bits=0, man_bits=2, bias=1), "exp_bits"),
        ("FloatFormat(exp_bits=1.5)", lambda: FloatFormat(exp_bits=1.5, man_bits=2, bias=1), "exp_bits"),
        ("FloatFormat(man_bits=40)", lambda: FloatFormat(exp_bits=8, man_bits=40, bias=127), "bits"),
        ("FloatFormat(specials='x')", lambda: FloatFormat(exp_bits=4, man_bits=3, bias=7, specials="x"), "specials"),
        ("FloatFormat(subnormals='yes')", lambda: FloatFormat(exp_bits=4, man_bits=3, bias=7, subnormals="yes"),
         "subnormals"),
        ("FloatFormat(radix=2.0)", lambda: FloatFormat(exp_bits=4, man_bits=3, bias=7, radix=2.0), "radix"),
        ("fp16.with_phase('odd')", lambda: get_format("fp16").with_phase("odd"), "phase"),
        ("fp16.exact_value(-1)", lambda: get_format("fp16").exact_value(-1), "code"),
        ("fp16.exact_value(1.5)", lambda: get_format("fp16").exact_value(1.5), "code"),
        # encode / decode
        ("encode('x')", lambda: encode("x", "fp16"), "values"),
        ("encode(complex)", lambda: encode(np.array([1j]), "fp16"), "values"),
        ("encode(ragged)", lambda: encode([[1], [1, 2]], "fp16"), "values"),
        ("encode(nan -> int8)", lambda: encode(np.array([np.nan]), "int8"), "NaN"),
        ("encode(inf -> int8)", lambda: encode(np.array([np.inf]), "int8"), "values"),
        ("encode(overflow='x')", lambda: encode(np.ones(1), "fp16", overflow="x"), "overflow"),
        ("encode(rounding='x')", lambda: encode(np.ones(1), "fp16", rounding="x"), "rounding"),
        ("encode(nan='bad')", lambda: encode(np.ones(1), "fp16", nan="bad"), "nan"),
        ("decode(-1)", lambda: decode(np.array([-1]), "fp16"), "codes"),
        ("decode(1.5)", lambda: decode(np.array([1.5]), "fp16"), "codes"),
        ("decode(2**20)", lambda: decode(np.array([2**20]), "fp16"), "codes"),
        ("decode('x')", lambda: decode("x", "fp16"), "codes"),
        # QTensor
        ("QTensor.quantize(nan)", lambda: QTensor.quantize(np.array([np.nan, 1.0]), "int4", scale=1.0), "NaN"),
        ("QTensor.quantize(scale=0)", lambda: QTensor.quantize(np.ones(1), "int4", scale=0.0), "scale"),
        ("QTensor.quantize(scale=nan)", lambda: QTensor.quantize(np.ones(1), "int4", scale=float("nan")), "scale"),
        ("QTensor.quantize(scale=-1)", lambda: QTensor.quantize(np.ones(1), "int4", scale=-1.0), "scale"),
        ("QTensor.quantize(axis=5)", lambda: QTensor.quantize(np.ones((2, 2)), "int4", scale=np.ones(2), axis=5),
         "axis"),
        ("QTensor.quantize(scale shape)", lambda: QTensor.quantize(np.ones((2, 2)), "int4", scale=np.ones(3), axis=0),
         "scale"),
        ("QTensor(codes out of range)", lambda: QTensor(np.array([99]), "int4", 1.0), "codes"),
        ("QTensor(float codes)", lambda: QTensor(np.array([1.5]), "int4", 1.0), "codes"),
        ("QTensor(fmt)", lambda: QTensor(np.array([1]), "int99", 1.0), "fmt"),
        # units and their overrides
        ("get_unit('nope')", lambda: get_unit("nope"), "unit"),
        ("get_unit(None)", lambda: get_unit(None), "unit"),
        ("get_unit(nope=1)", lambda: get_unit("int4_int32", nope=1), "nope"),
        ("get_unit(chunk=-1)", lambda: get_unit("fp8_fp16", chunk=-1), "chunk"),
        ("get_unit(chunk='a')", lambda: get_unit("fp8_fp16", chunk="a"), "chunk"),
        ("get_unit(chunk=1.5)", lambda: get_unit("fp8_fp16", chunk=1.5), "chunk"),
        ("get_unit(chunk=2**40)", lambda: get_unit("fp8_fp16", chunk=2**40), "chunk"),
        ("get_unit(order='zigzag')", lambda: get_unit("fp8_fp16", order="zigzag"), "order"),
        ("get_unit(acc_fmt='int7x')", lambda: get_unit("fp8_fp16", acc_fmt="int7x"), "fmt"),
        ("get_unit(acc_bits=0)", lambda: get_unit("int4_int32", acc_bits=0), "acc_bits"),
        ("get_unit(phase='x')", lambda: get_unit("int4_fp4r4_fp16", phase="x"), "phase"),
        ("get_unit(k_step=0)", lambda: get_unit("fp8_fp16", k_step=0), "k_step"),
        ("get_unit(acc_rounding='x')", lambda: get_unit("fp8_fp16", acc_rounding="x"), "acc_rounding"),
        ("get_unit(overflow=) old name", lambda: get_unit("h100_hmma_f16", overflow="saturate"), "acc_overflow"),
        ("unit.dot(shapes)", lambda: U.dot(np.zeros(3, np.uint8), np.zeros(4, np.uint8)), "b"),
        ("unit.dot(codes)", lambda: U.dot(np.full(3, 99), np.zeros(3, np.uint8)), "a"),
        ("unit.gemm_codes(nthreads=999)", lambda: U.gemm_codes(A4, B4, nthreads=999), "nthreads"),
        # matmul / conv2d
        ("matmul(shapes)", lambda: matmul(A4, A4, U), "b"),
        ("matmul(float codes)", lambda: matmul(np.zeros((2, 3)), B4, U), "a"),
        ("matmul(codes out of range)", lambda: matmul(np.full((2, 3), 99, np.uint8), B4, U), "a"),
        ("matmul(unit='nope')", lambda: matmul(A4, B4, "nope"), "unit"),
        ("matmul(unit=3)", lambda: matmul(A4, B4, 3), "unit"),
        ("matmul(1-d)", lambda: matmul(np.zeros(3, np.uint8), B4, U), "a"),
        ("matmul(c shape)", lambda: matmul(A4, B4, U, c=np.zeros((3, 3))), "c"),
        ("matmul(nthreads=0)", lambda: matmul(A4, B4, U, nthreads=0), "nthreads"),
        ("matmul(nthreads='2')", lambda: matmul(A4, B4, U, nthreads="2"), "nthreads"),
        ("matmul(QTensor of int8 into int4 unit)",
         lambda: matmul(QTensor.quantize(np.ones((2, 3)), "int8", scale=1.0), B4, U), "a"),
        ("matmul(batch mismatch)", lambda: matmul(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3, 2), np.uint8), U),
         "batch"),
        ("conv2d(channels)", lambda: conv2d(X4, np.zeros((1, 2, 3, 3), np.uint8), U), "w"),
        ("conv2d(3-d x)", lambda: conv2d(np.zeros((1, 4, 4), np.uint8), W4, U), "x"),
        ("conv2d(stride=0)", lambda: conv2d(X4, W4, U, stride=0), "stride"),
        ("conv2d(padding=-1)", lambda: conv2d(X4, W4, U, padding=-1), "padding"),
        ("conv2d(kernel > input)", lambda: conv2d(np.zeros((1, 1, 2, 2), np.uint8), W4, U), "w"),
        # quantizers
        ("ptq(nan)", lambda: Q.ptq(np.array([np.nan, 1.0]), bits=4), "x"),
        ("ptq(bits=0)", lambda: Q.ptq(np.ones(3), bits=0), "bits"),
        ("ptq(bits='4')", lambda: Q.ptq(np.ones(3), bits="4"), "bits"),
        ("sawb_quantize(bits=99)", lambda: Q.sawb_quantize(np.ones(4), bits=99), "bits"),
        ("pact_quantize(alpha=-1)", lambda: Q.pact_quantize(np.ones(4), alpha=-1.0, bits=4), "alpha"),
        ("round_pow2(-1)", lambda: Q.round_pow2(-1.0), "x"),
        ("round_pow2(mode)", lambda: Q.round_pow2(1.0, "sideways"), "mode"),
        ("max_quantize(inf)", lambda: Q.max_quantize(np.array([np.inf, 1.0]), bits=4), "x"),
        # sweep specs
        ("plan_sweep([1])", lambda: S.plan_sweep([1]), "spec"),
        ("plan_sweep(no unit)", lambda: S.plan_sweep({}), "sweep.unit"),
        ("plan_sweep(unit 3)", sweep(sweep={"unit": 3}), "sweep.unit"),
        ("plan_sweep(unknown section)", sweep(sweeep={}), "sweeep"),
        ("plan_sweep(grid scalar)", sweep(grid={"chunk": 4}), "grid.chunk"),
        ("plan_sweep(grid empty)", sweep(grid={"chunk": []}), "grid.chunk"),
        ("plan_sweep(chunk 'x')", sweep(grid={"chunk": ["x"]}), "chunk"),
        ("plan_sweep(parameter)", sweep(grid={"nope": [1]}), "nope"),
        ("plan_sweep(m 0)", sweep(workload=[{"kind": "random", "m": 0, "k": 4, "n": 4}]), "m"),
        ("plan_sweep(m '4')", sweep(workload=[{"kind": "random", "m": "4", "k": 4, "n": 4}]), "m"),
        ("plan_sweep(huge)", sweep(workload=[{"kind": "random", "m": 10**9, "k": 10**9, "n": 4}]), "m/k/n"),
        ("plan_sweep(scale 'x')", sweep(workload=[{"kind": "random", "m": 4, "k": 4, "n": 4, "scale": "x"}]),
         "scale"),
        ("plan_sweep(dist)", sweep(workload=[{"kind": "random", "m": 4, "k": 4, "n": 4, "dist": "cauchy"}]), "dist"),
        ("plan_sweep(kind)", sweep(workload=[{"kind": "x"}]), "kind"),
        ("plan_sweep(npz missing)", sweep(workload=[{"kind": "npz", "path": "/no/such.npz"}]), "path"),
        ("plan_sweep(metric)", sweep(report={"metric": ["nope"]}), "report.metric"),     # issue 21
        ("plan_sweep(metric 3)", sweep(report={"metric": 3}), "report.metric"),
        ("plan_sweep(report.x)", sweep(report={"x": "nope"}), "report.x"),
        ("plan_sweep(quant.method)", sweep(quant={"method": "x"}), "method"),
        ("plan_sweep(numsim.quant.nope)", sweep(quant={"method": "numsim.quant.nope"}), "method"),
        ("plan_sweep(quant.scale)", sweep(quant={"method": "fixed", "scale": float("inf")}), "scale"),
        ("load_spec(missing)", lambda: S.load_spec("/no/such.toml"), "FILE"),
        ("run_sweep(out_dir a file)", lambda: S.run_sweep({"sweep": {"unit": "fp8_fp16"}, "grid": {"chunk": [4]},
                                                           "workload": W}, "/etc/passwd"), "out_dir"),
        ("run_sweep(workers=0)", lambda: S.run_sweep({"sweep": {"unit": "fp8_fp16"}, "grid": {"chunk": [4]},
                                                      "workload": W}, "/nonexistent", workers=0), "workers"),
        # rtl
        ("rtl.generate(count=0)", lambda: R.generate(U, count=0), "count"),
        ("rtl.generate(count=10**12)", lambda: R.generate(U, count=10**12), "count"),
        ("rtl.generate(count='5')", lambda: R.generate(U, count="5"), "count"),
        ("rtl.generate(unit)", lambda: R.generate("nope", count=5), "unit"),
        ("rtl.generate(kinds)", lambda: R.generate(U, count=5, kinds=("x",)), "kinds"),
        ("rtl.generate(seed=-1)", lambda: R.generate(U, count=5, seed=-1), "seed"),
        ("rtl.write(3)", lambda: R.write(3, "/tmp"), "vectors"),
        ("rtl.read(missing)", lambda: R.read("/no/such.json"), "path"),
        ("rtl.Model('nope')", lambda: R.Model("nope"), "unit"),
        # verify
        ("replay_recording(missing)", lambda: V.replay_recording("/no/such.npz"), "recording"),
        ("replay_recording(unit)", lambda: V.replay_recording(os.path.join(SAMPLE, "tc_h100_f16_sample.npz"),
                                                              unit="nope"), "unit"),
        ("sample_check(['bogus'])", lambda: V.sample_check(["bogus"]), "modes"),
        ("run_exhaustive(workers=0)", lambda: V.run_exhaustive(["nearest_even"], 0, None, 256, 1), "workers"),
        ("run_exhaustive(chunk_a=3)", lambda: V.run_exhaustive(["nearest_even"], 1, None, 3, 1), "chunk_a"),
        ("unit_checks(fp8_acc=-1)", lambda: V.unit_checks(full=False, fp8_acc=-1), "fp8_acc"),
        ("value_table('nope')", lambda: V.value_table("nope"), "fmt"),
    ]


API_CASES = _api_cases()


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input_raises_numsim_error_naming_it(case):
    _, fn, needle = case
    with pytest.raises(NumsimError) as ei:
        fn()
    assert needle.lower() in str(ei.value).lower(), str(ei.value)


# Found by this matrix in the first pass (issue 21's report): each raised a plain Python error, or
# nothing, instead of a NumsimError naming the argument (the second element says what it did).
def _found_elsewhere():
    from numsim import QTensor, conv2d
    import numsim.verify as V

    return [
        ("QTensor.quantize(scale='a') -> ValueError (numsim/qtensor.py)",
         lambda: QTensor.quantize(np.ones(1), "int4", scale="a")),
        ("QTensor.quantize(bogus=1) -> TypeError (numsim/qtensor.py)",
         lambda: QTensor.quantize(np.ones(1), "int4", scale=1.0, bogus=1)),
        ("conv2d(stride='a') -> ValueError (numsim/gemm.py)", lambda: conv2d(X4, W4, U, stride="a")),
        ("mpfr_sample(n=-1) -> ValueError (numsim/verify/exhaustive.py)",
         lambda: V.mpfr_sample(("nearest_even",), -1)),
        ("replay_recording(max_tiles_per_family=-1) accepted (numsim/verify/recordings.py)",
         lambda: V.replay_recording(os.path.join(SAMPLE, "tc_h100_f16_sample.npz"), max_tiles_per_family=-1)),
        ("replay_recording(truncated zip) -> BadZipFile (numsim/verify/recordings.py)",
         lambda: _truncated_zip_replay()),
        ("replay_recording(empty file) -> EOFError (numsim/verify/recordings.py)", lambda: _empty_file_replay()),
        ("replay_recording(unit of another format than the file's name) accepted (numsim/verify/recordings.py)",
         lambda: V.replay_recording(os.path.join(SAMPLE, "tc_h100_f16_sample.npz"), unit="h100_hmma_bf16")),
        ("run_exhaustive(state_path unwritable) -> OSError (numsim/verify/exhaustive.py)",
         lambda: V.run_exhaustive(["nearest_even"], 1, "/proc/numsim_no_such/state.json", 4096, 0)),
        ("encode(rounding='stochastic', seed=-1) accepted (numsim/codec.py)",
         lambda: numsim.encode(np.ones(2), "fp8_e4m3fn", rounding="stochastic", seed=-1)),
        ("encode(seed=2**64) accepted (numsim/codec.py)",
         lambda: numsim.encode(np.ones(2), "fp8_e4m3fn", rounding="stochastic", seed=2**64)),
        ("sample_check('nearest_even') accepted (numsim/verify/oracles.py)", lambda: V.sample_check("nearest_even")),
        ("matmul(warn='yes') accepted (numsim/gemm.py)", lambda: numsim.matmul(A4, B4, U, warn="yes")),
    ]


def _truncated_zip_replay():
    import tempfile

    import numsim.verify as V

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t.npz")
        with open(p, "wb") as fh:
            fh.write(b"PK\x03\x04 truncated zip")
        V.replay_recording(p)


def _empty_file_replay():
    import tempfile

    import numsim.verify as V

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t.npz")
        open(p, "wb").close()
        V.replay_recording(p)


FOUND = _found_elsewhere()


# the argument each case's message names first
_FOUND_ARG = {"QTensor.quantize(scale='a')": "scale", "QTensor.quantize(bogus=1)": "bogus",
              "conv2d(stride='a')": "stride",
              "mpfr_sample(n=-1)": "n_random", "replay_recording(max_tiles_per_family=-1)": "max_tiles_per_family",
              "replay_recording(truncated zip)": "recording", "replay_recording(empty file)": "recording",
              "replay_recording(unit of another format than the file's name)": "unit",
              "run_exhaustive(state_path unwritable)": "state_path", "encode(rounding='stochastic', seed=-1)": "seed",
              "encode(seed=2**64)": "seed", "sample_check('nearest_even')": "modes", "matmul(warn='yes')": "warn"}


def _found_id(case):
    return case[0].split(" ->")[0].split(" accepted")[0]


@pytest.mark.parametrize("case", FOUND, ids=[_found_id(c) for c in FOUND])
def test_api_bad_input_found_elsewhere(case):
    if case[0].startswith("mpfr_sample"):
        pytest.importorskip("gmpy2")
    with pytest.raises(NumsimError) as ei:
        case[1]()
    assert str(ei.value).startswith(_FOUND_ARG[_found_id(case)] + ":"), str(ei.value)


@FEW
@given(st.one_of(st.booleans(), st.floats(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                 st.integers(max_value=0), st.integers(min_value=65)))
def test_api_bad_nthreads(n):
    """Anything but None or an integer in [1, 64] (docs/architecture.md's thread rule)."""
    from numsim import matmul

    with pytest.raises(NumsimError, match="nthreads"):
        matmul(A4, B4, U, nthreads=n)


@FEW
@given(st.binary(min_size=0, max_size=64))
def test_api_malformed_files(tmp_path_factory, blob):
    """Random bytes as a TOML sweep, an npz recording, a vectors manifest and a hex file."""
    import numsim.rtl as R
    import numsim.sweep as S

    d = tmp_path_factory.mktemp("blob")
    for name in ("s.toml", "r.npz", "v.json"):
        (d / name).write_bytes(blob)
    try:
        spec = S.load_spec(d / "s.toml")
    except NumsimError:
        pass
    else:
        with pytest.raises(NumsimError):
            S.plan_sweep(spec)
    # the recording through the command (numsim.verify's own answer to a truncated zip: FOUND above)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["verify-hardware", str(d / "r.npz")]) == 2, err.getvalue()
    assert _one_error_line(err.getvalue()) and "recording" in err.getvalue()
    with pytest.raises(NumsimError):
        R.read(d / "v.json")
    # a real manifest over a hex file of random bytes
    vs = R.generate(U, count=3, seed=0, kinds=("random",))
    paths = R.write(vs, d / "vec")
    with open(paths["hex"], "wb") as fh:
        fh.write(blob + b"\nzz\n")
    with pytest.raises(NumsimError):
        R.read(paths["json"])


def test_rtl_read_incomplete_manifest(tmp_path):
    import numsim.rtl as R

    vs = R.generate(U, count=3, seed=0, kinds=("random",))
    paths = R.write(vs, tmp_path)
    man = json.loads(open(paths["json"]).read())
    for key in ("unit", "fields", "files", "count"):
        broken = {k: v for k, v in man.items() if k != key}
        with open(paths["json"], "w") as fh:
            json.dump(broken, fh)
        with pytest.raises(NumsimError, match="path"):
            R.read(paths["json"])
    with open(paths["json"], "w") as fh:
        json.dump([1, 2], fh)
    with pytest.raises(NumsimError, match="path"):
        R.read(paths["json"])


# ---- suspicious results are never silent ----------------------------------------------------------

FP8_SWEEP = {"sweep": {"name": "fp8", "unit": "fp8_fp16"}, "grid": {"chunk": [4, 8]}, "quant": {"method": "max"},
             "workload": [{"kind": "random", "m": 8, "k": 8, "n": 8}]}


def test_sweep_max_quantizer_overflow_is_flagged(tmp_path):
    """issue 21: fp8_fp16 with quant.method = 'max' (the default) leaves most outputs inf: a
    warning with the count and a hint, the rows flagged, the summary says so (never SQNR -inf in silence)."""
    from numsim.sweep import run_sweep

    res = run_sweep(FP8_SWEEP, tmp_path, scheduler="sync")
    assert len(res.warnings) == 1 and "\n" not in res.warnings[0]
    w = res.warnings[0]
    assert "2 of 2 variants" in w and "43 of 64 outputs are inf/NaN" in w and "hint" in w and "quant.method" in w
    for r in res.rows:
        assert r["nonfinite"] > 0 and "nonfinite" in r["flag"] and r["sqnr_db"] == float("-inf")
    assert "## Warnings" in (tmp_path / "summary.md").read_text() and "'auto'" in w
    assert ",flag," in (tmp_path / "results.csv").read_text().splitlines()[0]
    # a sweep whose outputs are all finite says nothing
    ok = dict(FP8_SWEEP, quant={"method": "fixed", "scale": 1.0})
    res = run_sweep(ok, tmp_path / "ok", scheduler="sync")
    assert res.warnings == [] and all(r["flag"] == "" and r["nonfinite"] == 0 for r in res.rows)


def test_sweep_cli_warns_and_strict_fails(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text('[sweep]\nname = "fp8"\nunit = "fp8_fp16"\n[grid]\nchunk = [4, 8]\n[quant]\nmethod = "max"\n'
                 '[[workload]]\nkind = "random"\nm = 8\nk = 8\nn = 8\n')
    assert main(["sweep", str(p), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("numsim: warning: sweep fp8:") and "inf/NaN" in err
    assert main(["sweep", str(p), "--out", str(tmp_path / "o"), "--no-progress", "--strict"]) == 1


def test_suspicious_counts_and_text():
    from numsim.formats import get_format
    from numsim.events import suspicious_counts, suspicious_text

    f16 = get_format("fp16")
    c = suspicious_counts(np.array([1.0, np.inf, np.nan, 65504.0, -65504.0]), f16, overflow_count=3)
    assert c == {"outputs": 5, "nonfinite": 2, "saturated": 4, "overflows": 3}
    assert suspicious_text(c) == ("2 of 5 outputs are inf/NaN; 2 of 5 outputs at the accumulator's range ends; "
                                  "3 overflow events")
    i32 = get_format("int32")
    assert suspicious_text(suspicious_counts(np.array([1, 2]), i32)) is None
    assert "1 of 2" in suspicious_text(suspicious_counts(np.array([2**31 - 1, 2]), i32))


def test_vectors_cli_warns_with_counts_by_section(tmp_path, capsys):
    assert main(["vectors", "fp8_fp16", "--count", "50", "--out", str(tmp_path), "--kinds", "corner"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("numsim: warning: vectors fp8_fp16:") and "corner" in err


def test_demo_warns_on_suspicious_outputs(capsys, monkeypatch):
    """The demo's float operands are scaled to keep the accumulator finite; a unit whose outputs overflow
    anyway (here: operands scaled onto the format's largest value) gets one warning line with counts."""
    import numsim.commands.demo as demo

    real = demo._operands

    def full_range(unit_name, unit, n, rng):
        from numsim import QTensor

        qa, qb = real(unit_name, unit, n, rng)
        big = np.full(qa.codes.shape, 0x7E, qa.codes.dtype)         # e4m3 448
        return QTensor(big, unit.a_fmt, 1.0), QTensor(big.T.copy(), unit.b_fmt, 1.0)

    monkeypatch.setattr(demo, "_operands", full_range)
    assert main(["demo", "--size", "8", "--units", "fp8_fp16"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("numsim: warning: demo fp8_fp16:") and "64 of 64 outputs" in err


# ---- files are never half-written --------------------------------------------------------------------

def test_vector_files_are_atomic(tmp_path, monkeypatch):
    import numsim.rtl.vectors as V

    vs = V.generate(U, count=3, seed=0, kinds=("random",))
    first = V.write(vs, tmp_path)
    before = {k: open(p).read() for k, p in first.items()}

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    real_replace = os.replace
    calls = []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    vs2 = V.generate(U, count=4, seed=1, kinds=("random",))
    monkeypatch.setattr(V.os, "replace", replace_then_fail)
    with pytest.raises(NumsimError, match="out"):
        V.write(vs2, tmp_path)
    monkeypatch.setattr(V.os, "replace", real_replace)
    # the manifest is renamed last: the old one still describes a complete set; no temporary files remain
    assert open(first["json"]).read() == before["json"]
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in first.values())


def test_sweep_reports_are_atomic(tmp_path, monkeypatch):
    import csv

    from numsim.sweep import run_sweep

    ok = dict(FP8_SWEEP, quant={"method": "fixed", "scale": 1.0})
    run_sweep(ok, tmp_path, scheduler="sync")
    before = (tmp_path / "results.csv").read_text()
    real = csv.DictWriter.writerow
    n = [0]

    def fail_on_second_row(self, row):
        n[0] += 1
        if n[0] == 2:
            raise OSError(28, "No space left on device")
        return real(self, row)

    monkeypatch.setattr(csv.DictWriter, "writerow", fail_on_second_row)
    with pytest.raises(OSError):
        run_sweep(ok, tmp_path, scheduler="sync")
    assert (tmp_path / "results.csv").read_text() == before
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_rtl_example_removes_its_work_dir(tmp_path, monkeypatch, capsys):
    """issue 21: examples/rtl/run.py left its /tmp work directories behind."""
    import importlib.util
    import shutil
    import tempfile

    if shutil.which("iverilog") is None:
        pytest.skip("needs Icarus Verilog (iverilog)")
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rtl", "run.py")
    spec = importlib.util.spec_from_file_location("numsim_rtl_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert mod.main(["vectors", "int4_int32", "--count", "20"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []
    assert mod.main(["vectors", "int4_int32", "--count", "20", "--keep"]) == 0
    assert [p for p in os.listdir(tmp_path) if p.startswith("numsim_rtl_")]


@FEW
@given(st.sampled_from(["fp8_fp16", "fp16_fp32", "h100_mma_e4m3"]), st.integers(1, 2048),
       st.sampled_from([("fp8_e4m3fn", "fp8_e4m3fn"), ("fp8_e5m2", "fp8_e5m2"), ("int4", "fp4r4"),
                        ("fp16", "fp16"), ("int8", "fp8_e4m3fn")]))
def test_auto_quantizer_bound_keeps_float_accumulator_finite(unit_name, K, fmts):
    """quant.method = 'auto': the operands' largest magnitudes A, B satisfy
    K*A*B*exp((K+1)*u) <= the accumulator's largest finite value (numsim.sweep.quantize.auto_top's bound)."""
    import math

    from numsim.formats import get_format
    from numsim.sweep.quantize import auto_top

    unit = get_unit(unit_name)
    acc = get_format(unit.acc_fmt)
    fa, fb = (get_format(f) for f in fmts)
    A, B = auto_top(fa, fb, acc, K), auto_top(fb, fa, acc, K)
    if fa.kind == "int":
        A = float(max(-fa.min_value, fa.max_value))
    if fb.kind == "int":
        B = float(max(-fb.min_value, fb.max_value))
    top = {f: float(max(-f.min_value, f.max_value)) if f.kind == "int" else f.max_finite for f in (fa, fb)}
    assert A <= top[fa] and B <= top[fb]
    u = 2.0 ** -acc.man_bits
    if fa.kind == "float" or fb.kind == "float":      # two integer operands keep 'max' (exact products)
        assert K * A * B * math.exp((K + 1) * u) <= acc.max_finite


def test_auto_quantizer_keeps_fp8_fp16_finite(tmp_path):
    """issue 21: fp8_fp16, M=64 K=576 N=64 leaves most outputs inf with 'max' (and the sweep warns); the
    default, 'auto', leaves none and the sweep says nothing."""
    from numsim.sweep import run_sweep

    spec = {"sweep": {"unit": "fp8_fp16"}, "grid": {"chunk": [4, 64]},
            "workload": [{"kind": "random", "m": 64, "k": 576, "n": 64}]}
    res = run_sweep(dict(spec, quant={"method": "max"}), tmp_path, scheduler="sync")
    assert res.warnings and all(r["nonfinite"] > 0 for r in res.rows)
    for name, q in (("auto", {"method": "auto"}), ("default", None)):
        res = run_sweep(dict(spec, **({"quant": q} if q else {})), tmp_path / name, scheduler="sync")
        assert res.warnings == [] and all(r["nonfinite"] == 0 and r["sqnr_db"] > 40 for r in res.rows), name


# ---- issue 21, second pass ---------------------------------------------------------------------

def test_torch_nan_forward_input_is_named_an_input():
    """A NaN/inf forward input to a numsim.torch layer is the caller's data: the message names the layer
    and the argument, and never calls it a gradient."""
    torch = pytest.importorskip("torch")
    import numsim.torch as nt

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.Linear(12, 4))
    q = nt.convert(model, "int8_ptq8")
    for bad_value in (float("nan"), float("inf")):
        x = torch.randn(1, 2, 4, 4)
        x[0, 1, 2, 3] = bad_value
        with pytest.raises(NumsimError, match=r"^input: 1 NaN/inf values in the forward input of QuantConv2d") as ei:
            q(x)
        assert "gradient" not in str(ei.value) and "(0, 1, 2, 3)" in str(ei.value)
    lin = nt.convert(torch.nn.Sequential(torch.nn.Linear(2, 3)), "int8_ptq8")
    with pytest.raises(NumsimError, match=r"^input: .* QuantLinear") as ei:
        lin(torch.tensor([[1.0, float("inf")]]))
    assert "gradient" not in str(ei.value)


def test_matmul_conv2d_warn():
    """warn=True: a NumsimWarning with the counts of inf/NaN outputs, saturated outputs and overflow
    events (numsim.events, the sweep's counting rule); warn=False (the library default) stays silent;
    the results are the same bits either way."""
    import warnings

    from numsim import NumsimWarning, conv2d, encode, matmul
    from numsim.events import suspicious_counts, suspicious_text

    big = encode(np.full((2, 8), 448.0), "fp8_e4m3fn")          # products of 448^2: past FP16's 65504
    big_b = encode(np.full((8, 3), 448.0), "fp8_e4m3fn")
    ones = encode(np.ones((8, 3)), "fp8_e4m3fn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = matmul(big, big_b, FU)                              # the default: no warning
    with pytest.warns(NumsimWarning, match=r"^matmul through fp8_fp16: .*6 of 6 outputs are inf/NaN") as rec:
        loud = matmul(big, big_b, FU, warn=True)
    assert len(rec) == 1
    assert np.array_equal(quiet.codes, loud.codes)
    want = suspicious_text(suspicious_counts(loud.acc_values, get_unit("fp8_fp16").acc_fmt, loud.overflow_count))
    assert str(rec[0].message).endswith(want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matmul(encode(np.ones((2, 8)), "fp8_e4m3fn"), ones, FU, warn=True)   # finite, unsaturated: silent
    # an integer accumulator at its range ends
    i8 = get_unit("h100_imma_s8_sat")
    a = np.full((1, 32), 0x80, np.uint8)                            # -128
    with pytest.warns(NumsimWarning, match="range ends"):
        matmul(a, a.T.copy(), i8, warn=True, c=np.full((1, 1), 2**31 - 1, np.int64))
    x = encode(np.full((1, 1, 3, 3), 448.0), "fp8_e4m3fn")
    w = encode(np.full((2, 1, 3, 3), 448.0), "fp8_e4m3fn")
    with pytest.warns(NumsimWarning, match=r"^conv2d through fp8_fp16: 2 of 2 outputs are inf/NaN"):
        conv2d(x, w, FU, warn=True)
    with pytest.raises(NumsimError, match="^warn:"):
        conv2d(x, w, FU, warn=1)
