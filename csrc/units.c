/* MAC units: the seeds' integer and FP4/FP8/FP16 datapaths.
 *
 * Integer units keep every register value as an exact int64 and fit it into its declared width
 * under the register's overflow policy (wrap / saturate / error). Float units compute every
 * accumulator add exactly and round once through ns_round_pack (the one rounding routine):
 *
 *  - When the formats prove the exact sum fits a double (sum_in_double, decided by numsim.mac from
 *    the formats and the fused width: every addend is a multiple of 2^exact_lsb and the magnitude of
 *    any partial sum is below 2^(exact_lsb + 53)), the terms are simply added in double: every
 *    partial sum is then representable, so no double addition rounds. This covers FP16 + FP16
 *    (quanta >= 2^-24, |sum| < 2^17), the 4-way INT4 x FP4 products plus an FP16 accumulator
 *    (quanta >= 2^-24, |sum| < 2^17) and single e4m3 x e4m3 products into FP16 (quanta >= 2^-24,
 *    |sum| < 2^19).
 *  - Otherwise (FP16 x FP16 into FP32, e5m2 products into FP16, ...) the terms are summed exactly
 *    in a 384-bit two's complement fixed-point integer whose LSB is 2^exact_lsb, and the sum is
 *    handed to ns_round_pack as a double rounded to odd at 53 bits (truncated, with the last bit set
 *    when anything nonzero was dropped). Rounding to odd at p + 2 or more bits and then rounding to
 *    p bits gives the correctly rounded result in every deterministic mode (Boldo & Melquiond,
 *    "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd",
 *    IEEE TC 2008); the accumulator formats have p <= 24 <= 51 and their quanta are far above the
 *    double's, so subnormal targets are covered too. Nothing is double-rounded in any mode.
 */
#include <math.h>
#include <stdlib.h>
#include "numsim.h"
#include "ns_internal.h"
#include "ns_threads.h"

/* ---- integer registers -------------------------------------------------------------------- */

/* Two's complement value of a code of a signed or unsigned integer format. */
static inline int64_t int_value(uint32_t code, const ns_format *f) {
    if (f->is_signed && ((code >> (f->bits - 1)) & 1)) return (int64_t)code - ((int64_t)1 << f->bits);
    return (int64_t)code;
}
static inline uint32_t int_code(int64_t v, int bits) {
    return (uint32_t)((uint64_t)v & (bits >= 32 ? UINT64_C(0xFFFFFFFF) : ((UINT64_C(1) << bits) - 1)));
}

/* Fit v into a signed `bits`-bit register under an ns_overflow policy. Returns 1 on an error. */
static inline int fit_signed(int64_t *v, int bits, int policy, int64_t *events) {
    const int64_t hi = ((int64_t)1 << (bits - 1)) - 1, lo = -hi - 1;
    if (*v >= lo && *v <= hi) return 0;
    if (policy == NS_OVF_ERROR) return 1;
    (*events)++;
    if (policy == NS_OVF_WRAP) {
        uint64_t w = (uint64_t)*v & ((UINT64_C(1) << bits) - 1);
        *v = (w >> (bits - 1)) ? (int64_t)w - ((int64_t)1 << bits) : (int64_t)w;
    } else {
        *v = *v > hi ? hi : lo;
    }
    return 0;
}

/* The 4b x 4b (in general a_bits x b_bits) product, exact, widened to widen_bits and shifted left
 * by the alignment shift: the widening register holds (a * b) << shift under widen_overflow. */
static inline int32_t widened_product(const ns_unit *u, uint32_t a, uint32_t b, int shift, int64_t *w,
                                      int64_t *events) {
    int64_t p = int_value(a, &u->a_fmt) * int_value(b, &u->b_fmt);
    *w = p * ((int64_t)1 << shift);
    return fit_signed(w, u->widen_bits, u->widen_overflow, events) ? NS_ERR_WIDEN_OVERFLOW : NS_OK;
}

static inline int32_t int_acc_add(const ns_unit *u, int64_t x, int64_t y, int64_t *out, int64_t *events) {
    *out = x + y;
    return fit_signed(out, u->acc_fmt.bits, u->acc_overflow, events) ? NS_ERR_OVERFLOW : NS_OK;
}

/* The per-sample shift: left by (max_shift - s) into the accumulator width, or right by s rounded. */
static inline int32_t sample_shift_apply(const ns_unit *u, int64_t *v, int s, int64_t *events) {
    if (u->shift_dir == NS_SHIFT_LEFT) {
        *v = *v * ((int64_t)1 << (u->max_shift - s));
        return fit_signed(v, u->acc_fmt.bits, u->shift_overflow, events) ? NS_ERR_SHIFT_OVERFLOW : NS_OK;
    }
    const int negative = *v < 0;
    const uint64_t mag = negative ? (uint64_t)0 - (uint64_t)*v : (uint64_t)*v;
    const uint64_t r = ns_round_shift_right(mag, s, ns_magnitude_mode(u->shift_rounding, negative), 0, 32);
    *v = negative ? -(int64_t)r : (int64_t)r;  /* |r| <= 2^31 >> 1 + 1: always fits */
    return NS_OK;
}

