/* Engine lifetime: sizing and carving the buffers (one block per kind of memory), the RoPE
 * tables, and dispatch between prefill and decode. The maths is in
 * forward.c; sampling, generation and perplexity each have their file. */
#include "engine/engine_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"

void aellm_engine_params_default(aellm_engine_params *p)
{
    p->n_ctx = 0;
    p->n_batch = 512;
    p->n_threads = 0;
    p->kv_type = AELLM_DTYPE_F32;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static size_t max_scratch(size_t best, const aellm_tensor *w, int B)
{
    size_t s = aellm_kernel_matmul_scratch(w->type, w->ne[1], w->ne[0], B);
    return s > best ? s : best;
}

static size_t max_act(size_t best, const aellm_tensor *w)
{
    size_t s = aellm_kernel_act_bytes(w->type, w->ne[0]);
    return s > best ? s : best;
}

/* Largest activation row any weight matrix takes in decode. */
static size_t act_bytes_max(const aellm_model *m)
{
    size_t best = max_act(0, &m->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        for (int i = 0; i < AELLM_LINEAR_COUNT; i++)
            best = max_act(best, aellm_layer_linear(&m->layers[l], i));
        if (m->cfg.mla_rank) best = max_act(best, &m->layers[l].w_dkv);
    }
    return best;
}

/* Largest scratch any weight matrix needs for a batch of up to B tokens. */
static size_t matmul_scratch_max(const aellm_model *m, int B)
{
    size_t best = max_scratch(0, &m->output, B);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        for (int i = 0; i < AELLM_LINEAR_COUNT; i++)
            best = max_scratch(best, aellm_layer_linear(&m->layers[l], i), B);
        if (m->cfg.mla_rank) best = max_scratch(best, &m->layers[l].w_dkv, B);
    }
    return best;
}

static void rope_tables(aellm_engine *e)
{
    int half = e->head_dim / 2;
    float base = e->m->cfg.rope_base;
    for (int p = 0; p < e->n_ctx; p++)
        for (int i = 0; i < half; i++) {
            /* the same float formula as llama2.c, so greedy outputs match it */
            float freq = 1.0f / powf(base, (float)(2 * i) / (float)e->head_dim);
            float val = (float)p * freq;
            e->rope_cos[(size_t)p * half + i] = cosf(val);
            e->rope_sin[(size_t)p * half + i] = sinf(val);
        }
}

/* Hands out 64-byte-aligned slices of a block; a NULL base only counts. */
static void *carve(char *base, size_t *off, size_t bytes)
{
    size_t at = (*off + 63) & ~(size_t)63;
    *off = at + bytes;
    return base ? base + at : NULL;
}

/* Three blocks, one per kind the memory accounting reports (KV cache,
 * activations, scratch); with NULL bases only their sizes are computed. */
