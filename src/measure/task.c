/* Task specs: parsing with errors that name the file and the key, the
 * canonical form that identifies a task in the store, item selection by
 * limit and seed, and the helpers the per-kind runners share. The runners
 * are in task_ppl.c, task_choice.c and task_gen.c; data files are read in
 * task_data.c. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/timer.h"
#include "measure/task_internal.h"

static const char *const kind_names[AELLM_TASK_KIND_COUNT] = {
    "perplexity", "choice", "continuation", "exact_match", "needle", "kld"};

static const char *const format_names[TASK_FMT_COUNT] = {
    "", "hellaswag", "mc", "winogrande", "mmlu", "jsonl", "openai", "text_last_word"};

const char *aellm_task_kind_name(aellm_task_kind k)
{
    return k >= 0 && k < AELLM_TASK_KIND_COUNT ? kind_names[k] : "unknown";
}

const char *task_format_name(task_format f)
{
    return f >= 0 && f < TASK_FMT_COUNT ? format_names[f] : "";
}

/* ---- the keys of a spec, and which kinds take them ---- */
#define K(k)   (1u << AELLM_TASK_##k)
#define K_ALL  ((1u << AELLM_TASK_KIND_COUNT) - 1)
#define K_ITEM (K(CHOICE) | K(CONTINUATION) | K(EXACT_MATCH))
#define K_TEXT (K(PERPLEXITY) | K(KLD)) /* a text cut into windows */

static const struct {
    const char *key;
    unsigned kinds;
} spec_keys[] = {
    {"name", K_ALL},
    {"kind", K_ALL},
    {"description", K_ALL},
    {"data", K_ALL & ~K(NEEDLE)},
    {"train", K_ALL},
    {"limit", K_ITEM},
    {"seed", K_ITEM | K(NEEDLE)},
    {"n_ctx", K_TEXT},
    {"max_bytes", K_TEXT},
    {"max_chunks", K_TEXT},
    {"format", K(CHOICE) | K(CONTINUATION)},
    {"delimiter", K(CHOICE)},
    {"metric", K(CHOICE)},
    {"n_shot", K(EXACT_MATCH)},
    {"max_new_tokens", K(EXACT_MATCH)},
    {"lengths", K(NEEDLE)},
    {"depths", K(NEEDLE)},
    {"trials", K(NEEDLE)},
    {"filler", K(NEEDLE)},
};

static int check_keys(const aellm_task *t, const cJSON *j)
{
    for (const cJSON *v = j->child; v; v = v->next) {
        size_t i = 0, n = sizeof(spec_keys) / sizeof(spec_keys[0]);
        while (i < n && strcmp(spec_keys[i].key, v->string)) i++;
        if (i == n)
            return aellm_error_set(AELLM_EINVAL, "%s: unknown key \"%s\"", t->where, v->string);
        if (!(spec_keys[i].kinds & (1u << t->kind)))
            return aellm_error_set(AELLM_EINVAL, "%s: key \"%s\" does not apply to a %s task",
                                   t->where, v->string, kind_names[t->kind]);
    }
    return 0;
}

