/* The baselines of DESIGN.md §3 on the search's own evaluator and budget,
 * and the scores that compare them. */
#include "aellm/baselines.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void aellm_baseline_params_default(aellm_baseline_params *p)
{
    memset(p, 0, sizeof(*p));
    p->exhaustive_max = 500;
}

void aellm_baseline_free(aellm_baseline *b)
{
    for (int i = 0; b && i < b->n_points; i++) free(b->points[i].genes);
    if (b) free(b->points), b->points = NULL, b->n_points = 0;
}

static void note(aellm_baseline *b, const char *fmt, ...)
{
    size_t len = strlen(b->note);
    if (len + 1 >= sizeof(b->note)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->note + len, sizeof(b->note) - len, fmt, ap);
    va_end(ap);
}

static void start(aellm_baseline *b, const char *name)
{
    memset(b, 0, sizeof(*b));
    b->name = name;
}

/* ---- a row under construction: points, their identities, no repeats ---- */

typedef struct {
    const aellm_baseline_params *p;
    aellm_baseline *b;
    char (*hash)[65];
    int cap;
    const char *phase; /* progress */
    int total;         /* progress: expected evaluations */
} row;

static int find(const row *r, const char *h)
{
    for (int i = 0; i < r->b->n_points; i++)
        if (!strcmp(r->hash[i], h)) return i;
    return -1;
}

/* Appends a measured point (not already in the row): its index, or < 0. */
static int append(row *r, const double *genes, const aellm_objectives *o, const char *h)
{
    aellm_baseline *b = r->b;
    int n_knobs = aellm_space_n_knobs(r->p->search->space);
    if (b->n_points == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        void *q = realloc(b->points, (size_t)cap * sizeof(*b->points));
        if (!q) return aellm_error_oom("baseline points", 0);
        b->points = q;
        if (!(q = realloc(r->hash, (size_t)cap * sizeof(*r->hash))))
            return aellm_error_oom("baseline points", 0);
        r->hash = q;
        r->cap = cap;
    }
    double *g = malloc((size_t)n_knobs * sizeof(double));
    if (!g) return aellm_error_oom("baseline points", 0);
    memcpy(g, genes, (size_t)n_knobs * sizeof(double));
    const aellm_search_params *sp = r->p->search;
    b->points[b->n_points] =
        (aellm_search_point){.genes = g,
                             .obj = *o,
                             .measured = 1,
                             .violation = aellm_violation_with_floor(
                                 o, sp->max_mem_bytes, sp->max_power_w, r->p->min_acc)};
    memcpy(r->hash[b->n_points], h, 65);
    return b->n_points++;
}

/* Whether a valid point applies to the model (the caller's check). */
static int applies(const aellm_search_params *sp, const double *g)
{
    return !sp->applicable || sp->applicable(sp->user, g);
}

/* Whether the point can be measured here: valid in the space and applicable
 * to the model. Canonicalises `g` in place. */
static int measurable(const aellm_search_params *sp, double *g)
{
    aellm_space_canonicalize(sp->space, g);
    return !aellm_space_violates(sp->space, g, NULL, 0) && applies(sp, g);
}

/* Measures a point once per row: *index is its place in the row, or -1 when
 * it cannot be measured here (invalid, not applicable, or the evaluator
 * found it unusable). Returns 0 or an error. */
static int measure(row *r, const double *genes, int *index)
{
    const aellm_search_params *sp = r->p->search;
    int n_knobs = aellm_space_n_knobs(sp->space);
    double *g = malloc((size_t)n_knobs * sizeof(double));
    if (!g) return aellm_error_oom("a baseline point", 0);
    memcpy(g, genes, (size_t)n_knobs * sizeof(double));
    int rc = 0;
    char h[65];
    *index = -1;
    if (measurable(sp, g)) {
        aellm_space_hash(sp->space, g, h);
        *index = find(r, h);
        aellm_objectives o;
        int e = *index >= 0 ? 1 : sp->evaluate(sp->user, g, &o);
        if (e < 0) rc = e;
        if (e == 0) {
            r->b->evaluations++;
            if ((*index = append(r, g, &o, h)) < 0) rc = *index, *index = -1;
            if (!rc && sp->progress)
                sp->progress(r->b->evaluations, r->total, r->phase, sp->progress_user);
        }
    }
    free(g);
    return rc;
}

