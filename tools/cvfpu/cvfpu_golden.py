"""numsim as the golden model of cvfpu (FPnew): vectors, expected results and flags, bus packing, and the
verdict on every disagreement.

Used by the cocotb testbench (cocotb_cvfpu.py, under Verilator), by tools/cvfpu/run.py (the full run)
and by tests/test_cvfpu.py (the CI sample). The device under test is cvfpu_numsim_top.sv: cvfpu's
fpnew_fma_multi and fpnew_cast_multi, combinational, formats FP32, FP16, FP8 (e5m2) and FP16ALT (bf16).

The reference is numsim.fpops under RISC-V's rules (cvfpu is a RISC-V FPU): tininess detected after
rounding, the canonical NaN for every NaN result (nan_rule="riscv"), float -> integer out of range or
NaN saturating with the invalid flag and inexact raised for a rounded value (SoftFloat's `exact`).
Flags are cvfpu's status_t {NV, DZ, OF, UF, NX}, which is numsim's bit order (invalid 16 ... inexact 1).
"""
from __future__ import annotations

import numpy as np

from numsim import fpops
from numsim.formats import get_format

# fpnew_pkg encodings
FMT = {"fp32": 0, "fp16": 2, "fp8_e5m2": 3, "bf16": 4}
INT_FMT = {8: 0, 16: 1, 32: 2}
OP = {"FMADD": 0, "FNMSUB": 1, "ADD": 2, "MUL": 3, "F2F": 10, "F2I": 11, "I2F": 12}
RND = {"nearest_even": 0, "toward_zero": 1, "toward_neg": 2, "toward_pos": 3, "nearest_away": 4, "odd": 5}
RISCV = dict(tininess="after", nan_rule="riscv")
FLOATS = ("fp16", "bf16", "fp8_e5m2", "fp32")

# what each operation is, in numsim terms: (fpnew op, op_mod, operand roles)
ARITH = {
    "add": ("ADD", 0), "sub": ("ADD", 1), "mul": ("MUL", 0),
    "fmadd": ("FMADD", 0), "fmsub": ("FMADD", 1), "fnmsub": ("FNMSUB", 0), "fnmadd": ("FNMSUB", 1),
}
# mixed-precision FMAs cvfpu's multi-format FMA offers: (multiplicand format, addend and result format)
WIDENING = (("fp8_e5m2", "fp16"), ("fp16", "fp32"), ("bf16", "fp32"), ("fp8_e5m2", "fp32"))

FIELDS = ("a", "b", "c", "op", "op_mod", "rnd", "src_fmt", "src2_fmt", "dst_fmt", "int_fmt")


def _special_codes(fmt):
    """Codes every FPU test needs: signed zeros, the smallest and largest subnormals, the smallest
    normal, 1.0 and its neighbours, the largest finite, infinities, quiet and signalling NaNs."""
    f = get_format(fmt)
    e, m = f.exp_bits, f.man_bits
    sign = 1 << (e + m)
    one = ((1 << (e - 1)) - 1) << m
    inf = ((1 << e) - 1) << m
    pos = [0, 1, 2, (1 << m) - 1, 1 << m, (1 << m) + 1, one - 1, one, one + 1, inf - 1, inf,
           inf | (1 << (m - 1)), inf | 1, inf | ((1 << (m - 1)) - 1) if m > 1 else inf | 1]
    return np.array(sorted(set(pos + [p | sign for p in pos])), dtype=np.uint64)


def _operands(rng, fmt, n):
    """n codes of fmt: 20% special codes, 30% near 1.0 (exponents within +-4: sums that round and
    cancel), 50% uniform over all codes."""
    f = get_format(fmt)
    bits = f.bits
    out = rng.integers(0, 1 << bits, n, dtype=np.uint64)
    kind = rng.random(n)
    sp = _special_codes(fmt)
    s = kind < 0.2
    out[s] = sp[rng.integers(0, len(sp), int(s.sum()))]
    near = (kind >= 0.2) & (kind < 0.5)
    k = int(near.sum())
    e = (1 << (f.exp_bits - 1)) - 1 + rng.integers(-4, 5, k)
    out[near] = ((rng.integers(0, 2, k).astype(np.uint64) << np.uint64(bits - 1))
                 | (e.astype(np.uint64) << np.uint64(f.man_bits))
                 | rng.integers(0, 1 << f.man_bits, k, dtype=np.uint64))
    return out


