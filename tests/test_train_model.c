/* The trainable model (src/techniques/finetune/train_model.c): its loss
 * equals a naive double-precision forward written here and the inference
 * engine's cross-entropy on the same tokens (stories260K, <= 1e-5 relative);
 * its gradients equal central finite differences of the double forward for
 * samples of every parameter tensor, on small random models with GQA (tied
 * and separate output, with and without per-position loss weights). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/aellm.h"
#include "aellm/arch.h"
#include "model/model.h"
#include "techniques/finetune/train_model.h"

#define STORIES     AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin"
#define STORIES_TOK AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"

static uint64_t rng_state = 7;
static double urand(void) /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

/* ---- the naive double forward ---- */
typedef struct {
    const train_shape *s;
    double *p[TP_COUNT]; /* double copies of the parameters */
    const int32_t *in, *tg;
    const float *weight;
    double *psum, *cnt;  /* MoE: (L, E) router probabilities and routed slots, summed */
    const int *rope_idx; /* MLA: the training model's rotary pairs */
    double balance;
} ref_model;

static double *vec(size_t n)
{
    return calloc(n ? n : 1, sizeof(double));
}

static void ref_norm(double *o, const double *x, const double *w, int C, double eps)
{
    double ss = 0;
    for (int c = 0; c < C; c++) ss += x[c] * x[c];
    double r = 1 / sqrt(ss / C + eps);
    for (int c = 0; c < C; c++) o[c] = w[c] * x[c] * r;
}

static void ref_lin(double *y, const double *x, const double *W, int C, int OC)
{
    for (int o = 0; o < OC; o++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += W[(size_t)o * C + c] * x[c];
        y[o] = s;
    }
}

static void ref_rope(double *v, int H, int hd, int t, double base)
{
    for (int h = 0; h < H; h++)
        for (int i = 0; i < hd / 2; i++) {
            float freq = 1.0f / powf((float)base, (float)(2 * i) / (float)hd);
            double a = (double)((float)t * freq), *p = v + h * hd + 2 * i, x0 = p[0], x1 = p[1];
            p[0] = x0 * cos(a) - x1 * sin(a);
            p[1] = x0 * sin(a) + x1 * cos(a);
        }
}

/* MoE: scales each expert's hidden units g (E * h) by the token's
 * renormalised top-k weight (0 when not chosen); counts for the balance
 * loss. The top k by repeated arg-max, ties to the lower index. */
static void ref_route(const ref_model *r, int l, const double *xn, double *g)
{
    const train_shape *s = r->s;
    int E = s->E, C = s->C;
    double p[16], mx = -1e300, sum = 0, S = 0;
    int chosen[16] = {0};
    ref_lin(p, xn, r->p[TP_ROUTER] + (size_t)l * E * C, C, E);
    for (int e = 0; e < E; e++) mx = fmax(mx, p[e]);
    for (int e = 0; e < E; e++) sum += p[e] = exp(p[e] - mx);
    for (int e = 0; e < E; e++) p[e] /= sum, r->psum[l * E + e] += p[e];
    for (int k = 0; k < s->K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!chosen[e] && (best < 0 || p[e] > p[best])) best = e;
        chosen[best] = 1;
        S += p[best];
        r->cnt[l * E + best] += 1;
    }
    for (int e = 0; e < E; e++)
        for (int j = 0; j < s->h; j++) g[e * s->h + j] *= chosen[e] ? p[e] / S : 0.0;
}

/* Latent attention at position t: rotary keys and the latent from xn, keys
 * [rotary ; W_uk c] and values W_uv c, the kept pairs turned (queries too). */
static void turn_pair(double *p, int i, int t, int hd, double base)
{
    float freq = 1.0f / powf((float)base, (float)(2 * i) / (float)hd);
    double a = (double)((float)t * freq), x0 = p[0], x1 = p[1];
    p[0] = x0 * cos(a) - x1 * sin(a);
    p[1] = x0 * sin(a) + x1 * cos(a);
}

