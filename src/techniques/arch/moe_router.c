/* Fitting a split model's routers on calibration text (MoEfication's
 * learned router): the converted model runs layer by layer over the text;
 * at each layer the FFN inputs X are kept, every expert is run on them to
 * find the one whose output is largest (the expert a token most needs), and
 * the router is fitted to pick it: softmax regression by Adam from the
 * centroid start. The layer is then run again with its fitted router, so
 * the next layer sees the inputs it will see in use. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/arch.h"
#include "core/error.h"
#include "engine/engine_internal.h"
#include "kernels/moe_route.h"
#include "model/model.h"
#include "techniques/arch/arch_internal.h"
#include "techniques/quant/quant_internal.h"

#define FIT_STEPS 300
#define FIT_LR    0.02f

/* The FFN inputs of one layer, as the engine's hook hands them over. */
typedef struct {
    float *X;
    int64_t n;
    int layer, dim;
} capture;

static void capture_hook(void *user, int layer, int linear, const float *x, int n, int64_t width)
{
    capture *c = user;
    (void)width;
    if (layer != c->layer || linear != AELLM_LINEAR_W_GATE) return;
    memcpy(c->X + c->n * c->dim, x, (size_t)n * c->dim * sizeof(float));
    c->n += n;
}

/* target[i] = the expert whose output on row i of X is largest; the first
 * n_keep rows' outputs of every expert go to keep (n_keep, E, dim). */
static int best_experts(const aellm_model *m, const aellm_layer *y, const float *X, int64_t N,
                        int *target, float *keep, int64_t n_keep)
{
    const aellm_model_config *c = &m->cfg;
    int E = c->n_experts, d = c->dim, h = c->hidden_dim;
    float *G = aellm_arch_f32(&y->w_gate), *U = aellm_arch_f32(&y->w_up),
          *D = aellm_arch_f32(&y->w_down);
    float *A = malloc((size_t)N * h * 4), *B = malloc((size_t)N * h * 4);
    float *Y = malloc((size_t)N * d * 4), *best = malloc((size_t)N * 4);
    int rc = G && U && D && A && B && Y && best ? 0 : aellm_error_oom("router targets", N * h * 8);
    for (int e = 0; !rc && e < E; e++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, h, d, 1.0f, X, d,
                    G + (size_t)e * h * d, d, 0.0f, A, h);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, h, d, 1.0f, X, d,
                    U + (size_t)e * h * d, d, 0.0f, B, h);
        for (int64_t i = 0; i < N * h; i++) A[i] = A[i] / (1.0f + expf(-A[i])) * B[i];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, d, h, 1.0f, A, h,
                    D + (size_t)e * d * h, h, 0.0f, Y, d);
        for (int64_t i = 0; i < N; i++) {
            float s = cblas_snrm2(d, Y + i * d, 1);
            if (e == 0 || s > best[i]) best[i] = s, target[i] = e;
            if (i < n_keep) memcpy(keep + (i * E + e) * d, Y + i * d, (size_t)d * sizeof(float));
        }
    }
    free(G), free(U), free(D), free(A), free(B), free(Y), free(best);
    return rc;
}

/* Share of rows whose most probable expert under router R is the target. */
static double agreement(const float *R, const float *X, int64_t N, int d, int E, const int *target,
                        float *P)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, E, d, 1.0f, X, d, R, d, 0.0f, P,
                E);
    int64_t hit = 0;
    for (int64_t i = 0; i < N; i++) {
        int arg = 0;
        for (int e = 1; e < E; e++) arg = P[i * E + e] > P[i * E + arg] ? e : arg;
        hit += arg == target[i];
    }
    return N ? (double)hit / (double)N : 0.0;
}

