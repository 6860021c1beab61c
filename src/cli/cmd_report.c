/* `aellm report`: searches (`aellm search --json` files) and the evaluation
 * store as an interactive HTML Pareto explorer and static SVG/PNG fronts
 * (include/aellm/report.h). Reads what others measured; measures nothing. */
#include <stdlib.h>
#include <string.h>

#include "aellm/report.h"
#include "cli/cli.h"

#define MAX_INPUTS 256

typedef struct {
    const char *inputs[MAX_INPUTS];
    int n_inputs;
    const char *store, *html, *svg, *png, *x, *y, *title;
    int json, width, height;
} report_args;

static const cli_opt *opt_named(const cli_opt *opts, const char *arg)
{
    for (const cli_opt *o = opts; o->name; o++) {
        size_t n = strlen(o->name);
        if ((arg[1] == '-' && !strncmp(arg + 2, o->name, n) && !arg[2 + n]) ||
            (arg[1] != '-' && o->short_name && arg[1] == o->short_name && !arg[2]))
            return o;
    }
    return NULL;
}

/* cli_parse takes options only: the SEARCH.json operands go to a->inputs
 * and the options (with their values) to `named`, which then has argv's form.
 * Returns -1 after an error. */
static int split_operands(const cli_opt *opts, int argc, char **argv, char **named, int *n_named,
                          report_args *a)
{
    int only_operands = 0;
    *n_named = 0;
    named[(*n_named)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_operands && !strcmp(arg, "--")) {
            only_operands = 1;
        } else if (only_operands || arg[0] != '-' || !arg[1]) {
            if (a->n_inputs == MAX_INPUTS)
                return cli_fail("report", "more than %d search files", MAX_INPUTS), -1;
            a->inputs[a->n_inputs++] = arg;
        } else {
            const cli_opt *o = opt_named(opts, arg);
            named[(*n_named)++] = argv[i];
            if (o && o->kind != OPT_FLAG && i + 1 < argc) named[(*n_named)++] = argv[++i];
        }
    }
    return 0;
}

static int add_inputs(aellm_report *r, const report_args *a)
{
    for (int i = 0; i < a->n_inputs; i++)
        if (aellm_report_add_search(r, a->inputs[i])) return cli_fail_last("report");
    if (a->store && aellm_report_add_store(r, a->store)) return cli_fail_last("report");
    return 0;
}

static int write_outputs(const aellm_report *r, const report_args *a, cJSON *files)
{
    aellm_report_plot p;
    aellm_report_plot_default(&p);
    p.title = a->title;
    if (a->width) p.width = a->width;
    if (a->height) p.height = a->height;
    if ((a->x && aellm_report_axis_parse(&p.x, a->x)) ||
        (a->y && aellm_report_axis_parse(&p.y, a->y)))
        return cli_fail_last("report");
    if (a->html && aellm_report_write_html(r, a->html, a->title)) return cli_fail_last("report");
    if (a->html) cJSON_AddItemToArray(files, cJSON_CreateString(a->html));
    if (a->svg && aellm_report_write_svg(r, a->svg, &p)) return cli_fail_last("report");
    if (a->svg) cJSON_AddItemToArray(files, cJSON_CreateString(a->svg));
    if (a->png && aellm_report_write_png(r, a->png, &p)) return cli_fail_last("report");
    if (a->png) cJSON_AddItemToArray(files, cJSON_CreateString(a->png));
    return 0;
}

static void print_summary(const aellm_report *r, const report_args *a, cJSON *files)
{
    int n = aellm_report_dataset_count(r);
    if (!a->json) {
        for (int i = 0; i < n; i++) printf("dataset %d: %s\n", i, aellm_report_dataset_label(r, i));
        const cJSON *f;
        cJSON_ArrayForEach(f, files) printf("wrote %s\n", f->valuestring);
        cJSON_Delete(files);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *ds = cJSON_AddArrayToObject(doc, "datasets");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(ds, cJSON_CreateString(aellm_report_dataset_label(r, i)));
    cJSON_AddNumberToObject(doc, "points", aellm_report_point_count(r));
    cJSON_AddItemToObject(doc, "files", files);
    cli_print_json(doc);
}

int cmd_report(int argc, char **argv)
{
    report_args a = {0};
    cli_opt opts[] = {
        {"store", 0, OPT_STR, &a.store,
         "also every evaluation of this store (aellm.db), one dataset per model, task, hardware"},
        {"output", 'o', OPT_STR, &a.html, "write the interactive HTML explorer here"},
        {"svg", 0, OPT_STR, &a.svg, "write the front of --x against --y as SVG here"},
        {"png", 0, OPT_STR, &a.png, "the same plot as PNG"},
        {"x", 0, OPT_STR, &a.x,
         "x objective of the static plot (latency): acc, latency, memory, energy, throughput, "
         "amu, pcu, compression, tune"},
        {"y", 0, OPT_STR, &a.y, "y objective of the static plot (acc)"},
        {"title", 0, OPT_STR, &a.title, "title of the page and the plot"},
        {"width", 0, OPT_INT, &a.width, "static plot width in pixels (960)"},
        {"height", 0, OPT_INT, &a.height, "static plot height in pixels (640)"},
        {"json", 0, OPT_FLAG, &a.json, "print a summary (datasets, points, files) as JSON"},
        {0}};
    cli_command cmd = {
        "report", "Write a Pareto explorer (HTML) and static front plots of searches.",
        "[SEARCH.json ...] [--store aellm.db] -o report.html [--svg F.svg] [--png F.png]",
        "Each SEARCH.json (from aellm search --json) is one dataset, labelled model · task ·\n"
        "hardware; --store adds the store's evaluations. The HTML file is self-contained (data,\n"
        "script and style inline, nothing loaded from the network): choose the axes, filter by\n"
        "constraints, hover a point for its configuration and provenance, compare datasets and\n"
        "baselines. Every file is written to FILE.tmp and renamed, so none is half-written.",
        opts};
    char **named = malloc(sizeof(char *) * (size_t)(argc + 1));
    int n_named, rc = 1;
    aellm_report *r = NULL;
    if (!named) return cli_fail("report", "out of memory");
    if (split_operands(opts, argc, argv, named, &n_named, &a)) goto done;
    if ((rc = cli_parse(&cmd, n_named, named))) {
        rc = rc < 0;
        goto done;
    }
    rc = 1;
    if (!a.n_inputs && !a.store) {
        cli_fail("report",
                 "no input (give SEARCH.json files from aellm search --json, or --store)");
    } else if (!a.html && !a.svg && !a.png) {
        cli_fail("report", "no output (give -o report.html, --svg F.svg or --png F.png)");
    } else if (aellm_report_new(&r)) {
        cli_fail_last("report");
    } else if (!add_inputs(r, &a)) {
        cJSON *files = cJSON_CreateArray();
        if (!(rc = write_outputs(r, &a, files)))
            print_summary(r, &a, files);
        else
            cJSON_Delete(files);
    }
done:
    aellm_report_free(r);
    free(named);
    return rc;
}
