"""`numsim verify fp16|units`: the arithmetic against independent oracles (docs/verification.md).

The engine is the library numsim.verify (oracles, the resumable exhaustive sweep, unit sweeps); this
command parses arguments, draws the progress bar and prints the results.
"""
from __future__ import annotations

import sys
import time


def register(sub):
    from ..verify import MODES

    p = sub.add_parser("verify", help="exhaustive and sampled checks of the arithmetic against independent oracles")
    vs = p.add_subparsers(dest="what", metavar="WHAT")
    f = vs.add_parser("fp16", help="the FP16 adder on all 2^32 operand pairs (resumable)")
    f.add_argument("--modes", default="nearest_even",
                   help=f"comma-separated rounding modes, or 'all' ({','.join(MODES)})")
    f.add_argument("--workers", type=int, default=2)
    f.add_argument("--state", default="exhaustive_fp16_state.json", help="resumable state file ('' for none)")
    f.add_argument("--chunk-a", type=int, default=256, help="first operands per chunk (divides 65536)")
    f.add_argument("--max-chunks", type=int, default=None, help="stop after this many chunks (a partial run)")
    f.add_argument("--sample", action="store_true",
                   help="only the stratified sample (every exponent pair, random mantissas), not the sweep")
    f.add_argument("--mpfr", type=int, default=0, help="also check this many random pairs against MPFR")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(func=run)
    u = vs.add_parser("units", help="every product and accumulate step of the small-operand-space units")
    u.add_argument("--full", action="store_true",
                   help="every FP16 accumulator code for INT4 x FP4 in every mode (minutes), FP8 x FP8 with --fp8-acc")
    u.add_argument("--fp8-acc", type=int, default=None,
                   help="with --full: FP16 accumulator codes for the FP8 x FP8 sweeps (default all 65536: hours)")
    u.set_defaults(func=run_units)
    p.set_defaults(func=lambda args: p.print_help() or 2)


class _Progress:
    """on_chunk callback of run_exhaustive: a tqdm bar on stderr, or a plain counter when tqdm is absent."""

    def __init__(self, desc):
        self.desc, self.bar = desc, None

    def __call__(self, done, total):
        if self.bar is None:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=done - 1, desc=self.desc, unit="chunk", file=sys.stderr)
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.update(done - self.bar.n)
        else:
            print(f"\r{self.desc}: {done}/{total} chunks", end="", file=sys.stderr, flush=True)

    def close(self):
        if self.bar:
            self.bar.close()
        elif self.bar is False:
            print(file=sys.stderr)


def run(args):
    from .. import verify
    from ..verify.oracles import check_modes

    modes = verify.MODES if args.modes == "all" else check_modes([m.strip() for m in args.modes.split(",")], "--modes")
    total_bad = 0
    if args.sample:
        for m, r in verify.sample_check(modes).items():
            total_bad += r["mismatches"]
            print(f"{m:13} stratified sample: {r['pairs']} pairs, {r['mismatches']} mismatches")
    else:
        t = time.perf_counter()
        progress = None if args.no_progress else _Progress("fp16 add")
        try:
            st = verify.run_exhaustive(modes, args.workers, args.state or None, args.chunk_a, args.max_chunks,
                                       on_chunk=progress)
        finally:
            if progress:
                progress.close()
        for m in modes:
            s = st["modes"][m]
            total_bad += s["mismatches"]
            print(f"{m:13} pairs {s['pairs']:>11} mismatches {s['mismatches']} NaN results {s['nan_results']} "
                  f"({'complete' if s['complete'] else 'partial'}; {s['seconds']:.0f} s CPU in workers, "
                  f"{s['wall_seconds']:.0f} s wall)")
            for e in s["examples"][:5]:
                print("   ", e)
        print(f"this invocation: {time.perf_counter() - t:.0f} s wall")
    if args.mpfr:
        try:
            res = verify.mpfr_sample(tuple(m for m in modes if m in verify.MPFR_MODES), args.mpfr)
        except ImportError:
            print("MPFR check skipped: gmpy2 is not installed")
        else:
            for m, r in res.items():
                total_bad += r["mismatches"]
                print(f"{m:13} MPFR sample: {r['pairs']} pairs, {r['mismatches']} mismatches")
    return 1 if total_bad else 0


def run_units(args):
    from ..verify import unit_checks

    t = time.perf_counter()
    n_bad = 0
    for r in unit_checks(full=args.full, fp8_acc=args.fp8_acc):
        n_bad += r["mismatches"]
        print(f"{r['mismatches']:>6} mismatches / {r['steps']:>11} steps  {r['check']}")
        for e in r["examples"][:3]:
            print("      ", e)
    print(f"total mismatches {n_bad}; {time.perf_counter() - t:.0f} s")
    return 1 if n_bad else 0