/* Adds the measured points of a search to the row (no evaluation). */
static int absorb(row *r, const aellm_search_result *res)
{
    for (int i = 0; i < res->n_measured; i++) {
        char h[65];
        aellm_space_hash(r->p->search->space, res->points[i].genes, h);
        if (find(r, h) >= 0) continue;
        int rc = append(r, res->points[i].genes, &res->points[i].obj, h);
        if (rc < 0) return rc;
    }
    return 0;
}

int aellm_baseline_from_search(const aellm_search_result *r, const aellm_space *space,
                               const char *name, int n, aellm_baseline *out)
{
    start(out, name);
    if (n > r->n_measured) n = r->n_measured;
    size_t n_knobs = (size_t)aellm_space_n_knobs(space);
    out->points = calloc((size_t)(n ? n : 1), sizeof(*out->points));
    if (!out->points) return aellm_error_oom("baseline points", 0);
    for (int i = 0; i < n; i++, out->n_points++) {
        out->points[i] = r->points[i];
        if (!(out->points[i].genes = malloc(n_knobs * sizeof(double))))
            return aellm_error_oom("baseline points", 0);
        memcpy(out->points[i].genes, r->points[i].genes, n_knobs * sizeof(double));
    }
    out->evaluations = n == r->n_measured ? r->evaluations : n;
    return 0;
}

/* ---- random and exhaustive ---- */

int aellm_baseline_random(const aellm_baseline_params *p, aellm_baseline *out)
{
    start(out, "random");
    aellm_search_params q = *p->search;
    q.refine_rounds = 0;
    q.n_seed = q.budget;
    aellm_search_result res;
    int rc = aellm_search_run(&q, &res);
    if (rc) return rc;
    row r = {.p = p, .b = out};
    rc = absorb(&r, &res);
    free(r.hash);
    out->evaluations = res.evaluations;
    note(out, "%d constraint-aware random points", res.n_measured);
    aellm_search_result_free(&res);
    return rc;
}

/* ---- one stage alone ---- */

/* *out: s with every stage but `stage` held at its defaults. */
static int only_stage(const aellm_space *s, const char *stage, aellm_space **out)
{
    aellm_space *cur = NULL;
    int rc = 0;
    for (int i = 0; !rc && i < aellm_space_n_stages(s); i++) {
        const char *name = aellm_space_stage_name(s, i);
        if (!strcmp(name, stage)) continue;
        aellm_space *next = NULL;
        rc = aellm_space_hold_stage(cur ? cur : s, name, &next);
        aellm_space_free(cur);
        cur = next;
    }
    if (!rc && !cur) rc = aellm_space_hold_stage(s, "", &cur); /* a copy: no other stage */
    if (rc) return aellm_space_free(cur), rc;
    *out = cur;
    return 0;
}

int aellm_baseline_single_stage(const aellm_baseline_params *p, const char *stage,
                                aellm_baseline *out)
{
    static const char *const names[] = {"architecture-only", "finetuning-only", "inference-only"};
    static const char *const stages[] = {"architecture", "finetuning", "inference"};
    int which = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(stage, stages[i])) which = i;
    if (which < 0) return aellm_error_set(AELLM_EINVAL, "no stage '%s'", stage);
    start(out, names[which]);
    const aellm_space *s = p->search->space;
    if (!aellm_space_stage_applies(s, stage)) {
        out->skipped = 1;
        note(out, "no knob of the %s stage applies here", stage);
        return 0;
    }
    aellm_space *only = NULL;
    int rc = only_stage(s, stage, &only);
    if (rc) return rc;
    aellm_search_params q = *p->search;
    q.space = only;
    aellm_search_result res;
    rc = aellm_search_run(&q, &res);
    if (!rc) {
        row r = {.p = p, .b = out};
        rc = absorb(&r, &res);
        free(r.hash);
        out->evaluations = res.evaluations;
        note(out,
             "the %s stage alone (the others at their defaults), searched with the same "
             "budget: %d points measured",
             stage, res.n_measured);
        aellm_search_result_free(&res);
    }
    aellm_space_free(only);
    return rc;
}

