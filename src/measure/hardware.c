/* Hardware profiles: this machine detected from /proc/cpuinfo and sysconf
 * (and, on request, its memory bandwidth and f32 FMA peak measured), or a
 * platform that is not here read from hardware/NAME.json. Not a benchmark
 * suite: one streaming read and one register-only FMA loop; every other
 * number is a stated estimate or a cited data-sheet value. */
#include "aellm/hardware.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aellm/dtype.h"
#include "core/error.h"
#include "core/json.h"
#include "core/membw.h"
#include "core/timer.h"
#include "measure/measure_internal.h"

#ifndef AELLM_HARDWARE_DIR
#define AELLM_HARDWARE_DIR "hardware"
#endif

/* ---- small text helpers ---- */

/* Appends to a fixed, NUL-terminated buffer; stops quietly at its end. */
__attribute__((format(printf, 3, 4))) static void append(char *buf, size_t size, const char *fmt,
                                                         ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* Whole-word search in a space-separated flag list. */
static int has_flag(const char *flags, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = flags; (p = strstr(p, name)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* ---- detection ---- */

enum { MAX_PAIRS = 4096 };

typedef struct {
    char model[128];
    char flags[4096];
    int pairs[MAX_PAIRS][2]; /* unique (physical id, core id) */
    int n_pairs;
} cpuinfo;

static void add_pair(cpuinfo *ci, int phys, int core)
{
    for (int i = 0; i < ci->n_pairs; i++)
        if (ci->pairs[i][0] == phys && ci->pairs[i][1] == core) return;
    if (ci->n_pairs == MAX_PAIRS) return;
    ci->pairs[ci->n_pairs][0] = phys;
    ci->pairs[ci->n_pairs][1] = core;
    ci->n_pairs++;
}

/* x86 lists "physical id" before "core id" in each processor's block; ARM
 * kernels give neither (cores then come from sysconf). */
static void read_cpuinfo(cpuinfo *ci)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    int phys = 0;
    while (getline(&line, &cap, f) > 0) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *key = trim(line), *val = trim(colon + 1);
        if (!strcmp(key, "model name") && !ci->model[0])
            snprintf(ci->model, sizeof(ci->model), "%s", val);
        else if ((!strcmp(key, "flags") || !strcmp(key, "Features")) && !ci->flags[0])
            snprintf(ci->flags, sizeof(ci->flags), "%s", val);
        else if (!strcmp(key, "physical id"))
            phys = atoi(val);
        else if (!strcmp(key, "core id"))
            add_pair(ci, phys, atoi(val));
    }
    free(line);
    fclose(f);
}

/* Without /proc/cpuinfo, the compiler's CPUID view of the same features
 * (the builtin takes only literals; F16C, CPUID leaf 1 ECX bit 29, is read
 * directly: clang 14's builtin does not know "f16c"). */
static void builtin_flags(cpuinfo *ci)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    __builtin_cpu_init();
    snprintf(ci->flags, sizeof(ci->flags), "%s%s%s%s%s",
             __builtin_cpu_supports("avx2") ? "avx2 " : "",
             __builtin_cpu_supports("fma") ? "fma " : "", f16c ? "f16c " : "",
             __builtin_cpu_supports("avx512f") ? "avx512f " : "",
             __builtin_cpu_supports("avx512vnni") ? "avx512_vnni " : "");
#else
    (void)ci;
#endif
}

/* cpuinfo flag -> short name in the profile: what the kernels use or what
 * the peak estimates below depend on. Short names keep isa[64] enough. */
static const struct {
    const char *flag, *name;
} isa_flags[] = {
    {"avx2", "avx2"},        {"fma", "fma"},          {"f16c", "f16c"},
    {"avx512f", "avx512"},   {"avx512_vnni", "vnni"}, {"avx_vnni", "avxvnni"},
    {"avx512_bf16", "bf16"}, {"avx512_fp16", "fp16"}, {"amx_int8", "amx"},
    {"asimd", "neon"},       {"asimddp", "dotprod"},  {"i8mm", "i8mm"},
    {"sve", "sve"},
};

static void isa_string(const char *flags, char *out, size_t size)
{
    out[0] = 0;
    for (size_t i = 0; i < sizeof(isa_flags) / sizeof(isa_flags[0]); i++)
        if (has_flag(flags, isa_flags[i].flag))
            append(out, size, "%s%s", out[0] ? " " : "", isa_flags[i].name);
    if (!out[0]) snprintf(out, size, "scalar");
}

