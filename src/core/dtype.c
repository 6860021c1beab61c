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

/* Clamped before the conversion: a float outside int's range (an overflowed
 * scale) or NaN is undefined behaviour cast to int; NaN gives lo, as the
 * SIMD paths' INT_MIN does once clamped. */
static int clamp_code(float q, int lo, int hi)
{
    if (!(q >= (float)lo)) return lo;
    if (q > (float)hi) return hi;
    return (int)nearbyintf(q);
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

/* ---- aellm's weight formats ------------------------------------------------
 * Rows are converted one at a time (n any length): a row is a header (the
 * per-row scale of fp8_e4m3 and int8) and ceil(n / group) groups, the last
 * one padded with encode(0). from_float is the grid's round to nearest:
 * fit, encode and pack, group by group. */

/* Nibble of element j (0 <= j < group) of a group's qs: sub-block j / 32,
 * then q4_0's order within it. */
static int nibble_at(const uint8_t *qs, int64_t j)
{
    uint8_t byte = qs[j / 32 * 16 + j % 16];
    return j % 32 < 16 ? byte & 0x0f : byte >> 4;
}

static int64_t group_len(int64_t n, int64_t i, int64_t g)
{
    return n - i * g < g ? n - i * g : g;
}

/* Generic INT4 group row (q4_0 / q4_1 arithmetic at any group size). */
static void int4_to_float(const void *src, float *dst, int64_t n, int64_t g, int asym)
{
    const uint8_t *blk = src;
    size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    for (int64_t i = 0; i * g < n; i++, blk += bytes) {
        uint16_t h[2];
        memcpy(h, blk, asym ? 4 : 2);
        float d = aellm_f16_to_f32(h[0]), m = asym ? aellm_f16_to_f32(h[1]) : 0.0f;
        const uint8_t *qs = blk + aellm_int4_qoff(asym);
        for (int64_t j = 0; j < group_len(n, i, g); j++) {
            int q = nibble_at(qs, j);
            dst[i * g + j] = asym ? (float)q * d + m : (float)(q - 8) * d;
        }
    }
}

static void int4_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row, int64_t g,
                      int asym)
{
    uint8_t *blk = row;
    size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    for (int64_t i = 0; i * g < n; i++, blk += bytes) {
        uint16_t h[2] = {aellm_f32_to_f16(p[i].scale), aellm_f32_to_f16(p[i].min)};
        memcpy(blk, h, asym ? 4 : 2);
        uint8_t pad = (uint8_t)(asym ? q4_1_encode(0.0f, &p[i]) : q4_0_encode(0.0f, &p[i]));
        pack_nibbles(codes + i * g, group_len(n, i, g), g, pad, blk + aellm_int4_qoff(asym));
    }
}

/* Round to nearest on a group grid: fit, encode and pack each group. */
static void grid_from_float(const aellm_dtype_grid *grid, const float *src, void *dst, int64_t n,
                            size_t group_bytes)
{
    uint8_t codes[AELLM_INT4_MAX_GROUP];
    int64_t g = grid->group;
    for (int64_t i = 0; i * g < n; i++) {
        const float *x = src + i * g;
        int64_t len = group_len(n, i, g);
        aellm_qparams p;
        grid->fit(x, len, &p);
        for (int64_t j = 0; j < len; j++) codes[j] = (uint8_t)grid->encode(x[j], &p);
        grid->pack(codes, &p, len, (uint8_t *)dst + (size_t)i * group_bytes);
    }
}

