/* `aellm demo`: a quick look at the engine on the bundled default — greedy generation and
 * perplexity of the bundled stories with stories260K (models/), otherwise with a
 * random-weight model of the same shape that aellm makes itself (and says so). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char fallback_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do.";

static int print_piece(const char *piece, int len, void *user)
{
    (void)user;
    fwrite(piece, 1, (size_t)len, stdout);
    return 0;
}

static int open_demo_model(aellm_model **m, int *random_weights)
{
    const char *tok = NULL, *path = cli_default_model(&tok);
    *random_weights = path == NULL;
    if (path) {
        printf("== model: %s (tokenizer %s)\n", path, tok ? tok : "none");
        return cli_open_model("demo", m, path, tok);
    }
    printf("== no bundled model found (%s/models/stories260K or $AELLM_MODEL):\n"
           "== using a RANDOM-WEIGHT model of the stories260K shape made by aellm; its text "
           "is noise\n",
           cli_home());
    aellm_model_config cfg;
    aellm_tokenizer *vocab = NULL;
    if (aellm_model_shape(&cfg, "260K") || aellm_model_random(m, &cfg, 0, 42))
        return cli_fail_last("demo"), -1;
    if (cli_vocab_for("demo", &vocab, NULL, cfg.vocab_size)) return -1;
    aellm_model_set_tokenizer(*m, vocab);
    return 0;
}

static int demo_perplexity(aellm_engine *e, const aellm_model *m)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", cli_bundled("tasks/data/stories_eval.txt"));
    size_t len = 0;
    char *text = cli_is_file(path) ? cli_read_file("demo", path, &len) : NULL;
    if (!text) {
        text = strdup(fallback_text);
        len = strlen(text);
        snprintf(path, sizeof(path), "(built-in paragraph)");
    }
    size_t n = 0;
    int32_t *ids = NULL;
    aellm_ppl_result r;
    int rc = 1;
    if (!cli_encode("demo", aellm_model_tokenizer(m), text, len, &ids, &n) &&
        !aellm_perplexity(e, ids, (int64_t)n, n >= 512 ? 512 : 128, 64, NULL, NULL, &r)) {
        printf("== perplexity of %s: %d windows of %d tokens\nPPL = %.4f +/- %.5f  (%.0f "
               "tokens/s)\n",
               path, r.n_chunks, r.n_ctx, r.ppl, r.ppl_stderr,
               r.n_chunks * (double)r.n_ctx / r.seconds);
        rc = 0;
    } else if (ids)
        cli_fail_last("demo");
    free(ids);
    free(text);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    int n = 200;
    cli_opt opts[] = {{"n-predict", 'n', OPT_INT, &n, "tokens to generate (default 200)"}, {0}};
    cli_command cmd = {"demo",
                       "A quick look at the engine on the bundled default model: greedy "
                       "generation, then perplexity of the bundled stories (tasks/data).",
                       "[-n N]", NULL, opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    int random_weights, status = 1;
    aellm_generate_stats st;
    aellm_sampler_params sp = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    if (open_demo_model(&m, &random_weights)) goto done;
    if (!aellm_model_tokenizer(m)) {
        cli_fail("demo", "the model has no vocabulary; cannot generate text");
        goto done;
    }
    if (aellm_engine_new(&e, m, NULL)) {
        cli_fail_last("demo");
        goto done;
    }
    printf("== aellm generate --temp 0 -n %d (greedy, empty prompt)\n", n);
    if (aellm_generate(e, "", n, &sp, print_piece, NULL, &st)) {
        cli_fail_last("demo");
        goto done;
    }
    printf("\n== %d tokens, %.1f tokens/s\n", st.n_generated,
           st.decode_s > 0 ? (st.n_generated - 1) / st.decode_s : 0.0);
    status = demo_perplexity(e, m);
done:
    aellm_engine_free(e);
    aellm_model_free(m);
    return status;
}
