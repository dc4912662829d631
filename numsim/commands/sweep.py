"""`numsim sweep FILE --out DIR [--scheduler tcp://...] [--workers N]`: a design-space sweep."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("sweep", help="run a design-space sweep of unit variants (TOML description)",
                       description="Run every variant of a TOML sweep over its workloads; write results.csv "
                                   "(+ .parquet), summary.md and plots into --out. Finished variants are kept "
                                   "in OUT/variants/ and skipped when the sweep is run again.")
    p.add_argument("file", metavar="FILE", help="the sweep description (TOML; see docs/sweeps.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created; reused to resume)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="a Dask distributed scheduler address (tcp://host:8786); default: local threads")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker threads (default: the CPU count); ignored with --scheduler")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="compute at most N new variants in this run (the rest on a later run)")
    p.add_argument("--check", action="store_true", help="validate the description and workloads, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true",
                   help="suspicious outputs (inf/NaN, saturated, overflow events) make the exit status 1")
    p.set_defaults(func=run)


def run(args):
    import sys

    from ..errors import bad
    from ..sweep import load_spec, plan_sweep, run_sweep
    from ._warn import warn

    if args.workers is not None and args.workers < 1:
        raise bad("--workers", "a positive number of threads", args.workers)
    if args.limit is not None and args.limit < 0:
        raise bad("--limit", "a non-negative number of variants", args.limit)

    spec = load_spec(args.file)
    if args.check:
        plan = plan_sweep(spec)
        print(f"sweep {plan.name}: {len(plan.variants)} variants x {len(plan.workloads.gemms)} GEMMs; "
              f"parameters: {', '.join(plan.param_keys)}")
        return 0
    res = run_sweep(spec, args.out, scheduler=args.scheduler, workers=args.workers,
                    progress=not args.no_progress, limit=args.limit)
    n_var = len({r["variant"] for r in res.rows})
    print(f"{res.ran} variants computed, {res.reused} reused, {n_var} in the table; "
          + ", ".join(f"{k}: {v}" for k, v in res.files.items()))
    for w in res.warnings:
        warn(f"sweep {spec.get('sweep', {}).get('name', args.file)}", w)
    if res.failures:
        for f in res.failures:
            print(f"numsim: variant {f['variant']} failed: {f['error']}", file=sys.stderr)
        return 1
    return 1 if args.strict and res.warnings else 0
