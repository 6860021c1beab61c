/* Kernel benchmark (not a test): matvec GB/s against a streaming-read
 * bandwidth reference, and prefill matmul GFLOP/s at T = 512 against f32
 * sgemm, for the 110M and 1.1B matrix shapes and every weight type; the
 * last column is the dequantize + sgemm path, for comparison with the path
 * matmul chose ("path": sgemm, deq, tiles, x8 or w8a8). The type argument
 * may name several types, comma-separated ("q4_0,nf4"); f32 always runs,
 * as the reference of the ratios.
 * Usage: bench_kernels [T] [seconds per measurement] [type] [ROWSxN].
 * Not a correctness check. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/membw.h"
#include "core/timer.h"
#include "kernels/kernels_impl.h"

static const int types[] = {
    AELLM_DTYPE_F32,        AELLM_DTYPE_F16,       AELLM_DTYPE_BF16,      AELLM_DTYPE_Q8_0,
    AELLM_DTYPE_Q4_0,       AELLM_DTYPE_Q4_1,      AELLM_DTYPE_INT4S_G32, AELLM_DTYPE_INT4S_G64,
    AELLM_DTYPE_INT4S_G128, AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_INT4A_G64, AELLM_DTYPE_INT4A_G128,
    AELLM_DTYPE_NF4,        AELLM_DTYPE_FP8_E4M3,  AELLM_DTYPE_INT8,      AELLM_DTYPE_INT8_G32};
#define NTYPES (int)(sizeof(types) / sizeof(types[0]))
static const int64_t shapes[][2] = {{768, 768},   {2048, 768},  {768, 2048},  {2048, 2048},
                                    {5632, 2048}, {2048, 5632}, {32000, 2048}};
#define NSHAPES (int)(sizeof(shapes) / sizeof(shapes[0]))

static double min_time = 0.15; /* seconds of repeats per measurement */

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Cheap uniform noise in [-1, 1): generating 65M normals would dominate the run. */
static void fill_random(float *x, int64_t n, uint64_t seed)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint64_t z = (seed + (uint64_t)i) * 0x9e3779b97f4a7c15ull;
        z ^= z >> 31, z *= 0xbf58476d1ce4e5b9ull, z ^= z >> 29;
        x[i] = (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
}

/* Whether `name` is one of the comma-separated names in `list`. */
static int listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0')) return 1;
    return 0;
}

typedef struct {
    int type;
    int64_t rows, n;
    size_t row_bytes;
    void *w; /* `copies` copies of the matrix, one after the other */
    int64_t copies, next;
    const float *xf; /* (T, n) */
    void *xq;        /* activation in the vec_dot_type */
    float *y;
} case_t;

/* Each call reads the next copy of W, so that the weights come from DRAM as
 * in decoding a model larger than the caches, not from L3. */
static void matvec_once(case_t *c)
{
    const char *w = (const char *)c->w + (size_t)(c->next++ % c->copies) * c->rows * c->row_bytes;
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t per = (c->rows / nt + 3) & ~(int64_t)3; /* whole 4-row steps */
        int64_t r0 = id * per, r1 = r0 + per < c->rows ? r0 + per : c->rows;
        if (r0 < r1) aellm_kernel_matvec(c->type, c->n, w, c->row_bytes, c->xq, c->y + r0, r0, r1);
    }
}

/* Seconds per call: best of repeats over about `budget` (machines shared
 * with other work are noisy; the best run is the kernel's own speed). A
 * call slower than the budget is timed once. */
typedef void (*bench_fn)(void *arg);
static double time_it(bench_fn f, void *arg, double budget)
{
    double t0 = aellm_time_s();
    f(arg);
    double best = aellm_time_s() - t0;
    if (best > budget) return best;
    double start = aellm_time_s();
    do {
        t0 = aellm_time_s();
        f(arg);
        double dt = aellm_time_s() - t0;
        if (dt < best) best = dt;
    } while (aellm_time_s() - start < budget);
    return best;
}

static void matvec_fn(void *arg)
{
    matvec_once(arg);
}

typedef struct {
    const case_t *c;
    int64_t T;
    void *scratch;
    int dequant; /* 1: force the dequantize + sgemm path */
} mm_arg;

static void matmul_fn(void *arg)
{
    const mm_arg *a = arg;
    const case_t *c = a->c;
    if (a->dequant)
        aellm_kernel_matmul_dequant(c->type, c->w, c->row_bytes, c->rows, c->n, c->xf, a->T, c->y,
                                    a->scratch);
    else
        aellm_kernel_matmul(c->type, c->w, c->row_bytes, c->rows, c->n, c->xf, a->T, c->y,
                            a->scratch);
}

