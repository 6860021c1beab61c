/* Prefill products Y (T, rows) = X (T, n) . W^T: OpenBLAS sgemm for f32
 * weights, dequantize-and-sgemm (a row at a time, so rows of any length and
 * row headers work) for f16/bf16 and the INT4-group / NF4 / FP8 formats,
 * W8A8's int32 GEMM for INT8, integer tiles on 8-row
 * interleaved weights ("x8") for q4_0 and q8_0 from a few tokens on, and
 * the 4x3 integer tiles for q4_1 and the shortest q4_0/q8_0 batches; the
 * integer paths quantize the activations once. Not a general GEMM: W is always the transposed right
 * operand and Y is written, not added to. */
#include <cblas.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#include "core/blocks.h"
#include "core/half.h"
#include "kernels/kernels_impl.h"

/* Integer path work unit: a block of tokens whose packed activations (9n/8
 * bytes each) fit in about half of a 512 KiB L2, against a chunk of weight
 * rows, packed one panel at a time into L1 and reused for every token. */
#define MM_TOK_BLOCK_BYTES (256 * 1024)
#define MM_TOK_BLOCK_MAX   (32 * AELLM_MM_TT)
#define MM_ROW_CHUNK       (16 * AELLM_MM_TR)
/* Panel buffers are per thread; scratch holds this many whatever the thread
 * count, so its size never depends on OpenMP settings. */
#define MM_MAX_THREADS 64

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* Pack and tile kernels of one ISA (the best with both), or 0. */
static int tile_kernels(int wtype, aellm_gemm_pack_fn *pack, aellm_gemm_tile_fn *tile)
{
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(wtype);
    for (int isa = (int)aellm_cpu_isa(); isa > 0; isa--)
        if (ext->gemm_pack[isa] && ext->gemm_tile[isa]) {
            *pack = ext->gemm_pack[isa], *tile = ext->gemm_tile[isa];
            return 1;
        }
    return 0;
}

/* Measured on the 2-core Zen 3 this was written on (bench/bench_kernels.c,
 * 2048 x 2048, 2 threads; dequantize + sgemm vs integer tiles, GFLOP/s):
 *   q4_0: T=16 52 vs 65, T=64 105 vs 113, T=256 117 vs 120, T=512 92-103 vs 98-113
 *   q8_0: T=16 53 vs 60, T=64 96 vs 83,   T=256 94 vs 77,   T=512 93 vs 82
 * The q4 tiles are never slower; the q8_0 tile pays one more instruction
 * per pair (the sign trick) and loses to sgemm from a few dozen tokens on.
 * Below that, dequantizing all of W costs more than the product itself. */
#define MM_Q8_0_TILES_BELOW_T 32

/* x8 tiles (8-row interleaved weights, section (c)) replace both for q4_0
 * and q8_0 from a few tokens on. Measured interleaved in one process
 * (bench/bench_matmul_ab, 5 rounds x best of 2 calls, median of per-round
 * ratios; same 2-core Zen 3, 2 threads), T = 512, x8 / f32 sgemm and
 * x8 / the 4x3 tiles:
 *   q4_0: 768x768 1.50 / 1.63, 2048x768 1.51 / 1.65, 768x2048 1.35 / 1.62,
 *         2048x2048 1.52 / 1.62, 256x2048 1.37 / 1.54, 5632x2048 1.52 / 1.62,
 *         2048x5632 1.47 / 1.59 (then ~+10% more from keeping GCC from
 *         unrolling the tiles' inner loop, which had spilled: 768x768
 *         1.42 / 1.75, 2048x2048 1.48 / 1.77 in a slower period)
 *   q8_0: 768x768 1.14 / 1.56, 2048x768 1.16 / 1.56, 768x2048 1.18 / 1.54,
 *         2048x2048 1.15 / 1.53, 256x2048 1.06 / 1.47, 5632x2048 1.18 / 1.58,
 *         2048x5632 1.09 / 1.51 (dequantize + sgemm: 0.95-1.02)
 * Short batches, 2048x2048 and 768x768, x8 / 4x3 tiles: T = 3: q4_0 1.15,
 * q8_0 0.67-0.71; T = 4: ~1.0 both; T = 8: q4_0 1.42-1.49, q8_0 1.09-1.10;
 * T = 16: 1.20 / 1.18-1.25; T = 64: 1.39-1.49 / 1.41-1.44. Below those
 * thresholds the tiles pad less (3 tokens, not 4) and pack only panels. */
