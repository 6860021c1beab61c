/* Fuzzes the external evaluator's record check (aellm_external_parse: what
 * a user's command prints on stdout, include/aellm/external.h). A record
 * that passes must hold what the check promises (every figure finite,
 * latency and memory above 0, energy at least 0, each provenance one of
 * the two words), and written back as JSON it must pass again with the
 * same figures. */
#include <cjson/cJSON.h>
#include <math.h>

#include "aellm/error.h"
#include "aellm/external.h"
#include "fuzz_util.h"

static void check_promises(const aellm_external_record *r)
{
    FZ_CHECK(isfinite(r->accuracy) && isfinite(r->latency_s) && r->latency_s > 0);
    FZ_CHECK(isfinite(r->peak_mem_bytes) && r->peak_mem_bytes > 0);
    FZ_CHECK(isfinite(r->energy_j) && r->energy_j >= 0);
    FZ_CHECK(isnan(r->accuracy_stderr) || r->accuracy_stderr >= 0);
    FZ_CHECK(isnan(r->prefill_s) || r->prefill_s >= 0);
    FZ_CHECK(isnan(r->decode_s) || r->decode_s >= 0);
    FZ_CHECK(r->metric[0] && r->energy_source[0]);
    for (int k = 0; k < 4; k++)
        FZ_CHECK(!strcmp(r->provenance[k], "measured") || !strcmp(r->provenance[k], "predicted"));
}

static cJSON *section(cJSON *j, const char *name, const char *provenance)
{
    cJSON *s = cJSON_AddObjectToObject(j, name);
    cJSON_AddStringToObject(s, "provenance", provenance);
    return s;
}

static void add_if(cJSON *o, const char *name, double x)
{
    if (!isnan(x)) cJSON_AddNumberToObject(o, name, x);
}

static char *written_back(const aellm_external_record *r)
{
    cJSON *j = cJSON_CreateObject();
    if (r->identity[0]) cJSON_AddStringToObject(j, "evaluator", r->identity);
    cJSON *a = section(j, "accuracy", r->provenance[0]);
    cJSON_AddStringToObject(a, "metric", r->metric);
    cJSON_AddNumberToObject(a, "value", r->accuracy);
    add_if(a, "stderr", r->accuracy_stderr);
    cJSON_AddBoolToObject(a, "higher_is_better", r->higher_is_better);
    cJSON *l = section(j, "latency", r->provenance[1]);
    cJSON_AddNumberToObject(l, "total_s", r->latency_s);
    add_if(l, "prefill_s", r->prefill_s);
    add_if(l, "decode_s", r->decode_s);
    cJSON_AddNumberToObject(section(j, "memory", r->provenance[2]), "peak_bytes",
                            r->peak_mem_bytes);
    cJSON *e = section(j, "energy", r->provenance[3]);
    cJSON_AddNumberToObject(e, "joules_per_request", r->energy_j);
    cJSON_AddStringToObject(e, "source", r->energy_source);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FZ_CHECK(text != NULL);
    return text;
}

/* cJSON prints 17 significant digits only when 15 do not round-trip. */
static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= 1e-14 * fabs(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aellm_external_record r, q;
    if (aellm_external_parse((const char *)data, size, &r)) return 0;
    check_promises(&r);
    char *text = written_back(&r);
    int rc = aellm_external_parse(text, strlen(text), &q);
    if (rc) fprintf(stderr, "written back %s: %s\n", text, aellm_error_last());
    FZ_CHECK(rc == 0);
    FZ_CHECK(same(r.accuracy, q.accuracy) && same(r.latency_s, q.latency_s) &&
             same(r.peak_mem_bytes, q.peak_mem_bytes) && same(r.energy_j, q.energy_j) &&
             same(r.accuracy_stderr, q.accuracy_stderr) && same(r.prefill_s, q.prefill_s) &&
             same(r.decode_s, q.decode_s));
    FZ_CHECK(!strcmp(r.metric, q.metric) && !strcmp(r.identity, q.identity) &&
             r.higher_is_better == q.higher_is_better);
    free(text);
    return 0;
}
