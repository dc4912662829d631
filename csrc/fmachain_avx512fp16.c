/* Float-accumulator chain GEMM, level 2: AVX512-FP16 (Intel Sapphire Rapids and later), for the fp16
 * accumulator with one product per add (k_step == 1) and operands whose values are fp16 values
 * (checked in numsim/kernels/float_fma.py). Contract in ns_fmachain.h; the same bits as the portable
 * level (fmachain.c) and level 1 (fmachain_avx512.c).
 *
 * Proof: the unit's add acc <- RN_fp16(acc + a * b) is IEEE 754 fusedMultiplyAdd in binary16, one
 * `vfmadd231ph`: the product exact inside the FMA, one rounding to nearest even (MXCSR.RC, set to
 * nearest by the driver; AVX512-FP16 arithmetic never flushes subnormals, MXCSR.FTZ/DAZ do not apply
 * to it), overflow to inf, the IEEE sign of an exact zero (-0 only for -0 + -0). A chunk or pairwise
 * leaf is fma(a, b, -0) = RN(a * b) with its sign (-0 is the additive identity under nearest); a
 * partial-sum add is vaddph, one rounding of x + y. 32 lanes are 32 output columns; each lane's adds
 * run in the unit's order. */
#include "numsim.h"
#ifdef NS_FMC_HAVE_FP16
#pragma GCC target("avx512fp16,avx512f,avx512bw,avx512vl")
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define FMH_MR NS_FMC_MR2   /* rows of the register tile */
#define FMH_NV NS_FMC_NV2   /* vectors of 32 halves per row of the tile */
#define FMH_NR (32 * FMH_NV)
#define FMH_ALWAYS static inline __attribute__((always_inline))

/* x[r][v] = RN(a * b + x[r][v]) for term t (leaf: + -0, the term alone). ap: [K][8] fp16 codes, each
 * doubled into 32 bits (a 32-bit broadcast is a plain load; a 16-bit one also takes a shuffle port),
 * bp: [K][64] fp16. */
FMH_ALWAYS void fmh_term_into(const uint32_t *ap, const _Float16 *bp, int64_t t, const int leaf,
                              __m512h x[FMH_MR][FMH_NV]) {
    const __m512h nz = _mm512_castsi512_ph(_mm512_set1_epi16((short)0x8000));
    const uint32_t *a = ap + t * FMH_MR;
    const _Float16 *b = bp + t * FMH_NR;
    __m512h bv[FMH_NV];
#pragma GCC unroll 8
    for (int v = 0; v < FMH_NV; v++) bv[v] = _mm512_loadu_ph(b + 32 * v);
#pragma GCC unroll 16
    for (int r = 0; r < FMH_MR; r++) {
        const __m512h av = _mm512_castsi512_ph(_mm512_set1_epi32((int)a[r]));
#pragma GCC unroll 8
        for (int v = 0; v < FMH_NV; v++) x[r][v] = _mm512_fmadd_ph(av, bv[v], leaf ? nz : x[r][v]);
    }
}

FMH_ALWAYS void fmh_add_into(__m512h total[FMH_MR][FMH_NV], __m512h x[FMH_MR][FMH_NV]) {
#pragma GCC unroll 8
    for (int r = 0; r < FMH_MR; r++)
#pragma GCC unroll 8
        for (int v = 0; v < FMH_NV; v++) total[r][v] = _mm512_add_ph(total[r][v], x[r][v]);
}

