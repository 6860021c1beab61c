/* This machine's achieved rate per kernel kind, for aellm predict: the
 * matrix-vector product of decode and the batched product of prefill for
 * every weight type with kernels, decode attention over the cache for every
 * KV cache type, and the fixed cost a kernel pays to synchronise the
 * threads. Each is timed on buffers larger than the last-level cache, with
 * the engine's own kernels and threading, so that the whole-model runs a
 * prediction is checked against stay held out: nothing here runs a model.
 *
 * A shared machine's bandwidth moves by tens of percent within minutes, so
 * the kinds are timed in rounds, each round visiting every kind once, and
 * each keeps its best round: a slow moment costs one round, not one kind. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "aellm/dtype.h"
#include "aellm/engine.h"
#include "aellm/model.h"
#include "aellm/predict.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"

#define ROW_N        2048 /* a row as long as a 1B model's */
#define PREFILL_ROWS 8192 /* a prefill product: 8192 x 2048 weights, 128 tokens */

static const int weight_types[] = {
    AELLM_DTYPE_F32,        AELLM_DTYPE_F16,       AELLM_DTYPE_BF16,      AELLM_DTYPE_Q8_0,
    AELLM_DTYPE_Q4_0,       AELLM_DTYPE_Q4_1,      AELLM_DTYPE_INT4S_G32, AELLM_DTYPE_INT4S_G64,
    AELLM_DTYPE_INT4S_G128, AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_INT4A_G64, AELLM_DTYPE_INT4A_G128,
    AELLM_DTYPE_NF4,        AELLM_DTYPE_FP8_E4M3,  AELLM_DTYPE_INT8,      AELLM_DTYPE_INT8_G32};
static const int kv_types[] = {AELLM_DTYPE_F32, AELLM_DTYPE_F16, AELLM_DTYPE_Q8_0};
#define N_WEIGHT_TYPES (int)(sizeof(weight_types) / sizeof(weight_types[0]))
#define N_KV_TYPES     (int)(sizeof(kv_types) / sizeof(kv_types[0]))

/* Bytes streamed per decode pass: twice what the machine reports as its
 * last-level cache (a virtual machine may report a whole socket's, and a
 * large-cache part holds a 96 MiB buffer: timed there, an 8-bit product ran
 * at 1.5x the memory's bandwidth), at least 256 MiB, at most an eighth of
 * the memory. */
static size_t stream_bytes(void)
{
    size_t b = (size_t)256 << 20;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc > 0 && 2 * (size_t)llc > b) b = 2 * (size_t)llc;
#endif
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t cap = pages > 0 && page > 0 ? (size_t)pages * (size_t)page / 8 : b;
    if (b > cap && cap >= ((size_t)64 << 20)) b = cap;
    return b;
}

static void *scratch_alloc(size_t bytes)
{
    return aellm_mem_alloc(bytes, AELLM_MEM_SCRATCH);
}

static void random_row(aellm_rng *r, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = aellm_rng_f32(r) * 2.0f - 1.0f;
}

/* The calibration's buffers, shared by every kind: one stream of weights
 * (or K and V) refilled for each kind, and the activations around it. */
typedef struct {
    int threads, T;
    size_t bytes;       /* of w */
    uint8_t *w;         /* weights of the kind being timed, or its K then V */
    void *act;          /* the activation row converted for the weight type */
    float *x, *y, *row; /* T x ROW_N inputs; outputs; one row to quantize */
    void *scratch;      /* the prefill product's */
} calib_bufs;

enum { DISTINCT = 16 }; /* distinct units written; the rest repeat them */

/* Units DISTINCT..n_units: copies of the first DISTINCT (speed does not depend on
 * the values). */
static void repeat_units(uint8_t *buf, size_t unit, size_t n_units)
{
    for (size_t i = DISTINCT; i < n_units; i++)
        memcpy(buf + i * unit, buf + (i % DISTINCT) * unit, unit);
}

/* As many rows of type t as fill the stream: a few quantized rows repeated.
 * Returns the row count. */
