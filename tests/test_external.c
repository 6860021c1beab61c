/* The external evaluator's two halves: the record check (every field a
 * lying evaluator can get wrong is refused, naming the field) and the
 * command runner (request on stdin, stdout back, exit status, timeout that
 * kills the whole process group, output limit, a command that never reads). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "aellm/external.h"
#include "test_tmpdir.h"

#define GOOD                                                                                       \
    "{\"evaluator\": \"stand-in 1\","                                                              \
    " \"accuracy\": {\"metric\": \"ppl\", \"value\": 12.5, \"stderr\": 0.25,"                      \
    " \"higher_is_better\": false, \"provenance\": \"measured\"},"                                 \
    " \"latency\": {\"total_s\": 0.8, \"prefill_s\": 0.2, \"decode_s\": 0.6,"                      \
    " \"provenance\": \"measured\"},"                                                              \
    " \"memory\": {\"peak_bytes\": 1.5e9, \"provenance\": \"predicted\"},"                         \
    " \"energy\": {\"joules_per_request\": 40, \"source\": \"nvml\", \"provenance\": "             \
    "\"measured\"}}\n"

static int parse(const char *text, aellm_external_record *r)
{
    return aellm_external_parse(text, strlen(text), r);
}

static void parses_a_good_record(void **state)
{
    (void)state;
    aellm_external_record r;
    assert_int_equal(parse(GOOD, &r), 0);
    assert_string_equal(r.identity, "stand-in 1");
    assert_string_equal(r.metric, "ppl");
    assert_int_equal(r.higher_is_better, 0);
    assert_true(r.accuracy == 12.5 && r.accuracy_stderr == 0.25);
    assert_true(r.latency_s == 0.8 && r.prefill_s == 0.2 && r.decode_s == 0.6);
    assert_true(r.peak_mem_bytes == 1.5e9 && r.energy_j == 40);
    assert_string_equal(r.energy_source, "nvml");
    assert_string_equal(r.provenance[0], "measured");
    assert_string_equal(r.provenance[2], "predicted");
    /* the optional fields may be absent */
    const char *lean =
        "{\"accuracy\": {\"metric\": \"acc\", \"value\": 0, \"higher_is_better\": true,"
        " \"provenance\": \"measured\"}, \"latency\": {\"total_s\": 1e-3, \"provenance\":"
        " \"predicted\"}, \"memory\": {\"peak_bytes\": 1, \"provenance\": \"measured\"},"
        " \"energy\": {\"joules_per_request\": 0, \"source\": \"model\", \"provenance\":"
        " \"predicted\"}}";
    assert_int_equal(parse(lean, &r), 0);
    assert_true(isnan(r.prefill_s) && isnan(r.accuracy_stderr) && r.identity[0] == 0);
    assert_int_equal(r.higher_is_better, 1);
}

/* GOOD with `from` replaced by `to`: refused, the message holding `says`. */
static void refused(const char *from, const char *to, const char *says)
{
    char text[2048];
    const char *at = strstr(GOOD, from);
    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - GOOD), GOOD, to, at + strlen(from));
    aellm_external_record r;
    aellm_error_clear();
    int rc = parse(text, &r);
    if (rc != AELLM_EFORMAT || !strstr(aellm_error_last(), says))
        fail_msg("'%s' -> '%s': rc %d, message '%s' (expected '%s')", from, to, rc,
                 aellm_error_last(), says);
}

