/* float32 -> IEEE binary16 on F16C (vcvtps2ph, round to nearest even, overflow to inf): exactly what the
 * portable encode computes for that format and policy (tests compare them bit for bit). Runs only where
 * ns_level_f16c(ns_cpu_usable()) >= 1 (F16C implies AVX there). */
#include "encode_f32_isa.h"

#ifdef NS_X86
#include <immintrin.h>

__attribute__((target("avx,f16c")))
void ns_encode_f32_fp16_f16c(const float *x, size_t n, uint16_t *codes) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(codes + i), h);
    }
    for (; i < n; i++) {
        __m128 v = _mm_set_ss(x[i]);
        codes[i] = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), 0);
    }
}
#endif
