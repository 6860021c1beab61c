/* Tasks scored by log-likelihood: multiple choice (the choice the model
 * finds most likely, raw and per byte as lm-eval-harness's acc and
 * acc_norm) and continuation (LAMBADA: greedy decoding reproduces the gold
 * continuation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "measure/task_internal.h"

static int score_choices(const task_item *it, aellm_lm *lm, int *best, int *best_norm)
{
    double top = -INFINITY, top_norm = -INFINITY;
    *best = *best_norm = 0;
    for (int c = 0; c < it->n_choices; c++) {
        task_loglik ll;
        int rc = task_score(lm, it->ctx[c], it->cont[c], &ll);
        if (rc) return rc;
        double norm = ll.logprob / (double)strlen(it->cont[c]);
        if (ll.logprob > top) top = ll.logprob, *best = c;
        if (norm > top_norm) top_norm = norm, *best_norm = c;
    }
    return 0;
}

int task_run_choice(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress, void *user,
                    aellm_task_result *out)
{
    int64_t *idx, n, k = 0, k_norm = 0;
    int rc = task_select(t, lm, NULL, &idx, &n);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++) {
        const task_item *it = &t->items[idx[i]];
        int best, best_norm;
        if ((rc = score_choices(it, lm, &best, &best_norm))) break;
        k += best == it->gold;
        k_norm += best_norm == it->gold;
        if (progress) progress(i + 1, n, user);
    }
    free(idx);
    if (rc) return rc;
    if (t->main_norm) {
        if (!(rc = task_metric_acc(out, "acc_norm", k_norm, n)))
            rc = task_metric_acc(out, "acc", k, n);
    } else {
        if (!(rc = task_metric_acc(out, "acc", k, n)))
            rc = task_metric_acc(out, "acc_norm", k_norm, n);
    }
    out->higher_is_better = 1;
    out->n_items = n;
    return rc;
}

/* Last-word items must fit the context whole: cutting the story would
 * change the question. */
static int fits_context(const aellm_task *t, aellm_lm *lm, int64_t i, int *ok)
{
    const task_item *it = &t->items[i];
    size_t nc = strlen(it->ctx[0]), nk = strlen(it->cont[0]);
    char *full = malloc(nc + nk + 1);
    if (!full) return aellm_error_oom("task text", nc + nk + 1);
    memcpy(full, it->ctx[0], nc);
    memcpy(full + nc, it->cont[0], nk + 1);
    int32_t *ids;
    int n, rc = task_encode(lm, full, 1, &ids, &n);
    free(full);
    if (rc) return rc;
    free(ids);
    *ok = n <= lm->n_ctx;
    return 0;
}

int task_run_continuation(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                          void *user, aellm_task_result *out)
{
    int64_t *idx, n, k = 0, n_tokens = 0;
    double logprob = 0.0;
    int rc = task_select(t, lm, t->format == TASK_FMT_LAST_WORD ? fits_context : NULL, &idx, &n);
    if (rc) return rc;
    if (n == 0)
        rc = aellm_error_set(AELLM_EINVAL, "%s: no item fits the context of %d", t->where,
                             lm->n_ctx);
    for (int64_t i = 0; i < n && !rc; i++) {
        const task_item *it = &t->items[idx[i]];
        task_loglik ll;
        if ((rc = task_score(lm, it->ctx[0], it->cont[0], &ll))) break;
        k += ll.greedy;
        logprob += ll.logprob;
        n_tokens += ll.n_tokens;
        if (progress) progress(i + 1, n, user);
    }
    free(idx);
    if (!rc) rc = task_metric_acc(out, "acc", k, n);
    if (!rc) rc = task_metric_add(out, "ppl_cont", exp(-logprob / (double)n_tokens), 0.0);
    out->higher_is_better = 1;
    out->n_items = n;
    return rc;
}
