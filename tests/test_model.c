/* Model tests: the stories260K llama2.c checkpoint (config, save as GGUF and
 * reload byte for byte, conversion), malformed checkpoints and GGUF models,
 * and random models of named shapes (sizes, determinism across threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <omp.h>

#include "aellm/error.h"
#include "aellm/model.h"
#include "core/half.h"
#include "model/model.h"

#define STORIES_BIN AELLM_DATA_DIR "/stories260K/stories260K.bin"
#define TOK512_BIN  AELLM_DATA_DIR "/stories260K/tok512.bin"

#include "test_tmpdir.h"

/* ---- helpers ---- */

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t n)
{
    unlink(path); /* a fresh file: rewriting in place makes ext4 flush on close */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static aellm_model *load_stories(const char *tok)
{
    aellm_model *m;
    int rc = aellm_model_load(&m, STORIES_BIN, tok);
    if (rc) fail_msg("%s", aellm_error_last());
    return m;
}

/* Every tensor of a model, in a fixed order; returns the count. */
static int tensors(const aellm_model *m, const aellm_tensor **out)
{
    int n = 0;
    out[n++] = &m->tok_embd;
    out[n++] = &m->output_norm;
    out[n++] = &m->output;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const aellm_layer *y = &m->layers[l];
        const aellm_tensor *ts[] = {&y->attn_norm, &y->wq,     &y->wk,   &y->wv,    &y->wo,
                                    &y->ffn_norm,  &y->w_gate, &y->w_up, &y->w_down};
        for (int i = 0; i < 9; i++) out[n++] = ts[i];
    }
    return n;
}

static void assert_same_config(const aellm_model_config *a, const aellm_model_config *b)
{
    assert_int_equal(a->dim, b->dim);
    assert_int_equal(a->hidden_dim, b->hidden_dim);
    assert_int_equal(a->n_layers, b->n_layers);
    assert_int_equal(a->n_heads, b->n_heads);
    assert_int_equal(a->n_kv_heads, b->n_kv_heads);
    assert_int_equal(a->head_dim, b->head_dim);
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_int_equal(a->seq_len, b->seq_len);
    assert_true(a->rope_base == b->rope_base);
    assert_true(a->norm_eps == b->norm_eps);
    assert_int_equal(a->tied_output, b->tied_output);
}

static void assert_same_weights(const aellm_model *a, const aellm_model *b)
{
    const aellm_tensor *ta[512], *tb[512];
    int n = tensors(a, ta);
    assert_int_equal(tensors(b, tb), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ta[i]->type, tb[i]->type);
        assert_int_equal(ta[i]->ne[0], tb[i]->ne[0]);
        assert_int_equal(ta[i]->ne[1], tb[i]->ne[1]);
        assert_int_equal(ta[i]->row_bytes, tb[i]->row_bytes);
        assert_memory_equal(ta[i]->data, tb[i]->data, aellm_tensor_bytes(ta[i]));
    }
}

/* ---- llama2.c checkpoints ---- */

static void test_load_llama2c(void **state)
{
    (void)state;
    aellm_model *m = load_stories(TOK512_BIN);
    const aellm_model_config *c = aellm_model_config_get(m);
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->hidden_dim, 172);
    assert_int_equal(c->n_layers, 5);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->head_dim, 8);
    assert_int_equal(c->vocab_size, 512);
    assert_int_equal(c->seq_len, 512);
    assert_int_equal(c->tied_output, 1);
    assert_true(c->rope_base == 10000.0f && c->norm_eps == 1e-5f);
    assert_int_equal(aellm_model_weight_type(m), AELLM_DTYPE_F32);
    assert_int_equal(aellm_model_n_params(m), 260032);
    assert_int_equal(aellm_model_weight_bytes(m), 260032 * 4);
    assert_ptr_equal(m->output.data, m->tok_embd.data);
    assert_non_null(aellm_model_tokenizer(m));
    assert_int_equal(aellm_tokenizer_vocab_size(aellm_model_tokenizer(m)), 512);
    /* weights point into the file: the embedding follows the 28-byte header,
     * the final norm precedes the two freq_cis tables at the end */
    size_t n;
    uint8_t *file = read_all(STORIES_BIN, &n);
    assert_memory_equal(m->tok_embd.data, file + 28, 512 * 64 * 4);
    assert_memory_equal(m->output_norm.data, file + n - 512 * 8 * 4 - 64 * 4, 64 * 4);
    free(file);
    aellm_model_free(m);
}

