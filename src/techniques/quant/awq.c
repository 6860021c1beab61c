/* AWQ (Lin et al., 2023): scales each input channel of a weight by
 * s_j = mean|x_j|^a before rounding, so the channels that carry large
 * activations lose less to rounding, and divides the activations by s (the
 * division is folded into the preceding op, so inference pays nothing). The
 * exponent a is searched on the calibration rows. Then, as the paper's code
 * does (auto_clip), each group's range is clipped where that lowers the
 * group's output error. The folding into norms and matrices is the model
 * driver's (quantize.c). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "techniques/quant/quant_internal.h"

/* s = max(mean|x|^a, 1e-4), normalised so that sqrt(max s * min s) = 1 (the
 * scale of s is otherwise arbitrary; this keeps W diag(s) near W's range). */
static void awq_scales(float *s, const float *mean_abs, int64_t n, float a)
{
    float lo = INFINITY, hi = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        s[j] = fmaxf(powf(mean_abs[j], a), 1e-4f);
        lo = fminf(lo, s[j]), hi = fmaxf(hi, s[j]);
    }
    float norm = 1.0f / sqrtf(hi * lo);
    for (int64_t j = 0; j < n; j++) s[j] *= norm;
}

/* Q(W diag(s)) diag(1/s) into V, through the stored type's RTN. */
static int fake_quant_scaled(float *V, void *qbuf, const float *W, int64_t rows, int64_t n,
                             const float *s, int type, int per_tensor)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) V[r * n + j] = W[r * n + j] * s[j];
    int rc = aellm_quant_rtn(qbuf, V, rows, n, type, per_tensor);
    if (rc) return rc;
    aellm_quant_dequant(V, qbuf, rows, n, type);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) V[r * n + j] /= s[j];
    return 0;
}

/* Output error of the group's matrices under scales s, summed. */
static int group_error(double *err, const aellm_scale_group *g, const float *s, float *V,
                       void *qbuf)
{
    *err = 0.0;
    for (int m = 0; m < g->n_mats; m++) {
        double e;
        int rc =
            fake_quant_scaled(V, qbuf, g->W[m], g->rows[m], g->n, s, g->type[m], g->per_tensor);
        if (!rc) rc = aellm_quant_out_err2(&e, NULL, g->X, g->S, g->W[m], V, g->rows[m], g->n);
        if (rc) return rc;
        *err += e;
    }
    return 0;
}

int aellm_awq_search(float *s, float *alpha, const aellm_scale_group *g, int grid)
{
    int64_t n = g->n, rows = 0;
    size_t qbytes = 0;
    for (int m = 0; m < g->n_mats; m++) {
        rows = g->rows[m] > rows ? g->rows[m] : rows;
        size_t b = aellm_dtype_row_size(g->type[m], n) * (size_t)g->rows[m];
        qbytes = b > qbytes ? b : qbytes;
    }
    float *V = malloc((size_t)(rows * n) * sizeof(float)), *try = malloc((size_t)n * sizeof(float));
    void *qbuf = malloc(qbytes);
    int rc = 0;
    if (!V || !try || !qbuf) {
        rc = aellm_error_oom("awq search", (unsigned long long)(rows * n * 4));
        goto done;
    }
    double best = INFINITY;
    if (grid < 1) grid = 1;
    /* a = 0 first (s = 1: plain RTN); a later grid point wins only when
     * strictly better, so AWQ is never worse than RTN on these rows */
    for (int k = 0; k < grid; k++) {
        float a = (float)k / (float)grid;
        double e;
        awq_scales(try, g->mean_abs, n, a);
        if ((rc = group_error(&e, g, try, V, qbuf))) goto done;
        if (e < best) {
            best = e;
            *alpha = a;
            memcpy(s, try, (size_t)n * sizeof(float));
        }
    }
done:
    free(V);
    free(try);
    free(qbuf);
    return rc;
}

/* ---- weight clipping (the reference code's auto_clip) ---- */

/* The grid's fit to x clamped to [-p max|x|, p max|x|]: the reference clamps
 * symmetrically and then fits (for an asymmetric grid only the side beyond
 * p max|x| moves; for a symmetric one this is fit(p x)). */
static void fit_clamped(const aellm_dtype_grid *g, const float *x, int64_t n, float p,
                        aellm_qparams *out, float *tmp)
{
    float amax = 0.0f;
    if (p == 1.0f) return g->fit(x, n, out);
    for (int64_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    for (int64_t j = 0; j < n; j++) tmp[j] = fminf(fmaxf(x[j], -p * amax), p * amax);
    g->fit(tmp, n, out);
}

/* One candidate ratio p for group [j0, j0 + len) of every row: the params
 * (rows) and the rounding errors D (rows, len) of the clipped fit. */
static void clip_candidate(const aellm_dtype_grid *g, const float *w, int64_t rows, int64_t n,
                           int64_t j0, int64_t len, float p, aellm_qparams *params, float *D,
                           float *tmp)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *x = w + r * n + j0;
        fit_clamped(g, x, len, p, &params[r], tmp);
        for (int64_t j = 0; j < len; j++)
            D[r * len + j] = x[j] - g->decode(g->encode(x[j], &params[r]), &params[r]);
    }
}

