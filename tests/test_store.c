/* Evaluation store tests: round trips across reopening, the key against a
 * hand-built canonical string, the schema and the files it refuses, bad
 * records written nowhere, two writers at once, and processes killed with
 * SIGKILL while writing (checked with SQLite directly, not through the store). */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "aellm/error.h"
#include "aellm/store.h"
#include "core/hash.h"

#include "test_tmpdir.h"

/* ---- records ---- */

/* One evaluation whose identities are numbered: the same numbers give the
 * same hashes, and hashes are SHA-256 of the JSON as the header asks. */
typedef struct {
    char model_json[64], task_json[64], hw_json[64], config_json[96];
    char model_hash[65], task_hash[65], hw_hash[65], config_hash[65];
    aellm_eval_record r;
} fixture;

static void fixture_make(fixture *f, int model, int task, int hw, int config, const char *json)
{
    snprintf(f->model_json, sizeof(f->model_json), "{\"model\":%d}", model);
    snprintf(f->task_json, sizeof(f->task_json), "{\"task\":%d}", task);
    snprintf(f->hw_json, sizeof(f->hw_json), "{\"hw\":%d}", hw);
    snprintf(f->config_json, sizeof(f->config_json), "{\"config\":%d}", config);
    aellm_hash_str(f->model_json, f->model_hash);
    aellm_hash_str(f->task_json, f->task_hash);
    aellm_hash_str(f->hw_json, f->hw_hash);
    aellm_hash_str(f->config_json, f->config_hash);
    f->r = (aellm_eval_record){
        .model_hash = f->model_hash,
        .model_json = f->model_json,
        .task_hash = f->task_hash,
        .task_json = f->task_json,
        .hw_hash = f->hw_hash,
        .hw_json = f->hw_json,
        .config_hash = f->config_hash,
        .config_json = f->config_json,
        .engine_version = "0.1.0+test",
        .provenance = "measured",
        .accuracy_metric = "ppl",
        .accuracy = 3.86,
        .accuracy_stderr = 0.05,
        .latency_s = 0.5,
        .latency_p10_s = 0.45,
        .latency_p90_s = 0.6,
        .prefill_s = 0.1,
        .decode_s = 0.4,
        .latency_reps = 5,
        .peak_mem_bytes = 1e6,
        .peak_rss_bytes = 2e6,
        .energy_j = 12.5,
        .energy_std_j = 0.5,
        .energy_source = "rapl",
        .started_at = 1.7e9,
        .finished_at = 1.7e9 + 10,
        .record_json = json,
    };
}

/* A record of `size` bytes or more, a function of (round, seq) only, with
 * escapes and multi-byte UTF-8 so that "byte-identical" means something. */
static char *record_text(int round, int seq, size_t size)
{
    char *s = malloc(size + 128);
    if (!s) return NULL;
    size_t n = (size_t)sprintf(
        s, "{\"round\":%d,\"seq\":%d,\"note\":\"caf\xc3\xa9 \\\"q\\\"\",\"pad\":\"", round, seq);
    for (size_t i = 0; n < size; i++) s[n++] = (char)('a' + (i * 7 + (size_t)seq) % 26);
    strcpy(s + n, "\"}");
    return s;
}

/* ---- SQLite, directly ---- */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row (caller frees), NULL when no row. */
static char *db_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    char *v = NULL;
    if (rc == SQLITE_ROW) v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

static void db_exec(sqlite3 *db, const char *sql)
{
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static void expect_text(sqlite3 *db, const char *sql, const char *want)
{
    char *v = db_text(db, sql);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static int64_t count_rows(const char *path)
{
    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, path), 0);
    int64_t n = aellm_store_count(s);
    aellm_store_close(s);
    return n;
}

/* ---- round trips ---- */

typedef struct {
    int n, stop_after;
    char keys[8][65];
    char *json[8];
} walk;

static int collect(const char *key, const char *json, void *user)
{
    walk *w = user;
    assert_true(w->n < 8);
    snprintf(w->keys[w->n], 65, "%s", key);
    w->json[w->n] = strdup(json);
    return ++w->n == w->stop_after ? 42 : 0;
}

static walk walk_store(aellm_store *s, const char *m, const char *t, const char *h, int expect_n)
{
    walk w = {0};
    assert_int_equal(aellm_store_each(s, m, t, h, collect, &w), 0);
    assert_int_equal(w.n, expect_n);
    return w;
}

