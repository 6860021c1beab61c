/* dtype table tests: every weight format's reference quantize -> dequantize
 * error against a per-element bound derived from its grid, grid decode
 * against to_float(pack(codes)) bit for bit, partial rows and their zero
 * padding, and the FP8 / NF4 encoders against independent definitions.
 * Kernels are tested in test_kernels.c.
 *
 * Bounds, per element, with p the grid's fit of the element's group (the
 * stored, f16-rounded scale d and minimum m) and x^ the round trip:
 *  - int4 symmetric (q4_0, int4s_*): d/2 inside the grid's range [-8d, 7d];
 *    outside it (only the side opposite the absmax element, which maps to
 *    -8 exactly, can be: +8d is not a code) the clip adds the distance to
 *    the range, up to d/2 more. Plus 8 |d - d_exact|: llama.cpp's q4_0
 *    rounds with the unrounded d and stores the f16 one.
 *  - int4 asymmetric (q4_1, int4a_*): d/2 + |m - min| (f16 rounding of the
 *    minimum) + 15 |d - d_exact| (the top code, f16 rounding of d).
 *  - int8 grids (q8_0, int8_g32): d/2 + 127 |d - d_exact| (clip at +-127).
 *  - nf4: (largest gap between neighbouring codebook values) / 2 * d, plus
 *    |absmax - d| (values past the rounded d clip to +-d).
 *  - fp8_e4m3: relative 2^-4 where |x| / s is normal (>= 2^-6), else
 *    absolute s 2^-10 (half the subnormal step 2^-9).
 *  - int8 (per row): s/2.
 * Each gets 1e-6 |x| + 1e-30 for float rounding. The GGML types' reference
 * quantizers (llama.cpp's rounding, unrounded d) obey the same bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/dtype.h"
#include "core/blocks.h"
#include "core/half.h"
#include "core/rng.h"

static const int grid_types[] = {
    AELLM_DTYPE_Q4_0,       AELLM_DTYPE_Q4_1,       AELLM_DTYPE_Q8_0,      AELLM_DTYPE_INT4S_G32,
    AELLM_DTYPE_INT4S_G64,  AELLM_DTYPE_INT4S_G128, AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_INT4A_G64,
    AELLM_DTYPE_INT4A_G128, AELLM_DTYPE_NF4,        AELLM_DTYPE_FP8_E4M3,  AELLM_DTYPE_INT8,
    AELLM_DTYPE_INT8_G32};
#define NGRID (int)(sizeof(grid_types) / sizeof(grid_types[0]))
static const int64_t lengths[] = {256, 512, 172, 100, 33};
#define NLENGTHS (int)(sizeof(lengths) / sizeof(lengths[0]))

static const aellm_dtype_traits *tr_of(int type)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
    assert_non_null(tr);
    return tr;
}

/* Rows this type can hold: any length for partial types, whole blocks else. */
static int holds(int type, int64_t n)
{
    return tr_of(type)->partial || n % tr_of(type)->block_size == 0;
}

/* Normal data with a few outliers (x20) and an all-zero group. */
static void fill(float *x, int64_t n, aellm_rng *rng)
{
    for (int64_t i = 0; i < n; i++) x[i] = aellm_rng_normal(rng);
    for (int64_t i = 0; i < n; i += 37) x[i] *= 20.0f;
    if (n >= 256)
        for (int64_t i = 128; i < 256; i++) x[i] = 0.0f;
}

static int asym(int type)
{
    return type == AELLM_DTYPE_Q4_1 ||
           (type >= AELLM_DTYPE_INT4A_G32 && type <= AELLM_DTYPE_INT4A_G128);
}

static float nf4_max_gap(void)
{
    float gap = 0.0f;
    for (int k = 0; k + 1 < 16; k++)
        gap = fmaxf(gap, aellm_nf4_codebook[k + 1] - aellm_nf4_codebook[k]);
    return gap;
}

static double dist_to(double x, double a, double b)
{
    double lo = fmin(a, b), hi = fmax(a, b);
    return x < lo ? lo - x : x > hi ? x - hi : 0.0;
}

