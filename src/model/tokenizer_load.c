/* Where a vocabulary comes from and goes to: GGUF tokenizer.ggml.* metadata
 * (read and written), llama2.c's tokenizer.bin, and a byte-level vocabulary
 * for random models. Not the tokenization itself (tokenizer.c). */
#include "model/tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

/* ---- GGUF ---- */

/* Index of a required array key with string elements, or an error. */
static int gguf_str_array(const aellm_gguf *g, const char *key, int64_t *out, uint64_t *n)
{
    const char *path = aellm_gguf_path(g);
    int64_t i = aellm_gguf_find_key(g, key);
    if (i < 0) return aellm_error_set(AELLM_ENOTFOUND, "%s: no %s", path, key);
    if (aellm_gguf_kv_type(g, i) != AELLM_GGUF_ARRAY ||
        aellm_gguf_arr_type(g, i) != AELLM_GGUF_STRING)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s is not an array of strings", path, key);
    *n = aellm_gguf_arr_len(g, i);
    if (*n == 0 || *n > INT32_MAX)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s has %llu entries", path, key,
                               (unsigned long long)*n);
    *out = i;
    return 0;
}

/* Raw data of an optional numeric array key of n elements of `type`; *out
 * stays NULL if the key is absent. */
static int gguf_num_array(const aellm_gguf *g, const char *key, aellm_gguf_type type, uint64_t n,
                          const unsigned char **out)
{
    const char *path = aellm_gguf_path(g);
    *out = NULL;
    int64_t i = aellm_gguf_find_key(g, key);
    if (i < 0) return 0;
    if (aellm_gguf_kv_type(g, i) != AELLM_GGUF_ARRAY || aellm_gguf_arr_type(g, i) != type)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s has the wrong element type", path, key);
    if (aellm_gguf_arr_len(g, i) != n)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s has %llu entries for %llu tokens", path, key,
                               (unsigned long long)aellm_gguf_arr_len(g, i), (unsigned long long)n);
    *out = aellm_gguf_arr_data(g, i);
    if (!*out) return aellm_error_set(AELLM_EFORMAT, "%s: %s has no data", path, key);
    return 0;
}

static int check_model(const aellm_gguf *g)
{
    const char *path = aellm_gguf_path(g), *model = NULL;
    if (aellm_gguf_find_key(g, "tokenizer.ggml.model") < 0)
        return aellm_error_set(AELLM_ENOTFOUND, "%s: no tokenizer.ggml.model", path);
    int rc = aellm_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (rc) return rc;
    if (strcmp(model, "llama") != 0)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: tokenizer model '%s' is not supported (only 'llama', "
                               "SentencePiece BPE)",
                               path, model);
    return 0;
}

static int copy_pieces(aellm_tokenizer **out, const aellm_gguf *g, int64_t ki, uint64_t n)
{
    const char *path = aellm_gguf_path(g);
    size_t bytes = 0, len = 0;
    for (uint64_t j = 0; j < n; j++) {
        if (!aellm_gguf_arr_str(g, ki, j, &len) || len > UINT32_MAX || len >= SIZE_MAX - bytes)
            return aellm_error_set(AELLM_EFORMAT, "%s: bad token string %llu", path,
                                   (unsigned long long)j);
        bytes += len + 1;
    }
    int rc = aellm_tokenizer_alloc(out, (int32_t)n, bytes, path);
    if (rc) return rc;
    aellm_tokenizer *t = *out;
    size_t o = 0;
    for (uint64_t j = 0; j < n; j++) {
        const char *s = aellm_gguf_arr_str(g, ki, j, &len);
        memcpy(t->text + o, s, len + 1);
        t->off[j] = o;
        t->len[j] = (uint32_t)len;
        o += len + 1;
    }
    return 0;
}

static int read_scores_types(aellm_tokenizer *t, const aellm_gguf *g)
{
    const unsigned char *scores = NULL, *types = NULL;
    uint64_t n = (uint64_t)t->n_vocab;
    int rc = gguf_num_array(g, "tokenizer.ggml.scores", AELLM_GGUF_FLOAT32, n, &scores);
    if (!rc) rc = gguf_num_array(g, "tokenizer.ggml.token_type", AELLM_GGUF_INT32, n, &types);
    if (rc) return rc;
    for (uint64_t i = 0; i < n; i++) {
        if (scores) memcpy(&t->score[i], scores + 4 * i, 4); /* no alignment promised */
        if (types) memcpy(&t->type[i], types + 4 * i, 4);
    }
    return 0;
}

/* Without token_type, tell the types as llama2.c's loader does. */
static void guess_types(aellm_tokenizer *t)
{
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *p = aellm_tokenizer_piece(t, i);
        int byte = t->len[i] == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>';
        t->type[i] = i == t->unk                  ? AELLM_TOKEN_UNKNOWN
                     : i == t->bos || i == t->eos ? AELLM_TOKEN_CONTROL
                     : byte                       ? AELLM_TOKEN_BYTE
                                                  : AELLM_TOKEN_NORMAL;
    }
}

