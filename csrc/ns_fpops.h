/* numsim standalone floating-point operations: add, sub, mul, div, fused multiply-add and conversions
 * on the codes of any numsim float format, under every rounding mode, with the five IEEE 754
 * exception flags. The interface follows Berkeley SoftFloat 3 (the flag bits are softfloat_flag_*,
 * tininess and the NaN rule are SoftFloat's specializations), so TestFloat's vectors check it as they
 * check SoftFloat. Plain C types only: usable from cffi, C, C++ and SystemVerilog DPI-C. */
#ifndef NS_FPOPS_H
#define NS_FPOPS_H
#include <stddef.h>
#include <stdint.h>
#include "ns_formats.h"
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
/* Exception flags, one bit each, in SoftFloat's (and TestFloat's output) order. */
enum ns_fp_flag {
    NS_FP_FLAG_INEXACT = 1, NS_FP_FLAG_UNDERFLOW = 2, NS_FP_FLAG_OVERFLOW = 4,
    NS_FP_FLAG_INFINITE = 8,   /* divide by zero: an exact infinite result from finite operands */
    NS_FP_FLAG_INVALID = 16
};
/* Rounding modes: ns_rounding's five deterministic modes, plus round to odd (SoftFloat's round_odd). */
enum ns_fp_rounding { NS_FP_ROUND_ODD = 6 };
/* When a nonzero result below the smallest normal magnitude is "tiny" (IEEE 754-2008 7.5). */
enum ns_fp_tininess { NS_FP_TININESS_BEFORE_ROUNDING = 0, NS_FP_TININESS_AFTER_ROUNDING = 1 };
/* Which NaN an operation returns, after SoftFloat's specializations:
 * X86_SSE (8086-SSE): the first operand that is a signaling NaN, else the first NaN, quieted;
 *                     default NaN negative (0xFE00 in binary16).
 * ARM (ARM-VFPv2):    the first signaling NaN quieted, else the first quiet NaN; default NaN positive.
 * RISCV (RISCV):      always the canonical NaN, positive with only the quiet bit (0x7E00). */
enum ns_fp_nan_rule { NS_FP_NAN_X86_SSE = 0, NS_FP_NAN_ARM = 1, NS_FP_NAN_RISCV = 2 };
/* A MAC unit's NaN rule (ns_unit.nan_rule): 0 keeps the units' own rule (an accumulator's NaN
 * quieted, else the default NaN), else 1 + an ns_fp_nan_rule. */
enum ns_unit_nan { NS_UNIT_NAN_DEFAULT = 0, NS_UNIT_NAN_X86_SSE = 1, NS_UNIT_NAN_ARM = 2, NS_UNIT_NAN_RISCV = 3 };
enum ns_fp_op { NS_FP_OP_ADD = 0, NS_FP_OP_SUB = 1, NS_FP_OP_MUL = 2, NS_FP_OP_DIV = 3 };

/* The dynamic environment of one operation (SoftFloat's globals, passed explicitly). */
typedef struct ns_fp_env {
    int32_t rounding;   /* ns_rounding 0..4, or NS_FP_ROUND_ODD */
    int32_t overflow;   /* ns_overflow: TO_INF (IEEE), SATURATE or TO_NAN */
    int32_t tininess;   /* ns_fp_tininess */
    int32_t nan_rule;   /* ns_fp_nan_rule */
    int32_t exact;      /* float -> integer: raise inexact when rounding changed the value (SoftFloat's exact) */
} ns_fp_env;

/* Scalar operations. Operands a, b are codes of fa, c and the result codes of fz (mixed-precision
 * FMA: a * b in one format accumulated into another). *flags gets the operation's flags ORed in. */
uint32_t ns_fp_add(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags);
uint32_t ns_fp_sub(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags);
uint32_t ns_fp_mul(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags);
uint32_t ns_fp_div(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint8_t *flags);
/* a * b + c with one rounding (IEEE fusedMultiplyAdd). */
uint32_t ns_fp_fma(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint32_t b,
                   uint32_t c, uint8_t *flags);
/* The code of fa converted to fz (IEEE convertFormat); either may be an integer format (numsim's
 * IntFormat): float -> integer rounds by env->rounding and, out of range or for a NaN, raises invalid
 * and returns the NaN rule's integer (x86: the most negative code / all ones; ARM, RISC-V: the bound
 * on the overflowing side, NaN -> 0 on ARM and the largest on RISC-V), as SoftFloat's f16_to_i32. */
uint32_t ns_fp_convert(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, uint32_t a, uint8_t *flags);

/* Vector forms: flags[i] is element i's flags. They check the formats, the environment and every
 * operand code first: NS_ERR_ARG for a bad format or environment, NS_ERR_CODE (with *err_index the
 * element) for a code out of range; nothing is written then. */
int32_t ns_fp_binary_vec(int32_t op, const ns_format *fa, const ns_format *fz, const ns_fp_env *env,
                         const uint32_t *a, const uint32_t *b, size_t n, uint32_t *z, uint8_t *flags,
                         int64_t *err_index);
int32_t ns_fp_fma_vec(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, const uint32_t *a,
                      const uint32_t *b, const uint32_t *c, size_t n, uint32_t *z, uint8_t *flags,
                      int64_t *err_index);
int32_t ns_fp_convert_vec(const ns_format *fa, const ns_format *fz, const ns_fp_env *env, const uint32_t *a,
                          size_t n, uint32_t *z, uint8_t *flags, int64_t *err_index);
/* CDEF END */

/* The rules the MAC units share with the operations above (csrc/units.c): one implementation each.
 * ns_fp_round_double: x (finite, nonzero) rounded into z with its flags; x is the exact value or the
 * exact value rounded to odd at 53 bits (>= p + 2 bits, so it rounds, detects tininess and raises
 * inexact as the exact value would, for z of up to 51 significand bits).
 * ns_fp_fused_specials: the special operands of one register update, addends acc[0..n_acc) plus the
 * products a[i * as] * b[i * bs] (fa, fb: float or integer formats; acc: codes of z): 1 when a NaN or
 * inf operand, or an invalid product (0 x inf), decides the result (*out, flags ORed), else 0 with
 * nothing touched. The NaN follows `unit_nan` (ns_unit_nan): SoftFloat's rules fold
 * softfloat_propagateNaN over the products' NaNs in k order, then the addends (fma(a, b, c) is
 * propagate(propagate(a, b), c)); the unit default is the first NaN addend quieted, else the default
 * NaN (negative, quiet). Invalid: a signaling NaN operand, 0 x inf, or +inf and -inf with no NaN. */
uint32_t ns_fp_round_double(const ns_format *z, const ns_fp_env *env, double x, uint8_t *flags);
int ns_fp_fused_specials(const ns_format *fa, const ns_format *fb, const ns_format *z, const ns_fp_env *env,
                         int32_t unit_nan, const uint32_t *acc, int n_acc, const uint32_t *a, int64_t as,
                         const uint32_t *b, int64_t bs, int64_t n, uint32_t *out, uint8_t *flags);

#ifdef __cplusplus
}
#endif
#endif