int main(int argc, char **argv)
{
    int64_t T = argc > 1 ? atoll(argv[1]) : 512;
    if (argc > 2) min_time = atof(argv[2]);
    if (T < 1 || T > 65536 || !(min_time > 0.0)) {
        fprintf(stderr, "usage: bench_kernels [T >= 1] [seconds > 0] [types] [ROWSxN]\n");
        return 2;
    }
    const char *only_type = argc > 3 ? argv[3] : NULL, *only_shape = argc > 4 ? argv[4] : NULL;
    int64_t max_elems = 0, max_n = 0, max_rows = 0;
    for (int s = 0; s < NSHAPES; s++) {
        if (shapes[s][0] * shapes[s][1] > max_elems) max_elems = shapes[s][0] * shapes[s][1];
        if (shapes[s][1] > max_n) max_n = shapes[s][1];
        if (shapes[s][0] > max_rows) max_rows = shapes[s][0];
    }
    printf("aellm kernels: isa %s, %d threads, T = %lld\n", aellm_isa_name(aellm_cpu_isa()),
           omp_get_max_threads(), (long long)T);
    /* The same reference as `aellm bench`'s roofline (core/membw.c: four
     * streams per thread, the widest loads the CPU has), best of 5 passes. */
    double bw = aellm_memory_bandwidth((size_t)1 << 30, omp_get_max_threads()) * 1e-9;
    printf("streaming read bandwidth (1 GiB, best of 5): %.1f GB/s\n\n", bw);

    float *src = xmalloc((size_t)max_elems * sizeof(float));
    float *xf = xmalloc((size_t)(T * max_n) * sizeof(float));
    float *y = xmalloc((size_t)(T * max_rows) * sizeof(float));
    /* Room for several copies of each matrix: 256 MiB, 8x the L3 of the
     * machines this was written on, or the largest f32 matrix. */
    size_t wbuf = (size_t)256 << 20;
    if ((size_t)max_elems * sizeof(float) > wbuf) wbuf = (size_t)max_elems * sizeof(float);
    void *w = xmalloc(wbuf);
    /* f32 activations padded to a whole group (nf4: up to 63 more). */
    void *xq = xmalloc((size_t)(max_n + 128) * sizeof(float));
    fill_random(src, max_elems, 1);
    fill_random(xf, T * max_n, 2);

    printf("%-12s %-10s | %8s %6s | %8s %6s %-5s | %8s\n", "shape", "type", "mv GB/s", "/bw",
           "mm GF/s", "/sgemm", "path", "deq GF/s");
    for (int s = 0; s < NSHAPES; s++) {
        int64_t rows = shapes[s][0], n = shapes[s][1];
        char shape[32];
        snprintf(shape, sizeof(shape), "%lldx%lld", (long long)rows, (long long)n);
        if (only_shape && strcmp(only_shape, shape) != 0) continue;
        double sgemm_gfs = 0.0;
        for (int ti = 0; ti < NTYPES; ti++) {
            int type = types[ti];
            if (only_type && type != AELLM_DTYPE_F32 &&
                !listed(only_type, aellm_dtype_traits_get(type)->name))
                continue;
            size_t rb = aellm_dtype_row_size(type, n), mbytes = (size_t)rows * rb;
            case_t c = {type, rows, n, rb, w, (int64_t)(wbuf / mbytes), 0, xf, xq, y};
            aellm_from_float_fn q = aellm_kernel_from_float(type);
            if (!q) q = aellm_dtype_traits_get(type)->from_float;
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < rows; r++) q(src + r * n, (char *)w + r * c.row_bytes, n);
#pragma omp parallel for schedule(static)
            for (int64_t k = 1; k < c.copies; k++) memcpy((char *)w + k * mbytes, w, mbytes);
            aellm_kernel_quantize_act(type, xf, xq, n);

            double mv = time_it(matvec_fn, &c, min_time);
            double mv_gbs = (double)(rows * c.row_bytes) / mv * 1e-9;

            double flops = 2.0 * (double)T * (double)rows * (double)n;
            size_t sb = aellm_kernel_matmul_scratch(type, rows, n, T);
            mm_arg a = {&c, T, sb ? xmalloc(sb) : NULL, 0};
            double mm_gfs = flops / time_it(matmul_fn, &a, min_time) * 1e-9;
            free(a.scratch);
            if (type == AELLM_DTYPE_F32) sgemm_gfs = mm_gfs;
            double deq_gfs = 0.0;
            if (type != AELLM_DTYPE_F32) {
                mm_arg d = {&c, T, xmalloc(aellm_kernel_matmul_dequant_scratch(rows, n)), 1};
                deq_gfs = flops / time_it(matmul_fn, &d, min_time) * 1e-9;
                free(d.scratch);
            }
            static const char *const path_names[] = {"sgemm", "deq",  "tiles", "x8",
                                                     "w8a8",  "rows", "ftile"};
            const char *path = path_names[aellm_kernel_matmul_auto_path(type, n, T)];
            printf("%-12s %-10s | %8.1f %6.2f | %8.1f %6.2f %-5s | ", ti ? "" : shape,
                   aellm_dtype_traits_get(type)->name, mv_gbs, mv_gbs / bw, mm_gfs,
                   mm_gfs / sgemm_gfs, path);
            if (deq_gfs > 0) printf("%8.1f", deq_gfs);
            printf("\n");
        }
    }
    free(src), free(xf), free(y), free(w), free(xq);
    return 0;
}
