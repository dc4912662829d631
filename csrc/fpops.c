/* Standalone floating-point operations on exact integer significands, after Berkeley SoftFloat 3.
 *
 * An operand is unpacked to sig * 2^exp with sig < 2^31 (every numsim float has at most 31
 * significand bits). An operation computes its exact result as a 64-bit significand whose most
 * significant bit is bit 62, with any nonzero bits that did not fit ORed ("jammed") into bit 0,
 * as softfloat_shiftRightJam64 does. The result's precision is at most 31 bits, so its rounding
 * position is at least 31 bits above bit 0: the jammed significand rounds exactly as the exact
 * value would, in every mode. round_pack_to_format (SoftFloat's roundPackToF16 for any format) then
 * rounds, detects tininess and overflow, and packs; it is the only place a result is rounded. */
#include "numsim.h"
#include "ns_fpops.h"
#include "ns_internal.h"

enum fp_class { FP_ZERO = 0, FP_FINITE = 1, FP_INF = 2, FP_NAN = 3 };

/* One operand: value = (-1)^sign * sig * 2^exp when finite. A NaN keeps its mantissa left-justified
 * in `payload` (SoftFloat's commonNaN.v64: the quiet bit is bit 63). */
typedef struct fp_unpacked {
    int cls, sign, exp, snan;
    uint64_t sig, payload;
} fp_unpacked;

/* Magnitude rounding directions (the sign folded in), round to odd added to ns_internal's. */
enum { MAG_DOWN = NS_MAG_DOWN, MAG_UP = NS_MAG_UP, MAG_NEAREST_EVEN = NS_MAG_NEAREST_EVEN,
       MAG_NEAREST_AWAY = NS_MAG_NEAREST_AWAY, MAG_ODD = 9 };

#define SIG_TOP 62 /* bit position of a normalized significand's leading one */

static inline int magnitude_mode(int rounding, int negative) {
    if (rounding == NS_FP_ROUND_ODD) return MAG_ODD;
    return ns_magnitude_mode(rounding, negative);
}

static inline uint32_t sign_bit(const ns_format *f) { return UINT32_C(1) << (f->bits - 1); }
static inline int is_radix4(const ns_format *f) { return f->radix_log2 == 2; }
static inline int field_max(const ns_format *f) {            /* largest finite exponent field */
    const int all_ones = (1 << f->exp_bits) - 1;
    return f->specials == NS_SPECIALS_IEEE ? all_ones - 1 : all_ones;
}
static inline uint32_t man_max_at_top(const ns_format *f) {   /* largest mantissa at field_max */
    const uint32_t all_ones = (UINT32_C(1) << f->man_bits) - 1;
    return f->specials == NS_SPECIALS_FN ? all_ones - 1 : all_ones;
}

/* softfloat_shiftRightJam64: shift right, ORing every bit shifted out into bit 0. */
static inline uint64_t shift_right_jam64(uint64_t a, int dist) {
    if (dist <= 0) return a;
    if (dist >= 64) return a != 0;
    return (a >> dist) | ((a & ((UINT64_C(1) << dist) - 1)) != 0);
}

/* Normalize a nonzero significand so its leading one is at SIG_TOP (jamming if it was above). */
static inline uint64_t normalize(uint64_t sig, int *exp) {
    const int msb = ns_msb64(sig);
    if (msb > SIG_TOP) { *exp += msb - SIG_TOP; return shift_right_jam64(sig, msb - SIG_TOP); }
    *exp -= SIG_TOP - msb;
    return sig << (SIG_TOP - msb);
}

/* Round sig * 2^-shift to an integer (shift >= 1); *inexact says whether anything was dropped. */
static inline uint64_t round_shift(uint64_t sig, int shift, int mag, int *inexact) {
    uint64_t n, rem, half;
    if (shift >= 64) {                    /* sig < 2^63 <= half of 2^shift */
        *inexact = sig != 0;
        if (!*inexact) return 0;
        return (mag == MAG_UP || mag == MAG_ODD) ? 1 : 0;
    }
    n = sig >> shift;
    rem = sig & ((UINT64_C(1) << shift) - 1);
    half = UINT64_C(1) << (shift - 1);
    *inexact = rem != 0;
    if (!rem) return n;
    switch (mag) {
    case MAG_DOWN: return n;
    case MAG_UP: return n + 1;
    case MAG_ODD: return n | 1;
    case MAG_NEAREST_AWAY: return n + (rem >= half);
    default: return n + (rem > half || (rem == half && (n & 1)));
    }
}

/* ---- unpack --------------------------------------------------------------------------------- */