static int measure_each(const double *genes, void *user)
{
    int index;
    return measure(user, genes, &index);
}

int aellm_baseline_exhaustive(const aellm_baseline_params *p, aellm_baseline *out)
{
    start(out, "exhaustive");
    int64_t size = aellm_space_enumerate(p->search->space, NULL, NULL);
    if (size < 0) return (int)size;
    if (size > p->exhaustive_max) {
        out->skipped = 1;
        note(out, "%lld points > the exhaustive limit %d", (long long)size, p->exhaustive_max);
        return 0;
    }
    row r = {.p = p, .b = out, .phase = "exhaustive", .total = (int)size};
    int64_t rc = aellm_space_enumerate(p->search->space, measure_each, &r);
    free(r.hash);
    note(out, "the %d of %lld valid points that apply here", out->n_points, (long long)size);
    return rc < 0 ? (int)rc : 0;
}

/* ---- one technique at a time ---- */

typedef struct {
    const char *name;
    aellm_space *space;
    int64_t size;
} technique;

static int by_size(const void *a, const void *b)
{
    const technique *x = a, *y = b;
    return (x->size > y->size) - (x->size < y->size);
}

/* The distinct techniques of the applicable knobs, in file order. */
static int techniques_of(const aellm_space *s, technique *t, int cap)
{
    int n = 0;
    for (int k = 0; k < aellm_space_n_knobs(s); k++) {
        aellm_knob_info in;
        aellm_space_knob(s, k, &in);
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= !strcmp(t[i].name, in.technique);
        if (in.applies && !seen && n < cap) t[n++] = (technique){.name = in.technique};
    }
    return n;
}

/* The evaluator a technique's search sees: points the row already holds
 * (the default, which every search measures first) come from the row. */
static int row_evaluate(void *user, const double *genes, aellm_objectives *out)
{
    row *r = user;
    char h[65];
    aellm_space_hash(r->p->search->space, genes, h);
    int i = find(r, h);
    if (i >= 0) return *out = r->b->points[i].obj, 0;
    int rc = measure(r, genes, &i);
    if (!rc && i >= 0) *out = r->b->points[i].obj;
    return rc ? rc : i < 0; /* unusable: skipped without spending budget */
}

static int row_applicable(void *user, const double *genes)
{
    return applies(((row *)user)->p->search, genes);
}

static int one_technique(row *r, const technique *t, int share)
{
    aellm_baseline *b = r->b;
    const char *sep = b->note[0] ? "; " : "";
    r->phase = t->name;
    if (t->size <= share) {
        note(b, "%s%s: every applicable one of its %lld points", sep, t->name, (long long)t->size);
        int64_t rc = aellm_space_enumerate(t->space, measure_each, r);
        return rc < 0 ? (int)rc : 0;
    }
    if (share < 3) {
        note(b, "%s%s: no budget left", sep, t->name);
        return 0;
    }
    aellm_search_params q = *r->p->search;
    q.space = t->space;
    q.budget = share;
    q.evaluate = row_evaluate;
    q.applicable = row_applicable;
    q.user = r;
    q.progress = NULL;
    q.transfer_from = NULL;
    int before = b->evaluations;
    aellm_search_result res;
    int rc = aellm_search_run(&q, &res);
    if (rc) return rc;
    note(b, "%s%s: searched, %d of %lld points", sep, t->name, b->evaluations - before,
         (long long)t->size);
    aellm_search_result_free(&res);
    return 0;
}

