/* Fuzzes the GGUF reader (aellm_gguf_open: header, metadata, tensor table)
 * on a file holding the input, then reads every key, array element and
 * tensor back through the public accessors, and copies every key and tensor
 * into a writer (not written: the writer's fsync would cost more than the
 * parse). Lookups must find what iteration found. Not the model loader
 * (fuzz_gguf_model.c) or the vocabulary (fuzz_gguf_vocab.c). */
#include "aellm/gguf.h"
#include "fuzz_util.h"

/* Every accessor of key i; arrays read at their first and last element so
 * that an array placed past the mapping faults here. */
static void exercise_kv(const aellm_gguf *g, aellm_gguf_writer *w, int64_t i)
{
    const char *key = aellm_gguf_kv_key(g, i);
    FZ_CHECK(key != NULL);
    FZ_CHECK(aellm_gguf_find_key(g, key) == i); /* duplicates are rejected at open */
    uint32_t u;
    int64_t v;
    float f;
    int b;
    const char *s;
    size_t len;
    aellm_gguf_get_u32(g, key, &u);
    aellm_gguf_get_i64(g, key, &v);
    aellm_gguf_get_f32(g, key, &f);
    aellm_gguf_get_bool(g, key, &b);
    if (aellm_gguf_get_str(g, key, &s) == 0) FZ_CHECK(s != NULL);
    aellm_gguf_kv_number(g, i);
    if ((s = aellm_gguf_kv_str(g, i, &len))) FZ_CHECK(s[len] == '\0');
    if (aellm_gguf_kv_type(g, i) == AELLM_GGUF_ARRAY) {
        uint64_t n = aellm_gguf_arr_len(g, i);
        if (aellm_gguf_arr_type(g, i) == AELLM_GGUF_STRING) {
            for (uint64_t j = 0; j < n && j < 4096; j++)
                if ((s = aellm_gguf_arr_str(g, i, j, &len))) FZ_CHECK(s[len] == '\0');
            FZ_CHECK(aellm_gguf_arr_str(g, i, n, &len) == NULL);
        } else if (n > 0) {
            const volatile uint8_t *d = aellm_gguf_arr_data(g, i);
            FZ_CHECK(d != NULL);
            (void)d[0];
        }
    }
    aellm_gguf_copy_kv(w, g, i);
}

static void exercise_tensor(const aellm_gguf *g, aellm_gguf_writer *w, int64_t i)
{
    const aellm_gguf_tensor_info *t = aellm_gguf_tensor(g, i);
    FZ_CHECK(t && t->name);
    FZ_CHECK(aellm_gguf_find_tensor(g, t->name) == t);
    FZ_CHECK(t->n_dims >= 1 && t->n_dims <= AELLM_GGUF_MAX_DIMS);
    FZ_CHECK(t->offset + t->size <= aellm_gguf_file_size(g));
    if (t->size) {
        const volatile uint8_t *d = t->data;
        (void)d[0];
        (void)d[t->size - 1];
    }
    aellm_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aellm_gguf *g = NULL;
    if (aellm_gguf_open(&g, fz_write("in.gguf", data, size))) return 0;
    FZ_CHECK(aellm_gguf_version(g) == 2 || aellm_gguf_version(g) == 3);
    FZ_CHECK(aellm_gguf_file_size(g) == size);
    FZ_CHECK(aellm_gguf_alignment(g) > 0);
    aellm_gguf_path(g);
    aellm_gguf_writer *w = NULL;
    FZ_CHECK(aellm_gguf_writer_new(&w) == 0);
    for (int64_t i = 0; i < aellm_gguf_kv_count(g); i++) exercise_kv(g, w, i);
    for (int64_t i = 0; i < aellm_gguf_tensor_count(g); i++) exercise_tensor(g, w, i);
    FZ_CHECK(aellm_gguf_kv_key(g, aellm_gguf_kv_count(g)) == NULL);
    FZ_CHECK(aellm_gguf_tensor(g, aellm_gguf_tensor_count(g)) == NULL);
    aellm_gguf_writer_free(w);
    aellm_gguf_free(g);
    return 0;
}
