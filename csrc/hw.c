/* Tensor-core datapaths (see ns_hw.h and docs/hardware.md): the fused n-term adder and integer MMA.
 *
 * A fused step of the fused adder, for products p_i = a_i * b_i and the accumulator c:
 *   emax  = max(exponent of each nonzero product, floor(log2|c|))      (alignment exponent)
 *   t_i   = p_i truncated toward zero to a multiple of 2^(emax - kept_bits)
 *   sum   = exact integer sum of the t_i (in units of 2^(emax - kept_bits))
 *   acc'  = sum rounded into the inner accumulator format (1-8-acc_man_bits), +0 for a zero sum,
 *           +-inf past 2^128 (or max-finite when saturating).
 * Operands arrive decoded as sign / normalized magnitude / exponent, so a product is one integer
 * multiply and its exponent one add. The exact reference is numsim/reference/h100.py. */
#include <math.h>
#include <stdlib.h>

#include "ns_formats.h"
#include "ns_hw.h"
#include "ns_internal.h"
#include "ns_threads.h"
#include "hw_isa.h"

/* Exponent given to zero / non-finite operands: far below any real product exponent, so a zero
 * product never sets emax and its shift is clamped to "all bits dropped". */
#define NS_HW_ZERO_EXP (-(1 << 24))
#define NS_HW_NO_TERMS (-(1 << 26))

static uint32_t read_code(const void *codes, int32_t code_bytes, size_t i) {
    if (code_bytes == 1) return ((const uint8_t *)codes)[i];
    if (code_bytes == 2) return ((const uint16_t *)codes)[i];
    return ((const uint32_t *)codes)[i];
}

int32_t ns_hw_decode_operands(const void *codes, int32_t code_bytes, size_t n, const ns_format *fmt,
                              int32_t man_bits, int32_t *mag, int32_t *neg, int32_t *exp, uint8_t *cls) {
    if (!codes || !fmt || !mag || !neg || !exp || !cls || man_bits < 0 || man_bits > 23) return NS_ERR_ARG;
    if (code_bytes != 1 && code_bytes != 2 && code_bytes != 4) return NS_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        double v = ns_unpack(read_code(codes, code_bytes, i), fmt);
        mag[i] = 0; exp[i] = NS_HW_ZERO_EXP; neg[i] = signbit(v) ? -1 : 0;
        if (isnan(v)) { cls[i] = NS_CLS_NAN; neg[i] = 0; continue; }
        if (isinf(v)) { cls[i] = NS_CLS_INF; continue; }
        if (v == 0) { cls[i] = NS_CLS_ZERO; continue; }
        int x;
        double f = frexp(fabs(v), &x);               /* |v| = f * 2^x, f in [0.5, 1) */
        double m = ldexp(f, man_bits + 1);           /* integer in [2^man_bits, 2^(man_bits+1)) */
        if (m != floor(m)) return NS_ERR_ARG;        /* more significant bits than man_bits + 1 */
        cls[i] = NS_CLS_FINITE; mag[i] = (int32_t)m; exp[i] = x - 1;
    }
    return NS_OK;
}

int32_t ns_hw_gather_operands(const void *codes, int32_t code_bytes, size_t n, size_t table_size,
                              const int32_t *tmag, const int32_t *tneg, const int32_t *texp, const uint8_t *tcls,
                              int32_t *mag, int32_t *neg, int32_t *exp, uint8_t *cls) {
    if (!codes || !tmag || !tneg || !texp || !tcls || !mag || !neg || !exp || !cls) return NS_ERR_ARG;
    if (code_bytes != 1 && code_bytes != 2) return NS_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = read_code(codes, code_bytes, i);
        if (c >= table_size) return NS_ERR_ARG;
        mag[i] = tmag[c]; neg[i] = tneg[c]; exp[i] = texp[c]; cls[i] = tcls[c];
    }
    return NS_OK;
}

