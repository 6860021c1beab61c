/* AVX2 tile of the float-weight prefill GEMM (layout in kernels_impl.h):
 * 6 weight rows x 16 tokens, 12 ymm accumulators, two token loads and one
 * broadcast: all 16 registers. The accumulators are named variables, not
 * an array: GCC kept an array of them on the stack, with a store of each
 * on every step (half the speed). No threading here. */
#include <immintrin.h>

#include "kernels/kernels_impl.h"

enum { ROWS = 6, TOKS = 16 };

#define ACC_LOAD(r)                                                                                \
    __m256 c##r##a = add ? _mm256_loadu_ps(acc + (r)*TOKS) : _mm256_setzero_ps();                  \
    __m256 c##r##b = add ? _mm256_loadu_ps(acc + (r)*TOKS + 8) : _mm256_setzero_ps()
#define ACC_STEP(r)                                                                                \
    do {                                                                                           \
        __m256 b = _mm256_broadcast_ss(w + (r)*AELLM_FT_KC);                                       \
        c##r##a = _mm256_fmadd_ps(b, x0, c##r##a);                                                 \
        c##r##b = _mm256_fmadd_ps(b, x1, c##r##b);                                                 \
    } while (0)
#define ACC_STORE(r)                                                                               \
    _mm256_storeu_ps(acc + (r)*TOKS, c##r##a), _mm256_storeu_ps(acc + (r)*TOKS + 8, c##r##b)

static void tile_avx2(const aellm_ftile_args *a)
{
    float *acc = a->acc;
    const float *w = a->w, *x = a->x;
    const int64_t kc = a->kc;
    const int add = a->add;
    ACC_LOAD(0);
    ACC_LOAD(1);
    ACC_LOAD(2);
    ACC_LOAD(3);
    ACC_LOAD(4);
    ACC_LOAD(5);
    for (int64_t k = 0; k < kc; k++, w++, x += TOKS) {
        __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
        ACC_STEP(0);
        ACC_STEP(1);
        ACC_STEP(2);
        ACC_STEP(3);
        ACC_STEP(4);
        ACC_STEP(5);
    }
    ACC_STORE(0);
    ACC_STORE(1);
    ACC_STORE(2);
    ACC_STORE(3);
    ACC_STORE(4);
    ACC_STORE(5);
}

const aellm_ftile_kernel aellm_ftile_kernel_avx2 = {ROWS, TOKS, tile_avx2};
