/* Random-weight models of real shapes, for speed and memory work: weights
 * N(0, 0.02), norms 1, in one owned block, deterministic for a seed whatever
 * the thread count. Not a trained model, and (for now) without a tokenizer. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

static const struct {
    const char *name;
    aellm_model_config cfg;
} shapes[] = {
    /* llama2.c's TinyStories models */
    {"260K", {64, 172, 5, 8, 4, 8, 512, 512, 10000.0f, 1e-5f, 0, 0, 0, 0, 0}},
    {"15M", {288, 768, 6, 6, 6, 48, 32000, 256, 10000.0f, 1e-5f, 0, 0, 0, 0, 0}},
    {"110M", {768, 2048, 12, 12, 12, 64, 32000, 1024, 10000.0f, 1e-5f, 0, 0, 0, 0, 0}},
    /* TinyLlama 1.1B */
    {"1.1B", {2048, 5632, 22, 32, 4, 64, 32000, 2048, 10000.0f, 1e-5f, 0, 0, 0, 0, 0}},
    /* The AE-LLM paper's models, from their published configurations (the
       FFN width is one branch of SwiGLU: Qwen's intermediate_size halved);
       for predictions (aellm predict), far too large to build here */
    {"Llama-2-7B", {4096, 11008, 32, 32, 32, 128, 32000, 4096, 1e4f, 1e-5f, 0, 0, 0, 0, 0}},
    {"Llama-2-13B", {5120, 13824, 40, 40, 40, 128, 32000, 4096, 1e4f, 1e-5f, 0, 0, 0, 0, 0}},
    {"Llama-2-70B", {8192, 28672, 80, 64, 8, 128, 32000, 4096, 1e4f, 1e-5f, 0, 0, 0, 0, 0}},
    {"Mistral-7B", {4096, 14336, 32, 32, 8, 128, 32000, 32768, 1e4f, 1e-5f, 0, 0, 0, 0, 0}},
    {"Llama-3-8B", {4096, 14336, 32, 32, 8, 128, 128256, 8192, 5e5f, 1e-5f, 0, 0, 0, 0, 0}},
    {"Mixtral-8x7B", {4096, 14336, 32, 32, 8, 128, 32000, 32768, 1e6f, 1e-5f, 0, 8, 2, 0, 0}},
    {"Qwen-1.8B", {2048, 5504, 24, 16, 16, 128, 151936, 8192, 1e4f, 1e-6f, 0, 0, 0, 0, 0}},
    {"Qwen-7B", {4096, 11008, 32, 32, 32, 128, 151936, 8192, 1e4f, 1e-6f, 0, 0, 0, 0, 0}},
    {"Qwen-72B", {8192, 24576, 80, 64, 64, 128, 152064, 32768, 1e6f, 1e-6f, 0, 0, 0, 0, 0}},
};

#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

int aellm_model_shape(aellm_model_config *out, const char *name)
{
    for (size_t i = 0; i < N_SHAPES; i++) {
        if (strcmp(shapes[i].name, name) != 0) continue;
        *out = shapes[i].cfg;
        return 0;
    }
    char known[512] = "";
    for (size_t i = 0; i < N_SHAPES; i++)
        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                 shapes[i].name);
    return aellm_error_set(AELLM_EINVAL, "unknown model shape '%s' (known: %s)", name, known);
}

/* One tensor to fill: where it goes in the model, its shape and type. */
typedef struct {
    aellm_tensor *t;
    int64_t ne0, ne1;
    int type;
    size_t offset; /* in the owned block, 64-byte aligned */
} fill_item;

/* A weight that does not fit the block of `type` falls back to f16, as
 * llama.cpp's quantizer does (e.g. the 260K model's FFN down rows of 172). */
static void add_item(fill_item *it, size_t *n, aellm_tensor *t, int64_t ne0, int64_t ne1, int type)
{
    if (ne1 == 1)
        type = AELLM_DTYPE_F32;
    else if (aellm_dtype_row_size(type, ne0) == 0)
        type = AELLM_DTYPE_F16;
    it[*n] = (fill_item){.t = t, .ne0 = ne0, .ne1 = ne1, .type = type};
    (*n)++;
}

static void list_items(aellm_model *m, int type, fill_item *it, size_t *n)
{
    const aellm_model_config *c = &m->cfg;
    const int64_t d = c->dim, h = c->hidden_dim, v = c->vocab_size;
    const int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    const int64_t E = c->n_experts ? c->n_experts : 1; /* experts stacked, as model.h says */
    *n = 0;
    add_item(it, n, &m->tok_embd, d, v, type);
    add_item(it, n, &m->output_norm, d, 1, type);
    add_item(it, n, &m->output, d, v, type);
    for (int l = 0; l < c->n_layers; l++) {
        aellm_layer *y = &m->layers[l];
        add_item(it, n, &y->attn_norm, d, 1, type);
        add_item(it, n, &y->wq, d, q, type);
        add_item(it, n, &y->wk, d, kv, type);
        add_item(it, n, &y->wv, d, kv, type);
        add_item(it, n, &y->wo, q, d, type);
        add_item(it, n, &y->ffn_norm, d, 1, type);
        add_item(it, n, &y->w_gate, d, E * h, type);
        add_item(it, n, &y->w_up, d, E * h, type);
        add_item(it, n, &y->w_down, h, E * d, type);
        if (c->n_experts) { /* the router is used as f32 */
            add_item(it, n, &y->ffn_gate_inp, d, E, type);
            it[*n - 1].type = AELLM_DTYPE_F32;
        }
    }
}

