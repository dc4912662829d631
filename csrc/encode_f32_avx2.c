/* The float32 encode kernels on AVX2 (deterministic modes): the lanes of csrc/encode_f32.c's portable
 * loops, eight float32 at a time. Run only where ns_level_encode_f32(ns_cpu_usable()) >= 1. */
#include "encode_f32_isa.h"

#ifdef NS_X86
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
size_t ns_encode_f32_r2_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
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
size_t ns_encode_f32_r4_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
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
size_t ns_encode_f32_int_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out) {
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
#endif
