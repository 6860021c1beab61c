/* The model-level quantization driver: picks each tensor's stored type,
 * runs calibration layer by layer when the method needs it, applies the
 * method to the layer's seven matrices (folding AWQ / SmoothQuant scales
 * into the preceding norms and matrices), and assembles the new model with
 * its report. The per-matrix mathematics lives in rtn.c, gptq.c, awq.c and
 * smoothquant.c; running the model is calib.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/timer.h"
#include "techniques/quant/quant_internal.h"

static const char *const method_names[AELLM_QUANT_COUNT] = {"rtn", "gptq", "awq", "smoothquant"};

const char *aellm_quant_method_name(int method)
{
    return method >= 0 && method < AELLM_QUANT_COUNT ? method_names[method] : NULL;
}

int aellm_quant_method_from_name(const char *name)
{
    for (int i = 0; i < AELLM_QUANT_COUNT; i++)
        if (strcmp(method_names[i], name) == 0) return i;
    return -1;
}

int aellm_quant_type_resolve(const char *name, int group, int asym)
{
    if (!strcmp(name, "int4")) {
        static const int sym[] = {AELLM_DTYPE_Q4_0, AELLM_DTYPE_INT4S_G64, AELLM_DTYPE_INT4S_G128};
        static const int asy[] = {AELLM_DTYPE_Q4_1, AELLM_DTYPE_INT4A_G64, AELLM_DTYPE_INT4A_G128};
        int g = group ? group : 32;
        int i = g == 32 ? 0 : g == 64 ? 1 : g == 128 ? 2 : -1;
        if (i < 0) return aellm_error_set(AELLM_EINVAL, "group must be 32, 64 or 128 for int4");
        return asym ? asy[i] : sym[i];
    }
    if (group != 0)
        return aellm_error_set(AELLM_EINVAL,
                               "group applies to int4 only (the other types have fixed groups)");
    if (asym) return aellm_error_set(AELLM_EINVAL, "asym applies to int4 only");
    if (!strcmp(name, "fp8")) return AELLM_DTYPE_FP8_E4M3;
    int t = aellm_dtype_from_name(name);
    const aellm_dtype_traits *tr = t >= 0 ? aellm_dtype_traits_get(t) : NULL;
    int is_float = t == AELLM_DTYPE_F16 || t == AELLM_DTYPE_BF16 || t == AELLM_DTYPE_F32;
    if (!tr || (!tr->grid && !is_float))
        return aellm_error_set(
            AELLM_EINVAL,
            "unknown weight type '%s' (int4 int8 fp8 nf4 f16 bf16 q8_0 q4_0 q4_1 int4s_g64 ...)",
            name);
    return t;
}

void aellm_quantize_params_default(aellm_quantize_params *p)
{
    memset(p, 0, sizeof(*p));
    p->type = AELLM_DTYPE_Q4_0;
    p->method = AELLM_QUANT_RTN;
    p->calib_tokens = 4096;
    p->calib_ctx = 256;
    p->damp = 0.01f;
    p->block = 128;
    p->alpha = 0.5f;
    p->awq_grid = 20;
    p->awq_clip = 1;
    p->gptq_mse = 0;
}

void aellm_quantize_report_free(aellm_quantize_report *r)
{
    if (!r) return;
    free(r->tensors);
    memset(r, 0, sizeof(*r));
}

/* ---- the stored type of a tensor ---- */

/* aellm's partial-group twin of a llama.cpp type, or -1. */
static int partial_twin(int type)
{
    switch (type) {
    case AELLM_DTYPE_Q4_0:
        return AELLM_DTYPE_INT4S_G32;
    case AELLM_DTYPE_Q4_1:
        return AELLM_DTYPE_INT4A_G32;
    case AELLM_DTYPE_Q8_0:
        return AELLM_DTYPE_INT8_G32;
    default:
        return -1;
    }
}

/* The target where a row of n fits it; llama.cpp's block types (which cannot
 * end a row in a partial block) hand over to their twin, else to f16. */
