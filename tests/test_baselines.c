/* The baselines on the default space with the synthetic evaluator of
 * synth_eval.h: exhaustive search visits each of the 468 valid points once
 * and is skipped above its limit; random search spends exactly the budget;
 * one technique at a time never changes two techniques at once and stays
 * within the budget; the EfficientLLM rules and the AE-LLM paper's
 * guidelines pick what their rules say (over the inference stage alone and
 * over all three stages); the scores agree with a direct computation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aellm/baselines.h"
#include "aellm/error.h"
#include "synth_eval.h"

typedef struct {
    aellm_space *space;
    synth *y;
    aellm_search_params sp;
    aellm_baseline_params bp;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->space = inference_space();
    f->y = calloc(1, sizeof(*f->y));
    f->y->space = f->space;
    aellm_search_params *p = &f->sp;
    aellm_search_params_default(p);
    p->space = f->space;
    p->evaluate = synth_eval;
    p->user = f->y;
    p->budget = 30;
    p->nsga2.pop_size = 40;
    p->nsga2.generations = 20;
    p->surrogate.members = 2;
    p->surrogate.num_rounds = 60;
    aellm_baseline_params_default(&f->bp);
    f->bp.search = p;
    double *g = malloc((size_t)aellm_space_n_knobs(f->space) * sizeof(double));
    aellm_space_defaults(f->space, g);
    objectives_of(f->space, g, &f->bp.default_obj);
    free(g);
    f->bp.facts = (aellm_baseline_facts){
        .mem_bytes = 8e9, .n_params = 1e6, .n_kv_heads = 4, .kv_fraction = 0.1};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    aellm_space_free(f->space);
    free(f->y);
    free(f);
    return 0;
}

static void exhaustive_visits_each_point_once(void **state)
{
    fixture *f = *state;
    aellm_baseline b;
    assert_int_equal(aellm_baseline_exhaustive(&f->bp, &b), 0);
    assert_false(b.skipped);
    assert_int_equal(b.n_points, 468);
    assert_int_equal(b.evaluations, 468);
    assert_int_equal(f->y->calls, 468); /* synth_eval fails on a repeat */
    aellm_baseline_score sc;
    assert_int_equal(aellm_baselines_score(&b, 1, &f->bp.default_obj, f->sp.weights, &sc), 0);
    assert_true(fabs(sc.hv_ratio - 1) < 1e-12);
    aellm_baseline_free(&b);

    f->bp.exhaustive_max = 467;
    assert_int_equal(aellm_baseline_exhaustive(&f->bp, &b), 0);
    assert_true(b.skipped);
    assert_int_equal(b.n_points, 0);
    assert_non_null(strstr(b.note, "468 points"));
    aellm_baseline_free(&b);
}

static void random_spends_the_budget(void **state)
{
    fixture *f = *state;
    aellm_baseline b;
    assert_int_equal(aellm_baseline_random(&f->bp, &b), 0);
    assert_int_equal(b.evaluations, f->sp.budget);
    assert_int_equal(b.n_points, f->sp.budget);
    assert_int_equal(f->y->calls, f->sp.budget);
    aellm_baseline_free(&b);
}

/* Which techniques a point changes from the default: bit 0 quantization,
 * bit 1 KV cache. */
static int techniques_changed(const aellm_space *s, const double *g)
{
    int mask = 0;
    for (int k = 0; k < aellm_space_n_knobs(s); k++) {
        aellm_knob_info in;
        aellm_space_knob(s, k, &in);
        if (g[k] == in.default_gene) continue;
        assert_true(in.applies);
        mask |= !strcmp(in.technique, "quantization") ? 1
                : !strcmp(in.technique, "kv_cache")   ? 2
                                                      : 4;
    }
    return mask;
}

static void single_technique_changes_one_at_a_time(void **state)
{
    fixture *f = *state;
    aellm_baseline b;
    assert_int_equal(aellm_baseline_single_technique(&f->bp, &b), 0);
    /* the KV cache space (12 points) fits its share of 15 and is evaluated
       whole; quantization (39 points) is searched with what is left */
    assert_non_null(strstr(b.note, "kv_cache: every applicable one of its 12 points"));
    assert_non_null(strstr(b.note, "quantization: searched"));
    assert_true(b.evaluations <= f->sp.budget);
    assert_true(b.evaluations >= f->sp.budget - 2);
    assert_int_equal(b.evaluations, f->y->calls);
    assert_int_equal(b.n_points, b.evaluations);
    int seen = 0;
    for (int i = 0; i < b.n_points; i++) {
        int m = techniques_changed(f->space, b.points[i].genes);
        assert_true(m == 0 || m == 1 || m == 2);
        seen |= 1 << m;
    }
    assert_int_equal(seen, 1 | 2 | 4); /* the default and both techniques */
    aellm_baseline_free(&b);

    aellm_space *kv = NULL;
    assert_int_equal(aellm_space_restrict(f->space, "kv_cache", &kv), 0);
    assert_int_equal(aellm_space_enumerate(kv, NULL, NULL), 12);
    aellm_space_free(kv);
    assert_int_equal(aellm_space_restrict(f->space, "moe", &kv), AELLM_EINVAL);
}

