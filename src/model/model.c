/* The Llama model: loading GGUF files (llama.cpp's names and metadata),
 * saving them, and the shared constructors, checks and accessors. The
 * llama2.c checkpoint reader is llama2c.c; random models are random_model.c. */
#include "model/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"

/* ---- construction, checks, accessors ---- */

int aellm_model_alloc(aellm_model **out, const aellm_model_config *cfg)
{
    *out = NULL;
    aellm_model *m = calloc(1, sizeof(*m));
    if (!m) return aellm_error_oom("a model", sizeof(*m));
    m->cfg = *cfg;
    m->layers = calloc((size_t)cfg->n_layers, sizeof(*m->layers));
    if (!m->layers) {
        free(m);
        return aellm_error_oom("the model's layers", (size_t)cfg->n_layers * sizeof(aellm_layer));
    }
    *out = m;
    return 0;
}

void aellm_tensor_set(aellm_tensor *t, int type, int64_t ne0, int64_t ne1, const void *data)
{
    t->type = type;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->row_bytes = aellm_dtype_row_size(type, ne0);
    t->data = data;
}

/* Caps keep every product of sizes (weights of a layer, a whole llama2.c
 * file) far inside int64; they are well above any real Llama shape. */
int aellm_model_config_check(const aellm_model_config *c, const char *what)
{
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return aellm_error_set(AELLM_ESHAPE,
                               "%s: config has a size <= 0 (dim %d, hidden %d, layers %d, heads "
                               "%d/%d, head_dim %d, vocab %d, context %d)",
                               what, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                               c->head_dim, c->vocab_size, c->seq_len);
    const struct {
        const char *name;
        int value, limit;
    } caps[] = {{"dim", c->dim, 1 << 20},        {"hidden_dim", c->hidden_dim, 1 << 20},
                {"layers", c->n_layers, 4096},   {"heads", c->n_heads, 4096},
                {"head_dim", c->head_dim, 4096}, {"vocabulary", c->vocab_size, 1 << 24},
                {"context", c->seq_len, 1 << 24}};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (caps[i].value > caps[i].limit)
            return aellm_error_set(AELLM_ESHAPE, "%s: %s of %d is over the limit of %d", what,
                                   caps[i].name, caps[i].value, caps[i].limit);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return aellm_error_set(AELLM_ESHAPE, "%s: %d kv heads do not divide %d heads", what,
                               c->n_kv_heads, c->n_heads);
    if (c->head_dim % 2 != 0)
        return aellm_error_set(AELLM_ESHAPE, "%s: head_dim %d is odd (RoPE rotates pairs)", what,
                               c->head_dim);
    if (c->n_experts < 0 || c->n_experts > 256 ||
        (c->n_experts == 0 ? c->n_experts_used != 0
                           : c->n_experts_used < 1 || c->n_experts_used > c->n_experts))
        return aellm_error_set(AELLM_ESHAPE,
                               "%s: %d experts with %d used per token (want 1 <= used <= experts "
                               "<= 256, or both 0)",
                               what, c->n_experts, c->n_experts_used);
    if (c->mla_rank < 0 || c->mla_rank > (1 << 16) ||
        (c->mla_rank > 0 &&
         (c->mla_rope_dim < 2 || c->mla_rope_dim > c->head_dim || c->mla_rope_dim % 2)))
        return aellm_error_set(AELLM_ESHAPE,
                               "%s: latent attention of rank %d with %d rotary dims (want rank in "
                               "[1, 65536], rotary dims even and in [2, head_dim %d])",
                               what, c->mla_rank, c->mla_rope_dim, c->head_dim);
    if (!(c->rope_base > 0.0f) || !isfinite(c->rope_base) || !(c->norm_eps >= 0.0f) ||
        !isfinite(c->norm_eps))
        return aellm_error_set(AELLM_ESHAPE, "%s: bad rope base %g or norm epsilon %g", what,
                               c->rope_base, c->norm_eps);
    return 0;
}

void aellm_model_free(aellm_model *m)
{
    if (!m) return;
    aellm_tokenizer_free(m->tokenizer);
    aellm_gguf_free(m->gguf);
    if (m->map) munmap(m->map, m->map_size);
    aellm_mem_free(m->owned);
    for (int i = 0; i < m->n_extra; i++) aellm_mem_free(m->extra[i]);
    aellm_mem_account(AELLM_MEM_WEIGHTS, -(long long)m->mapped_bytes);
    free(m->extra);
    free(m->quantize_json);
    free(m->config_json);
    free(m->figures_json);
    free(m->layers);
    free(m);
}

