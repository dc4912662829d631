"""numsim.torch: every GEMM of QuantLinear / QuantConv2d equals numsim.matmul / numsim.conv2d on the
same quantized operands, bit for bit; the straight-through estimators; determinism; bad input."""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="numsim.torch needs the optional torch extra")

import numsim  # noqa: E402
import numsim.torch as nt  # noqa: E402
from numsim.torch import adapter, numerics  # noqa: E402
from numsim import NumsimError, QTensor, get_unit  # noqa: E402
from numsim.gemm import ConvGeometry, im2col  # noqa: E402
from numsim.quant.pact import pact_quantize  # noqa: E402
from numsim.quant.sawb import sawb_quantize  # noqa: E402
from numsim.quant.tpr import tpr  # noqa: E402


def _grad_pattern(shape, seed):
    """A dL/dY with the heavy-tailed spread of real gradients (several decades)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(shape) * np.exp(rng.uniform(-6, 0, shape))
    return torch.from_numpy(g.astype(np.float32))


def _run(mod, x, G):
    x = x.clone().requires_grad_(True)
    y = mod(x)
    (y * G).sum().backward()
    return y, x.grad


def _f32(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64)).to(torch.float32)


# ---- QuantLinear, TPR ------------------------------------------------------------------------------

@pytest.mark.parametrize("phases", [2, 1])
def test_linear_tpr_three_gemms_equal_numsim_matmul(phases):
    torch.manual_seed(1)
    lin = nt.QuantLinear(24, 10, bias=False, config={"mode": "tpr", "act_alpha": 2.0, "phases": phases})
    x = torch.rand(13, 24) * 2.5 - 0.2          # some values below 0 and above alpha
    G = _grad_pattern((13, 10), 2)
    y, gx = _run(lin, x, G)
    xn, wn = x.numpy(), lin.weight.detach().numpy()
    # the same quantized operands, built here from the public quantizers
    xq = pact_quantize(xn, 2.0, 4)
    wq = sawb_quantize(wn, 4, "zero_aligned")
    fwd = numsim.matmul(xq, QTensor(wq.codes.T, wq.fmt, wq.scale), get_unit("int4_int32", a_fmt="uint4"))
    assert torch.equal(y, _f32(fwd.values))
    q = tpr(G.numpy())
    g_dx, g_dw = (q.even, q.odd) if phases == 2 else (q.even, q.even)
    dx_unit = get_unit("int4_fp4r4_fp16")
    dw_unit = get_unit("int4_fp4r4_fp16", a_fmt="uint4", phase="odd" if phases == 2 else "even")
    # dL/dX^T = W^T (INT4, the a operand) x FP4_even(dL/dY)^T
    dxq = numsim.matmul(QTensor(wq.codes.T, wq.fmt, wq.scale), QTensor(g_dx.codes.T, g_dx.fmt, g_dx.scale),
                        dx_unit).values.T
    # dL/dW^T = X^T (uint4 PACT codes, the a operand) x FP4_odd(dL/dY)
    dw = numsim.matmul(QTensor(xq.codes.T, xq.fmt, xq.scale), QTensor(g_dw.codes, g_dw.fmt, g_dw.scale),
                       dw_unit).values.T
    assert torch.equal(lin.weight.grad, _f32(dw))
    # PACT's straight-through estimator and alpha gradient, as documented
    inside = (xn >= 0) & (xn < 2.0)
    assert torch.equal(gx, _f32(np.where(inside, dxq, 0.0)))
    assert lin.alpha.grad.item() == np.float32(dxq[xn >= 2.0].sum())
    assert (xn >= 2.0).any() and (xn < 0).any() and np.count_nonzero(dxq) > 0


def test_linear_three_dims_and_bias():
    torch.manual_seed(3)
    lin = nt.QuantLinear(8, 5, bias=True, config={"mode": "tpr", "act_alpha": 1.0})
    x = torch.rand(2, 3, 8)
    y = lin(x)
    y2 = lin(x.reshape(6, 8)).reshape(2, 3, 5)
    assert y.shape == (2, 3, 5) and torch.equal(y, y2)
    xq = pact_quantize(x.reshape(6, 8).numpy(), 1.0)
    wq = sawb_quantize(lin.weight.detach().numpy(), 4, "zero_aligned")
    fwd = numsim.matmul(xq, QTensor(wq.codes.T, wq.fmt, wq.scale), get_unit("int4_int32", a_fmt="uint4"))
    assert torch.equal(y.reshape(6, 5), _f32(fwd.values) + lin.bias.detach())


# ---- QuantConv2d, TPR: the transposed-convolution GEMM built independently ----------------------

def _dgrad_reference_operands(w_codes, g_codes, zero, geom):
    """The dL/dX GEMM operands by explicit loops (slow, obviously right): a[c, (o, i', j')] = W[o, c,
    kh-1-i', kw-1-j'] and b[(o, i', j'), (n, h, w)] = dY[n, o, oh, ow] where h = oh*s - p + i*d."""
    g = geom
    out = []
    for gi in range(g.groups):
        K = g.og * g.kh * g.kw
        a = np.zeros((g.cg, K), dtype=w_codes.dtype)
        b = np.full((K, g.n * g.h * g.w), zero, dtype=g_codes.dtype)
        for c, o, ip, jp in itertools.product(range(g.cg), range(g.og), range(g.kh), range(g.kw)):
            a[c, (o * g.kh + ip) * g.kw + jp] = w_codes[gi * g.og + o, c, g.kh - 1 - ip, g.kw - 1 - jp]
        for o, ip, jp, n, h, w in itertools.product(range(g.og), range(g.kh), range(g.kw), range(g.n), range(g.h),
                                                    range(g.w)):
            i, j = g.kh - 1 - ip, g.kw - 1 - jp
            th, tw = h + g.padding[0] - i * g.dilation[0], w + g.padding[1] - j * g.dilation[1]
            if th % g.stride[0] or tw % g.stride[1]:
                continue
            oh, ow = th // g.stride[0], tw // g.stride[1]
            if 0 <= oh < g.oh and 0 <= ow < g.ow:
                b[(o * g.kh + ip) * g.kw + jp, (n * g.h + h) * g.w + w] = g_codes[n, gi * g.og + o, oh, ow]
        out.append((a, b))
    return out


CONV_CASES = [
    dict(c=3, o=4, k=3, stride=1, padding=1, dilation=1, groups=1, h=6, w=5),
    dict(c=4, o=6, k=3, stride=2, padding=1, dilation=1, groups=2, h=7, w=8),
    dict(c=2, o=3, k=2, stride=3, padding=0, dilation=2, groups=1, h=9, w=7),
    dict(c=4, o=4, k=3, stride=1, padding=2, dilation=1, groups=4, h=5, w=5),   # depthwise
    dict(c=3, o=5, k=1, stride=1, padding=0, dilation=1, groups=1, h=4, w=4),   # pointwise
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_tpr_three_gemms_equal_numsim(case):
    torch.manual_seed(4)
    cfg = {"mode": "tpr", "act_alpha": 1.5}
    conv = nt.QuantConv2d(case["c"], case["o"], case["k"], case["stride"], case["padding"], case["dilation"],
                          case["groups"], bias=False, config=cfg)
    x = torch.rand(2, case["c"], case["h"], case["w"]) * 2.0 - 0.1
    with torch.no_grad():
        yshape = conv(x).shape
    G = _grad_pattern(tuple(yshape), 5)
    y, gx = _run(conv, x, G)
    xn, wn = x.numpy(), conv.weight.detach().numpy()
    xq = pact_quantize(xn, 1.5)
    wq = sawb_quantize(wn, 4, "zero_aligned")
    fwd = numsim.conv2d(xq, wq, get_unit("int4_int32", a_fmt="uint4"), stride=case["stride"],
                        padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    assert torch.equal(y, _f32(fwd.values))
    q = tpr(G.numpy())
    geom = ConvGeometry(2, case["c"], case["h"], case["w"], case["o"], case["k"], case["k"],
                        (case["stride"],) * 2, (case["padding"],) * 2, (case["dilation"],) * 2, case["groups"])
    # dL/dX: INT4 flipped kernel (a) x FP4_even dilated dL/dY patches (b), per group
    dxq = np.zeros(xn.shape)
    for gi, (a, b) in enumerate(_dgrad_reference_operands(wq.codes, q.even.codes, 0, geom)):
        r = numsim.matmul(QTensor(a, wq.fmt, wq.scale), QTensor(b, q.even.fmt, q.scale), get_unit("int4_fp4r4_fp16"))
        dxq[:, gi * geom.cg:(gi + 1) * geom.cg] = r.values.reshape(geom.cg, 2, case["h"], case["w"]).transpose(1, 0, 2, 3)
    assert torch.equal(gx, _f32(np.where((xn >= 0) & (xn < 1.5), dxq, 0.0)))
    assert conv.alpha.grad.item() == np.float32(dxq[xn >= 1.5].sum())
    # dL/dW: im2col(X)^T (uint4, a) x FP4_odd dL/dY (b) through the odd phase, per group
    parts = []
    for gi in range(geom.groups):
        cols, _, _ = im2col(xq.codes[:, gi * geom.cg:(gi + 1) * geom.cg], case["k"], case["k"], geom.stride,
                            geom.padding, geom.dilation)
        a = cols.reshape(-1, cols.shape[-1]).T
        b = q.odd.codes[:, gi * geom.og:(gi + 1) * geom.og].transpose(0, 2, 3, 1).reshape(-1, geom.og)
        r = numsim.matmul(QTensor(a, xq.fmt, xq.scale), QTensor(b, q.odd.fmt, q.scale),
                          get_unit("int4_fp4r4_fp16", a_fmt="uint4", phase="odd"))
        parts.append(r.values.T.reshape(geom.og, geom.cg, case["k"], case["k"]))
    assert torch.equal(conv.weight.grad, _f32(np.concatenate(parts)))


# ---- seed 000 recipe: exact integer GEMMs, so the arrangement equals torch's conv gradients ------

@pytest.mark.parametrize("quantizer", ["ptq", "psq", "shift", "bhq"])
@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_conv_int_recipe_matches_float_math_on_quantized_operands(quantizer, case):
    """The integer accumulators are exact, so dL/dX and dL/dW equal torch's float64 conv gradients of
    the dequantized operands (to float64 rounding of the scales): this pins down the arrangement."""
    torch.manual_seed(6)
    cfg = {"mode": "int", "grad_quantizer": quantizer, "grad_bits": 5}
    conv = nt.QuantConv2d(case["c"], case["o"], case["k"], case["stride"], case["padding"], case["dilation"],
                          case["groups"], bias=False, config=cfg)
    x = torch.randn(3, case["c"], case["h"], case["w"])
    with torch.no_grad():
        yshape = conv(x).shape
    G = _grad_pattern(tuple(yshape), 7)
    y, gx = _run(conv, x, G)
    xq = numerics.sym_quantize(x.numpy(), 8)
    wq = numerics.sym_quantize(conv.weight.detach().numpy(), 8)
    seed = numerics.step_seed(0, 0, 0)
    gq, transform = numerics.quantize_grad(G.numpy(), cfg | nt.MODE_DEFAULTS["int"] | cfg, seed)
    gd = gq.decode()
    if transform is not None:
        gd = transform.inverse(gd.reshape(gd.shape[0], -1)).reshape(gd.shape)
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    X, W, Gd = (torch.from_numpy(v) for v in (xq.decode(), wq.decode(), gd))
    ref_y = torch.nn.functional.conv2d(X, W, **kw)
    ref_dx = torch.nn.grad.conv2d_input(X.shape, W, Gd, **kw)
    ref_dw = torch.nn.grad.conv2d_weight(X, W.shape, Gd, **kw)
    np.testing.assert_allclose(y.detach().double(), ref_y.float().double(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx.double(), ref_dx, rtol=1e-5, atol=1e-6 * float(ref_dx.abs().max()))
    np.testing.assert_allclose(conv.weight.grad.double(), ref_dw, rtol=1e-5, atol=1e-6 * float(ref_dw.abs().max()))


def test_linear_int_shift_dw_equals_sample_shift_unit():
    torch.manual_seed(8)
    cfg = {"mode": "int", "grad_quantizer": "shift", "grad_bits": 4}
    lin = nt.QuantLinear(12, 7, bias=False, config=cfg)
    x = torch.randn(9, 12)
    G = _grad_pattern((9, 7), 9)
    G[3] *= 40.0                                           # samples of very different ranges
    _run(lin, x, G)
    xq = numerics.sym_quantize(x.numpy(), 8)
    gq, _ = numerics.quantize_grad(G.numpy(), nt.MODE_DEFAULTS["int"] | cfg, numerics.step_seed(0, 0, 0))
    assert gq.sample_shift.max() > 0
    qa = QTensor(gq.codes.T, gq.fmt, gq.scale, sample_shift=gq.sample_shift, sample_axis=1)
    r = numsim.matmul(qa, xq, get_unit("int4_int32_sample_shift", a_fmt="int4", b_fmt="int8", widen_bits=32))
    assert torch.equal(lin.weight.grad, _f32(r.values))


# ---- straight-through estimators, gradcheck-style ------------------------------------------------

def test_ste_equals_gradient_of_the_unrounded_surrogate():
    """The documented STE: the backward is that of y = clip(x, 0, alpha) @ W_q^T with the quantized
    upstream GEMM; torch.autograd.gradcheck confirms the surrogate's analytic (x, alpha) gradients
    match finite differences, and the module's gradients equal those analytic formulas."""
    x = torch.tensor([[-0.5, 0.1, 0.7, 1.3, 2.2]], dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    gdx = torch.tensor([[0.3, -1.1, 0.5, 2.0, -0.7]], dtype=torch.float64)

    class Surrogate(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, a):
            ctx.save_for_backward(x, a)
            return torch.minimum(torch.clamp(x, min=0.0), a)

        @staticmethod
        def backward(ctx, g):
            x, a = ctx.saved_tensors
            from numsim.quant.pact import pact_backward

            dx, da = pact_backward(x.detach().numpy(), float(a), g.detach().numpy())
            return torch.from_numpy(dx), torch.tensor([da], dtype=torch.float64)

    assert torch.autograd.gradcheck(lambda x, a: (Surrogate.apply(x, a) * gdx).sum(), (x, alpha), eps=1e-6)


def test_weight_ste_is_identity():
    """dL/dW(float) is the quantized dL/dW unchanged, whatever |w| vs the SAWB clip."""
    torch.manual_seed(10)
    lin = nt.QuantLinear(6, 4, bias=False, config="tpr")
    with torch.no_grad():
        lin.weight[0, 0] = 5.0                              # far outside the SAWB clip
    x = torch.rand(5, 6) * 3
    G = _grad_pattern((5, 4), 11)
    _run(lin, x, G)
    xq = pact_quantize(x.numpy(), 10.0)
    q = tpr(G.numpy())
    r = numsim.matmul(QTensor(xq.codes.T, xq.fmt, xq.scale), q.odd, get_unit("int4_fp4r4_fp16", a_fmt="uint4",
                                                                             phase="odd"))
    assert torch.equal(lin.weight.grad, _f32(r.values.T))
    assert lin.weight.grad[0, 0] != 0


# ---- determinism ---------------------------------------------------------------------------------

def _train_steps(recipe, steps, torch_threads, numsim_threads):
    torch.set_num_threads(torch_threads)
    nt.set_num_threads(numsim_threads)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(6 * 4 * 4, 10))
        model = nt.convert(model, recipe)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            xb = torch.from_numpy(rng.random((16, 1, 8, 8)).astype(np.float32))
            yb = torch.from_numpy(rng.integers(0, 10, 16))
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]
    finally:
        torch.set_num_threads(2)
        nt.set_num_threads(None)


