/* Encode (round + pack) and decode of every numsim format.
 *
 * Every encode goes through ns_round_pack: the input is a float64 (float32 inputs are widened
 * exactly first), so each value is rounded once from its exact value. A finite nonzero input is
 * |x| = sig * 2^e2 with sig < 2^53; rounding to the format's quantum 2^qe is an integer shift of sig
 * (ns_round_shift_right), so no floating-point arithmetic touches the rounding decision. */
#include <math.h>
#include "numsim.h"
#include "ns_internal.h"
#include "encode_f32_isa.h"

static inline uint32_t random_bits(uint64_t seed, uint64_t index, int32_t nbits) {
    return ns_rng_bits(ns_seed_key(seed), index, nbits);
}
uint32_t ns_random_bits(uint64_t seed, uint64_t index, int32_t nbits) { return random_bits(seed, index, nbits); }

/* ---- float format geometry ------------------------------------------------------------ */

static inline int field_max(const ns_format *f) {           /* largest finite exponent field */
    int all_ones = (1 << f->exp_bits) - 1;
    return f->specials == NS_SPECIALS_IEEE ? all_ones - 1 : all_ones;
}
static inline uint32_t man_max_at_top(const ns_format *f) {  /* largest mantissa at field_max */
    uint32_t all_ones = (UINT32_C(1) << f->man_bits) - 1;
    return f->specials == NS_SPECIALS_FN ? all_ones - 1 : all_ones;
}
static inline uint32_t sign_bit(const ns_format *f) { return UINT32_C(1) << (f->bits - 1); }
static inline int has_inf(const ns_format *f) { return f->specials == NS_SPECIALS_IEEE; }
static inline int has_nan(const ns_format *f) { return f->specials != NS_SPECIALS_NONE; }

static inline uint32_t max_finite_code(const ns_format *f, int negative) {
    uint32_t mag;
    if (f->radix_log2 == 2) mag = (uint32_t)field_max(f);
    else mag = ((uint32_t)field_max(f) << f->man_bits) | man_max_at_top(f);
    return (negative ? sign_bit(f) : 0) | mag;
}
static inline uint32_t inf_code(const ns_format *f, int negative) {
    return (negative ? sign_bit(f) : 0) | (((UINT32_C(1) << f->exp_bits) - 1) << f->man_bits);
}
static inline uint32_t zero_code(const ns_format *f, int negative) {
    /* fnuz has no negative zero: its code is the NaN. */
    if (f->specials == NS_SPECIALS_FNUZ) return 0;
    return negative ? sign_bit(f) : 0;
}
/* NaN: IEEE keeps the sign and the top payload bits with the quiet bit set (as x86 F16C does). */
static inline uint32_t nan_code(const ns_format *f, int negative, uint64_t f64_payload) {
    switch (f->specials) {
    case NS_SPECIALS_IEEE: {
        uint32_t man = (UINT32_C(1) << (f->man_bits - 1)) | (uint32_t)(f64_payload >> (52 - f->man_bits));
        return inf_code(f, negative) | man;
    }
    case NS_SPECIALS_FN: return (negative ? sign_bit(f) : 0) | ((UINT32_C(1) << (f->bits - 1)) - 1);
    default: return sign_bit(f); /* fnuz: the negative-zero code */
    }
}

/* Overflow of a float format: the rounded magnitude (with unbounded exponent) exceeds max finite. */
static inline uint32_t float_overflow(const ns_format *f, const ns_encode_opts *o, int negative, int mag_mode,
                               int32_t *status) {
    switch (o->overflow) {
    case NS_OVF_TO_INF:  /* IEEE 754: modes that round the magnitude down stop at max finite */
        return mag_mode == NS_MAG_DOWN ? max_finite_code(f, negative) : inf_code(f, negative);
    case NS_OVF_TO_NAN: return nan_code(f, negative, 0);
    case NS_OVF_ERROR: *status = NS_ERR_OVERFLOW; return 0;
    default: return max_finite_code(f, negative);
    }
}

/* ---- radix-2 floats --------------------------------------------------------------------- */