void *aellm_model_own(aellm_model *m, size_t bytes)
{
    void **list = realloc(m->extra, (size_t)(m->n_extra + 1) * sizeof(*list));
    if (!list) return aellm_error_oom("a model's block list", 0), NULL;
    m->extra = list;
    void *p = aellm_mem_alloc(bytes, AELLM_MEM_WEIGHTS);
    if (!p) return aellm_error_oom("a model transform", bytes), NULL;
    m->extra[m->n_extra++] = p;
    return p;
}

const aellm_model_config *aellm_model_config_get(const aellm_model *m)
{
    return &m->cfg;
}
const aellm_tokenizer *aellm_model_tokenizer(const aellm_model *m)
{
    return m->tokenizer;
}
const char *aellm_model_quantize_info(const aellm_model *m)
{
    return m->quantize_json;
}
static int replace_str(char **dst, const char *src, const char *what)
{
    if (!src) return 0;
    char *d = strdup(src);
    if (!d) return aellm_error_oom(what, strlen(src));
    free(*dst);
    *dst = d;
    return 0;
}

int aellm_model_set_provenance(aellm_model *m, const char *config_json, const char *figures_json)
{
    int rc = replace_str(&m->config_json, config_json, "aellm.config");
    return rc ? rc : replace_str(&m->figures_json, figures_json, "aellm.figures");
}

const char *aellm_model_config_json(const aellm_model *m)
{
    return m->config_json;
}

const char *aellm_model_figures_json(const aellm_model *m)
{
    return m->figures_json;
}

int aellm_model_weight_type(const aellm_model *m)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(m->layers[0].wq.type);
    return tr && tr->interleave ? tr->base : m->layers[0].wq.type;
}

/* Calls fn on every distinct tensor (the output only when not tied). */
static void each_tensor(const aellm_model *m, void (*fn)(const aellm_tensor *, void *), void *ctx)
{
    fn(&m->tok_embd, ctx);
    fn(&m->output_norm, ctx);
    if (!m->cfg.tied_output) fn(&m->output, ctx);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const aellm_layer *y = &m->layers[l];
        const aellm_tensor *ts[] = {&y->attn_norm, &y->wq,     &y->wk,   &y->wv,    &y->wo,
                                    &y->ffn_norm,  &y->w_gate, &y->w_up, &y->w_down};
        for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
            if (ts[i]->data) fn(ts[i], ctx); /* wv is unset with latent attention */
        if (m->cfg.n_experts) fn(&y->ffn_gate_inp, ctx);
        if (m->cfg.mla_rank) {
            fn(&y->w_dkv, ctx);
            fn(&y->w_uk, ctx);
            fn(&y->w_uv, ctx);
            fn(&y->rope_pairs, ctx);
        }
    }
}

static void add_bytes(const aellm_tensor *t, void *ctx)
{
    *(size_t *)ctx += aellm_tensor_bytes(t);
}
static void add_params(const aellm_tensor *t, void *ctx)
{
    *(int64_t *)ctx += t->ne[0] * t->ne[1];
}

size_t aellm_model_weight_bytes(const aellm_model *m)
{
    size_t n = 0;
    each_tensor(m, add_bytes, &n);
    return n;
}

int64_t aellm_model_n_params(const aellm_model *m)
{
    int64_t n = 0;
    each_tensor(m, add_params, &n);
    return n;
}

/* The share of a layer's expert matrices a token uses. */
static double expert_share(const aellm_model_config *c)
{
    return c->n_experts ? (double)c->n_experts_used / c->n_experts : 1.0;
}

/* What a decoded token reads: one embedding row, the rest whole except the
 * experts it is not routed to. bytes = 0 counts parameters, 1 bytes. */
