/* The kld task: KL divergence of a configuration's next-token distributions
 * from the unmodified model's, on the perplexity task's windows, as llama.cpp's
 * `llama-perplexity --kl-divergence` measures it. The base distributions are
 * computed once and kept in a file; this file is not where the file is named
 * or found (the evaluation pipeline keys it by model and text). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/error.h"
#include "core/timer.h"
#include "measure/task_internal.h"

/* File: magic, version, then the header below, the scored tokens and the
 * rows, in the host's byte order (a cache, not an interchange format; a file
 * from a machine of the other order fails the version check). */
#define KLD_MAGIC   "AELLMKLD"
#define KLD_VERSION 0x01020304u

typedef struct {
    uint32_t version, n_vocab, n_ctx, n_chunks, n_scored, reserved;
    uint64_t n_rows;
    char ids_sha[AELLM_HASH_HEX]; /* of the windows' tokens, BOS included */
    char pad[7];
} kld_header;

struct aellm_kld_base {
    kld_header h;
    int32_t *targets; /* (n_rows) the token each row predicts */
    float *rows;      /* (n_rows, n_vocab) log-probabilities */
};

void aellm_kld_base_free(aellm_kld_base *b)
{
    if (!b) return;
    free(b->targets);
    free(b->rows);
    free(b);
}

int64_t aellm_kld_base_n_tokens(const aellm_kld_base *b)
{
    return b ? (int64_t)b->h.n_rows : 0;
}

static void windows_sha(const task_windows *w, char out[AELLM_HASH_HEX])
{
    aellm_hash_bytes(w->ids, (size_t)w->n_chunks * (size_t)w->n_ctx * sizeof(int32_t), out);
}

static int base_alloc(aellm_kld_base **out, const kld_header *h)
{
    aellm_kld_base *b = calloc(1, sizeof(*b));
    size_t n = (size_t)h->n_rows, cells = n * (size_t)h->n_vocab;
    if (b) b->h = *h;
    if (b) b->targets = malloc((n ? n : 1) * sizeof(int32_t));
    if (b) b->rows = malloc((cells ? cells : 1) * sizeof(float));
    if (!b || !b->targets || !b->rows) {
        aellm_kld_base_free(b);
        return aellm_error_oom("the base model's distributions", cells * sizeof(float));
    }
    *out = b;
    return 0;
}

static int need_distributions(const aellm_task *t, const aellm_lm *lm)
{
    if (!lm->distributions || lm->n_vocab < 1)
        return aellm_error_set(AELLM_EINVAL, "%s: the model gives no next-token distributions",
                               t->where);
    return 0;
}

int aellm_kld_base_compute(aellm_kld_base **out, const aellm_task *t, aellm_lm *base,
                           aellm_task_progress_fn progress, void *user)
{
    *out = NULL;
    int rc = need_distributions(t, base);
    if (rc) return rc;
    task_windows w;
    if ((rc = task_windows_make(t, base, &w))) return rc;
    kld_header h = {.version = KLD_VERSION,
                    .n_vocab = (uint32_t)base->n_vocab,
                    .n_ctx = (uint32_t)w.n_ctx,
                    .n_chunks = (uint32_t)w.n_chunks,
                    .n_scored = (uint32_t)w.n_scored,
                    .n_rows = (uint64_t)w.n_chunks * (uint64_t)w.n_scored};
    windows_sha(&w, h.ids_sha);
    aellm_kld_base *b = NULL;
    int32_t *window = malloc((size_t)w.n_ctx * sizeof(int32_t));
    if (!window) rc = aellm_error_oom("a window", (unsigned long long)w.n_ctx * 4);
    if (!rc) rc = base_alloc(&b, &h);
    for (int c = 0; !rc && c < w.n_chunks; c++) {
        size_t row0 = (size_t)c * (size_t)w.n_scored;
        task_windows_fill(&w, c, window);
        rc = base->distributions(base->user, window, w.n_ctx, w.first + 1,
                                 b->rows + row0 * (size_t)h.n_vocab);
        for (int j = 0; j < w.n_scored; j++) b->targets[row0 + j] = window[w.first + 1 + j];
        if (!rc && progress) progress(c + 1, w.n_chunks, user);
    }
    free(window);
    task_windows_free(&w);
    if (rc)
        aellm_kld_base_free(b);
    else
        *out = b;
    return rc;
}