/* Format geometry and policies resolved once per call, so the per-element path is lean. */
typedef struct r2_geom {
    int M, emin, emax, fmax, flush, subnormals;
    uint32_t man_top, sign;
    uint64_t nbits_mask;
} r2_geom;

static inline r2_geom r2_prepare(const ns_format *f, const ns_encode_opts *o) {
    r2_geom g;
    g.M = f->man_bits;
    g.emin = 1 - f->bias;
    g.fmax = field_max(f);
    g.emax = g.fmax - f->bias;
    g.flush = o->underflow == NS_UNF_FLUSH;
    g.subnormals = f->subnormals;
    g.man_top = man_max_at_top(f);
    g.sign = sign_bit(f);
    g.nbits_mask = 0;
    return g;
}

static inline uint32_t round_pack_float_r2(int negative, uint64_t sig, int e2, const ns_format *f, const r2_geom *g,
                                           const ns_encode_opts *o, int mag_mode, uint64_t index, int32_t *status) {
    const int M = g->M;
    const int ue = ns_msb64(sig) + e2;            /* floor(log2 |x|) */

    if (ue < g->emin && g->flush) return zero_code(f, negative);
    if (ue > g->emax + 1) return float_overflow(f, o, negative, mag_mode, status);

    int qe;                                       /* exponent of the quantum at |x| */
    int gap = 0;                                  /* no subnormals: [0, 2^emin) rounds to 0 or 2^emin */
    if (ue >= g->emin) qe = ue - M;
    else if (g->subnormals) qe = g->emin - M;
    else { qe = g->emin; gap = 1; }

    uint32_t rnd = mag_mode == NS_MAG_STOCHASTIC ? random_bits(o->seed, index, o->random_bits) : 0;
    uint64_t n = ns_round_shift_right(sig, qe - e2, mag_mode, rnd, o->random_bits);
    if (n == 0) return zero_code(f, negative);
    if (gap) { n = UINT64_C(1) << M; qe = g->emin - M; }
    if (n >> (M + 1)) { n >>= 1; qe++; }          /* carried into the next binade */

    uint32_t field, man;
    if (n >> M) { field = (uint32_t)(qe + M + f->bias); man = (uint32_t)(n - (UINT64_C(1) << M)); }
    else { field = 0; man = (uint32_t)n; }        /* subnormal */
    if ((int)field > g->fmax || ((int)field == g->fmax && man > g->man_top))
        return float_overflow(f, o, negative, mag_mode, status);
    return (negative ? g->sign : 0) | (field << M) | man;
}

/* ---- radix-4 floats (no mantissa): value = 4^(field - bias) * 2^-phase ------------------ */

static inline uint32_t round_pack_float_r4(int negative, uint64_t sig, int e2, double ax, const ns_format *f,
                                           const ns_encode_opts *o, int mag_mode, uint64_t index, int32_t *status) {
    const int fmin = f->r4_zero == NS_R4_ZERO_EXP0 ? 1 : 0;
    const int fmax = (1 << f->exp_bits) - 1;
    const uint32_t s = negative ? sign_bit(f) : 0;
    e2 += f->phase;                               /* work on |x| * 2^phase: the even grid 4^k */
    const int ue = ns_msb64(sig) + e2;
    int k = ue >= 0 ? ue / 2 : -((1 - ue) / 2);   /* floor(ue / 2): |x| in [4^k, 4^(k+1)) */
    const int kmin = fmin - f->bias, kmax = fmax - f->bias;

    if (k < kmin) {                               /* below the smallest magnitude 4^kmin */
        if (f->r4_zero == NS_R4_ZERO_NONE) return s | (uint32_t)fmin;  /* no zero to go to */
        if (o->underflow == NS_UNF_FLUSH) return zero_code(f, negative);
        /* Between 0 and 4^kmin the grid is linear: round |x| / 4^kmin to 0 or 1. */
        uint32_t rnd = mag_mode == NS_MAG_STOCHASTIC ? random_bits(o->seed, index, o->random_bits) : 0;
        uint64_t n = ns_round_shift_right(sig, 2 * kmin - e2, mag_mode, rnd, o->random_bits);
        return n ? s | (uint32_t)fmin : zero_code(f, negative);
    }
    if (k > kmax) return float_overflow(f, o, negative, mag_mode, status);

    double r = ldexp(ax, f->phase - 2 * k);       /* |x| / 4^k in [1, 4), exact */
    int up;
    if (r == 1.0) up = 0;
    else switch (mag_mode) {
    case NS_MAG_DOWN: up = 0; break;
    case NS_MAG_UP: up = 1; break;
    case NS_MAG_STOCHASTIC: {
        /* P(up) = (r - 1) / 3, truncated to random_bits bits: m = (r - 1) * 2^52 is an exact integer. */
        uint64_t m = (uint64_t)ldexp(r - 1.0, 52);
        uint64_t frac = (m / 3) >> (52 - o->random_bits);
        up = (int)((frac + random_bits(o->seed, index, o->random_bits)) >> o->random_bits);
        break;
    }
    default: {
        double threshold = f->r4_threshold == NS_R4_LOG ? 2.0 : 2.5;
        if (r != threshold) up = r > threshold;
        else if (mag_mode == NS_MAG_NEAREST_AWAY) up = 1;
        else up = ((k + f->bias) & 1) != 0;      /* tie: to the even exponent field */
    }
    }
    k += up;
    if (k > kmax) return float_overflow(f, o, negative, mag_mode, status);
    return s | (uint32_t)(k + f->bias);
}

