/* numsim MAC units: the seeds' integer and FP4 datapaths, one MAC at a time and over whole vectors.
 * Plain C types only, so the same header serves cffi, C and SystemVerilog DPI-C. */
#ifndef NS_UNITS_H
#define NS_UNITS_H
#include <stddef.h>
#include <stdint.h>
#include "ns_formats.h"
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
enum ns_unit_kind { NS_UNIT_INT = 0, NS_UNIT_SAMPLE_SHIFT = 1, NS_UNIT_FLOAT = 2 };
enum ns_order { NS_ORDER_SEQUENTIAL = 0, NS_ORDER_CHUNKED = 1, NS_ORDER_PAIRWISE = 2 };
enum ns_sample_group { NS_GROUP_PER_SAMPLE = 0, NS_GROUP_PER_SHIFT = 1 };
enum ns_shift_dir { NS_SHIFT_LEFT = 0, NS_SHIFT_RIGHT = 1 };
enum ns_odd_underflow { NS_ODD_FLUSH = 0, NS_ODD_EXACT = 1, NS_ODD_CLAMP = 2 };

/* One MAC unit; numsim.mac fills it from the frozen Python descriptors. */
typedef struct ns_unit {
    int32_t kind;             /* ns_unit_kind */
    ns_format a_fmt, b_fmt;   /* operand formats (the float datapath reads b on its even grid) */
    ns_format acc_fmt;        /* accumulator storage: an integer of acc_fmt.bits or an IEEE float */
    int32_t widen_bits;       /* integer units: width of the widened product */
    int32_t widen_overflow;   /* ns_overflow: wrap / saturate / error at the widening */
    int32_t acc_overflow;     /* ns_overflow at every accumulator add */
    int32_t acc_rounding;     /* ns_rounding of float accumulator adds (deterministic modes) */
    int32_t fused_n;          /* float units: products summed exactly before each accumulator add */
    int32_t order;            /* ns_order */
    int32_t chunk;            /* chunked order: terms per chunk */
    int32_t sample_group;     /* ns_sample_group */
    int32_t shift_dir;        /* ns_shift_dir of the per-sample shift */
    int32_t shift_rounding;   /* ns_rounding of a right per-sample shift */
    int32_t shift_overflow;   /* ns_overflow of a left per-sample shift */
    int32_t max_shift;        /* left shifts go by (max_shift - s) so that every shift is >= 0 */
    int32_t sum_in_double;    /* 1: the exact sum provably fits a double; 0: TwoSum / 384-bit adder; 2: 384-bit adder only */
    int32_t exact_lsb;        /* 2-exponent of the finest quantum of any addend (exact integer sum) */
    int32_t odd_phase;        /* 1: apply the FP16 exponent trick to the final accumulator */
    int32_t odd_underflow;    /* ns_odd_underflow */
    int32_t inner_bits;       /* float units: 0 = exact n-way sum, else a fixed-point inner adder this wide */
    int32_t inner_overflow;   /* ns_overflow of the inner adder */
    int32_t product_lsb;      /* 2-exponent of the inner adder's LSB (the finest product quantum) */
    int32_t tininess_before;  /* float units' underflow flag: 0 tininess after rounding, 1 before */
    int32_t nan_rule;         /* float units: ns_unit_nan (0: the units' own rule, today's bits) */
} ns_unit;

/* Standalone FP16 adder: a + b rounded once (ns_rounding; deterministic modes), overflow to inf. */
uint16_t ns_f16_add(uint16_t a, uint16_t b, int32_t rounding);
void ns_f16_add_vec(const uint16_t *a, const uint16_t *b, size_t n, int32_t rounding, uint16_t *out);
/* The odd-phase exponent trick: the FP16 exponent field decremented by one (ns_odd_underflow at 0, 1). */
uint16_t ns_f16_odd_phase(uint16_t x, int32_t odd_underflow);
void ns_f16_odd_phase_vec(const uint16_t *x, size_t n, int32_t odd_underflow, uint16_t *out);

/* One MAC of an integer unit: acc + widen(a * b) << align_shift. *events counts wrap/saturate. */
int32_t ns_int_mac_step(const ns_unit *u, uint32_t acc, uint32_t a, uint32_t b, int32_t align_shift,
                        uint32_t *acc_out, int64_t *events);
/* One sample of the per-sample-shift unit. per-sample grouping: acc + shift(widen(a * b), s);
 * per-shift-value grouping: acc + widen(a * b) (acc is the group accumulator of value s). */