static fp_unpacked unpack(const ns_format *f, uint32_t code) {
    fp_unpacked u;
    const uint32_t mag = code & (sign_bit(f) - 1);
    u.sign = (int)(code >> (f->bits - 1));
    u.exp = 0; u.sig = 0; u.snan = 0; u.payload = 0;
    u.cls = FP_ZERO;
    if (f->specials == NS_SPECIALS_FNUZ && code == sign_bit(f)) {  /* the one NaN; read as positive */
        u.cls = FP_NAN; u.sign = 0; return u;
    }
    if (is_radix4(f)) {
        const int fmin = f->r4_zero == NS_R4_ZERO_EXP0 ? 1 : 0;
        if ((int)mag < fmin) return u;
        u.cls = FP_FINITE; u.sig = 1; u.exp = 2 * ((int)mag - f->bias) - f->phase;
        return u;
    }
    const int M = f->man_bits;
    const uint32_t field = mag >> M, man = mag & ((UINT32_C(1) << M) - 1);
    const uint32_t all_ones = (UINT32_C(1) << f->exp_bits) - 1;
    if (f->specials == NS_SPECIALS_IEEE && field == all_ones) {
        if (!man) { u.cls = FP_INF; return u; }
        u.cls = FP_NAN;
        u.snan = !((man >> (M - 1)) & 1);  /* quiet bit clear (never with M == 1: the only NaN is quiet) */
        u.payload = (uint64_t)man << (64 - M);
        return u;
    }
    if (f->specials == NS_SPECIALS_FN && field == all_ones && man == (UINT32_C(1) << M) - 1) {
        u.cls = FP_NAN; return u;
    }
    if (field == 0) {
        if (!man || !f->subnormals) return u;  /* denormal encodings read as zero without subnormals */
        u.cls = FP_FINITE; u.sig = man; u.exp = 1 - f->bias - M;
        return u;
    }
    u.cls = FP_FINITE; u.sig = man | (UINT64_C(1) << M); u.exp = (int)field - f->bias - M;
    return u;
}

/* ---- packing special results ------------------------------------------------------------------ */

static inline uint32_t pack_zero(const ns_format *z, int sign) {
    if (z->specials == NS_SPECIALS_FNUZ) return 0;          /* fnuz has no negative zero */
    return sign ? sign_bit(z) : 0;
}
static inline uint32_t max_finite_code(const ns_format *z, int sign) {
    uint32_t mag;
    if (is_radix4(z)) mag = (uint32_t)field_max(z);
    else mag = ((uint32_t)field_max(z) << z->man_bits) | man_max_at_top(z);
    return (sign ? sign_bit(z) : 0) | mag;
}
static inline uint32_t inf_code(const ns_format *z, int sign) {
    return (sign ? sign_bit(z) : 0) | (((UINT32_C(1) << z->exp_bits) - 1) << z->man_bits);
}

/* A NaN result (SoftFloat's softfloat_commonNaNToF16UI for any format): the sign and the payload's
 * top bits with the quiet bit set. A format with one NaN per sign (fn) or one NaN (fnuz) returns it;
 * a format without NaN has no code for it: +0 and the invalid flag. */
static uint32_t pack_nan(const ns_format *z, int sign, uint64_t payload, uint8_t *flags) {
    switch (z->specials) {
    case NS_SPECIALS_IEEE: {
        const int M = z->man_bits;
        const uint32_t man = (UINT32_C(1) << (M - 1)) | (uint32_t)(payload >> (64 - M));
        return inf_code(z, sign) | man;
    }
    case NS_SPECIALS_FN: return (sign ? sign_bit(z) : 0) | (sign_bit(z) - 1);
    case NS_SPECIALS_FNUZ: return sign_bit(z);
    default: *flags |= NS_FP_FLAG_INVALID; return 0;
    }
}

static uint32_t default_nan(const ns_format *z, const ns_fp_env *env, uint8_t *flags) {
    return pack_nan(z, env->nan_rule == NS_FP_NAN_X86_SSE, 0, flags);
}

/* An exact infinite result. A format without inf takes the overflow policy's value (NaN for
 * to_nan, else the largest finite) and `no_inf_flag`, which says why the infinity arose. */
static uint32_t pack_inf(const ns_format *z, const ns_fp_env *env, int sign, uint8_t no_inf_flag, uint8_t *flags) {
    if (z->specials == NS_SPECIALS_IEEE) return inf_code(z, sign);
    *flags |= no_inf_flag;
    if (env->overflow == NS_OVF_TO_NAN && z->specials != NS_SPECIALS_NONE) return pack_nan(z, sign, 0, flags);
    return max_finite_code(z, sign);
}

/* The result of an operation whose operands include a NaN: softfloat_propagateNaNF16UI(a, b) of the
 * chosen specialization, for any format. `a` or `b` may be a non-NaN operand (then the other is
 * the NaN). Returns the chosen NaN as an operand; raises invalid for a signaling NaN. */
static fp_unpacked propagate_nan(const ns_fp_env *env, fp_unpacked a, fp_unpacked b, uint8_t *flags) {
    const int a_nan = a.cls == FP_NAN, b_nan = b.cls == FP_NAN;
    const int any_snan = (a_nan && a.snan) || (b_nan && b.snan);
    fp_unpacked r;
    if (any_snan) *flags |= NS_FP_FLAG_INVALID;
    switch (env->nan_rule) {
    case NS_FP_NAN_X86_SSE: r = (a_nan && a.snan) ? a : (a_nan ? a : b); break;
    case NS_FP_NAN_ARM:
        if (any_snan) r = (a_nan && a.snan) ? a : b;
        else r = a_nan ? a : b;
        break;
    default:                            /* RISC-V: the canonical NaN, whatever came in */
        r.cls = FP_NAN; r.sign = 0; r.exp = 0; r.sig = 0; r.payload = 0; r.snan = 0;
        return r;
    }
    r.snan = 0;                         /* quieted: pack_nan sets the quiet bit */
    return r;
}

