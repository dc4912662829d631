"""Output stages of deployed integer runtimes: INT32 accumulators -> int8 / uint8 codes, each runtime's
rule as it is written in its source (docs/units.md, "Output stages", has the table and the sources).

An OutputStage holds the requantization rule, the per-tensor or per-output-channel (last axis) multipliers
in the form the runtime keeps them (a Q31 multiplier and a shift, or a float32 scale), the zero points of
A, B and the output, and the output format with its clamp. `output_stage(preset, a_scale, b_scale,
out_scale, ...)` derives the multipliers from real scales exactly as that runtime does.

Rules (acc is the zero-point-corrected int32 accumulator, m the Q31 multiplier, s the shift, > 0 left):
- "gemmlowp": gemmlowp's SaturatingRoundingDoublingHighMul(wrap32(acc << max(s, 0)), m) then
  RoundingDivideByPOT(., max(-s, 0)): two roundings, the first with ties toward +inf (its nudge
  1 - 2^30 for negative products makes negative ties round up), the second ties away from zero
  (gemmlowp fixedpoint.h; TFLite's MultiplyByQuantizedMultiplier when TFLITE_SINGLE_ROUNDING is unset).
- "single_round_up": (acc * m + 2^(30 - s)) >> (31 - s): one rounding, ties toward +inf (ruy's
  apply_multiplier.cc; TFLite's common.cc with TFLITE_SINGLE_ROUNDING).
- "ruy_x86": ruy's AVX2 / AVX-512 kernels: (wrap32(acc << max(s, 0)) * m + 2^30) >> 31, then a rounding
  right shift by max(-s, 0) with ties toward +inf: two roundings, both ties up.
- "double_away": TFLite's reference fully-connected kernels (the overloads that take the float scales):
  (int32)std::round((double)acc * eff), eff = (double)a_scale * (double)b_scale / (double)out_scale: one
  double product rounded to nearest even, then ties away from zero; a result beyond int32 converts to
  INT32_MIN as x86's cvttsd2si does.
- "float32": (float)acc * scale in float32, clamped to [lo - zp, hi - zp], rounded half to even, + zp
  (XNNPACK's fp32 requantization, ONNX Runtime's MlasRequantizeOutput).
- "rndnu": XNNPACK's rndnu (its Arm kernels): acc times the float32 scale exactly (24-bit significand
  and shift), one rounding with ties toward +inf.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import NumsimError, bad
from ..formats import get_format

RULES = ("gemmlowp", "single_round_up", "ruy_x86", "double_away", "float32", "rndnu")
FIXED_POINT_RULES = ("gemmlowp", "single_round_up", "ruy_x86")

# preset -> (rule, how the multiplier is derived from real scales)
PRESETS = {
    "gemmlowp": ("gemmlowp", "tflite"),
    "tflite_reference": ("double_away", "double"),
    "tflite_optimized": ("ruy_x86", "tflite"),
    "ruy_x86": ("ruy_x86", "tflite"),
    "ruy": ("single_round_up", "tflite"),
    "tflite_single_rounding": ("single_round_up", "tflite"),
    "xnnpack": ("float32", "float32"),
    "onnxruntime": ("float32", "float32"),
    "xnnpack_rndnu": ("rndnu", "float32"),
}

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _wrap32(x):
    """int64 array -> its int32 two's-complement value (as int64), and how many elements changed."""
    w = ((x + 2**31) & 0xFFFFFFFF) - 2**31
    return w, int(np.count_nonzero(w != x))


def _round_half_away(x):
    """Python float (double) -> nearest integer, ties away from zero (C's std::round, TfLiteRound)."""
    f = math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and x > 0):
        return f + 1
    return f


def quantize_multiplier(real):
    """TFLite's QuantizeMultiplier (quantization_util.cc): real (a double) = m * 2^(shift - 31), m in
    [2^30, 2^31) from frexp and std::round (ties away); shift < -31 gives (0, 0), shift > 30 (2^31 - 1, 30)."""
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise bad("real_multiplier", "a finite non-negative number", repr(real))
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * 2.0**31)   # exact: q * 2^31 is a scaling of a double
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return 2**31 - 1, 30
    return int(q_fixed), int(shift)


def _f32(x):
    return np.float32(x)