static void layout(aellm_engine *e, char *const base[ENGINE_BLOCKS])
{
    const aellm_model_config *c = &e->m->cfg;
    size_t B = (size_t)e->n_batch, C = (size_t)e->n_ctx;
    size_t off[ENGINE_BLOCKS] = {0};
    size_t wide = (size_t)(c->dim > e->q_dim ? c->dim : e->q_dim);
    size_t kv = (size_t)c->n_layers * C * e->kv_row_bytes;
    char *kb = base[BLOCK_KV], *ab = base[BLOCK_ACT], *sb = base[BLOCK_SCRATCH];
    size_t *ko = &off[BLOCK_KV], *ao = &off[BLOCK_ACT], *so = &off[BLOCK_SCRATCH];
    size_t r = (size_t)c->mla_rank, kr = (size_t)c->n_kv_heads * c->mla_rope_dim;
    if (r) {
        e->lat_cache = carve(kb, ko, (size_t)c->n_layers * C * r * sizeof(float));
        e->kr_cache = carve(kb, ko, (size_t)c->n_layers * C * kr * sizeof(float));
        e->c_new = carve(ab, ao, B * r * sizeof(float));
        e->kr_new = carve(ab, ao, B * kr * sizeof(float));
        e->mla_lat = carve(sb, so, (size_t)e->n_threads * c->n_heads * (C + 2 * r) * sizeof(float));
        if (aellm_mla_up_quantized(e->m))
            e->mla_up = carve(sb, so,
                              (size_t)e->n_threads * (2 * (size_t)e->head_dim - c->mla_rope_dim) *
                                  r * sizeof(float));
    } else {
        e->k_cache = carve(kb, ko, kv);
        e->v_cache = carve(kb, ko, kv);
    }
    e->k_new = carve(ab, ao, B * (size_t)e->kv_dim * sizeof(float));
    e->v_new = carve(ab, ao, B * (size_t)e->kv_dim * sizeof(float));
    e->rope_cos = carve(ab, ao, C * (size_t)(e->head_dim / 2) * sizeof(float));
    e->rope_sin = carve(ab, ao, C * (size_t)(e->head_dim / 2) * sizeof(float));
    e->x = carve(ab, ao, B * (size_t)c->dim * sizeof(float));
    e->xb = carve(ab, ao, B * wide * sizeof(float));
    e->xb2 = carve(ab, ao, B * wide * sizeof(float));
    e->q = carve(ab, ao, B * (size_t)e->q_dim * sizeof(float));
    size_t Bh = B > (size_t)c->n_experts_used ? B : (size_t)c->n_experts_used;
    e->hb = carve(ab, ao, Bh * (size_t)c->hidden_dim * sizeof(float));
    e->hb2 = carve(ab, ao, Bh * (size_t)c->hidden_dim * sizeof(float));
    size_t qkv = (size_t)e->q_dim + 2 * (size_t)e->kv_dim, ffn = 2 * (size_t)c->hidden_dim;
    e->fused_y = carve(ab, ao, (qkv > ffn ? qkv : ffn) * sizeof(float));
    if (c->n_experts) {
        size_t E = (size_t)c->n_experts, k = (size_t)c->n_experts_used;
        e->moe_sel = carve(ab, ao, B * k * sizeof(int));
        e->moe_w = carve(ab, ao, B * k * sizeof(float));
        e->moe_logits = carve(ab, ao, B * E * sizeof(float));
        e->moe_rows = carve(ab, ao, B * k * sizeof(int));
        e->moe_x = carve(ab, ao, B * (size_t)c->dim * sizeof(float));
        e->moe_y = carve(ab, ao, Bh * (size_t)c->dim * sizeof(float));
        e->load = carve(ab, ao, (size_t)c->n_layers * E * sizeof(*e->load));
    }
    e->logits = carve(ab, ao, (size_t)c->vocab_size * sizeof(float));
    e->act = carve(ab, ao, e->act_bytes);
    e->mv_claims =
        carve(sb, so, (size_t)e->n_threads * e->mv_claims_per_thread * sizeof(*e->mv_claims));
    e->counters = carve(sb, so, (size_t)e->n_threads * sizeof(*e->counters));
    if (e->kv_type != AELLM_DTYPE_F32 || r) /* an f32 cache is read in place; a latent expanded */
        e->kv_f32 = carve(sb, so, (size_t)e->n_threads * 2 * C * e->head_dim * sizeof(float));
    e->scores = carve(sb, so, (size_t)e->n_threads * B * C * sizeof(float));
    e->scratch = carve(sb, so, e->scratch_bytes);
    e->bytes = 0;
    for (int i = 0; i < ENGINE_BLOCKS; i++) e->block_bytes[i] = off[i], e->bytes += off[i];
}

