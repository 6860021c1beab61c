/* Surrogate tests: a known function of mixed features learnt to a held-out R²,
 * ensemble spread larger where data is scarce, batched prediction equal to
 * row-by-row, save/load and continued training, transfer beating training
 * from scratch on a few target rows, determinism, and refused inputs.
 * Measured values are printed so that the thresholds can be judged. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "aellm/surrogate.h"
#include "core/rng.h"

#include "test_tmpdir.h"

/* ---- the synthetic task ---- */

/* x1, x2 real in [0, 1], k integer 0..7, c categorical of 4 options. */
static const aellm_feature_spec schema[] = {
    {AELLM_FEATURE_REAL, 0},
    {AELLM_FEATURE_REAL, 0},
    {AELLM_FEATURE_INT, 0},
    {AELLM_FEATURE_CAT, 4},
};
#define NFIELD 4
#define D      7 /* x1, x2, k, one-hot c */

static const double c_effect[4] = {0.0, 0.5, -0.3, 1.0};

static double f_true(const double *v)
{
    return sin(2 * M_PI * v[0]) * (1 + c_effect[(int)v[3]]) + 0.5 * v[1] * v[1] + 0.1 * v[2];
}

/* The related target task of the transfer test: f scaled and shifted, plus a
 * small term f does not have. */
static double g_true(const double *v)
{
    return 1.2 * f_true(v) + 0.3 + 0.2 * v[1] * v[2] / 7.0;
}

typedef struct {
    float X[600 * D]; /* (n, D) */
    float y[600];
    size_t n;
} dataset;

/* n rows, x1 drawn from [lo, hi) (the rest of [0, 1) when gap), noise σ. */
static void make_rows(dataset *ds, size_t n, uint64_t seed, double (*fn)(const double *), double lo,
                      double hi, float noise)
{
    aellm_rng r;
    aellm_rng_seed(&r, seed);
    ds->n = n;
    for (size_t i = 0; i < n; i++) {
        double v[NFIELD] = {lo + (hi - lo) * aellm_rng_f32(&r), aellm_rng_f32(&r),
                            (double)(aellm_rng_u64(&r) % 8), (double)(aellm_rng_u64(&r) % 4)};
        assert_int_equal(aellm_surrogate_encode_row(ds->X + i * D, schema, NFIELD, v), 0);
        ds->y[i] = (float)(fn(v) + noise * aellm_rng_normal(&r));
    }
}

/* One XGBoost thread, the default (see the header); the determinism test
 * also runs with two. */
static void params_small(aellm_surrogate_params *p, int rounds)
{
    aellm_surrogate_params_default(p);
    p->num_rounds = rounds;
    p->nthread = 1;
    p->seed = 42;
}

static void assert_params_equal(const aellm_surrogate_params *a, const aellm_surrogate_params *b)
{
    assert_int_equal(a->members, b->members);
    assert_int_equal(a->num_rounds, b->num_rounds);
    assert_int_equal(a->max_depth, b->max_depth);
    assert_true(a->eta == b->eta && a->subsample == b->subsample);
    assert_true(a->colsample_bytree == b->colsample_bytree &&
                a->min_child_weight == b->min_child_weight);
    assert_true(a->lambda == b->lambda && a->seed == b->seed);
    assert_int_equal(a->nthread, b->nthread);
    assert_int_equal(a->bootstrap, b->bootstrap);
    assert_int_equal(a->transfer_rounds, b->transfer_rounds);
    assert_string_equal(a->objective, b->objective);
    assert_string_equal(a->tree_method, b->tree_method);
}