/* The inner accumulator's format: 1 sign, 8 exponent bits (bias 127), acc_man_bits fraction bits. */
ns_format ns_hw_inner_format(int32_t acc_man_bits) {
    ns_format f;
    memset(&f, 0, sizeof f);
    f.kind = NS_KIND_FLOAT; f.bits = 9 + acc_man_bits; f.is_signed = 1; f.exp_bits = 8;
    f.man_bits = acc_man_bits; f.bias = 127; f.radix_log2 = 1; f.subnormals = 1; f.specials = NS_SPECIALS_IEEE;
    return f;
}

/* An inner-accumulator code as fp32 bits (exact: same exponent field, fraction padded with zeros). */
static inline uint32_t widen_to_f32(uint32_t code, int32_t acc_man_bits) {
    uint32_t sign = code >> (8 + acc_man_bits);
    uint32_t rest = code & ((UINT32_C(1) << (8 + acc_man_bits)) - 1);
    return (sign << 31) | (rest << (23 - acc_man_bits));
}

/* value * 2^sh of a magnitude, truncated toward zero (sh < 0 drops bits). */
static inline int64_t shift_toward_zero(int64_t magnitude, int32_t sh) {
    if (sh >= 0) return magnitude << sh;
    return sh <= -63 ? 0 : magnitude >> (-sh);
}

/* Round sum * 2^scale_exp into the inner accumulator (fp32 bits out); sum != 0. Out of line: the
 * overflow, subnormal and nearest-even cases. */
static uint32_t round_sum_into_acc_general(const ns_fused_unit *u, const ns_format *inner,
                                           const ns_encode_opts *opts, int64_t sum, int32_t scale_exp,
                                           int64_t *events);

static inline __attribute__((always_inline)) uint32_t round_sum_into_acc(
        const ns_fused_unit *u, const ns_format *inner, const ns_encode_opts *opts, int64_t sum, int32_t scale_exp,
        int64_t *events) {
    uint64_t mag = (uint64_t)(sum < 0 ? -sum : sum);
    int32_t e = ns_msb64(mag) + scale_exp;
    if (u->sum_rounding == NS_ROUND_TOWARD_ZERO && e >= -126 && e < 128) {
        /* Hot path, normal result truncated: keep the top acc_man_bits + 1 bits of |sum|. This is
         * exactly what ns_round_pack does for toward-zero normal results (tests compare the two
         * through the reference); it only saves the float64 round trip, 8M times per 512^3 GEMM. */
        int32_t drop = ns_msb64(mag) - u->acc_man_bits;
        uint64_t m = drop >= 0 ? mag >> drop : mag << (-drop);
        uint32_t frac = (uint32_t)(m & ((UINT64_C(1) << u->acc_man_bits) - 1));
        return (sum < 0 ? UINT32_C(0x80000000) : 0) | ((uint32_t)(e + 127) << 23) | (frac << (23 - u->acc_man_bits));
    }
    return round_sum_into_acc_general(u, inner, opts, sum, scale_exp, events);
}

/* x (finite) rounded into the inner accumulator; an overflow event when the rounded result (unbounded
 * exponent) is past max finite, whatever the policy made of it (inf, or max finite when saturating
 * or truncating). Only |x| above max finite can overflow; that rare case is rounded again under the
 * error policy, which fails exactly on an overflow. */
static uint32_t round_into_inner(double x, const ns_format *inner, const ns_encode_opts *opts, int64_t *events) {
    int32_t st = 0;
    uint32_t code = ns_round_pack(x, inner, opts, 0, &st);
    const double max_finite = ldexp(2.0 - ldexp(1.0, -inner->man_bits), 127);
    if (fabs(x) > max_finite) {
        ns_encode_opts strict = *opts;
        strict.overflow = NS_OVF_ERROR;
        ns_round_pack(x, inner, &strict, 0, &st);
        if (st == NS_ERR_OVERFLOW) (*events)++;
    }
    return code;
}

