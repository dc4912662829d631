/* float64 -> integer-format codes without the generic path's per-element dispatch (csrc/encode_f64.c):
 * the bits of round_pack (formats.c) for every element, tested against it (tests/test_encode_f64.py). */
#ifndef NS_FORMATS_F64_H
#define NS_FORMATS_F64_H
#include <stddef.h>
#include <stdint.h>
#include "ns_formats.h"
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* ns_encode_f64 through the generic per-element path only (tests compare the kernels with it). */
int32_t ns_encode_f64_generic(const double *x, size_t n, const ns_format *f, const ns_encode_opts *o,
                              void *codes, int32_t code_bytes, int64_t *err_index);
/* CDEF END */

/* 1 when the whole array was encoded by the integer-format kernel, 0 when it declines (not an integer
 * format, or some element is NaN / inf, or overflows under the wrap / error policies): the caller then
 * runs the generic path over the whole array, which also reports the first offending element. */
int ns_encode_f64_int_kernel(const double *x, size_t n, const ns_format *f, const ns_encode_opts *o, void *codes,
                             int32_t code_bytes);

#ifdef __cplusplus
}
#endif
#endif
