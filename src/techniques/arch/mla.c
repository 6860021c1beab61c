/* Attention -> multi-head latent attention, post hoc (MHA2MLA, Ji et al.
 * 2025; TransMLA). Per layer and KV head, the RoPE frequency pairs that
 * carry most of the attention keep their rotation: MHA2MLA's 2-norm rule
 * scores pair i of query head h by the mean norm of its query part times the
 * mean norm of its key part over calibration text (rotation leaves a pair's
 * norm alone, so the unrotated projections give it), summed over the query
 * heads of the KV head; the top d_rope / 2 stay rotary. The other pairs lose
 * their position and, with the values, go through a latent: a joint
 * truncated SVD of the position-free key rows stacked on the value rows,
 *   [W_k,nope ; W_v] ~ (U_r S_r) V_r^T,
 * gives W_dkv = V_r^T (dim -> r) and the up-projections U_r S_r. With every
 * pair rotary and r at the stack's rank the model is unchanged.
 *
 * Where calibration text is given the truncation is fitted to what the
 * model computes on it, not to the weights alone (as ASVD and SVD-LLM do
 * for weight compression): with the attention inputs' second moment
 * X^T X = L L^T, minimising ||X (M - M_r)^T|| is the truncated SVD of M L
 * = U S V^T, so W_dkv = V_r^T L^-1 and the up-projections U_r S_r, then
 * written in the basis where W_dkv's rows are orthonormal. The inputs are far
 * from isotropic (RMSNorm's gains, outlier channels), and this keeps the
 * directions the text uses (bench/mla_svd_table.sh). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/arch.h"
#include "core/error.h"
#include "engine/engine_internal.h"
#include "model/model.h"
#include "techniques/arch/arch_internal.h"
#include "techniques/quant/quant_internal.h"

/* LAPACK's Cholesky and SVD (OpenBLAS exports them), column-major. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
                    const double *tau, double *work, const int *lwork, int *info);
extern void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
                    const int *lda, double *s, double *u, const int *ldu, double *vt,
                    const int *ldvt, double *work, const int *lwork, int *info);

int aellm_mla_default_rope_dim(int head_dim)
{
    int dr = head_dim / 4 > 8 ? head_dim / 4 : 8;
    return (dr < head_dim ? dr : head_dim) & ~1;
}

void aellm_mla_params_default(aellm_mla_params *p)
{
    memset(p, 0, sizeof(*p));
    p->calib_tokens = 4096;
}

/* ---- scoring the rotary pairs ---- */

/* Per layer: sum over tokens of the norm of each (query head, pair) and
 * (KV head, pair) of the projections, and the token count. */
typedef struct {
    const aellm_model *m;
    double *q, *k; /* (L, n_heads, hd/2), (L, n_kv, hd/2) */
    int64_t *n;    /* (L) */
    double *cov;   /* (L, dim, dim) upper triangle of X^T X, the attention inputs' (NULL:
                      not wanted) */
    int failed;    /* an allocation in the hook failed: the statistics are partial */
} pair_norms;

static int add_pair_norms(const aellm_tensor *w, const float *x, int n, int64_t dim, double *acc,
                          int heads, int half)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(w->type);
    float *row0 = malloc((size_t)(2 * dim + 64) * sizeof(float)), *row1 = row0 + dim + 32;
    if (!row0) return AELLM_ENOMEM;
    for (int p = 0; p < heads * half; p++) {
        tr->to_float((const char *)w->data + (size_t)(2 * p) * w->row_bytes, row0, dim);
        tr->to_float((const char *)w->data + (size_t)(2 * p + 1) * w->row_bytes, row1, dim);
        for (int t = 0; t < n; t++) {
            const float *xt = x + (size_t)t * dim;
            double a = 0, b = 0;
            for (int64_t j = 0; j < dim; j++)
                a += (double)row0[j] * xt[j], b += (double)row1[j] * xt[j];
            acc[p] += sqrt(a * a + b * b);
        }
    }
    free(row0);
    return 0;
}

