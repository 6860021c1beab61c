/* `aellm quantize`: a model to a lower precision by one of the methods of
 * include/aellm/quantize.h, written as GGUF. The precision is named the way
 * a user thinks of it (--type int4 --group 128) or by its dtype name
 * (--type q4_0); this file turns one into the other. */
#include <stdlib.h>
#include <string.h>

#include "aellm/dtype.h"
#include "aellm/quantize.h"
#include "cli/cli.h"

static void progress(int layer, int n_layers, void *user)
{
    cli_progress_update(user, "quantize: layer", layer + 1, n_layers, NULL);
}

static cJSON *report_json(const aellm_quantize_report *r, const char *in, const char *out,
                          const aellm_model *q)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "input", in);
    cJSON_AddStringToObject(o, "output", out);
    cJSON *opts = cJSON_Parse(aellm_model_quantize_info(q) ? aellm_model_quantize_info(q) : "{}");
    cJSON_AddItemToObject(o, "options", opts ? opts : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "weight_bytes", (double)aellm_model_weight_bytes(q));
    cJSON_AddNumberToObject(o, "calib_tokens", (double)r->calib_tokens);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    for (int i = 0; i < r->n_tensors; i++) {
        const aellm_quant_tensor_report *t = &r->tensors[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "type", aellm_dtype_traits_get(t->type)->name);
        if (t->rel_err >= 0) cJSON_AddNumberToObject(e, "rel_err", t->rel_err);
        if (t->note[0]) cJSON_AddStringToObject(e, "note", t->note);
        cJSON_AddItemToArray(ts, e);
    }
    return o;
}

/* The human summary: notes (type changes), the mean relative error. */
static void report_text(const aellm_quantize_report *r, const char *out, const aellm_model *q)
{
    double err = 0.0;
    int n_err = 0;
    for (int i = 0; i < r->n_tensors; i++) {
        const aellm_quant_tensor_report *t = &r->tensors[i];
        if (t->note[0]) fprintf(stderr, "  %s: %s\n", t->name, t->note);
        if (t->rel_err >= 0) err += t->rel_err, n_err++;
    }
    if (n_err)
        fprintf(stderr,
                "mean relative output error of %d matrices on %lld calibration tokens: %.4f\n",
                n_err, (long long)r->calib_tokens, err / n_err);
    fprintf(stderr, "wrote %s: %.2f MiB of weights (%s), %.1f s\n", out,
            aellm_model_weight_bytes(q) / 1048576.0,
            aellm_model_quantize_info(q) ? aellm_model_quantize_info(q) : "", r->seconds);
}

