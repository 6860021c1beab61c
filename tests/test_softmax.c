/* Softmax kernels (src/kernels/softmax.h), every path this CPU runs, against
 * double-precision references: the polynomial exp against libm within 4 ulp
 * and exactly 0 for -inf; max, exp-sum, softmax and its gradient for lengths
 * that exercise full vectors and tails. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/softmax.h"

static const aellm_softmax_kernels *paths[AELLM_ISA_COUNT] = {
    &aellm_softmax_scalar, &aellm_softmax_avx2, &aellm_softmax_avx512};

static void random_row(float *x, int n, unsigned seed, float lo, float hi)
{
    srand(seed);
    for (int i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rand() / (float)RAND_MAX;
}

static void exp_within_ulps(void **state)
{
    (void)state;
    enum { N = 20000 };
    static float x[N], y[N];
    random_row(x, N, 1, -87.0f, 88.0f);
    x[0] = 0.0f, x[1] = -INFINITY, x[2] = -1000.0f, x[3] = 1e-8f, x[4] = -0.5f * logf(2.0f);
    for (int isa = 0; isa <= (int)aellm_cpu_isa(); isa++) {
        paths[isa]->exp_sum(y, x, N, 0.0f); /* (the sum overflows here: see softmax_rows) */
        for (int i = 0; i < N; i++) {
            double ref = exp((double)x[i]);
            if (x[i] < EXP_LO) {
                assert_true(y[i] == 0.0f);
                continue;
            }
            double ulp = ldexp(1.0, ilogb((float)ref) - 23);
            if (fabs(y[i] - ref) > 4 * ulp)
                fail_msg("%s: exp(%.9g) = %.9g, want %.9g", aellm_isa_name((aellm_isa)isa),
                         (double)x[i], (double)y[i], ref);
        }
        assert_true(isnan(paths[isa]->exp_sum(y, (float[]){NAN}, 1, 0.0f)));
    }
    assert_true(aellm_kernel_expf_ref(-INFINITY) == 0.0f);
}

static void softmax_rows(void **state)
{
    (void)state;
    static const int lengths[] = {1, 7, 8, 16, 17, 33, 255, 512};
    float x[512], p[512], dp[512], g[512];
    double ref[512];
    for (int isa = 0; isa <= (int)aellm_cpu_isa(); isa++) {
        const aellm_softmax_kernels *k = paths[isa];
        for (size_t li = 0; li < sizeof(lengths) / sizeof(lengths[0]); li++) {
            int n = lengths[li];
            random_row(x, n, 7 + (unsigned)n, -12.0f, 9.0f);
            double mx = x[0], sum = 0.0;
            for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
            assert_true(k->max(x, n) == (float)mx);
            for (int i = 0; i < n; i++) sum += ref[i] = exp((double)x[i] - mx);
            memcpy(p, x, sizeof(float) * (size_t)n);
            float s = k->exp_sum(p, p, n, k->max(p, n));
            assert_true(fabs(s - sum) <= 1e-6 * sum);
            k->scale(p, n, 1.0f / s);
            for (int i = 0; i < n; i++) assert_true(fabs(p[i] - ref[i] / sum) <= 1e-6);
            /* gradient: scale * p * (dp - <p, dp>) */
            random_row(dp, n, 99 + (unsigned)n, -1.0f, 1.0f);
            memcpy(g, dp, sizeof(float) * (size_t)n);
            k->softmax_grad(g, p, n, 0.25f);
            double dot = 0.0;
            for (int i = 0; i < n; i++) dot += (double)p[i] * dp[i];
            for (int i = 0; i < n; i++)
                assert_true(fabs(g[i] - 0.25 * p[i] * (dp[i] - dot)) <= 1e-6);
        }
    }
    /* the dispatcher's softmax sums to one */
    random_row(x, 100, 3, -5.0f, 5.0f);
    aellm_kernel_softmax(x, 100);
    double total = 0.0;
    for (int i = 0; i < 100; i++) total += x[i];
    assert_true(fabs(total - 1.0) < 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exp_within_ulps),
        cmocka_unit_test(softmax_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
