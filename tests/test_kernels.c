/* Kernel tests: every SIMD path the CPU supports against the scalar
 * reference, through the traits table (this file has no ISA flags, so it only
 * calls kernels through pointers). Not a benchmark: see bench/bench_kernels.c.
 *
 * Tolerances, all relative to S = sum_i |w_i| |x_i| of the dequantized
 * operands (the scale of the rounding error of any summation order):
 *  - dots, f32/f16/bf16: 2e-5 S. The weights convert exactly; only the
 *    summation order differs (scalar sequential vs 8 or 16 lanes); for
 *    n = 5632 a sequential float sum drifts by ~sqrt(n) eps ~ 5e-6 S.
 *  - dots, quantized: 1e-5 S. Per-block integer sums are exact in every path;
 *    only the float sum over n/32 scaled blocks differs.
 *  - quantizers and dequantizers: exact (bytes / floats identical).
 *  - matmul vs the quantized-activation reference (integer path only): 1e-4 S.
 *    Tiles accumulate in another order and add the q4 offset (-8, or m) as a
 *    separate term, which cancels against the unsigned-nibble product.
 *  - matmul vs f32 X on dequantized W: 2e-5 S for float types and for the
 *    dequantize + sgemm path; the integer path adds the activation rounding,
 *    bounded per element by amax(block)/200 (half a quantization step,
 *    amax/254, plus the f16 scale, amax/2048).
 * AVX-512 paths are checked only where the CPU has them (f, bw, vl, dq and
 * vnni); elsewhere the run says "[skip] avx512". */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/half.h"
#include "core/rng.h"
#include "kernels/kernels_impl.h"

static const int types[] = {AELLM_DTYPE_F32,  AELLM_DTYPE_F16,  AELLM_DTYPE_BF16,
                            AELLM_DTYPE_Q8_0, AELLM_DTYPE_Q4_0, AELLM_DTYPE_Q4_1};
#define NTYPES (int)(sizeof(types) / sizeof(types[0]))
static const int64_t sizes[] = {32, 64, 96, 768, 2048 + 32, 5632};
#define NSIZES (int)(sizeof(sizes) / sizeof(sizes[0]))

/* ---- helpers ---- */

static int64_t block_of(int type)
{
    return aellm_dtype_traits_get(type)->block_size;
}
static int vdt_of(int type)
{
    return aellm_kernel_traits_get(type)->vec_dot_type;
}
static int quantized(int type)
{
    return block_of(type) > 1;
}

static float *random_floats(aellm_rng *rng, int64_t n, float scale)
{
    float *v = malloc((size_t)n * sizeof(float));
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = scale * aellm_rng_normal(rng);
    return v;
}

/* f32 data converted to `type` by the scalar reference quantizer. */
static void *encode(int type, const float *x, int64_t n)
{
    void *q = malloc(aellm_dtype_row_size(type, n));
    assert_non_null(q);
    aellm_dtype_traits_get(type)->from_float(x, q, n);
    return q;
}

static float *decode(int type, const void *q, int64_t n)
{
    float *x = malloc((size_t)n * sizeof(float));
    assert_non_null(x);
    aellm_dtype_traits_get(type)->to_float(q, x, n);
    return x;
}

static double abs_dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

static double dot_tol(int type)
{
    return quantized(type) ? 1e-5 : 2e-5;
}

/* ISAs this CPU cannot run are skipped, saying so once per program. */
static int isa_runs(int isa)
{
    static int said[AELLM_ISA_COUNT];
    if (isa <= (int)aellm_cpu_isa()) return 1;
    if (!said[isa]) printf("  [skip] %s: not supported here\n", aellm_isa_name((aellm_isa)isa));
    said[isa] = 1;
    return 0;
}

static void check_close(double got, double want, double tol, const char *what, int type, int isa,
                        int64_t n)
{
    if (fabs(got - want) <= tol) return;
    fail_msg("%s %s/%s n=%lld: got %.9g want %.9g (tol %.3g)", what,
             aellm_dtype_traits_get(type)->name, aellm_isa_name((aellm_isa)isa), (long long)n, got,
             want, tol);
}

