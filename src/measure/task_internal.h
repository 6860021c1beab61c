/* Tasks, inside: the parsed spec, the items read from the data file, and the
 * helpers the per-kind runners share (item selection, log-likelihood of a
 * continuation, metric lists). Not a public interface. */
#ifndef AELLM_MEASURE_TASK_INTERNAL_H
#define AELLM_MEASURE_TASK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/task.h"
#include "core/hash.h"

/* Formats of the data file; names in task_format_name. */
typedef enum {
    TASK_FMT_NONE = 0,
    TASK_FMT_HELLASWAG,  /* choice: llama.cpp's 6 lines per item */
    TASK_FMT_MC,         /* choice: {query, choices, gold} */
    TASK_FMT_WINOGRANDE, /* choice: {context_options, continuation, gold} */
    TASK_FMT_MMLU,       /* choice: {input, output: "A".."D"} */
    TASK_FMT_JSONL,      /* continuation: {context, continuation} */
    TASK_FMT_OPENAI,     /* continuation: {text}, the last word is the continuation */
    TASK_FMT_LAST_WORD,  /* continuation: plain text, the last word of each paragraph */
    TASK_FMT_COUNT
} task_format;

/* One question. Choice c scores cont[c] after ctx[c]; continuation and
 * exact_match items have one "choice" (the context or question, and the
 * continuation or worked answer). */
typedef struct {
    char **ctx, **cont; /* (n_choices) each, owned */
    int n_choices, gold;
    double answer; /* exact_match: the number after "####" */
} task_item;

struct aellm_task {
    aellm_task_kind kind;
    char *name;
    char *where;      /* the spec file, or "task spec": prefix of every message */
    char *data_path;  /* resolved; NULL for a needle task without filler */
    char *train_path; /* "train": fine-tuning data; NULL when the spec has none */
    char data_sha[AELLM_HASH_HEX];
    int64_t data_bytes;
    int64_t limit; /* 0 = all */
    int64_t seed;
    /* perplexity */
    int n_ctx; /* 0 = the model's */
    int64_t max_bytes;
    int max_chunks;
    char *text;
    size_t text_len;
    /* choice, continuation, exact_match */
    task_format format;
    char *delimiter;  /* choice: between context and choice */
    int main_norm;    /* choice: acc_norm is metrics[0] */
    int n_shot;       /* exact_match */
    int max_new;      /* exact_match */
    task_item *items; /* (n_all) */
    int64_t n_all;
    /* needle */
    int *lengths;
    int n_lengths;
    double *depths;
    int n_depths;
    int trials;
    char **sentences; /* filler, (n_sentences) */
    int n_sentences;
};

const char *task_format_name(task_format f);

/* ---- reading data files (task_data.c) ---- */
/* An item's line (a JSONL record, a HellaSwag ending) is at most this long;
 * real ones are under 10 KB. A longer line is refused before it is read. */
#define TASK_MAX_LINE (1 << 20)
int task_read_text(const char *path, size_t max_bytes, char **text, size_t *len);
/* Reads t->data_path in t->format (TASK_FMT_NONE: detected) into t->items. */
int task_read_choice(aellm_task *t);
int task_read_continuation(aellm_task *t);
int task_read_gsm8k(aellm_task *t);
/* Sentences of a filler text file (t->data_path) into t->sentences. */
int task_read_filler(aellm_task *t);
void task_items_free(task_item *items, int64_t n);

/* ---- helpers for the runners (task.c) ---- */
/* The items to score: a seeded shuffle of all of them taken in order while
 * `accept` (may be NULL) says yes, until `limit`; then sorted back into file
 * order. *out (caller frees) holds *n indices. */
typedef int (*task_accept_fn)(const aellm_task *t, aellm_lm *lm, int64_t i, int *ok);
int task_select(const aellm_task *t, aellm_lm *lm, task_accept_fn accept, int64_t **out,
                int64_t *n);

int task_metric_add(aellm_task_result *r, const char *name, double value, double stderr_);
/* Adds `name` = k/n with its binomial standard error sqrt(p(1-p)/n). */
int task_metric_acc(aellm_task_result *r, const char *name, int64_t k, int64_t n);

/* The number that starts s (after spaces and '$'): digits with commas, a
 * sign and decimals. 0 when one was found. */
int task_parse_number(const char *s, double *out);

/* Tokens of BOS + text into *ids (caller frees). */
int task_encode(aellm_lm *lm, const char *text, int bos, int32_t **ids, int *n);

/* Log-likelihood of `cont` after `ctx`: the continuation's tokens are those
 * after the common token prefix of tokenize(ctx) and tokenize(ctx + cont),
 * so a merge across the boundary is scored as the model would see it. Too
 * long a sequence is cut from the left, BOS kept first (as perplexity's
 * windows do), and *fits says so. */
typedef struct {
    double logprob;
    int greedy;   /* every continuation token was the argmax */
    int n_tokens; /* continuation tokens scored */
    int fits;     /* the whole sequence fit the context (nothing was cut) */
} task_loglik;
int task_score(aellm_lm *lm, const char *ctx, const char *cont, task_loglik *out);

/* Per-token log-probabilities of tokens[n_cond..n): lm->logprobs or, without
 * it, one `score` call per token. */
int task_logprobs(aellm_lm *lm, const int32_t *tokens, int n, int n_cond, double *out);

/* ---- the windows of a text (perplexity and kld, task_ppl.c) ----
 * The text's tokens (BOS first) cut into n_chunks windows of n_ctx; window c
 * scores its tokens first+1 .. n_ctx-1 (n_scored of them), each predicted by
 * the row before it. */
typedef struct {
    int32_t *ids; /* (n) the whole text */
    int n, n_ctx, n_chunks, first, n_scored;
} task_windows;
int task_windows_make(const aellm_task *t, aellm_lm *lm, task_windows *w);
/* Window c's n_ctx tokens into `window`, BOS in the first slot. */
void task_windows_fill(const task_windows *w, int c, int32_t *window);
void task_windows_free(task_windows *w);

/* ---- runners ---- */
int task_run_perplexity(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                        void *user, aellm_task_result *out);
int task_run_choice(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress, void *user,
                    aellm_task_result *out);
int task_run_continuation(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                          void *user, aellm_task_result *out);
int task_run_exact_match(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress,
                         void *user, aellm_task_result *out);
int task_run_needle(const aellm_task *t, aellm_lm *lm, aellm_task_progress_fn progress, void *user,
                    aellm_task_result *out);

/* Greedy generation of up to max_new tokens after prompt text, stopping at
 * EOS or at any of `stops` (NULL-terminated); the text before the stop into
 * *text (caller frees). */
int task_generate(aellm_lm *lm, const int32_t *prompt, int n_prompt, int max_new,
                  const char *const *stops, char **text);

#endif
