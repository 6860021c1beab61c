/* A Llama-family model (Llama, Mistral, Qwen2 shapes): configuration, weights
 * and tokenizer. Loaded from GGUF or a llama2.c checkpoint; weights stay
 * memory-mapped in their stored type. Also makes random-weight models of real
 * shapes for speed work. */
#ifndef AELLM_MODEL_H
#define AELLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/gguf.h"
#include "aellm/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim;        /* embedding width */
    int hidden_dim; /* FFN inner width; with experts, each expert's */
    int n_layers;
    int n_heads;    /* query heads */
    int n_kv_heads; /* key/value heads: n_heads = MHA, 1 = MQA, between = GQA */
    int head_dim;   /* dim / n_heads unless the file says otherwise */
    int vocab_size;
    int seq_len;        /* context length */
    float rope_base;    /* RoPE theta */
    float norm_eps;     /* RMSNorm epsilon */
    int tied_output;    /* output matrix is the token embedding */
    int n_experts;      /* FFN experts per layer (llama.expert_count); 0 = one dense FFN */
    int n_experts_used; /* experts each token is routed to (top-k); 0 when dense */
    /* Multi-head latent attention (aellm.mla.*): keys and values come from a
     * latent of mla_rank values per token, the only thing cached beside the
     * rotary part of the keys, mla_rope_dim values per KV head. 0 = none. */
    int mla_rank;
    int mla_rope_dim;
} aellm_model_config;

typedef struct aellm_model aellm_model;

/* Opens a model; the format is told by the file's magic (GGUF or llama2.c).
 * For a llama2.c checkpoint, `tokenizer_path` names tokenizer.bin (may be
 * NULL: no tokenizer); for GGUF it is ignored (the vocabulary is inside). */
int aellm_model_load(aellm_model **out, const char *path, const char *tokenizer_path);
void aellm_model_free(aellm_model *m); /* accepts NULL */

const aellm_model_config *aellm_model_config_get(const aellm_model *m); /* borrowed */
const aellm_tokenizer *aellm_model_tokenizer(const aellm_model *m);     /* borrowed, may be NULL */
/* Gives the model a vocabulary (replacing any it had); takes ownership of
 * `tok` (may be NULL). */
void aellm_model_set_tokenizer(aellm_model *m, aellm_tokenizer *tok);
/* Weight type of the big matrices (that of layer 0's attention query). */
int aellm_model_weight_type(const aellm_model *m);
/* How the weights were quantized (JSON of the method and options, the
 * file's aellm.quantize key), or NULL. Borrowed. */
const char *aellm_model_quantize_info(const aellm_model *m);
/* What made the model, saved with it as GGUF metadata and read back on
 * loading: the configuration that produced it (aellm.config, canonical
 * JSON) and what a search or evaluation measured or predicted for it
 * (aellm.figures, JSON). Either may be NULL (left as it is); copies them. */
int aellm_model_set_provenance(aellm_model *m, const char *config_json, const char *figures_json);
const char *aellm_model_config_json(const aellm_model *m);  /* borrowed, may be NULL */
const char *aellm_model_figures_json(const aellm_model *m); /* borrowed, may be NULL */
/* Bytes of all weights as stored, and parameter count. */
size_t aellm_model_weight_bytes(const aellm_model *m);
int64_t aellm_model_n_params(const aellm_model *m);
/* Parameters a token uses: all but the experts it is not routed to (the
 * embedding counts one row; the output matrix counts whole). */
int64_t aellm_model_active_params(const aellm_model *m);
/* Weight bytes one decoded token reads: as active_params, in stored bytes. */
size_t aellm_model_active_bytes(const aellm_model *m);
/* The FFN's weight bytes over all layers: what one decoded token reads
 * (its k experts and the routers; the whole FFN when dense), and all of it. */
void aellm_model_ffn_bytes(const aellm_model *m, size_t *per_token, size_t *all);

/* Writes the model as GGUF v3 (llama.cpp's names and metadata), converting
 * the 2-D weights to `type` (-1 keeps each tensor's type; norms stay F32). */
int aellm_model_save_gguf(const aellm_model *m, const char *path, int type);

/* Rewrites the model's q4_0 matrices (the seven of each dense layer, and an
 * untied output) in place into the engine's decode layout, q4_0_r16 (16
 * rows interleaved, core/blocks.h): the same bytes, read by decode about
 * twice as cheaply. Afterwards the model is for the engine only: saving it
 * is refused, and it must not be quantized or transformed (the layout has
 * no to_float of a row, which those read); aellm_model_weight_type still
 * says q4_0. Matrices whose rows are not a multiple of 16 stay as they are;
 * so does a model mapped from its file (AELLM_MMAP=1). AELLM_REPACK=0 turns
 * it off. *n_repacked (may be NULL) gets the number of matrices rewritten. */
int aellm_model_repack(aellm_model *m, int *n_repacked);

/* Named real shapes for speed work: "260K", "15M", "110M", "1.1B". */
int aellm_model_shape(aellm_model_config *out, const char *name);
/* A model with weights drawn from N(0, 0.02) (norms 1), stored in `type`,
 * seeded; no vocabulary (attach one with aellm_model_set_tokenizer).
 * Rows that do not fit the block size are stored as f16 (llama.cpp's rule). */
int aellm_model_random(aellm_model **out, const aellm_model_config *cfg, int type, uint64_t seed);
/* The same tensors, shapes and types (the embedding and output matrix in
 * base_type) without any data: for sizing what a model of that shape would
 * need (aellm_engine_plan_bytes). Its weights must never be read. */
int aellm_model_shape_only(aellm_model **out, const aellm_model_config *cfg, int type,
                           int base_type);

#ifdef __cplusplus
}
#endif
#endif
