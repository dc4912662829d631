/* Float-accumulator chain GEMM: driver (threads, NaN re-coding, level dispatch) and the portable level.
 * The contract is in ns_fmachain.h.
 *
 * Proof of the portable level. Each rounded add of the unit is RN_acc(x + y) of two exact doubles:
 * x the accumulator (or a partial sum) and y a term (a product of two float32 values, exact in a
 * double: 24 + 24 <= 53 significand bits, exponents >= -298; or a fused group's sum, exact by the
 * precondition). TwoSum gives RN53(x + y) and its exact error; from them the sum rounded to odd at
 * 53 bits (Boldo & Melquiond, IEEE TC 2008: rounding to odd at p' >= p + 2 bits, then to nearest at
 * p bits, is the correctly rounded result; here p <= 24 for fp16, bf16 and fp32). The one rounding
 * into the accumulator format is ns_round_pack, the routine every MAC-level add uses. Exact zero sums
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

/* x + y rounded to odd at 53 bits (finite x, y; no double overflow: |x|, |y| < 2^130 here). */
static inline double fmc_sum_to_odd(double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return x + y;   /* IEEE: inf, or NaN for inf - inf */
    const double s = x + y;
    const double yv = s - x, xv = s - yv;
    const double e = (x - xv) + (y - yv);
    if (e == 0.0) return s;
    uint64_t bits = ns_f64_bits(s);
    if ((e < 0) != (s < 0)) bits -= 1;                 /* the neighbour toward zero (s != 0 here) */
    return ns_f64_from_bits(bits | 1);
}

/* One rounding into the accumulator format; the result's value. */
static inline double fmc_round(int acc, double x) {
    int32_t st;
    return ns_unpack(ns_round_pack(x, &FMC_FMT[acc], &FMC_RNE, 0, &st), &FMC_FMT[acc]);
}

/* Term t of output (i, j): the exact sum of its products (IEEE double: exact by the precondition). */
static inline double fmc_term(const ns_fmachain_args *p, int64_t i, int64_t j, int64_t t) {
    const int64_t k0 = t * p->k_step, k1 = k0 + p->k_step < p->K ? k0 + p->k_step : p->K;
    double s = (double)ns_fmc_val(p->a, p->a_bytes, p->a_lut, i * p->K + k0) *
               (double)ns_fmc_val(p->b, p->b_bytes, p->b_lut, k0 * p->N + j);
    for (int64_t k = k0 + 1; k < k1; k++)
        s += (double)ns_fmc_val(p->a, p->a_bytes, p->a_lut, i * p->K + k) *
             (double)ns_fmc_val(p->b, p->b_bytes, p->b_lut, k * p->N + j);
    return s;
}

int32_t ns_fmc_block_portable(const ns_fmc_block *blk) {
    const ns_fmachain_args *p = blk->p;
    const int acc = p->acc;
    const int64_t T = (p->K + p->k_step - 1) / p->k_step;
    double *stack = NULL;
    if (p->order == 2) {
        stack = (double *)malloc(66 * sizeof(double));  /* one partial sum per level: T < 2^63 */
        if (!stack) return -1;
    }
    for (int64_t i = blk->m0; i < blk->m1; i++)
        for (int64_t j = blk->n0; j < blk->n1; j++) {
            double total = p->c ? ns_unpack(ns_fmc_code(p->c, acc, i * p->N + j), &FMC_FMT[acc]) : 0.0;
            if (p->order == 0) {
                for (int64_t t = 0; t < T; t++) total = fmc_round(acc, fmc_sum_to_odd(total, fmc_term(p, i, j, t)));
            } else if (p->order == 1) {
                for (int64_t t0 = 0; t0 < T; t0 += p->chunk) {
                    const int64_t t1 = t0 + p->chunk < T ? t0 + p->chunk : T;
                    double part = fmc_round(acc, fmc_term(p, i, j, t0));
                    for (int64_t t = t0 + 1; t < t1; t++) part = fmc_round(acc, fmc_sum_to_odd(part, fmc_term(p, i, j, t)));
                    total = fmc_round(acc, fmc_sum_to_odd(total, part));
                }
            } else if (T > 0) {
                /* The level-by-level tree of units.c as a binary counter: after leaf t, merge while the
                 * count of leaves has trailing zeros; at the end merge the stack from the right. Both
                 * build the same tree: node [i 2^L, min((i + 1) 2^L, T)) at level L. */
                int top = 0;
                for (int64_t t = 0; t < T; t++) {
                    double v = fmc_round(acc, fmc_term(p, i, j, t));
                    for (int64_t n = t + 1; (n & 1) == 0; n >>= 1) v = fmc_round(acc, fmc_sum_to_odd(stack[--top], v));
                    stack[top++] = v;
                }
                double v = stack[--top];
                while (top > 0) v = fmc_round(acc, fmc_sum_to_odd(stack[--top], v));
                total = fmc_round(acc, fmc_sum_to_odd(total, v));
            }
            int32_t st;
            ns_fmc_put(p->out, acc, i * p->N + j, ns_round_pack(total, &FMC_FMT[acc], &FMC_RNE, 0, &st));
        }
    free(stack);
    return 0;
}

/* ---- levels ------------------------------------------------------------------------------ */

int32_t ns_level_fmachain(uint32_t f) {
#ifdef NS_X86
    if (ns_cpu_has(f, NS_CPU_AVX512_BASE | NS_CPU_AVX512_FP16)) return NS_FMC_AVX512_FP16;
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
                ns_fmc_put(p->out, p->acc, idx, fmc_is_nan(p->acc, c) ? (c | fmc_quiet_bit(p->acc)) : fmc_default_nan(p->acc));
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
        (p->a_bytes < 4 && !p->a_lut) || (p->b_bytes < 4 && !p->b_lut))
        return -1;
    if (level == NS_FMC_AVX512_FP16 && !(p->acc == NS_FMC_FP16 && p->k_step == 1 && p->a_lut16 && p->b_lut16))
        level = NS_FMC_AVX512;
    int32_t nthreads = p->nthreads < 1 ? 1 : p->nthreads > NS_MAX_THREADS ? NS_MAX_THREADS : p->nthreads;
    /* Blocks: rows split first (in multiples of 8, the register tile), then columns (multiples of 64). */
    const int64_t row_tiles = (p->M + 7) / 8, col_tiles = (p->N + 63) / 64;
    int64_t rt = row_tiles < nthreads ? row_tiles : nthreads;
    if (rt < 1) rt = 1;
    int64_t ct = (nthreads + rt - 1) / rt;
    if (ct > col_tiles) ct = col_tiles > 0 ? col_tiles : 1;
    const int32_t n = (int32_t)(rt * ct);
    fmc_task *tasks = (fmc_task *)calloc((size_t)n, sizeof(fmc_task));
    if (!tasks) return -1;
    /* B packed once for all threads: panels of 32 float32 (level 1, K padded to whole terms) or of 64
     * fp16 codes (level 2). */
    void *bpack = NULL;
    if (level != NS_FMC_PORTABLE && p->M > 0 && p->N > 0) {
        const int64_t Kp = (p->K + p->k_step - 1) / p->k_step * p->k_step;
        const int64_t width = level == NS_FMC_AVX512_FP16 ? 64 : 32, panels = (p->N + width - 1) / width;
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
            t->blk.n0 = 64 * (col_tiles * c / ct);
            t->blk.n1 = 64 * (col_tiles * (c + 1) / ct);
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
int32_t ns_fmc_block_avx512fp16(const ns_fmc_block *blk) { (void)blk; return -1; }
#endif
