/* Compute kernels per dtype: the second half of the dtype traits (the first,
 * block geometry and reference conversions, is src/core/dtype.c). Every
 * optimised path (AVX2, AVX-512) has a scalar reference beside it; the best
 * path the CPU supports is chosen once at run time. Threading is the caller's:
 * matvec works on a row range so the engine can split rows across threads. */
#ifndef AELLM_KERNELS_KERNELS_H
#define AELLM_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/dtype.h"

typedef enum { AELLM_ISA_SCALAR = 0, AELLM_ISA_AVX2, AELLM_ISA_AVX512, AELLM_ISA_COUNT } aellm_isa;

/* Best ISA of this CPU (AVX2 needs avx2+fma+f16c; AVX-512 needs f,bw,vl,dq).
 * The environment variable AELLM_ISA=scalar|avx2|avx512 caps it. */
aellm_isa aellm_cpu_isa(void);
const char *aellm_isa_name(aellm_isa isa);

/* dot of one weight row (n elements of the weight type) with one activation
 * row (n elements of the weight type's vec_dot_type). */
typedef void (*aellm_vec_dot_fn)(int64_t n, float *out, const void *w, const void *x);

typedef struct {
    int vec_dot_type;                                /* what activations are converted to */
    aellm_vec_dot_fn vec_dot[AELLM_ISA_COUNT];       /* NULL where that ISA has no path */
    aellm_from_float_fn from_float[AELLM_ISA_COUNT]; /* fast quantizers (activations) */
    aellm_to_float_fn to_float[AELLM_ISA_COUNT];     /* fast dequantizers */
} aellm_kernel_traits;

/* NULL for a type without kernels. Borrowed, static. */
const aellm_kernel_traits *aellm_kernel_traits_get(int type);

/* The best available path for this CPU (never NULL for a type with kernels). */
aellm_vec_dot_fn aellm_kernel_vec_dot(int type);
aellm_from_float_fn aellm_kernel_from_float(int type);
aellm_to_float_fn aellm_kernel_to_float(int type);

/* Converts an f32 activation row of n elements to the vec_dot_type of weight
 * type `wtype` (a copy for f32), zero-padded to the weight's padded row
 * length so that a partial last group dots with zeros; a Q8_0 row is
 * followed by its blocks' quant sums (kernels_impl.h), which the
 * interleaved q4_0 kernels read. `dst` holds aellm_kernel_act_bytes(wtype,
 * n) bytes. */
void aellm_kernel_quantize_act(int wtype, const float *x, void *dst, int64_t n);
size_t aellm_kernel_act_bytes(int wtype, int64_t n);

/* y[r - r0] for r in [r0, r1): y = W[r,:] . x, W rows of `wtype` with n
 * elements and `row_bytes` stride, x from aellm_kernel_quantize_act. For an
 * interleaved layout (q4_0_r16) r0 and r1 are multiples of
 * aellm_kernel_matvec_align(wtype), 1 for every other type. */
void aellm_kernel_matvec(int wtype, int64_t n, const void *w, size_t row_bytes, const void *x,
                         float *y, int64_t r0, int64_t r1);

/* The same product in steps, for threads that share out a range's work as
 * they go: rows r0..r1-1 are aellm_kernel_matvec_steps(wtype, r1 - r0) steps
 * of aellm_kernel_matvec_step_bytes(...) weight bytes each, and any set of
 * disjoint step ranges [j0, j1) that covers them all computes every y[r - r0]
 * once. A step range reads its rows as matvec does (sequential streams). */
int64_t aellm_kernel_matvec_steps(int wtype, int64_t rows);
int aellm_kernel_matvec_align(int wtype);
size_t aellm_kernel_matvec_step_bytes(int wtype, int64_t rows, size_t row_bytes);
void aellm_kernel_matvec_steps_run(int wtype, int64_t n, const void *w, size_t row_bytes,
                                   const void *x, float *y, int64_t r0, int64_t r1, int64_t j0,
                                   int64_t j1);

/* Batched product for prefill: Y (T, rows) = X (T, n) . W(rows, n)^T, all
 * row-major f32 except W in `wtype`. Uses OpenBLAS sgemm for f32 and fast
 * per-type paths otherwise; threads itself (OpenMP / OpenBLAS). `scratch`
 * holds aellm_kernel_matmul_scratch(wtype, rows, n, T) bytes (may be 0); that
 * size serves every batch of at most T tokens. */
size_t aellm_kernel_matmul_scratch(int wtype, int64_t rows, int64_t n, int64_t T);
void aellm_kernel_matmul(int wtype, const void *w, size_t row_bytes, int64_t rows, int64_t n,
                         const float *x, int64_t T, float *y, void *scratch);

#endif
