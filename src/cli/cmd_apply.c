/* `aellm apply`: a configuration made real, the model written as GGUF (the
 * library's aellm_apply: the stages an evaluation runs, their kept outputs
 * reused). */
#include <stdio.h>
#include <string.h>

#include "aellm/evaluate.h"
#include "cli/cli.h"

int cmd_apply(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *task_arg = NULL, *config_path = NULL, *out = NULL;
    int threads = 0, json = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model, "model file (default: bundled)"},
        {"tokenizer", 'z', OPT_STR, &tok, "tokenizer.bin for a llama2.c checkpoint"},
        {"config", 0, OPT_STR, &config_path,
         "configuration JSON, e.g. a point of a search (required)"},
        {"output", 'o', OPT_STR, &out, "output GGUF path (required)"},
        {"task", 0, OPT_STR, &task_arg,
         "task whose \"train\" file the training stages read when the configuration names none"},
        {"threads", 't', OPT_INT, &threads, "threads (default: all cores)"},
        {"json", 0, OPT_FLAG, &json, "print a JSON summary"},
        {0}};
    cli_command cmd = {
        "apply", "Write the model a configuration makes, as GGUF.",
        "[-m MODEL] --config CONFIG.json -o OUT.gguf [--task TASK]",
        "Runs the configuration's stages on the model as an evaluation does (architecture,\n"
        "fine-tuning, quantization; the cached outputs of conversions and training reused, see\n"
        "AELLM_CACHE_DIR) and writes the result to OUT (through OUT.tmp, renamed). The file\n"
        "records the configuration (metadata aellm.config). llama.cpp runs it where the\n"
        "format allows (not latent attention, not aellm's own weight types). The KV cache type\n"
        "is a runtime setting: recorded in aellm.config, not in the weights.",
        opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    if (!config_path) return cli_fail("apply", "no configuration given (--config C.json)");
    if (!out) return cli_fail("apply", "no output given (-o OUT.gguf)");
    if (threads < 0) return cli_fail("apply", "--threads must be >= 0");
    aellm_eval_request req;
    aellm_eval_request_default(&req);
    aellm_task *task = NULL;
    aellm_config config;
    int status = 1;
    if (task_arg && cli_open_task("apply", &task, task_arg)) goto done;
    if (aellm_config_load(&config, config_path)) {
        cli_fail_last("apply");
        goto done;
    }
    req.model_path = model;
    req.tokenizer_path = tok;
    if (cli_model_path("apply", &req.model_path, &req.tokenizer_path)) goto done;
    req.task = task;
    req.config = &config;
    req.n_threads = threads;
    req.progress = cli_eval_progress;
    if (aellm_apply(&req, NULL, out)) {
        cli_fail_last("apply");
        goto done;
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", req.model_path);
        cJSON_AddStringToObject(j, "config", config_path);
        cJSON_AddStringToObject(j, "output", out);
        cli_print_json(j);
    } else {
        fprintf(stderr, "wrote %s (%s applied to %s)\n", out, config_path, req.model_path);
    }
    status = 0;
done:
    aellm_task_free(task);
    return status;
}