int aellm_baseline_single_technique(const aellm_baseline_params *p, aellm_baseline *out)
{
    start(out, "single-tech");
    technique t[16];
    int n = techniques_of(p->search->space, t, 16), rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        rc = aellm_space_restrict(p->search->space, t[i].name, &t[i].space);
        if (!rc && (t[i].size = aellm_space_enumerate(t[i].space, NULL, NULL)) < 0)
            rc = (int)t[i].size;
    }
    if (!rc) qsort(t, (size_t)n, sizeof(*t), by_size);
    row r = {.p = p, .b = out, .total = p->search->budget};
    for (int i = 0; !rc && i < n; i++)
        rc = one_technique(&r, &t[i], (p->search->budget - out->evaluations) / (n - i));
    for (int i = 0; i < n; i++) aellm_space_free(t[i].space);
    free(r.hash);
    return rc;
}

/* ---- rules ---- */

/* Knob `name` to the option equal to `str` (or the number `num`) when the
 * space has it and it applies; 1 when set. */
static int set_option(const aellm_space *s, double *g, const char *name, const char *str,
                      double num)
{
    int k = aellm_space_find(s, name);
    aellm_knob_info in;
    if (k < 0 || (aellm_space_knob(s, k, &in), !in.applies)) return 0;
    for (int o = 0; o < in.n_options; o++) {
        const cJSON *v = aellm_space_option(s, k, o);
        int match = str ? cJSON_IsString(v) && !strcmp(v->valuestring, str)
                        : cJSON_IsNumber(v) && v->valuedouble == num;
        if (match && aellm_space_option_applies(s, k, o)) return g[k] = o, 1;
    }
    return 0;
}

static double *default_genes(const aellm_space *s)
{
    double *g = malloc((size_t)aellm_space_n_knobs(s) * sizeof(double));
    if (g)
        aellm_space_defaults(s, g);
    else
        aellm_error_oom("a point", 0);
    return g;
}

/* measurable(), lowering an adapter rank the model's matrices are too
 * narrow for (the rules name ranks for billion-parameter models; the paper's
 * guidance scales the rank with the model) to the widest that applies. */
static int measurable_fit(const aellm_baseline_params *p, double *g, aellm_baseline *out)
{
    const aellm_space *s = p->search->space;
    if (measurable(p->search, g)) return 1;
    int k = aellm_space_find(s, "finetuning.rank");
    if (k < 0 || !aellm_space_is_active(s, g, k)) return 0;
    double was = g[k];
    for (int o = (int)was - 1; o >= 0; o--) {
        g[k] = o;
        if (!measurable(p->search, g)) continue;
        const cJSON *v = aellm_space_option(s, k, o);
        note(out, " [adapter rank lowered to %g: the model's matrices are narrower]",
             cJSON_IsNumber(v) ? v->valuedouble : (double)o);
        return 1;
    }
    g[k] = was;
    return 0;
}

int aellm_baseline_efficientllm(const aellm_baseline_params *p, aellm_baseline *out)
{
    start(out, "efficientllm");
    const aellm_space *s = p->search->space;
    const aellm_baseline_facts *f = &p->facts;
    const double GB = 1e9;
    double *g = default_genes(s), *g4 = default_genes(s);
    if (!g || !g4) return free(g), free(g4), AELLM_ENOMEM;
    note(out, "memory %.1f GB, %.3gB parameters", f->mem_bytes / GB, f->n_params / 1e9);
    if (f->mem_bytes < 50 * GB) /* the architecture stage's MQA, else post-hoc pooling */
        note(out, "; memory < 50 GB -> MQA: %s",
             set_option(s, g, "architecture.attention", "mqa", 0)
                 ? "MQA attention (converted and uptrained)"
             : set_option(s, g, "inference.kv_share", NULL, f->n_kv_heads)
                 ? "KV heads pooled to one (post hoc)"
                 : "skipped (no such option here)");
    if (f->mem_bytes > 100 * GB)
        note(out, "; memory > 100 GB -> MoE: %s",
             set_option(s, g, "architecture.moe_experts", NULL, 8)
                 ? "8 experts"
                 : "skipped (not applicable here)");
    if (f->n_params < 3e9 || f->n_params > 14e9) {
        const char *m = f->n_params < 3e9 ? "lora" : "rslora";
        note(out, "; %s -> %s: %s", f->n_params < 3e9 ? "< 3B parameters" : "> 14B parameters", m,
             set_option(s, g, "finetuning.method", m, 0) ? "applied"
                                                         : "skipped (not applicable here)");
    }
    memcpy(g4, g, (size_t)aellm_space_n_knobs(s) * sizeof(double));
    row r = {.p = p, .b = out, .phase = "efficientllm", .total = 2};
    int rc = 0, at = -1, kept = 0;
    measurable_fit(p, g, out);
    if (set_option(s, g4, "inference.weights", "int4", 0)) {
        measurable_fit(p, g4, out);
        rc = measure(&r, g4, &at);
        kept = !rc && at >= 0 &&
               out->points[at].obj.v[AELLM_OBJ_ACC] >= 0.95 * p->default_obj.v[AELLM_OBJ_ACC];
        note(out, "; INT4 (RTN) when the accuracy drop is < 5 %%: %s",
             at < 0 ? "not measurable here"
             : kept ? "kept"
                    : "dropped (accuracy fell 5 % or more)");
    }
    if (!rc && !kept) rc = measure(&r, g, &at);
    free(g);
    free(g4);
    free(r.hash);
    return rc;
}

