/* Stands in for a SystemVerilog simulator: calls the DPI-C functions exactly as the imports in
 * tb_dpi.sv declare them, on requests read from stdin, and prints the results (tests/test_rtl_dpi.py
 * compares them with numsim). Requests, one a line:
 *   i ACC A B SHIFT WIDEN_POL ACC_POL             -> ns_dpi_int4_int32_step
 *   f ACC A_LANES B_LANES                         -> ns_dpi_int4_fp4r4_fp16_step
 *   I K C WIDEN_POL ACC_POL a[K] b[K] shift[K]    -> ns_dpi_int4_int32_dot
 *   F K C ODD ODD_UNDERFLOW a[K] b[K]             -> ns_dpi_int4_fp4r4_fp16_dot
 *   o CODE ODD_UNDERFLOW                          -> ns_dpi_f16_odd_phase
 *   j ACC A B SHIFT WIDEN_POL ACC_POL             -> ns_dpi_int4_int32_step_flags ("RESULT STATUS FLAGS")
 *   g ACC A_LANES B_LANES TININESS NAN_RULE       -> ns_dpi_int4_fp4r4_fp16_step_flags ("RESULT STATUS FLAGS")
 *   u                                             -> the two unit descriptors, field by field
 * Each answer is "RESULT STATUS" (u: one line of integers per unit). */
#include <stdio.h>
#include <stdlib.h>
#include "ns_dpi.h"

static void print_format(const ns_format *f) {
    printf(" %d %d %d %d %d %d %d %d %d %d %d %d %d", f->kind, f->bits, f->is_signed, f->symmetric, f->exp_bits,
           f->man_bits, f->bias, f->radix_log2, f->subnormals, f->specials, f->phase, f->r4_threshold, f->r4_zero);
}

static void print_unit(const ns_unit *u) {
    printf("%d", u->kind);
    print_format(&u->a_fmt);
    print_format(&u->b_fmt);
    print_format(&u->acc_fmt);
    printf(" %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d\n", u->widen_bits, u->widen_overflow,
           u->acc_overflow, u->acc_rounding, u->fused_n, u->order, u->chunk, u->sample_group, u->shift_dir,
           u->shift_rounding, u->shift_overflow, u->max_shift, u->sum_in_double, u->exact_lsb, u->odd_phase,
           u->odd_underflow, 0);
}

static int32_t *read_ints(int n) {
    int32_t *v = (int32_t *)calloc((size_t)(n > 0 ? n : 1), sizeof *v);
    for (int i = 0; i < n; i++)
        if (scanf("%d", &v[i]) != 1) exit(2);
    return v;
}

int main(void) {
    char op;
    while (scanf(" %c", &op) == 1) {
        int32_t st = -1, r = 0;
        if (op == 'i') {
            int32_t acc, a, b, s, wp, ap;
            if (scanf("%d %d %d %d %d %d", &acc, &a, &b, &s, &wp, &ap) != 6) return 2;
            r = ns_dpi_int4_int32_step(acc, a, b, s, wp, ap, &st);
        } else if (op == 'f') {
            int32_t acc, a, b;
            if (scanf("%d %d %d", &acc, &a, &b) != 3) return 2;
            r = ns_dpi_int4_fp4r4_fp16_step(acc, a, b, &st);
        } else if (op == 'I') {
            int32_t K, c, wp, ap;
            if (scanf("%d %d %d %d", &K, &c, &wp, &ap) != 4 || K < 0 || K > NS_DPI_MAX_K) return 2;
            int32_t *a = read_ints(K), *b = read_ints(K), *s = read_ints(K);
            r = ns_dpi_int4_int32_dot(a, b, s, K, c, wp, ap, &st);
            free(a); free(b); free(s);
        } else if (op == 'F') {
            int32_t K, c, odd, und;
            if (scanf("%d %d %d %d", &K, &c, &odd, &und) != 4 || K < 0 || K > NS_DPI_MAX_K) return 2;
            int32_t *a = read_ints(K), *b = read_ints(K);
            r = ns_dpi_int4_fp4r4_fp16_dot(a, b, K, c, odd, und, &st);
            free(a); free(b);
        } else if (op == 'o') {
            int32_t code, und;
            if (scanf("%d %d", &code, &und) != 2) return 2;
            r = ns_dpi_f16_odd_phase(code, und);
            st = 0;
        } else if (op == 'j' || op == 'g') {
            int32_t x[6], fl = 0;
            if (op == 'j') {
                if (scanf("%d %d %d %d %d %d", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5]) != 6) return 2;
                r = ns_dpi_int4_int32_step_flags(x[0], x[1], x[2], x[3], x[4], x[5], &fl, &st);
            } else {
                if (scanf("%d %d %d %d %d", &x[0], &x[1], &x[2], &x[3], &x[4]) != 5) return 2;
                r = ns_dpi_int4_fp4r4_fp16_step_flags(x[0], x[1], x[2], x[3], x[4], &fl, &st);
            }
            printf("%d %d %d\n", r, st, fl);
            continue;
        } else if (op == 'u') {
            ns_unit u;
            ns_dpi_fill_int4_int32(&u, NS_OVF_SATURATE, NS_OVF_WRAP);
            print_unit(&u);
            ns_dpi_fill_int4_fp4r4_fp16(&u, 1, NS_ODD_FLUSH);
            print_unit(&u);
            continue;
        } else {
            return 2;
        }
        printf("%d %d\n", r, st);
    }
    return 0;
}
