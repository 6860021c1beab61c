/* `aellm perplexity`: perplexity of a text file, llama.cpp's method. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aellm/engine.h"
#include "aellm/task.h"
#include "cli/cli.h"

static void progress(int chunk, int n_chunks, double ppl, void *user)
{
    char extra[48];
    snprintf(extra, sizeof(extra), "running ppl %.4f", ppl);
    cli_progress_update(user, "perplexity: window", chunk, n_chunks, extra);
}

static int tokenize_file(const aellm_model *m, const char *path, int32_t **ids, size_t *n)
{
    size_t len = 0;
    char *text = cli_read_file("perplexity", path, &len);
    if (!text) return -1;
    int rc = cli_encode("perplexity", aellm_model_tokenizer(m), text, len, ids, n);
    free(text);
    return rc;
}

static cJSON *result_json(const char *file, const aellm_ppl_result *r, size_t n_tokens)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddNumberToObject(o, "tokens", (double)n_tokens);
    cJSON_AddNumberToObject(o, "ctx", r->n_ctx);
    cJSON_AddNumberToObject(o, "chunks", r->n_chunks);
    cJSON_AddNumberToObject(o, "scored_tokens", (double)r->n_scored);
    cJSON_AddNumberToObject(o, "ppl", r->ppl);
    cJSON_AddNumberToObject(o, "ppl_stderr", r->ppl_stderr);
    cJSON_AddNumberToObject(o, "nll", r->nll);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddStringToObject(o, "source", "measured");
    return o;
}

/* The text as a kld task with the same windows, for --kl-divergence-base. */
static int kld_task(aellm_task **out, const char *file, int ctx, int chunks)
{
    char *abs = realpath(file, NULL);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "kld");
    cJSON_AddStringToObject(j, "data", abs ? abs : file);
    cJSON_AddNumberToObject(j, "n_ctx", ctx);
    cJSON_AddNumberToObject(j, "max_chunks", chunks);
    char *spec = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(abs);
    int rc = spec ? aellm_task_parse(out, spec, NULL, NULL) : -1;
    free(spec);
    return rc ? cli_fail_last("perplexity"), -1 : 0;
}

static void print_kld(const aellm_task_result *r, const char *base)
{
    printf("KL divergence from %s over %lld tokens:\n", base, (long long)r->n_items);
    for (int i = 0; i < r->n_metrics; i++) {
        const aellm_metric *x = &r->metrics[i];
        if (x->stderr_ > 0)
            printf("  %-11s %.6f +/- %.6f\n", x->name, x->value, x->stderr_);
        else
            printf("  %-11s %.6f\n", x->name, x->value);
    }
}

/* --kl-divergence-base FILE: without --kl-divergence, this model's
 * distributions are written to FILE; with it, they are read and this model is
 * scored against them (llama-perplexity's two steps). */
static int kl_divergence(aellm_engine *e, const aellm_model *m, const char *file, int ctx,
                         int chunks, const char *base_path, int compare, cJSON *json)
{
    aellm_task *t = NULL;
    aellm_lm *lm = NULL;
    aellm_kld_base *base = NULL;
    aellm_task_result r = {0};
    int rc = kld_task(&t, file, ctx, chunks);
    if (!rc && aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(m))) rc = -1;
    if (!rc && compare) {
        if (aellm_kld_base_load(&base, base_path) ||
            aellm_task_run_kld(t, lm, base, NULL, NULL, &r))
            rc = -1;
    } else if (!rc) {
        if (aellm_kld_base_compute(&base, t, lm, NULL, NULL) ||
            aellm_kld_base_save(base, base_path))
            rc = -1;
    }
    if (rc && t) cli_fail_last("perplexity");
    if (!rc && compare && json) {
        cJSON *k = cJSON_AddObjectToObject(json, "kl_divergence");
        cJSON_AddStringToObject(k, "base", base_path);
        cJSON_AddNumberToObject(k, "tokens", (double)r.n_items);
        for (int i = 0; i < r.n_metrics; i++) {
            cJSON_AddNumberToObject(k, r.metrics[i].name, r.metrics[i].value);
            if (r.metrics[i].stderr_ > 0) {
                char name[64];
                snprintf(name, sizeof(name), "%s_stderr", r.metrics[i].name);
                cJSON_AddNumberToObject(k, name, r.metrics[i].stderr_);
            }
        }
    } else if (!rc && compare)
        print_kld(&r, base_path);
    else if (!rc && !json)
        printf("wrote this model's distributions over %lld tokens to %s\n",
               (long long)aellm_kld_base_n_tokens(base), base_path);
    aellm_task_result_free(&r);
    aellm_kld_base_free(base);
    aellm_lm_engine_free(lm);
    aellm_task_free(t);
    return rc;
}

#define CTX_UNSET  INT_MIN /* -c not given: 512, or the model's context when shorter */
#define CHUNKS_ALL INT_MIN /* --chunks not given: every window */

