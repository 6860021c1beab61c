/* The inference engine: runs a model over tokens with a KV cache. Prefill
 * (many tokens) goes through batched matrix products; decode (one token)
 * through per-type matrix-vector kernels, all in the weights' stored type.
 * One engine = one sequence; its buffers are allocated once, at creation. */
#ifndef AELLM_ENGINE_H
#define AELLM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_ctx;     /* positions the KV cache holds; 0 = the model's context */
    int n_batch;   /* most tokens per prefill step (default 512) */
    int n_threads; /* 0 = number of cores */
    /* Element type of the KV cache: AELLM_DTYPE_F32 (default), F16 or Q8_0
     * (blocks of 32, or of head_dim's largest power-of-two divisor below 32;
     * see src/kernels/attention.h). Attention reads it in that type. */
    int kv_type;
} aellm_engine_params;

void aellm_engine_params_default(aellm_engine_params *p);

typedef struct aellm_engine aellm_engine;

/* The model is borrowed and must outlive the engine. */
int aellm_engine_new(aellm_engine **out, const aellm_model *m, const aellm_engine_params *p);
void aellm_engine_free(aellm_engine *e); /* accepts NULL */

int aellm_engine_n_ctx(const aellm_engine *e);
int aellm_engine_n_threads(const aellm_engine *e);
int aellm_engine_kv_type(const aellm_engine *e);
/* Entries in a row of logits (the model's vocabulary size). */
int aellm_engine_vocab_size(const aellm_engine *e);
/* Bytes the engine holds: KV cache, activations and scratch. */
size_t aellm_engine_memory_bytes(const aellm_engine *e);
/* What aellm_engine_memory_bytes would be for an engine on m with p,
 * without allocating: m need only carry its shape and its tensors' types and
 * sizes (data may be NULL), so predictions size the engine exactly. */
size_t aellm_engine_plan_bytes(const aellm_model *m, const aellm_engine_params *p);
/* Bytes of the KV cache alone (keys and values of every layer and position;
 * part of aellm_engine_memory_bytes). A latent-attention model caches
 * n_layers x n_ctx x (mla_rank + n_kv_heads x mla_rope_dim) f32 values. */
size_t aellm_engine_kv_bytes(const aellm_engine *e);
/* For a mixture-of-experts model: how many tokens each layer's router has
 * sent to each expert since creation or the last reset, written to
 * counts[l * E + expert] (counts may be NULL). Returns E, 0 for a dense
 * model. */
int aellm_engine_expert_load(const aellm_engine *e, unsigned long long *counts);
void aellm_engine_expert_load_reset(aellm_engine *e);

/* How decode's threads spent their time since creation or the last reset:
 * wall seconds of one-token steps, thread-seconds waiting at the barriers
 * that end each group of matrix products, and the products' steps (one to
 * four weight rows each) computed, of which `stolen` from another thread's
 * share. A thread done with its share takes half of what a slower one has
 * left; AELLM_DECODE_SPLIT=static (read at engine creation) turns that off,
 * for comparison: each thread then computes exactly its equal share. */
typedef struct {
    double decode_s, wait_s;
    unsigned long long tokens; /* one-token steps */
    int threads;
    unsigned long long steps, stolen;
    int steal; /* 1 when threads take from each other's shares */
    /* Matrix products read, and how many of them were several weight
     * matrices that lie back to back in memory with one input (a layer's
     * Q, K and V; gate and up) read as one matrix, each counted once per
     * thread and token: products / threads / tokens is a token's count.
     * AELLM_DECODE_FUSE=0 (read at engine creation) reads them apart. */
    unsigned long long products, fused;
    int fuse; /* 1 when adjacent matrices are read as one */
} aellm_engine_decode_stats;
void aellm_engine_decode_stats_get(const aellm_engine *e, aellm_engine_decode_stats *s);
void aellm_engine_decode_stats_reset(aellm_engine *e);

/* Runs tokens[0..n) at positions pos..pos+n-1, appending to the KV cache
 * (entries at and after `pos` are overwritten). Writes the logits of every
 * token (n x vocab) when all_logits, else of the last one (vocab), to
 * `logits` (may be NULL: only the cache is filled). */
int aellm_engine_eval(aellm_engine *e, const int32_t *tokens, int n, int pos, float *logits,
                      int all_logits);

/* ---- sampling ---- */
typedef struct {
    float temperature; /* 0 = greedy (argmax) */
    float top_p;       /* nucleus; >= 1 disables */
    uint64_t seed;
} aellm_sampler_params;

typedef struct aellm_sampler aellm_sampler;
int aellm_sampler_new(aellm_sampler **out, int vocab_size, const aellm_sampler_params *p);
void aellm_sampler_free(aellm_sampler *s);
/* Picks a token from `logits` (modified in place). */
int aellm_sampler_sample(aellm_sampler *s, float *logits);

/* ---- generation ---- */
/* Called with each generated token's text; return non-zero to stop. */
typedef int (*aellm_piece_fn)(const char *piece, int len, void *user);

typedef struct {
    int n_prompt;     /* tokens in the prompt, BOS included */
    int n_generated;  /* tokens sampled */
    double prefill_s; /* time to evaluate the prompt */
    double decode_s;  /* time of the generation loop */
} aellm_generate_stats;

/* Encodes `prompt` (BOS first), then samples up to n_tokens tokens, stopping
 * at BOS or EOS, at the end of the context, or when `on_piece` says so. */
int aellm_generate(aellm_engine *e, const char *prompt, int n_tokens,
                   const aellm_sampler_params *sp, aellm_piece_fn on_piece, void *user,
                   aellm_generate_stats *stats);

/* ---- perplexity (llama.cpp's method) ---- */
typedef struct {
    double ppl, ppl_stderr; /* exp(mean NLL) and its standard error */
    double nll;             /* mean negative log-likelihood (nats/token) */
    int64_t n_scored;       /* tokens scored */
    int n_chunks;
    int n_ctx;
    double seconds;
} aellm_ppl_result;

/* Called after each chunk with the running estimate. */
typedef void (*aellm_ppl_progress_fn)(int chunk, int n_chunks, double ppl, void *user);

/* Splits `tokens` into non-overlapping windows of n_ctx tokens, puts BOS
 * first in each, and scores the second half of every window. max_chunks <= 0
 * means all. AELLM_EINVAL if fewer than one window of tokens. */
int aellm_perplexity(aellm_engine *e, const int32_t *tokens, int64_t n_tokens, int n_ctx,
                     int max_chunks, aellm_ppl_progress_fn progress, void *user,
                     aellm_ppl_result *out);

#ifdef __cplusplus
}
#endif
#endif
