/* The language model of the tasks over the engine: it remembers which tokens
 * the KV cache holds and evaluates only from the first position that differs,
 * so the choices of one question share the question's prefill and chunked
 * generation continues where it stopped. Not thread-safe (one engine = one
 * sequence). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/task.h"
#include "core/error.h"

/* Rows of logits evaluated at once: bounded so a 128k vocabulary does not
 * need n_ctx rows of logits (64 MiB of floats at most). */
#define LM_LOGITS_BYTES (64u << 20)

typedef struct {
    aellm_lm lm;
    aellm_engine *e;
    const aellm_tokenizer *tok;
    int32_t *cached; /* (n_ctx) tokens whose keys and values the cache holds */
    int n_cached;
    float *logits; /* (rows, vocab) */
    int rows, vocab;
} lm_engine;

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* log p(target) of one row, in double (log-softmax with the max taken out),
 * and whether the target is the argmax. */
static double row_logprob(const float *z, int vocab, int target, int *is_max)
{
    float max = z[0];
    for (int i = 1; i < vocab; i++) max = z[i] > max ? z[i] : max;
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(z[i] - max));
    *is_max = z[target] >= max;
    return (double)(z[target] - max) - log(sum);
}

/* log-softmax of one row of logits, in double, stored as float. */
static void row_log_softmax(const float *z, int vocab, float *out)
{
    float max = z[0];
    for (int i = 1; i < vocab; i++) max = z[i] > max ? z[i] : max;
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) sum += exp((double)(z[i] - max));
    double lse = log(sum);
    for (int i = 0; i < vocab; i++) out[i] = (float)((double)(z[i] - max) - lse);
}

static int argmax(const float *z, int vocab)
{
    int best = 0;
    for (int i = 1; i < vocab; i++) best = z[i] > z[best] ? i : best;
    return best;
}

/* Evaluates tokens[from..n) (from >= 1 or 0) after the cached prefix. With
 * `lp` set, the log-probability of every token i in [n_cond, n) goes to
 * lp[i - n_cond] and *greedy collects whether each was the argmax; with `dist`
 * set, the whole distribution before token i goes to row i - n_cond of it. */
static int eval_range(lm_engine *s, const int32_t *tokens, int n, int from, int n_cond, double *lp,
                      int *greedy, float *dist)
{
    s->n_cached = from; /* what follows is overwritten */
    for (int pos = from; pos < n;) {
        int rows = n - pos < s->rows ? n - pos : s->rows;
        int rc = aellm_engine_eval(s->e, tokens + pos, rows, pos, s->logits, 1);
        if (rc) return rc;
        memcpy(s->cached + pos, tokens + pos, (size_t)rows * sizeof(int32_t));
        s->n_cached = pos + rows;
        for (int r = 0; (lp || dist) && r < rows; r++) {
            int i = pos + r + 1; /* the token this row predicts */
            if (i < n_cond || i >= n) continue;
            const float *z = s->logits + (size_t)r * s->vocab;
            if (dist) row_log_softmax(z, s->vocab, dist + (size_t)(i - n_cond) * s->vocab);
            if (!lp) continue;
            int top;
            lp[i - n_cond] = row_logprob(z, s->vocab, tokens[i], &top);
            if (greedy) *greedy &= top;
        }
        pos += rows;
    }
    return 0;
}

static int check_span(const lm_engine *s, int n, int n_cond)
{
    if (n_cond < 1 || n_cond >= n || n > s->lm.n_ctx)
        return aellm_error_set(AELLM_EINVAL, "lm: scoring tokens [%d, %d) needs 1 <= %d < %d <= %d",
                               n_cond, n, n_cond, n, s->lm.n_ctx);
    return 0;
}

static int lm_logprobs(void *user, const int32_t *tokens, int n, int n_cond, double *out)
{
    lm_engine *s = user;
    int rc = check_span(s, n, n_cond);
    if (rc) return rc;
    /* the logits of position n_cond-1 are needed, so it is evaluated even
     * when the cache already holds it */
    int from = common_prefix(s->cached, s->n_cached, tokens, n);
    if (from > n_cond - 1) from = n_cond - 1;
    return eval_range(s, tokens, n, from, n_cond, out, NULL, NULL);
}

static int lm_distributions(void *user, const int32_t *tokens, int n, int n_cond, float *rows)
{
    lm_engine *s = user;
    int rc = check_span(s, n, n_cond);
    if (rc) return rc;
    int from = common_prefix(s->cached, s->n_cached, tokens, n);
    if (from > n_cond - 1) from = n_cond - 1;
    return eval_range(s, tokens, n, from, n_cond, NULL, NULL, rows);
}

static int lm_score(void *user, const int32_t *tokens, int n, int n_cond, double *logprob,
                    int *greedy)
{
    lm_engine *s = user;
    int rc = check_span(s, n, n_cond), all = 1;
    if (rc) return rc;
    double *lp = malloc((size_t)(n - n_cond) * sizeof(double));
    if (!lp) return aellm_error_oom("lm scores", (unsigned long long)(n - n_cond) * 8);
    int from = common_prefix(s->cached, s->n_cached, tokens, n);
    if (from > n_cond - 1) from = n_cond - 1;
    if (!(rc = eval_range(s, tokens, n, from, n_cond, lp, &all, NULL))) {
        double sum = 0.0;
        for (int i = 0; i < n - n_cond; i++) sum += lp[i];
        *logprob = sum;
        if (greedy) *greedy = all;
    }
    free(lp);
    return rc;
}

