/* The Llama model as a trainable graph (llm.c's layout): every parameter in
 * one F32 block reached through named pointers, their gradients in a second
 * block of the same layout (allocated only when training starts), the
 * activations of a (B, T) batch in a third, all sized up front and counted by
 * the tracking allocator. Forward keeps what backward needs; backward adds
 * into the gradients. Not a public interface: the fine-tuning methods and
 * `aellm train` build on it. */
#ifndef AELLM_TECHNIQUES_FINETUNE_TRAIN_MODEL_H
#define AELLM_TECHNIQUES_FINETUNE_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/model.h"
#include "techniques/finetune/adamw.h"
#include "techniques/finetune/linear.h"

/* The parameter tensors, in block order. */
enum {
    TP_WTE,       /* (V, C) token embedding */
    TP_OUT,       /* (V, C) output; empty when tied to TP_WTE */
    TP_NORM_F,    /* (C) final RMSNorm */
    TP_ATTN_NORM, /* (L, C) */
    TP_WQ,        /* (L, NH*hd, C) */
    TP_WK,        /* (L, NKV*hd, C) */
    TP_WV,        /* (L, NKV*hd, C) */
    TP_WO,        /* (L, C, NH*hd) */
    TP_FFN_NORM,  /* (L, C) */
    TP_W_GATE,    /* (L, H, C) */
    TP_W_UP,      /* (L, H, C) */
    TP_W_DOWN,    /* (L, C, H) */
    TP_ROUTER,    /* (L, E, C) mixture-of-experts router; empty when dense */
    TP_W_UK,      /* (L, NKV*(hd-DR), R) latent attention's key up-projection; else empty */
    TP_W_UV,      /* (L, NKV*hd, R) its value up-projection; else empty */
    TP_COUNT
};

typedef struct {
    int B, T;                    /* batch of B sequences of T tokens */
    int C, H, L, NH, NKV, hd, V; /* model width, FFN width, layers, heads, head dim, vocab */
    int tied;                    /* output shares the token embedding */
    float eps, rope_base;
    /* Mixture of experts (ops.h: held densely): E experts of h hidden units,
     * H = E * h, K per token; E = K = 0 when dense (h = H). */
    int E, K, h;
    /* Latent attention (model.h): R latent values, DR rotary dims per KV
     * head; 0 otherwise. Then TP_WK holds the rotary rows (NKV*DR, C) and
     * TP_WV the latent's down-projection (R, C) (the "v" matrix of the
     * linear maps), and keys are [rotary ; W_uk c], values W_uv c. */
    int R, DR;
} train_shape;

/* What is trained. Full: every parameter (the embedding and output frozen
 * with freeze_embeddings). The adapter methods freeze the base and train an
 * adapter on each target matrix: LoRA (scale alpha/r), RSLoRA (alpha/sqrt(r)),
 * DoRA (LoRA's direction and a magnitude per output row), QLoRA (LoRA over a
 * base whose layer matrices are NF4). */
typedef enum {
    TRAIN_FULL = 0,
    TRAIN_LORA,
    TRAIN_RSLORA,
    TRAIN_DORA,
    TRAIN_QLORA,
    TRAIN_METHOD_COUNT
} train_method_kind;

typedef struct {
    train_method_kind kind;
    int rank;
    float alpha;
    unsigned targets;      /* bit i set: adapter on layer matrix i (aellm_linear order) */
    int freeze_embeddings; /* full: the token embedding (and a tied output) stay fixed */
    uint64_t seed;         /* adapter initialisation and dropout masks */
    float dropout;         /* LoRA-family dropout on the adapters' input (0: none; not DoRA) */
    float balance;         /* MoE: weight of the load-balancing loss (Switch's 0.01) */
} train_method;

const char *train_method_name(train_method_kind k); /* "full", "lora", ... */

typedef struct {
    float *t[TP_COUNT]; /* into one block; t[TP_OUT] == t[TP_WTE] when tied */
    size_t n[TP_COUNT]; /* floats of each (0 for a tied output) */
    size_t total;
    float *block;
} train_params;

