/* A linear map with its adapter (src/techniques/finetune/linear.c): for the
 * dense base, LoRA, RSLoRA, DoRA and QLoRA (NF4 base) the forward equals a
 * double reference and every gradient a central difference of it (DoRA's with
 * the row norm held at its value, as the method detaches it); LoRA with B = 0
 * and DoRA at its initialisation give the base's output exactly; the merged
 * weight gives the unmerged output; RSLoRA differs from LoRA only in scale. */
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
#include "techniques/finetune/linear.h"

enum { BT = 6, C = 70, OC = 66, R = 3 }; /* widths past a 64-row tile and an NF4 group */

static uint64_t rng_state = 11;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

typedef struct {
    float x[BT * C], w[OC * C], A[R * C], B[OC * R], m[OC], g[BT * OC];
    float dx[BT * C], dw[OC * C], dA[R * C], dB[OC * R], dm[OC];
    float xa[BT * R], V[OC * C], norm[OC], y0[BT * OC], y[BT * OC], drop[BT * C], xd[BT * C];
    float scratch[64 * C + BT * OC + OC * C + BT * R + BT * C];
    uint8_t wq[OC * 128];
    train_linear lin;
    double dnorm[OC]; /* DoRA's detached norm for the reference */
} fixture;

static void setup_fixture(fixture *f, train_adapter_kind kind, float scale, int quantized,
                          int trainable_base)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < BT * C; i++) f->x[i] = (float)urand();
    for (int i = 0; i < OC * C; i++) f->w[i] = (float)(0.3 * urand());
    for (int i = 0; i < R * C; i++) f->A[i] = (float)(0.3 * urand());
    for (int i = 0; i < OC * R; i++) f->B[i] = (float)(0.3 * urand());
    for (int i = 0; i < BT * OC; i++) f->g[i] = (float)urand();
    train_linear *l = &f->lin;
    *l = (train_linear){.C = C, .OC = OC, .w = f->w, .dw = trainable_base ? f->dw : NULL};
    if (quantized) {
        l->w = NULL;
        l->wq_type = AELLM_DTYPE_NF4;
        l->wq_row_bytes = aellm_dtype_row_size(AELLM_DTYPE_NF4, C);
        assert_true(l->wq_row_bytes * OC <= sizeof(f->wq));
        for (int o = 0; o < OC; o++)
            aellm_dtype_traits_get(AELLM_DTYPE_NF4)
                ->from_float(f->w + (size_t)o * C, f->wq + (size_t)o * l->wq_row_bytes, C);
        l->wq = f->wq;
        /* the reference uses the dequantized base */
        for (int o = 0; o < OC; o++)
            aellm_dtype_traits_get(AELLM_DTYPE_NF4)
                ->to_float(f->wq + (size_t)o * l->wq_row_bytes, f->w + (size_t)o * C, C);
    }
    l->ad = (train_adapter){.kind = kind,
                            .r = R,
                            .scale = scale,
                            .A = f->A,
                            .B = f->B,
                            .dA = f->dA,
                            .dB = f->dB,
                            .xa = f->xa};
    if (kind == TRAIN_ADAPTER_DORA) {
        l->ad.m = f->m, l->ad.dm = f->dm, l->ad.V = f->V, l->ad.norm = f->norm, l->ad.y0 = f->y0;
        for (int o = 0; o < OC; o++) f->m[o] = (float)(1.0 + 0.5 * urand());
    }
}

/* ---- double reference ---- */
static void ref_weight(const fixture *f, const double *w, const double *A, const double *B,
                       const double *m, double *Wp, int detached)
{
    const train_adapter *a = &f->lin.ad;
    for (int o = 0; o < OC; o++) {
        double ss = 0;
        for (int c = 0; c < C; c++) {
            double v = w[o * C + c];
            if (a->kind != TRAIN_ADAPTER_NONE)
                for (int k = 0; k < R; k++) v += a->scale * B[o * R + k] * A[k * C + c];
            Wp[o * C + c] = v;
            ss += v * v;
        }
        if (a->kind == TRAIN_ADAPTER_DORA) {
            double n = detached ? f->dnorm[o] : sqrt(ss);
            for (int c = 0; c < C; c++) Wp[o * C + c] *= m[o] / n;
        }
    }
}

typedef struct {
    const fixture *f;
    double x[BT * C], w[OC * C], A[R * C], B[OC * R], m[OC];
} ref_state;

