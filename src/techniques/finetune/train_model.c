/* The trainable Llama: parameters, gradients and activations in three
 * blocks laid out up front, the forward that keeps activations and the
 * backward that walks them in reverse (ops.c does the arithmetic). Adapters
 * (LoRA and its kin) attach to the linear maps in their own files; this one
 * is the dense model. */
#include "techniques/finetune/train_model.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "model/model.h"
#include "techniques/finetune/ops.h"

static const char *const param_names[TP_COUNT] = {
    "token_embd.weight", "output.weight",   "output_norm.weight", "attn_norm.weight",
    "attn_q.weight",     "attn_k.weight",   "attn_v.weight",      "attn_output.weight",
    "ffn_norm.weight",   "ffn_gate.weight", "ffn_up.weight",      "ffn_down.weight"};

const char *train_param_name(int which)
{
    return which >= 0 && which < TP_COUNT ? param_names[which] : "?";
}

static void shape_sizes(const train_shape *s, size_t n[TP_COUNT])
{
    size_t C = (size_t)s->C, L = (size_t)s->L, qd = (size_t)s->NH * s->hd,
           kvd = (size_t)s->NKV * s->hd, H = (size_t)s->H;
    n[TP_WTE] = (size_t)s->V * C;
    n[TP_OUT] = s->tied ? 0 : (size_t)s->V * C;
    n[TP_NORM_F] = C;
    n[TP_ATTN_NORM] = L * C;
    n[TP_WQ] = L * qd * C;
    n[TP_WK] = L * kvd * C;
    n[TP_WV] = L * kvd * C;
    n[TP_WO] = L * C * qd;
    n[TP_FFN_NORM] = L * C;
    n[TP_W_GATE] = L * H * C;
    n[TP_W_UP] = L * H * C;
    n[TP_W_DOWN] = L * C * H;
}

/* One block for all the tensors, pointers set in block order. */
static int params_alloc(train_params *p, const train_shape *s, aellm_mem_kind kind,
                        const char *what)
{
    shape_sizes(s, p->n);
    p->total = 0;
    for (int i = 0; i < TP_COUNT; i++) p->total += p->n[i];
    p->block = aellm_mem_alloc(p->total * sizeof(float), kind);
    if (!p->block) return aellm_error_oom(what, p->total * sizeof(float));
    float *at = p->block;
    for (int i = 0; i < TP_COUNT; i++) p->t[i] = at, at += p->n[i];
    if (s->tied) p->t[TP_OUT] = p->t[TP_WTE];
    return 0;
}

/* ---- from the model ---- */

static int copy_tensor(float *dst, const aellm_tensor *t, int64_t ne0, int64_t ne1,
                       const char *name)
{
    if (t->ne[0] != ne0 || t->ne[1] != ne1)
        return aellm_error_set(AELLM_ESHAPE, "training: %s is %lld x %lld, expected %lld x %lld",
                               name, (long long)t->ne[1], (long long)t->ne[0], (long long)ne1,
                               (long long)ne0);
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    if (!tr || !tr->to_float)
        return aellm_error_set(AELLM_EINVAL, "training: %s has a type without a conversion", name);
    for (int64_t r = 0; r < ne1; r++)
        tr->to_float((const char *)t->data + (size_t)r * t->row_bytes, dst + r * ne0, ne0);
    return 0;
}