static void ref_latent(const ref_model *r, int l, int t, const double *xn, double *q, double *k,
                       double *v)
{
    const train_shape *s = r->s;
    int C = s->C, hd = s->hd, dr = s->DR, dn = hd - dr, NKV = s->NKV, R = s->R, pairs = dr / 2;
    double lat[64], kr[64], kn[256];
    const int *idx = r->rope_idx + (size_t)l * NKV * pairs;
    ref_lin(kr, xn, r->p[TP_WK] + (size_t)l * NKV * dr * C, C, NKV * dr);
    ref_lin(lat, xn, r->p[TP_WV] + (size_t)l * R * C, C, R);
    ref_lin(kn, lat, r->p[TP_W_UK] + (size_t)l * NKV * dn * R, R, NKV * dn);
    ref_lin(v, lat, r->p[TP_W_UV] + (size_t)l * NKV * hd * R, R, NKV * hd);
    for (int h = 0; h < s->NH; h++)
        for (int j = 0; j < pairs; j++)
            turn_pair(q + h * hd + 2 * j, idx[(h / (s->NH / NKV)) * pairs + j], t, hd,
                      s->rope_base);
    for (int g = 0; g < NKV; g++) {
        for (int j = 0; j < pairs; j++)
            turn_pair(kr + g * dr + 2 * j, idx[g * pairs + j], t, hd, s->rope_base);
        memcpy(k + g * hd, kr + g * dr, (size_t)dr * sizeof(double));
        memcpy(k + g * hd + dr, kn + g * dn, (size_t)dn * sizeof(double));
    }
}

/* The loss of one sequence b, summed with weights; *wsum gets the weights. */
static double ref_sequence(const ref_model *r, int b, double *wsum)
{
    const train_shape *s = r->s;
    int T = s->T, C = s->C, H = s->H, hd = s->hd, qd = s->NH * hd, kvd = s->NKV * hd;
    double *x = vec((size_t)T * C), *xn = vec(C), *K = vec((size_t)T * kvd),
           *Vv = vec((size_t)T * kvd), *Q = vec((size_t)T * qd), *o = vec(qd), *tmp = vec(C),
           *g = vec(H), *u = vec(H), *lg = vec(s->V), *sc = vec(T);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) x[t * C + c] = r->p[TP_WTE][(size_t)r->in[b * T + t] * C + c];
    for (int l = 0; l < s->L; l++) {
        for (int t = 0; t < T; t++) {
            ref_norm(xn, x + t * C, r->p[TP_ATTN_NORM] + l * C, C, s->eps);
            ref_lin(Q + t * qd, xn, r->p[TP_WQ] + (size_t)l * qd * C, C, qd);
            if (s->R) {
                ref_latent(r, l, t, xn, Q + t * qd, K + t * kvd, Vv + t * kvd);
                continue;
            }
            ref_lin(K + t * kvd, xn, r->p[TP_WK] + (size_t)l * kvd * C, C, kvd);
            ref_lin(Vv + t * kvd, xn, r->p[TP_WV] + (size_t)l * kvd * C, C, kvd);
            ref_rope(Q + t * qd, s->NH, hd, t, s->rope_base);
            ref_rope(K + t * kvd, s->NKV, hd, t, s->rope_base);
        }
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < s->NH; h++) {
                int kh = h / (s->NH / s->NKV);
                double mx = -1e300, sum = 0;
                for (int v = 0; v <= t; v++) {
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += Q[t * qd + h * hd + i] * K[v * kvd + kh * hd + i];
                    sc[v] = d / sqrt((double)hd);
                    mx = fmax(mx, sc[v]);
                }
                for (int v = 0; v <= t; v++) sum += sc[v] = exp(sc[v] - mx);
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int v = 0; v <= t; v++) a += sc[v] / sum * Vv[v * kvd + kh * hd + i];
                    o[h * hd + i] = a;
                }
            }
            ref_lin(tmp, o, r->p[TP_WO] + (size_t)l * C * qd, qd, C);
            for (int c = 0; c < C; c++) x[t * C + c] += tmp[c];
            ref_norm(xn, x + t * C, r->p[TP_FFN_NORM] + l * C, C, s->eps);
            ref_lin(g, xn, r->p[TP_W_GATE] + (size_t)l * H * C, C, H);
            ref_lin(u, xn, r->p[TP_W_UP] + (size_t)l * H * C, C, H);
            for (int i = 0; i < H; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            if (s->E) ref_route(r, l, xn, g);
            ref_lin(tmp, g, r->p[TP_W_DOWN] + (size_t)l * C * H, H, C);
            for (int c = 0; c < C; c++) x[t * C + c] += tmp[c];
        }
    }
    double loss = 0;
    for (int t = 0; t < T; t++) {
        ref_norm(xn, x + t * C, r->p[TP_NORM_F], C, s->eps);
        ref_lin(lg, xn, r->p[s->tied ? TP_WTE : TP_OUT], C, s->V);
        double mx = -1e300, sum = 0;
        for (int v = 0; v < s->V; v++) mx = fmax(mx, lg[v]);
        for (int v = 0; v < s->V; v++) sum += exp(lg[v] - mx);
        double w = r->weight ? r->weight[b * T + t] : 1.0;
        loss += w * (log(sum) + mx - lg[r->tg[b * T + t]]);
        *wsum += w;
    }
    free(x), free(xn), free(K), free(Vv), free(Q), free(o), free(tmp), free(g), free(u);
    free(lg), free(sc);
    return loss;
}

