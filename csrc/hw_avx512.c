/* The fused-adder GEMM's AVX-512F kernel: 16 output columns x up to 4 rows a tile. Portable parts
 * (operands, panels, the scalar datapath every flagged lane falls back to, threads) are in csrc/hw.c;
 * this file runs only where ns_level_fused_gemm says AVX-512F is there. */
#include <stdlib.h>
#include <string.h>
#include "hw_isa.h"
#include "ns_internal.h"

/*  * The same step as fused_step_core, computed on exact doubles (or exact fp32 products, see
 * hw_f32_products_ok) instead of shifted integers. For the units it takes (simd_unit_ok:
 * input-exponent-sum alignment, sum truncated toward zero, and when c starts the accumulator
 * without promotion, a 23-bit accumulator) every output it keeps has the
 * scalar kernel's bits; the others are flagged and recomputed by fused_output. Proof, per step:
 *
 * Ranges. Nonzero finite operands x have e = floor(log2|x|) in [-140, 130] (checked per GEMM by
 * operand_exponent_range and ns_fused_simd_path: fp16 [-24, 15], bf16 [-133, 127], e4m3 [-9, 8], e5m2 [-16, 15]) and at most 24
 * significant bits, so a product p = a * b is exact in a double (<= 48 bits) and, with the input
 * rule, 2^(ea+eb) <= |p| < 2^(ea+eb+2), ea + eb in [-280, 260]. The accumulator is an fp32 value,
 * exponent in [-149, 127] (subnormals by their true exponent: their double is normal). Zero and
 * non-finite operands carry a zero-exponent marker (HW_SIMD_ZERO_EXP16, like the scalar kernel's
 * NS_HW_ZERO_EXP) and a 0.0 value, so they never set emax and contribute +-0 terms. The
 * accumulator's exponent is getexp of its double (exact); a zero accumulator gives INT32_MIN. emax is clamped below at HW_SIMD_EMIN = -300, which only a
 * step with no nonzero term reaches (then every term is +-0 and the result is +0, as in scalar).
 * So emax in [-300, 260], scale = 2^(kb - emax) has exponent in [-252, 332] with kb in [8, 32].
 *
 * Terms. x = p * scale (scalef: p * 2^floor(y), y the exponent as a double) is exact: |x| < 2^(kb + 2) <= 2^34 and |x| >= 2^-280 * 2^-252 > 2^-1022
 * (no overflow, no subnormal), a scaling by a power of two. trunc(x) (roundscale toward zero) is
 * the scalar term: there p = +-pm * 2^(ea+eb-mab) and t = trunc(pm * 2^(kb-mab-(emax-ea-eb))), the
 * same real number truncated toward zero, with the sign applied after (truncation is odd). The
 * accumulator's term trunc(acc * scale) is the scalar shift_toward_zero(cm, kb - 23 - (emax - ec)).
 *
 * Sum. k_step + 1 <= 257 integer terms each below 2^(kb + 2) <= 2^34: every partial sum is an
 * integer below 2^43 < 2^53, so the double sum is exact in any order (the partial sums below may
 * be added in any grouping). A zero sum is +0, as in scalar: S is never -0, since it starts from the
 * accumulator's term trunc(acc * scale) and acc is never -0 (c enters as c + 0.0, and by induction
 * each step's acc is +0 or nonzero), and in IEEE addition x + -0 = x and +0 + -0 = +0.
 *
 * Rounding into the accumulator. r = S * 2^(emax - kb) is exact (|S| in [1, 2^43), exponent of the
 * scale in [-332, 252]: r is a normal double). The scalar hot path applies when 2^-126 <= |r| <
 * 2^128 (e = msb(|S|) + emax - kb in [-126, 128)) and keeps the top acc_man_bits + 1 bits of |S|,
 * i.e. truncates r's significand: clearing r's low 52 - acc_man_bits fraction bits does exactly
 * that, and the fp32 value (cvtpd_ps of it) is then exact. Lanes with 0 < |r| < 2^-126 or |r| >=
 * 2^128 (the scalar's general path: subnormal, underflow, overflow / saturation) are flagged.
 *
 * fp32 arithmetic after the steps (promotion adds, scale multiply, epilogue add of c) is done by
 * the same IEEE fp32 operations as the scalar kernel (f32_add / f32_mul), in the same thread, so
 * with the same MXCSR: _mm256_add_ps / _mm256_mul_ps round to nearest even and keep subnormals and
 * infinities exactly as addss / mulss do. Lanes whose c is inf or NaN, whose row or column has an inf
 * or NaN operand, are flagged from the start. The canonical NaN is applied at the end as scalar. */

