/* This machine's achieved rate per kernel kind, for aellm predict: the
 * matrix-vector product of decode and the batched product of prefill for
 * every weight type with kernels, decode attention over the cache for every
 * KV cache type, and the fixed cost a kernel pays to synchronise the
 * threads. Each is timed on buffers larger than the last-level cache, with
 * the engine's own kernels and threading, so that the whole-model runs a
 * prediction is checked against stay held out: nothing here runs a model. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "aellm/dtype.h"
#include "aellm/predict.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"

/* Past any last-level cache this machine class has, so decode streams from
 * memory as a model's weights do. */
#define STREAM_BYTES ((size_t)96 << 20)
#define ROW_N        2048 /* a row as long as a 1B model's */

static const int weight_types[] = {
    AELLM_DTYPE_F32,        AELLM_DTYPE_F16,       AELLM_DTYPE_BF16,      AELLM_DTYPE_Q8_0,
    AELLM_DTYPE_Q4_0,       AELLM_DTYPE_Q4_1,      AELLM_DTYPE_INT4S_G32, AELLM_DTYPE_INT4S_G64,
    AELLM_DTYPE_INT4S_G128, AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_INT4A_G64, AELLM_DTYPE_INT4A_G128,
    AELLM_DTYPE_NF4,        AELLM_DTYPE_FP8_E4M3,  AELLM_DTYPE_INT8,      AELLM_DTYPE_INT8_G32};
static const int kv_types[] = {AELLM_DTYPE_F32, AELLM_DTYPE_F16, AELLM_DTYPE_Q8_0};

static void *scratch_alloc(size_t bytes)
{
    return aellm_mem_alloc(bytes, AELLM_MEM_SCRATCH);
}

static void random_row(aellm_rng *r, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = aellm_rng_f32(r) * 2.0f - 1.0f;
}

/* `rows` rows of type t: a few quantized rows repeated (speed does not
 * depend on the values), 64-byte aligned. */
static void *weight_rows(int t, int64_t rows, int64_t n, size_t *row_bytes)
{
    *row_bytes = aellm_dtype_row_size(t, n);
    uint8_t *w = scratch_alloc((size_t)rows * *row_bytes);
    float *x = malloc((size_t)n * sizeof(float));
    if (!w || !x) {
        aellm_mem_free(w), free(x);
        return NULL;
    }
    aellm_rng r;
    aellm_rng_seed(&r, 7);
    enum { DISTINCT = 16 };
    for (int64_t i = 0; i < rows; i++) {
        if (i < DISTINCT) {
            random_row(&r, x, n);
            aellm_dtype_traits_get(t)->from_float(x, w + (size_t)i * *row_bytes, n);
        } else {
            memcpy(w + (size_t)i * *row_bytes, w + (size_t)(i % DISTINCT) * *row_bytes, *row_bytes);
        }
    }
    free(x);
    return w;
}

/* The fastest of `reps` passes of fn (best of: the machine's rate, not its
 * noise). */
