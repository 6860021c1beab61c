/* `aellm search`: the surrogate-assisted search over the configuration
 * space, every real evaluation through aellm eval's pipeline and store. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aellm/baselines.h"
#include "aellm/energy.h"
#include "aellm/error.h"
#include "aellm/evaluate.h"
#include "aellm/search.h"
#include "aellm/surrogate.h"
#include "aellm/dtype.h"
#include "aellm/predict.h"
#include "cli/cli.h"
#include "cli/dist.h"
#include "cli/search_internal.h"
#include "core/atomic.h"
#include "core/hash.h"
#include "techniques/stage.h"

/* The bundled calibration text, relative to cli_home(). */
#define CALIB_TEXT "tasks/data/stories_calib.txt"

/* An architecture conversion (attention, experts) uptrains for
 * ev->uptrain_steps on ev->train. */
static void add_uptraining(const evaluator *ev, cJSON *j)
{
    cJSON *a = cJSON_GetObjectItem(j, "architecture");
    const cJSON *att = cJSON_GetObjectItem(a, "attention");
    const cJSON *moe = cJSON_GetObjectItem(a, "moe_experts");
    int converts = (cJSON_IsString(att) && strcmp(att->valuestring, "mha")) ||
                   (cJSON_IsNumber(moe) && moe->valuedouble > 1);
    if (!converts) return;
    cJSON_AddNumberToObject(a, "uptrain_steps", ev->uptrain_steps);
    if (ev->train) cJSON_AddStringToObject(a, "uptrain_data", ev->train);
}

/* A fine-tuning stage trains for ev->ft_steps on ev->train (none: the point
 * does not apply here). */
static void add_finetuning(const evaluator *ev, cJSON *j)
{
    cJSON *ft = cJSON_GetObjectItem(j, "finetuning");
    const cJSON *m = cJSON_GetObjectItem(ft, "method");
    if (!cJSON_IsString(m) || !strcmp(m->valuestring, "none")) return;
    cJSON_AddNumberToObject(ft, "steps", ev->ft_steps);
    if (ev->train) cJSON_AddStringToObject(ft, "data", ev->train);
}

/* The point as an eval configuration (what `aellm eval` and `aellm apply`
 * take), with the calibration text added where the method needs one, and
 * the training stages' data and steps. */
cJSON *search_eval_config_json(const evaluator *ev, const double *genes)
{
    cJSON *j = aellm_space_to_config(ev->space, genes);
    add_uptraining(ev, j);
    add_finetuning(ev, j);
    cJSON *inf = cJSON_GetObjectItem(j, "inference");
    const cJSON *m = cJSON_GetObjectItem(inf, "method");
    if (ev->calib && cJSON_IsString(m) && strcmp(m->valuestring, "rtn")) {
        cJSON *cal = cJSON_AddObjectToObject(inf, "calibration");
        cJSON_AddStringToObject(cal, "file", ev->calib);
        cJSON_AddNumberToObject(cal, "skip", (double)ev->calib_skip);
    }
    return j;
}

int search_to_config(const evaluator *ev, const double *genes, aellm_config *c)
{
    cJSON *j = search_eval_config_json(ev, genes);
    int rc = aellm_config_parse(c, j, "search point", NULL);
    cJSON_Delete(j);
    return rc;
}

/* Without training data the stages that train cannot run: held at their
   defaults, and the user told how to give them some. */
static int hold_training_stages(aellm_space **space, const char *task_name)
{
    static const char *const stages[] = {"architecture", "finetuning"};
    for (int i = 0; i < 2; i++) {
        if (!aellm_space_stage_applies(*space, stages[i])) continue;
        aellm_space *held = NULL;
        if (aellm_space_hold_stage(*space, stages[i], &held)) return cli_fail_last("search"), -1;
        aellm_space_free(*space);
        *space = held;
        if (dist_rank() == 0)
            fprintf(stderr,
                    "%s held at its default: task %s names no training data (give --train FILE, or "
                    "a task with a \"train\" file such as wikitext2-ppl)\n",
                    stages[i], task_name);
    }
    return 0;
}

static int applicable(void *user, const double *genes)
{
    evaluator *ev = user;
    aellm_config c;
    return !search_to_config(ev, genes, &c) && !aellm_config_check(&c, ev->model);
}

/* The efficiency objectives of the target deployment (aellm predict's
 * roofline) in place of this machine's, at the search's request length. */
static int predict_objectives(const evaluator *ev, const aellm_config *c, aellm_objectives *out)
{
    aellm_predict_params p;
    aellm_predict_params_default(&p);
    p.n_prompt = ev->req.latency.n_prompt, p.n_gen = ev->req.latency.n_gen;
    p.base_type = ev->target_base_type;
    aellm_prediction r;
    int rc = aellm_predict(&ev->target_shape, c, ev->target, &p, &r);
    if (rc == AELLM_EINVAL) return 1; /* does not fit the shape: not applicable */
    if (rc) return rc;
    out->v[AELLM_OBJ_LAT] = r.total_s;
    out->v[AELLM_OBJ_MEM] = r.memory_bytes;
    out->v[AELLM_OBJ_ENERGY] = r.energy_j;
    return 0;
}

int search_record_objectives(evaluator *ev, const aellm_config *c, const char *rec,
                             aellm_objectives *out)
{
    int rc = aellm_objectives_from_record(rec, out);
    if (!rc && ev->target) rc = predict_objectives(ev, c, out);
    if (!rc && ev->n_seen == ev->cap_seen) {
        int cap = ev->cap_seen ? 2 * ev->cap_seen : 64;
        aellm_objectives *q = realloc(ev->seen, (size_t)cap * sizeof(*q));
        if (q) ev->seen = q, ev->cap_seen = cap;
    }
    if (!rc && ev->n_seen < ev->cap_seen) ev->seen[ev->n_seen++] = *out;
    return rc;
}

