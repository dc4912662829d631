"""The exact-double kernel of float-accumulating MACs (FloatMacUnit, Int4Fp4r4Unit): csrc/fastgemm.c.

Proof (tests/test_kernels.py forces it against the MAC-level kernel on every preset; tests/test_gemm.py
and tests/test_units_float.py compare numsim.matmul with the MAC-level path):
Float-accumulating units (FloatMacUnit, Int4Fp4r4Unit) with round-to-nearest-even
  accumulation, computed on doubles in csrc/fastgemm.c. Exact because every addend is an exact
  double and either (A) the unit's span bound puts every rounded add's exact sum in a double
  (`unit.sum_in_double`), or (B) k_step == 1, every product is a value of the accumulator format,
  and the accumulator has p <= 25 significand bits, so each add is x + y of two p-bit values whose
  double sum, rounded again to p bits, is correctly rounded (53 >= 2p + 2; Figueroa 1995). Any
  non-finite result sends the whole GEMM back to the MAC-level path (overflow counts, NaN payloads
  and the error policy are the unit's business).
The odd phase of Int4Fp4r4Unit runs the even-phase datapath and the exponent trick, as its MAC-level
kernel does.
"""
from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from .._ffi import cptr, ffi, lib
from ..codec import _decode_table, decode, encode
from ..formats import FloatFormat
from ..units._c import ORDERS
from ..units.base import GemmResult
from . import Kernel, register


def _sig_bits(f):
    return f.man_bits + 1 if isinstance(f, FloatFormat) and f.radix == 2 else (
        1 if isinstance(f, FloatFormat) else f.bits)


def _values_in_format(vals: np.ndarray, fmt) -> bool:
    """Whether every finite value is exactly a value of fmt (checked by a round trip)."""
    v = vals[np.isfinite(vals)]
    return bool(np.array_equal(decode(encode(v, fmt, overflow="saturate"), fmt), v))


@functools.lru_cache(maxsize=32)
def _products_in_format(a_fmt, b_fmt, acc_fmt) -> bool:
    """Every finite product of an a code and a b code is a value of acc_fmt (exhaustive: <= 2^32 pairs
    is too many, so only formats of <= 8 bits each are checked; wider ones return False)."""
    if a_fmt.bits > 8 or b_fmt.bits > 8:
        return _products_in_format_wide(a_fmt, b_fmt, acc_fmt)
    va = _decode_table(a_fmt)
    vb = _decode_table(b_fmt)
    with np.errstate(all="ignore"):
        p = np.outer(va[np.isfinite(va)], vb[np.isfinite(vb)]).ravel()
    return _values_in_format(p, acc_fmt)


def _products_in_format_wide(a_fmt, b_fmt, acc_fmt) -> bool:
    """Radix-2 float operands: products have at most pa + pb significand bits and exponents within
    [min_a + min_b, max_a + max_b]; they are acc values if those fit its precision and range."""
    if not all(isinstance(f, FloatFormat) and f.radix == 2 for f in (a_fmt, b_fmt, acc_fmt)):
        return False
    sig = _sig_bits(a_fmt) + _sig_bits(b_fmt)
    lsb = a_fmt.min_exponent + b_fmt.min_exponent            # exponent of the finest product quantum
    top = a_fmt.max_exponent + b_fmt.max_exponent            # products are below 2^top
    acc_lsb = acc_fmt.min_exponent
    return (sig <= _sig_bits(acc_fmt) and lsb >= acc_lsb and 2.0**top <= acc_fmt.max_finite)


def _float_unit_ok(unit):
    """(a_fmt, b_fmt) when proof (A) or (B) holds for the (even-phase) unit, else a reason string."""
    if unit.acc_rounding != "nearest_even" or unit.acc_overflow not in ("to_inf", "error"):
        return "accumulation not round-to-nearest-even with overflow to_inf / error"
    acc = unit.acc_fmt
    a_fmt = unit._c_a_fmt
    b_fmt = unit._c_b_fmt
    if a_fmt.bits > 16 or b_fmt.bits > 16:
        return "operand formats wider than 16 bits"
    if unit.sum_in_double:                                        # proof (A)
        return a_fmt, b_fmt
    if unit.k_step == 1 and _sig_bits(acc) <= 25 and _products_in_format(a_fmt, b_fmt, acc):   # proof (B)
        return a_fmt, b_fmt
    return "partial sums not provably doubles (proof A) and not k_step = 1 with products in a <= 25-bit accumulator (proof B)"


def _float_gemm(unit, fmts, a, b, c, nthreads):
    a_fmt, b_fmt = fmts
    acc = unit.acc_fmt
    M, K = a.shape
    N = b.shape[1]
    a_lut = np.ascontiguousarray(_decode_table(a_fmt))
    b_lut = np.ascontiguousarray(_decode_table(b_fmt))
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    cd = None if c is None else np.ascontiguousarray(decode(c, acc))
    if cd is not None and not np.all(np.isfinite(cd)):
        return None
    out = np.empty((M, N), dtype=np.float64)
    order = ORDERS[unit.order]
    st = lib.ns_fast_float_gemm(cptr("void *", a), a.dtype.itemsize, cptr("double *", a_lut),
                                cptr("void *", b), b.dtype.itemsize, cptr("double *", b_lut), M, K, N,
                                unit.k_step, order, unit.chunk, acc.man_bits, 1 - acc.bias, acc.max_finite,
                                cptr("double *", cd) if cd is not None else ffi.NULL, cptr("double *", out),
                                int(nthreads))
    if st or not np.all(np.isfinite(out)):
        return None
    codes = encode(out, acc)
    # Every output finite: under to_inf an overflow leaves an inf that later adds keep (inf + finite),
    # so no rounding overflowed (an overflow sends the GEMM to the MAC level above, which counts it).
    return GemmResult(codes=codes, values=out, overflow_count=0, info={"nonfinite": 0})


def _even(unit):
    return replace(unit, phase="even") if getattr(unit, "phase", "even") == "odd" else unit


def _domain(unit, p):
    fmts = _float_unit_ok(_even(unit))
    if isinstance(fmts, str):
        return fmts
    if p.c is not None and not np.all(np.isfinite(decode(p.c, unit.acc_fmt))):
        return "a non-finite initial accumulator"
    return None


def _run(unit, p):
    even = _even(unit)
    res = _float_gemm(even, _float_unit_ok(even), p.a, p.b, p.c, p.nthreads)
    if res is None:
        # a non-finite result: overflow counts, NaN payloads and the error policy are the MAC level's
        res = unit.mac_level_gemm(p)
        res.info["kernel"] = "float_mac.mac_level"
        res.info["fallback"] = "float_mac.exact_double met a non-finite result"
        return res
    if even is not unit:
        from ..units.float_mac import odd_phase_result

        return odd_phase_result(unit, res)
    return res


register(Kernel(name="float_mac.exact_double", level="portable",
                proof="exact addends; proof (A) every rounded add's exact sum is a double (span bound), or (B) "
                      "k_step = 1, products in the <= 25-bit accumulator format, double rounding innocuous as "
                      "53 >= 2p + 2 (Figueroa 1995); a non-finite result falls back to the MAC level; "
                      "tests/test_kernels.py",
                domain=_domain, run=_run))
