/* Writes the binary seeds that no fixture in the repository provides, each
 * small, into OUT_DIR/<fuzzer>/ (bench/fuzz.sh runs it at fuzz time; none is
 * committed): tiny GGUF models of several weight types and layouts, GGUF
 * vocabularies, structured llama2.c inputs, the kld harness's true base
 * file, and the surrogate harness's true header. Not a fuzzer.
 *
 *   fuzz_mkseeds OUT_DIR */
#include <errno.h>

#include "aellm/aellm.h"
#include "aellm/surrogate.h"
#include "fuzz_kld.h"
#include "fuzz_lm.h"
#include "fuzz_surrogate.h"
#include "fuzz_util.h"

static const char *out_dir;

static const char *seed_path(const char *fuzzer, const char *name)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/%s", out_dir, fuzzer);
    if (mkdir(path, 0755) && errno != EEXIST) FZ_CHECK(0);
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, fuzzer, name);
    return path;
}

static void write_seed(const char *fuzzer, const char *name, const void *data, size_t n)
{
    FILE *f = fopen(seed_path(fuzzer, name), "wb");
    FZ_CHECK(f && fwrite(data, 1, n, f) == n);
    fclose(f);
}

/* A random-weight model of a tiny shape in `type`, with a vocabulary: dim
 * 16 when f32/f16, else 32 (a whole quantization block per row). */
static void tiny_gguf(const char *name, int type, int experts, int tied, int bundled_vocab)
{
    int wide = type != AELLM_DTYPE_F32 && type != AELLM_DTYPE_F16;
    aellm_model_config c = {.dim = wide ? 32 : 16,
                            .hidden_dim = 32,
                            .n_layers = 1,
                            .n_heads = 2,
                            .n_kv_heads = 1,
                            .head_dim = wide ? 16 : 8,
                            .vocab_size = bundled_vocab ? 512 : 260,
                            .seq_len = 32,
                            .rope_base = 10000.0f,
                            .norm_eps = 1e-5f,
                            .tied_output = tied,
                            .n_experts = experts,
                            .n_experts_used = experts ? 1 : 0};
    aellm_model *m = NULL;
    aellm_tokenizer *tok = NULL;
    FZ_CHECK(aellm_model_random(&m, &c, type, 7) == 0);
    if (bundled_vocab)
        FZ_CHECK(aellm_tokenizer_copy(&tok, fz_tokenizer()) == 0);
    else
        FZ_CHECK(aellm_tokenizer_byte_level(&tok, c.vocab_size) == 0);
    aellm_model_set_tokenizer(m, tok);
    FZ_CHECK(aellm_model_save_gguf(m, seed_path("gguf_model", name), -1) == 0);
    aellm_model_free(m);
}

/* A GGUF holding only a vocabulary's metadata. */
static void vocab_gguf(const char *name, const aellm_tokenizer *t)
{
    aellm_gguf_writer *w = NULL;
    FZ_CHECK(aellm_gguf_writer_new(&w) == 0);
    FZ_CHECK(aellm_gguf_set_str(w, "general.architecture", "llama") == 0);
    FZ_CHECK(aellm_tokenizer_write_gguf(t, w) == 0);
    FZ_CHECK(aellm_gguf_writer_write(w, seed_path("gguf_vocab", name)) == 0);
    aellm_gguf_writer_free(w);
}

/* fuzz_llama2c.c's input: flags, seven clamped header bytes, weight bytes. */
static void llama2c_seeds(void)
{
    static const uint8_t shapes[][8] = {
        {2 | 8 | 16, 3, 15, 63, 1, 1, 61, 15}, /* 4 heads / 2 KV, dim 32, 2 layers, 64 tokens */
        {2 | 4, 0, 7, 15, 0, 0, 13, 7},        /* separate classifier */
        {2 | 16, 7, 31, 100, 3, 1, 253, 63},   /* 8 heads / 2 KV, dim 64, 128 tokens */
        {0, 3, 15, 63, 1, 1, 61, 15},          /* size left inconsistent */
    };
    uint8_t buf[8 + 64];
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        memcpy(buf, shapes[i], 8);
        for (int k = 0; k < 64; k++) buf[8 + k] = (uint8_t)(k * 37 + 11); /* small floats */
        char name[32];
        snprintf(name, sizeof(name), "shape%zu", i);
        write_seed("llama2c", name, buf, sizeof(buf));
    }
}

static void kld_seed(void)
{
    const char *tmp = fz_path("kld-seed.bin");
    fz_kld_write_base(tmp);
    FILE *f = fopen(tmp, "rb");
    FZ_CHECK(f);
    uint8_t buf[1 << 16];
    buf[0] = 1; /* the harness keeps the true windows' SHA */
    size_t n = fread(buf + 1, 1, sizeof(buf) - 1, f);
    fclose(f);
    write_seed("kld_base", "true-base", buf, n + 1);
}

/* fuzz_surrogate.c's input: flags, then the true file's JSON header. */
static void surrogate_seed(void)
{
    size_t len;
    const uint8_t *t = fz_true_surrogate(&len);
    size_t at = fz_true_surrogate_members(t);
    uint8_t buf[4096] = {0};
    FZ_CHECK(at - 12 < sizeof(buf));
    memcpy(buf + 1, t + 12, at - 12);
    write_seed("surrogate", "true-header", buf, at - 11);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_mkseeds OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    tiny_gguf("f32-tied", AELLM_DTYPE_F32, 0, 1, 0);
    tiny_gguf("f16-untied", AELLM_DTYPE_F16, 0, 0, 0);
    tiny_gguf("q8_0", AELLM_DTYPE_Q8_0, 0, 1, 0);
    tiny_gguf("q4_0-moe", AELLM_DTYPE_Q4_0, 2, 1, 0);
    tiny_gguf("q4_1-tok512", AELLM_DTYPE_Q4_1, 0, 1, 1);
    aellm_tokenizer *bytes = NULL;
    FZ_CHECK(aellm_tokenizer_byte_level(&bytes, 300) == 0);
    vocab_gguf("byte-level", bytes);
    vocab_gguf("tok512", fz_tokenizer());
    aellm_tokenizer_free(bytes);
    llama2c_seeds();
    kld_seed();
    surrogate_seed();
    return 0;
}
