/* W8A8 prefill for INT8 weights: Y (T, rows) = X . W^T with X quantized per
 * token to INT8, an exact int8 x int8 -> int32 product per (row, token) over
 * the whole row, then one float scale s_w s_x: the same number the decode
 * dot computes. Packing (layout in kernels_impl.h), threading and the scalar
 * reference tile live here; the SIMD tiles in gemm_w8a8_avx2.c / _avx512.c.
 * This file has no ISA flags. */
#include <omp.h>
#include <string.h>

#include "kernels/kernels_impl.h"

/* Work unit: a block of tokens whose packed tiles (n bytes a token) fit in
 * about half of a 512 KiB L2, against a few weight groups; packed weights
 * live in the scratch a chunk of at most W8A8_W_CHUNK_BYTES at a time, so it
 * never holds a copy of a whole large matrix. */
#define W8A8_TOK_BLOCK_BYTES (256 * 1024)
#define W8A8_TOK_BLOCK_MAX   (32 * AELLM_I8_TOKS)
#define W8A8_GROUP_JOB       4
#define W8A8_W_CHUNK_BYTES   ((size_t)8 << 20)
#define W8A8_MAX_ROWS        16 /* rows per group of any kernel */

typedef struct {
    char *xraw;    /* (T, INT8 row): per-token quantized activations */
    int8_t *xt;    /* (tiles, tile bytes) */
    int32_t *xsum; /* (tiles, AELLM_I8_TOKS) */
    int8_t *wg;    /* (chunk groups, group bytes) */
} w8a8_scratch;

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

static int64_t steps4(int64_t n)
{
    return (n + 3) / 4;
}

static int64_t chunk_groups(const aellm_i8_kernel *k, int64_t rows, int64_t n)
{
    int64_t groups = (rows + k->rows - 1) / k->rows;
    int64_t fit = (int64_t)(W8A8_W_CHUNK_BYTES / align64((size_t)(steps4(n) * k->rows * 4)));
    fit = fit < 1 ? 1 : fit;
    return groups < fit ? groups : fit;
}

static size_t layout(const aellm_i8_kernel *k, int64_t rows, int64_t n, int64_t T, char *base,
                     w8a8_scratch *s)
{
    size_t tiles = (size_t)((T + AELLM_I8_TOKS - 1) / AELLM_I8_TOKS);
    size_t tbytes = align64((size_t)(steps4(n) * AELLM_I8_TOKS * 4));
    size_t gbytes = align64((size_t)(steps4(n) * k->rows * 4));
    size_t o1 = align64((size_t)T * aellm_dtype_row_size(AELLM_DTYPE_INT8, n));
    size_t o2 = o1 + tiles * tbytes;
    size_t o3 = o2 + align64(tiles * AELLM_I8_TOKS * sizeof(int32_t));
    size_t o4 = o3 + (size_t)chunk_groups(k, rows, n) * gbytes;
    if (base) {
        s->xraw = base;
        s->xt = (int8_t *)(base + o1);
        s->xsum = (int32_t *)(base + o2);
        s->wg = (int8_t *)(base + o3);
    }
    return o4;
}

size_t aellm_w8a8_scratch(const aellm_i8_kernel *k, int64_t rows, int64_t n, int64_t T)
{
    return layout(k, rows, n, T, NULL, &(w8a8_scratch){0});
}

void aellm_i8_pack_w(const aellm_i8_kernel *k, int8_t *group, const void *w, size_t row_bytes,
                     int nr, int64_t n)
{
    const int R = k->rows;
    memset(group, k->xor80 ? 0x80 : 0, (size_t)(steps4(n) * R * 4));
    for (int r = 0; r < nr; r++) {
        const int8_t *q = (const int8_t *)((const char *)w + (size_t)r * row_bytes) + sizeof(float);
        for (int64_t i = 0; i < n; i++) {
            int8_t v = k->xor80 ? (int8_t)(q[i] ^ 0x80) : q[i];
            group[(i / 4 * R + r) * 4 + i % 4] = v;
        }
    }
}

void aellm_i8_pack_x(int8_t *tile, int32_t *xsum, const void *xq, size_t xrow, int nt, int64_t n)
{
    memset(tile, 0, (size_t)(steps4(n) * AELLM_I8_TOKS * 4));
    for (int t = 0; t < AELLM_I8_TOKS; t++) {
        int32_t sum = 0;
        if (t < nt) {
            const int8_t *q = (const int8_t *)((const char *)xq + t * xrow) + sizeof(float);
            for (int64_t i = 0; i < n; i++) {
                tile[(i / 4 * AELLM_I8_TOKS + t) * 4 + i % 4] = q[i];
                sum += q[i];
            }
        }
        xsum[t] = sum;
    }
}

/* The reference tile: plain int32 sums over the packed operands. */
static void tile_scalar(const aellm_i8_args *a, int32_t *out)
{
    for (int t = 0; t < AELLM_I8_TOKS; t++)
        for (int r = 0; r < 8; r++) {
            int32_t s = 0;
            for (int64_t k = 0; k < a->k4; k++)
                for (int j = 0; j < 4; j++)
                    s += a->w[(k * 8 + r) * 4 + j] * a->x[(k * AELLM_I8_TOKS + t) * 4 + j];
            out[t * 8 + r] = s;
        }
}

const aellm_i8_kernel aellm_i8_kernel_scalar = {8, 0, tile_scalar};

static float row_scale(const void *row)
{
    float s;
    memcpy(&s, row, sizeof(s));
    return s;
}

