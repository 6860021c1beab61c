/* llama2.c's legacy checkpoint (run.c's format): a header of 7 int32, then
 * f32 arrays, memory-mapped and used in place. Not the newer versioned
 * export (magic "ak42"), which is rejected with a message saying so. */
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#define HEADER_BYTES (7 * sizeof(int32_t))
#define EXPORT_MAGIC 0x616b3432 /* "ak42": llama2.c's versioned export */

/* Header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means a separate classifier at the end. */
static int read_header(const int32_t *h, const char *path, aellm_model_config *c)
{
    if ((uint32_t)h[0] == EXPORT_MAGIC)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: llama2.c versioned export (version %d) is not supported; "
                               "use the legacy export or GGUF",
                               path, h[1]);
    memset(c, 0, sizeof(*c));
    c->dim = h[0], c->hidden_dim = h[1], c->n_layers = h[2], c->n_heads = h[3];
    c->n_kv_heads = h[4], c->seq_len = h[6];
    c->vocab_size = h[5] == INT32_MIN ? 0 : abs(h[5]);
    c->tied_output = h[5] > 0;
    if (c->n_heads <= 0 || c->dim % c->n_heads != 0)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: bad header: dim %d is not a multiple of %d heads", path, c->dim,
                               c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    c->rope_base = 10000.0f;
    c->norm_eps = 1e-5f;
    return aellm_model_config_check(c, path);
}

/* Floats the file must hold after the header. aellm_model_config_check's caps
 * keep every term below 2^56: no overflow. */
static int64_t expected_floats(const aellm_model_config *c)
{
    const int64_t d = c->dim, h = c->hidden_dim, L = c->n_layers, v = c->vocab_size;
    const int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t n = v * d;                          /* token embedding */
    n += L * (d + q * d + 2 * kv * d);          /* rms_att, wq, wk, wv */
    n += L * (d * q + d + 3 * h * d);           /* wo, rms_ffn, w1, w2, w3 */
    n += d + (int64_t)c->seq_len * c->head_dim; /* rms_final, freq_cis real + imag */
    if (!c->tied_output) n += v * d;            /* wcls */
    return n;
}

/* Hands out consecutive arrays of the mapping. */
static const float *take(const float **p, int64_t n)
{
    const float *a = *p;
    *p += n;
    return a;
}

/* Each per-layer array is (L, rows, cols): layer l is slice l. */
static void bind_layers(aellm_model *m, const float **p)
{
    const aellm_model_config *c = &m->cfg;
    const int64_t d = c->dim, h = c->hidden_dim, L = c->n_layers;
    const int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    const struct {
        size_t field; /* offset of the tensor in aellm_layer */
        int64_t ne0, ne1;
    } order[] = {
        {offsetof(aellm_layer, attn_norm), d, 1}, {offsetof(aellm_layer, wq), d, q},
        {offsetof(aellm_layer, wk), d, kv},       {offsetof(aellm_layer, wv), d, kv},
        {offsetof(aellm_layer, wo), q, d},        {offsetof(aellm_layer, ffn_norm), d, 1},
        {offsetof(aellm_layer, w_gate), d, h},    {offsetof(aellm_layer, w_down), h, d},
        {offsetof(aellm_layer, w_up), d, h},
    };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const int64_t n = order[i].ne0 * order[i].ne1;
        const float *base = take(p, L * n);
        for (int64_t l = 0; l < L; l++) {
            aellm_tensor *t = (aellm_tensor *)((char *)&m->layers[l] + order[i].field);
            aellm_tensor_set(t, AELLM_DTYPE_F32, order[i].ne0, order[i].ne1, base + l * n);
        }
    }
}

static void bind_all(aellm_model *m)
{
    const aellm_model_config *c = &m->cfg;
    const float *p = (const float *)((const char *)m->map + HEADER_BYTES);
    aellm_tensor_set(&m->tok_embd, AELLM_DTYPE_F32, c->dim, c->vocab_size,
                     take(&p, (int64_t)c->vocab_size * c->dim));
    bind_layers(m, &p);
    aellm_tensor_set(&m->output_norm, AELLM_DTYPE_F32, c->dim, 1, take(&p, c->dim));
    take(&p, (int64_t)c->seq_len * c->head_dim); /* freq_cis_real and _imag: unused */
    if (c->tied_output)
        m->output = m->tok_embd;
    else
        aellm_tensor_set(&m->output, AELLM_DTYPE_F32, c->dim, c->vocab_size, p);
}

static int map_file(const char *path, void **map, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return aellm_error_set(errno == ENOENT ? AELLM_ENOTFOUND : AELLM_EIO, "%s: cannot open: %s",
                               path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = aellm_error_set(AELLM_EIO, "%s: not a regular file", path);
    else if ((size_t)st.st_size < HEADER_BYTES)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: truncated llama2.c header (%lld bytes)", path,
                             (long long)st.st_size);
    if (!rc) {
        *size = (size_t)st.st_size;
        *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED) {
            *map = NULL;
            rc = aellm_error_set(AELLM_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd);
    return rc;
}

int aellm_model_load_llama2c(aellm_model **out, const char *path, const char *tokenizer_path)
{
    *out = NULL;
    void *map = NULL;
    size_t size = 0;
    aellm_model *m = NULL;
    aellm_model_config cfg;
    int rc = map_file(path, &map, &size);
    if (!rc) rc = read_header(map, path, &cfg);
    if (rc) goto done;
    uint64_t want = HEADER_BYTES + 4 * (uint64_t)expected_floats(&cfg);
    if (want != size) {
        rc =
            aellm_error_set(AELLM_EFORMAT,
                            "%s: file has %zu bytes, the llama2.c header implies %llu (dim %d, "
                            "hidden %d, layers %d, heads %d/%d, vocab %d, context %d)",
                            path, size, (unsigned long long)want, cfg.dim, cfg.hidden_dim,
                            cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len);
        goto done;
    }
    if ((rc = aellm_model_alloc(&m, &cfg))) goto done;
    m->map = map, m->map_size = size;
    map = NULL;
    bind_all(m);
    if (tokenizer_path)
        rc = aellm_tokenizer_load_llama2c(&m->tokenizer, tokenizer_path, cfg.vocab_size);
    if (rc) goto done;
    *out = m;
    m = NULL;
done:
    if (map) munmap(map, size);
    aellm_model_free(m);
    return rc;
}
