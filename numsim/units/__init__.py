"""MAC units by concept (see docs/architecture.md, "Units and kernels").

- base: the unit protocol, DotResult / GemmResult, the initial-accumulator convention, the thread rule
- registry: register_unit / get_unit / unit_names, the one override path
- int_mac (IntMacUnit), sample_shift (SampleShiftUnit), float_mac (FloatMacUnit, Int4Fp4r4Unit),
  fused_adder (FusedDotUnit), int_mma (IntMMAUnit), output_stage (RequantInt8),
  runtime_stage (OutputStage, output_stage(preset, ...): deployed runtimes' output stages; not
  re-exported here, where output_stage names the module)
- _c: the C glue they share; presets_seeds, presets_h100: the named presets
The kernels that run a unit's GEMM are plug-ins in numsim.kernels.
"""
from .base import DotResult, GemmResult, Unit, acc_code, acc_codes, threads
from .registry import _REGISTRY, get_unit, register_unit, unit_doc, unit_names
from .output_stage import RequantInt8
from .runtime_stage import OutputStage
from .int_mac import IntMacUnit
from .sample_shift import SampleShiftUnit
from .float_mac import FloatMacUnit, Int4Fp4r4Unit, odd_phase_departures, odd_phase_trick
from .fused_adder import FusedDotUnit, mod_split_permutation
from .int_mma import IntMMAUnit

__all__ = ["DotResult", "GemmResult", "Unit", "acc_code", "acc_codes", "threads", "get_unit", "register_unit",
           "unit_doc", "unit_names", "RequantInt8", "IntMacUnit", "SampleShiftUnit", "FloatMacUnit", "Int4Fp4r4Unit",
           "odd_phase_departures", "odd_phase_trick", "FusedDotUnit", "mod_split_permutation", "IntMMAUnit",
           "OutputStage"]