/* ---- tests ---- */

static void test_isa_and_table(void **state)
{
    (void)state;
    printf("  cpu isa: %s\n", aellm_isa_name(aellm_cpu_isa()));
    for (int i = 0; i < NTYPES; i++) {
        const aellm_kernel_traits *tr = aellm_kernel_traits_get(types[i]);
        assert_non_null(tr);
        assert_non_null(tr->vec_dot[AELLM_ISA_SCALAR]);
        assert_non_null(tr->to_float[AELLM_ISA_SCALAR]);
        assert_non_null(aellm_kernel_vec_dot(types[i]));
        assert_non_null(aellm_kernel_to_float(types[i]));
        assert_non_null(aellm_kernel_from_float(tr->vec_dot_type));
    }
    assert_null(aellm_kernel_traits_get(AELLM_DTYPE_MAX - 1));
    assert_null(aellm_kernel_traits_get(-1));
    assert_string_equal(aellm_isa_name(AELLM_ISA_AVX2), "avx2");
}

static void test_vec_dot(void **state)
{
    (void)state;
    aellm_rng rng;
    aellm_rng_seed(&rng, 1);
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = types[ti];
        const aellm_kernel_traits *tr = aellm_kernel_traits_get(type);
        for (int si = 0; si < NSIZES; si++) {
            int64_t n = sizes[si];
            if (n % block_of(type)) continue;
            float *wf = random_floats(&rng, n, 1.0f), *xf = random_floats(&rng, n, 1.0f);
            void *w = encode(type, wf, n), *x = encode(tr->vec_dot_type, xf, n);
            float *wd = decode(type, w, n), *xd = decode(tr->vec_dot_type, x, n);
            float want;
            tr->vec_dot[AELLM_ISA_SCALAR](n, &want, w, x);
            double tol = dot_tol(type) * abs_dot(wd, xd, n);
            for (int isa = 1; isa < AELLM_ISA_COUNT; isa++) {
                if (!tr->vec_dot[isa] || !isa_runs(isa)) continue;
                float got = NAN;
                tr->vec_dot[isa](n, &got, w, x);
                check_close(got, want, tol, "vec_dot", type, isa, n);
            }
            free(wf), free(xf), free(w), free(x), free(wd), free(xd);
        }
    }
}

/* Blocks that stress the quantizers' rounding: exact .5 ties (amax 127 gives
 * d = 1, so x * id is x itself), zeros, a single value, huge and tiny
 * magnitudes, negative zero, values that overflow f16. */
static void fill_edge_cases(float *x, int64_t n, aellm_rng *rng)
{
    for (int64_t i = 0; i < n; i++) x[i] = aellm_rng_normal(rng);
    if (n < 8 * 32) return;
    for (int j = 0; j < 32; j++) x[j] = (j == 0) ? 127.0f : (float)(j - 16) + 0.5f;
    for (int j = 0; j < 32; j++) x[32 + j] = 0.0f;
    for (int j = 0; j < 32; j++) x[64 + j] = j == 7 ? -3.0f : 0.0f;
    for (int j = 0; j < 32; j++) x[96 + j] = 1e30f * aellm_rng_normal(rng);
    for (int j = 0; j < 32; j++) x[128 + j] = 1e-30f * aellm_rng_normal(rng);
    for (int j = 0; j < 32; j++) x[160 + j] = j & 1 ? -0.0f : 1e-8f * (float)j;
    for (int j = 0; j < 32; j++) x[192 + j] = 65504.0f + 8.0f * (float)j; /* f16 rounding edge */
    for (int j = 0; j < 32; j++) x[224 + j] = (j == 3) ? -127.0f : (float)j * 0.25f;
}