/* One stage alone: only that stage's knobs move, within the budget; a
 * stage that does not apply is skipped. */
static void single_stage_moves_one_stage(void **state)
{
    fixture *f = *state;
    aellm_baseline b;
    assert_int_equal(aellm_baseline_single_stage(&f->bp, "architecture", &b), 0);
    assert_true(b.skipped); /* held in the inference-only space */
    aellm_baseline_free(&b);
    aellm_space_free(f->space);
    aellm_space *s = f->space = full_space();
    f->y->space = f->sp.space = s;
    f->sp.budget = 10;
    const char *stages[] = {"finetuning", "inference"};
    for (int i = 0; i < 2; i++) {
        f->y->calls = 0;
        assert_int_equal(aellm_baseline_single_stage(&f->bp, stages[i], &b), 0);
        assert_false(b.skipped);
        assert_true(b.evaluations <= 10 && b.n_points >= 3);
        int moved = 0;
        for (int j = 0; j < b.n_points; j++)
            for (int k = 0; k < aellm_space_n_knobs(s); k++) {
                aellm_knob_info in;
                aellm_space_knob(s, k, &in);
                if (b.points[j].genes[k] == in.default_gene) continue;
                assert_string_equal(in.stage, stages[i]);
                moved++;
            }
        assert_true(moved > 0);
        aellm_baseline_free(&b);
    }
    assert_int_equal(aellm_baseline_single_stage(&f->bp, "nope", &b), AELLM_EINVAL);
}

static void efficientllm_rules(void **state)
{
    fixture *f = *state;
    aellm_baseline b;
    assert_int_equal(aellm_baseline_efficientllm(&f->bp, &b), 0);
    /* 8 GB -> MQA (kv_share 4 of 4 heads); INT4 + MQA costs over 5 % of the
       synthetic accuracy, so the variant without INT4 is measured too */
    assert_non_null(strstr(b.note, "MQA: KV heads pooled to one"));
    assert_non_null(strstr(b.note, "lora: skipped"));
    assert_non_null(strstr(b.note, "dropped"));
    assert_int_equal(b.n_points, 2);
    assert_string_equal(opt(f->space, b.points[0].genes, "inference.weights"), "int4");
    assert_string_equal(opt(f->space, b.points[1].genes, "inference.weights"), "f32");
    assert_string_equal(opt(f->space, b.points[1].genes, "inference.kv_share"), "4");
    aellm_baseline_free(&b);
}

/* With every stage applying, MQA is the architecture stage's and the
 * small model gets LoRA. */
static void efficientllm_rules_over_all_stages(void **state)
{
    fixture *f = *state;
    aellm_space_free(f->space);
    f->space = full_space();
    f->y->space = f->sp.space = f->space;
    aellm_baseline b;
    assert_int_equal(aellm_baseline_efficientllm(&f->bp, &b), 0);
    assert_non_null(strstr(b.note, "MQA: MQA attention"));
    assert_non_null(strstr(b.note, "lora: applied"));
    const double *g = b.points[0].genes;
    assert_string_equal(opt(f->space, g, "architecture.attention"), "mqa");
    assert_string_equal(opt(f->space, g, "finetuning.method"), "lora");
    assert_string_equal(opt(f->space, g, "inference.weights"), "int4");
    assert_string_equal(opt(f->space, g, "inference.kv_share"), "1");
    aellm_baseline_free(&b);
}

static aellm_baseline guidelines(fixture *f, double acc, double lat, double mem, double energy)
{
    double w[AELLM_OBJ_ALL] = {acc, lat, mem, energy, 0};
    memcpy(f->sp.weights, w, sizeof(w));
    f->y->calls = 0; /* each call its own run: repeats across them are allowed */
    aellm_baseline b;
    assert_int_equal(aellm_baseline_guidelines(&f->bp, &b), 0);
    print_message("  %s\n", b.note);
    return b;
}

/* The paper's four scenarios, picked by the heaviest weight or a memory
 * limit the default breaks; every scenario when no weight is heaviest. */
