/* `aellm convert`: llama2.c checkpoint (or GGUF) to GGUF, optionally to
 * another weight type, and optionally with the dense FFN turned into a
 * mixture of experts (split or upcycled, routers fitted on a text). The
 * architecture stage does the same inside a search; this is the command a
 * person converting a checkpoint runs. Quantization methods beyond
 * round-to-nearest are `aellm quantize`'s job, not this command's. */
#include <string.h>

#include "aellm/arch.h"
#include "aellm/dtype.h"
#include "cli/cli.h"

typedef struct {
    int experts, top_k;
    const char *method, *router_text;
    int router_tokens;
    aellm_moe_fit_report fit;
} moe_opts;

static int to_moe(aellm_model *m, moe_opts *o)
{
    aellm_moe_params p;
    aellm_moe_params_default(&p);
    p.n_experts = o->experts;
    p.top_k = o->top_k;
    if (!strcmp(o->method, "upcycle"))
        p.method = AELLM_MOE_UPCYCLE;
    else if (strcmp(o->method, "split"))
        return cli_fail("convert", "--moe-method '%s' is not split or upcycle", o->method);
    if (aellm_model_to_moe(m, &p)) return cli_fail_last("convert");
    if (o->router_text && p.method == AELLM_MOE_SPLIT) {
        fprintf(stderr, "fitting routers on %s ...\n", o->router_text);
        if (aellm_moe_fit_routers(m, o->router_text, o->router_tokens, &o->fit))
            return cli_fail_last("convert");
        fprintf(stderr,
                "routers fitted on %lld tokens: top expert agrees %.1f%% (centroids %.1f%%)\n",
                (long long)o->fit.tokens, 100 * o->fit.agreement, 100 * o->fit.agreement_before);
    }
    return 0;
}

typedef struct {
    int rank, rope_dim, plain_svd;
    const char *calib;
    aellm_mla_report rep;
} mla_opts;

static int to_mla(aellm_model *m, mla_opts *o)
{
    aellm_mla_params p;
    aellm_mla_params_default(&p);
    p.rank = o->rank;
    p.rope_dim = o->rope_dim;
    p.calib_path = o->calib;
    p.plain_svd = o->plain_svd;
    if (aellm_model_to_mla(m, &p, &o->rep)) return cli_fail_last("convert");
    fprintf(stderr,
            "latent attention: rank %d, %d rotary dims per KV head; the SVD keeps %.1f%% "
            "of the key/value %s energy\n",
            o->rep.rank, o->rep.rope_dim, 100 * o->rep.svd_energy_kept,
            o->rep.svd_weighted ? "outputs' (on the text)" : "rows'");
    return 0;
}