/* ---- integers ----------------------------------------------------------------------------- */

static inline uint32_t round_pack_int(int negative, uint64_t sig, int e2, const ns_format *f,
                                      const ns_encode_opts *o, int mag_mode, uint64_t index, int32_t *status) {
    const int ue = ns_msb64(sig) + e2;
    const uint64_t mask = f->bits == 32 ? UINT64_C(0xFFFFFFFF) : ((UINT64_C(1) << f->bits) - 1);
    uint64_t max_pos, max_neg;                    /* largest magnitudes of each sign */
    if (f->is_signed) {
        max_pos = (UINT64_C(1) << (f->bits - 1)) - 1;
        max_neg = f->symmetric ? max_pos : max_pos + 1;
    } else { max_pos = mask; max_neg = 0; }
    const uint64_t limit = negative ? max_neg : max_pos;

    uint64_t n;
    int too_big = 0;
    if (ue >= 63) {                               /* an exact integer past 64 bits: keep it mod 2^64 */
        too_big = 1;
        n = e2 >= 64 ? 0 : (sig << e2);
    } else {
        uint32_t rnd = mag_mode == NS_MAG_STOCHASTIC ? random_bits(o->seed, index, o->random_bits) : 0;
        n = ns_round_shift_right(sig, -e2, mag_mode, rnd, o->random_bits);
    }
    if (!too_big && n <= limit) {
        if (n == 0) return 0;
        return (uint32_t)((negative ? (UINT64_C(0) - n) : n) & mask);
    }
    switch (o->overflow) {
    case NS_OVF_WRAP: return (uint32_t)((negative ? (UINT64_C(0) - n) : n) & mask);
    case NS_OVF_ERROR: *status = NS_ERR_OVERFLOW; return 0;
    default: return (uint32_t)((negative ? (UINT64_C(0) - limit) : limit) & mask);
    }
}

/* ---- the one entry point of every encode --------------------------------------------------- */

