/* The trainable Llama: parameters, gradients and activations in three
 * blocks laid out up front, the forward that keeps activations and the
 * backward that walks them in reverse (ops.c does the arithmetic). Adapters
 * (LoRA and its kin) attach to the linear maps in their own files; this one
 * is the dense model. */
#include "techniques/finetune/train_model.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/model.h"
#include "techniques/finetune/ops.h"

static const char *const param_names[TP_COUNT] = {
    "token_embd.weight",   "output.weight",    "output_norm.weight", "attn_norm.weight",
    "attn_q.weight",       "attn_k.weight",    "attn_v.weight",      "attn_output.weight",
    "ffn_norm.weight",     "ffn_gate.weight",  "ffn_up.weight",      "ffn_down.weight",
    "ffn_gate_inp.weight", "attn_k_up.weight", "attn_v_up.weight"};

const char *train_param_name(int which)
{
    return which >= 0 && which < TP_COUNT ? param_names[which] : "?";
}

const char *train_method_name(train_method_kind k)
{
    static const char *const names[TRAIN_METHOD_COUNT] = {"full", "lora", "rslora", "dora",
                                                          "qlora"};
    return k >= 0 && k < TRAIN_METHOD_COUNT ? names[k] : "?";
}

/* The parameter of each layer matrix (aellm_linear order). */
static const int linear_param[AELLM_LINEAR_COUNT] = {TP_WQ,     TP_WK,   TP_WV,    TP_WO,
                                                     TP_W_GATE, TP_W_UP, TP_W_DOWN};

static int is_layer_matrix(int which)
{
    for (int i = 0; i < AELLM_LINEAR_COUNT; i++)
        if (linear_param[i] == which) return 1;
    return 0;
}

/* Input and output widths of layer matrix i. */
static void linear_dims(const train_shape *s, int i, int *C, int *OC)
{
    int qd = s->NH * s->hd, kvd = s->NKV * s->hd;
    const int in[AELLM_LINEAR_COUNT] = {s->C, s->C, s->C, qd, s->C, s->C, s->H};
    const int out[AELLM_LINEAR_COUNT] = {
        qd, s->R ? s->NKV * s->DR : kvd, s->R ? s->R : kvd, s->C, s->H, s->H, s->C};
    *C = in[i], *OC = out[i];
}

static int quantized_base(const train_model *tm)
{
    return tm->method.kind == TRAIN_QLORA;
}

static void shape_sizes(const train_shape *s, int qlora, size_t n[TP_COUNT])
{
    size_t C = (size_t)s->C, L = (size_t)s->L, qd = (size_t)s->NH * s->hd,
           kvd = (size_t)s->NKV * s->hd, H = (size_t)s->H;
    n[TP_WTE] = (size_t)s->V * C;
    n[TP_OUT] = s->tied ? 0 : (size_t)s->V * C;
    n[TP_NORM_F] = C;
    n[TP_ATTN_NORM] = L * C;
    n[TP_WQ] = L * qd * C;
    n[TP_WK] = L * (s->R ? (size_t)s->NKV * s->DR : kvd) * C;
    n[TP_WV] = L * (s->R ? (size_t)s->R : kvd) * C;
    n[TP_W_UK] = L * (size_t)s->NKV * (s->hd - s->DR) * s->R;
    n[TP_W_UV] = L * kvd * s->R;
    n[TP_WO] = L * C * qd;
    n[TP_FFN_NORM] = L * C;
    n[TP_W_GATE] = L * H * C;
    n[TP_W_UP] = L * H * C;
    n[TP_W_DOWN] = L * C * H;
    n[TP_ROUTER] = L * (size_t)s->E * C;
    for (int i = 0; qlora && i < TP_COUNT; i++)
        if (is_layer_matrix(i)) n[i] = 0; /* NF4, in their own block */
}

/* One block for all the tensors, pointers set in block order. */
static int params_alloc(train_params *p, const train_shape *s, int qlora, aellm_mem_kind kind,
                        const char *what)
{
    shape_sizes(s, qlora, p->n);
    p->total = 0;
    for (int i = 0; i < TP_COUNT; i++) p->total += p->n[i];
    p->block = aellm_mem_alloc(p->total * sizeof(float), kind);
    if (!p->block) return aellm_error_oom(what, p->total * sizeof(float));
    float *at = p->block;
    for (int i = 0; i < TP_COUNT; i++) p->t[i] = p->n[i] ? at : NULL, at += p->n[i];
    if (s->tied) p->t[TP_OUT] = p->t[TP_WTE];
    return 0;
}

/* ---- from the model ---- */