static int copy_weights(train_model *tm, const aellm_model *m)
{
    const train_shape *s = &tm->s;
    float *const *t = tm->p.t;
    int qd = s->NH * s->hd, kvd = s->NKV * s->hd, rc;
    if ((rc = copy_tensor(t[TP_WTE], &m->tok_embd, s->C, s->V, param_names[TP_WTE]))) return rc;
    if (!s->tied && (rc = copy_tensor(t[TP_OUT], &m->output, s->C, s->V, param_names[TP_OUT])))
        return rc;
    if ((rc = copy_tensor(t[TP_NORM_F], &m->output_norm, s->C, 1, param_names[TP_NORM_F])))
        return rc;
    for (int l = 0; l < s->L; l++) {
        const aellm_layer *ly = &m->layers[l];
        struct {
            int which;
            const aellm_tensor *src;
            int ne0, ne1;
        } map[] = {{TP_ATTN_NORM, &ly->attn_norm, s->C, 1},
                   {TP_WQ, &ly->wq, s->C, qd},
                   {TP_WK, &ly->wk, s->C, kvd},
                   {TP_WV, &ly->wv, s->C, kvd},
                   {TP_WO, &ly->wo, qd, s->C},
                   {TP_FFN_NORM, &ly->ffn_norm, s->C, 1},
                   {TP_W_GATE, &ly->w_gate, s->C, s->H},
                   {TP_W_UP, &ly->w_up, s->C, s->H},
                   {TP_W_DOWN, &ly->w_down, s->H, s->C}};
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            size_t per = tm->p.n[map[i].which] / (size_t)s->L;
            rc = copy_tensor(t[map[i].which] + (size_t)l * per, map[i].src, map[i].ne0, map[i].ne1,
                             param_names[map[i].which]);
            if (rc) return rc;
        }
    }
    return 0;
}

/* ---- activations ---- */

typedef struct {
    float **ptr;
    size_t n;
} slot;

/* Carves one block into the listed buffers (64-byte aligned each). */
static int carve_block(float **block, slot *slots, int n_slots, const char *what)
{
    size_t total = 0;
    for (int i = 0; i < n_slots; i++) total += (slots[i].n + 15) & ~(size_t)15;
    *block = aellm_mem_alloc(total * sizeof(float), AELLM_MEM_ACTIVATIONS);
    if (!*block) return aellm_error_oom(what, total * sizeof(float));
    float *at = *block;
    for (int i = 0; i < n_slots; i++) *slots[i].ptr = at, at += (slots[i].n + 15) & ~(size_t)15;
    return 0;
}

static int activations_alloc(train_model *tm)
{
    const train_shape *s = &tm->s;
    size_t BT = (size_t)s->B * s->T, L = (size_t)s->L, C = (size_t)s->C, H = (size_t)s->H;
    size_t qd = (size_t)s->NH * s->hd, kvd = (size_t)s->NKV * s->hd;
    slot fwd[] = {
        {&tm->x, (L + 1) * BT * C},
        {&tm->xmid, L * BT * C},
        {&tm->an, L * BT * C},
        {&tm->arstd, L * BT},
        {&tm->q, L * BT * qd},
        {&tm->k, L * BT * kvd},
        {&tm->v, L * BT * kvd},
        {&tm->att, L * (size_t)s->B * s->NH * s->T * s->T},
        {&tm->ao, L * BT * qd},
        {&tm->fn, L * BT * C},
        {&tm->frstd, L * BT},
        {&tm->gate, L * BT * H},
        {&tm->up, L * BT * H},
        {&tm->glu, L * BT * H},
        {&tm->xf, BT * C},
        {&tm->xf_rstd, BT},
        {&tm->logits, BT * (size_t)s->V},
        {&tm->losses, BT},
        {&tm->rope_cos, (size_t)s->T * s->hd / 2},
        {&tm->rope_sin, (size_t)s->T * s->hd / 2},
    };
    int rc = carve_block(&tm->act_block, fwd, sizeof(fwd) / sizeof(fwd[0]), "training activations");
    if (rc) return rc;
    slot bwd[] = {
        {&tm->d_res, BT * C},
        {&tm->d_norm, BT * C},
        {&tm->d_q, BT * qd},
        {&tm->d_k, BT * kvd},
        {&tm->d_v, BT * kvd},
        {&tm->d_ao, BT * qd},
        {&tm->d_gate, BT * H},
        {&tm->d_up, BT * H},
        {&tm->d_glu, BT * H},
        {&tm->d_attn, (size_t)train_attention_scratch(s->T, omp_get_max_threads())},
    };
    rc = carve_block(&tm->bwd_block, bwd, sizeof(bwd) / sizeof(bwd[0]), "training gradients");
    if (rc) return rc;
    train_rope_tables(tm->rope_cos, tm->rope_sin, s->T, s->hd, s->rope_base);
    return 0;
}