static uint32_t round_sum_into_acc_general(const ns_fused_unit *u, const ns_format *inner, const ns_encode_opts *opts,
                                   int64_t sum, int32_t scale_exp, int64_t *events) {
    uint64_t mag = (uint64_t)(sum < 0 ? -sum : sum);
    int32_t e = ns_msb64(mag) + scale_exp;           /* floor(log2|sum * 2^scale_exp|) */
    uint32_t sign = sum < 0 ? UINT32_C(0x80000000) : 0;
    if (e >= 128) {                                   /* past the range, whatever the rounding */
        (*events)++;
        if (u->overflow_to_inf) return sign | UINT32_C(0x7f800000);
        return sign | widen_to_f32(((UINT32_C(0xfe) << u->acc_man_bits) | ((UINT32_C(1) << u->acc_man_bits) - 1)),
                                   u->acc_man_bits);
    }
    /* |sum| < 2^53 (at most 257 terms below 2^(kept_bits + 2)), so the double is exact. */
    double x = ldexp((double)sum, scale_exp);
    uint32_t out = widen_to_f32(round_into_inner(x, inner, opts, events), u->acc_man_bits);
    if ((out & UINT32_C(0x7fffffff)) == 0) return 0;  /* an underflow to zero is +0 */
    return out;
}

/* One fused step; check_specials: some operand of this row/column may be inf or NaN. */
static inline __attribute__((always_inline)) uint32_t fused_step_core(const ns_fused_unit *u, const ns_format *inner, const ns_encode_opts *opts,
                                const int32_t *am, const int32_t *an, const int32_t *ae, const uint8_t *acl,
                                const int32_t *bm, const int32_t *bn, const int32_t *be, const uint8_t *bcl,
                                int32_t k, uint32_t acc, int check_specials, int64_t *events) {
    uint32_t acc_field = (acc >> 23) & 0xff;
    if (check_specials || acc_field == 0xff) {
        int nan = 0, pinf = 0, ninf = 0;
        if (acc_field == 0xff) {
            if (acc & 0x7fffff) nan = 1; else if (acc >> 31) ninf = 1; else pinf = 1;
        }
        if (check_specials) {
            for (int32_t i = 0; i < k; i++) {
                uint8_t ca = acl[i], cb = bcl[i];
                if (ca < NS_CLS_INF && cb < NS_CLS_INF) continue;
                if (ca == NS_CLS_NAN || cb == NS_CLS_NAN || ca == NS_CLS_ZERO || cb == NS_CLS_ZERO) nan = 1;
                else if (an[i] ^ bn[i]) ninf = 1;
                else pinf = 1;
            }
        }
        if (nan || (pinf && ninf)) return NS_F32_NAN;
        if (pinf) return UINT32_C(0x7f800000);
        if (ninf) return UINT32_C(0xff800000);
    }
    const int32_t mab = u->a_man_bits + u->b_man_bits;
    int32_t emax = NS_HW_NO_TERMS;
    for (int32_t i = 0; i < k; i++) {
        int32_t e = ae[i] + be[i];
        if (u->product_exponent == NS_PEXP_NORMALIZED)
            e += ((int64_t)am[i] * bm[i]) >> (mab + 1) ? 1 : 0;
        emax = e > emax ? e : emax;
    }
    /* The accumulator as cm * 2^(ec - 23), cm normalized (fp32 subnormals by their true exponent). */
    int64_t cm = 0;
    int32_t ec = NS_HW_ZERO_EXP;
    uint32_t cman = acc & 0x7fffff;
    if (acc_field) { cm = (int64_t)(cman | 0x800000); ec = (int32_t)acc_field - 127; }
    else if (cman) { int msb = ns_msb64(cman); cm = (int64_t)cman << (23 - msb); ec = msb - 149; }
    if (cm) emax = ec > emax ? ec : emax;
    if (emax < NS_HW_ZERO_EXP / 2) return 0;          /* no nonzero term: +0 */
    const int32_t kb = u->kept_bits;
    int64_t sum = 0;
    if (kb >= mab && kb <= 29) {
        /* Branch-free int32 form (vectorizes): |p| << (kb - mab) < 2^(kb + 2) <= 2^31, and
         * d = emax - (ea + eb) >= 0 under both exponent rules; d >= 31 drops every bit. */
        const int32_t lsh = kb - mab;
        if ((int64_t)k << (kb + 2) <= (INT64_C(1) << 31)) {
            /* k terms each below 2^(kb+2) in magnitude: their sum fits int32 (HMMA: 16 x 2^27). */
            int32_t sum32 = 0;
            for (int32_t i = 0; i < k; i++) {
                int32_t d = emax - (ae[i] + be[i]);
                d = d > 31 ? 31 : d;
                int32_t t = (int32_t)(((uint32_t)(am[i] * bm[i]) << lsh) >> d);
                int32_t s = an[i] ^ bn[i];
                sum32 += (t ^ s) - s;
            }
            sum = sum32;
        } else for (int32_t i = 0; i < k; i++) {
            int32_t d = emax - (ae[i] + be[i]);
            d = d > 31 ? 31 : d;
            int32_t t = (int32_t)(((uint32_t)(am[i] * bm[i]) << lsh) >> d);
            int32_t s = an[i] ^ bn[i];
            sum += (int64_t)((t ^ s) - s);
        }
    } else for (int32_t i = 0; i < k; i++) {
        int64_t p = (int64_t)am[i] * bm[i];
        int32_t sh = kb - mab - (emax - (ae[i] + be[i]));
        int64_t t = shift_toward_zero(p, sh < -64 ? -64 : sh);
        int64_t s = (int64_t)(an[i] ^ bn[i]);         /* 0 or -1 */
        sum += (t ^ s) - s;
    }
    if (cm) {
        int64_t t = shift_toward_zero(cm, kb - 23 - (emax - ec));
        sum += (acc >> 31) ? -t : t;
    }
    if (sum == 0) return 0;                           /* exact cancellation: +0 */
    return round_sum_into_acc(u, inner, opts, sum, emax - kb, events);
}

