"""The MAC units step by step in exact Python ints and Fractions: the executable specification.

Nothing here shares code with numsim.units or csrc/units.c; the units' frozen descriptors are read only
for their parameters. The one rounding into a format is numsim.reference.formats.encode_exact.

Every dot function returns (code, trace, overflow_events); trace lists the accumulator code after every
adder, in the order the unit's datapath produces them:
- sequential: after each term;  chunked: each term into the chunk's accumulator, then the chunk's
  add into the running accumulator;  pairwise: the leaves, then every node level by level, left to
  right, then the root added to the initial accumulator;
- per-sample shift, per_sample: the total after each sample; per_shift: the shift-value group's
  accumulator after each sample, then the total after adding each shifted group s = 0..4.
A term is one product (integer units) or the exact sum of k_step consecutive products (float units).
An 'error' overflow raises RefOverflow(where, step, k): step = number of trace entries before the
failing adder, k = the last reduction index that adder covers.
"""
from __future__ import annotations

from fractions import Fraction

from ..formats import FloatFormat, IntFormat
from .formats import RefError, decode_exact, encode_exact

FP16 = FloatFormat(5, 10, 15, name="fp16")


class RefOverflow(Exception):
    def __init__(self, where, step, k):
        super().__init__(f"{where} overflow at step {step} (k={k})")
        self.where, self.step, self.k = where, step, k


# ---- integers -------------------------------------------------------------------------------------

def signed_value(code: int, fmt) -> int:
    v = decode_exact(code, fmt)
    assert v.denominator == 1
    return int(v)


def to_code(v: int, bits: int) -> int:
    return v % 2**bits


class _Register:
    """A signed register of `bits` bits with an overflow policy; counts wrap/saturate events."""

    def __init__(self, bits, policy, where, counter):
        self.bits, self.policy, self.where, self.counter = bits, policy, where, counter

    def fit(self, v, step, k):
        lo, hi = -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        if lo <= v <= hi:
            return v
        if self.policy == "error":
            raise RefOverflow(self.where, step, k)
        self.counter[0] += 1
        if self.policy == "wrap":
            r = v % 2**self.bits
            return r - 2**self.bits if r > hi else r
        return hi if v > hi else lo


def _tree(leaves, add):
    """Pairwise tree: adjacent pairs level by level; an odd last node moves up unchanged.
    leaves: list of (value, last_k)."""
    level = list(leaves)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            (x, _), (y, ky) = level[i], level[i + 1]
            nxt.append((add(x, y, ky), ky))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _ordered(order, chunk, n_terms, term, add, c, last_k, K):
    """Run the accumulation order over terms 0..n_terms-1. term(t, acc_or_None) -> value;
    add(x, y, k) -> value."""
    acc = c
    if order == "sequential":
        for t in range(n_terms):
            acc = term(t, acc)
    elif order == "chunked":
        for t0 in range(0, n_terms, chunk):
            t1 = min(t0 + chunk, n_terms)
            part = term(t0, None)
            for t in range(t0 + 1, t1):
                part = term(t, part)
            acc = add(acc, part, last_k(t1 - 1))
    elif order == "pairwise":
        if n_terms:
            leaves = [(term(t, None), last_k(t)) for t in range(n_terms)]
            root, _ = _tree(leaves, add)
            acc = add(acc, root, K - 1)
    else:
        raise ValueError(order)
    return acc


