#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")
/* AVX-512 levels of csrc/imatmul.c: the VNNI block (vpdpbusd, u8 x s8 -> s32, no saturation) and
 * the INT8 requantization 16 accumulators at a time. Same bits as the portable level: see the proof
 * in imatmul.c (products exact, sums modulo 2^32) and, for the requantization, the notes below. */
#include "numsim.h"
#include "imatmul_internal.h"
#ifdef IM_HAVE_X86
#include <immintrin.h>
#include "vnni_pack_avx512.h"
#include <string.h>

#define MRV 8          /* rows of a register tile: 8 rows x 2 panels = 16 accumulators */

static inline int32_t ld32(const uint8_t *p) { int32_t v; memcpy(&v, p, sizeof v); return v; }

/* One 32 x 32 block: for each k group of 4, 16 columns x 4 k of each panel against a broadcast quad
 * of a row. swap: the a lanes are s8 and the b lanes u8 (vpdpbusd takes u8 first). */
static inline __attribute__((always_inline)) void block_vnni_t(const im_plan *p, const uint8_t *A,
                                                               const uint8_t *bp, int32_t *blk, const int swap) {
    const int64_t ng = p->Kp / 4, pstride = ng * 64, Kp = p->Kp;
    for (int i = 0; i < IM_BLK; i += MRV) {
        __m512i c0[MRV], c1[MRV];
        for (int r = 0; r < MRV; r++) c0[r] = c1[r] = _mm512_setzero_si512();
        const uint8_t *ai = A + i * Kp;
        for (int64_t g = 0; g < ng; g++) {
            const __m512i b0 = _mm512_load_si512((const void *)(bp + g * 64));
            const __m512i b1 = _mm512_load_si512((const void *)(bp + pstride + g * 64));
            for (int r = 0; r < MRV; r++) {
                const __m512i x = _mm512_set1_epi32(ld32(ai + r * Kp + 4 * g));
                if (swap) {
                    c0[r] = _mm512_dpbusd_epi32(c0[r], b0, x);
                    c1[r] = _mm512_dpbusd_epi32(c1[r], b1, x);
                } else {
                    c0[r] = _mm512_dpbusd_epi32(c0[r], x, b0);
                    c1[r] = _mm512_dpbusd_epi32(c1[r], x, b1);
                }
            }
        }
        for (int r = 0; r < MRV; r++) {
            _mm512_store_si512((void *)(blk + (i + r) * IM_BLK), c0[r]);
            _mm512_store_si512((void *)(blk + (i + r) * IM_BLK + 16), c1[r]);
        }
    }
}

void im_block_vnni(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk) {
    if (p->vnni_mode == 3) block_vnni_t(p, A, bp, blk, 1);
    else block_vnni_t(p, A, bp, blk, 0);
}

/* ---- packing and finishing (the same bytes and numbers as imatmul.c's scalar loops) ---------- */

/* One row of a as lanes (a 16-entry table or a byte add), zero past K up to Kp; *usum: the sum of the
 * lanes read as uint8 (vpsadbw). dst is 64-byte aligned (Kp is a multiple of 64). */
void im_pack_a_row_avx512(const im_job *j, const uint8_t *row, uint8_t *dst, uint64_t *usum) {
    const int64_t K = j->p->K, Kp = j->p->Kp;
    const __m512i lut = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)j->a_lut16));
    const __m512i off = _mm512_set1_epi8((char)j->a_off), zero = _mm512_setzero_si512();
    __m512i sum = zero;
    for (int64_t k = 0; k < Kp; k += 64) {
        const __mmask64 m = K - k >= 64 ? ~(__mmask64)0 : K > k ? (((__mmask64)1 << (K - k)) - 1) : 0;
        const __m512i codes = _mm512_maskz_loadu_epi8(m, row + k);
        const __m512i lanes = _mm512_maskz_mov_epi8(m, j->a_vec == 1 ? _mm512_shuffle_epi8(lut, codes)
                                                                      : _mm512_add_epi8(codes, off));
        _mm512_store_si512((void *)(dst + k), lanes);
        sum = _mm512_add_epi64(sum, _mm512_sad_epu8(lanes, zero));
    }
    *usum = (uint64_t)_mm512_reduce_add_epi64(sum);
}

/* b panels j->lo .. j->hi by 16-byte rows: lanes by a per-shift 16-entry table or a byte add, zero
 * past N and K; a 4 x 16 byte transpose per k group; column sums (VNNI mode 1) by vpdpbusd with ones. */
