/* The configuration space file: parsing errors, activity and rules,
 * configurations to points and back, canonical identity, and the number of
 * distinct valid configurations of the default space, counted by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "aellm/space.h"

#define SPACE_FILE AELLM_SOURCE_DIR "/space/default.json"

static aellm_space *load_default(void)
{
    aellm_space *s = NULL;
    if (aellm_space_load(&s, SPACE_FILE)) fail_msg("%s", aellm_error_last());
    return s;
}

static int point(const aellm_space *s, const char *json, double *g)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int rc = aellm_space_from_config(s, j, "cfg", g);
    cJSON_Delete(j);
    return rc;
}

static void default_space_loads(void **state)
{
    (void)state;
    aellm_space *s = load_default();
    assert_int_equal(aellm_space_n_stages(s), 3);
    assert_string_equal(aellm_space_stage_name(s, 2), "inference");
    int k = aellm_space_find(s, "inference.weights");
    assert_true(k >= 0);
    aellm_knob_info info;
    aellm_space_knob(s, k, &info);
    assert_int_equal(info.type, AELLM_KNOB_CATEGORICAL);
    assert_int_equal(info.n_options, 8);
    assert_true(info.applies);
    aellm_space_knob(s, aellm_space_find(s, "finetuning.method"), &info);
    assert_true(info.applies);
    aellm_space_knob(s, aellm_space_find(s, "architecture.attention"), &info);
    assert_true(info.applies);
    assert_true(aellm_space_option_applies(s, aellm_space_find(s, "architecture.attention"), 3));
    aellm_space_knob(s, aellm_space_find(s, "architecture.moe_experts"), &info);
    assert_true(info.applies);
    aellm_space_knob(s, aellm_space_find(s, "architecture.mla_rank"), &info);
    assert_true(info.applies);
    assert_int_equal(aellm_space_find(s, "inference.nope"), -1);
    aellm_space_free(s);
}

/* Hand count. Inference knobs: f32, bf16, f16, fp8 have no method, group or
 * asym: 4. int8: rtn, gptq with or without act_order, smoothquant: 4 (awq
 * needs 4-bit). q8_0: rtn, gptq x2: 3. int4: 3 groups x 2 asym x (rtn +
 * gptq x2 + awq) = 24. nf4: rtn + gptq x2 + awq = 4. Sum 39, times kv_cache
 * 3, times kv_share 4: 468. Fine-tuning: none and full have no rank or
 * alpha (468 each); lora, dora, rslora take 6 ranks x 4 alphas over all 468;
 * qlora the same over the 4-bit points only ((24 + 4) x 3 x 4 = 336). The
 * architecture stage: attention mha, gqa or mqa times the FFN, dense or 2,
 * 4, 8 experts x top-1, top-2 x split, upcycle (1 + 12 = 13), times all of
 * that; and mla at 5 ranks x the same 13 FFNs over what latent attention
 * takes (f32 KV cache, no pooling): the 39 weight points, 28 of them 4-bit,
 * under none, full, three adapter methods x 24 and qlora x 24. */
static void enumeration_matches_hand_count(void **state)
{
    (void)state;
    aellm_space *s = load_default(), *held = NULL, *both = NULL;
    int inference = 39 * 3 * 4, four_bit = (24 + 4) * 3 * 4;
    int finetuning = 2 * inference + 3 * 24 * inference + 24 * four_bit;
    int latent = 39, latent_4bit = 24 + 4;
    int finetuning_mla = 2 * latent + 3 * 24 * latent + 24 * latent_4bit;
    assert_int_equal(aellm_space_enumerate(s, NULL, NULL),
                     3 * 13 * finetuning + 5 * 13 * finetuning_mla);
    assert_int_equal(aellm_space_hold_stage(s, "architecture", &both), 0);
    assert_int_equal(aellm_space_enumerate(both, NULL, NULL), finetuning);
    assert_int_equal(aellm_space_hold_stage(both, "finetuning", &held), 0);
    aellm_space_free(both);
    assert_int_equal(aellm_space_enumerate(held, NULL, NULL), inference);
    int k = aellm_space_find(held, "finetuning.method");
    aellm_knob_info info;
    aellm_space_knob(held, k, &info);
    assert_false(info.applies);
    assert_int_equal(aellm_space_n_knobs(held), aellm_space_n_knobs(s)); /* same genes */
    aellm_space_free(held);
    aellm_space_free(s);
}