static void refuses_what_a_lying_evaluator_prints(void **state)
{
    (void)state;
    /* missing fields and sections */
    refused("\"total_s\": 0.8, ", "", "latency.total_s");
    refused("\"peak_bytes\": 1.5e9, ", "", "memory.peak_bytes");
    refused("\"source\": \"nvml\", ", "", "energy.source");
    refused("\"metric\": \"ppl\", ", "", "accuracy.metric");
    refused("\"higher_is_better\": false, ", "", "accuracy.higher_is_better");
    refused("\"provenance\": \"predicted\"", "\"x\": 1", "memory.provenance");
    refused(" \"latency\"", " \"latencies\"", "\"latency\"");
    /* values that are no figures */
    refused("\"total_s\": 0.8", "\"total_s\": -0.8", "latency.total_s is -0.8");
    refused("\"total_s\": 0.8", "\"total_s\": 0", "latency.total_s is 0");
    refused("\"total_s\": 0.8", "\"total_s\": \"0.8\"", "latency.total_s is not a finite");
    refused("\"total_s\": 0.8", "\"total_s\": 1e999", "latency.total_s is not a finite");
    refused("\"value\": 12.5", "\"value\": NaN", "not JSON");
    refused("\"value\": 12.5", "\"value\": null", "accuracy.value is not a finite");
    refused("\"value\": 12.5", "\"value\": 0", "accuracy.value is 0"); /* a perplexity */
    refused("\"stderr\": 0.25", "\"stderr\": -1", "accuracy.stderr");
    refused("\"joules_per_request\": 40", "\"joules_per_request\": -4",
            "energy.joules_per_request");
    refused("\"peak_bytes\": 1.5e9", "\"peak_bytes\": 0", "memory.peak_bytes is 0");
    refused("\"decode_s\": 0.6", "\"decode_s\": -1", "latency.decode_s");
    refused("\"provenance\": \"measured\"}", "\"provenance\": \"guessed\"}", "neither measured");
    refused("\"stand-in 1\"", "\"a\\nb\"", "control character");
    /* not one JSON object */
    refused("}\n", "} {}", "more than one JSON value");
    refused("{\"evaluator\"", "log line\n{\"evaluator\"", "not JSON");
    aellm_external_record r;
    assert_int_equal(parse("[1, 2]", &r), AELLM_EFORMAT);
    assert_int_equal(aellm_external_parse("", 0, &r), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "not JSON"));
}

static int run(const char *cmd, const char *req, double timeout, char **out, size_t *len)
{
    aellm_error_clear();
    return aellm_external_run(cmd, req, timeout, out, len);
}

static void runs_the_command_with_the_request_on_stdin(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(run("cat", "{\"x\": 1}", 10, &out, &len), 0);
    assert_int_equal(len, 8);
    assert_string_equal(out, "{\"x\": 1}");
    free(out);
    /* a request far larger than a pipe's buffer, read while output is written */
    size_t n = 4u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = 0;
    assert_int_equal(run("wc -c", big, 30, &out, &len), 0);
    assert_int_equal(atol(out), (long)n);
    free(out);
    /* a command that never reads its stdin is not killed by SIGPIPE, nor are we */
    assert_int_equal(run("echo done", big, 30, &out, &len), 0);
    assert_string_equal(out, "done\n");
    free(out);
    free(big);
    /* empty output is output */
    assert_int_equal(run("true", "", 10, &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
}

static void says_how_the_command_failed(void **state)
{
    (void)state;
    char *out = (char *)1;
    size_t len = 1;
    assert_int_equal(run("echo partial; exit 3", "", 10, &out, &len), AELLM_ERROR);
    assert_null(out);
    assert_non_null(strstr(aellm_error_last(), "exited with status 3"));
    assert_int_equal(run("kill -SEGV $$", "", 10, &out, &len), AELLM_ERROR);
    assert_non_null(strstr(aellm_error_last(), "killed by signal 11"));
    assert_int_equal(run("/nonexistent/evaluator", "", 10, &out, &len), AELLM_ERROR);
    assert_non_null(strstr(aellm_error_last(), "status 127"));
    assert_int_equal(run("head -c 1100000 /dev/zero", "", 10, &out, &len), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "more than"));
}

static int alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static void a_timeout_kills_the_whole_group(void **state)
{
    (void)state;
    const char *pidfile = tmp_path("grandchild.pid");
    char cmd[512];
    /* the command starts a grandchild that would outlive it, then hangs */
    snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > %s; sleep 60", pidfile);
    char *out = NULL;
    size_t len = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(run(cmd, "", 0.5, &out, &len), AELLM_ERROR);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(aellm_error_last(), "timed out after 0.5 s"));
    double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(took >= 0.5 && took < 10);
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    long pid = 0;
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    for (int i = 0; i < 200 && alive((pid_t)pid); i++) usleep(10000); /* init reaps it */
    assert_false(alive((pid_t)pid));
    /* a command that closes stdout and goes on running is timed out too */
    assert_int_equal(run("exec >&-; sleep 60", "", 0.3, &out, &len), AELLM_ERROR);
    assert_non_null(strstr(aellm_error_last(), "timed out"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_a_good_record),
        cmocka_unit_test(refuses_what_a_lying_evaluator_prints),
        cmocka_unit_test(runs_the_command_with_the_request_on_stdin),
        cmocka_unit_test(says_how_the_command_failed),
        cmocka_unit_test(a_timeout_kills_the_whole_group),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
