/* Training data (data.h): text cut into windows of T + 1 tokens that overlap
 * by one (the last target is the next window's first input, as llm.c's
 * loader), or instruction examples each padded to one window with the loss
 * on the completion only. The order of an epoch is a seeded permutation. */
#include "techniques/finetune/data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "core/rng.h"

struct train_data {
    int T, instructions;
    uint64_t seed;
    /* text: all tokens, training windows from 0, held-out ones from heldout_at */
    int32_t *ids;
    int64_t n_ids, heldout_at;
    /* instructions: examples of T + 1 tokens and T weights each */
    int32_t *ex_tok;
    float *ex_w;
    int64_t *train_ex, *heldout_ex; /* example indices */
    int64_t n_train, n_heldout;
    /* the order of the current epoch */
    int64_t *order, cursor, epoch;
};

void train_data_free(train_data *d)
{
    if (!d) return;
    free(d->ids);
    free(d->ex_tok);
    free(d->ex_w);
    free(d->train_ex);
    free(d->heldout_ex);
    free(d->order);
    free(d);
}

static int read_file(const char *path, char **out, size_t *len)
{
    return aellm_file_read(out, len, path, 0, "training data");
}

static int encode(const aellm_tokenizer *tok, const char *text, size_t len, int bos, int32_t **ids,
                  size_t *n)
{
    size_t cap = len + 3;
    *ids = malloc(cap * sizeof(int32_t));
    if (!*ids) return aellm_error_oom("tokens", cap * 4);
    int rc = aellm_tokenizer_encode(tok, text, len, bos, *ids, cap, n);
    if (rc) free(*ids), *ids = NULL;
    return rc;
}

/* ---- text ---- */
static int load_text(train_data *d, const char *path, const char *text, size_t len,
                     const aellm_tokenizer *tok, double heldout)
{
    size_t n = 0;
    int rc = encode(tok, text, len, 1, &d->ids, &n);
    if (rc) return rc;
    d->n_ids = (int64_t)n;
    int64_t held = (int64_t)((double)n * heldout);
    d->heldout_at = d->n_ids - held;
    d->n_train = (d->heldout_at - 1) / d->T;
    d->n_heldout = held > 1 ? (held - 1) / d->T : 0;
    if (d->n_train < 1 || (heldout > 0 && d->n_heldout < 1))
        return aellm_error_set(AELLM_EINVAL,
                               "%s: %lld tokens are too few for one training sequence of %d tokens "
                               "%s",
                               path, (long long)n, d->T + 1, heldout > 0 ? "and one held out" : "");
    return 0;
}

/* ---- instructions ---- */

/* The completion's tokens are those of encode(prompt + completion) after its
 * common prefix with encode(prompt), so a merge across the boundary is
 * trained as the model will see it. */
static int example(train_data *d, int64_t e, const char *prompt, const char *completion,
                   const aellm_tokenizer *tok)
{
    size_t lp = strlen(prompt), lc = strlen(completion), np = 0, na = 0;
    char *both = malloc(lp + lc + 1);
    if (!both) return aellm_error_oom("an example", lp + lc);
    memcpy(both, prompt, lp);
    memcpy(both + lp, completion, lc + 1);
    int32_t *p = NULL, *a = NULL;
    int rc = encode(tok, prompt, lp, 1, &p, &np);
    if (!rc) rc = encode(tok, both, lp + lc, 1, &a, &na);
    free(both);
    if (!rc) {
        size_t common = 0;
        while (common < np && common < na && p[common] == a[common]) common++;
        int32_t *t = d->ex_tok + e * (d->T + 1), eos = aellm_tokenizer_eos(tok);
        float *w = d->ex_w + e * d->T;
        for (int i = 0; i <= d->T; i++)
            t[i] = (size_t)i < na ? a[i] : eos; /* EOS, then EOS padding */
        /* target i is token i+1: weighted when it is completion or its EOS */
        for (int i = 0; i < d->T; i++) w[i] = (size_t)(i + 1) >= common && (size_t)(i + 1) <= na;
    }
    free(p);
    free(a);
    return rc;
}

static int load_jsonl(train_data *d, const char *path, char *text, const aellm_tokenizer *tok,
                      double heldout)
{
    int64_t lines = 0, n = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    lines++;
    d->ex_tok = malloc((size_t)lines * (d->T + 1) * sizeof(int32_t));
    d->ex_w = malloc((size_t)lines * d->T * sizeof(float));
    if (!d->ex_tok || !d->ex_w) return aellm_error_oom("examples", (size_t)lines * d->T * 8);
    int line = 0, rc = 0;
    for (char *save = NULL, *s = strtok_r(text, "\n", &save); s && !rc;
         s = strtok_r(NULL, "\n", &save)) {
        line++;
        if (strspn(s, " \t\r") == strlen(s)) continue;
        cJSON *j = cJSON_Parse(s);
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "prompt"),
                    *co = cJSON_GetObjectItemCaseSensitive(j, "completion");
        if (!j)
            rc = aellm_error_set(AELLM_EFORMAT, "%s:%d: not JSON", path, line);
        else if (!cJSON_IsString(pr) || !cJSON_IsString(co))
            rc = aellm_error_set(AELLM_EFORMAT,
                                 "%s:%d: needs string keys \"prompt\" and \"completion\"", path,
                                 line);
        else
            rc = example(d, n++, pr->valuestring, co->valuestring, tok);
        cJSON_Delete(j);
    }
    if (rc) return rc;
    int64_t every = heldout > 0 ? (int64_t)(1.0 / heldout + 0.5) : 0;
    d->train_ex = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    d->heldout_ex = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!d->train_ex || !d->heldout_ex) return aellm_error_oom("examples", (size_t)n * 16);
    for (int64_t e = 0; e < n; e++)
        if (every > 1 && e % every == every - 1)
            d->heldout_ex[d->n_heldout++] = e;
        else
            d->train_ex[d->n_train++] = e;
    if (d->n_train < 1 || (heldout > 0 && d->n_heldout < 1))
        return aellm_error_set(AELLM_EINVAL,
                               "%s: %lld examples are too few to train and hold out %.0f%%", path,
                               (long long)n, 100 * heldout);
    return 0;
}

