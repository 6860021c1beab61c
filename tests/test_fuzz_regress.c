/* Inputs the fuzzers of fuzz/ (bench/fuzz.sh) found to crash or misbehave,
 * fed to the same entry points, each beside the fix it needed; every case
 * failed before its fix. The inputs are byte arrays here, or built in code
 * where they are a real file with a few bytes changed, so nothing depends on
 * files from a fuzzing run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "aellm/aellm.h"
#include "aellm/config.h"
#include "aellm/surrogate.h"
#include "aellm/task.h"
#include "test_tmpdir.h"

static const char *write_file(const char *name, const void *data, size_t n)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return path;
}

/* ---- configuration: a whole number beyond int64 (fuzz_config) ----
 * get_int cast the double to int64_t before knowing it fits: undefined
 * behaviour (UBSan: "4e+96 is outside the range of representable values"),
 * and on x86 the message said "must be a whole number" of a whole number. */
static void test_config_number_beyond_int64(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "{\"inference\": {\"calibration\": {\"tokens\": 4e96}}}",
        "{\"inference\": {\"calibration\": {\"skip\": -1e19}}}",
        "{\"inference\": {\"group\": 9223372036854775808}}",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        cJSON *j = cJSON_Parse(inputs[i]);
        assert_non_null(j);
        aellm_config c;
        assert_int_equal(aellm_config_parse(&c, j, "cfg.json", NULL), AELLM_EINVAL);
        if (!strstr(aellm_error_last(), "out of range"))
            fail_msg("%s: %s", inputs[i], aellm_error_last());
        cJSON_Delete(j);
    }
}

/* ---- GGUF: general.alignment below 8 (a suspicion of fuzz_gguf_model's,
 * confirmed by hand) ----
 * Any power of two was accepted, so with an alignment of 1 the data section
 * starts wherever the header ends (here byte 90) and the f32 weights, used
 * in place from the mapping, were read as misaligned floats (UBSan in
 * forward.c's RMSNorm). GGUF asks for a multiple of 8. */
static const unsigned char
    gguf_align1
        [] =
            {
                'G', 'G', 'U',  'F',  3,   0,   0,   0, /* magic, version */
                1,   0,   0,    0,    0,   0,   0,   0, /* one tensor */
                1,   0,   0,    0,    0,   0,   0,   0, /* one key */
                17,  0,   0,    0,    0,   0,   0,   0,   'g', 'e', 'n', 'e',
                'r', 'a', 'l',  '.',  'a', 'l', 'i', 'g', 'n', 'm', 'e', 'n',
                't', 4,   0,    0,    0,   1,   0,   0,   0,                /* general.alignment:
                                                                               u32 1 */
                1,   0,   0,    0,    0,   0,   0,   0,   'a',              /* tensor "a" */
                1,   0,   0,    0,    1,   0,   0,   0,   0,   0,   0,   0, /* 1 dimension of 1 */
                0,   0,   0,    0,    0,   0,   0,   0,   0,   0,   0,   0, /* f32, at offset 0 */
                0,   0,   0x80, 0x3f,                                       /* 1.0f at byte 90 */
};

static void test_gguf_alignment_below_8(void **state)
{
    (void)state;
    aellm_gguf *g = NULL;
    const char *path = write_file("align1.gguf", gguf_align1, sizeof(gguf_align1));
    assert_int_equal(aellm_gguf_open(&g, path), AELLM_EFORMAT);
    assert_null(g);
    assert_non_null(strstr(aellm_error_last(), "general.alignment 1 is below 8"));
}

/* ---- kld base files (fuzz_kld_base) ----
 * A perplexity text of two windows of 8 tokens on a mock whose tokens are
 * bytes; its true base file, then that file with a few bytes changed. */
#define M_BOS   256
#define M_VOCAB 258

static int mock_encode(void *user, const char *text, size_t len, int bos, int32_t **ids, size_t *n)
{
    (void)user;
    *ids = malloc((len + 1) * sizeof(int32_t));
    *n = 0;
    if (bos) (*ids)[(*n)++] = M_BOS;
    for (size_t i = 0; i < len; i++) (*ids)[(*n)++] = (unsigned char)text[i];
    return 0;
}

/* Uniform rows: the values do not matter, only that scoring reads them. */
static int mock_distributions(void *user, const int32_t *tok, int n, int n_cond, float *rows)
{
    (void)user, (void)tok;
    for (size_t i = 0; i < (size_t)(n - n_cond) * M_VOCAB; i++) rows[i] = -5.5529f; /* -log 258 */
    return 0;
}

static aellm_lm mock_lm(void)
{
    return (aellm_lm){.n_ctx = 64,
                      .encode = mock_encode,
                      .distributions = mock_distributions,
                      .n_vocab = M_VOCAB};
}

