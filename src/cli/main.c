/* `aellm <command>`: dispatch to one file per command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/evaluate.h"
#include "cli/cli.h"
#include "cli/dist.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "a quick look at the engine (generate + perplexity)"},
    {"generate", cmd_generate, "generate text from a prompt"},
    {"perplexity", cmd_perplexity, "perplexity of a text file (llama.cpp's method)"},
    {"bench", cmd_bench, "prompt and generation speed, and the memory-bandwidth roofline"},
    {"eval", cmd_eval, "measure a configuration on a task (accuracy, latency, memory, energy)"},
    {"search", cmd_search, "search the configuration space: measured Pareto front and a pick"},
    {"report", cmd_report, "an HTML Pareto explorer and SVG/PNG fronts of searches and the store"},
    {"predict", cmd_predict, "predict latency, memory and energy on hardware that is not here"},
    {"apply", cmd_apply, "write the model a configuration makes (a search's pick, a front point)"},
    {"space", cmd_space, "the configuration space: knobs, rules, canonical form of a config"},
    {"train", cmd_train, "fine-tune a model (full, LoRA, RSLoRA, DoRA, QLoRA) and write GGUF"},
    {"quantize", cmd_quantize, "quantize a model (RTN, GPTQ, AWQ, SmoothQuant) to GGUF"},
    {"convert", cmd_convert, "convert a llama2.c checkpoint (or GGUF) to GGUF"},
    {"info", cmd_info, "metadata, tensor shapes, types and sizes of a model file"},
    {"mkmodel", cmd_mkmodel, "write a random-weight model of a real shape (for speed work)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aellm <command> [options]   (aellm <command> --help for details)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("aellm %s (engine %s)\ndistributed evaluation: %s\n", AELLM_VERSION,
               aellm_engine_version(), dist_describe());
        return 0;
    }
    /* the library reads hardware profiles from $AELLM_HARDWARE_DIR: point it
       at the bundled ones of this tree unless the user chose */
    const char *hw = getenv("AELLM_HARDWARE_DIR");
    if (!hw || !*hw) setenv("AELLM_HARDWARE_DIR", cli_bundled("hardware"), 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "aellm: unknown command '%s' (see aellm --help)\n", argv[1]);
    return 2;
}
