/* Training checkpoints (checkpoint.c): what a killed run needs to continue
 * to the same final loss. */
#ifndef AELLM_TECHNIQUES_FINETUNE_CHECKPOINT_H
#define AELLM_TECHNIQUES_FINETUNE_CHECKPOINT_H

#include <stdint.h>

#include "techniques/finetune/adamw.h"
#include "techniques/finetune/data.h"

typedef struct {
    /* the run, for checking that a checkpoint belongs to it */
    int method, rank, B, T, steps;
    /* the state: trainable arrays (borrowed), optimiser moments (borrowed) */
    const train_optim_group *groups;
    int n_groups;
    float *state;
    uint64_t n_state;
    int step; /* steps done */
    train_data_pos pos;
    double heldout_before;
    double loss; /* the last step's training loss */
} train_ckpt;

/* Atomic: a temporary file renamed over `path`. */
int train_checkpoint_save(const char *path, const train_ckpt *c);
/* Fills the groups' arrays, the moments, step, pos, heldout_before and loss.
 * AELLM_ENOTFOUND when absent; AELLM_EINVAL naming the file when it is
 * another run's; AELLM_EFORMAT when damaged. */
int train_checkpoint_load(const char *path, train_ckpt *c);

#endif
