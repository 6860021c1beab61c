/* The roofline prediction: its bytes per token are the engine's own (a
 * random-weight 110M model in f32, q8_0 and q4_0: weights, active weights
 * and KV cache per position equal what the model and engine report); its
 * arithmetic is the roofline worked by hand; and on the A100 profile it
 * reproduces gpt-fast's published decode speed of Llama-2-7B (104.9 tok/s
 * in fp16, 155.6 int8) within 2 %. The profile's achieved fractions come
 * from the same gpt-fast table (GB/s achieved), so this checks the bytes a
 * token reads against theirs, not the fractions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/dtype.h"
#include "aellm/engine.h"
#include "aellm/error.h"
#include "aellm/predict.h"
#include "aellm/quantize.h"

static void predict_or_fail(const aellm_model_config *cfg, const aellm_config *c,
                            const aellm_hw_profile *hw, const aellm_predict_params *p,
                            aellm_prediction *r)
{
    if (aellm_predict(cfg, c, hw, p, r)) fail_msg("%s", aellm_error_last());
}

static void bytes_are_the_engines(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "110M"), 0);
    aellm_hw_profile hw = {.kind = "cpu", .mem_bw = 1e10, .peak_f32 = 1e11, .threads = 2};
    const int types[] = {AELLM_DTYPE_F32, AELLM_DTYPE_Q8_0, AELLM_DTYPE_Q4_0};
    for (int i = 0; i < 3; i++) {
        aellm_model *m = NULL;
        assert_int_equal(aellm_model_random(&m, &cfg, types[i], 1), 0);
        aellm_config c;
        aellm_config_default(&c);
        aellm_predict_params p;
        aellm_predict_params_default(&p);
        p.base_type = types[i], p.n_prompt = 48, p.n_gen = 16;
        aellm_prediction r;
        predict_or_fail(&cfg, &c, &hw, &p, &r);
        assert_true(fabs(r.weight_bytes - (double)aellm_model_weight_bytes(m)) < 0.5);
        assert_true(fabs(r.active_weight_bytes - (double)aellm_model_active_bytes(m)) < 0.5);
        aellm_engine_params ep;
        aellm_engine_params_default(&ep);
        ep.n_ctx = 64, ep.kv_type = i == 1 ? AELLM_DTYPE_Q8_0 : AELLM_DTYPE_F32;
        c.kv_type = ep.kv_type;
        predict_or_fail(&cfg, &c, &hw, &p, &r);
        aellm_engine *e = NULL;
        assert_int_equal(aellm_engine_new(&e, m, &ep), 0);
        assert_true(fabs(r.kv_bytes_per_position - (double)aellm_engine_kv_bytes(e) / 64) < 1e-9);
        /* memory: the weights and exactly the buffers this engine allocated */
        p.n_ctx = 64, p.n_threads = aellm_engine_n_threads(e);
        predict_or_fail(&cfg, &c, &hw, &p, &r);
        assert_true(fabs(r.engine_bytes - (double)aellm_engine_memory_bytes(e)) < 0.5);
        assert_true(fabs(r.memory_bytes - (double)aellm_model_weight_bytes(m) -
                         (double)aellm_engine_memory_bytes(e)) < 0.5);
        aellm_engine_free(e);
        aellm_model_free(m);
    }
}

/* Ideal fractions, no kernel cost: prefill max(flops / peak, bytes / bw),
 * each decoded token the same at the mean context. */
