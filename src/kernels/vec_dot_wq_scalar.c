/* Scalar reference dots of aellm's own weight formats (INT4 groups, NF4,
 * FP8 E4M3, W8A8 INT8) and their scalar conversion columns. The SIMD paths
 * (vec_dot_wq_avx2.c, vec_dot_wq_avx512.c) are tested against these; they
 * are written for clarity, not speed. The g32 types use q4_0 / q4_1 / q8_0's
 * kernels (vec_dot_scalar.c). */
#include <string.h>

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/kernels_impl.h"

/* INT4 groups against Q8_0 (symmetric) or Q8_1 (asymmetric) activations
 * padded to whole groups: a group's 32-element sub-blocks each meet one
 * activation block, so the sum is q4_0's or q4_1's, sub-block by sub-block,
 * with the group's scale (and minimum) repeated. */
static void int4_dot(int64_t n, float *out, const void *w, const void *x, int64_t g, int asym)
{
    const uint8_t *blk = w;
    size_t bytes = (size_t)aellm_int4_block_bytes(g, asym);
    const aellm_block_q8_0 *x0 = x;
    const aellm_block_q8_1 *x1 = x;
    float sum = 0.0f;
    for (int64_t i = 0; i * g < n; i++, blk += bytes) {
        uint16_t h[2];
        memcpy(h, blk, asym ? 4 : 2);
        float dw = aellm_f16_to_f32(h[0]), m = asym ? aellm_f16_to_f32(h[1]) : 0.0f;
        for (int64_t k = 0; k < g / 32; k++) {
            const uint8_t *qs = blk + aellm_int4_qoff(asym) + k * 16;
            int64_t b = i * (g / 32) + k;
            const int8_t *xq = asym ? x1[b].qs : x0[b].qs;
            float dx = aellm_f16_to_f32(asym ? x1[b].d : x0[b].d);
            int off = asym ? 0 : 8, isum = 0;
            for (int j = 0; j < 16; j++)
                isum += ((qs[j] & 0x0f) - off) * xq[j] + ((qs[j] >> 4) - off) * xq[j + 16];
            sum += (float)isum * (dw * dx);
            if (asym) sum += m * aellm_f16_to_f32(x1[b].s);
        }
    }
    *out = sum;
}

void aellm_vec_dot_int4s_g64_scalar(int64_t n, float *out, const void *w, const void *x)
{
    int4_dot(n, out, w, x, 64, 0);
}

void aellm_vec_dot_int4s_g128_scalar(int64_t n, float *out, const void *w, const void *x)
{
    int4_dot(n, out, w, x, 128, 0);
}

void aellm_vec_dot_int4a_g64_scalar(int64_t n, float *out, const void *w, const void *x)
{
    int4_dot(n, out, w, x, 64, 1);
}

void aellm_vec_dot_int4a_g128_scalar(int64_t n, float *out, const void *w, const void *x)
{
    int4_dot(n, out, w, x, 128, 1);
}

/* NF4 against f32 (padded to whole groups): sum_j cb[code_j] x_j per
 * group, times the group's absmax. */
void aellm_vec_dot_nf4_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_nf4 *b = w;
    const float *xf = x;
    float sum = 0.0f;
    for (int64_t i = 0; i * QK_NF4 < n; i++) {
        float gsum = 0.0f;
        for (int k = 0; k < QK_NF4 / 32; k++)
            for (int j = 0; j < 16; j++) {
                uint8_t q = b[i].qs[k * 16 + j];
                const float *xs = xf + i * QK_NF4 + k * 32;
                gsum +=
                    aellm_nf4_codebook[q & 0x0f] * xs[j] + aellm_nf4_codebook[q >> 4] * xs[j + 16];
            }
        sum += gsum * aellm_f16_to_f32(b[i].d);
    }
    *out = sum;
}

/* FP8 against f32: the row scale factors out of the sum. */
void aellm_vec_dot_fp8_e4m3_scalar(int64_t n, float *out, const void *w, const void *x)
{
    float s;
    memcpy(&s, w, sizeof(s));
    const uint8_t *q = (const uint8_t *)w + sizeof(float);
    const float *xf = x;
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) sum += aellm_e4m3_to_f32(q[j]) * xf[j];
    *out = sum * s;
}

/* W8A8: an exact integer dot of the whole row, then s_w s_x once. The SIMD
 * paths and the prefill GEMM produce the same integer, hence the same float. */
void aellm_vec_dot_int8_scalar(int64_t n, float *out, const void *w, const void *x)
{
    float sw, sx;
    memcpy(&sw, w, sizeof(sw));
    memcpy(&sx, x, sizeof(sx));
    const int8_t *a = (const int8_t *)w + sizeof(float), *b = (const int8_t *)x + sizeof(float);
    int32_t isum = 0;
    for (int64_t j = 0; j < n; j++) isum += a[j] * b[j];
    *out = (float)isum * (sw * sx);
}

/* The scalar conversions are the references of src/core/dtype.c. */
#define REF_TO_FLOAT(name, type)                                                                   \
    void aellm_to_float_##name##_scalar(const void *src, float *dst, int64_t n)                    \
    {                                                                                              \
        aellm_dtype_traits_get(type)->to_float(src, dst, n);                                       \
    }
#define REF_FROM_FLOAT(name, type)                                                                 \
    void aellm_from_float_##name##_scalar(const float *src, void *dst, int64_t n)                  \
    {                                                                                              \
        aellm_dtype_traits_get(type)->from_float(src, dst, n);                                     \
    }
#define REF_BOTH(name, type) REF_TO_FLOAT(name, type) REF_FROM_FLOAT(name, type)

REF_BOTH(int4s_g32, AELLM_DTYPE_INT4S_G32)
REF_BOTH(int4s_g64, AELLM_DTYPE_INT4S_G64)
REF_BOTH(int4s_g128, AELLM_DTYPE_INT4S_G128)
REF_BOTH(int4a_g32, AELLM_DTYPE_INT4A_G32)
REF_BOTH(int4a_g64, AELLM_DTYPE_INT4A_G64)
REF_BOTH(int4a_g128, AELLM_DTYPE_INT4A_G128)
REF_BOTH(nf4, AELLM_DTYPE_NF4)
REF_BOTH(fp8_e4m3, AELLM_DTYPE_FP8_E4M3)
REF_BOTH(int8, AELLM_DTYPE_INT8)
REF_BOTH(int8_g32, AELLM_DTYPE_INT8_G32)
