/* SentencePiece-style BPE tokenizer with scores and byte fallback, as
 * llama.cpp's "llama" (SPM) vocabulary: it reproduces llama.cpp's token ids.
 * Loaded from GGUF `tokenizer.ggml.*` metadata or llama2.c's tokenizer.bin. */
#ifndef AELLM_TOKENIZER_H
#define AELLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aellm_tokenizer aellm_tokenizer;

int aellm_tokenizer_from_gguf(aellm_tokenizer **out, const aellm_gguf *g);
/* llama2.c's tokenizer.bin; vocab_size comes from the checkpoint header. */
int aellm_tokenizer_load_llama2c(aellm_tokenizer **out, const char *path, int vocab_size);
/* A byte-level vocabulary for random-weight models: <unk>, <s>, </s>, the 256
 * byte tokens, "▁", then unused filler pieces up to vocab_size (>= 260). */
int aellm_tokenizer_byte_level(aellm_tokenizer **out, int vocab_size);
void aellm_tokenizer_free(aellm_tokenizer *t); /* accepts NULL */
/* A deep copy of `t` (for transformed models, which own their vocabulary). */
int aellm_tokenizer_copy(aellm_tokenizer **out, const aellm_tokenizer *t);

int aellm_tokenizer_vocab_size(const aellm_tokenizer *t);
int aellm_tokenizer_bos(const aellm_tokenizer *t);
int aellm_tokenizer_eos(const aellm_tokenizer *t);

/* Encodes `len` bytes of `text` (a space prefix is added as SentencePiece
 * does). Writes at most `cap` ids to `out_ids` and the full count to *n_out;
 * returns AELLM_EINVAL if cap was too small (call again with *n_out). */
int aellm_tokenizer_encode(const aellm_tokenizer *t, const char *text, size_t len, int add_bos,
                           int32_t *out_ids, size_t cap, size_t *n_out);

/* The text of token `id` as it should be printed after token `prev`: '▁'
 * becomes ' ', byte tokens <0xNN> become the byte, the leading space after BOS
 * is dropped (llama2.c's habit). Writes into buf (NUL-terminated), returns
 * the byte count (a byte token can be a lone byte of a UTF-8 sequence). */
int aellm_tokenizer_decode(const aellm_tokenizer *t, int prev, int id, char *buf, size_t cap);

/* Adds tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,
 * eos_token_id,unknown_token_id} to a GGUF being written. */
int aellm_tokenizer_write_gguf(const aellm_tokenizer *t, aellm_gguf_writer *w);

#ifdef __cplusplus
}
#endif
#endif
