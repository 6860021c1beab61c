/* Packing for the 8-row interleaved ("x8") integer prefill GEMM, and its
 * scalar reference tiles (layout in kernels_impl.h). Packing is plain byte
 * moves, cheap next to the T-token product it serves, so it has no SIMD
 * version. This file has no ISA flags. */
#include <string.h>

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/kernels_impl.h"

size_t aellm_x8_group_bytes(int wtype, int64_t n)
{
    size_t nb = (size_t)(n / 32);
    if (wtype == AELLM_DTYPE_Q4_0 || wtype == AELLM_DTYPE_Q4_0_R16)
        return nb * sizeof(aellm_x8_q4_0);
    if (wtype == AELLM_DTYPE_Q8_0) return nb * sizeof(aellm_x8_q8_0);
    return 0;
}

/* Rows r0..r0+7 of a q4_0_r16 matrix are half of one 16-row group, whose
 * quants are already 4-byte runs a row: a 32-byte copy per run of 4. */
static void pack_w_r16(aellm_x8_q4_0 *g, const void *w, size_t row_bytes, int64_t r0, int nr,
                       int64_t nb)
{
    int64_t base = r0 / AELLM_Q4_0_R16_ROWS * AELLM_Q4_0_R16_ROWS;
    int half = (int)(r0 - base);
    const aellm_block_q4_0_r16 *src =
        (const aellm_block_q4_0_r16 *)((const char *)w + (size_t)base * row_bytes);
    memset(g, 0, (size_t)nb * sizeof(*g));
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < nr; r++) g[b].d[r] = aellm_f16_to_f32(src[b].d[half + r]);
        for (int m = 0; m < 4; m++)
            memcpy(g[b].q + m * 32, src[b].q + m * 64 + 4 * half, (size_t)nr * 4);
    }
}

void aellm_x8_pack_w(int wtype, void *group, const void *w, size_t row_bytes, int64_t r0, int nr,
                     int64_t nb)
{
    if (wtype == AELLM_DTYPE_Q4_0_R16) {
        pack_w_r16(group, w, row_bytes, r0, nr, nb);
        return;
    }
    w = (const char *)w + (size_t)r0 * row_bytes;
    if (wtype == AELLM_DTYPE_Q4_0) {
        aellm_x8_q4_0 *g = group;
        memset(g, 0, (size_t)nb * sizeof(*g));
        for (int r = 0; r < nr; r++) {
            const aellm_block_q4_0 *blk =
                (const aellm_block_q4_0 *)((const char *)w + r * row_bytes);
            for (int64_t b = 0; b < nb; b++) {
                g[b].d[r] = aellm_f16_to_f32(blk[b].d);
                for (int m = 0; m < 4; m++) memcpy(g[b].q + m * 32 + r * 4, blk[b].qs + 4 * m, 4);
            }
        }
    } else {
        aellm_x8_q8_0 *g = group;
        memset(g, 0, (size_t)nb * sizeof(*g));
        for (int r = 0; r < nr; r++) {
            const aellm_block_q8_0 *blk =
                (const aellm_block_q8_0 *)((const char *)w + r * row_bytes);
            for (int64_t b = 0; b < nb; b++) {
                g[b].d[r] = aellm_f16_to_f32(blk[b].d);
                for (int m = 0; m < 8; m++) memcpy(g[b].q + m * 32 + r * 4, blk[b].qs + 4 * m, 4);
            }
        }
    }
}

void aellm_x8_pack_x(int wtype, aellm_x8_act *tile, const void *xq, size_t xrow, int nt, int64_t nb)
{
    memset(tile, 0, (size_t)nb * sizeof(*tile));
    for (int t = 0; t < nt; t++) {
        const aellm_block_q8_0 *blk = (const aellm_block_q8_0 *)((const char *)xq + t * xrow);
        for (int64_t b = 0; b < nb; b++) {
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += blk[b].qs[j];
            memcpy(tile[b].q[t], blk[b].qs, 32);
            tile[b].d[t] = aellm_f16_to_f32(blk[b].d);
            tile[b].o[t] = wtype == AELLM_DTYPE_Q8_0 ? 0 : -8 * sum;
            tile[b].s[t] = sum;
        }
    }
}

/* Same arithmetic as the SIMD tiles: exact int32 per (row, token, block),
 * then acc += float(idot + o) * (dw * dx) in block order. */
static void tile_ref(const aellm_x8_args *a, int nr, int nt, int q4)
{
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < a->nb; b++) {
                const aellm_x8_act *x = a->x + b;
                int32_t dot = x->o[t];
                float dw;
                if (q4) {
                    const aellm_x8_q4_0 *g = (const aellm_x8_q4_0 *)a->w + b;
                    for (int m = 0; m < 4; m++)
                        for (int j = 0; j < 4; j++) {
                            uint8_t v = g->q[m * 32 + r * 4 + j];
                            dot +=
                                (v & 15) * x->q[t][4 * m + j] + (v >> 4) * x->q[t][16 + 4 * m + j];
                        }
                    dw = g->d[r];
                } else {
                    const aellm_x8_q8_0 *g = (const aellm_x8_q8_0 *)a->w + b;
                    for (int m = 0; m < 8; m++)
                        for (int j = 0; j < 4; j++)
                            dot += g->q[m * 32 + r * 4 + j] * x->q[t][4 * m + j];
                    dw = g->d[r];
                }
                acc += (float)dot * (dw * x->d[t]);
            }
            a->y[t * a->ldy + r] = acc;
        }
}

void aellm_x8_tile_q4_0_scalar(const aellm_x8_args *a, int nr, int nt)
{
    tile_ref(a, nr, nt, 1);
}

void aellm_x8_tile_q8_0_scalar(const aellm_x8_args *a, int nr, int nt)
{
    tile_ref(a, nr, nt, 0);
}
