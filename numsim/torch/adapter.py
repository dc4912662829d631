"""The PyTorch adapter: the autograd function and modules that hand a layer's GEMMs to
numsim.torch.numerics, DLPack conversion, and `convert` (swap a model's layers per a recipe).

torch is imported only when a torch-facing name is used (`_build` makes the classes on first use).
"""
from __future__ import annotations

import copy
import functools
import math
import warnings

import numpy as np

from ..errors import NumsimError, bad
from ..gemm import ConvGeometry
from .numerics import int_backward, int_forward, step_seed, tpr_backward, tpr_forward
from .recipes import OVERRIDE_KEYS, _layer_config, load_recipe

# ---- threads -------------------------------------------------------------------------------------
# The one process-wide setting of the adapter, kept because it is documented (`nt.set_num_threads`) and
# mirrors torch.set_num_threads, which training scripts call once. It is scheduling, not numerics:
# kernel threads split output tiles and never change a bit (tests/test_torch.py checks), so no
# numerics function reads it; the explicit per-recipe / per-layer config is the `nthreads` key.

_THREADS_OVERRIDE = [None]


def set_num_threads(n):
    """Threads numsim's GEMMs use in every converted layer, over the recipe's `nthreads` (None: the
    recipe's, else numsim's default). Results never depend on it."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 64):
        raise bad("n", "None or an integer in [1, 64]", repr(n))
    _THREADS_OVERRIDE[0] = n
    from .ops import _THREADS

    _THREADS[0] = n


# ---- torch side ------------------------------------------------------------------------------------

def _torch():
    try:
        import torch
    except ImportError as e:  # optional dependency
        raise NumsimError("numsim.torch needs PyTorch (pip install 'numsim[torch]', torch==2.13.0)") from e
    return torch


def _to_numpy(t, arg):
    """A float CPU torch tensor as a numpy array through DLPack (no copy; float16 / bfloat16, which
    numpy lacks or numsim's quantizers do not take, widened to float32, exactly)."""
    from .ops import _float_np

    return _float_np(t, arg)


def _check_forward_finite(a, arg, where):
    """A NaN/inf forward input is the caller's data, not a gradient: say so, naming the layer and argument."""
    n = int(a.size - np.count_nonzero(np.isfinite(a)))
    if n:
        i = tuple(int(v) for v in np.argwhere(~np.isfinite(a))[0])
        raise NumsimError(f"{arg}: {n} NaN/inf values in the forward input of {where} (first at index {i}, "
                          f"{a[i].item()!r}); numsim's quantizers take finite tensors")
    return a


def _to_torch(a, like):
    """A float64 numpy result as a tensor of like's dtype (DLPack in, one cast)."""
    torch = _torch()
    return torch.from_dlpack(np.ascontiguousarray(a)).to(like.dtype)


class _LayerCore:
    """What the autograd function needs from a layer: config, geometry, step counter, stats."""

    def __init__(self, cfg, layer_index):
        self.cfg = cfg
        self.layer_index = int(layer_index)
        self.step = 0       # backward passes (keys the stochastic-rounding seeds)
        self.calls = 0      # forward passes
        self.stats = {}

    def seed_for_step(self):
        return step_seed(self.cfg.get("seed", 0), self.layer_index, self.step)


def _nthreads(core):
    return _THREADS_OVERRIDE[0] if _THREADS_OVERRIDE[0] is not None else core.cfg.get("nthreads")


@functools.lru_cache(maxsize=1)
def _build():
    torch = _torch()
    nn = torch.nn

    class NumsimConvFunction(torch.autograd.Function):
        """Y = conv(X, W) through numsim's units (x, w, alpha); geometry and config in `core`."""

        @staticmethod
        def forward(ctx, x, weight, alpha, core, geom_args):
            where = f"numsim layer {core.layer_index}"
            xn = _check_forward_finite(_to_numpy(x, "input"), "input", where)
            wn = _check_forward_finite(_to_numpy(weight, "weight"), "weight", where)
            n, c, h, w = xn.shape
            o, cg, kh, kw = wn.shape
            geom = ConvGeometry(n, c, h, w, o, kh, kw, *geom_args)
            nthreads = _nthreads(core)
            if core.cfg["mode"] == "tpr":
                a = float(alpha.detach().reshape(()).item())
                if not math.isfinite(a):
                    raise bad("alpha", "a finite PACT clip", a)
                # the learned clip may step below zero: the forward uses at least act_alpha_min
                a = max(a, float(core.cfg["act_alpha_min"]))
                y, saved = tpr_forward(xn, wn, a, geom, core.cfg, nthreads)
            else:
                a = None
                y, saved = int_forward(xn, wn, geom, core.cfg, nthreads)
            ctx.core, ctx.geom, ctx.saved, ctx.alpha = core, geom, saved, a
            ctx.save_for_backward(x, weight, alpha if alpha is not None else torch.empty(0))
            core.calls += 1
            return _to_torch(y, x)

        @staticmethod
        def backward(ctx, gy):
            x, weight, alpha = ctx.saved_tensors
            core, geom = ctx.core, ctx.geom
            gn = _to_numpy(gy.contiguous(), "grad_output")
            need_dx, need_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            need_alpha = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
            seed = core.seed_for_step()
            core.step += 1
            nthreads = _nthreads(core)
            dalpha = None
            if core.cfg["mode"] == "tpr":
                dx, dalpha, dw, stats = tpr_backward(ctx.saved, _to_numpy(x, "input"), ctx.alpha, gn, geom,
                                                     core.cfg, seed, need_dx or need_alpha, need_dw, nthreads)
            else:
                dx, dw, stats = int_backward(ctx.saved, gn, geom, core.cfg, seed, need_dx, need_dw, nthreads)
            core.stats = stats
            gx = _to_torch(dx, x) if need_dx and dx is not None else None
            gw = _to_torch(dw, weight) if need_dw else None
            ga = torch.tensor([dalpha], dtype=alpha.dtype) if need_alpha and dalpha is not None else None
            return gx, gw, ga, None, None

    class _QuantBase(nn.Module):
        def _init_quant(self, cfg, layer_index):
            self.numsim_cfg = dict(cfg)
            self._core = _LayerCore(self.numsim_cfg, layer_index)
            if cfg["mode"] == "tpr":
                self.alpha = nn.Parameter(torch.tensor([float(cfg["act_alpha"])]))
            else:
                self.register_parameter("alpha", None)

        @property
        def numsim_stats(self):
            """The last backward's GradScale, non-finite count and odd-phase departures."""
            return dict(self._core.stats)

        @property
        def numsim_step(self):
            return self._core.step

        def _apply_conv(self, x4, geom_args):
            return NumsimConvFunction.apply(x4, self.weight, self.alpha, self._core, geom_args)

    class QuantLinear(_QuantBase):
        """nn.Linear whose GEMMs run through numsim (config: a layer config, see MODE_DEFAULTS)."""

        def __init__(self, in_features, out_features, bias=True, config="tpr", layer_index=0, dtype=None):
            super().__init__()
            cfg = _layer_config(config, None, "config")
            if cfg["mode"] == "float":
                raise bad("config", "a quantized mode ('tpr' or 'int'); use torch.nn.Linear for float", "'float'")
            self.in_features, self.out_features = int(in_features), int(out_features)
            ref = nn.Linear(in_features, out_features, bias=bias, dtype=dtype)
            self.weight = ref.weight
            self.bias = ref.bias
            self._init_quant(cfg, layer_index)

        @classmethod
        def from_float(cls, mod, config="tpr", layer_index=0):
            q = cls(mod.in_features, mod.out_features, mod.bias is not None, config, layer_index,
                    dtype=mod.weight.dtype)
            with torch.no_grad():
                q.weight.copy_(mod.weight)
                if mod.bias is not None:
                    q.bias.copy_(mod.bias)
            return q

        def forward(self, x):
            # type and device checks, and finite values, before anything else
            _check_forward_finite(_to_numpy(x, "input"), "input", f"QuantLinear (layer {self._core.layer_index})")
            if x.shape[-1] != self.in_features:
                raise bad("input", f"(..., {self.in_features})", f"shape {tuple(x.shape)}")
            lead = x.shape[:-1]
            x4 = x.reshape(-1, self.in_features, 1, 1)
            w4 = self.weight.reshape(self.out_features, self.in_features, 1, 1)
            y = NumsimConvFunction.apply(x4, w4, self.alpha, self._core, ((1, 1), (0, 0), (1, 1), 1))
            y = y.reshape(*lead, self.out_features)
            return y + self.bias.to(y.dtype) if self.bias is not None else y

        def extra_repr(self):
            return (f"in_features={self.in_features}, out_features={self.out_features}, "
                    f"bias={self.bias is not None}, mode={self.numsim_cfg['mode']}")

    class QuantConv2d(_QuantBase):
        """nn.Conv2d (zero padding) whose GEMMs run through numsim."""

        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, config="tpr", layer_index=0, dtype=None):
            super().__init__()
            cfg = _layer_config(config, None, "config")
            if cfg["mode"] == "float":
                raise bad("config", "a quantized mode ('tpr' or 'int'); use torch.nn.Conv2d for float", "'float'")
            ref = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                            dtype=dtype)
            if isinstance(ref.padding, str):
                raise bad("padding", "integers (string padding modes are not supported)", repr(ref.padding))
            self.in_channels, self.out_channels = ref.in_channels, ref.out_channels
            self.kernel_size, self.stride, self.padding = ref.kernel_size, ref.stride, ref.padding
            self.dilation, self.groups = ref.dilation, ref.groups
            self.weight = ref.weight
            self.bias = ref.bias
            self._init_quant(cfg, layer_index)

        @classmethod
        def from_float(cls, mod, config="tpr", layer_index=0):
            if mod.padding_mode != "zeros":
                raise bad("module", "a Conv2d with padding_mode='zeros'", repr(mod.padding_mode))
            if isinstance(mod.padding, str):
                raise bad("module", "a Conv2d with integer padding", repr(mod.padding))
            q = cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                    mod.groups, mod.bias is not None, config, layer_index, dtype=mod.weight.dtype)
            with torch.no_grad():
                q.weight.copy_(mod.weight)
                if mod.bias is not None:
                    q.bias.copy_(mod.bias)
            return q

        def forward(self, x):
            _check_forward_finite(_to_numpy(x, "input"), "input", f"QuantConv2d (layer {self._core.layer_index})")
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise bad("input", f"an (N, {self.in_channels}, H, W) tensor", f"shape {tuple(x.shape)}")
            y = self._apply_conv(x, (tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups))
            return y + self.bias.to(y.dtype).reshape(1, -1, 1, 1) if self.bias is not None else y

        def extra_repr(self):
            return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                    f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                    f"bias={self.bias is not None}, mode={self.numsim_cfg['mode']}")

    return {"NumsimConvFunction": NumsimConvFunction, "QuantLinear": QuantLinear, "QuantConv2d": QuantConv2d}

