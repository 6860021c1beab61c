/* Softmax kernels, AVX-512 (softmax.h): 16 lanes, masked tails. */
#include <immintrin.h>

#include "kernels/softmax.h"

static inline __m512 exp16(__m512 x)
{
    __mmask16 zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), x); /* a NaN passes through */
    __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(LOG2E), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    y = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(y), e));
    return _mm512_maskz_mov_ps((__mmask16)~zero, y);
}

static inline __mmask16 tail(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static float max_avx512(const float *x, int64_t n)
{
    __m512 m = _mm512_set1_ps(x[0]);
    for (int64_t i = 0; i < n; i += 16)
        m = _mm512_mask_max_ps(m, tail(n - i), m, _mm512_maskz_loadu_ps(tail(n - i), x + i));
    return _mm512_reduce_max_ps(m);
}

static float exp_sum_avx512(float *y, const float *x, int64_t n, float shift)
{
    __m512 s = _mm512_set1_ps(shift), acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail(n - i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(y + i, m, e);
        acc = _mm512_add_ps(acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

static void scale_avx512(float *x, int64_t n, float k)
{
    __m512 kv = _mm512_set1_ps(k);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), kv));
    }
}

static void softmax_grad_avx512(float *dp, const float *p, int64_t n, float scale)
{
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail(n - i);
        acc =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + i), _mm512_maskz_loadu_ps(m, dp + i), acc);
    }
    __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), sv = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail(n - i);
        __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dp + i), dot);
        g = _mm512_mul_ps(_mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, p + i)), g);
        _mm512_mask_storeu_ps(dp + i, m, g);
    }
}

const aellm_softmax_kernels aellm_softmax_avx512 = {max_avx512, exp_sum_avx512, scale_avx512,
                                                    softmax_grad_avx512};
