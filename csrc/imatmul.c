/* Exact integer matrix multiply on 8-bit lanes: the driver, the packing, and the portable C level.
 * The ISA levels (imatmul_avx512vnni.c, imatmul_amx.c) compute the same 32 x 32 blocks on the same
 * packed operands.
 *
 * Proof that every level gives the same bits: each lane holds its operand's value a' = a * 2^s exactly
 * (checked: the shifted table fits the lane type); every product of two 8-bit lanes is exact in 16
 * bits; every addition (AMX tdpb[su][su]d dword accumulation, AVX-512 vpdpbusd, the vector and C adds
 * here, the corrections) is an addition modulo 2^32 without saturation. Integer identities hold modulo
 * 2^32 whatever the order of the additions and whatever intermediate sums wrap, so every level returns
 * (c + sum_k a'b') mod 2^32, the VNNI level's lane offsets included:
 *     sum_k (a' + 128) b' - 128 sum_k b' = sum_k a'b',   sum_k a' (b' - 128) + 128 sum_k a' = sum_k a'b'.
 * Zero padding (k >= K in both operands) adds 0 * 0 products. The caller proves that the exact result
 * lies in int32, where it is the only integer with that residue (numsim/kernels/int_imatmul.py). */
#define _GNU_SOURCE 1
#include <stdlib.h>
#include <string.h>
#include "numsim.h"
#include "ns_internal.h"
#include "imatmul_internal.h"

/* ---- CPU levels: the one CPU query (csrc/cpu.c; it also asks Linux for the AMX tile state) ------ */

#define IM_VNNI (NS_CPU_AVX512_BASE | NS_CPU_AVX512_VNNI)
#define IM_AMX (IM_VNNI | NS_CPU_AMX_TILE | NS_CPU_AMX_INT8)

static int im_cpu_vnni(void) { return ns_cpu_has(ns_cpu_features(), IM_VNNI); }
static int im_cpu_amx(void) { return ns_cpu_has(ns_cpu_features(), IM_AMX); }
/* what NUMSIM_LEVEL leaves usable (the automatic choice) */
static int im_usable_vnni(void) { return ns_cpu_has(ns_cpu_usable(), IM_VNNI); }
static int im_usable_amx(void) { return ns_cpu_has(ns_cpu_usable(), IM_AMX); }

int32_t ns_imatmul_has_level(int32_t level) {
    switch (level) {
    case 0: return 1;
    case 1: return im_cpu_vnni();
    case 2: return im_cpu_amx();
    default: return 0;
    }
}

int32_t ns_imatmul_best_level(void) {
    if (im_usable_amx()) return 2;
    return im_usable_vnni() ? 1 : 0;
}

/* ---- the portable level -------------------------------------------------------------------------- */

/* One 32 x 32 block in plain C, adding in uint32 (where wrapping is defined). Each k group's lanes are
 * widened to int16 (read as int8 or uint8 by the plan), b's into [k % 4][column] rows, so that the
 * 32-column inner loop is contiguous and gcc vectorizes it with the baseline ISA. */
void im_block_portable(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk) {
    const int64_t ng = p->Kp / 4, pstride = ng * 64;
    uint32_t acc[IM_BLK][IM_BLK];
    int16_t b16[4][IM_BLK];
    memset(acc, 0, sizeof acc);
    for (int64_t g = 0; g < ng; g++) {
        for (int h = 0; h < 2; h++) {
            const uint8_t *bg = bp + h * pstride + g * 64;
            for (int j = 0; j < 16; j++)
                for (int q = 0; q < 4; q++)
                    b16[q][h * 16 + j] = p->b_signed ? (int16_t)(int8_t)bg[4 * j + q] : (int16_t)bg[4 * j + q];
        }
        for (int r = 0; r < IM_BLK; r++) {
            const uint8_t *ar = A + r * p->Kp + 4 * g;
            for (int q = 0; q < 4; q++) {
                const int32_t x = p->a_signed ? (int32_t)(int8_t)ar[q] : (int32_t)ar[q];
                for (int j = 0; j < IM_BLK; j++) acc[r][j] += (uint32_t)(x * (int32_t)b16[q][j]);
            }
        }
    }
    for (int r = 0; r < IM_BLK; r++)
        for (int j = 0; j < IM_BLK; j++) {
            int32_t v;
            memcpy(&v, &acc[r][j], sizeof v);
            blk[r * IM_BLK + j] = v;
        }
}

