"""Peak memory of every unit's fast path within 2x its inputs + outputs (issue 15), and the panelled
fused-adder glue that keeps it there giving the whole GEMM's bits.

Memory is deterministic (tracemalloc counts numpy's allocations), so the ratio is asserted; it is
measured by benchmarks/memory.py, which also reports the peak RSS."""
import importlib.util
import pathlib

import numpy as np
import pytest

import numsim
import numsim.units.fused_adder as fa
from numsim.kernels import Problem

_spec = importlib.util.spec_from_file_location(
    "numsim_bench_memory", pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "memory.py")
memory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(memory)


@pytest.mark.parametrize("api", ["matmul", "gemm_codes"])
@pytest.mark.parametrize("name", memory.unit_names())
def test_peak_memory_within_twice_inputs_and_outputs(name, api):
    assert memory.tracemalloc_ratio(name, 192, api=api) <= 2.0


def _fused_problem(rng, unit, M, K, N, with_c):
    fa_ = numsim.get_format(unit.a_fmt)
    fb = numsim.get_format(unit.b_fmt)
    a = numsim.encode(rng.standard_normal((M, K)) * 4, fa_, overflow="saturate")
    b = numsim.encode(rng.standard_normal((K, N)) * 4, fb, overflow="saturate")
    # a few huge operands and specials so that some outputs overflow or go non-finite
    a.reshape(-1)[rng.integers(0, a.size, 5)] = fa_.max_finite_code
    b.reshape(-1)[rng.integers(0, b.size, 5)] = fb.max_finite_code
    c = None
    if with_c:
        c = numsim.encode(rng.standard_normal((M, N)) * 1e38, "fp32").astype(np.uint32)
    return a, b, c


@pytest.mark.parametrize("name", ["h100_mma_e4m3", "h100_hmma_f16", "h100_cublas_e4m3", "h100_hmma_bf16"])
@pytest.mark.parametrize("shape", [(37, 50, 41), (64, 96, 33), (5, 200, 70)])
@pytest.mark.parametrize("with_c", [False, True])
def test_fused_panels_give_the_whole_gemms_bits(monkeypatch, name, shape, with_c):
    unit = numsim.get_unit(name)
    rng = np.random.default_rng([len(name), *shape, with_c])
    a, b, c = _fused_problem(rng, unit, *shape, with_c)
    whole = unit.gemm_codes(a, b, c)
    mac = unit.mac_level_gemm(Problem(a=a, b=b, c=c))        # the scalar kernel on whole operands
    monkeypatch.setattr(fa, "_fused_panels", lambda M, N, Kp, io: (16, 16))
    for got in (unit.gemm_codes(a, b, c), unit.mac_level_gemm(Problem(a=a, b=b, c=c))):
        for ref in (whole, mac):
            np.testing.assert_array_equal(got.codes, ref.codes)
            assert got.overflow_count == ref.overflow_count
            assert got.info.get("nonfinite") == ref.info.get("nonfinite")


def test_fused_panels_fit_the_budget():
    for M, N, K in [(1024, 1024, 1024), (256, 256, 256), (2048, 512, 4096), (16, 4096, 4096)]:
        in_bytes = M * K + K * N
        mp, np_ = fa._fused_panels(M, N, K, in_bytes)
        assert 1 <= mp <= M and 1 <= np_ <= N
        io = in_bytes + 12 * M * N
        if min(M, N) >= 64:
            assert 15 * K * (mp + np_) <= 2 * io - 4 * M * N
