/* Evaluation tasks (DESIGN.md §4): a task is a kind, a data file in its
 * original format and a few parameters, read from a JSON spec file. Tasks
 * score a language model through the small interface below (aellm_lm), so
 * the metrics can be checked in tests against a model whose probabilities
 * are known, and run for real through the engine (aellm_lm_engine_new). */
#ifndef AELLM_TASK_H
#define AELLM_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/engine.h"
#include "aellm/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the language model a task scores ---- */
typedef struct aellm_lm {
    void *user;
    int n_ctx; /* longest token sequence `score` and `generate` accept */
    /* Tokenizes `len` bytes (BOS first when `bos`) into *ids (caller frees). */
    int (*encode)(void *user, const char *text, size_t len, int bos, int32_t **ids, size_t *n);
    /* Text of ids[0..n) (caller frees). */
    int (*decode)(void *user, const int32_t *ids, size_t n, char **text);
    /* Over tokens[n_cond..n): sum of log p(tokens[i] | tokens[0..i)) into
     * *logprob, and whether every one of them is the argmax into *greedy.
     * 1 <= n_cond < n <= n_ctx. */
    int (*score)(void *user, const int32_t *tokens, int n, int n_cond, double *logprob,
                 int *greedy);
    /* Greedy continuation of prompt[0..n): up to max_new tokens into out
     * (room for max_new), stopping early at EOS; count into *n_out. */
    int (*generate)(void *user, const int32_t *prompt, int n, int max_new, int32_t *out,
                    int *n_out);
    /* Optional (may be NULL): as `score`, but the log-probability of each of
     * tokens[n_cond..n) into logprobs[0..n-n_cond), for the per-token
     * standard error of perplexity (without it, one `score` call per token). */
    int (*logprobs)(void *user, const int32_t *tokens, int n, int n_cond, double *logprobs);
    /* Optional (may be NULL; needed by the kld kind): the whole next-token
     * distribution after each of tokens[n_cond-1..n-1), as log-probabilities
     * (log-softmax of the logits), row by row into rows[(n - n_cond) * n_vocab]. */
    int (*distributions)(void *user, const int32_t *tokens, int n, int n_cond, float *rows);
    int n_vocab; /* the rows' width; 0 when `distributions` is NULL */
} aellm_lm;

/* An aellm_lm over an engine and its tokenizer (both borrowed; they must
 * outlive it). It keeps the tokens in the KV cache and re-evaluates only
 * what follows the common prefix, so the choices of one question share
 * the question's prefill. Nothing else may run the engine while the lm is in
 * use (its record of the cache would go stale). Free with aellm_lm_engine_free. */
int aellm_lm_engine_new(aellm_lm **out, aellm_engine *e, const aellm_tokenizer *tok);
void aellm_lm_engine_free(aellm_lm *lm); /* accepts NULL */

/* ---- tasks ---- */
typedef enum {
    AELLM_TASK_PERPLEXITY = 0, /* text file; ppl (llama.cpp's method), lower is better */
    AELLM_TASK_CHOICE,         /* multiple choice by log-likelihood: acc, acc_norm */
    AELLM_TASK_CONTINUATION,   /* LAMBADA: greedy continuation equals the gold: acc */
    AELLM_TASK_EXACT_MATCH,    /* GSM8K: the number generated equals the one after "####" */
    AELLM_TASK_NEEDLE,         /* a key-value pair hidden in a generated haystack: acc */
    AELLM_TASK_KLD, /* text file; KL divergence from the unmodified model, lower is better */
    AELLM_TASK_KIND_COUNT
} aellm_task_kind;

const char *aellm_task_kind_name(aellm_task_kind k); /* "perplexity", "choice", ... */

typedef struct aellm_task aellm_task;

/* Reads a task spec file (JSON; see tasks/README.md for the keys). Relative
 * data paths are taken from the spec's folder; "${data}" in a path stands
 * for `data_dir` (may be NULL). Checks that the data file opens and parses:
 * a malformed line is reported with its file and line number. */
