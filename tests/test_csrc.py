"""The C layer as C and C++ callers see it: every csrc/*.c compiles as C11 and as C++17 (ns_dpi.h and
docs/rtl.md promise both; Verilator compiles DPI sources as C++), and numsim._abi's tables are the C enums."""
import glob
import os
import shutil
import subprocess

import pytest

from numsim import _abi
from numsim._ffi import ffi, lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
SOURCES = sorted(glob.glob(os.path.join(CSRC, "*.c")))
needs_csrc = pytest.mark.skipif(not SOURCES, reason="needs the csrc/ sources (a source checkout)")


def _compile(compiler, std_args, src, tmp_path):
    out = os.path.join(str(tmp_path), os.path.basename(src) + ".o")
    r = subprocess.run([compiler, *std_args, "-Wall", "-Werror", "-I", CSRC, "-c", src, "-o", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"{os.path.basename(src)} as {std_args}:\n{r.stderr}"


@needs_csrc
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (the C++ build of the C sources)")
@pytest.mark.parametrize("src", SOURCES, ids=os.path.basename)
def test_source_compiles_as_cxx(src, tmp_path):
    _compile("g++", ["-x", "c++", "-std=c++17"], src, tmp_path)


@needs_csrc
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("src", SOURCES, ids=os.path.basename)
def test_source_compiles_as_c11(src, tmp_path):
    _compile("gcc", ["-std=c11"], src, tmp_path)


@needs_csrc
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_portable_only_build_compiles():
    """-DNS_PORTABLE_ONLY: what a non-x86 compiler sees (no per-ISA code); nothing may be left unused."""
    for src in SOURCES:
        r = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-DNS_PORTABLE_ONLY", "-fsyntax-only", "-I", CSRC,
                            src], capture_output=True, text=True)
        assert r.returncode == 0, f"{os.path.basename(src)}:\n{r.stderr}"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_dpi_header_implementation_compiles_as_cxx(tmp_path):
    src = tmp_path / "dpi.cpp"
    src.write_text('#define NS_DPI_IMPLEMENTATION\n#include "numsim.h"\n')
    _compile("g++", ["-std=c++17"], str(src), tmp_path)


# the tables the Python glue uses, as literals: each must be exactly the C enum
@pytest.mark.parametrize("table,enum,want", [
    (_abi.ORDER, "ns_order", {"sequential": 0, "chunked": 1, "pairwise": 2}),
    (_abi.ODD_UNDERFLOW, "ns_odd_underflow", {"flush": 0, "exact": 1, "clamp": 2}),
    (_abi.ROUNDING, "ns_rounding", {"nearest_even": 0, "nearest_away": 1, "toward_zero": 2, "toward_neg": 3,
                                    "toward_pos": 4, "stochastic": 5}),
    (_abi.OVERFLOW, "ns_overflow", {"saturate": 0, "wrap": 1, "to_inf": 2, "to_nan": 3, "error": 4}),
    (_abi.NAN, "ns_nan_policy", {"error": 0, "zero": 1}),
    (_abi.UNDERFLOW, "ns_underflow", {"round": 0, "flush": 1}),
    (_abi.SPECIALS, "ns_specials", {"ieee": 0, "fn": 1, "fnuz": 2, "none": 3}),
])
def test_abi_table_is_the_c_enum(table, enum, want):
    assert table == want
    assert sorted(table.values()) == sorted(ffi.typeof(f"enum {enum}").relements.values())


def test_one_status_enum():
    assert _abi.STATUS["ok"] == lib.NS_OK == 0
    assert _abi.STATUS["err_overflow"] == lib.NS_ERR_OVERFLOW == 1   # encode overflow = accumulator overflow
    assert len(set(_abi.STATUS.values())) == len(_abi.STATUS)
    assert sorted(_abi.STATUS.values()) == list(range(10))


def test_rounding_policy_names_are_the_abi_tables():
    from numsim import rounding
    assert rounding.ROUNDING_MODES is _abi.ROUNDING
    assert rounding.OVERFLOW_POLICIES is _abi.OVERFLOW
    assert rounding.NAN_POLICIES is _abi.NAN
    assert rounding.UNDERFLOW_POLICIES is _abi.UNDERFLOW


def test_cpu_features_are_stable_and_usable_is_a_subset(monkeypatch):
    f = lib.ns_cpu_features()
    assert f == lib.ns_cpu_features()
    assert f & ~sum(_abi.CPU.values()) == 0
    assert lib.ns_cpu_usable() & ~f == 0
    monkeypatch.setenv("NUMSIM_LEVEL", "portable")
    assert lib.ns_cpu_usable() == 0
    monkeypatch.setenv("NUMSIM_LEVEL", "avx2")
    assert lib.ns_cpu_usable() & (lib.NS_CPU_AVX512F | lib.NS_CPU_AMX_TILE) == 0
    monkeypatch.setenv("NUMSIM_LEVEL", "avx512")
    assert lib.ns_cpu_usable() & (lib.NS_CPU_AVX512_VNNI | lib.NS_CPU_AVX512_FP16 | lib.NS_CPU_AMX_TILE) == 0
    monkeypatch.setenv("NUMSIM_LEVEL", "amx")
    assert lib.ns_cpu_usable() == f


def test_thread_cap_rule():
    cap = lib.NS_MAX_THREADS
    assert [lib.ns_thread_count(t, 100) for t in (-3, 0, 1, 7, cap, cap + 1, 10**6)] == [1, 1, 1, 7, cap, cap, cap]
    assert lib.ns_thread_count(8, 3) == 3 and lib.ns_thread_count(8, 0) == 1 and lib.ns_thread_count(8, -1) == 1


@pytest.mark.parametrize("name", ["int4_int32", "int4_fp4r4_fp16", "h100_hmma_f16"])
def test_thread_count_never_changes_bits(name, rng):
    import numpy as np
    from numsim.formats import get_format
    from numsim.units import get_unit
    u = get_unit(name)

    def codes(fmt, shape):                      # finite codes (NaN / inf of float formats replaced by 0)
        f = get_format(fmt)
        c = rng.integers(0, 2**f.bits, shape, dtype=np.int64).astype(f.dtype)
        from numsim.codec import decode
        return np.where(np.isfinite(decode(c, f)), c, 0).astype(f.dtype)
    a, b = codes(u.a_fmt, (70, 24)), codes(u.b_fmt, (24, 9))
    want = u.gemm_codes(a, b, nthreads=1).codes
    for t in (2, 3, 7, 64):
        assert np.array_equal(u.gemm_codes(a, b, nthreads=t).codes, want)
