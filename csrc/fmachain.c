/* Float-accumulator chain GEMM: driver (threads, NaN re-coding, level dispatch) and the portable level.
 * The contract is in ns_fmachain.h.
 *
 * Proof of the portable level. Each rounded add of the unit is RN_acc(x + y) of two exact doubles:
 * x the accumulator (or a partial sum) and y a term (a product of two float32 values, exact in a
 * double: 24 + 24 <= 53 significand bits, exponents >= -298; or a fused group's sum, exact by the
 * precondition). TwoSum gives RN53(x + y) and its exact error; from them the sum rounded to odd at
 * 53 bits (Boldo & Melquiond, IEEE TC 2008: rounding to odd at p' >= p + 2 bits, then to nearest at
 * p bits, is the correctly rounded result; here p <= 24 for fp16, bf16 and fp32). The one rounding
 * onto the accumulator's grid is ns_fast_round_grid (fastgemm.c: (z + C) - C rounds a double to a
 * multiple of its quantum, nearest even, in one double addition; overflow to inf past max finite). Exact zero sums
 * take IEEE 754's sign from the double addition (-0 only for -0 + -0 under nearest), as units.c
 * gives them; non-finite operands follow IEEE double arithmetic (inf - inf and 0 x inf are NaN) and
 * the NaN outputs are re-coded afterwards as the units code them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "numsim.h"
#include "ns_internal.h"
#ifdef NS_X86
#include <immintrin.h>
#endif

/* ---- the accumulator formats --------------------------------------------------------------- */

static const ns_format FMC_FMT[3] = {
    {NS_KIND_FLOAT, 16, 1, 0, 5, 10, 15, 1, 1, NS_SPECIALS_IEEE, 0, 0, 0},     /* fp16 */
    {NS_KIND_FLOAT, 16, 1, 0, 8, 7, 127, 1, 1, NS_SPECIALS_IEEE, 0, 0, 0},     /* bf16 */
    {NS_KIND_FLOAT, 32, 1, 0, 8, 23, 127, 1, 1, NS_SPECIALS_IEEE, 0, 0, 0},    /* fp32 */
};
static const ns_encode_opts FMC_RNE = {NS_ROUND_NEAREST_EVEN, NS_OVF_TO_INF, NS_NAN_ERROR, NS_UNF_ROUND, 32, 0, 0};

/* ---- portable level ----------------------------------------------------------------------- */

/* x + y rounded to odd at 53 bits (|x|, |y| < 2^130 here: no double overflow). TwoSum (Knuth) gives
 * s = RN(x + y) and the exact error e; e == 0: s is the sum (with IEEE's zero sign); else the sum
 * truncated toward zero is s when e has s's sign and s's neighbour toward zero otherwise, and its last
 * bit set is the rounding to odd. Branch-free, so the row loops vectorise; a non-finite s (an inf
 * operand, inf - inf) passes as IEEE gives it. */
static inline double fmc_sum_to_odd(double x, double y) {
    const double s = x + y;
    const double yv = s - x, xv = s - yv;
    const double e = (x - xv) + (y - yv);
    const uint64_t sb = ns_f64_bits(s), eb = ns_f64_bits(e);
    const uint64_t inexact = (eb << 1) != 0 && (sb & 0x7FF0000000000000u) != 0x7FF0000000000000u;
    const uint64_t toward_zero = inexact & ((eb ^ sb) >> 63);   /* e and s of opposite signs */
    return ns_f64_from_bits((sb - toward_zero) | inexact);
}

/* The accumulators' grids for ns_fast_round_grid (fastgemm.c's rounding of a double onto a float
 * format's grid, to nearest even, with overflow to inf): mantissa bits, smallest normal exponent,
 * largest finite value. */
static const struct { int32_t man, emin; double maxf; } FMC_GRID[3] = {
    {10, -14, 65504.0}, {7, -126, 0x1.fep127}, {23, -126, 0x1.fffffep127}};

/* dst[j] = RN_acc(src[j]) for src[j] the rounding to odd at 53 bits of an exact sum (or an exact double):
 * non-finite values pass as they are. */
static void fmc_round_row(int acc, const double *src, double *dst, int64_t n) {
    ns_fast_round_grid(src, (size_t)n, FMC_GRID[acc].man, FMC_GRID[acc].emin, FMC_GRID[acc].maxf, dst);
    for (int64_t j = 0; j < n; j++) if (!isfinite(src[j])) dst[j] = src[j];
}

