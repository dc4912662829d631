"""The full cvfpu run: numsim as the golden model of cvfpu (FPnew) under Verilator through cocotb.

    python tools/cvfpu/run.py [--count 400000] [--seed 0] [--json report.json]

Prints every class of disagreement with its verdict (whose bug, by which rule) and exits 1 if any
disagreement has no verdict. tests/test_cvfpu.py runs a sample of the same vectors in CI.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cvfpu_golden  # noqa: E402
import cvfpu_sim  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=400_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write every disagreement with its verdict here")
    args = p.parse_args(argv)
    t = time.time()
    vec, res, flags = cvfpu_sim.run(args.count, args.seed)
    t_sim = time.time() - t
    rows, counts = cvfpu_golden.classify(vec, res, flags)
    print(cvfpu_golden.report(vec, rows, counts))
    print(f"(build + simulation {t_sim:.1f} s, comparison {time.time() - t - t_sim:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"count": args.count, "seed": args.seed, "counts": counts, "disagreements": rows}, f, indent=1)
    return 1 if "UNEXPLAINED" in counts else 0


if __name__ == "__main__":
    sys.exit(main())
