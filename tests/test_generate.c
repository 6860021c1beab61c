/* End to end on the two real pretrained models: greedy decoding of stories260K
 * must reproduce llama2.c's reference text byte for byte, from the llama2.c
 * checkpoint and from the GGUF that aellm writes of it; BabyLlama's greedy text
 * and perplexity must equal llama.cpp's. Skips (exit 77) when ../shared/data
 * is absent. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/aellm.h"

#define DIR AELLM_DATA_DIR "/stories260K/"

typedef struct {
    char buf[8192];
    size_t len;
} text;

static int collect(const char *piece, int len, void *user)
{
    text *t = user;
    if (t->len + (size_t)len >= sizeof(t->buf)) return 1;
    memcpy(t->buf + t->len, piece, (size_t)len);
    t->len += (size_t)len;
    t->buf[t->len] = '\0';
    return 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)size + 1);
    size_t n = fread(s, 1, (size_t)size, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void greedy_matches(const char *model_path, const char *tok_path)
{
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    aellm_generate_stats st;
    aellm_sampler_params sp = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    text out = {.len = 0};
    int rc = aellm_model_load(&m, model_path, tok_path);
    if (rc) fail_msg("%s", aellm_error_last());
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_generate(e, "", 200, &sp, collect, &out, &st), 0);
    collect("\n", 1, &out); /* llama2.c ends its output with a newline */
    char *expected = read_all(DIR "expected_greedy_200.txt");
    assert_non_null(expected);
    if (strcmp(expected, out.buf) != 0) fail_msg("got:\n%s\nexpected:\n%s", out.buf, expected);
    assert_int_equal(st.n_generated, 200);
    free(expected);
    aellm_engine_free(e);
    aellm_model_free(m);
}

static void test_greedy_llama2c(void **state)
{
    (void)state;
    greedy_matches(DIR "stories260K.bin", DIR "tok512.bin");
}

static void test_greedy_gguf(void **state)
{
    (void)state;
    aellm_model *m = NULL;
    char path[] = "/tmp/aellm_test_gen_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(aellm_model_load(&m, DIR "stories260K.bin", DIR "tok512.bin"), 0);
    assert_int_equal(aellm_model_save_gguf(m, path, -1), 0);
    aellm_model_free(m);
    greedy_matches(path, NULL);
    unlink(path);
}

static void test_seeded_sampling_repeats(void **state)
{
    (void)state;
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    aellm_generate_stats st;
    aellm_sampler_params sp = {.temperature = 1.0f, .top_p = 0.9f, .seed = 133742};
    text a = {.len = 0}, b = {.len = 0};
    assert_int_equal(aellm_model_load(&m, DIR "stories260K.bin", DIR "tok512.bin"), 0);
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_generate(e, "Once upon a time", 100, &sp, collect, &a, &st), 0);
    assert_int_equal(aellm_generate(e, "Once upon a time", 100, &sp, collect, &b, &st), 0);
    assert_string_equal(a.buf, b.buf);
    assert_true(a.len > 100);
    aellm_engine_free(e);
    aellm_model_free(m);
}

/* llama.cpp's llama-perplexity (commit c392e50) on the GGUF that `aellm convert`
 * makes of stories260K, over the first 64 KiB of tinystories_val.txt at -c 512,
 * printed a running PPL of 3.5709 after 10 chunks (and 3.8624 +/- 0.05661 after
 * all 61; aellm matches both). An independent implementation's number. */
static void test_perplexity_matches_llamacpp(void **state)
{
    (void)state;
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    aellm_ppl_result r;
    char *txt = read_all(AELLM_DATA_DIR "/tinystories/tinystories_val.txt");
    if (!txt) skip();
    size_t len = strlen(txt) < 65536 ? strlen(txt) : 65536, n = 0;
    int32_t *ids = malloc((len + 3) * sizeof(int32_t));
    assert_int_equal(aellm_model_load(&m, DIR "stories260K.bin", DIR "tok512.bin"), 0);
    assert_int_equal(
        aellm_tokenizer_encode(aellm_model_tokenizer(m), txt, len, 1, ids, len + 3, &n), 0);
    assert_int_equal(n, 31402); /* llama.cpp: 61 chunks of 512 from this text */
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_perplexity(e, ids, (int64_t)n, 512, 10, NULL, NULL, &r), 0);
    print_message("PPL after 10 chunks: %.4f (llama.cpp 3.5709)\n", r.ppl);
    assert_true(fabs(r.ppl - 3.5709) < 1.5e-4);
    assert_int_equal(r.n_scored, 10 * 255);
    aellm_engine_free(e);
    aellm_model_free(m);
    free(ids);
    free(txt);
}

/* Quantized decode against llama.cpp: a random-weight model of the 15M shape
 * (seed 42, Llama 2 vocabulary) in q4_0 and q8_0, written by `aellm mkmodel`,
 * gave this greedy text from the empty prompt under llama.cpp's llama-cli
 * (commit c392e50, -n 8 --temp 0). llama-quantize --pure of the f32 model
 * gives byte-identical q4_0/q8_0 tensors, so the files are the same too. */
