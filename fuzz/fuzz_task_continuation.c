/* Fuzzes the continuation task files (LAMBADA and the like,
 * src/measure/task_data.c): the input's first byte picks the spec's format
 * (auto, which looks at the first line, jsonl, openai, text_last_word) and
 * limit; the rest is the data file. A task that loads is run on the mock
 * language model (fuzz_lm.h): contexts cut to the context, continuations
 * scored and generated greedily. */
#include <cjson/cJSON.h>

#include "aellm/task.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static char *spec_of(int sel, const char *data)
{
    static const char *const formats[] = {"auto", "jsonl", "openai", "text_last_word"};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "continuation");
    cJSON_AddStringToObject(j, "data", data);
    cJSON_AddStringToObject(j, "format", formats[sel % 4]);
    if (sel & 16) cJSON_AddNumberToObject(j, "limit", 1 + (sel >> 5));
    cJSON_AddNumberToObject(j, "seed", sel >> 2);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FZ_CHECK(s);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_task_file(data, size, "continuation.txt", spec_of, AELLM_TASK_CONTINUATION);
}
