/* Tokenizer tests: llama.cpp's SPM test vectors (GGUF and llama2.c vocab),
 * round trips on stories260K's 512-token vocabulary, malformed files, GGUF
 * write/read, and the speed of a 1 MB encode (printed, not asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/error.h"
#include "aellm/gguf.h"
#include "aellm/tokenizer.h"
#include "core/rng.h"
#include "core/timer.h"
#include "model/tokenizer_impl.h"

#define VOCAB_GGUF AELLM_DATA_DIR "/gguf-vocab/ggml-vocab-llama-spm.gguf"
#define LLAMA2_BIN AELLM_DATA_DIR "/llama2-tokenizer/tokenizer.bin"
#define TOK512_BIN AELLM_DATA_DIR "/stories260K/tok512.bin"
#define SAMPLE_TXT AELLM_DATA_DIR "/tinystories/tinystories_sample.txt"
#define VAL_TXT    AELLM_DATA_DIR "/tinystories/tinystories_val.txt"
#define WIKI_TXT   AELLM_DATA_DIR "/wikitext-2/test.txt"

static char tmp_dir[64];

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (size) *size = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static const char *tmp_path(const char *name)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    return path;
}

/* Encodes text; the ids are malloc'ed. */
static int32_t *encode(const aellm_tokenizer *t, const char *text, size_t len, int bos, size_t *n)
{
    size_t cap = len + 8;
    int32_t *ids = malloc(cap * sizeof(*ids));
    assert_non_null(ids);
    int rc = aellm_tokenizer_encode(t, text, len, bos, ids, cap, n);
    if (rc) fprintf(stderr, "encode: %s\n", aellm_error_last());
    assert_int_equal(rc, 0);
    return ids;
}

/* Decodes ids (the first after BOS) and compares with text. */
static void assert_round_trip(const aellm_tokenizer *t, const char *text, size_t len)
{
    size_t n;
    int32_t *ids = encode(t, text, len, 1, &n);
    char *out = malloc(len + 1), piece[256];
    size_t o = 0;
    for (size_t i = 1; i < n; i++) {
        int k = aellm_tokenizer_decode(t, ids[i - 1], ids[i], piece, sizeof(piece));
        assert_true(k >= 0 && o + (size_t)k <= len);
        memcpy(out + o, piece, (size_t)k);
        o += (size_t)k;
    }
    assert_int_equal(o, len);
    assert_memory_equal(out, text, len);
    free(out);
    free(ids);
}

/* ---- llama.cpp's test vectors: inputs split by a marker line, one line
 * of space-separated ids per input ---- */

typedef struct {
    char *text;
    size_t len;
    int32_t ids[1024];
    size_t n;
} vector;

static vector *vectors;
static size_t n_vectors;

static void parse_ids(vector *v, const char *line, const char *end)
{
    v->n = 0;
    while (line < end) {
        char *next;
        long id = strtol(line, &next, 10);
        if (next == line) break;
        assert_true(v->n < sizeof(v->ids) / sizeof(v->ids[0]));
        v->ids[v->n++] = (int32_t)id;
        line = next;
    }
}

static int load_vectors(void)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t n_inp, n_out;
    char *inp = read_file(VOCAB_GGUF ".inp", &n_inp), *out = read_file(VOCAB_GGUF ".out", &n_out);
    if (!inp || !out) return -1;
    vectors = calloc(256, sizeof(*vectors));
    const char *p = inp, *q = out, *end = inp + n_inp;
    while (p < end && n_vectors < 256) {
        const char *next = strstr(p, sep);
        const char *stop = next ? next : end;
        vector *v = &vectors[n_vectors++];
        v->len = (size_t)(stop - p);
        v->text = malloc(v->len + 1);
        memcpy(v->text, p, v->len);
        v->text[v->len] = '\0';
        const char *eol = strchr(q, '\n');
        if (!eol) eol = q + strlen(q);
        parse_ids(v, q, eol);
        q = *eol ? eol + 1 : eol;
        p = next ? next + strlen(sep) : end;
    }
    free(inp);
    free(out);
    return 0;
}

/* Tokenizes every vector without BOS, as llama.cpp's test-tokenizer-0
 * (add_special = false); prints the first mismatch. Returns passes. */
