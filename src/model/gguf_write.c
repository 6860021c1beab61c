/* GGUF v3 writer: metadata in insertion order, tensors aligned and padded
 * with zeros, written to PATH.tmp, synced and renamed over PATH. Not a
 * streaming writer: tensor data is borrowed until the write returns. */
#include "aellm/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aellm/dtype.h"
#include "core/atomic.h"
#include "core/error.h"
#include "model/model.h"

/* A metadata entry as it will be written after its key: type u32 + value. */
typedef struct {
    char *key;
    uint8_t *val;
    size_t len;
} wkv;

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[AELLM_GGUF_MAX_DIMS];
    size_t size;
    uint64_t offset;
    const void *data;
} wtensor;

struct aellm_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

int aellm_gguf_writer_new(aellm_gguf_writer **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : aellm_error_oom("a GGUF writer", sizeof(**out));
}

void aellm_gguf_writer_free(aellm_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kv[i].key), free(w->kv[i].val);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* ---- value encoding ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n && cap <= SIZE_MAX / 2) cap *= 2;
        uint8_t *p = cap - b->len >= n ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(buf *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put_u64(buf *b, uint64_t v)
{
    put(b, &v, 8);
}

static void put_str(buf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

/* Takes b's bytes as the value of `key`, replacing an earlier value. */
static int set_value(aellm_gguf_writer *w, const char *key, buf *b)
{
    if (b->oom) {
        free(b->p);
        return aellm_error_oom("a GGUF metadata value", b->len);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) != 0) continue;
        free(w->kv[i].val);
        w->kv[i].val = b->p, w->kv[i].len = b->len;
        return 0;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *kv = realloc(w->kv, cap * sizeof(*kv));
        if (!kv) goto oom;
        w->kv = kv, w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) goto oom;
    w->kv[w->n_kv++] = (wkv){.key = k, .val = b->p, .len = b->len};
    return 0;
oom:
    free(b->p);
    return aellm_error_oom("a GGUF metadata key", strlen(key));
}

static int set_scalar(aellm_gguf_writer *w, const char *key, aellm_gguf_type type, const void *v,
                      size_t n)
{
    buf b = {0};
    put_u32(&b, type);
    put(&b, v, n);
    return set_value(w, key, &b);
}

int aellm_gguf_set_u32(aellm_gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, AELLM_GGUF_UINT32, &v, 4);
}

int aellm_gguf_set_i32(aellm_gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, AELLM_GGUF_INT32, &v, 4);
}

int aellm_gguf_set_u64(aellm_gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, AELLM_GGUF_UINT64, &v, 8);
}

int aellm_gguf_set_f32(aellm_gguf_writer *w, const char *key, float v)
{
    return set_scalar(w, key, AELLM_GGUF_FLOAT32, &v, 4);
}

int aellm_gguf_set_bool(aellm_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return set_scalar(w, key, AELLM_GGUF_BOOL, &b, 1);
}

int aellm_gguf_set_str(aellm_gguf_writer *w, const char *key, const char *v)
{
    buf b = {0};
    put_u32(&b, AELLM_GGUF_STRING);
    put_str(&b, v);
    return set_value(w, key, &b);
}

static size_t elem_size(aellm_gguf_type t)
{
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < sizeof(sizes) / sizeof(sizes[0]) ? sizes[t] : 0;
}

int aellm_gguf_set_arr(aellm_gguf_writer *w, const char *key, aellm_gguf_type type,
                       const void *data, uint64_t n)
{
    size_t es = elem_size(type);
    if (es == 0)
        return aellm_error_set(AELLM_EINVAL, "gguf: key '%s': array element type %d is not numeric",
                               key, (int)type);
    if (n > SIZE_MAX / es || (n && !data))
        return aellm_error_set(AELLM_EINVAL, "gguf: key '%s': bad array of %llu elements", key,
                               (unsigned long long)n);
    buf b = {0};
    put_u32(&b, AELLM_GGUF_ARRAY);
    put_u32(&b, type);
    put_u64(&b, n);
    if (n) put(&b, data, (size_t)n * es);
    return set_value(w, key, &b);
}

int aellm_gguf_set_arr_str(aellm_gguf_writer *w, const char *key, const char *const *strs,
                           uint64_t n)
{
    buf b = {0};
    put_u32(&b, AELLM_GGUF_ARRAY);
    put_u32(&b, AELLM_GGUF_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            free(b.p);
            return aellm_error_set(AELLM_EINVAL, "gguf: key '%s': string %llu is NULL", key,
                                   (unsigned long long)i);
        }
        put_str(&b, strs[i]);
    }
    return set_value(w, key, &b);
}

int aellm_gguf_copy_kv(aellm_gguf_writer *w, const aellm_gguf *g, int64_t i)
{
    const void *raw;
    size_t len;
    int rc = aellm_gguf_kv_raw(g, i, &raw, &len);
    if (rc) return rc;
    buf b = {0};
    put(&b, raw, len);
    return set_value(w, aellm_gguf_kv_key(g, i), &b);
}

/* ---- tensors ---- */

