/* Element types of tensors: ids, block layouts and conversion to/from float.
 * Ids equal GGML's type ids so GGUF files interoperate with llama.cpp; an id
 * written to a file is never reused. aellm-only types take ids from 100 up.
 * The dot-product kernels per type live in the kernels layer (src/kernels/). */
#ifndef AELLM_DTYPE_H
#define AELLM_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AELLM_DTYPE_F32 = 0,
    AELLM_DTYPE_F16 = 1,
    AELLM_DTYPE_Q4_0 = 2,
    AELLM_DTYPE_Q4_1 = 3,
    AELLM_DTYPE_Q8_0 = 8,
    AELLM_DTYPE_Q8_1 = 9, /* activations only: Q8_0 plus d*sum(q), for Q4_1 dots */
    AELLM_DTYPE_BF16 = 30,
    AELLM_DTYPE_MAX = 256 /* ids are < this */
} aellm_dtype;

typedef void (*aellm_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*aellm_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct {
    const char *name;               /* lower case, as in `--type q4_0` */
    int64_t block_size;             /* elements per block (1 for plain floats) */
    size_t type_size;               /* bytes per block */
    aellm_to_float_fn to_float;     /* scalar reference; n a multiple of block_size */
    aellm_from_float_fn from_float; /* scalar reference quantizer (llama.cpp's rounding) */
} aellm_dtype_traits;

/* Traits of `type`, or NULL for an id aellm does not know. Borrowed, static. */
const aellm_dtype_traits *aellm_dtype_traits_get(int type);

/* Looks a type up by name ("f32", "q4_0", ...); returns -1 when unknown. */
int aellm_dtype_from_name(const char *name);

/* Bytes of a row of n elements, or 0 when n is not a multiple of the block
 * size or the type is unknown. */
size_t aellm_dtype_row_size(int type, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
