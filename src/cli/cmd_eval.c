/* `aellm eval`: one configuration of a model on a task, measured and stored
 * (the record machinery is the library's, include/aellm/evaluate.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aellm/energy.h"
#include "aellm/evaluate.h"
#include "cli/cli.h"

static double num(const cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *j = o;
    for (char *k = strtok(buf, "."); k && j; k = strtok(NULL, ".")) j = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(j) ? j->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *j = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
    return cJSON_IsString(j) ? j->valuestring : "?";
}

/* The rest of a KL divergence's metrics, and where its reference came from. */
static void print_kld(const cJSON *r)
{
    const cJSON *acc = cJSON_GetObjectItem(r, "accuracy"), *m;
    printf("          ");
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(acc, "metrics"))
    {
        const char *name = cJSON_GetObjectItem(m, "name")->valuestring;
        if (strcmp(name, "kld"))
            printf(" %s %.4g", name, cJSON_GetObjectItem(m, "value")->valuedouble);
    }
    printf("\n          against the unmodified model's distributions, %s\n",
           str(acc, "reference", "obtained"));
}

/* A record an external evaluator made: its figures and how each was obtained. */
static void print_external(const cJSON *r)
{
    const cJSON *ev = cJSON_GetObjectItem(r, "evaluator");
    const cJSON *id = cJSON_GetObjectItem(ev, "identity");
    printf("evaluator %s%s%s%s\n", str(r, "evaluator", "command"), cJSON_IsString(id) ? " (" : "",
           cJSON_IsString(id) ? id->valuestring : "", cJSON_IsString(id) ? ")" : "");
    printf("accuracy  %s %.6g (%s)\n", str(r, "accuracy", "metric"), num(r, "accuracy.value"),
           str(r, "accuracy", "obtained"));
    printf("latency   P=%g G=%g: %.4f s (%s)\n", num(r, "latency.n_prompt"),
           num(r, "latency.n_gen"), num(r, "latency.total_s.median"),
           str(r, "latency", "obtained"));
    printf("memory    peak %.2f MiB (%s)\n", num(r, "memory.peak_bytes") / (1024.0 * 1024),
           str(r, "memory", "obtained"));
    printf("energy    %.4g J per request (%s, %s)\n", num(r, "energy.joules_per_request"),
           str(r, "energy", "source"), str(r, "energy", "obtained"));
}

