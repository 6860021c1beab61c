/* Ensembles of XGBoost boosters for one objective: training from scratch,
 * continued training, transfer from another surrogate, and batched
 * prediction with mean and variance. Not the feature encoding
 * (surrogate_data.c) nor the file format (surrogate_io.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "optimize/surrogate_internal.h"

/* ---- parameters ---- */

void aellm_surrogate_params_default(aellm_surrogate_params *p)
{
    *p = (aellm_surrogate_params){
        .members = 5,
        .num_rounds = 500,
        .max_depth = 8,
        .eta = 0.05,
        .subsample = 0.8,
        .colsample_bytree = 0.8,
        .min_child_weight = 1.0,
        .lambda = 1.0,
        .nthread = 1, /* see the header: small data, shared cores */
        .bootstrap = 1,
        .seed = 0,
        .transfer_rounds = 100,
        .objective = "reg:squarederror",
        .tree_method = "hist",
    };
}

static int in_unit(double v)
{
    return v > 0.0 && v <= 1.0;
}

int aellm_surr_params_check(const aellm_surrogate_params *p)
{
    const char *bad = NULL;
    if (p->members < 1 || p->members > 1024)
        bad = "members (1..1024)";
    else if (p->num_rounds < 1)
        bad = "num_rounds (>= 1)";
    else if (p->max_depth < 1 || p->max_depth > 64)
        bad = "max_depth (1..64)";
    else if (!in_unit(p->eta))
        bad = "eta (0, 1]";
    else if (!in_unit(p->subsample))
        bad = "subsample (0, 1]";
    else if (!in_unit(p->colsample_bytree))
        bad = "colsample_bytree (0, 1]";
    else if (!(p->min_child_weight >= 0.0) || !isfinite(p->min_child_weight))
        bad = "min_child_weight (>= 0)";
    else if (!(p->lambda >= 0.0) || !isfinite(p->lambda))
        bad = "lambda (>= 0)";
    else if (p->nthread < 0 || p->nthread > 1024) /* XGBoost keeps buffers per thread */
        bad = "nthread (0..1024)";
    else if (p->transfer_rounds < 0)
        bad = "transfer_rounds (>= 0)";
    else if (!memchr(p->objective, 0, sizeof(p->objective)) || !p->objective[0])
        bad = "objective (a non-empty name)";
    else if (!memchr(p->tree_method, 0, sizeof(p->tree_method)) || !p->tree_method[0])
        bad = "tree_method (a non-empty name)";
    if (bad) return aellm_error_set(AELLM_EINVAL, "surrogate: bad parameter %s", bad);
    return 0;
}

int aellm_surr_xgb(int rc, const char *what)
{
    if (rc == 0) return 0;
    return aellm_error_set(AELLM_ERROR, "xgboost: %s: %s", what, XGBGetLastError());
}

/* splitmix64: decorrelates the members' seeds and bootstrap streams. */
static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int set_str(BoosterHandle b, const char *key, const char *val)
{
    char what[64];
    snprintf(what, sizeof(what), "setting %s", key);
    return aellm_surr_xgb(XGBoosterSetParam(b, key, val), what);
}

static int set_num(BoosterHandle b, const char *key, double v)
{
    char val[32];
    snprintf(val, sizeof(val), "%.17g", v);
    return set_str(b, key, val);
}

