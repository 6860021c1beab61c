/* What `aellm search` shares between its files: the evaluator that turns a
 * point of the space into an evaluation (cmd_search.c) and its distributed
 * form over MPI (search_dist.c). */
#ifndef AELLM_CLI_SEARCH_INTERNAL_H
#define AELLM_CLI_SEARCH_INTERNAL_H

#include <cjson/cJSON.h>

#include "aellm/config.h"
#include "aellm/evaluate.h"
#include "aellm/hardware.h"
#include "aellm/model.h"
#include "aellm/objectives.h"
#include "aellm/space.h"
#include "aellm/store.h"
#include "cli/cli.h"

typedef struct {
    const aellm_space *space;
    aellm_eval_request req; /* model, task, latency, limits */
    aellm_store *store;
    const char *calib; /* calibration text for calibrated methods */
    long calib_skip;
    char model_hash[65];
    const aellm_model *model; /* for what applies to it */
    int ft_steps;             /* optimiser steps of a fine-tuning stage */
    int uptrain_steps;        /* of uptraining after an architecture conversion */
    const char *train;        /* its training data: --train, else the task's "train" file */
    int cached, failed;
    cli_progress bar;       /* the status line */
    const double *weights;  /* the utility's, for the best U so far */
    aellm_objectives *seen; /* every measured point's objectives, in order */
    int n_seen, cap_seen;
    /* --hardware: latency, memory and energy predicted for that deployment
       (the model's shape, or --shape's), accuracy measured here */
    const aellm_hw_profile *target;
    aellm_model_config target_shape;
    const char *target_shape_name; /* --shape, or NULL: the model's own */
    int target_base_type;
    /* distributed (src/cli/search_dist.c) */
    char *anchor;         /* rank 0: the default's record, exported, sent with each job */
    char worker_db[4096]; /* a worker's own store: the paired default, its records */
    double silence_s;     /* a worker silent this long is given up on */
    double job_timeout_s; /* a worker kills a job running this long (0: never) */
} evaluator;

/* The point as an eval configuration (what `aellm eval` takes), with the
 * calibration text and the training stages' data and steps. */
cJSON *search_eval_config_json(const evaluator *ev, const double *genes);
/* The point as a parsed configuration; non-zero when it does not parse (a
 * point that does not apply here). */
int search_to_config(const evaluator *ev, const double *genes, aellm_config *c);
/* A record's objectives (the target's where there is one), kept for the
 * status line. */
int search_record_objectives(evaluator *ev, const aellm_config *c, const char *rec,
                             aellm_objectives *out);

/* Rank 0: measures a batch on the worker ranks (aellm_search_eval_batch_fn). */
int search_dist_batch(void *user, const double *genes, int n, aellm_objectives *out, int *status);
/* A worker rank: measures what rank 0 sends until it says stop. */
int search_dist_worker(evaluator *ev);

#endif
