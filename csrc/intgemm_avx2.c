/* The exact integer GEMM's register tile on AVX2 (see csrc/intgemm.c for the proof and the layout).
 * Runs only where ns_cpu_usable() (or an explicit level 1 and ns_cpu_features()) has NS_CPU_AVX2. */
#include "intgemm_isa.h"

#ifdef NS_X86
#include <immintrin.h>

/* AVX2: vpmaddwd of a broadcast (a_k, a_k+1) int16 pair with 8 columns x (k, k+1). */
__attribute__((target("avx2")))
void ns_int8_tile_avx2(const int16_t *A, int64_t lda, const int16_t *B0, int64_t pstride, int64_t ng, int32_t *C,
                       int64_t ldc, int mr, int ncols, int first) {
    __m256i c0[MR], c1[MR];
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm256_setzero_si256();
    const int16_t *B1 = B0 + pstride;
    for (int64_t g = 0; g < ng; g++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(B0 + g * 16));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(B1 + g * 16));
        for (int r = 0; r < MR; r++) {
            const __m256i x = _mm256_set1_epi32(load32(A + r * lda + 2 * g));
            c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(x, b0));
            c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(x, b1));
        }
    }
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8), idx);
    for (int r = 0; r < mr; r++) {
        int *row = (int *)(C + r * ldc);
        if (!first) c0[r] = _mm256_add_epi32(c0[r], _mm256_maskload_epi32(row, m0));
        _mm256_maskstore_epi32(row, m0, c0[r]);
        if (ncols > 8) {
            if (!first) c1[r] = _mm256_add_epi32(c1[r], _mm256_maskload_epi32(row + 8, m1));
            _mm256_maskstore_epi32(row + 8, m1, c1[r]);
        }
    }
}
#endif