void im_pack_b_avx512(im_job *j) {
    const im_plan *p = j->p;
    const int64_t K = p->K, N = p->N, ng = p->Kp / 4;
    const __m512i ones = _mm512_set1_epi8(1);
    const __m128i boff = _mm_set1_epi8((char)j->b_off);
    for (int64_t pn = j->lo; pn < j->hi; pn++) {
        const int64_t n0 = pn * 16;
        const int64_t nv = N - n0 >= 16 ? 16 : N - n0 > 0 ? N - n0 : 0;
        const __mmask16 cm = (__mmask16)((1u << nv) - 1);
        uint8_t *dst = (uint8_t *)p->b_packed + pn * ng * 64;
        __m512i csum = _mm512_setzero_si512();
        for (int64_t g = 0; g < ng; g++) {
            __m128i r[4];
            for (int q = 0; q < 4; q++) {
                const int64_t k = 4 * g + q;
                r[q] = _mm_setzero_si128();
                if (k >= K || !cm) continue;
                const __m128i codes = _mm_maskz_loadu_epi8(cm, j->b + k * N + n0);
                if (j->b_vec == 1) {
                    const uint8_t *t = j->b_lut16[j->b_shift ? j->b_shift[k] : 0];
                    const __m128i lut = _mm_loadu_si128((const __m128i *)(const void *)t);
                    r[q] = _mm_maskz_shuffle_epi8(cm, lut, codes);
                } else {
                    r[q] = _mm_maskz_add_epi8(cm, codes, boff);
                }
            }
            const __m512i v = ns_vnni_interleave4x16(r);
            _mm512_store_si512((void *)(dst + g * 64), v);
            if (j->col_corr) csum = _mm512_dpbusd_epi32(csum, ones, v);    /* s8 lanes (mode 1) */
        }
        if (j->col_corr)   /* 0 - 128 * sum_k b' (mod 2^32), 0 past N */
            _mm512_storeu_si512((void *)(j->col_corr + n0),
                                _mm512_maskz_sub_epi32(cm, _mm512_setzero_si512(), _mm512_slli_epi32(csum, 7)));
    }
}

/* out = blk + row_corr + col_corr + c (mod 2^32) and the doubles, for the block's valid part. */
void im_finish_avx512(const im_job *j, int64_t m0, int64_t n0, const int32_t *blk, const uint32_t *row_corr) {
    const im_plan *p = j->p;
    const int64_t rows = p->M - m0 < IM_BLK ? p->M - m0 : IM_BLK, cols = p->N - n0 < IM_BLK ? p->N - n0 : IM_BLK;
    __mmask16 mh[2];
    __m512i cc[2];
    for (int h = 0; h < 2; h++) {
        const int64_t q = cols - 16 * h;
        mh[h] = q >= 16 ? (__mmask16)0xFFFF : q > 0 ? (__mmask16)((1u << q) - 1) : 0;
        cc[h] = p->col_corr ? _mm512_maskz_loadu_epi32(mh[h], p->col_corr + n0 + 16 * h) : _mm512_setzero_si512();
    }
    for (int64_t r = 0; r < rows; r++) {
        const int64_t o = (m0 + r) * p->N + n0;
        const __m512i rc = _mm512_set1_epi32((int32_t)row_corr[r]);
        for (int h = 0; h < 2; h++) {
            if (!mh[h]) continue;
            const __m512i raw = _mm512_load_si512((const void *)(blk + r * IM_BLK + 16 * h));
            __m512i v = _mm512_add_epi32(_mm512_add_epi32(raw, rc), cc[h]);
            if (j->c) v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(mh[h], j->c + o + 16 * h));
            _mm512_mask_storeu_epi32(j->out + o + 16 * h, mh[h], v);
            if (j->values) {
                double *d = j->values + o + 16 * h;
                const __m512d lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(v));
                const __m512d hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1));
                if (p->stream_values && mh[h] == 0xFFFF && ((uintptr_t)d & 63) == 0) {
                    _mm512_stream_pd(d, lo);
                    _mm512_stream_pd(d + 8, hi);
                } else {
                    _mm512_mask_storeu_pd(d, (__mmask8)(mh[h] & 0xFF), lo);
                    _mm512_mask_storeu_pd(d + 8, (__mmask8)(mh[h] >> 8), hi);
                }
            }
        }
    }
}