def derive_multipliers(derivation, a_scale, b_scale, out_scale):
    """Per-channel multipliers from real scales as the runtime derives them: "tflite" -> ((m, ...), (s, ...)),
    "float32" / "double" -> (scale, ...). b_scale may be a sequence (per output channel)."""
    bs = np.atleast_1d(np.asarray(b_scale, dtype=np.float64))
    per_channel = np.ndim(b_scale) > 0
    for arg, v in (("a_scale", np.asarray(a_scale, dtype=np.float64)), ("b_scale", bs),
                   ("out_scale", np.asarray(out_scale, dtype=np.float64))):
        if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise bad(arg, "finite positive scales", repr(v.tolist()))
    sa, so = _f32(a_scale), _f32(out_scale)
    sb = bs.astype(np.float32)
    if derivation == "float32":
        # XNNPACK fully-connected-nc.c and ONNX Runtime quantize_linear_matmul.cc: a * b / out in float32
        return tuple(float((sa * b) / so) for b in sb)
    if derivation == "double":
        # TFLite reference/integer_ops/fully_connected.h, float-scale overloads: in double throughout
        return tuple(float(sa) * float(b) / float(so) for b in sb)
    if per_channel:
        # TFLite PopulateConvolutionQuantizationParams: double(a) * double(b) / double(out)
        reals = [float(sa) * float(b) / float(so) for b in sb]
    else:
        # TFLite GetQuantizedConvolutionMultipler: double(float(a * b)) / double(out)
        reals = [float(sa * sb[0]) / float(so)]
    ms, ss = zip(*(quantize_multiplier(r) for r in reals))
    return ms, ss


def _vec(v, arg, lo, hi, kind=int):
    t = tuple(np.atleast_1d(np.asarray(v)).tolist())
    if not t:
        raise bad(arg, "one value or one per output channel", "an empty sequence")
    for x in t:
        if kind is int and (not float(x).is_integer() or not lo <= x <= hi):
            raise bad(arg, f"integers in [{lo}, {hi}]", repr(x))
        if kind is float and not (math.isfinite(x) and lo <= x < hi):
            raise bad(arg, f"finite float32 scales in [{lo}, {hi})", repr(x))
    return tuple(kind(x) for x in t)