static inline uint32_t pack_nan_of(const ns_format *z, fp_unpacked n, uint8_t *flags) {
    return pack_nan(z, n.sign, n.payload, flags);
}

/* The default NaN as an operand, for the next propagate_nan (SoftFloat's defaultNaNF16UI). */
static inline fp_unpacked default_nan_operand(const ns_fp_env *env) {
    fp_unpacked r;
    r.cls = FP_NAN; r.sign = env->nan_rule == NS_FP_NAN_X86_SSE; r.exp = 0; r.sig = 0; r.payload = 0; r.snan = 0;
    return r;
}

/* ---- rounding and packing: the one place a result is rounded -------------------------------------- */

/* Whether rounding the normalized sig (value sig * 2^exp, leading one at SIG_TOP) to precision
 * `bits` with an unbounded exponent range carries it up to 2^(SIG_TOP + exp + 1). */
static inline int carries_to_next_binade(uint64_t sig, int bits, int mag) {
    int inexact;
    const uint64_t n = round_shift(sig, SIG_TOP + 1 - bits, mag, &inexact);
    return (int)(n >> bits);
}

/* Radix 2 (SoftFloat's softfloat_roundPackToF16 for any width): sig normalized, nonzero. */
static uint32_t round_pack_to_r2(const ns_format *z, const ns_fp_env *env, int sign, int exp, uint64_t sig,
                                 uint8_t *flags) {
    const int M = z->man_bits, emin = 1 - z->bias, fmax = field_max(z);
    const int mag = magnitude_mode(env->rounding, sign);
    const int ue = SIG_TOP + exp;                 /* floor(log2 |x|) */
    int qe, gap = 0, inexact;
    uint64_t n;
    uint32_t field, man;
    if (ue > fmax - z->bias + 1) goto overflow;   /* far past the top: no rounding brings it back */
    if (ue >= emin) qe = ue - M;
    else if (z->subnormals) qe = emin - M;
    else { qe = emin; gap = 1; }                  /* no subnormals: [0, 2^emin) rounds to 0 or 2^emin */

    n = round_shift(sig, qe - exp, mag, &inexact);
    if (ue < emin && inexact) {
        /* tiny: below 2^emin before rounding, or (after rounding) still below it when rounded to
         * M + 1 bits with an unbounded exponent range */
        const int tiny = env->tininess == NS_FP_TININESS_BEFORE_ROUNDING || ue < emin - 1 ||
                         !carries_to_next_binade(sig, M + 1, mag);
        if (tiny) *flags |= NS_FP_FLAG_UNDERFLOW;
    }
    if (inexact) *flags |= NS_FP_FLAG_INEXACT;
    if (n == 0) return pack_zero(z, sign);
    if (gap) { n = UINT64_C(1) << M; qe = emin - M; }
    if (n >> (M + 1)) { n >>= 1; qe++; }          /* carried into the next binade */

    if (n >> M) { field = (uint32_t)(qe + M + z->bias); man = (uint32_t)(n - (UINT64_C(1) << M)); }
    else { field = 0; man = (uint32_t)n; }        /* subnormal */
    if ((int)field > fmax || ((int)field == fmax && man > man_max_at_top(z))) goto overflow;
    return (sign ? sign_bit(z) : 0) | (field << M) | man;

overflow:
    /* IEEE 754 7.4: overflow and inexact; modes that round the magnitude down (and round to odd)
     * stop at the largest finite value, the others go to inf (or the policy's value). */
    *flags |= NS_FP_FLAG_OVERFLOW | NS_FP_FLAG_INEXACT;
    if (env->overflow == NS_OVF_TO_INF && z->specials == NS_SPECIALS_IEEE)
        return (mag == MAG_DOWN || mag == MAG_ODD) ? max_finite_code(z, sign) : inf_code(z, sign);
    if (env->overflow == NS_OVF_TO_NAN && z->specials != NS_SPECIALS_NONE) return pack_nan(z, sign, 0, flags);
    return max_finite_code(z, sign);
}

static inline int floor_div2(int v) { return v >= 0 ? v / 2 : -((1 - v) / 2); }

/* Radix 4 without mantissa: value 4^(field - bias) * 2^-phase; rounding as numsim's encoder
 * (ns_round_pack): nearest modes switch at the format's threshold, 2 * 4^k (log) or 2.5 * 4^k
 * (linear), ties to the even field; below the smallest magnitude the grid is linear to zero. */
static int r4_round_up(const ns_format *z, uint64_t sig, int b, int k, int mag) {
    const uint64_t one = UINT64_C(1) << b;        /* 4^k at bit b */
    if (sig == one) return 0;
    if (mag == MAG_DOWN) return 0;
    if (mag == MAG_UP) return 1;
    const uint64_t threshold = z->r4_threshold == NS_R4_LOG ? one << 1 : UINT64_C(5) << (b - 1);
    if (sig != threshold) return sig > threshold;
    if (mag == MAG_NEAREST_AWAY) return 1;
    return ((k + z->bias) & 1) != 0;
}

