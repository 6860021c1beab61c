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
