/* Internal to the float32 encode kernels: what csrc/encode_f32.c (portable) shares with
 * csrc/encode_f32_avx2.c and csrc/encode_f32_f16c.c. Not part of the C ABI. */
#ifndef NS_ENCODE_F32_ISA_H
#define NS_ENCODE_F32_ISA_H
#include <stddef.h>
#include <stdint.h>
#include "ns_cpu.h"
#include "ns_formats.h"

/* Constants of one call, resolved from the format and the options. */
typedef struct f32k {
    int kind;              /* 0 radix-2 float, 1 radix-4 float, 2 integer */
    int M, emin, bias, phase, r4_linear, kmin, kmax, fmin;
    uint32_t sign_bit, max_mag, inf_mag;
    uint32_t ovf_code[2], inf_code[2], nan_fixed[2];
    int nan_kind;          /* 0 no NaN (flag), 1 IEEE payload NaN, 2 fixed code, 3 map to zero */
    int ovf_flag, inf_flag, fnuz;
    int nearest, tie_away, up_dir[2], stochastic, R;
    uint64_t seed_mix, index_offset;
    int64_t int_lim[2];    /* integers: largest magnitude per sign */
    uint32_t int_mask;
    int int_wrap;
} f32k;

/* The float32 encode kernels' entry (encode_f32.c), called by ns_encode_f32 (formats.c): 1 when it encoded
 * all of x, 0 when the format, the policy or an element needs the generic path. */
int ns_encode_f32_kernel(const float *x, size_t n, const ns_format *f, const ns_encode_opts *o,
                         void *codes, int32_t code_bytes);

/* AVX2, deterministic modes: radix-2 floats, radix-4 floats, integers of <= 16 bits. Each encodes a
 * prefix of x eight at a time and returns its length; *flag_out = 1 when an element needs the generic
 * path (the caller then runs it over the whole array). */
size_t ns_encode_f32_r2_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out);
size_t ns_encode_f32_r4_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out);
size_t ns_encode_f32_int_avx2(const f32k *k, const float *x, size_t n, void *codes, int code_bytes, uint32_t *flag_out);
/* F16C: every x into binary16, nearest even, overflow to inf (the caller checks the format and policy). */
void ns_encode_f32_fp16_f16c(const float *x, size_t n, uint16_t *codes);
#endif