@dataclass(frozen=True)
class OutputStage:
    """INT32 accumulators -> int8 / uint8 codes by one deployed runtime's rule (see the module doc).

    multiplier / shift (Q31 multiplier and exponent, > 0 left) for the fixed-point rules, scale for the
    others (float32 values for "float32" and "rndnu", rounded to float32 as the runtimes hold them; a
    double for "double_away"); each one value or one per output channel (the last axis).
    a_zero_point, b_zero_point (one or per channel), out_zero_point: zero points of A, B and the output.
    out_fmt "int8" or "uint8"; out_min / out_max: the clamp (default: the format's range)."""

    rule: str
    multiplier: tuple = (1 << 30,)
    shift: tuple = (0,)
    scale: tuple = (0.5,)
    out_fmt: str = "int8"
    a_zero_point: int = 0
    b_zero_point: tuple = (0,)
    out_zero_point: int = 0
    out_min: int | None = None
    out_max: int | None = None
    preset: str = ""

    def __post_init__(self):
        if self.rule not in RULES:
            raise bad("rule", f"one of {', '.join(RULES)}", repr(self.rule))
        if self.out_fmt not in ("int8", "uint8"):
            raise bad("out_fmt", "'int8' or 'uint8'", repr(self.out_fmt))
        fmt = get_format(self.out_fmt)
        lo, hi = int(fmt.min_value), int(fmt.max_value)
        set_ = object.__setattr__
        set_(self, "multiplier", _vec(self.multiplier, "multiplier", 0, 2**31 - 1))
        set_(self, "shift", _vec(self.shift, "shift", -31, 30))
        if len(self.multiplier) != len(self.shift):
            raise bad("shift", f"as many values as multiplier ({len(self.multiplier)})", len(self.shift))
        if self.rule == "double_away":      # TFLite's reference keeps the effective scale in double
            set_(self, "scale", _vec(np.asarray(self.scale, dtype=np.float64), "scale", 2.0**-64, 2.0**31, float))
        else:   # float32 scales (as the runtimes hold them): XNNPACK refuses >= 256, asserts >= 2^-32
            set_(self, "scale", _vec(np.asarray(self.scale, dtype=np.float32), "scale", 2.0**-32, 256.0, float))
        set_(self, "b_zero_point", _vec(self.b_zero_point, "b_zero_point", -(2**15), 2**16 - 1))
        set_(self, "a_zero_point", _vec(self.a_zero_point, "a_zero_point", -(2**15), 2**16 - 1)[0])
        set_(self, "out_zero_point", _vec(self.out_zero_point, "out_zero_point", lo, hi)[0])
        set_(self, "out_min", lo if self.out_min is None else _vec(self.out_min, "out_min", lo, hi)[0])
        set_(self, "out_max", hi if self.out_max is None else _vec(self.out_max, "out_max", lo, hi)[0])
        if self.out_min > self.out_max:
            raise bad("out_min", f"<= out_max ({self.out_max})", self.out_min)

    @property
    def channels(self):
        """Number of per-channel multipliers (1: per tensor)."""
        n = len(self.multiplier) if self.rule in FIXED_POINT_RULES else len(self.scale)
        return max(n, len(self.b_zero_point))

    def describe(self):
        mult = (f"multiplier {list(self.multiplier)} Q31, shift {list(self.shift)}" if self.rule in FIXED_POINT_RULES
                else f"scale {list(self.scale)}")
        return (f"output stage {self.preset or self.rule} (rule {self.rule}): {mult}; zero points a "
                f"{self.a_zero_point}, b {list(self.b_zero_point)}, out {self.out_zero_point}; "
                f"{self.out_fmt} clamp [{self.out_min}, {self.out_max}]")

    # -- the arithmetic --------------------------------------------------------------------------
    def _per_channel(self, values, n_cols, arg):
        v = np.asarray(values)
        if v.size == 1:
            return v.reshape(())
        if v.size != n_cols:
            raise bad(arg, f"one value or {n_cols} (one per output channel, the last axis)", f"{v.size} values")
        return v

    def requantize(self, acc):
        """(output values int64, events) for int32 accumulator values (any shape, channels on the last
        axis) that already include the zero-point correction. events: {"outputs", "clamped" (outputs
        at out_min / out_max that the rule put beyond them), "wraps" (int32 intermediates that wrapped)}."""
        acc = np.asarray(acc, dtype=np.int64)
        if acc.size and (acc.min() < _I32_MIN or acc.max() > _I32_MAX):
            raise bad("acc", "int32 values", f"range [{acc.min()}, {acc.max()}]")
        n_cols = acc.shape[-1] if acc.ndim else 1
        lo, hi, zp = self.out_min, self.out_max, self.out_zero_point
        wraps = 0
        if self.rule in FIXED_POINT_RULES:
            m = self._per_channel(np.asarray(self.multiplier, dtype=np.int64), n_cols, "multiplier")
            s = self._per_channel(np.asarray(self.shift, dtype=np.int64), n_cols, "shift")
            left, right = np.maximum(s, 0), np.maximum(-s, 0)
            if self.rule == "single_round_up":
                total = 31 - s
                r, w = _wrap32((acc * m + (np.int64(1) << (total - 1))) >> total)
                wraps += w
            else:
                x, w = _wrap32(acc << left)     # x * (1 << left_shift): wraps in int32 in both runtimes
                wraps += w
                p = x * m
                if self.rule == "gemmlowp":
                    # SaturatingRoundingDoublingHighMul: (ab + nudge) / 2^31, C division (toward zero);
                    # m >= 0 so the one saturating case (both INT32_MIN) cannot occur
                    v = p + np.where(p >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
                    h = np.where(v >= 0, v >> 31, -((-v) >> 31))
                    # RoundingDivideByPOT: ties away from zero
                    mask = (np.int64(1) << right) - 1
                    rem = h & mask
                    thr = (mask >> 1) + (h < 0)
                    r = (h >> right) + (rem > thr)
                else:   # ruy_x86: rounding high multiply, then rounding right shift, both ties up
                    h = (p + (1 << 30)) >> 31
                    r = (h + np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)) >> right
            r, w = _wrap32(r + zp)              # + output_offset in int32
            wraps += w
            out = np.clip(r, lo, hi)
            clamped = int(np.count_nonzero(out != r))
        elif self.rule == "double_away":
            sc = self._per_channel(np.asarray(self.scale, dtype=np.float64), n_cols, "scale")
            x = acc.astype(np.float64) * sc                      # one double rounding, to nearest even
            t = np.trunc(x)
            t = t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0.0)   # std::round: ties away (x - t is exact)
            big = (t < _I32_MIN) | (t > _I32_MAX)
            wraps += int(np.count_nonzero(big))
            r = np.where(big, _I32_MIN, t).astype(np.int64)     # out-of-range double -> int32: INT32_MIN (x86)
            r, w = _wrap32(r + zp)
            wraps += w
            out = np.clip(r, lo, hi)
            clamped = int(np.count_nonzero(out != r))
        elif self.rule == "float32":
            sc = self._per_channel(np.asarray(self.scale, dtype=np.float32), n_cols, "scale")
            f = acc.astype(np.int32).astype(np.float32) * sc     # two float32 roundings, to nearest even
            flo, fhi = np.float32(lo - zp), np.float32(hi - zp)
            rf = np.rint(f)
            clamped = int(np.count_nonzero((rf < flo) | (rf > fhi)))
            f = np.minimum(np.maximum(f, flo), fhi)
            out = np.rint(f).astype(np.int64) + zp               # half to even (lrintf, cvtps2dq, magic bias)
        else:   # rndnu
            sc = self._per_channel(np.asarray(self.scale, dtype=np.float32), n_cols, "scale")
            bits = np.asarray(sc).view(np.uint32).astype(np.int64)
            mant = (bits & 0x7FFFFF) | 0x800000
            sh = 127 + 23 - (bits >> 23)
            r, w = _wrap32((acc * mant + (np.int64(1) << (sh - 1))) >> sh)
            wraps += w
            c = np.clip(r, lo - zp, hi - zp)
            clamped = int(np.count_nonzero(c != r))
            out = c + zp
        return out, {"outputs": int(acc.size), "clamped": clamped, "wraps": wraps}

    def zero_point_correction(self, acc, a_values, b_values):
        """sum_k (a - za)(b - zb) from acc = sum_k a*b (int32 values, (..., M, N)), A (..., M, K) and
        B (..., K, N) values: acc - za*colsum(B) - zb*rowsum(A) + K*za*zb, wrapped to int32 as the
        runtimes' int32 arithmetic does. Returns (corrected int64 values, wraps)."""
        za = self.a_zero_point
        b = np.asarray(b_values, dtype=np.int64)
        a = np.asarray(a_values, dtype=np.int64)
        n_cols = b.shape[-1]
        zb = self._per_channel(np.asarray(self.b_zero_point, dtype=np.int64), n_cols, "b_zero_point")
        k = a.shape[-1]
        corr = np.asarray(acc, dtype=np.int64)
        if za:
            corr = corr - za * b.sum(axis=-2)[..., None, :]
        if np.any(zb != 0):
            corr = corr - a.sum(axis=-1)[..., :, None] * zb + k * za * zb
        return _wrap32(corr)

    def apply(self, acc_codes):
        """Output codes (uint8 array, the codes of out_fmt) of INT32 accumulator codes (uint32 array or
        scalar, zero-point correction already in them), as RequantInt8.apply."""
        from ..codec import check_codes

        acc = check_codes(acc_codes, "int32", "acc_codes").astype(np.uint32).view(np.int32)
        out, _ = self.requantize(acc)
        return (out & 0xFF).astype(np.uint8)


