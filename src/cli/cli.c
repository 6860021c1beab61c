/* Option parsing, help text, model opening and JSON output for the commands.
 * Deliberately small: long and short options, "--opt value" and "--opt=value". */
#include "aellm/train.h"
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aellm/arch.h"
#include "aellm/dtype.h"
#include "aellm/error.h"
#include "core/file.h"

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "aellm %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail_last(const char *cmd)
{
    return cli_fail(cmd, "%s", aellm_error_last());
}

static void print_help(const cli_command *cmd)
{
    printf("usage: aellm %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->summary);
    for (const cli_opt *o = cmd->opts; o->name; o++) {
        char left[64];
        const char *arg = o->kind == OPT_FLAG    ? ""
                          : o->kind == OPT_STR   ? " S"
                          : o->kind == OPT_FLOAT ? " X"
                                                 : " N";
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s", o->short_name, o->name, arg);
        else
            snprintf(left, sizeof(left), "    --%s%s", o->name, arg);
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "-h, --help", "show this help");
    if (cmd->details) printf("\n%s\n", cmd->details);
}

static const cli_opt *find_opt(const cli_command *cmd, const char *arg, const char **inline_val)
{
    *inline_val = NULL;
    if (arg[0] == '-' && arg[1] != '-' && arg[1] && !arg[2]) {
        for (const cli_opt *o = cmd->opts; o->name; o++)
            if (o->short_name == arg[1]) return o;
        return NULL;
    }
    if (strncmp(arg, "--", 2) != 0) return NULL;
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (const cli_opt *o = cmd->opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
            if (eq) *inline_val = eq + 1;
            return o;
        }
    return NULL;
}

static int set_value(const cli_command *cmd, const cli_opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    if (o->kind == OPT_STR) {
        *(const char **)o->dst = v;
        return 0;
    }
    if (o->kind == OPT_FLOAT) {
        float f = strtof(v, &end);
        if (errno || end == v || *end) goto bad;
        *(float *)o->dst = f;
        return 0;
    }
    if (o->kind == OPT_U64) {
        unsigned long long u = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-') goto bad;
        *(uint64_t *)o->dst = u;
        return 0;
    }
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < INT_MIN || n > INT_MAX) goto bad;
    *(int *)o->dst = (int)n;
    return 0;
bad:
    cli_fail(cmd->name, "--%s: '%s' is not a valid %s", o->name, v,
             o->kind == OPT_FLOAT ? "number" : "integer");
    return -1;
}

int cli_parse(const cli_command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            print_help(cmd);
            return 1;
        }
        const cli_opt *o = find_opt(cmd, arg, &val);
        if (!o) {
            cli_fail(cmd->name, "unknown option '%s' (see aellm %s --help)", arg, cmd->name);
            return -1;
        }
        if (o->kind == OPT_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                cli_fail(cmd->name, "--%s needs a value", o->name);
                return -1;
            }
            val = argv[++i];
        }
        if (set_value(cmd, o, val)) return -1;
    }
    return 0;
}

int cli_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ../shared/data beside the working directory or beside the executable's
 * source tree (build/aellm -> ../../shared/data). */
const char *cli_data_dir(void)
{
    static char found[PATH_MAX];
    const char *env = getenv("AELLM_DATA");
    if (env && is_dir(env)) return env;
    const char *rel[] = {"../shared/data", "../../shared/data", "../../../shared/data"};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
        if (is_dir(rel[i]) && realpath(rel[i], found)) return found;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 64);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return NULL;
        *slash = '\0';
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof(cand), "%s/../shared/data", exe);
        if (is_dir(cand) && realpath(cand, found)) return found;
    }
    return NULL;
}

/* A folder holding the bundled files: tasks/ and space/default.json. */
static int is_home(const char *dir)
{
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof(probe), "%s/space/default.json", dir);
    if (!cli_is_file(probe)) return 0;
    snprintf(probe, sizeof(probe), "%s/tasks", dir);
    return is_dir(probe);
}

#ifndef AELLM_SOURCE_DIR
#define AELLM_SOURCE_DIR "."
#endif

/* $AELLM_HOME, else the nearest folder above the executable with the bundled
 * files (so a copied or moved tree uses its own), else the source tree the
 * program was built from. */
