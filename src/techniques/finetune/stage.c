/* The fine-tuning stage (DESIGN.md §2): the configuration's `finetuning`
 * part trains the model (include/aellm/train.h) and hands back the merged
 * model; its report is the training result. */
#include <math.h>
#include <stdlib.h>

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

static void train_progress(const aellm_train_progress *p, void *user)
{
    const aellm_stage_env *env = user;
    if (env->progress) env->progress("finetune", p->step, p->steps, env->user);
}

static int finetuning_run(const aellm_config *c, aellm_model **m, const aellm_stage_env *env,
                          cJSON **report)
{
    aellm_train_params p;
    aellm_config_train_params(c, &p);
    p.eval_max = 32; /* the held-out loss is a report here; the task scores the model */
    p.progress = train_progress;
    p.progress_user = (void *)env;
    aellm_model *tuned = NULL;
    aellm_train_result res;
    int rc = aellm_train(&tuned, *m, c->ft_data, &p, &res);
    if (rc) return rc;
    aellm_model_free(*m);
    *m = tuned;
    *report = aellm_train_result_json(&res);
    return 0;
}

const aellm_stage aellm_stage_finetuning = {
    .name = "finetuning",
    .keep = 1,
    .applies = finetuning_applies,
    .canonical = finetuning_canonical,
    .run = finetuning_run,
};
