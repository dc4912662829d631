"""numsim.conv2d for device tensors: im2col on the device (torch's unfold on the codes held exactly
in float64, padding with the format's zero code), then numsim.gpu.matmul per group; results stay on
the device. Code tensors only (QTensor scales and an initial accumulator c: CPU path only, for now)."""
from __future__ import annotations

import numpy as np

from ..codec import encode
from ..errors import NumsimError, bad
from ..units import get_unit


def conv2d(x, w, unit, stride=1, padding=0, dilation=1, groups=1, c=None):
    import torch
    import torch.nn.functional as F

    from ..gemm import MatmulResult
    from .entry import _device_tensor, matmul

    unit = get_unit(unit)
    if c is not None:
        raise NumsimError("c: an initial accumulator for conv2d on device tensors is not supported yet "
                          "(numsim.gpu.conv2d); move the tensors to the CPU")
    x = _device_tensor(x, "x")
    w = _device_tensor(w, "w").to(x.device)
    if x.ndim != 4 or w.ndim != 4:
        raise bad("x, w", "(N, C, H, W) and (O, C/groups, kh, kw) code tensors", f"{tuple(x.shape)}, {tuple(w.shape)}")
    pair = lambda v: (int(v), int(v)) if np.isscalar(v) else tuple(int(t) for t in v)   # noqa: E731
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    nb, cin, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if cin % groups or o % groups or cg != cin // groups:
        raise NumsimError(f"w: shape {tuple(w.shape)} does not fit x with {cin} channels and groups={groups}")
    pad_code = int(encode(np.zeros(1), unit.a_fmt)[0])
    xf = x.to(torch.float64)          # codes (< 2^32) are exact in float64
    if padding[0] or padding[1]:
        xf = F.pad(xf, (padding[1], padding[1], padding[0], padding[0]), value=float(pad_code))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise NumsimError(f"x: input {h}x{wd} is too small for kernel {kh}x{kw}")
    og = o // groups
    codes, values, overflow, kernels = [], [], 0, []
    for g in range(groups):
        xg = xf[:, g * cg:(g + 1) * cg]
        cols = F.unfold(xg, (kh, kw), dilation=dilation, stride=stride)      # (N, cg*kh*kw, L), (c, i, j) order
        A = cols.transpose(1, 2).reshape(nb * oh * ow, cg * kh * kw).to(torch.int64)
        B = w[g * og:(g + 1) * og].reshape(og, cg * kh * kw).t().to(torch.int64)
        r = matmul(A, B, unit)
        codes.append(r.codes.reshape(nb, oh, ow, og).permute(0, 3, 1, 2))
        values.append(r.acc_values.reshape(nb, oh, ow, og).permute(0, 3, 1, 2))
        overflow += r.overflow_count
        kernels += r.info.get("kernel", [])
    cc = torch.cat(codes, 1).contiguous()
    vv = torch.cat(values, 1).contiguous()
    return MatmulResult(codes=cc, values=vv, acc_values=vv, scale=np.float64(1.0), overflow_count=overflow,
                        out_codes=None, out_fmt=getattr(unit, "out_fmt", None), unit=unit, info={"kernel": kernels})