#ifdef NS_X86
#include <immintrin.h>

/* 16 int32 lanes -> two vectors of 8 doubles (exact). */
__attribute__((target("avx512f"))) static inline void int32_to_pd_16(__m512i e, __m512d *lo, __m512d *hi) {
    *lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(e));
    *hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(e, 1));
}

/* floor(log2|x|) of 16 doubles (normal or zero) as int32 lanes: getexp is exact for normal doubles;
 * a zero gives -inf, which converts to INT32_MIN (below every product's exponent, as no term). */
__attribute__((target("avx512f"))) static inline __m512i exp_16(__m512d lo, __m512d hi) {
    __m256i l = _mm512_cvttpd_epi32(_mm512_getexp_pd(lo));
    __m256i h = _mm512_cvttpd_epi32(_mm512_getexp_pd(hi));
    return _mm512_inserti64x4(_mm512_castsi256_si512(l), h, 1);
}

/* R (1 to HW_SIMD_ROWS) rows x 16 columns of D. av/ae: the rows' A values / exponents (K each, row stride K);
 * bv/be: the column group's panel; c0: the rows' 16 c codes (0 where no c); exc: in, lanes already
 * sent to the scalar kernel; out, plus the lanes whose sums left the fp32 normal range. */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void fused_tile_avx512(
        const ns_fused_unit *u, int R, int F32, int has_c, const double *av, const float *avf, const int16_t *ae,
        const double *bv, const float *bvf, const int16_t *be, int64_t K, const uint32_t c0[HW_SIMD_ROWS][HW_SIMD_COLS], uint32_t out[HW_SIMD_ROWS][HW_SIMD_COLS],
        uint32_t exc[HW_SIMD_ROWS], int32_t *pmax) {
    const int64_t ks = u->k_step, promo = u->promotion_interval;
    const __m512i kb = _mm512_set1_epi32(u->kept_bits);
    const __m512d zero = _mm512_setzero_pd();
    const __m512d big = _mm512_set1_pd(0x1p128), small = _mm512_set1_pd(0x1p-126);
    const __m512i absmask = _mm512_set1_epi64(INT64_C(0x7fffffffffffffff));
    const __m512i truncmask = _mm512_set1_epi64(~((INT64_C(1) << (52 - u->acc_man_bits)) - 1));
    __m512d acc[HW_SIMD_ROWS][2];
    __m256 outer[HW_SIMD_ROWS][2], cf[HW_SIMD_ROWS][2];
    __mmask8 flag[HW_SIMD_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++) {
            cf[r][h] = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(c0[r] + 8 * h)));
            flag[r][h] = (__mmask8)(exc[r] >> (8 * h));
            outer[r][h] = (promo && !u->c_epilogue) ? cf[r][h] : _mm256_setzero_ps();
            /* c starts the 23-bit accumulator (simd_unit_ok); -0 becomes +0 as in scalar. */
            acc[r][h] = (!promo && !u->c_epilogue && has_c)
                ? _mm512_add_pd(_mm512_cvtps_pd(cf[r][h]), zero) : zero;
            acc[r][h] = _mm512_mask_blend_pd(flag[r][h], acc[r][h], zero);   /* inf / NaN c: flagged */
        }
    /* The products' part of every step's alignment exponent first: it does not depend on the
     * accumulator, so the step-to-step dependency chain is only the accumulator's own exponent.
     * In int16 lanes (half the width of int32): exponents of nonzero operands are in [-140, 130]
     * and zero ones HW_SIMD_ZERO_EXP16 = -16000, so every sum is in [-32000, 260] (no wrap), and a
     * sum with a zero operand is below the clamp HW_SIMD_EMIN: it never sets emax, as in scalar. */
    for (int64_t s = 0, q = 0; s < K; s += ks, q++)
        for (int r = 0; r < R; r++) {
            __m256i m = _mm256_set1_epi16(HW_SIMD_EMIN);
            for (int64_t k = s; k < s + ks; k++)
                m = _mm256_max_epi16(m, _mm256_add_epi16(_mm256_loadu_si256((const __m256i *)(be + k * HW_SIMD_COLS)),
                                                         _mm256_set1_epi16(ae[r * K + k])));
            _mm512_storeu_si512((void *)(pmax + (q * HW_SIMD_ROWS + r) * HW_SIMD_COLS), _mm512_cvtepi16_epi32(m));
        }
    for (int64_t s = 0, q = 0; s < K; s += ks, q++) {
        __m512i emax[HW_SIMD_ROWS];
        __m512d scale[HW_SIMD_ROWS][2], unscale[HW_SIMD_ROWS][2], sum0[HW_SIMD_ROWS][2], sum1[HW_SIMD_ROWS][2];
        for (int r = 0; r < R; r++) {
            emax[r] = _mm512_max_epi32(exp_16(acc[r][0], acc[r][1]),
                                       _mm512_loadu_si512((const void *)(pmax + (q * HW_SIMD_ROWS + r) * HW_SIMD_COLS)));
            /* scale = 2^(kb - emax) and its inverse as exponents for scalef: x * 2^floor(y), exact
             * here since every result is a normal double (ranges above) */
            int32_to_pd_16(_mm512_sub_epi32(kb, emax[r]), &scale[r][0], &scale[r][1]);
            unscale[r][0] = _mm512_sub_pd(zero, scale[r][0]);
            unscale[r][1] = _mm512_sub_pd(zero, scale[r][1]);
            for (int h = 0; h < 2; h++) {   /* the accumulator's term */
                sum0[r][h] = _mm512_roundscale_pd(_mm512_scalef_pd(acc[r][h], scale[r][h]),
                                                  _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                sum1[r][h] = zero;
            }
        }
        if (F32) {
            /* fp32 products (hw_f32_products_ok): 16 lanes a vector, truncated by cvttps_epi32 and
             * summed in int32; see the proof there. Two partial sums per row. */
            const __m512i kbm127 = _mm512_set1_epi32(u->kept_bits - 127);
            __m512 scf[HW_SIMD_ROWS];
            __m512i isum0[HW_SIMD_ROWS], isum1[HW_SIMD_ROWS];
            for (int r = 0; r < R; r++) {
                __m512i se = _mm512_sub_epi32(kb, _mm512_max_epi32(emax[r], kbm127));
                scf[r] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(se, _mm512_set1_epi32(127)), 23));
                isum0[r] = isum1[r] = _mm512_setzero_si512();
            }
#define HW_SIMD_TERMS_F32(k, P)                                                                      \
            do {                                                                                     \
                __m512 b = _mm512_loadu_ps(bvf + (k) * HW_SIMD_COLS);                                \
                for (int r = 0; r < R; r++) {                                                        \
                    __m512 a = _mm512_set1_ps(avf[r * K + (k)]);                                     \
                    P[r] = _mm512_add_epi32(P[r], _mm512_cvttps_epi32(                               \
                        _mm512_mul_ps(_mm512_mul_ps(a, b), scf[r])));                                \
                }                                                                                    \
            } while (0)
            int64_t k = s;
            for (; k + 1 < s + ks; k += 2) {
                HW_SIMD_TERMS_F32(k, isum0);
                HW_SIMD_TERMS_F32(k + 1, isum1);
            }
            if (k < s + ks) HW_SIMD_TERMS_F32(k, isum0);
#undef HW_SIMD_TERMS_F32
            for (int r = 0; r < R; r++) {
                sum1[r][0] = _mm512_add_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(isum0[r])),
                                           _mm512_cvtepi32_pd(_mm512_castsi512_si256(isum1[r])));
                sum1[r][1] = _mm512_add_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(isum0[r], 1)),
                                           _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(isum1[r], 1)));
            }
        } else {
            /* Two partial sums per half (the sum is exact in any grouping): half the add latency chain. */
#define HW_SIMD_TERMS(k, P)                                                                          \
            do {                                                                                         \
                __m512d b0 = _mm512_loadu_pd(bv + (k) * HW_SIMD_COLS);                                   \
                __m512d b1 = _mm512_loadu_pd(bv + (k) * HW_SIMD_COLS + 8);                               \
                for (int r = 0; r < R; r++) {                                                            \
                    __m512d a = _mm512_set1_pd(av[r * K + (k)]);                                         \
                    /* (a * b) exact, then * 2^(kb - emax) exact, then truncated: the term. */           \
                    __m512d t0 = _mm512_roundscale_pd(_mm512_scalef_pd(_mm512_mul_pd(a, b0), scale[r][0]),  \
                                                      _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);           \
                    __m512d t1 = _mm512_roundscale_pd(_mm512_scalef_pd(_mm512_mul_pd(a, b1), scale[r][1]),  \
                                                      _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);           \
                    P[r][0] = _mm512_add_pd(P[r][0], t0);                                                \
                    P[r][1] = _mm512_add_pd(P[r][1], t1);                                                \
                }                                                                                        \
            } while (0)
            int64_t k = s;
            for (; k + 1 < s + ks; k += 2) {
                HW_SIMD_TERMS(k, sum0);
                HW_SIMD_TERMS(k + 1, sum1);
            }
            if (k < s + ks) HW_SIMD_TERMS(k, sum0);
#undef HW_SIMD_TERMS
        }
        const int promote = promo && ((s + ks) % promo == 0 || s + ks >= K);
        for (int r = 0; r < R; r++)
            for (int h = 0; h < 2; h++) {
                __m512d S = _mm512_add_pd(sum0[r][h], sum1[r][h]);
                __m512d v = _mm512_scalef_pd(S, unscale[r][h]);
                __m512d mag = _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), absmask));
                __mmask8 out_of_range = _mm512_cmp_pd_mask(mag, big, _CMP_GE_OQ)
                    | (_mm512_cmp_pd_mask(mag, small, _CMP_LT_OQ) & _mm512_cmp_pd_mask(mag, zero, _CMP_NEQ_OQ));
                flag[r][h] |= out_of_range;
                v = _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), truncmask));
                acc[r][h] = _mm512_mask_blend_pd(flag[r][h], v, zero);
                if (promote) {
                    outer[r][h] = _mm256_add_ps(outer[r][h], _mm512_cvtpd_ps(acc[r][h]));
                    acc[r][h] = zero;
                }
            }
    }
    for (int r = 0; r < R; r++) {
        for (int h = 0; h < 2; h++) {
            __m256 res = promo ? outer[r][h] : _mm512_cvtpd_ps(acc[r][h]);
            if (u->apply_scale) res = _mm256_mul_ps(res, _mm256_set1_ps(u->scale));
            if (u->c_epilogue && has_c) res = _mm256_add_ps(res, cf[r][h]);
            /* A non-finite result of lanes with finite operands: an fp32 promotion / scale / epilogue
             * overflow (RNE keeps the inf after). The scalar kernel recomputes such lanes and counts
             * the overflow events (docs/units.md). */
            const __m256 absres = _mm256_and_ps(res, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
            flag[r][h] |= (__mmask8)_mm256_movemask_ps(
                _mm256_cmp_ps(absres, _mm256_castsi256_ps(_mm256_set1_epi32(0x7f800000)), _CMP_NLT_UQ));
            __m256i bits = _mm256_castps_si256(res);
            __m256 nan = _mm256_cmp_ps(res, res, _CMP_UNORD_Q);
            bits = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bits),
                                       _mm256_castsi256_ps(_mm256_set1_epi32((int)NS_F32_NAN)), nan));
            _mm256_storeu_si256((__m256i *)(out[r] + 8 * h), bits);
        }
        exc[r] = (uint32_t)flag[r][0] | ((uint32_t)flag[r][1] << 8);
    }
}

