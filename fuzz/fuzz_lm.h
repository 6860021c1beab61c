/* For the harnesses that need a vocabulary or a language model: the bundled
 * stories260K tokenizer (loaded once), a round trip of text through any
 * tokenizer, and an aellm_lm whose encode/decode are that real tokenizer and
 * whose scores and generations are cheap functions of the tokens, so task
 * files are parsed, selected, tokenized and scored for real without running a
 * model. The lm checks the contract the task code promises it (1 <= n_cond <
 * n <= n_ctx): a task that breaks it is a finding. */
#ifndef AELLM_FUZZ_LM_H
#define AELLM_FUZZ_LM_H

#include <math.h>

#include "aellm/aellm.h"
#include "aellm/task.h"
#include "aellm/tokenizer.h"
#include "fuzz_util.h"

#define FZ_TOKENIZER AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"

/* The bundled 512-token SentencePiece vocabulary, or byte-level if absent. */
static inline const aellm_tokenizer *fz_tokenizer(void)
{
    static aellm_tokenizer *tok;
    if (!tok && aellm_tokenizer_load_llama2c(&tok, FZ_TOKENIZER, 512))
        FZ_CHECK(aellm_tokenizer_byte_level(&tok, 300) == 0);
    return tok;
}

/* Tokens of text[0..len) into *ids (caller frees); asks twice when the first
 * guess of the count is short, as the encode contract says. */
static inline int fz_encode_tok(const aellm_tokenizer *t, const char *text, size_t len, int bos,
                                int32_t **ids, size_t *n)
{
    size_t cap = len + 8;
    *ids = malloc(cap * sizeof(int32_t));
    FZ_CHECK(*ids);
    int rc = aellm_tokenizer_encode(t, text, len, bos, *ids, cap, n);
    if (rc == AELLM_EINVAL && *n > cap) {
        free(*ids);
        cap = *n;
        *ids = malloc(cap * sizeof(int32_t));
        FZ_CHECK(*ids);
        rc = aellm_tokenizer_encode(t, text, len, bos, *ids, cap, n);
    }
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* Text of ids[0..n), each piece after the one before it (caller frees). */
static inline int fz_decode_tok(const aellm_tokenizer *t, const int32_t *ids, size_t n, char **text)
{
    size_t cap = 64, len = 0;
    char *s = malloc(cap), piece[512];
    FZ_CHECK(s);
    for (size_t i = 0; i < n; i++) {
        int k = aellm_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], piece, sizeof(piece));
        if (k < 0) continue; /* a piece too long for the buffer: an error, not a crash */
        if (len + (size_t)k + 1 > cap) {
            while (len + (size_t)k + 1 > cap) cap *= 2;
            char *g = realloc(s, cap);
            FZ_CHECK(g);
            s = g;
        }
        memcpy(s + len, piece, (size_t)k);
        len += (size_t)k;
    }
    s[len] = '\0';
    *text = s;
    return 0;
}

/* Encodes and decodes `text`; every id must be inside the vocabulary. */
static inline void fz_round_trip(const aellm_tokenizer *t, const char *text, size_t len)
{
    int32_t *ids;
    size_t n;
    if (fz_encode_tok(t, text, len, 1, &ids, &n)) return;
    for (size_t i = 0; i < n; i++) FZ_CHECK(ids[i] >= 0 && ids[i] < aellm_tokenizer_vocab_size(t));
    char *back;
    fz_decode_tok(t, ids, n, &back);
    free(back);
    free(ids);
}

/* A few texts every loaded vocabulary is tried on: plain, spaces, UTF-8,
 * control and stray continuation bytes (byte fallback). */
static inline void fz_exercise_tokenizer(const aellm_tokenizer *t)
{
    static const char *const texts[] = {
        "Once upon a time, there was a little girl.", "  two  spaces\tand\na newline",
        "caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x99\x82", "\x01\x80\xff<0x41></s><s>", ""};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        fz_round_trip(t, texts[i], strlen(texts[i]));
    int n = aellm_tokenizer_vocab_size(t), bos = aellm_tokenizer_bos(t);
    char buf[64];
    for (int id = 0; id < n && id < 4096; id++)
        aellm_tokenizer_decode(t, bos, id, buf, sizeof(buf));
}

/* ---- the mock language model ---- */
#define FZ_LM_CTX 128

static inline int fz_lm_encode(void *user, const char *text, size_t len, int bos, int32_t **ids,
                               size_t *n)
{
    (void)user;
    return fz_encode_tok(fz_tokenizer(), text, len, bos, ids, n);
}

static inline int fz_lm_decode(void *user, const int32_t *ids, size_t n, char **text)
{
    (void)user;
    return fz_decode_tok(fz_tokenizer(), ids, n, text);
}