/* splitmix64's finaliser: decorrelates the seeds of neighbouring rows. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* n values of N(0, sigma), two per draw by Marsaglia's polar method (no
 * trigonometry: about a third faster than Box-Muller here). */
static void normal_row(aellm_rng *r, float *x, int64_t n, float sigma)
{
    for (int64_t i = 0; i < n; i += 2) {
        float u, v, s;
        do {
            u = 2.0f * aellm_rng_f32(r) - 1.0f;
            v = 2.0f * aellm_rng_f32(r) - 1.0f;
            s = u * u + v * v;
        } while (s >= 1.0f || s == 0.0f);
        float f = sigma * sqrtf(-2.0f * logf(s) / s);
        x[i] = u * f;
        if (i + 1 < n) x[i + 1] = v * f;
    }
}

/* Every row gets its own generator, seeded from (seed, tensor, row), so the
 * result does not depend on how rows are split across threads. */
static void fill_rows(const fill_item *it, size_t k, uint8_t *block, uint64_t seed, float *row)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(it->type);
    const size_t row_bytes = aellm_dtype_row_size(it->type, it->ne0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < it->ne1; r++) {
        aellm_rng rng;
        aellm_rng_seed(&rng, mix(seed ^ mix(((uint64_t)k << 40) ^ (uint64_t)r)));
        if (it->ne1 == 1)
            for (int64_t i = 0; i < it->ne0; i++) row[i] = 1.0f;
        else
            normal_row(&rng, row, it->ne0, 0.02f);
        tr->from_float(row, block + it->offset + (size_t)r * row_bytes, it->ne0);
    }
}

static int fill_all(const fill_item *it, size_t n, uint8_t *block, uint64_t seed, int64_t max_ne0)
{
    int failed = 0;
#pragma omp parallel
    {
        float *row = malloc((size_t)max_ne0 * sizeof(float));
        int ok = row != NULL;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        /* every thread sees the same `failed` here, so all skip or all run
         * the worksharing loops, as OpenMP requires */
        for (size_t k = 0; k < n && !failed; k++) fill_rows(&it[k], k, block, seed, row);
        free(row);
    }
    return failed ? aellm_error_oom("a row of random weights", (size_t)max_ne0 * 4) : 0;
}

/* Lays the tensors out in one block and points the model at it. */
static int place(aellm_model *m, fill_item *it, size_t n, size_t *total, int64_t *max_ne0)
{
    size_t off = 0;
    *max_ne0 = 0;
    for (size_t k = 0; k < n; k++) {
        size_t bytes = aellm_dtype_row_size(it[k].type, it[k].ne0) * (size_t)it[k].ne1;
        it[k].offset = off;
        if (bytes > SIZE_MAX - off - 64)
            return aellm_error_set(AELLM_ENOMEM, "random model: weights exceed the address space");
        off += (bytes + 63) & ~(size_t)63;
        if (it[k].ne0 > *max_ne0) *max_ne0 = it[k].ne0;
    }
    *total = off;
    m->owned = aellm_mem_alloc(off, AELLM_MEM_WEIGHTS);
    if (!m->owned) return aellm_error_oom("random model weights", off);
    for (size_t k = 0; k < n; k++)
        aellm_tensor_set(it[k].t, it[k].type, it[k].ne0, it[k].ne1,
                         (uint8_t *)m->owned + it[k].offset);
    return 0;
}

int aellm_model_shape_only(aellm_model **out, const aellm_model_config *cfg, int type,
                           int base_type)
{
    *out = NULL;
    aellm_model *m = NULL;
    int rc = aellm_model_alloc(&m, cfg);
    fill_item *items = rc ? NULL : malloc((3 + 10 * (size_t)cfg->n_layers) * sizeof(*items));
    if (!rc && !items) rc = aellm_error_oom("the tensor list", 0);
    if (rc) {
        aellm_model_free(m);
        return rc;
    }
    size_t n = 0;
    list_items(m, type, items, &n);
    items[0].type = items[2].type = base_type; /* the embedding and the output matrix */
    for (size_t k = 0; k < n; k++)
        aellm_tensor_set(items[k].t, items[k].type, items[k].ne0, items[k].ne1, NULL);
    free(items);
    *out = m;
    return 0;
}

int aellm_model_random(aellm_model **out, const aellm_model_config *cfg_in, int type, uint64_t seed)
{
    *out = NULL;
    if (!aellm_dtype_traits_get(type))
        return aellm_error_set(AELLM_EINVAL, "random model: unknown weight type %d", type);
    aellm_model_config cfg = *cfg_in;
    if (cfg.head_dim == 0 && cfg.n_heads > 0) cfg.head_dim = cfg.dim / cfg.n_heads;
    cfg.tied_output = 0;
    int rc = aellm_model_config_check(&cfg, "random model");
    aellm_model *m = NULL;
    fill_item *items = NULL;
    size_t n = 0, total = 0;
    int64_t max_ne0 = 0;
    if (!rc) rc = aellm_model_alloc(&m, &cfg);
    if (rc) goto done;
    items = malloc((3 + 10 * (size_t)cfg.n_layers) * sizeof(*items));
    if (!items) {
        rc = aellm_error_oom("the tensor list", 0);
        goto done;
    }
    list_items(m, type, items, &n);
    if (!(rc = place(m, items, n, &total, &max_ne0)))
        rc = fill_all(items, n, m->owned, seed, max_ne0);
    if (rc) goto done;
    *out = m;
    m = NULL;
done:
    free(items);
    aellm_model_free(m);
    return rc;
}
