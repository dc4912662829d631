/* Exact integer matrix multiply on 8-bit lanes: AMX-INT8 tiles, AVX-512 VNNI, and a portable C twin
 * (csrc/imatmul.c, imatmul_avx512vnni.c, imatmul_amx.c), plus a vectorised INT8 requantization.
 * When the result equals a MAC-level unit's: numsim/kernels/int_imatmul.py (each kernel's proof). */
#ifndef NS_IMATMUL_H
#define NS_IMATMUL_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* out[m,n] = c[m,n] + sum_k a'[m,k] * b'[k,n]  modulo 2^32, read as int32, where
 *   a'[m,k] = a_val[a[m,k]] * 2^a_shift[k],  b'[k,n] = b_val[b[k,n]] * 2^b_shift[k].
 * Every level computes exactly this residue (same bits at every level); it is the true integer
 * whenever that lies in [-2^31, 2^31), which the caller proves (int_imatmul.py).
 * a (M, K) and b (K, N): row-major uint8 codes below 2^a_bits and 2^b_bits (bits 1 .. 8: the caller
 * checks the codes; a code past its format may give a wrong number, never a wrong memory access);
 * a_val / b_val: 256 int32 values, one per code;
 * a_shift / b_shift: K shifts in [0, 7] or NULL. Each side's values a' (b') must all fit int8 lanes
 * [-128, 127] or all fit uint8 lanes [0, 255] (checked over the whole table and shift range:
 * NS_ERR_ARG otherwise). c: M x N int32 or NULL. out: M x N int32. values: M x N doubles
 * (the same numbers) or NULL. level: -1 the best the CPU grants, 0 portable C, 1 AVX-512 VNNI,
 * 2 AMX-INT8 (NS_ERR_ARG where the CPU or the OS lacks it). Threads split the output in 32 x 32
 * blocks, never the reduction. */
int32_t ns_imatmul(const uint8_t *a, int32_t a_bits, const int32_t *a_val, const int32_t *a_shift,
                   const uint8_t *b, int32_t b_bits, const int32_t *b_val, const int32_t *b_shift,
                   int64_t M, int64_t K, int64_t N, const int32_t *c, int32_t *out, double *values,
                   int32_t nthreads, int32_t level);
/* 1 when this machine runs ns_imatmul at `level` (for AMX: CPUID says AMX-TILE + AMX-INT8 and Linux
 * granted the tile data state), else 0. */
int32_t ns_imatmul_has_level(int32_t level);
/* The level ns_imatmul(level=-1) runs: 2, 1 or 0 (0 when NUMSIM_NO_SIMD is set). */
int32_t ns_imatmul_best_level(void);
/* Smallest and largest of n int32 (n >= 1). */
void ns_imatmul_minmax_i32(const int32_t *x, int64_t n, int32_t *lo, int32_t *hi);
/* RequantInt8.apply (ns_requant_int8) over n int32 accumulators: int8 codes out. level 0: the scalar
 * rule of csrc/units.c; 1: AVX-512 (the VNNI level's CPUs), 16 at a time, the same bits (-1: best). NS_ERR_ARG on a bad
 * parameter or an absent level. */
int32_t ns_requant_int8_fast(const int32_t *acc, int64_t n, int32_t multiplier, int32_t shift, int32_t zero_point,
                             int32_t out_min, int32_t out_max, uint8_t *out, int32_t level);
/* The per-shift sample-shift unit's final summation, by the unit's own rule (ns_sample_shift_finish):
 * for each of the n outputs, total = c (or 0); then for s = 0 .. 4: total = finish(total, g[s][i], s).
 * g: 5 x n int32 group accumulators. out: n accumulator codes. *events gets the events counted.
 * Each g[s][i] must be the exact group value, inside the accumulator's range. Threads split the
 * outputs. level: 0 the unit's rule (ns_sample_shift_finish), 1 AVX-512 8 outputs at a time, the same
 * bits and events (wrap / saturate policies, deterministic rounding; others run level 0), -1 best.
 * Returns the first failing status (an overflow under an 'error' policy) or NS_OK. */
int32_t ns_imatmul_shift_finish(const void *unit, const int32_t *g, int64_t n, const uint32_t *c, uint32_t *out,
                                int64_t *events, int32_t nthreads, int32_t level);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