static inline float f32_of(uint32_t u) { return ns_f32_from_bits(u); }

ns_encode_opts ns_hw_sum_opts(const ns_fused_unit *u) {
    ns_encode_opts o;
    memset(&o, 0, sizeof o);
    o.rounding = u->sum_rounding;
    o.overflow = u->overflow_to_inf ? NS_OVF_TO_INF : NS_OVF_SATURATE;
    o.nan_policy = NS_NAN_ERROR; o.underflow = NS_UNF_ROUND; o.random_bits = 32;
    return o;
}

uint32_t ns_fused_step(const ns_fused_unit *u, const int32_t *a_mag, const int32_t *a_neg, const int32_t *a_exp,
                       const uint8_t *a_cls, const int32_t *b_mag, const int32_t *b_neg, const int32_t *b_exp,
                       const uint8_t *b_cls, int32_t k, uint32_t acc) {
    ns_format inner = ns_hw_inner_format(u->acc_man_bits);
    ns_encode_opts opts = ns_hw_sum_opts(u);
    int64_t events = 0;
    return fused_step_core(u, &inner, &opts, a_mag, a_neg, a_exp, a_cls, b_mag, b_neg, b_exp, b_cls, k, acc, 1,
                           &events);
}

/* ---- GEMM drivers: threads over output rows ------------------------------------------------ */


/* fp32 round-to-nearest-even arithmetic of the promotion, scale and epilogue adds (SSE, no FTZ). Each
 * counts an overflow event when finite operands give an infinity (RNE: overflow is to inf). */
static inline int f32_finite(uint32_t x) { return ((x >> 23) & 0xff) != 0xff; }
static inline uint32_t f32_add(uint32_t x, uint32_t y, int64_t *events) {
    const uint32_t r = ns_f32_bits(f32_of(x) + f32_of(y));
    if (!f32_finite(r) && f32_finite(x) && f32_finite(y)) (*events)++;
    return r;
}
static inline uint32_t f32_mul(uint32_t x, float s, int64_t *events) {
    const uint32_t r = ns_f32_bits(f32_of(x) * s);
    if (!f32_finite(r) && f32_finite(x)) (*events)++;          /* s is finite (checked in Python) */
    return r;
}

