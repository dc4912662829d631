"""Test vectors for RTL testbenches: generation (corner, exhaustive, random), `$readmemh` hex files with
a JSON manifest and a Verilog include of the field offsets, and readers that give them back.

A vector is one clock cycle of the contract in numsim.rtl.model: the stimulus (rst, load, valid, c, a,
b and the per-k shift) and the outputs expected after that clock edge. Corner and exhaustive vectors
are independent (load=1 puts their accumulator `c` in place); random vectors are accumulation runs
(a load, then up to 32 cycles of accumulating with valid toggling, now and then a reset), so the
register path is exercised as well as the adder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from fractions import Fraction

import numpy as np

from ..codec import decode, encode
from ..errors import NumsimError, bad
from ..formats import FloatFormat, IntFormat
from .model import Layout, Model

KINDS = ("corner", "exhaustive", "random")
NONFINITE_SHARE = 0.05     # by default, at most this share of random vectors expect an inf/NaN acc (float units)
MAX_COUNT = 10_000_000
FORMAT_VERSION = 1


@dataclasses.dataclass
class VectorSet:
    """Vectors of one unit: `rows` are dicts of field codes (multi-lane fields as lists)."""

    unit: object
    layout: Layout
    rows: list
    sections: list                  # [{"kind", "first", "count"}] in file order
    seed: int
    notes: dict = dataclasses.field(default_factory=dict)
    tags: list = dataclasses.field(default_factory=list)   # per row: the corner case it covers, or ""

    @property
    def count(self):
        return len(self.rows)

    def words(self):
        return [self.layout.pack(r) for r in self.rows]

    def stimulus(self):
        """The input fields of every row (what a testbench drives)."""
        names = [x.name for x in self.layout.fields if x.role == "in"]
        return [{k: r[k] for k in names} for r in self.rows]


# ---- generation ----------------------------------------------------------------------------------

class _Builder:
    """Appends rows, computing the expected outputs with the model; skips steps the unit's 'error'
    overflow policy rejects (they have no hardware outcome) and counts them."""

    def __init__(self, model: Model):
        self.m = model
        self.rows = []
        self.excluded = 0
        self.tags = {}
        self.row_tags = []
        self.products = None
        self.notes_random = None

    def add(self, a, b, valid=1, load=0, c=0, shift=0, rst=0, tag=None) -> bool:
        m = self.m
        if rst:
            m.reset()
        else:
            try:
                m.advance(a, b, valid, load, c, shift)
            except NumsimError:
                self.excluded += 1
                return False
        lanes = m.lanes
        row = {"rst": int(bool(rst)), "load": int(bool(load)), "valid": int(bool(valid)), "c": int(c),
               "a": _lanes(a, lanes), "b": _lanes(b, lanes)}
        if m.layout.shift_name:
            row[m.layout.shift_name] = int(shift)
        row.update(m.expected())
        self.rows.append(row)
        self.row_tags.append(tag or "")
        if tag:
            self.tags[tag] = self.tags.get(tag, 0) + 1
        return True

    def single(self, a, b, c=0, shift=0, valid=1, tag=None):
        """An independent vector: load c and (if valid) accumulate one term onto it."""
        return self.add(a, b, valid=valid, load=1, c=c, shift=shift, tag=tag)


def _lanes(v, lanes):
    if lanes == 1:
        return int(v[0]) if isinstance(v, (list, tuple, np.ndarray)) else int(v)
    v = list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v] * lanes
    return [int(x) for x in v]


def _all_codes(fmt):
    return np.arange(1 << fmt.bits, dtype=np.int64)


def _values(codes, fmt):
    return decode(np.asarray(codes, dtype=np.int64).astype(fmt.dtype), fmt)


def _extreme_codes(fmt, max_n=16):
    """All codes of a small format; else zero(s), +-1, +-min and +-max magnitude, and specials."""
    codes = _all_codes(fmt)
    if codes.size <= max_n:
        return [int(c) for c in codes]
    vals = _values(codes, fmt)
    pick = set()
    fin = np.isfinite(vals)
    pick.update(int(c) for c in codes[vals == 0])
    for target in (1.0, -1.0):
        pick.update(int(c) for c in codes[vals == target][:1])
    nz = fin & (vals != 0)
    for sign in (1, -1):
        sel = nz & (np.sign(vals) == sign)
        if sel.any():
            mags = np.abs(vals[sel])
            pick.add(int(codes[sel][np.argmax(mags)]))
            pick.add(int(codes[sel][np.argmin(mags)]))
    pick.update(int(c) for c in codes[np.isinf(vals)])
    nan = codes[np.isnan(vals)]
    pick.update(int(c) for c in nan[:2])
    return sorted(pick)


def _int_range(fmt):
    return fmt.min_value, fmt.max_value


def generate(unit, count=1000, seed=0, kinds=KINDS, nonfinite_share=NONFINITE_SHARE) -> VectorSet:
    """Vectors for `unit` (a Unit or preset name): the corner and exhaustive sets in full, then `count`
    random accumulation vectors drawn from `seed` (each section in `kinds`, in the order of KINDS).
    For a float accumulator at most `nonfinite_share` of the random vectors expect an inf/NaN output
    (1.0: no limit)."""
    from ..units import Unit, get_unit

    if isinstance(unit, str):
        unit = get_unit(unit)
    if not isinstance(unit, Unit):
        raise bad("unit", "a Unit or a unit preset name", type(unit).__name__)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MAX_COUNT:
        raise bad("count", f"an integer in [1, {MAX_COUNT}]", repr(count))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise bad("seed", "a non-negative integer", repr(seed))
    if isinstance(nonfinite_share, bool) or not isinstance(nonfinite_share, (int, float)) \
            or not 0 <= nonfinite_share <= 1:
        raise bad("nonfinite_share", "a share in [0, 1]", repr(nonfinite_share))
    kinds = tuple(kinds)
    for k in kinds:
        if k not in KINDS:
            raise bad("kinds", f"a subset of {KINDS}", repr(k))
    if not kinds:
        raise bad("kinds", f"a non-empty subset of {KINDS}", "()")
    model = Model(unit)
    rng = np.random.default_rng(int(seed))
    b = _Builder(model)
    sections, notes = [], {}
    for kind in KINDS:
        if kind not in kinds:
            continue
        first = len(b.rows)
        b.add(0, 0, rst=1)                                   # every section starts from reset
        if kind == "corner":
            {"float": _float_corners, "generic": _generic_corners}.get(model.kind, _int_corners)(b, notes)
        elif kind == "exhaustive":
            if model.kind == "generic":
                notes["exhaustive"] = f"none for {type(model.unit).__name__} (operand spaces of {model.lanes} lanes)"
            else:
                (_int_exhaustive if model.kind != "float" else _float_exhaustive)(b, notes)
        else:
            _random(b, int(count), rng, float(nonfinite_share))
            if b.notes_random:
                notes["random_nonfinite"] = b.notes_random
        sections.append({"kind": kind, "first": first, "count": len(b.rows) - first})
    notes["excluded_error_policy"] = b.excluded
    notes["corner_tags"] = b.tags
    return VectorSet(unit, model.layout, b.rows, sections, int(seed), notes, b.row_tags)


# -- integer units --

def _int_shifts(m):
    """The shift values the unit's shift port takes ([0] without one)."""
    x = m.layout.shift_name
    if x is None:
        return [0]
    return list(range(32)) if m.kind == "int" else list(range(5))


