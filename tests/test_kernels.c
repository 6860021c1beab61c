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

#include "core/blocks.h"
#include "core/half.h"
#include "core/rng.h"
#include "kernels/kernels_impl.h"

static const int types[] = {
    AELLM_DTYPE_F32,        AELLM_DTYPE_F16,       AELLM_DTYPE_BF16,      AELLM_DTYPE_Q8_0,
    AELLM_DTYPE_Q4_0,       AELLM_DTYPE_Q4_1,      AELLM_DTYPE_INT4S_G32, AELLM_DTYPE_INT4S_G64,
    AELLM_DTYPE_INT4S_G128, AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_INT4A_G64, AELLM_DTYPE_INT4A_G128,
    AELLM_DTYPE_NF4,        AELLM_DTYPE_FP8_E4M3,  AELLM_DTYPE_INT8,      AELLM_DTYPE_INT8_G32};
#define NTYPES (int)(sizeof(types) / sizeof(types[0]))
/* Rows of whole blocks for every type, and (172, 100, 33) rows that end in a
 * partial group, for the types that allow them. */
static const int64_t sizes[] = {32, 64, 96, 768, 2048 + 32, 5632, 172, 100, 33};
#define NSIZES (int)(sizeof(sizes) / sizeof(sizes[0]))

/* ---- helpers ---- */

static int vdt_of(int type)
{
    return aellm_kernel_traits_get(type)->vec_dot_type;
}
/* Rows of n elements exist for this type. */
static int holds(int type, int64_t n)
{
    return aellm_dtype_row_size(type, n) != 0;
}

static float *random_floats(aellm_rng *rng, int64_t n, float scale)
{
    float *v = malloc((size_t)n * sizeof(float));
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = scale * aellm_rng_normal(rng);
    return v;
}

/* f32 rows (rows, n) converted to `type` by the scalar reference quantizer,
 * a row at a time (rows of the new formats are not whole blocks). */
static void *encode_rows(int type, const float *x, int64_t rows, int64_t n)
{
    size_t rb = aellm_dtype_row_size(type, n);
    char *q = malloc(rb * (size_t)rows);
    assert_non_null(q);
    for (int64_t r = 0; r < rows; r++)
        aellm_dtype_traits_get(type)->from_float(x + r * n, q + r * rb, n);
    return q;
}

static void *encode(int type, const float *x, int64_t n)
{
    return encode_rows(type, x, 1, n);
}

static float *decode_rows(int type, const void *q, int64_t rows, int64_t n)
{
    size_t rb = aellm_dtype_row_size(type, n);
    float *x = malloc((size_t)(rows * n) * sizeof(float));
    assert_non_null(x);
    for (int64_t r = 0; r < rows; r++)
        aellm_dtype_traits_get(type)->to_float((const char *)q + r * rb, x + r * n, n);
    return x;
}

static float *decode(int type, const void *q, int64_t n)
{
    return decode_rows(type, q, 1, n);
}

/* The activation of weight type `wtype`, by the reference quantizer of its
 * vec_dot_type on the row zero-padded to the weight's padded length, with
 * (Q8_0) each block's sum of quants after it, counted here; checks that
 * aellm_kernel_quantize_act (the fast path) writes the same. */
static void *encode_act(int wtype, const float *x, int64_t n)
{
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    int64_t padded = aellm_dtype_padded(wtype, n);
    size_t bytes = aellm_kernel_act_bytes(wtype, n), row = aellm_dtype_row_size(vdt, padded);
    int64_t nb = padded / 32;
    if (vdt == AELLM_DTYPE_Q8_0)
        assert_int_equal(bytes, AELLM_ACT_Q8_0_SUMS_OFFSET(nb) + (size_t)nb * sizeof(int32_t));
    else
        assert_int_equal(bytes, row);
    float *xp = calloc((size_t)padded, sizeof(float));
    void *q = calloc(1, bytes), *fast = calloc(1, bytes);
    assert_non_null(xp), assert_non_null(q), assert_non_null(fast);
    memcpy(xp, x, (size_t)n * sizeof(float));
    aellm_dtype_traits_get(vdt)->from_float(xp, q, padded);
    aellm_kernel_quantize_act(wtype, x, fast, n);
    int differs = memcmp(q, fast, row) != 0;
    if (vdt == AELLM_DTYPE_Q8_0) {
        int32_t *sums = (int32_t *)((char *)q + AELLM_ACT_Q8_0_SUMS_OFFSET(nb));
        for (int64_t b = 0; b < nb; b++) {
            const int8_t *qs = (const int8_t *)q + b * 34 + 2;
            sums[b] = 0;
            for (int j = 0; j < 32; j++) sums[b] += qs[j];
        }
        differs |= memcmp(sums, aellm_act_q8_0_sums(fast, nb), (size_t)nb * sizeof(int32_t)) != 0;
    }
    if (differs)
        fail_msg("quantize_act %s n=%lld differs from the padded reference",
                 aellm_dtype_traits_get(wtype)->name, (long long)n);
    free(xp), free(fast);
    return q;
}

