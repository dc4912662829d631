"""Every one of the 2^32 FP16 operand pairs through the units' FP16 adder (ns_f16_add) against an
independent numpy oracle, resumable, with an optional MPFR sample. A thin wrapper of
`numsim verify fp16` (the oracles and the sweep are the library numsim.verify: verify/oracles.py,
verify/exhaustive.py; `numsim.verify.run_exhaustive` is the resumable sweep as a function).

Usage (from the repository root):
  python benchmarks/exhaustive_fp16.py                        # nearest-even, 2 workers, resumable
  python benchmarks/exhaustive_fp16.py --modes all --mpfr 200000
  python benchmarks/exhaustive_fp16.py --sample --modes all   # the stratified sample CI also runs
Interrupt at any time; rerunning with the same --state file resumes where it stopped.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from numsim.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["verify", "fp16"] + sys.argv[1:]))
