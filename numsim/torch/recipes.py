"""Training recipes: which layer runs which numerics ('tpr', 'int', 'float') and with what settings.
Plain dicts, no torch: a recipe is a name in RECIPES, a dict, or a TOML file (docs/training.md)."""
from __future__ import annotations

import copy
import math
import os

from ..errors import NumsimError, bad

MODES = ("tpr", "int", "float")
GRAD_QUANTIZERS = ("ptq", "psq", "shift", "bhq")

MODE_DEFAULTS = {
    "tpr": {"mode": "tpr", "act_bits": 4, "act_alpha": 10.0, "act_alpha_min": 2.0**-4, "weight_bits": 4, "weight_variant": "zero_aligned",
            "phases": 2, "dx_phase": "even", "threshold": "log", "underflow": "flush", "scale_method": "max_pow2",
            "odd_underflow": "flush", "bwd_unit": {}, "wgrad_split": 0, "seed": 0, "nthreads": None},
    "int": {"mode": "int", "fwd_bits": 8, "grad_quantizer": "ptq", "grad_bits": 8, "max_shift": 4, "seed": 0, "nthreads": None},
    "float": {"mode": "float"},
}

# where a recipe may override the default layer config
OVERRIDE_KEYS = ("first", "last", "pointwise", "depthwise", "linear", "conv")
RECIPE_KEYS = ("name", "default", "layers", "nthreads", "ops") + OVERRIDE_KEYS

_HIGH_PRECISION = {"mode": "int", "fwd_bits": 8, "grad_quantizer": "ptq", "grad_bits": 8}

RECIPES = {
    "float32": {"name": "float32", "default": "float"},
    # seed 003: INT4 forward, FP4 TPR backward; first and last layers and depthwise convolutions in
    # higher precision (torch float stands in for FP16), 1x1 convolutions with 8-bit gradients
    # (standing in for the seed's FP8 'bottom conv1x1')
    "tpr4": {"name": "tpr4", "default": "tpr", "first": "float", "last": "float", "depthwise": "float",
             "pointwise": dict(_HIGH_PRECISION)},
    "tpr4_one_phase": {"name": "tpr4_one_phase", "default": {"mode": "tpr", "phases": 1}, "first": "float",
                       "last": "float", "depthwise": "float", "pointwise": dict(_HIGH_PRECISION)},
    # every layer through the TPR datapath (no float layers): the strict form, used by the tests
    "tpr4_all": {"name": "tpr4_all", "default": "tpr"},
}
for _q in GRAD_QUANTIZERS:
    for _b in (4, 5, 6, 8):
        # seed 000: 8-bit forward, b-bit gradients, every dense/conv layer quantized
        RECIPES[f"int8_{_q}{_b}"] = {"name": f"int8_{_q}{_b}",
                                      "default": {"mode": "int", "grad_quantizer": _q, "grad_bits": _b}}


def _layer_config(spec, base=None, where="default"):
    """A full layer config dict from a mode name, a dict (with or without 'mode'), or None."""
    if spec is None:
        return dict(base) if base is not None else dict(MODE_DEFAULTS["float"])
    if isinstance(spec, str):
        if spec not in MODES:
            raise bad(where, f"a layer mode in {MODES} or a dict", repr(spec))
        return dict(MODE_DEFAULTS[spec])
    if not isinstance(spec, dict):
        raise bad(where, "a layer mode name or a dict", type(spec).__name__)
    mode = spec.get("mode", (base or {}).get("mode"))
    if mode not in MODES:
        raise bad(f"{where}.mode", f"one of {MODES}", repr(mode))
    cfg = dict(base) if base is not None and base.get("mode") == mode else dict(MODE_DEFAULTS[mode])
    for key, v in spec.items():
        if key not in MODE_DEFAULTS[mode]:
            raise bad(f"{where}.{key}", f"a key of a '{mode}' layer ({sorted(MODE_DEFAULTS[mode])})", repr(key))
        cfg[key] = v
    _check_layer_config(cfg, where)
    return cfg