FMH_ALWAYS void fmh_tile(const int order, const ns_fmachain_args *p, const uint32_t *ap, const _Float16 *bp,
                         int64_t T, __m512h total[FMH_MR][FMH_NV], __m512h *stack) {
    if (order == 0) {
        for (int64_t t = 0; t < T; t++) fmh_term_into(ap, bp, t, 0, total);
    } else if (order == 1) {
        for (int64_t t0 = 0; t0 < T; t0 += p->chunk) {
            const int64_t t1 = t0 + p->chunk < T ? t0 + p->chunk : T;
            __m512h part[FMH_MR][FMH_NV];
            fmh_term_into(ap, bp, t0, 1, part);
            for (int64_t t = t0 + 1; t < t1; t++) fmh_term_into(ap, bp, t, 0, part);
            fmh_add_into(total, part);
        }
    } else if (T > 0) {
        /* Binary counter over the leaves: the same tree as units.c's level-by-level pairs (see fmachain.c). */
        int top = 0;
        for (int64_t t = 0; t < T; t++) {
            __m512h v[FMH_MR][FMH_NV];
            fmh_term_into(ap, bp, t, 1, v);
            for (int64_t n = t + 1; (n & 1) == 0; n >>= 1) {
                const __m512h *s = stack + FMH_NV * FMH_MR * --top;
#pragma GCC unroll 8
                for (int r = 0; r < FMH_MR; r++)
                    for (int q = 0; q < FMH_NV; q++) v[r][q] = _mm512_add_ph(s[FMH_NV * r + q], v[r][q]);
            }
            __m512h *d = stack + FMH_NV * FMH_MR * top++;
            for (int r = 0; r < FMH_MR; r++)
                for (int q = 0; q < FMH_NV; q++) d[FMH_NV * r + q] = v[r][q];
        }
        __m512h v[FMH_MR][FMH_NV];
        const __m512h *s = stack + FMH_NV * FMH_MR * --top;
        for (int r = 0; r < FMH_MR; r++)
            for (int q = 0; q < FMH_NV; q++) v[r][q] = s[FMH_NV * r + q];
        while (top > 0) {
            s = stack + FMH_NV * FMH_MR * --top;
#pragma GCC unroll 8
            for (int r = 0; r < FMH_MR; r++)
                for (int q = 0; q < FMH_NV; q++) v[r][q] = _mm512_add_ph(s[FMH_NV * r + q], v[r][q]);
        }
        fmh_add_into(total, v);
    }
}

typedef void (*fmh_tile_fn)(const ns_fmachain_args *, const uint32_t *, const _Float16 *, int64_t, __m512h (*)[FMH_NV],
                            __m512h *);
#define FMH_INST(ORD)                                                                                          \
    static void fmh_tile_##ORD(const ns_fmachain_args *p, const uint32_t *ap, const _Float16 *bp, int64_t T,  \
                               __m512h (*total)[FMH_NV], __m512h *stack) {                                         \
        __m512h x[FMH_MR][FMH_NV]; /* a local copy, so the tile lives in registers */                              \
        for (int r = 0; r < FMH_MR; r++) for (int v = 0; v < FMH_NV; v++) x[r][v] = total[r][v];                \
        fmh_tile(ORD, p, ap, bp, T, x, stack);                                                                \
        for (int r = 0; r < FMH_MR; r++) for (int v = 0; v < FMH_NV; v++) total[r][v] = x[r][v];                \
    }
FMH_INST(0)
FMH_INST(1)
FMH_INST(2)
static const fmh_tile_fn FMH_TILES[3] = {fmh_tile_0, fmh_tile_1, fmh_tile_2};

static void *fmh_alloc(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* A 256-entry table of fp16 codes in 8 vectors (a format of < 8 bits: its codes are < 2^bits, the rest
 * of the table is never read). */
typedef struct fmh_lut8 { __m512i t[8]; } fmh_lut8;
static void fmh_lut8_load(fmh_lut8 *L, const uint16_t *lut16, int32_t bits) {
    uint16_t full[256];
    memset(full, 0, sizeof full);
    memcpy(full, lut16, (size_t)(1 << bits) * sizeof(uint16_t));
    for (int q = 0; q < 8; q++) L->t[q] = _mm512_loadu_si512((const void *)(full + 32 * q));
}
/* dst[j] = table[src[j]], j < n: four two-table word permutes and two selections by index bits 6 and 7. */
static inline void fmh_lut8_row(const fmh_lut8 *L, const uint8_t *src, int64_t n, uint16_t *dst) {
    for (int64_t j = 0; j < n; j += 32) {
        const __mmask32 m = (__mmask32)(n - j >= 32 ? 0xFFFFFFFFu : (1u << (n - j)) - 1);
        const __m512i idx = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, src + j));
        const __m512i r0 = _mm512_permutex2var_epi16(L->t[0], idx, L->t[1]);
        const __m512i r1 = _mm512_permutex2var_epi16(L->t[2], idx, L->t[3]);
        const __m512i r2 = _mm512_permutex2var_epi16(L->t[4], idx, L->t[5]);
        const __m512i r3 = _mm512_permutex2var_epi16(L->t[6], idx, L->t[7]);
        const __mmask32 b6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(64));
        const __mmask32 b7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(128));
        const __m512i lo = _mm512_mask_blend_epi16(b6, r0, r1), hi = _mm512_mask_blend_epi16(b6, r2, r3);
        _mm512_mask_storeu_epi16(dst + j, m, _mm512_mask_blend_epi16(b7, lo, hi));
    }
}

