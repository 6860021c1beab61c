/* Scalar reference dot products, one per weight type, and the scalar column
 * of the conversion table. These define the numbers the SIMD paths are
 * tested against; they are written for clarity, not speed. */
#include <stddef.h>

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/kernels_impl.h"

void aellm_vec_dot_f32_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const float *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    *out = sum;
}

void aellm_vec_dot_f16_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += aellm_f16_to_f32(a[i]) * b[i];
    *out = sum;
}

void aellm_vec_dot_bf16_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const uint16_t *a = w;
    const float *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += aellm_bf16_to_f32(a[i]) * b[i];
    *out = sum;
}

/* Quantized dots: an exact integer sum per block, then one float multiply by
 * the product of the two block scales. Rows may end in a partial block (the
 * int4*_g32 and int8_g32 types share these kernels): both operands are
 * zero-padded to whole blocks, so the loops run over ceil(n / 32). */
void aellm_vec_dot_q8_0_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q8_0 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < (n + QK8_0 - 1) / QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < QK8_0; j++) isum += a[i].qs[j] * b[i].qs[j];
        sum += (float)isum * (aellm_f16_to_f32(a[i].d) * aellm_f16_to_f32(b[i].d));
    }
    *out = sum;
}

void aellm_vec_dot_q8_1_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q8_1 *a = w, *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < (n + QK8_1 - 1) / QK8_1; i++) {
        int isum = 0;
        for (int j = 0; j < QK8_1; j++) isum += a[i].qs[j] * b[i].qs[j];
        sum += (float)isum * (aellm_f16_to_f32(a[i].d) * aellm_f16_to_f32(b[i].d));
    }
    *out = sum;
}

void aellm_vec_dot_q4_0_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q4_0 *a = w;
    const aellm_block_q8_0 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < (n + QK4_0 - 1) / QK4_0; i++) {
        int isum = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            isum += ((a[i].qs[j] & 0x0f) - 8) * b[i].qs[j];
            isum += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
        }
        sum += (float)isum * (aellm_f16_to_f32(a[i].d) * aellm_f16_to_f32(b[i].d));
    }
    *out = sum;
}

/* The 16 rows of one q4_0_r16 group (core/blocks.h), each as the one-row
 * q4_0 dot computes it; the activation's block sums are not needed here. */
void aellm_vec_dot_rows_q4_0_r16_scalar(int64_t n, float *out, const void *w, size_t row_bytes,
                                        const void *x)
{
    (void)row_bytes;
    const aellm_block_q4_0_r16 *a = w;
    const aellm_block_q8_0 *b = x;
    for (int r = 0; r < AELLM_Q4_0_R16_ROWS; r++) {
        float sum = 0.0f;
        for (int64_t i = 0; i < n / QK4_0; i++) {
            int isum = 0;
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 4; j++) {
                    uint8_t v = a[i].q[64 * k + 4 * r + j];
                    isum += ((v & 0x0f) - 8) * b[i].qs[4 * k + j];
                    isum += ((v >> 4) - 8) * b[i].qs[16 + 4 * k + j];
                }
            sum += (float)isum * (aellm_f16_to_f32(a[i].d[r]) * aellm_f16_to_f32(b[i].d));
        }
        out[r] = sum;
    }
}

/* sum_j (q_j dw + m)(p_j dx) = dw dx sum_j q_j p_j + m (dx sum_j p_j), and the
 * last factor is the s that Q8_1 stores. */
void aellm_vec_dot_q4_1_scalar(int64_t n, float *out, const void *w, const void *x)
{
    const aellm_block_q4_1 *a = w;
    const aellm_block_q8_1 *b = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < (n + QK4_1 - 1) / QK4_1; i++) {
        int isum = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            isum += (a[i].qs[j] & 0x0f) * b[i].qs[j];
            isum += (a[i].qs[j] >> 4) * b[i].qs[j + QK4_1 / 2];
        }
        sum += (float)isum * (aellm_f16_to_f32(a[i].d) * aellm_f16_to_f32(b[i].d)) +
               aellm_f16_to_f32(a[i].m) * aellm_f16_to_f32(b[i].s);
    }
    *out = sum;
}

/* The scalar conversions are the references of src/core/dtype.c; these
 * wrappers give the table compile-time constants to point at. */
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

REF_TO_FLOAT(f32, AELLM_DTYPE_F32)
REF_TO_FLOAT(f16, AELLM_DTYPE_F16)
REF_TO_FLOAT(bf16, AELLM_DTYPE_BF16)
REF_TO_FLOAT(q8_0, AELLM_DTYPE_Q8_0)
REF_TO_FLOAT(q8_1, AELLM_DTYPE_Q8_1)
REF_TO_FLOAT(q4_0, AELLM_DTYPE_Q4_0)
REF_TO_FLOAT(q4_1, AELLM_DTYPE_Q4_1)
REF_FROM_FLOAT(f32, AELLM_DTYPE_F32)
REF_FROM_FLOAT(f16, AELLM_DTYPE_F16)
REF_FROM_FLOAT(bf16, AELLM_DTYPE_BF16)
REF_FROM_FLOAT(q8_0, AELLM_DTYPE_Q8_0)
REF_FROM_FLOAT(q8_1, AELLM_DTYPE_Q8_1)
REF_FROM_FLOAT(q4_0, AELLM_DTYPE_Q4_0)
REF_FROM_FLOAT(q4_1, AELLM_DTYPE_Q4_1)
