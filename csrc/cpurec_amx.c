#pragma GCC target("amx-tile,amx-int8,amx-bf16,avx512f")
/* AMX bodies of the recorder (csrc/cpurec.c): tdpbf16ps and tdpb{s,u}{s,u}d on one 16 x 16 C tile,
 * K/32 (bf16) or K/64 (int8) chained instructions. B is packed per tile into the instruction's layout:
 * row r of the B tile holds, for every column n, the k group (pair or quad) r. Called only after the
 * CPU-feature check (which includes Linux's tile-data permission). */
#include "cpurec_internal.h"
#ifdef NS_X86
#include <immintrin.h>
#include <string.h>

typedef struct rec_tile_cfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} rec_tile_cfg;

/* gcc 12's tile intrinsics do not tell the compiler that tileloadd reads the bytes at its address,
 * so the packing stores before it can be dropped as dead: a compiler barrier keeps them. */
#define REC_MEMORY_BARRIER() __asm__ volatile("" : : : "memory")

static void rec_amx_begin(void) {
    rec_tile_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 3; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    __asm__ volatile("ldtilecfg %0" : : "m"(cfg));     /* all 64 bytes (see imatmul_amx.c) */
}

void rec_tdpbf16ps_amx(const uint16_t *a, const uint16_t *b, const uint32_t *c, uint32_t *d, int64_t T, int64_t K) {
    rec_amx_begin();
    uint16_t bt[16 * 32];
    for (int64_t t = 0; t < T; t++) {
        const uint16_t *A = a + t * 16 * K, *B = b + t * K * 16;
        _tile_loadd(0, c + t * 256, 64);
        for (int64_t k0 = 0; k0 < K; k0 += 32) {
            for (int r = 0; r < 16; r++)
                for (int n = 0; n < 16; n++) {
                    bt[r * 32 + 2 * n] = B[(k0 + 2 * r) * 16 + n];
                    bt[r * 32 + 2 * n + 1] = B[(k0 + 2 * r + 1) * 16 + n];
                }
            REC_MEMORY_BARRIER();
            _tile_loadd(1, A + k0, K * 2);
            _tile_loadd(2, bt, 64);
            _tile_dpbf16ps(0, 1, 2);
        }
        _tile_stored(0, d + t * 256, 64);
        REC_MEMORY_BARRIER();
    }
    _tile_release();
}

void rec_tdpbxxd_amx(const uint8_t *a, const uint8_t *b, const int32_t *c, int32_t *d, int64_t T, int64_t K,
                     int32_t signs) {
    rec_amx_begin();
    uint8_t bt[16 * 64];
    for (int64_t t = 0; t < T; t++) {
        const uint8_t *A = a + t * 16 * K, *B = b + t * K * 16;
        _tile_loadd(0, c + t * 256, 64);
        for (int64_t k0 = 0; k0 < K; k0 += 64) {
            for (int r = 0; r < 16; r++)
                for (int n = 0; n < 16; n++)
                    for (int j = 0; j < 4; j++) bt[r * 64 + 4 * n + j] = B[(k0 + 4 * r + j) * 16 + n];
            REC_MEMORY_BARRIER();
            _tile_loadd(1, A + k0, K);
            _tile_loadd(2, bt, 64);
            switch (signs) {
                case 0: _tile_dpbssd(0, 1, 2); break;
                case 1: _tile_dpbusd(0, 1, 2); break;
                case 2: _tile_dpbsud(0, 1, 2); break;
                default: _tile_dpbuud(0, 1, 2); break;
            }
        }
        _tile_stored(0, d + t * 256, 64);
        REC_MEMORY_BARRIER();
    }
    _tile_release();
}
#endif
