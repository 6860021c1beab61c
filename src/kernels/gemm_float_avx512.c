/* AVX-512 tile of the float-weight prefill GEMM (layout in kernels_impl.h):
 * 12 weight rows x 32 tokens, 24 zmm accumulators; per k step two token
 * loads, twelve broadcasts (at constant offsets from one pointer, since the
 * panel's rows are AELLM_FT_KC apart) and 24 FMAs. No threading here. */
#include <immintrin.h>

#include "kernels/kernels_impl.h"

enum { ROWS = 12, TOKS = 32 };

static void tile_avx512(const aellm_ftile_args *a)
{
    __m512 c[ROWS][2];
    for (int r = 0; r < ROWS; r++) {
        c[r][0] = a->add ? _mm512_loadu_ps(a->acc + r * TOKS) : _mm512_setzero_ps();
        c[r][1] = a->add ? _mm512_loadu_ps(a->acc + r * TOKS + 16) : _mm512_setzero_ps();
    }
    const float *w = a->w, *x = a->x;
    for (int64_t k = 0; k < a->kc; k++, w++, x += TOKS) {
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
#pragma GCC unroll 12
        for (int r = 0; r < ROWS; r++) {
            __m512 b = _mm512_set1_ps(w[r * AELLM_FT_KC]);
            c[r][0] = _mm512_fmadd_ps(b, x0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(b, x1, c[r][1]);
        }
    }
    for (int r = 0; r < ROWS; r++) {
        _mm512_storeu_ps(a->acc + r * TOKS, c[r][0]);
        _mm512_storeu_ps(a->acc + r * TOKS + 16, c[r][1]);
    }
}

const aellm_ftile_kernel aellm_ftile_kernel_avx512 = {ROWS, TOKS, tile_avx512};
