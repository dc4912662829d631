"""Recorded hardware outputs: load a recording file (tools/gpu layouts: tc_*.npz, int_*.npz,
cublas_*.npz), replay every tile through a unit, and compare bit for bit (docs/hardware.md)."""
from __future__ import annotations

import os
import re
import zipfile

import numpy as np

from .. import FusedDotUnit, IntMMAUnit, get_unit
from ..errors import NumsimError, bad

__all__ = ["replay_recording", "family_name", "FAMILY_NAMES"]

_INT_FAMILY_NAMES = {0: "c mid-range", 1: "c near INT32 limits"}


def _tile_groups(z, path, fmt_hint=None):
    """The comparable groups of a recording file: dicts with label, A, B, C, D, family, operand fmt,
    integer variant, and the default preset. Raises NumsimError for an unknown layout."""

    keys = set(z.files)
    name = os.path.basename(str(path)).lower()
    groups = []
    if {"A", "B", "C", "D", "family", "unit", "a_fmt", "b_fmt"} <= keys:     # a CPU recording (cpu_recorder)
        unit = str(z["unit"])
        if not unit:
            raise bad("recording", "a recording whose instruction has a preset",
                      f"{path}: no preset models {json_instruction(z)} yet (docs/hardware.md)")
        groups.append(dict(label="tiles", A=z["A"], B=z["B"], C=z["C"], D=z["D"], family=z["family"],
                           fmt=str(z["a_fmt"]), b_fmt=str(z["b_fmt"]), variant=None, unit=unit))
    elif {"A", "B", "C", "D", "family"} <= keys:
        A = z["A"]
        if A.dtype == np.uint8:
            fmt, unit = "fp8_e4m3fn", "h100_mma_e4m3"
        elif A.dtype == np.uint16:
            # f16 and bf16 bits look alike: a named unit says how to read them, else the file name.
            is_bf16 = fmt_hint == "bf16" or (fmt_hint != "fp16" and "bf16" in name)
            fmt, unit = ("bf16", "h100_hmma_bf16") if is_bf16 else ("fp16", "h100_hmma_f16")
        else:
            raise bad("recording", "A of dtype uint8 (e4m3) or uint16 (f16 / bf16 bits)", f"{A.dtype} in {path}")
        groups.append(dict(label="tiles", A=A, B=z["B"], C=z["C"], D=z["D"], family=z["family"], fmt=fmt,
                           variant=None, unit=unit))
    elif any(k.endswith("_wrap_D") for k in keys):
        for p, fmt in (("s8", "int8"), ("s4", "int4")):
            need = {f"{p}_A", f"{p}_B", f"{p}_C", f"{p}_wrap_D", f"{p}_sat_D"}
            if not need <= keys:
                continue
            C = z[f"{p}_C"].astype(np.int64)
            fam = (np.abs(C).reshape(C.shape[0], -1).max(axis=1) > 2**31 - 2**16).astype(np.int64)
            for variant, suffix in (("wrap", ""), ("saturate", "_sat")):
                groups.append(dict(label=f"{p}_{'wrap' if variant == 'wrap' else 'sat'}", A=z[f"{p}_A"],
                                   B=z[f"{p}_B"], C=z[f"{p}_C"], D=z[f"{p}_{'wrap' if variant == 'wrap' else 'sat'}_D"],
                                   family=fam, fmt=fmt, variant=variant, unit=f"h100_imma_{p}{suffix}"))
    else:
        pre = sorted({m.group(1) for k in keys for m in [re.match(r"(\w+_K\d+)_A$", k)] if m})
        for p in pre:
            if not {f"{p}_B", f"{p}_D", f"{p}_family"} <= keys:
                raise bad("recording", f"{p}_B, {p}_D and {p}_family beside {p}_A", f"keys {sorted(keys)} in {path}")
            kind = p.split("_K")[0]
            fmt, unit = {"fp8": ("fp8_e4m3fn", "h100_cublas_e4m3"), "f16": ("fp16", "h100_cublas_f16"),
                         "bf16": ("bf16", "h100_cublas_bf16")}.get(kind, (None, None))
            if fmt is None:
                raise bad("recording", "array groups named fp8_K*, f16_K* or bf16_K*", f"{p} in {path}")
            groups.append(dict(label=p, A=z[f"{p}_A"], B=z[f"{p}_B"], C=z[f"{p}_C"] if f"{p}_C" in keys else None,
                               D=z[f"{p}_D"], family=z[f"{p}_family"], fmt=fmt, variant=None, unit=unit))
    if not groups:
        raise bad("recording", "a tc_*.npz (A, B, C, D, family), int_*.npz (s8_A ... s4_sat_D) or "
                  "cublas_*.npz (PREFIX_K*_A/B/D/family) layout", f"keys {sorted(keys)} in {path}")
    for g in groups:
        A, B, D = g["A"], g["B"], g["D"]
        T = A.shape[0] if A.ndim == 3 else -1
        if (A.ndim != 3 or B.ndim != 3 or D.ndim != 3 or B.shape[0] != T or D.shape[0] != T
                or B.shape[1] != A.shape[2] or D.shape[1:] != (A.shape[1], B.shape[2])
                or (g["C"] is not None and g["C"].shape != D.shape) or g["family"].shape != (T,)):
            raise bad("recording", "A (T,M,K), B (T,K,N), C and D (T,M,N), family (T,)",
                      f"{g['label']}: A {A.shape}, B {B.shape}, D {D.shape}, family {g['family'].shape} in {path}")
    return groups


