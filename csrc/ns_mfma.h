/* AMD CDNA3 matrix-core datapath ('fused_floor' of numsim.units.matrix_core.MatrixCoreUnit) as a C
 * kernel: the same integer steps as the unit's numpy MAC level, one output at a time. */
#ifndef NS_MFMA_H
#define NS_MFMA_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* Operands decoded by the unit (mag, neg 0/1, exp, cls 0 zero 1 finite 2 inf 3 NaN): A (M, Kp), B (N, Kp)
 * (B transposed), Kp a multiple of group; c, d (M, N) fp32 codes. split: even/odd k fused separately;
 * c_drop < 0: never dropped. events: results past fp32 from finite inputs (added to *events). */
int32_t ns_mfma_fused_floor_gemm(const int32_t *am, const int32_t *an, const int32_t *ae, const uint8_t *acl,
                                 const int32_t *bm, const int32_t *bn, const int32_t *be, const uint8_t *bcl,
                                 const uint32_t *c, uint32_t *d, int64_t M, int64_t N, int64_t Kp, int32_t group,
                                 int32_t mab, int32_t term_bits, int32_t sum_bits, int32_t c_bits, int32_t split,
                                 int32_t c_drop, int32_t zero_exponent, int64_t *events);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
