/* A configuration to evaluate, as a user writes it (JSON, one object per
 * stage of DESIGN.md §2):
 *
 *   {"architecture": {"attention": "gqa", "kv_heads": 2, "uptrain_steps": 100,
 *                     "uptrain_lr": 0.0003, "uptrain_data": "train.txt"},
 *    "finetuning": {"method": "lora", "rank": 16, "alpha_ratio": 2,
 *                   "targets": "q,k,v,o", "steps": 100, "lr": 0.001,
 *                   "data": "train.txt"},
 *    "inference": {"weights": "int4", "group": 128, "asym": false,
 *                  "method": "gptq", "act_order": false, "fp8_scale": "channel",
 *                  "kv_cache": "f16", "kv_heads": 2,   (or "kv_share": 2)
 *                  "calibration": {"file": "text.txt", "skip": 0, "bytes": 0,
 *                                  "tokens": 4096}}}
 *
 * Every key is optional; {} is the model as it is. The architecture stage
 * converts the attention: "mha" keeps the model's own, "gqa" mean-pools the
 * key/value heads to kv_heads (default half the model's), "mqa" to one
 * (Ainslie et al. 2023), then uptrains the whole converted model for
 * uptrain_steps on uptrain_data (the task's training file when not given).
 * "mla", mla_rank and moe_experts > 1 are parsed and refused as not yet
 * applicable. Fine-tuning (method
 * none, full, lora, rslora, dora, qlora; include/aellm/train.h) trains on
 * `data`, or on the task's training file when it is not given, and merges;
 * then the inference stage quantizes the weights (include/aellm/quantize.h),
 * pools KV heads (aellm/arch.h) and sets the engine's KV cache type. */
#ifndef AELLM_CONFIG_H
#define AELLM_CONFIG_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "aellm/engine.h"
#include "aellm/model.h"
#include "aellm/quantize.h"
#include "aellm/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* architecture stage */
    char arch_attention[8];       /* "mha" (default: as the model has it), "gqa", "mqa", "mla" */
    int arch_kv_heads;            /* gqa: KV heads after pooling (0: half the model's) */
    int arch_uptrain_steps;       /* uptraining's optimiser steps (0: convert only) */
    double arch_uptrain_lr;       /* its peak learning rate (0: full fine-tuning's default) */
    char arch_uptrain_data[1024]; /* "" = the task's training file */
    int arch_moe_experts;         /* FFN experts (1: dense, the default) */
    int arch_moe_top_k;           /* experts per token (1) */
    char arch_moe_method[8];      /* "split" (MoEfication, default) or "upcycle" */
    int arch_mla_rank;            /* mla: latent values per token (0: a quarter of full) */
    int arch_mla_rope_dim;        /* mla: rotary dims per KV head (0: aellm_mla_default_rope_dim) */
    /* inference stage */
    char weights[32]; /* "" = keep the model's weights; else as aellm_quant_type_resolve */
    int weight_type;  /* resolved dtype, -1 when weights is "" */
    int group, asym;
    int method; /* aellm_quant_method */
    int act_order;
    int fp8_per_tensor;
    int kv_type;           /* dtype of the KV cache (f32 default) */
    int kv_heads;          /* 0 = the model's */
    int kv_share;          /* or: pool KV heads by this factor (kv_heads = model's / kv_share) */
    char calib_file[1024]; /* "" = none; relative paths from the config's folder */
    int64_t calib_skip, calib_bytes, calib_tokens;
    /* fine-tuning stage */
    char ft_method[16];    /* "none" (default), "full", "lora", "rslora", "dora", "qlora" */
    int ft_rank;           /* adapter rank (16) */
    double ft_alpha_ratio; /* alpha = ratio x rank (2) */
    char ft_targets[64];   /* matrices with adapters ("q,k,v,o") */
    int ft_steps;          /* optimiser steps (100) */
    double ft_lr;          /* peak learning rate (0: the method's default) */
    char ft_data[1024];    /* training data; "" = the task's training file */
} aellm_config;

