/* The evaluation pipeline: identities and key first (so a stored record is
 * returned without loading anything heavy), then apply, check the limits,
 * measure accuracy, latency, memory and energy, and store one record. */
#include "aellm/evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aellm/energy.h"
#include "aellm/external.h"
#include "aellm/hardware.h"
#include "aellm/memory.h"
#include "aellm/train.h" /* aellm_model_apply_lora */
#include "core/atomic.h"
#include "core/error.h"
#include "measure/measure_internal.h"
#include "engine_version.h" /* generated: AELLM_ENGINE_VERSION */
#include "core/hash.h"
#include "core/json.h"
#include "kernels/kernels.h"
#include "techniques/stage.h"

const char *aellm_engine_version(void)
{
    return AELLM_ENGINE_VERSION;
}

void aellm_eval_request_default(aellm_eval_request *r)
{
    memset(r, 0, sizeof(*r));
    aellm_latency_params_default(&r->latency);
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(const aellm_eval_request *r, const char *phase, int64_t done, int64_t total)
{
    if (r->progress) r->progress(phase, done, total, r->progress_user);
}

/* Everything one evaluation holds, released in one place. */
typedef struct {
    const aellm_eval_request *req;
    aellm_config cfg;     /* the request's, with the task's training file filled in */
    cJSON *stage_reports; /* stage name -> its report with its cost, for the record */
    cJSON *experts;       /* mixture of experts: active size and the task's expert load */
    aellm_model *model;   /* the model, then each stage's output in turn */
    aellm_engine *engine;
    aellm_lm *lm;
    aellm_kld_base *kld_base; /* kld tasks: the unmodified model's distributions */
    char kld_path[4096];      /* where they were read or written; "" when not kept */
    int kld_cached;           /* read from kld_path rather than computed in this run */
    aellm_energy_meter *meter;
    aellm_hw_profile hw;
    char file_hash[AELLM_HASH_HEX]; /* the model file's SHA-256 */
    char lora_hash[AELLM_HASH_HEX]; /* the adapter's, "" without one */
    char model_hash[AELLM_HASH_HEX], task_hash[AELLM_HASH_HEX], hw_hash[AELLM_HASH_HEX],
        config_hash[AELLM_HASH_HEX], key[AELLM_HASH_HEX];
    char *model_json, *task_json, *hw_json, *config_json, *protocol_json;
    char *engine_id; /* "external:<command>" for an external evaluator */
    int is_default;  /* the configuration computes what the model as it is does */
    aellm_task_result task;
    aellm_latency_result latency;
    /* paired protocol: the pairs, per-run energy of each side (self, reference),
       and the reference's stored figures that the ratios scale */
    aellm_latency_paired_result paired;
    double *run_joules[2];
    struct {
        double total, prefill, decode, joules;
        char key[AELLM_HASH_HEX];
    } anchor;
    double energy_sum, energy_sq;
    int energy_n;
    aellm_mem_stats mem;
    size_t rss_peak;
    double started_at, finished_at;
    double default_weight_bytes; /* the model's before any stage: the compression rate's base */
    double mem_bw, peak_f32;     /* this machine's, for the utilisation metrics */
    char peaks_source[160];      /* where they came from */
} eval_state;

static void state_free(eval_state *s)
{
    aellm_task_result_free(&s->task);
    aellm_kld_base_free(s->kld_base);
    aellm_energy_meter_free(s->meter);
    aellm_lm_engine_free(s->lm);
    aellm_engine_free(s->engine);
    cJSON_Delete(s->experts);
    cJSON_Delete(s->stage_reports);
    aellm_model_free(s->model);
    free(s->model_json);
    free(s->task_json);
    free(s->hw_json);
    free(s->config_json);
    free(s->protocol_json);
    free(s->engine_id);
    free(s->run_joules[0]);
    free(s->run_joules[1]);
}

static char *model_descriptor(const aellm_model *m, const char *path)
{
    const aellm_model_config *c = aellm_model_config_get(m);
    const char *base = strrchr(path, '/');
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", base ? base + 1 : path);
    cJSON_AddNumberToObject(j, "n_params", (double)aellm_model_n_params(m));
    cJSON_AddNumberToObject(j, "n_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "dim", c->dim);
    cJSON_AddNumberToObject(j, "hidden_dim", c->hidden_dim);
    cJSON_AddNumberToObject(j, "n_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "n_kv_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "n_ctx", c->seq_len);
    cJSON_AddStringToObject(j, "weight_type",
                            aellm_dtype_traits_get(aellm_model_weight_type(m))->name);
    cJSON_AddNumberToObject(j, "weight_bytes", (double)aellm_model_weight_bytes(m));
    if (c->n_experts) { /* absent when dense: dense models keep their identity */
        cJSON_AddNumberToObject(j, "n_experts", c->n_experts);
        cJSON_AddNumberToObject(j, "n_experts_used", c->n_experts_used);
    }
    char *s = aellm_json_canonical(j);
    cJSON_Delete(j);
    return s;
}

/* How latency and energy are measured is part of what a record means: a
 * different prompt length, or pairing, is a different evaluation. */
static int identify_protocol(eval_state *s)
{
    const aellm_latency_params *p = &s->req->latency;
    aellm_config def;
    aellm_config_default(&def);
    char *def_json = aellm_config_canonical(&def, s->model);
    if (!def_json) return aellm_error_oom("the default configuration", 0);
    s->is_default = !strcmp(def_json, s->config_json);
    free(def_json);
    cJSON *j = cJSON_CreateObject(), *lat = cJSON_AddObjectToObject(j, "latency");
    cJSON_AddNumberToObject(lat, "n_prompt", p->n_prompt);
    cJSON_AddNumberToObject(lat, "n_gen", p->n_gen);
    cJSON_AddNumberToObject(lat, "warmup", p->warmup);
    if (s->req->evaluator)
        cJSON_AddStringToObject(j, "evaluator", s->req->evaluator);
    else if (s->req->paired)
        cJSON_AddStringToObject(lat, "paired_with", "default configuration");
    else
        cJSON_AddNullToObject(lat, "paired_with");
    s->protocol_json = aellm_json_canonical(j);
    cJSON_Delete(j);
    return s->protocol_json ? 0 : aellm_error_oom("the measurement protocol", 0);
}

/* The request's model as it runs: the file, with the adapter when given. */
static int load_model(const aellm_eval_request *r, aellm_model **out)
{
    int rc = aellm_model_load(out, r->model_path, r->tokenizer_path);
    if (!rc && r->lora_path &&
        (rc = aellm_model_apply_lora(*out, r->lora_path, r->lora_scale ? r->lora_scale : 1.0f))) {
        aellm_model_free(*out);
        *out = NULL;
    }
    return rc;
}

/* The model's identity: the file's hash, and with an adapter the hash of
 * (file, adapter, scale). */
static int identify_model(eval_state *s)
{
    const aellm_eval_request *r = s->req;
    int rc = 0;
    if (r->model_hash)
        snprintf(s->file_hash, sizeof(s->file_hash), "%s", r->model_hash);
    else {
        progress(r, "hash", 0, 1);
        if ((rc = aellm_hash_file(r->model_path, s->file_hash))) return rc;
    }
    snprintf(s->model_hash, sizeof(s->model_hash), "%s", s->file_hash);
    if (!r->lora_path) return 0;
    if ((rc = aellm_hash_file(r->lora_path, s->lora_hash))) return rc;
    char id[256];
    snprintf(id, sizeof(id), "{\"lora\":\"%s\",\"model\":\"%s\",\"scale\":%.9g}", s->lora_hash,
             s->file_hash, (double)(r->lora_scale ? r->lora_scale : 1.0f));
    aellm_hash_str(id, s->model_hash);
    return 0;
}

/* Who measures: aellm's engine (its version) or an external command. */
static const char *engine_identity(eval_state *s)
{
    if (!s->req->evaluator) return aellm_engine_version();
    if (!s->engine_id) {
        size_t n = strlen(s->req->evaluator) + 16;
        if ((s->engine_id = malloc(n))) snprintf(s->engine_id, n, "external:%s", s->req->evaluator);
    }
    return s->engine_id ? s->engine_id : "external";
}

/* Model, task, hardware and configuration identities and the key. */
static int identify(eval_state *s)
{
    const aellm_eval_request *r = s->req;
    int rc;
    if ((rc = identify_model(s))) return rc;
    if ((rc = load_model(r, &s->model))) return rc;
    s->default_weight_bytes = (double)aellm_model_weight_bytes(s->model);
    if (!aellm_model_tokenizer(s->model))
        return aellm_error_set(AELLM_EINVAL, "%s: the model has no tokenizer (give one)",
                               r->model_path);
    s->cfg = *r->config;
    const char *train = r->task ? aellm_task_train_path(r->task) : NULL; /* apply: optional */
    if (aellm_config_finetunes(&s->cfg) && !s->cfg.ft_data[0] && train)
        snprintf(s->cfg.ft_data, sizeof(s->cfg.ft_data), "%s", train);
    int arch_reads = s->cfg.arch_uptrain_steps > 0 ||
                     (s->cfg.arch_moe_experts > 1 && !strcmp(s->cfg.arch_moe_method, "split")) ||
                     !strcmp(s->cfg.arch_attention, "mla");
    if (aellm_config_converts(&s->cfg) && arch_reads && !s->cfg.arch_uptrain_data[0] && train)
        snprintf(s->cfg.arch_uptrain_data, sizeof(s->cfg.arch_uptrain_data), "%s", train);
    if ((rc = aellm_config_check(&s->cfg, s->model))) return rc;
    if ((rc = aellm_hw_detect(&s->hw, 0, r->n_threads))) return rc;
    s->model_json = model_descriptor(s->model, r->model_path);
    s->task_json = r->task ? aellm_task_canonical_json(r->task) : strdup("null");
    s->hw_json = aellm_hw_identity_json(&s->hw);
    s->config_json = aellm_config_canonical(&s->cfg, s->model);
    if (!s->model_json || !s->task_json || !s->hw_json || !s->config_json)
        return aellm_error_last()[0] ? AELLM_ERROR : aellm_error_oom("evaluation identities", 0);
    aellm_hash_str(s->task_json, s->task_hash);
    aellm_hash_str(s->hw_json, s->hw_hash);
    aellm_hash_str(s->config_json, s->config_hash);
    if ((rc = identify_protocol(s))) return rc;
    char protocol_hash[AELLM_HASH_HEX];
    aellm_hash_str(s->protocol_json, protocol_hash);
    aellm_store_key(s->model_hash, s->task_hash, s->hw_hash, s->config_hash, engine_identity(s),
                    protocol_hash, s->key);
    return 0;
}

static const char *human_bytes(double b, char *buf, size_t cap)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) b /= 1024, i++;
    snprintf(buf, cap, "%.1f %s", b, unit[i]);
    return buf;
}

