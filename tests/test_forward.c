/* The engine's forward pass against a naive scalar reference written here
 * from the Llama equations (no shared code with src/engine): logits must
 * agree within 1e-4 (F32) for MHA, GQA and MQA shapes, through both the
 * decode path (one token at a time) and the prefill path (a batch). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/engine.h"
#include "aellm/error.h"
#include "model/model.h"

/* ---- reference: plain loops over f32 weights, full recomputation ---- */

typedef struct {
    const aellm_model *m;
    float *k, *v; /* (L, T, kv_dim) */
} ref_state;

static const float *W(const aellm_tensor *t)
{
    return (const float *)t->data;
}

static void ref_matvec(float *y, const aellm_tensor *w, const float *x)
{
    for (int64_t r = 0; r < w->ne[1]; r++) {
        double s = 0;
        for (int64_t i = 0; i < w->ne[0]; i++) s += (double)W(w)[r * w->ne[0] + i] * x[i];
        y[r] = (float)s;
    }
}

static void ref_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) o[i] = w[i] * x[i] * scale;
}

static void ref_rope(float *v, int heads, int hd, int pos, float base)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd; i += 2) {
            double theta = pos * pow(base, -(double)i / hd);
            float a = v[h * hd + i], b = v[h * hd + i + 1];
            v[h * hd + i] = (float)(a * cos(theta) - b * sin(theta));
            v[h * hd + i + 1] = (float)(a * sin(theta) + b * cos(theta));
        }
}

/* Mixture of experts as llama.cpp's Llama-MoE: softmax over the router's
 * logits, the top k by a full sort of the experts (ties to the lower
 * index), their probabilities renormalised, each expert's SwiGLU summed
 * with its weight into x. */
static const double *sort_probs;
static int by_prob(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_probs[i] != sort_probs[j]) return sort_probs[i] > sort_probs[j] ? -1 : 1;
    return i - j;
}

static void ref_experts(const aellm_model_config *c, const aellm_layer *L, const float *xb,
                        float *x)
{
    int E = c->n_experts, k = c->n_experts_used, h = c->hidden_dim, dim = c->dim;
    double p[256], max = -1e30, sum = 0, wsum = 0;
    int order[256];
    for (int e = 0; e < E; e++) {
        p[e] = 0;
        for (int i = 0; i < dim; i++) p[e] += (double)W(&L->ffn_gate_inp)[e * dim + i] * xb[i];
        max = p[e] > max ? p[e] : max;
        order[e] = e;
    }
    for (int e = 0; e < E; e++) sum += (p[e] = exp(p[e] - max));
    for (int e = 0; e < E; e++) p[e] /= sum;
    sort_probs = p;
    qsort(order, (size_t)E, sizeof(int), by_prob);
    for (int s = 0; s < k; s++) wsum += p[order[s]];
    double *y = calloc(dim, sizeof(double)), *a = calloc(h, sizeof(double));
    for (int s = 0; s < k; s++) {
        int e = order[s];
        for (int j = 0; j < h; j++) {
            double gj = 0, uj = 0;
            for (int i = 0; i < dim; i++) {
                gj += (double)W(&L->w_gate)[((size_t)e * h + j) * dim + i] * xb[i];
                uj += (double)W(&L->w_up)[((size_t)e * h + j) * dim + i] * xb[i];
            }
            a[j] = gj / (1.0 + exp(-gj)) * uj;
        }
        for (int r = 0; r < dim; r++) {
            double o = 0;
            for (int j = 0; j < h; j++)
                o += (double)W(&L->w_down)[((size_t)e * dim + r) * h + j] * a[j];
            y[r] += p[e] / wsum * o;
        }
    }
    for (int r = 0; r < dim; r++) x[r] += (float)y[r];
    free(y), free(a);
}

