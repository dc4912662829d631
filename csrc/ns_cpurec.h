/* The CPU's own matrix/dot-product instructions run on adversarial tiles (issue 19): a recorder, not a
 * kernel. Each ns_rec_* computes T tiles D = chain of the instruction over K (see csrc/cpurec.c for the
 * tile layouts) and returns NS_OK, NS_ERR_ARG for bad sizes, or NS_REC_ABSENT when this CPU (or OS)
 * lacks the instruction. numsim/verify/cpu_recorder.py drives it and writes the recordings. */
#ifndef NS_CPUREC_H
#define NS_CPUREC_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
enum { NS_REC_ABSENT = -1 };
/* AVX512-BF16 vdpbf16ps: tile M=16 lanes x N, K even; A (T,16,K) bf16, B (T,K,N) bf16 (each k pair of a
 * column broadcast to every lane), C/D (T,16,N) fp32 bits. */
int32_t ns_rec_vdpbf16ps(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d,
                         int64_t T, int64_t K, int64_t N);
/* AMX-BF16 tdpbf16ps: tile 16 x 16, K a multiple of 32 (K/32 chained instructions). */
int32_t ns_rec_tdpbf16ps(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d,
                         int64_t T, int64_t K);
/* AMX-INT8 tdpb{s,u}{s,u}d: tile 16 x 16, K a multiple of 64; signs: bit 0 A unsigned, bit 1 B unsigned. */
int32_t ns_rec_tdpbxxd(const uint8_t *a, const uint8_t *b, const int32_t *c, int32_t *d,
                       int64_t T, int64_t K, int32_t signs);
/* AVX512-VNNI vpdpbusd (saturate=0) / vpdpbusds (1): M=16 lanes x N, K a multiple of 4, A uint8, B int8. */
int32_t ns_rec_vpdpbusd(const uint8_t *a, const int8_t *b, const int32_t *c, int32_t *d,
                        int64_t T, int64_t K, int64_t N, int32_t saturate);
/* AVX512-FP16 vfmadd231ph: M=32 lanes x N; acc = fma(a[m,k], b[k,n], acc) for k in order; fp16 bits. */
int32_t ns_rec_vfmadd231ph(const uint16_t *a, const uint16_t *b, const uint16_t *c, uint16_t *d,
                           int64_t T, int64_t K, int64_t N);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
