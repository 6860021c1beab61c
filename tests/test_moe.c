/* Mixture-of-experts conversion on the bundled stories260K: MoEfication is
 * an exact split (every expert on, equal gates: the dense model's logits),
 * upcycling is exact for any router, a split with E > H / E pads experts
 * with neurons that add nothing, the GGUF round trip keeps every bit, the
 * fitted routers agree with their targets better than the centroids, and
 * quantization (RTN, GPTQ, AWQ) takes the experts and keeps the router. The
 * routing itself against a naive reference is in test_forward.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/arch.h"
#include "aellm/engine.h"
#include "aellm/error.h"
#include "aellm/quantize.h"
#include "model/model.h"
#include "test_tmpdir.h"

#define STORIES     AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin"
#define STORIES_TOK AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"
#define TEXT        AELLM_DATA_DIR "/tinystories/tinystories_val.txt"
#define T           48

static aellm_model *stories(void)
{
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_load(&m, STORIES, STORIES_TOK), 0);
    return m;
}

/* All T positions' logits of a fixed token sequence, prefill or decode. */
static float *logits_of(const aellm_model *m, int decode)
{
    int V = m->cfg.vocab_size;
    int32_t toks[T];
    for (int i = 0; i < T; i++) toks[i] = (int32_t)((i * 131 + 7) % V);
    aellm_engine *e = NULL;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = 64, ep.n_batch = 32; /* two batches */
    assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
    float *out = malloc((size_t)T * V * sizeof(float));
    if (decode)
        for (int p = 0; p < T; p++)
            assert_int_equal(aellm_engine_eval(e, &toks[p], 1, p, out + (size_t)p * V, 0), 0);
    else
        assert_int_equal(aellm_engine_eval(e, toks, T, 0, out, 1), 0);
    aellm_engine_free(e);
    return out;
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void zero_routers(aellm_model *m)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        aellm_tensor *r = &m->layers[l].ffn_gate_inp;
        memset((void *)r->data, 0, (size_t)(r->ne[0] * r->ne[1]) * sizeof(float));
    }
}

static aellm_model *converted(int E, int k, int method)
{
    aellm_model *m = stories();
    aellm_moe_params p;
    aellm_moe_params_default(&p);
    p.n_experts = E, p.top_k = k, p.method = method;
    assert_int_equal(aellm_model_to_moe(m, &p), 0);
    return m;
}

/* 172 neurons into 4 experts of 43, and into 8 of 22 (4 padding neurons). */
static void split_is_exact(void **state)
{
    (void)state;
    aellm_model *dense = stories();
    float *ref = logits_of(dense, 0);
    size_t n = (size_t)T * dense->cfg.vocab_size;
    for (int E = 4; E <= 8; E *= 2) {
        aellm_model *m = converted(E, E, AELLM_MOE_SPLIT);
        assert_int_equal(m->cfg.n_experts, E);
        assert_int_equal(m->cfg.hidden_dim, (172 + E - 1) / E);
        zero_routers(m); /* equal gates 1/E; down carries the factor E */
        float *got = logits_of(m, 0), *dec = logits_of(m, 1);
        float d = max_abs_diff(ref, got, n), dd = max_abs_diff(ref, dec, n);
        print_message("split %d experts, all on: max|dlogit| prefill %.2e decode %.2e\n", E, d, dd);
        assert_true(d <= 1e-4f && dd <= 1e-4f);
        free(got), free(dec);
        aellm_model_free(m);
    }
    free(ref);
    aellm_model_free(dense);
}

/* Copies of the FFN: any top-k with weights summing to 1 gives it back. */
static void upcycle_is_exact(void **state)
{
    (void)state;
    aellm_model *dense = stories(), *m = converted(4, 2, AELLM_MOE_UPCYCLE);
    assert_int_equal(m->cfg.hidden_dim, 172);
    float *ref = logits_of(dense, 0), *got = logits_of(m, 0);
    float d = max_abs_diff(ref, got, (size_t)T * dense->cfg.vocab_size);
    print_message("upcycled 4 experts, top-2: max|dlogit| %.2e\n", d);
    assert_true(d <= 1e-4f);
    free(ref), free(got);
    aellm_model_free(m);
    aellm_model_free(dense);
}

/* Top-1 of 8 really drops work: a token uses an eighth of the FFN, and the
 * logits move (the model is no longer the dense one). */
static void top1_is_sparse(void **state)
{
    (void)state;
    aellm_model *dense = stories(), *m = converted(8, 1, AELLM_MOE_SPLIT);
    double ffn_dense = 3.0 * 64 * 172 * 5, ffn_active = 3.0 * 64 * 22 * 5;
    int64_t drop = aellm_model_active_params(dense) - aellm_model_active_params(m);
    assert_int_equal(drop, (int64_t)(ffn_dense - ffn_active) - 8 * 64 * 5); /* + routers */
    assert_true(aellm_model_n_params(m) > aellm_model_active_params(m));
    float *ref = logits_of(dense, 0), *got = logits_of(m, 0), *dec = logits_of(m, 1);
    size_t n = (size_t)T * dense->cfg.vocab_size;
    float moved = max_abs_diff(ref, got, n), pd = max_abs_diff(got, dec, n);
    print_message("8 experts top-1: logits moved %.3f, prefill vs decode %.2e\n", moved, pd);
    assert_true(moved > 1e-2f);
    assert_true(pd <= 1e-4f);
    free(ref), free(got), free(dec);
    aellm_model_free(m);
    aellm_model_free(dense);
}