static double active(const aellm_model *m, int bytes)
{
    const aellm_model_config *c = &m->cfg;
    double n = bytes ? m->tok_embd.row_bytes : (double)m->tok_embd.ne[0];
#define SIZE(t) (bytes ? (double)aellm_tensor_bytes(t) : (double)(t)->ne[0] * (double)(t)->ne[1])
    n += SIZE(&m->output_norm) + SIZE(&m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const aellm_layer *y = &m->layers[l];
        n += SIZE(&y->attn_norm) + SIZE(&y->wq) + SIZE(&y->wk) + SIZE(&y->wo) + SIZE(&y->ffn_norm);
        n += c->mla_rank ? SIZE(&y->w_dkv) + SIZE(&y->w_uk) + SIZE(&y->w_uv) : SIZE(&y->wv);
        n += expert_share(c) * (SIZE(&y->w_gate) + SIZE(&y->w_up) + SIZE(&y->w_down));
        if (c->n_experts) n += SIZE(&y->ffn_gate_inp);
    }
#undef SIZE
    return n;
}

void aellm_model_ffn_bytes(const aellm_model *m, size_t *per_token, size_t *all)
{
    double read = 0, total = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const aellm_layer *y = &m->layers[l];
        double b = (double)(aellm_tensor_bytes(&y->w_gate) + aellm_tensor_bytes(&y->w_up) +
                            aellm_tensor_bytes(&y->w_down));
        total += b;
        read += expert_share(&m->cfg) * b;
        if (m->cfg.n_experts) read += (double)aellm_tensor_bytes(&y->ffn_gate_inp);
    }
    *per_token = (size_t)llround(read);
    *all = (size_t)llround(total);
}

int64_t aellm_model_active_params(const aellm_model *m)
{
    return (int64_t)llround(active(m, 0));
}

size_t aellm_model_active_bytes(const aellm_model *m)
{
    return (size_t)llround(active(m, 1));
}

/* ---- GGUF loading ---- */

/* An integer key; def < 0 means required. */
static int get_int(const aellm_gguf *g, const char *key, int def, int *out)
{
    uint32_t v;
    int rc = aellm_gguf_get_u32(g, key, &v);
    if (rc == AELLM_ENOTFOUND && def >= 0) {
        *out = def;
        return 0;
    }
    if (rc == AELLM_ENOTFOUND)
        return aellm_error_set(AELLM_EFORMAT, "%s: missing key '%s'", aellm_gguf_path(g), key);
    if (rc) return rc;
    if (v > INT32_MAX)
        return aellm_error_set(AELLM_EFORMAT, "%s: key '%s' = %u is too large", aellm_gguf_path(g),
                               key, v);
    *out = (int)v;
    return 0;
}

static int get_float(const aellm_gguf *g, const char *key, float def, float *out)
{
    int rc = aellm_gguf_get_f32(g, key, out);
    if (rc == AELLM_ENOTFOUND) *out = def, rc = 0;
    return rc;
}

static int check_arch(const aellm_gguf *g)
{
    const char *arch;
    int rc = aellm_gguf_get_str(g, "general.architecture", &arch);
    if (rc == AELLM_ENOTFOUND)
        return aellm_error_set(AELLM_EFORMAT, "%s: missing key 'general.architecture'",
                               aellm_gguf_path(g));
    if (rc) return rc;
    if (strcmp(arch, "llama") != 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: architecture '%s' is not supported (only llama)",
                               aellm_gguf_path(g), arch);
    return 0;
}

/* head_dim is llama.rope.dimension_count (default dim / heads); a file whose
 * attention.key_length differs would need partial RoPE, which is not done. */
static int read_head_dim(const aellm_gguf *g, aellm_model_config *c)
{
    int def = c->n_heads > 0 && c->dim % c->n_heads == 0 ? c->dim / c->n_heads : 0, key_len;
    int rc = get_int(g, "llama.rope.dimension_count", def, &c->head_dim);
    if (!rc) rc = get_int(g, "llama.attention.key_length", c->head_dim, &key_len);
    if (!rc && key_len != c->head_dim)
        rc = aellm_error_set(AELLM_EFORMAT,
                             "%s: rope dimension %d differs from key length %d (partial RoPE is "
                             "not supported)",
                             aellm_gguf_path(g), c->head_dim, key_len);
    return rc;
}

