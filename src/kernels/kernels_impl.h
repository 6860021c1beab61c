/* Private to src/kernels/: the per-ISA entry points that the traits table
 * (kernel_traits.c) and the matvec / matmul drivers dispatch to. Not a public
 * interface; the engine goes through kernels.h only. */
#ifndef AELLM_KERNELS_IMPL_H
#define AELLM_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* Rows per step of the multi-row matvec kernels: they share one pass over the
 * activation (loads, and its per-block sums) between this many weight rows. */
#define AELLM_MV_ROWS 4

/* out[i] = W[i,:] . x for the AELLM_MV_ROWS rows starting at w, `row_bytes` apart. */
typedef void (*aellm_vec_dot_rows_fn)(int64_t n, float *out, const void *w, size_t row_bytes,
                                      const void *x);

/* Integer GEMM tile kernel for prefill, on operands that matmul.c has
 * repacked so the inner loop loads no f16 scale and no block header:
 *   y[t * ldy + r] = sum_b wd[r * nb + b] * xd[t][b] * idot(W[r] block b, xq[t][b])
 * for r < nr <= AELLM_MM_TR, t < nt <= AELLM_MM_TT. idot is the exact
 * integer dot of the weight quants (q4 nibbles as stored, 0..15, without
 * the -8; q8_0 as signed) with the activation quants; q4 offsets are added
 * afterwards by one small sgemm over per-block sums. */
#define AELLM_MM_TR 4
#define AELLM_MM_TT 3
typedef struct {
    int64_t nb;    /* blocks per row */
    const void *w; /* first weight row of the tile, `row_bytes` apart */
    size_t row_bytes;
    const float *wd;  /* (nr, nb) weight block scales as f32, row stride nb */
    const int8_t *xq; /* (nt, nb, 32) activation quants, token stride nb*32 */
    const float *xd;  /* (nt, nb) activation block scales, token stride nb */
    float *y;         /* y[t * ldy + r] */
    int64_t ldy;
} aellm_gemm_tile_args;
typedef void (*aellm_gemm_tile_fn)(const aellm_gemm_tile_args *a, int nr, int nt);

/* The dequantize-to-f32 + sgemm path of aellm_kernel_matmul (any type with
 * a to_float), exposed so the benchmark can compare it with the integer
 * path. `scratch` holds aellm_kernel_matmul_dequant_scratch bytes. */
size_t aellm_kernel_matmul_dequant_scratch(int64_t rows, int64_t n);
void aellm_kernel_matmul_dequant(int wtype, const void *w, size_t row_bytes, int64_t rows,
                                 int64_t n, const float *x, int64_t T, float *y, void *scratch);

/* Kernels that the public traits struct has no column for. */
typedef struct {
    aellm_vec_dot_rows_fn vec_dot_rows[AELLM_ISA_COUNT]; /* NULL: matvec row by row */
    aellm_gemm_tile_fn gemm_tile[AELLM_ISA_COUNT];       /* NULL: dequantize + sgemm */
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
    void aellm_vec_dot_q8_1_##isa(int64_t n, float *out, const void *w, const void *x);            \
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

/* Quantizers of weights (q4_0, q4_1) are not on any hot path: the scalar
 * reference in src/core/dtype.c serves them. */
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
    void aellm_gemm_tile_q8_0_##isa(const aellm_gemm_tile_args *a, int nr, int nt);                \
    void aellm_gemm_tile_q4_0_##isa(const aellm_gemm_tile_args *a, int nr, int nt);                \
    void aellm_gemm_tile_q4_1_##isa(const aellm_gemm_tile_args *a, int nr, int nt)

AELLM_DECLARE_ROW_KERNELS(avx2);
AELLM_DECLARE_ROW_KERNELS(avx512);

#endif
