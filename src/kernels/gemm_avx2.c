/* AVX2 integer GEMM for prefill: packs AELLM_MM_TR weight rows into a panel
 * of plain bytes, then runs a 4 x 3 register tile over it (rows x tokens).
 * Operands come prepared by matmul.c; this file does no threading. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "kernels/simd_avx2.h"

_Static_assert(AELLM_MM_TR == 4 && AELLM_MM_TT == 3, "tile() is written out for 4 x 3");

/* ---- panels ----------------------------------------------------------------
 * Layout: quants [nb][4 rows][32 bytes], block-interleaved so that the tile
 * reads one sequential stream, then scales [nb][4 rows] f32. */

static inline float *panel_scales(void *panel, int64_t nb)
{
    return (float *)((char *)panel + nb * AELLM_MM_TR * 32);
}

/* Scales of the panel; rows past nr repeat row 0 (their results are dropped). */
static void pack_scales(void *panel, int nr, const float *wd, int64_t nb)
{
    float *ps = panel_scales(panel, nb);
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < AELLM_MM_TR; r++)
            ps[b * AELLM_MM_TR + r] = wd[(r < nr ? r : 0) * nb + b];
}

void aellm_gemm_pack_q8_0_avx2(void *panel, const void *w, size_t row_bytes, int nr,
                               const float *wd, int64_t nb)
{
    int8_t *pq = panel;
    for (int r = 0; r < AELLM_MM_TR; r++) {
        const aellm_block_q8_0 *blk =
            (const aellm_block_q8_0 *)((const char *)w + (r < nr ? r : 0) * row_bytes);
        for (int64_t b = 0; b < nb; b++)
            _mm256_storeu_si256((__m256i *)(pq + (b * AELLM_MM_TR + r) * 32),
                                _mm256_loadu_si256((const __m256i *)blk[b].qs));
    }
    pack_scales(panel, nr, wd, nb);
}

/* q4_0 and q4_1 differ only in where the nibbles sit in a block. */
static inline void pack_q4(void *panel, const void *w, size_t row_bytes, int nr, const float *wd,
                           int64_t nb, size_t bbytes, size_t qoff)
{
    int8_t *pq = panel;
    for (int r = 0; r < AELLM_MM_TR; r++) {
        const uint8_t *row = (const uint8_t *)w + (r < nr ? r : 0) * row_bytes + qoff;
        for (int64_t b = 0; b < nb; b++)
            _mm256_storeu_si256((__m256i *)(pq + (b * AELLM_MM_TR + r) * 32),
                                unpack_nibbles(row + b * bbytes));
    }
    pack_scales(panel, nr, wd, nb);
}

void aellm_gemm_pack_q4_0_avx2(void *panel, const void *w, size_t row_bytes, int nr,
                               const float *wd, int64_t nb)
{
    pack_q4(panel, w, row_bytes, nr, wd, nb, sizeof(aellm_block_q4_0),
            offsetof(aellm_block_q4_0, qs));
}

void aellm_gemm_pack_q4_1_avx2(void *panel, const void *w, size_t row_bytes, int nr,
                               const float *wd, int64_t nb)
{
    pack_q4(panel, w, row_bytes, nr, wd, nb, sizeof(aellm_block_q4_1),
            offsetof(aellm_block_q4_1, qs));
}

/* ---- tiles ---------------------------------------------------------------- */

/* The row step is written in assembly for one reason: register
 * allocation. The tile needs all sixteen ymm registers (twelve accumulators,
 * the row's quants and scale, two temporaries). Compiled from intrinsics,
 * GCC 12 keeps the three tokens' quants and scales live across the four
 * rows and spills six accumulators, reloading and storing them every block;
 * here every activation operand is read by the instruction that uses it and
 * nothing spills. (On the noisy 2-core machine this was written on, the
 * gain over the spilling intrinsics was within the noise, 0-10%: the tile
 * is bound by the multiply pipes, ~25 cycles per 12 pairs of blocks.)
 *
 * One (row, token) pair, W the row's 32 quants (unsigned for maddubs), DW
 * its scale broadcast, x the token's quants, d its scale:
 *   T1 = maddubs(W, x); T1 = madd(T1, ones); T1 = float(T1)
 *   T2 = DW * broadcast(d);  acc += T1 * T2
 * For q8_0, W holds |w| and x first takes w's sign (vpsignb). */