int aellm_surr_set_params(BoosterHandle b, const aellm_surrogate_params *p, int member, int start)
{
    /* XGBoost keeps seeds as signed integers: 31 bits are safe everywhere. */
    uint64_t full = mix(mix(p->seed, (uint64_t)member), (uint64_t)start);
    long long seed = (long long)(full & 0x7fffffffull);
    int rc = 0;
    if (!rc) rc = set_str(b, "verbosity", "0"); /* a library does not print */
    if (!rc) rc = set_str(b, "objective", p->objective);
    if (!rc) rc = set_str(b, "tree_method", p->tree_method);
    if (!rc) rc = set_num(b, "max_depth", p->max_depth);
    if (!rc) rc = set_num(b, "eta", p->eta);
    if (!rc) rc = set_num(b, "subsample", p->subsample);
    if (!rc) rc = set_num(b, "colsample_bytree", p->colsample_bytree);
    if (!rc) rc = set_num(b, "min_child_weight", p->min_child_weight);
    if (!rc) rc = set_num(b, "lambda", p->lambda);
    if (!rc) rc = set_num(b, "seed", (double)seed);
    if (!rc && p->nthread > 0) rc = set_num(b, "nthread", p->nthread);
    return rc;
}

void aellm_surr_free_members(BoosterHandle *b, int k)
{
    if (!b) return;
    for (int i = 0; i < k; i++)
        if (b[i]) XGBoosterFree(b[i]);
    free(b);
}

/* ---- handle ---- */

int aellm_surrogate_new(aellm_surrogate **out, const aellm_surrogate_params *p)
{
    *out = NULL;
    aellm_surrogate_params def;
    aellm_surrogate_params_default(&def);
    if (!p) p = &def;
    int rc = aellm_surr_params_check(p);
    if (rc) return rc;
    aellm_surrogate *s = calloc(1, sizeof(*s));
    if (!s) return aellm_error_oom("surrogate", sizeof(*s));
    s->p = *p;
    s->y_scale = 1;
    *out = s;
    return 0;
}

void aellm_surrogate_free(aellm_surrogate *s)
{
    if (!s) return;
    aellm_surr_free_members(s->b, s->k);
    free(s);
}

size_t aellm_surrogate_num_features(const aellm_surrogate *s)
{
    return s->k ? s->d : 0;
}

int aellm_surrogate_num_members(const aellm_surrogate *s)
{
    return s->k;
}

const aellm_surrogate_params *aellm_surrogate_get_params(const aellm_surrogate *s)
{
    return &s->p;
}

/* ---- training data ---- */

static int check_rows(const float *X, size_t n, size_t d, const float *y)
{
    if (n == 0) return aellm_error_set(AELLM_EINVAL, "surrogate: no training rows (n = 0)");
    if (d == 0) return aellm_error_set(AELLM_EINVAL, "surrogate: no features (d = 0)");
    if (!X || !y) return aellm_error_set(AELLM_EINVAL, "surrogate: NULL training data");
    if (n > ((size_t)1 << 40) / d)
        return aellm_error_set(AELLM_ESHAPE, "surrogate: %zu × %zu too large", n, d);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            return aellm_error_set(AELLM_EINVAL, "surrogate: target of row %zu is not finite (%g)",
                                   i, y[i]);
        for (size_t j = 0; j < d; j++)
            if (isinf(X[i * d + j]))
                return aellm_error_set(AELLM_EINVAL,
                                       "surrogate: feature %zu of row %zu is infinite", j, i);
    }
    return 0;
}

/* A member's rows: the distinct rows of its bootstrap, each weighted by how
 * many times it was drawn (same fit as duplicating rows, less memory). */
typedef struct {
    float *X; /* (m, d) */
    float *y; /* (m) */
    float *w; /* (m) */
    size_t m;
} sample;

static void sample_free(sample *s)
{
    free(s->X);
    free(s->y);
    free(s->w);
}

static int sample_draw(sample *out, const float *X, const float *y, size_t n, size_t d,
                       int bootstrap, uint64_t seed)
{
    *out = (sample){0};
    unsigned *count = calloc(n, sizeof(*count));
    out->X = malloc(n * d * sizeof(float));
    out->y = malloc(n * sizeof(float));
    out->w = malloc(n * sizeof(float));
    if (!count || !out->X || !out->y || !out->w) {
        free(count);
        sample_free(out);
        return aellm_error_oom("surrogate sample", (unsigned long long)n * (d + 3) * 4);
    }
    aellm_rng r;
    aellm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) count[bootstrap ? aellm_rng_u64(&r) % n : i]++;
    for (size_t i = 0; i < n; i++) {
        if (!count[i]) continue;
        memcpy(out->X + out->m * d, X + i * d, d * sizeof(float));
        out->y[out->m] = y[i];
        out->w[out->m] = (float)count[i];
        out->m++;
    }
    free(count);
    return 0;
}

