/* The evaluation store: opening, the evaluation key, and writing and reading
 * records, each put being one transaction. The schema and its migrations are
 * in schema.c; what a record means is the measure layer's business. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/json.h"
#include "store/store_internal.h"

/* ---- errors and plumbing ---- */

int aellm_store_sql_error(aellm_store *s, const char *what)
{
    int e = sqlite3_errcode(s->db);
    /* SQLite finds out lazily, at the first statement that reads the file */
    if (e == SQLITE_NOTADB)
        return aellm_error_set(AELLM_EFORMAT, "%s: not an aellm store (not an SQLite database)",
                               s->path);
    if (e == SQLITE_BUSY || e == SQLITE_LOCKED)
        return aellm_error_set(AELLM_EIO,
                               "%s: %s: the store is locked by another process (waited %.1f s)",
                               s->path, what, s->busy_ms / 1000.0);
    int code = e == SQLITE_NOMEM        ? AELLM_ENOMEM
               : e == SQLITE_CORRUPT    ? AELLM_EFORMAT
               : e == SQLITE_CONSTRAINT ? AELLM_EINVAL
                                        : AELLM_EIO;
    return aellm_error_set(code, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

int aellm_store_exec(aellm_store *s, const char *sql, const char *what)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                   : aellm_store_sql_error(s, what);
}

static int prepare(aellm_store *s, const char *sql, sqlite3_stmt **st, const char *what)
{
    return sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK
               ? 0
               : aellm_store_sql_error(s, what);
}

static double unix_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- opening ---- */

/* synchronous = FULL: a killed process cannot leave half a record under any
 * setting in WAL mode (a commit is a frame marked in the log, and frames
 * after the last commit mark are ignored), but NORMAL can lose the last
 * commits on power failure; FULL syncs the log at each commit so that a
 * record, minutes of measurement, survives that too. Puts are rare, so the
 * one fsync per put costs nothing that matters. */
static int configure(aellm_store *s)
{
    /* Long enough for another process's put or migration to finish;
     * $AELLM_STORE_BUSY_MS changes it (tests, slow shared disks). */
    const char *env = getenv("AELLM_STORE_BUSY_MS");
    s->busy_ms = env && atoi(env) > 0 ? atoi(env) : 10000;
    sqlite3_busy_timeout(s->db, s->busy_ms);
    return aellm_store_exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL",
                            "cannot configure");
}

