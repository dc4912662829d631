"""A MAC unit described in a TOML file (no Python): `numsim vectors --unit-file FILE`, examples/rtl/run.py.

    numsim_unit = 1
    name = "int8_mac"
    kind = "int_mac"                  # int_mac | float_mac, or: preset = "int4_int32" (start from a preset)
    description = "INT8 x INT8 -> 16-bit product -> INT32 accumulator"
    [formats]   a = "int8"  b = "int8"  acc = "fp16" (float units)
    [widths]    widen = 16  acc = 32    (integer units)  |  k_step = 1 (lanes per step)
    [policies]  widen_overflow, acc_overflow, acc_rounding, ...   (the unit's own parameter names)
    [order]     kind = "sequential" | "chunked" | "pairwise", chunk = 64
    [rtl]       sources = ["int8_mac.v"] (relative to the file), top = "int8_mac", parameters = {}

Every key maps onto one unit parameter through numsim.units' one override check, so a misspelt key is a
NumsimError naming it, exactly as `--set` reports.
"""
from __future__ import annotations

import os
import tomllib

from ..errors import NumsimError

KINDS = {"int_mac": "IntMacUnit", "float_mac": "FloatMacUnit"}
_SECTIONS = {
    "formats": {"a": "a_fmt", "b": "b_fmt", "acc": "acc_fmt"},
    "widths": {"widen": "widen_bits", "acc": "acc_bits", "k_step": "k_step", "inner": "inner_bits"},
    "order": {"kind": "order", "chunk": "chunk"},
}
_TOP = {"numsim_unit", "name", "kind", "preset", "description", "formats", "widths", "policies", "order", "rtl"}


def read_unit_file(path):
    """(unit, info) from a TOML unit file; info holds 'description' and the [rtl] section (paths absolute)."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise NumsimError(f"--unit-file: cannot read {path!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise NumsimError(f"--unit-file {os.path.basename(path)}: not valid TOML: {e}") from None
    where = f"--unit-file {os.path.basename(path)}"
    unknown = sorted(set(doc) - _TOP)
    if unknown:
        raise NumsimError(f"{where}: unknown key(s) {unknown}; expected {sorted(_TOP)}")
    if doc.get("numsim_unit", 1) != 1:
        raise NumsimError(f"{where}: numsim_unit: expected 1, got {doc['numsim_unit']!r}")
    if not isinstance(doc.get("name"), str) or not doc["name"].isidentifier():
        raise NumsimError(f"{where}: name: expected an identifier (it names the files and the RTL), "
                          f"got {doc.get('name')!r}")
    params = {}
    for sec, keys in _SECTIONS.items():
        table = doc.get(sec, {})
        if not isinstance(table, dict):
            raise NumsimError(f"{where}: [{sec}]: expected a table")
        for k, v in table.items():
            if k not in keys:
                raise NumsimError(f"{where}: [{sec}] {k}: unknown key; expected one of {sorted(keys)}")
            params[keys[k]] = v
    pol = doc.get("policies", {})
    if not isinstance(pol, dict):
        raise NumsimError(f"{where}: [policies]: expected a table")
    params.update(pol)
    from .. import units
    from ..units.registry import build

    try:
        if "preset" in doc:
            if "kind" in doc:
                raise NumsimError("give either kind or preset, not both")
            unit = units.get_unit(units.get_unit(doc["preset"]), **params, name=doc["name"])
        else:
            kind = doc.get("kind")
            if kind not in KINDS:
                raise NumsimError(f"kind: expected one of {sorted(KINDS)} (or preset = NAME), got {kind!r}")
            unit = build(getattr(units, KINDS[kind]), doc["name"], params)
    except NumsimError as e:
        raise NumsimError(f"{where}: {e}") from None
    rtl = dict(doc.get("rtl", {}))
    base = os.path.dirname(os.path.abspath(path))
    rtl["sources"] = [os.path.join(base, s) for s in rtl.get("sources", [])]
    return unit, {"description": doc.get("description", ""), "rtl": rtl, "path": os.path.abspath(path)}