static int get_int(const aellm_task *t, const cJSON *j, const char *key, int64_t lo, int64_t hi,
                   int64_t def, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = def;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return aellm_error_set(AELLM_EINVAL, "%s: \"%s\" must be a whole number in [%lld, %lld]",
                               t->where, key, (long long)lo, (long long)hi);
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int get_str(const aellm_task *t, const cJSON *j, const char *key, const char *def,
                   const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = def;
    if (!v) return 0;
    if (!cJSON_IsString(v))
        return aellm_error_set(AELLM_EINVAL, "%s: \"%s\" must be a string", t->where, key);
    *out = v->valuestring;
    return 0;
}

/* "${data}" expanded, then a relative path taken from base_dir. */
static int resolve_path(const aellm_task *t, const char *key, const char *raw, const char *base_dir,
                        const char *data_dir, char **out)
{
    char expanded[PATH_MAX], path[PATH_MAX];
    size_t n = 0;
    for (const char *p = raw; *p && n < sizeof(expanded) - 1;) {
        if (!strncmp(p, "${data}", 7)) {
            if (!data_dir)
                return aellm_error_set(AELLM_EINVAL,
                                       "%s: \"%s\" uses ${data} but no data folder is known "
                                       "(set AELLM_DATA to a folder of the shared data sets, "
                                       "or run a bundled task such as stories-ppl)",
                                       t->where, key);
            n += (size_t)snprintf(expanded + n, sizeof(expanded) - n, "%s", data_dir);
            p += 7;
        } else {
            expanded[n++] = *p++;
        }
    }
    if (n >= sizeof(expanded) - 1)
        return aellm_error_set(AELLM_EINVAL, "%s: \"%s\" path too long", t->where, key);
    expanded[n] = '\0';
    int len = expanded[0] == '/' || !base_dir || !*base_dir
                  ? snprintf(path, sizeof(path), "%s", expanded)
                  : snprintf(path, sizeof(path), "%s/%s", base_dir, expanded);
    if (len >= (int)sizeof(path))
        return aellm_error_set(AELLM_EINVAL, "%s: \"%s\" path too long", t->where, key);
    if (!(*out = strdup(path))) return aellm_error_oom("task path", (unsigned long long)len);
    return 0;
}

/* The data file: present, hashed and sized (its identity in the store). */
static int open_data(aellm_task *t, const char *key, const char *raw, const char *base_dir,
                     const char *data_dir)
{
    int rc = resolve_path(t, key, raw, base_dir, data_dir, &t->data_path);
    if (rc) return rc;
    struct stat st;
    errno = 0;
    if (stat(t->data_path, &st) != 0 || !S_ISREG(st.st_mode))
        return aellm_error_set(AELLM_ENOTFOUND, "%s: data file %s: %s", t->where, t->data_path,
                               errno ? strerror(errno) : "not a regular file");
    t->data_bytes = (int64_t)st.st_size;
    return aellm_hash_file(t->data_path, t->data_sha);
}

static int parse_kind(aellm_task *t, const cJSON *j)
{
    const char *kind;
    int rc = get_str(t, j, "kind", NULL, &kind);
    if (rc) return rc;
    if (!kind) return aellm_error_set(AELLM_EINVAL, "%s: no \"kind\"", t->where);
    for (int k = 0; k < AELLM_TASK_KIND_COUNT; k++)
        if (!strcmp(kind, kind_names[k])) {
            t->kind = (aellm_task_kind)k;
            return 0;
        }
    return aellm_error_set(AELLM_EINVAL,
                           "%s: unknown kind \"%s\" (perplexity, kld, choice, continuation, "
                           "exact_match, needle)",
                           t->where, kind);
}

static int parse_format(aellm_task *t, const cJSON *j)
{
    const char *f;
    int rc = get_str(t, j, "format", "auto", &f);
    if (rc || !strcmp(f, "auto")) return rc;
    int lo = t->kind == AELLM_TASK_CHOICE ? TASK_FMT_HELLASWAG : TASK_FMT_JSONL;
    int hi = t->kind == AELLM_TASK_CHOICE ? TASK_FMT_MMLU : TASK_FMT_LAST_WORD;
    for (int k = lo; k <= hi; k++)
        if (!strcmp(f, format_names[k])) {
            t->format = (task_format)k;
            return 0;
        }
    return aellm_error_set(AELLM_EINVAL, "%s: unknown %s format \"%s\"", t->where,
                           kind_names[t->kind], f);
}

static int parse_numbers(const aellm_task *t, const cJSON *j, const char *key, double lo, double hi,
                         int whole, double **out, int *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key), *v;
    if (!a) return 0;
    int count = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || count < 1 || count > 64)
        return aellm_error_set(AELLM_EINVAL, "%s: \"%s\" must be a list of 1 to 64 numbers",
                               t->where, key);
    double *x = malloc((size_t)count * sizeof(double));
    if (!x) return aellm_error_oom(key, (unsigned long long)count * 8);
    int i = 0;
    cJSON_ArrayForEach(v, a)
    {
        if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
            (whole && v->valuedouble != floor(v->valuedouble))) {
            free(x);
            return aellm_error_set(AELLM_EINVAL, "%s: \"%s\"[%d] must be a %s in [%g, %g]",
                                   t->where, key, i, whole ? "whole number" : "number", lo, hi);
        }
        x[i++] = v->valuedouble;
    }
    *out = x, *n = count;
    return 0;
}

