"""`matrix_core.c_lanes`: MatrixCoreUnit's 'fused_floor' datapath (AMD CDNA3) in C (csrc/mfma.c)."""
import numpy as np

from .._ffi import cptr, ffi, lib
from ..errors import NumsimError
from ..units.base import GemmResult, count_nonfinite
from . import Kernel, register


def _domain(unit, problem):
    if getattr(unit, "datapath", None) != "fused_floor":
        return "only the 'fused_floor' datapath (CDNA3) is in C; 'pairwise' runs the MAC level"
    return None


def _run(unit, p):
    from ..units.matrix_core import prepared

    M, N = p.a.shape[0], p.b.shape[1]
    A, B, c, Kp = prepared(unit, p)
    A32 = [np.ascontiguousarray(x, np.int32) for x in A[:3]] + [np.ascontiguousarray(A[3], np.uint8)]
    B32 = [np.ascontiguousarray(x, np.int32) for x in B[:3]] + [np.ascontiguousarray(B[3], np.uint8)]
    d = np.empty((M, N), np.uint32)
    ev = ffi.new("int64_t *")
    st = lib.ns_mfma_fused_floor_gemm(
        *(cptr("int32_t *", x) for x in A32[:3]), cptr("uint8_t *", A32[3]),
        *(cptr("int32_t *", x) for x in B32[:3]), cptr("uint8_t *", B32[3]),
        cptr("uint32_t *", np.ascontiguousarray(c)), cptr("uint32_t *", d), M, N, Kp, unit.k_step,
        int(A[4] + B[4]), unit.term_frac_bits, unit.sum_frac_bits, unit.c_frac_bits, 1 if unit.even_odd_split else 0,
        -1 if unit.c_drop_binades is None else unit.c_drop_binades, unit.zero_exponent, ev)
    if st:
        raise NumsimError(f"unit: the C kernel rejected {unit.name} (status {st})")
    res = GemmResult(codes=d, values=d.view(np.float32).astype(np.float64), overflow_count=int(ev[0]))
    return count_nonfinite(res, "fp32")


register(Kernel(name="matrix_core.c_lanes", level="portable",
                proof="the MAC level's integer steps, one output at a time in C (csrc/mfma.c): the same "
                      "int64 widths (terms < 2^(F+2), group sums < 2^(F+8), totals < 2^53 so the double is "
                      "exact and its float conversion is the one RNE rounding); tests/test_kernels.py and "
                      "tests/test_silicon.py compare it with the MAC level and MMA-Sim's vectors",
                domain=_domain, run=_run))