static void roofline_by_hand(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "1.1B"), 0);
    aellm_hw_profile hw = {.kind = "cpu",
                           .mem_bw = 5e10,
                           .peak_f32 = 2e11,
                           .threads = 2,
                           .idle_w = 10,
                           .active_w_per_core = 5};
    aellm_config c;
    aellm_config_default(&c);
    aellm_predict_params p;
    aellm_predict_params_default(&p);
    p.base_type = AELLM_DTYPE_F32;
    aellm_prediction r;
    predict_or_fail(&cfg, &c, &hw, &p, &r);
    double P = 512, G = 128;
    double pf = P * r.flops_per_token + P * (P + 1) / 2 * r.attn_flops_per_pair;
    double pb = r.weight_bytes + P * r.kv_bytes_per_position;
    assert_true(fabs(r.prefill_s - fmax(pf / 2e11, pb / 5e10)) < 1e-12 * r.prefill_s);
    double ctx = P + (G + 1) / 2;
    double db = r.active_weight_bytes + ctx * r.kv_bytes_per_position;
    double df = r.flops_per_token + ctx * r.attn_flops_per_pair;
    assert_true(fabs(r.decode_s - G * fmax(db / 5e10, df / 2e11)) < 1e-12 * r.decode_s);
    assert_true(fabs(r.energy_j - 20 * r.total_s) < 1e-9);
    /* 2 FLOP per parameter: 1.1B has 1.1e9 parameters, most active per token */
    assert_true(r.flops_per_token > 2 * 0.9e9 && r.flops_per_token < 2 * 1.1e9);
    /* GQA from 4 to 2 KV heads halves the cache; int4 shrinks the weights */
    aellm_config g = c;
    g.kv_share = 2;
    aellm_prediction r2;
    predict_or_fail(&cfg, &g, &hw, &p, &r2);
    assert_true(fabs(r2.kv_bytes_per_position - r.kv_bytes_per_position / 2) < 1e-9);
    g.kv_share = 3; /* does not divide 4 */
    assert_int_equal(aellm_predict(&cfg, &g, &hw, &p, &r2), AELLM_EINVAL);
}

/* With rates measured per kernel kind, each part of a token's work takes
 * its kernel's time: the layers' products at the weight type's rate, the
 * output matrix at the base type's, the cache at the attention rate, and a
 * fixed cost per kernel; prefill at the products' FLOP rate. */
static void calibrated_rates_by_hand(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "110M"), 0);
    aellm_hw_profile hw = {.kind = "cpu", .mem_bw = 5e10, .peak_f32 = 2e11, .threads = 2};
    hw.kernel_rates[AELLM_DTYPE_Q4_0] = (aellm_hw_rate){3e10, 4e11, 0, 0};
    hw.kernel_rates[AELLM_DTYPE_F32] = (aellm_hw_rate){4e10, 2e11, 0, 0};
    hw.attention_rates[AELLM_DTYPE_F16] = (aellm_hw_rate){2e10, 1e11, 0, 0};
    hw.kernel_overhead_s = 1e-6;
    aellm_config c;
    cJSON *j = cJSON_Parse("{\"inference\": {\"weights\": \"q4_0\", \"kv_cache\": \"f16\"}}");
    assert_int_equal(aellm_config_parse(&c, j, "test", NULL), 0);
    cJSON_Delete(j);
    aellm_predict_params p;
    aellm_predict_params_default(&p);
    p.base_type = AELLM_DTYPE_F32, p.n_prompt = 100, p.n_gen = 10;
    aellm_prediction r;
    predict_or_fail(&cfg, &c, &hw, &p, &r);
    double d = cfg.dim, V = cfg.vocab_size, L = cfg.n_layers;
    double out = 4 * V * d, f32 = 4 * (2 * L + 1) * d + 4 * d; /* norms and the embedding row */
    double layers = r.active_weight_bytes - out - f32, ctx = 100 + 11 / 2.0;
    double token = layers / 3e10 + out / 4e10 + f32 / 4e10 + ctx * r.kv_bytes_per_position / 2e10 +
                   r.kernels_per_token * 1e-6;
    assert_true(fabs(r.decode_s - 10 * token) < 1e-9 * r.decode_s);
    double layer_flops = r.flops_per_token - 2 * V * d;
    double prefill = 100 * layer_flops / 4e11 + out / 4e10 + f32 / 4e10 +
                     100 * 101 / 2.0 * r.attn_flops_per_pair / 1e11 + r.kernels_per_token * 1e-6;
    assert_true(fabs(r.prefill_s - prefill) < 1e-9 * r.prefill_s);
    assert_non_null(strstr(r.source, "--calibrate"));
    /* the whole-model scales fitted on the held-in shape multiply each phase */
    hw.kernel_rates[AELLM_DTYPE_Q4_0].decode_scale = 1.25;
    hw.kernel_rates[AELLM_DTYPE_Q4_0].prefill_scale = 1.5;
    predict_or_fail(&cfg, &c, &hw, &p, &r);
    assert_true(fabs(r.decode_s - 1.25 * 10 * token) < 1e-9 * r.decode_s);
    assert_true(fabs(r.prefill_s - 1.5 * prefill) < 1e-9 * r.prefill_s);
    /* a weight type without a measured rate falls back to the roofline */
    c.weight_type = AELLM_DTYPE_Q8_0;
    predict_or_fail(&cfg, &c, &hw, &p, &r);
    assert_non_null(strstr(r.source, "roofline"));
}

