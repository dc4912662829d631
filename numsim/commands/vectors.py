"""`numsim vectors UNIT --count N --out DIR [--seed S] [--set key=value ...] [--kinds ...]`: RTL test
vectors ($readmemh hex, JSON manifest, Verilog include of the field offsets) for a MAC unit."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("vectors", help="write $readmemh test vectors and a JSON manifest for a MAC unit")
    p.add_argument("unit", nargs="?", help="a unit preset name (see `numsim unit`); or give --unit-file")
    p.add_argument("--unit-file", default=None, metavar="TOML",
                   help="a unit described in a TOML file (docs/rtl.md, 'A unit in a TOML file')")
    p.add_argument("--count", type=int, required=True, help="number of random accumulation vectors (>= 1)")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random vectors (default 0)")
    p.add_argument("--name", default=None, help="file name stem (default: the unit name)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a unit parameter, e.g. --set phase=odd --set widen_overflow=saturate")
    p.add_argument("--kinds", default="corner,exhaustive,random",
                   help="comma-separated subset of corner,exhaustive,random (default: all three)")
    p.add_argument("--nonfinite-share", type=float, default=0.05,
                   help="float units: at most this share of random vectors expect an inf/NaN output "
                        "(default 0.05; 1 for no limit)")
    p.add_argument("--dpi", action="store_true",
                   help="also write NAME_dpi.c: a DPI-C step function of the unit (numsim.rtl.dpigen)")
    p.set_defaults(func=run)


def run(args):
    from ..errors import bad
    from ..rtl import generate, write
    from ..rtl.vectors import describe_unit
    from ._warn import warn
    from .unit import unit_with_settings

    if args.count <= 0:
        raise bad("--count", "a positive number of vectors", args.count)
    if (args.unit is None) == (args.unit_file is None):
        raise bad("unit", "a preset name or --unit-file FILE (one of them)",
                  "both" if args.unit else "neither")
    if args.unit_file:
        from ..rtl.unitfile import read_unit_file

        unit = read_unit_file(args.unit_file)[0]
        if args.set:
            unit = unit_with_settings(unit, args.set)
    else:
        unit = unit_with_settings(args.unit, args.set)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    vs = generate(unit, count=args.count, seed=args.seed, kinds=kinds, nonfinite_share=args.nonfinite_share)
    paths = write(vs, args.out, name=args.name)
    print(describe_unit(unit, vs.layout))
    print(f"{vs.count} vectors of {vs.layout.word_bits} bits: "
          + ", ".join(f"{s['kind']} {s['count']}" for s in vs.sections))
    for k in ("hex", "json", "vh"):
        print(f"  {paths[k]}")
    if args.dpi:
        from ..rtl.dpigen import write_dpi

        print(f"  {write_dpi(unit, args.out, args.name)}")
    text = _suspicious(vs)
    if text:
        warn(f"vectors {unit.name}", text)
    return 0


def _suspicious(vs):
    """Expected accumulator outputs that are inf/NaN or at the accumulator's range ends, by section
    (the corner section holds such cases on purpose; random ones are worth knowing about)."""
    import numpy as np

    from ..codec import decode
    from ..formats import get_format
    from ..events import suspicious_counts

    acc = get_format(vs.unit.acc_fmt)
    codes = np.array([r["acc"] for r in vs.rows], dtype=np.uint64).astype(acc.dtype)
    values = decode(codes, acc) if len(codes) else np.zeros(0)
    parts = []
    for sec in vs.sections:
        c = suspicious_counts(values[sec["first"]:sec["first"] + sec["count"]], acc)
        if c["saturated"]:
            what = f"{c['nonfinite']} inf/NaN, " if c["nonfinite"] else ""
            parts.append(f"{sec['kind']} {what}{c['saturated'] - c['nonfinite']} at the range ends"
                         f" (of {sec['count']})")
    if not parts:
        return None
    return ("expected accumulator outputs that are non-finite or saturated, by section: " + ", ".join(parts)
            + ("; corner vectors hold them on purpose" if any(p.startswith("corner") for p in parts) else ""))
