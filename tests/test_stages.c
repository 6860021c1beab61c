/* The stages as the evaluation pipeline sees them (src/techniques/stage.h):
 * in the order of DESIGN.md §5, named by their configuration keys; each
 * stage's canonical form sees its own part of the configuration only (so a
 * fine-tuned model is reused by every inference-stage variant of it); each
 * run really transforms the model it is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/aellm.h"
#include "aellm/config.h"
#include "techniques/stage.h"

#define STORIES     AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin"
#define STORIES_TOK AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"
#define TEXT        AELLM_SOURCE_DIR "/tasks/data/stories_calib.txt"

static void parse(aellm_config *c, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_int_equal(aellm_config_parse(c, j, "cfg.json", NULL), 0);
    cJSON_Delete(j);
}

static const aellm_stage *stage_named(const char *name)
{
    int n;
    const aellm_stage *const *list = aellm_stages(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i]->name, name)) return list[i];
    fail_msg("no stage %s", name);
    return NULL;
}

static aellm_model *stories(void)
{
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_load(&m, STORIES, STORIES_TOK), 0);
    return m;
}

static void order_and_names(void **state)
{
    (void)state;
    int n;
    const aellm_stage *const *list = aellm_stages(&n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->name, "architecture");
    assert_string_equal(list[1]->name, "finetuning");
    assert_string_equal(list[2]->name, "inference");
    for (int i = 0; i < n; i++) { /* each name is a stage the configuration knows */
        char json[64];
        aellm_config c;
        snprintf(json, sizeof(json), "{\"%s\": {}}", list[i]->name);
        parse(&c, json);
        assert_non_null(list[i]->run);
    }
    aellm_config c;
    aellm_config_default(&c);
    assert_false(stage_named("finetuning")->applies(&c));
    assert_false(stage_named("architecture")->applies(&c));
    assert_true(stage_named("finetuning")->keep);
    assert_true(stage_named("architecture")->keep);
    assert_false(stage_named("inference")->keep);
}

static char *canon(const char *stage, const char *json, const aellm_model *m)
{
    aellm_config c;
    parse(&c, json);
    char *s = stage_named(stage)->canonical(&c, m);
    assert_non_null(s);
    return s;
}

/* A stage's key changes with its own knobs and with no other stage's. */
static void canonical_sees_its_own_part(void **state)
{
    (void)state;
    aellm_model *m = stories();
    const char *a = "{\"finetuning\": {\"method\": \"lora\", \"rank\": 4, \"data\": \"" TEXT "\"},"
                    " \"inference\": {\"weights\": \"q8_0\"}}";
    const char *b = "{\"finetuning\": {\"method\": \"lora\", \"rank\": 4, \"data\": \"" TEXT "\"},"
                    " \"inference\": {\"weights\": \"q4_0\", \"kv_cache\": \"f16\"}}";
    const char *c = "{\"finetuning\": {\"method\": \"lora\", \"rank\": 8, \"data\": \"" TEXT "\"},"
                    " \"inference\": {\"weights\": \"q8_0\"}}";
    char *fa = canon("finetuning", a, m), *fb = canon("finetuning", b, m),
         *fc = canon("finetuning", c, m);
    char *ia = canon("inference", a, m), *ib = canon("inference", b, m),
         *ic = canon("inference", c, m);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fc);
    assert_string_equal(ia, ic);
    assert_string_not_equal(ia, ib);
    assert_null(strstr(fa, "inference"));
    assert_null(strstr(ia, "finetuning"));
    free(fa), free(fb), free(fc), free(ia), free(ib), free(ic);
    /* the architecture stage: its own knobs only, gqa's head count resolved */
    const char *d = "{\"architecture\": {\"attention\": \"gqa\"}, \"finetuning\": {\"method\": "
                    "\"lora\", \"data\": \"" TEXT "\"}}";
    const char *e = "{\"architecture\": {\"attention\": \"gqa\", \"kv_heads\": 2}}";
    char *ad = canon("architecture", d, m), *ae = canon("architecture", e, m);
    assert_string_equal(ad, ae);
    assert_non_null(strstr(ad, "\"kv_heads\":2"));
    free(ad), free(ae);
    aellm_model_free(m);
}

