"""The GPU entry points: operand intake on torch tensors, kernel choice by domain, codes out.

Every torch / triton import is inside a function: numsim.gpu imports without them, and a call says
what to install (the `gpu` extra)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..codec import decode
from ..errors import NumsimError, bad
from ..formats import FloatFormat, IntFormat, get_format
from ..units import get_unit


def _torch():
    try:
        import torch
    except ImportError:
        raise NumsimError("numsim.gpu needs torch and triton: pip install 'numsim[gpu]'") from None
    return torch


def _kernels():
    try:
        from . import triton_kernels
    except ImportError as e:
        raise NumsimError(f"numsim.gpu needs triton (pip install 'numsim[gpu]'): {e}") from None
    return triton_kernels


@dataclass
class GpuGemmResult:
    """Accumulator codes (M, N) as a torch int64 tensor of unsigned codes on the operands' device, the
    overflow events counted as the CPU kernels count them, and the kernel used (info["kernel"];
    info["fallback"] gives the reason when the CPU kernels ran instead)."""

    codes: object
    overflow_count: int = 0
    info: dict = field(default_factory=dict)
    out_codes: object = None       # after the unit's output stage (int8 codes as int64), if it has one


# ---- what runs on the GPU --------------------------------------------------------------------

def _is_fmt(f, bits, exp_bits, man_bits):
    return (isinstance(f, FloatFormat) and f.radix == 2 and f.bits == bits and f.exp_bits == exp_bits
            and f.man_bits == man_bits and f.specials == "ieee" and f.subnormals)


@functools.lru_cache(maxsize=64)
def _table(fmt):
    """Every code's value (float64, read-only), or None for formats of more than 16 bits."""
    if fmt.bits > 16:
        return None
    t = decode(np.arange(2**fmt.bits, dtype=np.uint32), fmt).astype(np.float64)
    t.flags.writeable = False
    return t


def _fits_int8(fmt, shift=0):
    t = _table(fmt)
    return t is not None and isinstance(fmt, IntFormat) and t.min() * 2**shift >= -128 and t.max() * 2**shift <= 127


def _float_operand_reason(fmt, arg):
    t = _table(fmt)
    if t is None:
        return f"{arg}: {fmt} has more than 16 bits (no decode table)"
    fin = t[np.isfinite(t)]
    if not np.array_equal(fin.astype(np.float32).astype(np.float64), fin):
        return f"{arg}: {fmt} values are not all exact in fp32"
    return None


def _float_unit_reason(unit):
    """None when the fp32-arithmetic kernel (k_step 1, RNE, fp32 / fp16 / bf16 accumulator) gives the
    unit's bits, else why not."""
    from ..units.float_mac import FloatMacUnit, _sig_bits

    if unit.k_step != 1:
        return "k_step > 1 (fused groups) needs the int64 kernel"
    if unit.inner_bits is not None:
        return "an inner adder (inner_bits) has no GPU kernel yet"
    if unit.acc_rounding != "nearest_even":
        return f"acc_rounding {unit.acc_rounding!r} needs the int64 kernel"
    if unit.acc_overflow not in ("to_inf", "saturate"):
        return f"acc_overflow {unit.acc_overflow!r}: an overflow error is raised by the CPU kernels only"
    if not (_is_fmt(unit.acc_fmt, 16, 5, 10) or _is_fmt(unit.acc_fmt, 32, 8, 23) or _is_fmt(unit.acc_fmt, 16, 8, 7)):
        return f"accumulator {unit.acc_fmt}: the fp32-arithmetic kernel holds fp16, bf16 or fp32 accumulators"
    for fmt, arg in ((unit.a_fmt, "a_fmt"), (unit.b_fmt, "b_fmt")):
        r = _float_operand_reason(fmt, arg)
        if r:
            return r
    if _sig_bits(unit.a_fmt) + _sig_bits(unit.b_fmt) > 24:
        return "products of more than 24 significant bits are not exact in fp32"
    ta, tb = (np.abs(_table(f)) for f in (unit.a_fmt, unit.b_fmt))
    ta, tb = ta[np.isfinite(ta)], tb[np.isfinite(tb)]
    big = float(ta.max()) * float(tb.max())
    small = float(ta[ta > 0].min()) * float(tb[tb > 0].min()) if (ta > 0).any() and (tb > 0).any() else 1.0
    if big >= 2.0**100 or small < 2.0**-126:
        # products stay normal fp32 numbers far from overflow: exact, and no flush-to-zero can touch them
        return "products leave fp32's normal range"
    return None