/* ---- the file ---- */
int aellm_kld_base_save(const aellm_kld_base *b, const char *path)
{
    aellm_atomic a;
    int rc = aellm_atomic_open(&a, path);
    if (rc) return rc;
    size_t rows = (size_t)b->h.n_rows;
    aellm_atomic_write(&a, KLD_MAGIC, 8);
    aellm_atomic_write(&a, &b->h, sizeof(b->h));
    aellm_atomic_write(&a, b->targets, rows * sizeof(int32_t));
    aellm_atomic_write(&a, b->rows, rows * b->h.n_vocab * sizeof(float));
    return aellm_atomic_commit(&a);
}

/* The header's sizes against each other and the file's length. */
static int check_header(const kld_header *h, long long file_bytes, const char *path)
{
    if (h->version != KLD_VERSION)
        return aellm_error_set(AELLM_EFORMAT, "%s: version %#x, expected %#x", path, h->version,
                               KLD_VERSION);
    if (h->n_vocab < 1 || h->n_vocab > (1u << 24) || h->n_ctx < 4 || h->n_chunks < 1 ||
        h->n_scored < 1 || h->n_scored >= h->n_ctx ||
        h->n_rows != (uint64_t)h->n_chunks * h->n_scored || h->ids_sha[AELLM_HASH_HEX - 1])
        return aellm_error_set(AELLM_EFORMAT, "%s: inconsistent header", path);
    /* n_rows < 2^63 / (4 * (2^24 + 1)): the product below cannot overflow */
    if (h->n_rows > (1ull << 36))
        return aellm_error_set(AELLM_EFORMAT, "%s: %llu rows is too many", path,
                               (unsigned long long)h->n_rows);
    unsigned long long want =
        8 + sizeof(*h) + h->n_rows * sizeof(int32_t) + h->n_rows * h->n_vocab * sizeof(float);
    if ((unsigned long long)file_bytes != want)
        return aellm_error_set(AELLM_EFORMAT, "%s: %lld bytes, the header says %llu", path,
                               file_bytes, want);
    return 0;
}

int aellm_kld_base_load(aellm_kld_base **out, const char *path)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st))
        return aellm_error_set(errno == ENOENT ? AELLM_ENOTFOUND : AELLM_EIO, "%s: %s", path,
                               strerror(errno));
    if (!S_ISREG(st.st_mode)) return aellm_error_set(AELLM_EIO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return aellm_error_set(AELLM_EIO, "%s: %s", path, strerror(errno));
    char magic[8];
    kld_header h;
    aellm_kld_base *b = NULL;
    int rc = 0;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, KLD_MAGIC, 8) ||
        fread(&h, sizeof(h), 1, f) != 1)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: not a base-distribution file", path);
    if (!rc) rc = check_header(&h, (long long)st.st_size, path);
    if (!rc) rc = base_alloc(&b, &h);
    size_t rows = (size_t)h.n_rows;
    if (!rc && (fread(b->targets, sizeof(int32_t), rows, f) != rows ||
                fread(b->rows, sizeof(float), rows * h.n_vocab, f) != rows * h.n_vocab))
        rc = aellm_error_set(AELLM_EFORMAT, "%s: truncated", path);
    fclose(f);
    /* scoring indexes each row by its target: one outside the row is a damaged file */
    for (size_t i = 0; !rc && i < rows; i++)
        if (b->targets[i] < 0 || (uint32_t)b->targets[i] >= h.n_vocab)
            rc = aellm_error_set(AELLM_EFORMAT, "%s: row %zu predicts token %d, outside %u", path,
                                 i, b->targets[i], h.n_vocab);
    if (rc)
        aellm_kld_base_free(b);
    else
        *out = b;
    return rc;
}

/* ---- scoring ---- */
typedef struct {
    double sum, sum2; /* of the per-token KLD */
    double nll, nll_base, dp2;
    int64_t agree, n;
    double *each; /* (n_rows) per-token KLD, for the quantiles */
} kld_sums;

static int argmax_f(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) best = x[i] > x[best] ? i : best;
    return best;
}

/* One token: KL(P || Q) = sum_v P_v (log P_v - log Q_v), in double. */
static void score_row(const float *lp, const float *lq, int vocab, int target, kld_sums *s)
{
    double kld = 0.0;
    for (int v = 0; v < vocab; v++) {
        double p = exp((double)lp[v]);
        kld += p * ((double)lp[v] - (double)lq[v]);
    }
    s->each[s->n++] = kld;
    s->sum += kld;
    s->sum2 += kld * kld;
    s->agree += argmax_f(lp, vocab) == argmax_f(lq, vocab);
    s->nll -= lq[target];
    s->nll_base -= lp[target];
    double dp = exp((double)lq[target]) - exp((double)lp[target]);
    s->dp2 += dp * dp;
}

