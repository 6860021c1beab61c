/* Round-to-nearest quantization of one matrix, group by group, through the
 * type's grid (or llama.cpp's reference quantizer for its own types), and the
 * grid plumbing (pack, dequantize, output error) the calibrated methods
 * share. Not a method that looks at activations: that is gptq.c / awq.c. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "techniques/quant/quant_internal.h"

int aellm_quant_blas_begin(double flops)
{
    int threads = omp_get_max_threads();
    if (flops < AELLM_QUANT_BLAS_MIN) omp_set_num_threads(1);
    return threads;
}

void aellm_quant_blas_end(int threads)
{
    omp_set_num_threads(threads);
}

void aellm_quant_fit_scaled(const aellm_dtype_grid *g, const float *x, int64_t n, float p,
                            aellm_qparams *out, float *tmp)
{
    if (p == 1.0f) return g->fit(x, n, out);
    for (int64_t j = 0; j < n; j++) tmp[j] = x[j] * p;
    g->fit(tmp, n, out);
}

/* sum |x - Q(x)|^2.4 of a group under p, GPTQ's norm for its shrink search */
static double round_err_l24(const aellm_dtype_grid *g, const float *x, int64_t n,
                            const aellm_qparams *p)
{
    double e = 0.0;
    for (int64_t j = 0; j < n; j++) {
        float d = fabsf(x[j] - g->decode(g->encode(x[j], p), p));
        e += d > 0.0f ? (double)powf(d, 2.4f) : 0.0;
    }
    return e;
}

void aellm_quant_fit_mse(const aellm_dtype_grid *g, const float *x, int64_t n, aellm_qparams *out,
                         float *tmp)
{
    double best = INFINITY;
    for (int i = 0; i < 80; i++) {
        aellm_qparams p;
        aellm_quant_fit_scaled(g, x, n, 1.0f - (float)i / 100.0f, &p, tmp);
        double e = round_err_l24(g, x, n, &p);
        if (e < best) best = e, *out = p;
    }
}

int64_t aellm_quant_group_len(const aellm_dtype_grid *g, int64_t n)
{
    return g->group > 0 ? g->group : n;
}

int64_t aellm_quant_n_groups(const aellm_dtype_grid *g, int64_t n)
{
    int64_t G = aellm_quant_group_len(g, n);
    return G > 0 ? (n + G - 1) / G : 1;
}

void aellm_quant_pack(void *out, const uint8_t *codes, const aellm_qparams *params, int64_t rows,
                      int64_t n, int type)
{
    const aellm_dtype_grid *g = aellm_dtype_traits_get(type)->grid;
    size_t rb = aellm_dtype_row_size(type, n);
    int64_t ng = aellm_quant_n_groups(g, n);
#pragma omp parallel for if (rows * n >= AELLM_QUANT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        g->pack(codes + r * n, params + r * ng, n, (char *)out + (size_t)r * rb);
}

/* Codes and parameters of one row, each group fitted to its own values
 * (or all sharing *shared when the grid is per row and that is given). */
static void rtn_row(const aellm_dtype_grid *g, const float *x, int64_t n,
                    const aellm_qparams *shared, uint8_t *codes, aellm_qparams *p)
{
    int64_t G = aellm_quant_group_len(g, n);
    for (int64_t k = 0, j0 = 0; j0 < n; k++, j0 += G) {
        int64_t len = n - j0 < G ? n - j0 : G;
        if (shared)
            p[k] = *shared;
        else
            g->fit(x + j0, len, &p[k]);
        for (int64_t j = j0; j < j0 + len; j++) codes[j] = (uint8_t)g->encode(x[j], &p[k]);
    }
}

int aellm_quant_rtn_grid(void *out, const float *w, int64_t rows, int64_t n, int type,
                         int per_tensor)
{
    const aellm_dtype_grid *g = aellm_dtype_traits_get(type)->grid;
    int64_t ng = aellm_quant_n_groups(g, n);
    uint8_t *codes = malloc((size_t)(rows * n));
    aellm_qparams *p = malloc((size_t)(rows * ng) * sizeof(*p)), shared;
    const aellm_qparams *sp = NULL;
    if (!codes || !p) {
        free(codes);
        free(p);
        return aellm_error_oom("quantization codes", (unsigned long long)(rows * n));
    }
    if (per_tensor && g->group == 0) g->fit(w, rows * n, &shared), sp = &shared;
#pragma omp parallel for if (rows * n >= AELLM_QUANT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) rtn_row(g, w + r * n, n, sp, codes + r * n, p + r * ng);
    aellm_quant_pack(out, codes, p, rows, n, type);
    free(codes);
    free(p);
    return 0;
}

int aellm_quant_rtn(void *out, const float *w, int64_t rows, int64_t n, int type, int per_tensor)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    /* llama.cpp's types (no partial blocks) go through its own rounding so
     * the bytes equal llama-quantize's; the grid rounds the scale first. */
    if (tr->grid && (tr->partial || (per_tensor && tr->grid->group == 0)))
        return aellm_quant_rtn_grid(out, w, rows, n, type, per_tensor);
    size_t rb = aellm_dtype_row_size(type, n);
#pragma omp parallel for if (rows * n >= AELLM_QUANT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) tr->from_float(w + r * n, (char *)out + (size_t)r * rb, n);
    return 0;
}

void aellm_quant_dequant(float *out, const void *q, int64_t rows, int64_t n, int type)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    size_t rb = aellm_dtype_row_size(type, n);
#pragma omp parallel for if (rows * n >= AELLM_QUANT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        tr->to_float((const char *)q + (size_t)r * rb, out + r * n, n);
}

/* X (W - V)^T by one sgemm on the difference, and X W^T for the reference. */
int aellm_quant_out_err2(double *err, double *ref, const float *X, int64_t S, const float *W,
                         const float *V, int64_t rows, int64_t n)
{
    float *D = malloc((size_t)(rows * n) * sizeof(float));
    float *Y = malloc((size_t)(S * rows) * sizeof(float));
    double e = 0.0, r = 0.0;
    int rc = 0;
    if (!D || !Y) {
        rc = aellm_error_oom("output error", (unsigned long long)(S * rows * 4));
        goto done;
    }
    for (int64_t i = 0; i < rows * n; i++) D[i] = W[i] - V[i];
    int threads = aellm_quant_blas_begin(2.0 * (double)S * (double)rows * (double)n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)S, (int)rows, (int)n, 1.0f, X, (int)n,
                D, (int)n, 0.0f, Y, (int)rows);
    for (int64_t i = 0; i < S * rows; i++) e += (double)Y[i] * Y[i];
    if (ref) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)S, (int)rows, (int)n, 1.0f, X,
                    (int)n, W, (int)n, 0.0f, Y, (int)rows);
        for (int64_t i = 0; i < S * rows; i++) r += (double)Y[i] * Y[i];
        *ref = r;
    }
    aellm_quant_blas_end(threads);
    *err = e;
done:
    free(D);
    free(Y);
    return rc;
}
