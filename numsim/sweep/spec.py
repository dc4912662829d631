"""The sweep description: TOML reading, validation, and the plan (every variant's unit and quantizer).

See numsim.sweep for the sections and parameter names. `plan_sweep` checks everything (units,
quantizers, workloads and their shapes and formats) before any GEMM runs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import NumsimError, bad
from .quantize import _external_quantizer, quantize_operand
from .workloads import WorkloadData, load_workloads

QUANT_KEYS = {"method", "rounding", "granularity", "percentile", "scale", "seed", "args"}
QUANT_METHODS = ("max", "auto", "percentile", "pow2", "fixed", "codes")
GRANULARITIES = ("tensor", "channel", "reduction_pow2", "sample_shift")
_TOP_SECTIONS = {"sweep", "fixed", "grid", "variants", "quant", "workload", "report"}

def load_spec(path) -> dict:
    """Read a TOML sweep description; relative workload paths resolve against its directory."""
    p = Path(path)
    if not p.is_file():
        raise bad("FILE", "a readable TOML sweep description", repr(str(path)))
    try:
        spec = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NumsimError(f"FILE: {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise NumsimError(f"FILE: cannot read {path}: {e.strerror or e}") from None
    spec.setdefault("_base_dir", str(p.resolve().parent))
    return spec


def _flatten(d, prefix=""):
    """Nested TOML tables -> dotted keys ('acc_fmt.man_bits')."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class Variant:
    index: int
    params: dict            # the swept parameters (dotted keys), in spec order
    variant_id: str = ""


@dataclass
class Plan:
    """A validated sweep: base unit, variants with their units, workloads and options."""

    name: str
    seed: int
    unit_name: str
    nthreads: int
    fixed: dict
    variants: list
    units: list             # one Unit per variant
    quants: list            # one {"a": {...}, "b": {...}} per variant
    workloads: "WorkloadData"
    report: dict
    param_keys: list
    spec_digest: str


def _check_table(spec, key, arg):
    v = spec.get(key, {})
    if not isinstance(v, dict):
        raise bad(arg, "a table", type(v).__name__)
    return v


def _split_params(params, unit_cls_fields, arg):
    """dotted params -> (unit overrides, format-field overrides, quant overrides); names are checked."""
    unit_kw, fmt_kw, quant_kw = {}, {}, {}
    for key, value in params.items():
        parts = key.split(".")
        if parts[0] == "quant":
            ops, rest = (("a", "b"), parts[1:]) if len(parts) > 1 and parts[1] not in ("a", "b") \
                else ((parts[1],) if len(parts) > 1 else (), parts[2:])
            if len(rest) == 1 and rest[0] in QUANT_KEYS and rest[0] != "args":
                name = rest[0]
            elif len(rest) == 2 and rest[0] == "args":
                name = ("args", rest[1])          # one keyword argument of a numsim.quant quantizer
            else:
                raise bad(arg, f"quantizer parameters quant[.a|.b].KEY with KEY in {sorted(QUANT_KEYS - {'args'})}, "
                          f"or quant[.a|.b].args.NAME", repr(key))
            for op in ops:
                quant_kw[(op, name)] = value
        elif len(parts) == 1:
            if parts[0] not in unit_cls_fields:
                raise NumsimError(f"{arg}: unknown parameter {key!r} for this unit; known: "
                                  f"{', '.join(sorted(unit_cls_fields))}, FIELD.SUB of a format field, "
                                  f"quant.KEY")
            unit_kw[key] = value
        elif len(parts) == 2:
            if parts[0] not in unit_cls_fields:
                raise NumsimError(f"{arg}: unknown parameter {key!r}: {parts[0]!r} is not a field of this unit")
            fmt_kw.setdefault(parts[0], {})[parts[1]] = value
        else:
            raise bad(arg, "a parameter name NAME, FIELD.SUB or quant[.a|.b].KEY", repr(key))
    return unit_kw, fmt_kw, quant_kw