static int parse_needle(aellm_task *t, const cJSON *j, const char *base_dir, const char *data_dir)
{
    static const double def_lengths[] = {128, 256, 448}, def_depths[] = {0, 0.25, 0.5, 0.75, 1};
    double *lengths = NULL;
    int64_t trials;
    int rc = parse_numbers(t, j, "lengths", 16, 1 << 24, 1, &lengths, &t->n_lengths);
    if (!rc) rc = parse_numbers(t, j, "depths", 0, 1, 0, &t->depths, &t->n_depths);
    if (!rc) rc = get_int(t, j, "trials", 1, 100000, 2, &trials);
    if (rc) goto done;
    t->trials = (int)trials;
    if (!lengths) {
        t->n_lengths = 3;
        lengths = malloc(sizeof(def_lengths));
        if (lengths) memcpy(lengths, def_lengths, sizeof(def_lengths));
    }
    if (!t->depths && (t->depths = malloc(sizeof(def_depths)))) {
        memcpy(t->depths, def_depths, sizeof(def_depths));
        t->n_depths = 5;
    }
    t->lengths = malloc((size_t)t->n_lengths * sizeof(int));
    if (!lengths || !t->depths || !t->lengths) {
        rc = aellm_error_oom("needle cells", 0);
        goto done;
    }
    for (int i = 0; i < t->n_lengths; i++) t->lengths[i] = (int)lengths[i];
    const char *filler;
    if ((rc = get_str(t, j, "filler", NULL, &filler)) || !filler) goto done;
    if (!(rc = open_data(t, "filler", filler, base_dir, data_dir))) rc = task_read_filler(t);
done:
    free(lengths);
    return rc;
}

static int parse_choice(aellm_task *t, const cJSON *j)
{
    const char *delim, *metric;
    int rc = get_str(t, j, "delimiter", " ", &delim);
    if (!rc) rc = get_str(t, j, "metric", "acc", &metric);
    if (rc) return rc;
    if (strcmp(metric, "acc") && strcmp(metric, "acc_norm"))
        return aellm_error_set(AELLM_EINVAL, "%s: \"metric\" must be \"acc\" or \"acc_norm\"",
                               t->where);
    t->main_norm = !strcmp(metric, "acc_norm");
    if (!(t->delimiter = strdup(delim))) return aellm_error_oom("delimiter", strlen(delim));
    return task_read_choice(t);
}

/* "train": the text (or JSONL) a fine-tuning stage trains on for this task;
 * it must exist, but it is not part of the task's identity (the configuration
 * names it by its hash when it is used). */
static int parse_train(aellm_task *t, const cJSON *j, const char *base_dir, const char *data_dir)
{
    const char *train;
    int rc = get_str(t, j, "train", NULL, &train);
    if (rc || !train) return rc;
    if ((rc = resolve_path(t, "train", train, base_dir, data_dir, &t->train_path))) return rc;
    struct stat st;
    errno = 0;
    if (stat(t->train_path, &st) != 0 || !S_ISREG(st.st_mode))
        return aellm_error_set(AELLM_ENOTFOUND, "%s: training file %s: %s", t->where, t->train_path,
                               errno ? strerror(errno) : "not a regular file");
    return 0;
}