static size_t check_vectors(const aellm_tokenizer *t, const char *what)
{
    size_t pass = 0;
    int shown = 0;
    for (size_t i = 0; i < n_vectors; i++) {
        vector *v = &vectors[i];
        size_t n;
        int32_t *ids = encode(t, v->text, v->len, 0, &n);
        int ok = n == v->n && memcmp(ids, v->ids, n * sizeof(*ids)) == 0;
        pass += ok;
        if (!ok && !shown++) {
            fprintf(stderr, "%s: vector %zu '%s' gives", what, i, v->text);
            for (size_t j = 0; j < n; j++) fprintf(stderr, " %d", ids[j]);
            fprintf(stderr, "\n  expected");
            for (size_t j = 0; j < v->n; j++) fprintf(stderr, " %d", v->ids[j]);
            fprintf(stderr, "\n");
        }
        free(ids);
    }
    printf("%s: %zu/%zu vectors pass\n", what, pass, n_vectors);
    return pass;
}

static aellm_tokenizer *open_gguf_vocab(const char *path)
{
    aellm_gguf *g = NULL;
    aellm_tokenizer *t = NULL;
    int rc = aellm_gguf_open(&g, path);
    if (!rc) rc = aellm_tokenizer_from_gguf(&t, g);
    if (rc) fprintf(stderr, "%s\n", aellm_error_last());
    assert_int_equal(rc, 0);
    aellm_gguf_free(g);
    return t;
}

static void test_gguf_vectors(void **state)
{
    (void)state;
    aellm_tokenizer *t = open_gguf_vocab(VOCAB_GGUF);
    assert_int_equal(aellm_tokenizer_vocab_size(t), 32000);
    assert_int_equal(aellm_tokenizer_bos(t), 1);
    assert_int_equal(aellm_tokenizer_eos(t), 2);
    assert_int_equal(check_vectors(t, "gguf vocab"), n_vectors);
    aellm_tokenizer_free(t);
}

static void test_llama2c_vectors(void **state)
{
    (void)state;
    aellm_tokenizer *t = NULL;
    assert_int_equal(aellm_tokenizer_load_llama2c(&t, LLAMA2_BIN, 32000), 0);
    assert_int_equal(check_vectors(t, "llama2.c tokenizer.bin"), n_vectors);
    aellm_tokenizer_free(t);
}

/* ---- stories260K's vocabulary ---- */

static void test_tok512_round_trip(void **state)
{
    (void)state;
    aellm_tokenizer *t = NULL;
    assert_int_equal(aellm_tokenizer_load_llama2c(&t, TOK512_BIN, 512), 0);
    const char *once = "Once upon a time";
    size_t n;
    int32_t *ids = encode(t, once, strlen(once), 1, &n);
    assert_true(n >= 2 && n <= 6);
    assert_int_equal(ids[0], 1);
    char piece[64];
    assert_int_equal(aellm_tokenizer_decode(t, 1, ids[1], piece, sizeof(piece)), 4);
    assert_string_equal(piece, "Once"); /* no space after BOS */
    assert_int_equal(aellm_tokenizer_decode(t, 5, ids[1], piece, sizeof(piece)), 5);
    assert_string_equal(piece, " Once");
    free(ids);
    assert_round_trip(t, once, strlen(once));

    size_t len;
    char *text = read_file(SAMPLE_TXT, &len);
    assert_non_null(text);
    assert_round_trip(t, text, len); /* curly quotes go through byte fallback */
    assert_round_trip(t, "  two spaces\n\ttab", 17);
    free(text);
    aellm_tokenizer_free(t);
}

