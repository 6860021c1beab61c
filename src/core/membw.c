/* Measured memory read bandwidth: the roofline that decode speed is judged
 * against. A streaming sum over a buffer far larger than the last-level
 * cache, with the threads the engine would use; best of a few passes. */
#include "core/membw.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"

static volatile float sink;

/* Sum of a 4096-float block with 32 independent lanes, so the loads, not the
 * adds, are the limit. Built twice: for AVX2 (as the engine's kernels read)
 * and plain, chosen at run time. */
#define BLOCK_SUM(name, attr)                                                                      \
    attr static float name(const float *p)                                                         \
    {                                                                                              \
        float acc[32] = {0};                                                                       \
        for (int i = 0; i < 4096; i += 32)                                                         \
            for (int j = 0; j < 32; j++) acc[j] += p[i + j];                                       \
        float s = 0.0f;                                                                            \
        for (int j = 0; j < 32; j++) s += acc[j];                                                  \
        return s;                                                                                  \
    }
BLOCK_SUM(block_sum_avx2, __attribute__((target("avx2"), optimize("O3"))))
BLOCK_SUM(block_sum_plain, __attribute__((optimize("O3"))))

static double one_pass(const float *buf, size_t n, int threads)
{
    float (*sum)(const float *) = __builtin_cpu_supports("avx2") ? block_sum_avx2 : block_sum_plain;
    double t0 = aellm_time_s();
    float total = 0.0f;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (size_t blk = 0; blk < n / 4096; blk++) total += sum(buf + blk * 4096);
    sink = total;
    return aellm_time_s() - t0;
}

double aellm_memory_bandwidth(size_t bytes, int threads)
{
    size_t n = bytes / sizeof(float) / 4096 * 4096;
    float *buf = NULL;
    if (n == 0 || posix_memalign((void **)&buf, 64, n * sizeof(float))) return 0.0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t blk = 0; blk < n / 4096; blk++) memset(buf + blk * 4096, 0, 4096 * sizeof(float));
    double best = 1e30;
    for (int pass = 0; pass < 5; pass++) {
        double t = one_pass(buf, n, threads);
        best = t < best ? t : best;
    }
    free(buf);
    return (double)(n * sizeof(float)) / best;
}
