/* float64 -> integer-format codes (ns_formats_f64.h): what round_pack_int (formats.c) computes, element
 * by element, in loops specialised per rounding mode so that the compiler sees no per-element dispatch.
 *
 * |x| = sig * 2^e2 with sig < 2^53 (e2 = biased - 1075, or -1074 for subnormals). An integer format
 * holds at most 32 bits, so e2 >= 0 (|x| >= 2^52) always overflows; otherwise the magnitude is
 * sig >> shift (shift = -e2 >= 1) rounded by the remainder, exactly ns_round_shift_right's rule (the
 * generic path's), written here with the remainder compared against half the step. Anything the
 * generic path would report (NaN, infinity, overflow under 'error') or wrap makes the kernel decline. */
#include "numsim.h"
#include "ns_internal.h"
#include "ns_formats_f64.h"

typedef struct i64k {
    uint64_t mask, max_pos, max_neg;
    uint64_t saturate;      /* 1: the overflow policy clamps to the limit (all but wrap / error) */
} i64k;

#if defined(NS_X86) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NS_CLONES
#endif

#define EXP_ALL (UINT64_C(0x7FF) << 52)
#define M52 ((UINT64_C(1) << 52) - 1)

/* One loop per code width and rounding rule, branch-free: an element the generic path must see sets
 * `bad` and the whole array goes there. */
#define INT_LOOP(NAME, CODE_T, ROUND)                                                                \
    NS_CLONES static int NAME(const i64k *k, const double *x, size_t n, const ns_encode_opts *o,     \
                              void *codes) {                                                         \
        CODE_T *cs = (CODE_T *)codes;                                                                \
        const int R = o->random_bits;                                                                \
        const uint64_t key = ns_seed_key(o->seed);                                                   \
        (void)R; (void)key;                                                                          \
        uint64_t bad = 0;                                                                            \
        for (size_t i = 0; i < n; i++) {                                                             \
            const uint64_t u = ns_f64_bits(x[i]);                                                    \
            const uint64_t neg = u >> 63;                                                            \
            const uint64_t a = u & ~(UINT64_C(1) << 63);                                             \
            const uint64_t special = a >= EXP_ALL;                                                   \
            const int biased = (int)(a >> 52);                                                       \
            const uint64_t sig = (a & M52) | ((uint64_t)(biased != 0) << 52);                        \
            const int e2 = (biased ? biased : 1) - 1075;                                             \
            const uint64_t over = e2 >= 0;                                                           \
            const int shift = over ? 1 : -e2;                                                        \
            uint64_t m;                                                                              \
            ROUND;                                                                                   \
            const uint64_t limit = neg ? k->max_neg : k->max_pos;                                    \
            const uint64_t ovf = over | (m > limit);                                                 \
            bad |= special | (ovf & (k->saturate ^ 1));                                                   \
            m = ovf ? limit : m;                                                                     \
            cs[i] = (CODE_T)((neg ? (UINT64_C(0) - m) : m) & k->mask);                               \
        }                                                                                            \
        return bad == 0;                                                                             \
    }

/* nearest-even: shifts past 63 leave sig < 2^53 below half of the step: the magnitude rounds to 0 */
#define ROUND_NE                                                                                     \
    {                                                                                                \
        const int s = shift > 63 ? 63 : shift;                                                       \
        const uint64_t sg = shift > 63 ? 0 : sig;                                                    \
        const uint64_t q = sg >> s, rem = sg & ((UINT64_C(1) << s) - 1), half = UINT64_C(1) << (s - 1); \
        m = q + ((rem > half) | ((rem == half) & (q & 1)));                                          \
    }
/* stochastic: the remainder's top R bits plus R random bits; a carry rounds up (ns_round_shift_right) */
#define ROUND_SR                                                                                     \
    {                                                                                                \
        const uint64_t q = shift >= 64 ? 0 : sig >> shift;                                           \
        const uint64_t rem = shift >= 64 ? sig : sig & ((UINT64_C(1) << shift) - 1);                \
        uint64_t frac;                                                                               \
        if (shift >= R) frac = (shift - R >= 64) ? 0 : rem >> (shift - R);                           \
        else frac = rem << (R - shift);                                                              \
        const uint64_t rnd = ns_rng_bits(key, o->index_offset + i, R);                               \
        m = q + (rem ? ((frac + rnd) >> R) : 0);                                                     \
    }
/* the other modes: the generic rule itself */
#define ROUND_ANY                                                                                    \
    { m = ns_round_shift_right(sig, shift, ns_magnitude_mode(o->rounding, (int)neg), 0, o->random_bits); }

INT_LOOP(ne8, uint8_t, ROUND_NE)
INT_LOOP(ne16, uint16_t, ROUND_NE)
INT_LOOP(ne32, uint32_t, ROUND_NE)
INT_LOOP(sr8, uint8_t, ROUND_SR)
INT_LOOP(sr16, uint16_t, ROUND_SR)
INT_LOOP(sr32, uint32_t, ROUND_SR)
INT_LOOP(any8, uint8_t, ROUND_ANY)
INT_LOOP(any16, uint16_t, ROUND_ANY)
INT_LOOP(any32, uint32_t, ROUND_ANY)

int ns_encode_f64_int_kernel(const double *x, size_t n, const ns_format *f, const ns_encode_opts *o, void *codes,
                             int32_t code_bytes) {
    if (f->kind != NS_KIND_INT || f->bits < 1 || f->bits > 32) return 0;
    if (code_bytes != 1 && code_bytes != 2 && code_bytes != 4) return 0;
    if (o->random_bits < 1 || o->random_bits > 32) return 0;
    i64k k;
    k.mask = f->bits == 32 ? UINT64_C(0xFFFFFFFF) : ((UINT64_C(1) << f->bits) - 1);
    if (f->is_signed) {
        k.max_pos = (UINT64_C(1) << (f->bits - 1)) - 1;
        k.max_neg = f->symmetric ? k.max_pos : k.max_pos + 1;
    } else { k.max_pos = k.mask; k.max_neg = 0; }
    k.saturate = o->overflow != NS_OVF_WRAP && o->overflow != NS_OVF_ERROR;
    const int w = code_bytes == 1 ? 0 : code_bytes == 2 ? 1 : 2;
    if (o->rounding == NS_ROUND_NEAREST_EVEN) return w == 0 ? ne8(&k, x, n, o, codes) : w == 1 ? ne16(&k, x, n, o, codes) : ne32(&k, x, n, o, codes);
    if (o->rounding == NS_ROUND_STOCHASTIC) return w == 0 ? sr8(&k, x, n, o, codes) : w == 1 ? sr16(&k, x, n, o, codes) : sr32(&k, x, n, o, codes);
    return w == 0 ? any8(&k, x, n, o, codes) : w == 1 ? any16(&k, x, n, o, codes) : any32(&k, x, n, o, codes);
}
