"""Fuzz of the C ABI through the Python API (tools/fuzz_abi.py) and the table of bad-input classes:
every structurally invalid call raises NumsimError naming the argument before any kernel runs (a spy
around the cffi `lib` counts kernel calls). The same fuzz under AddressSanitizer + UBSan is
tools/sanitize.sh; test_fuzz_under_sanitizers runs a short one (2000 calls) in a temporary directory.
The input checks this campaign found missing are fixed and kept here as regression tests."""
import importlib.util
import os
import shutil
import subprocess

import numpy as np
import pytest

import numsim
import importlib

from numsim import codec, units as mac
from numsim.gemm import conv2d, matmul
from numsim.units import get_unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# load tools/fuzz_abi.py without leaving anything on sys.path (processes spawned by later tests,
# e.g. Dask workers, inherit sys.path and must import the installed numsim)
_spec = importlib.util.spec_from_file_location("fuzz_abi", os.path.join(ROOT, "tools", "fuzz_abi.py"))
fuzz_abi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_abi)


@pytest.fixture
def spy(monkeypatch):
    s = fuzz_abi.KernelSpy(codec.lib)
    for name in fuzz_abi.SPIED:
        mod = importlib.import_module(name)
        if hasattr(mod, "lib"):
            monkeypatch.setattr(mod, "lib", s)
    return s


def test_fuzz_makes_no_finding(monkeypatch):
    import importlib

    for name in fuzz_abi.SPIED:                    # run() installs its spy; undo it after the test
        mod = importlib.import_module(name)
        if hasattr(mod, "lib"):
            monkeypatch.setattr(mod, "lib", mod.lib)
    res = fuzz_abi.run(calls=700, seed=2024)
    assert res["findings"] == []
    assert res["ok"] > 300 and res["checked"] > 250 and res["rejected"] > 100
    classes = set(res["bad_input_classes"])
    for must in ("code out of range", "unknown format name", "wrong number of dimensions", "string dtype",
                 "mismatched reduction length", "value error found by a kernel"):
        assert must in classes, must


U = get_unit("int4_int32")
F8 = get_unit("fp8_fp16")
Z = np.zeros((2, 2), np.uint8)

