/* Per-ISA bodies of csrc/cpurec.c (each in its own file under its target pragma). */
#ifndef NS_CPUREC_INTERNAL_H
#define NS_CPUREC_INTERNAL_H
#include <stdint.h>
#include "ns_cpu.h"
#ifdef __cplusplus
extern "C" {
#endif
#ifdef NS_X86
void rec_vdpbf16ps_avx512bf16(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d,
                              int64_t T, int64_t K, int64_t N);
void rec_tdpbf16ps_amx(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d, int64_t T, int64_t K);
void rec_tdpbxxd_amx(const uint8_t *a, const uint8_t *b, const int32_t *c, int32_t *d, int64_t T, int64_t K,
                     int32_t signs);
void rec_vpdpbusd_vnni(const uint8_t *a, const int8_t *b, const int32_t *c, int32_t *d, int64_t T, int64_t K,
                       int64_t N, int32_t saturate);
void rec_vfmadd231ph_avx512fp16(const uint16_t *a, const uint16_t *b, const uint16_t *c, uint16_t *d,
                                int64_t T, int64_t K, int64_t N);
#endif
#ifdef __cplusplus
}
#endif
#endif
