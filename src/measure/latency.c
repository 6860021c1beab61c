/* Latency (DESIGN.md §4): order statistics of repeated runs (median, p10,
 * p90 and a distribution-free 95 % interval of the median), the loop that
 * repeats until that interval is narrow enough, and the engine run that it
 * times. Not a throughput benchmark: one sequence, batch of one. */
#include "aellm/latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"

void aellm_latency_params_default(aellm_latency_params *p)
{
    p->n_prompt = 512;
    p->n_gen = 128;
    p->warmup = 2;
    p->min_reps = 3;
    p->max_reps = 100; /* DESIGN.md §4 */
    p->rel_ci = 0.02;
    p->seed = 1;
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's default ("linear") quantile of sorted s[0..n): position
 * h = (n - 1) q, interpolated between s[floor h] and the next. */
static double quantile(const double *s, int n, double q)
{
    double h = (double)(n - 1) * q;
    int lo = (int)floor(h);
    if (lo >= n - 1) return s[n - 1];
    return s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]);
}

/* The median's interval [x_(j), x_(n-j+1)] (1-based order statistics)
 * covers it with probability 1 - 2 P(B <= j - 1), B ~ Bin(n, 1/2); the
 * largest j with coverage >= 95 %, or 0 if even j = 1 falls short (n < 6). */
static int median_ci_rank(int n)
{
    double cdf = 0.0;
    int j = 0;
    for (int k = 1; k <= n / 2; k++) {
        int i = k - 1; /* P(B = i), in logs so that large n does not underflow */
        cdf += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
        if (1.0 - 2.0 * cdf < 0.95) break;
        j = k;
    }
    return j;
}

/* Fewer than six points: median +- 1.96 x 1.2533 s / sqrt(n), the normal
 * approximation (1.2533 = sqrt(pi/2), the median's standard error over the
 * mean's). One point says nothing about spread: the interval is unbounded. */
static void normal_ci(const double *s, int n, aellm_latency_summary *out)
{
    if (n < 2) {
        out->ci_lo = -HUGE_VAL;
        out->ci_hi = HUGE_VAL;
        return;
    }
    double mean = 0, ss = 0;
    for (int i = 0; i < n; i++) mean += s[i];
    mean /= n;
    for (int i = 0; i < n; i++) ss += (s[i] - mean) * (s[i] - mean);
    double half = 1.96 * 1.2533 * sqrt(ss / (n - 1)) / sqrt((double)n);
    out->ci_lo = out->median - half;
    out->ci_hi = out->median + half;
}

static void summarize_sorted(const double *s, int n, aellm_latency_summary *out)
{
    out->median = quantile(s, n, 0.5);
    out->p10 = quantile(s, n, 0.1);
    out->p90 = quantile(s, n, 0.9);
    int j = median_ci_rank(n);
    if (j == 0) {
        normal_ci(s, n, out);
        return;
    }
    out->ci_lo = s[j - 1];
    out->ci_hi = s[n - j];
}

void aellm_latency_summarize(const double *x, int n, aellm_latency_summary *out)
{
    memset(out, 0, sizeof(*out));
    if (n < 1) return;
    double *s = malloc((size_t)n * sizeof(double));
    if (!s) { /* an allocation this small failing leaves nothing to report */
        out->ci_lo = -HUGE_VAL;
        out->ci_hi = HUGE_VAL;
        return;
    }
    memcpy(s, x, (size_t)n * sizeof(double));
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    summarize_sorted(s, n, out);
    free(s);
}

/* ---- the repetition loop ---- */

/* Half-width: the larger side, since order-statistic intervals are not
 * symmetric about the median. */
static int precise_enough(const aellm_latency_summary *s, double rel_ci)
{
    double half = fmax(s->median - s->ci_lo, s->ci_hi - s->median);
    return half <= rel_ci * s->median;
}

static void summarize_all(aellm_latency_result *out, const double *pre, const double *dec,
                          const double *tot, int n)
{
    aellm_latency_summarize(pre, n, &out->prefill);
    aellm_latency_summarize(dec, n, &out->decode);
    aellm_latency_summarize(tot, n, &out->total);
    out->prefill_tps = out->prefill.median > 0 ? out->n_prompt / out->prefill.median : 0.0;
    out->decode_tps = out->decode.median > 0 ? out->n_gen / out->decode.median : 0.0;
}

static int check_params(const aellm_latency_params *p)
{
    if (p->min_reps < 1 || p->max_reps < p->min_reps || p->warmup < 0)
        return aellm_error_set(AELLM_EINVAL,
                               "latency: need 1 <= min_reps <= max_reps and warmup >= 0 "
                               "(min_reps %d, max_reps %d, warmup %d)",
                               p->min_reps, p->max_reps, p->warmup);
    if (!(p->rel_ci >= 0)) return aellm_error_set(AELLM_EINVAL, "latency: rel_ci must be >= 0");
    return 0;
}