static void guidelines_follow_the_scenarios(void **state)
{
    fixture *f = *state;
    aellm_space_free(f->space);
    aellm_space *s = f->space = full_space();
    f->y->space = f->sp.space = s;

    aellm_baseline b = guidelines(f, 1, 1, 2, 1); /* memory: INT4 + MQA + LoRA r32 */
    assert_int_equal(b.n_points, 1);
    const double *g = b.points[0].genes;
    assert_string_equal(opt(s, g, "inference.weights"), "int4");
    assert_string_equal(opt(s, g, "inference.method"), "awq");
    assert_string_equal(opt(s, g, "inference.group"), "32");
    assert_string_equal(opt(s, g, "architecture.attention"), "mqa");
    assert_string_equal(opt(s, g, "finetuning.method"), "lora");
    assert_string_equal(opt(s, g, "finetuning.rank"), "32");
    aellm_baseline_free(&b);

    b = guidelines(f, 1, 2, 1, 1); /* latency: MoE 4 and 8 experts, GQA, W8A8 */
    assert_int_equal(b.n_points, 2);
    for (int i = 0; i < 2; i++) {
        g = b.points[i].genes;
        assert_string_equal(opt(s, g, "architecture.moe_experts"), i ? "8" : "4");
        assert_string_equal(opt(s, g, "architecture.attention"), "gqa");
        assert_string_equal(opt(s, g, "inference.weights"), "int8");
        assert_string_equal(opt(s, g, "inference.method"), "smoothquant");
    }
    aellm_baseline_free(&b);

    b = guidelines(f, 2, 1, 1, 1); /* accuracy: MLA at FP16, RSLoRA r64; full FT < 2B */
    assert_int_equal(b.n_points, 2);
    assert_string_equal(opt(s, b.points[0].genes, "finetuning.method"), "rslora");
    assert_string_equal(opt(s, b.points[0].genes, "finetuning.rank"), "64");
    assert_string_equal(opt(s, b.points[1].genes, "finetuning.method"), "full");
    for (int i = 0; i < 2; i++) {
        assert_string_equal(opt(s, b.points[i].genes, "architecture.attention"), "mla");
        assert_string_equal(opt(s, b.points[i].genes, "inference.weights"), "f16");
    }
    aellm_baseline_free(&b);
    f->bp.facts.n_params = 7e9; /* a 7B model: RSLoRA alone */
    b = guidelines(f, 2, 1, 1, 1);
    assert_int_equal(b.n_points, 1);
    aellm_baseline_free(&b);

    b = guidelines(f, 1, 1, 1, 2); /* energy: INT4 first, with GQA and with MQA */
    assert_int_equal(b.n_points, 2);
    assert_string_equal(opt(s, b.points[0].genes, "architecture.attention"), "gqa");
    assert_string_equal(opt(s, b.points[1].genes, "architecture.attention"), "mqa");
    assert_string_equal(opt(s, b.points[1].genes, "inference.weights"), "int4");
    aellm_baseline_free(&b);

    b = guidelines(f, 1, 1, 1, 1); /* no heaviest weight: all four, 6 points at 7B */
    assert_int_equal(b.n_points, 6);
    assert_non_null(strstr(b.note, "all four scenarios"));
    aellm_baseline_free(&b);

    f->sp.max_mem_bytes = 0.5 * f->bp.default_obj.v[AELLM_OBJ_MEM]; /* broken by the default */
    b = guidelines(f, 1, 2, 1, 1);
    assert_non_null(strstr(b.note, "memory limit -> memory-constrained"));
    assert_string_equal(opt(s, b.points[0].genes, "architecture.attention"), "mqa");
    aellm_baseline_free(&b);
}

/* A model whose matrices are 8 wide: ranks above 8 do not apply. */
static int narrow_model(void *user, const double *genes)
{
    synth *y = user;
    int k = aellm_space_find(y->space, "finetuning.rank");
    return !aellm_space_is_active(y->space, genes, k) ||
           atof(opt(y->space, genes, "finetuning.rank")) <= 8;
}

/* The rules name ranks for billion-parameter models: on a narrower one the
 * rank comes down to the widest that applies, and the note says so. */
static void guidelines_fit_the_rank_to_the_model(void **state)
{
    fixture *f = *state;
    aellm_space_free(f->space);
    aellm_space *s = f->space = full_space();
    f->y->space = f->sp.space = s;
    f->sp.applicable = narrow_model;
    aellm_baseline b = guidelines(f, 1, 1, 2, 1);
    assert_int_equal(b.n_points, 1);
    assert_string_equal(opt(s, b.points[0].genes, "finetuning.method"), "lora");
    assert_string_equal(opt(s, b.points[0].genes, "finetuning.rank"), "8");
    assert_non_null(strstr(b.note, "adapter rank lowered to 8"));
    aellm_baseline_free(&b);
    f->y->calls = 0;
    assert_int_equal(aellm_baseline_efficientllm(&f->bp, &b), 0);
    assert_string_equal(opt(s, b.points[0].genes, "finetuning.rank"), "8");
    aellm_baseline_free(&b);
}

