/* Attention kernels over a KV cache stored as f32, f16 or q8_0: writing a
 * head's keys/values in the cache type, dequantizing them for prefill's
 * sgemms, and decode's two passes over the cache (q.K for every position,
 * then the weighted sum of V) read straight from the stored type, without
 * expanding the cache. Softmax and the loop over heads are the engine's.
 *
 * Cache layout, per position and layer: n_kv_heads heads, each
 * aellm_attn_head_bytes(type, head_dim) bytes. q8_0 heads are blocks of
 * aellm_attn_q8_block(head_dim) elements, each an IEEE-half scale then that
 * many int8 (x = d * q, d = amax / 127, llama.cpp's rounding). With 32-element
 * blocks (head_dim a multiple of 32) that is exactly llama.cpp's q8_0 row;
 * smaller heads get smaller blocks so that a block never spans two heads and
 * a cache row never pads (stories260K pooled to one KV head: head_dim 8,
 * blocks of 8, 10 bytes a head instead of a 34-byte padded block). */
#ifndef AELLM_KERNELS_ATTENTION_H
#define AELLM_KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* Whether `type` may be a KV cache type (f32, f16, q8_0). */
int aellm_attn_type_ok(int type);

/* Elements per q8_0 scale block of a head: 32 when it divides head_dim, else
 * the largest power of two that does. */
int aellm_attn_q8_block(int head_dim);

/* Bytes of one head of head_dim elements in `type`. */
size_t aellm_attn_head_bytes(int type, int head_dim);

/* Writes n_heads heads of f32 values x (n_heads * head_dim) to dst in `type`. */
void aellm_attn_store(int type, int head_dim, int n_heads, const float *x, void *dst);

/* Dequantizes one head at n positions (src, src + stride, ...) into rows of
 * dst, ld floats apart: dst[p * ld + i] = element i at position p. */
void aellm_attn_load(int type, int head_dim, const void *src, size_t stride, int n, float *dst,
                     size_t ld);

/* out[p] = scale * (q . K_p) for p < n, K_p the head at k + p * stride. */
typedef void (*aellm_attn_scores_fn)(int head_dim, const float *q, const void *k, size_t stride,
                                     int n, float scale, float *out);
/* out[i] = sum_{p < n} a[p] * V_p[i], V_p the head at v + p * stride. */
typedef void (*aellm_attn_accum_fn)(int head_dim, const float *a, const void *v, size_t stride,
                                    int n, float *out);

typedef struct {
    aellm_attn_scores_fn scores;
    aellm_attn_accum_fn accum;
} aellm_attn_kernels;

/* The kernels of `type` on `isa` (for tests: every ISA the CPU runs), or
 * NULL for a type that cannot be a KV cache. The best for this CPU: */
const aellm_attn_kernels *aellm_attn_kernels_isa(int type, aellm_isa isa);
const aellm_attn_kernels *aellm_attn_kernels_get(int type);

/* ---- per-ISA entry points, for the table in attention.c ---- */
#define AELLM_ATTN_DECLARE(isa)                                                                    \
    void aellm_attn_scores_f32_##isa(int, const float *, const void *, size_t, int, float,         \
                                     float *);                                                     \
    void aellm_attn_scores_f16_##isa(int, const float *, const void *, size_t, int, float,         \
                                     float *);                                                     \
    void aellm_attn_scores_q8_0_##isa(int, const float *, const void *, size_t, int, float,        \
                                      float *);                                                    \
    void aellm_attn_accum_f32_##isa(int, const float *, const void *, size_t, int, float *);       \
    void aellm_attn_accum_f16_##isa(int, const float *, const void *, size_t, int, float *);       \
    void aellm_attn_accum_q8_0_##isa(int, const float *, const void *, size_t, int, float *);
AELLM_ATTN_DECLARE(scalar)
AELLM_ATTN_DECLARE(avx2)
AELLM_ATTN_DECLARE(avx512)
#undef AELLM_ATTN_DECLARE

#endif
