/* The evaluation store (DESIGN.md §5): one SQLite file (WAL) holding the
 * models, tasks, hardware and configurations seen, and every evaluation,
 * keyed by a hash of model, task, hardware, configuration and engine
 * version so that the same evaluation is never run twice. Each record is
 * written in one transaction: a process killed at any moment leaves whole
 * records only. The schema is versioned and migrated on open. */
#ifndef AELLM_STORE_H
#define AELLM_STORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AELLM_STORE_SCHEMA_VERSION 3

typedef struct aellm_store aellm_store;

/* Opens (creating if absent) and migrates to the current schema. A file
 * that is not an aellm store, or one from a newer aellm, is an error naming
 * the file. A store another process holds locked is waited for, 10 s or
 * $AELLM_STORE_BUSY_MS, and then an error saying so. */
int aellm_store_open(aellm_store **out, const char *path);
void aellm_store_close(aellm_store *s); /* accepts NULL */
int aellm_store_schema_version(aellm_store *s);

/* The evaluation key: SHA-256 (hex) of the canonical JSON
 * {"config":..,"engine":..,"hardware":..,"model":..,"protocol":..,"task":..}
 * of the identities (each a SHA-256 hex but the engine version);
 * "protocol", the hash of how latency and energy were measured, is left
 * out when NULL (records written before schema 2). */
void aellm_store_key(const char *model_hash, const char *task_hash, const char *hw_hash,
                     const char *config_hash, const char *engine_version, const char *protocol_hash,
                     char out[65]);

/* One evaluation. Strings are borrowed for the call. The *_json fields are
 * canonical JSON; the hashes are SHA-256 hex of them (model: of the file). */
typedef struct {
    const char *model_hash, *model_json; /* file hash; shape descriptors */
    const char *task_hash, *task_json;
    const char *hw_hash, *hw_json;
    const char *config_hash, *config_json;
    const char *engine_version;
    const char *protocol_json; /* canonical JSON of the measurement protocol; may be NULL */

    const char *provenance; /* "measured" or "predicted" */
    /* objectives, with their spread */
    const char *accuracy_metric; /* "ppl", "acc", ... */
    int accuracy_higher_is_better;
    double accuracy, accuracy_stderr;
    double latency_s, latency_p10_s, latency_p90_s; /* one request: P prompt + G generated */
    double prefill_s, decode_s;                     /* medians */
    int latency_reps;
    double peak_mem_bytes; /* the engine's allocator: weights + KV + activations + scratch */
    double peak_rss_bytes; /* process high-water mark */
    double energy_j, energy_std_j;  /* per request */
    const char *energy_source;      /* "rapl", "nvml", "model", ... */
    double started_at, finished_at; /* Unix time */
    const char *record_json;        /* the whole record as printed */
} aellm_eval_record;

/* Inserts the record and, if new, its model, task, hardware and
 * configuration rows, in one transaction. The key is computed from the
 * identities; an existing key is replaced (eval --force). `key_out` may be
 * NULL. */
int aellm_store_put(aellm_store *s, const aellm_eval_record *r, char key_out[65]);

/* The record_json stored under `key` into *json (caller frees), or
 * AELLM_ENOTFOUND (no message set) when there is none. */
int aellm_store_get(aellm_store *s, const char *key, char **json);

/* Calls fn with the record_json of every evaluation of (model, task,
 * hardware), any of which may be NULL for "all", oldest first; a non-zero
 * return from fn stops the walk and is returned. */
typedef int (*aellm_store_each_fn)(const char *key, const char *record_json, void *user);
int aellm_store_each(aellm_store *s, const char *model_hash, const char *task_hash,
                     const char *hw_hash, aellm_store_each_fn fn, void *user);

int64_t aellm_store_count(aellm_store *s); /* evaluations held; < 0 on error */

/* The evaluation under `key` with its identities, as one JSON object
 * (caller frees): what another process's store imports. AELLM_ENOTFOUND
 * (no message) when absent. */
int aellm_store_export(aellm_store *s, const char *key, char **json);
/* Puts an exported evaluation (as aellm_store_put: one transaction, the key
 * computed from its identities, which must match the exported one). */
int aellm_store_import(aellm_store *s, const char *json, char key_out[65]);

/* A failed evaluation (kept apart from the evaluations: no figures), under
 * the key its record would have had: `evaluator` says who failed (the
 * external command), `error` why. Replaces an earlier failure of the key. */
int aellm_store_put_failure(aellm_store *s, const char *key, const char *config_hash,
                            const char *evaluator, const char *error);
/* The error of key's failure into *error (caller frees), or AELLM_ENOTFOUND
 * (no message set). */
int aellm_store_get_failure(aellm_store *s, const char *key, char **error);
/* Forgets key's failure (a retry); absent is not an error. */
int aellm_store_clear_failure(aellm_store *s, const char *key);
int64_t aellm_store_count_failures(aellm_store *s); /* < 0 on error */

#ifdef __cplusplus
}
#endif
#endif