/* One output (i, n) of the GEMM by the scalar datapath: the reference kernel, and the SIMD kernel's
 * fallback for the outputs it does not take (specials, fp32 subnormal or overflowing sums). */
static inline __attribute__((always_inline)) uint32_t fused_output(hw_job *j, const ns_format *inner,
                                                                   const ns_encode_opts *opts, int64_t i, int64_t n) {
    const ns_fused_unit *u = j->u;
    const int64_t K = j->K, N = j->N, ks = u->k_step, promo = u->promotion_interval;
    const int64_t ao = i * K, bo = n * K;
    const int check = j->a_special[i] | j->b_special[n];
    uint32_t c0 = j->c ? j->c[i * N + n] : 0;
    uint32_t outer = (promo && !u->c_epilogue) ? c0 : 0;
    uint32_t acc = 0;
    if (!promo && !u->c_epilogue && j->c && (c0 & 0x7fffffff)) {
        if (u->acc_man_bits == 23 || ((c0 >> 23) & 0xff) == 0xff) acc = c0;
        else {                                /* c enters a narrower accumulator: round it */
            double cv = (double)f32_of(c0);
            acc = widen_to_f32(round_into_inner(cv, inner, opts, &j->events), u->acc_man_bits);
            if ((acc & 0x7fffffff) == 0) acc = 0;
        }
    }
    for (int64_t s = 0; s < K; s += ks) {
        acc = fused_step_core(u, inner, opts, j->am + ao + s, j->an + ao + s, j->ae + ao + s,
                              j->acl + ao + s, j->bm + bo + s, j->bn + bo + s, j->be + bo + s,
                              j->bcl + bo + s, (int32_t)ks, acc, check, &j->events);
        if (promo && ((s + ks) % promo == 0 || s + ks >= K)) {
            outer = f32_add(outer, acc, &j->events);
            acc = 0;
        }
    }
    uint32_t r = promo ? outer : acc;
    if (u->apply_scale) r = f32_mul(r, u->scale, &j->events);
    if (u->c_epilogue && j->c) r = f32_add(r, c0, &j->events);
    if (((r >> 23) & 0xff) == 0xff && (r & 0x7fffff)) r = NS_F32_NAN;
    return r;
}