static double rmse(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

/* Naive R² for comparing with the library's. */
static double r2_ref(const float *p, const float *t, size_t n)
{
    double m = 0, res = 0, tot = 0;
    for (size_t i = 0; i < n; i++) m += t[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        res += (t[i] - (double)p[i]) * (t[i] - (double)p[i]);
        tot += (t[i] - m) * (t[i] - m);
    }
    return 1 - res / tot;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float median(float *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

static dataset train, test, extra;

/* ---- 1. a known function of mixed features ---- */

static void encode_mixed_row(void **state)
{
    (void)state;
    float row[D];
    double v[NFIELD] = {0.25, 0.5, 3, 2};
    assert_int_equal(aellm_surrogate_encode_row(row, schema, NFIELD, v), 0);
    const float want[D] = {0.25f, 0.5f, 3.0f, 0, 0, 1, 0};
    assert_memory_equal(row, want, sizeof(want));
    assert_int_equal(aellm_surrogate_row_width(schema, NFIELD), D);
    double missing[NFIELD] = {NAN, 0.5, 3, NAN};
    assert_int_equal(aellm_surrogate_encode_row(row, schema, NFIELD, missing), 0);
    assert_true(isnan(row[0]) && isnan(row[3]) && isnan(row[6]) && row[1] == 0.5f);
    double bad[NFIELD] = {0.25, 0.5, 3, 4};
    assert_int_equal(aellm_surrogate_encode_row(row, schema, NFIELD, bad), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "feature 3"));
    bad[3] = 1.5;
    assert_int_equal(aellm_surrogate_encode_row(row, schema, NFIELD, bad), AELLM_EINVAL);
}

static void r2_matches_reference(void **state)
{
    (void)state;
    float t[50], p[50];
    aellm_rng r;
    aellm_rng_seed(&r, 3);
    for (int i = 0; i < 50; i++) {
        t[i] = aellm_rng_normal(&r);
        p[i] = t[i] + 0.3f * aellm_rng_normal(&r);
    }
    assert_float_equal(aellm_surrogate_r2(p, t, 50), r2_ref(p, t, 50), 1e-12);
    assert_float_equal(aellm_surrogate_r2(t, t, 50), 1.0, 0);
    float c[3] = {1, 1, 1};
    assert_true(isnan(aellm_surrogate_r2(p, c, 3)));
}

/* Default trees (500 × depth 8, 5 members): the threshold is about the
 * settings the search uses. Noise σ = 0.05 on a signal of σ ≈ 0.9 caps R²
 * near 0.997. Measured 0.963 (and 0.940 for the held-out routine on a
 * different 60/40 split); thresholds 0.93 and 0.9. */
static void learns_mixed_function(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 500);
    aellm_surrogate *s = NULL;
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    assert_int_equal(aellm_surrogate_fit(s, train.X, 300, D, train.y), 0);
    float mean[200], var[200];
    assert_int_equal(aellm_surrogate_predict(s, test.X, 200, D, mean, var), 0);
    double r2 = aellm_surrogate_r2(mean, test.y, 200);
    print_message("held-out R2 (300 train, 200 test, 500 trees): %.4f\n", r2);
    assert_true(r2 > 0.93);
    aellm_surrogate_free(s);

    /* The held-out routine on the same 500 rows: 40 % held out. */
    dataset *all = malloc(sizeof(*all));
    memcpy(all->X, train.X, 300 * D * sizeof(float));
    memcpy(all->X + 300 * D, test.X, 200 * D * sizeof(float));
    memcpy(all->y, train.y, 300 * sizeof(float));
    memcpy(all->y + 300, test.y, 200 * sizeof(float));
    double hr2 = 0;
    assert_int_equal(aellm_surrogate_holdout_r2(&hr2, &p, all->X, 500, D, all->y, 0.4, 9), 0);
    print_message("holdout_r2 (frac 0.4): %.4f\n", hr2);
    assert_true(hr2 > 0.9);
    free(all);
}

/* The same function in the units of a latency (4 ms + 10 us x f): the
 * model does as well as on f itself. Without scaling the targets XGBoost
 * drops every split (loss reduction under its 1e-6 floor) and predicts a
 * constant: held-out R2 0.00 here before the fix. */
static void learns_at_any_scale(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 300);
    static float tiny[300];
    for (int i = 0; i < 300; i++) tiny[i] = 0.004f + 1e-5f * train.y[i];
    double r2_f = 0, r2_tiny = 0;
    assert_int_equal(aellm_surrogate_holdout_r2(&r2_f, &p, train.X, 300, D, train.y, 0.3, 5), 0);
    assert_int_equal(aellm_surrogate_holdout_r2(&r2_tiny, &p, train.X, 300, D, tiny, 0.3, 5), 0);
    print_message("held-out R2: %.4f on f, %.4f on 0.004 + 1e-5 f\n", r2_f, r2_tiny);
    assert_true(r2_tiny > 0.9);
    assert_true(fabs(r2_tiny - r2_f) < 0.02);
}

/* On 20 rows the trees still split (min_child_weight 1): predictions vary
 * and follow the training targets. 100 trees suffice to show it. */