int aellm_store_open(aellm_store **out, const char *path)
{
    *out = NULL;
    if (!path || !*path) return aellm_error_set(AELLM_EINVAL, "store: no file name given");
    aellm_store *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return aellm_error_oom("a store", sizeof(*s));
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = 0;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK)
        rc = s->db ? aellm_store_sql_error(s, "cannot open")
                   : aellm_error_oom("an SQLite connection", 0);
    if (!rc) rc = configure(s);
    if (!rc) rc = aellm_store_schema_prepare(s);
    if (rc) {
        aellm_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void aellm_store_close(aellm_store *s)
{
    if (!s) return;
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

int aellm_store_schema_version(aellm_store *s)
{
    return s->version;
}

/* ---- the key ---- */

static int add_identity(cJSON *j, const char *name, const char *value)
{
    return value ? cJSON_AddStringToObject(j, name, value) != NULL
                 : cJSON_AddNullToObject(j, name) != NULL;
}

void aellm_store_key(const char *model_hash, const char *task_hash, const char *hw_hash,
                     const char *config_hash, const char *engine_version, const char *protocol_hash,
                     char out[65])
{
    out[0] = 0; /* an empty key tells the caller that memory ran out */
    cJSON *j = cJSON_CreateObject();
    int ok = j && add_identity(j, "model", model_hash) && add_identity(j, "task", task_hash) &&
             add_identity(j, "hardware", hw_hash) && add_identity(j, "config", config_hash) &&
             add_identity(j, "engine", engine_version) &&
             (!protocol_hash || add_identity(j, "protocol", protocol_hash));
    char *text = ok ? aellm_json_canonical(j) : NULL;
    if (text) aellm_hash_str(text, out);
    free(text);
    cJSON_Delete(j);
}

/* ---- writing ---- */

static int is_sha256_hex(const char *h)
{
    size_t n = 0;
    for (; h[n]; n++)
        if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f'))) return 0;
    return n == 64;
}

static int check_hash(const char *name, const char *hash, const char *json_name, const char *json)
{
    if (!hash) return aellm_error_set(AELLM_EINVAL, "store: the record has no %s", name);
    if (!is_sha256_hex(hash))
        return aellm_error_set(AELLM_EINVAL, "store: %s \"%.80s\" is not a SHA-256 in hex", name,
                               hash);
    if (!json) return aellm_error_set(AELLM_EINVAL, "store: the record has no %s", json_name);
    return 0;
}

/* Everything the schema would refuse, refused before the transaction with a
 * message naming the field. */
static int check_record(const aellm_eval_record *r)
{
    int rc = check_hash("model_hash", r->model_hash, "model_json", r->model_json);
    if (!rc) rc = check_hash("task_hash", r->task_hash, "task_json", r->task_json);
    if (!rc) rc = check_hash("hw_hash", r->hw_hash, "hw_json", r->hw_json);
    if (!rc) rc = check_hash("config_hash", r->config_hash, "config_json", r->config_json);
    if (rc) return rc;
    if (!r->engine_version || !*r->engine_version)
        return aellm_error_set(AELLM_EINVAL, "store: the record has no engine_version");
    if (!r->provenance) return aellm_error_set(AELLM_EINVAL, "store: the record has no provenance");
    if (strcmp(r->provenance, "measured") && strcmp(r->provenance, "predicted"))
        return aellm_error_set(AELLM_EINVAL,
                               "store: provenance \"%.40s\" is neither measured nor predicted",
                               r->provenance);
    if (!r->record_json || !*r->record_json)
        return aellm_error_set(AELLM_EINVAL, "store: the record has no record_json");
    return 0;
}

static const char *const identity_sql[] = {
    "INSERT OR IGNORE INTO models(hash, json, created_at) VALUES(?1, ?2, ?3)",
    "INSERT OR IGNORE INTO tasks(hash, json, created_at) VALUES(?1, ?2, ?3)",
    "INSERT OR IGNORE INTO hardware(hash, json, created_at) VALUES(?1, ?2, ?3)",
    "INSERT OR IGNORE INTO configs(hash, json, created_at) VALUES(?1, ?2, ?3)",
};

static int put_identity(aellm_store *s, int table, const char *hash, const char *json, double now)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, identity_sql[table], &st, "cannot write an identity");
    if (!rc) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = aellm_store_sql_error(s, "cannot write an identity");
    }
    sqlite3_finalize(st);
    return rc;
}

static const char evaluation_sql[] =
    "INSERT OR REPLACE INTO evaluations(key, model_hash, task_hash, hw_hash, config_hash,"
    " engine_version, provenance, accuracy_metric, accuracy_higher_is_better, accuracy,"
    " accuracy_stderr, latency_s, latency_p10_s, latency_p90_s, prefill_s, decode_s,"
    " latency_reps, peak_mem_bytes, peak_rss_bytes, energy_j, energy_std_j, energy_source,"
    " started_at, finished_at, record_json, record_sha256, protocol_json)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";