__attribute__((target("avx512f"))) static void fused_tiles_avx512(hw_job *j, const double *av, const float *avf,
                                                                 const int16_t *aexp, int32_t *pmax) {
    const ns_fused_unit *u = j->u;
    ns_format inner = ns_hw_inner_format(u->acc_man_bits);
    ns_encode_opts opts = ns_hw_sum_opts(u);
    const int64_t K = j->K, N = j->N, r0 = j->row0;
    const int has_c = j->c != NULL, f32 = j->panels->bvf != NULL;
    for (int64_t g = 0; g < j->panels->groups; g++) {
        const int64_t n0 = g * HW_SIMD_COLS;
        const int64_t nv = N - n0 < HW_SIMD_COLS ? N - n0 : HW_SIMD_COLS;
        const double *bv = f32 ? NULL : j->panels->bv + g * K * HW_SIMD_COLS;
        const float *bvf = f32 ? j->panels->bvf + g * K * HW_SIMD_COLS : NULL;
        const int16_t *be = j->panels->be + g * K * HW_SIMD_COLS;
        uint32_t bspecial = 0;
        for (int64_t l = 0; l < nv; l++) bspecial |= (uint32_t)(j->b_special[n0 + l] != 0) << l;
        for (int64_t i = j->row0; i < j->row1; i += HW_SIMD_ROWS) {
            const int R = j->row1 - i < HW_SIMD_ROWS ? (int)(j->row1 - i) : HW_SIMD_ROWS;
            uint32_t c0[HW_SIMD_ROWS][HW_SIMD_COLS], out[HW_SIMD_ROWS][HW_SIMD_COLS], exc[HW_SIMD_ROWS];
            for (int r = 0; r < HW_SIMD_ROWS; r++) {
                exc[r] = 0;
                for (int64_t l = 0; l < HW_SIMD_COLS; l++) {
                    c0[r][l] = (r < R && has_c && l < nv) ? j->c[(i + r) * N + n0 + l] : 0;
                    if (((c0[r][l] >> 23) & 0xff) == 0xff) exc[r] |= UINT32_C(1) << l;
                }
                exc[r] |= bspecial;
                if (r < R && j->a_special[i + r]) exc[r] = 0xffff;
            }
            const double *ar = f32 ? NULL : av + (i - r0) * K;
            const float *arf = f32 ? avf + (i - r0) * K : NULL;
            const int16_t *er = aexp + (i - r0) * K;
            /* R and F32 constants in each call, so the row loops unroll and the other path drops out */
#define HW_TILE(RR, FF) fused_tile_avx512(u, RR, FF, has_c, ar, arf, er, bv, bvf, be, K, c0, out, exc, pmax)
            if (f32) {
                if (R == 4) HW_TILE(4, 1); else if (R == 3) HW_TILE(3, 1); else if (R == 2) HW_TILE(2, 1);
                else HW_TILE(1, 1);
            } else {
                if (R == 4) HW_TILE(4, 0); else if (R == 3) HW_TILE(3, 0); else if (R == 2) HW_TILE(2, 0);
                else HW_TILE(1, 0);
            }
#undef HW_TILE
            for (int r = 0; r < R; r++)
                for (int64_t l = 0; l < nv; l++)
                    j->d[(i + r) * N + n0 + l] = (exc[r] >> l) & 1
                        ? ns_hw_fused_output(j, &inner, &opts, i + r, n0 + l) : out[r][l];
        }
    }
}