typedef void (*pass_fn)(void *ctx);
static double best_time(pass_fn fn, void *ctx, int reps)
{
    fn(ctx); /* warm-up: pages touched, threads started */
    double best = INFINITY;
    for (int i = 0; i < reps; i++) {
        double t0 = aellm_time_s();
        fn(ctx);
        double dt = aellm_time_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

typedef struct {
    int type, threads;
    int64_t rows, n, T;
    size_t row_bytes;
    const void *w;
    void *act;
    float *x, *y;
    void *scratch;
} product;

/* One decode product as the engine runs it: the activation row converted
 * once, the rows split over the threads. */
static void matvec_pass(void *ctx)
{
    product *p = ctx;
    aellm_kernel_quantize_act(p->type, p->x, p->act, p->n);
#pragma omp parallel num_threads(p->threads)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        int64_t r0 = p->rows * t / k, r1 = p->rows * (t + 1) / k;
        aellm_kernel_matvec(p->type, p->n, p->w, p->row_bytes, p->act, p->y + r0, r0, r1);
    }
}

static void matmul_pass(void *ctx)
{
    product *p = ctx;
    aellm_kernel_matmul(p->type, p->w, p->row_bytes, p->rows, p->n, p->x, p->T, p->y, p->scratch);
}

static int rate_weight_type(int t, const aellm_calibrate_params *cp, aellm_hw_rate *out)
{
    product p = {.type = t, .threads = cp->n_threads, .n = ROW_N, .T = cp->prefill_tokens};
    size_t rb = aellm_dtype_row_size(t, ROW_N);
    p.rows = (int64_t)((STREAM_BYTES + rb - 1) / rb);
    int64_t ys = p.rows > p.T * ROW_N ? p.rows : p.T * ROW_N;
    p.w = weight_rows(t, p.rows, p.n, &p.row_bytes);
    p.act = scratch_alloc(aellm_kernel_act_bytes(t, p.n));
    p.x = scratch_alloc((size_t)p.T * p.n * sizeof(float));
    p.y = scratch_alloc((size_t)ys * sizeof(float));
    int rc = 0;
    if (!p.w || !p.act || !p.x || !p.y) {
        rc = aellm_error_oom("calibration buffers", STREAM_BYTES);
        goto done;
    }
    aellm_rng r;
    aellm_rng_seed(&r, 11);
    random_row(&r, p.x, p.T * p.n);
    out->decode_bytes_per_s = (double)p.rows * p.row_bytes / best_time(matvec_pass, &p, cp->reps);
    /* prefill: a square product, compute-bound as a model's are */
    p.rows = ROW_N;
    size_t sb = aellm_kernel_matmul_scratch(t, p.rows, p.n, p.T);
    p.scratch = sb ? scratch_alloc(sb) : NULL;
    if (sb && !p.scratch) {
        rc = aellm_error_oom("calibration scratch", sb);
        goto done;
    }
    double flops = 2.0 * (double)p.T * p.rows * p.n;
    out->prefill_flop_per_s = flops / best_time(matmul_pass, &p, cp->reps);
done:
    aellm_mem_free((void *)p.w), aellm_mem_free(p.act), aellm_mem_free(p.x);
    aellm_mem_free(p.y), aellm_mem_free(p.scratch);
    return rc;
}

/* ---- attention ---- */

enum { ATT_HD = 64, ATT_HEADS = 8, ATT_POS = 1024 };

typedef struct {
    const aellm_attn_kernels *k;
    int threads, layers;
    size_t head_bytes;
    const uint8_t *K, *V; /* layers x positions x heads */
    float *q, *scores, *out;
} attn_ctx;

/* Decode attention of one token over every layer's cache: q.K, softmax
 * weights (their cost is the engine's, not the cache's), a.V. */
static void attn_pass(void *ctx)
{
    attn_ctx *a = ctx;
    size_t stride = ATT_HEADS * a->head_bytes, layer = ATT_POS * stride;
#pragma omp parallel for num_threads(a->threads) collapse(2)
    for (int l = 0; l < a->layers; l++)
        for (int h = 0; h < ATT_HEADS; h++) {
            float *s = a->scores + (size_t)omp_get_thread_num() * ATT_POS;
            size_t at = (size_t)l * layer + (size_t)h * a->head_bytes;
            a->k->scores(ATT_HD, a->q, a->K + at, stride, ATT_POS, 0.125f, s);
            for (int i = 0; i < ATT_POS; i++) s[i] = 1.0f / ATT_POS;
            a->k->accum(ATT_HD, s, a->V + at, stride, ATT_POS,
                        a->out + ((size_t)l * ATT_HEADS + h) * ATT_HD);
        }
}

static int rate_kv_type(int t, const aellm_calibrate_params *cp, aellm_hw_rate *out)
{
    attn_ctx a = {.k = aellm_attn_kernels_get(t), .threads = cp->n_threads};
    a.head_bytes = aellm_attn_head_bytes(t, ATT_HD);
    size_t layer = (size_t)ATT_POS * ATT_HEADS * a.head_bytes;
    a.layers = (int)((STREAM_BYTES / 2 + layer - 1) / layer);
    size_t bytes = (size_t)a.layers * layer;
    uint8_t *K = scratch_alloc(bytes), *V = scratch_alloc(bytes);
    float *vals = malloc(ATT_HEADS * ATT_HD * sizeof(float));
    a.q = malloc(ATT_HD * sizeof(float));
    a.scores = malloc((size_t)cp->n_threads * ATT_POS * sizeof(float));
    a.out = malloc((size_t)a.layers * ATT_HEADS * ATT_HD * sizeof(float));
    int rc = 0;
    if (!K || !V || !vals || !a.q || !a.scores || !a.out) {
        rc = aellm_error_oom("calibration KV cache", 2 * bytes);
        goto done;
    }
    aellm_rng r;
    aellm_rng_seed(&r, 13);
    random_row(&r, vals, ATT_HEADS * ATT_HD);
    random_row(&r, a.q, ATT_HD);
    for (size_t p = 0; p < (size_t)a.layers * ATT_POS; p++) {
        aellm_attn_store(t, ATT_HD, ATT_HEADS, vals, K + p * ATT_HEADS * a.head_bytes);
        aellm_attn_store(t, ATT_HD, ATT_HEADS, vals, V + p * ATT_HEADS * a.head_bytes);
    }
    a.K = K, a.V = V;
    out->decode_bytes_per_s = 2.0 * bytes / best_time(attn_pass, &a, cp->reps);
done:
    aellm_mem_free(K), aellm_mem_free(V);
    free(vals), free(a.q), free(a.scores), free(a.out);
    return rc;
}

typedef struct {
    int threads, n;
    const float *Q, *K;
    float *S;
} sgemm_ctx;

/* Prefill attention's products: one head's block of 64 queries against
 * the keys it sees, per thread, as the engine runs them. */
static void sgemm_pass(void *ctx)
{
    sgemm_ctx *c = ctx;
#pragma omp parallel for num_threads(c->threads)
    for (int h = 0; h < 4 * c->threads; h++) {
        float *S = c->S + (size_t)omp_get_thread_num() * 64 * c->n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 64, c->n, ATT_HD, 1.0f, c->Q, ATT_HD,
                    c->K, ATT_HD, 0.0f, S, c->n);
    }
}