/* The weighted mean cross-entropy, plus for MoE the balance loss as the
 * training model defines it (balance * mean over layers of E sum f_e P_e). */
static double ref_loss(const ref_model *r)
{
    const train_shape *s = r->s;
    double sum = 0, wsum = 0, bal = 0, BT = (double)s->B * s->T;
    for (int i = 0; i < s->L * s->E; i++) r->psum[i] = r->cnt[i] = 0;
    for (int b = 0; b < s->B; b++) sum += ref_sequence(r, b, &wsum);
    for (int l = 0; l < s->L; l++)
        for (int e = 0; e < s->E; e++)
            bal += s->E * (r->cnt[l * s->E + e] / (BT * s->K)) * (r->psum[l * s->E + e] / BT);
    return sum / wsum + (s->E ? r->balance * bal / s->L : 0.0);
}

/* ---- the check ---- */
/* A small random model with GQA (2 layers, 4 query / 2 KV heads, vocab 19)
 * for training as `me` says (NULL: full). */
static train_model *small_arch(int tied, int B, int T, uint64_t seed, const train_method *me, int E,
                               int K, int mla_rank)
{
    aellm_model_config cfg = {.dim = 16,
                              .hidden_dim = E ? 8 : 24,
                              .n_experts = E,
                              .n_experts_used = K,
                              .n_layers = 2,
                              .n_heads = 4,
                              .n_kv_heads = 2,
                              .head_dim = 4,
                              .vocab_size = 19,
                              .seq_len = 16,
                              .rope_base = 10000.0f,
                              .norm_eps = 1e-5f,
                              .tied_output = tied};
    aellm_model *m = NULL;
    train_model *tm = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_F32, seed), 0);
    if (mla_rank) { /* latent of mla_rank (full: 2 x 2 KV heads x 4 = 16), 2 rotary dims */
        aellm_mla_params mp;
        aellm_mla_params_default(&mp);
        mp.rank = mla_rank, mp.rope_dim = 2;
        aellm_mla_report rep;
        assert_int_equal(aellm_model_to_mla(m, &mp, &rep), 0);
    }
    if (train_model_new(&tm, m, B, T, me)) fail_msg("%s", aellm_error_last());
    aellm_model_free(m);
    return tm;
}

static train_model *small_model(int tied, int B, int T, uint64_t seed, const train_method *me)
{
    return small_arch(tied, B, T, seed, me, 0, 0, 0);
}