/* LoRA with dropout: y = x W^T + s (x * drop) A^T B^T, the mask fixed. */
static double ref_loss_dropout(ref_state *s)
{
    const train_adapter *a = &s->f->lin.ad;
    double L = 0;
    for (int t = 0; t < BT; t++) {
        double xa[R] = {0};
        for (int k = 0; k < R; k++)
            for (int c = 0; c < C; c++)
                xa[k] += s->A[k * C + c] * s->x[t * C + c] * a->drop[t * C + c];
        for (int o = 0; o < OC; o++) {
            double y = 0;
            for (int c = 0; c < C; c++) y += s->x[t * C + c] * s->w[o * C + c];
            for (int k = 0; k < R; k++) y += a->scale * s->B[o * R + k] * xa[k];
            L += s->f->g[t * OC + o] * y;
        }
    }
    return L;
}

static double ref_loss(void *ctx)
{
    ref_state *s = ctx;
    if (s->f->lin.ad.dropped) return ref_loss_dropout(s);
    static double Wp[OC * C];
    ref_weight(s->f, s->w, s->A, s->B, s->m, Wp, 1);
    double L = 0;
    for (int t = 0; t < BT; t++)
        for (int o = 0; o < OC; o++) {
            double y = 0;
            for (int c = 0; c < C; c++) y += s->x[t * C + c] * Wp[o * C + c];
            L += s->f->g[t * OC + o] * y;
        }
    return L;
}

static void check_grad(const char *what, double *p, const float *an, int n, ref_state *s)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double keep = p[i], h = 1e-5;
        p[i] = keep + h;
        double up = ref_loss(s);
        p[i] = keep - h;
        double down = ref_loss(s);
        p[i] = keep;
        double fd = (up - down) / (2 * h);
        if (fabs(an[i] - fd) > 1e-4 + 1e-4 * fabs(fd))
            fail_msg("%s[%d]: backward %.8g, finite difference %.8g", what, i, an[i], fd);
        worst = fmax(worst, fabs(an[i] - fd));
    }
    printf("    %-4s max |backward - fd| %.1e\n", what, worst);
}

static void run_case_dropout(const char *name, train_adapter_kind kind, float scale, int quantized,
                             int trainable_base, float dropout)
{
    printf("  %s\n", name);
    static fixture f;
    setup_fixture(&f, kind, scale, quantized, trainable_base);
    if (dropout > 0) {
        f.lin.ad.dropout = dropout, f.lin.ad.training = 1, f.lin.ad.drop_seed = 77;
        f.lin.ad.drop = f.drop, f.lin.ad.xd = f.xd;
    }
    train_linear_forward(&f.lin, f.y, f.x, BT, f.scratch);
    assert_true(train_linear_scratch(&f.lin, BT) <= sizeof(f.scratch) / sizeof(float));
    static ref_state s;
    s.f = &f;
    for (int i = 0; i < BT * C; i++) s.x[i] = f.x[i];
    for (int i = 0; i < OC * C; i++) s.w[i] = f.w[i];
    for (int i = 0; i < R * C; i++) s.A[i] = f.A[i];
    for (int i = 0; i < OC * R; i++) s.B[i] = f.B[i];
    for (int i = 0; i < OC; i++) s.m[i] = f.m[i], f.dnorm[i] = f.norm[i];
    /* forward against the reference (with the exact norm) */
    static double Wp[OC * C];
    ref_weight(&f, s.w, s.A, s.B, s.m, Wp, 0);
    double worst = 0;
    for (int t = 0; t < BT && !f.lin.ad.dropped; t++)
        for (int o = 0; o < OC; o++) {
            double y = 0;
            for (int c = 0; c < C; c++) y += s.x[t * C + c] * Wp[o * C + c];
            worst = fmax(worst, fabs(y - f.y[t * OC + o]));
        }
    if (f.lin.ad.dropped) { /* the loss of the forward's output against the reference */
        double L = 0, dropped = 0;
        for (int i = 0; i < BT * OC; i++) L += (double)f.g[i] * f.y[i];
        for (int i = 0; i < BT * C; i++) dropped += f.drop[i] == 0;
        worst = fabs(L - ref_loss_dropout(&s)) / (1 + fabs(L));
        printf("    dropout: %.0f%% of inputs dropped\n", 100 * dropped / (BT * C));
        assert_true(dropped > 0.2 * BT * C && dropped < 0.4 * BT * C);
    }
    printf("    forward max |diff| %.1e\n", worst);
    assert_true(worst < 1e-4);
    train_linear_backward(&f.lin, f.dx, f.g, f.x, BT, f.scratch);
    check_grad("dx", s.x, f.dx, BT * C, &s);
    if (kind != TRAIN_ADAPTER_NONE) {
        check_grad("dA", s.A, f.dA, R * C, &s);
        check_grad("dB", s.B, f.dB, OC * R, &s);
    }
    if (kind == TRAIN_ADAPTER_DORA) check_grad("dm", s.m, f.dm, OC, &s);
    if (trainable_base) check_grad("dW", s.w, f.dw, OC * C, &s);
}

