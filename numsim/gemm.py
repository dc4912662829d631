"""Tensor-level GEMM and conv2d on QTensors, codes and DLPack tensors, through a MAC unit.

The unit (numsim.units) does the arithmetic through `unit.gemm_codes`; this layer only arranges
operands: checks, batching with numpy broadcasting, scales (per-tensor, per-axis, per-sample
shift), im2col for conv2d, and handing results back in the caller's kind (numpy, or the DLPack
framework the inputs came from).

Scales: the output value of element (m, n) is acc(m, n) * scale_a(m) * scale_b(n) * step, where
scale_a is a's per-tensor scale or its per-row scale (axis -2), scale_b likewise (axis -1), and
`step` the common step of the reduction axis. Per-channel scales along the reduction axis K must
be power-of-two multiples of their smallest value: the unit then shifts each product left by
log2(scale_k / min_k scale) (the alignment shift of seed 001), and only units with an
`align_shift` input accept them. A per-sample-shift QTensor whose sample axis is K feeds the
`sample_shift` input of units that have one (seed 000).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from .codec import check_codes, decode, encode
from .errors import NumsimError, bad
from .formats import get_format
from .qtensor import QTensor
from .units import get_unit


@dataclass
class MatmulResult:
    """Accumulator codes, their values with the output scale applied, and the scale itself.

    `codes` (..., M, N) are accumulator codes (unit.acc_fmt); `acc_values` their decoded values
    without scale; `values` = acc_values * scale; `scale` broadcasts against (..., M, N).
    `out_codes` / `out_fmt` hold the unit's output stage when it has one. Arrays are numpy, or the
    caller's framework's tensors when the inputs came through DLPack.
    """

    codes: object
    values: object
    acc_values: object
    scale: object
    overflow_count: int = 0
    out_codes: object = None
    out_fmt: object = None
    unit: object = None
    info: dict = field(default_factory=dict)


# ---- operands --------------------------------------------------------------------------------

def _dlpack_module(x):
    """The framework of a non-numpy DLPack tensor (its top-level module), or None for numpy."""
    if isinstance(x, (np.ndarray, QTensor)) or not hasattr(x, "__dlpack__"):
        return None
    return sys.modules.get(type(x).__module__.split(".")[0])


def _on_device(x):
    """Whether x is a DLPack tensor on a device other than the CPU (numsim.gpu computes there)."""
    return _dlpack_module(x) is not None and hasattr(x, "__dlpack_device__") and int(x.__dlpack_device__()[0]) != 1


def _from_dlpack(x, arg):
    dev = x.__dlpack_device__() if hasattr(x, "__dlpack_device__") else (1, 0)
    if int(dev[0]) != 1:  # kDLCPU
        raise NumsimError(f"{arg}: DLPack device {tuple(dev)} is not the CPU; move the tensor to the CPU first "
                          f"(numsim runs on the CPU)")
    try:
        return np.from_dlpack(x)
    except (TypeError, BufferError, RuntimeError) as e:
        raise NumsimError(f"{arg}: could not import the tensor through DLPack: {e}") from None


def _as_operand(x, fmt, arg):
    """(codes ndarray, QTensor or None) for a QTensor, an integer array of codes, or a DLPack tensor."""
    if isinstance(x, QTensor):
        if x.fmt != fmt:
            raise NumsimError(f"{arg}: format {x.fmt} does not match the unit's operand format {fmt}")
        return x.codes, x
    if _dlpack_module(x) is not None:
        x = _from_dlpack(x, arg)
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise bad(arg, f"a QTensor or an integer array of {fmt} codes", f"dtype {a.dtype}")
    return check_codes(a, fmt, arg), None


def _back(x, module):
    """A numpy result in the caller's framework (zero-copy through DLPack where it can)."""
    if module is None or x is None:
        return x
    from_dlpack = getattr(module, "from_dlpack", None)
    if from_dlpack is None:
        return x
    x = np.ascontiguousarray(x)
    if x.dtype == np.uint16 or x.dtype == np.uint32:
        # many frameworks have no unsigned 16/32-bit dtypes: hand over the same bits as signed
        x = x.view(np.int16 if x.dtype == np.uint16 else np.int32)
    return from_dlpack(x)