static void splits_on_twenty_rows(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 100);
    aellm_surrogate *s = NULL;
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    assert_int_equal(aellm_surrogate_fit(s, train.X, 20, D, train.y), 0);
    float mean[20];
    assert_int_equal(aellm_surrogate_predict(s, train.X, 20, D, mean, NULL), 0);
    float lo = mean[0], hi = mean[0];
    for (int i = 1; i < 20; i++) lo = fminf(lo, mean[i]), hi = fmaxf(hi, mean[i]);
    double r2 = aellm_surrogate_r2(mean, train.y, 20);
    print_message("20 rows: prediction range %.3f, train R2 %.3f\n", hi - lo, r2);
    assert_true(hi - lo > 0.5f);
    assert_true(r2 > 0.5);
    aellm_surrogate_free(s);
}

/* ---- 2. ensemble variance where data is scarce ---- */

/* 280 training rows with x1 in [0, 0.5), 20 with x1 in [0.5, 1): the
 * members' bootstraps differ most where rows are few, so their spread at
 * fresh points there is larger than among the dense rows. Measured ratio of
 * median variances 5.5-10.9 over six data/ensemble seeds; asserted > 3 on
 * one. (Across an EMPTY gap the ratio is weaker and erratic, 0.8-9: hist
 * trees put the step at the same cut in every member.) 200 trees. */
static void variance_larger_where_data_is_scarce(void **state)
{
    (void)state;
    dataset *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    make_rows(a, 280, 11, f_true, 0.0, 0.5, 0.05f);
    make_rows(b, 20, 12, f_true, 0.5, 1.0, 0.05f);
    memcpy(a->X + 280 * D, b->X, 20 * D * sizeof(float));
    memcpy(a->y + 280, b->y, 20 * sizeof(float));
    aellm_surrogate_params p;
    params_small(&p, 200);
    aellm_surrogate *s = NULL;
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    assert_int_equal(aellm_surrogate_fit(s, a->X, 300, D, a->y), 0);

    float mean[100], var_sparse[100], var_dense[100];
    make_rows(b, 100, 13, f_true, 0.5, 1.0, 0);
    assert_int_equal(aellm_surrogate_predict(s, b->X, 100, D, mean, var_sparse), 0);
    make_rows(b, 100, 14, f_true, 0.0, 0.5, 0);
    assert_int_equal(aellm_surrogate_predict(s, b->X, 100, D, mean, var_dense), 0);
    float ms = median(var_sparse, 100), md = median(var_dense, 100);
    print_message("median variance: sparse %.5f, dense %.5f, ratio %.1f\n", ms, md, ms / md);
    assert_true(ms > 3 * md);
    aellm_surrogate_free(s);
    free(a);
    free(b);
}

/* ---- 3. batched prediction ---- */

/* 100 trees: the property is about the call, not the fit. */
static void batch_equals_rows(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 100);
    aellm_surrogate *s = NULL;
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    assert_int_equal(aellm_surrogate_fit(s, train.X, 300, D, train.y), 0);
    float mean[200], var[200], m1, v1;
    assert_int_equal(aellm_surrogate_predict(s, test.X, 200, D, mean, var), 0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(aellm_surrogate_predict(s, test.X + i * D, 1, D, &m1, &v1), 0);
        assert_true(m1 == mean[i] && v1 == var[i]);
    }
    /* Two calls with different inputs: each output is its own (the booster's
     * buffer is reused between calls, ours are not). */
    float ma[100], mb[100], ma2[100];
    assert_int_equal(aellm_surrogate_predict(s, test.X, 100, D, ma, NULL), 0);
    assert_int_equal(aellm_surrogate_predict(s, test.X + 100 * D, 100, D, mb, NULL), 0);
    assert_memory_equal(ma, mean, sizeof(ma));
    assert_memory_equal(mb, mean + 100, sizeof(mb));
    assert_int_equal(aellm_surrogate_predict(s, test.X, 100, D, ma2, NULL), 0);
    assert_memory_equal(ma2, ma, sizeof(ma));
    assert_true(memcmp(ma, mb, sizeof(ma)) != 0);
    aellm_surrogate_free(s);
}

/* ---- 4. save, load, continue ---- */

