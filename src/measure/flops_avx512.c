/* The AVX-512 FMA loop behind the measured f32 peak: twelve independent
 * chains of 16-lane fused multiply-adds in registers (cores with two 512-bit
 * FMA ports double the AVX2 figure; others show the same). Not a GEMM. */
#include <immintrin.h>

#include "measure/measure_internal.h"

float aellm_flops_loop_avx512(long iters, float m, float a)
{
    __m512 acc[AELLM_FLOPS_CHAINS];
    __m512 vm = _mm512_set1_ps(m), va = _mm512_set1_ps(a);
    for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], vm, va);
    __m512 s = acc[0];
    for (int k = 1; k < AELLM_FLOPS_CHAINS; k++) s = _mm512_add_ps(s, acc[k]);
    return _mm512_reduce_add_ps(s);
}
