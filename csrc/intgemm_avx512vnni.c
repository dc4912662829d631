/* The exact integer GEMM on AVX-512 VNNI: b packing, a conversion and the register tile (see
 * csrc/intgemm.c for the proof and the layout). Runs only where the features have AVX-512 F, BW, VL
 * and VNNI (ns_level_int8_gemm). */
#include "intgemm_isa.h"

#ifdef NS_X86
#include <immintrin.h>
#include "vnni_pack_avx512.h"
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* The VNNI packing of tiles t0 .. t1 by 16-byte rows: lanes by a 16-entry table (vpshufb) or a byte
 * add, zero past N and K; a 4 x 16 byte transpose per k group; column lane sums by vpdpbusd with
 * ones (u8 ones x s8 lanes, or u8 lanes x s8 ones). */
VNNI_TARGET void ns_int8_pack_tiles_avx512vnni(const plan *p, int64_t t0, int64_t t1) {
    const int64_t K = p->K, N = p->N, Kg = p->Kg;
    const __m512i ones = _mm512_set1_epi8(1);
    const __m128i boff = _mm_set1_epi8((char)(p->b_off & 0xFF));
    const int32_t *bshift = p->shift_on_b ? p->shift : NULL;
    for (int64_t t = t0; t < t1; t++)
        for (int h = 0; h < 2; h++) {
            const int64_t n0 = t * 32 + h * 16;
            const int64_t nv = N - n0 >= 16 ? 16 : N - n0 > 0 ? N - n0 : 0;
            const __mmask16 cm = (__mmask16)((1u << nv) - 1);
            uint8_t *dst = (uint8_t *)p->bp + (2 * t + h) * Kg * 64;
            __m512i csum = _mm512_setzero_si512();
            for (int64_t g = 0; g < Kg; g++) {
                __m128i r[4];
                for (int q = 0; q < 4; q++) {
                    const int64_t k = 4 * g + q;
                    r[q] = _mm_setzero_si128();
                    if (k >= K || !cm) continue;
                    const __m128i codes = _mm_maskz_loadu_epi8(cm, p->b + k * N + n0);
                    if (p->b_vec == 1) {
                        const __m128i lut = _mm_loadu_si128((const __m128i *)(const void *)p->b_lut16[bshift ? bshift[k] : 0]);
                        r[q] = _mm_maskz_shuffle_epi8(cm, lut, codes);
                    } else {
                        r[q] = _mm_maskz_add_epi8(cm, codes, boff);
                    }
                }
                const __m512i v = ns_vnni_interleave4x16(r);
                _mm512_storeu_si512((void *)(dst + g * 64), v);
                csum = p->a_is_u8 ? _mm512_dpbusd_epi32(csum, ones, v) : _mm512_dpbusd_epi32(csum, v, ones);
            }
            const __m512i corr = _mm512_mullo_epi32(csum, _mm512_set1_epi32(p->a_off));   /* mod 2^32 */
            _mm512_storeu_si512((void *)(p->col_corr + n0), corr);                        /* n0 + 16 <= Np */
        }
}

/* One row of a as VNNI lanes by a 16-entry table or a byte add, 64 codes at a time. */
VNNI_TARGET void ns_int8_convert_row_avx512vnni(const plan *p, const uint8_t *arow, uint8_t *dst, int64_t K) {
    const __m512i lut = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)p->a_lut16));
    const __m512i off = _mm512_set1_epi8((char)(p->a_off & 0xFF));
    for (int64_t k = 0; k < K; k += 64) {
        const __mmask64 m = K - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (K - k)) - 1);
        const __m512i codes = _mm512_maskz_loadu_epi8(m, arow + k);
        const __m512i lanes = p->a_vec == 1 ? _mm512_shuffle_epi8(lut, codes) : _mm512_add_epi8(codes, off);
        _mm512_mask_storeu_epi8(dst + k, m, lanes);
    }
}
/* AVX-512 VNNI: vpdpbusd of a broadcast quad (a_k .. a_k+3) with 16 columns x 4 k. */
VNNI_TARGET static inline __attribute__((always_inline)) __m512i
finish_vec(__m512i acc, __m512i colc, uint32_t rowc, const uint32_t *c, __mmask16 m, const tile_fin *f) {
    acc = _mm512_sub_epi32(_mm512_sub_epi32(acc, colc), _mm512_set1_epi32((int)rowc));
    if (c) {   /* sign-extend the acc_bits-bit codes: ((c & mask) ^ sign) - sign */
        const __m512i sign = _mm512_set1_epi32((int)f->sign);
        const __m512i cv = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, c), _mm512_set1_epi32((int)f->mask));
        acc = _mm512_add_epi32(acc, _mm512_sub_epi32(_mm512_xor_si512(cv, sign), sign));
    }
    return acc;
}