/* Softmax regression of target on X, full batch, Adam; R (E x d) in place. */
static int fit_router(float *R, const float *X, int64_t N, int d, int E, const int *target)
{
    size_t n = (size_t)E * d;
    float *P = malloc((size_t)N * E * 4), *g = malloc(n * 4), *m1 = calloc(n, 4),
          *m2 = calloc(n, 4);
    int rc = P && g && m1 && m2 ? 0 : aellm_error_oom("router fitting", (size_t)N * E * 4);
    for (int step = 1; !rc && step <= FIT_STEPS; step++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, E, d, 1.0f, X, d, R, d, 0.0f,
                    P, E);
        for (int64_t i = 0; i < N; i++) {
            float *p = P + i * E, mx = p[0], s = 0.0f;
            for (int e = 1; e < E; e++) mx = p[e] > mx ? p[e] : mx;
            for (int e = 0; e < E; e++) s += (p[e] = expf(p[e] - mx));
            for (int e = 0; e < E; e++) p[e] = p[e] / s - (e == target[i] ? 1.0f : 0.0f);
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, E, d, (int)N, 1.0f / (float)N, P, E, X,
                    d, 0.0f, g, d);
        float b1 = 1.0f - powf(0.9f, (float)step), b2 = 1.0f - powf(0.999f, (float)step);
        for (size_t i = 0; i < n; i++) {
            m1[i] = 0.9f * m1[i] + 0.1f * g[i];
            m2[i] = 0.999f * m2[i] + 0.001f * g[i] * g[i];
            R[i] -= FIT_LR * (m1[i] / b1) / (sqrtf(m2[i] / b2) + 1e-8f);
        }
    }
    free(P), free(g), free(m1), free(m2);
    return rc;
}

/* BOS, then the next ctx - 1 tokens of the text, for as many sequences as
 * `want` tokens make and the text holds. */
static int sequences(int32_t **out, int *n_seq, const aellm_model *m, const char *path,
                     int64_t want, int ctx)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    int rc = aellm_quant_read_calib(&text, &len, path, 0, 0);
    if (rc) return rc;
    size_t bytes = (size_t)want * 64 < len ? (size_t)want * 64 : len;
    int32_t *ids = malloc((bytes + 8) * sizeof(int32_t)), *seq = NULL;
    if (!ids) rc = aellm_error_oom("router fitting tokens", (bytes + 8) * 4);
    if (!rc) rc = aellm_tokenizer_encode(m->tokenizer, text, bytes, 0, ids, bytes + 8, &n);
    int64_t fit = (int64_t)n / (ctx - 1), seqs = want / ctx;
    *n_seq = (int)(seqs < fit ? seqs : fit);
    if (!rc && *n_seq < 1)
        rc = aellm_error_set(AELLM_EINVAL,
                             "%s: %zu tokens, fewer than one sequence of %d to fit "
                             "routers on",
                             path, n, ctx);
    if (!rc && !(seq = malloc((size_t)*n_seq * ctx * sizeof(int32_t))))
        rc = aellm_error_oom("router fitting sequences", (size_t)*n_seq * ctx * 4);
    for (int s = 0; !rc && s < *n_seq; s++) {
        seq[(size_t)s * ctx] = aellm_tokenizer_bos(m->tokenizer);
        memcpy(seq + (size_t)s * ctx + 1, ids + (size_t)s * (ctx - 1), (size_t)(ctx - 1) * 4);
    }
    free(text);
    free(ids);
    *out = seq;
    return rc;
}

/* Fits layer l's router on the captured inputs and gives it to the model. */
/* With k >= 2 the router's scale sets how the chosen experts' outputs are
 * mixed (top-1's weight is 1 at any scale): the scale from a grid whose
 * mixture, k sum_s w_s y_s (each y_s carries the split's factor k), comes
 * closest to the dense FFN, sum_e y_e / k, on the kept rows. */
static float mixing_scale(const float *R, const float *X, const float *Y, int64_t n, int d, int E,
                          int k)
{
    static const float grid[] = {1.0f, 0.5f, 0.25f, 0.1f, 0.05f, 0.02f};
    float best = 1.0f, p[256], w[256];
    int sel[256];
    double best_err = -1;
    for (size_t g = 0; g < sizeof(grid) / sizeof(grid[0]); g++) {
        double err = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *x = X + i * d, *y = Y + i * E * d;
            for (int e = 0; e < E; e++) p[e] = grid[g] * cblas_sdot(d, R + (size_t)e * d, 1, x, 1);
            aellm_moe_route(p, E, k, sel, w);
            for (int j = 0; j < d; j++) {
                double dense = 0, mix = 0;
                for (int e = 0; e < E; e++) dense += y[(size_t)e * d + j] / k;
                for (int s = 0; s < k; s++) mix += w[s] * y[(size_t)sel[s] * d + j];
                err += (mix - dense) * (mix - dense);
            }
        }
        if (best_err < 0 || err < best_err) best_err = err, best = grid[g];
    }
    return best;
}

