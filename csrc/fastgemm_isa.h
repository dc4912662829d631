/* Internal to the fast float GEMM: what csrc/fastgemm.c (portable) shares with its per-ISA panels
 * (csrc/fastgemm_avx2.c, csrc/fastgemm_avx512.c). Not part of the C ABI. */
#ifndef NS_FASTGEMM_ISA_H
#define NS_FASTGEMM_ISA_H
#include <stdint.h>
#include "ns_cpu.h"

typedef struct grid { int32_t man_bits, emin; double max_finite; } grid;

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

/* One panel of NB columns at n0 for rows m0 .. m1, the same computation as the portable panel_scalar
 * (fastgemm.c), 4 (AVX2: half h of the panel, 16 columns) or 8 (AVX-512) double lanes a vector.
 * scratch: T * 4 vectors (pairwise order). */
void ns_fastgemm_panel_avx2(const job *j, const double *bp, int64_t n0, const double *arow_all, void *scratch, int h);
void ns_fastgemm_panel_avx512(const job *j, const double *bp, int64_t n0, const double *arow_all, void *scratch);
#endif
