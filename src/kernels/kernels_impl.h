/* Private to src/kernels/: the per-ISA entry points that the traits table
 * (kernel_traits.c) and the matvec / matmul drivers dispatch to. Not a public
 * interface; the engine goes through kernels.h only. */
#ifndef AELLM_KERNELS_IMPL_H
#define AELLM_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* Rows per step of the multi-row matvec kernels: they share one pass over the
 * activation (loads, and its per-block sums) between this many weight rows,
 * each row from its own run of consecutive rows (matvec.c). AELLM_MV_ROWS is
 * the most any kernel takes; each kernel's own count is in the traits
 * (mv_rows). The AVX-512 f32 kernel takes two, without software prefetch:
 * on Zen 5 two plain streams a core read faster than four prefetched ones
 * at 1.1B (bench/build_ab.sh, bench/README.md "On AVX-512"), where f16 was
 * faster with four and the prefetch. */
#define AELLM_MV_ROWS     4
#define AELLM_MV_F32_ROWS 2
/* The most rows any row kernel returns: two q4_0_r16 groups (AVX-512). */
#define AELLM_MV_MAX_ROWS 32

/* The row kernels' software prefetch (all but the AVX-512 f32 one): the
 * line `ahead` bytes further along the row being read. matvec (matvec.c)
 * hands a kernel rows from long runs of consecutive rows, so "further along"
 * is the next row of the same run once a row ends. The distance is the
 * ISA's:
 * - AVX2, 1 KiB: in a standalone A/B of the four-row f16 kernel on Zen 5
 *   (not in the tree; 2 threads, 5632 x 2048 from DRAM) 1 KiB ahead read
 *   0.88 of the streaming read, none 0.81, 4 KiB 0.72; and the AVX2 kernels
 *   capped on Zen 5 read F32 and Q8_0 3-4 % slower at 2 KiB.
 * - AVX-512, 2 KiB: two builds alternating in 1.1B decode on Zen 5
 *   (bench/build_ab.sh, bench/README.md "On AVX-512"), 2 KiB against 1 KiB
 *   read f16 +6 %, q8_0 +8 %, q4_0 +3 %, int8 +3-6 %, nf4 +2-9 %, int4 g64
 *   and fp8 within +-2 % (fp8 is compute-bound); 3 KiB lost to 2 KiB in
 *   every pair, 1.5 KiB tied with it.
 * Prefetches never fault, so running past the matrix is harmless; the
 * address is computed as an integer (no out-of-bounds pointer is formed).
 * (A macro: GCC 12 silently dropped the prefetch of an equivalent inline
 * function inside an always_inline kernel.) */
#define AELLM_MV_PREFETCH_AVX2   1024
#define AELLM_MV_PREFETCH_AVX512 2048
#define aellm_prefetch_ahead(p, ahead)                                                             \
    __builtin_prefetch((const void *)((uintptr_t)(p) + (ahead)), 0, 3)

/* A Q8_0 activation row (aellm_kernel_quantize_act) of nb blocks carries,
 * from the 64-byte boundary after its blocks, each block's int32 sum of
 * quants: the interleaved q4_0 kernels take -8 sum(q) from there once per
 * block rather than once per block and row. */
#define AELLM_ACT_Q8_0_SUMS_OFFSET(nb) (((size_t)(nb)*34 + 63) & ~(size_t)63)
static inline const int32_t *aellm_act_q8_0_sums(const void *x, int64_t nb)
{
    return (const int32_t *)((const char *)x + AELLM_ACT_Q8_0_SUMS_OFFSET(nb));
}

/* out[i] = W[i,:] . x for the kernel's mv_rows rows starting at w,
 * `row_bytes` apart (matvec passes the distance between its runs of rows). */
typedef void (*aellm_vec_dot_rows_fn)(int64_t n, float *out, const void *w, size_t row_bytes,
                                      const void *x);

/* Integer GEMM for prefill, in two steps per ISA. A pack function unpacks
 * AELLM_MM_TR weight rows (a panel) into a per-thread buffer in the ISA's
 * own layout: quants as plain bytes (q4 nibbles as 0..15, without the -8;
 * q8_0 as signed) and block scales as f32. A tile function then computes,
 * for r < nr <= AELLM_MM_TR and t < nt <= AELLM_MM_TT,
 *   y[t * ldy + r] = sum_b wd[r][b] * xd[t][b] * idot(panel row r block b, xq[t][b])
 * with idot the exact integer dot. q4 offsets (-8, or m) are added by
 * matmul.c afterwards, as one small sgemm over per-block sums.
 *
 * Activations come packed by matmul.c in groups of AELLM_MM_TT tokens, so a
 * tile reads one sequential stream: quants [nb2][TT][64 bytes = blocks 2i,
 * 2i+1] and scales [2 nb2][TT], nb2 = ceil(nb / 2). Padding (a missing
 * token of the last group, the block after an odd last one) is zero. */