#define KEEP_ROWS 1024

static int fit_layer(aellm_model *m, int l, const float *X, int64_t N, aellm_moe_fit_report *rep)
{
    const aellm_model_config *c = &m->cfg;
    int E = c->n_experts, d = c->dim;
    aellm_layer *y = &m->layers[l];
    int64_t keep = N < KEEP_ROWS ? N : KEEP_ROWS;
    int *target = malloc((size_t)N * sizeof(int)), k = c->n_experts_used;
    float *R = aellm_model_own(m, (size_t)E * d * sizeof(float)), *P = malloc((size_t)N * E * 4);
    float *Y = malloc((size_t)keep * E * d * sizeof(float));
    int rc = target && R && P && Y ? 0 : aellm_error_oom("router fitting", (size_t)N * E * 4);
    if (!rc) rc = best_experts(m, y, X, N, target, Y, keep);
    if (!rc) {
        memcpy(R, y->ffn_gate_inp.data, (size_t)E * d * sizeof(float));
        rep->agreement_before += agreement(R, X, N, d, E, target, P) / c->n_layers;
        rc = fit_router(R, X, N, d, E, target);
    }
    if (!rc) {
        rep->agreement += agreement(R, X, N, d, E, target, P) / c->n_layers;
        float scale = k > 1 ? mixing_scale(R, X, Y, keep, d, E, k) : 1.0f;
        cblas_sscal(E * d, scale, R, 1);
        rep->scale += scale / c->n_layers;
        aellm_tensor_set(&y->ffn_gate_inp, AELLM_DTYPE_F32, d, E, R);
    }
    free(target);
    free(P);
    free(Y);
    return rc;
}

int aellm_moe_fit_routers(aellm_model *m, const char *path, int64_t tokens,
                          aellm_moe_fit_report *rep)
{
    const aellm_model_config *c = &m->cfg;
    memset(rep, 0, sizeof(*rep));
    if (!c->n_experts) return aellm_error_set(AELLM_EINVAL, "the model has no experts to route");
    if (!m->tokenizer)
        return aellm_error_set(AELLM_EINVAL, "%s: the model has no vocabulary to read it", path);
    int ctx = c->seq_len < 256 ? c->seq_len : 256, n_seq = 0, d = c->dim;
    int32_t *seq = NULL;
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = ctx, ep.n_batch = ctx;
    int rc = sequences(&seq, &n_seq, m, path, tokens > 0 ? tokens : 8192, ctx);
    int64_t N = (int64_t)n_seq * ctx;
    float *x = rc ? NULL : malloc((size_t)N * d * 4),
          *tmp = rc ? NULL : malloc((size_t)ctx * d * 4);
    capture cap = {rc ? NULL : malloc((size_t)N * d * 4), 0, 0, d};
    if (!rc && (!x || !tmp || !cap.X)) rc = aellm_error_oom("router fitting states", N * d * 8);
    if (!rc) rc = aellm_engine_new(&e, m, &ep);
    const aellm_tensor *t = &m->tok_embd;
    for (int64_t i = 0; !rc && i < N; i++)
        aellm_dtype_traits_get(t->type)->to_float(
            (const char *)t->data + (size_t)seq[i] * t->row_bytes, x + i * d, d);
    for (int l = 0; !rc && l < c->n_layers; l++) {
        cap.layer = l, cap.n = 0;
        aellm_engine_set_hook(e, capture_hook, &cap);
        for (int s = 0; !rc && s < n_seq; s++)
            rc = aellm_engine_run_layer(
                e, l, memcpy(tmp, x + (size_t)s * ctx * d, (size_t)ctx * d * 4), ctx, 0);
        aellm_engine_set_hook(e, NULL, NULL);
        if (!rc) rc = fit_layer(m, l, cap.X, cap.n, rep);
        for (int s = 0; !rc && s < n_seq; s++)
            rc = aellm_engine_run_layer(e, l, x + (size_t)s * ctx * d, ctx, 0);
    }
    rep->tokens = N;
    aellm_engine_free(e);
    free(seq), free(x), free(tmp), free(cap.X);
    return rc;
}
