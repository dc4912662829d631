"""The AVX-512F kernel of the fused aligned adder (csrc/hw.c, ns_fused_gemm_simd level 2).

Proof: per output it performs the scalar kernel's steps in the same order; products are formed in
doubles (exact: <= 2 x 11-bit significands) or fp32 where every product's exponent range allows it
(ns_fused_simd_path decides per problem from the operands' exponents and falls back to the scalar
steps elsewhere), alignment truncation and the one rounding are integer operations on the same
bits. Lanes with an out-of-range sum or a non-finite result (an fp32 promotion / scale / epilogue
overflow) are recomputed by the scalar steps, which count the overflow events, so the counts equal
the scalar kernel's too. tests/test_hardware_simd.py (edge families, wide exponent ranges),
tests/test_kernels.py and tests/test_float_overflow.py compare it with the scalar kernel."""
from ..units.fused_adder import fused_gemm
from . import Kernel, register


register(Kernel(name="fused_adder.avx512", level="avx512",
                proof="the scalar kernel's steps in its order on exact double / fp32 products where "
                      "ns_fused_simd_path proves them exact, scalar steps elsewhere; tests/test_hardware_simd.py, "
                      "tests/test_kernels.py",
                domain=lambda unit, p: None, run=lambda unit, p: fused_gemm(unit, p, 2)))
