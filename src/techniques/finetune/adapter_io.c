/* LoRA adapters in llama.cpp's adapter GGUF (general.type = adapter,
 * adapter.type = lora, adapter.lora.alpha, "<matrix>.lora_a" of ne (C, r) and
 * "<matrix>.lora_b" of ne (r, OC), F32), written from a trained model and
 * read back onto a model. llama.cpp always scales by alpha / r, so the alpha
 * written is the effective scale times r: an RSLoRA adapter (scale
 * alpha / sqrt(r)) is written with alpha * sqrt(r). DoRA has no magnitude
 * tensor in that format and is exported merged only. */
#include "aellm/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/gguf.h"
#include "core/error.h"
#include "model/model.h"
#include "techniques/finetune/train_model.h"

/* GGUF's names of the seven layer matrices, in aellm_linear order. */
static const char *const matrix_names[AELLM_LINEAR_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

int train_model_save_lora(const train_model *tm, const char *path);

int train_model_save_lora(const train_model *tm, const char *path)
{
    if (tm->method.kind == TRAIN_FULL)
        return aellm_error_set(AELLM_EINVAL, "%s: full fine-tuning has no adapter to write", path);
    if (tm->s.R || tm->s.E)
        return aellm_error_set(AELLM_EINVAL,
                               "%s: llama.cpp's adapter format has no place for a %s model's "
                               "adapters; they are written merged only",
                               path, tm->s.R ? "latent-attention" : "mixture-of-experts");
    if (tm->method.kind == TRAIN_DORA)
        return aellm_error_set(AELLM_EINVAL,
                               "%s: DoRA's magnitudes have no place in llama.cpp's adapter format; "
                               "it is written merged only",
                               path);
    aellm_gguf_writer *w = NULL;
    int rc = aellm_gguf_writer_new(&w);
    float scale = 0;
    if (!rc) rc = aellm_gguf_set_str(w, "general.architecture", "llama");
    if (!rc) rc = aellm_gguf_set_str(w, "general.type", "adapter");
    if (!rc) rc = aellm_gguf_set_str(w, "adapter.type", "lora");
    char names[2][96];
    for (int k = 0; !rc && k < tm->s.L * AELLM_LINEAR_COUNT; k++) {
        const train_linear *lin = &tm->lin[k];
        if (lin->ad.kind != TRAIN_ADAPTER_LORA) continue;
        scale = lin->ad.scale;
        int r = lin->ad.r;
        int64_t ne_a[2] = {lin->C, r}, ne_b[2] = {r, lin->OC};
        snprintf(names[0], sizeof(names[0]), "blk.%d.%s.weight.lora_a", k / AELLM_LINEAR_COUNT,
                 matrix_names[k % AELLM_LINEAR_COUNT]);
        snprintf(names[1], sizeof(names[1]), "blk.%d.%s.weight.lora_b", k / AELLM_LINEAR_COUNT,
                 matrix_names[k % AELLM_LINEAR_COUNT]);
        rc = aellm_gguf_add_tensor(w, names[0], AELLM_DTYPE_F32, 2, ne_a, lin->ad.A);
        if (!rc) rc = aellm_gguf_add_tensor(w, names[1], AELLM_DTYPE_F32, 2, ne_b, lin->ad.B);
    }
    /* llama.cpp multiplies by alpha / r */
    if (!rc) rc = aellm_gguf_set_f32(w, "adapter.lora.alpha", scale * (float)tm->method.rank);
    if (!rc) rc = aellm_gguf_writer_write(w, path);
    aellm_gguf_writer_free(w);
    return rc;
}

/* ---- reading one onto a model ---- */

/* Layer and matrix of "blk.L.NAME.weight.lora_a|b"; -1 when not one. */
static int parse_name(const char *name, int n_layers, int *layer, int *which, int *is_b)
{
    int l, n = 0;
    char what[32];
    if (sscanf(name, "blk.%d.%31[a-z_].weight.lora_%n", &l, what, &n) != 2 || !n) return -1;
    const char *ab = name + n;
    if (strcmp(ab, "a") && strcmp(ab, "b")) return -1;
    for (int i = 0; i < AELLM_LINEAR_COUNT; i++)
        if (!strcmp(what, matrix_names[i]) && l >= 0 && l < n_layers) {
            *layer = l, *which = i, *is_b = ab[0] == 'b';
            return 0;
        }
    return -1;
}

/* W (OC, C) <- W + s B A, into a new F32 block the model owns. */
static int merge_pair(aellm_model *m, aellm_tensor *W, const aellm_gguf_tensor_info *a,
                      const aellm_gguf_tensor_info *b, float s, const char *path, const char *name)
{
    int64_t C = W->ne[0], OC = W->ne[1], r = a->ne[1];
    if (!W->data)
        return aellm_error_set(AELLM_EFORMAT, "%s: the model has no %s to adapt (latent attention)",
                               path, name);
    if (a->type != AELLM_DTYPE_F32 || b->type != AELLM_DTYPE_F32 || a->ne[0] != C ||
        b->ne[0] != r || b->ne[1] != OC)
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: %s does not fit the model (lora_a %lld x %lld, lora_b %lld x "
                               "%lld, matrix %lld x %lld, F32 expected)",
                               path, name, (long long)a->ne[0], (long long)a->ne[1],
                               (long long)b->ne[0], (long long)b->ne[1], (long long)C,
                               (long long)OC);
    float *out = aellm_model_own(m, (size_t)C * OC * sizeof(float));
    if (!out) return AELLM_ENOMEM;
    aellm_to_float_fn to_float = aellm_dtype_traits_get(W->type)->to_float;
    for (int64_t o = 0; o < OC; o++)
        to_float((const char *)W->data + (size_t)o * W->row_bytes, out + o * C, C);
    const float *A = a->data, *B = b->data;
    for (int64_t o = 0; o < OC; o++)
        for (int64_t k = 0; k < r; k++) {
            float f = s * B[o * r + k];
            for (int64_t c = 0; c < C; c++) out[o * C + c] += f * A[k * C + c];
        }
    aellm_tensor_set(W, AELLM_DTYPE_F32, C, OC, out);
    return 0;
}

static int check_adapter(const aellm_gguf *g, const char *path)
{
    const char *type = NULL, *kind = NULL, *arch = NULL;
    if (aellm_gguf_get_str(g, "general.type", &type) || strcmp(type, "adapter") ||
        aellm_gguf_get_str(g, "adapter.type", &kind) || strcmp(kind, "lora"))
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: not a LoRA adapter (general.type = adapter, "
                               "adapter.type = lora expected)",
                               path);
    if (aellm_gguf_get_str(g, "general.architecture", &arch) || strcmp(arch, "llama"))
        return aellm_error_set(AELLM_EFORMAT, "%s: an adapter for architecture '%s', not llama",
                               path, arch ? arch : "?");
    return 0;
}

int aellm_model_apply_lora(aellm_model *m, const char *path, float user_scale)
{
    aellm_gguf *g = NULL;
    int rc = aellm_gguf_open(&g, path);
    if (!rc) rc = check_adapter(g, path);
    float alpha = 0;
    if (!rc && aellm_gguf_get_f32(g, "adapter.lora.alpha", &alpha)) alpha = 0;
    int pairs = 0;
    for (int64_t i = 0; !rc && i < aellm_gguf_tensor_count(g); i++) {
        const aellm_gguf_tensor_info *a = aellm_gguf_tensor(g, i);
        int l = 0, which = 0, is_b = 0;
        if (parse_name(a->name, m->cfg.n_layers, &l, &which, &is_b))
            rc = aellm_error_set(AELLM_EFORMAT,
                                 "%s: tensor '%s' is not a layer matrix's "
                                 "lora_a/lora_b",
                                 path, a->name);
        if (rc || is_b) continue;
        char bname[128];
        snprintf(bname, sizeof(bname), "%.*sb", (int)strlen(a->name) - 1, a->name);
        const aellm_gguf_tensor_info *b = aellm_gguf_find_tensor(g, bname);
        if (!b) {
            rc = aellm_error_set(AELLM_EFORMAT, "%s: '%s' has no lora_b", path, a->name);
            break;
        }
        /* llama.cpp's scale: user scale x alpha / rank (alpha 0: no alpha) */
        float s = alpha > 0 ? user_scale * alpha / (float)a->ne[1] : user_scale;
        rc = merge_pair(m, aellm_layer_linear(&m->layers[l], which), a, b, s, path, a->name);
        pairs++;
    }
    if (!rc && !pairs) rc = aellm_error_set(AELLM_EFORMAT, "%s: the adapter has no tensors", path);
    aellm_gguf_free(g);
    if (rc == AELLM_ENOMEM) rc = aellm_error_oom("a merged matrix", 0);
    return rc;
}
