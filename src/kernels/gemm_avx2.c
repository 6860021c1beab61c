/* AVX2 integer tile kernels for prefill: AELLM_MM_TR weight rows x
 * AELLM_MM_TT tokens of accumulators held in registers, per block one
 * integer dot per (row, token) pair, scaled by the two f32 block scales.
 * Operands come repacked by matmul.c; this file does no threading. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "kernels/simd_avx2.h"

enum { KIND_Q8_0, KIND_Q4_0, KIND_Q4_1 };

/* Block geometry of the weight kinds: bytes per block, offset of the quants. */
static inline size_t kind_bytes(int kind)
{
    return kind == KIND_Q8_0   ? sizeof(aellm_block_q8_0)
           : kind == KIND_Q4_0 ? sizeof(aellm_block_q4_0)
                               : sizeof(aellm_block_q4_1);
}

static inline size_t kind_qs(int kind)
{
    return kind == KIND_Q8_0   ? offsetof(aellm_block_q8_0, qs)
           : kind == KIND_Q4_0 ? offsetof(aellm_block_q4_0, qs)
                               : offsetof(aellm_block_q4_1, qs);
}

/* NR x NT accumulators of 8 lanes (at most 12 of the 16 ymm registers); with
 * NR, NT and kind constant after inlining, the loops unroll fully. Per pair
 * and block: (sign,) maddubs, madd, cvt, mul, fma. The weight block is
 * loaded and unpacked once per row and reused for the NT tokens. */
static inline __attribute__((always_inline)) void tile(const aellm_gemm_tile_args *a, int NR,
                                                       int NT, int kind)
{
    const int64_t nb = a->nb;
    const size_t bbytes = kind_bytes(kind), qoff = kind_qs(kind);
    __m256 acc[AELLM_MM_TR][AELLM_MM_TT];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i xv[AELLM_MM_TT];
        for (int t = 0; t < NT; t++)
            xv[t] = _mm256_loadu_si256((const __m256i *)(a->xq + (t * nb + b) * 32));
        for (int r = 0; r < NR; r++) {
            const uint8_t *q = (const uint8_t *)a->w + r * a->row_bytes + b * bbytes + qoff;
            __m256 dw = _mm256_broadcast_ss(a->wd + r * nb + b);
            __m256i wv =
                kind == KIND_Q8_0 ? _mm256_loadu_si256((const __m256i *)q) : unpack_nibbles(q);
            __m256i aw = kind == KIND_Q8_0 ? _mm256_sign_epi8(wv, wv) : wv;
            for (int t = 0; t < NT; t++) {
                __m256i xs = kind == KIND_Q8_0 ? _mm256_sign_epi8(xv[t], wv) : xv[t];
                __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(a->xd + t * nb + b));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(aw, xs)), d, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) a->y[t * a->ldy + r] = hsum_ps(acc[r][t]);
}

/* One instance per (rows, tokens) edge shape, so every loop bound is constant. */
#define TILE_SHAPES(kind)                                                                          \
    switch (nr * 4 + nt) {                                                                         \
    case 4 * 4 + 3:                                                                                \
        tile(a, 4, 3, kind);                                                                       \
        break;                                                                                     \
    case 4 * 4 + 2:                                                                                \
        tile(a, 4, 2, kind);                                                                       \
        break;                                                                                     \
    case 4 * 4 + 1:                                                                                \
        tile(a, 4, 1, kind);                                                                       \
        break;                                                                                     \
    case 3 * 4 + 3:                                                                                \
        tile(a, 3, 3, kind);                                                                       \
        break;                                                                                     \
    case 3 * 4 + 2:                                                                                \
        tile(a, 3, 2, kind);                                                                       \
        break;                                                                                     \
    case 3 * 4 + 1:                                                                                \
        tile(a, 3, 1, kind);                                                                       \
        break;                                                                                     \
    case 2 * 4 + 3:                                                                                \
        tile(a, 2, 3, kind);                                                                       \
        break;                                                                                     \
    case 2 * 4 + 2:                                                                                \
        tile(a, 2, 2, kind);                                                                       \
        break;                                                                                     \
    case 2 * 4 + 1:                                                                                \
        tile(a, 2, 1, kind);                                                                       \
        break;                                                                                     \
    case 1 * 4 + 3:                                                                                \
        tile(a, 1, 3, kind);                                                                       \
        break;                                                                                     \
    case 1 * 4 + 2:                                                                                \
        tile(a, 1, 2, kind);                                                                       \
        break;                                                                                     \
    default:                                                                                       \
        tile(a, 1, 1, kind);                                                                       \
        break;                                                                                     \
    }

_Static_assert(AELLM_MM_TR == 4 && AELLM_MM_TT == 3, "TILE_SHAPES lists a 4x3 tile's edges");

void aellm_gemm_tile_q8_0_avx2(const aellm_gemm_tile_args *a, int nr, int nt)
{
    TILE_SHAPES(KIND_Q8_0)
}

void aellm_gemm_tile_q4_0_avx2(const aellm_gemm_tile_args *a, int nr, int nt)
{
    TILE_SHAPES(KIND_Q4_0)
}

void aellm_gemm_tile_q4_1_avx2(const aellm_gemm_tile_args *a, int nr, int nt)
{
    TILE_SHAPES(KIND_Q4_1)
}