/* BabyLlama: the second real model (character vocabulary, context 256). */
#define BABY_BIN AELLM_DATA_DIR "/babyllama/babyllama-1M.bin"
#define BABY_TOK AELLM_DATA_DIR "/babyllama/tok105.bin"

static void test_load_babyllama(void **state)
{
    (void)state;
    if (access(BABY_BIN, R_OK) != 0) skip();
    aellm_model *m = NULL;
    if (aellm_model_load(&m, BABY_BIN, BABY_TOK)) fail_msg("%s", aellm_error_last());
    const aellm_model_config *c = aellm_model_config_get(m);
    assert_int_equal(c->dim, 128);
    assert_int_equal(c->hidden_dim, 352);
    assert_int_equal(c->n_layers, 5);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->head_dim, 16);
    assert_int_equal(c->vocab_size, 105);
    assert_int_equal(c->seq_len, 256);
    assert_int_equal(c->tied_output, 1);
    assert_int_equal(aellm_model_n_params(m), 936448); /* the data folder's README */
    assert_int_equal(aellm_tokenizer_vocab_size(aellm_model_tokenizer(m)), 105);
    /* a character vocabulary: "Once" is BOS, the word-start piece, then a letter each */
    int32_t ids[16];
    size_t n = 0;
    assert_int_equal(aellm_tokenizer_encode(aellm_model_tokenizer(m), "Once", 4, 1, ids, 16, &n),
                     0);
    assert_int_equal(n, 6);
    aellm_model_free(m);
}

/* The bundled default (models/) is the shared data's stories260K, byte for byte. */
static void test_bundled_is_shared(void **state)
{
    (void)state;
    const char *names[] = {"stories260K.bin", "tok512.bin"};
    for (int i = 0; i < 2; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof(a), "%s/models/stories260K/%s", AELLM_SOURCE_DIR, names[i]);
        snprintf(b, sizeof(b), "%s/stories260K/%s", AELLM_DATA_DIR, names[i]);
        size_t na, nb;
        uint8_t *x = read_all(a, &na), *y = read_all(b, &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(x, y, na);
        free(x);
        free(y);
    }
}

static void expect_bad_llama2c(const uint8_t *b, size_t n, const char *what)
{
    const char *path = tmp_path("bad.bin");
    write_all(path, b, n);
    aellm_model *m = (aellm_model *)1;
    int rc = aellm_model_load(&m, path, NULL);
    print_message("%s\n", aellm_error_last());
    assert_int_equal(rc, AELLM_EFORMAT);
    assert_null(m);
    assert_non_null(strstr(aellm_error_last(), path));
    assert_non_null(strstr(aellm_error_last(), what));
}