/* The measured rates survive a profile's JSON, and a misspelt type is an
 * error naming the file. */
static void rate_tables_round_trip(void **state)
{
    (void)state;
    aellm_hw_profile hw = {
        .name = "here", .kind = "cpu", .isa = "avx2", .cores = 2, .mem_bw = 5e10, .source = "test"};
    hw.kernel_rates[AELLM_DTYPE_NF4] = (aellm_hw_rate){3.5e10, 1.5e11, 1.2, 0};
    hw.attention_rates[AELLM_DTYPE_Q8_0] = (aellm_hw_rate){9e9, 9e10, 0, 0};
    cJSON *j = aellm_hw_to_json(&hw);
    char path[] = "/tmp/aellm-test-hw-XXXXXX.json";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    char *text = cJSON_Print(j);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    free(text);
    aellm_hw_profile back;
    assert_int_equal(aellm_hw_load(&back, path, NULL), 0);
    assert_true(back.kernel_rates[AELLM_DTYPE_NF4].decode_bytes_per_s == 3.5e10);
    assert_true(back.kernel_rates[AELLM_DTYPE_NF4].prefill_flop_per_s == 1.5e11);
    assert_true(back.kernel_rates[AELLM_DTYPE_NF4].decode_scale == 1.2);
    assert_true(back.kernel_rates[AELLM_DTYPE_NF4].prefill_scale == 0); /* not fitted */
    assert_true(back.attention_rates[AELLM_DTYPE_Q8_0].decode_bytes_per_s == 9e9);
    assert_true(back.kernel_rates[AELLM_DTYPE_F32].decode_bytes_per_s == 0);
    cJSON *k = cJSON_GetObjectItem(j, "kernel_rates");
    cJSON_AddItemToObject(k, "q9_9", cJSON_Duplicate(cJSON_GetObjectItem(k, "nf4"), 1));
    text = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    assert_int_not_equal(aellm_hw_load(&back, path, NULL), 0);
    assert_non_null(strstr(aellm_error_last(), "q9_9"));
    assert_non_null(strstr(aellm_error_last(), path));
    /* a scale must be a positive number */
    cJSON_DeleteItemFromObject(k, "q9_9");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(k, "nf4"), "decode_scale",
                              cJSON_CreateNumber(-1));
    text = cJSON_Print(j);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    assert_int_not_equal(aellm_hw_load(&back, path, NULL), 0);
    assert_non_null(strstr(aellm_error_last(), "decode_scale"));
    unlink(path);
    cJSON_Delete(j);
}

static void gpt_fast_on_a100(void **state)
{
    (void)state;
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "Llama-2-7B"), 0);
    aellm_hw_profile hw;
    if (aellm_hw_load(&hw, "a100-80gb", NULL)) fail_msg("%s", aellm_error_last());
    aellm_predict_params p;
    aellm_predict_params_default(&p);
    p.n_prompt = 1, p.n_gen = 200;
    const struct {
        const char *weights;
        double tok_s;
    } want[] = {{NULL, 104.9}, {"int8", 155.6}};
    for (int i = 0; i < 2; i++) {
        aellm_config c;
        char text[96];
        snprintf(text, sizeof(text), "{\"inference\": {\"weights\": \"%s\"}}",
                 want[i].weights ? want[i].weights : "f16");
        cJSON *j = cJSON_Parse(text);
        assert_int_equal(aellm_config_parse(&c, j, "test", NULL), 0);
        cJSON_Delete(j);
        aellm_prediction r;
        predict_or_fail(&cfg, &c, &hw, &p, &r);
        double tok_s = p.n_gen / r.decode_s;
        print_message("Llama-2-7B %s on A100: predicted %.1f tok/s, gpt-fast measured %.1f\n",
                      want[i].weights ? want[i].weights : "fp16", tok_s, want[i].tok_s);
        assert_true(fabs(tok_s / want[i].tok_s - 1) < 0.02);
        assert_false(r.decode_compute_bound);
        assert_non_null(strstr(r.source, "predicted"));
        assert_non_null(strstr(r.source, "a100-80gb"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_are_the_engines),  cmocka_unit_test(roofline_by_hand),
        cmocka_unit_test(gpt_fast_on_a100),       cmocka_unit_test(calibrated_rates_by_hand),
        cmocka_unit_test(rate_tables_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