int cmd_perplexity(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *file = NULL, *kv_type = NULL, *kld_base = NULL;
    int kld = 0;
    int ctx = CTX_UNSET, chunks = CHUNKS_ALL, threads = 0, json = 0, batch = 512, kv_heads = 0;
    const char *lora = NULL;
    float lora_scale = 1.0f;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model, "model file (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"file", 'f', OPT_STR, &file, "text file to score (required)"},
        {"ctx-size", 'c', OPT_INT, &ctx,
         "window length (default 512, or the model's context when shorter)"},
        {"chunks", 0, OPT_INT, &chunks, "score at most this many windows (default all)"},
        {"batch-size", 'b', OPT_INT, &batch, "tokens per forward step (default 512)"},
        {"threads", 't', OPT_INT, &threads, "threads (default 0: all cores)"},
        CLI_KV_OPTS(&kv_type, &kv_heads),
        {"kl-divergence-base", 0, OPT_STR, &kld_base,
         "write this model's next-token distributions to FILE (or, with --kl-divergence, "
         "read them)"},
        {"kl-divergence", 0, OPT_FLAG, &kld,
         "score this model's KL divergence from --kl-divergence-base's distributions"},
        CLI_LORA_OPTS(&lora, &lora_scale),
        {"json", 0, OPT_FLAG, &json, "print the result as JSON"},
        {0}};
    cli_command cmd = {
        "perplexity", "Perplexity of a text, by llama.cpp's method.",
        "[-m MODEL] -f TEXT [options]",
        "The text is tokenized with BOS, cut into non-overlapping windows of --ctx-size tokens;\n"
        "BOS goes first in each window and the second half of every window is scored.\n"
        "Prints PPL +/- its standard error (first-order, from the NLL variance).\n"
        "KL divergence as llama-perplexity's: first --kl-divergence-base FILE with the\n"
        "reference model, then --kl-divergence-base FILE --kl-divergence with the other one\n"
        "on the same text and -c (mean KLD, top-1 agreement, quantiles, RMS dp).",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!file) return cli_fail("perplexity", "no text file given (-f FILE)");
    if (chunks != CHUNKS_ALL && chunks < 1)
        return cli_fail("perplexity", "--chunks %d: must be at least 1 (leave it out for all)",
                        chunks);
    if (batch < 1) return cli_fail("perplexity", "--batch-size %d: must be at least 1", batch);
    if (threads < 0)
        return cli_fail("perplexity", "--threads %d: must be 0 (all cores) or more", threads);
    if (ctx != CTX_UNSET && ctx < 4)
        return cli_fail("perplexity", "--ctx-size %d: a window needs at least 4 tokens", ctx);
    if (chunks == CHUNKS_ALL) chunks = 0; /* the library's "all" */
    if (kld && !kld_base)
        return cli_fail("perplexity", "--kl-divergence needs --kl-divergence-base FILE");
    if (kld && access(kld_base, R_OK))
        return cli_fail("perplexity",
                        "%s: %s (write it first: --kl-divergence-base without "
                        "--kl-divergence, with the reference model)",
                        kld_base, strerror(errno));

    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int status = 1;
    aellm_ppl_result r;
    if (cli_open_model("perplexity", &m, model, tok)) goto done;
    if (cli_lora_apply("perplexity", m, lora, lora_scale)) goto done;
    if (!aellm_model_tokenizer(m)) {
        cli_fail("perplexity", "model has no tokenizer (pass -z tokenizer.bin)");
        goto done;
    }
    if (tokenize_file(m, file, &ids, &n)) goto done;
    int trained = aellm_model_config_get(m)->seq_len;
    if (ctx == CTX_UNSET)
        ctx = trained > 0 && trained < 512 ? trained : 512;
    else if (trained > 0 && ctx > trained)
        fprintf(stderr,
                "aellm perplexity: warning: --ctx-size %d is beyond the model's trained "
                "context of %d; positions past it are extrapolated\n",
                ctx, trained);
    cli_progress bar;
    cli_progress_start(&bar, json);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = ctx, ep.n_threads = threads, ep.n_batch = batch;
    if (cli_kv_apply("perplexity", m, kv_type, kv_heads, &ep)) goto done;
    if (cli_repack("perplexity", m, NULL)) goto done;
    if (aellm_engine_new(&e, m, &ep) ||
        aellm_perplexity(e, ids, (int64_t)n, ctx, chunks, progress, &bar, &r)) {
        cli_progress_end(&bar);
        cli_fail_last("perplexity");
        goto done;
    }
    cli_progress_end(&bar);
    cJSON *o = json ? result_json(file, &r, n) : NULL;
    if (o) cli_kv_json(o, e, m);
    if (!json)
        printf("%s: %zu tokens, %d chunks of %d, %lld scored, %.1f tokens/s\n"
               "PPL = %.4f +/- %.5f\n",
               file, n, r.n_chunks, r.n_ctx, (long long)r.n_scored,
               r.n_chunks * (double)r.n_ctx / r.seconds, r.ppl, r.ppl_stderr);
    if (kld_base && kl_divergence(e, m, file, ctx, chunks, kld_base, kld, o)) {
        cJSON_Delete(o);
        goto done;
    }
    if (o) cli_print_json(o);
    status = 0;
done:
    free(ids);
    aellm_engine_free(e);
    aellm_model_free(m);
    return status;
}
