"""Block-scaled dot-product presets: the OCP MX spec's exact dot product of MX blocks and NVIDIA
Blackwell's block-scaled tcgen05.mma (issue 17, docs/blockscaled.md).

Sources:
- OCP Microscaling Formats (MX) Specification v1.0 (2023-09), section 6.2 "Dot product": the dot of two
  MX blocks is X(A) X(B) sum_i P_i(A) P_i(B); a longer dot product is the sum of the block dots; the
  internal precision is implementation-defined. `ocp_mx_*_dot` is its exact limit: every product and
  c summed exactly, one rounding into fp32 (acc_rounding, nearest-even by default; a parameter).
- NVIDIA PTX ISA, "tcgen05.mma" (kind::mxf8f6f4 and kind::mxf4nvf4 with .block_scale, .block32 /
  .block16 scale vectors; https://docs.nvidia.com/cuda/parallel-thread-execution/ #tcgen05-mma): the
  instruction shapes (K = 32 for mxf8f6f4, K = 64 for mxf4nvf4), the scale formats (ue8m0; ue4m3 for
  NVFP4) and D = A*B + C with the scales applied per block of K. The PTX documentation does not say how
  the sum is aligned or rounded.
- The datapath (alignment, kept bits, rounding, specials) is as reported by MMA-Sim: "MMA-Sim:
  Bit-Accurate Reference Model of Tensor Cores and Matrix Cores", arXiv 2511.10909, and its code
  (github.com/microsoft/MMA-Sim, commit c78513835c8b2ae61b35062afce4c4255bc6901c,
  mmasim/simulator/nv_ptx.py `tcgen05mma_block_scale`, arithmetic.py `nv_fused_dot_add`,
  `nv_fused_dot_add_with_block_scale`, `fused_sum`). These are MMA-Sim's model of Blackwell, not
  silicon recordings; ../shared/data/mmasim/ holds its outputs, which these presets reproduce.
  Facts MMA-Sim leaves open are parameters: an infinite c in mxf4nvf4 (MMA-Sim raises; here it gives
  that infinity, as in mxf8f6f4) and K beyond one instruction (chained: each instruction's fp32 D is
  the next one's C).
"""
from .block_dot import BlockDotUnit
from .registry import preset

_MMASIM = "MMA-Sim (arXiv 2511.10909; microsoft/MMA-Sim c785138 nv_ptx.py tcgen05mma_block_scale)"

BLACKWELL_BLOCK_PRESETS = {
    "blackwell_tcgen05_mxf8f6f4_block32": dict(
        a_fmt="fp8_e4m3fn", b_fmt="fp8_e4m3fn", a_scale_fmt="e8m0", b_scale_fmt="e8m0", block_size=32,
        k_step=32, group_size=1, term_exponent="product", frac_bits=25, term_rounding="toward_zero",
        zero_exponent=-126, acc_rounding="toward_zero",
        doc="tcgen05.mma kind::mxf8f6f4.block_scale.block32 (ue8m0 scales): the scales' exponents folded into "
            "every product's exponent, the 32 products and C aligned to the largest exponent, truncated to 25 "
            f"fraction bits, summed, RZ into fp32; a NaN anywhere gives 0x7FFFFFFF ({_MMASIM}; PTX ISA tcgen05.mma)"),
    "blackwell_tcgen05_mxf4nvf4_block16": dict(
        a_fmt="fp4_e2m1", b_fmt="fp4_e2m1", a_scale_fmt="ue4m3", b_scale_fmt="ue4m3", block_size=16,
        k_step=64, group_size=16, term_exponent="scales", frac_bits=35, term_rounding="toward_zero",
        zero_exponent=-126, acc_rounding="toward_zero", scale_sign="ignore",
        doc="tcgen05.mma kind::mxf4nvf4.block_scale.block16 (NVFP4, ue4m3 scales): each group of 16 e2m1 products "
            "summed exactly, times the two scales' significands, exponent from the scales alone; the 4 group terms "
            "and C aligned with 35 fraction bits (truncated), RZ into fp32; the ue4m3 sign bit ignored; a NaN scale "
            f"or C gives 0x7FFFFFFF ({_MMASIM}; PTX ISA tcgen05.mma)"),
    "blackwell_tcgen05_mxf4nvf4_block32": dict(
        a_fmt="fp4_e2m1", b_fmt="fp4_e2m1", a_scale_fmt="e8m0", b_scale_fmt="e8m0", block_size=32,
        k_step=64, group_size=16, term_exponent="scales", frac_bits=35, term_rounding="toward_zero",
        zero_exponent=-126, acc_rounding="toward_zero",
        doc="tcgen05.mma kind::mxf4nvf4.block_scale.block32 (MXFP4, ue8m0 scales): as the block16 preset, two "
            f"groups of 16 per scale; not in the recorded vectors ({_MMASIM}, the same code path)"),
}

_OCP_KINDS = {"mxfp8_e4m3": "fp8_e4m3fn", "mxfp8_e5m2": "fp8_e5m2", "mxfp6_e2m3": "fp6_e2m3",
              "mxfp6_e3m2": "fp6_e3m2", "mxfp4": "fp4_e2m1", "mxint8": "int8"}
OCP_MX_PRESETS = {
    f"ocp_{kind}_dot": dict(
        a_fmt=fmt, b_fmt=fmt, a_scale_fmt="e8m0", b_scale_fmt="e8m0", block_size=32, k_step=None, group_size=1,
        term_exponent="product", frac_bits=None, zero_exponent=None, acc_rounding="nearest_even",
        doc=f"OCP MX v1.0 6.2 dot product of {kind.upper()} blocks, exact: X(A)X(B) sum P(A)P(B) over every block "
            "and C summed exactly, rounded once into fp32 (acc_rounding)")
    for kind, fmt in _OCP_KINDS.items()}
OCP_MX_PRESETS["ocp_nvfp4_dot"] = dict(
    a_fmt="fp4_e2m1", b_fmt="fp4_e2m1", a_scale_fmt="ue4m3", b_scale_fmt="ue4m3", block_size=16, k_step=None,
    group_size=1, term_exponent="product", frac_bits=None, zero_exponent=None, acc_rounding="nearest_even",
    doc="NVFP4 blocks (e2m1, ue4m3 per 16) dotted exactly, rounded once into fp32 (the OCP MX rule on NVFP4 blocks)")

for _name, _params in {**BLACKWELL_BLOCK_PRESETS, **OCP_MX_PRESETS}.items():
    preset(BlockDotUnit, _name, _params["doc"], **_params)
