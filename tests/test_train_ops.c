/* Training operations (src/techniques/finetune/ops.c) against references
 * written here: each op's forward equals a naive double-precision forward,
 * and each backward equals the central finite difference of that double
 * forward (h = 1e-5) of the loss L = sum(g * out) for a fixed random g, so
 * dL/dout = g. Tolerance: |analytic - fd| <= 2e-5 + 2e-4 |fd| (the analytic
 * gradients are float). Shapes small and odd on purpose (T = 5, GQA 4/2). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "techniques/finetune/ops.h"

enum { B = 2, T = 5, C = 8, OC = 6, NH = 4, NKV = 2, HD = 4, V = 11 };
#define BT   (B * T)
#define H_FD 1e-5

static uint64_t rng_state = 42;
static double urand(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static void fill(double *d, float *f, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) {
        d[i] = (float)(urand() * scale); /* representable in float: both sides see one value */
        if (f) f[i] = (float)d[i];
    }
}

static double weighted(const double *out, const double *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += g[i] * out[i];
    return s;
}

static void check_close(const char *what, const float *got, const double *ref, size_t n,
                        double abs_tol, double rel_tol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        if (err > abs_tol + rel_tol * fabs(ref[i]))
            fail_msg("%s[%zu]: %.9g, reference %.9g", what, i, (double)got[i], ref[i]);
        worst = fmax(worst, err);
    }
    printf("  %-22s max |diff| %.2e over %zu\n", what, worst, n);
}

/* Central differences of L(x) = fn(ctx) over every element of x (double). */
typedef double (*loss_fn)(void *ctx);
static void finite_diff(double *x, size_t n, loss_fn fn, void *ctx, double *grad)
{
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + H_FD;
        double up = fn(ctx);
        x[i] = keep - H_FD;
        double down = fn(ctx);
        x[i] = keep;
        grad[i] = (up - down) / (2 * H_FD);
    }
}

#define GRAD_TOL 2e-5, 2e-4

/* ---- RMSNorm ---- */
typedef struct {
    double x[BT * C], w[C], g[BT * C];
} norm_case;

static void ref_rmsnorm(double *out, const double *x, const double *w)
{
    for (int i = 0; i < BT; i++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += x[i * C + c] * x[i * C + c];
        double r = 1.0 / sqrt(ss / C + 1e-5);
        for (int c = 0; c < C; c++) out[i * C + c] = w[c] * x[i * C + c] * r;
    }
}

static double norm_loss(void *ctx)
{
    norm_case *k = ctx;
    double out[BT * C];
    ref_rmsnorm(out, k->x, k->w);
    return weighted(out, k->g, BT * C);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    norm_case k;
    float x[BT * C], w[C], g[BT * C], out[BT * C], rstd[BT], dx[BT * C] = {0}, dw[C] = {0};
    fill(k.x, x, BT * C, 2.0);
    fill(k.w, w, C, 1.5);
    fill(k.g, g, BT * C, 1.0);
    double ref[BT * C], fdx[BT * C], fdw[C];
    ref_rmsnorm(ref, k.x, k.w);
    train_rmsnorm_forward(out, rstd, x, w, BT, C, 1e-5f);
    check_close("rmsnorm out", out, ref, BT * C, 1e-6, 1e-5);
    train_rmsnorm_backward(dx, dw, g, x, w, rstd, BT, C);
    finite_diff(k.x, BT * C, norm_loss, &k, fdx);
    finite_diff(k.w, C, norm_loss, &k, fdw);
    check_close("rmsnorm dx", dx, fdx, BT * C, GRAD_TOL);
    check_close("rmsnorm dw", dw, fdw, C, GRAD_TOL);
}

/* ---- linear ---- */
typedef struct {
    double x[BT * C], w[OC * C], g[BT * OC];
} mm_case;

static void ref_matmul(double *out, const double *x, const double *w)
{
    for (int i = 0; i < BT; i++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += x[i * C + c] * w[o * C + c];
            out[i * OC + o] = s;
        }
}

static double mm_loss(void *ctx)
{
    mm_case *k = ctx;
    double out[BT * OC];
    ref_matmul(out, k->x, k->w);
    return weighted(out, k->g, BT * OC);
}

static void test_matmul(void **state)
{
    (void)state;
    mm_case k;
    float x[BT * C], w[OC * C], g[BT * OC], out[BT * OC], dx[BT * C], dw[OC * C];
    fill(k.x, x, BT * C, 1.0);
    fill(k.w, w, OC * C, 1.0);
    fill(k.g, g, BT * OC, 1.0);
    double ref[BT * OC], fdx[BT * C], fdw[OC * C];
    ref_matmul(ref, k.x, k.w);
    train_matmul_forward(out, x, w, BT, C, OC);
    check_close("matmul out", out, ref, BT * OC, 1e-5, 1e-5);
    /* backward adds: start from a known value */
    for (int i = 0; i < BT * C; i++) dx[i] = 0.5f;
    for (int i = 0; i < OC * C; i++) dw[i] = -0.25f;
    train_matmul_backward(dx, dw, g, x, w, BT, C, OC);
    finite_diff(k.x, BT * C, mm_loss, &k, fdx);
    finite_diff(k.w, OC * C, mm_loss, &k, fdw);
    for (int i = 0; i < BT * C; i++) fdx[i] += 0.5;
    for (int i = 0; i < OC * C; i++) fdw[i] -= 0.25;
    check_close("matmul dx (added)", dx, fdx, BT * C, GRAD_TOL);
    check_close("matmul dw (added)", dw, fdw, OC * C, GRAD_TOL);
}