/* ---- lanes and packing ------------------------------------------------------------------------------ */

/* The lane type of one side: 1 int8, 0 uint8, -1 none fits. Values v * 2^s for every table entry and
 * every s in [0, smax] (the range of v * 2^s over s is spanned by s = 0 and s = smax). */
static int lane_type(const int32_t *val, int32_t smax) {
    int64_t lo = 0, hi = 0;
    for (int i = 0; i < 256; i++) {
        const int64_t v = (int64_t)val[i] * ((int64_t)1 << smax);
        const int64_t w = val[i];
        lo = v < lo ? v : lo; lo = w < lo ? w : lo;
        hi = v > hi ? v : hi; hi = w > hi ? w : hi;
    }
    if (lo >= 0 && hi <= 255) return 0;
    if (lo >= -128 && hi <= 127) return 1;
    return -1;
}


/* B panels lo .. hi: lanes b * 2^s (VNNI: ^ 0x80 in mode 2), zero for k >= K; column corrections. */
static void pack_b(im_job *j) {
    const im_plan *p = j->p;
    const int64_t K = p->K, N = p->N, ng = p->Kp / 4;
    uint8_t *bp = (uint8_t *)p->b_packed;
    const uint8_t x = p->vnni_mode == 2 ? 0x80 : 0;
    for (int64_t pn = j->lo; pn < j->hi; pn++) {
        uint8_t *dst = bp + pn * ng * 64;
        memset(dst, 0, (size_t)(ng * 64));
        int64_t colsum[16];
        for (int q = 0; q < 16; q++) colsum[q] = 0;
        const int64_t n0 = pn * 16, nv = N - n0 < 16 ? N - n0 : 16;
        for (int64_t k = 0; k < K; k++) {
            const uint8_t *row = j->b + k * N + n0;
            const int64_t mul = j->b_shift ? (int64_t)1 << j->b_shift[k] : 1;
            uint8_t *d = dst + (k >> 2) * 64 + (k & 3);
            for (int64_t q = 0; q < nv; q++) {
                const int64_t lane = (int64_t)j->b_val[row[q]] * mul;
                d[q * 4] = (uint8_t)(((uint64_t)lane & 0xFF) ^ x);
                colsum[q] += lane;
            }
        }
        if (j->col_corr)
            for (int64_t q = 0; q < 16; q++)        /* mode 1: A lanes carry +128: subtract 128 sum_k b' */
                j->col_corr[n0 + q] = q < nv ? (uint32_t)0 - (uint32_t)((uint64_t)colsum[q] << 7) : 0;
    }
}