static int memory_limit(const eval_state *s, double need)
{
    const aellm_eval_request *r = s->req;
    double limit = r->max_memory_bytes > 0 ? r->max_memory_bytes : s->hw.mem_bytes;
    char a[32], b[32];
    if (limit > 0 && need > limit)
        return aellm_error_set(AELLM_EINVAL,
                               "configuration needs %s (weights, KV cache, activations) but the "
                               "memory limit is %s",
                               human_bytes(need, a, sizeof(a)), human_bytes(limit, b, sizeof(b)));
    return 0;
}

static int power_limit(const eval_state *s)
{
    const aellm_eval_request *r = s->req;
    if (r->max_power_w > 0 && s->hw.idle_w > r->max_power_w)
        return aellm_error_set(AELLM_EINVAL,
                               "power limit %.1f W is below this machine's idle draw (%.1f W)",
                               r->max_power_w, s->hw.idle_w);
    return 0;
}

/* Memory is checked on what the configured engine really holds, before any
 * measurement: weights (as applied) plus KV cache, activations and scratch. */
static int check_limits(eval_state *s)
{
    aellm_mem_stats now;
    aellm_mem_stats_get(&now);
    int rc = memory_limit(s, (double)now.current_total);
    return rc ? rc : power_limit(s);
}

/* A stored record answers only if it meets this request's limits too. */
static int check_cached(eval_state *s, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    const cJSON *peak = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "memory"), "peak_bytes");
    int rc = cJSON_IsNumber(peak) ? memory_limit(s, peak->valuedouble)
                                  : aellm_error_set(AELLM_EFORMAT,
                                                    "stored record %.16s has no "
                                                    "memory.peak_bytes",
                                                    s->key);
    cJSON_Delete(j);
    return rc ? rc : power_limit(s);
}

/* ---- a kld task's base: the model as it is, under the default
 * configuration, computed once per model, text and engine and kept in the
 * cache folder ---- */
static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) return -1;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        if (!(*p = c)) break;
    }
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

static int cache_dir(const aellm_eval_request *r, char *out, size_t cap)
{
    const char *env = getenv("AELLM_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n = r->cache_dir    ? snprintf(out, cap, "%s", r->cache_dir)
            : env && *env   ? snprintf(out, cap, "%s", env)
            : xdg && *xdg   ? snprintf(out, cap, "%s/aellm", xdg)
            : home && *home ? snprintf(out, cap, "%s/.cache/aellm", home)
                            : -1;
    return n > 0 && (size_t)n < cap && mkdir_p(out) == 0 ? 0 : -1;
}

static void base_progress(int64_t done, int64_t total, void *user)
{
    progress(user, "base", done, total);
}

static int compute_kld_base(eval_state *s)
{
    const aellm_eval_request *r = s->req;
    aellm_config def;
    aellm_config_default(&def);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_threads = r->n_threads;
    aellm_model *changed = NULL;
    aellm_engine *e = NULL;
    aellm_lm *lm = NULL;
    int rc = aellm_config_apply(&def, s->model, &changed, &ep, NULL, NULL);
    if (!rc) rc = aellm_engine_new(&e, changed ? changed : s->model, &ep);
    if (!rc) rc = aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(s->model));
    if (!rc) rc = aellm_kld_base_compute(&s->kld_base, r->task, lm, base_progress, (void *)r);
    aellm_lm_engine_free(lm);
    aellm_engine_free(e);
    aellm_model_free(changed);
    return rc;
}

