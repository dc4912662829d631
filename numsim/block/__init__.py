"""Block-scaled formats: OCP MX (MXFP8/6/4, MXINT8) and NVFP4 (docs/block.md)."""
from .scale import E8M0, SCALE_FORMATS, UE4M3, UE5M3, ScaleFormat, get_scale_format
from .tensor import KINDS, BlockKind, BlockTensor, get_kind
from .quant import POLICIES, BlockPolicy, get_policy, quantize_blocks

__all__ = ["ScaleFormat", "E8M0", "UE4M3", "UE5M3", "SCALE_FORMATS", "get_scale_format", "BlockKind",
           "BlockTensor", "KINDS", "get_kind", "BlockPolicy", "POLICIES", "get_policy", "quantize_blocks"]
