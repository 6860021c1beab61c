/* Tasks scored on generated text: GSM8K's exact match (the number after
 * "####", else the last number generated, against the gold one) and the
 * needle in a haystack (a code hidden at a depth of a filler text, asked
 * for at the end). Greedy decoding only: these measure what a quantized or
 * pruned model still retrieves, not sampling. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "measure/task_internal.h"

int task_parse_number(const char *s, double *out)
{
    char buf[64];
    size_t n = 0;
    while (*s == ' ' || *s == '$' || *s == '\t') s++;
    if (*s == '-') buf[n++] = *s++;
    if (!isdigit((unsigned char)*s)) return -1;
    for (; n < sizeof(buf) - 1 && (isdigit((unsigned char)*s) || *s == ',' || *s == '.'); s++) {
        if (*s == '.' && !isdigit((unsigned char)s[1])) break; /* a full stop */
        if (*s != ',') buf[n++] = *s;
    }
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

static int number_starts(const char *text, const char *p)
{
    if (!isdigit((unsigned char)*p)) return 0;
    if (p == text) return 1;
    if (isdigit((unsigned char)p[-1])) return 0;
    /* "1,234" and "2.5" are one number each */
    return !((p[-1] == ',' || p[-1] == '.') && p - 1 > text && isdigit((unsigned char)p[-2]));
}

/* The answer in a generation: after "####" if there, else the last number. */
static int answer_of(const char *text, double *out)
{
    const char *mark = strstr(text, "####");
    if (mark && task_parse_number(mark + 4, out) == 0) return 0;
    int found = -1;
    for (const char *p = text; *p; p++)
        if (number_starts(text, p))
            found = task_parse_number(p > text && p[-1] == '-' ? p - 1 : p, out);
    return found;
}

/* ---- exact match ---- */
static char *append(char *s, size_t *len, const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *g = realloc(s, *len + na + nb + nc + 1);
    if (!g) {
        free(s);
        return NULL;
    }
    memcpy(g + *len, a, na);
    memcpy(g + *len + na, b, nb);
    memcpy(g + *len + na + nb, c, nc);
    *len += na + nb + nc;
    g[*len] = '\0';
    return g;
}

/* "Question: q\nAnswer: a\n\n" for each example, then the item's question. */
static char *gsm8k_prompt(const aellm_task *t, const int64_t *shots, int64_t item)
{
    size_t len = 0;
    char *s = append(NULL, &len, "", "", "");
    for (int k = 0, used = 0; s && used < t->n_shot; k++) {
        if (shots[k] == item) continue;
        const task_item *ex = &t->items[shots[k]];
        s = append(s, &len, "Question: ", ex->ctx[0], "\nAnswer: ");
        if (s) s = append(s, &len, ex->cont[0], "\n\n", "");
        used++;
    }
    if (s) s = append(s, &len, "Question: ", t->items[item].ctx[0], "\nAnswer:");
    return s;
}

/* Few-shot examples: the seeded shuffle's first n_shot+1 items (one spare,
 * skipped when it is the question itself). */
static int pick_shots(const aellm_task *t, int64_t **out)
{
    int64_t n = t->n_all, *p = malloc((size_t)n * sizeof(int64_t));
    *out = p;
    if (!p) return aellm_error_oom("few-shot order", (unsigned long long)n * 8);
    if (t->n_shot >= n)
        return aellm_error_set(AELLM_EINVAL, "%s: n_shot %d needs more than %lld items", t->where,
                               t->n_shot, (long long)n);
    aellm_rng rng;
    aellm_rng_seed(&rng, (uint64_t)t->seed ^ 0x5f3759dfull);
    for (int64_t i = 0; i < n; i++) p[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(aellm_rng_u64(&rng) % (uint64_t)(i + 1)), x = p[i];
        p[i] = p[j], p[j] = x;
    }
    return 0;
}

static int gsm8k_item(const aellm_task *t, aellm_lm *lm, const int64_t *shots, int64_t i,
                      int *correct)
{
    static const char *const stops[] = {"\n\n", "Question:", NULL};
    char *prompt = gsm8k_prompt(t, shots, i), *text = NULL;
    int32_t *ids = NULL;
    int n = 0, rc;
    if (!prompt) return aellm_error_oom("prompt", 0);
    if ((rc = task_encode(lm, prompt, 1, &ids, &n))) goto done;
    /* leave room to answer: the prompt loses its oldest tokens (BOS kept) */
    int room = t->max_new < lm->n_ctx / 4 ? t->max_new : lm->n_ctx / 4, cut = 0;
    if (n > lm->n_ctx - room) {
        cut = n - (lm->n_ctx - room);
        ids[cut] = ids[0];
    }
    int max_new = lm->n_ctx - (n - cut) < t->max_new ? lm->n_ctx - (n - cut) : t->max_new;
    if ((rc = task_generate(lm, ids + cut, n - cut, max_new, stops, &text))) goto done;
    double got;
    *correct = answer_of(text, &got) == 0 &&
               fabs(got - t->items[i].answer) <= 1e-6 * fmax(1.0, fabs(t->items[i].answer));
done:
    free(prompt);
    free(ids);
    free(text);
    return rc;
}