/* The bound for element x of a group whose real values are xs[0..len). */
static double bound_of(int type, float x, const float *xs, int64_t len, double *unit)
{
    const aellm_dtype_grid *g = tr_of(type)->grid;
    aellm_qparams p;
    g->fit(xs, len, &p);
    double d = fabs(p.scale), amax = 0.0, min = INFINITY, max = -INFINITY;
    for (int64_t j = 0; j < len; j++)
        amax = fmax(amax, fabs(xs[j])), min = fmin(min, xs[j]), max = fmax(max, xs[j]);
    double eps = 1e-6 * fabs(x) + 1e-30;
    *unit = d;
    switch (type) {
    case AELLM_DTYPE_Q4_0:
    case AELLM_DTYPE_INT4S_G32:
    case AELLM_DTYPE_INT4S_G64:
    case AELLM_DTYPE_INT4S_G128:
        return d / 2 + dist_to(x, g->decode(0, &p), g->decode(15, &p)) + 8 * fabs(d - amax / 8) +
               eps;
    case AELLM_DTYPE_Q4_1:
    case AELLM_DTYPE_INT4A_G32:
    case AELLM_DTYPE_INT4A_G64:
    case AELLM_DTYPE_INT4A_G128:
        return d / 2 + fabs(p.min - min) + 15 * fabs(d - (max - min) / 15) + eps;
    case AELLM_DTYPE_Q8_0:
    case AELLM_DTYPE_INT8_G32:
        return d / 2 + 127 * fabs(d - amax / 127) + eps;
    case AELLM_DTYPE_NF4:
        return nf4_max_gap() / 2 * d + fabs(amax - d) + eps;
    case AELLM_DTYPE_INT8:
        return d / 2 + eps;
    case AELLM_DTYPE_FP8_E4M3:
        *unit = fabs(x) / d >= 0x1p-6 ? fabs(x) : 0.0; /* reported: relative error */
        return fabs(x) / d >= 0x1p-6 ? 0x1p-4 * fabs(x) + eps : d * 0x1p-10 + eps;
    }
    fail_msg("no bound for type %d", type);
    return 0;
}

static void test_table_rows(void **state)
{
    (void)state;
    static const struct {
        int type;
        const char *name;
        int64_t n;
        size_t bytes;
    } rows[] = {
        {AELLM_DTYPE_INT4S_G32, "int4s_g32", 172, 6 * 18},
        {AELLM_DTYPE_INT4S_G64, "int4s_g64", 172, 3 * 34},
        {AELLM_DTYPE_INT4S_G128, "int4s_g128", 172, 2 * 66},
        {AELLM_DTYPE_INT4A_G32, "int4a_g32", 33, 2 * 20},
        {AELLM_DTYPE_INT4A_G64, "int4a_g64", 64, 36},
        {AELLM_DTYPE_INT4A_G128, "int4a_g128", 256, 2 * 68},
        {AELLM_DTYPE_NF4, "nf4", 100, 2 * 34},
        {AELLM_DTYPE_FP8_E4M3, "fp8_e4m3", 100, 4 + 100},
        {AELLM_DTYPE_INT8, "int8", 33, 4 + 33},
        {AELLM_DTYPE_INT8_G32, "int8_g32", 33, 2 * 34},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const aellm_dtype_traits *tr = tr_of(rows[i].type);
        assert_string_equal(tr->name, rows[i].name);
        assert_int_equal(aellm_dtype_from_name(rows[i].name), rows[i].type);
        assert_int_equal(tr->partial, 1);
        assert_non_null(tr->grid);
        assert_int_equal(aellm_dtype_row_size(rows[i].type, rows[i].n), rows[i].bytes);
    }
    /* GGML's types keep refusing partial rows; the g32 twins share bytes. */
    assert_int_equal(aellm_dtype_row_size(AELLM_DTYPE_Q4_0, 172), 0);
    assert_int_equal(aellm_dtype_row_size(AELLM_DTYPE_INT4S_G32, 256),
                     aellm_dtype_row_size(AELLM_DTYPE_Q4_0, 256));
    assert_int_equal(aellm_dtype_row_size(AELLM_DTYPE_INT4A_G32, 256),
                     aellm_dtype_row_size(AELLM_DTYPE_Q4_1, 256));
    assert_int_equal(aellm_dtype_padded(AELLM_DTYPE_NF4, 100), 128);
    assert_int_equal(aellm_dtype_padded(AELLM_DTYPE_INT8, 100), 100);
}

/* Round trip of random rows (outliers, a zero group) within the bound of
 * each element; prints the worst error in units of the type's step. */
