/* The decode hot path: one activation row against a range of weight rows,
 * several rows per step where the ISA has a multi-row kernel. No threading
 * here; each engine thread calls this on its own row range. */
#include "kernels/kernels_impl.h"

void aellm_kernel_quantize_act(int wtype, const float *x, void *dst, int64_t n)
{
    const aellm_kernel_traits *tr = aellm_kernel_traits_get(wtype);
    aellm_kernel_from_float(tr->vec_dot_type)(x, dst, n);
}

size_t aellm_kernel_act_bytes(int wtype, int64_t n)
{
    const aellm_kernel_traits *tr = aellm_kernel_traits_get(wtype);
    return aellm_dtype_row_size(tr->vec_dot_type, aellm_dtype_padded(wtype, n));
}

void aellm_kernel_matvec(int wtype, int64_t n, const void *w, size_t row_bytes, const void *x,
                         float *y, int64_t r0, int64_t r1)
{
    aellm_vec_dot_fn dot = aellm_kernel_vec_dot(wtype);
    aellm_vec_dot_rows_fn rows;
    AELLM_PICK_ISA(aellm_kernel_traits_ext_get(wtype)->vec_dot_rows, rows);
    const char *wr = (const char *)w;
    int64_t r = r0;
    if (rows)
        for (; r + AELLM_MV_ROWS <= r1; r += AELLM_MV_ROWS)
            rows(n, y + (r - r0), wr + (size_t)r * row_bytes, row_bytes, x);
    for (; r < r1; r++) dot(n, y + (r - r0), wr + (size_t)r * row_bytes, x);
}
