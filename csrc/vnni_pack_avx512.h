/* The VNNI operand layout, shared by the AVX-512 VNNI integer kernels (intgemm_avx512vnni.c,
 * imatmul_avx512vnni.c): include only from a per-ISA file compiled for avx512f,avx512bw,avx512vl. */
#ifndef NS_VNNI_PACK_AVX512_H
#define NS_VNNI_PACK_AVX512_H
#include <immintrin.h>

/* Rows k..k+3 of 16 byte columns (r[0..3]) interleaved into vpdpbusd's layout: for each column n the
 * four bytes of k..k+3 are adjacent (dword n of the result). A pure byte permutation: no value changes. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline __m512i
ns_vnni_interleave4x16(const __m128i r[4]) {
    const __m128i t01l = _mm_unpacklo_epi8(r[0], r[1]), t01h = _mm_unpackhi_epi8(r[0], r[1]);
    const __m128i t23l = _mm_unpacklo_epi8(r[2], r[3]), t23h = _mm_unpackhi_epi8(r[2], r[3]);
    __m512i v = _mm512_castsi128_si512(_mm_unpacklo_epi16(t01l, t23l));
    v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(t01l, t23l), 1);
    v = _mm512_inserti32x4(v, _mm_unpacklo_epi16(t01h, t23h), 2);
    return _mm512_inserti32x4(v, _mm_unpackhi_epi16(t01h, t23h), 3);
}
#endif