/* Binds in column order; a NaN becomes NULL (SQLite's rule), "not measured". */
static void bind_evaluation(sqlite3_stmt *st, const char *key, const aellm_eval_record *r,
                            const char *digest)
{
    const char *text[] = {key,           r->model_hash,     r->task_hash,
                          r->hw_hash,    r->config_hash,    r->engine_version,
                          r->provenance, r->accuracy_metric};
    int i = 1;
    for (size_t k = 0; k < sizeof(text) / sizeof(text[0]); k++)
        sqlite3_bind_text(st, i++, text[k], -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, r->accuracy_higher_is_better);
    const double before_reps[] = {r->accuracy,      r->accuracy_stderr, r->latency_s,
                                  r->latency_p10_s, r->latency_p90_s,   r->prefill_s,
                                  r->decode_s};
    for (size_t k = 0; k < sizeof(before_reps) / sizeof(before_reps[0]); k++)
        sqlite3_bind_double(st, i++, before_reps[k]);
    sqlite3_bind_int(st, i++, r->latency_reps);
    const double after_reps[] = {r->peak_mem_bytes, r->peak_rss_bytes, r->energy_j,
                                 r->energy_std_j};
    for (size_t k = 0; k < sizeof(after_reps) / sizeof(after_reps[0]); k++)
        sqlite3_bind_double(st, i++, after_reps[k]);
    sqlite3_bind_text(st, i++, r->energy_source, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, i++, r->started_at);
    sqlite3_bind_double(st, i++, r->finished_at);
    sqlite3_bind_text(st, i++, r->record_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->protocol_json, -1, SQLITE_STATIC); /* NULL binds NULL */
}

static int put_evaluation(aellm_store *s, const char *key, const aellm_eval_record *r)
{
    char digest[AELLM_HASH_HEX];
    aellm_hash_str(r->record_json, digest); /* lets a reader check the record is whole */
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, evaluation_sql, &st, "cannot write the evaluation");
    if (!rc) {
        bind_evaluation(st, key, r, digest);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = aellm_store_sql_error(s, "cannot write the evaluation");
    }
    sqlite3_finalize(st);
    return rc;
}

static int record_key(const aellm_eval_record *r, char key[AELLM_HASH_HEX])
{
    char protocol_hash[AELLM_HASH_HEX];
    if (r->protocol_json) aellm_hash_str(r->protocol_json, protocol_hash);
    aellm_store_key(r->model_hash, r->task_hash, r->hw_hash, r->config_hash, r->engine_version,
                    r->protocol_json ? protocol_hash : NULL, key);
    return key[0] ? 0 : aellm_error_oom("an evaluation key", 0);
}

