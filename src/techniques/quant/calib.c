/* The calibration driver: runs a model layer by layer over a calibration
 * text and collects, per layer, what the quantization methods need of each
 * matrix's input rows X: GPTQ's H = 2 X^T X / N, AWQ's mean |x_j|,
 * SmoothQuant's max |x_j|, and a sample of rows for searches and errors.
 * The model runs from an f32 working copy into which each quantized layer
 * is written back, so later layers see the outputs of quantized ones. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "engine/engine_internal.h"
#include "techniques/quant/quant_internal.h"

#define MAX_SAMPLE 512 /* sampled rows per input: AWQ's search, the report's errors */

/* ---- calibration tokens ---- */

int aellm_quant_read_calib(char **out, size_t *len, const char *path, int64_t skip, int64_t bytes)
{
    *out = NULL;
    if (bytes < 0)
        return aellm_error_set(AELLM_EINVAL, "%s: calibration bytes %lld is negative", path,
                               (long long)bytes);
    return aellm_file_read_range(out, len, path, skip, (size_t)bytes);
}

/* The text's first tokens (no BOS), enough for `want` of them: a token is
 * rarely longer than 64 bytes, so only that much of the text is encoded. */
static int text_tokens(int32_t **out, size_t *n, const aellm_tokenizer *tok, const char *text,
                       size_t len, int64_t want)
{
    size_t bytes = (size_t)want * 64 < len ? (size_t)want * 64 : len, cap = bytes + 8;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    if (!ids) return aellm_error_oom("calibration tokens", cap * sizeof(int32_t));
    int rc = aellm_tokenizer_encode(tok, text, bytes, 0, ids, cap, n);
    if (rc) return free(ids), rc;
    *out = ids;
    return 0;
}

/* Sequences of ctx tokens, each BOS then the next ctx-1 tokens of the text:
 * every sequence starts as inference does (the model's first position is
 * always BOS), rather than mid-text at position 0. */
static int calib_tokens(int32_t **out, int *n_seq, const aellm_model *m,
                        const aellm_quantize_params *p, int ctx)
{
    char *owned = NULL;
    const char *text = p->calib_text;
    size_t len = p->calib_len, n_text = 0;
    int32_t *ids = NULL;
    int rc = 0;
    if (!text && (rc = aellm_quant_read_calib(&owned, &len, p->calib_path, 0, 0))) return rc;
    if (!text) text = owned;
    int64_t want = p->calib_tokens > 0 ? p->calib_tokens : 4096;
    if ((rc = text_tokens(&ids, &n_text, m->tokenizer, text, len, want))) goto done;
    int64_t seqs = want / ctx, fit = (int64_t)n_text / (ctx - 1);
    *n_seq = (int)(seqs < fit ? seqs : fit);
    if (*n_seq < 1) {
        rc = aellm_error_set(AELLM_EINVAL,
                             "calibration: %zu tokens of text, fewer than one sequence of %d",
                             n_text, ctx);
        goto done;
    }
    int32_t *seq = malloc((size_t)*n_seq * ctx * sizeof(int32_t));
    if (!seq) {
        rc = aellm_error_oom("calibration sequences", (size_t)*n_seq * ctx * 4);
        goto done;
    }
    for (int s = 0; s < *n_seq; s++) {
        seq[(size_t)s * ctx] = aellm_tokenizer_bos(m->tokenizer);
        memcpy(seq + (size_t)s * ctx + 1, ids + (size_t)s * (ctx - 1),
               (size_t)(ctx - 1) * sizeof(int32_t));
    }
    *out = seq;
done:
    free(owned);
    free(ids);
    return rc;
}

/* ---- the f32 working copy ---- */

static int f32_copy(aellm_model *w, aellm_tensor *dst, const aellm_tensor *src)
{
    float *f = aellm_model_own(w, (size_t)(src->ne[0] * src->ne[1]) * sizeof(float));
    if (!f) return AELLM_ENOMEM;
    aellm_quant_dequant(f, src->data, src->ne[1], src->ne[0], src->type);
    aellm_tensor_set(dst, AELLM_DTYPE_F32, src->ne[0], src->ne[1], f);
    return 0;
}

