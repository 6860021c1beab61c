/* GGUF (v2, v3) reading and writing — llama.cpp's model file format.
 * The reader memory-maps the file and validates every count, offset and size
 * (with overflow checks) before use; strings are copied out NUL-terminated.
 * The writer is atomic: it writes `path.tmp` and renames it over `path`. */
#ifndef AELLM_GGUF_H
#define AELLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AELLM_GGUF_UINT8 = 0,
    AELLM_GGUF_INT8 = 1,
    AELLM_GGUF_UINT16 = 2,
    AELLM_GGUF_INT16 = 3,
    AELLM_GGUF_UINT32 = 4,
    AELLM_GGUF_INT32 = 5,
    AELLM_GGUF_FLOAT32 = 6,
    AELLM_GGUF_BOOL = 7,
    AELLM_GGUF_STRING = 8,
    AELLM_GGUF_ARRAY = 9,
    AELLM_GGUF_UINT64 = 10,
    AELLM_GGUF_INT64 = 11,
    AELLM_GGUF_FLOAT64 = 12,
} aellm_gguf_type;

#define AELLM_GGUF_MAX_DIMS          4
#define AELLM_GGUF_DEFAULT_ALIGNMENT 32

typedef struct aellm_gguf aellm_gguf;

typedef struct {
    const char *name; /* NUL-terminated, owned by the aellm_gguf */
    int type;         /* aellm_dtype id */
    int n_dims;
    int64_t ne[AELLM_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused = 1 */
    uint64_t offset;                 /* from the start of the data section */
    size_t size;                     /* bytes */
    const void *data;                /* points into the mapping */
} aellm_gguf_tensor_info;

/* Opens and validates `path`. On failure *out is NULL and the message names
 * the file and the problem ("model.gguf: tensor 'x' extends past end of file"). */
int aellm_gguf_open(aellm_gguf **out, const char *path);
void aellm_gguf_free(aellm_gguf *g); /* accepts NULL; unmaps */

const char *aellm_gguf_path(const aellm_gguf *g);
uint32_t aellm_gguf_version(const aellm_gguf *g);
size_t aellm_gguf_alignment(const aellm_gguf *g);
size_t aellm_gguf_file_size(const aellm_gguf *g);

/* Metadata: key/value pairs by index [0, count). */
int64_t aellm_gguf_kv_count(const aellm_gguf *g);
const char *aellm_gguf_kv_key(const aellm_gguf *g, int64_t i);
aellm_gguf_type aellm_gguf_kv_type(const aellm_gguf *g, int64_t i);
int64_t aellm_gguf_find_key(const aellm_gguf *g, const char *key); /* -1 if absent */

/* Scalars, converted where lossless (any integer type to u32/i64 if it fits;
 * f32/f64 to f32). Return AELLM_ENOTFOUND if absent, AELLM_EFORMAT if of an
 * incompatible type, setting the message. */
int aellm_gguf_get_u32(const aellm_gguf *g, const char *key, uint32_t *out);
int aellm_gguf_get_i64(const aellm_gguf *g, const char *key, int64_t *out);
int aellm_gguf_get_f32(const aellm_gguf *g, const char *key, float *out);
int aellm_gguf_get_bool(const aellm_gguf *g, const char *key, int *out);
int aellm_gguf_get_str(const aellm_gguf *g, const char *key, const char **out); /* borrowed */

/* Arrays (value type ARRAY): element type and length; numeric elements are
 * read one at a time (the file gives no alignment guarantee), strings are
 * NUL-terminated copies owned by the aellm_gguf (len excludes the NUL). */
aellm_gguf_type aellm_gguf_arr_type(const aellm_gguf *g, int64_t i);
uint64_t aellm_gguf_arr_len(const aellm_gguf *g, int64_t i);
const void *aellm_gguf_arr_data(const aellm_gguf *g, int64_t i); /* numeric: raw LE bytes */
const char *aellm_gguf_arr_str(const aellm_gguf *g, int64_t i, uint64_t j, size_t *len);
/* Scalar value of kv i as a double / string, for printing (`aellm info`). */
double aellm_gguf_kv_number(const aellm_gguf *g, int64_t i);
const char *aellm_gguf_kv_str(const aellm_gguf *g, int64_t i, size_t *len);

int64_t aellm_gguf_tensor_count(const aellm_gguf *g);
const aellm_gguf_tensor_info *aellm_gguf_tensor(const aellm_gguf *g, int64_t i); /* borrowed */
const aellm_gguf_tensor_info *aellm_gguf_find_tensor(const aellm_gguf *g, const char *name);

/* ---- writer ---- */
typedef struct aellm_gguf_writer aellm_gguf_writer;

int aellm_gguf_writer_new(aellm_gguf_writer **out);
void aellm_gguf_writer_free(aellm_gguf_writer *w); /* accepts NULL */

/* Setting a key twice replaces its value. Keys and values are copied. */
int aellm_gguf_set_u32(aellm_gguf_writer *w, const char *key, uint32_t v);
int aellm_gguf_set_i32(aellm_gguf_writer *w, const char *key, int32_t v);
int aellm_gguf_set_u64(aellm_gguf_writer *w, const char *key, uint64_t v);
int aellm_gguf_set_f32(aellm_gguf_writer *w, const char *key, float v);
int aellm_gguf_set_bool(aellm_gguf_writer *w, const char *key, int v);
int aellm_gguf_set_str(aellm_gguf_writer *w, const char *key, const char *v);
/* Numeric array of `n` elements of `type` (raw little-endian bytes). */
int aellm_gguf_set_arr(aellm_gguf_writer *w, const char *key, aellm_gguf_type type,
                       const void *data, uint64_t n);
int aellm_gguf_set_arr_str(aellm_gguf_writer *w, const char *key, const char *const *strs,
                           uint64_t n);
/* Copies key/value i of a reader (any type, arrays included). */
int aellm_gguf_copy_kv(aellm_gguf_writer *w, const aellm_gguf *g, int64_t i);

/* Adds a tensor; `data` (aellm_dtype_row_size(type, ne[0]) * ne[1] * ... bytes)
 * is borrowed until aellm_gguf_writer_write returns. */
int aellm_gguf_add_tensor(aellm_gguf_writer *w, const char *name, int type, int n_dims,
                          const int64_t *ne, const void *data);

/* Writes a GGUF v3 file atomically (tmp + fsync + rename); alignment from
 * "general.alignment" if set, else 32. */
int aellm_gguf_writer_write(aellm_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