def int_mac_dot(unit, a_codes, b_codes, align_shift=None, c=0):
    """IntMacUnit: acc + ((a * b) widened, << align_shift[k]) under each register's policy."""
    K = len(a_codes)
    shifts = list(align_shift) if align_shift is not None else [0] * K
    counter, trace = [0], []
    widen = _Register(unit.widen_bits, unit.widen_overflow, "widen", counter)
    accr = _Register(unit.acc_bits, unit.acc_overflow, "acc", counter)

    def term(t, acc):
        p = signed_value(a_codes[t], unit.a_fmt) * signed_value(b_codes[t], unit.b_fmt)
        w = widen.fit(p * 2 ** int(shifts[t]), len(trace), t)
        v = w if acc is None else accr.fit(acc + w, len(trace), t)
        trace.append(to_code(v, unit.acc_bits))
        return v

    def add(x, y, k):
        v = accr.fit(x + y, len(trace), k)
        trace.append(to_code(v, unit.acc_bits))
        return v

    c0 = signed_value(c, IntFormat(unit.acc_bits))
    v = _ordered(unit.order, unit.chunk, K, term, add, c0, lambda t: t, K)
    return to_code(v, unit.acc_bits), trace, counter[0]


def sample_shift_dot(unit, a_codes, b_codes, sample_shift, c=0):
    """SampleShiftUnit, from its definition."""
    K = len(a_codes)
    counter, trace = [0], []
    bits = unit.acc_bits
    widen = _Register(unit.widen_bits, unit.widen_overflow, "widen", counter)
    accr = _Register(bits, unit.acc_overflow, "acc", counter)
    shiftr = _Register(bits, unit.shift_overflow, "shift", counter)
    acc_fmt = IntFormat(bits)

    def shifted(v, s, k):
        if unit.shift_direction == "left":
            return shiftr.fit(v * 2 ** (4 - s), len(trace), k)
        return signed_value(encode_exact(Fraction(v, 2**s), acc_fmt, rounding=unit.shift_rounding), acc_fmt)

    def product(k):
        p = signed_value(a_codes[k], unit.a_fmt) * signed_value(b_codes[k], unit.b_fmt)
        return widen.fit(p, len(trace), k)

    total = signed_value(c, acc_fmt)
    if unit.grouping == "per_sample":
        for k in range(K):
            w = shifted(product(k), int(sample_shift[k]), k)
            total = accr.fit(total + w, len(trace), k)
            trace.append(to_code(total, bits))
    else:
        groups = [0] * 5
        for k in range(K):
            s = int(sample_shift[k])
            w = product(k)
            groups[s] = accr.fit(groups[s] + w, len(trace), k)
            trace.append(to_code(groups[s], bits))
        for s in range(5):
            g = shifted(groups[s], s, K - 1)
            total = accr.fit(total + g, len(trace), K - 1)
            trace.append(to_code(total, bits))
    return to_code(total, bits), trace, counter[0]


# ---- floats -----------------------------------------------------------------------------------------

def _sign_bit(code, fmt):
    return (code >> (fmt.bits - 1)) & 1


def default_nan(fmt):
    """The NaN of an invalid operation: sign set, all-ones exponent, quiet bit (x86's 'indefinite')."""
    return (1 << (fmt.bits - 1)) | ((2**fmt.exp_bits - 1) << fmt.man_bits) | (1 << (fmt.man_bits - 1))


def _quiet(code, fmt):
    return code | (1 << (fmt.man_bits - 1))


def _inf(fmt, negative):
    return ((1 << (fmt.bits - 1)) if negative else 0) | ((2**fmt.exp_bits - 1) << fmt.man_bits)


def _operand(code, fmt):
    """(value, negative): value a Fraction, 'inf' or 'nan'; negative is the sign (the sign bit of floats)."""
    v = decode_exact(code, fmt)
    if fmt.kind == "int":
        return v, v < 0
    neg = bool(_sign_bit(code, fmt))
    if v in ("inf", "-inf"):
        return "inf", neg
    return v, neg


def round_exact_sum(terms, fmt, rounding, overflow, step, k):
    """terms: (Fraction, negative) finite addends. One rounding of their exact sum into fmt."""
    s = sum((v for v, _ in terms), Fraction(0))
    if s == 0:
        all_zero = all(v == 0 for v, _ in terms)
        if all_zero and terms and all(n for _, n in terms):
            neg = True
        elif all_zero and not any(n for _, n in terms):
            neg = False
        else:
            neg = rounding == "toward_neg"
        return (1 << (fmt.bits - 1)) if neg else 0
    try:
        return encode_exact(s, fmt, rounding=rounding, overflow=overflow)
    except RefError:
        raise RefOverflow("acc", step, k) from None