uint32_t ns_hw_fused_output(hw_job *j, const ns_format *inner, const ns_encode_opts *opts, int64_t i, int64_t n) {
    return fused_output(j, inner, opts, i, n);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(NS_X86) && !defined(NUMSIM_NO_CLONES)
/* AVX2 has per-lane variable shifts (the alignment shifter); picked at load time when present. */
__attribute__((target_clones("avx2", "default")))
#endif
void *ns_hw_fused_rows(void *arg) {
    hw_job *j = (hw_job *)arg;
    ns_format inner = ns_hw_inner_format(j->u->acc_man_bits);
    ns_encode_opts opts = ns_hw_sum_opts(j->u);
    for (int64_t i = j->row0; i < j->row1; i++)
        for (int64_t n = 0; n < j->N; n++) j->d[i * j->N + n] = fused_output(j, &inner, &opts, i, n);
    return NULL;
}

/* ---- SIMD fused adder: which units and operands the AVX-512 kernel (csrc/hw_avx512.c, with the
 * proof) takes -------------------------------------------------------------------------------------- */

/* Which units the SIMD kernel takes (everything else runs the scalar kernel). */
static int simd_unit_ok(const ns_fused_unit *u, int has_c) {
    if (u->product_exponent != NS_PEXP_INPUT_SUM || u->sum_rounding != NS_ROUND_TOWARD_ZERO) return 0;
    if (u->kept_bits < 8 || u->kept_bits > 32 || u->k_step > 256) return 0;
    if (u->a_man_bits > 23 || u->b_man_bits > 23) return 0;
    /* c entering a narrower accumulator is rounded into it by ns_round_pack: scalar only. */
    if (has_c && !u->promotion_interval && !u->c_epilogue && u->acc_man_bits != 23) return 0;
    return 1;
}

/* The range [lo, hi] of the nonzero finite operands' exponents (widened; the proof above needs
 * [-140, 130], the fp32 products [-40, 40]). */
static void operand_exponent_range(const int32_t *e, const uint8_t *cls, int64_t n, int32_t *lo, int32_t *hi) {
    for (int64_t i = 0; i < n; i++)
        if (cls[i] == NS_CLS_FINITE) {
            *lo = e[i] < *lo ? e[i] : *lo;
            *hi = e[i] > *hi ? e[i] : *hi;
        }
}

/* Whether the products may be formed in fp32, 16 lanes a vector (twice the doubles' width).
 * Proof, for operand exponents in [-40, 40] and a_man_bits + b_man_bits + 2 <= 24 (fp16 22, bf16
 * 16, e4m3 8 significant bits): a and b are exact floats; p = a * b has <= 24 significant bits and
 * 2^-80 <= |p| < 2^82, so it is an exact normal float. The fp32 scale is 2^(kb - max(emax, kb-127)):
 * emax <= 127 (the accumulator's exponent at most) so its exponent is in [kb-127, 127] subset of
 * [-119, 127], a normal float; the clamp only acts when emax < kb - 127 <= -95 < -80, i.e. when
 * every product is zero (terms +-0 under any scale). Otherwise x = p * 2^(kb - emax) is the true
 * value when it is a normal float (<= 24 bits), and when it is not (|x| < 2^-126, whatever it rounds
 * or flushes to) its truncation is 0 as the true one; |x| < 2^(kb+2) <= 2^31 with kb <= 29, so
 * cvttps_epi32 is the exact truncation. Each int32 partial sum has ceil(k_step / 2) terms below
 * 2^(kb+2): no overflow when ceil(k_step / 2) * 2^(kb+2) <= 2^31 (HMMA 8 * 2^27; cuBLAS FP8
 * 16 * 2^15). The partial sums then join the double sum (exact as above). */
static int hw_f32_products_ok(const ns_fused_unit *u, int32_t lo, int32_t hi) {
    if (lo < -40 || hi > 40 || u->a_man_bits + u->b_man_bits + 2 > 24 || u->kept_bits > 29) return 0;
    return (int64_t)((u->k_step + 1) / 2) << (u->kept_bits + 2) <= (INT64_C(1) << 31);
}

#ifdef NS_X86
/* B^T (N, K) decoded -> 16-column panels of values (doubles, or floats when f32) and exponents
 * (padding columns are zeros). */
static int build_panels(hw_panels *p, const ns_fused_unit *u, const int32_t *bm, const int32_t *bn,
                        const int32_t *be, const uint8_t *bcl, int64_t N, int64_t K, int f32) {
    p->groups = (N + HW_SIMD_COLS - 1) / HW_SIMD_COLS;
    size_t n = (size_t)(p->groups * K * HW_SIMD_COLS);
    const size_t vsize = f32 ? sizeof(float) : sizeof(double);
    void *v = aligned_alloc(64, (n * vsize + 63) / 64 * 64);
    int16_t *e = (int16_t *)aligned_alloc(64, (n * sizeof(int16_t) + 63) / 64 * 64);
    if (!v || !e) { free(v); free(e); return 0; }
    for (int64_t g = 0; g < p->groups; g++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t l = 0; l < HW_SIMD_COLS; l++) {
                const int64_t col = g * HW_SIMD_COLS + l, o = (g * K + k) * HW_SIMD_COLS + l;
                double x = 0.0;
                e[o] = HW_SIMD_ZERO_EXP16;
                if (col < N) {
                    const int64_t y = col * K + k;
                    x = operand_double(bm[y], bn[y], be[y], bcl[y], u->b_man_bits);
                    if (bcl[y] == NS_CLS_FINITE) e[o] = (int16_t)be[y];   /* in [-140, 130] */
                }
                if (f32) ((float *)v)[o] = (float)x; else ((double *)v)[o] = x;
            }
    p->bv = f32 ? NULL : (const double *)v;
    p->bvf = f32 ? (const float *)v : NULL;
    p->be = e;
    return 1;
}

#endif

int32_t ns_hw_simd_level(void) { return ns_level_fused_gemm(ns_cpu_features()); }

int32_t ns_fused_simd_path(const ns_fused_unit *u, int32_t has_c, int32_t exp_lo, int32_t exp_hi) {
    if (!u || ns_level_fused_gemm(ns_cpu_features()) < 2 || !simd_unit_ok(u, has_c)) return 0;
    if (exp_lo <= exp_hi && (exp_lo < -140 || exp_hi > 130)) return 0;   /* outside the proof's ranges */
    return hw_f32_products_ok(u, exp_lo <= exp_hi ? exp_lo : 0, exp_lo <= exp_hi ? exp_hi : 0) ? 2 : 1;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(NS_X86) && !defined(NUMSIM_NO_CLONES)
__attribute__((target_clones("avx2", "default")))
#endif
static void *imma_rows(void *arg) {
    hw_job *j = (hw_job *)arg;
    const int64_t K = j->K, N = j->N, ks = j->k_step;
    for (int64_t i = j->row0; i < j->row1; i++) {
        const int32_t *a = j->ia + i * K;
        for (int64_t n = 0; n < N; n++) {
            const int32_t *b = j->ib + n * K;
            int64_t acc = j->ic ? j->ic[i * N + n] : 0;
            for (int64_t s = 0; s < K; s += ks) {
                int64_t e = s + ks < K ? s + ks : K;
                int32_t part = 0;                      /* |part| < 2^28: 8-bit operands, k_step <= 4096 */
                for (int64_t k = s; k < e; k++) part += a[k] * b[k];
                acc += part;
                if (j->saturate) acc = acc > INT32_MAX ? INT32_MAX : (acc < INT32_MIN ? INT32_MIN : acc);
                else acc = (int32_t)(uint32_t)(uint64_t)acc;
            }
            j->id[i * N + n] = (int32_t)acc;
        }
    }
    return NULL;
}

/* Run fn over row ranges of `base` (ns_parallel_for: the calling thread takes the first range). */
typedef struct hw_rows {
    void *(*fn)(void *);
    hw_job jobs[NS_MAX_THREADS];
} hw_rows;

static void hw_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    hw_rows *r = (hw_rows *)ctx;
    r->jobs[t].row0 = lo; r->jobs[t].row1 = hi;
    r->fn(&r->jobs[t]);
}

/* Each job counts its own overflow events; *events (may be NULL) gets their sum. */
static int32_t run_rows(void *(*fn)(void *), const hw_job *base, int64_t M, int32_t nthreads, int64_t *events) {
    hw_rows *r = (hw_rows *)malloc(sizeof *r);
    if (!r) return NS_ERR_ARG;
    r->fn = fn;
    const int32_t T = ns_thread_count(nthreads, M);
    for (int32_t t = 0; t < T; t++) r->jobs[t] = *base;
    ns_parallel_for(M, nthreads, hw_range, r);
    if (events)
        for (int32_t t = 0; t < T; t++) *events += r->jobs[t].events;
    free(r);
    return NS_OK;
}

int32_t ns_fused_gemm_simd(const ns_fused_unit *u,
                           const int32_t *a_mag, const int32_t *a_neg, const int32_t *a_exp, const uint8_t *a_cls,
                           const int32_t *b_mag, const int32_t *b_neg, const int32_t *b_exp, const uint8_t *b_cls,
                           const uint32_t *c, uint32_t *d, int64_t M, int64_t N, int64_t K, int32_t nthreads,
                           int32_t simd, int64_t *events) {
    if (events) *events = 0;
    if (!u || !d || M < 0 || N < 0 || K < 0) return NS_ERR_ARG;
    if (u->k_step < 1 || K % u->k_step) return NS_ERR_ARG;
    if (u->promotion_interval < 0 || (u->promotion_interval && u->promotion_interval % u->k_step)) return NS_ERR_ARG;
    if (u->acc_man_bits < 1 || u->acc_man_bits > 23 || u->kept_bits < 1 || u->kept_bits > 40) return NS_ERR_ARG;
    if (u->a_man_bits < 0 || u->b_man_bits < 0 || u->a_man_bits + u->b_man_bits > 46) return NS_ERR_ARG;
    if (simd != -1 && simd != 0 && simd != 2) return NS_ERR_ARG;
    if (simd == 2 && ns_level_fused_gemm(ns_cpu_features()) < 2) return NS_ERR_ARG;
    if (simd == -1 && ns_level_fused_gemm(ns_cpu_usable()) < 2) simd = 0;   /* capped by NUMSIM_LEVEL */
    if (M == 0 || N == 0) return NS_OK;
    uint8_t *a_special = (uint8_t *)calloc((size_t)M, 1), *b_special = (uint8_t *)calloc((size_t)N, 1);
    if (!a_special || !b_special) { free(a_special); free(b_special); return NS_ERR_ARG; }
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++) a_special[i] |= a_cls[i * K + k] >= NS_CLS_INF;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) b_special[n] |= b_cls[n * K + k] >= NS_CLS_INF;
    hw_job job;
    memset(&job, 0, sizeof job);
    job.u = u; job.am = a_mag; job.an = a_neg; job.ae = a_exp; job.acl = a_cls;
    job.bm = b_mag; job.bn = b_neg; job.be = b_exp; job.bcl = b_cls;
    job.a_special = a_special; job.b_special = b_special; job.c = c; job.d = d; job.M = M; job.N = N; job.K = K;
    int32_t st;
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    operand_exponent_range(a_exp, a_cls, M * K, &lo, &hi);
    operand_exponent_range(b_exp, b_cls, N * K, &lo, &hi);
    int path = simd != 0 && K > 0 ? ns_fused_simd_path(u, c != NULL, lo, hi) : 0;