static double mem_total(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) return (double)pages * (double)page;
    FILE *f = fopen("/proc/meminfo", "r");
    double kb = 0;
    if (f) {
        if (fscanf(f, "MemTotal: %lf kB", &kb) != 1) kb = 0;
        fclose(f);
    }
    return kb * 1024.0;
}

/* ---- measurement ---- */

static volatile float flops_sink;

static float loop_scalar(long iters, float m, float a)
{
    float acc[AELLM_FLOPS_CHAINS];
    for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) acc[k] = (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) acc[k] = acc[k] * m + a;
    float s = 0.0f;
    for (int k = 0; k < AELLM_FLOPS_CHAINS; k++) s += acc[k];
    return s;
}

typedef struct {
    float (*fn)(long, float, float);
    int flop_per_iter;
    const char *what;
} fma_loop;

/* The widest FMA the hardware has (not capped by AELLM_ISA: this is the
 * machine's peak, not what a capped run uses). */
static fma_loop pick_loop(void)
{
    fma_loop l = {loop_scalar, AELLM_FLOPS_PER_ITER_SCALAR, "scalar mul+add loop"};
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        l = (fma_loop){aellm_flops_loop_avx512, AELLM_FLOPS_PER_ITER_AVX512, "AVX-512 FMA loop"};
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        l = (fma_loop){aellm_flops_loop_avx2, AELLM_FLOPS_PER_ITER_AVX2, "AVX2 FMA loop"};
#endif
    return l;
}

/* FLOP/s of `threads` threads each running the loop; best of 5 runs, the
 * first of which also brings the clocks up. */
static double peak_f32(int threads, fma_loop l)
{
    const long iters = 1L << 25;
    double best = 0.0;
    for (int run = 0; run < 5; run++) {
        float total = 0.0f;
        int ran = 0;
        double t0 = aellm_time_s();
#pragma omp parallel num_threads(threads) reduction(+ : total, ran)
        {
            total += l.fn(iters, 0.999999f, 1e-6f * (float)(omp_get_thread_num() + 1));
            ran += 1;
        }
        double t = aellm_time_s() - t0;
        flops_sink = total;
        double rate = (double)ran * (double)iters * l.flop_per_iter / t;
        best = rate > best ? rate : best;
    }
    return best;
}

/* Other precisions from the f32 peak and the ISA: what one instruction does
 * relative to one f32 FMA of the same width. Estimates, said so in source. */
static void estimate_peaks(aellm_hw_profile *p, const char *flags, char *note, size_t size)
{
    int avx2 = has_flag(flags, "avx2");
    int vnni = has_flag(flags, "avx512_vnni") || has_flag(flags, "avx_vnni");
    int bf16 = has_flag(flags, "avx512_bf16");
    p->peak_f16 = p->peak_f32;
    p->peak_bf16 = bf16 ? 2.0 * p->peak_f32 : p->peak_f32;
    p->peak_int8 = vnni ? 4.0 * p->peak_f32 : avx2 ? 2.0 * p->peak_f32 : p->peak_f32;
    p->peak_fp8 = 0.0;
    p->peak_int4 = 0.0;
    append(note, size, " ESTIMATED from ISA: f16 = f32 (F16C converts, f32 FMA);");
    append(note, size, bf16 ? " bf16 = 2 x f32 (vdpbf16ps);" : " bf16 = f32 (converted);");
    append(note, size,
           vnni   ? " int8 = 4 x f32 (vpdpbusd);"
           : avx2 ? " int8 = 2 x f32 (vpmaddubsw+vpmaddwd);"
                  : " int8 = f32;");
    append(note, size, " fp8 = int4 = 0 (no CPU units).");
}

static void measure(aellm_hw_profile *p, const char *flags, int threads)
{
    char *note = p->source;
    size_t size = sizeof(p->source);
    /* several times any last-level cache, without crowding a small machine */
    size_t bytes = p->mem_bytes >= 8.0 * (1 << 30) ? (size_t)1 << 30 : (size_t)512 << 20;
    p->mem_bw = aellm_memory_bandwidth(bytes, threads);
    append(note, size, " mem_bw MEASURED: streaming read of %zu MiB, %d threads, best of 5.",
           bytes >> 20, threads);
    fma_loop l = pick_loop();
    p->peak_f32 = peak_f32(threads, l);
    append(note, size, " peak_f32 MEASURED: %s in registers (%d chains), %d threads, best of 5.",
           l.what, AELLM_FLOPS_CHAINS, threads);
    estimate_peaks(p, flags, note, size);
}