static int64_t fill_rows(calib_bufs *b, int t, size_t *row_bytes)
{
    size_t rb = aellm_dtype_row_size(t, ROW_N);
    int64_t rows = (int64_t)(b->bytes / rb);
    aellm_rng r;
    aellm_rng_seed(&r, 7);
    for (int64_t i = 0; i < DISTINCT; i++) {
        random_row(&r, b->row, ROW_N);
        aellm_dtype_traits_get(t)->from_float(b->row, b->w + (size_t)i * rb, ROW_N);
    }
    repeat_units(b->w, rb, (size_t)rows);
    *row_bytes = rb;
    return rows;
}

/* The fastest of `reps` passes of fn, after one untimed (pages touched,
 * threads started, the cache left as the pass leaves it). */
typedef void (*pass_fn)(void *ctx);
static double best_time(pass_fn fn, void *ctx, int reps)
{
    fn(ctx);
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

static double max_rate(double a, double b)
{
    return a > b ? a : b;
}

/* One round of weight type t: the stream refilled with its rows, a decode
 * pass over all of them, a prefill product over the first PREFILL_ROWS;
 * the rates kept where they beat earlier rounds'. */
static void rate_weight_type(calib_bufs *b, int t, aellm_hw_rate *out)
{
    product p = {.type = t,
                 .threads = b->threads,
                 .n = ROW_N,
                 .T = b->T,
                 .w = b->w,
                 .act = b->act,
                 .x = b->x,
                 .y = b->y,
                 .scratch = b->scratch};
    p.rows = fill_rows(b, t, &p.row_bytes);
    double bytes = (double)p.rows * p.row_bytes;
    out->decode_bytes_per_s =
        max_rate(out->decode_bytes_per_s, bytes / best_time(matvec_pass, &p, 2));
    p.rows = PREFILL_ROWS;
    double flops = 2.0 * (double)p.T * p.rows * p.n;
    out->prefill_flop_per_s =
        max_rate(out->prefill_flop_per_s, flops / best_time(matmul_pass, &p, 1));
}

/* ---- attention ---- */

enum { ATT_HD = 64, ATT_HEADS = 8, ATT_POS = 1024, ATT_MAX_LAYERS = 4096 };

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

/* Attention's small buffers: a query, each thread's scores, the outputs, the
 * values every cached position holds. */
typedef struct {
    float *q, *scores, *out, *vals;
} attn_bufs;

/* One round of KV cache type t: the stream refilled as every layer's K
 * then V of ATT_POS positions, one token's attention over all of them. */
static void rate_kv_type(calib_bufs *b, int t, const attn_bufs *ab, aellm_hw_rate *out)
{
    attn_ctx a = {.k = aellm_attn_kernels_get(t),
                  .threads = b->threads,
                  .q = ab->q,
                  .scores = ab->scores,
                  .out = ab->out};
    a.head_bytes = aellm_attn_head_bytes(t, ATT_HD);
    size_t layer = (size_t)ATT_POS * ATT_HEADS * a.head_bytes;
    a.layers = (int)(b->bytes / 2 / layer);
    if (a.layers > ATT_MAX_LAYERS) a.layers = ATT_MAX_LAYERS;
    size_t bytes = (size_t)a.layers * layer, pos = ATT_HEADS * a.head_bytes;
    uint8_t *K = b->w, *V = b->w + bytes;
    for (size_t p = 0; p < DISTINCT; p++) {
        aellm_attn_store(t, ATT_HD, ATT_HEADS, ab->vals, K + p * pos);
        aellm_attn_store(t, ATT_HD, ATT_HEADS, ab->vals, V + p * pos);
    }
    repeat_units(K, pos, (size_t)a.layers * ATT_POS);
    repeat_units(V, pos, (size_t)a.layers * ATT_POS);
    a.K = K, a.V = V;
    out->decode_bytes_per_s =
        max_rate(out->decode_bytes_per_s, 2.0 * bytes / best_time(attn_pass, &a, 2));
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

static int rate_prefill_attention(const calib_bufs *b, double *flop_per_s)
{
    sgemm_ctx c = {.threads = b->threads, .n = b->T};
    float *Q = calloc(64 * ATT_HD, sizeof(float)), *K = calloc((size_t)c.n * ATT_HD, sizeof(float));
    c.S = malloc((size_t)b->threads * 64 * c.n * sizeof(float));
    int rc = 0;
    if (!Q || !K || !c.S)
        rc = aellm_error_oom("calibration attention", 0);
    else {
        c.Q = Q, c.K = K;
        double flops = 4.0 * c.threads * 2.0 * 64 * c.n * ATT_HD; /* Q.K^T, and S.V alike */
        *flop_per_s = max_rate(*flop_per_s, flops / (2 * best_time(sgemm_pass, &c, 2)));
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
    *p = (aellm_calibrate_params){
        .n_threads = 0, .prefill_tokens = 128, .reps = 5, .model_rounds = 2};
}

/* Whether kind t is to be timed: every kind, or those asked for and f32
 * (the small f32 rest of a token, and the stand-in for the rest). */
static int wanted(const aellm_calibrate_params *cp, int t)
{
    if (!cp->types || cp->n_types <= 0 || t == AELLM_DTYPE_F32) return 1;
    for (int i = 0; i < cp->n_types; i++)
        if (cp->types[i] == t) return 1;
    return 0;
}

static int bufs_alloc(calib_bufs *b, const aellm_calibrate_params *cp)
{
    size_t act = 0, scratch = 0, ys = (size_t)cp->prefill_tokens * PREFILL_ROWS;
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        int t = weight_types[i];
        size_t a = aellm_kernel_act_bytes(t, ROW_N);
        size_t sc = aellm_kernel_matmul_scratch(t, PREFILL_ROWS, ROW_N, cp->prefill_tokens);
        size_t rows = b->bytes / aellm_dtype_row_size(t, ROW_N);
        act = a > act ? a : act, scratch = sc > scratch ? sc : scratch, ys = rows > ys ? rows : ys;
    }
    b->w = scratch_alloc(b->bytes);
    b->act = scratch_alloc(act);
    b->x = scratch_alloc((size_t)cp->prefill_tokens * ROW_N * sizeof(float));
    b->y = scratch_alloc(ys * sizeof(float));
    b->row = scratch_alloc(ROW_N * sizeof(float));
    b->scratch = scratch ? scratch_alloc(scratch) : NULL;
    if (!b->w || !b->act || !b->x || !b->y || !b->row || (scratch && !b->scratch))
        return aellm_error_oom("calibration buffers", b->bytes);
    aellm_rng r;
    aellm_rng_seed(&r, 11);
    random_row(&r, b->x, (int64_t)cp->prefill_tokens * ROW_N);
    return 0;
}

static void bufs_free(calib_bufs *b)
{
    aellm_mem_free(b->w), aellm_mem_free(b->act), aellm_mem_free(b->x);
    aellm_mem_free(b->y), aellm_mem_free(b->row), aellm_mem_free(b->scratch);
}

static int attn_alloc(attn_bufs *a, int threads)
{
    a->q = malloc(ATT_HD * sizeof(float));
    a->scores = malloc((size_t)threads * ATT_POS * sizeof(float));
    a->out = malloc((size_t)ATT_MAX_LAYERS * ATT_HEADS * ATT_HD * sizeof(float));
    a->vals = malloc(ATT_HEADS * ATT_HD * sizeof(float));
    if (!a->q || !a->scores || !a->out || !a->vals)
        return aellm_error_oom("calibration attention", 0);
    aellm_rng r;
    aellm_rng_seed(&r, 13);
    random_row(&r, a->vals, ATT_HEADS * ATT_HD);
    random_row(&r, a->q, ATT_HD);
    return 0;
}

static void attn_free(attn_bufs *a)
{
    free(a->q), free(a->scores), free(a->out), free(a->vals);
}

/* ---- the whole model on a held-in shape ----
 *
 * A token is more than its kernels: norms, rotations, the activations
 * converted for each product, short rows, and threads that wait for each
 * other. Summed kernels alone predicted whole models here 15-30 % fast,
 * by type (fp8's short rows twice as slow as its long ones). So each
 * weight type also runs a whole random-weight model of a shape that is
 * none of the ones a prediction is checked on (between 110M and 1.1B),
 * through the engine, with the request of the check (a prompt of
 * prefill_tokens, 16 tokens decoded after it), and keeps measured over
 * its kernels' sum as that type's scale. */
static const aellm_model_config HELD_IN = {1024, 2816,  6, 16, 4, 64, 32000, 2048,
                                           1e4f, 1e-5f, 0, 0,  0, 0,  0};
enum { HELD_IN_GEN = 16 };

/* One run of the request after a warm-up: its prefill and decode seconds. */
static int time_request(aellm_engine *e, const int32_t *ids, int P, float *logits,
                        double *prefill_s, double *decode_s)
{
    for (int r = 0; r < 2; r++) {
        double t0 = aellm_time_s();
        if (aellm_engine_eval(e, ids, P, 0, logits, 0)) return AELLM_ERROR;
        double t1 = aellm_time_s();
        for (int i = 0; i < HELD_IN_GEN; i++)
            if (aellm_engine_eval(e, ids + P + i, 1, P + i, logits, 0)) return AELLM_ERROR;
        *prefill_s = t1 - t0, *decode_s = aellm_time_s() - t1;
    }
    return 0;
}

/* The request's prefill and decode seconds as the kernels alone at `rate`
 * would take them (the rest of the profile as calibrated). */
static int kernel_sum(const aellm_hw_profile *hw, int t, aellm_hw_rate rate,
                      const aellm_calibrate_params *cp, aellm_prediction *out)
{
    aellm_hw_profile *h = malloc(sizeof(*h));
    if (!h) return aellm_error_oom("calibration profile", sizeof(*h));
    *h = *hw;
    rate.prefill_scale = rate.decode_scale = 0;
    h->kernel_rates[t] = rate;
    aellm_config c;
    aellm_config_default(&c);
    c.weight_type = t;
    aellm_predict_params pp;
    aellm_predict_params_default(&pp);
    pp.n_prompt = cp->prefill_tokens, pp.n_gen = HELD_IN_GEN, pp.base_type = t;
    pp.n_batch = cp->prefill_tokens, pp.n_threads = cp->n_threads;
    int rc = aellm_predict(&HELD_IN, &c, h, &pp, out);
    free(h);
    return rc;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && v[k] < v[k - 1]; k--) {
            double x = v[k];
            v[k] = v[k - 1], v[k - 1] = x;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Type t's scales: in each round its kernels are timed again and the
 * whole model runs right after, so that the two see the same machine (its
 * bandwidth moves by tens of percent within a minute here); the median
 * ratio over the rounds is kept. */
static int fit_model_scale(aellm_hw_profile *hw, int t, calib_bufs *b,
                           const aellm_calibrate_params *cp)
{
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    int P = cp->prefill_tokens, n = P + HELD_IN_GEN, R = cp->model_rounds;
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    float *logits = malloc((size_t)HELD_IN.vocab_size * sizeof(float));
    double *ratios = malloc(2 * (size_t)R * sizeof(double));
    int rc = !ids || !logits || !ratios ? aellm_error_oom("calibration request", 0) : 0;
    if (!rc) rc = aellm_model_random(&m, &HELD_IN, t, 42);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = n, ep.n_batch = P, ep.n_threads = cp->n_threads;
    if (!rc) rc = aellm_engine_new(&e, m, &ep);
    aellm_rng r;
    aellm_rng_seed(&r, 1234);
    for (int i = 0; !rc && i < n; i++)
        ids[i] = (int32_t)(aellm_rng_u64(&r) % (uint64_t)HELD_IN.vocab_size);
    for (int k = 0; !rc && k < R; k++) {
        aellm_hw_rate now = {0};
        rate_weight_type(b, t, &now);
        double pf, dc;
        aellm_prediction pred;
        if ((rc = time_request(e, ids, P, logits, &pf, &dc))) break;
        if ((rc = kernel_sum(hw, t, now, cp, &pred))) break;
        ratios[k] = dc / pred.decode_s, ratios[R + k] = pf / pred.prefill_s;
    }
    if (!rc) {
        hw->kernel_rates[t].decode_scale = median(ratios, R);
        hw->kernel_rates[t].prefill_scale = median(ratios + R, R);
    }
    aellm_engine_free(e), aellm_model_free(m), free(ids), free(logits), free(ratios);
    return rc;
}

/* One round: every wanted kind once, its rates raised where they beat the
 * earlier rounds'. */
static int calibrate_round(aellm_hw_profile *hw, calib_bufs *b, attn_bufs *ab,
                           const aellm_calibrate_params *cp, int round,
                           void (*progress)(const char *what, int done, int total, void *user),
                           void *user, int per_round)
{
    int done = round * per_round, total = cp->reps * per_round;
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        int t = weight_types[i];
        if (!wanted(cp, t)) continue;
        if (progress) progress(aellm_dtype_traits_get(t)->name, done++, total, user);
        rate_weight_type(b, t, &hw->kernel_rates[t]);
    }
    double attn_flops = hw->attention_rates[AELLM_DTYPE_F32].prefill_flop_per_s;
    int rc = rate_prefill_attention(b, &attn_flops);
    if (rc) return rc;
    for (int i = 0; i < N_KV_TYPES; i++) {
        int t = kv_types[i];
        if (!wanted(cp, t)) continue;
        if (progress) progress("attention", done++, total, user);
        aellm_hw_rate *r = &hw->attention_rates[t];
        rate_kv_type(b, t, ab, r);
        r->prefill_flop_per_s = attn_flops;
    }
    barrier_ctx bc = {cp->n_threads};
    double ovh = best_time(barrier_pass, &bc, 2) / BARRIERS;
    if (round == 0 || ovh < hw->kernel_overhead_s) hw->kernel_overhead_s = ovh;
    return 0;
}

int aellm_predict_calibrate(aellm_hw_profile *hw, const aellm_calibrate_params *params,
                            void (*progress)(const char *what, int done, int total, void *user),
                            void *user)
{
    aellm_calibrate_params cp = *params;
    if (cp.n_threads <= 0) cp.n_threads = omp_get_num_procs();
    if (cp.prefill_tokens < 1 || cp.reps < 1)
        return aellm_error_set(AELLM_EINVAL, "calibrate: prefill tokens and rounds >= 1");
    for (int i = 0; cp.types && i < cp.n_types; i++)
        if (cp.types[i] < 0 || cp.types[i] >= AELLM_HW_RATED_TYPES)
            return aellm_error_set(AELLM_EINVAL, "calibrate: no such kernel type %d", cp.types[i]);
    int rc = aellm_hw_detect(hw, 1, cp.n_threads);
    if (rc) return rc;
    int per_round = 0;
    for (int i = 0; i < N_WEIGHT_TYPES; i++) per_round += wanted(&cp, weight_types[i]);
    for (int i = 0; i < N_KV_TYPES; i++) per_round += wanted(&cp, kv_types[i]);
    int total = cp.reps * per_round + per_round; /* the held-in models: about a round's time */
    calib_bufs b = {.threads = cp.n_threads, .T = cp.prefill_tokens, .bytes = stream_bytes()};
    attn_bufs ab = {0};
    rc = bufs_alloc(&b, &cp);
    if (!rc) rc = attn_alloc(&ab, cp.n_threads);
    for (int r = 0; !rc && r < cp.reps; r++)
        rc = calibrate_round(hw, &b, &ab, &cp, r, progress, user, per_round);
    for (int i = 0; !rc && cp.model_rounds > 0 && i < N_WEIGHT_TYPES; i++) {
        int t = weight_types[i];
        if (!wanted(&cp, t)) continue;
        if (progress) progress(aellm_dtype_traits_get(t)->name, cp.reps * per_round, total, user);
        rc = fit_model_scale(hw, t, &b, &cp);
    }
    bufs_free(&b), attn_free(&ab);
    if (rc) return rc;
    if (progress) progress("done", total, total, user);
    snprintf(hw->eff_source, sizeof(hw->eff_source),
             "measured here by aellm predict --calibrate (%d threads, best of %d rounds): "
             "each kernel kind's rate on %zu MiB past the last-level cache, one barrier per "
             "kernel, and per weight type the whole model over its kernels on a held-in shape "
             "(dim %d, %d layers; %d-token prompt, %d decoded)",
             cp.n_threads, cp.reps, b.bytes >> 20, HELD_IN.dim, HELD_IN.n_layers, cp.prefill_tokens,
             HELD_IN_GEN);
    return 0;
}
