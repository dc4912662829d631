"""numsim.torch's op-level interception (numsim.torch.simulate / convert with an "ops" section).

Each intercepted op's forward and backward equal numsim.matmul (numsim.conv2d and numsim.gemm's
conv-backward layouts for conv2d) on the same quantized operands, bit for bit; models with
nn.MultiheadAttention / nn.TransformerEncoderLayer report every GEMM simulated; results do not
depend on thread counts; bad input raises NumsimError; float GEMMs warn.
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import numsim  # noqa: E402
import numsim.torch as nt  # noqa: E402
from numsim import NumsimError, QTensor  # noqa: E402
from numsim.gemm import (ConvGeometry, conv2d_grad_input_gather, conv2d_grad_input_kernel,  # noqa: E402
                         conv2d_grad_input_patches, conv2d_grad_weight_gather, conv2d_grad_weight_grads,
                         conv2d_grad_weight_patches)
from numsim.torch.numerics import gemm_unit, quantize_operand, step_seed  # noqa: E402
from numsim.torch.recipes import GEMM_PRESETS, gemm_spec  # noqa: E402

SPECS = {name: gemm_spec(name, "test") for name in ("int8", "fp8")}


def _q(x, spec, k, grad=False, seed=0, side="a"):
    u0 = gemm_unit(spec)
    return quantize_operand(x, u0.a_fmt if side == "a" else u0.b_fmt, k, u0.acc_fmt, grad, seed)


def ref_gemm(a, b, spec, grad_side=None, seed=0):
    """numsim.matmul on the quantized operands: the reference every intercepted GEMM must equal."""
    k = a.shape[-1]
    qa = _q(a, spec, k, grad_side == "a", seed, "a")
    qb = _q(b, spec, k, grad_side == "b", seed, "b")
    return np.asarray(numsim.matmul(qa, qb, gemm_unit(spec, qa.fmt, qb.fmt)).values)


def _np(t):
    return t.detach().double().numpy()


def _same(t, ref):
    """Bit equality of a torch result with a float64 reference cast to the result's dtype."""
    expect = torch.from_numpy(np.ascontiguousarray(ref)).to(t.dtype)
    assert t.dtype == expect.dtype and t.shape == expect.shape
    assert torch.equal(t, expect), float((t.double() - expect.double()).abs().max())