/* The configuration's windows must be the base's, token for token. */
static int check_match(const aellm_task *t, const aellm_lm *lm, const task_windows *w,
                       const aellm_kld_base *b)
{
    char sha[AELLM_HASH_HEX];
    windows_sha(w, sha);
    if ((int)b->h.n_vocab != lm->n_vocab || (int)b->h.n_ctx != w->n_ctx ||
        (int)b->h.n_chunks != w->n_chunks || (int)b->h.n_scored != w->n_scored ||
        strcmp(sha, b->h.ids_sha))
        return aellm_error_set(
            AELLM_EINVAL,
            "%s: the base distributions are of another text, window or "
            "vocabulary (%u windows of %u over %u tokens; here %d of %d over %d)",
            t->where, b->h.n_chunks, b->h.n_ctx, b->h.n_vocab, w->n_chunks, w->n_ctx, lm->n_vocab);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The value at quantile q of sorted x[0..n) (nearest rank). */
static double quantile(const double *x, int64_t n, double q)
{
    int64_t i = (int64_t)ceil(q * (double)n) - 1;
    return x[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int add_metrics(const kld_sums *s, aellm_task_result *out)
{
    double n = (double)s->n, mean = s->sum / n, var = s->sum2 / n - mean * mean;
    double se = var > 0 && s->n > 1 ? sqrt(var / (n - 1)) : 0.0;
    double nll = s->nll / n, nll_base = s->nll_base / n;
    qsort(s->each, (size_t)s->n, sizeof(double), cmp_double);
    int rc = task_metric_add(out, "kld", mean, se);
    if (!rc) rc = task_metric_acc(out, "top1_agree", s->agree, s->n);
    if (!rc) rc = task_metric_add(out, "kld_median", quantile(s->each, s->n, 0.5), 0);
    if (!rc) rc = task_metric_add(out, "kld_p99", quantile(s->each, s->n, 0.99), 0);
    if (!rc) rc = task_metric_add(out, "kld_max", s->each[s->n - 1], 0);
    if (!rc) rc = task_metric_add(out, "rms_dp", sqrt(s->dp2 / n), 0);
    if (!rc) rc = task_metric_add(out, "ppl", exp(nll), 0);
    if (!rc) rc = task_metric_add(out, "ppl_base", exp(nll_base), 0);
    out->higher_is_better = 0;
    out->n_items = s->n;
    return rc;
}

int aellm_task_run_kld(const aellm_task *t, aellm_lm *lm, const aellm_kld_base *base,
                       aellm_task_progress_fn progress, void *user, aellm_task_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!t || !lm || !base) return aellm_error_set(AELLM_EINVAL, "task_run_kld: NULL argument");
    if (t->kind != AELLM_TASK_KLD && t->kind != AELLM_TASK_PERPLEXITY)
        return aellm_error_set(AELLM_EINVAL, "%s: KL divergence needs a text task", t->where);
    int rc = need_distributions(t, lm);
    if (rc) return rc;
    double t0 = aellm_time_s();
    task_windows w;
    if ((rc = task_windows_make(t, lm, &w))) return rc;
    int vocab = lm->n_vocab;
    kld_sums s = {0};
    int32_t *window = malloc((size_t)w.n_ctx * sizeof(int32_t));
    float *rows = malloc((size_t)w.n_scored * (size_t)vocab * sizeof(float));
    s.each = malloc((size_t)base->h.n_rows * sizeof(double));
    if (!window || !rows || !s.each)
        rc = aellm_error_oom("KL divergence buffers", (size_t)w.n_scored * vocab * sizeof(float));
    if (!rc) rc = check_match(t, lm, &w, base);
    for (int c = 0; !rc && c < w.n_chunks; c++) {
        size_t row0 = (size_t)c * (size_t)w.n_scored;
        task_windows_fill(&w, c, window);
        if ((rc = lm->distributions(lm->user, window, w.n_ctx, w.first + 1, rows))) break;
        for (int j = 0; j < w.n_scored; j++)
            score_row(base->rows + (row0 + j) * (size_t)vocab, rows + (size_t)j * vocab, vocab,
                      base->targets[row0 + j], &s);
        if (progress) progress(c + 1, w.n_chunks, user);
    }
    if (!rc) rc = add_metrics(&s, out);
    free(window);
    free(rows);
    free(s.each);
    task_windows_free(&w);
    if (rc)
        aellm_task_result_free(out);
    else
        out->seconds = aellm_time_s() - t0;
    return rc;
}
