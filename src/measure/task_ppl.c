/* The perplexity task, by llama.cpp's method (as aellm_perplexity, but
 * through the aellm_lm interface): non-overlapping windows of n_ctx tokens,
 * BOS in the first slot of each, and only tokens after the window's first
 * half scored, so each has at least n_ctx/2 tokens of context. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "measure/task_internal.h"

int task_run_perplexity(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                        void *user, aellm_task_result *out)
{
    int n_ctx = t->n_ctx ? t->n_ctx : lm->n_ctx, n = 0, rc;
    if (n_ctx < 4 || n_ctx > lm->n_ctx)
        return aellm_error_set(AELLM_EINVAL, "%s: n_ctx %d must be in [4, %d] (the model's)",
                               t->where, n_ctx, lm->n_ctx);
    int32_t *ids = NULL, *window = malloc((size_t)n_ctx * sizeof(int32_t));
    double *lp = malloc((size_t)n_ctx * sizeof(double));
    if (!window || !lp) {
        rc = aellm_error_oom("perplexity window", (unsigned long long)n_ctx * 12);
        goto done;
    }
    if ((rc = task_encode(lm, t->text, 1, &ids, &n))) goto done;
    int64_t n_chunks = n / n_ctx;
    if (t->max_chunks > 0 && n_chunks > t->max_chunks) n_chunks = t->max_chunks;
    if (n_chunks < 1) {
        rc =
            aellm_error_set(AELLM_EINVAL, "%s: the text has %d tokens, fewer than one window of %d",
                            t->where, n, n_ctx);
        goto done;
    }
    /* tokens first+1 .. n_ctx-1 of each window: llama.cpp's count */
    int first = n_ctx / 2, bos = ids[0];
    double sum = 0.0, sum2 = 0.0;
    int64_t count = 0;
    for (int64_t c = 0; c < n_chunks; c++) {
        memcpy(window, ids + c * n_ctx, (size_t)n_ctx * sizeof(int32_t));
        window[0] = bos;
        if ((rc = task_logprobs(lm, window, n_ctx, first + 1, lp))) goto done;
        for (int j = 0; j < n_ctx - first - 1; j++) sum -= lp[j], sum2 += lp[j] * lp[j];
        count += n_ctx - first - 1;
        if (progress) progress(c + 1, n_chunks, user);
    }
    double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
    /* standard error of the mean NLL, through exp() to first order */
    double se = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0.0;
    if ((rc = task_metric_add(out, "ppl", exp(mean), exp(mean) * se))) goto done;
    if ((rc = task_metric_add(out, "nll", mean, se))) goto done;
    out->higher_is_better = 0;
    out->n_items = count;
done:
    free(ids);
    free(window);
    free(lp);
    return rc;
}