static void save_load_continue(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 100);
    p.eta = 0.1;
    p.max_depth = 5;                /* not the defaults: loading must bring them back */
    p.seed = 0xfedcba9876543210ull; /* above 2^53 */
    aellm_surrogate *s = NULL, *l = NULL, *lf = NULL;
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    assert_int_equal(aellm_surrogate_fit(s, train.X, 300, D, train.y), 0);
    float m0[200], v0[200], m1[200], v1[200];
    assert_int_equal(aellm_surrogate_predict(s, test.X, 200, D, m0, v0), 0);

    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(aellm_surrogate_save_buffer(s, &buf, &len), 0);
    assert_int_equal(aellm_surrogate_load_buffer(&l, buf, len, NULL), 0);
    assert_int_equal(aellm_surrogate_predict(l, test.X, 200, D, m1, v1), 0);
    assert_memory_equal(m0, m1, sizeof(m0));
    assert_memory_equal(v0, v1, sizeof(v0));
    assert_params_equal(aellm_surrogate_get_params(l), &p);
    assert_int_equal(aellm_surrogate_save(s, tmp_path("s.surrogate")), 0);
    assert_int_equal(aellm_surrogate_load(&lf, tmp_path("s.surrogate"), NULL), 0);
    assert_int_equal(aellm_surrogate_predict(lf, test.X, 200, D, m1, v1), 0);
    assert_memory_equal(m0, m1, sizeof(m0));

    /* Continue both the original and the loaded copy on new rows: identical
     * results show the loaded boosters got the same training parameters
     * (XGBoost's defaults would be depth 6, eta 0.3, no subsampling). */
    assert_int_equal(aellm_surrogate_update(s, extra.X, 100, D, extra.y, 30), 0);
    assert_int_equal(aellm_surrogate_update(l, extra.X, 100, D, extra.y, 30), 0);
    assert_int_equal(aellm_surrogate_predict(s, test.X, 200, D, m0, NULL), 0);
    assert_int_equal(aellm_surrogate_predict(l, test.X, 200, D, m1, NULL), 0);
    assert_memory_equal(m0, m1, sizeof(m0));
    /* ... and it moved the model towards the new rows (extra has a shift). */
    float before[100], after[100];
    assert_int_equal(aellm_surrogate_predict(lf, extra.X, 100, D, before, NULL), 0);
    assert_int_equal(aellm_surrogate_predict(l, extra.X, 100, D, after, NULL), 0);
    double rb = rmse(before, extra.y, 100), ra = rmse(after, extra.y, 100);
    print_message("continued training on shifted rows: RMSE %.3f -> %.3f\n", rb, ra);
    assert_true(ra < 0.5 * rb);

    free(buf);
    aellm_surrogate_free(s);
    aellm_surrogate_free(l);
    aellm_surrogate_free(lf);
}

/* ---- 5. transfer ---- */

/* Source: f on 400 rows (500 trees). Target: g on 20 rows; error measured on
 * 300 fresh rows of g. Transfer: the source's members plus 100 rounds on the
 * target rows. Scratch: 500 rounds on the same target rows. */
