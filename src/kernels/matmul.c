/* Prefill products Y (T, rows) = X (T, n) . W^T: OpenBLAS sgemm for f32
 * weights, dequantize-and-sgemm for f16/bf16, and for q8_0/q4_0/q4_1 an
 * integer tiled kernel on activations quantized once. Not a general GEMM:
 * W is always the transposed right operand and Y is written, not added to. */
#include <cblas.h>
#include <string.h>

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/kernels_impl.h"

/* Rows dequantized per sgemm call: large enough for sgemm to reach its speed,
 * small enough that the f32 copy stays in L3. */
#define DEQ_CHUNK_ROWS 256
/* Integer path work unit: a block of tokens whose activations stay in L2
 * while a chunk of weight rows streams past them. */
#define MM_TOK_BLOCK (16 * AELLM_MM_TT)
#define MM_ROW_CHUNK (16 * AELLM_MM_TR)

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

static aellm_gemm_tile_fn tile_kernel(int wtype)
{
    aellm_gemm_tile_fn f;
    AELLM_PICK_ISA(aellm_kernel_traits_ext_get(wtype)->gemm_tile, f);
    return f;
}

/* The integer path wins over dequantize+sgemm at every T measured (see
 * bench/bench_kernels.c); it needs a tile kernel for the CPU's ISA. */
static int use_tiles(int wtype)
{
    return tile_kernel(wtype) != NULL;
}

/* ---- (a) dequantize chunks of W to f32, then sgemm ---------------------- */

size_t aellm_kernel_matmul_dequant_scratch(int64_t rows, int64_t n)
{
    int64_t chunk = rows < DEQ_CHUNK_ROWS ? rows : DEQ_CHUNK_ROWS;
    return (size_t)chunk * (size_t)n * sizeof(float);
}

void aellm_kernel_matmul_dequant(int wtype, const void *w, size_t row_bytes, int64_t rows,
                                 int64_t n, const float *x, int64_t T, float *y, void *scratch)
{
    float *wf = scratch;
    aellm_to_float_fn deq = aellm_kernel_to_float(wtype);
    for (int64_t r0 = 0; r0 < rows; r0 += DEQ_CHUNK_ROWS) {
        int64_t nr = rows - r0 < DEQ_CHUNK_ROWS ? rows - r0 : DEQ_CHUNK_ROWS;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nr; i++)
            deq((const char *)w + (size_t)(r0 + i) * row_bytes, wf + i * n, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nr, (int)n, 1.0f, x,
                    (int)n, wf, (int)n, 0.0f, y + r0, (int)rows);
    }
}

/* ---- (b) integer tiles on repacked operands ----------------------------- */

typedef struct {
    int8_t *xq; /* (T, nb, 32) */
    float *xd;  /* (T, nb, 8) */
    float *xs;  /* (T, nb) activation term of the q4 offset: -8 dx sum(q) or Q8_1's s */
    float *wd;  /* (rows, nb) weight scales */
    float *wm;  /* (rows, nb) q4_1 minimums */
    char *xraw; /* (T, row size of the vec_dot_type) */
} tile_scratch;

static size_t tile_layout(int wtype, int64_t rows, int64_t n, int64_t T, char *base,
                          tile_scratch *s)
{
    int64_t nb = n / 32;
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    size_t sizes[6] = {(size_t)(T * nb * 32),
                       (size_t)(T * nb * 8) * sizeof(float),
                       (size_t)(T * nb) * sizeof(float),
                       (size_t)(rows * nb) * sizeof(float),
                       (size_t)(rows * nb) * sizeof(float),
                       (size_t)T * aellm_dtype_row_size(vdt, n)};
    void **slots[6] = {(void **)&s->xq, (void **)&s->xd, (void **)&s->xs,
                       (void **)&s->wd, (void **)&s->wm, (void **)&s->xraw};
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        if (base) *slots[i] = base + off;
        off += align64(sizes[i]);
    }
    return off;
}

/* Quantizes X with the same fast quantizer as the matvec path (so prefill
 * and decode see identical activation quants), then splits the blocks into
 * quants and f32 scales. */
static void pack_x(int wtype, const float *x, int64_t T, int64_t n, const tile_scratch *s)
{
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    aellm_from_float_fn quant = aellm_kernel_from_float(vdt);
    size_t xrow = aellm_dtype_row_size(vdt, n);
    int64_t nb = n / 32;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        char *raw = s->xraw + (size_t)t * xrow;
        quant(x + t * n, raw, n);
        for (int64_t b = 0; b < nb; b++) {
            const int8_t *qs;
            float d, xs;
            if (vdt == AELLM_DTYPE_Q8_1) {
                const aellm_block_q8_1 *blk = (const aellm_block_q8_1 *)raw + b;
                qs = blk->qs, d = aellm_f16_to_f32(blk->d), xs = aellm_f16_to_f32(blk->s);
            } else {
                const aellm_block_q8_0 *blk = (const aellm_block_q8_0 *)raw + b;
                int sum = 0;
                for (int j = 0; j < 32; j++) sum += blk->qs[j];
                qs = blk->qs, d = aellm_f16_to_f32(blk->d), xs = -8.0f * d * (float)sum;
            }
            memcpy(s->xq + (t * nb + b) * 32, qs, 32);
            for (int j = 0; j < 8; j++) s->xd[(t * nb + b) * 8 + j] = d;
            s->xs[t * nb + b] = xs;
        }
    }
}

