"""The unit protocol, its results, the initial-accumulator convention and the thread rule.

The contract every unit honours (the GEMM layer, the kernels and the RTL kit rely on nothing else):

- `unit.a_fmt`, `unit.b_fmt`: operand formats; `unit.acc_fmt`: the accumulator's storage format;
  `unit.out_fmt`: the output stage's format (None when the unit has no output stage).
- `unit.step(state, a, b, **ctx) -> state`: one MAC (codes in, accumulator state out).
- `unit.dot(a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult`: one output.
- `unit.gemm_codes(a_codes, b_codes, c=None, nthreads=None, **ctx) -> GemmResult`: many outputs,
  a_codes (M, K) and b_codes (K, N) uint arrays of the operand formats; c an optional initial
  accumulator (M, N) (see `acc_codes`). `ctx` carries per-k parameters: `align_shift` (K,) for the
  per-channel alignment shift, `sample_shift` (K,) for per-sample shifts; per-tensor `scale_a`,
  `scale_b` for the fused adder. It runs the kernel `numsim.kernels.select` picks (its name in
  `info["kernel"]`); every kernel gives the MAC-level kernel's bits.
- `unit.describe() -> str`.
- The reduction order is the unit's, whatever the thread count, tiling or kernel.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import NumsimError, bad
from ..formats import IntFormat, get_format


@dataclass
class DotResult:
    """One output: accumulator code, its decoded value, and optionally the trace of every step."""

    code: int
    value: float
    trace: list | None = None           # accumulator codes after every step (unit-defined granularity)
    overflow_count: int = 0
    out_code: int | None = None         # after the output stage, when the unit has one
    info: dict = field(default_factory=dict)
    trace_flags: list | None = None     # IEEE flags (numsim.fpops bit masks) of every traced update


@dataclass
class GemmResult:
    """Many outputs: accumulator codes (M, N), their decoded values, overflow events.

    Float accumulators also report info["nonfinite"]: how many outputs are inf or NaN codes (an
    inf / NaN operand propagating is no overflow event; docs/units.md). A unit with count_flags=True
    reports info["flags"]: {flag name: how many register updates raised it} (numsim.units.flags)."""

    codes: np.ndarray
    values: np.ndarray
    overflow_count: int = 0
    out_codes: np.ndarray | None = None  # after the output stage
    info: dict = field(default_factory=dict)


class Unit:
    """Base class of MAC units. Subclasses are frozen dataclasses describing one datapath."""

    name: str = "unit"
    seed_source: str = ""
    kernels: tuple = ()       # names of the numsim.kernels that implement gemm_codes, MAC level last

    @property
    def out_fmt(self):
        return None

    def step(self, state, a, b, **ctx):
        raise NotImplementedError

    def dot(self, a_codes, b_codes, c=None, trace=False, **ctx) -> DotResult:
        raise NotImplementedError

    def gemm_codes(self, a_codes, b_codes, c=None, nthreads=None, **ctx) -> GemmResult:
        """Many outputs through the kernel numsim.kernels.select picks for these operands."""
        from ..kernels import gemm

        return gemm(self, a_codes, b_codes, c=c, nthreads=nthreads, ctx=ctx)

    def describe(self) -> str:
        return self.name


# ---- threads ------------------------------------------------------------------------------------

MAX_THREADS = 64


def threads(nthreads) -> int:
    """The one thread rule: None -> min(cpu_count, 4) (more rarely pays on the shared machines these
    kernels run on); else an int in [1, 64]. Threads never change a bit: every kernel keeps the
    unit's reduction order per output."""
    if nthreads is None:
        return max(1, min(os.cpu_count() or 1, 4))
    if not isinstance(nthreads, (int, np.integer)) or isinstance(nthreads, bool) or not 1 <= nthreads <= MAX_THREADS:
        raise bad("nthreads", f"an integer in [1, {MAX_THREADS}] or None", repr(nthreads))
    return int(nthreads)


# ---- the initial accumulator ------------------------------------------------------------------------