int cmd_quantize(int argc, char **argv)
{
    const char *in = NULL, *tok = NULL, *out = NULL, *type_name = NULL, *method_name = "rtn",
               *calib = NULL, *fp8_scale = "channel";
    int group = 0, asym = 0, act_order = 0, calib_ctx = 0, quant_out = 0, threads = 0, json = 0;
    int calib_tokens = 0, calib_skip = 0, calib_bytes = 0, gptq_mse = 0, no_awq_clip = 0;
    float alpha = 0.5f, damp = 0.01f;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &in, "input model: GGUF or llama2.c checkpoint (required)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"output", 'o', OPT_STR, &out, "output GGUF path (required)"},
        {"type", 0, OPT_STR, &type_name,
         "int4 int8 fp8 nf4 f16 bf16, or a dtype name (q4_0 q8_0 int4a_g64 ...) (required)"},
        {"group", 'g', OPT_INT, &group, "int4 group size: 32 (default), 64 or 128"},
        {"asym", 0, OPT_FLAG, &asym, "int4 with a minimum per group (q4_1's kind)"},
        {"method", 0, OPT_STR, &method_name, "rtn (default), gptq, awq, smoothquant"},
        {"calib", 0, OPT_STR, &calib, "calibration text file (gptq, awq, smoothquant)"},
        {"calib-skip", 0, OPT_INT, &calib_skip, "bytes of the calibration file to skip first"},
        {"calib-bytes", 0, OPT_INT, &calib_bytes, "bytes of it to read (default: the rest)"},
        {"calib-tokens", 0, OPT_INT, &calib_tokens, "calibration tokens (default 4096)"},
        {"calib-ctx", 0, OPT_INT, &calib_ctx, "tokens per calibration sequence (default 256)"},
        {"act-order", 0, OPT_FLAG, &act_order, "gptq: columns by decreasing Hessian diagonal"},
        {"damp", 0, OPT_FLOAT, &damp, "gptq: damping, fraction of the mean diagonal (0.01)"},
        {"gptq-mse", 0, OPT_FLAG, &gptq_mse, "gptq: group scales by a search minimising error"},
        {"no-awq-clip", 0, OPT_FLAG, &no_awq_clip, "awq: skip the weight-clipping search"},
        {"alpha", 0, OPT_FLOAT, &alpha, "smoothquant: migration strength (0.5)"},
        {"fp8-scale", 0, OPT_STR, &fp8_scale, "fp8/int8 scale: channel (default) or tensor"},
        {"quantize-output", 0, OPT_FLAG, &quant_out,
         "also round the embedding and output matrix (default: keep them)"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        {"json", 0, OPT_FLAG, &json, "print the report as JSON"},
        {0}};
    cli_command cmd = {
        "quantize", "Quantizes a model's weights and writes GGUF.",
        "-m IN -o OUT.gguf --type T [--group G] [--method M --calib TEXT] [options]",
        "int4 at group 32 is written as llama.cpp's q4_0 (q4_1 with --asym) so llama.cpp runs the\n"
        "file; matrices whose rows are not whole groups get a zero-padded last group (aellm's\n"
        "int4s_g32 / int4a_g32 / int8_g32 types), and the report names them. int8 is per output\n"
        "channel with activations quantized per token at run time (W8A8). The options used are\n"
        "recorded in the file (metadata key aellm.quantize). OUT is written to OUT.tmp, renamed.",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!in || !out || !type_name) return cli_fail("quantize", "need -m IN, -o OUT and --type T");
    int method = aellm_quant_method_from_name(method_name);
    if (method < 0) return cli_fail("quantize", "unknown --method '%s'", method_name);
    if (strcmp(fp8_scale, "channel") && strcmp(fp8_scale, "tensor"))
        return cli_fail("quantize", "--fp8-scale must be channel or tensor");
    if (calib_skip < 0 || calib_bytes < 0 || calib_tokens < 0 || calib_ctx < 0 || threads < 0)
        return cli_fail("quantize", "negative counts are not allowed");
    int type = aellm_quant_type_resolve(type_name, group, asym);
    if (type < 0) return cli_fail_last("quantize");
    if (method != AELLM_QUANT_RTN && !calib)
        return cli_fail("quantize", "--method %s needs --calib TEXT", method_name);

    aellm_quantize_params p;
    aellm_quantize_params_default(&p);
    p.type = type;
    p.method = method;
    p.act_order = act_order;
    p.gptq_mse = gptq_mse;
    if (no_awq_clip) p.awq_clip = 0;
    p.damp = damp;
    p.alpha = alpha;
    p.fp8_per_tensor = !strcmp(fp8_scale, "tensor");
    p.quantize_output = quant_out;
    p.n_threads = threads;
    if (calib_tokens) p.calib_tokens = calib_tokens;
    if (calib_ctx) p.calib_ctx = calib_ctx;
    cli_progress bar;
    cli_progress_start(&bar, json);
    p.progress = progress, p.progress_user = &bar;
    char *text = NULL;
    if (calib && aellm_quant_read_calib(&text, &p.calib_len, calib, calib_skip, calib_bytes))
        return cli_fail_last("quantize");
    p.calib_text = text;
    /* recorded in the file as the calibration's source: path[first byte:end] */
    char source[1024];
    if (calib)
        snprintf(source, sizeof(source), "%s[%d:%lld]", calib, calib_skip,
                 (long long)calib_skip + (long long)p.calib_len);
    p.calib_path = calib ? source : NULL;

    aellm_model *m = NULL, *q = NULL;
    aellm_quantize_report rep = {0};
    rc = aellm_model_load(&m, in, tok);
    if (!rc) rc = aellm_quantize_model(&q, m, &p, &rep);
    cli_progress_end(&bar);
    if (!rc) rc = aellm_model_save_gguf(q, out, -1);
    if (rc)
        rc = cli_fail_last("quantize");
    else if (json)
        cli_print_json(report_json(&rep, in, out, q));
    else
        report_text(&rep, out, q);
    aellm_quantize_report_free(&rep);
    aellm_model_free(q);
    aellm_model_free(m);
    free(text);
    return rc;
}