#define AELLM_MM_TR 4
#define AELLM_MM_TT 3
/* Bytes of a packed panel of n-element rows (quants and scales), with the
 * block count rounded up to even for layouts that pair blocks. */
#define AELLM_MM_PANEL_BYTES(n)                                                                    \
    ((size_t)AELLM_MM_TR * (size_t)(((n) / 32 + 1) & ~(int64_t)1) * (32 + sizeof(float)))
/* Bytes of one packed group of AELLM_MM_TT activation rows. */
#define AELLM_MM_XGROUP_BYTES(n)  ((size_t)AELLM_MM_TT * (size_t)(((n) / 32 + 1) & ~(int64_t)1) * 32)
#define AELLM_MM_XGROUP_SCALES(n) ((size_t)AELLM_MM_TT * (size_t)(((n) / 32 + 1) & ~(int64_t)1))

/* Packs rows [0, nr) of W (row_bytes apart) with their scales wd (nr, nb);
 * rows nr..AELLM_MM_TR-1 of the panel repeat row 0. */
typedef void (*aellm_gemm_pack_fn)(void *panel, const void *w, size_t row_bytes, int nr,
                                   const float *wd, int64_t nb);
typedef struct {
    int64_t nb;        /* blocks per row */
    const void *panel; /* from the pack function of the same ISA */
    const int8_t *xq;  /* one packed group of activation quants */
    const float *xd;   /* its scales */
    float *y;          /* y[t * ldy + r] */
    int64_t ldy;
} aellm_gemm_tile_args;
typedef void (*aellm_gemm_tile_fn)(const aellm_gemm_tile_args *a, int nr, int nt);

/* The dequantize-to-f32 + sgemm path of aellm_kernel_matmul (any type with
 * a to_float), exposed so the benchmark can compare it with the integer
 * path. `scratch` holds aellm_kernel_matmul_dequant_scratch bytes. */
size_t aellm_kernel_matmul_dequant_scratch(int64_t rows, int64_t n);
void aellm_kernel_matmul_dequant(int wtype, const void *w, size_t row_bytes, int64_t rows,
                                 int64_t n, const float *x, int64_t T, float *y, void *scratch);

/* Integer GEMM for prefill on 8-row interleaved weights ("x8"): matmul.c
 * repacks W once per call into groups of AELLM_X8_ROWS rows, so that one
 * 256-bit vector holds 4 consecutive quants of each of the 8 rows, and a
 * tile computes AELLM_X8_ROWS rows x AELLM_X8_TOKS tokens with one lane per
 * row: maddubs against the token's 4 quants broadcast, summed in int16 over
 * a block, one madd, one cvt and one fma per (8 rows, token, block).
 *
 * Weight group, per block b (in order): 8 row scales (f32), then quants
 * q[m * 32 + r * 4 + j] = element e(m, j) of row r:
 *  - q4_0: m < 4, the row's byte qs[4m + j] (low nibble element 4m + j,
 *    high nibble element 16 + 4m + j; unsigned, the -8 is in x's offset);
 *  - q8_0: m < 8, qs[4m + j] (signed).
 * Rows past the matrix are zero (scale 0), their results dropped.
 * Activation tile, per block b: quants of AELLM_X8_TOKS tokens, their f32
 * scales, and int32 offsets o = -8 sum(q) (q4_0) or 0 (q8_0), so that
 * y = sum_b dw dx (idot + o) is the exact decode dot up to float order.
 * Tokens past T are zero. */