/* Everything after the kind is known and the keys are checked. */
static int parse_body(aellm_task *t, const cJSON *j, const char *base_dir, const char *data_dir)
{
    int64_t v;
    int rc;
    if ((rc = get_int(t, j, "limit", 0, INT64_MAX / 2, 0, &t->limit))) return rc;
    if ((rc = get_int(t, j, "seed", 0, (int64_t)1 << 53, 0, &t->seed))) return rc;
    if ((rc = parse_train(t, j, base_dir, data_dir))) return rc;
    if (t->kind == AELLM_TASK_NEEDLE) return parse_needle(t, j, base_dir, data_dir);
    const char *data;
    if ((rc = get_str(t, j, "data", NULL, &data))) return rc;
    if (!data) return aellm_error_set(AELLM_EINVAL, "%s: no \"data\" file", t->where);
    if ((rc = open_data(t, "data", data, base_dir, data_dir))) return rc;
    switch (t->kind) {
    case AELLM_TASK_PERPLEXITY:
    case AELLM_TASK_KLD:
        if ((rc = get_int(t, j, "n_ctx", 0, 1 << 24, 0, &v))) return rc;
        t->n_ctx = (int)v;
        if (t->n_ctx && t->n_ctx < 4)
            return aellm_error_set(AELLM_EINVAL, "%s: \"n_ctx\" must be 0 or at least 4", t->where);
        if ((rc = get_int(t, j, "max_bytes", 0, INT64_MAX / 2, 0, &t->max_bytes))) return rc;
        if ((rc = get_int(t, j, "max_chunks", 0, INT_MAX, 0, &v))) return rc;
        t->max_chunks = (int)v;
        return task_read_text(t->data_path, (size_t)t->max_bytes, &t->text, &t->text_len);
    case AELLM_TASK_CHOICE:
        if ((rc = parse_format(t, j))) return rc;
        return parse_choice(t, j);
    case AELLM_TASK_CONTINUATION:
        if ((rc = parse_format(t, j))) return rc;
        return task_read_continuation(t);
    case AELLM_TASK_EXACT_MATCH:
        if ((rc = get_int(t, j, "n_shot", 0, 64, 0, &v))) return rc;
        t->n_shot = (int)v;
        if ((rc = get_int(t, j, "max_new_tokens", 1, 1 << 20, 256, &v))) return rc;
        t->max_new = (int)v;
        return task_read_gsm8k(t);
    default:
        return aellm_error_set(AELLM_EINVAL, "%s: unknown kind", t->where);
    }
}

/* "dir/name.json" -> "name": the default task name. */
static char *stem_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".json")) n -= 5;
    return strndup(base, n);
}

