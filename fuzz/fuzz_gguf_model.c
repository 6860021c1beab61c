/* Fuzzes the model loader on GGUF (aellm_model_load: the configuration from
 * llama.* metadata, every tensor bound by name and shape, norms converted to
 * f32, the vocabulary, aellm.* provenance), then reads the model's sizes and,
 * when it is tiny, runs two tokens through the engine on one thread so that
 * shapes the loader accepted are shapes the forward pass can run. Larger
 * models are only loaded: a forward pass over them is not a parser's cost. */
#include "aellm/aellm.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static void exercise_sizes(const aellm_model *m)
{
    const aellm_model_config *c = aellm_model_config_get(m);
    FZ_CHECK(c->dim > 0 && c->n_layers > 0 && c->vocab_size > 0);
    aellm_model_weight_type(m);
    aellm_model_quantize_info(m);
    aellm_model_config_json(m);
    aellm_model_figures_json(m);
    aellm_model_weight_bytes(m);
    aellm_model_n_params(m);
    aellm_model_active_params(m);
    aellm_model_active_bytes(m);
    size_t per_token, all;
    aellm_model_ffn_bytes(m, &per_token, &all);
}

/* Two tokens, one by one, on a context of 4: what every evaluation does first. */
static void run_two_tokens(const aellm_model *m)
{
    const aellm_model_config *c = aellm_model_config_get(m);
    if (aellm_model_weight_bytes(m) > (1u << 20) || c->seq_len < 2 || c->dim > 512) return;
    aellm_engine_params p;
    aellm_engine_params_default(&p);
    p.n_ctx = c->seq_len < 4 ? c->seq_len : 4;
    p.n_threads = 1;
    aellm_engine *e = NULL;
    if (aellm_engine_new(&e, m, &p)) return;
    float *logits = malloc((size_t)c->vocab_size * sizeof(float));
    FZ_CHECK(logits);
    int32_t tok[2] = {1 % c->vocab_size, (c->vocab_size - 1)};
    if (aellm_engine_eval(e, tok, 1, 0, logits, 0) == 0)
        aellm_engine_eval(e, tok + 1, 1, 1, logits, 0);
    free(logits);
    aellm_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || memcmp(data, "GGUF", 4)) return 0; /* the llama2.c path has its own harness */
    aellm_model *m = NULL;
    if (aellm_model_load(&m, fz_write("model.gguf", data, size), NULL)) return 0;
    exercise_sizes(m);
    const aellm_tokenizer *tok = aellm_model_tokenizer(m);
    if (tok) {
        FZ_CHECK(aellm_tokenizer_vocab_size(tok) <= aellm_model_config_get(m)->vocab_size);
        fz_round_trip(tok, "Once upon a time", 16);
    }
    run_two_tokens(m);
    aellm_model_free(m);
    return 0;
}
