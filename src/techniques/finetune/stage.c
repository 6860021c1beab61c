/* The fine-tuning stage (DESIGN.md §2): the configuration's `finetuning`
 * part trains the model (include/aellm/train.h) and hands back the merged
 * model; its report is the training result. */

#include "aellm/train.h"
#include "techniques/stage.h"

static int finetuning_applies(const aellm_config *c)
{
    return aellm_config_finetunes(c);
}

static char *finetuning_canonical(const aellm_config *c, const aellm_model *m)
{
    (void)m; /* the pipeline keys the input model */
    return aellm_config_canonical_finetuning(c);
}

typedef struct {
    const aellm_stage_env *env;
    const char *phase;
} stage_progress;

static void train_progress(const aellm_train_progress *p, void *user)
{
    const stage_progress *sp = user;
    if (sp->env->progress) sp->env->progress(sp->phase, p->step, p->steps, sp->env->user);
}

int aellm_stage_train(aellm_model **m, const char *data, aellm_train_params *p, const char *phase,
                      const aellm_stage_env *env, cJSON **result)
{
    stage_progress sp = {env, phase};
    p->eval_max = 32; /* the held-out loss is a report; the task scores the model */
    p->progress = train_progress;
    p->progress_user = &sp;
    aellm_model *trained = NULL;
    aellm_train_result res;
    int rc = aellm_train(&trained, *m, data, p, &res);
    if (rc) return rc;
    aellm_model_free(*m);
    *m = trained;
    *result = aellm_train_result_json(&res);
    return 0;
}

static int finetuning_run(const aellm_config *c, aellm_model **m, const aellm_stage_env *env,
                          cJSON **report)
{
    aellm_train_params p;
    aellm_config_train_params(c, &p);
    return aellm_stage_train(m, c->ft_data, &p, "finetune", env, report);
}

const aellm_stage aellm_stage_finetuning = {
    .name = "finetuning",
    .keep = 1,
    .applies = finetuning_applies,
    .canonical = finetuning_canonical,
    .run = finetuning_run,
};