static uint32_t round_pack_to_r4(const ns_format *z, const ns_fp_env *env, int sign, int exp, uint64_t sig,
                                 uint8_t *flags) {
    const int fmin = z->r4_zero == NS_R4_ZERO_EXP0 ? 1 : 0, fmax = (1 << z->exp_bits) - 1;
    const int kmin = fmin - z->bias, kmax = fmax - z->bias;
    const int mag = magnitude_mode(env->rounding, sign);
    const uint32_t s = sign ? sign_bit(z) : 0;
    const int e2 = exp + z->phase;                /* work on |x| * 2^phase: the even grid 4^k */
    const int k = floor_div2(SIG_TOP + e2);       /* |x| * 2^phase in [4^k, 4^(k+1)) */
    const int b = 2 * k - e2;                     /* bit of 4^k in sig: SIG_TOP - 1 or SIG_TOP */
    const int exact = sig == (UINT64_C(1) << b);
    int up;
    if (k > kmax) goto overflow;
    up = r4_round_up(z, sig, b, k, mag);
    if (k < kmin) {                               /* below the smallest magnitude: tiny */
        const int tiny = env->tininess == NS_FP_TININESS_BEFORE_ROUNDING || k + 1 < kmin || !up;
        *flags |= NS_FP_FLAG_INEXACT | (tiny ? NS_FP_FLAG_UNDERFLOW : 0);
        if (z->r4_zero == NS_R4_ZERO_NONE) return s | (uint32_t)fmin;  /* no zero to go to */
        int inexact;
        const uint64_t n = round_shift(sig, 2 * kmin - e2, mag, &inexact);  /* 0 or 1 times 4^kmin */
        return n ? s | (uint32_t)fmin : pack_zero(z, sign);
    }
    if (!exact) *flags |= NS_FP_FLAG_INEXACT;
    if (k + up > kmax) goto overflow;
    return s | (uint32_t)(k + up + z->bias);

overflow:
    *flags |= NS_FP_FLAG_OVERFLOW | NS_FP_FLAG_INEXACT;
    return max_finite_code(z, sign);              /* radix-4 formats have neither inf nor NaN */
}

/* Round (-1)^sign * sig * 2^exp (sig nonzero, possibly jammed) into z and pack it. */
static uint32_t round_pack_to_format(const ns_format *z, const ns_fp_env *env, int sign, int exp, uint64_t sig,
                                     uint8_t *flags) {
    sig = normalize(sig, &exp);
    if (is_radix4(z)) return round_pack_to_r4(z, env, sign, exp, sig, flags);
    return round_pack_to_r2(z, env, sign, exp, sig, flags);
}

/* ---- operations ----------------------------------------------------------------------------------- */

/* The exact sum of two nonzero finite values (a sign-magnitude add of aligned significands,
 * SoftFloat's addMags/subMags), rounded into z. Both significands are normalized to SIG_TOP; the one
 * with the smaller exponent is shifted right with jamming. When the exponents differ by 2 or more,
 * the difference loses at most one leading bit, so the jam stays far below the rounding position;
 * when they differ by 0 or 1, nothing nonzero is shifted out (the significands have <= 62 bits). */
static uint32_t add_finite(const ns_format *z, const ns_fp_env *env, int sa, int ea, uint64_t ma, int sb, int eb,
                           uint64_t mb, uint8_t *flags) {
    ma = normalize(ma, &ea);
    mb = normalize(mb, &eb);
    if (ea < eb) {
        int t = sa; sa = sb; sb = t;
        t = ea; ea = eb; eb = t;
        uint64_t m = ma; ma = mb; mb = m;
    }
    mb = shift_right_jam64(mb, ea - eb);
    if (sa == sb) return round_pack_to_format(z, env, sa, ea, ma + mb, flags);  /* < 2^64 */
    if (ma == mb) return pack_zero(z, env->rounding == NS_ROUND_TOWARD_NEG);   /* exact zero: +0, or -0 toward -inf */
    if (ma > mb) return round_pack_to_format(z, env, sa, ea, ma - mb, flags);
    return round_pack_to_format(z, env, sb, ea, mb - ma, flags);
}

static uint32_t add_sub(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a, uint32_t b,
                        int subtract, uint8_t *flags) {
    fp_unpacked A = unpack(fa, a), B = unpack(fa, b);
    if (A.cls == FP_NAN || B.cls == FP_NAN) return pack_nan_of(z, propagate_nan(env, A, B, flags), flags);
    if (subtract) B.sign ^= 1;
    if (A.cls == FP_INF) {
        if (B.cls == FP_INF && A.sign != B.sign) { *flags |= NS_FP_FLAG_INVALID; return default_nan(z, env, flags); }
        return pack_inf(z, env, A.sign, NS_FP_FLAG_INVALID, flags);
    }
    if (B.cls == FP_INF) return pack_inf(z, env, B.sign, NS_FP_FLAG_INVALID, flags);
    if (A.cls == FP_ZERO && B.cls == FP_ZERO)
        return pack_zero(z, A.sign == B.sign ? A.sign : env->rounding == NS_ROUND_TOWARD_NEG);
    if (A.cls == FP_ZERO) return round_pack_to_format(z, env, B.sign, B.exp, B.sig, flags);
    if (B.cls == FP_ZERO) return round_pack_to_format(z, env, A.sign, A.exp, A.sig, flags);
    return add_finite(z, env, A.sign, A.exp, A.sig, B.sign, B.exp, B.sig, flags);
}