/* y[t, r] = float(isum) (s_w s_x) for the nr rows and nt tokens of a tile. */
static void finish_tile(const int32_t *acc, int R, const void *w0, size_t row_bytes, int nr,
                        const char *x0, size_t xrow, int nt, float *y, int64_t ldy)
{
    for (int t = 0; t < nt; t++) {
        float sx = row_scale(x0 + (size_t)t * xrow);
        for (int r = 0; r < nr; r++)
            y[t * ldy + r] =
                (float)acc[t * R + r] * (row_scale((const char *)w0 + (size_t)r * row_bytes) * sx);
    }
}

static int64_t token_block(int64_t n)
{
    int64_t tb = W8A8_TOK_BLOCK_BYTES / (n + 4) / AELLM_I8_TOKS * AELLM_I8_TOKS;
    return tb < AELLM_I8_TOKS ? AELLM_I8_TOKS : tb > W8A8_TOK_BLOCK_MAX ? W8A8_TOK_BLOCK_MAX : tb;
}

/* Jobs are (token block, a few groups), token block major, so the threads
 * share one token block in L3 at a time. */
static void run_chunk(const aellm_i8_kernel *k, const w8a8_scratch *s, const void *w,
                      size_t row_bytes, int64_t rows, int64_t n, int64_t T, int64_t g0c,
                      int64_t g1c, float *y)
{
    const int R = k->rows;
    size_t xrow = aellm_dtype_row_size(AELLM_DTYPE_INT8, n);
    size_t tbytes = align64((size_t)(steps4(n) * AELLM_I8_TOKS * 4));
    size_t gbytes = align64((size_t)(steps4(n) * R * 4));
    int64_t tb = token_block(n), ntb = (T + tb - 1) / tb;
    int64_t njobs = (g1c - g0c + W8A8_GROUP_JOB - 1) / W8A8_GROUP_JOB;
#pragma omp for schedule(dynamic, 1)
    for (int64_t job = 0; job < ntb * njobs; job++) {
        int64_t t0 = job / njobs * tb, t1 = t0 + tb < T ? t0 + tb : T;
        int64_t ga = g0c + job % njobs * W8A8_GROUP_JOB;
        int64_t gb = ga + W8A8_GROUP_JOB < g1c ? ga + W8A8_GROUP_JOB : g1c;
        for (int64_t g = ga; g < gb; g++) {
            int64_t r0 = g * R;
            int nr = rows - r0 < R ? (int)(rows - r0) : R;
            const char *w0 = (const char *)w + (size_t)r0 * row_bytes;
            for (int64_t t = t0; t < t1; t += AELLM_I8_TOKS) {
                int nt = t1 - t < AELLM_I8_TOKS ? (int)(t1 - t) : AELLM_I8_TOKS;
                int64_t tile = t / AELLM_I8_TOKS;
                int32_t acc[AELLM_I8_TOKS * W8A8_MAX_ROWS];
                aellm_i8_args a = {.k4 = steps4(n),
                                   .w = s->wg + (size_t)(g - g0c) * gbytes,
                                   .x = s->xt + (size_t)tile * tbytes,
                                   .xsum = s->xsum + tile * AELLM_I8_TOKS};
                k->tile(&a, acc);
                finish_tile(acc, R, w0, row_bytes, nr, s->xraw + (size_t)t * xrow, xrow, nt,
                            y + t * rows + r0, rows);
            }
        }
    }
}

void aellm_w8a8_matmul(const aellm_i8_kernel *k, const void *w, size_t row_bytes, int64_t rows,
                       int64_t n, const float *x, int64_t T, float *y, void *scratch)
{
    w8a8_scratch s;
    layout(k, rows, n, T, scratch, &s);
    aellm_from_float_fn quant = aellm_kernel_from_float(AELLM_DTYPE_INT8);
    size_t xrow = aellm_dtype_row_size(AELLM_DTYPE_INT8, n);
    size_t tbytes = align64((size_t)(steps4(n) * AELLM_I8_TOKS * 4));
    size_t gbytes = align64((size_t)(steps4(n) * k->rows * 4));
    int64_t ntiles = (T + AELLM_I8_TOKS - 1) / AELLM_I8_TOKS;
    int64_t groups = (rows + k->rows - 1) / k->rows, cg = chunk_groups(k, rows, n);
#pragma omp parallel
    {
        /* The decode quantizer, so that prefill and decode see the same quants. */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) quant(x + t * n, s.xraw + (size_t)t * xrow, n);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < ntiles; i++) {
            int64_t t0 = i * AELLM_I8_TOKS;
            int nt = T - t0 < AELLM_I8_TOKS ? (int)(T - t0) : AELLM_I8_TOKS;
            aellm_i8_pack_x(s.xt + (size_t)i * tbytes, s.xsum + i * AELLM_I8_TOKS,
                            s.xraw + (size_t)t0 * xrow, xrow, nt, n);
        }
        for (int64_t c0 = 0; c0 < groups; c0 += cg) {
            int64_t c1 = c0 + cg < groups ? c0 + cg : groups;
#pragma omp for schedule(static)
            for (int64_t g = c0; g < c1; g++) {
                int64_t r0 = g * k->rows;
                int nr = rows - r0 < k->rows ? (int)(rows - r0) : k->rows;
                aellm_i8_pack_w(k, s.wg + (size_t)(g - c0) * gbytes,
                                (const char *)w + (size_t)r0 * row_bytes, row_bytes, nr, n);
            }
            run_chunk(k, &s, w, row_bytes, rows, n, T, c0, c1, y);
        }
    }
}