/* Logits of the token at `pos` given that k/v hold positions < pos. */
static void ref_step(ref_state *s, int token, int pos, int T, float *logits)
{
    const aellm_model_config *c = &s->m->cfg;
    int dim = c->dim, hd = c->head_dim, kvd = c->n_kv_heads * hd, qd = c->n_heads * hd;
    float *x = calloc(dim, 4), *xb = calloc(qd > dim ? qd : dim, 4), *q = calloc(qd, 4);
    float *att = calloc(pos + 1, 4), *o = calloc(qd, 4), *t = calloc(dim, 4);
    float *g = calloc(c->hidden_dim, 4), *u = calloc(c->hidden_dim, 4);
    memcpy(x, W(&s->m->tok_embd) + (size_t)token * dim, dim * 4);
    for (int l = 0; l < c->n_layers; l++) {
        const aellm_layer *L = &s->m->layers[l];
        float *kl = s->k + ((size_t)l * T + pos) * kvd, *vl = s->v + ((size_t)l * T + pos) * kvd;
        ref_rmsnorm(xb, x, W(&L->attn_norm), dim, c->norm_eps);
        ref_matvec(q, &L->wq, xb);
        ref_matvec(kl, &L->wk, xb);
        ref_matvec(vl, &L->wv, xb);
        ref_rope(q, c->n_heads, hd, pos, c->rope_base);
        ref_rope(kl, c->n_kv_heads, hd, pos, c->rope_base);
        for (int h = 0; h < c->n_heads; h++) {
            int kh = h * c->n_kv_heads / c->n_heads;
            double max = -1e30, sum = 0;
            for (int p = 0; p <= pos; p++) {
                const float *kp = s->k + ((size_t)l * T + p) * kvd + kh * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[h * hd + i] * kp[i];
                att[p] = (float)(d / sqrt(hd));
                max = att[p] > max ? att[p] : max;
            }
            for (int p = 0; p <= pos; p++) sum += exp(att[p] - max);
            for (int i = 0; i < hd; i++) {
                double acc = 0;
                for (int p = 0; p <= pos; p++)
                    acc += exp(att[p] - max) / sum * s->v[((size_t)l * T + p) * kvd + kh * hd + i];
                o[h * hd + i] = (float)acc;
            }
        }
        ref_matvec(t, &L->wo, o);
        for (int i = 0; i < dim; i++) x[i] += t[i];
        ref_rmsnorm(xb, x, W(&L->ffn_norm), dim, c->norm_eps);
        if (c->n_experts) {
            ref_experts(c, L, xb, x);
            continue;
        }
        ref_matvec(g, &L->w_gate, xb);
        ref_matvec(u, &L->w_up, xb);
        for (int i = 0; i < c->hidden_dim; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        ref_matvec(t, &L->w_down, g);
        for (int i = 0; i < dim; i++) x[i] += t[i];
    }
    ref_rmsnorm(xb, x, W(&s->m->output_norm), dim, c->norm_eps);
    ref_matvec(logits, &s->m->output, xb);
    free(x), free(xb), free(q), free(att), free(o), free(t), free(g), free(u);
}

/* ---- comparison ---- */

static float max_abs_diff(const float *a, const float *b, int n)
{
    float d = 0;
    for (int i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void check_shape_moe(int n_heads, int n_kv_heads, int n_experts, int top_k)
{
    aellm_model_config cfg = {.dim = 64,
                              .hidden_dim = n_experts ? 48 : 160,
                              .n_experts = n_experts,
                              .n_experts_used = top_k,
                              .n_layers = 2,
                              .n_heads = n_heads,
                              .n_kv_heads = n_kv_heads,
                              .head_dim = 64 / n_heads,
                              .vocab_size = 96,
                              .seq_len = 32,
                              .rope_base = 10000.0f,
                              .norm_eps = 1e-5f};
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_F32, 7), 0);
    for (int l = 0; l < cfg.n_layers && n_experts; l++) {
        aellm_layer *y = &m->layers[l];
        /* routers decisive (no near ties), experts loud enough that a wrong
           choice moves the logits far past the tolerance */
        float *r = (float *)y->ffn_gate_inp.data;
        for (int i = 0; i < n_experts * cfg.dim; i++) r[i] *= 50.0f;
        aellm_tensor *ts[] = {&y->w_gate, &y->w_up, &y->w_down};
        for (int t = 0; t < 3; t++)
            for (int64_t i = 0; i < ts[t]->ne[0] * ts[t]->ne[1]; i++)
                ((float *)ts[t]->data)[i] *= 6.0f;
    }
    const int T = 12, V = cfg.vocab_size;
    int32_t toks[12];
    for (int i = 0; i < T; i++) toks[i] = (i * 37 + 5) % V;
    ref_state rs = {m, calloc((size_t)cfg.n_layers * T * cfg.n_kv_heads * cfg.head_dim, 4),
                    calloc((size_t)cfg.n_layers * T * cfg.n_kv_heads * cfg.head_dim, 4)};
    float *ref = malloc((size_t)T * V * 4), *got = malloc((size_t)T * V * 4);
    for (int p = 0; p < T; p++) ref_step(&rs, toks[p], p, T, ref + (size_t)p * V);

    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 32, ep.n_batch = 8; /* batches of 8 + 4 exercise the split */
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    for (int p = 0; p < T; p++) /* decode path */
        assert_int_equal(aellm_engine_eval(e, &toks[p], 1, p, got + (size_t)p * V, 0), 0);
    float d_decode = max_abs_diff(ref, got, T * V);
    memset(got, 0, (size_t)T * V * 4);
    assert_int_equal(aellm_engine_eval(e, toks, T, 0, got, 1), 0); /* prefill path */
    float d_prefill = max_abs_diff(ref, got, T * V);
    assert_int_equal(aellm_engine_eval(e, toks, 5, 0, NULL, 0), 0); /* prefill then decode */
    assert_int_equal(aellm_engine_eval(e, toks + 5, 7, 5, got, 0), 0);
    float d_mixed = max_abs_diff(ref + (size_t)(T - 1) * V, got, V);
    print_message("heads %d/%d, experts %d top-%d: max|diff| decode %.2e prefill %.2e mixed %.2e\n",
                  n_heads, n_kv_heads, n_experts, top_k, d_decode, d_prefill, d_mixed);
    assert_true(d_decode <= 1e-4f);
    assert_true(d_prefill <= 1e-4f);
    assert_true(d_mixed <= 1e-4f);
    aellm_engine_free(e);
    aellm_model_free(m);
    free(rs.k), free(rs.v), free(ref), free(got);
}

static void check_shape(int n_heads, int n_kv_heads)
{
    check_shape_moe(n_heads, n_kv_heads, 0, 0);
}

/* Top-k routing against the reference's sort, through decode and prefill
 * (where tokens are grouped by expert), so prefill equals decode too. */
static void test_forward_moe(void **state)
{
    (void)state;
    check_shape_moe(4, 2, 4, 2);
    check_shape_moe(4, 4, 8, 1);
    check_shape_moe(4, 1, 2, 2);
}

static void test_forward_mha(void **state)
{
    (void)state;
    check_shape(4, 4);
}

static void test_forward_gqa(void **state)
{
    (void)state;
    check_shape(8, 2);
}

static void test_forward_mqa(void **state)
{
    (void)state;
    check_shape(4, 1);
}

/* ---- quantized weights: against the reference on dequantized weights ---- */

static void dequantize_into(aellm_tensor *dst, const aellm_tensor *src)
{
    float *f = malloc((size_t)src->ne[0] * src->ne[1] * sizeof(float));
    for (int64_t r = 0; r < src->ne[1]; r++)
        aellm_dtype_traits_get(src->type)->to_float((const char *)src->data + r * src->row_bytes,
                                                    f + r * src->ne[0], src->ne[0]);
    *dst = *src;
    dst->type = AELLM_DTYPE_F32;
    dst->row_bytes = (size_t)src->ne[0] * sizeof(float);
    dst->data = f;
}

/* An f32 shadow of `m` for the reference (tensors owned by the test). */
static aellm_model *f32_shadow(const aellm_model *m)
{
    aellm_model *s = calloc(1, sizeof(*s));
    s->cfg = m->cfg;
    s->layers = calloc((size_t)m->cfg.n_layers, sizeof(aellm_layer));
    dequantize_into(&s->tok_embd, &m->tok_embd);
    dequantize_into(&s->output_norm, &m->output_norm);
    dequantize_into(&s->output, &m->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const aellm_tensor *a = &m->layers[l].attn_norm;
        aellm_tensor *b = &s->layers[l].attn_norm;
        for (size_t i = 0; i < sizeof(aellm_layer) / sizeof(aellm_tensor); i++)
            dequantize_into(b + i, a + i);
    }
    return s;
}

static void free_shadow(aellm_model *s)
{
    free((void *)s->tok_embd.data), free((void *)s->output_norm.data), free((void *)s->output.data);
    for (int l = 0; l < s->cfg.n_layers; l++) {
        aellm_tensor *t = &s->layers[l].attn_norm;
        for (size_t i = 0; i < sizeof(aellm_layer) / sizeof(aellm_tensor); i++)
            free((void *)t[i].data);
    }
    free(s->layers);
    free(s);
}

/* Quantized models run with Q8_0 activations (Q8_1 for q4_1), so they differ
 * from the f32 reference by the activation rounding: about 0.4 % of each
 * product (8-bit, per 32-block scale). Tolerance: 3 % of the largest |logit|.
 * Decode and prefill use the same quantized arithmetic in different orders
 * and must agree far more tightly (1e-3 of the largest |logit|). */
static void check_quantized(int type)
{
    aellm_model_config cfg = {.dim = 128,
                              .hidden_dim = 256,
                              .n_layers = 2,
                              .n_heads = 4,
                              .n_kv_heads = 2,
                              .head_dim = 32,
                              .vocab_size = 96,
                              .seq_len = 32,
                              .rope_base = 10000.0f,
                              .norm_eps = 1e-5f};
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, type, 11), 0);
    aellm_model *shadow = f32_shadow(m);
    const int T = 10, V = cfg.vocab_size;
    int32_t toks[10];
    for (int i = 0; i < T; i++) toks[i] = (i * 29 + 3) % V;
    ref_state rs = {shadow, calloc((size_t)cfg.n_layers * T * 64, 4),
                    calloc((size_t)cfg.n_layers * T * 64, 4)};
    float *ref = malloc((size_t)T * V * 4), *dec = malloc((size_t)T * V * 4);
    float *pre = malloc((size_t)T * V * 4);
    for (int p = 0; p < T; p++) ref_step(&rs, toks[p], p, T, ref + (size_t)p * V);
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 32;
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    for (int p = 0; p < T; p++)
        assert_int_equal(aellm_engine_eval(e, &toks[p], 1, p, dec + (size_t)p * V, 0), 0);
    assert_int_equal(aellm_engine_eval(e, toks, T, 0, pre, 1), 0);
    float scale = 0;
    for (int i = 0; i < T * V; i++) scale = fmaxf(scale, fabsf(ref[i]));
    float d_ref = max_abs_diff(ref, dec, T * V), d_paths = max_abs_diff(dec, pre, T * V);
    print_message("%s: max|logit| %.3f, decode vs f32 reference %.2e, decode vs prefill %.2e\n",
                  aellm_dtype_traits_get(type)->name, scale, d_ref, d_paths);
    assert_true(d_ref <= 0.03f * scale);
    assert_true(d_paths <= 1e-3f * scale);
    aellm_engine_free(e);
    aellm_model_free(m);
    free_shadow(shadow);
    free(rs.k), free(rs.v), free(ref), free(dec), free(pre);
}