/* Dequantized activation, n values (the padding is zero). */
static float *decode_act(int wtype, const void *q, int64_t n)
{
    int vdt = aellm_kernel_traits_get(wtype)->vec_dot_type;
    int64_t padded = aellm_dtype_padded(wtype, n);
    float *x = malloc((size_t)padded * sizeof(float));
    assert_non_null(x);
    aellm_dtype_traits_get(vdt)->to_float(q, x, padded);
    for (int64_t i = n; i < padded; i++) assert_true(x[i] == 0.0f);
    return x;
}

static double abs_dot(const float *a, const float *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

/* Integer activations: exact block sums, 1e-5; float activations: 2e-5. */
static double dot_tol(int type)
{
    return vdt_of(type) == AELLM_DTYPE_F32 ? 2e-5 : 1e-5;
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

/* The scalar reference dot of each of `rows` rows of w (rb bytes apart)
 * with x, and its tolerance from the dequantized operands wd, xd. */
static void reference_rows(int type, int64_t n, const void *w, size_t rb, const void *x,
                           const float *wd, const float *xd, int rows, float *want, double *tol)
{
    for (int r = 0; r < rows; r++) {
        aellm_kernel_traits_get(type)->vec_dot[0](n, &want[r], (const char *)w + r * rb, x);
        tol[r] = dot_tol(type) * abs_dot(wd + r * n, xd, n);
    }
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
            if (!holds(type, n)) continue;
            float *wf = random_floats(&rng, n, 1.0f), *xf = random_floats(&rng, n, 1.0f);
            void *w = encode(type, wf, n), *x = encode_act(type, xf, n);
            float *wd = decode(type, w, n), *xd = decode_act(type, x, n);
            float want;
            tr->vec_dot[AELLM_ISA_SCALAR](n, &want, w, x);
            /* W8A8 sums exact integers in every path: equal, not close. */
            double tol = type == AELLM_DTYPE_INT8 ? 0.0 : dot_tol(type) * abs_dot(wd, xd, n);
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
    static const int qtypes[] = {
        AELLM_DTYPE_F32,        AELLM_DTYPE_F16,       AELLM_DTYPE_BF16,
        AELLM_DTYPE_Q8_0,       AELLM_DTYPE_Q8_1,      AELLM_DTYPE_Q4_0,
        AELLM_DTYPE_Q4_1,       AELLM_DTYPE_INT4S_G32, AELLM_DTYPE_INT4S_G64,
        AELLM_DTYPE_INT4S_G128, AELLM_DTYPE_INT4A_G32, AELLM_DTYPE_INT4A_G64,
        AELLM_DTYPE_INT4A_G128, AELLM_DTYPE_NF4,       AELLM_DTYPE_FP8_E4M3,
        AELLM_DTYPE_INT8,       AELLM_DTYPE_INT8_G32};
    aellm_rng rng;
    aellm_rng_seed(&rng, 2);
    for (int ti = 0; ti < (int)(sizeof(qtypes) / sizeof(qtypes[0])); ti++) {
        int type = qtypes[ti];
        const aellm_kernel_traits *tr = aellm_kernel_traits_get(type);
        for (int si = 0; si < NSIZES; si++) {
            int64_t n = sizes[si];
            if (!holds(type, n)) continue;
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
        int type = types[ti];
        const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(type);
        for (int si = 0; si < NSIZES; si++) {
            int64_t n = sizes[si];
            if (!holds(type, n)) continue;
            size_t rb = aellm_dtype_row_size(type, n);
            float *wf = random_floats(&rng, ROWS * n, 1.0f), *xf = random_floats(&rng, n, 1.0f);
            void *w = encode_rows(type, wf, ROWS, n), *x = encode_act(type, xf, n);
            float *wd = decode_rows(type, w, ROWS, n), *xd = decode_act(type, x, n);
            float want[ROWS], got[ROWS];
            double tol[ROWS];
            reference_rows(type, n, w, rb, x, wd, xd, ROWS, want, tol);
            aellm_kernel_matvec(type, n, w, rb, x, got, 0, ROWS);
            for (int r = 0; r < ROWS; r++)
                check_close(got[r], want[r], tol[r], "matvec", type, aellm_cpu_isa(), n);
            aellm_kernel_matvec(type, n, w, rb, x, got, 5, 66);
            for (int r = 5; r < 66; r++)
                check_close(got[r - 5], want[r], tol[r], "matvec[5,66)", type, aellm_cpu_isa(), n);
            /* the same range in steps taken from both ends in uneven pieces,
               as decode threads share out a product: every row written, once */
            int64_t steps = aellm_kernel_matvec_steps(type, 61), f = 0, b = steps;
            assert_true(aellm_kernel_matvec_step_bytes(type, 61, rb) * (size_t)steps >= 61 * rb);
            for (int r = 0; r < ROWS; r++) got[r] = NAN;
            for (int64_t piece = 1; f < b; piece = piece % 3 + 1) {
                int64_t take = piece < b - f ? piece : b - f;
                if (piece == 2) { /* from the back */
                    aellm_kernel_matvec_steps_run(type, n, w, rb, x, got, 5, 66, b - take, b);
                    b -= take;
                } else {
                    aellm_kernel_matvec_steps_run(type, n, w, rb, x, got, 5, 66, f, f + take);
                    f += take;
                }
            }
            for (int r = 5; r < 66; r++)
                check_close(got[r - 5], want[r], tol[r], "matvec steps", type, aellm_cpu_isa(), n);
            for (int isa = 1; isa < AELLM_ISA_COUNT; isa++) {
                if (!ext->vec_dot_rows[isa] || !isa_runs(isa)) continue;
                int k = ext->mv_rows[isa];
                assert_in_range(k, 1, AELLM_MV_ROWS);
                for (int r = 0; r + k <= ROWS; r += k) {
                    ext->vec_dot_rows[isa](n, got, (char *)w + r * rb, rb, x);
                    for (int i = 0; i < k; i++)
                        check_close(got[i], want[r + i], tol[r + i], "vec_dot_rows", type, isa, n);
                }
                /* rows further apart, as matvec's runs of rows pass them */
                for (int r = 0; r + (k - 1) * 16 < ROWS; r += 5) {
                    ext->vec_dot_rows[isa](n, got, (char *)w + r * rb, 16 * rb, x);
                    for (int i = 0; i < k; i++)
                        check_close(got[i], want[r + 16 * i], tol[r + 16 * i], "vec_dot_rows/16",
                                    type, isa, n);
                }
            }
            free(wf), free(xf), free(w), free(x), free(wd), free(xd);
        }
    }
}

/* Y (T, rows) against two references: the exact product of f32 X with the
 * dequantized W, and per token the scalar dot with quantized activations.
 * Integer paths round the activations, by at most amax / 200 per element
 * (amax of its block of 32, or of the whole row for W8A8's per-token int8:
 * half a step amax / 254, plus the f16 scale's rounding for the blocks).
 * W8A8's integer GEMM equals the decode dot exactly. */
static void check_matmul(int type, int path, int64_t rows, int64_t n, int64_t T, aellm_rng *rng)
{
    size_t rb = aellm_dtype_row_size(type, n);
    float *wf = random_floats(rng, rows * n, 1.0f), *x = random_floats(rng, T * n, 1.0f);
    void *w = encode_rows(type, wf, rows, n);
    float *wd = decode_rows(type, w, rows, n), *y = malloc((size_t)(T * rows) * sizeof(float));
    size_t sbytes = aellm_kernel_matmul_path_scratch(path, type, rows, n, T);
    void *scratch = sbytes ? malloc(sbytes) : NULL;
    assert_non_null(y);
    assert_true(sbytes == 0 || scratch);
    /* The dequantize + sgemm path never quantizes the activations; only the
     * integer paths are compared with the quantized-activation dot. */
    int taken = path == AELLM_MM_AUTO ? aellm_kernel_matmul_auto_path(type, n, T) : path;
    int tiles = type != AELLM_DTYPE_F32 && taken != AELLM_MM_DEQUANT && taken != AELLM_MM_AUTO &&
                taken != AELLM_MM_FTILE;
    int64_t ablock = vdt_of(type) == AELLM_DTYPE_INT8 ? n : 32;
    aellm_kernel_matmul_path(path, type, w, rb, rows, n, x, T, y, scratch);
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * n;
        void *xq = encode_act(type, xt, n);
        float *xd = decode_act(type, xq, n);
        for (int64_t r = 0; r < rows; r++) {
            const float *wr = wd + r * n;
            double exact = 0.0, bound = 0.0, amax = 0.0;
            for (int64_t i = 0; i < n; i++) {
                exact += (double)wr[i] * xt[i];
                if (i % ablock == 0) {
                    amax = 0.0;
                    for (int64_t j = 0; j < ablock && i + j < n; j++)
                        amax = fmax(amax, fabs(xt[i + j]));
                }
                bound += tiles ? fabs(wr[i]) * amax / 200.0 : 0.0;
            }
            double got = y[t * rows + r];
            check_close(got, exact, bound + 2e-5 * abs_dot(wr, xt, n), "matmul~f32", type,
                        aellm_cpu_isa(), n);
            if (tiles) {
                float want;
                aellm_kernel_traits_get(type)->vec_dot[0](n, &want, (char *)w + r * rb, xq);
                /* the int8 GEMM computes exactly what decode does; the token-by-token
                 * path too, up to the summation order of this ISA's dot */
                double tol = taken == AELLM_MM_I8     ? 0.0
                             : taken == AELLM_MM_ROWS ? 1e-5 * abs_dot(wr, xd, n)
                                                      : 1e-4 * abs_dot(wr, xd, n);
                check_close(got, want, tol, "matmul~qdot", type, aellm_cpu_isa(), n);
            }
        }
        free(xd), free(xq);
    }
    free(wf), free(x), free(w), free(wd), free(y), free(scratch);
}

static void test_matmul(void **state)
{
    (void)state;
    static const int64_t Ts[] = {1, 5, 64, 512};
    /* 67 rows: tile, 8-row group and row-chunk edges; 300 rows: more than
     * one dequantized chunk; n = 256 and 96: several blocks, and an odd
     * block count; n = 172: a partial last group (types that allow it).
     * Every path the type has, and the automatic choice. */
    static const int64_t shapes[][2] = {{67, 256}, {300, 96}, {67, 172}};
    static const int paths[] = {AELLM_MM_AUTO, AELLM_MM_DEQUANT, AELLM_MM_TILES, AELLM_MM_X8,
                                AELLM_MM_I8,   AELLM_MM_ROWS,    AELLM_MM_FTILE};
    aellm_rng rng;
    aellm_rng_seed(&rng, 4);
    for (int ti = 0; ti < NTYPES; ti++)
        for (int p = 0; p < 7; p++) {
            if (!aellm_kernel_matmul_has_path(types[ti], paths[p])) continue;
            if (types[ti] == AELLM_DTYPE_F32 && p && paths[p] != AELLM_MM_FTILE) continue;
            for (int s = 0; s < 3; s++)
                for (int k = 0; k < 4; k++)
                    if (holds(types[ti], shapes[s][1]))
                        check_matmul(types[ti], paths[p], shapes[s][0], shapes[s][1], Ts[k], &rng);
        }
}

/* q4_0 rows laid out as q4_0_r16 by the definition in core/blocks.h (an
 * independent copy of model/repack.c's rewrite): rows a multiple of 16. */
static void *to_r16(const void *w, int64_t rows, int64_t n)
{
    int64_t nb = n / 32;
    size_t rb = (size_t)nb * sizeof(aellm_block_q4_0);
    aellm_block_q4_0_r16 *out = malloc((size_t)rows * rb);
    assert_non_null(out);
    for (int64_t g = 0; g < rows / 16; g++)
        for (int r = 0; r < 16; r++) {
            const aellm_block_q4_0 *src =
                (const aellm_block_q4_0 *)((const char *)w + (g * 16 + r) * rb);
            for (int64_t b = 0; b < nb; b++) {
                out[g * nb + b].d[r] = src[b].d;
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < 4; j++)
                        out[g * nb + b].q[64 * k + 4 * r + j] = src[b].qs[4 * k + j];
            }
        }
    return out;
}

/* The decode layout of q4_0: each ISA's group kernel against the scalar
 * q4_0 dot of the same rows (1e-5 S), matvec over a row range and in steps,
 * and prefill (x8 tiles packed from the groups) equal to the plain q4_0 x8
 * path bit for bit. Full-scale nibbles 0 and 15 against +-127 activations
 * in the last size reach the AVX2 kernel's int16 bound (8 pairs of 2 * 15
 * * 127 = 30480). */
static void test_q4_0_r16(void **state)
{
    (void)state;
    enum { ROWS = 80 }; /* five groups: two runs of two and one left over, at two streams */
    static const int64_t ns[] = {32, 64, 96, 768, 2048 + 32, 5632, 256};
    const int q4 = AELLM_DTYPE_Q4_0, r16 = AELLM_DTYPE_Q4_0_R16;
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(r16);
    assert_null(aellm_kernel_vec_dot(r16)); /* no one-row dot for interleaved rows */
    assert_int_equal(aellm_kernel_matvec_align(r16), 16);
    assert_int_equal(aellm_kernel_matvec_align(q4), 1);
    assert_int_equal(aellm_dtype_from_name("q4_0_r16"), -1); /* not a --type */
    aellm_rng rng;
    aellm_rng_seed(&rng, 16);
    for (size_t si = 0; si < sizeof(ns) / sizeof(ns[0]); si++) {
        int64_t n = ns[si], nb = n / 32;
        int extreme = si + 1 == sizeof(ns) / sizeof(ns[0]);
        size_t rb = aellm_dtype_row_size(q4, n);
        float *wf = random_floats(&rng, ROWS * n, 1.0f), *xf = random_floats(&rng, n, 1.0f);
        if (extreme)
            for (int64_t i = 0; i < ROWS * n; i++) wf[i] = i % 3 ? 1.0f : -1.0f;
        void *w = encode_rows(q4, wf, ROWS, n);
        if (extreme) /* nibbles 0 and 15 (d chosen by the quantizer) */
            for (int64_t r = 0; r < ROWS; r++)
                for (int64_t b = 0; b < nb; b++) {
                    aellm_block_q4_0 *blk = (aellm_block_q4_0 *)((char *)w + r * rb) + b;
                    memset(blk->qs, (r + b) % 2 ? 0xff : 0x00, sizeof(blk->qs));
                }
        if (extreme)
            for (int64_t i = 0; i < n; i++) xf[i] = (i / 32) % 2 ? -1.0f : 1.0f; /* +-127 */
        void *x = encode_act(r16, xf, n), *g = to_r16(w, ROWS, n);
        float *wd = decode_rows(q4, w, ROWS, n), *xd = decode_act(r16, x, n);
        float want[ROWS], got[ROWS];
        double tol[ROWS];
        reference_rows(q4, n, w, rb, x, wd, xd, ROWS, want, tol);
        /* each ISA's kernel reads streams = mv_rows / 16 groups `dist` apart
           (0: one group as every stream) */
        for (int isa = 0; isa < AELLM_ISA_COUNT; isa++) {
            if (!isa_runs(isa)) continue;
            assert_non_null(ext->vec_dot_rows[isa]);
            int streams = ext->mv_rows[isa] / 16;
            assert_true(streams >= 1 && streams * 16 == ext->mv_rows[isa]);
            float out[32];
            for (int grp = 0; grp + streams <= ROWS / 16; grp++)
                for (int same = 0; same < 2; same++) {
                    size_t dist = same ? 0 : 16 * rb;
                    ext->vec_dot_rows[isa](n, out, (char *)g + grp * 16 * rb, dist, x);
                    for (int i = 0; i < 16 * streams; i++) {
                        int r = grp * 16 + (same ? i % 16 : i);
                        check_close(out[i], want[r], tol[r], "r16 group", r16, isa, n);
                    }
                }
        }
        aellm_kernel_matvec(r16, n, g, rb, x, got, 16, ROWS);
        for (int r = 16; r < ROWS; r++)
            check_close(got[r - 16], want[r], tol[r], "r16 matvec[16,80)", r16, aellm_cpu_isa(), n);
        int64_t steps = aellm_kernel_matvec_steps(r16, ROWS);
        int streams = aellm_kernel_matvec_step_bytes(r16, ROWS, rb) / (16 * rb);
        assert_int_equal(steps, ROWS / 16 - (streams - 1) * (ROWS / 16 / streams));
        for (int r = 0; r < ROWS; r++) got[r] = NAN;
        aellm_kernel_matvec_steps_run(r16, n, g, rb, x, got, 0, ROWS, steps - 1, steps);
        aellm_kernel_matvec_steps_run(r16, n, g, rb, x, got, 0, ROWS, 0, steps - 1);
        for (int r = 0; r < ROWS; r++) check_close(got[r], want[r], tol[r], "r16 steps", r16, 0, n);
        for (int64_t T = 1; T <= 9; T += 4) {
            size_t sb = aellm_kernel_matmul_scratch(r16, ROWS, n, T);
            assert_true(sb <= aellm_kernel_matmul_path_scratch(AELLM_MM_X8, q4, ROWS, n, T));
            void *scratch = malloc(sb ? sb : 1),
                 *sq = malloc(aellm_kernel_matmul_path_scratch(AELLM_MM_X8, q4, ROWS, n, T));
            float *X = random_floats(&rng, T * n, 1.0f), *y1 = malloc(T * ROWS * sizeof(float)),
                  *y0 = malloc(T * ROWS * sizeof(float));
            assert_int_equal(aellm_kernel_matmul_auto_path(r16, n, T), AELLM_MM_X8);
            aellm_kernel_matmul(r16, g, rb, ROWS, n, X, T, y1, scratch);
            aellm_kernel_matmul_path(AELLM_MM_X8, q4, w, rb, ROWS, n, X, T, y0, sq);
            if (memcmp(y0, y1, T * ROWS * sizeof(float)))
                fail_msg("r16 prefill n=%lld T=%lld differs from q4_0's x8 path", (long long)n,
                         (long long)T);
            free(scratch), free(sq), free(X), free(y0), free(y1);
        }
        free(wf), free(xf), free(w), free(x), free(g), free(wd), free(xd);
    }
}

/* W8A8 tiles of every ISA (scalar included) against a naive int32 dot of
 * the unpacked operands: equal. Partial groups and tiles, a row length that
 * is not a multiple of 4, and full-scale +-127 quants (the maddubs pairs'
 * extreme, 2 * 127 * 127 < 2^15). */
static void test_i8_tiles(void **state)
{
    (void)state;
    enum { N = 173, MAXR = 16 };
    aellm_rng rng;
    aellm_rng_seed(&rng, 6);
    size_t rb = aellm_dtype_row_size(AELLM_DTYPE_INT8, N);
    char *w = malloc(MAXR * rb), *x = malloc(AELLM_I8_TOKS * rb);
    int8_t *g = malloc((size_t)(N + 3) / 4 * MAXR * 4), *tile = malloc((size_t)(N + 3) / 4 * 16);
    assert_non_null(w), assert_non_null(x), assert_non_null(g), assert_non_null(tile);
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(AELLM_DTYPE_INT8);
    for (int rep = 0; rep < 4; rep++) {
        for (int r = 0; r < MAXR; r++)
            for (int i = 0; i < N; i++)
                w[r * rb + 4 + i] = (int8_t)(rep == 3 ? (i + r) % 2 ? 127 : -127
                                                      : (int)(aellm_rng_u64(&rng) % 255) - 127);
        for (int t = 0; t < AELLM_I8_TOKS; t++)
            for (int i = 0; i < N; i++)
                x[t * rb + 4 + i] =
                    (int8_t)(rep == 3 ? -127 : (int)(aellm_rng_u64(&rng) % 255) - 127);
        for (int isa = 0; isa < AELLM_ISA_COUNT; isa++) {
            const aellm_i8_kernel *k = ext->i8[isa];
            if (!k || !isa_runs(isa)) continue;
            for (int nr = 1; nr <= k->rows; nr += k->rows - 1)
                for (int nt = 1; nt <= AELLM_I8_TOKS; nt += AELLM_I8_TOKS - 1) {
                    int32_t xsum[AELLM_I8_TOKS], out[AELLM_I8_TOKS * MAXR];
                    aellm_i8_pack_w(k, g, w, rb, nr, N);
                    aellm_i8_pack_x(tile, xsum, x, rb, nt, N);
                    aellm_i8_args a = {.k4 = (N + 3) / 4, .w = g, .x = tile, .xsum = xsum};
                    k->tile(&a, out);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < nr; r++) {
                            int32_t want = 0;
                            for (int i = 0; i < N; i++)
                                want += (int8_t)w[r * rb + 4 + i] * (int8_t)x[t * rb + 4 + i];
                            if (out[t * k->rows + r] != want)
                                fail_msg("i8 tile %s nr=%d nt=%d (%d,%d): %d, want %d",
                                         aellm_isa_name((aellm_isa)isa), nr, nt, t, r,
                                         out[t * k->rows + r], want);
                        }
                }
        }
    }
    free(w), free(x), free(g), free(tile);
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
                aellm_x8_pack_w(type, g, w, rb, 0, nr, nb);
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

/* Float tiles of every ISA against a naive double sum of the same packed
 * operands (a panel of rows AELLM_FT_KC apart, tokens k-major): one k step,
 * an odd count and a whole block, each written fresh and then added to. */
static void test_float_tiles(void **state)
{
    (void)state;
    aellm_rng rng;
    aellm_rng_seed(&rng, 9);
    const aellm_kernel_traits_ext *ext = aellm_kernel_traits_ext_get(AELLM_DTYPE_F16);
    static const int64_t kcs[] = {1, 37, AELLM_FT_KC};
    for (int isa = 0; isa < AELLM_ISA_COUNT; isa++) {
        const aellm_ftile_kernel *k = ext->ftile[isa];
        if (!k || !isa_runs(isa)) continue;
        float *w = random_floats(&rng, (int64_t)k->rows * AELLM_FT_KC, 1.0f);
        float *x = random_floats(&rng, (int64_t)k->toks * AELLM_FT_KC, 1.0f);
        float *acc = malloc((size_t)(k->rows * k->toks) * sizeof(float));
        double *want = malloc((size_t)(k->rows * k->toks) * sizeof(double));
        double *mag = malloc((size_t)(k->rows * k->toks) * sizeof(double));
        assert_non_null(acc), assert_non_null(want), assert_non_null(mag);
        for (int c = 0; c < 3; c++)
            for (int add = 0; add < 2; add++) {
                for (int i = 0; i < k->rows * k->toks; i++)
                    mag[i] = fabs(want[i] = add ? (acc[i] = (float)(i % 7) - 3.0f) : 0.0);
                for (int r = 0; r < k->rows; r++)
                    for (int t = 0; t < k->toks; t++)
                        for (int64_t i = 0; i < kcs[c]; i++) {
                            double p = (double)w[r * AELLM_FT_KC + i] * x[i * k->toks + t];
                            want[r * k->toks + t] += p, mag[r * k->toks + t] += fabs(p);
                        }
                aellm_ftile_args a = {.kc = kcs[c], .w = w, .x = x, .acc = acc, .add = add};
                k->tile(&a);
                for (int r = 0; r < k->rows; r++)
                    for (int t = 0; t < k->toks; t++) {
                        /* the f32 recursive-summation bound: kc eps sum |terms| */
                        int i = r * k->toks + t;
                        check_close(acc[i], want[i], (double)(kcs[c] + 1) * 6e-8 * mag[i],
                                    "float tile", AELLM_DTYPE_F32, isa, kcs[c]);
                    }
            }
        free(w), free(x), free(acc), free(want), free(mag);
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
        cmocka_unit_test(test_q4_0_r16),
        cmocka_unit_test(test_x8_tiles),
        cmocka_unit_test(test_i8_tiles),
        cmocka_unit_test(test_float_tiles),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
