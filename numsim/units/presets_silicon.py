"""Tensor-core and matrix-core generations other than the recorded H100 (issue 19), as presets.

Sources, and what kind of fact each one is:
- [MMA-Sim] Microsoft MMA-Sim, arXiv 2511.10909 and github.com/microsoft/MMA-Sim c785138
  (mmasim/simulator/nv_ptx.py, amd.py, arithmetic.py): a published bit-accurate *model* calibrated by
  its authors on the silicon. Fraction bits kept per term: Volta 23, Turing/Ampere/Ada 24,
  Hopper/Blackwell 25; Ampere/Ada split mma k16 f16/bf16, k8 tf32 and k32 fp8 into two chained fused
  halves; Ada fp8 keeps 13 fraction bits (1-8-13 output); tf32 inputs truncated; a subnormal input
  counted at its format's minimum normal exponent; AMD CDNA3 as numsim.units.matrix_core describes.
- [Fasi21] Fasi, Higham, Mikaitis, Pranesh, "Numerical behavior of NVIDIA tensor cores", PeerJ CS 7:e330
  (2021): V100/T4/A100 fp16 -> fp32 align to the largest exponent, truncate, round toward zero.
- [PTX] NVIDIA PTX ISA 8.x/9.x: shapes (m8n8k4 Volta, m16n8k8 Turing, m16n8k16/k8/k32 Ampere+, tcgen05).
- [vectors] ../shared/data/mmasim/*.npz: MMA-Sim outputs that tests/test_silicon.py replays (100%).

Everything here is a *model* fact (MMA-Sim / Fasi21), not a recording made by this project, except
where the H100 presets (presets_h100.py, recorded) coincide. Uncertain facts are unit parameters:
`kept_bits`, `subnormal_exponent` (the H100 recordings pass with either value: they do not decide it),
MatrixCoreUnit's `zero_exponent`, `c_drop_binades`, `flush_subnormals`.
"""
import dataclasses

from .fused_adder import FusedDotUnit
from .int_mma import IntMMAUnit
from .cpu_dot import PairFmaUnit
from .float_mac import FloatMacUnit
from .matrix_core import MatrixCoreUnit
from .registry import preset

_NV = dict(acc_rounding="toward_zero", subnormal_exponent="format_min")


def _nv(a, k_step, kept_bits, doc, b=None, **extra):
    return (FusedDotUnit, dict(a_fmt=a, b_fmt=b or a, k_step=k_step, kept_bits=kept_bits, **_NV, **extra,
                               seed_source="issue 19: MMA-Sim model (arXiv 2511.10909), [Fasi21]", doc=doc))


