/* AVX-512 VNNI tiles of the 8-row interleaved integer prefill GEMM (layout
 * and contract in kernels_impl.h), on the same 256-bit groups as the AVX2
 * tiles (AVX512-VL): one ymm lane per row, but each (8 rows, token, 4
 * quants) is one vpdpbusd into an int32 sum, where AVX2 needs maddubs and
 * an add (q4_0) or sign, maddubs, madd and an add (q8_0). q8_0's signed
 * weights go in as w ^ 0x80 = w + 128 (unsigned), the sum starting at
 * -128 sum(x). All sums exact in int32. No threading here. */
#include "kernels/gemm_x8_tile.h"

_Static_assert(AELLM_X8_ROWS == 8 && AELLM_X8_TOKS == 4, "tiles are written out for 8 x 4");

void aellm_x8_tile_q4_0_avx512(const aellm_x8_args *a, int nr, int nt)
{
    const aellm_x8_q4_0 *g = a->w;
    const aellm_x8_act *x = a->x;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < a->nb; b++, g++, x++) {
        /* the -8 offset (x's o = -8 sum q) starts each sum */
        __m256i s0 = _mm256_set1_epi32(x->o[0]), s1 = _mm256_set1_epi32(x->o[1]);
        __m256i s2 = _mm256_set1_epi32(x->o[2]), s3 = _mm256_set1_epi32(x->o[3]);
#pragma GCC unroll 1
        for (int m = 0; m < 4; m++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(g->q + 32 * m));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#define Q4_TOKEN(s, t)                                                                             \
    s = _mm256_dpbusd_epi32(s, lo, x8_bcast4(x->q[t] + 4 * m));                                    \
    s = _mm256_dpbusd_epi32(s, hi, x8_bcast4(x->q[t] + 16 + 4 * m))
            Q4_TOKEN(s0, 0);
            Q4_TOKEN(s1, 1);
            Q4_TOKEN(s2, 2);
            Q4_TOKEN(s3, 3);
#undef Q4_TOKEN
        }
        __m256 dw = _mm256_loadu_ps(g->d);
        X8_FMA(acc0, s0, x, 0, dw);
        X8_FMA(acc1, s1, x, 1, dw);
        X8_FMA(acc2, s2, x, 2, dw);
        X8_FMA(acc3, s3, x, 3, dw);
    }
    const __m256 acc[4] = {acc0, acc1, acc2, acc3};
    x8_store_tile(a, nr, nt, acc);
}

void aellm_x8_tile_q8_0_avx512(const aellm_x8_args *a, int nr, int nt)
{
    const aellm_x8_q8_0 *g = a->w;
    const aellm_x8_act *x = a->x;
    const __m256i bias = _mm256_set1_epi8(-128);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < a->nb; b++, g++, x++) {
        __m256i s0 = _mm256_set1_epi32(-128 * x->s[0]), s1 = _mm256_set1_epi32(-128 * x->s[1]);
        __m256i s2 = _mm256_set1_epi32(-128 * x->s[2]), s3 = _mm256_set1_epi32(-128 * x->s[3]);
#pragma GCC unroll 1
        for (int m = 0; m < 8; m++) {
            __m256i w =
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(g->q + 32 * m)), bias);
            s0 = _mm256_dpbusd_epi32(s0, w, x8_bcast4(x->q[0] + 4 * m));
            s1 = _mm256_dpbusd_epi32(s1, w, x8_bcast4(x->q[1] + 4 * m));
            s2 = _mm256_dpbusd_epi32(s2, w, x8_bcast4(x->q[2] + 4 * m));
            s3 = _mm256_dpbusd_epi32(s3, w, x8_bcast4(x->q[3] + 4 * m));
        }
        __m256 dw = _mm256_loadu_ps(g->d);
        X8_FMA(acc0, s0, x, 0, dw);
        X8_FMA(acc1, s1, x, 1, dw);
        X8_FMA(acc2, s2, x, 2, dw);
        X8_FMA(acc3, s3, x, 3, dw);
    }
    const __m256 acc[4] = {acc0, acc1, acc2, acc3};
    x8_store_tile(a, nr, nt, acc);
}