int train_model_new(train_model **out, const aellm_model *m, int B, int T)
{
    *out = NULL;
    const aellm_model_config *c = &m->cfg;
    if (B < 1 || T < 2 || T > c->seq_len)
        return aellm_error_set(AELLM_EINVAL,
                               "training: batch %d x %d tokens must have B >= 1 and 2 <= T <= %d "
                               "(the model's context)",
                               B, T, c->seq_len);
    train_model *tm = calloc(1, sizeof(*tm));
    if (!tm) return aellm_error_oom("a training model", sizeof(*tm));
    tm->s = (train_shape){.B = B,
                          .T = T,
                          .C = c->dim,
                          .H = c->hidden_dim,
                          .L = c->n_layers,
                          .NH = c->n_heads,
                          .NKV = c->n_kv_heads,
                          .hd = c->head_dim,
                          .V = c->vocab_size,
                          .tied = c->tied_output,
                          .eps = c->norm_eps,
                          .rope_base = c->rope_base};
    int rc = params_alloc(&tm->p, &tm->s, AELLM_MEM_WEIGHTS, "training parameters");
    if (!rc) rc = copy_weights(tm, m);
    if (!rc) rc = activations_alloc(tm);
    if (rc) {
        train_model_free(tm);
        return rc;
    }
    *out = tm;
    return 0;
}

void train_model_free(train_model *tm)
{
    if (!tm) return;
    aellm_mem_free(tm->p.block);
    aellm_mem_free(tm->g.block);
    aellm_mem_free(tm->act_block);
    aellm_mem_free(tm->bwd_block);
    free(tm);
}

size_t train_model_activation_bytes(const train_model *tm)
{
    return aellm_mem_size(tm->act_block) + aellm_mem_size(tm->bwd_block);
}

int train_model_zero_grad(train_model *tm)
{
    if (!tm->g.block) {
        int rc = params_alloc(&tm->g, &tm->s, AELLM_MEM_GRADIENTS, "gradients");
        if (rc) return rc;
    }
    memset(tm->g.block, 0, tm->g.total * sizeof(float));
    return 0;
}

/* ---- forward ---- */

/* Layer l's slice of a stacked parameter (or its gradient). */
static float *layer_of(const train_params *p, int which, int l, int L)
{
    return p->t[which] ? p->t[which] + (size_t)l * (p->n[which] / (size_t)L) : NULL;
}

static size_t at_layer(const train_model *tm, int l, size_t per_token)
{
    return (size_t)l * (size_t)tm->s.B * tm->s.T * per_token;
}