uint32_t ns_fp_add(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags) {
    return add_sub(fa, fz, env, a, b, 0, flags);
}

uint32_t ns_fp_sub(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags) {
    return add_sub(fa, fz, env, a, b, 1, flags);
}

uint32_t ns_fp_mul(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags) {
    const fp_unpacked A = unpack(fa, a), B = unpack(fa, b);
    const int sign = A.sign ^ B.sign;
    if (A.cls == FP_NAN || B.cls == FP_NAN) return pack_nan_of(z, propagate_nan(env, A, B, flags), flags);
    if (A.cls == FP_INF || B.cls == FP_INF) {
        if (A.cls == FP_ZERO || B.cls == FP_ZERO) { *flags |= NS_FP_FLAG_INVALID; return default_nan(z, env, flags); }
        return pack_inf(z, env, sign, NS_FP_FLAG_INVALID, flags);
    }
    if (A.cls == FP_ZERO || B.cls == FP_ZERO) return pack_zero(z, sign);
    return round_pack_to_format(z, env, sign, A.exp + B.exp, A.sig * B.sig, flags);  /* < 2^62: exact */
}

/* Division by restoring long division of the normalized significands: 63 - 30 = 33 or more quotient
 * bits, the remainder jammed into bit 0 (SoftFloat's f16_div with a 64-bit quotient). */
uint32_t ns_fp_div(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags) {
    const fp_unpacked A = unpack(fa, a), B = unpack(fa, b);
    const int sign = A.sign ^ B.sign;
    if (A.cls == FP_NAN || B.cls == FP_NAN) return pack_nan_of(z, propagate_nan(env, A, B, flags), flags);
    if (A.cls == FP_INF) {
        if (B.cls == FP_INF) { *flags |= NS_FP_FLAG_INVALID; return default_nan(z, env, flags); }
        return pack_inf(z, env, sign, NS_FP_FLAG_INVALID, flags);
    }
    if (B.cls == FP_INF) return pack_zero(z, sign);
    if (B.cls == FP_ZERO) {
        if (A.cls == FP_ZERO) { *flags |= NS_FP_FLAG_INVALID; return default_nan(z, env, flags); }
        *flags |= NS_FP_FLAG_INFINITE;
        return pack_inf(z, env, sign, 0, flags);
    }
    if (A.cls == FP_ZERO) return pack_zero(z, sign);
    const int shift = 63 - ns_msb64(A.sig);
    const uint64_t num = A.sig << shift;          /* leading one at bit 63 */
    uint64_t q = num / B.sig;                     /* > 2^63 / 2^31: at least 33 bits */
    q |= (num % B.sig) != 0;
    return round_pack_to_format(z, env, sign, A.exp - shift - B.exp, q, flags);
}

/* a * b + c with one rounding, following softfloat_mulAddF16 case by case for the specials (the order
 * in which NaNs propagate and invalid is raised); the finite case is add_finite on the exact product. */
uint32_t ns_fp_fma(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint32_t c, uint8_t *flags) {
    const fp_unpacked A = unpack(fa, a), B = unpack(fa, b), C = unpack(z, c);
    const int sp = A.sign ^ B.sign;
    fp_unpacked Z;
    if (A.cls == FP_NAN || B.cls == FP_NAN) {
        Z = propagate_nan(env, A, B, flags);
        return pack_nan_of(z, propagate_nan(env, Z, C, flags), flags);
    }
    if (A.cls == FP_INF || B.cls == FP_INF) {
        if (A.cls != FP_ZERO && B.cls != FP_ZERO) {
            if (C.cls == FP_NAN) {
                Z.cls = FP_INF;  /* inf * x + NaN: the NaN propagates */
                Z.sign = sp; Z.exp = 0; Z.sig = 0; Z.payload = 0; Z.snan = 0;
                return pack_nan_of(z, propagate_nan(env, Z, C, flags), flags);
            }
            if (C.cls != FP_INF || C.sign == sp) return pack_inf(z, env, sp, NS_FP_FLAG_INVALID, flags);
        }
        /* inf * 0, or inf - inf: invalid, then the default NaN meets c */
        *flags |= NS_FP_FLAG_INVALID;
        return pack_nan_of(z, propagate_nan(env, default_nan_operand(env), C, flags), flags);
    }
    if (C.cls == FP_NAN) {
        fp_unpacked zero;
        zero.cls = FP_ZERO; zero.sign = 0; zero.exp = 0; zero.sig = 0; zero.payload = 0; zero.snan = 0;
        return pack_nan_of(z, propagate_nan(env, zero, C, flags), flags);
    }
    if (C.cls == FP_INF) return pack_inf(z, env, C.sign, NS_FP_FLAG_INVALID, flags);
    if (A.cls == FP_ZERO || B.cls == FP_ZERO) {
        if (C.cls == FP_ZERO) return pack_zero(z, sp == C.sign ? sp : env->rounding == NS_ROUND_TOWARD_NEG);
        return round_pack_to_format(z, env, C.sign, C.exp, C.sig, flags);
    }
    if (C.cls == FP_ZERO) return round_pack_to_format(z, env, sp, A.exp + B.exp, A.sig * B.sig, flags);
    return add_finite(z, env, sp, A.exp + B.exp, A.sig * B.sig, C.sign, C.exp, C.sig, flags);
}