static int sample_dmatrix(DMatrixHandle *out, const sample *s, size_t d)
{
    *out = NULL;
    int rc = aellm_surr_xgb(XGDMatrixCreateFromMat(s->X, s->m, d, NAN, out), "creating DMatrix");
    if (!rc)
        rc = aellm_surr_xgb(XGDMatrixSetFloatInfo(*out, "label", s->y, s->m), "setting labels");
    if (!rc)
        rc = aellm_surr_xgb(XGDMatrixSetFloatInfo(*out, "weight", s->w, s->m), "setting weights");
    if (rc && *out) {
        XGDMatrixFree(*out);
        *out = NULL;
    }
    return rc;
}

static double weighted_mean(const sample *s)
{
    double sw = 0, swy = 0;
    for (size_t i = 0; i < s->m; i++) {
        sw += s->w[i];
        swy += (double)s->w[i] * s->y[i];
    }
    return sw > 0 ? swy / sw : 0.0;
}

/* ---- training ---- */

/* A copy of booster src, through its UBJSON model (trees and base score;
 * no training parameters, which the caller sets). */
static int booster_copy(BoosterHandle *out, BoosterHandle src)
{
    *out = NULL;
    bst_ulong len = 0;
    const char *raw = NULL;
    int rc = aellm_surr_xgb(XGBoosterSaveModelToBuffer(src, "{\"format\":\"ubj\"}", &len, &raw),
                            "saving source model");
    if (rc) return rc;
    /* The buffer belongs to the source booster until its next call: copy. */
    char *buf = malloc(len ? len : 1);
    if (!buf) return aellm_error_oom("model copy", len);
    memcpy(buf, raw, len);
    rc = aellm_surr_xgb(XGBoosterCreate(NULL, 0, out), "creating booster");
    if (!rc)
        rc = aellm_surr_xgb(XGBoosterLoadModelFromBuffer(*out, buf, len), "loading model copy");
    free(buf);
    if (rc && *out) {
        XGBoosterFree(*out);
        *out = NULL;
    }
    return rc;
}

/* Boosts member `member` for `rounds` trees on its own bootstrap of (X, y)
 * into a new booster *out. from NULL: from nothing, starting at the
 * bootstrap's mean target (XGBoost 1.7 starts at 0.5 otherwise, far from most
 * objectives' scale). Else from a copy of `from`'s trees: a fresh booster, so
 * that XGBoost's random engines restart from the seed and continuing a model
 * gives the same trees whether it was just trained or loaded from a file. The
 * seed and the bootstrap depend on the member and the trees already there,
 * so a continuation draws afresh. */
static int member_boost(BoosterHandle *out, BoosterHandle from, const aellm_surrogate_params *p,
                        int member, const float *X, const float *y, size_t n, size_t d, int rounds)
{
    *out = NULL;
    int start = 0, rc = 0;
    if (from) rc = aellm_surr_xgb(XGBoosterBoostedRounds(from, &start), "counting rounds");
    if (rc) return rc;
    sample s;
    rc = sample_draw(&s, X, y, n, d, p->bootstrap,
                     mix(mix(p->seed, (uint64_t)member), (uint64_t)start + 7));
    if (rc) return rc;
    DMatrixHandle dm = NULL;
    rc = sample_dmatrix(&dm, &s, d);
    if (!rc && from) rc = booster_copy(out, from);
    if (!rc && !from) {
        rc = aellm_surr_xgb(XGBoosterCreate(&dm, 1, out), "creating booster");
        if (!rc) rc = set_num(*out, "base_score", weighted_mean(&s));
    }
    if (!rc) rc = aellm_surr_set_params(*out, p, member, start);
    for (int i = 0; i < rounds && !rc; i++)
        rc = aellm_surr_xgb(XGBoosterUpdateOneIter(*out, start + i, dm), "boosting");
    if (rc && *out) {
        XGBoosterFree(*out);
        *out = NULL;
    }
    if (dm) XGDMatrixFree(dm);
    sample_free(&s);
    return rc;
}

