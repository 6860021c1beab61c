/* The dtype traits table: block geometry and scalar reference conversions.
 * Quantizers round exactly as llama.cpp's reference ones do, so files written
 * by either tool hold the same bytes. Fast kernels are in src/kernels/. */
#include "aellm/dtype.h"

#include <math.h>
#include <string.h>

#include "core/blocks.h"
#include "core/half.h"

static void f32_to_float(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = aellm_f16_to_f32(h[i]);
}

static void f16_from_float(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = aellm_f32_to_f16(src[i]);
}

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = aellm_bf16_to_f32(h[i]);
}

static void bf16_from_float(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = aellm_f32_to_bf16(src[i]);
}

static void q8_0_to_float(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d = aellm_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[i * QK8_0 + j] = b[i].qs[j] * d;
    }
}

static void q8_0_from_float(const float *src, void *dst, int64_t n)
{
    aellm_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float *x = src + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = aellm_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void q8_1_to_float(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        float d = aellm_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_1; j++) dst[i * QK8_1 + j] = b[i].qs[j] * d;
    }
}

static void q8_1_from_float(const float *src, void *dst, int64_t n)
{
    aellm_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const float *x = src + i * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = aellm_f32_to_f16(d);
        b[i].s = aellm_f32_to_f16((float)sum * d);
    }
}

