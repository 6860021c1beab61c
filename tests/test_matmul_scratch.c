/* The prefill scratch contract: the size asked for the largest batch serves
 * every smaller batch, whichever path (integer tiles or dequantize+sgemm)
 * each batch size takes. Checked with guard bytes after the scratch, so an
 * overrun fails here even without a sanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <omp.h>

#include "aellm/dtype.h"
#include "core/rng.h"
#include "kernels/kernels.h"

#define GUARD 4096

static void check_type(int type, int64_t rows, int64_t n)
{
    const int64_t Tmax = 512, Ts[] = {1, 3, 8, 31, 32, 33, 100, 512};
    size_t rb = aellm_dtype_row_size(type, n);
    size_t need = aellm_kernel_matmul_scratch(type, rows, n, Tmax);
    unsigned char *scratch = malloc(need + GUARD);
    char *w = malloc(rb * (size_t)rows);
    float *wf = malloc((size_t)n * sizeof(float)), *x = malloc((size_t)Tmax * n * sizeof(float));
    float *y = malloc((size_t)Tmax * rows * sizeof(float));
    aellm_rng r;
    aellm_rng_seed(&r, 5);
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < n; j++) wf[j] = aellm_rng_normal(&r);
        aellm_dtype_traits_get(type)->from_float(wf, w + (size_t)i * rb, n);
    }
    for (int64_t i = 0; i < Tmax * n; i++) x[i] = aellm_rng_normal(&r);
    for (size_t t = 0; t < sizeof(Ts) / sizeof(Ts[0]); t++) {
        memset(scratch + need, 0xa5, GUARD);
        aellm_kernel_matmul(type, w, rb, rows, n, x, Ts[t], y, scratch);
        for (size_t g = 0; g < GUARD; g++)
            if (scratch[need + g] != 0xa5)
                fail_msg("%s: T=%lld wrote past the %zu scratch bytes sized for T=%lld",
                         aellm_dtype_traits_get(type)->name, (long long)Ts[t], need,
                         (long long)Tmax);
    }
    free(scratch), free(w), free(wf), free(x), free(y);
}

static void test_scratch_serves_smaller_batches(void **state)
{
    (void)state;
    const int types[] = {AELLM_DTYPE_F16, AELLM_DTYPE_BF16, AELLM_DTYPE_Q8_0, AELLM_DTYPE_Q4_0,
                         AELLM_DTYPE_Q4_1};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        check_type(types[i], 288, 288);
        check_type(types[i], 200, 768);
        check_type(types[i], 4096, 256); /* many rows: the tile path packs W */
    }
}

/* OpenBLAS's OpenMP build sets the caller's OpenMP thread count when told to
 * run single-threaded; a matmul must not leave it changed, or every later
 * parallel region (the rest of prefill) runs on one thread. */
static void test_matmul_keeps_thread_count(void **state)
{
    (void)state;
    omp_set_num_threads(2);
    check_type(AELLM_DTYPE_F16, 64, 64);
    check_type(AELLM_DTYPE_Q4_0, 64, 64);
    assert_int_equal(omp_get_max_threads(), 2);
}

int main(void)
{
    /* the thread-count check first: OpenBLAS is switched once per process */
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_matmul_keeps_thread_count),
                                       cmocka_unit_test(test_scratch_serves_smaller_batches)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
