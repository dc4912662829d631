/* The CDNA3 'fused_floor' group step (numsim/units/matrix_core.py has the rule and the proof of the
 * integer widths; numsim/reference/mfma.py the exact spec). Per output, per group of `group` k:
 *   terms  p_i = mag_a*mag_b at exponent ea+eb, aligned to the lane set's largest exponent and
 *          truncated toward zero to term_bits fraction bits (split: even and odd k separately, each sum
 *          then floored to term_bits at their common exponent);
 *   E      = max(e, ec); the group sum floored to sum_bits and c to c_bits below E; their sum (exact in
 *          int64: < 2^(sum_bits + 10)) times 2^(E - sum_bits) is exact in double, and one conversion
 *          to float (IEEE round to nearest even under the default MXCSR, which numsim never changes
 *          here) is the fp32 result, c of the next group.
 * inf/NaN inputs and c propagate as float arithmetic (NaN = 0x7fc00000); a product >= 2^128 is +-inf. */
#include <math.h>
#include <string.h>

#include "ns_formats.h"
#include "ns_mfma.h"

#define MF_NAN UINT32_C(0x7fc00000)
#define MF_PINF UINT32_C(0x7f800000)
#define MF_NINF UINT32_C(0xff800000)

/* x * 2^sh rounded toward -inf (arithmetic shift = floor); exact for sh >= 0 (callers keep it small). */
static inline int64_t floor_shift(int64_t x, int32_t sh) {
    if (sh >= 0) return (int64_t)((uint64_t)x << (sh > 62 ? 62 : sh));
    int32_t r = -sh > 63 ? 63 : -sh;
    return x >= 0 ? (x >> r) : ~((~x) >> r);       /* ~x = -x - 1 >= 0: floor without overflow */
}

static inline int msb64(uint64_t x) { return 63 - __builtin_clzll(x); }

/* Aligned, truncated sum of the lanes lane0, lane0 + stride, ... of one group: (sum, emax). */
static int64_t lane_sum(const int32_t *am, const int32_t *an, const int32_t *ae, const int32_t *bm,
                        const int32_t *bn, const int32_t *be, int32_t lane0, int32_t stride, int32_t group,
                        int32_t mab, int32_t F, int32_t *emax_out) {
    int32_t emax = INT32_MIN;
    for (int32_t k = lane0; k < group; k += stride) {
        int32_t e = ae[k] + be[k];
        emax = e > emax ? e : emax;
    }
    int64_t s = 0;
    for (int32_t k = lane0; k < group; k += stride) {
        int64_t p = (int64_t)am[k] * bm[k];                  /* >= 0, < 2^(mab + 2) */
        int32_t sh = F - mab - (emax - (ae[k] + be[k]));
        int64_t t = sh >= 0 ? (p << sh) : (-sh > 63 ? 0 : p >> -sh);     /* magnitude: floor = trunc */
        s += (an[k] ^ bn[k]) ? -t : t;
    }
    *emax_out = emax;
    return s;
}

static uint32_t group_step(const int32_t *am, const int32_t *an, const int32_t *ae, const uint8_t *acl,
                           const int32_t *bm, const int32_t *bn, const int32_t *be, const uint8_t *bcl,
                           uint32_t acc, int32_t group, int32_t mab, int32_t F, int32_t SB, int32_t CB,
                           int32_t split, int32_t c_drop, int32_t zero_exponent, int64_t *events) {
    uint32_t field = (acc >> 23) & 0xff, man = acc & 0x7fffff, csign = acc >> 31;
    int nan = field == 0xff && man, pinf = field == 0xff && !man && !csign, ninf = field == 0xff && !man && csign;
    int big_p = 0, big_n = 0;
    for (int32_t k = 0; k < group; k++) {
        uint8_t ca = acl[k], cb = bcl[k];
        int neg = (an[k] ^ bn[k]) != 0;
        if (ca == 3 || cb == 3 || (ca == 2 && cb == 0) || (ca == 0 && cb == 2)) { nan = 1; continue; }
        if (ca == 2 || cb == 2) { if (neg) ninf = 1; else pinf = 1; continue; }
        if (ca == 1 && cb == 1) {
            uint64_t p = (uint64_t)am[k] * (uint64_t)bm[k];
            if (msb64(p) + ae[k] + be[k] - mab >= 128) { if (neg) big_n = 1; else big_p = 1; }
        }
    }
    if (nan || (pinf && ninf)) return MF_NAN;
    if (pinf) return MF_PINF;
    if (ninf) return MF_NINF;
    if (big_p || big_n) { (*events)++; return big_p && big_n ? MF_NAN : (big_p ? MF_PINF : MF_NINF); }
    int32_t e, e0, e1;
    int64_t s;
    if (split) {
        int64_t s0 = lane_sum(am, an, ae, bm, bn, be, 0, 2, group, mab, F, &e0);
        int64_t s1 = lane_sum(am, an, ae, bm, bn, be, 1, 2, group, mab, F, &e1);
        e = e0 > e1 ? e0 : e1;
        s = floor_shift(s0, e0 - e) + floor_shift(s1, e1 - e);
    } else {
        s = lane_sum(am, an, ae, bm, bn, be, 0, 1, group, mab, F, &e);
    }
    int64_t cs = (int64_t)(field ? (man | 0x800000) : man);
    int32_t ec = field ? (int32_t)field - 127 : (man ? -126 : zero_exponent);
    if (csign) cs = -cs;
    int32_t E = e > ec ? e : ec;
    s = floor_shift(s, SB - F - (E - e));
    cs = floor_shift(cs, CB - 23 - (E - ec));
    if (c_drop >= 0 && ec < E - c_drop) cs = 0;
    int64_t total = s + floor_shift(cs, SB - CB);
    float out = (float)ldexp((double)total, E - SB);
    uint32_t bits;
    memcpy(&bits, &out, 4);
    if (((bits >> 23) & 0xff) == 0xff) (*events)++;          /* finite inputs rounded past fp32 */
    return bits;
}

int32_t ns_mfma_fused_floor_gemm(const int32_t *am, const int32_t *an, const int32_t *ae, const uint8_t *acl,
                                 const int32_t *bm, const int32_t *bn, const int32_t *be, const uint8_t *bcl,
                                 const uint32_t *c, uint32_t *d, int64_t M, int64_t N, int64_t Kp, int32_t group,
                                 int32_t mab, int32_t term_bits, int32_t sum_bits, int32_t c_bits, int32_t split,
                                 int32_t c_drop, int32_t zero_exponent, int64_t *events) {
    if (!am || !an || !ae || !acl || !bm || !bn || !be || !bcl || !c || !d || !events) return NS_ERR_ARG;
    if (M < 0 || N < 0 || Kp < 0 || group < 1 || group > 64 || Kp % group || mab < 0 || mab > 40) return NS_ERR_ARG;
    if (term_bits < 8 || term_bits > 30 || sum_bits < 8 || sum_bits > 40 || c_bits < 8 || c_bits > 30) return NS_ERR_ARG;
    if (split && group % 2) return NS_ERR_ARG;
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < N; n++) {
            uint32_t acc = c[i * N + n];
            for (int64_t s = 0; s < Kp; s += group)
                acc = group_step(am + i * Kp + s, an + i * Kp + s, ae + i * Kp + s, acl + i * Kp + s,
                                 bm + n * Kp + s, bn + n * Kp + s, be + n * Kp + s, bcl + n * Kp + s, acc, group,
                                 mab, term_bits, sum_bits, c_bits, split, c_drop, zero_exponent, events);
            d[i * N + n] = acc;
        }
    return NS_OK;
}