def _cancelling_addend(rng, a, b, fmt, out_fmt):
    """For a third of the FMAs, c = -(a*b) rounded to out_fmt, nudged by a few ulps: the sum cancels
    (exact zeros, their sign under each rounding mode, tiny results)."""
    p, _ = fpops.mul(a.astype(np.uint32), b.astype(np.uint32), fmt, out_fmt=out_fmt, **RISCV)
    z = get_format(out_fmt)
    sign = np.uint64(1 << (z.bits - 1))
    c = (p.astype(np.uint64) ^ sign).astype(np.int64) + rng.integers(-2, 3, len(p))
    return np.clip(c, 0, (1 << z.bits) - 1).astype(np.uint64)


def make_vectors(n, seed=0):
    """n vectors (dict of uint64 arrays, one entry per bus field, plus 'name' per vector) over every
    operation, format and rounding mode, drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    groups = []
    for op in ARITH:
        for fmt in FLOATS:
            groups.append(("arith", op, fmt, fmt))
    for src, dst in WIDENING:
        groups.append(("arith", "fmadd", src, dst))
    for src in FLOATS:
        for dst in FLOATS:
            if src != dst:
                groups.append(("f2f", "f2f", src, dst))
    for fmt in FLOATS:
        for w in INT_FMT:
            for signed in (True, False):
                groups.append(("f2i", f"{'int' if signed else 'uint'}{w}", fmt, fmt))
                groups.append(("i2f", f"{'int' if signed else 'uint'}{w}", fmt, fmt))
    per = np.full(len(groups), n // len(groups))
    per[: n - per.sum()] += 1
    cols = {k: [] for k in FIELDS}
    names = []
    for (kind, op, src, dst), m in zip(groups, per):
        m = int(m)
        if m == 0:
            continue
        rnd = np.array(list(RND.values()), dtype=np.uint64)[np.arange(m) % len(RND)]
        zero = np.zeros(m, dtype=np.uint64)
        a = b = c = zero
        int_fmt = zero
        op_mod = zero
        src2 = np.full(m, FMT[dst], dtype=np.uint64)
        if kind == "arith":
            fop, mod = ARITH[op]
            a = _operands(rng, src, m)
            b = _operands(rng, src, m)
            c = _operands(rng, dst, m)
            if op.startswith("fm") or op.startswith("fn"):
                third = rng.random(m) < 1 / 3
                c = np.where(third, _cancelling_addend(rng, a, b, src, dst), c)
            elif op in ("add", "sub"):
                third = rng.random(m) < 1 / 3           # b - c or b + c near cancellation
                flip = np.uint64(1 << (get_format(src).bits - 1)) if op == "add" else np.uint64(0)
                near = (b.astype(np.int64) + rng.integers(-3, 4, m)).clip(0, (1 << get_format(src).bits) - 1)
                c = np.where(third, near.astype(np.uint64) ^ flip, c)
            code, op_mod = OP[fop], np.full(m, mod, dtype=np.uint64)
            name = f"{op}.{src}" if src == dst else f"{op}.{src}->{dst}"
        elif kind == "f2f":
            a = _operands(rng, src, m)
            code, name = OP["F2F"], f"cvt.{src}->{dst}"
        elif kind == "f2i":
            w = int(op.lstrip("uint"))
            a = _f2i_operands(rng, src, w, m)
            code, name = OP["F2I"], f"cvt.{src}->{op}"
            int_fmt = np.full(m, INT_FMT[w], dtype=np.uint64)
            op_mod = np.full(m, int(op.startswith("u")), dtype=np.uint64)
        else:
            w = int(op.lstrip("uint"))
            a = _i2f_operands(rng, w, m)
            code, name = OP["I2F"], f"cvt.{op}->{dst}"
            int_fmt = np.full(m, INT_FMT[w], dtype=np.uint64)
            op_mod = np.full(m, int(op.startswith("u")), dtype=np.uint64)
        for k, v in (("a", a), ("b", b), ("c", c), ("op", np.full(m, code, dtype=np.uint64)), ("op_mod", op_mod),
                     ("rnd", rnd), ("src_fmt", np.full(m, FMT[src], dtype=np.uint64)), ("src2_fmt", src2),
                     ("dst_fmt", np.full(m, FMT[dst], dtype=np.uint64)), ("int_fmt", int_fmt)):
            cols[k].append(np.asarray(v, dtype=np.uint64))
        names += [name] * m
    vec = {k: np.concatenate(v) for k, v in cols.items()}
    vec["name"] = np.array(names)
    return vec


def _f2i_operands(rng, fmt, w, n):
    """Floats around the integer range's edges and halfway points, plus the usual mix."""
    f = get_format(fmt)
    codes = _operands(rng, fmt, n)
    k = n // 2
    mag = rng.uniform(-1.2, 1.2, k) * 2.0 ** rng.integers(0, w + 1, k)
    mag = np.where(rng.random(k) < 0.3, np.round(mag * 2) / 2, mag)          # ties
    edge = fpops.convert(_f32_codes(mag), "fp32", fmt, "nearest_even", **RISCV)[0] if f.bits != 32 else _f32_codes(mag)
    codes[:k] = np.asarray(edge, dtype=np.uint64)
    return codes


