/* `aellm space`: shows the configuration space, checks a configuration
 * against it (canonical form and identity), counts its valid points. */
#include <stdlib.h>
#include <string.h>

#include "aellm/space.h"
#include "cli/cli.h"

static void print_knobs(const aellm_space *s)
{
    for (int k = 0; k < aellm_space_n_knobs(s); k++) {
        aellm_knob_info in;
        aellm_space_knob(s, k, &in);
        char name[96];
        snprintf(name, sizeof(name), "%s.%s", in.stage, in.name);
        printf("  %-26s", name);
        if (in.type == AELLM_KNOB_CATEGORICAL) {
            for (int o = 0; o < in.n_options; o++) {
                char *v = cJSON_PrintUnformatted(aellm_space_option(s, k, o));
                printf("%s%s%s", o ? " " : "", v, aellm_space_option_applies(s, k, o) ? "" : "*");
                free(v);
            }
        } else {
            printf("%s [%g, %g]%s", in.type == AELLM_KNOB_INTEGER ? "integer" : "real", in.lo,
                   in.hi, in.applies ? "" : "*");
        }
        printf("\n");
    }
    printf("(* cannot be applied yet: held at the default in searches)\n");
}

int cmd_space(int argc, char **argv)
{
    const char *file = NULL, *config = NULL;
    int json = 0;
    cli_opt opts[] = {
        {"space", 's', OPT_STR, &file, "space file (default: the bundled space/default.json)"},
        {"config", 'c', OPT_STR, &config, "check this configuration: canonical form and identity"},
        {"json", 0, OPT_FLAG, &json, "print as JSON"},
        {0}};
    cli_command cmd = {"space", "The configuration space: knobs, options, rules, valid points.",
                       "[--space FILE] [--config CONFIG.json] [--json]",
                       "Without --config: lists the knobs and counts the distinct valid\n"
                       "configurations the engine can apply. With --config: checks it against the\n"
                       "space (errors name the knob) and prints its canonical JSON and SHA-256.",
                       opts};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc) return rc < 0 ? 1 : 0;
    const char *path = file ? file : cli_space_file();
    aellm_space *s = NULL;
    if (aellm_space_load(&s, path)) return cli_fail_last("space");
    int status = 0;
    if (config) {
        size_t len = 0;
        char *text = cli_read_file("space", config, &len), *canon = NULL;
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        double *g = malloc((size_t)aellm_space_n_knobs(s) * sizeof(double));
        char why[256] = "", hash[65];
        if (!text || !g)
            status = 1;
        else if (!j)
            status = cli_fail("space", "%s: malformed JSON", config);
        else if (aellm_space_from_config(s, j, config, g))
            status = cli_fail_last("space");
        else {
            aellm_space_canonicalize(s, g);
            int bad = aellm_space_violates(s, g, why, sizeof(why));
            canon = aellm_space_canonical(s, g);
            aellm_space_hash(s, g, hash);
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddBoolToObject(o, "valid", !bad);
                if (bad) cJSON_AddStringToObject(o, "why", why);
                cJSON_AddItemToObject(o, "canonical", cJSON_Parse(canon));
                cJSON_AddStringToObject(o, "sha256", hash);
                cli_print_json(o);
            } else if (!bad) {
                printf("%s\nsha256 %s\n", canon, hash);
            }
            if (bad) status = json ? 1 : cli_fail("space", "%s: invalid: %s", config, why);
        }
        free(canon);
        free(g);
        cJSON_Delete(j);
        free(text);
    } else {
        int64_t n = aellm_space_enumerate(s, NULL, NULL);
        if (n < 0)
            status = cli_fail_last("space");
        else if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", path);
            cJSON_AddNumberToObject(o, "knobs", aellm_space_n_knobs(s));
            cJSON_AddNumberToObject(o, "valid_points", (double)n);
            cli_print_json(o);
        } else {
            printf("space %s: %d knobs in %d stages\n", path, aellm_space_n_knobs(s),
                   aellm_space_n_stages(s));
            print_knobs(s);
            printf("%lld distinct valid configurations can be applied now\n", (long long)n);
        }
    }
    aellm_space_free(s);
    return status;
}