def _build_unit(base, unit_kw, fmt_kw, arg):
    """The variant's unit: preset + overrides, with format fields replaced on top of whole formats."""
    from ..formats import get_format
    from ..units import get_unit

    try:
        unit = get_unit(base, **unit_kw)
        if fmt_kw:
            over = {}
            for fld, sub in fmt_kw.items():
                fmt = getattr(unit, fld)
                try:
                    fmt = get_format(fmt)
                except NumsimError:
                    raise NumsimError(f"{arg}: {fld}.SUB: {fld} is not a format-valued field "
                                      f"(its value is {fmt!r})") from None
                names = {f.name for f in dataclasses.fields(fmt)} - {"name"}
                for k in sub:
                    if k not in names:
                        raise NumsimError(f"{arg}: unknown parameter {fld}.{k}: {type(fmt).__name__} fields are "
                                          f"{', '.join(sorted(names))}")
                over[fld] = dataclasses.replace(fmt, name=None, **sub)
            unit = get_unit(unit, **over)
    except NumsimError as e:
        raise NumsimError(f"{arg}: {e}") from None
    except TypeError as e:  # an override the dataclass does not take
        raise NumsimError(f"{arg}: {e}") from None
    return unit


def _quant_defaults(spec):
    q = _check_table(spec, "quant", "quant")
    base = {k: v for k, v in q.items() if not isinstance(v, dict) or k == "args"}
    for k in base:
        if k not in QUANT_KEYS:
            raise bad("quant", f"keys in {sorted(QUANT_KEYS)} or tables a / b", repr(k))
    out = {}
    for op in ("a", "b"):
        d = {"method": "auto", "rounding": "nearest_even", "granularity": "tensor", "percentile": 99.99,
             "scale": 1.0, "seed": None, "args": {}}
        d.update(base)
        sub = q.get(op, {})
        if not isinstance(sub, dict):
            raise bad(f"quant.{op}", "a table", type(sub).__name__)
        for k, v in sub.items():
            if k not in QUANT_KEYS:
                raise bad(f"quant.{op}", f"keys in {sorted(QUANT_KEYS)}", repr(k))
            d[k] = v
        out[op] = d
    for k in q:
        if isinstance(q[k], dict) and k not in ("a", "b", "args"):
            raise bad("quant", "sub-tables a, b and args only", repr(k))
    return out


def _check_quant(q, unit, op, arg):
    from ..rounding import ROUNDING_MODES

    if not isinstance(q["args"], dict):
        raise bad(f"{arg}: quant.{op}.args", "a table of keyword arguments", repr(q["args"]))
    if isinstance(q["method"], str) and q["method"].startswith("numsim.quant."):
        _external_quantizer(q["method"], f"{arg}: quant.{op}.method")
    elif q["method"] not in QUANT_METHODS:
        raise bad(f"{arg}: quant.{op}.method", f"one of {list(QUANT_METHODS)} or numsim.quant.NAME",
                  repr(q["method"]))
    if q["rounding"] not in ROUNDING_MODES:
        raise bad(f"{arg}: quant.{op}.rounding", f"one of {sorted(ROUNDING_MODES)}", repr(q["rounding"]))
    if q["granularity"] not in GRANULARITIES:
        raise bad(f"{arg}: quant.{op}.granularity", f"one of {list(GRANULARITIES)}", repr(q["granularity"]))
    p = q["percentile"]
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p <= 100:
        raise bad(f"{arg}: quant.{op}.percentile", "a number in (0, 100]", repr(p))
    s = q["scale"]
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not (math.isfinite(s) and s > 0):
        raise bad(f"{arg}: quant.{op}.scale", "a finite positive number", repr(s))
    sd = q["seed"]
    if sd is not None and (not isinstance(sd, int) or isinstance(sd, bool) or sd < 0):
        raise bad(f"{arg}: quant.{op}.seed", "a non-negative integer", repr(sd))
    ctx_key = getattr(unit, "_ctx_key", None)
    g = q["granularity"]
    if g == "reduction_pow2" and ctx_key != "align_shift":
        raise NumsimError(f"{arg}: quant.{op}.granularity = 'reduction_pow2' needs a unit with per-channel "
                          f"alignment shifts (align_shift); unit {unit.name} has none")
    if g == "sample_shift" and ctx_key != "sample_shift":
        raise NumsimError(f"{arg}: quant.{op}.granularity = 'sample_shift' needs a unit with a sample_shift "
                          f"input; unit {unit.name} has none")
    return q


