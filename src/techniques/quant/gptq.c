/* GPTQ (Frantar et al., 2022): quantizes a matrix one input column at a
 * time and spreads each column's rounding error over the columns not yet
 * quantized, weighted by the inverse Hessian of the layer's output error,
 * H = 2 X^T X / N. Works on any type with a grid; the calibration that
 * produces H is calib.c. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "techniques/quant/quant_internal.h"

/* LAPACK from the OpenBLAS library (Fortran ABI: everything by pointer,
 * then the hidden lengths of the character arguments). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);

/* ---- the factor of the inverse Hessian ---- */

/* In place: A (column-major n x n, symmetric) becomes A^-1 in full.
 * Returns LAPACK's info (0 = success, > 0 = not positive definite). */
static int spd_inverse(double *A, int n)
{
    int info = 0;
    dpotrf_("L", &n, A, &n, &info, 1);
    if (info == 0) dpotri_("L", &n, A, &n, &info, 1);
    if (info != 0) return info;
    for (int j = 0; j < n; j++) /* the lower triangle is the result: mirror it */
        for (int i = j + 1; i < n; i++) A[(size_t)i * n + j] = A[(size_t)j * n + i];
    return 0;
}

/* A^-1 = U^T U with U upper; GPTQ reads row i of U as the weights that
 * spread column i's error over the later columns. */
static int inverse_upper_factor(float *U, double *A, int n)
{
    int info = spd_inverse(A, n);
    if (info == 0) dpotrf_("U", &n, A, &n, &info, 1);
    if (info != 0) return info;
    /* column-major upper U(i, j) = A[i + j n] is row-major U[i n + j] */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) U[(size_t)i * n + j] = j >= i ? (float)A[i + (size_t)j * n] : 0;
    return 0;
}

int aellm_gptq_hinv_chol(float *U, const double *A, int64_t n, double retry_damp)
{
    if (n <= 0 || n > INT32_MAX / 2)
        return aellm_error_set(AELLM_EINVAL, "gptq: matrix of %lld columns", (long long)n);
    size_t nn = (size_t)(n * n);
    double *W = malloc(nn * sizeof(double)), mean = 0.0;
    if (!W) return aellm_error_oom("gptq inverse Hessian", nn * sizeof(double));
    for (int64_t i = 0; i < n; i++) mean += A[i * n + i] / (double)n;
    int info = 1, threads = aellm_quant_blas_begin((double)n * (double)n * (double)n);
    for (int k = 0; k < 4 && info != 0; k++) {
        memcpy(W, A, nn * sizeof(double));
        double extra = k == 0 ? 0.0 : retry_damp * pow(10.0, k) * mean;
        for (int64_t i = 0; i < n; i++) W[i * n + i] += extra;
        info = inverse_upper_factor(U, W, (int)n);
    }
    aellm_quant_blas_end(threads);
    free(W);
    if (info != 0)
        return aellm_error_set(AELLM_EINVAL,
                               "gptq: the Hessian (%lld columns) is not positive definite even "
                               "with extra damping",
                               (long long)n);
    return 0;
}

/* ---- preparation, shared by the matrices that read one input ---- */

void aellm_gptq_prep_free(aellm_gptq_prep *p)
{
    if (!p) return;
    free(p->U);
    free(p->perm);
    free(p->dead);
    memset(p, 0, sizeof(*p));
}

static const double *sort_key;
static int by_diag_desc(const void *a, const void *b)
{
    double x = sort_key[*(const int64_t *)a], y = sort_key[*(const int64_t *)b];
    if (x != y) return x > y ? -1 : 1;
    return *(const int64_t *)a < *(const int64_t *)b ? -1 : 1; /* stable */
}

/* Columns by descending H_jj: the most active inputs are quantized first,
 * while many columns remain to absorb their error. */
static void order_columns(int64_t *perm, const double *H, int64_t n, int act_order)
{
    for (int64_t j = 0; j < n; j++) perm[j] = j;
    if (!act_order) return;
    double *diag = malloc((size_t)n * sizeof(double));
    if (!diag) return; /* keeps the natural order; GPTQ stays correct */
    for (int64_t j = 0; j < n; j++) diag[j] = H[j * n + j];
    sort_key = diag;
    qsort(perm, (size_t)n, sizeof(*perm), by_diag_desc);
    free(diag);
}

