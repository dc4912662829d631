"""The training numerics of numsim.torch, on numpy arrays (no torch): the forward and backward of one
quantized layer (seed 003's INT4 forward / FP4 two-phase-rounding backward, seed 000's 8-bit forward
with b-bit integer gradients), their gradient quantizers, and the per-backward stats.

Each GEMM is `numsim.matmul` / `numsim.conv2d` through a unit; the conv-backward operand layouts are
numsim.gemm's (`conv2d_grad_input_*`, `conv2d_grad_weight_*`). Every function takes its thread count
and seed explicitly: nothing here is module state (the unit cache holds frozen unit descriptions).
"""
from __future__ import annotations

import functools

import numpy as np

from ..codec import decode, encode
from ..errors import NumsimError
from ..gemm import (conv2d_grad_input_gather, conv2d_grad_input_kernel, conv2d_grad_input_patches,
                    conv2d_grad_weight_gather, conv2d_grad_weight_grads, conv2d_grad_weight_patches, matmul)
from ..gemm import conv2d as _ns_conv2d
from ..qtensor import QTensor
from ..units import get_unit

# ---- units (cached: a unit is a frozen description) ---------------------------------------------

@functools.lru_cache(maxsize=128)
def _unit(name, **overrides):
    return get_unit(name, **overrides)


def _fwd_unit(a_fmt, b_fmt):
    return _unit("int4_int32", a_fmt=a_fmt, b_fmt=b_fmt, widen_bits=16 if a_fmt.bits + b_fmt.bits <= 16 else 32)


def _fp4_unit(a_fmt, phase, overrides):
    return _unit("int4_fp4r4_fp16", a_fmt=a_fmt, phase=phase, **dict(overrides))


def _int_unit(a_fmt, b_fmt):
    # products of up to 8 x 8 bits, shifted by up to 4 in the per-sample-shift unit: 32-bit widening
    return _unit("int4_int32", a_fmt=a_fmt, b_fmt=b_fmt, widen_bits=32)


def _shift_unit(a_fmt, b_fmt):
    return _unit("int4_int32_sample_shift", a_fmt=a_fmt, b_fmt=b_fmt, widen_bits=32)

def _count_nonfinite(v):
    return int(v.size - np.count_nonzero(np.isfinite(v)))


# ---- seed 003: INT4 forward, FP4 two-phase-rounding backward ---------------------------------------

def step_seed(seed, layer_index, step):
    """The stochastic-rounding seed of one layer at one training step (independent of threads)."""
    return (int(seed) * 1_000_003 + int(layer_index)) * 1_000_033 + int(step)


def tpr_forward(x, w, alpha, geom, cfg, nthreads=None):
    """(Y values (N, O, OH, OW) float64, saved operands). x, w float arrays, alpha a float."""
    from ..quant.pact import pact_quantize
    from ..quant.sawb import sawb_quantize

    xq = pact_quantize(x, alpha, cfg["act_bits"])
    wq = sawb_quantize(w, cfg["weight_bits"], cfg["weight_variant"])
    r = _ns_conv2d(xq, wq, _fwd_unit(xq.fmt, wq.fmt), stride=geom.stride, padding=geom.padding,
                   dilation=geom.dilation, groups=geom.groups, nthreads=nthreads)
    return np.asarray(r.values), {"xq": xq, "wq": wq}


