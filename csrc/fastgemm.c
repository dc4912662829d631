/* Fast float-accumulating GEMM (see numsim/fastpath.py for when it is exact).
 *
 * Why it gives the MAC-level path's bits: every addend is an exact double (products of operands
 * whose significands fit 53 bits), and either (A) each rounded add's exact sum is a double (the unit's
 * span bound, `sum_in_double`), or (B) each add is x + y of two values of the accumulator format with
 * p <= 25 significand bits, where the double sum is rounded once to 53 >= 2p + 2 bits and rounding that
 * to p bits gives the correctly rounded sum (Figueroa, "When is double rounding innocuous?", 1995).
 * The one rounding onto the accumulator grid is round_grid: (z + C) - C with C = 1.5 * 2^(q + 52)
 * rounds z to a multiple of 2^q to nearest-even in one IEEE double addition, q being the quantum
 * exponent max(floor(log2|z|), emin) - man_bits; |z| < 2^(q + man_bits + 1) <= 2^(q + 51) keeps z + C
 * inside [2^(q+52), 2^(q+53)). Zero results keep the sign of z (IEEE underflow and exact-zero signs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "numsim.h"
#include "ns_internal.h"
#include "ns_threads.h"

typedef struct grid { int32_t man_bits, emin; double max_finite; } grid;

static inline double round_grid(double z, const grid *g) {
    const uint64_t u = ns_f64_bits(z);
    int e = (int)((u >> 52) & 0x7FF) - 1023;
    int q = (e > g->emin ? e : g->emin) - g->man_bits;
    const double C = ns_f64_from_bits(((uint64_t)(q + 52 + 1023) << 52) | (UINT64_C(1) << 51));
    double r = (z + C) - C;
    if (r == 0.0) r = copysign(0.0, z);
    if (fabs(r) > g->max_finite) r = copysign(INFINITY, z);
    return r;
}

void ns_fast_round_grid(const double *x, size_t n, int32_t man_bits, int32_t emin, double max_finite, double *out) {
    const grid g = {man_bits, emin, max_finite};
    for (size_t i = 0; i < n; i++) out[i] = round_grid(x[i], &g);
}

/* ---- AVX2 lanes of round_grid ------------------------------------------------------------- */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define NS_HAVE_X86 1
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
#endif

typedef struct job {
    const uint8_t *a; int32_t a_bytes; const double *a_lut;
    const uint8_t *b; int32_t b_bytes; const double *b_lut;
    int64_t M, K, N, m0, m1, chunk;
    int32_t fused_n, order;
    grid g;
    const double *c;
    double *out;
    int32_t simd;
} job;

static inline double load_val(const uint8_t *p, int32_t bytes, int64_t i, const double *lut) {
    return bytes == 1 ? lut[p[i]] : lut[((const uint16_t *)(const void *)p)[i]];
}

#define NB 32          /* columns per panel: 4 AVX-512 vectors of doubles, or 2 x 4 AVX2 vectors */

/* One panel of NB columns (n0 .. n0 + nb) for rows m0 .. m1; bp is the decoded panel (K x NB). */
static void panel_scalar(const job *j, const double *bp, int64_t n0, int64_t nb, const double *arow_all, double *scratch) {
    const int64_t K = j->K, T = (K + j->fused_n - 1) / j->fused_n;
    for (int64_t m = j->m0; m < j->m1; m++) {
        const double *ar = arow_all + (m - j->m0) * K;
        for (int64_t n = 0; n < nb; n++) {
            double acc = j->c ? j->c[m * j->N + n0 + n] : 0.0;
            double part = 0.0;
            for (int64_t t = 0; t < T; t++) {
                const int64_t k0 = t * j->fused_n, k1 = k0 + j->fused_n < K ? k0 + j->fused_n : K;
                double s = ar[k0] * bp[k0 * NB + n];
                for (int64_t k = k0 + 1; k < k1; k++) s += ar[k] * bp[k * NB + n];
                if (j->order == 0) acc = round_grid(acc + s, &j->g);
                else if (j->order == 1) {
                    part = (t % j->chunk == 0) ? round_grid(s, &j->g) : round_grid(part + s, &j->g);
                    if (t % j->chunk == j->chunk - 1 || t == T - 1) acc = round_grid(acc + part, &j->g);
                } else scratch[t] = round_grid(s, &j->g);
            }
            if (j->order == 2) {
                for (int64_t st = 1; st < T; st *= 2)
                    for (int64_t i = 0; i + st < T; i += 2 * st) scratch[i] = round_grid(scratch[i] + scratch[i + st], &j->g);
                acc = round_grid(acc + scratch[0], &j->g);
            }
            j->out[m * j->N + n0 + n] = acc;
        }
    }
}

