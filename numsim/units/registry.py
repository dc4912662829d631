"""Named unit presets: register_unit / get_unit / unit_names, and the one override path.

Presets live in numsim.units.presets_seeds and numsim.units.presets_h100, imported on first use
(kept lazy so `import numsim` stays light)."""
from __future__ import annotations

import dataclasses
import importlib

from ..errors import NumsimError
from .base import Unit

_REGISTRY: dict = {}
PRESET_MODULES = ("numsim.units.presets_seeds", "numsim.units.presets_h100",
                  "numsim.units.presets_blackwell_block", "numsim.units.presets_silicon")

# Parameters renamed when the units were given one name per concept (issue 14): old -> new.
RENAMED = {"fused_n": "k_step", "sum_rounding": "acc_rounding", "overflow": "acc_overflow"}


def register_unit(name: str, factory, doc: str = ""):
    """Register a named preset; `factory(**overrides)` returns a Unit."""
    _REGISTRY[name] = (factory, doc)


def preset(cls, name, description, **defaults):
    """Register `cls(name=name, **defaults)` as a preset, overridable through `build`."""
    register_unit(name, lambda **overrides: build(cls, name, {**defaults, **overrides}), description)


def build(cls, name, params):
    """cls(name=name, **params) through the one override check: a parameter the unit does not have
    (or a renamed one) is a NumsimError naming it."""
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(params):
        if key in fields:
            continue
        if key in RENAMED and RENAMED[key] in fields:
            raise NumsimError(f"unit {name}: no parameter {key!r}: it is now {RENAMED[key]!r} (one name per "
                              f"concept across units)")
        raise NumsimError(f"unit {name}: no parameter {key!r} (overrides of {cls.__name__}: "
                          f"{', '.join(sorted(fields - {'name', 'seed_source', 'doc'}))})")
    kw = dict(params)
    kw.setdefault("name", name)
    return cls(**kw)


def get_unit(unit, **overrides) -> Unit:
    """A unit from a Unit or a preset name (with parameter overrides)."""
    if isinstance(unit, Unit):
        if not overrides:
            return unit
        # the unit's own parameters, overridden: the same check and error shape as a preset's
        params = {f.name: getattr(unit, f.name) for f in dataclasses.fields(unit) if f.init}
        return build(type(unit), unit.name, {**params, **overrides})
    if isinstance(unit, str):
        _load_presets()
        if unit not in _REGISTRY:
            raise NumsimError(f"unit: unknown unit preset {unit!r}; known: {', '.join(sorted(_REGISTRY))}")
        return _REGISTRY[unit][0](**overrides)
    raise NumsimError(f"unit: expected a Unit or a preset name, got {type(unit).__name__}")


def unit_names():
    _load_presets()
    return sorted(_REGISTRY)


def unit_doc(name):
    _load_presets()
    return _REGISTRY[name][1]


def _load_presets():
    for mod in PRESET_MODULES:
        importlib.import_module(mod)
