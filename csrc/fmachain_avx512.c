/* Float-accumulator chain GEMM, level 1: AVX-512F/BW/VL/DQ (Intel Skylake-SP and later, AMD Zen 4).
 * Contract in ns_fmachain.h; the same bits as the portable level (fmachain.c).
 *
 * Every rounded add of the unit is written OP(x, y, z) = RN_acc(x * y + z) with the product exact:
 * a sequential step is OP(a, b, acc); a fused group's step is OP(s, 1, acc) with s the group's exact
 * sum (the precondition makes every partial sum a float32, so the mul/FMA chain that forms s never
 * rounds); a leaf (the first term of a chunk, a pairwise leaf) is OP(x, y, -0), which is RN(x * y)
 * with its IEEE sign (-0 is the additive identity under nearest: +0 + -0 = +0, -0 + -0 = -0); a
 * partial-sum add is OP(x, 1, y).
 *
 * Proofs of OP:
 *  - fp32 accumulator: vfmadd231ps rounds x * y + z once, to nearest even (MXCSR set by the driver),
 *    with the product exact: exactly the unit's add (IEEE 754 fusedMultiplyAdd, incl. the sign of an
 *    exact zero, subnormals with no flush, overflow to inf).
 *  - fp16 / bf16 accumulators: round to odd at 24 bits, then to nearest even at p = 11 / 8 bits.
 *    The FMA under embedded rounding toward -inf (d) and toward +inf (u) brackets the exact value;
 *    d == u iff it is exact (then it is the sum, and u has the sum's IEEE zero sign under nearest:
 *    RU(+0 + -0) = +0; d = -0 there has an even code, so u is taken); otherwise d and u are adjacent
 *    float32s whose codes are consecutive integers (+0 and the smallest subnormal, or the smallest
 *    negative subnormal and -0, at zero), and the rounding to odd, the one toward zero with its last
 *    bit set, is the one whose code is odd.
 *    24 >= p + 2, so RN_p(RO_24(x)) = RN_p(x) (Boldo & Melquiond, IEEE TC 2008). Range: both
 *    targets' subnormal quanta (2^-24, 2^-133) are >= 4 float32 quanta, so RO at the float32 grid is
 *    fine enough there too; beyond float32's range RO gives +-FLT_MAX (odd), past both targets'
 *    overflow thresholds, so the narrowing overflows exactly when the exact sum does.
 *    Narrowing: fp16 by vcvtps2ph under nearest-even (IEEE conversion: subnormals, overflow to inf);
 *    bf16 by the integer rounding u + 0x7FFF + lsb, truncated (exact RNE on the code, carries into the
 *    exponent and to inf included; NaNs are kept NaN and re-coded by the driver).
 *  - fp16 / bf16 accumulators with narrow products (args->narrow_products: k_step == 1, every product
 *    has <= p significand bits, 2^emin / 2^q <= 2^24 for q the finer of the accumulator's and the
 *    products' quanta): one FMA rounded to nearest at 24 bits, then narrowed. Where |x| >= 2^emin the
 *    add is x = acc + a * b of two numbers of p bits, and RN_p(RN_24(x)) = RN_p(x) since 24 >= 2p + 2
 *    (Figueroa, "When is double rounding innocuous?", SIGNUM 1995; numsim's fastgemm.c proof B uses
 *    it too); unbounded-exponent rounding also decides overflow, so it agrees there. Where
 *    |x| < 2^emin, x is a multiple of 2^q below 2^(q + 24): a float32, so RN_24(x) = x and the
 *    narrowing is the one rounding. Partial-sum adds and leaves are the same case (y = 1, z = -0).
 * Ordering: each output's adds run in the unit's order; lanes are output columns, rows are the
 * register tile's rows; nothing reassociates the reduction. */
#include "numsim.h"
#ifdef NS_X86
#pragma GCC target("avx512f,avx512bw,avx512vl")
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define FMC_MR 8        /* rows of the register tile */
#define FMC_NR 32       /* columns of the register tile: two vectors of 16 floats */
#define FMC_ALWAYS static inline __attribute__((always_inline))