# ---- convert ---------------------------------------------------------------------------------------

def _kind(mod, nn):
    """'linear', 'conv', or None for modules that hold no GEMM; NumsimError for GEMM modules numsim
    cannot emulate (other conv dimensions, transposed convs, non-zero padding modes)."""
    if isinstance(mod, nn.Linear):
        return "linear"
    if isinstance(mod, nn.Conv2d):
        return "conv"
    if isinstance(mod, (nn.modules.conv._ConvNd, nn.Bilinear)):
        raise NumsimError(f"convert: unsupported module type {type(mod).__name__} (numsim.torch emulates "
                          f"nn.Linear and nn.Conv2d); mark it float with recipe layers={{name: 'float'}}")
    return None


def layer_configs(model, recipe) -> dict:
    """{module name: (kind, layer config)} for every Linear / Conv2d in `model`, in module order."""
    torch = _torch()
    nn = torch.nn
    if not isinstance(model, nn.Module):
        raise bad("model", "a torch.nn.Module", type(model).__name__)
    r = load_recipe(recipe)
    floats = {n for n, spec in r["layers"].items() if spec["mode"] == "float"}
    # nn.MultiheadAttention calls F.linear on out_proj.weight, never out_proj itself: swapping the
    # module would claim a quantized layer that never runs (its GEMMs are op-level: recipe "ops")
    mha_out = {f"{n}.out_proj" if n else "out_proj" for n, m in model.named_modules()
               if isinstance(m, nn.MultiheadAttention)}
    mods = []
    for name, mod in model.named_modules():
        if name in mha_out:
            continue
        if name in floats and not isinstance(mod, (nn.Linear, nn.Conv2d)):
            continue
        if any(name.startswith(f + ".") for f in floats):
            continue
        k = _kind(mod, nn)
        if k is not None:
            mods.append((name, mod, k))
    names = {n for n, _, _ in mods}
    for n in r["layers"]:
        if n not in names:
            mod = dict(model.named_modules()).get(n)
            if mod is None:
                raise bad(f"recipe.layers.{n}", "the name of a Linear or Conv2d module in the model", "no such module")
            if r["layers"][n]["mode"] != "float":
                raise NumsimError(f"recipe.layers.{n}: unsupported module type {type(mod).__name__} "
                                  f"(numsim.torch emulates nn.Linear and nn.Conv2d)")
    out = {}
    for i, (name, mod, k) in enumerate(mods):
        cfg = r["default"]
        if k in r:
            cfg = r[k]
        if k == "conv":
            if mod.groups > 1 and mod.groups == mod.in_channels and "depthwise" in r:
                cfg = r["depthwise"]
            elif tuple(mod.kernel_size) == (1, 1) and mod.groups == 1 and "pointwise" in r:
                cfg = r["pointwise"]
        if i == 0 and "first" in r:
            cfg = r["first"]
        if i == len(mods) - 1 and "last" in r:
            cfg = r["last"]
        if name in r["layers"]:
            cfg = r["layers"][name]
        cfg = dict(cfg)
        if r.get("nthreads") is not None and cfg["mode"] != "float":
            cfg["nthreads"] = r["nthreads"]
        out[name] = (k, cfg)
    return out