def tpr_backward(saved, x, alpha, gy, geom, cfg, seed, need_dx=True, need_dw=True, nthreads=None):
    """(dL/dx float64 after PACT's STE, dL/dalpha, dL/dW, stats) from dL/dY (N, O, OH, OW)."""
    from ..quant.pact import pact_backward
    from ..quant.tpr import tpr

    xq, wq = saved["xq"], saved["wq"]
    q = tpr(gy, threshold=cfg["threshold"], underflow=cfg["underflow"], seed=seed, dx_phase=cfg["dx_phase"],
            scale_method=cfg["scale_method"])
    two = cfg["phases"] == 2
    g_dx = q.for_dx if two else q.even
    g_dw = q.for_dw if two else q.even
    stats = {"grad_scale": q.scale, "nonfinite": 0, "odd_departures": 0}
    dx = dalpha = dw = None
    if need_dx:
        unit = _fp4_unit(wq.fmt, "even" if g_dx is q.even else "odd", tuple(sorted(cfg["bwd_unit"].items())))
        parts = []
        for a, b in zip(conv2d_grad_input_kernel(wq.codes, geom), conv2d_grad_input_patches(g_dx.codes, g_dx.fmt, geom)):
            r = matmul(QTensor(a, wq.fmt, wq.scale), QTensor(b, g_dx.fmt, g_dx.scale), unit, nthreads=nthreads)
            parts.append(np.asarray(r.values))
            stats["odd_departures"] += sum(len(d) for d in r.info.get("departures", []))
        dxq = conv2d_grad_input_gather(parts, geom)
        stats["nonfinite"] += _count_nonfinite(dxq)
        if stats["nonfinite"]:
            raise NumsimError(f"gradient: the FP16 accumulator of the dL/dX GEMM overflowed in {stats['nonfinite']} "
                              f"outputs (GradScale {q.scale}); the sums exceed FP16's range")
        dx, dalpha = pact_backward(x, alpha, dxq)
    if need_dw:
        unit = _fp4_unit(xq.fmt, "odd" if g_dw is q.odd else "even", tuple(sorted(cfg["bwd_unit"].items())))
        parts = []
        split = cfg["wgrad_split"]
        for a, b in zip(conv2d_grad_weight_patches(xq.codes, xq.fmt, geom), conv2d_grad_weight_grads(g_dw.codes, geom)):
            kk = a.shape[1]
            step = split if split else kk
            total = None
            # split-K: each slice of the (n, oh, ow) reduction is one GEMM into FP16 (a tile of the
            # hardware); the slices' results are added in float64, in slice order
            for k0 in range(0, kk, step):
                r = matmul(QTensor(a[:, k0:k0 + step], xq.fmt, xq.scale), QTensor(b[k0:k0 + step], g_dw.fmt, g_dw.scale),
                           unit, nthreads=nthreads)
                v = np.asarray(r.values)
                total = v if total is None else total + v
                stats["odd_departures"] += sum(len(d) for d in r.info.get("departures", []))
            parts.append(total)
        dw = conv2d_grad_weight_gather(parts, geom)
        bad_dw = _count_nonfinite(dw)
        if bad_dw:
            raise NumsimError(f"gradient: the FP16 accumulator of the dL/dW GEMM overflowed in {bad_dw} outputs "
                              f"(GradScale {q.scale}); split the reduction (recipe key wgrad_split)")
    return dx, dalpha, dw, stats


# ---- seed 000: 8-bit forward, b-bit integer gradients ---------------------------------------------

def sym_quantize(x, bits):
    """Symmetric per-tensor quantization onto int<bits> codes in [-(2^(b-1) - 1), 2^(b-1) - 1],
    step = max|x| / (2^(b-1) - 1), round to nearest even (an all-zero tensor gets step 1)."""
    from ..quant import sr as _sr

    a = _sr.finite_real(x).astype(np.float64)
    m = float(np.max(np.abs(a))) if a.size else 0.0
    step = _sr.step_for(m, _sr.qmax(bits))
    fmt = _sr.int_format(bits)
    return QTensor(encode(a / step, fmt, rounding="nearest_even", overflow="error"), fmt, step)


def int_forward(x, w, geom, cfg, nthreads=None):
    xq = sym_quantize(x, cfg["fwd_bits"])
    wq = sym_quantize(w, cfg["fwd_bits"])
    r = _ns_conv2d(xq, wq, _fwd_unit(xq.fmt, wq.fmt), stride=geom.stride, padding=geom.padding,
                   dilation=geom.dilation, groups=geom.groups, nthreads=nthreads)
    return np.asarray(r.values), {"xq": xq, "wq": wq}


def quantize_grad(gy, cfg, seed):
    """(QTensor of dL/dY (N, ...) with samples on axis 0, BHQ transform or None)."""
    from ..quant.bhq import bhq
    from ..quant.ptq import per_sample_shift, psq, ptq

    q, b = cfg["grad_quantizer"], cfg["grad_bits"]
    if q == "ptq":
        return ptq(gy, b, seed=seed), None
    if q == "psq":
        return psq(gy, b, seed=seed, sample_axis=0), None
    if q == "shift":
        return per_sample_shift(gy, b, seed=seed, sample_axis=0, max_shift=cfg["max_shift"]), None
    r = bhq(gy, b, seed=seed, sample_axis=0)
    return r.qtensor, r.transform