static void transfer_beats_scratch(void **state)
{
    (void)state;
    dataset *src = malloc(sizeof(*src)), *tgt = malloc(sizeof(*tgt)), *gt = malloc(sizeof(*gt));
    make_rows(src, 400, 21, f_true, 0, 1, 0.05f);
    make_rows(gt, 300, 22, g_true, 0, 1, 0);
    aellm_surrogate_params p;
    params_small(&p, 500);
    aellm_surrogate *source = NULL;
    assert_int_equal(aellm_surrogate_new(&source, &p), 0);
    assert_int_equal(aellm_surrogate_fit(source, src->X, 400, D, src->y), 0);

    float pred[300];
    double sum_t = 0, sum_s = 0;
    const int seeds = 3;
    for (int i = 0; i < seeds; i++) {
        make_rows(tgt, 20, 100 + (uint64_t)i, g_true, 0, 1, 0.05f);
        aellm_surrogate *t = NULL, *sc = NULL;
        p.seed = 1000 + (uint64_t)i;
        assert_int_equal(aellm_surrogate_new(&t, &p), 0);
        assert_int_equal(aellm_surrogate_fit_transfer(t, source, tgt->X, 20, D, tgt->y, 0), 0);
        assert_int_equal(aellm_surrogate_predict(t, gt->X, 300, D, pred, NULL), 0);
        double et = rmse(pred, gt->y, 300);
        assert_int_equal(aellm_surrogate_new(&sc, &p), 0);
        assert_int_equal(aellm_surrogate_fit(sc, tgt->X, 20, D, tgt->y), 0);
        assert_int_equal(aellm_surrogate_predict(sc, gt->X, 300, D, pred, NULL), 0);
        double es = rmse(pred, gt->y, 300);
        print_message("transfer seed %d: RMSE transfer %.3f, scratch %.3f\n", i, et, es);
        sum_t += et;
        sum_s += es;
        aellm_surrogate_free(t);
        aellm_surrogate_free(sc);
    }
    /* The source as it is, without target rows, for scale. */
    assert_int_equal(aellm_surrogate_predict(source, gt->X, 300, D, pred, NULL), 0);
    print_message("mean RMSE on g: transfer %.3f, scratch %.3f (source alone %.3f)\n",
                  sum_t / seeds, sum_s / seeds, rmse(pred, gt->y, 300));
    assert_true(sum_t < 0.7 * sum_s);

    /* The held-out R2 of a transferred surrogate, on 40 target rows: the
       warm start shows there too. */
    make_rows(tgt, 40, 200, g_true, 0, 1, 0.05f);
    double r2_t = 0, r2_s = 0;
    assert_int_equal(
        aellm_surrogate_holdout_r2_transfer(&r2_t, &p, source, tgt->X, 40, D, tgt->y, 0.25, 3), 0);
    assert_int_equal(aellm_surrogate_holdout_r2(&r2_s, &p, tgt->X, 40, D, tgt->y, 0.25, 3), 0);
    print_message("held-out R2 on 40 target rows: transfer %.3f, scratch %.3f\n", r2_t, r2_s);
    assert_true(r2_t > r2_s);
    aellm_surrogate_free(source);
    free(src);
    free(tgt);
    free(gt);
}

/* ---- determinism ---- */

/* Same seed and data: identical predictions, bit for bit; another seed:
 * different members. 50 trees. */
static void deterministic(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 50);
    float m[3][200], v[3][200];
    for (int run = 0; run < 3; run++) {
        aellm_surrogate *s = NULL;
        p.seed = run == 2 ? 43 : 42;
        assert_int_equal(aellm_surrogate_new(&s, &p), 0);
        assert_int_equal(aellm_surrogate_fit(s, train.X, 300, D, train.y), 0);
        assert_int_equal(aellm_surrogate_predict(s, test.X, 200, D, m[run], v[run]), 0);
        aellm_surrogate_free(s);
    }
    assert_memory_equal(m[0], m[1], sizeof(m[0]));
    assert_memory_equal(v[0], v[1], sizeof(v[0]));
    assert_true(memcmp(m[0], m[2], sizeof(m[0])) != 0);
    int spread = 0; /* members differ: the variance is not zero */
    for (int i = 0; i < 200; i++) spread += v[0][i] > 0;
    assert_true(spread > 190);
}

/* The same with two XGBoost threads, kept tiny (60 rows, 2 members, 5 trees
 * of depth 4): XGBoost's OpenMP barriers crawl when other work shares the
 * cores (8 s for 40 trees of depth 8 on a loaded machine). One thread
 * against two is printed, not asserted (histogram sums may be reduced in
 * another order). */
static void deterministic_two_threads(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 5);
    p.members = 2;
    p.max_depth = 4;
    float m[3][200];
    for (int run = 0; run < 3; run++) {
        aellm_surrogate *s = NULL;
        p.nthread = run == 2 ? 1 : 2;
        assert_int_equal(aellm_surrogate_new(&s, &p), 0);
        assert_int_equal(aellm_surrogate_fit(s, train.X, 60, D, train.y), 0);
        assert_int_equal(aellm_surrogate_predict(s, test.X, 200, D, m[run], NULL), 0);
        aellm_surrogate_free(s);
    }
    assert_memory_equal(m[0], m[1], sizeof(m[0]));
    print_message("nthread 1 vs 2: %s\n",
                  memcmp(m[0], m[2], sizeof(m[0])) ? "differ" : "identical");
}

/* ---- 6. refused inputs ---- */

