"""Run RTL testbenches under Icarus Verilog and return their verdict (for CI and the examples).

Two flows, both decided by what the simulation itself reports, never by a runner's exit status alone:

- `run_vectors`: a plain Verilog testbench replays `$readmemh` vectors and prints
  `NUMSIM_VECTORS checked=N errors=E`; the run passes only when that line is present, N equals the
  vector count and E is 0.
- `run_cocotb`: a cocotb 2.x testbench; the verdict is read from its results XML (the cocotb
  runner's `test()` does not fail outside pytest when tests fail).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

from ..errors import NumsimError

_VERDICT = re.compile(r"NUMSIM_VECTORS checked=(\d+) errors=(\d+)")


@dataclasses.dataclass
class SimResult:
    passed: bool
    checked: int          # vectors / cocotb tests that ran
    errors: int           # mismatching vectors / failing cocotb tests
    messages: list        # the first mismatch reports
    log: str


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def cocotb_available() -> bool:
    return importlib.util.find_spec("cocotb") is not None and importlib.util.find_spec("cocotb_tools") is not None


def _need_icarus():
    if not icarus_available():
        raise NumsimError("simulator: Icarus Verilog (iverilog, vvp) not found on PATH; "
                          "install it (Debian: apt-get install iverilog)")


def run_vectors(sources, toplevel, vectors_hex, include_dir, build_dir, parameters=None, expected_count=None,
                timeout=300, defines=None) -> SimResult:
    """Compile `sources` with iverilog (-I include_dir for the vectors' .vh) and replay `vectors_hex`."""
    _need_icarus()
    os.makedirs(build_dir, exist_ok=True)
    out = os.path.join(build_dir, f"{toplevel}.vvp")
    cmd = ["iverilog", "-g2012", "-o", out, "-s", toplevel, "-I", os.fspath(include_dir)]
    for k, v in (parameters or {}).items():
        cmd += ["-P", f"{toplevel}.{k}={v}"]
    for k, v in (defines or {}).items():
        cmd += [f"-D{k}={v}"]
    cmd += [os.fspath(s) for s in sources]
    comp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if comp.returncode != 0:
        raise NumsimError(f"iverilog failed ({comp.returncode}):\n{comp.stdout}{comp.stderr}")
    run = subprocess.run(["vvp", "-n", out, f"+vectors={os.path.abspath(vectors_hex)}"], capture_output=True,
                         text=True, timeout=timeout, cwd=build_dir)
    log = run.stdout + run.stderr
    m = _VERDICT.search(log)
    msgs = [ln for ln in log.splitlines() if "MISMATCH" in ln][:10]
    if m is None:
        return SimResult(False, 0, 0, msgs or ["no verdict line: the simulation did not finish"], log)
    checked, errors = int(m.group(1)), int(m.group(2))
    ok = run.returncode == 0 and errors == 0 and (expected_count is None or checked == expected_count)
    return SimResult(ok, checked, errors, msgs, log)


@contextlib.contextmanager
def _runner_context(paths):
    """The cocotb runner raises inside pytest when a test fails (we read the XML ourselves instead),
    and hands the simulator PYTHONPATH = sys.path: put the testbench and numsim there, absolute."""
    saved_env = os.environ.pop("PYTEST_CURRENT_TEST", None)
    saved_path = list(sys.path)
    sys.path[:0] = paths
    try:
        yield
    finally:
        sys.path[:] = saved_path
        if saved_env is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved_env


def run_cocotb(sources, toplevel, test_module, test_dir, build_dir, parameters=None, extra_env=None,
               timeout=None) -> SimResult:
    """Build `sources` for Icarus and run the cocotb module `test_module` (found in test_dir)."""
    _need_icarus()
    if not cocotb_available():
        raise NumsimError("simulator: cocotb (>= 2.0) is not installed; pip install cocotb")
    from cocotb_tools.runner import get_runner

    import numsim

    build_dir = os.path.abspath(build_dir)
    os.makedirs(build_dir, exist_ok=True)
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(numsim.__file__)))
    env = dict(extra_env or {})
    results = os.path.join(build_dir, "results.xml")
    log_file = os.path.join(build_dir, "sim.log")
    runner = get_runner("icarus")
    with _runner_context([os.path.abspath(test_dir), pkg_root]):
        runner.build(sources=[os.fspath(s) for s in sources], hdl_toplevel=toplevel, build_dir=build_dir,
                     parameters=dict(parameters or {}), always=True, timescale=("1ns", "1ps"), log_file=os.path.join(build_dir, "build.log"))
        try:
            runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                        test_dir=os.path.abspath(test_dir), extra_env=env, results_xml=results, log_file=log_file)
        except RuntimeError:
            pass                      # a crashed simulator: the missing or failing XML says so
    log = open(log_file).read() if os.path.exists(log_file) else ""
    if not os.path.exists(results):
        return SimResult(False, 0, 0, ["no results XML: the simulation did not finish"], log)
    tests = failed = 0
    msgs = []
    for suite in ET.parse(results).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            tests += 1
            bad_nodes = case.findall("failure") + case.findall("error")
            if bad_nodes:
                failed += 1
                msgs += [(n.get("message") or n.text or "").strip()[:2000] for n in bad_nodes]
    return SimResult(tests > 0 and failed == 0, tests, failed, msgs, log)

