/* GGUF v2/v3 reader: maps the file, checks every count, offset and size
 * against the file's length before use, and keeps the parsed metadata.
 * Not a writer (gguf_write.c) and not a model loader (model.c). */
#include "aellm/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aellm/dtype.h"
#include "core/error.h"
#include "model/model.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

typedef struct {
    char *key;
    aellm_gguf_type type;
    const uint8_t *raw; /* type (u32) + value, as in the file: for copying */
    size_t raw_len;
    const uint8_t *val; /* scalar value bytes, in the mapping */
    char *str;          /* STRING: NUL-terminated copy */
    size_t str_len;
    aellm_gguf_type arr_type; /* ARRAY: element type and count */
    uint64_t arr_len;
    const uint8_t *arr_data; /* numeric elements, in the mapping */
    char *pool;              /* string elements: j is pool + offs[j] */
    size_t *offs;            /* arr_len + 1 entries */
} gguf_kv;

struct aellm_gguf {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    size_t alignment;
    size_t data_start;
    int64_t n_kv;
    gguf_kv *kv;
    const gguf_kv **kv_sorted; /* by key, for lookup */
    int64_t n_tensors;
    aellm_gguf_tensor_info *tensors;
    const aellm_gguf_tensor_info **t_sorted; /* by name, for lookup */
    int private_copy;                        /* map is our anonymous copy (not the file's pages) */
};

/* ---- bounded reading ---- */

typedef struct {
    const uint8_t *p;
    size_t pos, size;
    const char *path;
} cursor;

