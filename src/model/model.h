/* The model's in-memory layout, for the engine and the techniques layers.
 * A 2-D weight is stored as in GGUF: ne[0] = input width (contiguous), ne[1]
 * = output rows, each row aellm_dtype_row_size(type, ne[0]) bytes. Later
 * stages add beside the dense tensors (MoE experts, adapters, KV layouts)
 * rather than changing these. */
#ifndef AELLM_MODEL_MODEL_H
#define AELLM_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/dtype.h"
#include "aellm/model.h"

typedef struct {
    int type;          /* aellm_dtype */
    int64_t ne[2];     /* ne[0] row length, ne[1] rows (1 for vectors) */
    size_t row_bytes;  /* bytes per row */
    const void *data;  /* borrowed from the model's storage */
} aellm_tensor;

typedef struct {
    aellm_tensor attn_norm; /* (dim) f32 */
    aellm_tensor wq;        /* (dim) -> (n_heads*head_dim) */
    aellm_tensor wk;        /* (dim) -> (n_kv_heads*head_dim) */
    aellm_tensor wv;        /* (dim) -> (n_kv_heads*head_dim) */
    aellm_tensor wo;        /* (n_heads*head_dim) -> (dim) */
    aellm_tensor ffn_norm;  /* (dim) f32 */
    aellm_tensor w_gate;    /* (dim) -> (hidden) */
    aellm_tensor w_up;      /* (dim) -> (hidden) */
    aellm_tensor w_down;    /* (hidden) -> (dim) */
} aellm_layer;

struct aellm_model {
    aellm_model_config cfg;
    aellm_tensor tok_embd;    /* (vocab, dim): row t is token t's embedding */
    aellm_tensor output_norm; /* (dim) f32 */
    aellm_tensor output;      /* (dim) -> (vocab); same data as tok_embd when tied */
    aellm_layer *layers;      /* n_layers, owned */
    aellm_tokenizer *tokenizer; /* owned, may be NULL */

    /* storage the tensors point into; whichever are set are released by free */
    aellm_gguf *gguf;   /* GGUF mapping */
    void *map;          /* llama2.c mapping */
    size_t map_size;
    void *owned;        /* heap block (random models, converted norms) */
};

/* Bytes of a tensor. */
static inline size_t aellm_tensor_bytes(const aellm_tensor *t)
{
    return t->row_bytes * (size_t)t->ne[1];
}

/* Derives head_dim etc. and checks a configuration: positive sizes, heads
 * divide, kv heads divide heads. Message names `what` (the file). */
int aellm_model_config_check(const aellm_model_config *cfg, const char *what);

#endif
