/* AVX2 tiles of the 8-row interleaved integer prefill GEMM (layout and
 * contract in kernels_impl.h): AELLM_X8_ROWS rows x AELLM_X8_TOKS tokens,
 * one ymm lane per row, so each (8 rows, token, block) costs one madd, one
 * cvt and one fma, and the unpacked weight vectors serve all four tokens.
 * Registers: 4 float accumulators + 4 integer sums + weights and
 * temporaries, within the 16 ymm. The loops over a block's weight vectors
 * are kept rolled ("unroll 1"): unrolled, GCC 12 hoists every vector's
 * unpacking to the top and spills ~20 ymm a block (~10% slower, measured
 * interleaved on q4_0). No threading here. */
#include "kernels/gemm_x8_tile.h"

_Static_assert(AELLM_X8_ROWS == 8 && AELLM_X8_TOKS == 4, "tiles are written out for 8 x 4");

/* acc += float(isum + o) * (dw * dx) for one token of one block. */
#define X8_FINISH(acc, isum, x, t, dw)                                                             \
    X8_FMA(acc, _mm256_add_epi32(isum, _mm256_set1_epi32((x)->o[t])), x, t, dw)

/* q4_0: weights are unsigned nibbles (0..15), activations signed. Each
 * int16 lane sums 8 maddubs pairs per block: |sum| <= 8 * 2 * 15 * 128 =
 * 30720, no saturation. The -8 offset is x's o = -8 sum(q), per token. */
void aellm_x8_tile_q4_0_avx2(const aellm_x8_args *a, int nr, int nt)
{
    const aellm_x8_q4_0 *g = a->w;
    const aellm_x8_act *x = a->x;
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < a->nb; b++, g++, x++) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
#pragma GCC unroll 1
        for (int m = 0; m < 4; m++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(g->q + 32 * m));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#define Q4_TOKEN(s, t)                                                                             \
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo, x8_bcast4(x->q[t] + 4 * m)));                 \
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi, x8_bcast4(x->q[t] + 16 + 4 * m)))
            Q4_TOKEN(s0, 0);
            Q4_TOKEN(s1, 1);
            Q4_TOKEN(s2, 2);
            Q4_TOKEN(s3, 3);
#undef Q4_TOKEN
        }
        __m256 dw = _mm256_loadu_ps(g->d);
        X8_FINISH(acc0, _mm256_madd_epi16(s0, ones), x, 0, dw);
        X8_FINISH(acc1, _mm256_madd_epi16(s1, ones), x, 1, dw);
        X8_FINISH(acc2, _mm256_madd_epi16(s2, ones), x, 2, dw);
        X8_FINISH(acc3, _mm256_madd_epi16(s3, ones), x, 3, dw);
    }
    const __m256 acc[4] = {acc0, acc1, acc2, acc3};
    x8_store_tile(a, nr, nt, acc);
}

/* q8_0: signed x signed through the sign trick, maddubs(|w|, sign(x, w));
 * a pair can reach 2 * 127 * 127, so each maddubs is widened (madd) before
 * it is summed. */
void aellm_x8_tile_q8_0_avx2(const aellm_x8_args *a, int nr, int nt)
{
    const aellm_x8_q8_0 *g = a->w;
    const aellm_x8_act *x = a->x;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < a->nb; b++, g++, x++) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
#pragma GCC unroll 1
        for (int m = 0; m < 8; m++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(g->q + 32 * m));
            __m256i aw = _mm256_abs_epi8(w);
#define Q8_TOKEN(s, t)                                                                             \
    s = _mm256_add_epi32(                                                                          \
        s, _mm256_madd_epi16(                                                                      \
               _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x8_bcast4(x->q[t] + 4 * m), w)), ones))
            Q8_TOKEN(s0, 0);
            Q8_TOKEN(s1, 1);
            Q8_TOKEN(s2, 2);
            Q8_TOKEN(s3, 3);
#undef Q8_TOKEN
        }
        __m256 dw = _mm256_loadu_ps(g->d);
        X8_FINISH(acc0, s0, x, 0, dw);
        X8_FINISH(acc1, s1, x, 1, dw);
        X8_FINISH(acc2, s2, x, 2, dw);
        X8_FINISH(acc3, s3, x, 3, dw);
    }
    const __m256 acc[4] = {acc0, acc1, acc2, acc3};
    x8_store_tile(a, nr, nt, acc);
}