STOCHASTIC_TPR = {"name": "sr", "default": {"mode": "tpr", "threshold": "stochastic", "underflow": "stochastic",
                                            "act_alpha": 1.0}}


@pytest.mark.parametrize("recipe", [STOCHASTIC_TPR, "int8_psq4", "int8_shift4"])
def test_same_seed_same_weights_at_any_thread_count(recipe):
    a = _train_steps(recipe, 3, 1, 1)
    b = _train_steps(recipe, 3, 2, 4)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    c = _train_steps(recipe, 3, 1, 2)
    assert all(torch.equal(p, q) for p, q in zip(a, c))


def test_different_seed_different_weights():
    other = {"name": "sr2", "default": dict(STOCHASTIC_TPR["default"], seed=1)}
    a = _train_steps(STOCHASTIC_TPR, 2, 1, 1)
    b = _train_steps(other, 2, 1, 1)
    assert not all(torch.equal(p, q) for p, q in zip(a, b))


# ---- convert and recipes -----------------------------------------------------------------------

def _mobile_net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),                  # first
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),        # depthwise
        torch.nn.Conv2d(8, 16, 1),                            # pointwise
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 12),
        torch.nn.Linear(12, 10))                              # last


def test_convert_overrides_follow_seed_003():
    QL, QC = nt.QuantLinear, nt.QuantConv2d
    m = nt.convert(_mobile_net(), "tpr4")
    assert type(m[0]) is torch.nn.Conv2d and type(m[1]) is torch.nn.Conv2d and type(m[6]) is torch.nn.Linear
    assert isinstance(m[2], QC) and m[2].numsim_cfg["mode"] == "int" and m[2].numsim_cfg["grad_bits"] == 8
    assert isinstance(m[3], QC) and m[3].numsim_cfg["mode"] == "tpr"
    assert isinstance(m[5], QL) and m[5].numsim_cfg["mode"] == "tpr"
    x = torch.rand(2, 3, 4, 4)
    m(x).sum().backward()
    assert m[3].weight.grad is not None and m[3].alpha.grad is not None
    one = nt.convert(_mobile_net(), "tpr4_one_phase")
    assert one[3].numsim_cfg["phases"] == 1
    # per-layer overrides by name beat the class rules; the original model is untouched
    base = _mobile_net()
    m2 = nt.convert(base, {"default": "tpr", "layers": {"3": "float", "6": {"mode": "int", "grad_bits": 6}}})
    assert type(m2[3]) is torch.nn.Conv2d and m2[6].numsim_cfg["grad_bits"] == 6 and isinstance(m2[0], QC)
    assert type(base[0]) is torch.nn.Conv2d


