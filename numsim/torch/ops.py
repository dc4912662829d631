"""Op-level interception: every matmul-like torch op of a model through numsim's units.

`simulate(model, recipe)` is a context manager that pushes a `torch.overrides.TorchFunctionMode`
(torch's own extension point, no monkey-patching) and tracks the running module with forward
pre/post hooks; `convert(model, recipe)` with an "ops" section installs the same mode around the
model's forward with hooks on the root module. Intercepted: F.linear, torch.matmul / @, mm, bmm,
addmm, baddbmm, F.conv2d and F.scaled_dot_product_attention (QK^T GEMM -> float scale, mask,
softmax, dropout -> PV GEMM), and the ops inside nn.MultiheadAttention (whose fast path is off while
a mode is active: torch checks has_torch_function) and nn.TransformerEncoderLayer. Each GEMM is a
torch.autograd.Function whose forward and both backward GEMMs are `numsim.matmul` (or the conv
layouts of numsim.gemm) on operands quantized by numsim.torch.numerics.quantize_operand.

Everything else runs in torch float; the numeric ones (softmax, norms, activations, dropout,
embedding, losses) are listed in the report, GEMM-like ops numsim does not intercept (einsum,
conv1d/3d, transposed convs, ...) are listed as fallbacks with a warning.
"""
from __future__ import annotations

import contextlib
import fnmatch
import functools
import math
import types
import warnings

import numpy as np

from ..errors import NumsimError, bad
from ..gemm import ConvGeometry
from .numerics import op_conv2d_backward, op_conv2d_forward, op_gemm, step_seed
from .recipes import load_recipe, resolve_gemm


class UnsimulatedGemmWarning(UserWarning):
    """A GEMM of the model runs in float: the recipe says 'float', or numsim cannot intercept the op."""