static int lm_generate(void *user, const int32_t *prompt, int n, int max_new, int32_t *out,
                       int *n_out)
{
    lm_engine *s = user;
    *n_out = 0;
    if (n < 1 || n > s->lm.n_ctx)
        return aellm_error_set(AELLM_EINVAL, "lm: a prompt of %d tokens does not fit [1, %d]", n,
                               s->lm.n_ctx);
    int from = common_prefix(s->cached, s->n_cached, prompt, n);
    if (from > n - 1) from = n - 1; /* the last prompt token's logits start it */
    s->n_cached = from;
    int rc = aellm_engine_eval(s->e, prompt + from, n - from, from, s->logits, 0);
    if (rc) return rc;
    memcpy(s->cached + from, prompt + from, (size_t)(n - from) * sizeof(int32_t));
    s->n_cached = n;
    int eos = aellm_tokenizer_eos(s->tok), bos = aellm_tokenizer_bos(s->tok);
    for (int k = 0; k < max_new; k++) {
        int next = argmax(s->logits, s->vocab);
        if (next == eos || next == bos) break; /* as aellm_generate stops */
        out[(*n_out)++] = next;
        int pos = n + k;
        if (k + 1 == max_new || pos >= s->lm.n_ctx) break;
        if ((rc = aellm_engine_eval(s->e, &out[k], 1, pos, s->logits, 0))) return rc;
        s->cached[pos] = out[k];
        s->n_cached = pos + 1;
    }
    return 0;
}

static int lm_encode(void *user, const char *text, size_t len, int bos, int32_t **ids, size_t *n)
{
    lm_engine *s = user;
    size_t cap = len + 3, got = 0;
    *ids = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *buf = malloc(cap * sizeof(int32_t));
        if (!buf) return aellm_error_oom("token ids", (unsigned long long)cap * 4);
        int rc = aellm_tokenizer_encode(s->tok, text, len, bos, buf, cap, &got);
        if (rc == 0) {
            *ids = buf, *n = got;
            return 0;
        }
        free(buf);
        if (got <= cap) return rc;
        cap = got; /* too small a guess: once more with the exact count */
    }
    return aellm_error_set(AELLM_ERROR, "lm: tokenizer count changed between calls");
}

static int lm_decode(void *user, const int32_t *ids, size_t n, char **text)
{
    lm_engine *s = user;
    size_t cap = 64 + n * 8, len = 0;
    char *out = malloc(cap), piece[512];
    if (!out) return aellm_error_oom("decoded text", cap);
    for (size_t i = 0; i < n; i++) {
        int k = aellm_tokenizer_decode(s->tok, i ? ids[i - 1] : -1, ids[i], piece, sizeof(piece));
        if (k < 0) {
            free(out);
            return k;
        }
        if (len + (size_t)k + 1 > cap) {
            char *grown = realloc(out, cap = 2 * (len + (size_t)k + 1));
            if (!grown) {
                free(out);
                return aellm_error_oom("decoded text", cap);
            }
            out = grown;
        }
        memcpy(out + len, piece, (size_t)k);
        len += (size_t)k;
    }
    out[len] = '\0';
    *text = out;
    return 0;
}

int aellm_lm_engine_new(aellm_lm **out, aellm_engine *e, const aellm_tokenizer *tok)
{
    *out = NULL;
    if (!e || !tok)
        return aellm_error_set(AELLM_EINVAL, "lm: an engine and a tokenizer are needed");
    lm_engine *s = calloc(1, sizeof(*s));
    if (!s) return aellm_error_oom("lm", sizeof(*s));
    int n_ctx = aellm_engine_n_ctx(e);
    s->e = e, s->tok = tok;
    s->vocab = aellm_engine_vocab_size(e);
    s->rows = (int)(LM_LOGITS_BYTES / ((size_t)s->vocab * sizeof(float)));
    s->rows = s->rows < 1 ? 1 : s->rows > n_ctx ? n_ctx : s->rows;
    s->cached = malloc((size_t)n_ctx * sizeof(int32_t));
    s->logits = malloc((size_t)s->rows * s->vocab * sizeof(float));
    if (!s->cached || !s->logits) {
        aellm_lm_engine_free(&s->lm);
        return aellm_error_oom("lm logits", (unsigned long long)s->rows * s->vocab * 4);
    }
    s->lm = (aellm_lm){.user = s,
                       .n_ctx = n_ctx,
                       .encode = lm_encode,
                       .decode = lm_decode,
                       .score = lm_score,
                       .generate = lm_generate,
                       .logprobs = lm_logprobs,
                       .distributions = lm_distributions,
                       .n_vocab = s->vocab};
    *out = &s->lm;
    return 0;
}

void aellm_lm_engine_free(aellm_lm *lm)
{
    if (!lm) return;
    lm_engine *s = (lm_engine *)lm; /* lm is the first member */
    free(s->cached);
    free(s->logits);
    free(s);
}
