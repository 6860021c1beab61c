/* Shared between the files of src/techniques/quant: one matrix's quantizers
 * (RTN, GPTQ, AWQ's and SmoothQuant's scales) and the calibration driver.
 * A matrix W is (rows, n) row-major f32, as the model stores weights: row r
 * is output channel r, column j multiplies input channel j. */
#ifndef AELLM_TECHNIQUES_QUANT_INTERNAL_H
#define AELLM_TECHNIQUES_QUANT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/engine.h"
#include "aellm/quantize.h"
#include "model/model.h"

/* Matrices of fewer elements are quantized on one thread: below this, an
 * OpenMP region costs more than the work (far more on busy cores). */
#define AELLM_QUANT_PAR_MIN (1 << 18)

/* ---- rtn.c: round to nearest, and the grid plumbing the others share ---- */

/* OpenBLAS's OpenMP build spreads any call made outside a parallel region
 * over every OpenMP thread. On the small matrices of a quantizer the
 * fork/join costs far more than the work, and on busy cores a thread that
 * waits for a descheduled one spins: measured, one 172 x 172 Cholesky took
 * 1.0 s on two threads of a loaded machine and 1 ms on one. Calls of fewer
 * than AELLM_QUANT_BLAS_MIN flops run on one thread: begin returns the
 * thread count that end restores. */
#define AELLM_QUANT_BLAS_MIN 1e9
int aellm_quant_blas_begin(double flops);
void aellm_quant_blas_end(int threads);

/* Parameters of one group fitted to x scaled by p (0 < p <= 1): the grid's
 * range shrinks by p about zero (GPTQ's xmin1 = p xmin, xmax1 = p xmax), and
 * encode clamps the values that fall outside. tmp holds n floats. */
void aellm_quant_fit_scaled(const aellm_dtype_grid *g, const float *x, int64_t n, float p,
                            aellm_qparams *out, float *tmp);
/* GPTQ's "mse" parameters (its reference quantizer's find_params with
 * mse=True): the best of p = 1, 0.99, ... 0.21 (grid 100, maxshrink 0.8)
 * by sum |x - Q(x)|^2.4 over the group. p = 1 (the plain fit) is tried
 * first and only beaten strictly, so never a worse rounding error. */
void aellm_quant_fit_mse(const aellm_dtype_grid *g, const float *x, int64_t n, aellm_qparams *out,
                         float *tmp);

/* Groups of a row of n elements under grid g (1 for per-row grids). */
int64_t aellm_quant_n_groups(const aellm_dtype_grid *g, int64_t n);
/* Elements per group (n for per-row grids). */
int64_t aellm_quant_group_len(const aellm_dtype_grid *g, int64_t n);

/* Stores W in `type` (rows of aellm_dtype_row_size(type, n) bytes at out):
 * llama.cpp's from_float for its own types (the same bytes as
 * llama-quantize), the grid group by group for aellm's types, a plain
 * conversion for f32/f16/bf16. per_tensor: a per-row grid fits one set of
 * parameters to the whole matrix. */
int aellm_quant_rtn(void *out, const float *w, int64_t rows, int64_t n, int type, int per_tensor);
/* The same through the grid's fit/encode for every grid type: what GPTQ
 * reduces to when the Hessian is diagonal. `type` must have a grid. */
int aellm_quant_rtn_grid(void *out, const float *w, int64_t rows, int64_t n, int type,
                         int per_tensor);
/* W back to f32 through the type's to_float (exactly the stored values). */
void aellm_quant_dequant(float *out, const void *q, int64_t rows, int64_t n, int type);
/* Packs codes (rows, n) and params (rows, n_groups) into rows of `type`. */
void aellm_quant_pack(void *out, const uint8_t *codes, const aellm_qparams *params, int64_t rows,
                      int64_t n, int type);

/* *err = squared Frobenius norm of X W^T - X V^T over S calibration rows X
 * (S, n); *ref = that of X W^T (ref may be NULL). */
int aellm_quant_out_err2(double *err, double *ref, const float *X, int64_t S, const float *W,
                         const float *V, int64_t rows, int64_t n);

/* ---- gptq.c ---- */

/* What GPTQ needs of a Hessian, shared by the matrices reading one input. */
typedef struct {
    int64_t n;
    float *U;      /* (n, n) upper Cholesky factor of H^-1, in `perm` order */
    int64_t *perm; /* (n) column processed at step i (identity without act-order) */
    uint8_t *dead; /* (n) input channels that were always zero: weights dropped */
    int act_order;
} aellm_gptq_prep;

/* U (n, n, row-major, upper) with U^T U = A^-1, A symmetric positive
 * definite (n, n); LAPACK's dpotrf/dpotri. If A is not positive definite,
 * retries with 10x, 100x ... `retry_damp` times the mean diagonal added.
 * AELLM_EINVAL when that fails too. */
int aellm_gptq_hinv_chol(float *U, const double *A, int64_t n, double retry_damp);
/* From H = 2 X^T X / N (n, n): dead columns, act-order permutation,
 * damping (`damp` times the mean diagonal), factor of the inverse. */
int aellm_gptq_prepare(aellm_gptq_prep *out, const double *H, int64_t n, float damp, int act_order);
void aellm_gptq_prep_free(aellm_gptq_prep *p);
/* Quantizes W (rows, n) into `type` (which must have a grid) column by column
 * with error feedback, `block` columns per lazy batch update. */
int aellm_gptq_quantize(void *out, const float *w, int64_t rows, int64_t n, int type,
                        const aellm_gptq_prep *prep, int block, int per_tensor, int mse);

/* ---- awq.c and smoothquant.c: per-input-channel scales ---- */

