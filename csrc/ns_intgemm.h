/* Exact integer GEMM on 8-bit lanes (AVX-512 VNNI, AVX2, plain C): see csrc/intgemm.c for the
 * kernel and numsim/fastpath.py for when its result is the MAC-level unit's. */
#ifndef NS_INTGEMM_H
#define NS_INTGEMM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* out = c + sum_k a[m,k] * b[k,n] * 2^shift[k], computed modulo 2^32 (exact when the true result lies
 * in int32, which the caller proves). a (M, K) and b (K, N) are row-major uint8 codes below 2^a_bits
 * and 2^b_bits (bits 1 .. 8); a_val / b_val (256 entries each) give each code's integer value. shift (K entries in [0, 30], or NULL for none)
 * scales b's rows when shift_on_b, else a's columns. Each operand enters the dot-product unit as a
 * lane value + offset: a lane = a' + a_off, b lane = b' + b_off (a', b' the shifted values); with
 * a_is_u8 the a lanes must lie in [0, 255] and the b lanes in [-128, 127], else the other way round
 * (checked: NS_ERR_ARG if any code's lane leaves its range). c (M, N) accumulator codes of an
 * acc_bits-bit two's-complement accumulator (sign-extended), or NULL. out (M, N) int32 values;
 * values (M, N) the same as doubles, or NULL. level: -1 picks the best ns_cpu_usable() allows (honouring
 * the NUMSIM_LEVEL cap), 0 plain C, 1 AVX2, 2 AVX-512 VNNI (NS_ERR_ARG if absent). */
int32_t ns_int8_gemm(const uint8_t *a, int32_t a_bits, const int32_t *a_val, const uint8_t *b, int32_t b_bits,
                     const int32_t *b_val, int64_t M, int64_t K, int64_t N, const int32_t *shift, int32_t shift_on_b,
                     int32_t a_off, int32_t b_off, int32_t a_is_u8, const uint32_t *c, int32_t acc_bits,
                     int32_t *out, double *values, int32_t nthreads, int32_t level);
/* The level ns_int8_gemm(level=-1) runs: 2 AVX-512 VNNI, 1 AVX2, 0 plain C. */
int32_t ns_int8_gemm_level(void);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
