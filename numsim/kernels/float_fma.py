"""Exact kernels for the float-accumulating MAC units at the machine's own rounding rate (issue 15).

Kernels of numsim.units.float_mac.FloatMacUnit and Int4Fp4r4Unit (both TPR phases) on csrc/fmachain*.c, each
giving the MAC-level kernel's bits (`unit.mac_level_gemm`) wherever its `domain` returns None:

- `float_mac.fma_chain_fp16` (level avx512_fp16): fp16 accumulator, one product per add: each add is one
  `vfmadd231ph` (IEEE fusedMultiplyAdd: the product exact, one rounding to nearest even).
- `float_mac.fma_chain` (level avx512): fp32 accumulators on `vfmadd231ps` (the same rule); fp16 and bf16
  accumulators (one product or an exact fused group per add, the 4-way INT4 x FP4 MAC included) by
  rounding to odd at 24 bits (FMA under embedded round-down and round-up: inexact iff they differ),
  then to nearest even at 11 / 8 bits (24 >= p + 2: Boldo & Melquiond 2008); where every product has <= p
  bits, one FMA rounded to nearest, then narrowed (24 >= 2p + 2: Figueroa 1995).
- `float_mac.fma_chain_portable` (level portable): the same problems in portable C: TwoSum gives the add rounded to odd
  at 53 bits, then ns_fast_round_grid (fastgemm.c's rounding onto a format's grid) rounds it once.

Every order of the unit (sequential, chunked, pairwise) runs in the unit's order from the same
rounding primitive. Overflow: the kernels overflow to infinity; with finite inputs a finite output
proves that no add overflowed, so the 'saturate' and 'error' policies take the kernel's outputs
where they are finite and the MAC-level path's for the rest (the 'error' policy: the whole problem,
so the error names the first overflow). overflow_count is the MAC-level path's: 0 for these units
(units.c counts only the fixed-point inner adder's events; units with one stay on the other kernels).
NaN outputs carry the MAC-level path's code (quieted initial accumulator, else the default NaN).
"""
from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import _decode_table, decode
from ..formats import FloatFormat
from ..units.base import GemmResult
from . import Kernel, register
from .problem import Problem

LEVELS = {"portable": 0, "avx512": 1, "avx512_fp16": 2}    # registry level -> ns_fmachain_level
_ACC = {(5, 10, 15): 0, (8, 7, 127): 1, (8, 23, 127): 2}      # (exp_bits, man_bits, bias) -> ns_fmachain_acc
_ORDERS = {"sequential": 0, "chunked": 1, "pairwise": 2}


def level_ok(level: str) -> bool:
    """Whether this CPU has the level's instructions under the NUMSIM_LEVEL cap (ns_cpu_usable reads it; the
    registry's level_ok too, for the levels it lists)."""
    from . import LEVELS as REGISTRY_LEVELS
    from . import level_ok as registry_level_ok

    if LEVELS[level] > int(lib.ns_level_fmachain(lib.ns_cpu_usable())):
        return False
    return registry_level_ok(level) if level in REGISTRY_LEVELS else True


def _is_ieee_fp32(f):
    return (isinstance(f, FloatFormat) and f.radix == 2 and (f.exp_bits, f.man_bits, f.bias) == (8, 23, 127)
            and f.subnormals and f.specials == "ieee")


@functools.lru_cache(maxsize=64)
def _values32(fmt):
    """float32 values of every code of fmt (a read-only table), or None when some finite value is not a
    float32 (None also for formats over 16 bits other than IEEE binary32, whose codes are its bits)."""
    if fmt.bits > 16:
        return None
    v = _decode_table(fmt)
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = v.astype(np.float32)
    fin = np.isfinite(v)
    if not np.array_equal(v32[fin].astype(np.float64), v[fin]):
        return None
    v32.flags.writeable = False
    return v32


