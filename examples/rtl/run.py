"""Run the example testbenches outside pytest; exit status 0 only when the simulation's own verdict is a pass.

    python examples/rtl/run.py vectors int4_int32 [--wrong] [--count N] [--seed S] [--acc-sat]
    python examples/rtl/run.py cocotb  int4_fp4r4_fp16 [--odd] [--wrong] [--cycles N]

`vectors` writes numsim vectors (numsim.rtl.generate + write) and replays them with the $readmemh
testbench; `cocotb` runs the cocotb testbench (every cycle checked against numsim.rtl.Model) and
reads the verdict from the results XML. Needs Icarus Verilog (and cocotb >= 2.0 for `cocotb`).
"""
import argparse
import json
import os
import sys
import tempfile

from numsim import get_unit
from numsim.rtl import generate, write
from numsim.rtl.sim import run_cocotb, run_vectors

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCES = {
    "int4_int32": (["int4_int32_mac.v", "int4_int32_widen.v"], ["int4_int32_mac.v", "wrong/int4_int32_widen_nosat.v"]),
    "int4_fp4r4_fp16": (["int4_fp4r4_fp16_mac.v", "fp16_round.v"],
                        ["int4_fp4r4_fp16_mac.v", "wrong/fp16_round_trunc.v"]),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("flow", choices=["vectors", "cocotb"])
    p.add_argument("unit", choices=sorted(SOURCES))
    p.add_argument("--wrong", action="store_true", help="use the deliberately wrong variant (must fail)")
    p.add_argument("--odd", action="store_true", help="int4_fp4r4_fp16: odd phase (ODD_PHASE=1)")
    p.add_argument("--acc-sat", action="store_true", help="int4_int32: saturating accumulator (ACC_SAT=1)")
    p.add_argument("--count", type=int, default=5000, help="random vectors (vectors flow)")
    p.add_argument("--cycles", type=int, default=3000, help="random cycles (cocotb flow)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", default=None, help="build directory (default: a temporary one)")
    args = p.parse_args(argv)


    over, params = {}, {}
    if args.unit == "int4_int32":
        over = {"widen_overflow": "saturate", "acc_overflow": "saturate" if args.acc_sat else "wrap"}
        params = {"ACC_SAT": int(args.acc_sat)}
    elif args.odd:
        over, params = {"phase": "odd"}, {"ODD_PHASE": 1}
    rtl = [os.path.join(HERE, f) for f in SOURCES[args.unit][int(args.wrong)]]
    work = args.work or tempfile.mkdtemp(prefix="numsim_rtl_")
    if args.flow == "vectors":
        vs = generate(get_unit(args.unit, **over), count=args.count, seed=args.seed)
        paths = write(vs, work)
        tb = f"tb_vectors_{args.unit}"
        res = run_vectors(rtl + [os.path.join(HERE, f"{tb}.v")], tb, paths["hex"], work, os.path.join(work, "build"),
                          parameters=params, expected_count=vs.count)
        what = f"{res.checked} vectors, {res.errors} mismatches"
    else:
        env = {"NUMSIM_CYCLES": str(args.cycles), "NUMSIM_SEED": str(args.seed), "NUMSIM_UNIT_OVERRIDES": json.dumps(over)}
        res = run_cocotb(rtl, f"{args.unit}_mac", f"cocotb_{args.unit}", HERE, os.path.join(work, "sim"), params, env)
        what = f"{res.checked} cocotb tests, {res.errors} failed"
    for m in res.messages:
        print(m[:1000])
    print(f"{'PASS' if res.passed else 'FAIL'}: {args.flow} {args.unit}{' (wrong variant)' if args.wrong else ''}: "
          f"{what} (work dir {work})")
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
