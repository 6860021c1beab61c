/* Fuzzes the task spec (aellm_task_load: JSON naming a kind, a data file and
 * the kind's keys; tasks/README.md) from a file holding the input. The spec's
 * folder, which is also "${data}", holds one small valid data file per
 * format, so a spec that names one gets past the data to the keys' checks
 * and the run. A task that loads is run on the mock language model
 * (fuzz_lm.h) when it has at most 64 items. The data files' own parsers
 * are fuzzed by fuzz_task_{choice,continuation,gsm8k,text}.c. */
#include "aellm/task.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static const struct {
    const char *name, *text;
} fixtures[] = {
    {"text.txt", "Once upon a time, there was a little girl named Lily. She liked to play "
                 "outside. One day she saw a big red ball in the park.\n\nThe end.\n"},
    {"mc.jsonl", "{\"query\": \"The sky is\", \"choices\": [\"blue\", \"green\"], \"gold\": 0}\n"
                 "{\"query\": \"Two and two make\", \"choices\": [\"three\", \"four\"], "
                 "\"gold\": 1}\n"},
    {"hellaswag.txt", "A man is cooking.\n2\nHe sings.\nHe sleeps.\nHe stirs the pot.\nHe "
                      "flies.\n"},
    {"winogrande.jsonl", "{\"context_options\": [\"Tom gave Bob\", \"Bob gave Tom\"], "
                         "\"continuation\": \"a book because he was kind.\", \"gold\": 0}\n"},
    {"mmlu.jsonl", "{\"input\": \"2 + 2 = ?\\nA. 3\\nB. 4\\nC. 5\\nD. 6\\nAnswer:\", "
                   "\"output\": \"B\"}\n"},
    {"lambada.jsonl", "{\"context\": \"She opened the door and saw her\", \"continuation\": "
                      "\"dog\"}\n"},
    {"openai.jsonl", "{\"text\": \"He looked up at the sky and saw the moon\"}\n"},
    {"gsm8k.jsonl", "{\"question\": \"Tom has 3 apples and buys 2. How many?\", \"answer\": "
                    "\"3 + 2 = 5\\n#### 5\"}\n{\"question\": \"What is 10 - 4?\", \"answer\": "
                    "\"#### 6\"}\n"},
    {"filler.txt", "The grass is green. The sky is blue. Birds sing in the trees. The sun is "
                   "warm today.\n"},
    {"train.txt", "One day, Tim went to the park. He saw a big red ball.\n"},
};

static void write_fixtures(void)
{
    static int done;
    if (done) return;
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
        fz_write_str(fixtures[i].name, fixtures[i].text);
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_fixtures();
    aellm_task *t = NULL;
    if (aellm_task_load(&t, fz_write("spec.json", data, size), fz_dir())) return 0;
    fz_exercise_task(t);
    aellm_task_free(t);
    return 0;
}