NVIDIA_PRESETS = {
    # Volta: mma.sync m8n8k4 f16 -> f32, one fused step per instruction, 23 fraction bits.
    "volta_mma_f16": _nv("fp16", 4, 23, "V100 mma.sync m8n8k4 .f32.f16: 5-term fused sum (4 products + c), "
                                         "terms truncated to 2^(emax-23), RZ to fp32 [MMA-Sim, Fasi21]"),
    # Turing: m16n8k8 f16, 24 bits.
    "turing_mma_f16": _nv("fp16", 8, 24, "T4 mma.sync m16n8k8 .f32.f16: 9-term fused sum, 2^(emax-24), RZ "
                                          "[MMA-Sim, Fasi21]"),
    # Ampere: k16 f16/bf16 as two chained fused halves of 8, tf32 k8 as two halves of 4.
    "ampere_mma_f16": _nv("fp16", 8, 24, "A100 mma.sync m16n8k16 .f32.f16: two chained 9-term fused sums "
                                          "(k 0-7 with c, then k 8-15), 2^(emax-24), RZ [MMA-Sim; vectors]"),
    "ampere_mma_bf16": _nv("bf16", 8, 24, "A100 mma.sync m16n8k16 .f32.bf16: as ampere_mma_f16 [MMA-Sim]"),
    "ampere_mma_tf32": _nv("tf32", 4, 24, "A100 mma.sync m16n8k8 .f32.tf32: inputs are the top 19 bits of "
                                           "fp32 words (tf32_codes_from_fp32: truncation), two chained 5-term "
                                           "fused sums, 2^(emax-24), RZ [MMA-Sim; vectors]"),
    # Ada: as Ampere; fp8 k32 as two halves of 16 into a 1-8-13 accumulator.
    "ada_mma_f16": _nv("fp16", 8, 24, "RTX 4090/L40 mma.sync m16n8k16 .f32.f16: as ampere_mma_f16 [MMA-Sim]"),
    "ada_mma_bf16": _nv("bf16", 8, 24, "Ada mma.sync m16n8k16 .f32.bf16: as ampere_mma_bf16 [MMA-Sim]"),
    "ada_mma_e4m3": _nv("fp8_e4m3fn", 16, 13, "Ada mma.sync m16n8k32 .f32.e4m3: two chained 17-term fused sums "
                        "into a 1-8-13 accumulator (terms 2^(emax-13), RZ) [MMA-Sim; DeepGEMM #37]",
                        acc_man_bits=13),
    "ada_mma_e5m2": _nv("fp8_e5m2", 16, 13, "Ada mma.sync m16n8k32 .f32.e5m2: as ada_mma_e4m3 [MMA-Sim]",
                        acc_man_bits=13),
    # Hopper wgmma beyond the recorded presets: tf32 and fp8 per instruction.
    "hopper_wgmma_tf32": _nv("tf32", 8, 25, "H100 wgmma m64nNk8 .f32.tf32: 9-term fused sum, 2^(emax-25), RZ "
                                            "[MMA-Sim]"),
    "hopper_wgmma_e5m2": _nv("fp8_e5m2", 32, 13, "H100 wgmma m64nNk32 .f32.e5m2 without promotion: 33-term fused "
                             "sum into 1-8-13 (as the recorded h100_cublas_e4m3's instruction) [MMA-Sim]",
                             acc_man_bits=13),
    # Blackwell datacenter tcgen05 (non-block-scaled kinds): one fused sum per instruction, 25 bits.
    "blackwell_tcgen05_f16": _nv("fp16", 16, 25, "B200 tcgen05.mma kind::f16 (f16): 17-term fused sum, "
                                                 "2^(emax-25), RZ [MMA-Sim; vectors]"),
    "blackwell_tcgen05_bf16": _nv("bf16", 16, 25, "B200 tcgen05.mma kind::f16 (bf16) [MMA-Sim; vectors]"),
    "blackwell_tcgen05_tf32": _nv("tf32", 8, 25, "B200 tcgen05.mma kind::tf32: 9-term fused sum [MMA-Sim]"),
    "blackwell_tcgen05_e4m3": _nv("fp8_e4m3fn", 32, 25, "B200 tcgen05.mma kind::f8f6f4 (e4m3): 33-term fused "
                                                        "sum, 2^(emax-25), RZ to fp32 [MMA-Sim; vectors]"),
    "blackwell_tcgen05_e5m2": _nv("fp8_e5m2", 32, 25, "B200 tcgen05.mma kind::f8f6f4 (e5m2) [MMA-Sim]"),
    "blackwell_tcgen05_e3m2": _nv("fp6_e3m2", 32, 25, "B200 tcgen05.mma kind::f8f6f4 (e3m2) [MMA-Sim]"),
    "blackwell_tcgen05_e2m3": _nv("fp6_e2m3", 32, 25, "B200 tcgen05.mma kind::f8f6f4 (e2m3) [MMA-Sim]"),
    "blackwell_tcgen05_e2m1": _nv("fp4_e2m1", 32, 25, "B200 tcgen05.mma kind::f8f6f4 (e2m1): the subnormal 0.5 "
                                                      "at exponent 0 (MMA-Sim's rule; the vectors' other "
                                                      "convention is subnormal_exponent='normalized') [vectors]"),
    # RTX Blackwell sm_120 mma.sync: not split, 25 bits (fp8 too: no 13-bit Ada accumulator).
    "rtx_blackwell_mma_f16": _nv("fp16", 16, 25, "RTX 5090 (sm_120) mma.sync m16n8k16 .f32.f16: one 17-term "
                                                 "fused sum, 2^(emax-25), RZ [MMA-Sim]"),
    "rtx_blackwell_mma_bf16": _nv("bf16", 16, 25, "sm_120 mma.sync m16n8k16 .f32.bf16 [MMA-Sim]"),
    "rtx_blackwell_mma_e4m3": _nv("fp8_e4m3fn", 32, 25, "sm_120 mma.sync m16n8k32 .f32.e4m3: one 33-term fused "
                                                        "sum, 25 bits, RZ [MMA-Sim]"),
    "rtx_blackwell_mma_e2m1": _nv("fp4_e2m1", 32, 25, "sm_120 mma.sync kind::f8f6f4 m16n8k32 (e2m1) [MMA-Sim]"),
    # Integer MMA: exact, wraps modulo 2^32 (as recorded on H100; PTX: .satfinite optional).
    "ampere_imma_s8": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=32, acc_overflow="wrap",
                                        doc="A100 mma.sync m16n8k32 s8 -> s32: exact, wraps modulo 2^32 [PTX]")),
}