def _f32_codes(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint32)


def _i2f_operands(rng, w, n):
    v = rng.integers(0, 1 << w, n, dtype=np.uint64)
    small = rng.random(n) < 0.3
    v[small] = (rng.integers(-300, 300, int(small.sum())) % (1 << w)).astype(np.uint64)
    return v


def expected(vec):
    """numsim's result code and flags for every vector (uint64 codes in the result format's low bits)."""
    n = len(vec["name"])
    res = np.zeros(n, dtype=np.uint64)
    flags = np.zeros(n, dtype=np.uint64)
    inv = {v: k for k, v in FMT.items()}
    rinv = {v: k for k, v in RND.items()}
    keys = np.stack([vec[k] for k in ("op", "op_mod", "rnd", "src_fmt", "dst_fmt", "int_fmt")], axis=1)
    uniq, idx = np.unique(keys, axis=0, return_inverse=True)
    idx = idx.reshape(-1)
    for g, (op, mod, rnd, src, dst, ifmt) in enumerate(uniq):
        sel = idx == g
        src_f, dst_f, r = inv.get(int(src)), inv.get(int(dst)), rinv[int(rnd)]
        a = vec["a"][sel].astype(np.uint32)
        b = vec["b"][sel].astype(np.uint32)
        c = vec["c"][sel].astype(np.uint32)
        op, mod = int(op), int(mod)
        if op in (OP["FMADD"], OP["FNMSUB"], OP["ADD"], OP["MUL"]):
            sa = np.uint32(1 << (get_format(src_f).bits - 1))
            sc = np.uint32(1 << (get_format(dst_f).bits - 1))
            if op == OP["ADD"]:
                z, fl = (fpops.sub if mod else fpops.add)(b, c, src_f, r, **RISCV)
            elif op == OP["MUL"]:
                z, fl = fpops.mul(a, b, src_f, r, **RISCV)
            else:
                a2 = a ^ sa if op == OP["FNMSUB"] else a
                c2 = c ^ sc if mod else c
                z, fl = fpops.fma(a2, b, c2, src_f, r, out_fmt=dst_f, **RISCV)
        elif op == OP["F2F"]:
            z, fl = fpops.convert(a, src_f, dst_f, r, **RISCV)
        elif op == OP["F2I"]:
            w = 8 << int(ifmt)
            z, fl = fpops.convert(a, src_f, f"{'u' if mod else ''}int{w}", r, exact=True, **RISCV)
        else:
            w = 8 << int(ifmt)
            z, fl = fpops.convert(a & np.uint32((1 << w) - 1), f"{'u' if mod else ''}int{w}", dst_f, r, **RISCV)
        res[sel] = np.asarray(z).astype(np.uint64)
        flags[sel] = fl
    return res, flags


