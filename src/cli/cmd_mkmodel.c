/* `aellm mkmodel`: random-weight models of real shapes, written as GGUF that
 * llama.cpp loads too — speed does not depend on the values of the weights. */
#include <stdlib.h>

#include "aellm/dtype.h"
#include "cli/cli.h"

int cmd_mkmodel(int argc, char **argv)
{
    const char *shape = "110M", *out = NULL, *type_name = "f32", *vocab = NULL;
    uint64_t seed = 42;
    cli_opt opts[] = {
        {"shape", 0, OPT_STR, &shape, "260K, 15M, 110M or 1.1B (default 110M)"},
        {"type", 0, OPT_STR, &type_name, "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 (default f32)"},
        {"vocab", 0, OPT_STR, &vocab, "tokenizer.bin to embed (default: one of the shape's size)"},
        {"seed", 's', OPT_U64, &seed, "random seed (default 42)"},
        {"output", 'o', OPT_STR, &out, "output GGUF path (required)"},
        {0}};
    cli_command cmd = {"mkmodel", "Writes a random-weight model of a named real shape as GGUF.",
                       "--shape NAME --type T -o OUT.gguf", NULL, opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!out) return cli_fail("mkmodel", "need -o OUT.gguf");
    aellm_model_config cfg;
    int type = aellm_dtype_from_name(type_name);
    if (type < 0) return cli_fail("mkmodel", "unknown type '%s'", type_name);
    if (aellm_model_shape(&cfg, shape)) return cli_fail_last("mkmodel");
    aellm_model *m = NULL;
    aellm_tokenizer *tok = NULL;
    if (cli_vocab_for("mkmodel", &tok, vocab, cfg.vocab_size)) return 1;
    if (aellm_model_random(&m, &cfg, type, seed)) {
        aellm_tokenizer_free(tok);
        return cli_fail_last("mkmodel");
    }
    aellm_model_set_tokenizer(m, tok);
    rc = aellm_model_save_gguf(m, out, -1);
    if (rc)
        cli_fail_last("mkmodel");
    else
        fprintf(stderr, "wrote %s: %s shape, %s, %.1f MiB\n", out, shape, type_name,
                aellm_model_weight_bytes(m) / 1048576.0);
    aellm_model_free(m);
    return rc ? 1 : 0;
}