int aellm_latency_measure(aellm_latency_run_fn run, void *user, const aellm_latency_params *p,
                          aellm_latency_progress_fn progress, void *progress_user,
                          aellm_latency_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_params(p);
    if (rc) return rc;
    double *buf = malloc(3 * (size_t)p->max_reps * sizeof(double));
    if (!buf) return aellm_error_oom("latency samples", 3 * (size_t)p->max_reps * sizeof(double));
    double *pre = buf, *dec = buf + p->max_reps, *tot = buf + 2 * p->max_reps;
    out->n_prompt = p->n_prompt;
    out->n_gen = p->n_gen;
    for (int w = 0; w < p->warmup && !rc; w++) rc = run(user, &pre[0], &dec[0]);
    for (int r = 0; r < p->max_reps && !rc; r++) {
        rc = run(user, &pre[r], &dec[r]);
        if (rc) break;
        tot[r] = pre[r] + dec[r];
        out->reps = r + 1;
        summarize_all(out, pre, dec, tot, r + 1);
        out->converged = r + 1 >= p->min_reps && precise_enough(&out->prefill, p->rel_ci) &&
                         precise_enough(&out->decode, p->rel_ci);
        if (progress) progress(r + 1, out, progress_user);
        if (out->converged) break;
    }
    free(buf);
    return rc;
}

/* ---- paired with a reference ---- */

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 1.0;
}

typedef struct {
    double *pre, *dec, *tot;
} samples;

static void summarize_ratios(aellm_latency_paired_result *out, const samples *self,
                             const samples *ref, samples *q, int n)
{
    int r = n - 1;
    q->pre[r] = ratio(self->pre[r], ref->pre[r]);
    q->dec[r] = ratio(self->dec[r], ref->dec[r]);
    q->tot[r] = ratio(self->tot[r], ref->tot[r]);
    aellm_latency_summarize(q->pre, n, &out->ratio_prefill);
    aellm_latency_summarize(q->dec, n, &out->ratio_decode);
    aellm_latency_summarize(q->tot, n, &out->ratio_total);
}

/* One pair; the order alternates so that neither side always runs on the
 * caches the other left. */
static int run_pair(aellm_latency_run_fn run, void *user, aellm_latency_run_fn ref_run,
                    void *ref_user, int rep, aellm_latency_pair_progress_fn progress,
                    void *progress_user, samples *self, samples *ref, int slot)
{
    for (int k = 0; k < 2; k++) {
        int side = k ^ (rep & 1);
        int rc = side ? ref_run(ref_user, &ref->pre[slot], &ref->dec[slot])
                      : run(user, &self->pre[slot], &self->dec[slot]);
        if (rc) return rc;
        if (progress) progress(rep, side, progress_user);
    }
    self->tot[slot] = self->pre[slot] + self->dec[slot];
    ref->tot[slot] = ref->pre[slot] + ref->dec[slot];
    return 0;
}

int aellm_latency_measure_paired(aellm_latency_run_fn run, void *user, aellm_latency_run_fn ref_run,
                                 void *ref_user, const aellm_latency_params *p,
                                 aellm_latency_pair_progress_fn progress, void *progress_user,
                                 aellm_latency_paired_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_params(p);
    if (rc) return rc;
    size_t n = (size_t)p->max_reps;
    double *buf = malloc(9 * n * sizeof(double));
    if (!buf) return aellm_error_oom("paired latency samples", 9 * n * sizeof(double));
    samples self = {buf, buf + n, buf + 2 * n}, ref = {buf + 3 * n, buf + 4 * n, buf + 5 * n},
            q = {buf + 6 * n, buf + 7 * n, buf + 8 * n};
    out->n_prompt = out->self.n_prompt = out->reference.n_prompt = p->n_prompt;
    out->n_gen = out->self.n_gen = out->reference.n_gen = p->n_gen;
    for (int w = 0; w < p->warmup && !rc; w++)
        rc = run_pair(run, user, ref_run, ref_user, 0, progress, progress_user, &self, &ref, 0);
    for (int r = 0; r < p->max_reps && !rc; r++) {
        rc = run_pair(run, user, ref_run, ref_user, r + 1, progress, progress_user, &self, &ref, r);
        if (rc) break;
        out->reps = out->self.reps = out->reference.reps = r + 1;
        summarize_all(&out->self, self.pre, self.dec, self.tot, r + 1);
        summarize_all(&out->reference, ref.pre, ref.dec, ref.tot, r + 1);
        summarize_ratios(out, &self, &ref, &q, r + 1);
        out->converged = r + 1 >= p->min_reps && precise_enough(&out->ratio_prefill, p->rel_ci) &&
                         precise_enough(&out->ratio_decode, p->rel_ci);
        if (out->converged) break;
    }
    out->self.converged = out->reference.converged = out->converged;
    free(buf);
    return rc;
}

/* ---- on an engine ---- */

