/* Branch-free float32 -> code kernels for the common formats and deterministic or stochastic modes.
 *
 * They compute exactly what round_pack (formats.c) computes, on the float32 bit pattern:
 * |x| = sig * 2^(e' - 150) with sig < 2^24 and e' = max(biased exponent, 1). Each kernel returns 0
 * when the format or policy is outside its domain, or when any element needs the generic path
 * (an error to report, NaN into a format without NaN, an input outside the kernel's exponent
 * range); the caller then runs the generic path over the whole array, which also finds the first
 * offending index. Tests compare every kernel with the generic path bit for bit (float32 input
 * vs the same values as float64 input, which always takes the generic path). */
#include "numsim.h"
#include "ns_internal.h"
#include "encode_f32_isa.h"
#include <stdlib.h>


#if defined(NS_X86) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NS_CLONES
#endif


/* Round-up decision of the magnitude sig >> shift (0 <= shift <= 63); the same rule as
 * ns_round_shift_right, written without branches. */
static inline uint64_t round_up_bit(const f32k *k, uint64_t sig, int shift, uint64_t n, int neg, uint64_t index) {
    uint64_t mask = shift ? ((UINT64_C(1) << shift) - 1) : 0;
    uint64_t rem = sig & mask;
    uint64_t half = (mask + 1) >> 1;
    uint64_t inexact = rem != 0;
    uint64_t near_up = (rem > half) | ((rem == half) & ((uint64_t)k->tie_away | (n & 1)));
    uint64_t up = k->nearest ? near_up : (uint64_t)k->up_dir[neg];
    if (k->stochastic) {
        uint64_t frac = shift >= k->R ? rem >> (shift - k->R) : rem << (k->R - shift);
        uint64_t rnd = ns_rng_bits(k->seed_mix, k->index_offset + index, k->R);
        up = (frac + rnd) >> k->R;
    }
    return inexact & up;
}

/* Specials and zero, shared by the float kernels: inf and NaN codes by policy. */
static inline uint32_t float_specials(const f32k *k, uint32_t a, int neg, uint32_t code, uint32_t *flag) {
    const uint32_t s = neg ? k->sign_bit : 0;
    const uint32_t is_inf = a == 0x7F800000u, is_nan = a > 0x7F800000u;
    const uint32_t nan_ieee = s | k->inf_mag | (UINT32_C(1) << (k->M > 0 ? k->M - 1 : 0)) |
                              ((a & 0x7FFFFFu) >> (23 - k->M));
    const uint32_t nanc = k->nan_kind == 1 ? nan_ieee : k->nan_kind == 2 ? k->nan_fixed[neg] : 0;
    code = is_inf ? k->inf_code[neg] : code;
    code = is_nan ? nanc : code;
    *flag |= (is_inf & (uint32_t)k->inf_flag) | (is_nan & (uint32_t)(k->nan_kind == 0));
    code = a == 0 ? (k->fnuz ? 0 : s) : code;
    return code;
}

/* Deterministic round-up decision in 32 bits: with sig < 2^24 every shift >= 25 decides like 25. */
static inline uint32_t round_up_bit32(const f32k *k, uint32_t sig, int shift, uint32_t n, int neg) {
    const uint32_t mask = (UINT32_C(1) << shift) - 1;
    const uint32_t rem = sig & mask;
    const uint32_t half = (mask + 1) >> 1;
    const uint32_t near_up = (rem > half) | ((rem == half) & ((uint32_t)k->tie_away | (n & 1)));
    const uint32_t dir_up = neg ? (uint32_t)k->up_dir[1] : (uint32_t)k->up_dir[0];
    return (rem != 0) & (k->nearest ? near_up : dir_up);
}

/* The deterministic radix-2 loop, written with loop-invariant scalars and selects only so that
 * the compiler vectorizes it (AVX2 clone at run time). */
