"""numsim.matmul on BlockTensors: a (M, K) blocked along K (axis 1), b (K, N) blocked along K (axis 0),
through a block-scaled dot unit (numsim.units.block_dot.BlockDotUnit); the FP32 tensor scales (NVFP4)
multiply the accumulator values once (values = acc_values * scale), the codes are the unit's."""
from __future__ import annotations

import numpy as np

from ..errors import NumsimError, bad
from .tensor import BlockTensor


def _check(x, arg, axis, unit, which):
    if not isinstance(x, BlockTensor):
        raise bad(arg, "a BlockTensor (both operands block-scaled along K)", type(x).__name__)
    if x.elem_codes.ndim != 2 or x.axis != axis:
        raise bad(arg, f"a 2-D BlockTensor blocked along axis {axis} (K)",
                  f"shape {x.elem_codes.shape}, axis {x.axis}")
    k = x.kind
    fmt = getattr(unit, f"{which}_fmt")
    sfmt = getattr(unit, f"{which}_scale_fmt")
    if k.elem_fmt.name != fmt.name:
        raise bad(arg, f"elements of {fmt.name} (unit {unit.name})", k.elem_fmt.name)
    if k.scale_fmt.name != sfmt.name:
        raise bad(f"{arg}.scale_codes", f"{sfmt.name} scales (unit {unit.name})", k.scale_fmt.name)
    if k.block_size != unit.block_size:
        raise bad(arg, f"blocks of {unit.block_size} (unit {unit.name})", k.block_size)
    K = x.elem_codes.shape[axis]
    if K % k.block_size:
        raise bad(arg, f"K a multiple of the block size {k.block_size}", K)
    want = list(x.elem_codes.shape)
    want[axis] = K // k.block_size
    if tuple(x.scale_codes.shape) != tuple(want):
        raise bad(f"{arg}.scale_codes", f"shape {tuple(want)} (one scale per block)", tuple(x.scale_codes.shape))


def block_matmul(a, b, unit, c=None, nthreads=None):
    from ..gemm import MatmulResult
    from ..units.block_dot import BlockDotUnit

    if not isinstance(unit, BlockDotUnit):
        raise bad("unit", "a block-scaled dot unit (BlockDotUnit) for BlockTensor operands", type(unit).__name__)
    _check(a, "a", 1, unit, "a")
    _check(b, "b", 0, unit, "b")
    if a.elem_codes.shape[1] != b.elem_codes.shape[0]:
        raise NumsimError(f"a, b: reduction lengths differ: {a.elem_codes.shape[1]} and {b.elem_codes.shape[0]}")
    res = unit.gemm_codes(a.elem_codes, b.elem_codes, c=c, nthreads=nthreads,
                          block_scale_a=a.scale_codes, block_scale_b=b.scale_codes)
    scale = (1.0 if a.tensor_scale is None else float(a.tensor_scale)) * \
        (1.0 if b.tensor_scale is None else float(b.tensor_scale))
    return MatmulResult(codes=res.codes, values=res.values * scale, acc_values=res.values, scale=scale,
                        overflow_count=res.overflow_count, info={"kernel": [res.info.get("kernel")]})
