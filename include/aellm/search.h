/* The surrogate-assisted search (DESIGN.md §3) over a configuration space,
 * independent of how a configuration is measured: the caller gives an
 * evaluator (aellm eval's pipeline for real runs, a synthetic function in
 * tests). Seed sample measured, one XGBoost ensemble per objective trained,
 * NSGA-II run on their predictions, then refinement rounds that measure the
 * predicted-front members not yet measured, most uncertain first, retrain
 * and search again, until the budget of real evaluations is spent. */
#ifndef AELLM_SEARCH_H
#define AELLM_SEARCH_H

#include <stdint.h>

#include "aellm/nsga2.h"
#include "aellm/objectives.h"
#include "aellm/space.h"
#include "aellm/surrogate.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Measures one canonical, valid point. Returns 0 with *out filled; a
 * positive return marks the point as unusable (e.g. it does not fit the
 * model) without spending budget; a negative one aborts the search. */
typedef int (*aellm_search_eval_fn)(void *user, const double *genes, aellm_objectives *out);
/* Whether a valid point of the space can be applied to this model (e.g. KV
 * heads that divide the model's); 1 = yes. Used before measuring and for
 * the points NSGA-II may propose. */
typedef int (*aellm_search_valid_fn)(void *user, const double *genes);
/* Measures n canonical, valid points at once (another process or node may
 * measure each): out[i] and status[i] as aellm_search_eval_fn's *out and
 * return for point i; a negative return aborts the search. */
typedef int (*aellm_search_eval_batch_fn)(void *user, const double *genes, int n,
                                          aellm_objectives *out, int *status);
/* Called after each real evaluation: done of budget. */
typedef void (*aellm_search_progress_fn)(int done, int budget, const char *phase, void *user);

typedef struct {
    const aellm_space *space;
    aellm_search_eval_fn evaluate;
    aellm_search_valid_fn applicable; /* may be NULL: every valid point applies */
    void *user;
    int budget;        /* real evaluations, the default point included (default 30) */
    int n_seed;        /* of them in the seed sample (0: a third of the budget, at least 8) */
    int refine_rounds; /* R (default 3); not used when batch > 0 */
    /* Batched refinement: each round trains the surrogates, runs NSGA-II and
     * proposes `batch` points to measure at once, chosen one after another
     * by the Kriging believer (after each choice its predicted objectives
     * are taken as measured and the surrogates retrained, so the next choice
     * is not where the last one already looks), until the budget is spent;
     * the seed sample is measured in batches too. 0: R rounds of
     * (budget - seed) / R evaluations each, measured one at a time. */
    int batch;
    /* Measures a batch at once (NULL: evaluate, one point after another).
     * Points are added to the search in the batch's order whatever order they
     * finish in, so the search is the same for any evaluator of the batch. */
    aellm_search_eval_batch_fn evaluate_batch;
    /* Share of each round's evaluations spent on random unmeasured points
     * rather than the predicted front: exploration where the surrogates are
     * confidently wrong (default 0). */
    double explore;
    double weights[AELLM_OBJ_ALL]; /* utility weights (default 1, tune 0; tune > 0 adds it to the
                                      front) */
    double max_mem_bytes, max_power_w; /* constraints; <= 0 = none */
    /* Accuracy floor relative to the default configuration (measured first):
     * a point whose accuracy is below (1 - max_acc_drop) x the default's is
     * infeasible (aellm_violation_with_floor). 0 = no floor (the default). */
    double max_acc_drop;
    /* The optimiser on the surrogates. With stage_mutation NULL the search
     * sets it: 1 / genes per gene, twice that for the fine-tuning stage's
     * (DESIGN.md §3: per-stage rates, fine-tuning highest). */
    aellm_nsga2_params nsga2;
    aellm_surrogate_params surrogate;
    uint64_t seed;
    aellm_search_progress_fn progress;
    void *progress_user;
    /* Features of the model, task and hardware (DESIGN.md §3: parameters,
     * layers, widths, task kind and lengths, bandwidth, peak compute,
     * memory, power), appended to every configuration's row: constant within
     * one search, they let surrogates trained on one model be carried to
     * another. Borrowed; may be NULL. */
    const double *context;
    int n_context;
    /* Surrogates of an earlier search over the same space and context layout
     * (one per objective; NULL entries train from scratch): every training
     * warm-starts from them and continues on this search's measurements
     * (aellm_surrogate_fit_transfer), so fewer real evaluations are needed.
     * Borrowed, not modified. */
    aellm_surrogate *const *transfer_from;
} aellm_search_params;

void aellm_search_params_default(aellm_search_params *p);

typedef struct {
    double *genes; /* (n_knobs) */
    aellm_objectives obj;
    int measured; /* 1: a real evaluation; 0: predicted by the surrogates */
    int on_front; /* measured and non-dominated among the feasible measured points */
    double violation;
} aellm_search_point;

typedef struct {
    aellm_search_point *points; /* measured first (in order of evaluation), then predicted
                                   front members that were never measured */
    int n_points, n_measured;
    int default_index; /* the default configuration (always measured first) */
    int pick_index;    /* argmax U among the measured front */
    double pick_utility;
    double efficiency; /* of the pick against the default (aellm_efficiency_definition) */
    double
        r2[AELLM_OBJ_ALL]; /* held-out R^2 of surrogates trained as the search trains them
                                (warm-started when transfer_from is set); NaN if too few points */
    int evaluations;       /* real evaluations spent */
    double min_acc;        /* the accuracy floor applied (0: none) */
    /* The final surrogates, trained on every measured point (NULL when there
     * were no refinement rounds): owned by the result; save them
     * (aellm_surrogate_save) for a later search's transfer_from. */
    aellm_surrogate *surrogates[AELLM_OBJ_ALL];
    /* Per-knob sensitivity (n_knobs x AELLM_OBJ_COUNT, NaN for knobs held
     * fixed; NULL without refinement rounds): for each measured point, the
     * knob alone set to each of its valid values, the spread (max - min) of
     * the final surrogates' prediction of each objective over them divided
     * by the objective's measured range; the mean over the measured points.
     * Owned by the result. */
    double *sensitivity;
} aellm_search_result;

void aellm_search_result_free(aellm_search_result *r); /* frees the contents */

int aellm_search_run(const aellm_search_params *p, aellm_search_result *out);

/* Hypervolume of the measured feasible points in the minimisation form
 * (-acc, lat, mem, energy), each objective normalised by lo/hi to [0, 1],
 * reference point 1.1 per objective: comparable across searches that share
 * lo/hi. */
int aellm_search_hypervolume(double *out, const aellm_search_point *pts, int n,
                             const double lo[AELLM_OBJ_COUNT], const double hi[AELLM_OBJ_COUNT]);

#ifdef __cplusplus
}
#endif
#endif
