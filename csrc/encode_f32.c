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
#include <stdlib.h>


#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NS_CLONES
#endif

/* Constants of one call, resolved from the format and the options. */
typedef struct f32k {
    int kind;              /* 0 radix-2 float, 1 radix-4 float, 2 integer */
    int M, emin, bias, phase, r4_linear, kmin, kmax, fmin;
    uint32_t sign_bit, max_mag, inf_mag;
    uint32_t ovf_code[2], inf_code[2], nan_fixed[2];
    int nan_kind;          /* 0 no NaN (flag), 1 IEEE payload NaN, 2 fixed code, 3 map to zero */
    int ovf_flag, inf_flag, fnuz;
    int nearest, tie_away, up_dir[2], stochastic, R;
    uint64_t seed_mix, index_offset;
    int64_t int_lim[2];    /* integers: largest magnitude per sign */
    uint32_t int_mask;
    int int_wrap;
} f32k;

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


#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* Lane constants of the deterministic rounding decision (all-ones masks). */
typedef struct vround { __m256i near_sel, tie_away, up_pos, up_neg; } vround;

__attribute__((target("avx2")))
static inline vround vround_of(const f32k *k) {
    vround v;
    v.near_sel = _mm256_set1_epi32(k->nearest ? -1 : 0);
    v.tie_away = _mm256_set1_epi32(k->tie_away ? -1 : 0);
    v.up_pos = _mm256_set1_epi32(k->up_dir[0] ? -1 : 0);
    v.up_neg = _mm256_set1_epi32(k->up_dir[1] ? -1 : 0);
    return v;
}

/* sig >> shift rounded by the deterministic mode (shift in [0, 25], sig < 2^24): the lanes of
 * round_up_bit32. */
__attribute__((target("avx2")))
static inline __m256i vround_shift(__m256i sig, __m256i shift, __m256i negm, const vround *v) {
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
    const __m256i nq = _mm256_srlv_epi32(sig, shift);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, shift), one);
    const __m256i rem = _mm256_and_si256(sig, mask);
    const __m256i half = _mm256_srli_epi32(_mm256_add_epi32(mask, one), 1);
    const __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(nq, one), one);
    const __m256i near_up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                            _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), _mm256_or_si256(v->tie_away, odd)));
    const __m256i dir_up = _mm256_blendv_epi8(v->up_pos, v->up_neg, negm);
    const __m256i up = _mm256_andnot_si256(_mm256_cmpeq_epi32(rem, zero), _mm256_blendv_epi8(dir_up, near_up, v->near_sel));
    return _mm256_sub_epi32(nq, up);            /* up is all-ones (-1) where rounding up */
}

/* Store eight codes at index i in the caller's code width. */
__attribute__((target("avx2")))
static inline void vstore_codes(__m256i code, void *codes, size_t i, int code_bytes) {
    if (code_bytes == 4) { _mm256_storeu_si256((__m256i *)((uint32_t *)codes + i), code); return; }
    uint32_t tmp[8];
    _mm256_storeu_si256((__m256i *)tmp, code);
    if (code_bytes == 2) for (int j = 0; j < 8; j++) ((uint16_t *)codes)[i + j] = (uint16_t)tmp[j];
    else for (int j = 0; j < 8; j++) ((uint8_t *)codes)[i + j] = (uint8_t)tmp[j];
}

/* AVX2: the same lanes of arithmetic as R2_DET_LOOP, eight float32 at a time. Masks are all-ones
 * lanes; every quantity stays below 2^31, so signed compares are exact. */