/* Rows m0 .. m0 + 31 of a as lanes (zero rows past M, zero lanes past K); row corrections (mode 2). */
static void pack_a(const im_job *j, int64_t m0, uint8_t *A, uint32_t *row_corr) {
    const im_plan *p = j->p;
    const int64_t K = p->K, Kp = p->Kp;
    const uint8_t x = p->vnni_mode == 1 ? 0x80 : 0;
    for (int r = 0; r < IM_BLK; r++) {
        uint8_t *dst = A + r * Kp;
        row_corr[r] = 0;
        if (m0 + r >= p->M) { memset(dst, 0, (size_t)Kp); continue; }
        const uint8_t *row = j->a + (m0 + r) * K;
        if (j->a_shift) {
            for (int64_t k = 0; k < K; k++)
                dst[k] = (uint8_t)(((uint64_t)((int64_t)j->a_val[row[k]] * ((int64_t)1 << j->a_shift[k])) & 0xFF) ^ x);
        } else {
#ifdef IM_HAVE_X86
            if (p->level >= 1 && j->a_vec) {
                uint64_t s = 0;
                im_pack_a_row_avx512(j, row, dst, &s);   /* zero-pads to Kp */
                row_corr[r] = p->vnni_mode == 2 ? (uint32_t)(s << 7) : 0;
                continue;
            }
#endif
            for (int64_t k = 0; k < K; k++) dst[k] = j->lut_a[row[k]];
        }
        memset(dst + K, 0, (size_t)(Kp - K));
        if (p->vnni_mode == 2) {                      /* B lanes carry -128: add 128 sum_k a' (u8 lanes) */
            uint64_t s = 0;
            for (int64_t k = 0; k < K; k++) s += dst[k];
            row_corr[r] = (uint32_t)(s << 7);
        }
    }
}

/* out = blk + col_corr + row_corr + c (mod 2^32), and the doubles, for the block's valid part. */
static void finish_block(const im_job *j, int64_t m0, int64_t n0, const int32_t *blk, const uint32_t *row_corr) {
    const im_plan *p = j->p;
    const int64_t rows = p->M - m0 < IM_BLK ? p->M - m0 : IM_BLK, cols = p->N - n0 < IM_BLK ? p->N - n0 : IM_BLK;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = (m0 + r) * p->N + n0;
        int32_t *dst = j->out + o;
        uint32_t v[IM_BLK];
        for (int64_t q = 0; q < cols; q++) v[q] = (uint32_t)blk[r * IM_BLK + q] + row_corr[r];
        if (p->col_corr) for (int64_t q = 0; q < cols; q++) v[q] += p->col_corr[n0 + q];
        if (j->c) for (int64_t q = 0; q < cols; q++) v[q] += (uint32_t)j->c[o + q];
        memcpy(dst, v, (size_t)cols * sizeof(int32_t));
        if (j->values)
            for (int64_t q = 0; q < cols; q++) j->values[o + q] = (double)dst[q];
    }
}

static void *pack_task(void *arg) {
    im_job *j = (im_job *)arg;
#ifdef IM_HAVE_X86
    if (j->p->level >= 1 && j->b_vec) { im_pack_b_avx512(j); return NULL; }
#endif
    pack_b(j);
    return NULL;
}

static void *block_task(void *arg) {
    im_job *j = (im_job *)arg;
    const im_plan *p = j->p;
    const int64_t nb = p->Np / IM_BLK, ng = p->Kp / 4;
    uint8_t *A = (uint8_t *)aligned_alloc(64, (size_t)(IM_BLK * p->Kp));
    int32_t *blk = (int32_t *)aligned_alloc(64, IM_BLK * IM_BLK * sizeof(int32_t));
    uint32_t row_corr[IM_BLK];
    if (!A || !blk) { free(A); free(blk); j->status = NS_ERR_ARG; return NULL; }
    im_block_fn fn = im_block_portable;
#ifdef IM_HAVE_X86
    if (p->level == 1) fn = im_block_vnni;
    if (p->level == 2) { fn = im_block_amx; im_amx_begin(); }
#endif
    int64_t cur = -1;
    for (int64_t t = j->lo; t < j->hi; t++) {
        const int64_t mb = t / nb, nbk = t % nb;
        if (mb != cur) { pack_a(j, mb * IM_BLK, A, row_corr); cur = mb; }
        fn(p, A, p->b_packed + 2 * nbk * ng * 64, blk);
#ifdef IM_HAVE_X86
        if (p->level >= 1) { im_finish_avx512(j, mb * IM_BLK, nbk * IM_BLK, blk, row_corr); continue; }
#endif
        finish_block(j, mb * IM_BLK, nbk * IM_BLK, blk, row_corr);
    }
#ifdef IM_HAVE_X86
    if (p->level == 2) im_amx_end();
    if (p->level >= 1 && p->stream_values) im_store_fence();
#endif
    free(A); free(blk);
    return NULL;
}