static int parse_json(aellm_task **out, const cJSON *j, const char *where, const char *base_dir,
                      const char *data_dir)
{
    *out = NULL;
    aellm_task *t = calloc(1, sizeof(*t));
    if (!t || !(t->where = strdup(where))) {
        free(t);
        return aellm_error_oom("task", sizeof(*t));
    }
    const char *name;
    int rc = cJSON_IsObject(j)
                 ? 0
                 : aellm_error_set(AELLM_EFORMAT, "%s: a task spec is a JSON object", where);
    if (!rc) rc = parse_kind(t, j);
    if (!rc) rc = check_keys(t, j);
    if (!rc) rc = get_str(t, j, "name", NULL, &name);
    if (!rc) {
        t->name = name                         ? strdup(name)
                  : strcmp(where, "task spec") ? stem_of(where)
                                               : strdup(kind_names[t->kind]);
        if (!t->name) rc = aellm_error_oom("task name", 0);
    }
    if (!rc) rc = parse_body(t, j, base_dir, data_dir);
    if (rc) {
        aellm_task_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int aellm_task_parse(aellm_task **out, const char *json, const char *base_dir, const char *data_dir)
{
    *out = NULL;
    cJSON *j = cJSON_Parse(json);
    if (!j) return aellm_error_set(AELLM_EFORMAT, "task spec: malformed JSON");
    int rc = parse_json(out, j, "task spec", base_dir, data_dir);
    cJSON_Delete(j);
    return rc;
}

int aellm_task_load(aellm_task **out, const char *spec_path, const char *data_dir)
{
    cJSON *j;
    *out = NULL;
    int rc = aellm_json_load(&j, spec_path);
    if (rc) return rc;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", spec_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    rc = parse_json(out, j, spec_path, dir, data_dir);
    cJSON_Delete(j);
    return rc;
}

void aellm_task_free(aellm_task *t)
{
    if (!t) return;
    task_items_free(t->items, t->n_all);
    for (int i = 0; i < t->n_sentences; i++) free(t->sentences[i]);
    free(t->sentences);
    free(t->lengths);
    free(t->depths);
    free(t->delimiter);
    free(t->text);
    free(t->data_path);
    free(t->train_path);
    free(t->name);
    free(t->where);
    free(t);
}

aellm_task_kind aellm_task_kind_of(const aellm_task *t)
{
    return t->kind;
}

const char *aellm_task_name(const aellm_task *t)
{
    return t->name;
}

const char *aellm_task_train_path(const aellm_task *t)
{
    return t->train_path;
}

const char *aellm_task_data_path(const aellm_task *t)
{
    return t->data_path;
}

int64_t aellm_task_n_items(const aellm_task *t)
{
    if (t->kind == AELLM_TASK_PERPLEXITY || t->kind == AELLM_TASK_KLD) return t->max_chunks;
    if (t->kind == AELLM_TASK_NEEDLE) return (int64_t)t->n_lengths * t->n_depths * t->trials;
    return t->limit > 0 && t->limit < t->n_all ? t->limit : t->n_all;
}

/* ---- canonical form ---- */
static void add_file(cJSON *j, const char *key, const aellm_task *t)
{
    cJSON *d = cJSON_AddObjectToObject(j, key);
    cJSON_AddStringToObject(d, "sha256", t->data_sha);
    cJSON_AddNumberToObject(d, "bytes", (double)t->data_bytes);
}

/* limit and seed as they act: a limit that takes every item is no limit, and
 * then the seed picks nothing (unless it picks few-shot examples). */
static void add_selection(cJSON *j, const aellm_task *t)
{
    int all = t->limit == 0 || t->limit >= t->n_all;
    cJSON_AddNumberToObject(j, "limit", all ? 0 : (double)t->limit);
    cJSON_AddNumberToObject(j, "seed", all && !t->n_shot ? 0 : (double)t->seed);
}

static void add_needle(cJSON *j, const aellm_task *t)
{
    cJSON *l = cJSON_AddArrayToObject(j, "lengths"), *d = cJSON_AddArrayToObject(j, "depths");
    for (int i = 0; i < t->n_lengths; i++)
        cJSON_AddItemToArray(l, cJSON_CreateNumber(t->lengths[i]));
    for (int i = 0; i < t->n_depths; i++) cJSON_AddItemToArray(d, cJSON_CreateNumber(t->depths[i]));
    cJSON_AddNumberToObject(j, "trials", t->trials);
    cJSON_AddNumberToObject(j, "seed", (double)t->seed);
    if (t->data_path) add_file(j, "filler", t);
}

char *aellm_task_canonical_json(const aellm_task *t)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "kind", kind_names[t->kind]);
    if (t->kind != AELLM_TASK_NEEDLE) add_file(j, "data", t);
    switch (t->kind) {
    case AELLM_TASK_PERPLEXITY:
    case AELLM_TASK_KLD:
        cJSON_AddNumberToObject(j, "n_ctx", t->n_ctx);
        cJSON_AddNumberToObject(j, "max_bytes", (double)t->max_bytes);
        cJSON_AddNumberToObject(j, "max_chunks", t->max_chunks);
        break;
    case AELLM_TASK_CHOICE:
        cJSON_AddStringToObject(j, "format", format_names[t->format]);
        cJSON_AddStringToObject(j, "delimiter", t->delimiter);
        cJSON_AddStringToObject(j, "metric", t->main_norm ? "acc_norm" : "acc");
        add_selection(j, t);
        break;
    case AELLM_TASK_CONTINUATION:
        cJSON_AddStringToObject(j, "format", format_names[t->format]);
        add_selection(j, t);
        break;
    case AELLM_TASK_EXACT_MATCH:
        cJSON_AddNumberToObject(j, "n_shot", t->n_shot);
        cJSON_AddNumberToObject(j, "max_new_tokens", t->max_new);
        add_selection(j, t);
        break;
    default:
        add_needle(j, t);
        break;
    }
    char *s = aellm_json_canonical(j);
    cJSON_Delete(j);
    if (!s) aellm_error_oom("task canonical JSON", 0);
    return s;
}