static void test_quantizers_identical(void **state)
{
    (void)state;
    static const int qtypes[] = {AELLM_DTYPE_F32,  AELLM_DTYPE_F16,  AELLM_DTYPE_BF16,
                                 AELLM_DTYPE_Q8_0, AELLM_DTYPE_Q8_1, AELLM_DTYPE_Q4_0,
                                 AELLM_DTYPE_Q4_1};
    aellm_rng rng;
    aellm_rng_seed(&rng, 2);
    for (int ti = 0; ti < (int)(sizeof(qtypes) / sizeof(qtypes[0])); ti++) {
        int type = qtypes[ti];
        const aellm_kernel_traits *tr = aellm_kernel_traits_get(type);
        for (int si = 0; si < NSIZES; si++) {
            int64_t n = sizes[si];
            float *x = malloc((size_t)n * sizeof(float));
            assert_non_null(x);
            fill_edge_cases(x, n, &rng);
            size_t bytes = aellm_dtype_row_size(type, n);
            void *want = encode(type, x, n), *got = malloc(bytes);
            float *back_want = decode(type, want, n), *back_got = malloc((size_t)n * 4);
            assert_non_null(got), assert_non_null(back_got);
            for (int isa = 1; isa < AELLM_ISA_COUNT; isa++) {
                if (!isa_runs(isa)) continue;
                if (tr->from_float[isa]) {
                    memset(got, 0xa5, bytes);
                    tr->from_float[isa](x, got, n);
                    if (memcmp(got, want, bytes) != 0)
                        fail_msg("from_float %s/%s n=%lld differs from the reference",
                                 aellm_dtype_traits_get(type)->name, aellm_isa_name((aellm_isa)isa),
                                 (long long)n);
                }
                if (tr->to_float[isa]) {
                    memset(back_got, 0xa5, (size_t)n * 4);
                    tr->to_float[isa](want, back_got, n);
                    if (memcmp(back_got, back_want, (size_t)n * 4) != 0)
                        fail_msg("to_float %s/%s n=%lld differs from the reference",
                                 aellm_dtype_traits_get(type)->name, aellm_isa_name((aellm_isa)isa),
                                 (long long)n);
                }
            }
            free(x), free(want), free(got), free(back_want), free(back_got);
        }
    }
}

/* A 67-row matrix: 16 four-row steps and a 3-row tail, at two offsets of the
 * row range, through the public matvec and each ISA's multi-row kernel. */
static void test_matvec(void **state)
{
    (void)state;
    enum { ROWS = 67 };
    aellm_rng rng;
    aellm_rng_seed(&rng, 3);
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = types[ti], vdt = vdt_of(type);
        const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(type);
        for (int si = 0; si < NSIZES; si++) {
            int64_t n = sizes[si];
            size_t rb = aellm_dtype_row_size(type, n);
            float *wf = random_floats(&rng, ROWS * n, 1.0f), *xf = random_floats(&rng, n, 1.0f);
            void *w = encode(type, wf, ROWS * n), *x = encode(vdt, xf, n);
            float *wd = decode(type, w, ROWS * n), *xd = decode(vdt, x, n);
            float want[ROWS], got[ROWS];
            double tol[ROWS];
            for (int r = 0; r < ROWS; r++) {
                aellm_kernel_traits_get(type)->vec_dot[0](n, &want[r], (char *)w + r * rb, x);
                tol[r] = dot_tol(type) * abs_dot(wd + r * n, xd, n);
            }
            aellm_kernel_matvec(type, n, w, rb, x, got, 0, ROWS);
            for (int r = 0; r < ROWS; r++)
                check_close(got[r], want[r], tol[r], "matvec", type, aellm_cpu_isa(), n);
            aellm_kernel_matvec(type, n, w, rb, x, got, 5, 66);
            for (int r = 5; r < 66; r++)
                check_close(got[r - 5], want[r], tol[r], "matvec[5,66)", type, aellm_cpu_isa(), n);
            for (int isa = 1; isa < AELLM_ISA_COUNT; isa++) {
                if (!ext->vec_dot_rows[isa] || !isa_runs(isa)) continue;
                for (int r = 0; r + AELLM_MV_ROWS <= ROWS; r += AELLM_MV_ROWS) {
                    ext->vec_dot_rows[isa](n, got, (char *)w + r * rb, rb, x);
                    for (int i = 0; i < AELLM_MV_ROWS; i++)
                        check_close(got[i], want[r + i], tol[r + i], "vec_dot_rows", type, isa, n);
                }
            }
            free(wf), free(xf), free(w), free(x), free(wd), free(xd);
        }
    }
}