/* Runs fn over n jobs, a thread each, through the one thread runner (csrc/threads.c): range t is
 * job t (T = n for n <= NS_MAX_THREADS; callers never ask for more). Every job is computed by the same
 * code whatever thread runs it: same bits. */
typedef struct im_run_ctx { void *(*fn)(void *); im_job *jobs; } im_run_ctx;

static void im_run_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    (void)t;
    const im_run_ctx *r = (const im_run_ctx *)ctx;
    for (int64_t i = lo; i < hi; i++) r->fn(&r->jobs[i]);
}

static void run_jobs(void *(*fn)(void *), im_job *jobs, int32_t n) {
    im_run_ctx r = {fn, jobs};
    ns_parallel_for(n, n, im_run_range, &r);
}

int32_t ns_imatmul(const uint8_t *a, int32_t a_bits, const int32_t *a_val, const int32_t *a_shift,
                   const uint8_t *b, int32_t b_bits, const int32_t *b_val, const int32_t *b_shift,
                   int64_t M, int64_t K, int64_t N, const int32_t *c, int32_t *out, double *values,
                   int32_t nthreads, int32_t level) {
    if (M < 0 || N < 0 || K < 1 || K > ((int64_t)1 << 40) || level < -1 || level > 2 || !a || !b || !a_val ||
        !b_val || !out || a_bits < 1 || a_bits > 8 || b_bits < 1 || b_bits > 8)
        return NS_ERR_ARG;
    if (level < 0) level = ns_imatmul_best_level();
    if (!ns_imatmul_has_level(level)) return NS_ERR_ARG;
    int32_t sa = 0, sb = 0;
    for (int64_t k = 0; k < K; k++) {
        if (a_shift && (a_shift[k] < 0 || a_shift[k] > 7)) return NS_ERR_ARG;
        if (b_shift && (b_shift[k] < 0 || b_shift[k] > 7)) return NS_ERR_ARG;
        if (a_shift && a_shift[k] > sa) sa = a_shift[k];
        if (b_shift && b_shift[k] > sb) sb = b_shift[k];
    }
    const int ta = lane_type(a_val, sa), tb = lane_type(b_val, sb);
    if (ta < 0 || tb < 0) return NS_ERR_ARG;
    if (M == 0 || N == 0) return NS_OK;

    im_plan p;
    memset(&p, 0, sizeof p);
    p.M = M; p.K = K; p.N = N; p.level = level;
    p.Kp = (K + IM_KT - 1) / IM_KT * IM_KT;
    p.Np = (N + IM_BLK - 1) / IM_BLK * IM_BLK;
    p.a_signed = ta; p.b_signed = tb;
    if (level == 1) p.vnni_mode = ta && tb ? 1 : !ta && !tb ? 2 : ta ? 3 : 0;
    p.stream_values = values && M * N >= ((int64_t)1 << 18);     /* 2 MiB of doubles: past the caches */
    const size_t bp_bytes = (size_t)(p.Kp * p.Np);
    uint8_t *bp = (uint8_t *)aligned_alloc(64, bp_bytes);
    uint32_t *col_corr = p.vnni_mode == 1 ? (uint32_t *)malloc((size_t)p.Np * sizeof(uint32_t)) : NULL;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    im_job *jobs = (im_job *)calloc((size_t)nthreads, sizeof(im_job));
    int32_t st = NS_OK;
    if (!bp || !jobs || (p.vnni_mode == 1 && !col_corr)) st = NS_ERR_ARG;
    else {
        p.b_packed = bp;
        p.col_corr = col_corr;

        im_job base;
        memset(&base, 0, sizeof base);
        base.p = &p; base.a = a; base.b = b; base.a_val = a_val; base.b_val = b_val; base.a_shift = a_shift;
        base.b_shift = b_shift; base.c = c; base.out = out; base.values = values; base.col_corr = col_corr;
        const uint8_t xa = p.vnni_mode == 1 ? 0x80 : 0, xb = p.vnni_mode == 2 ? 0x80 : 0;
        for (int i = 0; i < 256; i++) base.lut_a[i] = (uint8_t)(((uint32_t)a_val[i] & 0xFF) ^ xa);
        /* vector lane rules: codes < 16 by a 16-entry table; 8-bit codes whose lane byte is code + offset */
        base.a_off = (uint8_t)(base.lut_a[0]);
        base.b_off = (uint8_t)((((uint32_t)b_val[0]) & 0xFF) ^ xb);
        int a_add = 1, b_add = 1;
        for (int i = 0; i < 256; i++) {
            a_add &= base.lut_a[i] == (uint8_t)(i + base.a_off);
            b_add &= (uint8_t)((((uint32_t)b_val[i]) & 0xFF) ^ xb) == (uint8_t)(i + base.b_off);
        }
        base.a_vec = a_bits <= 4 ? 1 : a_add ? 2 : 0;
        base.b_vec = b_bits <= 4 ? 1 : (!b_shift && b_add) ? 2 : 0;
        for (int i = 0; i < 16; i++) {
            base.a_lut16[i] = base.lut_a[i];
            for (int sh = 0; sh < 8; sh++)
                base.b_lut16[sh][i] = (uint8_t)((((uint64_t)((int64_t)b_val[i] * ((int64_t)1 << sh))) & 0xFF) ^ xb);
        }

        /* packing b: threads over its 16-column panels */
        const int64_t panels = p.Np / 16;
        const int32_t npk = (int64_t)nthreads < panels ? nthreads : (int32_t)panels;
        for (int32_t i = 0; i < npk; i++) {
            jobs[i] = base;
            jobs[i].lo = panels * i / npk;
            jobs[i].hi = panels * (i + 1) / npk;
        }
        run_jobs(pack_task, jobs, npk);

        /* the product: threads over 32 x 32 output blocks, row-block major (a thread packs each a block once) */
        const int64_t blocks = ((M + IM_BLK - 1) / IM_BLK) * (p.Np / IM_BLK);
        const int32_t nt = (int64_t)nthreads < blocks ? nthreads : (int32_t)blocks;
        for (int32_t i = 0; i < nt; i++) {
            jobs[i] = base;
            jobs[i].lo = blocks * i / nt;
            jobs[i].hi = blocks * (i + 1) / nt;
        }
        run_jobs(block_task, jobs, nt);
        for (int32_t i = 0; i < nt; i++) if (jobs[i].status) st = jobs[i].status;
    }
    free(bp); free(col_corr); free(jobs);
    return st;
}