static void test_decode_specials(void **state)
{
    (void)state;
    aellm_tokenizer *t = NULL;
    assert_int_equal(aellm_tokenizer_load_llama2c(&t, TOK512_BIN, 512), 0);
    char buf[16];
    for (int id = 0; id < 3; id++) {
        assert_int_equal(aellm_tokenizer_decode(t, -1, id, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
    }
    assert_int_equal(aellm_tokenizer_decode(t, -1, 3 + 0x0A, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], '\n');
    assert_int_equal(aellm_tokenizer_decode(t, 1, 3 + ' ', buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], ' '); /* a byte token keeps its space after BOS */
    assert_int_equal(aellm_tokenizer_decode(t, -1, 512, buf, sizeof(buf)), AELLM_EINVAL);
    assert_int_equal(aellm_tokenizer_decode(t, -1, -1, buf, sizeof(buf)), AELLM_EINVAL);
    assert_int_equal(aellm_tokenizer_decode(t, -1, 3 + 'a', buf, 1), AELLM_EINVAL);

    size_t n = 99;
    int32_t ids[4];
    assert_int_equal(aellm_tokenizer_encode(t, "", 0, 1, ids, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(aellm_tokenizer_encode(t, "", 0, 0, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    const char *long_text = "Once upon a time there was a girl";
    assert_int_equal(aellm_tokenizer_encode(t, long_text, strlen(long_text), 1, ids, 4, &n),
                     AELLM_EINVAL);
    assert_true(n > 4);
    aellm_tokenizer_free(t);
}

/* ---- malformed tokenizer.bin ---- */

static void expect_bad_llama2c(const void *data, size_t n, int vocab, int code)
{
    const char *path = tmp_path("bad.bin");
    write_file(path, data, n);
    aellm_tokenizer *t = (aellm_tokenizer *)1;
    int rc = aellm_tokenizer_load_llama2c(&t, path, vocab);
    assert_int_equal(rc, code);
    assert_null(t);
    assert_true(strlen(aellm_error_last()) > 0);
    unlink(path);
}

static void test_llama2c_malformed(void **state)
{
    (void)state;
    size_t size;
    unsigned char *buf = (unsigned char *)read_file(TOK512_BIN, &size);
    assert_non_null(buf);
    expect_bad_llama2c(buf, size / 2, 512, AELLM_EFORMAT); /* truncated */
    expect_bad_llama2c(buf, 0, 512, AELLM_EFORMAT);
    expect_bad_llama2c(buf, 3, 512, AELLM_EFORMAT);
    expect_bad_llama2c(buf, size, 0, AELLM_EFORMAT);
    expect_bad_llama2c(buf, size, -5, AELLM_EFORMAT);
    expect_bad_llama2c(buf, size, 513, AELLM_EFORMAT); /* more tokens than the file holds */
    expect_bad_llama2c(buf, size, 1 << 30, AELLM_EFORMAT);
    static const int32_t bad_lens[] = {-1, INT32_MIN, INT32_MAX, 1 << 20};
    for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, buf, size);
        memcpy(copy + 4 + 4, &bad_lens[i], 4); /* token 0's length */
        expect_bad_llama2c(copy, size, 512, AELLM_EFORMAT);
        free(copy);
    }
    for (size_t cut = 0; cut < 200; cut += 7) expect_bad_llama2c(buf, cut, 512, AELLM_EFORMAT);
    aellm_rng rng; /* random damage: an error or a usable tokenizer, never a crash */
    aellm_rng_seed(&rng, 11);
    for (int it = 0; it < 100; it++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, buf, size);
        for (int k = 0; k < 4; k++)
            copy[aellm_rng_u64(&rng) % size] = (unsigned char)aellm_rng_u64(&rng);
        write_file(tmp_path("fuzz.bin"), copy, size);
        aellm_tokenizer *t = NULL;
        size_t n;
        int32_t ids[64];
        if (aellm_tokenizer_load_llama2c(&t, tmp_path("fuzz.bin"), 512) == 0)
            assert_int_equal(aellm_tokenizer_encode(t, "Once upon a time", 16, 1, ids, 64, &n), 0);
        aellm_tokenizer_free(t);
        free(copy);
    }
    unlink(tmp_path("fuzz.bin"));
    aellm_tokenizer *t = (aellm_tokenizer *)1;
    assert_int_equal(aellm_tokenizer_load_llama2c(&t, tmp_path("absent.bin"), 512),
                     AELLM_ENOTFOUND);
    assert_null(t);
    free(buf);
}

/* ---- GGUF write -> read ---- */

static aellm_tokenizer *gguf_round_trip(const aellm_tokenizer *t)
{
    aellm_gguf_writer *w = NULL;
    const char *path = tmp_path("vocab.gguf");
    int rc = aellm_gguf_writer_new(&w);
    if (!rc) rc = aellm_gguf_set_str(w, "general.architecture", "llama");
    if (!rc) rc = aellm_tokenizer_write_gguf(t, w);
    if (!rc) rc = aellm_gguf_writer_write(w, path);
    if (rc) fprintf(stderr, "%s\n", aellm_error_last());
    assert_int_equal(rc, 0);
    aellm_gguf_writer_free(w);
    aellm_tokenizer *back = open_gguf_vocab(path);
    unlink(path);
    return back;
}

static void test_gguf_write_read(void **state)
{
    (void)state;
    aellm_tokenizer *t = open_gguf_vocab(VOCAB_GGUF);
    aellm_tokenizer *back = gguf_round_trip(t);
    assert_int_equal(check_vectors(back, "gguf written back"), n_vectors);
    aellm_tokenizer_free(back);
    aellm_tokenizer_free(t);

    assert_int_equal(aellm_tokenizer_load_llama2c(&t, TOK512_BIN, 512), 0);
    back = gguf_round_trip(t);
    size_t len, n1, n2;
    char *text = read_file(SAMPLE_TXT, &len);
    int32_t *a = encode(t, text, len, 1, &n1), *b = encode(back, text, len, 1, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof(*a));
    assert_round_trip(back, text, len);
    free(a);
    free(b);
    free(text);
    aellm_tokenizer_free(back);
    aellm_tokenizer_free(t);
}

static int write_vocab(const char *model, int n_tokens, int n_scores)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "a"};
    static const float scores[4] = {0};
    aellm_gguf_writer *w = NULL;
    int rc = aellm_gguf_writer_new(&w);
    if (!rc && model) rc = aellm_gguf_set_str(w, "tokenizer.ggml.model", model);
    if (!rc && n_tokens) rc = aellm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    if (!rc && n_scores)
        rc = aellm_gguf_set_arr(w, "tokenizer.ggml.scores", AELLM_GGUF_FLOAT32, scores,
                                (uint64_t)n_scores);
    if (!rc) rc = aellm_gguf_writer_write(w, tmp_path("bad.gguf"));
    aellm_gguf_writer_free(w);
    return rc;
}

static int open_bad_vocab(void)
{
    aellm_gguf *g = NULL;
    aellm_tokenizer *t = (aellm_tokenizer *)1;
    int rc = aellm_gguf_open(&g, tmp_path("bad.gguf"));
    assert_int_equal(rc, 0);
    rc = aellm_tokenizer_from_gguf(&t, g);
    if (rc) assert_null(t);
    aellm_tokenizer_free(rc ? NULL : t);
    aellm_gguf_free(g);
    unlink(tmp_path("bad.gguf"));
    return rc;
}

static void test_gguf_malformed(void **state)
{
    (void)state;
    assert_int_equal(write_vocab("gpt2", 4, 0), 0);
    assert_int_equal(open_bad_vocab(), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "gpt2"));
    assert_int_equal(write_vocab(NULL, 4, 0), 0);
    assert_int_equal(open_bad_vocab(), AELLM_ENOTFOUND);
    assert_int_equal(write_vocab("llama", 0, 0), 0);
    assert_int_equal(open_bad_vocab(), AELLM_ENOTFOUND);
    assert_int_equal(write_vocab("llama", 4, 3), 0); /* 3 scores for 4 tokens */
    assert_int_equal(open_bad_vocab(), AELLM_EFORMAT);
    assert_int_equal(write_vocab("llama", 4, 4), 0);
    assert_int_equal(open_bad_vocab(), 0);
}