static void norm_hook(void *user, int layer, int linear, const float *x, int n, int64_t width)
{
    pair_norms *s = user;
    if (linear != AELLM_LINEAR_WQ) return;
    const aellm_model_config *c = &s->m->cfg;
    int half = c->head_dim / 2;
    const aellm_layer *y = &s->m->layers[layer];
    if (add_pair_norms(&y->wq, x, n, width, s->q + (size_t)layer * c->n_heads * half, c->n_heads,
                       half) ||
        add_pair_norms(&y->wk, x, n, width, s->k + (size_t)layer * c->n_kv_heads * half,
                       c->n_kv_heads, half))
        s->failed = 1;
    s->n[layer] += n;
    if (s->cov) {
        double *xd = malloc((size_t)n * width * sizeof(double));
        if (!xd) {
            s->failed = 1;
            return;
        }
        aellm_add_xtx(s->cov + (size_t)layer * width * width, xd, x, n, width);
        free(xd);
    }
}

/* Pair norms over calibration text: sequences of BOS + text through the
 * model, the hook seeing each layer's attention input. */
static int calibrated_norms(pair_norms *s, const char *path, int64_t want)
{
    const aellm_model *m = s->m;
    char *text = NULL;
    size_t len = 0, n = 0;
    int rc = aellm_quant_read_calib(&text, &len, path, 0, 0);
    if (rc) return rc;
    int ctx = m->cfg.seq_len < 256 ? m->cfg.seq_len : 256;
    size_t bytes = (size_t)want * 64 < len ? (size_t)want * 64 : len;
    int32_t *ids = malloc((bytes + 8) * sizeof(int32_t)), *seq = malloc((size_t)ctx * 4);
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = ctx, ep.n_batch = ctx;
    if (!ids || !seq) rc = aellm_error_oom("calibration tokens", bytes * 4);
    if (!rc) rc = aellm_tokenizer_encode(m->tokenizer, text, bytes, 0, ids, bytes + 8, &n);
    if (!rc && n < (size_t)ctx)
        rc = aellm_error_set(AELLM_EINVAL, "%s: %zu tokens, fewer than one sequence of %d", path, n,
                             ctx);
    if (!rc) rc = aellm_engine_new(&e, m, &ep);
    if (!rc) aellm_engine_set_hook(e, norm_hook, s);
    for (size_t at = 0; !rc && at + ctx - 1 <= n && (int64_t)at < want; at += ctx - 1) {
        seq[0] = aellm_tokenizer_bos(m->tokenizer);
        memcpy(seq + 1, ids + at, (size_t)(ctx - 1) * sizeof(int32_t));
        rc = aellm_engine_eval(e, seq, ctx, 0, NULL, 0);
    }
    aellm_engine_free(e);
    free(text), free(ids), free(seq);
    if (!rc && s->failed) rc = aellm_error_oom("the attention inputs' statistics", 0);
    return rc;
}

/* Without text: each pair's rows' Frobenius norm stands for its output's. */
static void weight_norms(pair_norms *s)
{
    const aellm_model_config *c = &s->m->cfg;
    int half = c->head_dim / 2, dim = c->dim;
    float *row = malloc((size_t)(dim + 64) * sizeof(float));
    if (!row) return;
    for (int l = 0; l < c->n_layers; l++) {
        const aellm_tensor *ts[2] = {&s->m->layers[l].wq, &s->m->layers[l].wk};
        double *acc[2] = {s->q + (size_t)l * c->n_heads * half,
                          s->k + (size_t)l * c->n_kv_heads * half};
        for (int w = 0; w < 2; w++) {
            const aellm_dtype_traits *tr = aellm_dtype_traits_get(ts[w]->type);
            for (int64_t r = 0; r < ts[w]->ne[1]; r++) {
                tr->to_float((const char *)ts[w]->data + (size_t)r * ts[w]->row_bytes, row, dim);
                double ss = 0;
                for (int j = 0; j < dim; j++) ss += (double)row[j] * row[j];
                acc[w][r / 2] += ss;
            }
        }
        s->n[l] = 1;
    }
    free(row);
}