static int read_config(const aellm_gguf *g, aellm_model_config *c)
{
    memset(c, 0, sizeof(*c));
    int rc = check_arch(g);
    if (!rc) rc = get_int(g, "llama.context_length", -1, &c->seq_len);
    if (!rc) rc = get_int(g, "llama.embedding_length", -1, &c->dim);
    if (!rc) rc = get_int(g, "llama.block_count", -1, &c->n_layers);
    if (!rc) rc = get_int(g, "llama.feed_forward_length", -1, &c->hidden_dim);
    if (!rc) rc = get_int(g, "llama.attention.head_count", -1, &c->n_heads);
    if (!rc) rc = get_int(g, "llama.attention.head_count_kv", c->n_heads, &c->n_kv_heads);
    if (!rc) rc = get_int(g, "aellm.mla.kv_rank", 0, &c->mla_rank);
    if (!rc) rc = get_int(g, "aellm.mla.rope_dim", 0, &c->mla_rope_dim);
    if (!rc) rc = get_int(g, "llama.expert_count", 0, &c->n_experts);
    if (!rc) rc = get_int(g, "llama.expert_used_count", 0, &c->n_experts_used);
    if (!rc && c->n_experts == 1 && c->n_experts_used == 0) c->n_experts_used = 1;
    if (!rc) rc = get_float(g, "llama.rope.freq_base", 10000.0f, &c->rope_base);
    if (!rc) rc = get_float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps);
    if (!rc) rc = read_head_dim(g, c);
    if (rc) return rc;
    const aellm_gguf_tensor_info *te = aellm_gguf_find_tensor(g, "token_embd.weight");
    if (!te)
        return aellm_error_set(AELLM_EFORMAT, "%s: missing tensor 'token_embd.weight'",
                               aellm_gguf_path(g));
    c->vocab_size = te->ne[1] > INT32_MAX ? -1 : (int)te->ne[1];
    c->tied_output = aellm_gguf_find_tensor(g, "output.weight") == NULL;
    return aellm_model_config_check(c, aellm_gguf_path(g));
}

/* Points t at tensor `name`, whose shape must be [ne0, ne1, ne2]; a 3-D
 * tensor (experts) is bound as ne2 * ne1 rows. */
static int bind3(const aellm_gguf *g, aellm_tensor *t, const char *name, int64_t ne0, int64_t ne1,
                 int64_t ne2)
{
    const aellm_gguf_tensor_info *ti = aellm_gguf_find_tensor(g, name);
    if (!ti)
        return aellm_error_set(AELLM_EFORMAT, "%s: missing tensor '%s'", aellm_gguf_path(g), name);
    if (ti->ne[0] != ne0 || ti->ne[1] != ne1 || ti->ne[2] != ne2 || ti->ne[3] != 1) {
        char want[64];
        snprintf(want, sizeof(want), ne2 > 1 ? "[%lld, %lld, %lld]" : "[%lld, %lld]",
                 (long long)ne0, (long long)ne1, (long long)ne2);
        return aellm_error_set(AELLM_ESHAPE,
                               "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], the config "
                               "implies %s",
                               aellm_gguf_path(g), name, (long long)ti->ne[0], (long long)ti->ne[1],
                               (long long)ti->ne[2], (long long)ti->ne[3], want);
    }
    aellm_tensor_set(t, ti->type, ne0, ne1 * ne2, ti->data);
    return 0;
}

static int bind(const aellm_gguf *g, aellm_tensor *t, const char *name, int64_t ne0, int64_t ne1)
{
    return bind3(g, t, name, ne0, ne1, 1);
}

/* A layer's FFN tensors, dense or experts (llama.cpp's names), for loading
 * and saving alike; ne2 is the expert count (1 when dense). */
typedef struct {
    aellm_tensor *t;
    const char *name;
    int64_t ne0, ne1, ne2;
} layer_tensor;