/* ---- power model ---- */

static double read_number(const char *dir, const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    double v = 0;
    if (f) {
        if (fscanf(f, "%lf", &v) != 1) v = 0;
        fclose(f);
    }
    return v;
}

/* Sum over packages of RAPL's limit (max_power, else the long-term limit
 * constraint_0, which is the TDP on most parts), in watts; 0 if absent. */
static double rapl_tdp_w(void)
{
    char paths[16][256];
    int n = aellm_rapl_packages(paths, 16);
    double w = 0;
    for (int i = 0; i < n; i++) {
        double uw = read_number(paths[i], "constraint_0_max_power_uw");
        if (uw <= 0) uw = read_number(paths[i], "constraint_0_power_limit_uw");
        w += uw * 1e-6;
    }
    return w;
}

/* idle 30 % of TDP and the rest shared by the busy cores: an ASSUMPTION
 * (typical of server parts), used only where no energy counter reads. */
static void power_model(aellm_hw_profile *p)
{
    double tdp = rapl_tdp_w();
    if (tdp > 0)
        append(p->source, sizeof(p->source), " Power: TDP %.0f W from RAPL constraint_0;", tdp);
    else {
        tdp = 10.0 * p->cores;
        append(p->source, sizeof(p->source), " Power ASSUMED: TDP 10 W/core = %.0f W;", tdp);
    }
    p->power_limit_w = tdp;
    p->idle_w = 0.3 * tdp;
    p->active_w_per_core = 0.7 * tdp / p->cores;
    append(p->source, sizeof(p->source),
           " idle 30 %% of TDP, active 70 %% of TDP / cores (ASSUMED).");
}

int aellm_hw_detect(aellm_hw_profile *out, int measure_it, int threads)
{
    memset(out, 0, sizeof(*out));
    cpuinfo *ci = calloc(1, sizeof(*ci));
    if (!ci) return aellm_error_oom("cpuinfo", sizeof(*ci));
    read_cpuinfo(ci);
    if (!ci->flags[0]) builtin_flags(ci);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    out->threads = online > 0 ? (int)online : 1;
    out->cores = ci->n_pairs > 0 ? ci->n_pairs : out->threads;
    snprintf(out->name, sizeof(out->name), "%s", ci->model[0] ? ci->model : "unknown CPU");
    snprintf(out->kind, sizeof(out->kind), "cpu");
    isa_string(ci->flags, out->isa, sizeof(out->isa));
    out->mem_bytes = mem_total();
    out->detected = 1;
    snprintf(out->source, sizeof(out->source),
             "detected: /proc/cpuinfo (model, flags, physical/core ids), sysconf (threads, RAM).");
    if (measure_it)
        measure(out, ci->flags, threads > 0 ? threads : out->cores);
    else
        append(out->source, sizeof(out->source), " mem_bw and peaks not measured (0).");
    power_model(out);
    free(ci);
    return 0;
}

/* ---- JSON ---- */

typedef struct {
    const char *key;
    size_t off, size;
    char type; /* 's' string, 'i' int, 'd' double */
    int optional;
} field;

#define FIELD(k, t, opt)                                                                           \
    {                                                                                              \
#k, offsetof(aellm_hw_profile, k), sizeof(((aellm_hw_profile *)0)->k), t, opt              \
    }