#define R2_DET_LOOP(CODE_T)                                                                        \
    do {                                                                                           \
        CODE_T *cs = (CODE_T *)codes;                                                              \
        for (size_t i = 0; i < n; i++) {                                                           \
            const uint32_t u = xs[i];                                                              \
            const uint32_t neg = u >> 31;                                                          \
            const uint32_t a = u & 0x7FFFFFFFu;                                                    \
            const int32_t e = (int32_t)(a >> 23);                                                  \
            const int32_t ep = e > 1 ? e : 1;                                                      \
            const uint32_t sig = (a & 0x7FFFFFu) | (e > 0 ? 0x800000u : 0);                        \
            const int32_t ue = ep - 127;                                                           \
            const int32_t qe = (ue > emin ? ue : emin) - M;                                        \
            int32_t shift = qe - (ep - 150);                                                       \
            shift = shift > 25 ? 25 : shift;                                                       \
            uint32_t nq = sig >> shift;                                                            \
            const uint32_t mask = (UINT32_C(1) << shift) - 1;                                      \
            const uint32_t rem = sig & mask;                                                       \
            const uint32_t half = (mask + 1) >> 1;                                                 \
            const uint32_t near_up = (rem > half) | ((rem == half) & (tie_away | (nq & 1)));       \
            const uint32_t dir_up = neg ? up_neg : up_pos;                                         \
            const uint32_t up = (rem != 0) & ((near_up & near_sel) | (dir_up & ~near_sel));        \
            nq += up;                                                                              \
            uint32_t mag = ((uint32_t)(qe + M - emin) << M) + nq;                                  \
            mag = nq == 0 ? 0 : mag;                                                               \
            const uint32_t ovf = mag > max_mag;                                                    \
            const uint32_t s = neg ? sign_bit : 0;                                                 \
            uint32_t code = ovf ? (neg ? ovf1 : ovf0) : (s | mag);                                 \
            code = (mag == 0) & fnuz ? 0 : code;                                                   \
            const uint32_t is_inf = a == 0x7F800000u;                                              \
            const uint32_t is_nan = a > 0x7F800000u;                                               \
            flag |= ovf & ovf_flag & (a < 0x7F800000u);                                            \
            const uint32_t nan_ieee = s | nan_base | ((a & 0x7FFFFFu) >> nan_shift);               \
            const uint32_t nanc = (nan_ieee & nan_is_ieee) | ((neg ? nanf1 : nanf0) & ~nan_is_ieee);\
            code = is_inf ? (neg ? inf1 : inf0) : code;                                            \
            code = is_nan ? nanc : code;                                                           \
            flag |= (is_inf & inf_flag) | (is_nan & nan_flag);                                    \
            code = a == 0 ? (s & ~fnuz_mask) : code;                                               \
            cs[i] = (CODE_T)code;                                                                  \
        }                                                                                          \
    } while (0)

static int run_r2_det(const f32k *k, const float *x, size_t n, void *codes, int code_bytes) {
    const uint32_t *xs = (const uint32_t *)(const void *)x;
    const int32_t emin = k->emin, M = k->M;
    const uint32_t tie_away = (uint32_t)k->tie_away, near_sel = k->nearest ? 0xFFFFFFFFu : 0;
    const uint32_t up_pos = (uint32_t)k->up_dir[0], up_neg = (uint32_t)k->up_dir[1];
    const uint32_t max_mag = k->max_mag, sign_bit = k->sign_bit;
    const uint32_t ovf0 = k->ovf_code[0], ovf1 = k->ovf_code[1], inf0 = k->inf_code[0], inf1 = k->inf_code[1];
    const uint32_t nanf0 = k->nan_kind == 2 ? k->nan_fixed[0] : 0, nanf1 = k->nan_kind == 2 ? k->nan_fixed[1] : 0;
    const uint32_t nan_is_ieee = k->nan_kind == 1 ? 0xFFFFFFFFu : 0;
    const uint32_t nan_base = k->inf_mag | (UINT32_C(1) << (M - 1));
    const uint32_t nan_shift = (uint32_t)(23 - M);
    const uint32_t fnuz = (uint32_t)k->fnuz, fnuz_mask = k->fnuz ? 0xFFFFFFFFu : 0;
    const uint32_t ovf_flag = (uint32_t)k->ovf_flag, inf_flag = (uint32_t)k->inf_flag;
    const uint32_t nan_flag = (uint32_t)(k->nan_kind == 0);
    uint32_t flag = 0;
    if (code_bytes == 1) R2_DET_LOOP(uint8_t);
    else if (code_bytes == 2) R2_DET_LOOP(uint16_t);
    else R2_DET_LOOP(uint32_t);
    return flag != 0;
}



/* Radix-2 float: quantum 2^qe with qe = max(ue, emin) - M; code magnitude
 * ((qe + M - emin) << M) + n covers normals, subnormals and the carry into the next binade. */