/* Y (T, rows) against two references: the exact product of f32 X with the
 * dequantized W, and per token the scalar dot with quantized activations. */
static void check_matmul(int type, int path, int64_t rows, int64_t n, int64_t T, aellm_rng *rng)
{
    int vdt = vdt_of(type);
    size_t rb = aellm_dtype_row_size(type, n), xb = aellm_dtype_row_size(vdt, n);
    float *wf = random_floats(rng, rows * n, 1.0f), *x = random_floats(rng, T * n, 1.0f);
    void *w = encode(type, wf, rows * n);
    float *wd = decode(type, w, rows * n), *y = malloc((size_t)(T * rows) * sizeof(float));
    void *xq = malloc(xb);
    size_t sbytes = aellm_kernel_matmul_path_scratch(path, type, rows, n, T);
    void *scratch = sbytes ? malloc(sbytes) : NULL;
    assert_non_null(y), assert_non_null(xq);
    assert_true(sbytes == 0 || scratch);
    /* The dequantize + sgemm path never quantizes the activations; only the
     * integer path is compared with the quantized-activation dot. */
    int tiles = path == AELLM_MM_AUTO ? aellm_kernel_matmul_uses_tiles(type, T)
                                      : type != AELLM_DTYPE_F32 && path != AELLM_MM_DEQUANT;
    aellm_kernel_matmul_path(path, type, w, rb, rows, n, x, T, y, scratch);
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * n;
        aellm_dtype_traits_get(vdt)->from_float(xt, xq, n);
        float *xd = decode(vdt, xq, n);
        for (int64_t r = 0; r < rows; r++) {
            const float *wr = wd + r * n;
            double exact = 0.0, bound = 0.0, amax = 0.0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)wr[i] * xt[i];
                if (i % 32 == 0) {
                    amax = 0.0;
                    for (int j = 0; j < 32 && i + j < n; j++) amax = fmax(amax, fabs(xt[i + j]));
                }
                bound += tiles ? fabs(wr[i]) * amax / 200.0 : 0.0;
            }
            double got = y[t * rows + r];
            check_close(got, exact, bound + 2e-5 * abs_dot(wr, xt, n), "matmul~f32", type,
                        aellm_cpu_isa(), n);
            if (tiles) {
                float want;
                aellm_kernel_traits_get(type)->vec_dot[0](n, &want, (char *)w + r * rb, xq);
                check_close(got, want, 1e-4 * abs_dot(wr, xd, n), "matmul~qdot", type,
                            aellm_cpu_isa(), n);
            }
        }
        free(xd);
    }
    free(wf), free(x), free(w), free(wd), free(y), free(xq), free(scratch);
}

static void test_matmul(void **state)
{
    (void)state;
    static const int64_t Ts[] = {1, 5, 64, 512};
    /* 67 rows: tile, 8-row group and row-chunk edges; 300 rows: more than
     * one dequantized chunk; n = 256 and 96: several blocks, and an odd
     * block count. Every path the type has, and the automatic choice. */
    static const int64_t shapes[][2] = {{67, 256}, {300, 96}};
    static const int paths[] = {AELLM_MM_AUTO, AELLM_MM_DEQUANT, AELLM_MM_TILES, AELLM_MM_X8};
    aellm_rng rng;
    aellm_rng_seed(&rng, 4);
    for (int ti = 0; ti < NTYPES; ti++)
        for (int p = 0; p < 4; p++) {
            if (!aellm_kernel_matmul_has_path(types[ti], paths[p])) continue;
            if (types[ti] == AELLM_DTYPE_F32 && p) continue;
            for (int s = 0; s < 2; s++)
                for (int k = 0; k < 4; k++)
                    check_matmul(types[ti], paths[p], shapes[s][0], shapes[s][1], Ts[k], &rng);
        }
}

