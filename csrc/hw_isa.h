/* Internal to the fused-adder GEMM: what csrc/hw.c (portable) shares with csrc/hw_avx512.c. Not part
 * of the C ABI. */
#ifndef NS_HW_ISA_H
#define NS_HW_ISA_H
#include <stdint.h>
#include <string.h>
#include "ns_cpu.h"
#include "ns_formats.h"
#include "ns_hw.h"

#define NS_F32_NAN UINT32_C(0x7fffffff)   /* NVIDIA's canonical NaN */

typedef struct {
    const ns_fused_unit *u;
    const int32_t *am, *an, *ae, *bm, *bn, *be;
    const uint8_t *acl, *bcl, *a_special, *b_special;
    const uint32_t *c;
    uint32_t *d;
    int64_t M, N, K, row0, row1;
    /* integer MMA */
    const int32_t *ia, *ib, *ic;
    int32_t *id;
    int32_t k_step, saturate;
    /* SIMD fused adder: B^T as 16-column panels (see build_panels) */
    const struct hw_panels *panels;
    int64_t events;      /* overflow events of this job's outputs (fused adder; docs/units.md) */
} hw_job;

typedef struct hw_panels {
    const double *bv;    /* [group][k][16] B values (double products), or NULL */
    const float *bvf;    /* [group][k][16] B values (fp32 products, hw_f32_products_ok), or NULL */
    const int16_t *be;   /* [group][k][16] B exponents (HW_SIMD_ZERO_EXP16 for zero / padding) */
    int64_t groups;
} hw_panels;

#define HW_SIMD_EMIN (-300)
#define HW_SIMD_COLS 16
#define HW_SIMD_ZERO_EXP16 (-16000)   /* zero / non-finite operands in the int16 exponent panels */
#ifndef HW_SIMD_ROWS
#define HW_SIMD_ROWS 4   /* rows of a tile (independent step chains in flight) */
#endif

/* Decoded operand -> exact double (+-mag * 2^(exp - man_bits)); 0.0 for zero / inf / NaN. */
static inline double operand_double(int32_t mag, int32_t neg, int32_t exp, uint8_t cls, int32_t man_bits) {
    if (cls != NS_CLS_FINITE || mag == 0) return 0.0;
    uint64_t bits = (uint64_t)(int64_t)(exp - man_bits + 1023) << 52;   /* exp - man_bits in [-163, 130] */
    double scale;
    memcpy(&scale, &bits, 8);
    double v = (double)mag * scale;
    return neg ? -v : v;
}

/* The inner accumulator's format and the encode options of its sums (hw.c). */
ns_format ns_hw_inner_format(int32_t acc_man_bits);
ns_encode_opts ns_hw_sum_opts(const ns_fused_unit *u);
/* One output (i, n) by the scalar datapath: the SIMD kernel's fallback for the lanes it flags. */
uint32_t ns_hw_fused_output(hw_job *j, const ns_format *inner, const ns_encode_opts *opts, int64_t i, int64_t n);
/* A thread's rows (an hw_job *) by the portable kernel, and by the AVX-512 kernel (j->panels set). */
void *ns_hw_fused_rows(void *arg);
void *ns_hw_fused_rows_avx512(void *arg);
#endif