static void gguf_round_trip(void **state)
{
    (void)state;
    aellm_model *m = converted(4, 2, AELLM_MOE_SPLIT), *back = NULL;
    assert_int_equal(aellm_model_save_gguf(m, tmp_path("moe.gguf"), -1), 0);
    assert_int_equal(aellm_model_load(&back, tmp_path("moe.gguf"), NULL), 0);
    assert_int_equal(back->cfg.n_experts, 4);
    assert_int_equal(back->cfg.n_experts_used, 2);
    assert_int_equal(back->cfg.hidden_dim, 43);
    assert_int_equal(back->layers[2].w_down.ne[1], 4 * 64);
    float *a = logits_of(m, 0), *b = logits_of(back, 0);
    assert_memory_equal(a, b, (size_t)T * m->cfg.vocab_size * sizeof(float));
    free(a), free(b);
    aellm_model_free(back);
    aellm_model_free(m);
}

/* Fewer distinct neurons than experts (a layer's gate rows all zero): the
 * k-means start takes repeats instead of searching for ever, and the
 * balanced assignment still fills every expert. */
static void degenerate_neurons_still_split(void **state)
{
    (void)state;
    aellm_model *m = stories();
    aellm_tensor *g = &m->layers[0].w_gate;
    float *zero = aellm_model_own(m, aellm_tensor_bytes(g));
    assert_non_null(zero);
    g->data = zero; /* f32: 172 rows of 64 zeros */
    aellm_moe_params p;
    aellm_moe_params_default(&p);
    p.n_experts = 8, p.top_k = 1;
    assert_int_equal(aellm_model_to_moe(m, &p), 0);
    assert_int_equal(m->cfg.hidden_dim, 22);
    aellm_model_free(m);
}

static void bad_params_are_refused(void **state)
{
    (void)state;
    aellm_model *m = stories();
    aellm_moe_params p;
    aellm_moe_params_default(&p);
    p.n_experts = 4, p.top_k = 5;
    assert_int_equal(aellm_model_to_moe(m, &p), AELLM_EINVAL);
    p.n_experts = 1, p.top_k = 1;
    assert_int_equal(aellm_model_to_moe(m, &p), AELLM_EINVAL);
    p.n_experts = 4, p.top_k = 1;
    assert_int_equal(aellm_model_to_moe(m, &p), 0);
    assert_int_equal(aellm_model_to_moe(m, &p), AELLM_EINVAL); /* already experts */
    aellm_model_free(m);
}

static int have_text(void)
{
    FILE *f = fopen(TEXT, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void fitted_routers_agree(void **state)
{
    (void)state;
    if (!have_text()) skip();
    aellm_model *m = converted(8, 1, AELLM_MOE_SPLIT);
    aellm_moe_fit_report rep;
    assert_int_equal(aellm_moe_fit_routers(m, TEXT, 2048, &rep), 0);
    print_message("router agreement with the largest expert: centroid %.3f, fitted %.3f (%lld "
                  "tokens)\n",
                  rep.agreement_before, rep.agreement, (long long)rep.tokens);
    assert_true(rep.tokens >= 1024);
    assert_true(rep.agreement > rep.agreement_before);
    assert_true(rep.agreement > 0.4);
    aellm_model_free(m);
}

/* Every method takes the experts; the router stays f32 and unchanged by
 * RTN and GPTQ (AWQ folds the FFN input's scales into it). */
static void quantize_takes_experts(void **state)
{
    (void)state;
    if (!have_text()) skip();
    /* every expert on with equal gates: routing cannot flip under rounding */
    aellm_model *m = converted(4, 4, AELLM_MOE_SPLIT);
    zero_routers(m);
    float *ref = logits_of(m, 0);
    const int methods[] = {AELLM_QUANT_RTN, AELLM_QUANT_GPTQ, AELLM_QUANT_AWQ};
    for (int i = 0; i < 3; i++) {
        aellm_quantize_params p;
        aellm_quantize_params_default(&p);
        p.type = AELLM_DTYPE_Q8_0;
        p.method = methods[i];
        p.calib_path = TEXT;
        p.calib_tokens = 1024;
        aellm_model *q = NULL;
        assert_int_equal(aellm_quantize_model(&q, m, &p, NULL), 0);
        assert_int_equal(q->cfg.n_experts, 4);
        assert_int_equal(q->layers[1].ffn_gate_inp.type, AELLM_DTYPE_F32);
        assert_int_equal(q->layers[1].w_up.ne[1], 4 * 43);
        if (methods[i] != AELLM_QUANT_AWQ)
            assert_memory_equal(q->layers[1].ffn_gate_inp.data, m->layers[1].ffn_gate_inp.data,
                                4 * 64 * sizeof(float));
        float *got = logits_of(q, 0);
        float d = max_abs_diff(ref, got, (size_t)T * m->cfg.vocab_size);
        print_message("q8_0 by method %d: max|dlogit| vs f32 experts %.3f\n", methods[i], d);
        assert_true(d < 0.5f);
        free(got);
        aellm_model_free(q);
    }
    free(ref);
    aellm_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_is_exact),
        cmocka_unit_test(upcycle_is_exact),
        cmocka_unit_test(top1_is_sparse),
        cmocka_unit_test(gguf_round_trip),
        cmocka_unit_test(bad_params_are_refused),
        cmocka_unit_test(fitted_routers_agree),
        cmocka_unit_test(degenerate_neurons_still_split),
        cmocka_unit_test(quantize_takes_experts),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