@functools.lru_cache(maxsize=64)
def _fp16_codes(fmt):
    """The fp16 code of every code's value (a read-only uint16 table) when every finite value of fmt is an
    fp16 value (the AVX512-FP16 kernel packs operands as fp16), else None."""
    if _is_ieee_fp32(fmt) or fmt.bits > 16:
        return None
    v = _decode_table(fmt)
    fin = np.isfinite(v)
    with np.errstate(over="ignore", invalid="ignore"):
        h = v.astype(np.float16)
    if not np.array_equal(h[fin].astype(np.float64), v[fin]):
        return None
    t = np.ascontiguousarray(h.view(np.uint16))
    t.flags.writeable = False
    return t


def _fits_fp16(fmt):
    return _fp16_codes(fmt) is not None


def _operand(codes, fmt):
    """(array, bytes, table) for ns_fmachain_args: codes with the float32 table of their values, or the
    float32 values themselves (IEEE binary32 operands, whose codes are their bits)."""
    codes = np.asarray(codes)
    if _is_ieee_fp32(fmt):
        return np.ascontiguousarray(codes.astype(np.uint32, copy=False).view(np.float32)), 4, None
    codes = np.ascontiguousarray(codes.astype(fmt.dtype, copy=False))
    return codes, codes.dtype.itemsize, _values32(fmt)


def _narrow_products(unit):
    """The level-1 condition for one float32 FMA rounded to nearest, then narrowed (fmachain_avx512.c):
    k_step == 1, an fp16 / bf16 accumulator of p bits, products of <= p significand bits, and every sum
    below 2^emin a float32 (2^emin / 2^q <= 2^24, q the finer of the accumulator's and products' quanta)."""
    from ..units.float_mac import _lsb, _max_mag, _sig_bits

    acc = unit.acc_fmt
    if unit.k_step != 1 or acc.man_bits > 10:
        return False
    a, b = unit._c_a_fmt, unit._c_b_fmt
    q = unit.exact_lsb
    return (_sig_bits(a) + _sig_bits(b) <= acc.man_bits + 1 and q >= -149 and (1 - acc.bias) - q <= 24
            and _lsb(a) + _lsb(b) >= -149 and _max_mag(a) * _max_mag(b) < 2.0**127)


def _ctx_of(problem):
    return {k: v for k, v in (getattr(problem, "ctx", None) or {}).items() if v is not None}


def _datapath(unit):
    """(a_fmt, b_fmt) the datapath reads (radix-4 operands on the even grid), or a reason."""
    from ..units.float_mac import FloatMacUnit

    if not isinstance(unit, FloatMacUnit):
        return "not a float-accumulating MAC unit"
    return unit._c_a_fmt, unit._c_b_fmt


def domain_fmachain(unit, problem):
    """None when the fmachain kernels give the MAC-level bits for this problem, else the reason."""
    fmts = _datapath(unit)
    if isinstance(fmts, str):
        return fmts
    if _ctx_of(problem):
        return "float units take no per-k context"
    acc = unit.acc_fmt
    if (acc.exp_bits, acc.man_bits, acc.bias) not in _ACC:
        return f"accumulator {acc}: only fp16, bf16 and fp32 (custom formats stay on the MAC-level path)"
    if unit.acc_rounding != "nearest_even":
        return f"acc_rounding={unit.acc_rounding}: only nearest_even"
    if unit.inner_bits is not None:
        # its events are the MAC-level path's, and its integer zero is +0 (a group of -0 products adds +0)
        return "a fixed-point inner adder (inner_bits)"
    for f in fmts:
        if not (_is_ieee_fp32(f) or _values32(f) is not None):
            return f"operand format {f}: values that are not float32 values"
    if unit.k_step > 1:
        # The group's partial sums are multiples of 2^product_lsb; below 2^(product_lsb + 24) and with
        # product_lsb >= -149 every one is a float32, so the mul/FMA chain that forms them is exact.
        a_f, b_f = fmts
        amax = float(np.nanmax(np.abs(np.where(np.isfinite(_values32(a_f)), _values32(a_f), 0))))
        bmax = float(np.nanmax(np.abs(np.where(np.isfinite(_values32(b_f)), _values32(b_f), 0))))
        lsb = unit.product_lsb
        if lsb < -149 or unit.k_step * amax * bmax >= 2.0 ** (lsb + 24):
            return f"{unit.k_step}-way products whose exact sums do not fit float32"
    return None


