/* `aellm generate`: sample text from a prompt, streaming it to stdout. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aellm/engine.h"
#include "cli/cli.h"

typedef struct {
    int json;
    char *text;
    size_t len, cap;
} sink;

static int on_piece(const char *piece, int len, void *user)
{
    sink *s = user;
    if (!s->json) {
        fwrite(piece, 1, (size_t)len, stdout);
        fflush(stdout);
        return 0;
    }
    if (s->len + (size_t)len + 1 > s->cap) {
        size_t cap = (s->cap + (size_t)len + 1) * 2;
        char *t = realloc(s->text, cap);
        if (!t) return 1;
        s->text = t, s->cap = cap;
    }
    memcpy(s->text + s->len, piece, (size_t)len);
    s->len += (size_t)len;
    s->text[s->len] = '\0';
    return 0;
}

static cJSON *stats_json(const aellm_generate_stats *st, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", text ? text : "");
    cJSON_AddNumberToObject(o, "prompt_tokens", st->n_prompt);
    cJSON_AddNumberToObject(o, "generated_tokens", st->n_generated);
    cJSON_AddNumberToObject(o, "prefill_s", st->prefill_s);
    cJSON_AddNumberToObject(o, "decode_s", st->decode_s);
    cJSON_AddNumberToObject(o, "decode_tokens_per_s",
                            st->decode_s > 0 ? (st->n_generated - 1) / st->decode_s : 0);
    return o;
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *prompt = "", *kv_type = NULL;
    int n = 256, threads = 0, ctx = 0, json = 0, quiet = 0, kv_heads = 0;
    aellm_sampler_params sp = {.temperature = 0.8f, .top_p = 0.9f, .seed = 0};
    const char *lora = NULL;
    float lora_scale = 1.0f;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model,
         "model file: GGUF or llama2.c checkpoint (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"prompt", 'p', OPT_STR, &prompt, "prompt text (default: empty)"},
        {"n-predict", 'n', OPT_INT, &n, "tokens to generate (default 256)"},
        {"temp", 0, OPT_FLOAT, &sp.temperature, "temperature; 0 = greedy (default 0.8)"},
        {"top-p", 0, OPT_FLOAT, &sp.top_p, "nucleus sampling mass, 1 = off (default 0.9)"},
        {"seed", 's', OPT_U64, &sp.seed, "random seed (default: from the clock)"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        {"ctx-size", 'c', OPT_INT, &ctx, "context length (default: the model's)"},
        CLI_KV_OPTS(&kv_type, &kv_heads),
        {"quiet", 'q', OPT_FLAG, &quiet, "no statistics on stderr"},
        CLI_LORA_OPTS(&lora, &lora_scale),
        {"json", 0, OPT_FLAG, &json, "print text and statistics as JSON"},
        {0}};
    cli_command cmd = {"generate", "Generates text from a prompt (BOS first), stopping at BOS/EOS.",
                       "[-m MODEL] [-p PROMPT] [-n N] [options]", NULL, opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (n < 0 || sp.temperature < 0 || !(sp.top_p > 0 && sp.top_p <= 1))
        return cli_fail("generate", "need -n >= 0, --temp >= 0 and --top-p in (0, 1]");
    if (sp.seed == 0) sp.seed = (uint64_t)time(NULL);

    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_generate_stats st;
    sink s = {json, NULL, 0, 0};
    int status = 1;
    if (cli_open_model("generate", &m, model, tok)) goto done;
    if (cli_lora_apply("generate", m, lora, lora_scale)) goto done;
    aellm_engine_params_default(&ep);
    ep.n_ctx = ctx, ep.n_threads = threads;
    if (cli_kv_apply("generate", m, kv_type, kv_heads, &ep)) goto done;
    if (cli_repack("generate", m, NULL)) goto done;
    if (aellm_engine_new(&e, m, &ep) || aellm_generate(e, prompt, n, &sp, on_piece, &s, &st)) {
        cli_fail_last("generate");
        goto done;
    }
    if (json) {
        cJSON *o = stats_json(&st, s.text);
        cli_kv_json(o, e, m);
        cli_print_json(o);
    } else {
        printf("\n");
        if (!quiet)
            fprintf(stderr, "prompt %d tokens in %.3f s; generated %d tokens, %.2f tokens/s\n",
                    st.n_prompt, st.prefill_s, st.n_generated,
                    st.decode_s > 0 ? (st.n_generated - 1) / st.decode_s : 0.0);
    }
    status = 0;
done:
    free(s.text);
    aellm_engine_free(e);
    aellm_model_free(m);
    return status;
}
