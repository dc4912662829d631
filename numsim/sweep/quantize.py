"""A sweep operand quantized into the unit's operand format, through numsim.quant and QTensor.quantize.

The sweep picks the step (max, percentile or fixed; per tensor, per channel or per reduction index)
and numsim.quant decides the power-of-two rounding (`round_pow2`) and the per-sample shifts
(`sample_shifts`); the encode is QTensor.quantize's.
"""
from __future__ import annotations

import numpy as np

from ..errors import NumsimError, bad
from ..formats import get_format
from ..qtensor import QTensor
from ..quant.pow2 import round_pow2
from ..quant.ptq import MAX_SHIFT, sample_shifts

def _external_quantizer(method, arg):
    """numsim.quant.NAME: a quantizer function x -> QTensor of the shared quantizer package."""
    import importlib

    name = method[len("numsim.quant."):]
    try:
        mod = importlib.import_module("numsim.quant")
    except ImportError:
        mod = None
    fn = getattr(mod, name, None) if mod is not None and not name.startswith("_") else None
    if not callable(fn):
        known = sorted(n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n))) if mod else []
        raise bad(arg, f"numsim.quant.NAME with NAME a quantizer function ({', '.join(known)})", repr(method))
    return fn


def auto_top(fmt, other_fmt, acc_fmt, K):
    """The magnitude quant.method = "auto" maps an operand's max|x| onto: its format's largest value
    (as "max"), lowered for float operands into a float accumulator so that no output can be inf.

    Bound: with |a| <= A and |b| <= B (code values), every exact partial sum of a length-K reduction
    is at most K*A*B in magnitude. Each rounding into the accumulator (u = 2^-p, p its mantissa
    bits: one ulp relative, which covers every rounding mode, directed and stochastic included; at
    most K+1 roundings on any path, a product rounded to the accumulator's precision included) scales a bound by at most (1 + u), so every value the accumulator holds is at most K*A*B*exp((K+1)*u). The rule
    keeps that <= the accumulator's largest finite value (then an overflow past it cannot round to
    inf either): A*B <= T = max_finite / (K*exp((K+1)*u)). A float operand is scaled down to
    sqrt(T), or to T / (the other operand's largest value) when that one is an integer format or
    already smaller, rounded down to a power of two (so that encoding never rounds past it); float
    grids are scale-invariant, so only small values reaching the format's lowest exponents lose bits
    (a worst-case bound: on FP4 that is more than random data needs, "max" stays available by name). Integer operands,
    or an integer accumulator, keep the "max" mapping."""
    import math

    fmt, other, acc = get_format(fmt), get_format(other_fmt), get_format(acc_fmt)

    top = float(fmt.max_value) if fmt.kind == "int" else float(fmt.max_finite)
    if fmt.kind != "float" or acc.kind != "float" or K < 1:
        return top
    u = 2.0 ** -acc.man_bits if acc.radix == 2 else 1.0     # one ulp, relative: any rounding mode
    T = acc.max_finite / (K * math.exp((K + 1) * u))
    if other.kind == "int":      # any code of it, the most negative included
        other_top = float(max(-other.min_value, other.max_value))
    else:                        # the other float operand's own auto target (the rule is symmetric)
        other_top = min(float(other.max_finite), math.sqrt(T))
    t = T / other_top
    if t >= top:
        return top
    # a power of two: exactly representable, so rounding a value <= t into the format stays <= t
    return math.ldexp(1.0, math.floor(math.log2(t)))


def quantize_operand(x, fmt, q, op, seed, gemm_index, unit=None):
    """A QTensor of real operand x (a: (M, K), b: (K, N)) in fmt by quantizer q. Returns (QTensor, clipped).
    unit: the unit the operand goes into (method "auto" reads its other operand's and accumulator's
    formats; without it "auto" is "max")."""

    fmt = get_format(fmt)
    qseed = int(q["seed"]) if q["seed"] is not None else int(seed)
    # Distinct, worker-independent stochastic-rounding streams per GEMM and operand.
    qseed = (qseed * 1000003 + gemm_index * 2 + (op == "b")) & (2**63 - 1)
    if isinstance(q["method"], str) and q["method"].startswith("numsim.quant."):
        import inspect

        fn = _external_quantizer(q["method"], f"quant.{op}.method")
        kw = dict(q["args"])
        if "seed" in inspect.signature(fn).parameters:
            kw.setdefault("seed", qseed)
        try:
            qt = fn(x, **kw)
        except TypeError as e:
            raise NumsimError(f"quant.{op}.args: {e}") from None
        if not isinstance(qt, QTensor):
            raise NumsimError(f"quant.{op}.method: {q['method']} returns {type(qt).__name__}, not a QTensor")
        if qt.fmt != fmt:
            raise NumsimError(f"quant.{op}.method: {q['method']} gives {qt.fmt} codes but the unit's {op}_fmt is "
                              f"{fmt} (set its bits in quant.{op}.args or the unit's {op}_fmt)")
        return qt, 0
    top = float(fmt.max_value) if fmt.kind == "int" else float(fmt.max_finite)
    if q["method"] == "auto" and unit is not None:
        K = x.shape[1] if op == "a" else x.shape[0]
        top = auto_top(fmt, getattr(unit, "b_fmt" if op == "a" else "a_fmt"), unit.acc_fmt, K)
    red_axis = 1 if op == "a" else 0
    keep_axis = 1 - red_axis
    g = q["granularity"]
    absx = np.abs(x)
    if g in ("tensor", "sample_shift"):
        red = None
    elif g == "channel":
        red = red_axis
    else:
        red = keep_axis      # reduction_pow2: one scale per k, the max over the kept axis
    if q["method"] == "fixed":
        m = np.float64(q["scale"] * top) if red is None else np.full(x.shape[1 - red], q["scale"] * top)
    elif q["method"] == "percentile":
        m = np.percentile(absx, q["percentile"]) if red is None else np.percentile(absx, q["percentile"], axis=red)
    else:
        m = absx.max() if red is None else absx.max(axis=red)
    m = np.where(np.asarray(m) > 0, m, top)        # all-zero slices: any scale works
    scale = np.asarray(m / top, dtype=np.float64)
    if q["method"] == "pow2" or g == "reduction_pow2":
        scale = np.asarray(round_pow2(scale, "up"), dtype=np.float64)   # never more clipping than the max step
    rounding = {"rounding": q["rounding"], "seed": qseed, "overflow": "saturate"}
    if g == "sample_shift":
        # sample k of the reduction takes step * 2^-s_k, s_k the largest shift in [0, 4] that keeps it in range
        shifts = sample_shifts(absx.max(axis=keep_axis), m, MAX_SHIFT)
        eff = scale * np.ldexp(1.0, -shifts.astype(np.int64))
        qe = QTensor.quantize(x, fmt, scale=eff, axis=red_axis, **rounding)
        qt = QTensor(qe.codes, fmt, float(scale), sample_shift=shifts, sample_axis=red_axis)
        steps = eff.reshape(1, -1) if red_axis == 1 else eff.reshape(-1, 1)
    elif scale.ndim == 0:
        qt = QTensor.quantize(x, fmt, scale=float(scale), **rounding)
        steps = scale
    else:
        axis = red_axis if g == "reduction_pow2" else keep_axis
        qt = QTensor.quantize(x, fmt, scale=scale, axis=axis, **rounding)
        steps = scale.reshape(1, -1) if axis == 1 else scale.reshape(-1, 1)
    clipped = int(np.count_nonzero(np.abs(x / steps) > top))   # values the saturating encode clipped
    return qt, clipped
