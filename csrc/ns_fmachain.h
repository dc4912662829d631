/* Float-accumulator chain GEMM: the float MAC units' exact bits at the machine's own rounding rate.
 *
 * What it computes (numsim.mac.FloatMacUnit / Int4Fp4r4Unit, csrc/units.c): for every output (i, j),
 * terms t = 0 .. T-1 (T = ceil(K / k_step)), term t the exact sum of the k_step products
 * a[i, k] * b[k, j] of its k's; the accumulator (fp16, bf16 or fp32) takes each add with one
 * round-to-nearest-even, in the unit's order: sequential (acc = RN(acc + term)), chunked (each chunk
 * of `chunk` terms summed in its own accumulator that starts at RN(first term), then acc = RN(acc +
 * chunk)), or pairwise (leaves RN(term), adjacent pairs level by level, acc = RN(acc + root)).
 * Overflow goes to infinity (the caller handles the saturate / error policies: with finite operands
 * a finite output proves no add overflowed). A NaN output is re-coded as the units give it (the
 * quieted initial accumulator when that is a NaN, else the default NaN). Threads split output rows
 * and column panels, never the reduction.
 *
 * Preconditions (checked by numsim/kernels/float_fma.py before any call): every operand value is a
 * float32 value (given as codes and a float32 table of every code's value, or as float32 values); with
 * k_step > 1 every partial sum of a term's products is a
 * multiple of its finest product quantum below 2^24 of it and >= 2^-149 (so fp32 adds them exactly).
 *
 * Levels (each with its proof in its file): 0 portable C (fmachain.c), 1 AVX-512F/BW/VL/DQ
 * (fmachain_avx512.c), 2 AVX512-FP16 (fmachain_avx512fp16.c; fp16 accumulator with k_step == 1 only,
 * the rest runs at level 1). Every level gives the same bits. */
#ifndef NS_FMACHAIN_H
#define NS_FMACHAIN_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
enum ns_fmachain_acc { NS_FMC_FP16 = 0, NS_FMC_BF16 = 1, NS_FMC_FP32 = 2 };
enum ns_fmachain_level { NS_FMC_PORTABLE = 0, NS_FMC_AVX512 = 1, NS_FMC_AVX512_FP16 = 2 };

typedef struct ns_fmachain_args {
    int32_t acc;            /* ns_fmachain_acc */
    int32_t k_step;         /* products per term, 1..64 */
    int32_t order;          /* 0 sequential, 1 chunked, 2 pairwise */
    int64_t chunk;          /* terms per chunk (order 1) */
    int64_t M, K, N;
    const void *a;          /* (M, K) row-major operand codes of a_bytes bytes (1, 2), or float32 values (4) */
    const void *b;          /* (K, N) the same for b */
    int32_t a_bytes, b_bytes;
    int32_t a_bits, b_bits;  /* code widths of the operand formats (tables have 2^bits entries) */
    const float *a_lut;     /* value of every a code (a_bytes 1 or 2); NULL with a_bytes 4 */
    const float *b_lut;
    const uint16_t *a_lut16;/* level 2: the fp16 code of every a code's value (all fp16 values), else NULL */
    const uint16_t *b_lut16;
    const void *c;          /* (M, N) initial accumulator codes (uint16 for fp16 / bf16, uint32 for fp32), or NULL (+0) */
    void *out;              /* (M, N) accumulator codes, the same widths */
    double *values;         /* (M, N) the outputs' values (exact float64 widening of the codes), or NULL */
    int32_t narrow_products;/* fp16 / bf16 with k_step == 1: every product has <= p significand bits and
                             * 2^emin_acc / 2^min(acc quantum, product quantum) <= 2^24, so that one float32
                             * FMA rounded to nearest and then narrowed is the correct add (level 1; see there) */
    int32_t nthreads;       /* 1..64 */
} ns_fmachain_args;

/* The best level under the CPU-feature bits f (ns_cpu.h): 2 AVX512-FP16 (with F, BW, VL), 1 AVX-512 F, BW,
 * VL, 0 portable. */
int32_t ns_level_fmachain(uint32_t f);
/* The GEMM at `level` (-1: the best under ns_cpu_usable(); else it must be <= ns_level_fmachain(
 * ns_cpu_features())). Returns the level that ran (level 2 hands problems it does not cover to level 1),
 * or -1 for a bad argument, a level this CPU lacks, or no memory. */