static void bad_inputs(void **state)
{
    (void)state;
    aellm_surrogate_params p;
    params_small(&p, 10);
    aellm_surrogate *s = NULL;
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    float mean[4], y[20];
    assert_int_equal(aellm_surrogate_predict(s, test.X, 4, D, mean, NULL), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "before training"));
    assert_int_equal(aellm_surrogate_fit(s, train.X, 0, D, train.y), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "n = 0"));
    memcpy(y, train.y, sizeof(y));
    y[7] = NAN;
    assert_int_equal(aellm_surrogate_fit(s, train.X, 20, D, y), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "row 7"));
    assert_int_equal(aellm_surrogate_fit(s, train.X, 20, D, train.y), 0);
    assert_int_equal(aellm_surrogate_predict(s, test.X, 4, D - 1, mean, NULL), AELLM_ESHAPE);
    assert_non_null(strstr(aellm_error_last(), "6 features"));
    assert_int_equal(aellm_surrogate_update(s, train.X, 20, D + 1, train.y, 5), AELLM_ESHAPE);
    aellm_surrogate *t = NULL;
    assert_int_equal(aellm_surrogate_new(&t, &p), 0);
    assert_int_equal(aellm_surrogate_fit_transfer(t, s, train.X, 20, D - 2, train.y, 5),
                     AELLM_ESHAPE);
    assert_int_equal(aellm_surrogate_num_members(t), 0);
    aellm_surrogate_free(t);

    /* A failed fit keeps the model it had. */
    assert_int_equal(aellm_surrogate_fit(s, train.X, 20, D, y), AELLM_EINVAL);
    assert_int_equal(aellm_surrogate_predict(s, test.X, 4, D, mean, NULL), 0);

    double r2;
    assert_int_equal(aellm_surrogate_holdout_r2(&r2, &p, train.X, 20, D, train.y, 1.0, 1),
                     AELLM_EINVAL);
    assert_int_equal(aellm_surrogate_holdout_r2(&r2, &p, train.X, 3, D, train.y, 0.5, 1),
                     AELLM_EINVAL);

    p.eta = 0;
    assert_int_equal(aellm_surrogate_new(&t, &p), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "eta"));
    assert_null(t);

    /* Damaged files: wrong magic, truncated, a member that is not a model. */
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(aellm_surrogate_save_buffer(s, &buf, &len), 0);
    assert_int_equal(aellm_surrogate_load_buffer(&t, "nonsense-nonsense", 17, NULL), AELLM_EFORMAT);
    assert_int_equal(aellm_surrogate_load_buffer(&t, buf, len - 10, NULL), AELLM_EFORMAT);
    unsigned char *bad = buf;
    uint32_t hlen = bad[8] | bad[9] << 8 | bad[10] << 16 | (uint32_t)bad[11] << 24;
    memset(bad + 12 + hlen + 8, 'x', 16); /* inside the first member's model */
    assert_int_equal(aellm_surrogate_load_buffer(&t, buf, len, NULL), AELLM_EFORMAT);
    /* refused before XGBoost parses it (its reader overruns on damaged lengths) */
    assert_non_null(strstr(aellm_error_last(), "members are damaged"));
    print_message("damaged member: %s\n", aellm_error_last());
    assert_null(t);
    assert_int_equal(aellm_surrogate_load(&t, tmp_path("absent"), NULL), AELLM_ENOTFOUND);
    free(buf);
    aellm_surrogate_free(s);
    aellm_surrogate_free(NULL);
}

static int data_setup(void **state)
{
    make_rows(&train, 300, 1, f_true, 0, 1, 0.05f);
    make_rows(&test, 200, 2, f_true, 0, 1, 0);
    /* Rows of f shifted by 0.5: continued training must follow them. */
    make_rows(&extra, 100, 3, f_true, 0, 1, 0.05f);
    for (size_t i = 0; i < extra.n; i++) extra.y[i] += 0.5f;
    return tmpdir_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_mixed_row),
        cmocka_unit_test(r2_matches_reference),
        cmocka_unit_test(learns_mixed_function),
        cmocka_unit_test(learns_at_any_scale),
        cmocka_unit_test(splits_on_twenty_rows),
        cmocka_unit_test(variance_larger_where_data_is_scarce),
        cmocka_unit_test(batch_equals_rows),
        cmocka_unit_test(save_load_continue),
        cmocka_unit_test(transfer_beats_scratch),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(deterministic_two_threads),
        cmocka_unit_test(bad_inputs),
    };
    return cmocka_run_group_tests_name("surrogate", tests, data_setup, tmpdir_teardown);
}