#define AELLM_X8_ROWS 8
#define AELLM_X8_TOKS 4
typedef struct {
    float d[AELLM_X8_ROWS];
    uint8_t q[AELLM_X8_ROWS * 16];
} aellm_x8_q4_0;
typedef struct {
    float d[AELLM_X8_ROWS];
    int8_t q[AELLM_X8_ROWS * 32];
} aellm_x8_q8_0;
typedef struct {
    int8_t q[AELLM_X8_TOKS][32];
    float d[AELLM_X8_TOKS];
    int32_t o[AELLM_X8_TOKS];
    int32_t s[AELLM_X8_TOKS]; /* sum(q): the VNNI q8_0 tile's w + 128 offset */
} aellm_x8_act;
typedef struct {
    int64_t nb;            /* blocks per row */
    const void *w;         /* one weight group: nb aellm_x8_q4_0 or aellm_x8_q8_0 */
    const aellm_x8_act *x; /* one activation tile: nb blocks */
    float *y;              /* y[t * ldy + r], r < nr, t < nt */
    int64_t ldy;
} aellm_x8_args;
typedef void (*aellm_x8_tile_fn)(const aellm_x8_args *a, int nr, int nt);
/* Bytes of one weight group of n-element rows (0: type has no x8 path). */
size_t aellm_x8_group_bytes(int wtype, int64_t n);
/* Packs rows [r0, r0 + nr) of W (row_bytes apart), nr <= AELLM_X8_ROWS and
 * r0 a multiple of AELLM_X8_ROWS, into one group. q4_0_r16 packs from its
 * 16-row groups (its rows share the q4_0 tiles). */
void aellm_x8_pack_w(int wtype, void *group, const void *w, size_t row_bytes, int64_t r0, int nr,
                     int64_t nb);
/* Packs nt <= AELLM_X8_TOKS Q8_0 rows (xrow bytes apart) into one tile. */
void aellm_x8_pack_x(int wtype, aellm_x8_act *tile, const void *xq, size_t xrow, int nt,
                     int64_t nb);
void aellm_x8_tile_q4_0_scalar(const aellm_x8_args *a, int nr, int nt);
void aellm_x8_tile_q8_0_scalar(const aellm_x8_args *a, int nr, int nt);
void aellm_x8_tile_q4_0_avx2(const aellm_x8_args *a, int nr, int nt);
void aellm_x8_tile_q8_0_avx2(const aellm_x8_args *a, int nr, int nt);
void aellm_x8_tile_q4_0_avx512(const aellm_x8_args *a, int nr, int nt);
void aellm_x8_tile_q8_0_avx512(const aellm_x8_args *a, int nr, int nt);

/* W8A8 prefill (INT8 weights, gemm_w8a8.c): the T activation rows are
 * quantized per token to INT8 (the decode quantizer), then an exact int8 x
 * int8 -> int32 product per (row, token) over the whole row, scaled once by
 * s_w s_x, so that prefill equals the decode dot bit for bit.
 * Operands are packed in steps of 4 elements (k4 = ceil(n / 4), zero past
 * n): a weight group of `rows` rows is [k4][rows][4 bytes] (one 32-bit lane
 * per row), an activation tile [k4][AELLM_I8_TOKS][4 bytes]. A tile kernel
 * writes out[t * rows + r] = sum_i w[r][i] x[t][i] exactly, for all rows
 * and AELLM_I8_TOKS tokens (padding is zero). */
#define AELLM_I8_TOKS 4
typedef struct {
    int64_t k4;          /* steps of 4 elements */
    const int8_t *w;     /* one weight group */
    const int8_t *x;     /* one activation tile */
    const int32_t *xsum; /* per token: sum of its quants (for the xor80 layout) */
} aellm_i8_args;
typedef struct {
    int rows;  /* rows per weight group */
    int xor80; /* weights stored as w ^ 0x80 (w + 128 unsigned, for vpdpbusd) */
    void (*tile)(const aellm_i8_args *a, int32_t *out);
} aellm_i8_kernel;
extern const aellm_i8_kernel aellm_i8_kernel_scalar, aellm_i8_kernel_avx2, aellm_i8_kernel_avx512;
size_t aellm_w8a8_scratch(const aellm_i8_kernel *k, int64_t rows, int64_t n, int64_t T);
void aellm_w8a8_matmul(const aellm_i8_kernel *k, const void *w, size_t row_bytes, int64_t rows,
                       int64_t n, const float *x, int64_t T, float *y, void *scratch);
/* Packs nr <= k->rows rows (row_bytes apart, INT8 rows) into one group. */
void aellm_i8_pack_w(const aellm_i8_kernel *k, int8_t *group, const void *w, size_t row_bytes,
                     int nr, int64_t n);
/* Packs nt <= AELLM_I8_TOKS INT8 activation rows (xrow bytes apart) into a
 * tile, with their quant sums. */
void aellm_i8_pack_x(int8_t *tile, int32_t *xsum, const void *xq, size_t xrow, int nt, int64_t n);

