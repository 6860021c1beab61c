/* Small deterministic random numbers (xorshift64*): the same seed gives the
 * same stream on every machine. Not for cryptography. */
#ifndef AELLM_CORE_RNG_H
#define AELLM_CORE_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t state;
} aellm_rng;

static inline void aellm_rng_seed(aellm_rng *r, uint64_t seed)
{
    r->state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static inline uint64_t aellm_rng_u64(aellm_rng *r)
{
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, 1) with 24 bits. */
static inline float aellm_rng_f32(aellm_rng *r)
{
    return (float)(aellm_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal (Box-Muller). */
static inline float aellm_rng_normal(aellm_rng *r)
{
    float u1 = aellm_rng_f32(r), u2 = aellm_rng_f32(r);
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

#endif
