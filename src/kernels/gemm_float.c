/* Prefill product of float weights (f16, bf16, f32) without a dequantized
 * copy of W: the conversion happens while a panel of W is packed into L1,
 * as a BLAS packs its panels (layout in kernels_impl.h). Replaces
 * dequantize-a-chunk-then-sgemm, whose pass over a 32 MiB f32 copy of W
 * cost a quarter of the 1.1B prefill. Threads take chunks of weight rows;
 * each keeps the partial sums of its chunk over the k-blocks in its own
 * buffer and writes them to Y, transposed, at the end. */
#include <omp.h>
#include <string.h>

#include "kernels/kernels_impl.h"

/* Per-thread partial sums: about 128 KiB (a few row groups x all token
 * panels), in L2 beside the k-block of packed tokens. */
#define FT_ACC_FLOATS (32 * 1024)
/* Token k-blocks are cut so that one k-block of all packed tokens (read by
 * every row group) stays within about half of a 1 MiB L2. */
#define FT_XBLOCK_BYTES (512 * 1024)
/* Buffers are per thread, one per core (at most 64): the scratch size
 * depends on the machine, never on OpenMP settings; more threads than
 * cores run as many as there are buffers. */
static int buffers(void)
{
    int procs = omp_get_num_procs();
    return procs < 1 ? 1 : procs > 64 ? 64 : procs;
}

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static int64_t panels(const aellm_ftile_kernel *k, int64_t T)
{
    return ceil_div(T, k->toks);
}

/* Floats of one thread's partial sums: one row group for all tokens at
 * least, all of the matrix's groups at most. */
static size_t acc_floats(const aellm_ftile_kernel *k, int64_t rows, int64_t T)
{
    size_t one = (size_t)k->rows * (size_t)(panels(k, T) * k->toks);
    size_t all = one * (size_t)ceil_div(rows, k->rows);
    size_t want = all < FT_ACC_FLOATS ? all : FT_ACC_FLOATS;
    return one > want ? one : want;
}

typedef struct {
    float *xp;  /* (panels, n, toks) */
    char *per;  /* buffers() x (w panel, partial sums) */
    size_t wsz; /* bytes of one w panel */
    size_t asz; /* bytes of one thread's partial sums */
} ft_scratch;

static size_t ft_layout(const aellm_ftile_kernel *k, int64_t rows, int64_t n, int64_t T, char *base,
                        ft_scratch *s)
{
    size_t xp = align64((size_t)(panels(k, T) * k->toks) * (size_t)n * sizeof(float));
    size_t wsz = align64((size_t)k->rows * AELLM_FT_KC * sizeof(float));
    size_t asz = align64(acc_floats(k, rows, T) * sizeof(float));
    if (base) *s = (ft_scratch){(float *)base, base + xp, wsz, asz};
    return xp + (size_t)buffers() * (wsz + asz);
}

size_t aellm_ftile_scratch(const aellm_ftile_kernel *k, int64_t rows, int64_t n, int64_t T)
{
    return ft_layout(k, rows, n, T, NULL, &(ft_scratch){0});
}

/* xp[p][i][t] = x[p * toks + t][i], zero past T. */
static void pack_tokens(const aellm_ftile_kernel *k, const float *x, int64_t T, int64_t n,
                        float *xp)
{
    int64_t np = panels(k, T), tp = k->toks;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < np; p++) {
        float *dst = xp + p * n * tp;
        int64_t nt = T - p * tp < tp ? T - p * tp : tp;
        for (int64_t i = 0; i < n; i++) {
            for (int64_t t = 0; t < nt; t++) dst[i * tp + t] = x[(p * tp + t) * n + i];
            for (int64_t t = nt; t < tp; t++) dst[i * tp + t] = 0.0f;
        }
    }
}

/* Rows [r0, r0 + nr) of W, elements [k0, k0 + kc), as f32 rows AELLM_FT_KC
 * apart; the rows of the panel past nr are zero. */
static void pack_weights(const aellm_ftile_kernel *k, aellm_to_float_fn conv, int wtype,
                         const void *w, size_t row_bytes, int64_t r0, int nr, int64_t k0,
                         int64_t kc, float *wp)
{
    size_t off = aellm_dtype_row_size(wtype, k0);
    for (int r = 0; r < nr; r++)
        conv((const char *)w + (size_t)(r0 + r) * row_bytes + off, wp + r * AELLM_FT_KC, kc);
    for (int r = nr; r < k->rows; r++) memset(wp + r * AELLM_FT_KC, 0, (size_t)kc * sizeof(float));
}

