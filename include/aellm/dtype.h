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
    /* aellm's own: INT4 with one scale (symmetric, "s") or scale and minimum
     * (asymmetric, "a") per group of 32/64/128. A group is 16-byte sub-blocks
     * each in q4_0's nibble order; the g32 types are q4_0 and q4_1's layouts
     * for rows whose length is not a multiple of 32. */
    AELLM_DTYPE_INT4S_G32 = 100,
    AELLM_DTYPE_INT4S_G64 = 101,
    AELLM_DTYPE_INT4S_G128 = 102,
    AELLM_DTYPE_INT4A_G32 = 103,
    AELLM_DTYPE_INT4A_G64 = 104,
    AELLM_DTYPE_INT4A_G128 = 105,
    AELLM_DTYPE_NF4 = 106,      /* NormalFloat4 (QLoRA) codes, f16 absmax per 64 */
    AELLM_DTYPE_FP8_E4M3 = 107, /* f32 scale per row, then E4M3 bytes */
    AELLM_DTYPE_INT8 = 108,     /* f32 scale per row, then int8: W8A8 weights and activations */
    AELLM_DTYPE_INT8_G32 = 109, /* q8_0's layout for rows that are not whole blocks */
    /* q4_0's blocks in the engine's decode layout, 16 rows interleaved
     * (core/blocks.h, aellm_model_repack): memory only, never in a file. */
    AELLM_DTYPE_Q4_0_R16 = 110,
    AELLM_DTYPE_MAX = 256 /* ids are < this */
} aellm_dtype;

typedef void (*aellm_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*aellm_from_float_fn)(const float *src, void *dst, int64_t n);

/* A weight type's quantization grid, for methods that choose the stored
 * values themselves (GPTQ's error feedback, AWQ's scale search): each group
 * of `group` consecutive elements of a row shares one aellm_qparams, and an
 * element's value is decode(code, params). decode agrees exactly with the
 * type's to_float on what pack wrote (scales are rounded as stored). */
typedef struct {
    float scale, min;
} aellm_qparams;

typedef struct {
    int64_t group; /* elements per aellm_qparams; 0 = the whole row (per channel) */
    int n_codes;   /* codes are 0 .. n_codes-1 */
    /* Round-to-nearest parameters of one group of n values (n <= group; the
     * last group of a row may be partial). */
    void (*fit)(const float *x, int64_t n, aellm_qparams *p);
    int (*encode)(float x, const aellm_qparams *p); /* nearest code */
    float (*decode)(int code, const aellm_qparams *p);
    /* Writes one row of n elements: codes[n] and params[ceil(n / group)]
     * (one when group is 0); padding past n encodes zero. */
    void (*pack)(const uint8_t *codes, const aellm_qparams *params, int64_t n, void *row);
} aellm_dtype_grid;

typedef struct {
    const char *name;               /* lower case, as in `--type q4_0` */
    int64_t block_size;             /* elements per block (1 for plain floats) */
    size_t type_size;               /* bytes per block */
    aellm_to_float_fn to_float;     /* scalar reference, one row of n elements (see partial) */
    aellm_from_float_fn from_float; /* scalar reference quantizer (llama.cpp's rounding) */
    size_t row_header;              /* bytes before a row's blocks (a per-row scale), or 0 */
    /* A row may end in a partial block, zero-padded. GGML's own types may
     * not (llama.cpp cannot read such a tensor); for them to/from_float also
     * accept many rows at once (n a multiple of the block). */
    int partial;
    const aellm_dtype_grid *grid; /* NULL for types that are not weight quantizations */
    /* Set for a layout of another type's blocks that only the engine reads
     * (rows interleaved in groups of `interleave`): no to/from_float of a
     * row, no GGUF id, not a --type; `base` is the type whose blocks it holds. */
    int interleave;
    int base;
} aellm_dtype_traits;

/* Traits of `type`, or NULL for an id aellm does not know. Borrowed, static. */
const aellm_dtype_traits *aellm_dtype_traits_get(int type);

/* Looks a type up by name ("f32", "q4_0", ...); returns -1 when unknown. */
int aellm_dtype_from_name(const char *name);

/* Bytes of a row of n elements (header, then ceil(n / block) blocks), or 0
 * when the type is unknown or, for a type without partial blocks, n is not a
 * multiple of the block size. */
size_t aellm_dtype_row_size(int type, int64_t n);

/* Elements a row of n occupies in its blocks (n rounded up to the block). */
int64_t aellm_dtype_padded(int type, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