def _check_layer_config(cfg, where):
    m = cfg["mode"]
    if m == "tpr":
        if cfg["phases"] not in (1, 2):
            raise bad(f"{where}.phases", "1 or 2", repr(cfg["phases"]))
        if cfg["act_bits"] != 4 or cfg["weight_bits"] != 4:
            raise bad(f"{where}.act_bits/weight_bits", "4 (the INT4 datapath of seed 003)",
                      (cfg["act_bits"], cfg["weight_bits"]))
        if cfg["weight_variant"] not in ("zero_aligned", "no_zero"):
            raise bad(f"{where}.weight_variant", "'zero_aligned' or 'no_zero'", repr(cfg["weight_variant"]))
        for key in ("act_alpha", "act_alpha_min"):
            a = cfg[key]
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not (math.isfinite(a) and a > 0):
                raise bad(f"{where}.{key}", "a finite positive number", repr(a))
        ws = cfg["wgrad_split"]
        if isinstance(ws, bool) or not isinstance(ws, int) or ws < 0:
            raise bad(f"{where}.wgrad_split", "0 (one pass) or a positive number of reduction rows per split", repr(ws))
        if not isinstance(cfg["bwd_unit"], dict):
            raise bad(f"{where}.bwd_unit", "a dict of int4_fp4r4_fp16 overrides", type(cfg["bwd_unit"]).__name__)
    elif m == "int":
        if cfg["grad_quantizer"] not in GRAD_QUANTIZERS:
            raise bad(f"{where}.grad_quantizer", f"one of {GRAD_QUANTIZERS}", repr(cfg["grad_quantizer"]))
        for key, lo, hi in (("fwd_bits", 2, 8), ("grad_bits", 2, 8)):
            v = cfg[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise bad(f"{where}.{key}", f"an integer in [{lo}, {hi}]", repr(v))
    if m != "float":
        nt = cfg["nthreads"]
        if nt is not None and (isinstance(nt, bool) or not isinstance(nt, int) or not 1 <= nt <= 64):
            raise bad(f"{where}.nthreads", "None or an integer in [1, 64]", repr(nt))
        s = cfg["seed"]
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise bad(f"{where}.seed", "a non-negative integer", repr(s))


def load_recipe(recipe) -> dict:
    """A normalized recipe from a name in RECIPES, a dict, or a path to a TOML file.

    A recipe: {"name": str, "default": layer spec, "first"/"last"/"pointwise"/"depthwise"/"linear"/
    "conv": layer spec, "layers": {module name: layer spec}, "nthreads": int}; a layer spec is a mode
    name ('tpr', 'int', 'float') or a dict of that mode's keys (MODE_DEFAULTS); a dict without 'mode'
    refines the default's mode. Precedence: layers[name] > first/last > depthwise/pointwise >
    linear/conv > default. An "ops" section (op-level GEMM specs, see load_ops) is normalized into
    out["ops"] (None without one)."""
    if isinstance(recipe, (str, os.PathLike)) and (str(recipe).endswith(".toml") or os.path.sep in str(recipe)):
        import tomllib

        try:
            with open(recipe, "rb") as f:
                recipe = tomllib.load(f)
        except OSError as e:
            raise bad("recipe", "a readable TOML file", f"{recipe!r} ({e.strerror})") from None
        except tomllib.TOMLDecodeError as e:
            raise bad("recipe", "a valid TOML file", f"{e}") from None
    elif isinstance(recipe, str):
        named = {**RECIPES, **OP_RECIPES}
        if recipe not in named:
            raise bad("recipe", f"a recipe name in {sorted(named)}, a dict or a .toml path", repr(recipe))
        recipe = copy.deepcopy(named[recipe])
    if not isinstance(recipe, dict):
        raise bad("recipe", "a recipe name, a dict or a .toml path", type(recipe).__name__)
    for key in recipe:
        if key not in RECIPE_KEYS:
            raise bad(f"recipe.{key}", f"one of {RECIPE_KEYS}", repr(key))
    out = {"name": str(recipe.get("name", "custom")), "nthreads": recipe.get("nthreads")}
    out["default"] = _layer_config(recipe.get("default", "float"), None, "recipe.default")
    for key in OVERRIDE_KEYS:
        if key in recipe:
            out[key] = _layer_config(recipe[key], out["default"], f"recipe.{key}")
    layers = recipe.get("layers", {})
    if not isinstance(layers, dict):
        raise bad("recipe.layers", "a dict {module name: layer spec}", type(layers).__name__)
    out["layers"] = {name: _layer_config(spec, out["default"], f"recipe.layers.{name}") for name, spec in layers.items()}
    nt = out["nthreads"]
    if nt is not None and (isinstance(nt, bool) or not isinstance(nt, int) or not 1 <= nt <= 64):
        raise bad("recipe.nthreads", "None or an integer in [1, 64]", repr(nt))
    out["ops"] = load_ops(recipe["ops"]) if "ops" in recipe else None
    return out


# ---- op-level recipes (numsim.torch.simulate): which unit runs each GEMM, by kind, module and role ----
#
# A recipe's "ops" section: {"default": gemm spec, "kinds": {kind: spec}, "roles": {role: spec},
# "modules": {glob on the module's qualified name: spec or {"default", "kinds", "roles"}}, "seed": int}.
# A gemm spec is "float", a shorthand in GEMM_PRESETS, a unit name, or {"unit": name, **unit overrides}.

OP_KINDS = ("linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "conv2d", "sdpa")
# forward roles: a GEMM with a weight operand (a Parameter, or F.linear / F.conv2d's weight) or of two
# activations (QK^T, PV, x @ y); backward roles: the GEMM giving an activation's / a weight's gradient
FWD_ROLES = ("weight", "act_act")
BWD_ROLES = ("grad_input", "grad_weight")
OP_ROLES = FWD_ROLES + BWD_ROLES
OPS_KEYS = ("default", "kinds", "roles", "modules", "seed")

GEMM_PRESETS = {
    "int8": {"unit": "int4_int32", "a_fmt": "int8", "b_fmt": "int8", "widen_bits": 32},
    "int4": {"unit": "int4_int32"},
    "fp8": {"unit": "fp8_fp16"},           # E4M3 operands, FP16 accumulator
    "fp16": {"unit": "fp16_fp32"},         # FP16 operands, FP32 accumulator
}

OP_RECIPES = {
    # every GEMM of the model, forward and backward, INT8 x INT8 -> INT32 (gradients: stochastic rounding)
    "ops_int8": {"name": "ops_int8", "ops": {"default": "int8"}},
    "ops_fp8": {"name": "ops_fp8", "ops": {"default": "fp8"}},
    "ops_fp16": {"name": "ops_fp16", "ops": {"default": "fp16"}},
    # attention (activation x activation) GEMMs in FP8 with an FP16 accumulator, weight GEMMs INT4,
    # every backward GEMM INT8
    "ops_fp8_attention_int4_weights": {
        "name": "ops_fp8_attention_int4_weights",
        "ops": {"default": "int8",
                "roles": {"weight": "int4", "act_act": "fp8", "grad_input": "int8", "grad_weight": "int8"}}},
}


def gemm_spec(spec, where):
    """A normalized gemm spec: None (float) or {"unit": name, **overrides}, checked by building the unit."""
    from ..formats import FloatFormat, IntFormat
    from ..units import get_unit, unit_names

    if spec == "float":
        return None
    if isinstance(spec, str):
        if spec in GEMM_PRESETS:
            spec = GEMM_PRESETS[spec]
        elif spec in unit_names():
            spec = {"unit": spec}
        else:
            raise bad(where, f"'float', a shorthand in {sorted(GEMM_PRESETS)} or a unit name", repr(spec))
    if not isinstance(spec, dict) or not isinstance(spec.get("unit"), str):
        raise bad(where, "'float', a shorthand, a unit name or a dict {'unit': name, **overrides}", repr(spec))
    spec = dict(spec)
    overrides = {k: v for k, v in spec.items() if k != "unit"}
    try:
        unit = get_unit(spec["unit"], **overrides)
    except NumsimError as e:
        raise NumsimError(f"{where}: {e}") from None
    except TypeError as e:
        raise bad(where, f"overrides of unit {spec['unit']!r}", f"{overrides} ({e})") from None
    for side in ("a_fmt", "b_fmt"):
        f = getattr(unit, side, None)
        ok = isinstance(f, IntFormat) and f.signed or isinstance(f, FloatFormat) and f.radix == 2
        if not ok or type(unit).__name__ in ("SampleShiftUnit", "Int4Fp4r4Unit"):
            raise bad(where, "a unit with signed-integer or radix-2 float operands (the radix-4 FP4 and "
                             "sample-shift units need the module-level 'tpr' / 'int' modes of convert)",
                      f"{spec['unit']} ({side} {getattr(f, 'name', f)})")
    return spec


def _ops_level(d, where, allow_modules):
    if not isinstance(d, dict):
        return {"default": gemm_spec(d, where)}
    out = {}
    for key in d:
        if key not in OPS_KEYS or (key == "modules" and not allow_modules) or (key == "seed" and not allow_modules):
            raise bad(f"{where}.{key}", f"one of {OPS_KEYS if allow_modules else ('default', 'kinds', 'roles')}",
                      repr(key))
    if "default" in d:
        out["default"] = gemm_spec(d["default"], f"{where}.default")
    for key, names in (("kinds", OP_KINDS), ("roles", OP_ROLES)):
        sub = d.get(key, {})
        if not isinstance(sub, dict):
            raise bad(f"{where}.{key}", f"a dict {{{key[:-1]}: gemm spec}}", type(sub).__name__)
        for name in sub:
            if name not in names:
                raise bad(f"{where}.{key}.{name}", f"one of {names}", repr(name))
        out[key] = {name: gemm_spec(s, f"{where}.{key}.{name}") for name, s in sub.items()}
    return out


def load_ops(ops) -> dict:
    """A normalized "ops" section (see the comment above OP_KINDS)."""
    if not isinstance(ops, dict):
        raise bad("recipe.ops", "a dict with keys in " + str(OPS_KEYS), type(ops).__name__)
    out = _ops_level(ops, "recipe.ops", True)
    out.setdefault("default", None)
    mods = ops.get("modules", {})
    if not isinstance(mods, dict):
        raise bad("recipe.ops.modules", "a dict {glob on module names: gemm spec or dict}", type(mods).__name__)
    out["modules"] = {g: _ops_level(s, f"recipe.ops.modules.{g}", False) for g, s in mods.items()}
    seed = ops.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise bad("recipe.ops.seed", "a non-negative integer", repr(seed))
    out["seed"] = seed
    return out


def resolve_gemm(ops, path, kind, role, fwd_role=None):
    """The gemm spec (None = float) of one GEMM of role `role` (a backward role names its op's
    forward role `fwd_role`). Levels: the top level, then each modules[glob] matching `path`, in
    order; within a level: default (module levels), kinds[kind], roles[fwd_role], roles[role]; a
    later entry wins. So a backward GEMM follows its forward GEMM unless a role entry names it."""
    import fnmatch

    levels = [ops] + [lv for g, lv in ops["modules"].items() if fnmatch.fnmatchcase(path, g)]
    spec = ops["default"]
    for lv in levels:
        if "default" in lv and lv is not ops:
            spec = lv["default"]
        for table, key in (("kinds", kind), ("roles", fwd_role), ("roles", role)):
            if key in lv.get(table, {}):
                spec = lv[table][key]
    return spec
