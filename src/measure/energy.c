/* Energy of a stretch of work: RAPL package counters and NVML's per-GPU
 * energy counter where they read, else the hardware profile's power model.
 * A reading is whatever its sources say; an estimate is labelled "model".
 * Not a power sampler: two counter reads per stretch, nothing in between. */
#include "aellm/energy.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/timer.h"
#include "measure/measure_internal.h"

enum { MAX_RAPL = 16, MAX_GPUS = 64 };

/* The few NVML entry points used, declared here so that no NVML header or
 * library is needed to build; all return nvmlReturn_t (0 = success). */
typedef struct nvml_device *nvml_device;
typedef struct {
    void *lib;
    int (*init)(void);
    int (*shutdown)(void);
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, nvml_device *);
    int (*energy)(nvml_device, unsigned long long *); /* millijoules since driver load */
} nvml_api;

struct aellm_energy_meter {
    aellm_hw_profile hw;
    int sources;
    int n_rapl;
    char rapl[MAX_RAPL][256]; /* package directories */
    uint64_t rapl_range[MAX_RAPL], rapl_start[MAX_RAPL];
    nvml_api nvml;
    int n_gpu;
    nvml_device gpu[MAX_GPUS];
    unsigned long long gpu_start[MAX_GPUS];
    double wall0, cpu0;
    int started;
};

/* ---- RAPL ---- */

const char *aellm_rapl_root(void)
{
    const char *r = getenv("AELLM_POWERCAP_DIR");
    return r && *r ? r : "/sys/class/powercap";
}

static int read_u64(const char *dir, const char *file, uint64_t *out)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    unsigned long long v;
    int ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (!ok) return -1;
    *out = v;
    return 0;
}

/* intel-rapl:N is a package (also on AMD since Linux 5.8); intel-rapl:N:M are
 * its core/uncore/dram sub-zones, already inside the package figure; psys
 * (whole platform, laptops) would count the packages twice. */
static int is_package(const char *root, const char *entry)
{
    int n = 0, len = 0;
    if (sscanf(entry, "intel-rapl:%d%n", &n, &len) != 1 || entry[len] != 0) return 0;
    char path[512], name[64] = "";
    snprintf(path, sizeof(path), "%s/%s/name", root, entry);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fscanf(f, "%63s", name) == 1;
    fclose(f);
    return ok && strncmp(name, "package", 7) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int aellm_rapl_packages(char (*paths)[256], int max)
{
    const char *root = aellm_rapl_root();
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; n < max && (e = readdir(d)) != NULL;)
        if (is_package(root, e->d_name) && snprintf(paths[n], 256, "%s/%s", root, e->d_name) < 256)
            n++;
    closedir(d);
    qsort(paths, (size_t)n, 256, cmp_str); /* readdir order is arbitrary */
    return n;
}

uint64_t aellm_rapl_delta(uint64_t start, uint64_t end, uint64_t range)
{
    /* the counter takes the values 0..range, so a wrap adds range + 1 */
    return end >= start ? end - start : range - start + end + 1;
}

/* Keeps the packages whose counter this process may read (energy_uj is
 * root-only on kernels patched for CVE-2020-8694). */
static void open_rapl(aellm_energy_meter *m)
{
    char all[MAX_RAPL][256];
    int n = aellm_rapl_packages(all, MAX_RAPL);
    for (int i = 0; i < n; i++) {
        uint64_t v, range;
        if (read_u64(all[i], "energy_uj", &v) || read_u64(all[i], "max_energy_range_uj", &range))
            continue;
        memcpy(m->rapl[m->n_rapl], all[i], sizeof(all[i]));
        m->rapl_range[m->n_rapl++] = range;
    }
}

/* ---- NVML ---- */

static int load_nvml(nvml_api *a)
{
    a->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!a->lib) return -1;
    *(void **)&a->init = dlsym(a->lib, "nvmlInit_v2");
    *(void **)&a->shutdown = dlsym(a->lib, "nvmlShutdown");
    *(void **)&a->count = dlsym(a->lib, "nvmlDeviceGetCount_v2");
    *(void **)&a->handle = dlsym(a->lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&a->energy = dlsym(a->lib, "nvmlDeviceGetTotalEnergyConsumption");
    if (a->init && a->shutdown && a->count && a->handle && a->energy && a->init() == 0) return 0;
    dlclose(a->lib);
    memset(a, 0, sizeof(*a));
    return -1;
}