def test_convert_keeps_the_function():
    torch.manual_seed(12)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    m = nt.convert(ref, "int8_ptq8")
    x = torch.randn(4, 6)
    assert torch.allclose(m(x), ref(x), atol=0.05)
    assert all(torch.equal(a, b) for a, b in zip(m[0].parameters(), ref[0].parameters()))


def test_toml_recipe(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('name = "mine"\ndefault = "tpr"\nlast = "float"\n[first]\nmode = "int"\ngrad_quantizer = "bhq"\n'
                 'grad_bits = 4\n[layers.3]\nphases = 1\n')
    r = nt.load_recipe(str(p))
    assert r["name"] == "mine" and r["first"]["grad_quantizer"] == "bhq" and r["layers"]["3"]["phases"] == 1
    m = nt.convert(_mobile_net(), str(p))
    assert m[0].numsim_cfg["mode"] == "int" and m[3].numsim_cfg["phases"] == 1 and type(m[6]) is torch.nn.Linear


def test_import_numsim_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, numsim, numsim.torch; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(numsim.__file__).parents[1]))


# ---- bad input -------------------------------------------------------------------------------------

def test_bad_input():
    lin = nt.QuantLinear(4, 3)
    with pytest.raises(NumsimError, match="input: expected a float32 or float64"):
        lin(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(NumsimError, match="no GPU backend"):
        lin(torch.empty(2, 4, device="meta"))
    with pytest.raises(NumsimError, match=r"input: expected \(\.\.\., 4\)"):
        lin(torch.ones(2, 5))
    conv = nt.QuantConv2d(2, 3, 3)
    with pytest.raises(NumsimError, match="input"):
        conv(torch.ones(2, 3, 5, 5))
    with pytest.raises(NumsimError, match="unsupported module type Conv1d"):
        nt.convert(torch.nn.Sequential(torch.nn.Conv1d(2, 2, 3)), "tpr4")
    with pytest.raises(NumsimError, match="unsupported module type BatchNorm2d"):
        nt.convert(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3), torch.nn.BatchNorm2d(2)),
                   {"default": "tpr", "layers": {"1": "tpr"}})
    with pytest.raises(NumsimError, match="model: expected a torch.nn.Module"):
        nt.convert("not a model", "tpr4")
    with pytest.raises(NumsimError, match="recipe: expected a recipe name"):
        nt.convert(torch.nn.Linear(2, 2), "no_such_recipe")
    with pytest.raises(NumsimError, match="recipe.default.phases"):
        nt.load_recipe({"default": {"mode": "tpr", "phases": 3}})
    with pytest.raises(NumsimError, match="recipe.default.bogus"):
        nt.load_recipe({"default": {"mode": "int", "bogus": 1}})
    with pytest.raises(NumsimError, match="recipe.extra"):
        nt.load_recipe({"default": "tpr", "extra": 1})
    with pytest.raises(NumsimError, match="padding_mode"):
        nt.convert(torch.nn.Conv2d(2, 2, 3, padding_mode="reflect"), "tpr4_all")
    # a Conv1d marked float is allowed
    m = nt.convert(torch.nn.Sequential(torch.nn.Conv1d(2, 2, 3), torch.nn.Linear(2, 2)),
                   {"default": "tpr", "layers": {"0": "float"}})
    assert type(m[0]) is torch.nn.Conv1d and isinstance(m[1], nt.QuantLinear)