def acc_codes(c, acc_fmt, arg="c") -> np.ndarray:
    """The unit-level convention for an initial accumulator `c`: accumulator codes.

    - integers: codes of acc_fmt (0 .. 2^bits - 1), whatever the dtype (Python ints too); except that a
      signed array whose dtype has the width of an integer accumulator (int32 for int32) is read as
      the same two's-complement bits: int32 values and their uint32 codes name the same accumulator;
    - floats: values of a float accumulator, each exactly representable in it (integer accumulators
      take no floats: inf and NaN have no meaning there).
    Returns an array of acc_fmt's code dtype, c's shape. (numsim.matmul / conv2d keep their own
    user-facing convention, signed integers are values, and convert to codes once.)"""
    acc = get_format(acc_fmt)
    raw = np.asarray(c)
    if (raw.dtype.kind == "i" and isinstance(acc, IntFormat) and raw.dtype.itemsize * 8 == acc.bits
            and acc.dtype.itemsize == raw.dtype.itemsize):
        return _check(raw.view(acc.dtype), acc, arg)
    if raw.dtype.kind in "iu":
        return _check(raw, acc, arg)
    if raw.dtype.kind == "f":
        if isinstance(acc, IntFormat):
            raise bad(arg, f"{acc} accumulator codes (floats, inf and NaN have no meaning in an "
                      "integer accumulator)", f"dtype {raw.dtype}")
        native = {(16, 5, 10): np.float16, (32, 8, 23): np.float32}.get(
            (acc.bits, getattr(acc, "exp_bits", 0), getattr(acc, "man_bits", 0)))
        if native is not None and getattr(acc, "specials", None) == "ieee":
            # the bits of the value itself (a NaN keeps its payload)
            cn = raw.astype(native)
            with np.errstate(invalid="ignore"):
                same = (cn.astype(np.float64) == raw.astype(np.float64)) | (np.isnan(cn) & np.isnan(raw))
            if not np.all(same):
                i = tuple(int(v) for v in np.argwhere(~same)[0])
                raise bad(arg, f"values exactly representable in the {acc} accumulator", f"{raw[i]!r} at index {i}")
            return np.ascontiguousarray(cn).view(acc.dtype)
        from ..codec import decode, encode

        codes = encode(raw.astype(np.float64), acc, overflow="to_inf" if acc.has_inf else "saturate")
        back = decode(codes, acc)
        with np.errstate(invalid="ignore"):
            same = (back == raw) | (np.isnan(back) & np.isnan(raw))
        if not np.all(same):
            i = tuple(int(v) for v in np.argwhere(~same)[0])
            raise bad(arg, f"values exactly representable in the {acc} accumulator", f"{raw[i]!r} at index {i}")
        return codes
    raise bad(arg, f"{acc} accumulator codes (unsigned integers) or values", f"dtype {raw.dtype}")


def _check(raw, acc, arg):
    from ..codec import check_codes

    return check_codes(raw, acc, arg)


def acc_code(c, acc_fmt, arg="c") -> int:
    """One initial accumulator (None = code 0) under the `acc_codes` convention."""
    if c is None:
        return 0
    raw = np.asarray(c)
    if raw.ndim != 0:
        raise bad(arg, f"a scalar {get_format(acc_fmt)} code", f"shape {raw.shape}")
    return int(acc_codes(raw.reshape(1), acc_fmt, arg)[0])


def dot_as_gemm(unit, a_codes, b_codes, c, ctx):
    """One output as a 1 x K x 1 GEMM (units whose kernels work on whole instructions):
    (a (1, K), b (K, 1), c codes (1, 1) or None, GemmResult)."""
    a = np.asarray(a_codes).reshape(1, -1)
    b = np.asarray(b_codes).reshape(-1, 1)
    cc = None if c is None else acc_codes(np.asarray(c).reshape(1, 1), unit.acc_fmt)
    return a, b, cc, unit.gemm_codes(a, b, c=cc, nthreads=1, **ctx)


__all__ = ["DotResult", "GemmResult", "Unit", "threads", "acc_codes", "acc_code", "NumsimError"]


def count_nonfinite(res, acc_fmt):
    """Set res.info["nonfinite"] (outputs whose accumulator code is inf or NaN) for a float accumulator."""
    if getattr(get_format(acc_fmt), "kind", None) == "float":
        res.info["nonfinite"] = int(np.count_nonzero(~np.isfinite(np.asarray(res.values, dtype=np.float64))))
    return res