/* y standardised with (shift, scale), in a new array (caller frees). */
static float *scaled_targets(const float *y, size_t n, double shift, double scale)
{
    float *t = malloc((n ? n : 1) * sizeof(float));
    if (!t) {
        aellm_error_oom("surrogate targets", (unsigned long long)n * sizeof(float));
        return NULL;
    }
    for (size_t i = 0; i < n; i++) t[i] = (float)((y[i] - shift) / scale);
    return t;
}

/* The mean and standard deviation of y (1 when y is constant). */
static void target_scale(const float *y, size_t n, double *shift, double *scale)
{
    double sum = 0, ss = 0;
    for (size_t i = 0; i < n; i++) sum += y[i];
    double mean = n ? sum / (double)n : 0;
    for (size_t i = 0; i < n; i++) ss += (y[i] - mean) * (y[i] - mean);
    double sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
    *shift = mean;
    *scale = sd > 0 && isfinite(sd) ? sd : 1;
}

/* Swaps a complete new set of members in (the old model is kept until the
 * new one is whole, so a failed fit leaves s as it was). */
static void install(aellm_surrogate *s, BoosterHandle *b, int k, size_t d)
{
    aellm_surr_free_members(s->b, s->k);
    s->b = b;
    s->k = k;
    s->d = d;
}

/* Trains k members, member m from a copy of from[m % n_from] (from NULL: from
 * scratch), on y standardised with (shift, scale), and swaps them in. */
static int train_members(aellm_surrogate *s, int k, BoosterHandle const *from, int n_from,
                         const float *X, const float *y, size_t n, size_t d, int rounds,
                         double shift, double scale)
{
    float *t = scaled_targets(y, n, shift, scale);
    BoosterHandle *b = t ? calloc((size_t)k, sizeof(*b)) : NULL;
    if (!b) {
        free(t);
        return aellm_error_oom("surrogate members", (unsigned long long)k * sizeof(*b));
    }
    int rc = 0;
    /* Members train one after another: XGBoost seeds its thread's random
     * engine when a booster configures, so interleaving would mix streams. */
    for (int m = 0; m < k && !rc; m++)
        rc = member_boost(&b[m], from ? from[m % n_from] : NULL, &s->p, m, X, t, n, d, rounds);
    free(t);
    if (rc) {
        aellm_surr_free_members(b, k);
        return rc;
    }
    install(s, b, k, d);
    s->y_shift = shift;
    s->y_scale = scale;
    return 0;
}

int aellm_surrogate_fit(aellm_surrogate *s, const float *X, size_t n, size_t d, const float *y)
{
    int rc = check_rows(X, n, d, y);
    if (rc) return rc;
    double shift, scale;
    target_scale(y, n, &shift, &scale);
    return train_members(s, s->p.members, NULL, 0, X, y, n, d, s->p.num_rounds, shift, scale);
}

static int check_trained(const aellm_surrogate *s, size_t d, const char *what)
{
    if (!s->k) return aellm_error_set(AELLM_EINVAL, "surrogate: %s before training", what);
    if (d != s->d)
        return aellm_error_set(AELLM_ESHAPE, "surrogate: %s with %zu features, the model has %zu",
                               what, d, s->d);
    return 0;
}