static int evaluate(void *user, const double *genes, aellm_objectives *out)
{
    evaluator *ev = user;
    aellm_config c;
    if (search_to_config(ev, genes, &c))
        return 1; /* not applicable here (e.g. no calibration text) */
    aellm_eval_request r = ev->req;
    r.config = &c;
    r.model_hash = ev->model_hash[0] ? ev->model_hash : NULL;
    char *rec = NULL;
    int cached = 0;
    int rc = aellm_evaluate(&r, ev->store, &rec, &cached);
    if (rc == AELLM_EINVAL || rc == AELLM_EFAILED) { /* skip, say why */
        cli_progress_end(&ev->bar);
        fprintf(stderr, "%s: %s\n", rc == AELLM_EFAILED ? "failed" : "skipped", aellm_error_last());
        ev->failed++;
        return 1;
    }
    if (rc) return rc;
    ev->cached += cached;
    rc = search_record_objectives(ev, &c, rec, out);
    free(rec);
    return rc;
}

/* The best utility among the points measured so far, normalised over them
 * (the search's pick normalises over its feasible measured points). */
static double best_utility(const evaluator *ev)
{
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL], best = -INFINITY;
    aellm_objectives_range(ev->seen, ev->n_seen, lo, hi);
    for (int i = 0; i < ev->n_seen; i++) {
        double u = aellm_utility(&ev->seen[i], ev->weights, lo, hi);
        if (u > best) best = u;
    }
    return best;
}

static void progress(int done, int budget, const char *phase, void *user)
{
    evaluator *ev = user;
    char extra[80] = "";
    if (ev->n_seen > 1) snprintf(extra, sizeof(extra), "best U %.3f", best_utility(ev));
    cli_progress_update(&ev->bar, phase, done, budget, extra[0] ? extra : NULL);
}

static char *config_text(const aellm_space *s, const double *genes)
{
    cJSON *j = aellm_space_to_config(s, genes);
    cJSON *inf = cJSON_GetObjectItem(j, "inference");
    char *t = cJSON_PrintUnformatted(inf ? inf : j);
    cJSON_Delete(j);
    return t;
}

static const char *const objective_names[AELLM_OBJ_ALL] = {"acc", "latency", "memory", "energy",
                                                           "tune"};

/* Knob k's sensitivities and its "stage.knob" name; NULL for a knob held
 * fixed (no sensitivity). */
static const double *sensitivity_of(const aellm_space *s, const aellm_search_result *r, int k,
                                    char name[96])
{
    const double *v = r->sensitivity + (size_t)k * AELLM_OBJ_COUNT;
    if (isnan(v[0])) return NULL;
    aellm_knob_info in;
    aellm_space_knob(s, k, &in);
    snprintf(name, 96, "%s.%s", in.stage, in.name);
    return v;
}

static void print_sensitivity(const aellm_space *s, const aellm_search_result *r)
{
    if (!r->sensitivity) return;
    printf("per-knob sensitivity: spread of the surrogates' prediction when the knob alone "
           "changes, as a share of the measured range, mean over the measured points\n");
    printf("  %-22s %8s %8s %8s %8s\n", "knob", "acc", "latency", "memory", "energy");
    char name[96];
    for (int k = 0; k < aellm_space_n_knobs(s); k++) {
        const double *v = sensitivity_of(s, r, k, name);
        if (v) printf("  %-22s %8.2f %8.2f %8.2f %8.2f\n", name, v[0], v[1], v[2], v[3]);
    }
}

static cJSON *sensitivity_json(const aellm_space *s, const aellm_search_result *r)
{
    if (!r->sensitivity) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    char name[96];
    for (int k = 0; k < aellm_space_n_knobs(s); k++) {
        const double *v = sensitivity_of(s, r, k, name);
        cJSON *e = v ? cJSON_AddObjectToObject(o, name) : NULL;
        for (int j = 0; e && j < AELLM_OBJ_COUNT; j++)
            cJSON_AddNumberToObject(e, objective_names[j], v[j]);
    }
    return o;
}

static void print_table(const aellm_space *s, const aellm_search_result *r,
                        const double w[AELLM_OBJ_ALL])
{
    int shown = 0, predicted = 0;
    printf("%-4s %-9s %-10s %-10s %-10s %-10s  %s\n", "#", "kind", "acc", "latency_s", "memory_MiB",
           "energy_J", "configuration (inference stage)");
    for (int i = 0; i < r->n_points; i++) {
        const aellm_search_point *p = &r->points[i];
        if (!p->on_front && p->measured && i != r->default_index) continue;
        if (!p->measured && (predicted++, shown >= 10)) continue;
        shown += !p->measured;
        char *t = config_text(s, p->genes);
        printf("%-4d %-9s %-10.4f %-10.4f %-10.2f %-10.3f  %s%s%s\n", i,
               !p->measured                            ? "predicted"
               : i == r->default_index && !p->on_front ? "default"
                                                       : "front",
               p->obj.v[0], p->obj.v[1], p->obj.v[2] / 1048576.0, p->obj.v[3], t,
               i == r->pick_index ? "   <- pick" : "", i == r->default_index ? " (default)" : "");
        free(t);
    }
    if (predicted > shown)
        printf("(%d more predicted points in --json and --csv)\n", predicted - shown);
    printf("pick #%d: utility %.4f with weights acc=%g lat=%g mem=%g energy=%g tune=%g\n",
           r->pick_index, r->pick_utility, w[0], w[1], w[2], w[3], w[AELLM_OBJ_TUNE]);
    printf("efficiency score %.3f; %s\n", r->efficiency, aellm_efficiency_definition());
    if (r->min_acc > 0) {
        int below = 0;
        for (int i = 0; i < r->n_measured; i++)
            below += r->points[i].obj.v[AELLM_OBJ_ACC] < r->min_acc;
        printf("accuracy floor %.4f (--max-acc-drop below the default's): %d measured "
               "configurations under it are infeasible\n",
               r->min_acc, below);
    }
    printf("held-out R2 of the surrogates: acc %.2f, latency %.2f, memory %.2f, energy %.2f, "
           "tune %.2f\n",
           r->r2[0], r->r2[1], r->r2[2], r->r2[3], r->r2[AELLM_OBJ_TUNE]);
    print_sensitivity(s, r);
}

