/* AVX-512 conversions of aellm's own weight formats, mirroring
 * convert_wq_avx2.c: exact dequantizers, and the INT8 activation quantizer
 * byte-identical to the reference. Tails use masked loads and stores. */
#include "kernels/kernels_impl.h"

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/simd_avx512.h"

static inline __mmask16 mask_of(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static inline __m512 i8x16_ps(__m128i q)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
}

/* q * d + m as a multiply then an add, like the reference (no FMA). */
static inline __m512 mul_then_add(__m512 q, __m512 d, __m512 m)
{
    __m512 f = _mm512_mul_ps(q, d);
    __asm__("" : "+v"(f));
    return _mm512_add_ps(f, m);
}

/* One INT4 group, the 16 elements starting at `e` (masked by `left`): a
 * sub-block's low nibbles (e % 32 == 0) or its high ones. */
static inline void int4_16(const uint8_t *blk, float *dst, int64_t e, int64_t left, int asym)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(blk + aellm_int4_qoff(asym) + e / 32 * 16));
    if (e % 32) v = _mm_srli_epi16(v, 4);
    v = _mm_and_si128(v, _mm_set1_epi8(0x0f));
    __m512 d = _mm512_set1_ps(f16_load(blk)), f;
    if (asym)
        f = mul_then_add(i8x16_ps(v), d, _mm512_set1_ps(f16_load(blk + 2)));
    else
        f = _mm512_mul_ps(i8x16_ps(_mm_sub_epi8(v, _mm_set1_epi8(8))), d);
    _mm512_mask_storeu_ps(dst, mask_of(left), f);
}

static inline void int4_to_float(const void *src, float *dst, int64_t n, int64_t g, int asym)
{
    const uint8_t *blk = src;
    for (int64_t i = 0; i * g < n; i++, blk += aellm_int4_block_bytes(g, asym))
        for (int64_t e = 0; e < g && i * g + e < n; e += 16)
            int4_16(blk, dst + i * g + e, e, n - i * g - e, asym);
}

#define INT4_TO_FLOAT(name, g, asym)                                                               \
    void aellm_to_float_##name##_avx512(const void *src, float *dst, int64_t n)                    \
    {                                                                                              \
        int4_to_float(src, dst, n, g, asym);                                                       \
    }

INT4_TO_FLOAT(int4s_g32, 32, 0)
INT4_TO_FLOAT(int4s_g64, 64, 0)
INT4_TO_FLOAT(int4s_g128, 128, 0)
INT4_TO_FLOAT(int4a_g32, 32, 1)
INT4_TO_FLOAT(int4a_g64, 64, 1)
INT4_TO_FLOAT(int4a_g128, 128, 1)

void aellm_to_float_nf4_avx512(const void *src, float *dst, int64_t n)
{
    const aellm_block_nf4 *b = src;
    const __m512 table = _mm512_loadu_ps(aellm_nf4_codebook);
    for (int64_t i = 0; i * QK_NF4 < n; i++) {
        __m512 d = _mm512_set1_ps(f16_load(&b[i].d));
        for (int64_t e = 0; e < QK_NF4 && i * QK_NF4 + e < n; e += 16) {
            __m512i c =
                _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b[i].qs + e / 32 * 16)));
            c = e % 32 ? _mm512_srli_epi32(c, 4) : _mm512_and_si512(c, _mm512_set1_epi32(0x0f));
            _mm512_mask_storeu_ps(dst + i * QK_NF4 + e, mask_of(n - i * QK_NF4 - e),
                                  _mm512_mul_ps(nf4_lookup(c, table), d));
        }
    }
}

void aellm_to_float_int8_g32_avx512(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_0 *b = src;
    for (int64_t i = 0; i * QK8_0 < n; i++) {
        __m512 d = _mm512_set1_ps(f16_load(&b[i].d));
        for (int64_t e = 0; e < QK8_0 && i * QK8_0 + e < n; e += 16)
            _mm512_mask_storeu_ps(
                dst + i * QK8_0 + e, mask_of(n - i * QK8_0 - e),
                _mm512_mul_ps(i8x16_ps(_mm_loadu_si128((const __m128i *)(b[i].qs + e))), d));
    }
}

static inline float row_scale(const void *row)
{
    float s;
    memcpy(&s, row, sizeof(s));
    return s;
}

void aellm_to_float_fp8_e4m3_avx512(const void *src, float *dst, int64_t n)
{
    const uint8_t *q = (const uint8_t *)src + sizeof(float);
    const __m512 s = _mm512_set1_ps(row_scale(src)), k256 = _mm512_set1_ps(256.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask_of(n - i);
        __m512 f = _mm512_mul_ps(fp8_decode16(_mm_maskz_loadu_epi8(m, q + i)), k256);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(s, f));
    }
}

void aellm_to_float_int8_avx512(const void *src, float *dst, int64_t n)
{
    const int8_t *q = (const int8_t *)src + sizeof(float);
    const __m512 s = _mm512_set1_ps(row_scale(src));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask_of(n - i);
        _mm512_mask_storeu_ps(dst + i, m,
                              _mm512_mul_ps(i8x16_ps(_mm_maskz_loadu_epi8(m, q + i)), s));
    }
}

/* Per token: s = amax / 127, q = x * (1 / s) rounded to nearest even, as
 * the reference (cvtps under the default rounding mode = nearbyintf). */
void aellm_from_float_int8_avx512(const float *src, void *dst, int64_t n)
{
    __m512 m = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16)
        m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mask_of(n - i), src + i)), m);
    float amax = _mm512_reduce_max_ps(m);
    float s = amax / 127.0f, id = s != 0.0f ? 1.0f / s : 0.0f;
    memcpy(dst, &s, sizeof(s));
    int8_t *q = (int8_t *)dst + sizeof(float);
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = mask_of(n - i);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, src + i), idv));
        v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
        _mm_mask_storeu_epi8(q + i, k, _mm512_cvtsepi32_epi8(v));
    }
}