/* ---- running ---- */
void aellm_task_result_free(aellm_task_result *r)
{
    if (!r) return;
    free(r->metrics);
    memset(r, 0, sizeof(*r));
}

int aellm_task_run(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress, void *user,
                   aellm_task_result *out)
{
    static int (*const run[AELLM_TASK_KIND_COUNT])(
        const aellm_task *, aellm_lm *, aellm_task_progress_fn, void *,
        aellm_task_result *) = {task_run_perplexity,  task_run_choice, task_run_continuation,
                                task_run_exact_match, task_run_needle, NULL};
    memset(out, 0, sizeof(*out));
    if (!t || !lm) return aellm_error_set(AELLM_EINVAL, "task_run: NULL task or model");
    if (!run[t->kind])
        return aellm_error_set(AELLM_EINVAL,
                               "%s: a %s task compares against the unmodified model "
                               "(aellm_task_run_kld, or aellm eval)",
                               t->where, kind_names[t->kind]);
    double t0 = aellm_time_s();
    int rc = run[t->kind](t, lm, progress, user, out);
    if (rc) {
        aellm_task_result_free(out);
        return rc;
    }
    out->seconds = aellm_time_s() - t0;
    return 0;
}

int task_metric_add(aellm_task_result *r, const char *name, double value, double stderr_)
{
    aellm_metric *m = realloc(r->metrics, (size_t)(r->n_metrics + 1) * sizeof(*m));
    if (!m) return aellm_error_oom("metrics", (unsigned long long)(r->n_metrics + 1) * sizeof(*m));
    r->metrics = m;
    m += r->n_metrics++;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->value = value;
    m->stderr_ = stderr_;
    return 0;
}