def test_negative_alpha_uses_the_floor():
    lin = nt.QuantLinear(4, 3, bias=False, config={"mode": "tpr", "act_alpha_min": 0.25})
    with torch.no_grad():
        lin.alpha.fill_(-1.0)
    x = torch.rand(5, 4)
    y = lin(x)
    xq = pact_quantize(x.numpy(), 0.25)
    wq = sawb_quantize(lin.weight.detach().numpy(), 4, "zero_aligned")
    fwd = numsim.matmul(xq, QTensor(wq.codes.T, wq.fmt, wq.scale), get_unit("int4_int32", a_fmt="uint4"))
    assert torch.equal(y, _f32(fwd.values))


def test_fp16_overflow_raises_and_wgrad_split_sums_fp16_tiles():
    """A reduction whose true sum exceeds FP16's range raises a clear error; wgrad_split runs each
    slice of the dL/dW reduction through the unit and adds the slices' values in float64, in order."""
    torch.manual_seed(13)
    x = torch.full((2048, 3), 0.95)                      # PACT code 15 everywhere (alpha 1)
    G = torch.ones(2048, 2)                              # FP4 top code everywhere: 2048 * 15 * 64 > 65504
    lin = nt.QuantLinear(3, 2, bias=False, config={"mode": "tpr", "act_alpha": 1.0})
    with pytest.raises(NumsimError, match="dL/dW GEMM overflowed"):
        _run(lin, x, G)
    split = nt.QuantLinear(3, 2, bias=False, config={"mode": "tpr", "act_alpha": 1.0, "wgrad_split": 512})
    split.load_state_dict(lin.state_dict())
    G2 = _grad_pattern((2048, 2), 14)
    _run(split, x, G2)
    xq = pact_quantize(x.numpy(), 1.0)
    q = tpr(G2.numpy())
    unit = get_unit("int4_fp4r4_fp16", a_fmt="uint4", phase="odd")
    total = None
    for k0 in range(0, 2048, 512):
        v = numsim.matmul(QTensor(xq.codes[k0:k0 + 512].T, xq.fmt, xq.scale),
                          QTensor(q.odd.codes[k0:k0 + 512], q.odd.fmt, q.scale), unit).values
        total = v if total is None else total + v
    assert torch.equal(split.weight.grad, _f32(total.T))


