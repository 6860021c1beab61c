/* Small AVX2 helpers shared by the *_avx2.c kernels; include only from files
 * compiled with -mavx2 -mfma -mf16c. Not a general SIMD wrapper library. */
#ifndef AELLM_KERNELS_SIMD_AVX2_H
#define AELLM_KERNELS_SIMD_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* IEEE half at p (any alignment) to float, exactly, with F16C. */
static inline float f16_load(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 16 bytes of q4 nibbles to 32 bytes 0..15 in element order: the low
 * nibbles are elements 0..15, the high ones 16..31. */
static inline __m256i unpack_nibbles(const uint8_t *qs)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* Exact dot of 32 unsigned bytes (< 128 after any sign trick) with 32 signed
 * bytes, as 8 int32 partial sums. maddubs cannot saturate: every caller's
 * unsigned operand is at most 15, or 128 with a signed operand of at most
 * 127 in magnitude, so a pair sums to at most 2 * 128 * 127 < 32767. */
static inline __m256i dot_u8s8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* Signed by signed: |a| against b carrying a's sign (the sign trick). */
static inline __m256i dot_s8s8(__m256i a, __m256i b)
{
    return dot_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* Codes 0..15 (one per int32 lane) to NF4 values: two 8-entry permutes,
 * and bit 3 of the code (moved to the sign bit) picks between them. */
static inline __m256 nf4_lookup(__m256i idx, __m256 lo8, __m256 hi8)
{
    __m256 a = _mm256_permutevar8x32_ps(lo8, idx), b = _mm256_permutevar8x32_ps(hi8, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

/* 16 E4M3 bytes to floats divided by 256 (exact, subnormals included): each
 * byte's exponent and mantissa moved into an IEEE half's, then F16C. The
 * byte is sign-extended, so after the shift by 7 its sign fills bits 15 and
 * 14; the mask keeps bit 15 (the half's sign) and the 7 value bits. The NaN
 * bytes 0x7f / 0xff come out as 480 / 256; no encoder writes them. */
static inline void fp8_decode16(__m128i bytes, __m256 *f0, __m256 *f1)
{
    __m256i v = _mm256_cvtepi8_epi16(bytes);
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(v, 7), _mm256_set1_epi16((short)0xbf80));
    *f0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *f1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

#endif