/* Whether t is ne1 rows of ne0 in a type training can read. */
static int check_source(const aellm_tensor *t, int64_t ne0, int64_t ne1, const char *name)
{
    if (t->ne[0] != ne0 || t->ne[1] != ne1)
        return aellm_error_set(AELLM_ESHAPE, "training: %s is %lld x %lld, expected %lld x %lld",
                               name, (long long)t->ne[1], (long long)t->ne[0], (long long)ne1,
                               (long long)ne0);
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    if (!tr || !tr->to_float)
        return aellm_error_set(AELLM_EINVAL, "training: %s has a type without a conversion", name);
    return 0;
}

static int copy_tensor(float *dst, const aellm_tensor *t, int64_t ne0, int64_t ne1,
                       const char *name)
{
    int rc = check_source(t, ne0, ne1, name);
    if (rc) return rc;
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    for (int64_t r = 0; r < ne1; r++)
        tr->to_float((const char *)t->data + (size_t)r * t->row_bytes, dst + r * ne0, ne0);
    return 0;
}

/* With latent attention the "v" map is the latent's down-projection. */
static const aellm_tensor *model_matrix(const aellm_model *m, int l, int i)
{
    if (m->cfg.mla_rank && i == AELLM_LINEAR_WV) return &m->layers[l].w_dkv;
    return aellm_layer_linear(&m->layers[l], i);
}

/* Row r of a layer matrix as training holds it. An MoE's w_down is stored
 * as E stacked (C, h) experts and held as one (C, E*h): row r is the
 * experts' rows r side by side. */
static void matrix_row(const aellm_tensor *t, int moe_down, int E, int C, int r, float *row)
{
    aellm_to_float_fn to_float = aellm_dtype_traits_get(t->type)->to_float;
    if (!moe_down) {
        to_float((const char *)t->data + (size_t)r * t->row_bytes, row, t->ne[0]);
        return;
    }
    for (int e = 0; e < E; e++)
        to_float((const char *)t->data + ((size_t)e * C + r) * t->row_bytes,
                 row + (size_t)e * t->ne[0], t->ne[0]);
}

/* A layer matrix into its train_linear's base: F32, or NF4 row by row. */
static int copy_matrix(const train_shape *s, train_linear *lin, const aellm_tensor *t, int i,
                       const char *name, float *row)
{
    int moe_down = s->E && i == AELLM_LINEAR_W_DOWN;
    int64_t ne0 = moe_down ? s->h : lin->C, ne1 = moe_down ? (int64_t)s->E * s->C : lin->OC;
    int rc = check_source(t, ne0, ne1, name);
    if (rc) return rc;
    for (int r = 0; r < lin->OC; r++) {
        if (lin->w) {
            matrix_row(t, moe_down, s->E, s->C, r, (float *)lin->w + (size_t)r * lin->C);
            continue;
        }
        matrix_row(t, moe_down, s->E, s->C, r, row);
        aellm_dtype_traits_get(lin->wq_type)
            ->from_float(row, (char *)lin->wq + (size_t)r * lin->wq_row_bytes, lin->C);
    }
    return 0;
}

/* Latent attention's up-projections and rotary pair table. */
static int copy_latent(train_model *tm, const aellm_model *m, int l)
{
    const train_shape *s = &tm->s;
    const aellm_layer *ly = &m->layers[l];
    int dn = s->hd - s->DR, pairs = s->DR / 2;
    int rc = dn == 0 ? 0 /* every pair rotary: no position-free keys */
                     : copy_tensor(tm->p.t[TP_W_UK] + (size_t)l * s->NKV * dn * s->R, &ly->w_uk,
                                   s->R, (int64_t)s->NKV * dn, param_names[TP_W_UK]);
    if (!rc)
        rc = copy_tensor(tm->p.t[TP_W_UV] + (size_t)l * s->NKV * s->hd * s->R, &ly->w_uv, s->R,
                         (int64_t)s->NKV * s->hd, param_names[TP_W_UV]);
    const float *p = ly->rope_pairs.data;
    for (int i = 0; !rc && i < s->NKV * pairs; i++)
        tm->rope_idx[(size_t)l * s->NKV * pairs + i] = (int)p[i];
    return rc;
}