static inline uint32_t encode_r2(const f32k *k, uint32_t u, uint64_t index, uint32_t *flag) {
    const int neg = (int)(u >> 31);
    const uint32_t a = u & 0x7FFFFFFFu;
    const int e = (int)(a >> 23);
    const int ep = e ? e : 1;
    const uint64_t sig = (a & 0x7FFFFFu) | (e ? 0x800000u : 0);
    const int ue = ep - 127;
    const int qe = (ue > k->emin ? ue : k->emin) - k->M;
    int shift = qe - (ep - 150);                  /* >= 0 because M <= 23 and emin >= -126 */
    shift = shift > 63 ? 63 : shift;              /* sig < 2^24: the same decision (and stochastic fraction) as any larger shift */
    uint64_t n = sig >> shift;
    n += round_up_bit(k, sig, shift, n, neg, index);
    uint64_t mag = ((uint64_t)(qe + k->M - k->emin) << k->M) + n;
    mag = n == 0 ? 0 : mag;
    const uint32_t ovf = mag > k->max_mag;
    uint32_t code = ovf ? k->ovf_code[neg] : ((neg ? k->sign_bit : 0) | (uint32_t)mag);
    code = (mag == 0 && k->fnuz) ? 0 : code;
    *flag |= ovf & (uint32_t)k->ovf_flag & (a < 0x7F800000u);
    return float_specials(k, a, neg, code, flag);
}

/* Radix-4 float without mantissa: r = |x| 2^phase / 4^kk in [1, 4); odd ue means r = 2 * 1.m. */
static inline uint32_t encode_r4(const f32k *k, uint32_t u, uint64_t index, uint32_t *flag) {
    const int neg = (int)(u >> 31);
    const uint32_t a = u & 0x7FFFFFFFu;
    const int e = (int)(a >> 23);
    const int ep = e ? e : 1;
    const uint64_t sig = (a & 0x7FFFFFu) | (e ? 0x800000u : 0);
    const uint32_t s = neg ? k->sign_bit : 0;
    const int ue = ep - 127 + k->phase;
    int kk = ue >= 0 ? ue / 2 : -((1 - ue) / 2);
    const uint64_t m = a & 0x7FFFFFu;
    /* below the smallest magnitude: linear between 0 and 4^kmin */
    int ushift = 2 * k->kmin - (ep - 150 + k->phase);
    ushift = ushift > 63 ? 63 : (ushift < 0 ? 0 : ushift);
    uint64_t un = sig >> ushift;
    un += round_up_bit(k, sig, ushift, un, neg, index);
    const uint32_t under_code = s | (un ? (uint32_t)k->fmin : 0);   /* signed zero below */
    /* inside [4^kmin, ...): pick 4^kk or 4^(kk+1) */
    const uint64_t X = (ue & 1) ? (UINT64_C(0x800000) + 2 * m) : m;   /* (r - 1) * 2^23 */
    uint64_t up;
    if (k->stochastic) {
        uint64_t frac = ((X << 29) / 3) >> (52 - k->R);
        uint64_t rnd = ns_rng_bits(k->seed_mix, k->index_offset + index, k->R);
        up = (frac + rnd) >> k->R;
    } else {
        const uint64_t thr = k->r4_linear ? UINT64_C(0xC00000) : UINT64_C(0x800000);
        const uint64_t even_field = ((kk + k->bias) & 1) == 0;
        const uint64_t near_up = (X > thr) | ((X == thr) & (k->tie_away ? 1 : !even_field));
        up = k->nearest ? near_up : (uint64_t)k->up_dir[neg];
    }
    up &= X != 0;
    kk += (int)up;
    const uint32_t ovf = kk > k->kmax;
    uint32_t code = ovf ? k->ovf_code[neg] : (s | (uint32_t)(kk + k->bias));
    const int under = (ue >= 0 ? ue / 2 : -((1 - ue) / 2)) < k->kmin;
    code = under ? under_code : code;
    *flag |= ovf & (uint32_t)k->ovf_flag & !under & (a < 0x7F800000u);
    return float_specials(k, a, neg, code, flag);
}