/* The lanes of vector `part` (32 columns each) inside the nc valid columns. */
static inline __mmask32 fmh_mask32(int64_t nc, int part) {
    const int64_t k = nc - 32 * part;
    return (__mmask32)(k >= 32 ? 0xFFFFFFFFu : k > 0 ? (1u << k) - 1 : 0u);
}

/* B panels of FMH_NR columns of fp16 codes, panel-major: bp[(panel * K + k) * FMH_NR + v]; columns past N
 * are +0 (dropped). */
void ns_fmc_pack_b_avx512fp16(const ns_fmachain_args *p, void *bpack, int64_t panel0, int64_t panel1) {
    const int64_t K = p->K, N = p->N;
    fmh_lut8 L;
    if (p->b_bytes == 1) fmh_lut8_load(&L, p->b_lut16, p->b_bits);
    for (int64_t pn = panel0; pn < panel1; pn++) {
        const int64_t n0 = pn * FMH_NR, nc = N - n0 < FMH_NR ? N - n0 : FMH_NR;
        uint16_t *bp = (uint16_t *)bpack + pn * K * FMH_NR;
        for (int64_t k = 0; k < K; k++) {
            uint16_t *d = bp + k * FMH_NR;
            if (p->b_bytes == 1) fmh_lut8_row(&L, (const uint8_t *)p->b + k * N + n0, nc, d);
            else ns_fmc_codes16(p->b, p->b_bytes, p->b_lut16, k * N + n0, nc, d);
            for (int64_t v = nc; v < FMH_NR; v++) d[v] = 0;
        }
    }
}

#define FMH_MC 64       /* rows whose packed A stays in L2 while the block's B panels stream past */