/* Whether the configuration fine-tunes (method other than none). */
int aellm_config_finetunes(const aellm_config *c);
/* Whether the architecture stage changes the model: attention other than
 * mha, or experts. */
int aellm_config_converts(const aellm_config *c);
/* Whether it trains in any stage (and so needs training data). */
int aellm_config_trains(const aellm_config *c);
/* KV heads of m after the architecture stage (m's own when it does not
 * convert); -1 when the conversion does not fit m. */
int aellm_config_arch_kv_heads(const aellm_config *c, const aellm_model *m);
/* The inference stage's KV heads from `from` (kv_share or kv_heads; 0:
 * unchanged, -1: kv_share does not divide). */
int aellm_config_inference_kv_heads(const aellm_config *c, int from);
/* The shape m has after the architecture stage (KV heads, experts). */
void aellm_config_arch_shape(const aellm_config *c, const aellm_model *m, aellm_model_config *out);
/* mla: the latent rank and rotary dims the stage gives m (defaults resolved). */
int aellm_config_mla_rank(const aellm_config *c, const aellm_model *m);
int aellm_config_mla_rope_dim(const aellm_config *c, const aellm_model *m);
/* Whether the stage fits a split's routers on text (uptrain_data, resolved
 * from the task's training file before the stage runs). */
int aellm_config_arch_fits_routers(const aellm_config *c);
/* Uptraining's parameters (full fine-tuning of the converted model). */
void aellm_config_uptrain_params(const aellm_config *c, aellm_train_params *p);
/* The architecture stage's canonical JSON alone, for `m` ({} when it does
 * not convert). Caller frees. */
char *aellm_config_canonical_architecture(const aellm_config *c, const aellm_model *m);

/* Parses a configuration. `where` names its source in errors ("cfg.json");
 * `base_dir` resolves a relative calibration path (may be NULL). Unknown
 * stages, keys and values are errors naming them. */
int aellm_config_parse(aellm_config *out, const cJSON *j, const char *where, const char *base_dir);
int aellm_config_load(aellm_config *out, const char *path);
void aellm_config_default(aellm_config *out); /* the model as it is */

/* Whether the configuration can be applied to `m`: KV heads that divide the
 * model's, a calibration text for the methods that need one and that opens,
 * a fine-tuning method, targets and rank that fit the model, training data
 * that opens.
 * AELLM_EINVAL naming the key otherwise. */
int aellm_config_check(const aellm_config *c, const aellm_model *m);

/* The canonical JSON of the configuration for `m` (before apply): every
 * default written out and resolved against the model (kv_heads 0 becomes
 * its count, weights "" its type), the calibration named by its file's SHA-256. Two
 * configurations that compute the same thing give the same text. Caller
 * frees; NULL after an error. */
char *aellm_config_canonical(const aellm_config *c, const aellm_model *m);

/* The fine-tuning stage's training parameters (the defaults of
 * aellm_train_params_default elsewhere); p borrows c's strings. */
void aellm_config_train_params(const aellm_config *c, aellm_train_params *p);

/* The fine-tuning stage's canonical JSON alone ({} when it does not
 * fine-tune): the key of a fine-tuned model in a cache. Caller frees. */
char *aellm_config_canonical_finetuning(const aellm_config *c);

/* The inference stage's canonical JSON alone, for `m`. Caller frees. */
char *aellm_config_canonical_inference(const aellm_config *c, const aellm_model *m);

/* Applies the inference stage (the evaluation pipeline runs it after the
 * fine-tuning stage; src/techniques/stage.h): pools m's KV heads in place
 * (before quantizing, so that calibration sees the pooled model), then, when
 * the weights change, writes
 * the quantized model to *out (caller frees; else *out = NULL: run `m`), and
 * sets ep->kv_type. */
int aellm_config_apply(const aellm_config *c, aellm_model *m, aellm_model **out,
                       aellm_engine_params *ep, aellm_quant_progress_fn progress, void *user);

#ifdef __cplusplus
}
#endif
#endif
