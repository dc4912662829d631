"""`numsim testfloat check|gen|run`: Berkeley TestFloat's test-vector lines (docs/verification.md).

check: numsim's standalone operations against a file of testfloat_gen output.
gen:   numsim-computed vectors in TestFloat's line format for any numsim float format.
run:   testfloat_gen (on PATH; tools/testfloat.sh builds it) against numsim for every mode.
The engine is numsim.verify.testfloat; this command parses arguments and prints.
"""
from __future__ import annotations

import sys


def register(sub):
    p = sub.add_parser("testfloat", help="TestFloat-format vectors: check numsim against testfloat_gen, or write them")
    ts = p.add_subparsers(dest="what", metavar="WHAT")
    c = ts.add_parser("check", help="check numsim against a file of testfloat_gen lines")
    c.add_argument("file", help="testfloat_gen output ('-' for stdin)")
    c.add_argument("--op", required=True, help="the TestFloat function, e.g. f16_add, f32_mulAdd, f16_to_f32")
    _env_args(c)
    c.add_argument("--any-nan", action="store_true", help="accept any NaN for a NaN result (testfloat_ver's default)")
    c.add_argument("--exact", action="store_true", help="TestFloat's -exact: conversions to integers raise inexact")
    c.add_argument("--show", type=int, default=10, help="failures to print")
    c.set_defaults(func=run_check)
    g = ts.add_parser("gen", help="write numsim-computed vectors in TestFloat's line format")
    g.add_argument("--format", required=True, help="numsim float format (fp8_e4m3fn, fp4_e2m1, bf16, fp4r4, ...)")
    g.add_argument("--op", required=True, help="add, sub, mul, div, mulAdd, or to_<format> (a conversion)")
    g.add_argument("--level", type=int, default=1, choices=(1, 2))
    g.add_argument("--max-cases", type=int, default=2_000_000)
    g.add_argument("--out", default="-", help="output file ('-' for stdout)")
    _env_args(g)
    g.set_defaults(func=run_gen)
    r = ts.add_parser("run", help="run testfloat_gen (on PATH) for every mode and check numsim")
    r.add_argument("--ops", default="", help="comma-separated functions (default: every one numsim shares)")
    r.add_argument("--rounding", default="all", help="comma-separated modes, or 'all'")
    r.add_argument("--tininess", default="after", help="after, before, or after,before")
    r.add_argument("--level", type=int, default=1, choices=(1, 2))
    r.add_argument("--max-lines", type=int, default=None, help="read at most this many lines per run")
    r.add_argument("--every", type=int, default=1, help="keep every k-th line (a sample of a long level-2 run)")
    r.add_argument("--nan-rule", default="x86")
    r.add_argument("--exact", action="store_true", help="TestFloat's -exact for conversions to integers")
    r.set_defaults(func=run_run)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _env_args(p):
    p.add_argument("--rounding", default="near_even",
                   help="near_even|minMag|min|max|near_maxMag|odd (TestFloat's names) or rne|rtz|rdn|rup|rna|rod")
    p.add_argument("--tininess", default="after", choices=("after", "before"))
    p.add_argument("--nan-rule", default="x86", help="x86 (SoftFloat 8086-SSE), arm (ARM-VFPv2), riscv (RISCV)")


def run_check(args):
    from ..verify import testfloat as tf

    source = sys.stdin.buffer.read() if args.file == "-" else _path(args.file)
    r = tf.check(source, args.op, args.rounding, tininess=args.tininess, nan_rule=args.nan_rule,
                 exact_nans=not args.any_nan, max_failures=args.show, exact=args.exact)
    print(r.summary())
    for f in r.failures:
        print("  " + tf.format_failure(args.op, f))
    return 0 if r.ok else 1


def _path(p):
    import os

    from ..errors import NumsimError

    if not os.path.exists(p):
        raise NumsimError(f"file: no such file {p!r}")
    return p


def run_gen(args):
    from ..verify import testfloat as tf

    name = tf.testfloat_name(args.format)
    op = args.op[3:] if args.op.startswith("to_") else args.op
    fn = f"{name}_to_{tf.testfloat_name(op)}" if args.op.startswith("to_") else f"{name}_{'mulAdd' if op == 'fma' else op}"
    v = tf.generate(fn, args.level, args.rounding, args.tininess, args.nan_rule, args.max_cases)
    text = tf.format_lines(v)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as fh:
            fh.write(text)
        print(f"{len(v)} {fn} vectors ({args.rounding}, level {args.level}) -> {args.out}", file=sys.stderr)
    return 0


def run_run(args):
    from ..verify import testfloat as tf

    ops = [o for o in args.ops.split(",") if o] or None
    modes = None if args.rounding == "all" else args.rounding.split(",")
    failed = 0

    def show(r):
        nonlocal failed
        failed += r.failed
        print(f"level {args.level} {r.summary()} (tininess {r.tininess})", flush=True)
        for f in r.failures[:5]:
            print("  " + tf.format_failure(r.function, f))

    tf.run_suite(ops, modes, args.tininess.split(","), args.level, args.max_lines, args.every, args.nan_rule,
                 on_result=show, exact=args.exact)
    return 0 if failed == 0 else 1