static int need(cursor *c, uint64_t n, const char *what)
{
    if (n > c->size - c->pos)
        return aellm_error_set(
            AELLM_EFORMAT, "%s: truncated in %s (%llu bytes needed at offset %zu, file has %zu)",
            c->path, what, (unsigned long long)n, c->pos, c->size);
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what)
{
    int rc = need(c, 4, what);
    if (rc) return rc;
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what)
{
    int rc = need(c, 8, what);
    if (rc) return rc;
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A string: u64 length, then that many bytes (left in the mapping). */
static int rd_str(cursor *c, const uint8_t **s, size_t *len, const char *what)
{
    uint64_t n;
    int rc = rd_u64(c, &n, what);
    if (!rc) rc = need(c, n, what);
    if (rc) return rc;
    *s = c->p + c->pos;
    *len = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

static char *dup_bytes(const uint8_t *s, size_t len)
{
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static int rd_str_copy(cursor *c, char **out, size_t *len, const char *what)
{
    const uint8_t *s;
    size_t n;
    int rc = rd_str(c, &s, &n, what);
    if (rc) return rc;
    *out = dup_bytes(s, n);
    if (!*out) return aellm_error_oom(what, n + 1);
    if (len) *len = n;
    return 0;
}

/* Bytes of a scalar of `type`; 0 for STRING, ARRAY and unknown types. */
static size_t scalar_size(uint32_t type)
{
    switch (type) {
    case AELLM_GGUF_UINT8:
    case AELLM_GGUF_INT8:
    case AELLM_GGUF_BOOL:
        return 1;
    case AELLM_GGUF_UINT16:
    case AELLM_GGUF_INT16:
        return 2;
    case AELLM_GGUF_UINT32:
    case AELLM_GGUF_INT32:
    case AELLM_GGUF_FLOAT32:
        return 4;
    case AELLM_GGUF_UINT64:
    case AELLM_GGUF_INT64:
    case AELLM_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* ---- metadata ---- */

/* Strings of an array: a first pass checks every length against the file and
 * sums them, a second copies them into one pool. */
static int read_str_array(cursor *c, gguf_kv *kv, const char *what)
{
    if (kv->arr_len > (c->size - c->pos) / 8)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s: array of %llu strings exceeds the file size",
                               c->path, what, (unsigned long long)kv->arr_len);
    size_t start = c->pos, total = 0;
    const uint8_t *s;
    size_t len;
    for (uint64_t j = 0; j < kv->arr_len; j++) {
        int rc = rd_str(c, &s, &len, what);
        if (rc) return rc;
        total += len + 1; /* bounded by the file size: no overflow */
    }
    kv->pool = malloc(total ? total : 1);
    kv->offs = malloc(((size_t)kv->arr_len + 1) * sizeof(size_t));
    if (!kv->pool || !kv->offs) return aellm_error_oom(what, total);
    c->pos = start;
    size_t at = 0;
    for (uint64_t j = 0; j < kv->arr_len; j++) {
        rd_str(c, &s, &len, what); /* checked in the first pass */
        memcpy(kv->pool + at, s, len);
        kv->pool[at + len] = '\0';
        kv->offs[j] = at;
        at += len + 1;
    }
    kv->offs[kv->arr_len] = at;
    return 0;
}

static int read_array(cursor *c, gguf_kv *kv, const char *what)
{
    uint32_t et;
    uint64_t n;
    int rc = rd_u32(c, &et, what);
    if (!rc) rc = rd_u64(c, &n, what);
    if (rc) return rc;
    kv->arr_type = (aellm_gguf_type)et;
    kv->arr_len = n;
    if (et == AELLM_GGUF_STRING) return read_str_array(c, kv, what);
    if (et == AELLM_GGUF_ARRAY)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s: arrays of arrays are not supported", c->path,
                               what);
    size_t es = scalar_size(et);
    if (es == 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s: unknown array element type %u", c->path,
                               what, et);
    if (n > (c->size - c->pos) / es)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: truncated in %s (array of %llu elements of %zu bytes at "
                               "offset %zu, file has %zu)",
                               c->path, what, (unsigned long long)n, es, c->pos, c->size);
    kv->arr_data = c->p + c->pos;
    c->pos += (size_t)n * es;
    return 0;
}

static int read_value(cursor *c, gguf_kv *kv, const char *what)
{
    if (kv->type == AELLM_GGUF_STRING) return rd_str_copy(c, &kv->str, &kv->str_len, what);
    if (kv->type == AELLM_GGUF_ARRAY) return read_array(c, kv, what);
    size_t sz = scalar_size(kv->type);
    if (sz == 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s has unknown value type %u", c->path, what,
                               (unsigned)kv->type);
    int rc = need(c, sz, what);
    if (rc) return rc;
    kv->val = c->p + c->pos;
    c->pos += sz;
    return 0;
}

static int read_kv(cursor *c, gguf_kv *kv, int64_t i)
{
    char what[320];
    snprintf(what, sizeof(what), "the key of metadata entry %lld", (long long)i);
    uint32_t type;
    int rc = rd_str_copy(c, &kv->key, NULL, what);
    if (rc) return rc;
    snprintf(what, sizeof(what), "key '%.256s'", kv->key);
    size_t start = c->pos;
    if ((rc = rd_u32(c, &type, what))) return rc;
    kv->type = (aellm_gguf_type)type;
    if ((rc = read_value(c, kv, what))) return rc;
    kv->raw = c->p + start;
    kv->raw_len = c->pos - start;
    return 0;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int read_kvs(aellm_gguf *g, cursor *c)
{
    g->kv = calloc((size_t)g->n_kv ? (size_t)g->n_kv : 1, sizeof(*g->kv));
    g->kv_sorted = malloc(((size_t)g->n_kv ? (size_t)g->n_kv : 1) * sizeof(*g->kv_sorted));
    if (!g->kv || !g->kv_sorted) return aellm_error_oom("GGUF metadata", (size_t)g->n_kv);
    for (int64_t i = 0; i < g->n_kv; i++) {
        int rc = read_kv(c, &g->kv[i], i);
        if (rc) return rc;
        g->kv_sorted[i] = &g->kv[i];
    }
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof(*g->kv_sorted), cmp_kv);
    for (int64_t i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0)
            return aellm_error_set(AELLM_EFORMAT, "%s: duplicate metadata key '%s'", g->path,
                                   g->kv_sorted[i]->key);
    return 0;
}

static int read_alignment(aellm_gguf *g)
{
    g->alignment = AELLM_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = aellm_gguf_find_key(g, "general.alignment");
    if (i < 0) return 0;
    uint32_t a;
    if (g->kv[i].type != AELLM_GGUF_UINT32)
        return aellm_error_set(AELLM_EFORMAT, "%s: general.alignment is not a uint32", g->path);
    memcpy(&a, g->kv[i].val, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: general.alignment %u is not a power of two",
                               g->path, a);
    /* the format asks for a multiple of 8; below 4 the mapped f32 weights,
     * read in place as floats, would be misaligned */
    if (a < 8)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: general.alignment %u is below 8 (GGUF: a multiple of 8)",
                               g->path, a);
    g->alignment = a;
    return 0;
}

/* ---- tensors ---- */

static int read_tensor_info(cursor *c, aellm_gguf_tensor_info *t, int64_t i)
{
    char what[320];
    snprintf(what, sizeof(what), "the name of tensor %lld", (long long)i);
    char *name;
    uint32_t n_dims, type;
    int rc = rd_str_copy(c, &name, NULL, what);
    if (rc) return rc;
    t->name = name;
    snprintf(what, sizeof(what), "tensor '%.256s'", name);
    if ((rc = rd_u32(c, &n_dims, what))) return rc;
    if (n_dims < 1 || n_dims > AELLM_GGUF_MAX_DIMS)
        return aellm_error_set(AELLM_EFORMAT, "%s: tensor '%s' has %u dimensions (must be 1..%d)",
                               c->path, name, n_dims, AELLM_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < AELLM_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((rc = rd_u64(c, &ne, what))) return rc;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return aellm_error_set(AELLM_EFORMAT, "%s: tensor '%s' has ne[%u] = %llu out of range",
                                   c->path, name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((rc = rd_u32(c, &type, what))) return rc;
    t->type = (int)type;
    return rd_u64(c, &t->offset, what);
}

/* Bytes of a tensor with overflow checks: rows of aellm_dtype_row_size(ne[0])
 * times ne[1]*ne[2]*ne[3], whose element count must also fit int64. */
static int tensor_size(const char *path, aellm_gguf_tensor_info *t)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    if (!tr || tr->interleave) /* an in-memory layout is never a file's */
        return aellm_error_set(AELLM_EFORMAT, "%s: tensor '%s' has unknown type id %u", path,
                               t->name, (unsigned)t->type);
    if (!tr->partial && t->ne[0] % tr->block_size != 0)
        return aellm_error_set(
            AELLM_EFORMAT, "%s: tensor '%s' row of %lld is not a multiple of %s's block of %lld",
            path, t->name, (long long)t->ne[0], tr->name, (long long)tr->block_size);
    int64_t nel = t->ne[0];
    /* a row: an optional header, then whole blocks (aellm's types may end in a padded one) */
    uint64_t blocks = (uint64_t)(t->ne[0] / tr->block_size) + (t->ne[0] % tr->block_size != 0);
    size_t size = 0;
    int bad = blocks > (SIZE_MAX - tr->row_header) / tr->type_size;
    if (!bad) size = tr->row_header + (size_t)blocks * tr->type_size;
    for (int d = 1; d < AELLM_GGUF_MAX_DIMS && !bad; d++) {
        bad = nel > INT64_MAX / t->ne[d] || size > SIZE_MAX / (size_t)t->ne[d];
        if (!bad) nel *= t->ne[d], size *= (size_t)t->ne[d];
    }
    if (bad)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: tensor '%s' dimensions [%lld, %lld, %lld, %lld] are too large",
                               path, t->name, (long long)t->ne[0], (long long)t->ne[1],
                               (long long)t->ne[2], (long long)t->ne[3]);
    t->size = size;
    return 0;
}

static int place_tensor(const aellm_gguf *g, aellm_gguf_tensor_info *t)
{
    int rc = tensor_size(g->path, t);
    if (rc) return rc;
    if (t->offset % g->alignment != 0)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: tensor '%s' offset %llu is not a multiple of the alignment %zu",
                               g->path, t->name, (unsigned long long)t->offset, g->alignment);
    uint64_t avail = g->data_start <= g->size ? g->size - g->data_start : 0;
    if (t->offset > avail || t->size > avail - t->offset) {
        if (t->offset > UINT64_MAX - g->data_start)
            return aellm_error_set(AELLM_EFORMAT, "%s: tensor '%s' offset %llu is out of range",
                                   g->path, t->name, (unsigned long long)t->offset);
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: tensor '%s' extends past end of file (offset %llu + size %zu "
                               "> %zu)",
                               g->path, t->name, (unsigned long long)(g->data_start + t->offset),
                               t->size, g->size);
    }
    t->data = g->map + g->data_start + t->offset;
    return 0;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(const aellm_gguf_tensor_info *const *)a)->name,
                  (*(const aellm_gguf_tensor_info *const *)b)->name);
}