BAD = [
    ("wrong dtype: float codes", lambda: U.gemm_codes(np.zeros((2, 2)), Z), r"a_codes: expected an integer array"),
    ("wrong dtype: bool codes", lambda: numsim.decode(np.array([True]), "fp16"), r"codes: expected an integer array"),
    ("wrong dtype: complex values", lambda: numsim.encode(np.array([1j]), "fp16"), r"values: .*complex128"),
    ("wrong dtype: object values", lambda: numsim.encode(np.array([1.0, None]), "fp16"), r"values: .*object"),
    ("wrong dtype: string values", lambda: numsim.encode("1.0", "fp16"), r"values: .*<U3"),
    ("wrong shape: 3-D operand", lambda: U.gemm_codes(np.zeros((2, 2, 2), np.uint8), Z), r"a_codes: expected a 2-D"),
    ("wrong shape: K mismatch", lambda: U.gemm_codes(Z, np.zeros((3, 2), np.uint8)), r"b_codes: expected 2 rows"),
    ("wrong shape: dot lengths", lambda: U.dot([1, 2], [1]), r"b_codes: expected length 2"),
    ("wrong shape: c", lambda: U.gemm_codes(Z, Z, c=np.zeros((3, 2), np.uint32)), r"c: expected shape \(2, 2\)"),
    ("wrong shape: matmul batch", lambda: matmul(np.zeros((2, 2, 2), np.uint8), np.zeros((3, 2, 2), np.uint8), U),
     r"batch dimensions"),
    ("wrong shape: conv weight", lambda: conv2d(np.zeros((1, 2, 4, 4), np.uint8), np.zeros((1, 3, 2, 2), np.uint8), U),
     r"w: shape"),
    ("wrong length: align_shift", lambda: U.gemm_codes(Z, Z, align_shift=[1]), r"align_shift: expected a 1-D array of length K=2"),
    ("codes out of range: int4 16", lambda: U.gemm_codes(np.full((2, 2), 16, np.uint8), Z), r"a_codes: code 16 .* out of range"),
    ("codes out of range: negative", lambda: numsim.decode(np.array([-1]), "fp8_e5m2"), r"codes: code -1"),
    ("codes out of range: excluded symmetric code", lambda: numsim.decode([8], "int4_sym"), r"excluded most negative"),
    ("codes out of range: accumulator state", lambda: U.step(2**32, 1, 1), r"state: code 4294967296"),
    ("parameter out of range: align_shift 32", lambda: U.gemm_codes(Z, Z, align_shift=[32, 0]), r"align_shift: expected values in \[0, 31\]"),
    ("parameter out of range: sample_shift 5", lambda: get_unit("int4_int32_sample_shift").gemm_codes(Z, Z, sample_shift=[5, 0]),
     r"sample_shift: expected values in \[0, 4\]"),
    ("parameter out of range: nthreads 0", lambda: U.gemm_codes(Z, Z, nthreads=0), r"nthreads: expected an integer in \[1, 64\]"),
    ("parameter out of range: random_bits 33", lambda: numsim.encode([1.0], "fp16", random_bits=33), r"random_bits"),
    ("parameter out of range: fused codes", lambda: F8.step(0, [1, 1], [1, 1]), r"a: expected at most k_step=1"),
    ("parameter type: float nthreads", lambda: U.gemm_codes(Z, Z, nthreads=2.0), r"nthreads"),
    ("parameter type: float padding", lambda: conv2d(np.zeros((1, 1, 4, 4), np.uint8), np.zeros((1, 1, 2, 2), np.uint8), U,
                                                     padding=1.5), r"padding: expected an int"),
    ("parameter type: float align_shift", lambda: U.gemm_codes(Z, Z, align_shift=np.array([0.5, 1.0])), r"align_shift: expected integers"),
    ("NaN parameter: align_shift", lambda: U.gemm_codes(Z, Z, align_shift=np.array([np.nan, 0.0])), r"align_shift: expected integers"),
    ("unknown name: format", lambda: numsim.encode([1.0], "fp5"), r"fmt: unknown format name 'fp5'"),
    ("unknown name: rounding", lambda: numsim.encode([1.0], "fp16", rounding="bogus"), r"rounding: expected one of"),
    ("unknown name: overflow", lambda: numsim.encode([1.0], "fp16", overflow="clip"), r"overflow: expected one of"),
    ("unknown name: overflow for the format", lambda: numsim.encode([1.0], "fp4_e2m1", overflow="to_inf"), r"'to_inf' needs a format with inf"),
    ("unknown name: unit", lambda: get_unit("int5_int32"), r"unit: unknown unit preset 'int5_int32'"),
    ("unknown name: order", lambda: get_unit("int4_int32", order="random"), r"order: expected one of"),
    ("unknown name: context key", lambda: U.gemm_codes(Z, Z, sample_shift=[0, 0]), r"sample_shift: expected no such context for unit int4_int32"),
    ("unknown name: odd_underflow", lambda: mac.odd_phase_trick([0], "round"), r"odd_underflow"),
    ("wrong type: unit", lambda: get_unit(3), r"unit: expected a Unit or a preset name"),
]


