/* The external evaluator: run a user command with a JSON request on its
 * stdin, bounded in time and output, and check the record it prints. */
#define _GNU_SOURCE /* pipe2, strsignal */
#include "aellm/external.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/timer.h"
#include "core/json.h"

/* ---- the record ---- */

static const char *const objective_names[4] = {"accuracy", "latency", "memory", "energy"};

/* A number at obj.name: required, finite and >= lo (> lo when strict). */
static int figure(const cJSON *obj, const char *where, const char *name, double lo, int strict,
                  int required, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NAN;
    if (!v && !required) return 0;
    if (!v) return aellm_error_set(AELLM_EFORMAT, "the record lacks %s.%s", where, name);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return aellm_error_set(AELLM_EFORMAT, "%s.%s is not a finite number", where, name);
    if (strict ? !(v->valuedouble > lo) : !(v->valuedouble >= lo))
        return aellm_error_set(AELLM_EFORMAT, "%s.%s is %g, not %s %g", where, name, v->valuedouble,
                               strict ? "above" : "at least", lo);
    *out = v->valuedouble;
    return 0;
}

/* A string at obj.name into out[cap]: required, non-empty, printable. */
static int word(const cJSON *obj, const char *where, const char *name, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) return aellm_error_set(AELLM_EFORMAT, "the record lacks %s.%s", where, name);
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= cap)
        return aellm_error_set(AELLM_EFORMAT, "%s.%s is not a string of 1 to %zu characters", where,
                               name, cap - 1);
    for (const char *c = v->valuestring; *c; c++)
        if ((unsigned char)*c < 0x20)
            return aellm_error_set(AELLM_EFORMAT, "%s.%s holds a control character", where, name);
    snprintf(out, cap, "%s", v->valuestring);
    return 0;
}

static int section(const cJSON *j, int k, const cJSON **out, aellm_external_record *r)
{
    *out = cJSON_GetObjectItemCaseSensitive(j, objective_names[k]);
    if (!cJSON_IsObject(*out))
        return aellm_error_set(AELLM_EFORMAT, "the record lacks the object \"%s\"",
                               objective_names[k]);
    int rc =
        word(*out, objective_names[k], "provenance", r->provenance[k], sizeof(r->provenance[k]));
    if (!rc && strcmp(r->provenance[k], "measured") && strcmp(r->provenance[k], "predicted"))
        rc =
            aellm_error_set(AELLM_EFORMAT, "%s.provenance \"%s\" is neither measured nor predicted",
                            objective_names[k], r->provenance[k]);
    return rc;
}

static int parse_accuracy(const cJSON *a, aellm_external_record *r)
{
    int rc = word(a, "accuracy", "metric", r->metric, sizeof(r->metric));
    const cJSON *hib = cJSON_GetObjectItemCaseSensitive(a, "higher_is_better");
    if (!rc && !cJSON_IsBool(hib))
        rc = aellm_error_set(AELLM_EFORMAT, "accuracy.higher_is_better is not true or false");
    if (!rc) r->higher_is_better = cJSON_IsTrue(hib);
    /* a perplexity of 0 or below is no perplexity; other metrics may be 0 */
    int ppl = !rc && !strcmp(r->metric, "ppl");
    if (!rc) rc = figure(a, "accuracy", "value", ppl ? 0 : -INFINITY, ppl, 1, &r->accuracy);
    if (!rc) rc = figure(a, "accuracy", "stderr", 0, 0, 0, &r->accuracy_stderr);
    return rc;
}

int aellm_external_parse(const char *text, size_t len, aellm_external_record *r)
{
    memset(r, 0, sizeof(*r));
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j)
        return aellm_error_set(AELLM_EFORMAT, "the record is not JSON (%zu bytes printed)", len);
    while (end && end < text + len && strchr(" \t\r\n", *end) && *end) end++;
    if (end && end < text + len) {
        cJSON_Delete(j);
        return aellm_error_set(AELLM_EFORMAT,
                               "more than one JSON value printed (print logs to stderr)");
    }
    int rc = cJSON_IsObject(j) ? 0 : aellm_error_set(AELLM_EFORMAT, "the record is not an object");
    const cJSON *sec[4] = {0};
    for (int k = 0; !rc && k < 4; k++) rc = section(j, k, &sec[k], r);
    if (!rc) rc = parse_accuracy(sec[0], r);
    if (!rc) rc = figure(sec[1], "latency", "total_s", 0, 1, 1, &r->latency_s);
    if (!rc) rc = figure(sec[1], "latency", "prefill_s", 0, 0, 0, &r->prefill_s);
    if (!rc) rc = figure(sec[1], "latency", "decode_s", 0, 0, 0, &r->decode_s);
    if (!rc) rc = figure(sec[2], "memory", "peak_bytes", 0, 1, 1, &r->peak_mem_bytes);
    if (!rc) rc = figure(sec[3], "energy", "joules_per_request", 0, 0, 1, &r->energy_j);
    if (!rc) rc = word(sec[3], "energy", "source", r->energy_source, sizeof(r->energy_source));
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "evaluator");
    if (!rc && id) rc = word(j, "record", "evaluator", r->identity, sizeof(r->identity));
    cJSON_Delete(j);
    return rc;
}

/* ---- running the command ---- */

/* stdin is a socket so that a command that never reads it costs EPIPE
 * (MSG_NOSIGNAL), not SIGPIPE. */