int aellm_gptq_prepare(aellm_gptq_prep *out, const double *H, int64_t n, float damp, int act_order)
{
    memset(out, 0, sizeof(*out));
    size_t nn = (size_t)(n * n);
    double *Hp = malloc(nn * sizeof(double)), mean = 0.0;
    out->n = n;
    out->act_order = act_order;
    out->U = malloc(nn * sizeof(float));
    out->perm = malloc((size_t)n * sizeof(int64_t));
    out->dead = calloc((size_t)n, 1);
    int rc = 0;
    if (!Hp || !out->U || !out->perm || !out->dead) {
        rc = aellm_error_oom("gptq Hessian", nn * sizeof(double));
        goto done;
    }
    /* An input that was always zero gives H_jj = 0: its weights cannot
     * matter, so they are dropped and H_jj = 1 keeps H invertible. */
    for (int64_t j = 0; j < n; j++) out->dead[j] = H[j * n + j] == 0.0;
    order_columns(out->perm, H, n, act_order);
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < n; b++) Hp[a * n + b] = H[out->perm[a] * n + out->perm[b]];
    for (int64_t a = 0; a < n; a++) {
        if (out->dead[out->perm[a]]) Hp[a * n + a] = 1.0;
        mean += Hp[a * n + a] / (double)n;
    }
    for (int64_t a = 0; a < n; a++) Hp[a * n + a] += damp * mean;
    rc = aellm_gptq_hinv_chol(out->U, Hp, n, damp > 0 ? damp : 0.01);
done:
    free(Hp);
    if (rc) aellm_gptq_prep_free(out);
    return rc;
}

/* ---- the column loop ---- */

typedef struct {
    const aellm_dtype_grid *g;
    const aellm_gptq_prep *prep;
    int64_t rows, n, G, ng, block;
    int static_groups; /* params fitted up front (act-order, per-row grids) */
    int mse;           /* groups fitted by aellm_quant_fit_mse, not the plain fit */
    float *Wp;         /* (rows, n) weights in perm order, updated as columns go */
    float *Err;        /* (rows, block) scaled errors of the current block */
    float *tmp;        /* (rows, G) scratch of the fits as groups start */
    uint8_t *codes;    /* (rows, n) in the original column order */
    aellm_qparams *p;  /* (rows, ng) */
} gptq_run;

/* One group's parameters: the grid's own fit, or GPTQ's MSE shrink search. */
static void fit_group(const gptq_run *q, const float *x, int64_t len, aellm_qparams *p, float *tmp)
{
    if (q->mse)
        aellm_quant_fit_mse(q->g, x, len, p, tmp);
    else
        q->g->fit(x, len, p);
}

/* Group parameters from the original weights, before any error feedback:
 * "static groups", needed with act-order because a group's columns are then
 * visited out of order, and for per-row grids (one group = the whole row). */
static int fit_static(gptq_run *q, const float *w, int per_tensor)
{
    int64_t rows = q->rows, n = q->n;
    int oom = 0;
    if (per_tensor && q->g->group == 0) {
        aellm_qparams all;
        q->g->fit(w, rows * n, &all);
        for (int64_t r = 0; r < rows; r++) q->p[r] = all;
        return 0;
    }
#pragma omp parallel for if (rows * n >= AELLM_QUANT_PAR_MIN) reduction(| : oom)
    for (int64_t r = 0; r < rows; r++) {
        /* fit on the row as GPTQ will quantize it: dead columns zero */
        float *row = malloc(2 * (size_t)n * sizeof(float)), *tmp = row + n;
        if (!row) {
            oom = 1;
            continue;
        }
        for (int64_t j = 0; j < n; j++) row[j] = q->prep->dead[j] ? 0.0f : w[r * n + j];
        for (int64_t k = 0; k < q->ng; k++) {
            int64_t j0 = k * q->G, len = n - j0 < q->G ? n - j0 : q->G;
            fit_group(q, row + j0, len, &q->p[r * q->ng + k], tmp);
        }
        free(row);
    }
    return oom ? aellm_error_oom("gptq group fit", (unsigned long long)n * 8) : 0;
}

