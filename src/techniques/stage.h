/* The stages of DESIGN.md §1 as one shape: a configuration and a model in,
 * the transformed model out, with what the stage reports of its own run.
 * The evaluation pipeline (src/measure/evaluate.c) runs aellm_stages() in
 * order, keys each intermediate model by what produced it (the model it came
 * from and the stage's canonical configuration), keeps on disk the outputs
 * of stages that are costly to make, and measures each stage's wall time and
 * energy itself; a stage only transforms. */
#ifndef AELLM_TECHNIQUES_STAGE_H
#define AELLM_TECHNIQUES_STAGE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "aellm/config.h"
#include "aellm/engine.h"
#include "aellm/model.h"

typedef struct {
    int n_threads;
    aellm_engine_params *ep; /* engine settings a stage decides (the KV cache type) */
    void (*progress)(const char *phase, int64_t done, int64_t total, void *user);
    void *user;
} aellm_stage_env;

typedef struct {
    const char *name; /* the configuration's key for the stage, and the record's */
    int keep;         /* costly to make: the pipeline keeps its output model on disk */
    /* Whether the configuration asks anything of this stage. */
    int (*applies)(const aellm_config *c);
    /* The canonical JSON of what the stage does to `m` (caller frees; NULL
       after an error): two configurations that make the same model give the
       same text. */
    char *(*canonical)(const aellm_config *c, const aellm_model *m);
    /* Transforms *m: in place, or by replacing it (the stage frees the model
       it was given). *report (caller frees) is the stage's own account of the
       run (training losses, trainable parameters), NULL when it has none. On
       error *m is still the caller's to free. */
    int (*run)(const aellm_config *c, aellm_model **m, const aellm_stage_env *env, cJSON **report);
} aellm_stage;

/* The stages that train do it through this: *m trained with p on `data`
 * (the held-out loss a report, progress as `phase`), replaced by the
 * trained model; *result (caller frees) the training's JSON
 * (aellm_train_result_json). On error *m is unchanged. */
int aellm_stage_train(aellm_model **m, const char *data, aellm_train_params *p, const char *phase,
                      const aellm_stage_env *env, cJSON **result);

/* The stages in the order they apply; *n gets their count. */
const aellm_stage *const *aellm_stages(int *n);

extern const aellm_stage aellm_stage_architecture; /* techniques/arch/stage.c */
extern const aellm_stage aellm_stage_finetuning;   /* techniques/finetune/stage.c */
extern const aellm_stage aellm_stage_inference;    /* techniques/quant/stage.c */

#endif