static void copy_item(cJSON *to, const char *name, const cJSON *from, const char *path)
{
    const cJSON *v = from;
    char key[64];
    for (const char *p = path; v && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        v = cJSON_GetObjectItem(v, key);
        p += n + (p[n] == '.');
    }
    if (v) cJSON_AddItemToObject(to, name, cJSON_Duplicate(v, 1));
}

/* What making the point's model cost, stage by stage (conversion and
 * uptraining, fine-tuning, calibrated quantization): the record's wall_s of
 * each stage that ran (a reused stage's first run). Not yet an objective. */
static void add_production_cost(cJSON *o, const cJSON *record)
{
    int n;
    const aellm_stage *const *st = aellm_stages(&n);
    cJSON *cost = NULL;
    double total = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(record, st[i]->name), "wall_s");
        if (!cJSON_IsNumber(w)) continue;
        if (!cost) cost = cJSON_AddObjectToObject(o, "production_s");
        cJSON_AddNumberToObject(cost, st[i]->name, w->valuedouble);
        total += w->valuedouble;
    }
    if (cost) cJSON_AddNumberToObject(cost, "total", total);
}

/* How a measured point's figures were obtained, from its stored record (a
 * store hit: nothing is measured again): what a reader of the front needs to
 * trust one point. */
static cJSON *measurement_json(const evaluator *ev, const double *genes)
{
    aellm_config c;
    if (search_to_config(ev, genes, &c)) return NULL;
    aellm_eval_request q = ev->req;
    q.config = &c;
    q.model_hash = ev->model_hash[0] ? ev->model_hash : NULL;
    char *rec = NULL;
    int cached = 0;
    if (aellm_evaluate(&q, ev->store, &rec, &cached)) return NULL;
    cJSON *j = cJSON_Parse(rec), *o = cJSON_CreateObject();
    free(rec);
    copy_item(o, "store_key", j, "key");
    copy_item(o, "accuracy_metric", j, "accuracy.metric");
    copy_item(o, "accuracy_stderr", j, "accuracy.stderr");
    copy_item(o, "latency_reps", j, "latency.reps");
    copy_item(o, "latency_converged", j, "latency.converged");
    copy_item(o, "latency_p10_s", j, "latency.total_s.p10");
    copy_item(o, "latency_p90_s", j, "latency.total_s.p90");
    copy_item(o, "paired_with", j, "latency.paired.with");
    copy_item(o, "energy_source", j, "energy.source");
    copy_item(o, "energy_measured", j, "energy.measured");
    copy_item(o, "memory_source", j, "memory.source");
    copy_item(o, "engine", j, "engine.version");
    copy_item(o, "hardware", j, "hardware.name");
    copy_item(o, "efficientllm", j, "efficientllm");
    add_production_cost(o, j);
    if (ev->target)
        cJSON_AddStringToObject(o, "efficiency_objectives",
                                "predicted for the target deployment; the record's own "
                                "latency, memory and energy are this machine's");
    cJSON_Delete(j);
    return o;
}

/* What the search ran on, so that a report can label and overlay several. */
static cJSON *context_json(const evaluator *ev, const double w[AELLM_OBJ_ALL], int budget,
                           double max_mem_bytes)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", ev->req.model_path);
    cJSON_AddStringToObject(o, "task", aellm_task_name(ev->req.task));
    if (ev->target) {
        cJSON_AddStringToObject(o, "hardware", ev->target->name);
        cJSON_AddStringToObject(o, "shape",
                                ev->target_shape_name ? ev->target_shape_name : "the model's own");
    } else {
        aellm_hw_profile here;
        if (!aellm_hw_detect(&here, 0, ev->req.n_threads))
            cJSON_AddStringToObject(o, "hardware", here.name);
    }
    cJSON *wj = cJSON_AddObjectToObject(o, "weights");
    for (int k = 0; k < AELLM_OBJ_ALL; k++) cJSON_AddNumberToObject(wj, objective_names[k], w[k]);
    cJSON_AddNumberToObject(o, "budget", budget);
    cJSON_AddNumberToObject(o, "max_memory_bytes", max_mem_bytes); /* 0: no limit */
    cJSON_AddNumberToObject(o, "space_points",
                            (double)aellm_space_enumerate(ev->space, NULL, NULL));
    return o;
}

static cJSON *result_json(const aellm_space *s, const aellm_search_result *r, double hv,
                          const evaluator *ev)
{
    cJSON *o = cJSON_CreateObject(), *pts = cJSON_AddArrayToObject(o, "points");
    for (int i = 0; i < r->n_points; i++) {
        const aellm_search_point *p = &r->points[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "config", aellm_space_to_config(s, p->genes));
        cJSON_AddItemToObject(e, "eval_config", search_eval_config_json(ev, p->genes));
        cJSON_AddStringToObject(e, "provenance", p->measured ? "measured" : "predicted");
        cJSON_AddBoolToObject(e, "on_front", p->on_front);
        cJSON_AddNumberToObject(e, "acc", p->obj.v[0]);
        cJSON_AddNumberToObject(e, "latency_s", p->obj.v[1]);
        cJSON_AddNumberToObject(e, "memory_bytes", p->obj.v[2]);
        cJSON_AddNumberToObject(e, "energy_j", p->obj.v[3]);
        cJSON_AddNumberToObject(e, "tune_s", p->obj.v[AELLM_OBJ_TUNE]);
        cJSON_AddNumberToObject(e, "violation", p->violation);
        cJSON *m = p->measured ? measurement_json(ev, p->genes) : NULL;
        if (m) cJSON_AddItemToObject(e, "measurement", m);
        cJSON_AddItemToArray(pts, e);
    }
    if (ev->target)
        cJSON_AddStringToObject(o, "efficiency_objectives",
                                "predicted for the deployment (--hardware, --shape) by aellm "
                                "predict's roofline; accuracy measured on this machine");
    else
        cJSON_AddStringToObject(o, "efficiency_objectives", "measured on this machine");
    cJSON_AddNumberToObject(o, "default_index", r->default_index);
    cJSON_AddNumberToObject(o, "pick_index", r->pick_index);
    cJSON_AddNumberToObject(o, "pick_utility", r->pick_utility);
    cJSON_AddNumberToObject(o, "efficiency", r->efficiency);
    cJSON_AddStringToObject(o, "efficiency_definition", aellm_efficiency_definition());
    cJSON_AddNumberToObject(o, "evaluations", r->evaluations);
    cJSON_AddNumberToObject(o, "from_store", ev->cached);
    cJSON_AddNumberToObject(o, "skipped", ev->failed);
    cJSON_AddNumberToObject(o, "hypervolume_measured", hv);
    cJSON_AddNumberToObject(o, "min_acc", r->min_acc);
    cJSON *r2 = cJSON_AddObjectToObject(o, "heldout_r2");
    for (int k = 0; k < AELLM_OBJ_ALL; k++)
        cJSON_AddItemToObject(r2, objective_names[k],
                              isnan(r->r2[k]) ? cJSON_CreateNull() : cJSON_CreateNumber(r->r2[k]));
    cJSON_AddItemToObject(o, "sensitivity", sensitivity_json(s, r));
    return o;
}