/* ---- byte-level vocabulary (random models) ---- */

static void test_byte_level(void **state)
{
    (void)state;
    aellm_tokenizer *t = NULL;
    assert_int_equal(aellm_tokenizer_byte_level(&t, 300), 0);
    const char *text = "h\xc3\xa9llo world";
    size_t n;
    int32_t *ids = encode(t, text, strlen(text), 0, &n);
    assert_int_equal(n, strlen(text) + 1); /* '▁' prefix, then a token a byte */
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], 3 + 'h');
    free(ids);
    assert_round_trip(t, text, strlen(text));
    aellm_tokenizer_free(t);
    assert_int_equal(aellm_tokenizer_byte_level(&t, 100), 0);
    ids = encode(t, "Aa", 2, 0, &n); /* 'a' = 0x61 is past the vocabulary: <unk> */
    assert_int_equal(n, 5);          /* the '▁' prefix is three <unk> */
    assert_int_equal(ids[3], 3 + 'A');
    assert_int_equal(ids[4], 0);
    free(ids);
    aellm_tokenizer_free(t);
}

/* ---- words merged one at a time = one queue for the whole text ---- */

static void assert_same_split(aellm_tokenizer *t, const char *text, size_t len)
{
    size_t n1, n2;
    t->word_split = 1;
    int32_t *a = encode(t, text, len, 0, &n1);
    t->word_split = 0;
    int32_t *b = encode(t, text, len, 0, &n2);
    t->word_split = 1;
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1 * sizeof(*a));
    free(a);
    free(b);
}

