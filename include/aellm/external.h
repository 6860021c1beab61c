/* The external evaluator (DESIGN.md §6): a user command measures a
 * configuration in aellm's place, so that any serving stack (llama.cpp, a
 * GPU server) can do the measuring. The command reads one JSON request on
 * stdin (configuration, model, task, protocol) and prints one JSON record
 * on stdout:
 *
 *   {"evaluator": "llamacpp b4000",                        (optional)
 *    "accuracy": {"metric": "ppl", "value": 12.3, "stderr": 0.1,
 *                 "higher_is_better": false, "provenance": "measured"},
 *    "latency": {"total_s": 0.81, "prefill_s": 0.2, "decode_s": 0.61,
 *                "provenance": "measured"},
 *    "memory": {"peak_bytes": 1.2e9, "provenance": "measured"},
 *    "energy": {"joules_per_request": 40.5, "source": "nvml",
 *               "provenance": "measured"}}
 *
 * stderr is the user's (it goes where aellm's goes). aellm_evaluate runs it
 * when the request names a command (include/aellm/evaluate.h). */
#ifndef AELLM_EXTERNAL_H
#define AELLM_EXTERNAL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The figures of one record, checked. */
typedef struct {
    char identity[128]; /* "evaluator", or "" */
    char metric[32];
    int higher_is_better;
    double accuracy, accuracy_stderr;      /* stderr NaN when not given */
    double latency_s, prefill_s, decode_s; /* prefill/decode NaN when not given */
    double peak_mem_bytes;
    double energy_j;
    char energy_source[32];
    /* "measured" or "predicted": accuracy, latency, memory, energy */
    char provenance[4][10];
} aellm_external_record;

#define AELLM_EXTERNAL_MAX_OUTPUT (1u << 20) /* bytes of stdout read at most */

/* Parses and checks a record: every figure present and finite, latency
 * above 0, memory above 0, energy and stderr at least 0, provenance one of
 * the two words. The message names the first field wrong. */
int aellm_external_parse(const char *text, size_t len, aellm_external_record *out);

/* Runs `command` with /bin/sh -c in a process group of its own, writes
 * `request` to its stdin and reads its stdout into *output (caller frees;
 * NUL-terminated), *len bytes. timeout_s <= 0: no limit. A timeout kills
 * the whole group. Errors: the command cannot start, it timed out, it
 * exited non-zero or by a signal, or it printed more than
 * AELLM_EXTERNAL_MAX_OUTPUT; each with a message saying which. */
int aellm_external_run(const char *command, const char *request, double timeout_s, char **output,
                       size_t *len);

#ifdef __cplusplus
}
#endif
#endif
