"""`numsim formats [NAME] [--phase even|odd]`: the format registry and value tables."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("formats", help="list formats, or print one format's value table")
    p.add_argument("name", nargs="?", help="a format name (omit to list all)")
    p.add_argument("--phase", choices=["even", "odd"], help="radix-4 formats: the TPR grid to show")
    p.add_argument("--limit", type=int, default=None, help="print at most this many codes")
    p.set_defaults(func=run)


def _fmt_num(v):
    if isinstance(v, str):
        return v
    return f"{float(v):.10g}"


def run(args):
    from ..formats import REGISTRY, get_format

    if not args.name:
        print(f"{'name':14} {'bits':>4}  {'min':>12} {'max':>12} {'min normal':>12} {'min subnorm':>12}  specials")
        for name, f in REGISTRY.items():
            if f.kind == "int":
                print(f"{name:14} {f.bits:>4}  {f.min_value:>12} {f.max_value:>12} {'-':>12} {'-':>12}  none"
                      + ("  (symmetric)" if f.symmetric else ""))
            else:
                mx = f.max_finite
                extra = f"  radix 4, {'odd' if f.phase else 'even'} phase" if f.radix == 4 else ""
                print(f"{name:14} {f.bits:>4}  {-mx:>12.6g} {mx:>12.6g} {f.min_normal:>12.6g} "
                      f"{f.min_subnormal:>12.6g}  {f.specials}{extra}")
        return 0
    fmt = get_format(args.name)
    if args.phase:
        fmt = fmt.with_phase(args.phase)
    print(f"{fmt}: {fmt.describe()}")
    n = 2**fmt.bits
    if n > 4096 and args.limit is None:
        print(f"({n} codes; showing the first 256, pass --limit N for more)")
        limit = 256
    else:
        limit = args.limit if args.limit is not None else n
    w = (fmt.bits + 3) // 4
    print(f"{'code (binary)':>{fmt.bits + 2}}  {'hex':>{w + 2}}  value")
    for c in range(min(n, limit)):
        if fmt.kind == "int" and not fmt.valid_code(c):
            v = "(excluded)"
        else:
            v = fmt.exact_value(c)
        print(f"{c:0{fmt.bits}b}  {'0x' + format(c, f'0{w}X'):>{w + 2}}  {_fmt_num(v)}")
    return 0
