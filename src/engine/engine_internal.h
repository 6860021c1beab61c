/* The engine's buffers, laid out once at creation (llama2.c's habit: nothing
 * is allocated per token). Shapes use B = n_batch, C = n_ctx. */
#ifndef AELLM_ENGINE_INTERNAL_H
#define AELLM_ENGINE_INTERNAL_H

#include <stddef.h>

#include "aellm/engine.h"
#include "kernels/attention.h"
#include "model/model.h"

/* Sees the input rows x (n rows of `width` floats) of matrix `linear`
 * (aellm_linear) of layer `layer` just before the product; used by
 * quantization methods to collect calibration statistics. */
typedef void (*aellm_linear_hook)(void *user, int layer, int linear, const float *x, int n,
                                  int64_t width);
/* The id the hook gets for latent attention's latent c (n rows of mla_rank),
 * the input of the key and value up-projections. */
#define AELLM_HOOK_LATENT AELLM_LINEAR_COUNT

enum { BLOCK_KV, BLOCK_ACT, BLOCK_SCRATCH, ENGINE_BLOCKS };

/* One decode thread's accounting (aellm_engine_decode_stats), padded to a
 * cache line: each thread adds its own at the end of every token. */
typedef struct {
    double wait_s;
    unsigned long long steps, stolen, products, fused;
    char pad[64 - sizeof(double) - 4 * sizeof(unsigned long long)];
} aellm_decode_counters;

struct aellm_engine {
    const aellm_model *m;
    int n_ctx, n_batch, n_threads;
    int q_dim, kv_dim, head_dim;

    /* The KV cache holds kv_type elements (f32, f16, q8_0), head-major:
     * layer l, KV head h, position p at ((l * n_kv_heads + h) * C + p) *
     * kv_head_bytes; a head's encoding is src/kernels/attention.h's.
     * Attention reads it through `attn`. */
    int kv_type;
    size_t kv_head_bytes, kv_row_bytes; /* kv_row_bytes = n_kv_heads * kv_head_bytes */
    const aellm_attn_kernels *attn;
    char *k_cache;              /* (L, n_kv_heads, C, kv_head_bytes) keys */
    char *v_cache;              /* (L, n_kv_heads, C, kv_head_bytes) values */
    float *k_new, *v_new;       /* (B, kv_dim) f32 keys/values of the tokens in flight */
    float *kv_f32;              /* (n_threads, 2, C, head_dim) prefill: one KV head's keys
                                   and values dequantized; NULL for an f32 cache */
    float *rope_cos, *rope_sin; /* (C, head_dim/2) */
    /* Multi-head latent attention (mla.c; NULL otherwise): the cache holds
     * the latent and the rotary keys, f32, instead of k_cache / v_cache. */
    float *lat_cache;      /* (L, C, r) */
    float *kr_cache;       /* (L, n_kv_heads, C, d_rope) */
    float *c_new, *kr_new; /* (B, r), (B, n_kv_heads * d_rope) of the tokens in flight */
    float *mla_lat;        /* (n_threads, n_heads, C + 2 r) decode: a group's scores,
                              latent queries and outputs */
    float *mla_up;         /* (n_threads, (2 head_dim - d_rope) r) one KV head's up-projections
                              dequantized; NULL when they are stored f32 */

    float *x;       /* (B, dim) residual stream */
    float *xb;      /* (B, max(dim, q_dim)) normalised input, then attention output */
    float *xb2;     /* (B, max(dim, q_dim)) a projection's output before the residual add */
    float *q;       /* (B, q_dim) */
    float *hb;      /* (B', hidden) gate, then silu(gate)*up; B' = max(B, top-k) */
    float *hb2;     /* (B', hidden) up */
    float *fused_y; /* decode: the output of products read as one (forward.c), at most
                       max(q_dim + 2 kv_dim, 2 hidden) */

    /* Mixture of experts (n_experts = E > 0; NULL when dense). Prefill
     * groups the batch's tokens by expert: each expert multiplies only the
     * rows routed to it, gathered into moe_x. */
    int *moe_sel;             /* (B, k) experts each token is routed to */
    float *moe_w;             /* (B, k) their weights, renormalised to sum 1 */
    float *moe_logits;        /* (B, E) router logits, then probabilities */
    int *moe_rows;            /* (B * k) token-slot numbers, grouped by expert */
    float *moe_x;             /* (B, dim) the rows routed to one expert */
    float *moe_y;             /* (B', dim) an expert's outputs */
    unsigned long long *load; /* (L, E) tokens routed to each expert so far */
    float *scores;       /* (n_threads, B, C) attention weights, one head at a time per thread */
    float *logits;       /* (vocab) last token's logits */
    void *act;           /* one activation row in a weight's vec_dot_type (decode) */
    uint64_t *mv_claims; /* (n_threads, mv_claims_per_thread) decode: steps taken of
                            each thread's share of each product (forward.c) */
    int mv_claims_per_thread;         /* products per token planned for, a multiple of 8 */
    int decode_steal;                 /* 0 under AELLM_DECODE_SPLIT=static */
    int decode_fuse;                  /* 0 under AELLM_DECODE_FUSE=0 */
    aellm_decode_counters *counters;  /* (n_threads) decode's accounting, one cache line each */
    double decode_s;                  /* wall time of decode steps since the last reset */
    unsigned long long decode_tokens; /* decode steps since the last reset */
    size_t act_bytes;
    void *scratch; /* aellm_kernel_matmul scratch (prefill) */
    size_t scratch_bytes;

    aellm_linear_hook hook; /* called with each prefill matmul's input; may be NULL */
    void *hook_user;

    /* the allocations behind all of the above, one per kind of memory */
    char *block[ENGINE_BLOCKS];
    size_t block_bytes[ENGINE_BLOCKS];
    size_t bytes; /* their sum */
};

/* Forward passes (forward.c). Both write the final hidden state of every
 * token (normalised) to e->x and logits as aellm_engine_eval describes. */
int aellm_forward_decode(aellm_engine *e, int32_t token, int pos, float *logits);
int aellm_forward_prefill(aellm_engine *e, const int32_t *tokens, int n, int pos, float *logits,
                          int all_logits);

/* Latent attention (mla.c). */
void aellm_mla_rope(const aellm_engine *e, int l, float *v, int heads, int stride, int per,
                    int pos);
float *aellm_mla_latent_at(const aellm_engine *e, int l, int pos);
float *aellm_mla_krope_at(const aellm_engine *e, int l, int g, int pos);
void aellm_mla_store(aellm_engine *e, int l, int i, int pos);
int aellm_mla_up_quantized(const aellm_model *m);
/* Thread `thread`'s buffer for one KV head's dequantized up-projections
 * (NULL when they are stored f32). */
float *aellm_mla_up_buf(const aellm_engine *e, int thread);
void aellm_mla_attend_heads(aellm_engine *e, int l, int h0, int h1, int pos, float *scratch,
                            float *up);
void aellm_mla_expand(const aellm_engine *e, int l, int g, int len, float *K, float *V);

/* ---- For the techniques layer: calibration runs a model layer by layer ---- */

/* Installs (or with NULL removes) the prefill hook. */
void aellm_engine_set_hook(aellm_engine *e, aellm_linear_hook hook, void *user);
/* Runs layer `l` in place over x (n rows of dim floats, n <= n_batch) at
 * positions pos..pos+n-1, through the prefill path (the hook sees its
 * matrices' inputs), writing that layer's KV cache. */
int aellm_engine_run_layer(aellm_engine *e, int l, float *x, int n, int pos);

#endif
