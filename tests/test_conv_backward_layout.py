"""numsim.gemm's conv2d backward layouts: with exact integer GEMMs, dL/dX and dL/dW from the
im2col arrangements equal the direct sums of the convolution's gradients (no torch needed)."""
import numpy as np
import pytest

import numsim
from numsim.gemm import (ConvGeometry, conv2d_grad_input_gather, conv2d_grad_input_kernel,
                         conv2d_grad_input_patches, conv2d_grad_weight_gather, conv2d_grad_weight_grads,
                         conv2d_grad_weight_patches)

CASES = [  # c, o, h, w, k, stride, padding, dilation, groups
    (3, 4, 6, 5, 3, 1, 1, 1, 1),
    (4, 6, 7, 7, 3, 2, 1, 1, 2),
    (2, 2, 8, 6, 3, 2, 0, 2, 1),
    (4, 4, 5, 5, 1, 1, 0, 1, 4),
    (2, 3, 5, 6, 2, 3, 3, 1, 1),   # padding > dilation * (k - 1): some dL/dY taps touch no input
]


def _direct(x, w, gy, geom):
    """dL/dX and dL/dW of y = conv2d(x, w) by the definition (integer sums)."""
    g = geom
    dx = np.zeros(x.shape, dtype=np.int64)
    dw = np.zeros(w.shape, dtype=np.int64)
    for n in range(g.n):
        for o in range(g.o):
            gi = o // g.og
            for oh in range(g.oh):
                for ow in range(g.ow):
                    gv = int(gy[n, o, oh, ow])
                    for cc in range(g.cg):
                        c = gi * g.cg + cc
                        for i in range(g.kh):
                            for j in range(g.kw):
                                h = oh * g.stride[0] - g.padding[0] + i * g.dilation[0]
                                ww = ow * g.stride[1] - g.padding[1] + j * g.dilation[1]
                                if 0 <= h < g.h and 0 <= ww < g.w:
                                    dx[n, c, h, ww] += gv * int(w[o, cc, i, j])
                                    dw[o, cc, i, j] += gv * int(x[n, c, h, ww])
    return dx, dw


def _codes(v):
    return numsim.encode(v.astype(np.float64), "int4")


@pytest.mark.parametrize("case", CASES)
def test_conv2d_backward_layouts_equal_direct_sums(case):
    c, o, h, w, k, s, p, d, groups = case
    rng = np.random.default_rng(list(case))
    x = rng.integers(-7, 8, (2, c, h, w))
    wt = rng.integers(-7, 8, (o, c // groups, k, k))
    geom = ConvGeometry(2, c, h, w, o, k, k, (s, s), (p, p), (d, d), groups)
    gy = rng.integers(-7, 8, (2, o, geom.oh, geom.ow))
    unit = numsim.get_unit("int4_int32")
    ref_dx, ref_dw = _direct(x, wt, gy, geom)
    parts = [numsim.matmul(a, b, unit).values
             for a, b in zip(conv2d_grad_input_kernel(_codes(wt), geom),
                             conv2d_grad_input_patches(_codes(gy), "int4", geom))]
    assert np.array_equal(conv2d_grad_input_gather(parts, geom), ref_dx)
    parts = [numsim.matmul(a, b, unit).values
             for a, b in zip(conv2d_grad_weight_patches(_codes(x), "int4", geom),
                             conv2d_grad_weight_grads(_codes(gy), geom))]
    assert np.array_equal(conv2d_grad_weight_gather(parts, geom), ref_dw)