/* Full training; with experts, a balance weight large enough to show in the
 * gradients. */
static train_model *random_model(int tied, int B, int T, int E, int K, int mla_rank)
{
    train_method me = {.kind = TRAIN_FULL, .balance = 0.5f};
    train_model *tm = small_arch(tied, B, T, 3, &me, E, K, mla_rank);
    /* weights large enough that every path carries gradient */
    for (int i = 0; i < TP_COUNT; i++)
        for (size_t j = 0; j < tm->p.n[i]; j++)
            tm->p.t[i][j] = (float)(i == TP_NORM_F || i == TP_ATTN_NORM || i == TP_FFN_NORM
                                        ? 1.0 + 0.3 * urand()
                                        : 0.4 * urand());
    return tm;
}

static void check_gradients_arch(int tied, int weighted, int E, int K, int mla_rank)
{
    enum { B = 2, T = 6 };
    train_model *tm = random_model(tied, B, T, E, K, mla_rank);
    int32_t in[B * T], tg[B * T];
    float w[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)((i * 5 + 2) % 19), tg[i] = (int32_t)((i * 11 + 7) % 19);
        w[i] = i % 4 == 0 ? 0.0f : 1.0f;
    }
    const float *weight = weighted ? w : NULL;
    ref_model r = {.s = &tm->s,
                   .in = in,
                   .tg = tg,
                   .weight = weight,
                   .balance = 0.5,
                   .rope_idx = tm->rope_idx};
    r.psum = vec((size_t)tm->s.L * E), r.cnt = vec((size_t)tm->s.L * E);
    for (int i = 0; i < TP_COUNT; i++) {
        r.p[i] = vec(tm->p.n[i]);
        for (size_t j = 0; j < tm->p.n[i]; j++) r.p[i][j] = tm->p.t[i][j];
    }
    double loss = train_model_forward(tm, in, tg, weight) + tm->balance_loss, ref = ref_loss(&r);
    printf(" tied %d, weighted %d, experts %d top-%d, latent rank %d: loss %.9f (balance %.6f), "
           "double reference %.9f\n",
           tied, weighted, E, K, mla_rank, loss, tm->balance_loss, ref);
    assert_true(fabs(loss - ref) <= 1e-5 * fabs(ref));
    assert_int_equal(train_model_zero_grad(tm), 0);
    train_model_backward(tm, in);
    for (int i = 0; i < TP_COUNT; i++) {
        if (!tm->p.n[i]) continue;
        double worst = 0;
        for (int k = 0; k < 12; k++) { /* a sample of each tensor, first and last included */
            size_t j = k == 0   ? 0
                       : k == 1 ? tm->p.n[i] - 1
                                : (size_t)((urand() + 1) / 2 * tm->p.n[i]);
            if (j >= tm->p.n[i]) j = tm->p.n[i] - 1;
            double keep = r.p[i][j], h = 1e-5;
            r.p[i][j] = keep + h;
            double up = ref_loss(&r);
            r.p[i][j] = keep - h;
            double down = ref_loss(&r);
            r.p[i][j] = keep;
            double fd = (up - down) / (2 * h), an = tm->g.t[i][j];
            if (fabs(an - fd) > 2e-5 + 1e-3 * fabs(fd))
                fail_msg("%s[%zu]: backward %.9g, finite difference %.9g", train_param_name(i), j,
                         an, fd);
            worst = fmax(worst, fabs(an - fd));
        }
        printf("  %-20s max |backward - fd| %.2e\n", train_param_name(i), worst);
    }
    for (int i = 0; i < TP_COUNT; i++) free(r.p[i]);
    free(r.psum), free(r.cnt);
    train_model_free(tm);
}

static void check_gradients(int tied, int weighted)
{
    check_gradients_arch(tied, weighted, 0, 0, 0);
}

/* The router (through the renormalised top-k weights and the balance
 * loss) and the experts, held densely as training holds them. */
