/* The one run-time CPU-feature query, and the one place the SIMD environment switches are read.
 * Per-ISA kernels (csrc/<op>_<isa>.c) run only when these bits say the CPU and the OS support them. */
#ifndef NS_CPU_H
#define NS_CPU_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* Bits of ns_cpu_features(). */
enum ns_cpu_feature {
    NS_CPU_AVX2 = 1, NS_CPU_FMA = 2, NS_CPU_F16C = 4, NS_CPU_AVX512F = 8, NS_CPU_AVX512BW = 16,
    NS_CPU_AVX512VL = 32, NS_CPU_AVX512_VNNI = 64, NS_CPU_AVX_VNNI = 128, NS_CPU_AVX512_BF16 = 256,
    NS_CPU_AVX512_FP16 = 512, NS_CPU_AMX_TILE = 1024, NS_CPU_AMX_INT8 = 2048, NS_CPU_AMX_BF16 = 4096
};
/* What this CPU and OS support (cpuid + xgetbv; AMX also after the Linux permission request for
 * tile data). Computed once; the environment does not change it. */
uint32_t ns_cpu_features(void);
/* ns_cpu_features() capped by the one environment switch NUMSIM_LEVEL (read at every call, so a test can
 * set it): python|portable (no SIMD), avx2, avx512, avx512_vnni, avx512_bf16, avx512_fp16, amx, each level
 * admitting the ones before it. Kernels asked for the best level (-1) pick from these bits. */
uint32_t ns_cpu_usable(void);
/* CDEF END */

/* Per-ISA files (csrc/<op>_<isa>.c) hold code only on x86 with GCC or clang; elsewhere (or built with
 * -DNS_PORTABLE_ONLY, NUMSIM_PORTABLE_ONLY=1 in build_kernels.py) they are empty, ns_cpu_features() is 0
 * and every op runs its portable C. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(NS_PORTABLE_ONLY)
#define NS_X86 1
#endif

/* The one dispatch rule: each op's best level under the features f (ns_cpu_usable() for the automatic
 * choice, ns_cpu_features() to check an explicit request). 0 is always the portable C. */
int32_t ns_level_fastgemm(uint32_t f);    /* 2 AVX-512F, 1 AVX2 + FMA */
int32_t ns_level_int8_gemm(uint32_t f);   /* 2 AVX-512 VNNI (F, BW, VL, VNNI), 1 AVX2 */
int32_t ns_level_fused_gemm(uint32_t f);  /* 2 AVX-512F */
int32_t ns_level_encode_f32(uint32_t f);  /* 1 AVX2 */
int32_t ns_level_f16c(uint32_t f);        /* 1 F16C (with AVX) */

#define NS_CPU_AVX512_BASE (NS_CPU_AVX512F | NS_CPU_AVX512BW | NS_CPU_AVX512VL)
/* Every bit of `need` is set in `have`. */
static inline int ns_cpu_has(uint32_t have, uint32_t need) { return (have & need) == need; }

#ifdef __cplusplus
}
#endif
#endif
