/* Token sampling: greedy at temperature 0, else softmax at a temperature with
 * optional nucleus (top-p) truncation, from a seeded generator so a seed
 * reproduces a run. Not a general sampler chain (no penalties, no top-k). */
#include <math.h>
#include <stdlib.h>

#include "aellm/engine.h"
#include "core/error.h"
#include "core/rng.h"

struct aellm_sampler {
    int vocab;
    aellm_sampler_params p;
    aellm_rng rng;
    int *order; /* (vocab) candidate ids for top-p */
};

int aellm_sampler_new(aellm_sampler **out, int vocab_size, const aellm_sampler_params *p)
{
    *out = NULL;
    if (vocab_size <= 0 || p->temperature < 0.0f || !(p->top_p > 0.0f))
        return aellm_error_set(AELLM_EINVAL,
                               "sampler: temperature must be >= 0 and top-p in (0, 1]");
    aellm_sampler *s = calloc(1, sizeof(*s));
    int *order = malloc((size_t)vocab_size * sizeof(int));
    if (!s || !order) {
        free(s), free(order);
        return aellm_error_oom("sampler", (unsigned long long)vocab_size * sizeof(int));
    }
    s->vocab = vocab_size;
    s->p = *p;
    s->order = order;
    aellm_rng_seed(&s->rng, p->seed);
    *out = s;
    return 0;
}

void aellm_sampler_free(aellm_sampler *s)
{
    if (!s) return;
    free(s->order);
    free(s);
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void softmax_t(float *x, int n, float temperature)
{
    float max = x[argmax(x, n)], sum = 0.0f;
    for (int i = 0; i < n; i++) x[i] = expf((x[i] - max) / temperature), sum += x[i];
    for (int i = 0; i < n; i++) x[i] /= sum;
}

static int draw(const float *prob, const int *ids, int n, float total, float coin)
{
    float cdf = 0.0f, target = coin * total;
    for (int i = 0; i < n; i++) {
        cdf += prob[ids ? ids[i] : i];
        if (target < cdf) return ids ? ids[i] : i;
    }
    return ids ? ids[n - 1] : n - 1; /* rounding left the coin past the end */
}

static const float *sort_probs;

static int by_prob_desc(const void *a, const void *b)
{
    float pa = sort_probs[*(const int *)a], pb = sort_probs[*(const int *)b];
    return (pa < pb) - (pa > pb);
}

/* Nucleus: the smallest set of most probable tokens whose mass reaches top_p.
 * Tokens below (1 - top_p) / (n - 1) cannot be in it, which prunes the sort. */
static int top_p_draw(aellm_sampler *s, const float *prob, float coin)
{
    float cutoff = (1.0f - s->p.top_p) / (float)(s->vocab - 1);
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (prob[i] >= cutoff) s->order[n++] = i;
    sort_probs = prob;
    qsort(s->order, (size_t)n, sizeof(int), by_prob_desc);
    float mass = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        mass += prob[s->order[i]];
        if (mass > s->p.top_p) {
            last = i;
            break;
        }
    }
    return draw(prob, s->order, last + 1, mass, coin);
}

int aellm_sampler_sample(aellm_sampler *s, float *logits)
{
    if (s->p.temperature == 0.0f) return argmax(logits, s->vocab);
    softmax_t(logits, s->vocab, s->p.temperature);
    float coin = aellm_rng_f32(&s->rng);
    if (s->p.top_p >= 1.0f) return draw(logits, NULL, s->vocab, 1.0f, coin);
    return top_p_draw(s, logits, coin);
}