/* ---- float accumulators --------------------------------------------------------------------- */

typedef struct float_adder {
    const ns_format *f;       /* IEEE radix-2 accumulator format */
    ns_encode_opts o;
    int sum_in_double;
    int wide_only;            /* always use the 384-bit adder (tests compare the paths) */
    int lsb;
    double max_finite;        /* the format's largest finite value: overflow needs |exact sum| above it */
    ns_fp_env env;            /* the IEEE flags' rules (csrc/fpops.c): rounding, tininess, NaN rule */
    int32_t unit_nan;         /* ns_unit_nan */
} float_adder;

static inline uint32_t f_sign(const ns_format *f) { return UINT32_C(1) << (f->bits - 1); }
static inline uint32_t f_inf(const ns_format *f, int negative) {
    return (negative ? f_sign(f) : 0) | (((UINT32_C(1) << f->exp_bits) - 1) << f->man_bits);
}
/* The default NaN of an invalid operation: negative, quiet, zero payload (x86's "real indefinite"). */
static inline uint32_t f_default_nan(const ns_format *f) { return f_inf(f, 1) | (UINT32_C(1) << (f->man_bits - 1)); }

#define NS_LIMBS 6

/* Exact sum of finite doubles (each a multiple of 2^lsb), returned rounded to odd at 53 bits. */
static double exact_sum_to_odd(const double *t, int n, int lsb) {
    uint64_t L[NS_LIMBS] = {0};
    for (int i = 0; i < n; i++) {
        const uint64_t u = ns_f64_bits(t[i]);
        const uint64_t a = u & ~(UINT64_C(1) << 63);
        if (a == 0) continue;
        const int biased = (int)(a >> 52);
        uint64_t sig = biased ? ((a & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52)) : a;
        int e2 = biased ? biased - 1075 : -1074;
        const int tz = __builtin_ctzll(sig);
        sig >>= tz; e2 += tz;
        const int sh = e2 - lsb, limb = sh / 64, off = sh % 64;   /* 0 <= sh, limb + 1 < NS_LIMBS: checked in Python */
        uint64_t part[2] = {sig << off, off ? sig >> (64 - off) : 0};
        if (u >> 63) {                                /* subtract */
            uint64_t borrow = 0;
            for (int j = limb; j < NS_LIMBS; j++) {
                const uint64_t s = j - limb < 2 ? part[j - limb] : 0;
                const uint64_t before = L[j];
                L[j] = before - s - borrow;
                borrow = (before < s) || (before - s < borrow);
            }
        } else {
            uint64_t carry = 0;
            for (int j = limb; j < NS_LIMBS; j++) {
                const uint64_t s = j - limb < 2 ? part[j - limb] : 0;
                const uint64_t x = L[j] + s;
                const uint64_t c1 = x < s;
                L[j] = x + carry;
                carry = c1 | (L[j] < x);
            }
        }
    }
    const int negative = (int)(L[NS_LIMBS - 1] >> 63);
    if (negative) {                                   /* magnitude = two's complement negation */
        uint64_t carry = 1;
        for (int j = 0; j < NS_LIMBS; j++) { L[j] = ~L[j] + carry; carry = carry && L[j] == 0; }
    }
    int top = NS_LIMBS - 1;
    while (top >= 0 && L[top] == 0) top--;
    if (top < 0) return 0.0;
    const int P = 64 * top + ns_msb64(L[top]);        /* bit index of the leading one */
    uint64_t sig53;
    int exp;
    if (P <= 52) { sig53 = L[0]; exp = lsb; }
    else {
        const int pos = P - 52, limb = pos / 64, off = pos % 64;
        sig53 = L[limb] >> off;
        if (off > 11) sig53 |= L[limb + 1] << (64 - off);
        sig53 &= (UINT64_C(1) << 53) - 1;
        int sticky = off ? (L[limb] & ((UINT64_C(1) << off) - 1)) != 0 : 0;
        for (int j = 0; j < limb && !sticky; j++) sticky = L[j] != 0;
        sig53 |= (uint64_t)sticky;                    /* round to odd */
        exp = lsb + pos;
    }
    const double m = ldexp((double)sig53, exp);
    return negative ? -m : m;
}

/* x + y rounded to odd at 53 bits, for finite x, y whose sum cannot overflow a double.
 * TwoSum (Knuth) gives s = RN(x + y) and the exact error e = (x + y) - s. If e == 0 the sum is s.
 * Otherwise |e| <= half the gap next to s on e's side, so truncating x + y toward zero gives s when e
 * has s's sign and s's predecessor in magnitude when it has the other sign; rounding to odd is that
 * truncation with its last significand bit set (it is inexact). */