/* x[j] = RN_acc(x[j] + y[j]), one rounding each (tmp: scratch of n). */
static void fmc_add_row(int acc, double *x, const double *y, double *tmp, int64_t n) {
    for (int64_t j = 0; j < n; j++) tmp[j] = fmc_sum_to_odd(x[j], y[j]);
    fmc_round_row(acc, tmp, x, n);
}

/* term[j] = the exact sum of term t's products for columns n0 + j (IEEE double: exact by the
 * precondition); arow: row i's values; brow: scratch. */
static void fmc_terms(const ns_fmachain_args *p, const float *arow, int64_t t, int64_t n0, int64_t n, float *brow,
                      double *term) {
    const int64_t k0 = t * p->k_step, k1 = k0 + p->k_step < p->K ? k0 + p->k_step : p->K;
    for (int64_t k = k0; k < k1; k++) {
        ns_fmc_values(p->b, p->b_bytes, p->b_lut, k * p->N + n0, n, brow);
        const double a = arow[k];
        if (k == k0) for (int64_t j = 0; j < n; j++) term[j] = a * (double)brow[j];
        else for (int64_t j = 0; j < n; j++) term[j] += a * (double)brow[j];
    }
}

int32_t ns_fmc_block_portable(const ns_fmc_block *blk) {
    const ns_fmachain_args *p = blk->p;
    const int acc = p->acc;
    const int64_t T = (p->K + p->k_step - 1) / p->k_step, n0 = blk->n0, n = blk->n1 - blk->n0;
    int depth = 2;
    while (depth < 64 && ((int64_t)1 << (depth - 2)) < T) depth++;
    /* one row of outputs at a time: each output's adds in the unit's order, the columns side by side */
    float *arow = (float *)malloc((size_t)(p->K > 0 ? p->K : 1) * sizeof(float));
    float *brow = (float *)malloc((size_t)n * sizeof(float));
    double *work = (double *)malloc((size_t)(n * (4 + (p->order == 2 ? depth : 0))) * sizeof(double));
    if (!arow || !brow || !work) { free(arow); free(brow); free(work); return -1; }
    double *total = work, *part = work + n, *term = work + 2 * n, *tmp = work + 3 * n, *stack = work + 4 * n;
    for (int64_t i = blk->m0; i < blk->m1; i++) {
        ns_fmc_values(p->a, p->a_bytes, p->a_lut, i * p->K, p->K, arow);
        for (int64_t j = 0; j < n; j++)
            total[j] = p->c ? ns_unpack(ns_fmc_code(p->c, acc, i * p->N + n0 + j), &FMC_FMT[acc]) : 0.0;
        if (p->order == 0) {
            for (int64_t t = 0; t < T; t++) {
                fmc_terms(p, arow, t, n0, n, brow, term);
                fmc_add_row(acc, total, term, tmp, n);
            }
        } else if (p->order == 1) {
            for (int64_t t0 = 0; t0 < T; t0 += p->chunk) {
                const int64_t t1 = t0 + p->chunk < T ? t0 + p->chunk : T;
                fmc_terms(p, arow, t0, n0, n, brow, term);
                fmc_round_row(acc, term, part, n);
                for (int64_t t = t0 + 1; t < t1; t++) {
                    fmc_terms(p, arow, t, n0, n, brow, term);
                    fmc_add_row(acc, part, term, tmp, n);
                }
                fmc_add_row(acc, total, part, tmp, n);
            }
        } else if (T > 0) {
            /* The level-by-level tree of units.c as a binary counter: after leaf t, merge while the
             * count of leaves has trailing zeros; at the end merge the stack from the right. Both
             * build the same tree: node [i 2^L, min((i + 1) 2^L, T)) at level L. (x + y = y + x, NaN
             * codes are re-coded afterwards.) */
            int top = 0;
            for (int64_t t = 0; t < T; t++) {
                fmc_terms(p, arow, t, n0, n, brow, term);
                fmc_round_row(acc, term, stack + top * n, n);
                top++;
                for (int64_t c = t + 1; (c & 1) == 0; c >>= 1, top--)
                    fmc_add_row(acc, stack + (top - 2) * n, stack + (top - 1) * n, tmp, n);
            }
            for (; top > 1; top--) fmc_add_row(acc, stack + (top - 2) * n, stack + (top - 1) * n, tmp, n);
            fmc_add_row(acc, total, stack, tmp, n);
        }
        for (int64_t j = 0; j < n; j++) {
            int32_t st;
            ns_fmc_put(p->out, acc, i * p->N + n0 + j, ns_round_pack(total[j], &FMC_FMT[acc], &FMC_RNE, 0, &st));
            if (p->values) p->values[i * p->N + n0 + j] = total[j];   /* on the grid: the code's value */
        }
    }
    free(arow); free(brow); free(work);
    return 0;
}

