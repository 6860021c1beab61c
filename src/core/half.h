/* IEEE half and bfloat16 conversions (scalar reference, exact, round to
 * nearest even). SIMD code converts with F16C / AVX-512 instead. */
#ifndef AELLM_CORE_HALF_H
#define AELLM_CORE_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t aellm_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float aellm_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float aellm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return aellm_bits_f32(sign | 0x7f800000 | (man << 13));
    if (exp != 0) return aellm_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
    /* subnormal half: man * 2^-24 */
    float f = (float)man * (1.0f / 16777216.0f);
    return sign ? -f : f;
}

static inline uint16_t aellm_f32_to_f16(float f)
{
    uint32_t x = aellm_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    if (ax >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
    if (ax >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000) {                                  /* below the smallest normal half */
        if (ax < 0x33000000) return (uint16_t)sign;         /* < 2^-25 rounds to 0 */
        uint32_t man = (ax & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(ax >> 23); /* 14..24 */
        uint32_t half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((ax >> 13) - (112u << 10));
    uint32_t rest = ax & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float aellm_bf16_to_f32(uint16_t b)
{
    return aellm_bits_f32((uint32_t)b << 16);
}

static inline uint16_t aellm_f32_to_bf16(float f)
{
    uint32_t x = aellm_f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* FP8 E4M3 (OCP "fn" variant): bias 7, no infinities, 0x7f / 0xff are NaN,
 * largest finite 448. The byte shifted into an IEEE half's exponent and
 * mantissa is the same number times 2^-8, subnormals included. */
static inline float aellm_e4m3_to_f32(uint8_t b)
{
    if ((b & 0x7f) == 0x7f) return NAN;
    uint16_t h = (uint16_t)(((b & 0x7f) << 7) | ((b & 0x80) << 8));
    return aellm_f16_to_f32(h) * 256.0f;
}

/* Round to nearest even, saturating at +-448 (never a NaN byte); NaN -> 0. */
static inline uint8_t aellm_f32_to_e4m3(float f)
{
    uint8_t sign = (uint8_t)((aellm_f32_bits(f) >> 24) & 0x80);
    float a = fabsf(f);
    if (a != a) return 0;
    if (!(a < 448.0f)) return (uint8_t)(sign | 0x7e);
    if (a < 0.015625f) /* subnormal: steps of 2^-9; 8 steps is the smallest normal, 0x08 */
        return (uint8_t)(sign | (int)nearbyintf(a * 512.0f));
    uint32_t u = aellm_f32_bits(a);
    u += 0x7ffff + ((u >> 20) & 1); /* to nearest even on the top 3 mantissa bits */
    uint32_t e = (u >> 23) - 127 + 7, m = (u >> 20) & 7;
    return (uint8_t)(sign | (e << 3) | m);
}

#endif