aellm_tensor *aellm_quant_slot(const aellm_model_config *c, aellm_layer *L, int i)
{
    if (i >= AELLM_LINEAR_COUNT)
        return !c->mla_rank ? NULL : i == AELLM_QMAT_UK ? &L->w_uk : &L->w_uv;
    return c->mla_rank && i == AELLM_LINEAR_WV ? &L->w_dkv : aellm_layer_linear(L, i);
}

const aellm_tensor *aellm_quant_matrix(const aellm_model *m, int l, int i)
{
    const aellm_tensor *t = aellm_quant_slot(&m->cfg, &m->layers[l], i);
    return t && t->data && t->ne[1] > 0 ? t : NULL;
}

/* Every layer tensor in f32; the embedding and output are borrowed from m
 * (the driver embeds tokens itself and never runs the output). */
static int working_copy(aellm_model **out, const aellm_model *m)
{
    aellm_model *w;
    int rc = aellm_model_alloc(&w, &m->cfg);
    if (rc) return rc;
    w->tok_embd = m->tok_embd;
    w->output = m->output;
    w->output_norm = m->output_norm;
    for (int l = 0; !rc && l < m->cfg.n_layers; l++) {
        const aellm_layer *s = &m->layers[l];
        aellm_layer *d = &w->layers[l];
        rc = f32_copy(w, &d->attn_norm, &s->attn_norm);
        if (!rc) rc = f32_copy(w, &d->ffn_norm, &s->ffn_norm);
        if (!rc && m->cfg.n_experts) rc = f32_copy(w, &d->ffn_gate_inp, &s->ffn_gate_inp);
        if (!rc && m->cfg.mla_rank) rc = f32_copy(w, &d->rope_pairs, &s->rope_pairs);
        for (int i = 0; !rc && i < AELLM_QMAT_COUNT; i++) {
            const aellm_tensor *t = aellm_quant_matrix(m, l, i);
            if (t) rc = f32_copy(w, aellm_quant_slot(&m->cfg, d, i), t);
        }
    }
    if (rc) return aellm_model_free(w), rc;
    *out = w;
    return 0;
}

/* ---- statistics ---- */

static int input_alloc(aellm_calib_input *in, int64_t width, int64_t rows, int want_h)
{
    in->width = width;
    if (width == 0) return 0; /* an input this model has not (the latent without MLA) */
    in->max_sample = rows < MAX_SAMPLE ? rows : MAX_SAMPLE;
    in->stride = (rows + in->max_sample - 1) / in->max_sample;
    in->abs_sum = malloc((size_t)width * sizeof(double));
    in->mean_abs = malloc((size_t)width * sizeof(float));
    in->max_abs = malloc((size_t)width * sizeof(float));
    in->sample = malloc((size_t)(in->max_sample * width) * sizeof(float));
    if (want_h) in->H = malloc((size_t)(width * width) * sizeof(double));
    if (!in->abs_sum || !in->mean_abs || !in->max_abs || !in->sample || (want_h && !in->H))
        return aellm_error_oom("calibration statistics", (unsigned long long)(width * width * 8));
    return 0;
}

static void input_free(aellm_calib_input *in)
{
    free(in->H);
    free(in->abs_sum);
    free(in->mean_abs);
    free(in->max_abs);
    free(in->sample);
}

static void input_reset(aellm_calib_input *in)
{
    size_t w = (size_t)in->width;
    if (!w) return;
    in->n_rows = in->n_sample = 0;
    memset(in->abs_sum, 0, w * sizeof(double));
    memset(in->max_abs, 0, w * sizeof(float));
    if (in->H) memset(in->H, 0, w * w * sizeof(double));
}

void aellm_add_xtx(double *H, double *dbuf, const float *x, int n, int64_t w)
{
    for (int64_t i = 0; i < (int64_t)n * w; i++) dbuf[i] = x[i];
    int threads = aellm_quant_blas_begin((double)w * (double)w * (double)n);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)w, n, 1.0, dbuf, (int)w, 1.0, H,
                (int)w);
    aellm_quant_blas_end(threads);
}

