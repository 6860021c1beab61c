/* AVX-512 VNNI tile of the W8A8 prefill GEMM (layout in kernels_impl.h): 16
 * rows x AELLM_I8_TOKS tokens, one zmm lane per row. Weights are packed as
 * w ^ 0x80 (w + 128, unsigned) for vpdpbusd; each token's 128 sum(x) is
 * subtracted at the end. int32 exact (see vec_dot_wq_avx512.c). Not run on
 * hardware here. No threading here. */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernels_impl.h"

_Static_assert(AELLM_I8_TOKS == 4, "the tile is written out for 4 tokens");

static inline __m512i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

static void tile_avx512(const aellm_i8_args *a, int32_t *out)
{
    const int8_t *w = a->w, *x = a->x;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t k = 0; k < a->k4; k++, w += 64, x += 16) {
        __m512i wv = _mm512_loadu_si512((const void *)w);
        s0 = _mm512_dpbusd_epi32(s0, wv, bcast4(x));
        s1 = _mm512_dpbusd_epi32(s1, wv, bcast4(x + 4));
        s2 = _mm512_dpbusd_epi32(s2, wv, bcast4(x + 8));
        s3 = _mm512_dpbusd_epi32(s3, wv, bcast4(x + 12));
    }
    const __m512i s[4] = {s0, s1, s2, s3};
    for (int t = 0; t < 4; t++)
        _mm512_storeu_si512((void *)(out + 16 * t),
                            _mm512_sub_epi32(s[t], _mm512_set1_epi32(128 * a->xsum[t])));
}

const aellm_i8_kernel aellm_i8_kernel_avx512 = {16, 1, tile_avx512};