const char *cli_home(void)
{
    static char found[PATH_MAX];
    if (found[0]) return found;
    const char *env = getenv("AELLM_HOME");
    if (env && *env) {
        snprintf(found, sizeof(found), "%s", env);
        return found;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = '\0';
            if (is_home(exe[0] ? exe : "/") && realpath(exe[0] ? exe : "/", found)) return found;
        }
    }
    snprintf(found, sizeof(found), "%s", AELLM_SOURCE_DIR);
    return found;
}

const char *cli_bundled(const char *rel)
{
    static char path[8][PATH_MAX + 64];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", cli_home(), rel);
    return p;
}

const char *cli_space_file(void)
{
    const char *env = getenv("AELLM_SPACE");
    return env && *env ? env : cli_bundled("space/default.json");
}

const char *cli_default_model(const char **tokenizer)
{
    const char *env = getenv("AELLM_MODEL");
    *tokenizer = getenv("AELLM_TOKENIZER");
    if (env && *env) return env;
    const char *model = cli_bundled("models/stories260K/stories260K.bin");
    const char *tok = cli_bundled("models/stories260K/tok512.bin");
    if (!cli_is_file(model)) return NULL;
    *tokenizer = cli_is_file(tok) ? tok : NULL;
    return model;
}

int cli_model_path(const char *cmd, const char **path, const char **tokenizer)
{
    if (!*path && !(*path = cli_default_model(tokenizer))) {
        cli_fail(cmd,
                 "no model given (-m MODEL) and the bundled one is missing from %s/models "
                 "(set AELLM_MODEL, or AELLM_HOME to the aellm source tree)",
                 cli_home());
        return -1;
    }
    if (!cli_is_file(*path)) {
        cli_fail(cmd, "%s: no such model file", *path);
        return -1;
    }
    return 0;
}

int cli_open_model(const char *cmd, aellm_model **out, const char *path, const char *tokenizer)
{
    if (!path && cli_model_path(cmd, &path, &tokenizer)) return -1;
    if (aellm_model_load(out, path, tokenizer)) {
        cli_fail_last(cmd);
        return -1;
    }
    return 0;
}

int cli_lora_apply(const char *cmd, aellm_model *m, const char *path, float scale)
{
    if (!path) return 0;
    if (aellm_model_apply_lora(m, path, scale)) return cli_fail_last(cmd), -1;
    return 0;
}

void cli_print_json(cJSON *doc)
{
    char *s = cJSON_Print(doc);
    if (s) puts(s);
    free(s);
    cJSON_Delete(doc);
}

char *cli_read_file(const char *cmd, const char *path, size_t *len)
{
    char *buf;
    if (aellm_file_read(&buf, len, path, 0, "file")) cli_fail_last(cmd);
    return buf;
}

int cli_vocab_for(const char *cmd, aellm_tokenizer **out, const char *path, int vocab_size)
{
    char buf[PATH_MAX + 64];
    *out = NULL;
    if (!path) {
        const char *data = cli_data_dir();
        const char *rel = vocab_size == 32000 ? "llama2-tokenizer/tokenizer.bin"
                          : vocab_size == 512 ? "stories260K/tok512.bin"
                                              : NULL;
        if (data && rel) snprintf(buf, sizeof(buf), "%s/%s", data, rel);
        if (!data || !rel || !cli_is_file(buf)) {
            if (aellm_tokenizer_byte_level(out, vocab_size)) return cli_fail_last(cmd), -1;
            return 0;
        }
        path = buf;
    }
    if (aellm_tokenizer_load_llama2c(out, path, vocab_size)) return cli_fail_last(cmd), -1;
    return 0;
}

int cli_encode(const char *cmd, const aellm_tokenizer *tok, const char *text, size_t len,
               int32_t **ids, size_t *n)
{
    size_t cap = len + 3; /* at most one token a byte, plus BOS and the space prefix */
    *ids = malloc(cap * sizeof(int32_t));
    if (!*ids) return cli_fail(cmd, "out of memory for %zu tokens", cap), -1;
    if (aellm_tokenizer_encode(tok, text, len, 1, *ids, cap, n) == 0) return 0;
    free(*ids);
    *ids = NULL;
    return cli_fail_last(cmd), -1;
}

