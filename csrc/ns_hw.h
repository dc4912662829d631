/* numsim hardware datapaths: the fused n-term dot-product adder of tensor cores (H100 HMMA,
 * sm_90 e4m3 mma, cuBLAS FP8 wgmma with promotion) and integer MMA (IMMA), as GEMM drivers.
 * The unit description is plain data, so the same header serves cffi, C and DPI-C. */
#ifndef NS_HW_H
#define NS_HW_H
#include <stddef.h>
#include <stdint.h>
#include "ns_formats.h"
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
enum ns_operand_class { NS_CLS_ZERO = 0, NS_CLS_FINITE = 1, NS_CLS_INF = 2, NS_CLS_NAN = 3 };
enum ns_product_exponent { NS_PEXP_INPUT_SUM = 0, NS_PEXP_NORMALIZED = 1 };

typedef struct ns_fused_unit {
    int32_t k_step;            /* products per fused sum */
    int32_t kept_bits;         /* terms truncated toward zero to a multiple of 2^(emax - kept_bits) */
    int32_t product_exponent;  /* ns_product_exponent: alignment exponent of a product */
    int32_t term_truncation;   /* 1: truncate terms toward zero, 0: exact terms (needs small ranges) */
    int32_t a_man_bits;        /* operand mantissas are normalized: value = m * 2^(e - man_bits) */
    int32_t b_man_bits;
    int32_t acc_man_bits;      /* fraction bits of the inner accumulator (23 = fp32, 13 = 1-8-13) */
    int32_t sum_rounding;      /* ns_rounding of the fused sum into the inner accumulator */
    int32_t overflow_to_inf;   /* 1: past the range is +-inf, 0: saturate to max finite */
    int32_t promotion_interval;/* in k (a multiple of k_step); 0: no promotion */
    int32_t c_epilogue;        /* 0: c starts the outermost accumulator; 1: RNE-added after the scale */
    int32_t apply_scale;       /* 1: multiply the output by `scale` (fp32, RNE) */
    float scale;               /* fp32(scale_a * scale_b) */
} ns_fused_unit;

/* Operand codes -> normalized sign/magnitude mantissa, exponent floor(log2|x|) and class. */
int32_t ns_hw_decode_operands(const void *codes, int32_t code_bytes, size_t n, const ns_format *fmt,
                              int32_t man_bits, int32_t *mag, int32_t *neg, int32_t *exp, uint8_t *cls);

/* The same from per-code tables (the decode of every code, by ns_hw_decode_operands): a gather. */
int32_t ns_hw_gather_operands(const void *codes, int32_t code_bytes, size_t n, size_t table_size,
                              const int32_t *tmag, const int32_t *tneg, const int32_t *texp, const uint8_t *tcls,
                              int32_t *mag, int32_t *neg, int32_t *exp, uint8_t *cls);

/* D (M,N) fp32 codes = the unit's reduction of rows of A (M,K) with rows of Bt (N,K) (decoded by
 * ns_hw_decode_operands, K already permuted and zero-padded to whole blocks) and c (M,N fp32 codes,
 * or NULL). Threaded over output rows. Returns NS_OK or NS_ERR_ARG. */
int32_t ns_fused_gemm(const ns_fused_unit *u,
                      const int32_t *a_mag, const int32_t *a_neg, const int32_t *a_exp, const uint8_t *a_cls,
                      const int32_t *b_mag, const int32_t *b_neg, const int32_t *b_exp, const uint8_t *b_cls,
                      const uint32_t *c, uint32_t *d, int64_t M, int64_t N, int64_t K, int32_t nthreads);

/* The same, with the kernel chosen: simd = -1 the fastest the CPU has, 0 the scalar kernel, 2 the
 * AVX-512F kernel (NS_ERR_ARG when the CPU lacks it). Every choice gives the same bits; the SIMD
 * kernel takes the units and outputs its proof covers (csrc/hw.c) and leaves the rest to scalar.
 * events (NULL or one int64): the overflow events of every output (docs/units.md), the same on every
 * kernel. */
int32_t ns_fused_gemm_simd(const ns_fused_unit *u,
                           const int32_t *a_mag, const int32_t *a_neg, const int32_t *a_exp, const uint8_t *a_cls,
                           const int32_t *b_mag, const int32_t *b_neg, const int32_t *b_exp, const uint8_t *b_cls,
                           const uint32_t *c, uint32_t *d, int64_t M, int64_t N, int64_t K, int32_t nthreads,
                           int32_t simd, int64_t *events);

/* The best SIMD level of this CPU for ns_fused_gemm_simd: 2 (AVX-512F) or 0 (scalar only). */
int32_t ns_hw_simd_level(void);

/* The kernel ns_fused_gemm_simd (simd = -1 or 2) runs for a unit, with or without c, whose nonzero
 * finite operands have exponents in [exp_lo, exp_hi] (exp_lo > exp_hi: none): 0 the scalar kernel,
 * 1 AVX-512 on double products, 2 AVX-512 on fp32 products (see csrc/hw.c for the proofs). */
int32_t ns_fused_simd_path(const ns_fused_unit *u, int32_t has_c, int32_t exp_lo, int32_t exp_hi);

/* One fused step, for tests and step models: acc (fp32 code) + sum of k products -> fp32 code. */
uint32_t ns_fused_step(const ns_fused_unit *u, const int32_t *a_mag, const int32_t *a_neg, const int32_t *a_exp,
                       const uint8_t *a_cls, const int32_t *b_mag, const int32_t *b_neg, const int32_t *b_exp,
                       const uint8_t *b_cls, int32_t k, uint32_t acc);

/* Integer MMA: D (M,N) int32 = C + A (M,K) x Bt (N,K)^T, exact per k_step instruction, then wrap
 * modulo 2^32 (saturate = 0) or saturate to the INT32 range (saturate = 1) once per instruction. */
int32_t ns_imma_gemm(const int32_t *a, const int32_t *bt, const int32_t *c, int32_t *d, int64_t M, int64_t N,
                     int64_t K, int32_t k_step, int32_t saturate, int32_t nthreads);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