/* SHA-256 of j's canonical form with the engine version added (an engine
 * that computes differently makes everything again); frees j. */
static int cache_key(cJSON *j, char key[AELLM_HASH_HEX])
{
    cJSON_AddStringToObject(j, "engine", aellm_engine_version());
    char *id = aellm_json_canonical(j);
    cJSON_Delete(j);
    if (!id) return aellm_error_oom("a cache key", 0);
    aellm_hash_str(id, key);
    free(id);
    return 0;
}

/* What identifies the model a cached artefact was made from: the model's
 * identity (file, and adapter) and the tokenizer file (another one cuts other
 * tokens). */
static int add_model_identity(cJSON *j, const eval_state *s)
{
    char tok[AELLM_HASH_HEX] = "";
    const char *tp = s->req->tokenizer_path;
    int rc = tp ? aellm_hash_file(tp, tok) : 0;
    if (rc) return rc;
    cJSON_AddStringToObject(j, "model", s->model_hash);
    cJSON_AddStringToObject(j, "tokenizer", tok);
    return 0;
}

/* The cache key of a kld base: model, tokenizer, task (text and windows),
 * engine. */
static int kld_base_key(const eval_state *s, char key[AELLM_HASH_HEX])
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "what", "kld base");
    int rc = add_model_identity(j, s);
    if (rc) return cJSON_Delete(j), rc;
    cJSON_AddStringToObject(j, "task", s->task_hash);
    return cache_key(j, key);
}

static int find_kld_base(eval_state *s)
{
    char dir[3900], key[AELLM_HASH_HEX];
    int rc = kld_base_key(s, key);
    if (rc) return rc;
    s->kld_path[0] = '\0';
    if (cache_dir(s->req, dir, sizeof(dir)) == 0) {
        snprintf(s->kld_path, sizeof(s->kld_path), "%s/kld-base-%.32s.bin", dir, key);
        if (aellm_kld_base_load(&s->kld_base, s->kld_path) == 0) {
            s->kld_cached = 1;
            return 0;
        }
    }
    rc = compute_kld_base(s); /* absent, or unreadable: made again */
    if (!rc && s->kld_path[0] && aellm_kld_base_save(s->kld_base, s->kld_path))
        s->kld_path[0] = '\0'; /* not kept: the next evaluation computes it again */
    return rc;
}

/* ---- the stages (src/techniques/stage.h), in order: each output is keyed
 * by the key of its input and the stage's canonical configuration; the
 * outputs of costly stages (training) are kept in the cache folder as GGUF
 * with the stage's report beside it, so that the inference-stage variants
 * of one fine-tuned model reuse it ---- */
static int model_key(const eval_state *s, char key[AELLM_HASH_HEX])
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "what", "model");
    int rc = add_model_identity(j, s);
    if (rc) return cJSON_Delete(j), rc;
    return cache_key(j, key);
}

/* key <- the key of what `st` makes of the model that `key` names. */
static int stage_key(const eval_state *s, const aellm_stage *st, char key[AELLM_HASH_HEX])
{
    char *canon = st->canonical(&s->cfg, s->model);
    if (!canon) return AELLM_ERROR;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "what", "stage output");
    cJSON_AddStringToObject(j, "stage", st->name);
    cJSON_AddStringToObject(j, "input", key);
    cJSON_AddRawToObject(j, "config", canon);
    free(canon);
    return cache_key(j, key);
}

static void stage_progress(const char *phase, int64_t done, int64_t total, void *user)
{
    progress(user, phase, done, total);
}

/* Runs one stage with its wall time and energy measured around it. */
static int run_measured(eval_state *s, const aellm_stage *st, const aellm_stage_env *env,
                        cJSON **report)
{
    aellm_energy_meter *meter = NULL;
    aellm_energy_reading e = {0};
    double t0 = unix_now();
    int rc = aellm_energy_meter_new(&meter, &s->hw, s->req->energy_sources);
    if (!rc) rc = aellm_energy_meter_start(meter);
    if (!rc) rc = st->run(&s->cfg, &s->model, env, report);
    if (!rc) rc = aellm_energy_meter_stop(meter, &e);
    if (!rc && *report) {
        if (!cJSON_GetObjectItem(*report, "wall_s"))
            cJSON_AddNumberToObject(*report, "wall_s", unix_now() - t0);
        cJSON_AddNumberToObject(*report, "energy_j", e.joules);
        cJSON_AddStringToObject(*report, "energy_source", aellm_energy_meter_source_name(meter));
        cJSON_AddBoolToObject(*report, "energy_measured",
                              !(aellm_energy_meter_sources(meter) & AELLM_ENERGY_MODEL));
    }
    aellm_energy_meter_free(meter);
    return rc;
}

static void kept_paths(const char *dir, const aellm_stage *st, const char *key, char *model,
                       char *report, size_t cap)
{
    snprintf(model, cap, "%s/%s-%.32s.gguf", dir, st->name, key);
    snprintf(report, cap, "%s/%s-%.32s.json", dir, st->name, key);
}

/* A kept output: the model and the report of the run that made it. */
static int kept_load(eval_state *s, const char *model_path, const char *report_path, cJSON **report)
{
    aellm_model *m = NULL;
    if (aellm_json_load(report, report_path)) return -1;
    if (!cJSON_IsObject(*report) || aellm_model_load(&m, model_path, NULL)) {
        cJSON_Delete(*report);
        *report = NULL;
        return -1;
    }
    aellm_model_free(s->model);
    s->model = m;
    return 0;
}

/* The report after the model: a report always has its model. Not kept
   when it cannot be written: the next evaluation makes it again. */
static void kept_save(const aellm_model *m, const cJSON *report, const char *model_path,
                      const char *report_path)
{
    if (aellm_model_save_gguf(m, model_path, -1)) return;
    char *text = report ? cJSON_Print(report) : strdup("{}");
    aellm_atomic a;
    if (text && aellm_atomic_open(&a, report_path) == 0) {
        aellm_atomic_write(&a, text, strlen(text));
        aellm_atomic_commit(&a);
    }
    free(text);
}

static int run_stage(eval_state *s, const aellm_stage *st, const aellm_stage_env *env,
                     char key[AELLM_HASH_HEX])
{
    char dir[3800], model_path[4096], report_path[4096];
    int rc = stage_key(s, st, key);
    if (rc) return rc;
    int keep = st->keep && cache_dir(s->req, dir, sizeof(dir)) == 0, reused = 0;
    if (keep) kept_paths(dir, st, key, model_path, report_path, sizeof(model_path));
    cJSON *report = NULL;
    if (keep && kept_load(s, model_path, report_path, &report) == 0)
        reused = 1;
    else if ((rc = run_measured(s, st, env, &report)))
        return rc;
    else if (keep)
        kept_save(s->model, report, model_path, report_path);
    if (report) {
        cJSON_AddBoolToObject(report, "reused", reused);
        cJSON_AddItemToObject(s->stage_reports, st->name, report);
    }
    return 0;
}