int cli_kv_apply(const char *cmd, aellm_model *m, const char *kv_type, int kv_heads,
                 aellm_engine_params *ep)
{
    int type = kv_type ? aellm_dtype_from_name(kv_type) : AELLM_DTYPE_F32;
    if (type != AELLM_DTYPE_F32 && type != AELLM_DTYPE_F16 && type != AELLM_DTYPE_Q8_0)
        return cli_fail(cmd, "--kv-type: '%s' is not one of f32, f16, q8_0", kv_type), -1;
    int have = aellm_model_config_get(m)->n_kv_heads;
    if (kv_heads < 0 || (kv_heads > 0 && have % kv_heads != 0))
        return cli_fail(cmd, "--kv-heads: %d does not divide the model's %d KV heads", kv_heads,
                        have),
               -1;
    if (kv_heads > 0 && aellm_model_share_kv_heads(m, kv_heads))
        return cli_fail(cmd, "--kv-heads: %s", aellm_error_last()), -1;
    ep->kv_type = type;
    return 0;
}

int cli_repack(const char *cmd, aellm_model *m, int *n)
{
    if (aellm_model_repack(m, n)) return cli_fail(cmd, "repacking: %s", aellm_error_last()), -1;
    return 0;
}

void cli_kv_json(cJSON *o, const aellm_engine *e, const aellm_model *m)
{
    const aellm_dtype_traits *t = aellm_dtype_traits_get(aellm_engine_kv_type(e));
    cJSON_AddStringToObject(o, "kv_type", t ? t->name : "?");
    cJSON_AddNumberToObject(o, "kv_heads", aellm_model_config_get(m)->n_kv_heads);
    cJSON_AddNumberToObject(o, "kv_bytes", (double)aellm_engine_kv_bytes(e));
}

int cli_open_task(const char *cmd, aellm_task **out, const char *arg)
{
    char path[PATH_MAX];
    const char *dir = getenv("AELLM_TASKS_DIR");
    if (!dir || !*dir) dir = cli_bundled("tasks");
    struct stat st;
    if (stat(arg, &st) == 0) /* whatever stands there: a directory is refused by name */
        snprintf(path, sizeof(path), "%s", arg);
    else if (snprintf(path, sizeof(path), "%s/%s.json", dir, arg) && !cli_is_file(path))
        return cli_fail(cmd, "task '%s': no such file, nor a bundled task in %s", arg, dir);
    if (aellm_task_load(out, path, cli_data_dir())) return cli_fail_last(cmd);
    return 0;
}

double cli_parse_size(const char *s)
{
    static const char units[] = "KMGT";
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return -1;
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (u) {
        v *= pow(1024.0, (double)(u - units + 1));
        end++;
    }
    if (!strcmp(end, "iB") || !strcmp(end, "B")) end += strlen(end);
    return *end ? -1 : v;
}

void cli_eval_progress(const char *phase, int64_t done, int64_t total, void *user)
{
    (void)user;
    if (!isatty(2)) return;
    fprintf(stderr, "\r%-9s %lld/%lld   ", phase, (long long)done, (long long)total);
    if (done == total) fputc('\n', stderr);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, int json)
{
    *p = (cli_progress){.on = !json && isatty(2), .t0 = wall_now()};
}

static void human_duration(double s, char *out, size_t cap)
{
    if (s < 60)
        snprintf(out, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(out, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void cli_progress_update(cli_progress *p, const char *phase, double done, double total,
                         const char *extra)
{
    double now = wall_now();
    if (!p->on || (now - p->last < 0.1 && done < total)) return;
    p->last = now;
    char eta[32] = "";
    if (total > 0 && done > 0 && done < total) {
        char d[24];
        human_duration((now - p->t0) / done * (total - done), d, sizeof(d));
        snprintf(eta, sizeof(eta), "  ETA %s", d);
    }
    if (total > 0)
        fprintf(stderr, "\r\033[K%s %.0f/%.0f%s%s%s", phase, done, total, extra ? "  " : "",
                extra ? extra : "", eta);
    else
        fprintf(stderr, "\r\033[K%s%s%s", phase, extra ? "  " : "", extra ? extra : "");
    p->drawn = 1;
}

void cli_progress_end(cli_progress *p)
{
    if (p->on && p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}