static void test_forward_quantized(void **state)
{
    (void)state;
    const int types[] = {AELLM_DTYPE_F16, AELLM_DTYPE_BF16, AELLM_DTYPE_Q8_0, AELLM_DTYPE_Q4_0,
                         AELLM_DTYPE_Q4_1};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) check_quantized(types[i]);
}

static void test_eval_rejects_bad_input(void **state)
{
    (void)state;
    aellm_model_config cfg;
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_F32, 1), 0);
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    int32_t bad = cfg.vocab_size, ok = 1;
    assert_int_equal(aellm_engine_eval(e, &bad, 1, 0, NULL, 0), AELLM_EINVAL);
    assert_int_equal(aellm_engine_eval(e, &ok, 1, cfg.seq_len, NULL, 0), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "context"));
    aellm_engine_free(e);
    aellm_model_free(m);
}

/* b within `tol` of a, relative to a's largest magnitude (which is not 0). */
static void assert_close(const float *a, const float *b, size_t n, double tol)
{
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    assert_true(scale > 0.0);
    assert_true(worst <= tol * scale);
}

/* An engine of 3 threads created with the environment variable `var` set to
 * `value` (then unset), after decoding T tokens one at a time into logits. */
static aellm_engine *decode_under(const aellm_model *m, const char *var, const char *value, int T,
                                  float *logits)
{
    int V = m->cfg.vocab_size;
    setenv(var, value, 1);
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 16, ep.n_threads = 3;
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    unsetenv(var);
    for (int p = 0; p < T; p++) {
        int32_t tok = (p * 31 + 3) % V;
        assert_int_equal(aellm_engine_eval(e, &tok, 1, p, logits + (size_t)p * V, 0), 0);
    }
    return e;
}

