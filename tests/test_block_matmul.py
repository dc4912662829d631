"""numsim.matmul on BlockTensors (issue 17): both operands blocked along K through a block-scaled unit;
the exact OCP dot equals the float64-exact product of the decoded blocks; bad operands name the argument."""
import dataclasses

import numpy as np
import pytest

import numsim
from numsim import NumsimError
from numsim.block import quantize_blocks


def test_matmul_on_block_tensors():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    w = rng.standard_normal((64, 3)).astype(np.float32)
    a = quantize_blocks(x, "mxfp4", "ocp", axis=1)
    b = quantize_blocks(w, "mxfp4", "ocp", axis=0)
    r = numsim.matmul(a, b, "ocp_mxfp4_dot")
    want = np.float32(a.decode() @ b.decode())        # exact in float64 here (few bits), one rounding
    assert np.array_equal(np.asarray(r.values, np.float32), want)
    a4 = quantize_blocks(x, "nvfp4", "nvfp4", axis=1)
    b4 = quantize_blocks(w, "nvfp4", "nvfp4", axis=0)
    r4 = numsim.matmul(a4, b4, "blackwell_tcgen05_mxf4nvf4_block16")
    assert r4.info["kernel"] == ["block_dot.numpy"]
    assert r4.scale == a4.tensor_scale * b4.tensor_scale
    assert np.allclose(r4.values, a4.decode() @ b4.decode(), rtol=1e-5, atol=1e-6)


def test_matmul_block_tensor_errors_name_the_argument():
    rng = np.random.default_rng(4)
    a = quantize_blocks(rng.standard_normal((2, 64)).astype(np.float32), "mxfp8_e4m3", "ocp", axis=1)
    b = quantize_blocks(rng.standard_normal((64, 2)).astype(np.float32), "mxfp8_e4m3", "ocp", axis=0)
    u = "blackwell_tcgen05_mxf8f6f4_block32"
    assert numsim.matmul(a, b, u).codes.shape == (2, 2)
    with pytest.raises(NumsimError, match="^b:"):
        numsim.matmul(a, b.elem_codes, u)
    with pytest.raises(NumsimError, match="a.scale_codes"):
        numsim.matmul(dataclasses.replace(a, scale_codes=a.scale_codes[:, :1]), b, u)
    with pytest.raises(NumsimError, match="b.scale_codes"):
        numsim.matmul(a, b, numsim.get_unit(u, b_scale_fmt="ue4m3"))
    with pytest.raises(NumsimError, match="^a:"):
        bad = dataclasses.replace(a, elem_codes=np.zeros((2, 48), np.uint8), scale_codes=np.zeros((2, 1), np.uint8))
        numsim.matmul(bad, b, u)
    with pytest.raises(NumsimError, match="unit"):
        numsim.matmul(a, b, "fp16_fp32")