/* Matrices that read one input X (n columns), with what was measured of X. */
typedef struct {
    int64_t n;
    int n_mats;
    const float *W[3]; /* (rows[i], n) */
    int64_t rows[3];
    int type[3];           /* stored type of each */
    const float *mean_abs; /* (n) mean |x_j| over all calibration rows */
    const float *max_abs;  /* (n) max |x_j| */
    const float *X;        /* (S, n) sampled calibration rows */
    int64_t S;
    int per_tensor;
} aellm_scale_group;

/* AWQ: s = mean|x|^a normalised to sqrt(max s * min s) = 1, a the best of
 * 0, 1/grid, ... on the output error of Q(W diag(s)) diag(1/s) over the
 * sampled rows. Writes s (n) and a; a = 0 (s = 1) is plain RTN. */
int aellm_awq_search(float *s, float *alpha, const aellm_scale_group *g, int grid);

/* AWQ's weight clipping (auto_clip in the paper's code), n_grid 20 and
 * max_shrink 0.5: ratios 1, 0.95, ... 0.55 of a group's max |w|. */
#define AELLM_AWQ_CLIP_GRID   20.0f
#define AELLM_AWQ_CLIP_SHRINK 0.5f

/* Quantizes W (rows, n; already scaled, W diag(s)) into `type`, each
 * row's groups clipped to the ratio that minimises that group's output
 * error ||X_g (w_g - Q(w_g))||^2 over the rows of X (S, n; the inputs in W's
 * basis, X diag(1/s)). Ratio 1 is the grid's plain RTN and is kept unless
 * beaten strictly. Types without a grid, and per-tensor scales, are RTN.
 * clipped (rows, n; may be NULL): W with each group clamped to its range,
 * the full-precision weights the reference goes on with. */
int aellm_awq_clip_quantize(void *out, const float *w, int64_t rows, int64_t n, int type,
                            const float *X, int64_t S, int per_tensor, float *clipped);

/* SmoothQuant: s_j = max|x_j|^alpha / max_i |W_ij|^(1 - alpha), the maximum
 * over the rows of every matrix of the group. */
void aellm_smoothquant_scales(float *s, const aellm_scale_group *g, float alpha);

/* ---- calib.c: running the model layer by layer ---- */

/* The matrices of a layer the quantizer visits: the seven linears (with
 * latent attention the "v" one is the latent's down-projection w_dkv), then
 * latent attention's key and value up-projections. AELLM_QMAT_UK is the id
 * the engine's hook gives the latent (AELLM_HOOK_LATENT). */
enum { AELLM_QMAT_UK = AELLM_LINEAR_COUNT, AELLM_QMAT_UV, AELLM_QMAT_COUNT };

/* Where matrix i of layer L lives (NULL: the up-projections of a model
 * without latent attention); the matrix itself, NULL where the model has
 * none (also w_uk when every pair is rotary). */
aellm_tensor *aellm_quant_slot(const aellm_model_config *c, aellm_layer *L, int i);
const aellm_tensor *aellm_quant_matrix(const aellm_model *m, int l, int i);

/* The distinct inputs of a layer's matrices: the normalised input, wo's,
 * the FFN's, w_down's, and the latent c (MLA). */
enum { AELLM_IN_ATTN, AELLM_IN_WO, AELLM_IN_FFN, AELLM_IN_DOWN, AELLM_IN_LATENT, AELLM_IN_COUNT };

static inline int aellm_linear_input(int matrix)
{
    static const int in[AELLM_QMAT_COUNT] = {AELLM_IN_ATTN, AELLM_IN_ATTN,   AELLM_IN_ATTN,
                                             AELLM_IN_WO,   AELLM_IN_FFN,    AELLM_IN_FFN,
                                             AELLM_IN_DOWN, AELLM_IN_LATENT, AELLM_IN_LATENT};
    return in[matrix];
}

/* Statistics of one input over all calibration rows of the current layer. */
typedef struct {
    int64_t width;
    int64_t n_rows;  /* rows seen */
    double *H;       /* (width, width) 2 X^T X / N, when asked for */
    double *abs_sum; /* (width) sum |x_j|, then mean after finishing */
    float *mean_abs; /* (width) */
    float *max_abs;  /* (width) */
    float *sample;   /* (max_sample, width): every stride-th row */
    int64_t n_sample, max_sample, stride;
} aellm_calib_input;

typedef struct {
    aellm_model *work; /* f32 copy of the model's layers: quantized layers hold W-hat */
    aellm_engine *e;
    int n_seq, ctx, dim;
    double flops; /* of one layer over one sequence */
    float *x;     /* (n_seq, ctx, dim) hidden states entering the current layer */
    float *tmp;
    aellm_calib_input in[AELLM_IN_COUNT];
    double *dbuf; /* (ctx, max width) rows in double for the H update */
} aellm_calib;

/* H (w, w, upper triangle) += X^T X for the n rows of x (n, w), through
 * dbuf (n * w doubles): in double, since a sum over thousands of rows loses
 * too much in float. */
void aellm_add_xtx(double *H, double *dbuf, const float *x, int n, int64_t w);

/* Tokenizes the calibration text, builds the f32 working copy and an engine
 * on it, embeds the tokens. want_h: accumulate Hessians (GPTQ). */
int aellm_calib_new(aellm_calib **out, const aellm_model *m, const aellm_quantize_params *p,
                    int want_h);
void aellm_calib_free(aellm_calib *c);
/* Runs layer l over every sequence with the hook on, filling c->in. */
int aellm_calib_collect(aellm_calib *c, int l);
/* Runs layer l (as the working copy now holds it) over every sequence,
 * making the next layer's inputs. */
int aellm_calib_advance(aellm_calib *c, int l);

#endif