static size_t layer_tensors(const aellm_model_config *c, aellm_layer *y, layer_tensor *out)
{
    const int64_t d = c->dim, h = c->hidden_dim, q = (int64_t)c->n_heads * c->head_dim,
                  kv = (int64_t)c->n_kv_heads * c->head_dim, E = c->n_experts, r = c->mla_rank,
                  nkv = c->n_kv_heads, dr = c->mla_rope_dim;
    const layer_tensor attn[] = {
        {&y->attn_norm, "attn_norm", d, 1, 1}, {&y->wq, "attn_q", d, q, 1},
        {&y->wk, "attn_k", d, kv, 1},          {&y->wv, "attn_v", d, kv, 1},
        {&y->wo, "attn_output", q, d, 1},      {&y->ffn_norm, "ffn_norm", d, 1, 1},
    };
    const layer_tensor latent[] = {
        {&y->attn_norm, "attn_norm", d, 1, 1},
        {&y->wq, "attn_q", d, q, 1},
        {&y->wk, "attn_k_rope", d, nkv * dr, 1},
        {&y->w_dkv, "attn_kv_down", d, r, 1},
        {&y->w_uk, "attn_k_up", r, nkv * (c->head_dim - dr), 1},
        {&y->w_uv, "attn_v_up", r, kv, 1},
        {&y->rope_pairs, "attn_rope_pairs", dr / 2, nkv, 1},
        {&y->wo, "attn_output", q, d, 1},
        {&y->ffn_norm, "ffn_norm", d, 1, 1},
    };
    const layer_tensor dense[] = {
        {&y->w_gate, "ffn_gate", d, h, 1},
        {&y->w_up, "ffn_up", d, h, 1},
        {&y->w_down, "ffn_down", h, d, 1},
    };
    const layer_tensor moe[] = {
        {&y->ffn_gate_inp, "ffn_gate_inp", d, E, 1},
        {&y->w_gate, "ffn_gate_exps", d, h, E},
        {&y->w_up, "ffn_up_exps", d, h, E},
        {&y->w_down, "ffn_down_exps", h, d, E},
    };
    size_t n = 0;
    if (r) {
        for (size_t i = 0; i < sizeof(latent) / sizeof(latent[0]); i++)
            if (latent[i].ne1) out[n++] = latent[i]; /* every pair rotary: no k_up */
    } else {
        for (size_t i = 0; i < sizeof(attn) / sizeof(attn[0]); i++) out[n++] = attn[i];
    }
    if (E)
        for (size_t i = 0; i < sizeof(moe) / sizeof(moe[0]); i++) out[n++] = moe[i];
    else
        for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++) out[n++] = dense[i];
    return n;
}
#define LAYER_TENSORS_MAX 13

static int bind_layer(const aellm_gguf *g, const aellm_model_config *c, aellm_layer *y, int l)
{
    layer_tensor want[LAYER_TENSORS_MAX];
    size_t n = layer_tensors(c, y, want);
    char name[96];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "blk.%d.%s.weight", l, want[i].name);
        int rc = bind3(g, want[i].t, name, want[i].ne0, want[i].ne1, want[i].ne2);
        if (rc) return rc;
    }
    /* the router and the rotary pair table are used as f32, like the norms */
    const aellm_tensor *f32[] = {c->n_experts ? &y->ffn_gate_inp : NULL,
                                 c->mla_rank ? &y->rope_pairs : NULL};
    for (int i = 0; i < 2; i++)
        if (f32[i] && f32[i]->type != AELLM_DTYPE_F32)
            return aellm_error_set(AELLM_EFORMAT, "%s: a tensor of layer %d is %s, not f32",
                                   aellm_gguf_path(g), l,
                                   aellm_dtype_traits_get(f32[i]->type)->name);
    if (c->mla_rank) {
        const float *p = y->rope_pairs.data;
        for (int i = 0; i < c->n_kv_heads * c->mla_rope_dim / 2; i++)
            if (!(p[i] >= 0 && p[i] < c->head_dim / 2 && p[i] == floorf(p[i])))
                return aellm_error_set(AELLM_EFORMAT,
                                       "%s: blk.%d.attn_rope_pairs holds %g, not a pair index "
                                       "below %d",
                                       aellm_gguf_path(g), l, (double)p[i], c->head_dim / 2);
    }
    return 0;
}

/* Norm i: 0 is the output norm, then each layer's attention and FFN norms. */
static aellm_tensor *norm_at(aellm_model *m, int i)
{
    if (i == 0) return &m->output_norm;
    aellm_layer *y = &m->layers[(i - 1) / 2];
    return (i - 1) % 2 == 0 ? &y->attn_norm : &y->ffn_norm;
}

/* Norm vectors are used as f32: those stored otherwise are converted into
 * the model's owned block. */
static int own_norms(aellm_model *m)
{
    const int n = 2 * m->cfg.n_layers + 1;
    const size_t dim = (size_t)m->cfg.dim;
    size_t k = 0;
    for (int i = 0; i < n; i++) k += norm_at(m, i)->type != AELLM_DTYPE_F32;
    if (k == 0) return 0;
    float *f = aellm_mem_alloc(k * dim * sizeof(float), AELLM_MEM_WEIGHTS);
    if (!f) return aellm_error_oom("f32 norms", k * dim * sizeof(float));
    m->owned = f;
    for (int i = 0; i < n; i++) {
        aellm_tensor *t = norm_at(m, i);
        if (t->type == AELLM_DTYPE_F32) continue;
        aellm_dtype_traits_get(t->type)->to_float(t->data, f, (int64_t)dim);
        aellm_tensor_set(t, AELLM_DTYPE_F32, (int64_t)dim, 1, f);
        f += dim;
    }
    return 0;
}