VNNI_TARGET static inline __attribute__((always_inline)) void
store_values(double *v, __m512i x, __mmask16 m) {
    _mm512_mask_storeu_pd(v, (__mmask8)(m & 0xFF), _mm512_cvtepi32_pd(_mm512_castsi512_si256(x)));
    if (m >> 8) _mm512_mask_storeu_pd(v + 8, (__mmask8)(m >> 8), _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(x, 1)));
}

VNNI_TARGET static inline __attribute__((always_inline)) void
tile_vnni_t(const uint8_t *A, int64_t lda, const uint8_t *B0, int64_t pstride, int64_t ng, int32_t *C, int64_t ldc,
            int mr, int ncols, int first, const tile_fin *fin, const int A_U8) {
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const uint8_t *B1 = B0 + pstride;
    const uint8_t *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
#define NS_DP(acc, x, b) acc = A_U8 ? _mm512_dpbusd_epi32(acc, x, b) : _mm512_dpbusd_epi32(acc, b, x)
    for (int64_t g = 0; g < ng; g++) {
        const __m512i b0 = _mm512_loadu_si512((const void *)(B0 + g * 64));
        const __m512i b1 = _mm512_loadu_si512((const void *)(B1 + g * 64));
        __m512i x = _mm512_set1_epi32(load32(a0 + 4 * g));
        NS_DP(c00, x, b0); NS_DP(c01, x, b1);
        x = _mm512_set1_epi32(load32(a1 + 4 * g));
        NS_DP(c10, x, b0); NS_DP(c11, x, b1);
        x = _mm512_set1_epi32(load32(a2 + 4 * g));
        NS_DP(c20, x, b0); NS_DP(c21, x, b1);
        x = _mm512_set1_epi32(load32(a3 + 4 * g));
        NS_DP(c30, x, b0); NS_DP(c31, x, b1);
    }
#undef NS_DP
    const __mmask16 m0 = ncols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ncols) - 1);
    const __mmask16 m1 = ncols >= 32 ? (__mmask16)0xFFFF : ncols <= 16 ? 0 : (__mmask16)((1u << (ncols - 16)) - 1);
    __m512i lo[MR] = {c00, c10, c20, c30}, hi[MR] = {c01, c11, c21, c31};
    __m512i cc0 = _mm512_setzero_si512(), cc1 = cc0;
    if (fin) {
        cc0 = _mm512_maskz_loadu_epi32(m0, fin->col_corr);
        if (m1) cc1 = _mm512_maskz_loadu_epi32(m1, fin->col_corr + 16);
    }
    for (int r = 0; r < mr; r++) {
        int32_t *row = C + r * ldc;
        if (!first) lo[r] = _mm512_add_epi32(lo[r], _mm512_maskz_loadu_epi32(m0, row));
        if (fin) lo[r] = finish_vec(lo[r], cc0, fin->row_corr[r], fin->c ? fin->c + r * fin->ld : NULL, m0, fin);
        _mm512_mask_storeu_epi32(row, m0, lo[r]);
        if (fin && fin->values) store_values(fin->values + r * fin->ld, lo[r], m0);
        if (m1) {
            if (!first) hi[r] = _mm512_add_epi32(hi[r], _mm512_maskz_loadu_epi32(m1, row + 16));
            if (fin) hi[r] = finish_vec(hi[r], cc1, fin->row_corr[r], fin->c ? fin->c + r * fin->ld + 16 : NULL, m1, fin);
            _mm512_mask_storeu_epi32(row + 16, m1, hi[r]);
            if (fin && fin->values) store_values(fin->values + r * fin->ld + 16, hi[r], m1);
        }
    }
}

VNNI_TARGET void ns_int8_tile_avx512vnni_au8(const uint8_t *A, int64_t lda, const uint8_t *B0, int64_t pstride, int64_t ng,
                                      int32_t *C, int64_t ldc, int mr, int ncols, int first, const tile_fin *fin) {
    tile_vnni_t(A, lda, B0, pstride, ng, C, ldc, mr, ncols, first, fin, 1);
}

VNNI_TARGET void ns_int8_tile_avx512vnni_bu8(const uint8_t *A, int64_t lda, const uint8_t *B0, int64_t pstride, int64_t ng,
                                      int32_t *C, int64_t ldc, int mr, int ncols, int first, const tile_fin *fin) {
    tile_vnni_t(A, lda, B0, pstride, ng, C, ldc, mr, ncols, first, fin, 0);
}
#endif
