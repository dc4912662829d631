"""Every product and accumulate step of the small-operand-space units against numpy oracles built from
the exact-Fraction value tables; with --full, every FP16 accumulator code for every INT4 x FP4 and
FP8 x FP8 product in every rounding mode (2^32 steps for e4m3 x e4m3 alone; minutes on 2 cores).
A thin wrapper of `numsim verify units` (the library function is numsim.verify.unit_checks,
numsim/verify/units.py).

Usage: python benchmarks/exhaustive_units.py [--full]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from numsim.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["verify", "units"] + sys.argv[1:]))
