/* The AVX2 FMA loop behind the measured f32 peak: twelve independent chains
 * of 8-lane fused multiply-adds, enough to cover FMA latency x ports on
 * current cores (4 x 2), with no memory traffic. Not a GEMM. */
#include <immintrin.h>

#include "measure/measure_internal.h"

float aellm_flops_loop_avx2(long iters, float m, float a)
{
    __m256 acc[AELLM_FLOPS_CHAINS];
    __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(a);
    for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], vm, va);
    __m256 s = acc[0];
    for (int k = 1; k < AELLM_FLOPS_CHAINS; k++) s = _mm256_add_ps(s, acc[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