static int spawn(const char *command, pid_t *pid, int *in_fd, int *out_fd)
{
    int in[2], out[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in))
        return aellm_error_set(AELLM_EIO, "cannot make a socket pair: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]), close(in[1]);
        return aellm_error_set(AELLM_EIO, "cannot make a pipe: %s", strerror(errno));
    }
    fflush(NULL);
    *pid = fork();
    if (*pid < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return aellm_error_set(AELLM_EIO, "cannot fork: %s", strerror(errno));
    }
    if (*pid == 0) { /* the child: only async-signal-safe calls from here */
        setpgid(0, 0);
        dup2(in[1], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    setpgid(*pid, *pid); /* also here: no race with the kill on timeout */
    close(in[1]);
    close(out[1]);
    shutdown(in[0], SHUT_RD);
    fcntl(in[0], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    *in_fd = in[0];
    *out_fd = out[0];
    return 0;
}

typedef struct {
    const char *req;
    size_t req_len, req_done;
    char *buf;
    size_t len, cap;
    int in_fd, out_fd;
} exchange;

/* Reads what stdout has; 1 at EOF, 0 for more, < 0 on error. */
static int read_some(exchange *x)
{
    for (;;) {
        if (x->cap - x->len < 4097) {
            size_t cap = x->cap ? 2 * x->cap : 65536;
            char *q = realloc(x->buf, cap);
            if (!q) return aellm_error_oom("the evaluator's output", cap);
            x->buf = q, x->cap = cap;
        }
        ssize_t n = read(x->out_fd, x->buf + x->len, x->cap - x->len - 1);
        if (n == 0) return 1;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        if (n < 0) return aellm_error_set(AELLM_EIO, "reading its output: %s", strerror(errno));
        x->len += (size_t)n;
        if (x->len > AELLM_EXTERNAL_MAX_OUTPUT)
            return aellm_error_set(AELLM_EFORMAT, "it printed more than %u bytes",
                                   AELLM_EXTERNAL_MAX_OUTPUT);
    }
}

/* Writes what stdin takes; a command that closed its stdin is done with it. */
static void write_some(exchange *x)
{
    while (x->req_done < x->req_len) {
        ssize_t n = send(x->in_fd, x->req + x->req_done, x->req_len - x->req_done, MSG_NOSIGNAL);
        if (n <= 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) break;
        x->req_done += (size_t)n;
    }
    close(x->in_fd); /* all written (or refused): the command sees EOF */
    x->in_fd = -1;
}

/* Feeds stdin and drains stdout until stdout closes or the deadline. */
static int converse(exchange *x, double deadline)
{
    for (;;) {
        struct pollfd p[2] = {{x->out_fd, POLLIN, 0}, {x->in_fd, POLLOUT, 0}};
        int wait_ms = -1;
        if (deadline > 0) {
            double left = deadline - aellm_time_s();
            if (left <= 0) return 1; /* timed out */
            wait_ms = (int)(left * 1000) + 1;
        }
        int n = poll(p, x->in_fd >= 0 ? 2 : 1, wait_ms);
        if (n < 0 && errno != EINTR) return aellm_error_set(AELLM_EIO, "poll: %s", strerror(errno));
        if (n <= 0) continue;
        if (x->in_fd >= 0 && p[1].revents) write_some(x);
        if (p[0].revents) {
            int rc = read_some(x);
            if (rc) return rc < 0 ? rc : 0;
        }
    }
}

/* Waits for the command's exit until the deadline; 1 if it is still running. */
static int reap(pid_t pid, double deadline, int *status)
{
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) return 0;
        if (w < 0 && errno != EINTR)
            return aellm_error_set(AELLM_EIO, "waitpid: %s", strerror(errno));
        if (deadline > 0 && aellm_time_s() >= deadline) return 1;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

static int exit_error(int status)
{
    if (WIFSIGNALED(status))
        return aellm_error_set(AELLM_ERROR, "it was killed by signal %d (%s)", WTERMSIG(status),
                               strsignal(WTERMSIG(status)));
    if (WEXITSTATUS(status) == 127)
        return aellm_error_set(AELLM_ERROR, "it exited with status 127 (command not found?)");
    return aellm_error_set(AELLM_ERROR, "it exited with status %d", WEXITSTATUS(status));
}

int aellm_external_run(const char *command, const char *request, double timeout_s, char **output,
                       size_t *len)
{
    *output = NULL;
    *len = 0;
    pid_t pid = 0;
    exchange x = {.req = request, .req_len = strlen(request)};
    int rc = spawn(command, &pid, &x.in_fd, &x.out_fd);
    if (rc) return rc;
    double deadline = timeout_s > 0 ? aellm_time_s() + timeout_s : 0;
    rc = converse(&x, deadline);
    int status = 0, late = rc == 1;
    if (!rc) late = reap(pid, deadline, &status);
    if (late < 0) rc = late;
    if (late == 1 || rc) kill_group(pid);
    if (late == 1)
        rc = aellm_error_set(AELLM_ERROR, "it timed out after %g s (killed)", timeout_s);
    else if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = exit_error(status);
    else if (!rc)
        kill(-pid, SIGKILL); /* what it left running in its group would outlive the search */
    if (x.in_fd >= 0) close(x.in_fd);
    close(x.out_fd);
    if (rc) {
        free(x.buf);
        return rc < 0 ? rc : AELLM_ERROR;
    }
    if (!x.buf && !(x.buf = malloc(1))) return aellm_error_oom("the evaluator's output", 1);
    x.buf[x.len] = 0;
    *output = x.buf;
    *len = x.len;
    return 0;
}