static double two_sum_to_odd(double x, double y) {
    const double s = x + y;
    const double yv = s - x, xv = s - yv;
    const double e = (x - xv) + (y - yv);
    if (e == 0.0) return s;
    uint64_t bits = ns_f64_bits(s);
    if ((e < 0) != (s < 0)) bits -= 1;               /* the neighbour toward zero (s != 0 here) */
    return ns_f64_from_bits(bits | 1);
}

/* Round the exact sum of finite terms once into the accumulator format.
 * An exactly zero sum takes IEEE 754's sign: the common sign when every term is a zero of one
 * sign, else -0 under toward_neg and +0 otherwise. */
static int32_t round_sum(const float_adder *fa, const double *t, int n, uint32_t *out, int64_t *events,
                         uint8_t *flags) {
    double s;
    if (fa->sum_in_double) {                          /* exact: see the file comment */
        s = 0.0;
        for (int i = 0; i < n; i++) s += t[i];
    } else if (n == 2 && fa->sum_in_double == 0 && !fa->wide_only) {
        s = two_sum_to_odd(t[0], t[1]);               /* two addends: error-free, then round to odd */
    } else {
        s = exact_sum_to_odd(t, n, fa->lsb);
    }
    if (s == 0.0) {
        int all_zero = 1, n_neg = 0;
        for (int i = 0; i < n; i++) { all_zero &= t[i] == 0.0; n_neg += signbit(t[i]) != 0; }
        int negative = (all_zero && n_neg == n) || (!(all_zero && n_neg == 0) && fa->o.rounding == NS_ROUND_TOWARD_NEG);
        *out = negative ? f_sign(fa->f) : 0;
        return NS_OK;
    }
    int32_t st;
    *out = ns_round_pack(s, fa->f, &fa->o, 0, &st);
    if (st) return NS_ERR_OVERFLOW;
    /* s rounds as the exact sum does (exact, or rounded to odd at 53 >= p + 2 bits): fpops' rounding
     * of it raises the exact sum's flags */
    if (flags) ns_fp_round_double(fa->f, &fa->env, s, flags);
    if (fabs(s) > fa->max_finite) {
        /* An overflow event: the rounded result (unbounded exponent) is past max finite, whatever the
         * policy made of it (inf, or max finite under saturate / a mode rounding the magnitude down).
         * s rounds as the exact sum does (round to odd), so the same rounding under the error policy
         * tells: it fails exactly on an overflow. Rare, so the second rounding costs nothing. */
        ns_encode_opts strict = fa->o;
        strict.overflow = NS_OVF_ERROR;
        ns_round_pack(s, fa->f, &strict, 0, &st);
        if (st == NS_ERR_OVERFLOW) (*events)++;
    }
    return NS_OK;
}

/* Special operands: whether any NaN or inf (or an invalid product) is among a register update's terms. */
typedef struct special_scan { int nan, pos_inf, neg_inf; } special_scan;

static inline void scan_acc(special_scan *sc, double v) {
    if (isnan(v)) sc->nan = 1;
    else if (isinf(v)) { if (v > 0) sc->pos_inf = 1; else sc->neg_inf = 1; }
}

/* x + y of two accumulator codes, rounded once. NaN operands propagate by the unit's NaN rule
 * (default: quieted, x first). */
static int32_t float_add2(const float_adder *fa, uint32_t x, uint32_t y, uint32_t *out, int64_t *events,
                          uint8_t *flags) {
    const double vx = ns_unpack(x, fa->f), vy = ns_unpack(y, fa->f);
    if (!isfinite(vx) || !isfinite(vy)) {
        const uint32_t xy[2] = {x, y};
        uint8_t fl = 0;
        ns_fp_fused_specials(fa->f, fa->f, fa->f, &fa->env, fa->unit_nan, xy, 2, NULL, 0, NULL, 0, 0, out, &fl);
        if (flags) *flags |= fl;
        return NS_OK;
    }
    const double t[2] = {vx, vy};
    return round_sum(fa, t, 2, out, events, flags);
}

#define NS_MAX_FUSED 64

/* [acc +] sum of n products a[i * as] * b[i * bs], rounded once. Special operands follow the unit's NaN
 * rule (ns_fp_fused_specials; the default: a NaN accumulator propagates quieted, a NaN operand or an
 * invalid product (0 x inf, inf - inf) gives the default NaN). flags (NULL: not asked) gets the IEEE flags. */