#define X8_Q4_0_MIN_T 3
#define X8_Q8_0_MIN_T 8

/* ---- threading ---------------------------------------------------------- */

/* All prefill threading is OpenMP's: each thread runs single-threaded sgemm
 * on its own slice of W's rows. A multi-threaded OpenBLAS (the pthread build
 * Debian ships) would keep its own pool spinning after each call, and on a
 * machine with as many cores as threads that pool and OpenMP's steal each
 * other's cores: measured, 3x to 30x slower matvecs after a prefill. So
 * OpenBLAS is set to one thread, once, for the whole process. */
static void blas_single_threaded(void)
{
    static atomic_int done;
    if (atomic_exchange(&done, 1)) return;
    int omp_threads = omp_get_max_threads();
    openblas_set_num_threads(1);
    /* OpenBLAS's OpenMP build does that with omp_set_num_threads(1), which
     * left every later parallel region of ours on one thread: prefill ran at
     * single-core speed. Our regions get their thread count back; sgemm,
     * always called inside them, stays single-threaded either way. */
    omp_set_num_threads(omp_threads);
}

/* Rows [r0, r1) of thread `id` among `nt`, in whole multiples of `align`. */
static void thread_rows(int64_t rows, int64_t align, int id, int nt, int64_t *r0, int64_t *r1)
{
    int64_t units = (rows + align - 1) / align, per = units / nt, extra = units % nt;
    int64_t u0 = id * per + (id < extra ? id : extra), u1 = u0 + per + (id < extra);
    *r0 = u0 * align < rows ? u0 * align : rows;
    *r1 = u1 * align < rows ? u1 * align : rows;
}

/* Y[:, r0:r1] (+)= X . W[r0:r1]^T; wr0 points at row r0 of W (f32, ldw apart). */
static void sgemm_rows(const float *x, int64_t T, int64_t n, const float *wr0, int64_t ldw,
                       int64_t r0, int64_t r1, float *y, int64_t ldy, float beta)
{
    if (r1 <= r0 || T <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)(r1 - r0), (int)n, 1.0f, x,
                (int)n, wr0, (int)ldw, beta, y + r0, (int)ldy);
}