int aellm_store_put(aellm_store *s, const aellm_eval_record *r, char key_out[65])
{
    int rc = check_record(r);
    if (rc) return rc;
    char key[AELLM_HASH_HEX];
    if ((rc = record_key(r, key))) return rc;
    const char *hashes[] = {r->model_hash, r->task_hash, r->hw_hash, r->config_hash};
    const char *jsons[] = {r->model_json, r->task_json, r->hw_json, r->config_json};
    double now = unix_now();
    /* IMMEDIATE takes the write lock now (waiting up to the busy timeout), so
     * the transaction cannot fail half way for want of it. */
    if ((rc = aellm_store_exec(s, "BEGIN IMMEDIATE", "cannot start a transaction"))) return rc;
    for (int t = 0; t < 4 && !rc; t++) rc = put_identity(s, t, hashes[t], jsons[t], now);
    if (!rc) rc = put_evaluation(s, key, r);
    if (!rc) rc = aellm_store_exec(s, "COMMIT", "cannot commit the evaluation");
    if (rc) {
        /* the message is already taken; ROLLBACK's own would replace SQLite's */
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (key_out) memcpy(key_out, key, AELLM_HASH_HEX);
    return 0;
}

/* ---- reading ---- */

/* A record whose digest does not match was damaged outside aellm. */
static int check_whole(aellm_store *s, const char *key, const char *json, const char *digest)
{
    char h[AELLM_HASH_HEX];
    aellm_hash_str(json, h);
    if (digest && !strcmp(h, digest)) return 0;
    return aellm_error_set(AELLM_EFORMAT, "%s: evaluation %.64s is damaged (its digest differs)",
                           s->path, key);
}

/* Prepares sql (one parameter, the key) and steps to its row: 0 with *st on
 * the row (the caller finalizes), AELLM_ENOTFOUND (no message: an expected
 * answer, not a failure) or an error, *st then finalized. */
static int row_by_key(aellm_store *s, const char *sql, const char *key, sqlite3_stmt **st)
{
    int rc = prepare(s, sql, st, "cannot read");
    if (rc) return rc;
    sqlite3_bind_text(*st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(*st);
    if (step == SQLITE_ROW) return 0;
    rc = step == SQLITE_DONE ? AELLM_ENOTFOUND : aellm_store_sql_error(s, "cannot read");
    sqlite3_finalize(*st);
    *st = NULL;
    return rc;
}

int aellm_store_get(aellm_store *s, const char *key, char **json)
{
    *json = NULL;
    sqlite3_stmt *st = NULL;
    int rc = row_by_key(s, "SELECT record_json, record_sha256 FROM evaluations WHERE key = ?1", key,
                        &st);
    if (rc) return rc;
    const char *text = (const char *)sqlite3_column_text(st, 0);
    const char *digest = (const char *)sqlite3_column_text(st, 1);
    rc = text ? check_whole(s, key, text, digest) : aellm_error_oom("a record", 0);
    if (!rc && !(*json = strdup(text))) rc = aellm_error_oom("a record", strlen(text) + 1);
    sqlite3_finalize(st);
    return rc;
}
/* The query for the filters given: only the columns asked for are compared,
 * so that SQLite can use the indexes. */
static void each_sql(char *sql, size_t cap, const char *const values[3])
{
    static const char *const columns[] = {"model_hash", "task_hash", "hw_hash"};
    static const char *const params[] = {"?1", "?2", "?3"};
    size_t n =
        (size_t)snprintf(sql, cap, "SELECT key, record_json, record_sha256 FROM evaluations");
    int first = 1;
    for (int i = 0; i < 3; i++) {
        if (!values[i]) continue;
        n += (size_t)snprintf(sql + n, cap - n, " %s %s = %s", first ? "WHERE" : "AND", columns[i],
                              params[i]);
        first = 0;
    }
    /* rowid order is insertion order; a replaced record is new again */
    snprintf(sql + n, cap - n, " ORDER BY rowid");
}

int aellm_store_each(aellm_store *s, const char *model_hash, const char *task_hash,
                     const char *hw_hash, aellm_store_each_fn fn, void *user)
{
    const char *const values[3] = {model_hash, task_hash, hw_hash};
    char sql[256];
    each_sql(sql, sizeof(sql), values);
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql, &st, "cannot read");
    if (rc) return rc;
    for (int i = 0; i < 3; i++)
        if (values[i]) sqlite3_bind_text(st, i + 1, values[i], -1, SQLITE_STATIC);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        const char *digest = (const char *)sqlite3_column_text(st, 2);
        rc = key && text ? check_whole(s, key, text, digest) : aellm_error_oom("a record", 0);
        if (!rc) rc = fn(key, text, user);
    }
    if (!rc && step != SQLITE_DONE) rc = aellm_store_sql_error(s, "cannot read");
    sqlite3_finalize(st);
    return rc;
}

static int64_t count_rows(aellm_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql, &st, "cannot count");
    if (rc) return rc;
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                               : aellm_store_sql_error(s, "cannot count");
    sqlite3_finalize(st);
    return n;
}

int64_t aellm_store_count(aellm_store *s)
{
    return count_rows(s, "SELECT count(*) FROM evaluations");
}

/* ---- failures ---- */