static int bind_all(aellm_model *m)
{
    const aellm_gguf *g = m->gguf;
    const aellm_model_config *c = &m->cfg;
    int rc = bind(g, &m->tok_embd, "token_embd.weight", c->dim, c->vocab_size);
    if (!rc) rc = bind(g, &m->output_norm, "output_norm.weight", c->dim, 1);
    if (!rc && !c->tied_output) rc = bind(g, &m->output, "output.weight", c->dim, c->vocab_size);
    if (!rc && c->tied_output) m->output = m->tok_embd;
    for (int l = 0; !rc && l < c->n_layers; l++) rc = bind_layer(g, c, &m->layers[l], l);
    if (!rc) rc = own_norms(m);
    return rc;
}

/* An optional string key into *dst. */
static int read_info(aellm_model *m, const char *key, char **dst)
{
    const char *s = NULL;
    int rc = aellm_gguf_get_str(m->gguf, key, &s);
    if (rc == AELLM_ENOTFOUND) return 0;
    return rc ? rc : replace_str(dst, s, key);
}

/* How an aellm file was made, where it says: quantization, configuration,
 * figures. */
static int read_quantize_info(aellm_model *m)
{
    int rc = read_info(m, "aellm.quantize", &m->quantize_json);
    if (!rc) rc = read_info(m, "aellm.config", &m->config_json);
    return rc ? rc : read_info(m, "aellm.figures", &m->figures_json);
}

static int load_gguf(aellm_model **out, const char *path)
{
    aellm_gguf *g = NULL;
    aellm_model *m = NULL;
    aellm_model_config cfg;
    int rc = aellm_gguf_open(&g, path);
    if (!rc) rc = read_config(g, &cfg);
    if (!rc) rc = aellm_model_alloc(&m, &cfg);
    if (rc) goto done;
    m->gguf = g;
    g = NULL;
    if ((rc = bind_all(m))) goto done;
    if (aellm_gguf_find_key(m->gguf, "tokenizer.ggml.tokens") >= 0)
        rc = aellm_tokenizer_from_gguf(&m->tokenizer, m->gguf);
    if (!rc) rc = read_quantize_info(m);
    /* every id the tokenizer can produce must have an embedding row */
    if (!rc && m->tokenizer && aellm_tokenizer_vocab_size(m->tokenizer) > cfg.vocab_size)
        rc =
            aellm_error_set(AELLM_EFORMAT, "%s: the tokenizer has %d tokens, the embedding %d rows",
                            path, aellm_tokenizer_vocab_size(m->tokenizer), cfg.vocab_size);
    if (rc) goto done;
    *out = m;
    m = NULL;
done:
    aellm_gguf_free(g);
    aellm_model_free(m);
    return rc;
}

int aellm_model_load(aellm_model **out, const char *path, const char *tokenizer_path)
{
    *out = NULL;
    FILE *f;
    int64_t size;
    int rc = aellm_file_open(&f, path, &size);
    if (rc) return rc;
    char magic[4];
    size_t n = fread(magic, 1, sizeof(magic), f);
    fclose(f);
    rc = n == 4 && memcmp(magic, "GGUF", 4) == 0
             ? load_gguf(out, path)
             : aellm_model_load_llama2c(out, path, tokenizer_path);
    if (rc == 0) { /* the mapped file holds the weights for as long as the model lives */
        aellm_model *m = *out;
        m->mapped_bytes = m->gguf ? aellm_gguf_file_size(m->gguf) : m->map_size;
        aellm_mem_account(AELLM_MEM_WEIGHTS, (long long)m->mapped_bytes);
    }
    return rc;
}

/* ---- GGUF saving ---- */

/* llama.cpp's general.file_type (llama_ftype) of a model mostly in `type`. */
static int file_type(int type)
{
    switch (type) {
    case AELLM_DTYPE_F32:
        return 0;
    case AELLM_DTYPE_F16:
        return 1;
    case AELLM_DTYPE_Q4_0:
        return 2;
    case AELLM_DTYPE_Q4_1:
        return 3;
    case AELLM_DTYPE_Q8_0:
        return 7;
    case AELLM_DTYPE_BF16:
        return 32;
    default:
        return -1;
    }
}

