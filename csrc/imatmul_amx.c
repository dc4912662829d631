#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl")
/* AMX-INT8 level of csrc/imatmul.c: one 32 x 32 block as 2 x 2 tiles of 16 x 16 int32 (tmm0-3), a
 * tiles of 16 rows x 64 k (tmm4-5, row stride Kp) and b tiles of 16 k groups x 16 columns x 4 k
 * (tmm6-7, the VNNI layout of the packed panels, row stride 64). tdpbssd / tdpbsud / tdpbusd /
 * tdpbuud take each side's lanes as int8 or uint8, form each product exactly and add the dwords
 * without saturation (modulo 2^32): the same bits as the portable level (proof in imatmul.c).
 * Called only after ns_imatmul_has_level(2): CPUID and Linux's arch_prctl permission. */
#include "imatmul_internal.h"
#ifdef IM_HAVE_X86
#include <immintrin.h>
#include <string.h>

typedef struct tile_cfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

void im_amx_begin(void) {
    tile_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    /* gcc 12's _tile_loadconfig names only a pointer-sized memory operand, so the stores above can be
     * dropped as dead (they were: ldtilecfg then faulted on a zero configuration); this asm reads all 64 bytes */
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}

void im_amx_end(void) { _tile_release(); }

#define AMX_BLOCK(DP)                                                                   \
    for (int64_t k = 0; k < Kp; k += 64) {                                               \
        _tile_loadd(4, A + k, Kp);                                                       \
        _tile_loadd(5, A + 16 * Kp + k, Kp);                                             \
        _tile_loadd(6, bp + k * 16, 64);                                                 \
        _tile_loadd(7, bp + pstride + k * 16, 64);                                       \
        DP(0, 4, 6); DP(1, 4, 7); DP(2, 5, 6); DP(3, 5, 7);                              \
    }

void im_block_amx(const im_plan *p, const uint8_t *A, const uint8_t *bp, int32_t *blk) {
    const int64_t Kp = p->Kp, pstride = Kp * 16;       /* a panel: Kp / 4 groups of 64 bytes */
    __asm__ volatile("" : : : "memory");               /* the tile asm names no memory: order it here */
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    if (p->a_signed && p->b_signed) { AMX_BLOCK(_tile_dpbssd) }
    else if (p->a_signed) { AMX_BLOCK(_tile_dpbsud) }
    else if (p->b_signed) { AMX_BLOCK(_tile_dpbusd) }
    else { AMX_BLOCK(_tile_dpbuud) }
    _tile_stored(0, blk, IM_BLK * 4);
    _tile_stored(1, blk + 16, IM_BLK * 4);
    _tile_stored(2, blk + 16 * IM_BLK, IM_BLK * 4);
    _tile_stored(3, blk + 16 * IM_BLK + 16, IM_BLK * 4);
    __asm__ volatile("" : : : "memory");
}
#endif
