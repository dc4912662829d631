"""Every product and accumulate step of the small-operand-space units against numpy oracles built from
exact value tables: INT4 x INT4 into INT32 (every product x shift x accumulator edge code, each overflow
policy), the sample-shift unit, INT4 x FP4 and FP8 x FP8 into FP16 (every product x accumulator codes,
every rounding mode), the 4-way fused INT4 x FP4 step, and the odd-phase exponent trick.

Each check returns {"check": name, "steps", "mismatches", "examples"}; `unit_checks` runs them all.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import FloatMacUnit, get_unit
from ..errors import bad
from ..formats import get_format
from .datapath import c_float_mac_steps, c_int_mac_steps
from .oracles import ALL_CODES, MODES, check_modes, numpy_f16_mac_step, numpy_round_f16, value_table


def _result(name, got, want, cols):
    bad = np.nonzero(got != want)[0]
    ex = [{k: (int(v[i]) if np.ndim(v) else v) for k, v in cols.items()} | {"got": int(got[i]), "want": int(want[i])}
          for i in bad[:5]]
    return {"check": name, "steps": int(got.size), "mismatches": int(bad.size), "examples": ex}



def _acc_codes_f16(n_random, seed):
    """FP16 accumulator codes: every sign/exponent field with edge mantissas, plus random codes."""
    se = np.arange(64, dtype=np.uint32) << 10
    edge = (se[:, None] | np.array([0, 1, 0x155, 0x200, 0x3FE, 0x3FF], dtype=np.uint32)).ravel()
    rnd = np.random.default_rng(seed).integers(0, 65536, n_random).astype(np.uint32)
    return np.unique(np.concatenate([edge, rnd])).astype(np.uint16)



def check_int4_int32(acc_codes=None, shifts=range(0, 13), policies=(("wrap", "wrap"), ("saturate", "saturate"))):
    """int4_int32: every INT4 x INT4 product x alignment shift x accumulator code, against int64 numpy."""
    if acc_codes is None:
        edge = np.array([0, 1, 2**31 - 1, 2**31 - 64, 2**31, 2**31 + 5, 2**32 - 1, 2**32 - 32768, 12345], np.uint64)
        acc_codes = np.concatenate([edge, np.random.default_rng(0).integers(0, 2**32, 40, dtype=np.uint64)])
    A, B, S, C = np.meshgrid(np.arange(16), np.arange(16), np.array(list(shifts)), np.asarray(acc_codes, np.int64),
                             indexing="ij")
    A, B, S, C = (x.ravel() for x in (A, B, S, C))
    ia, ib = np.where(A >= 8, A - 16, A), np.where(B >= 8, B - 16, B)
    cv = np.where(C >= 2**31, C - 2**32, C)
    out = []
    for widen_ovf, acc_ovf in policies:
        u = get_unit("int4_int32", widen_overflow=widen_ovf, acc_overflow=acc_ovf)
        w = (ia * ib) << S
        w = ((w + 2**15) % 2**16) - 2**15 if widen_ovf == "wrap" else np.clip(w, -(2**15), 2**15 - 1)
        s = cv + w
        s = ((s + 2**31) % 2**32) - 2**31 if acc_ovf == "wrap" else np.clip(s, -(2**31), 2**31 - 1)
        want = (s % 2**32).astype(np.uint32)
        got, st, _, _ = c_int_mac_steps(u, C, A, B, S)
        assert st == 0
        out.append(_result(f"int4_int32 step (widen {widen_ovf}, acc {acc_ovf})", got, want,
                           {"a": A, "b": B, "shift": S, "acc": C}))
    # 'error' widening: exactly the products whose shifted value leaves 16 bits are rejected
    u = get_unit("int4_int32")
    A1, B1, S1 = (x.reshape(16, 16, -1, len(acc_codes))[..., 0].ravel() for x in (A, B, S))
    ia1, ib1 = np.where(A1 >= 8, A1 - 16, A1), np.where(B1 >= 8, B1 - 16, B1)
    w1 = (ia1 * ib1) << S1
    overflows = (w1 < -(2**15)) | (w1 > 2**15 - 1)
    rejected = np.array([c_int_mac_steps(u, [0], [a], [b], [s])[1] == 6 for a, b, s in zip(A1, B1, S1)])
    out.append(_result("int4_int32 widen_overflow='error' rejects exactly the overflowing products",
                       rejected.astype(np.uint8), overflows.astype(np.uint8), {"a": A1, "b": B1, "shift": S1}))
    return out



def check_sample_shift(n_acc=6):
    """int4_int32_sample_shift: every INT4 x INT4 product x shift value in [0, 4], both directions."""
    rng = np.random.default_rng(1)
    accs = [0, 2**31 - 1, 2**31] + [int(x) for x in rng.integers(0, 2**32, n_acc, dtype=np.uint64)]
    out = []
    for direction, rnd in (("left", "toward_neg"), ("right", "toward_neg"), ("right", "nearest_even"),
                           ("right", "toward_zero")):
        u = get_unit("int4_int32_sample_shift", shift_direction=direction, shift_rounding=rnd)
        got, want, cols = [], [], {"a": [], "b": [], "s": [], "acc": []}
        for a in range(16):
            for b in range(16):
                p = (a - 16 if a >= 8 else a) * (b - 16 if b >= 8 else b)
                for s in range(5):
                    if direction == "left":
                        w = p * 2 ** (4 - s)
                    else:
                        q = p / 2**s                                  # exact in float64
                        w = int({"toward_neg": np.floor, "toward_zero": np.trunc, "nearest_even": np.round}[rnd](q))
                    for acc in accs:
                        cv = acc - 2**32 if acc >= 2**31 else acc
                        want.append((cv + w) % 2**32)
                        got.append(u.step(acc, a, b, sample_shift=s))
                        for k, v in zip(cols, (a, b, s, acc)):
                            cols[k].append(v)
        out.append(_result(f"int4_int32_sample_shift step ({direction}, {rnd})", np.array(got, np.uint64),
                           np.array(want, np.uint64), {k: np.array(v) for k, v in cols.items()}))
    return out



def check_float_products(unit, acc_codes, modes=("nearest_even",), block=1 << 20):
    """Every (a, b) code pair of `unit` x every code in acc_codes: acc + a * b rounded once (one fused
    step with one product), against numpy. Codes the operand formats exclude are skipped."""
    af, bf = get_format(unit.a_fmt), get_format(unit._c_b_fmt)
    ta, tb = value_table(af), value_table(bf)
    a_codes = np.arange(2**af.bits)
    b_codes = np.arange(2**bf.bits)
    if af.kind == "int":
        a_codes = a_codes[~np.isnan(ta)]
    if bf.kind == "int":
        b_codes = b_codes[~np.isnan(tb)]
    pa, pb = np.meshgrid(a_codes, b_codes, indexing="ij")
    pa, pb = pa.ravel(), pb.ravel()
    with np.errstate(all="ignore"):
        prod = ta[pa] * tb[pb]                         # exact: significands of <= 26 bits in total
    acc_codes = np.asarray(acc_codes, dtype=np.uint16)
    out = []
    for mode in modes:
        u = replace(unit, acc_rounding=mode)
        total_bad, steps, examples = 0, 0, []
        per = max(1, block // pa.size)
        for i0 in range(0, acc_codes.size, per):
            acc = np.repeat(acc_codes[i0:i0 + per], pa.size)
            A = np.tile(pa, acc_codes[i0:i0 + per].size)
            B = np.tile(pb, acc_codes[i0:i0 + per].size)
            P = np.tile(prod, acc_codes[i0:i0 + per].size)
            got = c_float_mac_steps(u, acc, A[:, None], B[:, None]).astype(np.uint16)
            want = numpy_f16_mac_step(acc, P[:, None], mode)
            r = _result("", got, want, {"acc": acc, "a": A, "b": B})
            total_bad += r["mismatches"]
            steps += r["steps"]
            examples = (examples + r["examples"])[:5]
        out.append({"check": f"{unit.name} ({af} x {bf} -> fp16) every product x {acc_codes.size} acc codes, {mode}",
                    "steps": steps, "mismatches": total_bad, "examples": examples})
    return out



def check_fused_int4_fp4(n=200_000, modes=("nearest_even",), seed=3):
    """The 4-way INT4 x FP4 step: random 4-tuples of products plus random FP16 accumulators."""
    unit = get_unit("int4_fp4r4_fp16")
    ta, tb = value_table(unit.a_fmt), value_table(unit._c_b_fmt)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 16, (n, 4))
    b = rng.integers(0, 16, (n, 4))
    acc = _acc_codes_f16(0, 0)
    acc = np.concatenate([acc, rng.integers(0, 65536, n - acc.size)]).astype(np.uint16)
    out = []
    for mode in modes:
        u = replace(unit, acc_rounding=mode)
        got = c_float_mac_steps(u, acc, a, b).astype(np.uint16)
        want = numpy_f16_mac_step(acc, ta[a] * tb[b], mode)
        out.append(_result(f"int4_fp4r4_fp16 4-way fused step, {n} random, {mode}", got, want, {"acc": acc}))
    return out



def check_odd_phase_trick():
    """The exponent trick on every FP16 code, against the field arithmetic in numpy, every policy."""
    from ..units.float_mac import odd_phase_trick

    c = ALL_CODES
    field = (c >> 10) & 0x1F
    out = []
    for pol in ("flush", "clamp", "exact"):
        want = np.where(field >= 2, c - 0x400, 0).astype(np.uint16)
        if pol == "flush":
            low = c & 0x8000
        elif pol == "clamp":
            low = np.where(field == 1, c - 0x400, c)
        else:
            with np.errstate(invalid="ignore"):
                half = c.view(np.float16).astype(np.float64) * 0.5
            low = numpy_round_f16(half, None, "nearest_even", np.signbit(c.view(np.float16)))
        want = np.where(field >= 2, want, low)
        want = np.where(field == 0x1F, c, want).astype(np.uint16)
        out.append(_result(f"odd-phase exponent trick ({pol}) on all 65536 FP16 codes",
                           odd_phase_trick(c, pol), want, {"code": c}))
    return out



def check_odd_phase_gemm(acc_codes, rows_per_acc=1, nthreads=2):
    """int4_fp4r4_fp16 phase='odd' through gemm_codes with K=1: every (a, b) product with initial
    accumulators c, then the exponent trick; against numpy (step, then field arithmetic)."""
    out = []
    ta, tb = value_table("int4"), value_table(get_unit("int4_fp4r4_fp16")._c_b_fmt)
    for pol in ("flush", "clamp", "exact"):
        u = get_unit("int4_fp4r4_fp16", phase="odd", odd_underflow=pol)
        acc = np.asarray(acc_codes, dtype=np.uint16)
        M = acc.size
        a = np.tile(np.arange(16, dtype=np.uint8), M // 16 + 1)[:M].reshape(M, 1)
        b = np.arange(16, dtype=np.uint8).reshape(1, 16)
        c = np.resize(acc, (M, 16))
        got = u.gemm_codes(a, b, c=c, nthreads=nthreads).codes
        even = numpy_f16_mac_step(c.ravel(), (ta[a] * tb[b]).reshape(-1, 1), "nearest_even")
        field = (even >> 10) & 0x1F
        if pol == "flush":
            low = even & 0x8000
        elif pol == "clamp":
            low = np.where(field == 1, even - 0x400, even)
        else:
            with np.errstate(invalid="ignore"):
                half = even.view(np.float16).astype(np.float64) * 0.5
            low = numpy_round_f16(half, None, "nearest_even", np.signbit(even.view(np.float16)))
        want = np.where(field == 0x1F, even, np.where(field >= 2, even - 0x400, low)).astype(np.uint16)
        out.append(_result(f"int4_fp4r4_fp16 odd phase ({pol}) gemm K=1, every product x {acc.size} acc codes",
                           got.ravel(), want, {"c": c.ravel()}))
    return out


def unit_checks(full=False, modes=MODES, fp8_acc=None):
    """All the small-operand-space unit checks. full=False: the CI sizes (sampled accumulator codes);
    full=True: every FP16 accumulator code for every INT4 x FP4 product in every mode, and for the FP8 x FP8
    products `fp8_acc` accumulator codes (None: all 65536, i.e. 2^32 steps per format and mode: hours)."""
    modes = check_modes(modes)
    if fp8_acc is not None and (isinstance(fp8_acc, bool) or not isinstance(fp8_acc, (int, np.integer))
                                or fp8_acc < 0):
        raise bad("fp8_acc", "None or an int >= 0", repr(fp8_acc))
    acc_ci = _acc_codes_f16(600, 0)                    # every sign/exponent with edge mantissas + 600 random
    acc = ALL_CODES if full else acc_ci
    res = []
    res += check_int4_int32()
    res += check_sample_shift(n_acc=6 if full else 1)
    res += check_float_products(get_unit("int4_fp4r4_fp16"), acc, modes)
    res += check_odd_phase_gemm(ALL_CODES if full else acc_ci)
    res += check_fused_int4_fp4(4_000_000 if full else 200_000, modes)
    res += check_odd_phase_trick()
    if full:
        acc8 = ALL_CODES if fp8_acc is None else _acc_codes_f16(max(0, fp8_acc - 384), 1)
        acc8e5 = acc8
    else:
        acc8, acc8e5 = acc_ci[::24], acc_ci[::48]
    res += check_float_products(get_unit("fp8_fp16"), acc8, modes)
    e5 = FloatMacUnit(name="fp8_e5m2_fp16", a_fmt="fp8_e5m2", b_fmt="fp8_e5m2", acc_fmt="fp16", order="sequential")
    res += check_float_products(e5, acc8e5, modes)
    return res