/* ---- order ---- */
static void shuffle(train_data *d)
{
    aellm_rng rng;
    aellm_rng_seed(&rng, d->seed * 0x9e3779b97f4a7c15ull + (uint64_t)d->epoch + 1);
    for (int64_t i = 0; i < d->n_train; i++) d->order[i] = i;
    for (int64_t i = d->n_train - 1; i > 0; i--) {
        int64_t j = (int64_t)(aellm_rng_u64(&rng) % (uint64_t)(i + 1)), t = d->order[i];
        d->order[i] = d->order[j], d->order[j] = t;
    }
}

int train_data_load(train_data **out, const char *path, const aellm_tokenizer *tok, int T,
                    double heldout, uint64_t seed)
{
    *out = NULL;
    if (T < 2 || !(heldout >= 0 && heldout <= 0.5))
        return aellm_error_set(AELLM_EINVAL,
                               "training data: sequence length %d (>= 2) and "
                               "held-out share %g (0 to 0.5)",
                               T, heldout);
    train_data *d = calloc(1, sizeof(*d));
    if (!d) return aellm_error_oom("training data", sizeof(*d));
    d->T = T, d->seed = seed;
    size_t n = strlen(path), len = 0;
    d->instructions = n > 6 && !strcmp(path + n - 6, ".jsonl");
    char *text = NULL;
    int rc = read_file(path, &text, &len);
    if (!rc)
        rc = d->instructions ? load_jsonl(d, path, text, tok, heldout)
                             : load_text(d, path, text, len, tok, heldout);
    free(text);
    if (!rc && !(d->order = malloc((size_t)d->n_train * sizeof(int64_t))))
        rc = aellm_error_oom("the training order", (size_t)d->n_train * 8);
    if (rc) {
        train_data_free(d);
        return rc;
    }
    shuffle(d);
    *out = d;
    return 0;
}

int64_t train_data_n_train(const train_data *d)
{
    return d->n_train;
}

int64_t train_data_n_heldout(const train_data *d)
{
    return d->n_heldout;
}

int64_t train_data_train_tokens(const train_data *d)
{
    return d->n_train * d->T;
}

int train_data_is_instructions(const train_data *d)
{
    return d->instructions;
}

/* Sequence `seq` of the text from token `base`, or example `seq`. */
static void fill(const train_data *d, int64_t seq, int64_t base, int32_t *in, int32_t *tg, float *w)
{
    if (d->instructions) {
        const int32_t *t = d->ex_tok + seq * (d->T + 1);
        memcpy(in, t, (size_t)d->T * sizeof(int32_t));
        memcpy(tg, t + 1, (size_t)d->T * sizeof(int32_t));
        memcpy(w, d->ex_w + seq * d->T, (size_t)d->T * sizeof(float));
        return;
    }
    const int32_t *t = d->ids + base + seq * d->T;
    memcpy(in, t, (size_t)d->T * sizeof(int32_t));
    memcpy(tg, t + 1, (size_t)d->T * sizeof(int32_t));
    for (int i = 0; i < d->T; i++) w[i] = 1.0f;
}

void train_data_next(train_data *d, int B, int32_t *inputs, int32_t *targets, float *weights,
                     int *epoch)
{
    for (int b = 0; b < B; b++) {
        if (d->cursor == d->n_train) {
            d->epoch++, d->cursor = 0;
            shuffle(d);
        }
        int64_t seq = d->order[d->cursor++];
        if (d->instructions) seq = d->train_ex[seq];
        fill(d, seq, 0, inputs + (size_t)b * d->T, targets + (size_t)b * d->T,
             weights + (size_t)b * d->T);
    }
    if (epoch) *epoch = (int)d->epoch;
}

void train_data_heldout(const train_data *d, int64_t i, int32_t *inputs, int32_t *targets,
                        float *weights)
{
    if (d->instructions)
        fill(d, d->heldout_ex[i], 0, inputs, targets, weights);
    else
        fill(d, i, d->heldout_at, inputs, targets, weights);
}

train_data_pos train_data_position(const train_data *d)
{
    return (train_data_pos){d->cursor, d->epoch};
}

void train_data_seek(train_data *d, train_data_pos pos)
{
    d->epoch = pos.epoch;
    shuffle(d);
    d->cursor = pos.cursor;
}