/* Y[t][r] for the chunk's rows, from its partial sums acc[g][p][r][t]. */
static void write_out(const aellm_ftile_kernel *k, const float *acc, int64_t g0, int64_t g1,
                      int64_t rows, int64_t T, float *y)
{
    int64_t np = panels(k, T), tile = (int64_t)k->rows * k->toks;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t p = 0; p < np; p++) {
            const float *a = acc + ((g - g0) * np + p) * tile;
            int64_t nt = T - p * k->toks < k->toks ? T - p * k->toks : k->toks;
            int64_t nr = rows - g * k->rows < k->rows ? rows - g * k->rows : k->rows;
            for (int64_t t = 0; t < nt; t++)
                for (int64_t r = 0; r < nr; r++)
                    y[(p * k->toks + t) * rows + g * k->rows + r] = a[r * k->toks + t];
        }
}

/* Row groups per chunk: as many as the partial-sum buffer holds, but at
 * least four chunks per thread where the matrix allows, so that the last
 * chunks balance. */
static int64_t chunk_groups(const aellm_ftile_kernel *k, int64_t rows, int64_t T, int nth)
{
    int64_t groups = ceil_div(rows, k->rows);
    int64_t fit =
        (int64_t)(acc_floats(k, rows, T) / ((size_t)k->rows * (size_t)(panels(k, T) * k->toks)));
    int64_t balanced = ceil_div(groups, 4 * (int64_t)nth);
    int64_t cg = balanced < fit ? balanced : fit;
    return cg < 1 ? 1 : cg;
}

void aellm_ftile_matmul(const aellm_ftile_kernel *k, int wtype, const void *w, size_t row_bytes,
                        int64_t rows, int64_t n, const float *x, int64_t T, float *y, void *scratch)
{
    ft_scratch s;
    ft_layout(k, rows, n, T, scratch, &s);
    aellm_to_float_fn conv = aellm_kernel_to_float(wtype);
    int64_t np = panels(k, T), groups = ceil_div(rows, k->rows), tile = (int64_t)k->rows * k->toks;
    int64_t xblock = (int64_t)(FT_XBLOCK_BYTES / ((size_t)(np * k->toks) * sizeof(float)));
    int64_t kb = xblock < 64 ? 64 : xblock > AELLM_FT_KC ? AELLM_FT_KC : xblock;
    int nth = omp_get_max_threads() < buffers() ? omp_get_max_threads() : buffers();
    int64_t cg = chunk_groups(k, rows, T, nth), nchunks = ceil_div(groups, cg);
#pragma omp parallel num_threads(nth)
    {
        char *mine = s.per + (size_t)omp_get_thread_num() * (s.wsz + s.asz);
        float *wp = (float *)mine, *acc = (float *)(mine + s.wsz);
        pack_tokens(k, x, T, n, s.xp); /* ends in the for's barrier */
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t g0 = c * cg, g1 = g0 + cg < groups ? g0 + cg : groups;
            for (int64_t k0 = 0; k0 < n; k0 += kb) {
                int64_t kc = n - k0 < kb ? n - k0 : kb;
                for (int64_t g = g0; g < g1; g++) {
                    int64_t r0 = g * k->rows;
                    int nr = rows - r0 < k->rows ? (int)(rows - r0) : k->rows;
                    pack_weights(k, conv, wtype, w, row_bytes, r0, nr, k0, kc, wp);
                    for (int64_t p = 0; p < np; p++) {
                        aellm_ftile_args a = {.kc = kc,
                                              .w = wp,
                                              .x = s.xp + (p * n + k0) * k->toks,
                                              .acc = acc + ((g - g0) * np + p) * tile,
                                              .add = k0 > 0};
                        k->tile(&a);
                    }
                }
            }
            write_out(k, acc, g0, g1, rows, T, y);
        }
    }
}

/* ---- scalar reference tile ------------------------------------------------ */

enum { SC_ROWS = 4, SC_TOKS = 8 };

static void tile_scalar(const aellm_ftile_args *a)
{
    float c[SC_ROWS][SC_TOKS];
    for (int r = 0; r < SC_ROWS; r++)
        for (int t = 0; t < SC_TOKS; t++) c[r][t] = a->add ? a->acc[r * SC_TOKS + t] : 0.0f;
    for (int64_t i = 0; i < a->kc; i++)
        for (int r = 0; r < SC_ROWS; r++)
            for (int t = 0; t < SC_TOKS; t++)
                c[r][t] += a->w[r * AELLM_FT_KC + i] * a->x[i * SC_TOKS + t];
    for (int r = 0; r < SC_ROWS; r++)
        for (int t = 0; t < SC_TOKS; t++) a->acc[r * SC_TOKS + t] = c[r][t];
}

const aellm_ftile_kernel aellm_ftile_kernel_scalar = {SC_ROWS, SC_TOKS, tile_scalar};