static int32_t float_group(const ns_unit *u, const float_adder *fa, int has_acc, uint32_t acc, const uint32_t *a,
                           int64_t as, const uint32_t *b, int64_t bs, int64_t n, uint32_t *out, int64_t *events,
                           uint8_t *flags) {
    double t[NS_MAX_FUSED + 1];
    int m = 0;
    special_scan sc = {0};
    if (has_acc) {
        const double v = ns_unpack(acc, fa->f);
        scan_acc(&sc, v);
        t[m++] = v;
    }
    for (int64_t i = 0; i < n; i++) {
        const double va = ns_unpack(a[i * as], &u->a_fmt), vb = ns_unpack(b[i * bs], &u->b_fmt);
        if (isnan(va) || isnan(vb) || (isinf(va) && vb == 0.0) || (isinf(vb) && va == 0.0)) { sc.nan = 1; continue; }
        const double p = va * vb;                     /* exact: significands <= 53 bits, checked in Python */
        if (isinf(p)) { if (p > 0) sc.pos_inf = 1; else sc.neg_inf = 1; continue; }
        t[m++] = p;
    }
    if (sc.nan || sc.pos_inf || sc.neg_inf) {
        /* a NaN or inf operand, or an invalid product: the unit's NaN rule and the IEEE flags (fpops) */
        uint8_t fl = 0;
        if (!ns_fp_fused_specials(&u->a_fmt, &u->b_fmt, fa->f, &fa->env, fa->unit_nan, &acc, has_acc ? 1 : 0, a, as, b,
                                  bs, n, out, &fl)) {
            /* finite operands whose product passes the double range (wide formats): an overflow */
            *out = (sc.pos_inf && sc.neg_inf) ? f_default_nan(fa->f) : f_inf(fa->f, sc.neg_inf);
            fl = (sc.pos_inf && sc.neg_inf) ? NS_FP_FLAG_INVALID : NS_FP_FLAG_OVERFLOW | NS_FP_FLAG_INEXACT;
        }
        if (flags) *flags |= fl;
        return NS_OK;
    }
    if (u->inner_bits > 0) {
        /* The n products in a fixed-point inner adder of inner_bits bits, LSB 2^product_lsb (every
         * product is an integer multiple of it, below 2^62 / n: checked in Python). */
        const int p0 = has_acc ? 1 : 0;
        int64_t sum = 0;
        for (int j = p0; j < m; j++) sum += (int64_t)ldexp(t[j], -u->product_lsb);
        if (fit_signed(&sum, u->inner_bits, u->inner_overflow, events)) return NS_ERR_INNER_OVERFLOW;
        t[p0] = ldexp((double)sum, u->product_lsb);  /* exact: inner_bits <= 53; an integer zero is +0 */
        m = p0 + 1;
    }
    return round_sum(fa, t, m, out, events, flags);
}

static void make_float_adder(float_adder *fa, const ns_format *f, int rounding, int overflow, int sum_in_double, int lsb) {
    memset(fa, 0, sizeof *fa);
    fa->f = f;
    fa->o.rounding = rounding;
    fa->o.overflow = overflow;
    fa->o.nan_policy = NS_NAN_ERROR;
    fa->o.underflow = NS_UNF_ROUND;
    fa->o.random_bits = 32;
    fa->sum_in_double = sum_in_double == 1;
    fa->wide_only = sum_in_double == 2;
    fa->lsb = lsb;
    /* Largest finite value: the code below the infinity (IEEE radix-2 accumulators). */
    fa->max_finite = ns_unpack(f_inf(f, 0) - 1, f);
    /* the flags' environment: the error policy raises before flags matter, so it reads as to_inf */
    fa->env.rounding = rounding;
    fa->env.overflow = overflow == NS_OVF_SATURATE ? NS_OVF_SATURATE : NS_OVF_TO_INF;
    fa->env.tininess = NS_FP_TININESS_AFTER_ROUNDING;
    fa->env.nan_rule = NS_FP_NAN_X86_SSE;
    fa->unit_nan = NS_UNIT_NAN_DEFAULT;
}

/* The unit's flag rules: tininess and NaN rule (ns_unit fields). */
static void adder_rules(float_adder *fa, const ns_unit *u) {
    fa->env.tininess = u->tininess_before ? NS_FP_TININESS_BEFORE_ROUNDING : NS_FP_TININESS_AFTER_ROUNDING;
    fa->unit_nan = u->nan_rule;
    if (u->nan_rule > NS_UNIT_NAN_DEFAULT && u->nan_rule <= NS_UNIT_NAN_RISCV) fa->env.nan_rule = u->nan_rule - 1;
}

/* ---- the standalone FP16 adder and the exponent trick ------------------------------------------ */

static const ns_format NS_FP16 = {NS_KIND_FLOAT, 16, 1, 0, 5, 10, 15, 1, 1, NS_SPECIALS_IEEE, 0, 0, 0};

uint16_t ns_f16_add(uint16_t a, uint16_t b, int32_t rounding) {
    float_adder fa;
    /* The exact sum of two FP16 values spans at most 2^16 .. 2^-24: 41 bits, exact in a double. */
    make_float_adder(&fa, &NS_FP16, rounding, NS_OVF_TO_INF, 1, -24);
    uint32_t out;
    int64_t events = 0;
    float_add2(&fa, a, b, &out, &events, NULL);
    return (uint16_t)out;
}

void ns_f16_add_vec(const uint16_t *a, const uint16_t *b, size_t n, int32_t rounding, uint16_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = ns_f16_add(a[i], b[i], rounding);
}