static void walk_free(walk *w)
{
    for (int i = 0; i < w->n; i++) free(w->json[i]);
}

static void round_trip(void **state)
{
    (void)state;
    const char *path = tmp_path("round_trip.db");
    char *a_text = record_text(0, 1, 5000), *b_text = record_text(0, 2, 3000);
    char *a2_text = record_text(0, 3, 4000);
    fixture a, b, a2;
    fixture_make(&a, 1, 1, 1, 1, a_text);
    fixture_make(&b, 2, 2, 1, 1, b_text);
    fixture_make(&a2, 1, 1, 1, 1, a2_text); /* same identities as a */
    char ka[65], kb[65], kexpect[65], ka2[65];

    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, path), 0);
    assert_int_equal(aellm_store_schema_version(s), AELLM_STORE_SCHEMA_VERSION);
    assert_int_equal(aellm_store_count(s), 0);
    assert_int_equal(aellm_store_put(s, &a.r, ka), 0);
    aellm_store_key(a.model_hash, a.task_hash, a.hw_hash, a.config_hash, a.r.engine_version, NULL,
                    kexpect);
    assert_string_equal(ka, kexpect);
    aellm_store_close(s);

    assert_int_equal(aellm_store_open(&s, path), 0);
    char *got = NULL;
    assert_int_equal(aellm_store_get(s, ka, &got), 0);
    assert_int_equal(strlen(got), strlen(a_text));
    assert_memory_equal(got, a_text, strlen(a_text));
    free(got);
    aellm_error_clear();
    aellm_store_key(b.model_hash, b.task_hash, b.hw_hash, b.config_hash, b.r.engine_version, NULL,
                    kb);
    assert_int_equal(aellm_store_get(s, kb, &got), AELLM_ENOTFOUND); /* not yet put */
    assert_null(got);
    assert_string_equal(aellm_error_last(), "");

    assert_int_equal(aellm_store_put(s, &b.r, kb), 0);
    assert_int_equal(aellm_store_count(s), 2);
    walk w = walk_store(s, NULL, NULL, NULL, 2); /* oldest first */
    assert_string_equal(w.keys[0], ka);
    assert_string_equal(w.json[0], a_text);
    assert_string_equal(w.keys[1], kb);
    assert_string_equal(w.json[1], b_text);
    walk_free(&w);
    w = walk_store(s, b.model_hash, NULL, NULL, 1);
    assert_string_equal(w.keys[0], kb);
    walk_free(&w);
    w = walk_store(s, NULL, a.task_hash, NULL, 1);
    assert_string_equal(w.keys[0], ka);
    walk_free(&w);
    w = walk_store(s, NULL, NULL, a.hw_hash, 2); /* both on hw 1 */
    walk_free(&w);
    w = walk_store(s, a.model_hash, b.task_hash, a.hw_hash, 0);
    walk_free(&w);
    w = walk_store(s, a.model_hash, a.task_hash, a.hw_hash, 1);
    walk_free(&w);
    w = (walk){.stop_after = 1};
    assert_int_equal(aellm_store_each(s, NULL, NULL, NULL, collect, &w), 42);
    assert_int_equal(w.n, 1);
    walk_free(&w);

    /* the same key again replaces, and becomes the newest */
    assert_int_equal(aellm_store_put(s, &a2.r, ka2), 0);
    assert_string_equal(ka2, ka);
    assert_int_equal(aellm_store_count(s), 2);
    assert_int_equal(aellm_store_get(s, ka, &got), 0);
    assert_string_equal(got, a2_text);
    free(got);
    w = walk_store(s, NULL, NULL, NULL, 2);
    assert_string_equal(w.keys[0], kb);
    assert_string_equal(w.keys[1], ka);
    walk_free(&w);
    aellm_store_close(s);

    /* the columns hold the record's fields; NaN is stored as NULL */
    sqlite3 *db = db_open(path);
    assert_int_equal(db_int(db, "SELECT count(*) FROM models"), 2);
    assert_int_equal(db_int(db, "SELECT count(*) FROM hardware"), 1);
    assert_int_equal(db_int(db, "SELECT latency_reps FROM evaluations LIMIT 1"), 5);
    expect_text(db, "SELECT provenance || ' ' || energy_source FROM evaluations LIMIT 1",
                "measured rapl");
    sqlite3_close(db);

    /* a record damaged outside aellm is reported, not returned */
    db = db_open(path);
    db_exec(db, "UPDATE evaluations SET record_json = record_json || ' '");
    sqlite3_close(db);
    assert_int_equal(aellm_store_open(&s, path), 0);
    assert_int_equal(aellm_store_get(s, ka, &got), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "damaged"));
    aellm_store_close(s);
    free(a_text);
    free(b_text);
    free(a2_text);
}

