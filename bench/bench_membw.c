/* The bandwidth reference's estimators side by side (not a test): N
 * readings of two 1 GiB passes each (aellm_membw_read_for with no minimum
 * time), back to back. Prints the spread of the readings' best-of-two, the
 * median best-of-two (what `aellm bench` took as the roofline before it read
 * sustained) and the sustained rate over all of them (bytes over the whole
 * time, as a run's tokens/s is taken), and their ratio.
 * Usage: bench_membw [readings (default 100)] [threads (default: all)] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/membw.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100, threads = argc > 2 ? atoi(argv[2]) : 0;
    if (n < 1 || n > 100000 || threads < 0) {
        fprintf(stderr, "usage: bench_membw [readings 1..100000] [threads]\n");
        return 2;
    }
    if (threads == 0) threads = omp_get_max_threads();
    size_t size = (size_t)1 << 30;
    aellm_membw *b = aellm_membw_new(size, threads);
    double *best = malloc((size_t)n * sizeof(double));
    if (!b || !best) {
        fprintf(stderr, "bench_membw: out of memory for the 1 GiB buffer\n");
        return 1;
    }
    double bytes = 0.0, seconds = 0.0;
    for (int i = 0; i < n; i++) {
        aellm_membw_reading r;
        aellm_membw_read_for(b, 0.0, &r);
        best[i] = r.best / 1e9;
        bytes += (double)r.passes * (double)size; /* passes read whole buffers */
        seconds += (double)r.passes * (double)size / r.sustained;
    }
    qsort(best, (size_t)n, sizeof(double), cmp_double);
    double sustained = bytes / seconds / 1e9, median = best[n / 2];
    printf("%d readings of 2 passes over 1 GiB, %d threads\n", n, threads);
    printf("best of two, GB/s: min %.1f  p10 %.1f  median %.1f  p90 %.1f  max %.1f\n", best[0],
           best[n / 10], median, best[n * 9 / 10], best[n - 1]);
    printf("sustained over all %.1f GB/s; median best-of-two / sustained %.3f\n", sustained,
           median / sustained);
    free(best);
    aellm_membw_free(b);
    return 0;
}