/* Every size the layout needs, from the model and the parameters. */
static void size_buffers(aellm_engine *e, const aellm_model *m, const aellm_engine_params *p)
{
    const aellm_model_config *c = &m->cfg;
    e->m = m;
    e->n_ctx = p->n_ctx > 0 ? p->n_ctx : c->seq_len;
    e->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    if (e->n_batch > e->n_ctx) e->n_batch = e->n_ctx;
    e->n_threads = p->n_threads > 0 ? p->n_threads : default_threads();
    e->head_dim = c->head_dim;
    e->q_dim = c->n_heads * c->head_dim;
    e->kv_dim = c->n_kv_heads * c->head_dim;
    e->kv_type = p->kv_type;
    e->attn = aellm_attn_kernels_get(p->kv_type);
    e->kv_head_bytes = aellm_attn_head_bytes(p->kv_type, c->head_dim);
    e->kv_row_bytes = (size_t)c->n_kv_heads * e->kv_head_bytes;
    e->scratch_bytes = matmul_scratch_max(m, e->n_batch);
    e->act_bytes = act_bytes_max(m);
    /* a layer's products: attention's (at most 3) and its output, then the
       FFN's 3 or 3 per expert used */
    int k = c->n_experts ? c->n_experts_used : 1;
    e->mv_claims_per_thread = (c->n_layers * (4 + 3 * k) + 1 + 7) & ~7;
}

size_t aellm_engine_plan_bytes(const aellm_model *m, const aellm_engine_params *p)
{
    aellm_engine e = {0};
    size_buffers(&e, m, p);
    char *none[ENGINE_BLOCKS] = {NULL};
    layout(&e, none);
    return e.bytes + sizeof(e); /* as aellm_engine_memory_bytes counts it */
}

int aellm_engine_new(aellm_engine **out, const aellm_model *m, const aellm_engine_params *p)
{
    *out = NULL;
    aellm_engine_params def;
    if (!p) aellm_engine_params_default(&def), p = &def;
    if (m->cfg.mla_rank && p->kv_type != AELLM_DTYPE_F32)
        return aellm_error_set(AELLM_EINVAL,
                               "a latent-attention model keeps its latent cache in f32 (KV cache "
                               "type %s asked)",
                               aellm_dtype_traits_get(p->kv_type)
                                   ? aellm_dtype_traits_get(p->kv_type)->name
                                   : "(unknown)");
    if (!aellm_attn_type_ok(p->kv_type)) {
        const aellm_dtype_traits *t = aellm_dtype_traits_get(p->kv_type);
        return aellm_error_set(AELLM_EINVAL, "KV cache type %s is not one of f32, f16, q8_0",
                               t ? t->name : "(unknown)");
    }
    const char *split = getenv("AELLM_DECODE_SPLIT");
    if (split && strcmp(split, "static") && strcmp(split, "steal"))
        return aellm_error_set(AELLM_EINVAL, "AELLM_DECODE_SPLIT=%s: expected static or steal",
                               split);
    const char *fuse = getenv("AELLM_DECODE_FUSE");
    if (fuse && strcmp(fuse, "0") && strcmp(fuse, "1"))
        return aellm_error_set(AELLM_EINVAL, "AELLM_DECODE_FUSE=%s: expected 0 or 1", fuse);
    aellm_engine *e = calloc(1, sizeof(*e));
    if (!e) return aellm_error_oom("engine", sizeof(*e));
    e->decode_steal = !split || strcmp(split, "static");
    e->decode_fuse = !fuse || strcmp(fuse, "0");
    size_buffers(e, m, p);
    char *none[ENGINE_BLOCKS] = {NULL};
    layout(e, none);
    static const aellm_mem_kind kinds[ENGINE_BLOCKS] = {AELLM_MEM_KV, AELLM_MEM_ACTIVATIONS,
                                                        AELLM_MEM_SCRATCH};
    for (int i = 0; i < ENGINE_BLOCKS; i++)
        if (!(e->block[i] = aellm_mem_alloc(e->block_bytes[i], kinds[i]))) {
            size_t bytes = e->block_bytes[i];
            aellm_engine_free(e);
            return aellm_error_oom("engine buffers (KV cache, activations, scratch)", bytes);
        }
    layout(e, e->block);
    rope_tables(e);
    aellm_engine_decode_stats_reset(e);
    *out = e;
    return 0;
}