int task_metric_acc(aellm_task_result *r, const char *name, int64_t k, int64_t n)
{
    double p = n ? (double)k / (double)n : 0.0;
    return task_metric_add(r, name, p, n ? sqrt(p * (1.0 - p) / (double)n) : 0.0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int task_select(const aellm_task *t, aellm_lm *lm, task_accept_fn accept, int64_t **out, int64_t *n)
{
    int64_t total = t->n_all, want = t->limit > 0 && t->limit < total ? t->limit : total, k = 0;
    int64_t *idx = malloc((size_t)(total ? total : 1) * sizeof(int64_t));
    if (!idx) return aellm_error_oom("item order", (unsigned long long)total * 8);
    for (int64_t i = 0; i < total; i++) idx[i] = i;
    if (want < total) { /* Fisher-Yates with the task's seed */
        aellm_rng rng;
        aellm_rng_seed(&rng, (uint64_t)t->seed);
        for (int64_t i = total - 1; i > 0; i--) {
            int64_t j = (int64_t)(aellm_rng_u64(&rng) % (uint64_t)(i + 1)), tmp = idx[i];
            idx[i] = idx[j], idx[j] = tmp;
        }
    }
    for (int64_t i = 0; i < total && k < want; i++) {
        int ok = 1, rc = accept ? accept(t, lm, idx[i], &ok) : 0;
        if (rc) {
            free(idx);
            return rc;
        }
        if (ok) idx[k++] = idx[i];
    }
    qsort(idx, (size_t)k, sizeof(int64_t), cmp_i64);
    *out = idx, *n = k;
    return 0;
}

int task_encode(aellm_lm *lm, const char *text, int bos, int32_t **ids, int *n)
{
    size_t count = 0;
    *ids = NULL;
    int rc = lm->encode(lm->user, text, strlen(text), bos, ids, &count);
    if (rc) return rc;
    if (count > INT_MAX) {
        free(*ids);
        *ids = NULL;
        return aellm_error_set(AELLM_EINVAL, "text of %zu tokens is too long", count);
    }
    *n = (int)count;
    return 0;
}

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

int task_score(aellm_lm *lm, const char *ctx, const char *cont, task_loglik *out)
{
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0, rc;
    char *full = concat(ctx, cont);
    memset(out, 0, sizeof(*out));
    if (!full) return aellm_error_oom("task text", strlen(ctx) + strlen(cont));
    if ((rc = task_encode(lm, ctx, 1, &a, &na)) || (rc = task_encode(lm, full, 1, &b, &nb)))
        goto done;
    int p = 0;
    while (p < na && p < nb && a[p] == b[p]) p++;
    if (nb < 2) {
        rc = aellm_error_set(AELLM_EINVAL, "nothing to score after \"%.40s\"", ctx);
        goto done;
    }
    int n_cond = p < nb ? p : nb - 1, shift = nb > lm->n_ctx ? nb - lm->n_ctx : 0;
    if (n_cond < 1) n_cond = 1;
    if (shift) { /* keep the end, with BOS first as in perplexity's windows */
        b[shift] = b[0];
        n_cond = n_cond - shift > 1 ? n_cond - shift : 1;
    }
    out->fits = !shift;
    out->n_tokens = nb - shift - n_cond;
    rc = lm->score(lm->user, b + shift, nb - shift, n_cond, &out->logprob, &out->greedy);
done:
    free(full);
    free(a);
    free(b);
    return rc;
}

int task_logprobs(aellm_lm *lm, const int32_t *tokens, int n, int n_cond, double *out)
{
    if (lm->logprobs) return lm->logprobs(lm->user, tokens, n, n_cond, out);
    for (int i = n_cond; i < n; i++) {
        int greedy, rc = lm->score(lm->user, tokens, i + 1, i, &out[i - n_cond], &greedy);
        if (rc) return rc;
    }
    return 0;
}

int task_generate(aellm_lm *lm, const int32_t *prompt, int n_prompt, int max_new,
                  const char *const *stops, char **text)
{
    enum { STEP = 16 }; /* tokens per call: stops are looked for between calls */
    int32_t *buf = malloc((size_t)(n_prompt + max_new) * sizeof(int32_t));
    int n = n_prompt, rc = 0, done = 0;
    *text = NULL;
    if (!buf) return aellm_error_oom("generation", (unsigned long long)(n_prompt + max_new) * 4);
    memcpy(buf, prompt, (size_t)n_prompt * sizeof(int32_t));
    if (!(rc = lm->decode(lm->user, buf, 0, text))) {
        while (!done && n - n_prompt < max_new && n <= lm->n_ctx) {
            int want = max_new - (n - n_prompt) < STEP ? max_new - (n - n_prompt) : STEP, got = 0;
            if ((rc = lm->generate(lm->user, buf, n, want, buf + n, &got))) break;
            n += got;
            free(*text);
            if ((rc = lm->decode(lm->user, buf + n_prompt, (size_t)(n - n_prompt), text))) break;
            for (int s = 0; stops && stops[s]; s++) {
                char *at = strstr(*text, stops[s]);
                if (at) *at = '\0', done = 1;
            }
            done |= got < want; /* EOS, or the context is full */
        }
    }
    free(buf);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}