static int pick_type(int target, int64_t n, char *note, size_t cap)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(target);
    int64_t G = tr->grid ? aellm_quant_group_len(tr->grid, n) : tr->block_size;
    if (n % tr->block_size == 0 && n % G == 0) return target;
    if (tr->partial) {
        snprintf(note, cap,
                 "rows of %lld are not whole groups of %lld: the last group is "
                 "zero-padded",
                 (long long)n, (long long)G);
        return target;
    }
    int twin = partial_twin(target);
    const aellm_dtype_traits *tt = aellm_dtype_traits_get(twin);
    if (tt && tt->grid && tt->partial) {
        snprintf(note, cap,
                 "rows of %lld are not whole groups of %lld: stored as %s with a "
                 "zero-padded last group",
                 (long long)n, (long long)tr->block_size, tt->name);
        return twin;
    }
    snprintf(note, cap,
             "rows of %lld are not whole blocks of %lld (%s) and no partial-group "
             "twin exists: stored as f16",
             (long long)n, (long long)tr->block_size, tr->name);
    return AELLM_DTYPE_F16;
}

/* ---- state of one run ---- */

typedef struct {
    const aellm_model *in;
    const aellm_quantize_params *p;
    aellm_model *out;
    aellm_calib *c; /* NULL: no calibration */
    aellm_quant_tensor_report *rep;
    int n_rep;
    aellm_gptq_prep prep[AELLM_IN_COUNT];
    float *s[AELLM_IN_COUNT]; /* per-input scales (AWQ, SmoothQuant), NULL = none */
    float alpha[AELLM_IN_COUNT];
} qrun;

static const char *const linear_names[AELLM_QMAT_COUNT] = {"attn_q",      "attn_k",    "attn_v",
                                                           "attn_output", "ffn_gate",  "ffn_up",
                                                           "ffn_down",    "attn_k_up", "attn_v_up"};

/* The GGUF name of matrix m (quant_internal.h's numbering). */
static void matrix_name(char *out, size_t size, const aellm_model_config *c, int l, int m)
{
    snprintf(out, size, "blk.%d.%s%s.weight", l,
             c->mla_rank && m == AELLM_LINEAR_WV   ? "attn_kv_down"
             : c->mla_rank && m == AELLM_LINEAR_WK ? "attn_k_rope"
                                                   : linear_names[m],
             c->n_experts && m >= AELLM_LINEAR_W_GATE && m <= AELLM_LINEAR_W_DOWN ? "_exps" : "");
}

static aellm_quant_tensor_report *add_report(qrun *q, const char *name, int type)
{
    aellm_quant_tensor_report *r = &q->rep[q->n_rep++];
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->type = type;
    r->rel_err = -1.0;
    r->note[0] = '\0';
    return r;
}

/* ---- scales: which input's scale multiplies a matrix's columns, and
 * which divides its rows (folded from the next matrix) ---- */

static const float *col_scale(const qrun *q, int m)
{
    return q->s[aellm_linear_input(m)];
}

/* wv's rows carry 1/s of wo's input (its output feeds wo through attention,
 * which is linear in v); w_up's rows carry 1/s of w_down's. With latent
 * attention the values come from w_uv, whose rows take wo's 1/s, and w_dkv
 * (in wv's slot) makes the latent, so its rows take the latent's. */
static const float *row_scale(const qrun *q, int m)
{
    int mla = q->in->cfg.mla_rank != 0;
    if (m == AELLM_LINEAR_WV) return q->s[mla ? AELLM_IN_LATENT : AELLM_IN_WO];
    if (m == AELLM_QMAT_UV) return q->s[AELLM_IN_WO];
    if (m == AELLM_LINEAR_W_UP) return q->s[AELLM_IN_DOWN];
    return NULL;
}

/* A group of matrices reading input `in` of layer l, for the scale search. */
static aellm_scale_group scale_group(const qrun *q, int l, int in, const int *types)
{
    const aellm_calib_input *ci = &q->c->in[in];
    aellm_scale_group g = {.n = ci->width,
                           .mean_abs = ci->mean_abs,
                           .max_abs = ci->max_abs,
                           .X = ci->sample,
                           .S = ci->n_sample,
                           .per_tensor = q->p->fp8_per_tensor};
    for (int m = 0; m < AELLM_QMAT_COUNT; m++) {
        const aellm_tensor *t = aellm_quant_matrix(q->c->work, l, m);
        if (aellm_linear_input(m) != in || !t) continue;
        g.W[g.n_mats] = t->data;
        g.rows[g.n_mats] = t->ne[1];
        g.type[g.n_mats++] = types[m];
    }
    return g;
}

