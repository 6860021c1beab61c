/* The store's schema: recognising an aellm store (application_id, user_version)
 * and migrating it, one ordered list of SQL steps applied in one transaction.
 * Records are read and written in store.c, not here. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "engine_version.h" /* generated: AELLM_ENGINE_VERSION */
#include "store/store_internal.h"

/* Step i takes the schema from version i to i + 1. A new version is one more
 * entry here (and AELLM_STORE_SCHEMA_VERSION + 1); steps are never edited
 * once released, since stores in the field were made by them. */
static const char *const migrations[] = {
    /* 0 -> 1: identities, evaluations. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE models(hash TEXT PRIMARY KEY, json TEXT NOT NULL, created_at REAL NOT NULL);"
    "CREATE TABLE tasks(hash TEXT PRIMARY KEY, json TEXT NOT NULL, created_at REAL NOT NULL);"
    "CREATE TABLE hardware(hash TEXT PRIMARY KEY, json TEXT NOT NULL, created_at REAL NOT NULL);"
    "CREATE TABLE configs(hash TEXT PRIMARY KEY, json TEXT NOT NULL, created_at REAL NOT NULL);"
    "CREATE TABLE evaluations("
    " key TEXT PRIMARY KEY,"
    " model_hash TEXT NOT NULL REFERENCES models(hash),"
    " task_hash TEXT NOT NULL REFERENCES tasks(hash),"
    " hw_hash TEXT NOT NULL REFERENCES hardware(hash),"
    " config_hash TEXT NOT NULL REFERENCES configs(hash),"
    " engine_version TEXT NOT NULL,"
    " provenance TEXT NOT NULL CHECK (provenance IN ('measured', 'predicted')),"
    " accuracy_metric TEXT, accuracy_higher_is_better INTEGER,"
    " accuracy REAL, accuracy_stderr REAL,"
    " latency_s REAL, latency_p10_s REAL, latency_p90_s REAL,"
    " prefill_s REAL, decode_s REAL, latency_reps INTEGER,"
    " peak_mem_bytes REAL, peak_rss_bytes REAL,"
    " energy_j REAL, energy_std_j REAL, energy_source TEXT,"
    " started_at REAL, finished_at REAL,"
    " record_json TEXT NOT NULL,"
    " record_sha256 TEXT NOT NULL);"
    "CREATE INDEX evaluations_by_identity ON evaluations(model_hash, task_hash, hw_hash);"
    /* the filters without a model, and the foreign-key checks of the parents */
    "CREATE INDEX evaluations_by_task ON evaluations(task_hash);"
    "CREATE INDEX evaluations_by_hw ON evaluations(hw_hash);"
    "CREATE INDEX evaluations_by_config ON evaluations(config_hash);",
    /* 1 -> 2: how latency and energy were measured (prompt, generated tokens,
       warm-ups, paired with a reference or not), part of the key from now on. */
    "ALTER TABLE evaluations ADD COLUMN protocol_json TEXT;",
    /* 2 -> 3: evaluations that failed (an external evaluator that timed out,
       crashed or printed a bad record), under the key they would have had, so
       that a search goes on without them and does not try them again. */
    ("CREATE TABLE failures(key TEXT PRIMARY KEY, config_hash TEXT NOT NULL,"
     " evaluator TEXT NOT NULL, error TEXT NOT NULL, failed_at REAL NOT NULL);"),
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == AELLM_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* What the file says it is. */
typedef struct {
    int64_t application_id, user_version, n_objects;
} identity;

static int query_int(aellm_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    int err = rc == SQLITE_ROW ? 0 : rc;
    sqlite3_finalize(st);
    return err ? aellm_store_sql_error(s, "cannot read the schema") : 0;
}

/* The three facts come from one snapshot: read one by one, another process
 * creating the same store could commit between them, and a file with
 * tables but no application id yet would look foreign. */
static int read_identity(aellm_store *s, identity *id)
{
    int own = sqlite3_get_autocommit(s->db), rc = 0;
    if (own) rc = aellm_store_exec(s, "BEGIN", "cannot read the store's identity");
    if (!rc) rc = query_int(s, "PRAGMA application_id", &id->application_id);
    if (!rc) rc = query_int(s, "PRAGMA user_version", &id->user_version);
    if (!rc) rc = query_int(s, "SELECT count(*) FROM sqlite_master", &id->n_objects);
    if (own) sqlite3_exec(s->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    return rc;
}

/* The version to migrate from: 0 for an empty file; an error for anything
 * that aellm did not make, or that a newer aellm made. */
static int check_identity(aellm_store *s, const identity *id, int *version)
{
    int empty = id->application_id == 0 && id->user_version == 0 && id->n_objects == 0;
    if (empty) {
        *version = 0;
        return 0;
    }
    if (id->application_id != AELLM_STORE_APPLICATION_ID)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: not an aellm store (an SQLite database of another "
                               "application, application_id %" PRId64 ")",
                               s->path, id->application_id);
    if (id->user_version > AELLM_STORE_SCHEMA_VERSION)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: made by a newer aellm (schema %" PRId64
                               "; this one reads schema %d at most)",
                               s->path, id->user_version, AELLM_STORE_SCHEMA_VERSION);
    if (id->user_version < 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: bad schema version %" PRId64, s->path,
                               id->user_version);
    *version = (int)id->user_version;
    return 0;
}

static int set_meta(aellm_store *s, const char *key, const char *value, int replace)
{
    const char *sql = replace ? "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)"
                              : "INSERT OR IGNORE INTO meta(key, value) VALUES(?1, ?2)";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : aellm_store_sql_error(s, "cannot write the schema");
}

/* Applies the steps after `from` and stamps the file; inside the caller's
 * transaction, so a crash leaves the old schema or the new one. */
static int migrate(aellm_store *s, int from)
{
    char sql[96], text[32];
    int rc = 0;
    for (int v = from; v < AELLM_STORE_SCHEMA_VERSION && !rc; v++)
        rc = aellm_store_exec(s, migrations[v], "cannot migrate the schema");
    snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
             AELLM_STORE_APPLICATION_ID, AELLM_STORE_SCHEMA_VERSION);
    if (!rc) rc = aellm_store_exec(s, sql, "cannot stamp the schema");
    snprintf(text, sizeof(text), "%d", AELLM_STORE_SCHEMA_VERSION);
    if (!rc) rc = set_meta(s, "schema_version", text, 1);
    if (!rc) rc = set_meta(s, "created_by", "aellm " AELLM_ENGINE_VERSION, 0);
    if (!rc && from > 0) rc = set_meta(s, "migrated_by", "aellm " AELLM_ENGINE_VERSION, 1);
    return rc;
}

/* WAL: readers never wait for the writer, and a killed writer leaves at most
 * an uncommitted tail of the log, which the next open ignores. Changing the
 * journal mode does not go through the busy handler, so while another
 * process holds the file (creating the same fresh store) it is retried here,
 * for as long as the busy timeout. */
static int set_wal(aellm_store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    for (int waited_ms = 0; rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
         waited_ms += 10) {
        rc = sqlite3_step(st);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited_ms >= 10000) break;
        sqlite3_reset(st);
        sqlite3_sleep(10);
    }
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = mode && (!strcmp(mode, "wal") || !strcmp(mode, "memory"));
    if (!ok && mode)
        rc = aellm_error_set(AELLM_EIO, "%s: cannot use a write-ahead log (journal mode %s)",
                             s->path, mode);
    else if (!ok)
        rc = aellm_store_sql_error(s, "cannot use a write-ahead log");
    else
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

int aellm_store_schema_prepare(aellm_store *s)
{
    identity id;
    int version = 0;
    /* Look before writing anything: a foreign file is left untouched. */
    int rc = read_identity(s, &id);
    if (!rc) rc = check_identity(s, &id, &version);
    if (!rc) rc = set_wal(s);
    if (rc) return rc;
    if (version == AELLM_STORE_SCHEMA_VERSION) {
        s->version = version;
        return 0;
    }
    /* Another process may be creating or migrating the same file: the write
     * lock serialises us, and the identity is read again under it. */
    if ((rc = aellm_store_exec(s, "BEGIN IMMEDIATE", "cannot lock the schema"))) return rc;
    rc = read_identity(s, &id);
    if (!rc) rc = check_identity(s, &id, &version);
    if (!rc && version < AELLM_STORE_SCHEMA_VERSION) rc = migrate(s, version);
    if (!rc) rc = aellm_store_exec(s, "COMMIT", "cannot commit the schema");
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    s->version = AELLM_STORE_SCHEMA_VERSION;
    return 0;
}