# the numeric non-GEMM ops the report lists as float (by torch function name)
FLOAT_OPS = {"softmax", "log_softmax", "layer_norm", "batch_norm", "group_norm", "instance_norm", "rms_norm",
             "dropout", "relu", "gelu", "silu", "tanh", "sigmoid", "embedding", "cross_entropy", "nll_loss",
             "mse_loss", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"}
# GEMM-like ops numsim does not intercept: they run in float with a warning
FALLBACK_GEMMS = {"einsum", "tensordot", "conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "bilinear", "chain_matmul", "multi_dot", "addbmm", "addmv", "mv", "dot",
                  "vdot", "inner", "addmm_", "baddbmm_", "_native_multi_head_attention",
                  "_transformer_encoder_layer_fwd", "convolution", "conv_tbc"}
FLOAT_REASON = "non-GEMM op: runs in torch float"

_THREADS = [None]   # set by adapter.set_num_threads (scheduling only; never changes a bit)


def _torch():
    from .adapter import _torch as t

    return t()


def _check_tensor(t, arg):
    """A CPU tensor of a float dtype numsim takes (float64 / float32 / float16 / bfloat16)."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise bad(arg, "a torch.Tensor", type(t).__name__)
    if t.device.type != "cpu":
        raise NumsimError(f"{arg}: a {t.device.type} tensor; numsim has no GPU backend, it runs on the CPU "
                          f"(move the model and data with .cpu())")
    if t.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise bad(arg, "a float32 or float64 tensor, or float16 / bfloat16", f"dtype {t.dtype}")


def _float_np(t, arg):
    """A CPU float tensor's values as a numpy array (float16 / bfloat16 widened to float32, exact)."""
    torch = _torch()
    _check_tensor(t, arg)
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return np.from_dlpack(t)


def _to_torch(a, dtype):
    torch = _torch()
    return torch.from_dlpack(np.ascontiguousarray(a)).to(dtype)


def _unit_name(u):
    if u is None:
        return "float"
    fa, fb = getattr(u.a_fmt, "name", u.a_fmt), getattr(u.b_fmt, "name", u.b_fmt)
    return f"{u.name}({fa} x {fb} -> {getattr(u.acc_fmt, 'name', u.acc_fmt)})"


# ---- the report -------------------------------------------------------------------------------------

class Site:
    """One GEMM of the model: where (module path), what (op kind, its GEMM part), its roles' specs,
    the units that ran it and how often."""

    def __init__(self, index, path, kind, part, role, ops):
        self.index, self.path, self.kind, self.part, self.role = index, path, kind, part, role
        self.specs = {role: resolve_gemm(ops, path, kind, role)}
        bwd = ("grad_input", "grad_weight") if role == "weight" else ("grad_input",)
        for r in bwd:
            self.specs[r] = resolve_gemm(ops, path, kind, r, role)
        self.units = {}               # role -> unit description (the last one that ran)
        self.role_calls = dict.fromkeys(self.specs, 0)
        self.calls = 0                # forward calls
        self.backward_calls = 0       # backward passes (keys the gradient seeds)
        self.warned = set()

    @property
    def name(self):
        return f"{self.path or '<root>'}:{self.kind}{'.' + self.part if self.part else ''}"


class Report:
    """What ran where: one row per GEMM (module path, op kind, role) and the float ops."""

    def __init__(self):
        self.sites = {}       # (path, kind, ordinal, part) -> Site
        self.float_ops = {}   # (path, op) -> [calls, reason]
        self.layers = []      # module-level converted layers (adapter.QuantLinear / QuantConv2d)

    @property
    def rows(self):
        """[{path, kind, role, unit, calls, simulated}] per GEMM role, module-level layers included."""
        out = []
        for s in self.sites.values():
            for role, spec in s.specs.items():
                calls = s.role_calls[role]
                out.append({"path": s.path, "kind": s.kind + (f".{s.part}" if s.part else ""), "role": role,
                            "unit": s.units.get(role, "float" if spec is None else spec["unit"]),
                            "calls": calls, "simulated": spec is not None})
        for lay in self.layers:
            out.extend(lay())
        return out

    def unsimulated(self):
        """The GEMM rows that ran in float."""
        return [r for r in self.rows if not r["simulated"]]

    def __str__(self):
        lines = ["| module | op | role | unit | calls |", "|---|---|---|---|---:|"]
        for r in self.rows:
            lines.append(f"| {r['path'] or '<root>'} | {r['kind']} | {r['role']} | {r['unit']} | {r['calls']} |")
        if self.float_ops:
            lines += ["", "| module | float op | calls | why |", "|---|---|---:|---|"]
            for (path, op), (n, why) in self.float_ops.items():
                lines.append(f"| {path or '<root>'} | {op} | {n} | {why} |")
        return "\n".join(lines)

    def _float(self, path, op, reason=FLOAT_REASON):
        e = self.float_ops.setdefault((path, op), [0, reason])
        e[0] += 1


def _warn_float(site, role, why):
    if role in site.warned:
        return
    site.warned.add(role)
    warnings.warn(f"numsim.torch: the {role} GEMM of {site.kind} at '{site.path or '<root>'}' runs in float "
                  f"({why})", UnsimulatedGemmWarning, stacklevel=4)


# ---- the autograd functions --------------------------------------------------------------------------

def _seed(site, ops_seed):
    return step_seed(ops_seed, site.index, site.backward_calls)


@contextlib.contextmanager
def _naming(site, role):
    """Errors of a simulated GEMM (a NaN/inf operand, an overflowed accumulator) name the op: its kind,
    module path and role."""
    try:
        yield
    except NumsimError as e:
        part = f".{site.part}" if site.part else ""
        raise NumsimError(f"{site.kind}{part} at '{site.path or '<root>'}' ({role} GEMM): {e}") from None


def _lib():
    return _lib_cached()


@functools.lru_cache(maxsize=1)
def _lib_cached():
    torch = _torch()
    from torch.autograd.function import once_differentiable

    class NumsimGemmFunction(torch.autograd.Function):
        """a (M, K) or (B, M, K) @ b (K, N) or (B, K, N) through numsim, per the site's specs:
        forward = numsim.matmul(Q(a), Q(b)); dA = numsim.matmul(Qg(dY), Q(b^T));
        dB = numsim.matmul(Q(a^T), Qg(dY)) (Q per tensor, Qg the gradient quantizer)."""

        @staticmethod
        def forward(ctx, a, b, site, mode):
            an, bn = _float_np(a, "input"), _float_np(b, "weight" if site.role == "weight" else "other")
            spec = site.specs[site.role]
            memo = {}
            with _naming(site, site.role):
                y, unit = op_gemm(an, bn, spec, nthreads=mode.nthreads, what=site.name, memo=memo)
            site.units[site.role] = _unit_name(unit)
            ctx.site, ctx.mode, ctx.memo = site, mode, memo
            ctx.save_for_backward(a, b)
            return _to_torch(y, a.dtype)

        @staticmethod
        @once_differentiable      # numsim's backward GEMMs are not differentiable: double backward raises
        def backward(ctx, gy):
            a, b = ctx.saved_tensors
            site, mode = ctx.site, ctx.mode
            seed = _seed(site, mode.ops["seed"])
            site.backward_calls += 1
            gn = _float_np(gy, "grad_output")
            an, bn = _float_np(a, "input"), _float_np(b, "other")
            ra = "grad_input"
            rb = "grad_weight" if site.role == "weight" else "grad_input"
            ga = gb = None
            memo = ctx.memo
            if ctx.needs_input_grad[0]:
                with _naming(site, ra):
                    v, u = op_gemm(gn, bn, site.specs[ra], "a", seed, mode.nthreads, f"{site.name} {ra}", memo,
                                   ("g", "b"), (False, True))
                site.units[ra] = _unit_name(u)
                site.role_calls[ra] += 1
                if u is None:
                    _warn_float(site, ra, "the recipe maps it to 'float'")
                ga = _to_torch(v, a.dtype)
            if ctx.needs_input_grad[1]:
                with _naming(site, rb):
                    v, u = op_gemm(an, gn, site.specs[rb], "b", seed, mode.nthreads, f"{site.name} {rb}", memo,
                                   ("a", "g"), (True, False))
                site.units[rb] = _unit_name(u)
                site.role_calls[rb] += 1
                if u is None:
                    _warn_float(site, rb, "the recipe maps it to 'float'")
                gb = _to_torch(v, b.dtype)
            return ga, gb, None, None

    class NumsimConv2dOpFunction(torch.autograd.Function):
        """conv2d(x, w) (no bias) through numsim: forward numsim.conv2d, backward numsim.gemm's layouts."""

        @staticmethod
        def forward(ctx, x, w, site, mode, geom_args):
            xn, wn = _float_np(x, "input"), _float_np(w, "weight")
            n, c, h, ww = xn.shape
            o, cg, kh, kw = wn.shape
            geom = ConvGeometry(n, c, h, ww, o, kh, kw, *geom_args)
            memo = {}
            with _naming(site, "weight"):
                y, unit = op_conv2d_forward(xn, wn, geom, site.specs["weight"], mode.nthreads, memo)
            site.units["weight"] = _unit_name(unit)
            ctx.site, ctx.mode, ctx.geom, ctx.geom_args, ctx.memo = site, mode, geom, geom_args, memo
            ctx.save_for_backward(x, w)
            return _to_torch(y, x.dtype)

        @staticmethod
        @once_differentiable      # numsim's backward GEMMs are not differentiable: double backward raises
        def backward(ctx, gy):
            x, w = ctx.saved_tensors
            site, mode, geom = ctx.site, ctx.mode, ctx.geom
            seed = _seed(site, mode.ops["seed"])
            site.backward_calls += 1
            sdx = site.specs["grad_input"] if ctx.needs_input_grad[0] else None
            sdw = site.specs["grad_weight"] if ctx.needs_input_grad[1] else None
            gn = _float_np(gy.contiguous(), "grad_output")
            with _naming(site, "grad_input / grad_weight"):
                dx, dw, udx, udw = op_conv2d_backward(_float_np(x, "input"), _float_np(w, "weight"), gn, geom, sdx, sdw,
                                                      seed, mode.nthreads, ctx.memo)
            stride, padding, dilation, groups = ctx.geom_args
            gx = gw = None
            for role, need in (("grad_input", ctx.needs_input_grad[0]), ("grad_weight", ctx.needs_input_grad[1])):
                site.role_calls[role] += int(need)
            if ctx.needs_input_grad[0]:
                if dx is None:   # the recipe leaves this GEMM float: torch's float64 conv gradient
                    _warn_float(site, "grad_input", "the recipe maps it to 'float'")
                    gx = torch.nn.grad.conv2d_input(x.shape, w.double(), gy.double(), stride, padding, dilation,
                                                    groups).to(x.dtype)
                else:
                    site.units["grad_input"] = _unit_name(udx)
                    gx = _to_torch(dx, x.dtype)
            if ctx.needs_input_grad[1]:
                if dw is None:
                    _warn_float(site, "grad_weight", "the recipe maps it to 'float'")
                    gw = torch.nn.grad.conv2d_weight(x.double(), w.shape, gy.double(), stride, padding, dilation,
                                                     groups).to(w.dtype)
                else:
                    site.units["grad_weight"] = _unit_name(udw)
                    gw = _to_torch(dw, w.dtype)
            return gx, gw, None, None, None

    return {"NumsimGemmFunction": NumsimGemmFunction, "NumsimConv2dOpFunction": NumsimConv2dOpFunction}


# ---- the mode ----------------------------------------------------------------------------------------

def _is_weight(t):
    torch = _torch()
    return isinstance(t, torch.nn.Parameter) or isinstance(getattr(t, "_base", None), torch.nn.Parameter)


@functools.lru_cache(maxsize=1)
def _mode_class():
    torch = _torch()
    F = torch.nn.functional
    from torch.overrides import TorchFunctionMode

    T = torch.Tensor
    kinds = {F.linear: "linear", torch.matmul: "matmul", T.matmul: "matmul", T.__matmul__: "matmul",
             T.__rmatmul__: "rmatmul", torch.mm: "mm", T.mm: "mm", torch.bmm: "bmm", T.bmm: "bmm",
             torch.addmm: "addmm", T.addmm: "addmm", torch.baddbmm: "baddbmm", T.baddbmm: "baddbmm",
             torch.conv2d: "conv2d", F.scaled_dot_product_attention: "sdpa"}
    # F.multi_head_attention_forward is Python: torch hands the mode the whole call (the mode is
    # off inside a handler), so the ops inside would run unseen. This copy of it (same code, its
    # one top-level has_torch_function check answered False) runs with the mode on, so they are seen.
    mha = F.multi_head_attention_forward
    g = dict(mha.__globals__)
    g["has_torch_function"] = lambda *_: False
    mha_inside = types.FunctionType(mha.__code__, g, mha.__name__, mha.__defaults__, mha.__closure__)
    mha_inside.__kwdefaults__ = mha.__kwdefaults__

    class NumsimMode(TorchFunctionMode):
        """Routes every intercepted GEMM of the ops run under it through numsim (see the module doc)."""

        def __init__(self, recipe, report=None):
            super().__init__()
            r = load_recipe(recipe)
            if r["ops"] is None:
                raise bad("recipe", "a recipe with an 'ops' section (op-level GEMM specs)", repr(r["name"]))
            self.recipe, self.ops = r, r["ops"]
            self.report = report if report is not None else Report()
            self.stack = [["", {}]]     # [module path, {(kind): ordinal}] of the running modules
            self._nthreads = r.get("nthreads")

        @property
        def nthreads(self):
            return _THREADS[0] if _THREADS[0] is not None else self._nthreads

        # -- module tracking (forward pre/post hooks call these) --
        def enter_module(self, path):
            self.stack.append([path, {}])

        def exit_module(self):
            if len(self.stack) > 1:
                self.stack.pop()

        def _ordinal(self, kind):
            """The how-manieth `kind` op of the running module's forward this is (0, 1, ...)."""
            ords = self.stack[-1][1]
            o = ords.get(kind, 0)
            ords[kind] = o + 1
            return o

        def _site(self, kind, part, role, ordinal=None):
            path = self.stack[-1][0]
            o = self._ordinal(kind) if ordinal is None else ordinal
            skey = (path, kind, o, part)
            s = self.report.sites.get(skey)
            if s is None:
                s = Site(len(self.report.sites), path, kind + (f"[{o}]" if o else ""), part, role, self.ops)
                self.report.sites[skey] = s
            s.calls += 1
            s.role_calls[role] += 1
            if s.specs[role] is None:
                _warn_float(s, role, "the recipe maps it to 'float'")
            return s

        def __torch_function__(self, func, types_, args=(), kwargs=None):
            kwargs = kwargs or {}
            kind = kinds.get(func)
            if func is mha:
                with self:
                    return mha_inside(*args, **kwargs)
            if kind is None:
                name = getattr(func, "__name__", "")
                if name in FALLBACK_GEMMS:
                    path = self.stack[-1][0]
                    self.report._float(path, name, "GEMM-like op numsim does not intercept: ran in float")
                    warnings.warn(f"numsim.torch: {name} at '{path or '<root>'}' is a GEMM numsim does not intercept;"
                                  f" it ran in float", UnsimulatedGemmWarning, stacklevel=3)
                elif name in FLOAT_OPS:
                    self.report._float(self.stack[-1][0], name)
                return func(*args, **kwargs)
            if "out" in kwargs and kwargs["out"] is not None:
                raise bad("out", f"no out= tensor on a simulated {kind} (numsim returns a new tensor)", "a tensor")
            return getattr(self, "_" + kind)(*args, **kwargs)

        # -- the GEMM core: a (..., M, K) @ b (..., K, N) --
        def _gemm(self, a, b, kind, part="", role=None, ordinal=None):
            if role is None:
                role = "weight" if _is_weight(a) or _is_weight(b) else "act_act"
            site = self._site(kind, part, role, ordinal)
            if site.specs[role] is None:
                return torch.matmul(a, b)
            for t, arg in ((a, "input"), (b, "other")):
                _check_tensor(t, arg)
            if a.dtype != b.dtype:
                raise bad("input, other", "tensors of one dtype", f"{a.dtype} and {b.dtype}")
            sq_a = a.dim() == 1
            sq_b = b.dim() == 1
            if sq_a:
                a = a.unsqueeze(0)
            if sq_b:
                b = b.unsqueeze(-1)
            fn = _lib()["NumsimGemmFunction"]
            m, k = a.shape[-2:]
            n = b.shape[-1]
            if b.dim() == 2:
                y = fn.apply(a.reshape(-1, k), b, site, self).reshape(*a.shape[:-1], n)
            else:
                batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
                aa = a.expand(*batch, m, k).reshape(-1, m, k)
                bb = b.expand(*batch, k, n).reshape(-1, k, n)
                y = fn.apply(aa, bb, site, self).reshape(*batch, m, n)
            if sq_a:
                y = y.squeeze(-2)
            if sq_b:
                y = y.squeeze(-1)
            return y

        def _linear(self, input, weight, bias=None):
            y = self._gemm(input, weight.t(), "linear", role="weight")
            return y + bias if bias is not None else y

        def _matmul(self, input, other):
            return self._gemm(input, other, "matmul")

        def _rmatmul(self, input, other):
            return self._gemm(other, input, "matmul")

        def _mm(self, input, mat2):
            if input.dim() != 2 or mat2.dim() != 2:
                raise bad("input, mat2", "2-D tensors", f"{input.dim()}-D and {mat2.dim()}-D")
            return self._gemm(input, mat2, "mm")

        def _bmm(self, input, mat2):
            if input.dim() != 3 or mat2.dim() != 3:
                raise bad("input, mat2", "3-D tensors", f"{input.dim()}-D and {mat2.dim()}-D")
            return self._gemm(input, mat2, "bmm")

        def _addmm(self, input, mat1, mat2, *, beta=1, alpha=1):
            y = self._gemm(mat1, mat2, "addmm")
            return (input if beta == 1 else beta * input) + (y if alpha == 1 else alpha * y)

        def _baddbmm(self, input, batch1, batch2, *, beta=1, alpha=1):
            y = self._gemm(batch1, batch2, "baddbmm")
            if beta == 0:
                return y if alpha == 1 else alpha * y
            return (input if beta == 1 else beta * input) + (y if alpha == 1 else alpha * y)

        def _conv2d(self, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
            site = self._site("conv2d", "", "weight")
            if site.specs["weight"] is None:
                return torch.conv2d(input, weight, bias, stride, padding, dilation, groups)
            if isinstance(padding, str):
                raise bad("padding", "integers (string padding modes are not simulated)", repr(padding))
            if input.dim() != 4:
                raise bad("input", "an (N, C, H, W) tensor (batched conv2d)", f"shape {tuple(input.shape)}")
            pair = lambda v: (int(v), int(v)) if isinstance(v, int) else tuple(int(i) for i in v)  # noqa: E731
            geom_args = (pair(stride), pair(padding), pair(dilation), int(groups))
            y = _lib()["NumsimConv2dOpFunction"].apply(input, weight, site, self, geom_args)
            return y + bias.reshape(1, -1, 1, 1) if bias is not None else y

        def _sdpa(self, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                  enable_gqa=False):
            path = self.stack[-1][0]
            L, S, E = query.size(-2), key.size(-2), query.size(-1)
            sc = 1.0 / math.sqrt(E) if scale is None else float(scale)
            if enable_gqa and query.dim() >= 3 and key.size(-3) != query.size(-3):
                rep = query.size(-3) // key.size(-3)
                key = key.repeat_interleave(rep, -3)
                value = value.repeat_interleave(rep, -3)
            o = self._ordinal("sdpa")
            s = self._gemm(query, key.transpose(-2, -1), "sdpa", "qk", "act_act", o) * sc
            if is_causal:
                if attn_mask is not None:
                    raise bad("attn_mask", "None when is_causal=True (as torch requires)", "a mask")
                causal = torch.ones(L, S, dtype=torch.bool, device=query.device).tril()
                s = s.masked_fill(~causal, float("-inf"))
            if attn_mask is not None:
                if attn_mask.dtype == torch.bool:
                    s = s.masked_fill(~attn_mask, float("-inf"))
                else:
                    s = s + attn_mask
            p = torch.softmax(s, dim=-1)
            self.report._float(path, "softmax", "inside sdpa: " + FLOAT_REASON)
            if dropout_p > 0:
                # dropout is not a GEMM: torch's own dropout (its RNG) between the two GEMMs
                p = F.dropout(p, dropout_p, training=True)
                self.report._float(path, "dropout", "inside sdpa: " + FLOAT_REASON)
            return self._gemm(p, value, "sdpa", "pv", "act_act", o)

    return NumsimMode


# ---- simulate / attach ---------------------------------------------------------------------------------

def _check_module_globs(model, ops):
    names = [n for n, _ in model.named_modules()]
    for g in ops["modules"]:
        if not any(fnmatch.fnmatchcase(n, g) for n in names):
            raise bad(f"recipe.ops.modules.{g}", "a glob matching a module of the model", "no module matches")


class _EnterModule:
    """Forward pre-hook: the module `name` starts running (an object, not a lambda, so that a deep
    copy of a converted model gets hooks on its own copy of the mode)."""

    def __init__(self, mode, name):
        self.mode, self.name = mode, name

    def __call__(self, module, args):
        self.mode.enter_module(self.name)


class _ExitModule:
    def __init__(self, mode):
        self.mode = mode

    def __call__(self, module, args, output):
        self.mode.exit_module()


def _hooks(model, mode):
    """Forward pre/post hooks on every submodule that keep mode.stack at the running module."""
    handles = []
    for name, mod in model.named_modules():
        if not name:
            continue
        handles.append(mod.register_forward_pre_hook(_EnterModule(mode, name)))
        handles.append(mod.register_forward_hook(_ExitModule(mode), always_call=True))
    return handles


@contextlib.contextmanager
def simulate(model=None, recipe="ops_int8"):
    """Run every intercepted GEMM under the block through numsim per `recipe` (a recipe with an
    "ops" section, see numsim.torch.recipes.OP_RECIPES). `model` (optional) gives module paths to the
    report and to the recipe's "modules" globs. Yields the Report (filled as the block runs)."""
    torch = _torch()
    mode = _mode_class()(recipe)
    handles = []
    if model is not None:
        if not isinstance(model, torch.nn.Module):
            raise bad("model", "a torch.nn.Module or None", type(model).__name__)
        _check_module_globs(model, mode.ops)
        handles = _hooks(model, mode)
    elif mode.ops["modules"]:
        raise bad("recipe.ops.modules", "no module globs when simulate() has no model", list(mode.ops["modules"]))
    try:
        with mode:
            yield mode.report
    finally:
        for h in handles:
            h.remove()


def _simulated_forward(self, *args, **kwargs):
    # the model's own forward, run under its mode (a mode pushed from inside a module hook does not
    # dispatch: torch runs hooks in a state where a mode entered there recurses)
    with self._numsim_mode:
        return type(self).forward(self, *args, **kwargs)


def attach(model, recipe, report=None):
    """Run `model`'s forward under the mode from now on (the instance's forward becomes its class's
    forward inside the mode) with the path-tracking hooks. Returns the mode."""
    mode = _mode_class()(recipe, report)
    _check_module_globs(model, mode.ops)
    _hooks(model, mode)
    model._numsim_mode = mode
    model.forward = types.MethodType(_simulated_forward, model)
    return mode