def _pow2_shifts(s, arg):
    """Integer shifts log2(s / min s) of power-of-two-related scales."""
    base = float(np.min(s))
    ratio = s / base
    shifts = np.round(np.log2(ratio)).astype(np.int64)
    if not np.array_equal(np.ldexp(1.0, shifts) * base, s):
        raise NumsimError(f"{arg}: per-channel scales along the reduction axis must be power-of-two multiples "
                          f"of each other (they become alignment shifts); got ratios {ratio[:6].tolist()}...")
    return base, shifts


def _reduction_context(qa, qb, k, unit):
    """Per-k context (align_shift, sample_shift) and the scales of a and b along M and N."""
    ctx = {}
    step = 1.0
    row_scale = None   # (M,) or scalar
    col_scale = None   # (N,) or scalar
    shifts = np.zeros(k, dtype=np.int64)
    any_align = False
    for q, red_axis, keep_axis, arg in ((qa, -1, -2, "a"), (qb, -2, -1, "b")):
        if q is None:
            s_keep = 1.0
        elif q.sample_shift is not None:
            if q.sample_axis != q.ndim + red_axis:
                raise NumsimError(f"{arg}: per-sample shifts must lie along the reduction axis "
                                  f"(axis {q.ndim + red_axis}); got sample_axis {q.sample_axis}")
            if "sample_shift" in ctx:
                raise NumsimError("a, b: only one operand may carry per-sample shifts")
            ctx["sample_shift"] = q.sample_shift.astype(np.int64)
            # the weight of one accumulator LSB relative to the per-tensor step (e.g. 2^-4 when the
            # unit shifts left by 4 - s to keep every bit)
            step *= float(getattr(unit, "value_scale", 1.0))
            s_keep = float(q.scale)
        elif q.axis is None:
            s_keep = float(q.scale)
        elif q.axis == q.ndim + red_axis:
            base, sh = _pow2_shifts(q.scale, f"{arg}.scale")
            shifts = shifts + sh
            any_align = True
            step *= base
            s_keep = 1.0
        elif q.axis == q.ndim + keep_axis:
            s_keep = q.scale
        else:
            raise NumsimError(f"{arg}: per-axis scale on axis {q.axis}: numsim.matmul takes scales along the "
                              f"row/column axis or the reduction axis, not a batch axis")
        if arg == "a":
            row_scale = s_keep
        else:
            col_scale = s_keep
    if any_align:
        ctx["align_shift"] = shifts
    return ctx, step, row_scale, col_scale


def _initial_accumulator(c, unit, shape):
    """Accumulator codes from `c`: unsigned integers are codes of unit.acc_fmt; signed integers and
    floats are values, which must be exactly representable in it."""
    if c is None:
        return None
    if _dlpack_module(c) is not None:
        c = _from_dlpack(c, "c")
    c = np.asarray(c)
    acc = get_format(unit.acc_fmt)
    if c.dtype.kind == "u":
        codes = check_codes(c, acc, "c")
    elif c.dtype.kind in "if":
        if c.dtype.kind == "f" and not np.all(np.isfinite(c)) and not acc.has_inf:
            raise NumsimError(f"c: non-finite initial accumulator values for the {acc} accumulator")
        # an infinite start is a value of an IEEE accumulator; anything not exactly representable
        # is caught by the round trip below
        codes = encode(c.astype(np.float64) if c.dtype.kind == "i" else c, acc,
                       overflow="to_inf" if acc.has_inf else "error")
        back = decode(codes, acc)
        same = (back == c) | (np.isnan(back) & np.isnan(c.astype(np.float64)))
        if not np.all(same):
            i = tuple(int(v) for v in np.argwhere(~same)[0])
            raise NumsimError(f"c: value {c[i].item()!r} at index {i} is not exactly representable in the "
                              f"accumulator format {acc}")
    else:
        raise bad("c", "accumulator codes (unsigned) or values (signed integers / floats)", f"dtype {c.dtype}")
    try:
        return np.broadcast_to(codes, shape)
    except ValueError:
        raise bad("c", f"an array broadcastable to the output shape {shape}", f"shape {codes.shape}") from None


def _run_unit(unit, a2, b2, c2, nthreads, ctx):
    """The unit's GEMM through the kernel numsim.kernels.select picks (c2: accumulator codes)."""
    from .kernels import gemm

    return gemm(unit, np.ascontiguousarray(a2), np.ascontiguousarray(b2),
                c=None if c2 is None else np.ascontiguousarray(c2), nthreads=nthreads, ctx=ctx)