#ifdef NS_HAVE_X86
__attribute__((target("avx2,fma")))
static void panel_avx2(const job *j, const double *bp, int64_t n0, const double *arow_all, __m256d *scratch, int h) {
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
static void panel_avx512(const job *j, const double *bp, int64_t n0, const double *arow_all, __m512d *scratch) {
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
static int have_avx512(void) { return __builtin_cpu_supports("avx512f"); }
static int have_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
static int have_avx2_fma(void) { return 0; }
static int have_avx512(void) { return 0; }
#endif

static void run_rows(job *j) {
    const int64_t K = j->K, T = (K + j->fused_n - 1) / j->fused_n;
    const int64_t rows = j->m1 - j->m0;
    double *arows = (double *)malloc((size_t)(rows > 0 ? rows : 1) * (size_t)K * sizeof(double));
    double *bp = (double *)malloc((size_t)K * NB * sizeof(double));
    void *scratch = NULL;
    if (j->order == 2) scratch = aligned_alloc(64, ((size_t)T * 4 * 8 * sizeof(double) + 63) / 64 * 64);
    if (!arows || !bp || (j->order == 2 && !scratch)) { free(arows); free(bp); free(scratch); j->simd = -1; return; }
    for (int64_t m = j->m0; m < j->m1; m++)
        for (int64_t k = 0; k < K; k++) arows[(m - j->m0) * K + k] = load_val(j->a, j->a_bytes, m * K + k, j->a_lut);
    double *sscratch = (double *)scratch;
    for (int64_t n0 = 0; n0 < j->N; n0 += NB) {
        const int64_t nb = j->N - n0 < NB ? j->N - n0 : NB;
        for (int64_t k = 0; k < K; k++)
            for (int64_t n = 0; n < NB; n++)
                bp[k * NB + n] = n < nb ? load_val(j->b, j->b_bytes, k * j->N + n0 + n, j->b_lut) : 0.0;
#ifdef NS_HAVE_X86
        if (j->simd == 2 && nb == NB) { panel_avx512(j, bp, n0, arows, (__m512d *)scratch); continue; }
        if (j->simd == 1 && nb == NB) {
            panel_avx2(j, bp, n0, arows, (__m256d *)scratch, 0);
            panel_avx2(j, bp, n0, arows, (__m256d *)scratch, 1);
            continue;
        }
#endif
        panel_scalar(j, bp, n0, nb, arows, sscratch);
    }
    free(arows); free(bp); free(scratch);
}

static void rows_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    job *j = (job *)ctx + t;
    j->m0 = lo; j->m1 = hi;
    run_rows(j);
}

int32_t ns_fast_float_gemm(const void *a, int32_t a_bytes, const double *a_lut, const void *b, int32_t b_bytes,
                           const double *b_lut, int64_t M, int64_t K, int64_t N, int32_t fused_n, int32_t order,
                           int64_t chunk, int32_t man_bits, int32_t emin, double max_finite, const double *c,
                           double *out, int32_t nthreads) {
    if (M < 0 || K < 1 || N < 0 || fused_n < 1 || chunk < 1 || (a_bytes != 1 && a_bytes != 2) ||
        (b_bytes != 1 && b_bytes != 2) || order < 0 || order > 2 || man_bits < 0 || man_bits > 50)
        return NS_ERR_ARG;
    /* NUMSIM_NO_SIMD=1: scalar; NUMSIM_NO_AVX512=1: AVX2 at most (the tests run every level) */
    int simd = 0;
    if (getenv("NUMSIM_NO_SIMD") == NULL && have_avx2_fma()) simd = 1;
    if (simd && getenv("NUMSIM_NO_AVX512") == NULL && have_avx512()) simd = 2;
    const int32_t T = ns_thread_count(nthreads, M);
    job *jobs = (job *)calloc((size_t)T, sizeof(job));
    if (!jobs) return NS_ERR_ARG;
    int32_t st = NS_OK;
    for (int32_t i = 0; i < T; i++) {
        job *j = &jobs[i];
        j->a = (const uint8_t *)a; j->a_bytes = a_bytes; j->a_lut = a_lut;
        j->b = (const uint8_t *)b; j->b_bytes = b_bytes; j->b_lut = b_lut;
        j->M = M; j->K = K; j->N = N; j->chunk = chunk; j->fused_n = fused_n; j->order = order;
        j->g.man_bits = man_bits; j->g.emin = emin; j->g.max_finite = max_finite;
        j->c = c; j->out = out; j->simd = simd;
    }
    ns_parallel_for(M, nthreads, rows_range, jobs);
    for (int32_t i = 0; i < T; i++) if (jobs[i].simd < 0) st = NS_ERR_ARG;
    free(jobs);
    return st;
}