/* sel[g * pairs + j]: KV head g's rotary pairs, ascending; 2-norm rule. */
static void choose_pairs(const pair_norms *s, int l, int pairs, int *sel)
{
    const aellm_model_config *c = &s->m->cfg;
    int half = c->head_dim / 2, per = c->n_heads / c->n_kv_heads;
    double score[2048];
    for (int g = 0; g < c->n_kv_heads; g++) {
        for (int i = 0; i < half; i++) {
            double k = s->k[((size_t)l * c->n_kv_heads + g) * half + i], q = 0;
            for (int h = g * per; h < (g + 1) * per; h++)
                q += s->q[((size_t)l * c->n_heads + h) * half + i];
            score[i] = q * k;
        }
        int *out = sel + (size_t)g * pairs;
        for (int j = 0; j < pairs; j++) {
            int best = -1;
            for (int i = 0; i < half; i++) {
                int taken = 0;
                for (int t = 0; t < j; t++) taken |= out[t] == i;
                if (!taken && (best < 0 || score[i] > score[best])) best = i;
            }
            out[j] = best;
        }
        for (int a = 1; a < pairs; a++) /* ascending: the rotary part in frequency order */
            for (int b = a; b > 0 && out[b - 1] > out[b]; b--) {
                int t = out[b];
                out[b] = out[b - 1], out[b - 1] = t;
            }
    }
}

/* ---- the new layer ---- */

/* Head-local dimension order: the rotary pairs' dims, then the others'. */
static void dim_order(const int *sel, int pairs, int hd, int *order)
{
    int n = 0, is_sel[1024] = {0};
    for (int j = 0; j < pairs; j++)
        is_sel[sel[j]] = 1, order[n++] = 2 * sel[j], order[n++] = 2 * sel[j] + 1;
    for (int i = 0; i < hd / 2; i++)
        if (!is_sel[i]) order[n++] = 2 * i, order[n++] = 2 * i + 1;
}

/* Rows of t picked by index, bytes copied (any type). */
static int pick_rows(aellm_model *m, aellm_tensor *out, const aellm_tensor *t, const int *rows,
                     int n)
{
    char *dst = aellm_model_own(m, t->row_bytes * (size_t)n);
    if (!dst) return AELLM_ENOMEM;
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * t->row_bytes,
               (const char *)t->data + (size_t)rows[i] * t->row_bytes, t->row_bytes);
    aellm_tensor_set(out, t->type, t->ne[0], n, dst);
    return 0;
}

static void row_f32(const aellm_tensor *t, int r, float *out)
{
    aellm_dtype_traits_get(t->type)->to_float((const char *)t->data + (size_t)r * t->row_bytes, out,
                                              t->ne[0]);
}

/* The lower factor L (dim x dim, row-major) of C + damp I = L L^T, C the
 * upper triangle of X^T X: damping 1 % of the mean diagonal (GPTQ's), so
 * that channels the text never used keep a direction. */
static int input_factor(double *L, const double *C, int dim)
{
    double mean = 0;
    for (int i = 0; i < dim; i++) mean += C[(size_t)i * dim + i] / dim;
    for (int i = 0; i < dim; i++)
        for (int j = 0; j < dim; j++) /* the upper triangle, mirrored */
            L[(size_t)i * dim + j] = i <= j ? C[(size_t)i * dim + j] : C[(size_t)j * dim + i];
    for (int i = 0; i < dim; i++) L[(size_t)i * dim + i] += 0.01 * mean + 1e-12;
    int info = 0;
    dpotrf_("U", &dim, L, &dim, &info); /* column-major upper = row-major lower */
    if (info)
        return aellm_error_set(AELLM_ERROR,
                               "the attention inputs' second moment is not positive "
                               "definite (info %d)",
                               info);
    for (int i = 0; i < dim; i++)
        for (int j = i + 1; j < dim; j++) L[(size_t)i * dim + j] = 0;
    return 0;
}

