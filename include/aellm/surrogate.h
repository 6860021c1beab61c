/* Surrogate models (DESIGN.md §3.2, §3.5): an ensemble of K gradient-boosted
 * tree models (XGBoost) for ONE objective, trained on a dense float feature
 * matrix, giving a mean and a variance per prediction; warm-started transfer
 * from another surrogate; held-out R². Knows nothing of the engine: features
 * are numbers, and encoding a configuration into them is the caller's (with
 * the one-hot helper below). */
#ifndef AELLM_SURROGATE_H
#define AELLM_SURROGATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aellm_surrogate aellm_surrogate;

/* Training settings; aellm_surrogate_params_default fills the defaults shown.
 * Each ensemble member k trains with seed `seed + k` (mixed) and on its own
 * bootstrap of the training rows: n rows drawn WITH replacement (about 63 % of
 * the distinct rows), each row given to XGBoost once with the number of times
 * it was drawn as its weight, so that the members' spread estimates the
 * model's uncertainty. XGBoost's own
 * `subsample` then acts within each member, per tree.
 * nthread defaults to 1: on a few hundred rows XGBoost's per-node OpenMP barriers
 * cost more than they save, and when other work shares the cores they
 * collapse (measured here, 300 rows × 500 trees × 5 members: 1.3 s with one
 * thread, 48-147 s with two on a loaded 2-core machine). Results are
 * identical for 1 and 2 threads on the tests' data. */
typedef struct {
    int members;             /* K, ensemble size: 5 */
    int num_rounds;          /* trees per member (num_boost_round): 500 */
    int max_depth;           /* 8 */
    double eta;              /* learning rate: 0.05 */
    double subsample;        /* rows per tree: 0.8 */
    double colsample_bytree; /* features per tree: 0.8 */
    double min_child_weight; /* 1: with squared error, one (weighted) row per leaf */
    double lambda;           /* L2 on leaf weights: 1 */
    int nthread;             /* XGBoost threads per booster: 1; 0 = all cores (see above) */
    int bootstrap;           /* 1: bootstrap rows per member as above; 0: all rows */
    uint64_t seed;           /* 0 is a valid seed */
    int transfer_rounds;  /* extra rounds of aellm_surrogate_fit_transfer when 0 is passed: 100 */
    char objective[32];   /* "reg:squarederror" */
    char tree_method[16]; /* "hist" */
} aellm_surrogate_params;

void aellm_surrogate_params_default(aellm_surrogate_params *p);

/* A new, untrained surrogate with a copy of `p` (NULL: defaults). Free with
 * aellm_surrogate_free (accepts NULL). */
int aellm_surrogate_new(aellm_surrogate **out, const aellm_surrogate_params *p);
void aellm_surrogate_free(aellm_surrogate *s);

/* Trains from scratch on X (n × d, row-major; NaN = missing, ±inf refused)
 * and y (n, finite), replacing any earlier model. Each member starts from
 * base_score = the mean of its bootstrap's targets. Borrowed inputs. */
int aellm_surrogate_fit(aellm_surrogate *s, const float *X, size_t n, size_t d, const float *y);

/* Continues training every member for `rounds` more trees on (X, y), each on
 * a fresh bootstrap of these rows; the trees already there are kept. The
 * result depends only on the model, the parameters and the data: the same
 * whether s was just trained or loaded from a file. On failure s is as it
 * was (so too for fit and fit_transfer). */
int aellm_surrogate_update(aellm_surrogate *s, const float *X, size_t n, size_t d, const float *y,
                           int rounds);

/* Transfer (DESIGN.md §3.5): replaces s's model by a copy of `source`'s
 * members (member k from source member k mod K_source), sets s's training
 * parameters on them, and continues each for `extra_rounds` trees (0: the
 * params' transfer_rounds) on the target rows (X, y). d must equal the
 * source's feature count. `source` is not modified. */