def result_bits(vec):
    """Width of each vector's result (the format's bits; the integer's width for F2I)."""
    bits = {v: get_format(k).bits for k, v in FMT.items()}
    w = np.array([bits[int(x)] for x in vec["dst_fmt"]], dtype=np.uint64)
    f2i = vec["op"] == OP["F2I"]
    w[f2i] = (8 << vec["int_fmt"][f2i].astype(np.int64)).astype(np.uint64)
    return w


# ---- the buses of cvfpu_numsim_top.sv ----------------------------------------------------------------

_IN = (("a", 0, 32), ("b", 32, 32), ("c", 64, 32), ("op", 96, 4), ("op_mod", 100, 1), ("rnd", 101, 3),
       ("src_fmt", 104, 3), ("src2_fmt", 107, 3), ("dst_fmt", 110, 3), ("int_fmt", 113, 2))


def pack_inputs(vec):
    """The 128-bit in_bus words (Python ints)."""
    n = len(vec["name"])
    cols = {k: vec[k].tolist() for k, _, _ in _IN}
    return [sum(int(cols[k][i]) << lsb for k, lsb, _ in _IN) for i in range(n)]


def unpack_output(word, op):
    """(result, flags) of one out_bus word for fpnew op code `op` (the FMA or the cast half)."""
    if op in (OP["F2F"], OP["F2I"], OP["I2F"]):
        return (word >> 32) & 0xFFFFFFFF, (word >> 72) & 0x1F
    return word & 0xFFFFFFFF, (word >> 64) & 0x1F


# ---- disagreements and their verdicts -----------------------------------------------------------------

def disagreements(vec, got_res, got_flags):
    """Indices where cvfpu differs from numsim (result bits within the result width, or flags)."""
    exp_res, exp_flags = expected(vec)
    mask = (np.uint64(1) << result_bits(vec)) - np.uint64(1)
    res_bad = (np.asarray(got_res, dtype=np.uint64) & mask) != exp_res
    flag_bad = np.asarray(got_flags, dtype=np.uint64) != exp_flags
    return np.flatnonzero(res_bad | flag_bad), exp_res, exp_flags


# Each disagreement gets the first verdict whose test explains it; an unexplained one fails the run.
# (name, whose, rule, test(vec, i, got_res, got_flags, exp_res, exp_flags, before_flags))
NV, DZ, OF, UF, NX = 16, 8, 4, 2, 1
VERDICTS = (
    ("i2f-overflow-flagged-invalid", "cvfpu",
     "IEEE 754-2019 7.4: an integer -> float conversion whose rounded result exceeds the format's range "
     "signals overflow (and inexact); 7.2 lists no invalid case for convertFromInt. cvfpu's cast unit "
     "raises NV|NX instead of OF|NX (result bits identical).",
     lambda op, gr, gf, er, ef, bf: op == OP["I2F"] and gr == er and ef & OF and gf == (ef & ~OF) | NV),
    ("f2i-in-range-flagged-invalid", "cvfpu",
     "IEEE 754-2019 5.8 and 7.2: convertToInteger signals invalid only when the rounded integer is outside the "
     "destination's range (or the operand is NaN/inf); otherwise a rounded value is inexact. cvfpu raises NV "
     "for a negative value just below the most negative integer that rounds onto it (-128.45 -> -128 in int8).",
     lambda op, gr, gf, er, ef, bf: op == OP["F2I"] and gr == er and ef == NX and gf == NV),
    ("f2i-out-of-range-not-flagged", "cvfpu",
     "IEEE 754-2019 5.8 and 7.2: a negative value that rounds to a non-zero integer is outside an unsigned "
     "destination's range: invalid (the RISC-V ISA: result 0, NV). cvfpu returns 0 with NX only for a value "
     "between -2^w and -(2^w - 1) that rounds to -2^w (-255.5 -> -256 in uint8 under round-down).",
     lambda op, gr, gf, er, ef, bf: op == OP["F2I"] and gr == er and ef == NV and gf == NX),
    ("underflow-missed-at-min-normal", "cvfpu",
     "IEEE 754-2019 7.5: a non-zero result strictly between +-2^emin is tiny -- after rounding means rounded "
     "to the format's precision with an unbounded exponent; tiny and inexact raises underflow. cvfpu's F2F "
     "cast judges tininess on the delivered result, so a value that rounds up to the smallest normal in the "
     "subnormal grid but not at full precision gets no UF. Both tininess rules say tiny here.",
     lambda op, gr, gf, er, ef, bf: gr == er and ef & UF and bf & UF and gf == ef & ~UF),
    ("underflow-tininess-before-rounding", "cvfpu",
     "The RISC-V unprivileged ISA (F extension) detects tininess after rounding; IEEE 754-2019 7.5 allows "
     "either rule but one per implementation. cvfpu's FMA raises UF for a result that is tiny before "
     "rounding but rounds (unbounded exponent) to the smallest normal: numsim with tininess='before' gives "
     "cvfpu's flags exactly.",
     lambda op, gr, gf, er, ef, bf: gr == er and gf == bf and not ef & UF and bf & UF),
)