static int copy_weights(train_model *tm, const aellm_model *m)
{
    const train_shape *s = &tm->s;
    float *const *t = tm->p.t;
    int rc;
    if ((rc = copy_tensor(t[TP_WTE], &m->tok_embd, s->C, s->V, param_names[TP_WTE]))) return rc;
    if (!s->tied && (rc = copy_tensor(t[TP_OUT], &m->output, s->C, s->V, param_names[TP_OUT])))
        return rc;
    if ((rc = copy_tensor(t[TP_NORM_F], &m->output_norm, s->C, 1, param_names[TP_NORM_F])))
        return rc;
    float *row = malloc((size_t)(s->C > s->H ? s->C : s->H) * sizeof(float));
    if (!row) return aellm_error_oom("a row", (size_t)s->H * 4);
    for (int l = 0; !rc && l < s->L; l++) {
        const aellm_layer *ly = &m->layers[l];
        rc = copy_tensor(t[TP_ATTN_NORM] + (size_t)l * s->C, &ly->attn_norm, s->C, 1,
                         param_names[TP_ATTN_NORM]);
        if (!rc)
            rc = copy_tensor(t[TP_FFN_NORM] + (size_t)l * s->C, &ly->ffn_norm, s->C, 1,
                             param_names[TP_FFN_NORM]);
        for (int i = 0; !rc && i < AELLM_LINEAR_COUNT; i++)
            rc = copy_matrix(s, &tm->lin[l * AELLM_LINEAR_COUNT + i], model_matrix(m, l, i), i,
                             param_names[linear_param[i]], row);
        if (!rc && s->E)
            rc = copy_tensor(t[TP_ROUTER] + (size_t)l * s->E * s->C, &ly->ffn_gate_inp, s->C, s->E,
                             param_names[TP_ROUTER]);
        if (!rc && s->R) rc = copy_latent(tm, m, l);
    }
    free(row);
    return rc;
}

/* The layer matrices: dense views into the parameter block, or (QLoRA) NF4
 * rows in a block of their own. */
static int setup_linears(train_model *tm)
{
    const train_shape *s = &tm->s;
    int n = s->L * AELLM_LINEAR_COUNT;
    tm->lin = calloc((size_t)n, sizeof(train_linear));
    if (!tm->lin) return aellm_error_oom("linear maps", (size_t)n * sizeof(train_linear));
    size_t qbytes = 0;
    for (int k = 0; k < n; k++) {
        train_linear *lin = &tm->lin[k];
        int l = k / AELLM_LINEAR_COUNT, i = k % AELLM_LINEAR_COUNT;
        linear_dims(s, i, &lin->C, &lin->OC);
        if (quantized_base(tm)) {
            lin->wq_type = AELLM_DTYPE_NF4;
            lin->wq_row_bytes = aellm_dtype_row_size(AELLM_DTYPE_NF4, lin->C);
            qbytes += ((lin->wq_row_bytes * (size_t)lin->OC) + 63) & ~(size_t)63;
        } else
            lin->w = tm->p.t[linear_param[i]] + (size_t)l * lin->C * lin->OC;
    }
    if (!qbytes) return 0;
    if (!(tm->q_block = aellm_mem_alloc(qbytes, AELLM_MEM_WEIGHTS)))
        return aellm_error_oom("the NF4 base", qbytes);
    char *at = tm->q_block;
    for (int k = 0; k < n; k++) {
        tm->lin[k].wq = at;
        at += ((tm->lin[k].wq_row_bytes * (size_t)tm->lin[k].OC) + 63) & ~(size_t)63;
    }
    return 0;
}

/* ---- adapters ---- */

static int has_adapter(const train_model *tm, int k)
{
    return tm->method.kind != TRAIN_FULL && (tm->method.targets >> (k % AELLM_LINEAR_COUNT) & 1);
}

/* Floats of target k's adapter: A (r, C), B (OC, r), DoRA's m (OC). */
static size_t adapter_floats(const train_model *tm, int k)
{
    const train_linear *lin = &tm->lin[k];
    size_t r = (size_t)tm->method.rank;
    return r * lin->C + (size_t)lin->OC * r + (tm->method.kind == TRAIN_DORA ? (size_t)lin->OC : 0);
}

static void point_adapter(train_model *tm, int k, float *at, int grads)
{
    train_adapter *a = &tm->lin[k].ad;
    size_t r = (size_t)tm->method.rank, C = (size_t)tm->lin[k].C, OC = (size_t)tm->lin[k].OC;
    float **A = grads ? &a->dA : &a->A, **B = grads ? &a->dB : &a->B, **m = grads ? &a->dm : &a->m;
    *A = at;
    *B = at + r * C;
    if (tm->method.kind == TRAIN_DORA) *m = at + r * C + OC * r;
}

/* PEFT's initialisation: A ~ U(-1/sqrt(C), 1/sqrt(C)) (Kaiming-uniform with
 * a = sqrt(5)), B = 0; DoRA's m = ||W|| per output row. The model starts as
 * the base. */