static void layer_forward(train_model *tm, int l)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T, C = s->C, H = s->H, qd = s->NH * s->hd, kvd = s->NKV * s->hd, L = s->L;
    const train_params *p = &tm->p;
    float *x = tm->x + at_layer(tm, l, C), *xnext = tm->x + at_layer(tm, l + 1, C);
    float *xmid = tm->xmid + at_layer(tm, l, C), *an = tm->an + at_layer(tm, l, C);
    float *q = tm->q + at_layer(tm, l, qd), *k = tm->k + at_layer(tm, l, kvd);
    float *v = tm->v + at_layer(tm, l, kvd), *ao = tm->ao + at_layer(tm, l, qd);
    float *att = tm->att + at_layer(tm, l, (size_t)s->NH * s->T);
    float *fn = tm->fn + at_layer(tm, l, C), *gate = tm->gate + at_layer(tm, l, H);
    float *up = tm->up + at_layer(tm, l, H), *glu = tm->glu + at_layer(tm, l, H);

    train_rmsnorm_forward(an, tm->arstd + (size_t)l * BT, x, layer_of(p, TP_ATTN_NORM, l, L), BT, C,
                          s->eps);
    train_matmul_forward(q, an, layer_of(p, TP_WQ, l, L), BT, C, qd);
    train_matmul_forward(k, an, layer_of(p, TP_WK, l, L), BT, C, kvd);
    train_matmul_forward(v, an, layer_of(p, TP_WV, l, L), BT, C, kvd);
    train_rope_forward(q, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NH, s->hd);
    train_rope_forward(k, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NKV, s->hd);
    train_attention_forward(ao, att, q, k, v, s->B, s->T, s->NH, s->NKV, s->hd);
    train_matmul_forward(xmid, ao, layer_of(p, TP_WO, l, L), BT, qd, C);
    train_residual_forward(xmid, x, (int64_t)BT * C);

    train_rmsnorm_forward(fn, tm->frstd + (size_t)l * BT, xmid, layer_of(p, TP_FFN_NORM, l, L), BT,
                          C, s->eps);
    train_matmul_forward(gate, fn, layer_of(p, TP_W_GATE, l, L), BT, C, H);
    train_matmul_forward(up, fn, layer_of(p, TP_W_UP, l, L), BT, C, H);
    train_swiglu_forward(glu, gate, up, (int64_t)BT * H);
    train_matmul_forward(xnext, glu, layer_of(p, TP_W_DOWN, l, L), BT, H, C);
    train_residual_forward(xnext, xmid, (int64_t)BT * C);
}

double train_model_forward(train_model *tm, const int32_t *inputs, const int32_t *targets,
                           const float *weight)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T;
    train_embed_forward(tm->x, inputs, tm->p.t[TP_WTE], BT, s->C);
    for (int l = 0; l < s->L; l++) layer_forward(tm, l);
    train_rmsnorm_forward(tm->xf, tm->xf_rstd, tm->x + at_layer(tm, s->L, s->C), tm->p.t[TP_NORM_F],
                          BT, s->C, s->eps);
    train_matmul_forward(tm->logits, tm->xf, tm->p.t[TP_OUT], BT, s->C, s->V);
    tm->targets = targets;
    tm->weight = weight;
    tm->loss = train_crossentropy_forward(tm->logits, tm->losses, targets, weight, BT, s->V);
    return tm->loss;
}

/* ---- backward ---- */

static void zero(float *p, size_t n)
{
    memset(p, 0, n * sizeof(float));
}