/* ---- small helpers ------------------------------------------------------------------------------------ */

void ns_imatmul_minmax_i32(const int32_t *x, int64_t n, int32_t *lo, int32_t *hi) {
    int32_t l = x[0], h = x[0];
    for (int64_t i = 1; i < n; i++) { l = x[i] < l ? x[i] : l; h = x[i] > h ? x[i] : h; }
    *lo = l; *hi = h;
}

int32_t ns_requant_int8_fast(const int32_t *acc, int64_t n, int32_t multiplier, int32_t shift, int32_t zero_point,
                             int32_t out_min, int32_t out_max, uint8_t *out, int32_t level) {
    if (n < 0 || (n && (!acc || !out)) || shift < -31 || shift > 30 || zero_point < -128 || zero_point > 127 ||
        out_min < -128 || out_max > 127 || out_min > out_max || level < -1 || level > 1)
        return NS_ERR_ARG;
    /* level 1 needs the AVX-512 subsets its file is compiled for (F, BW, VL, VNNI): the VNNI level's */
    if (level < 0) level = im_usable_vnni() ? 1 : 0;
    if (level == 1 && !im_cpu_vnni()) return NS_ERR_ARG;
#ifdef IM_HAVE_X86
    if (level == 1) {
        im_requant_avx512(acc, n, multiplier, shift, zero_point, out_min, out_max, out);
        return NS_OK;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = (uint8_t)ns_requant_int8(acc[i], multiplier, shift, zero_point, out_min, out_max);
    return NS_OK;
}

typedef struct finish_job {
    const ns_unit *u;
    const int32_t *g;
    const uint32_t *c;
    uint32_t *out;
    int64_t n, lo, hi, events;
    int32_t status, level;
} finish_job;

/* Outputs lo .. hi of the per-shift final summation, by the unit's own rule, in the unit's order. */
static void *finish_task(void *arg) {
    finish_job *j = (finish_job *)arg;
    const ns_unit *u = j->u;
    const uint32_t mask = u->acc_fmt.bits >= 32 ? 0xFFFFFFFFu : (1u << u->acc_fmt.bits) - 1;
#ifdef IM_HAVE_X86
    if (j->level == 1) { im_shift_finish_avx512(u, j->g, j->n, j->c, j->out, j->lo, j->hi, &j->events); return NULL; }
#endif
    for (int64_t i = j->lo; i < j->hi; i++) {
        uint32_t total = j->c ? j->c[i] : 0;
        for (int s = 0; s <= 4; s++) {
            const int32_t st = ns_sample_shift_finish(u, total, (uint32_t)j->g[s * j->n + i] & mask, s, &total,
                                                      &j->events);
            if (st) { j->status = st; return NULL; }
        }
        j->out[i] = total;
    }
    return NULL;
}

static void finish_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    (void)t;
    for (int64_t i = lo; i < hi; i++) finish_task(&((finish_job *)ctx)[i]);
}

