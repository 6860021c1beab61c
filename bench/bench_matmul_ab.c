/* Prefill matmul paths compared interleaved in one process (on a noisy
 * machine only same-run ratios mean anything): for each shape, `reps`
 * rounds of f32 sgemm (OpenBLAS), dequantize + sgemm, the 4x3 integer
 * tiles, the x8 tiles and the float tiles (gemm_float.c), each timed as the
 * best of `calls` calls; prints per path the median GFLOP/s and the median
 * per-round ratios to sgemm and to the 4x3 tiles.
 * Usage: bench_matmul_ab [T] [type] [reps] [calls] [ROWSxN ...]. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "kernels/kernels_impl.h"

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) exit(1);
    return p;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define NPATH 5

int main(int argc, char **argv)
{
    int64_t T = argc > 1 ? atoll(argv[1]) : 512;
    const char *tname = argc > 2 ? argv[2] : "q4_0";
    int reps = argc > 3 ? atoi(argv[3]) : 5, calls = argc > 4 ? atoi(argv[4]) : 2;
    static const char *def_shapes[] = {"768x768",  "2048x768",  "768x2048", "2048x2048",
                                       "256x2048", "5632x2048", "2048x5632"};
    const char **shapes = argc > 5 ? (const char **)argv + 5 : def_shapes;
    int nshapes = argc > 5 ? argc - 5 : 7;
    int type = -1;
    for (int t = 0; t < AELLM_DTYPE_MAX; t++)
        if (aellm_dtype_traits_get(t) && !strcmp(aellm_dtype_traits_get(t)->name, tname)) type = t;
    if (type < 0) return 1;
    printf("T = %lld, %s, %d threads, %d rounds x best of %d calls; medians\n", (long long)T, tname,
           omp_get_max_threads(), reps, calls);
    printf("%-10s | %7s %7s %7s %7s %7s | %9s %9s %9s %9s | %9s\n", "shape", "sgemm", "deq",
           "tiles", "x8", "ftile", "deq/sg", "tiles/sg", "x8/sg", "ftile/sg", "x8/tiles");
    for (int s = 0; s < nshapes; s++) {
        long long rl, nl;
        if (sscanf(shapes[s], "%lldx%lld", &rl, &nl) != 2) return 1;
        int64_t rows = rl, n = nl;
        float *wf = xmalloc((size_t)(rows * n) * sizeof(float));
        float *x = xmalloc((size_t)(T * n) * sizeof(float));
        float *y = xmalloc((size_t)(T * rows) * sizeof(float));
        uint64_t z = 88172645463325252ull;
        for (int64_t i = 0; i < rows * n; i++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17;
            wf[i] = (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
        }
        for (int64_t i = 0; i < T * n; i++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17;
            x[i] = (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
        }
        size_t rb = aellm_dtype_row_size(type, n);
        char *w = xmalloc((size_t)rows * rb);
        for (int64_t r = 0; r < rows; r++)
            aellm_dtype_traits_get(type)->from_float(wf + r * n, w + r * rb, n);
        size_t sb = aellm_kernel_matmul_scratch(type, rows, n, T);
        if (aellm_kernel_matmul_has_path(type, AELLM_MM_FTILE) &&
            aellm_kernel_matmul_path_scratch(AELLM_MM_FTILE, type, rows, n, T) > sb)
            sb = aellm_kernel_matmul_path_scratch(AELLM_MM_FTILE, type, rows, n, T);
        void *scratch = xmalloc(sb ? sb : 64);
        double gf[NPATH][64], ratio[NPATH][64], ratio_t[NPATH][64];
        if (reps > 64) reps = 64;
        for (int rep = 0; rep < reps; rep++) {
            double best[NPATH];
            for (int p = 0; p < NPATH; p++) {
                static const int path_of[NPATH] = {AELLM_MM_AUTO, AELLM_MM_DEQUANT, AELLM_MM_TILES,
                                                   AELLM_MM_X8, AELLM_MM_FTILE};
                int path = path_of[p];
                best[p] = 1e30;
                if (p && !aellm_kernel_matmul_has_path(type, path)) continue;
                for (int c = 0; c < calls; c++) {
                    double t0 = aellm_time_s();
                    if (p == 0) /* f32 on any path but FTILE is OpenBLAS sgemm: the reference */
                        aellm_kernel_matmul_path(AELLM_MM_DEQUANT, AELLM_DTYPE_F32, wf,
                                                 (size_t)n * sizeof(float), rows, n, x, T, y, NULL);
                    else
                        aellm_kernel_matmul_path(path, type, w, rb, rows, n, x, T, y, scratch);
                    double dt = aellm_time_s() - t0;
                    if (dt < best[p]) best[p] = dt;
                }
            }
            for (int p = 0; p < NPATH; p++) {
                gf[p][rep] = 2.0 * (double)T * (double)rows * (double)n / best[p] * 1e-9;
                ratio[p][rep] = best[0] / best[p];
                ratio_t[p][rep] = best[2] / best[p];
            }
        }
        printf("%-10s |", shapes[s]);
        for (int p = 0; p < NPATH; p++) printf(" %7.1f", median(gf[p], reps));
        printf(" |");
        for (int p = 1; p < NPATH; p++) printf(" %9.2f", median(ratio[p], reps));
        printf(" | %9.2f\n", median(ratio_t[3], reps));
        fflush(stdout);
        free(wf), free(x), free(y), free(w), free(scratch);
    }
    return 0;
}