/* Block scales (and q4_1 minimums) as f32, so the tiles never convert halves. */
static void pack_w_scales(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t nb,
                          const tile_scratch *s)
{
    size_t bsize = aellm_dtype_traits_get(wtype)->type_size;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const char *row = (const char *)w + (size_t)r * row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint16_t *h = (const uint16_t *)(row + (size_t)b * bsize);
            s->wd[r * nb + b] = aellm_f16_to_f32(h[0]);
            if (wtype == AELLM_DTYPE_Q4_1) s->wm[r * nb + b] = aellm_f16_to_f32(h[1]);
        }
    }
}

static void run_tiles(aellm_gemm_tile_fn tile, const void *w, size_t row_bytes, int64_t rows,
                      int64_t nb, int64_t T, float *y, const tile_scratch *s)
{
    int64_t ntb = (T + MM_TOK_BLOCK - 1) / MM_TOK_BLOCK;
    int64_t nrc = (rows + MM_ROW_CHUNK - 1) / MM_ROW_CHUNK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t job = 0; job < ntb * nrc; job++) {
        int64_t t0 = job / nrc * MM_TOK_BLOCK, rc0 = job % nrc * MM_ROW_CHUNK;
        int64_t t1 = t0 + MM_TOK_BLOCK < T ? t0 + MM_TOK_BLOCK : T;
        int64_t rc1 = rc0 + MM_ROW_CHUNK < rows ? rc0 + MM_ROW_CHUNK : rows;
        for (int64_t r = rc0; r < rc1; r += AELLM_MM_TR) {
            int nr = rc1 - r < AELLM_MM_TR ? (int)(rc1 - r) : AELLM_MM_TR;
            for (int64_t t = t0; t < t1; t += AELLM_MM_TT) {
                int nt = t1 - t < AELLM_MM_TT ? (int)(t1 - t) : AELLM_MM_TT;
                aellm_gemm_tile_args a = {
                    .nb = nb,
                    .w = (const char *)w + (size_t)r * row_bytes,
                    .row_bytes = row_bytes,
                    .wd = s->wd + r * nb,
                    .xq = s->xq + t * nb * 32,
                    .xd = s->xd + t * nb * 8,
                    .y = y + t * rows + r,
                    .ldy = rows,
                };
                tile(&a, nr, nt);
            }
        }
    }
}

/* The q4 offsets, sum_b c[r][b] xs[t][b] with c = d (q4_0, xs = -8 dx sum q)
 * or c = m (q4_1, xs = s), form a (T, rows) product over nb = n/32 terms:
 * one sgemm adds them to Y at 1/32 of the integer work. */
static void add_q4_offsets(int wtype, int64_t rows, int64_t nb, int64_t T, float *y,
                           const tile_scratch *s)
{
    const float *c = wtype == AELLM_DTYPE_Q4_1 ? s->wm : s->wd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)rows, (int)nb, 1.0f, s->xs,
                (int)nb, c, (int)nb, 1.0f, y, (int)rows);
}

static void matmul_tiles(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                         const float *x, int64_t T, float *y, void *scratch)
{
    tile_scratch s;
    int64_t nb = n / 32;
    tile_layout(wtype, rows, n, T, scratch, &s);
    pack_x(wtype, x, T, n, &s);
    pack_w_scales(wtype, w, row_bytes, rows, nb, &s);
    run_tiles(tile_kernel(wtype), w, row_bytes, rows, nb, T, y, &s);
    if (wtype != AELLM_DTYPE_Q8_0) add_q4_offsets(wtype, rows, nb, T, y, &s);
}

/* ---- entry points ------------------------------------------------------- */

size_t aellm_kernel_matmul_scratch(int wtype, int64_t rows, int64_t n, int64_t T)
{
    if (wtype == AELLM_DTYPE_F32) return 0;
    if (use_tiles(wtype)) return tile_layout(wtype, rows, n, T, NULL, &(tile_scratch){0});
    return aellm_kernel_matmul_dequant_scratch(rows, n);
}

void aellm_kernel_matmul(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                         const float *x, int64_t T, float *y, void *scratch)
{
    if (wtype == AELLM_DTYPE_F32)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)rows, (int)n, 1.0f, x,
                    (int)n, w, (int)(row_bytes / sizeof(float)), 0.0f, y, (int)rows);
    else if (use_tiles(wtype))
        matmul_tiles(wtype, w, row_bytes, rows, n, x, T, y, scratch);
    else
        aellm_kernel_matmul_dequant(wtype, w, row_bytes, rows, n, x, T, y, scratch);
}