void aellm_engine_free(aellm_engine *e)
{
    if (!e) return;
    for (int i = 0; i < ENGINE_BLOCKS; i++) aellm_mem_free(e->block[i]);
    free(e);
}

int aellm_engine_n_ctx(const aellm_engine *e)
{
    return e->n_ctx;
}
int aellm_engine_n_threads(const aellm_engine *e)
{
    return e->n_threads;
}
int aellm_engine_kv_type(const aellm_engine *e)
{
    return e->kv_type;
}
int aellm_engine_vocab_size(const aellm_engine *e)
{
    return e->m->cfg.vocab_size;
}
size_t aellm_engine_memory_bytes(const aellm_engine *e)
{
    return e->bytes + sizeof(*e);
}
int aellm_engine_expert_load(const aellm_engine *e, unsigned long long *counts)
{
    const aellm_model_config *c = &e->m->cfg;
    if (!c->n_experts) return 0;
    if (counts) memcpy(counts, e->load, (size_t)c->n_layers * c->n_experts * sizeof(*counts));
    return c->n_experts;
}

void aellm_engine_expert_load_reset(aellm_engine *e)
{
    const aellm_model_config *c = &e->m->cfg;
    if (c->n_experts) memset(e->load, 0, (size_t)c->n_layers * c->n_experts * sizeof(*e->load));
}

void aellm_engine_decode_stats_get(const aellm_engine *e, aellm_engine_decode_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->decode_s = e->decode_s;
    s->tokens = e->decode_tokens;
    s->threads = e->n_threads;
    s->steal = e->decode_steal;
    s->fuse = e->decode_fuse;
    for (int i = 0; i < e->n_threads; i++) {
        s->wait_s += e->counters[i].wait_s;
        s->steps += e->counters[i].steps;
        s->stolen += e->counters[i].stolen;
        s->products += e->counters[i].products;
        s->fused += e->counters[i].fused;
    }
}

void aellm_engine_decode_stats_reset(aellm_engine *e)
{
    memset(e->counters, 0, (size_t)e->n_threads * sizeof(*e->counters));
    e->decode_s = 0.0;
    e->decode_tokens = 0;
}

size_t aellm_engine_kv_bytes(const aellm_engine *e)
{
    const aellm_model_config *c = &e->m->cfg;
    if (c->mla_rank) /* the latent and the rotary keys, f32 */
        return (size_t)c->n_layers * e->n_ctx *
               ((size_t)c->mla_rank + (size_t)c->n_kv_heads * c->mla_rope_dim) * sizeof(float);
    return 2 * (size_t)c->n_layers * (size_t)e->n_ctx * e->kv_row_bytes;
}

int aellm_engine_eval(aellm_engine *e, const int32_t *tokens, int n, int pos, float *logits,
                      int all_logits)
{
    int vocab = e->m->cfg.vocab_size;
    if (n <= 0 || pos < 0 || pos + n > e->n_ctx)
        return aellm_error_set(AELLM_EINVAL,
                               "eval of %d tokens at position %d does not fit the context of %d", n,
                               pos, e->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return aellm_error_set(AELLM_EINVAL, "token id %d out of range [0, %d)", tokens[i],
                                   vocab);
    if (n == 1) return aellm_forward_decode(e, tokens[0], pos, logits);
    for (int done = 0; done < n;) {
        int step = n - done < e->n_batch ? n - done : e->n_batch;
        float *out = NULL;
        if (logits && all_logits)
            out = logits + (size_t)done * vocab;
        else if (logits && done + step == n)
            out = logits;
        int rc = aellm_forward_prefill(e, tokens + done, step, pos + done, out, all_logits);
        if (rc) return rc;
        done += step;
    }
    return 0;
}