uint16_t ns_f16_odd_phase(uint16_t x, int32_t odd_underflow) {
    const uint16_t field = (x >> 10) & 0x1F;
    if (field == 0x1F) return x;                      /* inf / NaN pass unchanged */
    if (field >= 2) return (uint16_t)(x - 0x0400);    /* exact halving */
    switch (odd_underflow) {
    case NS_ODD_CLAMP:                                /* saturating decrement of the field */
        return field == 1 ? (uint16_t)(x - 0x0400) : x;
    case NS_ODD_EXACT: {                              /* the true half, rounded to nearest even */
        ns_encode_opts o = {NS_ROUND_NEAREST_EVEN, NS_OVF_TO_INF, NS_NAN_ERROR, NS_UNF_ROUND, 32, 0, 0};
        int32_t st;
        return (uint16_t)ns_round_pack(ns_unpack(x, &NS_FP16) * 0.5, &NS_FP16, &o, 0, &st);
    }
    default: return x & 0x8000;                       /* flush to a signed zero */
    }
}

void ns_f16_odd_phase_vec(const uint16_t *x, size_t n, int32_t odd_underflow, uint16_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = ns_f16_odd_phase(x[i], odd_underflow);
}

/* ---- one-MAC entry points ------------------------------------------------------------------- */

int32_t ns_int_mac_step(const ns_unit *u, uint32_t acc, uint32_t a, uint32_t b, int32_t align_shift,
                        uint32_t *acc_out, int64_t *events) {
    int64_t w, s;
    int32_t st = widened_product(u, a, b, align_shift, &w, events);
    if (st) return st;
    st = int_acc_add(u, int_value(acc, &u->acc_fmt), w, &s, events);
    if (!st) *acc_out = int_code(s, u->acc_fmt.bits);
    return st;
}

int32_t ns_sample_shift_step(const ns_unit *u, uint32_t acc, uint32_t a, uint32_t b, int32_t sample_shift,
                             uint32_t *acc_out, int64_t *events) {
    int64_t w, s;
    int32_t st = widened_product(u, a, b, 0, &w, events);
    if (st) return st;
    if (u->sample_group == NS_GROUP_PER_SAMPLE && (st = sample_shift_apply(u, &w, sample_shift, events))) return st;
    st = int_acc_add(u, int_value(acc, &u->acc_fmt), w, &s, events);
    if (!st) *acc_out = int_code(s, u->acc_fmt.bits);
    return st;
}

int32_t ns_sample_shift_finish(const ns_unit *u, uint32_t total, uint32_t group_acc, int32_t sample_shift,
                               uint32_t *acc_out, int64_t *events) {
    int64_t g = int_value(group_acc, &u->acc_fmt), s;
    int32_t st = sample_shift_apply(u, &g, sample_shift, events);
    if (st) return st;
    st = int_acc_add(u, int_value(total, &u->acc_fmt), g, &s, events);
    if (!st) *acc_out = int_code(s, u->acc_fmt.bits);
    return st;
}

int32_t ns_float_mac_step(const ns_unit *u, uint32_t acc, const uint32_t *a, const uint32_t *b, int32_t n,
                          uint32_t *acc_out) {
    uint8_t flags = 0;
    return ns_float_mac_step_flags(u, acc, a, b, n, acc_out, &flags);
}

int32_t ns_float_mac_step_flags(const ns_unit *u, uint32_t acc, const uint32_t *a, const uint32_t *b, int32_t n,
                                uint32_t *acc_out, uint8_t *flags) {
    if (n < 0 || n > u->fused_n || n > NS_MAX_FUSED) return NS_ERR_UNIT_ARG;
    float_adder fa;
    make_float_adder(&fa, &u->acc_fmt, u->acc_rounding, u->acc_overflow, u->sum_in_double, u->exact_lsb);
    adder_rules(&fa, u);
    int64_t events = 0;
    *flags = 0;
    const int32_t st = float_group(u, &fa, 1, acc, a, 1, b, 1, n, acc_out, &events, flags);
    if (events) *flags |= NS_FP_FLAG_OVERFLOW;        /* an overflow event is the update's overflow flag (emit) */
    return st;
}

/* ---- whole dot products ---------------------------------------------------------------------- */

typedef struct dot_ctx {
    const ns_unit *u;
    const uint32_t *a, *b;
    int64_t as, bs, K, T;     /* T: number of terms (products, or fused groups of products) */
    const int32_t *shift;
    float_adder fa;
    uint32_t *trace;
    uint8_t *trace_flags;     /* the IEEE flags of every register update (NULL: not asked) */
    int64_t *flag_counts;     /* per flag bit: how many updates raised it (NULL: not asked) */
    int64_t cap, pos, events, err_k, events_before;
} dot_ctx;

static inline int want_flags(const dot_ctx *d) { return d->trace_flags || d->flag_counts; }

/* One register update done: its code and flags. An overflow event of the update (an integer register's
 * wrap or saturation, a float inner adder's; a float accumulator's is IEEE overflow already) is its
 * overflow flag. */