/* x8 tiles of every ISA against the scalar reference on the same packed
 * operands: the integer dots are exact and the float steps are the same
 * (one fma per block, in block order), so only fma vs mul+add rounding
 * differs: 1e-5 S. Partial groups and tiles included. */
static void test_x8_tiles(void **state)
{
    (void)state;
    static const int wtypes[] = {AELLM_DTYPE_Q4_0, AELLM_DTYPE_Q8_0};
    aellm_rng rng;
    aellm_rng_seed(&rng, 5);
    for (int wi = 0; wi < 2; wi++) {
        int type = wtypes[wi];
        const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(type);
        int64_t n = 160, nb = n / 32; /* odd block count */
        size_t rb = aellm_dtype_row_size(type, n), xb = aellm_dtype_row_size(AELLM_DTYPE_Q8_0, n);
        float *wf = random_floats(&rng, AELLM_X8_ROWS * n, 1.0f);
        float *xf = random_floats(&rng, AELLM_X8_TOKS * n, 1.0f);
        void *w = encode(type, wf, AELLM_X8_ROWS * n);
        void *xq = encode(AELLM_DTYPE_Q8_0, xf, AELLM_X8_TOKS * n);
        float *wd = decode(type, w, AELLM_X8_ROWS * n),
              *xd = decode(AELLM_DTYPE_Q8_0, xq, AELLM_X8_TOKS * n);
        void *g = malloc(aellm_x8_group_bytes(type, n));
        aellm_x8_act *xt = malloc((size_t)nb * sizeof(*xt));
        assert_non_null(g), assert_non_null(xt);
        for (int nr = 1; nr <= AELLM_X8_ROWS; nr += AELLM_X8_ROWS - 1)
            for (int nt = 1; nt <= AELLM_X8_TOKS; nt += AELLM_X8_TOKS - 1) {
                aellm_x8_pack_w(type, g, w, rb, nr, nb);
                aellm_x8_pack_x(type, xt, xq, xb, nt, nb);
                float want[AELLM_X8_TOKS][AELLM_X8_ROWS], got[AELLM_X8_TOKS][AELLM_X8_ROWS];
                aellm_x8_args a = {
                    .nb = nb, .w = g, .x = xt, .y = &want[0][0], .ldy = AELLM_X8_ROWS};
                ext->x8_tile[AELLM_ISA_SCALAR](&a, nr, nt);
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < nr; r++) {
                        /* The scalar tile against the decode dot. */
                        float dot;
                        aellm_kernel_traits_get(type)->vec_dot[0](n, &dot, (char *)w + r * rb,
                                                                  (char *)xq + t * xb);
                        check_close(want[t][r], dot, 1e-5 * abs_dot(wd + r * n, xd + t * n, n),
                                    "x8 scalar~vec_dot", type, 0, n);
                    }
                for (int isa = 1; isa <= (int)aellm_cpu_isa(); isa++) {
                    if (!ext->x8_tile[isa]) continue;
                    for (int t = 0; t < AELLM_X8_TOKS; t++)
                        for (int r = 0; r < AELLM_X8_ROWS; r++) got[t][r] = -12345.0f;
                    a.y = &got[0][0];
                    ext->x8_tile[isa](&a, nr, nt);
                    for (int t = 0; t < AELLM_X8_TOKS; t++)
                        for (int r = 0; r < AELLM_X8_ROWS; r++) {
                            if (t < nt && r < nr)
                                check_close(got[t][r], want[t][r],
                                            1e-5 * abs_dot(wd + r * n, xd + t * n, n), "x8 tile",
                                            type, isa, n);
                            else
                                assert_true(got[t][r] == -12345.0f); /* not written */
                        }
                }
            }
        free(wf), free(xf), free(w), free(xq), free(wd), free(xd), free(g), free(xt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_and_table),
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_quantizers_identical),
        cmocka_unit_test(test_matvec),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_x8_tiles),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