/* ---- integer conversions (SoftFloat's f16_to_i32 / i32_to_f16 for any numsim integer format) ---------- */

enum { INT_POS_OVERFLOW = 0, INT_NEG_OVERFLOW = 1, INT_FROM_NAN = 2 };

static inline uint32_t int_mask(const ns_format *z) {
    return z->bits == 32 ? UINT32_C(0xFFFFFFFF) : ((UINT32_C(1) << z->bits) - 1);
}
static inline uint64_t int_max_pos(const ns_format *z) {
    return z->is_signed ? (UINT64_C(1) << (z->bits - 1)) - 1 : (uint64_t)int_mask(z);
}
static inline uint64_t int_max_neg(const ns_format *z) {    /* largest magnitude of a negative value */
    if (!z->is_signed) return 0;
    return z->symmetric ? int_max_pos(z) : int_max_pos(z) + 1;
}
static inline uint32_t int_pack(const ns_format *z, int negative, uint64_t mag) {
    return (uint32_t)((negative ? (UINT64_C(0) - mag) : mag) & int_mask(z));
}

/* The integer an invalid conversion returns (SoftFloat's i32_fromPosOverflow, ..._fromNaN). */
static uint32_t int_invalid_result(const ns_format *z, const ns_fp_env *env, int why) {
    const uint32_t all_ones = int_mask(z);
    const uint32_t max_pos = (uint32_t)int_max_pos(z), min_neg = int_pack(z, 1, int_max_neg(z));
    switch (env->nan_rule) {
    case NS_FP_NAN_X86_SSE:  /* the "integer indefinite": the most negative code, or all ones */
        return z->is_signed ? min_neg : all_ones;
    case NS_FP_NAN_ARM:
        if (why == INT_FROM_NAN) return 0;
        return why == INT_POS_OVERFLOW ? max_pos : min_neg;
    default:
        if (why == INT_FROM_NAN) return max_pos;
        return why == INT_POS_OVERFLOW ? max_pos : min_neg;
    }
}

static uint32_t float_to_int(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a,
                             uint8_t *flags) {
    const fp_unpacked A = unpack(fa, a);
    uint64_t n;
    int inexact = 0;
    if (A.cls == FP_NAN) { *flags |= NS_FP_FLAG_INVALID; return int_invalid_result(z, env, INT_FROM_NAN); }
    if (A.cls == FP_INF) goto invalid;
    if (A.cls == FP_ZERO) return 0;
    if (A.exp >= 0) {
        if (A.exp + ns_msb64(A.sig) >= 33) goto invalid;    /* >= 2^33: past every 32-bit integer */
        n = A.sig << A.exp;
    } else {
        /* round_to_odd of an integer: the magnitude's last bit is the integer's (SoftFloat's roundToI32) */
        n = round_shift(A.sig, -A.exp, magnitude_mode(env->rounding, A.sign), &inexact);
    }
    if (n > (A.sign ? int_max_neg(z) : int_max_pos(z))) goto invalid;
    if (inexact && env->exact) *flags |= NS_FP_FLAG_INEXACT;
    return int_pack(z, A.sign && n, n);

invalid:
    *flags |= NS_FP_FLAG_INVALID;
    return int_invalid_result(z, env, A.sign ? INT_NEG_OVERFLOW : INT_POS_OVERFLOW);
}

static uint32_t int_to_float(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a,
                             uint8_t *flags) {
    const int negative = fa->is_signed && ((a >> (fa->bits - 1)) & 1);
    const uint64_t mag = negative ? (UINT64_C(1) << fa->bits) - a : a;
    if (!mag) return pack_zero(z, 0);
    return round_pack_to_format(z, env, negative, 0, mag, flags);
}

uint32_t ns_fp_convert(const ns_format *fa, const ns_format *z, const ns_fp_env *env, uint32_t a, uint8_t *flags) {
    if (fa->kind == NS_KIND_INT) return int_to_float(fa, z, env, a, flags);
    if (z->kind == NS_KIND_INT) return float_to_int(fa, z, env, a, flags);
    const fp_unpacked A = unpack(fa, a);
    switch (A.cls) {
    case FP_NAN: return pack_nan_of(z, propagate_nan(env, A, A, flags), flags);
    case FP_INF: return pack_inf(z, env, A.sign, NS_FP_FLAG_INVALID, flags);
    case FP_ZERO: return pack_zero(z, A.sign);
    default: return round_pack_to_format(z, env, A.sign, A.exp, A.sig, flags);
    }
}

/* ---- the rules the MAC units share (csrc/units.c) ------------------------------------------------ */