/* The latent D (r x dim) with up (m x r) in the basis that makes D's rows
 * orthonormal (D^T = Q R: D = R^T Q^T, so Q^T and up R^T compute the same
 * keys and values). The weighted SVD's D = V_r^T L^-1 makes the latent white
 * but its rows large and uneven, which uptraining took worse. */
static int orthonormal_latent(double *D, int r, int dim, float *up, int m)
{
    int info = 0, lwork = 64 * r;
    double *tau = malloc((size_t)r * sizeof(double)),
           *work = malloc((size_t)lwork * sizeof(double));
    double *R = calloc((size_t)r * r, sizeof(double));
    float *row = malloc((size_t)r * sizeof(float));
    if (!tau || !work || !R || !row) {
        free(tau), free(work), free(R), free(row);
        return aellm_error_oom("a QR factorisation", (size_t)r * r * 8);
    }
    dgeqrf_(&dim, &r, D, &dim, tau, work, &lwork, &info); /* row-major D is column-major D^T */
    for (int i = 0; !info && i < r; i++)
        for (int j = i; j < r; j++) R[(size_t)i * r + j] = D[(size_t)j * dim + i];
    if (!info) dorgqr_(&dim, &r, &r, D, &dim, tau, work, &lwork, &info);
    for (int a = 0; !info && a < m; a++) {
        float *u = up + (size_t)a * r;
        for (int i = 0; i < r; i++) {
            double acc = 0;
            for (int j = i; j < r; j++) acc += (double)u[j] * R[(size_t)i * r + j];
            row[i] = (float)acc;
        }
        memcpy(u, row, (size_t)r * sizeof(float));
    }
    free(tau), free(work), free(R), free(row);
    return info ? aellm_error_set(AELLM_ERROR, "the latent's QR failed (info %d)", info) : 0;
}

/* Joint SVD of M (m x dim, rows: position-free key rows then value rows),
 * or of M L with the inputs' factor L (NULL: none): dkv (r x dim) = the top
 * right singular vectors (times L^-1), up (m x r) = U S. Returns the share
 * of the squared norm of M (M L) the rank keeps in *kept. */
static int joint_svd(const double *M, const double *L, int m, int dim, int r, float *dkv, float *up,
                     double *kept)
{
    int k = m < dim ? m : dim, lwork = -1, info = 0;
    double *A = malloc((size_t)m * dim * sizeof(double)), *S = malloc((size_t)k * sizeof(double));
    double *U = malloc((size_t)dim * k * sizeof(double)),
           *VT = malloc((size_t)k * m * sizeof(double));
    double q;
    int rc = A && S && U && VT ? 0 : aellm_error_oom("an SVD", (size_t)m * dim * 8);
    /* row-major M is column-major M^T (dim x m): M^T = U S VT, so M = VT^T S U^T */
    if (!rc && L)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dim, dim, 1.0, M, dim, L, dim,
                    0.0, A, dim);
    else if (!rc)
        memcpy(A, M, (size_t)m * dim * sizeof(double));
    if (!rc) dgesvd_("S", "S", &dim, &m, A, &dim, S, U, &dim, VT, &k, &q, &lwork, &info);
    double *work = NULL;
    if (!rc && !info) {
        lwork = (int)q;
        work = malloc((size_t)lwork * sizeof(double));
        if (!work) rc = aellm_error_oom("an SVD", (size_t)lwork * 8);
    }
    if (!rc && !info) dgesvd_("S", "S", &dim, &m, A, &dim, S, U, &dim, VT, &k, work, &lwork, &info);
    if (!rc && info) rc = aellm_error_set(AELLM_ERROR, "the SVD did not converge (info %d)", info);
    double all = 0, in = 0;
    for (int j = 0; !rc && j < k; j++) all += S[j] * S[j], in += j < r ? S[j] * S[j] : 0;
    if (!rc && L) /* right singular vectors V_r^T L^-1, in place (dim x k, k >= r rows) */
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit,
                    r < k ? r : k, dim, 1.0, L, dim, U, dim);
    for (int i = 0; !rc && i < m; i++)
        for (int j = 0; j < r; j++)
            up[(size_t)i * r + j] = j < k ? (float)(VT[j + (size_t)i * k] * S[j]) : 0;
    if (!rc && L && r <= k && r <= dim) rc = orthonormal_latent(U, r, dim, up, m);
    for (int j = 0; !rc && j < r; j++)
        for (int c = 0; c < dim; c++)
            dkv[(size_t)j * dim + c] = j < k ? (float)U[(size_t)j * dim + c] : 0;
    *kept = all > 0 ? in / all : 1;
    free(A), free(S), free(U), free(VT), free(work);
    return rc;
}