#define U8_PAIR(acc, x, d)                                                                         \
    "vpmaddubsw %[" x "], %[w], %[t1]\n\t"                                                         \
    "vpmaddwd %[ones], %[t1], %[t1]\n\t"                                                           \
    "vcvtdq2ps %[t1], %[t1]\n\t"                                                                   \
    "vbroadcastss %[" d "], %[t2]\n\t"                                                             \
    "vmulps %[t2], %[dw], %[t2]\n\t"                                                               \
    "vfmadd231ps %[t2], %[t1], %[" acc "]\n\t"

#define S8_PAIR(acc, x, d)                                                                         \
    "vmovdqu %[" x "], %[t1]\n\t"                                                                  \
    "vpsignb %[wq], %[t1], %[t1]\n\t"                                                              \
    "vpmaddubsw %[t1], %[w], %[t1]\n\t"                                                            \
    "vpmaddwd %[ones], %[t1], %[t1]\n\t"                                                           \
    "vcvtdq2ps %[t1], %[t1]\n\t"                                                                   \
    "vbroadcastss %[" d "], %[t2]\n\t"                                                             \
    "vmulps %[t2], %[dw], %[t2]\n\t"                                                               \
    "vfmadd231ps %[t2], %[t1], %[" acc "]\n\t"

static const int16_t ones16[16]
    __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* Block b of one panel row against the three tokens. */
static inline __attribute__((always_inline)) void row_step(__m256 *a0, __m256 *a1, __m256 *a2,
                                                           const int8_t *wq, const float *dwp,
                                                           const int8_t *xb, const float *db,
                                                           int is_signed)
{
    __m256i w, t1;
    __m256 dw, t2;
#define ROW_OPERANDS                                                                               \
    : [a0] "+x"(*a0), [a1] "+x"(*a1), [a2] "+x"(*a2), [w] "=&x"(w), [dw] "=&x"(dw),               \
      [t1] "=&x"(t1), [t2] "=&x"(t2)                                                               \
    : [wq] "m"(*(const __m256i *)wq), [dwp] "m"(*dwp),                                             \
      [x0] "m"(*(const __m256i *)xb), [x1] "m"(*(const __m256i *)(xb + 64)),                      \
      [x2] "m"(*(const __m256i *)(xb + 128)), [d0] "m"(db[0]), [d1] "m"(db[1]), [d2] "m"(db[2]),    \
      [ones] "m"(*(const __m256i *)ones16)
    if (is_signed)
        __asm__("vpabsb %[wq], %[w]\n\t"
                "vbroadcastss %[dwp], %[dw]\n\t" S8_PAIR("a0", "x0", "d0") S8_PAIR("a1", "x1", "d1")
                    S8_PAIR("a2", "x2", "d2") ROW_OPERANDS);
    else
        __asm__("vmovdqu %[wq], %[w]\n\t"
                "vbroadcastss %[dwp], %[dw]\n\t" U8_PAIR("a0", "x0", "d0") U8_PAIR("a1", "x1", "d1")
                    U8_PAIR("a2", "x2", "d2") ROW_OPERANDS);
#undef ROW_OPERANDS
}

/* Twelve named accumulators (an array of vectors would live in memory).
 * Block b of token t is at xq + ((b / 2) * 3 + t) * 64 + (b % 2) * 32 and its
 * scale at xd[3 b + t]; padded tokens are zero and their results dropped. */
static inline __attribute__((always_inline)) void tile(const aellm_gemm_tile_args *a, int nr,
                                                       int nt, int is_signed)
{
    const int64_t nb = a->nb;
    const int8_t *pq = a->panel;
    const float *ps = panel_scales((void *)a->panel, nb);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *wq = pq + b * AELLM_MM_TR * 32;
        const float *dw = ps + b * AELLM_MM_TR;
        const int8_t *xb = a->xq + (b / 2) * AELLM_MM_TT * 64 + (b & 1) * 32;
        const float *db = a->xd + b * AELLM_MM_TT;
        row_step(&c00, &c01, &c02, wq, dw, xb, db, is_signed);
        row_step(&c10, &c11, &c12, wq + 32, dw + 1, xb, db, is_signed);
        row_step(&c20, &c21, &c22, wq + 64, dw + 2, xb, db, is_signed);
        row_step(&c30, &c31, &c32, wq + 96, dw + 3, xb, db, is_signed);
    }
    const __m256 acc[AELLM_MM_TR][AELLM_MM_TT] = {
        {c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) a->y[t * a->ldy + r] = hsum_ps(acc[r][t]);
}

void aellm_gemm_tile_s8_avx2(const aellm_gemm_tile_args *a, int nr, int nt)
{
    tile(a, nr, nt, 1);
}

void aellm_gemm_tile_u8_avx2(const aellm_gemm_tile_args *a, int nr, int nt)
{
    tile(a, nr, nt, 0);
}