/* Float-weight GEMM for prefill (gemm_float.c): f16, bf16 (and f32) weights
 * without a dequantized copy of W. Each thread converts a panel of `rows`
 * weight rows x kc elements to f32 (row-major, AELLM_FT_KC floats apart, so
 * a tile reaches every row at a constant offset) and runs it against every
 * token panel. Tokens are packed once per call, k-major in panels of `toks`:
 * xp[panel][k][toks], zero past T. A tile broadcasts one weight and
 * multiplies a vector of tokens, so its rows x toks sums stay in registers,
 * with no horizontal sum: acc[r * toks + t] (+)= sum_k w[r][k] x[k][t]. */
#define AELLM_FT_KC 256
typedef struct {
    int64_t kc;     /* k steps, <= AELLM_FT_KC */
    const float *w; /* `rows` rows of kc f32, AELLM_FT_KC apart */
    const float *x; /* kc steps of `toks` tokens */
    float *acc;     /* rows x toks, row-major */
    int add;        /* 0: acc = product; 1: acc += product */
} aellm_ftile_args;
typedef struct {
    int rows, toks; /* tile shape; toks a multiple of the vector width */
    void (*tile)(const aellm_ftile_args *a);
} aellm_ftile_kernel;
extern const aellm_ftile_kernel aellm_ftile_kernel_scalar, aellm_ftile_kernel_avx2,
    aellm_ftile_kernel_avx512;
size_t aellm_ftile_scratch(const aellm_ftile_kernel *k, int64_t rows, int64_t n, int64_t T);
void aellm_ftile_matmul(const aellm_ftile_kernel *k, int wtype, const void *w, size_t row_bytes,
                        int64_t rows, int64_t n, const float *x, int64_t T, float *y,
                        void *scratch);

/* aellm_kernel_matmul with its path forced, for the benchmark and tests:
 * the path must exist for the type (f32 takes OpenBLAS sgemm on every path
 * but AELLM_MM_FTILE). */
enum {
    AELLM_MM_AUTO,
    AELLM_MM_DEQUANT,
    AELLM_MM_TILES,
    AELLM_MM_X8,
    AELLM_MM_I8,
    AELLM_MM_ROWS,
    AELLM_MM_FTILE
};
int aellm_kernel_matmul_has_path(int wtype, int path);
/* The path aellm_kernel_matmul takes for rows of n elements and a batch of
 * T (AELLM_MM_AUTO for f32's sgemm). */
int aellm_kernel_matmul_auto_path(int wtype, int64_t n, int64_t T);
size_t aellm_kernel_matmul_path_scratch(int path, int wtype, int64_t rows, int64_t n, int64_t T);
void aellm_kernel_matmul_path(int path, int wtype, const void *w, size_t row_bytes, int64_t rows,
                              int64_t n, const float *x, int64_t T, float *y, void *scratch);

/* Kernels that the public traits struct has no column for. */
typedef struct {
    aellm_vec_dot_rows_fn vec_dot_rows[AELLM_ISA_COUNT]; /* NULL: matvec row by row */
    int mv_rows[AELLM_ISA_COUNT];                        /* rows per vec_dot_rows call */
    aellm_gemm_pack_fn gemm_pack[AELLM_ISA_COUNT];       /* NULL: dequantize + sgemm */
    aellm_gemm_tile_fn gemm_tile[AELLM_ISA_COUNT];
    aellm_x8_tile_fn x8_tile[AELLM_ISA_COUNT];        /* NULL: no x8 path */
    const aellm_i8_kernel *i8[AELLM_ISA_COUNT];       /* NULL: no W8A8 path */
    const aellm_ftile_kernel *ftile[AELLM_ISA_COUNT]; /* NULL: no float tiles */
} aellm_kernel_traits_ext;

const aellm_kernel_traits_ext *aellm_kernel_traits_ext_get(int type);

/* Best non-NULL entry of a per-ISA column at or below the CPU's ISA. */
#define AELLM_PICK_ISA(column, out)                                                                \
    do {                                                                                           \
        (out) = NULL;                                                                              \
        for (int isa_ = (int)aellm_cpu_isa(); isa_ >= 0 && !(out); isa_--) (out) = (column)[isa_]; \
    } while (0)