__attribute__((target("avx2")))
static size_t r2_det_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
    const __m256i emin = _mm256_set1_epi32(k->emin), M = _mm256_set1_epi32(k->M);
    const vround vr = vround_of(k);
    const __m256i max_mag = _mm256_set1_epi32((int)k->max_mag), sign_bit = _mm256_set1_epi32((int)k->sign_bit);
    const __m256i ovf0 = _mm256_set1_epi32((int)k->ovf_code[0]), ovf1 = _mm256_set1_epi32((int)k->ovf_code[1]);
    const __m256i inf0 = _mm256_set1_epi32((int)k->inf_code[0]), inf1 = _mm256_set1_epi32((int)k->inf_code[1]);
    const __m256i nanf0 = _mm256_set1_epi32(k->nan_kind == 2 ? (int)k->nan_fixed[0] : 0);
    const __m256i nanf1 = _mm256_set1_epi32(k->nan_kind == 2 ? (int)k->nan_fixed[1] : 0);
    const __m256i nan_is_ieee = _mm256_set1_epi32(k->nan_kind == 1 ? -1 : 0);
    const __m256i nan_base = _mm256_set1_epi32((int)(k->inf_mag | (UINT32_C(1) << (k->M - 1))));
    const __m128i nan_shift = _mm_cvtsi32_si128(23 - k->M);
    const __m256i fnuz = _mm256_set1_epi32(k->fnuz ? -1 : 0);
    const __m256i ovf_flag = _mm256_set1_epi32(k->ovf_flag ? -1 : 0), inf_flag = _mm256_set1_epi32(k->inf_flag ? -1 : 0);
    const __m256i nan_flag = _mm256_set1_epi32(k->nan_kind == 0 ? -1 : 0);
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), man_mask = _mm256_set1_epi32(0x7FFFFF);
    const __m256i hidden = _mm256_set1_epi32(0x800000), inf_bits = _mm256_set1_epi32(0x7F800000);
    const __m256i c25 = _mm256_set1_epi32(25), c127 = _mm256_set1_epi32(127), c150 = _mm256_set1_epi32(150);
    const __m256i qbias = _mm256_set1_epi32(k->M - k->emin);
    __m256i flag = zero;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        const __m256i negm = _mm256_srai_epi32(u, 31);
        const __m256i a = _mm256_and_si256(u, abs_mask);
        const __m256i e = _mm256_srli_epi32(a, 23);
        const __m256i ep = _mm256_max_epi32(e, one);
        const __m256i sig = _mm256_or_si256(_mm256_and_si256(a, man_mask), _mm256_and_si256(_mm256_cmpgt_epi32(e, zero), hidden));
        const __m256i ue = _mm256_sub_epi32(ep, c127);
        const __m256i qe = _mm256_sub_epi32(_mm256_max_epi32(ue, emin), M);
        const __m256i shift = _mm256_min_epi32(_mm256_add_epi32(_mm256_sub_epi32(qe, ep), c150), c25);
        const __m256i nq = vround_shift(sig, shift, negm, &vr);
        const __m256i nz = _mm256_cmpeq_epi32(nq, zero);
        __m256i mag = _mm256_add_epi32(_mm256_sllv_epi32(_mm256_add_epi32(qe, qbias), M), nq);
        mag = _mm256_andnot_si256(nz, mag);
        const __m256i ovf = _mm256_cmpgt_epi32(mag, max_mag);
        const __m256i s = _mm256_and_si256(negm, sign_bit);
        __m256i code = _mm256_blendv_epi8(_mm256_or_si256(s, mag), _mm256_blendv_epi8(ovf0, ovf1, negm), ovf);
        code = _mm256_andnot_si256(_mm256_and_si256(_mm256_cmpeq_epi32(mag, zero), fnuz), code);
        const __m256i is_inf = _mm256_cmpeq_epi32(a, inf_bits);
        const __m256i is_nan = _mm256_cmpgt_epi32(a, inf_bits);
        const __m256i finite = _mm256_cmpgt_epi32(inf_bits, a);
        flag = _mm256_or_si256(flag, _mm256_and_si256(_mm256_and_si256(ovf, ovf_flag), finite));
        const __m256i nan_ieee = _mm256_or_si256(_mm256_or_si256(s, nan_base), _mm256_srl_epi32(_mm256_and_si256(a, man_mask), nan_shift));
        const __m256i nanc = _mm256_blendv_epi8(_mm256_blendv_epi8(nanf0, nanf1, negm), nan_ieee, nan_is_ieee);
        code = _mm256_blendv_epi8(code, _mm256_blendv_epi8(inf0, inf1, negm), is_inf);
        code = _mm256_blendv_epi8(code, nanc, is_nan);
        flag = _mm256_or_si256(flag, _mm256_or_si256(_mm256_and_si256(is_inf, inf_flag), _mm256_and_si256(is_nan, nan_flag)));
        code = _mm256_blendv_epi8(code, _mm256_andnot_si256(fnuz, s), _mm256_cmpeq_epi32(a, zero));
        vstore_codes(code, codes, i, code_bytes);
    }
    *flag_out = !_mm256_testz_si256(flag, flag);
    return i;
}

