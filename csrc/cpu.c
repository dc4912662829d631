/* ns_cpu_features: cpuid for what the CPU implements, xgetbv for what the OS saves on a context
 * switch (a feature whose registers the OS does not save cannot be used). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* syscall() under -std=c11 */
#endif
#include <stdlib.h>
#include <string.h>
#include "ns_cpu.h"

#ifdef NS_X86
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Linux hands out the AMX tile-data state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). */
static int amx_permitted(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return 0;
#endif
}

static uint32_t detect(void) {
    uint32_t a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const uint32_t ecx1 = c;
    if (!(ecx1 & (1u << 27)) || !(ecx1 & (1u << 28))) return 0;   /* no OSXSAVE or no AVX */
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0;                            /* OS saves no YMM state */
    const int zmm_os = (xcr0 & 0xE0) == 0xE0, amx_os = (xcr0 & 0x60000) == 0x60000;
    if (ecx1 & (1u << 12)) f |= NS_CPU_FMA;
    if (ecx1 & (1u << 29)) f |= NS_CPU_F16C;
    if (__get_cpuid_max(0, 0) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const uint32_t ebx7 = b, ecx7 = c, edx7 = d;
    __cpuid_count(7, 1, a, b, c, d);
    const uint32_t eax71 = a;
    if (ebx7 & (1u << 5)) f |= NS_CPU_AVX2;
    if (eax71 & (1u << 4)) f |= NS_CPU_AVX_VNNI;
    if (zmm_os) {
        if (ebx7 & (1u << 16)) f |= NS_CPU_AVX512F;
        if (ebx7 & (1u << 30)) f |= NS_CPU_AVX512BW;
        if (ebx7 & (1u << 31)) f |= NS_CPU_AVX512VL;
        if (ecx7 & (1u << 11)) f |= NS_CPU_AVX512_VNNI;
        if (edx7 & (1u << 23)) f |= NS_CPU_AVX512_FP16;
        if (eax71 & (1u << 5)) f |= NS_CPU_AVX512_BF16;
    }
    if (amx_os && (edx7 & (1u << 24)) && amx_permitted()) {
        f |= NS_CPU_AMX_TILE;
        if (edx7 & (1u << 25)) f |= NS_CPU_AMX_INT8;
        if (edx7 & (1u << 22)) f |= NS_CPU_AMX_BF16;
    }
    return f;
}
#else
static uint32_t detect(void) { return 0; }
#endif

uint32_t ns_cpu_features(void) {
    /* racing first calls compute the same value: a benign, idempotent store */
    static volatile int32_t cached = -1;
    if (cached < 0) cached = (int32_t)detect();
    return (uint32_t)cached;
}

/* NUMSIM_LEVEL caps the features by level, in the order numsim.kernels.LEVELS lists them; an unknown
 * name caps at the portable C (numsim.kernels refuses it with a NumsimError before any kernel runs). */
static uint32_t level_mask(const char *level) {
    static const struct { const char *name; uint32_t adds; } levels[] = {
        {"python", 0}, {"portable", 0},
        {"avx2", NS_CPU_AVX2 | NS_CPU_FMA | NS_CPU_F16C},
        {"avx512", NS_CPU_AVX512_BASE},
        {"avx512_vnni", NS_CPU_AVX512_VNNI | NS_CPU_AVX_VNNI},
        {"avx512_bf16", NS_CPU_AVX512_BF16},
        {"avx512_fp16", NS_CPU_AVX512_FP16},
        {"amx", NS_CPU_AMX_TILE | NS_CPU_AMX_INT8 | NS_CPU_AMX_BF16},
    };
    uint32_t mask = 0;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        mask |= levels[i].adds;
        if (strcmp(level, levels[i].name) == 0) return mask;
    }
    return 0;
}

uint32_t ns_cpu_usable(void) {
    uint32_t f = ns_cpu_features();
    const char *level = getenv("NUMSIM_LEVEL");
    if (level && *level) f &= level_mask(level);
    return f;
}

int32_t ns_level_fastgemm(uint32_t f) {
    if (ns_cpu_has(f, NS_CPU_AVX512F)) return 2;
    return ns_cpu_has(f, NS_CPU_AVX2 | NS_CPU_FMA) ? 1 : 0;
}
int32_t ns_level_int8_gemm(uint32_t f) {
    if (ns_cpu_has(f, NS_CPU_AVX512_BASE | NS_CPU_AVX512_VNNI)) return 2;
    return ns_cpu_has(f, NS_CPU_AVX2) ? 1 : 0;
}
int32_t ns_level_fused_gemm(uint32_t f) { return ns_cpu_has(f, NS_CPU_AVX512F) ? 2 : 0; }
int32_t ns_level_encode_f32(uint32_t f) { return ns_cpu_has(f, NS_CPU_AVX2) ? 1 : 0; }
int32_t ns_level_f16c(uint32_t f) { return ns_cpu_has(f, NS_CPU_F16C) ? 1 : 0; }
