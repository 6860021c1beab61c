/* Predicted latency, memory and energy of a configuration, for hardware and
 * model sizes that are not here: a roofline over the configuration's real
 * bytes and FLOPs per token. Prefill is bound by compute (or by reading the
 * weights once, whichever is slower), decode by memory bandwidth (the active
 * weights and the KV cache so far, per token), each at the achieved fraction
 * of the peak the hardware profile cites (gpt-fast's measured fractions on
 * A100, for example), plus a fixed cost per kernel. Every figure is a
 * prediction and says which profile it came from. */
#ifndef AELLM_PREDICT_H
#define AELLM_PREDICT_H

#include "aellm/config.h"
#include "aellm/hardware.h"
#include "aellm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_prompt, n_gen; /* the request: 512 and 128 */
    int n_ctx;           /* KV cache positions (0: n_prompt + n_gen) */
    /* What stays unquantized (embedding, output matrix, and every weight
     * when the configuration keeps the weights): f16 for published
     * checkpoints, f32 for aellm's own files. */
    int base_type;
    int n_batch;   /* the engine's prefill batch (0: 512, at most n_ctx) */
    int n_threads; /* the engine's threads, for its per-thread scratch (0: the profile's) */
} aellm_predict_params;

void aellm_predict_params_default(aellm_predict_params *p);

typedef struct {
    /* the work, from the shape the configuration gives the model */
    double weight_bytes;          /* every weight as stored */
    double active_weight_bytes;   /* read per decoded token (routed experts only) */
    double kv_bytes_per_position; /* all layers */
    double flops_per_token;       /* 2 per active parameter */
    double attn_flops_per_pair;   /* q.k and a.v per (query, key) position pair */
    double kernels_per_token;     /* matrix products and attention per layer, + output */
    /* predicted */
    double prefill_s, decode_s, total_s; /* decode_s: all n_gen tokens */
    double memory_bytes;                 /* weights + engine_bytes */
    double engine_bytes; /* the engine's KV cache at n_ctx, activations and scratch */
    double energy_j;     /* the profile's power model over total_s */
    int prefill_compute_bound, decode_compute_bound;
    double eff_bw, eff_compute; /* the achieved fractions used */
    char source[640];           /* "predicted: ..." with the profile and its citations */
} aellm_prediction;

/* The prediction for `shape` under configuration c (its architecture stage
 * applied to the shape: KV heads, latent rank, experts; its inference stage:
 * weight type, KV cache type and pooling; fine-tuning does not change what
 * inference costs). AELLM_EINVAL when c does not fit the shape. */
int aellm_predict(const aellm_model_config *shape, const aellm_config *c,
                  const aellm_hw_profile *hw, const aellm_predict_params *p, aellm_prediction *out);

/* Calibration: this machine's rate per kernel kind (decode and prefill
 * products per weight type, decode attention per KV cache type, the fixed
 * cost of a kernel), measured on the engine's kernels alone into hw (first
 * detected, bandwidth and peak measured), so that predict can be checked
 * here against whole-model runs it never saw. Takes tens of seconds (a
 * second or two for a few types); progress (may be NULL) hears each kind. */
typedef struct {
    int n_threads;      /* 0: every core */
    int prefill_tokens; /* batch of the prefill products (128) */
    int reps;           /* rounds over every kind, each kind's fastest kept (5) */
    /* Runs of the whole model per weight type on the held-in shape, the
     * fastest kept (2; 0: the kernels alone, no scale fitted). */
    int model_rounds;
    /* The kinds to time (weight and KV cache types; f32 always), NULL for
     * all: a quick recalibration of what one prediction reads. */
    const int *types;
    int n_types;
} aellm_calibrate_params;

void aellm_calibrate_params_default(aellm_calibrate_params *p);
int aellm_predict_calibrate(aellm_hw_profile *hw, const aellm_calibrate_params *p,
                            void (*progress)(const char *what, int done, int total, void *user),
                            void *user);

#ifdef __cplusplus
}
#endif
#endif
