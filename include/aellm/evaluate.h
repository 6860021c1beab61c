/* One evaluation (DESIGN.md §4): load the model, apply a configuration, run
 * a task for its accuracy, measure latency, peak memory and energy, and
 * store the record, keyed by model, task, hardware, configuration and
 * engine version, so that the same evaluation is never run twice. This is
 * what `aellm eval` runs and what the search calls for each real
 * measurement. */
#ifndef AELLM_EVALUATE_H
#define AELLM_EVALUATE_H

#include <stdint.h>

#include "aellm/config.h"
#include "aellm/latency.h"
#include "aellm/store.h"
#include "aellm/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0+<commit>": the library's version and the commit it was built from;
 * part of every evaluation key (a changed engine measures again). */
const char *aellm_engine_version(void);

/* phase: "hash", "base" (a kld task's base distributions), "quantize", "task",
 * "latency"; done/total in its units. */
typedef void (*aellm_eval_progress_fn)(const char *phase, int64_t done, int64_t total, void *user);

typedef struct {
    const char *model_path;     /* GGUF or llama2.c checkpoint */
    const char *tokenizer_path; /* for llama2.c checkpoints; may be NULL */
    const char *model_hash;     /* SHA-256 of the model file if known, else NULL */
    /* A LoRA adapter (llama.cpp's GGUF form) applied to the model on loading,
     * scaled lora_scale x alpha / r as llama.cpp does; NULL for none. Part of
     * the model's identity in the key. */
    const char *lora_path;
    float lora_scale;
    const aellm_task *task;
    const aellm_config *config;
    int n_threads; /* 0 = cores */
    aellm_latency_params latency;
    double max_memory_bytes; /* 0: this machine's memory */
    double max_power_w;      /* 0: no limit */
    int energy_sources;      /* AELLM_ENERGY_* mask, 0 = every readable source */
    int force;               /* run even when the store holds the record */
    /* Latency and energy measured interleaved with the default configuration
     * (aellm_latency_engine_paired) and reported as its stored figures times
     * the per-pair ratio: drift of a shared machine cancels, so records made
     * minutes apart compare. The default is evaluated (and stored) first when
     * the store lacks it. Costs a second copy of the model while timing. */
    int paired;
    /* Where a kld task's base distributions (the unmodified model's, computed
     * once per model, text and engine) are kept. NULL: $AELLM_CACHE_DIR, else
     * $XDG_CACHE_HOME/aellm, else $HOME/.cache/aellm. When none can be
     * written, they are computed for each evaluation and the record says so. */
    const char *cache_dir;
    aellm_eval_progress_fn progress;
    void *progress_user;
    /* An external evaluator (include/aellm/external.h): this command measures
     * in the engine's place, run by /bin/sh -c with the request as JSON on
     * stdin. The key holds "external:<command>" in place of the engine
     * version. A run that times out, exits non-zero or prints a bad record is
     * stored as a failure and returned as AELLM_EFAILED, naming the
     * configuration; a failure in the store is returned as such, not run
     * again, unless retry_failed. NULL: aellm's own engine. */
    const char *evaluator;
    double evaluator_timeout_s; /* <= 0: none */
    int retry_failed;
    /* Only the store is asked: the record when it holds one (checked against
     * the limits as a cached record is), AELLM_EFAILED when it holds the
     * evaluation as failed, else AELLM_ENOTFOUND (no message); nothing runs. */
    int lookup_only;
    /* Where the evaluation ran, a JSON object (a distributed search's rank,
     * host and how many ranks shared the node while it was timed), kept in
     * the record as "placement"; not part of the key. NULL: none. */
    const char *placement_json;
} aellm_eval_request;

void aellm_eval_request_default(aellm_eval_request *r);

/* Runs (or finds) the evaluation. *record_json gets the record (caller
 * frees); *cached is 1 when it came from the store without running. `store`
 * may be NULL (nothing stored, nothing looked up). Limits that the
 * configuration cannot meet are an error (AELLM_EINVAL, naming the limit and
 * the need) raised before anything is measured or stored. */
int aellm_evaluate(const aellm_eval_request *r, aellm_store *store, char **record_json,
                   int *cached);

/* The key the request's record is stored under, and its configuration's
 * hash (each 64 hex + NUL), without running or looking up anything. */
int aellm_eval_identify(const aellm_eval_request *r, char key[65], char config_hash[65]);

/* Makes the request's model under its configuration as an evaluation does
 * (the same stages in the same order, reusing the kept outputs of costly
 * ones from the cache folder) and writes it as GGUF to out_path, through a
 * temporary file renamed into place. The file records the configuration
 * (metadata aellm.config, the canonical JSON an evaluation is keyed by) and,
 * when figures_json is not NULL, what was measured or predicted for it
 * (aellm.figures). The task (may be NULL) supplies the training text as in
 * an evaluation; nothing is measured or stored. The KV-cache settings
 * are a runtime choice: the configuration records them, the file cannot. */
int aellm_apply(const aellm_eval_request *r, const char *figures_json, const char *out_path);

#ifdef __cplusplus
}
#endif
#endif