def classify(vec, got_res, got_flags):
    """Every disagreement with its verdict: a list of dicts (index, name, rounding, operands, cvfpu's and
    numsim's result/flags, verdict name or 'UNEXPLAINED'), and the count per verdict."""
    idx, exp_res, exp_flags = disagreements(vec, got_res, got_flags)
    mask = (np.uint64(1) << result_bits(vec)) - np.uint64(1)
    gr_all = np.asarray(got_res, dtype=np.uint64) & mask
    gf_all = np.asarray(got_flags, dtype=np.uint64)
    before = {}
    if len(idx):
        sub = {k: v[idx] for k, v in vec.items()}
        global RISCV
        saved = RISCV
        try:
            RISCV = dict(saved, tininess="before")
            _, bflags = expected(sub)
        finally:
            RISCV = saved
        before = dict(zip(idx.tolist(), bflags.tolist()))
    rinv = {v: k for k, v in RND.items()}
    rows, counts = [], {}
    for i in idx.tolist():
        op, gr, gf, er, ef = int(vec["op"][i]), int(gr_all[i]), int(gf_all[i]), int(exp_res[i]), int(exp_flags[i])
        verdict = next((name for name, _, _, test in VERDICTS if test(op, gr, gf, er, ef, before[i])), "UNEXPLAINED")
        counts[verdict] = counts.get(verdict, 0) + 1
        rows.append({"index": i, "name": str(vec["name"][i]), "rounding": rinv[int(vec["rnd"][i])],
                     "a": int(vec["a"][i]), "b": int(vec["b"][i]), "c": int(vec["c"][i]),
                     "cvfpu": [gr, gf], "numsim": [er, ef], "numsim_tininess_before_flags": before[i],
                     "verdict": verdict})
    return rows, counts


def report(vec, rows, counts):
    """A plain-text summary: vectors by operation, disagreements by verdict with the rule and an example."""
    lines = [f"{len(vec['name'])} vectors, {len(set(vec['name'].tolist()))} operations x formats, "
             f"{len(RND)} rounding modes; {len(rows)} disagreements"]
    for name, whose, rule, _ in VERDICTS + (("UNEXPLAINED", "?", "no verdict applies", None),):
        if name not in counts:
            continue
        ex = next(r for r in rows if r["verdict"] == name)
        ops = sorted({r["name"] for r in rows if r["verdict"] == name})
        lines.append(f"- {name}: {counts[name]} vectors, {whose}'s. {rule}\n  operations: {', '.join(ops)}\n"
                     f"  e.g. {ex['name']} {ex['rounding']} a={ex['a']:#x} b={ex['b']:#x} c={ex['c']:#x}: cvfpu "
                     f"{ex['cvfpu'][0]:#x} flags {ex['cvfpu'][1]:#04x}, numsim {ex['numsim'][0]:#x} flags "
                     f"{ex['numsim'][1]:#04x}")
    return "\n".join(lines)