static void add_rows(aellm_calib_input *in, double *dbuf, const float *x, int n)
{
    int64_t w = in->width;
    for (int i = 0; i < n; i++) {
        const float *r = x + (int64_t)i * w;
        for (int64_t j = 0; j < w; j++) {
            in->abs_sum[j] += fabsf(r[j]);
            in->max_abs[j] = fmaxf(in->max_abs[j], fabsf(r[j]));
        }
        if ((in->n_rows + i) % in->stride == 0 && in->n_sample < in->max_sample)
            memcpy(in->sample + in->n_sample++ * w, r, (size_t)w * sizeof(float));
    }
    if (in->H) aellm_add_xtx(in->H, dbuf, x, n, w);
    in->n_rows += n;
}

/* H = 2 X^T X / N in full, mean |x|. */
static void input_finish(aellm_calib_input *in)
{
    int64_t w = in->width;
    double N = in->n_rows > 0 ? (double)in->n_rows : 1.0;
    if (!w) return;
    for (int64_t j = 0; j < w; j++) in->mean_abs[j] = (float)(in->abs_sum[j] / N);
    if (!in->H) return;
    for (int64_t i = 0; i < w; i++)
        for (int64_t j = i; j < w; j++) {
            double v = in->H[i * w + j] * 2.0 / N;
            in->H[i * w + j] = in->H[j * w + i] = v;
        }
}

/* The engine's hook: each input is recorded once, at the first matrix
 * that reads it (wq for q/k/v, w_gate for gate/up); the latent comes as
 * AELLM_HOOK_LATENT, the id of w_uk, its first reader. */
_Static_assert((int)AELLM_HOOK_LATENT == (int)AELLM_QMAT_UK,
               "the latent's hook id is its first reader's");

static void hook(void *user, int layer, int linear, const float *x, int n, int64_t width)
{
    (void)layer;
    aellm_calib *c = user;
    if (linear == AELLM_LINEAR_WK || linear == AELLM_LINEAR_WV || linear == AELLM_LINEAR_W_UP)
        return;
    aellm_calib_input *in = &c->in[aellm_linear_input(linear)];
    if (width == in->width) add_rows(in, c->dbuf, x, n);
}

/* ---- the driver ---- */

/* Flops of one layer over ctx tokens: its matrices and the causal q.k, a.v. */
static double layer_flops(const aellm_model_config *cfg, int ctx)
{
    double d = cfg->dim, hd = cfg->head_dim, q = cfg->n_heads * hd, kv = cfg->n_kv_heads * hd;
    double ffn = (double)cfg->hidden_dim * (cfg->n_experts ? cfg->n_experts_used : 1);
    double per_token = 2.0 * (d * (q + 2.0 * kv) + q * d + 3.0 * d * ffn);
    return ctx * per_token + 2.0 * q * (double)ctx * ctx;
}

/* Layer l over every sequence of c->x (in place) or of a copy (collect). */
static int run_all(aellm_calib *c, int l, int in_place)
{
    int rc = 0, threads = aellm_quant_blas_begin(c->flops);
    size_t bytes = (size_t)c->ctx * c->dim * sizeof(float);
    for (int s = 0; !rc && s < c->n_seq; s++) {
        float *x = c->x + (size_t)s * c->ctx * c->dim;
        if (!in_place) x = memcpy(c->tmp, x, bytes);
        rc = aellm_engine_run_layer(c->e, l, x, c->ctx, 0);
    }
    aellm_quant_blas_end(threads);
    return rc;
}

static int embed_all(aellm_calib *c, const aellm_model *m, const int32_t *tokens)
{
    const aellm_tensor *t = &m->tok_embd;
    aellm_to_float_fn to_float = aellm_dtype_traits_get(t->type)->to_float;
    for (int64_t i = 0; i < (int64_t)c->n_seq * c->ctx; i++)
        to_float((const char *)t->data + (size_t)tokens[i] * t->row_bytes, c->x + i * c->dim,
                 c->dim);
    return 0;
}