/* The file's layout (task_kld.c): magic, six u32 (version, n_vocab, n_ctx,
 * n_chunks, n_scored, reserved), u64 n_rows, the SHA (65) and 7 bytes of
 * padding, then n_rows int32 targets and n_rows x n_vocab floats. */
#define KLD_N_CHUNKS_AT 20 /* 8 + 3 * 4 */
#define KLD_N_SCORED_AT 24
#define KLD_N_ROWS_AT   32
#define KLD_TARGETS     112

static aellm_task *kld_task(void)
{
    static const char text[] = "Once upon a time a small bird sat in a tall tree."; /* 2 windows */
    write_file("kld.txt", text, sizeof(text) - 1);
    aellm_task *t = NULL;
    if (aellm_task_parse(&t, "{\"kind\": \"kld\", \"data\": \"kld.txt\", \"n_ctx\": 8}", tmp_dir,
                         NULL))
        fail_msg("task: %s", aellm_error_last());
    return t;
}

/* The true base file of the task, read back into memory (caller frees). */
static unsigned char *true_base(const aellm_task *t, size_t *n)
{
    aellm_lm lm = mock_lm();
    aellm_kld_base *b = NULL;
    assert_int_equal(aellm_kld_base_compute(&b, t, &lm, NULL, NULL), 0);
    const char *path = tmp_path("base.bin");
    assert_int_equal(aellm_kld_base_save(b, path), 0);
    aellm_kld_base_free(b);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Scoring read base->rows[target] for each row's target as stored: a
 * damaged target (the fuzzer's: -1056883540) read far outside the heap. */
static void test_kld_base_target_outside_vocabulary(void **state)
{
    (void)state;
    aellm_task *t = kld_task();
    size_t n;
    unsigned char *file = true_base(t, &n);
    const int32_t bad[2] = {-1056883540, M_VOCAB};
    for (int i = 0; i < 2; i++) {
        memcpy(file + KLD_TARGETS + 4 * i, &bad[i], 4);
        aellm_kld_base *b = NULL;
        assert_int_equal(aellm_kld_base_load(&b, write_file("bad.bin", file, n)), AELLM_EFORMAT);
        assert_null(b);
        memcpy(file + KLD_TARGETS + 4 * i, file + KLD_TARGETS + 8, 4); /* a valid one back */
    }
    free(file);
    aellm_task_free(t);
}

/* check_match compared the vocabulary, the window, the window count and the
 * text's SHA but not the tokens scored per window: a file of the same text
 * saying 1 (with rows to match) passed, and scoring wrote 3 per window into a
 * buffer sized for the file's rows (heap overflow). */
static void test_kld_base_other_scored_count(void **state)
{
    (void)state;
    aellm_task *t = kld_task();
    size_t n;
    unsigned char *file = true_base(t, &n);
    uint32_t n_scored, n_chunks;
    memcpy(&n_scored, file + KLD_N_SCORED_AT, 4);
    memcpy(&n_chunks, file + KLD_N_CHUNKS_AT, 4);
    assert_int_equal(n_scored, 3); /* n_ctx 8: tokens 5..7 of each window */
    assert_true(n_chunks >= 2);
    /* one scored token per window, the targets and rows cut to match */
    const uint32_t one = 1;
    const uint64_t rows = n_chunks;
    memcpy(file + KLD_N_SCORED_AT, &one, 4);
    memcpy(file + KLD_N_ROWS_AT, &rows, 8);
    size_t at = KLD_TARGETS + rows * 4, len = at + rows * M_VOCAB * sizeof(float);
    memmove(file + at, file + KLD_TARGETS + 3 * rows * 4, rows * M_VOCAB * sizeof(float));
    aellm_kld_base *b = NULL;
    assert_int_equal(aellm_kld_base_load(&b, write_file("short.bin", file, len)), 0);
    aellm_lm lm = mock_lm();
    aellm_task_result r;
    assert_int_equal(aellm_task_run_kld(t, &lm, b, NULL, NULL, &r), AELLM_EINVAL);
    aellm_kld_base_free(b);
    free(file);
    aellm_task_free(t);
}

/* ---- doubles cast to int before their range was known (fuzz_surrogate,
 * fuzz_task_choice): undefined behaviour, caught by UBSan (run these under
 * scripts/sanitize.sh); each input is now refused by its range check ---- */
static void test_surrogate_params_beyond_int(void **state)
{
    (void)state;
    static const char header[] = "{\"version\":1,\"members\":1,\"features\":3,"
                                 "\"params\":{\"members\":1e70}}";
    unsigned char file[8 + 4 + sizeof(header) - 1];
    uint32_t n = sizeof(header) - 1;
    memcpy(file, "AESURRG1", 8);
    memcpy(file + 8, &n, 4);
    memcpy(file + 12, header, n);
    aellm_surrogate *s = NULL;
    assert_true(aellm_surrogate_load(&s, write_file("m.surr", file, sizeof(file)), NULL) < 0);
    assert_null(s);
    assert_non_null(strstr(aellm_error_last(), "surrogate file"));
}

static void test_task_gold_beyond_int(void **state)
{
    (void)state;
    static const char line[] =
        "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": -1e308}\n";
    write_file("gold.jsonl", line, sizeof(line) - 1);
    aellm_task *t = NULL;
    assert_true(aellm_task_parse(&t, "{\"kind\": \"choice\", \"data\": \"gold.jsonl\"}", tmp_dir,
                                 NULL) < 0);
    assert_non_null(strstr(aellm_error_last(), "gold.jsonl:1: gold -1e+308 out of range"));
}

/* ---- a configuration naming a directory as its calibration text
 * (fuzz_config): aellm_config_check let it through (fopen opens a
 * directory) and its canonical form then failed on hashing it ---- */
static void test_config_calibration_directory(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"inference\": {\"weights\": \"int4\", \"method\": \"gptq\", "
                           "\"calibration\": {\"file\": \"..\"}}}");
    assert_non_null(j);
    aellm_config c;
    assert_int_equal(aellm_config_parse(&c, j, "cfg.json", tmp_dir), 0);
    cJSON_Delete(j);
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_load(&m, AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin",
                                      AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"),
                     0);
    assert_int_equal(aellm_config_check(&c, m), AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "calibration text: "));
    assert_non_null(strstr(aellm_error_last(), "is a directory"));
    aellm_model_free(m);
}

