/* Fuzzes the vocabulary read from GGUF metadata (aellm_tokenizer_from_gguf:
 * tokenizer.ggml.model, tokens, scores, token types, special ids) on a file
 * holding the input; a vocabulary that loads encodes and decodes a few texts,
 * decodes every id, is deep-copied and written back into a GGUF writer. The
 * GGUF container itself is fuzz_gguf.c's. */
#include "aellm/gguf.h"
#include "aellm/tokenizer.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aellm_gguf *g = NULL;
    if (aellm_gguf_open(&g, fz_write("vocab.gguf", data, size))) return 0;
    aellm_tokenizer *t = NULL, *copy = NULL;
    if (aellm_tokenizer_from_gguf(&t, g) == 0) {
        int n = aellm_tokenizer_vocab_size(t);
        FZ_CHECK(n > 0);
        FZ_CHECK(aellm_tokenizer_bos(t) >= 0 && aellm_tokenizer_bos(t) < n);
        FZ_CHECK(aellm_tokenizer_eos(t) >= 0 && aellm_tokenizer_eos(t) < n);
        fz_exercise_tokenizer(t);
        if (aellm_tokenizer_copy(&copy, t) == 0) {
            FZ_CHECK(aellm_tokenizer_vocab_size(copy) == n);
            aellm_tokenizer_free(copy);
        }
        aellm_gguf_writer *w = NULL;
        FZ_CHECK(aellm_gguf_writer_new(&w) == 0);
        aellm_tokenizer_write_gguf(t, w);
        aellm_gguf_writer_free(w);
        aellm_tokenizer_free(t);
    }
    aellm_gguf_free(g);
    return 0;
}