static int read_id(const aellm_gguf *g, const char *key, int32_t *id)
{
    uint32_t v;
    if (aellm_gguf_find_key(g, key) < 0) return 0;
    int rc = aellm_gguf_get_u32(g, key, &v);
    if (rc) return rc;
    if (v > INT32_MAX)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s = %u", aellm_gguf_path(g), key, v);
    *id = (int32_t)v;
    return 0;
}

static int read_options(aellm_tokenizer *t, const aellm_gguf *g)
{
    int rc = read_id(g, "tokenizer.ggml.bos_token_id", &t->bos);
    if (!rc) rc = read_id(g, "tokenizer.ggml.eos_token_id", &t->eos);
    if (!rc) rc = read_id(g, "tokenizer.ggml.unknown_token_id", &t->unk);
    if (rc || aellm_gguf_find_key(g, "tokenizer.ggml.add_space_prefix") < 0) return rc;
    t->add_space_prefix_set = 1;
    return aellm_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
}

int aellm_tokenizer_from_gguf(aellm_tokenizer **out, const aellm_gguf *g)
{
    aellm_tokenizer *t = NULL;
    int64_t ki = -1;
    uint64_t n = 0;
    *out = NULL;
    if (!g) return aellm_error_set(AELLM_EINVAL, "tokenizer_from_gguf: NULL file");
    int rc = check_model(g);
    if (!rc) rc = gguf_str_array(g, "tokenizer.ggml.tokens", &ki, &n);
    if (!rc) rc = copy_pieces(&t, g, ki, n);
    if (!rc) rc = read_options(t, g);
    if (!rc) rc = read_scores_types(t, g);
    if (rc) goto done;
    if (aellm_gguf_find_key(g, "tokenizer.ggml.token_type") < 0) guess_types(t);
    rc = aellm_tokenizer_index(t, aellm_gguf_path(g));
done:
    if (rc) {
        aellm_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int aellm_tokenizer_write_gguf(const aellm_tokenizer *t, aellm_gguf_writer *w)
{
    const char **strs = malloc((size_t)t->n_vocab * sizeof(*strs));
    if (!strs) return aellm_error_oom("token list", (size_t)t->n_vocab * sizeof(*strs));
    int rc = 0;
    for (int32_t i = 0; i < t->n_vocab && !rc; i++) {
        strs[i] = aellm_tokenizer_piece(t, i);
        if (strlen(strs[i]) != t->len[i])
            rc = aellm_error_set(AELLM_EFORMAT, "tokenizer: token %d holds a NUL byte", i);
    }
    uint64_t n = (uint64_t)t->n_vocab;
    if (!rc) rc = aellm_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    if (!rc) rc = aellm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, n);
    if (!rc) rc = aellm_gguf_set_arr(w, "tokenizer.ggml.scores", AELLM_GGUF_FLOAT32, t->score, n);
    if (!rc) rc = aellm_gguf_set_arr(w, "tokenizer.ggml.token_type", AELLM_GGUF_INT32, t->type, n);
    if (!rc) rc = aellm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
    if (!rc) rc = aellm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
    if (!rc) rc = aellm_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
    if (!rc && t->add_space_prefix_set)
        rc = aellm_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    free(strs);
    return rc;
}

/* ---- llama2.c tokenizer.bin ----
 * int32 max_token_length, then vocab_size x {f32 score, i32 len, len bytes}.
 * Its pieces hold ' ' where SentencePiece has '▁', and BOS/EOS read
 * "\n<s>\n" / "\n</s>\n"; both are made SentencePiece's again here. */

/* A tokenizer.bin of 2^31 tokens of 16 bytes is 32 GiB; none real is over 64 MiB. */
#define TOKENIZER_MAX_BYTES ((size_t)1 << 30)

static int read_whole(const char *path, unsigned char **out, size_t *size)
{
    return aellm_file_read((char **)out, size, path, TOKENIZER_MAX_BYTES, "tokenizer");
}

static int32_t rd_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Walks the entries: checks every length against the file and counts the
 * bytes the escaped pieces need. */
static int scan_llama2c(const unsigned char *buf, size_t size, int32_t n, const char *path,
                        size_t *text_bytes)
{
    size_t o = 4, bytes = 0;
    for (int32_t i = 0; i < n; i++) {
        if (size - o < 8)
            return aellm_error_set(AELLM_EFORMAT, "%s: truncated at token %d of %d", path, i, n);
        int32_t len = rd_i32(buf + o + 4);
        o += 8;
        if (len < 0 || (size_t)len > size - o)
            return aellm_error_set(AELLM_EFORMAT, "%s: token %d has bad length %d", path, i, len);
        size_t spaces = 0;
        for (int32_t j = 0; j < len; j++) spaces += buf[o + j] == ' ';
        bytes += (size_t)len + 2 * spaces + 1; /* bounded by 3 x file size */
        o += (size_t)len;
    }
    *text_bytes = bytes;
    return 0;
}

static int32_t llama2c_type(const aellm_tokenizer *t, int32_t i)
{
    const char *p = aellm_tokenizer_piece(t, i);
    if (i == 0) return AELLM_TOKEN_UNKNOWN;
    if (i <= 2) return AELLM_TOKEN_CONTROL;
    if (t->len[i] == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>') return AELLM_TOKEN_BYTE;
    return AELLM_TOKEN_NORMAL;
}

/* Copies piece i (validated by scan_llama2c) with ' ' -> '▁'. */
static void put_piece(aellm_tokenizer *t, int32_t i, const unsigned char *p, int32_t len, size_t *o)
{
    if (i == 1 && len == 5 && memcmp(p, "\n<s>\n", 5) == 0) p += 1, len = 3;
    if (i == 2 && len == 6 && memcmp(p, "\n</s>\n", 6) == 0) p += 1, len = 4;
    t->off[i] = *o;
    for (int32_t j = 0; j < len; j++) {
        if (p[j] == ' ') {
            memcpy(t->text + *o, "\xe2\x96\x81", 3);
            *o += 3;
        } else {
            t->text[(*o)++] = (char)p[j];
        }
    }
    t->len[i] = (uint32_t)(*o - t->off[i]);
    t->text[(*o)++] = '\0';
}

static void fill_llama2c(aellm_tokenizer *t, const unsigned char *buf)
{
    size_t in = 4, o = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        memcpy(&t->score[i], buf + in, 4);
        int32_t len = rd_i32(buf + in + 4);
        put_piece(t, i, buf + in + 8, len, &o);
        in += 8 + (size_t)len;
        t->type[i] = llama2c_type(t, i);
    }
}

int aellm_tokenizer_load_llama2c(aellm_tokenizer **out, const char *path, int vocab_size)
{
    unsigned char *buf = NULL;
    aellm_tokenizer *t = NULL;
    size_t size = 0, text_bytes = 0;
    *out = NULL;
    int rc = read_whole(path, &buf, &size);
    if (rc) return rc;
    if (size < 4) {
        rc = aellm_error_set(AELLM_EFORMAT, "%s: too short for a tokenizer", path);
        goto done;
    }
    if (vocab_size < 3 || (size_t)vocab_size > (size - 4) / 8) {
        rc = aellm_error_set(AELLM_EFORMAT, "%s: vocabulary of %d tokens cannot be in %zu bytes",
                             path, vocab_size, size);
        goto done;
    }
    rc = scan_llama2c(buf, size, vocab_size, path, &text_bytes);
    if (!rc) rc = aellm_tokenizer_alloc(&t, vocab_size, text_bytes, path);
    if (rc) goto done;
    fill_llama2c(t, buf);
    rc = aellm_tokenizer_index(t, path);
done:
    free(buf);
    if (rc) {
        aellm_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- byte-level vocabulary ---- */

static int byte_level_piece(char *dst, int32_t i, int32_t *type)
{
    static const char *const special[3] = {"<unk>", "<s>", "</s>"};
    *type = i == 0 ? AELLM_TOKEN_UNKNOWN : i < 3 ? AELLM_TOKEN_CONTROL : AELLM_TOKEN_BYTE;
    if (i < 3) return snprintf(dst, 32, "%s", special[i]);
    if (i < 259) return snprintf(dst, 32, "<0x%02X>", i - 3);
    *type = i == 259 ? AELLM_TOKEN_NORMAL : AELLM_TOKEN_UNUSED;
    if (i == 259) return snprintf(dst, 32, "\xe2\x96\x81"); /* '▁', so spaces round-trip */
    return snprintf(dst, 32, "<extra_%d>", i);
}

int aellm_tokenizer_byte_level(aellm_tokenizer **out, int vocab_size)
{
    if (vocab_size < 3)
        return aellm_error_set(AELLM_EINVAL, "byte-level vocabulary: %d tokens, need 3",
                               vocab_size);
    size_t bytes = 32 * (size_t)vocab_size; /* "<extra_2147483647>" fits */
    int rc = aellm_tokenizer_alloc(out, vocab_size, bytes, "byte-level vocabulary");
    if (rc) return rc;
    aellm_tokenizer *t = *out;
    size_t o = 0;
    for (int32_t i = 0; i < vocab_size; i++) {
        int k = byte_level_piece(t->text + o, i, &t->type[i]);
        t->off[i] = o;
        t->len[i] = (uint32_t)k;
        o += (size_t)k + 1;
    }
    rc = aellm_tokenizer_index(t, "byte-level vocabulary");
    if (rc) {
        aellm_tokenizer_free(t);
        *out = NULL;
    }
    return rc;
}
