/* AdamW with decoupled weight decay (Loshchilov & Hutter), gradient clipping
 * by global norm, and the learning-rate schedule: linear warm-up, then cosine
 * decay to a floor. Works on groups of (parameter, gradient) arrays, so the
 * dense model, adapters and DoRA magnitudes are optimised alike. Gradient
 * accumulation is the training loop's (it sums micro-batches and scales). */
#ifndef AELLM_TECHNIQUES_FINETUNE_ADAMW_H
#define AELLM_TECHNIQUES_FINETUNE_ADAMW_H

#include <stddef.h>

typedef struct {
    float lr;           /* peak learning rate */
    float lr_min_ratio; /* floor of the cosine decay, as a share of lr (0.1) */
    int warmup;         /* steps of linear warm-up (0: none) */
    int total_steps;    /* steps of the whole run: the cosine reaches the floor there */
    float beta1, beta2, eps;
    float weight_decay; /* applied to groups with decay set (matrices, not norms) */
    float clip;         /* global gradient-norm ceiling (0: none) */
} train_optim_params;

void train_optim_params_default(train_optim_params *p);

typedef struct {
    float *param, *grad; /* n each, borrowed */
    size_t n;
    int decay; /* weight decay applies */
} train_optim_group;

typedef struct train_adamw train_adamw;

/* Moments (zeroed) for the groups, counted as optimizer memory. The group
 * array is copied; the arrays it points to are borrowed. */
int train_adamw_new(train_adamw **out, const train_optim_group *groups, int n_groups,
                    const train_optim_params *p);
void train_adamw_free(train_adamw *o); /* accepts NULL */

/* Learning rate of step `step` (1-based). */
float train_lr_at(const train_optim_params *p, int step);

/* sqrt(sum of squares) over every group's gradient, in double. */
double train_grad_norm(const train_optim_group *groups, int n_groups);

/* One update (step 1-based, the bias corrections use it): clips the
 * gradients to p->clip by global norm, then updates every parameter. The
 * norm before clipping and the learning rate used come back (may be NULL). */
void train_adamw_step(train_adamw *o, int step, double *grad_norm, float *lr);

/* The moments, for checkpoints: 2 * n floats per group (m then v), in group order. */
size_t train_adamw_state_floats(const train_adamw *o);
float *train_adamw_state(train_adamw *o);

#endif