static void init_adapter(train_model *tm, int k, aellm_rng *rng)
{
    train_linear *lin = &tm->lin[k];
    train_adapter *a = &lin->ad;
    float bound = 1.0f / sqrtf((float)lin->C);
    for (size_t j = 0; j < (size_t)a->r * lin->C; j++)
        a->A[j] = (2.0f * aellm_rng_f32(rng) - 1.0f) * bound;
    if (a->kind != TRAIN_ADAPTER_DORA) return;
    float *row = a->y0; /* any scratch of C floats: the base's rows, dequantized */
    for (int o = 0; o < lin->OC; o++) {
        const float *w = lin->w ? lin->w + (size_t)o * lin->C : row;
        if (!lin->w)
            aellm_dtype_traits_get(lin->wq_type)
                ->to_float((const char *)lin->wq + (size_t)o * lin->wq_row_bytes, row, lin->C);
        double ss = 0.0;
        for (int c = 0; c < lin->C; c++) ss += (double)w[c] * w[c];
        a->m[o] = (float)sqrt(ss);
    }
}

static float adapter_scale(const train_method *m)
{
    return m->kind == TRAIN_RSLORA ? m->alpha / sqrtf((float)m->rank) : m->alpha / (float)m->rank;
}

static int adapters_alloc(train_model *tm)
{
    int n = tm->s.L * AELLM_LINEAR_COUNT;
    tm->ad_total = 0;
    for (int k = 0; k < n; k++)
        if (has_adapter(tm, k)) tm->ad_total += adapter_floats(tm, k);
    if (!tm->ad_total) return 0;
    if (!(tm->ad_block = aellm_mem_alloc(tm->ad_total * sizeof(float), AELLM_MEM_WEIGHTS)))
        return aellm_error_oom("adapters", tm->ad_total * sizeof(float));
    float *at = tm->ad_block;
    for (int k = 0; k < n; k++) {
        if (!has_adapter(tm, k)) continue;
        train_adapter *a = &tm->lin[k].ad;
        a->kind = tm->method.kind == TRAIN_DORA ? TRAIN_ADAPTER_DORA : TRAIN_ADAPTER_LORA;
        a->r = tm->method.rank;
        a->scale = adapter_scale(&tm->method);
        a->dropout = tm->method.dropout;
        point_adapter(tm, k, at, 0);
        at += adapter_floats(tm, k);
    }
    return 0;
}

static int check_method(const train_method *m, const train_shape *s)
{
    if (m->kind < 0 || m->kind >= TRAIN_METHOD_COUNT)
        return aellm_error_set(AELLM_EINVAL, "training: unknown method %d", (int)m->kind);
    if (m->kind == TRAIN_FULL) return 0;
    if (!(m->targets & ((1u << AELLM_LINEAR_COUNT) - 1)))
        return aellm_error_set(AELLM_EINVAL, "training: %s needs at least one target matrix",
                               train_method_name(m->kind));
    if (s->E && (m->targets >> AELLM_LINEAR_W_GATE))
        return aellm_error_set(
            AELLM_EINVAL,
            "training: %s adapters on a mixture of experts' FFN are not "
            "supported (targets q, k, v, o; full fine-tuning trains the experts)",
            train_method_name(m->kind));
    int smallest = s->C;
    for (int i = 0; i < AELLM_LINEAR_COUNT; i++) {
        int C, OC;
        linear_dims(s, i, &C, &OC);
        if (m->targets >> i & 1) smallest = C < smallest ? C : OC < smallest ? OC : smallest;
    }
    if (m->rank < 1 || m->rank > smallest)
        return aellm_error_set(AELLM_EINVAL,
                               "training: rank %d must be in [1, %d] (the smallest width of a "
                               "target matrix)",
                               m->rank, smallest);
    if (!(m->alpha > 0)) return aellm_error_set(AELLM_EINVAL, "training: alpha must be > 0");
    if (!(m->dropout >= 0 && m->dropout < 0.9f))
        return aellm_error_set(AELLM_EINVAL, "training: dropout %g must be in [0, 0.9)",
                               (double)m->dropout);
    if (m->dropout > 0 && m->kind == TRAIN_DORA)
        return aellm_error_set(AELLM_EINVAL, "training: adapter dropout applies to lora, rslora "
                                             "and qlora, not dora");
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

static size_t linear_scratch(const train_model *tm)
{
    size_t most = 0, BT = (size_t)tm->s.B * tm->s.T;
    for (int k = 0; k < tm->s.L * AELLM_LINEAR_COUNT; k++) {
        size_t n = train_linear_scratch(&tm->lin[k], (int)BT);
        most = n > most ? n : most;
    }
    return most;
}

/* What each adapter's forward keeps for its backward: x.A^T (LoRA), and
 * DoRA's V, row norms and pre-magnitude output. One block for all. */
static int adapter_activations_alloc(train_model *tm)
{
    int n = tm->s.L * AELLM_LINEAR_COUNT, BT = tm->s.B * tm->s.T, used = 0;
    slot *slots = calloc((size_t)n * 6 + 1, sizeof(slot));
    if (!slots) return aellm_error_oom("adapter activations", (size_t)n * 6 * sizeof(slot));
    for (int k = 0; k < n; k++) {
        train_adapter *a = &tm->lin[k].ad;
        size_t OC = (size_t)tm->lin[k].OC, C = (size_t)tm->lin[k].C;
        if (a->kind == TRAIN_ADAPTER_NONE) continue;
        slots[used++] = (slot){&a->xa, (size_t)BT * a->r};
        if (a->dropout > 0) {
            slots[used++] = (slot){&a->drop, (size_t)BT * C};
            slots[used++] = (slot){&a->xd, (size_t)BT * C};
        }
        if (a->kind != TRAIN_ADAPTER_DORA) continue;
        slots[used++] = (slot){&a->V, OC * C};
        slots[used++] = (slot){&a->norm, OC};
        slots[used++] = (slot){&a->y0, (size_t)BT * OC > C ? (size_t)BT * OC : C};
    }
    int rc = used ? carve_block(&tm->ad_act_block, slots, used, "adapter activations") : 0;
    free(slots);
    return rc;
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
        {&tm->probs, L * BT * (size_t)s->E},
        {&tm->wts, L * BT * (size_t)s->E},
        {&tm->gluw, s->E ? L * BT * H : 0},
        {&tm->frac, L * (size_t)s->E},
        {&tm->lat, L * BT * (size_t)s->R},
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
        {&tm->d_route, BT * (size_t)s->E},
        {&tm->d_wts, BT * (size_t)s->E},
        {&tm->kr_s, BT * (size_t)s->NKV * s->DR},
        {&tm->kn_s, s->R ? BT * (size_t)s->NKV * (s->hd - s->DR) : 0},
        {&tm->d_lat, BT * (size_t)s->R},
        {&tm->d_attn, (size_t)train_attention_scratch(s->T, omp_get_max_threads())},
        {&tm->lin_scratch, linear_scratch(tm)},
    };
    rc = carve_block(&tm->bwd_block, bwd, sizeof(bwd) / sizeof(bwd[0]), "training gradients");
    if (rc) return rc;
    train_rope_tables(tm->rope_cos, tm->rope_sin, s->T, s->hd, s->rope_base);
    return adapter_activations_alloc(tm);
}