static int read_tensors(aellm_gguf *g, cursor *c)
{
    size_t n = (size_t)g->n_tensors ? (size_t)g->n_tensors : 1;
    g->tensors = calloc(n, sizeof(*g->tensors));
    g->t_sorted = malloc(n * sizeof(*g->t_sorted));
    if (!g->tensors || !g->t_sorted) return aellm_error_oom("GGUF tensor infos", n);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        int rc = read_tensor_info(c, &g->tensors[i], i);
        if (rc) return rc;
        g->t_sorted[i] = &g->tensors[i];
    }
    /* the data section starts at the first aligned position after the infos */
    g->data_start = c->pos + (g->alignment - c->pos % g->alignment) % g->alignment;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        int rc = place_tensor(g, &g->tensors[i]);
        if (rc) return rc;
    }
    qsort(g->t_sorted, (size_t)g->n_tensors, sizeof(*g->t_sorted), cmp_tensor);
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->t_sorted[i - 1]->name, g->t_sorted[i]->name) == 0)
            return aellm_error_set(AELLM_EFORMAT, "%s: duplicate tensor name '%s'", g->path,
                                   g->t_sorted[i]->name);
    return 0;
}

/* ---- opening ---- */

/* Smallest possible encodings, to reject counts no file of this size holds:
 * a kv is a key length (8) + type (4) + a 1-byte value; a tensor info is a
 * name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8). */