static inline uint32_t round_pack(double x, const ns_format *f, const r2_geom *g, const ns_encode_opts *o,
                                  const int mag_modes[2], uint64_t index, int32_t *status) {
    const uint64_t u = ns_f64_bits(x);
    const int negative = (int)(u >> 63);
    const uint64_t a = u & ~(UINT64_C(1) << 63);
    const uint64_t EXP = UINT64_C(0x7FF) << 52;
    *status = NS_OK;

    if (a > EXP) {                                /* NaN */
        if (f->kind == NS_KIND_FLOAT && has_nan(f)) return nan_code(f, negative, a & ((UINT64_C(1) << 52) - 1));
        if (o->nan_policy == NS_NAN_ZERO) return 0;
        *status = NS_ERR_NAN; return 0;
    }
    if (a == EXP) {                               /* infinity: the overflow policy decides */
        if (f->kind == NS_KIND_INT) { *status = NS_ERR_INF; return 0; }
        switch (o->overflow) {
        case NS_OVF_TO_INF: return inf_code(f, negative);
        case NS_OVF_TO_NAN: return nan_code(f, negative, 0);
        case NS_OVF_ERROR: *status = NS_ERR_INF; return 0;
        default: return max_finite_code(f, negative);
        }
    }
    if (a == 0) return f->kind == NS_KIND_INT ? 0 : zero_code(f, negative);

    uint64_t sig; int e2;
    const int biased = (int)(a >> 52);
    if (biased) { sig = (a & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52); e2 = biased - 1075; }
    else { sig = a; e2 = -1074; }

    const int mag_mode = mag_modes[negative];
    if (f->kind == NS_KIND_INT) return round_pack_int(negative, sig, e2, f, o, mag_mode, index, status);
    if (f->radix_log2 == 2) return round_pack_float_r4(negative, sig, e2, ns_f64_from_bits(a), f, o, mag_mode, index, status);
    return round_pack_float_r2(negative, sig, e2, f, g, o, mag_mode, index, status);
}

uint32_t ns_round_pack(double x, const ns_format *f, const ns_encode_opts *o, uint64_t index, int32_t *status) {
    const r2_geom g = r2_prepare(f, o);
    const int modes[2] = {ns_magnitude_mode(o->rounding, 0), ns_magnitude_mode(o->rounding, 1)};
    return round_pack(x, f, &g, o, modes, index, status);
}

/* ---- decode ----------------------------------------------------------------------------- */

static inline double unpack(uint32_t code, const ns_format *f) {
    if (f->kind == NS_KIND_INT) {
        if (f->is_signed && (code >> (f->bits - 1)))
            return (double)((int64_t)code - ((int64_t)1 << f->bits));
        return (double)code;
    }
    const int negative = (int)(code >> (f->bits - 1));
    const uint32_t mag = code & (sign_bit(f) - 1);
    const double sgn = negative ? -1.0 : 1.0;
    if (f->specials == NS_SPECIALS_FNUZ && code == sign_bit(f)) return NAN;
    if (f->radix_log2 == 2) {
        const int fmin = f->r4_zero == NS_R4_ZERO_EXP0 ? 1 : 0;
        if ((int)mag < fmin) return sgn * 0.0;
        return sgn * ldexp(1.0, 2 * ((int)mag - f->bias) - f->phase);
    }
    const uint32_t field = mag >> f->man_bits;
    const uint32_t man = mag & ((UINT32_C(1) << f->man_bits) - 1);
    const uint32_t all_ones = (UINT32_C(1) << f->exp_bits) - 1;
    if (f->specials == NS_SPECIALS_IEEE && field == all_ones) {
        if (!man) return sgn * INFINITY;
        /* NaN keeps its sign and payload bits, as a widening conversion does */
        return ns_f64_from_bits(((uint64_t)negative << 63) | (UINT64_C(0x7FF) << 52) |
                                ((uint64_t)man << (52 - f->man_bits)));
    }
    if (f->specials == NS_SPECIALS_FN && field == all_ones && man == (UINT32_C(1) << f->man_bits) - 1)
        return negative ? -NAN : NAN;
    if (field == 0) {
        if (!f->subnormals) return sgn * 0.0;       /* denormal encodings read as zero */
        return sgn * ldexp((double)man, 1 - f->bias - f->man_bits);
    }
    return sgn * ldexp((double)((UINT32_C(1) << f->man_bits) | man), (int)field - f->bias - f->man_bits);
}

double ns_unpack(uint32_t code, const ns_format *f) { return unpack(code, f); }

/* ---- vector drivers ------------------------------------------------------------------------- */

static inline uint32_t load_code(const void *codes, int32_t code_bytes, size_t i) {
    if (code_bytes == 1) return ((const uint8_t *)codes)[i];
    if (code_bytes == 2) return ((const uint16_t *)codes)[i];
    return ((const uint32_t *)codes)[i];
}

