/* Objectives: reading a record, preferences, normalisation and utility,
 * the efficiency score and constraint violations, against values worked
 * out by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "aellm/objectives.h"

static void from_record(void **state)
{
    (void)state;
    const char *ppl =
        "{\"accuracy\": {\"value\": 4.0, \"higher_is_better\": false},"
        "\"latency\": {\"total_s\": {\"median\": 0.5}},"
        "\"memory\": {\"peak_bytes\": 1000}, \"energy\": {\"joules_per_request\": 2}}";
    aellm_objectives o;
    assert_int_equal(aellm_objectives_from_record(ppl, &o), 0);
    assert_true(fabs(o.v[AELLM_OBJ_ACC] - 0.25) < 1e-15); /* 1 / perplexity */
    assert_true(o.v[AELLM_OBJ_LAT] == 0.5 && o.v[AELLM_OBJ_MEM] == 1000);
    assert_true(o.v[AELLM_OBJ_ENERGY] == 2 && o.power_w == 4);
    double m[AELLM_OBJ_ALL];
    aellm_objectives_minimized(&o, m, AELLM_OBJ_COUNT);
    assert_true(m[0] == -0.25 && m[1] == 0.5);
    assert_true(o.v[AELLM_OBJ_TUNE] == 0); /* no stage ran */
    /* the cost of making the model: every stage report's wall_s, summed */
    const char *tuned =
        "{\"accuracy\": {\"value\": 4.0, \"higher_is_better\": false},"
        "\"latency\": {\"total_s\": {\"median\": 0.5}},"
        "\"memory\": {\"peak_bytes\": 1000}, \"energy\": {\"joules_per_request\": 2},"
        "\"architecture\": {\"wall_s\": 3.5}, \"finetuning\": {\"wall_s\": 10, \"steps\": 6}}";
    assert_int_equal(aellm_objectives_from_record(tuned, &o), 0);
    assert_true(o.v[AELLM_OBJ_TUNE] == 13.5);
    aellm_objectives_minimized(&o, m, AELLM_OBJ_ALL);
    assert_true(m[AELLM_OBJ_TUNE] == 13.5 && m[AELLM_OBJ_ACC] == -0.25);
    /* a paired record: latency and energy from its paired sections */
    const char *paired =
        "{\"accuracy\": {\"value\": 0.5, \"higher_is_better\": true},"
        "\"latency\": {\"total_s\": {\"median\": 0.5}, \"paired\": {\"total_s\": 0.4}},"
        "\"memory\": {\"peak_bytes\": 1000}, \"energy\": {\"joules_per_request\": 2,"
        "\"paired\": {\"joules_per_request\": 1.6}}}";
    assert_int_equal(aellm_objectives_from_record(paired, &o), 0);
    assert_true(o.v[AELLM_OBJ_ACC] == 0.5 && o.v[AELLM_OBJ_LAT] == 0.4);
    assert_true(o.v[AELLM_OBJ_ENERGY] == 1.6 && fabs(o.power_w - 4) < 1e-12);
    assert_true(aellm_objectives_from_record("{\"accuracy\": {}}", &o) < 0);
    assert_non_null(strstr(aellm_error_last(), "accuracy.value"));
}

static void weights(void **state)
{
    (void)state;
    double w[AELLM_OBJ_ALL];
    assert_int_equal(aellm_weights_parse(w, NULL), 0);
    assert_true(w[0] == 1 && w[1] == 1 && w[2] == 1 && w[3] == 1 && w[AELLM_OBJ_TUNE] == 0);
    assert_int_equal(aellm_weights_parse(w, "acc=2,energy=0.5"), 0);
    assert_true(w[0] == 2 && w[1] == 0 && w[2] == 0 && w[3] == 0.5 && w[AELLM_OBJ_TUNE] == 0);
    assert_int_equal(aellm_weights_parse(w, "acc=1,tune=0.25"), 0);
    assert_true(w[0] == 1 && w[AELLM_OBJ_TUNE] == 0.25);
    const char *bad[] = {"acc", "speed=1", "lat=-1", "lat=x", "mem=1e999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_true(aellm_weights_parse(w, bad[i]) < 0);
        assert_non_null(strstr(aellm_error_last(), "weights"));
    }
}

