/* Recorder of the CPU's own dot-product instructions (ns_cpurec.h). Layouts, per tile t:
 * A (M, K) row-major, B (K, N) row-major, C and D (M, N); the instruction's natural operand layout
 * (bf16/int8 pairs or quads along k, VNNI-packed B tiles for AMX) is built here per tile, so the
 * recording files share the GPU recordings' (T, M, K) / (T, K, N) / (T, M, N) arrays. The MXCSR is
 * set to its default (RNE, no FTZ/DAZ, exceptions masked) around each run: what is recorded is the
 * instruction's own behaviour, not an inherited mode. */
#include "ns_cpurec.h"
#include "cpurec_internal.h"
#include "ns_formats.h"

#ifdef NS_X86
#include <immintrin.h>
#define REC_MXCSR_DEFAULT 0x1F80u
#define REC_MODE_BEGIN unsigned int rec_saved = _mm_getcsr(); _mm_setcsr(REC_MXCSR_DEFAULT)
#define REC_MODE_END _mm_setcsr(rec_saved)
#endif

static int has(uint32_t need) { return ns_cpu_has(ns_cpu_features(), need); }

int32_t ns_rec_vdpbf16ps(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d,
                         int64_t T, int64_t K, int64_t N) {
    if (!a || !b || !c || !d || T < 0 || K < 2 || K % 2 || N < 1) return NS_ERR_ARG;
#ifdef NS_X86
    if (!has(NS_CPU_AVX512_BASE | NS_CPU_AVX512_BF16)) return NS_REC_ABSENT;
    REC_MODE_BEGIN;
    rec_vdpbf16ps_avx512bf16(a, b, c, d, T, K, N);
    REC_MODE_END;
    return NS_OK;
#else
    return NS_REC_ABSENT;
#endif
}

int32_t ns_rec_tdpbf16ps(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d,
                         int64_t T, int64_t K) {
    if (!a || !b || !c || !d || T < 0 || K < 32 || K % 32) return NS_ERR_ARG;
#ifdef NS_X86
    if (!has(NS_CPU_AMX_TILE | NS_CPU_AMX_BF16)) return NS_REC_ABSENT;
    REC_MODE_BEGIN;
    rec_tdpbf16ps_amx(a, b, c, d, T, K);
    REC_MODE_END;
    return NS_OK;
#else
    return NS_REC_ABSENT;
#endif
}

int32_t ns_rec_tdpbxxd(const uint8_t *a, const uint8_t *b, const int32_t *c, int32_t *d,
                       int64_t T, int64_t K, int32_t signs) {
    if (!a || !b || !c || !d || T < 0 || K < 64 || K % 64 || signs < 0 || signs > 3) return NS_ERR_ARG;
#ifdef NS_X86
    if (!has(NS_CPU_AMX_TILE | NS_CPU_AMX_INT8)) return NS_REC_ABSENT;
    rec_tdpbxxd_amx(a, b, c, d, T, K, signs);
    return NS_OK;
#else
    return NS_REC_ABSENT;
#endif
}

int32_t ns_rec_vpdpbusd(const uint8_t *a, const int8_t *b, const int32_t *c, int32_t *d,
                        int64_t T, int64_t K, int64_t N, int32_t saturate) {
    if (!a || !b || !c || !d || T < 0 || K < 4 || K % 4 || N < 1 || (saturate != 0 && saturate != 1))
        return NS_ERR_ARG;
#ifdef NS_X86
    if (!has(NS_CPU_AVX512_BASE | NS_CPU_AVX512_VNNI)) return NS_REC_ABSENT;
    rec_vpdpbusd_vnni(a, b, c, d, T, K, N, saturate);
    return NS_OK;
#else
    return NS_REC_ABSENT;
#endif
}

int32_t ns_rec_vfmadd231ph(const uint16_t *a, const uint16_t *b, const uint16_t *c, uint16_t *d,
                           int64_t T, int64_t K, int64_t N) {
    if (!a || !b || !c || !d || T < 0 || K < 1 || N < 1) return NS_ERR_ARG;
#ifdef NS_X86
    if (!has(NS_CPU_AVX512_BASE | NS_CPU_AVX512_FP16)) return NS_REC_ABSENT;
    REC_MODE_BEGIN;
    rec_vfmadd231ph_avx512fp16(a, b, c, d, T, K, N);
    REC_MODE_END;
    return NS_OK;
#else
    return NS_REC_ABSENT;
#endif
}