def _int_corners(b: _Builder, notes):
    m, u = b.m, b.m.unit
    a_codes, b_codes = _extreme_codes(u.a_fmt), _extreme_codes(u.b_fmt)
    acc_bits = u.acc_fmt.bits
    amax, amin = (1 << (acc_bits - 1)) - 1, -(1 << (acc_bits - 1))
    mask = (1 << acc_bits) - 1
    shifts = _int_shifts(m)
    # format extremes: every extreme operand pair at the edge shifts
    edge_shifts = sorted({s for s in {1, 8, 9, 15, 16} if s <= shifts[-1]} | {shifts[0], shifts[-1]}
                         if m.kind == "int" else {shifts[0], 1, shifts[-1]})
    for ac in a_codes:
        for bc in b_codes:
            for s in edge_shifts:
                b.single(ac, bc, c=0, shift=s, tag="operand extremes")
    # the widening register: for each distinct product the largest shift that fits and the next one
    if m.kind == "int" and m.layout.shift_name:
        wmax, wmin = (1 << (u.widen_bits - 1)) - 1, -(1 << (u.widen_bits - 1))
        prods = {}
        av, bv = _values(_all_codes(u.a_fmt), u.a_fmt), _values(_all_codes(u.b_fmt), u.b_fmt)
        for i, x in enumerate(av):
            for j, y in enumerate(bv):
                prods.setdefault(int(x) * int(y), (i, j))
        for p, (i, j) in sorted(prods.items()):
            if p == 0:
                continue
            s = 0
            while s < 31 and wmin <= p << (s + 1) <= wmax:
                s += 1
            b.single(i, j, c=0, shift=s, tag="widening at its limit")
            if s < 31:
                b.single(i, j, c=0, shift=s + 1, tag="widening overflow")
    # the accumulator: sums that land exactly on the limits and one past them
    av_codes = _all_codes(u.a_fmt)
    terms = []
    for i in av_codes:
        for j in _all_codes(u.b_fmt):
            for s in sorted({0, shifts[-1] if m.kind == "sample_shift" else min(8, shifts[-1])}):
                w = _widened(m, int(i), int(j), s)
                if w is not None and w != 0:
                    terms.append((w, int(i), int(j), s))
    terms.sort()
    chosen = {terms[0], terms[-1]}
    for w in (1, -1, 2, -2):
        chosen.update(t for t in terms[:] if t[0] == w)
    for w, i, j, s in sorted(chosen):
        lim = amax if w > 0 else amin
        for c in (lim - w, lim - w + (1 if w > 0 else -1)):     # exactly at the limit; past it by one
            if amin <= c <= amax:
                b.single(i, j, c=c & mask, shift=s, tag="accumulator overflow by one")
    for c in (amax, amin, -1, 0, 1):                              # extreme accumulators, zero term
        b.single(0, 0, c=c & mask, shift=0, tag="accumulator extremes")
        b.single(0, 0, c=c & mask, shift=0, valid=0, tag="load only")
    notes["rounding_points"] = ("none: the integer datapath does not round" if m.kind == "int"
                                else f"per-sample shift ({u.shift_direction}, {u.shift_rounding})")