static int rate_prefill_attention(const aellm_calibrate_params *cp, double *flop_per_s)
{
    sgemm_ctx c = {.threads = cp->n_threads, .n = cp->prefill_tokens};
    float *Q = calloc(64 * ATT_HD, sizeof(float)), *K = calloc((size_t)c.n * ATT_HD, sizeof(float));
    c.S = malloc((size_t)cp->n_threads * 64 * c.n * sizeof(float));
    int rc = 0;
    if (!Q || !K || !c.S)
        rc = aellm_error_oom("calibration attention", 0);
    else {
        c.Q = Q, c.K = K;
        double flops = 4.0 * c.threads * 2.0 * 64 * c.n * ATT_HD; /* Q.K^T, and S.V alike */
        *flop_per_s = flops / (2 * best_time(sgemm_pass, &c, cp->reps));
    }
    free(Q), free(K), free(c.S);
    return rc;
}

/* ---- the fixed cost of a kernel ---- */

typedef struct {
    int threads;
} barrier_ctx;

enum { BARRIERS = 2000 };

/* Decode runs each token in one parallel region, its kernels separated by
 * barriers: that synchronisation is the cost a kernel pays whatever its
 * size. */
static void barrier_pass(void *ctx)
{
    barrier_ctx *b = ctx;
#pragma omp parallel num_threads(b->threads)
    for (int i = 0; i < BARRIERS; i++) {
#pragma omp barrier
    }
}

void aellm_calibrate_params_default(aellm_calibrate_params *p)
{
    *p = (aellm_calibrate_params){.n_threads = 0, .prefill_tokens = 128, .reps = 5};
}

int aellm_predict_calibrate(aellm_hw_profile *hw, const aellm_calibrate_params *params,
                            void (*progress)(const char *what, int done, int total, void *user),
                            void *user)
{
    aellm_calibrate_params cp = *params;
    if (cp.n_threads <= 0) cp.n_threads = omp_get_num_procs();
    if (cp.prefill_tokens < 1 || cp.reps < 1)
        return aellm_error_set(AELLM_EINVAL, "calibrate: prefill tokens and repetitions >= 1");
    int rc = aellm_hw_detect(hw, 1, cp.n_threads);
    if (rc) return rc;
    int nw = (int)(sizeof(weight_types) / sizeof(weight_types[0]));
    int nk = (int)(sizeof(kv_types) / sizeof(kv_types[0])), total = nw + nk + 2, done = 0;
    for (int i = 0; !rc && i < nw; i++) {
        if (progress) progress(aellm_dtype_traits_get(weight_types[i])->name, done, total, user);
        rc = rate_weight_type(weight_types[i], &cp, &hw->kernel_rates[weight_types[i]]);
        done++;
    }
    double attn_flops = 0;
    if (!rc) rc = rate_prefill_attention(&cp, &attn_flops), done++;
    for (int i = 0; !rc && i < nk; i++) {
        if (progress) progress("attention", done++, total, user);
        aellm_hw_rate *r = &hw->attention_rates[kv_types[i]];
        rc = rate_kv_type(kv_types[i], &cp, r);
        r->prefill_flop_per_s = attn_flops;
    }
    if (rc) return rc;
    barrier_ctx b = {cp.n_threads};
    hw->kernel_overhead_s = best_time(barrier_pass, &b, cp.reps) / BARRIERS;
    if (progress) progress("done", total, total, user);
    snprintf(hw->eff_source, sizeof(hw->eff_source),
             "measured here by aellm predict --calibrate (%d threads): each kernel kind's rate "
             "on buffers past the last-level cache (decode products of %d-long rows, prefill "
             "products of %d tokens, decode attention per KV cache type), and the cost of one "
             "barrier as the fixed cost per kernel",
             cp.n_threads, ROW_N, cp.prefill_tokens);
    return 0;
}
