/* The evaluation store as datasets: every record, grouped by (model, task,
 * hardware), as points of the same form as a search's (objectives the way the
 * search reads them: aellm_objectives_from_record). A store has no picks,
 * defaults or baselines; its fronts are computed here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aellm/objectives.h"
#include "aellm/store.h"
#include "core/error.h"
#include "report/report_internal.h"

typedef struct {
    cJSON *groups; /* datasets being filled, each with its "store_group" key */
    const char *path;
    int skipped; /* records without the four objectives (older, or damaged) */
} store_walk;

static const cJSON *at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItem(o, a);
    return b ? cJSON_GetObjectItem(x, b) : x;
}

/* Copies o[a][b] (if present) into dst under `name`. */
static void copy_as(cJSON *dst, const char *name, const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = at(o, a, b);
    if (v) cJSON_AddItemToObject(dst, name, cJSON_Duplicate(v, 1));
}

/* The provenance a search writes for a measured point, from the record. */
static cJSON *measurement_of(const char *key, const cJSON *rec)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "store_key", key);
    copy_as(m, "accuracy_metric", rec, "accuracy", "metric");
    copy_as(m, "accuracy_stderr", rec, "accuracy", "stderr");
    copy_as(m, "latency_reps", rec, "latency", "reps");
    copy_as(m, "latency_converged", rec, "latency", "converged");
    copy_as(m, "latency_p10_s", at(rec, "latency", "total_s"), "p10", NULL);
    copy_as(m, "latency_p90_s", at(rec, "latency", "total_s"), "p90", NULL);
    copy_as(m, "paired_with", at(rec, "latency", "paired"), "with", NULL);
    copy_as(m, "energy_source", rec, "energy", "source");
    copy_as(m, "energy_measured", rec, "energy", "measured");
    copy_as(m, "memory_source", rec, "memory", "source");
    copy_as(m, "engine", rec, "engine", "version");
    copy_as(m, "hardware", rec, "hardware", "name");
    copy_as(m, "efficientllm", rec, "efficientllm", NULL);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(m, "efficientllm"), "definitions");
    return m;
}

static cJSON *point_of(const char *key, const cJSON *rec, const aellm_objectives *o)
{
    cJSON *p = cJSON_CreateObject();
    copy_as(p, "config", rec, "config", NULL);
    copy_as(p, "eval_config", rec, "config", NULL);
    copy_as(p, "provenance", rec, "provenance", NULL);
    cJSON_AddNumberToObject(p, "acc", o->v[AELLM_OBJ_ACC]);
    cJSON_AddNumberToObject(p, "latency_s", o->v[AELLM_OBJ_LAT]);
    cJSON_AddNumberToObject(p, "memory_bytes", o->v[AELLM_OBJ_MEM]);
    cJSON_AddNumberToObject(p, "energy_j", o->v[AELLM_OBJ_ENERGY]);
    cJSON_AddNumberToObject(p, "tune_s", o->v[AELLM_OBJ_TUNE]);
    cJSON_AddItemToObject(p, "measurement", measurement_of(key, rec));
    return p;
}

static const char *str_at(const cJSON *rec, const char *a, const char *b)
{
    const char *s = cJSON_GetStringValue(at(rec, a, b));
    return s ? s : "?";
}

/* A new dataset for the (model, task, hardware) of rec. */
static cJSON *group_new(const cJSON *rec, const char *group, const char *path)
{
    const char *model = str_at(rec, "model", "path");
    char name[256], label[512];
    snprintf(name, sizeof(name), "%s", strrchr(model, '/') ? strrchr(model, '/') + 1 : model);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = '\0';
    snprintf(label, sizeof(label), "%s \xc2\xb7 %s \xc2\xb7 %s (store)", name,
             str_at(rec, "task", "name"), str_at(rec, "hardware", "name"));
    cJSON *ds = cJSON_CreateObject();
    cJSON_AddStringToObject(ds, "label", label);
    cJSON_AddStringToObject(ds, "source", path);
    cJSON_AddStringToObject(ds, "kind", "store");
    cJSON_AddStringToObject(ds, "store_group", group);
    cJSON *ctx = cJSON_AddObjectToObject(ds, "context");
    cJSON_AddStringToObject(ctx, "model", model);
    cJSON_AddStringToObject(ctx, "task", str_at(rec, "task", "name"));
    cJSON_AddStringToObject(ctx, "hardware", str_at(rec, "hardware", "name"));
    cJSON_AddStringToObject(ds, "efficiency_objectives",
                            "as stored: measured on the store's hardware unless marked predicted");
    cJSON_AddArrayToObject(ds, "points");
    return ds;
}

static cJSON *group_of(store_walk *w, const cJSON *rec)
{
    char group[768];
    snprintf(group, sizeof(group), "%s|%s|%s", str_at(rec, "model", "sha256"),
             str_at(rec, "task", "name"), str_at(rec, "hardware", "name"));
    cJSON *ds;
    cJSON_ArrayForEach(ds, w->groups)
    {
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(ds, "store_group")), group)) return ds;
    }
    ds = group_new(rec, group, w->path);
    cJSON_AddItemToArray(w->groups, ds);
    return ds;
}

static int add_record(const char *key, const char *record_json, void *user)
{
    store_walk *w = user;
    aellm_objectives o;
    cJSON *rec = cJSON_Parse(record_json);
    if (!rec || aellm_objectives_from_record(record_json, &o)) {
        w->skipped++; /* the walk goes on: one bad record should not hide the rest */
        cJSON_Delete(rec);
        return 0;
    }
    cJSON *ds = group_of(w, rec);
    cJSON *points = cJSON_GetObjectItem(ds, "points");
    if (!cJSON_HasObjectItem(ds, "accuracy_metric"))
        copy_as(ds, "accuracy_metric", rec, "accuracy", "metric");
    cJSON_AddItemToArray(points, point_of(key, rec, &o));
    cJSON_Delete(rec);
    return 0;
}

int aellm_report_add_store(aellm_report *r, const char *path)
{
    struct stat st;
    /* aellm_store_open creates a missing file: a typo must not become an
       empty store (nor an empty report) */
    if (stat(path, &st) != 0)
        return aellm_error_set(AELLM_ENOTFOUND, "%s: %s", path, strerror(errno));
    aellm_store *s = NULL;
    store_walk w = {cJSON_CreateArray(), path, 0};
    int rc = aellm_store_open(&s, path);
    if (!rc) rc = aellm_store_each(s, NULL, NULL, NULL, add_record, &w);
    if (!rc && cJSON_GetArraySize(w.groups) == 0)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: no evaluation in the store%s", path,
                             w.skipped ? " that has the four objectives" : "");
    while (!rc && cJSON_GetArraySize(w.groups) > 0) {
        cJSON *ds = cJSON_DetachItemFromArray(w.groups, 0);
        report_mark_front(cJSON_GetObjectItem(ds, "points"));
        cJSON_AddNumberToObject(ds, "skipped_records", w.skipped);
        report_add_dataset(r, ds);
    }
    cJSON_Delete(w.groups);
    aellm_store_close(s);
    return rc;
}
