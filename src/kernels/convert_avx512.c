/* AVX-512 conversions, mirroring convert_avx2.c: activation quantizers whose
 * bytes equal the scalar references of src/core/dtype.c, exact dequantizers
 * for every type. Tails use masked loads and stores, never scalar loops. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/simd_avx512.h"

static inline __mmask16 mask_of(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* ---- quantizers ----------------------------------------------------------- */

void aellm_from_float_f32_avx512(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* Round to nearest even, overflow to inf, as aellm_f32_to_f16; only NaN
 * payloads could differ, and activations carry none. */
void aellm_from_float_f16_avx512(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask_of(n - i);
        __m256i v = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(h + i, m, v);
    }
}

/* Round to nearest even on the top 16 bits; NaNs kept quiet (| 0x40). */
void aellm_from_float_bf16_avx512(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask_of(n - i);
        __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
        __m512i ax = _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff));
        __mmask16 nan = _mm512_cmpgt_epi32_mask(ax, _mm512_set1_epi32(0x7f800000));
        __m512i q = _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40));
        r = _mm512_mask_mov_epi32(r, nan, q);
        _mm256_mask_storeu_epi16(h + i, m, _mm512_cvtepi32_epi16(r));
    }
}

/* roundf: to nearest, ties away from zero; exact (see convert_avx2.c). */
static inline __m512 round_away(__m512 v)
{
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up =
        _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
    __m512 one =
        _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* One block of 32, as q8_block in convert_avx2.c: d = amax / 127, q =
 * roundf(x * (1 / d)); returns d, writes q, and sum(q) into *sum if asked. */
static inline float q8_block(const float *x, int8_t *qs, int *sum)
{
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    __m512 idv = _mm512_set1_ps(id);
    __m512i q0 = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(v0, idv)));
    __m512i q1 = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(v1, idv)));
    if (sum) *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    /* |q| <= 127, so the saturating narrowing is plain truncation, in order. */
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(q1));
    return d;
}

void aellm_from_float_q8_0_avx512(const float *src, void *dst, int64_t n)
{
    aellm_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++)
        b[i].d = aellm_f32_to_f16(q8_block(src + i * QK8_0, b[i].qs, NULL));
}

void aellm_from_float_q8_1_avx512(const float *src, void *dst, int64_t n)
{
    aellm_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum;
        float d = q8_block(src + i * QK8_1, b[i].qs, &sum);
        b[i].d = aellm_f32_to_f16(d);
        b[i].s = aellm_f32_to_f16((float)sum * d);
    }
}

/* ---- dequantizers --------------------------------------------------------- */

void aellm_to_float_f32_avx512(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void aellm_to_float_f16_avx512(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask_of(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h + i)));
    }
}

void aellm_to_float_bf16_avx512(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask_of(n - i);
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, h + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
}

/* 16 int8 values as floats (exact). */
static inline __m512 i8x16_ps(__m128i q)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
}

static inline void store_q8_times(const int8_t *qs, float d, float *dst)
{
    __m512 dv = _mm512_set1_ps(d);
    _mm512_storeu_ps(dst, _mm512_mul_ps(i8x16_ps(_mm_loadu_si128((const __m128i *)qs)), dv));
    _mm512_storeu_ps(dst + 16,
                     _mm512_mul_ps(i8x16_ps(_mm_loadu_si128((const __m128i *)(qs + 16))), dv));
}

void aellm_to_float_q8_0_avx512(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++)
        store_q8_times(b[i].qs, f16_load(&b[i].d), dst + i * 32);
}

void aellm_to_float_q8_1_avx512(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++)
        store_q8_times(b[i].qs, f16_load(&b[i].d), dst + i * 32);
}

/* Low nibbles are elements 0..15, high nibbles 16..31. */
static inline __m128i nibbles_lo(const uint8_t *qs)
{
    return _mm_and_si128(_mm_loadu_si128((const __m128i *)qs), _mm_set1_epi8(0x0f));
}

static inline __m128i nibbles_hi(const uint8_t *qs)
{
    return _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)qs), 4),
                         _mm_set1_epi8(0x0f));
}

void aellm_to_float_q4_0_avx512(const void *src, float *dst, int64_t n)
{
    const aellm_block_q4_0 *b = src;
    const __m128i eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / QK4_0; i++) {
        __m512 dv = _mm512_set1_ps(f16_load(&b[i].d));
        __m128i lo = _mm_sub_epi8(nibbles_lo(b[i].qs), eight);
        __m128i hi = _mm_sub_epi8(nibbles_hi(b[i].qs), eight);
        _mm512_storeu_ps(dst + i * 32, _mm512_mul_ps(i8x16_ps(lo), dv));
        _mm512_storeu_ps(dst + i * 32 + 16, _mm512_mul_ps(i8x16_ps(hi), dv));
    }
}

/* q * d + m as a separate multiply and add, like the reference: the empty
 * asm stops the compiler from fusing them into an FMA (one rounding). */
static inline __m512 mul_then_add(__m512 q, __m512 d, __m512 m)
{
    __m512 f = _mm512_mul_ps(q, d);
    __asm__("" : "+v"(f));
    return _mm512_add_ps(f, m);
}

void aellm_to_float_q4_1_avx512(const void *src, float *dst, int64_t n)
{
    const aellm_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        __m512 dv = _mm512_set1_ps(f16_load(&b[i].d)), mv = _mm512_set1_ps(f16_load(&b[i].m));
        _mm512_storeu_ps(dst + i * 32, mul_then_add(i8x16_ps(nibbles_lo(b[i].qs)), dv, mv));
        _mm512_storeu_ps(dst + i * 32 + 16, mul_then_add(i8x16_ps(nibbles_hi(b[i].qs)), dv, mv));
    }
}
