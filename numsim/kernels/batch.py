"""One C call for a batch of equally shaped GEMMs (numsim.matmul's batch dimensions), where a kernel
family proves it sound; everything else keeps numsim.matmul's per-GEMM loop.

Integer MAC units on the imatmul kernels: the kernel's domain is checked once on the union problem
(every batch entry's rows as a's rows, every entry's columns as b's columns, the same K and per-k
context). Its bound uses maxima over the codes present, so the union's bound holds for each entry:
each entry is then inside the same kernel's domain and its result is the exact integer, computed by
ns_imatmul_batch as the single call would (csrc/gemm_batch.c). Forcing a kernel (NUMSIM_KERNEL) keeps
the per-GEMM loop, so a forced kernel's domain is still checked entry by entry.
"""
from __future__ import annotations

import os

import numpy as np

from .._ffi import cptr, ffi, lib


def imatmul_batch(unit, A, B, ctx, nthreads):
    """(GemmResult with (nb, M, N) arrays, kernel name) for A (nb, M, K) and B (nb, K, N) codes, or None."""
    from ..units.int_mac import IntMacUnit
    from . import select
    from . import int_imatmul as im

    if type(unit) is not IntMacUnit or os.environ.get("NUMSIM_KERNEL"):
        return None
    nb, M, K = A.shape
    N = B.shape[2]
    if nb < 2 or M == 0 or N == 0:
        return None
    a_u = A.reshape(nb * M, K)
    b_u = np.ascontiguousarray(B.transpose(1, 0, 2)).reshape(K, nb * N)
    p = unit.problem(a_u, b_u, c=None, nthreads=nthreads, ctx=ctx)
    k = select(unit, p)
    if not k.name.startswith("int_mac.imatmul."):
        return None
    level = k.name.rsplit(".", 1)[1]
    plan = im._linear_plan(unit, p, im._shift_ctx(p, "align_shift", K, 0, 31), True)
    if isinstance(plan, str) or plan["c32"] is not None:
        return None
    a8 = np.ascontiguousarray(A, dtype=np.uint8)     # codes checked on the union problem
    b8 = np.ascontiguousarray(B, dtype=np.uint8)
    out = np.empty((nb, M, N), dtype=np.int32)
    vals = np.empty((nb, M, N), dtype=np.float64)
    ta, tb = im._table(unit.a_fmt)[0], im._table(unit.b_fmt)[0]
    sa, sb = plan["a_shift"], plan["b_shift"]
    st = lib.ns_imatmul_batch(cptr("uint8_t *", a8), unit.a_fmt.bits, cptr("int32_t *", ta),
                              ffi.NULL if sa is None else cptr("int32_t *", sa), cptr("uint8_t *", b8), unit.b_fmt.bits,
                              cptr("int32_t *", tb), ffi.NULL if sb is None else cptr("int32_t *", sb), nb, M, K, N,
                              ffi.NULL, cptr("int32_t *", out), cptr("double *", vals), p.nthreads, im.LEVELS[level])
    if st:
        return None
    return im._finish_int(unit, out, vals, level), k.name