/* W_dkv in wk's type where its rows fit, else f32. */
static int store_dkv(aellm_model *m, aellm_tensor *t, int type, const float *f, int64_t dim, int r)
{
    if (!aellm_dtype_row_size(type, dim)) type = AELLM_DTYPE_F32;
    return aellm_arch_store(m, t, type, f, dim, r);
}

static int convert_layer(aellm_model *m, int l, const int *sel, int pairs, int r, const double *L,
                         double *kept)
{
    const aellm_model_config *c = &m->cfg;
    aellm_layer *y = &m->layers[l];
    int hd = c->head_dim, dr = 2 * pairs, dn = hd - dr, nkv = c->n_kv_heads, dim = c->dim;
    int mrows = nkv * (dn + hd), order[2048];
    int *qrows = malloc((size_t)c->n_heads * hd * sizeof(int)),
        *krows = malloc((size_t)nkv * dr * 4);
    double *M = malloc((size_t)mrows * dim * sizeof(double));
    float *row = malloc((size_t)(dim + 64) * sizeof(float));
    float *dkv = malloc((size_t)r * dim * 4), *up = malloc((size_t)mrows * r * 4);
    float *pairs_f = malloc((size_t)nkv * pairs * sizeof(float));
    int rc = qrows && krows && M && row && dkv && up && pairs_f
                 ? 0
                 : aellm_error_oom("a latent conversion", (size_t)mrows * dim * 8);
    for (int h = 0; !rc && h < c->n_heads; h++) {
        dim_order(sel + (size_t)(h / (c->n_heads / nkv)) * pairs, pairs, hd, order);
        for (int d = 0; d < hd; d++) qrows[h * hd + d] = h * hd + order[d];
    }
    for (int g = 0; !rc && g < nkv; g++) {
        dim_order(sel + (size_t)g * pairs, pairs, hd, order);
        for (int d = 0; d < dr; d++) krows[g * dr + d] = g * hd + order[d];
        for (int d = 0; d < dn; d++) { /* the position-free key rows, in the queries' order */
            row_f32(&y->wk, g * hd + order[dr + d], row);
            for (int j = 0; j < dim; j++) M[((size_t)g * dn + d) * dim + j] = row[j];
        }
        for (int j = 0; j < pairs; j++) pairs_f[g * pairs + j] = (float)sel[g * pairs + j];
    }
    for (int v = 0; !rc && v < nkv * hd; v++) {
        row_f32(&y->wv, v, row);
        for (int j = 0; j < dim; j++) M[((size_t)nkv * dn + v) * dim + j] = row[j];
    }
    if (!rc) rc = joint_svd(M, L, mrows, dim, r, dkv, up, kept);
    int wk_type = y->wk.type;
    if (!rc) rc = pick_rows(m, &y->wq, &y->wq, qrows, c->n_heads * hd);
    if (!rc) rc = pick_rows(m, &y->wk, &y->wk, krows, nkv * dr);
    if (!rc) rc = store_dkv(m, &y->w_dkv, wk_type, dkv, dim, r);
    if (!rc && dn > 0) /* every pair rotary: no position-free keys */
        rc = aellm_arch_store(m, &y->w_uk, AELLM_DTYPE_F32, up, r, (int64_t)nkv * dn);
    if (!rc)
        rc = aellm_arch_store(m, &y->w_uv, AELLM_DTYPE_F32, up + (size_t)nkv * dn * r, r,
                              (int64_t)nkv * hd);
    if (!rc) rc = aellm_arch_store(m, &y->rope_pairs, AELLM_DTYPE_F32, pairs_f, pairs, nkv);
    if (!rc) memset(&y->wv, 0, sizeof(y->wv));
    free(qrows), free(krows), free(M), free(row), free(dkv), free(up), free(pairs_f);
    return rc;
}