static void print_text(const cJSON *r, int cached, const char *db)
{
    const cJSON *key = cJSON_GetObjectItem(r, "key");
    if (cJSON_GetObjectItem(r, "evaluator")) {
        print_external(r);
        printf("%s    %s key %.16s\n", cached ? "cached" : "stored", db ? db : "(no store)",
               cJSON_IsString(key) ? key->valuestring : "?");
        return;
    }
    const double MiB = 1024.0 * 1024;
    const cJSON *inf = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "config"), "inference");
    printf("model     %s (%.2fM params)\n", str(r, "model", "path"),
           num(r, "model.shape.n_params") / 1e6);
    printf("task      %s (%s)\n", str(r, "task", "name"), str(r, "task", "kind"));
    const cJSON *w = cJSON_GetObjectItem(inf, "weights"), *me = cJSON_GetObjectItem(inf, "method");
    const cJSON *kv = cJSON_GetObjectItem(inf, "kv_cache"),
                *kh = cJSON_GetObjectItem(inf, "kv_heads");
    printf("config    weights %s (method %s), KV cache %s, KV heads %g\n",
           cJSON_IsString(w) ? w->valuestring : "?", cJSON_IsString(me) ? me->valuestring : "?",
           cJSON_IsString(kv) ? kv->valuestring : "?", cJSON_IsNumber(kh) ? kh->valuedouble : 0);
    const char *metric = str(r, "accuracy", "metric");
    int tokens = !strcmp(metric, "ppl") || !strcmp(metric, "kld");
    printf("accuracy  %s %.6g +- %.2g over %g %s (measured)\n", metric, num(r, "accuracy.value"),
           num(r, "accuracy.stderr"), num(r, "accuracy.items"), tokens ? "scored tokens" : "items");
    if (!strcmp(metric, "kld")) print_kld(r);
    printf("latency   P=%g G=%g: %.4f s median [p10 %.4f, p90 %.4f]; prefill %.1f tok/s, "
           "decode %.1f tok/s; %g reps%s\n",
           num(r, "latency.n_prompt"), num(r, "latency.n_gen"), num(r, "latency.total_s.median"),
           num(r, "latency.total_s.p10"), num(r, "latency.total_s.p90"),
           num(r, "latency.prefill_tokens_per_s"), num(r, "latency.decode_tokens_per_s"),
           num(r, "latency.reps"),
           cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "latency"), "converged"))
               ? " (CI within bound)"
               : " (max reps reached)");
    printf("memory    peak %.2f MiB (weights %.2f, KV %.2f, activations %.2f, scratch %.2f); "
           "process peak RSS %.1f MiB\n",
           num(r, "memory.peak_bytes") / MiB, num(r, "memory.peak_by_kind.weights") / MiB,
           num(r, "memory.peak_by_kind.kv") / MiB, num(r, "memory.peak_by_kind.activations") / MiB,
           num(r, "memory.peak_by_kind.scratch") / MiB,
           num(r, "memory.process_peak_rss_bytes") / MiB);
    if (cJSON_GetObjectItem(cJSON_GetObjectItem(r, "latency"), "paired"))
        printf("paired    %.4f s, %.4f J: %.3fx the default's %.4f s in %g interleaved pairs%s\n",
               num(r, "latency.paired.total_s"), num(r, "energy.paired.joules_per_request"),
               num(r, "latency.paired.ratio_total.median"),
               num(r, "latency.paired.reference_total_s"), num(r, "latency.paired.pairs"),
               cJSON_IsTrue(cJSON_GetObjectItem(
                   cJSON_GetObjectItem(cJSON_GetObjectItem(r, "latency"), "paired"), "converged"))
                   ? " (ratio CI within bound)"
                   : " (max reps reached)");
    int measured = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "energy"), "measured"));
    printf("energy    %.4f J per request +- %.4f (%s: %s)\n", num(r, "energy.joules_per_request"),
           num(r, "energy.std_joules"), str(r, "energy", "source"),
           measured ? "measured" : "estimated from the power model, not measured");
    printf("%s    %s key %.16s\n", cached ? "cached" : "stored", db ? db : "(no store)",
           cJSON_IsString(key) ? key->valuestring : "?");
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *task_arg = NULL, *config_path = NULL;
    const char *db = "aellm.db", *max_mem = NULL, *energy = "auto";
    int force = 0, json = 0, threads = 0, no_store = 0, paired = 0;
    float max_power = 0, rel_ci = 0;
    aellm_eval_request req;
    aellm_eval_request_default(&req);
    aellm_latency_params *lp = &req.latency;
    const char *lora = NULL;
    float lora_scale = 1.0f, evaluator_timeout = 3600;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model, "model file (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"task", 0, OPT_STR, &task_arg, "task spec file, or a bundled task's name (required)"},
        {"config", 0, OPT_STR, &config_path, "configuration JSON (default: the model as is)"},
        {"db", 0, OPT_STR, &db, "evaluation store (SQLite; default aellm.db)"},
        {"no-store", 0, OPT_FLAG, &no_store, "neither look up nor store the record"},
        {"force", 0, OPT_FLAG, &force, "run even if the store holds this evaluation"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        {"prompt", 'p', OPT_INT, &lp->n_prompt, "latency: prompt tokens (default 512)"},
        {"gen", 'n', OPT_INT, &lp->n_gen, "latency: generated tokens (default 128)"},
        {"warmup", 0, OPT_INT, &lp->warmup, "latency: untimed runs first (default 2)"},
        {"min-reps", 0, OPT_INT, &lp->min_reps, "latency: fewest timed runs (default 3)"},
        {"max-reps", 0, OPT_INT, &lp->max_reps, "latency: most timed runs (default 100)"},
        {"rel-ci", 0, OPT_FLOAT, &rel_ci,
         "latency: stop when the median's 95% CI is within "
         "+-this fraction (default 0.02)"},
        {"paired", 0, OPT_FLAG, &paired,
         "latency and energy interleaved with the default configuration, as ratios to its "
         "stored figures (cancels machine drift)"},
        {"max-memory", 0, OPT_STR, &max_mem,
         "memory limit, e.g. 512M, 8G (default: this "
         "machine's memory)"},
        {"max-power", 0, OPT_FLOAT, &max_power, "power limit in watts"},
        {"energy", 0, OPT_STR, &energy, "energy source: auto (RAPL/NVML, else model), model"},
        CLI_LORA_OPTS(&lora, &lora_scale),
        CLI_EVALUATOR_OPTS(&req.evaluator, &evaluator_timeout, &req.retry_failed),
        {"json", 0, OPT_FLAG, &json, "print the record as JSON"},
        {0}};
    cli_command cmd = {
        "eval", "Measure one configuration of a model on a task, and store the record.",
        "[-m MODEL] --task TASK [--config CONFIG.json] [--db FILE] [options]",
        "Applies the configuration (inference stage: weight quantization, KV cache type and\n"
        "heads; see README), runs the task for its accuracy, then times a prompt of P tokens\n"
        "and G generated ones until the median's 95% CI is within --rel-ci, and records the\n"
        "peak memory and the energy (RAPL or NVML when readable, else the hardware profile's\n"
        "power model, and the record says which). The record is stored under a key of model,\n"
        "task, hardware, configuration and engine version: asking again returns it without\n"
        "running (unless --force). Bundled tasks: tasks/*.json (tinystories-ppl, lambada, ...).",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!task_arg) return cli_fail("eval", "no task given (--task SPEC.json or a bundled name)");
    if (rel_ci < 0 || max_power < 0 || threads < 0 || lp->n_prompt < 1 || lp->n_gen < 1 ||
        lp->warmup < 0 || lp->min_reps < 1 || lp->max_reps < lp->min_reps)
        return cli_fail("eval", "bad latency or limit option (counts must be positive, "
                                "--max-reps >= --min-reps)");
    if (rel_ci > 0) lp->rel_ci = rel_ci;
    if (max_mem && (req.max_memory_bytes = cli_parse_size(max_mem)) < 0)
        return cli_fail("eval", "--max-memory '%s' is not a size (e.g. 512M, 8G)", max_mem);
    if (strcmp(energy, "auto") && strcmp(energy, "model"))
        return cli_fail("eval", "--energy must be auto or model");
    if (!(evaluator_timeout >= 0)) return cli_fail("eval", "--evaluator-timeout must be >= 0");
    if (req.evaluator && !*req.evaluator) return cli_fail("eval", "--evaluator is empty");
    req.evaluator_timeout_s = evaluator_timeout;

    aellm_task *task = NULL;
    aellm_config config;
    aellm_store *store = NULL;
    char *rec = NULL;
    int cached = 0, status = 1;
    if (cli_open_task("eval", &task, task_arg)) goto done;
    if (config_path ? aellm_config_load(&config, config_path)
                    : (aellm_config_default(&config), 0)) {
        cli_fail_last("eval");
        goto done;
    }
    req.model_path = model;
    req.tokenizer_path = tok;
    req.lora_path = lora;
    req.lora_scale = lora_scale;
    if (lora && !cli_is_file(lora)) {
        cli_fail("eval", "%s: no such adapter file", lora);
        goto done;
    }
    if (cli_model_path("eval", &req.model_path, &req.tokenizer_path)) goto done;
    aellm_model *probe = NULL; /* an unreadable model fails before a store is created */
    if (cli_open_model("eval", &probe, req.model_path, req.tokenizer_path)) goto done;
    aellm_model_free(probe);
    req.task = task;
    req.config = &config;
    req.n_threads = threads;
    req.max_power_w = max_power;
    req.force = force;
    req.paired = paired;
    req.energy_sources = !strcmp(energy, "model") ? AELLM_ENERGY_MODEL : 0;
    req.progress = cli_eval_progress;
    if (!no_store && aellm_store_open(&store, db)) {
        cli_fail_last("eval");
        goto done;
    }
    if (aellm_evaluate(&req, store, &rec, &cached)) {
        cli_fail_last("eval");
        goto done;
    }
    cJSON *r = cJSON_Parse(rec);
    if (!r) {
        cli_fail("eval", "internal error: the record is not JSON");
        goto done;
    }
    cJSON_AddBoolToObject(r, "cached", cached);
    if (json)
        cli_print_json(r);
    else {
        print_text(r, cached, no_store ? NULL : db);
        cJSON_Delete(r);
    }
    status = 0;
done:
    free(rec);
    aellm_store_close(store);
    aellm_task_free(task);
    return status;
}
