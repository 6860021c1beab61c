/* Fuzzes the exact-match task's GSM8K file ({question, answer} lines, the
 * gold number after "####"; src/measure/task_data.c): the input's first byte
 * picks n_shot (0-3), max_new_tokens and limit; the rest is the data file. A
 * task that loads is run on the mock language model (fuzz_lm.h), whose
 * generations repeat the prompt, so the answer parsing sees numbers, "####"
 * and stop strings the input chose. */
#include <cjson/cJSON.h>

#include "aellm/task.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static char *spec_of(int sel, const char *data)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "exact_match");
    cJSON_AddStringToObject(j, "data", data);
    cJSON_AddNumberToObject(j, "n_shot", sel % 4);
    cJSON_AddNumberToObject(j, "max_new_tokens", 1 + ((sel >> 2) % 8) * 16);
    if (sel & 32) cJSON_AddNumberToObject(j, "limit", 1 + (sel >> 6));
    cJSON_AddNumberToObject(j, "seed", sel);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FZ_CHECK(s);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_task_file(data, size, "gsm8k.jsonl", spec_of, AELLM_TASK_EXACT_MATCH);
}