def float_add(x, y, fmt, rounding="nearest_even", overflow="to_inf", step=0, k=0):
    """x + y of two codes of fmt, rounded once; NaN operands propagate quieted (x first)."""
    (vx, nx), (vy, ny) = _operand(x, fmt), _operand(y, fmt)
    if vx == "nan":
        return _quiet(x, fmt)
    if vy == "nan":
        return _quiet(y, fmt)
    if vx == "inf" and vy == "inf":
        return _inf(fmt, nx) if nx == ny else default_nan(fmt)
    if vx == "inf":
        return _inf(fmt, nx)
    if vy == "inf":
        return _inf(fmt, ny)
    return round_exact_sum([(vx, nx), (vy, ny)], fmt, rounding, overflow, step, k)


def f16_add(a: int, b: int, rounding="nearest_even") -> int:
    """The standalone FP16 adder: a + b rounded once, overflow to inf."""
    return float_add(a, b, FP16, rounding, "to_inf")


def float_group(acc, a_list, b_list, afmt, bfmt, fmt, rounding, overflow, step, k, inner=None):
    """[acc +] sum of products, rounded once. acc None: no accumulator input.
    inner: (register, lsb_exponent) of a fixed-point inner adder that holds the products' sum."""
    terms, nan, infs = [], False, set()
    if acc is not None:
        v, n = _operand(acc, fmt)
        if v == "nan":
            return _quiet(acc, fmt)
        if v == "inf":
            infs.add(n)
        else:
            terms.append((v, n))
    for ac, bc in zip(a_list, b_list):
        (va, na), (vb, nb) = _operand(ac, afmt), _operand(bc, bfmt)
        neg = na != nb
        if va == "nan" or vb == "nan" or (va == "inf" and vb == 0) or (vb == "inf" and va == 0):
            nan = True
        elif va == "inf" or vb == "inf":
            infs.add(neg)
        else:
            terms.append((va * vb, neg))
    if nan or len(infs) == 2:
        return default_nan(fmt)
    if infs:
        return _inf(fmt, infs.pop())
    if inner is not None:
        reg, lsb = inner
        first = 1 if acc is not None else 0
        total = sum((v for v, _ in terms[first:]), Fraction(0)) / Fraction(2) ** lsb
        assert total.denominator == 1
        held = reg.fit(int(total), step, k)                  # an integer register: its zero is +0
        terms = terms[:first] + [(held * Fraction(2) ** lsb, False)]
    return round_exact_sum(terms, fmt, rounding, overflow, step, k)