/* ---- the per-shift final summation, 8 outputs at a time ------------------------------------------ */

/* fit_signed of csrc/units.c on int64 lanes, for the wrap and saturate policies: lanes outside the
 * signed `bits`-bit range count one event each and wrap (the low `bits` bits, sign-extended) or
 * saturate. */
static inline __m512i fit_vec(__m512i v, int bits, int policy, int64_t *events) {
    const __m512i hi = _mm512_set1_epi64(((int64_t)1 << (bits - 1)) - 1);
    const __m512i lo = _mm512_set1_epi64(-((int64_t)1 << (bits - 1)));
    const __mmask8 out = (__mmask8)(_mm512_cmpgt_epi64_mask(v, hi) | _mm512_cmplt_epi64_mask(v, lo));
    if (!out) return v;
    *events += __builtin_popcount(out);
    if (policy == NS_OVF_WRAP) {
        const __m128i sh = _mm_cvtsi32_si128(64 - bits);
        return _mm512_mask_mov_epi64(v, out, _mm512_sra_epi64(_mm512_sll_epi64(v, sh), sh));
    }
    return _mm512_min_epi64(_mm512_max_epi64(v, lo), hi);
}

/* sample_shift_apply of csrc/units.c on int64 lanes (wrap / saturate policies): left by
 * (max_shift - s) then fit to the accumulator; right by s with ns_round_shift_right's magnitude rule
 * (n = |v| >> s, rem = the dropped bits, half = 2^(s-1): nearest-even rounds up when rem > half or
 * rem == half with n odd; nearest-away when rem >= half; toward zero never; toward -inf when negative
 * and inexact; toward +inf when positive and inexact), the sign restored after. */
static inline __m512i shift_vec(const ns_unit *u, __m512i v, int s, int64_t *events) {
    if (u->shift_dir == NS_SHIFT_LEFT) {
        v = _mm512_sll_epi64(v, _mm_cvtsi32_si128(u->max_shift - s));
        return fit_vec(v, u->acc_fmt.bits, u->shift_overflow, events);
    }
    if (s == 0) return v;
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    const __mmask8 neg = _mm512_cmplt_epi64_mask(v, zero);
    const __m512i mag = _mm512_abs_epi64(v);
    __m512i n = _mm512_srl_epi64(mag, _mm_cvtsi32_si128(s));
    const __m512i rem = _mm512_and_si512(mag, _mm512_set1_epi64(((int64_t)1 << s) - 1));
    const __m512i half = _mm512_set1_epi64((int64_t)1 << (s - 1));
    const __mmask8 inexact = _mm512_cmpneq_epi64_mask(rem, zero);
    __mmask8 up = 0;
    switch (u->shift_rounding) {
    case 0: up = (__mmask8)(_mm512_cmpgt_epi64_mask(rem, half) |
                            (_mm512_cmpeq_epi64_mask(rem, half) & _mm512_test_epi64_mask(n, one)));
            break;
    case 1: up = _mm512_cmpge_epi64_mask(rem, half); break;
    case 2: up = 0; break;
    case 3: up = (__mmask8)(neg & inexact); break;
    default: up = (__mmask8)(~neg & inexact); break;
    }
    n = _mm512_mask_add_epi64(n, up, n, one);
    return _mm512_mask_sub_epi64(n, neg, zero, n);
}

/* Outputs lo .. hi: total = c; for s = 0 .. 4: total = fit(total + shift(g[s])). The caller takes
 * only units whose shift rounding is deterministic and whose policies are wrap or saturate. */
void im_shift_finish_avx512(const ns_unit *u, const int32_t *g, int64_t n, const uint32_t *c, uint32_t *out,
                            int64_t lo, int64_t hi, int64_t *events) {
    const int bits = u->acc_fmt.bits;
    const __m128i ext = _mm_cvtsi32_si128(64 - bits);
    const __m256i mask = _mm256_set1_epi32((int32_t)(bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1));
    for (int64_t i = lo; i < hi; i += 8) {
        const __mmask8 m = hi - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (hi - i)) - 1);
        __m512i total = _mm512_setzero_si512();
        if (c) total = _mm512_sra_epi64(_mm512_sll_epi64(_mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(m, c + i)),
                                                         ext), ext);    /* the code's value */
        for (int s = 0; s <= 4; s++) {
            /* the group's exact value (the caller's bound keeps it inside the accumulator) */
            const __m512i gv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, g + s * n + i));
            int64_t ev = 0;
            const __m512i t = shift_vec(u, gv, s, &ev);
            total = fit_vec(_mm512_add_epi64(total, t), bits, u->acc_overflow, &ev);
            /* masked-off lanes are zeros: they never leave the range, so they count no event */
            *events += ev;
        }
        _mm256_mask_storeu_epi32(out + i, m, _mm256_and_si256(_mm512_cvtepi64_epi32(total), mask));
    }
}

