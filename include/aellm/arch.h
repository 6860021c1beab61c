/* Architecture transforms applied to a loaded model, without training: for
 * now post-hoc key/value head sharing (MHA -> GQA -> MQA by mean-pooling
 * heads, as in the GQA paper's uptraining start point, Ainslie et al. 2023).
 * Each transform changes the model in place; new weights live as long as it. */
#ifndef AELLM_ARCH_H
#define AELLM_ARCH_H

#include <stdint.h>

#include "aellm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean-pools groups of consecutive key and value heads of every layer into
 * n_kv_heads heads (which must divide the model's current count; 1 = MQA).
 * Query head h keeps reading KV head h / (n_heads / n_kv_heads): groups are
 * consecutive, so it reads the pool of the heads it was spread over.
 * Quantized wk / wv are dequantized, pooled and re-quantized to their type;
 * the pooled matrices are owned by the model. Asking for the current count
 * changes nothing. AELLM_EINVAL for a count that does not divide or a weight
 * type without conversions; after AELLM_ENOMEM the model is unusable. */
int aellm_model_share_kv_heads(aellm_model *m, int n_kv_heads);

/* ---- Mixture of experts ---- */

typedef enum {
    AELLM_MOE_SPLIT,   /* MoEfication: the hidden neurons clustered into E experts */
    AELLM_MOE_UPCYCLE, /* sparse upcycling: every expert a copy of the whole FFN */
} aellm_moe_method;

typedef struct {
    int n_experts;    /* E, 2..256 (default 8) */
    int top_k;        /* experts per token, 1..E (default 1) */
    int method;       /* aellm_moe_method (default split) */
    int kmeans_iters; /* balanced k-means rounds (default 25) */
    uint64_t seed;    /* k-means start, upcycled routers (default 1) */
} aellm_moe_params;

void aellm_moe_params_default(aellm_moe_params *p);

/* Hidden units per expert: the whole FFN when upcycled; when split,
 * ceil(hidden / E), rounded up to a multiple of 32 (whole blocks of the
 * quantized types, which llama.cpp then reads) where that adds at most an
 * eighth. */
int aellm_moe_expert_width(int hidden, int n_experts, int method);

/* Turns every layer's dense FFN into E experts and a router, in place (the
 * llama.cpp Llama-MoE layout of src/model/model.h: softmax over the
 * router's logits, top-k, weights renormalised to sum 1).
 *
 * Split: the H neurons go to E experts (aellm_moe_expert_width wide) by
 * balanced k-means on their unit gate vectors (an expert short of neurons
 * is padded with zero ones, which add exactly 0); each expert's down matrix is multiplied by
 * top_k, so that with top_k = E and equal router weights the model computes
 * exactly the dense FFN. The router starts at the clusters' centroids.
 * Upcycle: every expert is the whole FFN (the function is unchanged for
 * any router; the router starts small and random). Expert matrices keep the
 * FFN's weight type where their rows fit its block, else f16 (f32 from f32);
 * the router is f32. AELLM_EINVAL for a model that already has experts or
 * bad parameters; after AELLM_ENOMEM the model is unusable. */
int aellm_model_to_moe(aellm_model *m, const aellm_moe_params *p);

typedef struct {
    int64_t tokens;          /* calibration tokens the routers were fitted on */
    double agreement_before; /* share of tokens whose top expert is the one whose
                                output is largest, centroid routers (mean of layers) */
    double agreement;        /* the same, fitted routers */
    double scale;            /* top-k >= 2: the fitted routers' logit scale, chosen so that
                                the chosen experts' mixture comes closest to the dense FFN
                                (mean of layers; 1 for top-1) */
} aellm_moe_fit_report;

/* Fits each layer's router on up to `tokens` tokens (0: 8192) of the text
 * file at `path`, layer by layer: softmax regression towards the expert
 * whose output on the token is largest. Needs the model's vocabulary. */
int aellm_moe_fit_routers(aellm_model *m, const char *path, int64_t tokens,
                          aellm_moe_fit_report *rep);

/* ---- Multi-head latent attention ---- */

typedef struct {
    int rank;               /* latent values per token (0: a quarter of 2 x KV heads x head dim) */
    int rope_dim;           /* rotary dims kept per KV head, even (0: aellm_mla_default_rope_dim) */
    const char *calib_path; /* text to score the rotary pairs on (NULL: by weight norms) */
    int64_t calib_tokens;   /* tokens of it (default 4096) */
    int plain_svd;          /* 1: the weights' own SVD even with calib_path (MHA2MLA's);
                               0: weighted by the text's attention inputs, which minimises
                               the error of the keys and values the model computes on it */
} aellm_mla_params;

void aellm_mla_params_default(aellm_mla_params *p);

/* head_dim / 4, but at least 8 (all of a head narrower than that): a head
 * of 8 or 16 dims keeps too few frequency pairs at a quarter (stories260K
 * at rank 16 of 64 after 200 uptraining steps: PPL 12.3 with 2 rotary
 * dims, 6.45 with 4, 3.61 with all 8; the fine-tuned control 3.36). */
int aellm_mla_default_rope_dim(int head_dim);

typedef struct {
    int rank, rope_dim;
    int64_t calib_tokens;   /* tokens the pairs were scored on (0: weight norms) */
    double svd_energy_kept; /* share of the stacked key/value rows' squared norm the
                               rank keeps (of the keys' and values' on the text when
                               weighted), mean over layers (1 = exact) */
    int svd_weighted;       /* 1: the SVD was weighted by the text's inputs */
} aellm_mla_report;

/* Turns every layer's attention into latent attention in place (model.h
 * describes the layout; MHA2MLA's conversion: the 2-norm rule picks each KV
 * head's rotary pairs, a joint truncated SVD of the position-free key and
 * value rows makes the latent; with calibration text that SVD is weighted by
 * the attention inputs' second moments, as ASVD / SVD-LLM do). With rope_dim = head_dim and rank =
 * 2 x KV heads x head_dim the model computes what it did. wq and the rotary rows of wk keep their
 * type (rows are moved, not rounded); the down-projection takes wk's type where its rows fit, the
 * up-projections are f32. */
int aellm_model_to_mla(aellm_model *m, const aellm_mla_params *p, aellm_mla_report *rep);

#ifdef __cplusplus
}
#endif
#endif
