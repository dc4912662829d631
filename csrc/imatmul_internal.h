/* Shared between csrc/imatmul*.c (not part of the C ABI). */
#ifndef NS_IMATMUL_INTERNAL_H
#define NS_IMATMUL_INTERNAL_H
#include <stdint.h>

#define IM_BLK 32      /* output block: 32 x 32 (AMX: 2 x 2 tiles of 16 x 16 int32) */
#define IM_KT 64       /* k per AMX tile (64 bytes a tile row); K is zero-padded to a multiple */

/* Lane modes of the two sides (signed int8 or unsigned uint8 lanes). */
typedef struct im_plan {
    int64_t M, K, N, Kp, Np;   /* Kp: K padded to IM_KT; Np: N padded to IM_BLK */
    int a_signed, b_signed;    /* the lanes' type on each side */
    int level;
    /* VNNI (u8 x s8 only): 0 none; 1 A is s8 and B s8: A lanes ^ 0x80 (+128), out -= 128 * colsum(B);
     * 2 A u8, B u8: B lanes ^ 0x80 (-128), out += 128 * rowsum(A); 3 A s8, B u8: operands swapped. */
    int vnni_mode;
    int stream_values;         /* write the doubles with non-temporal stores (large outputs: no read for ownership) */
    const uint8_t *b_packed;   /* Np / 16 panels of (Kp / 4) groups of 64 bytes: [col j][k % 4] */
    const uint32_t *col_corr;  /* per column: added to every output of the column (mod 2^32), or NULL */
} im_plan;

/* One thread's share of the work (or of the packing of b). */
typedef struct im_job {
    const im_plan *p;
    const uint8_t *a, *b;
    const int32_t *a_val, *b_val, *a_shift, *b_shift;
    const int32_t *c;
    int32_t *out;
    double *values;
    int64_t lo, hi;            /* blocks (or panels, when packing) lo .. hi */
    uint32_t *col_corr;        /* written when packing */
    uint8_t lut_a[256];        /* a code -> lane byte (no shift on a), VNNI offset included */
    int a_vec, b_vec;          /* 1: lanes by a 16-entry table (codes < 16), 2: byte = code + off, 0: scalar */
    uint8_t a_off, b_off;      /* for vec 2 */
    uint8_t a_lut16[16];       /* a code -> lane byte (codes < 16, no shift) */
    uint8_t b_lut16[8][16];    /* b code -> lane byte at each shift (codes < 16) */
    int32_t status;
} im_job;

/* One 32 x 32 block: blk[r][j] = sum_k A[r][k] * Bpanels(n0 .. n0 + 31)[k][j] mod 2^32 (int32).
 * A: 32 rows of Kp lane bytes (row stride Kp); bp: the first of the block's two B panels. */
typedef void (*im_block_fn)(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk);

void im_block_portable(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk);
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define IM_HAVE_X86 1
void im_block_vnni(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk);
void im_block_amx(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk);
/* AMX tile configuration: load once per thread before im_block_amx, release after. */
void im_amx_begin(void);
void im_amx_end(void);
/* AVX-512 packing and finishing, the same bytes and numbers as the scalar code in imatmul.c. */
void im_pack_b_avx512(im_job *j);
void im_pack_a_row_avx512(const im_job *j, const uint8_t *row, uint8_t *dst, uint64_t *usum);
void im_store_fence(void);
struct ns_unit;
void im_shift_finish_avx512(const struct ns_unit *u, const int32_t *g, int64_t n, const uint32_t *c, uint32_t *out,
                            int64_t lo, int64_t hi, int64_t *events);
void im_finish_avx512(const im_job *j, int64_t m0, int64_t n0, const int32_t *blk, const uint32_t *row_corr);
void im_requant_avx512(const int32_t *acc, int64_t n, int32_t multiplier, int32_t shift, int32_t zero_point,
                       int32_t out_min, int32_t out_max, uint8_t *out);
#endif
#endif
