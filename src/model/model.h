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
    int type;         /* aellm_dtype */
    int64_t ne[2];    /* ne[0] row length, ne[1] rows (1 for vectors) */
    size_t row_bytes; /* bytes per row */
    const void *data; /* borrowed from the model's storage */
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
    aellm_tensor tok_embd;      /* (vocab, dim): row t is token t's embedding */
    aellm_tensor output_norm;   /* (dim) f32 */
    aellm_tensor output;        /* (dim) -> (vocab); same data as tok_embd when tied */
    aellm_layer *layers;        /* n_layers, owned */
    aellm_tokenizer *tokenizer; /* owned, may be NULL */

    /* storage the tensors point into; whichever are set are released by free */
    aellm_gguf *gguf; /* GGUF mapping */
    void *map;        /* llama2.c mapping */
    size_t map_size;
    void *owned; /* heap block (random models, converted norms) */
};

/* Bytes of a tensor. */
static inline size_t aellm_tensor_bytes(const aellm_tensor *t)
{
    return t->row_bytes * (size_t)t->ne[1];
}

/* Derives head_dim etc. and checks a configuration: positive sizes, heads
 * divide, kv heads divide heads. Message names `what` (the file). */
int aellm_model_config_check(const aellm_model_config *cfg, const char *what);

/* ---- Shared between the files of src/model; not for other layers. ---- */

/* A zeroed model with `cfg` copied and cfg->n_layers zeroed layers. */
int aellm_model_alloc(aellm_model **out, const aellm_model_config *cfg);
/* Sets t to ne0 x ne1 elements of `type` at `data` (ne0 a multiple of the block). */
void aellm_tensor_set(aellm_tensor *t, int type, int64_t ne0, int64_t ne1, const void *data);
/* A llama2.c legacy checkpoint (llama2c.c). */
int aellm_model_load_llama2c(aellm_model **out, const char *path, const char *tokenizer_path);
/* Metadata entry i as stored (value type u32 + value), for aellm_gguf_copy_kv. */
int aellm_gguf_kv_raw(const aellm_gguf *g, int64_t i, const void **data, size_t *len);

#endif
