/* One `aellm search --json` file as a dataset: read, checked to be a search
 * result (points with the four objectives), labelled from its context, its
 * baselines' picks tied to the points they name. The search's fields pass
 * through unchanged so that the explorer shows what the search wrote. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "report/report_internal.h"

/* The whole file, NUL-terminated, into *out (caller frees). */
static int read_file(const char *path, char **out, size_t *len)
{
    return aellm_file_read(out, len, path, 0, "search result");
}

static int parse_json(const char *path, cJSON **out)
{
    char *text;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc) return rc;
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        rc = aellm_error_set(AELLM_EFORMAT, "%s: not valid JSON (near byte %zu)", path, at);
    }
    free(text);
    return rc;
}

static const char *const objective_keys[] = {"acc", "latency_s", "memory_bytes", "energy_j"};

/* Every point an object with the four objectives as numbers: what the
 * explorer and the plots rely on. */
static int check_search(const char *path, const cJSON *doc)
{
    const cJSON *points = cJSON_GetObjectItem(doc, "points");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(points))
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: not an aellm search result (no \"points\" array; write one "
                               "with aellm search --json)",
                               path);
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, points)
    {
        for (int k = 0; k < 4; k++)
            if (!cJSON_IsNumber(cJSON_GetObjectItem(p, objective_keys[k])))
                return aellm_error_set(AELLM_EFORMAT, "%s: point %d has no number \"%s\"", path, i,
                                       objective_keys[k]);
        i++;
    }
    return 0;
}

/* "stories260K · stories-ppl · AMD EPYC", or "... · Llama-2-7B on
 * a100-80gb" for a predicted deployment; the file's name without context. */
static char *label_of(const cJSON *doc, const char *path)
{
    const cJSON *ctx = cJSON_GetObjectItem(doc, "context");
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "model"));
    const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "task"));
    const char *hw = cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "hardware"));
    const char *shape = cJSON_GetStringValue(cJSON_GetObjectItem(ctx, "shape"));
    char buf[512], name[256];
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!model || !task) {
        snprintf(buf, sizeof(buf), "%s", base);
        return strdup(buf);
    }
    snprintf(name, sizeof(name), "%s", strrchr(model, '/') ? strrchr(model, '/') + 1 : model);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = '\0';
    if (shape)
        snprintf(buf, sizeof(buf), "%s \xc2\xb7 %s \xc2\xb7 %s on %s", name, task, shape,
                 hw ? hw : "?");
    else
        snprintf(buf, sizeof(buf), "%s \xc2\xb7 %s \xc2\xb7 %s", name, task, hw ? hw : "?");
    return strdup(buf);
}

/* Baselines name their pick by configuration: the index of the point with
 * that configuration (or -1), so that the views can put it where it is. */
static void tie_baselines(cJSON *doc)
{
    cJSON *b, *points = cJSON_GetObjectItem(doc, "points");
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(doc, "baselines"))
    {
        const cJSON *pick = cJSON_GetObjectItem(b, "pick");
        int index = -1, i = 0;
        const cJSON *p;
        cJSON_ArrayForEach(p, points)
        {
            if (pick && (cJSON_Compare(pick, cJSON_GetObjectItem(p, "config"), 1) ||
                         cJSON_Compare(pick, cJSON_GetObjectItem(p, "eval_config"), 1))) {
                index = i;
                break;
            }
            i++;
        }
        cJSON_AddNumberToObject(b, "point_index", index);
    }
}

/* The EfficientLLM definitions repeat in every measured point: kept once,
 * on the dataset, so that a report of many points stays small. */
static void hoist_definitions(cJSON *doc)
{
    cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(doc, "points"))
    {
        cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "measurement"), "efficientllm");
        cJSON *d = cJSON_DetachItemFromObject(e, "definitions");
        if (d && !cJSON_HasObjectItem(doc, "efficientllm_definitions"))
            cJSON_AddItemToObject(doc, "efficientllm_definitions", d);
        else
            cJSON_Delete(d);
    }
}

int aellm_report_add_search(aellm_report *r, const char *path)
{
    cJSON *doc = NULL;
    int rc = parse_json(path, &doc);
    if (!rc) rc = check_search(path, doc);
    char *label = rc ? NULL : label_of(doc, path);
    if (!rc && !label) rc = aellm_error_oom("a label", 512);
    if (rc) goto done;
    tie_baselines(doc);
    hoist_definitions(doc);
    const char *keys[] = {"label", "source", "kind"}, *values[] = {label, path, "search"};
    for (int k = 0; k < 3; k++) { /* ours, whatever a later search writes there */
        cJSON_DeleteItemFromObject(doc, keys[k]);
        cJSON_AddStringToObject(doc, keys[k], values[k]);
    }
    report_add_dataset(r, doc);
    doc = NULL;
done:
    free(label);
    cJSON_Delete(doc);
    return rc;
}
