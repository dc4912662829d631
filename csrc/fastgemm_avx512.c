/* The fast float GEMM's panel on AVX-512F (see csrc/fastgemm.c for the proof and the portable panel).
 * Runs only where ns_cpu_usable() has NS_CPU_AVX512F. */
#include <math.h>
#include "fastgemm_isa.h"
#include "ns_internal.h"

#ifdef NS_X86
#include <immintrin.h>

__attribute__((target("avx512f")))
static inline __m512d round_grid8(__m512d z, __m512i emin, __m512i man, __m512d maxf) {
    const __m512i u = _mm512_castpd_si512(z);
    const __m512i e = _mm512_sub_epi64(_mm512_and_si512(_mm512_srli_epi64(u, 52), _mm512_set1_epi64(0x7FF)),
                                       _mm512_set1_epi64(1023));
    const __m512i q = _mm512_sub_epi64(_mm512_max_epi64(e, emin), man);
    const __m512i cb = _mm512_or_si512(_mm512_slli_epi64(_mm512_add_epi64(q, _mm512_set1_epi64(52 + 1023)), 52),
                                       _mm512_set1_epi64((long long)(UINT64_C(1) << 51)));
    const __m512d C = _mm512_castsi512_pd(cb);
    const __m512d r = _mm512_sub_pd(_mm512_add_pd(z, C), C);
    const __m512i signbit = _mm512_set1_epi64((long long)(UINT64_C(1) << 63));
    const __m512i sign = _mm512_and_si512(u, signbit);
    const __m512i absr = _mm512_andnot_si512(signbit, _mm512_castpd_si512(r));
    /* zero keeps z's sign; past max_finite is inf with z's sign */
    __m512d out = _mm512_castsi512_pd(_mm512_or_si512(absr, sign));
    const __mmask8 big = _mm512_cmp_pd_mask(_mm512_castsi512_pd(absr), maxf, _CMP_GT_OQ);
    out = _mm512_mask_blend_pd(big, out, _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(_mm512_set1_pd(INFINITY)), sign)));
    return out;
}

/* The same computation as panel_avx2 / panel_scalar, eight double lanes a vector. */
__attribute__((target("avx512f")))
void ns_fastgemm_panel_avx512(const job *j, const double *bp, int64_t n0, const double *arow_all, void *scratch_v) {
    __m512d *scratch = (__m512d *)scratch_v;
    const int64_t K = j->K, T = (K + j->fused_n - 1) / j->fused_n;
    const __m512i emin = _mm512_set1_epi64(j->g.emin), man = _mm512_set1_epi64(j->g.man_bits);
    const __m512d maxf = _mm512_set1_pd(j->g.max_finite);
    for (int64_t m = j->m0; m < j->m1; m++) {
        const double *ar = arow_all + (m - j->m0) * K;
        __m512d acc[4], part[4];
        for (int v = 0; v < 4; v++) {
            acc[v] = j->c ? _mm512_loadu_pd(j->c + m * j->N + n0 + 8 * v) : _mm512_setzero_pd();
            part[v] = _mm512_setzero_pd();
        }
        for (int64_t t = 0; t < T; t++) {
            const int64_t k0 = t * j->fused_n, k1 = k0 + j->fused_n < K ? k0 + j->fused_n : K;
            __m512d s[4];
            const __m512d a0 = _mm512_set1_pd(ar[k0]);
            for (int v = 0; v < 4; v++) s[v] = _mm512_mul_pd(a0, _mm512_loadu_pd(bp + k0 * NB + 8 * v));
            for (int64_t k = k0 + 1; k < k1; k++) {
                const __m512d ak = _mm512_set1_pd(ar[k]);
                /* fma is exact here: the product is exact and so is the sum (the span proof) */
                for (int v = 0; v < 4; v++) s[v] = _mm512_fmadd_pd(ak, _mm512_loadu_pd(bp + k * NB + 8 * v), s[v]);
            }
            if (j->order == 0) {
                for (int v = 0; v < 4; v++) acc[v] = round_grid8(_mm512_add_pd(acc[v], s[v]), emin, man, maxf);
            } else if (j->order == 1) {
                const int first = t % j->chunk == 0;
                for (int v = 0; v < 4; v++)
                    part[v] = round_grid8(first ? s[v] : _mm512_add_pd(part[v], s[v]), emin, man, maxf);
                if (t % j->chunk == j->chunk - 1 || t == T - 1)
                    for (int v = 0; v < 4; v++) acc[v] = round_grid8(_mm512_add_pd(acc[v], part[v]), emin, man, maxf);
            } else {
                for (int v = 0; v < 4; v++) scratch[t * 4 + v] = round_grid8(s[v], emin, man, maxf);
            }
        }
        if (j->order == 2) {
            for (int64_t st = 1; st < T; st *= 2)
                for (int64_t i = 0; i + st < T; i += 2 * st)
                    for (int v = 0; v < 4; v++)
                        scratch[i * 4 + v] = round_grid8(_mm512_add_pd(scratch[i * 4 + v], scratch[(i + st) * 4 + v]), emin, man, maxf);
            for (int v = 0; v < 4; v++) acc[v] = round_grid8(_mm512_add_pd(acc[v], scratch[v]), emin, man, maxf);
        }
        for (int v = 0; v < 4; v++) _mm512_storeu_pd(j->out + m * j->N + n0 + 8 * v, acc[v]);
    }
}
#endif