/* ---- the key ---- */

static void key_from_identities(void **state)
{
    (void)state;
    const char *id[5] = {"mmmm", "tttt", "hhhh", "cccc", "0.1.0+abc"};
    char base[65], again[65], hand[65], k[5][65];
    aellm_store_key(id[0], id[1], id[2], id[3], id[4], NULL, base);
    aellm_store_key(id[0], id[1], id[2], id[3], id[4], NULL, again);
    assert_string_equal(base, again);
    /* digest by `sha256sum` of the canonical string, independent of hash.c */
    assert_string_equal(base, "26dfb077e158ceb053f5e856ce6b70006353939014f3e397c820626d9140ca96");
    aellm_hash_str("{\"config\":\"cccc\",\"engine\":\"0.1.0+abc\",\"hardware\":\"hhhh\","
                   "\"model\":\"mmmm\",\"task\":\"tttt\"}",
                   hand);
    assert_string_equal(base, hand);
    /* each identity on its own changes the key, and to five different keys */
    for (int i = 0; i < 5; i++) {
        const char *v[5];
        memcpy(v, id, sizeof(v));
        v[i] = "xxxx";
        aellm_store_key(v[0], v[1], v[2], v[3], v[4], NULL, k[i]);
        assert_int_equal(strlen(k[i]), 64);
        assert_string_not_equal(k[i], base);
        for (int j = 0; j < i; j++) assert_string_not_equal(k[i], k[j]);
    }
    /* JSON escapes in the engine string, as sha256sum saw them */
    aellm_store_key("mmmm", "tttt", "hhhh", "cccc", "v\"1\\2", NULL, k[0]);
    assert_string_equal(k[0], "6c04eb97752f827e6015b03bde3b814c2304eb5959bddbc439ffbacb0db2fbfb");
    /* a measurement protocol joins the identities under "protocol" */
    aellm_store_key(id[0], id[1], id[2], id[3], id[4], "pppp", k[0]);
    assert_string_equal(k[0], "e443166790b41ac451cf23d78338c06556fd1c0831020c5b7a06c6aa8689b9c3");
}

/* ---- schema and refused files ---- */

/* A schema-1 store (no protocol column) keeps its records and gains the
 * column on open; a record with a protocol is then keyed by it. */
static void migrates_from_schema_1(void **state)
{
    (void)state;
    const char *path = tmp_path("schema1.db");
    char *text = record_text(0, 1, 2000);
    fixture a;
    fixture_make(&a, 1, 1, 1, 1, text);
    char k_old[65], k_new[65];
    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, path), 0);
    assert_int_equal(aellm_store_put(s, &a.r, k_old), 0);
    aellm_store_close(s);
    sqlite3 *db = db_open(path);
    db_exec(db, "ALTER TABLE evaluations DROP COLUMN protocol_json; DROP TABLE failures; "
                "PRAGMA user_version = 1");
    sqlite3_close(db);

    assert_int_equal(aellm_store_open(&s, path), 0);
    assert_int_equal(aellm_store_schema_version(s), AELLM_STORE_SCHEMA_VERSION);
    char *got = NULL;
    assert_int_equal(aellm_store_get(s, k_old, &got), 0);
    assert_string_equal(got, text);
    free(got);
    a.r.protocol_json = "{\"latency\":{\"paired\":true}}";
    assert_int_equal(aellm_store_put(s, &a.r, k_new), 0);
    assert_string_not_equal(k_new, k_old);
    assert_int_equal(aellm_store_count(s), 2);
    aellm_store_close(s);
    db = db_open(path);
    assert_int_equal(db_int(db, "PRAGMA user_version"), AELLM_STORE_SCHEMA_VERSION);
    assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'failures'"), 1);
    expect_text(db, "SELECT protocol_json FROM evaluations WHERE protocol_json IS NOT NULL",
                "{\"latency\":{\"paired\":true}}");
    char *by = db_text(db, "SELECT value FROM meta WHERE key = 'migrated_by'");
    assert_non_null(by);
    free(by);
    sqlite3_close(db);
    free(text);
}