def _check_external_formats(plan_units, plan_quants, gemms):
    """Run each distinct numsim.quant quantizer once per operand: its QTensor's format must be the unit's."""
    seen = set()
    for i, (unit, q) in enumerate(zip(plan_units, plan_quants)):
        for op in ("a", "b"):
            m = q[op]["method"]
            if not (isinstance(m, str) and m.startswith("numsim.quant.")):
                continue
            fmt = getattr(unit, f"{op}_fmt")
            for gi, g in enumerate(gemms):
                if g.codes_fmt[op] is not None:
                    continue
                key = (op, _canon(q[op]), str(fmt), gi)
                if key in seen:
                    continue
                seen.add(key)
                try:
                    qt, _ = quantize_operand(getattr(g, op), fmt, q[op], op, 0, gi)
                except NumsimError as e:
                    raise NumsimError(f"variant {i}: quant.{op}.method = {m!r} on workload {g.name}: {e}") from None
                del qt


def _expand(spec):
    grid = _check_table(spec, "grid", "grid")
    grid = _flatten(grid)
    for k, v in grid.items():
        if not isinstance(v, list):
            raise bad(f"grid.{k}", "a list of values", type(v).__name__)
        if not v:
            raise bad(f"grid.{k}", "a non-empty list of values", "an empty list")
    listed = spec.get("variants")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(x, dict) for x in listed):
            raise bad("variants", "an array of tables ([[variants]])", type(listed).__name__)
        if not listed:
            raise bad("variants", "at least one variant", "an empty list")
        listed = [_flatten(x) for x in listed]
    if not grid and listed is None:
        raise NumsimError("grid: nothing to sweep: give [grid] parameter lists and/or [[variants]] tables")
    keys = list(grid)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))] if keys else [{}]
    out = []
    for base in (listed if listed is not None else [{}]):
        for c in combos:
            p = dict(base)
            clash = set(p) & set(c)
            if clash:
                raise NumsimError(f"variants: parameter {sorted(clash)[0]!r} is given both in [[variants]] and in "
                                  f"[grid]")
            p.update(c)
            out.append(p)
    return out


def _canon(x):
    return json.dumps(x, sort_keys=True, default=str, separators=(",", ":"))


