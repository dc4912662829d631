/* numsim for SystemVerilog DPI-C: the example MAC units' step and dot functions with plain C types
 * (int32_t = SV int; pointers to int32_t = SV fixed-size `input int x[N]` arrays or `output int`).
 *
 * A thin, header-only layer over ns_units.h. Declarations everywhere; the definitions are emitted
 * in the one C (or C++) file that defines NS_DPI_IMPLEMENTATION before including this header, e.g.
 *
 *     #define NS_DPI_IMPLEMENTATION
 *     #include "ns_dpi.h"
 *
 * and is compiled together with every C file of csrc/ (-lm -lpthread).
 * Verilator compiles DPI sources as C++: the declarations are extern "C".
 *
 * Codes: INT4 operands are their two's complement values (-8..7) or 4-bit codes (only the low
 * 4 bits are read); INT32 accumulators are int32 values; FP16 accumulators are 16-bit codes in an int
 * (0..65535); in the 4-way step a and b are 16-bit buses, lane i in bits [4i +: 4] (the RTL layout).
 * Policies are ns_overflow values: 0 saturate, 1 wrap, 4 error. *status gets 0, or the ns_status
 * of an overflow under the 'error' policy (1 accumulator, 6 widening; the result is then 0) or
 * NS_ERR_UNIT_ARG (8) for an out-of-range argument. Everything equals numsim.units.get_unit(...)
 * bit for bit (tests/test_rtl_dpi.py checks it against numsim.rtl.Model). No CDEF block: Python
 * reaches the same kernels through numsim.mac.
 */