def _sample_scale(gq):
    """Per-sample scale (length N) of a gradient QTensor with samples on axis 0, or a scalar."""
    if gq.sample_shift is not None:
        return np.ldexp(float(gq.scale), -gq.sample_shift.astype(np.int64))
    if gq.axis is not None:
        return gq.scale
    return float(gq.scale)


def int_backward(saved, gy, geom, cfg, seed, need_dx=True, need_dw=True, nthreads=None):
    xq, wq = saved["xq"], saved["wq"]
    gq, transform = quantize_grad(gy, cfg, seed)
    g = geom
    s = _sample_scale(gq)
    stats = {"grad_scale": float(np.max(s)), "nonfinite": 0, "odd_departures": 0}
    dx = dw = None
    if need_dx:
        unit = _int_unit(wq.fmt, gq.fmt)
        # columns of b are (n, h, w): a per-sample scale is a per-column scale of b
        col_scale = s if np.ndim(s) == 0 else np.repeat(s, g.h * g.w)
        parts = []
        for a, b in zip(conv2d_grad_input_kernel(wq.codes, g), conv2d_grad_input_patches(gq.codes, gq.fmt, g)):
            qb = QTensor(b, gq.fmt, col_scale, axis=None if np.ndim(col_scale) == 0 else 1)
            parts.append(np.asarray(matmul(QTensor(a, wq.fmt, wq.scale), qb, unit, nthreads=nthreads).values))
        dx = conv2d_grad_input_gather(parts, g)
        if transform is not None:   # BHQ: dL/dX = T^-1 (integer GEMM of the transformed codes), rows = samples
            dx = transform.inverse(dx.reshape(g.n, -1)).reshape(dx.shape)
    if need_dw:
        q = cfg["grad_quantizer"]
        parts = []
        p = g.oh * g.ow
        if q == "bhq":
            bhq_g = conv2d_grad_weight_grads(transform.inverse(gq.decode().reshape(g.n, -1)).reshape(gq.shape), g)
        for a, b in zip(conv2d_grad_weight_grads(gq.codes, g), conv2d_grad_weight_patches(xq.codes, xq.fmt, g)):
            a = a.T                          # (O/g, N * OH * OW): reduction over (n, oh, ow)
            b = b.T                          # (N * OH * OW, C/g * kh * kw)
            if q == "ptq":
                r = matmul(QTensor(a, gq.fmt, gq.scale), QTensor(b, xq.fmt, xq.scale), _int_unit(gq.fmt, xq.fmt),
                           nthreads=nthreads)
                parts.append(np.asarray(r.values).T)
            elif q == "shift":
                qa = QTensor(a, gq.fmt, gq.scale, sample_shift=np.repeat(gq.sample_shift, p), sample_axis=1)
                r = matmul(qa, QTensor(b, xq.fmt, xq.scale), _shift_unit(gq.fmt, xq.fmt), nthreads=nthreads)
                parts.append(np.asarray(r.values).T)
            elif q == "psq":
                # per-sample FP32 ranges: one exact INT32 accumulator per sample (a batched GEMM over
                # the sample's OH * OW positions), scaled by the sample's step, summed in float64
                ab = a.reshape(a.shape[0], g.n, p).transpose(1, 0, 2)
                bb = b.reshape(g.n, p, b.shape[1])
                r = matmul(ab, bb, _int_unit(gq.fmt, xq.fmt), nthreads=nthreads)
                acc = np.asarray(r.acc_values) * (s[:, None, None] * xq.scale)
                parts.append(acc.sum(axis=0).T)
            else:
                # BHQ: Q(dY) = T^-1 (codes * step) mixes samples, so the weight-gradient GEMM has no
                # integer form on the codes: a float64 GEMM of the dequantized operands (documented)
                parts.append((decode(b, xq.fmt) * xq.scale).T @ bhq_g[len(parts)])
        dw = conv2d_grad_weight_gather(parts, g)
    return dx, dw, stats


# ---- op-level GEMMs (numsim.torch.simulate): any unit with integer or radix-2 float operands ----------

