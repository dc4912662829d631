"""Drivers of the int64-lane kernels (numsim/gpu/triton_exact.py): operand tables on the device, the
kernels' constants from the unit, codes and events out. Every tensor stays on the operands' device."""
from __future__ import annotations

import numpy as np

from ..formats import FloatFormat
from ..rounding import ROUNDING_MODES

_POLICY = {"wrap": 0, "saturate": 1, "error": 2}


def _torch():
    import torch
    return torch


def _exact():
    from . import triton_exact
    return triton_exact


def _blocks(dev, path):
    if dev.type == "cpu":
        return 16, 16
    return (32, 32) if path == 2 else (32, 32)


def acc_consts(acc):
    """MAN, EMIN, EXPMASK, INF_CODE, SIGN of an IEEE radix-2 accumulator format."""
    expmask = (1 << acc.exp_bits) - 1
    return dict(MAN=acc.man_bits, EMIN=1 - acc.bias, EXPMASK=expmask, INF_CODE=expmask << acc.man_bits,
                SIGN=acc.bits - 1)


def _order(unit):
    return {"sequential": 0, "chunked": 1, "pairwise": 2}[unit.order]


def _run(path, unit, at, b, sh, c, state_dtype, T, M, N, K, order, chunk, **consts):
    torch = _torch()
    dev = at.device
    d = torch.empty((M, N), dtype=state_dtype, device=dev)
    ev = torch.zeros((M, N), dtype=torch.int32, device=dev)
    err = torch.zeros((M, N), dtype=torch.int32, device=dev)
    levels = max(1, int(T).bit_length())
    scr = torch.empty((levels, M, N) if order == 2 else (1,), dtype=state_dtype, device=dev)
    bm, bn = _blocks(dev, path)
    grid = (-(-M // bm), -(-N // bn))
    base = dict(ACC=0, KSTEP=1, MODE=0, SAT=False, MAN=1, EMIN=0, LSB=0, INF_CODE=0, EXPMASK=1, SIGN=1,
                WBITS=2, WPOL=0, ABITS=2, APOL=0)
    base.update(consts)
    if M and N:
        _exact().unit_kernel[grid](at, b, sh, d if c is None else c, d, ev, err, scr, M, N, K, T, HAS_C=c is not None,
                                   PATH=path, ORDER=order, CHUNK=chunk, LEVELS=levels, BM=bm, BN=bn, **base)
    return d, ev, err


def float_ordered(unit, a, b, cc, table):
    """PATH 0: k_step 1, RNE, fp32 / fp16 / bf16 accumulator, every order: (codes, events, nonfinite)."""
    torch = _torch()
    M, K = a.shape
    N = b.shape[1]
    dev = a.device
    acc = unit.acc_fmt
    kind = {32: 0, 16: 1 if acc.exp_bits == 5 else 2}[acc.bits]
    at = table(unit.a_fmt, a, torch.float32).t().contiguous()
    B = table(unit.b_fmt, b, torch.float32).contiguous()
    cvals = None
    if cc is not None:
        if kind == 0:
            cvals = torch.where(cc >= 2**31, cc - 2**32, cc).to(torch.int32).view(torch.float32)
        else:
            sh = 0 if kind == 2 else None
            if sh is None:
                cvals = table(acc, cc, torch.float32)
            else:
                c32 = torch.where(cc >= 2**15, cc - 2**16, cc).to(torch.int32) << 16
                cvals = c32.view(torch.float32)
        cvals = cvals.contiguous()
    order = _order(unit)
    chunk = unit.chunk if order == 1 else 1
    dummy = torch.zeros(1, dtype=torch.int64, device=dev)
    d, ev, _ = _run(0, unit, at, B, dummy, cvals, torch.float32, K, M, N, K, order, chunk, ACC=kind,
                    SAT=unit.acc_overflow == "saturate")
    if kind == 0:
        codes = d.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    elif kind == 1:
        codes = d.to(torch.float16).view(torch.int16).to(torch.int64) & 0xFFFF
    else:
        codes = (d.view(torch.int32).to(torch.int64) >> 16) & 0xFFFF
    codes = _nan_codes(unit, codes, torch.isnan(d), cc)
    return codes, int(ev.to(torch.int64).sum()), int((~torch.isfinite(d)).sum())


def _nan_codes(unit, codes, nan, cc):
    """NaN outputs take the unit's NaN code: the quieted initial accumulator when it is a NaN, else the
    default NaN (csrc/units.c scan_acc / resolve_specials)."""
    torch = _torch()
    if not bool(nan.any()):
        return codes
    f = unit.acc_fmt
    default = (1 << (f.bits - 1)) | (((1 << f.exp_bits) - 1) << f.man_bits) | (1 << (f.man_bits - 1))
    fill = torch.full_like(codes, default)
    if cc is not None:
        field = (cc >> f.man_bits) & ((1 << f.exp_bits) - 1)
        c_nan = (field == (1 << f.exp_bits) - 1) & ((cc & ((1 << f.man_bits) - 1)) != 0)
        fill = torch.where(c_nan, cc | (1 << (f.man_bits - 1)), fill)
    return torch.where(nan, fill, codes)


def float_int64(unit, a, b, cc, table):
    """PATH 1: any k_step, order and deterministic rounding, exact int64 sums: (codes, events, nonfinite)."""
    torch = _torch()
    M, K = a.shape
    N = b.shape[1]
    dev = a.device
    acc = unit.acc_fmt
    lsb = unit.exact_lsb
    at = (table(unit._c_a_fmt, a, torch.float64) * 2.0 ** (-lsb)).t().contiguous()
    B = table(unit._c_b_fmt, b, torch.float64).contiguous()
    order = _order(unit)
    T = -(-K // unit.k_step)
    chunk = unit.chunk if order == 1 else 1
    consts = acc_consts(acc)
    dummy = torch.zeros(1, dtype=torch.int64, device=dev)
    c = None if cc is None else cc.to(torch.int64).contiguous()
    d, ev, _ = _run(1, unit, at, B, dummy, c, torch.int64, T, M, N, K, order, chunk, KSTEP=unit.k_step,
                    MODE=ROUNDING_MODES[unit.acc_rounding], SAT=unit.acc_overflow == "saturate", LSB=lsb, **consts)
    field = (d >> acc.man_bits) & consts["EXPMASK"]
    nan = (field == consts["EXPMASK"]) & ((d & ((1 << acc.man_bits) - 1)) != 0)
    codes = _nan_codes(unit, d, nan, cc)
    if getattr(unit, "phase", "even") == "odd":
        codes = odd_phase_trick(codes, unit.odd_underflow)
    return codes, int(ev.to(torch.int64).sum()), int((field == consts["EXPMASK"]).sum())


def odd_phase_trick(x, odd_underflow):
    """csrc/units.c ns_f16_odd_phase on int64 FP16 codes, as device tensor ops: the exponent field
    minus one; at fields 0 and 1 'flush' gives the signed zero, 'clamp' decrements field 1 only,
    'exact' halves the magnitude code rounding to nearest even (the true half of a subnormal or of
    the smallest normals is a code of half the magnitude, RNE on its dropped bit)."""
    torch = _torch()
    field = (x >> 10) & 0x1F
    sign = x & 0x8000
    mag = x & 0x7FFF
    if odd_underflow == "flush":
        low = sign
    elif odd_underflow == "clamp":
        low = torch.where(field == 1, x - 0x400, x)
    else:
        half = mag >> 1
        low = sign | (half + ((mag & 1) & (half & 1)))
    out = torch.where(field >= 2, x - 0x400, low)
    return torch.where(field == 0x1F, x, out)


def int_lanes(unit, a, b, cc, shift, table):
    """PATH 2: the integer MAC in int64 lanes, every order and overflow policy: (codes, events), or
    None when an 'error' policy fired (the host runs the CPU kernels, which raise the unit's error)."""
    torch = _torch()
    M, K = a.shape
    N = b.shape[1]
    dev = a.device
    bits = unit.acc_fmt.bits
    at = table(unit.a_fmt, a, torch.int64).t().contiguous()
    B = table(unit.b_fmt, b, torch.int64).contiguous()
    sh = (torch.zeros(K, dtype=torch.int64, device=dev) if shift is None else
          shift.to(dev).to(torch.int64).contiguous())
    c = None
    if cc is not None:
        c = torch.where(cc >= 2 ** (bits - 1), cc - 2**bits, cc).to(torch.int64).contiguous()
    order = _order(unit)
    chunk = unit.chunk if order == 1 else 1
    d, ev, err = _run(2, unit, at, B, sh, c, torch.int64, K, M, N, K, order, chunk, WBITS=unit.widen_bits,
                      WPOL=_POLICY[unit.widen_overflow], ABITS=bits, APOL=_POLICY[unit.acc_overflow])
    if bool(err.any()):
        return None
    return d & ((1 << bits) - 1), int(ev.to(torch.int64).sum())


def sample_shift(unit, a, b, cc, shift, table):
    """The per-sample-shift MAC in int64 lanes: (codes, events), or None when an 'error' policy fired."""
    torch = _torch()
    M, K = a.shape
    N = b.shape[1]
    dev = a.device
    bits = unit.acc_fmt.bits
    at = table(unit.a_fmt, a, torch.int64).t().contiguous()
    B = table(unit.b_fmt, b, torch.int64).contiguous()
    sh = shift.to(dev).to(torch.int64).contiguous()
    c = None
    if cc is not None:
        c = torch.where(cc >= 2 ** (bits - 1), cc - 2**bits, cc).to(torch.int64).contiguous()
    d = torch.empty((M, N), dtype=torch.int64, device=dev)
    ev = torch.zeros((M, N), dtype=torch.int32, device=dev)
    err = torch.zeros((M, N), dtype=torch.int32, device=dev)
    bm, bn = _blocks(dev, 2)
    grid = (-(-M // bm), -(-N // bn))
    if M and N:
        _exact().sample_shift_kernel[grid](
            at, B, sh, d if c is None else c, d, ev, err, M, N, K, HAS_C=c is not None,
            PER_SHIFT=unit.grouping == "per_shift", LEFT=unit.shift_direction == "left",
            MODE=ROUNDING_MODES[unit.shift_rounding], MAXS=unit.max_shift, WBITS=unit.widen_bits,
            WPOL=_POLICY[unit.widen_overflow], ABITS=bits, APOL=_POLICY[unit.acc_overflow],
            SPOL=_POLICY[unit.shift_overflow], BM=bm, BN=bn)
    if bool(err.any()):
        return None
    return d & ((1 << bits) - 1), int(ev.to(torch.int64).sum())


def requant_int8(stage, acc_codes):
    """csrc/units.c ns_requant_int8 on int64 INT32 codes as device tensor ops: the left shift wraps in
    int32, SaturatingRoundingDoublingHighMul (the product exact in int64, the nudge, division
    truncating toward zero), RoundingDivideByPOT (arithmetic shift plus the remainder test), the
    zero point and the clamp. Returns uint8 codes as int64."""
    torch = _torch()
    left = stage.shift if stage.shift > 0 else 0
    right = 0 if stage.shift > 0 else -stage.shift
    acc = torch.where(acc_codes >= 2**31, acc_codes - 2**32, acc_codes)
    x = (acc << left) & 0xFFFFFFFF
    x = torch.where(x >= 2**31, x - 2**32, x)
    m = int(stage.multiplier)
    ab = x * m
    nudge = torch.where(ab >= 0, torch.full_like(ab, 1 << 30), torch.full_like(ab, 1 - (1 << 30)))
    h = torch.div(ab + nudge, 2**31, rounding_mode="trunc")
    if m == -(2**31):
        h = torch.where(x == -(2**31), torch.full_like(h, 2**31 - 1), h)
    mask = (1 << right) - 1
    rem = h & mask
    thr = (mask >> 1) + (h < 0).to(torch.int64)
    v = (h >> right) + (rem > thr).to(torch.int64) + stage.zero_point
    v = v.clamp(stage.out_min, stage.out_max)
    return v & 0xFF


def fused_dot(unit, a, b, cc, scale_a=None, scale_b=None):
    """csrc/hw.c's fused adder in int64 lanes: (fp32 codes, events)."""
    torch = _torch()
    from ..units.fused_adder import c_unit

    M, K = a.shape
    N = b.shape[1]
    dev = a.device
    blk = unit.block
    Kp = -(-K // blk) * blk
    perm = torch.arange(Kp, device=dev)
    if unit.k_permutation:
        p = torch.tensor(unit.k_permutation, device=dev)
        perm = (torch.arange(Kp // blk, device=dev)[:, None] * blk + p[None, :]).reshape(-1)
    tabs = [fused_table(unit.a_fmt, dev), fused_table(unit.b_fmt, dev)]

    def arrange(codes, table, k_axis):
        # zero-padded to Kp (code 0 is +0 in every operand format), then permuted in blocks
        pad = Kp - K
        x = codes
        if pad:
            shape = list(x.shape)
            shape[k_axis] = pad
            x = torch.cat([x, torch.zeros(shape, dtype=x.dtype, device=dev)], dim=k_axis)
        x = x.index_select(k_axis, perm)
        return [t[x].contiguous() for t in table]

    A = arrange(a, tabs[0], 1)          # (M, Kp) each: mag, neg, exp, cls
    B = arrange(b, tabs[1], 0)          # (Kp, N)
    A = [t.t().contiguous() for t in A]  # (Kp, M): a column per k
    u = c_unit(unit, scale_a, scale_b)
    d = torch.empty((M, N), dtype=torch.int64, device=dev)
    ev = torch.zeros((M, N), dtype=torch.int32, device=dev)
    c = None if cc is None else cc.to(torch.int64).contiguous()
    bm, bn = (16, 16) if dev.type == "cpu" else (32, 32)
    grid = (-(-M // bm), -(-N // bn))
    promo = unit.promotion_interval or 0
    if M and N:
        _exact().fused_dot_kernel[grid](
            A[0], A[1], A[2], A[3], B[0], B[1], B[2], B[3], d if c is None else c, d, ev, M, N, Kp,
            float(u.scale), HAS_C=c is not None, KSTEP=unit.k_step, KB=unit.kept_bits, MAB=int(u.a_man_bits + u.b_man_bits),
            NORMALIZED=unit.product_exponent == "normalized", ACC_MAN=unit.acc_man_bits,
            MODE=ROUNDING_MODES[unit.acc_rounding], TO_INF=unit.acc_overflow == "to_inf", PROMO=promo,
            EPILOGUE=unit.c_add == "epilogue", SCALE=bool(u.apply_scale), BM=bm, BN=bn)
    return d, int(ev.to(torch.int64).sum())


_FUSED_TABLES = {}


def fused_table(fmt, dev):
    """(mag, neg, exp, cls) int64 tensors indexed by code: csrc/hw.c ns_hw_decode_operands (zero and
    non-finite operands: magnitude 0, the far-below exponent; NaN's sign cleared)."""
    torch = _torch()
    key = (fmt.name, str(dev))
    if key not in _FUSED_TABLES:
        from ..units._c import decode_operands

        codes = np.arange(2**fmt.bits, dtype=fmt.dtype)
        mag, neg, exp, cls = decode_operands(codes, fmt)
        _FUSED_TABLES[key] = [torch.from_numpy(np.asarray(x).astype(np.int64)).to(dev) for x in (mag, neg, exp, cls)]
    return _FUSED_TABLES[key]


def is_float_acc(acc, bits, exp_bits):
    return isinstance(acc, FloatFormat) and acc.bits == bits and acc.exp_bits == exp_bits and acc.radix == 2
