/* What the surrogate's files share: the handle's layout, setting the training
 * parameters on a booster, and turning XGBoost failures into aellm errors. */
#ifndef AELLM_OPTIMIZE_SURROGATE_INTERNAL_H
#define AELLM_OPTIMIZE_SURROGATE_INTERNAL_H

#include <xgboost/c_api.h>

#include "aellm/surrogate.h"

struct aellm_surrogate {
    aellm_surrogate_params p;
    int k;            /* members trained; 0 until fit or load */
    size_t d;         /* features of the trained model */
    BoosterHandle *b; /* (k) */
    /* Targets are trained as (y - y_shift) / y_scale and predictions mapped
     * back: XGBoost drops splits whose loss reduction is below 1e-6, so on
     * targets of a few milliseconds (latency) every tree would be a single
     * leaf and the model a constant. Set by fit from its targets, inherited
     * by update and transfer. */
    double y_shift, y_scale;
};

/* AELLM_ERROR with XGBoost's last message when rc != 0, else 0. */
int aellm_surr_xgb(int rc, const char *what);

/* Checks every field's range; AELLM_EINVAL naming the field. */
int aellm_surr_params_check(const aellm_surrogate_params *p);

/* Sets p's training parameters on booster b as member `member` about to
 * grow from tree `start` (the seed depends on both). */
int aellm_surr_set_params(BoosterHandle b, const aellm_surrogate_params *p, int member, int start);

/* Frees boosters b[0..k) and the array. */
void aellm_surr_free_members(BoosterHandle *b, int k);

#endif