int32_t ns_imatmul_shift_finish(const void *unit, const int32_t *g, int64_t n, const uint32_t *c, uint32_t *out,
                                int64_t *events, int32_t nthreads, int32_t level) {
    const ns_unit *u = (const ns_unit *)unit;
    if (!u || (n && (!g || !out)) || !events || n < 0 || level < -1 || level > 1) return NS_ERR_ARG;
    if (level < 0) level = im_usable_vnni() ? 1 : 0;
    if (level == 1 && !im_cpu_vnni()) return NS_ERR_ARG;
    /* the vector level covers the wrap and saturate policies and the deterministic roundings; 'error'
     * policies and stochastic rounding run the unit's own rule here (the same bits) */
    const int ovf_ok = (u->acc_overflow == NS_OVF_WRAP || u->acc_overflow == NS_OVF_SATURATE) &&
                       (u->shift_dir == NS_SHIFT_RIGHT ||
                        u->shift_overflow == NS_OVF_WRAP || u->shift_overflow == NS_OVF_SATURATE);
    if (!ovf_ok || u->shift_rounding > 4 || u->max_shift > 30 || u->acc_fmt.bits > 32) level = 0;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if (n < ((int64_t)nthreads << 14)) nthreads = (int32_t)(n >> 14) + 1;    /* >= 16k outputs a thread */
    finish_job jobs[64];
    for (int32_t t = 0; t < nthreads; t++) {
        finish_job *j = &jobs[t];
        memset(j, 0, sizeof *j);
        j->u = u; j->g = g; j->c = c; j->out = out; j->n = n; j->level = level;
        j->lo = n * t / nthreads; j->hi = n * (t + 1) / nthreads;
    }
    ns_parallel_for(nthreads, nthreads, finish_range, jobs);
    *events = 0;
    int32_t st = NS_OK;
    for (int32_t t = 0; t < nthreads; t++) {       /* ranges in output order: the first failing one */
        *events += jobs[t].events;
        if (jobs[t].status && st == NS_OK) st = jobs[t].status;
    }
    return st;
}