static int calib_buffers(aellm_calib *c, const aellm_model *m, int want_h)
{
    const aellm_model_config *cfg = &m->cfg;
    int64_t rows = (int64_t)c->n_seq * c->ctx, q_dim = (int64_t)cfg->n_heads * cfg->head_dim;
    int64_t widths[AELLM_IN_COUNT] = {cfg->dim, q_dim, cfg->dim, cfg->hidden_dim, cfg->mla_rank};
    int64_t wmax = 0;
    int rc = 0;
    for (int i = 0; !rc && i < AELLM_IN_COUNT; i++) {
        rc = input_alloc(&c->in[i], widths[i], rows, want_h);
        wmax = widths[i] > wmax ? widths[i] : wmax;
    }
    if (rc) return rc;
    c->x = malloc((size_t)(rows * c->dim) * sizeof(float));
    c->tmp = malloc((size_t)c->ctx * c->dim * sizeof(float));
    c->dbuf = want_h ? malloc((size_t)(c->ctx * wmax) * sizeof(double)) : NULL;
    if (!c->x || !c->tmp || (want_h && !c->dbuf))
        return aellm_error_oom("calibration hidden states",
                               (unsigned long long)(rows * c->dim * 4));
    return 0;
}

int aellm_calib_new(aellm_calib **out, const aellm_model *m, const aellm_quantize_params *p,
                    int want_h)
{
    *out = NULL;
    if (!m->tokenizer)
        return aellm_error_set(AELLM_EINVAL, "calibration needs the model's tokenizer");
    if (!p->calib_text && !p->calib_path)
        return aellm_error_set(AELLM_EINVAL, "calibration needs a text (calib_path)");
    aellm_calib *c = calloc(1, sizeof(*c));
    if (!c) return aellm_error_oom("calibration", sizeof(*c));
    int32_t *tokens = NULL;
    c->ctx = p->calib_ctx > 0 ? p->calib_ctx : 256;
    if (c->ctx > m->cfg.seq_len) c->ctx = m->cfg.seq_len;
    if (c->ctx < 2) c->ctx = 2;
    c->dim = m->cfg.dim;
    c->flops = layer_flops(&m->cfg, c->ctx);
    aellm_engine_params ep = {.n_ctx = c->ctx, .n_batch = c->ctx, .n_threads = p->n_threads};
    /* a small model's layer is less work than waking a second thread */
    if (ep.n_threads == 0 && c->flops < AELLM_QUANT_BLAS_MIN) ep.n_threads = 1;
    int rc = calib_tokens(&tokens, &c->n_seq, m, p, c->ctx);
    if (!rc) rc = working_copy(&c->work, m);
    if (!rc) rc = aellm_engine_new(&c->e, c->work, &ep);
    if (!rc) rc = calib_buffers(c, m, want_h);
    if (!rc) rc = embed_all(c, m, tokens);
    free(tokens);
    if (rc) return aellm_calib_free(c), rc;
    *out = c;
    return 0;
}

void aellm_calib_free(aellm_calib *c)
{
    if (!c) return;
    for (int i = 0; i < AELLM_IN_COUNT; i++) input_free(&c->in[i]);
    aellm_engine_free(c->e);
    aellm_model_free(c->work);
    free(c->x);
    free(c->tmp);
    free(c->dbuf);
    free(c);
}

int aellm_calib_collect(aellm_calib *c, int l)
{
    for (int i = 0; i < AELLM_IN_COUNT; i++) input_reset(&c->in[i]);
    aellm_engine_set_hook(c->e, hook, c);
    int rc = run_all(c, l, 0);
    aellm_engine_set_hook(c->e, NULL, NULL);
    for (int i = 0; i < AELLM_IN_COUNT; i++) input_finish(&c->in[i]);
    return rc;
}

int aellm_calib_advance(aellm_calib *c, int l)
{
    return run_all(c, l, 1);
}
