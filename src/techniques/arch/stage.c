/* The architecture stage (DESIGN.md §2): the attention converted (GQA / MQA
 * by mean-pooling key/value heads, Ainslie et al. 2023), the FFN made a
 * mixture of experts (MoEfication's split with routers fitted on the
 * uptraining text, or sparse upcycling), then the whole converted model
 * uptrained on text for a step budget, as the GQA paper continues
 * pretraining and LLaMA-MoE continues training with a balance loss (here
 * full fine-tuning, include/aellm/train.h). Its report says what changed and
 * how much uptraining the model had. */
#include <stdlib.h>
#include <string.h>

#include "aellm/arch.h"
#include "techniques/stage.h"

static int architecture_applies(const aellm_config *c)
{
    return aellm_config_converts(c);
}

/* Key and value numbers stored per token, over all layers (the latent and
 * the rotary keys with latent attention). */
static double kv_values_per_token(const aellm_model *m)
{
    const aellm_model_config *c = aellm_model_config_get(m);
    if (c->mla_rank) return (double)c->n_layers * (c->mla_rank + c->n_kv_heads * c->mla_rope_dim);
    return 2.0 * c->n_layers * c->n_kv_heads * c->head_dim;
}

/* MHA2MLA's conversion; the rotary pairs scored on the uptraining text when
 * there is one. */
static int to_latent(const aellm_config *c, aellm_model *m, cJSON *j)
{
    aellm_mla_params p;
    aellm_mla_params_default(&p);
    p.rank = aellm_config_mla_rank(c, m);
    p.rope_dim = aellm_config_mla_rope_dim(c, m);
    p.calib_path = c->arch_uptrain_data[0] ? c->arch_uptrain_data : NULL;
    aellm_mla_report rep;
    int rc = aellm_model_to_mla(m, &p, &rep);
    if (rc) return rc;
    cJSON *e = cJSON_AddObjectToObject(j, "mla");
    cJSON_AddNumberToObject(e, "rank", rep.rank);
    cJSON_AddNumberToObject(e, "rope_dim", rep.rope_dim);
    cJSON_AddStringToObject(e, "pairs_scored_on", p.calib_path ? p.calib_path : "weight norms");
    cJSON_AddNumberToObject(e, "pairs_tokens", (double)rep.calib_tokens);
    cJSON_AddNumberToObject(e, "svd_energy_kept", rep.svd_energy_kept);
    return 0;
}

static cJSON *conversion_json(const aellm_config *c, int before, int after, double kv_before,
                              double kv_after)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "attention", c->arch_attention);
    cJSON_AddNumberToObject(j, "kv_heads_before", before);
    cJSON_AddNumberToObject(j, "kv_heads", after);
    cJSON_AddNumberToObject(j, "kv_values_per_token_before", kv_before);
    cJSON_AddNumberToObject(j, "kv_values_per_token", kv_after);
    return j;
}

/* Splits or upcycles the FFN; fits a split's routers on the uptraining text
 * when there is one. */
static int to_experts(const aellm_config *c, aellm_model *m, cJSON *j)
{
    aellm_moe_params p;
    aellm_moe_params_default(&p);
    p.n_experts = c->arch_moe_experts;
    p.top_k = c->arch_moe_top_k;
    p.method = strcmp(c->arch_moe_method, "upcycle") ? AELLM_MOE_SPLIT : AELLM_MOE_UPCYCLE;
    double params = (double)aellm_model_active_params(m);
    int rc = aellm_model_to_moe(m, &p);
    if (rc) return rc;
    cJSON *e = cJSON_AddObjectToObject(j, "moe");
    cJSON_AddNumberToObject(e, "experts", p.n_experts);
    cJSON_AddNumberToObject(e, "top_k", p.top_k);
    cJSON_AddStringToObject(e, "method", c->arch_moe_method);
    cJSON_AddNumberToObject(e, "expert_hidden", aellm_model_config_get(m)->hidden_dim);
    cJSON_AddNumberToObject(e, "active_params_before", params);
    cJSON_AddNumberToObject(e, "active_params", (double)aellm_model_active_params(m));
    cJSON_AddNumberToObject(e, "params", (double)aellm_model_n_params(m));
    if (!aellm_config_arch_fits_routers(c)) {
        cJSON_AddStringToObject(e, "router", p.method == AELLM_MOE_SPLIT ? "centroids" : "random");
        return 0;
    }
    aellm_moe_fit_report fit;
    if ((rc = aellm_moe_fit_routers(m, c->arch_uptrain_data, 0, &fit))) return rc;
    cJSON_AddStringToObject(e, "router", "fitted");
    cJSON_AddStringToObject(e, "router_data", c->arch_uptrain_data);
    cJSON_AddNumberToObject(e, "router_tokens", (double)fit.tokens);
    cJSON_AddNumberToObject(e, "router_agreement_centroids", fit.agreement_before);
    cJSON_AddNumberToObject(e, "router_agreement", fit.agreement);
    cJSON_AddNumberToObject(e, "router_scale", fit.scale);
    return 0;
}

static int architecture_run(const aellm_config *c, aellm_model **m, const aellm_stage_env *env,
                            cJSON **report)
{
    int before = aellm_model_config_get(*m)->n_kv_heads, to = aellm_config_arch_kv_heads(c, *m);
    double kv_before = kv_values_per_token(*m);
    int rc = aellm_model_share_kv_heads(*m, to);
    if (rc) return rc;
    cJSON *j = conversion_json(c, before, to, kv_before, kv_values_per_token(*m));
    if (!strcmp(c->arch_attention, "mla")) {
        if ((rc = to_latent(c, *m, j))) {
            cJSON_Delete(j);
            return rc;
        }
        cJSON_ReplaceItemInObject(j, "kv_values_per_token",
                                  cJSON_CreateNumber(kv_values_per_token(*m)));
    }
    if (c->arch_moe_experts > 1 && (rc = to_experts(c, *m, j))) {
        cJSON_Delete(j);
        return rc;
    }
    double tokens = 0; /* of uptraining: the record says how much the model had */
    if (c->arch_uptrain_steps > 0) {
        aellm_train_params p;
        aellm_config_uptrain_params(c, &p);
        cJSON *up = NULL;
        if ((rc = aellm_stage_train(m, c->arch_uptrain_data, &p, "uptrain", env, &up))) {
            cJSON_Delete(j);
            return rc;
        }
        tokens = cJSON_GetNumberValue(cJSON_GetObjectItem(up, "tokens"));
        cJSON_AddStringToObject(up, "data", c->arch_uptrain_data);
        cJSON_AddItemToObject(j, "uptraining", up);
    }
    cJSON_AddNumberToObject(j, "uptrain_tokens", tokens);
    *report = j;
    return 0;
}

const aellm_stage aellm_stage_architecture = {
    .name = "architecture",
    .keep = 1,
    .applies = architecture_applies,
    .canonical = aellm_config_canonical_architecture,
    .run = architecture_run,
};