static const field fields[] = {
    FIELD(name, 's', 0),
    FIELD(kind, 's', 0),
    FIELD(isa, 's', 0),
    FIELD(cores, 'i', 0),
    FIELD(threads, 'i', 0),
    FIELD(mem_bytes, 'd', 0),
    FIELD(mem_bw, 'd', 0),
    FIELD(peak_f32, 'd', 0),
    FIELD(peak_f16, 'd', 0),
    FIELD(peak_bf16, 'd', 0),
    FIELD(peak_fp8, 'd', 0),
    FIELD(peak_int8, 'd', 0),
    FIELD(peak_int4, 'd', 0),
    FIELD(power_limit_w, 'd', 0),
    FIELD(idle_w, 'd', 0),
    FIELD(active_w_per_core, 'd', 0),
    FIELD(detected, 'i', 1),
    FIELD(source, 's', 0),
    FIELD(eff_bw_16, 'd', 1),
    FIELD(eff_bw_8, 'd', 1),
    FIELD(eff_bw_4, 'd', 1),
    FIELD(eff_compute, 'd', 1),
    FIELD(kernel_overhead_s, 'd', 1),
    FIELD(eff_source, 's', 1),
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

/* ---- measured kernel rates: {"q4_0": {"decode_bytes_per_s": .., ..}} ---- */

static const char *const RATE_TABLES[2] = {"kernel_rates", "attention_rates"};

static const aellm_hw_rate *rate_table(const aellm_hw_profile *p, int which)
{
    return which ? p->attention_rates : p->kernel_rates;
}

static cJSON *rates_to_json(const aellm_hw_rate *r)
{
    cJSON *o = NULL;
    for (int t = 0; t < AELLM_HW_RATED_TYPES; t++) {
        const aellm_dtype_traits *tr = aellm_dtype_traits_get(t);
        if (!tr || (r[t].decode_bytes_per_s <= 0 && r[t].prefill_flop_per_s <= 0)) continue;
        if (!o) o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, tr->name);
        cJSON_AddNumberToObject(e, "decode_bytes_per_s", r[t].decode_bytes_per_s);
        cJSON_AddNumberToObject(e, "prefill_flop_per_s", r[t].prefill_flop_per_s);
        if (r[t].decode_scale > 0) cJSON_AddNumberToObject(e, "decode_scale", r[t].decode_scale);
        if (r[t].prefill_scale > 0) cJSON_AddNumberToObject(e, "prefill_scale", r[t].prefill_scale);
    }
    return o;
}

static int rates_from_json(aellm_hw_rate *r, const cJSON *o, const char *key, const char *path)
{
    if (!cJSON_IsObject(o))
        return aellm_error_set(AELLM_EFORMAT, "%s: key \"%s\" must be an object", path, key);
    for (const cJSON *e = o->child; e; e = e->next) {
        int t = aellm_dtype_from_name(e->string);
        if (t < 0 || t >= AELLM_HW_RATED_TYPES)
            return aellm_error_set(AELLM_EFORMAT, "%s: \"%s\" names no weight type (%s)", path, key,
                                   e->string);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "decode_bytes_per_s");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "prefill_flop_per_s");
        if (!cJSON_IsNumber(d) || !cJSON_IsNumber(f) || d->valuedouble < 0 || f->valuedouble < 0 ||
            !isfinite(d->valuedouble) || !isfinite(f->valuedouble))
            return aellm_error_set(AELLM_EFORMAT,
                                   "%s: %s.%s needs numbers decode_bytes_per_s and "
                                   "prefill_flop_per_s >= 0",
                                   path, key, e->string);
        r[t] = (aellm_hw_rate){d->valuedouble, f->valuedouble, 0, 0};
        const char *scales[2] = {"decode_scale", "prefill_scale"};
        double *to[2] = {&r[t].decode_scale, &r[t].prefill_scale};
        for (int i = 0; i < 2; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, scales[i]);
            if (!v) continue;
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble))
                return aellm_error_set(AELLM_EFORMAT, "%s: %s.%s.%s must be a number > 0", path,
                                       key, e->string, scales[i]);
            *to[i] = v->valuedouble;
        }
    }
    return 0;
}

static int is_rate_table(const char *key)
{
    return !strcmp(key, RATE_TABLES[0]) || !strcmp(key, RATE_TABLES[1]);
}