/* err[r] = sum over the rows s of X of (X[s, j0:j0+len] . D[r])^2, the error
 * the group adds to output r, by one sgemm: Y (S, rows) = X_g D^T. */
static void clip_errors(double *err, const float *X, int64_t S, int64_t n, int64_t j0, int64_t len,
                        const float *D, int64_t rows, float *Y)
{
    int threads = aellm_quant_blas_begin(2.0 * (double)S * (double)rows * (double)len);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)S, (int)rows, (int)len, 1.0f, X + j0,
                (int)n, D, (int)len, 0.0f, Y, (int)rows);
    aellm_quant_blas_end(threads);
    for (int64_t r = 0; r < rows; r++) err[r] = 0.0;
    for (int64_t s = 0; s < S; s++)
        for (int64_t r = 0; r < rows; r++) err[r] += (double)Y[s * rows + r] * Y[s * rows + r];
}

typedef struct {
    aellm_qparams *cand; /* (rows) params of the current ratio */
    float *D, *Y, *tmp;  /* (rows, G), (S, rows), (G) */
    double *err, *best;  /* (rows) */
    float *ratio;        /* (rows) the best ratio so far */
} clip_bufs;

/* The reference clamps the weights themselves to the chosen range: group
 * [j0, j0 + len) of row w to [-p max|w|, p max|w|]. */
static void clamp_group(float *dst, const float *w, int64_t len, float p)
{
    float amax = 0.0f;
    for (int64_t j = 0; j < len; j++) amax = fmaxf(amax, fabsf(w[j]));
    for (int64_t j = 0; j < len; j++) dst[j] = fminf(fmaxf(w[j], -p * amax), p * amax);
}

/* Group k of every row: each ratio 1, 1 - 1/grid, ... (down to 1 - shrink),
 * the one of least output error per row; 1 (no clipping) wins ties. */
static void clip_group(const aellm_dtype_grid *g, const float *w, int64_t rows, int64_t n,
                       int64_t k, const float *X, int64_t S, aellm_qparams *params, clip_bufs *b,
                       float *clipped)
{
    int64_t G = aellm_quant_group_len(g, n), ng = aellm_quant_n_groups(g, n), j0 = k * G;
    int64_t len = n - j0 < G ? n - j0 : G;
    int steps = (int)(AELLM_AWQ_CLIP_SHRINK * AELLM_AWQ_CLIP_GRID + 0.5f);
    for (int64_t r = 0; r < rows; r++) b->best[r] = INFINITY;
    for (int i = 0; i < steps; i++) {
        float p = 1.0f - (float)i / AELLM_AWQ_CLIP_GRID;
        clip_candidate(g, w, rows, n, j0, len, p, b->cand, b->D, b->tmp);
        clip_errors(b->err, X, S, n, j0, len, b->D, rows, b->Y);
        for (int64_t r = 0; r < rows; r++)
            if (b->err[r] < b->best[r])
                b->best[r] = b->err[r], params[r * ng + k] = b->cand[r], b->ratio[r] = p;
    }
    for (int64_t r = 0; clipped && r < rows; r++)
        clamp_group(clipped + r * n + j0, w + r * n + j0, len, b->ratio[r]);
}

int aellm_awq_clip_quantize(void *out, const float *w, int64_t rows, int64_t n, int type,
                            const float *X, int64_t S, int per_tensor, float *clipped)
{
    const aellm_dtype_grid *g = aellm_dtype_traits_get(type)->grid;
    if (clipped) memcpy(clipped, w, (size_t)(rows * n) * sizeof(float));
    if (!g || (per_tensor && g->group == 0) || S < 1)
        return aellm_quant_rtn(out, w, rows, n, type, per_tensor);
    int64_t ng = aellm_quant_n_groups(g, n), G = aellm_quant_group_len(g, n);
    uint8_t *codes = malloc((size_t)(rows * n));
    aellm_qparams *p = malloc((size_t)(rows * ng) * sizeof(*p));
    clip_bufs b = {
        malloc((size_t)rows * sizeof(aellm_qparams)), malloc((size_t)(rows * G) * sizeof(float)),
        malloc((size_t)(S * rows) * sizeof(float)),   malloc((size_t)G * sizeof(float)),
        malloc((size_t)rows * sizeof(double)),        malloc((size_t)rows * sizeof(double)),
        malloc((size_t)rows * sizeof(float))};
    int rc = 0;
    if (!codes || !p || !b.cand || !b.D || !b.Y || !b.tmp || !b.err || !b.best || !b.ratio) {
        rc = aellm_error_oom("awq clipping", (unsigned long long)(rows * n * 5 + S * rows * 4));
        goto done;
    }
    for (int64_t k = 0; k < ng; k++) clip_group(g, w, rows, n, k, X, S, p, &b, clipped);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++)
            codes[r * n + j] = (uint8_t)g->encode(w[r * n + j], &p[r * ng + j / G]);
    aellm_quant_pack(out, codes, p, rows, n, type);
done:
    free(codes), free(p);
    free(b.cand), free(b.D), free(b.Y), free(b.tmp), free(b.err), free(b.best), free(b.ratio);
    return rc;
}