/* A thread's rows: its A rows as doubles or floats (a per-thread panel), then the tiles. */
void *ns_hw_fused_rows_avx512(void *arg) {
    hw_job *j = (hw_job *)arg;
    const int64_t rows = j->row1 - j->row0, K = j->K;
    if (rows <= 0) return NULL;
    const int f32 = j->panels->bvf != NULL;
    void *av = malloc((size_t)(rows * K) * (f32 ? sizeof(float) : sizeof(double)));
    /* per step and row of a tile: the products' max exponent, 16 lanes */
    int32_t *pmax = (int32_t *)malloc((size_t)(K / j->u->k_step) * HW_SIMD_ROWS * HW_SIMD_COLS * sizeof(int32_t));
    int16_t *ae = (int16_t *)malloc((size_t)(rows * K) * sizeof(int16_t));
    if (!av || !pmax || !ae) { free(av); free(pmax); free(ae); ns_hw_fused_rows(j); return NULL; }   /* scalar kernel */
    for (int64_t i = 0; i < rows * K; i++) {
        const int64_t x = j->row0 * K + i;
        ae[i] = j->acl[x] == NS_CLS_FINITE ? (int16_t)j->ae[x] : HW_SIMD_ZERO_EXP16;
        double v = operand_double(j->am[x], j->an[x], j->ae[x], j->acl[x], j->u->a_man_bits);
        if (f32) ((float *)av)[i] = (float)v;      /* exact: hw_f32_products_ok */
        else ((double *)av)[i] = v;
    }
    fused_tiles_avx512(j, f32 ? NULL : (const double *)av, f32 ? (const float *)av : NULL, ae, pmax);
    free(av); free(pmax); free(ae);
    return NULL;
}
#endif
