"""Run the example testbenches outside pytest; exit status 0 only when the simulation's own verdict is a pass.

    python examples/rtl/run.py vectors int4_int32 [--wrong] [--count N] [--seed S] [--acc-sat]
    python examples/rtl/run.py cocotb  int4_fp4r4_fp16 [--odd] [--wrong] [--cycles N]
    python examples/rtl/run.py vectors --unit-file units/int8_mac.toml        # any unit: a TOML unit file
    python examples/rtl/run.py cocotb  UNIT --rtl my_mac.v --top my_mac [--set k=v]   # any registered unit

`vectors` writes numsim vectors (numsim.rtl.generate + write) and replays them with the $readmemh
testbench; `cocotb` runs the cocotb testbench (every cycle checked against numsim.rtl.Model) and
reads the verdict from the results XML. Needs Icarus Verilog (and cocotb >= 2.0 for `cocotb`).
"""
import argparse
import json
import os
import shutil
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
    p.add_argument("unit", nargs="?", help="a registered unit (its RTL: the examples' own, or --rtl/--top)")
    p.add_argument("--unit-file", default=None, help="a TOML unit file (docs/rtl.md); its [rtl] names the sources")
    p.add_argument("--rtl", nargs="+", default=None, help="Verilog sources of the DUT (generic testbenches)")
    p.add_argument("--top", default=None, help="the DUT's module name (with --rtl)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a unit parameter")
    p.add_argument("--wrong", action="store_true", help="use the deliberately wrong variant (must fail)")
    p.add_argument("--odd", action="store_true", help="int4_fp4r4_fp16: odd phase (ODD_PHASE=1)")
    p.add_argument("--acc-sat", action="store_true", help="int4_int32: saturating accumulator (ACC_SAT=1)")
    p.add_argument("--count", type=int, default=5000, help="random vectors (vectors flow)")
    p.add_argument("--cycles", type=int, default=3000, help="random cycles (cocotb flow)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", default=None, help="build directory, kept (default: a temporary one, removed at exit)")
    p.add_argument("--keep", action="store_true", help="keep the temporary build directory (its path is printed)")
    args = p.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="numsim_rtl_")
    try:
        return _run(args, work)
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(args, work):
    if args.unit_file or args.rtl or args.unit not in SOURCES:
        return _run_generic(args, work)
    over, params = {}, {}
    if args.unit == "int4_int32":
        over = {"widen_overflow": "saturate", "acc_overflow": "saturate" if args.acc_sat else "wrap"}
        params = {"ACC_SAT": int(args.acc_sat)}
    elif args.odd:
        over, params = {"phase": "odd"}, {"ODD_PHASE": 1}
    rtl = [os.path.join(HERE, f) for f in SOURCES[args.unit][int(args.wrong)]]
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
          f"{what}" + (f" (work dir {work})" if args.work or args.keep else ""))
    return 0 if res.passed else 1


def _run_generic(args, work):
    """Any unit: the generic $readmemh testbench (tb_vectors_generic.v) or cocotb_unit.py, with the DUT's
    ports as docs/rtl.md's contract names them."""
    from numsim.errors import NumsimError
    from numsim.rtl.unitfile import read_unit_file
    from numsim.commands.unit import unit_with_settings

    if (args.unit is None) == (args.unit_file is None):
        raise SystemExit("run.py: give a unit name or --unit-file (one of them)")
    env = {"NUMSIM_CYCLES": str(args.cycles), "NUMSIM_SEED": str(args.seed)}
    if args.unit_file:
        unit, info = read_unit_file(args.unit_file)
        rtl, top = info["rtl"].get("sources", []), info["rtl"].get("top")
        env["NUMSIM_UNIT_FILE"] = info["path"]
    else:
        unit, rtl, top = get_unit(args.unit), [], None
        env["NUMSIM_UNIT"] = args.unit
    if args.set:
        if args.unit_file:
            raise SystemExit("run.py: --set applies to a unit name; edit the unit file instead")
        unit = unit_with_settings(args.unit, args.set)
        env["NUMSIM_UNIT_OVERRIDES"] = json.dumps({f.name: getattr(unit, f.name) for f in
                                                   __import__("dataclasses").fields(unit) if f.init
                                                   and isinstance(getattr(unit, f.name), (int, str, float))})
    rtl, top = args.rtl or rtl, args.top or top
    if not rtl or not top:
        raise SystemExit(f"run.py: no RTL for unit {unit.name}: give --rtl FILES --top MODULE "
                         "(or [rtl] sources/top in the unit file)")
    try:
        if args.flow == "vectors":
            vs = generate(unit, count=args.count, seed=args.seed)
            paths = write(vs, work, name="vectors")
            res = run_vectors(rtl + [os.path.join(HERE, "tb_vectors_generic.v")], "tb_vectors_generic", paths["hex"],
                              work, os.path.join(work, "build"), expected_count=vs.count, defines={"NS_DUT": top})
            what = f"{res.checked} vectors, {res.errors} mismatches"
        else:
            res = run_cocotb(rtl, top, "cocotb_unit", HERE, os.path.join(work, "sim"), {}, env)
            what = f"{res.checked} cocotb tests, {res.errors} failed"
    except NumsimError as e:
        raise SystemExit(f"run.py: {e}")
    for m in res.messages:
        print(m[:1000])
    print(f"{'PASS' if res.passed else 'FAIL'}: {args.flow} {unit.name}: {what}"
          + (f" (work dir {work})" if args.work or args.keep else ""))
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