static int run_stages(eval_state *s, aellm_engine_params *ep)
{
    aellm_stage_env env = {.n_threads = s->req->n_threads,
                           .ep = ep,
                           .progress = stage_progress,
                           .user = (void *)s->req};
    char key[AELLM_HASH_HEX];
    int n, rc = model_key(s, key);
    const aellm_stage *const *list = aellm_stages(&n);
    if (!rc && !(s->stage_reports = cJSON_CreateObject())) rc = aellm_error_oom("stage reports", 0);
    for (int i = 0; i < n && !rc; i++)
        if (list[i]->applies(&s->cfg)) rc = run_stage(s, list[i], &env, key);
    return rc;
}

static int prepare(eval_state *s)
{
    const aellm_eval_request *r = s->req;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_threads = r->n_threads;
    int rc = run_stages(s, &ep);
    if (rc) return rc;
    /* from here the model is only run (the stages kept what they saved) */
    if ((rc = aellm_model_repack(s->model, NULL))) return rc;
    if ((rc = aellm_engine_new(&s->engine, s->model, &ep))) return rc;
    if ((rc = aellm_lm_engine_new(&s->lm, s->engine, aellm_model_tokenizer(s->model)))) return rc;
    return check_limits(s);
}

static void task_progress(int64_t done, int64_t total, void *user)
{
    progress(user, "task", done, total);
}

/* Energy per request from the counters between consecutive repetitions;
 * the stretch before the first timed one also holds the warm-up, so it is
 * not used. */
static void latency_progress(int rep, const aellm_latency_result *sofar, void *user)
{
    eval_state *s = user;
    aellm_energy_reading e;
    if (aellm_energy_meter_stop(s->meter, &e) == 0 && rep > 1) {
        s->energy_sum += e.joules;
        s->energy_sq += e.joules * e.joules;
        s->energy_n++;
    }
    aellm_energy_meter_start(s->meter);
    progress(s->req, "latency", rep, sofar->reps > rep ? sofar->reps : rep);
}

/* Energy of each run of a pair, read from the counters between runs; the
 * warm-ups (rep 0) are not kept. */
static void pair_progress(int rep, int side, void *user)
{
    eval_state *s = user;
    aellm_energy_reading e;
    if (aellm_energy_meter_stop(s->meter, &e) == 0 && rep > 0 && rep <= s->req->latency.max_reps)
        s->run_joules[side][rep - 1] = e.joules;
    aellm_energy_meter_start(s->meter);
    if (side == 1 || rep == 0) progress(s->req, "latency", rep, s->req->latency.max_reps);
}

/* The reference is the model as it is, loaded again beside the
 * configuration; it exists only while timing, after memory was read. */
static int measure_paired(eval_state *s, const aellm_latency_params *lp)
{
    const aellm_eval_request *r = s->req;
    size_t n = (size_t)(lp->max_reps > 0 ? lp->max_reps : 1);
    s->run_joules[0] = calloc(n, sizeof(double));
    s->run_joules[1] = calloc(n, sizeof(double));
    if (!s->run_joules[0] || !s->run_joules[1])
        return aellm_error_oom("per-run energy", 2 * n * sizeof(double));
    aellm_model *ref_model = NULL;
    aellm_engine *ref = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_threads = r->n_threads;
    int rc = load_model(r, &ref_model);
    if (!rc) rc = aellm_model_repack(ref_model, NULL); /* as the configuration's model is */
    if (!rc) rc = aellm_engine_new(&ref, ref_model, &ep);
    if (!rc) rc = aellm_latency_engine_paired(s->engine, ref, lp, pair_progress, s, &s->paired);
    aellm_engine_free(ref);
    aellm_model_free(ref_model);
    if (rc) return rc;
    s->latency = s->paired.self;
    for (int i = 0; i < s->paired.reps; i++) {
        s->energy_sum += s->run_joules[0][i];
        s->energy_sq += s->run_joules[0][i] * s->run_joules[0][i];
    }
    s->energy_n = s->paired.reps;
    return 0;
}

/* The model's experts and how evenly the accuracy task's tokens spread over
 * them: per layer the busiest expert's count over the mean (1 = even, E =
 * one expert took everything), and its mean and worst over layers. */
static cJSON *experts_json(const eval_state *s)
{
    const aellm_model_config *c = aellm_model_config_get(s->model);
    int E = c->n_experts, L = c->n_layers;
    unsigned long long *n = calloc((size_t)L * E, sizeof(*n));
    cJSON *j = n ? cJSON_CreateObject() : NULL;
    if (!j) return free(n), NULL;
    aellm_engine_expert_load(s->engine, n);
    cJSON_AddNumberToObject(j, "experts", E);
    cJSON_AddNumberToObject(j, "top_k", c->n_experts_used);
    cJSON_AddNumberToObject(j, "active_params", (double)aellm_model_active_params(s->model));
    cJSON_AddNumberToObject(j, "active_weight_bytes", (double)aellm_model_active_bytes(s->model));
    size_t ffn_read, ffn_all;
    aellm_model_ffn_bytes(s->model, &ffn_read, &ffn_all);
    cJSON_AddNumberToObject(j, "ffn_bytes_per_token", (double)ffn_read);
    cJSON_AddNumberToObject(j, "ffn_bytes_all_experts", (double)ffn_all);
    cJSON *layers = cJSON_AddArrayToObject(j, "load_by_layer");
    double mean_ratio = 0, worst = 0, routed = 0;
    for (int l = 0; l < L; l++) {
        cJSON *row = cJSON_CreateArray();
        double sum = 0, most = 0;
        for (int e = 0; e < E; e++) {
            double v = (double)n[(size_t)l * E + e];
            cJSON_AddItemToArray(row, cJSON_CreateNumber(v));
            sum += v, most = v > most ? v : most;
        }
        cJSON_AddItemToArray(layers, row);
        double ratio = sum > 0 ? most / (sum / E) : 0;
        mean_ratio += ratio / L, worst = ratio > worst ? ratio : worst, routed += sum;
    }
    cJSON_AddNumberToObject(j, "routed_slots", routed);
    cJSON_AddNumberToObject(j, "load_max_over_mean", mean_ratio);
    cJSON_AddNumberToObject(j, "load_max_over_mean_worst_layer", worst);
    cJSON_AddStringToObject(j, "load_source", "the accuracy task's tokens through the engine");
    free(n);
    return j;
}

static int measure(eval_state *s)
{
    const aellm_eval_request *r = s->req;
    int rc;
    aellm_mem_reset_peak();
    s->started_at = unix_now();
    rc = s->kld_base
             ? aellm_task_run_kld(r->task, s->lm, s->kld_base, task_progress, (void *)r, &s->task)
             : aellm_task_run(r->task, s->lm, task_progress, (void *)r, &s->task);
    if (rc) return rc;
    if (aellm_model_config_get(s->model)->n_experts && !(s->experts = experts_json(s)))
        return aellm_error_oom("the expert load", 0);
    int pair = r->paired && !s->is_default;
    if (pair) { /* before the reference is loaded: the configuration's own figures */
        aellm_mem_stats_get(&s->mem);
        s->rss_peak = aellm_mem_process_peak();
    }
    if ((rc = aellm_energy_meter_new(&s->meter, &s->hw, r->energy_sources))) return rc;
    if ((rc = aellm_energy_meter_start(s->meter))) return rc;
    aellm_latency_params lp = r->latency;
    if (lp.min_reps < 2) lp.min_reps = 2; /* one stretch per request beside the first */
    if (pair)
        rc = measure_paired(s, &lp);
    else
        rc = aellm_latency_engine(s->engine, &lp, latency_progress, s, &s->latency);
    if (rc) return rc;
    if (!pair) {
        aellm_mem_stats_get(&s->mem);
        s->rss_peak = aellm_mem_process_peak();
    }
    s->finished_at = unix_now();
    char dir[4096]; /* after the timing, which a bandwidth run would disturb */
    aellm_hw_profile m = s->hw;
    rc = aellm_machine_peaks(&m, cache_dir(r, dir, sizeof(dir)) == 0 ? dir : NULL, s->hw_hash,
                             r->n_threads, s->peaks_source, sizeof(s->peaks_source));
    s->mem_bw = m.mem_bw, s->peak_f32 = m.peak_f32;
    return rc;
}