static void inference_stage_runs(void **state)
{
    (void)state;
    aellm_model *m = stories(), *before = m;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    aellm_stage_env env = {.n_threads = 1, .ep = &ep};
    aellm_config c;
    cJSON *report = (cJSON *)1;
    parse(&c, "{\"inference\": {\"kv_cache\": \"q8_0\"}}"); /* the model as it is */
    assert_int_equal(aellm_stage_inference.run(&c, &m, &env, &report), 0);
    assert_ptr_equal(m, before);
    assert_null(report);
    assert_int_equal(ep.kv_type, AELLM_DTYPE_Q8_0);
    parse(&c, "{\"inference\": {\"weights\": \"q4_0\"}}");
    assert_int_equal(aellm_stage_inference.run(&c, &m, &env, &report), 0);
    assert_ptr_not_equal(m, before); /* the source was freed by the stage */
    assert_int_equal(aellm_model_weight_type(m), AELLM_DTYPE_Q4_0);
    aellm_model_free(m);
}

static void count_progress(const char *phase, int64_t done, int64_t total, void *user)
{
    assert_string_equal(phase, "finetune");
    assert_true(done <= total);
    ++*(int *)user;
}

static void finetuning_stage_runs(void **state)
{
    (void)state;
    aellm_model *m = stories(), *before = m;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    int calls = 0;
    aellm_stage_env env = {.n_threads = 2, .ep = &ep, .progress = count_progress, .user = &calls};
    aellm_config c;
    parse(&c, "{\"finetuning\": {\"method\": \"lora\", \"rank\": 4, \"steps\": 3, \"data\": \"" TEXT
              "\"}}");
    assert_true(aellm_stage_finetuning.applies(&c));
    cJSON *report = NULL;
    assert_int_equal(aellm_stage_finetuning.run(&c, &m, &env, &report), 0);
    assert_ptr_not_equal(m, before);
    assert_true(calls >= 3);
    assert_non_null(report);
    assert_int_equal(cJSON_GetObjectItem(report, "steps")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(report, "method")->valuestring, "lora");
    /* rank 4 on q,k,v,o of 5 layers of dim 64: 4 x (64 + 64) x 4 x 5 (GQA: k, v are narrower) */
    double trainable = cJSON_GetObjectItem(report, "trainable_params")->valuedouble;
    assert_true(trainable > 0 && trainable <= 4 * 128 * 4 * 5);
    cJSON_Delete(report);
    aellm_model_free(m);
}

static void architecture_stage_runs(void **state)
{
    (void)state;
    aellm_model *m = stories();
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    aellm_stage_env env = {.n_threads = 2, .ep = &ep};
    aellm_config c;
    cJSON *report = NULL;
    /* convert only: the pooled model, the KV per token cut to a quarter */
    parse(&c, "{\"architecture\": {\"attention\": \"mqa\"}}");
    assert_int_equal(aellm_stage_architecture.run(&c, &m, &env, &report), 0);
    assert_int_equal(aellm_model_config_get(m)->n_kv_heads, 1);
    assert_int_equal(cJSON_GetObjectItem(report, "kv_heads_before")->valueint, 4);
    assert_true(cJSON_GetObjectItem(report, "kv_values_per_token")->valuedouble * 4 ==
                cJSON_GetObjectItem(report, "kv_values_per_token_before")->valuedouble);
    assert_true(cJSON_GetObjectItem(report, "uptrain_tokens")->valuedouble == 0);
    cJSON_Delete(report);
    aellm_model_free(m);
    /* with uptraining: the held-out loss falls and the tokens are counted */
    m = stories();
    parse(&c, "{\"architecture\": {\"attention\": \"gqa\", \"uptrain_steps\": 4, "
              "\"uptrain_data\": \"" TEXT "\"}}");
    assert_int_equal(aellm_stage_architecture.run(&c, &m, &env, &report), 0);
    assert_int_equal(aellm_model_config_get(m)->n_kv_heads, 2);
    const cJSON *up = cJSON_GetObjectItem(report, "uptraining");
    assert_non_null(up);
    assert_true(cJSON_GetObjectItem(up, "heldout_loss")->valuedouble <
                cJSON_GetObjectItem(up, "heldout_loss_before")->valuedouble);
    assert_true(cJSON_GetObjectItem(report, "uptrain_tokens")->valuedouble ==
                cJSON_GetObjectItem(up, "tokens")->valuedouble);
    assert_true(cJSON_GetObjectItem(report, "uptrain_tokens")->valuedouble > 0);
    cJSON_Delete(report);
    aellm_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_names),         cmocka_unit_test(canonical_sees_its_own_part),
        cmocka_unit_test(inference_stage_runs),    cmocka_unit_test(finetuning_stage_runs),
        cmocka_unit_test(architecture_stage_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
