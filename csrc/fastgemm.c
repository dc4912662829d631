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
#include "fastgemm_isa.h"

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
#ifdef NS_X86
        if (j->simd == 2 && nb == NB) { ns_fastgemm_panel_avx512(j, bp, n0, arows, scratch); continue; }
        if (j->simd == 1 && nb == NB) {
            ns_fastgemm_panel_avx2(j, bp, n0, arows, scratch, 0);
            ns_fastgemm_panel_avx2(j, bp, n0, arows, scratch, 1);
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
    /* NUMSIM_LEVEL=portable: portable; NUMSIM_LEVEL=avx2: AVX2 at most (the tests run every level) */
    const int simd = ns_level_fastgemm(ns_cpu_usable());
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
