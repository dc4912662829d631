"""`numsim verify-hardware FILE [--unit NAME]`: replay a recording of tensor-core outputs through a
preset and print the bit-exact match rate by input family (docs/hardware.md). The replay is
numsim.verify.replay_recording; this command parses and prints."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("verify-hardware", help="compare recorded GPU MMA outputs with a unit, bit for bit")
    p.add_argument("file", help="a recording (.npz): tc_*.npz, int_*.npz or cublas_*.npz layout (tools/gpu)")
    p.add_argument("--unit", default=None,
                   help="a preset name (default: the H100 preset of each array group in the file)")
    p.add_argument("--max-tiles", type=int, default=None, help="replay at most this many tiles per family")
    p.set_defaults(func=run)


def run(args):
    from ..errors import bad
    from ..verify import family_name, replay_recording

    if args.max_tiles is not None and args.max_tiles < 1:
        raise bad("--max-tiles", "a positive int", args.max_tiles)
    if args.unit is not None:
        _check_declared_format(args.file, args.unit)
    import zipfile

    from ..errors import NumsimError

    try:
        rows = replay_recording(args.file, unit=args.unit, max_tiles_per_family=args.max_tiles)
    except (zipfile.BadZipFile, EOFError) as e:     # a truncated .npz: numpy's zip reader raises these
        raise NumsimError(f"recording: {args.file} is not a readable .npz file: {e}") from None
    print(f"{'group':10} {'unit':18} {'family':28} {'matched':>9} {'total':>9} {'rate':>8}  first miss (tile, m, n)")
    all_ok = all_n = 0
    for r in rows:
        fam = f"{r['family']} {family_name(r)}"
        rate = 100.0 * r["matched"] / r["total"] if r["total"] else 100.0
        miss = "" if r["first_miss"] is None else str(r["first_miss"])
        print(f"{r['label']:10} {r['unit']:18} {fam:28} {r['matched']:>9} {r['total']:>9} {rate:>7.3f}%  {miss}")
        all_ok += r["matched"]
        all_n += r["total"]
    print(f"total: {all_ok} / {all_n} outputs bit-exact ({100.0 * all_ok / max(all_n, 1):.4f}%)")
    return 0 if all_ok == all_n else 1


# Operand formats a recording's file name declares (tools/gpu writes tc_h100_f16.npz, tc_h100_bf16.npz,
# tc_h100_e4m3.npz). f16 and bf16 tiles are both uint16 bits, so the name is what tells them apart.
_NAME_FORMATS = (("bf16", "bf16"), ("e4m3", "fp8_e4m3fn"), ("fp16", "fp16"), ("f16", "fp16"))


def _check_declared_format(path, unit_name):
    """Refuse a unit whose operand format is not the one the recording's name declares (a bf16 unit
    would read f16 bits as bf16 and report a meaningless match rate)."""
    import os
    import re

    from ..errors import NumsimError
    from ..units import get_unit

    unit = get_unit(unit_name)
    name = os.path.basename(str(path)).lower()
    if not name.startswith("tc_"):      # int_*.npz and cublas_*.npz name their groups inside the file
        return
    declared = next((fmt for tag, fmt in _NAME_FORMATS if re.search(rf"(^|[_.-]){tag}([_.-]|$)", name)), None)
    a_fmt = getattr(unit.a_fmt, "name", str(unit.a_fmt))
    if declared is not None and a_fmt != declared:
        raise NumsimError(f"--unit: {unit.name} takes {a_fmt} operands but {os.path.basename(str(path))} is a "
                          f"recording of {declared} tiles (by its name); choose a unit of that format "
                          f"or omit --unit")
