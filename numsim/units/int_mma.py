"""The integer MMA (IntMMAUnit): exact products and sums per k_step instruction into an int32
accumulator that wraps or saturates once per instruction (csrc/hw.c, ns_imma_gemm)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import decode
from ..errors import NumsimError, bad
from .base import DotResult, GemmResult, Unit, dot_as_gemm
from ._c import initial_acc, operands, set_formats

_INT_OPERANDS = ("int8", "int4", "uint8", "uint4")


@dataclass(frozen=True)
class IntMMAUnit(Unit):
    """Integer MMA: exact products and sums per k_step instruction into an int32 accumulator that
    wraps modulo 2^32 ('wrap') or is saturated to the INT32 range once per instruction ('saturate',
    PTX .satfinite)."""

    name: str = "imma"
    a_fmt: object = "int8"
    b_fmt: object = "int8"
    acc_fmt: object = "int32"
    k_step: int = 32
    acc_overflow: str = "wrap"
    seed_source: str = "issue 11: recorded H100 outputs"
    doc: str = ""

    def __post_init__(self):
        set_formats(self, _INT_OPERANDS, "int32")
        if self.acc_overflow not in ("wrap", "saturate"):
            raise bad("acc_overflow", "'wrap' or 'saturate' (integer units have no inf or NaN)", repr(self.acc_overflow))
        if not (isinstance(self.k_step, int) and 1 <= self.k_step <= 4096):
            raise bad("k_step", "an int in 1..4096", self.k_step)

    def describe(self) -> str:
        return (f"{self.name}: {self.a_fmt} x {self.b_fmt}, exact sums of {self.k_step} products, "
                f"int32 accumulator ({self.acc_overflow} once per instruction)")

    def step(self, state, a, b, **ctx):
        """One instruction: state (int32 accumulator code, None = 0) + up to k_step exact products."""
        a = np.asarray(a).ravel()
        b = np.asarray(b).ravel()
        if len(a) != len(b) or len(a) > self.k_step:
            raise bad("a, b", f"equal lengths <= k_step={self.k_step}", (len(a), len(b)))
        if state is not None and (not isinstance(state, (int, np.integer)) or not 0 <= int(state) < 2**32):
            raise bad("state", "an int32 accumulator code in [0, 2^32) or None", repr(state))
        c = np.array([[0 if state is None else int(state)]], np.uint32)
        return int(self.gemm_codes(a.reshape(1, -1), b.reshape(-1, 1), c=c, nthreads=1, **ctx).codes[0, 0])

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        a, b, cc, r = dot_as_gemm(self, a_codes, b_codes, c, ctx)
        tr = None
        if trace:     # the int32 accumulator after every instruction
            tr = []
            st = None if cc is None else int(cc[0, 0])
            for s in range(0, a.shape[1], self.k_step):
                st = self.step(st, a[0, s:s + self.k_step], b[s:s + self.k_step, 0])
                tr.append(st)
        return DotResult(code=int(r.codes[0, 0]), value=float(r.values[0, 0]), trace=tr)

    kernels = ("int_mma.imatmul.amx", "int_mma.imatmul.avx512_vnni", "int_mma.int8_lanes_vnni",
               "int_mma.int8_lanes_avx2", "int_mma.exact_blas", "int_mma.int8_lanes_portable",
               "int_mma.imatmul.portable", "int_mma.mac_level")

    def problem(self, a_codes, b_codes, c=None, nthreads=None, ctx=None):
        from ..kernels.problem import Problem
        from .base import threads

        for k in (ctx or {}):
            raise bad(k, f"no such input: {self.name} takes no scales, shifts, inf or NaN handling", ctx[k])
        a, b = operands(self, a_codes, b_codes)
        return Problem(a=a, b=b, c=initial_acc(self, c, a.shape[0], b.shape[1]), ctx={}, nthreads=threads(nthreads))

    def mac_level_gemm(self, p) -> GemmResult:
        """The instruction-level kernel (ns_imma_gemm): wrap or saturate once per k_step instruction."""
        a, b = p.a, p.b
        M, N, K = a.shape[0], b.shape[1], a.shape[1]
        av = np.ascontiguousarray(decode(a, self.a_fmt).astype(np.int32))
        bv = np.ascontiguousarray(decode(b, self.b_fmt).astype(np.int32).T)
        d = np.empty((M, N), np.int32)
        cv = None if p.c is None else np.ascontiguousarray(p.c.view(np.int32))
        st = lib.ns_imma_gemm(cptr("int32_t *", av), cptr("int32_t *", bv),
                              ffi.NULL if cv is None else cptr("int32_t *", cv), cptr("int32_t *", d),
                              M, N, K, self.k_step, 1 if self.acc_overflow == "saturate" else 0, p.nthreads)
        if st:
            raise NumsimError(f"unit: the C kernel rejected {self.name} (status {st})")
        codes = d.view(np.uint32)
        return GemmResult(codes=codes, values=codes.view(np.int32).astype(np.float64))