static void test_random_quantized_matches_llamacpp(void **state)
{
    (void)state;
    const char *vocab = AELLM_DATA_DIR "/llama2-tokenizer/tokenizer.bin";
    if (access(vocab, R_OK) != 0) skip();
    const int types[] = {AELLM_DTYPE_Q4_0, AELLM_DTYPE_Q8_0};
    for (int i = 0; i < 2; i++) {
        aellm_model_config cfg;
        aellm_model *m = NULL;
        aellm_tokenizer *tok = NULL;
        aellm_engine *e = NULL;
        aellm_generate_stats st;
        aellm_sampler_params sp = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
        text out = {.len = 0};
        assert_int_equal(aellm_model_shape(&cfg, "15M"), 0);
        assert_int_equal(aellm_model_random(&m, &cfg, types[i], 42), 0);
        assert_int_equal(aellm_tokenizer_load_llama2c(&tok, vocab, cfg.vocab_size), 0);
        aellm_model_set_tokenizer(m, tok);
        assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
        assert_int_equal(aellm_generate(e, "", 8, &sp, collect, &out, &st), 0);
        assert_string_equal(out.buf, "significopy switch switch switch switch switch switch");
        aellm_engine_free(e);
        aellm_model_free(m);
    }
}

/* ---- BabyLlama, the second real model ---- */
#define BABY     AELLM_DATA_DIR "/babyllama/babyllama-1M.bin"
#define BABY_TOK AELLM_DATA_DIR "/babyllama/tok105.bin"

/* llama.cpp's llama-cli (commit c392e50; -p "Once upon a time" --temp 0 -n 200)
 * on the GGUF that `aellm convert` writes of BabyLlama printed the prompt and
 * then exactly these 200 characters (one token each). */
static const char baby_greedy_200[] =
    ", there was a little girl named Lily. She loved to play outside in the sunshine. One day, "
    "she went to the park with her mommy and daddy. She saw a big box on the ground. She "
    "wanted to play with it, bu";

static void test_babyllama_greedy_matches_llamacpp(void **state)
{
    (void)state;
    if (access(BABY, R_OK) != 0) skip();
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    aellm_generate_stats st;
    aellm_sampler_params sp = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    text out = {.len = 0};
    assert_int_equal(aellm_model_load(&m, BABY, BABY_TOK), 0);
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_generate(e, "Once upon a time", 200, &sp, collect, &out, &st), 0);
    assert_int_equal(st.n_generated, 200);
    if (strcmp(out.buf, baby_greedy_200))
        fail_msg("got:\n%s\nllama.cpp:\n%s", out.buf, baby_greedy_200);
    aellm_engine_free(e);
    aellm_model_free(m);
}

/* BabyLlama's vocabulary has no newline and no byte pieces, and llama.cpp's
 * tokenizer aborts on a character it cannot encode, so the cross-check text is
 * the first 64 KiB of tinystories_val.txt with each run of newlines turned
 * into one space (`tr -s '\n' ' '`). On it llama.cpp's llama-perplexity
 * (c392e50, -c 256, all 254 windows, 32258 scored tokens) gives
 * PPL 1.9944 +/- 0.01284. */
static void test_babyllama_perplexity_matches_llamacpp(void **state)
{
    (void)state;
    char *txt = read_all(AELLM_DATA_DIR "/tinystories/tinystories_val.txt");
    if (!txt || access(BABY, R_OK) != 0) skip();
    size_t len = 0;
    for (size_t i = 0; txt[i] && i < 65536; i++) {
        char c = txt[i] == '\n' ? ' ' : txt[i];
        if (!(c == ' ' && len && txt[len - 1] == ' ')) txt[len++] = c;
    }
    aellm_model *m = NULL;
    aellm_engine *e = NULL;
    aellm_ppl_result r;
    size_t n = 0;
    int32_t *ids = malloc((len + 3) * sizeof(int32_t));
    assert_int_equal(aellm_model_load(&m, BABY, BABY_TOK), 0);
    assert_int_equal(
        aellm_tokenizer_encode(aellm_model_tokenizer(m), txt, len, 1, ids, len + 3, &n), 0);
    assert_int_equal(n, 65175); /* as llama.cpp's, and aellm perplexity's */
    assert_int_equal(aellm_engine_new(&e, m, NULL), 0);
    assert_int_equal(aellm_perplexity(e, ids, (int64_t)n, 256, 0, NULL, NULL, &r), 0);
    print_message("BabyLlama PPL %.4f +/- %.5f (llama.cpp 1.9944 +/- 0.01284)\n", r.ppl,
                  r.ppl_stderr);
    assert_int_equal(r.n_scored, 32258);
    assert_true(fabs(r.ppl - 1.9944) < 1.5e-4);
    assert_true(fabs(r.ppl_stderr - 0.01284) < 1.5e-5);
    aellm_engine_free(e);
    aellm_model_free(m);
    free(ids);
    free(txt);
}

int main(void)
{
    if (access(DIR "stories260K.bin", R_OK) != 0) {
        printf("skip: %s not found (shared data absent)\n", DIR "stories260K.bin");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_llama2c),
        cmocka_unit_test(test_greedy_gguf),
        cmocka_unit_test(test_seeded_sampling_repeats),
        cmocka_unit_test(test_perplexity_matches_llamacpp),
        cmocka_unit_test(test_random_quantized_matches_llamacpp),
        cmocka_unit_test(test_babyllama_greedy_matches_llamacpp),
        cmocka_unit_test(test_babyllama_perplexity_matches_llamacpp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
