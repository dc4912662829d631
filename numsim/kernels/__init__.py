"""Kernels as plug-ins: the exact kernels that implement each unit's GEMM, and the one choice among them.

A `Kernel` names the ISA level it needs, the proof that makes its bits equal the MAC-level kernel's
(and the test that checks it), its domain (the problems it gives those bits for) and how it runs.
Each unit class lists its kernels by name in preference order (`unit.kernels`), its MAC-level kernel
last with an always-true domain. `select(unit, problem)` takes the first whose level this CPU has (up
to the cap) and whose domain accepts the problem. `numsim.matmul`, `numsim.conv2d` and
`unit.gemm_codes` all run through `gemm` here; `GemmResult.info["kernel"]` names the kernel used.

Environment (for tests and benchmarks):
- NUMSIM_KERNEL=<name>: force a kernel, e.g. `int_mac.exact_blas`, or a short name such as
  `mac_level` for every unit's `<unit>.mac_level`; a NumsimError when the unit has no such kernel,
  the CPU (or the cap) lacks its level, or its domain rejects the problem.
- NUMSIM_LEVEL=python|portable|avx2|avx512|avx512_vnni|avx512_bf16|avx512_fp16|amx: the highest ISA
  level used, here and by the C library's own choice of level (csrc/cpu.c reads the same variable).
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Callable

from ..errors import NumsimError
from .problem import Problem

# ISA levels in cap order: each admits the ones before it (csrc/cpu.c `level_mask` uses the same order)
LEVELS = ("python", "portable", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx")
# the CPU-feature bits (numsim._abi.CPU) each level needs
_LEVEL_FEATURES = {
    "avx2": ("avx2", "fma", "f16c"),
    "avx512": ("avx512f", "avx512bw", "avx512vl"),
    "avx512_vnni": ("avx512f", "avx512bw", "avx512vl", "avx512_vnni"),
    "avx512_bf16": ("avx512f", "avx512bw", "avx512vl", "avx512_bf16"),
    "avx512_fp16": ("avx512f", "avx512bw", "avx512vl", "avx512_fp16"),
    "amx": ("amx_tile", "amx_int8"),
}
_MODULES = ("numsim.kernels.mac_level", "numsim.kernels.float_exact", "numsim.kernels.float_fma",
            "numsim.kernels.int_imatmul", "numsim.kernels.int_lanes",
            "numsim.kernels.fused_adder",
            "numsim.kernels.block_dot", "numsim.kernels.matrix_core_c")


@dataclass(frozen=True)
class Kernel:
    name: str          # unique, "<unit family>.<kernel>"
    level: str         # the ISA level it needs (LEVELS)
    proof: str         # why its bits equal the MAC-level kernel's, and the test that checks it
    domain: Callable   # domain(unit, problem) -> None when it gives the MAC-level bits, else a reason
    run: Callable      # run(unit, problem) -> GemmResult
    flags: bool = False  # computes info["flags"] (IEEE flag counts) for a unit with count_flags=True


_KERNELS: dict = {}


def register(kernel: Kernel) -> Kernel:
    if kernel.level not in LEVELS:
        raise ValueError(f"kernel {kernel.name}: unknown level {kernel.level!r}")
    _KERNELS[kernel.name] = kernel
    return kernel


_LOADED = []


def _load():
    # once per process: every GEMM calls this, and importlib's lookup costs more than a small GEMM
    if _LOADED:
        return
    for mod in _MODULES:
        importlib.import_module(mod)
    _LOADED.append(True)


def get_kernel(name) -> Kernel:
    _load()
    if name not in _KERNELS:
        raise NumsimError(f"kernel: unknown kernel {name!r}; known: {', '.join(sorted(_KERNELS))}")
    return _KERNELS[name]


def cpu_levels() -> frozenset:
    """The ISA levels usable here: the C library's CPU-feature query (cpuid, xgetbv, Linux's AMX
    permission) capped by NUMSIM_LEVEL (read at every call: tests set it; the answer per value is cached,
    the features being fixed for the process)."""
    _level_cap()     # an unknown NUMSIM_LEVEL is a NumsimError, not a silent cap
    return _levels_under(os.environ.get("NUMSIM_LEVEL") or "")


@functools.lru_cache(maxsize=None)
def _levels_under(cap: str) -> frozenset:
    from .. import _abi
    from .._ffi import lib

    usable = int(lib.ns_cpu_usable())
    have = {"python", "portable"}
    for level, feats in _LEVEL_FEATURES.items():
        need = sum(_abi.CPU[f] for f in feats)
        if usable & need == need:
            have.add(level)
    return frozenset(have)


def _level_cap() -> int:
    cap = os.environ.get("NUMSIM_LEVEL")
    if not cap:
        return len(LEVELS) - 1
    if cap not in LEVELS:
        raise NumsimError(f"NUMSIM_LEVEL: expected one of {', '.join(LEVELS)}, got {cap!r}")
    return LEVELS.index(cap)


def level_ok(level) -> bool:
    """Whether kernels of this level run here: the CPU has it and NUMSIM_LEVEL does not cap it."""
    return level in cpu_levels() and LEVELS.index(level) <= _level_cap()


def _kernels_of(unit):
    _load()
    return [_KERNELS[n] for n in unit.kernels]


def _resolve(unit, name):
    names = list(unit.kernels)
    if name in names:
        return _KERNELS[name]
    short = [n for n in names if n.split(".", 1)[1] == name]
    if len(short) == 1:
        return _KERNELS[short[0]]
    raise NumsimError(f"kernel: unit {unit.name} has no kernel {name!r}; its kernels: {', '.join(names)}")


def select(unit, problem, kernel=None) -> Kernel:
    """The kernel that runs `problem` on `unit`: `kernel` (a name) or NUMSIM_KERNEL when given, else the
    first of unit.kernels whose level runs here and whose domain accepts the problem."""
    _load()
    forced = kernel or os.environ.get("NUMSIM_KERNEL")
    if forced:
        k = _resolve(unit, forced)
        if not level_ok(k.level):
            raise NumsimError(f"kernel: {k.name} needs ISA level {k.level}; this CPU (NUMSIM_LEVEL cap included) "
                              f"has {', '.join(lv for lv in LEVELS if level_ok(lv))}")
        reason = _flags_reason(unit, k) or k.domain(unit, problem)
        if reason is not None:
            raise NumsimError(f"kernel: {k.name} cannot give the MAC-level bits for this problem: {reason}")
        return k
    for k in _kernels_of(unit):
        if level_ok(k.level) and _flags_reason(unit, k) is None and k.domain(unit, problem) is None:
            return k
    raise NumsimError(f"kernel: no kernel of unit {unit.name} runs here (its MAC-level kernel needs a level "
                      f"above NUMSIM_LEVEL)")


def _flags_reason(unit, k):
    """A unit that counts IEEE flags runs only kernels that count them (today the MAC-level kernels)."""
    if getattr(unit, "count_flags", False) and not k.flags:
        return ("the unit counts IEEE flags per register update (count_flags=True) and this kernel does not: "
                "the MAC-level kernel counts them")
    return None


def gemm(unit, a_codes, b_codes, c=None, nthreads=None, ctx=None, kernel=None):
    """unit's GEMM of codes (the unit-level c convention) through the selected kernel. A unit that
    declares no kernels (a user's Unit subclass with its own gemm_codes) runs its gemm_codes."""
    if not getattr(unit, "kernels", ()):
        from ..units.base import Unit

        if type(unit).gemm_codes is Unit.gemm_codes:
            raise NumsimError(f"unit {getattr(unit, 'name', unit)!r}: declares no kernels and no gemm_codes")
        if kernel or os.environ.get("NUMSIM_KERNEL"):
            raise NumsimError(f"kernel: unit {unit.name} declares no kernels to force")
        res = unit.gemm_codes(a_codes, b_codes, c=c, nthreads=nthreads, **(ctx or {}))
        res.info.setdefault("kernel", f"{type(unit).__name__}.gemm_codes")
        return res
    p = unit.problem(a_codes, b_codes, c=c, nthreads=nthreads, ctx=ctx)
    k = select(unit, p, kernel)
    try:
        res = k.run(unit, p)
    except MemoryError:
        M, K, N = p.shape
        raise NumsimError(f"a_codes, b_codes: expected shapes whose operands and output fit in memory, got "
                          f"({M}, {K}) x ({K}, {N})") from None
    res.info.setdefault("kernel", k.name)
    return res


def available(unit) -> list:
    """The kernels of `unit` that this machine runs (level present and not capped), in preference order."""
    return [k for k in _kernels_of(unit) if level_ok(k.level)]


def describe(unit) -> str:
    """One line per kernel of `unit`: name, level, whether it runs here, and its proof."""
    lines = []
    for k in _kernels_of(unit):
        lines.append(f"{k.name} [{k.level}{'' if level_ok(k.level) else ', not on this CPU'}]: {k.proof}")
    return "\n".join(lines)


__all__ = ["Kernel", "Problem", "LEVELS", "register", "get_kernel", "cpu_levels", "level_ok", "select", "gemm",
           "available", "describe", "fast_gemm", "mac_level_gemm"]


def fast_gemm(unit, a_codes, b_codes, c=None, ctx=None, nthreads=None):
    """The result of the kernel `select` picks when it is not the MAC-level kernel, else None (tests and
    benchmarks compare the two paths; a float kernel that met a non-finite result returns None too)."""
    p = unit.problem(a_codes, b_codes, c=c, nthreads=nthreads, ctx=ctx)
    k = select(unit, p)
    if k.name.endswith(".mac_level"):
        return None
    res = k.run(unit, p)
    res.info.setdefault("kernel", k.name)
    return None if res.info["kernel"].endswith(".mac_level") else res


def mac_level_gemm(unit, a_codes, b_codes, c=None, ctx=None, nthreads=None):
    """unit's GEMM through its MAC-level kernel: the definition every other kernel is proved equal to."""
    return gemm(unit, a_codes, b_codes, c=c, nthreads=nthreads, ctx=ctx, kernel="mac_level")