/* ---- RoPE ---- */
typedef struct {
    double x[BT * NH * HD], g[BT * NH * HD];
} rope_case;

static void ref_rope(double *out, const double *x, int H)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < HD / 2; i++) {
                    /* the angle as the engine computes it, in float, then exact */
                    float freq = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HD);
                    double a = (double)((float)t * freq);
                    size_t at = (((size_t)b * T + t) * H + h) * HD + 2 * i;
                    out[at] = x[at] * cos(a) - x[at + 1] * sin(a);
                    out[at + 1] = x[at] * sin(a) + x[at + 1] * cos(a);
                }
}

static double rope_loss(void *ctx)
{
    rope_case *k = ctx;
    double out[BT * NH * HD];
    ref_rope(out, k->x, NH);
    return weighted(out, k->g, BT * NH * HD);
}

static void test_rope(void **state)
{
    (void)state;
    enum { N = BT * NH * HD };
    rope_case k;
    float x[N], g[N], cs[T * HD / 2], sn[T * HD / 2];
    fill(k.x, x, N, 1.0);
    fill(k.g, g, N, 1.0);
    double ref[N], fd[N];
    train_rope_tables(cs, sn, T, HD, 10000.0f);
    ref_rope(ref, k.x, NH);
    train_rope_forward(x, cs, sn, B, T, NH, HD);
    check_close("rope out", x, ref, N, 1e-6, 1e-5);
    train_rope_backward(g, cs, sn, B, T, NH, HD); /* g becomes dx */
    finite_diff(k.x, N, rope_loss, &k, fd);
    check_close("rope dx", g, fd, N, GRAD_TOL);
}

/* ---- attention ---- */
typedef struct {
    double q[BT * NH * HD], k[BT * NH * HD], v[BT * NH * HD], g[BT * NH * HD]; /* room for MHA */
    int nkv;
} attn_case;

static void ref_attention(double *out, const double *q, const double *k, const double *v, int nkv)
{
    int group = NH / nkv;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double s[T], max = -1e300, sum = 0;
                const double *qt = q + (((size_t)b * T + t) * NH + h) * HD;
                for (int u = 0; u <= t; u++) {
                    const double *ku = k + (((size_t)b * T + u) * nkv + h / group) * HD;
                    s[u] = 0;
                    for (int d = 0; d < HD; d++) s[u] += qt[d] * ku[d];
                    s[u] /= sqrt((double)HD);
                    max = fmax(max, s[u]);
                }
                for (int u = 0; u <= t; u++) sum += s[u] = exp(s[u] - max);
                double *o = out + (((size_t)b * T + t) * NH + h) * HD;
                for (int d = 0; d < HD; d++) o[d] = 0;
                for (int u = 0; u <= t; u++) {
                    const double *vu = v + (((size_t)b * T + u) * nkv + h / group) * HD;
                    for (int d = 0; d < HD; d++) o[d] += s[u] / sum * vu[d];
                }
            }
}

static double attn_loss(void *ctx)
{
    attn_case *c = ctx;
    double out[BT * NH * HD];
    ref_attention(out, c->q, c->k, c->v, c->nkv);
    return weighted(out, c->g, BT * NH * HD);
}

static void attention_case(int nkv)
{
    enum { NQ = BT * NH * HD };
    int nk = BT * nkv * HD;
    printf(" %d query heads, %d key/value heads\n", NH, nkv);
    attn_case c = {.nkv = nkv};
    float q[NQ], k[BT * NH * HD], v[BT * NH * HD], g[NQ], out[NQ], att[B * NH * T * T];
    float dq[NQ] = {0}, dk[BT * NH * HD] = {0}, dv[BT * NH * HD] = {0}, scratch[T * T * 64];
    fill(c.q, q, NQ, 1.5);
    fill(c.k, k, (size_t)nk, 1.5);
    fill(c.v, v, (size_t)nk, 1.0);
    fill(c.g, g, NQ, 1.0);
    double ref[NQ], fdq[NQ], fdk[BT * NH * HD], fdv[BT * NH * HD];
    ref_attention(ref, c.q, c.k, c.v, nkv);
    train_attention_forward(out, att, q, k, v, B, T, NH, nkv, HD);
    check_close("attention out", out, ref, NQ, 1e-6, 1e-5);
    assert_true(train_attention_scratch(T, 64) <= T * T * 64);
    train_attention_backward(dq, dk, dv, g, att, q, k, v, B, T, NH, nkv, HD, scratch);
    finite_diff(c.q, NQ, attn_loss, &c, fdq);
    finite_diff(c.k, (size_t)nk, attn_loss, &c, fdk);
    finite_diff(c.v, (size_t)nk, attn_loss, &c, fdv);
    check_close("attention dq", dq, fdq, NQ, GRAD_TOL);
    check_close("attention dk", dk, fdk, (size_t)nk, GRAD_TOL);
    check_close("attention dv", dv, fdv, (size_t)nk, GRAD_TOL);
}