def _float_int64_reason(unit):
    """None when the int64-lane kernel gives the unit's bits (exact sums below 2^62), else why not."""
    if unit.inner_bits is not None:
        return "an inner adder (inner_bits) has no GPU kernel yet"
    if unit.acc_overflow not in ("to_inf", "saturate"):
        return f"acc_overflow {unit.acc_overflow!r}: an overflow error is raised by the CPU kernels only"
    if unit._c_a_fmt.bits > 16 or unit._c_b_fmt.bits > 16:
        return "operand formats of more than 16 bits (no decode table)"
    if unit.span_bits > 62:
        return f"exact sums span {unit.span_bits} bits (the int64 kernel holds 62)"
    return None


def _kernel_for(unit):
    """(kernel name, None) for the unit's GPU kernel, or (None, reason)."""
    from ..units.float_mac import FloatMacUnit, Int4Fp4r4Unit
    from ..units.fused_adder import FusedDotUnit
    from ..units.int_mac import IntMacUnit
    from ..units.int_mma import IntMMAUnit
    from ..units.sample_shift import SampleShiftUnit

    if type(unit) is IntMMAUnit:
        if not (_fits_int8(unit.a_fmt) and _fits_int8(unit.b_fmt)):
            return None, "operands whose values do not fit int8 lanes"
        return "gpu.int_mma.int8_dot", None
    if type(unit) is IntMacUnit:
        if _table(unit.a_fmt) is None or _table(unit.b_fmt) is None:
            return None, "operand formats of more than 16 bits"
        return "gpu.int_mac.int8_dot", None          # int64 lanes outside the int8 dot's domain
    if type(unit) is SampleShiftUnit:
        if _table(unit.a_fmt) is None or _table(unit.b_fmt) is None:
            return None, "operand formats of more than 16 bits"
        return "gpu.sample_shift.int64", None
    if type(unit) is FusedDotUnit:
        return "gpu.fused_dot.int64", None
    if type(unit) in (FloatMacUnit, Int4Fp4r4Unit):
        r = _float_unit_reason(unit) if type(unit) is FloatMacUnit else "radix-4 operands"
        if r is None:
            return "gpu.float_mac.ordered", None
        r2 = _float_int64_reason(unit)
        if r2 is None:
            return "gpu.float_mac.int64", None
        return None, f"{r}; {r2}"
    return None, f"{type(unit).__name__} has no GPU kernel yet"


def supported(unit):
    """None when a GPU kernel computes `unit` (subject to the data bounds of the integer kernels),
    else the reason."""
    return _kernel_for(get_unit(unit))[1]


# ---- operand intake --------------------------------------------------------------------------

def _codes(x, fmt, arg):
    """An int64 tensor of the codes of `fmt` in x (integer torch tensor; a signed dtype of the
    format's own width is read as its bits)."""
    torch = _torch()
    if not isinstance(x, torch.Tensor) and hasattr(x, "__dlpack__") and not isinstance(x, np.ndarray):
        x = _device_tensor(x, arg)                       # another framework's tensor: zero copy
    if not isinstance(x, torch.Tensor):
        raise bad(arg, "a torch (or DLPack) tensor of codes", type(x).__name__)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise bad(arg, f"an integer tensor of {fmt} codes", f"dtype {x.dtype}")
    width = {torch.int8: 8, torch.int16: 16, torch.int32: 32}.get(x.dtype)
    y = x.to(torch.int64)
    if width is not None and width == fmt.bits:
        y = y & ((1 << fmt.bits) - 1)
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= 2**fmt.bits:
            raise bad(arg, f"{fmt} codes in [0, {2**fmt.bits})", f"codes in [{lo}, {hi}]")
    return y


def _acc_input(unit, c, M, N, dev):
    """Initial accumulator codes (M, N) int64 on dev from c: an integer tensor of codes (a signed dtype
    of the accumulator's width: its bits), or a float tensor of values of a float accumulator."""
    torch = _torch()
    if c is None:
        return None
    if not isinstance(c, torch.Tensor):
        raise bad("c", "a torch tensor", type(c).__name__)
    acc = unit.acc_fmt
    if c.dtype.is_floating_point:
        native = {16: torch.float16, 32: torch.float32}.get(acc.bits) if isinstance(acc, FloatFormat) else None
        if native is None or not (_is_fmt(acc, 16, 5, 10) or _is_fmt(acc, 32, 8, 23)):
            raise bad("c", f"{acc} accumulator codes (an integer tensor)", f"dtype {c.dtype}")
        cn = c.to(native)
        same = (cn.to(torch.float64) == c.to(torch.float64)) | (torch.isnan(cn) & torch.isnan(c))
        if not bool(same.all()):
            raise bad("c", f"values exactly representable in the {acc} accumulator", "an inexact value")
        c = cn.view(torch.int16 if acc.bits == 16 else torch.int32)
    cc = _codes(c.to(dev), acc, "c")
    if tuple(cc.shape) != (M, N):
        raise bad("c", f"shape {(M, N)}", f"shape {tuple(cc.shape)}")
    return cc