/* d_res holds dL/d(layer l's output); leaves dL/d(layer l's input) there. */
static void layer_backward(train_model *tm, int l)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T, C = s->C, H = s->H, qd = s->NH * s->hd, kvd = s->NKV * s->hd, L = s->L;
    const train_params *p = &tm->p, *g = &tm->g;
    float *x = tm->x + at_layer(tm, l, C), *xmid = tm->xmid + at_layer(tm, l, C);
    float *an = tm->an + at_layer(tm, l, C), *fn = tm->fn + at_layer(tm, l, C);
    float *q = tm->q + at_layer(tm, l, qd), *k = tm->k + at_layer(tm, l, kvd);
    float *v = tm->v + at_layer(tm, l, kvd), *ao = tm->ao + at_layer(tm, l, qd);
    float *att = tm->att + at_layer(tm, l, (size_t)s->NH * s->T);
    float *gate = tm->gate + at_layer(tm, l, H), *up = tm->up + at_layer(tm, l, H);
    float *glu = tm->glu + at_layer(tm, l, H);

    /* FFN: x_out = xmid + W_down swiglu(W_gate fn, W_up fn), fn = norm(xmid) */
    zero(tm->d_glu, (size_t)BT * H);
    train_matmul_backward(tm->d_glu, layer_of(g, TP_W_DOWN, l, L), tm->d_res, glu,
                          layer_of(p, TP_W_DOWN, l, L), BT, H, C);
    zero(tm->d_gate, (size_t)BT * H);
    zero(tm->d_up, (size_t)BT * H);
    train_swiglu_backward(tm->d_gate, tm->d_up, tm->d_glu, gate, up, (int64_t)BT * H);
    zero(tm->d_norm, (size_t)BT * C);
    train_matmul_backward(tm->d_norm, layer_of(g, TP_W_GATE, l, L), tm->d_gate, fn,
                          layer_of(p, TP_W_GATE, l, L), BT, C, H);
    train_matmul_backward(tm->d_norm, layer_of(g, TP_W_UP, l, L), tm->d_up, fn,
                          layer_of(p, TP_W_UP, l, L), BT, C, H);
    /* the residual passes d_res through; the norm adds its part */
    train_rmsnorm_backward(tm->d_res, layer_of(g, TP_FFN_NORM, l, L), tm->d_norm, xmid,
                           layer_of(p, TP_FFN_NORM, l, L), tm->frstd + (size_t)l * BT, BT, C);

    /* attention: xmid = x + W_o attn(rope(W_q an), rope(W_k an), W_v an), an = norm(x) */
    zero(tm->d_ao, (size_t)BT * qd);
    train_matmul_backward(tm->d_ao, layer_of(g, TP_WO, l, L), tm->d_res, ao,
                          layer_of(p, TP_WO, l, L), BT, qd, C);
    zero(tm->d_q, (size_t)BT * qd);
    zero(tm->d_k, (size_t)BT * kvd);
    zero(tm->d_v, (size_t)BT * kvd);
    train_attention_backward(tm->d_q, tm->d_k, tm->d_v, tm->d_ao, att, q, k, v, s->B, s->T, s->NH,
                             s->NKV, s->hd, tm->d_attn);
    train_rope_backward(tm->d_q, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NH, s->hd);
    train_rope_backward(tm->d_k, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NKV, s->hd);
    zero(tm->d_norm, (size_t)BT * C);
    train_matmul_backward(tm->d_norm, layer_of(g, TP_WQ, l, L), tm->d_q, an,
                          layer_of(p, TP_WQ, l, L), BT, C, qd);
    train_matmul_backward(tm->d_norm, layer_of(g, TP_WK, l, L), tm->d_k, an,
                          layer_of(p, TP_WK, l, L), BT, C, kvd);
    train_matmul_backward(tm->d_norm, layer_of(g, TP_WV, l, L), tm->d_v, an,
                          layer_of(p, TP_WV, l, L), BT, C, kvd);
    train_rmsnorm_backward(tm->d_res, layer_of(g, TP_ATTN_NORM, l, L), tm->d_norm, x,
                           layer_of(p, TP_ATTN_NORM, l, L), tm->arstd + (size_t)l * BT, BT, C);
}

void train_model_backward(train_model *tm, const int32_t *inputs)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T;
    const train_params *p = &tm->p, *g = &tm->g;
    train_crossentropy_backward(tm->logits, tm->targets, tm->weight, BT, s->V);
    zero(tm->d_norm, (size_t)BT * s->C);
    train_matmul_backward(tm->d_norm, g->t[TP_OUT], tm->logits, tm->xf, p->t[TP_OUT], BT, s->C,
                          s->V);
    zero(tm->d_res, (size_t)BT * s->C);
    train_rmsnorm_backward(tm->d_res, g->t[TP_NORM_F], tm->d_norm, tm->x + at_layer(tm, s->L, s->C),
                           p->t[TP_NORM_F], tm->xf_rstd, BT, s->C);
    for (int l = s->L - 1; l >= 0; l--) layer_backward(tm, l);
    if (g->t[TP_WTE]) train_embed_backward(g->t[TP_WTE], tm->d_res, inputs, BT, s->C);
}