uint32_t ns_fp_round_double(const ns_format *z, const ns_fp_env *env, double x, uint8_t *flags) {
    const uint64_t u = ns_f64_bits(x);
    const int biased = (int)((u >> 52) & 0x7FF);
    uint64_t sig = u & ((UINT64_C(1) << 52) - 1);
    if (biased) sig |= UINT64_C(1) << 52;
    return round_pack_to_format(z, env, (int)(u >> 63), biased ? biased - 1075 : -1074, sig, flags);
}

/* An operand of a unit: an integer code is a finite value (or zero) for the specials' purposes. */
static fp_unpacked unpack_operand(const ns_format *f, uint32_t code) {
    if (f->kind != NS_KIND_INT) return unpack(f, code);
    fp_unpacked u;
    u.cls = code ? FP_FINITE : FP_ZERO;
    u.sign = f->is_signed && ((code >> (f->bits - 1)) & 1);
    u.exp = 0; u.sig = 0; u.snan = 0; u.payload = 0;
    return u;
}

typedef struct nan_fold { int have, snan; fp_unpacked nan; } nan_fold;

/* The next NaN of a register update meets the ones before it (SoftFloat's propagateNaN; the first
 * meets itself, which quiets it and raises invalid when it signals). */
static void fold_nan(nan_fold *f, const ns_fp_env *env, fp_unpacked x, uint8_t *flags) {
    f->snan |= x.snan;
    f->nan = propagate_nan(env, f->have ? f->nan : x, x, flags);
    f->have = 1;
}

int ns_fp_fused_specials(const ns_format *fa, const ns_format *fb, const ns_format *z, const ns_fp_env *env,
                         int32_t unit_nan, const uint32_t *acc, int n_acc, const uint32_t *a, int64_t as,
                         const uint32_t *b, int64_t bs, int64_t n, uint32_t *out, uint8_t *flags) {
    ns_fp_env e = *env;
    nan_fold nf = {0, 0, default_nan_operand(env)};
    int invalid = 0, pos_inf = 0, neg_inf = 0, first_acc_nan = -1;
    uint8_t fl = 0;
    /* the default rule's NaN propagation is its own; flags are SoftFloat's (x86 raises as the others) */
    e.nan_rule = unit_nan == NS_UNIT_NAN_DEFAULT ? NS_FP_NAN_X86_SSE : unit_nan - 1;
    for (int64_t i = 0; i < n; i++) {
        const fp_unpacked A = unpack_operand(fa, a[i * as]), B = unpack_operand(fb, b[i * bs]);
        if (A.cls == FP_NAN || B.cls == FP_NAN) {
            fp_unpacked P = propagate_nan(&e, A, B, &fl);
            nf.snan |= (A.cls == FP_NAN && A.snan) || (B.cls == FP_NAN && B.snan);
            fold_nan(&nf, &e, P, &fl);
        } else if (A.cls == FP_INF || B.cls == FP_INF) {
            if (A.cls == FP_ZERO || B.cls == FP_ZERO) { invalid = 1; fold_nan(&nf, &e, default_nan_operand(&e), &fl); }
            else if (A.sign ^ B.sign) neg_inf = 1;
            else pos_inf = 1;
        }
    }
    for (int j = 0; j < n_acc; j++) {
        const fp_unpacked C = unpack(z, acc[j]);
        if (C.cls == FP_NAN) { if (first_acc_nan < 0) first_acc_nan = j; fold_nan(&nf, &e, C, &fl); }
        else if (C.cls == FP_INF) { if (C.sign) neg_inf = 1; else pos_inf = 1; }
    }
    if (!nf.have && !pos_inf && !neg_inf) return 0;
    if (invalid) fl |= NS_FP_FLAG_INVALID;
    if (nf.have) {
        if (unit_nan != NS_UNIT_NAN_DEFAULT) *out = pack_nan_of(z, nf.nan, &fl);
        else if (first_acc_nan >= 0) *out = pack_nan_of(z, unpack(z, acc[first_acc_nan]), &fl);
        else *out = pack_nan(z, 1, 0, &fl);
    } else if (pos_inf && neg_inf) {
        fl |= NS_FP_FLAG_INVALID;
        *out = unit_nan == NS_UNIT_NAN_DEFAULT ? pack_nan(z, 1, 0, &fl) : default_nan(z, &e, &fl);
    } else {
        *out = inf_code(z, neg_inf);
    }
    *flags |= fl;
    return 1;
}

/* ---- vector entries ----------------------------------------------------------------------------- */

static int valid_float_format(const ns_format *f) {
    if (!f || f->kind != NS_KIND_FLOAT || f->bits < 2 || f->bits > 32 || f->exp_bits < 1 || f->exp_bits > 10 ||
        f->man_bits < 0 || f->man_bits > 30 || f->bits != 1 + f->exp_bits + f->man_bits)
        return 0;
    if (f->specials < NS_SPECIALS_IEEE || f->specials > NS_SPECIALS_NONE) return 0;
    if (f->radix_log2 == 2)
        return f->man_bits == 0 && f->specials == NS_SPECIALS_NONE && (f->phase == 0 || f->phase == 1);
    if (f->radix_log2 != 1 || f->phase != 0) return 0;
    return !((f->specials == NS_SPECIALS_IEEE || f->specials == NS_SPECIALS_FN) && f->man_bits < 1);
}