int task_run_exact_match(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                         void *user, aellm_task_result *out)
{
    int64_t *idx = NULL, *shots = NULL, n = 0, k = 0;
    int rc = task_select(t, lm, NULL, &idx, &n);
    if (!rc && t->n_shot) rc = pick_shots(t, &shots);
    for (int64_t i = 0; i < n && !rc; i++) {
        int ok = 0;
        if ((rc = gsm8k_item(t, lm, shots, idx[i], &ok))) break;
        k += ok;
        if (progress) progress(i + 1, n, user);
    }
    free(idx);
    free(shots);
    if (!rc) rc = task_metric_acc(out, "exact_match", k, n);
    out->higher_is_better = 1;
    out->n_items = n;
    return rc;
}

/* ---- needle in a haystack ---- */
static const char *const builtin_filler[] = {
    "The grass is green.",
    "The sky is blue.",
    "The sun is warm.",
    "Birds sing in the trees.",
    "The river flows to the sea.",
    "A cat sleeps on the mat.",
    "The children play in the park.",
    "The wind moves the leaves.",
    "A dog runs after the ball.",
    "The baker makes fresh bread.",
    "Rain falls on the roof.",
    "The moon shines at night.",
    "A boat sails on the lake.",
    "Flowers grow in the garden.",
    "The old man reads a book.",
    "The train leaves at noon.",
};

#define NEEDLE_QUESTION " What is the secret code? The secret code is"
#define NEEDLE_NEW      8 /* tokens generated for the answer */

typedef struct {
    const aellm_task *t;
    aellm_lm *lm;
    const char *const *sent; /* (n_sent) */
    int n_sent;
    int *n_tok; /* tokens of each sentence, -1 until counted */
} haystack;

static int sentence_tokens(haystack *h, int s, int *out)
{
    if (h->n_tok[s] < 0) {
        int32_t *ids;
        int n, rc = task_encode(h->lm, h->sent[s], 0, &ids, &n);
        if (rc) return rc;
        free(ids);
        h->n_tok[s] = n;
    }
    *out = h->n_tok[s];
    return 0;
}

/* The prompt of one trial: filler sentences of about `len` tokens with the
 * needle after the sentence nearest to depth * len, then the question. */
static char *needle_prompt(const int *pick, int n_pick, int at, const char *needle,
                           const char *const *sent)
{
    size_t len = 0;
    char *s = append(NULL, &len, "", "", "");
    for (int i = 0; s && i <= n_pick; i++) {
        if (i == at) s = append(s, &len, len ? " " : "", needle, "");
        if (s && i < n_pick) s = append(s, &len, len ? " " : "", sent[pick[i]], "");
    }
    return s ? append(s, &len, NEEDLE_QUESTION, "", "") : NULL;
}

/* One trial: 1 in *correct when the digits generated are the code. */
static int needle_trial(haystack *h, int len, double depth, aellm_rng *rng, int *correct)
{
    char needle[64], want[16], *prompt = NULL, *text = NULL;
    int code = 1000 + (int)(aellm_rng_u64(rng) % 9000), n_pick = 0, total = 0, rc = 0, n = 0;
    int32_t *ids = NULL;
    int *pick = malloc((size_t)(len + 1) * sizeof(int));
    if (!pick) return aellm_error_oom("needle", (unsigned long long)len * 4);
    snprintf(needle, sizeof(needle), "The secret code is %d.", code);
    snprintf(want, sizeof(want), "%d", code);
    for (int c; total < len && n_pick <= len; total += c) {
        pick[n_pick] = (int)(aellm_rng_u64(rng) % (uint64_t)h->n_sent);
        if ((rc = sentence_tokens(h, pick[n_pick++], &c))) goto done;
    }
    for (;;) { /* drop filler from the end until the prompt and answer fit */
        int at = 0;
        for (int cum = 0, c; at < n_pick && cum + h->n_tok[pick[at]] / 2 < depth * total; at++)
            c = h->n_tok[pick[at]], cum += c;
        free(prompt);
        free(ids);
        ids = NULL;
        if (!(prompt = needle_prompt(pick, n_pick, at, needle, h->sent))) {
            rc = aellm_error_oom("needle prompt", 0);
            goto done;
        }
        if ((rc = task_encode(h->lm, prompt, 1, &ids, &n))) goto done;
        if (n + NEEDLE_NEW <= h->lm->n_ctx || n_pick == 0) break;
        total -= h->n_tok[pick[--n_pick]];
    }
    if (n + NEEDLE_NEW > h->lm->n_ctx) {
        rc = aellm_error_set(AELLM_EINVAL, "needle: the question does not fit %d tokens",
                             h->lm->n_ctx);
        goto done;
    }
    if ((rc = task_generate(h->lm, ids, n, NEEDLE_NEW, NULL, &text))) goto done;
    const char *d = text;
    while (*d && !isdigit((unsigned char)*d)) d++;
    *correct = !strncmp(d, want, strlen(want)) && !isdigit((unsigned char)d[strlen(want)]);
done:
    free(pick);
    free(prompt);
    free(ids);
    free(text);
    return rc;
}

