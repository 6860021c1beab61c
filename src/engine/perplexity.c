/* Perplexity by llama.cpp's method, so numbers compare across the two tools:
 * non-overlapping windows of n_ctx tokens, BOS in the first slot of each, and
 * only the second half of every window scored (each scored token then has at
 * least n_ctx/2 tokens of context). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/timer.h"
#include "engine/engine_internal.h"

/* -log p(target) from one row of logits, in double for the sum. */
static double nll_of(const float *logits, int vocab, int target)
{
    float max = logits[0];
    for (int i = 1; i < vocab; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(logits[i] - max));
    return log(sum) - (double)(logits[target] - max);
}

int aellm_perplexity(aellm_engine *e, const int32_t *tokens, int64_t n_tokens, int n_ctx,
                     int max_chunks, aellm_ppl_progress_fn progress, void *user,
                     aellm_ppl_result *out)
{
    int vocab = e->m->cfg.vocab_size, rc = 0;
    memset(out, 0, sizeof(*out));
    if (n_ctx <= 0) n_ctx = e->n_ctx;
    if (n_ctx > e->n_ctx || n_ctx < 4)
        return aellm_error_set(AELLM_EINVAL, "perplexity context %d must be in [4, %d]", n_ctx,
                               e->n_ctx);
    int64_t n_chunks = n_tokens / n_ctx;
    if (max_chunks > 0 && n_chunks > max_chunks) n_chunks = max_chunks;
    if (n_chunks < 1)
        return aellm_error_set(AELLM_EINVAL, "text has %lld tokens, fewer than one window of %d",
                               (long long)n_tokens, n_ctx);
    int32_t *window = malloc((size_t)n_ctx * sizeof(int32_t));
    float *logits = malloc((size_t)n_ctx * vocab * sizeof(float));
    if (!window || !logits) {
        rc = aellm_error_oom("perplexity logits", (unsigned long long)n_ctx * vocab * 4);
        goto done;
    }
    int bos = e->m->tokenizer ? aellm_tokenizer_bos(e->m->tokenizer) : 1;
    int first = n_ctx / 2;
    double sum = 0.0, sum2 = 0.0, t0 = aellm_time_s();
    int64_t count = 0;
    for (int64_t c = 0; c < n_chunks; c++) {
        const int32_t *src = tokens + c * n_ctx;
        memcpy(window, src, (size_t)n_ctx * sizeof(int32_t));
        window[0] = bos;
        if ((rc = aellm_engine_eval(e, window, n_ctx, 0, logits, 1))) goto done;
        for (int j = first; j < n_ctx - 1; j++) {
            double nll = nll_of(logits + (size_t)j * vocab, vocab, src[j + 1]);
            sum += nll, sum2 += nll * nll, count++;
        }
        if (progress) progress((int)c + 1, (int)n_chunks, exp(sum / count), user);
    }
    double mean = sum / count, var = sum2 / count - mean * mean;
    out->nll = mean;
    out->ppl = exp(mean);
    /* standard error of the mean NLL, carried through exp() to first order */
    out->ppl_stderr = var > 0 && count > 1 ? out->ppl * sqrt(var / (count - 1)) : 0.0;
    out->n_scored = count;
    out->n_chunks = (int)n_chunks;
    out->n_ctx = n_ctx;
    out->seconds = aellm_time_s() - t0;
done:
    free(window);
    free(logits);
    return rc;
}