static int write_csv(const char *path, const aellm_space *s, const aellm_search_result *r)
{
    aellm_atomic a;
    if (aellm_atomic_open(&a, path)) return cli_fail_last("search");
    FILE *f = a.f;
    fprintf(f, "index,provenance,on_front,acc,latency_s,memory_bytes,energy_j,config\n");
    for (int i = 0; i < r->n_points; i++) {
        const aellm_search_point *p = &r->points[i];
        char *t = config_text(s, p->genes);
        fprintf(f, "%d,%s,%d,%.6g,%.6g,%.0f,%.6g,\"", i, p->measured ? "measured" : "predicted",
                p->on_front, p->obj.v[0], p->obj.v[1], p->obj.v[2], p->obj.v[3]);
        for (const char *c = t; c && *c; c++) fputs(*c == '"' ? "\"\"" : (char[2]){*c, 0}, f);
        fputs("\"\n", f);
        free(t);
    }
    return aellm_atomic_commit(&a) ? cli_fail_last("search") : 0;
}

/* ---- what the surrogates know beyond the configuration (DESIGN.md §3.2) ---- */

enum { N_CONTEXT = 14 };

/* The model's shape, the task and the hardware as features: constant within
 * one search, they tell surrogates carried to another model, task or machine
 * (--save-surrogates, --transfer-from) what changed. */
static void context_features(const evaluator *ev, double ctx[N_CONTEXT])
{
    const aellm_model_config *c = aellm_model_config_get(ev->model);
    aellm_hw_profile hw = {0};
    aellm_hw_detect(&hw, 0, ev->req.n_threads);
    double f[N_CONTEXT] = {log10((double)aellm_model_n_params(ev->model)),
                           c->n_layers,
                           c->dim,
                           c->hidden_dim,
                           c->n_heads,
                           c->n_kv_heads,
                           aellm_task_kind_of(ev->req.task),
                           ev->req.latency.n_prompt,
                           ev->req.latency.n_gen,
                           hw.cores,
                           hw.mem_bytes / 1e9,
                           hw.mem_bw / 1e9,
                           hw.peak_f32 / 1e9,
                           hw.power_limit_w};
    memcpy(ctx, f, sizeof(f));
}

/* PREFIX.acc.surr, PREFIX.latency.surr, ...: one file per objective. */
static void surrogate_path(char *out, size_t cap, const char *prefix, int k)
{
    snprintf(out, cap, "%s.%s.surr", prefix, objective_names[k]);
}

/* What the search found for a point, for the GGUF that holds its model. */
static char *figures_json(const aellm_search_result *r, int i, const double w[AELLM_OBJ_ALL],
                          const evaluator *ev)
{
    const aellm_search_point *p = &r->points[i];
    cJSON *o = cJSON_CreateObject(), *wj = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "by", "aellm search (utility pick)");
    cJSON_AddStringToObject(o, "task", aellm_task_name(ev->req.task));
    cJSON_AddStringToObject(o, "provenance", p->measured ? "measured" : "predicted");
    cJSON *obj = cJSON_AddObjectToObject(o, "objectives");
    for (int k = 0; k < AELLM_OBJ_ALL; k++) {
        cJSON_AddNumberToObject(obj, objective_names[k], p->obj.v[k]);
        cJSON_AddNumberToObject(wj, objective_names[k], w[k]);
    }
    cJSON_AddStringToObject(o, "units",
                            "acc: the task's metric where higher is better, 1/value for "
                            "perplexity, exp(-KLD) for a KL divergence; latency s per request; "
                            "memory peak bytes; energy J per request; tune s to make the "
                            "model (conversion, uptraining, fine-tuning, calibration)");
    cJSON_AddItemToObject(o, "weights", wj);
    cJSON_AddNumberToObject(o, "utility", r->pick_utility);
    cJSON_AddNumberToObject(o, "efficiency", r->efficiency);
    cJSON_AddStringToObject(o, "engine", aellm_engine_version());
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* The pick's model, made as its evaluation made it (the kept stage outputs
 * reused) and written with its configuration and figures. */
static int write_pick(const evaluator *ev, const aellm_search_result *r,
                      const double w[AELLM_OBJ_ALL], const char *path, int quiet)
{
    if (r->pick_index < 0) return cli_fail("search", "no feasible pick to write to %s", path);
    aellm_config c;
    if (search_to_config(ev, r->points[r->pick_index].genes, &c)) return cli_fail_last("search");
    aellm_eval_request req = ev->req;
    req.config = &c;
    req.model_hash = ev->model_hash[0] ? ev->model_hash : NULL;
    char *fig = figures_json(r, r->pick_index, w, ev);
    if (!fig) return cli_fail("search", "out of memory");
    int rc = aellm_apply(&req, fig, path);
    free(fig);
    if (rc) return cli_fail_last("search");
    if (!quiet) printf("wrote the pick's model to %s\n", path);
    return 0;
}

