/* Fuzzes the llama2.c checkpoint loader (src/model/llama2c.c). A file whose
 * size differs from what its header implies is refused before anything else,
 * so plain mutation never gets past that check: this harness builds the file
 * from the input instead.
 *
 *   byte 0: flags. bit 0: header fields taken raw (28 bytes, any int32: the
 *           export magic, INT32_MIN, negatives) instead of clamped to small
 *           shapes; bit 1: size made consistent with the header (as
 *           llama2c.c computes it), else the rest of the input is the body
 *           as it is; bit 2: negative vocab_size (a separate classifier);
 *           bit 3: load with the bundled tokenizer.bin; bit 4: round dim to
 *           a multiple of 2 * n_heads (so the head checks pass more often).
 *   then 7 bytes (clamped) or 28 (raw) of header, then the weights, repeated
 *   to fill a consistent size (zeros when there are none).
 *
 * A model that loads has its sizes read and two tokens run through the
 * engine (the shapes are small: dim <= 112, 3 layers, vocab <= 130). */
#include "aellm/aellm.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

#define MAX_FILE (1u << 19)

/* Small shapes from one byte each: files of at most about 400 KiB, most of
 * a few KiB (writing and mapping the file is most of an execution's cost). */
static void clamped_header(fz_in *in, int flags, int32_t h[7])
{
    int heads = 1 + fz_u8(in) % 8;
    h[0] = 2 + 2 * (fz_u8(in) % 32);                                         /* dim 2..64 */
    if (flags & 16) h[0] = (h[0] + 2 * heads - 1) / (2 * heads) * 2 * heads; /* at most 112 */
    h[1] = 1 + fz_u8(in) % 64;                                               /* hidden_dim */
    h[2] = 1 + fz_u8(in) % 3;                                                /* n_layers */
    h[3] = heads;                                                            /* n_heads */
    h[4] = 1 + fz_u8(in) % 8;                                                /* n_kv_heads */
    h[5] = (3 + fz_u8(in) % 128) * (flags & 4 ? -1 : 1);                     /* vocab 3..130 */
    h[6] = 1 + fz_u8(in) % 32;                                               /* seq_len */
}

/* Floats after the header, as llama2c.c's expected_floats counts them (head
 * size dim / n_heads); -1 when the header would be refused anyway. */
static int64_t body_floats(const int32_t h[7])
{
    if (h[0] <= 0 || h[1] <= 0 || h[2] <= 0 || h[3] <= 0 || h[4] <= 0 || h[6] <= 0 ||
        h[5] == INT32_MIN || h[0] % h[3] || h[0] > 4096 || h[1] > 4096 || h[2] > 64 ||
        h[4] > 4096 || h[6] > 4096 || h[5] > 65536 || h[5] < -65536)
        return -1;
    const int64_t d = h[0], hid = h[1], L = h[2], v = h[5] < 0 ? -(int64_t)h[5] : h[5];
    const int64_t hd = d / h[3], q = (int64_t)h[3] * hd, kv = (int64_t)h[4] * hd;
    int64_t n = v * d + L * (d + q * d + 2 * kv * d) + L * (d * q + d + 3 * hid * d);
    n += d + (int64_t)h[6] * hd;
    return h[5] > 0 ? n : n + v * d;
}

/* The checkpoint's bytes: header, then the body (caller frees). */
static uint8_t *build(fz_in *in, int flags, size_t *size)
{
    int32_t h[7];
    if (flags & 1)
        for (int i = 0; i < 7; i++) h[i] = (int32_t)fz_u32(in);
    else
        clamped_header(in, flags, h);
    int64_t floats = flags & 2 ? body_floats(h) : -1;
    size_t body = floats >= 0 && (uint64_t)floats * 4 <= MAX_FILE ? (size_t)floats * 4 : in->n;
    uint8_t *f = calloc(1, 28 + body);
    FZ_CHECK(f);
    memcpy(f, h, 28);
    for (size_t o = 0; in->n && o < body; o += in->n)
        memcpy(f + 28 + o, in->p, body - o < in->n ? body - o : in->n);
    *size = 28 + body;
    return f;
}

static void run_two_tokens(const aellm_model *m)
{
    const aellm_model_config *c = aellm_model_config_get(m);
    if (c->dim > 128 || c->vocab_size > 512 || c->seq_len < 2) return;
    aellm_engine_params p;
    aellm_engine_params_default(&p);
    p.n_ctx = 2;
    p.n_threads = 1;
    aellm_engine *e = NULL;
    if (aellm_engine_new(&e, m, &p)) return;
    float logits[512];
    int32_t tok[2] = {0, c->vocab_size - 1};
    if (aellm_engine_eval(e, tok, 1, 0, logits, 0) == 0)
        aellm_engine_eval(e, tok + 1, 1, 1, logits, 0);
    aellm_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int flags = fz_u8(&in);
    size_t n;
    uint8_t *file = build(&in, flags, &n);
    const char *path = fz_write("model.bin", file, n);
    free(file);
    aellm_model *m = NULL;
    if (aellm_model_load(&m, path, flags & 8 ? FZ_TOKENIZER : NULL)) return 0;
    const aellm_model_config *c = aellm_model_config_get(m);
    FZ_CHECK(c->dim == c->n_heads * c->head_dim);
    FZ_CHECK(aellm_model_weight_bytes(m) <= n);
    aellm_model_n_params(m);
    aellm_model_active_bytes(m);
    if (aellm_model_tokenizer(m)) fz_round_trip(aellm_model_tokenizer(m), "Once upon a time", 16);
    run_two_tokens(m);
    aellm_model_free(m);
    return 0;
}
