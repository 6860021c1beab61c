/* `aellm predict`: latency, memory and energy of a configuration on a
 * hardware profile, for a named model shape or a model file (the roofline
 * of include/aellm/predict.h); every figure marked predicted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/dtype.h"
#include "aellm/predict.h"
#include "cli/cli.h"
#include "core/atomic.h"

static cJSON *prediction_json(const aellm_prediction *r, const char *shape, const char *hw,
                              const aellm_predict_params *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "provenance", "predicted");
    cJSON_AddStringToObject(o, "shape", shape);
    cJSON_AddStringToObject(o, "hardware", hw);
    cJSON_AddNumberToObject(o, "n_prompt", p->n_prompt);
    cJSON_AddNumberToObject(o, "n_gen", p->n_gen);
    cJSON_AddNumberToObject(o, "prefill_s", r->prefill_s);
    cJSON_AddNumberToObject(o, "decode_s", r->decode_s);
    cJSON_AddNumberToObject(o, "total_s", r->total_s);
    cJSON_AddNumberToObject(o, "decode_tokens_per_s", p->n_gen / r->decode_s);
    cJSON_AddNumberToObject(o, "memory_bytes", r->memory_bytes);
    cJSON_AddNumberToObject(o, "energy_j", r->energy_j);
    cJSON_AddStringToObject(o, "prefill_bound", r->prefill_compute_bound ? "compute" : "memory");
    cJSON_AddStringToObject(o, "decode_bound", r->decode_compute_bound ? "compute" : "memory");
    cJSON *w = cJSON_AddObjectToObject(o, "work");
    cJSON_AddNumberToObject(w, "weight_bytes", r->weight_bytes);
    cJSON_AddNumberToObject(w, "active_weight_bytes", r->active_weight_bytes);
    cJSON_AddNumberToObject(w, "kv_bytes_per_position", r->kv_bytes_per_position);
    cJSON_AddNumberToObject(w, "flops_per_token", r->flops_per_token);
    cJSON_AddNumberToObject(w, "kernels_per_token", r->kernels_per_token);
    cJSON_AddStringToObject(o, "source", r->source);
    return o;
}

static int write_json_file(const char *path, const cJSON *j)
{
    char *text = cJSON_Print(j);
    if (!text) return cli_fail("predict", "%s: out of memory", path);
    aellm_atomic a;
    int rc = aellm_atomic_open(&a, path);
    if (!rc) {
        aellm_atomic_write(&a, text, strlen(text));
        aellm_atomic_write(&a, "\n", 1);
        rc = aellm_atomic_commit(&a);
    }
    free(text);
    return rc ? cli_fail_last("predict") : 0;
}

static void calibration_progress(const char *what, int done, int total, void *user)
{
    cli_progress_update(user, what, done, total, NULL);
}

/* --calibrate: this machine with its measured kernel rates, as a profile. */
/* "f16,q8_0" -> dtype ids; a name that is no type is an error. */
static int parse_types(const char *list, int *types, int cap, int *n)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", list);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int t = aellm_dtype_from_name(tok);
        if (t < 0)
            return cli_fail("predict", "--types: '%s' is not a type (f32, f16, q8_0, ...)", tok);
        if (*n == cap) return cli_fail("predict", "--types: more than %d types", cap);
        types[(*n)++] = t;
    }
    if (!*n) return cli_fail("predict", "--types: give at least one type");
    return 0;
}