def _widened(m, a, b, s):
    """The widened term a * b << s the unit adds onto 0, or None when the unit's policy rejects it."""
    try:
        st = m.next_state(a, b, 1, 1, 0, s)
    except NumsimError:
        return None
    from .model import code_to_signed
    return code_to_signed(st, m.unit.acc_fmt.bits)


def _int_exhaustive(b: _Builder, notes):
    u = b.m.unit
    if u.a_fmt.bits + u.b_fmt.bits > 10:
        notes["exhaustive"] = f"skipped: {u.a_fmt} x {u.b_fmt} is too large a space"
        return
    for s in _int_shifts(b.m):
        for i in _all_codes(u.a_fmt):
            for j in _all_codes(u.b_fmt):
                b.single(int(i), int(j), c=0, shift=s)
    notes["exhaustive"] = ("every a x b code pair at every shift, onto c = 0" if b.m.layout.shift_name
                           else "every a x b code pair, onto c = 0")


# -- float units --

def _datapath_b_fmt(u):
    from ..units import Int4Fp4r4Unit
    return u.b_fmt.with_phase("even") if isinstance(u, Int4Fp4r4Unit) else u.b_fmt


class _Products:
    """Every finite product value of a x b codes as an exact multiple of 2^lsb (small operand spaces)."""

    def __init__(self, u):
        af, bf = u.a_fmt, _datapath_b_fmt(u)
        av, bv = _values(_all_codes(af), af), _values(_all_codes(bf), bf)
        self.by_value = {}
        self.zero = None
        for i, x in enumerate(av):
            for j, y in enumerate(bv):
                if not (math.isfinite(x) and math.isfinite(y)):
                    continue
                v = Fraction(x) * Fraction(y)
                if v == 0:
                    if self.zero is None and not math.copysign(1, x * y) < 0:
                        self.zero = (i, j)
                    continue
                self.by_value.setdefault(v, (i, j))
        self.values = sorted(self.by_value)


class _NoProducts:
    zero, values, by_value = None, [], {}


def _acc_fields(f: FloatFormat):
    return f.exp_bits, f.man_bits, f.bias


def _acc_code(f, sign, e, m):
    return (sign << (f.bits - 1)) | (e << f.man_bits) | m


def _exact_code(f, v: Fraction):
    """The accumulator code of v when v is exactly representable and finite, else None."""
    x = float(v)
    if Fraction(x) != v or not math.isfinite(x):
        return None
    code = int(encode(np.array([x]), f, rounding="toward_zero", overflow="error")[0]) if abs(x) <= f.max_finite else None
    if code is None or Fraction(float(decode(np.array([code], dtype=f.dtype), f)[0])) != v:
        return None
    return code


