/* Internal to the exact integer GEMM: what csrc/intgemm.c (portable: packing, conversion, the C tile,
 * threads) shares with its per-ISA tiles (csrc/intgemm_avx2.c, csrc/intgemm_avx512vnni.c). Not part of
 * the C ABI. */
#ifndef NS_INTGEMM_ISA_H
#define NS_INTGEMM_ISA_H
#include <stdint.h>
#include <string.h>
#include "ns_cpu.h"

#define MR 4           /* rows of a register tile */
#define MC 64          /* rows of a converted a chunk (multiple of MR) */
#define KC 512         /* k per reduction block (multiple of 4): keeps a chunk block and a b tile in cache */

typedef struct plan {
    const uint8_t *a, *b;
    const int32_t *a_val, *b_val;
    int64_t M, K, N;
    const int32_t *shift;
    int shift_on_b, a_is_u8, level, acc_bits;
    int32_t a_off, b_off;
    const uint32_t *c;
    int32_t *out;
    double *values;
    int64_t pw, kg, tile, Kg, Np;   /* panel width, k group, tile width (2 panels), k groups, padded N */
    void *bp;                       /* packed b lanes: int8 (VNNI) or int16 */
    uint32_t *col_corr;             /* per column: oa * sum_k lb  (mod 2^32) */
    int16_t a_lane[256];            /* a code -> lane when a is not shifted */
    int a_vec, b_vec;               /* 1: lanes by a 16-entry table (codes < 16), 2: code + offset (8-bit), 0: scalar */
    int8_t a_lut16[16];             /* a code -> lane (codes < 16, a not shifted) */
    int8_t b_lut16[31][16];         /* b code -> lane at each shift (codes < 16) */
} plan;

typedef struct task { const plan *p; int64_t lo, hi; int32_t status; } task;

static inline int64_t shift_mul(const int32_t *shift, int64_t k) { return shift ? (int64_t)1 << shift[k] : 1; }

static inline int32_t as_int32(uint32_t u) { int32_t v; memcpy(&v, &u, sizeof v); return v; }

static inline int32_t load32(const void *p) { int32_t v; memcpy(&v, p, sizeof v); return v; }

/* Where a VNNI tile's last reduction block finishes its outputs: out = raw - col_corr - row_corr + c,
 * stored as int32 and as doubles. Pointers are at the tile's first row and column. */
typedef struct tile_fin {
    const uint32_t *col_corr, *row_corr, *c;   /* c: accumulator codes or NULL */
    double *values;                            /* or NULL */
    int64_t ld;                                /* row stride of c and values (N) */
    uint32_t mask, sign;                       /* the accumulator's code mask and sign bit (0 for 32 bits) */
} tile_fin;

/* AVX2 (vpmaddwd): the tile of tile_c (intgemm.c) on int16 lanes, PW 8, KG 2. */
void ns_int8_tile_avx2(const int16_t *A, int64_t lda, const int16_t *B0, int64_t pstride, int64_t ng, int32_t *C,
                       int64_t ldc, int mr, int ncols, int first);
/* AVX-512 VNNI (vpdpbusd): int8 lanes, PW 16, KG 4; a u8 x b s8 (au8) or a s8 x b u8 (bu8). A non-NULL fin
 * finishes the outputs in registers (the last reduction block). */
void ns_int8_tile_avx512vnni_au8(const uint8_t *A, int64_t lda, const uint8_t *B0, int64_t pstride, int64_t ng,
                                 int32_t *C, int64_t ldc, int mr, int ncols, int first, const tile_fin *fin);
void ns_int8_tile_avx512vnni_bu8(const uint8_t *A, int64_t lda, const uint8_t *B0, int64_t pstride, int64_t ng,
                                 int32_t *C, int64_t ldc, int mr, int ncols, int first, const tile_fin *fin);
/* The VNNI packing of b's column tiles t0 .. t1 and one row of a as VNNI lanes (table or byte add). */
void ns_int8_pack_tiles_avx512vnni(const plan *p, int64_t t0, int64_t t1);
void ns_int8_convert_row_avx512vnni(const plan *p, const uint8_t *arow, uint8_t *dst, int64_t K);
#endif