typedef struct {
    aellm_engine *e;
    const int32_t *prompt;
    int n_prompt, n_gen, vocab;
    float *logits; /* (vocab) */
} engine_run;

static int32_t argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Prefill from position 0 (overwriting the previous repetition's cache),
 * then greedy decode; the argmax is part of decoding. */
static int engine_rep(void *user, double *prefill_s, double *decode_s)
{
    engine_run *r = user;
    double t0 = aellm_time_s();
    int rc = aellm_engine_eval(r->e, r->prompt, r->n_prompt, 0, r->logits, 0);
    if (rc) return rc;
    double t1 = aellm_time_s();
    for (int i = 0; i < r->n_gen; i++) {
        int32_t tok = argmax(r->logits, r->vocab);
        rc = aellm_engine_eval(r->e, &tok, 1, r->n_prompt + i, r->logits, 0);
        if (rc) return rc;
    }
    *prefill_s = t1 - t0;
    *decode_s = aellm_time_s() - t1;
    return 0;
}

/* Decode positions run to P + G - 1, so P + G must fit the context; the
 * prompt gives way first, down to one token. */
static int clip_lengths(const aellm_latency_params *p, int n_ctx, int *n_prompt, int *n_gen)
{
    if (p->n_prompt < 1 || p->n_gen < 0)
        return aellm_error_set(AELLM_EINVAL, "latency: need n_prompt >= 1 and n_gen >= 0");
    *n_gen = p->n_gen < n_ctx - 1 ? p->n_gen : n_ctx - 1;
    *n_prompt = p->n_prompt < n_ctx - *n_gen ? p->n_prompt : n_ctx - *n_gen;
    return 0;
}

/* A prompt of P ordinary tokens (ids 0-2 are unknown/BOS/EOS in llama
 * vocabularies) and a logits buffer, P and G clipped to the context. */
static int engine_run_init(engine_run *r, aellm_engine *e, const aellm_latency_params *p, int n_ctx,
                           aellm_latency_params *clipped)
{
    memset(r, 0, sizeof(*r));
    r->e = e;
    r->vocab = aellm_engine_vocab_size(e);
    if (r->vocab <= 3)
        return aellm_error_set(AELLM_EINVAL, "latency: vocabulary of %d has no ordinary tokens",
                               r->vocab);
    int rc = clip_lengths(p, n_ctx, &r->n_prompt, &r->n_gen);
    if (rc) return rc;
    int32_t *prompt = malloc((size_t)r->n_prompt * sizeof(int32_t));
    r->logits = malloc((size_t)r->vocab * sizeof(float));
    if (!prompt || !r->logits) {
        free(prompt);
        return aellm_error_oom("latency prompt and logits", (size_t)r->vocab * sizeof(float));
    }
    aellm_rng rng;
    aellm_rng_seed(&rng, p->seed);
    for (int i = 0; i < r->n_prompt; i++)
        prompt[i] = 3 + (int32_t)(aellm_rng_u64(&rng) % (uint64_t)(r->vocab - 3));
    r->prompt = prompt;
    *clipped = *p;
    clipped->n_prompt = r->n_prompt;
    clipped->n_gen = r->n_gen;
    return 0;
}

static void engine_run_free(engine_run *r)
{
    free((void *)r->prompt);
    free(r->logits);
}

int aellm_latency_engine(aellm_engine *e, const aellm_latency_params *p,
                         aellm_latency_progress_fn progress, void *progress_user,
                         aellm_latency_result *out)
{
    memset(out, 0, sizeof(*out));
    engine_run r;
    aellm_latency_params clipped;
    int rc = engine_run_init(&r, e, p, aellm_engine_n_ctx(e), &clipped);
    if (!rc) rc = aellm_latency_measure(engine_rep, &r, &clipped, progress, progress_user, out);
    engine_run_free(&r);
    return rc;
}

int aellm_latency_engine_paired(aellm_engine *e, aellm_engine *reference,
                                const aellm_latency_params *p,
                                aellm_latency_pair_progress_fn progress, void *progress_user,
                                aellm_latency_paired_result *out)
{
    memset(out, 0, sizeof(*out));
    if (aellm_engine_vocab_size(e) != aellm_engine_vocab_size(reference))
        return aellm_error_set(AELLM_EINVAL, "latency: the reference has another vocabulary");
    int n_ctx = aellm_engine_n_ctx(e) < aellm_engine_n_ctx(reference)
                    ? aellm_engine_n_ctx(e)
                    : aellm_engine_n_ctx(reference);
    engine_run a, b;
    aellm_latency_params clipped;
    int rc = engine_run_init(&a, e, p, n_ctx, &clipped);
    if (rc) return rc;
    if (!(rc = engine_run_init(&b, reference, p, n_ctx, &clipped)))
        rc = aellm_latency_measure_paired(engine_rep, &a, engine_rep, &b, &clipped, progress,
                                          progress_user, out);
    engine_run_free(&a);
    engine_run_free(&b);
    return rc;
}
