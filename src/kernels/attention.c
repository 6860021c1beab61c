/* Attention over a typed KV cache: cache geometry, the writer and the
 * prefill dequantizer, the scalar reference kernels and the per-ISA table.
 * The SIMD kernels are in attention_avx2.c / attention_avx512.c. */
#include "kernels/attention.h"

#include <math.h>
#include <string.h>

#include "core/blocks.h"
#include "core/half.h"

int aellm_attn_type_ok(int type)
{
    return type == AELLM_DTYPE_F32 || type == AELLM_DTYPE_F16 || type == AELLM_DTYPE_Q8_0;
}

int aellm_attn_q8_block(int head_dim)
{
    int qb = 32;
    while (head_dim % qb) qb /= 2;
    return qb;
}

size_t aellm_attn_head_bytes(int type, int head_dim)
{
    if (type == AELLM_DTYPE_F32) return (size_t)head_dim * sizeof(float);
    if (type == AELLM_DTYPE_F16) return (size_t)head_dim * sizeof(uint16_t);
    if (type == AELLM_DTYPE_Q8_0) {
        int qb = aellm_attn_q8_block(head_dim);
        return (size_t)(head_dim / qb) * (sizeof(uint16_t) + (size_t)qb);
    }
    return 0;
}

/* ---- q8_0 heads with blocks of qb: [f16 d][qb x int8] ... ---- */

static float q8_scale(const uint8_t *blk)
{
    uint16_t d;
    memcpy(&d, blk, sizeof(d));
    return aellm_f16_to_f32(d);
}

/* llama.cpp's q8_0 rounding (src/core/dtype.c) for a block of any size. */
static void q8_store_block(const float *x, int qb, uint8_t *blk)
{
    float amax = 0.0f;
    for (int j = 0; j < qb; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t h = aellm_f32_to_f16(d);
    memcpy(blk, &h, sizeof(h));
    int8_t *qs = (int8_t *)(blk + sizeof(h));
    for (int j = 0; j < qb; j++) qs[j] = (int8_t)roundf(x[j] * id);
}

static void q8_load_head(int hd, const uint8_t *src, float *dst)
{
    int qb = aellm_attn_q8_block(hd);
    for (int b = 0; b < hd / qb; b++, src += 2 + qb) {
        float d = q8_scale(src);
        const int8_t *qs = (const int8_t *)(src + 2);
        for (int j = 0; j < qb; j++) dst[b * qb + j] = d * (float)qs[j];
    }
}

void aellm_attn_store(int type, int head_dim, int n_heads, const float *x, void *dst)
{
    int64_t n = (int64_t)head_dim * n_heads;
    int qb = aellm_attn_q8_block(head_dim);
    /* whole-row conversions where the layout is the dtype's own (the fast
     * converters are byte-identical to the references, kernels tests) */
    if (type != AELLM_DTYPE_Q8_0 || qb == QK8_0) {
        aellm_kernel_from_float(type)(x, dst, n);
        return;
    }
    uint8_t *out = dst;
    for (int64_t i = 0; i < n; i += qb, out += 2 + qb) q8_store_block(x + i, qb, out);
}

void aellm_attn_load(int type, int head_dim, const void *src, size_t stride, int n, float *dst,
                     size_t ld)
{
    const char *s = src;
    int fast = type != AELLM_DTYPE_Q8_0 || aellm_attn_q8_block(head_dim) == QK8_0;
    aellm_to_float_fn to_float = fast ? aellm_kernel_to_float(type) : NULL;
    for (int p = 0; p < n; p++, s += stride, dst += ld) {
        if (to_float)
            to_float(s, dst, head_dim);
        else
            q8_load_head(head_dim, (const uint8_t *)s, dst);
    }
}

/* ---- scalar reference kernels ---- */

void aellm_attn_scores_f32_scalar(int hd, const float *q, const void *k, size_t stride, int n,
                                  float scale, float *out)
{
    for (int p = 0; p < n; p++) {
        const float *kp = (const float *)((const char *)k + (size_t)p * stride);
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * kp[i];
        out[p] = s * scale;
    }
}

void aellm_attn_scores_f16_scalar(int hd, const float *q, const void *k, size_t stride, int n,
                                  float scale, float *out)
{
    for (int p = 0; p < n; p++) {
        const uint16_t *kp = (const uint16_t *)((const char *)k + (size_t)p * stride);
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * aellm_f16_to_f32(kp[i]);
        out[p] = s * scale;
    }
}

void aellm_attn_scores_q8_0_scalar(int hd, const float *q, const void *k, size_t stride, int n,
                                   float scale, float *out)
{
    int qb = aellm_attn_q8_block(hd);
    for (int p = 0; p < n; p++) {
        const uint8_t *blk = (const uint8_t *)k + (size_t)p * stride;
        float s = 0.0f;
        for (int b = 0; b < hd / qb; b++, blk += 2 + qb) {
            const int8_t *qs = (const int8_t *)(blk + 2);
            float sb = 0.0f;
            for (int j = 0; j < qb; j++) sb += q[b * qb + j] * (float)qs[j];
            s += q8_scale(blk) * sb;
        }
        out[p] = s * scale;
    }
}

void aellm_attn_accum_f32_scalar(int hd, const float *a, const void *v, size_t stride, int n,
                                 float *out)
{
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int p = 0; p < n; p++) {
        const float *vp = (const float *)((const char *)v + (size_t)p * stride);
        for (int i = 0; i < hd; i++) out[i] += a[p] * vp[i];
    }
}

void aellm_attn_accum_f16_scalar(int hd, const float *a, const void *v, size_t stride, int n,
                                 float *out)
{
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int p = 0; p < n; p++) {
        const uint16_t *vp = (const uint16_t *)((const char *)v + (size_t)p * stride);
        for (int i = 0; i < hd; i++) out[i] += a[p] * aellm_f16_to_f32(vp[i]);
    }
}

void aellm_attn_accum_q8_0_scalar(int hd, const float *a, const void *v, size_t stride, int n,
                                  float *out)
{
    int qb = aellm_attn_q8_block(hd);
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int p = 0; p < n; p++) {
        const uint8_t *blk = (const uint8_t *)v + (size_t)p * stride;
        for (int b = 0; b < hd / qb; b++, blk += 2 + qb) {
            const int8_t *qs = (const int8_t *)(blk + 2);
            float w = a[p] * q8_scale(blk);
            for (int j = 0; j < qb; j++) out[b * qb + j] += w * (float)qs[j];
        }
    }
}

/* ---- dispatch ---- */

#define KERNELS(type)                                                                              \
    {                                                                                              \
        {aellm_attn_scores_##type##_scalar, aellm_attn_accum_##type##_scalar},                     \
            {aellm_attn_scores_##type##_avx2, aellm_attn_accum_##type##_avx2},                     \
            {aellm_attn_scores_##type##_avx512, aellm_attn_accum_##type##_avx512},                 \
    }

static const aellm_attn_kernels table[3][AELLM_ISA_COUNT] = {KERNELS(f32), KERNELS(f16),
                                                             KERNELS(q8_0)};

const aellm_attn_kernels *aellm_attn_kernels_isa(int type, aellm_isa isa)
{
    int t = type == AELLM_DTYPE_F32 ? 0 : type == AELLM_DTYPE_F16 ? 1 : 2;
    if (!aellm_attn_type_ok(type) || (int)isa < 0 || isa >= AELLM_ISA_COUNT) return NULL;
    return &table[t][isa];
}

const aellm_attn_kernels *aellm_attn_kernels_get(int type)
{
    return aellm_attn_kernels_isa(type, aellm_cpu_isa());
}