/* The same, for its decode accounting only. */
static void decode_fused(const aellm_model *m, const char *fuse, int T, float *logits,
                         aellm_engine_decode_stats *d)
{
    aellm_engine *e = decode_under(m, "AELLM_DECODE_FUSE", fuse, T, logits);
    aellm_engine_decode_stats_get(e, d);
    aellm_engine_free(e);
}

/* Decode's two ways of sharing out rows give the same logits bit for bit (a
 * row is always computed by the same kernel, whichever thread takes it), with
 * an odd thread count so that shares end mid-group; the accounting adds up,
 * and a bad AELLM_DECODE_SPLIT is refused by name. */
static void test_decode_split(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    const int types[] = {AELLM_DTYPE_F32, AELLM_DTYPE_Q4_0};
    for (int ti = 0; ti < 2; ti++) {
        aellm_model *m = NULL;
        assert_int_equal(aellm_model_random(&m, &cfg, types[ti], 5), 0);
        const int T = 10, V = cfg.vocab_size;
        float *got[2] = {malloc((size_t)T * V * 4), malloc((size_t)T * V * 4)};
        const char *splits[2] = {"static", "steal"};
        for (int k = 0; k < 2; k++) {
            aellm_engine *e = decode_under(m, "AELLM_DECODE_SPLIT", splits[k], T, got[k]);
            aellm_engine_decode_stats d;
            aellm_engine_decode_stats_get(e, &d);
            assert_int_equal(d.threads, 3);
            assert_int_equal(d.steal, k);
            assert_true(d.decode_s > 0 && d.wait_s >= 0 && d.wait_s <= 3 * d.decode_s);
            assert_true(d.steps > 0 && d.stolen <= d.steps);
            if (!k) assert_true(d.stolen == 0);
            aellm_engine_decode_stats_reset(e);
            aellm_engine_decode_stats_get(e, &d);
            assert_true(d.steps == 0 && d.decode_s == 0);
            aellm_engine_free(e);
        }
        assert_memory_equal(got[0], got[1], (size_t)T * V * 4);
        free(got[0]), free(got[1]);
        setenv("AELLM_DECODE_SPLIT", "dynamic", 1);
        aellm_engine *e = NULL;
        assert_int_equal(aellm_engine_new(&e, m, NULL), AELLM_EINVAL);
        assert_non_null(strstr(aellm_error_last(), "AELLM_DECODE_SPLIT=dynamic"));
        unsetenv("AELLM_DECODE_SPLIT");
        aellm_model_free(m);
    }
}