static void test_word_split(void **state)
{
    (void)state;
    static const char *const parts[] = {" ",    "  ",   "a",    "b",    "ab", "the", "\xe2\x96\x81",
                                        "\xe2", "\x96", "\x81", "\xf0", "\n", "3",   "\xc3\xa9"};
    aellm_tokenizer *t[2] = {NULL, NULL};
    assert_int_equal(aellm_tokenizer_load_llama2c(&t[0], LLAMA2_BIN, 32000), 0);
    assert_int_equal(aellm_tokenizer_load_llama2c(&t[1], TOK512_BIN, 512), 0);
    assert_true(t[0]->word_split && t[1]->word_split); /* the fast path is what runs */
    aellm_rng rng;
    aellm_rng_seed(&rng, 7);
    char text[256];
    for (int it = 0; it < 400; it++) {
        size_t len = 0;
        while (len < 200) {
            const char *p = parts[aellm_rng_u64(&rng) % (sizeof(parts) / sizeof(parts[0]))];
            memcpy(text + len, p, strlen(p));
            len += strlen(p);
        }
        assert_same_split(t[it & 1], text, len);
    }
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *wiki = read_file(WIKI_TXT, &len);
        if (wiki) assert_same_split(t[i], wiki, len < 200000 ? len : 200000);
        free(wiki);
        aellm_tokenizer_free(t[i]);
    }
}

/* ---- speed: ~1 MB of text, as perplexity tokenizes ---- */

static void test_encode_speed(void **state)
{
    (void)state;
    size_t len;
    char *val = read_file(VAL_TXT, &len);
    if (!val) skip();
    size_t total = 1 << 20;
    char *text = malloc(total);
    for (size_t o = 0; o < total; o += len)
        memcpy(text + o, val, o + len > total ? total - o : len);
    aellm_tokenizer *t = NULL;
    assert_int_equal(aellm_tokenizer_load_llama2c(&t, LLAMA2_BIN, 32000), 0);
    double t0 = aellm_time_s();
    size_t n;
    int32_t *ids = encode(t, text, total, 1, &n);
    double dt = aellm_time_s() - t0;
    printf("encode speed: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)\n", total, n, dt,
           (double)total / dt / 1e6);
    free(ids);
    free(text);
    free(val);
    aellm_tokenizer_free(t);
}

int main(void)
{
    const char *needed[] = {VOCAB_GGUF, VOCAB_GGUF ".inp", VOCAB_GGUF ".out",
                            LLAMA2_BIN, TOK512_BIN,        SAMPLE_TXT};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        if (access(needed[i], R_OK) != 0) {
            printf("skip: %s is absent\n", needed[i]);
            return 77;
        }
    }
    if (load_vectors() != 0 || n_vectors == 0) {
        printf("cannot read the test vectors\n");
        return 1;
    }
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/aellm_tok_XXXXXX");
    if (!mkdtemp(tmp_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_vectors),      cmocka_unit_test(test_llama2c_vectors),
        cmocka_unit_test(test_tok512_round_trip), cmocka_unit_test(test_decode_specials),
        cmocka_unit_test(test_llama2c_malformed), cmocka_unit_test(test_gguf_write_read),
        cmocka_unit_test(test_gguf_malformed),    cmocka_unit_test(test_byte_level),
        cmocka_unit_test(test_word_split),        cmocka_unit_test(test_encode_speed),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmp_dir);
    for (size_t i = 0; i < n_vectors; i++) free(vectors[i].text);
    free(vectors);
    return failed;
}