def _values(table, codes, dtype):
    torch = _torch()
    t = torch.tensor(table, device=codes.device).to(dtype)
    return t[codes]


# ---- the kernels' drivers --------------------------------------------------------------------

def _interpreting(dev):
    return dev.type == "cpu"


def _int_gemm(unit, a, b, cc, shift, name):
    """int8 x int8 -> int32 tl.dot, or a reason when the data leave the exact domain."""
    torch = _torch()
    from ..kernels.int_lanes import _imma_ok, _int_unit_ok
    from ..units.int_mma import IntMMAUnit

    M, K = a.shape
    N = b.shape[1]
    dev = a.device
    ta = torch.tensor(_table(unit.a_fmt), device=dev).to(torch.int64)
    tb = torch.tensor(_table(unit.b_fmt), device=dev).to(torch.int64)
    acc_bits = unit.acc_fmt.bits
    if not (_fits_int8(unit.a_fmt) and _fits_int8(unit.b_fmt)):
        return None, "operands whose values do not fit int8 lanes"
    cv = None
    if cc is not None:   # accumulator codes -> two's-complement values
        cv = torch.where(cc >= 2 ** (acc_bits - 1), cc - 2**acc_bits, cc)
    # The domain: the CPU kernels' own bound (numsim/kernels/int_lanes.py), fed with the data's
    # extreme codes (the bound reads only maxima of |value|, K and the shifts).
    wrap32 = type(unit) is IntMMAUnit and unit.acc_overflow == "wrap"
    if not wrap32:
        av, bv = ta[a], tb[b]
        ia = int(av.abs().argmax()) if av.numel() else 0
        ib = int(bv.abs().argmax()) if bv.numel() else 0
        ca = np.full((1, K), int(a.reshape(-1)[ia]) if a.numel() else 0, np.uint32)
        cb = np.full((K, 1), int(b.reshape(-1)[ib]) if b.numel() else 0, np.uint32)
        c1 = None if cv is None else np.array([[int(cc.reshape(-1)[int(cv.abs().argmax())])]], np.uint32)
        if type(unit) is IntMMAUnit:
            ok = _imma_ok(unit, ca, cb, c1, {})
        else:
            ok = _int_unit_ok(unit, ca, cb, c1, {} if shift is None else {"align_shift": shift.cpu().numpy()})
        if ok is None:
            return None, "the data leave the exact int32 domain (some partial sum could overflow)"
    A = ta[a]
    if shift is not None:
        if int(shift.min()) < 0 or not _fits_int8(unit.a_fmt, int(shift.max())):
            return None, "align_shift puts a's values outside int8 lanes"
        A = A * (2 ** shift.to(dev).to(torch.int64))[None, :]
    A = A.to(torch.int8).contiguous()
    B = tb[b].to(torch.int8).contiguous()
    d = torch.empty((M, N), dtype=torch.int32, device=dev)
    c32 = None if cv is None else cv.to(torch.int32).contiguous()   # wraps as the unit does (mod 2^32)
    kern = _kernels()
    bm, bn, bk = (32, 32, 32) if _interpreting(dev) else (128, 128, 64)
    grid = (-(-M // bm), -(-N // bn))
    if M and N:
        kern.int_dot_kernel[grid](A, B, d if c32 is None else c32, d, M, N, K, HAS_C=c32 is not None,
                                  BM=bm, BN=bn, BK=bk)
    codes = d.to(torch.int64) & ((1 << acc_bits) - 1)
    return codes, None


def gemm_codes(unit, a_codes, b_codes, c=None, fallback=True, **ctx) -> GpuGemmResult:
    """unit's GEMM on torch tensors of codes, on their device (cuda; cpu under TRITON_INTERPRET=1).

    a_codes (M, K), b_codes (K, N): integer tensors of the operand formats' codes; c: None, accumulator
    codes (integer tensor; a signed dtype of the accumulator's width is read as its bits) or values of
    a float accumulator (float16 / float32 tensor). ctx: align_shift (K,) for the integer MAC.
    Outside every GPU kernel's domain the CPU kernels run (one copy each way) when `fallback`, else a
    NumsimError gives the reason."""
    torch = _torch()
    unit = get_unit(unit)
    a = _codes(a_codes, unit.a_fmt, "a")
    b = _codes(b_codes, unit.b_fmt, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise bad("a, b", "tensors (M, K) and (K, N)", f"shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.device != b.device:
        raise bad("b", f"a tensor on a's device {a.device}", str(b.device))
    M, K = a.shape
    N = b.shape[1]
    cc = _acc_input(unit, c, M, N, a.device)
    from ..units.fused_adder import FusedDotUnit
    from ..units.int_mac import IntMacUnit
    from ..units.sample_shift import SampleShiftUnit

    allowed = {IntMacUnit: {"align_shift"}, SampleShiftUnit: {"sample_shift"},
               FusedDotUnit: {"scale_a", "scale_b"}}.get(type(unit), set())
    extra = set(ctx) - allowed
    name, reason = _kernel_for(unit)
    if getattr(unit, "count_flags", False):        # the GPU kernels count no IEEE flags: the CPU's MAC level does
        name, reason = None, "the unit counts IEEE flags (count_flags=True); the CPU's MAC-level kernel counts them"
    if extra:
        name, reason = None, f"context {sorted(extra)} has no GPU kernel"
    shift = None
    key = "align_shift" if type(unit) is IntMacUnit else "sample_shift" if type(unit) is SampleShiftUnit else None
    if name and key and ctx.get(key) is not None:
        shift = torch.as_tensor(np.asarray(ctx[key]), device="cpu").to(torch.int64)
        lo, hi = unit._ctx_range
        if tuple(shift.shape) != (K,):
            raise bad(key, f"shape ({K},)", f"shape {tuple(shift.shape)}")
        if K and (int(shift.min()) < lo or int(shift.max()) > hi):
            raise bad(key, f"values in [{lo}, {hi}]", f"values in [{int(shift.min())}, {int(shift.max())}]")
    if name and type(unit) is SampleShiftUnit and shift is None:
        raise bad("sample_shift", f"a shift per sample (shape ({K},)) in [0, 4]", "None")
    codes = None
    if name and K == 0:
        name, reason = None, "K = 0"
    events, info = 0, {"kernel": name}
    from . import drivers

    def tab(fmt, x, dtype):
        return _values(_table(fmt), x, dtype)

    if name and name.startswith("gpu.int"):
        codes, reason = _int_gemm(unit, a, b, cc, shift, name)
        if codes is None and type(unit) is IntMacUnit:
            r = drivers.int_lanes(unit, a, b, cc, shift, tab)
            if r is not None:
                codes, events = r
                name = info["kernel"] = "gpu.int_mac.int64"
            else:
                reason = "an overflow under the 'error' policy (the CPU kernels raise it)"
        if codes is None:
            name = None
    elif name == "gpu.sample_shift.int64":
        r = drivers.sample_shift(unit, a, b, cc, shift, tab)
        if r is None:
            name, reason = None, "an overflow under the 'error' policy (the CPU kernels raise it)"
        else:
            codes, events = r
    elif name == "gpu.float_mac.ordered":
        codes, events, info["nonfinite"] = drivers.float_ordered(unit, a, b, cc, tab)
    elif name == "gpu.float_mac.int64":
        codes, events, info["nonfinite"] = drivers.float_int64(unit, a, b, cc, tab)
    elif name == "gpu.fused_dot.int64":
        sa, sb = ctx.get("scale_a"), ctx.get("scale_b")
        codes, events = drivers.fused_dot(unit, a, b, cc, sa, sb)
        info["nonfinite"] = int((((codes >> 23) & 0xFF) == 0xFF).sum())
    if codes is not None:
        out = None
        stage = getattr(unit, "output_stage", None)
        if stage is not None:
            out = drivers.requant_int8(stage, codes)
        return GpuGemmResult(codes=codes, overflow_count=events, info=info, out_codes=out)
    if not fallback:
        raise NumsimError(f"numsim.gpu: no GPU kernel for {unit.name} here: {reason}")
    r = unit.gemm_codes(a.cpu().numpy().astype(np.uint32), b.cpu().numpy().astype(np.uint32),
                        c=None if cc is None else cc.cpu().numpy().astype(np.uint32), **ctx)
    out = torch.from_numpy(np.asarray(r.codes).astype(np.int64)).to(a.device)
    info = dict(r.info or {})
    info["fallback"] = reason
    oc = None if r.out_codes is None else torch.from_numpy(np.asarray(r.out_codes).astype(np.int64)).to(a.device)
    return GpuGemmResult(codes=out, overflow_count=int(r.overflow_count), info=info, out_codes=oc)


def _signed(codes, bits):
    """Unsigned codes (int64) as the signed dtype of their width: the same bits (torch has no usable
    uint16 / uint32 tensors; numsim.matmul's CPU path hands them over the same way)."""
    torch = _torch()
    dt = torch.int16 if bits == 16 else torch.int32
    return torch.where(codes >= 2 ** (bits - 1), codes - 2**bits, codes).to(dt)


def _device_tensor(x, arg):
    """x as a torch tensor (zero copy through DLPack), or a NumsimError naming the argument."""
    dev = tuple(int(v) for v in x.__dlpack_device__()) if hasattr(x, "__dlpack_device__") else None
    try:
        torch = _torch()
    except NumsimError as e:
        raise NumsimError(f"{arg}: DLPack device {dev} is not the CPU; {e}") from None
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.from_dlpack(x)
    except (AssertionError, RuntimeError, BufferError, TypeError, ValueError) as e:
        raise NumsimError(f"{arg}: DLPack device {dev} is not the CPU, and torch could not import it for "
                          f"numsim.gpu: {e}") from None


def matmul(a, b, unit, c=None):
    """numsim.matmul for device tensors (torch, or any DLPack producer torch imports): a (..., M, K)
    and b (..., K, N) codes, c as numsim.matmul takes it (unsigned codes, or signed integers / floats
    as values). Results (codes as the CPU path hands them to torch: uint16/uint32 bits as int16/int32,
    values float64) stay on the operands' device."""
    from ..gemm import MatmulResult

    unit = get_unit(unit)
    a = _device_tensor(a, "a")
    b = _device_tensor(b, "b")
    torch = _torch()
    if a.ndim < 2 or b.ndim < 2:
        raise bad("a, b", "tensors of at least 2 dimensions (..., M, K) and (..., K, N)",
                  f"shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise NumsimError(f"a, b: reduction lengths differ: a is (..., {a.shape[-2]}, {a.shape[-1]}), "
                          f"b is (..., {b.shape[-2]}, {b.shape[-1]})")
    if a.shape[-1] == 0:
        raise bad("a, b", "a reduction length K >= 1", 0)
    b = b.to(a.device)
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    M, N = a.shape[-2], b.shape[-1]
    A = a.expand(*batch, *a.shape[-2:])
    B = b.expand(*batch, *b.shape[-2:])
    acc = unit.acc_fmt
    C = None
    if c is not None:
        c = c if isinstance(c, torch.Tensor) else torch.from_dlpack(c)
        c = c.to(a.device)
        if not c.dtype.is_floating_point and c.dtype not in (torch.uint8, torch.uint16, torch.uint32, torch.uint64):
            # signed integers are values (numsim.matmul's convention): exact in the accumulator
            if isinstance(acc, IntFormat):
                c = torch.where(c < 0, c.to(torch.int64) + 2**acc.bits, c.to(torch.int64))
            else:
                c = c.to(torch.float64)
        elif not c.dtype.is_floating_point:
            c = c.to(torch.int64)
        C = c.expand(*batch, M, N)
    outs, overflow, info = [], 0, {}
    for idx in np.ndindex(*batch) if batch else [()]:
        r = gemm_codes(unit, A[idx], B[idx], None if C is None else C[idx].contiguous())
        outs.append(r.codes)
        overflow += r.overflow_count
        for key, v in r.info.items():
            info.setdefault(key, []).append(v)
    codes = torch.stack(outs).reshape(*batch, M, N)
    if isinstance(acc, FloatFormat) and acc.bits in (16, 32) and (_is_fmt(acc, 16, 5, 10) or _is_fmt(acc, 32, 8, 23)):
        view = _signed(codes, acc.bits)
        acc_values = view.view(torch.float16 if acc.bits == 16 else torch.float32).to(torch.float64)
        codes = view
    else:
        vals = torch.as_tensor(decode(np.arange(2**acc.bits, dtype=np.uint32), acc) if acc.bits <= 16 else
                               np.zeros(0), device=codes.device)
        if acc.bits <= 16:
            acc_values = vals[codes]
            codes = _signed(codes, 16) if acc.bits == 16 else codes.to(torch.int32)
        else:   # an integer accumulator of more than 16 bits: its two's-complement value
            acc_values = torch.where(codes >= 2 ** (acc.bits - 1), codes - 2**acc.bits, codes).to(torch.float64)
            codes = _signed(codes, 32)
    return MatmulResult(codes=codes, values=acc_values, acc_values=acc_values, scale=np.float64(1.0),
                        overflow_count=overflow, out_codes=None, out_fmt=getattr(unit, "out_fmt", None), unit=unit,
                        info=info)
