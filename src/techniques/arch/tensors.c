/* The architecture transforms' f32 round trip (arch_internal.h). Rows go
 * through a padded row buffer: a type whose last block is partial converts
 * it whole. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "techniques/arch/arch_internal.h"

float *aellm_arch_f32(const aellm_tensor *t)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    int64_t n = t->ne[0], padded = aellm_dtype_padded(t->type, n);
    float *f = malloc((size_t)(t->ne[1] * n) * sizeof(float));
    float *row = calloc((size_t)padded, sizeof(float));
    if (!f || !row) {
        free(f);
        free(row);
        aellm_error_oom("an f32 copy of a matrix", (size_t)(t->ne[1] * n) * sizeof(float));
        return NULL;
    }
    for (int64_t r = 0; r < t->ne[1]; r++) {
        tr->to_float((const char *)t->data + (size_t)r * t->row_bytes, row, n);
        memcpy(f + r * n, row, (size_t)n * sizeof(float));
    }
    free(row);
    return f;
}

int aellm_arch_store(aellm_model *m, aellm_tensor *t, int type, const float *f, int64_t n,
                     int64_t rows)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    size_t rb = aellm_dtype_row_size(type, n);
    char *dst = aellm_model_own(m, rb * (size_t)rows);
    if (!dst) return AELLM_ENOMEM;
    int64_t padded = aellm_dtype_padded(type, n);
    float *row = calloc((size_t)padded, sizeof(float));
    if (!row) return aellm_error_oom("a row", (size_t)padded * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        memcpy(row, f + r * n, (size_t)n * sizeof(float));
        tr->from_float(row, dst + (size_t)r * rb, n);
    }
    free(row);
    aellm_tensor_set(t, type, n, rows, dst);
    return 0;
}