#ifndef NS_DPI_H
#define NS_DPI_H
#include <stdint.h>
#include "ns_units.h"
#include "ns_fpops.h"
#ifdef __cplusplus
extern "C" {
#endif

enum ns_dpi_max { NS_DPI_MAX_K = 1 << 20 };

/* int4_int32 (seed 001): acc + sat16(a * b << align_shift) into INT32 (widening and accumulator
 * under the given ns_overflow policies; the example RTL is widen 0 = saturate, acc 1 = wrap). */
int32_t ns_dpi_int4_int32_step(int32_t acc, int32_t a, int32_t b, int32_t align_shift, int32_t widen_overflow,
                               int32_t acc_overflow, int32_t *status);
/* c + sum over k < K of the widened products, sequentially (numsim unit.dot). */
int32_t ns_dpi_int4_int32_dot(const int32_t *a, const int32_t *b, const int32_t *align_shift, int32_t K, int32_t c,
                              int32_t widen_overflow, int32_t acc_overflow, int32_t *status);
/* int4_fp4r4_fp16 (seed 003): one 4-way step, acc + the exact sum of four INT4 x fp4r4 products
 * rounded once to FP16 (nearest even, overflow to inf). Returns the (even-datapath) FP16 code. */
int32_t ns_dpi_int4_fp4r4_fp16_step(int32_t acc, int32_t a_lanes, int32_t b_lanes, int32_t *status);
/* c + a[k] x b[k] over K elements (one INT4 and one fp4r4 code each) in 4-way steps; odd_phase 1 applies the
 * exponent trick (odd_underflow: 0 flush, 1 exact, 2 clamp) to the result, as numsim's odd phase. */
int32_t ns_dpi_int4_fp4r4_fp16_dot(const int32_t *a, const int32_t *b, int32_t K, int32_t c, int32_t odd_phase,
                                   int32_t odd_underflow, int32_t *status);
/* The odd-phase exponent trick on one FP16 code. */
int32_t ns_dpi_f16_odd_phase(int32_t code, int32_t odd_underflow);
/* The steps above with the update's IEEE flags in *flags (SoftFloat's bits: 1 inexact, 2 underflow,
 * 4 overflow, 8 infinite, 16 invalid; numsim.rtl's flags column). The integer step raises overflow for
 * a widening or accumulator wrap/saturation; the float step takes its tininess (0 after, 1 before
 * rounding) and NaN rule (0 numsim's default, 1 x86, 2 ARM, 3 RISC-V: ns_unit_nan). */
int32_t ns_dpi_int4_int32_step_flags(int32_t acc, int32_t a, int32_t b, int32_t align_shift, int32_t widen_overflow,
                                     int32_t acc_overflow, int32_t *flags, int32_t *status);
int32_t ns_dpi_int4_fp4r4_fp16_step_flags(int32_t acc, int32_t a_lanes, int32_t b_lanes, int32_t tininess_before,
                                          int32_t nan_rule, int32_t *flags, int32_t *status);

/* The unit descriptors behind these functions (what numsim.mac fills for the presets). */
void ns_dpi_fill_int4_int32(ns_unit *u, int32_t widen_overflow, int32_t acc_overflow);
void ns_dpi_fill_int4_fp4r4_fp16(ns_unit *u, int32_t odd_phase, int32_t odd_underflow);

#ifdef NS_DPI_IMPLEMENTATION
#include <string.h>

static const ns_format ns_dpi_int4 = {NS_KIND_INT, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const ns_format ns_dpi_int32 = {NS_KIND_INT, 32, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
/* fp4r4 on its even grid: [1,3,0], bias 4, radix 4, field 0 = zero, no inf/NaN */
static const ns_format ns_dpi_fp4r4 = {NS_KIND_FLOAT, 4, 1, 0, 3, 0, 4, 2, 1, NS_SPECIALS_NONE, 0, NS_R4_LOG,
                                       NS_R4_ZERO_EXP0};
static const ns_format ns_dpi_fp16 = {NS_KIND_FLOAT, 16, 1, 0, 5, 10, 15, 1, 1, NS_SPECIALS_IEEE, 0, 0, 0};

static int ns_dpi_int_policy(int32_t p) { return p == NS_OVF_SATURATE || p == NS_OVF_WRAP || p == NS_OVF_ERROR; }

void ns_dpi_fill_int4_int32(ns_unit *u, int32_t widen_overflow, int32_t acc_overflow) {
    memset(u, 0, sizeof *u);
    u->kind = NS_UNIT_INT;
    u->a_fmt = ns_dpi_int4;
    u->b_fmt = ns_dpi_int4;
    u->acc_fmt = ns_dpi_int32;
    u->widen_bits = 16;
    u->widen_overflow = widen_overflow;
    u->acc_overflow = acc_overflow;
    u->fused_n = 1;
    u->order = NS_ORDER_SEQUENTIAL;
    u->chunk = 4;
}

void ns_dpi_fill_int4_fp4r4_fp16(ns_unit *u, int32_t odd_phase, int32_t odd_underflow) {
    memset(u, 0, sizeof *u);
    u->kind = NS_UNIT_FLOAT;
    u->a_fmt = ns_dpi_int4;
    u->b_fmt = ns_dpi_fp4r4;
    u->acc_fmt = ns_dpi_fp16;
    u->acc_rounding = NS_ROUND_NEAREST_EVEN;
    u->acc_overflow = NS_OVF_TO_INF;
    u->fused_n = 4;
    u->order = NS_ORDER_SEQUENTIAL;
    u->chunk = 64;
    /* exact in double: quanta >= 2^-24 and |acc + 4 products| < 2^17 (see csrc/units.c) */
    u->sum_in_double = 1;
    u->exact_lsb = -24;
    u->odd_phase = odd_phase ? 1 : 0;
    u->odd_underflow = odd_underflow;
}

int32_t ns_dpi_int4_int32_step(int32_t acc, int32_t a, int32_t b, int32_t align_shift, int32_t widen_overflow,
                               int32_t acc_overflow, int32_t *status) {
    ns_unit u;
    uint32_t out = 0;
    int64_t events = 0;
    if (align_shift < 0 || align_shift > 31 || !ns_dpi_int_policy(widen_overflow) || !ns_dpi_int_policy(acc_overflow)) {
        *status = NS_ERR_UNIT_ARG;
        return 0;
    }
    ns_dpi_fill_int4_int32(&u, widen_overflow, acc_overflow);
    *status = ns_int_mac_step(&u, (uint32_t)acc, (uint32_t)a & 0xF, (uint32_t)b & 0xF, align_shift, &out, &events);
    return *status ? 0 : (int32_t)out;
}

int32_t ns_dpi_int4_int32_dot(const int32_t *a, const int32_t *b, const int32_t *align_shift, int32_t K, int32_t c,
                              int32_t widen_overflow, int32_t acc_overflow, int32_t *status) {
    int32_t acc = c;
    if (K < 0 || K > NS_DPI_MAX_K) { *status = NS_ERR_UNIT_ARG; return 0; }
    *status = 0;
    for (int32_t k = 0; k < K && !*status; k++)   /* sequential order: the dot is K steps */
        acc = ns_dpi_int4_int32_step(acc, a[k], b[k], align_shift ? align_shift[k] : 0, widen_overflow, acc_overflow,
                                     status);
    return *status ? 0 : acc;
}

int32_t ns_dpi_int4_fp4r4_fp16_step(int32_t acc, int32_t a_lanes, int32_t b_lanes, int32_t *status) {
    ns_unit u;
    uint32_t a[4], b[4], out = 0;
    if (acc < 0 || acc > 0xFFFF) { *status = NS_ERR_UNIT_ARG; return 0; }
    for (int i = 0; i < 4; i++) {
        a[i] = ((uint32_t)a_lanes >> (4 * i)) & 0xF;
        b[i] = ((uint32_t)b_lanes >> (4 * i)) & 0xF;
    }
    ns_dpi_fill_int4_fp4r4_fp16(&u, 0, 0);
    *status = ns_float_mac_step(&u, (uint32_t)acc, a, b, 4, &out);
    return *status ? 0 : (int32_t)out;
}

int32_t ns_dpi_int4_fp4r4_fp16_dot(const int32_t *a, const int32_t *b, int32_t K, int32_t c, int32_t odd_phase,
                                   int32_t odd_underflow, int32_t *status) {
    ns_unit u;
    uint32_t acc = (uint32_t)c, a4[4], b4[4];
    if (K < 0 || K > NS_DPI_MAX_K || c < 0 || c > 0xFFFF || odd_underflow < 0 || odd_underflow > 2) {
        *status = NS_ERR_UNIT_ARG;
        return 0;
    }
    ns_dpi_fill_int4_fp4r4_fp16(&u, 0, 0);
    /* the unit's sequential order: one rounded add per group of four (the last may be shorter) */
    for (int32_t k0 = 0; k0 < K; k0 += 4) {
        const int32_t n = K - k0 < 4 ? K - k0 : 4;
        for (int32_t i = 0; i < n; i++) {
            a4[i] = (uint32_t)a[k0 + i] & 0xF;
            b4[i] = (uint32_t)b[k0 + i] & 0xF;
        }
        if ((*status = ns_float_mac_step(&u, acc, a4, b4, n, &acc))) return 0;
    }
    *status = 0;
    return odd_phase ? (int32_t)ns_f16_odd_phase((uint16_t)acc, odd_underflow) : (int32_t)acc;
}

int32_t ns_dpi_f16_odd_phase(int32_t code, int32_t odd_underflow) {
    return (int32_t)ns_f16_odd_phase((uint16_t)code, odd_underflow);
}

int32_t ns_dpi_int4_int32_step_flags(int32_t acc, int32_t a, int32_t b, int32_t align_shift, int32_t widen_overflow,
                                     int32_t acc_overflow, int32_t *flags, int32_t *status) {
    ns_unit u;
    uint32_t out = 0;
    int64_t events = 0;
    *flags = 0;
    if (align_shift < 0 || align_shift > 31 || !ns_dpi_int_policy(widen_overflow) || !ns_dpi_int_policy(acc_overflow)) {
        *status = NS_ERR_UNIT_ARG;
        return 0;
    }
    ns_dpi_fill_int4_int32(&u, widen_overflow, acc_overflow);
    *status = ns_int_mac_step(&u, (uint32_t)acc, (uint32_t)a & 0xF, (uint32_t)b & 0xF, align_shift, &out, &events);
    if (events) *flags = NS_FP_FLAG_OVERFLOW;
    return *status ? 0 : (int32_t)out;
}

int32_t ns_dpi_int4_fp4r4_fp16_step_flags(int32_t acc, int32_t a_lanes, int32_t b_lanes, int32_t tininess_before,
                                          int32_t nan_rule, int32_t *flags, int32_t *status) {
    ns_unit u;
    uint32_t a[4], b[4], out = 0;
    uint8_t fl = 0;
    *flags = 0;
    if (acc < 0 || acc > 0xFFFF || tininess_before < 0 || tininess_before > 1 || nan_rule < NS_UNIT_NAN_DEFAULT ||
        nan_rule > NS_UNIT_NAN_RISCV) {
        *status = NS_ERR_UNIT_ARG;
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        a[i] = ((uint32_t)a_lanes >> (4 * i)) & 0xF;
        b[i] = ((uint32_t)b_lanes >> (4 * i)) & 0xF;
    }
    ns_dpi_fill_int4_fp4r4_fp16(&u, 0, 0);
    u.tininess_before = tininess_before;
    u.nan_rule = nan_rule;
    *status = ns_float_mac_step_flags(&u, (uint32_t)acc, a, b, 4, &out, &fl);
    *flags = fl;
    return *status ? 0 : (int32_t)out;
}
#endif /* NS_DPI_IMPLEMENTATION */

#ifdef __cplusplus
}
#endif
#endif