static inline void emit(dot_ctx *d, uint32_t code, uint8_t flags) {
    if (d->events != d->events_before) flags |= NS_FP_FLAG_OVERFLOW;
    d->events_before = d->events;
    if (d->trace && d->pos < d->cap) d->trace[d->pos] = code;
    if (d->trace_flags && d->pos < d->cap) d->trace_flags[d->pos] = flags;
    if (d->flag_counts)
        for (int b = 0; b < 5; b++) d->flag_counts[b] += (flags >> b) & 1;
    d->pos++;
}
static inline int64_t term_last_k(const dot_ctx *d, int64_t t) {
    const int64_t n = d->u->kind == NS_UNIT_FLOAT ? d->u->fused_n : 1;
    const int64_t k = (t + 1) * n - 1;
    return k < d->K ? k : d->K - 1;
}

/* [acc +] term t. */
static int32_t term_into(dot_ctx *d, int has_acc, uint32_t acc, int64_t t, uint32_t *out) {
    const ns_unit *u = d->u;
    int32_t st;
    uint8_t fl = 0;
    d->err_k = term_last_k(d, t);
    if (u->kind == NS_UNIT_FLOAT) {
        const int64_t k0 = t * u->fused_n, n = (k0 + u->fused_n <= d->K) ? u->fused_n : d->K - k0;
        st = float_group(u, &d->fa, has_acc, acc, d->a + k0 * d->as, d->as, d->b + k0 * d->bs, d->bs, n, out,
                         &d->events, want_flags(d) ? &fl : NULL);
    } else {
        int64_t w, s;
        st = widened_product(u, d->a[t * d->as], d->b[t * d->bs], d->shift ? d->shift[t] : 0, &w, &d->events);
        if (!st) {
            if (has_acc) st = int_acc_add(u, int_value(acc, &u->acc_fmt), w, &s, &d->events);
            else s = w;                               /* widen_bits <= accumulator bits */
            if (!st) *out = int_code(s, u->acc_fmt.bits);
        }
    }
    if (!st) emit(d, *out, fl);
    return st;
}

/* x + y of two accumulator values; last_k names the reduction index for error reports. */
static int32_t acc_plus_acc(dot_ctx *d, uint32_t x, uint32_t y, int64_t last_k, uint32_t *out) {
    int32_t st;
    uint8_t fl = 0;
    d->err_k = last_k;
    if (d->u->kind == NS_UNIT_FLOAT) st = float_add2(&d->fa, x, y, out, &d->events, want_flags(d) ? &fl : NULL);
    else {
        int64_t s;
        st = int_acc_add(d->u, int_value(x, &d->u->acc_fmt), int_value(y, &d->u->acc_fmt), &s, &d->events);
        if (!st) *out = int_code(s, d->u->acc_fmt.bits);
    }
    if (!st) emit(d, *out, fl);
    return st;
}

static int32_t dot_terms(dot_ctx *d, uint32_t c, uint32_t *scratch, uint32_t *out) {
    const ns_unit *u = d->u;
    uint32_t acc = c;
    int32_t st;
    if (u->order == NS_ORDER_SEQUENTIAL) {
        for (int64_t t = 0; t < d->T; t++) if ((st = term_into(d, 1, acc, t, &acc))) return st;
    } else if (u->order == NS_ORDER_CHUNKED) {
        for (int64_t t0 = 0; t0 < d->T; t0 += u->chunk) {
            const int64_t t1 = t0 + u->chunk < d->T ? t0 + u->chunk : d->T;
            uint32_t part;
            if ((st = term_into(d, 0, 0, t0, &part))) return st;
            for (int64_t t = t0 + 1; t < t1; t++) if ((st = term_into(d, 1, part, t, &part))) return st;
            if ((st = acc_plus_acc(d, acc, part, term_last_k(d, t1 - 1), &acc))) return st;
        }
    } else {                                          /* pairwise tree: adjacent pairs, level by level */
        if (d->T > 0) {
            for (int64_t t = 0; t < d->T; t++) if ((st = term_into(d, 0, 0, t, &scratch[t]))) return st;
            for (int64_t s = 1; s < d->T; s *= 2)
                for (int64_t i = 0; i + s < d->T; i += 2 * s) {
                    const int64_t last = i + 2 * s < d->T ? i + 2 * s - 1 : d->T - 1;
                    if ((st = acc_plus_acc(d, scratch[i], scratch[i + s], term_last_k(d, last), &scratch[i]))) return st;
                }
            if ((st = acc_plus_acc(d, acc, scratch[0], d->K - 1, &acc))) return st;
        }
    }
    if (u->odd_phase) acc = ns_f16_odd_phase((uint16_t)acc, u->odd_underflow);
    *out = acc;
    return NS_OK;
}