static inline double fz_lm_lp(int32_t prev, int32_t t)
{
    return -0.25 * (double)(1 + (uint32_t)(7 * t + prev) % 9);
}

static inline int fz_lm_score(void *user, const int32_t *tok, int n, int n_cond, double *logprob,
                              int *greedy)
{
    (void)user;
    FZ_CHECK(n_cond >= 1 && n_cond < n && n <= FZ_LM_CTX);
    *logprob = 0;
    int all = 1;
    for (int i = n_cond; i < n; i++) {
        *logprob += fz_lm_lp(tok[i - 1], tok[i]);
        all &= tok[i] % 3 == 0;
    }
    if (greedy) *greedy = all;
    return 0;
}

static inline int fz_lm_logprobs(void *user, const int32_t *tok, int n, int n_cond, double *out)
{
    (void)user;
    FZ_CHECK(n_cond >= 1 && n_cond < n && n <= FZ_LM_CTX);
    for (int i = n_cond; i < n; i++) out[i - n_cond] = fz_lm_lp(tok[i - 1], tok[i]);
    return 0;
}

/* Repeats the prompt from its middle (so a generation holds text the input
 * chose: numbers, stop strings), ending early after n % 13 + 2 tokens. */
static inline int fz_lm_generate(void *user, const int32_t *prompt, int n, int max_new,
                                 int32_t *out, int *n_out)
{
    (void)user;
    FZ_CHECK(n >= 1 && n <= FZ_LM_CTX && max_new >= 0);
    int k = max_new < n % 13 + 2 ? max_new : n % 13 + 2;
    for (int i = 0; i < k; i++) out[i] = prompt[(n / 2 + i) % n];
    *n_out = k;
    return 0;
}

/* log-softmax rows that depend on the previous token. */
static inline int fz_lm_distributions(void *user, const int32_t *tok, int n, int n_cond,
                                      float *rows)
{
    (void)user;
    FZ_CHECK(n_cond >= 1 && n_cond < n && n <= FZ_LM_CTX);
    int v = aellm_tokenizer_vocab_size(fz_tokenizer());
    for (int i = n_cond - 1; i < n - 1; i++) {
        float *r = rows + (size_t)(i - n_cond + 1) * (size_t)v;
        double z = 0;
        for (int j = 0; j < v; j++) z += exp(-(double)((j + tok[i]) % 5));
        for (int j = 0; j < v; j++) r[j] = (float)(-(double)((j + tok[i]) % 5) - log(z));
    }
    return 0;
}

static inline aellm_lm fz_lm(void)
{
    return (aellm_lm){.user = NULL,
                      .n_ctx = FZ_LM_CTX,
                      .encode = fz_lm_encode,
                      .decode = fz_lm_decode,
                      .score = fz_lm_score,
                      .generate = fz_lm_generate,
                      .logprobs = fz_lm_logprobs,
                      .distributions = fz_lm_distributions,
                      .n_vocab = aellm_tokenizer_vocab_size(fz_tokenizer())};
}

/* After a task parsed: its accessors, its canonical form, and a run on the
 * mock when it is small enough to be quick. */
static inline void fz_exercise_task(aellm_task *t)
{
    FZ_CHECK(aellm_task_name(t) != NULL);
    aellm_task_train_path(t);
    free(aellm_task_canonical_json(t));
    int64_t n = aellm_task_n_items(t);
    if (aellm_task_kind_of(t) == AELLM_TASK_KLD || n > 64) return;
    aellm_lm lm = fz_lm();
    aellm_task_result r;
    if (aellm_task_run(t, &lm, NULL, NULL, &r) == 0) {
        FZ_CHECK(r.n_metrics >= 1 && r.metrics);
        aellm_task_result_free(&r);
    }
}

/* The task-file harnesses' one input: a selector byte that the harness's
 * spec_of turns into a spec, then the data file, written as `file`. A task
 * that loads must be of `kind` and is run on the mock model. */
static inline int fz_run_task_file(const uint8_t *data, size_t size, const char *file,
                                   char *(*spec_of)(int sel, const char *file),
                                   aellm_task_kind kind)
{
    fz_in in = {data, size};
    int sel = fz_u8(&in);
    fz_write(file, in.p, in.n);
    char *spec = spec_of(sel, file);
    aellm_task *t = NULL;
    if (aellm_task_parse(&t, spec, fz_dir(), NULL) == 0) {
        FZ_CHECK(aellm_task_kind_of(t) == kind);
        fz_exercise_task(t);
        aellm_task_free(t);
    }
    free(spec);
    return 0;
}

#endif