def float_mac_dot(unit, a_codes, b_codes, c=0, b_fmt=None):
    """FloatMacUnit / Int4Fp4r4Unit: terms of k_step products, each added with one rounding.
    b_fmt: the format the datapath reads b in (the even grid for the INT4 x FP4 unit)."""
    K = len(a_codes)
    n = unit.k_step
    bf = b_fmt or unit.b_fmt
    fmt, rnd, ovf = unit.acc_fmt, unit.acc_rounding, unit.acc_overflow
    T = -(-K // n)
    trace = []
    counter = [0]
    inner = None
    if getattr(unit, "inner_bits", None):
        def quantum_exp(f):                                  # the format's finest quantum, 2^e
            if f.kind == "int":
                return 0
            if f.radix == 4:
                return 2 * ((1 if f.r4_zero == "exp0" else 0) - f.bias) - f.phase
            return 1 - f.bias - f.man_bits
        e = quantum_exp(unit.a_fmt) + quantum_exp(bf)
        inner = (_Register(unit.inner_bits, unit.inner_overflow, "inner", counter), e)

    def last_k(t):
        return min((t + 1) * n, K) - 1

    def term(t, acc):
        k0 = t * n
        v = float_group(acc, a_codes[k0:k0 + n], b_codes[k0:k0 + n], unit.a_fmt, bf, fmt, rnd, ovf, len(trace),
                        last_k(t), inner)
        trace.append(v)
        return v

    def add(x, y, k):
        v = float_add(x, y, fmt, rnd, ovf, len(trace), k)
        trace.append(v)
        return v

    code = _ordered(unit.order, unit.chunk, T, term, add, c, last_k, K)
    return code, trace, counter[0]


def odd_phase_spec(code: int, odd_underflow="flush") -> int:
    """The odd-phase exponent trick, specified on values: fields >= 2 give the exact half; fields 0 and 1:
    flush -> signed zero, exact -> the half rounded to nearest even, clamp -> the field saturates at 0
    (mantissa bits kept); inf and NaN unchanged."""
    sign = code & 0x8000
    field = (code >> 10) & 0x1F
    if field == 0x1F:
        return code
    x = decode_exact(code, FP16)
    if field >= 2:
        half = encode_exact(x / 2, FP16)
        assert decode_exact(half, FP16) == x / 2          # exactly representable
        return half
    if odd_underflow == "flush":
        return sign
    if odd_underflow == "exact":
        if x == 0:
            return sign
        return encode_exact(x / 2, FP16, rounding="nearest_even")
    if odd_underflow == "clamp":
        return sign | (code & 0x3FF) if field == 1 else code
    raise ValueError(odd_underflow)


def int4_fp4r4_dot(unit, a_codes, b_codes, c=0):
    """Int4Fp4r4Unit: the even-phase datapath; odd phase then applies the exponent trick."""
    code, trace, ev = float_mac_dot(unit, a_codes, b_codes, c, b_fmt=unit.b_fmt.with_phase("even"))
    if unit.phase == "odd":
        code = odd_phase_spec(code, unit.odd_underflow)
    return code, trace, ev


# ---- requantization, from the TFLite quantization spec ---------------------------------------------

def requant_int8(acc: int, multiplier: int, shift: int, zero_point: int, out_min=-128, out_max=127) -> int:
    """TFLite's MultiplyByQuantizedMultiplier + zero point + clamp, stated on exact rationals:
    x = acc << max(shift, 0) (int32, wrapping); y = round-half-up(x * multiplier / 2^31) (the saturating
    rounding doubling high multiply; its only overflow, INT32_MIN * INT32_MIN, saturates to INT32_MAX);
    z = round-half-away-from-zero(y / 2^max(-shift, 0)); out = clamp(z + zero_point)."""
    left, right = max(shift, 0), max(-shift, 0)
    x = (acc * 2**left) % 2**32
    x = x - 2**32 if x >= 2**31 else x
    if x == multiplier == -(2**31):
        y = 2**31 - 1
    else:
        y = (Fraction(x * multiplier, 2**31) + Fraction(1, 2)).__floor__()
    q = Fraction(y, 2**right)
    mag = (abs(q) + Fraction(1, 2)).__floor__()
    z = mag if q >= 0 else -mag
    return max(out_min, min(out_max, z + zero_point))


def dot(unit, a_codes, b_codes, c=None, **ctx):
    """Dispatch on the unit's class name (no import of numsim.units)."""
    kind = type(unit).__name__
    a, b = [int(x) for x in a_codes], [int(x) for x in b_codes]
    c0 = 0 if c is None else int(c)
    if kind == "IntMacUnit":
        return int_mac_dot(unit, a, b, ctx.get("align_shift"), c0)
    if kind == "SampleShiftUnit":
        return sample_shift_dot(unit, a, b, ctx["sample_shift"], c0)
    if kind == "Int4Fp4r4Unit":
        return int4_fp4r4_dot(unit, a, b, c0)
    if kind == "FloatMacUnit":
        return float_mac_dot(unit, a, b, c0)
    raise ValueError(kind)
