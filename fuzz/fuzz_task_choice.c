/* Fuzzes the multiple-choice task files (src/measure/task_data.c): the input's
 * first byte picks the spec's format (auto, which looks at the first line,
 * hellaswag, mc, winogrande, mmlu), its delimiter, metric and limit; the rest
 * is the data file. A task that loads is run on the mock language model
 * (fuzz_lm.h): items selected, both sides tokenized, choices scored. */
#include <cjson/cJSON.h>

#include "aellm/task.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static char *spec_of(int sel, const char *data)
{
    static const char *const formats[] = {"auto", "hellaswag", "mc", "winogrande", "mmlu"};
    static const char *const delims[] = {" ", "\n", "", "Answer: "};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "choice");
    cJSON_AddStringToObject(j, "data", data);
    cJSON_AddStringToObject(j, "format", formats[sel % 5]);
    cJSON_AddStringToObject(j, "delimiter", delims[(sel >> 3) % 4]);
    cJSON_AddStringToObject(j, "metric", sel & 32 ? "acc_norm" : "acc");
    if (sel & 64) cJSON_AddNumberToObject(j, "limit", 1 + (sel & 128 ? 2 : 0));
    cJSON_AddNumberToObject(j, "seed", sel);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    FZ_CHECK(s);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_run_task_file(data, size, "choice.txt", spec_of, AELLM_TASK_CHOICE);
}