def gemm_unit(spec, a_fmt=None, b_fmt=None):
    """The unit of a gemm spec, its operand formats replaced by the quantized operands' (an integer
    operand's symmetric format) and its product widening wide enough for them."""
    over = {k: v for k, v in spec.items() if k != "unit"}
    if a_fmt is not None:
        over["a_fmt"], over["b_fmt"] = a_fmt, b_fmt
        base = _unit(spec["unit"], **{k: v for k, v in spec.items() if k not in ("unit", "a_fmt", "b_fmt")})
        if hasattr(base, "widen_bits") and "widen_bits" not in spec:
            over["widen_bits"] = 16 if a_fmt.bits + b_fmt.bits <= 16 else 32
    return _unit(spec["unit"], **over)


def _scale_target(fmt, k, acc_fmt):
    """The largest magnitude a float operand is scaled to (None for integer formats): the format's
    largest finite value and, for a float accumulator, sqrt(acc_max / k)."""
    from ..formats import FloatFormat

    if not isinstance(fmt, FloatFormat):
        return None
    target = float(fmt.max_finite)
    if isinstance(acc_fmt, FloatFormat):
        target = min(target, float(np.sqrt(float(acc_fmt.max_finite) / k)))
    return target


def quantize_operand(x, fmt, k, acc_fmt, grad=False, seed=0):
    """One GEMM operand (float array) as a per-tensor QTensor of `fmt` (the unit's operand format).

    Integer formats: symmetric, step = max|x| / (2^(b-1) - 1); round to nearest even (sym_quantize),
    or, for a gradient (grad=True), stochastic rounding keyed by `seed` (numsim.quant.ptq).
    Float formats: x / 2^e rounded to nearest even, saturating, with the smallest power-of-two scale
    2^e that puts max|x| at or below the format's largest finite value and, for a float accumulator,
    at or below sqrt(acc_max / k), so that no sum of k products of the scaled operands can overflow it.
    Nearest rounding with a per-tensor scale commutes with transposition: Q(x^T) = Q(x)^T.
    """
    from ..quant.ptq import ptq

    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise NumsimError(f"operand: {_count_nonfinite(a)} non-finite values reach a simulated GEMM "
                          f"(numsim's quantizers take finite tensors)")
    target = _scale_target(fmt, k, acc_fmt)
    if target is None:
        return ptq(a, fmt.bits, seed=seed) if grad else sym_quantize(a, fmt.bits)
    amax = float(np.max(np.abs(a))) if a.size else 0.0
    e = int(np.ceil(np.log2(amax / target))) if amax > 0 else 0
    scale = float(np.ldexp(1.0, e))
    return QTensor(encode(np.ldexp(a, -e), fmt, rounding="nearest_even", overflow="saturate"), fmt, scale)


def _quantize_memo(memo, name, x, swap, fmt, k, acc_fmt, grad, seed):
    """quantize_operand(swapaxes(x) if swap else x), reusing an earlier quantization of the same
    tensor `name` under the same rule (format, scale target, gradient seed) from `memo`: the
    backward GEMMs reuse the forward's codes and one quantized dL/dY, as the hardware would."""
    key = (name, fmt, _scale_target(fmt, k, acc_fmt), grad, seed if grad else None)
    q = memo.get(key) if memo is not None else None
    if q is None:
        q = quantize_operand(x, fmt, k, acc_fmt, grad, seed)
        if memo is not None:
            memo[key] = q
    return QTensor(np.swapaxes(q.codes, -1, -2), q.fmt, q.scale) if swap else q


def _gemm_check(values, what):
    bad_n = _count_nonfinite(values)
    if bad_n:
        raise NumsimError(f"{what}: the accumulator overflowed in {bad_n} outputs (non-finite results)")
    return values