/* ---- levels ------------------------------------------------------------------------------ */

int32_t ns_level_fmachain(uint32_t f) {
#ifdef NS_X86
#ifdef NS_FMC_HAVE_FP16
    if (ns_cpu_has(f, NS_CPU_AVX512_BASE | NS_CPU_AVX512_FP16)) return NS_FMC_AVX512_FP16;
#endif
    if (ns_cpu_has(f, NS_CPU_AVX512_BASE)) return NS_FMC_AVX512;
#else
    (void)f;
#endif
    return NS_FMC_PORTABLE;
}

/* ---- driver ------------------------------------------------------------------------------- */

static inline int fmc_is_nan(int acc, uint32_t code) {
    if (acc == NS_FMC_FP16) return (code & 0x7FFFu) > 0x7C00u;
    if (acc == NS_FMC_BF16) return (code & 0x7FFFu) > 0x7F80u;
    return (code & 0x7FFFFFFFu) > 0x7F800000u;
}
static inline uint32_t fmc_quiet_bit(int acc) { return acc == NS_FMC_FP16 ? 0x200u : acc == NS_FMC_BF16 ? 0x40u : 0x400000u; }
/* The default NaN of an invalid operation: negative, quiet, zero payload (as units.c codes it). */
static inline uint32_t fmc_default_nan(int acc) {
    return acc == NS_FMC_FP16 ? 0xFE00u : acc == NS_FMC_BF16 ? 0xFFC0u : 0xFFC00000u;
}

typedef struct fmc_task { ns_fmc_block blk; int32_t level, status; } fmc_task;

static void fmc_run_task(fmc_task *t) {
#ifdef NS_X86
    /* Round to nearest even, no flush-to-zero or denormals-are-zero, exceptions masked: the rounding
     * the kernels' instructions without an embedded rounding take. Restored on the way out. */
    const unsigned int csr = _mm_getcsr();
    _mm_setcsr(0x1F80u);
#endif
    const ns_fmc_block *b = &t->blk;
    if (b->m1 > b->m0 && b->n1 > b->n0) {
        if (t->level == NS_FMC_AVX512_FP16) t->status = ns_fmc_block_avx512fp16(b);
        else if (t->level == NS_FMC_AVX512) t->status = ns_fmc_block_avx512(b);
        else t->status = ns_fmc_block_portable(b);
        /* NaN outputs as units.c codes them: once a NaN appears it stays, the quieted initial
         * accumulator when that is a NaN (it is scanned first in every add), else the default NaN. */
        const ns_fmachain_args *p = b->p;
        for (int64_t i = b->m0; i < b->m1; i++)
            for (int64_t j = b->n0; j < b->n1; j++) {
                const int64_t idx = i * p->N + j;
                if (!fmc_is_nan(p->acc, ns_fmc_code(p->out, p->acc, idx))) continue;
                const uint32_t c = p->c ? ns_fmc_code(p->c, p->acc, idx) : 0;
                const uint32_t code = fmc_is_nan(p->acc, c) ? (c | fmc_quiet_bit(p->acc)) : fmc_default_nan(p->acc);
                ns_fmc_put(p->out, p->acc, idx, code);
                if (p->values) p->values[idx] = ns_unpack(code, &FMC_FMT[p->acc]);
            }
    }
#ifdef NS_X86
    _mm_setcsr(csr);
#endif
}

/* ns_parallel_for's range of B panels to pack. */
typedef struct fmc_pack { const ns_fmachain_args *p; void *bpack; int32_t level; } fmc_pack;
static void fmc_pack_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    (void)t;
    const fmc_pack *k = (const fmc_pack *)ctx;
    if (k->level == NS_FMC_AVX512_FP16) ns_fmc_pack_b_avx512fp16(k->p, k->bpack, lo, hi);
    else ns_fmc_pack_b_avx512(k->p, k->bpack, lo, hi);
}

/* ns_parallel_for's range: tasks lo .. hi. */
static void fmc_run_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    (void)t;
    for (int64_t i = lo; i < hi; i++) fmc_run_task((fmc_task *)ctx + i);
}