_AMD = dict(seed_source="issue 19: MMA-Sim model (arXiv 2511.10909)")

AMD_PRESETS = {
    "cdna3_mfma_f16": (MatrixCoreUnit, dict(a_fmt="fp16", b_fmt="fp16", datapath="fused_floor", k_step=8, **_AMD,
                       doc="MI300 v_mfma_f32_16x16x16_f16: two chained groups of 8 products, truncated to 24 "
                           "fraction bits at the group's emax, group sum floored to 31 and c to 24 bits at "
                           "their common exponent, RNE to fp32 [MMA-Sim; vectors]")),
    "cdna3_mfma_bf16": (MatrixCoreUnit, dict(a_fmt="bf16", b_fmt="bf16", datapath="fused_floor", k_step=8, **_AMD,
                        doc="MI300 v_mfma_f32_16x16x16_bf16: as cdna3_mfma_f16; a product >= 2^128 is inf "
                            "[MMA-Sim; vectors]")),
    "cdna3_mfma_fp8": (MatrixCoreUnit, dict(a_fmt="fp8_e4m3fnuz", b_fmt="fp8_e4m3fnuz", datapath="fused_floor",
                       k_step=16, even_odd_split=True, c_drop_binades=25, **_AMD,
                       doc="MI300 v_mfma_f32_16x16x32_fp8_fp8 (e4m3fnuz): groups of 16, even and odd k fused "
                           "separately, c dropped 25 binades below [MMA-Sim; vectors]")),
    "cdna3_mfma_bf8": (MatrixCoreUnit, dict(a_fmt="fp8_e5m2fnuz", b_fmt="fp8_e5m2fnuz", datapath="fused_floor",
                       k_step=16, even_odd_split=True, c_drop_binades=25, **_AMD,
                       doc="MI300 v_mfma_f32_16x16x32_bf8_bf8 (e5m2fnuz): as cdna3_mfma_fp8 [MMA-Sim]")),
    "cdna3_mfma_xf32": (MatrixCoreUnit, dict(a_fmt="tf32", b_fmt="tf32", datapath="fused_floor", k_step=4, **_AMD,
                        doc="MI300 v_mfma_f32_16x16x8_xf32: inputs truncated to tf32, groups of 4 [MMA-Sim]")),
    "cdna2_mfma_f16": (MatrixCoreUnit, dict(a_fmt="fp16", b_fmt="fp16", datapath="pairwise", k_step=4,
                       flush_subnormals=True, **_AMD,
                       doc="MI200 v_mfma_f32_*_f16: groups of 4 fp32 products summed pairwise, fp32 "
                           "subnormals flushed [MMA-Sim]")),
    "cdna2_mfma_bf16": (MatrixCoreUnit, dict(a_fmt="bf16", b_fmt="bf16", datapath="pairwise", k_step=2,
                        flush_subnormals=True, **_AMD,
                        doc="MI200 v_mfma_f32_*_bf16 (the _1k forms: k_step=4): pairs, flushed [MMA-Sim]")),
    "cdna1_mfma_f16": (MatrixCoreUnit, dict(a_fmt="fp16", b_fmt="fp16", datapath="pairwise", k_step=4, **_AMD,
                       doc="MI100 v_mfma_f32_*_f16: groups of 4 fp32 products summed pairwise [MMA-Sim]")),
    "cdna1_mfma_bf16": (MatrixCoreUnit, dict(a_fmt="bf16", b_fmt="bf16", datapath="pairwise", k_step=2, **_AMD,
                        doc="MI100 v_mfma_f32_*_bf16: pairs summed in fp32 [MMA-Sim]")),
    "cdna3_mfma_i8": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=32, acc_overflow="wrap",
                      doc="MI300 v_mfma_i32_16x16x32_i8: exact int32 sums, wrapping (assumed: AMD documents "
                          "no saturation)")),
    "cdna2_mfma_i8": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=16, acc_overflow="wrap",
                      doc="MI200 v_mfma_i32_16x16x16i8: exact int32 sums, wrapping (assumed)")),
}