def plan_sweep(spec: dict) -> Plan:
    """Validate a sweep description completely (every variant's unit and quantizer, every workload and
    its shapes and formats) and build the plan. Raises NumsimError before any GEMM runs."""
    from ..formats import get_format
    from ..units import get_unit

    if not isinstance(spec, dict):
        raise bad("spec", "a table (dict)", type(spec).__name__)
    unknown = set(k for k in spec if not k.startswith("_")) - _TOP_SECTIONS
    if unknown:
        raise NumsimError(f"spec: unknown section {sorted(unknown)[0]!r}; known: {', '.join(sorted(_TOP_SECTIONS))}")
    sw = _check_table(spec, "sweep", "sweep")
    for k in sw:
        if k not in ("name", "seed", "unit", "nthreads", "description"):
            raise bad("sweep", "keys name, seed, unit, nthreads, description", repr(k))
    name = str(sw.get("name", "sweep"))
    seed = sw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise bad("sweep.seed", "a non-negative integer", repr(seed))
    unit_name = sw.get("unit")
    if not isinstance(unit_name, str):
        raise bad("sweep.unit", "a unit preset name (numsim units lists them)", repr(unit_name))
    nthreads = sw.get("nthreads", 1)
    if not isinstance(nthreads, int) or isinstance(nthreads, bool) or not 1 <= nthreads <= 64:
        raise bad("sweep.nthreads", "an integer in [1, 64]", repr(nthreads))
    base_unit = get_unit(unit_name)      # unknown preset -> NumsimError
    fields = {f.name for f in dataclasses.fields(base_unit)} - {"name", "seed_source"}
    fixed = _flatten(_check_table(spec, "fixed", "fixed"))
    params_list = _expand(spec)
    qdef = _quant_defaults(spec)
    fixed_unit, fixed_fmt, fixed_quant = _split_params(fixed, fields, "fixed")
    variants, units, quants = [], [], []
    for i, p in enumerate(params_list):
        arg = f"variant {i} {_canon(p)}"
        ukw, fkw, qkw = _split_params(p, fields, arg)
        ukw = {**fixed_unit, **ukw}
        fmt_all = {k: dict(v) for k, v in fixed_fmt.items()}
        for k, v in fkw.items():
            fmt_all.setdefault(k, {}).update(v)
        unit = _build_unit(unit_name, ukw, fmt_all, arg)
        q = {op: dict(qdef[op]) for op in ("a", "b")}
        for (op, k), v in {**fixed_quant, **qkw}.items():
            if isinstance(k, tuple):
                q[op]["args"] = {**q[op]["args"], k[1]: v}
            else:
                q[op][k] = v
        for op in ("a", "b"):
            _check_quant(q[op], unit, op, arg)
        if getattr(unit, "_ctx_key", None) == "sample_shift" and "sample_shift" not in (
                q["a"]["granularity"], q["b"]["granularity"]):
            raise NumsimError(f"{arg}: unit {unit.name} needs per-sample shifts: set quant.a.granularity or "
                              f"quant.b.granularity to 'sample_shift'")
        variants.append(Variant(i, p))
        units.append(unit)
        quants.append(q)
    workloads = load_workloads(spec)
    # Operands given as codes must already be in the unit's formats; shapes must agree.
    for i, (unit, q) in enumerate(zip(units, quants)):
        for g in workloads.gemms:
            for op in ("a", "b"):
                ufmt = get_format(getattr(unit, f"{op}_fmt"))
                if g.codes_fmt[op] is not None:
                    if get_format(g.codes_fmt[op]) != ufmt:
                        raise NumsimError(f"workload {g.name}: operand {op} is given as {g.codes_fmt[op]} codes but "
                                          f"variant {i}'s unit takes {ufmt} (its {op}_fmt)")
                elif q[op]["method"] == "codes":
                    raise NumsimError(f"variant {i}: quant.{op}.method = 'codes' but workload {g.name} gives real "
                                      f"values for {op}")
    _check_external_formats(units, quants, workloads.gemms)
    digest_src = {"unit": unit_name, "fixed": fixed, "quant": qdef, "seed": seed,
                  "workloads": workloads.fingerprint, "version": 1}
    digest = hashlib.sha256(_canon(digest_src).encode()).hexdigest()
    variants = [dataclasses.replace(v, variant_id=hashlib.sha256(
        _canon({"sweep": digest, "params": v.params}).encode()).hexdigest()[:16]) for v in variants]
    keys = []
    for v in variants:
        for k in v.params:
            if k not in keys:
                keys.append(k)
    report = _check_table(spec, "report", "report")
    for k in report:
        if k not in ("x", "series", "metric", "gemm", "min_sqnr_db"):
            raise bad("report", "keys x, series, metric, gemm, min_sqnr_db", repr(k))
    if "min_sqnr_db" in report and (not isinstance(report["min_sqnr_db"], (int, float))
                                    or isinstance(report["min_sqnr_db"], bool)):
        raise bad("report.min_sqnr_db", "a number (dB)", repr(report["min_sqnr_db"]))
    if "metric" in report:
        from .metrics import PLOT_COLUMNS

        ms = report["metric"] if isinstance(report["metric"], list) else [report["metric"]]
        for m in ms:
            if m not in PLOT_COLUMNS:
                raise bad("report.metric", f"columns among {', '.join(PLOT_COLUMNS)}", repr(m))
    for k in ("x", "series"):
        if k in report and report[k] not in keys:
            raise bad(f"report.{k}", f"one of the swept parameters {keys}", repr(report[k]))
    return Plan(name=name, seed=seed, unit_name=unit_name, nthreads=nthreads, fixed=fixed, variants=variants,
                units=units, quants=quants, workloads=workloads, report=report,
                param_keys=keys, spec_digest=digest)
