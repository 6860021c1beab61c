/* The perplexity task, by llama.cpp's method (as aellm_perplexity, but
 * through the aellm_lm interface): non-overlapping windows of n_ctx tokens,
 * BOS in the first slot of each, and only tokens after the window's first
 * half scored, so each has at least n_ctx/2 tokens of context. The windows
 * are shared with the kld task (task_kld.c), which scores the same tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "measure/task_internal.h"

int task_windows_make(const aellm_task *t, aellm_lm *lm, task_windows *w)
{
    memset(w, 0, sizeof(*w));
    int n_ctx = t->n_ctx ? t->n_ctx : lm->n_ctx, rc;
    if (n_ctx < 4 || n_ctx > lm->n_ctx)
        return aellm_error_set(AELLM_EINVAL, "%s: n_ctx %d must be in [4, %d] (the model's)",
                               t->where, n_ctx, lm->n_ctx);
    if ((rc = task_encode(lm, t->text, 1, &w->ids, &w->n))) return rc;
    int64_t n_chunks = w->n / n_ctx;
    if (t->max_chunks > 0 && n_chunks > t->max_chunks) n_chunks = t->max_chunks;
    if (n_chunks < 1) {
        rc =
            aellm_error_set(AELLM_EINVAL, "%s: the text has %d tokens, fewer than one window of %d",
                            t->where, w->n, n_ctx);
        task_windows_free(w);
        return rc;
    }
    w->n_ctx = n_ctx;
    w->n_chunks = (int)n_chunks;
    w->first = n_ctx / 2; /* tokens first+1 .. n_ctx-1 of each window: llama.cpp's count */
    w->n_scored = n_ctx - w->first - 1;
    return 0;
}

void task_windows_fill(const task_windows *w, int c, int32_t *window)
{
    memcpy(window, w->ids + (int64_t)c * w->n_ctx, (size_t)w->n_ctx * sizeof(int32_t));
    window[0] = w->ids[0]; /* BOS */
}

void task_windows_free(task_windows *w)
{
    free(w->ids);
    memset(w, 0, sizeof(*w));
}

int task_run_perplexity(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                        void *user, aellm_task_result *out)
{
    task_windows w;
    int rc = task_windows_make(t, lm, &w);
    if (rc) return rc;
    int32_t *window = malloc((size_t)w.n_ctx * sizeof(int32_t));
    double *lp = malloc((size_t)w.n_ctx * sizeof(double));
    if (!window || !lp) {
        rc = aellm_error_oom("perplexity window", (unsigned long long)w.n_ctx * 12);
        goto done;
    }
    double sum = 0.0, sum2 = 0.0;
    int64_t count = 0;
    for (int c = 0; c < w.n_chunks; c++) {
        task_windows_fill(&w, c, window);
        if ((rc = task_logprobs(lm, window, w.n_ctx, w.first + 1, lp))) goto done;
        for (int j = 0; j < w.n_scored; j++) sum -= lp[j], sum2 += lp[j] * lp[j];
        count += w.n_scored;
        if (progress) progress(c + 1, w.n_chunks, user);
    }
    double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
    /* standard error of the mean NLL, through exp() to first order */
    double se = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0.0;
    if ((rc = task_metric_add(out, "ppl", exp(mean), exp(mean) * se))) goto done;
    if ((rc = task_metric_add(out, "nll", mean, se))) goto done;
    out->higher_is_better = 0;
    out->n_items = count;
done:
    task_windows_free(&w);
    free(window);
    free(lp);
    return rc;
}