FMC_ALWAYS __m512 fmc_ro_fma(__m512 x, __m512 y, __m512 z) {
    const __m512 d = _mm512_fmadd_round_ps(x, y, z, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512 u = _mm512_fmadd_round_ps(x, y, z, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    /* Inexact: d and u are adjacent, their codes consecutive integers, and the odd one is the rounding
     * to odd. Exact: d == u (take u, whose zero has the sign under nearest). So: d if d's code is odd. */
    const __mmask16 d_odd = _mm512_test_epi32_mask(_mm512_castps_si512(d), _mm512_set1_epi32(1));
    return _mm512_mask_blend_ps(d_odd, u, d);
}

FMC_ALWAYS __m512 fmc_narrow(const int acc, __m512 x) {
    if (acc == NS_FMC_FP16)
        return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int)0xFFFF0000u)));
}

/* Kinds of add: the accumulator (ns_fmachain_acc), or 3 / 4: fp16 / bf16 with narrow products. */
#define FMC_KINDS 5
FMC_ALWAYS int fmc_acc_of(const int kind) { return kind >= 3 ? kind - 3 : kind; }

/* RN_acc(x * y + z), one rounding. */
FMC_ALWAYS __m512 fmc_op(const int kind, __m512 x, __m512 y, __m512 z) {
    if (kind == NS_FMC_FP32) return _mm512_fmadd_ps(x, y, z);
    if (kind >= 3) return fmc_narrow(kind - 3, _mm512_fmadd_ps(x, y, z));
    return fmc_narrow(kind, fmc_ro_fma(x, y, z));
}

/* The exact sums of term t's fn products for the 8 x 32 tile (fn > 1). ap: [Kp][8], bp: [Kp][32]. */
FMC_ALWAYS void fmc_group(int fn, const float *ap, const float *bp, int64_t t, __m512 s[FMC_MR][2]) {
    const float *a = ap + t * fn * FMC_MR, *b = bp + t * fn * FMC_NR;
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (int r = 0; r < FMC_MR; r++) {
        const __m512 av = _mm512_set1_ps(a[r]);
        s[r][0] = _mm512_mul_ps(av, b0);
        s[r][1] = _mm512_mul_ps(av, b1);
    }
    for (int f = 1; f < fn; f++) {
        const __m512 c0 = _mm512_loadu_ps(b + f * FMC_NR), c1 = _mm512_loadu_ps(b + f * FMC_NR + 16);
#pragma GCC unroll 8
        for (int r = 0; r < FMC_MR; r++) {
            const __m512 av = _mm512_set1_ps(a[f * FMC_MR + r]);
            s[r][0] = _mm512_fmadd_ps(av, c0, s[r][0]);
            s[r][1] = _mm512_fmadd_ps(av, c1, s[r][1]);
        }
    }
}

/* x[r][v] = OP(term t, x[r][v]) for every tile element; leaf: the term alone (z = -0). */
FMC_ALWAYS void fmc_term_into(const int acc, const int fn1, int fn, const float *ap, const float *bp, int64_t t,
                              int leaf, __m512 x[FMC_MR][2]) {
    const __m512 nz = _mm512_set1_ps(-0.0f);
    if (fn1) {
        const float *a = ap + t * FMC_MR, *b = bp + t * FMC_NR;
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
        for (int r = 0; r < FMC_MR; r++) {
            const __m512 av = _mm512_set1_ps(a[r]);
            x[r][0] = fmc_op(acc, av, b0, leaf ? nz : x[r][0]);
            x[r][1] = fmc_op(acc, av, b1, leaf ? nz : x[r][1]);
        }
    } else {
        __m512 s[FMC_MR][2];
        const __m512 one = _mm512_set1_ps(1.0f);
        fmc_group(fn, ap, bp, t, s);
#pragma GCC unroll 8
        for (int r = 0; r < FMC_MR; r++) {
            x[r][0] = fmc_op(acc, s[r][0], one, leaf ? nz : x[r][0]);
            x[r][1] = fmc_op(acc, s[r][1], one, leaf ? nz : x[r][1]);
        }
    }
}

