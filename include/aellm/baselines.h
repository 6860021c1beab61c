/* The baselines a search is compared with (DESIGN.md §3), on the same
 * evaluator, store, constraints and budget: random search, exhaustive
 * search where the space is small enough, the best single-technique
 * optimisation, the EfficientLLM rules and practical guidelines; and the
 * scores that put them side by side (hypervolume, efficiency score and
 * accuracy change of each one's utility pick). Independent of how a point
 * is measured, like aellm_search. */
#ifndef AELLM_BASELINES_H
#define AELLM_BASELINES_H

#include "aellm/search.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the rule-based baselines read about the model and the machine. */
typedef struct {
    double mem_bytes; /* the memory budget: the limit, else the machine's */
    double n_params;  /* the model's parameters */
    int n_kv_heads;   /* the model's KV heads */
    /* Share of the default configuration's peak memory that is KV cache, at
     * the task's context length. */
    double kv_fraction;
} aellm_baseline_facts;

typedef struct {
    /* Space, evaluator, budget, constraints, weights, seed and progress of
     * the search being compared; borrowed. */
    const aellm_search_params *search;
    aellm_objectives default_obj; /* the measured default configuration */
    double min_acc;               /* accuracy floor in force (0: none) */
    aellm_baseline_facts facts;
    int exhaustive_max; /* largest space evaluated exhaustively (default 500) */
} aellm_baseline_params;

void aellm_baseline_params_default(aellm_baseline_params *p);

typedef struct {
    const char *name;           /* "random", "exhaustive", ... (static) */
    aellm_search_point *points; /* measured points, owned (genes included) */
    int n_points;
    int evaluations; /* calls to the evaluator, store hits included */
    int skipped;     /* 1: not run (the note says why); no points */
    char note[768];  /* what the method did, in one or more lines */
} aellm_baseline;

void aellm_baseline_free(aellm_baseline *b); /* frees the contents */

/* A copy of the first n measured points of a search as a row ("search" with
 * all of them, "default" with the first). */
int aellm_baseline_from_search(const aellm_search_result *r, const aellm_space *space,
                               const char *name, int n, aellm_baseline *out);

/* Random search: the search's budget spent on constraint-aware random
 * points (the search with no refinement). */
int aellm_baseline_random(const aellm_baseline_params *p, aellm_baseline *out);

/* Every valid, applicable point once; skipped (out->skipped) when the space
 * has more than p->exhaustive_max points. */
int aellm_baseline_exhaustive(const aellm_baseline_params *p, aellm_baseline *out);

/* The best one can do optimising one technique at a time with the rest at
 * the default (the knobs' "technique" groups; with one stage applying, its
 * techniques): the budget is shared equally among the techniques, smallest
 * space first, unused budget carried to the next; a technique whose space
 * fits its share is evaluated exhaustively, else searched. The row is the
 * union of their points. */
int aellm_baseline_single_technique(const aellm_baseline_params *p, aellm_baseline *out);

/* The best one can do optimising one stage alone (architecture,
 * finetuning or inference; the others held at their defaults): the same
 * search with the same budget on the space restricted to that stage, as
 * the AE-LLM paper's single-stage baselines. Named "<stage>-only"; skipped
 * (out->skipped) when no knob of the stage applies here. */
int aellm_baseline_single_stage(const aellm_baseline_params *p, const char *stage,
                                aellm_baseline *out);

/* The EfficientLLM rules (arXiv 2505.13840, DESIGN.md §3): memory < 50 GB
 * -> MQA (the architecture stage's, else KV heads pooled post hoc); > 100 GB
 * -> MoE with 8 experts; < 3B parameters -> LoRA; > 14B -> RSLoRA; INT4
 * when the accuracy drop is < 5 %. A rule whose knob cannot be applied here
 * (its stage held, say for want of training text) is noted and skipped;
 * measures the INT4 variant, and the variant without INT4 when the drop is
 * 5 % or more. */
int aellm_baseline_efficientllm(const aellm_baseline_params *p, aellm_baseline *out);

/* The AE-LLM paper's practical guidelines (arXiv 2603.20492, §5.6), by
 * scenario:
 *  - memory-constrained: INT4 weights, MQA attention, LoRA rank 32;
 *  - latency-critical: MoE with 4-8 experts (both measured), GQA, INT8
 *    (SmoothQuant W8A8 where it applies);
 *  - accuracy-critical: MLA attention at FP16, RSLoRA rank 64 (and, below
 *    2B parameters, where the paper finds it competitive, full fine-tuning);
 *  - energy: quantization first (INT4) with an efficient attention variant
 *    (GQA and MQA both measured).
 * INT4 is the most accurate calibrated method available (AWQ, else GPTQ,
 * else RTN; group 32). The scenario: a memory limit the default breaks ->
 * memory-constrained; else the heaviest preference weight (accuracy,
 * latency, memory, energy); with no single heaviest, every scenario is
 * measured and the row's utility pick decides. A knob that does not apply
 * here is noted and left at its default. At most seven evaluations. */
int aellm_baseline_guidelines(const aellm_baseline_params *p, aellm_baseline *out);

typedef struct {
    double hv;              /* hypervolume of the row's feasible measured points */
    double hv_ratio;        /* to the exhaustive row's (NaN without one) */
    int pick;               /* argmax U among its feasible measured points; -1: none */
    double efficiency;      /* of the pick against the default (NaN without a pick) */
    double acc_change;      /* acc(pick) / acc(default) - 1 (NaN without a pick) */
    double best_efficiency; /* the highest efficiency among its feasible measured points (the
                               paper's protocol: efficiency at accuracy within the floor) */
} aellm_baseline_score;

/* Scores n rows on one scale: objectives normalised over every row's
 * feasible measured points, reference 1.1 per objective; the pick by the
 * weights w over that same range. */
int aellm_baselines_score(const aellm_baseline *rows, int n, const aellm_objectives *default_obj,
                          const double w[AELLM_OBJ_ALL], aellm_baseline_score *out);

#ifdef __cplusplus
}
#endif
#endif
