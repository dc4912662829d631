"""numsim: a bit-accurate simulator of low-precision deep-learning arithmetic hardware."""
from .errors import NumsimError, NumsimWarning
from .formats import FloatFormat, IntFormat, REGISTRY as FORMATS, get_format
from .codec import decode, encode, quantize
from .qtensor import QTensor
from .units import (FloatMacUnit, FusedDotUnit, Int4Fp4r4Unit, IntMacUnit, IntMMAUnit, RequantInt8, SampleShiftUnit,
                    get_unit, unit_names)
from .units.runtime_stage import OutputStage, output_stage
from .gemm import MatmulResult, conv2d, matmul
from . import fpops
from . import block

__version__ = "0.1.0"

__all__ = ["NumsimError", "NumsimWarning", "FloatFormat", "IntFormat", "FORMATS", "get_format", "encode", "decode", "quantize",
           "QTensor", "get_unit", "unit_names", "matmul", "conv2d", "MatmulResult", "IntMacUnit", "SampleShiftUnit",
           "FloatMacUnit", "Int4Fp4r4Unit", "RequantInt8", "FusedDotUnit", "IntMMAUnit", "fpops", "block",
           "OutputStage", "output_stage"]