/* AWQ or SmoothQuant scales of every input that can be folded: wo's only
 * when heads and kv heads match (with GQA a v channel feeds several wo
 * columns, which cannot then be scaled independently). */
static int find_scales(qrun *q, int l, const int *types)
{
    const aellm_model_config *cfg = &q->in->cfg;
    for (int in = 0; in < AELLM_IN_COUNT; in++) {
        if (in == AELLM_IN_WO && cfg->n_heads != cfg->n_kv_heads) continue;
        if (in == AELLM_IN_LATENT && !cfg->mla_rank) continue;
        aellm_scale_group g = scale_group(q, l, in, types);
        q->s[in] = malloc((size_t)g.n * sizeof(float));
        if (!q->s[in]) return aellm_error_oom("scales", (unsigned long long)g.n * 4);
        if (q->p->method == AELLM_QUANT_SMOOTHQUANT) {
            aellm_smoothquant_scales(q->s[in], &g, q->p->alpha);
            q->alpha[in] = q->p->alpha;
        } else {
            int rc = aellm_awq_search(q->s[in], &q->alpha[in], &g, q->p->awq_grid);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Norm weights divide by the scale of the input they produce; a router
 * reading the FFN input multiplies its columns by it, so that its logits
 * do not change. */
static void fold_norms(qrun *q, int l)
{
    aellm_layer *L = &q->c->work->layers[l];
    const aellm_model_config *c = &q->in->cfg;
    float *an = (float *)L->attn_norm.data, *fn = (float *)L->ffn_norm.data;
    const float *sa = q->s[AELLM_IN_ATTN], *sf = q->s[AELLM_IN_FFN];
    for (int j = 0; sa && j < c->dim; j++) an[j] /= sa[j];
    for (int j = 0; sf && j < c->dim; j++) fn[j] /= sf[j];
    float *router = c->n_experts ? (float *)L->ffn_gate_inp.data : NULL;
    for (int x = 0; sf && router && x < c->n_experts; x++)
        for (int j = 0; j < c->dim; j++) router[(size_t)x * c->dim + j] *= sf[j];
}

static void free_layer_state(qrun *q)
{
    for (int i = 0; i < AELLM_IN_COUNT; i++) {
        free(q->s[i]);
        q->s[i] = NULL;
        q->alpha[i] = 0.0f;
        aellm_gptq_prep_free(&q->prep[i]);
    }
}

/* ---- one matrix ---- */

/* W' = diag(1/r) W diag(c), the matrix actually rounded. r repeats every
 * `period` rows: the experts stacked in w_up share w_down's input scale. */
static void scale_matrix(float *dst, const float *W, int64_t rows, int64_t n, const float *c,
                         const float *r, int64_t period)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < n; j++)
            dst[i * n + j] = W[i * n + j] * (c ? c[j] : 1.0f) / (r ? r[i % period] : 1.0f);
}

static void unscale_matrix(float *dst, const float *V, int64_t rows, int64_t n, const float *c,
                           const float *r, int64_t period)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < n; j++)
            dst[i * n + j] = V[i * n + j] * (r ? r[i % period] : 1.0f) / (c ? c[j] : 1.0f);
}

/* AWQ's clipping search on W' = W diag(c), whose inputs are X diag(1/c);
 * `clipped` gets W' with the chosen clamps. */
static int awq_clip(qrun *q, void *dst, const float *Wt, int64_t rows, int64_t n, int type, int in,
                    const float *c, float *clipped)
{
    const aellm_calib_input *ci = &q->c->in[in];
    float *Xs = malloc((size_t)(ci->n_sample * n) * sizeof(float));
    if (!Xs) return aellm_error_oom("awq clipping rows", (unsigned long long)(ci->n_sample * n));
    for (int64_t s = 0; s < ci->n_sample; s++)
        for (int64_t j = 0; j < n; j++) Xs[s * n + j] = ci->sample[s * n + j] / (c ? c[j] : 1.0f);
    int rc = aellm_awq_clip_quantize(dst, Wt, rows, n, type, Xs, ci->n_sample, q->p->fp8_per_tensor,
                                     clipped);
    free(Xs);
    return rc;
}