static int load_surrogates(const char *prefix, aellm_surrogate *out[AELLM_OBJ_COUNT])
{
    for (int k = 0; k < AELLM_OBJ_COUNT; k++) {
        char path[4096];
        surrogate_path(path, sizeof(path), prefix, k);
        if (aellm_surrogate_load(&out[k], path, NULL)) return cli_fail_last("search");
    }
    return 0;
}

/* Hours of search must not end in "cannot write": each output is tried first. */
static int check_outputs(const char *csv, const char *prefix, int rounds, const char *model_out)
{
    if (csv && aellm_atomic_check(csv)) return cli_fail_last("search");
    if (model_out && aellm_atomic_check(model_out)) return cli_fail_last("search");
    if (prefix && rounds < 1)
        return cli_fail("search", "--save-surrogates: no surrogates are trained with --rounds 0");
    for (int k = 0; prefix && k < AELLM_OBJ_COUNT; k++) {
        char path[4096];
        surrogate_path(path, sizeof(path), prefix, k);
        if (aellm_atomic_check(path)) return cli_fail_last("search");
    }
    return 0;
}

static int save_surrogates(const char *prefix, const aellm_search_result *r)
{
    if (!r->surrogates[0])
        return cli_fail("search", "--save-surrogates: no surrogates were trained (--rounds 0)");
    for (int k = 0; k < AELLM_OBJ_COUNT; k++) {
        char path[4096];
        surrogate_path(path, sizeof(path), prefix, k);
        if (aellm_surrogate_save(r->surrogates[k], path)) return cli_fail_last("search");
    }
    fprintf(stderr, "surrogates saved: %s.{acc,latency,memory,energy}.surr\n", prefix);
    return 0;
}

/* ---- baselines on the same store and budget ---- */

/* Share of the default configuration's peak memory that is KV cache, from
 * its record (in the store since the search measured it). */
static double default_kv_fraction(evaluator *ev, const double *genes)
{
    aellm_config c;
    if (search_to_config(ev, genes, &c)) return 0;
    aellm_eval_request r = ev->req;
    r.config = &c;
    r.model_hash = ev->model_hash[0] ? ev->model_hash : NULL;
    char *rec = NULL;
    int cached = 0;
    double frac = 0;
    if (!aellm_evaluate(&r, ev->store, &rec, &cached)) {
        cJSON *j = cJSON_Parse(rec);
        const cJSON *mem = cJSON_GetObjectItem(j, "memory");
        const cJSON *kv = cJSON_GetObjectItem(cJSON_GetObjectItem(mem, "peak_by_kind"), "kv");
        const cJSON *peak = cJSON_GetObjectItem(mem, "peak_bytes");
        if (cJSON_IsNumber(kv) && cJSON_IsNumber(peak) && peak->valuedouble > 0)
            frac = kv->valuedouble / peak->valuedouble;
        cJSON_Delete(j);
    }
    free(rec);
    return frac;
}

static void baseline_facts(evaluator *ev, const aellm_search_params *sp,
                           const aellm_search_result *res, aellm_baseline_facts *f)
{
    aellm_hw_profile hw;
    f->mem_bytes = sp->max_mem_bytes > 0                        ? sp->max_mem_bytes
                   : aellm_hw_detect(&hw, 0, ev->req.n_threads) ? 0
                                                                : hw.mem_bytes;
    f->n_params = (double)aellm_model_n_params(ev->model);
    f->n_kv_heads = aellm_model_config_get(ev->model)->n_kv_heads;
    f->kv_fraction = default_kv_fraction(ev, res->points[res->default_index].genes);
}

enum { N_BASELINE_ROWS = 10 };

static void print_baselines(const aellm_baseline *rows, const aellm_baseline_score *sc, int n)
{
    printf("\n%-18s %11s %10s %12s %10s %10s\n", "method", "evaluations", "HV", "HV/exhaust.",
           "efficiency", "acc change");
    for (int r = 0; r < n; r++) {
        if (rows[r].skipped) {
            printf("%-18s %11s %10s %12s %10s %10s\n", rows[r].name, "-", "-", "-", "-",
                   "(skipped)");
            continue;
        }
        printf("%-18s %11d %10.4f %12.3f ", rows[r].name, rows[r].evaluations, sc[r].hv,
               sc[r].hv_ratio);
        if (sc[r].pick < 0)
            printf("%10s %10s\n", "-", "(none feasible)");
        else
            printf("%10.3f %+9.1f%%\n", sc[r].efficiency, 100 * sc[r].acc_change);
    }
    for (int r = 0; r < n; r++)
        if (rows[r].note[0]) printf("  %s: %s\n", rows[r].name, rows[r].note);
    printf("HV: measured feasible points, objectives normalised over all methods' feasible points, "
           "reference 1.1; efficiency and acc change of each method's utility pick against the "
           "default; %s\n",
           aellm_efficiency_definition());
}

static cJSON *num_or_null(double x)
{
    return isnan(x) ? cJSON_CreateNull() : cJSON_CreateNumber(x);
}

