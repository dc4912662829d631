/* Small shared helpers of the C kernels (not part of the C ABI). */
#ifndef NS_INTERNAL_H
#define NS_INTERNAL_H
#include <stdint.h>
#include <string.h>

static inline uint64_t ns_f64_bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static inline double ns_f64_from_bits(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
static inline uint32_t ns_f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float ns_f32_from_bits(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* The stochastic-rounding generator, counter-based: the bits of element `index` depend on (seed, index)
 * alone, never on call order or thread count. SplitMix64's finaliser (a bijective 64-bit mixer) keys the
 * seed once, then mixes seed_key + (index + 1) * golden ratio. numsim/reference/rng.py is the independent
 * Python oracle of the same bits. */
static inline uint64_t ns_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static inline uint64_t ns_seed_key(uint64_t seed) { return ns_mix64(seed); }
/* The top nbits (1..32) of element index's draw under key = ns_seed_key(seed). */
static inline uint32_t ns_rng_bits(uint64_t key, uint64_t index, int nbits) {
    return (uint32_t)(ns_mix64(key + (index + 1) * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - nbits));
}

/* Index of the most significant set bit of a nonzero 64-bit integer. */
static inline int ns_msb64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return 63 - __builtin_clzll(v);
#else
    int n = 0;
    while (v >>= 1) n++;
    return n;
#endif
}

/* Magnitude rounding directions: the sign has already been folded into the mode. */
enum ns_mag_mode { NS_MAG_DOWN = 0, NS_MAG_UP = 1, NS_MAG_NEAREST_EVEN = 2, NS_MAG_NEAREST_AWAY = 3, NS_MAG_STOCHASTIC = 4 };

/* Fold the sign of the value into a rounding mode that acts on the magnitude. */
static inline int ns_magnitude_mode(int rounding, int negative) {
    switch (rounding) {
    case 0: return NS_MAG_NEAREST_EVEN;
    case 1: return NS_MAG_NEAREST_AWAY;
    case 2: return NS_MAG_DOWN;
    case 3: return negative ? NS_MAG_UP : NS_MAG_DOWN;   /* toward -inf */
    case 4: return negative ? NS_MAG_DOWN : NS_MAG_UP;   /* toward +inf */
    default: return NS_MAG_STOCHASTIC;
    }
}

/* Round the magnitude sig * 2^-shift to an integer under a magnitude mode.
 * Stochastic: the fraction truncated to `nbits` bits plus `rnd` (nbits random bits);
 * a carry out rounds up, so P(up) = floor(frac * 2^nbits) / 2^nbits.
 * shift <= 0 means the value is already an integer (the caller ensures it fits). */
static inline uint64_t ns_round_shift_right(uint64_t sig, int shift, int mag_mode, uint32_t rnd, int nbits) {
    if (shift <= 0) return sig << (-shift);
    uint64_t n, rem, half;
    int above_half, is_half, inexact;
    if (shift >= 64) {
        n = 0; rem = sig; inexact = sig != 0; is_half = 0; above_half = 0; /* sig < 2^63 = half */
    } else {
        n = sig >> shift;
        rem = sig & ((UINT64_C(1) << shift) - 1);
        half = UINT64_C(1) << (shift - 1);
        inexact = rem != 0; is_half = rem == half; above_half = rem > half;
    }
    if (!inexact) return n;
    switch (mag_mode) {
    case NS_MAG_DOWN: return n;
    case NS_MAG_UP: return n + 1;
    case NS_MAG_NEAREST_EVEN: return n + (above_half || (is_half && (n & 1)));
    case NS_MAG_NEAREST_AWAY: return n + (above_half || is_half);
    default: {
        uint64_t frac;
        if (shift >= nbits) frac = (shift - nbits >= 64) ? 0 : rem >> (shift - nbits);
        else frac = rem << (nbits - shift);
        return n + ((frac + rnd) >> nbits);
    }
    }
}
#endif