def _lane_vec(b, terms):
    """a and b lane codes holding the given (a_code, b_code) products, padded with +0 products."""
    zero = (b.products.zero if b.products is not None else None) or (0, 0)
    pairs = list(terms) + [zero] * (b.m.lanes - len(terms))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _float_corners(b: _Builder, notes):
    m, u = b.m, b.m.unit
    f = u.acc_fmt
    E, M, bias = _acc_fields(f)
    emax = (1 << E) - 1
    small = u.a_fmt.bits + _datapath_b_fmt(u).bits <= 16
    b.products = _Products(u) if small else None
    if b.products is None:
        b.products = _NoProducts()
    zero_lanes = _lane_vec(b, [])
    # accumulator extremes and specials, loaded and then added to +0 products
    acc_special = []
    for s in (0, 1):
        for e, mm in ((0, 0), (0, 1), (0, (1 << M) - 1), (1, 0), (emax - 1, (1 << M) - 1), (emax, 0),
                      (bias, 0)):
            acc_special.append(_acc_code(f, s, e, mm))
    acc_special += [_acc_code(f, 0, emax, 1 << (M - 1)), _acc_code(f, 0, emax, 1), _acc_code(f, 1, emax, 1 << (M - 1))]
    for c in acc_special:
        b.single(*zero_lanes, c=c, tag="accumulator extremes")
        b.single(*zero_lanes, c=c, valid=0, tag="load only")
    # operand extremes: each extreme pair in every lane, onto a few accumulators
    a_ext, b_ext = _extreme_codes(u.a_fmt), _extreme_codes(u.b_fmt)
    za, zb = zero_lanes
    for c in (0, _acc_code(f, 1, 0, 0), _acc_code(f, 0, bias, 0), _acc_code(f, 1, emax - 1, (1 << M) - 1)):
        for ac in a_ext:
            for bc in b_ext:
                for lane in range(m.lanes):
                    av, bv = list(za), list(zb)
                    av[lane], bv[lane] = ac, bc
                    b.single(av, bv, c=c, tag="operand extremes")
        for ac in a_ext:                                     # the same extreme pair in every lane
            for bc in b_ext:
                b.single([ac] * m.lanes, [bc] * m.lanes, c=c, tag="operand extremes")
    # signed zeros: -0 accumulator with -0 products (stays -0) and with one +0 product (+0)
    b.single([0] * m.lanes, [_neg_zero_b(u)] * m.lanes, c=_acc_code(f, 1, 0, 0), tag="signed zeros")
    # binade edges (fields 0, 1, 2 and the top): loaded directly and reached by cancellation; they are
    # the odd phase's exponent-trick edges, and labelled so only for a unit with an odd phase
    edge_tag = edge_label(u)
    edge = []
    for s in (0, 1):
        for e in (0, 1, 2, emax - 1):
            for mm in sorted({0, 1, 2, 3, (1 << (M - 1)) - 1, 1 << (M - 1), (1 << M) - 2, (1 << M) - 1}):
                edge.append(_acc_code(f, s, e, mm))
    for c in edge:
        b.single(*zero_lanes, c=c, valid=0, tag=edge_tag)
    prods = b.products.values
    if prods:
        for t in edge:
            tv = Fraction(float(decode(np.array([t], dtype=f.dtype), f)[0]))
            got = 0
            for p in prods[:: max(1, len(prods) // 24)]:
                c = _exact_code(f, tv - p)
                if c is not None and (tv - p) != 0:
                    b.single(*_lane_vec(b, [b.products.by_value[p]]), c=c, tag=edge_tag)
                    got += 1
                    if got == 2:
                        break
    _float_ties(b, notes)
    _float_overflow_by_one(b, notes)


def edge_label(u) -> str:
    """The corner tag of the accumulator's binade edges: 'exponent-trick edges' for a unit whose odd
    phase applies the trick there, 'binade edges' otherwise."""
    return "exponent-trick edges" if getattr(u, "phase", None) == "odd" else "binade edges"


def midpoint_label(u) -> str:
    """The corner tag of sums exactly halfway between two accumulator codes: 'ties' under a nearest
    rounding (where the tie rule decides), 'midpoints' under a directed one."""
    return "ties" if str(getattr(u, "acc_rounding", "nearest_even")).startswith("nearest") else "midpoints"


def _neg_zero_b(u):
    """A b code whose value is -0 when one exists (else 0)."""
    bf = _datapath_b_fmt(u)
    codes = _all_codes(bf) if bf.bits <= 8 else np.array([0, 1 << (bf.bits - 1)])
    vals = _values(codes, bf)
    for c, v in zip(codes, vals):
        if v == 0 and math.copysign(1.0, v) < 0:
            return int(c)
    return 0


def _ulp(f, e):
    """The accumulator's quantum in binade field e (subnormals: field 0)."""
    return Fraction(2) ** (max(e, 1) - f.bias - f.man_bits)


def _float_ties(b: _Builder, notes):
    """For every accumulator binade a sum can hit exactly halfway between two codes (with an even and
    with an odd lower neighbour, both signs): acc + one product = the midpoint."""
    u = b.m.unit
    f = u.acc_fmt
    prods = b.products.values
    emax = (1 << f.exp_bits) - 1
    reached, unreachable = {}, []
    tag = midpoint_label(u)
    if not prods:
        notes[tag] = "not generated: operand space too large to search"
        return
    by_v2 = {}
    for p in prods:
        k = _v2(p)
        by_v2.setdefault(k, []).append(p)
    for e in range(0, emax):
        ulp = _ulp(f, e)
        half = ulp / 2
        k = _v2(half)
        cands = by_v2.get(k, [])
        n = 0
        for sign in (1, -1):
            for parity in (0, 1):             # lower neighbour's significand even / odd
                ok = False
                lo_sig = (1 << f.man_bits) if e > 0 else 0
                for sig in (lo_sig + parity, lo_sig + 2 + parity, (1 << (f.man_bits + 1)) - 2 + parity if e > 0
                            else (1 << f.man_bits) - 2 + parity):
                    mid = sign * (sig * ulp + half)
                    for p in sorted(cands, key=lambda x: abs(mid - x)):
                        c = _exact_code(f, mid - p)
                        if c is not None:
                            if b.single(*_lane_vec(b, [b.products.by_value[p]]), c=c, tag=tag):
                                ok = True
                            break
                    if ok:
                        break
                n += ok
        if n:
            reached[e] = n
        else:
            unreachable.append(e)
    notes[tag] = {"binades_with_" + tag: reached, "unreachable_binades": unreachable,
                     "why_unreachable": "the midpoint's bit lies below every product's and accumulator's "
                                        "quantum (or no product has it as its lowest bit)"}


def _v2(x: Fraction) -> int:
    """2-adic valuation of a nonzero dyadic rational."""
    num, den = x.numerator, x.denominator
    v = 0
    while num % 2 == 0:
        num //= 2
        v += 1
    while den % 2 == 0:
        den //= 2
        v -= 1
    return v


def _float_overflow_by_one(b: _Builder, notes):
    """max_finite + (half an ulp): the rounding overflow threshold, and one product quantum below it."""
    m, u = b.m, b.m.unit
    f = u.acc_fmt
    prods = b.products.values
    if not prods:
        return
    emax = (1 << f.exp_bits) - 1
    half = _ulp(f, emax - 1) / 2
    sums = {}
    for p in prods:                                          # sums of one and two products
        sums.setdefault(p, [b.products.by_value[p]])
    if m.lanes >= 2:
        for p in prods:
            for q in prods:
                sums.setdefault(p + q, [b.products.by_value[p], b.products.by_value[q]])
    quantum = min(abs(p) for p in prods)
    for sign in (0, 1):
        maxc = _acc_code(f, sign, emax - 1, (1 << f.man_bits) - 1)
        sg = -1 if sign else 1
        for target in (half, half - quantum, half + quantum):
            terms = sums.get(sg * target)
            if terms is not None:
                b.single(*_lane_vec(b, terms), c=maxc, tag="accumulator overflow by one")


def _float_exhaustive(b: _Builder, notes):
    m, u = b.m, b.m.unit
    f = u.acc_fmt
    af, bf = u.a_fmt, u.b_fmt
    if af.bits + bf.bits > 10:
        notes["exhaustive"] = f"skipped: {af} x {bf} is too large a space"
        return
    za, zb = _lane_vec(b, [])
    for c in (0, _acc_code(f, 0, f.bias, 0)):
        for lane in range(m.lanes):
            for i in _all_codes(af):
                for j in _all_codes(bf):
                    av, bv = list(za), list(zb)
                    av[lane], bv[lane] = int(i), int(j)
                    b.single(av, bv, c=c)
    # every accumulator code of the exponent fields the odd-phase trick treats specially (and the top)
    emax = (1 << f.exp_bits) - 1
    if f.bits <= 16:
        for e in (0, 1, 2, emax - 1, emax):
            for s in (0, 1):
                for mm in range(1 << f.man_bits):
                    b.single(za, zb, c=_acc_code(f, s, e, mm), valid=0)
    notes["exhaustive"] = ("every a x b code pair in every lane onto c = 0 and c = 1.0; every accumulator code "
                           "of exponent fields 0, 1, 2, max-1 and max loaded")


# -- other units (the hardware presets): extremes, and overflow by one for integer accumulators --

def _generic_corners(b: _Builder, notes):
    m, u = b.m, b.m.unit
    f, n = u.acc_fmt, m.lanes
    zero = [0] * n
    if isinstance(f, IntFormat):
        hi, lo = _int_range(f)
        accs = [v & ((1 << f.bits) - 1) for v in (hi, lo, -1, 0, 1)]
    else:
        E, M = f.exp_bits, f.man_bits
        emax = (1 << E) - 1
        accs = [_acc_code(f, s, e, mm) for s in (0, 1)
                for e, mm in ((0, 0), (0, 1), (1, 0), (emax - 1, (1 << M) - 1), (emax, 0), (f.bias, 0))]
    for c in accs:
        b.single(zero, zero, c=c, tag="accumulator extremes")
        b.single(zero, zero, c=c, valid=0, tag="load only")
    a_ext, b_ext = _extreme_codes(u.a_fmt, 8), _extreme_codes(u.b_fmt, 8)
    for c in (0, accs[3] if isinstance(f, IntFormat) else _acc_code(f, 0, f.bias, 0)):
        for ac in a_ext:
            for bc in b_ext:
                for lane in sorted({0, n - 1}):
                    av, bv = list(zero), list(zero)
                    av[lane], bv[lane] = ac, bc
                    b.single(av, bv, c=c, tag="operand extremes")
                b.single([ac] * n, [bc] * n, c=c, tag="operand extremes")
    if isinstance(f, IntFormat):                       # one product onto the accumulator's limits
        hi, lo = _int_range(f)
        av, bv = _values(_all_codes(u.a_fmt), u.a_fmt), _values(_all_codes(u.b_fmt), u.b_fmt)
        for target in (1, -1, int(av.max() * bv.max()), int(av.min() * bv.max())):
            hit = [(i, j) for i in range(len(av)) for j in range(len(bv)) if av[i] * bv[j] == target][:1]
            for i, j in hit:
                lim = hi if target > 0 else lo
                for c in (lim - target, lim - target + (1 if target > 0 else -1)):
                    lanes_a, lanes_b = list(zero), list(zero)
                    lanes_a[0], lanes_b[0] = i, j
                    b.single(lanes_a, lanes_b, c=c & ((1 << f.bits) - 1), tag="accumulator overflow by one")
    notes["corners"] = "accumulator and operand extremes" + (", overflow by one" if isinstance(f, IntFormat) else "")


# -- random accumulation runs --

def _finite_codes(fmt):
    """The codes of a float format with finite values (None: every code, or too large a format to list)."""
    if not isinstance(fmt, FloatFormat) or fmt.bits > 16:
        return None
    codes = _all_codes(fmt)
    fin = codes[np.isfinite(_values(codes, fmt))]
    return None if fin.size == codes.size else fin


def _random(b: _Builder, count, rng, nonfinite_share=NONFINITE_SHARE):
    """Random accumulation runs. For a float accumulator, operands are finite codes (an inf/NaN operand
    1% of the time) and a step whose expected output would be inf/NaN is redrawn once the share of such
    vectors would pass `nonfinite_share` of `count` (a run that cannot stay finite ends early)."""
    m, u = b.m, b.m.unit
    lanes = m.lanes
    na, nb = 1 << u.a_fmt.bits, 1 << u.b_fmt.bits
    shifts = _int_shifts(m) if m.kind in ("int", "sample_shift") else [0]
    start = len(b.rows)
    acc = u.acc_fmt
    budget = isinstance(acc, FloatFormat) and nonfinite_share < 1
    fin_a, fin_b = (_finite_codes(u.a_fmt), _finite_codes(u.b_fmt)) if budget else (None, None)
    allowed = int(nonfinite_share * count)
    nonfinite = 0

    def draw(n, fin):
        if fin is None or rng.random() < 0.01:
            return [int(x) for x in rng.integers(0, n, lanes)]
        return [int(x) for x in fin[rng.integers(0, fin.size, lanes)]]

    def nonfinite_out(state):
        code = m.unit.finish(state) if hasattr(m.unit, "finish") else state
        return not math.isfinite(float(_values([code], acc)[0]))

    def add(av, bv, valid, load, c, s):
        """b.add, or False when the step would spend more than the inf/NaN budget (nothing added)."""
        nonlocal nonfinite
        if budget:
            try:
                bad_out = nonfinite_out(m.next_state(av, bv, valid, load, c, s))
            except NumsimError:
                bad_out = False                       # b.add counts and skips it
            if bad_out:
                # spread over the section: never ahead of the share of the rows so far
                if nonfinite >= allowed or nonfinite + 1 > nonfinite_share * (len(b.rows) - start + 1):
                    return False
                nonfinite += 1
        return b.add(av, bv, valid=valid, load=load, c=c, shift=s)

    while len(b.rows) - start < count:
        r = rng.random()
        if r < 0.02:
            b.add(0, 0, rst=1)
            continue
        for _ in range(8):
            c = _random_acc(rng, m)
            av, bv = draw(na, fin_a), draw(nb, fin_b)
            s = int(rng.choice(shifts[:9])) if rng.random() < 0.7 else int(rng.choice(shifts))
            if add(av, bv, 1, 1, c, s) or add(av, bv, 0, 1, c, s):
                break
        else:
            b.add(av, bv, valid=0, load=1, c=0, shift=s)   # load +0: a finite start
        for _ in range(int(rng.integers(0, 33))):
            if len(b.rows) - start >= count:
                break
            for _ in range(8):
                av, bv = draw(na, fin_a), draw(nb, fin_b)
                s = int(rng.choice(shifts[:9])) if rng.random() < 0.7 else int(rng.choice(shifts))
                valid = int(rng.random() < 0.85)
                if add(av, bv, valid, 0, 0, s) or add(av, bv, 0, 0, 0, s):
                    break
            else:
                break                                 # this run cannot stay finite: start another
    if budget:
        b.notes_random = {"nonfinite_outputs": nonfinite, "max_share": nonfinite_share,
                          "share": round(nonfinite / max(1, len(b.rows) - start), 4)}


def _random_acc(rng, m):
    f = m.unit.acc_fmt
    r = rng.random()
    if isinstance(f, IntFormat):
        lo, hi = _int_range(f)
        if r < 0.6:
            v = int(rng.integers(lo, hi + 1))
        elif r < 0.8:
            v = hi - int(rng.integers(0, 1 << 17))
        else:
            v = lo + int(rng.integers(0, 1 << 17))
        return v & ((1 << f.bits) - 1)
    if r < 0.3:
        return int(rng.integers(0, 1 << f.bits))
    if r < 0.4:
        return 0
    x = float(rng.standard_normal()) * 2.0 ** int(rng.integers(-12, 12))
    return int(encode(np.array([x]), f, overflow="saturate")[0])


# ---- writing and reading ---------------------------------------------------------------------------

CONTRACT = ("always @(posedge clk) if (rst) acc <= 0; else if (valid) acc <= (load ? c : acc) (+) term(a, b, shift); "
            "else if (load) acc <= c. Each vector is one cycle: drive its inputs, clock once, compare the outputs "
            "(acc after finish(): the odd-phase exponent trick included). That is the sequential order; for a "
            "chunked or pairwise unit acc is unit.dot over the terms since the last load, in the unit's order.")


def unit_spec(unit) -> dict:
    """{"preset", "overrides"} that rebuild `unit` with numsim.units.get_unit (JSON-able)."""
    from ..formats import REGISTRY
    from ..units import RequantInt8
    from ..units import _REGISTRY, get_unit

    name = getattr(unit, "name", None)
    if name not in _REGISTRY:
        return {"preset": None, "overrides": {}, "note": f"unit {name!r} is not a registered preset"}

    def plain(v):
        if isinstance(v, (IntFormat, FloatFormat)):
            for k, g in REGISTRY.items():
                if g == v:
                    return k
            raise NumsimError(f"unit: format {v} has no registry name for the manifest")
        if isinstance(v, RequantInt8):
            return {"RequantInt8": dataclasses.asdict(v)}
        return v

    base = get_unit(name)
    over = {}
    for fld in dataclasses.fields(unit):
        v, d = getattr(unit, fld.name), getattr(base, fld.name, None)
        if v != d and not isinstance(v, (IntFormat, FloatFormat)):
            over[fld.name] = plain(v)
    cand = get_unit(name, **_unplain(over))
    for fld in dataclasses.fields(unit):
        v = getattr(unit, fld.name)
        if isinstance(v, (IntFormat, FloatFormat)) and getattr(cand, fld.name) != v:
            over[fld.name] = plain(v)
    if get_unit(name, **_unplain(over)) != unit:
        raise NumsimError(f"unit: cannot describe {name} with preset overrides for the manifest")
    return {"preset": name, "overrides": over}


def describe_unit(unit, layout=None) -> str:
    """The unit as the vectors exercise it: its describe() of the actual parameters; for a preset with
    overrides, the overrides in place of the preset's seed text; no align_shift without a shift port."""
    import re

    text = unit.describe()
    try:
        over = unit_spec(unit).get("overrides") or {}
    except NumsimError:
        over = {"parameters": "not a preset"}
    if over:
        ov = ", ".join(f"{k}={v}" for k, v in over.items())
        text = re.sub(r"^(\S+) \(seed [^)]*\)", lambda m: f"{m.group(1)} with {ov}", text, count=1)
        if not text.startswith(f"{unit.name} with"):
            text = text.replace(f"{unit.name}:", f"{unit.name} with {ov}:", 1)
    layout = layout or Layout(unit)
    if layout.kind == "int" and layout.shift_name is None:
        text = text.replace(", << align_shift[k]", " (no align_shift: no room above the product)")
    return text


def _unplain(over):
    from ..units import RequantInt8

    return {k: (RequantInt8(**v["RequantInt8"]) if isinstance(v, dict) and "RequantInt8" in v else v)
            for k, v in over.items()}


def manifest(vs: VectorSet, hex_name: str, vh_name: str) -> dict:
    lay = vs.layout
    counts = {}
    for s in vs.sections:
        counts[s["kind"]] = counts.get(s["kind"], 0) + s["count"]
    return {
        "numsim_vectors": FORMAT_VERSION,
        "unit": {"name": vs.unit.name, "description": describe_unit(vs.unit, lay), **unit_spec(vs.unit)},
        "contract": CONTRACT,
        "word_bits": lay.word_bits,
        "hex_digits": (lay.word_bits + 3) // 4,
        "fields": lay.describe(),
        "count": vs.count,
        "counts": counts,
        "sections": vs.sections,
        "seed": vs.seed,
        "notes": vs.notes,
        "tag_runs": _runs(vs.tags),
        "files": {"hex": hex_name, "verilog_include": vh_name},
        **({"flags": flags_note(vs.unit)} if "flags" in lay.by_name else {}),
    }


def flags_note(unit) -> dict:
    """What the flags field holds: the bits (SoftFloat's order), and the unit's tininess and NaN rules."""
    note = {"bits": {"inexact": 1, "underflow": 2, "overflow": 4, "infinite": 8, "invalid": 16},
            "meaning": "IEEE 754 flags raised by the cycle's register updates (an integer register's wrap or "
                       "saturation is overflow); a DUT without a flags port is checked on acc alone"}
    if hasattr(unit, "tininess"):
        note["tininess"] = unit.tininess
        note["nan_rule"] = unit.nan_rule
    return note


def _runs(tags):
    """[[first, count, tag], ...] for the runs of tagged rows."""
    runs = []
    for i, t in enumerate(tags):
        if not t:
            continue
        if runs and runs[-1][2] == t and runs[-1][0] + runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, 1, t])
    return runs


