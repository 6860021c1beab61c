/* AdamW (src/techniques/finetune/adamw.c) against a naive double reference
 * of PyTorch's update written here, with and without weight decay and
 * clipping; the warm-up + cosine schedule at known points; and a quadratic
 * it must minimise. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "aellm/memory.h"
#include "techniques/finetune/adamw.h"

static void test_schedule(void **state)
{
    (void)state;
    train_optim_params p;
    train_optim_params_default(&p);
    p.lr = 1e-3f, p.warmup = 10, p.total_steps = 110, p.lr_min_ratio = 0.1f;
    assert_true(fabsf(train_lr_at(&p, 1) - 1e-4f) < 1e-9f);
    assert_true(fabsf(train_lr_at(&p, 5) - 5e-4f) < 1e-9f);
    assert_true(fabsf(train_lr_at(&p, 10) - 1e-3f) < 1e-9f);
    assert_true(fabsf(train_lr_at(&p, 60) - 5.5e-4f) < 1e-8f); /* half way down the cosine */
    assert_true(fabsf(train_lr_at(&p, 110) - 1e-4f) < 1e-9f);
    assert_true(fabsf(train_lr_at(&p, 500) - 1e-4f) < 1e-9f); /* stays at the floor */
    for (int s = 11; s < 110; s++) assert_true(train_lr_at(&p, s + 1) <= train_lr_at(&p, s));
    p.warmup = 0;
    assert_true(fabsf(train_lr_at(&p, 0) - 1e-3f) < 1e-9f);
}

/* PyTorch's AdamW step in double. */
static void ref_step(double *x, double *m, double *v, const double *g, int n, int t, double lr,
                     double b1, double b2, double eps, double wd)
{
    for (int i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
        x[i] = x[i] * (1 - lr * wd) - lr * mh / (sqrt(vh) + eps);
    }
}

static void run_against_reference(float clip)
{
    enum { N0 = 7, N1 = 5, STEPS = 6 };
    float x0[N0], x1[N1], g0[N0], g1[N1];
    double r0[N0], r1[N1], m0[N0] = {0}, v0[N0] = {0}, m1[N1] = {0}, v1[N1] = {0};
    for (int i = 0; i < N0; i++) r0[i] = x0[i] = (float)(0.3 * i - 1);
    for (int i = 0; i < N1; i++) r1[i] = x1[i] = (float)(0.5 - 0.2 * i);
    train_optim_group groups[2] = {{x0, g0, N0, 1}, {x1, g1, N1, 0}};
    train_optim_params p;
    train_optim_params_default(&p);
    p.lr = 0.01f, p.warmup = 2, p.total_steps = STEPS, p.weight_decay = 0.1f, p.clip = clip;
    train_adamw *o = NULL;
    assert_int_equal(train_adamw_new(&o, groups, 2, &p), 0);
    assert_int_equal(train_adamw_state_floats(o), 2 * (N0 + N1));
    for (int t = 1; t <= STEPS; t++) {
        double d0[N0], d1[N1], ss = 0;
        for (int i = 0; i < N0; i++)
            d0[i] = g0[i] = (float)(sin(t * 1.3 + i) * 3), ss += d0[i] * d0[i];
        for (int i = 0; i < N1; i++)
            d1[i] = g1[i] = (float)(cos(t * 0.7 + i) * 2), ss += d1[i] * d1[i];
        double norm = sqrt(ss), scale = clip > 0 && norm > clip ? clip / norm : 1;
        for (int i = 0; i < N0; i++) d0[i] *= scale;
        for (int i = 0; i < N1; i++) d1[i] *= scale;
        double got_norm;
        float lr;
        train_adamw_step(o, t, &got_norm, &lr);
        assert_true(fabs(got_norm - norm) < 1e-5 * norm);
        ref_step(r0, m0, v0, d0, N0, t, lr, 0.9, 0.999, 1e-8, 0.1);
        ref_step(r1, m1, v1, d1, N1, t, lr, 0.9, 0.999, 1e-8, 0.0);
        for (int i = 0; i < N0; i++) assert_true(fabs(x0[i] - r0[i]) < 2e-6);
        for (int i = 0; i < N1; i++) assert_true(fabs(x1[i] - r1[i]) < 2e-6);
    }
    printf("clip %.1f: %d steps equal the double reference to 2e-6\n", clip, STEPS);
    train_adamw_free(o);
}

static void test_against_reference(void **state)
{
    (void)state;
    run_against_reference(0.0f); /* no clipping */
    run_against_reference(1.0f); /* norms of 5-8: always clipped */
}

static void test_minimises_quadratic(void **state)
{
    (void)state;
    enum { N = 16 };
    float x[N] = {0}, g[N];
    train_optim_group grp = {x, g, N, 0};
    train_optim_params p;
    train_optim_params_default(&p);
    p.lr = 0.1f, p.total_steps = 600, p.lr_min_ratio = 0.01f, p.clip = 0;
    train_adamw *o = NULL;
    aellm_mem_stats before, during;
    aellm_mem_stats_get(&before);
    assert_int_equal(train_adamw_new(&o, &grp, 1, &p), 0);
    aellm_mem_stats_get(&during);
    /* the moments are counted as optimizer memory */
    assert_true(during.current[AELLM_MEM_OPTIMIZER] >=
                before.current[AELLM_MEM_OPTIMIZER] + 2 * N * 4);
    for (int t = 1; t <= 600; t++) {
        for (int i = 0; i < N; i++) g[i] = 2 * (x[i] - (float)(i % 5 - 2));
        train_adamw_step(o, t, NULL, NULL);
    }
    for (int i = 0; i < N; i++) assert_true(fabsf(x[i] - (float)(i % 5 - 2)) < 1e-2f);
    train_adamw_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_minimises_quadratic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
