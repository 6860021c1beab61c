/* Measured memory read bandwidth: the roofline that decode speed is judged
 * against. A streaming sum over a buffer far larger than the last-level
 * cache, with the threads the engine would use; best of a few passes. Each
 * thread reads STREAMS separate streams at once, as the four-row matvec
 * kernels do: one stream per core leaves bandwidth unused on some machines,
 * and the reference must be the best the kernels could reach. */
#include "core/membw.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/timer.h"

#define STREAMS 4
#define BLOCK   4096 /* floats per stream per step */

struct aellm_membw {
    float *buf;
    size_t n; /* floats, a multiple of STREAMS * BLOCK */
    int threads;
};

static volatile float sink;

/* Sum of one block from each of STREAMS streams `stride` floats apart, with
 * 32 independent lanes, so that the loads, not the adds, are the limit.
 * Built for AVX-512, AVX2 and plain, chosen at run time. */
#define BLOCK_SUM(name, attr)                                                                      \
    attr static float name(const float *p, size_t stride)                                          \
    {                                                                                              \
        float acc[32] = {0};                                                                       \
        for (int i = 0; i < BLOCK; i += 32)                                                        \
            for (int s = 0; s < STREAMS; s++)                                                      \
                for (int j = 0; j < 32; j++) acc[j] += p[s * stride + i + j];                      \
        float t = 0.0f;                                                                            \
        for (int j = 0; j < 32; j++) t += acc[j];                                                  \
        return t;                                                                                  \
    }
BLOCK_SUM(block_sum_avx512, __attribute__((target("avx512f"), optimize("O3"))))
BLOCK_SUM(block_sum_avx2, __attribute__((target("avx2"), optimize("O3"))))
BLOCK_SUM(block_sum_plain, __attribute__((optimize("O3"))))

/* Seconds of one pass; *bytes gets what it read. */
static double one_pass(const aellm_membw *b, size_t *bytes)
{
    float (*sum)(const float *, size_t) = __builtin_cpu_supports("avx512f") ? block_sum_avx512
                                          : __builtin_cpu_supports("avx2")  ? block_sum_avx2
                                                                            : block_sum_plain;
    double t0 = aellm_time_s();
    float total = 0.0f;
#pragma omp parallel num_threads(b->threads) reduction(+ : total)
    {
        /* thread i reads its own 1/threads of the buffer as STREAMS runs */
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        size_t per = b->n / STREAMS / (size_t)nt / BLOCK * BLOCK;
        const float *base = b->buf + (size_t)id * per * STREAMS;
        for (size_t i = 0; i < per; i += BLOCK) total += sum(base + i, per);
        if (id == 0) *bytes = per * STREAMS * (size_t)nt * sizeof(float);
    }
    sink = total;
    return aellm_time_s() - t0;
}

aellm_membw *aellm_membw_new(size_t bytes, int threads)
{
    aellm_membw *b = calloc(1, sizeof(*b));
    size_t unit = (size_t)STREAMS * BLOCK;
    if (!b) return NULL;
    b->n = bytes / sizeof(float) / unit * unit;
    b->threads = threads > 0 ? threads : 1;
    /* 2 MiB-aligned and advised to huge pages, as the engine's weights are
     * (model/gguf_read.c): with 4 KiB pages the reference would pay TLB
     * misses that the reads it judges do not. */
    size_t size = b->n * sizeof(float);
    if (b->n == 0 || posix_memalign((void **)&b->buf, (size_t)2 << 20, size)) {
        free(b);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(b->buf, size, MADV_HUGEPAGE); /* advice only: small pages still work */
#endif
#pragma omp parallel for num_threads(b->threads) schedule(static)
    for (size_t blk = 0; blk < b->n / BLOCK; blk++)
        memset(b->buf + blk * BLOCK, 0, BLOCK * sizeof(float));
    return b;
}

/* One pass's rate in bytes per second; *bytes gets what it read. */
static double pass_rate(const aellm_membw *b, size_t *bytes)
{
    double t = one_pass(b, bytes);
    return t > 0 ? (double)*bytes / t : 0.0;
}

/* The best of `passes` passes, in bytes per second. */
static double best_of(aellm_membw *b, int passes)
{
    double best = 0.0;
    for (int pass = 0; pass < (passes > 0 ? passes : 1); pass++) {
        size_t bytes = 0;
        best = fmax(best, pass_rate(b, &bytes));
    }
    return best;
}

void aellm_membw_read_for(aellm_membw *b, double seconds, aellm_membw_reading *out)
{
    double t0 = aellm_time_s(), total = 0.0;
    *out = (aellm_membw_reading){0};
    do {
        size_t bytes = 0;
        out->best = fmax(out->best, pass_rate(b, &bytes));
        total += (double)bytes;
        out->passes++;
    } while (out->passes < 2 || aellm_time_s() - t0 < seconds);
    double elapsed = aellm_time_s() - t0;
    out->sustained = elapsed > 0 ? total / elapsed : 0.0;
}

void aellm_membw_free(aellm_membw *b)
{
    if (!b) return;
    free(b->buf);
    free(b);
}

double aellm_memory_bandwidth(size_t bytes, int threads)
{
    aellm_membw *b = aellm_membw_new(bytes, threads);
    double bw = b ? best_of(b, 5) : 0.0;
    aellm_membw_free(b);
    return bw;
}
