/* Softmax kernels: the scalar reference and the run-time dispatch
 * (softmax.h). The reference computes the vector paths' polynomial exp (they
 * fuse its multiply-adds, so lanes agree to an ulp or two). */
#include "kernels/softmax.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

float aellm_kernel_expf_ref(float x)
{
    if (x != x) return x;
    if (x < EXP_LO) return 0.0f;
    if (x > EXP_HI) x = EXP_HI;
    float n = floorf(x * LOG2E + 0.5f);
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = EXP_P0;
    p = p * r + EXP_P1;
    p = p * r + EXP_P2;
    p = p * r + EXP_P3;
    p = p * r + EXP_P4;
    p = p * r + EXP_P5;
    float y = p * (r * r) + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &y, 4);
    bits += (int32_t)((uint32_t)(int32_t)n << 23); /* 2^n in the exponent; n < 0 too (UBSan) */
    memcpy(&y, &bits, 4);
    return y;
}

static float max_scalar(const float *x, int64_t n)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum_scalar(float *y, const float *x, int64_t n, float shift)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += y[i] = aellm_kernel_expf_ref(x[i] - shift);
    return sum;
}

static void scale_scalar(float *x, int64_t n, float k)
{
    for (int64_t i = 0; i < n; i++) x[i] *= k;
}

static void softmax_grad_scalar(float *dp, const float *p, int64_t n, float scale)
{
    float dot = 0.0f;
    for (int64_t i = 0; i < n; i++) dot += p[i] * dp[i];
    for (int64_t i = 0; i < n; i++) dp[i] = scale * p[i] * (dp[i] - dot);
}

const aellm_softmax_kernels aellm_softmax_scalar = {max_scalar, exp_sum_scalar, scale_scalar,
                                                    softmax_grad_scalar};

static const aellm_softmax_kernels *best(void)
{
    static const aellm_softmax_kernels *const by_isa[AELLM_ISA_COUNT] = {
        &aellm_softmax_scalar, &aellm_softmax_avx2, &aellm_softmax_avx512};
    return by_isa[aellm_cpu_isa()];
}

float aellm_kernel_max(const float *x, int64_t n)
{
    return best()->max(x, n);
}

float aellm_kernel_exp_sum(float *y, const float *x, int64_t n, float shift)
{
    return best()->exp_sum(y, x, n, shift);
}

void aellm_kernel_scale(float *x, int64_t n, float k)
{
    best()->scale(x, n, k);
}

void aellm_kernel_softmax(float *x, int64_t n)
{
    const aellm_softmax_kernels *k = best();
    float sum = k->exp_sum(x, x, n, k->max(x, n));
    k->scale(x, n, 1.0f / sum);
}

void aellm_kernel_softmax_grad(float *dp, const float *p, int64_t n, float scale)
{
    best()->softmax_grad(dp, p, n, scale);
}
