/* Fuzzes the tasks whose data is plain text (src/measure/task.c, task_ppl.c,
 * task_kld.c, task_gen.c): the input's first two bytes pick the kind
 * (perplexity, kld, or needle with the text as its filler sentences) and its
 * windows or cells; the rest is the text. A task that loads is run on the
 * mock language model (fuzz_lm.h): for kld, the base distributions are
 * computed and then compared with the same model's (whose KL divergence
 * must be zero). */
#include <cjson/cJSON.h>

#include "aellm/task.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static char *spec_of(int kind, int sel, const char *data)
{
    cJSON *j = cJSON_CreateObject();
    if (kind == 2) {
        double lengths[2] = {16 + sel % 64, 16 + (sel >> 3) % 128},
               depths[2] = {0, (sel & 7) / 7.0};
        cJSON_AddStringToObject(j, "kind", "needle");
        cJSON_AddStringToObject(j, "filler", data);
        cJSON_AddItemToObject(j, "lengths", cJSON_CreateDoubleArray(lengths, 1 + (sel >> 7)));
        cJSON_AddItemToObject(j, "depths", cJSON_CreateDoubleArray(depths, 2));
        cJSON_AddNumberToObject(j, "trials", 1);
        cJSON_AddNumberToObject(j, "seed", sel);
    } else {
        cJSON_AddStringToObject(j, "kind", kind ? "kld" : "perplexity");
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddNumberToObject(j, "n_ctx", sel % 4 == 0 ? 0 : 4 + sel % 61);
        if (sel & 64) cJSON_AddNumberToObject(j, "max_bytes", 1 + (sel >> 2));
        /* kld keeps vocabulary-wide rows per token: a few windows only */
        if (kind || sel & 128) cJSON_AddNumberToObject(j, "max_chunks", 1 + (sel >> 5) % 4);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FZ_CHECK(s);
    return s;
}

static void run_kld(const aellm_task *t)
{
    aellm_lm lm = fz_lm();
    aellm_kld_base *base = NULL;
    if (aellm_kld_base_compute(&base, t, &lm, NULL, NULL)) return;
    aellm_task_result r;
    FZ_CHECK(aellm_task_run_kld(t, &lm, base, NULL, NULL, &r) == 0);
    FZ_CHECK(r.n_metrics >= 1 && fabs(r.metrics[0].value) < 1e-6);
    aellm_task_result_free(&r);
    aellm_kld_base_free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int kind = fz_u8(&in) % 3, sel = fz_u8(&in);
    fz_write("text.txt", in.p, in.n);
    char *spec = spec_of(kind, sel, "text.txt");
    aellm_task *t = NULL;
    if (aellm_task_parse(&t, spec, fz_dir(), NULL) == 0) {
        fz_exercise_task(t);
        if (aellm_task_kind_of(t) == AELLM_TASK_KLD) run_kld(t);
        aellm_task_free(t);
    }
    free(spec);
    return 0;
}