int32_t ns_fmachain_gemm(const ns_fmachain_args *args, int32_t level);
/* CDEF END */

/* ---- internal: what each level implements (not part of the ABI) ---- */
#ifndef NS_FMC_NO_INTERNAL
#include <string.h>
/* Compilers with AVX512-FP16 intrinsics and _Float16 (GCC 12, clang 14): elsewhere level 2 is not built. */
#if defined(NS_X86) && ((defined(__clang__) && __clang_major__ >= 14) || \
                        (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 12))
#define NS_FMC_HAVE_FP16 1
#endif
/* Operand value i of a (or b): a table lookup of its code, or the float32 itself. */
static inline float ns_fmc_val(const void *x, int32_t bytes, const float *lut, int64_t i) {
    if (bytes == 1) return lut[((const uint8_t *)x)[i]];
    if (bytes == 2) return lut[((const uint16_t *)x)[i]];
    return ((const float *)x)[i];
}
/* dst[j] = value of operand element off + j, j < n (one loop per code width). */
static inline void ns_fmc_values(const void *x, int32_t bytes, const float *__restrict lut, int64_t off, int64_t n,
                                 float *__restrict dst) {
    if (bytes == 1) {
        const uint8_t *__restrict c = (const uint8_t *)x + off;
        for (int64_t j = 0; j < n; j++) dst[j] = lut[c[j]];
    } else if (bytes == 2) {
        const uint16_t *__restrict c = (const uint16_t *)x + off;
        for (int64_t j = 0; j < n; j++) dst[j] = lut[c[j]];
    } else memcpy(dst, (const float *)x + off, (size_t)n * sizeof(float));
}
/* dst[j] = fp16 code of operand element off + j's value, j < n (bytes 1 or 2). */
static inline void ns_fmc_codes16(const void *x, int32_t bytes, const uint16_t *__restrict lut16, int64_t off,
                                  int64_t n, uint16_t *__restrict dst) {
    if (bytes == 1) {
        const uint8_t *__restrict c = (const uint8_t *)x + off;
        for (int64_t j = 0; j < n; j++) dst[j] = lut16[c[j]];
    } else {
        const uint16_t *__restrict c = (const uint16_t *)x + off;
        for (int64_t j = 0; j < n; j++) dst[j] = lut16[c[j]];
    }
}
/* Accumulator code i of c (or out). */
static inline uint32_t ns_fmc_code(const void *x, int32_t acc, int64_t i) {
    return acc == NS_FMC_FP32 ? ((const uint32_t *)x)[i] : ((const uint16_t *)x)[i];
}
static inline void ns_fmc_put(void *x, int32_t acc, int64_t i, uint32_t code) {
    if (acc == NS_FMC_FP32) ((uint32_t *)x)[i] = code;
    else ((uint16_t *)x)[i] = (uint16_t)code;
}
typedef struct ns_fmc_block {
    const ns_fmachain_args *p;
    int64_t m0, m1;         /* rows */
    int64_t n0, n1;         /* columns (multiples of 128 but the last) */
    const void *bpack;      /* the level's packed B panels (levels 1 and 2) */
} ns_fmc_block;
/* The AVX512-FP16 register tile: NS_FMC_MR2 rows x NS_FMC_NV2 vectors of 32 columns (NS_FMC_NV2 divides 4:
 * the driver splits columns in multiples of 128, whole panels of every level). */
#define NS_FMC_MR2 8
#define NS_FMC_NV2 2
/* Each computes out[m0:m1, n0:n1] before the NaN re-coding; returns 0, or -1 on no memory. */
int32_t ns_fmc_block_portable(const ns_fmc_block *blk);
int32_t ns_fmc_block_avx512(const ns_fmc_block *blk);
int32_t ns_fmc_block_avx512fp16(const ns_fmc_block *blk);
/* Pack B panels panel0 .. panel1 (of 32 columns at level 1, 32 NS_FMC_NV2 at level 2) into bpack. */
void ns_fmc_pack_b_avx512(const ns_fmachain_args *p, void *bpack, int64_t panel0, int64_t panel1);
void ns_fmc_pack_b_avx512fp16(const ns_fmachain_args *p, void *bpack, int64_t panel0, int64_t panel1);
#endif

#ifdef __cplusplus
}
#endif
#endif