/* general.name: the source file's, else the output file's base name. */
static int set_name(aellm_gguf_writer *w, const aellm_model *m, const char *path)
{
    int64_t i = m->gguf ? aellm_gguf_find_key(m->gguf, "general.name") : -1;
    if (i >= 0) return aellm_gguf_copy_kv(w, m->gguf, i);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(base, "."), base);
    return aellm_gguf_set_str(w, "general.name", name);
}

static int set_metadata(aellm_gguf_writer *w, const aellm_model *m, const char *path, int type)
{
    const aellm_model_config *c = &m->cfg;
    int rc = aellm_gguf_set_str(w, "general.architecture", "llama");
    if (!rc) rc = set_name(w, m, path);
    if (!rc && file_type(type) >= 0)
        rc = aellm_gguf_set_u32(w, "general.file_type", (uint32_t)file_type(type));
    const struct {
        const char *key;
        int v;
    } ints[] = {
        {"llama.vocab_size", c->vocab_size},
        {"llama.context_length", c->seq_len},
        {"llama.embedding_length", c->dim},
        {"llama.block_count", c->n_layers},
        {"llama.feed_forward_length", c->hidden_dim},
        {"llama.rope.dimension_count", c->head_dim},
        {"llama.attention.head_count", c->n_heads},
        {"llama.attention.head_count_kv", c->n_kv_heads},
    };
    for (size_t i = 0; !rc && i < sizeof(ints) / sizeof(ints[0]); i++)
        rc = aellm_gguf_set_u32(w, ints[i].key, (uint32_t)ints[i].v);
    if (!rc && c->mla_rank) rc = aellm_gguf_set_u32(w, "aellm.mla.kv_rank", (uint32_t)c->mla_rank);
    if (!rc && c->mla_rank)
        rc = aellm_gguf_set_u32(w, "aellm.mla.rope_dim", (uint32_t)c->mla_rope_dim);
    if (!rc && c->n_experts)
        rc = aellm_gguf_set_u32(w, "llama.expert_count", (uint32_t)c->n_experts);
    if (!rc && c->n_experts)
        rc = aellm_gguf_set_u32(w, "llama.expert_used_count", (uint32_t)c->n_experts_used);
    if (!rc) rc = aellm_gguf_set_f32(w, "llama.rope.freq_base", c->rope_base);
    if (!rc) rc = aellm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    if (!rc && m->quantize_json) rc = aellm_gguf_set_str(w, "aellm.quantize", m->quantize_json);
    if (!rc && m->config_json) rc = aellm_gguf_set_str(w, "aellm.config", m->config_json);
    if (!rc && m->figures_json) rc = aellm_gguf_set_str(w, "aellm.figures", m->figures_json);
    if (!rc && m->tokenizer) rc = aellm_tokenizer_write_gguf(m->tokenizer, w);
    return rc;
}

/* One tensor to save: its GGUF name, source, 3-D shape (ne2 > 1 stacks
 * experts), stored type and where the converted bytes go (NULL: written from
 * the source as it is). */
typedef struct {
    char name[64];
    const aellm_tensor *src;
    int64_t ne[3];
    int type;
    size_t offset;
} save_item;

/* Vectors (norms) and the router keep their type; the rest go to `type`. */
static int plan_item(save_item *it, const char *name, const aellm_tensor *t, int64_t ne2, int type,
                     size_t *total, const char *path)
{
    snprintf(it->name, sizeof(it->name), "%s", name);
    it->src = t;
    it->ne[0] = t->ne[0], it->ne[1] = t->ne[1] / ne2, it->ne[2] = ne2;
    int keep = t->ne[1] == 1 || type < 0 || strstr(name, "ffn_gate_inp") ||
               strstr(name, "attn_k_up") || strstr(name, "attn_v_up") || strstr(name, "rope_pairs");
    it->type = keep ? t->type : type;
    if (it->type == t->type) return 0;
    size_t row = aellm_dtype_row_size(it->type, t->ne[0]);
    if (row == 0)
        return aellm_error_set(AELLM_ESHAPE,
                               "%s: tensor '%s' row of %lld is not a multiple of %s's block", path,
                               name, (long long)t->ne[0], aellm_dtype_traits_get(it->type)->name);
    it->offset = *total;
    *total += (row * (size_t)t->ne[1] + 63) & ~(size_t)63;
    return 0;
}