def _check_warn(warn):
    if not isinstance(warn, (bool, np.bool_)):
        raise bad("warn", "True or False", repr(warn))
    return bool(warn)


def _warn_suspicious(res, where):
    """A NumsimWarning with the counts of non-finite, saturated outputs and overflow events (if any)."""
    import warnings

    from .errors import NumsimWarning
    from .events import output_stage_text, suspicious_counts, suspicious_text

    text = suspicious_text(suspicious_counts(np.asarray(res.acc_values), get_format(res.unit.acc_fmt),
                                             res.overflow_count))
    stage = (res.info or {}).get("output_stage")
    if isinstance(stage, dict):
        text = "; ".join(t for t in (text, output_stage_text(stage)) if t) or None
    if text:
        warnings.warn(f"{where} through {res.unit.name}: {text}", NumsimWarning, stacklevel=3)
    return res


def matmul(a, b, unit, c=None, nthreads=None, warn=False, output_stage=None) -> MatmulResult:
    """a (..., M, K) @ b (..., K, N) through `unit`, batch dimensions broadcast as numpy does.

    a, b: QTensors, integer arrays of codes (scale 1), or CPU DLPack tensors of codes.
    c: optional initial accumulator (see _initial_accumulator), broadcastable to (..., M, N).
    nthreads: threads over output tiles (the unit's reduction order never changes).
    warn: True issues a numsim.NumsimWarning when outputs are inf/NaN, saturated at the
    accumulator's range ends, or the kernel counted overflow events (docs/errors.md).
    output_stage: a numsim.units.runtime_stage.OutputStage (numsim.output_stage(preset, ...)) for a unit
    with an INT32 accumulator: its zero points correct the accumulators (exact, int32 as the runtimes),
    its rule gives out_codes / out_fmt; info["output_stage"] counts clamped outputs and int32 wraps.
    """
    warn = _check_warn(warn)
    unit = get_unit(unit)
    if output_stage is not None:
        _check_runtime_stage(output_stage, unit)
    from .block.tensor import BlockTensor

    if isinstance(a, BlockTensor) or isinstance(b, BlockTensor):     # block-scaled operands (issue 17)
        from .block.gemm import block_matmul

        return block_matmul(a, b, unit, c=c, nthreads=nthreads)
    if _on_device(a) or _on_device(b):    # device tensors compute on their device (lazy: needs triton)
        from .gpu import matmul as gpu_matmul

        return gpu_matmul(a, b, unit, c=c)
    mod = _dlpack_module(a) or _dlpack_module(b)
    a_codes, qa = _as_operand(a, get_format(unit.a_fmt), "a")
    b_codes, qb = _as_operand(b, get_format(unit.b_fmt), "b")
    if a_codes.ndim < 2 or b_codes.ndim < 2:
        raise bad("a, b", "arrays of at least 2 dimensions (..., M, K) and (..., K, N)",
                  f"shapes {a_codes.shape} and {b_codes.shape}")
    m, k = a_codes.shape[-2:]
    k2, n = b_codes.shape[-2:]
    if k != k2:
        raise NumsimError(f"a, b: reduction lengths differ: a is (..., {m}, {k}), b is (..., {k2}, {n})")
    if k == 0:
        raise bad("a, b", "a reduction length K >= 1", 0)
    try:
        batch = np.broadcast_shapes(a_codes.shape[:-2], b_codes.shape[:-2])
    except ValueError:
        raise NumsimError(f"a, b: batch dimensions {a_codes.shape[:-2]} and {b_codes.shape[:-2]} do not "
                          f"broadcast") from None
    ctx, step, row_scale, col_scale = _reduction_context(qa, qb, k, unit)
    out_shape = batch + (m, n)
    c_codes = _initial_accumulator(c, unit, out_shape)
    A = np.broadcast_to(a_codes, batch + (m, k))
    B = np.broadcast_to(b_codes, batch + (k, n))
    acc_fmt = get_format(unit.acc_fmt)
    codes = np.empty(out_shape, dtype=acc_fmt.dtype) if batch else None
    out_codes = None
    overflow = 0
    info = {}
    acc_values = None
    done = None
    if batch and c_codes is None:
        from .kernels.batch import imatmul_batch

        done = imatmul_batch(unit, A.reshape((-1, m, k)), B.reshape((-1, k, n)), ctx, nthreads)
    if done is not None:
        res, name = done
        nb = res.codes.shape[0]
        codes[...] = np.asarray(res.codes).reshape(out_shape)
        acc_values = np.asarray(res.values, dtype=np.float64).reshape(out_shape)
        if res.out_codes is not None:
            out_codes = res.out_codes.reshape(out_shape)
        info["kernel"] = [name] * nb
    for idx in (np.ndindex(*batch) if batch else [()]) if done is None else []:
        res = _run_unit(unit, A[idx], B[idx], None if c_codes is None else c_codes[idx], nthreads, ctx)
        if batch:
            codes[idx] = res.codes
        else:
            # one GEMM: keep the unit's arrays (its values are decode(codes)); fresh copies of
            # megabyte outputs cost more than the GEMM at n = 512 (page faults)
            codes = np.asarray(res.codes).astype(acc_fmt.dtype, copy=False)
            if isinstance(res.values, np.ndarray) and res.values.dtype == np.float64 and res.values.shape == out_shape:
                acc_values = res.values
        overflow += int(res.overflow_count)
        if res.out_codes is not None:
            if out_codes is None:
                out_codes = np.empty(out_shape, dtype=res.out_codes.dtype)
            out_codes[idx] = res.out_codes
        for key, v in (res.info or {}).items():
            info.setdefault(key, []).append(v)
    if acc_values is None:
        acc_values = decode(codes, acc_fmt)
    rs = np.asarray(row_scale, dtype=np.float64)
    cs = np.asarray(col_scale, dtype=np.float64)
    scale = step * (rs.reshape(-1, 1) if rs.ndim else rs) * (cs.reshape(1, -1) if cs.ndim else cs)
    scale = np.asarray(scale, dtype=np.float64)
    values = acc_values * scale
    out_fmt = getattr(unit, "out_fmt", None)
    if output_stage is not None:
        out_codes, out_fmt, info["output_stage"] = _apply_runtime_stage(output_stage, unit, acc_values, A, B)
    res = MatmulResult(codes=codes, values=values, acc_values=acc_values, scale=scale, overflow_count=overflow,
                       out_codes=out_codes, out_fmt=out_fmt, unit=unit, info=info)
    if warn:
        _warn_suspicious(res, "matmul")
    return _in_framework(res, mod)


