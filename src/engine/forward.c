/* The Llama block, forward only: RMSNorm, RoPE (interleaved pairs, as
 * llama2.c and llama.cpp's LLAMA arch), grouped-query attention over the KV
 * cache, SwiGLU FFN, tied or separate output. Decode runs one token inside a
 * single OpenMP region (threads split matrix rows and heads, meeting at
 * barriers); prefill runs a batch through matrix products. Training's forward
 * (which keeps activations) lives with the backward pass, not here. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/error.h"
#include "core/timer.h"
#include "engine/engine_internal.h"
#include "kernels/kernels.h"
#include "kernels/moe_route.h"

/* ---- elementwise pieces, shared by both paths ---- */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) o[i] = w[i] * (ss * x[i]);
}

/* Rotates pairs (2i, 2i+1) of each head of `v` (n_heads heads). */
static void rope(const aellm_engine *e, float *v, int n_heads, int pos)
{
    int half = e->head_dim / 2;
    const float *cs = e->rope_cos + (size_t)pos * half, *sn = e->rope_sin + (size_t)pos * half;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * e->head_dim;
        for (int i = 0; i < half; i++) {
            float a = p[2 * i], b = p[2 * i + 1];
            p[2 * i] = a * cs[i] - b * sn[i];
            p[2 * i + 1] = a * sn[i] + b * cs[i];
        }
    }
}