def test_recipe_nthreads_does_not_change_bits():
    torch.manual_seed(15)
    base = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    m1 = nt.convert(base, {"default": {"mode": "tpr", "act_alpha": 1.0}, "nthreads": 1})
    m3 = nt.convert(base, {"default": {"mode": "tpr", "act_alpha": 1.0}, "nthreads": 3})
    assert m1[0].numsim_cfg["nthreads"] == 1 and m3[2].numsim_cfg["nthreads"] == 3
    x = torch.rand(40, 16)
    G = _grad_pattern((40, 4), 16)
    for m in (m1, m3):
        _run(m, x, G)
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(m1.parameters(), m3.parameters()))


def test_float_tensors_cross_through_dlpack_without_copies():
    t = torch.rand(5, 7)
    a = adapter._to_numpy(t, "input")
    assert a.__array_interface__["data"][0] == t.data_ptr()
    r = np.arange(6, dtype=np.float64).reshape(2, 3)
    back = adapter._to_torch(r, torch.empty(0, dtype=torch.float64))
    assert back.data_ptr() == r.__array_interface__["data"][0]
    # and numsim.matmul takes torch tensors of codes and answers in torch
    codes = torch.randint(0, 16, (3, 4), dtype=torch.uint8)
    res = numsim.matmul(codes, torch.randint(0, 16, (4, 2), dtype=torch.uint8), "int4_int32")
    assert isinstance(res.values, torch.Tensor)
