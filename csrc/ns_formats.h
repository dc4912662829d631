/* numsim formats: encode (round + pack) and decode of every integer and float format.
 * Plain C types only, so the same header serves cffi, C and SystemVerilog DPI-C. */
#ifndef NS_FORMATS_H
#define NS_FORMATS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
enum ns_kind { NS_KIND_INT = 0, NS_KIND_FLOAT = 1 };
enum ns_specials { NS_SPECIALS_IEEE = 0, NS_SPECIALS_FN = 1, NS_SPECIALS_FNUZ = 2, NS_SPECIALS_NONE = 3 };
enum ns_rounding {
    NS_ROUND_NEAREST_EVEN = 0, NS_ROUND_NEAREST_AWAY = 1, NS_ROUND_TOWARD_ZERO = 2,
    NS_ROUND_TOWARD_NEG = 3, NS_ROUND_TOWARD_POS = 4, NS_ROUND_STOCHASTIC = 5
};
enum ns_overflow { NS_OVF_SATURATE = 0, NS_OVF_WRAP = 1, NS_OVF_TO_INF = 2, NS_OVF_TO_NAN = 3, NS_OVF_ERROR = 4 };
enum ns_nan_policy { NS_NAN_ERROR = 0, NS_NAN_ZERO = 1 };
enum ns_underflow { NS_UNF_ROUND = 0, NS_UNF_FLUSH = 1 };
enum ns_r4_threshold { NS_R4_LOG = 0, NS_R4_LINEAR = 1 };
enum ns_r4_zero { NS_R4_ZERO_EXP0 = 0, NS_R4_ZERO_NONE = 1 };
/* Every status any kernel returns (one enum for the whole C ABI). 1..5 come from encodes and the fast
 * GEMMs, 1 and 6..9 from the MAC-unit kernels (1: an accumulator add overflowed under 'error'). */
enum ns_status {
    NS_OK = 0, NS_ERR_OVERFLOW = 1, NS_ERR_NAN = 2, NS_ERR_INF = 3, NS_ERR_CODE = 4, NS_ERR_ARG = 5,
    NS_ERR_WIDEN_OVERFLOW = 6, NS_ERR_SHIFT_OVERFLOW = 7, NS_ERR_UNIT_ARG = 8, NS_ERR_INNER_OVERFLOW = 9
};

/* A format descriptor; numsim.formats fills it from the frozen Python descriptors. */
typedef struct ns_format {
    int32_t kind;          /* ns_kind */
    int32_t bits;          /* total code width, 1..32 */
    int32_t is_signed;     /* integers: two's complement; floats: has a sign bit (always 1) */
    int32_t symmetric;     /* integers: the most negative code is excluded, e.g. INT4 in [-7, 7] */
    int32_t exp_bits;
    int32_t man_bits;
    int32_t bias;
    int32_t radix_log2;    /* 1: radix 2, 2: radix 4 (then man_bits == 0) */
    int32_t subnormals;    /* radix 2: exponent field 0 holds subnormals (else it is zero only) */
    int32_t specials;      /* ns_specials */
    int32_t phase;         /* radix 4: every value scaled by 2^-phase (TPR odd phase = 1) */
    int32_t r4_threshold;  /* radix 4: nearest-rounding threshold inside a power-of-4 step */
    int32_t r4_zero;       /* radix 4: exponent field 0 is zero, or every field is a number */
} ns_format;

typedef struct ns_encode_opts {
    int32_t rounding;      /* ns_rounding */
    int32_t overflow;      /* ns_overflow */
    int32_t nan_policy;    /* ns_nan_policy, for formats without NaN */
    int32_t underflow;     /* ns_underflow */
    int32_t random_bits;   /* stochastic rounding: bits per decision, 1..32 */
    uint64_t seed;         /* stochastic rounding key */
    uint64_t index_offset; /* flat index of element 0, so chunked calls draw the same bits */
} ns_encode_opts;

/* Random bits of the counter-based generator, keyed by (seed, flat element index). */
uint32_t ns_random_bits(uint64_t seed, uint64_t index, int32_t nbits);

/* Round one float64 into fmt; *status gets an ns_status. The building block of every encode. */
uint32_t ns_round_pack(double x, const ns_format *fmt, const ns_encode_opts *opts, uint64_t index, int32_t *status);
double ns_unpack(uint32_t code, const ns_format *fmt);

/* Vector encode / decode. code_bytes is 1, 2 or 4 (the uint dtype holding the codes).
 * On error the return is an ns_status and *err_index the first offending element. */
int32_t ns_encode_f64(const double *x, size_t n, const ns_format *fmt, const ns_encode_opts *opts,
                      void *codes, int32_t code_bytes, int64_t *err_index);
int32_t ns_encode_f32(const float *x, size_t n, const ns_format *fmt, const ns_encode_opts *opts,
                      void *codes, int32_t code_bytes, int64_t *err_index);
int32_t ns_decode(const void *codes, int32_t code_bytes, size_t n, const ns_format *fmt, double *out,
                  int64_t *err_index);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
