/* Fuzzes the configuration space file (aellm_space_load: stages, knobs of
 * three types, options, "active_when", rules; include/aellm/space.h) from a
 * file holding the input. A space that loads is walked: every knob and
 * option, the default point and points at each knob's bounds canonicalized,
 * checked against the rules, turned into a configuration and back, hashed;
 * every technique restricted and every stage held; and, when the discrete
 * knobs span at most MAX_ENUM points, the enumeration (which walks them all
 * before handing any out: the default space alone takes seconds under ASan). */
#include <cjson/cJSON.h>

#include "aellm/space.h"
#include "fuzz_util.h"

#define MAX_ENUM 4096

static int count_point(const double *genes, void *user)
{
    (void)genes;
    ++*(int *)user;
    return 0;
}

/* An upper bound of the points enumeration walks: the product of every
 * discrete knob's values (real knobs stay at their defaults). */
static double discrete_points(const aellm_space *s)
{
    double n = 1;
    aellm_knob_info k;
    for (int i = 0; i < aellm_space_n_knobs(s); i++) {
        aellm_space_knob(s, i, &k);
        if (k.type != AELLM_KNOB_REAL) n *= k.hi - k.lo + 1;
    }
    return n;
}

/* A point through every function that takes one. */
static void exercise_point(const aellm_space *s, double *genes)
{
    char why[256], hash[65];
    aellm_space_canonicalize(s, genes);
    aellm_space_violates(s, genes, why, sizeof(why));
    for (int k = 0; k < aellm_space_n_knobs(s); k++) aellm_space_is_active(s, genes, k);
    cJSON *cfg = aellm_space_to_config(s, genes);
    if (cfg) {
        int n = aellm_space_n_knobs(s);
        double *back = malloc((size_t)(n ? n : 1) * sizeof(double));
        FZ_CHECK(back);
        aellm_space_from_config(s, cfg, "fuzz", back);
        free(back);
        cJSON_Delete(cfg);
    }
    free(aellm_space_canonical(s, genes));
    aellm_space_hash(s, genes, hash);
}

static void exercise_knobs(const aellm_space *s)
{
    aellm_knob_info k;
    for (int i = 0; i < aellm_space_n_knobs(s); i++) {
        aellm_space_knob(s, i, &k);
        FZ_CHECK(k.name && k.stage && k.technique);
        FZ_CHECK(k.stage_index >= 0 && k.stage_index < aellm_space_n_stages(s));
        for (int o = 0; o < k.n_options; o++) {
            aellm_space_option_applies(s, i, o);
            aellm_space_option(s, i, o);
        }
        char name[512];
        snprintf(name, sizeof(name), "%s.%s", k.stage, k.name);
        aellm_space_find(s, name);
        aellm_space *r = NULL;
        if (aellm_space_restrict(s, k.technique, &r) == 0) aellm_space_free(r);
    }
    for (int st = 0; st < aellm_space_n_stages(s); st++) {
        const char *name = aellm_space_stage_name(s, st);
        aellm_space_stage_applies(s, name);
        aellm_space *h = NULL;
        if (aellm_space_hold_stage(s, name, &h) == 0) aellm_space_free(h);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aellm_space *s = NULL;
    if (aellm_space_load(&s, fz_write("space.json", data, size))) return 0;
    exercise_knobs(s);
    int n = aellm_space_n_knobs(s);
    double *genes = malloc((size_t)(n ? n : 1) * sizeof(double));
    FZ_CHECK(genes);
    aellm_space_defaults(s, genes);
    exercise_point(s, genes);
    for (int side = 0; side < 2; side++) {
        aellm_knob_info k;
        for (int i = 0; i < n; i++) {
            aellm_space_knob(s, i, &k);
            genes[i] = side ? k.hi : k.lo;
        }
        exercise_point(s, genes);
    }
    free(genes);
    int seen = 0;
    if (discrete_points(s) <= MAX_ENUM) {
        int64_t n_points = aellm_space_enumerate(s, count_point, &seen);
        FZ_CHECK(n_points < 0 || n_points == seen);
    }
    aellm_space_free(s);
    return 0;
}
