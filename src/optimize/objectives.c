#include "aellm/objectives.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char *names[AELLM_OBJ_ALL] = {"acc", "lat", "mem", "energy", "tune"};

static int number_at(const cJSON *j, const char *a, const char *b, double *out)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, a), b);
    if (!cJSON_IsNumber(v)) return aellm_error_set(AELLM_EFORMAT, "record without %s.%s", a, b);
    *out = v->valuedouble;
    return 0;
}

/* A paired record's latency and energy are the default's stored figures
 * times the per-pair ratios: what stays comparable between records made
 * while the machine's speed drifted. */
static void paired_figures(const cJSON *j, aellm_objectives *out)
{
    const cJSON *lat = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "latency"), "paired");
    const cJSON *en = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "energy"), "paired");
    const cJSON *t = cJSON_GetObjectItem(lat, "total_s");
    const cJSON *e = cJSON_GetObjectItem(en, "joules_per_request");
    if (cJSON_IsNumber(t)) out->v[AELLM_OBJ_LAT] = t->valuedouble;
    if (cJSON_IsNumber(e)) out->v[AELLM_OBJ_ENERGY] = e->valuedouble;
}

/* The accuracy the search maximises: the metric itself when higher is
 * better; exp(-KLD) for a KL divergence (1 for the unmodified model, the
 * geometric-mean share of its probability mass kept); 1/value for other
 * lower-is-better metrics (perplexity). */
static double accuracy_objective(const cJSON *j, int higher_is_better, double value)
{
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "accuracy"), "metric");
    if (higher_is_better) return value;
    if (cJSON_IsString(m) && !strcmp(m->valuestring, "kld")) return exp(-value);
    return value > 0 ? 1.0 / value : 0;
}

/* Seconds the record's stages took to make its model: every top-level
 * section with a "wall_s" is a stage's report (evaluate.c). */
static double making_cost(const cJSON *j)
{
    double t = 0;
    for (const cJSON *st = j->child; st; st = st->next) {
        const cJSON *w = cJSON_IsObject(st) ? cJSON_GetObjectItem(st, "wall_s") : NULL;
        if (cJSON_IsNumber(w)) t += w->valuedouble;
    }
    return t;
}

int aellm_objectives_from_record(const char *record_json, aellm_objectives *out)
{
    cJSON *j = cJSON_Parse(record_json);
    if (!j) return aellm_error_set(AELLM_EFORMAT, "a record that is not JSON");
    double acc = 0;
    const cJSON *hib = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "accuracy"), "higher_is_better");
    const cJSON *lat = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "latency"), "total_s");
    int rc = number_at(j, "accuracy", "value", &acc);
    if (!rc && !cJSON_IsBool(hib))
        rc = aellm_error_set(AELLM_EFORMAT, "record without accuracy.higher_is_better");
    if (!rc && !cJSON_IsNumber(cJSON_GetObjectItem(lat, "median")))
        rc = aellm_error_set(AELLM_EFORMAT, "record without latency.total_s.median");
    if (!rc) rc = number_at(j, "memory", "peak_bytes", &out->v[AELLM_OBJ_MEM]);
    if (!rc) rc = number_at(j, "energy", "joules_per_request", &out->v[AELLM_OBJ_ENERGY]);
    if (!rc) {
        out->v[AELLM_OBJ_TUNE] = making_cost(j);
        out->v[AELLM_OBJ_LAT] = cJSON_GetObjectItem(lat, "median")->valuedouble;
        paired_figures(j, out);
        out->v[AELLM_OBJ_ACC] = accuracy_objective(j, cJSON_IsTrue(hib), acc);
        out->power_w =
            out->v[AELLM_OBJ_LAT] > 0 ? out->v[AELLM_OBJ_ENERGY] / out->v[AELLM_OBJ_LAT] : 0;
    }
    cJSON_Delete(j);
    return rc;
}

void aellm_objectives_minimized(const aellm_objectives *o, double *out, int n)
{
    out[AELLM_OBJ_ACC] = -o->v[AELLM_OBJ_ACC];
    for (int i = 1; i < n; i++) out[i] = o->v[i];
}