def domain_fp16_fma(unit, problem):
    """The AVX512-FP16 chain: the fmachain domain, an fp16 accumulator, one product per add, fp16 operands."""
    why = domain_fmachain(unit, problem)
    if why:
        return why
    if _ACC[(unit.acc_fmt.exp_bits, unit.acc_fmt.man_bits, unit.acc_fmt.bias)] != 0:
        return "not an fp16 accumulator"
    if unit.k_step != 1:
        return "fused groups: the avx512 level"
    if not all(_fits_fp16(f) for f in _datapath(unit)):
        return "operand values that are not fp16 values"
    return None


def cc32(c):
    """Initial accumulator codes as the MAC-level kernel takes them (uint32), or None."""
    return None if c is None else np.ascontiguousarray(np.asarray(c).astype(np.uint32))


def run_fmachain(unit, problem, level="avx512"):
    """GemmResult equal to unit.mac_level_gemm(problem), computed at the given level."""
    from ..units.base import threads
    from ..units.float_mac import Int4Fp4r4Unit, odd_phase_result

    if isinstance(unit, Int4Fp4r4Unit) and unit.phase == "odd":
        # the odd phase is the even datapath plus the exponent trick, as its MAC-level kernel runs it
        even = run_fmachain(replace(unit, phase="even"), problem, level)
        res = odd_phase_result(unit, even)
        res.info["fmachain_level"] = even.info["fmachain_level"]
        return res
    a_fmt, b_fmt = _datapath(unit)
    a_codes, b_codes = np.asarray(problem.a), np.asarray(problem.b)
    M, K = a_codes.shape
    N = b_codes.shape[1]
    a, a_bytes, a_lut = _operand(a_codes, a_fmt)
    b, b_bytes, b_lut = _operand(b_codes, b_fmt)
    acc = unit.acc_fmt
    c = getattr(problem, "c", None)
    cc = None if c is None else np.ascontiguousarray(np.asarray(c).astype(acc.dtype, copy=False))
    out = np.empty((M, N), dtype=acc.dtype)
    vals = np.empty((M, N), dtype=np.float64)
    nthreads = threads(getattr(problem, "nthreads", None))
    args = ffi.new("ns_fmachain_args *")
    args.acc = _ACC[(acc.exp_bits, acc.man_bits, acc.bias)]
    args.k_step = unit.k_step
    args.order = _ORDERS[unit.order]
    args.chunk = unit.chunk
    args.M, args.K, args.N = M, K, N
    args.a, args.a_bytes, args.a_lut = cptr("void *", a), a_bytes, cptr("float *", a_lut) if a_lut is not None else ffi.NULL
    args.b, args.b_bytes, args.b_lut = cptr("void *", b), b_bytes, cptr("float *", b_lut) if b_lut is not None else ffi.NULL
    args.a_bits, args.b_bits = a_fmt.bits, b_fmt.bits
    h16 = (_fp16_codes(a_fmt), _fp16_codes(b_fmt)) if level == "avx512_fp16" else (None, None)
    args.a_lut16 = cptr("uint16_t *", h16[0]) if h16[0] is not None else ffi.NULL
    args.b_lut16 = cptr("uint16_t *", h16[1]) if h16[1] is not None else ffi.NULL
    args.c = cptr("void *", cc) if cc is not None else ffi.NULL
    args.out = cptr("void *", out)
    args.values = cptr("double *", vals)
    args.nthreads = int(nthreads)
    args.narrow_products = int(_narrow_products(unit))
    ran = int(lib.ns_fmachain_gemm(args, LEVELS[level]))
    if ran < 0:                                  # no memory for the packed panels: the MAC-level path
        return unit.mac_level_gemm(Problem(a=a_codes, b=b_codes, c=cc32(c), nthreads=nthreads))
    codes = out
    # The kernels overflow to inf and count no events. An output that ends finite had no overflow event
    # (an overflowed accumulator stays inf, or becomes NaN, to the end), and its bits are the unit's under
    # every policy. Outputs that end non-finite are recomputed by the MAC-level kernel, which gives the
    # saturating policy's bits and counts the events (0 for the sub-block's finite outputs, by the above).
    overflow = 0
    bad = ~np.isfinite(vals)
    if bad.any():
        if unit.acc_overflow == "error":     # it raises naming the first overflow, or gives the bits
            return unit.mac_level_gemm(Problem(a=a_codes, b=b_codes, c=cc32(c), nthreads=nthreads))
        rows, cols = np.unique(np.nonzero(bad)[0]), np.unique(np.nonzero(bad)[1])
        sub_c = None if c is None else cc32(c)[np.ix_(rows, cols)]
        sub = unit.mac_level_gemm(Problem(a=np.ascontiguousarray(a_codes[rows]),
                                          b=np.ascontiguousarray(b_codes[:, cols]), c=sub_c, nthreads=nthreads))
        r_idx, c_idx = np.nonzero(bad)
        codes[r_idx, c_idx] = sub.codes[np.searchsorted(rows, r_idx), np.searchsorted(cols, c_idx)]
        vals[r_idx, c_idx] = decode(codes[r_idx, c_idx], acc)
        overflow = sub.overflow_count
    return GemmResult(codes=codes, values=vals, overflow_count=overflow,
                      info={"fmachain_level": {v: k for k, v in LEVELS.items()}[ran],
                            "nonfinite": int(np.count_nonzero(~np.isfinite(vals)))})