int32_t ns_fmachain_gemm(const ns_fmachain_args *p, int32_t level) {
    if (!p || p->M < 0 || p->K < 0 || p->N < 0 || p->k_step < 1 || p->k_step > 64 || p->order < 0 ||
        p->order > 2 || (p->order == 1 && p->chunk < 1) || p->acc < 0 || p->acc > 2)
        return -1;
    if (level < 0) level = ns_level_fmachain(ns_cpu_usable());
    if (level > ns_level_fmachain(ns_cpu_features())) return -1;
    if ((p->M && p->K && (!p->a || !p->b)) || (p->M && p->N && !p->out)) return -1;
    if (p->a_bytes < 1 || p->a_bytes > 4 || p->a_bytes == 3 || p->b_bytes < 1 || p->b_bytes > 4 || p->b_bytes == 3 ||
        (p->a_bytes < 4 && !p->a_lut) || (p->b_bytes < 4 && !p->b_lut) ||
        (p->a_bytes < 4 && (p->a_bits < 1 || p->a_bits > 8 * p->a_bytes)) ||
        (p->b_bytes < 4 && (p->b_bits < 1 || p->b_bits > 8 * p->b_bytes)))
        return -1;
    if (level == NS_FMC_AVX512_FP16 && !(p->acc == NS_FMC_FP16 && p->k_step == 1 && p->a_lut16 && p->b_lut16))
        level = NS_FMC_AVX512;
    int32_t nthreads = p->nthreads < 1 ? 1 : p->nthreads > NS_MAX_THREADS ? NS_MAX_THREADS : p->nthreads;
    /* Blocks: rows split first (in multiples of 8), then columns (in multiples of 128: whole panels). */
    const int64_t row_tiles = (p->M + 7) / 8, col_tiles = (p->N + 127) / 128;
    int64_t rt = row_tiles < nthreads ? row_tiles : nthreads;
    if (rt < 1) rt = 1;
    int64_t ct = (nthreads + rt - 1) / rt;
    if (ct > col_tiles) ct = col_tiles > 0 ? col_tiles : 1;
    const int32_t n = (int32_t)(rt * ct);
    fmc_task *tasks = (fmc_task *)calloc((size_t)n, sizeof(fmc_task));
    if (!tasks) return -1;
    /* B packed once for all threads: panels of 32 float32 (level 1, K padded to whole terms) or of
     * 32 NS_FMC_NV2 fp16 codes (level 2). */
    void *bpack = NULL;
    if (level != NS_FMC_PORTABLE && p->M > 0 && p->N > 0) {
        const int64_t Kp = (p->K + p->k_step - 1) / p->k_step * p->k_step;
        const int64_t width = level == NS_FMC_AVX512_FP16 ? 32 * NS_FMC_NV2 : 32, panels = (p->N + width - 1) / width;
        const size_t bytes = (size_t)(panels * (Kp > 0 ? Kp : 1) * width) * (level == NS_FMC_AVX512_FP16 ? 2 : 4);
        bpack = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!bpack) { free(tasks); return -1; }
        fmc_pack pk = {p, bpack, level};
        ns_parallel_for(panels, nthreads, fmc_pack_range, &pk);
    }
    for (int64_t r = 0; r < rt; r++)
        for (int64_t c = 0; c < ct; c++) {
            fmc_task *t = &tasks[r * ct + c];
            t->blk.p = p;
            t->blk.m0 = 8 * (row_tiles * r / rt);
            t->blk.m1 = 8 * (row_tiles * (r + 1) / rt);
            if (t->blk.m1 > p->M) t->blk.m1 = p->M;
            t->blk.n0 = 128 * (col_tiles * c / ct);
            t->blk.n1 = 128 * (col_tiles * (c + 1) / ct);
            if (t->blk.n1 > p->N) t->blk.n1 = p->N;
            t->level = level;
            t->blk.bpack = bpack;
        }
    ns_parallel_for(n, n, fmc_run_range, tasks);      /* one task a thread: n <= nthreads */
    int32_t status = level;
    for (int32_t i = 0; i < n; i++) if (tasks[i].status) status = -1;
    free(tasks);
    free(bpack);
    return status;
}

/* Levels this build has no code for run nowhere (ns_level_fmachain never names them). */
#ifndef NS_X86
int32_t ns_fmc_block_avx512(const ns_fmc_block *blk) { (void)blk; return -1; }
void ns_fmc_pack_b_avx512(const ns_fmachain_args *p, void *bpack, int64_t panel0, int64_t panel1) {
    (void)p; (void)bpack; (void)panel0; (void)panel1;
}
#endif
