/* AVX2 conversions: activation quantizers whose bytes equal the scalar
 * references of src/core/dtype.c, and exact dequantizers for every type.
 * Weight-only quantizers (q4_0, q4_1) are not here: they run once, offline. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/simd_avx2.h"

/* ---- quantizers ----------------------------------------------------------- */

void aellm_from_float_f32_avx2(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* F16C rounds to nearest even like aellm_f32_to_f16, overflow to inf
 * included; only NaN payloads could differ, and activations carry none. */
void aellm_from_float_f16_avx2(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = aellm_f32_to_f16(src[i]);
}

/* Round to nearest even on the top 16 bits; NaNs are kept quiet. */
static inline __m256i bf16_round(__m256 v)
{
    __m256i x = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    __m256i nan = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000));
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, q, nan);
}

void aellm_from_float_bf16_avx2(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_round(_mm256_loadu_ps(src + i));
        __m256i b = bf16_round(_mm256_loadu_ps(src + i + 8));
        /* packus works within 128-bit lanes; the permute restores order. */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(h + i), p);
    }
    for (; i < n; i++) h[i] = aellm_f32_to_bf16(src[i]);
}

/* roundf: to nearest, ties away from zero. Exact for any float: the
 * fraction v - trunc(v) is exact, and so is adding +-1 to an integer. */
static inline __m256 round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* One block of 32: the reference's amax (fmaxf ignores a NaN the same way as
 * max_ps with the running max second), d = amax / 127, id = 1 / d unrounded,
 * q = roundf(x * id). Returns d and writes q; *sum gets sum(q). */
static inline float q8_block(const float *x, int8_t *qs, int *sum)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), amax);
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float d = _mm_cvtss_f32(m) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v[k], idv)));
    if (sum)
        *sum = hsum_epi32(
            _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    /* The packs interleave 128-bit lanes; the permute puts 4-byte groups back. */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p);
    return d;
}

void aellm_from_float_q8_0_avx2(const float *src, void *dst, int64_t n)
{
    aellm_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d = q8_block(src + i * QK8_0, b[i].qs, NULL);
        b[i].d = aellm_f32_to_f16(d);
    }
}

void aellm_from_float_q8_1_avx2(const float *src, void *dst, int64_t n)
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

void aellm_to_float_f32_avx2(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void aellm_to_float_f16_avx2(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) dst[i] = aellm_f16_to_f32(h[i]);
}

void aellm_to_float_bf16_avx2(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) dst[i] = aellm_bf16_to_f32(h[i]);
}

/* 32 int8 quants times d, in element order. */
static inline void store_q8_times(const int8_t *qs, float d, float *dst)
{
    __m256 dv = _mm256_set1_ps(d);
    for (int k = 0; k < 4; k++) {
        __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * k)));
        _mm256_storeu_ps(dst + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), dv));
    }
}

void aellm_to_float_q8_0_avx2(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++)
        store_q8_times(b[i].qs, f16_load(&b[i].d), dst + i * 32);
}

void aellm_to_float_q8_1_avx2(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++)
        store_q8_times(b[i].qs, f16_load(&b[i].d), dst + i * 32);
}

/* Bytes 8k..8k+7 of q, sign-extended, as floats (exact). */
static inline __m256 i8_group_ps(__m256i q, int k)
{
    __m128i half = k < 2 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
    if (k & 1) half = _mm_srli_si128(half, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(half));
}

void aellm_to_float_q4_0_avx2(const void *src, float *dst, int64_t n)
{
    const aellm_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        __m256i q = _mm256_sub_epi8(unpack_nibbles(b[i].qs), _mm256_set1_epi8(8));
        __m256 dv = _mm256_set1_ps(f16_load(&b[i].d));
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(dst + i * 32 + 8 * k, _mm256_mul_ps(i8_group_ps(q, k), dv));
    }
}

/* q * d + m with a separate multiply and add, as the reference computes it:
 * the empty asm keeps the compiler from fusing them into one FMA, which
 * would round once instead of twice and break exactness. */
void aellm_to_float_q4_1_avx2(const void *src, float *dst, int64_t n)
{
    const aellm_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        __m256i q = unpack_nibbles(b[i].qs);
        __m256 dv = _mm256_set1_ps(f16_load(&b[i].d)), mv = _mm256_set1_ps(f16_load(&b[i].m));
        for (int k = 0; k < 4; k++) {
            __m256 f = _mm256_mul_ps(i8_group_ps(q, k), dv);
            __asm__("" : "+x"(f));
            _mm256_storeu_ps(dst + i * 32 + 8 * k, _mm256_add_ps(f, mv));
        }
    }
}