def _unruns(runs, n):
    tags = [""] * n
    for first, count, t in runs:
        tags[first:first + count] = [t] * count
    return tags


def verilog_include(vs: VectorSet) -> str:
    lay = vs.layout
    lines = [f"// numsim vectors for unit {vs.unit.name}: field offsets of one $readmemh word (generated)",
             f"`define NS_WORD_BITS {lay.word_bits}", f"`define NS_COUNT {vs.count}"]
    for x in lay.fields:
        n = x.name.upper()
        lines += [f"`define NS_{n}_LSB {lay.offsets[x.name]}", f"`define NS_{n}_BITS {x.bits}",
                  f"`define NS_{n}_LANE_BITS {x.lane_bits}"]
    return "\n".join(lines) + "\n"


def write(vs: VectorSet, out_dir, name=None) -> dict:
    """Write `<name>.hex` (one word a line), `<name>.json` (the manifest) and `<name>.vh` (the field
    offsets as Verilog defines) into out_dir; returns their paths."""
    if not isinstance(vs, VectorSet):
        raise bad("vectors", "a VectorSet", type(vs).__name__)
    out_dir = os.fspath(out_dir)
    name = name or vs.unit.name
    if not isinstance(name, str) or not name or any(ch in name for ch in "/\\\0"):
        raise bad("name", "a file name stem", repr(name))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise NumsimError(f"out: cannot create output directory {out_dir!r}: {e.strerror}") from None
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK | os.X_OK):
        raise NumsimError(f"out: expected a writable directory, got {out_dir!r}")
    digits = (vs.layout.word_bits + 3) // 4
    paths = {k: os.path.join(out_dir, f"{name}.{k}") for k in ("hex", "json", "vh")}
    # Each file is written under a temporary name in out_dir and renamed when complete, the manifest
    # last: a reader never sees half a file, and a manifest only next to the files it describes.
    texts = {"hex": "".join(f"{w:0{digits}x}\n" for w in vs.words()), "vh": verilog_include(vs),
             "json": json.dumps(manifest(vs, os.path.basename(paths["hex"]), os.path.basename(paths["vh"])),
                                indent=1) + "\n"}
    tmps = {k: os.path.join(out_dir, f".{name}.{k}.tmp{os.getpid()}") for k in texts}
    try:
        for k in ("hex", "vh", "json"):
            with open(tmps[k], "w") as fh:
                fh.write(texts[k])
        for k in ("hex", "vh", "json"):
            os.replace(tmps[k], paths[k])
    except OSError as e:
        raise NumsimError(f"out: cannot write vectors into {out_dir!r}: {e.strerror}") from None
    finally:
        for t in tmps.values():
            if os.path.exists(t):
                os.unlink(t)
    return paths