def _t(*shape, seed=0, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_(True)


S0 = step_seed(0, 0, 0)   # the gradient seed of the first op's first backward (recipe seed 0)


@pytest.mark.parametrize("preset", ["int8", "fp8"])
def test_linear_forward_backward_bit_exact(preset):
    spec = SPECS[preset]
    x, w, b = _t(6, 5, 8, seed=1), _t(7, 8, seed=2, scale=0.2), _t(7, seed=3)
    gy = torch.randn(6, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 1e-2
    with nt.simulate(None, {"ops": {"default": preset}}) as rep:
        y = F.linear(x, w, b)
    y.backward(gy)
    xs, ws, gs = _np(x).reshape(-1, 8), _np(w), _np(gy).reshape(-1, 7)
    _same(y, (ref_gemm(xs, ws.T, spec) + 0).reshape(6, 5, 7) + _np(b))
    _same(x.grad, ref_gemm(gs, ws, spec, "a", S0).reshape(6, 5, 8))
    _same(w.grad, ref_gemm(xs.T, gs, spec, "b", S0).T)
    assert torch.allclose(b.grad, gy.sum((0, 1)))
    (row,) = [r for r in rep.rows if r["role"] == "weight"]
    assert row["kind"] == "linear" and row["calls"] == 1 and row["unit"].startswith(spec["unit"])
    assert not rep.unsimulated()


@pytest.mark.parametrize("op", ["matmul", "@", "bmm", "mm", "addmm", "baddbmm", "rmatmul_param"])
def test_gemm_ops_forward_backward_bit_exact(op):
    spec = SPECS["int8"]
    three = op in ("matmul", "@", "bmm", "baddbmm")
    a = _t(3, 4, 6, seed=1) if three else _t(4, 6, seed=1)
    b = _t(3, 6, 5, seed=2) if three else _t(6, 5, seed=2)
    c = _t(*(a.shape[:-1] + (5,)), seed=3)
    with nt.simulate(None, "ops_int8") as rep:
        if op == "matmul":
            y = torch.matmul(a, b)
        elif op == "@":
            y = a @ b
        elif op == "bmm":
            y = torch.bmm(a, b)
        elif op == "mm":
            y = a.mm(b)
        elif op == "addmm":
            y = torch.addmm(c, a, b, beta=0.5, alpha=2.0)
        elif op == "baddbmm":
            y = torch.baddbmm(c, a, b)
        else:   # a Parameter on the right of @: the weight role
            b = torch.nn.Parameter(b.detach())
            y = a @ b
    gy = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y.backward(gy)
    an, bn, gn = _np(a), _np(b), _np(gy)
    if op == "addmm":
        gn = 2.0 * gn   # alpha scales the GEMM's output: its gradient arrives scaled (torch's float op)
    g = ref_gemm(an, bn, spec)
    if op == "addmm":
        _same(y, 0.5 * _np(c) + 2.0 * g)
    elif op == "baddbmm":
        _same(y, _np(c) + g)
    else:
        _same(y, g)
    _same(a.grad, ref_gemm(gn, np.swapaxes(bn, -1, -2), spec, "a", S0))
    _same(b.grad, ref_gemm(np.swapaxes(an, -1, -2), gn, spec, "b", S0))
    role = "weight" if op == "rmatmul_param" else "act_act"
    assert {r["role"] for r in rep.rows} == ({role, "grad_input", "grad_weight"} if role == "weight"
                                             else {role, "grad_input"})
    assert all(r["simulated"] and r["calls"] >= 1 for r in rep.rows)


def test_conv2d_forward_backward_bit_exact():
    spec = SPECS["int8"]
    x, w, bias = _t(2, 4, 6, 6, seed=1), _t(6, 2, 3, 3, seed=2, scale=0.3), _t(6, seed=3)
    with nt.simulate(None, "ops_int8"):
        y = F.conv2d(x, w, bias, stride=2, padding=1, groups=2)
    gy = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y.backward(gy)
    geom = ConvGeometry(2, 4, 6, 6, 6, 3, 3, (2, 2), (1, 1), (1, 1), 2)
    u0 = gemm_unit(spec)
    qx = quantize_operand(_np(x), u0.a_fmt, 18, u0.acc_fmt)
    qw = quantize_operand(_np(w), u0.b_fmt, 18, u0.acc_fmt)
    fwd = numsim.conv2d(qx, qw, gemm_unit(spec, qx.fmt, qw.fmt), stride=2, padding=1, groups=2)
    _same(y, np.asarray(fwd.values) + _np(bias).reshape(1, -1, 1, 1))
    # dL/dX: flipped kernel x patches of dL/dY, one GEMM per group
    qw2 = quantize_operand(_np(w), u0.a_fmt, 3 * 9, u0.acc_fmt)
    qg = quantize_operand(_np(gy), u0.b_fmt, 3 * 9, u0.acc_fmt, True, S0)
    u = gemm_unit(spec, qw2.fmt, qg.fmt)
    parts = [np.asarray(numsim.matmul(QTensor(a, qw2.fmt, qw2.scale), QTensor(b, qg.fmt, qg.scale), u).values)
             for a, b in zip(conv2d_grad_input_kernel(qw2.codes, geom),
                             conv2d_grad_input_patches(qg.codes, qg.fmt, geom))]
    _same(x.grad, conv2d_grad_input_gather(parts, geom))
    # dL/dW: dL/dY^T x im2col(X), reduction over (n, oh, ow)
    k = 2 * 3 * 3
    qg = quantize_operand(_np(gy), u0.a_fmt, k, u0.acc_fmt, True, S0)
    qx2 = quantize_operand(_np(x), u0.b_fmt, k, u0.acc_fmt)
    u = gemm_unit(spec, qg.fmt, qx2.fmt)
    parts = [np.asarray(numsim.matmul(QTensor(a.T, qg.fmt, qg.scale), QTensor(b.T, qx2.fmt, qx2.scale), u).values).T
             for a, b in zip(conv2d_grad_weight_grads(qg.codes, geom),
                             conv2d_grad_weight_patches(qx2.codes, qx2.fmt, geom))]
    _same(w.grad, conv2d_grad_weight_gather(parts, geom))


class _RefGemm(torch.autograd.Function):
    """The test's own reference GEMM with autograd: numsim.matmul on quantized operands."""

    @staticmethod
    def forward(ctx, a, b, spec, seed):
        ctx.save_for_backward(a, b)
        ctx.spec, ctx.seed = spec, seed
        return torch.from_numpy(ref_gemm(_np(a), _np(b), spec))

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved_tensors
        gn = _np(gy)
        return (torch.from_numpy(ref_gemm(gn, np.swapaxes(_np(b), -1, -2), ctx.spec, "a", ctx.seed)),
                torch.from_numpy(ref_gemm(np.swapaxes(_np(a), -1, -2), gn, ctx.spec, "b", ctx.seed)), None, None)


@pytest.mark.parametrize("preset", ["int8", "fp8"])
@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float"])
def test_sdpa_decomposed_bit_exact(preset, mask):
    spec = SPECS[preset]
    q, k, v = _t(2, 3, 5, 4, seed=1), _t(2, 3, 7 if mask != "causal" else 5, 4, seed=2), None
    v = _t(2, 3, k.shape[-2], 4, seed=3)
    L, S = q.shape[-2], k.shape[-2]
    kw = {}
    m = None
    if mask == "causal":
        kw["is_causal"] = True
    elif mask == "bool":
        m = torch.rand(L, S, generator=torch.Generator().manual_seed(6)) > 0.3
        m[:, 0] = True
        kw["attn_mask"] = m
    elif mask == "float":
        m = torch.randn(L, S, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
        kw["attn_mask"] = m
    with nt.simulate(None, {"ops": {"default": preset}}) as rep:
        o = F.scaled_dot_product_attention(q, k, v, **kw)
    go = torch.randn(o.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    o.backward(go)
    # the reference: the same decomposition with the test's own GEMM (sites: qk index 0, pv index 1)
    q2, k2, v2 = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    bq, bk, bv = (t.reshape(-1, *t.shape[-2:]) for t in (q2, k2, v2))
    s = _RefGemm.apply(bq, bk.transpose(-2, -1), spec, step_seed(0, 0, 0)).reshape(2, 3, L, S) * (1 / 2.0)
    if mask == "causal":
        s = s.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    elif mask == "bool":
        s = s.masked_fill(~m, float("-inf"))
    elif mask == "float":
        s = s + m
    p = torch.softmax(s, -1)
    o2 = _RefGemm.apply(p.reshape(-1, L, S), bv, spec, step_seed(0, 1, 0)).reshape(o.shape)
    o2.backward(go)
    assert torch.equal(o, o2)
    for t, t2 in ((q, q2), (k, k2), (v, v2)):
        assert torch.equal(t.grad, t2.grad)
    assert {r["kind"] for r in rep.rows} == {"sdpa.qk", "sdpa.pv"} and not rep.unsimulated()
    assert ("", "softmax") in rep.float_ops


def _every_gemm_simulated(rep, kinds):
    assert not rep.unsimulated(), rep.unsimulated()
    got = {r["kind"].split("[")[0] for r in rep.rows}
    assert kinds <= got, got


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_every_gemm_simulated(need_weights):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8, requires_grad=True)
    with nt.simulate(mha, "ops_fp8_attention_int4_weights") as rep:
        y, _ = mha(x, x, x, need_weights=need_weights)
    y.sum().backward()
    assert x.grad is not None and mha.in_proj_weight.grad is not None and mha.out_proj.weight.grad is not None
    kinds = {"linear", "sdpa.qk", "sdpa.pv"} if not need_weights else {"linear", "bmm"}
    _every_gemm_simulated(rep, kinds)
    by_role = {(r["kind"], r["role"]): r for r in rep.rows}
    # the recipe: weight GEMMs INT4, attention (activation x activation) GEMMs FP8 with an FP16 accumulator
    assert by_role[("linear", "weight")]["unit"].startswith("int4_int32(int4")
    assert by_role[("linear[1]", "weight")]["unit"].startswith("int4_int32(int4")   # out_proj
    att = [r for r in rep.rows if r["role"] == "act_act"]
    assert len(att) == 2 and all(r["unit"].startswith("fp8_fp16(fp8_e4m3fn") and r["unit"].endswith("fp16)")
                                 for r in att)
    assert all(r["unit"].startswith("int4_int32(int8") for r in rep.rows if r["role"].startswith("grad"))


def test_transformer_encoder_layer_eval_and_train():
    torch.manual_seed(0)
    enc = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    x = torch.randn(2, 4, 8)
    enc.eval()   # eval + no_grad is where torch takes its fused fast path: the mode turns it off
    with torch.no_grad(), nt.simulate(enc, "ops_int8") as rep:
        enc(x)
    _every_gemm_simulated(rep, {"linear", "sdpa.qk", "sdpa.pv"})
    assert {r["path"] for r in rep.rows} == {"self_attn", "linear1", "linear2"}
    assert ("norm1", "layer_norm") in rep.float_ops
    enc.train()   # dropout 0.1 inside the attention: torch's dropout between the two GEMMs
    with nt.simulate(enc, "ops_int8") as rep:
        enc(x).sum().backward()
    _every_gemm_simulated(rep, {"linear", "sdpa.qk", "sdpa.pv"})
    assert ("self_attn", "dropout") in rep.float_ops
    assert "int4_int32" in str(rep)


def _tiny_lm(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Embedding(11, 8),
                               torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                               torch.nn.Linear(8, 11))


def test_convert_with_ops_section_and_determinism_across_threads():
    tokens = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(1))
    grads = []
    # numsim's threads split output tiles only; torch's float ops stay at one thread (LayerNorm's
    # backward sums its bias gradient differently at two torch threads: torch's bits, not numsim's)
    torch.set_num_threads(1)
    for threads in (1, 3):
        nt.set_num_threads(threads)
        m = nt.convert(_tiny_lm(), "ops_int8")
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(m(tokens).reshape(-1, 11), tokens.reshape(-1)).backward()
            opt.step()
        grads.append([p.detach().clone() for p in m.parameters()])
        rep = m.numsim_report
        _every_gemm_simulated(rep, {"linear", "sdpa.qk", "sdpa.pv"})
        assert all(r["calls"] == 2 for r in rep.rows if r["role"] in ("weight", "act_act")), str(rep)
    nt.set_num_threads(None)
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_module_globs_kinds_roles_and_float_warnings():
    recipe = {"ops": {"default": "int8", "kinds": {"sdpa": "fp8"}, "roles": {"grad_weight": "fp16"},
                      "modules": {"2": "float", "1.linear*": {"roles": {"weight": "int4"}}}}}
    m = _tiny_lm()
    tokens = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(1))
    with pytest.warns(nt.UnsimulatedGemmWarning, match=r"weight GEMM of linear at '2' runs in float"):
        with nt.simulate(m, recipe) as rep:
            y = m(tokens)
    y.sum().backward()
    rows = {(r["path"], r["kind"], r["role"]): r for r in rep.rows}
    assert rows[("2", "linear", "weight")]["unit"] == "float" and not rows[("2", "linear", "weight")]["simulated"]
    assert rows[("1.linear1", "linear", "weight")]["unit"].startswith("int4_int32(int4")
    # a module level's role entry beats the top level's: its weight GEMMs' backward follows them
    assert rows[("1.linear1", "linear", "grad_weight")]["unit"].startswith("int4_int32(int4")
    assert rows[("1.self_attn", "linear", "grad_weight")]["unit"].startswith("fp16_fp32")
    assert rows[("1.self_attn", "linear", "grad_input")]["unit"].startswith("int4_int32(int8")
    assert rows[("1.self_attn", "linear", "weight")]["unit"].startswith("int4_int32(int8")
    assert rows[("1.self_attn", "sdpa.qk", "act_act")]["unit"].startswith("fp8_fp16")
    assert len(rep.unsimulated()) == 3   # the float layer '2': forward and both backward GEMMs


def test_convert_warns_when_nothing_is_quantized():
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with pytest.warns(nt.UnsimulatedGemmWarning, match="quantizes none of the model's 2"):
        nt.convert(mlp, "tpr4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nt.convert(mlp, "float32")        # the float baseline asks for nothing: no warning
        nt.convert(mlp, "tpr4_all")
    mha = torch.nn.Sequential(torch.nn.MultiheadAttention(8, 2))
    with pytest.warns(nt.UnsimulatedGemmWarning, match="MultiheadAttention 0 runs in float"):
        q = nt.convert(mha, {"default": "int"})
    assert type(q[0].out_proj).__name__ != "QuantLinear"   # MHA never calls out_proj: not swapped


def test_fallback_gemm_warns():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    with pytest.warns(nt.UnsimulatedGemmWarning, match="einsum at '<root>' is a GEMM numsim does not intercept"):
        with nt.simulate(None, "ops_int8") as rep:
            torch.einsum("ik,kj->ij", a, b)
    assert rep.float_ops[("", "einsum")][0] == 1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_compute_from_float_values(dtype):
    spec = SPECS["int8"]
    x, w = _t(4, 6, seed=1, dtype=dtype), _t(3, 6, seed=2, dtype=dtype)
    with nt.simulate(None, "ops_int8"):
        y = F.linear(x, w)
    y.backward(torch.ones_like(y))
    assert y.dtype == dtype and x.grad.dtype == dtype and w.grad.dtype == dtype
    _same(y, ref_gemm(_np(x), _np(w).T, spec))
    _same(x.grad, ref_gemm(np.ones((4, 3)), _np(w), spec, "a", S0))
    # module-level layers take them too and answer in the input's dtype
    lin = nt.QuantLinear(6, 3, config="int")
    out = lin(x.detach())
    assert out.dtype == dtype
    out.float().sum().backward()
    assert lin.weight.grad.dtype == torch.float32


def test_bad_input():
    with nt.simulate(None, "ops_int8"):
        with pytest.raises(NumsimError, match="input: expected a float32 or float64"):
            torch.matmul(torch.ones(2, 2, dtype=torch.int64), torch.ones(2, 2, dtype=torch.int64))
        with pytest.raises(NumsimError, match="input, other: expected tensors of one dtype"):
            torch.matmul(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64))
    for recipe, where in (({"ops": {"kinds": {"conv3d": "int8"}}}, "recipe.ops.kinds.conv3d"),
                          ({"ops": {"roles": {"qk": "int8"}}}, "recipe.ops.roles.qk"),
                          ({"ops": {"default": "int3"}}, "recipe.ops.default"),
                          ({"ops": {"default": "int4_fp4r4_fp16"}}, "recipe.ops.default"),
                          ({"ops": {"bogus": 1}}, "recipe.ops.bogus"),
                          ({"ops": {"modules": {"nosuch.*": "int8"}}}, "recipe.ops.modules.nosuch")):
        with pytest.raises(NumsimError, match=where.replace(".", r"\.")):
            with nt.simulate(_tiny_lm(), recipe):
                pass
    with pytest.raises(NumsimError, match="recipe: expected a recipe with an 'ops' section"):
        with nt.simulate(None, "tpr4"):
            pass
    assert set(GEMM_PRESETS) <= {"int8", "int4", "fp8", "fp16"}


def test_train_transformer_example_quick():
    """examples/train_transformer.py --quick: every GEMM simulated, the loss finite and falling."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_transformer.py"
    spec = importlib.util.spec_from_file_location("train_transformer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--quick", "--steps", "8", "--png", "", "--no-progress", "--only", "float32", "all GEMMs INT8"])
    r = res["all GEMMs INT8 (ops_int8)"]
    assert r["unsimulated"] == 0 and r["gemm_rows"] == 19
    assert np.isfinite(r["val_bits"]) and r["losses"][-1] < r["losses"][0]
    assert abs(r["val_bits"] - res["float32"]["val_bits"]) < 0.5


def test_layer_modes_and_ops_together():
    """A recipe with layer keys and "ops": Linear layers swapped (module level), attention op level."""
    recipe = {"name": "both", "default": {"mode": "int", "grad_quantizer": "ptq", "grad_bits": 8},
              "ops": {"default": "fp8"}}
    m = nt.convert(_tiny_lm(), recipe)
    assert type(m[2]).__name__ == "QuantLinear" and type(m[1].linear1).__name__ == "QuantLinear"
    assert type(m[1].self_attn.out_proj).__name__ != "QuantLinear"
    tokens = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(1))
    m(tokens).sum().backward()
    rep = m.numsim_report
    assert not rep.unsimulated()
    rows = {(r["path"], r["kind"], r["role"]): r for r in rep.rows}
    assert rows[("2", "linear (int layer)", "weight")]["calls"] == 1
    assert rows[("2", "linear (int layer)", "grad_weight")]["calls"] == 1
    assert rows[("1.self_attn", "sdpa.qk", "act_act")]["unit"].startswith("fp8_fp16")
    assert rows[("1.self_attn", "linear[1]", "weight")]["unit"].startswith("fp8_fp16")   # out_proj, op level


def test_deepcopy_of_a_converted_model_tracks_its_own_modules():
    import copy

    m = nt.convert(_tiny_lm(), "ops_int8")
    m2 = copy.deepcopy(m)
    tokens = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(1))
    assert torch.equal(m(tokens), m2(tokens))
    for model in (m, m2):
        paths = {r["path"] for r in model.numsim_report.rows}
        assert paths == {"1.self_attn", "1.linear1", "1.linear2", "2"}
        assert all(r["calls"] == 1 for r in model.numsim_report.rows if r["role"] in ("weight", "act_act"))


@pytest.mark.parametrize("kw", [{"kdim": 6, "vdim": 5}, {"bias": False, "add_bias_kv": True, "add_zero_attn": True}])
def test_multihead_attention_variants_and_full_transformer(kw):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, **kw)
    q = torch.randn(4, 2, 8, requires_grad=True)
    k, v = torch.randn(3, 2, kw.get("kdim", 8)), torch.randn(3, 2, kw.get("vdim", 8))
    kpm = torch.tensor([[False, False, True], [False, False, False]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with nt.simulate(mha, "ops_int8") as rep:
            y, _ = mha(q, k, v, key_padding_mask=kpm)
        y.sum().backward()
    assert not rep.unsimulated() and torch.isfinite(q.grad).all()
    tr = torch.nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True)   # decoder cross-attention
    with nt.simulate(tr, "ops_int8") as rep:
        out = tr(torch.randn(2, 5, 8), torch.randn(2, 4, 8), tgt_mask=tr.generate_square_subsequent_mask(4),
                 tgt_is_causal=True)
    out.sum().backward()
    assert not rep.unsimulated()
    assert {"encoder.layers.0.self_attn", "decoder.layers.0.multihead_attn"} <= {r["path"] for r in rep.rows}


def test_nonfinite_operand_error_names_the_op():
    import torch

    import numsim.torch as nt
    from numsim.errors import NumsimError

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x = torch.randn(2, 4)
    x[0, 1] = float("nan")
    with pytest.raises(NumsimError, match=r"linear at '0' \(weight GEMM\).*non-finite"):
        with nt.simulate(model, "ops_int8"):
            model(x)
    x = torch.randn(2, 4)
    with nt.simulate(model, "ops_int8"):
        y = model(x)
    g = torch.ones_like(y)
    g[0, 0] = float("inf")
    with pytest.raises(NumsimError, match=r"linear at '0' \(grad_weight GEMM\).*non-finite"):
        with nt.simulate(model, "ops_int8"):
            model(x).backward(g)