/* total = OP(x, 1, total): the accumulator plus a partial sum, one rounding. */
FMC_ALWAYS void fmc_add_into(const int acc, __m512 total[FMC_MR][2], __m512 x[FMC_MR][2]) {
    const __m512 one = _mm512_set1_ps(1.0f);
#pragma GCC unroll 8
    for (int r = 0; r < FMC_MR; r++) {
        total[r][0] = fmc_op(acc, x[r][0], one, total[r][0]);
        total[r][1] = fmc_op(acc, x[r][1], one, total[r][1]);
    }
}

/* One 8 x 32 tile over all T terms, in the unit's order. stack: pairwise scratch. */
FMC_ALWAYS void fmc_tile(const int acc, const int fn1, const int order, const ns_fmachain_args *p, const float *ap,
                         const float *bp, int64_t T, __m512 total[FMC_MR][2], __m512 *stack) {
    const int fn = p->k_step;
    if (order == 0) {
        for (int64_t t = 0; t < T; t++) fmc_term_into(acc, fn1, fn, ap, bp, t, 0, total);
    } else if (order == 1) {
        for (int64_t t0 = 0; t0 < T; t0 += p->chunk) {
            const int64_t t1 = t0 + p->chunk < T ? t0 + p->chunk : T;
            __m512 part[FMC_MR][2];
            fmc_term_into(acc, fn1, fn, ap, bp, t0, 1, part);
            for (int64_t t = t0 + 1; t < t1; t++) fmc_term_into(acc, fn1, fn, ap, bp, t, 0, part);
            fmc_add_into(acc, total, part);
        }
    } else if (T > 0) {
        /* Binary counter over the leaves: the same tree as units.c's level-by-level pairs (see fmachain.c). */
        int top = 0;
        const __m512 one = _mm512_set1_ps(1.0f);
        for (int64_t t = 0; t < T; t++) {
            __m512 v[FMC_MR][2];
            fmc_term_into(acc, fn1, fn, ap, bp, t, 1, v);
            for (int64_t n = t + 1; (n & 1) == 0; n >>= 1) {
                const __m512 *s = stack + 2 * FMC_MR * --top;
#pragma GCC unroll 8
                for (int r = 0; r < FMC_MR; r++) {
                    v[r][0] = fmc_op(acc, s[2 * r], one, v[r][0]);
                    v[r][1] = fmc_op(acc, s[2 * r + 1], one, v[r][1]);
                }
            }
            __m512 *d = stack + 2 * FMC_MR * top++;
            for (int r = 0; r < FMC_MR; r++) { d[2 * r] = v[r][0]; d[2 * r + 1] = v[r][1]; }
        }
        __m512 v[FMC_MR][2];
        const __m512 *s = stack + 2 * FMC_MR * --top;
        for (int r = 0; r < FMC_MR; r++) { v[r][0] = s[2 * r]; v[r][1] = s[2 * r + 1]; }
        while (top > 0) {
            s = stack + 2 * FMC_MR * --top;
#pragma GCC unroll 8
            for (int r = 0; r < FMC_MR; r++) {
                v[r][0] = fmc_op(acc, s[2 * r], one, v[r][0]);
                v[r][1] = fmc_op(acc, s[2 * r + 1], one, v[r][1]);
            }
        }
        fmc_add_into(acc, total, v);
    }
}

FMC_ALWAYS __m512 fmc_from_codes(const int acc, __m512i codes) {
    if (acc == NS_FMC_FP16) return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(codes));
    if (acc == NS_FMC_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(codes, 16));
    return _mm512_castsi512_ps(codes);
}
FMC_ALWAYS __m512i fmc_to_codes(const int acc, __m512 x) {
    if (acc == NS_FMC_FP16)   /* x is an fp16 value: the conversion is exact */
        return _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (acc == NS_FMC_BF16) return _mm512_srli_epi32(_mm512_castps_si512(x), 16);
    return _mm512_castps_si512(x);
}

typedef void (*fmc_tile_fn)(const ns_fmachain_args *, const float *, const float *, int64_t, __m512 (*)[2], __m512 *);
#define FMC_INST(ACC, FN1, ORD)                                                                              \
    static void fmc_tile_##ACC##_##FN1##_##ORD(const ns_fmachain_args *p, const float *ap, const float *bp,  \
                                               int64_t T, __m512 (*total)[2], __m512 *stack) {              \
        __m512 x[FMC_MR][2]; /* a local copy, so the tile lives in registers */                             \
        for (int r = 0; r < FMC_MR; r++) { x[r][0] = total[r][0]; x[r][1] = total[r][1]; }                   \
        fmc_tile(ACC, FN1, ORD, p, ap, bp, T, x, stack);                                                     \
        for (int r = 0; r < FMC_MR; r++) { total[r][0] = x[r][0]; total[r][1] = x[r][1]; }                   \
    }