static void test_bad_llama2c(void **state)
{
    (void)state;
    size_t n;
    uint8_t *file = read_all(STORIES_BIN, &n);
    expect_bad_llama2c(file, n - 4, "file has 1056536 bytes, the llama2.c header implies 1056540");
    expect_bad_llama2c(file, 20, "truncated llama2.c header");
    int32_t h[7];
    memcpy(h, file, sizeof(h));
    h[5] = -512; /* an unshared classifier needs 512 * 64 more floats */
    memcpy(file, h, sizeof(h));
    expect_bad_llama2c(file, n, "implies 1187612");
    h[5] = 512, h[3] = 7; /* 64 is not a multiple of 7 heads */
    memcpy(file, h, sizeof(h));
    expect_bad_llama2c(file, n, "dim 64 is not a multiple of 7 heads");
    h[3] = 8, h[4] = 3; /* 3 kv heads do not divide 8 */
    memcpy(file, h, sizeof(h));
    write_all(tmp_path("kv.bin"), file, n);
    aellm_model *m;
    assert_int_equal(aellm_model_load(&m, tmp_path("kv.bin"), NULL), AELLM_ESHAPE);
    h[4] = 4, h[0] = 0x616b3432; /* llama2.c's versioned export */
    memcpy(file, h, sizeof(h));
    expect_bad_llama2c(file, n, "versioned export");
    free(file);
    assert_int_equal(aellm_model_load(&m, tmp_path("absent.bin"), NULL), AELLM_ENOTFOUND);
}

/* ---- GGUF save and load ---- */

