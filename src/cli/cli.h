/* Shared plumbing of the `aellm` commands: option tables with generated
 * --help, opening a model from flags, JSON printing. The CLI is the only part
 * of aellm that prints to the terminal or exits. */
#ifndef AELLM_CLI_H
#define AELLM_CLI_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "aellm/engine.h"
#include "aellm/model.h"
#include "aellm/task.h"

typedef enum { OPT_FLAG, OPT_STR, OPT_INT, OPT_FLOAT, OPT_U64 } opt_kind;

typedef struct {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 for none */
    opt_kind kind;
    void *dst; /* int* for FLAG/INT, const char** STR, float* FLOAT, uint64_t* U64 */
    const char *help;
} cli_opt;

typedef struct {
    const char *name;    /* "generate" */
    const char *summary; /* one line */
    const char *usage;   /* "-m MODEL [options]" */
    const char *details; /* paragraph printed after the options, may be NULL */
    cli_opt *opts;       /* terminated by {0} */
} cli_command;

/* Parses argv (argv[0] is the command name). Returns 0 to go on, 1 when
 * --help was printed, -1 after printing a one-line error. */
int cli_parse(const cli_command *cmd, int argc, char **argv);

/* Prints "aellm CMD: message" to stderr; returns 1 (the exit status). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with aellm_error_last() as the message. */
int cli_fail_last(const char *cmd);

/* *path, or the default model (cli_default_model, which also sets
 * *tokenizer) when it is NULL; -1 with a one-line error when there is none
 * or the file does not exist. */
int cli_model_path(const char *cmd, const char **path, const char **tokenizer);
/* Loads a model; when `path` is NULL, the default one (see cli_default_model). */
int cli_open_model(const char *cmd, aellm_model **out, const char *path, const char *tokenizer);

/* The folder of the bundled files (models/, tasks/, space/, hardware/):
 * $AELLM_HOME, else the nearest one above the executable, else the source
 * tree it was built from. Never NULL. */
const char *cli_home(void);
/* cli_home()/rel; the result is valid until eight more calls. */
const char *cli_bundled(const char *rel);
/* The space file: $AELLM_SPACE, else the bundled space/default.json. */
const char *cli_space_file(void);
/* The default model: $AELLM_MODEL (with $AELLM_TOKENIZER), else the bundled
 * models/stories260K; NULL if neither is there. Sets the tokenizer path too. */
const char *cli_default_model(const char **tokenizer);
/* The shared data folder ($AELLM_DATA or ../shared/data), or NULL. */
const char *cli_data_dir(void);

/* A vocabulary of `vocab_size` tokens for a random model: from `path`
 * (tokenizer.bin) if given, else the shared Llama 2 (32000) or stories (512)
 * one when present, else a byte-level one. Returns -1 after an error. */
int cli_vocab_for(const char *cmd, aellm_tokenizer **out, const char *path, int vocab_size);

/* Tokenizes `len` bytes of text with BOS first into a new array (*ids, the
 * caller frees it). Returns -1 after printing an error. */
int cli_encode(const char *cmd, const aellm_tokenizer *tok, const char *text, size_t len,
               int32_t **ids, size_t *n);

/* --kv-type NAME and --kv-heads N (0 = the model's), shared by generate,
 * perplexity and bench: the option table entries, help included. */
#define CLI_KV_OPTS(type_ptr, heads_ptr)                                                           \
    {"kv-type", 0, OPT_STR, type_ptr, "KV cache element type: f32 (default), f16, q8_0"},          \
    {                                                                                              \
        "kv-heads", 0, OPT_INT, heads_ptr,                                                         \
            "mean-pool key/value heads into N (divides the model's; 1 = MQA)"                      \
    }
/* Applies them: pools the model's KV heads when kv_heads > 0 and sets
 * ep->kv_type. Returns -1 after printing an error naming the option. */
int cli_kv_apply(const char *cmd, aellm_model *m, const char *kv_type, int kv_heads,
                 aellm_engine_params *ep);
/* Puts the model's q4_0 matrices in the engine's decode layout
 * (aellm_model_repack), after every transform and before the engine; for
 * commands that only run the model. *n (may be NULL) gets the number of
 * matrices rewritten. -1 after printing an error. */
int cli_repack(const char *cmd, aellm_model *m, int *n);
/* Adds kv_type, kv_heads and kv_bytes of an engine to a JSON object. */
void cli_kv_json(cJSON *o, const aellm_engine *e, const aellm_model *m);

/* --lora FILE and --lora-scale X, shared by generate and perplexity. */
#define CLI_LORA_OPTS(path_ptr, scale_ptr)                                                         \
    {"lora", 0, OPT_STR, path_ptr,                                                                 \
     "apply a LoRA adapter (llama.cpp's GGUF form, scaled alpha/r as stored)"},                    \
    {                                                                                              \
        "lora-scale", 0, OPT_FLOAT, scale_ptr, "multiply the adapter's scale (1.0)"                \
    }
/* The external evaluator (include/aellm/external.h): --evaluator CMD,
 * --evaluator-timeout S (float), --retry-failed (flag). */
#define CLI_EVALUATOR_OPTS(cmd_ptr, timeout_ptr, retry_ptr)                                        \
    {"evaluator", 0, OPT_STR, cmd_ptr,                                                             \
     "measure with this command instead of aellm's engine: the request as JSON on its stdin, "     \
     "one JSON record on its stdout (README: External evaluator)"},                                \
        {"evaluator-timeout", 0, OPT_FLOAT, timeout_ptr,                                           \
         "seconds an evaluator run may take before it is killed and the configuration marked "     \
         "failed (3600; 0 = no limit)"},                                                           \
    {                                                                                              \
        "retry-failed", 0, OPT_FLAG, retry_ptr,                                                    \
            "run again the configurations the store holds as failed (by default they are skipped)" \
    }
/* Applies --lora to the model when given. Returns -1 after printing an error. */
int cli_lora_apply(const char *cmd, aellm_model *m, const char *path, float scale);

/* Whether `path` names a regular file. */
int cli_is_file(const char *path);

/* A task spec file, or the name of a bundled one (tasks/NAME.json, or
 * $AELLM_TASKS_DIR/NAME.json). Returns non-zero after printing an error. */
int cli_open_task(const char *cmd, aellm_task **out, const char *arg);

/* "512M", "2G", "1.5GiB", "1000000" -> bytes; -1 if malformed. */
double cli_parse_size(const char *s);

/* Prints a cJSON document on stdout and frees it. */
void cli_print_json(cJSON *doc);
/* One updating status line on stderr for a long command: drawn only when
 * stderr is a terminal and the command is not printing JSON (so logs and
 * pipes keep just the results and one-line errors); at most about ten
 * redraws a second; the ETA from the rate so far. */
typedef struct {
    int on, drawn;
    double t0, last;
} cli_progress;
void cli_progress_start(cli_progress *p, int json);
/* "phase done/total  extra  ETA ..." (total 0: no count, no ETA). */
void cli_progress_update(cli_progress *p, const char *phase, double done, double total,
                         const char *extra);
void cli_progress_end(cli_progress *p); /* ends the line if one was drawn */

/* An evaluation's progress (aellm_eval_progress_fn) as one updating line,
 * on a terminal only: a redirected stderr keeps just the errors. */
void cli_eval_progress(const char *phase, int64_t done, int64_t total, void *user);

/* Reads a whole file; NULL with a message on failure. Caller frees. */
char *cli_read_file(const char *cmd, const char *path, size_t *len);

int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_space(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_train(int argc, char **argv);

#endif