#define FMC_INST_ORD(ACC, FN1) FMC_INST(ACC, FN1, 0) FMC_INST(ACC, FN1, 1) FMC_INST(ACC, FN1, 2)
#define FMC_INST_FN(ACC) FMC_INST_ORD(ACC, 0) FMC_INST_ORD(ACC, 1)
FMC_INST_FN(0)
FMC_INST_FN(1)
FMC_INST_FN(2)
FMC_INST_ORD(3, 1)
FMC_INST_ORD(4, 1)
#define FMC_ROW(ACC, FN1) {fmc_tile_##ACC##_##FN1##_0, fmc_tile_##ACC##_##FN1##_1, fmc_tile_##ACC##_##FN1##_2}
static const fmc_tile_fn FMC_TILES[FMC_KINDS][2][3] = {
    {FMC_ROW(0, 0), FMC_ROW(0, 1)}, {FMC_ROW(1, 0), FMC_ROW(1, 1)}, {FMC_ROW(2, 0), FMC_ROW(2, 1)},
    {{NULL, NULL, NULL}, FMC_ROW(3, 1)}, {{NULL, NULL, NULL}, FMC_ROW(4, 1)}};

static void *fmc_alloc(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* B panels of FMC_NR columns, panel-major: bp[(panel * Kp + k) * FMC_NR + v]; rows past K and columns
 * past N are +0 (the padded k's products are -0 x +0 with the A padding; padded columns are dropped). */
void ns_fmc_pack_b_avx512(const ns_fmachain_args *p, void *bpack, int64_t panel0, int64_t panel1) {
    const int64_t K = p->K, N = p->N, Kp = (K + p->k_step - 1) / p->k_step * p->k_step;
    for (int64_t pn = panel0; pn < panel1; pn++) {
        const int64_t n0 = pn * FMC_NR, nc = N - n0 < FMC_NR ? N - n0 : FMC_NR;
        float *bp = (float *)bpack + pn * Kp * FMC_NR;
        for (int64_t k = 0; k < Kp; k++) {
            float *d = bp + k * FMC_NR;
            if (k < K) ns_fmc_values(p->b, p->b_bytes, p->b_lut, k * N + n0, nc, d);
            for (int64_t v = k < K ? nc : 0; v < FMC_NR; v++) d[v] = 0.0f;
        }
    }
}

#define FMC_MC 64       /* rows whose packed A stays in L2 while the block's B panels stream past */

int32_t ns_fmc_block_avx512(const ns_fmc_block *blk) {
    const ns_fmachain_args *p = blk->p;
    const int acc = p->acc, fn = p->k_step;
    const int64_t K = p->K, N = p->N, T = (K + fn - 1) / fn, Kp = T * fn;
    int depth = 2;
    while (depth < 64 && ((int64_t)1 << (depth - 2)) < T) depth++;
    /* a row block's tiles: FMC_MC rows rounded up to whole tiles */
    float *ap = (float *)fmc_alloc((size_t)((FMC_MC + FMC_MR - 1) / FMC_MR * FMC_MR * Kp) * sizeof(float));
    float *row = (float *)fmc_alloc((size_t)(Kp > 0 ? Kp : 1) * sizeof(float));
    __m512 *stack = (__m512 *)fmc_alloc((size_t)(p->order == 2 ? depth * 2 * FMC_MR : 1) * sizeof(__m512));
    if (!ap || !row || !stack) { free(ap); free(row); free(stack); return -1; }
    const int kind = p->narrow_products && fn == 1 && acc != NS_FMC_FP32 ? acc + 3 : acc;
    const fmc_tile_fn tile = FMC_TILES[kind][fn == 1][p->order];
    for (int64_t mb = blk->m0; mb < blk->m1; mb += FMC_MC) {
        const int64_t mb1 = mb + FMC_MC < blk->m1 ? mb + FMC_MC : blk->m1;
        const int64_t row_tiles = (mb1 - mb + FMC_MR - 1) / FMC_MR;
        /* A tiles, k-major: ap[tile][k][r]. Past K: -0 (a product -0 x +0 = -0 adds nothing to a group,
         * whatever its sign); rows past the block: +0 (their results are dropped). */
        for (int64_t tr = 0; tr < row_tiles; tr++) {
            float *__restrict dst = ap + tr * Kp * FMC_MR;
            const int64_t r0 = mb + tr * FMC_MR, nr = mb1 - r0 < FMC_MR ? mb1 - r0 : FMC_MR;
            if (nr == FMC_MR && p->a_bytes == 1) {         /* the common case, one pass */
                const uint8_t *rows[FMC_MR];
                for (int r = 0; r < FMC_MR; r++) rows[r] = (const uint8_t *)p->a + (r0 + r) * K;
                const float *__restrict lut = p->a_lut;
                for (int64_t k = 0; k < K; k++)
#pragma GCC unroll 16
                    for (int r = 0; r < FMC_MR; r++) dst[k * FMC_MR + r] = lut[rows[r][k]];
            } else {
                for (int r = 0; r < FMC_MR; r++) {
                    if (r < nr) ns_fmc_values(p->a, p->a_bytes, p->a_lut, (r0 + r) * K, K, row);
                    for (int64_t k = 0; k < K; k++) dst[k * FMC_MR + r] = r < nr ? row[k] : 0.0f;
                }
            }
            for (int64_t k = K; k < Kp; k++)
                for (int r = 0; r < FMC_MR; r++) dst[k * FMC_MR + r] = -0.0f;
        }
        for (int64_t n0 = blk->n0; n0 < blk->n1; n0 += FMC_NR) {
            const int64_t nc = blk->n1 - n0 < FMC_NR ? blk->n1 - n0 : FMC_NR;
            const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1);
            const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFF : nc > 16 ? (1u << (nc - 16)) - 1 : 0);
            const float *bp = (const float *)blk->bpack + (n0 / FMC_NR) * Kp * FMC_NR;
            for (int64_t tr = 0; tr < row_tiles; tr++) {
                __m512 total[FMC_MR][2];
                for (int r = 0; r < FMC_MR; r++) {
                    const int64_t i = mb + tr * FMC_MR + r;
                    for (int v = 0; v < 2; v++) {
                        const __mmask16 m = v ? m1 : m0;
                        __m512i codes = _mm512_setzero_si512();
                        const int64_t idx = i * N + n0 + 16 * v;
                        if (p->c && i < mb1)
                            codes = acc == NS_FMC_FP32 ? _mm512_maskz_loadu_epi32(m, (const uint32_t *)p->c + idx)
                                                       : _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p->c + idx));
                        total[r][v] = fmc_from_codes(acc, codes);
                    }
                }
                tile(p, ap + tr * Kp * FMC_MR, bp, T, total, stack);
                for (int r = 0; r < FMC_MR; r++) {
                    const int64_t i = mb + tr * FMC_MR + r;
                    if (i >= mb1) break;
                    for (int v = 0; v < 2; v++) {
                        const __m512i codes = fmc_to_codes(acc, total[r][v]);
                        const int64_t idx = i * N + n0 + 16 * v;
                        const __mmask16 m = v ? m1 : m0;
                        if (acc == NS_FMC_FP32) _mm512_mask_storeu_epi32((uint32_t *)p->out + idx, m, codes);
                        else _mm256_mask_storeu_epi16((uint16_t *)p->out + idx, m, _mm512_cvtepi32_epi16(codes));
                        if (p->values) {   /* exact widening: every fp16 / bf16 / fp32 value is a double */
                            _mm512_mask_storeu_pd(p->values + idx, (__mmask8)m, _mm512_cvtps_pd(_mm512_castps512_ps256(total[r][v])));
                            _mm512_mask_storeu_pd(p->values + idx + 8, (__mmask8)(m >> 8),
                                                  _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(total[r][v]), 1))));
                        }
                    }
                }
            }
        }
    }
    free(ap); free(row); free(stack);
    return 0;
}
#endif