/* Q, K, V (and gate, up) that lie back to back are read as one product, and
 * give the logits of reading them apart (the rows meet other kernels' row
 * slots, hence other float orders); a layer whose V lies elsewhere is read
 * apart, and a bad AELLM_DECODE_FUSE is refused by name. */
static void test_decode_fuse(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    const int types[] = {AELLM_DTYPE_F32, AELLM_DTYPE_F16};
    for (int ti = 0; ti < 2; ti++) {
        aellm_model *m = NULL;
        assert_int_equal(aellm_model_random(&m, &cfg, types[ti], 5), 0);
        const int T = 8, V = cfg.vocab_size, L = cfg.n_layers;
        const unsigned long long per = 3ull * T; /* counted per thread and token */
        size_t bytes = (size_t)T * V * sizeof(float);
        float *apart = malloc(bytes), *fused = malloc(bytes);
        aellm_engine_decode_stats d;
        decode_fused(m, "0", T, apart, &d);
        assert_int_equal(d.fuse, 0);
        assert_true(d.tokens == (unsigned long long)T);
        assert_true(d.products == per * (7 * L + 1) && d.fused == 0);
        decode_fused(m, "1", T, fused, &d);
        assert_int_equal(d.fuse, 1);
        assert_true(d.products == per * (4 * L + 1) && d.fused == per * 2 * L);
        assert_close(apart, fused, (size_t)T * V, 1e-5);

        /* layer 0's V moved elsewhere: its Q, K, V are read apart */
        aellm_tensor *wv = &m->layers[0].wv;
        size_t vbytes = (size_t)wv->ne[1] * wv->row_bytes;
        void *copy = malloc(vbytes + 64);
        memcpy((char *)copy + 64, wv->data, vbytes);
        const void *was = wv->data;
        wv->data = (char *)copy + 64;
        decode_fused(m, "1", T, fused, &d);
        assert_true(d.products == per * (4 * L + 3) && d.fused == per * (2 * L - 1));
        assert_close(apart, fused, (size_t)T * V, 1e-5);
        wv->data = was;
        free(copy);

        setenv("AELLM_DECODE_FUSE", "yes", 1);
        aellm_engine *e = NULL;
        assert_int_equal(aellm_engine_new(&e, m, NULL), AELLM_EINVAL);
        assert_non_null(strstr(aellm_error_last(), "AELLM_DECODE_FUSE=yes"));
        unsetenv("AELLM_DECODE_FUSE");
        free(apart), free(fused);
        aellm_model_free(m);
    }

    /* q4_0 in the decode layout: groups of 16 rows stay whole in the fused
       view (260K's Q, K and V: 64 + 32 + 32 rows of 36 bytes, back to back) */
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_Q4_0, 5), 0);
    int n = 0;
    assert_int_equal(aellm_model_repack(m, &n), 0);
    assert_true(n > 0);
    assert_int_equal(m->layers[0].wk.type, AELLM_DTYPE_Q4_0_R16);
    const int T = 8, V = cfg.vocab_size;
    float *apart = malloc((size_t)T * V * sizeof(float)),
          *fused = malloc((size_t)T * V * sizeof(float));
    aellm_engine_decode_stats d;
    decode_fused(m, "0", T, apart, &d);
    decode_fused(m, "1", T, fused, &d);
    assert_true(d.fused >= 3ull * T * cfg.n_layers); /* at least every layer's Q, K, V */
    assert_close(apart, fused, (size_t)T * V, 1e-5);
    free(apart), free(fused);
    aellm_model_free(m);
}