/* Latent attention: the rotary rows, the latent's down-projection and both
 * up-projections, with 2 of each head's 4 dims rotary (pairs chosen by
 * weight norms), at rank 6 of a full 16, and at full rank with experts. */
static void test_gradients_mla(void **state)
{
    (void)state;
    check_gradients_arch(1, 0, 0, 0, 6);
    check_gradients_arch(0, 1, 4, 2, 16);
}

static void test_gradients_moe(void **state)
{
    (void)state;
    check_gradients_arch(1, 0, 4, 2, 0);
    check_gradients_arch(0, 1, 3, 1, 0);
}

static void test_gradients_tied(void **state)
{
    (void)state;
    check_gradients(1, 0);
}

static void test_gradients_separate_output_weighted(void **state)
{
    (void)state;
    check_gradients(0, 1);
}

int train_model_export(const train_model *tm, const aellm_model *base, aellm_model **out);

/* The training forward against the inference engine on the real model, or
 * on it split into E experts (top-K): and the trained model exported back
 * (experts restacked) runs in the engine as the model it came from. */
static void loss_equals_engine(int E, int K, int mla_rank, int rope_dim)
{
    enum { T = 128 };
    aellm_model *m = NULL, *back = NULL;
    aellm_engine *e = NULL;
    train_model *tm = NULL;
    assert_int_equal(aellm_model_load(&m, STORIES, STORIES_TOK), 0);
    if (E) {
        aellm_moe_params mp;
        aellm_moe_params_default(&mp);
        mp.n_experts = E, mp.top_k = K;
        assert_int_equal(aellm_model_to_moe(m, &mp), 0);
    }
    if (mla_rank) {
        aellm_mla_params lp;
        aellm_mla_params_default(&lp);
        lp.rank = mla_rank, lp.rope_dim = rope_dim;
        aellm_mla_report rep;
        assert_int_equal(aellm_model_to_mla(m, &lp, &rep), 0);
    }
    const char *text = "Once upon a time, there was a little dog named Max. Max liked to run in "
                       "the park with his friend, a small girl called Sue. One day, they found a "
                       "big red ball under a tree. Sue threw the ball and Max ran after it.";
    int32_t ids[T + 1];
    size_t n = 0;
    assert_int_equal(
        aellm_tokenizer_encode(aellm_model_tokenizer(m), text, strlen(text), 1, ids, T + 1, &n), 0);
    assert_true(n >= 40);
    int len = (int)n - 1;
    assert_int_equal(train_model_new(&tm, m, 1, len, NULL), 0);
    double loss = train_model_forward(tm, ids, ids + 1, NULL);
    int V = aellm_model_config_get(m)->vocab_size;
    float *logits = malloc((size_t)len * V * sizeof(float));
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_engine_eval(e, ids, len, 0, logits, 1), 0);
    double ce = 0;
    for (int t = 0; t < len; t++) {
        const float *z = logits + (size_t)t * V;
        double mx = -1e300, s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, z[v]);
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        ce += log(s) + mx - z[ids[t + 1]];
    }
    ce /= len;
    printf(" stories260K (%d experts, top-%d, latent rank %d), %d tokens: training loss %.9f, "
           "engine %.9f (rel %.1e)\n",
           E, K, mla_rank, len, loss, ce, fabs(loss - ce) / ce);
    assert_true(fabs(loss - ce) <= 1e-5 * ce);
    aellm_engine *e2 = NULL;
    float *again = malloc((size_t)len * V * sizeof(float));
    assert_int_equal(train_model_export(tm, m, &back), 0);
    assert_int_equal(aellm_engine_new(&e2, back, NULL), 0);
    assert_int_equal(aellm_engine_eval(e2, ids, len, 0, again, 1), 0);
    float worst = 0;
    for (size_t i = 0; i < (size_t)len * V; i++) worst = fmaxf(worst, fabsf(again[i] - logits[i]));
    assert_true(worst <= 1e-4f);
    free(again);
    aellm_engine_free(e2);
    aellm_model_free(back);
    free(logits);
    aellm_engine_free(e);
    train_model_free(tm);
    aellm_model_free(m);
}