/* The default configuration's record under the same protocol: what the
 * ratios of a paired measurement scale. Evaluated now if the store lacks it,
 * without this request's limits (it is the yardstick, not a candidate). */
static int find_anchor(eval_state *s, aellm_store *store)
{
    aellm_config def;
    aellm_config_default(&def);
    aellm_eval_request r = *s->req;
    r.config = &def;
    r.force = 0;
    r.max_memory_bytes = 0;
    r.max_power_w = 0;
    r.model_hash = s->file_hash;
    char *json = NULL;
    int cached = 0;
    /* this evaluation's model must not count in the default's memory */
    aellm_model_free(s->model);
    s->model = NULL;
    int rc = aellm_evaluate(&r, store, &json, &cached);
    if (!rc) rc = load_model(&r, &s->model);
    if (rc) {
        free(json);
        return rc;
    }
    cJSON *j = cJSON_Parse(json);
    const cJSON *lat = cJSON_GetObjectItem(j, "latency"), *en = cJSON_GetObjectItem(j, "energy");
    const cJSON *key = cJSON_GetObjectItem(j, "key");
    const cJSON *v[4] = {cJSON_GetObjectItem(cJSON_GetObjectItem(lat, "total_s"), "median"),
                         cJSON_GetObjectItem(cJSON_GetObjectItem(lat, "prefill_s"), "median"),
                         cJSON_GetObjectItem(cJSON_GetObjectItem(lat, "decode_s"), "median"),
                         cJSON_GetObjectItem(en, "joules_per_request")};
    int ok = cJSON_IsString(key);
    for (int i = 0; i < 4; i++) ok = ok && cJSON_IsNumber(v[i]);
    if (ok) {
        s->anchor.total = v[0]->valuedouble;
        s->anchor.prefill = v[1]->valuedouble;
        s->anchor.decode = v[2]->valuedouble;
        s->anchor.joules = v[3]->valuedouble;
        snprintf(s->anchor.key, sizeof(s->anchor.key), "%s", key->valuestring);
    }
    cJSON_Delete(j);
    free(json);
    return ok ? 0
              : aellm_error_set(AELLM_EFORMAT, "the default configuration's record lacks its "
                                               "latency or energy");
}

/* Without a store the reference's figures of this very run are the scale. */
static void anchor_from_run(eval_state *s)
{
    s->anchor.total = s->paired.reference.total.median;
    s->anchor.prefill = s->paired.reference.prefill.median;
    s->anchor.decode = s->paired.reference.decode.median;
    double sum = 0;
    for (int i = 0; i < s->paired.reps; i++) sum += s->run_joules[1][i];
    s->anchor.joules = s->paired.reps ? sum / s->paired.reps : 0;
    s->anchor.key[0] = 0;
}

static void add_summary(cJSON *o, const char *name, const aellm_latency_summary *x)
{
    cJSON *j = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(j, "median", x->median);
    cJSON_AddNumberToObject(j, "p10", x->p10);
    cJSON_AddNumberToObject(j, "p90", x->p90);
    cJSON_AddNumberToObject(j, "ci95_lo", x->ci_lo);
    cJSON_AddNumberToObject(j, "ci95_hi", x->ci_hi);
}

static void add_parsed(cJSON *o, const char *name, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    cJSON_AddItemToObject(o, name, j ? j : cJSON_CreateNull());
}

static double energy_mean(const eval_state *s)
{
    return s->energy_n ? s->energy_sum / s->energy_n : 0;
}

static double energy_std(const eval_state *s)
{
    if (s->energy_n < 2) return 0;
    double m = energy_mean(s);
    double v = (s->energy_sq - s->energy_n * m * m) / (s->energy_n - 1);
    return v > 0 ? sqrt(v) : 0;
}

static cJSON *accuracy_json(const eval_state *s)
{
    const aellm_task_result *t = &s->task;
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "metric", t->metrics[0].name);
    cJSON_AddNumberToObject(a, "value", t->metrics[0].value);
    cJSON_AddNumberToObject(a, "stderr", t->metrics[0].stderr_);
    cJSON_AddBoolToObject(a, "higher_is_better", t->higher_is_better);
    cJSON_AddNumberToObject(a, "items", (double)t->n_items);
    cJSON_AddNumberToObject(a, "seconds", t->seconds);
    if (s->kld_base) {
        cJSON *b = cJSON_AddObjectToObject(a, "reference");
        cJSON_AddStringToObject(b, "what",
                                "the unmodified model's next-token distributions (default "
                                "configuration), same windows");
        cJSON_AddNumberToObject(b, "tokens", (double)aellm_kld_base_n_tokens(s->kld_base));
        cJSON_AddStringToObject(b, "obtained", s->kld_cached ? "read from the cache" : "computed");
        if (s->kld_path[0])
            cJSON_AddStringToObject(b, "cache", s->kld_path);
        else
            cJSON_AddNullToObject(b, "cache");
    }
    cJSON *all = cJSON_AddArrayToObject(a, "metrics");
    for (int i = 0; i < t->n_metrics; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", t->metrics[i].name);
        cJSON_AddNumberToObject(m, "value", t->metrics[i].value);
        cJSON_AddNumberToObject(m, "stderr", t->metrics[i].stderr_);
        cJSON_AddItemToArray(all, m);
    }
    return a;
}

static int pairs(const eval_state *s)
{
    return s->req->paired && !s->is_default;
}

/* The objectives as the record states them: scaled from the default's
 * stored figures by the per-pair ratios when paired, else as timed. */
static double objective_latency(const eval_state *s, int which)
{
    const aellm_latency_result *l = &s->latency;
    if (!pairs(s))
        return which == 0 ? l->total.median : which == 1 ? l->prefill.median : l->decode.median;
    const aellm_latency_paired_result *p = &s->paired;
    return which == 0   ? p->ratio_total.median * s->anchor.total
           : which == 1 ? p->ratio_prefill.median * s->anchor.prefill
                        : p->ratio_decode.median * s->anchor.decode;
}

static void energy_ratio(const eval_state *s, aellm_latency_summary *out)
{
    int n = s->paired.reps;
    double *q = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int i = 0; q && i < n; i++)
        q[i] = s->run_joules[1][i] > 0 ? s->run_joules[0][i] / s->run_joules[1][i] : 1.0;
    aellm_latency_summarize(q, q ? n : 0, out);
    free(q);
}