static int32_t dot_sample_shift(dot_ctx *d, uint32_t c, uint32_t *out) {
    const ns_unit *u = d->u;
    int32_t st;
    uint32_t total = c;
    if (u->sample_group == NS_GROUP_PER_SAMPLE) {
        for (int64_t k = 0; k < d->K; k++) {
            d->err_k = k;
            if ((st = ns_sample_shift_step(u, total, d->a[k * d->as], d->b[k * d->bs], d->shift[k], &total, &d->events)))
                return st;
            emit(d, total, 0);
        }
    } else {
        uint32_t g[5] = {0, 0, 0, 0, 0};              /* one accumulator per shift value */
        for (int64_t k = 0; k < d->K; k++) {
            const int s = d->shift[k];
            d->err_k = k;
            if ((st = ns_sample_shift_step(u, g[s], d->a[k * d->as], d->b[k * d->bs], s, &g[s], &d->events))) return st;
            emit(d, g[s], 0);
        }
        for (int s = 0; s <= 4; s++) {
            d->err_k = d->K - 1;
            if ((st = ns_sample_shift_finish(u, total, g[s], s, &total, &d->events))) return st;
            emit(d, total, 0);
        }
    }
    *out = total;
    return NS_OK;
}

static void dot_init(dot_ctx *d, const ns_unit *u, const uint32_t *a, int64_t as, const uint32_t *b, int64_t bs,
                     int64_t K, const int32_t *shift) {
    memset(d, 0, sizeof *d);
    d->u = u; d->a = a; d->as = as; d->b = b; d->bs = bs; d->K = K; d->shift = shift;
    d->T = u->kind == NS_UNIT_FLOAT ? (K + u->fused_n - 1) / u->fused_n : K;
    if (u->kind == NS_UNIT_FLOAT)
    {
        make_float_adder(&d->fa, &u->acc_fmt, u->acc_rounding, u->acc_overflow, u->sum_in_double, u->exact_lsb);
        adder_rules(&d->fa, u);
    }
}

static int32_t dot_run(dot_ctx *d, uint32_t c, uint32_t *scratch, uint32_t *out) {
    return d->u->kind == NS_UNIT_SAMPLE_SHIFT ? dot_sample_shift(d, c, out) : dot_terms(d, c, scratch, out);
}

int64_t ns_unit_trace_len(const ns_unit *u, int64_t K) {
    if (u->kind == NS_UNIT_SAMPLE_SHIFT) return u->sample_group == NS_GROUP_PER_SAMPLE ? K : K + 5;
    const int64_t T = u->kind == NS_UNIT_FLOAT ? (K + u->fused_n - 1) / u->fused_n : K;
    if (u->order == NS_ORDER_SEQUENTIAL) return T;
    if (u->order == NS_ORDER_CHUNKED) return T + (T + u->chunk - 1) / u->chunk;
    return 2 * T;
}

int32_t ns_unit_dot(const ns_unit *u, const uint32_t *a, int64_t a_stride, const uint32_t *b, int64_t b_stride,
                    int64_t K, const int32_t *shift, uint32_t c, uint32_t *acc_out, uint32_t *trace,
                    int64_t trace_cap, int64_t *events, int64_t *err_step, int64_t *err_k) {
    return ns_unit_dot_flags(u, a, a_stride, b, b_stride, K, shift, c, acc_out, trace, NULL, trace_cap, events, NULL,
                             err_step, err_k);
}

int32_t ns_unit_dot_flags(const ns_unit *u, const uint32_t *a, int64_t a_stride, const uint32_t *b, int64_t b_stride,
                          int64_t K, const int32_t *shift, uint32_t c, uint32_t *acc_out, uint32_t *trace,
                          uint8_t *trace_flags, int64_t trace_cap, int64_t *events, int64_t *flag_counts,
                          int64_t *err_step, int64_t *err_k) {
    if (K < 0 || (u->kind == NS_UNIT_SAMPLE_SHIFT && K > 0 && !shift)) return NS_ERR_UNIT_ARG;
    dot_ctx d;
    dot_init(&d, u, a, a_stride, b, b_stride, K, shift);
    d.trace = trace; d.trace_flags = trace_flags; d.cap = trace_cap;
    if (flag_counts) { memset(flag_counts, 0, 5 * sizeof *flag_counts); d.flag_counts = flag_counts; }
    uint32_t *scratch = NULL;
    if (u->kind != NS_UNIT_SAMPLE_SHIFT && u->order == NS_ORDER_PAIRWISE && d.T > 0) {
        scratch = (uint32_t *)malloc((size_t)d.T * sizeof *scratch);
        if (!scratch) return NS_ERR_UNIT_ARG;
    }
    int32_t st = dot_run(&d, c, scratch, acc_out);
    free(scratch);
    *events = d.events;
    *err_step = d.pos;
    *err_k = d.err_k;
    return st;
}

/* ---- GEMM: threads over output rows ------------------------------------------------------------- */

typedef struct gemm_job {
    const ns_unit *u;
    const uint32_t *a, *bt, *c;
    const int32_t *shift;
    uint32_t *out;
    int64_t K, N, row0, row1;
    int64_t events, err_index, err_step, err_k;
    int64_t flag_counts[5];
    int want_flags;
    int32_t status;
} gemm_job;

