/* Measured memory read bandwidth: the roofline that decode speed is judged
 * against. A streaming sum over a buffer far larger than the last-level
 * cache, with the threads the engine would use; best of a few passes. */
#include "core/membw.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"

static volatile float sink;

static double one_pass(const float *buf, size_t n, int threads)
{
    double t0 = aellm_time_s();
    float total = 0.0f;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (size_t blk = 0; blk < n / 4096; blk++) {
        const float *p = buf + blk * 4096;
        float acc[16] = {0};
        for (int i = 0; i < 4096; i += 16)
#pragma omp simd
            for (int j = 0; j < 16; j++) acc[j] += p[i + j];
        for (int j = 0; j < 16; j++) total += acc[j];
    }
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