static void test_save_reload(void **state)
{
    (void)state;
    aellm_model *m = load_stories(TOK512_BIN), *r;
    const char *path = tmp_path("stories.gguf");
    for (int type = -1; type <= AELLM_DTYPE_F32; type++) {
        assert_int_equal(aellm_model_save_gguf(m, path, type), 0);
        assert_int_equal(tmp_temporaries("stories.gguf"), 0);
        if (aellm_model_load(&r, path, NULL)) fail_msg("%s", aellm_error_last());
        assert_same_config(aellm_model_config_get(m), aellm_model_config_get(r));
        assert_same_weights(m, r);
        assert_non_null(aellm_model_tokenizer(r));
        assert_int_equal(aellm_tokenizer_vocab_size(aellm_model_tokenizer(r)), 512);
        aellm_model_free(r);
    }
    /* llama.cpp's metadata */
    aellm_gguf *g;
    uint32_t v;
    const char *s;
    assert_int_equal(aellm_gguf_open(&g, path), 0);
    assert_int_equal(aellm_gguf_get_str(g, "general.architecture", &s), 0);
    assert_string_equal(s, "llama");
    assert_int_equal(aellm_gguf_get_u32(g, "general.file_type", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(aellm_gguf_get_u32(g, "llama.vocab_size", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(aellm_gguf_get_u32(g, "llama.rope.dimension_count", &v), 0);
    assert_int_equal(v, 8);
    assert_null(aellm_gguf_find_tensor(g, "output.weight")); /* tied */
    assert_int_equal(aellm_gguf_tensor_count(g), 2 + 9 * 5);
    aellm_gguf_free(g);
    aellm_model_free(m);
}

/* f16: every 2-D weight converted, the norms kept f32. */
static void test_save_f16(void **state)
{
    (void)state;
    aellm_model *m = load_stories(NULL), *r;
    const char *path = tmp_path("stories_f16.gguf");
    assert_int_equal(aellm_model_save_gguf(m, path, AELLM_DTYPE_F16), 0);
    if (aellm_model_load(&r, path, NULL)) fail_msg("%s", aellm_error_last());
    assert_null(aellm_model_tokenizer(r));
    assert_int_equal(aellm_model_weight_type(r), AELLM_DTYPE_F16);
    const aellm_tensor *ta[64], *tb[64];
    int n = tensors(m, ta);
    tensors(r, tb);
    for (int i = 0; i < n; i++) {
        const float *x = ta[i]->data;
        int64_t count = ta[i]->ne[0] * ta[i]->ne[1];
        if (ta[i]->ne[1] == 1) {
            assert_int_equal(tb[i]->type, AELLM_DTYPE_F32);
            assert_memory_equal(tb[i]->data, x, (size_t)count * 4);
            continue;
        }
        assert_int_equal(tb[i]->type, AELLM_DTYPE_F16);
        const uint16_t *h = tb[i]->data;
        for (int64_t j = 0; j < count; j++) assert_int_equal(h[j], aellm_f32_to_f16(x[j]));
    }
    assert_int_equal(aellm_model_weight_bytes(r), 4 * (64 * 11) + 2 * (260032 - 64 * 11));
    aellm_model_free(r);
    aellm_model_free(m);
}

/* The 260K model's FFN down rows (172) do not fit q8_0's blocks of 32. */
static void test_save_bad_block(void **state)
{
    (void)state;
    aellm_model *m = load_stories(NULL);
    const char *path = tmp_path("stories_q8.gguf");
    assert_int_equal(aellm_model_save_gguf(m, path, AELLM_DTYPE_Q8_0), AELLM_ESHAPE);
    assert_non_null(strstr(aellm_error_last(), "blk.0.ffn_down.weight"));
    assert_non_null(strstr(aellm_error_last(), path));
    assert_false(exists(path));
    assert_int_equal(tmp_temporaries("stories_q8.gguf"), 0);
    assert_int_equal(aellm_model_save_gguf(m, path, 99), AELLM_EINVAL);
    aellm_model_free(m);
}

/* A GGUF file of model m, written tensor by tensor with variations. */
typedef struct {
    const char *arch;
    const char *drop_key;
    int norms_f16;
    int short_wq; /* blk.0.attn_q.weight with half its rows */
} variant;

static void write_variant(const aellm_model *m, const char *path, const variant *o)
{
    static const char *const names[] = {"attn_norm", "attn_q",   "attn_k", "attn_v",  "attn_output",
                                        "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
    const aellm_model_config *c = &m->cfg;
    aellm_gguf_writer *w;
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    aellm_gguf_set_str(w, "general.architecture", o->arch ? o->arch : "llama");
    const struct {
        const char *key;
        int v;
    } ints[] = {{"llama.context_length", c->seq_len},
                {"llama.embedding_length", c->dim},
                {"llama.block_count", c->n_layers},
                {"llama.feed_forward_length", c->hidden_dim},
                {"llama.attention.head_count", c->n_heads},
                {"llama.attention.head_count_kv", c->n_kv_heads}};
    for (size_t i = 0; i < 6; i++)
        if (!o->drop_key || strcmp(o->drop_key, ints[i].key) != 0)
            aellm_gguf_set_u32(w, ints[i].key, (uint32_t)ints[i].v);
    const aellm_tensor *ts[64];
    int n = tensors(m, ts);
    uint16_t *halves = malloc(64 * 11 * sizeof(uint16_t)), *h = halves;
    char name[64];
    for (int i = 0; i < n; i++) {
        if (i == 2) continue; /* tied output */
        if (i < 2)
            snprintf(name, sizeof(name), i ? "output_norm.weight" : "token_embd.weight");
        else
            snprintf(name, sizeof(name), "blk.%d.%s.weight", (i - 3) / 9, names[(i - 3) % 9]);
        int64_t ne[2] = {ts[i]->ne[0], ts[i]->ne[1]};
        const void *data = ts[i]->data;
        int type = ts[i]->type;
        if (o->short_wq && i == 4) ne[1] /= 2;
        if (o->norms_f16 && ne[1] == 1) {
            for (int j = 0; j < 64; j++) h[j] = aellm_f32_to_f16(((const float *)data)[j]);
            data = h, type = AELLM_DTYPE_F16, h += 64;
        }
        assert_int_equal(aellm_gguf_add_tensor(w, name, type, ne[1] == 1 ? 1 : 2, ne, data), 0);
    }
    assert_int_equal(aellm_gguf_writer_write(w, path), 0);
    aellm_gguf_writer_free(w);
    free(halves);
}

static void test_gguf_variants(void **state)
{
    (void)state;
    aellm_model *m = load_stories(NULL), *r = NULL;
    const char *path = tmp_path("variant.gguf");
    /* norms stored as f16 are converted to f32 at load */
    write_variant(m, path, &(variant){.norms_f16 = 1});
    if (aellm_model_load(&r, path, NULL)) fail_msg("%s", aellm_error_last());
    assert_int_equal(r->layers[3].ffn_norm.type, AELLM_DTYPE_F32);
    const float *a = m->layers[3].ffn_norm.data, *b = r->layers[3].ffn_norm.data;
    for (int j = 0; j < 64; j++) assert_true(b[j] == aellm_f16_to_f32(aellm_f32_to_f16(a[j])));
    assert_same_config(&m->cfg, &r->cfg); /* defaults: rope 10000, eps 1e-5 */
    assert_memory_equal(r->layers[4].w_down.data, m->layers[4].w_down.data, 64 * 172 * 4);
    aellm_model_free(r);

    write_variant(m, path, &(variant){.arch = "gpt2"});
    assert_int_equal(aellm_model_load(&r, path, NULL), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "architecture 'gpt2' is not supported"));
    write_variant(m, path, &(variant){.drop_key = "llama.block_count"});
    assert_int_equal(aellm_model_load(&r, path, NULL), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "missing key 'llama.block_count'"));
    write_variant(m, path, &(variant){.short_wq = 1});
    assert_int_equal(aellm_model_load(&r, path, NULL), AELLM_ESHAPE);
    assert_non_null(strstr(aellm_error_last(), "tensor 'blk.0.attn_q.weight' has shape [64, 32, "
                                               "1, 1], the config implies [64, 64]"));
    assert_non_null(strstr(aellm_error_last(), path));
    assert_null(r);
    aellm_model_free(m);
}

/* ---- random models ---- */

static void test_shapes(void **state)
{
    (void)state;
    aellm_model_config c;
    assert_int_equal(aellm_model_shape(&c, "1.1B"), 0);
    assert_int_equal(c.dim, 2048);
    assert_int_equal(c.hidden_dim, 5632);
    assert_int_equal(c.n_layers, 22);
    assert_int_equal(c.n_heads, 32);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.vocab_size, 32000);
    assert_int_equal(c.seq_len, 2048);
    assert_int_equal(aellm_model_shape(&c, "15M"), 0);
    assert_int_equal(c.dim, 288);
    assert_int_equal(aellm_model_shape(&c, "110M"), 0);
    assert_int_equal(c.n_layers, 12);
    assert_int_equal(aellm_model_shape(&c, "7B"), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "260K, 15M, 110M, 1.1B"));
}

/* Bytes by hand: a row of 64 is 2 blocks (q8_0 34 B, q4_0 18 B); FFN down
 * rows of 172 fit no block and fall back to f16 (llama.cpp's fallback). Per
 * layer: q, o 64 rows; k, v 32; gate, up 172; down 64 rows of 344 B; two
 * f32 norms. Plus embedding and (untied) output, 512 rows, and a norm. */
static void test_random_sizes(void **state)
{
    (void)state;
    aellm_model_config c;
    aellm_model *m;
    assert_int_equal(aellm_model_shape(&c, "260K"), 0);
    const size_t q8 =
        5 * ((64 + 32 + 32 + 64 + 172 + 172) * 68 + 64 * 344 + 512) + 2 * 512 * 68 + 256;
    const size_t q4 =
        5 * ((64 + 32 + 32 + 64 + 172 + 172) * 36 + 64 * 344 + 512) + 2 * 512 * 36 + 256;
    assert_int_equal(q8, 364768);
    assert_int_equal(aellm_model_random(&m, &c, AELLM_DTYPE_Q8_0, 1), 0);
    assert_int_equal(aellm_model_weight_bytes(m), q8);
    assert_int_equal(aellm_model_weight_type(m), AELLM_DTYPE_Q8_0);
    assert_int_equal(m->layers[0].w_down.type, AELLM_DTYPE_F16);
    assert_int_equal(aellm_model_n_params(m), 260032 + 512 * 64);
    assert_int_equal(m->cfg.tied_output, 0);
    assert_null(aellm_model_tokenizer(m));
    aellm_model_free(m);
    assert_int_equal(aellm_model_random(&m, &c, AELLM_DTYPE_Q4_0, 1), 0);
    assert_int_equal(aellm_model_weight_bytes(m), q4);
    aellm_model_free(m);
    assert_int_equal(aellm_model_random(&m, &c, 77, 1), AELLM_EINVAL);
    c.n_kv_heads = 3;
    assert_int_equal(aellm_model_random(&m, &c, AELLM_DTYPE_F32, 1), AELLM_ESHAPE);
}

/* N(0, 0.02) weights and unit norms; the same seed gives the same bytes
 * whatever the thread count, another seed other bytes. */
static void test_random_values(void **state)
{
    (void)state;
    aellm_model_config c;
    aellm_model *a, *b, *d;
    assert_int_equal(aellm_model_shape(&c, "15M"), 0);
    omp_set_num_threads(1);
    assert_int_equal(aellm_model_random(&a, &c, AELLM_DTYPE_F32, 42), 0);
    omp_set_num_threads(3);
    assert_int_equal(aellm_model_random(&b, &c, AELLM_DTYPE_F32, 42), 0);
    assert_int_equal(aellm_model_random(&d, &c, AELLM_DTYPE_F32, 43), 0);
    assert_same_weights(a, b);
    assert_memory_not_equal(a->layers[0].wq.data, d->layers[0].wq.data, 288 * 4);
    const float *x = a->layers[2].w_gate.data, *norm = a->layers[5].attn_norm.data;
    double s = 0, s2 = 0;
    const int64_t n = 288 * 768;
    for (int64_t i = 0; i < n; i++) s += x[i], s2 += (double)x[i] * x[i];
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    assert_true(fabs(mean) < 2e-4);
    assert_true(fabs(sd - 0.02) < 2e-4);
    for (int i = 0; i < 288; i++) assert_true(norm[i] == 1.0f);
    aellm_model_free(a);
    aellm_model_free(b);
    aellm_model_free(d);
}

static void test_random_save_reload(void **state)
{
    (void)state;
    aellm_model_config c;
    aellm_model *m, *r;
    assert_int_equal(aellm_model_shape(&c, "260K"), 0);
    assert_int_equal(aellm_model_random(&m, &c, AELLM_DTYPE_Q4_0, 7), 0);
    const char *path = tmp_path("random.gguf");
    assert_int_equal(aellm_model_save_gguf(m, path, -1), 0);
    if (aellm_model_load(&r, path, NULL)) fail_msg("%s", aellm_error_last());
    assert_same_config(&m->cfg, &r->cfg);
    assert_same_weights(m, r);
    assert_int_equal(aellm_model_weight_bytes(r), aellm_model_weight_bytes(m));
    aellm_model_free(r);
    aellm_model_free(m);
    aellm_model_free(NULL);
}

int main(void)
{
    const struct CMUnitTest random_tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_random_sizes),
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_random_save_reload),
    };
    if (access(STORIES_BIN, R_OK) != 0 || access(TOK512_BIN, R_OK) != 0) {
        printf("skip: %s or %s not found; running the random-model tests only\n", STORIES_BIN,
               TOK512_BIN);
        int rc = cmocka_run_group_tests(random_tests, tmpdir_setup, tmpdir_teardown);
        return rc ? rc : 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_llama2c),   cmocka_unit_test(test_bad_llama2c),
        cmocka_unit_test(test_load_babyllama), cmocka_unit_test(test_bundled_is_shared),
        cmocka_unit_test(test_save_reload),    cmocka_unit_test(test_save_f16),
        cmocka_unit_test(test_save_bad_block), cmocka_unit_test(test_gguf_variants),
        cmocka_unit_test(test_shapes),         cmocka_unit_test(test_random_sizes),
        cmocka_unit_test(test_random_values),  cmocka_unit_test(test_random_save_reload),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