@pytest.mark.parametrize("label,call,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_before_any_kernel(label, call, msg, spy):
    with pytest.raises(numsim.NumsimError, match=msg):
        call()
    assert spy.calls == 0, f"{label}: {spy.calls} kernel call(s) before the rejection"


VALUE_ERRORS = [
    ("NaN into a format without NaN", lambda: numsim.encode([1.0, np.nan], "fp4_e2m1"), r"values: NaN at index \(1,\)"),
    ("inf with overflow='error'", lambda: numsim.encode([np.inf], "int8", overflow="error"), r"values: .*index \(0,\)"),
    ("overflow='error' in encode", lambda: numsim.encode([1e9], "fp16", overflow="error"), r"overflow at index \(0,\)"),
    ("accumulator overflow='error'", lambda: get_unit("int4_int32", acc_bits=8, widen_bits=8, acc_overflow="error")
     .gemm_codes(np.full((1, 40), 7, np.uint8), np.full((40, 1), 7, np.uint8)), r"overflow: the accumulator .* at output \(0, 0\)"),
    ("widening overflow='error'", lambda: U.gemm_codes(np.full((1, 1), 8, np.uint8), np.full((1, 1), 8, np.uint8),
                                                        align_shift=[9]), r"16-bit widening"),
]


@pytest.mark.parametrize("label,call,msg", VALUE_ERRORS, ids=[v[0] for v in VALUE_ERRORS])
def test_value_errors_found_by_the_kernels_name_the_place(label, call, msg):
    with pytest.raises(numsim.NumsimError, match=msg):
        call()


def test_non_contiguous_inputs_give_the_contiguous_bits():
    rng = np.random.default_rng(1)
    for name in ("int4_int32", "fp8_fp16", "int4_fp4r4_fp16", "fp16_fp32"):
        u = get_unit(name)
        a = fuzz_abi.rand_codes(rng, u.a_fmt, (12, 10))[0]
        b = fuzz_abi.rand_codes(rng, u.b_fmt, (10, 7))[0]
        want = u.gemm_codes(a, b).codes
        big_a = np.zeros((24, 20), a.dtype)
        big_a[::2, ::2] = a
        assert np.array_equal(u.gemm_codes(big_a[::2, ::2], b).codes, want)
        assert np.array_equal(u.gemm_codes(np.asfortranarray(a), np.asfortranarray(b)).codes, want)
        assert np.array_equal(u.gemm_codes(a[::-1][::-1], b.T.copy().T).codes, want)
        assert np.array_equal(matmul(big_a[::2, ::2], b, u).codes, want)


# ---- input checks that the campaign found missing (fixed; kept as regression tests) ------------------

def test_zero_dimensional_input_keeps_its_shape():
    assert numsim.encode(np.float64(1.0), "fp16").shape == ()
    assert numsim.decode(np.uint16(0x3C00), "fp16").shape == ()


def test_negative_index_offset_is_a_numsim_error():
    with pytest.raises(numsim.NumsimError, match="index_offset"):
        numsim.encode([1.0], "fp16", index_offset=-1)


def test_fractional_index_offset_is_rejected():
    with pytest.raises(numsim.NumsimError, match="index_offset"):
        numsim.encode([1.0], "fp16", rounding="stochastic", index_offset=1.5)


def test_requant_rejects_non_code_input():
    with pytest.raises(numsim.NumsimError):
        mac.RequantInt8().apply(np.array([1.5]))


def test_unknown_unit_override_is_a_numsim_error():
    with pytest.raises(numsim.NumsimError, match="bogus"):
        get_unit("int4_int32", bogus=1)


def test_huge_output_is_a_numsim_error():
    a = np.broadcast_to(np.uint8(1), (2**20, 1))
    b = np.broadcast_to(np.uint8(1), (1, 2**21))
    with pytest.raises(numsim.NumsimError):
        U.gemm_codes(a, b)


def test_every_unit_accepts_an_int_accumulator_code_in_dot():
    for name in ("int4_int32", "fp8_fp16", "h100_hmma_f16"):
        u = get_unit(name)
        fa = numsim.get_format(u.a_fmt)
        one = int(numsim.encode([1.0], fa)[0]) if fa.kind == "float" else 1
        assert u.dot([one], [one], c=0).code == u.dot([one], [one]).code


def test_h100_step_rejects_an_out_of_range_state():
    u = get_unit("h100_imma_s8")
    with pytest.raises(numsim.NumsimError, match="state"):
        u.step(2**40, 1, 1)


def _sanitizer_runtime():
    if shutil.which("gcc") is None:
        return None
    p = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return p if os.path.isabs(p) and os.path.exists(p) else None


def test_fuzz_under_sanitizers(tmp_path):
    """tools/sanitize.sh as a subprocess: copy the tree to a temporary directory, rebuild every kernel with
    -fsanitize=address,undefined -O1, catch the out-of-bounds canary, then 2000 fuzz calls with 0 reports.
    About 14 s on a quiet 2-core machine, nearly all of it the rebuild (under heavy load, up to a minute)."""
    if _sanitizer_runtime() is None:
        pytest.skip("gcc's libasan.so is not installed (needed to preload the sanitizer runtime)")
    if shutil.which("git") is None or subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ROOT,
                                                     capture_output=True).returncode:
        pytest.skip("the sanitizer run copies the git working tree: git and a checkout are needed")
    env = dict(os.environ, CALLS="2000", SEED="7")
    p = subprocess.run(["bash", os.path.join(ROOT, "tools", "sanitize.sh"), str(tmp_path / "san")], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=900)
    assert "canary: a deliberate out-of-bounds" in p.stdout and "caught (exit" in p.stdout, p.stdout + p.stderr
    assert "sanitizer reports 0" in p.stdout, p.stdout[-3000:]
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