def op_gemm(a, b, spec, grad_side=None, seed=0, nthreads=None, what="gemm", memo=None, names=("a", "b"),
            swap=(False, False)):
    """A (..., M, K) @ B (..., K, N) through the spec's unit, A = swapaxes(a) if swap[0] else a (B
    likewise): each operand quantized per tensor by `quantize_operand` (grad_side 'a' / 'b' marks the
    gradient operand), reusing `memo` entries keyed by `names`; spec None: float64.
    Returns (float64 values, the unit or None)."""
    if spec is None:
        fa = np.swapaxes(a, -1, -2) if swap[0] else a
        fb = np.swapaxes(b, -1, -2) if swap[1] else b
        return np.matmul(np.asarray(fa, np.float64), np.asarray(fb, np.float64)), None
    unit0 = gemm_unit(spec)
    acc = unit0.acc_fmt
    k = a.shape[-2] if swap[0] else a.shape[-1]
    qa = _quantize_memo(memo, names[0], a, swap[0], unit0.a_fmt, k, acc, grad_side == "a", seed)
    qb = _quantize_memo(memo, names[1], b, swap[1], unit0.b_fmt, k, acc, grad_side == "b", seed)
    unit = gemm_unit(spec, qa.fmt, qb.fmt)
    r = matmul(qa, qb, unit, nthreads=nthreads)
    return _gemm_check(np.asarray(r.values), what), unit


def op_conv2d_forward(x, w, geom, spec, nthreads=None, memo=None):
    """Y = conv2d(X, W) through the spec's unit (X the unit's a operand). (values, unit)."""
    unit0 = gemm_unit(spec)
    k = geom.cg * geom.kh * geom.kw
    qx = _quantize_memo(memo, "x", x, False, unit0.a_fmt, k, unit0.acc_fmt, False, 0)
    qw = _quantize_memo(memo, "w", w, False, unit0.b_fmt, k, unit0.acc_fmt, False, 0)
    unit = gemm_unit(spec, qx.fmt, qw.fmt)
    r = _ns_conv2d(qx, qw, unit, stride=geom.stride, padding=geom.padding, dilation=geom.dilation,
                   groups=geom.groups, nthreads=nthreads)
    return _gemm_check(np.asarray(r.values), "conv2d"), unit


def op_conv2d_backward(x, w, gy, geom, spec_dx, spec_dw, seed, nthreads=None, memo=None):
    """(dL/dX, dL/dW, unit_dx, unit_dw) of a conv2d op in numsim.gemm's backward layouts (the same
    GEMMs as the module-level 'int' mode with PTQ): dL/dX^T = flipped W x patches(dL/dY) (a = the
    weight), dL/dW^T = dL/dY^T x im2col(X) (a = the gradient). A None spec skips that GEMM (None out)."""
    g = geom
    dx = dw = udx = udw = None
    if spec_dx is not None:
        kdx = g.og * g.kh * g.kw
        u0 = gemm_unit(spec_dx)
        qw = _quantize_memo(memo, "w", w, False, u0.a_fmt, kdx, u0.acc_fmt, False, 0)
        qg = _quantize_memo(memo, "g", gy, False, u0.b_fmt, kdx, u0.acc_fmt, True, seed)
        udx = gemm_unit(spec_dx, qw.fmt, qg.fmt)
        parts = []
        for a, b in zip(conv2d_grad_input_kernel(qw.codes, g), conv2d_grad_input_patches(qg.codes, qg.fmt, g)):
            r = matmul(QTensor(a, qw.fmt, qw.scale), QTensor(b, qg.fmt, qg.scale), udx, nthreads=nthreads)
            parts.append(_gemm_check(np.asarray(r.values), "conv2d dL/dX"))
        dx = conv2d_grad_input_gather(parts, g)
    if spec_dw is not None:
        kdw = g.n * g.oh * g.ow
        u0 = gemm_unit(spec_dw)
        qg = _quantize_memo(memo, "g", gy, False, u0.a_fmt, kdw, u0.acc_fmt, True, seed)
        qx = _quantize_memo(memo, "x", x, False, u0.b_fmt, kdw, u0.acc_fmt, False, 0)
        udw = gemm_unit(spec_dw, qg.fmt, qx.fmt)
        parts = []
        for a, b in zip(conv2d_grad_weight_grads(qg.codes, g), conv2d_grad_weight_patches(qx.codes, qx.fmt, g)):
            r = matmul(QTensor(a.T, qg.fmt, qg.scale), QTensor(b.T, qx.fmt, qx.scale), udw, nthreads=nthreads)
            parts.append(_gemm_check(np.asarray(r.values), "conv2d dL/dW").T)
        dw = conv2d_grad_weight_gather(parts, g)
    return dx, dw, udx, udw