def _check_runtime_stage(stage, unit):
    from .units.runtime_stage import OutputStage

    if not isinstance(stage, OutputStage):
        raise bad("output_stage", "None or a numsim OutputStage (numsim.output_stage(preset, ...))",
                  type(stage).__name__)
    acc = get_format(unit.acc_fmt)
    if acc.kind != "int" or acc.bits != 32 or not acc.signed:
        raise bad("output_stage", "a unit with an INT32 accumulator", f"{unit.name} (accumulator {acc})")
    if getattr(unit, "output_stage", None) is not None:
        raise bad("output_stage", f"a unit without its own output stage ({unit.name} has one)", "both")


def _apply_runtime_stage(stage, unit, acc_values, A, B):
    """(out codes, out format, events) of a runtime output stage on the unit's int32 accumulators."""
    acc = np.asarray(acc_values).astype(np.int64)
    a_vals = decode(np.asarray(A), get_format(unit.a_fmt)).astype(np.int64)
    b_vals = decode(np.asarray(B), get_format(unit.b_fmt)).astype(np.int64)
    corrected, wraps = stage.zero_point_correction(acc, a_vals, b_vals)
    out, events = stage.requantize(corrected)
    events["wraps"] += wraps
    return (out & 0xFF).astype(np.uint8), get_format(stage.out_fmt), events


def _in_framework(res, mod):
    """The result's arrays in the caller's framework (numpy when mod is None)."""
    if mod is not None:
        for name in ("codes", "values", "acc_values", "out_codes"):
            setattr(res, name, _back(getattr(res, name), mod))
    return res


# ---- conv2d --------------------------------------------------------------------------------------

def _pair(v, arg):
    """An int or a pair of ints as a pair; anything else (strings, floats, bools) is refused, never truncated."""
    def is_int(t):
        return isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_))

    if is_int(v):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(is_int(t) for t in v):
        return tuple(int(t) for t in v)
    raise bad(arg, "an int or a pair of ints", repr(v))