/* Keeps the GPUs that report energy (Volta and later). */
static void open_nvml(aellm_energy_meter *m)
{
    if (load_nvml(&m->nvml)) return;
    unsigned int n = 0;
    if (m->nvml.count(&n)) n = 0;
    for (unsigned int i = 0; i < n && m->n_gpu < MAX_GPUS; i++) {
        nvml_device d;
        unsigned long long mj;
        if (m->nvml.handle(i, &d) == 0 && m->nvml.energy(d, &mj) == 0) m->gpu[m->n_gpu++] = d;
    }
    if (m->n_gpu == 0) {
        m->nvml.shutdown();
        dlclose(m->nvml.lib);
        memset(&m->nvml, 0, sizeof(m->nvml));
    }
}

/* ---- the meter ---- */

static double cpu_time_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int aellm_energy_meter_new(aellm_energy_meter **out, const aellm_hw_profile *hw, int allow)
{
    *out = NULL;
    if (allow == 0) allow = AELLM_ENERGY_RAPL | AELLM_ENERGY_NVML | AELLM_ENERGY_MODEL;
    aellm_energy_meter *m = calloc(1, sizeof(*m));
    if (!m) return aellm_error_oom("energy meter", sizeof(*m));
    if (allow & AELLM_ENERGY_RAPL) open_rapl(m);
    if (allow & AELLM_ENERGY_NVML) open_nvml(m);
    m->sources = (m->n_rapl ? AELLM_ENERGY_RAPL : 0) | (m->n_gpu ? AELLM_ENERGY_NVML : 0);
    if (!m->sources) {
        /* an estimate only where the caller accepts one */
        if (!(allow & AELLM_ENERGY_MODEL)) {
            free(m);
            return aellm_error_set(AELLM_ENOTFOUND,
                                   "no readable energy counter (RAPL under %s, NVML) and the "
                                   "power model is not allowed",
                                   aellm_rapl_root());
        }
        if (!hw) {
            free(m);
            return aellm_error_set(AELLM_EINVAL, "energy meter: the power model needs a "
                                                 "hardware profile");
        }
        m->sources = AELLM_ENERGY_MODEL;
    }
    if (hw) m->hw = *hw;
    *out = m;
    return 0;
}

void aellm_energy_meter_free(aellm_energy_meter *m)
{
    if (!m) return;
    if (m->nvml.lib) {
        m->nvml.shutdown();
        dlclose(m->nvml.lib);
    }
    free(m);
}

int aellm_energy_meter_sources(const aellm_energy_meter *m)
{
    return m->sources;
}

const char *aellm_energy_meter_source_name(const aellm_energy_meter *m)
{
    switch (m->sources) {
    case AELLM_ENERGY_RAPL:
        return "rapl";
    case AELLM_ENERGY_NVML:
        return "nvml";
    case AELLM_ENERGY_RAPL | AELLM_ENERGY_NVML:
        return "rapl+nvml";
    default:
        return "model";
    }
}

int aellm_energy_meter_start(aellm_energy_meter *m)
{
    for (int i = 0; i < m->n_rapl; i++)
        if (read_u64(m->rapl[i], "energy_uj", &m->rapl_start[i]))
            return aellm_error_set(AELLM_EIO, "%s/energy_uj: cannot read", m->rapl[i]);
    for (int i = 0; i < m->n_gpu; i++)
        if (m->nvml.energy(m->gpu[i], &m->gpu_start[i]))
            return aellm_error_set(AELLM_EIO, "NVML: cannot read the energy of GPU %d", i);
    m->cpu0 = cpu_time_s();
    m->wall0 = aellm_time_s();
    m->started = 1;
    return 0;
}

static int counters_joules(aellm_energy_meter *m, double *joules)
{
    double j = 0;
    for (int i = 0; i < m->n_rapl; i++) {
        uint64_t v;
        if (read_u64(m->rapl[i], "energy_uj", &v))
            return aellm_error_set(AELLM_EIO, "%s/energy_uj: cannot read", m->rapl[i]);
        j += (double)aellm_rapl_delta(m->rapl_start[i], v, m->rapl_range[i]) * 1e-6;
    }
    for (int i = 0; i < m->n_gpu; i++) {
        unsigned long long mj;
        if (m->nvml.energy(m->gpu[i], &mj))
            return aellm_error_set(AELLM_EIO, "NVML: cannot read the energy of GPU %d", i);
        j += (double)(mj - m->gpu_start[i]) * 1e-3; /* 64-bit: no wrap in practice */
    }
    *joules = j;
    return 0;
}

int aellm_energy_meter_stop(aellm_energy_meter *m, aellm_energy_reading *out)
{
    if (!m->started) return aellm_error_set(AELLM_EINVAL, "energy meter stopped before start");
    out->wall_s = aellm_time_s() - m->wall0;
    out->cpu_s = cpu_time_s() - m->cpu0;
    m->started = 0;
    if (m->sources == AELLM_ENERGY_MODEL) {
        out->joules = m->hw.idle_w * out->wall_s + m->hw.active_w_per_core * out->cpu_s;
        return 0;
    }
    return counters_joules(m, &out->joules);
}
