"""PyTorch training backend: every GEMM of a model through numsim's units.

    import numsim.torch as nt
    model = nt.convert(model, "tpr4")          # or a dict, or a path to a TOML file
    ... train as usual: forward, loss.backward(), optimizer.step()

    with nt.simulate(model, "ops_int8") as report:   # op level: F.linear, matmul / @, bmm, baddbmm,
        loss = loss_fn(model(x), y)                  # addmm, mm, F.conv2d, scaled_dot_product_attention,
    loss.backward()                                  # nn.MultiheadAttention's GEMMs (numsim.torch.ops)

Two levels: module-level layer modes (below: `convert` swaps nn.Linear / nn.Conv2d) and op-level
GEMM specs (a recipe's "ops" section: a unit per GEMM by op kind, module path and role, see
numsim.torch.recipes.OP_RECIPES and docs/training.md), which a TorchFunctionMode applies to every
intercepted op; `convert` with a recipe that has "ops" does both.

Layer modes (a recipe picks one per layer, see `RECIPES` and docs/training.md):

- 'tpr' (seed 003): forward INT4 x INT4 -> INT32 through `int4_int32`: activations by PACT
  (uint4 codes on [0, alpha], alpha a learned parameter), weights by SAWB (int4 codes, the
  zero-aligned grid by default). Backward: dL/dY is quantized to radix-4 FP4 by two-phase rounding
  under one per-layer GradScale S; dL/dX = W^T x FP4_even(dL/dY) through `int4_fp4r4_fp16` (even
  phase) and dL/dW = X^T x FP4_odd(dL/dY) through `int4_fp4r4_fp16` phase 'odd' (the even datapath
  plus the FP16 exponent trick). `phases=1` feeds the even copy to both GEMMs (the ablation).
  The INT4 operand is always the unit's `a` input: the GEMMs are arranged transposed (see below).
- 'int' (seed 000): forward with `fwd_bits`-bit symmetric per-tensor activations and weights
  (round to nearest even) through the integer MAC; dL/dY quantized at `grad_bits` by PTQ, PSQ,
  per-sample shift or BHQ (stochastic rounding, seeded) and both backward GEMMs through the integer
  units (`int4_int32_sample_shift` for the per-sample-shift weight gradient).
- 'float': the layer is left as torch's float module.

The three GEMMs of a layer with input x (N, C, H, W), weight w (O, C/g, kh, kw), output (N, O, OH, OW)
(a Linear layer is the 1x1 case with H = W = OH = OW = 1 and N the rows of the flattened input):

- forward  Y = conv(X, W): `numsim.conv2d`, reduction index (c, i, j) in C order;
- dL/dX: a transposed convolution written as one GEMM per group, a = the flipped kernel
  (C/g, O/g * kh * kw) (INT4), b = im2col of dL/dY dilated by the stride and padded,
  (O/g * kh * kw, N * H * W) (FP4); reduction index (o, i, j) in C order over the flipped taps;
- dL/dW: one GEMM per group, a = im2col(X)^T (C/g * kh * kw, N * OH * OW) (the forward's codes),
  b = dL/dY as (N * OH * OW, O/g); reduction index (n, oh, ow) in C order.
Both backward layouts are numsim.gemm's (`conv2d_grad_input_*`, `conv2d_grad_weight_*`).
Each GEMM is `numsim.matmul` on QTensors, so its bits are the unit's. Straight-through estimators:
dL/dW(float) = dL/dW(quantized) (SAWB and the int quantizers pass the gradient unchanged); PACT's
dL/dx = dL/dx_q where 0 <= x < alpha else 0 and dL/dalpha = the sum of dL/dx_q where x >= alpha
(numsim.quant.pact.pact_backward). The bias is added, and its gradient summed, by torch in float.

Modules: recipes (which layer / GEMM runs which numerics; plain dicts), numerics (the forward and
backward of a quantized layer and of one op-level GEMM on numpy arrays: the operand and gradient
quantizers, TPR, the per-backward stats), adapter (the torch side of layers: autograd function,
QuantLinear / QuantConv2d, convert, set_num_threads), ops (op-level interception: the mode, its
autograd functions, simulate, the Report) and lm (a small transformer LM and an offline corpus).
torch is imported only when a torch-facing name is used: `import numsim` never needs it.
"""
from .adapter import convert, layer_configs, set_num_threads
from .ops import Report, UnsimulatedGemmWarning, simulate
from .recipes import (GEMM_PRESETS, GRAD_QUANTIZERS, MODE_DEFAULTS, MODES, OP_KINDS, OP_RECIPES, OP_ROLES, RECIPES,
                      load_recipe)

_LAZY = ("NumsimConvFunction", "QuantLinear", "QuantConv2d")


def __getattr__(name):
    # the torch classes are built on first use, so that importing this package needs no torch
    if name in _LAZY:
        from .adapter import _build

        return _build()[name]
    raise AttributeError(f"module 'numsim.torch' has no attribute {name!r}")


__all__ = ["RECIPES", "MODE_DEFAULTS", "MODES", "GRAD_QUANTIZERS", "load_recipe", "convert", "layer_configs",
           "set_num_threads", "QuantLinear", "QuantConv2d", "NumsimConvFunction", "simulate", "Report",
           "UnsimulatedGemmWarning", "OP_RECIPES", "OP_KINDS", "OP_ROLES", "GEMM_PRESETS"]
