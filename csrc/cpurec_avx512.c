#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,avx512fp16")
/* AVX-512 bodies of the recorder (csrc/cpurec.c): vdpbf16ps, vpdpbusd(s), vfmadd231ph. One lane per
 * row m; the column n's k group is broadcast to every lane, so lane m computes output (m, n). Called
 * only after the CPU-feature check of csrc/cpurec.c. */
#include "cpurec_internal.h"
#ifdef NS_X86
#include <immintrin.h>
#include <string.h>

void rec_vdpbf16ps_avx512bf16(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d,
                              int64_t T, int64_t K, int64_t N) {
    for (int64_t t = 0; t < T; t++) {
        const uint16_t *A = a + t * 16 * K, *B = b + t * K * N;
        for (int64_t n = 0; n < N; n++) {
            uint32_t acc[16], pair[16];
            for (int m = 0; m < 16; m++) acc[m] = c[(t * 16 + m) * N + n];
            __m512 v = _mm512_loadu_ps(acc);
            for (int64_t k = 0; k < K; k += 2) {
                /* dword lane m: bf16 element 2i (low half) = A[m, k], element 2i+1 = A[m, k+1] */
                for (int m = 0; m < 16; m++) pair[m] = (uint32_t)A[m * K + k] | ((uint32_t)A[m * K + k + 1] << 16);
                uint32_t bp = (uint32_t)B[k * N + n] | ((uint32_t)B[(k + 1) * N + n] << 16);
                __m512i va = _mm512_loadu_si512(pair), vb = _mm512_set1_epi32((int)bp);
                v = _mm512_dpbf16_ps(v, (__m512bh)va, (__m512bh)vb);
            }
            _mm512_storeu_ps(acc, v);
            for (int m = 0; m < 16; m++) d[(t * 16 + m) * N + n] = acc[m];
        }
    }
}

void rec_vpdpbusd_vnni(const uint8_t *a, const int8_t *b, const int32_t *c, int32_t *d, int64_t T, int64_t K,
                       int64_t N, int32_t saturate) {
    for (int64_t t = 0; t < T; t++) {
        const uint8_t *A = a + t * 16 * K;
        const int8_t *B = b + t * K * N;
        for (int64_t n = 0; n < N; n++) {
            int32_t acc[16];
            uint32_t quad[16];
            for (int m = 0; m < 16; m++) acc[m] = c[(t * 16 + m) * N + n];
            __m512i v = _mm512_loadu_si512(acc);
            for (int64_t k = 0; k < K; k += 4) {
                for (int m = 0; m < 16; m++) memcpy(&quad[m], A + m * K + k, 4);
                uint32_t bq = 0;
                for (int j = 0; j < 4; j++) bq |= (uint32_t)(uint8_t)B[(k + j) * N + n] << (8 * j);
                __m512i va = _mm512_loadu_si512(quad), vb = _mm512_set1_epi32((int)bq);
                v = saturate ? _mm512_dpbusds_epi32(v, va, vb) : _mm512_dpbusd_epi32(v, va, vb);
            }
            _mm512_storeu_si512(acc, v);
            for (int m = 0; m < 16; m++) d[(t * 16 + m) * N + n] = acc[m];
        }
    }
}

void rec_vfmadd231ph_avx512fp16(const uint16_t *a, const uint16_t *b, const uint16_t *c, uint16_t *d,
                                int64_t T, int64_t K, int64_t N) {
    for (int64_t t = 0; t < T; t++) {
        const uint16_t *A = a + t * 32 * K, *B = b + t * K * N;
        for (int64_t n = 0; n < N; n++) {
            uint16_t acc[32], col[32];
            for (int m = 0; m < 32; m++) acc[m] = c[(t * 32 + m) * N + n];
            __m512i v = _mm512_loadu_si512(acc);
            for (int64_t k = 0; k < K; k++) {
                for (int m = 0; m < 32; m++) col[m] = A[m * K + k];
                __m512i va = _mm512_loadu_si512(col), vb = _mm512_set1_epi16((short)B[k * N + n]);
                v = _mm512_castph_si512(_mm512_fmadd_ph(_mm512_castsi512_ph(va), _mm512_castsi512_ph(vb),
                                                        _mm512_castsi512_ph(v)));
            }
            _mm512_storeu_si512(acc, v);
            for (int m = 0; m < 32; m++) d[(t * 32 + m) * N + n] = acc[m];
        }
    }
}
#endif
