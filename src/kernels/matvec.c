/* The decode hot path: one activation row against a range of weight rows,
 * several rows per step where the ISA has a multi-row kernel. No threading
 * here; each engine thread calls this on its own row range. */
#include <string.h>

#include "core/blocks.h"
#include "kernels/kernels_impl.h"

/* The int32 sums of a Q8_0 row's quants, after its blocks (kernels_impl.h). */
static void append_block_sums(void *dst, int64_t nb)
{
    const aellm_block_q8_0 *b = dst;
    int32_t *sums = (int32_t *)((char *)dst + AELLM_ACT_Q8_0_SUMS_OFFSET(nb));
    for (int64_t i = 0; i < nb; i++) {
        int32_t s = 0;
        for (int j = 0; j < QK8_0; j++) s += b[i].qs[j];
        sums[i] = s;
    }
}

/* Rows of a weight type whose rows end in a partial group meet activations
 * padded with zeros to whole groups: whole activation blocks are converted
 * in place, the rest (at most one weight group) through a zero-filled copy.
 * (Activation types with a row header have one-element blocks: never padded.) */
void aellm_kernel_quantize_act(int wtype, const float *x, void *dst, int64_t n)
{
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    aellm_from_float_fn quant = aellm_kernel_from_float(vdt);
    int64_t padded = aellm_dtype_padded(wtype, n);
    if (padded == n) {
        quant(x, dst, n);
    } else {
        int64_t vb = aellm_dtype_traits_get(vdt)->block_size, whole = n / vb * vb;
        float tail[AELLM_INT4_MAX_GROUP] = {0};
        if (whole) quant(x, dst, whole);
        memcpy(tail, x + whole, (size_t)(n - whole) * sizeof(float));
        quant(tail, (char *)dst + aellm_dtype_row_size(vdt, whole), padded - whole);
    }
    if (vdt == AELLM_DTYPE_Q8_0) append_block_sums(dst, padded / QK8_0);
}

size_t aellm_kernel_act_bytes(int wtype, int64_t n)
{
    const aellm_kernel_traits *tr = aellm_kernel_traits_get(wtype);
    int64_t padded = aellm_dtype_padded(wtype, n);
    if (tr->vec_dot_type == AELLM_DTYPE_Q8_0)
        return AELLM_ACT_Q8_0_SUMS_OFFSET(padded / QK8_0) +
               (size_t)(padded / QK8_0) * sizeof(int32_t);
    return aellm_dtype_row_size(tr->vec_dot_type, padded);
}

/* Rows r0..r1-1, y[i] = row r0 + i: in R runs of consecutive rows (the range
 * cut into R equal parts, R the kernel's mv_rows) read side by side, one row
 * of each per kernel step. Long streams keep the hardware prefetcher locked
 * on, where R adjacent rows restart it every few KiB: `bench_kernels 1 0.3
 * f16 5632x2048` on Zen 5, 2 threads, f32 50-67 -> 73-85 GB/s, f16 55-59 ->
 * 68-76 (bench/README.md, "On AVX-512"). Step j < run is row j of each
 * part; the steps after it are the rows left over, one each. */
typedef struct {
    aellm_vec_dot_rows_fn fn; /* NULL: row by row */
    int rows;                 /* rows per step of fn */
} rows_kernel;

static rows_kernel pick_rows_kernel(int wtype)
{
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(wtype);
    for (int isa = (int)aellm_cpu_isa(); isa >= 0; isa--)
        if (ext->vec_dot_rows[isa]) return (rows_kernel){ext->vec_dot_rows[isa], ext->mv_rows[isa]};
    return (rows_kernel){NULL, 1};
}

static int64_t run_rows(rows_kernel k, int64_t rows)
{
    return k.fn ? rows / k.rows : 0;
}

/* Rows per group of an interleaved layout (a step is one group), else 0. */
static int interleave(int wtype)
{
    return aellm_dtype_traits_get(wtype)->interleave;
}

int aellm_kernel_matvec_align(int wtype)
{
    int il = interleave(wtype);
    return il ? il : 1;
}

int64_t aellm_kernel_matvec_steps(int wtype, int64_t rows)
{
    int il = interleave(wtype);
    if (il) {
        int64_t groups = rows / il, streams = pick_rows_kernel(wtype).rows / il;
        return groups - (streams - 1) * (groups / streams);
    }
    rows_kernel k = pick_rows_kernel(wtype);
    return rows - (k.rows - 1) * run_rows(k, rows);
}

size_t aellm_kernel_matvec_step_bytes(int wtype, int64_t rows, size_t row_bytes)
{
    if (interleave(wtype)) return (size_t)pick_rows_kernel(wtype).rows * row_bytes;
    rows_kernel k = pick_rows_kernel(wtype);
    return run_rows(k, rows) ? (size_t)k.rows * row_bytes : row_bytes;
}

/* An interleaved layout's steps (r0 a multiple of il): its kernel reads
 * k.rows / il groups side by side, one from each of that many runs of
 * consecutive groups, as the row kernels read runs of rows; the groups
 * left over are steps of their own, read as every stream at once (distance
 * 0), which costs compute on at most streams - 1 groups, not bandwidth. */
static void interleaved_steps(rows_kernel k, int il, int64_t n, const char *wr, size_t row_bytes,
                              const void *x, float *y, int64_t groups, int64_t j0, int64_t j1)
{
    int streams = k.rows / il;
    int64_t run = groups / streams;
    size_t group_bytes = (size_t)il * row_bytes;
    for (int64_t j = j0; j < j1; j++) {
        float out[AELLM_MV_MAX_ROWS];
        int64_t g = j < run ? j : (streams - 1) * run + j;
        k.fn(n, out, wr + (size_t)g * group_bytes, j < run ? (size_t)run * group_bytes : 0, x);
        for (int s = 0; s < (j < run ? streams : 1); s++)
            memcpy(y + (g + s * run) * il, out + s * il, (size_t)il * sizeof(float));
    }
}

void aellm_kernel_matvec_steps_run(int wtype, int64_t n, const void *w, size_t row_bytes,
                                   const void *x, float *y, int64_t r0, int64_t r1, int64_t j0,
                                   int64_t j1)
{
    rows_kernel k = pick_rows_kernel(wtype);
    const char *wr = (const char *)w + (size_t)r0 * row_bytes;
    int il = interleave(wtype);
    if (il) {
        interleaved_steps(k, il, n, wr, row_bytes, x, y, (r1 - r0) / il, j0, j1);
        return;
    }
    aellm_vec_dot_fn dot = aellm_kernel_vec_dot(wtype);
    int64_t run = run_rows(k, r1 - r0), j = j0;
    for (; j < j1 && j < run; j++) {
        float out[AELLM_MV_ROWS];
        k.fn(n, out, wr + (size_t)j * row_bytes, (size_t)run * row_bytes, x);
        for (int i = 0; i < k.rows; i++) y[i * run + j] = out[i];
    }
    for (int64_t i = (k.rows - 1) * run + j; j < j1; j++, i++)
        dot(n, y + i, wr + (size_t)i * row_bytes, x);
}

void aellm_kernel_matvec(int wtype, int64_t n, const void *w, size_t row_bytes, const void *x,
                         float *y, int64_t r0, int64_t r1)
{
    aellm_kernel_matvec_steps_run(wtype, n, w, row_bytes, x, y, r0, r1, 0,
                                  aellm_kernel_matvec_steps(wtype, r1 - r0));
}