static int run_calibration(const char *path, int threads, int rounds, int model_rounds,
                           const char *type_list, int json)
{
    aellm_calibrate_params cp;
    aellm_calibrate_params_default(&cp);
    cp.n_threads = threads;
    if (rounds) cp.reps = rounds;
    if (model_rounds >= 0) cp.model_rounds = model_rounds;
    int types[32];
    if (type_list) {
        if (parse_types(type_list, types, 32, &cp.n_types)) return 1;
        cp.types = types;
    }
    aellm_hw_profile hw;
    cli_progress bar;
    cli_progress_start(&bar, json);
    int rc = aellm_predict_calibrate(&hw, &cp, calibration_progress, &bar);
    cli_progress_end(&bar);
    if (rc) return cli_fail_last("predict");
    cJSON *j = aellm_hw_to_json(&hw);
    rc = write_json_file(path, j);
    if (!rc && !json) {
        printf("%s: %s, %.1f GB/s, %.1f GFLOP/s f32 peak, %.2f us per kernel\n", path, hw.name,
               hw.mem_bw / 1e9, hw.peak_f32 / 1e9, 1e6 * hw.kernel_overhead_s);
        printf("%-12s %14s %16s %14s %14s\n", "kernel", "decode GB/s", "prefill GFLOP/s",
               "model decode", "model prefill");
        for (int t = 0; t < AELLM_HW_RATED_TYPES; t++)
            if (hw.kernel_rates[t].decode_bytes_per_s > 0)
                printf("%-12s %14.1f %16.1f %13.2fx %13.2fx\n", aellm_dtype_traits_get(t)->name,
                       hw.kernel_rates[t].decode_bytes_per_s / 1e9,
                       hw.kernel_rates[t].prefill_flop_per_s / 1e9, hw.kernel_rates[t].decode_scale,
                       hw.kernel_rates[t].prefill_scale);
        for (int t = 0; t < AELLM_HW_RATED_TYPES; t++)
            if (hw.attention_rates[t].decode_bytes_per_s > 0)
                printf("attn kv %-4s %14.1f %16.1f\n", aellm_dtype_traits_get(t)->name,
                       hw.attention_rates[t].decode_bytes_per_s / 1e9,
                       hw.attention_rates[t].prefill_flop_per_s / 1e9);
    }
    if (!rc && json) cli_print_json(j), j = NULL;
    cJSON_Delete(j);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    const char *hardware = NULL, *shape = NULL, *model = NULL, *tok = NULL, *config_path = NULL;
    const char *base = NULL, *calibrate = NULL, *types = NULL;
    int json = 0, threads = 0, rounds = 0, model_rounds = -1;
    aellm_predict_params p;
    aellm_predict_params_default(&p);
    cli_opt opts[] = {
        {"hardware", 0, OPT_STR, &hardware,
         "profile name or file (hardware/*.json: rtx4090, a100-80gb, h100-sxm, h200, l4; default: "
         "this machine, measured)"},
        {"shape", 0, OPT_STR, &shape,
         "named shape: 110M, 1.1B, Llama-2-7B/13B/70B, Mistral-7B, Llama-3-8B, Mixtral-8x7B, "
         "Qwen-1.8B/7B/72B"},
        {"model", 'm', OPT_STR, &model,
         "or a model file, whose shape and weight type are used (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"config", 0, OPT_STR, &config_path, "configuration JSON (default: the model as is)"},
        {"prompt", 'p', OPT_INT, &p.n_prompt, "prompt tokens (512)"},
        {"gen", 'n', OPT_INT, &p.n_gen, "generated tokens (128)"},
        {"base-type", 0, OPT_STR, &base,
         "type of what stays unquantized (default f16 for a shape, the file's for -m)"},
        {"threads", 't', OPT_INT, &threads, "threads, for this machine's measured peaks"},
        {"ctx", 0, OPT_INT, &p.n_ctx, "KV cache positions the engine holds (default prompt + gen)"},
        {"batch", 0, OPT_INT, &p.n_batch,
         "the engine's prefill batch (default 512, at most --ctx)"},
        {"calibrate", 0, OPT_STR, &calibrate,
         "measure this machine's rate per kernel kind and write it as a profile to this file "
         "(then --hardware FILE predicts from it)"},
        {"rounds", 0, OPT_INT, &rounds,
         "--calibrate: rounds over every kernel kind, each kind's best kept (5)"},
        {"types", 0, OPT_STR, &types,
         "--calibrate: only these weight and KV cache types, comma-separated (f32 always)"},
        {"model-rounds", 0, OPT_INT, &model_rounds,
         "--calibrate: runs of the whole held-in model per weight type (2; 0: kernels only)"},
        {"json", 0, OPT_FLAG, &json, "print the prediction as JSON"},
        {0}};
    cli_command cmd = {
        "predict", "Predict latency, memory and energy of a configuration on a hardware profile.",
        "[--shape NAME | -m MODEL] [--hardware NAME] [--config C.json] [-p P -n G]",
        "A roofline: prefill bound by compute (or reading the weights once), decode by memory\n"
        "bandwidth (the active weights and the KV cache so far per token), each at the achieved\n"
        "fraction of peak the profile cites, plus a fixed cost per kernel; energy from the\n"
        "profile's power model. Every figure is a prediction; the output says from which profile.",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (rounds < 0) return cli_fail("predict", "--rounds must be >= 1");
    if (model_rounds < -1) return cli_fail("predict", "--model-rounds must be >= 0");
    if (calibrate) return run_calibration(calibrate, threads, rounds, model_rounds, types, json);
    if (shape && model) return cli_fail("predict", "give --shape NAME or -m MODEL, not both");
    if (p.n_prompt < 1 || p.n_gen < 1 || threads < 0 || p.n_ctx < 0 || p.n_batch < 0)
        return cli_fail("predict", "--prompt and --gen must be >= 1, --ctx and --batch >= 0");
    p.n_threads = threads;
    aellm_model_config cfg;
    if (shape && aellm_model_shape(&cfg, shape)) return cli_fail_last("predict");
    if (!shape) { /* a model file: the bundled one unless -m says */
        aellm_model *m = NULL;
        if (cli_model_path("predict", &model, &tok) || cli_open_model("predict", &m, model, tok))
            return 1;
        cfg = *aellm_model_config_get(m);
        p.base_type = aellm_model_weight_type(m);
        aellm_model_free(m);
    }
    if (base && (p.base_type = aellm_quant_type_resolve(base, 0, 0)) < 0)
        return cli_fail_last("predict");
    aellm_config c;
    if (config_path ? aellm_config_load(&c, config_path) : (aellm_config_default(&c), 0))
        return cli_fail_last("predict");
    aellm_hw_profile hw;
    if (hardware ? aellm_hw_load(&hw, hardware, NULL) : aellm_hw_detect(&hw, 1, threads))
        return cli_fail_last("predict");
    aellm_prediction r;
    if (aellm_predict(&cfg, &c, &hw, &p, &r)) return cli_fail_last("predict");
    const char *what = shape ? shape : model;
    if (json) {
        cli_print_json(prediction_json(&r, what, hw.name, &p));
        return 0;
    }
    const double MiB = 1048576.0;
    printf("%s on %s (predicted)\n", what, hw.name);
    printf("prefill   %d tokens: %.4f s (%s-bound)\n", p.n_prompt, r.prefill_s,
           r.prefill_compute_bound ? "compute" : "memory");
    printf("decode    %d tokens: %.4f s, %.1f tok/s (%s-bound)\n", p.n_gen, r.decode_s,
           p.n_gen / r.decode_s, r.decode_compute_bound ? "compute" : "memory");
    printf("memory    %.1f MiB (weights %.1f, KV %.1f per position x %d)\n", r.memory_bytes / MiB,
           r.weight_bytes / MiB, r.kv_bytes_per_position / MiB, p.n_prompt + p.n_gen);
    printf("energy    %.3f J per request\n", r.energy_j);
    printf("source    %s\n", r.source);
    return 0;
}