static void *gemm_rows(void *arg) {
    gemm_job *j = (gemm_job *)arg;
    const int64_t T = j->u->kind == NS_UNIT_FLOAT ? (j->K + j->u->fused_n - 1) / j->u->fused_n : j->K;
    uint32_t *scratch = (uint32_t *)malloc((size_t)(T > 0 ? T : 1) * sizeof *scratch);
    if (!scratch) { j->status = NS_ERR_UNIT_ARG; j->err_index = j->row0 * j->N; return NULL; }
    for (int64_t i = j->row0; i < j->row1; i++)
        for (int64_t n = 0; n < j->N; n++) {
            dot_ctx d;
            dot_init(&d, j->u, j->a + i * j->K, 1, j->bt + n * j->K, 1, j->K, j->shift);
            if (j->want_flags) d.flag_counts = j->flag_counts;
            const int64_t idx = i * j->N + n;
            int32_t st = dot_run(&d, j->c ? j->c[idx] : 0, scratch, &j->out[idx]);
            j->events += d.events;
            if (st) {                                 /* rows run in order: this is the thread's first */
                j->status = st; j->err_index = idx; j->err_step = d.pos; j->err_k = d.err_k;
                free(scratch);
                return NULL;
            }
        }
    free(scratch);
    return NULL;
}

static void gemm_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    gemm_job *j = (gemm_job *)ctx + t;
    j->row0 = lo; j->row1 = hi;
    gemm_rows(j);
}

int32_t ns_unit_gemm(const ns_unit *u, const uint32_t *a, const uint32_t *bt, int64_t M, int64_t K, int64_t N,
                     const int32_t *shift, const uint32_t *c, uint32_t *acc_out, int32_t nthreads,
                     int64_t *events, int64_t *err_index, int64_t *err_step, int64_t *err_k) {
    return ns_unit_gemm_flags(u, a, bt, M, K, N, shift, c, acc_out, nthreads, events, NULL, err_index, err_step, err_k);
}

int32_t ns_unit_gemm_flags(const ns_unit *u, const uint32_t *a, const uint32_t *bt, int64_t M, int64_t K, int64_t N,
                           const int32_t *shift, const uint32_t *c, uint32_t *acc_out, int32_t nthreads,
                           int64_t *events, int64_t *flag_counts, int64_t *err_index, int64_t *err_step,
                           int64_t *err_k) {
    if (M < 0 || K < 0 || N < 0 || (u->kind == NS_UNIT_SAMPLE_SHIFT && K > 0 && !shift)) return NS_ERR_UNIT_ARG;
    gemm_job jobs[NS_MAX_THREADS];
    const int32_t T = ns_thread_count(nthreads, M);
    for (int t = 0; t < T; t++) {
        gemm_job *j = &jobs[t];
        memset(j, 0, sizeof *j);
        j->u = u; j->a = a; j->bt = bt; j->c = c; j->shift = shift; j->out = acc_out; j->K = K; j->N = N;
        j->want_flags = flag_counts != NULL;
    }
    ns_parallel_for(M, nthreads, gemm_range, jobs);
    int32_t status = NS_OK;
    *events = 0;
    if (flag_counts) memset(flag_counts, 0, 5 * sizeof *flag_counts);
    for (int t = 0; t < T; t++) {
        *events += jobs[t].events;
        if (flag_counts)
            for (int b = 0; b < 5; b++) flag_counts[b] += jobs[t].flag_counts[b];
        if (jobs[t].status && status == NS_OK) {     /* ranges are in row order: the first failing range */
            status = jobs[t].status;
            *err_index = jobs[t].err_index; *err_step = jobs[t].err_step; *err_k = jobs[t].err_k;
        }
    }
    return status;
}

/* ---- gemmlowp / TFLite requantization ------------------------------------------------------- */

int32_t ns_sat_rounding_doubling_high_mul(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;   /* the one overflowing case */
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30));
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));  /* C division truncates toward zero, as gemmlowp's */
}

int32_t ns_rounding_divide_by_pot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);  /* arithmetic shift: floor */
}

int32_t ns_requant_int8(int32_t acc, int32_t multiplier, int32_t shift, int32_t zero_point, int32_t out_min,
                        int32_t out_max) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    /* TFLite multiplies by (1 << left) in int32; two's complement hardware wraps. */
    const int32_t x = (int32_t)((uint32_t)acc << left);
    int64_t v = (int64_t)ns_rounding_divide_by_pot(ns_sat_rounding_doubling_high_mul(x, multiplier), right) + zero_point;
    if (v < out_min) v = out_min;
    if (v > out_max) v = out_max;
    return (int32_t)v;
}

void ns_requant_int8_vec(const uint32_t *acc, size_t n, int32_t multiplier, int32_t shift, int32_t zero_point,
                         int32_t out_min, int32_t out_max, uint8_t *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)ns_requant_int8((int32_t)acc[i], multiplier, shift, zero_point, out_min, out_max);
}