/* Integers: |x| = sig >> (150 - e'), rounded to an integer, then range-checked per sign. */
static inline uint32_t encode_int(const f32k *k, uint32_t u, uint64_t index, uint32_t *flag) {
    const int neg = (int)(u >> 31);
    const uint32_t a = u & 0x7FFFFFFFu;
    const int e = (int)(a >> 23);
    const int ep = e ? e : 1;
    const uint64_t sig = (a & 0x7FFFFFu) | (e ? 0x800000u : 0);
    int shift = 150 - ep;
    const int huge = shift < -8;                  /* |x| >= 2^32: past every integer format */
    const int left = shift < 0 ? -shift : 0;
    shift = shift < 0 ? 0 : (shift > 63 ? 63 : shift);
    uint64_t n = (sig << (huge ? 0 : left)) >> shift;
    n += round_up_bit(k, sig, shift, n, neg, index);
    n = huge ? (UINT64_C(1) << 40) : n;
    const uint32_t ovf = (int64_t)n > k->int_lim[neg];
    const uint64_t v = neg ? (UINT64_C(0) - n) : n;
    uint32_t code = (uint32_t)(v & k->int_mask);
    code = (ovf && !k->int_wrap) ? k->ovf_code[neg] : code;
    const uint32_t special = a >= 0x7F800000u;
    *flag |= (ovf & (uint32_t)k->ovf_flag) | (ovf & (uint32_t)huge & (uint32_t)k->int_wrap) | special;
    code = special ? 0 : code;
    return a == 0 ? 0 : code;
}

#define KERNEL_LOOP(FN, CODE_T)                                                             \
    do {                                                                                    \
        CODE_T *cs = (CODE_T *)codes;                                                       \
        const uint32_t *xs = (const uint32_t *)(const void *)x;                             \
        for (size_t i = 0; i < n; i++) cs[i] = (CODE_T)FN(k, xs[i], i, &flag);              \
    } while (0)
#define KERNEL_WIDTHS(FN)                                                                   \
    do {                                                                                    \
        if (code_bytes == 1) KERNEL_LOOP(FN, uint8_t);                                      \
        else if (code_bytes == 2) KERNEL_LOOP(FN, uint16_t);                                \
        else KERNEL_LOOP(FN, uint32_t);                                                     \
    } while (0)


NS_CLONES
static int run_kernel(const f32k *kp, const float *x, size_t n, void *codes, int code_bytes) {
    const f32k kl = *kp;      /* a local copy: stores to codes cannot alias it, so loads hoist */
    const f32k *k = &kl;
    uint32_t flag = 0;
    if (k->kind == 0) KERNEL_WIDTHS(encode_r2);
    else if (k->kind == 1) KERNEL_WIDTHS(encode_r4);
    else KERNEL_WIDTHS(encode_int);
    return flag != 0;
}

static int mag_mode_of(int rounding, int neg) { return ns_magnitude_mode(rounding, neg); }