static void keeps_failures_apart(void **state)
{
    (void)state;
    const char *path = tmp_path("failures.db");
    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, path), 0);
    char key[65], cfg[65], *why = NULL;
    memset(key, 'a', 64), key[64] = 0;
    memset(cfg, 'b', 64), cfg[64] = 0;
    assert_int_equal(aellm_store_get_failure(s, key, &why), AELLM_ENOTFOUND);
    assert_null(why);
    assert_int_equal(aellm_store_put_failure(s, key, cfg, "external:x", "it timed out"), 0);
    assert_int_equal(aellm_store_put_failure(s, key, cfg, "external:x", "status 3"), 0);
    assert_int_equal(aellm_store_count_failures(s), 1);
    assert_int_equal(aellm_store_count(s), 0); /* a failure is no evaluation */
    assert_int_equal(aellm_store_get_failure(s, key, &why), 0);
    assert_string_equal(why, "status 3");
    free(why);
    assert_int_equal(aellm_store_put_failure(s, key, cfg, NULL, "x"), AELLM_EINVAL);
    assert_int_equal(aellm_store_clear_failure(s, key), 0);
    assert_int_equal(aellm_store_clear_failure(s, key), 0);
    assert_int_equal(aellm_store_count_failures(s), 0);
    aellm_store_close(s);
}

/* One evaluation carried from a worker's store to the coordinator's: every
 * column and identity arrives, the key is the same; a record whose key does
 * not match its identities is refused and writes nothing. */
static void exports_and_imports_whole(void **state)
{
    (void)state;
    fixture a;
    fixture_make(&a, 3, 4, 5, 6, "{\"record\":\"exported\"}");
    a.r.protocol_json = "{\"latency\":{\"n_gen\":16}}";
    a.r.prefill_s = NAN; /* not measured: NULL, and NULL again after the trip */
    a.r.accuracy = 1.0 / 3.0;
    aellm_store *from = NULL, *to = NULL;
    char key[65], key2[65], *json = NULL, *a_cols = NULL, *b_cols = NULL;
    assert_int_equal(aellm_store_open(&from, tmp_path("export-from.db")), 0);
    assert_int_equal(aellm_store_open(&to, tmp_path("export-to.db")), 0);
    assert_int_equal(aellm_store_put(from, &a.r, key), 0);
    assert_int_equal(aellm_store_export(from, "0000", &json), AELLM_ENOTFOUND);
    assert_int_equal(aellm_store_export(from, key, &json), 0);
    assert_int_equal(aellm_store_import(to, json, key2), 0);
    assert_string_equal(key, key2);
    assert_int_equal(aellm_store_export(to, key, &b_cols), 0);
    a_cols = json;
    assert_string_equal(a_cols, b_cols); /* every column and identity the same */
    assert_non_null(strstr(b_cols, "\"prefill_s\":null"));
    assert_non_null(strstr(b_cols, "\"model_json\":\"{\\\"model\\\":3}\""));
    free(b_cols);
    /* another key than its identities give: refused, nothing written */
    char *bad = strdup(json), *k = strstr(bad, key);
    assert_non_null(k);
    k[0] = k[0] == 'a' ? 'b' : 'a';
    assert_int_equal(aellm_store_import(to, bad, NULL), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "has the identities of"));
    assert_int_equal(aellm_store_import(to, "[1]", NULL), AELLM_EFORMAT);
    assert_int_equal(aellm_store_count(to), 1);
    free(bad);
    free(json);
    aellm_store_close(from);
    aellm_store_close(to);
}