static train_shape shape_of(const aellm_model_config *c, int B, int T)
{
    int E = c->n_experts;
    return (train_shape){.B = B,
                         .T = T,
                         .C = c->dim,
                         .H = c->hidden_dim * (E ? E : 1),
                         .E = E,
                         .K = c->n_experts_used,
                         .h = c->hidden_dim,
                         .R = c->mla_rank,
                         .DR = c->mla_rope_dim,
                         .L = c->n_layers,
                         .NH = c->n_heads,
                         .NKV = c->n_kv_heads,
                         .hd = c->head_dim,
                         .V = c->vocab_size,
                         .tied = c->tied_output,
                         .eps = c->norm_eps,
                         .rope_base = c->rope_base};
}

int train_model_check(const aellm_model_config *shape, const train_method *method)
{
    train_shape s = shape_of(shape, 1, 2);
    return check_method(method, &s);
}

int train_model_new(train_model **out, const aellm_model *m, int B, int T,
                    const train_method *method)
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
    tm->s = shape_of(c, B, T);
    size_t pairs = (size_t)c->n_layers * c->n_kv_heads * (c->mla_rope_dim / 2);
    if (c->mla_rank && !(tm->rope_idx = malloc(pairs * sizeof(int)))) {
        free(tm);
        return aellm_error_oom("rotary pairs", pairs * sizeof(int));
    }
    tm->method = method ? *method : (train_method){.kind = TRAIN_FULL};
    int rc = check_method(&tm->method, &tm->s);
    if (!rc)
        rc = params_alloc(&tm->p, &tm->s, quantized_base(tm), AELLM_MEM_WEIGHTS,
                          "training parameters");
    if (!rc) rc = setup_linears(tm);
    if (!rc) rc = copy_weights(tm, m);
    if (!rc) rc = adapters_alloc(tm);
    if (!rc) rc = activations_alloc(tm);
    if (!rc) {
        aellm_rng rng;
        aellm_rng_seed(&rng, tm->method.seed ? tm->method.seed : 1);
        for (int k = 0; k < tm->s.L * AELLM_LINEAR_COUNT; k++)
            if (has_adapter(tm, k)) init_adapter(tm, k, &rng);
    }
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
    aellm_mem_free(tm->q_block);
    aellm_mem_free(tm->ad_block);
    aellm_mem_free(tm->ad_grad);
    aellm_mem_free(tm->act_block);
    aellm_mem_free(tm->bwd_block);
    aellm_mem_free(tm->ad_act_block);
    free(tm->lin);
    free(tm->rope_idx);
    free(tm);
}

size_t train_model_activation_bytes(const train_model *tm)
{
    return aellm_mem_size(tm->act_block) + aellm_mem_size(tm->bwd_block) +
           aellm_mem_size(tm->ad_act_block);
}

