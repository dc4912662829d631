"""Output stages of deployed runtimes stated on exact rationals (numsim.units.runtime_stage is the
production code; docs/units.md names each runtime's source).

Every IEEE operation the runtimes do (float32 products and quotients, double quotients, int -> float32
conversion) is an exact rational rounded to nearest-even at the format's precision; every fixed-point
step is a named rounding of an exact rational."""
from __future__ import annotations

from fractions import Fraction


def round_half_up(q: Fraction) -> int:
    return (q + Fraction(1, 2)).__floor__()


def round_half_away(q: Fraction) -> int:
    mag = (abs(q) + Fraction(1, 2)).__floor__()
    return mag if q >= 0 else -mag


def round_half_even(q: Fraction) -> int:
    return round(q)          # Fraction.__round__ rounds half to even


def wrap32(v: int) -> int:
    v %= 2**32
    return v - 2**32 if v >= 2**31 else v


def ieee(q: Fraction, precision: int) -> Fraction:
    """q rounded to nearest-even with a `precision`-bit significand (normal range: no subnormals or
    overflow occur for the scales and accumulators the output stages see)."""
    if q == 0:
        return Fraction(0)
    sign = -1 if q < 0 else 1
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (e - precision + 1)
    return sign * round_half_even(a / ulp) * ulp


def _exact(q) -> Fraction:
    return q if isinstance(q, (int, Fraction)) else Fraction(float(q))   # numpy scalars: their exact value


def f32(q) -> Fraction:
    return ieee(_exact(q), 24)


def f64(q) -> Fraction:
    return ieee(_exact(q), 53)


def quantize_multiplier(real: Fraction):
    """TFLite QuantizeMultiplier: real = q * 2^e with q in [1/2, 1); m = round-half-away(q * 2^31);
    m == 2^31 -> (2^30, e + 1); e < -31 -> (0, 0); e > 30 -> (2^31 - 1, 30)."""
    real = Fraction(real)
    if real == 0:
        return 0, 0
    e = 0
    while real / Fraction(2) ** e >= 1:
        e += 1
    while real / Fraction(2) ** e < Fraction(1, 2):
        e -= 1
    m = round_half_away(real / Fraction(2) ** e * 2**31)
    if m == 2**31:
        m, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    if e > 30:
        return 2**31 - 1, 30
    return m, e


def derive(derivation, a_scale, b_scales, out_scale, per_channel):
    """Per-channel multipliers as numsim.units.runtime_stage.derive_multipliers states them, from the
    float32 scales' exact values."""
    sa, so = f32(a_scale), f32(out_scale)
    sbs = [f32(b) for b in b_scales]
    if derivation == "float32":
        return [f32(f32(sa * b) / so) for b in sbs]
    if derivation == "double":
        return [f64(f64(sa * b) / so) for b in sbs]
    if per_channel:
        reals = [f64(f64(sa * b) / so) for b in sbs]
    else:
        reals = [f64(f32(sa * sbs[0]) / so)]
    return [quantize_multiplier(r) for r in reals]


def requantize(rule, acc: int, mult, zp: int, lo: int, hi: int) -> int:
    """One output: rule applied to the int32 accumulator acc with mult = (m, shift) for the
    fixed-point rules or the scale (a Fraction: float32 for "float32" / "rndnu", double for
    "double_away")."""
    if rule in ("gemmlowp", "single_round_up", "ruy_x86"):
        m, s = mult
        left, right = max(s, 0), max(-s, 0)
        if rule == "single_round_up":
            r = wrap32(round_half_up(Fraction(acc * m, 2 ** (31 - s))))
        else:
            x = wrap32(acc * 2**left)
            h = round_half_up(Fraction(x * m, 2**31))   # the doubling high multiply (m >= 0: no saturation)
            if rule == "gemmlowp":
                r = round_half_away(Fraction(h, 2**right))
            else:
                r = round_half_up(Fraction(h, 2**right))
        return max(lo, min(hi, wrap32(r + zp)))
    if rule == "double_away":
        r = round_half_away(f64(acc * _exact(mult)))
        if not -(2**31) <= r < 2**31:
            r = -(2**31)            # x86 cvttsd2si: out of range -> the "integer indefinite" INT32_MIN
        return max(lo, min(hi, wrap32(r + zp)))
    if rule == "float32":
        v = f32(f32(acc) * mult)
        v = max(Fraction(lo - zp), min(Fraction(hi - zp), v))
        return round_half_even(v) + zp
    if rule == "rndnu":
        r = wrap32(round_half_up(acc * _exact(mult)))
        return max(lo - zp, min(hi - zp, r)) + zp
    raise ValueError(rule)


def quantized_matmul(rule, a, b, mults, za, zbs, zp, lo, hi):
    """Output values of sum_k (a - za)(b - zb) requantized by rule; a, b lists of lists of ints, mults and
    zbs one per output column (or one for all). The int32 correction wraps as the runtimes' does."""
    M, K, N = len(a), len(b), len(b[0])
    out = []
    for i in range(M):
        row = []
        for j in range(N):
            zb = zbs[j] if len(zbs) > 1 else zbs[0]
            acc = wrap32(sum((a[i][k] - za) * (b[k][j] - zb) for k in range(K)))
            row.append(requantize(rule, acc, mults[j] if len(mults) > 1 else mults[0], zp, lo, hi))
        out.append(row)
    return out