/* Haystack lengths clipped to what the context holds beside the question
 * and the answer; a length clipped onto an earlier one is dropped (0). */
static int clip_lengths(const aellm_task *t, aellm_lm *lm, int *len)
{
    int32_t *ids;
    int nq, nn, rc = task_encode(lm, NEEDLE_QUESTION, 0, &ids, &nq);
    if (rc) return rc;
    free(ids);
    if ((rc = task_encode(lm, "The secret code is 1234.", 0, &ids, &nn))) return rc;
    free(ids);
    int room = lm->n_ctx - 1 - nq - nn - NEEDLE_NEW;
    if (room < 16)
        return aellm_error_set(AELLM_EINVAL, "%s: a context of %d tokens is too small", t->where,
                               lm->n_ctx);
    for (int i = 0; i < t->n_lengths; i++) {
        len[i] = t->lengths[i] < room ? t->lengths[i] : room;
        for (int j = 0; j < i; j++)
            if (len[j] == len[i]) len[i] = 0;
    }
    return 0;
}

static int needle_cells(const aellm_task *t, haystack *h, const int *len, int64_t *hits,
                        aellm_task_progress_fn progress, void *user)
{
    int64_t done = 0, total = (int64_t)t->n_lengths * t->n_depths * t->trials;
    for (int l = 0; l < t->n_lengths; l++)
        for (int d = 0; d < t->n_depths; d++)
            for (int k = 0; k < t->trials; k++, done++) {
                if (!len[l]) continue;
                /* each trial its own stream: clipping one cell moves no other */
                aellm_rng rng;
                uint64_t cell = ((uint64_t)l * 64 + (uint64_t)d) * 100003u + (uint64_t)k;
                aellm_rng_seed(&rng, (uint64_t)t->seed * 0x9e3779b97f4a7c15ull + cell + 1);
                int ok = 0, rc = needle_trial(h, len[l], t->depths[d], &rng, &ok);
                if (rc) return rc;
                hits[l * t->n_depths + d] += ok;
                if (progress) progress(done + 1, total, user);
            }
    return 0;
}

int task_run_needle(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress, void *user,
                    aellm_task_result *out)
{
    int n_sent =
        t->n_sentences ? t->n_sentences : (int)(sizeof(builtin_filler) / sizeof(builtin_filler[0]));
    haystack h = {t, lm, t->n_sentences ? (const char *const *)t->sentences : builtin_filler,
                  n_sent, malloc((size_t)n_sent * sizeof(int))};
    int *len = malloc((size_t)t->n_lengths * sizeof(int)), rc = 0;
    int64_t *hits = calloc((size_t)t->n_lengths * t->n_depths, sizeof(int64_t)), k = 0, n = 0;
    if (!h.n_tok || !len || !hits) rc = aellm_error_oom("needle", 0);
    for (int i = 0; !rc && i < n_sent; i++) h.n_tok[i] = -1;
    if (!rc) rc = clip_lengths(t, lm, len);
    if (!rc) rc = needle_cells(t, &h, len, hits, progress, user);
    for (int i = 0; !rc && i < t->n_lengths * t->n_depths; i++)
        if (len[i / t->n_depths]) k += hits[i], n += t->trials;
    if (!rc) rc = task_metric_acc(out, "acc", k, n);
    for (int i = 0; !rc && i < t->n_lengths * t->n_depths; i++) {
        char name[48];
        if (!len[i / t->n_depths]) continue;
        snprintf(name, sizeof(name), "acc@len=%d,depth=%.2f", len[i / t->n_depths],
                 t->depths[i % t->n_depths]);
        rc = task_metric_acc(out, name, hits[i], t->trials);
    }
    out->higher_is_better = 1;
    out->n_items = n;
    free(h.n_tok);
    free(len);
    free(hits);
    return rc;
}