#define MIN_KV_BYTES     13
#define MIN_TENSOR_BYTES 32

static int read_header(aellm_gguf *g, cursor *c)
{
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    int rc = rd_u32(c, &magic, "the header");
    if (rc) return rc;
    if (memcmp(&magic, "GGUF", 4) != 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: bad magic (not a GGUF file)", g->path);
    if ((rc = rd_u32(c, &g->version, "the header"))) return rc;
    if (g->version != 2 && g->version != 3)
        return aellm_error_set(AELLM_EFORMAT, "%s: unsupported GGUF version %u (need 2 or 3%s)",
                               g->path, g->version,
                               (g->version & 0xffff) == 0 ? "; big-endian files are not" : "");
    if ((rc = rd_u64(c, &n_tensors, "the header")) || (rc = rd_u64(c, &n_kv, "the header")))
        return rc;
    size_t left = c->size - c->pos;
    if (n_tensors > left / MIN_TENSOR_BYTES)
        return aellm_error_set(AELLM_EFORMAT, "%s: tensor count %llu exceeds what %zu bytes hold",
                               g->path, (unsigned long long)n_tensors, c->size);
    if (n_kv > left / MIN_KV_BYTES)
        return aellm_error_set(AELLM_EFORMAT, "%s: metadata count %llu exceeds what %zu bytes hold",
                               g->path, (unsigned long long)n_kv, c->size);
    g->n_tensors = (int64_t)n_tensors;
    g->n_kv = (int64_t)n_kv;
    return 0;
}

/* The file's bytes in private anonymous memory, advised to huge pages, then
 * made read-only. Decode streams every weight once per token, and from a
 * file mapping (4 KiB page-cache pages) it ran slower on a 2-core Zen 5:
 * bench/mmap_ab.sh, 1.1B tg, median pair ratio 1.27x (bench/README.md).
 * Costs one read of the file at load, from the page cache when it is warm.
 * NULL (errno set) on failure. */
static void *read_private(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE); /* advice only: small pages still work */
#endif
    for (size_t done = 0; done < size;) {
        ssize_t k = pread(fd, (char *)p + done, size - done, (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int err = k == 0 ? EIO : errno;
            munmap(p, size);
            errno = err;
            return NULL;
        }
        done += (size_t)k;
    }
    mprotect(p, size, PROT_READ);
    return p;
}

/* AELLM_MMAP=1 maps the file instead (shared page cache, no copy at load,
 * slower decode). */
static int map_file(aellm_gguf *g)
{
    int fd = open(g->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return aellm_error_set(errno == ENOENT ? AELLM_ENOTFOUND : AELLM_EIO, "%s: cannot open: %s",
                               g->path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = aellm_error_set(AELLM_EIO, "%s: not a regular file", g->path);
    else if (st.st_size == 0)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: truncated in the header (empty file)", g->path);
    if (!rc) {
        const char *mm = getenv("AELLM_MMAP");
        int file_pages = mm && !strcmp(mm, "1");
        g->size = (size_t)st.st_size;
        void *p = file_pages ? mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0)
                             : read_private(fd, g->size);
        if (p == MAP_FAILED || !p)
            rc = aellm_error_set(AELLM_EIO, "%s: cannot load: %s", g->path, strerror(errno));
        else
            g->map = p, g->private_copy = !file_pages;
    }
    close(fd);
    return rc;
}

int aellm_gguf_open(aellm_gguf **out, const char *path)
{
    *out = NULL;
    aellm_gguf *g = calloc(1, sizeof(*g));
    int rc = AELLM_ENOMEM;
    if (!g || !(g->path = strdup(path))) {
        rc = aellm_error_oom("a GGUF reader", sizeof(*g));
        goto done;
    }
    if ((rc = map_file(g))) goto done;
    cursor c = {.p = g->map, .pos = 0, .size = g->size, .path = g->path};
    if ((rc = read_header(g, &c)) || (rc = read_kvs(g, &c)) || (rc = read_alignment(g)) ||
        (rc = read_tensors(g, &c)))
        goto done;
    *out = g;
    g = NULL;
done:
    aellm_gguf_free(g);
    return rc;
}

void aellm_gguf_free(aellm_gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
        free(g->kv[i].pool);
        free(g->kv[i].offs);
    }
    for (int64_t i = 0; g->tensors && i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    if (g->map) munmap((void *)g->map, g->size);
    free(g->path);
    free(g);
}

int aellm_gguf_set_writable(aellm_gguf *g, int writable)
{
    if (!g->private_copy)
        return aellm_error_set(AELLM_EINVAL, "%s: mapped from the file (AELLM_MMAP=1): read-only",
                               g->path);
    if (mprotect((void *)g->map, g->size, writable ? PROT_READ | PROT_WRITE : PROT_READ))
        return aellm_error_set(AELLM_EIO, "%s: mprotect: %s", g->path, strerror(errno));
    return 0;
}

const void *aellm_gguf_mapping(const aellm_gguf *g, size_t *size)
{
    *size = g->size;
    return g->map;
}

/* ---- accessors ---- */

const char *aellm_gguf_path(const aellm_gguf *g)
{
    return g->path;
}
uint32_t aellm_gguf_version(const aellm_gguf *g)
{
    return g->version;
}
size_t aellm_gguf_alignment(const aellm_gguf *g)
{
    return g->alignment;
}
size_t aellm_gguf_file_size(const aellm_gguf *g)
{
    return g->size;
}
int64_t aellm_gguf_kv_count(const aellm_gguf *g)
{
    return g->n_kv;
}

static const gguf_kv *kv_at(const aellm_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const char *aellm_gguf_kv_key(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : NULL;
}

aellm_gguf_type aellm_gguf_kv_type(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : (aellm_gguf_type)-1;
}

int64_t aellm_gguf_find_key(const aellm_gguf *g, const char *key)
{
    gguf_kv probe = {.key = (char *)key};
    const gguf_kv *pp = &probe;
    const gguf_kv **hit = bsearch(&pp, g->kv_sorted, (size_t)g->n_kv, sizeof(*hit), cmp_kv);
    return hit ? *hit - g->kv : -1;
}

int aellm_gguf_kv_raw(const aellm_gguf *g, int64_t i, const void **data, size_t *len)
{
    const gguf_kv *kv = kv_at(g, i);
    if (!kv)
        return aellm_error_set(AELLM_EINVAL, "%s: no metadata entry %lld", g->path, (long long)i);
    *data = kv->raw;
    *len = kv->raw_len;
    return 0;
}

/* Integer value of a scalar as a sign and magnitude, so every integer type
 * converts exactly. Returns 0 if kv is not an integer. */
static int kv_integer(const gguf_kv *kv, int *neg, uint64_t *mag)
{
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
    } v;
    size_t sz = scalar_size(kv->type);
    if (sz == 0 || kv->type == AELLM_GGUF_FLOAT32 || kv->type == AELLM_GGUF_FLOAT64 ||
        kv->type == AELLM_GGUF_BOOL)
        return 0;
    memcpy(&v, kv->val, sz);
    int64_t s = 0;
    switch (kv->type) {
    case AELLM_GGUF_UINT8:
        *neg = 0, *mag = v.u8;
        return 1;
    case AELLM_GGUF_UINT16:
        *neg = 0, *mag = v.u16;
        return 1;
    case AELLM_GGUF_UINT32:
        *neg = 0, *mag = v.u32;
        return 1;
    case AELLM_GGUF_UINT64:
        *neg = 0, *mag = v.u64;
        return 1;
    case AELLM_GGUF_INT8:
        s = v.i8;
        break;
    case AELLM_GGUF_INT16:
        s = v.i16;
        break;
    case AELLM_GGUF_INT32:
        s = v.i32;
        break;
    default:
        s = v.i64;
        break;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 1;
}

static int find_kv(const aellm_gguf *g, const char *key, const gguf_kv **kv)
{
    int64_t i = aellm_gguf_find_key(g, key);
    if (i < 0) return aellm_error_set(AELLM_ENOTFOUND, "%s: missing key '%s'", g->path, key);
    *kv = &g->kv[i];
    return 0;
}

static int bad_type(const aellm_gguf *g, const char *key, const char *want)
{
    return aellm_error_set(AELLM_EFORMAT, "%s: key '%s' is not %s", g->path, key, want);
}

int aellm_gguf_get_u32(const aellm_gguf *g, const char *key, uint32_t *out)
{
    const gguf_kv *kv = NULL;
    int neg, rc = find_kv(g, key, &kv);
    uint64_t mag;
    if (rc) return rc;
    if (!kv_integer(kv, &neg, &mag) || neg || mag > UINT32_MAX)
        return bad_type(g, key, "an integer in the range of uint32");
    *out = (uint32_t)mag;
    return 0;
}

int aellm_gguf_get_i64(const aellm_gguf *g, const char *key, int64_t *out)
{
    const gguf_kv *kv = NULL;
    int neg, rc = find_kv(g, key, &kv);
    uint64_t mag;
    if (rc) return rc;
    if (!kv_integer(kv, &neg, &mag) || mag > (uint64_t)INT64_MAX + neg)
        return bad_type(g, key, "an integer in the range of int64");
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int aellm_gguf_get_f32(const aellm_gguf *g, const char *key, float *out)
{
    const gguf_kv *kv = NULL;
    int rc = find_kv(g, key, &kv);
    if (rc) return rc;
    if (kv->type == AELLM_GGUF_FLOAT32) {
        memcpy(out, kv->val, 4);
    } else if (kv->type == AELLM_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        *out = (float)d;
    } else {
        return bad_type(g, key, "a float");
    }
    return 0;
}

int aellm_gguf_get_bool(const aellm_gguf *g, const char *key, int *out)
{
    const gguf_kv *kv = NULL;
    int rc = find_kv(g, key, &kv);
    if (rc) return rc;
    if (kv->type != AELLM_GGUF_BOOL) return bad_type(g, key, "a bool");
    *out = kv->val[0] != 0;
    return 0;
}

int aellm_gguf_get_str(const aellm_gguf *g, const char *key, const char **out)
{
    const gguf_kv *kv = NULL;
    int rc = find_kv(g, key, &kv);
    if (rc) return rc;
    if (kv->type != AELLM_GGUF_STRING) return bad_type(g, key, "a string");
    *out = kv->str;
    return 0;
}

static const gguf_kv *arr_at(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == AELLM_GGUF_ARRAY ? kv : NULL;
}

aellm_gguf_type aellm_gguf_arr_type(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = arr_at(g, i);
    return kv ? kv->arr_type : (aellm_gguf_type)-1;
}

uint64_t aellm_gguf_arr_len(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = arr_at(g, i);
    return kv ? kv->arr_len : 0;
}

const void *aellm_gguf_arr_data(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = arr_at(g, i);
    return kv ? kv->arr_data : NULL;
}

const char *aellm_gguf_arr_str(const aellm_gguf *g, int64_t i, uint64_t j, size_t *len)
{
    const gguf_kv *kv = arr_at(g, i);
    if (!kv || !kv->pool || j >= kv->arr_len) return NULL;
    if (len) *len = kv->offs[j + 1] - kv->offs[j] - 1;
    return kv->pool + kv->offs[j];
}

double aellm_gguf_kv_number(const aellm_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    int neg;
    uint64_t mag;
    if (!kv) return NAN;
    if (kv_integer(kv, &neg, &mag)) return neg ? -(double)mag : (double)mag;
    if (kv->type == AELLM_GGUF_BOOL) return kv->val[0] != 0;
    if (kv->type == AELLM_GGUF_FLOAT32) {
        float f;
        memcpy(&f, kv->val, 4);
        return f;
    }
    if (kv->type == AELLM_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        return d;
    }
    return NAN;
}

const char *aellm_gguf_kv_str(const aellm_gguf *g, int64_t i, size_t *len)
{
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != AELLM_GGUF_STRING) return NULL;
    if (len) *len = kv->str_len;
    return kv->str;
}

int64_t aellm_gguf_tensor_count(const aellm_gguf *g)
{
    return g->n_tensors;
}

const aellm_gguf_tensor_info *aellm_gguf_tensor(const aellm_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const aellm_gguf_tensor_info *aellm_gguf_find_tensor(const aellm_gguf *g, const char *name)
{
    aellm_gguf_tensor_info probe = {.name = name};
    const aellm_gguf_tensor_info *pp = &probe;
    const aellm_gguf_tensor_info **hit =
        bsearch(&pp, g->t_sorted, (size_t)g->n_tensors, sizeof(*hit), cmp_tensor);
    return hit ? *hit : NULL;
}