static void test_round_trip_bounds(void **state)
{
    (void)state;
    aellm_rng rng;
    aellm_rng_seed(&rng, 11);
    for (int ti = 0; ti < NGRID; ti++) {
        int type = grid_types[ti];
        const aellm_dtype_traits *tr = tr_of(type);
        int64_t group = tr->grid->group;
        double worst = 0.0, worst_b = 0.0;
        for (int li = 0; li < NLENGTHS; li++) {
            int64_t n = lengths[li];
            if (!holds(type, n)) continue;
            for (int rep = 0; rep < 8; rep++) {
                float *x = malloc((size_t)n * sizeof(float)),
                      *y = malloc((size_t)n * sizeof(float));
                void *q = malloc(aellm_dtype_row_size(type, n));
                assert_non_null(x), assert_non_null(y), assert_non_null(q);
                fill(x, n, &rng);
                tr->from_float(x, q, n);
                tr->to_float(q, y, n);
                for (int64_t i = 0; i < n; i++) {
                    int64_t g0 = group ? i / group * group : 0;
                    int64_t len = group ? (n - g0 < group ? n - g0 : group) : n;
                    double unit, b = bound_of(type, x[i], x + g0, len, &unit);
                    double err = fabs((double)x[i] - y[i]);
                    if (!(err <= b))
                        fail_msg("%s n=%lld x[%lld]=%.9g -> %.9g: error %.3g > bound %.3g",
                                 tr->name, (long long)n, (long long)i, x[i], y[i], err, b);
                    if (unit > 0) worst = fmax(worst, err / unit);
                    worst_b = fmax(worst_b, err / b);
                }
                free(x), free(y), free(q);
            }
        }
        printf("  %-10s worst |x - x^| = %.4f %s, %.3f of the bound\n", tr->name, worst,
               type == AELLM_DTYPE_FP8_E4M3 ? "relative (normal range)" : "x the step d (or s)",
               worst_b);
    }
}

/* Random codes and stored-exact parameters: decode(code) must equal what
 * to_float reads back from pack(codes), bit for bit; padding past n must
 * decode as encode(0). */
static void test_grid_decode_exact(void **state)
{
    (void)state;
    aellm_rng rng;
    aellm_rng_seed(&rng, 12);
    for (int ti = 0; ti < NGRID; ti++) {
        int type = grid_types[ti];
        const aellm_dtype_traits *tr = tr_of(type);
        const aellm_dtype_grid *g = tr->grid;
        int64_t n = tr->partial ? 172 : 256, padded = aellm_dtype_padded(type, n);
        int64_t ng = g->group ? (n + g->group - 1) / g->group : 1;
        uint8_t *codes = malloc((size_t)n);
        aellm_qparams *p = malloc((size_t)ng * sizeof(*p));
        float *y = malloc((size_t)padded * sizeof(float));
        void *row = malloc(aellm_dtype_row_size(type, padded) + 64);
        assert_non_null(codes), assert_non_null(p), assert_non_null(y), assert_non_null(row);
        for (int64_t k = 0; k < ng; k++) {
            float s = 0.05f * aellm_rng_normal(&rng), m = aellm_rng_normal(&rng);
            int f16 = g->group != 0; /* block scales are halves; row scales f32 */
            p[k].scale = f16 ? aellm_f16_to_f32(aellm_f32_to_f16(s)) : fabsf(s);
            p[k].min = asym(type) ? aellm_f16_to_f32(aellm_f32_to_f16(m)) : 0.0f;
        }
        for (int64_t i = 0; i < n; i++) {
            int c;
            do c = (int)(aellm_rng_u64(&rng) % (uint64_t)g->n_codes);
            while (type == AELLM_DTYPE_FP8_E4M3 && (c & 0x7f) == 0x7f);
            codes[i] = (uint8_t)c;
        }
        g->pack(codes, p, n, row);
        tr->to_float(row, y, tr->partial ? padded : n);
        for (int64_t i = 0; i < padded; i++) {
            const aellm_qparams *pi = &p[g->group ? i / g->group : 0];
            float want = g->decode(i < n ? codes[i] : g->encode(0.0f, pi), pi);
            if (memcmp(&want, &y[i], sizeof(float)) != 0)
                fail_msg("%s element %lld (n=%lld): decode %.9g, to_float %.9g", tr->name,
                         (long long)i, (long long)n, want, y[i]);
        }
        free(codes), free(p), free(y), free(row);
    }
}

/* Rows of 172, 100 and 33: to_float writes exactly n values, and the
 * padding of the last group is the code of zero (zero itself for every type
 * but the asymmetric ones, whose grid may not reach zero). */
static void test_partial_rows(void **state)
{
    (void)state;
    static const int64_t ns[] = {172, 100, 33};
    aellm_rng rng;
    aellm_rng_seed(&rng, 13);
    for (int ti = 0; ti < NGRID; ti++) {
        int type = grid_types[ti];
        const aellm_dtype_traits *tr = tr_of(type);
        if (!tr->partial) continue;
        for (int k = 0; k < 3; k++) {
            int64_t n = ns[k], padded = aellm_dtype_padded(type, n);
            float *x = malloc((size_t)padded * sizeof(float));
            float *y = malloc((size_t)(padded + 1) * sizeof(float));
            void *q = malloc(aellm_dtype_row_size(type, n));
            assert_non_null(x), assert_non_null(y), assert_non_null(q);
            fill(x, n, &rng);
            tr->from_float(x, q, n);
            for (int64_t i = 0; i <= padded; i++) y[i] = -7777.0f;
            tr->to_float(q, y, n);
            assert_true(y[n] == -7777.0f); /* nothing written past n */
            tr->to_float(q, y, padded);
            int64_t g0 = tr->grid->group ? (n - 1) / tr->grid->group * tr->grid->group : 0;
            aellm_qparams p;
            tr->grid->fit(x + g0, n - g0, &p);
            for (int64_t i = n; i < padded; i++) {
                float want = tr->grid->decode(tr->grid->encode(0.0f, &p), &p);
                assert_true(y[i] == want);
                if (p.min == 0.0f) assert_true(y[i] == 0.0f);
            }
            free(x), free(y), free(q);
        }
    }
}