static double energy_mean(const eval_state *s);

static double objective_energy(const eval_state *s)
{
    if (!pairs(s)) return energy_mean(s);
    aellm_latency_summary q;
    energy_ratio(s, &q);
    return q.median * s->anchor.joules;
}

static const aellm_latency_summary unit_ratio = {1, 1, 1, 1, 1};

/* The paired section; the default configuration is its own reference. */
static cJSON *paired_latency_json(const eval_state *s)
{
    const aellm_latency_paired_result *p = &s->paired;
    int self = s->is_default;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "with",
                            self ? "itself (the default configuration)"
                                 : "the default configuration, interleaved");
    if (!self && s->anchor.key[0]) cJSON_AddStringToObject(o, "reference_key", s->anchor.key);
    cJSON_AddNumberToObject(o, "pairs", self ? s->latency.reps : p->reps);
    cJSON_AddBoolToObject(o, "converged", self ? s->latency.converged : p->converged);
    add_summary(o, "ratio_total", self ? &unit_ratio : &p->ratio_total);
    add_summary(o, "ratio_prefill", self ? &unit_ratio : &p->ratio_prefill);
    add_summary(o, "ratio_decode", self ? &unit_ratio : &p->ratio_decode);
    if (!self) add_summary(o, "reference_total_s_this_run", &p->reference.total);
    cJSON_AddNumberToObject(o, "reference_total_s",
                            self ? s->latency.total.median : s->anchor.total);
    cJSON_AddNumberToObject(o, "total_s", objective_latency(s, 0));
    cJSON_AddNumberToObject(o, "prefill_s", objective_latency(s, 1));
    cJSON_AddNumberToObject(o, "decode_s", objective_latency(s, 2));
    return o;
}

static cJSON *paired_energy_json(const eval_state *s)
{
    cJSON *o = cJSON_CreateObject();
    aellm_latency_summary q = unit_ratio;
    if (pairs(s)) energy_ratio(s, &q);
    add_summary(o, "ratio", &q);
    cJSON_AddNumberToObject(o, "reference_joules", pairs(s) ? s->anchor.joules : energy_mean(s));
    cJSON_AddNumberToObject(o, "joules_per_request", objective_energy(s));
    return o;
}

static cJSON *latency_json(const eval_state *s)
{
    const aellm_latency_result *l = &s->latency;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_prompt", l->n_prompt);
    cJSON_AddNumberToObject(o, "n_gen", l->n_gen);
    cJSON_AddNumberToObject(o, "warmup", s->req->latency.warmup);
    cJSON_AddNumberToObject(o, "reps", l->reps);
    cJSON_AddBoolToObject(o, "converged", l->converged);
    cJSON_AddNumberToObject(o, "rel_ci", s->req->latency.rel_ci);
    add_summary(o, "total_s", &l->total);
    add_summary(o, "prefill_s", &l->prefill);
    add_summary(o, "decode_s", &l->decode);
    cJSON_AddNumberToObject(o, "prefill_tokens_per_s", l->prefill_tps);
    cJSON_AddNumberToObject(o, "decode_tokens_per_s", l->decode_tps);
    if (s->req->paired) cJSON_AddItemToObject(o, "paired", paired_latency_json(s));
    return o;
}

static cJSON *memory_json(const eval_state *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "peak_bytes", (double)s->mem.peak_total);
    cJSON *k = cJSON_AddObjectToObject(o, "peak_by_kind");
    for (int i = 0; i < AELLM_MEM_KINDS; i++)
        cJSON_AddNumberToObject(k, aellm_mem_kind_name(i), (double)s->mem.peak[i]);
    cJSON_AddNumberToObject(o, "process_peak_rss_bytes", (double)s->rss_peak);
    cJSON_AddStringToObject(o, "source",
                            "aellm's allocator (weights incl. mapped files, KV cache, "
                            "activations, scratch) and the kernel's VmHWM, both over the "
                            "measurement");
    return o;
}

static cJSON *energy_json(const eval_state *s)
{
    cJSON *o = cJSON_CreateObject();
    const char *src = aellm_energy_meter_source_name(s->meter);
    cJSON_AddNumberToObject(o, "joules_per_request", energy_mean(s));
    cJSON_AddNumberToObject(o, "std_joules", energy_std(s));
    cJSON_AddNumberToObject(o, "samples", s->energy_n);
    cJSON_AddStringToObject(o, "source", src);
    cJSON_AddBoolToObject(o, "measured",
                          !(aellm_energy_meter_sources(s->meter) & AELLM_ENERGY_MODEL));
    double t = s->latency.total.median;
    cJSON_AddNumberToObject(o, "mean_power_w", t > 0 ? energy_mean(s) / t : 0);
    if (s->req->paired) cJSON_AddItemToObject(o, "paired", paired_energy_json(s));
    return o;
}

/* Each stage's report under its name, with what reuse means. */
static void add_stage_reports(cJSON *j, const eval_state *s)
{
    for (cJSON *r = s->stage_reports ? s->stage_reports->child : NULL; r; r = r->next) {
        cJSON *copy = cJSON_Duplicate(r, 1);
        cJSON_AddStringToObject(copy, "note",
                                "the cost of making this stage's model (that of its first run "
                                "when reused); the latency, memory and energy below are of "
                                "inference with the model it made");
        cJSON_AddItemToObject(j, r->string, copy);
    }
}

/* EfficientLLM's six metrics of the timed request (measure/efficiency.c). */
static cJSON *effllm_json(const eval_state *s)
{
    const aellm_model_config *c = aellm_model_config_get(s->model);
    aellm_effllm_inputs in = {.weight_bytes_per_token = (double)aellm_model_active_bytes(s->model),
                              .kv_bytes_per_position = (double)aellm_engine_kv_bytes(s->engine) /
                                                       aellm_engine_n_ctx(s->engine),
                              .flops_per_token = 2.0 * (double)aellm_model_active_params(s->model),
                              .attn_flops_per_pair = 4.0 * c->n_layers * c->n_heads * c->head_dim,
                              .n_prompt = s->req->latency.n_prompt,
                              .n_gen = s->req->latency.n_gen,
                              .total_s = objective_latency(s, 0),
                              .joules = objective_energy(s),
                              .weight_bytes = (double)aellm_model_weight_bytes(s->model),
                              .default_weight_bytes = s->default_weight_bytes,
                              .mem_bw = s->mem_bw,
                              .peak_flops = s->peak_f32,
                              .peaks_source = s->peaks_source};
    return aellm_effllm_json(&in);
}

/* What every record starts with: its key and provenance, the model, the
 * task and the configuration. */