static void fresh_schema(void **state)
{
    (void)state;
    const char *path = tmp_path("fresh.db");
    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, path), 0);
    aellm_store_close(s);
    sqlite3 *db = db_open(path);
    assert_int_equal(db_int(db, "PRAGMA user_version"), AELLM_STORE_SCHEMA_VERSION);
    assert_int_equal(db_int(db, "PRAGMA application_id"), 0x61656c6d);
    expect_text(db, "PRAGMA journal_mode", "wal");
    assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name "
                                "IN ('meta', 'models', 'tasks', 'hardware', 'configs', "
                                "'evaluations', 'failures')"),
                     7);
    assert_int_equal(db_int(db, "SELECT count(*) FROM pragma_foreign_key_list('evaluations')"), 4);
    assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name = 'evaluations' AND sql IS NOT NULL"),
                     4);
    expect_text(db, "SELECT value FROM meta WHERE key = 'schema_version'", "3");
    char *by = db_text(db, "SELECT value FROM meta WHERE key = 'created_by'");
    assert_non_null(by);
    assert_memory_equal(by, "aellm ", 6);
    free(by);
    /* the schema itself refuses an unknown provenance */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO evaluations(key, model_hash, task_hash, "
                                      "hw_hash, config_hash, engine_version, provenance, "
                                      "record_json, record_sha256) VALUES('k', 'm', 't', 'h', "
                                      "'c', 'e', 'guessed', '{}', 'x')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    sqlite3_close(db);
    /* reopening an up-to-date store changes nothing */
    assert_int_equal(aellm_store_open(&s, path), 0);
    assert_int_equal(aellm_store_schema_version(s), AELLM_STORE_SCHEMA_VERSION);
    assert_int_equal(aellm_store_count(s), 0);
    aellm_store_close(s);
}

/* Opening `path` fails with a message naming it and containing `what`. */
static void expect_refused(const char *path, const char *what)
{
    aellm_store *s = (aellm_store *)1;
    int rc = aellm_store_open(&s, path);
    assert_int_not_equal(rc, 0);
    assert_null(s);
    const char *msg = aellm_error_last();
    if (!strstr(msg, path) || !strstr(msg, what))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", msg, path, what);
}

static void refuses_other_files(void **state)
{
    (void)state;
    const char *text = tmp_path("notes.txt");
    static const char words[] = "These are notes, not a database: nothing to see here.\n"
                                "A second line, so that the file is longer than a header.\n";
    FILE *f = fopen(text, "wb");
    assert_non_null(f);
    for (int i = 0; i < 20; i++) fputs(words, f);
    fclose(f);
    expect_refused(text, "not an aellm store");
    assert_int_equal(aellm_store_open(&(aellm_store *){NULL}, text), AELLM_EFORMAT);
    f = fopen(text, "rb");
    char head[sizeof(words)] = {0};
    assert_int_equal(fread(head, 1, sizeof(words) - 1, f), sizeof(words) - 1);
    fclose(f);
    assert_string_equal(head, words); /* left as it was */

    const char *other = tmp_path("other.db");
    sqlite3 *db = db_open(other);
    db_exec(db, "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES('mine')");
    sqlite3_close(db);
    expect_refused(other, "not an aellm store");
    db = db_open(other);
    expect_text(db, "PRAGMA journal_mode", "delete"); /* not switched to WAL */
    assert_int_equal(db_int(db, "PRAGMA user_version"), 0);
    sqlite3_close(db);

    const char *tagged = tmp_path("tagged.db");
    db = db_open(tagged);
    db_exec(db, "PRAGMA application_id = 42");
    sqlite3_close(db);
    expect_refused(tagged, "not an aellm store");

    const char *newer = tmp_path("newer.db");
    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, newer), 0);
    aellm_store_close(s);
    db = db_open(newer);
    db_exec(db, "PRAGMA user_version = 99");
    sqlite3_close(db);
    expect_refused(newer, "made by a newer aellm (schema 99");

    expect_refused("/nonexistent-aellm-dir/store.db", "cannot open");
}

/* ---- bad records ---- */

static void expect_bad(aellm_store *s, const aellm_eval_record *r, const char *field)
{
    char key[65] = "untouched";
    assert_int_equal(aellm_store_put(s, r, key), AELLM_EINVAL);
    assert_string_equal(key, "untouched");
    if (!strstr(aellm_error_last(), field))
        fail_msg("message \"%s\" does not name %s", aellm_error_last(), field);
}