/* Rounds W' (matrix m, columns scaled by c) with the run's method into dst.
 * AWQ's code clips every linear layer but q and k: their outputs meet in
 * q.k, where a per-matrix output error measures the wrong thing (so do
 * latent attention's rotary keys and its key up-projection). AWQ also
 * writes the full-precision weights it goes on with (W', clamped) to fp. */
static int round_matrix(qrun *q, void *dst, const float *Wt, int64_t rows, int64_t n, int type,
                        int m, const float *c, float *fp)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    const aellm_quantize_params *p = q->p;
    int in = aellm_linear_input(m);
    if (fp) memcpy(fp, Wt, (size_t)(rows * n) * sizeof(float));
    if (p->method == AELLM_QUANT_AWQ && p->awq_clip && tr->grid && q->c && m != AELLM_LINEAR_WQ &&
        m != AELLM_LINEAR_WK && m != AELLM_QMAT_UK)
        return awq_clip(q, dst, Wt, rows, n, type, in, c, fp);
    if (p->method != AELLM_QUANT_GPTQ || !tr->grid || !q->c)
        return aellm_quant_rtn(dst, Wt, rows, n, type, p->fp8_per_tensor);
    if (!q->prep[in].U) {
        int rc = aellm_gptq_prepare(&q->prep[in], q->c->in[in].H, n, p->damp, p->act_order);
        if (rc) return rc;
    }
    return aellm_gptq_quantize(dst, Wt, rows, n, type, &q->prep[in], p->block, p->fp8_per_tensor,
                               p->gptq_mse);
}

/* ||X W^T - X W_eff^T|| / ||X W^T|| on the sampled rows of the input. */
static int report_error(qrun *q, aellm_quant_tensor_report *r, int in, const float *W,
                        const float *Weff, int64_t rows, int64_t n)
{
    const aellm_calib_input *ci = &q->c->in[in];
    double e, ref;
    int rc = aellm_quant_out_err2(&e, &ref, ci->sample, ci->n_sample, W, Weff, rows, n);
    if (!rc) r->rel_err = ref > 0 ? sqrt(e / ref) : 0.0;
    return rc;
}

/* Says which exponent AWQ chose, or why a matrix was not scaled. */
static void add_scale_note(const qrun *q, aellm_quant_tensor_report *r, int m, const float *cs)
{
    int method = q->p->method;
    size_t k = strlen(r->note);
    const char *sep = k ? "; " : "";
    if (!q->c || (method != AELLM_QUANT_AWQ && method != AELLM_QUANT_SMOOTHQUANT)) return;
    if (!cs)
        snprintf(r->note + k, sizeof(r->note) - k,
                 "%snot scaled: %d kv heads for %d heads leave nothing to fold 1/s into", sep,
                 q->in->cfg.n_kv_heads, q->in->cfg.n_heads);
    else if (method == AELLM_QUANT_AWQ)
        snprintf(r->note + k, sizeof(r->note) - k, "%sawq alpha %.2f", sep,
                 q->alpha[aellm_linear_input(m)]);
}

/* Quantizes matrix m of layer l from W (f32, rows x n) into the output
 * model; with calibration, writes the weights the next layers are to be
 * calibrated on back over W (the working copy) and reports the output error
 * in W's basis. GPTQ's reference goes on with the rounded layer (each layer
 * is fitted to the quantized ones before it); AWQ's goes on with the scaled,
 * clipped full-precision layer and rounds the whole model at the end. */
