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
    /* Mixture of experts (cfg.n_experts = E > 0): the router, and w_gate,
     * w_up, w_down hold the E experts' matrices one after another, as
     * llama.cpp's 3-D ffn_{gate,up,down}_exps: w_gate and w_up (dim) ->
     * (E * hidden), expert e's rows at e * hidden; w_down (hidden) -> (E *
     * dim), expert e's rows at e * dim. aellm_expert_rows gives one. */
    aellm_tensor ffn_gate_inp; /* (dim) -> (E) f32 router logits; unset when dense */
    /* Multi-head latent attention (cfg.mla_rank = r > 0; unset otherwise).
     * Each head's dimensions are ordered rotary part first (d_rope = the
     * config's mla_rope_dim values: the pairs listed in rope_pairs for its KV
     * head), then the position-free rest; wq's rows are in that order, wk
     * holds only the rotary rows, (dim) -> (n_kv * d_rope), and wv is unset:
     * the position-free keys and the values come from the latent. */
    aellm_tensor w_dkv;      /* (dim) -> (r) latent */
    aellm_tensor w_uk;       /* (r) -> (n_kv * (head_dim - d_rope)) f32 position-free keys */
    aellm_tensor w_uv;       /* (r) -> (n_kv * head_dim) f32 values */
    aellm_tensor rope_pairs; /* (d_rope / 2) x (n_kv) f32: the original pair index (its
                                RoPE frequency) of each rotary pair, per KV head */
} aellm_layer;

/* The seven matrices of a layer by number, in the order the forward uses
 * them, for code that treats them alike (quantizers, calibration). */
typedef enum {
    AELLM_LINEAR_WQ,
    AELLM_LINEAR_WK,
    AELLM_LINEAR_WV,
    AELLM_LINEAR_WO,
    AELLM_LINEAR_W_GATE,
    AELLM_LINEAR_W_UP,
    AELLM_LINEAR_W_DOWN,
    AELLM_LINEAR_COUNT
} aellm_linear;

/* Like strchr, const in and mutable out: callers that own the model may write. */
static inline aellm_tensor *aellm_layer_linear(const aellm_layer *L, int which)
{
    const aellm_tensor *t[AELLM_LINEAR_COUNT] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                                 &L->w_gate, &L->w_up, &L->w_down};
    return (aellm_tensor *)t[which];
}

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
    size_t mapped_bytes; /* counted as weights by the memory accounting */
    void *owned; /* from aellm_mem_alloc, like the extra blocks */ /* heap block (random models,
                                                                      converted norms) */
    void **extra; /* further heap blocks, from aellm_model_own */
    int n_extra;

    char *config_json;   /* owned, may be NULL: the configuration that made it (aellm.config) */
    char *figures_json;  /* owned, may be NULL: its measured/predicted figures (aellm.figures) */
    char *quantize_json; /* owned, may be NULL: how the weights were quantized,
                            saved as the metadata key aellm.quantize */
};

/* Rows [r0, r0 + n) of t as a tensor of their own (an expert's matrix). */
static inline aellm_tensor aellm_tensor_rows(const aellm_tensor *t, int64_t r0, int64_t n)
{
    aellm_tensor v = *t;
    v.ne[1] = n;
    v.data = (const char *)t->data + (size_t)r0 * t->row_bytes;
    return v;
}

/* Bytes of a tensor. */
static inline size_t aellm_tensor_bytes(const aellm_tensor *t)
{
    return t->row_bytes * (size_t)t->ne[1];
}

/* Derives head_dim etc. and checks a configuration: positive sizes, heads
 * divide, kv heads divide heads. Message names `what` (the file). */
int aellm_model_config_check(const aellm_model_config *cfg, const char *what);

/* ---- For the layers above (techniques) that transform a model ---- */

/* A zeroed, 64-byte-aligned block of `bytes` that lives as long as the
 * model: new tensors of a transformed model point into it. NULL (with the
 * error set) when out of memory. */
void *aellm_model_own(aellm_model *m, size_t bytes);

/* ---- Shared between the files of src/model; not for other layers. ---- */

/* A zeroed model with `cfg` copied and cfg->n_layers zeroed layers (also
 * for the techniques layer, which builds transformed models). */
int aellm_model_alloc(aellm_model **out, const aellm_model_config *cfg);
/* Sets t to ne0 x ne1 elements of `type` at `data` (rows of
 * aellm_dtype_row_size(type, ne0) bytes, which must be non-zero). */
void aellm_tensor_set(aellm_tensor *t, int type, int64_t ne0, int64_t ne1, const void *data);
/* A llama2.c legacy checkpoint (llama2c.c). */
int aellm_model_load_llama2c(aellm_model **out, const char *path, const char *tokenizer_path);
/* Makes a loaded file's weights writable (or read-only again): only for
 * the private copy, not under AELLM_MMAP=1 (AELLM_EINVAL). */
int aellm_gguf_set_writable(aellm_gguf *g, int writable);
/* The file's bytes as loaded (weights included), and their count. */
const void *aellm_gguf_mapping(const aellm_gguf *g, size_t *size);
/* Metadata entry i as stored (value type u32 + value), for aellm_gguf_copy_kv. */
int aellm_gguf_kv_raw(const aellm_gguf *g, int64_t i, const void **data, size_t *len);

#endif