static void test_loss_equals_engine(void **state)
{
    (void)state;
    loss_equals_engine(0, 0, 0, 0);
    loss_equals_engine(4, 2, 0, 0);
    loss_equals_engine(8, 1, 0, 0);
    loss_equals_engine(0, 0, 16, 4);
    loss_equals_engine(4, 2, 32, 4);
    loss_equals_engine(0, 0, 16, 8); /* every pair rotary: no position-free keys */
}

/* ---- the methods on the model ---- */
static train_model *method_model(train_method_kind kind, int B, int T)
{
    train_method me = {.kind = kind, .rank = 4, .alpha = 8, .targets = 0x7f, .seed = 9};
    return small_model(1, B, T, 5, &me);
}

/* Every adapter starts as the base: the same loss to the bit (LoRA, RSLoRA)
 * or to rounding (DoRA's m / ||V|| = 1); QLoRA starts at its NF4 base. */
static void test_methods_start_at_base(void **state)
{
    (void)state;
    enum { B = 2, T = 6 };
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++)
        in[i] = (int32_t)((i * 5 + 2) % 19), tg[i] = (int32_t)((i * 3 + 1) % 19);
    train_model *full = method_model(TRAIN_FULL, B, T);
    double base = train_model_forward(full, in, tg, NULL);
    for (int k = TRAIN_LORA; k < TRAIN_METHOD_COUNT; k++) {
        train_model *tm = method_model((train_method_kind)k, B, T);
        double loss = train_model_forward(tm, in, tg, NULL);
        printf(" %-6s initial loss %.9f (base %.9f), %lld trainable\n", train_method_name(k), loss,
               base, (long long)train_model_n_trainable(tm));
        if (k == TRAIN_LORA || k == TRAIN_RSLORA)
            assert_true(loss == base);
        else if (k == TRAIN_DORA)
            assert_true(fabs(loss - base) < 1e-6 * base);
        else
            assert_true(loss != base && fabs(loss - base) < 0.05 * base);
        /* rank 4 on q,k,v,o,gate,up,down of 2 layers: sum of r(C + OC) (+ OC for DoRA) */
        int64_t want =
            2 * 4 * ((16 + 16) + (16 + 8) + (16 + 8) + (16 + 16) + 2 * (16 + 24) + (24 + 16));
        if (k == TRAIN_DORA) want += 2 * (16 + 8 + 8 + 16 + 24 + 24 + 16);
        assert_int_equal(train_model_n_trainable(tm), want);
        train_model_free(tm);
    }
    train_model_free(full);
}

/* The adapters' gradients through the whole model against central
 * differences of the (float) loss: checks the wiring; the arithmetic is
 * checked in double by test_train_linear. */