static int quantize_matrix(qrun *q, int l, int m, float *W, int type, const char *note)
{
    aellm_tensor *t = aellm_quant_slot(&q->out->cfg, &q->out->layers[l], m);
    const aellm_tensor *src = aellm_quant_matrix(q->in, l, m);
    int64_t n = src->ne[0], rows = src->ne[1];
    size_t bytes = (size_t)(rows * n) * sizeof(float);
    int in = aellm_linear_input(m), keep_fp = q->c && q->p->method == AELLM_QUANT_AWQ;
    const float *cs = q->c ? col_scale(q, m) : NULL, *rs = q->c ? row_scale(q, m) : NULL;
    int64_t period = m == AELLM_LINEAR_W_UP ? q->in->cfg.hidden_dim : rows;
    char name[64];
    matrix_name(name, sizeof(name), &q->in->cfg, l, m);
    aellm_quant_tensor_report *r = add_report(q, name, type);
    snprintf(r->note, sizeof(r->note), "%s", note);
    add_scale_note(q, r, m, cs);
    void *dst = aellm_model_own(q->out, aellm_dtype_row_size(type, n) * (size_t)rows);
    float *Wt = malloc(bytes), *Weff = q->c ? malloc(bytes) : NULL;
    float *Wfp = keep_fp ? malloc(bytes) : NULL;
    int rc = 0;
    if (!dst || !Wt || (q->c && !Weff) || (keep_fp && !Wfp)) {
        rc = dst ? aellm_error_oom("a matrix", (unsigned long long)bytes) : AELLM_ENOMEM;
        goto done;
    }
    scale_matrix(Wt, W, rows, n, cs, rs, period);
    if ((rc = round_matrix(q, dst, Wt, rows, n, type, m, cs, Wfp))) goto done;
    aellm_tensor_set(t, type, n, rows, dst);
    if (!q->c) goto done;
    aellm_quant_dequant(Wt, dst, rows, n, type);
    unscale_matrix(Weff, Wt, rows, n, cs, rs, period);
    if ((rc = report_error(q, r, in, W, Weff, rows, n))) goto done;
    memcpy(W, Wfp ? Wfp : Wt, bytes);
done:
    free(Wt);
    free(Weff);
    free(Wfp);
    return rc;
}

/* ---- layers ---- */

/* Norms and routers stay f32. */
static int copy_norm(qrun *q, aellm_tensor *dst, const aellm_tensor *src)
{
    float *f = aellm_model_own(q->out, (size_t)(src->ne[0] * src->ne[1]) * sizeof(float));
    if (!f) return AELLM_ENOMEM;
    aellm_quant_dequant(f, src->data, src->ne[1], src->ne[0], src->type);
    aellm_tensor_set(dst, AELLM_DTYPE_F32, src->ne[0], src->ne[1], f);
    return 0;
}

/* Norms, the router and the rotary pair table, from S (with calibration
 * the working copy, whose norms carry the folded scales). */
static int copy_f32_tensors(qrun *q, int l, const aellm_layer *S)
{
    aellm_layer *D = &q->out->layers[l];
    int rc = copy_norm(q, &D->attn_norm, &S->attn_norm);
    if (!rc) rc = copy_norm(q, &D->ffn_norm, &S->ffn_norm);
    if (!rc && q->in->cfg.n_experts) rc = copy_norm(q, &D->ffn_gate_inp, &S->ffn_gate_inp);
    if (!rc && q->in->cfg.mla_rank) rc = copy_norm(q, &D->rope_pairs, &S->rope_pairs);
    return rc;
}

static void layer_types(const qrun *q, int l, int *types, char (*notes)[160])
{
    for (int m = 0; m < AELLM_QMAT_COUNT; m++) {
        const aellm_tensor *t = aellm_quant_matrix(q->in, l, m);
        notes[m][0] = '\0';
        types[m] = t ? pick_type(q->p->type, t->ne[0], notes[m], sizeof(notes[m])) : -1;
    }
}

/* Calibrated: statistics of this layer's inputs, scales, the matrices
 * (written back rounded), folded norms, the next layer's input. */
static int calibrated_layer(qrun *q, int l)
{
    int types[AELLM_QMAT_COUNT], rc = aellm_calib_collect(q->c, l);
    char notes[AELLM_QMAT_COUNT][160];
    layer_types(q, l, types, notes);
    if (!rc && (q->p->method == AELLM_QUANT_AWQ || q->p->method == AELLM_QUANT_SMOOTHQUANT))
        rc = find_scales(q, l, types);
    for (int m = 0; !rc && m < AELLM_QMAT_COUNT; m++) {
        const aellm_tensor *W = aellm_quant_matrix(q->c->work, l, m);
        if (W) rc = quantize_matrix(q, l, m, (float *)W->data, types[m], notes[m]);
    }
    if (!rc) fold_norms(q, l);
    if (!rc) rc = copy_f32_tensors(q, l, &q->c->work->layers[l]);
    if (!rc) rc = aellm_calib_advance(q->c, l);
    free_layer_state(q);
    return rc;
}

