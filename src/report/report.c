/* The report handle and its datasets from `aellm search --json` files: each
 * file is checked to be a search result and kept nearly as written (the
 * explorer reads the search's own fields), with a label and its baselines
 * tied to the points they picked. Not the drawing (report_html.c,
 * report_plot.c) nor the store (report_store.c). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/atomic.h"
#include "report/report_internal.h"

int aellm_report_new(aellm_report **out)
{
    *out = NULL;
    aellm_report *r = calloc(1, sizeof(*r));
    if (!r || !(r->datasets = cJSON_CreateArray())) {
        free(r);
        return aellm_error_oom("a report", sizeof(*r));
    }
    *out = r;
    return 0;
}

void aellm_report_free(aellm_report *r)
{
    if (!r) return;
    cJSON_Delete(r->datasets);
    free(r);
}

int aellm_report_dataset_count(const aellm_report *r)
{
    return cJSON_GetArraySize(r->datasets);
}

int aellm_report_point_count(const aellm_report *r)
{
    int n = 0;
    const cJSON *ds;
    cJSON_ArrayForEach(ds, r->datasets) n += cJSON_GetArraySize(cJSON_GetObjectItem(ds, "points"));
    return n;
}

const char *aellm_report_dataset_label(const aellm_report *r, int i)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(r->datasets, i), "label"));
}

static const report_axis_info axes[AELLM_REPORT_AXIS_COUNT] = {
    [AELLM_REPORT_ACC] = {"acc", "accuracy objective (higher is better)", 1, 1},
    [AELLM_REPORT_LATENCY] = {"latency", "latency per request (s)", 1, 0},
    [AELLM_REPORT_MEMORY] = {"memory", "peak memory (MiB)", 1.0 / 1048576.0, 0},
    [AELLM_REPORT_ENERGY] = {"energy", "energy per request (J)", 1, 0},
    [AELLM_REPORT_THROUGHPUT] = {"throughput", "throughput (tokens/s)", 1, 1},
    [AELLM_REPORT_AMU] = {"amu", "memory bandwidth utilisation (AMU)", 1, 1},
    [AELLM_REPORT_PCU] = {"pcu", "compute utilisation (PCU)", 1, 1},
    [AELLM_REPORT_COMPRESSION] = {"compression", "compression rate (x)", 1, 1},
    [AELLM_REPORT_TUNE] = {"tune", "making the model (s)", 1, 0},
};

const report_axis_info *report_axis(aellm_report_axis a)
{
    return &axes[a];
}

int aellm_report_axis_parse(aellm_report_axis *out, const char *name)
{
    for (int a = 0; a < AELLM_REPORT_AXIS_COUNT; a++)
        if (!strcmp(name, axes[a].name)) return *out = (aellm_report_axis)a, 0;
    if (!strcmp(name, "accuracy")) return *out = AELLM_REPORT_ACC, 0;
    return aellm_error_set(AELLM_EINVAL,
                           "unknown objective '%s' (acc, latency, memory, energy, throughput, "
                           "amu, pcu, compression, tune)",
                           name);
}

static const char *const point_keys[] = {"acc", "latency_s", "memory_bytes", "energy_j"};
static const char *const efficientllm_keys[] = {"throughput_tokens_per_s", "amu", "pcu",
                                                "compression_rate"};

int report_point_value(const cJSON *point, aellm_report_axis a, double *v)
{
    const cJSON *n;
    if (a < AELLM_REPORT_THROUGHPUT) {
        n = cJSON_GetObjectItem(point, point_keys[a]);
    } else if (a == AELLM_REPORT_TUNE) { /* searches before it was recorded lack it */
        n = cJSON_GetObjectItem(point, "tune_s");
    } else {
        const cJSON *m = cJSON_GetObjectItem(point, "measurement");
        n = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "efficientllm"),
                                efficientllm_keys[a - AELLM_REPORT_THROUGHPUT]);
    }
    if (!cJSON_IsNumber(n)) return 0;
    *v = n->valuedouble * axes[a].scale;
    return 1;
}

static int label_taken(const aellm_report *r, const char *label)
{
    for (int i = 0; i < aellm_report_dataset_count(r); i++)
        if (!strcmp(aellm_report_dataset_label(r, i), label)) return 1;
    return 0;
}

/* Two searches of the same model, task and hardware would read alike in the
 * legend: the later one gets its file's name too, then a number. */
void report_add_dataset(aellm_report *r, cJSON *ds)
{
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItem(ds, "label"));
    const char *src = cJSON_GetStringValue(cJSON_GetObjectItem(ds, "source"));
    const char *base = src && strrchr(src, '/') ? strrchr(src, '/') + 1 : src ? src : "?";
    if (label_taken(r, label)) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s [%s]", label, base);
        for (int k = 2; label_taken(r, buf) && k < 1000; k++)
            snprintf(buf, sizeof(buf), "%s [%s] (%d)", label, base, k);
        cJSON_ReplaceItemInObject(ds, "label", cJSON_CreateString(buf));
    }
    cJSON_AddItemToArray(r->datasets, ds);
}

/* a dominates b: no objective worse, one better (acc up, the rest down). */
static int dominates(const double a[4], const double b[4])
{
    int better = 0;
    for (int k = 0; k < 4; k++) {
        double da = k ? -a[k] : a[k], db = k ? -b[k] : b[k];
        if (da < db) return 0;
        better |= da > db;
    }
    return better;
}

static void objectives_of(const cJSON *p, double v[4])
{
    for (int k = 0; k < 4; k++) v[k] = cJSON_GetObjectItem(p, point_keys[k])->valuedouble;
}

void report_mark_front(cJSON *points)
{
    const cJSON *p, *q;
    cJSON_ArrayForEach(p, points)
    {
        double a[4], b[4];
        int front = 1;
        objectives_of(p, a);
        cJSON_ArrayForEach(q, points)
        {
            objectives_of(q, b);
            if (q != p && dominates(b, a)) front = 0;
        }
        cJSON_DeleteItemFromObject((cJSON *)p, "on_front");
        cJSON_AddBoolToObject((cJSON *)p, "on_front", front);
    }
}

int report_write_atomic(const char *path, report_write_fn fn, void *user)
{
    aellm_atomic a;
    int rc = aellm_atomic_open(&a, path);
    if (rc) return rc;
    rc = fn(a.f, user);
    if (rc || ferror(a.f)) a.failed = 1; /* commit removes the temporary file */
    int wrote = aellm_atomic_commit(&a);
    return rc ? rc : wrote;
}