static cJSON *record_head(const eval_state *s, const char *provenance)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "key", s->key);
    cJSON_AddStringToObject(j, "provenance", provenance);
    cJSON *model = cJSON_AddObjectToObject(j, "model");
    cJSON_AddStringToObject(model, "path", s->req->model_path);
    cJSON_AddStringToObject(model, "sha256", s->file_hash);
    if (s->req->lora_path) {
        cJSON *l = cJSON_AddObjectToObject(model, "lora");
        cJSON_AddStringToObject(l, "path", s->req->lora_path);
        cJSON_AddStringToObject(l, "sha256", s->lora_hash);
        cJSON_AddNumberToObject(l, "scale", s->req->lora_scale ? s->req->lora_scale : 1.0);
        cJSON_AddStringToObject(model, "identity", s->model_hash);
    }
    add_parsed(model, "shape", s->model_json);
    add_parsed(j, "task", s->task_json);
    cJSON_AddStringToObject(cJSON_GetObjectItem(j, "task"), "name", aellm_task_name(s->req->task));
    add_parsed(j, "config", s->config_json);
    return j;
}

/* What every record ends with (when and where it was made), as text; j is
 * consumed. */
static char *record_text(const eval_state *s, cJSON *j)
{
    cJSON_AddNumberToObject(j, "started_at", s->started_at);
    cJSON_AddNumberToObject(j, "finished_at", s->finished_at);
    if (s->req->placement_json) add_parsed(j, "placement", s->req->placement_json);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static char *record(const eval_state *s)
{
    cJSON *j = record_head(s, "measured");
    cJSON *hw = aellm_hw_to_json(&s->hw);
    cJSON_AddItemToObject(j, "hardware", hw);
    cJSON *eng = cJSON_AddObjectToObject(j, "engine");
    cJSON_AddStringToObject(eng, "version", aellm_engine_version());
    cJSON_AddNumberToObject(eng, "threads", aellm_engine_n_threads(s->engine));
    cJSON_AddStringToObject(eng, "isa", aellm_isa_name(aellm_cpu_isa()));
    add_stage_reports(j, s);
    if (s->experts) cJSON_AddItemToObject(j, "experts", cJSON_Duplicate(s->experts, 1));
    cJSON_AddItemToObject(j, "accuracy", accuracy_json(s));
    cJSON_AddItemToObject(j, "latency", latency_json(s));
    cJSON_AddItemToObject(j, "memory", memory_json(s));
    cJSON_AddItemToObject(j, "energy", energy_json(s));
    cJSON_AddItemToObject(j, "efficientllm", effllm_json(s));
    return record_text(s, j);
}

/* What keys a record: the identities, who measured, how. */
static aellm_eval_record identities(eval_state *s)
{
    return (aellm_eval_record){
        .model_hash = s->model_hash,
        .model_json = s->model_json,
        .task_hash = s->task_hash,
        .task_json = s->task_json,
        .hw_hash = s->hw_hash,
        .hw_json = s->hw_json,
        .config_hash = s->config_hash,
        .config_json = s->config_json,
        .engine_version = engine_identity(s),
        .protocol_json = s->protocol_json,
        .started_at = s->started_at,
        .finished_at = s->finished_at,
    };
}

static int store_record(eval_state *s, aellm_store *store, const char *text)
{
    aellm_eval_record r = identities(s);
    r.provenance = "measured";
    r.accuracy_metric = s->task.metrics[0].name;
    r.accuracy_higher_is_better = s->task.higher_is_better;
    r.accuracy = s->task.metrics[0].value;
    r.accuracy_stderr = s->task.metrics[0].stderr_;
    r.latency_s = objective_latency(s, 0);
    r.latency_p10_s = s->latency.total.p10;
    r.latency_p90_s = s->latency.total.p90;
    r.prefill_s = objective_latency(s, 1);
    r.decode_s = objective_latency(s, 2);
    r.latency_reps = s->latency.reps;
    r.peak_mem_bytes = (double)s->mem.peak_total;
    r.peak_rss_bytes = (double)s->rss_peak;
    r.energy_j = objective_energy(s);
    r.energy_std_j = energy_std(s);
    r.energy_source = aellm_energy_meter_source_name(s->meter);
    r.record_json = text;
    return aellm_store_put(store, &r, NULL);
}

int aellm_apply(const aellm_eval_request *r, const char *figures_json, const char *out_path)
{ /* r->task may be NULL: then the configuration names its own texts */
    eval_state s = {.req = r};
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_threads = r->n_threads;
    int rc = identify(&s);
    if (!rc) rc = run_stages(&s, &ep);
    if (!rc) rc = aellm_model_set_provenance(s.model, s.config_json, figures_json);
    if (!rc) rc = aellm_model_save_gguf(s.model, out_path, -1);
    state_free(&s);
    return rc;
}

/* ---- an external evaluator measures in the engine's place ---- */

static char *external_request(const eval_state *s)
{
    const aellm_eval_request *r = s->req;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "aellm", aellm_engine_version());
    cJSON_AddStringToObject(j, "key", s->key);
    add_parsed(j, "config", s->config_json);
    cJSON *model = cJSON_AddObjectToObject(j, "model");
    cJSON_AddStringToObject(model, "path", r->model_path);
    cJSON_AddStringToObject(model, "sha256", s->file_hash);
    if (r->tokenizer_path) cJSON_AddStringToObject(model, "tokenizer", r->tokenizer_path);
    if (r->lora_path) cJSON_AddStringToObject(model, "lora", r->lora_path);
    add_parsed(model, "shape", s->model_json);
    add_parsed(j, "task", s->task_json);
    cJSON *task = cJSON_GetObjectItem(j, "task");
    cJSON_AddStringToObject(task, "name", aellm_task_name(r->task));
    if (aellm_task_data_path(r->task))
        cJSON_AddStringToObject(task, "data_path", aellm_task_data_path(r->task));
    cJSON *proto = cJSON_AddObjectToObject(j, "protocol");
    cJSON_AddNumberToObject(proto, "n_prompt", r->latency.n_prompt);
    cJSON_AddNumberToObject(proto, "n_gen", r->latency.n_gen);
    cJSON_AddNumberToObject(proto, "warmup", r->latency.warmup);
    cJSON_AddNumberToObject(proto, "max_reps", r->latency.max_reps);
    cJSON_AddNumberToObject(proto, "threads", r->n_threads);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static cJSON *median_of(double x)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "median", x);
    return o;
}

static void add_finite(cJSON *o, const char *name, double x)
{
    if (isfinite(x)) cJSON_AddNumberToObject(o, name, x);
}

/* The store's word for a record: measured when its accuracy and latency
 * were (energy from a power model is usual for measured records too). */
static const char *external_provenance(const aellm_external_record *x)
{
    return strcmp(x->provenance[0], "measured") || strcmp(x->provenance[1], "measured")
               ? "predicted"
               : "measured";
}

/* The record in aellm's own form (what reports and the search read), with
 * what the evaluator printed kept beside it. */