/* Full fine-tuning: a gradient for every parameter, the layer matrices' via
 * their linear maps. */
static int full_grads(train_model *tm)
{
    if (!tm->g.block) {
        int rc = params_alloc(&tm->g, &tm->s, 0, AELLM_MEM_GRADIENTS, "gradients");
        if (rc) return rc;
        for (int k = 0; k < tm->s.L * AELLM_LINEAR_COUNT; k++) {
            train_linear *lin = &tm->lin[k];
            lin->dw = tm->g.t[linear_param[k % AELLM_LINEAR_COUNT]] +
                      (size_t)(k / AELLM_LINEAR_COUNT) * lin->C * lin->OC;
        }
    }
    memset(tm->g.block, 0, tm->g.total * sizeof(float));
    return 0;
}

/* Adapters: gradients of A, B (and m) only; the base has none. */
static int adapter_grads(train_model *tm)
{
    if (!tm->ad_grad) {
        tm->ad_grad = aellm_mem_alloc(tm->ad_total * sizeof(float), AELLM_MEM_GRADIENTS);
        if (!tm->ad_grad) return aellm_error_oom("adapter gradients", tm->ad_total * sizeof(float));
        float *at = tm->ad_grad;
        for (int k = 0; k < tm->s.L * AELLM_LINEAR_COUNT; k++)
            if (has_adapter(tm, k)) point_adapter(tm, k, at, 1), at += adapter_floats(tm, k);
    }
    memset(tm->ad_grad, 0, tm->ad_total * sizeof(float));
    return 0;
}

int train_model_zero_grad(train_model *tm)
{
    return tm->method.kind == TRAIN_FULL ? full_grads(tm) : adapter_grads(tm);
}

int train_model_groups(const train_model *tm, train_optim_group *out, int cap)
{
    int n = 0;
    if (tm->method.kind == TRAIN_FULL) {
        for (int i = 0; i < TP_COUNT && n < cap; i++) {
            int embedding = i == TP_WTE || (i == TP_OUT && tm->s.tied);
            if (!tm->p.n[i] || (embedding && tm->method.freeze_embeddings)) continue;
            if (i == TP_OUT && tm->method.freeze_embeddings) continue;
            int norm = i == TP_NORM_F || i == TP_ATTN_NORM || i == TP_FFN_NORM;
            out[n++] = (train_optim_group){tm->p.t[i], tm->g.t[i], tm->p.n[i], !norm};
        }
        return n;
    }
    if (cap > 0 && tm->ad_total) /* A, B and DoRA's m, all decayed (as PEFT under HF's Trainer) */
        out[n++] = (train_optim_group){tm->ad_block, tm->ad_grad, tm->ad_total, 1};
    return n;
}

int64_t train_model_n_trainable(const train_model *tm)
{
    train_optim_group g[TP_COUNT];
    int n = train_model_groups(tm, g, TP_COUNT);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += (int64_t)g[i].n;
    return total;
}

void train_model_merged_matrix(const train_model *tm, int l, int which, float *out)
{
    train_linear_effective(&tm->lin[l * AELLM_LINEAR_COUNT + which], out);
}

/* ---- forward ---- */

/* Layer l's slice of a stacked parameter (or its gradient). */
static float *layer_of(const train_params *p, int which, int l, int L)
{
    return p->t[which] ? p->t[which] + (size_t)l * (p->n[which] / (size_t)L) : NULL;
}

/* Layer l's matrix `which` (aellm_linear), inside layer_forward/backward. */
#define LIN(which) (&tm->lin[l * AELLM_LINEAR_COUNT + (which)])

static size_t at_layer(const train_model *tm, int l, size_t per_token)
{
    return (size_t)l * (size_t)tm->s.B * tm->s.T * per_token;
}

/* Latent attention: the rotary keys and the latent from an, keys and values
 * from the latent, rotary parts roped (queries included). */
static void latent_forward(train_model *tm, int l, const float *an, float *q, float *k, float *v)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T, dn = s->hd - s->DR, pairs = s->DR / 2;
    float *lat = tm->lat + at_layer(tm, l, s->R);
    const int *idx = tm->rope_idx + (size_t)l * s->NKV * pairs;
    train_linear_forward(LIN(AELLM_LINEAR_WK), tm->kr_s, an, BT, tm->lin_scratch);
    train_linear_forward(LIN(AELLM_LINEAR_WV), lat, an, BT, tm->lin_scratch);
    if (dn > 0)
        train_matmul_forward(tm->kn_s, lat, layer_of(&tm->p, TP_W_UK, l, s->L), BT, s->R,
                             s->NKV * dn);
    train_matmul_forward(v, lat, layer_of(&tm->p, TP_W_UV, l, s->L), BT, s->R, s->NKV * s->hd);
    train_mla_rope_forward(q, tm->rope_cos, tm->rope_sin, idx, s->B, s->T, s->NH, s->hd,
                           s->NH / s->NKV, pairs, s->hd / 2);
    train_mla_rope_forward(tm->kr_s, tm->rope_cos, tm->rope_sin, idx, s->B, s->T, s->NKV, s->DR, 1,
                           pairs, s->hd / 2);
    train_mla_keys_forward(k, tm->kr_s, tm->kn_s, BT, s->NKV, s->hd, s->DR);
}