/* AVX2 radix-4 (no mantissa), deterministic modes: kk = floor(ue / 2) is an arithmetic shift. */
__attribute__((target("avx2")))
static size_t r4_det_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256(), all = _mm256_set1_epi32(-1);
    const vround vr = vround_of(k);
    const __m256i sign_bit = _mm256_set1_epi32((int)k->sign_bit), fmin = _mm256_set1_epi32(k->fmin);
    const __m256i kmin = _mm256_set1_epi32(k->kmin), kmax = _mm256_set1_epi32(k->kmax), bias = _mm256_set1_epi32(k->bias);
    const __m256i ovf0 = _mm256_set1_epi32((int)k->ovf_code[0]), ovf1 = _mm256_set1_epi32((int)k->ovf_code[1]);
    const __m256i inf0 = _mm256_set1_epi32((int)k->inf_code[0]), inf1 = _mm256_set1_epi32((int)k->inf_code[1]);
    const __m256i ovf_flag = _mm256_set1_epi32(k->ovf_flag ? -1 : 0), inf_flag = _mm256_set1_epi32(k->inf_flag ? -1 : 0);
    const __m256i nan_flag = _mm256_set1_epi32(k->nan_kind == 0 ? -1 : 0);
    const __m256i thr = _mm256_set1_epi32(k->r4_linear ? 0xC00000 : 0x800000);
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), man_mask = _mm256_set1_epi32(0x7FFFFF);
    const __m256i hidden = _mm256_set1_epi32(0x800000), inf_bits = _mm256_set1_epi32(0x7F800000);
    const __m256i c25 = _mm256_set1_epi32(25), c127p = _mm256_set1_epi32(127 - k->phase);
    const __m256i ushift_base = _mm256_set1_epi32(2 * k->kmin + 150 - k->phase);
    __m256i flag = zero;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        const __m256i negm = _mm256_srai_epi32(u, 31);
        const __m256i a = _mm256_and_si256(u, abs_mask);
        const __m256i e = _mm256_srli_epi32(a, 23);
        const __m256i ep = _mm256_max_epi32(e, one);
        const __m256i m = _mm256_and_si256(a, man_mask);
        const __m256i sig = _mm256_or_si256(m, _mm256_and_si256(_mm256_cmpgt_epi32(e, zero), hidden));
        const __m256i s = _mm256_and_si256(negm, sign_bit);
        const __m256i ue = _mm256_sub_epi32(ep, c127p);
        __m256i kk = _mm256_srai_epi32(ue, 1);
        const __m256i dir_up = _mm256_blendv_epi8(vr.up_pos, vr.up_neg, negm);
        /* below 4^kmin: linear rounding between 0 and the smallest magnitude */
        const __m256i ushift = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(ushift_base, ep), zero), c25);
        const __m256i un = vround_shift(sig, ushift, negm, &vr);
        const __m256i unz = _mm256_cmpgt_epi32(un, zero);
        const __m256i under_code = _mm256_or_si256(s, _mm256_and_si256(unz, fmin));
        /* inside the grid: X = (r - 1) 2^23 with r = |x| 2^phase / 4^kk */
        const __m256i oddm = _mm256_cmpeq_epi32(_mm256_and_si256(ue, one), one);
        const __m256i X = _mm256_blendv_epi8(m, _mm256_add_epi32(hidden, _mm256_add_epi32(m, m)), oddm);
        const __m256i field = _mm256_add_epi32(kk, bias);
        const __m256i odd_field = _mm256_cmpeq_epi32(_mm256_and_si256(field, one), one);
        const __m256i near_up = _mm256_or_si256(_mm256_cmpgt_epi32(X, thr),
                                                _mm256_and_si256(_mm256_cmpeq_epi32(X, thr), _mm256_or_si256(vr.tie_away, odd_field)));
        const __m256i up = _mm256_andnot_si256(_mm256_cmpeq_epi32(X, zero), _mm256_blendv_epi8(dir_up, near_up, vr.near_sel));
        kk = _mm256_sub_epi32(kk, up);
        const __m256i ovf = _mm256_cmpgt_epi32(kk, kmax);
        __m256i code = _mm256_blendv_epi8(_mm256_or_si256(s, _mm256_add_epi32(kk, bias)), _mm256_blendv_epi8(ovf0, ovf1, negm), ovf);
        const __m256i under = _mm256_cmpgt_epi32(kmin, _mm256_srai_epi32(ue, 1));
        code = _mm256_blendv_epi8(code, under_code, under);
        const __m256i is_inf = _mm256_cmpeq_epi32(a, inf_bits), is_nan = _mm256_cmpgt_epi32(a, inf_bits);
        const __m256i finite = _mm256_cmpgt_epi32(inf_bits, a);
        flag = _mm256_or_si256(flag, _mm256_and_si256(_mm256_andnot_si256(under, _mm256_and_si256(ovf, ovf_flag)), finite));
        code = _mm256_blendv_epi8(code, _mm256_blendv_epi8(inf0, inf1, negm), is_inf);
        code = _mm256_andnot_si256(is_nan, code);                 /* nan='zero' (else flagged) */
        flag = _mm256_or_si256(flag, _mm256_or_si256(_mm256_and_si256(is_inf, inf_flag), _mm256_and_si256(is_nan, nan_flag)));
        code = _mm256_blendv_epi8(code, s, _mm256_cmpeq_epi32(a, zero));
        (void)all;
        vstore_codes(code, codes, i, code_bytes);
    }
    *flag_out = !_mm256_testz_si256(flag, flag);
    return i;
}