int aellm_surrogate_fit_transfer(aellm_surrogate *s, const aellm_surrogate *source, const float *X,
                                 size_t n, size_t d, const float *y, int extra_rounds);

/* Predicts n rows of X (n × d, d = the trained feature count) with one call
 * per member: mean_out[i] is the ensemble mean, var_out[i] the sample
 * variance across members (divided by K-1; 0 when K = 1). var_out may be
 * NULL. Outputs are the caller's arrays of n floats. */
int aellm_surrogate_predict(aellm_surrogate *s, const float *X, size_t n, size_t d, float *mean_out,
                            float *var_out);

size_t aellm_surrogate_num_features(const aellm_surrogate *s); /* 0 until trained */
int aellm_surrogate_num_members(const aellm_surrogate *s);
/* The parameters in use (borrowed, valid while s lives). */
const aellm_surrogate_params *aellm_surrogate_get_params(const aellm_surrogate *s);

/* Serialisation: a small header (magic, version, K, d, the training
 * parameters as JSON) followed by each member as XGBoost UBJSON. The buffer
 * form gives *out (caller frees with free()) and its length. Loading restores
 * the parameters from the header unless `p` is non-NULL, and sets them on
 * every booster (XGBoost's model file does not keep them). */
int aellm_surrogate_save(const aellm_surrogate *s, const char *path);
int aellm_surrogate_save_buffer(const aellm_surrogate *s, void **out, size_t *len);
int aellm_surrogate_load(aellm_surrogate **out, const char *path, const aellm_surrogate_params *p);
int aellm_surrogate_load_buffer(aellm_surrogate **out, const void *buf, size_t len,
                                const aellm_surrogate_params *p);

/* R² = 1 - Σ(t-p)² / Σ(t-mean t)², in double. NaN when n < 2 or the truth is
 * constant (R² undefined). */
double aellm_surrogate_r2(const float *pred, const float *truth, size_t n);

/* Held-out R²: shuffles the rows with `seed`, trains a surrogate with `p`
 * (NULL: defaults) on the first (1 - frac) of them and writes to *out the R²
 * of its mean prediction on the remaining round(frac · n) rows. Needs at
 * least 2 held-out and 2 training rows. */
int aellm_surrogate_holdout_r2(double *out, const aellm_surrogate_params *p, const float *X,
                               size_t n, size_t d, const float *y, double frac, uint64_t seed);
/* The same with the training warm-started from `source`
 * (aellm_surrogate_fit_transfer): the R² of a transferred surrogate. NULL
 * source: as above. */
int aellm_surrogate_holdout_r2_transfer(double *out, const aellm_surrogate_params *p,
                                        const aellm_surrogate *source, const float *X, size_t n,
                                        size_t d, const float *y, double frac, uint64_t seed);

/* ---- feature rows from mixed values ---- */

typedef enum {
    AELLM_FEATURE_REAL = 0, /* one column, the value */
    AELLM_FEATURE_INT = 1,  /* one column, the integer value (ordered) */
    AELLM_FEATURE_CAT = 2,  /* n_options one-hot columns */
} aellm_feature_kind;

typedef struct {
    aellm_feature_kind kind;
    int n_options; /* categoricals only: the number of options (>= 1) */
} aellm_feature_spec;

/* Columns that a row of `n_fields` fields encodes to. */
size_t aellm_surrogate_row_width(const aellm_feature_spec *schema, size_t n_fields);

/* Encodes values[0..n_fields) into out[0..row_width): reals and integers as
 * they are, a categorical's option index c as 1 in column c of its block and
 * 0 elsewhere. NaN stands for "missing" and encodes to NaN (the whole block
 * for a categorical). An option index outside [0, n_options) or a non-integer
 * one is AELLM_EINVAL naming the field. */
int aellm_surrogate_encode_row(float *out, const aellm_feature_spec *schema, size_t n_fields,
                               const double *values);

#ifdef __cplusplus
}
#endif
#endif