/* ---- the AE-LLM paper's practical guidelines (§5.6) ---- */

/* A precision a guideline asks for, with the alternatives that realise it,
 * most preferred first: 4-bit by the most accurate calibrated method the
 * space and the calibration text allow, 8-bit as W8A8 SmoothQuant where
 * latency is the point, else weight-only. */
typedef struct {
    const char *weights, *method; /* method NULL: none */
} precision;

enum { PREC_NONE, PREC_INT4, PREC_INT8, PREC_W8A8, PREC_FP16 };

static int precision_alternatives(int prec, const precision **out)
{
    static const precision w4[] = {
        {"int4", "awq"}, {"int4", "gptq"}, {"int4", "rtn"}, {"nf4", "rtn"}};
    static const precision w8[] = {{"int8", "smoothquant"}, {"int8", "rtn"}, {"q8_0", "rtn"}};
    static const precision w16[] = {{"f16", NULL}, {"bf16", NULL}};
    switch (prec) {
    case PREC_INT4:
        return *out = w4, 4;
    case PREC_W8A8:
        return *out = w8, 3;
    case PREC_INT8:
        return *out = w8 + 1, 2;
    case PREC_FP16:
        return *out = w16, 2;
    default:
        return *out = NULL, 0;
    }
}

typedef struct {
    const char *knob, *str; /* str NULL: the number num */
    double num;
} setting;

/* One configuration a guideline names. */
typedef struct {
    const char *label;
    setting set[4];
    int precision;
} recipe;

/* The scenarios, each with the configurations its guideline names (two
 * where it names a range or a choice). The paper's rank guidance (16 for 1B
 * models, 32 for 7B, 64-128 for 70B) is what LoRA rank 32 and RSLoRA rank
 * 64 stand for; below 2B parameters, where it finds full fine-tuning
 * competitive, the accuracy scenario measures that too. */
enum { SCEN_MEMORY, SCEN_LATENCY, SCEN_ACCURACY, SCEN_ENERGY, SCEN_COUNT };

static const char *const scenario_name[SCEN_COUNT] = {"memory-constrained", "latency-critical",
                                                      "accuracy-critical", "energy"};

