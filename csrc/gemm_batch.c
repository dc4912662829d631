/* Batched GEMM drivers (ns_gemm_batch.h). Each entry is one call of the single-GEMM entry point with
 * one thread: its bits are that call's (a kernel's result never depends on its thread count), and
 * the threads of the batch split whole entries, so they change no bit either. */
#include "numsim.h"
#include <stdlib.h>
#include <string.h>

typedef struct im_batch {
    const uint8_t *a, *b;
    const int32_t *a_val, *b_val, *a_shift, *b_shift, *c;
    int32_t a_bits, b_bits, level;
    int64_t M, K, N;
    int32_t *out;
    double *values;
    int32_t *status;        /* one per entry */
} im_batch;

static void im_batch_range(void *ctx, int32_t t, int64_t lo, int64_t hi) {
    (void)t;
    const im_batch *p = (const im_batch *)ctx;
    const int64_t mk = p->M * p->K, kn = p->K * p->N, mn = p->M * p->N;
    for (int64_t i = lo; i < hi; i++)
        p->status[i] = ns_imatmul(p->a + i * mk, p->a_bits, p->a_val, p->a_shift, p->b + i * kn, p->b_bits, p->b_val,
                                  p->b_shift, p->M, p->K, p->N, p->c ? p->c + i * mn : NULL, p->out + i * mn,
                                  p->values ? p->values + i * mn : NULL, 1, p->level);
}

int32_t ns_imatmul_batch(const uint8_t *a, int32_t a_bits, const int32_t *a_val, const int32_t *a_shift,
                         const uint8_t *b, int32_t b_bits, const int32_t *b_val, const int32_t *b_shift,
                         int64_t batch, int64_t M, int64_t K, int64_t N, const int32_t *c, int32_t *out,
                         double *values, int32_t nthreads, int32_t level) {
    if (batch < 0 || M < 0 || N < 0 || K < 1 || !a || !b || !out) return NS_ERR_ARG;
    if (batch == 0) return NS_OK;
    /* one entry: the kernel's own threads split its output blocks */
    if (batch == 1)
        return ns_imatmul(a, a_bits, a_val, a_shift, b, b_bits, b_val, b_shift, M, K, N, c, out, values, nthreads,
                          level);
    int32_t *status = (int32_t *)calloc((size_t)batch, sizeof(int32_t));
    if (!status) return NS_ERR_ARG;
    im_batch p = {a, b, a_val, b_val, a_shift, b_shift, c, a_bits, b_bits, level, M, K, N, out, values, status};
    ns_parallel_for(batch, nthreads, im_batch_range, &p);
    int32_t st = NS_OK;
    for (int64_t i = 0; i < batch && st == NS_OK; i++) st = status[i];
    free(status);
    return st;
}
