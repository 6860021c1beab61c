/* Fine-tuning (DESIGN.md §2, the fine-tuning stage): a model trained on a text
 * file (causal LM, a held-out slice at its end) or on JSONL instruction data
 * ({"prompt", "completion"}, loss on the completion only) by full fine-tuning
 * or an adapter method (LoRA, RSLoRA, DoRA, QLoRA) on chosen matrices, with
 * AdamW, gradient clipping, warm-up then cosine decay and gradient
 * accumulation; deterministic for a seed. What comes back is the model with
 * the adapters merged into its weights (F32), ready for the engine and for
 * GGUF. */
#ifndef AELLM_TRAIN_H
#define AELLM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "aellm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int step, steps; /* done, total */
    int epoch;       /* epochs finished */
    double loss;     /* this step's training loss */
    double heldout;  /* held-out loss when this step evaluated, else NaN */
    double lr;
    double tokens_per_s;
    double eta_s;
} aellm_train_progress;

typedef void (*aellm_train_progress_fn)(const aellm_train_progress *p, void *user);

typedef struct {
    const char *method;      /* "full", "lora", "rslora", "dora", "qlora" */
    int rank;                /* adapter rank (8) */
    float alpha;             /* adapter alpha (2 x rank when 0) */
    const char *targets;     /* comma-separated of q,k,v,o,gate,up,down, or "all" ("q,k,v,o") */
    int freeze_embeddings;   /* full: keep the token embedding (and tied output) fixed */
    float dropout;           /* adapter-input dropout for lora, rslora, qlora (0) */
    float moe_balance;       /* mixture of experts: load-balancing loss weight (0.01) */
    int seq_len;             /* tokens per sequence (0: the model's context, at most 256) */
    int batch;               /* sequences per micro-batch (8) */
    int accum;               /* micro-batches per step (1) */
    int steps;               /* optimiser steps (0: `epochs` over the training data) */
    double epochs;           /* when steps is 0 (1) */
    float lr;                /* peak learning rate (0: 1e-3 for adapters, 3e-4 for full) */
    float lr_min_ratio;      /* cosine floor as a share of lr (0.1) */
    int warmup;              /* warm-up steps (0: 5 % of the steps) */
    float weight_decay;      /* (0.0) */
    float clip;              /* global gradient norm ceiling (1.0) */
    double heldout;          /* share of the data held out (0.1) */
    int eval_every;          /* held-out evaluation every N steps (0: only before and after) */
    int eval_max;            /* held-out sequences per evaluation (0: all) */
    uint64_t seed;           /* data order and adapter initialisation (1) */
    const char *adapter_out; /* also write the unmerged adapter here (llama.cpp LoRA GGUF:
                                lora, rslora, qlora) when set */
    const char *checkpoint;  /* checkpoint file (written every checkpoint_every steps) */
    int checkpoint_every;    /* 0: no checkpoints */
    int resume;              /* continue from `checkpoint` when it exists */
    aellm_train_progress_fn progress;
    void *progress_user;
} aellm_train_params;

void aellm_train_params_default(aellm_train_params *p);

/* Whether p's method, targets and rank fit m (rank within the smallest
 * width of every target matrix), before any data is read: AELLM_EINVAL
 * naming the problem otherwise. */
int aellm_train_check(const aellm_model *m, const aellm_train_params *p);
/* The same for a model of this shape (one not made yet). */
int aellm_train_check_shape(const aellm_model_config *shape, const aellm_train_params *p);

typedef struct {
    int steps;
    int64_t tokens;             /* training tokens processed */
    double train_loss;          /* mean over the last step */
    double heldout_loss_before; /* NaN without held-out data */
    double heldout_loss;        /* after training */
    double heldout_ppl;         /* exp(heldout_loss) */
    double seconds, tokens_per_s;
    int64_t trainable;      /* trainable parameters */
    size_t optimizer_bytes; /* AdamW moments */
    size_t peak_bytes;      /* high-water mark of aellm's allocator while training */
    int resumed_from;       /* the step a resumed run started after (0: from the start) */
    char method[16];
} aellm_train_result;

/* The result as a JSON object (caller frees with cJSON_Delete): method,
 * steps, resumed_from_step, tokens, losses (held-out ones when there were
 * held-out data), tokens_per_s, wall_s, trainable_params, optimizer_bytes,
 * peak_bytes. What `aellm train --json` and evaluation records carry. */
cJSON *aellm_train_result_json(const aellm_train_result *r);

/* Trains a copy of `base` on `data` and returns it merged, F32, with the
 * base's tokenizer (*out owned by the caller). The base is not modified.
 * A NaN or infinite loss stops the run with an error naming the step; no
 * model comes back then. */
int aellm_train(aellm_model **out, const aellm_model *base, const char *data,
                const aellm_train_params *p, aellm_train_result *res);

/* Applies a LoRA adapter in llama.cpp's GGUF form (adapter.lora.alpha,
 * "*.lora_a" / "*.lora_b") to `m` in place, as llama.cpp scales it: W +=
 * scale * alpha / r * B A (scale x 1 when the file has no alpha). Each matrix
 * it touches becomes F32 (its merged copy owned by m). Errors name the file
 * and the tensor that does not fit. */
int aellm_model_apply_lora(aellm_model *m, const char *path, float scale);

#ifdef __cplusplus
}
#endif
#endif
