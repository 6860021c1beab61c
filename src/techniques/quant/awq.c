/* AWQ (Lin et al., 2023): scales each input channel of a weight by
 * s_j = mean|x_j|^a before rounding, so the channels that carry large
 * activations lose less to rounding, and divides the activations by s (the
 * division is folded into the preceding op, so inference pays nothing). The
 * exponent a is searched on the calibration rows. Rounding is plain RTN; the
 * folding into norms and matrices is the model driver's (quantize.c). */
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