static void bad_records_write_nothing(void **state)
{
    (void)state;
    const char *path = tmp_path("bad.db");
    aellm_store *s = NULL;
    assert_int_equal(aellm_store_open(&s, path), 0);
    fixture good, f;
    fixture_make(&good, 1, 1, 1, 1, "{\"ok\":1}");
    assert_int_equal(aellm_store_put(s, &good.r, NULL), 0);

    fixture_make(&f, 2, 2, 2, 2, "{\"bad\":1}"); /* new identities throughout */
    f.r.model_hash = NULL;
    expect_bad(s, &f.r, "model_hash");
    fixture_make(&f, 2, 2, 2, 2, "{\"bad\":1}");
    f.r.provenance = "guessed";
    expect_bad(s, &f.r, "provenance");
    fixture_make(&f, 2, 2, 2, 2, "{\"bad\":1}");
    f.r.hw_hash = "ABC";
    expect_bad(s, &f.r, "hw_hash");
    fixture_make(&f, 2, 2, 2, 2, "{\"bad\":1}");
    f.r.config_json = NULL;
    expect_bad(s, &f.r, "config_json");
    fixture_make(&f, 2, 2, 2, 2, NULL);
    expect_bad(s, &f.r, "record_json");
    assert_int_equal(aellm_store_count(s), 1);

    /* a failure inside the transaction (here a trigger) undoes the identity
     * rows written before it, and leaves the connection usable */
    sqlite3 *db = db_open(path);
    db_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON evaluations "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    fixture_make(&f, 2, 2, 2, 2, "{\"refused\":1}");
    assert_int_not_equal(aellm_store_put(s, &f.r, NULL), 0);
    assert_non_null(strstr(aellm_error_last(), "refused by the test"));
    assert_non_null(strstr(aellm_error_last(), path));
    for (int i = 0; i < 4; i++) {
        static const char *const sql[] = {
            "SELECT count(*) FROM models", "SELECT count(*) FROM tasks",
            "SELECT count(*) FROM hardware", "SELECT count(*) FROM configs"};
        assert_int_equal(db_int(db, sql[i]), 1);
    }
    db_exec(db, "DROP TRIGGER refuse");
    assert_int_equal(aellm_store_put(s, &f.r, NULL), 0);
    assert_int_equal(aellm_store_count(s), 2);
    assert_int_equal(db_int(db, "SELECT count(*) FROM models"), 2);
    sqlite3_close(db);
    aellm_store_close(s);
}

/* ---- several processes ---- */

/* Puts records (round, 0), (round, 1), ... until n or killed; says on `fd`
 * when the first is committed. Never returns: a child of a cmocka test. */
static void writer(const char *path, int round, int n, int fd)
{
    aellm_store *s = NULL;
    if (aellm_store_open(&s, path)) {
        fprintf(stderr, "writer %d: %s\n", round, aellm_error_last());
        _exit(2);
    }
    for (int i = 0; n < 0 || i < n; i++) {
        char *text = record_text(round, i, 4096 + (size_t)(i % 5) * 1024);
        fixture f;
        fixture_make(&f, i % 3, round, 0, round * 1000000 + i, text);
        if (!text || aellm_store_put(s, &f.r, NULL)) _exit(3);
        free(text);
        if (i == 0 && fd >= 0 && (write(fd, "x", 1) != 1 || close(fd))) _exit(4);
    }
    aellm_store_close(s);
    _exit(0);
}

static void two_writers_share_a_file(void **state)
{
    (void)state;
    const char *path = tmp_path("shared.db");
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) writer(path, k + 1, 30, -1);
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(count_rows(path), 60);
}

static uint64_t rng_state;
static unsigned rng_below(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* Forks a writer on `path`, waits until it has committed one record (when
 * `wait_first`), sleeps `delay_us` and kills it. */
static void kill_writer(const char *path, int round, int wait_first, unsigned delay_us)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        writer(path, round, -1, fds[1]);
    }
    close(fds[1]);
    char c;
    ssize_t got = wait_first ? read(fds[0], &c, 1) : 1;
    close(fds[0]);
    if (got == 1) usleep(delay_us);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (got != 1) fail_msg("the writer failed before its first record (status %d)", status);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* Every record whole, its identities present and each the hash of its JSON,
 * its key the store's key of them; the seqs of each round 0..n-1 (a kill
 * loses at most the record being written). Returns the records seen. */