int32_t ns_fmc_block_avx512fp16(const ns_fmc_block *blk) {
    const ns_fmachain_args *p = blk->p;
    if (p->acc != NS_FMC_FP16 || p->k_step != 1 || !p->a_lut16 || !p->b_lut16 || p->a_bytes > 2 || p->b_bytes > 2)
        return -1;
    const int64_t K = p->K, N = p->N, T = K;
    int depth = 2;
    while (depth < 64 && ((int64_t)1 << (depth - 2)) < T) depth++;
    /* a row block's tiles: FMH_MC rows rounded up to whole tiles */
    uint32_t *ap = (uint32_t *)fmh_alloc((size_t)((FMH_MC + FMH_MR - 1) / FMH_MR * FMH_MR * K) * sizeof(uint32_t));
    uint16_t *row = (uint16_t *)fmh_alloc((size_t)(K > 0 ? K : 1) * sizeof(uint16_t));
    __m512h *stack = (__m512h *)fmh_alloc((size_t)(p->order == 2 ? depth * FMH_NV * FMH_MR : 1) * sizeof(__m512h));
    if (!ap || !row || !stack) { free(ap); free(row); free(stack); return -1; }
    const fmh_tile_fn tile = FMH_TILES[p->order];
    fmh_lut8 LA;
    if (p->a_bytes == 1) fmh_lut8_load(&LA, p->a_lut16, p->a_bits);
    for (int64_t mb = blk->m0; mb < blk->m1; mb += FMH_MC) {
        const int64_t mb1 = mb + FMH_MC < blk->m1 ? mb + FMH_MC : blk->m1;
        const int64_t row_tiles = (mb1 - mb + FMH_MR - 1) / FMH_MR;
        /* A tiles, k-major: ap[tile][k][r], each fp16 code doubled; rows past the block are +0 (dropped). */
        for (int64_t tr = 0; tr < row_tiles; tr++) {
            uint32_t *__restrict dst = ap + tr * K * FMH_MR;
            const int64_t r0 = mb + tr * FMH_MR, nr = mb1 - r0 < FMH_MR ? mb1 - r0 : FMH_MR;
            if (nr == FMH_MR && p->a_bytes == 1) {         /* the common case, one pass */
                const uint8_t *rows[FMH_MR];
                for (int r = 0; r < FMH_MR; r++) rows[r] = (const uint8_t *)p->a + (r0 + r) * K;
                const uint16_t *__restrict lut = p->a_lut16;
                for (int64_t k = 0; k < K; k++)
#pragma GCC unroll 16
                    for (int r = 0; r < FMH_MR; r++) dst[k * FMH_MR + r] = (uint32_t)lut[rows[r][k]] * 0x10001u;
                continue;
            }
            for (int r = 0; r < FMH_MR; r++) {
                if (r < nr && p->a_bytes == 1) fmh_lut8_row(&LA, (const uint8_t *)p->a + (r0 + r) * K, K, row);
                else if (r < nr) ns_fmc_codes16(p->a, p->a_bytes, p->a_lut16, (r0 + r) * K, K, row);
                for (int64_t k = 0; k < K; k++) dst[k * FMH_MR + r] = r < nr ? (uint32_t)row[k] * 0x10001u : 0u;
            }
        }
        for (int64_t n0 = blk->n0; n0 < blk->n1; n0 += FMH_NR) {
            const int64_t nc = blk->n1 - n0 < FMH_NR ? blk->n1 - n0 : FMH_NR;
            const _Float16 *bp = (const _Float16 *)blk->bpack + (n0 / FMH_NR) * K * FMH_NR;
            for (int64_t tr = 0; tr < row_tiles; tr++) {
                __m512h total[FMH_MR][FMH_NV];
                for (int r = 0; r < FMH_MR; r++) {
                    const int64_t i = mb + tr * FMH_MR + r;
                    for (int v = 0; v < FMH_NV; v++) {
                        __m512i codes = _mm512_setzero_si512();
                        if (p->c && i < mb1)
                            codes = _mm512_maskz_loadu_epi16(fmh_mask32(nc, v), (const uint16_t *)p->c + i * N + n0 + 32 * v);
                        total[r][v] = _mm512_castsi512_ph(codes);
                    }
                }
                tile(p, ap + tr * K * FMH_MR, bp, T, total, stack);
                for (int r = 0; r < FMH_MR; r++) {
                    const int64_t i = mb + tr * FMH_MR + r;
                    if (i >= mb1) break;
                    for (int v = 0; v < FMH_NV; v++) {
                        const int64_t idx = i * N + n0 + 32 * v;
                        const __mmask32 m = fmh_mask32(nc, v);
                        const __m512i h = _mm512_castph_si512(total[r][v]);
                        _mm512_mask_storeu_epi16((uint16_t *)p->out + idx, m, h);
                        if (p->values)     /* exact widening: fp16 -> float32 -> float64 */
                            for (int half = 0; half < 2; half++) {
                                const __m512 f = _mm512_cvtph_ps(half ? _mm512_extracti64x4_epi64(h, 1) : _mm512_castsi512_si256(h));
                                const __m256 lo = _mm512_castps512_ps256(f);
                                const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1));
                                _mm512_mask_storeu_pd(p->values + idx + 16 * half, (__mmask8)(m >> (16 * half)), _mm512_cvtps_pd(lo));
                                _mm512_mask_storeu_pd(p->values + idx + 16 * half + 8, (__mmask8)(m >> (16 * half + 8)),
                                                      _mm512_cvtps_pd(hi));
                            }
                    }
                }
            }
        }
    }
    free(ap); free(row); free(stack);
    return 0;
}
#else
/* No AVX512-FP16 in this compiler: ns_level_fmachain never names level 2. */
int32_t ns_fmc_block_avx512fp16(const ns_fmc_block *blk) { (void)blk; return -1; }
void ns_fmc_pack_b_avx512fp16(const ns_fmachain_args *p, void *bpack, int64_t panel0, int64_t panel1) {
    (void)p; (void)bpack; (void)panel0; (void)panel1;
}
#endif