#ifdef NS_X86
    hw_panels panels;
    if (path && build_panels(&panels, u, b_mag, b_neg, b_exp, b_cls, N, K, path == 2)) {
        job.panels = &panels;
        st = run_rows(ns_hw_fused_rows_avx512, &job, M, nthreads, events);
        free((void *)panels.bv); free((void *)panels.bvf); free((void *)panels.be);
    } else
#endif
        st = run_rows(ns_hw_fused_rows, &job, M, nthreads, events);
    (void)path;
    free(a_special); free(b_special);
    return st;
}

int32_t ns_fused_gemm(const ns_fused_unit *u,
                      const int32_t *a_mag, const int32_t *a_neg, const int32_t *a_exp, const uint8_t *a_cls,
                      const int32_t *b_mag, const int32_t *b_neg, const int32_t *b_exp, const uint8_t *b_cls,
                      const uint32_t *c, uint32_t *d, int64_t M, int64_t N, int64_t K, int32_t nthreads) {
    return ns_fused_gemm_simd(u, a_mag, a_neg, a_exp, a_cls, b_mag, b_neg, b_exp, b_cls, c, d, M, N, K, nthreads, -1,
                              NULL);
}

int32_t ns_imma_gemm(const int32_t *a, const int32_t *bt, const int32_t *c, int32_t *d, int64_t M, int64_t N,
                     int64_t K, int32_t k_step, int32_t saturate, int32_t nthreads) {
    if (!d || M < 0 || N < 0 || K < 0 || k_step < 1 || k_step > 4096) return NS_ERR_ARG;
    if (M == 0 || N == 0) return NS_OK;
    if (K && (!a || !bt)) return NS_ERR_ARG;
    hw_job job;
    memset(&job, 0, sizeof job);
    job.ia = a; job.ib = bt; job.ic = c; job.id = d; job.M = M; job.N = N; job.K = K;
    job.k_step = k_step; job.saturate = saturate;
    return run_rows(imma_rows, &job, M, nthreads, NULL);
}