/* Resolve the call's constants; 0 when the kernel does not cover this format. */
static int prepare(f32k *k, const ns_format *f, const ns_encode_opts *o) {
    memset(k, 0, sizeof *k);
    if (o->underflow != NS_UNF_ROUND) return 0;
    const int mm[2] = {mag_mode_of(o->rounding, 0), mag_mode_of(o->rounding, 1)};
    k->nearest = mm[0] == NS_MAG_NEAREST_EVEN || mm[0] == NS_MAG_NEAREST_AWAY;
    k->tie_away = mm[0] == NS_MAG_NEAREST_AWAY;
    k->up_dir[0] = mm[0] == NS_MAG_UP;
    k->up_dir[1] = mm[1] == NS_MAG_UP;
    k->stochastic = mm[0] == NS_MAG_STOCHASTIC;
    k->R = o->random_bits;
    k->seed_mix = ns_seed_key(o->seed);
    k->index_offset = o->index_offset;
    k->sign_bit = UINT32_C(1) << (f->bits - 1);

    if (f->kind == NS_KIND_INT) {
        k->kind = 2;
        k->int_mask = f->bits == 32 ? 0xFFFFFFFFu : ((UINT32_C(1) << f->bits) - 1);
        int64_t maxpos = f->is_signed ? ((INT64_C(1) << (f->bits - 1)) - 1) : (int64_t)k->int_mask;
        int64_t maxneg = f->is_signed ? (f->symmetric ? maxpos : maxpos + 1) : 0;
        k->int_lim[0] = maxpos; k->int_lim[1] = maxneg;
        k->int_wrap = o->overflow == NS_OVF_WRAP;
        k->ovf_flag = o->overflow == NS_OVF_ERROR;
        k->ovf_code[0] = (uint32_t)maxpos & k->int_mask;
        k->ovf_code[1] = (uint32_t)(UINT64_C(0) - (uint64_t)maxneg) & k->int_mask;
        k->inf_flag = 1;                          /* inf into an integer: the generic path raises */
        k->nan_kind = o->nan_policy == NS_NAN_ZERO ? 3 : 0;
        return 1;
    }
    const int all_ones = (1 << f->exp_bits) - 1;
    const int fmax = f->specials == NS_SPECIALS_IEEE ? all_ones - 1 : all_ones;
    k->fnuz = f->specials == NS_SPECIALS_FNUZ;
    if (f->radix_log2 == 2) {
        k->kind = 1;
        k->bias = f->bias; k->phase = f->phase; k->r4_linear = f->r4_threshold == NS_R4_LINEAR;
        if (f->r4_zero != NS_R4_ZERO_EXP0) return 0;
        k->fmin = 1;
        k->kmin = 1 - f->bias; k->kmax = all_ones - f->bias;
        if (2 * k->kmin - f->phase <= -120 || 2 * k->kmax + 2 - f->phase >= 127) return 0;
        k->max_mag = (uint32_t)all_ones;
    } else {
        if (!f->subnormals || f->man_bits > 23 || f->man_bits < 1 || f->bias > 127) return 0;
        k->kind = 0;
        k->M = f->man_bits; k->emin = 1 - f->bias; k->bias = f->bias;
        uint32_t man_top = (UINT32_C(1) << f->man_bits) - 1 - (f->specials == NS_SPECIALS_FN ? 1 : 0);
        k->max_mag = ((uint32_t)fmax << f->man_bits) | man_top;
        /* values past float32's range into a format with a larger range cannot occur; formats whose
         * top binade exceeds float32's are still exact because float32 inputs never reach it */
    }
    k->inf_mag = (uint32_t)all_ones << f->man_bits;
    for (int neg = 0; neg < 2; neg++) {
        uint32_t s = neg ? k->sign_bit : 0;
        uint32_t maxc = s | k->max_mag;
        uint32_t nanc = f->specials == NS_SPECIALS_IEEE ? (s | k->inf_mag | (UINT32_C(1) << (f->man_bits - 1)))
                      : f->specials == NS_SPECIALS_FN ? (s | (k->sign_bit - 1)) : k->sign_bit;
        switch (o->overflow) {
        case NS_OVF_TO_INF:
            k->ovf_code[neg] = mm[neg] == NS_MAG_DOWN ? maxc : (s | k->inf_mag);
            k->inf_code[neg] = s | k->inf_mag; break;
        case NS_OVF_TO_NAN: k->ovf_code[neg] = nanc; k->inf_code[neg] = nanc; break;
        case NS_OVF_ERROR: k->ovf_code[neg] = 0; k->inf_code[neg] = 0; k->ovf_flag = 1; k->inf_flag = 1; break;
        default: k->ovf_code[neg] = maxc; k->inf_code[neg] = maxc;
        }
        k->nan_fixed[neg] = nanc;
    }
    if (f->specials == NS_SPECIALS_IEEE) k->nan_kind = 1;
    else if (f->specials == NS_SPECIALS_NONE) k->nan_kind = o->nan_policy == NS_NAN_ZERO ? 3 : 0;
    else k->nan_kind = 2;
    return 1;
}

int ns_encode_f32_kernel(const float *x, size_t n, const ns_format *f, const ns_encode_opts *o,
                         void *codes, int32_t code_bytes) {
    f32k k;
    if (!prepare(&k, f, o)) return 0;
    size_t done = 0;
    uint32_t flag = 0;
#ifdef NS_X86
    /* NUMSIM_LEVEL=portable forces the portable kernels (the tests compare both). */
    const int simd = !k.stochastic && ns_level_encode_f32(ns_cpu_usable()) >= 1;
    if (simd && k.kind == 0) done = ns_encode_f32_r2_avx2(&k, x, n, codes, code_bytes, &flag);
    else if (simd && k.kind == 1) done = ns_encode_f32_r4_avx2(&k, x, n, codes, code_bytes, &flag);
    else if (simd && k.kind == 2 && f->bits <= 16) done = ns_encode_f32_int_avx2(&k, x, n, codes, code_bytes, &flag);
#endif
    if (flag) return 0;
    x += done; n -= done;
    codes = (char *)codes + done * (size_t)code_bytes;
    if (k.kind == 0 && !k.stochastic) return run_r2_det(&k, x, n, codes, code_bytes) == 0;
    k.index_offset += done;
    return run_kernel(&k, x, n, codes, code_bytes) == 0;
}