static int64_t verify_whole(const char *path, int rounds, const int64_t *per_round)
{
    sqlite3 *db = db_open(path);
    expect_text(db, "PRAGMA integrity_check", "ok");
    char *fk = db_text(db, "PRAGMA foreign_key_check");
    assert_null(fk);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT e.key, e.record_json, e.record_sha256, e.engine_version, "
                           "m.hash, m.json, t.hash, t.json, h.hash, h.json, c.hash, c.json "
                           "FROM evaluations e LEFT JOIN models m ON m.hash = e.model_hash "
                           "LEFT JOIN tasks t ON t.hash = e.task_hash "
                           "LEFT JOIN hardware h ON h.hash = e.hw_hash "
                           "LEFT JOIN configs c ON c.hash = e.config_hash ORDER BY e.rowid",
                           -1, &st, NULL),
        SQLITE_OK);
    int64_t n = 0, next_seq[8] = {0};
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col[12];
        for (int i = 0; i < 12; i++) {
            col[i] = (const char *)sqlite3_column_text(st, i);
            assert_non_null(col[i]); /* NULL: an identity row is missing */
        }
        char h[65], key[65];
        aellm_hash_str(col[1], h);
        assert_string_equal(h, col[2]);
        for (int i = 4; i < 12; i += 2) {
            aellm_hash_str(col[i + 1], h);
            assert_string_equal(h, col[i]);
        }
        aellm_store_key(col[4], col[6], col[8], col[10], col[3], NULL, key);
        assert_string_equal(key, col[0]);
        cJSON *j = cJSON_Parse(col[1]);
        assert_non_null(j);
        int round = cJSON_GetObjectItem(j, "round")->valueint;
        int seq = cJSON_GetObjectItem(j, "seq")->valueint;
        cJSON_Delete(j);
        assert_true(round >= 1 && round <= rounds);
        assert_int_equal(seq, next_seq[round]++); /* in order, none missing */
        char *want = record_text(round, seq, 4096 + (size_t)(seq % 5) * 1024);
        assert_string_equal(col[1], want);
        free(want);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (int r = 1; per_round && r <= rounds; r++) assert_int_equal(next_seq[r], per_round[r]);
    return n;
}

static void sigkill_leaves_whole_records(void **state)
{
    (void)state;
    enum { ROUNDS = 5 };
    const char *path = tmp_path("killed.db");
    rng_state = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    print_message("seed %llu\n", (unsigned long long)rng_state);
    int64_t total = 0, per_round[8] = {0};
    for (int r = 1; r <= ROUNDS; r++) {
        unsigned delay_ms = 5 + rng_below(55);
        kill_writer(path, r, 1, delay_ms * 1000);
        int64_t now = count_rows(path);
        per_round[r] = now - total;
        print_message("round %d: killed %u ms after its first record, %lld records written\n", r,
                      delay_ms, (long long)per_round[r]);
        assert_true(per_round[r] >= 1);
        total = now;
    }
    int64_t seen = verify_whole(path, ROUNDS, per_round);
    assert_int_equal(seen, total);
    assert_true(seen > 0);

    /* killed while creating the store: the next open finds no schema or all
     * of it, never a part */
    for (int r = 0; r < ROUNDS; r++) {
        char name[32];
        snprintf(name, sizeof(name), "created%d.db", r);
        const char *fresh = tmp_path(name);
        kill_writer(fresh, 1, 0, rng_below(4000));
        aellm_store *s = NULL;
        assert_int_equal(aellm_store_open(&s, fresh), 0);
        assert_int_equal(aellm_store_schema_version(s), AELLM_STORE_SCHEMA_VERSION);
        int64_t n = aellm_store_count(s);
        aellm_store_close(s);
        assert_int_equal(verify_whole(fresh, 1, NULL), n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(key_from_identities),
        cmocka_unit_test(fresh_schema),
        cmocka_unit_test(migrates_from_schema_1),
        cmocka_unit_test(keeps_failures_apart),
        cmocka_unit_test(exports_and_imports_whole),
        cmocka_unit_test(refuses_other_files),
        cmocka_unit_test(bad_records_write_nothing),
        cmocka_unit_test(two_writers_share_a_file),
        cmocka_unit_test(sigkill_leaves_whole_records),
    };
    return cmocka_run_group_tests_name("store", tests, tmpdir_setup, tmpdir_teardown);
}