static int scenario_recipes(int scen, double n_params, recipe *out)
{
    static const recipe memory = {"INT4 + MQA + LoRA r32",
                                  {{"architecture.attention", "mqa", 0},
                                   {"finetuning.method", "lora", 0},
                                   {"finetuning.rank", NULL, 32}},
                                  PREC_INT4};
    static const recipe latency[] = {
        {"MoE 4 experts + GQA + INT8",
         {{"architecture.moe_experts", NULL, 4}, {"architecture.attention", "gqa", 0}},
         PREC_W8A8},
        {"MoE 8 experts + GQA + INT8",
         {{"architecture.moe_experts", NULL, 8}, {"architecture.attention", "gqa", 0}},
         PREC_W8A8}};
    static const recipe accuracy[] = {
        {"MLA + FP16 + RSLoRA r64",
         {{"architecture.attention", "mla", 0},
          {"finetuning.method", "rslora", 0},
          {"finetuning.rank", NULL, 64}},
         PREC_FP16},
        {"MLA + FP16 + full fine-tuning (< 2B parameters)",
         {{"architecture.attention", "mla", 0}, {"finetuning.method", "full", 0}},
         PREC_FP16}};
    static const recipe energy[] = {
        {"INT4 + GQA", {{"architecture.attention", "gqa", 0}}, PREC_INT4},
        {"INT4 + MQA", {{"architecture.attention", "mqa", 0}}, PREC_INT4}};
    switch (scen) {
    case SCEN_MEMORY:
        return out[0] = memory, 1;
    case SCEN_LATENCY:
        return memcpy(out, latency, sizeof(latency)), 2;
    case SCEN_ACCURACY:
        return memcpy(out, accuracy, sizeof(accuracy)), n_params < 2e9 ? 2 : 1;
    default:
        return memcpy(out, energy, sizeof(energy)), 2;
    }
}

/* The heaviest preference, or -1 when two weigh the same. */
static int heaviest(const double w[AELLM_OBJ_COUNT])
{
    int best = 0, tie = 0;
    for (int k = 1; k < AELLM_OBJ_COUNT; k++) {
        if (w[k] > w[best])
            best = k, tie = 0;
        else if (w[k] == w[best])
            tie = 1;
    }
    return tie ? -1 : best;
}

/* The scenario from the constraints and preferences: a memory limit the
 * default breaks makes it memory-constrained; else the heaviest weight
 * names it; -1 (every scenario) when no single weight is heaviest. */
static int pick_scenario(const aellm_baseline_params *p, const char **why)
{
    const aellm_search_params *sp = p->search;
    if (sp->max_mem_bytes > 0 && p->default_obj.v[AELLM_OBJ_MEM] > sp->max_mem_bytes)
        return *why = "the default breaks the memory limit", SCEN_MEMORY;
    static const int of_objective[AELLM_OBJ_COUNT] = {[AELLM_OBJ_ACC] = SCEN_ACCURACY,
                                                      [AELLM_OBJ_LAT] = SCEN_LATENCY,
                                                      [AELLM_OBJ_MEM] = SCEN_MEMORY,
                                                      [AELLM_OBJ_ENERGY] = SCEN_ENERGY};
    static const char *const reason[AELLM_OBJ_COUNT] = {[AELLM_OBJ_ACC] = "accuracy weighs most",
                                                        [AELLM_OBJ_LAT] = "latency weighs most",
                                                        [AELLM_OBJ_MEM] = "memory weighs most",
                                                        [AELLM_OBJ_ENERGY] = "energy weighs most"};
    int h = heaviest(sp->weights);
    if (h < 0) return *why = "no single preference weighs most", -1;
    return *why = reason[h], of_objective[h];
}

/* g: the recipe's point, its knobs set where they apply here (notes name
 * the rest); 0 when nothing of it can be measured. */
static int recipe_point(const aellm_baseline_params *p, const recipe *rc, double *g,
                        aellm_baseline *out)
{
    const aellm_space *s = p->search->space;
    int n_knobs = aellm_space_n_knobs(s);
    aellm_space_defaults(s, g);
    for (int i = 0; i < 4 && rc->set[i].knob; i++)
        if (!set_option(s, g, rc->set[i].knob, rc->set[i].str, rc->set[i].num)) {
            if (rc->set[i].str)
                note(out, " [%s = %s not applicable here]", rc->set[i].knob, rc->set[i].str);
            else
                note(out, " [%s = %g not applicable here]", rc->set[i].knob, rc->set[i].num);
        }
    const precision *alt;
    int n_alt = precision_alternatives(rc->precision, &alt);
    double *base = malloc((size_t)n_knobs * sizeof(double));
    if (!base) return 0;
    memcpy(base, g, (size_t)n_knobs * sizeof(double));
    for (int a = 0; a < n_alt; a++) {
        memcpy(g, base, (size_t)n_knobs * sizeof(double));
        if (!set_option(s, g, "inference.weights", alt[a].weights, 0)) continue;
        if (alt[a].method && !set_option(s, g, "inference.method", alt[a].method, 0)) continue;
        set_option(s, g, "inference.group", NULL, 32);
        if (measurable_fit(p, g, out)) {
            note(out, " [weights %s%s%s]", alt[a].weights, alt[a].method ? " " : "",
                 alt[a].method ? alt[a].method : "");
            free(base);
            return 1;
        }
    }
    memcpy(g, base, (size_t)n_knobs * sizeof(double));
    free(base);
    if (n_alt) note(out, " [no such precision measurable here: weights kept]");
    return measurable_fit(p, g, out);
}