/* MoE: routes layer l's tokens (FFN input fn) and returns glu scaled by
 * their weights, what w_down reads; adds the layer's balance loss. */
static float *route_forward(train_model *tm, int l, const float *fn, const float *glu)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T, E = s->E;
    float *probs = tm->probs + at_layer(tm, l, E), *wts = tm->wts + at_layer(tm, l, E);
    float *gluw = tm->gluw + at_layer(tm, l, s->H), *frac = tm->frac + (size_t)l * E;
    train_matmul_forward(tm->d_route, fn, layer_of(&tm->p, TP_ROUTER, l, s->L), BT, s->C, E);
    train_moe_route_forward(probs, wts, tm->d_route, BT, E, s->K);
    double bal = train_moe_balance_forward(frac, probs, wts, BT, E);
    tm->balance_loss += tm->method.balance * bal / s->L;
    train_moe_scale_forward(gluw, glu, wts, BT, E, s->h);
    return gluw;
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
    train_linear_forward(LIN(AELLM_LINEAR_WQ), q, an, BT, tm->lin_scratch);
    if (s->R) {
        latent_forward(tm, l, an, q, k, v);
    } else {
        train_linear_forward(LIN(AELLM_LINEAR_WK), k, an, BT, tm->lin_scratch);
        train_linear_forward(LIN(AELLM_LINEAR_WV), v, an, BT, tm->lin_scratch);
        train_rope_forward(q, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NH, s->hd);
        train_rope_forward(k, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NKV, s->hd);
    }
    train_attention_forward(ao, att, q, k, v, s->B, s->T, s->NH, s->NKV, s->hd);
    train_linear_forward(LIN(AELLM_LINEAR_WO), xmid, ao, BT, tm->lin_scratch);
    train_residual_forward(xmid, x, (int64_t)BT * C);

    train_rmsnorm_forward(fn, tm->frstd + (size_t)l * BT, xmid, layer_of(p, TP_FFN_NORM, l, L), BT,
                          C, s->eps);
    train_linear_forward(LIN(AELLM_LINEAR_W_GATE), gate, fn, BT, tm->lin_scratch);
    train_linear_forward(LIN(AELLM_LINEAR_W_UP), up, fn, BT, tm->lin_scratch);
    train_swiglu_forward(glu, gate, up, (int64_t)BT * H);
    if (s->E) glu = route_forward(tm, l, fn, glu);
    train_linear_forward(LIN(AELLM_LINEAR_W_DOWN), xnext, glu, BT, tm->lin_scratch);
    train_residual_forward(xnext, xmid, (int64_t)BT * C);
}

/* Each adapter's dropout mask for this forward: a seed of (run seed,
 * forward, matrix), so a resumed run draws the same masks. */
static void set_dropout(train_model *tm)
{
    for (int k = 0; k < tm->s.L * AELLM_LINEAR_COUNT; k++) {
        train_adapter *a = &tm->lin[k].ad;
        if (a->dropout <= 0) continue;
        a->training = tm->training;
        a->drop_seed =
            (tm->method.seed * 0x9e3779b97f4a7c15ull) ^ (tm->drop_tick << 16) ^ (uint64_t)(k + 1);
    }
}

double train_model_forward(train_model *tm, const int32_t *inputs, const int32_t *targets,
                           const float *weight)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T;
    set_dropout(tm);
    tm->balance_loss = 0;
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

/* Latent attention: from d_q, d_k, d_v (attention's), the rotary and
 * latent maps' gradients and their part of d_norm; d_q is turned back. */