typedef struct train_model {
    train_shape s;
    train_method method;
    train_params p, g; /* parameters, and gradients (g.block NULL until wanted; full only) */
    train_linear *lin; /* (L, AELLM_LINEAR_COUNT) the layer matrices with their adapters */
    void *q_block;     /* QLoRA: the layer matrices in NF4 */
    float *ad_block, *ad_grad; /* adapter parameters (A, B, m of every target) and gradients */
    size_t ad_total;
    float *lin_scratch;
    /* activations of one batch, one block */
    float *x;          /* (L+1, BT, C) the residual stream entering each layer, then the last */
    float *xmid;       /* (L, BT, C) after each layer's attention */
    float *an, *arstd; /* (L, BT, C), (L, BT) attention RMSNorm out, 1/rms */
    float *q, *k, *v;  /* (L, BT, NH*hd), (L, BT, NKV*hd) x2, after RoPE */
    float *att;        /* (L, B, NH, T, T) attention probabilities */
    float *ao;         /* (L, BT, NH*hd) attention output before wo */
    float *fn, *frstd; /* (L, BT, C), (L, BT) */
    float *gate, *up, *glu;     /* (L, BT, H) */
    float *probs, *wts, *gluw;  /* MoE: (L, BT, E) router probabilities and top-k weights,
                                   (L, BT, H) glu scaled by them (what w_down reads) */
    float *frac;                /* MoE: (L, E) share of routed slots per expert */
    float *lat;                 /* MLA: (L, BT, R) the latent */
    int *rope_idx;              /* MLA: (L, NKV, DR/2) original pair of each rotary pair */
    float *xf, *xf_rstd;        /* (BT, C), (BT) final norm */
    float *logits;              /* (BT, V): logits, probabilities, then dlogits */
    float *losses;              /* (BT) */
    float *rope_cos, *rope_sin; /* (T, hd/2) */
    float *act_block;
    /* backward scratch, one layer at a time */
    float *d_res, *d_norm, *d_q, *d_k, *d_v, *d_ao, *d_gate, *d_up, *d_glu, *d_attn;
    float *d_route, *d_wts; /* MoE: (BT, E) router logits' and weights' gradients */
    float *kr_s, *kn_s;     /* MLA: (BT, NKV*DR), (BT, NKV*(hd-DR)) keys' parts, then their
                               gradients */
    float *d_lat;           /* MLA: (BT, R) */
    float *bwd_block;
    float *ad_act_block;    /* the adapters' kept activations */
    int training;           /* the next forward trains (dropout on); held-out evaluation sets 0 */
    uint64_t drop_tick;     /* which forward of the run: the dropout masks' seed */
    const int32_t *targets; /* of the last forward (borrowed) */
    const float *weight;
    double loss;
    double balance_loss; /* MoE: balance * the layers' mean load-balancing loss, last forward */
} train_model;

/* A trainable copy of `m`'s weights (any type, dequantized to F32; NF4 for
 * QLoRA's layer matrices) for batches of B x T tokens (T <= the model's
 * context), trained as `method` says (NULL: full fine-tuning). Adapters start
 * as their methods say: A Kaiming-uniform (PEFT's), B = 0, DoRA's magnitude
 * the row norms of W, so the model starts as the base. */
/* Whether `method` fits a model of this shape (rank within every target's width). */
int train_model_check(const aellm_model_config *shape, const train_method *method);

int train_model_new(train_model **out, const aellm_model *m, int B, int T,
                    const train_method *method);
void train_model_free(train_model *tm); /* accepts NULL */

/* The parameters' names for messages ("blk.2.attn_q.weight"-like, GGUF's). */
const char *train_param_name(int which);

/* inputs, targets (B*T); weight (B*T) per-position loss weights or NULL.
 * Returns the weighted mean cross-entropy; the pointers are kept for backward.
 * What backward differentiates is that plus tm->balance_loss (MoE only). */
double train_model_forward(train_model *tm, const int32_t *inputs, const int32_t *targets,
                           const float *weight);
/* Allocates the gradients on first use and zeroes them. */
int train_model_zero_grad(train_model *tm);
/* Gradients of the last forward's loss, added into tm->g. */
void train_model_backward(train_model *tm, const int32_t *inputs);

/* Bytes of parameters, gradients and activations (for reports). */
size_t train_model_activation_bytes(const train_model *tm);

/* The trainable arrays with their gradients, for the optimiser: up to `cap`
 * groups into `out`; returns the count (gradients must exist: zero_grad). */
int train_model_groups(const train_model *tm, train_optim_group *out, int cap);
int64_t train_model_n_trainable(const train_model *tm);

/* Layer l's matrix `which` with its adapter merged, (OC, C) into out. */
void train_model_merged_matrix(const train_model *tm, int l, int which, float *out);

#endif
