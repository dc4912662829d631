/* The fast float GEMM's panel on AVX2 + FMA (see csrc/fastgemm.c for the proof and the portable panel).
 * Runs only where ns_cpu_usable() has NS_CPU_AVX2 | NS_CPU_FMA. */
#include <math.h>
#include "fastgemm_isa.h"
#include "ns_internal.h"

#ifdef NS_X86
#include <immintrin.h>

/* AVX2 lanes of round_grid (fastgemm.c). */
__attribute__((target("avx2,fma")))
static inline __m256d round_grid4(__m256d z, __m256i emin, __m256i man, __m256d maxf) {
    const __m256i u = _mm256_castpd_si256(z);
    const __m256i e = _mm256_sub_epi64(_mm256_and_si256(_mm256_srli_epi64(u, 52), _mm256_set1_epi64x(0x7FF)),
                                       _mm256_set1_epi64x(1023));
    const __m256i emax = _mm256_blendv_epi8(emin, e, _mm256_cmpgt_epi64(e, emin));
    const __m256i q = _mm256_sub_epi64(emax, man);
    const __m256i cb = _mm256_or_si256(_mm256_slli_epi64(_mm256_add_epi64(q, _mm256_set1_epi64x(52 + 1023)), 52),
                                       _mm256_set1_epi64x((long long)(UINT64_C(1) << 51)));
    const __m256d C = _mm256_castsi256_pd(cb);
    __m256d r = _mm256_sub_pd(_mm256_add_pd(z, C), C);
    const __m256d sign = _mm256_and_pd(z, _mm256_castsi256_pd(_mm256_set1_epi64x((long long)(UINT64_C(1) << 63))));
    const __m256d absr = _mm256_andnot_pd(_mm256_castsi256_pd(_mm256_set1_epi64x((long long)(UINT64_C(1) << 63))), r);
    /* zero keeps z's sign; past max_finite is inf with z's sign */
    r = _mm256_or_pd(absr, sign);
    const __m256d big = _mm256_cmp_pd(absr, maxf, _CMP_GT_OQ);
    r = _mm256_blendv_pd(r, _mm256_or_pd(_mm256_set1_pd(INFINITY), sign), big);
    return r;
}

__attribute__((target("avx2,fma")))
void ns_fastgemm_panel_avx2(const job *j, const double *bp, int64_t n0, const double *arow_all, void *scratch_v, int h) {
    __m256d *scratch = (__m256d *)scratch_v;
    bp += 16 * h;
    n0 += 16 * h;
    const int64_t K = j->K, T = (K + j->fused_n - 1) / j->fused_n;
    const __m256i emin = _mm256_set1_epi64x(j->g.emin), man = _mm256_set1_epi64x(j->g.man_bits);
    const __m256d maxf = _mm256_set1_pd(j->g.max_finite);
    for (int64_t m = j->m0; m < j->m1; m++) {
        const double *ar = arow_all + (m - j->m0) * K;
        __m256d acc[4], part[4];
        for (int v = 0; v < 4; v++) {
            acc[v] = j->c ? _mm256_loadu_pd(j->c + m * j->N + n0 + 4 * v) : _mm256_setzero_pd();
            part[v] = _mm256_setzero_pd();
        }
        for (int64_t t = 0; t < T; t++) {
            const int64_t k0 = t * j->fused_n, k1 = k0 + j->fused_n < K ? k0 + j->fused_n : K;
            __m256d s[4];
            const __m256d a0 = _mm256_set1_pd(ar[k0]);
            for (int v = 0; v < 4; v++) s[v] = _mm256_mul_pd(a0, _mm256_loadu_pd(bp + k0 * NB + 4 * v));
            for (int64_t k = k0 + 1; k < k1; k++) {
                const __m256d ak = _mm256_set1_pd(ar[k]);
                /* fma is exact here: the product is exact and so is the sum (the span proof) */
                for (int v = 0; v < 4; v++) s[v] = _mm256_fmadd_pd(ak, _mm256_loadu_pd(bp + k * NB + 4 * v), s[v]);
            }
            if (j->order == 0) {
                for (int v = 0; v < 4; v++) acc[v] = round_grid4(_mm256_add_pd(acc[v], s[v]), emin, man, maxf);
            } else if (j->order == 1) {
                const int first = t % j->chunk == 0;
                for (int v = 0; v < 4; v++)
                    part[v] = round_grid4(first ? s[v] : _mm256_add_pd(part[v], s[v]), emin, man, maxf);
                if (t % j->chunk == j->chunk - 1 || t == T - 1)
                    for (int v = 0; v < 4; v++) acc[v] = round_grid4(_mm256_add_pd(acc[v], part[v]), emin, man, maxf);
            } else {
                for (int v = 0; v < 4; v++) scratch[t * 4 + v] = round_grid4(s[v], emin, man, maxf);
            }
        }
        if (j->order == 2) {
            for (int64_t st = 1; st < T; st *= 2)
                for (int64_t i = 0; i + st < T; i += 2 * st)
                    for (int v = 0; v < 4; v++)
                        scratch[i * 4 + v] = round_grid4(_mm256_add_pd(scratch[i * 4 + v], scratch[(i + st) * 4 + v]), emin, man, maxf);
            for (int v = 0; v < 4; v++) acc[v] = round_grid4(_mm256_add_pd(acc[v], scratch[v]), emin, man, maxf);
        }
        for (int v = 0; v < 4; v++) _mm256_storeu_pd(j->out + m * j->N + n0 + 4 * v, acc[v]);
    }
}
#endif