static cJSON *baselines_json(const aellm_space *s, const aellm_baseline *rows,
                             const aellm_baseline_score *sc, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int r = 0; r < n; r++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", rows[r].name);
        cJSON_AddBoolToObject(o, "skipped", rows[r].skipped);
        cJSON_AddNumberToObject(o, "evaluations", rows[r].evaluations);
        cJSON_AddNumberToObject(o, "points", rows[r].n_points);
        cJSON_AddItemToObject(o, "hypervolume", num_or_null(rows[r].skipped ? NAN : sc[r].hv));
        cJSON_AddItemToObject(o, "hypervolume_ratio", num_or_null(sc[r].hv_ratio));
        cJSON_AddItemToObject(o, "efficiency", num_or_null(sc[r].efficiency));
        cJSON_AddItemToObject(o, "acc_change", num_or_null(sc[r].acc_change));
        cJSON_AddItemToObject(o, "best_efficiency", num_or_null(sc[r].best_efficiency));
        if (sc[r].pick >= 0 && rows[r].points[sc[r].pick].genes) {
            const aellm_search_point *p = &rows[r].points[sc[r].pick];
            cJSON_AddItemToObject(o, "pick", aellm_space_to_config(s, p->genes));
            cJSON *obj = cJSON_AddObjectToObject(o, "pick_objectives");
            for (int k = 0; k < AELLM_OBJ_ALL; k++)
                cJSON_AddNumberToObject(obj, objective_names[k], p->obj.v[k]);
        }
        cJSON_AddStringToObject(o, "note", rows[r].note);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* Every baseline beside the search's own row; scored into `sc`. */
static int run_baselines(evaluator *ev, const aellm_search_params *sp,
                         const aellm_search_result *res, int exhaustive_max,
                         aellm_baseline rows[N_BASELINE_ROWS], aellm_baseline_score *sc)
{
    aellm_baseline_params bp;
    aellm_baseline_params_default(&bp);
    bp.search = sp;
    bp.default_obj = res->points[res->default_index].obj;
    bp.min_acc = res->min_acc;
    bp.exhaustive_max = exhaustive_max;
    baseline_facts(ev, sp, res, &bp.facts);
    int rc = aellm_baseline_from_search(res, sp->space, "search", res->n_measured, &rows[0]);
    if (!rc) rc = aellm_baseline_from_search(res, sp->space, "default", 1, &rows[1]);
    if (!rc) rc = aellm_baseline_random(&bp, &rows[2]);
    if (!rc) rc = aellm_baseline_single_technique(&bp, &rows[3]);
    if (!rc) rc = aellm_baseline_single_stage(&bp, "architecture", &rows[4]);
    if (!rc) rc = aellm_baseline_single_stage(&bp, "finetuning", &rows[5]);
    if (!rc) rc = aellm_baseline_single_stage(&bp, "inference", &rows[6]);
    if (!rc) rc = aellm_baseline_efficientllm(&bp, &rows[7]);
    if (!rc) rc = aellm_baseline_guidelines(&bp, &rows[8]);
    if (!rc) rc = aellm_baseline_exhaustive(&bp, &rows[9]);
    if (!rc) rc = aellm_baselines_score(rows, N_BASELINE_ROWS, &bp.default_obj, sp->weights, sc);
    return rc ? cli_fail_last("search") : 0;
}

static int search_main(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *task_arg = "stories-ppl", *db = "aellm.db";
    const char *space_file = NULL, *weights = NULL, *csv = NULL, *calib = NULL, *max_mem = NULL;
    const char *save_to = NULL, *transfer_from = NULL, *train = NULL, *output = NULL;
    const char *target_hw = NULL, *target_shape = NULL;
    int budget = 30, rounds = 3, threads = 0, json = 0, calib_skip = 0, baselines = 0;
    int exhaustive_max = 500, unpaired = 0, batch = 0;
    float max_power = 0, explore = 0, max_acc_drop = 0.1f, rel_ci = 0, evaluator_timeout = 3600;
    float worker_silence = 120, job_timeout = 0;
    uint64_t seed = 1;
    evaluator ev = {.ft_steps = 100, .uptrain_steps = 100};
    aellm_eval_request_default(&ev.req);
    aellm_latency_params *lp = &ev.req.latency;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model, "model file (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"task", 0, OPT_STR, &task_arg,
         "task spec or bundled name (default stories-ppl: the bundled stories)"},
        {"space", 0, OPT_STR, &space_file,
         "space file (default: $AELLM_SPACE, else the bundled space/default.json)"},
        {"budget", 'b', OPT_INT, &budget, "real evaluations, the default config included (30)"},
        {"rounds", 0, OPT_INT, &rounds, "refinement rounds (3; not used with --batch)"},
        {"batch", 0, OPT_INT, &batch,
         "refine in rounds of B configurations measured at once, chosen one after another by "
         "the Kriging believer, the seed sample in batches too (0: --rounds rounds, one "
         "configuration at a time; default 0)"},
        {"explore", 0, OPT_FLOAT, &explore,
         "share of each round spent on random unmeasured points (0..1, default 0)"},
        {"weights", 0, OPT_STR, &weights,
         "utility weights, e.g. acc=1,lat=0.5,mem=0.2,energy=0.3 (default 1 each); tune=W "
         "weighs the seconds spent making a configuration's model (default 0; above 0 it joins "
         "the front's objectives)"},
        {"max-memory", 0, OPT_STR, &max_mem,
         "memory limit in bytes (e.g. 512M; with --hardware, default the device's memory)"},
        {"max-power", 0, OPT_FLOAT, &max_power, "power limit in watts"},
        {"train", 0, OPT_STR, &train,
         "training data of fine-tuning and uptraining (text or {prompt, completion} JSONL; "
         "default: the task's \"train\" file; with neither, both stages are held at their "
         "defaults)"},
        {"ft-steps", 0, OPT_INT, &ev.ft_steps, "optimiser steps of a fine-tuning stage (100)"},
        {"uptrain-steps", 0, OPT_INT, &ev.uptrain_steps,
         "uptraining steps after an architecture conversion (100; 0 = convert only)"},
        {"max-acc-drop", 0, OPT_FLOAT, &max_acc_drop,
         "accuracy floor: at most this relative drop from the default (0.1; 0 = none)"},
        {"calib", 0, OPT_STR, &calib,
         "calibration text for GPTQ/AWQ/SmoothQuant points (default: the bundled "
         "tasks/data/stories_calib.txt, apart from every bundled task's text)"},
        {"calib-skip", 0, OPT_INT, &calib_skip, "start the calibration slice at this byte"},
        {"db", 0, OPT_STR, &db, "evaluation store (default aellm.db): a rerun reuses it"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        {"prompt", 'p', OPT_INT, &lp->n_prompt, "latency: prompt tokens (512)"},
        {"gen", 'n', OPT_INT, &lp->n_gen, "latency: generated tokens (128)"},
        {"max-reps", 0, OPT_INT, &lp->max_reps, "latency: most timed runs (100)"},
        {"rel-ci", 0, OPT_FLOAT, &rel_ci,
         "latency: stop when the median's 95% CI is within +-this fraction (0.02)"},
        {"unpaired", 0, OPT_FLAG, &unpaired,
         "time each configuration alone, not interleaved with the default (see aellm eval "
         "--paired)"},
        CLI_EVALUATOR_OPTS(&ev.req.evaluator, &evaluator_timeout, &ev.req.retry_failed),
        {"seed", 's', OPT_U64, &seed, "random seed (1)"},
        {"worker-silence", 0, OPT_FLOAT, &worker_silence,
         "under mpirun: a worker rank silent this many seconds (dead or hung) is given up on and "
         "its configuration handed to another (120)"},
        {"job-timeout", 0, OPT_FLOAT, &job_timeout,
         "under mpirun: a worker kills an evaluation running this many seconds and the "
         "configuration goes to another rank (0 = no limit)"},
        {"csv", 0, OPT_STR, &csv, "also write every point to this CSV file"},
        {"save-surrogates", 0, OPT_STR, &save_to,
         "write the final surrogates to PREFIX.{acc,latency,memory,energy}.surr"},
        {"transfer-from", 0, OPT_STR, &transfer_from,
         "warm-start the surrogates from another search's --save-surrogates PREFIX (same "
         "space; another model, task or machine)"},
        {"baselines", 0, OPT_FLAG, &baselines,
         "also run the baselines on the same store and budget: default, random search, "
         "single-technique optimisation, the EfficientLLM rules, practical guidelines and "
         "exhaustive search"},
        {"exhaustive-max", 0, OPT_INT, &exhaustive_max,
         "largest space searched exhaustively by --baselines (500)"},
        {"hardware", 0, OPT_STR, &target_hw,
         "optimise for this deployment (hardware/*.json profile): latency, memory and energy "
         "predicted there by aellm predict's roofline, accuracy measured here"},
        {"shape", 0, OPT_STR, &target_shape,
         "with --hardware, the model shape deployed there (e.g. Llama-2-7B; default: the "
         "model's own, f16 base)"},
        {"output", 'o', OPT_STR, &output,
         "write the utility pick's model as GGUF (converted, fine-tuned and quantized as "
         "evaluated; metadata aellm.config and aellm.figures)"},
        {"json", 0, OPT_FLAG, &json, "print the result as JSON"},
        {0}};
    cli_command cmd = {
        "search", "Search the configuration space for the Pareto front on this machine.",
        "[-m MODEL] [--task T] [--budget N] [--weights ...] [--calib TEXT] [options]",
        "Measures the default configuration and a seed sample for real (aellm eval's pipeline,\n"
        "stored in --db), trains one XGBoost ensemble per objective, runs NSGA-II on their\n"
        "predictions, and measures the most uncertain unmeasured members of the predicted\n"
        "front in each refinement round. Prints the measured front (predicted points marked),\n"
        "the utility pick and the efficiency score. A killed search re-run with the same --db\n"
        "repeats no evaluation.",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    aellm_search_params sp;
    aellm_search_params_default(&sp);
    if (!(max_acc_drop >= 0 && max_acc_drop < 1))
        return cli_fail("search", "--max-acc-drop must be in [0, 1)");
    sp.max_acc_drop = max_acc_drop;
    if (rel_ci < 0) return cli_fail("search", "--rel-ci must be >= 0");
    if (rel_ci > 0) lp->rel_ci = rel_ci;
    if (ev.ft_steps < 1) return cli_fail("search", "--ft-steps must be >= 1");
    if (ev.uptrain_steps < 0) return cli_fail("search", "--uptrain-steps must be >= 0");
    if (lp->max_reps < lp->min_reps)
        return cli_fail("search", "--max-reps must be >= %d (the fewest timed runs)", lp->min_reps);
    if (budget < 3 || rounds < 0 || batch < 0 || threads < 0 || max_power < 0 || explore < 0 ||
        explore > 1)
        return cli_fail("search", "--budget must be >= 3, counts >= 0");
    if (aellm_weights_parse(sp.weights, weights)) return cli_fail_last("search");
    if (!(evaluator_timeout >= 0)) return cli_fail("search", "--evaluator-timeout must be >= 0");
    if (ev.req.evaluator && !*ev.req.evaluator) return cli_fail("search", "--evaluator is empty");
    ev.req.evaluator_timeout_s = evaluator_timeout;
    if (!(worker_silence > 0) || !(job_timeout >= 0))
        return cli_fail("search", "--worker-silence must be > 0, --job-timeout >= 0");
    ev.silence_s = worker_silence;
    ev.job_timeout_s = job_timeout;
    if (target_shape && !target_hw)
        return cli_fail("search", "--shape needs --hardware (the deployment to predict for)");
    aellm_hw_profile target; /* the deployment's, checked before anything runs */
    if (target_hw && (aellm_hw_load(&target, target_hw, NULL) ||
                      (target_shape && aellm_model_shape(&ev.target_shape, target_shape))))
        return cli_fail_last("search");
    if (max_mem && (sp.max_mem_bytes = ev.req.max_memory_bytes = cli_parse_size(max_mem)) < 0)
        return cli_fail("search", "--max-memory '%s' is not a size (e.g. 512M, 8G)", max_mem);
    sp.max_power_w = ev.req.max_power_w = max_power;
    /* a deployment's configuration must fit its device: the target's memory
     * bounds the predicted memory unless --max-memory says otherwise */
    if (target_hw && !max_mem && target.mem_bytes > 0) sp.max_mem_bytes = target.mem_bytes;
    if (dist_rank() == 0 && check_outputs(csv, save_to, rounds, output)) return 1;

    aellm_space *space = NULL;
    aellm_task *task = NULL;
    aellm_search_result res = {0};
    aellm_baseline rows[N_BASELINE_ROWS] = {0};
    aellm_surrogate *transfer[AELLM_OBJ_COUNT] = {0};
    aellm_baseline_score scores[N_BASELINE_ROWS];
    int status = 1;
    if (aellm_space_load(&space, space_file ? space_file : cli_space_file())) {
        cli_fail_last("search");
        goto done;
    }
    if (cli_open_task("search", &task, task_arg)) goto done;
    if (train && !cli_is_file(train)) {
        cli_fail("search", "%s: cannot open the training data (--train)", train);
        goto done;
    }
    ev.train = train ? train : aellm_task_train_path(task);
    if (!ev.train && hold_training_stages(&space, task_arg)) goto done;
    if (!calib && cli_is_file(cli_bundled(CALIB_TEXT))) {
        /* short stories written for calibration, apart from the evaluated ones */
        static char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s", cli_bundled(CALIB_TEXT));
        calib = path;
        if (dist_rank() == 0)
            fprintf(stderr, "calibration text: %s (give --calib to change)\n", calib);
    }
    ev.space = space;
    ev.calib = calib;
    ev.calib_skip = calib_skip;
    ev.req.model_path = model;
    ev.req.tokenizer_path = tok;
    if (cli_model_path("search", &ev.req.model_path, &ev.req.tokenizer_path)) goto done;
    /* hashed once here, not by every evaluation (nor by every worker rank:
       rank 0 sends it with each job) */
    if (dist_rank() == 0 && aellm_hash_file(ev.req.model_path, ev.model_hash)) {
        cli_fail_last("search");
        goto done;
    }
    ev.req.task = task;
    ev.req.n_threads = threads;
    ev.req.paired = !unpaired;
    if (dist_rank() > 0) { /* a worker: measures what rank 0 sends, nothing else */
        status = search_dist_worker(&ev);
        goto done;
    }
    aellm_model *m = NULL;
    if (cli_open_model("search", &m, ev.req.model_path, ev.req.tokenizer_path)) goto done;
    ev.model = m;
    if (target_hw) {
        if (!target_shape) ev.target_shape = *aellm_model_config_get(m);
        ev.target_shape_name = target_shape;
        ev.target = &target;
        ev.target_base_type = target_shape ? AELLM_DTYPE_F16 : aellm_model_weight_type(m);
        if (!json)
            fprintf(stderr,
                    "latency, memory and energy predicted for %s on %s (aellm predict), accuracy "
                    "measured here; memory limit %.1f GB%s\n",
                    target_shape ? target_shape : "this model", target.name, sp.max_mem_bytes / 1e9,
                    max_mem ? "" : " (the device's; --max-memory to change)");
    }
    if (aellm_store_open(&ev.store, db)) {
        cli_fail_last("search");
        goto done;
    }
    sp.space = space;
    sp.evaluate = evaluate;
    sp.applicable = applicable;
    sp.user = &ev;
    sp.budget = budget;
    sp.refine_rounds = rounds;
    sp.batch = batch;
    if (dist_size() > 1) {
        sp.evaluate_batch = search_dist_batch;
        if (!sp.batch) sp.batch = dist_size() - 1;
        fprintf(stderr,
                "distributed: %d worker ranks on %d node%s (%s), batches of %d; rank 0 "
                "(%s) searches and keeps %s\n",
                dist_size() - 1, dist_worker_nodes(), dist_worker_nodes() == 1 ? "" : "s",
                dist_describe(), sp.batch, dist_host(), db);
    }
    sp.explore = explore;
    sp.seed = seed;
    sp.progress = progress;
    sp.progress_user = &ev;
    ev.weights = sp.weights;
    cli_progress_start(&ev.bar, json);
    /* Within one search the context columns are constant: they carry nothing
       and cost the trees column samples (search at 100 evaluations here: 0.940
       of the exhaustive hypervolume with them, 0.962 without, six seeds). They
       are there only when surrogates are to be carried to another search. */
    double context[N_CONTEXT];
    context_features(&ev, context);
    sp.context = context;
    sp.n_context = save_to || transfer_from ? N_CONTEXT : 0;
    if (transfer_from && load_surrogates(transfer_from, transfer)) goto done;
    if (transfer_from) sp.transfer_from = transfer;
    if (aellm_search_run(&sp, &res)) {
        cli_fail_last("search");
        goto done;
    }
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL], hv = 0;
    aellm_objectives *o = malloc((size_t)(res.n_measured ? res.n_measured : 1) * sizeof(*o));
    int n_ok = 0;
    for (int i = 0; o && i < res.n_measured; i++)
        if (res.points[i].violation == 0) o[n_ok++] = res.points[i].obj;
    aellm_objectives_range(o, n_ok, lo, hi);
    free(o);
    aellm_search_hypervolume(&hv, res.points, res.n_measured, lo, hi);
    status = csv ? write_csv(csv, space, &res) : 0;
    if (!status && save_to) status = save_surrogates(save_to, &res);
    cli_progress_end(&ev.bar);
    if (!json) {
        print_table(space, &res, sp.weights);
        printf("%d real evaluations (%d from the store), %d skipped or failed; measured front "
               "hypervolume "
               "%.4f (objectives normalised over the feasible measured points, reference 1.1)\n",
               res.evaluations, ev.cached, ev.failed, hv);
        fflush(stdout);
    }
    if (!status && output) status = write_pick(&ev, &res, sp.weights, output, json);
    if (!status && baselines) status = run_baselines(&ev, &sp, &res, exhaustive_max, rows, scores);
    cli_progress_end(&ev.bar);
    if (!status && baselines && !json) print_baselines(rows, scores, N_BASELINE_ROWS);
    if (!status && json) {
        cJSON *j = result_json(space, &res, hv, &ev);
        cJSON_AddItemToObject(j, "context",
                              context_json(&ev, sp.weights, budget, sp.max_mem_bytes));
        if (baselines)
            cJSON_AddItemToObject(j, "baselines",
                                  baselines_json(space, rows, scores, N_BASELINE_ROWS));
        cli_print_json(j);
    }
done:
    for (int i = 0; i < N_BASELINE_ROWS; i++) aellm_baseline_free(&rows[i]);
    for (int k = 0; k < AELLM_OBJ_COUNT; k++) aellm_surrogate_free(transfer[k]);
    aellm_search_result_free(&res);
    aellm_store_close(ev.store);
    free(ev.seen);
    free(ev.anchor);
    aellm_model_free((aellm_model *)ev.model);
    aellm_task_free(task);
    aellm_space_free(space);
    return status;
}

int cmd_search(int argc, char **argv)
{
    dist_init(&argc, &argv); /* under mpirun: rank 0 searches, the others measure */
    int rc = search_main(argc, argv);
    dist_finalize(rc);
    return rc;
}