/* Without calibration: each matrix from the input model, by RTN. */
static int plain_layer(qrun *q, int l)
{
    int types[AELLM_QMAT_COUNT], rc = 0;
    char notes[AELLM_QMAT_COUNT][160];
    layer_types(q, l, types, notes);
    for (int m = 0; !rc && m < AELLM_QMAT_COUNT; m++) {
        const aellm_tensor *t = aellm_quant_matrix(q->in, l, m);
        if (!t) continue;
        float *W = malloc((size_t)(t->ne[0] * t->ne[1]) * sizeof(float));
        if (!W) return aellm_error_oom("a matrix", (unsigned long long)(t->ne[0] * t->ne[1] * 4));
        aellm_quant_dequant(W, t->data, t->ne[1], t->ne[0], t->type);
        rc = quantize_matrix(q, l, m, W, types[m], notes[m]);
        free(W);
    }
    return rc ? rc : copy_f32_tensors(q, l, &q->in->layers[l]);
}

/* ---- embedding and output ---- */

/* Keeps the tensor's type (GPTQ and AWQ leave them alone), or rounds it to
 * the target when asked. */
static int edge_tensor(qrun *q, aellm_tensor *dst, const aellm_tensor *src, const char *name)
{
    int64_t n = src->ne[0], rows = src->ne[1];
    char note[160] = "";
    int type = q->p->quantize_output ? pick_type(q->p->type, n, note, sizeof(note)) : src->type;
    aellm_quant_tensor_report *r = add_report(q, name, type);
    if (!q->p->quantize_output)
        snprintf(note, sizeof(note), "kept %s (quantize_output = 0)",
                 aellm_dtype_traits_get(type)->name);
    snprintf(r->note, sizeof(r->note), "%s", note);
    void *d = aellm_model_own(q->out, aellm_dtype_row_size(type, n) * (size_t)rows);
    if (!d) return AELLM_ENOMEM;
    aellm_tensor_set(dst, type, n, rows, d);
    if (!q->p->quantize_output) {
        memcpy(d, src->data, aellm_tensor_bytes(src));
        return 0;
    }
    float *W = malloc((size_t)(rows * n) * sizeof(float));
    if (!W) return aellm_error_oom("the embedding", (unsigned long long)(rows * n * 4));
    aellm_quant_dequant(W, src->data, rows, n, src->type);
    int rc = aellm_quant_rtn(d, W, rows, n, type, q->p->fp8_per_tensor);
    free(W);
    return rc;
}

static int edges(qrun *q)
{
    int rc = edge_tensor(q, &q->out->tok_embd, &q->in->tok_embd, "token_embd.weight");
    if (!rc && q->in->cfg.tied_output) q->out->output = q->out->tok_embd;
    if (!rc && !q->in->cfg.tied_output)
        rc = edge_tensor(q, &q->out->output, &q->in->output, "output.weight");
    if (!rc) rc = copy_norm(q, &q->out->output_norm, &q->in->output_norm);
    return rc;
}

/* ---- options as JSON (the GGUF key aellm.quantize) ---- */

static void json_str(char *buf, size_t cap, const char *s)
{
    size_t k = strlen(buf);
    for (; *s && k + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf[k++] = '\\', buf[k++] = (char)ch;
        else if (ch < 0x20)
            k += (size_t)snprintf(buf + k, cap - k, "\\u%04x", ch);
        else
            buf[k++] = (char)ch;
    }
    buf[k] = '\0';
}

