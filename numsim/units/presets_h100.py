"""The NVIDIA H100 presets, established from recorded hardware outputs (issue 11, docs/hardware.md)."""
from .fused_adder import FusedDotUnit, mod_split_permutation
from .int_mma import IntMMAUnit
from .registry import preset

# ---- the H100 presets ------------------------------------------------------------------------

_E4M3_MMA_PERM = mod_split_permutation(32, 4, ((0, 1), (2, 3)))

H100_PRESETS = {
    "h100_hmma_f16": (FusedDotUnit, dict(
        a_fmt="fp16", b_fmt="fp16", k_step=16, kept_bits=25,
        doc="H100 HMMA.16816.F32 (WMMA m16n16k16 f16): 17-term fused sum, terms truncated to "
            "2^(emax-25), sum rounded toward zero into fp32; one step per 16 k")),
    "h100_hmma_bf16": (FusedDotUnit, dict(
        a_fmt="bf16", b_fmt="bf16", k_step=16, kept_bits=25,
        doc="H100 HMMA.16816.F32.BF16: as h100_hmma_f16 with bf16 inputs")),
    "h100_cublas_f16": (FusedDotUnit, dict(
        a_fmt="fp16", b_fmt="fp16", k_step=16, kept_bits=25,
        doc="cuBLAS torch.mm(f16, out_dtype=fp32) on H100 (nvjet_sm90_hss): chained HMMA steps in k order "
            "(the same datapath as h100_hmma_f16)")),
    "h100_cublas_bf16": (FusedDotUnit, dict(
        a_fmt="bf16", b_fmt="bf16", k_step=16, kept_bits=25,
        doc="cuBLAS torch.mm(bf16, out_dtype=fp32) on H100: chained HMMA steps in k order "
            "(the same datapath as h100_hmma_bf16)")),
    "h100_mma_e4m3": (FusedDotUnit, dict(
        a_fmt="fp8_e4m3fn", b_fmt="fp8_e4m3fn", k_step=16, kept_bits=25, k_permutation=_E4M3_MMA_PERM,
        promotion_interval=32,
        doc="mma.sync m16n8k32 e4m3 on sm_90: inputs to f16 (exact), two HMMA steps from zero (k%4 in "
            "{0,1}, then {2,3}), then c + that by an fp32 RNE add")),
    "h100_cublas_e4m3": (FusedDotUnit, dict(
        a_fmt="fp8_e4m3fn", b_fmt="fp8_e4m3fn", k_step=32, kept_bits=13, acc_man_bits=13,
        promotion_interval=128, c_add="epilogue",
        doc="cuBLAS torch._scaled_mm(e4m3) on H100 (nvjet_sm90_qqsss): wgmma k=32 steps into a 1-8-13 "
            "accumulator (33-term sum, terms truncated to 2^(emax-13), sum truncated), promoted into fp32 "
            "by an RNE add every promotion_interval k (None: use_fast_accum), scales fp32(sa*sb) once")),
    "h100_imma_s8": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=32, acc_overflow="wrap",
                                      doc="mma.sync m16n8k32 s8 -> s32: exact, wraps modulo 2^32")),
    "h100_imma_s8_sat": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=32, acc_overflow="saturate",
                                          doc="mma.sync m16n8k32 s8 .satfinite: exact sum saturated once")),
    "h100_imma_s4": (IntMMAUnit, dict(a_fmt="int4", b_fmt="int4", k_step=64, acc_overflow="wrap",
                                      doc="mma.sync m16n8k64 s4 -> s32: exact, wraps modulo 2^32")),
    "h100_imma_s4_sat": (IntMMAUnit, dict(a_fmt="int4", b_fmt="int4", k_step=64, acc_overflow="saturate",
                                          doc="mma.sync m16n8k64 s4 .satfinite: exact sum saturated once")),
}


for _name, (_cls, _params) in H100_PRESETS.items():
    preset(_cls, _name, _params["doc"], **_params)