static int valid_int_format(const ns_format *f) {
    return f && f->kind == NS_KIND_INT && f->bits >= 1 && f->bits <= 32 && (f->is_signed == 0 || f->is_signed == 1) &&
           (f->symmetric == 0 || (f->symmetric == 1 && f->is_signed)) && !(f->is_signed && f->bits < 2);
}

static int valid_env(const ns_fp_env *e, const ns_format *z) {
    if (!e) return 0;
    if (z->kind == NS_KIND_INT)
        return ((e->rounding >= NS_ROUND_NEAREST_EVEN && e->rounding <= NS_ROUND_TOWARD_POS) ||
                e->rounding == NS_FP_ROUND_ODD) && e->nan_rule >= NS_FP_NAN_X86_SSE && e->nan_rule <= NS_FP_NAN_RISCV &&
               (e->exact == 0 || e->exact == 1);
    if (!((e->rounding >= NS_ROUND_NEAREST_EVEN && e->rounding <= NS_ROUND_TOWARD_POS) ||
          (e->rounding == NS_FP_ROUND_ODD && !is_radix4(z))))
        return 0;
    if (e->overflow != NS_OVF_TO_INF && e->overflow != NS_OVF_SATURATE && e->overflow != NS_OVF_TO_NAN) return 0;
    if (e->overflow == NS_OVF_TO_INF && z->specials != NS_SPECIALS_IEEE) return 0;
    if (e->overflow == NS_OVF_TO_NAN && z->specials == NS_SPECIALS_NONE) return 0;
    if (e->tininess != NS_FP_TININESS_BEFORE_ROUNDING && e->tininess != NS_FP_TININESS_AFTER_ROUNDING) return 0;
    return e->nan_rule >= NS_FP_NAN_X86_SSE && e->nan_rule <= NS_FP_NAN_RISCV;
}

static int32_t check_codes(const uint32_t *x, size_t n, const ns_format *f, int64_t *err_index) {
    const uint64_t limit = UINT64_C(1) << f->bits;
    /* a symmetric integer format excludes its most negative code */
    const uint64_t excluded = (f->kind == NS_KIND_INT && f->symmetric) ? UINT64_C(1) << (f->bits - 1) : limit;
    for (size_t i = 0; i < n; i++)
        if ((uint64_t)x[i] >= limit || (uint64_t)x[i] == excluded) { *err_index = (int64_t)i; return NS_ERR_CODE; }
    return NS_OK;
}

int32_t ns_fp_binary_vec(int32_t op, const ns_format *fa, const ns_format *fz, const ns_fp_env *env,
                         const uint32_t *a, const uint32_t *b, size_t n, uint32_t *z, uint8_t *flags,
                         int64_t *err_index) {
    if (op < NS_FP_OP_ADD || op > NS_FP_OP_DIV || !valid_float_format(fa) || !valid_float_format(fz) ||
        !valid_env(env, fz))
        return NS_ERR_ARG;
    if (check_codes(a, n, fa, err_index) || check_codes(b, n, fa, err_index)) return NS_ERR_CODE;
    for (size_t i = 0; i < n; i++) {
        uint8_t fl = 0;
        switch (op) {
        case NS_FP_OP_ADD: z[i] = ns_fp_add(fa, fz, env, a[i], b[i], &fl); break;
        case NS_FP_OP_SUB: z[i] = ns_fp_sub(fa, fz, env, a[i], b[i], &fl); break;
        case NS_FP_OP_MUL: z[i] = ns_fp_mul(fa, fz, env, a[i], b[i], &fl); break;
        default: z[i] = ns_fp_div(fa, fz, env, a[i], b[i], &fl); break;
        }
        flags[i] = fl;
    }
    return NS_OK;
}

int32_t ns_fp_fma_vec(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, const uint32_t *a,
                      const uint32_t *b, const uint32_t *c, size_t n, uint32_t *z, uint8_t *flags,
                      int64_t *err_index) {
    if (!valid_float_format(fa) || !valid_float_format(fz) || !valid_env(env, fz)) return NS_ERR_ARG;
    if (check_codes(a, n, fa, err_index) || check_codes(b, n, fa, err_index) || check_codes(c, n, fz, err_index))
        return NS_ERR_CODE;
    for (size_t i = 0; i < n; i++) {
        uint8_t fl = 0;
        z[i] = ns_fp_fma(fa, fz, env, a[i], b[i], c[i], &fl);
        flags[i] = fl;
    }
    return NS_OK;
}

int32_t ns_fp_convert_vec(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, const uint32_t *a,
                          size_t n, uint32_t *z, uint8_t *flags, int64_t *err_index) {
    const int fa_ok = valid_float_format(fa) || (valid_int_format(fa) && valid_float_format(fz));
    const int fz_ok = valid_float_format(fz) || (valid_int_format(fz) && valid_float_format(fa));
    if (!fa_ok || !fz_ok || !valid_env(env, fz)) return NS_ERR_ARG;
    if (check_codes(a, n, fa, err_index)) return NS_ERR_CODE;
    for (size_t i = 0; i < n; i++) {
        uint8_t fl = 0;
        z[i] = ns_fp_convert(fa, fz, env, a[i], &fl);
        flags[i] = fl;
    }
    return NS_OK;
}