static void matmul_f32(const float *w, size_t row_bytes, int64_t rows, int64_t n, const float *x,
                       int64_t T, float *y)
{
#pragma omp parallel
    {
        int64_t r0, r1;
        thread_rows(rows, 16, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        int64_t ldw = (int64_t)(row_bytes / sizeof(float));
        sgemm_rows(x, T, n, w + r0 * ldw, ldw, r0, r1, y, rows, 0.0f);
    }
}

/* ---- (a) dequantize chunks of W to f32, then sgemm ---------------------- */

/* Rows converted per step: as many as fit in 32 MiB of f32 (a whole matrix
 * of the shapes we run, the 32000-row output in a few steps). Few, large
 * sgemms matter: each call packs X again, so small chunks paid that T x n
 * packing once per chunk and ran at half of sgemm's speed. Converting a
 * matrix costs ~1/T of the product, nothing next to it at T = 512. */
#define DEQ_CHUNK_BYTES ((int64_t)32 << 20)

static int64_t deq_chunk_rows(int64_t rows, int64_t n)
{
    int64_t fit = DEQ_CHUNK_BYTES / (n * (int64_t)sizeof(float));
    fit = fit < 64 ? 64 : fit;
    return rows < fit ? rows : fit;
}

size_t aellm_kernel_matmul_dequant_scratch(int64_t rows, int64_t n)
{
    return (size_t)deq_chunk_rows(rows, n) * (size_t)n * sizeof(float);
}

void aellm_kernel_matmul_dequant(int wtype, const void *w, size_t row_bytes, int64_t rows,
                                 int64_t n, const float *x, int64_t T, float *y, void *scratch)
{
    aellm_to_float_fn deq = aellm_kernel_to_float(wtype);
    int64_t chunk = deq_chunk_rows(rows, n);
    float *wf = scratch;
    blas_single_threaded();
    for (int64_t c0 = 0; c0 < rows; c0 += chunk) {
        int64_t c1 = c0 + chunk < rows ? c0 + chunk : rows;
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (int64_t r = c0; r < c1; r++)
                deq((const char *)w + (size_t)r * row_bytes, wf + (r - c0) * n, n);
            int64_t r0, r1;
            thread_rows(c1 - c0, 16, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
            sgemm_rows(x, T, n, wf + r0 * n, n, c0 + r0, c0 + r1, y, rows, 0.0f);
        }
    }
}

/* ---- (b) integer tiles on repacked operands ----------------------------- */

typedef struct {
    int8_t *xq;   /* (groups, AELLM_MM_XGROUP_BYTES(n)) */
    float *xd;    /* (groups, AELLM_MM_XGROUP_SCALES(n)) */
    float *xs;    /* (T, nb) activation term of the q4 offset: -8 dx sum(q) or Q8_1's s */
    float *wd;    /* (rows, nb) weight scales */
    float *wm;    /* (rows, nb) q4_1 minimums */
    char *xraw;   /* (T, row size of the vec_dot_type) */
    char *panels; /* MM_MAX_THREADS panels of AELLM_MM_PANEL_BYTES(n) */
} tile_scratch;

/* Carves `base` into the arrays of s (when base is not NULL); returns the
 * bytes needed. Each array starts on a cache line. */
static size_t tile_layout(int wtype, int64_t rows, int64_t n, int64_t T, char *base,
                          tile_scratch *s)
{
    int64_t nb = n / 32;
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    size_t off[8] = {0};
    size_t groups = (size_t)((T + AELLM_MM_TT - 1) / AELLM_MM_TT);
    off[1] = off[0] + align64(groups * AELLM_MM_XGROUP_BYTES(n));                  /* xq */
    off[2] = off[1] + align64(groups * AELLM_MM_XGROUP_SCALES(n) * sizeof(float)); /* xd */
    off[3] = off[2] + align64((size_t)(T * nb) * sizeof(float));                   /* xs */
    off[4] = off[3] + align64((size_t)(rows * nb) * sizeof(float));                /* wd */
    off[5] = off[4] + align64((size_t)(rows * nb) * sizeof(float));                /* wm */
    off[6] = off[5] + align64((size_t)T * aellm_dtype_row_size(vdt, n));           /* xraw */
    off[7] = off[6] + MM_MAX_THREADS * align64(AELLM_MM_PANEL_BYTES(n));           /* panels */
    if (base) {
        s->xq = (int8_t *)(base + off[0]);
        s->xd = (float *)(base + off[1]);
        s->xs = (float *)(base + off[2]);
        s->wd = (float *)(base + off[3]);
        s->wm = (float *)(base + off[4]);
        s->xraw = base + off[5];
        s->panels = base + off[6];
    }
    return off[7];
}

/* Quantizes X with the same fast quantizer as the matvec path (so prefill
 * and decode see identical activation quants), then lays the blocks out in
 * token groups as the tiles read them (kernels_impl.h) with f32 scales. */
static void pack_x(int wtype, const float *x, int64_t T, int64_t n, const tile_scratch *s)
{
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    aellm_from_float_fn quant = aellm_kernel_from_float(vdt);
    size_t xrow = aellm_dtype_row_size(vdt, n);
    int64_t nb = n / 32, groups = (T + AELLM_MM_TT - 1) / AELLM_MM_TT;
    /* Zero the padding once: missing tokens of the last group and the
     * block after an odd last one contribute nothing. */
    memset(s->xq, 0, (size_t)groups * AELLM_MM_XGROUP_BYTES(n));
    memset(s->xd, 0, (size_t)groups * AELLM_MM_XGROUP_SCALES(n) * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        char *raw = s->xraw + (size_t)t * xrow;
        int8_t *gq = s->xq + (size_t)(t / AELLM_MM_TT) * AELLM_MM_XGROUP_BYTES(n);
        float *gd = s->xd + (size_t)(t / AELLM_MM_TT) * AELLM_MM_XGROUP_SCALES(n);
        int k = (int)(t % AELLM_MM_TT);
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
            memcpy(gq + ((b / 2) * AELLM_MM_TT + k) * 64 + (b & 1) * 32, qs, 32);
            gd[b * AELLM_MM_TT + k] = d;
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

static int64_t token_block(int64_t n)
{
    int64_t tb = MM_TOK_BLOCK_BYTES / (n + n / 8) / AELLM_MM_TT * AELLM_MM_TT;
    return tb < AELLM_MM_TT ? AELLM_MM_TT : tb > MM_TOK_BLOCK_MAX ? MM_TOK_BLOCK_MAX : tb;
}

/* Jobs are (token block, row chunk) pairs, token block major, so the
 * threads share one token block in L3 at a time. */
static void run_tiles(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                      int64_t T, float *y, const tile_scratch *s)
{
    aellm_gemm_pack_fn pack;
    aellm_gemm_tile_fn tile;
    tile_kernels(wtype, &pack, &tile);
    int64_t nb = n / 32, tb = token_block(n);
    int64_t ntb = (T + tb - 1) / tb, nrc = (rows + MM_ROW_CHUNK - 1) / MM_ROW_CHUNK;
    int nthreads = omp_get_max_threads() < MM_MAX_THREADS ? omp_get_max_threads() : MM_MAX_THREADS;
#pragma omp parallel num_threads(nthreads)
    {
        void *panel = s->panels + omp_get_thread_num() * align64(AELLM_MM_PANEL_BYTES(n));
#pragma omp for schedule(dynamic, 1)
        for (int64_t job = 0; job < ntb * nrc; job++) {
            int64_t t0 = job / nrc * tb, rc0 = job % nrc * MM_ROW_CHUNK;
            int64_t t1 = t0 + tb < T ? t0 + tb : T;
            int64_t rc1 = rc0 + MM_ROW_CHUNK < rows ? rc0 + MM_ROW_CHUNK : rows;
            for (int64_t r = rc0; r < rc1; r += AELLM_MM_TR) {
                int nr = rc1 - r < AELLM_MM_TR ? (int)(rc1 - r) : AELLM_MM_TR;
                pack(panel, (const char *)w + (size_t)r * row_bytes, row_bytes, nr, s->wd + r * nb,
                     nb);
                for (int64_t t = t0; t < t1; t += AELLM_MM_TT) {
                    int nt = t1 - t < AELLM_MM_TT ? (int)(t1 - t) : AELLM_MM_TT;
                    aellm_gemm_tile_args a = {
                        .nb = nb,
                        .panel = panel,
                        .xq = s->xq + (size_t)(t / AELLM_MM_TT) * AELLM_MM_XGROUP_BYTES(n),
                        .xd = s->xd + (size_t)(t / AELLM_MM_TT) * AELLM_MM_XGROUP_SCALES(n),
                        .y = y + t * rows + r,
                        .ldy = rows};
                    tile(&a, nr, nt);
                }
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
#pragma omp parallel
    {
        int64_t r0, r1;
        thread_rows(rows, 16, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        sgemm_rows(s->xs, T, nb, c + r0 * nb, nb, r0, r1, y, rows, 1.0f);
    }
}

static void matmul_tiles(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                         const float *x, int64_t T, float *y, void *scratch)
{
    tile_scratch s;
    int64_t nb = n / 32;
    tile_layout(wtype, rows, n, T, scratch, &s);
    pack_x(wtype, x, T, n, &s);
    pack_w_scales(wtype, w, row_bytes, rows, nb, &s);
    run_tiles(wtype, w, row_bytes, rows, n, T, y, &s);
    if (wtype != AELLM_DTYPE_Q8_0) add_q4_offsets(wtype, rows, nb, T, y, &s);
}

/* ---- (c) integer tiles on 8-row interleaved weights ----------------------- */

/* The x8 tile kernel of the best ISA that has one, or NULL. */
static aellm_x8_tile_fn x8_kernel(int wtype)
{
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(wtype);
    aellm_x8_tile_fn f = NULL;
    if (ext && aellm_x8_group_bytes(wtype, 32)) AELLM_PICK_ISA(ext->x8_tile, f);
    return f;
}

/* Work unit: a block of tokens whose packed tiles (1.25 n bytes a token)
 * fit in about half of a 512 KiB L2, against a chunk of weight groups; each
 * group (9n/16 or 17n/16 bytes a row x 8) stays in L1/L2 for every tile of
 * the block. */
#define X8_TOK_BLOCK_BYTES (256 * 1024)
#define X8_TOK_BLOCK_MAX   (32 * AELLM_X8_TOKS)
#define X8_GROUP_CHUNK     4

typedef struct {
    char *xraw;       /* (T, Q8_0 row) */
    aellm_x8_act *xt; /* (tiles, nb) */
    char *wg;         /* (groups, aellm_x8_group_bytes) */
} x8_scratch;

/* Packed weights live in the scratch a chunk of groups at a time (at most
 * X8_W_CHUNK_BYTES, at least one group), so the scratch never holds a copy
 * of a whole large matrix (the 32000-row output layer). */
#define X8_W_CHUNK_BYTES ((size_t)8 << 20)

static int64_t x8_chunk_groups(int wtype, int64_t rows, int64_t n)
{
    int64_t groups = (rows + AELLM_X8_ROWS - 1) / AELLM_X8_ROWS;
    int64_t fit = (int64_t)(X8_W_CHUNK_BYTES / align64(aellm_x8_group_bytes(wtype, n)));
    fit = fit < 1 ? 1 : fit;
    return groups < fit ? groups : fit;
}

static size_t x8_layout(int wtype, int64_t rows, int64_t n, int64_t T, char *base, x8_scratch *s)
{
    size_t tiles = (size_t)((T + AELLM_X8_TOKS - 1) / AELLM_X8_TOKS);
    size_t o1 = align64((size_t)T * aellm_dtype_row_size(AELLM_DTYPE_Q8_0, n));
    size_t o2 = o1 + align64(tiles * (size_t)(n / 32) * sizeof(aellm_x8_act));
    size_t o3 =
        o2 + (size_t)x8_chunk_groups(wtype, rows, n) * align64(aellm_x8_group_bytes(wtype, n));
    if (base) s->xraw = base, s->xt = (aellm_x8_act *)(base + o1), s->wg = base + o2;
    return o3;
}

static void matmul_x8(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                      const float *x, int64_t T, float *y, void *scratch)
{
    aellm_x8_tile_fn tile = x8_kernel(wtype);
    aellm_from_float_fn quant = aellm_kernel_from_float(AELLM_DTYPE_Q8_0);
    x8_scratch s;
    x8_layout(wtype, rows, n, T, scratch, &s);
    int64_t nb = n / 32, ntiles = (T + AELLM_X8_TOKS - 1) / AELLM_X8_TOKS;
    int64_t groups = (rows + AELLM_X8_ROWS - 1) / AELLM_X8_ROWS;
    size_t xrow = aellm_dtype_row_size(AELLM_DTYPE_Q8_0, n);
    size_t gbytes = align64(aellm_x8_group_bytes(wtype, n));
    int64_t tb = X8_TOK_BLOCK_BYTES / (n + n / 4) / AELLM_X8_TOKS * AELLM_X8_TOKS;
    tb = tb < AELLM_X8_TOKS ? AELLM_X8_TOKS : tb > X8_TOK_BLOCK_MAX ? X8_TOK_BLOCK_MAX : tb;
    int64_t ntb = (T + tb - 1) / tb, cg = x8_chunk_groups(wtype, rows, n);
#pragma omp parallel
    {
        /* The same fast quantizer as the matvec path, so that prefill and
         * decode see identical activation quants. */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) quant(x + t * n, s.xraw + (size_t)t * xrow, n);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < ntiles; i++) {
            int64_t t0 = i * AELLM_X8_TOKS;
            int nt = T - t0 < AELLM_X8_TOKS ? (int)(T - t0) : AELLM_X8_TOKS;
            aellm_x8_pack_x(wtype, s.xt + i * nb, s.xraw + (size_t)t0 * xrow, xrow, nt, nb);
        }
        for (int64_t c0 = 0; c0 < groups; c0 += cg) {
            int64_t c1 = c0 + cg < groups ? c0 + cg : groups, nchunks;
#pragma omp for schedule(static)
            for (int64_t g = c0; g < c1; g++) {
                int64_t r0 = g * AELLM_X8_ROWS;
                int nr = rows - r0 < AELLM_X8_ROWS ? (int)(rows - r0) : AELLM_X8_ROWS;
                aellm_x8_pack_w(wtype, s.wg + (size_t)(g - c0) * gbytes, w, row_bytes, r0, nr, nb);
            }
            /* Jobs are (token block, group chunk), token block major, so
             * that the threads share one token block in L3 at a time. */
            nchunks = (c1 - c0 + X8_GROUP_CHUNK - 1) / X8_GROUP_CHUNK;
#pragma omp for schedule(dynamic, 1)
            for (int64_t job = 0; job < ntb * nchunks; job++) {
                int64_t t0 = job / nchunks * tb, g0 = c0 + job % nchunks * X8_GROUP_CHUNK;
                int64_t t1 = t0 + tb < T ? t0 + tb : T;
                int64_t g1 = g0 + X8_GROUP_CHUNK < c1 ? g0 + X8_GROUP_CHUNK : c1;
                for (int64_t g = g0; g < g1; g++) {
                    int64_t r0 = g * AELLM_X8_ROWS;
                    int nr = rows - r0 < AELLM_X8_ROWS ? (int)(rows - r0) : AELLM_X8_ROWS;
                    for (int64_t t = t0; t < t1; t += AELLM_X8_TOKS) {
                        int nt = t1 - t < AELLM_X8_TOKS ? (int)(t1 - t) : AELLM_X8_TOKS;
                        aellm_x8_args a = {.nb = nb,
                                           .w = s.wg + (size_t)(g - c0) * gbytes,
                                           .x = s.xt + (t / AELLM_X8_TOKS) * nb,
                                           .y = y + t * rows + r0,
                                           .ldy = rows};
                        tile(&a, nr, nt);
                    }
                }
            }
        }
    }
}

/* ---- (d) W8A8: int8 activations per token, int32 GEMM (gemm_w8a8.c) ------- */

static const aellm_i8_kernel *i8_kernel(int wtype)
{
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(wtype);
    const aellm_i8_kernel *k = NULL;
    if (ext) AELLM_PICK_ISA(ext->i8, k);
    return k;
}

/* ---- (e) float weights converted while packed (gemm_float.c) -------------- */

static const aellm_ftile_kernel *ftile_kernel(int wtype)
{
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(wtype);
    const aellm_ftile_kernel *k = NULL;
    if (ext) AELLM_PICK_ISA(ext->ftile, k);
    return k;
}

/* ---- entry points ------------------------------------------------------- */

/* The g32 types are q4_0 / q4_1 / q8_0's bytes: rows of whole blocks take
 * their twin's integer paths; rows ending in a partial block dequantize. */
/* Decode's computation token by token: each activation row quantized as
 * matvec quantizes it, then the matvec kernel. The scalar reference's path
 * for integer types that have no scalar tile, so prefill equals decode;
 * not for the interleaved layouts, which have no one-row dot. */
static int quantizes_act(int wtype)
{
    return aellm_kernel_traits_get(wtype)->vec_dot_type != AELLM_DTYPE_F32 &&
           aellm_kernel_vec_dot(wtype);
}

static size_t rows_scratch(int wtype, int64_t n, int64_t T)
{
    return (size_t)T * aellm_kernel_act_bytes(wtype, n);
}

static void matmul_rows(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                        const float *x, int64_t T, float *y, void *scratch)
{
    size_t ab = aellm_kernel_act_bytes(wtype, n);
    char *act = scratch;
    for (int64_t t = 0; t < T; t++) aellm_kernel_quantize_act(wtype, x + t * n, act + t * ab, n);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; t++)
        aellm_kernel_matvec(wtype, n, w, row_bytes, act + t * ab, y + t * rows, 0, rows);
}

static int twin(int wtype, int64_t n)
{
    if (n % 32) return wtype;
    return wtype == AELLM_DTYPE_INT4S_G32   ? AELLM_DTYPE_Q4_0
           : wtype == AELLM_DTYPE_INT4A_G32 ? AELLM_DTYPE_Q4_1
           : wtype == AELLM_DTYPE_INT8_G32  ? AELLM_DTYPE_Q8_0
                                            : wtype;
}

int aellm_kernel_matmul_has_path(int wtype, int path)
{
    aellm_gemm_pack_fn pack;
    aellm_gemm_tile_fn tile;
    if (path == AELLM_MM_FTILE) return ftile_kernel(wtype) != NULL;
    if (wtype == AELLM_DTYPE_F32 || path == AELLM_MM_AUTO) return 1;
    if (path == AELLM_MM_DEQUANT) return aellm_kernel_to_float(wtype) != NULL;
    if (path == AELLM_MM_TILES) return tile_kernels(wtype, &pack, &tile);
    if (path == AELLM_MM_I8) return i8_kernel(wtype) != NULL;
    if (path == AELLM_MM_ROWS) return quantizes_act(wtype);
    return path == AELLM_MM_X8 && x8_kernel(wtype) != NULL;
}

/* Float weights convert while packed (gemm_float.c) from FT_MIN_T tokens
 * on, where a tile's 16 or 32 token lanes are mostly full. Measured on a
 * 2-core AMD EPYC (Zen 5, AVX-512; bench_matmul_ab, 2 threads, medians of
 * 3 rounds), GFLOP/s, f16 at T = 512: the 12 x 32 AVX-512 tile 309-343
 * against dequantize + sgemm 176-183 (OpenBLAS 0.3.21 runs its Haswell
 * kernel there); f32 at T = 512 324-343 against sgemm 189-195, at T = 64
 * 252-278 against 153-163, at T = 16 0.94-1.09x sgemm. With AELLM_ISA=avx2
 * the 6 x 16 tile is 0.89-1.00x sgemm at T = 512: f32 keeps sgemm there,
 * f16 / bf16 take the tile (no 32 MiB f32 copy of W). Below 16 tokens f16
 * dequantizes (T = 8: tile 0.77-0.86x f32 sgemm, dequantize 0.61-0.84x). */
#define FT_MIN_T     16
#define FT_F32_MIN_T 32

static int auto_path(int wtype, int64_t T)
{
    if (wtype == AELLM_DTYPE_Q4_0_R16) return AELLM_MM_X8; /* its only path */
    if (wtype == AELLM_DTYPE_F32)
        return aellm_cpu_isa() >= AELLM_ISA_AVX512 && T >= FT_F32_MIN_T ? AELLM_MM_FTILE
                                                                        : AELLM_MM_AUTO;
    if (ftile_kernel(wtype) && T >= FT_MIN_T) return AELLM_MM_FTILE;
    /* The scalar reference takes the integer paths too: they quantize the
     * activations as decode does, so prefill and decode agree on every ISA. */
    if (i8_kernel(wtype)) return AELLM_MM_I8;
    int64_t x8_min = wtype == AELLM_DTYPE_Q8_0 ? X8_Q8_0_MIN_T : X8_Q4_0_MIN_T;
    if (x8_kernel(wtype) && (aellm_cpu_isa() == AELLM_ISA_SCALAR || T >= x8_min))
        return AELLM_MM_X8;
    aellm_gemm_pack_fn pack;
    aellm_gemm_tile_fn tile;
    if (tile_kernels(wtype, &pack, &tile) &&
        (wtype != AELLM_DTYPE_Q8_0 || T < MM_Q8_0_TILES_BELOW_T))
        return AELLM_MM_TILES;
    if (aellm_cpu_isa() == AELLM_ISA_SCALAR && quantizes_act(wtype)) return AELLM_MM_ROWS;
    return AELLM_MM_DEQUANT;
}

int aellm_kernel_matmul_auto_path(int wtype, int64_t n, int64_t T)
{
    return auto_path(twin(wtype, n), T);
}

size_t aellm_kernel_matmul_path_scratch(int path, int wtype, int64_t rows, int64_t n, int64_t T)
{
    if (path == AELLM_MM_AUTO) return aellm_kernel_matmul_scratch(wtype, rows, n, T);
    wtype = twin(wtype, n);
    if (path == AELLM_MM_FTILE) return aellm_ftile_scratch(ftile_kernel(wtype), rows, n, T);
    if (wtype == AELLM_DTYPE_F32) return 0;
    if (path == AELLM_MM_DEQUANT) return aellm_kernel_matmul_dequant_scratch(rows, n);
    if (path == AELLM_MM_TILES) return tile_layout(wtype, rows, n, T, NULL, &(tile_scratch){0});
    if (path == AELLM_MM_X8) return x8_layout(wtype, rows, n, T, NULL, &(x8_scratch){0});
    if (path == AELLM_MM_I8) return aellm_w8a8_scratch(i8_kernel(wtype), rows, n, T);
    if (path == AELLM_MM_ROWS) return rows_scratch(wtype, n, T);
    return aellm_kernel_matmul_scratch(wtype, rows, n, T);
}

size_t aellm_kernel_matmul_scratch(int wtype, int64_t rows, int64_t n, int64_t T)
{
    /* Callers size the scratch once for their largest batch and then run
     * smaller ones, which may take another path: cover all of them (each
     * path's size grows with T). */
    wtype = twin(wtype, n);
    if (wtype == AELLM_DTYPE_F32) /* sgemm needs none; smaller batches may take it */
        return auto_path(wtype, T) == AELLM_MM_FTILE
                   ? aellm_ftile_scratch(ftile_kernel(wtype), rows, n, T)
                   : 0;
    size_t need = aellm_kernel_matmul_has_path(wtype, AELLM_MM_DEQUANT)
                      ? aellm_kernel_matmul_dequant_scratch(rows, n)
                      : 0,
           p;
    if (aellm_kernel_matmul_has_path(wtype, AELLM_MM_TILES) &&
        (p = tile_layout(wtype, rows, n, T, NULL, &(tile_scratch){0})) > need)
        need = p;
    if (aellm_kernel_matmul_has_path(wtype, AELLM_MM_X8) &&
        (p = x8_layout(wtype, rows, n, T, NULL, &(x8_scratch){0})) > need)
        need = p;
    if (aellm_kernel_matmul_has_path(wtype, AELLM_MM_I8) &&
        (p = aellm_w8a8_scratch(i8_kernel(wtype), rows, n, T)) > need)
        need = p;
    if (quantizes_act(wtype) && (p = rows_scratch(wtype, n, T)) > need) need = p;
    if (ftile_kernel(wtype) && (p = aellm_ftile_scratch(ftile_kernel(wtype), rows, n, T)) > need)
        need = p;
    return need;
}

void aellm_kernel_matmul_path(int path, int wtype, const void *w, size_t row_bytes, int64_t rows,
                              int64_t n, const float *x, int64_t T, float *y, void *scratch)
{
    blas_single_threaded();
    wtype = twin(wtype, n);
    if (path == AELLM_MM_AUTO) path = auto_path(wtype, T);
    if (path == AELLM_MM_FTILE)
        aellm_ftile_matmul(ftile_kernel(wtype), wtype, w, row_bytes, rows, n, x, T, y, scratch);
    else if (wtype == AELLM_DTYPE_F32)
        matmul_f32(w, row_bytes, rows, n, x, T, y);
    else if (path == AELLM_MM_I8)
        aellm_w8a8_matmul(i8_kernel(wtype), w, row_bytes, rows, n, x, T, y, scratch);
    else if (path == AELLM_MM_X8)
        matmul_x8(wtype, w, row_bytes, rows, n, x, T, y, scratch);
    else if (path == AELLM_MM_TILES)
        matmul_tiles(wtype, w, row_bytes, rows, n, x, T, y, scratch);
    else if (path == AELLM_MM_ROWS)
        matmul_rows(wtype, w, row_bytes, rows, n, x, T, y, scratch);
    else
        aellm_kernel_matmul_dequant(wtype, w, row_bytes, rows, n, x, T, y, scratch);
}

void aellm_kernel_matmul(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                         const float *x, int64_t T, float *y, void *scratch)
{
    aellm_kernel_matmul_path(AELLM_MM_AUTO, wtype, w, row_bytes, rows, n, x, T, y, scratch);
}