static void utility_and_efficiency(void **state)
{
    (void)state;
    aellm_objectives p[3] = {
        {{0.20, 1.0, 100, 10}, 0},
        {{0.30, 3.0, 50, 20}, 0},
        {{0.25, 2.0, 75, 30}, 0},
    };
    double lo[AELLM_OBJ_ALL], hi[AELLM_OBJ_ALL];
    aellm_objectives_range(p, 3, lo, hi);
    assert_true(lo[0] == 0.20 && hi[0] == 0.30 && lo[1] == 1 && hi[1] == 3);
    double w[AELLM_OBJ_ALL] = {1, 1, 1, 1, 0};
    /* p[2]: n(acc)=0.5, n(lat)=0.5, n(mem)=0.5, n(en)=1 -> 0.5-0.5-0.5-1 */
    assert_true(fabs(aellm_utility(&p[2], w, lo, hi) - (-1.5)) < 1e-12);
    double w2[AELLM_OBJ_ALL] = {2, 0, 1, 0, 0};
    /* p[1]: 2*1 - 1*0 = 2 */
    assert_true(fabs(aellm_utility(&p[1], w2, lo, hi) - 2.0) < 1e-12);
    /* tune weighed: p[1] took 40 s to make, p[0] none, p[2] 10: n(tune) = 1 */
    p[1].v[AELLM_OBJ_TUNE] = 40, p[2].v[AELLM_OBJ_TUNE] = 10;
    aellm_objectives_range(p, 3, lo, hi);
    assert_true(lo[AELLM_OBJ_TUNE] == 0 && hi[AELLM_OBJ_TUNE] == 40);
    w2[AELLM_OBJ_TUNE] = 0.5;
    assert_true(fabs(aellm_utility(&p[1], w2, lo, hi) - 1.5) < 1e-12);
    assert_true(fabs(aellm_utility(&p[2], w2, lo, hi) - (1.0 - 0.5 - 0.125)) < 1e-12);
    /* efficiency of p[1] against p[0]: (1/3 * 100/50 * 10/20)^(1/3) * min(1, 1.5) */
    double e = aellm_efficiency_score(&p[1], &p[0]);
    assert_true(fabs(e - cbrt(1.0 / 3.0)) < 1e-12);
    /* p[0] against p[1]: (3 * 0.5 * 2)^(1/3) * (0.2 / 0.3) */
    e = aellm_efficiency_score(&p[0], &p[1]);
    assert_true(fabs(e - cbrt(3.0) * (0.2 / 0.3)) < 1e-12);
    assert_true(fabs(aellm_efficiency_score(&p[0], &p[0]) - 1) < 1e-12);
    assert_non_null(strstr(aellm_efficiency_definition(), "min(1, acc/acc0)"));
}

static void constraints(void **state)
{
    (void)state;
    aellm_objectives o = {{0.3, 2.0, 150, 10}, 5.0};
    assert_true(aellm_constraint_violation(&o, 0, 0) == 0);
    assert_true(aellm_constraint_violation(&o, 200, 10) == 0);
    assert_true(fabs(aellm_constraint_violation(&o, 100, 0) - 0.5) < 1e-12);
    assert_true(fabs(aellm_constraint_violation(&o, 100, 4) - 0.75) < 1e-12);
    /* the accuracy floor: (0.4 - 0.3) / 0.4 below it, nothing at or above it */
    assert_true(fabs(aellm_violation_with_floor(&o, 0, 0, 0.4) - 0.25) < 1e-12);
    assert_true(aellm_violation_with_floor(&o, 0, 0, 0.3) == 0);
    assert_true(aellm_violation_with_floor(&o, 200, 10, 0) == 0);
    assert_true(fabs(aellm_violation_with_floor(&o, 100, 4, 0.4) - 1.0) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(from_record),
        cmocka_unit_test(weights),
        cmocka_unit_test(utility_and_efficiency),
        cmocka_unit_test(constraints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
