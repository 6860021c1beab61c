/* `aellm convert`: llama2.c checkpoint (or GGUF) to GGUF, optionally to
 * another weight type. Quantization methods beyond round-to-nearest are
 * `aellm quantize`'s job, not this command's. */
#include "aellm/dtype.h"
#include "cli/cli.h"

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *tok = NULL, *out = NULL, *type_name = NULL;
    int json = 0;
    cli_opt opts[] = {{"model", 'm', OPT_STR, &in, "input: llama2.c checkpoint or GGUF (required)"},
                      {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin to embed (llama2.c input)"},
                      {"output", 'o', OPT_STR, &out, "output GGUF path (required)"},
                      {"type", 0, OPT_STR, &type_name,
                       "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 (default: keep)"},
                      {"json", 0, OPT_FLAG, &json, "print a JSON summary"},
                      {0}};
    cli_command cmd = {"convert", "Writes a model as GGUF (llama.cpp's names and metadata).",
                       "-m IN [-z tokenizer.bin] -o OUT.gguf [--type T]",
                       "The file is written to OUT.tmp and renamed, so OUT is never half-written.",
                       opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!in || !out) return cli_fail("convert", "need -m IN and -o OUT");
    int type = -1;
    if (type_name && (type = aellm_dtype_from_name(type_name)) < 0)
        return cli_fail("convert", "unknown type '%s'", type_name);
    aellm_model *m = NULL;
    if (aellm_model_load(&m, in, tok)) return cli_fail_last("convert");
    rc = aellm_model_save_gguf(m, out, type);
    if (rc) {
        aellm_model_free(m);
        return cli_fail_last("convert");
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "input", in);
        cJSON_AddStringToObject(o, "output", out);
        cJSON_AddNumberToObject(o, "params", (double)aellm_model_n_params(m));
        cJSON_AddBoolToObject(o, "tokenizer", aellm_model_tokenizer(m) != NULL);
        cli_print_json(o);
    } else
        fprintf(stderr, "wrote %s (%lld parameters%s)\n", out, (long long)aellm_model_n_params(m),
                aellm_model_tokenizer(m) ? ", with vocabulary" : ", no vocabulary");
    aellm_model_free(m);
    return 0;
}