def json_instruction(z):
    import json

    try:
        return json.loads(str(z["meta_json"])).get("instruction", "this instruction")
    except (KeyError, ValueError):
        return "this instruction"


def _operand_codes(x, fmt):
    if fmt == "int8":
        return x.astype(np.int8).view(np.uint8)
    if fmt == "int4":
        if x.size and (x.min() < -8 or x.max() > 7):
            raise bad("recording", "s4 operands in [-8, 7]", f"values {x.min()}..{x.max()}")
        return (x.astype(np.int16) & 0xF).astype(np.uint8)
    return x


def _same_bits(got, want, is_float):
    half = np.asarray(want).dtype.itemsize == 2          # fp16 outputs (vfmadd231ph recordings)
    got = np.asarray(got, np.uint32)
    want = np.asarray(want).view(np.uint32) if np.asarray(want).dtype.itemsize == 4 else np.asarray(want, np.uint32)
    eq = got == want
    if is_float:
        ex, man = (0x7C00, 0x3FF) if half else (0x7F800000, 0x7FFFFF)
        nan_g = ((got & ex) == ex) & ((got & man) != 0)
        nan_w = ((want & ex) == ex) & ((want & man) != 0)
        eq |= nan_g & nan_w
    return eq


# Operand formats a recording's file name declares (tools/gpu writes tc_h100_f16.npz, tc_h100_bf16.npz,
# tc_h100_e4m3.npz). f16 and bf16 tiles are both uint16 bits, so the name is what tells them apart.
_NAME_FORMATS = (("bf16", "bf16"), ("e4m3", "fp8_e4m3fn"), ("fp16", "fp16"), ("f16", "fp16"))


def _check_declared_format(path, unit):
    """Refuse a unit whose operand format is not the one the recording's name declares (a bf16 unit
    would read f16 bits as bf16 and report a meaningless match rate)."""
    name = os.path.basename(str(path)).lower()
    if not name.startswith("tc_"):      # int_*.npz and cublas_*.npz name their groups inside the file
        return
    declared = next((fmt for tag, fmt in _NAME_FORMATS if re.search(rf"(^|[_.-]){tag}([_.-]|$)", name)), None)
    a_fmt = getattr(unit.a_fmt, "name", str(unit.a_fmt))
    if declared is not None and a_fmt != declared:
        raise NumsimError(f"unit: {unit.name} takes {a_fmt} operands but {os.path.basename(str(path))} is a "
                          f"recording of {declared} tiles (by its name); choose a unit of that format "
                          f"(or none: each group's own preset)")


