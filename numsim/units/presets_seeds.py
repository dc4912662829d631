"""The seeds' presets (registered on first use of the registry)."""
from .float_mac import FloatMacUnit, Int4Fp4r4Unit
from .int_mac import IntMacUnit
from .output_stage import RequantInt8
from .registry import preset
from .sample_shift import SampleShiftUnit

preset(IntMacUnit, "int4_int32", "seed 001: INT4 x INT4 -> 8b -> 16b << align_shift -> INT32")
preset(IntMacUnit, "int4_int32_requant", "int4_int32 followed by the requant_int8 output stage",
       output_stage=RequantInt8())
preset(SampleShiftUnit, "int4_int32_sample_shift", "seed 000: per-sample shifts in [0, 4] before the final sum")
preset(Int4Fp4r4Unit, "int4_fp4r4_fp16", "seed 003: 4-way INT4 x FP4 (radix 4) into FP16; phase even|odd")
preset(FloatMacUnit, "fp8_fp16", "e4m3 x e4m3 into FP16, chunked accumulation (chunk 64)")
preset(FloatMacUnit, "fp16_fp32", "FP16 x FP16 into FP32, chunked accumulation (chunk 64)",
       a_fmt="fp16", b_fmt="fp16", acc_fmt="fp32")