static void test_method_gradients(void **state)
{
    (void)state;
    enum { B = 2, T = 6 };
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++)
        in[i] = (int32_t)((i * 7 + 1) % 19), tg[i] = (int32_t)((i * 5 + 4) % 19);
    for (int k = TRAIN_LORA; k < TRAIN_METHOD_COUNT; k++) {
        train_model *tm = method_model((train_method_kind)k, B, T);
        for (size_t j = 0; j < tm->ad_total; j++) tm->ad_block[j] += (float)(0.2 * urand());
        train_model_forward(tm, in, tg, NULL);
        assert_int_equal(train_model_zero_grad(tm), 0);
        train_model_backward(tm, in);
        double worst = 0;
        for (int n = 0; n < 40; n++) {
            size_t j = (size_t)((urand() + 1) / 2 * (double)tm->ad_total) % tm->ad_total;
            if (k == TRAIN_DORA) { /* only m: A and B's backward detaches ||V|| on purpose */
                const train_adapter *a = &tm->lin[n % (2 * AELLM_LINEAR_COUNT)].ad;
                j = (size_t)(a->m - tm->ad_block) + (size_t)n % 8;
            }
            /* two steps: 1e-2 keeps the float forward's rounding small but
               not the curvature, 1e-3 the reverse; one of them must agree */
            float keep = tm->ad_block[j];
            double fds[2], an = tm->ad_grad[j], fd = 0;
            for (int q = 0; q < 2; q++) {
                float h = q ? 1e-3f : 1e-2f;
                tm->ad_block[j] = keep + h;
                double up = train_model_forward(tm, in, tg, NULL);
                tm->ad_block[j] = keep - h;
                double down = train_model_forward(tm, in, tg, NULL);
                tm->ad_block[j] = keep;
                fds[q] = (up - down) / (2.0 * h);
            }
            fd = fabs(an - fds[0]) <= fabs(an - fds[1]) ? fds[0] : fds[1];
            if (fabs(an - fd) > 2e-4 + 2e-2 * fabs(fd))
                fail_msg("%s adapter[%zu]: backward %.6g, finite differences %.6g (1e-2), %.6g "
                         "(1e-3)",
                         train_method_name(k), j, an, fds[0], fds[1]);
            worst = fmax(worst, fabs(an - fd));
        }
        printf(" %-6s adapter gradients: max |backward - fd| %.1e over 40 samples\n",
               train_method_name(k), worst);
        train_model_free(tm);
    }
}

/* A few AdamW steps on one batch of real text lower its loss, for every
 * method, on stories260K (the random models' small frozen output caps what
 * an adapter can change). */
static void test_methods_learn(void **state)
{
    (void)state;
    enum { T = 64, STEPS = 15 };
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_load(&m, STORIES, STORIES_TOK), 0);
    const char *text =
        "The purple robot sang a song about seven green frogs. The purple robot sang "
        "a song about seven green frogs. The purple robot sang a song about seven "
        "green frogs. The purple robot sang a song about seven green frogs.";
    int32_t ids[512];
    size_t n = 0;
    assert_int_equal(
        aellm_tokenizer_encode(aellm_model_tokenizer(m), text, strlen(text), 1, ids, 512, &n), 0);
    assert_true(n >= T + 1);
    for (int k = 0; k < TRAIN_METHOD_COUNT; k++) {
        train_method me = {
            .kind = (train_method_kind)k, .rank = 8, .alpha = 16, .targets = 0x7f, .seed = 3};
        train_model *tm = NULL;
        if (train_model_new(&tm, m, 1, T, &me)) fail_msg("%s", aellm_error_last());
        train_optim_params op;
        train_optim_params_default(&op);
        op.lr = k == TRAIN_FULL ? 3e-3f : 1e-2f, op.total_steps = STEPS;
        train_optim_group groups[TP_COUNT];
        assert_int_equal(train_model_zero_grad(tm), 0);
        int ng = train_model_groups(tm, groups, TP_COUNT);
        train_adamw *o = NULL;
        assert_int_equal(train_adamw_new(&o, groups, ng, &op), 0);
        double first = 0, last = 0;
        for (int step = 1; step <= STEPS; step++) {
            last = train_model_forward(tm, ids, ids + 1, NULL);
            if (step == 1) first = last;
            train_model_zero_grad(tm);
            train_model_backward(tm, ids);
            train_adamw_step(o, step, NULL, NULL);
        }
        printf(" %-6s loss %.4f -> %.4f in %d steps\n", train_method_name(k), first, last, STEPS);
        assert_true(last < 0.8 * first);
        train_adamw_free(o);
        train_model_free(tm);
    }
    aellm_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_tied),
        cmocka_unit_test(test_gradients_moe),
        cmocka_unit_test(test_gradients_separate_output_weighted),
        cmocka_unit_test(test_loss_equals_engine),
        cmocka_unit_test(test_methods_start_at_base),
        cmocka_unit_test(test_method_gradients),
        cmocka_unit_test(test_methods_learn),
        cmocka_unit_test(test_gradients_mla),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