/* ---- latent attention naming uptraining text that is not there, with no
 * uptraining steps (fuzz_config, 600-s run): the check passed it (it read
 * the text only for uptraining) while the canonical form hashes it (MLA's
 * pairs are scored on it) and failed ---- */
static void test_config_mla_text_missing(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"architecture\": {\"attention\": \"mla\", \"uptrain_data\": \"tensor\"}}",
        "{\"architecture\": {\"attention\": \"mla\", \"mla_rank\": 16, \"uptrain_data\": \"n3\"}}"};
    aellm_model *m = NULL;
    assert_int_equal(aellm_model_load(&m, AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin",
                                      AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"),
                     0);
    for (int i = 0; i < 2; i++) {
        cJSON *j = cJSON_Parse(texts[i]);
        assert_non_null(j);
        aellm_config c;
        assert_int_equal(aellm_config_parse(&c, j, "cfg.json", tmp_dir), 0);
        cJSON_Delete(j);
        int rc = aellm_config_check(&c, m);
        char *canon = rc ? NULL : aellm_config_canonical(&c, m);
        if (!rc && !canon)
            fail_msg("%s passed the check, its canonical form failed: %s", texts[i],
                     aellm_error_last());
        assert_true(rc < 0); /* the file is missing: AELLM_ENOTFOUND */
        assert_non_null(strstr(aellm_error_last(), "uptraining data"));
        free(canon);
    }
    aellm_model_free(m);
}

/* ---- a surrogate header asking for 812096810 threads (fuzz_surrogate,
 * 600-s run): loaded, then XGBoost's prediction allocated per-thread buffers
 * of 156 GB (ASan out of memory; also libFuzzer's RSS limit) ---- */
static void test_surrogate_threads_beyond_any_machine(void **state)
{
    (void)state;
    /* the header's parameters pass the same check as these (surrogate_io.c) */
    aellm_surrogate *s = NULL;
    aellm_surrogate_params p;
    aellm_surrogate_params_default(&p);
    p.nthread = 812096810;
    assert_int_equal(aellm_surrogate_new(&s, &p), AELLM_EINVAL);
    assert_null(s);
    if (!strstr(aellm_error_last(), "nthread")) fail_msg("message: %s", aellm_error_last());
    p.nthread = 1024; /* the most any machine here is given */
    assert_int_equal(aellm_surrogate_new(&s, &p), 0);
    aellm_surrogate_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_number_beyond_int64),
        cmocka_unit_test(test_gguf_alignment_below_8),
        cmocka_unit_test(test_kld_base_target_outside_vocabulary),
        cmocka_unit_test(test_kld_base_other_scored_count),
        cmocka_unit_test(test_surrogate_params_beyond_int),
        cmocka_unit_test(test_task_gold_beyond_int),
        cmocka_unit_test(test_config_calibration_directory),
        cmocka_unit_test(test_config_mla_text_missing),
        cmocka_unit_test(test_surrogate_threads_beyond_any_machine),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