static void test_attention_gqa_mha_mqa(void **state)
{
    (void)state;
    attention_case(2); /* GQA */
    attention_case(4); /* MHA */
    attention_case(1); /* MQA */
}

/* ---- SwiGLU ---- */
typedef struct {
    double gate[BT * C], up[BT * C], g[BT * C];
} glu_case;

static double glu_loss(void *ctx)
{
    glu_case *k = ctx;
    double s = 0;
    for (int i = 0; i < BT * C; i++) s += k->g[i] * k->gate[i] / (1 + exp(-k->gate[i])) * k->up[i];
    return s;
}

static void test_swiglu(void **state)
{
    (void)state;
    glu_case k;
    float gate[BT * C], up[BT * C], g[BT * C], out[BT * C], dg[BT * C] = {0}, du[BT * C] = {0};
    fill(k.gate, gate, BT * C, 4.0);
    fill(k.up, up, BT * C, 1.0);
    fill(k.g, g, BT * C, 1.0);
    double ref[BT * C], fdg[BT * C], fdu[BT * C];
    for (int i = 0; i < BT * C; i++) ref[i] = k.gate[i] / (1 + exp(-k.gate[i])) * k.up[i];
    train_swiglu_forward(out, gate, up, BT * C);
    check_close("swiglu out", out, ref, BT * C, 1e-6, 1e-5);
    train_swiglu_backward(dg, du, g, gate, up, BT * C);
    finite_diff(k.gate, BT * C, glu_loss, &k, fdg);
    finite_diff(k.up, BT * C, glu_loss, &k, fdu);
    check_close("swiglu dgate", dg, fdg, BT * C, GRAD_TOL);
    check_close("swiglu dup", du, fdu, BT * C, GRAD_TOL);
}

/* ---- embedding ---- */
static void test_embedding(void **state)
{
    (void)state;
    enum { VOC = 7 };
    int32_t tok[BT] = {3, 1, 3, 0, 6, 2, 3, 5, 1, 4}; /* repeats add into one row */
    double wd[VOC * C], gd[BT * C];
    float w[VOC * C], g[BT * C], out[BT * C], dw[VOC * C] = {0};
    fill(wd, w, VOC * C, 1.0);
    fill(gd, g, BT * C, 1.0);
    train_embed_forward(out, tok, w, BT, C);
    for (int i = 0; i < BT; i++) assert_memory_equal(out + i * C, w + tok[i] * C, C * 4);
    train_embed_backward(dw, g, tok, BT, C);
    double ref[VOC * C] = {0}; /* the loss is linear in w: its gradient is exact */
    for (int i = 0; i < BT; i++)
        for (int c = 0; c < C; c++) ref[tok[i] * C + c] += gd[i * C + c];
    check_close("embedding dw", dw, ref, VOC * C, 1e-6, 1e-6);
}

/* ---- cross-entropy ---- */
typedef struct {
    double z[BT * V];
    float weight[BT];
    int32_t target[BT];
    int weighted;
} ce_case;

static double ce_loss(void *ctx)
{
    ce_case *k = ctx;
    double sum = 0, wsum = 0;
    for (int i = 0; i < BT; i++) {
        double m = -1e300, s = 0;
        for (int c = 0; c < V; c++) m = fmax(m, k->z[i * V + c]);
        for (int c = 0; c < V; c++) s += exp(k->z[i * V + c] - m);
        double w = k->weighted ? k->weight[i] : 1.0;
        sum += w * (log(s) + m - k->z[i * V + k->target[i]]);
        wsum += w;
    }
    return sum / wsum;
}

static void ce_case_run(int with_weights)
{
    ce_case k = {.weighted = with_weights};
    float z[BT * V], losses[BT];
    fill(k.z, z, BT * V, 3.0);
    for (int i = 0; i < BT; i++) {
        k.target[i] = (int32_t)((i * 7 + 3) % V);
        k.weight[i] = i % 3 == 0 ? 0.0f : 1.0f; /* prompt tokens carry no loss */
    }
    double fd[BT * V];
    double loss =
        train_crossentropy_forward(z, losses, k.target, with_weights ? k.weight : NULL, BT, V);
    assert_true(fabs(loss - ce_loss(&k)) < 1e-6);
    train_crossentropy_backward(z, k.target, with_weights ? k.weight : NULL, BT, V);
    finite_diff(k.z, BT * V, ce_loss, &k, fd);
    check_close(with_weights ? "crossentropy dz (mask)" : "crossentropy dz", z, fd, BT * V,
                GRAD_TOL);
}

static void test_crossentropy(void **state)
{
    (void)state;
    ce_case_run(0);
    ce_case_run(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention_gqa_mha_mqa),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_crossentropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
