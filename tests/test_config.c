/* Configuration files: errors name the key; the canonical form is the same
 * for configurations that compute the same thing and differs otherwise;
 * applying one really changes the weights, the KV heads and the cache type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/aellm.h"
#include "aellm/config.h"
#include "test_tmpdir.h"

static aellm_model *tiny_model(void)
{
    aellm_model_config cfg;
    assert_int_equal(aellm_model_shape(&cfg, "260K"), 0);
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_random(&m, &cfg, AELLM_DTYPE_F32, 3), 0);
    return m;
}

static int parse(aellm_config *c, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int rc = aellm_config_parse(c, j, "cfg.json", NULL);
    cJSON_Delete(j);
    return rc;
}

static void expect_error(const char *json, const char *words)
{
    aellm_config c;
    assert_true(parse(&c, json) < 0);
    const char *msg = aellm_error_last();
    if (!strstr(msg, words) || !strstr(msg, "cfg.json"))
        fail_msg("'%s' gave '%s', expected it to name '%s'", json, msg, words);
}

static void errors_name_the_key(void **state)
{
    (void)state;
    expect_error("{\"inference\": {\"wieghts\": \"int4\"}}", "wieghts");
    expect_error("{\"inference\": {\"weights\": \"int3\"}}", "weights");
    expect_error("{\"inference\": {\"weights\": \"int4\", \"group\": 48}}", "group");
    expect_error("{\"inference\": {\"weights\": \"int8\", \"group\": 64}}", "group");
    expect_error("{\"inference\": {\"weights\": \"int4\", \"method\": \"smoothquant\"}}", "method");
    expect_error("{\"inference\": {\"weights\": \"int4\", \"method\": \"magic\"}}", "method");
    expect_error("{\"inference\": {\"kv_cache\": \"q4_0\"}}", "kv_cache");
    expect_error("{\"inference\": {\"kv_heads\": -1}}", "kv_heads");
    expect_error("{\"inference\": {\"group\": 32}}", "weights");
    expect_error("{\"inference\": {\"kv_heads\": 2, \"kv_share\": 2}}", "kv_share");
    expect_error("{\"inference\": {\"weights\": \"int4\", \"act_order\": true}}", "act_order");
    expect_error("{\"inference\": {\"calibration\": {\"flie\": \"x\"}}}", "calibration.flie");
    expect_error("{\"architecture\": {\"attention\": \"mlaa\"}}", "architecture.attention");
    expect_error("{\"architecture\": {\"attention\": \"gpa\"}}", "architecture.attention");
    expect_error("{\"architecture\": {\"moe_experts\": 0}}", "architecture.moe_experts");
    expect_error("{\"architecture\": {\"moe_experts\": 2, \"moe_top_k\": 4}}",
                 "architecture.moe_top_k");
    expect_error("{\"architecture\": {\"moe_method\": \"clone\"}}", "architecture.moe_method");
    expect_error("{\"architecture\": {\"mla_rank\": 16}}", "architecture.mla_rank");
    expect_error("{\"architecture\": {\"attention\": \"mla\", \"mla_rope_dim\": 3}}",
                 "architecture.mla_rope_dim");
    expect_error("{\"architecture\": {\"attention\": \"mqa\", \"kv_heads\": 2}}",
                 "architecture.kv_heads");
    expect_error("{\"architecture\": {\"uptrain_steps\": -1}}", "architecture.uptrain_steps");
    expect_error("{\"architecture\": {\"heads\": 2}}", "architecture.heads");
    expect_error("{\"finetuning\": {\"method\": \"loraa\"}}", "finetuning.method");
    expect_error("{\"finetuning\": {\"rank\": 0}}", "finetuning.rank");
    expect_error("{\"finetuning\": {\"targets\": \"q,x\"}}", "finetuning.targets");
    expect_error("{\"finetuning\": {\"steps\": 1.5}}", "finetuning.steps");
    expect_error("{\"finetuning\": {\"alpha\": 2}}", "finetuning.alpha");
    expect_error("{\"decoding\": {}}", "decoding");
    expect_error("[1, 2]", "object");
}

static void check_against_the_model(void **state)
{
    (void)state;
    aellm_model *m = tiny_model(); /* 8 heads, 4 KV heads */
    aellm_config c;
    assert_int_equal(parse(&c, "{\"inference\": {\"kv_heads\": 3}}"), 0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_non_null(strstr(aellm_error_last(), "kv_heads"));
    assert_int_equal(parse(&c, "{\"inference\": {\"kv_heads\": 8}}"), 0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_int_equal(parse(&c, "{\"inference\": {\"weights\": \"int4\", \"method\": \"gptq\"}}"),
                     0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_non_null(strstr(aellm_error_last(), "calibration"));
    assert_int_equal(parse(&c, "{\"inference\": {\"weights\": \"int4\", \"method\": \"gptq\", "
                               "\"calibration\": {\"file\": \"/nonexistent/text\"}}}"),
                     0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_non_null(strstr(aellm_error_last(), "/nonexistent/text"));
    assert_int_equal(parse(&c, "{\"inference\": {\"kv_heads\": 2}}"), 0);
    assert_int_equal(aellm_config_check(&c, m), 0);
    assert_int_equal(parse(&c, "{\"inference\": {\"kv_share\": 8}}"), 0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_non_null(strstr(aellm_error_last(), "kv_share"));
    assert_int_equal(parse(&c, "{\"inference\": {\"kv_share\": 2}}"), 0);
    assert_int_equal(aellm_config_check(&c, m), 0);
    /* the architecture stage: gqa must divide; the inference stage and the
       fine-tuning rank are checked against the converted model */
    assert_int_equal(parse(&c, "{\"architecture\": {\"attention\": \"gqa\", \"kv_heads\": 3}}"), 0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_non_null(strstr(aellm_error_last(), "architecture.kv_heads"));
    assert_int_equal(parse(&c, "{\"architecture\": {\"attention\": \"gqa\"}, \"inference\": "
                               "{\"kv_heads\": 4}}"),
                     0);
    assert_true(aellm_config_check(&c, m) < 0); /* gqa left 2 */
    assert_non_null(strstr(aellm_error_last(), "inference.kv_heads"));
    assert_int_equal(parse(&c, "{\"architecture\": {\"attention\": \"mqa\", \"uptrain_steps\": "
                               "5}}"),
                     0);
    assert_true(aellm_config_check(&c, m) < 0);
    assert_non_null(strstr(aellm_error_last(), "uptrain_data"));
    char cfg[512];
    snprintf(cfg, sizeof(cfg),
             "{\"architecture\": {\"attention\": \"mqa\"}, \"finetuning\": {\"method\": "
             "\"lora\", \"rank\": 16, \"data\": \"%s/tasks/data/stories_calib.txt\"}}",
             AELLM_SOURCE_DIR);
    assert_int_equal(parse(&c, cfg), 0);
    assert_true(aellm_config_check(&c, m) < 0); /* k, v are 8 wide after mqa */
    assert_non_null(strstr(aellm_error_last(), "rank"));
    /* the canonical form resolves gqa's default and the inference stage after it */
    assert_int_equal(parse(&c, "{\"architecture\": {\"attention\": \"gqa\"}}"), 0);
    char *canon = aellm_config_canonical(&c, m);
    assert_non_null(strstr(canon, "\"architecture\":{\"attention\":\"gqa\",\"kv_heads\":2"));
    assert_non_null(strstr(canon, "\"kv_heads\":2,\"method\":\"none\""));
    free(canon);
    aellm_model_free(m);
}

static char *canon(const aellm_model *m, const char *json)
{
    aellm_config c;
    assert_int_equal(parse(&c, json), 0);
    char *s = aellm_config_canonical(&c, m);
    assert_non_null(s);
    return s;
}

static void canonical_form(void **state)
{
    (void)state;
    aellm_model *m = tiny_model();
    const char *same[] = {
        "{}",
        "{\"inference\": {}}",
        "{\"inference\": {\"kv_heads\": 4, \"kv_cache\": \"f32\"}}",
        "{\"inference\": {\"weights\": \"f32\"}}",
        "{\"inference\": {\"kv_cache\": \"f32\", \"weights\": \"f32\", \"method\": \"rtn\"}}",
        "{\"inference\": {\"kv_share\": 1}}",
    };
    char *base = canon(m, same[0]);
    for (size_t i = 1; i < sizeof(same) / sizeof(same[0]); i++) {
        char *s = canon(m, same[i]);
        assert_string_equal(s, base);
        free(s);
    }
    assert_string_equal(base, "{\"inference\":{\"act_order\":false,\"kv_cache\":\"f32\","
                              "\"kv_heads\":4,\"method\":\"none\",\"weights\":\"f32\"}}");
    const char *differ[] = {
        "{\"inference\": {\"weights\": \"int4\"}}",
        "{\"inference\": {\"weights\": \"int4\", \"group\": 128}}",
        "{\"inference\": {\"weights\": \"int4\", \"asym\": true}}",
        "{\"inference\": {\"kv_cache\": \"f16\"}}",
        "{\"inference\": {\"kv_heads\": 2}}",
        "{\"inference\": {\"weights\": \"q8_0\"}}",
    };
    char *seen[8] = {0};
    for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
        seen[i] = canon(m, differ[i]);
        assert_string_not_equal(seen[i], base);
        for (size_t j = 0; j < i; j++) assert_string_not_equal(seen[i], seen[j]);
    }
    /* int4 at group 32 is llama.cpp's q4_0 either way it is named */
    char *a = canon(m, "{\"inference\": {\"weights\": \"q4_0\"}}");
    assert_string_equal(a, seen[0]);
    free(a);
    for (size_t i = 0; i < 8; i++) free(seen[i]);
    free(base);
    aellm_model_free(m);
}

static void calibration_named_by_content(void **state)
{
    (void)state;
    aellm_model *m = tiny_model();
    const char *text = "Once upon a time there was a little model.\n";
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(tmp_path(i ? "b.txt" : "a.txt"), "w");
        fputs(text, f);
        fclose(f);
    }
    char ja[512], jb[512];
    snprintf(ja, sizeof(ja),
             "{\"inference\":{\"weights\":\"int4\",\"method\":\"gptq\",\"calibration\":{\"file\":"
             "\"%s\"}}}",
             tmp_path("a.txt"));
    snprintf(jb, sizeof(jb),
             "{\"inference\":{\"weights\":\"int4\",\"method\":\"gptq\",\"calibration\":{\"file\":"
             "\"%s\"}}}",
             tmp_path("b.txt"));
    char *a = canon(m, ja), *b = canon(m, jb);
    assert_string_equal(a, b); /* same text, two paths */
    assert_null(strstr(a, "a.txt"));
    assert_non_null(strstr(a, "sha256"));
    free(a);
    free(b);
    aellm_model_free(m);
}

static void apply_changes_what_runs(void **state)
{
    (void)state;
    aellm_model *m = tiny_model();
    aellm_config c;
    assert_int_equal(parse(&c, "{\"inference\": {\"weights\": \"int4\", \"kv_heads\": 2, "
                               "\"kv_cache\": \"q8_0\"}}"),
                     0);
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    aellm_model *q = NULL;
    assert_int_equal(aellm_config_apply(&c, m, &q, &ep, NULL, NULL), 0);
    assert_non_null(q);
    assert_int_equal(aellm_model_weight_type(q), AELLM_DTYPE_Q4_0);
    assert_int_equal(aellm_model_config_get(q)->n_kv_heads, 2);
    assert_int_equal(aellm_model_config_get(m)->n_kv_heads, 2); /* pooled in place first */
    assert_int_equal(ep.kv_type, AELLM_DTYPE_Q8_0);
    /* embedding and output stay f32; the layers are 4.5 bits a weight */
    assert_true(aellm_model_weight_bytes(q) < aellm_model_weight_bytes(m) / 2);
    aellm_model_free(q);

    /* the model as it is: nothing new */
    aellm_config_default(&c);
    assert_int_equal(aellm_config_apply(&c, m, &q, &ep, NULL, NULL), 0);
    assert_null(q);
    assert_int_equal(ep.kv_type, AELLM_DTYPE_F32);
    aellm_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errors_name_the_key),     cmocka_unit_test(check_against_the_model),
        cmocka_unit_test(canonical_form),          cmocka_unit_test(calibration_named_by_content),
        cmocka_unit_test(apply_changes_what_runs),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