def _warn_layers(model, r, plan, nn):
    """convert's warnings: a recipe that quantizes something but leaves GEMM layers float, and modules
    whose GEMMs module-level conversion cannot reach (attention) when there is no "ops" section."""
    from .ops import UnsimulatedGemmWarning

    asks = any(c["mode"] != "float" for k, c in r.items() if k in ("default",) + OVERRIDE_KEYS) or \
        any(c["mode"] != "float" for c in r["layers"].values())
    if not asks:
        return   # a float recipe (e.g. 'float32', the baseline) asks for no simulation
    name = r["name"]
    floats = [n or "<root>" for n, (_, c) in plan.items() if c["mode"] == "float"]
    if plan and len(floats) == len(plan):
        warnings.warn(f"numsim.torch.convert: recipe '{name}' quantizes none of the model's {len(plan)} Linear/Conv2d "
                      f"layers ({', '.join(floats)}): every GEMM runs in float", UnsimulatedGemmWarning, stacklevel=3)
    elif floats:
        warnings.warn(f"numsim.torch.convert: recipe '{name}' leaves {len(floats)} of {len(plan)} Linear/Conv2d layers "
                      f"in float: {', '.join(floats)}", UnsimulatedGemmWarning, stacklevel=3)
    if r["ops"] is None:
        att = [n or "<root>" for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
        if att:
            warnings.warn(f"numsim.torch.convert: nn.MultiheadAttention {', '.join(att)} runs in float under a "
                          f"module-level recipe; add an 'ops' section (or use numsim.torch.simulate) to simulate "
                          f"its GEMMs", UnsimulatedGemmWarning, stacklevel=3)


def convert(model, recipe="tpr4", inplace=False):
    """Swap every nn.Linear / nn.Conv2d in `model` for QuantLinear / QuantConv2d per `recipe`
    (a name in RECIPES or OP_RECIPES, a dict, or a TOML path); 'float' layers stay as they are. A
    recipe with an "ops" section also routes every other intercepted GEMM of the model's forward
    (F.linear, matmul, bmm, attention, F.conv2d, ...) through numsim (numsim.torch.ops). Returns the
    model (a deep copy unless inplace=True) with `numsim_report` (numsim.torch.ops.Report). Layer i of
    the converted list gets layer_index i, which keys its stochastic-rounding seeds. Warns
    (UnsimulatedGemmWarning) when the recipe leaves GEMM layers float."""
    from .ops import Report, attach

    torch = _torch()
    nn = torch.nn
    if not isinstance(model, nn.Module):
        raise bad("model", "a torch.nn.Module", type(model).__name__)
    r = load_recipe(recipe)
    plan = layer_configs(model, recipe)
    _warn_layers(model, r, plan, nn)
    if not inplace:
        model = copy.deepcopy(model)
    lib = _build()
    report = Report()
    for i, (name, (kind, cfg)) in enumerate(plan.items()):
        if cfg["mode"] == "float":
            continue
        mod = model.get_submodule(name) if name else model
        cls = lib["QuantLinear"] if kind == "linear" else lib["QuantConv2d"]
        q = cls.from_float(mod, cfg, layer_index=i)
        q.train(mod.training)
        report.layers.append(functools.partial(_layer_rows, name, kind, q))
        if not name:
            model = q
            break
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, q)
    if r["ops"] is not None:
        attach(model, recipe, report)
    model.numsim_report = report
    return model


def _layer_rows(name, kind, q):
    """The report rows of a module-level converted layer: its three GEMMs, units and call counts."""
    cfg = q.numsim_cfg
    if cfg["mode"] == "tpr":
        units = ("int4_int32(uint4 x int4 -> int32)", "int4_fp4r4_fp16(even)",
                 "int4_fp4r4_fp16(odd)" if cfg["phases"] == 2 else "int4_fp4r4_fp16(even)")
    else:
        b = cfg["fwd_bits"]
        gq = cfg["grad_quantizer"]
        units = (f"int4_int32(int{b} x int{b} -> int32)", f"int4_int32({gq} {cfg['grad_bits']}b grads)",
                 {"shift": "int4_int32_sample_shift", "bhq": "float64 (BHQ dL/dW has no integer form)"}.get(
                     gq, f"int4_int32({gq} {cfg['grad_bits']}b grads)"))
    core = q._core
    return [{"path": name, "kind": kind + f" ({cfg['mode']} layer)", "role": role, "unit": u,
             "calls": core.calls if role == "weight" else core.step,
             "simulated": not u.startswith("float64")}
            for role, u in zip(("weight", "grad_input", "grad_weight"), units)]
