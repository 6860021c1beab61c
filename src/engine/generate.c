/* Text generation: encode the prompt, prefill it, then sample one token at a
 * time until a stop. Mirrors llama2.c's loop (stop on BOS, print pieces with
 * its decoding rules) so its reference outputs can be reproduced exactly. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/timer.h"
#include "engine/engine_internal.h"

static int encode_prompt(const aellm_tokenizer *tok, const char *prompt, int32_t **out, int *n)
{
    size_t len = strlen(prompt), cap = len + 3, got = 0;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    if (!ids) return aellm_error_oom("prompt tokens", cap * sizeof(int32_t));
    int rc = aellm_tokenizer_encode(tok, prompt, len, 1, ids, cap, &got);
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n = (int)got;
    return 0;
}

int aellm_generate(aellm_engine *e, const char *prompt, int n_tokens,
                   const aellm_sampler_params *sp, aellm_piece_fn on_piece, void *user,
                   aellm_generate_stats *stats)
{
    const aellm_tokenizer *tok = e->m->tokenizer;
    int32_t *ids = NULL;
    aellm_sampler *s = NULL;
    int n_prompt = 0, rc;
    memset(stats, 0, sizeof(*stats));
    if (!tok) return aellm_error_set(AELLM_EINVAL, "model has no tokenizer: cannot generate text");
    if ((rc = encode_prompt(tok, prompt ? prompt : "", &ids, &n_prompt))) goto done;
    if (n_prompt > e->n_ctx) {
        rc = aellm_error_set(AELLM_EINVAL, "prompt of %d tokens exceeds the context of %d",
                             n_prompt, e->n_ctx);
        goto done;
    }
    if ((rc = aellm_sampler_new(&s, e->m->cfg.vocab_size, sp))) goto done;
    double t0 = aellm_time_s();
    if ((rc = aellm_engine_eval(e, ids, n_prompt, 0, e->logits, 0))) goto done;
    double t1 = aellm_time_s();
    int prev = ids[n_prompt - 1], pos = n_prompt;
    int bos = aellm_tokenizer_bos(tok), eos = aellm_tokenizer_eos(tok);
    char piece[64];
    for (int i = 0; i < n_tokens; i++) {
        int next = aellm_sampler_sample(s, e->logits);
        stats->n_generated++;
        if (next == bos || next == eos) break;
        int len = aellm_tokenizer_decode(tok, prev, next, piece, sizeof(piece));
        if (on_piece && len > 0 && on_piece(piece, len, user)) break;
        prev = next;
        if (i + 1 == n_tokens || pos >= e->n_ctx) break;
        if ((rc = aellm_engine_eval(e, &prev, 1, pos++, e->logits, 0))) goto done;
    }
    stats->n_prompt = n_prompt;
    stats->prefill_s = t1 - t0;
    stats->decode_s = aellm_time_s() - t1;
done:
    aellm_sampler_free(s);
    free(ids);
    return rc;
}
