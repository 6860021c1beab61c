/* `aellm info`: what a model file holds — metadata, tensors, types, sizes. */
#include <inttypes.h>
#include <string.h>

#include "aellm/dtype.h"
#include "aellm/gguf.h"
#include "cli/cli.h"

static void print_kv(const aellm_gguf *g, int64_t i)
{
    aellm_gguf_type t = aellm_gguf_kv_type(g, i);
    printf("  %-40s ", aellm_gguf_kv_key(g, i));
    if (t == AELLM_GGUF_STRING) {
        size_t len;
        const char *s = aellm_gguf_kv_str(g, i, &len);
        printf("%.*s%s\n", len > 60 ? 60 : (int)len, s, len > 60 ? "..." : "");
    } else if (t == AELLM_GGUF_ARRAY)
        printf("array of %" PRIu64 " (type %d)\n", aellm_gguf_arr_len(g, i),
               aellm_gguf_arr_type(g, i));
    else
        printf("%.9g\n", aellm_gguf_kv_number(g, i));
}

static cJSON *kv_json(const aellm_gguf *g, int64_t i)
{
    aellm_gguf_type t = aellm_gguf_kv_type(g, i);
    if (t == AELLM_GGUF_STRING) return cJSON_CreateString(aellm_gguf_kv_str(g, i, &(size_t){0}));
    if (t == AELLM_GGUF_ARRAY) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "array_type", aellm_gguf_arr_type(g, i));
        cJSON_AddNumberToObject(o, "length", (double)aellm_gguf_arr_len(g, i));
        return o;
    }
    return cJSON_CreateNumber(aellm_gguf_kv_number(g, i));
}

static const char *type_name(int type)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    return tr ? tr->name : "?";
}

static int info_gguf(const char *path, int json)
{
    aellm_gguf *g = NULL;
    if (aellm_gguf_open(&g, path)) return cli_fail_last("info");
    cJSON *doc = json ? cJSON_CreateObject() : NULL, *kv = NULL, *tensors = NULL;
    size_t total = 0;
    if (json) {
        cJSON_AddStringToObject(doc, "file", path);
        cJSON_AddNumberToObject(doc, "gguf_version", aellm_gguf_version(g));
        kv = cJSON_AddObjectToObject(doc, "metadata");
        tensors = cJSON_AddArrayToObject(doc, "tensors");
    } else
        printf("%s: GGUF v%u, %" PRId64 " metadata keys, %" PRId64 " tensors\n", path,
               aellm_gguf_version(g), aellm_gguf_kv_count(g), aellm_gguf_tensor_count(g));
    for (int64_t i = 0; i < aellm_gguf_kv_count(g); i++)
        if (json)
            cJSON_AddItemToObject(kv, aellm_gguf_kv_key(g, i), kv_json(g, i));
        else
            print_kv(g, i);
    for (int64_t i = 0; i < aellm_gguf_tensor_count(g); i++) {
        const aellm_gguf_tensor_info *t = aellm_gguf_tensor(g, i);
        total += t->size;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddStringToObject(o, "type", type_name(t->type));
            cJSON_AddItemToObject(o, "shape",
                                  cJSON_CreateIntArray((int[]){(int)t->ne[0], (int)t->ne[1],
                                                               (int)t->ne[2], (int)t->ne[3]},
                                                       t->n_dims));
            cJSON_AddNumberToObject(o, "bytes", (double)t->size);
            cJSON_AddItemToArray(tensors, o);
        } else
            printf("  %-32s %-5s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] %zu bytes\n",
                   t->name, type_name(t->type), t->ne[0], t->ne[1], t->ne[2], t->ne[3], t->size);
    }
    if (json) {
        cJSON_AddNumberToObject(doc, "tensor_bytes", (double)total);
        cli_print_json(doc);
    } else
        printf("total tensor data: %.2f MiB\n", total / 1048576.0);
    aellm_gguf_free(g);
    return 0;
}

static int info_model(const char *path, int json)
{
    aellm_model *m = NULL;
    if (aellm_model_load(&m, path, NULL)) return cli_fail_last("info");
    const aellm_model_config *c = aellm_model_config_get(m);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddStringToObject(o, "format", "llama2.c");
        cJSON_AddNumberToObject(o, "dim", c->dim);
        cJSON_AddNumberToObject(o, "hidden_dim", c->hidden_dim);
        cJSON_AddNumberToObject(o, "n_layers", c->n_layers);
        cJSON_AddNumberToObject(o, "n_heads", c->n_heads);
        cJSON_AddNumberToObject(o, "n_kv_heads", c->n_kv_heads);
        cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
        cJSON_AddNumberToObject(o, "seq_len", c->seq_len);
        cJSON_AddBoolToObject(o, "tied_output", c->tied_output);
        cJSON_AddNumberToObject(o, "params", (double)aellm_model_n_params(m));
        cJSON_AddNumberToObject(o, "weight_bytes", (double)aellm_model_weight_bytes(m));
        cli_print_json(o);
    } else
        printf("%s: llama2.c checkpoint (f32)\n  dim %d, hidden %d, layers %d, heads %d, kv heads "
               "%d, vocab %d, context %d, %s output\n  %" PRId64 " parameters, %.2f MiB\n",
               path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
               c->seq_len, c->tied_output ? "tied" : "separate", aellm_model_n_params(m),
               aellm_model_weight_bytes(m) / 1048576.0);
    aellm_model_free(m);
    return 0;
}

int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    int json = 0;
    cli_opt opts[] = {{"model", 'm', OPT_STR, &model, "model file (GGUF or llama2.c)"},
                      {"json", 0, OPT_FLAG, &json, "print as JSON"},
                      {0}};
    cli_command cmd = {"info", "Shows a model file's metadata, tensor shapes, types and sizes.",
                       "-m MODEL [--json]", NULL, opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!model) return cli_fail("info", "no model given (-m MODEL)");
    FILE *f = fopen(model, "rb");
    char magic[4] = {0};
    if (!f) return cli_fail("info", "%s: cannot open", model);
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    return got == 4 && !memcmp(magic, "GGUF", 4) ? info_gguf(model, json) : info_model(model, json);
}