int aellm_baseline_guidelines(const aellm_baseline_params *p, aellm_baseline *out)
{
    start(out, "guidelines");
    const char *why;
    int scen = pick_scenario(p, &why);
    note(out, "%s -> %s", why,
         scen >= 0 ? scenario_name[scen] : "all four scenarios, the row's pick by U");
    double *g = default_genes(p->search->space);
    if (!g) return AELLM_ENOMEM;
    row r = {.p = p, .b = out, .phase = "guidelines", .total = scen >= 0 ? 2 : 7};
    int rc = 0;
    for (int sc = 0; sc < SCEN_COUNT && !rc; sc++) {
        if (scen >= 0 && sc != scen) continue;
        recipe rs[2];
        int n = scenario_recipes(sc, p->facts.n_params, rs);
        for (int i = 0; i < n && !rc; i++) {
            note(out, "; %s", rs[i].label);
            int at = -1;
            if (!recipe_point(p, &rs[i], g, out))
                note(out, ": not measurable here");
            else if (!(rc = measure(&r, g, &at)) && at < 0)
                note(out, ": the evaluator could not use it");
        }
    }
    free(g);
    free(r.hash);
    return rc;
}

/* ---- side by side ---- */

int aellm_baselines_score(const aellm_baseline *rows, int n, const aellm_objectives *def,
                          const double w[AELLM_OBJ_ALL], aellm_baseline_score *out)
{
    int total = 0;
    for (int i = 0; i < n; i++) total += rows[i].n_points;
    aellm_objectives *all = calloc((size_t)(total ? total : 1), sizeof(*all));
    if (!all) return aellm_error_oom("baseline scores", 0);
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < rows[i].n_points; j++)
            if (rows[i].points[j].measured && rows[i].points[j].violation == 0)
                all[k++] = rows[i].points[j].obj;
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL], hv_ref = NAN;
    aellm_objectives_range(all, k, lo, hi);
    free(all);
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        aellm_baseline_score *sc = &out[i];
        *sc = (aellm_baseline_score){
            .pick = -1, .efficiency = NAN, .acc_change = NAN, .best_efficiency = NAN};
        rc = aellm_search_hypervolume(&sc->hv, rows[i].points, rows[i].n_points, lo, hi);
        double best = 0;
        for (int j = 0; j < rows[i].n_points; j++) {
            const aellm_search_point *pt = &rows[i].points[j];
            if (!pt->measured || pt->violation > 0) continue;
            double u = aellm_utility(&pt->obj, w, lo, hi);
            if (sc->pick < 0 || u > best) sc->pick = j, best = u;
            double e = aellm_efficiency_score(&pt->obj, def);
            if (isnan(sc->best_efficiency) || e > sc->best_efficiency) sc->best_efficiency = e;
        }
        if (sc->pick >= 0) {
            const aellm_objectives *o = &rows[i].points[sc->pick].obj;
            sc->efficiency = aellm_efficiency_score(o, def);
            sc->acc_change = o->v[AELLM_OBJ_ACC] / def->v[AELLM_OBJ_ACC] - 1;
        }
        if (!strcmp(rows[i].name, "exhaustive") && !rows[i].skipped) hv_ref = sc->hv;
    }
    for (int i = 0; !rc && i < n; i++) out[i].hv_ratio = hv_ref > 0 ? out[i].hv / hv_ref : NAN;
    return rc;
}