int aellm_store_put_failure(aellm_store *s, const char *key, const char *config_hash,
                            const char *evaluator, const char *error)
{
    if (!key || !config_hash || !evaluator || !error)
        return aellm_error_set(AELLM_EINVAL, "store: a failure needs a key, a configuration, "
                                             "an evaluator and an error");
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     "INSERT OR REPLACE INTO failures(key, config_hash, evaluator, error, "
                     "failed_at) VALUES(?1, ?2, ?3, ?4, ?5)",
                     &st, "cannot write the failure");
    if (rc) return rc;
    const char *text[] = {key, config_hash, evaluator, error};
    for (int i = 0; i < 4; i++) sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, unix_now());
    if (sqlite3_step(st) != SQLITE_DONE) rc = aellm_store_sql_error(s, "cannot write the failure");
    sqlite3_finalize(st);
    return rc;
}

int aellm_store_get_failure(aellm_store *s, const char *key, char **error)
{
    *error = NULL;
    sqlite3_stmt *st = NULL;
    int rc = row_by_key(s, "SELECT error FROM failures WHERE key = ?1", key, &st);
    if (rc) return rc;
    const char *text = (const char *)sqlite3_column_text(st, 0);
    if (!text || !(*error = strdup(text))) rc = aellm_error_oom("a failure", 0);
    sqlite3_finalize(st);
    return rc;
}

int aellm_store_clear_failure(aellm_store *s, const char *key)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "DELETE FROM failures WHERE key = ?1", &st, "cannot forget a failure");
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = aellm_store_sql_error(s, "cannot forget a failure");
    sqlite3_finalize(st);
    return rc;
}

int64_t aellm_store_count_failures(aellm_store *s)
{
    return count_rows(s, "SELECT count(*) FROM failures");
}

/* ---- one evaluation between stores (a worker's to the coordinator's) ---- */

static const char export_sql[] =
    "SELECT e.key, e.model_hash, m.json, e.task_hash, t.json, e.hw_hash, h.json, e.config_hash,"
    " c.json, e.engine_version, e.protocol_json, e.provenance, e.accuracy_metric,"
    " e.energy_source, e.record_json, e.accuracy_higher_is_better, e.latency_reps,"
    " e.accuracy, e.accuracy_stderr, e.latency_s, e.latency_p10_s, e.latency_p90_s,"
    " e.prefill_s, e.decode_s, e.peak_mem_bytes, e.peak_rss_bytes, e.energy_j,"
    " e.energy_std_j, e.started_at, e.finished_at, e.record_sha256"
    " FROM evaluations e JOIN models m ON m.hash = e.model_hash"
    " JOIN tasks t ON t.hash = e.task_hash JOIN hardware h ON h.hash = e.hw_hash"
    " JOIN configs c ON c.hash = e.config_hash WHERE e.key = ?1";

/* Column names of export_sql's result, in order: texts, integers, reals. */
static const char *const export_text[] = {
    "key",           "model_hash", "model_json",      "task_hash",     "task_json",
    "hw_hash",       "hw_json",    "config_hash",     "config_json",   "engine_version",
    "protocol_json", "provenance", "accuracy_metric", "energy_source", "record_json"};
static const char *const export_int[] = {"accuracy_higher_is_better", "latency_reps"};
static const char *const export_real[] = {
    "accuracy",     "accuracy_stderr", "latency_s",      "latency_p10_s",  "latency_p90_s",
    "prefill_s",    "decode_s",        "peak_mem_bytes", "peak_rss_bytes", "energy_j",
    "energy_std_j", "started_at",      "finished_at"};
enum { N_TEXT = 15, N_INT = 2, N_REAL = 13 };

static cJSON *export_row(sqlite3_stmt *st)
{
    cJSON *j = cJSON_CreateObject();
    int col = 0;
    for (int i = 0; j && i < N_TEXT; i++, col++) {
        const char *v = (const char *)sqlite3_column_text(st, col);
        if (v)
            cJSON_AddStringToObject(j, export_text[i], v);
        else
            cJSON_AddNullToObject(j, export_text[i]);
    }
    for (int i = 0; j && i < N_INT; i++, col++)
        cJSON_AddNumberToObject(j, export_int[i], (double)sqlite3_column_int64(st, col));
    for (int i = 0; j && i < N_REAL; i++, col++) {
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
            cJSON_AddNullToObject(j, export_real[i]);
        else
            cJSON_AddNumberToObject(j, export_real[i], sqlite3_column_double(st, col));
    }
    return j;
}

