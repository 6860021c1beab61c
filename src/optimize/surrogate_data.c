/* Around the surrogate: R² of predictions, held-out R² of a freshly trained
 * surrogate, and feature rows from mixed (real, integer, categorical) values
 * with one-hot categoricals. One-hot rather than XGBoost's native categorical
 * splits: those need enable_categorical and feature types on every DMatrix
 * and in-place prediction, which 1.7's C API does not carry reliably. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "optimize/surrogate_internal.h"

double aellm_surrogate_r2(const float *pred, const float *truth, size_t n)
{
    if (n < 2) return NAN;
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += truth[i];
    mean /= (double)n;
    double res = 0, tot = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)truth[i] - pred[i], t = (double)truth[i] - mean;
        res += e * e;
        tot += t * t;
    }
    return tot > 0 ? 1.0 - res / tot : NAN;
}

/* perm[0..n) = a Fisher-Yates shuffle of 0..n-1. */
static void shuffle(size_t *perm, size_t n, uint64_t seed)
{
    aellm_rng r;
    aellm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(aellm_rng_u64(&r) % i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* Rows perm[from..to) of (X, y) into (Xo, yo). */
static void gather(float *Xo, float *yo, const float *X, const float *y, size_t d,
                   const size_t *perm, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        memcpy(Xo + (i - from) * d, X + perm[i] * d, d * sizeof(float));
        yo[i - from] = y[perm[i]];
    }
}

int aellm_surrogate_holdout_r2(double *out, const aellm_surrogate_params *p, const float *X,
                               size_t n, size_t d, const float *y, double frac, uint64_t seed)
{
    return aellm_surrogate_holdout_r2_transfer(out, p, NULL, X, n, d, y, frac, seed);
}

int aellm_surrogate_holdout_r2_transfer(double *out, const aellm_surrogate_params *p,
                                        const aellm_surrogate *source, const float *X, size_t n,
                                        size_t d, const float *y, double frac, uint64_t seed)
{
    *out = NAN;
    if (!(frac > 0.0 && frac < 1.0))
        return aellm_error_set(AELLM_EINVAL, "surrogate: held-out fraction %g not in (0, 1)", frac);
    size_t n_test = (size_t)llround(frac * (double)n);
    if (n_test < 2 || n - n_test < 2 || n < 4)
        return aellm_error_set(AELLM_EINVAL,
                               "surrogate: %zu rows split %g held out leaves too few on a side", n,
                               frac);
    if (d == 0 || n > ((size_t)1 << 40) / d)
        return aellm_error_set(AELLM_ESHAPE, "surrogate: bad shape %zu × %zu", n, d);
    size_t n_train = n - n_test;
    size_t *perm = malloc(n * sizeof(*perm));
    float *Xs = malloc(n * d * sizeof(float)), *ys = malloc(n * sizeof(float));
    float *pred = malloc(n_test * sizeof(float));
    aellm_surrogate *s = NULL;
    int rc = 0;
    if (!perm || !Xs || !ys || !pred) {
        rc = aellm_error_oom("held-out split", (unsigned long long)n * (d + 4) * 4);
        goto done;
    }
    shuffle(perm, n, seed);
    gather(Xs, ys, X, y, d, perm, 0, n);
    rc = aellm_surrogate_new(&s, p);
    if (!rc)
        rc = source ? aellm_surrogate_fit_transfer(s, source, Xs, n_train, d, ys, 0)
                    : aellm_surrogate_fit(s, Xs, n_train, d, ys);
    if (!rc) rc = aellm_surrogate_predict(s, Xs + n_train * d, n_test, d, pred, NULL);
    if (!rc) *out = aellm_surrogate_r2(pred, ys + n_train, n_test);
done:
    aellm_surrogate_free(s);
    free(perm);
    free(Xs);
    free(ys);
    free(pred);
    return rc;
}

size_t aellm_surrogate_row_width(const aellm_feature_spec *schema, size_t n_fields)
{
    size_t w = 0;
    for (size_t i = 0; i < n_fields; i++)
        w += schema[i].kind == AELLM_FEATURE_CAT && schema[i].n_options > 0
                 ? (size_t)schema[i].n_options
                 : 1;
    return w;
}

static int encode_cat(float *out, const aellm_feature_spec *f, size_t field, double v)
{
    if (f->n_options < 1)
        return aellm_error_set(AELLM_EINVAL, "feature %zu: categorical with %d options", field,
                               f->n_options);
    if (isnan(v)) {
        for (int c = 0; c < f->n_options; c++) out[c] = NAN;
        return 0;
    }
    if (!(v >= 0 && v < f->n_options) || v != floor(v))
        return aellm_error_set(AELLM_EINVAL, "feature %zu: option %g not an index in [0, %d)",
                               field, v, f->n_options);
    for (int c = 0; c < f->n_options; c++) out[c] = c == (int)v ? 1.0f : 0.0f;
    return 0;
}

int aellm_surrogate_encode_row(float *out, const aellm_feature_spec *schema, size_t n_fields,
                               const double *values)
{
    float *at = out;
    for (size_t i = 0; i < n_fields; i++) {
        const aellm_feature_spec *f = &schema[i];
        double v = values[i];
        if (isinf(v)) return aellm_error_set(AELLM_EINVAL, "feature %zu: infinite value", i);
        switch (f->kind) {
        case AELLM_FEATURE_REAL:
        case AELLM_FEATURE_INT:
            *at++ = (float)v;
            break;
        case AELLM_FEATURE_CAT: {
            int rc = encode_cat(at, f, i, v);
            if (rc) return rc;
            at += f->n_options;
            break;
        }
        default:
            return aellm_error_set(AELLM_EINVAL, "feature %zu: unknown kind %d", i, (int)f->kind);
        }
    }
    return 0;
}