/* Orders this thread's non-temporal stores before its caller sees the results. */
void im_store_fence(void) { _mm_sfence(); }

/* RequantInt8 (csrc/units.c ns_requant_int8), 16 lanes at a time:
 *  - x = acc << left wraps in 32 bits (vpslld), as the scalar shift of the uint32;
 *  - SaturatingRoundingDoublingHighMul: the exact 64-bit product (vpmuldq, even and odd lanes), the
 *    nudge 2^30 or 1 - 2^30 by its sign, then division by 2^31 truncating toward zero as C's `/`:
 *    (v + (2^31 - 1 if v < 0)) >> 31 arithmetic; the one overflowing input pair (both INT32_MIN)
 *    gives INT32_MAX, as the scalar rule;
 *  - RoundingDivideByPOT: (y >> right) + (y & mask > (mask >> 1) + (y < 0));
 *  - clamp(q + zp, lo, hi) = clamp(q, lo - zp, hi - zp) + zp (the right side never overflows int32:
 *    lo - zp and hi - zp lie in [-255, 255]). */
void im_requant_avx512(const int32_t *acc, int64_t n, int32_t multiplier, int32_t shift, int32_t zero_point,
                       int32_t out_min, int32_t out_max, uint8_t *out) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const __m128i lsh = _mm_cvtsi32_si128(left), rsh = _mm_cvtsi32_si128(right);
    const __m512i mul = _mm512_set1_epi32(multiplier);
    const __m512i pos_nudge = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i neg_nudge = _mm512_set1_epi64(1 - ((int64_t)1 << 30));
    const __m512i trunc_fix = _mm512_set1_epi64(((int64_t)1 << 31) - 1);
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const int32_t maskv = (int32_t)((UINT32_C(1) << right) - 1);
    const __m512i rmask = _mm512_set1_epi32(maskv), rhalf = _mm512_set1_epi32(maskv >> 1);
    const __m512i lo = _mm512_set1_epi32(out_min - zero_point), hi = _mm512_set1_epi32(out_max - zero_point);
    const __m512i zp = _mm512_set1_epi32(zero_point), imin = _mm512_set1_epi32(INT32_MIN);
    const __m512i imax = _mm512_set1_epi32(INT32_MAX);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512i a = _mm512_maskz_loadu_epi32(m, acc + i);
        const __m512i x = _mm512_sll_epi32(a, lsh);
        __m512i pe = _mm512_mul_epi32(x, mul);                         /* lanes 0, 2, .. as int64 */
        __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(x, 32), mul);  /* lanes 1, 3, .. */
        pe = _mm512_add_epi64(pe, _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(pe, zero), pos_nudge, neg_nudge));
        po = _mm512_add_epi64(po, _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(po, zero), pos_nudge, neg_nudge));
        pe = _mm512_srai_epi64(_mm512_mask_add_epi64(pe, _mm512_cmplt_epi64_mask(pe, zero), pe, trunc_fix), 31);
        po = _mm512_srai_epi64(_mm512_mask_add_epi64(po, _mm512_cmplt_epi64_mask(po, zero), po, trunc_fix), 31);
        __m512i y = _mm512_mask_blend_epi32((__mmask16)0xAAAA, pe, _mm512_slli_epi64(po, 32));
        if (multiplier == INT32_MIN) y = _mm512_mask_mov_epi32(y, _mm512_cmpeq_epi32_mask(x, imin), imax);
        const __m512i rem = _mm512_and_si512(y, rmask);
        const __m512i thr = _mm512_mask_add_epi32(rhalf, _mm512_cmplt_epi32_mask(y, zero), rhalf, one);
        __m512i q = _mm512_sra_epi32(y, rsh);
        q = _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, one);
        q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), zp);
        _mm512_mask_cvtepi32_storeu_epi8(out + i, m, q);
    }
}
#endif