/* One loop per code width and input type, so the compiler sees a fixed store and load. */
#define ENCODE_LOOP(IN_T, CODE_T)                                                                   \
    do {                                                                                            \
        const IN_T *xs = (const IN_T *)x;                                                           \
        CODE_T *cs = (CODE_T *)codes;                                                               \
        for (size_t i = 0; i < n; i++) {                                                            \
            int32_t st;                                                                             \
            uint32_t c = round_pack((double)xs[i], f, &g, o, modes, o->index_offset + i, &st);      \
            if (st) { *err_index = (int64_t)i; return st; }                                         \
            cs[i] = (CODE_T)c;                                                                      \
        }                                                                                           \
    } while (0)

static int32_t encode_any(const void *x, int in_f32, size_t n, const ns_format *f, const ns_encode_opts *o,
                          void *codes, int32_t code_bytes, int64_t *err_index) {
    const r2_geom g = r2_prepare(f, o);
    const int modes[2] = {ns_magnitude_mode(o->rounding, 0), ns_magnitude_mode(o->rounding, 1)};
    if (in_f32) {
        if (code_bytes == 1) ENCODE_LOOP(float, uint8_t);
        else if (code_bytes == 2) ENCODE_LOOP(float, uint16_t);
        else ENCODE_LOOP(float, uint32_t);
    } else {
        if (code_bytes == 1) ENCODE_LOOP(double, uint8_t);
        else if (code_bytes == 2) ENCODE_LOOP(double, uint16_t);
        else ENCODE_LOOP(double, uint32_t);
    }
    return NS_OK;
}

int32_t ns_encode_f64(const double *x, size_t n, const ns_format *f, const ns_encode_opts *o,
                      void *codes, int32_t code_bytes, int64_t *err_index) {
    /* integer formats: encode_f64.c's per-mode loops give round_pack's bits, or decline */
    if (ns_encode_f64_int_kernel(x, n, f, o, codes, code_bytes)) return NS_OK;
    return encode_any(x, 0, n, f, o, codes, code_bytes, err_index);
}

int32_t ns_encode_f64_generic(const double *x, size_t n, const ns_format *f, const ns_encode_opts *o,
                              void *codes, int32_t code_bytes, int64_t *err_index) {
    return encode_any(x, 0, n, f, o, codes, code_bytes, err_index);
}

static inline int is_plain_fp16(const ns_format *f, const ns_encode_opts *o) {
    return f->kind == NS_KIND_FLOAT && f->radix_log2 == 1 && f->exp_bits == 5 && f->man_bits == 10 &&
           f->bias == 15 && f->subnormals && f->specials == NS_SPECIALS_IEEE &&
           o->rounding == NS_ROUND_NEAREST_EVEN && o->overflow == NS_OVF_TO_INF && o->underflow == NS_UNF_ROUND;
}

int32_t ns_encode_f32(const float *x, size_t n, const ns_format *f, const ns_encode_opts *o,
                      void *codes, int32_t code_bytes, int64_t *err_index) {
    /* IEEE binary16 round-to-nearest-even with overflow to inf is exactly what F16C computes. */
#ifdef NS_X86
    if (code_bytes == 2 && is_plain_fp16(f, o) && ns_level_f16c(ns_cpu_usable()) >= 1) {
        ns_encode_f32_fp16_f16c(x, n, (uint16_t *)codes);
        return NS_OK;
    }
#endif
    if (ns_encode_f32_kernel(x, n, f, o, codes, code_bytes)) return NS_OK;
    return encode_any(x, 1, n, f, o, codes, code_bytes, err_index);
}

int32_t ns_decode(const void *codes, int32_t code_bytes, size_t n, const ns_format *f, double *out,
                  int64_t *err_index) {
    const uint64_t limit = UINT64_C(1) << f->bits;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = load_code(codes, code_bytes, i);
        if ((uint64_t)c >= limit) { *err_index = (int64_t)i; return NS_ERR_CODE; }
        out[i] = unpack(c, f);
    }
    return NS_OK;
}