int aellm_surrogate_update(aellm_surrogate *s, const float *X, size_t n, size_t d, const float *y,
                           int rounds)
{
    int rc = check_trained(s, d, "update");
    if (!rc) rc = check_rows(X, n, d, y);
    if (!rc && rounds < 0)
        rc = aellm_error_set(AELLM_EINVAL, "surrogate: negative rounds (%d)", rounds);
    if (rc) return rc;
    return train_members(s, s->k, s->b, s->k, X, y, n, d, rounds, s->y_shift, s->y_scale);
}

int aellm_surrogate_fit_transfer(aellm_surrogate *s, const aellm_surrogate *source, const float *X,
                                 size_t n, size_t d, const float *y, int extra_rounds)
{
    int rc = check_trained(source, d, "transfer from a source");
    if (!rc) rc = check_rows(X, n, d, y);
    if (!rc && extra_rounds < 0)
        rc = aellm_error_set(AELLM_EINVAL, "surrogate: negative extra rounds (%d)", extra_rounds);
    if (rc) return rc;
    if (extra_rounds == 0) extra_rounds = s->p.transfer_rounds;
    /* the source's trees predict in the source's units: the target rows are
       scaled the same way */
    return train_members(s, s->p.members, source->b, source->k, X, y, n, d, extra_rounds,
                         source->y_shift, source->y_scale);
}

/* ---- prediction ---- */

/* out[0..n) = member b's predictions of X (n × d), in one call. */
static int member_predict(BoosterHandle b, const float *X, size_t n, size_t d, float *out)
{
    char arr[160];
    snprintf(arr, sizeof(arr),
             "{\"data\":[%llu,true],\"shape\":[%zu,%zu],\"typestr\":\"<f4\",\"version\":3}",
             (unsigned long long)(uintptr_t)X, n, d);
    /* XGBoost 1.7 needs cache_id and missing here; NaN is its JSON extension. */
    static const char config[] = "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
                                 "\"iteration_end\":0,\"strict_shape\":false,\"cache_id\":0,"
                                 "\"missing\":NaN}";
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    int rc = aellm_surr_xgb(XGBoosterPredictFromDense(b, arr, config, NULL, &shape, &dim, &res),
                            "predicting");
    if (rc) return rc;
    bst_ulong total = 1;
    for (bst_ulong i = 0; i < dim; i++) total *= shape[i];
    if (total != n)
        return aellm_error_set(AELLM_ESHAPE, "xgboost: %llu predictions for %zu rows",
                               (unsigned long long)total, n);
    /* The result buffer belongs to the booster and the next call overwrites it. */
    memcpy(out, res, n * sizeof(float));
    return 0;
}

int aellm_surrogate_predict(aellm_surrogate *s, const float *X, size_t n, size_t d, float *mean_out,
                            float *var_out)
{
    int rc = check_trained(s, d, "predict");
    if (rc || n == 0) return rc;
    if (!X || !mean_out)
        return aellm_error_set(AELLM_EINVAL, "surrogate: predict: NULL input or output");
    int k = s->k;
    float *all = malloc((size_t)k * n * sizeof(float)); /* (k, n) */
    if (!all) return aellm_error_oom("surrogate predictions", (unsigned long long)k * n * 4);
    for (int m = 0; m < k && !rc; m++) rc = member_predict(s->b[m], X, n, d, all + (size_t)m * n);
    /* Two passes in double: the mean, then the spread around it. */
    for (size_t i = 0; i < n && !rc; i++) {
        double sum = 0, ss = 0;
        for (int m = 0; m < k; m++) sum += all[(size_t)m * n + i];
        double mean = sum / k;
        for (int m = 0; m < k; m++) {
            double e = all[(size_t)m * n + i] - mean;
            ss += e * e;
        }
        mean_out[i] = (float)(s->y_shift + s->y_scale * mean);
        if (var_out) var_out[i] = k > 1 ? (float)(s->y_scale * s->y_scale * ss / (k - 1)) : 0.0f;
    }
    free(all);
    return rc;
}