int aellm_model_to_mla(aellm_model *m, const aellm_mla_params *p, aellm_mla_report *rep)
{
    aellm_model_config *c = &m->cfg;
    int hd = c->head_dim, dr = p->rope_dim ? p->rope_dim : aellm_mla_default_rope_dim(hd);
    int full = 2 * c->n_kv_heads * hd, r = p->rank ? p->rank : full / 4;
    memset(rep, 0, sizeof(*rep));
    if (c->mla_rank)
        return aellm_error_set(AELLM_EINVAL, "the model's attention is latent already");
    if (dr < 2 || dr > hd || dr % 2)
        return aellm_error_set(AELLM_EINVAL, "%d rotary dims: want an even number in [2, %d]", dr,
                               hd);
    if (r < 1 || r > full)
        return aellm_error_set(AELLM_EINVAL,
                               "latent rank %d: want 1 to %d (2 x KV heads x head "
                               "dim)",
                               r, full);
    if (hd / 2 > 1024) return aellm_error_set(AELLM_EINVAL, "head_dim %d is too wide", hd);
    int weighted = p->calib_path && !p->plain_svd;
    size_t dd = (size_t)c->dim * c->dim;
    pair_norms s = {m,
                    calloc((size_t)c->n_layers * c->n_heads * hd / 2, sizeof(double)),
                    calloc((size_t)c->n_layers * c->n_kv_heads * hd / 2, sizeof(double)),
                    calloc((size_t)c->n_layers, sizeof(int64_t)),
                    weighted ? calloc((size_t)c->n_layers * dd, sizeof(double)) : NULL,
                    0};
    int pairs = dr / 2, *sel = malloc((size_t)c->n_kv_heads * pairs * sizeof(int));
    double *L = weighted ? malloc(dd * sizeof(double)) : NULL;
    int rc = s.q && s.k && s.n && sel && (!weighted || (s.cov && L))
                 ? 0
                 : aellm_error_oom("pair scores", weighted ? 16 * dd * c->n_layers : 0);
    if (!rc && p->calib_path) {
        if (!m->tokenizer)
            rc = aellm_error_set(AELLM_EINVAL, "%s: the model has no vocabulary to read it",
                                 p->calib_path);
        else
            rc = calibrated_norms(&s, p->calib_path, p->calib_tokens);
        rep->calib_tokens = rc ? 0 : s.n[0];
    } else if (!rc) {
        weight_norms(&s);
    }
    double kept = 0;
    for (int l = 0; !rc && l < c->n_layers; l++) {
        choose_pairs(&s, l, pairs, sel);
        if (weighted) rc = input_factor(L, s.cov + (size_t)l * dd, c->dim);
        if (!rc) rc = convert_layer(m, l, sel, pairs, r, L, &kept);
        rep->svd_energy_kept += kept / c->n_layers;
    }
    if (!rc) c->mla_rank = r, c->mla_rope_dim = dr;
    rep->rank = r, rep->rope_dim = dr, rep->svd_weighted = weighted;
    free(s.q), free(s.k), free(s.n), free(s.cov), free(sel), free(L);
    return rc;
}
