"""Training recipes: which layer runs which numerics ('tpr', 'int', 'float') and with what settings.
Plain dicts, no torch: a recipe is a name in RECIPES, a dict, or a TOML file (docs/training.md)."""
from __future__ import annotations

import copy
import math
import os

from ..errors import bad

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
RECIPE_KEYS = ("name", "default", "layers", "nthreads") + OVERRIDE_KEYS

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
    linear/conv > default."""
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
        if recipe not in RECIPES:
            raise bad("recipe", f"a recipe name in {sorted(RECIPES)}, a dict or a .toml path", repr(recipe))
        recipe = copy.deepcopy(RECIPES[recipe])
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
    return out