static void softmax(float *x, int n)
{
    float max = x[0], sum = 0.0f;
    for (int i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++) x[i] = expf(x[i] - max), sum += x[i];
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* out = silu(gate) * up; out may be gate. */
static void swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void add(float *x, const float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

static void embed(const aellm_engine *e, int32_t token, float *out)
{
    const aellm_tensor *t = &e->m->tok_embd;
    const char *row = (const char *)t->data + (size_t)token * t->row_bytes;
    aellm_dtype_traits_get(t->type)->to_float(row, out, t->ne[0]);
}

/* Layer `layer`'s keys (values) of KV head kvh at position pos, in kv_type.
 * Head-major: one head's positions are contiguous, so decode streams them
 * (position-major rows put each head's 256 bytes 3 KiB apart at 110M, and
 * ran decode attention at half the speed) and prefill's sgemms get dense rows. */
static char *k_at(const aellm_engine *e, int layer, int kvh, int pos)
{
    size_t head = (size_t)layer * e->m->cfg.n_kv_heads + (size_t)kvh;
    return e->k_cache + (head * e->n_ctx + (size_t)pos) * e->kv_head_bytes;
}

static char *v_at(const aellm_engine *e, int layer, int kvh, int pos)
{
    size_t head = (size_t)layer * e->m->cfg.n_kv_heads + (size_t)kvh;
    return e->v_cache + (head * e->n_ctx + (size_t)pos) * e->kv_head_bytes;
}

/* Writes row i of k_new / v_new (roped keys, values) to position pos. */
static void store_kv(aellm_engine *e, int layer, int i, int pos)
{
    int hd = e->head_dim;
    const float *k = e->k_new + (size_t)i * e->kv_dim, *v = e->v_new + (size_t)i * e->kv_dim;
    for (int h = 0; h < e->m->cfg.n_kv_heads; h++) {
        aellm_attn_store(e->kv_type, hd, 1, k + (size_t)h * hd, k_at(e, layer, h, pos));
        aellm_attn_store(e->kv_type, hd, 1, v + (size_t)h * hd, v_at(e, layer, h, pos));
    }
}

/* Routes token row i (normalised input x) of layer l: its experts and
 * weights into moe_sel / moe_w row i, counted in the expert load. The
 * logits are moe_logits row i when `have_logits`, else computed here. */
static void route_token(aellm_engine *e, int l, int i, const float *x, int have_logits)
{
    const aellm_model_config *c = &e->m->cfg;
    int E = c->n_experts, k = c->n_experts_used;
    float *p = e->moe_logits + (size_t)i * E;
    if (!have_logits) {
        const float *R = e->m->layers[l].ffn_gate_inp.data;
        for (int x_ = 0; x_ < E; x_++) {
            const float *r = R + (size_t)x_ * c->dim;
            float dot = 0.0f;
            for (int j = 0; j < c->dim; j++) dot += r[j] * x[j];
            p[x_] = dot;
        }
    }
    aellm_moe_route(p, E, k, e->moe_sel + (size_t)i * k, e->moe_w + (size_t)i * k);
}

/* ---- decode: one token, one parallel region ---- */

typedef struct {
    aellm_engine *e;
    int ith, nth;
    int act_type;                /* vec_dot_type currently in e->act, -1 = none */
    const float *act_of;         /* the vector it was made from */
    int seq;                     /* products this token so far: the same on every thread */
    aellm_decode_counters count; /* this token's, added to the engine's at its end */
} thread_ctx;

/* Makes e->act hold `x` in w's vec_dot_type; all threads call it together,
 * after the barrier that completed `x` (every producer of x ends in one). */
static void act_for(thread_ctx *t, const aellm_tensor *w, const float *x)
{
    int vt = aellm_kernel_traits_get(w->type)->vec_dot_type;
    if (vt == t->act_type && x == t->act_of) return;
    if (x == t->act_of) { /* a mixed-type group: others may still read e->act */
#pragma omp barrier
    }
#pragma omp single
    aellm_kernel_quantize_act(w->type, x, t->e->act, w->ne[0]);
    t->act_type = vt;
    t->act_of = x;
}

/* Each thread owns an equal share of a product's rows and takes its steps
 * from the front, a quarter of what is left at a time, never under 64 KiB; a
 * thread done with its own takes the back half of what another has left. On
 * two vCPUs one thread is often slower for a while (the host runs
 * something), and a static split then waits at every barrier: timing the
 * group barriers of 1.1B F32 decode (a probe not kept in the tree) gave
 * 0.3-2.6 s of waits in 10.7 s, one thread doing 23 % more kernel time than
 * the other; with stealing, 0.05-0.2 s. A claim word holds the steps taken
 * from the front (low half) and from the back (high half) of one thread's
 * share of one product; all are zeroed before each token. Results are
 * published by the barrier that ends the group, so the counters need no
 * ordering of their own. Claims shrink as the share does because each costs
 * a locked exchange: in fixed 64 KiB chunks, 1.1B F16 decode spent 1.4 % of
 * its samples on the instruction after it and ran 4-11 % slower
 * (bench/README.md). */
typedef struct {
    int64_t r0, r1, steps;
} share;

static share share_of(const aellm_tensor *w, int ith, int nth)
{
    int64_t rows = w->ne[1];
    int64_t align = aellm_kernel_matvec_align(w->type); /* interleaved groups stay whole */
    if (align < 4) align = 4;
    int64_t per = ((rows + nth - 1) / nth + align - 1) / align * align;
    share s = {per * ith, per * ith + per < rows ? per * ith + per : rows, 0};
    if (s.r0 > rows) s.r0 = rows;
    s.steps = aellm_kernel_matvec_steps(w->type, s.r1 - s.r0);
    return s;
}

/* Takes steps from the front (back = 0), a quarter of those left but at
 * least `want`, or the back half of a share with `steps` steps; 0 when none
 * are left. */
static int64_t claim(uint64_t *word, int64_t steps, int64_t want, int back, int64_t *j0)
{
    uint64_t old = __atomic_load_n(word, __ATOMIC_RELAXED);
    for (;;) {
        int64_t f = (int64_t)(old & 0xffffffffu), b = (int64_t)(old >> 32), left = steps - f - b;
        if (left <= 0) return 0;
        if (back)
            want = (left + 1) / 2; /* a thief takes half, leaving the owner the rest */
        else if (left / 4 > want)
            want = left / 4; /* what is left to steal stays at least 3/4 */
        int64_t take = want < left ? want : left;
        uint64_t next = old + (back ? (uint64_t)take << 32 : (uint64_t)take);
        if (__atomic_compare_exchange_n(word, &old, next, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *j0 = back ? steps - b - take : f;
            return take;
        }
    }
}

/* Steps [j0, j0 + n) of share s, counted as this thread's work. */
static void run_steps(thread_ctx *t, const aellm_tensor *w, float *y, share s, int64_t j0,
                      int64_t n)
{
    aellm_kernel_matvec_steps_run(w->type, w->ne[0], w->data, w->row_bytes, t->e->act, y + s.r0,
                                  s.r0, s.r1, j0, j0 + n);
    t->count.steps += (unsigned long long)n;
}

static uint64_t *claim_word(const aellm_engine *e, int ith, int seq)
{
    return e->mv_claims + (size_t)ith * e->mv_claims_per_thread + seq;
}

/* y = W x: this thread's share, then what it can take of the others'. */
static void matvec_part(thread_ctx *t, const aellm_tensor *w, const float *x, float *y)
{
    act_for(t, w, x);
    aellm_engine *e = t->e;
    int seq = t->seq++;
    t->count.products++;
    share own = share_of(w, t->ith, t->nth);
    if (!e->decode_steal || seq >= e->mv_claims_per_thread) { /* off, or unplanned: static */
        if (own.steps) run_steps(t, w, y, own, 0, own.steps);
        return;
    }
    size_t bytes = aellm_kernel_matvec_step_bytes(w->type, own.r1 - own.r0, w->row_bytes);
    int64_t chunk = (int64_t)(((size_t)64 << 10) / (bytes ? bytes : 1)), j0, n;
    if (chunk < 1) chunk = 1;
    while ((n = claim(claim_word(e, t->ith, seq), own.steps, chunk, 0, &j0)))
        run_steps(t, w, y, own, j0, n);
    for (int k = 1; k < t->nth; k++) {
        int v = (t->ith + k) % t->nth;
        share other = share_of(w, v, t->nth);
        while ((n = claim(claim_word(e, v, seq), other.steps, 0, 1, &j0))) {
            run_steps(t, w, y, other, j0, n);
            t->count.stolen += (unsigned long long)n;
        }
    }
}

/* Weight matrices that read the same input and lie back to back in memory,
 * of one type and row length, are one matrix of all their rows: one product
 * of 2560 rows instead of three for TinyLlama's Q, K and V, where the short
 * ones (K and V, 256 rows) read slowest, and gate and up as one. In a probe
 * of the 1.1B products in order (not in the tree), reading them so was 1.03
 * (F16) and 1.045 (F32) times as fast; in the engine, 0.97-1.07 at 1.1B and
 * up to 1.05 at 110M (bench/README.md): little, but fewer products (89 a
 * token for 155) and never clearly slower. Files aellm writes keep each
 * layer's matrices in this order; others (a llama.cpp file puts K, O, Q, V)
 * are read apart, as is everything under AELLM_DECODE_FUSE=0. *out gets the
 * view. */
static int fused_view(const aellm_engine *e, const aellm_tensor *const *ws, int n,
                      aellm_tensor *out)
{
    if (!e->decode_fuse) return 0;
    *out = *ws[0];
    for (int i = 1; i < n; i++) {
        const aellm_tensor *w = ws[i];
        if (w->type != out->type || w->ne[0] != out->ne[0] || w->row_bytes != out->row_bytes ||
            (const char *)out->data + (size_t)out->ne[1] * out->row_bytes != w->data)
            return 0;
        out->ne[1] += w->ne[1];
    }
    return 1;
}

/* y_i = W_i x for the n matrices of a group: as one product into
 * e->fused_y where fused_view allows (its rows then hold the results one
 * after the other, for the caller to take after the group's barrier), else
 * one by one into ys. Returns whether they were fused. */
static int products(thread_ctx *t, const aellm_tensor *const *ws, int n, const float *x,
                    float *const *ys)
{
    aellm_tensor all;
    if (fused_view(t->e, ws, n, &all)) {
        matvec_part(t, &all, x, t->e->fused_y);
        t->count.fused++;
        return 1;
    }
    for (int i = 0; i < n; i++) matvec_part(t, ws[i], x, ys[i]);
    return 0;
}

/* Ends a group of products that read the same input: results are complete
 * and the input may be overwritten. */
static void group_done(thread_ctx *t)
{
    double t0 = aellm_time_s();
#pragma omp barrier
    t->count.wait_s += aellm_time_s() - t0;
    t->act_of = NULL;
}

/* Decode attention of query head h over positions 0..pos, read from the
 * cache in its stored type (nothing is expanded). */
static void attend_head(aellm_engine *e, int layer, int h, int pos, float *att, float *out)
{
    const aellm_model_config *c = &e->m->cfg;
    int hd = e->head_dim, kvh = h / (c->n_heads / c->n_kv_heads);
    e->attn->scores(hd, e->q + (size_t)h * hd, k_at(e, layer, kvh, 0), e->kv_head_bytes, pos + 1,
                    1.0f / sqrtf((float)hd), att);
    softmax(att, pos + 1);
    e->attn->accum(hd, att, v_at(e, layer, kvh, 0), e->kv_head_bytes, pos + 1, out);
}

/* hb = silu(gate) * up over n values, this thread's share. */
static void swiglu_part(thread_ctx *t, const float *gate, const float *up, int64_t n)
{
    int64_t per = (n + t->nth - 1) / t->nth, i0 = per * t->ith;
    if (i0 < n) swiglu(t->e->hb + i0, gate + i0, up + i0, (i0 + per < n ? per : n - i0));
}

/* FFN of normalised xb into xb2. */
static void decode_dense_ffn(thread_ctx *t, const aellm_layer *L)
{
    aellm_engine *e = t->e;
    int64_t h = e->m->cfg.hidden_dim;
    const aellm_tensor *ws[2] = {&L->w_gate, &L->w_up};
    float *ys[2] = {e->hb, e->hb2};
    int fused = products(t, ws, 2, e->xb, ys);
    group_done(t);
    if (fused)
        swiglu_part(t, e->fused_y, e->fused_y + h, h);
    else
        swiglu_part(t, e->hb, e->hb2, h);
    group_done(t);
    matvec_part(t, &L->w_down, e->hb, e->xb2);
    group_done(t);
}

/* The same through the k experts the token is routed to; the others are
 * never read. Expert s's hidden values are hb row s, its output moe_y row s. */
static void decode_experts(thread_ctx *t, int l)
{
    aellm_engine *e = t->e;
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int64_t h = c->hidden_dim, k = c->n_experts_used;
#pragma omp single
    route_token(e, l, 0, e->xb, 0);
    for (int s = 0; s < k; s++) {
        int64_t x = e->moe_sel[s];
        aellm_tensor g = aellm_tensor_rows(&L->w_gate, x * h, h);
        aellm_tensor u = aellm_tensor_rows(&L->w_up, x * h, h);
        matvec_part(t, &g, e->xb, e->hb + s * h);
        matvec_part(t, &u, e->xb, e->hb2 + s * h);
    }
    group_done(t);
    swiglu_part(t, e->hb, e->hb2, k * h);
    group_done(t);
    for (int s = 0; s < k; s++) {
        aellm_tensor d = aellm_tensor_rows(&L->w_down, (int64_t)e->moe_sel[s] * c->dim, c->dim);
        matvec_part(t, &d, e->hb + s * h, e->moe_y + (size_t)s * c->dim);
        group_done(t);
    }
#pragma omp single
    {
        memset(e->xb2, 0, (size_t)c->dim * sizeof(float));
        for (int s = 0; s < k; s++)
            for (int j = 0; j < c->dim; j++)
                e->xb2[j] += e->moe_w[s] * e->moe_y[(size_t)s * c->dim + j];
        e->load[(size_t)l * c->n_experts + e->moe_sel[0]]++;
        for (int s = 1; s < k; s++) e->load[(size_t)l * c->n_experts + e->moe_sel[s]]++;
    }
}

/* Latent attention's decode: queries, rotary keys and the latent, cached;
 * then each head attends the cache without expanding it (mla.c). */
static void decode_latent_attention(thread_ctx *t, int l, int pos)
{
    aellm_engine *e = t->e;
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    matvec_part(t, &L->wq, e->xb, e->q);
    matvec_part(t, &L->wk, e->xb, e->kr_new);
    matvec_part(t, &L->w_dkv, e->xb, e->c_new);
    group_done(t);
#pragma omp single
    {
        aellm_mla_rope(e, l, e->q, c->n_heads, e->head_dim, c->n_heads / c->n_kv_heads, pos);
        aellm_mla_rope(e, l, e->kr_new, c->n_kv_heads, c->mla_rope_dim, 1, pos);
        aellm_mla_store(e, l, 0, pos);
    }
    /* this thread's contiguous block of heads, together through the latent */
    float *scratch =
        e->mla_lat + (size_t)t->ith * c->n_heads * ((size_t)e->n_ctx + 2 * (size_t)c->mla_rank);
    int h0 = c->n_heads * t->ith / t->nth, h1 = c->n_heads * (t->ith + 1) / t->nth;
    float *up = aellm_mla_up_buf(e, t->ith);
    if (h0 < h1) aellm_mla_attend_heads(e, l, h0, h1, pos, scratch, up);
}

static void decode_attention(thread_ctx *t, int l, int pos)
{
    aellm_engine *e = t->e;
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    const aellm_tensor *ws[3] = {&L->wq, &L->wk, &L->wv};
    float *ys[3] = {e->q, e->k_new, e->v_new};
    int fused = products(t, ws, 3, e->xb, ys);
    group_done(t);
#pragma omp single
    {
        if (fused) /* 10 KiB at 1.1B: cheaper than teaching rope and the cache two layouts */
            for (int i = 0, at = 0; i < 3; at += (int)ws[i]->ne[1], i++)
                memcpy(ys[i], e->fused_y + at, (size_t)ws[i]->ne[1] * sizeof(float));
        rope(e, e->q, c->n_heads, pos);
        rope(e, e->k_new, c->n_kv_heads, pos);
        store_kv(e, l, 0, pos);
    }
    /* a contiguous block of query heads per thread: the heads that share a
       KV head (GQA, MQA) run back to back and read it from cache once */
    float *att = e->scores + (size_t)t->ith * e->n_batch * e->n_ctx;
    int h0 = c->n_heads * t->ith / t->nth, h1 = c->n_heads * (t->ith + 1) / t->nth;
    for (int h = h0; h < h1; h++) attend_head(e, l, h, pos, att, e->xb + (size_t)h * e->head_dim);
}

static void decode_layer(thread_ctx *t, int l, int pos)
{
    aellm_engine *e = t->e;
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
#pragma omp single
    rmsnorm(e->xb, e->x, L->attn_norm.data, c->dim, c->norm_eps);
    if (c->mla_rank)
        decode_latent_attention(t, l, pos);
    else
        decode_attention(t, l, pos);
    group_done(t);
    matvec_part(t, &L->wo, e->xb, e->xb2);
    group_done(t);
#pragma omp single
    {
        add(e->x, e->xb2, c->dim);
        rmsnorm(e->xb, e->x, L->ffn_norm.data, c->dim, c->norm_eps);
    }
    if (c->n_experts)
        decode_experts(t, l);
    else
        decode_dense_ffn(t, L);
#pragma omp single
    add(e->x, e->xb2, c->dim);
}

int aellm_forward_decode(aellm_engine *e, int32_t token, int pos, float *logits)
{
    const aellm_model *m = e->m;
    float *out = logits ? logits : e->logits;
    embed(e, token, e->x);
    memset(e->mv_claims, 0, (size_t)e->n_threads * e->mv_claims_per_thread * sizeof(uint64_t));
    double t0 = aellm_time_s();
#pragma omp parallel num_threads(e->n_threads)
    {
        thread_ctx t = {
            .e = e, .ith = omp_get_thread_num(), .nth = omp_get_num_threads(), .act_type = -1};
        for (int l = 0; l < m->cfg.n_layers; l++) decode_layer(&t, l, pos);
#pragma omp single
        rmsnorm(e->xb, e->x, m->output_norm.data, m->cfg.dim, m->cfg.norm_eps);
        matvec_part(&t, &m->output, e->xb, out);
        group_done(&t); /* the last product's waits count too */
        aellm_decode_counters *c = &e->counters[t.ith];
        c->wait_s += t.count.wait_s;
        c->steps += t.count.steps;
        c->stolen += t.count.stolen;
        c->products += t.count.products;
        c->fused += t.count.fused;
    }
    e->decode_s += aellm_time_s() - t0;
    e->decode_tokens++;
    return 0;
}

/* ---- prefill: a batch of tokens through matrix products ---- */

static void matmul(aellm_engine *e, const aellm_tensor *w, const float *x, int n, float *y)
{
    aellm_kernel_matmul(w->type, w->data, w->row_bytes, w->ne[1], w->ne[0], x, n, y, e->scratch);
}

/* Matrix `which` of layer l, shown to the hook first. */
static void linear(aellm_engine *e, int l, int which, const float *x, int n, float *y)
{
    const aellm_tensor *w = aellm_layer_linear(&e->m->layers[l], which);
    if (e->hook) e->hook(e->hook_user, l, which, x, n, w->ne[0]);
    matmul(e, w, x, n, y);
}

static void norm_rows(aellm_engine *e, float *o, const float *x, const aellm_tensor *w, int n)
{
    int dim = e->m->cfg.dim;
#pragma omp parallel for num_threads(e->n_threads)
    for (int i = 0; i < n; i++)
        rmsnorm(o + (size_t)i * dim, x + (size_t)i * dim, w->data, dim, e->m->cfg.norm_eps);
}

/* One head over the batch: S = Q K^T / sqrt(hd) (causal), softmax, O = S V,
 * as single-threaded sgemms (heads run in parallel) on K, V rows `ld` floats
 * apart (positions 0..pos+n-1). Query rows go in blocks so each block
 * multiplies only the keys it may see: the causal triangle costs about half
 * the square. */
#define ATT_ROWS 64
static void attend_head_batch(aellm_engine *e, int h, int n, int pos, const float *K,
                              const float *V, int ld, float *S)
{
    int hd = e->head_dim;
    for (int i0 = 0; i0 < n; i0 += ATT_ROWS) {
        int rows = n - i0 < ATT_ROWS ? n - i0 : ATT_ROWS, len = pos + i0 + rows;
        const float *Q = e->q + (size_t)i0 * e->q_dim + (size_t)h * hd;
        float *O = e->xb + (size_t)i0 * e->q_dim + (size_t)h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, len, hd, 1.0f / sqrtf((float)hd),
                    Q, e->q_dim, K, ld, 0.0f, S, len);
        for (int i = 0; i < rows; i++) {
            float *row = S + (size_t)i * len;
            int seen = pos + i0 + i + 1;
            softmax(row, seen);
            memset(row + seen, 0, (size_t)(len - seen) * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, len, 1.0f, S, len, V, ld,
                    0.0f, O, e->q_dim);
    }
}

/* Query head h's keys and values for positions 0..len-1 as f32 rows: the
 * cache itself when it is f32, else KV head kvh dequantized into this
 * thread's scratch (kept while consecutive heads share it: *have). */
static int kv_rows(aellm_engine *e, int l, int kvh, int len, int *have, const float **K,
                   const float **V)
{
    if (e->m->cfg.mla_rank) { /* expanded from the latent */
        float *k = e->kv_f32 + (size_t)omp_get_thread_num() * 2 * e->n_ctx * e->head_dim;
        float *v = k + (size_t)e->n_ctx * e->head_dim;
        if (*have != kvh) aellm_mla_expand(e, l, kvh, len, k, v);
        *have = kvh;
        *K = k, *V = v;
        return e->head_dim;
    }
    if (e->kv_type == AELLM_DTYPE_F32) {
        *K = (const float *)k_at(e, l, kvh, 0);
        *V = (const float *)v_at(e, l, kvh, 0);
        return e->head_dim;
    }
    float *k = e->kv_f32 + (size_t)omp_get_thread_num() * 2 * e->n_ctx * e->head_dim;
    float *v = k + (size_t)e->n_ctx * e->head_dim;
    if (*have != kvh) {
        aellm_attn_load(e->kv_type, e->head_dim, k_at(e, l, kvh, 0), e->kv_head_bytes, len, k,
                        e->head_dim);
        aellm_attn_load(e->kv_type, e->head_dim, v_at(e, l, kvh, 0), e->kv_head_bytes, len, v,
                        e->head_dim);
        *have = kvh;
    }
    *K = k, *V = v;
    return e->head_dim;
}

static void attention_batch(aellm_engine *e, int l, int n, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    int group = c->n_heads / c->n_kv_heads;
#pragma omp parallel num_threads(e->n_threads)
    {
        float *S = e->scores + (size_t)omp_get_thread_num() * e->n_batch * e->n_ctx;
        int have = -1;
        /* static: a thread's heads are consecutive, so a GQA group shares
         * one dequantization */
#pragma omp for schedule(static)
        for (int h = 0; h < c->n_heads; h++) {
            const float *K, *V;
            int ld = kv_rows(e, l, h / group, pos + n, &have, &K, &V);
            attend_head_batch(e, h, n, pos, K, V, ld, S);
        }
    }
}

/* Queries, keys and values of the batch, roped, keys and values cached. */
static void projections(aellm_engine *e, int l, int n, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    linear(e, l, AELLM_LINEAR_WQ, e->xb, n, e->q);
    linear(e, l, AELLM_LINEAR_WK, e->xb, n, e->k_new);
    linear(e, l, AELLM_LINEAR_WV, e->xb, n, e->v_new);
#pragma omp parallel for num_threads(e->n_threads)
    for (int i = 0; i < n; i++) {
        rope(e, e->q + (size_t)i * e->q_dim, c->n_heads, pos + i);
        rope(e, e->k_new + (size_t)i * e->kv_dim, c->n_kv_heads, pos + i);
        store_kv(e, l, i, pos + i);
    }
}

/* The same with latent attention: queries, rotary keys and the latent. */
static void latent_projections(aellm_engine *e, int l, int n, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int per = c->n_heads / c->n_kv_heads, dr = c->mla_rope_dim;
    linear(e, l, AELLM_LINEAR_WQ, e->xb, n, e->q);
    linear(e, l, AELLM_LINEAR_WK, e->xb, n, e->kr_new);
    matmul(e, &L->w_dkv, e->xb, n, e->c_new);
    if (e->hook) e->hook(e->hook_user, l, AELLM_HOOK_LATENT, e->c_new, n, c->mla_rank);
#pragma omp parallel for num_threads(e->n_threads)
    for (int i = 0; i < n; i++) {
        aellm_mla_rope(e, l, e->q + (size_t)i * e->q_dim, c->n_heads, e->head_dim, per, pos + i);
        aellm_mla_rope(e, l, e->kr_new + (size_t)i * c->n_kv_heads * dr, c->n_kv_heads, dr, 1,
                       pos + i);
        aellm_mla_store(e, l, i, pos + i);
    }
}

static void swiglu_rows(aellm_engine *e, int n)
{
    int64_t hidden = e->m->cfg.hidden_dim;
#pragma omp parallel for num_threads(e->n_threads)
    for (int i = 0; i < n; i++)
        swiglu(e->hb + (size_t)i * hidden, e->hb + (size_t)i * hidden, e->hb2 + (size_t)i * hidden,
               hidden);
}

/* Routes the batch's n normalised rows (xb) and lists the token slots
 * (token * k + s) of each expert together in moe_rows; first[x] is where
 * expert x's run starts (first[E] = n * k). */
static void route_batch(aellm_engine *e, int l, int n, int *first)
{
    const aellm_model_config *c = &e->m->cfg;
    int E = c->n_experts, k = c->n_experts_used;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, E, c->dim, 1.0f, e->xb, c->dim,
                e->m->layers[l].ffn_gate_inp.data, c->dim, 0.0f, e->moe_logits, E);
#pragma omp parallel for num_threads(e->n_threads)
    for (int i = 0; i < n; i++) route_token(e, l, i, NULL, 1);
    memset(first, 0, (size_t)(E + 1) * sizeof(int));
    for (int i = 0; i < n * k; i++) first[e->moe_sel[i] + 1]++;
    for (int x = 0; x < E; x++) first[x + 1] += first[x];
    int at[E];
    memcpy(at, first, (size_t)E * sizeof(int));
    for (int i = 0; i < n * k; i++) e->moe_rows[at[e->moe_sel[i]]++] = i;
    for (int x = 0; x < E; x++)
        e->load[(size_t)l * E + x] += (unsigned long long)(first[x + 1] - first[x]);
}

/* The FFN of the batch's normalised rows (xb) into xb2, expert by expert:
 * each multiplies only the rows routed to it (gathered into moe_x), and
 * adds them back weighted. The hook sees the gate/up input whole and each
 * expert's down input. */
static void experts_batch(aellm_engine *e, int l, int n)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int E = c->n_experts, k = c->n_experts_used, dim = c->dim;
    int64_t h = c->hidden_dim;
    int first[E + 1];
    if (e->hook) {
        e->hook(e->hook_user, l, AELLM_LINEAR_W_GATE, e->xb, n, dim);
        e->hook(e->hook_user, l, AELLM_LINEAR_W_UP, e->xb, n, dim);
    }
    route_batch(e, l, n, first);
    memset(e->xb2, 0, (size_t)n * dim * sizeof(float));
    for (int x = 0; x < E; x++) {
        int rows = first[x + 1] - first[x];
        const int *slot = e->moe_rows + first[x];
        if (!rows) continue;
        for (int r = 0; r < rows; r++)
            memcpy(e->moe_x + (size_t)r * dim, e->xb + (size_t)(slot[r] / k) * dim,
                   (size_t)dim * sizeof(float));
        aellm_tensor g = aellm_tensor_rows(&L->w_gate, x * h, h);
        aellm_tensor u = aellm_tensor_rows(&L->w_up, x * h, h);
        aellm_tensor d = aellm_tensor_rows(&L->w_down, (int64_t)x * dim, dim);
        matmul(e, &g, e->moe_x, rows, e->hb);
        matmul(e, &u, e->moe_x, rows, e->hb2);
        swiglu_rows(e, rows);
        if (e->hook) e->hook(e->hook_user, l, AELLM_LINEAR_W_DOWN, e->hb, rows, h);
        matmul(e, &d, e->hb, rows, e->moe_y);
        for (int r = 0; r < rows; r++) {
            float w = e->moe_w[slot[r]], *y = e->xb2 + (size_t)(slot[r] / k) * dim;
            const float *o = e->moe_y + (size_t)r * dim;
            for (int j = 0; j < dim; j++) y[j] += w * o[j];
        }
    }
}

static void prefill_layer(aellm_engine *e, int l, int n, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int dim = c->dim;
    norm_rows(e, e->xb, e->x, &L->attn_norm, n);
    if (c->mla_rank)
        latent_projections(e, l, n, pos);
    else
        projections(e, l, n, pos);
    attention_batch(e, l, n, pos);
    linear(e, l, AELLM_LINEAR_WO, e->xb, n, e->xb2);
    add(e->x, e->xb2, (int64_t)n * dim);
    norm_rows(e, e->xb, e->x, &L->ffn_norm, n);
    if (c->n_experts) {
        experts_batch(e, l, n);
    } else {
        linear(e, l, AELLM_LINEAR_W_GATE, e->xb, n, e->hb);
        linear(e, l, AELLM_LINEAR_W_UP, e->xb, n, e->hb2);
        swiglu_rows(e, n);
        linear(e, l, AELLM_LINEAR_W_DOWN, e->hb, n, e->xb2);
    }
    add(e->x, e->xb2, (int64_t)n * dim);
}

int aellm_forward_prefill(aellm_engine *e, const int32_t *tokens, int n, int pos, float *logits,
                          int all_logits)
{
    const aellm_model *m = e->m;
    int dim = m->cfg.dim;
    for (int i = 0; i < n; i++) embed(e, tokens[i], e->x + (size_t)i * dim);
    for (int l = 0; l < m->cfg.n_layers; l++) prefill_layer(e, l, n, pos);
    if (!logits) return 0;
    int first = all_logits ? 0 : n - 1, rows = n - first;
    norm_rows(e, e->xb, e->x + (size_t)first * dim, &m->output_norm, rows);
    matmul(e, &m->output, e->xb, rows, logits);
    return 0;
}

void aellm_engine_set_hook(aellm_engine *e, aellm_linear_hook hook, void *user)
{
    e->hook = hook;
    e->hook_user = user;
}

int aellm_engine_run_layer(aellm_engine *e, int l, float *x, int n, int pos)
{
    if (l < 0 || l >= e->m->cfg.n_layers || n <= 0 || n > e->n_batch || pos < 0 ||
        pos + n > e->n_ctx)
        return aellm_error_set(AELLM_EINVAL,
                               "layer %d over %d tokens at %d does not fit the engine", l, n, pos);
    size_t bytes = (size_t)n * e->m->cfg.dim * sizeof(float);
    memcpy(e->x, x, bytes);
    prefill_layer(e, l, n, pos);
    memcpy(x, e->x, bytes);
    return 0;
}