_PROOF_FMA = ("IEEE 754 fusedMultiplyAdd: x * y + z with the product exact and one rounding to nearest even "
              "is the unit's add (one product into the accumulator); chunk and pairwise adds are FMAs with y = 1; "
              "tests/test_kernels_fpfast.py compares codes and overflow_count with unit.mac_level_gemm")
_PROOF_RO = ("fp32 accumulators: one FMA per add (IEEE fusedMultiplyAdd); fp16/bf16: the exact add (product exact in "
             "the FMA, fused groups exact in float32 by the domain's bound) rounded to odd at 24 bits (the odd-coded "
             "one of the FMAs under embedded round-down and round-up), then to nearest even at p <= 11 bits: "
             "24 >= p + 2 (Boldo & Melquiond 2008); with products of <= p bits one FMA to nearest at 24 bits then "
             "narrowed (24 >= 2p + 2: Figueroa 1995; sums below the normal range exact in float32); "
             "tests/test_kernels_fpfast.py")
_PROOF_PORTABLE = ("TwoSum gives each add rounded to odd at 53 bits; ns_fast_round_grid rounds it once onto the "
                   "accumulator's grid (p <= 24 bits: 53 >= p + 2, Boldo & Melquiond 2008); tests/test_kernels_fpfast.py")

KERNELS = (
    Kernel("float_mac.fma_chain_fp16", "avx512_fp16", _PROOF_FMA, domain_fp16_fma,
           functools.partial(run_fmachain, level="avx512_fp16")),
    Kernel("float_mac.fma_chain", "avx512", _PROOF_RO, domain_fmachain, functools.partial(run_fmachain, level="avx512")),
    Kernel("float_mac.fma_chain_portable", "portable", _PROOF_PORTABLE, domain_fmachain,
           functools.partial(run_fmachain, level="portable")),
)


for _k in KERNELS:
    register(_k)

__all__ = ["KERNELS", "LEVELS", "level_ok", "domain_fmachain", "domain_fp16_fma", "run_fmachain"]