/* AVX2 integers up to 16 bits, deterministic modes. Wrap uses the exact integer mod 2^32
 * (sllv gives 0 for counts >= 32, which is the value mod 2^32 for |x| >= 2^32). */
__attribute__((target("avx2")))
static size_t int_det_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
    const vround vr = vround_of(k);
    const __m256i lim0 = _mm256_set1_epi32((int)k->int_lim[0]), lim1 = _mm256_set1_epi32((int)k->int_lim[1]);
    const __m256i ovf0 = _mm256_set1_epi32((int)k->ovf_code[0]), ovf1 = _mm256_set1_epi32((int)k->ovf_code[1]);
    const __m256i wrap = _mm256_set1_epi32(k->int_wrap ? -1 : 0), ovf_flag = _mm256_set1_epi32(k->ovf_flag ? -1 : 0);
    const __m256i nan_flag = _mm256_set1_epi32(k->nan_kind == 0 ? -1 : 0), imask = _mm256_set1_epi32((int)k->int_mask);
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), man_mask = _mm256_set1_epi32(0x7FFFFF);
    const __m256i hidden = _mm256_set1_epi32(0x800000), inf_bits = _mm256_set1_epi32(0x7F800000);
    const __m256i c25 = _mm256_set1_epi32(25), c150 = _mm256_set1_epi32(150);
    __m256i flag = zero;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        const __m256i negm = _mm256_srai_epi32(u, 31);
        const __m256i a = _mm256_and_si256(u, abs_mask);
        const __m256i e = _mm256_srli_epi32(a, 23);
        const __m256i ep = _mm256_max_epi32(e, one);
        const __m256i sig = _mm256_or_si256(_mm256_and_si256(a, man_mask), _mm256_and_si256(_mm256_cmpgt_epi32(e, zero), hidden));
        const __m256i sh = _mm256_sub_epi32(c150, ep);
        const __m256i left = _mm256_cmpgt_epi32(zero, sh);             /* |x| >= 2^24 */
        const __m256i shift = _mm256_min_epi32(_mm256_max_epi32(sh, zero), c25);
        const __m256i nq = vround_shift(sig, shift, negm, &vr);
        const __m256i big = _mm256_sllv_epi32(sig, _mm256_sub_epi32(zero, sh)); /* exact mod 2^32 */
        const __m256i ovf = _mm256_or_si256(left, _mm256_cmpgt_epi32(nq, _mm256_blendv_epi8(lim0, lim1, negm)));
        const __m256i mag = _mm256_blendv_epi8(nq, big, left);
        const __m256i v = _mm256_and_si256(_mm256_blendv_epi8(mag, _mm256_sub_epi32(zero, mag), negm), imask);
        __m256i code = _mm256_blendv_epi8(v, _mm256_blendv_epi8(ovf0, ovf1, negm), _mm256_andnot_si256(wrap, ovf));
        const __m256i special = _mm256_cmpgt_epi32(a, _mm256_sub_epi32(inf_bits, one));
        const __m256i is_nan = _mm256_cmpgt_epi32(a, inf_bits);
        flag = _mm256_or_si256(flag, _mm256_and_si256(_mm256_andnot_si256(special, ovf), ovf_flag));
        flag = _mm256_or_si256(flag, _mm256_or_si256(_mm256_andnot_si256(is_nan, special), _mm256_and_si256(is_nan, nan_flag)));
        code = _mm256_andnot_si256(special, code);
        code = _mm256_andnot_si256(_mm256_cmpeq_epi32(a, zero), code);
        vstore_codes(code, codes, i, code_bytes);
    }
    *flag_out = !_mm256_testz_si256(flag, flag);
    return i;
}
static int have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
static size_t r2_det_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
    (void)k; (void)x; (void)n; (void)codes; (void)code_bytes; *flag_out = 0; return 0;
}
static size_t r4_det_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
    (void)k; (void)x; (void)n; (void)codes; (void)code_bytes; *flag_out = 0; return 0;
}
static size_t int_det_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
    (void)k; (void)x; (void)n; (void)codes; (void)code_bytes; *flag_out = 0; return 0;
}
static int have_avx2(void) { return 0; }
#endif

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
    /* NUMSIM_NO_SIMD=1 forces the scalar kernels (the tests compare both). */
    const int simd = !k.stochastic && have_avx2() && getenv("NUMSIM_NO_SIMD") == NULL;
    size_t done = 0;
    uint32_t flag = 0;
    if (simd && k.kind == 0) done = r2_det_avx2(&k, x, n, codes, code_bytes, &flag);
    else if (simd && k.kind == 1) done = r4_det_avx2(&k, x, n, codes, code_bytes, &flag);
    else if (simd && k.kind == 2 && f->bits <= 16) done = int_det_avx2(&k, x, n, codes, code_bytes, &flag);
    if (flag) return 0;
    x += done; n -= done;
    codes = (char *)codes + done * (size_t)code_bytes;
    if (k.kind == 0 && !k.stochastic) return run_r2_det(&k, x, n, codes, code_bytes) == 0;
    k.index_offset += done;
    return run_kernel(&k, x, n, codes, code_bytes) == 0;
}