/* Logits of T tokens, one at a time (decode) and as one batch (prefill). */
static void run_both(const aellm_model *m, int T, float *dec, float *pre)
{
    int V = m->cfg.vocab_size;
    int32_t toks[16];
    for (int p = 0; p < T; p++) toks[p] = (p * 31 + 3) % V;
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 16, ep.n_threads = 3; /* an odd count: shares end mid-group unless aligned */
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    for (int p = 0; p < T; p++)
        assert_int_equal(aellm_engine_eval(e, &toks[p], 1, p, dec + (size_t)p * V, 0), 0);
    assert_int_equal(aellm_engine_eval(e, toks, T, 0, pre, 1), 0);
    aellm_engine_free(e);
}

/* aellm_model_repack: q4_0 matrices in the decode layout give the logits of
 * the plain layout (decode: the same block sums in another float order;
 * prefill: the same x8 tiles, bit for bit), the weight type still reads
 * q4_0, saving is refused, a second repack finds nothing, and
 * AELLM_REPACK=0 leaves the model alone. */
static void test_repack(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "15M"), 0);
    cfg.n_layers = 2;
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_Q4_0, 9), 0);
    const int T = 6, V = cfg.vocab_size;
    size_t bytes = (size_t)T * V * sizeof(float);
    float *dec0 = malloc(bytes), *pre0 = malloc(bytes), *dec1 = malloc(bytes),
          *pre1 = malloc(bytes);
    run_both(m, T, dec0, pre0);

    setenv("AELLM_REPACK", "0", 1);
    int n = -1;
    assert_int_equal(aellm_model_repack(m, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(m->layers[0].wq.type, AELLM_DTYPE_Q4_0);
    unsetenv("AELLM_REPACK");

    assert_int_equal(aellm_model_repack(m, &n), 0);
    int want = 7 * cfg.n_layers + (m->cfg.tied_output ? 0 : 1);
    assert_int_equal(n, want);
    assert_int_equal(m->layers[1].w_down.type, AELLM_DTYPE_Q4_0_R16);
    assert_int_equal(m->tok_embd.type, AELLM_DTYPE_Q4_0); /* read by row: stays */
    assert_int_equal(aellm_model_weight_type(m), AELLM_DTYPE_Q4_0);
    run_both(m, T, dec1, pre1);
    assert_memory_equal(pre0, pre1, bytes);
    assert_close(dec0, dec1, (size_t)T * V, 1e-5);

    assert_int_equal(aellm_model_repack(m, &n), 0);
    assert_int_equal(n, 0);
    const char *path = "/tmp/aellm_test_repacked.gguf";
    remove(path);
    assert_int_equal(aellm_model_save_gguf(m, path, -1), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "decode layout"));
    FILE *f = fopen(path, "rb");
    assert_null(f);
    free(dec0), free(pre0), free(dec1), free(pre1);
    aellm_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_mha),
        cmocka_unit_test(test_forward_moe),
        cmocka_unit_test(test_forward_gqa),
        cmocka_unit_test(test_forward_mqa),
        cmocka_unit_test(test_forward_quantized),
        cmocka_unit_test(test_eval_rejects_bad_input),
        cmocka_unit_test(test_decode_split),
        cmocka_unit_test(test_decode_fuse),
        cmocka_unit_test(test_repack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