/* With the training stages held (a task without training text) what the
 * guideline names there is noted and the rest still runs. */
static void guidelines_note_what_does_not_apply(void **state)
{
    fixture *f = *state;
    aellm_baseline b = guidelines(f, 1, 1, 2, 1);
    assert_int_equal(b.n_points, 1);
    assert_non_null(strstr(b.note, "architecture.attention = mqa not applicable here"));
    assert_non_null(strstr(b.note, "finetuning.method = lora not applicable here"));
    assert_string_equal(opt(f->space, b.points[0].genes, "inference.weights"), "int4");
    assert_string_equal(opt(f->space, b.points[0].genes, "inference.method"), "awq");
    aellm_baseline_free(&b);
}

/* Two hand-made rows: the scores against a direct computation. */
static void scores_match_a_direct_computation(void **state)
{
    (void)state;
    aellm_search_point ex[3] = {{.obj = {.v = {0.5, 1.0, 100, 10}}, .measured = 1},
                                {.obj = {.v = {0.4, 0.5, 50, 5}}, .measured = 1},
                                {.obj = {.v = {0.3, 0.2, 20, 2}}, .measured = 1}};
    aellm_search_point one[2] = {{.obj = {.v = {0.4, 0.5, 50, 5}}, .measured = 1},
                                 {.obj = {.v = {0.9, 0.1, 1, 1}}, .measured = 1, .violation = 1}};
    aellm_baseline rows[2] = {{.name = "exhaustive", .points = ex, .n_points = 3},
                              {.name = "rules", .points = one, .n_points = 2}};
    double w[AELLM_OBJ_ALL] = {1, 1, 1, 1, 0};
    aellm_baseline_score sc[2];
    assert_int_equal(aellm_baselines_score(rows, 2, &ex[0].obj, w, sc), 0);
    /* ranges over the feasible points: acc [0.3, 0.5], lat [0.2, 1], ... */
    double lo[AELLM_OBJ_ALL] = {0.3, 0.2, 20, 2, 0}, hi[AELLM_OBJ_ALL] = {0.5, 1.0, 100, 10, 0},
           hv0, hv1;
    aellm_search_hypervolume(&hv0, ex, 3, lo, hi);
    aellm_search_hypervolume(&hv1, one, 2, lo, hi);
    assert_true(fabs(sc[0].hv - hv0) < 1e-12 && fabs(sc[1].hv - hv1) < 1e-12);
    assert_true(fabs(sc[1].hv_ratio - hv1 / hv0) < 1e-12);
    assert_int_equal(sc[1].pick, 0); /* the infeasible point is never picked */
    /* U with equal weights: 1 - 3 = -2 for the first point, 0.5 - 3 x 0.375
       = -0.625 for the second, 0 - 0 = 0 for the third */
    assert_int_equal(sc[0].pick, 2);
    assert_true(fabs(aellm_utility(&ex[1].obj, w, lo, hi) + 0.625) < 1e-12);
    double eff = cbrt(1.0 / 0.5 * 100.0 / 50 * 10.0 / 5) * 0.4 / 0.5;
    assert_true(fabs(sc[1].efficiency - eff) < 1e-12);
    assert_true(fabs(sc[1].best_efficiency - eff) < 1e-12); /* its only feasible point */
    double e0 = 1.0, e1 = cbrt(2.0 * 2 * 2) * 0.8, e2 = cbrt(5.0 * 5 * 5) * 0.6;
    assert_true(fabs(sc[0].best_efficiency - fmax(e0, fmax(e1, e2))) < 1e-12);
    assert_true(fabs(sc[1].acc_change - (0.4 / 0.5 - 1)) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exhaustive_visits_each_point_once, setup, teardown),
        cmocka_unit_test_setup_teardown(random_spends_the_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(single_technique_changes_one_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(single_stage_moves_one_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(efficientllm_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(efficientllm_rules_over_all_stages, setup, teardown),
        cmocka_unit_test_setup_teardown(guidelines_follow_the_scenarios, setup, teardown),
        cmocka_unit_test_setup_teardown(guidelines_note_what_does_not_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(guidelines_fit_the_rank_to_the_model, setup, teardown),
        cmocka_unit_test(scores_match_a_direct_computation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