/* Row r over columns [i1, i2) of the current block: quantize each, keep the
 * error scaled by 1/U_ii, and update the rest of the block at once. */
static void block_row(gptq_run *q, int64_t r, int64_t i1, int64_t i2)
{
    const float *U = q->prep->U;
    float *w = q->Wp + r * q->n, *err = q->Err + r * q->block;
    for (int64_t i = i1; i < i2; i++) {
        int64_t j = q->prep->perm[i];
        aellm_qparams *p = &q->p[r * q->ng + j / q->G];
        if (!q->static_groups && j % q->G == 0) /* a group starts: fit what the row is now */
            fit_group(q, w + i, q->n - i < q->G ? q->n - i : q->G, p, q->tmp + r * q->G);
        int c = q->g->encode(w[i], p);
        q->codes[r * q->n + j] = (uint8_t)c;
        float e = (w[i] - q->g->decode(c, p)) / U[i * q->n + i];
        err[i - i1] = e;
        const float *u = U + i * q->n;
        for (int64_t k = i + 1; k < i2; k++) w[k] -= e * u[k];
    }
}

static void run_columns(gptq_run *q)
{
    int64_t n = q->n, B = q->block;
    for (int64_t i1 = 0; i1 < n; i1 += B) {
        int64_t i2 = i1 + B < n ? i1 + B : n;
#pragma omp parallel for if (q->rows * n >= AELLM_QUANT_PAR_MIN)
        for (int64_t r = 0; r < q->rows; r++) block_row(q, r, i1, i2);
        /* lazy batch update of the columns after the block:
         * W[:, i2:] -= Err (rows, i2-i1) . U[i1:i2, i2:] */
        if (i2 < n) {
            int threads = aellm_quant_blas_begin(2.0 * (double)q->rows * (double)(n - i2) *
                                                 (double)(i2 - i1));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q->rows, (int)(n - i2),
                        (int)(i2 - i1), -1.0f, q->Err, (int)B, q->prep->U + i1 * n + i2, (int)n,
                        1.0f, q->Wp + i2, (int)n);
            aellm_quant_blas_end(threads);
        }
    }
}

int aellm_gptq_quantize(void *out, const float *w, int64_t rows, int64_t n, int type,
                        const aellm_gptq_prep *prep, int block, int per_tensor, int mse)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    if (!tr || !tr->grid || prep->n != n)
        return aellm_error_set(AELLM_EINVAL, "gptq: type %d has no grid or shape mismatch", type);
    gptq_run q = {.g = tr->grid, .prep = prep, .rows = rows, .n = n};
    q.G = aellm_quant_group_len(q.g, n);
    q.ng = aellm_quant_n_groups(q.g, n);
    q.block = block > 0 ? block : 128;
    /* a group must not straddle blocks: its parameters are fitted when it
     * starts, from weights that have had every earlier column's update */
    if (q.g->group > 0) q.block = (q.block + q.G - 1) / q.G * q.G;
    /* without act-order, groups of a per-group grid are fitted as GPTQ reaches them */
    q.static_groups = prep->act_order || q.g->group == 0;
    q.mse = mse;
    q.Wp = malloc((size_t)(rows * n) * sizeof(float));
    q.Err = malloc((size_t)(rows * q.block) * sizeof(float));
    q.codes = malloc((size_t)(rows * n));
    q.p = malloc((size_t)(rows * q.ng) * sizeof(aellm_qparams));
    q.tmp = malloc((size_t)(rows * q.G) * sizeof(float));
    int rc = 0;
    if (!q.Wp || !q.Err || !q.codes || !q.p || !q.tmp) {
        rc = aellm_error_oom("gptq buffers", (unsigned long long)(rows * n * 9));
        goto done;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) {
            int64_t j = prep->perm[i];
            q.Wp[r * n + i] = prep->dead[j] ? 0.0f : w[r * n + j];
        }
    if (q.static_groups && (rc = fit_static(&q, w, per_tensor))) goto done;
    run_columns(&q);
    aellm_quant_pack(out, q.codes, q.p, rows, n, type);
done:
    free(q.Wp);
    free(q.Err);
    free(q.codes);
    free(q.p);
    free(q.tmp);
    return rc;
}