/* Bytes of a tensor, with the same checks the reader makes. */
static int tensor_size(const char *name, int type, int n_dims, const int64_t *ne, size_t *out)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    if (!tr) return aellm_error_set(AELLM_EINVAL, "gguf: tensor '%s': unknown type %d", name, type);
    if (tr->interleave)
        return aellm_error_set(AELLM_EINVAL,
                               "gguf: tensor '%s': %s is the engine's in-memory layout, not a file "
                               "type (save the model before aellm_model_repack)",
                               name, tr->name);
    if (n_dims < 1 || n_dims > AELLM_GGUF_MAX_DIMS)
        return aellm_error_set(AELLM_EINVAL, "gguf: tensor '%s': %d dimensions", name, n_dims);
    int64_t nel = 1;
    size_t size = 0;
    for (int d = 0; d < n_dims; d++) {
        int bad = ne[d] <= 0 || nel > INT64_MAX / ne[d];
        if (!bad && d == 0) {
            uint64_t blocks = (uint64_t)(ne[0] / tr->block_size) + (ne[0] % tr->block_size != 0);
            bad = (!tr->partial && ne[0] % tr->block_size) ||
                  blocks > (SIZE_MAX - tr->row_header) / tr->type_size;
            if (!bad) size = tr->row_header + (size_t)blocks * tr->type_size;
        } else if (!bad) {
            bad = size > SIZE_MAX / (size_t)ne[d];
            if (!bad) size *= (size_t)ne[d];
        }
        if (bad)
            return aellm_error_set(AELLM_EINVAL, "gguf: tensor '%s': bad ne[%d] = %lld for %s",
                                   name, d, (long long)ne[d], tr->name);
        nel *= ne[d];
    }
    *out = size;
    return 0;
}

int aellm_gguf_add_tensor(aellm_gguf_writer *w, const char *name, int type, int n_dims,
                          const int64_t *ne, const void *data)
{
    wtensor t = {.type = type, .n_dims = n_dims, .data = data};
    int rc = tensor_size(name, type, n_dims, ne, &t.size);
    if (rc) return rc;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return aellm_error_set(AELLM_EINVAL, "gguf: duplicate tensor name '%s'", name);
    for (int d = 0; d < AELLM_GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof(*p));
        if (!p) return aellm_error_oom("GGUF tensor infos", cap * sizeof(*p));
        w->t = p, w->cap_t = cap;
    }
    if (!(t.name = strdup(name))) return aellm_error_oom("a GGUF tensor name", strlen(name));
    w->t[w->n_t++] = t;
    return 0;
}

/* ---- writing ---- */

static int writer_alignment(const aellm_gguf_writer *w, size_t *out)
{
    *out = AELLM_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t type, a = 0;
        memcpy(&type, w->kv[i].val, 4);
        if (type == AELLM_GGUF_UINT32) memcpy(&a, w->kv[i].val + 4, 4);
        if (a < 8 || (a & (a - 1)) != 0) /* as the reader requires */
            return aellm_error_set(AELLM_EINVAL,
                                   "gguf: general.alignment must be a uint32 power of two, >= 8");
        *out = a;
    }
    return 0;
}

/* Offsets of the tensors in the data section, each aligned. */
static int layout(aellm_gguf_writer *w, size_t align)
{
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        uint64_t end = off + w->t[i].size, pad = (align - end % align) % align;
        if (end < off || end + pad < end)
            return aellm_error_set(AELLM_EINVAL, "gguf: tensor data exceeds 2^64 bytes");
        off = end + pad;
    }
    return 0;
}

static void put_header(buf *b, const aellm_gguf_writer *w, size_t align)
{
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, w->n_t);
    put_u64(b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key);
        put(b, w->kv[i].val, w->kv[i].len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(b, t->name);
        put_u32(b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(b, (uint64_t)t->ne[d]);
        put_u32(b, (uint32_t)t->type);
        put_u64(b, t->offset);
    }
    /* the data section starts aligned; with no tensors there is none, and
     * the file ends here (as gguf-py writes it) */
    static const uint8_t zeros[256];
    while (w->n_t && !b->oom && b->len % align) {
        size_t pad = align - b->len % align;
        put(b, zeros, pad > sizeof(zeros) ? sizeof(zeros) : pad);
    }
}

static int write_bytes(FILE *f, const void *p, size_t n, const char *tmp)
{
    if (n && fwrite(p, 1, n, f) != n)
        return aellm_error_set(AELLM_EIO, "%s: write failed: %s", tmp, strerror(errno));
    return 0;
}

static int write_data(const aellm_gguf_writer *w, FILE *f, size_t align, const char *tmp)
{
    static const uint8_t zeros[256];
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        int rc = write_bytes(f, t->data, t->size, tmp);
        for (size_t pad = (align - t->size % align) % align; !rc && pad;) {
            size_t n = pad > sizeof(zeros) ? sizeof(zeros) : pad;
            rc = write_bytes(f, zeros, n, tmp);
            pad -= n;
        }
        if (rc) return rc;
    }
    return 0;
}

static int write_file(aellm_gguf_writer *w, FILE *f, size_t align, const char *tmp)
{
    buf b = {0};
    int rc = layout(w, align);
    if (rc) return rc;
    put_header(&b, w, align);
    if (b.oom) rc = aellm_error_oom("the GGUF header", b.len);
    if (!rc) rc = write_bytes(f, b.p, b.len, tmp);
    free(b.p);
    if (!rc) rc = write_data(w, f, align, tmp);
    return rc;
}

int aellm_gguf_writer_write(aellm_gguf_writer *w, const char *path)
{
    size_t align;
    aellm_atomic a;
    int rc = writer_alignment(w, &align);
    if (rc || (rc = aellm_atomic_open(&a, path))) return rc;
    rc = write_file(w, a.f, align, a.tmp);
    a.failed |= rc != 0; /* commit then removes the temporary file */
    int commit = aellm_atomic_commit(&a);
    return rc ? rc : commit;
}