int aellm_store_export(aellm_store *s, const char *key, char **json)
{
    *json = NULL;
    sqlite3_stmt *st = NULL;
    int rc = row_by_key(s, export_sql, key, &st);
    if (rc) return rc;
    const char *text = (const char *)sqlite3_column_text(st, N_TEXT - 1); /* record_json */
    const char *digest = (const char *)sqlite3_column_text(st, N_TEXT + N_INT + N_REAL);
    rc = text ? check_whole(s, key, text, digest) : aellm_error_oom("a record", 0);
    cJSON *j = rc ? NULL : export_row(st);
    if (!rc && !(*json = j ? cJSON_PrintUnformatted(j) : NULL))
        rc = aellm_error_oom("an exported record", 0);
    cJSON_Delete(j);
    sqlite3_finalize(st);
    return rc;
}

static const char *text_of(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double real_of(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int aellm_store_import(aellm_store *s, const char *json, char key_out[65])
{
    cJSON *j = cJSON_Parse(json);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return aellm_error_set(AELLM_EFORMAT, "store: an imported evaluation that is not JSON");
    }
    const double ri = real_of(j, "accuracy_higher_is_better"), reps = real_of(j, "latency_reps");
    aellm_eval_record r = {
        .model_hash = text_of(j, "model_hash"),
        .model_json = text_of(j, "model_json"),
        .task_hash = text_of(j, "task_hash"),
        .task_json = text_of(j, "task_json"),
        .hw_hash = text_of(j, "hw_hash"),
        .hw_json = text_of(j, "hw_json"),
        .config_hash = text_of(j, "config_hash"),
        .config_json = text_of(j, "config_json"),
        .engine_version = text_of(j, "engine_version"),
        .protocol_json = text_of(j, "protocol_json"),
        .provenance = text_of(j, "provenance"),
        .accuracy_metric = text_of(j, "accuracy_metric"),
        .accuracy_higher_is_better = ri == 1,
        .accuracy = real_of(j, "accuracy"),
        .accuracy_stderr = real_of(j, "accuracy_stderr"),
        .latency_s = real_of(j, "latency_s"),
        .latency_p10_s = real_of(j, "latency_p10_s"),
        .latency_p90_s = real_of(j, "latency_p90_s"),
        .prefill_s = real_of(j, "prefill_s"),
        .decode_s = real_of(j, "decode_s"),
        .latency_reps = isfinite(reps) && fabs(reps) < 1e9 ? (int)reps : 0,
        .peak_mem_bytes = real_of(j, "peak_mem_bytes"),
        .peak_rss_bytes = real_of(j, "peak_rss_bytes"),
        .energy_j = real_of(j, "energy_j"),
        .energy_std_j = real_of(j, "energy_std_j"),
        .energy_source = text_of(j, "energy_source"),
        .started_at = real_of(j, "started_at"),
        .finished_at = real_of(j, "finished_at"),
        .record_json = text_of(j, "record_json"),
    };
    char key[AELLM_HASH_HEX];
    const char *want = text_of(j, "key");
    int rc = check_record(&r);
    if (!rc) rc = record_key(&r, key);
    if (!rc && (!want || strcmp(want, key)))
        rc = aellm_error_set(AELLM_EFORMAT,
                             "store: imported evaluation %.16s has the identities of %.16s",
                             want ? want : "(no key)", key);
    if (!rc) rc = aellm_store_put(s, &r, key);
    if (!rc && key_out) memcpy(key_out, key, AELLM_HASH_HEX);
    cJSON_Delete(j);
    return rc;
}
