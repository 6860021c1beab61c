/* Softmax and its gradient over f32 rows, with a vectorised exp (a scalar
 * reference, AVX2 and AVX-512 paths; the best the CPU has is chosen at run
 * time). The vector exp is Cephes' single-precision scheme: x = n ln2 + r
 * with ln2 split in two for an exact reduction, a degree-6 polynomial for
 * e^r on |r| <= ln2/2, 2^n put into the exponent bits; within 2 ulp of
 * libm's expf, exactly 0 below -87.3 (so a -inf mask gives 0). */
#ifndef AELLM_KERNELS_SOFTMAX_H
#define AELLM_KERNELS_SOFTMAX_H

#include <stdint.h>

/* Cephes expf's constants (a published scheme; the numbers are facts):
 * clamps, ln2 in two parts, and the polynomial's coefficients. */
#define EXP_HI 88.3762626647949f
#define EXP_LO -87.3365447504f
#define LOG2E  1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

/* max over x[0..n), n >= 1. */
float aellm_kernel_max(const float *x, int64_t n);

/* y[i] = exp(x[i] - shift) for i < n (y may be x); returns their sum. */
float aellm_kernel_exp_sum(float *y, const float *x, int64_t n, float shift);

/* In place: x *= k. */
void aellm_kernel_scale(float *x, int64_t n, float k);

/* In place: x = softmax(x) over n >= 1 elements. */
void aellm_kernel_softmax(float *x, int64_t n);

/* The softmax's backward for one row, in place: given p = softmax(s) and
 * dp = dL/dp, dp becomes scale * dL/ds = scale * p * (dp - <p, dp>). */
void aellm_kernel_softmax_grad(float *dp, const float *p, int64_t n, float scale);

/* Per-ISA paths (kernels only; index by aellm_isa). */
typedef struct {
    float (*max)(const float *x, int64_t n);
    float (*exp_sum)(float *y, const float *x, int64_t n, float shift);
    void (*scale)(float *x, int64_t n, float k);
    void (*softmax_grad)(float *dp, const float *p, int64_t n, float scale);
} aellm_softmax_kernels;

extern const aellm_softmax_kernels aellm_softmax_scalar, aellm_softmax_avx2, aellm_softmax_avx512;

/* The scalar reference's exp, the one every path computes (for tests). */
float aellm_kernel_expf_ref(float x);

#endif
