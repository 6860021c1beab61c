/* AVX2 tile of the W8A8 prefill GEMM (layout in kernels_impl.h): 8 rows x
 * AELLM_I8_TOKS tokens, one ymm lane per row. Signed x signed through the
 * sign trick, maddubs(|w|, sign(x, w)); a pair can reach 2 * 127 * 127, so
 * each maddubs is widened (madd) before it is summed, in int32 over the
 * whole row: exact. No threading here. */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernels_impl.h"

_Static_assert(AELLM_I8_TOKS == 4, "the tile is written out for 4 tokens");

static inline __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static void tile_avx2(const aellm_i8_args *a, int32_t *out)
{
    const int8_t *w = a->w, *x = a->x;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t k = 0; k < a->k4; k++, w += 32, x += 16) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)w);
        __m256i aw = _mm256_abs_epi8(wv);
#define I8_TOKEN(s, t)                                                                             \
    s = _mm256_add_epi32(                                                                          \
        s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(x + 4 * (t)), wv)),  \
                             ones))
        I8_TOKEN(s0, 0);
        I8_TOKEN(s1, 1);
        I8_TOKEN(s2, 2);
        I8_TOKEN(s3, 3);
#undef I8_TOKEN
    }
    _mm256_storeu_si256((__m256i *)out, s0);
    _mm256_storeu_si256((__m256i *)(out + 8), s1);
    _mm256_storeu_si256((__m256i *)(out + 16), s2);
    _mm256_storeu_si256((__m256i *)(out + 24), s3);
}

const aellm_i8_kernel aellm_i8_kernel_avx2 = {8, 0, tile_avx2};