def im2col(x_codes, kh, kw, stride, padding, dilation, pad_code=0):
    """(N, C, H, W) codes -> (N, OH, OW, C * kh * kw) patches, reduction index k = (c, i, j) in C order."""
    n, c, h, w = x_codes.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise NumsimError(f"x: input {h}x{w} is too small for kernel {kh}x{kw} with padding {padding}, "
                          f"dilation {dilation}, stride {stride}")
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), pad_code, dtype=x_codes.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x_codes
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, shape=(n, oh, ow, c, kh, kw),
        strides=(s[0], s[2] * sh, s[3] * sw, s[1], s[2] * dh, s[3] * dw), writeable=False)
    return view.reshape(n, oh, ow, c * kh * kw), oh, ow


def conv2d(x, w, unit, stride=1, padding=0, dilation=1, groups=1, c=None, nthreads=None,
           max_patch_bytes=64 << 20, warn=False) -> MatmulResult:
    """NCHW convolution by im2col onto the unit's GEMM.

    x (N, C, H, W) and w (O, C/groups, kh, kw): QTensors, code arrays or CPU DLPack tensors. The
    reduction index of each output is (c, i, j) in C order within its group. Scales: x per-tensor
    (or per-channel along axis 1: power-of-two ratios, turned into alignment shifts); w per-tensor
    or per output channel (axis 0). Result arrays have shape (N, O, OH, OW). The im2col patches are
    built batch by batch so their memory stays below max_patch_bytes. warn: as numsim.matmul's.
    """
    warn = _check_warn(warn)
    unit = get_unit(unit)
    if _on_device(x) or _on_device(w):    # device tensors: im2col and the GEMMs on their device (numsim.gpu)
        from .gpu.conv import conv2d as gpu_conv2d
        return gpu_conv2d(x, w, unit, stride, padding, dilation, groups, c)
    mod = _dlpack_module(x) or _dlpack_module(w)
    xf, wf = get_format(unit.a_fmt), get_format(unit.b_fmt)
    x_codes, qx = _as_operand(x, xf, "x")
    w_codes, qw = _as_operand(w, wf, "w")
    if x_codes.ndim != 4:
        raise bad("x", "an (N, C, H, W) array", f"shape {x_codes.shape}")
    if w_codes.ndim != 4:
        raise bad("w", "an (O, C/groups, kh, kw) array", f"shape {w_codes.shape}")
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise bad("stride/padding/dilation", "stride >= 1, dilation >= 1, padding >= 0",
                  f"{stride}, {padding}, {dilation}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise bad("groups", "an int >= 1", groups)
    nb, cin, h, wd = x_codes.shape
    o, cg, kh, kw = w_codes.shape
    if cin % groups or o % groups or cg != cin // groups:
        raise NumsimError(f"w: shape {w_codes.shape} does not fit x with {cin} channels and groups={groups} "
                          f"(expected (O, {cin // groups if cin % groups == 0 else '?'}, kh, kw), O divisible by groups)")
    # scales
    x_scale, x_chan = 1.0, None
    if qx is not None:
        if qx.sample_shift is not None:
            raise NumsimError("x: per-sample shifts are not supported by conv2d (use matmul with the "
                              "sample axis as the reduction axis)")
        if qx.axis is None:
            x_scale = float(qx.scale)
        elif qx.axis == 1:
            x_chan = qx.scale
        else:
            raise NumsimError(f"x: per-axis scale on axis {qx.axis}; conv2d takes a per-tensor scale or "
                              f"per-channel scales on axis 1")
    w_scale = 1.0
    if qw is not None:
        if qw.sample_shift is not None or (qw.axis is not None and qw.axis != 0):
            raise NumsimError(f"w: conv2d takes a per-tensor scale or per-output-channel scales on axis 0; "
                              f"got axis {qw.axis}")
        w_scale = float(qw.scale) if qw.axis is None else qw.scale
    pad_code = int(encode(np.zeros(1), xf)[0])
    acc_fmt = get_format(unit.acc_fmt)
    # output shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise NumsimError(f"x: input {h}x{wd} is too small for kernel {kh}x{kw} with padding {padding}, "
                          f"dilation {dilation}, stride {stride}")
    out_shape = (nb, o, oh, ow)
    c_codes = _initial_accumulator(c, unit, out_shape)
    codes = np.empty(out_shape, dtype=acc_fmt.dtype)
    out_codes = None
    overflow = 0
    og = o // groups
    k = cg * kh * kw
    step = 1.0
    ctx_g = []
    for g in range(groups):
        ctx = {}
        if x_chan is not None:
            base, sh = _pow2_shifts(x_chan[g * cg:(g + 1) * cg], "x.scale")
            ctx["align_shift"] = np.repeat(sh, kh * kw)
            step = base if g == 0 else step
            if base != step:
                raise NumsimError("x.scale: every group must share the smallest channel scale")
        ctx_g.append(ctx)
    per_image = oh * ow * k * x_codes.dtype.itemsize
    chunk = max(1, int(max_patch_bytes // max(per_image, 1)))
    used = []       # the kernel of every GEMM, as matmul's info["kernel"]
    for n0 in range(0, nb, chunk):
        n1 = min(nb, n0 + chunk)
        for g in range(groups):
            xs = x_codes[n0:n1, g * cg:(g + 1) * cg]
            cols, _, _ = im2col(xs, kh, kw, stride, padding, dilation, pad_code)
            a2 = np.ascontiguousarray(cols.reshape(-1, k))
            b2 = np.ascontiguousarray(w_codes[g * og:(g + 1) * og].reshape(og, k).T)
            c2 = None
            if c_codes is not None:
                c2 = c_codes[n0:n1, g * og:(g + 1) * og].transpose(0, 2, 3, 1).reshape(-1, og)
            res = _run_unit(unit, a2, b2, c2, nthreads, ctx_g[g])
            used.append(res.info.get("kernel"))
            codes[n0:n1, g * og:(g + 1) * og] = res.codes.reshape(n1 - n0, oh, ow, og).transpose(0, 3, 1, 2)
            overflow += int(res.overflow_count)
            if res.out_codes is not None:
                if out_codes is None:
                    out_codes = np.empty(out_shape, dtype=res.out_codes.dtype)
                out_codes[n0:n1, g * og:(g + 1) * og] = res.out_codes.reshape(n1 - n0, oh, ow, og).transpose(0, 3, 1, 2)
    acc_values = decode(codes, acc_fmt)
    ws = np.asarray(w_scale, dtype=np.float64)
    scale = np.asarray(step * x_scale * (ws.reshape(1, -1, 1, 1) if ws.ndim else ws), dtype=np.float64)
    values = acc_values * scale
    res = MatmulResult(codes=codes, values=values, acc_values=acc_values, scale=scale, overflow_count=overflow,
                       out_codes=out_codes, out_fmt=getattr(unit, "out_fmt", None), unit=unit, info={"kernel": used})
    if warn:
        _warn_suspicious(res, "conv2d")
    return _in_framework(res, mod)


# ---- conv2d's backward as GEMMs --------------------------------------------------------------------
# For y = conv2d(x, w) with x (N, C, H, W), w (O, C/g, kh, kw), y (N, O, OH, OW), per group:
# - dL/dX = conv2d_grad_input_kernel(w) (C/g, O/g * kh * kw) @ conv2d_grad_input_patches(dL/dY)
#   (O/g * kh * kw, N * H * W): a transposed convolution as one GEMM over the flipped taps, with no
#   col2im (each dL/dX element is one reduction); conv2d_grad_input_gather -> (N, C, H, W);
# - dL/dW = conv2d_grad_weight_patches(x) (C/g * kh * kw, N * OH * OW) @ conv2d_grad_weight_grads(dL/dY)
#   (N * OH * OW, O/g), reduction over (n, oh, ow); conv2d_grad_weight_gather -> (O, C/g, kh, kw).
# The operands are code arrays, so either side can be a unit's a or b input (numsim.torch.numerics).

@dataclass(frozen=True)
class ConvGeometry:
    """One conv2d (a Linear layer is the 1x1 case)."""

    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1

    @property
    def oh(self):
        return (self.h + 2 * self.padding[0] - self.dilation[0] * (self.kh - 1) - 1) // self.stride[0] + 1

    @property
    def ow(self):
        return (self.w + 2 * self.padding[1] - self.dilation[1] * (self.kw - 1) - 1) // self.stride[1] + 1

    @property
    def cg(self):
        return self.c // self.groups

    @property
    def og(self):
        return self.o // self.groups


def _zero_code(fmt):
    # the code of 0.0: what im2col pads with
    return int(encode(np.zeros(1), fmt)[0])


def conv2d_grad_input_patches(g_codes, fmt, geom: ConvGeometry):
    """The b side of the dL/dX GEMMs: dL/dY codes (N, O, OH, OW) dilated by the stride into a
    zero-code buffer padded by dilation * (k - 1) - padding, then im2col with the layer's dilation
    and stride 1: (N, H, W, O * kh * kw) per group is returned as a list of (O/g * kh * kw, N * H * W)
    arrays, reduction index (o, i, j) over the flipped kernel taps."""
    g = geom
    dh, dw = g.dilation
    hb, wb = g.h + (g.kh - 1) * dh, g.w + (g.kw - 1) * dw
    buf = np.full((g.n, g.o, hb, wb), _zero_code(fmt), dtype=g_codes.dtype)
    top, left = (g.kh - 1) * dh - g.padding[0], (g.kw - 1) * dw - g.padding[1]
    rows = top + g.stride[0] * np.arange(g.oh)
    cols = left + g.stride[1] * np.arange(g.ow)
    ri = np.nonzero((rows >= 0) & (rows < hb))[0]
    ci = np.nonzero((cols >= 0) & (cols < wb))[0]
    # dL/dY entries whose taps all fall outside the input (padding > dilation * (k - 1)) touch no dX
    buf[:, :, rows[ri][:, None], cols[ci][None, :]] = g_codes[:, :, ri[:, None], ci[None, :]]
    out = []
    for gi in range(g.groups):
        p, _, _ = im2col(buf[:, gi * g.og:(gi + 1) * g.og], g.kh, g.kw, (1, 1), (0, 0), g.dilation,
                         _zero_code(fmt))
        out.append(p.reshape(g.n * g.h * g.w, -1).T)
    return out


def conv2d_grad_input_kernel(w_codes, geom: ConvGeometry):
    """The a side of the dL/dX GEMMs: per group the flipped kernel as (C/g, O/g * kh * kw)."""
    g = geom
    out = []
    for gi in range(g.groups):
        wg = w_codes[gi * g.og:(gi + 1) * g.og, :, ::-1, ::-1]          # (O/g, C/g, kh, kw), taps flipped
        out.append(wg.transpose(1, 0, 2, 3).reshape(g.cg, g.og * g.kh * g.kw))
    return out


def conv2d_grad_weight_patches(x_codes, fmt, geom: ConvGeometry):
    """The a side of the dL/dW GEMMs: per group im2col(X)^T, (C/g * kh * kw, N * OH * OW)."""
    g = geom
    out = []
    for gi in range(g.groups):
        p, _, _ = im2col(x_codes[:, gi * g.cg:(gi + 1) * g.cg], g.kh, g.kw, g.stride, g.padding, g.dilation,
                         _zero_code(fmt))
        out.append(p.reshape(g.n * g.oh * g.ow, -1).T)
    return out


def conv2d_grad_weight_grads(g_codes, geom: ConvGeometry):
    """The dL/dY side of the dL/dW GEMMs: per group (N * OH * OW, O/g)."""
    g = geom
    t = g_codes.transpose(0, 2, 3, 1)
    return [t[..., gi * g.og:(gi + 1) * g.og].reshape(g.n * g.oh * g.ow, g.og) for gi in range(g.groups)]


def conv2d_grad_input_gather(parts, geom):
    """Per-group (C/g, N * H * W) results -> (N, C, H, W)."""
    g = geom
    dx = np.empty((g.n, g.c, g.h, g.w), dtype=np.float64)
    for gi, r in enumerate(parts):
        dx[:, gi * g.cg:(gi + 1) * g.cg] = r.reshape(g.cg, g.n, g.h, g.w).transpose(1, 0, 2, 3)
    return dx


def conv2d_grad_weight_gather(parts, geom):
    """Per-group (C/g * kh * kw, O/g) results -> (O, C/g, kh, kw)."""
    g = geom
    return np.concatenate([r.T.reshape(g.og, g.cg, g.kh, g.kw) for r in parts], axis=0)