static void latent_backward(train_model *tm, int l, const float *an)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T, dn = s->hd - s->DR, pairs = s->DR / 2;
    const float *lat = tm->lat + at_layer(tm, l, s->R);
    const int *idx = tm->rope_idx + (size_t)l * s->NKV * pairs;
    train_mla_rope_backward(tm->d_q, tm->rope_cos, tm->rope_sin, idx, s->B, s->T, s->NH, s->hd,
                            s->NH / s->NKV, pairs, s->hd / 2);
    train_mla_keys_backward(tm->kr_s, tm->kn_s, tm->d_k, BT, s->NKV, s->hd, s->DR);
    train_mla_rope_backward(tm->kr_s, tm->rope_cos, tm->rope_sin, idx, s->B, s->T, s->NKV, s->DR, 1,
                            pairs, s->hd / 2);
    zero(tm->d_lat, (size_t)BT * s->R);
    if (dn > 0)
        train_matmul_backward(tm->d_lat, layer_of(&tm->g, TP_W_UK, l, s->L), tm->kn_s, lat,
                              layer_of(&tm->p, TP_W_UK, l, s->L), BT, s->R, s->NKV * dn);
    train_matmul_backward(tm->d_lat, layer_of(&tm->g, TP_W_UV, l, s->L), tm->d_v, lat,
                          layer_of(&tm->p, TP_W_UV, l, s->L), BT, s->R, s->NKV * s->hd);
    train_linear_backward(LIN(AELLM_LINEAR_WK), tm->d_norm, tm->kr_s, an, BT, tm->lin_scratch);
    train_linear_backward(LIN(AELLM_LINEAR_WV), tm->d_norm, tm->d_lat, an, BT, tm->lin_scratch);
}

/* MoE: from d_wts, the router's gradient and its part of d_norm. */
static void route_backward(train_model *tm, int l, const float *fn)
{
    const train_shape *s = &tm->s;
    int BT = s->B * s->T, E = s->E;
    train_moe_route_backward(tm->d_route, tm->d_wts, tm->probs + at_layer(tm, l, E),
                             tm->wts + at_layer(tm, l, E), tm->frac + (size_t)l * E,
                             tm->method.balance / (float)s->L, BT, E);
    train_matmul_backward(tm->d_norm, layer_of(&tm->g, TP_ROUTER, l, s->L), tm->d_route, fn,
                          layer_of(&tm->p, TP_ROUTER, l, s->L), BT, s->C, E);
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
    train_linear_backward(LIN(AELLM_LINEAR_W_DOWN), tm->d_glu, tm->d_res,
                          s->E ? tm->gluw + at_layer(tm, l, H) : glu, BT, tm->lin_scratch);
    if (s->E) /* d_glu: of the scaled glu, then of glu; d_wts of the weights */
        train_moe_scale_backward(tm->d_glu, tm->d_wts, glu, tm->wts + at_layer(tm, l, s->E), BT,
                                 s->E, s->h);
    zero(tm->d_gate, (size_t)BT * H);
    zero(tm->d_up, (size_t)BT * H);
    train_swiglu_backward(tm->d_gate, tm->d_up, tm->d_glu, gate, up, (int64_t)BT * H);
    zero(tm->d_norm, (size_t)BT * C);
    if (s->E) route_backward(tm, l, fn);
    train_linear_backward(LIN(AELLM_LINEAR_W_GATE), tm->d_norm, tm->d_gate, fn, BT,
                          tm->lin_scratch);
    train_linear_backward(LIN(AELLM_LINEAR_W_UP), tm->d_norm, tm->d_up, fn, BT, tm->lin_scratch);
    /* the residual passes d_res through; the norm adds its part */
    train_rmsnorm_backward(tm->d_res, layer_of(g, TP_FFN_NORM, l, L), tm->d_norm, xmid,
                           layer_of(p, TP_FFN_NORM, l, L), tm->frstd + (size_t)l * BT, BT, C);

    /* attention: xmid = x + W_o attn(rope(W_q an), rope(W_k an), W_v an), an = norm(x) */
    zero(tm->d_ao, (size_t)BT * qd);
    train_linear_backward(LIN(AELLM_LINEAR_WO), tm->d_ao, tm->d_res, ao, BT, tm->lin_scratch);
    zero(tm->d_q, (size_t)BT * qd);
    zero(tm->d_k, (size_t)BT * kvd);
    zero(tm->d_v, (size_t)BT * kvd);
    train_attention_backward(tm->d_q, tm->d_k, tm->d_v, tm->d_ao, att, q, k, v, s->B, s->T, s->NH,
                             s->NKV, s->hd, tm->d_attn);
    zero(tm->d_norm, (size_t)BT * C);
    if (s->R) {
        latent_backward(tm, l, an);
    } else {
        train_rope_backward(tm->d_q, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NH, s->hd);
        train_rope_backward(tm->d_k, tm->rope_cos, tm->rope_sin, s->B, s->T, s->NKV, s->hd);
        train_linear_backward(LIN(AELLM_LINEAR_WK), tm->d_norm, tm->d_k, an, BT, tm->lin_scratch);
        train_linear_backward(LIN(AELLM_LINEAR_WV), tm->d_norm, tm->d_v, an, BT, tm->lin_scratch);
    }
    train_linear_backward(LIN(AELLM_LINEAR_WQ), tm->d_norm, tm->d_q, an, BT, tm->lin_scratch);
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