def read(path, unit=None) -> VectorSet:
    """Vectors back from a manifest (`.json`) or a directory holding exactly one; `unit` overrides
    the manifest's unit (needed when it is not a preset)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        js = sorted(p for p in os.listdir(path) if p.endswith(".json"))
        if len(js) != 1:
            raise bad("path", "a manifest .json or a directory with exactly one", f"{len(js)} manifests in {path!r}")
        path = os.path.join(path, js[0])
    try:
        with open(path) as fh:
            man = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NumsimError(f"path: cannot read a vector manifest from {path!r}: {e}") from None
    if not isinstance(man, dict) or man.get("numsim_vectors") != FORMAT_VERSION:
        raise bad("path", f"a numsim vectors manifest (version {FORMAT_VERSION})", repr(path))
    try:
        return _read_manifest(man, path, unit)
    except (KeyError, TypeError, AttributeError) as e:   # a manifest with missing or mistyped entries
        raise NumsimError(f"path: {path!r} is not a complete numsim vectors manifest "
                          f"({type(e).__name__}: {e})") from None


def _read_manifest(man, path, unit):
    from ..units import get_unit

    if unit is None:
        spec = man["unit"]
        if not spec.get("preset"):
            raise bad("unit", "a Unit (the manifest's unit is not a preset)", "None")
        unit = get_unit(spec["preset"], **_unplain(spec.get("overrides", {})))
    lay = Layout(get_unit(unit))
    if lay.describe() != man["fields"] or lay.word_bits != man["word_bits"]:
        raise bad("unit", "the unit whose field layout the manifest records", getattr(unit, "name", unit))
    hex_path = os.path.join(os.path.dirname(path), man["files"]["hex"])
    rows = []
    try:
        with open(hex_path) as fh:
            for ln, line in enumerate(fh, 1):
                s = line.split("//")[0].strip()
                if not s:
                    continue
                try:
                    rows.append(lay.unpack(int(s, 16)))
                except ValueError:
                    raise NumsimError(f"{hex_path}:{ln}: expected a {lay.word_bits}-bit hex word, got {s!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NumsimError(f"path: cannot read {hex_path!r}: {e}") from None
    if len(rows) != man["count"]:
        raise NumsimError(f"{hex_path}: expected {man['count']} words (the manifest's count), got {len(rows)}")
    return VectorSet(lay.unit, lay, rows, man["sections"], man["seed"], man.get("notes", {}),
                     _unruns(man.get("tag_runs", []), len(rows)))


def replay(vs: VectorSet, model: Model | None = None, limit=10) -> list:
    """Run the model over the vectors' stimulus; returns up to `limit` mismatches (index, field,
    expected in file, model's) — empty when every vector agrees."""
    model = model or Model(vs.unit)
    model.reset()
    sh = vs.layout.shift_name
    bad_rows = []
    for i, r in enumerate(vs.rows):
        if r["rst"]:
            model.reset()
        else:
            model.advance(r["a"], r["b"], r["valid"], r["load"], r["c"], r.get(sh, 0) if sh else 0)
        got = model.expected()
        for k, v in got.items():
            if r[k] != v and len(bad_rows) < limit:
                bad_rows.append((i, k, r[k], v))
    return bad_rows
