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
    from ..errors import NumsimError, bad
    from ..verify import family_name, replay_recording

    if args.max_tiles is not None and args.max_tiles < 1:
        raise bad("--max-tiles", "a positive int", args.max_tiles)
    try:
        rows = replay_recording(args.file, unit=args.unit, max_tiles_per_family=args.max_tiles)
    except NumsimError as e:
        # the library names its argument `unit`; on the command line it is --unit
        if str(e).startswith("unit: "):
            raise NumsimError("--" + str(e)) from None
        raise
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