static char *external_record(const eval_state *s, const aellm_external_record *x, const char *raw)
{
    cJSON *j = record_head(s, external_provenance(x));
    cJSON *ev = cJSON_AddObjectToObject(j, "evaluator");
    cJSON_AddStringToObject(ev, "command", s->req->evaluator);
    if (x->identity[0]) cJSON_AddStringToObject(ev, "identity", x->identity);
    add_parsed(ev, "printed", raw);
    cJSON *eng = cJSON_AddObjectToObject(j, "engine");
    cJSON_AddStringToObject(eng, "version", engine_identity((eval_state *)s));
    cJSON *acc = cJSON_AddObjectToObject(j, "accuracy");
    cJSON_AddStringToObject(acc, "metric", x->metric);
    cJSON_AddNumberToObject(acc, "value", x->accuracy);
    add_finite(acc, "stderr", x->accuracy_stderr);
    cJSON_AddBoolToObject(acc, "higher_is_better", x->higher_is_better);
    cJSON *lat = cJSON_AddObjectToObject(j, "latency");
    cJSON_AddNumberToObject(lat, "n_prompt", s->req->latency.n_prompt);
    cJSON_AddNumberToObject(lat, "n_gen", s->req->latency.n_gen);
    cJSON_AddItemToObject(lat, "total_s", median_of(x->latency_s));
    if (isfinite(x->prefill_s)) cJSON_AddItemToObject(lat, "prefill_s", median_of(x->prefill_s));
    if (isfinite(x->decode_s)) cJSON_AddItemToObject(lat, "decode_s", median_of(x->decode_s));
    cJSON *mem = cJSON_AddObjectToObject(j, "memory");
    cJSON_AddNumberToObject(mem, "peak_bytes", x->peak_mem_bytes);
    cJSON *en = cJSON_AddObjectToObject(j, "energy");
    cJSON_AddNumberToObject(en, "joules_per_request", x->energy_j);
    cJSON_AddStringToObject(en, "source", x->energy_source);
    cJSON *objs[4] = {acc, lat, mem, en};
    for (int k = 0; k < 4; k++) cJSON_AddStringToObject(objs[k], "obtained", x->provenance[k]);
    return record_text(s, j);
}

static int store_external(eval_state *s, aellm_store *store, const aellm_external_record *x,
                          const char *text)
{
    aellm_eval_record r = identities(s);
    r.provenance = external_provenance(x);
    r.accuracy_metric = x->metric;
    r.accuracy_higher_is_better = x->higher_is_better;
    r.accuracy = x->accuracy;
    r.accuracy_stderr = x->accuracy_stderr;
    r.latency_s = x->latency_s;
    r.latency_p10_s = r.latency_p90_s = NAN;
    r.prefill_s = x->prefill_s;
    r.decode_s = x->decode_s;
    r.peak_mem_bytes = x->peak_mem_bytes;
    r.peak_rss_bytes = NAN;
    r.energy_j = x->energy_j;
    r.energy_std_j = NAN;
    r.energy_source = x->energy_source;
    r.record_json = text;
    return aellm_store_put(store, &r, NULL);
}

/* The configuration as a person reads it in an error: its canonical JSON,
 * shortened. */
static void config_words(const eval_state *s, char *out, size_t cap)
{
    const char *c = s->config_json ? s->config_json : "?";
    size_t n = strlen(c);
    if (n < cap)
        snprintf(out, cap, "%s", c);
    else
        snprintf(out, cap, "%.*s...", (int)(cap - 4), c);
}

/* Stores the failure (the error set by the caller) and returns AELLM_EFAILED
 * with a message naming the evaluator and the configuration. */
static int external_failed(eval_state *s, aellm_store *store)
{
    char why[512], cfg[240];
    snprintf(why, sizeof(why), "%s", aellm_error_last());
    config_words(s, cfg, sizeof(cfg));
    if (store && aellm_store_put_failure(store, s->key, s->config_hash, s->req->evaluator, why))
        return AELLM_ERROR; /* the store's message says why it could not be kept */
    return aellm_error_set(AELLM_EFAILED, "evaluator '%s' failed on configuration %s: %s",
                           s->req->evaluator, cfg, why);
}

/* A failure in the store stands unless the request retries it. */
static int check_failed_before(eval_state *s, aellm_store *store)
{
    char *why = NULL;
    int rc = aellm_store_get_failure(store, s->key, &why);
    if (rc == AELLM_ENOTFOUND) return 0;
    if (!rc && s->req->retry_failed)
        rc = aellm_store_clear_failure(store, s->key);
    else if (!rc) {
        char cfg[240];
        config_words(s, cfg, sizeof(cfg));
        rc = aellm_error_set(AELLM_EFAILED,
                             "configuration %s failed before with evaluator '%s' (%s); not run "
                             "again (--retry-failed)",
                             cfg, s->req->evaluator, why);
    }
    free(why);
    return rc;
}

static int evaluate_external(eval_state *s, aellm_store *store, char **record_json)
{
    int rc = store ? check_failed_before(s, store) : 0;
    if (rc) return rc;
    char *req = external_request(s), *out = NULL;
    if (!req) return aellm_error_oom("the evaluator's request", 0);
    size_t len = 0;
    s->started_at = unix_now();
    rc = aellm_external_run(s->req->evaluator, req, s->req->evaluator_timeout_s, &out, &len);
    s->finished_at = unix_now();
    free(req);
    aellm_external_record x;
    if (!rc) rc = aellm_external_parse(out, len, &x);
    if (rc) {
        free(out);
        return external_failed(s, store);
    }
    char *text = external_record(s, &x, out);
    free(out);
    if (!text) return aellm_error_oom("an evaluation record", 0);
    if (store && (rc = store_external(s, store, &x, text))) {
        free(text);
        return rc;
    }
    *record_json = text;
    return 0;
}

int aellm_eval_identify(const aellm_eval_request *r, char key[65], char config_hash[65])
{
    eval_state s = {.req = r};
    int rc = identify(&s);
    if (!rc) memcpy(key, s.key, AELLM_HASH_HEX), memcpy(config_hash, s.config_hash, AELLM_HASH_HEX);
    state_free(&s);
    return rc;
}

int aellm_evaluate(const aellm_eval_request *r, aellm_store *store, char **record_json, int *cached)
{
    *record_json = NULL;
    *cached = 0;
    if (!r->task) return aellm_error_set(AELLM_EINVAL, "an evaluation needs a task");
    eval_state s = {.req = r};
    int rc = identify(&s);
    if (!rc && store && !r->force) {
        rc = aellm_store_get(store, s.key, record_json);
        if (rc == 0 && (rc = check_cached(&s, *record_json))) {
            free(*record_json);
            *record_json = NULL;
            state_free(&s);
            return rc;
        }
        if (rc == 0) {
            *cached = 1;
            state_free(&s);
            return 0;
        }
        if (rc == AELLM_ENOTFOUND) rc = 0;
    }
    if (!rc && r->lookup_only) {
        rc = store && r->evaluator ? check_failed_before(&s, store) : 0;
        state_free(&s);
        return rc ? rc : AELLM_ENOTFOUND;
    }
    if (!rc && r->evaluator) {
        rc = evaluate_external(&s, store, record_json);
        state_free(&s);
        return rc;
    }
    if (!rc && pairs(&s) && store) rc = find_anchor(&s, store);
    if (!rc && aellm_task_kind_of(r->task) == AELLM_TASK_KLD) rc = find_kld_base(&s);
    if (!rc) rc = prepare(&s);
    if (!rc) rc = measure(&s);
    if (!rc && pairs(&s) && !store) anchor_from_run(&s);
    char *text = rc ? NULL : record(&s);
    if (!rc && !text) rc = aellm_error_oom("an evaluation record", 0);
    if (!rc && store) rc = store_record(&s, store, text);
    if (rc)
        free(text);
    else
        *record_json = text;
    state_free(&s);
    return rc;
}