/* The save list in llama.cpp's order: embeddings, output, then the blocks. */
static int plan(const aellm_model *m, int type, save_item *items, size_t *n, size_t *total,
                const char *path)
{
    char name[64];
    int rc = plan_item(&items[0], "token_embd.weight", &m->tok_embd, 1, type, total, path);
    if (!rc) rc = plan_item(&items[1], "output_norm.weight", &m->output_norm, 1, type, total, path);
    *n = 2;
    if (!rc && !m->cfg.tied_output)
        rc = plan_item(&items[(*n)++], "output.weight", &m->output, 1, type, total, path);
    for (int l = 0; !rc && l < m->cfg.n_layers; l++) {
        layer_tensor ts[LAYER_TENSORS_MAX];
        size_t k = layer_tensors(&m->cfg, &m->layers[l], ts);
        for (size_t i = 0; !rc && i < k; i++) {
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, ts[i].name);
            rc = plan_item(&items[(*n)++], name, ts[i].t, ts[i].ne2, type, total, path);
        }
    }
    return rc;
}

/* Row by row: dequantize to f32, quantize to the target type. */
static int convert(const aellm_tensor *t, int type, uint8_t *dst)
{
    const aellm_dtype_traits *from = aellm_dtype_traits_get(t->type);
    const aellm_dtype_traits *to = aellm_dtype_traits_get(type);
    const int64_t ne0 = t->ne[0];
    const size_t out_row = aellm_dtype_row_size(type, ne0);
    int failed = 0;
#pragma omp parallel
    {
        float *row = malloc((size_t)ne0 * sizeof(float));
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < t->ne[1]; r++) {
            if (!row) continue;
            from->to_float((const uint8_t *)t->data + (size_t)r * t->row_bytes, row, ne0);
            to->from_float(row, dst + (size_t)r * out_row, ne0);
        }
        free(row);
    }
    return failed ? aellm_error_oom("a conversion row", (size_t)ne0 * sizeof(float)) : 0;
}

static int add_items(aellm_gguf_writer *w, save_item *items, size_t n, uint8_t *block)
{
    for (size_t i = 0; i < n; i++) {
        const aellm_tensor *t = items[i].src;
        const void *data = t->data;
        if (items[i].type != t->type) {
            int rc = convert(t, items[i].type, block + items[i].offset);
            if (rc) return rc;
            data = block + items[i].offset;
        }
        const int64_t *ne = items[i].ne;
        int dims = ne[2] > 1 ? 3 : ne[1] > 1 ? 2 : 1;
        int rc = aellm_gguf_add_tensor(w, items[i].name, items[i].type, dims, ne, data);
        if (rc) return rc;
    }
    return 0;
}

static void count_interleaved(const aellm_tensor *t, void *ctx)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    *(int *)ctx += tr && tr->interleave;
}

int aellm_model_save_gguf(const aellm_model *m, const char *path, int type)
{
    if (type >= 0 && !aellm_dtype_traits_get(type))
        return aellm_error_set(AELLM_EINVAL, "%s: unknown target type %d", path, type);
    int interleaved = 0;
    each_tensor(m, count_interleaved, &interleaved);
    if (interleaved)
        return aellm_error_set(AELLM_EINVAL,
                               "%s: the model's weights are in the engine's decode layout "
                               "(aellm_model_repack); save it before repacking",
                               path);
    aellm_gguf_writer *w = NULL;
    size_t n = 0, total = 0;
    uint8_t *block = NULL;
    save_item *items = calloc(3 + LAYER_TENSORS_MAX * (size_t)m->cfg.n_layers, sizeof(*items));
    int rc = items ? aellm_gguf_writer_new(&w) : aellm_error_oom("the tensor list", 0);
    if (!rc) rc = set_metadata(w, m, path, type >= 0 ? type : aellm_model_weight_type(m));
    if (!rc) rc = plan(m, type, items, &n, &total, path);
    if (rc) goto done;
    if (total && !(block = malloc(total))) {
        rc = aellm_error_oom("converted weights", total);
        goto done;
    }
    rc = add_items(w, items, n, block);
    if (!rc) rc = aellm_gguf_writer_write(w, path);
done:
    free(block);
    free(items);
    aellm_gguf_writer_free(w);
    return rc;
}
