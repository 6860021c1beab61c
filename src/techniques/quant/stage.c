/* The inference stage (DESIGN.md §2): KV heads pooled, weights quantized by
 * the configured method, the KV cache's precision handed to the engine
 * (aellm_config_apply). Cheap next to measuring, so its output is made
 * again rather than kept. */
#include <stdlib.h>

#include "techniques/stage.h"

static int inference_applies(const aellm_config *c)
{
    (void)c; /* it always decides the engine's KV cache type */
    return 1;
}

static void quant_progress(int layer, int n_layers, void *user)
{
    const aellm_stage_env *env = user;
    if (env->progress) env->progress("quantize", layer + 1, n_layers, env->user);
}

static int inference_run(const aellm_config *c, aellm_model **m, const aellm_stage_env *env,
                         cJSON **report)
{
    aellm_model *quantized = NULL;
    *report = NULL;
    env->ep->n_threads = env->n_threads;
    int rc = aellm_config_apply(c, *m, &quantized, env->ep, quant_progress, (void *)env);
    if (rc || !quantized) return rc;
    aellm_model_free(*m); /* the quantized model owns copies of all it needs */
    *m = quantized;
    return 0;
}

const aellm_stage aellm_stage_inference = {
    .name = "inference",
    .keep = 0,
    .applies = inference_applies,
    .canonical = aellm_config_canonical_inference,
    .run = inference_run,
};
