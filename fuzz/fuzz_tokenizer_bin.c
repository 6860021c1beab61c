/* Fuzzes llama2.c's tokenizer.bin loader (aellm_tokenizer_load_llama2c).
 * Its vocabulary size comes from the checkpoint, not the file, so the first
 * two input bytes give it (little-endian, 0..65535: sizes the file cannot
 * hold included) and the rest is the file. A vocabulary that loads encodes
 * and decodes a few texts and every id, is deep-copied and written into a
 * GGUF writer (which refuses pieces holding a NUL). */
#include "aellm/gguf.h"
#include "aellm/tokenizer.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int vocab = fz_u8(&in);
    vocab |= fz_u8(&in) << 8;
    aellm_tokenizer *t = NULL, *copy = NULL;
    if (aellm_tokenizer_load_llama2c(&t, fz_write("tokenizer.bin", in.p, in.n), vocab)) return 0;
    FZ_CHECK(aellm_tokenizer_vocab_size(t) == vocab);
    fz_exercise_tokenizer(t);
    if (aellm_tokenizer_copy(&copy, t) == 0) aellm_tokenizer_free(copy);
    aellm_gguf_writer *w = NULL;
    FZ_CHECK(aellm_gguf_writer_new(&w) == 0);
    aellm_tokenizer_write_gguf(t, w);
    aellm_gguf_writer_free(w);
    aellm_tokenizer_free(t);
    return 0;
}
