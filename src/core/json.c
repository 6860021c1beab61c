#include "core/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

static int by_key(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Sorts the members of every object of a copy in place. */
static int sort_keys(cJSON *j)
{
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j)) return 0;
    int n = 0;
    for (cJSON *c = j->child; c; c = c->next) {
        if (sort_keys(c)) return -1;
        n++;
    }
    if (!cJSON_IsObject(j) || n < 2) return 0;
    cJSON **v = malloc((size_t)n * sizeof(*v));
    if (!v) return -1;
    int i = 0;
    for (cJSON *c = j->child; c; c = c->next) v[i++] = c;
    qsort(v, (size_t)n, sizeof(*v), by_key);
    for (i = 0; i < n; i++) {
        v[i]->prev = i ? v[i - 1] : v[n - 1]; /* cJSON: child->prev is the tail */
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    }
    j->child = v[0];
    free(v);
    return 0;
}

char *aellm_json_canonical(const cJSON *j)
{
    cJSON *copy = cJSON_Duplicate(j, 1);
    if (!copy) return NULL;
    char *s = sort_keys(copy) ? NULL : cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    return s;
}

static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at && *p; p++) line += *p == '\n';
    return line;
}

int aellm_json_load(cJSON **out, const char *path)
{
    *out = NULL;
    char *text;
    size_t len;
    int rc = aellm_file_read(&text, &len, path, AELLM_JSON_MAX_BYTES, "JSON file");
    if (rc) return rc;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        rc = aellm_error_set(AELLM_EFORMAT, "%s:%d: malformed JSON", path,
                             at ? line_of(text, at) : 1);
    }
    free(text);
    *out = j;
    return rc;
}