static int set_json(qrun *q)
{
    const aellm_quantize_params *p = q->p;
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(p->type);
    char buf[2048];
    size_t k;
    k = (size_t)snprintf(buf, sizeof(buf), "{\"method\":\"%s\",\"type\":\"%s\",",
                         method_names[p->method], tr->name);
    if (tr->grid && tr->grid->group > 0)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "\"group\":%lld,",
                              (long long)tr->grid->group);
    else if (tr->grid)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "\"group\":\"%s\",",
                              p->fp8_per_tensor ? "tensor" : "row");
    k += (size_t)snprintf(buf + k, sizeof(buf) - k, "\"quantize_output\":%d", p->quantize_output);
    if (q->c) {
        snprintf(buf + k, sizeof(buf) - k, ",\"calib\":\"");
        json_str(buf, sizeof(buf) - 400, p->calib_path ? p->calib_path : "(text)");
        k = strlen(buf);
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "\",\"calib_tokens\":%lld,\"calib_ctx\":%d",
                              (long long)q->c->n_seq * q->c->ctx, q->c->ctx);
    }
    if (p->method == AELLM_QUANT_GPTQ)
        k +=
            (size_t)snprintf(buf + k, sizeof(buf) - k, ",\"act_order\":%d,\"damp\":%g,\"block\":%d",
                             p->act_order, (double)p->damp, p->block);
    if (p->method == AELLM_QUANT_GPTQ)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, ",\"mse\":%d", p->gptq_mse);
    if (p->method == AELLM_QUANT_AWQ)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, ",\"awq_grid\":%d,\"clip\":%d", p->awq_grid,
                              p->awq_clip);
    if (p->method == AELLM_QUANT_SMOOTHQUANT)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, ",\"alpha\":%g", (double)p->alpha);
    snprintf(buf + k, sizeof(buf) - k, "}");
    q->out->quantize_json = strdup(buf);
    return q->out->quantize_json ? 0 : aellm_error_oom("quantize json", strlen(buf));
}

/* ---- the driver ---- */

static int check_params(const aellm_model *in, const aellm_quantize_params *p)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(p->type);
    int plain =
        p->type == AELLM_DTYPE_F32 || p->type == AELLM_DTYPE_F16 || p->type == AELLM_DTYPE_BF16;
    if (!tr || (!tr->grid && !plain))
        return aellm_error_set(AELLM_EINVAL, "quantize: type %d (%s) is not a weight type", p->type,
                               tr ? tr->name : "unknown");
    if (p->method < 0 || p->method >= AELLM_QUANT_COUNT)
        return aellm_error_set(AELLM_EINVAL, "quantize: unknown method %d", p->method);
    int calibrated = p->calib_text || p->calib_path;
    if (p->method != AELLM_QUANT_RTN && !calibrated)
        return aellm_error_set(AELLM_EINVAL, "quantize: %s needs calibration text",
                               method_names[p->method]);
    if (calibrated && !in->tokenizer)
        return aellm_error_set(AELLM_EINVAL, "quantize: calibration needs the model's tokenizer");
    return 0;
}

static int run_layers(qrun *q)
{
    int L = q->in->cfg.n_layers, rc = 0;
    for (int l = 0; !rc && l < L; l++) {
        rc = q->c ? calibrated_layer(q, l) : plain_layer(q, l);
        if (!rc && q->p->progress) q->p->progress(l, L, q->p->progress_user);
    }
    return rc;
}

static void fill_report(aellm_quantize_report *rep, qrun *q, double t0)
{
    rep->tensors = q->rep;
    rep->n_tensors = q->n_rep;
    rep->calib_tokens = q->c ? (int64_t)q->c->n_seq * q->c->ctx : 0;
    rep->n_sequences = q->c ? q->c->n_seq : 0;
    rep->seconds = aellm_time_s() - t0;
    q->rep = NULL;
}

int aellm_quantize_model(aellm_model **out, const aellm_model *in, const aellm_quantize_params *p,
                         aellm_quantize_report *rep)
{
    *out = NULL;
    if (rep) memset(rep, 0, sizeof(*rep));
    int rc = check_params(in, p);
    if (rc) return rc;
    double t0 = aellm_time_s();
    qrun q = {.in = in, .p = p};
    q.rep = calloc((size_t)in->cfg.n_layers * (AELLM_QMAT_COUNT + 1) + 2, sizeof(*q.rep));
    if (!q.rep) return aellm_error_oom("quantize report", 0);
    if ((rc = aellm_model_alloc(&q.out, &in->cfg))) goto done;
    if (in->tokenizer && (rc = aellm_tokenizer_copy(&q.out->tokenizer, in->tokenizer))) goto done;
    if ((p->calib_text || p->calib_path) &&
        (rc = aellm_calib_new(&q.c, in, p, p->method == AELLM_QUANT_GPTQ)))
        goto done;
    if ((rc = run_layers(&q))) goto done;
    if ((rc = edges(&q))) goto done;
    if ((rc = set_json(&q))) goto done;
    if (rep) fill_report(rep, &q, t0);
    *out = q.out;
    q.out = NULL;
done:
    free_layer_state(&q);
    aellm_calib_free(q.c);
    aellm_model_free(q.out);
    free(q.rep);
    return rc;
}