int32_t ns_sample_shift_step(const ns_unit *u, uint32_t acc, uint32_t a, uint32_t b, int32_t sample_shift,
                             uint32_t *acc_out, int64_t *events);
/* Per-shift-value grouping, final summation: total + shift(group_acc, s). */
int32_t ns_sample_shift_finish(const ns_unit *u, uint32_t total, uint32_t group_acc, int32_t sample_shift,
                               uint32_t *acc_out, int64_t *events);
/* One fused step of a float unit: acc + sum(a[i] * b[i], i < n) with one rounding (n <= fused_n). */
int32_t ns_float_mac_step(const ns_unit *u, uint32_t acc, const uint32_t *a, const uint32_t *b, int32_t n,
                          uint32_t *acc_out);

/* The same step with its IEEE flags (ns_fp_flag bits; ns_fpops.h) in *flags. */
int32_t ns_float_mac_step_flags(const ns_unit *u, uint32_t acc, const uint32_t *a, const uint32_t *b, int32_t n,
                                uint32_t *acc_out, uint8_t *flags);

/* Number of trace entries a dot of length K writes. */
int64_t ns_unit_trace_len(const ns_unit *u, int64_t K);
/* One output: a[k * a_stride], b[k * b_stride], k < K; shift (K,) or NULL; c the initial accumulator.
 * trace (capacity trace_cap, may be NULL) receives the accumulator code after every adder.
 * Returns an ns_status; on error *err_step is the trace position and *err_k the reduction index. */
int32_t ns_unit_dot(const ns_unit *u, const uint32_t *a, int64_t a_stride, const uint32_t *b, int64_t b_stride,
                    int64_t K, const int32_t *shift, uint32_t c, uint32_t *acc_out, uint32_t *trace,
                    int64_t trace_cap, int64_t *events, int64_t *err_step, int64_t *err_k);
/* ns_unit_dot with flags: trace_flags (capacity trace_cap, may be NULL) gets every register update's
 * IEEE flags (ns_fp_flag bits; an integer register's overflow event is its overflow flag);
 * flag_counts (5 int64, may be NULL) how many updates raised each flag, indexed by bit position
 * (inexact, underflow, overflow, infinite, invalid). The odd-phase exponent trick is not an update. */
int32_t ns_unit_dot_flags(const ns_unit *u, const uint32_t *a, int64_t a_stride, const uint32_t *b, int64_t b_stride,
                          int64_t K, const int32_t *shift, uint32_t c, uint32_t *acc_out, uint32_t *trace,
                          uint8_t *trace_flags, int64_t trace_cap, int64_t *events, int64_t *flag_counts,
                          int64_t *err_step, int64_t *err_k);
/* Every output of a (M, K) x (K, N) product; bt is b transposed, (N, K) row-major. c (M, N) or NULL.
 * Threads split the output rows; each output is computed exactly as ns_unit_dot computes it.
 * On error *err_index is the first (row-major) failing output. */
int32_t ns_unit_gemm(const ns_unit *u, const uint32_t *a, const uint32_t *bt, int64_t M, int64_t K, int64_t N,
                     const int32_t *shift, const uint32_t *c, uint32_t *acc_out, int32_t nthreads,
                     int64_t *events, int64_t *err_index, int64_t *err_step, int64_t *err_k);

/* ns_unit_gemm with flag_counts (5 int64, may be NULL): per flag, the register updates that raised it,
 * over every output (as ns_unit_dot_flags counts them). */
int32_t ns_unit_gemm_flags(const ns_unit *u, const uint32_t *a, const uint32_t *bt, int64_t M, int64_t K, int64_t N,
                           const int32_t *shift, const uint32_t *c, uint32_t *acc_out, int32_t nthreads,
                           int64_t *events, int64_t *flag_counts, int64_t *err_index, int64_t *err_step,
                           int64_t *err_k);

/* gemmlowp / TFLite integer requantization (bit-compatible with their reference kernels). */
int32_t ns_sat_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t ns_rounding_divide_by_pot(int32_t x, int32_t exponent);
/* INT32 -> INT8: multiply by the Q31 multiplier with TFLite's shift (> 0 left, < 0 right),
 * add the zero point, clamp to [out_min, out_max]. Returns the output value. */
int32_t ns_requant_int8(int32_t acc, int32_t multiplier, int32_t shift, int32_t zero_point, int32_t out_min,
                        int32_t out_max);
void ns_requant_int8_vec(const uint32_t *acc, size_t n, int32_t multiplier, int32_t shift, int32_t zero_point,
                         int32_t out_min, int32_t out_max, uint8_t *out);
/* CDEF END */

#ifdef __cplusplus
}
#endif
#endif
