/* AVX-512 integer GEMM for prefill, mirroring gemm_avx2.c: a 4 x 3 tile of
 * rows x tokens, but each step covers two blocks per zmm and the integer dot
 * is one VNNI vpdpbusd. Plain intrinsics: with 32 registers nothing spills.
 * Activations come packed in token groups (kernels_impl.h).
 * Not tuned on hardware: written to be obviously right. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "kernels/simd_avx512.h"

_Static_assert(AELLM_MM_TR == 4 && AELLM_MM_TT == 3, "tile() is written out for 4 x 3");

/* ---- panels ----------------------------------------------------------------
 * Layout: quants [nb2 = ceil(nb / 2)][4 rows][64 bytes = blocks 2i, 2i+1],
 * then scales [2 * nb2][4 rows]. An odd block count leaves the last upper
 * half and its scales zero, so that step adds nothing. */

static inline float *panel_scales(const void *panel, int64_t nb)
{
    return (float *)((char *)panel + (nb + 1) / 2 * AELLM_MM_TR * 64);
}

static inline int8_t *panel_block(void *panel, int64_t b, int r)
{
    return (int8_t *)panel + ((b / 2) * AELLM_MM_TR + r) * 64 + (b & 1) * 32;
}

/* Rows past nr repeat row 0 (their results are dropped). */
static void pack_scales(void *panel, int nr, const float *wd, int64_t nb)
{
    float *ps = panel_scales(panel, nb);
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < AELLM_MM_TR; r++)
            ps[b * AELLM_MM_TR + r] = wd[(r < nr ? r : 0) * nb + b];
    if (nb & 1) {
        for (int r = 0; r < AELLM_MM_TR; r++) {
            ps[nb * AELLM_MM_TR + r] = 0.0f;
            _mm256_storeu_si256((__m256i *)panel_block(panel, nb, r), _mm256_setzero_si256());
        }
    }
}

void aellm_gemm_pack_q8_0_avx512(void *panel, const void *w, size_t row_bytes, int nr,
                                 const float *wd, int64_t nb)
{
    for (int r = 0; r < AELLM_MM_TR; r++) {
        const aellm_block_q8_0 *blk =
            (const aellm_block_q8_0 *)((const char *)w + (r < nr ? r : 0) * row_bytes);
        for (int64_t b = 0; b < nb; b++)
            _mm256_storeu_si256((__m256i *)panel_block(panel, b, r), load_si256(blk[b].qs));
    }
    pack_scales(panel, nr, wd, nb);
}

static inline void pack_q4(void *panel, const void *w, size_t row_bytes, int nr, const float *wd,
                           int64_t nb, size_t bbytes, size_t qoff)
{
    for (int r = 0; r < AELLM_MM_TR; r++) {
        const uint8_t *row = (const uint8_t *)w + (r < nr ? r : 0) * row_bytes + qoff;
        for (int64_t b = 0; b < nb; b++)
            _mm256_storeu_si256((__m256i *)panel_block(panel, b, r),
                                unpack_nibbles_256(row + b * bbytes));
    }
    pack_scales(panel, nr, wd, nb);
}

void aellm_gemm_pack_q4_0_avx512(void *panel, const void *w, size_t row_bytes, int nr,
                                 const float *wd, int64_t nb)
{
    pack_q4(panel, w, row_bytes, nr, wd, nb, sizeof(aellm_block_q4_0),
            offsetof(aellm_block_q4_0, qs));
}

void aellm_gemm_pack_q4_1_avx512(void *panel, const void *w, size_t row_bytes, int nr,
                                 const float *wd, int64_t nb)
{
    pack_q4(panel, w, row_bytes, nr, wd, nb, sizeof(aellm_block_q4_1),
            offsetof(aellm_block_q4_1, qs));
}

/* ---- tiles ---------------------------------------------------------------- */

/* acc += idot(w, x_t) * (dw * dx_t) for blocks 2i, 2i+1 of one pair. For
 * signed weights aw = |w| and x is negated where w < 0. */
#define PAIR(acc, t)                                                                               \
    do {                                                                                           \
        __m512i xs_ = is_signed ? _mm512_mask_sub_epi8(xv[t], neg, zero, xv[t]) : xv[t];           \
        __m512i p_ = _mm512_dpbusd_epi32(zero, aw, xs_);                                           \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p_), _mm512_mul_ps(dw, dx[t]), acc);              \
    } while (0)

#define ROW(r, a0, a1, a2)                                                                         \
    do {                                                                                           \
        __m512i wv = _mm512_loadu_si512(pq + (i * AELLM_MM_TR + r) * 64);                          \
        __m512i aw = is_signed ? _mm512_abs_epi8(wv) : wv;                                         \
        __mmask64 neg = is_signed ? _mm512_movepi8_mask(wv) : 0;                                   \
        __m512 dw = pair_ps(ps[2 * i * AELLM_MM_TR + r], ps[(2 * i + 1) * AELLM_MM_TR + r]);       \
        (void)neg;                                                                                 \
        PAIR(a0, 0);                                                                               \
        PAIR(a1, 1);                                                                               \
        PAIR(a2, 2);                                                                               \
    } while (0)

/* Twelve named accumulators. Blocks 2i, 2i+1 of token t are the 64 bytes at
 * xq + (3 i + t) * 64, their scales xd[3 (2i) + t] and xd[3 (2i+1) + t];
 * padding (missing tokens, the block after an odd last one) is zero in both
 * the activations and the panel, and results of missing rows and tokens
 * are dropped. */
static inline __attribute__((always_inline)) void tile(const aellm_gemm_tile_args *a, int nr,
                                                       int nt, int is_signed)
{
    const int64_t nb2 = (a->nb + 1) / 2;
    const int8_t *pq = a->panel;
    const float *ps = panel_scales(a->panel, a->nb);
    const __m512i zero = _mm512_setzero_si512();
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    for (int64_t i = 0; i < nb2; i++) {
        __m512i xv[AELLM_MM_TT];
        __m512 dx[AELLM_MM_TT];
        for (int t = 0; t < AELLM_MM_TT; t++) {
            xv[t] = _mm512_loadu_si512(a->xq + (i * AELLM_MM_TT + t) * 64);
            dx[t] = pair_ps(a->xd[2 * i * AELLM_MM_TT + t], a->xd[(2 * i + 1) * AELLM_MM_TT + t]);
        }
        ROW(0, c00, c01, c02);
        ROW(1, c10, c11, c12);
        ROW(2, c20, c21, c22);
        ROW(3, c30, c31, c32);
    }
    const __m512 acc[AELLM_MM_TR][AELLM_MM_TT] = {
        {c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) a->y[t * a->ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

void aellm_gemm_tile_s8_avx512(const aellm_gemm_tile_args *a, int nr, int nt)
{
    tile(a, nr, nt, 1);
}

void aellm_gemm_tile_u8_avx512(const aellm_gemm_tile_args *a, int nr, int nt)
{
    tile(a, nr, nt, 0);
}