int aellm_task_load(aellm_task **out, const char *spec_path, const char *data_dir);
/* The same from spec text; `base_dir` resolves relative paths. */
int aellm_task_parse(aellm_task **out, const char *json, const char *base_dir,
                     const char *data_dir);
void aellm_task_free(aellm_task *t); /* accepts NULL */

aellm_task_kind aellm_task_kind_of(const aellm_task *t);
const char *aellm_task_name(const aellm_task *t);
/* The task's fine-tuning data ("train" in the spec), or NULL. Borrowed. */
const char *aellm_task_train_path(const aellm_task *t);
/* The data file as resolved (what an external evaluator reads); NULL for a
 * needle task without filler. Borrowed. */
const char *aellm_task_data_path(const aellm_task *t);
/* Items the task will score after limit and seed (chunks for perplexity,
 * trials for the needle task). For perplexity the count of windows is known
 * only once the text is tokenized: max_chunks, or 0 (all of them). */
int64_t aellm_task_n_items(const aellm_task *t);
/* The canonical JSON of the spec with every default filled in and the data
 * file named by its SHA-256 instead of its path: what identifies the task
 * in the store. Caller frees. */
char *aellm_task_canonical_json(const aellm_task *t);

typedef struct {
    char name[48]; /* "ppl", "acc", "acc_norm", "acc@len=512,depth=0.50", ... */
    double value;
    double stderr_; /* standard error; 0 where not defined */
} aellm_metric;

typedef struct {
    aellm_metric *metrics; /* n_metrics, owned; metrics[0] is the task's main metric */
    int n_metrics;
    int higher_is_better; /* of metrics[0] */
    int64_t n_items;      /* items scored (tokens for perplexity) */
    double seconds;
} aellm_task_result;

void aellm_task_result_free(aellm_task_result *r); /* frees the contents */

typedef void (*aellm_task_progress_fn)(int64_t done, int64_t total, void *user);

/* Runs every kind but kld (which needs the base model: aellm_task_run_kld). */
int aellm_task_run(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress, void *user,
                   aellm_task_result *out);

/* ---- KL divergence from the unmodified model (kind "kld") ----
 * llama.cpp's `llama-perplexity --kl-divergence`: the text is cut into the
 * perplexity task's windows; at every scored token the base model's next-token
 * distribution P and the configuration's Q give KL(P || Q) = sum P (log P -
 * log Q). Metrics: kld (the mean, with its standard error; main, lower is
 * better), top1_agree (share of tokens whose most likely next token is the
 * same), kld_median, kld_p99, kld_max, rms_dp (root mean square of the change
 * in the probability of the text's next token), ppl and ppl_base on the same
 * tokens. The base distributions are computed once (they are the model's, not
 * the configuration's) and kept in a file. */
typedef struct aellm_kld_base aellm_kld_base;

/* The base model's distributions over the task's scored tokens. `t` is a kld
 * (or perplexity) task; `base` must provide `distributions`. */
int aellm_kld_base_compute(aellm_kld_base **out, const aellm_task *t, aellm_lm *base,
                           aellm_task_progress_fn progress, void *user);
/* Written to a temporary file beside `path`, then renamed over it. */
int aellm_kld_base_save(const aellm_kld_base *b, const char *path);
/* Reads a file written by aellm_kld_base_save; a truncated or foreign file is
 * AELLM_EFORMAT naming it, a missing one AELLM_ENOTFOUND. */
int aellm_kld_base_load(aellm_kld_base **out, const char *path);
void aellm_kld_base_free(aellm_kld_base *b); /* accepts NULL */
int64_t aellm_kld_base_n_tokens(const aellm_kld_base *b);

/* Scores `lm` against `base` (which must come from the same text, windows
 * and vocabulary: a mismatch is an error, never a silent wrong number). */
int aellm_task_run_kld(const aellm_task *t, aellm_lm *lm, const aellm_kld_base *base,
                       aellm_task_progress_fn progress, void *user, aellm_task_result *out);

#ifdef __cplusplus
}
#endif
#endif