static void canonical_identity(void **state)
{
    (void)state;
    aellm_space *s = load_default();
    int n = aellm_space_n_knobs(s);
    double a[32], b[32];
    char ha[65], hb[65];
    /* an inactive knob does not change the identity, nor does key order */
    assert_int_equal(point(s, "{\"inference\": {\"weights\": \"f32\", \"group\": 128}}", a), 0);
    assert_int_equal(point(s, "{}", b), 0);
    aellm_space_hash(s, a, ha);
    aellm_space_hash(s, b, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(point(s, "{\"inference\": {\"group\": 128, \"weights\": \"int4\"}}", a), 0);
    assert_int_equal(point(s, "{\"inference\": {\"weights\": \"int4\", \"group\": 128}}", b), 0);
    aellm_space_hash(s, a, ha);
    aellm_space_hash(s, b, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(point(s, "{\"inference\": {\"weights\": \"int4\", \"group\": 64}}", b), 0);
    aellm_space_hash(s, b, hb);
    assert_string_not_equal(ha, hb);
    /* round trip: point -> configuration -> point */
    assert_int_equal(point(s,
                           "{\"inference\": {\"weights\": \"int4\", \"method\": \"gptq\", "
                           "\"act_order\": true, \"kv_cache\": \"q8_0\", \"kv_share\": 2}}",
                           a),
                     0);
    cJSON *cfg = aellm_space_to_config(s, a);
    assert_int_equal(aellm_space_from_config(s, cfg, "cfg", b), 0);
    assert_memory_equal(a, b, (size_t)n * sizeof(double));
    char *text = aellm_space_canonical(s, a);
    assert_string_equal(text, "{\"architecture\":{\"attention\":\"mha\",\"moe_experts\":1},"
                              "\"finetuning\":{\"method\":\"none\"},"
                              "\"inference\":{\"act_order\":true,\"asym\":false,\"group\":32,"
                              "\"kv_cache\":\"q8_0\",\"kv_share\":2,\"method\":\"gptq\","
                              "\"weights\":\"int4\"}}");
    free(text);
    cJSON_Delete(cfg);
    aellm_space_free(s);
}

static void rules_and_errors(void **state)
{
    (void)state;
    aellm_space *s = load_default();
    double g[32];
    char why[200];
    assert_int_equal(
        point(s, "{\"inference\": {\"weights\": \"int4\", \"method\": \"smoothquant\"}}", g), 0);
    aellm_space_canonicalize(s, g);
    assert_int_equal(aellm_space_violates(s, g, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "SmoothQuant"));
    assert_int_equal(point(s, "{\"finetuning\": {\"method\": \"qlora\"}}", g), 0);
    assert_int_equal(aellm_space_violates(s, g, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "QLoRA"));
    assert_int_equal(point(s, "{\"architecture\": {\"attention\": \"mla\"}}", g), 0);
    assert_int_equal(aellm_space_violates(s, g, why, sizeof(why)), 0);
    assert_int_equal(point(s,
                           "{\"architecture\": {\"attention\": \"mla\"}, \"inference\": "
                           "{\"kv_cache\": \"f16\"}}",
                           g),
                     0);
    assert_int_equal(aellm_space_violates(s, g, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "latent attention"));
    assert_int_equal(point(s, "{\"inference\": {\"weights\": \"int4\", \"method\": \"awq\"}}", g),
                     0);
    assert_int_equal(aellm_space_violates(s, g, why, sizeof(why)), 0);

    assert_true(point(s, "{\"inference\": {\"wieghts\": \"int4\"}}", g) < 0);
    assert_non_null(strstr(aellm_error_last(), "inference.wieghts"));
    assert_true(point(s, "{\"inference\": {\"weights\": \"int3\"}}", g) < 0);
    assert_non_null(strstr(aellm_error_last(), "inference.weights"));
    assert_true(point(s, "{\"deployment\": {}}", g) < 0);
    assert_non_null(strstr(aellm_error_last(), "deployment"));

    const char *bad[][2] = {
        {"{\"stages\": 3}", "stages"},
        {"{\"stages\": [{\"name\": \"x\", \"knobs\": [{\"name\": \"k\", \"type\": \"fuzzy\"}]}]}",
         "x.k"},
        {"{\"stages\": [{\"name\": \"x\", \"knobs\": [{\"name\": \"k\", \"type\": \"categorical\", "
         "\"options\": [1, 2], \"default\": 3}]}]}",
         "default"},
        {"{\"stages\": [{\"name\": \"x\", \"knobs\": [{\"name\": \"k\", \"type\": \"categorical\", "
         "\"options\": [1, 2]}]}], \"rules\": [{\"when\": {\"x.q\": [1]}, \"require\": {}}]}",
         "x.q"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *j = cJSON_Parse(bad[i][0]);
        aellm_space *t = NULL;
        assert_true(aellm_space_parse(&t, j, "space.json") < 0);
        if (!strstr(aellm_error_last(), bad[i][1]) || !strstr(aellm_error_last(), "space.json"))
            fail_msg("%s: '%s' does not name '%s'", bad[i][0], aellm_error_last(), bad[i][1]);
        cJSON_Delete(j);
    }
    aellm_space_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_space_loads),
        cmocka_unit_test(enumeration_matches_hand_count),
        cmocka_unit_test(canonical_identity),
        cmocka_unit_test(rules_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
