/* The tokenizer's in-memory vocabulary, shared by the algorithm (tokenizer.c)
 * and the file readers/writers (tokenizer_load.c). Private to the library:
 * callers see only include/aellm/tokenizer.h. */
#ifndef AELLM_MODEL_TOKENIZER_IMPL_H
#define AELLM_MODEL_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/tokenizer.h"

/* Token types, as GGUF's tokenizer.ggml.token_type stores them. */
enum {
    AELLM_TOKEN_NORMAL = 1,
    AELLM_TOKEN_UNKNOWN = 2,
    AELLM_TOKEN_CONTROL = 3,
    AELLM_TOKEN_USER_DEFINED = 4,
    AELLM_TOKEN_UNUSED = 5,
    AELLM_TOKEN_BYTE = 6,
};

struct aellm_tokenizer {
    int32_t n_vocab;
    char *text;           /* every piece, NUL-terminated; spaces are U+2581 '▁' */
    size_t *off;          /* (n_vocab) start of piece i in text */
    uint32_t *len;        /* (n_vocab) bytes of piece i, NUL excluded */
    float *score;         /* (n_vocab) merge priority: the highest merges first */
    int32_t *type;        /* (n_vocab) AELLM_TOKEN_* */
    int32_t *slot;        /* (mask + 1) open-addressing table of ids by piece, -1 empty */
    uint32_t mask;        /* table size - 1 (a power of two) */
    uint32_t max_len;     /* longest piece: no longer pair can be a token */
    int32_t byte_id[256]; /* token of each raw byte for byte fallback, -1 none */
    int32_t bos, eos, unk;
    int add_space_prefix;     /* SentencePiece's dummy prefix '▁' */
    int add_space_prefix_set; /* the file said so explicitly (written back) */
    int word_split;           /* no piece spans "x▁": words merge independently */
};

/* Allocates a tokenizer of n_vocab tokens and `text_bytes` bytes of pieces
 * (NULs included); scores 0, types normal, ids bos/eos/unk = 1/2/0. */
int aellm_tokenizer_alloc(aellm_tokenizer **out, int32_t n_vocab, size_t text_bytes,
                          const char *what);

/* After the pieces, scores and types are filled in: checks the special ids,
 * builds the piece -> id table and the byte fallback table. */
int aellm_tokenizer_index(aellm_tokenizer *t, const char *what);

/* Returns the id of the piece `s` (n bytes), or -1. When a piece occurs
 * twice, the later id wins (as llama.cpp's map). */
int32_t aellm_tokenizer_find(const aellm_tokenizer *t, const char *s, size_t n);

static inline const char *aellm_tokenizer_piece(const aellm_tokenizer *t, int32_t id)
{
    return t->text + t->off[id];
}

#endif