#define AELLM_DECLARE_TYPE_KERNELS(isa)                                                            \
    void aellm_vec_dot_f32_##isa(int64_t n, float *out, const void *w, const void *x);             \
    void aellm_vec_dot_f16_##isa(int64_t n, float *out, const void *w, const void *x);             \
    void aellm_vec_dot_bf16_##isa(int64_t n, float *out, const void *w, const void *x);            \
    void aellm_vec_dot_q8_0_##isa(int64_t n, float *out, const void *w, const void *x);            \
    void aellm_vec_dot_q4_0_##isa(int64_t n, float *out, const void *w, const void *x);            \
    void aellm_vec_dot_q4_1_##isa(int64_t n, float *out, const void *w, const void *x);            \
    void aellm_to_float_f32_##isa(const void *src, float *dst, int64_t n);                         \
    void aellm_to_float_f16_##isa(const void *src, float *dst, int64_t n);                         \
    void aellm_to_float_bf16_##isa(const void *src, float *dst, int64_t n);                        \
    void aellm_to_float_q8_0_##isa(const void *src, float *dst, int64_t n);                        \
    void aellm_to_float_q8_1_##isa(const void *src, float *dst, int64_t n);                        \
    void aellm_to_float_q4_0_##isa(const void *src, float *dst, int64_t n);                        \
    void aellm_to_float_q4_1_##isa(const void *src, float *dst, int64_t n);                        \
    void aellm_from_float_f32_##isa(const float *src, void *dst, int64_t n);                       \
    void aellm_from_float_f16_##isa(const float *src, void *dst, int64_t n);                       \
    void aellm_from_float_bf16_##isa(const float *src, void *dst, int64_t n);                      \
    void aellm_from_float_q8_0_##isa(const float *src, void *dst, int64_t n);                      \
    void aellm_from_float_q8_1_##isa(const float *src, void *dst, int64_t n)

AELLM_DECLARE_TYPE_KERNELS(scalar);
AELLM_DECLARE_TYPE_KERNELS(avx2);
AELLM_DECLARE_TYPE_KERNELS(avx512);

/* Q8_1 x Q8_1 exists only as the scalar reference (Q8_1 is an activation
 * type). Quantizers of weights (q4_0, q4_1) are not on any hot path: the
 * scalar references in src/core/dtype.c serve them. */
void aellm_vec_dot_q8_1_scalar(int64_t n, float *out, const void *w, const void *x);
void aellm_from_float_q4_0_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_q4_1_scalar(const float *src, void *dst, int64_t n);

#define AELLM_DECLARE_ROW_KERNELS(isa)                                                             \
    void aellm_vec_dot_rows_f32_##isa(int64_t n, float *out, const void *w, size_t row_bytes,      \
                                      const void *x);                                              \
    void aellm_vec_dot_rows_f16_##isa(int64_t n, float *out, const void *w, size_t row_bytes,      \
                                      const void *x);                                              \
    void aellm_vec_dot_rows_bf16_##isa(int64_t n, float *out, const void *w, size_t row_bytes,     \
                                       const void *x);                                             \
    void aellm_vec_dot_rows_q8_0_##isa(int64_t n, float *out, const void *w, size_t row_bytes,     \
                                       const void *x);                                             \
    void aellm_vec_dot_rows_q4_0_##isa(int64_t n, float *out, const void *w, size_t row_bytes,     \
                                       const void *x);                                             \
    void aellm_vec_dot_rows_q4_1_##isa(int64_t n, float *out, const void *w, size_t row_bytes,     \
                                       const void *x);                                             \
    void aellm_vec_dot_rows_q4_0_r16_##isa(int64_t n, float *out, const void *w, size_t row_bytes, \
                                           const void *x);                                         \
    void aellm_gemm_pack_q8_0_##isa(void *panel, const void *w, size_t row_bytes, int nr,          \
                                    const float *wd, int64_t nb);                                  \
    void aellm_gemm_pack_q4_0_##isa(void *panel, const void *w, size_t row_bytes, int nr,          \
                                    const float *wd, int64_t nb);                                  \
    void aellm_gemm_pack_q4_1_##isa(void *panel, const void *w, size_t row_bytes, int nr,          \
                                    const float *wd, int64_t nb);                                  \
    void aellm_gemm_tile_s8_##isa(const aellm_gemm_tile_args *a, int nr, int nt);                  \
    void aellm_gemm_tile_u8_##isa(const aellm_gemm_tile_args *a, int nr, int nt)