static cJSON *moe_json(const aellm_model *m, const moe_opts *o)
{
    const aellm_model_config *c = aellm_model_config_get(m);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "experts", c->n_experts);
    cJSON_AddNumberToObject(j, "top_k", c->n_experts_used);
    cJSON_AddStringToObject(j, "method", o->method);
    cJSON_AddNumberToObject(j, "expert_hidden", c->hidden_dim);
    if (o->fit.tokens) {
        cJSON_AddStringToObject(j, "router_text", o->router_text);
        cJSON_AddNumberToObject(j, "router_tokens", (double)o->fit.tokens);
        cJSON_AddNumberToObject(j, "router_agreement_centroid", o->fit.agreement_before);
        cJSON_AddNumberToObject(j, "router_agreement", o->fit.agreement);
    } else {
        cJSON_AddStringToObject(j, "router",
                                !strcmp(o->method, "upcycle") ? "random" : "centroids");
    }
    return j;
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *tok = NULL, *out = NULL, *type_name = NULL;
    int json = 0;
    moe_opts moe = {0, 1, "split", NULL, 8192, {0}};
    mla_opts mla = {0};
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &in, "input: llama2.c checkpoint or GGUF (required)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin to embed (llama2.c input)"},
        {"output", 'o', OPT_STR, &out, "output GGUF path (required)"},
        {"type", 0, OPT_STR, &type_name,
         "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 (default: keep)"},
        {"moe", 0, OPT_INT, &moe.experts, "split the dense FFN into this many experts (2..256)"},
        {"top-k", 0, OPT_INT, &moe.top_k, "experts per token with --moe (default 1)"},
        {"moe-method", 0, OPT_STR, &moe.method,
         "split (MoEfication, default) or upcycle (copies of the FFN)"},
        {"router-text", 0, OPT_STR, &moe.router_text,
         "fit the split's routers on this text (default: cluster centroids)"},
        {"router-tokens", 0, OPT_INT, &moe.router_tokens,
         "tokens of --router-text to fit on (default 8192)"},
        {"mla-rank", 0, OPT_INT, &mla.rank,
         "make the attention latent (MLA) with this many values per token"},
        {"mla-rope-dim", 0, OPT_INT, &mla.rope_dim,
         "rotary dims kept per KV head with --mla-rank (default head_dim / 4, at least 8)"},
        {"mla-calib", 0, OPT_STR, &mla.calib,
         "text to choose the rotary pairs on and weight the SVD by (default: weight norms)"},
        {"mla-plain-svd", 0, OPT_FLAG, &mla.plain_svd,
         "with --mla-calib, the weights' own SVD (MHA2MLA's) rather than the text-weighted one"},
        {"json", 0, OPT_FLAG, &json, "print a JSON summary"},
        {0}};
    cli_command cmd = {"convert", "Writes a model as GGUF (llama.cpp's names and metadata).",
                       "-m IN [-z tokenizer.bin] -o OUT.gguf [--type T] [--moe E [--top-k K]]",
                       "The file is written to OUT.tmp and renamed, so OUT is never half-written.\n"
                       "With --moe the FFN becomes llama.cpp's Llama-MoE layout: softmax router,\n"
                       "top-k experts, weights renormalised; llama.cpp runs the file as it is.\n"
                       "With --mla-rank the attention becomes latent (aellm.mla.* layout, which\n"
                       "llama.cpp does not read).",
                       opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!in || !out) return cli_fail("convert", "need -m IN and -o OUT");
    int type = -1;
    if (type_name && (type = aellm_dtype_from_name(type_name)) < 0)
        return cli_fail("convert", "unknown type '%s'", type_name);
    aellm_model *m = NULL;
    if (aellm_model_load(&m, in, tok)) return cli_fail_last("convert");
    if ((mla.rank && (rc = to_mla(m, &mla))) || (moe.experts && (rc = to_moe(m, &moe)))) {
        aellm_model_free(m);
        return rc;
    }
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
        cJSON_AddNumberToObject(o, "active_params", (double)aellm_model_active_params(m));
        cJSON_AddBoolToObject(o, "tokenizer", aellm_model_tokenizer(m) != NULL);
        if (moe.experts) cJSON_AddItemToObject(o, "moe", moe_json(m, &moe));
        if (mla.rank) {
            cJSON *j = cJSON_AddObjectToObject(o, "mla");
            cJSON_AddNumberToObject(j, "rank", mla.rep.rank);
            cJSON_AddNumberToObject(j, "rope_dim", mla.rep.rope_dim);
            cJSON_AddNumberToObject(j, "calib_tokens", (double)mla.rep.calib_tokens);
            cJSON_AddNumberToObject(j, "svd_energy_kept", mla.rep.svd_energy_kept);
            cJSON_AddBoolToObject(j, "svd_weighted", mla.rep.svd_weighted);
        }
        cli_print_json(o);
    } else
        fprintf(stderr, "wrote %s (%lld parameters%s)\n", out, (long long)aellm_model_n_params(m),
                aellm_model_tokenizer(m) ? ", with vocabulary" : ", no vocabulary");
    aellm_model_free(m);
    return 0;
}