/* The g32 types read q4_0 / q4_1 / q8_0's bytes as those types do. */
static void test_g32_twins(void **state)
{
    (void)state;
    static const int pairs[][2] = {{AELLM_DTYPE_INT4S_G32, AELLM_DTYPE_Q4_0},
                                   {AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_Q4_1},
                                   {AELLM_DTYPE_INT8_G32, AELLM_DTYPE_Q8_0}};
    aellm_rng rng;
    aellm_rng_seed(&rng, 14);
    enum { N = 256 };
    float x[N], a[N], b[N];
    for (int k = 0; k < 3; k++) {
        const aellm_dtype_traits *ours = tr_of(pairs[k][0]), *ggml = tr_of(pairs[k][1]);
        assert_int_equal(ours->type_size, ggml->type_size);
        uint8_t q[N * 2];
        fill(x, N, &rng);
        ggml->from_float(x, q, N);
        ggml->to_float(q, a, N);
        ours->to_float(q, b, N);
        assert_memory_equal(a, b, sizeof(a));
    }
}

/* E4M3 against its definition: every finite byte decodes to
 * (-1)^s (e ? 1 + m/8 : m/8) 2^(max(e,1) - 7) and encodes back to itself;
 * midpoints round to the even neighbour; overflow saturates at 448. */
static void test_e4m3(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        int e = (b >> 3) & 15, m = b & 7;
        if ((b & 0x7f) == 0x7f) {
            assert_true(isnan(aellm_e4m3_to_f32((uint8_t)b)));
            continue;
        }
        float want = ldexpf(e ? 1.0f + m / 8.0f : m / 8.0f, (e ? e : 1) - 7) * (b & 0x80 ? -1 : 1);
        assert_true(aellm_e4m3_to_f32((uint8_t)b) == want);
        assert_int_equal(aellm_f32_to_e4m3(want), b);
    }
    for (int b = 0; b < 0x7e; b++) {
        float lo = aellm_e4m3_to_f32((uint8_t)b), hi = aellm_e4m3_to_f32((uint8_t)(b + 1));
        int even = b % 2 == 0 ? b : b + 1;
        assert_int_equal(aellm_f32_to_e4m3(0.5f * (lo + hi)), even);
        assert_int_equal(aellm_f32_to_e4m3(-0.5f * (lo + hi)), even | 0x80);
        assert_int_equal(aellm_f32_to_e4m3(nextafterf(0.5f * (lo + hi), 0.0f)), b);
    }
    assert_int_equal(aellm_f32_to_e4m3(464.0f), 0x7e);
    assert_int_equal(aellm_f32_to_e4m3(1e30f), 0x7e);
    assert_int_equal(aellm_f32_to_e4m3(-INFINITY), 0xfe);
    assert_int_equal(aellm_f32_to_e4m3(0x1p-10f), 0); /* half the smallest subnormal: even */
}

/* NF4 encode picks a nearest codebook value, for values past +-d too. */
static void test_nf4_nearest(void **state)
{
    (void)state;
    const aellm_dtype_grid *g = tr_of(AELLM_DTYPE_NF4)->grid;
    aellm_qparams p = {2.0f, 0.0f};
    aellm_rng rng;
    aellm_rng_seed(&rng, 15);
    for (int i = 0; i < 20000; i++) {
        float x = 2.4f * (2.0f * aellm_rng_f32(&rng) - 1.0f);
        int c = g->encode(x, &p);
        for (int k = 0; k < 16; k++)
            assert_true(fabsf(x - g->decode(c, &p)) <= fabsf(x - g->decode(k, &p)));
    }
    assert_int_equal(g->encode(0.0f, &p), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_rows),        cmocka_unit_test(test_round_trip_bounds),
        cmocka_unit_test(test_grid_decode_exact), cmocka_unit_test(test_partial_rows),
        cmocka_unit_test(test_g32_twins),         cmocka_unit_test(test_e4m3),
        cmocka_unit_test(test_nf4_nearest),
    };
    return cmocka_run_group_tests_name("dtype", tests, NULL, NULL);
}