def output_stage(preset, a_scale=None, b_scale=None, out_scale=None, *, real_multiplier=None, out_fmt="int8",
                 a_zero_point=0, b_zero_point=0, out_zero_point=0, out_min=None, out_max=None):
    """The OutputStage of a runtime preset (PRESETS), its multipliers derived from the real scales
    (a_scale, b_scale (one or per output channel), out_scale) as that runtime derives them; or from
    real_multiplier (one or per channel: the real a*b/out) through the same derivation's last step."""
    if preset not in PRESETS:
        raise bad("preset", f"one of {', '.join(PRESETS)}", repr(preset))
    rule, derivation = PRESETS[preset]
    if real_multiplier is not None:
        if a_scale is not None or b_scale is not None or out_scale is not None:
            raise NumsimError("real_multiplier: give either real_multiplier or a_scale, b_scale and out_scale")
        reals = np.atleast_1d(np.asarray(real_multiplier, dtype=np.float64))
        if not np.all(np.isfinite(reals)) or np.any(reals <= 0):
            raise bad("real_multiplier", "finite positive values", repr(reals.tolist()))
        if derivation == "float32":
            mult = dict(scale=tuple(float(np.float32(r)) for r in reals))
        elif derivation == "double":
            mult = dict(scale=tuple(float(r) for r in reals))
        else:
            ms, ss = zip(*(quantize_multiplier(r) for r in reals))
            mult = dict(multiplier=ms, shift=ss)
    else:
        if a_scale is None or b_scale is None or out_scale is None:
            raise NumsimError("a_scale, b_scale, out_scale: all three are needed (or real_multiplier)")
        d = derive_multipliers(derivation, a_scale, b_scale, out_scale)
        mult = dict(multiplier=d[0], shift=d[1]) if derivation == "tflite" else dict(scale=d)
    return OutputStage(rule=rule, out_fmt=out_fmt, a_zero_point=a_zero_point, b_zero_point=b_zero_point,
                       out_zero_point=out_zero_point, out_min=out_min, out_max=out_max, preset=preset, **mult)