static void q4_0_to_float(const void *src, float *dst, int64_t n)
{
    const aellm_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        float d = aellm_f16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[i * QK4_0 + j] = ((b[i].qs[j] & 0x0f) - 8) * d;
            dst[i * QK4_0 + j + QK4_0 / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* The scale maps the element of largest magnitude (with its sign) to -8, so
 * the full range [-8, 7] is used on the side that needs it. */
static void q4_0_from_float(const float *src, void *dst, int64_t n)
{
    aellm_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float *x = src + i * QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = aellm_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int q0 = (int)(int8_t)(x[j] * id + 8.5f), q1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q4_1_to_float(const void *src, float *dst, int64_t n)
{
    const aellm_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        float d = aellm_f16_to_f32(b[i].d), m = aellm_f16_to_f32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[i * QK4_1 + j] = (b[i].qs[j] & 0x0f) * d + m;
            dst[i * QK4_1 + j + QK4_1 / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

static void q4_1_from_float(const float *src, void *dst, int64_t n)
{
    aellm_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        const float *x = src + i * QK4_1;
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < QK4_1; j++) min = fminf(min, x[j]), max = fmaxf(max, x[j]);
        float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = aellm_f32_to_f16(d);
        b[i].m = aellm_f32_to_f16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int q0 = (int)(int8_t)((x[j] - min) * id + 0.5f);
            int q1 = (int)(int8_t)((x[j + 16] - min) * id + 0.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- grids of the GGML quantized types ---- */

static float round_f16(float x)
{
    return aellm_f16_to_f32(aellm_f32_to_f16(x));
}

static int clamp_code(float q, int lo, int hi)
{
    int c = (int)nearbyintf(q);
    return c < lo ? lo : c > hi ? hi : c;
}

/* q4_0: the signed element of largest magnitude maps to code 0 (-8). */
static void q4_0_fit(const float *x, int64_t n, aellm_qparams *p)
{
    float amax = 0.0f, max = 0.0f;
    for (int64_t j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    p->scale = round_f16(max / -8.0f);
    p->min = 0.0f;
}

static int q4_0_encode(float x, const aellm_qparams *p)
{
    return p->scale != 0.0f ? clamp_code(x / p->scale + 8.0f, 0, 15) : 8;
}

static float q4_0_decode(int code, const aellm_qparams *p)
{
    return (float)(code - 8) * p->scale;
}

/* Packs len codes (n real, the rest `pad`) as 32-element sub-blocks of 16
 * bytes: element j of a sub-block is the low nibble of byte j (j < 16) or
 * the high nibble of byte j - 16, as in q4_0. */
static void pack_nibbles(const uint8_t *codes, int64_t n, int64_t len, uint8_t pad, uint8_t *qs)
{
    for (int64_t s = 0; s < len; s += 32)
        for (int j = 0; j < 16; j++) {
            int64_t a = s + j, b = s + j + 16;
            uint8_t lo = a < n ? codes[a] : pad, hi = b < n ? codes[b] : pad;
            qs[s / 2 + j] = (uint8_t)(lo | (hi << 4));
        }
}

static void q4_0_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)
{
    aellm_block_q4_0 *b = row;
    for (int64_t i = 0; i * QK4_0 < n; i++) {
        b[i].d = aellm_f32_to_f16(p[i].scale);
        int64_t len = n - i * QK4_0 < QK4_0 ? n - i * QK4_0 : QK4_0;
        pack_nibbles(codes + i * QK4_0, len, QK4_0, 8, b[i].qs);
    }
}

/* q4_1: codes 0..15 span [min, max]. */
static void q4_1_fit(const float *x, int64_t n, aellm_qparams *p)
{
    float min = INFINITY, max = -INFINITY;
    for (int64_t j = 0; j < n; j++) min = fminf(min, x[j]), max = fmaxf(max, x[j]);
    p->scale = round_f16((max - min) / 15.0f);
    p->min = round_f16(min);
}

static int q4_1_encode(float x, const aellm_qparams *p)
{
    return p->scale != 0.0f ? clamp_code((x - p->min) / p->scale, 0, 15) : 0;
}

static float q4_1_decode(int code, const aellm_qparams *p)
{
    return (float)code * p->scale + p->min;
}

static void q4_1_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)
{
    aellm_block_q4_1 *b = row;
    for (int64_t i = 0; i * QK4_1 < n; i++) {
        b[i].d = aellm_f32_to_f16(p[i].scale);
        b[i].m = aellm_f32_to_f16(p[i].min);
        int64_t len = n - i * QK4_1 < QK4_1 ? n - i * QK4_1 : QK4_1;
        uint8_t pad = (uint8_t)q4_1_encode(0.0f, &p[i]);
        pack_nibbles(codes + i * QK4_1, len, QK4_1, pad, b[i].qs);
    }
}

/* q8_0: code = q + 128, q in [-127, 127]. */
static void q8_0_fit(const float *x, int64_t n, aellm_qparams *p)
{
    float amax = 0.0f;
    for (int64_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    p->scale = round_f16(amax / 127.0f);
    p->min = 0.0f;
}

static int q8_0_encode(float x, const aellm_qparams *p)
{
    return p->scale != 0.0f ? clamp_code(x / p->scale, -127, 127) + 128 : 128;
}

static float q8_0_decode(int code, const aellm_qparams *p)
{
    return (float)(code - 128) * p->scale;
}

static void q8_0_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)
{
    aellm_block_q8_0 *b = row;
    for (int64_t i = 0; i * QK8_0 < n; i++) {
        b[i].d = aellm_f32_to_f16(p[i].scale);
        for (int j = 0; j < QK8_0; j++) {
            int64_t k = i * QK8_0 + j;
            b[i].qs[j] = (int8_t)(k < n ? codes[k] - 128 : 0);
        }
    }
}

static const aellm_dtype_grid q4_0_grid = {QK4_0,       16,          q4_0_fit,
                                           q4_0_encode, q4_0_decode, q4_0_pack};
static const aellm_dtype_grid q4_1_grid = {QK4_1,       16,          q4_1_fit,
                                           q4_1_encode, q4_1_decode, q4_1_pack};
static const aellm_dtype_grid q8_0_grid = {QK8_0,       256,         q8_0_fit,
                                           q8_0_encode, q8_0_decode, q8_0_pack};

static const aellm_dtype_traits traits[AELLM_DTYPE_MAX] = {
    [AELLM_DTYPE_F32] = {.name = "f32",
                         .block_size = 1,
                         .type_size = 4,
                         .to_float = f32_to_float,
                         .from_float = f32_from_float},
    [AELLM_DTYPE_F16] = {.name = "f16",
                         .block_size = 1,
                         .type_size = 2,
                         .to_float = f16_to_float,
                         .from_float = f16_from_float},
    [AELLM_DTYPE_BF16] = {.name = "bf16",
                          .block_size = 1,
                          .type_size = 2,
                          .to_float = bf16_to_float,
                          .from_float = bf16_from_float},
    [AELLM_DTYPE_Q8_0] = {.name = "q8_0",
                          .block_size = QK8_0,
                          .type_size = sizeof(aellm_block_q8_0),
                          .to_float = q8_0_to_float,
                          .from_float = q8_0_from_float,
                          .grid = &q8_0_grid},
    [AELLM_DTYPE_Q8_1] = {.name = "q8_1",
                          .block_size = QK8_1,
                          .type_size = sizeof(aellm_block_q8_1),
                          .to_float = q8_1_to_float,
                          .from_float = q8_1_from_float},
    [AELLM_DTYPE_Q4_0] = {.name = "q4_0",
                          .block_size = QK4_0,
                          .type_size = sizeof(aellm_block_q4_0),
                          .to_float = q4_0_to_float,
                          .from_float = q4_0_from_float,
                          .grid = &q4_0_grid},
    [AELLM_DTYPE_Q4_1] = {.name = "q4_1",
                          .block_size = QK4_1,
                          .type_size = sizeof(aellm_block_q4_1),
                          .to_float = q4_1_to_float,
                          .from_float = q4_1_from_float,
                          .grid = &q4_1_grid},
};

const aellm_dtype_traits *aellm_dtype_traits_get(int type)
{
    if (type < 0 || type >= AELLM_DTYPE_MAX || traits[type].name == NULL) return NULL;
    return &traits[type];
}

int aellm_dtype_from_name(const char *name)
{
    for (int t = 0; t < AELLM_DTYPE_MAX; t++)
        if (traits[t].name && strcmp(traits[t].name, name) == 0) return t;
    return -1;
}

size_t aellm_dtype_row_size(int type, int64_t n)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    if (!tr || n < 0 || (!tr->partial && n % tr->block_size != 0)) return 0;
    return tr->row_header + (size_t)((n + tr->block_size - 1) / tr->block_size) * tr->type_size;
}

int64_t aellm_dtype_padded(int type, int64_t n)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    if (!tr) return n;
    return (n + tr->block_size - 1) / tr->block_size * tr->block_size;
}