def replay_recording(path, unit=None, max_tiles_per_family=None):
    """Replay every tile of a recording through a unit (the group's default preset when unit is
    None; a named unit is applied to the groups whose operand format it takes).

    Returns a list of dicts: label, unit, family, matched, total, first_miss (tile, m, n) or None,
    and 'outputs' (the unit's codes, (T, M, N)) for further analysis."""
    if max_tiles_per_family is not None and (isinstance(max_tiles_per_family, (bool, np.bool_)) or not isinstance(
            max_tiles_per_family, (int, np.integer)) or max_tiles_per_family < 1):
        raise bad("max_tiles_per_family", "None or an int >= 1", repr(max_tiles_per_family))
    chosen = None if unit is None else get_unit(unit)
    if chosen is not None:
        _check_declared_format(path, chosen)
    # numpy's zip reader answers a truncated or empty file with BadZipFile / EOFError, when opening
    # it or when reading an array (lazily, in _tile_groups)
    unreadable = (OSError, EOFError, zipfile.BadZipFile, ValueError)
    try:
        z = np.load(path)
    except unreadable as e:
        raise bad("recording", "a readable .npz file", f"{path}: {e}") from None
    if not hasattr(z, "files"):
        raise bad("recording", "an .npz archive of arrays", f"a single array in {path}")
    try:
        groups = _tile_groups(z, path, None if chosen is None else chosen.a_fmt.name)
    except NumsimError:
        raise
    except unreadable as e:
        raise bad("recording", "a readable .npz file", f"{path}: {e}") from None
    rows = []
    for g in groups:
        u = get_unit(g["unit"]) if chosen is None else chosen
        if chosen is not None:
            if u.a_fmt.name != g["fmt"]:
                continue
            if isinstance(u, IntMMAUnit) and g["variant"] is not None and u.acc_overflow != g["variant"]:
                continue
        A, B, C, D, fam = g["A"], g["B"], g["C"], g["D"], g["family"]
        T = A.shape[0]
        tiles = np.arange(T)
        if max_tiles_per_family:
            tiles = np.concatenate([np.nonzero(fam == f)[0][:max_tiles_per_family] for f in np.unique(fam)])
            tiles.sort()
        out = np.zeros(D.shape, np.uint32)
        is_float = not isinstance(u, IntMMAUnit)
        for t in tiles:
            c = None
            if C is not None:
                if not is_float:
                    c = C[t].astype(np.int32).view(np.uint32)
                else:       # accumulator codes: fp32 bits, or fp16 bits in a uint16 array
                    c = C[t] if C.dtype == np.uint16 else C[t].view(np.uint32)
            out[t] = u.gemm_codes(_operand_codes(A[t], g["fmt"]), _operand_codes(B[t], g.get("b_fmt", g["fmt"])),
                                  c=c, nthreads=1).codes
        ok = _same_bits(out[tiles], D[tiles], is_float)
        for f in np.unique(fam[tiles]):
            sel = fam[tiles] == f
            okf = ok[sel]
            miss = np.argwhere(~okf)
            first = None
            if miss.size:
                t0, m0, n0 = miss[0]
                first = (int(tiles[sel][t0]), int(m0), int(n0))
            rows.append(dict(label=g["label"], unit=u.name, family=int(f), matched=int(okf.sum()),
                             total=int(okf.size), first_miss=first, int_family=not is_float))
        rows[-1]["outputs"] = out
    if not rows:
        raise bad("unit", f"a unit whose operands match a group of {path}",
                  f"{chosen.name} ({chosen.a_fmt}); groups: {', '.join(g['label'] + ':' + g['fmt'] for g in groups)}")
    return rows


FAMILY_NAMES = {0: "small integers", 1: "normal", 2: "wide exponent range", 3: "one large product",
                4: "large C, small products", 5: "pairwise cancellation", 6: "tiny (subnormals)",
                7: "random bit patterns"}


def family_name(row):
    if row.get("int_family"):
        return _INT_FAMILY_NAMES.get(row["family"], str(row["family"]))
    return FAMILY_NAMES.get(row["family"], str(row["family"]))