AELLM_DECLARE_ROW_KERNELS(avx2);
AELLM_DECLARE_ROW_KERNELS(avx512);
/* The interleaved layouts have a row kernel on every ISA: a group's rows
 * are not contiguous, so no one-row dot can stand in for it. */
void aellm_vec_dot_rows_q4_0_r16_scalar(int64_t n, float *out, const void *w, size_t row_bytes,
                                        const void *x);

/* aellm's own weight formats (vec_dot_wq_*.c). The g32 types use q4_0,
 * q4_1 and q8_0's dots; their to_float here stops at n (a partial group). */
#define AELLM_DECLARE_WQ_KERNELS(isa)                                                              \
    void aellm_vec_dot_int4s_g64_##isa(int64_t n, float *out, const void *w, const void *x);       \
    void aellm_vec_dot_int4s_g128_##isa(int64_t n, float *out, const void *w, const void *x);      \
    void aellm_vec_dot_int4a_g64_##isa(int64_t n, float *out, const void *w, const void *x);       \
    void aellm_vec_dot_int4a_g128_##isa(int64_t n, float *out, const void *w, const void *x);      \
    void aellm_vec_dot_nf4_##isa(int64_t n, float *out, const void *w, const void *x);             \
    void aellm_vec_dot_fp8_e4m3_##isa(int64_t n, float *out, const void *w, const void *x);        \
    void aellm_vec_dot_int8_##isa(int64_t n, float *out, const void *w, const void *x);            \
    void aellm_to_float_int4s_g32_##isa(const void *src, float *dst, int64_t n);                   \
    void aellm_to_float_int4s_g64_##isa(const void *src, float *dst, int64_t n);                   \
    void aellm_to_float_int4s_g128_##isa(const void *src, float *dst, int64_t n);                  \
    void aellm_to_float_int4a_g32_##isa(const void *src, float *dst, int64_t n);                   \
    void aellm_to_float_int4a_g64_##isa(const void *src, float *dst, int64_t n);                   \
    void aellm_to_float_int4a_g128_##isa(const void *src, float *dst, int64_t n);                  \
    void aellm_to_float_nf4_##isa(const void *src, float *dst, int64_t n);                         \
    void aellm_to_float_fp8_e4m3_##isa(const void *src, float *dst, int64_t n);                    \
    void aellm_to_float_int8_##isa(const void *src, float *dst, int64_t n);                        \
    void aellm_to_float_int8_g32_##isa(const void *src, float *dst, int64_t n);                    \
    void aellm_from_float_int8_##isa(const float *src, void *dst, int64_t n)

AELLM_DECLARE_WQ_KERNELS(scalar);
AELLM_DECLARE_WQ_KERNELS(avx2);
AELLM_DECLARE_WQ_KERNELS(avx512);

/* Weight-only quantizers of the new formats: the scalar references. */
void aellm_from_float_int4s_g32_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_int4s_g64_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_int4s_g128_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_int4a_g32_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_int4a_g64_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_int4a_g128_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_nf4_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_fp8_e4m3_scalar(const float *src, void *dst, int64_t n);
void aellm_from_float_int8_g32_scalar(const float *src, void *dst, int64_t n);

#define AELLM_DECLARE_WQ_ROW_KERNELS(isa)                                                          \
    void aellm_vec_dot_rows_int4s_g64_##isa(int64_t n, float *out, const void *w,                  \
                                            size_t row_bytes, const void *x);                      \
    void aellm_vec_dot_rows_int4s_g128_##isa(int64_t n, float *out, const void *w,                 \
                                             size_t row_bytes, const void *x);                     \
    void aellm_vec_dot_rows_int4a_g64_##isa(int64_t n, float *out, const void *w,                  \
                                            size_t row_bytes, const void *x);                      \
    void aellm_vec_dot_rows_int4a_g128_##isa(int64_t n, float *out, const void *w,                 \
                                             size_t row_bytes, const void *x);                     \
    void aellm_vec_dot_rows_nf4_##isa(int64_t n, float *out, const void *w, size_t row_bytes,      \
                                      const void *x);                                              \
    void aellm_vec_dot_rows_fp8_e4m3_##isa(int64_t n, float *out, const void *w, size_t row_bytes, \
                                           const void *x);                                         \
    void aellm_vec_dot_rows_int8_##isa(int64_t n, float *out, const void *w, size_t row_bytes,     \
                                       const void *x)

AELLM_DECLARE_WQ_ROW_KERNELS(avx2);
AELLM_DECLARE_WQ_ROW_KERNELS(avx512);

#endif
