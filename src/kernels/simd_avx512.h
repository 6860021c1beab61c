/* Small AVX-512 helpers shared by the *_avx512.c kernels; include only from
 * files compiled with -mavx512f/bw/vl/dq/vnni. Mirrors simd_avx2.h. */
#ifndef AELLM_KERNELS_SIMD_AVX512_H
#define AELLM_KERNELS_SIMD_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* IEEE half at p (any alignment) to float, exactly, with F16C. */
static inline float f16_load(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 16 bytes of q4 nibbles to 32 bytes 0..15 in element order (low nibbles
 * are elements 0..15, high ones 16..31). */
static inline __m256i unpack_nibbles_256(const uint8_t *qs)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* Two 32-byte block payloads side by side in one zmm. */
static inline __m512i pair_si512(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m256i load_si256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* A scale per 256-bit half: lanes 0..7 get lo, lanes 8..15 get hi. */
static inline __m512 pair_ps(float lo, float hi)
{
    return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
}

/* Exact dot of unsigned bytes (q4 nibbles, or |w|) with signed bytes, as 16
 * int32 lanes, each the sum of four products: VNNI never saturates. */
static inline __m512i dot_u8s8(__m512i u, __m512i s)
{
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
}

/* Signed by signed: |a| against b negated where a < 0 (where a is 0, |a| is
 * 0 and the product vanishes either way). */
static inline __m512i dot_s8s8(__m512i a, __m512i b)
{
    __mmask64 neg = _mm512_movepi8_mask(a);
    return dot_u8s8(_mm512_abs_epi8(a), _mm512_mask_sub_epi8(b, neg, _mm512_setzero_si512(), b));
}

/* 16 E4M3 bytes to floats divided by 256 (exact; see simd_avx2.h). */
static inline __m512 fp8_decode16(__m128i bytes)
{
    __m256i v = _mm256_cvtepi8_epi16(bytes);
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(v, 7), _mm256_set1_epi16((short)0xbf80));
    return _mm512_cvtph_ps(h);
}

/* 16 NF4 codes (nibbles in int32 lanes) to values: one 16-entry permute. */
static inline __m512 nf4_lookup(__m512i idx, __m512 table)
{
    return _mm512_permutexvar_ps(idx, table);
}

#endif