_X86 = "issue 19: recorded on this project's Intel Xeon (numsim.verify.cpu_recorder)"

CPU_PRESETS = {
    "x86_vdpbf16ps": (PairFmaUnit, dict(seed_source=_X86,
                      doc="AVX512-BF16 vdpbf16ps: per fp32 lane, acc + a[odd]*b[odd] then + a[even]*b[even], "
                          "one RNE rounding each, DAZ inputs, FTZ results [recorded here]")),
    "x86_vfmadd231ph": (FloatMacUnit, dict(a_fmt="fp16", b_fmt="fp16", acc_fmt="fp16", k_step=1,
                        order="sequential",
                        doc="AVX512-FP16 vfmadd231ph chain: acc = RNE_fp16(a*b + acc), subnormals kept "
                            "[recorded here]")),
    "x86_vpdpbusd": (IntMMAUnit, dict(a_fmt="uint8", b_fmt="int8", k_step=4, acc_overflow="wrap",
                     doc="AVX512-VNNI vpdpbusd: u8 x s8 quads summed exactly, added modulo 2^32 [recorded here]")),
    "x86_vpdpbusds": (IntMMAUnit, dict(a_fmt="uint8", b_fmt="int8", k_step=4, acc_overflow="saturate",
                      doc="AVX512-VNNI vpdpbusds: as vpdpbusd, the add saturated to int32 [recorded here]")),
    "x86_tdpbssd": (IntMMAUnit, dict(a_fmt="int8", b_fmt="int8", k_step=64, acc_overflow="wrap",
                    doc="AMX-INT8 tdpbssd: exact s8 x s8 sums, int32 modulo 2^32 [recorded here]")),
    "x86_tdpbusd": (IntMMAUnit, dict(a_fmt="uint8", b_fmt="int8", k_step=64, acc_overflow="wrap",
                    doc="AMX-INT8 tdpbusd (u8 x s8) [recorded here]")),
    "x86_tdpbsud": (IntMMAUnit, dict(a_fmt="int8", b_fmt="uint8", k_step=64, acc_overflow="wrap",
                    doc="AMX-INT8 tdpbsud (s8 x u8) [recorded here]")),
    "x86_tdpbuud": (IntMMAUnit, dict(a_fmt="uint8", b_fmt="uint8", k_step=64, acc_overflow="wrap",
                    doc="AMX-INT8 tdpbuud (u8 x u8) [recorded here]")),
}


def tf32_codes_from_fp32(bits):
    """tf32 operand codes of fp32 words as a tensor core reads them: the top 19 bits (the low 13
    fraction bits ignored, i.e. truncation toward zero of the significand)."""
    import numpy as np

    from ..errors import bad

    b = np.asarray(bits)
    if b.dtype != np.uint32:
        raise bad("bits", "a uint32 array of fp32 bit patterns", b.dtype)
    return b >> 13


for _name, (_cls, _params) in {**NVIDIA_PRESETS, **AMD_PRESETS, **CPU_PRESETS}.items():
    _fields = {f.name for f in dataclasses.fields(_cls)}
    preset(_cls, _name, _params["doc"], **{k: v for k, v in _params.items() if k in _fields})