#define INT4_TYPE(name, g, asym, fit, enc, dec)                                                    \
    static void name##_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)    \
    {                                                                                              \
        int4_pack(codes, p, n, row, g, asym);                                                      \
    }                                                                                              \
    static const aellm_dtype_grid name##_grid = {g, 16, fit, enc, dec, name##_pack};               \
    static void name##_to_float(const void *src, float *dst, int64_t n)                            \
    {                                                                                              \
        int4_to_float(src, dst, n, g, asym);                                                       \
    }                                                                                              \
    static void name##_from_float(const float *src, void *dst, int64_t n)                          \
    {                                                                                              \
        grid_from_float(&name##_grid, src, dst, n, (size_t)aellm_int4_block_bytes(g, asym));       \
    }

INT4_TYPE(int4s_g32, 32, 0, q4_0_fit, q4_0_encode, q4_0_decode)
INT4_TYPE(int4s_g64, 64, 0, q4_0_fit, q4_0_encode, q4_0_decode)
INT4_TYPE(int4s_g128, 128, 0, q4_0_fit, q4_0_encode, q4_0_decode)
INT4_TYPE(int4a_g32, 32, 1, q4_1_fit, q4_1_encode, q4_1_decode)
INT4_TYPE(int4a_g64, 64, 1, q4_1_fit, q4_1_encode, q4_1_decode)
INT4_TYPE(int4a_g128, 128, 1, q4_1_fit, q4_1_encode, q4_1_decode)

/* int8_g32: q8_0's blocks and grid, for rows that end in a partial block. */
static void int8_g32_to_float(const void *src, float *dst, int64_t n)
{
    const aellm_block_q8_0 *b = src;
    for (int64_t i = 0; i * QK8_0 < n; i++) {
        float d = aellm_f16_to_f32(b[i].d);
        for (int64_t j = 0; j < group_len(n, i, QK8_0); j++) dst[i * QK8_0 + j] = b[i].qs[j] * d;
    }
}

static void int8_g32_from_float(const float *src, void *dst, int64_t n)
{
    grid_from_float(&q8_0_grid, src, dst, n, sizeof(aellm_block_q8_0));
}

/* ---- nf4 ---- */

const float aellm_nf4_codebook[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

static void nf4_fit(const float *x, int64_t n, aellm_qparams *p)
{
    float amax = 0.0f;
    for (int64_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    p->scale = round_f16(amax);
    p->min = 0.0f;
}

/* The nearest value; a tie goes to the lower code. */
static int nf4_encode(float x, const aellm_qparams *p)
{
    if (p->scale == 0.0f) return 7;
    float v = x / p->scale, best = INFINITY;
    int code = 7;
    for (int k = 0; k < 16; k++)
        if (fabsf(v - aellm_nf4_codebook[k]) < best)
            best = fabsf(v - aellm_nf4_codebook[k]), code = k;
    return code;
}

static float nf4_decode(int code, const aellm_qparams *p)
{
    return aellm_nf4_codebook[code] * p->scale;
}

static void nf4_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)
{
    aellm_block_nf4 *b = row;
    for (int64_t i = 0; i * QK_NF4 < n; i++) {
        b[i].d = aellm_f32_to_f16(p[i].scale);
        pack_nibbles(codes + i * QK_NF4, group_len(n, i, QK_NF4), QK_NF4, 7, b[i].qs);
    }
}

static const aellm_dtype_grid nf4_grid = {QK_NF4, 16, nf4_fit, nf4_encode, nf4_decode, nf4_pack};

static void nf4_to_float(const void *src, float *dst, int64_t n)
{
    const aellm_block_nf4 *b = src;
    for (int64_t i = 0; i * QK_NF4 < n; i++) {
        float d = aellm_f16_to_f32(b[i].d);
        for (int64_t j = 0; j < group_len(n, i, QK_NF4); j++)
            dst[i * QK_NF4 + j] = aellm_nf4_codebook[nibble_at(b[i].qs, j)] * d;
    }
}

static void nf4_from_float(const float *src, void *dst, int64_t n)
{
    grid_from_float(&nf4_grid, src, dst, n, sizeof(aellm_block_nf4));
}

/* ---- per-row scale: fp8_e4m3 and int8 ----
 * A row is an f32 scale s and one byte per element; the grid's group is the
 * whole row. Codes: fp8 bytes as they are; int8 q + 128. */

static float amax_of(const float *x, int64_t n)
{
    float amax = 0.0f;
    for (int64_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

static float row_scale(const void *row)
{
    float s;
    memcpy(&s, row, sizeof(s));
    return s;
}

static void fp8_fit(const float *x, int64_t n, aellm_qparams *p)
{
    p->scale = amax_of(x, n) / 448.0f;
    p->min = 0.0f;
}

static int fp8_encode(float x, const aellm_qparams *p)
{
    return p->scale != 0.0f ? aellm_f32_to_e4m3(x / p->scale) : 0;
}

/* Codes 0x7f and 0xff are NaN: never produced by encode. */
static float fp8_decode(int code, const aellm_qparams *p)
{
    return p->scale * aellm_e4m3_to_f32((uint8_t)code);
}

static void byte_row_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row,
                          uint8_t offset)
{
    memcpy(row, &p->scale, sizeof(float));
    uint8_t *q = (uint8_t *)row + sizeof(float);
    for (int64_t j = 0; j < n; j++) q[j] = (uint8_t)(codes[j] - offset);
}

static void fp8_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)
{
    byte_row_pack(codes, p, n, row, 0);
}

static const aellm_dtype_grid fp8_grid = {0, 256, fp8_fit, fp8_encode, fp8_decode, fp8_pack};

static void fp8_to_float(const void *src, float *dst, int64_t n)
{
    float s = row_scale(src);
    const uint8_t *q = (const uint8_t *)src + sizeof(float);
    for (int64_t j = 0; j < n; j++) dst[j] = s * aellm_e4m3_to_f32(q[j]);
}

static void fp8_from_float(const float *src, void *dst, int64_t n)
{
    aellm_qparams p;
    fp8_fit(src, n, &p);
    memcpy(dst, &p.scale, sizeof(float));
    uint8_t *q = (uint8_t *)dst + sizeof(float);
    for (int64_t j = 0; j < n; j++) q[j] = (uint8_t)fp8_encode(src[j], &p);
}

static void int8_fit(const float *x, int64_t n, aellm_qparams *p)
{
    p->scale = amax_of(x, n) / 127.0f;
    p->min = 0.0f;
}

/* x times the reciprocal, rounded to nearest even: the activation quantizer
 * (src/kernels/) computes exactly this in SIMD. */
static int int8_encode(float x, const aellm_qparams *p)
{
    return p->scale != 0.0f ? clamp_code(x * (1.0f / p->scale), -127, 127) + 128 : 128;
}

static float int8_decode(int code, const aellm_qparams *p)
{
    return (float)(code - 128) * p->scale;
}

static void int8_pack(const uint8_t *codes, const aellm_qparams *p, int64_t n, void *row)
{
    byte_row_pack(codes, p, n, row, 128);
}

static const aellm_dtype_grid int8_grid = {0, 256, int8_fit, int8_encode, int8_decode, int8_pack};

static void int8_to_float(const void *src, float *dst, int64_t n)
{
    float s = row_scale(src);
    const int8_t *q = (const int8_t *)src + sizeof(float);
    for (int64_t j = 0; j < n; j++) dst[j] = (float)q[j] * s;
}

static void int8_from_float(const float *src, void *dst, int64_t n)
{
    aellm_qparams p;
    int8_fit(src, n, &p);
    memcpy(dst, &p.scale, sizeof(float));
    int8_t *q = (int8_t *)dst + sizeof(float);
    for (int64_t j = 0; j < n; j++) q[j] = (int8_t)(int8_encode(src[j], &p) - 128);
}

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
#define INT4_ROW(id, nm, g, asym)                                                                  \
    [id] = {.name = #nm,                                                                           \
            .block_size = g,                                                                       \
            .type_size = (size_t)(2 + 2 * (asym) + (g) / 2),                                       \
            .to_float = nm##_to_float,                                                             \
            .from_float = nm##_from_float,                                                         \
            .partial = 1,                                                                          \
            .grid = &nm##_grid}
    INT4_ROW(AELLM_DTYPE_INT4S_G32, int4s_g32, 32, 0),
    INT4_ROW(AELLM_DTYPE_INT4S_G64, int4s_g64, 64, 0),
    INT4_ROW(AELLM_DTYPE_INT4S_G128, int4s_g128, 128, 0),
    INT4_ROW(AELLM_DTYPE_INT4A_G32, int4a_g32, 32, 1),
    INT4_ROW(AELLM_DTYPE_INT4A_G64, int4a_g64, 64, 1),
    INT4_ROW(AELLM_DTYPE_INT4A_G128, int4a_g128, 128, 1),
#undef INT4_ROW
    [AELLM_DTYPE_NF4] = {.name = "nf4",
                         .block_size = QK_NF4,
                         .type_size = sizeof(aellm_block_nf4),
                         .to_float = nf4_to_float,
                         .from_float = nf4_from_float,
                         .partial = 1,
                         .grid = &nf4_grid},
    [AELLM_DTYPE_FP8_E4M3] = {.name = "fp8_e4m3",
                              .block_size = 1,
                              .type_size = 1,
                              .to_float = fp8_to_float,
                              .from_float = fp8_from_float,
                              .row_header = sizeof(float),
                              .partial = 1,
                              .grid = &fp8_grid},
    [AELLM_DTYPE_INT8] = {.name = "int8",
                          .block_size = 1,
                          .type_size = 1,
                          .to_float = int8_to_float,
                          .from_float = int8_from_float,
                          .row_header = sizeof(float),
                          .partial = 1,
                          .grid = &int8_grid},
    [AELLM_DTYPE_INT8_G32] = {.name = "int8_g32",
                              .block_size = QK8_0,
                              .type_size = sizeof(aellm_block_q8_0),
                              .to_float = int8_g32_to_float,
                              .from_float = int8_g32_from_float,
                              .partial = 1,
                              .grid = &q8_0_grid},
    [AELLM_DTYPE_Q4_0_R16] = {.name = "q4_0_r16",
                              .block_size = QK4_0,
                              .type_size = sizeof(aellm_block_q4_0),
                              .interleave = AELLM_Q4_0_R16_ROWS,
                              .base = AELLM_DTYPE_Q4_0},
};

const aellm_dtype_traits *aellm_dtype_traits_get(int type)
{
    if (type < 0 || type >= AELLM_DTYPE_MAX || traits[type].name == NULL) return NULL;
    return &traits[type];
}

int aellm_dtype_from_name(const char *name)
{
    for (int t = 0; t < AELLM_DTYPE_MAX; t++)
        if (traits[t].name && !traits[t].interleave && strcmp(traits[t].name, name) == 0) return t;
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
