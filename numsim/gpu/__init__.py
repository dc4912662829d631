"""numsim's units on a GPU (Triton): the same bits as the CPU kernels, on torch tensors on their device.

`import numsim` never imports this package's kernels: triton (the `gpu` extra) and torch are imported
on first use. Entry points:

- `gemm_codes(unit, a_codes, b_codes, c=None)`: the unit-level GEMM on torch tensors of codes (cuda,
  or cpu under TRITON_INTERPRET=1); accumulator codes back on the same device.
- `matmul(a, b, unit, c=None)`: what `numsim.matmul` runs for CUDA tensors (DLPack producers too).
- `supported(unit, ...)`: None when a Triton kernel gives the unit's bits, else the reason.

A unit (or problem) outside every kernel's domain runs on the CPU kernels with one copy each way, and
says so in `info["fallback"]` (docs/gpu.md lists what runs where and how each kernel is proved equal).
"""
from .entry import GpuGemmResult, gemm_codes, matmul, supported

__all__ = ["GpuGemmResult", "gemm_codes", "matmul", "supported"]