int aellm_weights_parse(double w[AELLM_OBJ_ALL], const char *text)
{
    for (int i = 0; i < AELLM_OBJ_ALL; i++) w[i] = text || i == AELLM_OBJ_TUNE ? 0 : 1;
    if (!text) return 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int k = -1;
        if (eq) {
            *eq = 0;
            for (int i = 0; i < AELLM_OBJ_ALL; i++)
                if (!strcmp(tok, names[i])) k = i;
        }
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (k < 0 || !end || *end || end == eq + 1 || !(v >= 0) || isinf(v))
            return aellm_error_set(
                AELLM_EINVAL,
                "weights: '%s' is not NAME=VALUE with NAME one of acc, lat, mem, "
                "energy, tune and VALUE >= 0",
                tok);
        w[k] = v;
    }
    return 0;
}

void aellm_objectives_range(const aellm_objectives *pts, int n, double lo[AELLM_OBJ_ALL],
                            double hi[AELLM_OBJ_ALL])
{
    for (int k = 0; k < AELLM_OBJ_ALL; k++) {
        lo[k] = n ? pts[0].v[k] : 0;
        hi[k] = lo[k];
        for (int i = 1; i < n; i++) {
            if (pts[i].v[k] < lo[k]) lo[k] = pts[i].v[k];
            if (pts[i].v[k] > hi[k]) hi[k] = pts[i].v[k];
        }
    }
}

static double norm(double x, double lo, double hi)
{
    if (!(hi > lo)) return 0;
    double t = (x - lo) / (hi - lo);
    return t < 0 ? 0 : t > 1 ? 1 : t;
}

double aellm_utility(const aellm_objectives *o, const double w[AELLM_OBJ_ALL],
                     const double lo[AELLM_OBJ_ALL], const double hi[AELLM_OBJ_ALL])
{
    double u = w[AELLM_OBJ_ACC] * norm(o->v[AELLM_OBJ_ACC], lo[AELLM_OBJ_ACC], hi[AELLM_OBJ_ACC]);
    for (int k = 1; k < AELLM_OBJ_ALL; k++) u -= w[k] * norm(o->v[k], lo[k], hi[k]);
    return u;
}

double aellm_efficiency_score(const aellm_objectives *c, const aellm_objectives *c0)
{
    double p = 1;
    for (int k = 1; k < AELLM_OBJ_COUNT; k++) p *= c->v[k] > 0 ? c0->v[k] / c->v[k] : 0;
    double acc = c0->v[AELLM_OBJ_ACC] > 0 ? c->v[AELLM_OBJ_ACC] / c0->v[AELLM_OBJ_ACC] : 0;
    return cbrt(p) * (acc < 1 ? acc : 1);
}

const char *aellm_efficiency_definition(void)
{
    return "efficiency = (lat0/lat * mem0/mem * energy0/energy)^(1/3) * min(1, acc/acc0), "
           "against the default configuration 0 (acc = 1/perplexity for perplexity tasks, "
           "exp(-KLD) for KL divergence tasks)";
}

double aellm_constraint_violation(const aellm_objectives *o, double max_mem_bytes,
                                  double max_power_w)
{
    double v = 0;
    if (max_mem_bytes > 0 && o->v[AELLM_OBJ_MEM] > max_mem_bytes)
        v += (o->v[AELLM_OBJ_MEM] - max_mem_bytes) / max_mem_bytes;
    if (max_power_w > 0 && o->power_w > max_power_w) v += (o->power_w - max_power_w) / max_power_w;
    return v;
}

double aellm_violation_with_floor(const aellm_objectives *o, double max_mem_bytes,
                                  double max_power_w, double min_acc)
{
    double v = aellm_constraint_violation(o, max_mem_bytes, max_power_w);
    double acc = o->v[AELLM_OBJ_ACC];
    if (min_acc > 0 && acc < min_acc) v += (min_acc - acc) / min_acc;
    return v;
}