cJSON *aellm_hw_to_json(const aellm_hw_profile *p)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    for (int w = 0; w < 2; w++) {
        cJSON *r = rates_to_json(rate_table(p, w));
        if (r) cJSON_AddItemToObject(j, RATE_TABLES[w], r);
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *at = (const char *)p + fields[i].off;
        cJSON *v = fields[i].type == 's'   ? cJSON_CreateString(at)
                   : fields[i].type == 'i' ? cJSON_CreateNumber(*(const int *)at)
                                           : cJSON_CreateNumber(*(const double *)at);
        if (!v || !cJSON_AddItemToObject(j, fields[i].key, v)) {
            cJSON_Delete(v);
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

char *aellm_hw_identity_json(const aellm_hw_profile *p)
{
    cJSON *j = aellm_hw_to_json(p);
    if (!j) return NULL;
    /* keep only what names the platform: measured values drift */
    static const char *const keep[] = {"name", "kind", "isa", "cores", "threads", "mem_bytes"};
    cJSON *id = cJSON_CreateObject();
    for (size_t i = 0; id && i < sizeof(keep) / sizeof(keep[0]); i++)
        cJSON_AddItemToObject(id, keep[i], cJSON_DetachItemFromObjectCaseSensitive(j, keep[i]));
    cJSON_Delete(j);
    char *s = id ? aellm_json_canonical(id) : NULL;
    cJSON_Delete(id);
    return s;
}

static int set_field(aellm_hw_profile *p, const field *f, const cJSON *v, const char *path)
{
    char *at = (char *)p + f->off;
    if (f->type == 's') {
        if (!cJSON_IsString(v))
            return aellm_error_set(AELLM_EFORMAT, "%s: key \"%s\" must be a string", path, f->key);
        if (strlen(v->valuestring) >= f->size)
            return aellm_error_set(AELLM_EFORMAT, "%s: key \"%s\" longer than %zu characters", path,
                                   f->key, f->size - 1);
        memcpy(at, v->valuestring, strlen(v->valuestring) + 1);
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
        return aellm_error_set(AELLM_EFORMAT, "%s: key \"%s\" must be a number >= 0", path, f->key);
    if (f->type == 'd') {
        *(double *)at = v->valuedouble;
    } else {
        if (v->valuedouble != floor(v->valuedouble) || v->valuedouble > INT_MAX)
            return aellm_error_set(AELLM_EFORMAT, "%s: key \"%s\" must be a whole number", path,
                                   f->key);
        *(int *)at = (int)v->valuedouble;
    }
    return 0;
}

static const field *find_field(const char *key)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!strcmp(fields[i].key, key)) return &fields[i];
    return NULL;
}

static int from_json(aellm_hw_profile *p, const cJSON *j, const char *path)
{
    if (!cJSON_IsObject(j)) return aellm_error_set(AELLM_EFORMAT, "%s: not a JSON object", path);
    /* an unknown key is most likely a misspelt one */
    for (const cJSON *v = j->child; v; v = v->next)
        if (!find_field(v->string) && !is_rate_table(v->string))
            return aellm_error_set(AELLM_EFORMAT, "%s: unknown key \"%s\"", path, v->string);
    for (int w = 0; w < 2; w++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, RATE_TABLES[w]);
        int rc =
            v ? rates_from_json((aellm_hw_rate *)rate_table(p, w), v, RATE_TABLES[w], path) : 0;
        if (rc) return rc;
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, fields[i].key);
        if (!v && fields[i].optional) continue;
        if (!v)
            return aellm_error_set(AELLM_EFORMAT, "%s: missing key \"%s\"", path, fields[i].key);
        int rc = set_field(p, &fields[i], v, path);
        if (rc) return rc;
    }
    if (strcmp(p->kind, "cpu") && strcmp(p->kind, "gpu"))
        return aellm_error_set(AELLM_EFORMAT, "%s: key \"kind\" must be \"cpu\" or \"gpu\"", path);
    if (p->cores < 1) return aellm_error_set(AELLM_EFORMAT, "%s: key \"cores\" must be >= 1", path);
    return 0;
}

/* A path (has a '/' or ends in .json) or a bare name looked up in the
 * hardware folder. */
static int resolve(char *buf, size_t size, const char *path_or_name, const char *dir)
{
    size_t n = strlen(path_or_name);
    int is_path = strchr(path_or_name, '/') || (n > 5 && !strcmp(path_or_name + n - 5, ".json"));
    if (!dir) dir = getenv("AELLM_HARDWARE_DIR");
    if (!dir || !*dir) dir = AELLM_HARDWARE_DIR;
    int len = is_path ? snprintf(buf, size, "%s", path_or_name)
                      : snprintf(buf, size, "%s/%s.json", dir, path_or_name);
    if (len < 0 || (size_t)len >= size)
        return aellm_error_set(AELLM_EINVAL, "hardware profile path too long: %s", path_or_name);
    return 0;
}

int aellm_hw_load(aellm_hw_profile *out, const char *path_or_name, const char *dir)
{
    memset(out, 0, sizeof(*out));
    if (!path_or_name || !*path_or_name)
        return aellm_error_set(AELLM_EINVAL, "hardware profile: no name given");
    char path[1024];
    int rc = resolve(path, sizeof(path), path_or_name, dir);
    if (rc) return rc;
    cJSON *j = NULL;
    rc = aellm_json_load(&j, path);
    if (rc) return rc;
    rc = from_json(out, j, path);
    cJSON_Delete(j);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}