static void run_case(const char *name, train_adapter_kind kind, float scale, int quantized,
                     int trainable_base)
{
    run_case_dropout(name, kind, scale, quantized, trainable_base, 0.0f);
}

static void test_gradients(void **state)
{
    (void)state;
    run_case("dense, trainable (full fine-tuning)", TRAIN_ADAPTER_NONE, 0, 0, 1);
    run_case("LoRA, alpha/r = 2", TRAIN_ADAPTER_LORA, 2.0f, 0, 0);
    run_case("RSLoRA, alpha/sqrt(r)", TRAIN_ADAPTER_LORA, 6.0f / sqrtf(R), 0, 0);
    run_case("QLoRA: NF4 base in tiles", TRAIN_ADAPTER_LORA, 2.0f, 1, 0);
    run_case("DoRA (norm detached)", TRAIN_ADAPTER_DORA, 2.0f, 0, 0);
    run_case_dropout("LoRA with dropout 0.3 (the mask held)", TRAIN_ADAPTER_LORA, 2.0f, 0, 0, 0.3f);
}

static void test_identities(void **state)
{
    (void)state;
    static fixture f;
    static float base[BT * OC], y[BT * OC], y2[BT * OC], merged[OC * C];
    /* LoRA with B = 0 is the base, to the bit */
    setup_fixture(&f, TRAIN_ADAPTER_NONE, 0, 0, 0);
    train_linear_forward(&f.lin, base, f.x, BT, f.scratch);
    f.lin.ad.kind = TRAIN_ADAPTER_LORA, f.lin.ad.scale = 2.0f;
    memset(f.B, 0, sizeof(f.B));
    train_linear_forward(&f.lin, y, f.x, BT, f.scratch);
    assert_memory_equal(y, base, sizeof(y));
    /* DoRA at initialisation (B = 0, m = row norms of W) is the base */
    f.lin.ad.kind = TRAIN_ADAPTER_DORA;
    f.lin.ad.m = f.m, f.lin.ad.V = f.V, f.lin.ad.norm = f.norm, f.lin.ad.y0 = f.y0;
    for (int o = 0; o < OC; o++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)f.w[o * C + c] * f.w[o * C + c];
        f.m[o] = (float)sqrt(ss);
    }
    train_linear_forward(&f.lin, y, f.x, BT, f.scratch);
    for (int i = 0; i < BT * OC; i++)
        assert_true(fabsf(y[i] - base[i]) <= 1e-5f * (1 + fabsf(base[i])));
    /* merged equals unmerged, for LoRA and DoRA with B != 0 */
    for (int k = 0; k < 2; k++) {
        setup_fixture(&f, k ? TRAIN_ADAPTER_DORA : TRAIN_ADAPTER_LORA, 1.5f, 0, 0);
        train_linear_forward(&f.lin, y, f.x, BT, f.scratch);
        train_linear_effective(&f.lin, merged);
        train_linear m = {.C = C, .OC = OC, .w = merged};
        train_linear_forward(&m, y2, f.x, BT, f.scratch);
        double worst = 0;
        for (int i = 0; i < BT * OC; i++) worst = fmax(worst, fabs(y[i] - y2[i]));
        printf("  %s merged vs unmerged: max |diff| %.1e\n", k ? "DoRA" : "LoRA", worst);
        assert_true(worst <= 1e-5);
    }
    /* RSLoRA and LoRA differ only in the scale: the update is sqrt(r) times LoRA's
       at the same alpha */
    setup_fixture(&f, TRAIN_ADAPTER_NONE, 0, 0, 0);
    train_linear_forward(&f.lin, base, f.x, BT, f.scratch);
    f.lin.ad.kind = TRAIN_ADAPTER_LORA;
    f.lin.ad.scale = 8.0f / R; /* LoRA, alpha 8 */
    train_linear_forward(&f.lin, y, f.x, BT, f.scratch);
    f.lin.ad.scale = 8.0f / sqrtf(R); /* RSLoRA, alpha 8 */
    train_linear_forward(&f.lin, y2, f.x, BT, f.scratch);
    for (int i = 0; i < BT * OC; i++) {
        float want = (y[i] - base[i]) * sqrtf(R);
        assert_true(fabsf((y2[i] - base[i]) - want) <= 1e-5f * (1 + fabsf(want)));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_identities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
