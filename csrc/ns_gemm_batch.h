/* Batched GEMM drivers: one call for a batch of equally shaped GEMMs (attention's per-head GEMMs, a
 * batched matmul), each batch entry computed by the single-GEMM kernel entry with the same arguments
 * it would get alone, so every entry's bits are that call's bits (csrc/gemm_batch.c). Threads split
 * the batch entries (each entry runs on one thread), never an entry's reduction. */
#ifndef NS_GEMM_BATCH_H
#define NS_GEMM_BATCH_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* ns_imatmul over `batch` entries: a (batch, M, K), b (batch, K, N), c (batch, M, N) or NULL, out and
 * values (batch, M, N) (values may be NULL), all row-major and contiguous; the tables, shifts, bits and
 * level are shared (see ns_imatmul). Returns the first non-zero status of an entry, else NS_OK. */
int32_t ns_imatmul_batch(const uint8_t *a, int32_t a_bits, const int32_t *a_val, const int32_t *a_shift,
                         const uint8_t *b, int32_t b_bits, const int32_t *b_val, const int32_t *b_shift,
                         int64_t batch, int64_t M, int64_t K, int64_t N, const int32_t *c, int32_t *out,
                         double *values, int32_t nthreads, int32_t level);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
