/* Helpers of the x8 tiles shared by gemm_x8_avx2.c and gemm_x8_avx512.c (both
 * on 256-bit vectors); include only from files compiled with -mavx2 or
 * wider. */
#ifndef AELLM_KERNELS_GEMM_X8_TILE_H
#define AELLM_KERNELS_GEMM_X8_TILE_H

#include <immintrin.h>
#include <string.h>

#include "kernels/kernels_impl.h"

/* The token's 4 quants starting at p, in every 32-bit lane. */
static inline __m256i x8_bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* y[t][0..nr) for t < nt from one accumulator per token (lane r = row r). */
static inline void x8_store_tile(const aellm_x8_args *a, int nr, int nt, const __m256 acc[4])
{
    if (nr == AELLM_X8_ROWS) {
        for (int t = 0; t < nt; t++) _mm256_storeu_ps(a->y + t * a->ldy, acc[t]);
        return;
    }
    float tmp[AELLM_X8_ROWS];
    for (int t = 0; t < nt; t++) {
        _mm256_storeu_ps(tmp, acc[t]);
        memcpy(a->y + t * a->ldy, tmp, (size_t)nr * sizeof(float));
    }
}

/* acc += float(isum) * (dw * dx) for token t of one block (a macro: the
 * accumulators stay named registers; GCC kept an array of them on the
 * stack). */
#define X8_FMA(acc, isum, x, t, dw)                                                                \
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps((x)->d[t])),  \
                          acc)

#endif
